"""The layout of the kernel job's two HDF5 files (schemas in docs/design.md).

- ``{run}.gram.h5``: ``y_train``, ``y_test`` (uint8), and per snapshot
  ``{snapshot}/{kernel}/train`` (n, n) and ``{snapshot}/{kernel}/test_train``
  (m, n), float32, kernel in ``after`` / ``conjugate``; features rescaled so
  that the mean L2 norm of the train embeddings is 1 (the kernels are
  divided by ``scale**2``); attrs ``scale`` and ``dimension`` on each kernel
  group, the snapshot's attrs (without ``alignment``) on ``{snapshot}``.
- ``{run}.metrics.h5``: ``test_sample_index`` (int64 (k,), the test images of
  the sample); per snapshot and kernel ``invariance/{transform}`` (cosine
  per image of the test sample, float64) and ``spectrum`` (the top
  eigenvalues of the train Gram, float64 descending), kernel attrs
  ``translation, rotation, zoom, swap, effective_rank, target_alignment,
  target_alignment_centred, trace, spectrum_top10_fraction`` and the
  distances ``kernel_distance_init, kernel_distance_prev,
  kernel_distance_final, kernel_velocity`` (set by the kernel job once every
  snapshot is done: :func:`write_evolution`); snapshot attrs
  (``alignment``, ``n_test_sample``, ``diverged``, ...).

A diverged snapshot has ``diverged=True`` and NaN-filled arrays of the usual
shapes (HDF5 fill values: no space on disk).
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from afterkernel.io import set_attrs
from afterkernel.kernels.evolution import DISTANCES, nan_spectrum
from afterkernel.transforms import INVARIANCE_GROUPS, PERTURBATIONS
from afterkernel.vocabulary import KERNELS

ROW_CHUNK = 2048  # rows per HDF5 write / in-place pass over a Gram matrix


def write_labels(gram, metrics, y_train, y_test, sample_index) -> None:
    """The run-level datasets of the Gram file ``gram`` and the metrics file
    ``metrics`` (open HDF5 files)."""
    gram.create_dataset("y_train", data=np.asarray(y_train, np.uint8))
    gram.create_dataset("y_test", data=np.asarray(y_test, np.uint8))
    metrics.create_dataset("test_sample_index", data=sample_index)


class GramFileSink:
    """Sink of the symmetric Gram of ``[train; test]`` (n + m rows), built
    tile by tile (:func:`~afterkernel.kernels.gram.gram_with_conjugate`,
    :func:`~afterkernel.kernels.gram.conjugate_gram`): tiles go straight to
    the datasets ``train`` (n, n) and ``test_train`` (m, n) of the kernel
    group ``group``, so the (n+m)² matrix is never held in memory. Kept in
    memory: the Gram of the test sample (the test images ``sample_index``,
    sorted; (k, k)), the train diagonal (for the scale) and whether every
    value was finite."""

    def __init__(self, group, n: int, m: int, sample_index: np.ndarray):
        self.n, self.m = n, m
        self.sample_rows = n + np.asarray(sample_index, np.int64)  # rows of [train; test]
        k = len(self.sample_rows)
        self.train = group.create_dataset("train", shape=(n, n), dtype="f4")
        self.test_train = group.create_dataset("test_train", shape=(m, n), dtype="f4")
        self.sample = np.zeros((k, k), np.float32)
        self.diag = np.full(n, np.nan)
        self.finite = True
        self.seconds = 0.0  # spent storing tiles

    def put(self, r0: int, c0: int, tile: np.ndarray, mirror: bool) -> None:
        t0 = time.perf_counter()
        self.finite = self.finite and bool(np.isfinite(tile).all())
        self._emit(r0, c0, tile)
        if mirror:
            self._emit(c0, r0, tile.T)
        self.seconds += time.perf_counter() - t0

    def _sample_positions(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions in the sample, rows of [train; test]) of the sample rows in [lo, hi)."""
        a, b = np.searchsorted(self.sample_rows, (lo, hi))
        return np.arange(a, b), self.sample_rows[a:b]

    def _emit(self, r0: int, c0: int, t: np.ndarray) -> None:
        n = self.n
        r1, c1 = r0 + t.shape[0], c0 + t.shape[1]
        b0, b1 = c0, min(c1, n)  # train columns
        if b0 < b1:
            a0, a1 = r0, min(r1, n)
            if a0 < a1:
                self.train[a0:a1, b0:b1] = t[a0 - r0:a1 - r0, b0 - c0:b1 - c0]
                lo, hi = max(a0, b0), min(a1, b1)
                if lo < hi:
                    idx = np.arange(lo, hi)
                    self.diag[lo:hi] = t[idx - r0, idx - c0]
            a0, a1 = max(r0, n), r1
            if a0 < a1:
                self.test_train[a0 - n:a1 - n, b0:b1] = t[a0 - r0:a1 - r0, b0 - c0:b1 - c0]
        pr, rows = self._sample_positions(r0, r1)
        pc, cols = self._sample_positions(c0, c1)
        if len(pr) and len(pc):
            self.sample[np.ix_(pr, pc)] = t[np.ix_(rows - r0, cols - c0)]

    def result(self):
        return self

    def rescale(self, factor: float, keep_train: bool = False) -> np.ndarray | None:
        """Multiply everything written by ``factor`` (row chunks). With
        ``keep_train``, also return the rescaled train Gram (n, n), gathered
        from the chunks this pass reads anyway (no second read of the file)."""
        f = np.float32(factor)
        kept = np.empty(self.train.shape, np.float32) if keep_train else None
        for ds in (self.train, self.test_train):
            for s in range(0, ds.shape[0], ROW_CHUNK):
                rows = slice(s, min(s + ROW_CHUNK, ds.shape[0]))
                # the kept matrix is the chunk's buffer: no second copy
                out = kept[rows] if kept is not None and ds is self.train else None
                ds[rows] = np.multiply(ds[rows], f, out=out)
        self.sample *= f
        return kept


