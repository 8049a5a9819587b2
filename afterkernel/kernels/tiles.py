"""The two backends of Gram tiles: where the matmuls of K = J Jᵀ run.

- :class:`NumpyTiles` (CPU): BLAS through SciPy (ssyrk for the diagonal
  squares: half the multiply-adds and only their upper triangle, mirrored
  once; sgemm above them), elementwise work in NumPy, scratch arrays reused
  between tiles.
- :class:`TensorFlowTiles`: tensors stay on TensorFlow's device (the GPU when
  there is one); same results up to float32 rounding.

Both count the flops of their matmuls (2 per multiply-add, syrk half) for
the logs and benchmarks. :func:`tile_backend` picks one.
"""

from __future__ import annotations

import numpy as np

ROWDOT_COLUMNS = 65536  # columns per float64 chunk of a per-example dot product


def syrk_upper(a, c=None) -> np.ndarray:
    """Upper triangle of a aᵀ by BLAS ssyrk: half the multiply-adds of a aᵀ
    and no mirrored copy. Fortran-ordered (n, n), written into ``c`` when
    given; the strict lower triangle is not touched (zero in a new array;
    :func:`mirror_upper` completes it)."""
    from scipy.linalg.blas import ssyrk

    a = np.ascontiguousarray(a, np.float32)
    if c is None:
        return ssyrk(1.0, a.T, trans=1)  # aᵀ is Fortran-ordered: no copy
    return ssyrk(1.0, a.T, beta=0.0, c=c, trans=1, overwrite_c=1)


def gemm_nt(a, b, c=None) -> np.ndarray:
    """a bᵀ (C-ordered) by BLAS sgemm on the transposed views (no copies);
    ``c``: a Fortran-ordered (n2, n1) array to write into.

    Tiles use SciPy's BLAS for both products: NumPy and SciPy each bundle an
    OpenBLAS with its own busy-waiting thread pool, and alternating between
    the two halves their speed on a small machine."""
    from scipy.linalg.blas import sgemm

    a = np.ascontiguousarray(a, np.float32)
    b = np.ascontiguousarray(b, np.float32)
    if c is None:  # (b aᵀ)ᵀ: Fortran (n2, n1) -> C (n1, n2)
        return sgemm(1.0, b.T, a.T, trans_a=1).T
    return sgemm(1.0, b.T, a.T, trans_a=1, beta=0.0, c=c, overwrite_c=1).T


def mirror_upper(c) -> np.ndarray:
    """Copy the upper triangle of square ``c`` onto its lower triangle in
    place, block by block; returns the symmetric matrix (C-ordered when ``c``
    is Fortran-ordered: a symmetric matrix is its own transpose)."""
    n = c.shape[0]
    for i0 in range(0, n, 256):
        i1 = min(i0 + 256, n)
        d = c[i0:i1, i0:i1]
        low = np.tril_indices(i1 - i0, -1)
        d[low] = d.T[low]
        c[i1:, i0:i1] = c[i0:i1, i1:].T
    return c.T if c.flags.f_contiguous else c


