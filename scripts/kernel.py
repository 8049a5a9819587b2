"""Rule ``kernel``: the after kernel and its conjugate projection for the
snapshots of one training run, and their metrics.

One job per run: TensorFlow starts once, and each snapshot the studies need
(``e0`` = the FNTK, ``e1``, ... or ``final``) is one group of the two outputs
(schemas in docs/design.md):

- ``{run}.gram.h5``: ``y_train``, ``y_test``, and per snapshot
  ``{snapshot}/after/train`` (n, n), ``{snapshot}/after/test_train`` (m, n)
  and the same under ``conjugate/``, float32, features rescaled so that the
  mean L2 norm of the train embeddings is 1 (the kernels are divided by
  ``scale**2``; ``scale`` and ``dimension`` are attrs of each group).
- ``{run}.metrics.h5``: ``test_sample_index`` (int64 (k,): the test images
  of the sample, a seeded class-balanced draw shared by every run of the
  problem, ``afterkernel.data.draw_test_sample``); per snapshot and kernel
  ``invariance/{transform}`` (cosine per image of the test sample), attrs
  ``translation, rotation, zoom, swap, effective_rank, target_alignment``;
  snapshot attrs ``alignment`` (after vs conjugate on the test-sample Gram
  matrices) and ``n_test_sample``.

A snapshot that the training did not genuinely reach (the run diverged
before it: ``afterkernel.training.snapshot_reached``) or whose weights or
kernel values are not finite gets groups with ``diverged=True`` and
NaN-filled arrays of the usual shapes (stored as HDF5 fill values: no space
on disk). The snapshots a diverged run reached before diverging are computed
as usual.

Run by Snakemake (``script:`` directive) with ``snakemake.input.training``,
``snakemake.input.data``, ``snakemake.output.gram``, ``snakemake.output.metrics``,
``snakemake.params.snapshots``, ``snakemake.params.kernels`` (``block_size,
jacobian_budget_mb, test_sample``), ``snakemake.threads``, ``snakemake.log``.
Or by hand::

    python scripts/kernel.py --training run.h5 --data results/data/mnist-3v8.h5 \\
        --snapshots e0 e3 --gram run.gram.h5 --metrics run.metrics.h5 --test-sample 1000

TensorFlow runs on a GPU when it sees one (then the Gram matmuls too).
"""

# No `from __future__ import ...` here: Snakemake prepends a preamble to the
# script, and such imports must be the first statement of a file.
import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if (_REPO / "afterkernel" / "__init__.py").is_file() and str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from afterkernel.runtime import setup_logging  # noqa: E402

log = logging.getLogger("kernel")

KERNEL_NAMES = ("after", "conjugate")
ROW_CHUNK = 2048  # rows per HDF5 write / in-place pass over a Gram matrix


class Diverged(RuntimeError):
    """The snapshot's network or kernel is not finite."""


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

class GramFileSink:
    """Destination of the symmetric Gram of ``[train; test]`` (n + m rows),
    built tile by tile (``afterkernel.kernels.gram_with_conjugate`` /
    ``feature_gram``): tiles go straight to the HDF5 datasets ``train`` (n, n)
    and ``test_train`` (m, n) of ``group``, so the (n+m)² matrix is never held
    in memory. Kept in memory: the Gram of the test sample (the test images
    ``sample_index``, sorted; (k, k)), the train diagonal (for the scale) and
    whether every value was finite."""

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

    def rescale(self, factor: float) -> None:
        """Multiply everything written by ``factor`` (row chunks)."""
        f = np.float32(factor)
        for ds in (self.train, self.test_train):
            for s in range(0, ds.shape[0], ROW_CHUNK):
                ds[s:s + ROW_CHUNK] = ds[s:s + ROW_CHUNK] * f
        self.sample *= f


def _nan_dataset(group, name: str, shape) -> None:
    group.create_dataset(name, shape=tuple(int(d) for d in shape), dtype="f4", fillvalue=np.nan)


