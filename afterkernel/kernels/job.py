"""The kernel job (rule ``kernel``): the after kernel and its conjugate
projection for the snapshots of one training run, and their metrics
(paper §2-3), written into the run's Gram and metrics files
(:mod:`~afterkernel.kernels.files`).

One job per run: TensorFlow starts once, and each snapshot the studies need
(``e0`` = the FNTK, ``e1``, ... or ``final``) is one group of both files.
The metrics are measured on a test sample: a seeded class-balanced draw
shared by every run of the problem (``afterkernel.data.draw_test_sample``).

A snapshot that the training did not genuinely reach (the run diverged
before it: ``afterkernel.training.snapshot_reached``) or whose weights or
kernel values are not finite is written as diverged (NaN-filled). The
snapshots a diverged run reached before diverging are computed as usual.
TensorFlow should have been configured
(:func:`afterkernel.runtime.configure_tensorflow`) before the job runs.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from afterkernel.kernels.invariances import all_invariances
from afterkernel.io import atomic_h5
from afterkernel.kernels.evolution import run_evolution, sgd_steps_per_epoch, spectrum_metrics
from afterkernel.kernels.metrics import gram_metrics
from afterkernel.kernels.diagonals import feature_scale
from afterkernel.kernels.engine import DEFAULT_BUDGET_MB, KernelEngine
from afterkernel.kernels.files import (GramFileSink, write_diverged, write_kernel_attrs,
                                       write_evolution, write_labels, write_metrics,
                                       write_snapshot_attrs)
from afterkernel.kernels.gram import conjugate_gram, gram_with_conjugate
from afterkernel.vocabulary import AFTER, CONJUGATE, KERNELS

log = logging.getLogger(__name__)


class Diverged(RuntimeError):
    """The snapshot's network or kernel is not finite."""


def settings_from_kernels(kernels: Mapping[str, Any] | None) -> dict[str, Any]:
    """Keyword arguments of :func:`kernel_job` from the config's ``kernels`` mapping."""
    kernels = dict(kernels or {})
    out: dict[str, Any] = {}
    if kernels.get("block_size") is not None:
        out["block_size"] = int(kernels["block_size"])
    if kernels.get("jacobian_budget_mb") is not None:
        out["jacobian_budget_mb"] = float(kernels["jacobian_budget_mb"])
    ts = kernels.get("test_sample")
    out["test_sample"] = None if ts is None else int(ts)
    return out


def kernel_job(training: str | Path, data: str | Path, gram: str | Path, metrics: str | Path, *,
               snapshots: list[str], block_size: int | None = None,
               jacobian_budget_mb: float = DEFAULT_BUDGET_MB, test_sample: int | None = None,
               backend: str | None = None, evolution: bool = True) -> dict[str, dict[str, Any]]:
    """Compute and write the Gram and metrics files of the ``snapshots`` of the
    training file ``training`` on the problem file ``data``. Returns each
    snapshot's metrics attrs. Once every snapshot is done, the kernel
    distances between them (:func:`~afterkernel.kernels.evolution.run_evolution`,
    on the test-sample Grams kept in memory) go into the metrics file.
    ``evolution=False`` leaves out the distances and spectra: only to
    measure their cost (``benchmarks/bench_evolution.py``)."""
    from afterkernel.data import draw_test_sample, read_problem
    from afterkernel.training import model_from_result, read_training, snapshot_reached

    run = read_training(training)
    problem = read_problem(data)
    attrs = run.attrs
    missing = [s for s in snapshots if s not in run.snapshots]
    if missing:
        raise ValueError(f"{training} has no snapshot(s) {missing}; it has {sorted(run.snapshots)}")
    out: dict[str, dict[str, Any]] = {}
    samples: dict[str, dict[str, np.ndarray]] = {}  # snapshot -> kernel -> test-sample Gram
    with atomic_h5(gram) as fg, atomic_h5(metrics) as fm:
        write_labels(fg, fm, problem.y_train, problem.y_test,
                     draw_test_sample(problem.y_test, test_sample))
        for snapshot in snapshots:
            root = {"snapshot": snapshot, "epoch": int(run.snapshot_epochs.get(snapshot, -1)),
                    "diverged": False, "n_params": int(attrs.get("n_params", -1)),
                    "architecture": attrs.get("architecture", ""), "problem": attrs.get("problem", "")}
            log.info("kernel job: %s snapshot %s (epoch %s)", training, snapshot, root["epoch"])
            # a diverged run keeps the snapshots it reached before diverging
            reached = snapshot_reached(attrs, run.snapshot_epochs, snapshot)
            model = model_from_result(run, snapshot) if reached else None
            out[snapshot] = snapshot_kernels(
                model, problem.x_train, problem.y_train, problem.x_test, problem.y_test,
                fg.create_group(snapshot), fm.create_group(snapshot), root=root,
                block_size=block_size, jacobian_budget_mb=jacobian_budget_mb,
                test_sample=test_sample, backend=backend, evolution=evolution,
                samples=samples.setdefault(snapshot, {}))
        if evolution:  # distances to the last snapshot need all of them: written before the file closes
            steps = sgd_steps_per_epoch(len(problem.y_train), int(attrs.get("batch_size", 32)))
            write_evolution(fm, run_evolution(snapshots, samples, KERNELS, steps_per_epoch=steps))
    return out


