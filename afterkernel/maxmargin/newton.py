"""The exact solver's first method: an active-set Newton method (block
principal pivoting over all n points at once; Judice & Pires 1994, Kim &
Park 2011) on the unnormalised dual of paper §2's hard-margin SVM without bias,

    max_{a >= 0} sum(a) - a^T G a / 2,      margins g = G a,

whose solution has g_i = 1 on the free set F (a_F > 0) and g_i >= 1
outside.  Each round solves G_FF a_F = 1 by one Cholesky factorisation,
computes every margin in float64 from the rows K[F] (no copy of K: the
rows are read in blocks, :meth:`SignedGram.rows_dot`), and swaps the
infeasible indices: a_i <= 0 leave F, the most violating outside points
(g_i < 1 - tol/4, at most ``max(128, grow |F|)``, worst first: adding all at
once overshoots) join it.  The coefficients a+ = max(a, 0) certify
themselves: with q = a+ / sum(a+) the relative gap is

    1 - min_i (G a+)_i sum(a+) / (a+^T G a+),

computed in float64 each round.  When G_FF is numerically singular
(duplicate points, rank-deficient kernels) a pivoted Cholesky factorisation
keeps a numerically independent part of F.  The method stops at gap <=
tol; it gives up (the caller then runs Wolfe's algorithm,
:mod:`~afterkernel.maxmargin.exact`) when the number of infeasible indices
has not fallen for ``patience`` rounds (the exchange can cycle, e.g. on
non-separable kernels) or after ``max_rounds`` rounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import lapack, solve_triangular

from afterkernel.maxmargin.gram import SignedGram

# Pivots of G_FF's Cholesky factor below this (relative, squared) count as singular.
_PIVOT_TOL = 1e-11


def newton_support(gram: SignedGram, tol: float, max_rounds: int, info: dict[str, Any], *,
                   start: int = 1024, grow: float = 0.5, patience: int = 4):
    """Block principal pivoting on the whole problem, from the ``start``
    points of smallest margin under the uniform dual point.

    Returns ``(a, g, rounds)`` with a (n,) >= 0 certified to the relative
    gap ``tol`` and its float64 margins g = G a (n,), or ``(None, None,
    rounds)`` when the method gives up (module docstring).  ``info`` gets the
    rounds and the free-set sizes.
    """
    n = gram.n
    g0 = gram.matvec_lowp(np.full(n, 1.0 / n))
    free = np.zeros(n, bool)
    free[np.argsort(g0, kind="stable")[: min(n, start)]] = True
    sizes: list[int] = []
    info["newton_free"] = sizes
    best_bad, stall = np.inf, 0
    for rounds in range(1, max_rounds + 1):
        F = np.flatnonzero(free)
        F, aF = _free_solve(gram, F)
        if len(F) == 0:
            info["newton_stop"] = "zero free block"
            return None, None, rounds
        free[:] = False
        free[F] = True
        sizes.append(len(F))
        a = np.zeros(n)
        a[F] = np.maximum(aF, 0.0)
        g = gram.rows_dot(F, a[F])
        if _gap(a, g) <= tol:
            info["newton_stop"] = "certified"
            return a, g, rounds
        drop = F[aF <= 0]
        viol = np.flatnonzero(~free & (g < 1.0 - tol / 4))
        nbad = len(drop) + len(viol)
        # No progress: no fewer infeasible indices than the best round (a
        # growing free set does not count: on real kernels it then grows
        # without bound, measured).
        stall = 0 if nbad < best_bad else stall + 1
        best_bad = min(best_bad, nbad)
        if nbad == 0 or stall >= patience:
            info["newton_stop"] = "stalled"
            return None, None, rounds
        free[drop] = False
        worst = viol[np.argsort(g[viol], kind="stable")]
        free[worst[: max(128, int(grow * len(F)))]] = True
    info["newton_stop"] = "max_rounds"
    return None, None, max_rounds


def _gap(a: np.ndarray, g: np.ndarray) -> float:
    """Relative gap 1 - min(g) sum(a) / (a^T g) of a >= 0 (n,) with g = G a (n,)."""
    aga = float(a @ g)
    return 1.0 - float(g.min()) * float(a.sum()) / aga if aga > 0 else np.inf


def _free_solve(gram: SignedGram, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F', a_F') with a_F' = G_F'F'^-1 1 by Cholesky in float64; F' = F
    unless G_FF is numerically singular (a pivot below ``_PIVOT_TOL`` of its
    diagonal), when a pivoted factorisation keeps a numerically independent
    subset F' of F (``dpstrf``; empty F' only when G_FF = 0)."""
    GFF = gram.sub(F, F)
    dg = np.diag(GFF).copy()
    U, status = lapack.dpotrf(GFF, lower=0, clean=0, overwrite_a=0)
    if status != 0 or np.any(np.diag(U) ** 2 <= _PIVOT_TOL * dg):
        U, piv, rank, _ = lapack.dpstrf(GFF, lower=0, tol=_PIVOT_TOL * float(dg.max()))
        F, U = F[piv[:rank] - 1], U[:rank, :rank]
    r = solve_triangular(U, np.ones(len(F)), trans="T", check_finite=False)
    return F, solve_triangular(U, r, check_finite=False)
