"""The cost model (afterkernel.cost) and ``python -m afterkernel.estimate``.

Parameter counts against Keras' own; job counts against the plan; the
default config's estimate against its measured run (CPU-minutes, from
benchmarks/results.json; no wall-clock time of a test is asserted).
"""

from __future__ import annotations

import copy
import json
import math

import pytest

from afterkernel import cost, estimate, plan
from afterkernel.config import load

CONFIGS = ("config.yaml", "configs/paper.yaml")
#: the estimate of the default config lies within this factor of its measured run
DEFAULT_RUN_FACTOR = 3.0


@pytest.fixture(scope="module", params=CONFIGS)
def config(request, root):
    return load(root / request.param)


def _architectures(root) -> dict:
    out = {}
    for name in CONFIGS:
        out.update({f"{name}:{arch}": spec for arch, spec in load(root / name)["architectures"].items()})
    return out


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_parameter_counts_are_keras_counts(root, shape):
    from afterkernel.models import build_model

    specs = {**_architectures(root), "sum": {"type": "sum", "width": 16}, "vgg3": {"type": "vgg", "widths": [5, 7, 9]}}
    for name, spec in specs.items():
        assert cost.net_size(spec, shape).params == build_model(spec, shape).count_params(), name


def test_sizes_of_the_paper_networks():
    vgg, fc = cost.net_size({"type": "vgg"}, (28, 28, 1)), cost.net_size({"type": "fc"}, (28, 28, 1))
    # conv: H·W·9·C_in·C_out per layer; dense: in·out
    assert vgg.macs == 784 * 9 * (1 * 26 + 26 * 26) + 196 * 9 * (26 * 52 + 52 * 52) + 7 * 7 * 52
    assert fc.macs == 784 * 94 + 3 * 94 * 94 + 94
    assert (vgg.embed, fc.embed) == (7 * 7 * 52, 94) and fc.dense_only and not vgg.dense_only


def test_unknown_architecture_type_is_sized_as_fc():
    assert cost.net_size({"type": "mine", "depth": 9}, (28, 28, 1)) == cost.net_size({"type": "fc"}, (28, 28, 1))


def test_problem_sizes():
    keras = {"data": {"source": "keras"}}
    assert cost.problem_sizes(keras, "mnist-3v8") == (11982, 1984)
    assert cost.problem_sizes(keras, "mnist-5v6") == (5421 + 5918, 892 + 958)
    assert cost.problem_sizes(keras, "cifar10-cat-dog") == (10000, 2000)
    # the embedded MNIST holds every image of 3, 5, 6, 8; the embedded CIFAR 300 / 100 per class
    assert cost.problem_sizes({"data": {"source": "embedded"}}, "mnist-3v8") == (11982, 1984)
    assert cost.problem_sizes({"data": {"source": "embedded"}}, "cifar10-cat-dog") == (600, 200)
    capped = {"data": {"source": "keras", "max_train_per_class": 100, "max_test_per_class": 5000}}
    assert cost.problem_sizes(capped, "mnist-3v8") == (200, 1984)
    # caps per data set / pair (data.caps): the run's architecture picks its own
    capped["data"]["caps"] = [{"dataset": "mnist", "max_test_per_class": 50},
                              {"problem": "mnist-3v8", "architecture": "vgg", "max_train_per_class": 1000}]
    assert cost.problem_sizes(capped, "mnist-3v8", "vgg") == (2000, 100)
    assert cost.problem_sizes(capped, "mnist-3v8", "fc") == (200, 100)
    assert cost.problem_sizes(capped, "cifar10-cat-dog", "vgg") == (200, 2000)


def test_gram_file_of_a_paper_run():
    """The issue's figure: ≈ 9 GB for an epochs-schedule run of 7 snapshots."""
    assert cost.gram_file_mb(11982, 1984, 7) == pytest.approx(7 * 2 * 4 * (11982 ** 2 + 1984 * 11982) / 1e6)
    assert 9000 < cost.gram_file_mb(11982, 1984, 7) < 9500


def test_job_counts_are_the_plans(config):
    by_rule = {r.rule: r for r in estimate.estimate(config)}
    # one problem file per problem and subset (data.caps)
    files = {(run.problem, plan.subset_of(config, run.problem, run.arch)) for run in plan.training_runs(config)}
    assert by_rule["prepare_data"].jobs == len(files)
    assert by_rule["train"].jobs == len(plan.training_runs(config))
    assert by_rule["kernel"].jobs == len(plan.kernel_runs(config))
    assert by_rule["svm"].jobs == 2 * len(plan.kernel_snapshots(config))
    for r in by_rule.values():
        for value in (r.hours, r.peak_mem_gb, r.disk_gb):
            assert math.isfinite(value) and value > 0, r
    assert by_rule["kernel"].temp_gb > 0


