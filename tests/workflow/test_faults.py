"""Faults: a run killed mid-job, and one failing job among many.

The runs use the workflow snapshot of the session's micro reference run (a
copy of this tree), so that their numbers compare with that run's.

* SIGKILL to the whole Snakemake process group while a kernel job runs leaves
  no file at a final output path that a later job could take for finished
  (outputs are written to hidden ``.NAME.*.part`` files and renamed;
  Snakemake marks the running job's outputs incomplete); ``--unlock`` then
  ``--rerun-incomplete`` finishes the run, re-running only what had not
  finished, with the same results as an uninterrupted run.
* A training job SIGKILLed mid-run (with the Snakemake process group)
  resumes on the re-run from the checkpoint it saved while training and
  writes the same training file as an uninterrupted run.
* With ``--keep-going``, one failing job (a corrupt input file for one
  problem's training jobs) loses no other job's results.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from pathlib import Path

import h5py
import pytest
import yaml

from micro import (MICRO, SNAKEMAKE_ENV, TABLES, assert_same_results, checkpoint_epoch, copy_workflow, results_content, snakemake,
                   snakemake_command)


pytestmark = pytest.mark.slow


# --- helpers ---

def incomplete_markers(workdir: Path) -> set[str]:
    """The outputs Snakemake has marked incomplete (.snakemake/incomplete/<base64 path>)."""
    base = workdir / ".snakemake" / "incomplete"
    out = set()
    for p in base.rglob("*") if base.is_dir() else []:
        if p.is_file() and p.name != "migration_underway":
            b64 = "".join(part.lstrip("@") for part in p.relative_to(base).parts)
            out.add(base64.urlsafe_b64decode(b64).decode())
    return out


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text``."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if text in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def wait_for(predicate, timeout: float, proc: subprocess.Popen, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"snakemake ended ({proc.returncode}) before {what}:\n{log.read_text()[-5000:]}")
        time.sleep(0.1)
    pytest.fail(f"no {what} after {timeout} s:\n{log.read_text()[-5000:]}")


# --- tests ---

def test_killed_run_leaves_no_false_outputs_and_resumes(micro_reference, tmp_path):
    wf, config = micro_reference / "Snakefile", str(micro_reference / "micro.yaml")
    work = tmp_path / "killed"
    work.mkdir()
    log = tmp_path / "killed.log"
    cmd = snakemake_command(work, "--configfile", config, "--cores", "2", *TABLES, snakefile=wf)
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env=SNAKEMAKE_ENV)
    try:
        # A kernel job has started once its log file exists (its script opens it first).
        kernel_logs = wait_for(lambda: sorted((work / "logs" / "kernels").rglob("*.log")), 600, proc,
                               "kernel job", log)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    time.sleep(1)
    survivors = processes_mentioning(str(work))
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, "processes of the killed run outlived SIGKILL to its process group"

    # The running kernel jobs left nothing at their final paths; Snakemake marked them.
    killed = [p.relative_to(work / "logs" / "kernels").with_suffix("").as_posix() for p in kernel_logs]
    marked = incomplete_markers(work)
    for job in killed:
        for kind in ("gram", "metrics"):
            out = f"results/kernels/{job}.{kind}.h5"
            assert not (work / out).exists(), f"killed job left {out}"
            assert out in marked, f"{out} not marked incomplete ({sorted(marked)})"
    # Everything at a final path is a complete, readable file; temporaries are hidden .part files.
    for path in (work / "results").rglob("*"):
        if path.is_file() and path.name.endswith(".part"):
            assert path.name.startswith("."), path
        elif path.suffix == ".h5":
            with h5py.File(path, "r") as f:
                assert "code_version" in f.attrs, path
    finished = {p: p.stat().st_mtime_ns for p in (work / "results").rglob("*.h5")
                if not p.name.endswith(".gram.h5") and not p.name.startswith(".")}  # not checkpoints
    assert any("training" in p.parts for p in finished), "no training job had finished"

    # Recovery: release the dead run's lock, then finish what it left incomplete.
    snakemake(work, "--unlock", "--configfile", config, snakefile=wf)
    snakemake(work, "--configfile", config, "--cores", "2", "--rerun-incomplete", *TABLES,
                        snakefile=wf)
    redone = [str(p) for p, mtime in finished.items() if p.stat().st_mtime_ns != mtime]
    assert not redone, f"jobs finished before the kill were re-run: {redone}"
    assert not incomplete_markers(work)
    assert not list((work / "results").rglob("*.part")), "temporary files left behind"
    assert_same_results(results_content(work), results_content(micro_reference))


# The learning-rate run of the micro config, trained long enough to be killed mid-way.
LONG_RUN = "mnist-3v8/fc/plain/lr0.1/seed0"


def long_training_config(work: Path) -> str:
    config = yaml.safe_load(MICRO.read_text())
    config["training"].update(loss_target=1e-9, max_epochs=400)  # never reached: 400 epochs
    (work / "long.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return str(work / "long.yaml")


def long_training_reference(tmp_path: Path) -> tuple[Path, str, Path, Path]:
    """A copy of the workflow that has trained the long run locally, in
    ``tmp_path/whole``; its Snakefile, the run's training file (relative),
    a new empty work folder and the checkpoint path of the run there."""
    from afterkernel.training.checkpoint import checkpoint_path

    wf = copy_workflow(tmp_path / "workflow") / "Snakefile"
    target = f"results/training/{LONG_RUN}.h5"
    reference, work = tmp_path / "whole", tmp_path / "work"
    for d in (reference, work):
        d.mkdir()
    snakemake(reference, "--configfile", long_training_config(reference), "--cores", "2", target, snakefile=wf)
    return wf, target, work, checkpoint_path(work / target)


def test_killed_training_resumes_from_its_checkpoint(tmp_path):
    wf, target, work, checkpoint = long_training_reference(tmp_path)
    config = long_training_config(work)
    log = tmp_path / "killed.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(snakemake_command(work, "--configfile", config, "--cores", "2", target, snakefile=wf),
                                cwd=work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env=SNAKEMAKE_ENV)
    try:
        killed_after = wait_for(lambda: checkpoint_epoch(checkpoint) >= 2 and checkpoint_epoch(checkpoint), 600,
                                proc, "training checkpoint", log)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert not (work / target).exists() and checkpoint.exists()

    snakemake(work, "--unlock", "--configfile", config, snakefile=wf)
    snakemake(work, "--configfile", config, "--cores", "2", "--rerun-incomplete", target, snakefile=wf)
    job_log = (work / "logs" / "training" / f"{LONG_RUN}.log").read_text()
    resumed_at = int(job_log.split("resuming from epoch ")[1].split()[0])
    assert killed_after <= resumed_at < 400, job_log[-3000:]
    assert not checkpoint.exists(), "the checkpoint outlived the finished training"
    assert_same_results(results_content(work), results_content(tmp_path / "whole"))


def test_keep_going_loses_no_other_results(micro_reference, tmp_path):
    """A second problem whose data file is corrupt: its training jobs fail,
    every job of the first problem completes with the reference's numbers."""
    work = tmp_path / "keepgoing"
    work.mkdir()
    config = yaml.safe_load(MICRO.read_text())
    config["problems"] = ["mnist-3v8", "mnist-5v6"]
    for study in ("epochs", "learning_rate"):
        config["studies"][study]["pairs"].append(["mnist-5v6", "fc"])
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    corrupt = work / "results" / "data" / "mnist-5v6.train16-test8-s0.h5"  # the micro config's caps
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"this is not an HDF5 file\n" * 10)

    proc = snakemake(work, "--configfile", "config.yaml", "--cores", "2", "--keep-going",
                     snakefile=micro_reference / "Snakefile", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, "the run with a corrupt input succeeded"
    assert "Error in rule train" in output, output[-5000:]

    # The failed jobs left nothing; the tables (which need every job) were not made.
    assert not list((work / "results").rglob("mnist-5v6/**/*.h5"))
    assert not (work / "results" / "tables" / "metrics.csv").exists()
    assert not list((work / "results").rglob("*.part")), "a failed job left a temporary file"
    assert corrupt.read_bytes().startswith(b"this is not"), "the input file was touched"
    # Every job of the healthy problem ran to the end, with the reference's numbers.
    jobs = ("results/data/", "results/training/", "results/kernels/", "results/svm/")
    got = results_content(work, keep=lambda rel: rel.startswith(jobs) and "mnist-5v6" not in rel)
    want = results_content(micro_reference, keep=lambda rel: rel.startswith(jobs))
    assert_same_results(got, want)
