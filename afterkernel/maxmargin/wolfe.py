"""Wolfe's (1976) minimum-norm-point algorithm on the exact solver's working
set W: min_{q in simplex} q^T G_WW q, the dual of paper §2's max-margin SVM
(see :mod:`afterkernel.maxmargin.exact`).

Wolfe's algorithm is finite, needs no step size, does not care about the
condition number of K, and stays well posed when K is rank deficient or the
data are not separable (the minimum norm is then 0).  Its corral is kept
affinely independent with an upper Cholesky factor of ``G_SS + kappa 1 1^T``
updated in O(k^2) per added or dropped point.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.linalg import lapack, solve_triangular


class Corral:
    """Wolfe's corral S (affinely independent) with weights lam > 0, sum 1.

    Keeps the upper Cholesky factor R of M = G_SS + kappa 1 1^T (positive
    definite exactly when the z_S are affinely independent; the affine
    minimiser of S is mu = M^-1 1 / 1^T M^-1 1) and the rows G[S, W].
    Indices are local to the working set W.
    """

    def __init__(self, GW: np.ndarray, kappa: float, cap: int = 64):
        self.GW, self.kappa = GW, kappa
        self.R = np.zeros((cap, cap))
        self.rows = np.empty((cap, GW.shape[0]))
        self.S: list[int] = []
        self.lam = np.zeros(0)

    def _reserve(self, k: int) -> None:
        """Room for k points (buffers grow geometrically, never beyond |W|)."""
        cap = self.R.shape[0]
        if k <= cap:
            return
        cap = min(max(k, 2 * cap), self.GW.shape[0])
        R = np.zeros((cap, cap))
        R[: self.k, : self.k] = self.R[: self.k, : self.k]
        rows = np.empty((cap, self.GW.shape[0]))
        rows[: self.k] = self.rows[: self.k]
        self.R, self.rows = R, rows

    @property
    def k(self) -> int:
        return len(self.S)

    def reset(self, S: np.ndarray, lam: np.ndarray | None = None, piv_tol: float = 1e-12) -> None:
        """Start from the points S (weights lam, default uniform).

        One Cholesky factorisation when S is affinely independent; otherwise
        the points are added one at a time and the dependent ones skipped.
        """
        S = [int(j) for j in S]
        self.S, self.lam = [], np.zeros(0)
        k = len(S)
        ok = False
        if k:
            M = self.GW[np.ix_(S, S)] + self.kappa
            R, info = lapack.dpotrf(M, lower=0, clean=1, overwrite_a=1)
            ok = info == 0 and bool(np.all(np.diag(R) ** 2 > piv_tol * (np.diag(self.GW)[S] + self.kappa)))
        self._reserve(k)
        if ok:
            self.R[:k, :k] = R
            self.rows[:k] = self.GW[S]
            self.S = S
            self.lam = np.zeros(k)
        else:
            for j in S:
                self.try_add(j, piv_tol)
        if lam is not None and self.k == k:
            self.lam = np.asarray(lam, dtype=np.float64) / np.sum(lam)
        else:
            self.lam = np.full(self.k, 1.0 / max(self.k, 1))

    def try_add(self, j: int, piv_tol: float = 1e-12) -> bool:
        """Append point j (weight 0); False when it is affinely dependent."""
        k = self.k
        mjj = self.GW[j, j] + self.kappa
        if k:
            b = self.GW[self.S, j] + self.kappa
            l = solve_triangular(self.R[:k, :k], b, trans="T", check_finite=False)
            d2 = mjj - l @ l
        else:
            l, d2 = np.zeros(0), mjj
        if not d2 > piv_tol * mjj:
            return False
        self._reserve(k + 1)
        self.R[:k, k] = l
        self.R[k, :k] = 0.0
        self.R[k, k] = math.sqrt(d2)
        self.rows[k] = self.GW[j]
        self.S.append(j)
        self.lam = np.append(self.lam, 0.0)
        return True

    def drop(self, p: int) -> None:
        """Remove the p-th corral point, updating R by a rank-one update."""
        k, R = self.k, self.R
        x = R[p, p + 1 : k].copy()
        T = R[p + 1 : k, p + 1 : k].copy()
        # Deleting row/column p of M = R^T R leaves the trailing block with
        # T^T T + x x^T: a rank-one Cholesky update (Givens-free form).
        for i in range(k - p - 1):
            rii = T[i, i]
            r = math.hypot(rii, x[i])
            c, sn = r / rii, x[i] / rii
            T[i, i] = r
            if i + 1 < k - p - 1:
                T[i, i + 1 :] = (T[i, i + 1 :] + sn * x[i + 1 :]) / c
                x[i + 1 :] = c * x[i + 1 :] - sn * T[i, i + 1 :]
        R[:p, p : k - 1] = R[:p, p + 1 : k]
        R[p : k - 1, p : k - 1] = T
        R[: k, k - 1] = 0.0
        R[k - 1, :k] = 0.0
        self.rows[p : k - 1] = self.rows[p + 1 : k]
        del self.S[p]
        self.lam = np.delete(self.lam, p)

    def affine_minimiser(self) -> np.ndarray:
        """mu = M^-1 1 / 1^T M^-1 1 (k,): the min-norm point of the corral's affine hull."""
        k = self.k
        Rk = self.R[:k, :k]
        r = solve_triangular(Rk, np.ones(k), trans="T", check_finite=False)
        u = solve_triangular(Rk, r, check_finite=False)
        return u / u.sum()

    def settle(self, max_minor: int) -> int:
        """Wolfe's minor cycles: move lam to the affine minimiser, dropping points."""
        minor = 0
        while True:
            mu = self.affine_minimiser()
            if np.all(mu > 0) or minor >= max_minor:
                if np.all(mu > 0):
                    self.lam = mu
                return minor
            minor += 1
            neg = mu <= 0
            den = np.where(neg, self.lam - mu, 1.0)
            ratio = np.where(neg, self.lam / den, np.inf)
            p = int(np.argmin(ratio))
            theta = float(ratio[p])
            lam = self.lam + theta * (mu - self.lam)
            lam[p] = 0.0
            self.lam = np.maximum(lam, 0.0)
            # Every point the step zeroed leaves the corral (largest index first).
            for q in sorted(np.flatnonzero(self.lam <= 0).tolist(), reverse=True):
                self.drop(q)
            self.lam = self.lam / self.lam.sum()


