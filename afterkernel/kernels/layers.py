"""The layer plan: how the engine handles each layer of a ``keras.Sequential``
chain (paper §2: the after kernel is over all trainable weights, biases
included).

Every layer gets a :class:`LayerKind`; the fast kinds are split as
z = op(a) + b, out = activation(z), so that the engine can record the
pre-activation Z_l and its input A_l. A layer the plan does not recognise
exactly gets :attr:`LayerKind.GENERIC`, which is slower but always right.
"""

from __future__ import annotations

import dataclasses
import enum


class LayerKind(enum.StrEnum):
    """How one layer's per-example gradients are formed.

    - ``CALL``: no trainable weights (pooling, Flatten, Activation, Dropout,
      ``SumPixels``, ...): called as it is, in inference mode.
    - ``DENSE``: an exact ``keras.layers.Dense`` on 2-D inputs. With more than
      one unit it is kept as its factors (Ã_l, D_l) (the Gram term is
      (Ã Ãᵀ) ⊙ (D Dᵀ)); a one-unit layer (the logit) gets explicit a_i δ_i.
    - ``DENSE_ND``: Dense on N-D inputs (it acts on the last axis): like a
      1×1 convolution, a_iᵀ δ_i summed over positions.
    - ``CONV``: an exact ``keras.layers.Conv2D``, channels_last, groups=1,
      'same' or 'valid' padding, any strides and dilation
      (:class:`~afterkernel.kernels.layer_gradients.ConvMethod`).
    - ``GENERIC``: any other layer with trainable weights (BatchNormalization,
      DepthwiseConv2D, a subclass, a layer with LoRA or quantisation, ...):
      the Jacobian (pfor) of s_i = Σ layer(a_i)·D_i w.r.t. its weights.
    """

    CALL = "call"
    CONV = "conv"
    DENSE = "dense"
    DENSE_ND = "dense_nd"
    GENERIC = "generic"


@dataclasses.dataclass
class LayerStep:
    """One layer of the plan; shapes are per example (no batch axis)."""

    kind: LayerKind
    layer: object
    kernel_var: object = None  # the trainable kernel variable (None: frozen)
    bias_var: object = None    # the trainable bias variable (None: frozen or no bias)
    variables: tuple = ()      # trainable variables of a GENERIC layer
    in_shape: tuple = ()
    out_shape: tuple = ()

    def trainable_variables(self) -> list:
        """The variables this step gives explicit gradients for (when not factorised)."""
        if self.kind == LayerKind.GENERIC:
            return list(self.variables)
        return [v for v in (self.kernel_var, self.bias_var) if v is not None]


def _splittable_kind(layer) -> LayerKind | None:
    """CONV / DENSE if ``layer`` is exactly a Conv2D / Dense that can be split
    as z = op(a) + b, out = activation(z); None otherwise."""
    import keras

    # With LoRA or quantisation Keras computes the kernel from other weights.
    if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
        return None
    if type(layer) is keras.layers.Conv2D:
        if layer.data_format == "channels_last" and int(layer.groups) == 1 \
                and str(layer.padding).lower() in ("same", "valid"):
            return LayerKind.CONV
        return None
    if type(layer) is keras.layers.Dense:
        return LayerKind.DENSE
    return None


def _layer_step(layer) -> LayerStep:
    ids = {id(v) for v in layer.trainable_weights}
    if not ids:
        return LayerStep(LayerKind.CALL, layer)
    kind = _splittable_kind(layer)
    if kind is not None:
        # Without LoRA / quantisation the public ``kernel`` property is the
        # kernel variable itself; the identity test against the trainable
        # weights keeps frozen weights out and sends anything else (a kernel
        # computed from other weights) to the generic path.
        kernel = layer.kernel if id(layer.kernel) in ids else None
        bias = layer.bias if (layer.bias is not None and id(layer.bias) in ids) else None
        if {id(v) for v in (kernel, bias) if v is not None} == ids:
            return LayerStep(kind, layer, kernel_var=kernel, bias_var=bias)
    return LayerStep(LayerKind.GENERIC, layer, variables=tuple(layer.trainable_weights))


def layer_plan(model) -> list[LayerStep] | None:
    """The steps of a ``keras.Sequential`` chain with their per-example
    shapes (one eager pass on zeros), or None for any other model (the
    engine then differentiates the whole model)."""
    import keras
    import tensorflow as tf

    if not isinstance(model, keras.Sequential):
        return None
    steps = [_layer_step(layer) for layer in model.layers]
    a = tf.zeros((1, *(int(d) for d in model.input_shape[1:])), tf.float32)
    for step in steps:
        out = step.layer(a, training=False)
        step.in_shape = tuple(int(d) for d in a.shape[1:])
        step.out_shape = tuple(int(d) for d in out.shape[1:])
        if step.kind == LayerKind.DENSE and len(step.in_shape) != 1:
            step.kind = LayerKind.DENSE_ND
        a = out
    return steps


def pre_activation(tf, step: LayerStep, a):
    """Z_l of a parameterised step on a batch: op(a) + b for CONV / DENSE /
    DENSE_ND, the layer's output for GENERIC."""
    layer = step.layer
    if step.kind == LayerKind.CONV:
        z = layer.convolution_op(a, layer.kernel)
        if layer.use_bias:
            z = z + tf.reshape(layer.bias, (1, 1, 1, -1))
        return z
    if step.kind in (LayerKind.DENSE, LayerKind.DENSE_ND):
        z = tf.matmul(a, layer.kernel) if len(a.shape) == 2 else \
            tf.tensordot(a, layer.kernel, axes=[[len(a.shape) - 1], [0]])
        return z + layer.bias if layer.bias is not None else z
    return layer(a, training=False)


def activation(step: LayerStep, z):
    """The step's output from its Z_l (a GENERIC layer's output is Z_l)."""
    if step.kind != LayerKind.GENERIC and step.layer.activation is not None:
        return step.layer.activation(z)
    return z
