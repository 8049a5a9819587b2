"""SGD training with snapshots: schedules, determinism, divergence,
augmentation, the training file. Tiny networks and <= 256 examples."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from afterkernel.models import build_model  # noqa: E402
from afterkernel.runtime import configure_tensorflow  # noqa: E402
from afterkernel import training  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VGG = {"type": "vgg", "widths": [2, 4]}
FC = {"type": "fc", "widths": [8, 8]}
AUG = {"rotation_degrees": 15, "shift_pixels": 1}


@pytest.fixture(scope="module", autouse=True)
def tf_runtime():
    return configure_tensorflow(2, 0)


def random_problem(n=128, m=32, shape=(28, 28, 1), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n + m, *shape), dtype=np.float32)
    y = (rng.random(n + m) > 0.5).astype(np.uint8)
    return x[:n], y[:n], x[n:], y[n:]


def blobs(n=128, m=32, seed=0):
    """Two well-separated classes: a bright left half (y=0) or right half (y=1), plus noise."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n + m) % 2).astype(np.uint8)
    x = 0.1 * rng.random((n + m, 12, 12, 1), dtype=np.float32)
    x[y == 0, :, :6] += 0.8
    x[y == 1, :, 6:] += 0.8
    return x[:n], y[:n], x[n:], y[n:]


def same_weights(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


@pytest.fixture(scope="module")
def vgg_run():
    data = random_problem()
    result = training.train(*data, VGG, 7, snapshot_epochs=(0, 1, 2), architecture_name="vgg-tiny")
    return data, result


# ---------------------------------------------------------------- epochs schedule


def test_epochs_schedule_snapshots_and_history(vgg_run):
    data, r = vgg_run
    assert list(r.snapshots) == ["e0", "e1", "e2"]
    assert r.snapshot_epochs == {"e0": 0, "e1": 1, "e2": 2}
    np.testing.assert_array_equal(r.history["epoch"], [0, 1, 2])
    for key in ("train_loss", "train_error", "test_error"):
        assert r.history[key].shape == (3,) and np.all(np.isfinite(r.history[key]))
    assert r.attrs["architecture"] == "vgg-tiny"
    assert r.attrs["architecture_spec"] == VGG
    assert r.attrs["input_shape"] == [28, 28, 1]
    assert r.attrs["epochs_used"] == 2 and r.attrs["diverged"] is False
    assert r.attrs["schedule"] == "epochs" and r.attrs["augmentation"] is False
    assert r.attrs["n_params"] == build_model(VGG, (28, 28, 1)).count_params()
    # training moved the weights
    assert not same_weights(r.snapshots["e0"], r.snapshots["e2"])


def test_epoch0_snapshot_is_the_initialization(vgg_run):
    _, r = vgg_run
    init = build_model(VGG, (28, 28, 1), seed=7).get_weights()
    assert same_weights(r.snapshots["e0"], init)


def test_history_loss_and_errors_match_the_snapshots(vgg_run):
    """train_loss is the full-set BCE of the snapshot; errors use logit > 0."""
    (x, y, xt, yt), r = vgg_run
    for name, epoch in r.snapshot_epochs.items():
        model = build_model(VGG, (28, 28, 1))
        model.set_weights(r.snapshots[name])
        z = np.asarray(model(x, training=False)).reshape(-1).astype(np.float64)
        bce = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
        np.testing.assert_allclose(r.history["train_loss"][epoch], bce, rtol=1e-6)
        assert r.history["train_error"][epoch] == np.mean((z > 0) != (y == 1))
        zt = np.asarray(model(xt, training=False)).reshape(-1)
        assert r.history["test_error"][epoch] == np.mean((zt > 0) != (yt == 1))


def test_test_error_thresholds_the_logit_at_zero():
    """With labels all 1 and small initial logits, thresholds 0 and 0.5 differ."""
    x, y, xt, _ = random_problem(n=64, m=64, seed=3)
    yt = np.ones(len(xt), np.uint8)
    r = training.train(x, y, xt, yt, FC, 11, snapshot_epochs=(0,))
    model = build_model(FC, x.shape[1:], seed=11)
    z = np.asarray(model(xt, training=False)).reshape(-1)
    err0, err_half = np.mean(z <= 0), np.mean(z <= 0.5)
    assert err0 != err_half, "test set does not discriminate the thresholds"
    assert r.history["test_error"][0] == err0


# ---------------------------------------------------------------- determinism


def test_same_seed_same_weights_different_seed_differs():
    data = random_problem(n=96, m=16)
    kw = dict(snapshot_epochs=(0, 2), augmentation=AUG)
    a = training.train(*data, VGG, 5, **kw)
    b = training.train(*data, VGG, 5, **kw)
    c = training.train(*data, VGG, 6, **kw)
    for name in ("e0", "e2"):
        assert same_weights(a.snapshots[name], b.snapshots[name])
        assert not same_weights(a.snapshots[name], c.snapshots[name])
    np.testing.assert_array_equal(a.history["train_loss"], b.history["train_loss"])


CHILD = textwrap.dedent("""
    import sys, numpy as np
    from afterkernel.runtime import configure_tensorflow
    configure_tensorflow(2, 0)
    from afterkernel import training
    d = np.load(sys.argv[1])
    r = training.train(d["x"], d["y"], d["xt"], d["yt"], {"type": "vgg", "widths": [2, 4]}, 5,
                       snapshot_epochs=(2,), augmentation={"rotation_degrees": 15, "shift_pixels": 1})
    np.savez(sys.argv[2], *r.snapshots["e2"])
""")


def test_same_seed_same_weights_across_processes(tmp_path):
    data = random_problem(n=96, m=16)
    np.savez(tmp_path / "data.npz", **dict(zip(("x", "y", "xt", "yt"), data)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "data.npz"), str(tmp_path / "w.npz")],
                   check=True, cwd=ROOT, env=env, capture_output=True, timeout=300)
    with np.load(tmp_path / "w.npz") as f:
        child = [f[f"arr_{i}"] for i in range(len(f.files))]
    here = training.train(*data, VGG, 5, snapshot_epochs=(2,), augmentation=AUG)
    assert same_weights(here.snapshots["e2"], child)


