"""The cluster profiles, and a real Slurm run of the micro config.

The Slurm test starts a single-node Slurm on this machine
(tools/slurm/start.sh: installs slurm-wlm and munge with apt-get if needed,
needs root), runs the micro config through the workflow profile
profiles/slurm, checks that every non-local job ran as a Slurm job with the
profile's resources, that aggregate and the figures ran on the submit host,
and that the numbers equal those of the local run
(the session's micro reference, ``--cores 2``). A second Slurm test cancels a
running training job with ``scancel`` once its checkpoint holds two epochs:
the profile's retries re-submit it, it resumes from the checkpoint and writes
the training file of an uninterrupted local run, bit for bit. The Slurm tests
are skipped only where Slurm cannot be set up (no root, packages not
installable, a Slurm of the machine's own already configured). The daemons
the fixture started are stopped at teardown (tools/slurm/stop.sh).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from micro import (MICRO, ROOT, SNAKEMAKE_ENV, TABLES, assert_same_results, checkpoint_epoch, copy_workflow,
                   h5_content, results_content, snakemake, snakemake_command)

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


# --- a training cancelled with scancel, retried by the profile ---

# The epochs-study run of the micro config made slow enough to be cancelled
# mid-run: 1,000 examples and a 1024-1024 network, about a second per epoch
# on the one thread a training job gets, for 15 epochs (~20 s).
RESUMED = "mnist-3v8/fc/plain/epochs/seed0"
RESUMED_EPOCHS = 15


def resumed_training_config(path: Path) -> Path:
    config = yaml.safe_load(MICRO.read_text())
    config["data"]["max_train_per_class"] = 500
    config["architectures"]["fc"]["widths"] = [1024, 1024]
    config["studies"]["epochs"]["epochs"] = [0, 1, RESUMED_EPOCHS]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def jobs_of(work: Path) -> dict[str, tuple[str, str]]:
    """The Slurm jobs that run in ``work`` (the local Slurm may hold other
    jobs): id -> (state, comment), finished ones included while Slurm keeps
    them (MinJobAge)."""
    out = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i|%T|%Z|%k"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    rows = (line.split("|", 3) for line in out.splitlines())
    return {job: (state, comment) for job, state, workdir, comment in rows if workdir == str(work)}


def assert_slurm_alive(state: Path, log: Path):
    """Fail, rather than wait, if the daemons the fixture started are gone: a
    Slurm restarted meanwhile (tools/slurm/start.sh stops an earlier one) has
    forgotten the jobs, and the plugin, which takes a job squeue does not list
    for one not yet queued, would wait for them for ever."""
    started = state / "started"
    daemons = dict(line.split() for line in started.read_text().splitlines()) if started.exists() else {}
    gone = [name for name in ("slurmctld", "slurmd") if not Path(f"/proc/{daemons.get(name, 'none')}").exists()]
    if gone:
        pytest.fail(f"the test's Slurm lost {gone} (stopped or restarted by someone else?):\n{log.read_text()[-3000:]}")


def stop_snakemake(proc: subprocess.Popen):
    """End a Snakemake run that is still going: SIGTERM (it cancels its Slurm
    jobs and ends its local ones), then SIGKILL to its process group."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@pytest.mark.slow
