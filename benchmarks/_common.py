"""Helpers shared by the benchmark scripts (each runs as ``python benchmarks/X.py``,
so this folder is on ``sys.path``; nt_worker.py imports it in its own venv)."""

import os
import sys
import time
from pathlib import Path


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


def blas_kernels() -> list[str]:
    """The BLAS libraries this process loaded (threadpoolctl), each with the
    kernels it runs (OpenBLAS picks them by CPU unless OPENBLAS_CORETYPE
    forces a type, which is then named)."""
    try:
        import numpy  # noqa: F401
        import scipy.linalg  # noqa: F401
        from threadpoolctl import threadpool_info

        forced = os.environ.get("OPENBLAS_CORETYPE")

        def owner(path: str) -> str:
            return next((lib for lib in ("numpy", "scipy") if f"{lib}.libs" in path), Path(path).name)

        return sorted(f"{owner(p.get('filepath', ''))}: {p.get('internal_api')} {p.get('version')} "
                      f"({p.get('architecture')}, {p.get('threading_layer')}, {p.get('num_threads')} threads"
                      + (f", OPENBLAS_CORETYPE={forced}" if forced and p.get("internal_api") == "openblas" else "")
                      + ")" for p in threadpool_info() if p.get("user_api") == "blas")
    except Exception as exc:  # noqa: BLE001
        return [f"unknown ({exc})"]


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