# ---------------------------------------------------------------- target schedule


def test_target_schedule_stops_at_the_target():
    data = blobs()
    r = training.train(*data, FC, 0, stop="target", learning_rate=0.5, loss_target=0.01, max_epochs=100)
    assert list(r.snapshots) == ["e0", "final"]
    used = r.attrs["epochs_used"]
    assert r.attrs["reached_target"] is True and r.attrs["diverged"] is False
    assert 0 < used < 100
    assert r.snapshot_epochs == {"e0": 0, "final": used}
    loss = r.history["train_loss"]
    np.testing.assert_array_equal(r.history["epoch"], np.arange(used + 1))
    assert loss[used] <= 0.01 and np.all(loss[:used] > 0.01)  # checked after every epoch
    assert r.attrs["final_train_loss"] == loss[used]
    assert r.history["test_error"][used] == 0.0


def test_target_schedule_cap():
    data = blobs(n=64, m=16)
    r = training.train(*data, FC, 0, stop="target", learning_rate=0.01, loss_target=1e-9, max_epochs=2)
    assert r.attrs["reached_target"] is False and r.attrs["epochs_used"] == 2
    assert r.snapshot_epochs["final"] == 2 and len(r.history["epoch"]) == 3


# ---------------------------------------------------------------- divergence


@pytest.mark.parametrize("spec", [VGG, FC])
def test_divergence_is_recorded_not_raised(spec):
    data = random_problem(n=64, m=16)
    r = training.train(*data, spec, 1, stop="target", learning_rate=1e10, max_epochs=5)
    assert r.attrs["diverged"] is True and r.attrs["reached_target"] is False
    assert r.attrs["epochs_used"] == 1  # stopped at the first non-finite epoch
    # 'final' holds the last finite weights (here the initialization), tagged with their epoch.
    assert r.snapshot_epochs["final"] == r.attrs["last_finite_epoch"] == 0
    assert same_weights(r.snapshots["final"], r.snapshots["e0"])
    assert all(np.all(np.isfinite(w)) for w in r.snapshots["final"])


def test_divergence_in_epochs_schedule_fills_later_snapshots():
    data = random_problem(n=64, m=16)
    r = training.train(*data, FC, 1, snapshot_epochs=(0, 1, 3), learning_rate=1e10)
    assert r.attrs["diverged"] is True
    assert list(r.snapshots) == ["e0", "e1", "e3"]
    assert r.snapshot_epochs == {"e0": 0, "e1": 0, "e3": 0}
    assert all(np.all(np.isfinite(w)) for s in r.snapshots.values() for w in s)


@pytest.mark.parametrize("n", [64, 128])
def test_learning_rate_1e6_never_raises(n):
    # Depending on the data, lr 1e6 either overflows (NaN: diverged) or kills
    # every ReLU (a huge but finite loss: not diverged); neither raises.
    data = random_problem(n=n, m=16)
    r = training.train(*data, FC, 1, stop="target", learning_rate=1e6, max_epochs=2)
    loss = r.history["train_loss"]
    assert r.attrs["diverged"] is (not np.all(np.isfinite(loss)))
    assert r.attrs["reached_target"] is False
    assert all(np.all(np.isfinite(w)) for w in r.snapshots["final"])


