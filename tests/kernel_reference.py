"""Brute-force references for the kernel tests: small networks of every
kind the engine handles, and their per-example gradients and conjugate
features in float64 (one ``GradientTape`` per example on a float64 copy of
the network)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from afterkernel import models  # noqa: E402

RTOL = 1e-5


# ----------------------------------------------------------------------------
# user-added architectures (registered for the tests only)
# ----------------------------------------------------------------------------

def valid_conv(input_shape):
    L = keras.layers
    return [L.Conv2D(3, 3, padding="valid", activation="relu"),
            L.Conv2D(4, (2, 3), strides=2, padding="same", activation="relu"),
            L.Conv2D(3, 2, dilation_rate=2, padding="valid", activation="elu"),
            L.MaxPooling2D(2, padding="valid"), L.Flatten()]


def avgpool_activation(input_shape):
    L = keras.layers
    return [L.Conv2D(3, 3, padding="same", use_bias=False), L.Activation("tanh"),
            L.AveragePooling2D(2), L.Dense(4),  # Dense on a 4-D input (acts on channels)
            L.ReLU(), L.Flatten(), L.Dense(5, activation="sigmoid")]


def unknown_layers(input_shape):
    L = keras.layers
    return [L.Conv2D(3, 3, padding="same"), L.BatchNormalization(), L.ReLU(),
            L.DepthwiseConv2D(3, padding="valid", activation="relu"),
            L.GlobalAveragePooling2D(), L.Dense(4, activation="relu")]


USER_ARCHS = {"test-valid-conv": valid_conv, "test-avgpool-activation": avgpool_activation,
              "test-unknown-layers": unknown_layers}

ARCHS = {
    "vgg": ({"type": "vgg", "widths": [3, 4]}, (10, 10, 2)),
    "valid-conv": ({"type": "test-valid-conv"}, (12, 11, 1)),
    "fc": ({"type": "fc", "widths": [7, 6, 5]}, (6, 6, 1)),
    "sum": ({"type": "sum", "width": 5}, (8, 8, 1)),
    "avgpool-activation": ({"type": "test-avgpool-activation"}, (8, 8, 2)),
    "unknown-layers": ({"type": "test-unknown-layers"}, (7, 7, 2)),
}


def perturb_weights(model, seed=0):
    """Random non-trivial weights (biases and batch-norm statistics too)."""
    rng = np.random.default_rng(seed)
    new = []
    for v in model.weights:
        w = np.asarray(v)
        if "variance" in v.path:
            w = 0.5 + rng.random(w.shape)
        else:
            w = w + 0.3 * rng.normal(size=w.shape)
        new.append(w.astype(np.float32))
    for v, w in zip(model.weights, new):
        v.assign(w)
    return model


def make(name, seed=0):
    spec, shape = ARCHS[name]
    return perturb_weights(models.build_model(spec, shape, seed=seed), seed), shape


def float64_copy(model):
    layers = []
    for layer in model.layers:
        cfg = layer.get_config()
        cfg["dtype"] = "float64"
        layers.append(type(layer).from_config(cfg))
    m64 = keras.Sequential([keras.Input(model.input_shape[1:], dtype="float64"), *layers])
    m64.set_weights([np.asarray(w, np.float64) for w in model.get_weights()])
    return m64


def reference_jacobian(model, x):
    """Explicit per-example gradients in float64, one tape per example."""
    m64 = float64_copy(model)
    rows = []
    for i in range(len(x)):
        xi = tf.constant(x[i:i + 1], tf.float64)
        with tf.GradientTape() as tape:
            f = tf.reduce_sum(m64(xi, training=False))
        grads = tape.gradient(f, m64.trainable_weights)
        rows.append(np.concatenate([np.asarray(g, np.float64).ravel() for g in grads]))
    return np.stack(rows)


def reference_conjugate(model, x):
    m64 = float64_copy(model)
    h = models.conjugate_model(m64)(tf.constant(x, tf.float64), training=False)
    return np.asarray(h, np.float64).reshape(len(x), -1)


def rel_err(a, ref):
    return float(np.max(np.abs(np.asarray(a, np.float64) - ref)) / np.max(np.abs(ref)))


def images(n, shape, seed):
    return np.random.default_rng(seed).random((n, *shape)).astype(np.float32)
