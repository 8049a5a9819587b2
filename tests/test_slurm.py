"""The cluster profiles, and a real Slurm run of the micro config.

The Slurm test starts a single-node Slurm on this machine
(tools/slurm/start.sh: installs slurm-wlm and munge with apt-get if needed,
needs root), runs the micro config through the workflow profile
profiles/slurm, checks that every non-local job ran as a Slurm job with the
profile's resources, that aggregate and the figures ran on the submit host,
and that the numbers equal those of the local run
(the session's micro reference, ``--cores 2``). It is skipped only where Slurm
cannot be set up (no root, packages not installable, a Slurm of the machine's
own already configured). The daemons it started are stopped at teardown
(tools/slurm/stop.sh).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from micro import snakemake, results_content, assert_same_results, ROOT, MICRO, TABLES

PROFILES = ROOT / "profiles"
SLURM_TOOLS = ROOT / "tools" / "slurm"
SKIP = 77  # start.sh: Slurm cannot be set up on this machine


# --- the profiles (no cluster needed) ---

def load_profile(name: str) -> dict:
    return yaml.safe_load((PROFILES / name / "config.yaml").read_text())


def test_gpu_profile_is_the_slurm_profile_plus_gpus():
    cpu, gpu = load_profile("slurm"), load_profile("slurm-gpu")
    for rule in ("train", "kernel"):
        assert gpu["set-resources"].pop(rule) == {"gpu": 1}
    assert gpu == cpu


def test_slurm_profile_resources():
    profile = load_profile("slurm")
    assert profile["executor"] == "slurm" and profile["retries"] >= 1
    assert "HDF5_USE_FILE_LOCKING=FALSE" in profile["precommand"]
    for rule in ("prepare_data", "aggregate"):
        res = profile["set-resources"][rule]
        assert "attempt" in str(res["mem_mb"]) and "attempt" in str(res["runtime"]), rule
    for rule in ("train", "kernel", "svm"):  # sized by the rules' cost model (afterkernel.cost)
        assert rule not in profile["set-resources"], rule
    assert profile["groups"] == {"svm": "svm"} and profile["group-components"]["svm"] > 1
    assert "default-resources" not in profile  # left to the site (account, partition)


def dry_run(tmp_path: Path, *args: str) -> str:
    work = tmp_path / "dry"
    work.mkdir(exist_ok=True)
    proc = snakemake(work, "-n", "--configfile", str(MICRO), *args, snakefile=ROOT / "Snakefile")
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("profile", ["slurm", "slurm-gpu"])
def test_cluster_profiles_plan_the_workflow(tmp_path, profile):
    out = dry_run(tmp_path, "--workflow-profile", str(PROFILES / profile))
    assert f"Using workflow specific profile {PROFILES / profile}" in out, out[-3000:]
    assert re.search(r"^total\s+\d+", out, re.M), out[-3000:]


def test_default_profile_applies_by_itself(tmp_path):
    out = dry_run(tmp_path)
    assert re.search(r"Using workflow specific profile \S*profiles/default ", out), out[-3000:]
    # TensorFlow jobs claim the workstation's one GPU slot only where a GPU is present
    has_gpu = shutil.which("nvidia-smi") is not None and "GPU " in subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    train_jobs = re.findall(r"^rule train:\n(?:\s+.*\n)*?\s+resources: (.*)$", out, re.M)
    assert train_jobs and all(f"tf_gpu={int(has_gpu)}" in res for res in train_jobs), train_jobs


# --- a real Slurm ---

@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running single-node Slurm; its state folder (jobcomp.log: finished jobs)."""
    state = tmp_path_factory.mktemp("slurm")
    start = time.monotonic()
    proc = subprocess.run([str(SLURM_TOOLS / "start.sh"), str(state)], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode == SKIP:
        pytest.skip(f"no Slurm on this machine: {proc.stderr.strip().splitlines()[-1]}")
    try:
        if proc.returncode != 0:
            logs = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in state.glob("*.log"))
            pytest.fail(f"tools/slurm/start.sh failed ({proc.returncode}):\n{proc.stderr}\n{logs}")
        print(f"Slurm ready in {time.monotonic() - start:.1f} s")
        yield state
    finally:
        subprocess.run([str(SLURM_TOOLS / "stop.sh"), str(state)], timeout=300)


