"""What the kernel-evolution quantities cost a kernel job (issue 16).

    .venv/bin/python benchmarks/bench_evolution.py [--repeats 3]

Side by side in one process, on the real jobs: the embedded MNIST 3-vs-8
problem file (all 1,000 train, 400 test images), one training run each of
``vgg`` and ``fc`` (seed 0, snapshots after epochs 0, 1, 3), then the kernel
job of all three snapshots (``afterkernel.kernels.job.kernel_job``, the
default config's test sample of 100) with and without the evolution
quantities (kernel distances and velocity, the train Grams' spectra),
alternating, ``--repeats`` times each; the median of each. Entry
``evolution_overhead_fraction`` = (with − without) / without for ``vgg``
(target ≤ 0.1), ``evolution_overhead_fraction_fc`` for ``fc``; the notes add
the Lanczos time of the top 50 eigenvalues of an 11,982 × 11,982 Gram (full
MNIST 3-vs-8), the part that grows with n.
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
SNAPSHOTS = [0, 1, 3]
TEST_SAMPLE = 100  # config.yaml's kernels.test_sample

log = logging.getLogger("bench_evolution")


def time_kernel_jobs(tmp: Path, arch: str, repeats: int) -> dict[str, float]:
    """Median seconds of the kernel job of one training run, with and without
    the evolution quantities (alternating, so both see the same machine)."""
    from afterkernel.kernels.job import kernel_job
    from afterkernel.training import train_to_file

    training = tmp / f"{arch}.h5"
    train_to_file(tmp / "data.h5", training, arch_spec=SPECS[arch], arch_name=arch, seed=0,
                  snapshot_epochs=SNAPSHOTS)
    seconds: dict[str, list[float]] = {"with": [], "without": []}
    for i in range(repeats):
        for mode in ("with", "without") if i % 2 == 0 else ("without", "with"):
            t0 = time.perf_counter()
            kernel_job(training, tmp / "data.h5", tmp / f"{arch}.{mode}.gram.h5", tmp / f"{arch}.{mode}.metrics.h5",
                       snapshots=[f"e{e}" for e in SNAPSHOTS], test_sample=TEST_SAMPLE, evolution=mode == "with")
            seconds[mode].append(time.perf_counter() - t0)
            log.info("%s kernel job %s the evolution quantities: %.2f s", arch, mode, seconds[mode][-1])
    return {mode: statistics.median(v) for mode, v in seconds.items()}


def lanczos_seconds(n: int = 11_982) -> float:
    """Seconds of the top-50 eigenvalues of an (n, n) float32 Gram of rank 2,000."""
    import numpy as np

    from afterkernel.kernel_evolution import top_eigenvalues

    x = np.random.default_rng(0).standard_normal((n, 2000), dtype=np.float32)
    G = x @ x.T
    t0 = time.perf_counter()
    top_eigenvalues(G)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_evolution.json")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one repeat, no full-size Lanczos")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pin_threads(2)
    from afterkernel.data import prepare_problem_file
    from afterkernel.runtime import configure_tensorflow

    configure_tensorflow(2, 0)
    repeats = 1 if args.quick else args.repeats
    lanczos = None if args.quick else lanczos_seconds()
    entries = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        prepare_problem_file("mnist-3v8", tmp / "data.h5", source="embedded")
        for arch in ("vgg", "fc"):
            t = time_kernel_jobs(tmp, arch, repeats)
            frac = (t["with"] - t["without"]) / t["without"]
            notes = (f"{arch} on embedded MNIST 3-vs-8 (1,000 train, 400 test), snapshots e0, e1, e3, test sample "
                     f"{TEST_SAMPLE}; kernel job {t['with']:.2f} s with vs {t['without']:.2f} s without the "
                     f"evolution quantities (median of {repeats}, alternating, 2 threads)")
            if lanczos is not None:
                notes += f"; top-50 Lanczos on an 11,982 x 11,982 Gram: {lanczos:.1f} s per kernel and snapshot"
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
