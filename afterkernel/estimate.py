"""What a config costs: ``python -m afterkernel.estimate CONFIG [--gpu] [--cores N]``.

Prints, per rule, the jobs, their CPU-hours (GPU-hours for ``train`` and
``kernel`` with ``--gpu``), the peak memory of its largest job, the disk its
results keep and its temporary Gram files' peak, then a total line. The
numbers are :mod:`afterkernel.cost`'s model (constants in ``cost.COSTS``);
learning-rate runs are counted at the epochs the fitted model
(:func:`afterkernel.cost.epochs_to_target`) gives them, with the
``training.max_epochs`` cap (the Slurm requests' bound) shown beside it.
With ``--cores N``, the wall time on N cores: the CPU-hours spread over the
cores, or the longest job where that is longer.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from typing import Mapping

from afterkernel import cost, plan
from afterkernel.config import ConfigError, load
from afterkernel.figures import drawn_figures

#: jobs queued or running at once in the cluster profiles (``jobs: 100``):
#: at most this many temporary Gram files exist together
CONCURRENT_JOBS = 100


@dataclass(frozen=True)
class RuleCost:
    rule: str
    jobs: int
    hours: float  # CPU-hours, or GPU-hours where ``gpu``
    gpu: bool
    peak_mem_gb: float  # the largest job's
    disk_gb: float  # results kept
    temp_gb: float  # temporary files at their peak
    longest_h: float  # the longest job's hours


def _sum(rule: str, costs: list[cost.JobCost], gpu: bool = False, temp_gb: float = 0.0,
         jobs: int | None = None) -> RuleCost:
    seconds = [j.gpu_s if gpu else j.cpu_s for j in costs]
    return RuleCost(rule, len(costs) if jobs is None else jobs, sum(seconds) / 3600, gpu,
                    max((j.mem_mb for j in costs), default=0) / 1e3, sum(j.disk_mb for j in costs) / 1e3, temp_gb,
                    max(seconds, default=0) / 3600)


def _gram_peak_gb(kernel_costs: list[cost.JobCost], keep: bool) -> float:
    """Every Gram file if kept, else the largest CONCURRENT_JOBS of them
    (each is deleted once its SVMs have read it)."""
    sizes = sorted((j.temp_mb for j in kernel_costs), reverse=True)
    return sum(sizes if keep else sizes[:CONCURRENT_JOBS]) / 1e3


def _problem_files(config: Mapping, training) -> list[tuple[str, str]]:
    """One (problem, architecture) per problem file the runs read (one per subset, data.caps)."""
    files: dict[tuple[str, str], tuple[str, str]] = {}
    for run in training:
        files.setdefault((run.problem, plan.subset_of(config, run.problem, run.arch)), (run.problem, run.arch))
    return list(files.values())


def estimate(config: Mapping, gpu: bool = False) -> list[RuleCost]:
    """The cost of every rule of a validated config's workflow."""
    training = plan.training_runs(config)
    kernel_runs = plan.kernel_runs(config)
    snapshots = plan.kernel_snapshots(config)
    rows = plan.table_rows(config)
    kernels = [cost.kernel_cost(config, run, snaps) for run, snaps in kernel_runs.items()]
    figures = len(drawn_figures(config["studies"]))
    keep = bool(config["kernels"]["keep_grams"])
    return [
        _sum("prepare_data", [cost.data_cost(config, p, a) for p, a in _problem_files(config, training)]),
        _sum("train", [cost.train_cost(config, run, epochs, bound=False) for run, epochs in training.items()], gpu),
        _sum("kernel", kernels, gpu, _gram_peak_gb(kernels, keep)),
        _sum("svm", [cost.svm_cost(config, run) for run, _ in snapshots for _kernel in range(2)]),
        _sum("aggregate, claims, figures", [cost.local_cost(len(rows), figures)], jobs=2 + figures),
    ]


