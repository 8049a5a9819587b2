"""How the kernel moves during training (beyond the paper): kernel distance
and velocity between snapshots (Fort et al. 2020, "Deep learning versus
kernel learning"), the top of the train Gram's spectrum and the centred
kernel-target alignment (Baratin et al. 2021, "Implicit regularization via
neural feature alignment").

- Kernel distance d(K₁, K₂) = 1 − <K₁,K₂>_F / (‖K₁‖_F ‖K₂‖_F): 0 for
  proportional kernels, 1 for orthogonal ones; measured on the test-sample
  Gram matrices (k, k) of a run's snapshots.
- Kernel velocity (Fort et al.'s): the angle arccos(1 − d) between consecutive
  snapshots' kernels per SGD step between them (1 − cos grows like the
  angle squared, so only the angle is comparable across gaps).
- Spectrum: the top eigenvalues of the (n, n) train Gram, by block Krylov
  with a seeded start block (the same Gram gives the same numbers), or
  exactly from the (d, d) feature Gram for the conjugate kernel; and the
  fraction of the trace the top 10 hold.

The centred kernel-target alignment is with the other alignments in
:mod:`afterkernel.kernels.metrics`.
"""

from __future__ import annotations

import logging
import math
from typing import Mapping, Sequence

import numpy as np
from scipy.linalg import solve_triangular

from afterkernel.kernels.metrics import kernel_alignment
from afterkernel.vocabulary import snapshot_name, snapshot_order

log = logging.getLogger(__name__)

SPECTRUM_SIZE = 50  # eigenvalues kept per snapshot and kernel
TOP_FRACTION = 10  # spectrum_top10_fraction: the top 10 eigenvalues' share of the trace
KRYLOV_BLOCK = 64  # columns per step of the block Krylov spectrum (at least k)
KRYLOV_MAX_BLOCKS = 8  # then ARPACK takes over (the basis and G @ basis: 110 MB at n = 12,000)
FEATURE_EXACT_WIDTH = 1024  # conjugate features up to this: exact eigenvalues from the d x d Gram
SPECTRUM_RTOL = 1e-2  # residual test of each eigenvalue: relative to itself ...
SPECTRUM_ATOL = 1e-6  # ... or to the largest (float32 products go no further)
DISTANCES = ("kernel_distance_init", "kernel_distance_prev", "kernel_distance_final", "kernel_velocity")


def kernel_distance(K1, K2) -> float:
    """1 − uncentred kernel alignment of two Gram matrices of the same examples
    (Fort et al. 2020); NaN when either is missing (None) or not finite."""
    if K1 is None or K2 is None:
        return math.nan
    return 1.0 - kernel_alignment(K1, K2)


def top_eigenvalues(G, k: int = SPECTRUM_SIZE, *, block: int = KRYLOV_BLOCK,
                    max_blocks: int = KRYLOV_MAX_BLOCKS) -> np.ndarray:
    """The ``min(k, n-1)`` largest eigenvalues of the symmetric PSD (n, n)
    ``G``, float64, descending.

    Randomised block Krylov (Rayleigh-Ritz on span{Ω, GΩ, G²Ω, ...}, Ω an
    (n, ``block``) seeded Gaussian, so the same Gram gives the same numbers):
    each step is one float32 matrix product over G with ``block`` columns,
    compute-bound, where single-vector Lanczos reads all of G per vector. It
    stops when every Ritz pair's residual ‖G u − θ u‖ is at most
    :data:`SPECTRUM_RTOL` θ or :data:`SPECTRUM_ATOL` θ₁ (the float32 floor),
    which bounds each eigenvalue's error by the same amount (the true error
    is of order residual²/gap, far smaller). No float64 copy of G, no dense
    eigendecomposition of a large matrix: small matrices (n ≤ 4 ``block``)
    go to ``numpy.linalg.eigvalsh``, and a Krylov space of ``max_blocks``
    blocks that has not converged hands over to ARPACK's Lanczos."""
    G = np.asarray(G)
    n = G.shape[0]
    k = min(k, n - 1)
    if k < 1:
        return np.full(max(k, 0), np.nan)
    if n <= 4 * max(block, k):
        return np.linalg.eigvalsh(np.asarray(G, np.float64))[::-1][:k].copy()
    G32 = np.asarray(G, np.float32)
    return _krylov_then_lanczos(lambda q: (q.T @ G32).T, n, k, block, max_blocks)  # G symmetric: this order is faster


