"""Network architectures of the study (paper §2) and their registry.

Every network is a Keras ``Sequential`` model with Keras' default
initializers (Glorot-uniform kernels, zero biases) that ends in a single
``Dense(1)`` layer named ``"logit"``; the input of that layer is
h_{L-1}(x), the embedding of the conjugate projection K_c (paper §2).

A config names an architecture by a spec ``{"type": NAME, **kwargs}``;
``NAME`` is looked up in :data:`ARCHITECTURES`. To add a network::

    from afterkernel.models import register

    @register("my-net")
    def my_net(input_shape, width=64):
        return [keras.layers.Flatten(), keras.layers.Dense(width, activation="relu")]

A builder returns the hidden layers; :func:`build_model` adds the input and
the final ``logit`` layer.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

# Keras is imported inside the builders: the registry itself must stay
# importable at workflow parse time, where config validation reads it.
Builder = Callable[..., list]
ARCHITECTURES: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    """Register ``builder(input_shape, **kwargs) -> list of hidden layers``."""

    def deco(builder: Builder) -> Builder:
        ARCHITECTURES[name] = builder
        return builder

    return deco


@register("vgg")
def vgg(input_shape, widths: Sequence[int] = (26, 52), convs_per_block: int = 2) -> list:
    """VGG-like net (paper §2): per block, ``convs_per_block`` 3×3 ReLU
    convolutions ('same' padding) with ``widths[b]`` channels, then 2×2 max
    pooling with stride 2; Flatten at the end (no hidden dense layer).
    ``widths=(26, 52)`` is the paper's net, ``(119, 238)`` the mega-VGG."""
    from keras import layers

    out = []
    for b, width in enumerate(widths):
        for c in range(convs_per_block):
            out.append(layers.Conv2D(int(width), 3, padding="same", activation="relu",
                                     name=f"conv{b + 1}_{c + 1}"))
        out.append(layers.MaxPooling2D(2, strides=2, padding="same", name=f"pool{b + 1}"))
    out.append(layers.Flatten(name="flatten"))
    return out


@register("fc")
def fc(input_shape, widths: Sequence[int] = (94, 94, 94, 94)) -> list:
    """Fully connected net (paper §2): one ReLU Dense layer per entry of
    ``widths``; the paper's net has four hidden layers of width 94."""
    from keras import layers

    out = [layers.Flatten(name="flatten")]
    out += [layers.Dense(int(w), activation="relu", name=f"dense{i + 1}")
            for i, w in enumerate(widths)]
    return out


@functools.cache
def sum_pixels_layer() -> type:
    """The ``SumPixels`` layer class: the sum of all input values of an
    example, shape (batch, 1). Built on first use to keep Keras lazy."""
    import keras

    @keras.saving.register_keras_serializable(package="afterkernel")
    class SumPixels(keras.layers.Layer):
        def call(self, x):
            return keras.ops.reshape(keras.ops.sum(x, axis=tuple(range(1, len(x.shape)))), (-1, 1))

        def compute_output_shape(self, input_shape):
            return (input_shape[0], 1)

    return SumPixels


@register("sum")
def sum_net(input_shape, width: int = 16) -> list:
    """Sum network (paper §2, for tests): the sum of all pixels, then a
    ReLU Dense layer of ``width``. Invariant to any pixel permutation, so
    its kernels are invariant to shifts and rotations away from the borders."""
    from keras import layers

    return [sum_pixels_layer()(name="sum"), layers.Dense(int(width), activation="relu", name="dense1")]


def build_model(spec: dict, input_shape: Sequence[int], seed: int | None = None):
    """Build the network of ``spec`` (``{"type": ..., **kwargs}``) for inputs
    of ``input_shape`` (H, W, C). With ``seed``, Keras' global generators are
    seeded first, so the initial weights are a function of the seed."""
    import keras

    spec = dict(spec)
    kind = spec.pop("type")
    if kind not in ARCHITECTURES:
        raise KeyError(f"unknown architecture type {kind!r}; registered: {sorted(ARCHITECTURES)}")
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    hidden = ARCHITECTURES[kind](tuple(input_shape), **spec)
    return keras.Sequential([keras.layers.Input(shape=tuple(input_shape)), *hidden,
                             keras.layers.Dense(1, name="logit")], name=kind)


def conjugate_model(model):
    """The map x ↦ h_{L-1}(x): everything but the final ``logit`` layer
    (the embedding of the conjugate projection, paper §2)."""
    import keras

    return keras.Model(model.inputs, model.layers[-1].input, name=f"{model.name}_conjugate")


def count_params(spec: dict, input_shape: Sequence[int]) -> int:
    """Number of trainable parameters of ``spec`` on inputs of ``input_shape``."""
    return int(build_model(spec, input_shape).count_params())
