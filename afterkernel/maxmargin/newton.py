"""The exact solver's first method: an active-set Newton method (block
principal pivoting over all n points at once; Judice & Pires 1994, Kim &
Park 2011) on the unnormalised dual of paper §2's hard-margin SVM without bias,

    max_{a >= 0} sum(a) - a^T G a / 2,      margins g = G a,

whose solution has g_i = 1 on the free set F (a_F > 0) and g_i >= 1
outside.  Each round solves G_FF a_F = 1 and computes every point's margin
under that *unconstrained* a_F (negative entries included: that is block
principal pivoting's complementarity test; clipping a_F first breaks the
exchange and the free set then only grows, measured).  The infeasible
indices are swapped: a_i <= 0 leave F, the most violating outside points
(g_i < 1 - tol/4, at most ``max(128, grow |F|)``, worst first: adding all at
once overshoots) join it.  ``grow`` = 1/4 rather than 1/2: 1/2 overshoots
the free set on MNIST fc's after kernel, and the rounds that shed the
excess refactorise nearly all of it.  The first free set is the 512 points
of smallest margin under the uniform dual point (fewer costs rounds on the
larger supports).

What a round costs is what changed since the last one, not |F|:

* the rows K[F] are kept across rounds (:class:`_FreeRows`): a round
  gathers only the rows of the points that joined F;
* the Cholesky factor U of G_FF is kept (:class:`_Factor`): points that
  join are appended (a triangular solve and the factorisation of their
  Schur complement), points that leave cut the factor at the first of them
  and only the part after the cut is refactorised, sorted by decreasing
  weight.  Measured on MNIST after kernels: in the last rounds the cut is
  late (few points of small weight leave); while F grows it is early and
  the rounds are nearly full factorisations;
* for a float32 K the factor is float32 (twice LAPACK's float64 rate) and
  a_F is brought to float64 accuracy by iterative refinement before it is
  certified.

Margins are screened in K's own precision (float32: no float64 copy of the
rows); when no index is infeasible, or after an exchange of at most 1 % of
F (most likely the last round), they are computed in float64 (by blocks of
rows) and the solution certifies itself: a >= 0 with relative gap

    1 - min_i (G a)_i sum(a) / (a^T G a) <= tol.

When G_FF is numerically singular (duplicate points, rank-deficient
kernels) a pivoted Cholesky factorisation keeps a numerically independent
part of F.  The method gives up (the caller then runs its working-set
method, :mod:`~afterkernel.maxmargin.exact`) when the number of infeasible
indices has not fallen below its best (nor the free set grown or shrunk
markedly) through ``patience`` single exchanges (an exchange that makes
no progress is halved the next round, down to one index each way), when
``patience`` free blocks were numerically singular or one lost more than
5 % of its points (a kernel of low rank), or after ``max_rounds`` rounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import blas, lapack, solve_triangular

from afterkernel.maxmargin.gram import SignedGram, float64_product

# Pivots of G_FF's Cholesky factor below this (relative, squared) count as
# singular in float64, and as out of float32's reach in float32 (there the
# Schur complements carry rounding errors of ~1e-7 relative).
_PIVOT_TOL = {np.dtype(np.float64): 1e-11, np.dtype(np.float32): 1e-6}
# Iterative refinement of a float32 solve: residual max |1 - G_FF a_F| aimed
# at, and accepted when it stops falling; most steps.
_REFINED, _REFINED_ENOUGH, _REFINE_STEPS = 1e-13, 1e-10, 8
# Rounds over which an exchange that neither grows F nor cuts the infeasible
# indices by a tenth gives up (:func:`_stagnant`).
_STAGNANT_ROUNDS = 6
# An exchange of at most this fraction of |F| is taken for the last (float64 margins, no screen).
_LAST_EXCHANGE = 0.01
# Whole rows gathered at once when a block of G is read from the held rows (bytes).
_GATHER_BYTES = 4 << 20
# A free block that loses more than this fraction of its points as dependent marks a low-rank G.
_LOW_RANK_LOSS = 0.05


def newton_support(gram: SignedGram, g0: np.ndarray, tol: float, max_rounds: int, info: dict[str, Any],
                   *, start: int = 512, grow: float = 0.25, patience: int = 4):
    """Block principal pivoting on the whole problem, from the ``start``
    points of smallest margin g0 (n,) under the uniform dual point
    (:meth:`SignedGram.uniform_margins`).

    Returns ``(a, g, rounds)`` with a (n,) >= 0 certified to the relative
    gap ``tol`` and its float64 margins g = G a (n,), or ``(None, None,
    rounds)`` when the method gives up (module docstring).  ``info`` gets the
    free-set sizes, the points each round lost as dependent, why it stopped
    and, when it certified, the precision its factor ended in.
    """
    n = gram.n
    joining = np.argsort(g0, kind="stable")[: min(n, start)]
    leaving, aF = np.zeros(0, dtype=np.intp), np.zeros(0)
    rows = _FreeRows(gram)
    factor = _Factor(rows)
    free = np.zeros(n, bool)
    exchange = _Exchange(n, grow, patience)
    sizes: list[int] = []
    info["newton_free"] = sizes
    lost: list[int] = []  # points dropped as numerically dependent, per round
    info["newton_dependent"] = lost
    dependent = 0
    for rounds in range(1, max_rounds + 1):
        rows.release(leaving)
        rows.load(joining)
        asked = len(factor.F) - len(leaving) + len(joining)
        if not factor.update(leaving, joining, aF):
            rows.release(np.setdiff1d(np.concatenate([factor.F_before, joining]), factor.F))
        F = factor.F
        if len(F) == 0:
            info["newton_stop"] = "zero free block"
            return None, None, rounds
        dependent += len(F) < asked
        lost.append(asked - len(F))
        if dependent >= patience or asked - len(F) > _LOW_RANK_LOSS * asked:
            # A free block that keeps losing dependent points, or loses many at
            # once: G is (numerically) of low rank, where the exchange cycles
            # (the conjugate kernel of a network that is not separable).
            # Duplicate points lose a few.
            info["newton_stop"] = "rank-deficient"
            return None, None, rounds
        free[:] = False
        free[F] = True
        sizes.append(len(F))
        changed = len(leaving) + len(joining)
        aF, g = _round_margins(factor, rows, F, free, exchange.exact, changed, tol)
        if g is None:  # float32 was not enough: F refactorised in float64, ordered by this a_F
            leaving = joining = np.zeros(0, dtype=np.intp)
            continue
        drop = F[aF <= 0]
        viol = np.flatnonzero(~free & (g < 1.0 - tol / 4))
        if len(drop) == 0 and len(viol) == 0:
            if _gap(F, aF, g) <= tol:
                a = np.zeros(n)
                a[F] = aF
                info["newton_stop"] = "certified"
                info["newton_factor"] = factor.dtype.name
                return a, g, rounds
            info["newton_stop"] = "no exchange left"
            return None, None, rounds
        if exchange.stalled(len(drop) + len(viol), len(F)):
            info["newton_stop"] = "stalled"
            return None, None, rounds
        leaving, joining = exchange.swap(F, aF, g, drop, viol)
    info["newton_stop"] = "max_rounds"
    return None, None, max_rounds


def _round_margins(factor: "_Factor", rows: "_FreeRows", F: np.ndarray, free: np.ndarray, exact: bool,
                   changed: int, tol: float) -> tuple[np.ndarray, np.ndarray | None]:
    """This round's a_F (|F|,) = G_FF^-1 1 and the margins g (n,) under it;
    g is ``None`` when the factor had to be redone in float64 (the next
    round orders F by the a_F returned).

    Without progress (``exact``) the float32 screen may be what cycles (its
    error, relative to sum_j |G_ij a_j|, can exceed tol/4 near the optimum):
    float64 margins then, of a_F refined to float64 accuracy.  After an
    exchange of at most 1 % of F (``changed`` points) the round is most
    likely the last, whose float64 margins the certificate needs anyway: no
    screen first.  A candidate (no infeasible index under the screen) has
    a_F refined as far as the gap needs, and its float64 margins may show
    what the screen missed."""
    aF = factor.solve_ones()
    direct = exact or changed <= _LAST_EXCHANGE * len(F)
    g = rows.margins_exact(F, aF) if direct else rows.margins(F, aF)
    candidate = not exact and np.all(aF > 0) and not np.any(~free & (g < 1.0 - tol / 4))
    if not (exact or candidate):
        return aF, g
    refined, g = _refined(factor, rows, F, aF, g if direct else rows.margins_exact(F, aF), None if exact else tol)
    return (aF, None) if refined is None else (refined, g)


class _Exchange:
    """Which indices swap each round, and when to give up.

    Progress: fewer infeasible indices than ever, or a free set that grows or
    shrinks by more than 10 % / 1 % (filling up, or shedding an overshoot).
    Without it the full exchange can cycle (on CIFAR-10's vgg after kernel
    |F| oscillates around its support), so the exchange is halved each round
    without progress, down to one index each way (Murty's single exchange,
    Judice & Pires' backup rule), margins are then computed in float64
    (:attr:`exact`), and the method gives up after ``patience`` single
    exchanges without progress or when the rounds stagnate (:func:`_stagnant`).
    Once capped, the cap stays: lifting it at once restarts the cycle."""

    def __init__(self, n: int, grow: float, patience: int):
        self.grow, self.patience = grow, patience
        self.best_bad, self.last_size = np.inf, n + 1
        self.limit: int | None = None  # the exchange's cap
        self.single = 0  # single exchanges without progress
        self.history: list[tuple[int, int]] = []  # (infeasible indices, |F|) of each round

    @property
    def exact(self) -> bool:
        return self.limit is not None

    def stalled(self, nbad: int, size: int) -> bool:
        """Record a round with ``nbad`` infeasible indices and |F| = ``size``;
        whether to give up."""
        if nbad < self.best_bad or size > 1.1 * self.last_size or size < 0.99 * self.last_size:
            self.single = 0
        else:
            self.limit = max(1, (nbad if self.limit is None else self.limit) // 2)
            self.single += self.limit == 1
        self.best_bad, self.last_size = min(self.best_bad, nbad), size
        self.history.append((nbad, size))
        return self.single >= self.patience or _stagnant(self.history)

    def swap(self, F: np.ndarray, aF: np.ndarray, g: np.ndarray, drop: np.ndarray,
             viol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(leaving, joining): the free points with a_i <= 0, most negative
        first, and the most violating outside points, at most ``max(128,
        grow |F|)`` (worst first), both within the cap."""
        worst = viol[np.argsort(g[viol], kind="stable")]
        drop = drop[np.argsort(aF[aF <= 0], kind="stable")]
        joins = max(128, int(self.grow * len(F)))
        if self.limit is not None:
            drop, joins = drop[: self.limit], min(joins, self.limit)
        return drop, worst[:joins]


def _stagnant(history: list[tuple[int, int]]) -> bool:
    """Whether the last ``_STAGNANT_ROUNDS`` rounds cut the infeasible
    indices by less than a tenth while |F| stayed within 10 %: the exchange
    wanders on an infeasible problem: on a kernel that is not separable
    (CIFAR-10's vgg conjugate kernel) |F| and the infeasible indices
    plateau, whereas a separable kernel's infeasible indices fall by a tenth
    every round or two, or its free set grows."""
    if len(history) <= _STAGNANT_ROUNDS:
        return False
    window = history[-_STAGNANT_ROUNDS - 1 :]
    sizes = [f for _, f in window]
    return window[-1][0] > 0.9 * window[0][0] and max(sizes) < 1.1 * min(sizes)


def _gap(F: np.ndarray, aF: np.ndarray, g: np.ndarray) -> float:
    """Relative gap 1 - min(g) sum(a) / (a^T g) of a >= 0 that is a_F (|F|,)
    on F and 0 elsewhere, with g = G a (n,)."""
    aga = float(aF @ g[F])
    return 1.0 - float(g.min()) * float(aF.sum()) / aga if aga > 0 else np.inf


def _refined(factor: _Factor, rows: _FreeRows, F: np.ndarray, aF: np.ndarray, g: np.ndarray,
             tol: float | None = None):
    """(a_F, g) after iterative refinement of a float32 factor's a_F (|F|,),
    with g = G[:, F] a_F (n,) its float64 margins: each step solves for the
    residual 1 - g_F and recomputes g, until the relative gap is at most
    ``tol`` (if given, with a_F > 0) or the residual max |1 - g_F| is at most
    ``_REFINED`` (or stops falling below ``_REFINED_ENOUGH``).  (None, None),
    and float64 from the next update on, when it does not converge.

    A float32 solve is backward stable: its margins on F are within ~1e-6
    of 1 although a_F is only good to 2e-5-2e-4 (cond(G_FF) 1.4e4-1.1e5 at
    the MNIST after kernels' support sets), so a gap of 1e-4 seldom needs a
    step; two steps bring a_F to 1e-13-1e-10 (measured).
    """
    if factor.dtype == np.float64:
        return aF, g
    last = np.inf
    for step in range(_REFINE_STEPS + 1):
        r = 1.0 - g[F]
        err = float(np.abs(r).max()) if len(F) else 0.0
        if err <= _REFINED or (tol is not None and np.all(aF > 0) and _gap(F, aF, g) <= tol):
            return aF, g
        if err > 0.5 * last or step == _REFINE_STEPS:
            if err <= _REFINED_ENOUGH:
                return aF, g
            break
        aF, last = aF + factor.solve(r), err
        g = rows.margins_exact(F, aF)
    factor.to_float64()
    return None, None


class _FreeRows:
    """The rows K[i] of the free points, in K's dtype, kept across rounds.

    Row i sits in ``buf[slot[i]]``; the slots of points that left F are
    reused by those that join, lowest first.  ``buf`` reserves all n rows
    but the OS commits only the pages written: about the largest free set's
    rows.  (Growing a smaller buffer instead copies it into fresh pages, a
    large share of a fast solve.)
    """

    def __init__(self, gram: SignedGram):
        self.gram = gram
        self.buf = np.empty((gram.n, gram.n), dtype=gram.K.dtype)
        self.slot = np.full(gram.n, -1, dtype=np.intp)
        self.spare = list(range(gram.n - 1, -1, -1))  # free slots, lowest last
        self.top = 0  # slots at or above this have never been used

    def load(self, idx: np.ndarray) -> None:
        """Gather the rows of the points ``idx`` that are not held yet."""
        for i in idx[self.slot[idx] < 0]:
            s = self.spare.pop()
            self.buf[s] = self.gram.K[i]
            self.slot[i] = s
            self.top = max(self.top, s + 1)

    def release(self, idx: np.ndarray) -> None:
        """Forget the rows of the points ``idx`` (their slots are reused)."""
        held = idx[self.slot[idx] >= 0]
        self.spare.extend(self.slot[held].tolist())
        self.spare.sort(reverse=True)
        self.slot[held] = -1

    def sub(self, rows: np.ndarray, cols: np.ndarray, dtype=np.float64, upper: bool = False) -> np.ndarray:
        """G[rows][:, cols] (|rows|, |cols|) as ``dtype``; the points of the
        smaller of ``rows`` and ``cols`` are held (G is symmetric).  With
        ``upper`` (rows = cols) only the upper triangle is filled: the rest
        is left unset."""
        if len(cols) < len(rows):
            return self.sub(cols, rows, dtype).T
        # Whole rows, then columns: a gather along one axis each (np.ix_ is
        # ~30x slower, and so are flat indices: measured), by blocks of rows
        # so that the whole rows gathered stay small.
        out = np.empty((len(rows), len(cols)), dtype=dtype)
        slots, s = self.slot[rows], self.gram.s.astype(dtype)
        step = max(1, _GATHER_BYTES // (self.buf.itemsize * self.gram.n))
        for b in range(0, len(rows), step):
            c = b if upper else 0
            blk = out[b : b + step, c:]
            blk[...] = self.buf[slots[b : b + step]].take(cols[c:], axis=1)
            # The signs are +-1: exact in any precision.
            blk *= s[rows[b : b + step], None]
            blk *= s[cols[c:]]
        return out

    def margins_exact(self, F: np.ndarray, aF: np.ndarray) -> np.ndarray:
        """g = G[:, F] a_F (n,) in float64, by blocks of consecutive slots
        (views of the buffer: no gathered copy, and no float64 copy of all
        the rows)."""
        return self.gram.s * float64_product(lambda b, e: self.buf[b:e], self._weights(F, aF, np.float64),
                                             self.gram.n)

    def margins(self, F: np.ndarray, aF: np.ndarray) -> np.ndarray:
        """g = G[:, F] a_F (n,), the product in K's dtype (a screen: float32
        for a float32 K); the points F are held."""
        return self.gram.s * (self._weights(F, aF, self.buf.dtype) @ self.buf[: self.top]).astype(np.float64)

    def _weights(self, F: np.ndarray, aF: np.ndarray, dtype) -> np.ndarray:
        """s_F a_F (|F|,) by slot (top,): zero in the slots not held for F."""
        w = np.zeros(self.top, dtype=dtype)
        w[self.slot[F]] = self.gram.s[F] * aF
        return w


class _Factor:
    """The upper Cholesky factor U (|F|, |F|) of G_FF for the free points in
    the order ``F``; ``F_before`` is F before the last :meth:`update`.
    G_FF itself is not kept: its entries come from the held rows
    (:class:`_FreeRows`), so the factor is the only |F|^2 array that lives
    across rounds.

    For a float32 K the factor is float32 (G_FF's entries are exact there;
    ``spotrf`` runs at 66 GFlop/s against ``dpotrf``'s 31 on one core,
    measured) and a_F is refined in float64 where it is certified
    (:func:`_refined`).  It turns float64 for the rest of the solve when
    float32 is not enough: a pivot below float32's reach (duplicate points,
    a nearly singular G_FF) or a refinement that does not converge.
    Numerically dependent points are found in float64 only.

    The order puts the points least likely to leave first: after each
    update, the refactorised part is sorted by decreasing weight a_i
    (points of small weight are those that leave), and the points that
    join come last.
    """

    def __init__(self, rows: _FreeRows):
        self.rows = rows
        self.dtype = rows.buf.dtype  # K's: float32 or float64 (check_kernel)
        self.F = np.zeros(0, dtype=np.intp)
        self.F_before = self.F
        self.U = np.zeros((0, 0), self.dtype)

    def update(self, leaving: np.ndarray, joining: np.ndarray, weight: np.ndarray) -> bool:
        """F <- F minus ``leaving`` plus ``joining``, U with it; ``weight``
        (|F|,) is the last a_F, which orders the refactorised part.

        The factor is kept up to the first point that leaves (all of it is
        refactorised after a change of precision); the rest is the Cholesky
        factor of its Schur complement.  Returns False when G_FF was
        numerically singular: then a pivoted factorisation of that Schur
        complement keeps a numerically independent subset of the rest.
        """
        self.F_before = F = self.F
        keep = ~np.isin(F, leaving)
        cut = min(int(np.argmin(keep)) if not keep.all() else len(F), len(self.U))
        stay = cut + np.flatnonzero(keep[cut:])
        stay = stay[np.argsort(-weight[stay], kind="stable")]
        tail = np.concatenate([F[stay], joining])
        new = np.concatenate([F[:cut], tail])
        if len(tail) == 0:
            self.F, self.U = new, self.U[:cut, :cut]
            return True
        B = np.empty((cut, len(tail)), self.dtype)
        if cut:
            B[:, : len(stay)] = self.U[:cut, stay]
        if cut and len(joining):
            B[:, len(stay) :] = solve_triangular(self.U[:cut, :cut], self.rows.sub(F[:cut], joining, self.dtype),
                                                 trans="T", check_finite=False)
        S, dg = self._schur(tail, B)
        potrf = lapack.get_lapack_funcs("potrf", dtype=self.dtype)
        _, status = potrf(S.T, lower=1, clean=1, overwrite_a=1)
        independent = status == 0 and not np.any(np.diag(S).astype(np.float64) ** 2 <= _PIVOT_TOL[self.dtype] * dg)
        if not independent and self.dtype == np.float32:
            self.to_float64()
            return self.update(leaving, joining, weight)
        if not independent:
            # The head F[:cut] is factored: only the tail's Schur complement
            # needs a pivoted factorisation, which keeps a numerically
            # independent subset of the tail, in its pivot order.
            S, _ = self._schur(tail, B)
            L, piv, rank, _ = lapack.dpstrf(S.T, lower=1, tol=_PIVOT_TOL[self.dtype] * float(dg.max()),
                                            overwrite_a=1)
            sel = piv[:rank] - 1
            new, B = np.concatenate([F[:cut], tail[sel]]), B[:, sel]
            S = np.triu(L.T[:rank, :rank])
        U = np.zeros((len(new), len(new)), self.dtype)
        U[:cut, :cut] = self.U[:cut, :cut]
        self.U = None  # the old factor goes before the new one is complete
        U[:cut, cut:] = B
        U[cut:, cut:] = S
        self.F, self.U = new, U
        return independent

    def to_float64(self) -> None:
        """Float64 from now on; the next :meth:`update` refactorises all of F."""
        self.dtype, self.U = np.dtype(np.float64), np.zeros((0, 0))

    def _schur(self, tail: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The Schur complement G[tail, tail] - B^T B (|tail|, |tail|) on its
        upper triangle, in the factor's dtype, and G's diagonal there
        (|tail|,) in float64; B (cut, |tail|).

        S is symmetric and C-ordered: its transpose is the Fortran array BLAS
        and LAPACK update and factor in place, and the lower factor of S^T
        is U22 in S.  The update touches one triangle only (half the flops
        of a full product, and the largest part of a round).
        """
        S = self.rows.sub(tail, tail, self.dtype, upper=True)
        dg = np.diag(S).astype(np.float64)
        if len(B):
            syrk = blas.get_blas_funcs("syrk", dtype=self.dtype)
            syrk(-1.0, B.T, beta=1.0, c=S.T, lower=1, overwrite_c=1)
        return S, dg

    def solve(self, r: np.ndarray) -> np.ndarray:
        """G_FF^-1 r (|F|,) in float64, to the factor's precision."""
        x = solve_triangular(self.U, r.astype(self.dtype), trans="T", check_finite=False)
        return solve_triangular(self.U, x, check_finite=False).astype(np.float64)

    def solve_ones(self) -> np.ndarray:
        """a_F = G_FF^-1 1 (|F|,), to the factor's precision."""
        return self.solve(np.ones(len(self.F)))
