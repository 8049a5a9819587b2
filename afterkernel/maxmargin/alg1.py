"""Algorithm 1 of Ji, Srebro & Telgarsky (2021, "Fast margin maximization via
dual acceleration"), the paper's own max-margin procedure (§2), with
theta_t = 1 and beta_t = t/(t+1) as the paper's code ran it; the gap shrinks
like t^-2.

The primal iterates (t = 0, 1, ...; rows z_i = s_i phi_i)::

    q_t     = softmax(-Z w_t)        # grad of logsumexp(-Z w) is -Z^T q_t
    g_t     = beta_t (g_{t-1} - Z^T q_t)
    w_{t+1} = w_t - (g_t - Z^T q_t)  # = w_t + Z^T (a_t + q_t)

:func:`solve_primal_alg1` runs them on explicit features.  The kernel form
(:func:`solve_alg1`) keeps w = Z^T c and g = -Z^T a with the margins m = G c
and u = G a: one product v = G q_t per iteration, then a <- beta (a + q),
u <- beta (u + v), c <- c + a + q, m <- m + u + v.  Dual points are q_t and
c / sum(c) (a weighted average of the past q's, the paper's h_t / sum h_t);
the smallest bound seen is reported.

The active set (:class:`_ActiveSet`): q is computed on the set C of points
within ``active_threshold + 20`` of the smallest margin, the weights of all
others (below e^-40 ~ 4e-18 of the largest, under the float64 resolution of
the sums they would enter) being 0; iterations then run in batches (up to
``max_batch``) that update only the margins in C, with products by the
|C| x |C| block.  After a batch the other margins are brought up to date
exactly by one product with the stored q's (a matrix product that reads
K[C] once) and the same recurrences; if any of them came within
``active_threshold`` of the smallest margin at any step of the batch, the
batch is undone and redone with that point in C.  So every iterate is that
of Algorithm 1 with weights below e^-40 set to 0, and the certificate,
checked at the end of each batch (or earlier when a running estimate says
the gap is reached), uses current margins of all points.

Products in float32 (``matvec_dtype``): the margins accumulate the float32
products, whose errors are relative to the small increments (~1e-7 of |m|
after 10^4 iterations, harmless to the softmax); they are recomputed in
float64 whenever t has grown by the factor ``refresh_growth`` and before
any stop, and the dual bound is always evaluated in float64.  (Recomputing
m = G c itself in float32 would not do: its error is relative to sum_j
|G_ij| c_j >> |m_i|.)

Measured on a 12K fully connected after kernel of MNIST 3v8 with float32
products: gap 1e-3 after ~9,000 iterations in 75-115 s (the first ~1,000
iterations need the full n x n product), 1e-4 after ~26,700 in ~130 s.
Algorithm 1 is numerically chaotic: a relative perturbation of 1e-14 of an
early iterate grows to ~1e-2 within ~100 iterations (measured), so two
exact implementations (primal and kernel form, with and without the active
set) agree iterate by iterate only over the first few dozen iterations;
their margins and certificates converge all the same.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from afterkernel.maxmargin.gram import SignedGram, check_kernel
from afterkernel.maxmargin.result import (DEFAULT_MAX_ITER, DEFAULT_TOL, MaxMarginResult, finish,
                                          nonsep_tolerance)
from afterkernel.vocabulary import signed_labels


def solve_alg1(
    K,
    y,
    tol: float | None = None,
    max_iter: int | None = None,
    nonsep_tol: float | None = None,
    active_set: bool = True,
    matvec_dtype: Any = None,
    active_threshold: float = 40.0,
    refresh_growth: float = 2.0,
    max_batch: int = 256,
) -> MaxMarginResult:
    """Algorithm 1, kernel form, for the train Gram ``K`` (n, n) and labels ``y`` (n,).

    Stops when the relative gap is at most ``tol`` (default 1e-3), when the
    dual bound is at most ``nonsep_tol * max_i ||z_i||`` (not separable;
    default by K's precision,
    :func:`~afterkernel.maxmargin.result.nonsep_tolerance`) or after
    ``max_iter`` iterations.  ``active_set=False``: every product is
    a full one and the certificate is checked every iteration
    (:func:`solve_primal_alg1` stops at the same iteration, up to
    round-off); ``active_set=True`` (default): batches on the active set
    (module docstring; ``active_threshold``, ``max_batch``).
    ``matvec_dtype`` (default K's dtype) may be float32 for speed (margins
    recomputed in float64 as t grows by ``refresh_growth``).
    """
    tol = DEFAULT_TOL["alg1"] if tol is None else float(tol)
    max_iter = DEFAULT_MAX_ITER["alg1"] if max_iter is None else int(max_iter)
    s = signed_labels(y)
    K = check_kernel(K, len(s))
    gram = SignedGram(K, s)
    lowp = np.dtype(K.dtype if matvec_dtype is None else matvec_dtype)
    info: dict[str, Any] = {"refreshes": 0, "regathers": 0, "redone": 0, "cache_min": len(s)}
    run = _KernelRun(gram, _ActiveSet(K, s, lowp, active_threshold, info), tol=tol, max_iter=max_iter,
                     bound_zero=nonsep_tolerance(K.dtype, nonsep_tol) * math.sqrt(float(gram.diag.max())), use_active_set=active_set,
                     refresh_growth=refresh_growth, max_batch=max_batch, info=info)
    while not run.certify():
        run.run_batch()
    info["cache_final"] = int(len(run.active.C))
    it = run.it
    return finish(it.c, it.m, float(it.c @ it.m), run.best, it.t, tol, "alg1",
                  run.best <= run.bound_zero, info)


def solve_primal_alg1(
    Phi,
    y,
    tol: float = DEFAULT_TOL["alg1"],
    max_iter: int = DEFAULT_MAX_ITER["alg1"],
    nonsep_tol: float | None = None,
) -> MaxMarginResult:
    """Algorithm 1 on explicit features ``Phi`` (n, d) with labels ``y`` (n,).

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
    bound_zero = nonsep_tolerance(Z.dtype, nonsep_tol) * float(np.sqrt((Z * Z).sum(axis=1).max()))
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
    return finish(c, m, ww, best, t, tol, "alg1", nonsep, {})


