"""How the kernel moves during training (beyond the paper): kernel distance
and velocity between snapshots (Fort et al. 2020, "Deep learning versus
kernel learning"), the top of the train Gram's spectrum and the centred
kernel-target alignment (Baratin et al. 2021, "Implicit regularization via
neural feature alignment").

- Kernel distance d(K₁, K₂) = 1 − <K₁,K₂>_F / (‖K₁‖_F ‖K₂‖_F): 0 for
  proportional kernels, 1 for orthogonal ones; measured on the test-sample
  Gram matrices (k, k) of a run's snapshots.
- Kernel velocity: the distance between consecutive snapshots divided by the
  epochs between them.
- Spectrum: the top eigenvalues of the (n, n) train Gram by Lanczos
  (``scipy.sparse.linalg.eigsh``) with a fixed start vector, so the same Gram
  gives the same numbers; and the fraction of the trace the top 10 hold.

The centred kernel-target alignment is with the other alignments in
:mod:`afterkernel.kernel_metrics`.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from afterkernel.kernel_metrics import kernel_alignment
from afterkernel.vocabulary import snapshot_name, snapshot_order

SPECTRUM_SIZE = 50  # eigenvalues kept per snapshot and kernel
TOP_FRACTION = 10  # spectrum_top10_fraction: the top 10 eigenvalues' share of the trace
DISTANCES = ("kernel_distance_init", "kernel_distance_prev", "kernel_distance_final", "kernel_velocity")


def kernel_distance(K1, K2) -> float:
    """1 − uncentred kernel alignment of two Gram matrices of the same examples
    (Fort et al. 2020); NaN when either is missing (None) or not finite."""
    if K1 is None or K2 is None:
        return math.nan
    return 1.0 - kernel_alignment(K1, K2)


def top_eigenvalues(G, k: int = SPECTRUM_SIZE) -> np.ndarray:
    """The ``min(k, n-1)`` largest eigenvalues of the symmetric (n, n) ``G``,
    float64, descending. Lanczos on float32 products (no float64 copy, no
    dense eigendecomposition of a large matrix); a seeded start vector makes
    the result deterministic. Small matrices (n ≤ 2k + 1, where Lanczos has
    no room for its basis) go to ``numpy.linalg.eigvalsh``."""
    G = np.asarray(G)
    n = G.shape[0]
    k = min(k, n - 1)
    if k < 1:
        return np.full(max(k, 0), np.nan)
    if n <= 2 * k + 1:
        return np.linalg.eigvalsh(np.asarray(G, np.float64))[::-1][:k].copy()
    from scipy.sparse.linalg import LinearOperator, eigsh

    G32 = np.asarray(G, np.float32)
    op = LinearOperator((n, n), dtype=np.float64,
                        matvec=lambda v: (G32 @ np.asarray(v, np.float32).ravel()).astype(np.float64))
    v0 = np.random.default_rng(0).standard_normal(n)
    values = eigsh(op, k=k, which="LA", return_eigenvectors=False, v0=v0, tol=1e-10)
    return np.sort(values)[::-1].astype(np.float64)


def spectrum_metrics(G, k: int = SPECTRUM_SIZE) -> dict:
    """``spectrum`` (top eigenvalues, descending), ``trace`` and
    ``spectrum_top10_fraction`` (sum of the top 10 / trace) of the train Gram."""
    spectrum = top_eigenvalues(G, k)
    trace = float(np.trace(np.asarray(G, np.float64)))
    return {"spectrum": spectrum, "trace": trace,
            "spectrum_top10_fraction": float(np.sum(spectrum[:TOP_FRACTION]) / trace)}


def nan_spectrum(n: int, k: int = SPECTRUM_SIZE) -> dict:
    """:func:`spectrum_metrics` of a diverged snapshot with n train images."""
    return {"spectrum": np.full(max(min(k, n - 1), 0), np.nan), "trace": math.nan,
            "spectrum_top10_fraction": math.nan}


def evolution(epochs: Sequence[int], grams: Sequence[np.ndarray | None],
              initial: int | None) -> list[dict[str, float]]:
    """The distances of each snapshot of one run and kernel: to the FNTK
    (snapshot index ``initial``, None when the run has none), to the previous
    and the last snapshot, and the velocity from the previous one.
    ``epochs`` (ascending) and ``grams`` (test-sample Grams, None where
    diverged) are in snapshot order. NaN where a reference is absent or
    diverged (the first snapshot has no previous one)."""
    last = grams[-1] if grams else None
    init = grams[initial] if initial is not None else None
    out = []
    for i, (epoch, G) in enumerate(zip(epochs, grams)):
        prev = kernel_distance(grams[i - 1], G) if i else math.nan
        step = epoch - epochs[i - 1] if i else 0
        out.append({"kernel_distance_init": kernel_distance(init, G) if initial is not None else math.nan,
                    "kernel_distance_prev": prev,
                    "kernel_distance_final": kernel_distance(last, G),
                    "kernel_velocity": prev / step if step > 0 else math.nan})
    return out


def run_evolution(snapshots: Sequence[str], grams: Mapping[str, Mapping[str, np.ndarray | None]],
                  kernels: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`evolution` of every kernel of one run: ``snapshots`` its
    snapshot names (``e{epoch}``, or ``final`` alone in the learning-rate
    schedule), ``grams`` name -> kernel -> test-sample Gram (None: diverged).
    Snapshots are taken in epoch order; the FNTK is ``e0`` (a run without it
    has NaN distances to the FNTK; ``final`` alone has no previous snapshot).
    Returns snapshot -> kernel -> distances."""
    names = sorted(snapshots, key=snapshot_order)
    epochs = [snapshot_order(s) for s in names]
    initial = names.index(snapshot_name(0)) if snapshot_name(0) in names else None
    out: dict[str, dict[str, dict[str, float]]] = {s: {} for s in names}
    for kernel in kernels:
        rows = evolution(epochs, [grams[s].get(kernel) for s in names], initial)
        for s, row in zip(names, rows):
            out[s][kernel] = row
    return out