def _write_metrics(f, root: Mapping[str, Any], cosines: Mapping[str, Mapping[str, np.ndarray]],
                   per_kernel: Mapping[str, Mapping[str, float]]) -> None:
    """Fill the metrics group ``f`` of one snapshot."""
    from afterkernel.io import set_attrs

    set_attrs(f, dict(root))
    for kernel in KERNEL_NAMES:
        g = f.create_group(kernel)
        inv = g.create_group("invariance")
        for name, values in cosines[kernel].items():
            inv.create_dataset(name, data=np.asarray(values, np.float64))
        set_attrs(g, dict(per_kernel[kernel]))


def _write_diverged(fg, fm, root: dict, n: int, m: int, k: int, dims: Mapping[str, int]) -> None:
    """Fill the Gram group ``fg`` and metrics group ``fm`` of a diverged snapshot."""
    from afterkernel.io import set_attrs
    from afterkernel.transforms import INVARIANCE_GROUPS, PERTURBATIONS

    root = {**root, "diverged": True}
    set_attrs(fg, root)
    for kernel in KERNEL_NAMES:
        g = fg.require_group(kernel)
        for name, shape in (("train", (n, n)), ("test_train", (m, n))):
            if name in g:  # written before the divergence showed
                del g[name]
            _nan_dataset(g, name, shape)
        set_attrs(g, {"scale": float("nan"), "dimension": int(dims.get(kernel, -1))})
    nan = float("nan")
    cos = {kernel: {t: np.full(k, np.nan) for t in PERTURBATIONS} for kernel in KERNEL_NAMES}
    per_kernel = {kernel: {**{g: nan for g in INVARIANCE_GROUPS}, "effective_rank": nan,
                           "target_alignment": nan} for kernel in KERNEL_NAMES}
    _write_metrics(fm, {**root, "alignment": nan, "n_test_sample": int(k)}, cos, per_kernel)


def _model_dims(model) -> dict[str, int]:
    return {"after": int(sum(int(np.prod(v.shape)) for v in model.trainable_weights)),
            "conjugate": int(np.prod(model.layers[-1].input.shape[1:]))}


# ----------------------------------------------------------------------------
# the job
# ----------------------------------------------------------------------------

def main(training: str | Path, data: str | Path, gram: str | Path, metrics: str | Path, *,
         snapshots: list[str], block_size: int | None = None, jacobian_budget_mb: float = 1024,
         test_sample: int | None = None, backend: str | None = None) -> dict[str, dict[str, Any]]:
    """Compute and write the Gram and metrics files of the ``snapshots`` of the
    training file ``training`` on the problem file ``data``. Returns each
    snapshot's metrics attrs. TensorFlow should have been configured with
    :func:`afterkernel.runtime.configure_tensorflow` first."""
    from afterkernel.data import draw_test_sample, read_problem
    from afterkernel.io import atomic_h5
    from afterkernel.training import model_from_result, read_training, snapshot_reached

    run = read_training(training)
    problem = read_problem(data)
    attrs = run.attrs
    missing = [s for s in snapshots if s not in run.snapshots]
    if missing:
        raise ValueError(f"{training} has no snapshot(s) {missing}; it has {sorted(run.snapshots)}")
    out = {}
    with atomic_h5(gram) as fg, atomic_h5(metrics) as fm:
        fg.create_dataset("y_train", data=np.asarray(problem.y_train, np.uint8))
        fg.create_dataset("y_test", data=np.asarray(problem.y_test, np.uint8))
        fm.create_dataset("test_sample_index", data=draw_test_sample(problem.y_test, test_sample))
        for snapshot in snapshots:
            root = {"snapshot": snapshot, "epoch": int(run.snapshot_epochs.get(snapshot, -1)),
                    "diverged": False, "n_params": int(attrs.get("n_params", -1)),
                    "architecture": attrs.get("architecture", ""), "problem": attrs.get("problem", "")}
            log.info("kernel job: %s snapshot %s (epoch %s)", training, snapshot, root["epoch"])
            # a diverged run keeps the snapshots it reached before diverging
            reached = snapshot_reached(attrs, run.snapshot_epochs, snapshot)
            model = model_from_result(run, snapshot) if reached else None
            out[snapshot] = run_job(model, problem.x_train, problem.y_train, problem.x_test,
                                    problem.y_test, fg.create_group(snapshot), fm.create_group(snapshot),
                                    root=root, block_size=block_size,
                                    jacobian_budget_mb=jacobian_budget_mb, test_sample=test_sample,
                                    backend=backend)
    return out


