"""The workflow as the Snakemake ecosystem expects it: usable as a module from
another workflow, formatted by snakefmt, clean under ``snakemake --lint``,
licensed, and the GPU profile deploying TensorFlow's CUDA build."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from micro import SNAKEMAKE_ENV, job_counts, snakemake


def test_usable_as_a_module(root, tmp_path):
    """A caller's Snakefile with `module afterkernel` and `use rule *` plans
    the default study exactly as the workflow itself does."""
    caller = tmp_path / "caller"
    caller.mkdir()
    (caller / "Snakefile").write_text(
        f'module afterkernel:\n    snakefile:\n        "{root / "Snakefile"}"\n    config:\n        config\n\n\n'
        "use rule * from afterkernel\n"
    )
    as_module = snakemake(caller, "-n", "--cores", "1")
    itself = snakemake(tmp_path, "-n", "--cores", "1", snakefile=root / "Snakefile")
    assert job_counts(as_module.stdout) == job_counts(itself.stdout)
    assert job_counts(as_module.stdout)["train"] > 0


def test_snakefmt_clean(root):
    snakefmt = Path(sys.executable).with_name("snakefmt")
    proc = subprocess.run([str(snakefmt), "--check", "."], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lint_clean(root, tmp_path):
    proc = snakemake(tmp_path, "--lint", snakefile=root / "Snakefile", check=False)
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_license_is_the_one_pyproject_names(root):
    text = (root / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0" in text
    assert 'license = {text = "Apache-2.0"}' in (root / "pyproject.toml").read_text()


def conda_envs_of(root: Path, workdir: Path, *args: str) -> set[str]:
    """The conda environment files the workflow's rules use under ``args``:
    `--containerize` hashes each before it calls conda (which may be absent:
    its exit status is not looked at)."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), "--directory", str(workdir),
         "--containerize", *args],
        cwd=workdir, env=SNAKEMAKE_ENV, capture_output=True, text=True, timeout=600,
    )
    found = set(re.findall(r"Hashing conda environment \S*?envs/(\w+)\.yaml", proc.stdout + proc.stderr))
    assert found, proc.stdout[-2000:] + proc.stderr[-2000:]
    return found


def test_gpu_profile_deploys_the_cuda_build(root, tmp_path):
    assert conda_envs_of(root, tmp_path, "--workflow-profile", str(root / "profiles/slurm-gpu")) == {
        "afterkernel", "gpu"}
    assert conda_envs_of(root, tmp_path, "--workflow-profile", str(root / "profiles/slurm")) == {"afterkernel"}


#: what only the workflow's jobs need (pyproject.toml); pandas is left out: the
#: Slurm executor plugin, when installed, imports it itself (its own dependency)
JOB_ONLY = ("tensorflow", "keras", "h5py", "matplotlib", "scipy", "seaborn", "PIL", "sklearn")


def test_planning_needs_only_snakemake_and_numpy(root, tmp_path):
    """The README: the environment that plans and submits needs snakemake and
    numpy. Every package only the jobs need is made unimportable here."""
    blocked = tmp_path / "blocked"
    for name in JOB_ONLY:
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is not for planning')\n")
    env = dict(SNAKEMAKE_ENV, PYTHONPATH=str(blocked))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), "--directory", str(tmp_path),
         "-n", "--cores", "1", "--configfile", str(root / "configs/paper.yaml")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0 and "Job stats" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]


def test_readme_is_short_and_its_timing_is_the_measured_one(root):
    """The README a newcomer reads: about 200 lines; its default-run time is
    the committed measurement (benchmarks/results.json), not a typed number."""
    import json

    readme = (root / "README.md").read_text()
    assert len(readme.splitlines()) <= 210
    entries = {e["name"]: e["value"] for e in json.loads((root / "benchmarks/results.json").read_text())}
    assert "under ten minutes" in " ".join(readme.split()) and entries["default_run_minutes"] < 10
    assert "`default_run_minutes`" in readme