def _softmax_neg(m: np.ndarray) -> np.ndarray:
    """softmax(-m), shifted by min(m) so that no exponent overflows."""
    e = np.exp(-(m - m.min()))
    return e / e.sum()


def _alg1_bound(q_bound: float, c: np.ndarray, ww: float, best: float) -> float:
    """Best dual value among q_t, c/sum(c) (= h_t / sum h_t) and earlier ones."""
    h_bound = math.sqrt(max(ww, 0.0)) / c.sum() if c.sum() > 0 else np.inf
    return min(q_bound, h_bound, best)


def _gap(margin: float, bound: float) -> float:
    """The relative gap (bound - margin) / bound; inf while nothing is certified."""
    return (bound - margin) / bound if bound > 0 and np.isfinite(margin) else np.inf


class _Iterate:
    """Algorithm 1's state in the kernel form after ``t`` steps: w = Z^T c,
    g = -Z^T a and the margins m = G c, u = G a (each (n,))."""

    def __init__(self, n: int):
        self.t = 0
        self.c, self.a, self.m, self.u = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)

    def copy(self) -> _Iterate:
        other = _Iterate(0)
        other.t = self.t
        other.c, other.a, other.m, other.u = self.c.copy(), self.a.copy(), self.m.copy(), self.u.copy()
        return other

    def recompute_margins(self, gram: SignedGram) -> None:
        """m = G c and u = G a in float64 from scratch."""
        both = gram.matvec(np.stack([self.c, self.a], axis=1))
        self.m, self.u = both[:, 0].copy(), both[:, 1].copy()

    def step(self, C: np.ndarray, q: np.ndarray, vC: np.ndarray) -> float:
        """One iteration with weights ``q`` on C (0 elsewhere) and vC = (G q)_C;
        only the margins in C are updated.  Returns beta_t."""
        beta = self.t / (self.t + 1.0)
        self.a *= beta
        self.a[C] += beta * q
        self.c += self.a
        self.c[C] += q
        if len(C) == len(self.m):
            self.u = beta * (self.u + vC)
            self.m += self.u + vC
        else:
            self.u[C] = beta * (self.u[C] + vC)
            self.m[C] += self.u[C] + vC
        self.t += 1
        return beta


