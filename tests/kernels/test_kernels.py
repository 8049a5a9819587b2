"""The kernel engine against brute force (afterkernel.kernels).

Every quantity is compared with a float64 reference built from explicit
per-example gradients (:mod:`kernel_reference`), on small instances of every
kind of architecture.
"""

from __future__ import annotations

import logging
import types

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
from kernel_reference import (ARCHS, RTOL, USER_ARCHS, images, make, perturb_weights,  # noqa: E402
                              reference_conjugate, reference_jacobian, rel_err)

from afterkernel.kernels import invariances as inv  # noqa: E402
from afterkernel.kernels import metrics as km  # noqa: E402
from afterkernel import kernels as K  # noqa: E402
from afterkernel import models  # noqa: E402
from afterkernel.transforms import PERTURBATIONS  # noqa: E402
from afterkernel.vocabulary import AFTER, CONJUGATE, KERNELS  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def user_architectures():
    for name, builder in USER_ARCHS.items():
        models.register(name)(builder)
    yield
    for name in USER_ARCHS:
        models.ARCHITECTURES.pop(name, None)


@pytest.fixture(scope="module", params=list(ARCHS))
def case(request):
    model, shape = make(request.param)
    x = images(11, shape, 1)
    xt = images(5, shape, 2)
    J = reference_jacobian(model, x)
    Jt = reference_jacobian(model, xt)
    return types.SimpleNamespace(name=request.param, model=model, x=x, xt=xt, J=J, Jt=Jt)


# ----------------------------------------------------------------------------
# the engine against brute force, every architecture
# ----------------------------------------------------------------------------

def test_per_example_gradients(case):
    G = K.per_example_gradients(case.model, case.x, block_size=4)
    n_trainable = sum(int(np.prod(v.shape)) for v in case.model.trainable_weights)
    assert G.shape == case.J.shape == (len(case.x), n_trainable)
    assert rel_err(G, case.J) <= RTOL


@pytest.mark.parametrize("block_size,budget,panel_rows,strip", [
    (256, 1024, None, 1024), (3, 0.004, None, 1024), (2, 1024, 6, 4), (3, 1024, None, 5)])
def test_train_gram(case, block_size, budget, panel_rows, strip):
    # one panel; a tiny budget (1-3 example blocks, 1-row panels); panels of
    # three blocks with two column strips each, streamed blocks past them
    Kg, _ = K.gram_with_conjugate(K.KernelEngine(case.model), case.x, block_size=block_size,
                                  jacobian_budget_mb=budget, panel_rows=panel_rows,
                                  strip_columns=strip)
    assert Kg.dtype == np.float32
    assert rel_err(Kg, case.J @ case.J.T) <= RTOL
    np.testing.assert_array_equal(Kg, Kg.T)
    if panel_rows is None and block_size == 256 and strip == 1024:
        np.testing.assert_array_equal(K.after_kernel_gram(case.model, case.x), Kg)


def test_test_train_gram(case):
    Kc = K.after_kernel_gram(case.model, case.xt, case.x, block_size=2, jacobian_budget_mb=0.004)
    assert Kc.shape == (len(case.xt), len(case.x))
    assert rel_err(Kc, case.Jt @ case.J.T) <= RTOL


def test_test_gram_on_tensorflow_backend(case):
    Kg = K.after_kernel_gram(case.model, case.xt, block_size=2, jacobian_budget_mb=0.004,
                             backend="tensorflow")
    assert rel_err(Kg, case.Jt @ case.Jt.T) <= RTOL


def test_cross_diagonals_and_cosines(case):
    transforms = {name: PERTURBATIONS[name] for name in ("shift_right", "rotate_pos", "swap")}
    res = K.cross_diagonals(case.model, case.x, transforms, block_size=4)
    assert set(res) == set(KERNELS) and all(set(res[k]) == set(transforms) for k in KERNELS)
    ref_self = np.einsum("ij,ij->i", case.J, case.J)
    assert rel_err(res[AFTER]["shift_right"].original, ref_self) <= RTOL
    H = reference_conjugate(case.model, case.x)
    for name, fn in transforms.items():
        after, conj = res[AFTER][name], res[CONJUGATE][name]
        xp = np.asarray(fn(case.x))
        Jp = reference_jacobian(case.model, xp)
        cross = np.einsum("ij,ij->i", case.J, Jp)
        tt = np.einsum("ij,ij->i", Jp, Jp)
        scale = max(np.abs(ref_self).max(), np.abs(tt).max())
        assert np.max(np.abs(after.cross - cross)) / scale <= RTOL
        assert rel_err(after.perturbed, tt) <= RTOL
        cos = inv.cosines(after.cross, after.original, after.perturbed)
        np.testing.assert_allclose(cos, inv.cosines(cross, ref_self, tt), atol=RTOL)
        Hp = reference_conjugate(case.model, xp)
        ccos = inv.cosines(conj.cross, conj.original, conj.perturbed)
        ref_ccos = inv.cosines(np.einsum("ij,ij->i", H, Hp), np.einsum("ij,ij->i", H, H),
                               np.einsum("ij,ij->i", Hp, Hp))
        np.testing.assert_allclose(ccos, ref_ccos, atol=RTOL)


