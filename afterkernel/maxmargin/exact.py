"""The exact solver: the hard-margin SVM without bias of paper §2 to
round-off.

* First, the active-set Newton method on all n points
  (:mod:`~afterkernel.maxmargin.newton`: block principal pivoting, one
  Cholesky factorisation of the free block G_FF and one read of its rows of
  K per round).  It certifies its own result (relative gap over all points,
  in float64) and holds nothing larger than those rows.
* When it gives up (it can cycle: non-separable kernels, some degenerate
  ones), an active-set method on a working set W of candidate points
  finishes: W starts as the 2,048 points with the smallest margins under
  the uniform dual point (:class:`_WorkingSet`); each pass solves the
  problem on W by block principal pivoting
  (:mod:`~afterkernel.maxmargin.pivoting`) and, whenever that stalls,
  Wolfe's minimum-norm-point algorithm (:mod:`~afterkernel.maxmargin.wolfe`)
  on the simplex form ``min_{q in simplex} q^T G q``; every pass ends with a
  float64 check of all n margins and adds the most violating points (at
  most half of |W|).  G_WW is held in float64.

Why this order: on the study's after kernels the Newton method certifies
in a few rounds, faster than the working-set method alone, which needs
several passes and a working set of thousands of points; greedy dual
coordinate ascent and Wolfe's algorithm alone need far more steps. On
CIFAR-10's after kernels (half the points support vectors) its exchange is
halved on rounds without progress, without which it cycles and hands over.
``benchmarks/bench_maxmargin.py`` compares with scikit-learn's SVC (entries
``maxmargin_vs_svc_seconds_*``, ``nonseparable_certificate_seconds_*``).

Not separable, the hard-margin classifier does not exist; the classifier
reported is the minimiser of Algorithm 1's loss, to a stated stationarity
(:mod:`~afterkernel.maxmargin.nonsep`, :class:`_LossRoute`), whose softmax
weights are also the certificate when their dual bound holds on K itself.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular

from afterkernel.maxmargin.gram import SignedGram, check_kernel, low_rank_features
from afterkernel.maxmargin.newton import newton_support
from afterkernel.maxmargin.nonsep import STATIONARITY, loss_minimiser
from afterkernel.maxmargin.pivoting import block_principal_pivoting
from afterkernel.maxmargin.result import (DEFAULT_MAX_ITER, DEFAULT_TOL, MaxMarginResult, finish,
                                          nonsep_tolerance)
from afterkernel.maxmargin.wolfe import min_norm_point
from afterkernel.vocabulary import signed_labels


def solve_exact(
    K,
    y,
    tol: float | None = None,
    max_iter: int | None = None,
    nonsep_tol: float | None = None,
    working_set: int = 2048,
    grow: float = 0.5,
    warm_start: bool = True,
    nonsep_coef: str = "loss",
    newton: bool = True,
) -> MaxMarginResult:
    """Exact hard-margin SVM without bias for the train Gram ``K`` (n, n) and labels ``y`` (n,).

    Minimises q^T G q over the simplex; at the solution q*, w* = Z^T q* /
    ||Z^T q*||^2 is the max-margin classifier and ||Z^T q*|| its margin.
    Stops when the relative gap ``1 - min_i (G q)_i / q^T G q`` over *all*
    points is at most ``tol`` (default 1e-4), when ``sqrt(q^T G q) <=
    nonsep_tol * max_i ||z_i||`` (not separable; default by K's precision,
    :func:`~afterkernel.maxmargin.result.nonsep_tolerance`), or after ``max_iter``
    steps (block-pivoting rounds plus Wolfe major cycles; ``iterations``
    reports their number).  ``working_set`` is the initial number of candidate
    points, ``grow`` the fraction by which a pass may enlarge it (by the
    most violating points); ``warm_start`` seeds each pass with block
    principal pivoting.  ``newton`` (default) first runs the active-set
    Newton method on all points (:mod:`~afterkernel.maxmargin.newton`); the
    working set and Wolfe's algorithm run only when it gives up
    (``info["newton_stop"]`` says why).

    Not separable: the dual optimum is q with Z^T q = 0, so w = 0 and the
    hard-margin classifier does not exist.  The returned ``coef`` are then
    those of the minimiser of Algorithm 1's loss log sum_i exp(-z_i^T w) to
    the stationarity ``STATIONARITY * max_i ||z_i||`` (whatever K's
    precision; ``nonsep_coef="loss"``,
    default; :mod:`~afterkernel.maxmargin.nonsep`; ``info["coef_from"]``
    says where they come from) or the dual weights q (``"dual"``).  When the
    Newton method gives up on a kernel of rank at most ``_FEATURE_RANK``,
    that minimiser is tried first: when its softmax weights' dual bound,
    checked in float64 on K, is below the threshold they are the
    certificate, and the working set runs only otherwise.
    """
    tol = DEFAULT_TOL["exact"] if tol is None else float(tol)
    max_iter = DEFAULT_MAX_ITER["exact"] if max_iter is None else int(max_iter)
    if nonsep_coef not in ("loss", "dual"):
        raise ValueError(f"nonsep_coef must be 'loss' or 'dual', got {nonsep_coef!r}")
    s = signed_labels(y)
    K = check_kernel(K, len(s), finite=False)  # checked by the first product
    n = len(s)
    gram = SignedGram(K, s)
    if np.any(gram.diag < 0):
        raise ValueError("the Gram matrix has negative diagonal entries; it is not a kernel matrix")
    g0 = gram.uniform_margins()
    kappa = float(gram.diag.max())
    info: dict[str, Any] = {"passes": 0, "minor": 0, "dependent": 0, "bpp_support": []}
    if kappa == 0.0:
        return finish(np.zeros(n), np.zeros(n), 0.0, 0.0, 0, tol, "exact", True, info)
    stops = _Stops(tol=tol, max_iter=max_iter, thresh2=nonsep_tolerance(K.dtype, nonsep_tol) ** 2 * kappa)
    rounds = 0
    if newton:
        a, g, rounds = newton_support(gram, g0, tol, min(60, max_iter), info)
        if a is not None:
            info["coef_from"] = "newton"
            ww = float(a @ g)
            return finish(a, g, ww, math.sqrt(ww) / float(a.sum()), rounds, tol, "exact", False, info)
        stops = _Stops(tol=tol, max_iter=max(max_iter - rounds, 0), thresh2=stops.thresh2)
    loss = _LossRoute(K, gram, stops.thresh2, STATIONARITY * math.sqrt(kappa), info)
    if newton and nonsep_coef == "loss" and loss.certified():
        return finish(loss.coef, loss.margins, loss.ww, loss.bound, rounds + loss.steps, tol, "exact",
                      True, info)
    ws = _WorkingSet(gram, g0, working_set)
    S, lam, g, xx, steps, nonsep = _solve_growing(ws, kappa, stops, grow, warm_start, info)
    steps += rounds
    coef = np.zeros(n)
    coef[S] = lam
    info["working_set"] = int(len(ws.W))
    bound = math.sqrt(max(xx, 0.0))
    if nonsep and nonsep_coef == "loss":
        loss.certified()
        if loss.coef is not None:
            return finish(loss.coef, loss.margins, loss.ww, bound, steps, tol, "exact", True, info)
    else:
        info["coef_from"] = "dual"
    return finish(coef, g, xx, bound, steps, tol, "exact", nonsep, info)


# Largest rank of K whose features the loss minimiser uses: O(n r^2) to find
# them and per Newton step, n r float64 to hold them (CIFAR-10's conjugate
# kernels need r ~ 2,800 of n = 10,000: nonseparable_certificate_seconds_cifar).
_FEATURE_RANK = 4096


@dataclass(frozen=True)
class _Stops:
    """When the exact solver stops: relative gap ``tol`` over all points,
    ``max_iter`` steps, or a squared dual value ``thresh2`` that counts as 0."""

    tol: float
    max_iter: int
    thresh2: float

    @property
    def inner_tol(self) -> float:
        """The gap a pass reaches on the working set (tighter than ``tol``,
        so that a pass usually certifies all points)."""
        return self.tol / 4


class _WorkingSet:
    """The candidate points W (global indices, in insertion order; W only
    grows) and G_WW (|W|, |W|) in float64.

    G_WW lives in the top-left corner of a buffer with spare capacity, so a
    pass usually adds rows and columns without copying what is there.
    ``pos`` (n,) is each point's index in W, -1 outside.
    """

    def __init__(self, gram: SignedGram, g0: np.ndarray, size: int):
        # First candidates: smallest margins g0 (n,) under the uniform dual point.
        n = gram.n
        self.gram = gram
        self.W = np.argsort(g0, kind="stable")[: min(n, size)]
        self.buf = np.empty((min(n, 2 * len(self.W)),) * 2)
        gram.sub(self.W, self.W, out=self.buf[: len(self.W), : len(self.W)])
        self.pos = np.full(n, -1, dtype=np.intp)
        self.pos[self.W] = np.arange(len(self.W))

    @property
    def G(self) -> np.ndarray:
        """G_WW, a view of the buffer."""
        return self.buf[: len(self.W), : len(self.W)]

    def violators(self, g: np.ndarray, xx: float, inner_tol: float, grow: float) -> np.ndarray:
        """The points outside W whose margin ``g`` (n,) is below ``(1 -
        inner_tol) xx``, worst first, at most max(256, grow |W|) of them."""
        viol = np.flatnonzero((self.pos < 0) & (g < (1.0 - inner_tol) * xx))
        return viol[np.argsort(g[viol], kind="stable")[: max(256, int(grow * len(self.W)))]]

    def add(self, new: np.ndarray) -> None:
        """Append the points ``new`` to W and their rows and columns to G_WW."""
        m0, W = len(self.W), np.concatenate([self.W, new])
        if len(W) > self.buf.shape[0]:
            bigger = np.empty((min(self.gram.n, max(len(W), 2 * self.buf.shape[0])),) * 2)
            bigger[:m0, :m0] = self.buf[:m0, :m0]
            self.buf = bigger
        self.gram.sub(new, W, out=self.buf[m0 : len(W), : len(W)])
        self.buf[:m0, m0 : len(W)] = self.buf[m0 : len(W), :m0].T
        self.pos[new] = np.arange(m0, len(W))
        self.W = W


def _solve_growing(ws: _WorkingSet, kappa: float, stops: _Stops, grow: float, warm_start: bool,
                   info: dict[str, Any]):
    """Passes over a growing working set until the dual point of W certifies
    all n points (or a stop of ``stops``).

    Returns ``(S, lam, g, xx, steps, nonsep)``: the support S (global
    indices, sorted), its weights lam (summing to 1), the margins g = G_{:,S}
    lam (n,), xx = lam^T G_SS lam, the steps taken and whether the data
    count as not separable.
    """
    S, lam = np.zeros(0, dtype=np.intp), np.zeros(0)
    steps = 0  # block-pivoting rounds + Wolfe major cycles
    while True:
        info["passes"] += 1
        S_loc, lam_loc, steps, nonsep = _solve_on_working_set(ws.G, ws.pos[S], lam, steps, kappa,
                                                              stops, warm_start, info)
        order = np.argsort(ws.W[S_loc], kind="stable")
        S, lam = ws.W[S_loc][order], lam_loc[order].copy()
        g = ws.gram.rows_dot(S, lam)
        xx = float(lam @ g[S])
        if nonsep or xx <= stops.thresh2:
            return S, lam, g, xx, steps, True
        if 1.0 - float(g.min()) / xx <= stops.tol or steps >= stops.max_iter:
            return S, lam, g, xx, steps, False
        new = ws.violators(g, xx, stops.inner_tol, grow)
        if len(new) == 0:
            # Every violator is already a candidate yet the pass stopped:
            # numerically stuck on dependent points; report what we have.
            return S, lam, g, xx, steps, False
        ws.add(new)


def _solve_on_working_set(GW: np.ndarray, seed: np.ndarray, lam: np.ndarray, steps: int, kappa: float,
                          stops: _Stops, warm_start: bool, info: dict[str, Any]):
    """One pass: the dual point of G_WW = ``GW`` (m, m), from the previous
    support ``seed`` (local indices) with weights ``lam``.

    Returns ``(S_loc, lam, steps, nonsep)``, ``steps`` counting on from the
    given number.
    """
    if warm_start and steps < stops.max_iter:
        free0 = seed if len(seed) else np.arange(min(64, len(GW)))
        guess, weight, rounds = block_principal_pivoting(GW, free0, rounds=min(30, stops.max_iter - steps),
                                                         tol=stops.inner_tol)
        steps += rounds
        info["bpp_support"].append(int(len(guess)))
        if len(guess):
            seed, lam = guess, weight / weight.sum()
    if len(seed) and _optimal_on_working_set(GW, seed, lam, stops):
        # Block pivoting's solution needs no Wolfe cycles (and no factorisation).
        return seed, lam, steps, False
    S_loc, lam, cycles, nonsep = min_norm_point(GW, kappa, seed, lam, stops.max_iter - steps,
                                                stops.thresh2, stops.inner_tol, info)
    return S_loc, lam, steps + cycles, nonsep


def _optimal_on_working_set(GW: np.ndarray, seed: np.ndarray, lam: np.ndarray, stops: _Stops) -> bool:
    """Whether the dual point (``seed``, ``lam``) meets the optimality
    conditions on W to ``inner_tol`` (and is not the zero point)."""
    gW = lam @ GW[seed]
    xx = float(lam @ gW[seed])
    return xx > stops.thresh2 and float(gW.min()) >= (1.0 - stops.inner_tol) * xx


class _LossRoute:
    """The minimiser of Algorithm 1's loss (:mod:`~afterkernel.maxmargin.nonsep`)
    on the features Phi (n, r) of K = Phi Phi^T, r <= ``_FEATURE_RANK``
    (pivoted partial Cholesky, O(n r^2)), to ||grad L|| <= ``grad_tol``;
    computed once, on first use.

    :meth:`certified` says whether its softmax weights p certify that the
    data are not separable (p^T G p <= ``thresh2``, in float64 on K itself);
    ``coef`` (n,) represent its w (w = Z^T coef, on the r pivot points of
    the factorisation), with ``margins`` = G coef and ``ww`` = coef^T G
    coef, and ``bound`` = sqrt(p^T G p).  On a kernel of larger rank there
    are no features: ``coef`` is None and the caller reports the dual
    weights, as ``info["coef_from"]`` says.
    """

    def __init__(self, K: np.ndarray, gram: SignedGram, thresh2: float, grad_tol: float,
                 info: dict[str, Any]):
        self.K, self.gram, self.thresh2, self.grad_tol, self.info = K, gram, thresh2, grad_tol, info
        self.done = False

    def certified(self) -> bool:
        if not self.done:
            self._run()
        return self.ok

    def _run(self) -> None:
        start = time.perf_counter()
        self.done, self.ok, self.steps = True, False, 0
        self.coef = self.margins = None
        found = low_rank_features(self.K, max_rank=_FEATURE_RANK)
        if found is None:
            self.info["coef_from"] = f"dual (rank above {_FEATURE_RANK}: no features for the loss minimiser)"
            return
        Z, piv = found
        rank = Z.shape[1]
        Z *= self.gram.s[:, None]  # in place: the features are not needed beside Z
        w, p, self.steps, stationary = loss_minimiser(Z, grad_tol=self.grad_tol)
        # Coefficients on the pivot points: Z[piv] (r, r) is triangular, so
        # Z^T coef = w is one O(r^2) solve; and a pivoted Cholesky factor
        # reproduces K's pivot columns, K[:, piv] = Phi Phi[piv]^T, so the
        # decision values K (s coef) are Phi w to round-off (3e-8 measured on
        # MNIST fc conjugate features; the least-norm coef from the normal
        # equations Z^T Z, of condition ~1e10, were off by 25 and gave 25 %
        # instead of 2.6 % training error).
        coef = np.zeros(self.gram.n)
        coef[piv] = solve_triangular(Z[piv], w, trans="T", lower=True, check_finite=False)
        del Z
        # Both products in float64 on K, in one pass (p is dense).
        both = self.gram.matvec(np.stack([coef, p], axis=1))
        self.coef, self.margins = coef, both[:, 0].copy()
        self.ww = float(coef @ self.margins)
        self.bound = math.sqrt(max(float(p @ both[:, 1]), 0.0))
        self.ok = self.bound**2 <= self.thresh2
        self.info["loss_steps"] = self.steps
        self.info["coef_from"] = (f"loss minimiser (Newton, {self.steps} steps, rank-{rank} features, "
                                  f"||grad|| <= {self.grad_tol:.3g} on them)" if stationary else
                                  f"loss after {self.steps} Newton steps (not stationary)")
        self.info["loss_certificate"] = self.ok  # p certifies non-separability on K itself
        self.info["loss_seconds"] = time.perf_counter() - start