def _model_dims(model) -> dict[str, int]:
    return {AFTER: int(sum(int(np.prod(v.shape)) for v in model.trainable_weights)),
            CONJUGATE: int(np.prod(model.layers[-1].input.shape[1:]))}


def snapshot_kernels(model, x_train, y_train, x_test, y_test, gram, metrics, *,
                     root: Mapping[str, Any] | None = None, block_size: int | None = None,
                     jacobian_budget_mb: float = DEFAULT_BUDGET_MB, test_sample: int | None = None,
                     backend: str | None = None, evolution: bool = True,
                     samples: dict | None = None) -> dict[str, Any]:
    """One snapshot on arrays: ``model`` with the snapshot's weights (None:
    the run diverged before it), float32 NHWC images, uint8 labels, written
    into the HDF5 groups ``gram`` and ``metrics`` (or, given paths, into two
    new files). ``root``: attrs for both (snapshot, epoch, architecture, ...).
    ``evolution``: also the train Grams' spectra. ``samples``, if given,
    receives ``{kernel: test-sample Gram (k, k)}`` (nothing when diverged).
    Returns the metrics attrs."""
    from afterkernel.data import draw_test_sample

    if isinstance(gram, (str, Path)):
        with atomic_h5(gram) as fg, atomic_h5(metrics) as fm:
            write_labels(fg, fm, y_train, y_test, draw_test_sample(y_test, test_sample))
            return snapshot_kernels(model, x_train, y_train, x_test, y_test, fg, fm, root=root,
                                    block_size=block_size, jacobian_budget_mb=jacobian_budget_mb,
                                    test_sample=test_sample, backend=backend, evolution=evolution,
                                    samples=samples)
    t_start = time.perf_counter()
    n, m = len(x_train), len(x_test)
    sample = draw_test_sample(y_test, test_sample)
    k = len(sample)
    root = {"diverged": False, **dict(root or {}), "n_test_sample": int(k)}
    log.info("n_train %d, n_test %d, test sample %d, block %s, budget %s MB", n, m, k,
             "auto" if block_size is None else block_size, jacobian_budget_mb)
    dims = {} if model is None else _model_dims(model)
    if model is not None and not all(np.isfinite(w).all() for w in model.get_weights()):
        log.warning("the snapshot has non-finite weights: treated as diverged")
        model = None
    if model is None:
        log.warning("training run diverged: writing NaN-filled outputs")
        write_diverged(gram, metrics, root, n, m, k, dims)
        return {**root, "diverged": True}
    engine = KernelEngine(model, backend=backend)
    root["n_params"] = engine.n_params
    try:
        H, after_sample, after_train = _after_kernel(engine, gram, x_train, x_test, sample, block_size,
                                                     jacobian_budget_mb, keep_train=evolution)
        spectra = {}
        if evolution:
            # now, while nothing else large is held; the conjugate kernel's
            # exactly from its (d, d) feature Gram
            spectra[AFTER] = _spectrum(AFTER, G=after_train)
            del after_train
        conjugate_sample = _conjugate_kernel(gram, H, n, m, sample, dims[CONJUGATE])
        if evolution:
            spectra[CONJUGATE] = _spectrum(CONJUGATE, features=H[:n])
        del H
        cos, inv = all_invariances(model, x_test[sample], block_size=block_size,
                                   jacobian_budget_mb=jacobian_budget_mb, engine=engine)
        gm = gram_metrics(after_sample, conjugate_sample, y_test[sample])
        root["alignment"], root["alignment_centred"] = gm["alignment"], gm["alignment_centred"]
        root["seconds"] = time.perf_counter() - t_start
        write_snapshot_attrs(gram, root)
        per_kernel = {kern: {**inv[kern], **gm[kern], **spectra.get(kern, {})} for kern in KERNELS}
        write_metrics(metrics, root, cos, per_kernel)
        if samples is not None:
            samples.update({AFTER: after_sample, CONJUGATE: conjugate_sample})
    except Diverged as e:
        log.warning("%s: treated as diverged, writing NaN-filled outputs", e)
        write_diverged(gram, metrics, root, n, m, k, dims)
        return {**root, "diverged": True}
    log.info("kernel job done in %.1f s: alignment %.4f, after %s, conjugate %s",
             time.perf_counter() - t_start, root["alignment"],
             {a: round(b, 4) for a, b in per_kernel[AFTER].items() if np.ndim(b) == 0},
             {a: round(b, 4) for a, b in per_kernel[CONJUGATE].items() if np.ndim(b) == 0})
    return root


