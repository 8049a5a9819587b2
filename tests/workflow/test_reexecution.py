"""Exact partial re-execution: after a complete run of the micro config, an
edit plans exactly the jobs that depend on what was edited, no more, no fewer.

Each rule passes ``code_hash(...)`` of the package modules its script imports
as a param (rules/common.smk), its script is watched by Snakemake's code
trigger (mtime), and it receives only its own slice of the config; so editing
``maxmargin.py`` re-runs the SVMs and what follows them, ``svm.tolerance``
likewise, ``training.max_epochs`` only the learning-rate runs and what follows.
The mapping is documented in docs/cluster.md.

One real run in a copy of the workflow (session-wide, shared with the other
micro tests through pytest's base temporary folder), then per case: a fresh
copy of that finished run, one edit, ``snakemake -n`` with the default rerun
triggers, and the planned (rule, wildcards) jobs compared with the expected set.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable

import pytest
import yaml

from micro import snakemake


pytestmark = pytest.mark.slow


# --- planned jobs ---

JOB_LINE = re.compile(r"^(?:local)?rule (\S+):$")
STAGES = ("prepare_data", "train", "kernel", "svm", "aggregate", "claims", "figure", "all")


def planned(workdir: Path, *args: str) -> list[tuple[str, str]]:
    """The (rule, wildcards) of every job a dry run plans, sorted."""
    out = snakemake(workdir, "-n", "--configfile", "micro.yaml", *args).stdout
    jobs, current = [], None
    for line in out.splitlines():
        line = line.strip()
        m = JOB_LINE.match(line)
        if m:
            current = [m.group(1), ""]
            jobs.append(current)
        elif current is not None and line.startswith("wildcards:"):
            current[1] = line.removeprefix("wildcards:").strip()
    if not jobs:
        assert "Nothing to be done" in out, out[-3000:]
    return sorted(map(tuple, jobs))


def stage(rule: str) -> str:
    return "figure" if rule.startswith("figure_") else rule


@pytest.fixture(scope="module")
def full_plan(micro_reference) -> list[tuple[str, str]]:
    """Every job of the micro config (a forced dry run)."""
    jobs = planned(micro_reference, "--forceall")
    assert {stage(rule) for rule, _ in jobs} == set(STAGES), jobs
    return jobs


def downstream_of(first: str, only: Callable[[str], bool] | None = None):
    """Jobs from stage ``first`` on; ``only(wildcards)`` restricts the stages
    that have a training run (train, kernel, svm) to some runs."""
    def select(jobs):
        keep = []
        for rule, wc in jobs:
            s = stage(rule)
            if STAGES.index(s) < STAGES.index(first):
                continue
            if only is not None and s in ("train", "kernel", "svm") and not only(wc):
                continue
            keep.append((rule, wc))
        return sorted(keep)
    return select


def nothing(jobs):
    return []


EVERYTHING = downstream_of("prepare_data")
# The Gram matrices are temporary (kernels.keep_grams: false, as in the micro
# config): re-running an SVM first recomputes the kernel job that wrote its
# Gram file, so an SVM change costs the kernels too (keep_grams: true avoids it).
SVM_CHANGE = downstream_of("kernel")
LR_RUNS = downstream_of("train", only=lambda wc: "schedule=lr" in wc)
EPOCHS_RUNS = downstream_of("train", only=lambda wc: "schedule=epochs" in wc)


def claims_only(jobs):
    return sorted(j for j in jobs if stage(j[0]) in ("claims", "all"))


# --- edits ---

def append_comment(relpath: str):
    def edit(wf: Path):
        path = wf / relpath
        with open(path, "a") as f:
            f.write("\n# re-execution test: a harmless comment\n")
    edit.__name__ = f"comment in {relpath}"
    return edit


def append_code(relpath: str):
    """A real code change to a package module (``afterkernel/``); a script
    gets a comment: Snakemake re-runs a rule whose script is newer than its
    outputs."""
    if relpath.startswith("scripts/"):
        return append_comment(relpath)

    def edit(wf: Path):
        with open(wf / relpath, "a") as f:
            f.write("\n_REEXECUTION_TEST = 1\n")
    edit.__name__ = f"code in {relpath}"
    return edit


def edit_docstrings_and_comments(wf: Path):
    """Every package module's docstring reworded and a comment appended: the
    code hashes read the parsed code, so this changes no job."""
    for path in sorted((wf / "afterkernel").rglob("*.py")):
        text = path.read_text()
        if text.startswith('"""'):
            text = '"""Reworded. ' + text[3:]
        path.write_text(text + "\n# re-execution test: a harmless comment\n")


def set_config(key: str, value):
    """Set the config key ``key`` (dotted path) to ``value``."""
    def edit(wf: Path):
        path = wf / "micro.yaml"
        config = yaml.safe_load(path.read_text())
        *parents, name = key.split(".")
        section = config
        for parent in parents:
            section = section[parent]
        assert section[name] != value
        section[name] = value
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    return edit


def reorder_config_section(section: str):
    """The same config with one section's keys in reverse order."""
    def edit(wf: Path):
        path = wf / "micro.yaml"
        config = yaml.safe_load(path.read_text())
        config[section] = dict(reversed(list(config[section].items())))
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    return edit


