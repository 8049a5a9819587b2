# Config validation, the study's plan and the named input functions.
# Only light modules are imported here (no TensorFlow, h5py or pandas): every
# cluster job parses the workflow again.

import functools
import os
import sys

# The repository's root from this file's place, not workflow.basedir: used as
# a module (`module afterkernel: snakefile: ...`), the workflow's basedir is
# the caller's.
AK_ROOT = os.path.dirname(str(workflow.current_basedir))
sys.path.insert(0, AK_ROOT)

from afterkernel import config as ak_config
from afterkernel import cost as ak_cost
from afterkernel import plan as ak_plan
from afterkernel.data import catalog as ak_data_catalog
from afterkernel.data import planning as ak_data
from afterkernel.models import module_files
from afterkernel.codehash import script_code_hash
from afterkernel.runtime import tensorflow_gpus
from afterkernel.vocabulary import KERNELS

# In place: the report's captions read the same object (snakemake.config).
# A user's data sets are read whole once, by the main process, not by every
# job re-parsing the workflow.
_resolved = ak_config.validate(
    ak_config.with_defaults(config, workflow.overwrite_configfiles), check_values=workflow.is_main_process
)
config.clear()
config.update(_resolved)

# results/<name>/ and logs/<name>/ of a named study, results/ and logs/ of the default
AK_RESULTS, AK_LOGS = ak_plan.output_roots(config)
TRAINING_RUNS = ak_plan.training_runs(config)
RUNS_BY_PATH = {run.path: run for run in TRAINING_RUNS}
KERNEL_SNAPSHOTS = ak_plan.kernel_snapshots(config)
KERNEL_RUNS = ak_plan.kernel_runs(config)
TABLE_ROWS = ak_plan.table_rows(config, AK_RESULTS)
RUN = ak_plan.RUN_WILDCARDS

# TensorFlow jobs (train, kernel) take a unit of the local `tf_gpu` resource
# where the installed TensorFlow can use a GPU of this host: each job claims a
# GPU of its own (afterkernel.runtime.claim_gpu), and the workstation profile
# (tf_gpu: 1; `--resources tf_gpu=N` with N GPUs) runs one job per GPU. Without
# one they take none and run side by side on the CPU cores.
TF_GPU_UNITS = 1 if tensorflow_gpus() else 0


def tensorflow_env(rule):
    """The conda environment of a TensorFlow rule: TensorFlow's CUDA build
    (envs/gpu.yaml) where the profile gives the rule a `gpu` resource
    (profiles/slurm-gpu, or --set-resources RULE:gpu=N), else the CPU one."""
    gpus = workflow.resource_settings.overwrite_resources.get(rule, {}).get("gpu")
    wants_gpu = gpus is not None and str(gpus).strip() not in ("", "0")
    return f"{AK_ROOT}/envs/{'gpu' if wants_gpu else 'afterkernel'}.yaml"


KERNEL_THREADS = config["kernels"].get("threads", 2)


wildcard_constraints:
    problem=r"[a-z][a-z0-9_]*-[A-Za-z0-9_-]+",
    subset=ak_plan.SUBSET_PATTERN,  # "" or .train{N|all}-test{M|all}-s{seed}: problem has no dot
    dataset="|".join(ak_data_catalog.KNOWN),
    arch=r"[A-Za-z0-9_.-]+",
    aug=r"plain|augmented",
    schedule=r"epochs|lr[0-9.e+-]+",
    seed=r"\d+",
    snapshot=r"e\d+|final",
    kernel="|".join(KERNELS),


@functools.cache  # one hash per (script, network) and parse, not per job
def code_hash(script, arch=None):
    """Hash of the package code ``scripts/{script}.py`` reaches through its
    imports (and, with ``arch``, of the user module registering that
    network), passed as a param so that editing a module re-runs exactly the
    rules that use it (Snakemake itself watches only the script)."""
    extra = module_files(config["architectures"][arch]) if arch else ()
    return script_code_hash(f"{AK_ROOT}/scripts/{script}.py", f"{AK_ROOT}/afterkernel", extra_files=extra)


def run_of(wildcards):
    path = RUN.format(**wildcards)
    if path not in RUNS_BY_PATH:
        raise ValueError(f"{path} is not a training run of this config")
    return RUNS_BY_PATH[path]


def get_data_inputs(wildcards):
    """Rule fetch_data's file (keras), else the files the problem's data are
    read from: replacing one re-runs exactly its problems."""
    return ak_data.problem_inputs(config, wildcards.problem, ak_plan.fetched_keras_file)


def get_problem_file(wildcards):
    """The problem file of the run's (problem, architecture): the full data,
    or the subset its caps (data.max_*_per_class, data.caps) select."""
    return ak_plan.problem_file(
        wildcards.problem, ak_plan.subset_of(config, wildcards.problem, wildcards.arch), root=AK_RESULTS
    )


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


# Not settings of the results: threads size the job, keep_grams only decides
# whether the Gram files outlive their SVMs. (block_size and jacobian_budget_mb
# stay: the panel sizes they set change the float32 summation order, so the
# last bits of the kernels.)
NOT_RESULT_SETTINGS = ("threads", "keep_grams")


def get_kernels_params(wildcards):
    return {k: v for k, v in config["kernels"].items() if k not in NOT_RESULT_SETTINGS}


def get_table_inputs():
    """Every training, kernel metrics and SVM file the tidy table reads."""
    return ak_plan.table_inputs(TABLE_ROWS)


def get_final_outputs():
    tables = [ak_plan.table_file(name, AK_RESULTS) for name in ("metrics.csv", "summary.csv", "claims.csv")]
    return [*tables, *get_figure_outputs()]