@pytest.mark.slow
def test_micro_run_on_slurm_equals_local_run(slurm, micro_reference, tmp_path):
    work = tmp_path / "slurm-run"
    work.mkdir()
    node_cpus = max(2, os.cpu_count() or 2)
    start = time.monotonic()
    proc = snakemake(
        work, "--workflow-profile", str(PROFILES / "slurm"), "--configfile", str(micro_reference / "micro.yaml"),
        # The test node: no accounting (squeue for job states), no account, few CPUs
        # (the most one job or SVM group may ask for), quick first status check.
        "--cores", str(min(node_cpus, 4)), "--slurm-status-command", "squeue", "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs",
        "--verbose", *TABLES, "figure_fig01",
        snakefile=micro_reference / "Snakefile", check=False, timeout=1500)
    seconds = time.monotonic() - start
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        queue = subprocess.run(["squeue"], capture_output=True, text=True).stdout
        ctld = (slurm / "slurmctld.log").read_text()[-3000:]
        pytest.fail(f"Slurm run failed ({proc.returncode}) after {seconds:.0f} s:\n{out[-8000:]}\n"
                    f"squeue:\n{queue}\nslurmctld.log:\n{ctld}")
    print(f"micro config on Slurm: {seconds:.0f} s")

    # Every job Snakemake did not run locally was submitted with the profile's
    # resources and the HDF5 locking switch, and finished as a Slurm job here.
    calls = re.findall(r"sbatch call: (.*)", out)
    by_rule: dict[str, list[str]] = {}
    for call in calls:
        comment = re.search(r"--comment '?rule_([A-Za-z0-9_]+?)(?:_wildcards_|'|\s|$)", call)
        assert comment, call
        by_rule.setdefault(comment.group(1), []).append(call)
        assert "export HDF5_USE_FILE_LOCKING=FALSE" in call, call
        assert "--export=ALL" in call and f"-D {work}" in call, call
    printed = Counter(re.findall(r"^\s*rule (\S+):$", out, re.M))  # jobs not run locally
    assert {"prepare_data", "train", "kernel", "svm"} <= set(printed), printed
    for rule, n in printed.items():
        if rule != "svm":
            assert len(by_rule.get(rule, [])) == n, (rule, n, sorted(by_rule))
    assert by_rule.get("svm_svm"), "the SVM jobs were not submitted as groups"
    assert len(by_rule["svm_svm"]) < printed["svm"], "every SVM group holds one SVM"
    expected = {"prepare_data": ("--mem 4000", "-t 30", "--cpus-per-task=1"),
                "train": ("--cpus-per-task=1",), "kernel": ("--cpus-per-task=2",)}
    for rule, flags in expected.items():
        for call in by_rule[rule]:
            for flag in flags:
                assert re.search(re.escape(flag) + r"(\s|$)", call), (rule, flag, call)
            # train and kernel: sized by the rules' cost model (afterkernel.cost)
            assert re.search(r"--mem \d+(\s|$)", call) and re.search(r"-t \d+(\s|$)", call), (rule, call)

    finished = [line for line in (slurm / "jobcomp.log").read_text().splitlines() if f"WorkDir={work} " in line]
    assert len(finished) == len(calls), (len(finished), len(calls), finished)
    assert all("JobState=COMPLETED" in line for line in finished), finished
    logs = work / ".snakemake" / "slurm_logs"
    assert {p.name for p in logs.iterdir()} >= {"rule_prepare_data", "rule_train", "rule_kernel"}
    for log in logs.rglob("*.log"):
        text = log.read_text()
        assert "Finished jobid" in text or "steps (100%) done" in text, log

    # The same numbers as the local run.
    assert_same_results(results_content(work), results_content(micro_reference))

    # aggregate and the figures read small files: local rules, run on the submit host.
    local = set(re.findall(r"^\s*localrule (\S+):$", out, re.M))
    submitted_light = sorted(r for r in by_rule if r == "aggregate" or r.startswith("figure"))
    assert not submitted_light and {"aggregate", "figure_fig01"} <= local, (
        f"submitted to Slurm: {submitted_light}; run locally: {sorted(local)}")