def _round(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def format_table(rules: list[RuleCost], gpu: bool = False) -> str:
    unit = "GPU-hours" if gpu else "CPU-hours"
    lines = [f"{'rule':<28}{'jobs':>7}{unit:>14}{'peak mem GB':>13}{'disk GB':>10}{'temp GB':>10}"]
    for r in rules:
        hours = f"{r.hours:,.1f}" + (" (GPU)" if r.gpu else "")
        lines.append(f"{r.rule:<28}{r.jobs:>7,}{hours:>14}{r.peak_mem_gb:>13.1f}{r.disk_gb:>10.1f}"
                     f"{r.temp_gb:>10.1f}")
    cpu = sum(r.hours for r in rules if not r.gpu)
    gpu_h = sum(r.hours for r in rules if r.gpu)
    disk = sum(r.disk_gb + r.temp_gb for r in rules)
    total = f"total: {sum(r.jobs for r in rules):,} jobs, {_round(cpu)} CPU-hours"
    total += f" + {_round(gpu_h)} GPU-hours" if gpu else ""
    total += f", {max(r.peak_mem_gb for r in rules):.1f} GB largest job, {_round(disk)} GB disk at the peak"
    return "\n".join([*lines, total])


def wall_hours(rules: list[RuleCost], cores: int) -> float:
    """The wall time of the CPU rules on ``cores`` cores, 1-thread jobs side
    by side: their hours over the cores, or the longest job where longer."""
    cpu = [r for r in rules if not r.gpu]
    return max(sum(r.hours for r in cpu) / cores, max((r.longest_h for r in cpu), default=0.0))


def learning_rate_share(config: Mapping, gpu: bool = False, bound: bool = False) -> float:
    """Hours of the learning-rate runs' training: at the fitted epochs to
    target, or (``bound``) at the epoch cap."""
    costs = [cost.train_cost(config, run, epochs, bound) for run, epochs in plan.training_runs(config).items()
             if run.target_mode]
    return sum(j.gpu_s if gpu else j.cpu_s for j in costs) / 3600


def notes(config: Mapping, gpu: bool) -> str:
    out = [f"learning-rate runs counted at the epochs the fitted model gives them (afterkernel.cost."
           f"epochs_to_target): {_round(learning_rate_share(config, gpu))} of train's hours; at training.max_epochs "
           f"= {config['training']['max_epochs']} (the bound of the Slurm requests): "
           f"{_round(learning_rate_share(config, gpu, bound=True))}",
           "hours: from measurements of this machine (afterkernel.cost.COSTS; 1 Slurm CPU = 1 core); "
           "the Slurm requests are these × runtime_safety, memory × memory_safety",
           f"temp GB: the Gram files ({'all kept, kernels.keep_grams' if config['kernels']['keep_grams'] else f'the largest {CONCURRENT_JOBS} at once (jobs: 100), deleted after their SVMs'})"]
    if gpu:
        out.append(f"GPU-hours ASSUMED, unmeasured here (no GPU on this machine): one GPU = "
                   f"{cost.c('gpu_speedup'):g} CPU cores on the networks' multiply-adds")
    return "\n".join(f"note: {line}" for line in out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m afterkernel.estimate", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a config file (e.g. configs/paper.yaml)")
    parser.add_argument("--gpu", action="store_true", help="train and kernel jobs on one GPU each")
    parser.add_argument("--cores", type=int, metavar="N", help="print the wall time on N CPU cores")
    args = parser.parse_args(argv)
    if args.cores is not None and args.cores < 1:
        parser.error("--cores must be at least 1")
    try:
        config = load(args.config)
    except (ConfigError, OSError) as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 2
    rules = estimate(config, args.gpu)
    if not all(math.isfinite(r.hours) for r in rules):
        raise SystemExit("the cost model gave a non-finite estimate")
    print(format_table(rules, args.gpu))
    if args.cores:
        hours = wall_hours(rules, args.cores)
        print(f"wall time on {args.cores} core{'s' if args.cores > 1 else ''}: {hours * 60:,.0f} min"
              + (" (CPU rules only; GPU rules beside them)" if args.gpu else ""))
    print(notes(config, args.gpu))
    return 0


if __name__ == "__main__":
    sys.exit(main())
