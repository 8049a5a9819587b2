"""The seeded draws of the data layer: the test sample on which a run's kernel
metrics are measured (paper §2) and the per-class caps of a problem
(``data.max_*_per_class``, ``data.subset_seed``)."""

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


#: default seed of the per-class caps (config key ``data.subset_seed``)
SUBSET_SEED = 0
_SPLIT_IDS = {"train": 0, "test": 1}


def draw_per_class(y: np.ndarray, classes, cap: int | None, seed: int = SUBSET_SEED,
                   split: str = "train") -> np.ndarray:
    """Row numbers (sorted, int64) of at most ``cap`` images of each class of
    ``classes`` in the labels ``y``, drawn at random without replacement from
    the whole split and kept in their original order: the first ``cap`` of a
    permutation of the class's rows made by ``numpy.random.default_rng``
    seeded with ``(seed, split, class)``. ``cap`` ``None`` (or at least the
    class's count) keeps every image of the class.

    The draw of a class depends only on ``seed``, ``split``, the class label
    and the class's rows, not on the other class of a problem: ``mnist-3v8``
    and ``mnist-3v5`` (or ``mnist-8v3``) get the same images of digit 3, and a
    smaller cap with the same seed keeps a subset of a larger one's images.
    """
    y = np.asarray(y).reshape(-1)
    picked = []
    for c in classes:
        rows = np.flatnonzero(y == c)
        if cap is not None and int(cap) < len(rows):
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SPLIT_IDS[split], int(c)]))
            rows = rows[rng.permutation(len(rows))[: int(cap)]]
        picked.append(rows)
    return np.sort(np.concatenate(picked)).astype(np.int64) if picked else np.zeros(0, np.int64)
