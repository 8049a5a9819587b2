# Config validation, the study's plan and the named input functions.
# Only light modules are imported here (no TensorFlow): every cluster job
# parses the workflow again.

import hashlib
import sys

sys.path.insert(0, workflow.basedir)

from afterkernel import config as ak_config
from afterkernel import plan as ak_plan

config = ak_config.validate(config)

TRAINING_RUNS = ak_plan.training_runs(config)
RUNS_BY_PATH = {run.path: run for run in TRAINING_RUNS}
KERNEL_SNAPSHOTS = ak_plan.kernel_snapshots(config)
KERNEL_RUNS = ak_plan.kernel_runs(config)
ROWS = ak_plan.rows(config)


def _gpu_count():
    """GPUs on this host, from `nvidia-smi -L` (no TensorFlow at parse time)."""
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in out.splitlines())


# TensorFlow jobs (train, kernel) take a unit of the local `tf_gpu` resource
# where a GPU is present: TensorFlow claims the whole GPU memory, so the
# workstation profile (tf_gpu: 1) runs them one at a time. Without a GPU they
# take none and run side by side on the CPU cores.
TF_GPU_UNITS = 1 if _gpu_count() else 0


wildcard_constraints:
    problem=r"(mnist|cifar10)-[a-z0-9]+(v|-)[a-z0-9]+",
    arch=r"[A-Za-z0-9_.-]+",
    aug=r"plain|augmented",
    schedule=r"epochs|lr[0-9.e+-]+",
    seed=r"\d+",
    snapshot=r"e\d+|final",
    kernel=r"after|conjugate",


def code_hash(*modules):
    """Hash of the package modules a rule imports, passed as a param so that
    editing one of them re-runs exactly the rules that use it."""
    h = hashlib.sha256()
    for module in sorted(modules):
        with open(f"{workflow.basedir}/afterkernel/{module}.py", "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


RUN = "{problem}/{arch}/{aug}/{schedule}/seed{seed}"


def run_of(wildcards):
    path = RUN.format(**wildcards)
    if path not in RUNS_BY_PATH:
        raise ValueError(f"{path} is not a training run of this config")
    return RUNS_BY_PATH[path]


def get_training_params(wildcards):
    run = run_of(wildcards)
    return ak_plan.training_params(config, run, TRAINING_RUNS[run])


def gram_output(path):
    """Gram files are temporary (deleted once the SVMs have read them) unless
    the config keeps them: at paper scale they would fill the disk."""
    return path if config["kernels"]["keep_grams"] else temp(path)


def get_kernel_snapshots(wildcards):
    """The snapshots of a run whose kernels the studies need, in epoch order."""
    return KERNEL_RUNS[run_of(wildcards)]


def get_kernels_params(wildcards):
    # threads size the job, they are not a setting of the results
    return {k: v for k, v in config["kernels"].items() if k != "threads"}


KERNEL_THREADS = config["kernels"].get("threads", 2)


def get_svm_outputs():
    return [
        f"results/svm/{run.path}/{snapshot}.{kernel}.h5"
        for run, snapshot in KERNEL_SNAPSHOTS
        for kernel in ak_plan.KERNELS
    ]


def get_kernel_metrics_outputs():
    return [f"results/kernels/{run.path}.metrics.h5" for run in KERNEL_RUNS]


def get_training_outputs():
    return [f"results/training/{run.path}.h5" for run in TRAINING_RUNS]


def get_rows_param():
    """The tidy table's rows: which study each (run, snapshot) belongs to."""
    return [
        {
            "study": row.study,
            "run": row.run.path,
            "problem": row.run.problem,
            "architecture": row.run.arch,
            "augmentation": row.run.augmented,
            "learning_rate": row.run.learning_rate,
            "seed": row.run.seed,
            "snapshot": row.snapshot,
            "epoch": row.epoch,
            "kernels": row.kernels,
        }
        for row in ROWS
    ]


def get_final_outputs():
    return ["results/tables/metrics.csv", "results/tables/summary.csv", "results/tables/claims.csv",
            *get_figure_outputs()]