def _spectrum(kernel: str, **source) -> dict[str, Any]:
    """:func:`~afterkernel.kernels.evolution.spectrum_metrics` of the kernel's
    train Gram ``G`` or of its ``features``."""
    t0 = time.perf_counter()
    out = spectrum_metrics(**source)
    log.info("%s kernel: top %d eigenvalues of the train Gram in %.2f s, top-10 fraction %.4f", kernel,
             len(out["spectrum"]), time.perf_counter() - t0, out["spectrum_top10_fraction"])
    return out


def _after_kernel(engine: KernelEngine, gram, x_train, x_test, sample, block_size,
                  jacobian_budget_mb, keep_train: bool = False):
    """The after-kernel Gram of [train; test] into ``gram/after``, scaled to
    a mean train embedding norm of 1 (paper §2). Returns the conjugate
    features H (n + m, d) of the same passes, the test-sample Gram and, with
    ``keep_train``, the scaled train Gram (n, n) (else None)."""
    n, m = len(x_train), len(x_test)
    # One symmetric Gram over [train; test]: train, test×train and the
    # test-sample Gram in one pass, and the conjugate features for free;
    # tiles go straight to the file (no (n+m)² matrix in memory).
    z = np.concatenate([x_train, x_test]).astype(np.float32, copy=False)
    after = GramFileSink(gram.require_group(AFTER), n, m, sample)
    _, H = gram_with_conjugate(engine, z, block_size=block_size,
                               jacobian_budget_mb=jacobian_budget_mb, sink=after)
    del z
    if not after.finite or not np.isfinite(H).all():
        raise Diverged("non-finite after kernel")
    scale = feature_scale(after.diag)
    if not np.isfinite(scale) or scale <= 0:
        raise Diverged(f"after kernel scale {scale}")
    t0 = time.perf_counter()
    train = after.rescale(1.0 / scale**2, keep_train=keep_train)
    write_kernel_attrs(gram[AFTER], scale, engine.n_params)
    log.info("after kernel: scale %.6g; tiles stored in %.1f s, rescaled on disk in %.1f s",
             scale, after.seconds, time.perf_counter() - t0)
    return H, after.sample, train


def _conjugate_kernel(gram, H: np.ndarray, n: int, m: int, sample, dimension: int) -> np.ndarray:
    """The conjugate-projection Gram of the features H (scaled in place to a
    mean train norm of 1) into ``gram/conjugate``; returns the test-sample Gram."""
    c_scale = float(np.mean(np.linalg.norm(H[:n].astype(np.float64), axis=1)))
    if not np.isfinite(c_scale) or c_scale <= 0:
        raise Diverged(f"conjugate scale {c_scale}")
    H *= np.float32(1.0 / c_scale)
    conj = GramFileSink(gram.require_group(CONJUGATE), n, m, sample)
    conjugate_gram(H, sink=conj)
    write_kernel_attrs(gram[CONJUGATE], c_scale, dimension)
    return conj.sample