def run_job(model, x_train, y_train, x_test, y_test, gram, metrics, *,
            root: Mapping[str, Any] | None = None, block_size: int | None = None,
            jacobian_budget_mb: float = 1024, test_sample: int | None = None,
            backend: str | None = None) -> dict[str, Any]:
    """One snapshot on arrays: ``model`` with the snapshot's weights (``None``:
    the run diverged), float32 NHWC images, uint8 labels, written into the
    HDF5 groups ``gram`` and ``metrics`` (or, given paths, into two new
    files). ``root``: attrs for both (snapshot, epoch, architecture, ...).
    Returns the metrics attrs."""
    from afterkernel.data import draw_test_sample
    from afterkernel.invariances import all_invariances, gram_metrics
    from afterkernel.io import atomic_h5, set_attrs
    from afterkernel.kernels import KernelEngine, feature_gram, feature_scale, gram_with_conjugate

    if isinstance(gram, (str, Path)):
        with atomic_h5(gram) as fg, atomic_h5(metrics) as fm:
            fg.create_dataset("y_train", data=np.asarray(y_train, np.uint8))
            fg.create_dataset("y_test", data=np.asarray(y_test, np.uint8))
            fm.create_dataset("test_sample_index", data=draw_test_sample(y_test, test_sample))
            return run_job(model, x_train, y_train, x_test, y_test, fg, fm, root=root,
                           block_size=block_size, jacobian_budget_mb=jacobian_budget_mb,
                           test_sample=test_sample, backend=backend)

    t_start = time.perf_counter()
    n, m = len(x_train), len(x_test)
    sample = draw_test_sample(y_test, test_sample)
    k = len(sample)
    root = {"diverged": False, **dict(root or {}), "n_test_sample": int(k)}
    log.info("n_train %d, n_test %d, test sample %d, block %s, budget %s MB", n, m, k,
             "auto" if block_size is None else block_size, jacobian_budget_mb)

    dims: dict[str, int] = {}
    diverged = model is None
    if not diverged:
        dims = _model_dims(model)
        if not all(np.isfinite(w).all() for w in model.get_weights()):
            log.warning("the snapshot has non-finite weights: treated as diverged")
            diverged = True
    if diverged:
        log.warning("training run diverged: writing NaN-filled outputs")
        _write_diverged(gram, metrics, root, n, m, k, dims)
        return {**root, "diverged": True}

    engine = KernelEngine(model, backend=backend)
    root["n_params"] = engine.n_params
    try:
        # One symmetric Gram over [train; test]: train, test×train and the
        # test-sample Gram in one pass, and the conjugate features for free;
        # tiles go straight to the file (no (n+m)² matrix in memory).
        z = np.concatenate([x_train, x_test]).astype(np.float32, copy=False)
        after = GramFileSink(gram.require_group("after"), n, m, sample)
        _, H = gram_with_conjugate(engine, z, block_size=block_size,
                                   jacobian_budget_mb=jacobian_budget_mb, sink=after)
        del z
        if not after.finite or not np.isfinite(H).all():
            raise Diverged("non-finite after kernel")
        scale = feature_scale(after.diag)
        if not np.isfinite(scale) or scale <= 0:
            raise Diverged(f"after kernel scale {scale}")
        t0 = time.perf_counter()
        after.rescale(1.0 / scale**2)
        set_attrs(gram["after"], {"scale": float(scale), "dimension": int(engine.n_params)})
        log.info("after kernel: scale %.6g; tiles stored in %.1f s, rescaled on disk in %.1f s",
                 scale, after.seconds, time.perf_counter() - t0)
        sample_grams = {"after": after.sample}

        c_scale = float(np.mean(np.linalg.norm(H[:n].astype(np.float64), axis=1)))
        if not np.isfinite(c_scale) or c_scale <= 0:
            raise Diverged(f"conjugate scale {c_scale}")
        H *= np.float32(1.0 / c_scale)
        conj = GramFileSink(gram.require_group("conjugate"), n, m, sample)
        feature_gram(H, sink=conj)
        del H
        set_attrs(gram["conjugate"], {"scale": float(c_scale), "dimension": int(dims["conjugate"])})
        sample_grams["conjugate"] = conj.sample

        cos, inv = all_invariances(model, x_test[sample], block_size=block_size,
                                   jacobian_budget_mb=jacobian_budget_mb, engine=engine)
        gm = gram_metrics(sample_grams["after"], sample_grams["conjugate"], y_test[sample])
        root["alignment"] = gm["alignment"]
        root["seconds"] = time.perf_counter() - t_start
        set_attrs(gram, {key: v for key, v in root.items() if key != "alignment"})
        per_kernel = {kern: {**inv[kern], **gm[kern]} for kern in KERNEL_NAMES}
        _write_metrics(metrics, root, cos, per_kernel)
    except Diverged as e:
        log.warning("%s: treated as diverged, writing NaN-filled outputs", e)
        _write_diverged(gram, metrics, root, n, m, k, dims)
        return {**root, "diverged": True}
    log.info("kernel job done in %.1f s: alignment %.4f, after %s, conjugate %s",
             time.perf_counter() - t_start, root["alignment"],
             {a: round(b, 4) for a, b in per_kernel["after"].items()},
             {a: round(b, 4) for a, b in per_kernel["conjugate"].items()})
    return root


