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
holds on the Gram matrix itself.  On a float32 K it often does not: p is
dense, and p^T G p then sits at K's rounding (measured: 3.5e-10 of the
1e-12 needed on CIFAR-10's vgg conjugate kernel, while the features give
1e-15), and the exact solver's working set certifies instead.

L has a minimiser exactly when no w has Z w >= 0 and Z w != 0 (Gordan);
otherwise the iterates diverge and :func:`loss_minimiser` says so.  It
works on features Z (n, r) (for a kernel, a pivoted Cholesky factor:
:func:`~afterkernel.maxmargin.gram.low_rank_features`), with the r x r
Hessian, O(n r^2) per step.  Not on the Gram matrix alone: there the
gradient's norm is sqrt(p^T G p), for a dense p a small difference of
large terms, below what float32 products of K resolve.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve

# Armijo's sufficient-decrease constant and the most step halvings per Newton step.
_ARMIJO = 1e-4
_HALVINGS = 50


def loss_minimiser(Z: np.ndarray, grad_tol: float, max_steps: int = 100):
    """Newton's method with backtracking on L(w) for the signed features Z (n, r).

    Returns ``(w, p, steps, converged)``: w (r,), p = softmax(-Z w) (n,),
    the Newton steps taken and whether ||Z^T p|| <= ``grad_tol`` was
    reached.  The Hessian Z^T (diag p - p p^T) Z (r, r) is positive definite
    at every w when L has a minimiser; it stops unconverged when w
    separates the data (every margin positive: L has no minimiser, the
    data are separable), when a step cannot decrease L (round-off, or L
    without a minimiser) or after ``max_steps`` steps.
    """
    w = np.zeros(Z.shape[1])
    m = np.zeros(Z.shape[0])
    loss, p = _loss(m)
    for steps in range(max_steps + 1):
        grad = -(Z.T @ p)
        if math.sqrt(float(grad @ grad)) <= grad_tol:
            return w, p, steps, True
        if steps == max_steps or m.min() > 0:
            break
        step = _newton_step(_hessian_part(Z, p) - np.outer(grad, grad), grad)
        if step is None:
            break
        slope = float(grad @ step)
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


def _newton_step(H: np.ndarray, grad: np.ndarray) -> np.ndarray | None:
    """-H^-1 grad, H (r, r) shifted by the smallest of 1e-14, 1e-10, ...,
    1e-2 times its mean diagonal that makes its Cholesky factorisation
    succeed (a float32 Hessian of ill-conditioned features can be
    indefinite by its rounding); None when none does."""
    scale = max(float(np.trace(H)) / max(len(H), 1), np.finfo(float).tiny)
    for shift in (1e-14, 1e-10, 1e-6, 1e-2):
        try:
            factor = cho_factor(H + shift * scale * np.eye(len(H)), lower=False, check_finite=False)
        except np.linalg.LinAlgError:
            continue
        return -cho_solve(factor, grad, check_finite=False)
    return None


def _hessian_part(Z: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Z^T diag(p) Z (r, r), the products in float32 by blocks of rows: the
    Hessian only steers the step (the gradient, the margins and the
    stopping test stay float64), and float32 halves the O(n r^2) cost."""
    r = Z.shape[1]
    H = np.zeros((r, r), dtype=np.float32)
    step = max(1, (64 << 20) // (4 * max(r, 1)))
    for b in range(0, Z.shape[0], step):
        blk = Z[b : b + step].astype(np.float32)
        H += blk.T @ (blk * p[b : b + step, None].astype(np.float32))
    return H.astype(np.float64)


def _loss(m: np.ndarray) -> tuple[float, np.ndarray]:
    """(L, softmax(-m)) for the margins m (n,), shifted so that nothing overflows."""
    lo = float(m.min())
    e = np.exp(-(m - lo))
    total = float(e.sum())
    return math.log(total) - lo, e / total
