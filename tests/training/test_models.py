"""Architectures of paper §2: parameter counts, logit layer, conjugate
features, registry extension."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from afterkernel import models  # noqa: E402
from afterkernel.models import ARCHITECTURES, build_model, conjugate_model, count_params, register  # noqa: E402

MNIST = (28, 28, 1)
CIFAR = (32, 32, 3)


@pytest.mark.parametrize("spec, shape, expected", [
    ({"type": "vgg"}, MNIST, 45_527),
    ({"type": "vgg"}, CIFAR, 46_775),
    ({"type": "vgg", "widths": [26, 52]}, MNIST, 45_527),
    ({"type": "vgg", "widths": [119, 238]}, MNIST, 905_591),
    ({"type": "vgg", "widths": [119, 238]}, CIFAR, 911_303),
    ({"type": "fc"}, MNIST, 100_675),
    ({"type": "fc", "widths": [94, 94, 94, 94]}, MNIST, 100_675),
    # sum -> Dense(16) (16 + 16) -> Dense(1) (16 + 1)
    ({"type": "sum"}, MNIST, 49),
    ({"type": "sum", "width": 16}, CIFAR, 49),
])
def test_parameter_counts(spec, shape, expected):
    assert count_params(spec, shape) == expected


@pytest.mark.parametrize("spec, shape, dim", [
    ({"type": "vgg"}, MNIST, 7 * 7 * 52),  # 2548: flattened second max-pool
    ({"type": "vgg"}, CIFAR, 8 * 8 * 52),
    ({"type": "fc"}, MNIST, 94),  # the 4th ReLU layer
    ({"type": "sum"}, MNIST, 16),
])
def test_conjugate_model_dims_and_logit_layer(spec, shape, dim):
    model = build_model(spec, shape, seed=0)
    assert model.layers[-1].name == "logit"
    assert model.output_shape == (None, 1)
    conj = conjugate_model(model)
    assert conj.output_shape == (None, dim)
    x = np.random.default_rng(0).random((3, *shape), dtype=np.float32)
    h = np.asarray(conj([x]))  # the conjugate model takes a list of inputs
    assert h.shape == (3, dim)
    # logit = h_{L-1} . w + b: the conjugate features are the last layer's input.
    w, b = model.layers[-1].get_weights()
    np.testing.assert_allclose(h @ w + b, np.asarray(model(x)), rtol=1e-5, atol=1e-5)


def test_vgg_default_is_papers_net():
    assert conjugate_model(build_model({"type": "vgg"}, MNIST)).output_shape == (None, 2548)


def test_seed_fixes_initialization():
    a = build_model({"type": "fc", "widths": [8, 8]}, MNIST, seed=3).get_weights()
    b = build_model({"type": "fc", "widths": [8, 8]}, MNIST, seed=3).get_weights()
    c = build_model({"type": "fc", "widths": [8, 8]}, MNIST, seed=4).get_weights()
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))
    # Keras defaults: zero biases.
    assert not np.any(a[1]) and not np.any(a[-1])


def test_unknown_architecture():
    with pytest.raises(KeyError, match="unknown architecture"):
        build_model({"type": "no-such-net"}, MNIST)


def test_register_user_network():
    name = "test-user-net"
    try:
        @register(name)
        def user_net(input_shape, width=5):
            return [keras.layers.Flatten(), keras.layers.Dense(width, activation="tanh")]

        assert ARCHITECTURES[name] is user_net
        model = build_model({"type": name, "width": 7}, (4, 4, 1), seed=0)
        assert model.layers[-1].name == "logit"
        assert model.count_params() == 16 * 7 + 7 + 7 + 1
        assert conjugate_model(model).output_shape == (None, 7)
    finally:
        models.ARCHITECTURES.pop(name, None)
