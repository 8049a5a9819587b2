"""A dataset as its source holds it: uint8 images and class labels 0-9,
checked, with the hash of the files they came from."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afterkernel.data.errors import HOW_TO_PROVIDE, DataError

#: the four arrays of keras' layout, kept by ProblemData and the problem file
ARRAYS = ("x_train", "y_train", "x_test", "y_test")
#: shape of one raw image (MNIST has no channel axis yet)
IMAGE_SHAPES = {"mnist": (28, 28), "cifar10": (32, 32, 3)}


@dataclass
class RawData:
    """Raw uint8 images (n, *IMAGE_SHAPES[dataset]) and integer class labels
    (0-9, shape (n,)) of one dataset."""

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


def check_raw(raw: RawData, dataset: str, where: str) -> RawData:
    """Validate shapes, dtypes and label ranges; labels become 1-D int64."""
    shape = IMAGE_SHAPES[dataset]
    for split in ("train", "test"):
        x = getattr(raw, f"x_{split}")
        y = np.asarray(getattr(raw, f"y_{split}"))
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.shape[1:] != shape:
            got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise DataError(
                f"{where}: x_{split} should be uint8 of shape (n, {', '.join(map(str, shape))}), "
                f"got {got}; the file is corrupt or not {dataset} data. {HOW_TO_PROVIDE}"
            )
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.shape[0] != x.shape[0] or not np.issubdtype(y.dtype, np.integer):
            raise DataError(
                f"{where}: y_{split} should be integer labels of shape ({x.shape[0]},), "
                f"got {y.dtype} {y.shape}; the file is corrupt. {HOW_TO_PROVIDE}"
            )
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{where}: y_{split} has labels outside 0-9; the file is corrupt.")
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


def read_npz_file(path: Path, source_file: str, dataset: str, jpeg_derived: bool,
                  digest: str | None = None) -> RawData:
    """The checked :class:`RawData` of one keras-layout ``.npz`` file;
    ``source_file`` is the name recorded in the attrs, ``digest`` the file's
    sha256 when the caller has it already."""
    arrays = read_npz(path)
    raw = RawData(**arrays, source_sha256=digest or sha256_file(path), source_files=[source_file],
                  jpeg_derived=jpeg_derived)
    return check_raw(raw, dataset, str(path))