def test_cancelled_training_resumes_on_slurm(slurm, tmp_path):
    """A training job cancelled with scancel after some epochs is re-submitted
    by the profile's retries and resumes from its checkpoint, ending with the
    training file of an uninterrupted local run, bit for bit."""
    from afterkernel.training.checkpoint import checkpoint_path

    wf = copy_workflow(tmp_path / "workflow") / "Snakefile"
    config = str(resumed_training_config(tmp_path / "resumed.yaml"))
    target = f"results/training/{RESUMED}.h5"
    reference, work = tmp_path / "whole", tmp_path / "slurm-run"
    checkpoint = checkpoint_path(work / target)
    runs = {}  # name -> (process, log): the local reference runs beside the Slurm run (one thread each)
    for name, args in (("whole", ("--cores", "2")),
                       ("slurm-run", ("--workflow-profile", str(PROFILES / "slurm"), "--cores", "2",
                                      "--slurm-status-command", "squeue", "--slurm-no-account",
                                      "--slurm-init-seconds-before-status-checks", "2",
                                      "--slurm-keep-successful-logs"))):
        (tmp_path / name).mkdir()
        log = tmp_path / f"{name}.log"
        with open(log, "w") as out:
            runs[name] = subprocess.Popen(
                snakemake_command(tmp_path / name, "--configfile", config, *args, target, snakefile=wf),
                cwd=tmp_path / name, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env=SNAKEMAKE_ENV), log
    (proc, log), start = runs["slurm-run"], time.monotonic()
    try:
        # The training job runs and has stored at least two epochs: cancel it.
        deadline = start + 120
        while True:
            train = [job for job, (state, comment) in jobs_of(work).items()
                     if state == "RUNNING" and comment.startswith("rule_train_")]
            stored = checkpoint_epoch(checkpoint)
            if train and stored >= 2:
                break
            assert_slurm_alive(slurm, log)
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no running training job with a checkpoint after {time.monotonic() - start:.0f} s "
                            f"(snakemake: {proc.poll()}):\n{log.read_text()[-5000:]}\njobs: {jobs_of(work)}")
            time.sleep(0.2)
        assert len(train) == 1, train
        (cancelled,) = train
        subprocess.run(["scancel", cancelled], check=True, timeout=30)
        print(f"cancelled Slurm job {cancelled} at epoch {stored}, {time.monotonic() - start:.0f} s after the start")

        # Snakemake sees the job CANCELLED, re-submits it (profile: retries) and finishes.
        noticed = f"SLURM-job '{cancelled}' failed, SLURM status is: 'CANCELLED'"
        deadline = time.monotonic() + 150
        while proc.poll() is None:
            assert_slurm_alive(slurm, log)
            if noticed not in log.read_text() and cancelled not in jobs_of(work):
                pytest.fail(f"Slurm forgot job {cancelled} before Snakemake saw it cancelled (the plugin takes a "
                            f"job squeue does not list for one not yet queued):\n{log.read_text()[-5000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"snakemake still running 150 s after the cancel:\n{log.read_text()[-5000:]}\n"
                            f"jobs: {jobs_of(work)}")
            time.sleep(1)
        whole, whole_log = runs["whole"]
        try:
            whole.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"the local reference run did not finish in time:\n{whole_log.read_text()[-5000:]}")
    finally:
        for run, _ in runs.values():
            stop_snakemake(run)
        try:  # what the stopped run left in the queue (only this test's jobs)
            left = [job for job, (state, _) in jobs_of(work).items() if state in ("PENDING", "RUNNING")]
        except subprocess.SubprocessError:  # Slurm itself is gone: nothing to cancel
            left = []
        if left:
            subprocess.run(["scancel", *left], timeout=30)
    assert whole.returncode == 0, whole_log.read_text()[-5000:]
    out = log.read_text()
    assert proc.returncode == 0, out[-5000:]
    print(f"cancelled and resumed training on Slurm: {time.monotonic() - start:.0f} s")

    assert noticed in out, out[-5000:]
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", out)
    finished = {line.split("JobId=")[1].split()[0]: line.split("JobState=")[1].split()[0]
                for line in (slurm / "jobcomp.log").read_text().splitlines() if f"WorkDir={work} " in line}
    assert finished.pop(cancelled) == "CANCELLED" and cancelled in submitted, (cancelled, submitted, finished)
    assert set(finished.values()) == {"COMPLETED"} and len(finished) == len(submitted) - 1, (submitted, finished)

    job_log = (work / "logs" / "training" / f"{RESUMED}.log").read_text()
    assert "resuming from epoch " in job_log, job_log[-3000:]
    resumed_at = int(job_log.split("resuming from epoch ")[1].split()[0])
    assert stored <= resumed_at < RESUMED_EPOCHS, (stored, resumed_at, job_log[-3000:])
    assert not checkpoint.exists(), "the checkpoint outlived the finished training"
    assert h5_content(work / target) == h5_content(reference / target)
