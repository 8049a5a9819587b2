"""End to end: the whole study on the tiny config, a real Snakemake run.

Every figure and the report must exist, and the tables must hold the rows
the config implies, with finite values where a quantity applies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import micro
from afterkernel import config as ak_config
from afterkernel import plan
from afterkernel.figures import FIGURES

pytestmark = pytest.mark.slow


def run_tiny(root, workdir, *args, timeout=1200):
    """Snakemake on the tiny config, in ``workdir``."""
    return micro.snakemake(workdir, "--configfile", str(root / "tests/configs/tiny.yaml"), "--cores", "2",
                           *args, snakefile=root / "Snakefile", timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, root):
    workdir = tmp_path_factory.mktemp("tiny")
    run_tiny(root, workdir)
    run_tiny(root, workdir, "--report", str(workdir / "report.html"))
    return workdir


def test_every_figure_and_the_report(tiny_run):
    for spec in FIGURES.values():
        for path in plan.figure_files(spec.stem):
            f = tiny_run / path
            assert f.is_file() and f.stat().st_size > 2000, path
        assert f"Figure {spec.number}" in (tiny_run / plan.figure_caption_file(spec.stem)).read_text()
    report = tiny_run / "report.html"
    assert report.is_file() and report.stat().st_size > 100_000


def test_metrics_table_rows_and_values(tiny_run, root):
    config = ak_config.load(root / "tests/configs/tiny.yaml")
    metrics = pd.read_csv(tiny_run / "results/tables/metrics.csv")
    rows = plan.rows(config)
    expected = sum(2 if row.kernels else 1 for row in rows)
    assert len(metrics) == expected
    for column in ["study", "problem", "architecture", "seed", "epoch", "learning_rate",
                   "augmentation", "kernel", "svm_test_error", "nn_test_error", "margin", "gap",
                   "translation", "rotation", "zoom", "swap", "alignment"]:
        assert column in metrics.columns, column
    kernel_rows = metrics[metrics.kernel != "none"]
    assert set(kernel_rows.kernel) == {"after", "conjugate"}
    for column in ["svm_test_error", "nn_test_error", "translation", "rotation", "zoom", "swap",
                   "alignment"]:
        assert np.isfinite(kernel_rows[column]).all(), column
    assert kernel_rows.svm_test_error.between(0, 1).all()
    assert kernel_rows.alignment.between(0, 1 + 1e-6).all()
    width = metrics[metrics.study == "width"]
    assert len(width) == 4 and np.isfinite(width.nn_test_error).all()
    assert (width.n_params > 0).all()
    assert set(metrics.study) == {"epochs", "learning_rate", "width"}


def test_summary_has_intervals(tiny_run):
    summary = pd.read_csv(tiny_run / "results/tables/summary.csv")
    assert len(summary) > 0
    assert "seed" not in summary.columns
    text = " ".join(summary.columns)
    assert "ci_low" in text and "ci_high" in text and "count" in text


def test_gram_files_are_temporary(tiny_run):
    assert not list((tiny_run / "results/kernels").rglob("*.gram.h5"))
    assert list((tiny_run / "results/kernels").rglob("*.metrics.h5"))
