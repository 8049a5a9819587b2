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
