"""Helpers shared by the benchmark scripts (each runs as ``python benchmarks/X.py``,
so this folder is on ``sys.path``; nt_worker.py imports it in its own venv)."""

import os
import sys
import time


def pin_threads(threads: int) -> None:
    """Pin this process to ``threads`` CPUs and size the BLAS / OpenMP pools,
    so both sides of a comparison get the same cores; call before numpy."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if threads < len(cpus):
            os.sched_setaffinity(0, cpus[:threads])
    except (AttributeError, OSError):
        pass
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def logger(name: str):
    """A ``log(msg)`` that prints ``[name HH:MM:SS] msg`` to stderr."""
    def log(msg: str) -> None:
        print(f"[{name} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
    return log


def write_results(out, entries: list, details_path=None, details=None) -> None:
    """Write a benchmark's entries (the results.json format) to ``out`` and,
    when a ``details_path`` is given, its per-case details there, for
    run_all.py to merge."""
    import json

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(entries, indent=1) + "\n")
    if details_path is not None:
        details_path.write_text(json.dumps(details, indent=1) + "\n")
