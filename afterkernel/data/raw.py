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
from afterkernel.data.errors import HOW_TO_PROVIDE, OWN_DATA_ADVICE, DataError

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


def _image_fault(x, shape: tuple | None) -> str | None:
    """What is wrong with the image array ``x``, or ``None``: uint8 of
    ``shape`` for a known data set; else (n, H, W) or (n, H, W, C), uint8 or
    finite float in [0, 1]."""
    want = (f"uint8 of shape (n, {', '.join(map(str, shape))})" if shape
            else "uint8, or float in [0, 1], of shape (n, H, W) or (n, H, W, C)")
    if not isinstance(x, np.ndarray):
        return f"should be {want}, got {type(x).__name__}"
    if (x.dtype != np.uint8 or x.shape[1:] != tuple(shape)) if shape else (
            x.dtype.kind not in "uf" or x.ndim not in (3, 4)):
        return f"should be {want}, got {x.dtype} {x.shape}"
    if x.dtype.kind == "f" and x.size:
        bad = ~np.isfinite(x)
        if bad.any():
            first = int(np.argwhere(bad)[0][0])
            return (f"has {int(bad.sum())} non-finite pixel value(s) (NaN or infinite), the first in image "
                    f"{first}")
        low, high = float(x.min()), float(x.max())
        if low < 0 or high > 1:
            return (f"has float pixel values from {low:g} to {high:g}, outside [0, 1] (scale them to [0, 1], "
                    "e.g. uint8 values / 255, or store uint8)")
    return None


def check_raw(raw: RawData, dataset: str | None, where: str, n_classes: int | None = None) -> RawData:
    """Validate shapes, dtypes and label ranges; labels become 1-D int64.
    ``dataset``: a :data:`~afterkernel.data.catalog.KNOWN` data set (its
    shape and classes), or ``None`` for a user's file (``n_classes`` labels
    when given, else any)."""
    shape = KNOWN[dataset][1] if dataset else None
    n_classes = len(KNOWN[dataset][0]) if dataset else n_classes
    advice = f"The file is corrupt or not {dataset} data. {HOW_TO_PROVIDE}" if dataset else OWN_DATA_ADVICE
    for split in ("train", "test"):
        x = getattr(raw, f"x_{split}")
        y = np.asarray(getattr(raw, f"y_{split}"))
        fault = _image_fault(x, shape)
        if fault:
            raise DataError(f"{where}: x_{split} {fault}. {advice}")
        if x.shape[1:] != raw.x_train.shape[1:]:
            raise DataError(f"{where}: x_train has images of shape {raw.x_train.shape[1:]} but "
                            f"x_test of shape {x.shape[1:]}; both splits need one shape. {advice}")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim == 1 and y.shape[0] != x.shape[0]:
            raise DataError(f"{where}: y_{split} has {y.shape[0]} labels but x_{split} has {x.shape[0]} "
                            f"images; give each image one label. {advice}")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{where}: y_{split} should be integer labels of shape ({x.shape[0]},), "
                            f"got {y.dtype} {y.shape}. {advice}")
        top = (n_classes - 1) if n_classes else None
        if y.size and (y.min() < 0 or (top is not None and y.max() > top)):
            raise DataError(f"{where}: y_{split} has labels outside 0-{top if top is not None else 'n'}. "
                            f"{advice}")
        setattr(raw, f"y_{split}", y.astype(np.int64))
    return raw


def read_npz(path: Path, advice: str = HOW_TO_PROVIDE) -> dict[str, np.ndarray]:
    """Read the four keras-layout arrays of an ``.npz`` (``allow_pickle=False``;
    ``advice``: how to fix it, in an error)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ARRAYS if k not in f.files]
            if missing:
                raise DataError(
                    f"{path}: missing arrays {missing} (has {sorted(f.files)}); expected the keras "
                    f"layout x_train, y_train, x_test, y_test. {advice}"
                )
            return {k: f[k] for k in ARRAYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise DataError(
            f"{path}: cannot read this .npz file ({type(e).__name__}: {e}); it is corrupt or "
            f"truncated: replace it with a fresh copy. {advice}"
        ) from e


def read_npz_file(path: Path, source_file: str, dataset: str | None, jpeg_derived: bool,
                  digest: str | None = None, n_classes: int | None = None) -> RawData:
    """The checked :class:`RawData` of one keras-layout ``.npz`` file;
    ``source_file`` is the name recorded in the attrs, ``digest`` the file's
    sha256 when the caller has it already (``dataset``, ``n_classes``: see
    :func:`check_raw`)."""
    arrays = read_npz(path, HOW_TO_PROVIDE if dataset else OWN_DATA_ADVICE)
    raw = RawData(**arrays, source_sha256=digest or sha256_file(path), source_files=[source_file],
                  jpeg_derived=jpeg_derived)
    return check_raw(raw, dataset, str(path), n_classes)
