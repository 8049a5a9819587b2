"""The kernel job and its files (afterkernel.kernels.job, .files) against
brute force, with the training and data modules replaced by fakes."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
from kernel_reference import (RTOL, images, make, reference_conjugate,  # noqa: E402
                              reference_jacobian, rel_err)

from afterkernel.kernels import invariances as inv  # noqa: E402
from afterkernel.kernels import metrics as km  # noqa: E402
from afterkernel import kernels as K  # noqa: E402
from afterkernel.kernels import job  # noqa: E402
from afterkernel.kernels.files import GramFileSink  # noqa: E402
from afterkernel.transforms import PERTURBATIONS  # noqa: E402
from afterkernel.vocabulary import KERNELS  # noqa: E402


@pytest.fixture
def fake_io(monkeypatch):
    """Stand-ins for afterkernel.training / afterkernel.data (written elsewhere)."""
    from afterkernel.data import draw_test_sample
    from afterkernel.training import snapshot_reached

    state = {}

    def read_training(path):
        epochs = state.get("epochs", {"e3": 3})
        return types.SimpleNamespace(attrs=state["attrs"], snapshot_epochs=epochs,
                                     snapshots=dict.fromkeys(epochs, []))

    def model_from_result(result, snapshot):
        return state.get("models", {}).get(snapshot, state["model"])

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


def test_kernel_job_writes_gram_and_metrics(tmp_path, fake_io):
    import h5py

    from afterkernel.io import get_attrs

    model, shape = make("vgg")
    x, xt = images(10, shape, 11), images(6, shape, 12)
    y, yt = np.array([0, 1] * 5, np.uint8), np.array([1, 0] * 3, np.uint8)
    fake_io.update(model=model, attrs={"diverged": False, "n_params": model.count_params(),
                                       "architecture": "vgg", "problem": "toy"},
                   problem=types.SimpleNamespace(x_train=x, y_train=y, x_test=xt, y_test=yt, attrs={}))
    gram, metrics = tmp_path / "e3.gram.h5", tmp_path / "e3.metrics.h5"
    out = job.kernel_job("run.h5", "data.h5", gram, metrics, snapshots=["e3"], block_size=3,
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
        assert a["alignment"] == pytest.approx(km.kernel_alignment(Js @ Js.T, Hs @ Hs.T), abs=1e-6)
        for kernel in KERNELS:
            g = f[kernel]
            assert set(g["invariance"]) == set(PERTURBATIONS)
            assert g["invariance/swap"].shape == (4,)
            for key in ("translation", "rotation", "zoom", "swap", "effective_rank",
                        "target_alignment"):
                assert np.isfinite(g.attrs[key])
        assert f["after"].attrs["target_alignment"] == pytest.approx(
            km.target_alignment(Js @ Js.T, yt[sample]), abs=1e-6)
        assert f["after"].attrs["target_alignment_centred"] == pytest.approx(
            km.centred_target_alignment(Js @ Js.T, yt[sample]), abs=1e-6)
        # the spectrum of the (scaled) train Gram: min(50, n - 1) = 9 eigenvalues
        ref = np.linalg.eigvalsh(J @ J.T / scale**2)[::-1][:9]
        np.testing.assert_allclose(f["after/spectrum"][()], ref, rtol=1e-4, atol=1e-6 * ref[0])
        assert f["after"].attrs["spectrum_top10_fraction"] == pytest.approx(
            ref.sum() / np.trace(J @ J.T / scale**2), rel=1e-4)
        Hr = np.linalg.eigvalsh(H @ H.T / cscale**2)[::-1][:9]
        np.testing.assert_allclose(f["conjugate/spectrum"][()], Hr, rtol=1e-4, atol=1e-5 * Hr[0])
        # one snapshot: it is the last one, and there is no FNTK or previous snapshot
        assert f["after"].attrs["kernel_distance_final"] == pytest.approx(0.0, abs=1e-9)
        for key in ("kernel_distance_init", "kernel_distance_prev", "kernel_velocity"):
            assert np.isnan(f["after"].attrs[key])
        shifted = np.asarray(PERTURBATIONS["shift_right"](xt[sample]))
        Jp = reference_jacobian(model, shifted)
        ref = inv.cosines(np.einsum("ij,ij->i", Js, Jp), np.einsum("ij,ij->i", Js, Js),
                          np.einsum("ij,ij->i", Jp, Jp))
        np.testing.assert_allclose(f["after/invariance/shift_right"][()], ref, atol=RTOL)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow case
@pytest.mark.parametrize("how", ["attr", "weights", "overflow"])
def test_kernel_job_diverged_run_writes_nan_outputs(tmp_path, fake_io, how):
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
    gram, metrics = tmp_path / "g.h5", tmp_path / "m.h5"
    out = job.kernel_job("run.h5", "data.h5", gram, metrics, snapshots=["e3"])["e3"]
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


def test_kernel_job_distances_between_snapshots(tmp_path, fake_io):
    """e0, e1, e3 of one run (e1 diverged): distances on the test-sample Grams
    against float64 brute force, NaN to and from the diverged snapshot."""
    import h5py

    models = {s: make("fc", seed=i)[0] for i, s in enumerate(("e0", "e1", "e3"))}
    shape = make("fc")[1]
    x, xt = images(8, shape, 31), images(6, shape, 32)
    w = models["e1"].get_weights()
    w[0][0, 0] = np.nan
    models["e1"].set_weights(w)
    fake_io.update(model=models["e0"], models=models, epochs={"e0": 0, "e1": 1, "e3": 3},
                   attrs={"diverged": False, "n_params": 1, "architecture": "fc"},
                   problem=types.SimpleNamespace(x_train=x, y_train=np.array([0, 1] * 4, np.uint8), x_test=xt,
                                                 y_test=np.array([0, 1] * 3, np.uint8), attrs={}))
    gram, metrics = tmp_path / "g.h5", tmp_path / "m.h5"
    job.kernel_job("run.h5", "data.h5", gram, metrics, snapshots=["e0", "e1", "e3"], test_sample=4)
    with h5py.File(metrics, "r") as f:
        sample = f["test_sample_index"][()]
        Js = {s: reference_jacobian(models[s], xt[sample]) for s in ("e0", "e3")}
        Hs = {s: reference_conjugate(models[s], xt[sample]) for s in ("e0", "e3")}
        for kernel, feats in (("after", Js), ("conjugate", Hs)):
            K0, K3 = (feats[s] @ feats[s].T for s in ("e0", "e3"))
            d = 1 - np.sum(K0 * K3) / (np.linalg.norm(K0) * np.linalg.norm(K3))
            e0, e1, e3 = (f[s][kernel].attrs for s in ("e0", "e1", "e3"))
            assert e3["kernel_distance_init"] == pytest.approx(d, abs=1e-6)
            assert e0["kernel_distance_final"] == pytest.approx(d, abs=1e-6)
            assert e0["kernel_distance_init"] == pytest.approx(0.0, abs=1e-6)
            assert np.isnan(e0["kernel_distance_prev"]) and np.isnan(e0["kernel_velocity"])
            for key in ("kernel_distance_init", "kernel_distance_prev", "kernel_distance_final"):
                assert np.isnan(e1[key])
            assert np.isnan(e3["kernel_distance_prev"]) and np.isnan(e3["kernel_velocity"])
            assert np.isnan(f["e1"][kernel]["spectrum"][()]).all() and f["e1"][kernel]["spectrum"].shape == (7,)


def test_settings_from_kernels_config():
    s = job.settings_from_kernels({"block_size": 128, "jacobian_budget_mb": 2048,
                                   "test_sample": None, "keep_grams": False})
    assert s == {"block_size": 128, "jacobian_budget_mb": 2048.0, "test_sample": None}
    assert job.settings_from_kernels({"test_sample": 500})["test_sample"] == 500


def test_gram_file_sink_routes_tiles_like_the_in_memory_gram(tmp_path):
    import h5py

    model, shape = make("vgg")
    x, xt = images(9, shape, 21), images(5, shape, 22)
    z = np.concatenate([x, xt])
    eng = K.KernelEngine(model)
    ref, H = K.gram_with_conjugate(eng, z, block_size=2, panel_rows=4, strip_columns=3)
    with h5py.File(tmp_path / "g.h5", "w") as f:
        sample = np.array([0, 2, 3])  # not a prefix: rows 9, 11, 12 of [train; test]
        sink = GramFileSink(f.create_group("after"), 9, 5, sample)
        K.gram_with_conjugate(eng, z, block_size=2, panel_rows=4, strip_columns=3, sink=sink)
        np.testing.assert_array_equal(f["after/train"][()], ref[:9, :9])
        np.testing.assert_array_equal(f["after/test_train"][()], ref[9:, :9])
        np.testing.assert_array_equal(sink.sample, ref[np.ix_(9 + sample, 9 + sample)])
        np.testing.assert_array_equal(sink.diag, np.diagonal(ref)[:9])
        assert sink.finite
        sink.rescale(0.5)
        np.testing.assert_allclose(f["after/train"][()], 0.5 * ref[:9, :9], rtol=1e-7)
        conj = GramFileSink(f.create_group("conjugate"), 9, 5, sample)
        K.conjugate_gram(H, sink=conj, strip_columns=4)
        np.testing.assert_allclose(f["conjugate/test_train"][()], (H @ H.T)[9:, :9], rtol=1e-6)


def test_kernel_script_keeps_its_command_line(root):
    out = subprocess.run([sys.executable, str(root / "scripts" / "kernel.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--training", "--data", "--snapshots", "--gram", "--metrics", "--block-size",
                 "--jacobian-budget-mb", "--test-sample", "--backend", "--threads", "--log"):
        assert flag in out