class NumpyTiles:
    """CPU tiles: BLAS through SciPy, elementwise work in NumPy."""

    name = "numpy"

    def __init__(self):
        self.flops = 0.0
        self._scratch = {}

    def _buffer(self, key, shape):
        """A Fortran-ordered float32 scratch array kept between tiles and
        Grams (for the engine's lifetime): fresh n×n arrays for every product
        cost page faults and zeroing, a third of an FC Gram's time.
        Zero-initialised, so the strict lower triangle of a ``syrk`` scratch
        stays zero: syrk and the products leave it there."""
        buf = self._scratch.get(key)
        if buf is None or buf.shape != shape:
            buf = self._scratch[key] = np.zeros(shape, np.float32, order="F")
        return buf

    @staticmethod
    def from_tf(t):
        return t.numpy()

    def mm_nt(self, a, b, scratch=None):
        """a bᵀ; with a ``scratch`` name, into a reused array (valid until
        the next product with that name)."""
        self.flops += 2.0 * a.shape[0] * b.shape[0] * a.shape[1]
        c = None if scratch is None else self._buffer(("gemm", scratch), (b.shape[0], a.shape[0]))
        return gemm_nt(a, b, c)

    def syrk(self, a, scratch=None):
        """a aᵀ, upper triangle only (:meth:`symmetrize` completes it); with
        a ``scratch`` name, into a reused array."""
        n, k = a.shape
        self.flops += float(n) * (n + 1) * k
        return syrk_upper(a, None if scratch is None else self._buffer(("syrk", scratch), (n, n)))

    @staticmethod
    def add_product(out, aa, dd):
        """``out + aa ⊙ dd``, in place of ``out``; ``out`` None: a new array
        (``aa`` is scratch: overwritten)."""
        if out is None:
            return np.multiply(aa, dd)
        aa *= dd
        out += aa
        return out

    @staticmethod
    def symmetrize(c):
        return mirror_upper(c)

    @staticmethod
    def rowdot(a, b):
        # float64 products and sums (a float32 dot of 10^6-dim gradients is
        # off by ~1e-4 relative), in column chunks so no float64 copy of a block
        out = np.zeros(a.shape[0], np.float64)
        for c in range(0, a.shape[1], ROWDOT_COLUMNS):
            out += np.einsum("ij,ij->i", a[:, c:c + ROWDOT_COLUMNS].astype(np.float64),
                             b[:, c:c + ROWDOT_COLUMNS].astype(np.float64))
        return out

    @staticmethod
    def to_numpy(a):
        return np.asarray(a)

    @staticmethod
    def empty(rows, cols):
        return np.empty((rows, cols), np.float32)

    @staticmethod
    def put_rows(panel, i0, block):
        panel[i0:i0 + block.shape[0]] = block
        return panel

    @staticmethod
    def rows(a, i0, i1):
        return a[i0:i1]

    @staticmethod
    def gather_columns(parts, out=None):
        """Concatenate (b, P_v) blocks along columns (into ``out`` if given)."""
        if not parts:
            return None
        if out is None:
            out = np.empty((parts[0].shape[0], sum(p.shape[1] for p in parts)), np.float32)
        c = 0
        for part in parts:
            out[:, c:c + part.shape[1]] = part
            c += part.shape[1]
        return out


class TensorFlowTiles:
    """Tensors stay on TensorFlow's device (the GPU when there is one)."""

    name = "tensorflow"

    def __init__(self):
        import tensorflow as tf

        self.tf = tf
        self.flops = 0.0

    @staticmethod
    def from_tf(t):
        return t

    def mm_nt(self, a, b, scratch=None):
        self.flops += 2.0 * int(a.shape[0]) * int(b.shape[0]) * int(a.shape[1])
        return self.tf.matmul(a, b, transpose_b=True)

    def syrk(self, a, scratch=None):
        self.flops += 2.0 * int(a.shape[0]) ** 2 * int(a.shape[1])
        return self.tf.matmul(a, a, transpose_b=True)

    @staticmethod
    def add_product(out, aa, dd):
        return aa * dd if out is None else out + aa * dd

    def symmetrize(self, c):
        """Exactly symmetric (GPU matmuls of a aᵀ need not be)."""
        return 0.5 * (c + self.tf.transpose(c))

    def rowdot(self, a, b):
        tf = self.tf
        return tf.reduce_sum(tf.cast(a, tf.float64) * tf.cast(b, tf.float64), axis=1)

    @staticmethod
    def to_numpy(a):
        return a.numpy() if hasattr(a, "numpy") else np.asarray(a)

    def empty(self, rows, cols):
        return self.tf.Variable(self.tf.zeros((rows, cols), self.tf.float32), trainable=False)

    @staticmethod
    def put_rows(panel, i0, block):
        panel[i0:i0 + int(block.shape[0])].assign(block)
        return panel

    @staticmethod
    def rows(a, i0, i1):
        return a[i0:i1]

    def gather_columns(self, parts, out=None):
        return self.tf.concat(parts, axis=1) if parts else None


def tile_backend(backend: str | None = None) -> NumpyTiles | TensorFlowTiles:
    """``"numpy"``, ``"tensorflow"`` (or ``"tf"``); None: TensorFlow when it
    sees a GPU, else NumPy."""
    if backend is None:
        import tensorflow as tf

        backend = "tensorflow" if tf.config.list_logical_devices("GPU") else "numpy"
    if backend == "numpy":
        return NumpyTiles()
    if backend in ("tensorflow", "tf"):
        return TensorFlowTiles()
    raise ValueError(f"unknown backend {backend!r}: 'numpy' or 'tensorflow'")