def _krylov_then_lanczos(product, n: int, k: int, block: int, max_blocks: int) -> np.ndarray:
    """:func:`_block_krylov`, and ARPACK where it does not converge;
    ``product(q)`` is G q for a C-ordered float32 (n, b) block q."""
    values = _block_krylov(product, n, k, max(block, k), max_blocks)
    return values if values is not None else _lanczos(product, n, k)


def _block_krylov(product, n: int, k: int, b: int, max_blocks: int) -> np.ndarray | None:
    """Top-k Ritz values of :func:`top_eigenvalues`' Krylov space, or None when
    ``max_blocks`` blocks (or n columns) do not meet the residual test."""
    width = min(b * (max_blocks + 1), n)
    # Column-major, so that the leading columns are one contiguous block.
    Q = np.empty((n, width), order="F")  # orthonormal basis
    P = np.empty((n, width), order="F")  # G @ Q: the Rayleigh quotient then costs no further pass over G
    T = np.zeros((width, width))
    q = _orthonormal(np.random.default_rng(0).standard_normal((n, b)))
    j = 0
    while q is not None and j + b <= width:
        Q[:, j:j + b] = q
        P[:, j:j + b] = product(np.ascontiguousarray(q, np.float32))
        T[:j + b, j:j + b] = Q[:, :j + b].T @ P[:, j:j + b]
        T[j:j + b, :j] = T[:j, j:j + b].T
        j += b
        theta, Y = np.linalg.eigh((T[:j, :j] + T[:j, :j].T) / 2)
        theta, Y = theta[::-1][:k], Y[:, ::-1][:, :k]
        residual = np.linalg.norm(P[:, :j] @ Y - (Q[:, :j] @ Y) * theta, axis=0)
        if np.all(residual <= np.maximum(SPECTRUM_RTOL * theta, SPECTRUM_ATOL * theta[0])):
            log.debug("top %d eigenvalues: Krylov space of %d columns", k, j)
            return theta.copy()
        w = P[:, j - b:j] - Q[:, :j] @ (Q[:, :j].T @ P[:, j - b:j])
        w -= Q[:, :j] @ (Q[:, :j].T @ w)  # twice is enough (Giraud et al. 2005)
        q = _orthonormal(w)
    log.warning("top %d eigenvalues: no convergence in a Krylov space of %d columns; using ARPACK", k, j)
    return None


def _orthonormal(w: np.ndarray) -> np.ndarray | None:
    """An orthonormal basis of the columns of ``w`` (n, b) by Cholesky QR,
    twice (CholQR2: as accurate as Householder for well-conditioned blocks,
    and one matrix product instead of b reflections); None when the block
    is numerically rank-deficient (the Krylov space is exhausted)."""
    for _ in range(2):
        try:
            R = np.linalg.cholesky(w.T @ w).T
        except np.linalg.LinAlgError:
            return None
        w = w @ solve_triangular(R, np.eye(len(R)), check_finite=False)  # w R^-1: one (n, b) product
    return np.asfortranarray(w)


