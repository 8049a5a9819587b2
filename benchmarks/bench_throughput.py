"""Study throughput on 2 cores: two 1-thread jobs side by side against one
2-thread job at a time, for the training and the kernel jobs of fc and vgg.

Each case plans a small study of two seeds (the workflow itself, in a fresh
directory, on the embedded MNIST 3-vs-8) and times, in that order,
``snakemake --cores 2 --until train`` (the trainings) and then
``snakemake --cores 2 --until kernel`` (the kernel jobs), once with every job
on 1 thread (two at a time) and once with ``--set-threads train=2 kernel=2``
(one at a time). Entries ``study_throughput_{train,kernel}_{fc,vgg}``: the
one-at-a-time wall seconds over the side-by-side wall seconds (> 1: two
1-thread jobs side by side finish sooner).

    python benchmarks/bench_throughput.py --out results.json [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _common import logger, write_results  # noqa: E402

log = logger("throughput")

#: (name, architecture, train cap per class (None: all), epochs): what each case trains and measures
CASES = {
    "fc": ("fc", None, [0, 1, 3]),  # all of 3-vs-8: the size of the default and the reproduction
    "vgg": ("vgg", 2000, [0, 1]),  # a third of 3-vs-8: a vgg kernel job of the full set takes minutes
}


def _config(arch: str, cap: int | None, epochs: list[int]) -> dict:
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    base["data"].update(caps=[] if cap is None else [
        {"problem": "mnist-3v8", "max_train_per_class": cap, "max_test_per_class": 500}])
    base.update(problems=["mnist-3v8"], seeds=[0, 1],
                studies={"epochs": {"pairs": [["mnist-3v8", arch]], "epochs": epochs, "augmentation": [False]}})
    return base


def _timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def measure(name: str, workdir: Path) -> dict[str, dict[str, float]]:
    """Wall seconds of the trainings and of the kernel jobs, side by side and one at a time."""
    arch, cap, epochs = CASES[name]
    snakemake = str(Path(sys.executable).parent / "snakemake")
    out: dict[str, dict[str, float]] = {"train": {}, "kernel": {}}
    for mode, extra in (("side_by_side", []), ("one_at_a_time", ["--set-threads", "train=2", "kernel=2"])):
        wd = workdir / f"{name}-{mode}"
        wd.mkdir(parents=True)
        (wd / "config.yaml").write_text(yaml.safe_dump(_config(arch, cap, epochs), sort_keys=False))
        base = [snakemake, "--snakefile", str(REPO / "Snakefile"), "--configfile", "config.yaml", "--cores", "2",
                *extra]
        _timed(base + ["--until", "prepare_data"], wd)  # the data once, outside the timings
        for stage in ("train", "kernel"):
            out[stage][mode] = _timed(base + ["--until", stage], wd)
            log(f"{name} {stage} {mode}: {out[stage][mode]:.1f} s")
        shutil.rmtree(wd, ignore_errors=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="fc only")
    args = ap.parse_args(argv)
    date = time.strftime("%Y-%m-%dT%H:%M:%S")
    entries = []
    with tempfile.TemporaryDirectory(prefix="afterkernel_throughput_") as tmp:
        for name in ["fc"] if args.quick else list(CASES):
            arch, cap, epochs = CASES[name]
            data = "all of MNIST 3-vs-8" if cap is None else f"{cap} training images per digit of MNIST 3-vs-8"
            for stage, t in measure(name, Path(tmp)).items():
                entries.append({
                    "name": f"study_throughput_{stage}_{name}",
                    "value": t["one_at_a_time"] / t["side_by_side"], "unit": "ratio",
                    "comparator": f"{stage} jobs of 2 seeds ({arch}, {data}, epochs {epochs}), 2 cores: one "
                                  "2-thread job at a time (comparator_value, s) / two 1-thread jobs side by side "
                                  "(ours, s); > 1: side by side is faster",
                    "comparator_value": t["one_at_a_time"], "ours": t["side_by_side"],
                    "ratio": t["one_at_a_time"] / t["side_by_side"], "date": date})
    write_results(args.out, entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
