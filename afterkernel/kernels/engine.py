"""The per-example gradient engine: ∇θf(x_i) for a block of examples, and the
Gram tiles and dot products of two blocks (paper §2: the after kernel
K(x, x') = ∇θf(x)·∇θf(x')).

The n×P Jacobian is never materialised unless it fits the budget. For each
block of examples one ``tf.function``

1. runs the forward pass layer by layer (:mod:`~afterkernel.kernels.layers`),
   recording for every parameterised layer its input A_l and its
   pre-activation Z_l; parameter-free layers are called as they are, in
   inference mode;
2. takes ONE batched backward pass of Σ_i f(x_i) to get D_l = ∂f(x_i)/∂Z_l
   (examples are independent within a batch: no batch statistics);
3. forms each layer's per-example contribution
   (:mod:`~afterkernel.kernels.layer_gradients`): factors (Ã_l, D_l) for
   dense layers on 2-D inputs with more than one unit (their Gram term is
   (Ã Ãᵀ) ⊙ (D Dᵀ), applied when tiles are assembled), explicit gradients
   for every other parameter.

Models that are not a ``keras.Sequential`` chain fall back entirely to
``GradientTape.jacobian`` of the output in blocks (logged).
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from afterkernel.kernels.layer_gradients import (conv_method, conv_working_floats, dense_factors,
                                                 layer_gradients)
from afterkernel.kernels.layers import LayerKind, activation, layer_plan, pre_activation
from afterkernel.kernels.tiles import tile_backend

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = None  # as many examples as a quarter of the budget holds
AUTO_BLOCK_MAX = 2048  # ... and at most this many (FC nets: a few large TensorFlow calls)
DEFAULT_BUDGET_MB = 1024.0
_BYTES = 4  # float32


@dataclasses.dataclass
class BlockGradients:
    """What a block of b examples contributes to Gram tiles.

    ``explicit``: (b, P_exp) per-example gradients of the parameters not
    covered by a factorisation, columns in the order of
    ``KernelEngine.explicit_vars`` (None if there are none); ``factors``: per
    factorised Dense layer (Ã (b, d_in [+ 1]), D (b, d_out)), Ã being the
    layer's input with a ones column when it has a bias, so that its Gram
    term is (Ã Ãᵀ) ⊙ (D Dᵀ); ``h``: (b, d) conjugate features h_{L-1}.
    Arrays are NumPy (CPU backend) or tensors (TF backend)."""

    explicit: object
    factors: list
    h: object

    @property
    def n(self) -> int:
        return int(self.h.shape[0])


def blocks(n: int, b: int) -> list[tuple[int, int]]:
    """(start, end) of consecutive blocks of ``b`` of ``n`` examples."""
    return [(s, min(s + b, n)) for s in range(0, n, b)]


def as_batch(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


class Progress:
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


class KernelEngine:
    """Per-block gradients of one model (one snapshot's weights).

    ``factorize_dense``: keep dense layers (2-D inputs) as factors (Gram mode);
    with False every parameter gets an explicit gradient, concatenated in the
    order of ``model.trainable_weights`` (flattened row-major), as
    :func:`per_example_gradients` returns them. ``backend``: where Gram tiles
    are multiplied (:func:`~afterkernel.kernels.tiles.tile_backend`)."""

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
        self.ops = tile_backend(backend)
        self.factorize_dense = factorize_dense
        self.input_shape = tuple(int(d) for d in model.input_shape[1:])
        self.variables = list(model.trainable_weights)
        self.n_params = int(sum(int(np.prod(v.shape)) for v in self.variables))
        self.steps = layer_plan(model)
        self.conv_method = conv_method()
        if self.steps is None:
            log.warning("model %r is not a keras.Sequential chain: generic (slower) path, "
                        "per-example gradients by GradientTape.jacobian (pfor) in blocks",
                        model.name)
        else:
            for step in self.steps:
                if step.kind == LayerKind.GENERIC:
                    log.warning("layer %r (%s) has trainable weights of a type the engine does "
                                "not decompose: generic (slower) per-example gradients for it "
                                "(GradientTape.jacobian, pfor)", step.layer.name,
                                type(step.layer).__name__)
        self._layout()
        self.reset_stats()
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        self._fn = tf.function(self._block, input_signature=[spec], reduce_retracing=True,
                               autograph=False)

    # -- set-up ---------------------------------------------------------------
    def _layout(self):
        """Which variables are explicit (in model order), the factors'
        columns, and the floats per example of a block's gradients
        (``gradient_floats``) and working set (``work_floats``)."""
        explicit_vars = []
        self.factor_dims = []  # columns of (Ã, D) per factorised dense step
        work = 0
        if self.steps is None:
            explicit_vars = list(self.variables)
        else:
            for step in self.steps:
                if step.kind == LayerKind.CALL:
                    continue
                if self._factorised(step):
                    self.factor_dims.append((step.in_shape[0] + (step.bias_var is not None),
                                             step.out_shape[0]))
                    continue
                explicit_vars += step.trainable_variables()
                if step.kind == LayerKind.CONV:
                    work += conv_working_floats(step, self.conv_method)
            # activations kept by the forward / backward pass
            work += 3 * sum(int(np.prod(s.out_shape)) for s in self.steps)
        order = {id(v): i for i, v in enumerate(self.variables)}
        self.explicit_vars = sorted(explicit_vars, key=lambda v: order[id(v)])
        self.p_explicit = int(sum(int(np.prod(v.shape)) for v in self.explicit_vars))
        self.gradient_floats = self.p_explicit + sum(a + b for a, b in self.factor_dims)
        # the block's own working set: gradients (+ concat copy) and patches
        self.work_floats = work + 2 * self.p_explicit

    def _factorised(self, step) -> bool:
        """Whether a layer is kept as its factors (A_l, D_l): dense on 2-D
        inputs with more than one unit. A one-unit layer (the logit) has as
        many weights as its factors hold numbers, and its explicit gradient
        a_l δ_l makes its Gram term one matmul with no elementwise product.
        A frozen kernel leaves only the bias: its explicit gradient δ_l is smaller."""
        return (step.kind == LayerKind.DENSE and self.factorize_dense and step.out_shape[0] > 1
                and step.kernel_var is not None)

    def block_size_for(self, block_size: int | None, budget_mb: float) -> int:
        """Block size within a quarter of the budget (at least 1); ``None``:
        as large as that allows, up to ``AUTO_BLOCK_MAX`` (nets with small
        per-example gradients, such as FC nets, get few large TensorFlow calls)."""
        per_example = _BYTES * (self.gradient_floats + self.work_floats)
        cap = int(0.25 * budget_mb * 2**20 // max(per_example, 1))
        want = AUTO_BLOCK_MAX if block_size is None else int(block_size)
        return int(max(1, min(want, cap)))

    def panel_rows_for(self, block: int, budget_mb: float) -> int:
        """Rows of a panel within the rest of the budget (a multiple of block)."""
        per_example = _BYTES * max(self.gradient_floats, 1)
        left = budget_mb * 2**20 - block * _BYTES * (self.gradient_floats + self.work_floats)
        rows = int(left // per_example)
        return max(block, (rows // block) * block)

    # -- the per-block function (traced once) ------------------------------------
    def _block(self, x):
        """(explicit gradients per variable of ``explicit_vars``, factors, h)."""
        tf = self.tf
        if self.steps is None:
            return self._block_generic_model(x)
        tape, records, h, total = self._forward(x)
        deltas = tape.gradient(total, [z for _, _, z in records],
                               unconnected_gradients=tf.UnconnectedGradients.ZERO)
        b = tf.shape(x)[0]
        grads = {}  # id(var) -> (b, size)
        factors = []
        for (step, a, _), d in zip(records, deltas):
            if self._factorised(step):
                factors.append(dense_factors(tf, step, a, d, b))
            else:
                grads.update(layer_gradients(tf, step, a, d, b, self.conv_method))
        explicit = [grads[id(v)] for v in self.explicit_vars]
        return explicit, factors, tf.reshape(h, (b, -1))

    def _forward(self, x):
        """The forward pass under a tape that watches only each parameterised
        step's Z_l: (tape, [(step, A_l, Z_l)], h_{L-1}, Σ_i f(x_i))."""
        tf = self.tf
        a = x
        records = []
        h = None
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            for k, step in enumerate(self.steps):
                if k == len(self.steps) - 1:
                    h = a
                if step.kind == LayerKind.CALL:
                    a = step.layer(a, training=False)
                    continue
                z = pre_activation(tf, step, a)
                tape.watch(z)
                records.append((step, a, z))
                a = activation(step, z)
            total = tf.reduce_sum(a)
        return tape, records, h, total

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
        self.stats = {"examples": 0, "gradient_seconds": 0.0, "tile_seconds": 0.0,
                      "tile_flops": 0.0}

    def block_gradients(self, x, out=None) -> BlockGradients:
        """The gradients of one block of examples (float32 NHWC). ``out``: a
        (b, P_exp) float32 array (e.g. rows of a panel) to receive the
        explicit gradients (NumPy backend), saving a copy."""
        tf = self.tf
        t0 = time.perf_counter()
        grads, factors, h = self._fn(tf.convert_to_tensor(x, tf.float32))
        conv = self.ops.from_tf
        g = BlockGradients(self.ops.gather_columns([conv(t) for t in grads], out),
                           [(conv(a), conv(d)) for a, d in factors], conv(h))
        self.stats["examples"] += g.n
        self.stats["gradient_seconds"] += time.perf_counter() - t0
        return g

    def tile(self, g1: BlockGradients, g2: BlockGradients, symmetric: bool = False):
        """Gram tile K(block 1, block 2) (backend array, (b1, b2)); with
        ``symmetric`` (g2 is g1) the result is exactly symmetric. The stats
        count the flops the matmuls perform (2 per multiply-add, syrk half)."""
        t0 = time.perf_counter()
        f0 = self.ops.flops
        out = self._tile(g1, g2, symmetric)
        self.stats["tile_seconds"] += time.perf_counter() - t0
        self.stats["tile_flops"] += self.ops.flops - f0
        return out

    def _tile(self, g1: BlockGradients, g2: BlockGradients, symmetric: bool):
        ops = self.ops

        def gram(u, v, scratch=None):
            return ops.syrk(u, scratch) if symmetric else ops.mm_nt(u, v, scratch)

        # the tile itself is a new array; the factors' Grams are scratch
        out = None if g1.explicit is None else gram(g1.explicit, g2.explicit)
        for (a1, d1), (a2, d2) in zip(g1.factors, g2.factors):
            out = ops.add_product(out, gram(a1, a2, "a"), gram(d1, d2, "d"))
        return ops.symmetrize(out) if symmetric else out

    def rowdot(self, g1: BlockGradients, g2: BlockGradients):
        """Per-example K(x_i, x'_i) of two blocks of equal length (NumPy
        float64 (b,), products and sums in float64: these give the cosines)."""
        ops = self.ops
        out = np.zeros(g1.n, np.float64)
        if g1.explicit is not None:
            out += ops.to_numpy(ops.rowdot(g1.explicit, g2.explicit))
        for (a1, d1), (a2, d2) in zip(g1.factors, g2.factors):
            out += ops.to_numpy(ops.rowdot(a1, a2)) * ops.to_numpy(ops.rowdot(d1, d2))
        return out


def per_example_gradients(model, x, *, block_size: int = 64, backend: str | None = None) -> np.ndarray:
    """Explicit per-example gradients ∇θf(x_i), float32 (n, P), columns in the
    order of ``model.trainable_weights`` (each flattened row-major). For small
    n (tests, benchmarks): this is the n×P Jacobian."""
    engine = KernelEngine.for_model(model, factorize_dense=False, backend=backend or "numpy")
    x = as_batch(x)
    out = np.empty((len(x), engine.n_params), np.float32)
    for s, e in blocks(len(x), int(block_size)):
        engine.block_gradients(x[s:e], out=out[s:e])
    return out