class _ActiveSet:
    """The points C whose softmax weights Algorithm 1 keeps (all others' are
    0), with K[C] (|C|, n) and K[C, C] in the product precision ``lowp``.

    Starts as all n points; ``info`` counts regathers and the smallest |C|.
    """

    def __init__(self, K: np.ndarray, s: np.ndarray, lowp: np.dtype, threshold: float, info: dict[str, Any]):
        self.K, self.s, self.lowp, self.threshold, self.info = K, s, lowp, threshold, info
        self.gather(np.arange(len(s)))

    def gather(self, idx: np.ndarray) -> None:
        """Make C = ``idx`` and read its rows of K."""
        K, n = self.K, len(self.s)
        self.C, self.sC = idx, self.s[idx]
        self.inC = np.zeros(n, bool)
        self.inC[idx] = True
        self.outside = np.flatnonzero(~self.inC)
        if len(idx) == n:
            self.KC = K if K.dtype == self.lowp else K.astype(self.lowp)
            self.KCC = self.KC
        else:
            self.KC = K[idx].astype(self.lowp, copy=False)
            self.KCC = np.ascontiguousarray(self.KC[:, idx])
        self.info["cache_min"] = min(self.info["cache_min"], len(idx))

    def regather(self, m: np.ndarray, also: np.ndarray | None = None) -> None:
        """C = the points within ``threshold + 20`` of the smallest margin of m (n,), and ``also``."""
        near = np.flatnonzero(m - m.min() <= self.threshold + 20.0)
        self.gather(near if also is None else np.union1d(near, also))
        self.info["regathers"] += 1

    def track(self, m: np.ndarray) -> None:
        """Regather when a point within ``threshold`` of the smallest margin
        is outside C, or when C is much larger than those points."""
        need = m - m.min() <= self.threshold
        if np.any(need & ~self.inC) or 2 * np.count_nonzero(need) < len(self.C) - 64:
            self.regather(m)

    def weights(self, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(m_C, q = softmax(-m_C), (G q)_C in the product precision), each (|C|,)."""
        mC = m[self.C]
        q = _softmax_neg(mC)
        vC = self.sC * (self.KCC @ (self.sC * q).astype(self.lowp)).astype(np.float64)
        return mC, q, vC

    def exact_qGq(self, q: np.ndarray, gram: SignedGram) -> float:
        """q^T G q in float64 for weights q (|C|,) on C, from K[C, C] (or,
        when C is every point, K) by blocks of rows: no float64 copy of it."""
        if len(self.C) == len(self.s):
            return float(q @ gram.matvec(q))
        sq, C = self.sC * q, self.C
        step = max(1, (32 << 20) // (8 * len(self.s)))
        total = 0.0
        for b in range(0, len(q), step):
            # K's own entries (K[C, C] holds them rounded when lowp is narrower)
            blk = self.KCC[b : b + step] if self.KCC.dtype == self.K.dtype else self.K[C[b : b + step]][:, C]
            total += float(sq[b : b + step] @ (blk.astype(np.float64) @ sq))
        return total

    def catch_up(self, it: _Iterate, Q: np.ndarray, betas: np.ndarray, mins: np.ndarray):
        """Bring the margins outside C up to date after the steps with weights
        Q (|C|, k), betas (k,) and smallest margins mins (k,), checking every step.

        Returns None, or ``(j, points)`` (``it`` then unchanged) when
        ``points`` came within ``threshold`` of the smallest margin at step j.
        """
        off, s = self.outside, self.s
        V = (self.KC.T @ (self.sC[:, None] * Q).astype(self.lowp)).astype(np.float64)[off] * s[off, None]
        mo, uo = it.m[off], it.u[off]
        for j in range(Q.shape[1]):
            close = mo - mins[j] < self.threshold
            if close.any():
                return j, off[close]
            uo = betas[j] * (uo + V[:, j])
            mo = mo + uo + V[:, j]
        it.m[off], it.u[off] = mo, uo
        return None


class _KernelRun:
    """Algorithm 1 in the kernel form, batch by batch: certify at a batch
    boundary, run a batch on the active set, catch up outside it."""

    def __init__(self, gram: SignedGram, active: _ActiveSet, *, tol: float, max_iter: int, bound_zero: float,
                 use_active_set: bool, refresh_growth: float, max_batch: int, info: dict[str, Any]):
        self.gram, self.active, self.lowp = gram, active, active.lowp
        self.tol, self.max_iter, self.bound_zero = tol, max_iter, bound_zero
        self.use_active_set, self.refresh_growth = use_active_set, refresh_growth
        self.max_batch, self.info = max_batch, info
        self.it = _Iterate(gram.n)
        self.best = np.inf
        self.t_ref = 0  # iteration of the last float64 margins
        self.batch = 1
        self.current: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def refresh(self) -> None:
        """Recompute the margins in float64 (counted in ``info``)."""
        self.it.recompute_margins(self.gram)
        self.info["refreshes"] += 1
        self.t_ref = self.it.t

    def _refresh_due(self) -> bool:
        """Low-precision products: whether t has grown by the factor
        ``refresh_growth`` (and by 10) since the last float64 margins."""
        t = self.it.t
        return self.lowp != np.float64 and t >= self.refresh_growth * self.t_ref and t - self.t_ref >= 10

    def certify(self) -> bool:
        """At a batch boundary (every margin current): whether Algorithm 1 stops here."""
        it = self.it
        while True:
            if self._refresh_due():
                self.refresh()
            if self.use_active_set:
                self.active.track(it.m)
            self.current = self.active.weights(it.m)
            _, q, vC = self.current
            # The certificate counts only on float64 margins (always, or right
            # after a refresh); otherwise it is an estimate that triggers one.
            exact_now = self.lowp == np.float64 or it.t == self.t_ref
            if self.lowp == np.float64 or not exact_now:
                qGq = float(q @ vC)
            else:
                qGq = self.active.exact_qGq(q, self.gram)
            ww = float(it.c @ it.m)
            bound = _alg1_bound(math.sqrt(max(qGq, 0.0)), it.c, ww, self.best)
            if exact_now:
                self.best = bound
            margin = float(it.m.min()) / math.sqrt(ww) if ww > 0 and it.m.min() > 0 else -np.inf
            if not (bound <= self.bound_zero or _gap(margin, bound) <= self.tol or it.t >= self.max_iter):
                return False
            if exact_now:
                return True
            self.refresh()

    def run_batch(self) -> None:
        """Up to ``batch`` iterations on C, then the margins outside C caught
        up, or the batch undone when a point outside C mattered."""
        off = self.active.outside
        # Without points outside C there is nothing to batch for.
        k = min(self.batch if len(off) else 1, self.max_iter - self.it.t)
        saved = self.it.copy() if len(off) else None
        Q, betas, mins = self._steps_on_active_set(k)
        if len(off) == 0:
            self.batch = min(2 * self.batch, self.max_batch)
            return
        late = self.active.catch_up(self.it, Q, betas, mins)
        if late is None:
            self.batch = min(2 * self.batch, self.max_batch)
            return
        # A weight we set to 0 was not negligible at step j: redo the batch.
        self.info["redone"] += 1
        self.it = saved
        self.active.regather(saved.m, also=late[1])
        self.batch = max(1, late[0])

    def _steps_on_active_set(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Up to k iterations updating the margins in C only.  Returns the
        weights Q (|C|, done) of the steps done, their betas and smallest
        margins (each (k,), the first ``done`` entries set)."""
        it, C = self.it, self.active.C
        Q = np.empty((len(C), k))
        betas, mins = np.empty(k), np.empty(k)
        mC, q, vC = self.current
        done = 0
        for j in range(k):
            if j:
                mC, q, vC = self.active.weights(it.m)
                # A running estimate (stale margins outside C) only ends the
                # batch early so that the exact check comes sooner.
                ww = float(it.c @ it.m)
                est = _alg1_bound(math.sqrt(max(float(q @ vC), 0.0)), it.c, ww, self.best)
                if ww > 0 and _gap(float(mC.min()) / math.sqrt(ww), est) <= self.tol:
                    break
            Q[:, j], mins[j] = q, float(mC.min())
            betas[j] = it.step(C, q, vC)
            done += 1
        return Q[:, :done], betas, mins
