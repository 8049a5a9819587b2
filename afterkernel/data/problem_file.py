"""The problem HDF5 file ``results/data/{problem}{subset}.h5`` (``subset``:
``""`` for the full data, else the caps' tag, :func:`afterkernel.plan.subset_tag`): datasets
``x_train``, ``x_test`` (float32 (n, H, W, C)), ``y_train``, ``y_test``
(uint8 (n,)) and the attrs of :func:`afterkernel.data.load_problem`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from afterkernel.data.errors import DataError
from afterkernel.data.problem_data import ProblemData
from afterkernel.data.raw import ARRAYS


def write_problem(path: str | os.PathLike, data: ProblemData) -> None:
    """Write ``data`` atomically to ``path`` (datasets x/y train/test + attrs);
    images with a non-finite pixel are refused (``DataError``, nothing written)."""
    from afterkernel.io import atomic_h5, set_attrs

    for key in ("x_train", "x_test"):
        if not np.isfinite(getattr(data, key)).all():
            raise DataError(f"{path}: {key} of {data.attrs.get('problem', 'the problem')} has non-finite "
                            "pixels; not written (the source data set's values are checked when it is read)")

    with atomic_h5(path) as f:
        for key in ARRAYS:
            arr = np.ascontiguousarray(getattr(data, key))
            kw: dict[str, Any] = {}
            if arr.ndim > 1 and arr.shape[0] > 0:
                kw = dict(compression="gzip", compression_opts=1, shuffle=True,
                          chunks=(min(arr.shape[0], 256), *arr.shape[1:]))
            f.create_dataset(key, data=arr, **kw)
        set_attrs(f, data.attrs)


def read_problem(path: str | os.PathLike) -> ProblemData:
    """Read a problem file written by :func:`write_problem`; ``DataError`` if missing/corrupt."""
    path = Path(path)
    regen = (
        f"regenerate it: delete it and run `snakemake {path}` (rule prepare_data), or "
        f"`python scripts/prepare_data.py --problem PROBLEM --out {path}`"
    )
    if not path.is_file():
        raise DataError(f"problem data file {path} does not exist; {regen}.")
    arrays, attrs = _read_arrays(path, regen)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.float32 or x.ndim != 4 or y.dtype != np.uint8 or y.shape != x.shape[:1]:
            raise DataError(
                f"problem data file {path}: x_{split} should be float32 (n,H,W,C) and y_{split} "
                f"uint8 (n,), got {x.dtype} {x.shape} and {y.dtype} {y.shape}; {regen}."
            )
        n = attrs.get(f"n_{split}")
        if n is not None and n != x.shape[0]:
            raise DataError(f"problem data file {path}: attribute n_{split}={n} but x_{split} "
                            f"has {x.shape[0]} rows; {regen}.")
    return ProblemData(attrs=attrs, **arrays)


def _read_arrays(path: Path, regen: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The four datasets and the attrs of the file, or a ``DataError`` saying ``regen``."""
    import h5py

    from afterkernel.io import get_attrs

    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ARRAYS if k not in f]
            if missing:
                raise DataError(f"problem data file {path} lacks datasets {missing}; "
                                f"it is incomplete or not a problem file; {regen}.")
            return {k: f[k][()] for k in ARRAYS}, get_attrs(f)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - h5py raises OSError/KeyError/RuntimeError...
        raise DataError(f"problem data file {path} is corrupt or unreadable "
                        f"({type(e).__name__}: {e}); {regen}.") from e