def test_cross_diagonals_of_precomputed_pairs(case):
    xp = images(len(case.x), case.x.shape[1:], 7)
    Jp = reference_jacobian(case.model, xp)
    d = K.cross_diagonals(case.model, case.x, {"t": xp}, block_size=4)[AFTER]["t"]
    k_x_xt, k_x_x, k_xt_xt = d.cross, d.original, d.perturbed
    scale = np.abs(np.einsum("ij,ij->i", case.J, case.J)).max()
    assert np.max(np.abs(k_x_xt - np.einsum("ij,ij->i", case.J, Jp))) / scale <= RTOL
    assert rel_err(k_x_x, np.einsum("ij,ij->i", case.J, case.J)) <= RTOL
    assert rel_err(k_xt_xt, np.einsum("ij,ij->i", Jp, Jp)) <= RTOL
    with pytest.raises(ValueError):
        K.cross_diagonals(case.model, case.x, {"t": xp[:-1]})


def test_conjugate_features_gram_and_scaling(case):
    H = reference_conjugate(case.model, case.x)
    h = K.conjugate_features(case.model, case.x, block_size=4)
    assert h.shape == H.shape
    assert rel_err(h, H) <= RTOL
    assert rel_err(K.conjugate_gram(h), H @ H.T) <= RTOL
    assert rel_err(K.conjugate_gram(h, strip_columns=3), H @ H.T) <= RTOL
    # the engine's features come out of the same pass as the Gram
    Kg, h2 = K.gram_with_conjugate(K.KernelEngine(case.model), case.x, block_size=4)
    assert rel_err(h2, H) <= RTOL
    # scaling: the mean L2 norm of the embeddings becomes 1
    scale = K.feature_scale(np.diagonal(Kg))
    ref_scale = np.mean(np.linalg.norm(case.J, axis=1))
    assert scale == pytest.approx(ref_scale, rel=RTOL)
    assert np.mean(np.sqrt(np.diagonal(Kg) / scale**2)) == pytest.approx(1.0, rel=RTOL)
    assert K.feature_scale(K.after_kernel_diag(case.model, case.x)) == pytest.approx(ref_scale, rel=RTOL)


# ----------------------------------------------------------------------------
# plan, fallbacks, invariances of the sum network
# ----------------------------------------------------------------------------

def test_plan_uses_fast_paths_and_logs_generic_layers(caplog):
    fc, _ = make("fc")
    eng = K.KernelEngine(fc)
    assert eng.p_explicit == 5 + 1 and len(eng.factor_dims) == 3  # FC: factors; logit explicit
    vgg, _ = make("vgg")
    kinds = [s.kind for s in K.KernelEngine(vgg).steps]
    assert kinds.count("conv") == 4 and "generic" not in kinds
    model, _ = make("unknown-layers")
    with caplog.at_level(logging.WARNING, logger="afterkernel.kernels"):
        eng = K.KernelEngine(model)
    kinds = {type(s.layer).__name__: s.kind for s in eng.steps}
    assert kinds["BatchNormalization"] == "generic" and kinds["DepthwiseConv2D"] == "generic"
    assert kinds["Conv2D"] == "conv"
    assert sum("generic" in r.getMessage() for r in caplog.records) == 2


def _tape_jacobian(model, x):
    J = []
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            f = tf.reduce_sum(model(x[i:i + 1]))
        J.append(np.concatenate([np.asarray(g).ravel() for g in
                                 tape.gradient(f, model.trainable_weights)]))
    return np.asarray(J, np.float64)


def _dense_chain(*layers):
    model = keras.Sequential([keras.Input((5,)), *layers, keras.layers.Dense(1, name="logit")])
    return model, np.random.default_rng(9).random((6, 5)).astype(np.float32)


def test_non_sequential_model_falls_back_to_whole_model_jacobian(caplog):
    inp = keras.Input((6, 6, 1))
    a = keras.layers.Conv2D(2, 3, activation="relu")(inp)
    b = keras.layers.Conv2D(2, 3, activation="tanh")(inp)
    h = keras.layers.Concatenate()([keras.layers.Flatten()(a), keras.layers.Flatten()(b)])
    out = keras.layers.Dense(1, name="logit")(h)
    model = perturb_weights(keras.Model(inp, out), 3)
    x = images(6, (6, 6, 1), 4)
    with caplog.at_level(logging.WARNING, logger="afterkernel.kernels"):
        Kg = K.after_kernel_gram(model, x, block_size=4)
    assert any("generic" in r.getMessage() for r in caplog.records)
    J = _tape_jacobian(model, x)
    assert rel_err(Kg, J @ J.T) <= 1e-5


