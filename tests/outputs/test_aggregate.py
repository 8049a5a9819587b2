"""The tidy metrics table and the summary, on a fake results/ tree of tiny
HDF5 files that follow the schemas of docs/design.md."""

from __future__ import annotations

import math
import statistics

import h5py
import numpy as np
import pandas as pd
import pytest

from afterkernel import aggregate as agg
from afterkernel import plan
from afterkernel.io import atomic_h5, set_attrs
from afterkernel.vocabulary import KERNELS

ROOT_RUN = "mnist-3v8/vgg/plain"
T975 = {1: 12.706204736174694, 2: 4.302652729749462}  # scipy.stats.t.ppf(0.975, df), by df


# --------------------------------------------------------------------------
# fake files


def write_training(results, run, *, test_error, train_loss, snapshots, epochs_used=None,
                   diverged=False, reached_target=None, n_params=45527, **attrs):
    epochs = np.arange(len(test_error))
    with atomic_h5(results / "training" / f"{run}.h5") as f:
        h = f.create_group("history")
        h["epoch"] = epochs
        h["train_loss"] = np.asarray(train_loss, float)
        h["train_error"] = np.zeros(len(epochs))
        h["test_error"] = np.asarray(test_error, float)
        for name, epoch in snapshots.items():
            g = f.create_group(f"snapshots/{name}")
            g["w000"] = np.zeros(2, np.float32)
            set_attrs(g, {"epoch": epoch})
        set_attrs(f, {"epochs_used": len(epochs) - 1 if epochs_used is None else epochs_used,
                      "reached_target": reached_target, "diverged": diverged, "n_params": n_params,
                      "architecture_spec": {"type": "vgg"}, **attrs})


def write_kernel_metrics(results, run, snapshot, after, conjugate, alignment):
    """Add ``snapshot``'s group to the run's metrics file (one file per run)."""
    path = results / "kernels" / f"{run}.metrics.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "a") as f:
        snap = f.create_group(snapshot)
        for name, values in (("after", after), ("conjugate", conjugate)):
            g = snap.create_group(name)
            g["invariance/swap"] = np.full(3, values["swap"])
            set_attrs(g, values)
        set_attrs(snap, {"alignment": alignment, "n_test_sample": 3})


def write_svm(results, run, snapshot, kernel, **attrs):
    base = {"solver": "exact", "kernel": kernel, "upper_bound": 1.0, "iterations": 10, "seconds": 0.1}
    with atomic_h5(results / "svm" / run / f"{snapshot}.{kernel}.h5") as f:
        f["decision_test"] = np.zeros(3)
        set_attrs(f, {**base, **attrs})


def kernel_values(seed, epoch, offset=0.0):
    v = 0.5 + 0.01 * seed + 0.1 * epoch + offset
    return {"translation": v, "rotation": v - 0.1, "zoom": v - 0.05, "swap": v - 0.3,
            "effective_rank": 10.0 + seed, "target_alignment": 0.2 + offset}


SVM_ERR = {0: 0.1, 1: 0.2, 2: 0.4}  # epochs study, e1, after kernel, by seed


def row(study, run, problem, arch, aug, lr, seed, snapshot, epoch, kernels, **extra):
    return {"study": study, "run": run, "problem": problem, "architecture": arch, "augmentation": aug,
            "learning_rate": lr, "seed": seed, "snapshot": snapshot, "epoch": epoch, "kernels": kernels,
            **extra}


