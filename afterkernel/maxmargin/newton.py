"""The exact solver's first method: an active-set Newton method (block
principal pivoting over all n points at once; Judice & Pires 1994, Kim &
Park 2011) on the unnormalised dual of paper §2's hard-margin SVM without bias,

    max_{a >= 0} sum(a) - a^T G a / 2,      margins g = G a,

whose solution has g_i = 1 on the free set F (a_F > 0) and g_i >= 1
outside.  Each round reads the rows K[F] once; from them come G_FF (one
Cholesky factorisation solves G_FF a_F = 1) and every point's margin under
that *unconstrained* a_F (negative entries included: that is block
principal pivoting's complementarity test; clipping a_F first breaks the
exchange and the free set then only grows, measured).  The infeasible
indices are swapped: a_i <= 0 leave F, the most violating outside points
(g_i < 1 - tol/4, at most ``max(128, grow |F|)``, worst first: adding all at
once overshoots) join it.

Margins are screened in K's own precision (float32: no float64 copy of the
rows); when no index is infeasible they are recomputed in float64 (by
blocks of rows) and the solution certifies itself: a >= 0 with relative gap

    1 - min_i (G a)_i sum(a) / (a^T G a) <= tol.

When G_FF is numerically singular (duplicate points, rank-deficient
kernels) a pivoted Cholesky factorisation keeps a numerically independent
part of F.  The method gives up (the caller then runs its working-set
method, :mod:`~afterkernel.maxmargin.exact`) when the number of infeasible
indices has fallen neither below its best nor with a shrinking free set
for ``patience`` rounds (non-separable kernels: the free set then grows
without end), when ``patience`` free blocks were numerically singular (a
kernel of low rank), or after ``max_rounds`` rounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import lapack, solve_triangular

from afterkernel.maxmargin.gram import SignedGram

# Pivots of G_FF's Cholesky factor below this (relative, squared) count as singular.
_PIVOT_TOL = 1e-11


def newton_support(gram: SignedGram, tol: float, max_rounds: int, info: dict[str, Any], *,
                   start: int = 256, grow: float = 0.5, patience: int = 4):
    """Block principal pivoting on the whole problem, from the ``start``
    points of smallest margin under the uniform dual point.

    Returns ``(a, g, rounds)`` with a (n,) >= 0 certified to the relative
    gap ``tol`` and its float64 margins g = G a (n,), or ``(None, None,
    rounds)`` when the method gives up (module docstring).  ``info`` gets the
    free-set sizes and why it stopped.
    """
    n = gram.n
    g0 = gram.matvec_lowp(np.full(n, 1.0 / n))
    free = np.zeros(n, bool)
    free[np.argsort(g0, kind="stable")[: min(n, start)]] = True
    sizes: list[int] = []
    info["newton_free"] = sizes
    best_bad, last_size, stall, dependent = np.inf, n + 1, 0, 0
    for rounds in range(1, max_rounds + 1):
        F = np.flatnonzero(free)
        rows = gram.K[F]  # (|F|, n) in K's dtype: G_FF and every margin come from these rows
        asked = len(F)
        F, rows, aF = _free_solve(gram, F, rows)
        if len(F) == 0:
            info["newton_stop"] = "zero free block"
            return None, None, rounds
        dependent += len(F) < asked
        if dependent >= patience:
            # A free block that keeps losing dependent points: G is (numerically)
            # of low rank, where the exchange cycles (the conjugate kernel).
            info["newton_stop"] = "rank-deficient"
            return None, None, rounds
        free[:] = False
        free[F] = True
        sizes.append(len(F))
        g = _margins(gram, F, rows, aF)
        drop = F[aF <= 0]
        viol = np.flatnonzero(~free & (g < 1.0 - tol / 4))
        if len(drop) == 0 and len(viol) == 0:
            a = np.zeros(n)
            a[F] = aF
            g = gram.rows_dot(F, aF)  # float64, by blocks of rows: no float64 copy of them all
            if _gap(a, g) <= tol:
                info["newton_stop"] = "certified"
                return a, g, rounds
            viol = np.flatnonzero(~free & (g < 1.0 - tol / 4))  # float64 margins: the screen missed these
            if len(viol) == 0:
                info["newton_stop"] = "no exchange left"
                return None, None, rounds
        nbad = len(drop) + len(viol)
        # Progress: fewer infeasible indices than ever, or a free set that shrinks.
        stall = 0 if nbad < best_bad or len(F) < last_size else stall + 1
        best_bad, last_size = min(best_bad, nbad), len(F)
        if stall >= patience:
            info["newton_stop"] = "stalled"
            return None, None, rounds
        free[drop] = False
        worst = viol[np.argsort(g[viol], kind="stable")]
        free[worst[: max(128, int(grow * len(F)))]] = True
    info["newton_stop"] = "max_rounds"
    return None, None, max_rounds


def _margins(gram: SignedGram, F: np.ndarray, rows: np.ndarray, aF: np.ndarray) -> np.ndarray:
    """g = G[:, F] a_F (n,) from the rows K[F], the product in their dtype
    (a screen: float32 for a float32 K)."""
    sa = (gram.s[F] * aF).astype(rows.dtype)
    return gram.s * (sa @ rows).astype(np.float64)


def _gap(a: np.ndarray, g: np.ndarray) -> float:
    """Relative gap 1 - min(g) sum(a) / (a^T g) of a >= 0 (n,) with g = G a (n,)."""
    aga = float(a @ g)
    return 1.0 - float(g.min()) * float(a.sum()) / aga if aga > 0 else np.inf


def _free_solve(gram: SignedGram, F: np.ndarray,
                rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F', K[F'], a_F') with a_F' = G_F'F'^-1 1 by Cholesky in float64;
    F' = F unless G_FF is numerically singular (a pivot below
    ``_PIVOT_TOL`` of its diagonal), when a pivoted factorisation keeps a
    numerically independent subset F' of F (``dpstrf``; empty F' only when
    G_FF = 0)."""
    sF = gram.s[F]
    GFF = rows[:, F].astype(np.float64)
    GFF *= sF[:, None]
    GFF *= sF[None, :]
    dg = np.diag(GFF).copy()
    U, status = lapack.dpotrf(GFF, lower=0, clean=0, overwrite_a=0)
    if status != 0 or np.any(np.diag(U) ** 2 <= _PIVOT_TOL * dg):
        U, piv, rank, _ = lapack.dpstrf(GFF, lower=0, tol=_PIVOT_TOL * float(dg.max()))
        keep = piv[:rank] - 1
        F, rows, U = F[keep], rows[keep], U[:rank, :rank]
    r = solve_triangular(U, np.ones(len(F)), trans="T", check_finite=False)
    return F, rows, solve_triangular(U, r, check_finite=False)
