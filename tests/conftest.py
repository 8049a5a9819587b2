"""Shared fixtures: the project root, the configs, the optional shared data."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def shared_data_dir() -> Path | None:
    """The read-only folder of full data sets beside the project, if present."""
    env = os.environ.get("AFTERKERNEL_SHARED_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    return path if (path / "mnist.npz").is_file() else None


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def default_config() -> dict:
    with open(ROOT / "config.yaml") as f:
        return yaml.safe_load(f)


@pytest.fixture
def tiny_config() -> dict:
    with open(ROOT / "tests" / "configs" / "tiny.yaml") as f:
        return copy.deepcopy(yaml.safe_load(f))


@pytest.fixture(scope="session")
def micro_reference(tmp_path_factory) -> Path:
    """A copy of the workflow that has run the micro config to the end
    (``--cores 2``), shared by the re-execution, fault and Slurm tests."""
    import shutil

    from micro import copy_workflow, snakemake

    base = tmp_path_factory.getbasetemp() / "micro-reference"
    if not (base / ".complete").exists():
        shutil.rmtree(base, ignore_errors=True)
        copy_workflow(base)
        snakemake(base, "--configfile", "micro.yaml", "--cores", "2")
        (base / ".complete").touch()
    return base