# ---------------------------------------------------------------- augmentation

SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def _apply(layer, images, training_flag=True):
    return np.asarray(layer(images, training=training_flag))


def _edge_shift(x, dy, dx):
    """Output pixel (r, c) = input pixel (r + dy, c + dx), edges replicated."""
    h, w = x.shape[-3:-1]
    rows = np.clip(np.arange(h) + dy, 0, h - 1)
    cols = np.clip(np.arange(w) + dx, 0, w - 1)
    return x[..., rows[:, None], cols[None, :], :]


def _image_data_generator(x, theta, tx, ty):
    """keras-preprocessing's apply_affine_transform(x, theta, tx, ty) on (H, W, C)."""
    from scipy import ndimage

    h, w = x.shape[:2]
    t = np.deg2rad(theta)
    rotation = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    o_x, o_y = h / 2 - 0.5, w / 2 - 0.5  # transform_matrix_offset_center(m, h, w)
    offset = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    m = offset @ rotation @ shift @ reset
    return np.stack([ndimage.affine_transform(x[..., k], m[:2, :2], m[:2, 2], order=1, mode="nearest")
                     for k in range(x.shape[-1])], axis=-1)


def test_shifts_are_exact_integer_shifts_with_edge_fill():
    x = np.random.default_rng(0).random((200, 28, 28, 1), dtype=np.float32)
    out = _apply(training.augmentation_layer(0, 1, seed=3, input_shape=(28, 28, 1)), x)
    found = []
    for xi, oi in zip(x, out):
        matches = [s for s in SHIFTS if np.array_equal(oi, _edge_shift(xi, *s))]
        assert len(matches) == 1
        found.append(matches[0])
    assert set(found) == set(SHIFTS)
    for axis in range(2):  # uniform on {-1, 0, 1} per axis
        counts = np.array([sum(s[axis] == v for s in found) for v in (-1, 0, 1)])
        assert counts.min() > 200 / 3 / 2


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (20, 26, 2)])
def test_warp_matches_image_data_generator(shape):
    rng = np.random.default_rng(1)
    angles = np.array([0.0, 15.0, -15.0, 7.5, -3.25, 0.0, 11.0, -14.0, 2.0], np.float32)
    shifts = np.array(SHIFTS)
    x = rng.random((len(angles), *shape), dtype=np.float32)
    out = np.asarray(training.affine_warp(x, angles, shifts))
    for i, (theta, (tx, ty)) in enumerate(zip(angles, shifts)):
        ref = _image_data_generator(x[i].astype(np.float64), float(theta), tx, ty)
        np.testing.assert_allclose(out[i], ref, rtol=0, atol=1e-5)


def test_sampled_angles_and_shifts():
    angles, shifts = training.augmentation_layer(15, 1, seed=4).sample(2000)
    angles, shifts = np.asarray(angles), np.asarray(shifts)
    assert np.all(np.abs(angles) <= 15) and angles.min() < -14 and angles.max() > 14
    assert abs(angles.mean()) < 1 and np.mean(np.abs(angles) < 7.5) == pytest.approx(0.5, abs=0.05)
    pairs = [tuple(s) for s in shifts]
    assert set(pairs) == set(SHIFTS)
    assert min(pairs.count(s) for s in SHIFTS) > 2000 / 9 / 2  # independent axes


