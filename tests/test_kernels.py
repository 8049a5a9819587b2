"""The kernel engine against brute force (afterkernel.kernels).

Every quantity is compared with a float64 reference built from explicit
per-example gradients (one ``GradientTape`` per example on a float64 copy of
the network), on small instances of every kind of architecture.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from afterkernel import invariances as inv  # noqa: E402
from afterkernel import kernels as K  # noqa: E402
from afterkernel import models  # noqa: E402
from afterkernel.transforms import PERTURBATIONS  # noqa: E402

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


@pytest.fixture(scope="module", autouse=True)
def user_architectures():
    for name, builder in USER_ARCHS.items():
        models.register(name)(builder)
    yield
    for name in USER_ARCHS:
        models.ARCHITECTURES.pop(name, None)


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
    ref_self = np.einsum("ij,ij->i", case.J, case.J)
    assert rel_err(res["after"]["self"], ref_self) <= RTOL
    H = reference_conjugate(case.model, case.x)
    for name, fn in transforms.items():
        xp = np.asarray(fn(case.x))
        Jp = reference_jacobian(case.model, xp)
        cross = np.einsum("ij,ij->i", case.J, Jp)
        tt = np.einsum("ij,ij->i", Jp, Jp)
        scale = max(np.abs(ref_self).max(), np.abs(tt).max())
        assert np.max(np.abs(res["after"][name] - cross)) / scale <= RTOL
        assert rel_err(res["after"][name + "_self"], tt) <= RTOL
        cos = inv.cosines(res["after"][name], res["after"]["self"], res["after"][name + "_self"])
        np.testing.assert_allclose(cos, inv.cosines(cross, ref_self, tt), atol=RTOL)
        Hp = reference_conjugate(case.model, xp)
        ccos = inv.cosines(res["conjugate"][name], res["conjugate"]["self"],
                           res["conjugate"][name + "_self"])
        ref_ccos = inv.cosines(np.einsum("ij,ij->i", H, Hp), np.einsum("ij,ij->i", H, H),
                               np.einsum("ij,ij->i", Hp, Hp))
        np.testing.assert_allclose(ccos, ref_ccos, atol=RTOL)


def test_after_kernel_cross_diag_api(case):
    xp = images(len(case.x), case.x.shape[1:], 7)
    Jp = reference_jacobian(case.model, xp)
    k_x_xt, k_x_x, k_xt_xt = K.after_kernel_cross_diag(case.model, case.x, xp, block_size=4)
    scale = np.abs(np.einsum("ij,ij->i", case.J, case.J)).max()
    assert np.max(np.abs(k_x_xt - np.einsum("ij,ij->i", case.J, Jp))) / scale <= RTOL
    assert rel_err(k_x_x, np.einsum("ij,ij->i", case.J, case.J)) <= RTOL
    assert rel_err(k_xt_xt, np.einsum("ij,ij->i", Jp, Jp)) <= RTOL


def test_conjugate_features_gram_and_scaling(case):
    H = reference_conjugate(case.model, case.x)
    h = K.conjugate_features(case.model, case.x, block_size=4)
    assert h.shape == H.shape
    assert rel_err(h, H) <= RTOL
    assert rel_err(K.conjugate_gram(h), H @ H.T) <= RTOL
    assert rel_err(K.conjugate_gram(h, block_rows=3), H @ H.T) <= RTOL
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
    J = []
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            f = tf.reduce_sum(model(x[i:i + 1]))
        J.append(np.concatenate([np.asarray(g).ravel() for g in
                                 tape.gradient(f, model.trainable_weights)]))
    J = np.asarray(J, np.float64)
    assert rel_err(Kg, J @ J.T) <= 1e-5


def test_block_and_panel_sizes_respect_the_budget():
    model, _ = make("vgg")
    eng = K.KernelEngine(model)
    b = eng.block_size_for(256, 0.05)
    assert 1 <= b < 256
    p = eng.panel_rows_for(b, 0.05)
    assert p % b == 0
    assert (p - b) * 4 * eng.rep_floats <= 0.05 * 2**20
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
    for kernel in ("after", "conjugate"):
        assert summary[kernel]["translation"] == pytest.approx(1.0, abs=1e-6)
        assert summary[kernel]["swap"] == pytest.approx(1.0, abs=1e-6)
        assert summary[kernel]["rotation"] > 0.99  # nearest sampling: sum nearly kept
        assert set(cos[kernel]) == set(PERTURBATIONS)
    # a VGG-like net is not invariant to swaps
    vgg = models.build_model({"type": "vgg", "widths": [3, 4]}, (28, 28, 1), seed=0)
    _, s2 = inv.all_invariances(vgg, x, block_size=4)
    assert s2["after"]["swap"] < 0.999


def test_sample_metrics_from_test_set_only():
    model, shape = make("vgg")
    x = images(9, shape, 8)
    y = np.array([0, 1] * 4 + [1], np.uint8)
    out = inv.sample_metrics(model, x, y, block_size=4, jacobian_budget_mb=0.01)
    J = reference_jacobian(model, x)
    H = reference_conjugate(model, x)
    assert out["gram_metrics"]["alignment"] == pytest.approx(
        inv.kernel_alignment(J @ J.T, H @ H.T), abs=1e-6)
    assert out["gram_metrics"]["after"]["target_alignment"] == pytest.approx(
        inv.target_alignment(J @ J.T, y), abs=1e-6)
    assert set(out["invariances"]["after"]) == {"translation", "rotation", "zoom", "swap"}


# ----------------------------------------------------------------------------
# the Snakemake entry point (training / data modules replaced by fakes)
# ----------------------------------------------------------------------------

def load_script(root):
    spec = importlib.util.spec_from_file_location("kernel_script", root / "scripts" / "kernel.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def fake_io(monkeypatch):
    """Stand-ins for afterkernel.training / afterkernel.data (written elsewhere)."""
    from afterkernel.data import draw_test_sample
    from afterkernel.training import snapshot_reached

    state = {}

    def read_training(path):
        return types.SimpleNamespace(attrs=state["attrs"], snapshot_epochs=state.get("epochs", {"e3": 3}),
                                     snapshots={"e3": []})

    def model_from_result(result, snapshot):
        return state["model"]

    def read_problem(path):
        return state["problem"]

    monkeypatch.setitem(sys.modules, "afterkernel.training",
                        types.SimpleNamespace(read_training=read_training,
                                              model_from_result=model_from_result,
                                              snapshot_reached=snapshot_reached,
                                              load_model=lambda p, s: state["model"]))
    monkeypatch.setitem(sys.modules, "afterkernel.data",
                        types.SimpleNamespace(read_problem=read_problem, draw_test_sample=draw_test_sample))
    return state


def test_kernel_script_writes_gram_and_metrics(root, tmp_path, fake_io):
    import h5py

    from afterkernel.io import get_attrs

    model, shape = make("vgg")
    x, xt = images(10, shape, 11), images(6, shape, 12)
    y, yt = np.array([0, 1] * 5, np.uint8), np.array([1, 0] * 3, np.uint8)
    fake_io.update(model=model, attrs={"diverged": False, "n_params": model.count_params(),
                                       "architecture": "vgg", "problem": "toy"},
                   problem=types.SimpleNamespace(x_train=x, y_train=y, x_test=xt, y_test=yt, attrs={}))
    script = load_script(root)
    gram, metrics = tmp_path / "e3.gram.h5", tmp_path / "e3.metrics.h5"
    out = script.main("run.h5", "data.h5", gram, metrics, snapshots=["e3"], block_size=3,
                      jacobian_budget_mb=0.01, test_sample=4)["e3"]
    assert out["diverged"] is False and out["n_test_sample"] == 4
    J, Jt = reference_jacobian(model, x), reference_jacobian(model, xt)
    H, Ht = reference_conjugate(model, x), reference_conjugate(model, xt)
    scale = np.mean(np.linalg.norm(J, axis=1))
    cscale = np.mean(np.linalg.norm(H, axis=1))
    with h5py.File(gram, "r") as root_file:
        np.testing.assert_array_equal(root_file["y_test"][()], yt)
        f = root_file["e3"]
        assert get_attrs(f)["snapshot"] == "e3" and get_attrs(f)["epoch"] == 3
        assert f["after"].attrs["scale"] == pytest.approx(scale, rel=RTOL)
        assert f["after"].attrs["dimension"] == model.count_params()
        assert f["conjugate"].attrs["dimension"] == H.shape[1]
        assert rel_err(f["after/train"][()], J @ J.T / scale**2) <= RTOL
        assert rel_err(f["after/test_train"][()], Jt @ J.T / scale**2) <= RTOL
        assert rel_err(f["conjugate/train"][()], H @ H.T / cscale**2) <= RTOL
        assert rel_err(f["conjugate/test_train"][()], Ht @ H.T / cscale**2) <= RTOL
        assert np.mean(np.sqrt(np.diagonal(f["after/train"][()]))) == pytest.approx(1.0, rel=RTOL)
    with h5py.File(metrics, "r") as metrics_file:
        f = metrics_file["e3"]
        a = get_attrs(f)
        assert a["n_test_sample"] == 4 and a["diverged"] is False
        sample = metrics_file["test_sample_index"][()]
        np.testing.assert_array_equal(np.sort(yt[sample]), [0, 0, 1, 1])  # balanced
        Js, Hs = Jt[sample], Ht[sample]
        assert a["alignment"] == pytest.approx(inv.kernel_alignment(Js @ Js.T, Hs @ Hs.T), abs=1e-6)
        for kernel in ("after", "conjugate"):
            g = f[kernel]
            assert set(g["invariance"]) == set(PERTURBATIONS)
            assert g["invariance/swap"].shape == (4,)
            for key in ("translation", "rotation", "zoom", "swap", "effective_rank",
                        "target_alignment"):
                assert np.isfinite(g.attrs[key])
        assert f["after"].attrs["target_alignment"] == pytest.approx(
            inv.target_alignment(Js @ Js.T, yt[sample]), abs=1e-6)
        shifted = np.asarray(PERTURBATIONS["shift_right"](xt[sample]))
        Jp = reference_jacobian(model, shifted)
        ref = inv.cosines(np.einsum("ij,ij->i", Js, Jp), np.einsum("ij,ij->i", Js, Js),
                          np.einsum("ij,ij->i", Jp, Jp))
        np.testing.assert_allclose(f["after/invariance/shift_right"][()], ref, atol=RTOL)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow case
@pytest.mark.parametrize("how", ["attr", "weights", "overflow"])
def test_kernel_script_diverged_run_writes_nan_outputs(root, tmp_path, fake_io, how):
    import h5py

    model, shape = make("fc")
    if how in ("weights", "overflow"):
        # NaN weights; or finite weights whose kernel overflows float32
        # (detected after the Gram datasets were started)
        w = model.get_weights()
        if how == "weights":
            w[0][0, 0] = np.nan
        else:
            w = [a * np.float32(1e12) for a in w]
        model.set_weights(w)
    x, xt = images(7, shape, 13), images(3, shape, 14)
    # "attr": the run diverged before epoch 3 (e3 holds the weights of epoch 2)
    fake_io.update(model=model, attrs={"diverged": how == "attr", "n_params": 1, "architecture": "fc"},
                   epochs={"e3": 2 if how == "attr" else 3},
                   problem=types.SimpleNamespace(x_train=x, y_train=np.zeros(7, np.uint8), x_test=xt,
                                                 y_test=np.ones(3, np.uint8), attrs={}))
    script = load_script(root)
    gram, metrics = tmp_path / "g.h5", tmp_path / "m.h5"
    out = script.main("run.h5", "data.h5", gram, metrics, snapshots=["e3"])["e3"]
    assert out["diverged"] is True
    with h5py.File(gram, "r") as root_file:
        f = root_file["e3"]
        assert bool(f.attrs["diverged"])
        assert f["after/train"].shape == (7, 7) and np.isnan(f["after/train"][()]).all()
        assert f["conjugate/test_train"].shape == (3, 7)
        assert np.isnan(f["conjugate"].attrs["scale"])
    with h5py.File(metrics, "r") as metrics_file:
        f = metrics_file["e3"]
        assert bool(f.attrs["diverged"]) and np.isnan(f.attrs["alignment"])
        assert f["after/invariance/zoom"].shape == (3,)
        assert np.isnan(f["after/invariance/zoom"][()]).all()
        assert np.isnan(f["conjugate"].attrs["translation"])


def test_settings_from_kernels_config(root):
    script = load_script(root)
    s = script.settings_from_kernels({"block_size": 128, "jacobian_budget_mb": 2048,
                                      "test_sample": None, "keep_grams": False})
    assert s == {"block_size": 128, "jacobian_budget_mb": 2048.0, "test_sample": None}
    assert script.settings_from_kernels({"test_sample": 500})["test_sample"] == 500


def test_gram_file_sink_routes_tiles_like_the_in_memory_gram(root, tmp_path):
    import h5py

    script = load_script(root)
    model, shape = make("vgg")
    x, xt = images(9, shape, 21), images(5, shape, 22)
    z = np.concatenate([x, xt])
    eng = K.KernelEngine(model)
    ref, H = K.gram_with_conjugate(eng, z, block_size=2, panel_rows=4, strip_columns=3)
    with h5py.File(tmp_path / "g.h5", "w") as f:
        sample = np.array([0, 2, 3])  # not a prefix: rows 9, 11, 12 of [train; test]
        sink = script.GramFileSink(f.create_group("after"), 9, 5, sample)
        K.gram_with_conjugate(eng, z, block_size=2, panel_rows=4, strip_columns=3, sink=sink)
        np.testing.assert_array_equal(f["after/train"][()], ref[:9, :9])
        np.testing.assert_array_equal(f["after/test_train"][()], ref[9:, :9])
        np.testing.assert_array_equal(sink.sample, ref[np.ix_(9 + sample, 9 + sample)])
        np.testing.assert_array_equal(sink.diag, np.diagonal(ref)[:9])
        assert sink.finite
        sink.rescale(0.5)
        np.testing.assert_allclose(f["after/train"][()], 0.5 * ref[:9, :9], rtol=1e-7)
        conj = script.GramFileSink(f.create_group("conjugate"), 9, 5, sample)
        K.feature_gram(H, sink=conj, strip_columns=4)
        np.testing.assert_allclose(f["conjugate/test_train"][()], (H @ H.T)[9:, :9], rtol=1e-6)


@pytest.mark.parametrize("name", ["vgg", "valid-conv"])
def test_both_conv_gradient_methods_match_bruteforce(name):
    model, shape = make(name)
    x = images(5, shape, 31)
    J = reference_jacobian(model, x)
    # the grouped filter gradient is probed per process (TensorFlow's CPU
    # kernels reject grouped Conv2DBackpropFilter; GPU ones accept it)
    methods = ["shifted"] + (["grouped"] if K.conv_method() == "grouped" else [])
    for method in methods:
        eng = K.KernelEngine(model, factorize_dense=False, backend="numpy")
        eng.conv_method = method  # before the first call traces the function
        G = eng.rep(x).explicit
        assert rel_err(G, J) <= RTOL, method
