"""A data set as its source holds it: images (uint8, or float in [0, 1]
for ``npz`` and ``images`` files) and class labels 0, 1, ..., checked, with
the hash of the files they came from."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afterkernel.data.catalog import KNOWN
from afterkernel.data.errors import HOW_TO_PROVIDE, DataError

#: the four arrays of keras' layout, kept by ProblemData and the problem file
ARRAYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass
class RawData:
    """Raw images (n, H, W) or (n, H, W, C) and integer class labels (shape
    (n,)) of one data set."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source_sha256: str
    source_files: list[str]
    jpeg_derived: bool


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def combine_hashes(hashes: list[str]) -> str:
    """One hash for one file; sha256 of the concatenated hex digests for several."""
    if len(hashes) == 1:
        return hashes[0]
    return hashlib.sha256("".join(hashes).encode()).hexdigest()


def _check_images(x, split: str, where: str, shape: tuple | None, what: str) -> None:
    """uint8 of ``shape`` for a known data set; else (H, W) or (H, W, C), uint8 or float in [0, 1]."""
    if isinstance(x, np.ndarray) and (x.dtype == np.uint8 if shape else x.dtype.kind in "uf"):
        if (x.shape[1:] == shape) if shape else x.ndim in (3, 4):
            if x.dtype.kind == "u" or not x.size or (np.nanmin(x) >= 0 and np.nanmax(x) <= 1):
                return
    want = (f"uint8 of shape (n, {', '.join(map(str, shape))})" if shape
            else "uint8, or float in [0, 1], of shape (n, H, W) or (n, H, W, C)")
    got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
    raise DataError(f"{where}: x_{split} should be {want}, got {got}; the file is corrupt or "
                    f"not {what} data. {HOW_TO_PROVIDE}")


def check_raw(raw: RawData, dataset: str | None, where: str, n_classes: int | None = None) -> RawData:
    """Validate shapes, dtypes and label ranges; labels become 1-D int64.
    ``dataset``: a :data:`~afterkernel.data.catalog.KNOWN` data set (its
    shape and classes), or ``None`` for a user's file (``n_classes`` labels
    when given, else any)."""
    shape = KNOWN[dataset][1] if dataset else None
    n_classes = len(KNOWN[dataset][0]) if dataset else n_classes
    for split in ("train", "test"):
        x = getattr(raw, f"x_{split}")
        y = np.asarray(getattr(raw, f"y_{split}"))
        _check_images(x, split, where, shape, dataset or "image")
        if x.shape[1:] != raw.x_train.shape[1:]:
            raise DataError(f"{where}: x_train has images of shape {raw.x_train.shape[1:]} but "
                            f"x_test of shape {x.shape[1:]}; both splits need one shape.")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.shape[0] != x.shape[0] or not np.issubdtype(y.dtype, np.integer):
            raise DataError(
                f"{where}: y_{split} should be integer labels of shape ({x.shape[0]},), "
                f"got {y.dtype} {y.shape}; the file is corrupt. {HOW_TO_PROVIDE}"
            )
        top = (n_classes - 1) if n_classes else None
        if y.size and (y.min() < 0 or (top is not None and y.max() > top)):
            raise DataError(f"{where}: y_{split} has labels outside 0-{top if top is not None else 'n'}; "
                            f"the file is corrupt.")
        setattr(raw, f"y_{split}", y.astype(np.int64))
    return raw


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read the four keras-layout arrays of an ``.npz`` (``allow_pickle=False``)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ARRAYS if k not in f.files]
            if missing:
                raise DataError(
                    f"{path}: missing arrays {missing} (has {sorted(f.files)}); expected the keras "
                    f"layout x_train, y_train, x_test, y_test. {HOW_TO_PROVIDE}"
                )
            return {k: f[k] for k in ARRAYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise DataError(
            f"{path}: cannot read this .npz file ({type(e).__name__}: {e}); it is corrupt or "
            f"truncated: replace it with a fresh copy. {HOW_TO_PROVIDE}"
        ) from e


def read_npz_file(path: Path, source_file: str, dataset: str | None, jpeg_derived: bool,
                  digest: str | None = None, n_classes: int | None = None) -> RawData:
    """The checked :class:`RawData` of one keras-layout ``.npz`` file;
    ``source_file`` is the name recorded in the attrs, ``digest`` the file's
    sha256 when the caller has it already (``dataset``, ``n_classes``: see
    :func:`check_raw`)."""
    arrays = read_npz(path)
    raw = RawData(**arrays, source_sha256=digest or sha256_file(path), source_files=[source_file],
                  jpeg_derived=jpeg_derived)
    return check_raw(raw, dataset, str(path), n_classes)
