"""The classifier of a kernel that is not separable (paper §2): the minimiser
of Algorithm 1's loss

    L(w) = log sum_i exp(-z_i^T w),        z_i = s_i phi_i,

which is where Algorithm 1's iterates go when the data are not separable
(its implicit bias there), found by Newton's method to a stated
stationarity tolerance instead of by a number of iterations.

The gradient is grad L(w) = -Z^T p with p = softmax(-Z w) a point of the
simplex, so ||grad L(w)|| = sqrt(p^T G p) is also the dual bound of p:
stationarity to ``nonsep_tol * max_i ||z_i||`` *is* the certificate that the
data are not separable (paper §2's hard-margin dual at p), and the
classifier and the certificate come from one computation.

L has a minimiser exactly when no w has Z w >= 0 and Z w != 0 (Gordan);
otherwise the iterates diverge and :func:`loss_minimiser` says so.
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
        Zp = Z * p[:, None]
        H = Z.T @ Zp - np.outer(grad, grad)
        H.flat[:: H.shape[0] + 1] += 1e-14 * float(np.trace(H))  # keeps the factorisation defined
        step = -cho_solve(cho_factor(H, lower=False, check_finite=False), grad, check_finite=False)
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


def _loss(m: np.ndarray) -> tuple[float, np.ndarray]:
    """(L, softmax(-m)) for the margins m (n,), shifted so that nothing overflows."""
    lo = float(m.min())
    e = np.exp(-(m - lo))
    total = float(e.sum())
    return math.log(total) - lo, e / total
