"""A run that diverges at epoch 3 keeps its epochs 0-2: the kernel job, the
SVM job and the metrics table use every snapshot reached before the
divergence and mark only the later ones. Real training, kernel and SVM code
on a tiny network; the divergence itself is written into the training file
exactly as :func:`afterkernel.training.train` records one."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

pytest.importorskip("tensorflow")

from afterkernel import aggregate, plan, training  # noqa: E402
from afterkernel.kernels.job import kernel_job  # noqa: E402
from afterkernel.maxmargin.job import write_svm  # noqa: E402
from afterkernel.data import load_problem, write_problem  # noqa: E402
from afterkernel.runtime import configure_tensorflow  # noqa: E402
from afterkernel.vocabulary import KERNELS  # noqa: E402

RUN = "mnist-3v8/fc/plain/epochs/seed0"
FC = {"type": "fc", "widths": [8, 8]}


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
    data_file = plan.problem_file("mnist-3v8", root=results)
    write_problem(data_file, problem)
    run = training.train(problem.x_train, problem.y_train, problem.x_test, problem.y_test, FC, 0,
                         snapshot_epochs=(0, 1, 2), architecture_name="fc")
    train_file = plan.training_file(RUN, results)
    training.write_training(train_file, diverged_at_3(run))

    snapshots = ["e0", "e1", "e2", "e3"]
    gram, metrics = plan.gram_file(RUN, results), plan.kernel_metrics_file(RUN, results)
    out = kernel_job(train_file, data_file, gram, metrics, snapshots=snapshots, test_sample=8)
    assert [out[s]["diverged"] for s in snapshots] == [False, False, False, True]
    settings = {"solver": "exact", "tolerance": None, "max_iterations": None}
    for s in snapshots:
        for kernel in KERNELS:
            write_svm(gram, plan.svm_file(RUN, s, kernel, results), s, kernel, settings)

    rows = [{"study": "epochs", "run": RUN, "problem": "mnist-3v8", "architecture": "fc",
             "augmentation": False, "learning_rate": None, "seed": 0, "snapshot": s,
             "epoch": int(s[1:]), "kernels": True,
             "files": {"training": str(train_file), "kernel_metrics": str(metrics),
                       "svm": {k: plan.svm_file(RUN, s, k, results) for k in KERNELS}}} for s in snapshots]
    table = aggregate.metrics_table(rows)
    after = table[table["kernel"] == "after"].set_index("epoch")
    for q in ("svm_test_error", "nn_test_error", "swap", "alignment", "target_alignment"):
        assert np.isfinite(after.loc[[0, 1, 2], q].astype(float)).all(), q
        assert math.isnan(float(after.loc[3, q])), q
    assert after["diverged"].all()
    np.testing.assert_allclose(after.loc[[0, 1, 2], "nn_test_error"].astype(float),
                               run.history["test_error"][:3])
    with h5py.File(metrics, "r") as f:
        assert not f["e2"].attrs["diverged"] and f["e3"].attrs["diverged"]
