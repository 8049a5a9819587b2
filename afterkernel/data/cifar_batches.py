"""CIFAR-10's python batches: pickles, read with restricted unpickling.

Only files at exactly ``{data.dir}/cifar-10-batches-py/data_batch_{1..5}``
and ``test_batch`` are ever unpickled, and then with an unpickler that only
resolves the handful of numpy names an array needs.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from afterkernel.data.errors import HOW_TO_PROVIDE, DataError
from afterkernel.data.raw import RawData, check_raw, combine_hashes, sha256_file

CIFAR_BATCH_DIR = "cifar-10-batches-py"
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCH = "test_batch"

_NUMPY_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy names needed to rebuild arrays."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module.startswith("numpy.core"):
            try:  # numpy >= 2 keeps these in numpy._core
                return getattr(importlib.import_module("numpy._core" + module[10:]), name)
            except ImportError:
                pass
        return getattr(importlib.import_module(module), name)


def _unpickle_batch(path: Path) -> dict:
    """The dict of one batch file, with str keys."""
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - any failure means a corrupt batch
        raise DataError(
            f"{path}: cannot read this CIFAR-10 python batch ({type(e).__name__}: {e}); "
            f"replace `{CIFAR_BATCH_DIR}/` with a fresh copy from cifar-10-python.tar.gz. "
            f"{HOW_TO_PROVIDE}"
        ) from e
    if not isinstance(d, dict):
        raise DataError(f"{path}: not a CIFAR-10 python batch (a {type(d).__name__}, not a dict).")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> uint8 (n, 32, 32, 3), labels (n,)."""
    d = _unpickle_batch(path)
    if "data" not in d or "labels" not in d:
        raise DataError(f"{path}: not a CIFAR-10 python batch (keys {sorted(d)}, "
                        "need 'data' and 'labels').")
    data, labels = np.asarray(d["data"]), np.asarray(d["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (
        data.shape[0],
    ):
        raise DataError(
            f"{path}: CIFAR-10 batch 'data' should be uint8 (n, 3072) with n labels, got "
            f"{data.dtype} {data.shape} and labels {labels.shape}; the file is corrupt."
        )
    # rows are channel-major (3, 32, 32): the study keeps NHWC
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), labels


def load_cifar_batches(batch_dir: Path) -> RawData:
    """The exact CIFAR-10 of the folder ``cifar-10-batches-py/``: the five
    training batches and the test batch, hashed together."""
    names = [*CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH]
    missing = [n for n in names if not (batch_dir / n).is_file()]
    if missing:
        raise DataError(
            f"CIFAR-10 folder {batch_dir} lacks {', '.join(missing)}; it needs "
            f"{', '.join(names)} (cifar-10-python.tar.gz unpacked). {HOW_TO_PROVIDE}"
        )
    parts = [read_cifar_batch(batch_dir / n) for n in names]
    raw = RawData(
        x_train=np.concatenate([p[0] for p in parts[:5]]),
        y_train=np.concatenate([p[1] for p in parts[:5]]),
        x_test=parts[5][0], y_test=parts[5][1],
        source_sha256=combine_hashes([sha256_file(batch_dir / n) for n in names]),
        source_files=[f"{CIFAR_BATCH_DIR}/{n}" for n in names], jpeg_derived=False,
    )
    return check_raw(raw, "cifar10", str(batch_dir))
