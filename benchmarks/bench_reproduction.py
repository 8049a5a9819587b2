"""The published reproduction's wall time against its target and the cost
model: read from the record of its measured parts (``reproduction/runs.json``,
written when each part finished), not re-run here (it takes about two hours).

Entries: ``reproduction_run_minutes`` (the wall minutes of every part, summed;
target <= 150 on 2 cores) and ``reproduction_estimate_ratio`` (the cost
model's estimate for the same jobs / the measured minutes; target 0.7-1.3).

    python benchmarks/bench_reproduction.py --out results.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _common import write_results  # noqa: E402

RUNS = REPO / "reproduction" / "runs.json"
TARGET_MINUTES = 150.0


def entries(runs: list[dict]) -> list[dict]:
    wall = sum(r["wall_minutes"] for r in runs)
    est = sum(r["estimate_minutes"] for r in runs)
    parts = ", ".join(f"{r['part']}: {r['wall_minutes']:.1f} min measured, {r['estimate_minutes']:.1f} estimated"
                      for r in runs)
    date = max(r["started"] for r in runs)
    return [
        {"name": "reproduction_run_minutes", "value": wall, "unit": "min (wall, 2 cores, every part)",
         "comparator": "target: at most 150 min on 2 cores", "comparator_value": TARGET_MINUTES,
         "ratio": wall / TARGET_MINUTES, "target": "<= 150", "date": date, "notes": parts},
        {"name": "reproduction_estimate_ratio", "value": est / wall, "unit": "estimate / measured",
         "comparator": "the cost model's estimate (python -m afterkernel.estimate --cores 2) for the "
                       "same jobs, min", "comparator_value": est, "ratio": est / wall, "target": "0.7-1.3",
         "date": date, "notes": parts},
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    write_results(args.out, entries(json.loads(RUNS.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
