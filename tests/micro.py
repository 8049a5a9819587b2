"""Helpers for the tests that run Snakemake: :func:`snakemake` (every test
that runs or plans the workflow goes through it), and the micro config
(tests/configs/micro.yaml) run in a copy of this tree by test_reexecution.py,
test_faults.py and test_slurm.py. The finished reference run they share is
the ``micro_reference`` fixture (conftest.py)."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MICRO = ROOT / "tests" / "configs" / "micro.yaml"
# What a copy of the workflow needs (profiles: profiles/default is the
# workflow profile Snakemake applies by itself, as in the real tree).
WORKFLOW_ITEMS = ("Snakefile", "rules", "scripts", "afterkernel", "report", "profiles", "envs", "config.yaml")


SNAKEMAKE_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def snakemake_command(workdir: Path, *args: str, snakefile: Path | None = None) -> list[str]:
    """The command line running Snakemake on the workflow at ``snakefile``
    (default: the copy in ``workdir``) in ``workdir``."""
    snakefile = snakefile or workdir / "Snakefile"
    return [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir),
            "--nocolor", *args]


def snakemake(workdir: Path, *args: str, snakefile: Path | None = None, check: bool = True,
              timeout: int = 1200) -> subprocess.CompletedProcess:
    """Run :func:`snakemake_command`; with ``check`` a failure fails the test
    with the end of Snakemake's output."""
    proc = subprocess.run(snakemake_command(workdir, *args, snakefile=snakefile), cwd=workdir,
                          env=SNAKEMAKE_ENV, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                    f"{proc.stderr[-8000:]}")
    return proc


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not results) to ``dest``, with the micro config as ``micro.yaml``."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for item in WORKFLOW_ITEMS:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / item)
    shutil.copy2(MICRO, dest / "micro.yaml")
    return dest


TABLES = ("results/tables/metrics.csv", "results/tables/summary.csv", "results/tables/claims.csv")  # targets: no figures
TIMING = "seconds"  # attributes and datasets named seconds* hold wall times


def h5_content(path: Path) -> dict:
    """Every dataset's bytes and every attribute of an HDF5 file, timings left out."""
    out = {}

    def attrs(obj, name):
        for key, value in obj.attrs.items():
            if not key.startswith(TIMING):
                out[f"{name}@{key}"] = np.asarray(value).tobytes() + str(np.asarray(value).dtype).encode()

    with h5py.File(path, "r") as f:
        attrs(f, "/")

        def visit(name, obj):
            attrs(obj, name)
            if isinstance(obj, h5py.Dataset) and not name.rsplit("/", 1)[-1].startswith(TIMING):
                out[name] = obj[()].tobytes() + str(obj.dtype).encode()

        f.visititems(visit)
    return out


NUMBERS = ("results/data/", "results/training/", "results/kernels/", "results/svm/", "results/tables/")


def results_content(workdir: Path, keep=lambda rel: rel.startswith(NUMBERS)) -> dict[str, object]:
    """The study's numbers: HDF5 files and tables under ``workdir/results``
    (figures and benchmarks left out), for the paths ``keep`` accepts."""
    out = {}
    for path in sorted((workdir / "results").rglob("*")):
        rel = path.relative_to(workdir).as_posix()
        if not path.is_file() or path.name.startswith(".") or not keep(rel):
            continue
        if path.suffix == ".h5":
            out[rel] = h5_content(path)
        elif path.suffix == ".csv":
            out[rel] = path.read_text()
    return out


def assert_same_results(got: dict, want: dict):
    assert sorted(got) == sorted(want), (sorted(set(got) ^ set(want)))
    differ = [path for path in want if got[path] != want[path]]
    assert not differ, f"results differ from the reference run: {differ}"


def checkpoint_epoch(path: Path) -> int:
    """The epoch of the training checkpoint ``path`` (0: none yet)."""
    try:
        with h5py.File(path, "r") as f:
            return int(f.attrs["epoch"])
    except (OSError, KeyError):
        return 0


def caption_index(text: str) -> list[dict[str, str]]:
    """The panel index of a figure's report caption (its ``csv-table``), markup escapes undone."""
    lines = text.split(".. csv-table::\n", 1)[1].splitlines()
    header = [h.strip() for h in lines[0].removeprefix("   :header:").split(",")]
    rows = csv.reader(line.strip() for line in lines[2:] if line.strip())
    return [{k: re.sub(r"\\(.)", r"\1", v) for k, v in zip(header, row)} for row in rows]


def job_counts(stdout: str) -> dict[str, int]:
    """Rule -> jobs, from the "Job stats" table of a Snakemake run or dry run."""
    table = stdout.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
