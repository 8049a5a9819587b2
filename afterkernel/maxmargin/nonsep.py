"""The classifier of a kernel that is not separable (paper §2): the minimiser
of Algorithm 1's loss

    L(w) = log sum_i exp(-z_i^T w),        z_i = s_i phi_i,

which is where Algorithm 1's iterates go when the data are not separable
(its implicit bias there), found by Newton's method to a stated
stationarity tolerance instead of by a number of iterations.

The gradient is grad L(w) = -Z^T p with p = softmax(-Z w) a point of the
simplex, so ||grad L(w)|| = sqrt(p^T G p) is also the dual bound of p:
stationarity to ``nonsep_tol * max_i ||z_i||`` is a certificate that the
data are not separable (paper §2's hard-margin dual at p) whenever it also
holds on the Gram matrix itself.  On a float32 K p is dense and p^T G p
sits at K's rounding (measured on CIFAR-10's vgg conjugate kernel: 3.5e-10
on K, 1e-15 on its features), which is why a float32 K's default
``nonsep_tol`` is at that resolution
(:func:`~afterkernel.maxmargin.result.nonsep_tolerance`); where it still
fails, the exact solver's working set certifies instead.

L has a minimiser exactly when no w has Z w >= 0 and Z w != 0 (Gordan);
otherwise the iterates diverge and :func:`loss_minimiser` says so.  It
works on features Z (n, r) (for a kernel, a pivoted Cholesky factor:
:func:`~afterkernel.maxmargin.gram.low_rank_features`), with the r x r
Hessian, O(n r^2), formed once or a few times, and conjugate gradients,
O(n r) per product, in between.  Not on the Gram matrix alone: there the
gradient's norm is sqrt(p^T G p), for a dense p a small difference of
large terms, below what float32 products of K resolve.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import blas, cho_factor, cho_solve

#: the classifier's rule: the loss minimiser to ||grad L|| <= STATIONARITY * max_i ||z_i||.
#: 1e-6 did not fix the classifier: on an embedded-default fc conjugate kernel
#: (n = 1,000, rank 99) it left 6 training points on the other side than at
#: 1e-8 ... 1e-12 and scipy's BFGS minimiser (training error 8.2 % vs 8.8 %),
#: on CIFAR-10's vgg one a test image; from 1e-8 on they agree.
STATIONARITY = 1e-8
# Armijo's sufficient-decrease constant and the most step halvings per Newton step.
_ARMIJO = 1e-4
_HALVINGS = 50
# Most conjugate-gradient iterations per Newton step before the Hessian is recomputed.
_CG_STEPS = 30
# Working memory for the float32 products with the features (bytes per block of rows).
_BLOCK_BYTES = 64 << 20


def loss_minimiser(Z: np.ndarray, grad_tol: float, max_steps: int = 100):
    """Newton's method with backtracking on L(w) for the signed features Z (n, r).

    Returns ``(w, p, steps, converged)``: w (r,), p = softmax(-Z w) (n,),
    the Newton steps taken and whether ||Z^T p|| <= ``grad_tol`` was
    reached.  The Hessian Z^T (diag p - p p^T) Z (r, r) is positive definite
    at every w when L has a minimiser; it stops unconverged when w
    separates the data (every margin positive: L has no minimiser, the
    data are separable), when a step cannot decrease L (round-off, or L
    without a minimiser) or after ``max_steps`` steps.

    The Hessian (O(n r^2)) is formed only when needed: each step after the
    first solves the Newton system by conjugate gradients (Hessian-vector
    products, O(n r) each) preconditioned by the last Hessian formed, to a
    residual that shrinks with the gradient (inexact Newton), and forms a
    new Hessian only when that does not converge in ``_CG_STEPS``
    iterations.  Measured on CIFAR-10's vgg conjugate features (n = 10,000,
    r = 2,801): 1 Hessian and 43 products instead of 4 Hessians, 5.0 s
    instead of 9.9 s on one thread.  The products and the preconditioner's
    solves are float32 (they only steer the step); the gradient, the
    margins and the stopping test are float64.
    """
    Z32 = Z.astype(np.float32)
    w = np.zeros(Z.shape[1])
    m = np.zeros(Z.shape[0])
    loss, p = _loss(m)
    precond, first = None, None
    for steps in range(max_steps + 1):
        zp = Z.T @ p
        gnorm = math.sqrt(float(zp @ zp))  # grad L = -Z^T p
        if gnorm <= grad_tol:
            return w, p, steps, True
        if steps == max_steps or m.min() > 0:
            break
        first = gnorm if first is None else first
        step = None
        if precond is not None:
            step = _conjugate_gradients(Z32, p, zp, precond, rtol=min(0.1, math.sqrt(gnorm / first)))
        if step is None:
            factor = _factor(_hessian(Z32, p, zp))
            if factor is None:
                break
            step = cho_solve(factor, zp, check_finite=False)
            # The preconditioner's solves in float32: they only steer conjugate
            # gradients, and half the bytes of the r x r factor are half their
            # time (memory-bound: 10 ms each in float64 at r = 2,801).
            precond = (factor[0].astype(np.float32, order="F"), factor[1])
        slope = -float(zp @ step)
        dm = Z @ step
        t = 1.0
        for _ in range(_HALVINGS):
            new_loss, new_p = _loss(m + t * dm)
            if new_loss <= loss + _ARMIJO * t * slope:
                break
            t /= 2
        else:
            return w, p, steps, False
        w, m, loss, p = w + t * step, m + t * dm, new_loss, new_p
    return w, p, steps, False


def _factor(H: np.ndarray):
    """The upper Cholesky factor (``cho_factor``) of H (r, r; only its upper
    triangle is read) shifted by the smallest of 1e-14, 1e-10, ..., 1e-2
    times its mean diagonal that makes it succeed (a float32 Hessian of
    ill-conditioned features can be indefinite by its rounding); None when
    none does."""
    r = len(H)
    scale = max(float(np.trace(H)) / max(r, 1), np.finfo(float).tiny)
    for shift in (1e-14, 1e-10, 1e-6, 1e-2):
        A = H.copy(order="F")
        A.flat[:: r + 1] += shift * scale
        try:
            return cho_factor(A, lower=False, overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError:
            continue
    return None


def _hessian(Z32: np.ndarray, p: np.ndarray, zp: np.ndarray) -> np.ndarray:
    """The upper triangle of Z^T (diag p - p p^T) Z (r, r) in float64 (the
    lower one is not set: :func:`_factor` reads only the upper), ``zp`` =
    Z^T p; Z^T diag(p) Z by a float32 rank-k update (``ssyrk``) over blocks
    of rows of sqrt(p) Z."""
    r = Z32.shape[1]
    H = np.zeros((r, r), dtype=np.float32, order="F")
    rows = max(1, _BLOCK_BYTES // (4 * max(r, 1)))
    for b in range(0, Z32.shape[0], rows):
        blk = Z32[b : b + rows] * np.sqrt(p[b : b + rows]).astype(np.float32)[:, None]
        H = blas.ssyrk(1.0, blk, beta=1.0, c=H, trans=1, lower=0, overwrite_c=1)
    H = H.astype(np.float64, order="F")
    # - zp zp^T on the upper triangle, in place (no r x r temporary).
    return blas.dsyr(-1.0, zp, a=H, lower=0, overwrite_a=1)


def _conjugate_gradients(Z32: np.ndarray, p: np.ndarray, zp: np.ndarray, precond, rtol: float):
    """The Newton step s with H s = Z^T p (H the Hessian at p; ``zp`` = Z^T
    p) to the relative residual ``rtol``, by conjugate gradients
    preconditioned by the float32 factor ``precond`` of an earlier Hessian; None
    when that takes more than ``_CG_STEPS`` iterations or meets a direction
    of non-positive curvature."""
    def hess_vec(v: np.ndarray) -> np.ndarray:
        u = (Z32 @ v.astype(np.float32)).astype(np.float64)
        return (Z32.T @ (p * u).astype(np.float32)).astype(np.float64) - zp * float(p @ u)

    x = np.zeros_like(zp)
    res = zp.copy()
    goal = rtol * math.sqrt(float(zp @ zp))
    z = _precondition(precond, res)
    d, rz = z.copy(), float(res @ z)
    for _ in range(_CG_STEPS):
        hd = hess_vec(d)
        curv = float(d @ hd)
        if not curv > 0:
            return None
        alpha = rz / curv
        x += alpha * d
        res -= alpha * hd
        if math.sqrt(float(res @ res)) <= goal:
            return x
        z = _precondition(precond, res)
        rz, rz_old = float(res @ z), rz
        d = z + (rz / rz_old) * d
    return None


def _precondition(precond, res: np.ndarray) -> np.ndarray:
    """H0^-1 res (r,) in float64 for the float32 factor ``precond`` of an earlier Hessian H0."""
    return cho_solve(precond, res.astype(np.float32), check_finite=False).astype(np.float64)


def _loss(m: np.ndarray) -> tuple[float, np.ndarray]:
    """(L, softmax(-m)) for the margins m (n,), shifted so that nothing overflows."""
    lo = float(m.min())
    e = np.exp(-(m - lo))
    total = float(e.sum())
    return math.log(total) - lo, e / total
