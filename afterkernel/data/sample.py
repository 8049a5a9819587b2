"""The test sample on which a run's kernel metrics are measured (paper §2)."""

from __future__ import annotations

import numpy as np

#: seed of the test sample's draw (one sample per problem, shared by every run)
TEST_SAMPLE_SEED = 0


def draw_test_sample(y_test: np.ndarray, size: int | None, seed: int = TEST_SAMPLE_SEED) -> np.ndarray:
    """Indices (sorted, int64 (k,)) of the test sample on which alignment,
    effective rank, target alignment and invariances are measured (paper §2):
    a seeded draw without replacement with ``size // 2`` images of label 0
    and the rest of label 1 (all of a class when it has fewer), so a
    class-sorted test set still gives both classes. ``size`` ``None`` or at
    least ``len(y_test)``: every test image. Depends only on the labels,
    ``size`` and ``seed``: the same images for every run and snapshot."""
    y = np.asarray(y_test).reshape(-1)
    m = len(y)
    if size is None or int(size) >= m:
        return np.arange(m, dtype=np.int64)
    k = int(size)
    pools = [np.flatnonzero(y == 0), np.flatnonzero(y != 0)]
    want0 = min(k // 2, len(pools[0]))
    want1 = min(k - want0, len(pools[1]))
    want0 = min(k - want1, len(pools[0]))  # a small class leaves its share to the other
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), k, m]))
    picked = [rng.choice(pool, want, replace=False) for pool, want in zip(pools, (want0, want1))]
    return np.sort(np.concatenate(picked)).astype(np.int64)