@pytest.fixture
def fake(tmp_path):
    """A results/ tree: epochs study (3 seeds, e0 and e1), learning-rate study
    (2 seeds, seed 1 diverged), width study (2 seeds, no kernels)."""
    results = tmp_path / "results"
    rows = []
    for seed in (0, 1, 2):
        run = f"{ROOT_RUN}/epochs/seed{seed}"
        write_training(results, run, test_error=[0.5, 0.3 + 0.01 * seed, 0.2],
                       train_loss=[0.7, 0.3, 0.1], snapshots={"e0": 0, "e1": 1})
        for e in (0, 1):
            write_kernel_metrics(results, run, f"e{e}", kernel_values(seed, e), kernel_values(seed, e, 0.2),
                                 alignment=0.9 - 0.1 * e + 0.01 * seed)
            err = SVM_ERR[seed] if e == 1 else 0.3
            write_svm(results, run, f"e{e}", "after", test_error=err, train_error=0.0, margin=0.01 * (seed + 1),
                      gap=1e-5, separable=True, converged=True)
            write_svm(results, run, f"e{e}", "conjugate", test_error=err + 0.05, train_error=0.01,
                      margin=None, gap=None, separable=False, converged=True)
            rows.append(row("epochs", run, "mnist-3v8", "vgg", False, None, seed, f"e{e}", e, True))
    for seed in (0, 1):
        run = f"{ROOT_RUN}/lr0.1/seed{seed}"
        if seed == 0:
            write_training(results, run, test_error=[0.5, 0.1, 0.05, 0.04], train_loss=[0.7, 0.1, 0.02, 0.009],
                           snapshots={"e0": 0, "final": 3}, reached_target=True, learning_rate=0.1)
            write_kernel_metrics(results, run, "final", kernel_values(0, 3), kernel_values(0, 3, 0.2), 0.5)
            for kernel in KERNELS:
                write_svm(results, run, "final", kernel, test_error=0.03, train_error=0.0, margin=0.02,
                          gap=1e-5, separable=True, converged=True)
        else:  # diverged at epoch 2: no kernel or SVM files exist
            write_training(results, run, test_error=[0.5, 0.2, 0.5], train_loss=[0.7, 0.2, float("nan")],
                           snapshots={"e0": 0, "final": 1}, diverged=True, reached_target=False,
                           learning_rate=0.1, last_finite_epoch=1)
        rows.append(row("learning_rate", run, "mnist-3v8", "vgg", False, 0.1, seed, "final", None, True))
    for seed in (0, 1):
        run = f"mnist-3v8/vgg-60k/plain/epochs/seed{seed}"
        write_training(results, run, test_error=[0.5, 0.06 + 0.02 * seed], train_loss=[0.7, 0.2],
                       snapshots={"e1": 1}, n_params=60000 + seed)
        rows.append(row("width", run, "mnist-3v8", "vgg-60k", False, None, seed, "e1", 1, False))
    return results, rows


def with_files(rows, results):
    """``rows`` with the files each reads, in the plan's layout below ``results``."""
    out = []
    for r in rows:
        files = {"training": plan.training_file(r["run"], results)}
        if r["kernels"]:
            files["kernel_metrics"] = plan.kernel_metrics_file(r["run"], results)
            files["svm"] = {k: plan.svm_file(r["run"], r["snapshot"], k, results) for k in KERNELS}
        out.append({**r, "files": files})
    return out


def metrics_of(rows, results):
    return agg.metrics_table(with_files(rows, results))


def select(df, **kw):
    mask = pd.Series(True, index=df.index)
    for k, v in kw.items():
        mask &= df[k].isna() if v is None else df[k] == v
    return df[mask]


# --------------------------------------------------------------------------
# metrics table


def test_metrics_rows_and_columns(fake):
    results, rows = fake
    m = metrics_of(rows, results)
    assert list(m.columns) == agg.METRICS_COLUMNS
    for col in ["svm_test_error", "svm_train_error", "nn_test_error", "margin", "gap", "separable",
                "converged", "translation", "rotation", "zoom", "swap", "alignment", "effective_rank",
                "target_alignment", "train_loss", "epochs_used", "reached_target", "diverged", "n_params"]:
        assert col in m.columns
    # epochs: 3 seeds x 2 snapshots x 2 kernels; lr: 2 x 2; width: 2 x 1 (kernel none)
    assert len(m) == 12 + 4 + 2
    assert (m.groupby("study").size() == pd.Series({"epochs": 12, "learning_rate": 4, "width": 2})).all()
    assert set(select(m, study="width")["kernel"]) == {"none"}
    assert set(select(m, study="epochs")["kernel"]) == {"after", "conjugate"}