def _lanczos(product, n: int, k: int) -> np.ndarray:
    """ARPACK's implicitly restarted Lanczos on float32 products (fixed start vector)."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    op = LinearOperator((n, n), dtype=np.float64,
                        matvec=lambda v: product(np.asarray(v, np.float32).reshape(n, 1)).astype(np.float64).ravel())
    v0 = np.random.default_rng(0).standard_normal(n)
    values = eigsh(op, k=k, which="LA", return_eigenvectors=False, v0=v0, tol=SPECTRUM_ATOL)
    return np.sort(values)[::-1].astype(np.float64)


def feature_eigenvalues(H, k: int = SPECTRUM_SIZE, *, exact_width: int = FEATURE_EXACT_WIDTH) -> np.ndarray:
    """The ``min(k, n-1)`` largest eigenvalues of the Gram H Hᵀ of the (n, d)
    features ``H`` (the conjugate kernel, §2), float64, descending. Up to
    ``exact_width`` features (or n): exact, from the smaller of Hᵀ H (d, d)
    and H Hᵀ (n, n) (the same non-zero eigenvalues; the rest are 0). Wider
    (the conjugate kernels of convolutional networks, d in the thousands):
    :func:`top_eigenvalues`' block Krylov on the products H (Hᵀ q), 4 n d
    flops per column, no n × n or d × d matrix."""
    n, d = np.shape(H)
    k = min(k, n - 1)
    if k < 1:
        return np.full(max(k, 0), np.nan)
    if min(n, d) <= exact_width:
        H = np.asarray(H, np.float64)
        values = np.clip(np.linalg.eigvalsh(H.T @ H if d < n else H @ H.T)[::-1], 0.0, None)
        return np.concatenate([values, np.zeros(max(0, k - len(values)))])[:k]
    H32 = np.asarray(H, np.float32)
    return _krylov_then_lanczos(lambda q: H32 @ (H32.T @ q), n, k, KRYLOV_BLOCK, KRYLOV_MAX_BLOCKS)


def spectrum_metrics(G=None, k: int = SPECTRUM_SIZE, *, features=None) -> dict:
    """``spectrum`` (top eigenvalues, descending), ``trace`` and
    ``spectrum_top10_fraction`` (sum of the top 10 / trace) of the train Gram
    ``G`` (n, n), or of the Gram of ``features`` (n, d) without forming it."""
    if features is not None:
        spectrum = feature_eigenvalues(features, k)
        trace = float(np.sum(np.square(np.asarray(features, np.float64))))
    else:
        spectrum = top_eigenvalues(G, k)
        trace = float(np.trace(G, dtype=np.float64))  # the diagonal only: no float64 copy of G
    return {"spectrum": spectrum, "trace": trace,
            "spectrum_top10_fraction": float(np.sum(spectrum[:TOP_FRACTION]) / trace)}


def nan_spectrum(n: int, k: int = SPECTRUM_SIZE) -> dict:
    """:func:`spectrum_metrics` of a diverged snapshot with n train images."""
    return {"spectrum": np.full(max(min(k, n - 1), 0), np.nan), "trace": math.nan,
            "spectrum_top10_fraction": math.nan}


def sgd_steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Minibatches in one epoch (the last one may be smaller)."""
    return -(-int(n_train) // int(batch_size))


def kernel_angle(distance: float) -> float:
    """The angle (radians) between two kernels at kernel distance ``distance``."""
    return math.acos(min(1.0, max(-1.0, 1.0 - distance))) if math.isfinite(distance) else math.nan


def evolution(epochs: Sequence[int], grams: Sequence[np.ndarray | None],
              initial: int | None, steps_per_epoch: int = 1) -> list[dict[str, float]]:
    """The distances of each snapshot of one run and kernel: to the FNTK
    (snapshot index ``initial``, None when the run has none), to the previous
    and the last snapshot, and the velocity from the previous one (angle per
    SGD step, ``steps_per_epoch`` steps an epoch).
    ``epochs`` (ascending) and ``grams`` (test-sample Grams, None where
    diverged) are in snapshot order. NaN where a reference is absent or
    diverged (the first snapshot has no previous one)."""
    last = grams[-1] if grams else None
    init = grams[initial] if initial is not None else None
    out = []
    for i, (epoch, G) in enumerate(zip(epochs, grams)):
        prev = kernel_distance(grams[i - 1], G) if i else math.nan
        steps = (epoch - epochs[i - 1]) * steps_per_epoch if i else 0
        out.append({"kernel_distance_init": kernel_distance(init, G) if initial is not None else math.nan,
                    "kernel_distance_prev": prev,
                    "kernel_distance_final": kernel_distance(last, G),
                    "kernel_velocity": kernel_angle(prev) / steps if steps > 0 else math.nan})
    return out


def run_evolution(snapshots: Sequence[str], grams: Mapping[str, Mapping[str, np.ndarray | None]],
                  kernels: Sequence[str], steps_per_epoch: int = 1) -> dict[str, dict[str, dict[str, float]]]:
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
        rows = evolution(epochs, [grams[s].get(kernel) for s in names], initial, steps_per_epoch)
        for s, row in zip(names, rows):
            out[s][kernel] = row
    return out
