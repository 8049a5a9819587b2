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
simplex an upper bound (its dual value).  The relative gap
``(bound - margin) / bound`` is the stopping rule of both solvers; unlike
the original code's wall-clock limit it does not depend on the hardware.

Solvers
-------
``"exact"`` (default, :func:`solve_exact`)
    An active-set method that solves the problem exactly, on a working set
    W of candidate points (when block pivoting ends the gap is at round-off
    level, ~1e-12, whatever ``tol``):

    * block principal pivoting (Judice & Pires 1994) on the unnormalised
      dual ``max sum(a) - a^T G a / 2, a >= 0``: each round solves
      G_FF a_F = 1 on the free set F by one (pivoted) Cholesky
      factorisation and swaps all infeasible indices, so ~1,000 support
      vectors are found in ~5-10 rounds;
    * Wolfe's (1976) minimum-norm-point algorithm on the simplex form
      ``min_{q in simplex} q^T G q``, started from that guess, finishes
      whenever block pivoting stalls or its linear algebra is unreliable.
      Its corral is kept affinely independent with an upper Cholesky factor
      of ``G_SS + kappa 1 1^T`` updated in O(k^2) per added or dropped
      point; it is finite, needs no step size, does not care about the
      condition number of K, and stays well posed when K is rank deficient
      or the data are not separable (the minimum norm is then 0);
    * W starts as the 2,048 points with the smallest margins under the
      uniform dual point; every pass ends with a float64 check of all n
      margins and adds the most violating points (at most half of |W|).
      G_WW is held in float64 (175 MB at |W| = 4,667).

    Why, measured on a 12K fully connected after kernel of MNIST 3v8 (1,005
    support vectors; 2 busy shared cores, one BLAS thread): greedy dual
    coordinate ascent with shrinking needed ~364,000 coordinate steps
    (~14 s) to a gap of 1e-4; Wolfe's algorithm alone ~1,470 major cycles
    (~18 s: each costs O(k |W|) in Python); this method 4 passes and ~35
    factorisations, 0.9-1.8 CPU seconds (1.4-3.6 s wall) against 0.28-0.32
    (0.44-0.69 s) for scikit-learn's SVC(kernel='precomputed', C=1e10) in
    the same runs; on the kernel at initialisation (1,886 support vectors)
    2.6-3.1 CPU seconds against 0.43-0.52.

``"alg1"`` (:func:`solve_alg1`, and :func:`solve_primal_alg1` on explicit
features)
    Algorithm 1 of Ji, Srebro & Telgarsky with theta_t = 1 and
    beta_t = t/(t+1), as the paper's code ran it; the gap shrinks like t^-2.
    The kernel form keeps c and all n margins Gc and needs one product with
    the columns of G whose softmax weight is not negligible per iteration
    (see :func:`solve_alg1`).  Measured on the same kernel with float32
    products: gap 1e-3 after ~9,000 iterations in 75-115 s (the first
    ~1,000 iterations need the full n x n product), 1e-4 after ~26,700 in
    ~130 s.  Its iterates are numerically chaotic (a
    1e-14 perturbation grows to 1e-2 in ~100 iterations), so different
    exact implementations agree iterate by iterate only early on; their
    certificates do not depend on this.