def test_metrics_values(fake):
    results, rows = fake
    m = metrics_of(rows, results)
    r = select(m, study="epochs", seed=1, snapshot="e1", kernel="after").iloc[0]
    assert r["svm_test_error"] == pytest.approx(0.2)
    assert r["svm_train_error"] == 0.0
    assert r["margin"] == pytest.approx(0.02)
    assert bool(r["separable"]) and bool(r["converged"])
    assert r["nn_test_error"] == pytest.approx(0.31)  # history at epoch 1, not the last epoch
    assert r["train_loss"] == pytest.approx(0.3)
    assert r["epoch"] == 1 and r["epochs_used"] == 2
    assert r["translation"] == pytest.approx(0.61) and r["swap"] == pytest.approx(0.31)
    assert r["effective_rank"] == 11.0
    assert r["alignment"] == pytest.approx(0.81)
    assert r["n_params"] == 45527 and not r["diverged"]
    assert math.isnan(r["learning_rate"])  # epochs schedule
    c = select(m, study="epochs", seed=1, snapshot="e1", kernel="conjugate").iloc[0]
    assert c["svm_test_error"] == pytest.approx(0.25)
    assert c["translation"] == pytest.approx(0.81)  # the conjugate group's attrs
    assert c["alignment"] == r["alignment"]  # one number per snapshot
    assert math.isnan(c["margin"]) and math.isnan(c["gap"])  # "null" attrs
    assert not bool(c["separable"])
    e0 = select(m, study="epochs", seed=2, snapshot="e0", kernel="after").iloc[0]
    assert e0["nn_test_error"] == 0.5 and e0["epoch"] == 0


def test_evolution_columns_are_appended_and_read(tmp_path):
    """The distances, spectrum and centred alignment of a metrics file's kernel
    group land in the new columns, after every column of the paper."""
    n_paper = agg.QUANTITIES.index("n_test") + 1
    assert agg.QUANTITIES[n_paper:] == agg.EVOLUTION_QUANTITIES
    results = tmp_path / "results"
    run = f"{ROOT_RUN}/epochs/seed0"
    write_training(results, run, test_error=[0.5, 0.3], train_loss=[0.7, 0.3], snapshots={"e1": 1}, n_train=64,
                   n_test=16)
    spectrum = np.array([6.0, 2.0, 1.0, 0.5])  # fewer eigenvalues than index 5: NaN there
    evo = {"kernel_distance_init": 0.3, "kernel_distance_prev": 0.3, "kernel_distance_final": 0.0,
           "kernel_velocity": 0.3, "spectrum_top10_fraction": 0.95, "target_alignment_centred": 0.4,
           "trace": 10.0}
    write_kernel_metrics(results, run, "e1", {**kernel_values(0, 1), **evo}, {**kernel_values(0, 1), **evo}, 0.9)
    with h5py.File(results / "kernels" / f"{run}.metrics.h5", "a") as f:
        f["e1/after/spectrum"] = spectrum
        f["e1"].attrs["alignment_centred"] = 0.7
    for kernel in KERNELS:
        write_svm(results, run, "e1", kernel, test_error=0.1, train_error=0.0, margin=0.1, gap=1e-5,
                  separable=True, converged=True)
    m = metrics_of([row("epochs", run, "mnist-3v8", "vgg", False, None, 0, "e1", 1, True)], results)
    a = select(m, kernel="after").iloc[0]
    for key in ("kernel_distance_init", "kernel_distance_final", "kernel_velocity", "spectrum_top10_fraction",
                "target_alignment_centred"):
        assert a[key] == pytest.approx(evo[key])
    assert a["spectrum_fraction_1"] == pytest.approx(0.6) and a["spectrum_fraction_3"] == pytest.approx(0.1)
    assert math.isnan(a["spectrum_fraction_5"])
    assert (a["n_train"], a["n_test"], a["alignment_centred"], a["alignment"]) == (64, 16, 0.7, 0.9)
    c = select(m, kernel="conjugate").iloc[0]  # no spectrum dataset
    assert math.isnan(c["spectrum_fraction_1"]) and c["kernel_distance_prev"] == pytest.approx(0.3)


def test_final_snapshot_and_divergence(fake):
    results, rows = fake
    m = metrics_of(rows, results)
    ok = select(m, study="learning_rate", seed=0, kernel="after").iloc[0]
    assert ok["epoch"] == 3  # epochs used
    assert ok["nn_test_error"] == pytest.approx(0.04)  # last epoch
    assert ok["train_loss"] == pytest.approx(0.009)
    assert ok["learning_rate"] == 0.1 and bool(ok["reached_target"])
    assert ok["svm_test_error"] == pytest.approx(0.03)
    div = select(m, study="learning_rate", seed=1)
    assert len(div) == 2 and div["diverged"].all()
    assert not div["reached_target"].any()
    for q in ["svm_test_error", "nn_test_error", "train_loss", "translation", "alignment", "margin"]:
        assert div[q].isna().all(), q
    assert (div["n_params"] == 45527).all() and (div["epochs_used"] == 2).all()
    assert (div["epoch"] == 2).all()