def test_a_bigger_config_costs_more(root):
    small = load(root / "config.yaml")
    more_seeds = copy.deepcopy(small)
    more_seeds["seeds"] = [*small["seeds"], 7, 8]
    paper = load(root / "configs/paper.yaml")

    def totals(c):
        rules = estimate.estimate(c)
        return sum(r.hours for r in rules), sum(r.disk_gb + r.temp_gb for r in rules)

    assert totals(small) < totals(more_seeds) < totals(paper)
    assert all(a < b for a, b in zip(totals(small), totals(more_seeds)))
    gpu = sum(r.hours for r in estimate.estimate(paper, gpu=True))
    assert 0 < gpu < totals(paper)[0]


def test_default_estimate_is_near_its_measured_run(root):
    """The measured default run (2 cores) used at most 2 × its wall minutes of CPU."""
    entries = {e["name"]: e for e in json.loads((root / "benchmarks/results.json").read_text())}
    measured_cpu_min = 2 * entries["default_run_minutes"]["value"]
    config = load(root / "config.yaml")
    est_min = 60 * sum(r.hours for r in estimate.estimate(config))
    assert measured_cpu_min / DEFAULT_RUN_FACTOR < est_min < measured_cpu_min * DEFAULT_RUN_FACTOR


def test_slurm_requests():
    job = cost.JobCost(cpu_s=3600 * 10, mem_mb=1000)
    assert job.runtime_minutes(1) == math.ceil(cost.c("runtime_safety") * 600)
    assert job.runtime_minutes(2) == math.ceil(cost.c("runtime_safety") * 300)
    assert cost.JobCost(cpu_s=1, mem_mb=1).runtime_minutes(1) == cost.c("min_runtime_min")
    assert job.request_mb() == math.ceil(cost.c("memory_safety") * 1000)
    run = plan.Run("mnist-3v8", "vgg", "plain", "lr0.01", 0)
    config = {"architectures": {"vgg": {"type": "vgg"}}, "data": {"source": "keras"},
              "training": {"batch_size": 32, "max_epochs": 2000}}
    capped = cost.train_cost(config, run, [])
    config["training"]["max_epochs"] = 100
    assert cost.train_cost(config, run, []).cpu_s < capped.cpu_s


def test_main_prints_the_totals(root, capsys):
    assert estimate.main([str(root / "configs/paper.yaml")]) == 0
    out = capsys.readouterr().out
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert "CPU-hours" in total and "GB" in total
    assert estimate.main([str(root / "configs/paper.yaml"), "--gpu"]) == 0
    out = capsys.readouterr().out
    assert "GPU-hours" in out and "unmeasured" in out


def test_wall_time_on_n_cores(root, capsys):
    config = load(root / "configs/reproduction.yaml")
    rules = estimate.estimate(config)
    cpu_h = sum(r.hours for r in rules)
    assert estimate.wall_hours(rules, 2) == pytest.approx(max(cpu_h / 2, max(r.longest_h for r in rules)))
    assert estimate.wall_hours(rules, 10_000) == pytest.approx(max(r.longest_h for r in rules))
    assert estimate.main([str(root / "configs/reproduction.yaml"), "--cores", "2"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("wall time on 2 cores"))
    assert line.endswith(f"{estimate.wall_hours(rules, 2) * 60:,.0f} min")


def test_bad_config_is_one_line_without_traceback(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: []\n")
    proc = subprocess.run([sys.executable, "-m", "afterkernel.estimate", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("ConfigError: ") and "Traceback" not in proc.stderr
    assert "seeds" in proc.stderr


def test_own_data_is_costed_from_its_files(root, tmp_path):
    """The own-data example's kernel job from its 2 KB file; a 60,000-image
    data set above the default's full MNIST 3-vs-8."""
    import numpy as np

    example = load(root / "configs/examples/own-data.yaml")
    (run, snaps), = plan.kernel_runs(example).items()
    with np.load(root / "configs/examples/shapes.npz") as f:  # what the file holds
        held = (len(f["y_train"]), len(f["y_test"]))
    assert cost.problem_sizes(example, run.problem) == held
    assert cost.kernel_cost(example, run, snaps).mem_mb < 1000
    n = 30_000
    y = np.repeat(np.arange(2, dtype=np.uint8), n)
    np.savez(tmp_path / "big.npz", x_train=np.zeros((2 * n, 8, 8), np.uint8), y_train=y,
             x_test=np.zeros((2000, 8, 8), np.uint8), y_test=np.repeat(np.arange(2, dtype=np.uint8), 1000))
    big = copy.deepcopy(example)
    big["datasets"]["shapes"]["path"] = str(tmp_path / "big.npz")
    big["datasets"]["shapes"].pop("class_names", None)
    big["problems"] = ["shapes-0v1"]
    big["studies"]["epochs"]["pairs"] = [["shapes-0v1", run.arch]]
    (big_run, big_snaps), = plan.kernel_runs(big).items()
    assert cost.problem_sizes(big, "shapes-0v1") == (60_000, 2000)
    assert cost.input_shape("shapes-0v1", big) == (8, 8, 1)
    default = load(root / "config.yaml")
    default_kernel = max(cost.kernel_cost(default, r, s).mem_mb for r, s in plan.kernel_runs(default).items())
    assert cost.kernel_cost(big, big_run, big_snaps).mem_mb > default_kernel