def min_norm_point(GW: np.ndarray, kappa: float, seed: np.ndarray, lam: np.ndarray, max_steps: int,
                   thresh2: float, inner_tol: float,
                   info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Wolfe's minimum-norm point of the working set (G_WW = ``GW``, (m, m)).

    Starts from the corral ``seed`` with weights ``lam`` (or, when that is
    empty, the point of smallest norm) and runs major cycles (add the point
    of smallest margin, then minor cycles) until no point of W has a margin
    below ``(1 - inner_tol) q^T G q``, the squared norm is at most
    ``thresh2`` (not separable) or ``max_steps`` cycles ran.  Returns the
    corral's local indices, its weights (summing to 1), the number of major
    cycles and whether the data count as not separable; counts minor cycles
    and dependent points in ``info``.
    """
    corral = Corral(GW, kappa)
    corral.reset(seed, lam if len(seed) else None)
    if corral.k == 0:
        corral.reset([int(np.argmin(np.diag(GW)))])
    info["minor"] += corral.settle(max_minor=10 * len(GW) + 10)
    excluded = np.zeros(len(GW), bool)
    steps, nonsep = 0, False
    while steps < max_steps:
        gW = corral.lam @ corral.rows[: corral.k]
        xx = float(corral.lam @ gW[corral.S])
        if xx <= thresh2:
            nonsep = True
            break
        cand = np.where(excluded, np.inf, gW)
        j = int(np.argmin(cand))
        if cand[j] >= (1.0 - inner_tol) * xx:
            break
        steps += 1
        if not corral.try_add(j):
            # Numerically in the corral's affine hull: adding it cannot help.
            excluded[j] = True
            info["dependent"] += 1
            continue
        info["minor"] += corral.settle(max_minor=10 * len(GW) + 10)
    return np.asarray(corral.S, dtype=np.intp), corral.lam, steps, nonsep
