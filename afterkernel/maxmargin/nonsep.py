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
otherwise the iterates diverge and the functions here say so.

* :func:`loss_minimiser`: on features Z (n, r) of small rank, Newton's
  method with the r x r Hessian, O(n r^2) per step;
* :func:`loss_minimiser_kernel`: on the Gram matrix G = Z Z^T alone (no
  features: kernels of large rank), w = Z^T c, by truncated Newton (conjugate
  gradients in w's inner product <Z^T x, Z^T y> = x^T G y): one product
  with G per CG iteration, nothing larger than a few n-vectors held.
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


def loss_minimiser_kernel(matvec, n: int, grad_tol: float, max_steps: int = 50, max_cg: int = 100):
    """Truncated Newton on L(Z^T c) given only ``matvec(x) = G x`` (n,) -> (n,).

    Returns ``(c, m, p, steps, converged)``: c (n,), its margins m = G c as
    accumulated from the products (the caller recomputes them exactly), p =
    softmax(-m), the Newton steps and whether sqrt(p^T G p) = ||grad L|| <=
    ``grad_tol`` was reached (on ``matvec``'s products).  Each Newton
    direction Z^T x solves (Z^T D Z) Z^T x = Z^T p, D = diag(p) - p p^T, by
    conjugate gradients to the relative residual min(0.5, sqrt(||grad L||
    / ||grad L_0||)) (superlinear convergence), at most ``max_cg`` products.
    """
    c, m = np.zeros(n), np.zeros(n)
    loss, p = _loss(m)
    Gp = matvec(p)
    g0 = None
    for steps in range(max_steps + 1):
        gnorm = math.sqrt(max(float(p @ Gp), 0.0))
        g0 = gnorm if g0 is None else g0
        if gnorm <= grad_tol:
            return c, m, p, steps, True
        if steps == max_steps or m.min() > 0 or gnorm == 0.0:
            break
        x, Gx = _newton_cg(matvec, p, Gp, min(0.1, gnorm / g0), max_cg)
        slope = -float(p @ Gx)  # grad L . Z^T x = -(Z^T p) . (Z^T x)
        if not slope < 0:
            break
        t = 1.0
        for _ in range(_HALVINGS):
            new_loss, new_p = _loss(m + t * Gx)
            if new_loss <= loss + _ARMIJO * t * slope:
                break
            t /= 2
        else:
            break
        c, m, loss, p = c + t * x, m + t * Gx, new_loss, new_p
        Gp = matvec(p)
    return c, m, p, steps, False


def _newton_cg(matvec, p: np.ndarray, Gp: np.ndarray, rel: float, max_cg: int):
    """(x, G x) with Z^T x ~ (Z^T D Z)^-1 Z^T p by conjugate gradients, the
    vectors of w's space held as coefficients and their products with G."""
    x, Gx = np.zeros_like(p), np.zeros_like(p)
    r, Gr = p.copy(), Gp.copy()
    d, Gd = r.copy(), Gr.copy()
    rr = rr0 = float(r @ Gr)
    for _ in range(max_cg):
        Ad = p * Gd - p * float(p @ Gd)  # D G d: the Hessian's action, as coefficients
        dAd = float(Gd @ Ad)
        if not dAd > 0:
            break
        alpha = rr / dAd
        x += alpha * d
        Gx += alpha * Gd
        r -= alpha * Ad
        Gr -= alpha * matvec(Ad)
        rr_new = float(r @ Gr)
        if not rr_new > rel * rel * rr0:
            break
        d = r + (rr_new / rr) * d
        Gd = Gr + (rr_new / rr) * Gd
        rr = rr_new
    return x, Gx


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
