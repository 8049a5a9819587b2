"""What the kernel-evolution quantities cost a kernel job (issue 16).

    .venv/bin/python benchmarks/bench_evolution.py [--data-dir DIR] [--nets fc vgg] [--repeats 2]

Side by side in one process, on the real jobs: one training run per network
(seed 0, snapshots after epochs 0, 1, 3 or ``--snapshots``), then the kernel
job of its snapshots (``afterkernel.kernels.job.kernel_job``) with and
without the evolution quantities (kernel distances and velocity, the train
Grams' top-50 spectra), alternating, ``--repeats`` times each; the median of
each. With ``--data-dir`` (a folder holding ``mnist.npz``): full MNIST
3-vs-8 (11,982 train, 1,984 test images) with ``configs/paper.yaml``'s
kernel settings (blocks of 256, a 2,048 MB Jacobian budget, every test image
in the test sample): the paper's scale. Without it: the embedded MNIST
3-vs-8 problem (1,000 train, 400 test) with the default config's test sample
of 100. Entries ``evolution_overhead_fraction`` = (with − without) / without
for ``vgg`` (target ≤ 0.1) and ``evolution_overhead_fraction_fc`` for ``fc``
(its kernel job is the cheapest, so the fraction is largest there).
"""

from __future__ import annotations

import argparse
import datetime
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import pin_threads, write_results

REPO = Path(__file__).resolve().parents[1]
SPECS = {"vgg": {"type": "vgg", "widths": [26, 52]}, "fc": {"type": "fc", "widths": [94, 94, 94, 94]}}
# (kernel settings, description) of the two scales
SCALES = {"embedded": ({"test_sample": 100}, "embedded MNIST 3-vs-8 (1,000 train, 400 test), test sample 100"),
          "paper": ({"test_sample": None, "block_size": 256, "jacobian_budget_mb": 2048},
                    "full MNIST 3-vs-8 (11,982 train, 1,984 test), configs/paper.yaml's kernel settings "
                    "(blocks of 256, 2,048 MB budget, all test images)")}

log = logging.getLogger("bench_evolution")


def time_kernel_jobs(tmp: Path, arch: str, snapshots: list[int], kernel_settings: dict,
                     repeats: int) -> dict[str, float]:
    """Median seconds of the kernel job of one training run, with and without
    the evolution quantities (alternating, so both see the same machine)."""
    from afterkernel.kernels.job import kernel_job
    from afterkernel.training import train_to_file

    training = tmp / f"{arch}.h5"
    train_to_file(tmp / "data.h5", training, arch_spec=SPECS[arch], arch_name=arch, seed=0,
                  snapshot_epochs=snapshots)
    seconds: dict[str, list[float]] = {"with": [], "without": []}
    for i in range(repeats):
        for mode in ("with", "without") if i % 2 == 0 else ("without", "with"):
            t0 = time.perf_counter()
            kernel_job(training, tmp / "data.h5", tmp / f"{arch}.{mode}.gram.h5", tmp / f"{arch}.{mode}.metrics.h5",
                       snapshots=[f"e{e}" for e in snapshots], evolution=mode == "with", **kernel_settings)
            seconds[mode].append(time.perf_counter() - t0)
            log.info("%s kernel job %s the evolution quantities: %.2f s", arch, mode, seconds[mode][-1])
    return {mode: statistics.median(v) for mode, v in seconds.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_evolution.json")
    ap.add_argument("--data-dir", type=Path, help="a folder with mnist.npz: the paper's scale")
    ap.add_argument("--nets", nargs="+", choices=sorted(SPECS), default=["vgg", "fc"])
    ap.add_argument("--snapshots", nargs="+", type=int, default=[0, 1, 3])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="one repeat")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pin_threads(2)
    from afterkernel.data import prepare_problem_file
    from afterkernel.runtime import configure_tensorflow

    configure_tensorflow(2, 0)
    repeats = 1 if args.quick else args.repeats
    settings, where = SCALES["paper" if args.data_dir else "embedded"]
    entries = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.data_dir:
            prepare_problem_file("mnist-3v8", tmp / "data.h5", source="dir", directory=args.data_dir)
        else:
            prepare_problem_file("mnist-3v8", tmp / "data.h5", source="embedded")
        for arch in args.nets:
            t = time_kernel_jobs(tmp, arch, args.snapshots, settings, repeats)
            frac = (t["with"] - t["without"]) / t["without"]
            notes = (f"{arch} on {where}, snapshots {', '.join(f'e{e}' for e in args.snapshots)}; kernel job "
                     f"{t['with']:.2f} s with vs {t['without']:.2f} s without the evolution quantities "
                     f"(median of {repeats}, alternating, 2 threads)")
            entries.append({"name": "evolution_overhead_fraction" + ("" if arch == "vgg" else "_fc"),
                            "value": round(frac, 4), "unit": "fraction of the kernel job's time",
                            "comparator": "the same kernel job without the evolution quantities",
                            "comparator_value": round(t["without"], 3), "ratio": round(t["with"] / t["without"], 4),
                            "date": datetime.date.today().isoformat(), "notes": notes, "target": 0.1})
    write_results(args.out, entries)
    for e in entries:
        print(f"{e['name']:32s} {e['value']:>8} ({e['notes']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
