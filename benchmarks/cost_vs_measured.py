"""The cost model against a finished run: each rule's estimated CPU-seconds
(:mod:`afterkernel.cost`) beside the seconds its jobs' Snakemake benchmark
files measured (``results/benchmarks/{stage}/...tsv``, column ``s``: the
wall seconds, which is what a 1-thread job costs a core; ``cpu_time`` reads
less than that for TensorFlow jobs, whose start-up waits on I/O).

    python benchmarks/cost_vs_measured.py CONFIG [CONFIG ...] --results RUN/results [--json out.json]

Several config files are merged as Snakemake merges ``--configfile`` (the
later ones update the earlier). Prints, per rule and architecture, the jobs
found, estimated and measured CPU-seconds and their ratio (estimate /
measured; the model is refit where a rule is off by more than 30 %).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from afterkernel import cost, plan  # noqa: E402
from afterkernel.config import validate, with_defaults  # noqa: E402


def _update(base: dict, new: dict) -> dict:
    out = dict(base)
    for k, v in new.items():
        out[k] = _update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_merged(paths: list[Path], overrides: dict | None = None) -> dict:
    config: dict = {}
    for p in paths:
        config = _update(config, yaml.safe_load(p.read_text()) or {})
    return validate(with_defaults(_update(config, overrides or {})))


def measured_cpu_s(tsv: Path) -> float | None:
    """Wall seconds of one (1-thread) job's benchmark file."""
    if not tsv.exists():
        return None
    with open(tsv) as f:
        row = next(csv.DictReader(f, delimiter="\t"))
    return float(row["s"])


def compare(config: dict, results: Path) -> list[dict]:
    """One record per (rule, architecture): jobs, estimated and measured CPU-seconds."""
    est: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])

    def add(rule: str, arch: str, estimate_s: float, tsv: Path) -> None:
        got = measured_cpu_s(tsv)
        if got is None:
            return
        rec = est[rule, arch]
        rec[0] += 1
        rec[1] += estimate_s
        rec[2] += got

    bench = results / "benchmarks"
    for run, epochs in plan.training_runs(config).items():
        add("train", run.arch, cost.train_cost(config, run, epochs, bound=False).cpu_s,
            bench / "training" / f"{run.path}.tsv")
    for run, snaps in plan.kernel_runs(config).items():
        add("kernel", run.arch, cost.kernel_cost(config, run, snaps).cpu_s, bench / "kernels" / f"{run.path}.tsv")
        for snap in snaps:
            for kernel in ("after", "conjugate"):
                add("svm", run.arch, cost.svm_cost(config, run).cpu_s,
                    bench / "svm" / f"{plan.svm_name(run, snap, kernel)}.tsv")
    return [{"rule": r, "architecture": a, "jobs": n, "estimate_cpu_s": e, "measured_cpu_s": m,
             "ratio": e / m if m else float("nan")} for (r, a), (n, e, m) in sorted(est.items())]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", type=Path)
    ap.add_argument("--results", type=Path, required=True, help="the run's results folder")
    ap.add_argument("--json", type=Path, help="also write the records here")
    args = ap.parse_args(argv)
    records = compare(load_merged(args.configs), args.results)
    print(f"{'rule':<8}{'network':<10}{'jobs':>6}{'estimate CPU-s':>16}{'measured CPU-s':>16}{'ratio':>8}")
    for r in records:
        print(f"{r['rule']:<8}{r['architecture']:<10}{r['jobs']:>6}{r['estimate_cpu_s']:>16,.0f}"
              f"{r['measured_cpu_s']:>16,.0f}{r['ratio']:>8.2f}")
    if args.json:
        args.json.write_text(json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
