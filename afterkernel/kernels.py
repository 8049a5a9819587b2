"""The after kernel (FNTK after training) and its conjugate projection.

For a network f with parameters θ (all trainable weights, biases included),
the after kernel is K(x, x') = ∇θf(x)·∇θf(x') and the conjugate projection
K_c(x, x') = h_{L-1}(x)·h_{L-1}(x'), h_{L-1} being the input of the final
``logit`` layer (paper §2).

Engine
------
The n×P Jacobian is never materialised unless it fits ``jacobian_budget_mb``.
Examples are processed in blocks; for each block one ``tf.function``

1. runs the forward pass layer by layer, recording for every parameterised
   layer its input A_l and its pre-activation output Z_l (Conv2D and Dense are
   split as z = op(a) + b, out = activation(z)); parameter-free layers
   (pooling, Flatten, Activation/ReLU, Dropout, custom layers without trainable
   weights such as ``SumPixels``) are called as they are, in inference mode;
2. takes ONE batched backward pass of Σ_i f(x_i) to get D_l = ∂f(x_i)/∂Z_l
   (examples are independent within a batch: no batch statistics);
3. forms the per-example contributions layer by layer:

   - **Dense on 2-D inputs** (more than one unit): nothing explicit. The
     exact factorisation K_l(i, j) = (a_i·a_j + 1)·(δ_i·δ_j) (the +1 is the
     bias; dropped without a trainable bias) is applied when Gram tiles are
     assembled, so only Ã_l = [A_l, 1] (n×(d_in+1), the ones column only with
     a bias) and D_l (n×d_out) are kept; a one-unit layer (the logit) is
     kept explicit, a_i δ_i, as small as its factors;
   - **Conv2D** (channels_last, groups=1, any strides / dilation, 'same' or
     'valid'): weight gradient of example i = patches(a_i)ᵀ δ_i, computed as
     ONE grouped ``Conv2DBackpropFilter`` with the batch moved into the
     channels (group i = example i; the layer's own strides, dilation and
     padding), which never materialises the patches; where that op is not
     available (probed once per process; TensorFlow's CPU kernels reject it)
     one batched matmul per kernel offset, window(a_i)ᵀ δ_i, summed into
     place; bias gradient = Σ_positions δ_i;
   - **Dense on N-D inputs** (acting on the last axis): like a 1×1 conv,
     a_iᵀ δ_i summed over positions;
   - **any other layer with trainable weights** (BatchNormalization,
     DepthwiseConv2D, a user-defined layer, a Conv2D/Dense subclass or one
     with LoRA / quantisation, ...): generic and slower: the per-example
     gradients of that layer's weights are the Jacobian (``GradientTape.
     jacobian``, pfor) of s_i = Σ layer(a_i)·D_i, computed inside the same
     function; logged once per model;
   - models that are not a plain chain of layers (not ``keras.Sequential``)
     fall back entirely to ``tape.jacobian`` of the output in blocks (logged).

Gram matrices are accumulated tile by tile in float32: a *panel* of rows is
kept in memory (one contiguous array of explicit gradients plus the dense
factors, within the budget); its own upper triangle is computed by column
strips (BLAS syrk for the diagonal squares: only their upper triangle is
computed, every term of the tile is summed there and the result mirrored
once; gemm above them), then the remaining examples are streamed past it in
blocks, so only upper tiles are computed (and mirrored). When everything fits
(FC nets: only the factors; VGG on MNIST: one or two panels) each example's
gradients are computed once or twice. Tiles go to a *sink*: an in-memory
array (:class:`GramArray`) or, in the kernel job, straight into the HDF5
file. Matmuls run in SciPy's BLAS (OpenBLAS) on CPU and in TensorFlow when
TensorFlow sees a GPU (same results up to float32 rounding).

The budget covers the per-example gradient storage (panel + streamed block)
and the block's working memory (an estimate); an in-memory Gram (n² floats),
two tile-sized scratch arrays for the factors' Grams (kept by the engine
between Grams) and TensorFlow's runtime come on top.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = None  # as many examples as a quarter of the budget holds
AUTO_BLOCK_MAX = 2048  # ... and at most this many (FC nets: a few large TensorFlow calls)
DEFAULT_BUDGET_MB = 1024.0
ROWDOT_COLUMNS = 65536  # columns per float64 chunk of a per-example dot product
STRIP_COLUMNS = 2048  # columns per matmul of a panel's own Gram (big tiles: efficient BLAS)
_BYTES = 4  # float32


# ----------------------------------------------------------------------------
# Plan: how each layer is handled
# ----------------------------------------------------------------------------

@dataclasses.dataclass
class _Step:
    kind: str                 # "call", "conv", "dense", "dense_nd", "generic"
    layer: object
    kernel_var: object = None  # trainable kernel variable (or None)
    bias_var: object = None    # trainable bias variable (or None)
    variables: tuple = ()      # trainable variables of a generic layer
    in_shape: tuple = ()       # per-example shapes (no batch axis)
    out_shape: tuple = ()


def _is_exact(layer, cls) -> bool:
    return type(layer) is cls


def _trainable_ids(layer) -> set[int]:
    return {id(v) for v in layer.trainable_weights}


def _known_kind(layer) -> str | None:
    """'conv' / 'dense' if the layer can be split as z = op(a) + b, out = act(z)."""
    import keras

    if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
        return None
    if _is_exact(layer, keras.layers.Conv2D):
        if layer.data_format == "channels_last" and int(layer.groups) == 1 \
                and str(layer.padding).lower() in ("same", "valid"):
            return "conv"
        return None
    if _is_exact(layer, keras.layers.Dense):
        return "dense"
    return None


def _make_plan(model) -> list[_Step] | None:
    """Steps for a Sequential chain, or ``None`` (whole-model generic path)."""
    import keras

    if not isinstance(model, keras.Sequential):
        return None
    steps = []
    for layer in model.layers:
        ids = _trainable_ids(layer)
        if not ids:
            steps.append(_Step("call", layer))
            continue
        kind = _known_kind(layer)
        if kind is not None:
            kernel = layer._kernel if id(layer._kernel) in ids else None
            bias = layer.bias if (layer.bias is not None and id(layer.bias) in ids) else None
            handled = {id(v) for v in (kernel, bias) if v is not None}
            if handled == ids:
                steps.append(_Step(kind, layer, kernel_var=kernel, bias_var=bias))
                continue
        steps.append(_Step("generic", layer, variables=tuple(layer.trainable_weights)))
    return steps


# ----------------------------------------------------------------------------
# Per-block representation
# ----------------------------------------------------------------------------

@dataclasses.dataclass
class Rep:
    """What a block of examples contributes to Gram tiles.

    ``explicit``: (b, P_exp) explicit per-example gradients of the parameters
    not covered by a factorisation, columns in the order of
    ``KernelEngine.explicit_vars`` (None if there are none); ``factors``:
    per factorised Dense layer (Ã (b, d_in [+ 1]), D (b, d_out)), Ã being the
    layer's input with a ones column when it has a bias, so that its Gram
    term is (Ã Ãᵀ) ⊙ (D Dᵀ);
    ``h``: (b, d) conjugate features h_{L-1}. Arrays are NumPy (CPU backend)
    or tensors (TF backend)."""

    explicit: object
    factors: list
    h: object

    @property
    def n(self) -> int:
        return int(self.h.shape[0])


def _syrk_upper(a, c=None) -> np.ndarray:
    """Upper triangle of a aᵀ by BLAS ssyrk: half the multiply-adds of a aᵀ
    and no mirrored copy. Fortran-ordered (n, n), written into ``c`` when
    given; the strict lower triangle is not touched (zero in a new array;
    :func:`_mirror_upper` completes it)."""
    from scipy.linalg.blas import ssyrk

    a = np.ascontiguousarray(a, np.float32)
    if c is None:
        return ssyrk(1.0, a.T, trans=1)  # aᵀ is Fortran-ordered: no copy
    return ssyrk(1.0, a.T, beta=0.0, c=c, trans=1, overwrite_c=1)


def _gemm_nt(a, b, c=None) -> np.ndarray:
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


def _add_product(out, aa, dd):
    """``out + aa ⊙ dd``, in place of ``out``; ``out`` None: a new array
    (``aa`` is scratch: overwritten)."""
    if out is None:
        return np.multiply(aa, dd)
    aa *= dd
    out += aa
    return out


def _mirror_upper(c) -> np.ndarray:
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


class _NumpyOps:
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
        return _gemm_nt(a, b, c)

    def syrk(self, a, scratch=None):
        """a aᵀ, upper triangle only (:meth:`symmetrize` completes it); with
        a ``scratch`` name, into a reused array."""
        n, k = a.shape
        self.flops += float(n) * (n + 1) * k
        return _syrk_upper(a, None if scratch is None else self._buffer(("syrk", scratch), (n, n)))

    @staticmethod
    def add_product(out, aa, dd):
        return _add_product(out, aa, dd)

    @staticmethod
    def symmetrize(c):
        return _mirror_upper(c)

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


class _TFOps:
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


def _default_ops(backend: str | None = None):
    if backend is None:
        import tensorflow as tf

        backend = "tensorflow" if tf.config.list_logical_devices("GPU") else "numpy"
    if backend == "numpy":
        return _NumpyOps()
    if backend in ("tensorflow", "tf"):
        return _TFOps()
    raise ValueError(f"unknown backend {backend!r}: 'numpy' or 'tensorflow'")


# ----------------------------------------------------------------------------
# Engine
# ----------------------------------------------------------------------------

def _conv_weight_grads(tf, layer, a, d, b, method: str):
    """Per-example Conv2D kernel gradients (b, kh·kw·c_in·c_out), row-major
    in the kernel's (kh, kw, c_in, c_out) layout.

    ``"grouped"``: one grouped ``Conv2DBackpropFilter`` with the batch moved
    into the channels (example i is group i: input channels i·c_in.., output
    channels i·c_out..), the filter gradient of a convolution with the layer's
    own strides / dilation / padding, so each group's gradient is one
    example's. ``"shifted"``: for each kernel offset (u, v), the input window
    that offset sees (the layer's padding, strides and dilation) times δ, one
    batched matmul a_uvᵀ δ per offset; no patch array is materialised."""
    kh, kw = (int(k) for k in layer.kernel_size)
    sh, sw = (int(k) for k in layer.strides)
    dh, dw = (int(k) for k in layer.dilation_rate)
    h, w = int(a.shape[1]), int(a.shape[2])
    ho, wo = int(d.shape[1]), int(d.shape[2])
    c_in, c_out = int(a.shape[-1]), int(d.shape[-1])
    if method == "grouped":
        ag = tf.reshape(tf.transpose(a, (1, 2, 0, 3)), (1, h, w, b * c_in))
        dg = tf.reshape(tf.transpose(d, (1, 2, 0, 3)), (1, ho, wo, b * c_out))
        g = tf.raw_ops.Conv2DBackpropFilter(
            input=ag, filter_sizes=tf.stack([kh, kw, c_in, b * c_out]), out_backprop=dg,
            strides=[1, sh, sw, 1], dilations=[1, dh, dw, 1], padding=str(layer.padding).upper())
        g = tf.transpose(tf.reshape(g, (kh, kw, c_in, b, c_out)), (3, 0, 1, 2, 4))
        return tf.reshape(g, (b, -1))
    if str(layer.padding).lower() == "same":  # TensorFlow's rule: the odd pixel goes after
        ph = max((ho - 1) * sh + (kh - 1) * dh + 1 - h, 0)
        pw = max((wo - 1) * sw + (kw - 1) * dw + 1 - w, 0)
        a = tf.pad(a, [[0, 0], [ph // 2, ph - ph // 2], [pw // 2, pw - pw // 2], [0, 0]])
    d2 = tf.reshape(d, (-1, ho * wo, c_out))
    parts = []
    for u in range(kh):
        for v in range(kw):
            window = a[:, u * dh: u * dh + (ho - 1) * sh + 1: sh, v * dw: v * dw + (wo - 1) * sw + 1: sw, :]
            parts.append(tf.matmul(tf.reshape(window, (-1, ho * wo, c_in)), d2, transpose_a=True))
    return tf.reshape(tf.stack(parts, axis=1), (b, -1))


def _pick_conv_method(tf) -> str:
    """``"grouped"`` if grouped Conv2DBackpropFilter runs here and agrees with
    the shifted method on a small strided, dilated case, else ``"shifted"``."""
    import keras

    try:
        rng = np.random.default_rng(0)
        out = {}
        for kw_ in ({"strides": 2, "padding": "same"}, {"dilation_rate": 2, "padding": "valid"}):
            layer = keras.layers.Conv2D(3, (3, 2), **kw_)
            a = tf.constant(rng.random((2, 9, 8, 2)), tf.float32)
            z = layer(a)
            d = tf.constant(rng.random(tuple(z.shape)), tf.float32)
            res = [np.asarray(_conv_weight_grads(tf, layer, a, d, 2, m)) for m in ("grouped", "shifted")]
            out[str(kw_)] = float(np.abs(res[0] - res[1]).max() / np.abs(res[1]).max())
        if max(out.values()) < 1e-5:
            return "grouped"
        log.warning("grouped Conv2DBackpropFilter disagrees here (%s): using shifted", out)
    except Exception as e:  # noqa: BLE001 - any backend failure: use the portable path
        log.info("grouped Conv2DBackpropFilter unavailable (%s: %s): using shifted",
                    type(e).__name__, e)
    return "shifted"


_CONV_METHOD: list[str] = []


def conv_method() -> str:
    """The per-example conv gradient method of this process (probed once)."""
    if not _CONV_METHOD:
        import tensorflow as tf

        _CONV_METHOD.append(_pick_conv_method(tf))
    return _CONV_METHOD[0]


class KernelEngine:
    """Per-block gradients of one model (one snapshot's weights).

    ``factorize_dense``: keep dense layers (2-D inputs) as factors (Gram mode);
    with False every parameter gets an explicit gradient, concatenated in the
    order of ``model.trainable_weights`` (flattened row-major), as
    :func:`per_example_gradients` returns them."""

    @classmethod
    def for_model(cls, model, *, factorize_dense: bool = True, backend: str | None = None):
        """The engine of ``model``, built once and cached on the model (its
        ``tf.function`` reads the variables, so new weights need no rebuild)."""
        cache = getattr(model, "_afterkernel_engines", None)
        if cache is None:
            cache = {}
            object.__setattr__(model, "_afterkernel_engines", cache)  # bypass Keras tracking
        key = (bool(factorize_dense), backend)
        if key not in cache:
            cache[key] = cls(model, factorize_dense=factorize_dense, backend=backend)
        return cache[key]

    def __init__(self, model, *, factorize_dense: bool = True, backend: str | None = None):
        import tensorflow as tf

        self.tf = tf
        self.model = model
        self.ops = _default_ops(backend)
        self.factorize_dense = factorize_dense
        self.input_shape = tuple(int(d) for d in model.input_shape[1:])
        self.variables = list(model.trainable_weights)
        self.n_params = int(sum(int(np.prod(v.shape)) for v in self.variables))
        self.steps = _make_plan(model)
        self.conv_method = conv_method()
        if self.steps is None:
            log.warning("model %r is not a keras.Sequential chain: generic (slower) path, "
                        "per-example gradients by GradientTape.jacobian (pfor) in blocks",
                        model.name)
        else:
            self._infer_shapes()
            generic = [s.layer for s in self.steps if s.kind == "generic"]
            for layer in generic:
                log.warning("layer %r (%s) has trainable weights of a type the engine does not "
                            "decompose: generic (slower) per-example gradients for it "
                            "(GradientTape.jacobian, pfor)", layer.name, type(layer).__name__)
        self._layout()
        self.reset_stats()
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        self._fn = tf.function(self._block, input_signature=[spec], reduce_retracing=True,
                               autograph=False)

    # -- set-up ---------------------------------------------------------------
    def _infer_shapes(self):
        """Per-example input / output shape of every step (one eager pass)."""
        tf = self.tf
        a = tf.zeros((1, *self.input_shape), tf.float32)
        for step in self.steps:
            out = step.layer(a, training=False)
            step.in_shape = tuple(int(d) for d in a.shape[1:])
            step.out_shape = tuple(int(d) for d in out.shape[1:])
            if step.kind == "dense" and len(step.in_shape) != 1:
                step.kind = "dense_nd"
            a = out

    def _layout(self):
        """Which variables are explicit, their column offsets, memory sizes."""
        explicit_vars = []
        self.factor_dims = []  # columns of (Ã, D) per factorised dense step
        work = 0
        if self.steps is None:
            explicit_vars = list(self.variables)
        else:
            for step in self.steps:
                if step.kind == "call":
                    continue
                if self._factorised(step):
                    self.factor_dims.append((step.in_shape[0] + (step.bias_var is not None),
                                             step.out_shape[0]))
                    continue
                if step.kind == "generic":
                    explicit_vars += list(step.variables)
                else:
                    explicit_vars += [v for v in (step.kernel_var, step.bias_var) if v is not None]
                if step.kind == "conv":
                    kh, kw = step.layer.kernel_size
                    if self.conv_method == "shifted":  # padded input, one window at a time
                        work += 2 * int(np.prod(step.in_shape)) \
                            + kh * kw * step.in_shape[-1] * step.out_shape[-1]
                    else:  # transposed input / delta, grouped output and its transpose
                        work += int(np.prod(step.in_shape)) + int(np.prod(step.out_shape)) \
                            + 2 * kh * kw * step.in_shape[-1] * step.out_shape[-1]
            # activations kept by the forward / backward pass
            work += 3 * sum(int(np.prod(s.out_shape)) for s in self.steps)
        order = {id(v): i for i, v in enumerate(self.variables)}
        self.explicit_vars = sorted(explicit_vars, key=lambda v: order[id(v)])
        self.p_explicit = int(sum(int(np.prod(v.shape)) for v in self.explicit_vars))
        self.rep_floats = self.p_explicit + sum(a + b for a, b in self.factor_dims)
        # the block's own working set: reps (+ concat copy) and patches
        self.work_floats = work + 2 * self.p_explicit

    def _factorised(self, step) -> bool:
        """Whether a layer is kept as its factors (A_l, D_l): dense on 2-D
        inputs with more than one unit. A one-unit layer (the logit) has as
        many weights as its factors hold numbers, and its explicit gradient
        a_l δ_l makes its Gram term one matmul with no elementwise product."""
        return step.kind == "dense" and self.factorize_dense and step.out_shape[0] > 1

    def block_size_for(self, block_size: int | None, budget_mb: float) -> int:
        """Block size within a quarter of the budget (at least 1); ``None``:
        as large as that allows, up to ``AUTO_BLOCK_MAX`` (nets with small
        per-example gradients, such as FC nets, get few large TensorFlow calls)."""
        per_example = _BYTES * (self.rep_floats + self.work_floats)
        cap = int(0.25 * budget_mb * 2**20 // max(per_example, 1))
        want = AUTO_BLOCK_MAX if block_size is None else int(block_size)
        return int(max(1, min(want, cap)))

    def panel_rows_for(self, block: int, budget_mb: float) -> int:
        """Rows of a panel within the rest of the budget (a multiple of block)."""
        per_example = _BYTES * max(self.rep_floats, 1)
        left = budget_mb * 2**20 - block * _BYTES * (self.rep_floats + self.work_floats)
        rows = int(left // per_example)
        return max(block, (rows // block) * block)

    # -- the per-block function --------------------------------------------------
    def _block(self, x):
        tf = self.tf
        if self.steps is None:
            return self._block_generic_model(x)
        a = x
        records = []  # (step, input, watched output)
        h = None
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            for k, step in enumerate(self.steps):
                layer = step.layer
                if k == len(self.steps) - 1:
                    h = a
                if step.kind == "call":
                    a = layer(a, training=False)
                    continue
                if step.kind == "conv":
                    z = layer.convolution_op(a, layer.kernel)
                    if layer.use_bias:
                        z = z + tf.reshape(layer.bias, (1, 1, 1, -1))
                elif step.kind in ("dense", "dense_nd"):
                    z = tf.matmul(a, layer.kernel) if len(a.shape) == 2 else \
                        tf.tensordot(a, layer.kernel, axes=[[len(a.shape) - 1], [0]])
                    if layer.bias is not None:
                        z = z + layer.bias
                else:  # generic: the layer's output stands in for z
                    z = layer(a, training=False)
                tape.watch(z)
                records.append((step, a, z))
                if step.kind != "generic" and layer.activation is not None:
                    a = layer.activation(z)
                else:
                    a = z
            total = tf.reduce_sum(a)
        deltas = tape.gradient(total, [r[2] for r in records],
                               unconnected_gradients=tf.UnconnectedGradients.ZERO)
        b = tf.shape(x)[0]
        grads = {}  # id(var) -> (b, size)
        factors = []
        for (step, a_in, _), d in zip(records, deltas):
            layer = step.layer
            if self._factorised(step):
                if step.bias_var is not None:
                    a_in = tf.concat([a_in, tf.ones((b, 1), a_in.dtype)], axis=1)
                factors.append((a_in, d))
                continue
            if step.kind == "dense":
                if step.kernel_var is not None:
                    grads[id(step.kernel_var)] = tf.reshape(a_in[:, :, None] * d[:, None, :], (b, -1))
                if step.bias_var is not None:
                    grads[id(step.bias_var)] = d
            elif step.kind == "dense_nd":
                d_in, d_out = int(a_in.shape[-1]), int(d.shape[-1])
                a2 = tf.reshape(a_in, (b, -1, d_in))
                d2 = tf.reshape(d, (b, -1, d_out))
                if step.kernel_var is not None:
                    grads[id(step.kernel_var)] = tf.reshape(tf.einsum("bsi,bso->bio", a2, d2), (b, -1))
                if step.bias_var is not None:
                    grads[id(step.bias_var)] = tf.reduce_sum(d2, axis=1)
            elif step.kind == "conv":
                c_out = int(d.shape[-1])
                if step.kernel_var is not None:
                    grads[id(step.kernel_var)] = _conv_weight_grads(tf, layer, a_in, d, b,
                                                                    self.conv_method)
                if step.bias_var is not None:
                    grads[id(step.bias_var)] = tf.reduce_sum(tf.reshape(d, (b, -1, c_out)), axis=1)
            else:  # generic layer: Jacobian of s_i = Σ layer(a_i)·D_i w.r.t. its weights
                d = tf.stop_gradient(d)
                a_in = tf.stop_gradient(a_in)
                with tf.GradientTape() as t2:
                    out = layer(a_in, training=False)
                    s = tf.reduce_sum(tf.reshape(out * d, (b, -1)), axis=1)
                jac = t2.jacobian(s, list(step.variables),
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
                for v, j in zip(step.variables, jac):
                    grads[id(v)] = tf.reshape(j, (b, -1))
        explicit = [grads[id(v)] for v in self.explicit_vars]
        h = tf.reshape(h, (b, -1))
        return explicit, factors, h

    def _block_generic_model(self, x):
        tf = self.tf
        with tf.GradientTape() as tape:
            f = tf.reshape(self.model(x, training=False), (-1,))
        jac = tape.jacobian(f, list(self.variables),
                            unconnected_gradients=tf.UnconnectedGradients.ZERO)
        b = tf.shape(x)[0]
        explicit = [tf.reshape(j, (b, -1)) for j in jac]
        h = tf.reshape(self._conjugate(x), (b, -1))
        return explicit, [], h

    @property
    def _conjugate(self):
        if not hasattr(self, "_conj_model"):
            from afterkernel.models import conjugate_model

            self._conj_model = conjugate_model(self.model)
        return self._conj_model

    # -- public per-block API ------------------------------------------------------
    def reset_stats(self):
        """Counters: examples and seconds of gradient blocks, seconds and
        flops of Gram tiles (for logs and benchmarks)."""
        self.stats = {"examples": 0, "rep_seconds": 0.0, "tile_seconds": 0.0, "tile_flops": 0.0}

    def rep(self, x, out=None) -> Rep:
        """Representation of one block of examples (float32 NHWC). ``out``: a
        (b, P_exp) float32 array (e.g. rows of a panel) to receive the
        explicit gradients (NumPy backend), saving a copy."""
        tf = self.tf
        t0 = time.perf_counter()
        grads, factors, h = self._fn(tf.convert_to_tensor(x, tf.float32))
        conv = self.ops.from_tf
        rep = Rep(self.ops.gather_columns([conv(g) for g in grads], out),
                  [(conv(a), conv(d)) for a, d in factors], conv(h))
        self.stats["examples"] += rep.n
        self.stats["rep_seconds"] += time.perf_counter() - t0
        return rep

    def tile(self, r1: Rep, r2: Rep, symmetric: bool = False):
        """Gram tile K(block 1, block 2) (backend array, (b1, b2)); with
        ``symmetric`` (r2 is r1) the result is exactly symmetric. The stats
        count the flops the matmuls perform (2 per multiply-add, syrk half)."""
        t0 = time.perf_counter()
        f0 = self.ops.flops
        out = self._tile(r1, r2, symmetric)
        self.stats["tile_seconds"] += time.perf_counter() - t0
        self.stats["tile_flops"] += self.ops.flops - f0
        return out

    def _tile(self, r1: Rep, r2: Rep, symmetric: bool):
        ops = self.ops

        def gram(u, v, scratch=None):
            return ops.syrk(u, scratch) if symmetric else ops.mm_nt(u, v, scratch)

        # the tile itself is a new array; the factors' Grams are scratch
        out = None if r1.explicit is None else gram(r1.explicit, r2.explicit)
        for (a1, d1), (a2, d2) in zip(r1.factors, r2.factors):
            out = ops.add_product(out, gram(a1, a2, "a"), gram(d1, d2, "d"))
        return ops.symmetrize(out) if symmetric else out

    def rowdot(self, r1: Rep, r2: Rep):
        """Per-example K(x_i, x'_i) of two blocks of equal length (NumPy
        float64 (b,), products and sums in float64: these give the cosines)."""
        ops = self.ops
        out = np.zeros(r1.n, np.float64)
        if r1.explicit is not None:
            out += ops.to_numpy(ops.rowdot(r1.explicit, r2.explicit))
        for (a1, d1), (a2, d2) in zip(r1.factors, r2.factors):
            out += ops.to_numpy(ops.rowdot(a1, a2)) * ops.to_numpy(ops.rowdot(d1, d2))
        return out


# ----------------------------------------------------------------------------
# Panels and Gram matrices
# ----------------------------------------------------------------------------

class _Panel:
    """Rows of several blocks held together: one contiguous (rows, P_exp)
    array of explicit gradients, and the dense factors."""

    def __init__(self, engine: KernelEngine, rows: int):
        ops = engine.ops
        self.engine = engine
        self.ops = ops
        self.rows = rows
        self.filled = 0
        self.explicit = ops.empty(rows, engine.p_explicit) if engine.p_explicit else None
        self.factors = [(ops.empty(rows, di), ops.empty(rows, do)) for di, do in engine.factor_dims]

    def add_block(self, x) -> Rep:
        """Compute the block's representation straight into the next rows."""
        i0, ops = self.filled, self.ops
        target = None
        if self.explicit is not None and isinstance(self.explicit, np.ndarray):
            target = self.explicit[i0:i0 + len(x)]
        rep = self.engine.rep(x, out=target)
        if self.explicit is not None and target is None:
            self.explicit = ops.put_rows(self.explicit, i0, rep.explicit)
        self.factors = [(ops.put_rows(pa, i0, a), ops.put_rows(pd, i0, d))
                        for (pa, pd), (a, d) in zip(self.factors, rep.factors)]
        self.filled += rep.n
        return rep

    def rows_rep(self, i0: int, i1: int) -> Rep:
        """Rows i0..i1 as a Rep (views on CPU)."""
        ops = self.ops
        ex = None if self.explicit is None else ops.rows(self.explicit, i0, i1)
        fac = [(ops.rows(a, i0, i1), ops.rows(d, i0, i1)) for a, d in self.factors]
        return Rep(ex, fac, np.empty((i1 - i0, 0), np.float32))


class _Progress:
    """Log examples done and rate every ``every`` seconds."""

    def __init__(self, what: str, total: int, every: float = 30.0):
        self.what, self.total, self.every = what, total, every
        self.t0 = self.last = time.perf_counter()
        self.done = 0

    def add(self, n: int):
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            log.info("%s: %d/%d example gradients (%.0f/s, %.0f s elapsed)",
                     self.what, self.done, self.total, rate, now - self.t0)

    def finish(self):
        dt = time.perf_counter() - self.t0
        log.info("%s: done, %d example gradients in %.1f s (%.0f/s)",
                 self.what, self.done, dt, self.done / max(dt, 1e-9))


def _blocks(n: int, b: int) -> list[tuple[int, int]]:
    return [(s, min(s + b, n)) for s in range(0, n, b)]


def _as_batch(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


class GramArray:
    """In-memory destination of a symmetric Gram matrix built tile by tile
    (the default of :func:`gram_with_conjugate`). A destination has
    ``put(r0, c0, tile, mirror)``: store ``tile`` at rows r0.., columns c0..
    and, with ``mirror``, its transpose at the mirrored place; and
    ``result()``."""

    def __init__(self, n: int, out: np.ndarray | None = None):
        self.K = np.empty((n, n), np.float32) if out is None else out

    def put(self, r0: int, c0: int, tile: np.ndarray, mirror: bool) -> None:
        h, w = tile.shape
        self.K[r0:r0 + h, c0:c0 + w] = tile
        if mirror:
            self.K[c0:c0 + w, r0:r0 + h] = tile.T

    def result(self):
        return self.K


def gram_with_conjugate(engine: KernelEngine, x, *, block_size: int | None = DEFAULT_BLOCK_SIZE,
                        jacobian_budget_mb: float = DEFAULT_BUDGET_MB, sink=None,
                        what: str = "after kernel Gram", panel_rows: int | None = None,
                        strip_columns: int = STRIP_COLUMNS):
    """Symmetric after-kernel Gram of ``x`` and, from the same forward passes,
    the conjugate features h_{L-1}(x) (n, d). Returns ``(sink.result(), H)``;
    the default sink is a :class:`GramArray` (an (n, n) float32 array); a
    sink that writes tiles to a file keeps the n² matrix out of memory.
    ``panel_rows`` overrides the panel size derived from the budget,
    ``strip_columns`` the width of the matmuls of a panel's own Gram (tests,
    tuning)."""
    x = _as_batch(x)
    n = len(x)
    b = engine.block_size_for(block_size, jacobian_budget_mb)
    p = engine.panel_rows_for(b, jacobian_budget_mb) if panel_rows is None else \
        max(b, (int(panel_rows) // b) * b)
    blocks = _blocks(n, b)
    per_panel = max(1, p // b)
    panels = [blocks[i:i + per_panel] for i in range(0, len(blocks), per_panel)]
    evals = sum(min(sum(e - s for s, e in pb) + (n - pb[-1][1]), n) for pb in panels)
    log.info("%s: n=%d, P=%d (%d explicit, %d factorised layers), block %d, panel %d rows, "
             "%d panel(s), %d gradient evaluations, backend %s", what, n, engine.n_params,
             engine.p_explicit, len(engine.factor_dims), b, min(p, n), len(panels), evals,
             engine.ops.name)
    sink = GramArray(n) if sink is None else sink
    progress = _Progress(what, evals)
    H: list = [None]
    for pb in panels:
        # one function call per panel: its arrays (and views of them) are freed
        # before the next panel is allocated
        _panel_pass(engine, x, pb, b, sink, H, progress, strip_columns)
    progress.finish()
    return sink.result(), (np.empty((0, 0), np.float32) if H[0] is None else H[0])


def _panel_pass(engine: KernelEngine, x: np.ndarray, pb, b: int, sink, H: list, progress,
                strip_columns: int) -> None:
    """Fill one panel (blocks ``pb``), emit its upper triangle and the tiles of
    all later examples (streamed) against it."""
    ops = engine.ops
    n = len(x)
    ps, pe = pb[0][0], pb[-1][1]
    panel = _Panel(engine, pe - ps)
    for s, e in pb:
        rep = panel.add_block(x[s:e])
        progress.add(e - s)
        if H[0] is None:
            H[0] = np.empty((n, int(rep.h.shape[1])), np.float32)
        H[0][s:e] = ops.to_numpy(rep.h)
    # the panel's own upper triangle, by column strips: rows ps..c1 x columns c0..c1
    rows = pe - ps
    for c0, c1 in _blocks(rows, max(1, int(strip_columns))):
        strip = panel.rows_rep(c0, c1)
        # diagonal square by syrk (half the work, exactly symmetric)
        sink.put(ps + c0, ps + c0, ops.to_numpy(engine.tile(strip, strip, True)), False)
        if c0 > 0:
            sink.put(ps, ps + c0, ops.to_numpy(engine.tile(panel.rows_rep(0, c0), strip)), True)
    # the rest of the examples, streamed past the panel
    head = panel.rows_rep(0, rows)
    for s, e in _blocks(n - pe, b):
        s, e = s + pe, e + pe
        rep = engine.rep(x[s:e])
        progress.add(e - s)
        sink.put(ps, s, ops.to_numpy(engine.tile(head, rep)), True)


def feature_gram(h: np.ndarray, sink=None, strip_columns: int = STRIP_COLUMNS):
    """Symmetric Gram H Hᵀ of explicit features (the conjugate projection),
    float32, by column strips into ``sink`` (default: an in-memory array)."""
    h = np.asarray(h, np.float32)
    n = len(h)
    sink = GramArray(n) if sink is None else sink
    for c0, c1 in _blocks(n, max(1, int(strip_columns))):
        strip = h[c0:c1]
        sink.put(c0, c0, _mirror_upper(_syrk_upper(strip)), False)
        if c0 > 0:
            sink.put(0, c0, _gemm_nt(h[:c0], strip), True)
    return sink.result()


def _cross_gram(engine: KernelEngine, x1, x2, *, block_size, jacobian_budget_mb, what):
    x1, x2 = _as_batch(x1), _as_batch(x2)
    n1, n2 = len(x1), len(x2)
    b = engine.block_size_for(block_size, jacobian_budget_mb)
    p = engine.panel_rows_for(b, jacobian_budget_mb)
    blocks = _blocks(n1, b)
    per_panel = max(1, p // b)
    panels = [blocks[i:i + per_panel] for i in range(0, len(blocks), per_panel)]
    log.info("%s: %d x %d, block %d, %d panel(s)", what, n1, n2, b, len(panels))
    K = np.empty((n1, n2), np.float32)
    ops = engine.ops
    progress = _Progress(what, n1 + len(panels) * n2)
    for pb in panels:
        ps, pe = pb[0][0], pb[-1][1]
        panel = _Panel(engine, pe - ps)
        for s, e in pb:
            panel.add_block(x1[s:e])
            progress.add(e - s)
        head = panel.rows_rep(0, pe - ps)
        for s, e in _blocks(n2, b):
            rep = engine.rep(x2[s:e])
            progress.add(e - s)
            K[ps:pe, s:e] = ops.to_numpy(engine.tile(head, rep))
        del panel, head
    progress.finish()
    return K


# ----------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------

def after_kernel_gram(model, x1, x2=None, *, block_size: int | None = DEFAULT_BLOCK_SIZE,
                      jacobian_budget_mb: float = DEFAULT_BUDGET_MB, backend: str | None = None,
                      engine: KernelEngine | None = None) -> np.ndarray:
    """After-kernel Gram matrix K(x1, x2) = J(x1) J(x2)ᵀ, float32 (n1, n2).

    ``x2=None``: the symmetric Gram of ``x1`` (only upper tiles computed).
    Unscaled (divide by ``scale**2`` of :func:`feature_scale` for the paper's
    normalisation)."""
    engine = engine or KernelEngine.for_model(model, backend=backend)
    if x2 is None:
        return gram_with_conjugate(engine, x1, block_size=block_size,
                                   jacobian_budget_mb=jacobian_budget_mb)[0]
    return _cross_gram(engine, x1, x2, block_size=block_size,
                       jacobian_budget_mb=jacobian_budget_mb, what="after kernel cross Gram")


def after_kernel_diag(model, x, *, block_size: int | None = DEFAULT_BLOCK_SIZE,
                      jacobian_budget_mb: float = DEFAULT_BUDGET_MB,
                      engine: KernelEngine | None = None) -> np.ndarray:
    """Per-example K(x_i, x_i) = ‖∇θf(x_i)‖² (float64 (n,))."""
    engine = engine or KernelEngine.for_model(model)
    x = _as_batch(x)
    b = engine.block_size_for(block_size, jacobian_budget_mb)
    out = np.empty(len(x), np.float64)
    for s, e in _blocks(len(x), b):
        r = engine.rep(x[s:e])
        out[s:e] = engine.rowdot(r, r)
    return out


def after_kernel_cross_diag(model, x, x_t, *, block_size: int | None = DEFAULT_BLOCK_SIZE,
                            jacobian_budget_mb: float = DEFAULT_BUDGET_MB,
                            engine: KernelEngine | None = None):
    """Per-example (K(x_i, x'_i), K(x_i, x_i), K(x'_i, x'_i)) for paired
    inputs ``x`` and ``x_t`` (e.g. x'_i = T(x_i)); float64 arrays (n,)."""
    x_t = _as_batch(x_t)
    res = cross_diagonals(model, x, {"t": lambda s, e: x_t[s:e]}, block_size=block_size,
                          jacobian_budget_mb=jacobian_budget_mb, engine=engine, pass_index=True)
    return res["after"]["t"], res["after"]["self"], res["after"]["t_self"]


def cross_diagonals(model, x, transforms: dict[str, Callable], *,
                    block_size: int | None = DEFAULT_BLOCK_SIZE,
                    jacobian_budget_mb: float = DEFAULT_BUDGET_MB,
                    engine: KernelEngine | None = None, pass_index: bool = False) -> dict:
    """Per-example cross terms of x and T(x) for several transforms at once,
    for both kernels. Returns ``{"after": {...}, "conjugate": {...}}`` where
    each maps ``"self"`` to K(x_i, x_i), ``name`` to K(x_i, T(x_i)) and
    ``name + "_self"`` to K(T(x_i), T(x_i)) (float64 (n,), unscaled).

    Each ``transforms[name]`` maps a block of images (NHWC) to the perturbed
    block; with ``pass_index`` it is called as ``fn(s, e)`` instead and returns
    the perturbed images of rows s..e (used for precomputed pairs)."""
    engine = engine or KernelEngine.for_model(model)
    x = _as_batch(x)
    n = len(x)
    # two reps (x and T(x)) alive at once
    b = engine.block_size_for(block_size, jacobian_budget_mb / 2)
    res = {k: {"self": np.empty(n)} for k in ("after", "conjugate")}
    for name in transforms:
        for k in res:
            res[k][name] = np.empty(n)
            res[k][name + "_self"] = np.empty(n)
    ops = engine.ops
    progress = _Progress("invariance cross terms", n * (1 + len(transforms)))
    for s, e in _blocks(n, b):
        r0 = engine.rep(x[s:e])
        h0 = ops.to_numpy(r0.h).astype(np.float64)
        res["after"]["self"][s:e] = engine.rowdot(r0, r0)
        res["conjugate"]["self"][s:e] = np.einsum("ij,ij->i", h0, h0)
        progress.add(e - s)
        for name, fn in transforms.items():
            xt = fn(s, e) if pass_index else fn(x[s:e])
            xt = _as_batch(xt.numpy() if hasattr(xt, "numpy") else xt)
            rt = engine.rep(xt)
            ht = ops.to_numpy(rt.h).astype(np.float64)
            res["after"][name][s:e] = engine.rowdot(r0, rt)
            res["after"][name + "_self"][s:e] = engine.rowdot(rt, rt)
            res["conjugate"][name][s:e] = np.einsum("ij,ij->i", h0, ht)
            res["conjugate"][name + "_self"][s:e] = np.einsum("ij,ij->i", ht, ht)
            progress.add(e - s)
    progress.finish()
    return res


def conjugate_features(model, x, block_size: int = 1024) -> np.ndarray:
    """h_{L-1}(x), the input of the final layer, flattened: float32 (n, d)."""
    from afterkernel.models import conjugate_model

    import tensorflow as tf

    cm = conjugate_model(model)
    fn = tf.function(lambda t: cm(t, training=False), reduce_retracing=True, autograph=False)
    x = _as_batch(x)
    parts = [np.asarray(fn(tf.convert_to_tensor(x[s:e]))).reshape(e - s, -1)
             for s, e in _blocks(len(x), int(block_size))]
    if not parts:
        return np.empty((0, int(np.prod(cm.output_shape[1:]))), np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def conjugate_gram(h1: np.ndarray, h2: np.ndarray | None = None, block_rows: int = 4096) -> np.ndarray:
    """Conjugate-projection Gram H1 H2ᵀ in float32 (H1 H1ᵀ when ``h2`` is None,
    exactly symmetric)."""
    h1 = np.asarray(h1, np.float32)
    if h2 is None:
        return feature_gram(h1, strip_columns=block_rows)
    h2 = np.asarray(h2, np.float32)
    out = np.empty((len(h1), len(h2)), np.float32)
    for s, e in _blocks(len(h1), block_rows):
        np.matmul(h1[s:e], h2.T, out=out[s:e])
    return out


def per_example_gradients(model, x, *, block_size: int = 64, backend: str | None = None) -> np.ndarray:
    """Explicit per-example gradients ∇θf(x_i), float32 (n, P), columns in the
    order of ``model.trainable_weights`` (each flattened row-major). For small
    n (tests, benchmarks): this is the n×P Jacobian."""
    engine = KernelEngine.for_model(model, factorize_dense=False, backend=backend or "numpy")
    x = _as_batch(x)
    out = np.empty((len(x), engine.n_params), np.float32)
    for s, e in _blocks(len(x), int(block_size)):
        engine.rep(x[s:e], out=out[s:e])
    return out


def feature_scale(diag) -> float:
    """Mean L2 norm of the embeddings: mean_i √K(x_i, x_i) (paper §2)."""
    diag = np.asarray(diag, np.float64)
    return float(np.mean(np.sqrt(np.maximum(diag, 0.0))))


__all__ = [
    "KernelEngine", "Rep", "after_kernel_gram", "after_kernel_diag", "after_kernel_cross_diag",
    "cross_diagonals", "conjugate_features", "conjugate_gram", "per_example_gradients",
    "feature_scale", "gram_with_conjugate", "feature_gram", "GramArray",
]

