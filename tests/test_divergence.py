"""A run that diverges at epoch 3 keeps its epochs 0-2: the kernel job, the
SVM job and the metrics table use every snapshot reached before the
divergence and mark only the later ones. Real training, kernel and SVM code
on a tiny network; the divergence itself is written into the training file
exactly as :func:`afterkernel.training.train` records one."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("tensorflow")

from afterkernel import aggregate, training  # noqa: E402
from afterkernel.data import load_problem, write_problem  # noqa: E402
from afterkernel.runtime import configure_tensorflow  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUN = "mnist-3v8/fc/plain/epochs/seed0"
FC = {"type": "fc", "widths": [8, 8]}


def load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def diverged_at_3(result: training.TrainingResult) -> training.TrainingResult:
    """``result`` (epochs 0-2) as if epoch 3 had given a NaN loss: e3 holds the
    weights of epoch 2, as ``train`` stores them."""
    h = {k: np.append(v, np.nan if k != "epoch" else 3) for k, v in result.history.items()}
    attrs = {**result.attrs, "diverged": True, "diverged_at_epoch": 3, "last_finite_epoch": 2,
             "epochs_used": 3, "snapshot_epochs": [0, 1, 2, 3], "max_epochs": 3}
    return training.TrainingResult(snapshots={**result.snapshots, "e3": result.snapshots["e2"]},
                                   snapshot_epochs={**result.snapshot_epochs, "e3": 2},
                                   history=h, attrs=attrs)


def test_run_diverging_at_epoch_3_keeps_epochs_0_to_2(tmp_path):
    configure_tensorflow(2, 0)
    results = tmp_path / "results"
    problem = load_problem("mnist-3v8", max_train_per_class=20, max_test_per_class=10)
    data_file = results / "data" / "mnist-3v8.h5"
    write_problem(data_file, problem)
    run = training.train(problem.x_train, problem.y_train, problem.x_test, problem.y_test, FC, 0,
                         snapshot_epochs=(0, 1, 2), architecture_name="fc")
    train_file = results / "training" / f"{RUN}.h5"
    training.write_training(train_file, diverged_at_3(run))

    snapshots = ["e0", "e1", "e2", "e3"]
    gram, metrics = results / "kernels" / f"{RUN}.gram.h5", results / "kernels" / f"{RUN}.metrics.h5"
    out = load("kernel").main(train_file, data_file, gram, metrics, snapshots=snapshots, test_sample=8)
    assert [out[s]["diverged"] for s in snapshots] == [False, False, False, True]
    svm = load("svm")
    settings = {"solver": "exact", "tolerance": None, "max_iterations": None}
    for s in snapshots:
        for kernel in ("after", "conjugate"):
            svm.main(gram, results / "svm" / RUN / f"{s}.{kernel}.h5", s, kernel, settings)

    rows = [{"study": "epochs", "run": RUN, "problem": "mnist-3v8", "architecture": "fc",
             "augmentation": False, "learning_rate": None, "seed": 0, "snapshot": s,
             "epoch": int(s[1:]), "kernels": True} for s in snapshots]
    table = aggregate.metrics_table(rows, results)
    after = table[table["kernel"] == "after"].set_index("epoch")
    for q in ("svm_test_error", "nn_test_error", "swap", "alignment", "target_alignment"):
        assert np.isfinite(after.loc[[0, 1, 2], q].astype(float)).all(), q
        assert math.isnan(float(after.loc[3, q])), q
    assert after["diverged"].all()
    np.testing.assert_allclose(after.loc[[0, 1, 2], "nn_test_error"].astype(float),
                               run.history["test_error"][:3])
    with h5py.File(metrics, "r") as f:
        assert not f["e2"].attrs["diverged"] and f["e3"].attrs["diverged"]