def test_frozen_kernel_and_lora_layer_follow_the_trainable_weights():
    model, x = _dense_chain(keras.layers.Dense(3, activation="relu"))
    lora, logit = model.layers
    logit.kernel.trainable = False  # only its bias is trained
    lora.enable_lora(2)  # Keras computes its kernel from the LoRA weights
    perturb_weights(model, 4)
    steps = K.KernelEngine(model).steps
    assert steps[0].kind == K.LayerKind.GENERIC
    assert steps[1].kind == K.LayerKind.DENSE and steps[1].kernel_var is None
    assert steps[1].bias_var is logit.bias
    J = _tape_jacobian(model, x)
    assert rel_err(K.per_example_gradients(model, x), J) <= RTOL
    assert rel_err(K.after_kernel_gram(model, x, block_size=4), J @ J.T) <= RTOL


def test_frozen_kernel_of_a_factorised_dense_layer():
    """Only the bias of a Dense layer with a frozen kernel counts (not factorised)."""
    model, x = _dense_chain(keras.layers.Dense(4, activation="tanh"))
    model.layers[0].kernel.trainable = False
    J = _tape_jacobian(model, x)
    assert rel_err(K.after_kernel_gram(model, x), J @ J.T) <= RTOL


def test_block_and_panel_sizes_respect_the_budget():
    model, _ = make("vgg")
    eng = K.KernelEngine(model)
    b = eng.block_size_for(256, 0.05)
    assert 1 <= b < 256
    p = eng.panel_rows_for(b, 0.05)
    assert p % b == 0
    assert (p - b) * 4 * eng.gradient_floats <= 0.05 * 2**20
    assert eng.block_size_for(256, 1024) == 256
    # automatic: as many as a quarter of the budget holds, up to AUTO_BLOCK_MAX
    assert eng.block_size_for(None, 0.05) == b
    assert eng.block_size_for(None, 1024) == K.AUTO_BLOCK_MAX


def test_sum_network_is_translation_and_swap_invariant():
    model = models.build_model({"type": "sum", "width": 16}, (28, 28, 1), seed=0)
    perturb_weights(model, 5)
    rng = np.random.default_rng(6)
    x = np.zeros((6, 28, 28, 1), np.float32)
    x[:, 8:20, 8:20, :] = rng.random((6, 12, 12, 1))  # content away from the borders
    cos, summary = inv.all_invariances(model, x, block_size=4)
    for kernel in KERNELS:
        assert summary[kernel]["translation"] == pytest.approx(1.0, abs=1e-6)
        assert summary[kernel]["swap"] == pytest.approx(1.0, abs=1e-6)
        assert summary[kernel]["rotation"] > 0.99  # nearest sampling: sum nearly kept
        assert set(cos[kernel]) == set(PERTURBATIONS)
    # a VGG-like net is not invariant to swaps
    vgg = models.build_model({"type": "vgg", "widths": [3, 4]}, (28, 28, 1), seed=0)
    _, s2 = inv.all_invariances(vgg, x, block_size=4)
    assert s2[AFTER]["swap"] < 0.999


def test_sample_metrics_from_test_set_only():
    model, shape = make("vgg")
    x = images(9, shape, 8)
    y = np.array([0, 1] * 4 + [1], np.uint8)
    out = km.sample_metrics(model, x, y, block_size=4, jacobian_budget_mb=0.01)
    J = reference_jacobian(model, x)
    H = reference_conjugate(model, x)
    assert out["gram_metrics"]["alignment"] == pytest.approx(
        km.kernel_alignment(J @ J.T, H @ H.T), abs=1e-6)
    assert out["gram_metrics"][AFTER]["target_alignment"] == pytest.approx(
        km.target_alignment(J @ J.T, y), abs=1e-6)
    assert set(out["invariances"][AFTER]) == {"translation", "rotation", "zoom", "swap"}


@pytest.mark.parametrize("name", ["vgg", "valid-conv"])
def test_both_conv_gradient_methods_match_bruteforce(name):
    model, shape = make(name)
    x = images(5, shape, 31)
    J = reference_jacobian(model, x)
    # the grouped filter gradient is probed per process (TensorFlow's CPU
    # kernels reject grouped Conv2DBackpropFilter; GPU ones accept it)
    methods = [K.ConvMethod.SHIFTED] + \
        ([K.ConvMethod.GROUPED] if K.conv_method() == K.ConvMethod.GROUPED else [])
    for method in methods:
        eng = K.KernelEngine(model, factorize_dense=False, backend="numpy")
        eng.conv_method = method  # before the first call traces the function
        G = eng.block_gradients(x).explicit
        assert rel_err(G, J) <= RTOL, method