Non-separable data are normal (e.g. 94-dimensional conjugate features of
12K images): they are detected from the dual certificate (the upper bound
falls below ``nonsep_tol`` = 1e-6 times the largest feature norm, so a
margin below that also counts as none) and reported with
``separable=False``; the exact solver then returns the classifier of
Algorithm 1 after a fixed number of iterations (the paper's procedure with
an iteration instead of a time limit), since the hard-margin one does not
exist.  Nothing loops forever: every loop has a cap.  Results are
deterministic (no randomness, stable sorts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.linalg import lapack, solve_triangular

__all__ = [
    "MaxMarginResult",
    "solve",
    "solve_exact",
    "solve_alg1",
    "solve_primal_alg1",
    "certificate",
    "decision_function",
    "error_rate",
    "signed_labels",
]

#: default relative gaps (module docstring): exact solver and Algorithm 1
DEFAULT_TOL = {"exact": 1e-4, "alg1": 1e-3}
#: data whose dual bound is below this times max_i ||phi_i|| count as not separable
DEFAULT_NONSEP_TOL = 1e-6
#: default iteration caps (exact: pivoting rounds + Wolfe major cycles; Algorithm 1 iterations)
DEFAULT_MAX_ITER = {"exact": 200_000, "alg1": 100_000}

# Working memory for float64 products with a float32 K (bytes per block).
_BLOCK_BYTES = 32 * 2**20


@dataclass
class MaxMarginResult:
    """Outcome of a max-margin solve.

    ``coef`` are c >= 0 with ``w = sum_i c_i s_i phi_i``; when the data are
    separated they are scaled to the canonical SVM scale (min_i s_i f(x_i)
    = 1, so ||w|| = 1 / margin), otherwise to ||w|| = 1 (or left as they
    are when w = 0).  ``margin`` is the primal margin of ``coef`` (NaN when
    it does not separate the training set), ``upper_bound`` the best dual
    certificate sqrt(q^T G q) found, ``gap`` = (upper_bound - margin) /
    upper_bound (NaN when not separable).  ``status`` is ``"optimal"`` (gap
    <= tol), ``"nonseparable"`` (certified to ``nonsep_tol``) or
    ``"max_iter"`` (cap reached, nothing certified).
    """

    coef: np.ndarray
    margin: float
    upper_bound: float
    gap: float
    iterations: int
    converged: bool
    separable: bool
    solver: str
    status: str = "optimal"
    n_support: int = 0
    info: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# input checks and the Gram matrix G = diag(s) K diag(s), never formed in full


def signed_labels(y: np.ndarray) -> np.ndarray:
    """Labels in {0, 1} or {-1, +1} as float64 signs s = +-1 (1 / +1 -> +1)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {y.shape}")
    vals = np.unique(y)
    if not (set(vals.tolist()) <= {0, 1} or set(vals.tolist()) <= {-1, 1}):
        raise ValueError(f"labels must be in {{0, 1}} or {{-1, +1}}, got values {vals[:10]}")
    return np.where(y > 0, 1.0, -1.0)


def _check_kernel(K: np.ndarray, n: int) -> np.ndarray:
    K = np.asarray(K)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"the train Gram matrix must be square, got shape {K.shape}")
    if K.shape[0] != n:
        raise ValueError(f"Gram matrix is {K.shape[0]}x{K.shape[0]} but there are {n} labels")
    if K.dtype not in (np.float32, np.float64):
        K = K.astype(np.float64)
    # Spot check (O(n)) that K is the symmetric train Gram matrix.
    for i in {0, n // 2, n - 1} if n else ():
        if not np.allclose(K[i], K[:, i], rtol=1e-5, atol=1e-6 * max(float(np.abs(K[i, i])), 1e-30)):
            raise ValueError(f"the Gram matrix is not symmetric (row {i} differs from column {i})")
    # A sum is finite only if every term is (one pass, no n^2 mask); only
    # when it is not (or overflows) are the entries checked one by one.
    if not np.isfinite(K.sum()) and not np.isfinite(K).all():
        bad = int(np.count_nonzero(~np.isfinite(K)))
        raise ValueError(f"the Gram matrix has {bad} non-finite (NaN or inf) entries")
    return K


class _Gram:
    """Rows and products of G = diag(s) K diag(s) in float64, K in its own dtype."""

    def __init__(self, K: np.ndarray, s: np.ndarray):
        self.K, self.s, self.n = K, s, len(s)
        self.diag = np.einsum("ii->i", K).astype(np.float64)

    def sub(self, rows: np.ndarray, cols: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """G[rows][:, cols] in float64 (into ``out`` if given)."""
        blk = self.K[np.ix_(rows, cols)]
        if out is None:
            out = np.empty((len(rows), len(cols)))
        out[...] = blk
        out *= self.s[rows][:, None]
        out *= self.s[cols][None, :]
        return out

    def rows_dot(self, idx: np.ndarray, x: np.ndarray) -> np.ndarray:
        """G[:, idx] @ x for all n rows, float64, reading K[idx] in blocks."""
        idx = np.asarray(idx)
        out = np.zeros((self.n,) + x.shape[1:])
        sx = (x.T * self.s[idx]).T
        step = max(1, _BLOCK_BYTES // (8 * self.n))
        for b in range(0, len(idx), step):
            blk = self.K[idx[b : b + step]]
            if blk.dtype != np.float64:
                blk = blk.astype(np.float64)
            out += blk.T @ sx[b : b + step]
        return (out.T * self.s).T

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """G @ x in float64 (x of shape (n,) or (n, r)); reads only rows where x != 0."""
        nz = np.flatnonzero(x if x.ndim == 1 else np.any(x != 0, axis=1))
        return self.rows_dot(nz, x[nz])

    def matvec_lowp(self, x: np.ndarray) -> np.ndarray:
        """G @ x in K's own precision (one pass over K); for screening only."""
        sx = (self.s * x).astype(self.K.dtype)
        return self.s * (self.K @ sx).astype(np.float64)


def certificate(K: np.ndarray, y: np.ndarray, coef: np.ndarray, q: np.ndarray | None = None):
    """Primal margin of ``coef`` and the dual bound of ``q`` (default coef/sum).

    Returns ``(margin, bound, gap)``: margin = min_i (Gc)_i / sqrt(c^T G c),
    bound = sqrt(q^T G q) / sum(q) >= optimal margin, gap = (bound - margin)
    / bound.  Computed in float64 from scratch; used by tests and callers
    that want to re-check a stored result.
    """
    s = signed_labels(y)
    K = _check_kernel(K, len(s))
    gram = _Gram(K, s)
    coef = np.asarray(coef, dtype=np.float64)
    g = gram.matvec(coef)
    ww = float(coef @ g)
    margin = float(g.min() / math.sqrt(ww)) if ww > 0 else float("nan")
    q = coef if q is None else np.asarray(q, dtype=np.float64)
    if np.any(q < 0) or not q.sum() > 0:
        raise ValueError("the dual point q must be non-negative and not all zero")
    gq = g if q is coef else gram.matvec(q)
    bound = math.sqrt(max(float(q @ gq), 0.0)) / float(q.sum())
    return margin, bound, (bound - margin) / bound if bound > 0 else float("nan")


def decision_function(K_test_train: np.ndarray, y_train: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """f(x) = w . phi(x) = sum_i coef_i s_i K(x, x_i), shape (m,)."""
    s = signed_labels(y_train)
    Kt = np.asarray(K_test_train)
    if Kt.ndim != 2 or Kt.shape[1] != len(s):
        raise ValueError(f"K_test_train must be (m, {len(s)}), got {Kt.shape}")
    return Kt.astype(np.float64, copy=False) @ (np.asarray(coef, dtype=np.float64) * s)


def error_rate(decision: np.ndarray, y: np.ndarray) -> float:
    """Fraction misclassified; class 1 (or +1) is predicted when decision > 0."""
    decision = np.asarray(decision)
    s = signed_labels(y)
    if decision.shape != s.shape:
        raise ValueError(f"decision has shape {decision.shape}, labels {s.shape}")
    return float(np.mean((decision > 0) != (s > 0)))


def solve(K, y, solver: str = "exact", tol: float | None = None, max_iter: int | None = None, **options):
    """Max-margin (hard-margin, no bias) classifier for the train Gram ``K``.

    ``solver`` is ``"exact"`` (Wolfe's algorithm with a block-pivoting warm
    start; default) or ``"alg1"`` (Algorithm 1 of Ji, Srebro & Telgarsky
    2021, kernel form).  ``tol`` is the relative gap to stop at (defaults
    ``DEFAULT_TOL``), ``max_iter`` the iteration cap (``DEFAULT_MAX_ITER``).
    Further keyword options go to :func:`solve_exact` / :func:`solve_alg1`.
    """
    if solver == "exact":
        return solve_exact(K, y, tol=tol, max_iter=max_iter, **options)
    if solver == "alg1":
        return solve_alg1(K, y, tol=tol, max_iter=max_iter, **options)
    raise ValueError(f"unknown solver {solver!r}; choose 'exact' or 'alg1'")


def _finish(coef, g, ww, bound, iterations, tol, solver, nonsep, info):
    """Scale coef canonically and fill a result from G coef = g, coef^T G coef = ww."""
    gmin = float(g.min())
    separated = ww > 0 and gmin > 0 and not nonsep
    margin = gmin / math.sqrt(ww) if separated else float("nan")
    gap = (bound - margin) / bound if separated else float("nan")
    if nonsep:
        status = "nonseparable"
    elif separated and gap <= tol:
        status = "optimal"
    else:
        status = "max_iter"
    if separated:
        coef = coef / gmin
    elif ww > 0:
        coef = coef / math.sqrt(ww)
    return MaxMarginResult(
        coef=coef,
        margin=float(margin),
        upper_bound=float(bound),
        gap=float(gap),
        iterations=int(iterations),
        converged=status in ("optimal", "nonseparable"),
        separable=bool(separated),
        solver=solver,
        status=status,
        n_support=int(np.count_nonzero(coef)),
        info=info,
    )


# ---------------------------------------------------------------------------
# exact solver: Wolfe's minimum-norm point with a working set


class _Corral:
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


def _bpp(GW: np.ndarray, free0: np.ndarray, rounds: int, tol: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Block principal pivoting on max sum(a) - a^T G a / 2, a >= 0 (G = GW).

    Returns local indices of a guessed support (possibly empty), their
    weights a > 0 and the number of rounds.  Each round solves G_FF a_F = 1 on the free set F and
    swaps the infeasible indices (a_i <= 0 in F; (G a)_i < 1 - tol
    outside), adding at most half of |F| (>= 64) of the worst outside
    points: adding them all overshoots and costs more rounds of larger
    factorisations (measured).  The solve uses a pivoted Cholesky
    factorisation that keeps only a numerically independent subset of F
    (pivots above 1e-10 of the largest diagonal), so rank-deficient kernels
    need no special case.  It stops when no index is infeasible, when that
    count has not fallen (nor the free set grown) for three rounds (the
    exchange can cycle), or after ``rounds`` rounds, and returns the
    positive part of the last free set.  The caller verifies the result
    and hands it to Wolfe's algorithm when it is not optimal.
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


def solve_exact(
    K,
    y,
    tol: float | None = None,
    max_iter: int | None = None,
    nonsep_tol: float = DEFAULT_NONSEP_TOL,
    working_set: int = 2048,
    grow: float = 0.5,
    warm_start: bool = True,
    nonsep_coef: str = "alg1",
    nonsep_iter: int = 1000,
) -> MaxMarginResult:
    """Exact hard-margin SVM without bias: Wolfe's min-norm point on the dual.

    Minimises q^T G q over the simplex; at the solution q*, w* = Z^T q* /
    ||Z^T q*||^2 is the max-margin classifier and ||Z^T q*|| its margin.
    Stops when the relative gap ``1 - min_i (G q)_i / q^T G q`` over *all*
    points is at most ``tol`` (default 1e-4), when ``sqrt(q^T G q) <=
    nonsep_tol * max_i ||z_i||`` (not separable), or after ``max_iter``
    steps (block-pivoting rounds plus Wolfe major cycles; ``iterations``
    reports their number).  ``working_set`` is the initial number of candidate
    points, ``grow`` the fraction by which a pass may enlarge it (by the
    most violating points); ``warm_start`` seeds each pass with block
    principal pivoting.

    Not separable: the dual optimum is q with Z^T q = 0, so w = 0 and the
    hard-margin classifier does not exist.  The returned ``coef`` are then
    those of Algorithm 1 after ``nonsep_iter`` iterations (``nonsep_coef=
    "alg1"``, default; ``info["coef_from"]`` says so) or the dual weights q
    (``"dual"``).
    """
    tol = DEFAULT_TOL["exact"] if tol is None else float(tol)
    max_iter = DEFAULT_MAX_ITER["exact"] if max_iter is None else int(max_iter)
    if nonsep_coef not in ("alg1", "dual"):
        raise ValueError(f"nonsep_coef must be 'alg1' or 'dual', got {nonsep_coef!r}")
    s = signed_labels(y)
    K = _check_kernel(K, len(s))
    n = len(s)
    gram = _Gram(K, s)
    if np.any(gram.diag < 0):
        raise ValueError("the Gram matrix has negative diagonal entries; it is not a kernel matrix")
    kappa = float(gram.diag.max())
    info: dict[str, Any] = {"passes": 0, "minor": 0, "dependent": 0, "bpp_support": []}
    if kappa == 0.0:
        return _finish(np.zeros(n), np.zeros(n), 0.0, 0.0, 0, tol, "exact", True, info)
    thresh2 = nonsep_tol**2 * kappa  # squared dual value that counts as 0
    inner_tol = tol / 4

    # First candidates: smallest margins under the uniform dual point.
    # The working set W only grows, in insertion order; G_WW lives in the
    # top-left corner of a buffer with spare capacity, so a pass usually
    # adds rows and columns without copying what is there.
    g0 = gram.matvec_lowp(np.full(n, 1.0 / n))
    W = np.argsort(g0, kind="stable")[: min(n, working_set)]
    buf = np.empty((min(n, 2 * len(W)),) * 2)
    gram.sub(W, W, out=buf[: len(W), : len(W)])
    pos = np.full(n, -1, dtype=np.intp)
    pos[W] = np.arange(len(W))
    S_glob = np.zeros(0, dtype=np.intp)
    lam_glob = np.zeros(0)
    steps = 0  # block-pivoting rounds + Wolfe major cycles
    nonsep = False
    while True:
        info["passes"] += 1
        GW = buf[: len(W), : len(W)]
        seed, lam = pos[S_glob], lam_glob
        if warm_start and steps < max_iter:
            free0 = seed if len(seed) else np.arange(min(64, len(W)))
            guess, weight, rounds = _bpp(GW, free0, rounds=min(30, max_iter - steps), tol=inner_tol)
            steps += rounds
            info["bpp_support"].append(int(len(guess)))
            if len(guess):
                seed, lam = guess, weight / weight.sum()
        done = False
        if len(seed):
            # A block-pivoting solution that satisfies the optimality
            # conditions on W needs no Wolfe cycles (and no factorisation).
            gW = lam @ GW[seed]
            xx = float(lam @ gW[seed])
            done = xx > thresh2 and float(gW.min()) >= (1.0 - inner_tol) * xx
        if done:
            S_loc = seed
        else:
            corral = _Corral(GW, kappa)
            corral.reset(seed, lam if len(seed) else None)
            if corral.k == 0:
                corral.reset([int(np.argmin(np.diag(GW)))])
            info["minor"] += corral.settle(max_minor=10 * len(W) + 10)
            excluded = np.zeros(len(W), bool)
            while steps < max_iter:
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
                info["minor"] += corral.settle(max_minor=10 * len(W) + 10)
            S_loc, lam = np.asarray(corral.S, dtype=np.intp), corral.lam
        order = np.argsort(W[S_loc], kind="stable")
        S_glob, lam_glob = W[S_loc][order], lam[order].copy()
        g_full = gram.rows_dot(S_glob, lam_glob)
        xx = float(lam_glob @ g_full[S_glob])
        if nonsep or xx <= thresh2:
            nonsep = True
            break
        if 1.0 - float(g_full.min()) / xx <= tol or steps >= max_iter:
            break
        viol = np.flatnonzero((pos < 0) & (g_full < (1.0 - inner_tol) * xx))
        if len(viol) == 0:
            # Every violator is already a candidate yet the pass stopped:
            # numerically stuck on dependent points; report what we have.
            break
        add = viol[np.argsort(g_full[viol], kind="stable")[: max(256, int(grow * len(W)))]]
        m0, W = len(W), np.concatenate([W, add])
        if len(W) > buf.shape[0]:
            bigger = np.empty((min(n, max(len(W), 2 * buf.shape[0])),) * 2)
            bigger[:m0, :m0] = buf[:m0, :m0]
            buf = bigger
        gram.sub(add, W, out=buf[m0 : len(W), : len(W)])
        buf[:m0, m0 : len(W)] = buf[m0 : len(W), :m0].T
        pos[add] = np.arange(m0, len(W))
    coef = np.zeros(n)
    coef[S_glob] = lam_glob
    info["working_set"] = int(len(W))
    bound = math.sqrt(max(xx, 0.0))
    if nonsep and nonsep_coef == "alg1":
        # The min-norm point is w = 0 here: its direction is round-off.  The
        # classifier reported instead is the paper's own procedure stopped at
        # a fixed iteration count (its implicit bias on non-separable data
        # is a sensible linear classifier; ~2.4 % train error on 94-dim
        # conjugate features of MNIST 3v8 where w = 0 gives ~34 %).
        Phi = _low_rank_features(K, max_rank=512)
        if Phi is not None:
            # Same iterates, O(n r) instead of O(n^2) per iteration.
            alt = solve_primal_alg1(Phi, y, tol=0.0, max_iter=nonsep_iter, nonsep_tol=0.0)
        else:
            alt = solve_alg1(K, y, tol=0.0, max_iter=nonsep_iter, nonsep_tol=0.0)
        info["coef_from"] = f"alg1 after {alt.iterations} iterations"
        info["alg1_iterations"] = alt.iterations
        g = gram.matvec(alt.coef)
        return _finish(alt.coef, g, float(alt.coef @ g), bound, steps, tol, "exact", True, info)
    info["coef_from"] = "dual"
    return _finish(coef, g_full, xx, bound, steps, tol, "exact", nonsep, info)


def _low_rank_features(K: np.ndarray, max_rank: int, rel_tol: float = 1e-10) -> np.ndarray | None:
    """Phi (n, r) with K ~= Phi Phi^T by pivoted partial Cholesky, or None if r > max_rank.

    Stops when every residual diagonal entry is at most ``rel_tol`` times
    the largest diagonal entry, so |K - Phi Phi^T|_ij <= rel_tol max_i K_ii.
    Costs O(n r^2): worth trying before an O(n^2)-per-iteration method.
    """
    n = K.shape[0]
    d = np.einsum("ii->i", K).astype(np.float64)
    stop = rel_tol * float(d.max())
    L = np.empty((min(max_rank, n), n))
    for k in range(min(max_rank, n) + 1):
        p = int(np.argmax(d))
        if d[p] <= stop:
            return np.ascontiguousarray(L[:k].T)
        if k == L.shape[0]:
            return None
        col = K[p].astype(np.float64) - L[:k, p] @ L[:k]
        L[k] = col / math.sqrt(d[p])
        d -= L[k] ** 2
        d[p] = 0.0
    return None


# ---------------------------------------------------------------------------
# Algorithm 1 of Ji, Srebro & Telgarsky (2021)


def _softmax_neg(m: np.ndarray) -> np.ndarray:
    """softmax(-m), shifted by min(m) so that no exponent overflows."""
    e = np.exp(-(m - m.min()))
    return e / e.sum()


def _alg1_bound(q_bound: float, c: np.ndarray, ww: float, best: float) -> float:
    """Best dual value among q_t, c/sum(c) (= h_t / sum h_t) and earlier ones."""
    h_bound = math.sqrt(max(ww, 0.0)) / c.sum() if c.sum() > 0 else np.inf
    return min(q_bound, h_bound, best)


def _gap(margin: float, bound: float) -> float:
    return (bound - margin) / bound if bound > 0 and np.isfinite(margin) else np.inf


def solve_alg1(
    K,
    y,
    tol: float | None = None,
    max_iter: int | None = None,
    nonsep_tol: float = DEFAULT_NONSEP_TOL,
    active_set: bool = True,
    matvec_dtype: Any = None,
    active_threshold: float = 40.0,
    refresh_growth: float = 2.0,
    max_batch: int = 256,
) -> MaxMarginResult:
    """Algorithm 1 of Ji, Srebro & Telgarsky (2021), kernel form.

    The primal iterates (theta_t = 1, beta_t = t/(t+1), t = 0, 1, ...)::

        q_t     = softmax(-Z w_t)        # grad of logsumexp(-Z w) is -Z^T q_t
        g_t     = beta_t (g_{t-1} - Z^T q_t)
        w_{t+1} = w_t - (g_t - Z^T q_t)  # = w_t + Z^T (a_t + q_t)

    are kept as w = Z^T c and g = -Z^T a with the margins m = G c and u = G a:
    one product v = G q_t per iteration, then a <- beta (a + q), u <- beta
    (u + v), c <- c + a + q, m <- m + u + v.  Dual points are q_t and
    c / sum(c) (a weighted average of the past q's, the paper's
    h_t / sum h_t); the smallest bound seen is reported.

    ``active_set=False``: every product is a full one and the certificate
    is checked every iteration (:func:`solve_primal_alg1` stops at the same
    iteration, up to round-off).

    ``active_set=True`` (default): q is computed on the cached set C of
    points within ``active_threshold + 20`` of the smallest margin, the
    weights of all others (below e^-40 ~ 4e-18 of the largest, under the
    float64 resolution of the sums they would enter) being 0; iterations then run in batches (up to
    ``max_batch``) that update only the margins in C, with products by the
    |C| x |C| block.  After a batch the other margins are brought up to
    date exactly by one product with the stored q's (a matrix product that
    reads K[C] once) and the same recurrences; if any of them came within
    ``active_threshold`` of the smallest margin at any step of the batch,
    the batch is undone and redone with that point in C.  So every
    iterate is that of Algorithm 1 with weights below e^-40 set to 0, and
    the certificate, checked at the end of each batch (or earlier when a
    running estimate says the gap is reached), uses current margins of all
    points.

    ``matvec_dtype`` (default K's dtype) may be float32 for speed.  The
    margins accumulate the float32 products, whose errors are relative to
    the small increments (~1e-7 of |m| after 10^4 iterations, harmless to
    the softmax); they are recomputed in float64 whenever t has grown by
    the factor ``refresh_growth`` and before any stop, and the dual bound
    is always evaluated in float64.  (Recomputing m = G c itself in float32
    would not do: its error is relative to sum_j |G_ij| c_j >> |m_i|.)

    Algorithm 1 is numerically chaotic: a relative perturbation of 1e-14 of
    an early iterate grows to ~1e-2 within ~100 iterations (measured), so
    two exact implementations (primal and kernel form, with and without
    the active set) agree iterate by iterate only over the first few dozen
    iterations; their margins and certificates converge all the same.
    """
    tol = DEFAULT_TOL["alg1"] if tol is None else float(tol)
    max_iter = DEFAULT_MAX_ITER["alg1"] if max_iter is None else int(max_iter)
    s = signed_labels(y)
    K = _check_kernel(K, len(s))
    n = len(s)
    gram = _Gram(K, s)
    bound_zero = nonsep_tol * math.sqrt(float(gram.diag.max()))
    lowp = np.dtype(K.dtype if matvec_dtype is None else matvec_dtype)
    info: dict[str, Any] = {"refreshes": 0, "regathers": 0, "redone": 0, "cache_min": n}

    c, a, m, u = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    best = np.inf
    t, t_ref = 0, 0
    cache: dict[str, Any] = {}

    def gather(idx):
        cache["C"] = idx
        cache["inC"] = np.zeros(n, bool)
        cache["inC"][idx] = True
        if len(idx) == n:
            cache["KC"] = K if K.dtype == lowp else K.astype(lowp)
            cache["KCC"] = cache["KC"]
            cache["KCC64"] = K if K.dtype == np.float64 else None
        else:
            cache["KC"] = K[idx].astype(lowp, copy=False)
            cache["KCC"] = np.ascontiguousarray(cache["KC"][:, idx])
            cache["KCC64"] = None
        info["cache_min"] = min(info["cache_min"], len(idx))

    def refresh():
        both = gram.matvec(np.stack([c, a], axis=1))
        info["refreshes"] += 1
        return both[:, 0].copy(), both[:, 1].copy()

    gather(np.arange(n))
    batch = 1
    nonsep = False
    while True:
        # -- batch boundary: every margin is current --
        if lowp != np.float64 and t >= refresh_growth * t_ref and t - t_ref >= 10:
            m, u = refresh()
            t_ref = t
        if active_set:
            gaps = m - m.min()
            need = gaps <= active_threshold
            if np.any(need & ~cache["inC"]) or 2 * np.count_nonzero(need) < len(cache["C"]) - 64:
                gather(np.flatnonzero(gaps <= active_threshold + 20.0))
                info["regathers"] += 1
        C, KC, KCC = cache["C"], cache["KC"], cache["KCC"]
        sC = s[C]
        mC = m[C]
        q = _softmax_neg(mC)
        vC = sC * (KCC @ (sC * q).astype(lowp)).astype(np.float64)
        # The certificate counts only on float64 margins (always, or right
        # after a refresh); otherwise it is an estimate that triggers one.
        exact_now = lowp == np.float64 or t == t_ref
        if lowp == np.float64 or not exact_now:
            qGq = float(q @ vC)
        elif len(C) == n:
            qGq = float(q @ gram.matvec(q))
        else:
            if cache["KCC64"] is None:
                cache["KCC64"] = K[np.ix_(C, C)].astype(np.float64)
            qGq = float(q @ (sC * (cache["KCC64"] @ (sC * q))))
        ww = float(c @ m)
        bound = _alg1_bound(math.sqrt(max(qGq, 0.0)), c, ww, best)
        if exact_now:
            best = bound
        margin = float(m.min()) / math.sqrt(ww) if ww > 0 and m.min() > 0 else -np.inf
        if bound <= bound_zero or _gap(margin, bound) <= tol or t >= max_iter:
            if not exact_now:
                m, u = refresh()
                t_ref = t
                continue
            nonsep = best <= bound_zero
            break

        # -- a batch of iterations on C (or one full iteration) --
        off = np.flatnonzero(~cache["inC"])
        # Without points outside C there is nothing to batch for.
        k = min(batch if len(off) else 1, max_iter - t)
        saved = (t, c.copy(), a.copy(), m.copy(), u.copy()) if len(off) else None
        Q = np.empty((len(C), k))
        betas, mins = np.empty(k), np.empty(k)
        done = 0
        for j in range(k):
            if j:
                mC = m[C]
                q = _softmax_neg(mC)
                vC = sC * (KCC @ (sC * q).astype(lowp)).astype(np.float64)
                # A running estimate (stale margins outside C) only ends the
                # batch early so that the exact check comes sooner.
                ww = float(c @ m)
                est = _alg1_bound(math.sqrt(max(float(q @ vC), 0.0)), c, ww, best)
                if ww > 0 and _gap(float(mC.min()) / math.sqrt(ww), est) <= tol:
                    break
            beta = t / (t + 1.0)
            Q[:, j], betas[j], mins[j] = q, beta, float(mC.min())
            a *= beta
            a[C] += beta * q
            c += a
            c[C] += q
            if len(C) == n:
                u = beta * (u + vC)
                m += u + vC
            else:
                u[C] = beta * (u[C] + vC)
                m[C] += u[C] + vC
            t += 1
            done += 1
        if len(off) == 0 or done == 0:
            batch = min(2 * batch, max_batch)
            continue
        # Bring the margins outside C up to date, checking every step.
        V = (KC.T @ (sC[:, None] * Q[:, :done]).astype(lowp)).astype(np.float64)[off] * s[off, None]
        mo, uo = m[off], u[off]
        late = None
        for j in range(done):
            close = mo - mins[j] < active_threshold
            if close.any():
                late = (j, off[close])
                break
            uo = betas[j] * (uo + V[:, j])
            mo = mo + uo + V[:, j]
        if late is None:
            m[off], u[off] = mo, uo
            batch = min(2 * batch, max_batch)
            continue
        # A weight we set to 0 was not negligible at step j: redo the batch.
        info["redone"] += 1
        t, c, a, m, u = saved
        gaps = m - m.min()
        gather(np.union1d(np.flatnonzero(gaps <= active_threshold + 20.0), late[1]))
        info["regathers"] += 1
        batch = max(1, late[0])
    info["cache_final"] = int(len(cache["C"]))
    return _finish(c, m, float(c @ m), best, t, tol, "alg1", nonsep, info)


def solve_primal_alg1(
    Phi,
    y,
    tol: float = DEFAULT_TOL["alg1"],
    max_iter: int = DEFAULT_MAX_ITER["alg1"],
    nonsep_tol: float = DEFAULT_NONSEP_TOL,
) -> MaxMarginResult:
    """Algorithm 1 of Ji, Srebro & Telgarsky (2021) on explicit features (n, d).

    The paper's code's form: rows z_i = s_i phi_i, w = g = 0, and per step
    q = softmax(-Z w), grad = -Z^T q, g = (g + grad) t/(t+1), w = w - (g +
    grad), t += 1.  The coefficients c with w = Z^T c are tracked alongside,
    so ``coef`` is in the same parametrisation as :func:`solve_alg1`; the
    certificate is checked every iteration.
    """
    s = signed_labels(y)
    Phi = np.asarray(Phi, dtype=np.float64)
    if Phi.ndim != 2 or Phi.shape[0] != len(s):
        raise ValueError(f"features must be ({len(s)}, d), got {Phi.shape}")
    if not np.isfinite(Phi).all():
        raise ValueError("the feature matrix has non-finite (NaN or inf) entries")
    n = len(s)
    Z = Phi * s[:, None]
    bound_zero = nonsep_tol * float(np.sqrt((Z * Z).sum(axis=1).max()))
    w = np.zeros(Z.shape[1])
    gvec = np.zeros_like(w)
    c, a = np.zeros(n), np.zeros(n)
    best = np.inf
    t = 0
    nonsep = False
    while True:
        m = Z @ w
        q = _softmax_neg(m)
        zq = Z.T @ q
        ww = float(w @ w)
        best = _alg1_bound(float(np.linalg.norm(zq)), c, ww, best)
        margin = float(m.min()) / math.sqrt(ww) if ww > 0 and m.min() > 0 else -np.inf
        if best <= bound_zero:
            nonsep = True
            break
        if _gap(margin, best) <= tol or t >= max_iter:
            break
        beta = t / (t + 1.0)
        grad = -zq
        gvec = (gvec + grad) * beta
        w = w - (gvec + grad)
        a = beta * (a + q)
        c += a + q
        t += 1
    return _finish(c, m, ww, best, t, tol, "alg1", nonsep, {})