def test_augmentation_is_training_only_and_seeded():
    x = random_problem(n=8, m=0)[0]
    layer = training.augmentation_layer(15, 1, seed=1, input_shape=(28, 28, 1))
    np.testing.assert_array_equal(_apply(layer, x, training_flag=False), x)
    a = _apply(training.augmentation_layer(15, 1, seed=1, input_shape=(28, 28, 1)), x)
    b = _apply(training.augmentation_layer(15, 1, seed=1, input_shape=(28, 28, 1)), x)
    c = _apply(training.augmentation_layer(15, 1, seed=2, input_shape=(28, 28, 1)), x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(_apply(layer, x), _apply(layer, x))  # fresh draws per batch


@pytest.mark.parametrize("shift", [-1, 1.5, "1"])
def test_shift_pixels_must_be_a_nonnegative_integer(shift):
    with pytest.raises(ValueError):
        training.augmentation_layer(15, shift)


def test_augmented_training_differs_from_plain():
    data = random_problem(n=64, m=16)
    plain = training.train(*data, FC, 2, snapshot_epochs=(1,))
    aug = training.train(*data, FC, 2, snapshot_epochs=(1,), augmentation=AUG)
    assert aug.attrs["augmentation"] is True and aug.attrs["augmentation_spec"] == AUG
    assert same_weights(plain.snapshots["e0"], aug.snapshots["e0"])
    assert not same_weights(plain.snapshots["e1"], aug.snapshots["e1"])


# ---------------------------------------------------------------- file


def test_write_read_roundtrip_and_load_model(vgg_run, tmp_path):
    (x, y, xt, yt), r = vgg_run
    r.attrs["problem"] = "random"
    path = tmp_path / "run" / "seed7.h5"
    training.write_training(path, r)
    back = training.read_training(path)
    assert list(back.snapshots) == list(r.snapshots)
    assert back.snapshot_epochs == r.snapshot_epochs
    for name in r.snapshots:
        assert same_weights(back.snapshots[name], r.snapshots[name])
    for key, values in r.history.items():
        np.testing.assert_array_equal(back.history[key], values)
    for key, value in r.attrs.items():
        assert back.attrs[key] == value, key
    assert "code_version" in back.attrs

    import h5py

    with h5py.File(path) as f:
        assert f["snapshots/e1"].attrs["epoch"] == 1
        assert sorted(f["snapshots/e1"]) == [f"w{i:03d}" for i in range(len(r.snapshots["e1"]))]
        assert json.loads(f.attrs["architecture_spec"]) == VGG

    model = training.load_model(path, "e2")
    ref = build_model(VGG, (28, 28, 1))
    ref.set_weights(r.snapshots["e2"])
    z = np.asarray(model(xt, training=False)).reshape(-1)
    np.testing.assert_array_equal(z, np.asarray(ref(xt, training=False)).reshape(-1))
    assert r.history["test_error"][2] == np.mean((z > 0) != (yt == 1))
    with pytest.raises(KeyError):
        training.load_model(path, "final")


# ---------------------------------------------------------------- script


def test_script_settings_from_snakemake_params():
    import importlib.util
    import inspect
    import types

    spec = importlib.util.spec_from_file_location("train_script", ROOT / "scripts" / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    grouped = types.SimpleNamespace(
        input=types.SimpleNamespace(data="data.h5"), output=["run.h5"],
        params=types.SimpleNamespace(
            training={"arch_spec": FC, "stop": "target", "snapshot_epochs": [0], "learning_rate": 0.1,
                      "batch_size": 32, "loss_target": 0.01, "max_epochs": 50, "augmentation": None},
            arch_name="fc", seed="3", code="abc"))
    s = script.from_snakemake(grouped)
    assert s["arch_spec"] == FC and s["seed"] == 3 and s["arch_name"] == "fc"
    assert s["stop"] == "target" and s["learning_rate"] == 0.1 and s["augmentation"] is None
    assert s["data"] == "data.h5" and s["out"] == "run.h5"
    assert set(s) <= set(inspect.signature(training.train_to_file).parameters)


# ---------------------------------------------------------------- resume


class Killed(Exception):
    """Stands for a SIGKILL in the middle of an epoch."""


def same_result(a, b):
    """Bitwise equal weights, history and attrs, wall times left out."""
    assert list(a.snapshots) == list(b.snapshots) and a.snapshot_epochs == b.snapshot_epochs
    for name in a.snapshots:
        assert same_weights(a.snapshots[name], b.snapshots[name]), name
    assert sorted(a.history) == sorted(b.history)
    for key in a.history:
        if key != "seconds":
            assert a.history[key].dtype == b.history[key].dtype, key
            np.testing.assert_array_equal(a.history[key], b.history[key], err_msg=key)
    timeless = [{k: v for k, v in r.attrs.items() if not k.startswith("seconds")} for r in (a, b)]
    assert timeless[0] == timeless[1]


def killed_at(epoch, data, spec, seed, checkpoint, monkeypatch, **kw):
    """Train with a checkpoint saved after every epoch, killed in ``epoch``."""
    from afterkernel.training import checkpoint as ckpt
    from afterkernel.training.evaluation import Evaluator

    evaluate = Evaluator.__call__

    def dies(self, e, seconds):
        if e == epoch:
            raise Killed
        return evaluate(self, e, seconds)

    monkeypatch.setattr(ckpt, "MAX_OVERHEAD", float("inf"))  # save every epoch
    with monkeypatch.context() as m:
        m.setattr(Evaluator, "__call__", dies)
        with pytest.raises(Killed):
            training.train(*data, spec, seed, checkpoint=checkpoint, **kw)
    import h5py

    with h5py.File(checkpoint, "r") as f:
        assert f.attrs["epoch"] == epoch - 1


@pytest.mark.parametrize("spec, kw", [
    (VGG, dict(snapshot_epochs=(0, 2, 4))),
    (FC, dict(snapshot_epochs=(0, 1, 4), augmentation=AUG)),
    (VGG, dict(snapshot_epochs=(0, 3), augmentation=AUG, batch_size=20)),
])
def test_killed_training_resumes_bitwise(spec, kw, tmp_path, monkeypatch, caplog):
    data = random_problem(n=96, m=16)
    checkpoint = tmp_path / ".run.h5.checkpoint.h5"
    killed_at(3, data, spec, 4, checkpoint, monkeypatch, **kw)
    with caplog.at_level("INFO"):
        resumed = training.train(*data, spec, 4, checkpoint=checkpoint, **kw)
    assert "resuming from epoch 2" in caplog.text
    same_result(resumed, training.train(*data, spec, 4, **kw))


def test_killed_target_schedule_resumes_bitwise(tmp_path, monkeypatch, caplog):
    data = blobs()
    kw = dict(stop="target", learning_rate=0.5, loss_target=0.01, max_epochs=100)
    whole = training.train(*data, FC, 0, **kw)
    assert whole.attrs["reached_target"] and whole.attrs["epochs_used"] > 3
    checkpoint = tmp_path / "ckpt.h5"
    killed_at(whole.attrs["epochs_used"] - 1, data, FC, 0, checkpoint, monkeypatch, **kw)
    with caplog.at_level("INFO"):
        same_result(training.train(*data, FC, 0, checkpoint=checkpoint, **kw), whole)
    assert f"resuming from epoch {whole.attrs['epochs_used'] - 2}" in caplog.text


@pytest.mark.parametrize("other", [dict(seed=5), dict(learning_rate=0.02), dict(data_seed=1)])
def test_checkpoint_of_another_run_is_ignored(other, tmp_path, monkeypatch, caplog):
    kw = dict(snapshot_epochs=(0, 3))
    checkpoint = tmp_path / "ckpt.h5"
    killed_at(3, random_problem(n=64, m=16, seed=other.pop("data_seed", 0)), FC, other.pop("seed", 4),
              checkpoint, monkeypatch, **kw, **other)
    data = random_problem(n=64, m=16)
    with caplog.at_level("INFO"):
        resumed = training.train(*data, FC, 4, checkpoint=checkpoint, **kw)
    assert "ignoring the checkpoint" in caplog.text and "resuming" not in caplog.text
    same_result(resumed, training.train(*data, FC, 4, **kw))


def run_train_script(problem, out, *extra, wait=True):
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "--data", str(problem), "--out", str(out),
           "--arch-spec", json.dumps(FC), "--seed", "3", "--threads", "1", "--schedule", "target",
           "--learning-rate", "0.05", "--loss-target", "1e-9", "--max-epochs", "300", *extra]
    if wait:
        return subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, text=True, timeout=600)
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_sigkilled_training_job_resumes_bitwise(tmp_path):
    """scripts/train.py killed by SIGKILL mid-run, started again: it resumes
    from its checkpoint, ends with the same file as an uninterrupted run and
    removes the checkpoint."""
    import h5py
    import signal
    import time

    from afterkernel.data import load_problem, write_problem
    from afterkernel.training.checkpoint import checkpoint_path
    from micro import h5_content

    problem = tmp_path / "mnist-3v8.h5"
    write_problem(problem, load_problem("mnist-3v8", max_train_per_class=64, max_test_per_class=16))
    out = tmp_path / "killed" / "seed3.h5"
    out.parent.mkdir()
    checkpoint = checkpoint_path(out)
    proc = run_train_script(problem, out, wait=False)
    try:
        epoch = 0
        while epoch < 2 and proc.poll() is None:
            time.sleep(0.02)
            try:
                with h5py.File(checkpoint, "r") as f:
                    epoch = int(f.attrs["epoch"])
            except (OSError, KeyError):  # not written yet
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the training ended before it could be killed"
    assert not out.exists() and checkpoint.exists()
    log = run_train_script(problem, out).stderr
    resumed_at = int(log.split("resuming from epoch ")[1].split()[0])
    assert resumed_at >= epoch and not checkpoint.exists()
    reference = tmp_path / "whole" / "seed3.h5"
    reference.parent.mkdir()
    run_train_script(problem, reference)
    assert h5_content(out) == h5_content(reference)
    assert read_epochs(out) == 300


def read_epochs(path) -> int:
    return training.read_training_record(path).attrs["epochs_used"]
