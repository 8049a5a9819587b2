"""What a data set holds, found cheaply (no image is decoded): its class
names, image shape, images per class and the files it is read from.

Read when the workflow is planned, so that a missing file, a class the data
set lacks or a cap above what exists stops the run before any job (and the
files become ``prepare_data``'s inputs); the job reads the same description.
Only ``.npz`` headers and label arrays, folder listings and image headers
are read.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from afterkernel.data import sources
from afterkernel.data.catalog import KNOWN, known_key
from afterkernel.data.errors import HOW_TO_PROVIDE, OWN_DATA_ADVICE, DataError
from afterkernel.data.raw import ARRAYS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """A data set's classes (index order), image shape (H, W, C) as the
    problem file holds it, images per class index and split (``None``: not
    known before loading) and the files it is read from."""

    class_names: tuple[str, ...]
    image_shape: tuple[int, ...]
    counts: dict[str, tuple[int, ...]] | None
    files: tuple[str, ...]


def user_path(path: str | os.PathLike) -> Path:
    """A ``path`` of the config (``~`` expanded; relative to the working directory)."""
    return Path(os.path.expanduser(str(path)))


def _counts(y: np.ndarray, n: int) -> tuple[int, ...]:
    y = np.asarray(y).reshape(-1).astype(np.int64)
    return tuple(int(c) for c in np.bincount(y[(y >= 0) & (y < n)], minlength=n)[:n])


def npz_header(path: Path, advice: str = HOW_TO_PROVIDE) -> dict[str, Any]:
    """Shapes and dtypes of the arrays of an ``.npz`` file, the labels and an
    optional ``class_names`` array, without reading the images (``advice``:
    how to fix it, in an error)."""
    out: dict[str, Any] = {}
    try:
        with zipfile.ZipFile(path) as z:
            missing = [k for k in ARRAYS if f"{k}.npy" not in z.namelist()]
            if missing:
                raise DataError(f"{path}: missing arrays {missing} (has {sorted(z.namelist())}); expected "
                                f"the keras layout x_train, y_train, x_test, y_test. {advice}")
            for key in ("x_train", "x_test"):
                with z.open(f"{key}.npy") as f:
                    version = np.lib.format.read_magic(f)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(f)
                if np.dtype(dtype).hasobject:
                    raise ValueError(f"{key} holds Python objects, which need pickle (refused)")
                out[key] = (tuple(shape), np.dtype(dtype))
        with np.load(path, allow_pickle=False) as f:
            for key in ("y_train", "y_test") + (("class_names",) if "class_names" in f.files else ()):
                out[key] = f[key]
    except DataError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read this .npz file ({type(e).__name__}: {e}); it is corrupt or "
                        f"truncated (or holds pickles): replace it with a fresh copy. {advice}") from e
    return out


def _npz_info(spec: dict[str, Any]) -> DatasetInfo:
    path = user_path(spec["path"])
    if not path.is_file():
        raise DataError(f"data set file {path} (source npz) does not exist. {OWN_DATA_ADVICE}")
    head = npz_header(path, OWN_DATA_ADVICE)
    shape, dtype = head["x_train"]
    if len(shape) not in (3, 4) or dtype.kind not in "uf":
        raise DataError(f"{path}: x_train should be uint8 or float images (n, H, W) or (n, H, W, C), "
                        f"got {dtype} {shape}. {OWN_DATA_ADVICE}")
    for split in SPLITS:
        n_images, n_labels = head[f"x_{split}"][0][0], np.asarray(head[f"y_{split}"]).reshape(-1).shape[0]
        if n_images != n_labels:
            raise DataError(f"{path}: y_{split} has {n_labels} labels but x_{split} has {n_images} images; "
                            f"give each image one label. {OWN_DATA_ADVICE}")
    top = max((int(np.max(head[k])) for k in ("y_train", "y_test") if head[k].size), default=0)
    names = spec.get("class_names") or [str(v) for v in head.get("class_names", ())]
    names = tuple(names) or tuple(str(i) for i in range(top + 1))
    if len(names) <= top:
        raise DataError(f"{path}: labels go up to {top} but only {len(names)} class names are given")
    image_shape = tuple(shape[1:]) + ((1,) if len(shape) == 3 else ())
    counts = {split: _counts(head[f"y_{split}"], len(names)) for split in SPLITS}
    return DatasetInfo(names, image_shape, counts, (str(path),))


def image_folder(root: Path) -> dict[str, dict[str, list[Path]]]:
    """``root/{train,test}/<class>/*.png|jpg`` as split -> class -> sorted
    files; the class names (sorted folder names) must be the same in both."""
    if not root.is_dir():
        raise DataError(f"image folder {root} (source images) does not exist. {OWN_DATA_ADVICE}")
    out: dict[str, dict[str, list[Path]]] = {}
    for split in SPLITS:
        if not (root / split).is_dir():
            raise DataError(f"image folder {root} has no {split}/ folder: expected "
                            f"{root}/train/<class>/*.png and {root}/test/<class>/*.png")
        out[split] = {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                      for d in sorted((root / split).iterdir()) if d.is_dir()}
    if sorted(out["train"]) != sorted(out["test"]) or not out["train"]:
        raise DataError(f"image folder {root}: train/ has classes {sorted(out['train'])} but test/ has "
                        f"{sorted(out['test'])}; both need the same class folders (at least two)")
    return out


def image_shape(path: Path) -> tuple[int, int, int]:
    """(H, W, C) of one image, from its header: grayscale gives C = 1, anything else RGB."""
    from PIL import Image

    with Image.open(path) as im:
        return (im.height, im.width, 1 if im.mode in ("1", "L", "I", "I;16", "F") else 3)


def _images_info(spec: dict[str, Any]) -> DatasetInfo:
    root = user_path(spec["path"])
    folder = image_folder(root)
    names = tuple(folder["train"])
    files = [p for split in SPLITS for name in names for p in folder[split][name]]
    if not files:
        raise DataError(f"image folder {root} holds no .png or .jpg images")
    counts = {split: tuple(len(folder[split][n]) for n in names) for split in SPLITS}
    return DatasetInfo(names, image_shape(files[0]), counts, tuple(map(str, files)))


def image_size_fault(root: Path, files: list[Path]) -> str | None:
    """Images of more than one size (H, W) in a folder, or ``None``: each
    image's header is read, no pixel."""
    first = image_shape(files[0])[:2]
    for path in files[1:]:
        size = image_shape(path)[:2]
        if size != first:
            return (f"image folder {root}: {path} is {size[0]}x{size[1]} pixels but {files[0]} is "
                    f"{first[0]}x{first[1]}; every image needs one size (resize them)")
    return None


def _known_info(spec: dict[str, Any]) -> DatasetInfo:
    """embedded, dir and keras: the data set's own classes and shape."""
    key = known_key(spec)
    names, shape = KNOWN[key]
    full_shape = tuple(shape) + ((1,) if len(shape) == 2 else ())
    files = sources.source_files(spec)
    counts = None
    npz = [Path(f) for f in files if f.endswith(".npz")]
    if npz:  # a keras-layout file: its labels are cheap to read
        head = npz_header(npz[0])
        counts = {split: _counts(head[f"y_{split}"], len(names)) for split in SPLITS}
    return DatasetInfo(names, full_shape, counts, tuple(files))


def describe(spec: dict[str, Any]) -> DatasetInfo:
    """The :class:`DatasetInfo` of a data set spec (:mod:`~afterkernel.data.catalog`);
    ``DataError`` when its file or folder is missing or unreadable. Not
    cached: a file replaced between two calls is read again."""
    if spec["source"] == "npz":
        return _npz_info(spec)
    if spec["source"] == "images":
        return _images_info(spec)
    return _known_info(spec)