def write_kernel_attrs(group, scale: float, dimension: int) -> None:
    """A kernel group's ``scale`` (mean train embedding norm before
    rescaling) and ``dimension`` (P, or d of h_{L-1})."""
    set_attrs(group, {"scale": float(scale), "dimension": int(dimension)})


def write_snapshot_attrs(gram, root: Mapping[str, Any]) -> None:
    """The snapshot's attrs on its Gram group (``alignment`` is a metric)."""
    set_attrs(gram, {key: v for key, v in root.items() if key != "alignment"})


def write_metrics(metrics, root: Mapping[str, Any],
                  cosines: Mapping[str, Mapping[str, np.ndarray]],
                  per_kernel: Mapping[str, Mapping[str, Any]]) -> None:
    """Fill the metrics group ``metrics`` of one snapshot: ``root`` attrs,
    per kernel the cosines ``{transform: (k,)}`` and the attrs ``per_kernel``
    (its ``spectrum``, if any, as a dataset; distances NaN until
    :func:`write_evolution`)."""
    set_attrs(metrics, dict(root))
    for kernel in KERNELS:
        g = metrics.create_group(kernel)
        inv = g.create_group("invariance")
        for name, values in cosines[kernel].items():
            inv.create_dataset(name, data=np.asarray(values, np.float64))
        attrs = {**dict.fromkeys(DISTANCES, float("nan")), **per_kernel[kernel]}
        spectrum = attrs.pop("spectrum", None)
        if spectrum is not None:
            g.create_dataset("spectrum", data=np.asarray(spectrum, np.float64))
        set_attrs(g, attrs)


def write_evolution(metrics, distances: Mapping[str, Mapping[str, Mapping[str, float]]]) -> None:
    """The distances of :func:`afterkernel.kernels.evolution.run_evolution`
    (snapshot -> kernel -> attrs) onto the kernel groups of the open metrics
    file ``metrics``."""
    for snapshot, per_kernel in distances.items():
        for kernel, attrs in per_kernel.items():
            set_attrs(metrics[snapshot][kernel], dict(attrs))


def _nan_dataset(group, name: str, shape) -> None:
    group.create_dataset(name, shape=tuple(int(d) for d in shape), dtype="f4", fillvalue=np.nan)


def write_diverged(gram, metrics, root: dict, n: int, m: int, k: int,
                   dims: Mapping[str, int]) -> None:
    """Fill the Gram group ``gram`` and metrics group ``metrics`` of a
    diverged snapshot (n train, m test, k sample images; ``dims``: each
    kernel's dimension when known, else -1)."""
    root = {**root, "diverged": True}
    set_attrs(gram, root)
    for kernel in KERNELS:
        g = gram.require_group(kernel)
        for name, shape in (("train", (n, n)), ("test_train", (m, n))):
            if name in g:  # written before the divergence showed
                del g[name]
            _nan_dataset(g, name, shape)
        write_kernel_attrs(g, float("nan"), int(dims.get(kernel, -1)))
    nan = float("nan")
    cos = {kernel: {t: np.full(k, np.nan) for t in PERTURBATIONS} for kernel in KERNELS}
    per_kernel = {kernel: {**{g: nan for g in INVARIANCE_GROUPS}, "effective_rank": nan,
                           "target_alignment": nan, "target_alignment_centred": nan, **nan_spectrum(n)}
                  for kernel in KERNELS}
    write_metrics(metrics, {**root, "alignment": nan, "alignment_centred": nan, "n_test_sample": int(k)}, cos,
                  per_kernel)