# ----------------------------------------------------------------------------
# entry points
# ----------------------------------------------------------------------------


def settings_from_kernels(kernels: Mapping[str, Any] | None) -> dict[str, Any]:
    """Keyword arguments of :func:`main` from the config's ``kernels`` mapping."""
    kernels = dict(kernels or {})
    out: dict[str, Any] = {}
    if kernels.get("block_size") is not None:
        out["block_size"] = int(kernels["block_size"])
    if kernels.get("jacobian_budget_mb") is not None:
        out["jacobian_budget_mb"] = float(kernels["jacobian_budget_mb"])
    ts = kernels.get("test_sample")
    out["test_sample"] = None if ts is None else int(ts)
    return out


def _from_snakemake(smk: Any) -> None:
    setup_logging(smk.log[0] if len(smk.log) else None)
    try:
        from afterkernel.runtime import configure_tensorflow

        configure_tensorflow(smk.threads)
        main(smk.input.training, smk.input.data, smk.output.gram, smk.output.metrics,
             snapshots=list(smk.params.snapshots), **settings_from_kernels(smk.params.kernels))
    except Exception:
        log.exception("kernel failed")
        raise


def _cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="After kernel / conjugate Gram matrices and metrics "
                                             "of one training snapshot.")
    ap.add_argument("--training", required=True, type=Path, help="training .h5 file (rule train)")
    ap.add_argument("--data", required=True, type=Path, help="problem .h5 file (rule prepare_data)")
    ap.add_argument("--snapshots", required=True, nargs="+", help='snapshot names, e.g. e0 e3 or final')
    ap.add_argument("--gram", required=True, type=Path, help="output Gram .h5 file")
    ap.add_argument("--metrics", required=True, type=Path, help="output metrics .h5 file")
    ap.add_argument("--block-size", type=int, default=None,
                    help="examples per gradient block (default: as many as a quarter of the budget holds)")
    ap.add_argument("--jacobian-budget-mb", type=float, default=1024)
    ap.add_argument("--test-sample", type=int, default=None, help="first N test images (default all)")
    ap.add_argument("--backend", choices=["numpy", "tensorflow"], default=None,
                    help="Gram matmuls (default: tensorflow if a GPU is visible, else numpy)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log", default=None, help="also log to this file")
    args = ap.parse_args(argv)
    setup_logging(args.log)
    from afterkernel.runtime import configure_tensorflow

    configure_tensorflow(args.threads)
    try:
        main(args.training, args.data, args.gram, args.metrics, snapshots=args.snapshots,
             block_size=args.block_size, jacobian_budget_mb=args.jacobian_budget_mb,
             test_sample=args.test_sample, backend=args.backend)
    except Exception:
        log.exception("kernel failed")
        return 1
    return 0


if __name__ == "__main__" or "snakemake" in globals():  # run by Snakemake's script: directive
    if "snakemake" in globals():
        _from_snakemake(snakemake)  # type: ignore[name-defined]  # noqa: F821
    else:
        sys.exit(_cli())
