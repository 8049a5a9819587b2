"""Per-example gradients of one layer's weights from its input A_l and the
backward signal D_l = ∂f(x_i)/∂Z_l, one function per
:class:`~afterkernel.kernels.layers.LayerKind` (paper §2: ∇θf(x_i) is the
after-kernel embedding of x_i).

Every function takes TensorFlow tensors of a block of b examples and returns
``{id(variable): (b, size)}`` for the step's trainable variables, each
flattened row-major in the variable's own layout (the order of
``model.trainable_weights`` is restored by the engine).
"""

from __future__ import annotations

import enum
import logging

import numpy as np

from afterkernel.kernels.layers import LayerKind, LayerStep

log = logging.getLogger(__name__)


class ConvMethod(enum.StrEnum):
    """How per-example Conv2D kernel gradients patches(a_i)ᵀ δ_i are formed;
    neither materialises the patches.

    - ``GROUPED`` (the default where it runs): ONE grouped
      ``Conv2DBackpropFilter`` with the batch moved into the channels (group i
      = example i, the layer's own strides, dilation and padding). Fastest,
      but TensorFlow's CPU kernels reject grouped filter gradients.
    - ``SHIFTED`` (portable): for each kernel offset (u, v), the input window
      that offset sees times δ, one batched matmul window(a_i)ᵀ δ_i per offset,
      summed into place.

    :func:`conv_method` probes once per process which one to use.
    """

    GROUPED = "grouped"
    SHIFTED = "shifted"


def _window_geometry(layer) -> tuple[int, ...]:
    """(kh, kw, strides h, w, dilation h, w) of a Conv2D layer."""
    kh, kw = (int(k) for k in layer.kernel_size)
    sh, sw = (int(k) for k in layer.strides)
    dh, dw = (int(k) for k in layer.dilation_rate)
    return kh, kw, sh, sw, dh, dw


def _grouped_conv_grads(tf, layer, a, d, b):
    kh, kw, sh, sw, dh, dw = _window_geometry(layer)
    h, w, c_in = int(a.shape[1]), int(a.shape[2]), int(a.shape[-1])
    ho, wo, c_out = int(d.shape[1]), int(d.shape[2]), int(d.shape[-1])
    # example i is group i: input channels i·c_in.., output channels i·c_out..
    ag = tf.reshape(tf.transpose(a, (1, 2, 0, 3)), (1, h, w, b * c_in))
    dg = tf.reshape(tf.transpose(d, (1, 2, 0, 3)), (1, ho, wo, b * c_out))
    g = tf.raw_ops.Conv2DBackpropFilter(
        input=ag, filter_sizes=tf.stack([kh, kw, c_in, b * c_out]), out_backprop=dg,
        strides=[1, sh, sw, 1], dilations=[1, dh, dw, 1], padding=str(layer.padding).upper())
    g = tf.transpose(tf.reshape(g, (kh, kw, c_in, b, c_out)), (3, 0, 1, 2, 4))
    return tf.reshape(g, (b, -1))


def _shifted_conv_grads(tf, layer, a, d, b):
    kh, kw, sh, sw, dh, dw = _window_geometry(layer)
    h, w, c_in = int(a.shape[1]), int(a.shape[2]), int(a.shape[-1])
    ho, wo, c_out = int(d.shape[1]), int(d.shape[2]), int(d.shape[-1])
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


def conv_weight_grads(tf, layer, a, d, b, method: ConvMethod):
    """Per-example Conv2D kernel gradients (b, kh·kw·c_in·c_out), row-major in
    the kernel's (kh, kw, c_in, c_out) layout; ``a`` (b, h, w, c_in), ``d``
    (b, ho, wo, c_out)."""
    if method == ConvMethod.GROUPED:
        return _grouped_conv_grads(tf, layer, a, d, b)
    return _shifted_conv_grads(tf, layer, a, d, b)


def _pick_conv_method(tf) -> ConvMethod:
    """GROUPED if the grouped filter gradient runs here and agrees with
    SHIFTED on a small strided, dilated case, else SHIFTED."""
    import keras

    try:
        rng = np.random.default_rng(0)
        out = {}
        for kw_ in ({"strides": 2, "padding": "same"}, {"dilation_rate": 2, "padding": "valid"}):
            layer = keras.layers.Conv2D(3, (3, 2), **kw_)
            a = tf.constant(rng.random((2, 9, 8, 2)), tf.float32)
            z = layer(a)
            d = tf.constant(rng.random(tuple(z.shape)), tf.float32)
            res = [np.asarray(conv_weight_grads(tf, layer, a, d, 2, m)) for m in ConvMethod]
            out[str(kw_)] = float(np.abs(res[0] - res[1]).max() / np.abs(res[1]).max())
        if max(out.values()) < 1e-5:
            return ConvMethod.GROUPED
        log.warning("grouped Conv2DBackpropFilter disagrees here (%s): using shifted", out)
    except Exception as e:  # noqa: BLE001 - any backend failure: use the portable path
        log.info("grouped Conv2DBackpropFilter unavailable (%s: %s): using shifted",
                 type(e).__name__, e)
    return ConvMethod.SHIFTED