# One module of each stage's code (each rule hashes the parsed code of every
# package file its script reaches through imports, afterkernel.codehash).
MODULE_CASES = [
    ("afterkernel/data/sources.py", EVERYTHING),
    ("afterkernel/io.py", EVERYTHING),
    ("afterkernel/entry.py", EVERYTHING),
    ("afterkernel/runtime.py", EVERYTHING),
    ("afterkernel/vocabulary.py", EVERYTHING),
    ("afterkernel/models.py", downstream_of("train")),
    ("afterkernel/training/sgd.py", downstream_of("train")),
    ("afterkernel/kernels/engine.py", downstream_of("kernel")),
    ("afterkernel/transforms.py", downstream_of("kernel")),
    ("afterkernel/kernels/invariances.py", downstream_of("kernel")),
    ("afterkernel/kernels/metrics.py", downstream_of("kernel")),
    ("afterkernel/maxmargin/exact.py", SVM_CHANGE),
    ("afterkernel/aggregate.py", downstream_of("aggregate")),
    ("afterkernel/figures/draw.py", downstream_of("figure")),
    ("afterkernel/claims.py", claims_only),
    # Scripts: Snakemake's code trigger (the script's modification time).
    ("scripts/prepare_data.py", EVERYTHING),
    ("scripts/train.py", downstream_of("train")),
    ("scripts/kernel.py", downstream_of("kernel")),
    ("scripts/svm.py", SVM_CHANGE),
    ("scripts/aggregate.py", downstream_of("aggregate")),
    ("scripts/figure.py", downstream_of("figure")),
    ("scripts/claims.py", claims_only),
]

# Read when the workflow is parsed; what they decide reaches the jobs as params
# and paths, which are checked themselves. One dry run for all of them.
NO_OP_EDITS = ["afterkernel/plan.py", "afterkernel/config.py", "afterkernel/__init__.py", "afterkernel/codehash.py",
               "afterkernel/schemas/config.schema.yaml", "rules/common.smk", "rules/svm.smk", "Snakefile",
               "micro.yaml"]

CONFIG_CASES = [
    ("svm keys reordered", reorder_config_section("svm"), nothing),
    ("svm.tolerance", set_config("svm.tolerance", 1e-5), SVM_CHANGE),
    ("svm.max_iterations", set_config("svm.max_iterations", 10000), SVM_CHANGE),
    ("kernels.test_sample", set_config("kernels.test_sample", 4), downstream_of("kernel")),
    # whether Gram files outlive their SVMs changes no number (the next kernel job keeps them)
    ("kernels.keep_grams", set_config("kernels.keep_grams", True), nothing),
    ("training.max_epochs", set_config("training.max_epochs", 3), LR_RUNS),
    ("training.loss_target", set_config("training.loss_target", 0.4), LR_RUNS),
    ("training.learning_rate", set_config("training.learning_rate", 0.02), EPOCHS_RUNS),
    ("training.batch_size", set_config("training.batch_size", 8), downstream_of("train")),
    # The micro config trains no augmented network.
    ("training.augmentation", set_config("training.augmentation.rotation_degrees", 10), nothing),
    # a new cap is a new subset: its problem file has a name of its own
    ("data.max_test_per_class", set_config("data.max_test_per_class", 6),
     lambda plan: [(rule, wc.replace("-test8-", "-test6-")) for rule, wc in EVERYTHING(plan)]),
]


def check_plan(micro_reference, full_plan, tmp_path, edit, expected):
    wf = tmp_path / "wf"
    shutil.copytree(micro_reference, wf, symlinks=True)
    edit(wf)
    want = expected(full_plan)
    got = planned(wf)
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    assert not missing and not extra, (
        f"planned {len(got)} jobs, expected {len(want)}\nmissing: {missing}\nunexpected: {extra}")


def test_complete_run_plans_nothing(micro_reference):
    assert planned(micro_reference) == []


def test_edits_outside_the_jobs_plan_nothing(micro_reference, full_plan, tmp_path):
    """Comments in plan.py, config.py, __init__.py, the schema, the rule files
    and the config file; docstrings and comments of every package module."""
    def edit(wf):
        for relpath in NO_OP_EDITS:
            append_comment(relpath)(wf)
        edit_docstrings_and_comments(wf)
    check_plan(micro_reference, full_plan, tmp_path, edit, nothing)


@pytest.mark.parametrize("relpath,expected", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_code_edit_reruns_exactly_its_dependents(micro_reference, full_plan, tmp_path, relpath, expected):
    check_plan(micro_reference, full_plan, tmp_path, append_code(relpath), expected)


@pytest.mark.parametrize("name,edit,expected", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_edit_reruns_exactly_its_dependents(micro_reference, full_plan, tmp_path, name, edit, expected):
    check_plan(micro_reference, full_plan, tmp_path, edit, expected)


def test_new_seed_adds_jobs_without_rerunning_old_ones(micro_reference, full_plan, tmp_path):
    """Another seed: its runs are new jobs; seed 0's jobs are not re-run."""
    wf = tmp_path / "wf"
    shutil.copytree(micro_reference, wf, symlinks=True)
    config = yaml.safe_load((wf / "micro.yaml").read_text())
    config["seeds"] = [0, 1]
    (wf / "micro.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    got = planned(wf)
    seed1 = [(r, wc.replace("seed=0", "seed=1")) for r, wc in full_plan if stage(r) in ("train", "kernel", "svm")]
    rest = [(r, wc) for r, wc in full_plan if stage(r) in ("aggregate", "claims", "figure", "all")]
    assert got == sorted(seed1 + rest)
