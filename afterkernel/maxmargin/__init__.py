"""Hard-margin SVM without bias, with hardware-independent certificates.

The paper (Long, "Properties of the after kernel", §2) evaluates a kernel K by
the test error of the maximum-margin linear classifier without bias in the
kernel's feature space, computed with Algorithm 1 of Ji, Srebro & Telgarsky
(2021, "Fast margin maximization via dual acceleration", arXiv 2107.00595).

Notation: signed labels s_i in {-1, +1}, rows z_i = s_i phi(x_i), the train
Gram G = diag(s) K diag(s) = Z Z^T, coefficients c >= 0 with w = Z^T c, so
``w = sum_i c_i s_i phi(x_i)``.  The margin of w is ``min_i (G c)_i /
sqrt(c^T G c)``; the optimal margin is

    gamma* = max_{||w|| <= 1} min_i z_i.w = min_{q in simplex} ||Z^T q||
           = min_{q in simplex} sqrt(q^T G q),

so every c >= 0 gives a lower bound (its primal margin) and every q in the
simplex an upper bound (its dual value; :func:`certificate`).  The relative
gap ``(bound - margin) / bound`` is the stopping rule of both solvers;
unlike the original code's wall-clock limit it does not depend on the
hardware.

Solvers (:func:`solve`)
-----------------------
``"exact"`` (default, :func:`solve_exact`, module ``exact``)
    The active-set Newton method on all points (``newton``: block
    principal pivoting, Cholesky of the free block), and when it cycles an
    active-set method that solves the problem exactly on a growing working
    set: block principal pivoting (``pivoting``) guesses the support,
    Wolfe's minimum-norm-point algorithm (``wolfe``) finishes.
``"alg1"`` (:func:`solve_alg1`, and :func:`solve_primal_alg1` on explicit
features; module ``alg1``)
    Algorithm 1 as the paper's code ran it, in kernel form with an active
    set; the gap shrinks like t^-2.

Non-separable data are normal (e.g. 94-dimensional conjugate features of
12K images): they are detected from the dual certificate (the upper bound
falls below ``nonsep_tol`` times the largest feature norm, so a margin
below that also counts as none: by default 1e-6 for a float64 K and 2e-5
for a float32 one, twice the margin a float32 K resolves,
:func:`nonsep_tolerance`) and reported with
``separable=False``; the exact solver then returns the classifier that
Algorithm 1 converges to on such data, the minimiser of its loss, to a
stated stationarity (module ``nonsep``), since the hard-margin one does not
exist.  Nothing loops forever: every loop has a cap.  Results are
deterministic (no randomness, stable sorts).

The rule ``svm`` runs :func:`afterkernel.maxmargin.job.write_svm` (module
``job``: one snapshot's kernel from the Gram file to the SVM file).
"""

from __future__ import annotations

from afterkernel.maxmargin.alg1 import solve_alg1, solve_primal_alg1
from afterkernel.maxmargin.certificate import certificate
from afterkernel.maxmargin.classifier import decision_function, error_rate
from afterkernel.maxmargin.exact import solve_exact
from afterkernel.maxmargin.result import (DEFAULT_MAX_ITER, DEFAULT_NONSEP_TOL, DEFAULT_TOL, SOLVERS,
                                          MaxMarginResult, nonsep_tolerance)

__all__ = [
    "DEFAULT_MAX_ITER",
    "DEFAULT_NONSEP_TOL",
    "DEFAULT_TOL",
    "SOLVERS",
    "MaxMarginResult",
    "nonsep_tolerance",
    "solve",
    "solve_exact",
    "solve_alg1",
    "solve_primal_alg1",
    "certificate",
    "decision_function",
    "error_rate",
]


def solve(K, y, solver: str = "exact", tol: float | None = None, max_iter: int | None = None,
          **options) -> MaxMarginResult:
    """Max-margin (hard-margin, no bias) classifier for the train Gram ``K`` (n, n), labels ``y`` (n,).

    ``solver`` is ``"exact"`` (the active-set Newton method, Wolfe's
    algorithm where it gives up; default) or ``"alg1"`` (Algorithm 1 of Ji, Srebro & Telgarsky
    2021, kernel form).  ``tol`` is the relative gap to stop at (defaults
    ``DEFAULT_TOL``), ``max_iter`` the iteration cap (``DEFAULT_MAX_ITER``).
    Further keyword options go to :func:`solve_exact` / :func:`solve_alg1`.
    """
    if solver == "exact":
        return solve_exact(K, y, tol=tol, max_iter=max_iter, **options)
    if solver == "alg1":
        return solve_alg1(K, y, tol=tol, max_iter=max_iter, **options)
    raise ValueError(f"unknown solver {solver!r}; choose 'exact' or 'alg1'")