_CONV_METHOD: list[ConvMethod] = []


def conv_method() -> ConvMethod:
    """The per-example conv gradient method of this process (probed once)."""
    if not _CONV_METHOD:
        import tensorflow as tf

        _CONV_METHOD.append(_pick_conv_method(tf))
    return _CONV_METHOD[0]


def conv_working_floats(step: LayerStep, method: ConvMethod) -> int:
    """Floats per example a CONV step's gradient needs beyond its result."""
    kh, kw = step.layer.kernel_size
    weights = kh * kw * step.in_shape[-1] * step.out_shape[-1]
    if method == ConvMethod.SHIFTED:  # padded input, one window at a time
        return 2 * int(np.prod(step.in_shape)) + weights
    # transposed input / delta, grouped output and its transpose
    return int(np.prod(step.in_shape)) + int(np.prod(step.out_shape)) + 2 * weights


def _kernel_and_bias(step: LayerStep, kernel, bias) -> dict:
    """``kernel()`` / ``bias()`` for the step's trainable kernel / bias only."""
    out = {}
    if step.kernel_var is not None:
        out[id(step.kernel_var)] = kernel()
    if step.bias_var is not None:
        out[id(step.bias_var)] = bias()
    return out


def dense_factors(tf, step: LayerStep, a, d, b):
    """The factors (Ã (b, d_in [+ 1]), D (b, d_out)) of a factorised DENSE
    step: its Gram term is (Ã Ãᵀ) ⊙ (D Dᵀ), the ones column being the bias."""
    if step.bias_var is not None:
        a = tf.concat([a, tf.ones((b, 1), a.dtype)], axis=1)
    return a, d


def dense_gradients(tf, step: LayerStep, a, d, b) -> dict:
    """Explicit a_i δ_iᵀ and δ_i of a DENSE step (b, d_in), (b, d_out)."""
    return _kernel_and_bias(step, lambda: tf.reshape(a[:, :, None] * d[:, None, :], (b, -1)),
                            lambda: d)


def dense_nd_gradients(tf, step: LayerStep, a, d, b) -> dict:
    """A DENSE_ND step: a_iᵀ δ_i and δ_i summed over the positions."""
    a2 = tf.reshape(a, (b, -1, int(a.shape[-1])))
    d2 = tf.reshape(d, (b, -1, int(d.shape[-1])))
    return _kernel_and_bias(step, lambda: tf.reshape(tf.einsum("bsi,bso->bio", a2, d2), (b, -1)),
                            lambda: tf.reduce_sum(d2, axis=1))


def conv_gradients(tf, step: LayerStep, a, d, b, method: ConvMethod) -> dict:
    """A CONV step: :func:`conv_weight_grads`, and δ_i summed over positions."""
    c_out = int(d.shape[-1])
    return _kernel_and_bias(step, lambda: conv_weight_grads(tf, step.layer, a, d, b, method),
                            lambda: tf.reduce_sum(tf.reshape(d, (b, -1, c_out)), axis=1))


def generic_gradients(tf, step: LayerStep, a, d, b) -> dict:
    """A GENERIC step: the Jacobian (pfor) of s_i = Σ layer(a_i)·D_i with
    respect to the layer's trainable weights."""
    d = tf.stop_gradient(d)
    a = tf.stop_gradient(a)
    with tf.GradientTape() as tape:
        out = step.layer(a, training=False)
        s = tf.reduce_sum(tf.reshape(out * d, (b, -1)), axis=1)
    jac = tape.jacobian(s, list(step.variables), unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return {id(v): tf.reshape(j, (b, -1)) for v, j in zip(step.variables, jac)}


def layer_gradients(tf, step: LayerStep, a, d, b, method: ConvMethod) -> dict:
    """The explicit per-example gradients of one (not factorised) step."""
    if step.kind == LayerKind.CONV:
        return conv_gradients(tf, step, a, d, b, method)
    if step.kind == LayerKind.DENSE_ND:
        return dense_nd_gradients(tf, step, a, d, b)
    if step.kind == LayerKind.DENSE:
        return dense_gradients(tf, step, a, d, b)
    return generic_gradients(tf, step, a, d, b)