def test_width_rows_have_no_kernel_metrics(fake):
    results, rows = fake
    width = {"pairs": [["mnist-3v8", "vgg"]], "families": {"vgg": ["vgg-60k", "vgg"]}}
    rows = [{**r, "family": plan.width_family(width, r["problem"], r["architecture"])
             if r["study"] == "width" else None} for r in rows]
    m = metrics_of(rows, results)
    w = select(m, study="width")
    assert list(w["nn_test_error"]) == pytest.approx([0.06, 0.08])
    assert list(w["n_params"]) == [60000, 60001]
    assert set(w["family"]) == {"vgg"}
    assert select(m, study="epochs")["family"].isna().all()
    for q in agg.SVM_QUANTITIES + agg.KERNEL_QUANTITIES + ["alignment"]:
        assert w[q].isna().all(), q


def test_partially_diverged_epochs_run(tmp_path):
    """Snapshots reached before the divergence keep their values; a snapshot
    holding the last finite weights of an earlier epoch is NaN."""
    results = tmp_path / "results"
    run = "mnist-3v8/fc/plain/epochs/seed0"
    write_training(results, run, test_error=[0.5, 0.2, 0.5], train_loss=[0.7, 0.2, float("inf")],
                   snapshots={"e0": 0, "e1": 1, "e3": 1}, diverged=True, epochs_used=2)
    rows = []
    for e in (0, 1, 3):
        if e < 3:
            write_kernel_metrics(results, run, f"e{e}", kernel_values(0, e), kernel_values(0, e), 0.9)
            for kernel in KERNELS:
                write_svm(results, run, f"e{e}", kernel, test_error=0.1, train_error=0.0, margin=0.1, gap=0.0,
                          separable=True, converged=True)
        rows.append(row("epochs", run, "mnist-3v8", "fc", False, None, 0, f"e{e}", e, True))
    m = metrics_of(rows, results)
    assert m["diverged"].all()
    assert select(m, snapshot="e1")["svm_test_error"].notna().all()
    assert select(m, snapshot="e1")["nn_test_error"].tolist() == [0.2, 0.2]
    e3 = select(m, snapshot="e3")
    assert e3["svm_test_error"].isna().all() and e3["nn_test_error"].isna().all()
    assert (e3["epoch"] == 3).all()


def test_missing_file_of_a_healthy_run_raises(fake):
    results, rows = fake
    (results / "svm" / ROOT_RUN / "epochs" / "seed0" / "e1.conjugate.h5").unlink()
    with pytest.raises(FileNotFoundError, match="e1.conjugate.h5"):
        metrics_of(rows, results)


def test_width_family():
    width = {"pairs": [["p1", "vgg"], ["p1", "fc"]], "families": {"vgg": ["v1"], "fc": ["f1", "fc"]}}
    assert plan.width_family(width, "p1", "fc") == "fc"
    assert plan.width_family(width, "p2", "fc") is None
    assert plan.width_family(None, "p1", "fc") is None


# --------------------------------------------------------------------------
# summary


def test_summary_mean_std_and_t_interval(fake):
    results, rows = fake
    s = agg.summary_table(metrics_of(rows, results))
    assert list(s.columns) == agg.SUMMARY_COLUMNS
    assert "seed" not in s.columns
    r = select(s, study="epochs", snapshot="e1", kernel="after", quantity="svm_test_error")
    assert len(r) == 1
    r = r.iloc[0]
    values = list(SVM_ERR.values())
    mean, std = statistics.mean(values), statistics.stdev(values)
    half = T975[2] * std / math.sqrt(3)
    assert r["count"] == 3
    assert r["mean"] == pytest.approx(mean)
    assert r["std"] == pytest.approx(std)
    assert r["ci_low"] == pytest.approx(mean - half)
    assert r["ci_high"] == pytest.approx(mean + half)
    # not one standard error (the original code's "confidence interval")
    assert r["ci_high"] - r["mean"] > 4 * std / math.sqrt(3)
    # NaN group key (learning_rate in the epochs study) kept
    assert math.isnan(r["learning_rate"]) and r["epoch"] == 1
    # booleans become fractions; constant quantities have a zero-width interval
    sep = select(s, study="epochs", snapshot="e1", kernel="conjugate", quantity="separable").iloc[0]
    assert sep["mean"] == 0.0 and sep["count"] == 3
    n = select(s, study="epochs", snapshot="e0", kernel="after", quantity="n_params").iloc[0]
    assert n["mean"] == 45527 and n["std"] == 0 and n["ci_low"] == n["ci_high"] == 45527


