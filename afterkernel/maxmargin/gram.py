"""The train Gram matrix K of a kernel (paper §2) as the solvers read it:
checked once, seen as G = diag(s) K diag(s) = Z Z^T (rows z_i = s_i phi(x_i))
without forming G, and factorised as Phi Phi^T when its rank is small."""

from __future__ import annotations


import numpy as np
from scipy.linalg import blas, lapack

# Working memory for float64 products with a float32 K (bytes per block): a
# block that stays in cache between its float64 copy and its product (2 MB:
# 8.6 ms for 1,748 rows of n = 11,982, 32 MB: 19 ms, measured).
_BLOCK_BYTES = 2 * 2**20


def float64_product(rows, x: np.ndarray, n: int) -> np.ndarray:
    """sum_j R_j^T x_j (n,) or (n, r) in float64 over the m = len(x) rows R
    (m, n) of a K, given by blocks: ``rows(b, e)`` is R[b:e] in K's dtype.
    Each block is converted to float64 on its own (no float64 copy of R)."""
    out = np.zeros((n,) + x.shape[1:])
    step = max(1, _BLOCK_BYTES // (8 * n))
    for b in range(0, len(x), step):
        e = min(b + step, len(x))
        blk = rows(b, e)
        if blk.dtype != np.float64:
            blk = blk.astype(np.float64)
        out += blk.T @ x[b:e]
    return out


def check_kernel(K: np.ndarray, n: int, finite: bool = True) -> np.ndarray:
    """K (n, n) as float32 or float64, after O(n) checks that it is the
    symmetric, finite train Gram matrix of ``n`` labels.

    ``finite=False`` leaves out the one check that reads all of K (that
    every entry is finite): for callers whose first step is a product with
    all of K anyway, which check it with :func:`require_finite`.
    """
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
    if finite:
        # A sum is finite only if every term is (one pass, no n^2 mask).
        require_finite(K, np.array([K.sum()]))
    return K


def require_finite(K: np.ndarray, product: np.ndarray) -> None:
    """Raise unless every entry of K is finite, given ``product``: sums over
    all of K's entries with non-zero weights (K.sum(), K @ x for x without
    zeros).  Such sums are finite only if every term is; only when one is
    not (or overflows) are the entries checked one by one."""
    if not np.isfinite(product).all() and not np.isfinite(K).all():
        bad = int(np.count_nonzero(~np.isfinite(K)))
        raise ValueError(f"the Gram matrix has {bad} non-finite (NaN or inf) entries")


class SignedGram:
    """Rows and products of G = diag(s) K diag(s) in float64, K (n, n) kept
    in its own dtype; ``diag`` (n,) is diag(K) = diag(G) in float64."""

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
        sx = (x.T * self.s[idx]).T
        out = float64_product(lambda b, e: self.K[idx[b:e]], sx, self.n)
        return (out.T * self.s).T

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """G @ x in float64 (x of shape (n,) or (n, r)); reads only rows where x != 0."""
        nz = np.flatnonzero(x if x.ndim == 1 else np.any(x != 0, axis=1))
        return self.rows_dot(nz, x[nz])

    def matvec_lowp(self, x: np.ndarray) -> np.ndarray:
        """G @ x in K's own precision (one pass over K); for screening only."""
        sx = (self.s * x).astype(self.K.dtype)
        return self.s * (self.K @ sx).astype(np.float64)

    def uniform_margins(self) -> np.ndarray:
        """G @ (1/n) (n,) in K's precision, the solvers' first look at all
        of K; it also checks that every entry of K is finite
        (:func:`require_finite`)."""
        g0 = self.matvec_lowp(np.full(self.n, 1.0 / self.n))
        require_finite(self.K, g0)
        return g0


def low_rank_features(K: np.ndarray, max_rank: int, rel_tol: float = 1e-10,
                      block: int = 128) -> tuple[np.ndarray, np.ndarray] | None:
    """(Phi (n, r), pivots (r,)) with K ~= Phi Phi^T by pivoted partial
    Cholesky, or None if r > max_rank; Phi[pivots] is lower triangular.

    Stops when every residual diagonal entry is at most ``rel_tol`` times
    the largest diagonal entry.  For a positive semidefinite K that bounds
    every entry, |K - Phi Phi^T|_ij <= rel_tol max_i K_ii (Cauchy-Schwarz on
    the residual); a float32 K is positive semidefinite only up to its
    rounding, so its residual off the diagonal is that of the rounding,
    not ``rel_tol`` (1.5e-5 relative measured on a 12K float32 after
    kernel).  Good enough for iterating on features, not for certificates.

    Blocked: each step takes the ``block`` points of largest residual
    diagonal, computes their residual columns with one matrix product
    (O(n r block), compute-bound instead of one memory-bound pass over the
    factor per column), and keeps a numerically independent subset of them
    by a pivoted Cholesky factorisation of their block (``dpstrf``), so the
    factor is that of greedy pivoting restricted to the block's
    candidates.  O(n r^2) in all; memory: Phi itself (a view of rows of
    ``max_rank`` reserved entries, of which about n r are ever touched).
    """
    n = K.shape[0]
    d = np.einsum("ii->i", K).astype(np.float64)
    stop = rel_tol * float(d.max()) if n else 0.0
    cap = min(max_rank, n)
    # All max_rank columns reserved, filled left to right: the OS commits
    # only the pages touched (about n r), and the result is a view, not a
    # copy.  Column-major, so that a block of new columns is one contiguous
    # write and L[:, :k] one contiguous operand (row-major: 0.7 s of strided
    # writes at r = 2,801, n = 10,000).
    L = np.empty((n, cap), order="F")
    k = 0
    pivots: list[np.ndarray] = []
    while True:
        if n == 0 or d.max() <= stop:
            return L[:, :k], np.concatenate(pivots or [np.zeros(0, np.intp)])
        if k >= cap:
            return None
        cand = np.argsort(-d, kind="stable")[: min(block, cap - k)]
        cand = cand[d[cand] > stop]
        C = K[cand].T.astype(np.float64)  # (n, b) columns of the symmetric K, column-major
        if k:
            C = blas.dgemm(-1.0, L[:, :k], L[cand, :k], beta=1.0, c=C, trans_b=1, overwrite_c=1)
        U, piv, rank, _ = lapack.dpstrf(C[cand], lower=0, tol=stop)
        if rank == 0:
            return L[:, :k], np.concatenate(pivots or [np.zeros(0, np.intp)])
        sel = piv[:rank] - 1
        # The new columns X solve X U = C[:, sel] (U upper triangular), in place in L.
        new = L[:, k : k + rank]
        new[...] = C[:, sel]
        blas.dtrsm(1.0, U[:rank, :rank], new, side=1, lower=0, overwrite_b=1)
        pivots.append(cand[sel])
        k += rank
        d -= np.einsum("ij,ij->i", new, new)
        d[cand[sel]] = 0.0
        np.maximum(d, 0.0, out=d)
