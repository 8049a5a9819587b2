"""Devices and set-up (afterkernel.runtime), the install's TensorFlow build
per platform, and what the workflow does at parse time."""

from __future__ import annotations

import fcntl
import re
import tomllib
from pathlib import Path

import pytest

from afterkernel import runtime

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gpu_host(tmp_path, monkeypatch):
    """A host whose GPU lock files live in ``tmp_path``; no GPU claimed yet."""
    monkeypatch.setattr(runtime, "GPU_LOCK_DIR", tmp_path)
    monkeypatch.setattr(runtime, "_claimed", [])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return tmp_path


def test_each_job_claims_a_free_gpu_of_its_own(gpu_host, monkeypatch):
    held = open(gpu_host / "afterkernel-gpu0.lock", "w")  # another job holds GPU 0
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert runtime.claim_gpu(2) == 1
    assert runtime.os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    assert runtime.claim_gpu(2) is None  # one GPU per process
    held.close()


def test_all_gpus_taken_runs_on_the_cpu(gpu_host):
    held = [open(gpu_host / f"afterkernel-gpu{i}.lock", "w") for i in range(2)]
    for f in held:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert runtime.claim_gpu(2) is None
    assert runtime.os.environ["CUDA_VISIBLE_DEVICES"] == ""  # TensorFlow sees no GPU


def test_a_slurm_gpu_is_claimed_by_its_id(gpu_host, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert runtime.claim_gpu(1) == 3 and runtime.os.environ["CUDA_VISIBLE_DEVICES"] == "3"


def test_no_gpu_claims_nothing(gpu_host):
    assert runtime.claim_gpu(0) is None and "CUDA_VISIBLE_DEVICES" not in runtime.os.environ


def test_cpu_build_uses_no_gpu():
    # this project's CI installs tensorflow-cpu: its jobs never claim a GPU
    from importlib import metadata

    metadata.distribution("tensorflow-cpu")
    assert not runtime.tensorflow_gpu_build() and runtime.tensorflow_gpus() == 0


def test_tensorflow_set_up_turns_tf32_off():
    tf = pytest.importorskip("tensorflow")
    runtime.configure_tensorflow(1)
    assert not tf.config.experimental.tensor_float_32_execution_enabled()


@pytest.mark.parametrize("platform,machine,wanted", [
    ("linux", "x86_64", "tensorflow-cpu"), ("win32", "AMD64", "tensorflow-cpu"),
    ("linux", "aarch64", "tensorflow"), ("darwin", "arm64", "tensorflow")])
def test_cpu_extra_installs_one_tensorflow_per_platform(platform, machine, wanted):
    """tensorflow-cpu has wheels for Linux x86_64 and Windows only."""
    from packaging.requirements import Requirement

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    env = {"sys_platform": platform, "platform_machine": machine}
    chosen = [r.name for r in map(Requirement, extras["cpu"]) if r.marker is None or r.marker.evaluate(env)]
    assert chosen == [wanted]


def test_parse_time_code_spawns_no_subprocess():
    """Every cluster job parses the workflow again: the rules and the modules
    they import at parse time run no external command."""
    parse_time = [*(ROOT / "rules").glob("*.smk"), ROOT / "Snakefile"] + [
        ROOT / "afterkernel" / f"{m}.py" for m in ("config", "plan", "codehash", "runtime", "vocabulary")
    ] + list((ROOT / "afterkernel" / "figures").glob("registry.py"))
    for path in parse_time:
        assert not re.search(r"import subprocess|subprocess\.|os\.system\(|os\.popen\(|Popen\(", path.read_text()), path.name