def test_summary_nan_handling(fake):
    results, rows = fake
    s = agg.summary_table(metrics_of(rows, results))
    lr = select(s, study="learning_rate", kernel="after")
    assert lr["epoch"].isna().all() and (lr["learning_rate"] == 0.1).all()
    err = select(lr, quantity="svm_test_error").iloc[0]  # seed 1 diverged: one value
    assert err["count"] == 1 and err["mean"] == pytest.approx(0.03)
    assert math.isnan(err["std"]) and math.isnan(err["ci_low"]) and math.isnan(err["ci_high"])
    div = select(lr, quantity="diverged").iloc[0]
    assert div["mean"] == 0.5 and div["count"] == 2
    used = select(lr, quantity="epochs_used").iloc[0]
    assert used["mean"] == 2.5 and used["count"] == 2
    # width: only the training quantities, kernel none; n/a quantities left out
    w = select(s, study="width")
    assert set(w["kernel"]) == {"none"}
    assert "svm_test_error" not in set(w["quantity"])
    nn = select(w, quantity="nn_test_error").iloc[0]
    assert nn["mean"] == pytest.approx(0.07) and nn["count"] == 2
    assert nn["ci_high"] - nn["mean"] == pytest.approx(T975[1] * statistics.stdev([0.06, 0.08]) / math.sqrt(2))


def test_t_interval_matches_scipy():
    from scipy import stats

    lo, hi = agg.t_interval([1.0, 2.0, 3.0], [0.5, 1.0, 2.0], [4, 1, 0])
    half = stats.t.ppf(0.975, 3) * 0.5 / 2
    assert lo[0] == pytest.approx(1 - half) and hi[0] == pytest.approx(1 + half)
    assert np.isnan(lo[1:]).all() and np.isnan(hi[1:]).all()
    assert stats.t.ppf(0.975, 2) == pytest.approx(T975[2])


# --------------------------------------------------------------------------
# the script


def test_write_tables(fake, tmp_path):
    results, rows = fake
    rows = with_files(rows, results)
    out = tmp_path / "tables"
    agg.write_tables(rows, out / "metrics.csv", out / "summary.csv")
    m = pd.read_csv(out / "metrics.csv")
    s = agg.read_summary(out / "summary.csv")
    assert len(m) == 18 and list(m.columns) == agg.METRICS_COLUMNS
    assert list(s.columns) == agg.SUMMARY_COLUMNS
    assert not list(out.glob(".*part"))  # atomic writes leave no temporary files
    fresh = agg.summary_table(agg.metrics_table(rows))
    pd.testing.assert_frame_equal(s, fresh, check_dtype=False)
    pd.testing.assert_frame_equal(agg.read_metrics(out / "metrics.csv"), agg.metrics_table(rows))
    # re-running gives identical bytes
    before = (out / "summary.csv").read_bytes(), (out / "metrics.csv").read_bytes()
    agg.write_tables(rows, out / "metrics.csv", out / "summary.csv")
    assert before == ((out / "summary.csv").read_bytes(), (out / "metrics.csv").read_bytes())


def test_table_rows_name_the_files_of_the_plan(default_config):
    config = {**default_config, "studies": {**default_config["studies"], "width": {
        "pairs": [["mnist-3v8", "fc"]], "families": {"fc": ["fc-60k", "fc"]}, "epochs": [10]}}}
    rows = plan.table_rows(config)
    assert len(rows) == len(plan.rows(config))
    width = [r for r in rows if r["study"] == "width"]
    assert width and all(r["family"] in ("vgg", "fc") for r in width)
    assert all(r["family"] is None for r in rows if r["study"] != "width")
    inputs = plan.table_inputs(rows)
    assert len(inputs) == len(set(inputs))
    kernel_rows = [r for r in rows if r["kernels"]]
    assert {r["files"]["svm"]["after"] for r in kernel_rows} <= set(inputs)
    assert all(f.startswith("results/") for f in inputs)
