"""Block principal pivoting (Judice & Pires 1994): the exact solver's guess
of the support vectors of a working set, in a few factorisations (paper §2's
max-margin SVM; see :mod:`afterkernel.maxmargin.exact`)."""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack, solve_triangular


def block_principal_pivoting(GW: np.ndarray, free0: np.ndarray, rounds: int,
                             tol: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Block principal pivoting on max sum(a) - a^T G a / 2, a >= 0 (G = GW, (m, m)).

    Returns local indices of a guessed support (possibly empty), their
    weights a > 0 and the number of rounds.  Each round solves G_FF a_F = 1
    on the free set F (starting from ``free0``) and swaps the infeasible
    indices (a_i <= 0 in F; (G a)_i < 1 - tol outside), adding at most half
    of |F| (>= 64) of the worst outside points: adding them all overshoots
    and costs more rounds of larger factorisations (measured).  The solve
    uses a pivoted Cholesky factorisation that keeps only a numerically
    independent subset of F (pivots above 1e-10 of the largest diagonal), so
    rank-deficient kernels need no special case.  It stops when no index is
    infeasible, when that count has not fallen (nor the free set grown) for
    three rounds (the exchange can cycle), or after ``rounds`` rounds, and
    returns the positive part of the last free set.  The caller verifies the
    result and hands it to Wolfe's algorithm when it is not optimal.
    """
    m = GW.shape[0]
    free = np.zeros(m, bool)
    free[free0] = True
    piv_tol = 1e-10 * float(np.max(np.diag(GW)))
    guess, weight = np.zeros(0, dtype=np.intp), np.zeros(0)
    last_bad, last_size, stall = np.inf, 0, 0
    done = 0
    for _ in range(rounds):
        F = np.flatnonzero(free)
        if len(F) == 0:
            break
        done += 1
        U, piv, rank, _info = lapack.dpstrf(GW[np.ix_(F, F)], lower=0, tol=piv_tol)
        keep = F[piv[:rank] - 1]
        U = U[:rank, :rank]
        r = solve_triangular(U, np.ones(rank), trans="T", check_finite=False)
        aF = solve_triangular(U, r, check_finite=False)
        ga = aF @ GW[keep]  # G is symmetric: rows are cheaper to gather than columns
        free[F] = False
        free[keep] = True
        bad_f = keep[aF <= 0]
        bad_b = np.flatnonzero(~free & (ga < 1.0 - tol))
        nbad = len(bad_f) + len(bad_b)
        guess, weight = keep[aF > 0], aF[aF > 0]
        # No progress: neither fewer infeasible indices nor a growing free set.
        stall = stall + 1 if nbad >= last_bad and len(keep) <= last_size else 0
        last_bad, last_size = nbad, len(keep)
        if nbad == 0 or stall >= 3:
            break
        free[bad_f] = False
        worst = bad_b[np.argsort(ga[bad_b], kind="stable")]
        free[worst[: max(64, len(keep) // 2)]] = True
    return guess, weight, done
