"""A user's own data: an ``.npz`` file (source ``npz``) or an image folder
(source ``images``), read to the same :class:`~afterkernel.data.raw.RawData`
as keras' data sets.

``npz``: arrays ``x_train, y_train, x_test, y_test`` (keras' layout), images
(n, H, W) or (n, H, W, C), uint8 or float in [0, 1]; read with
``allow_pickle=False``. ``images``: ``train/<class>/*.png|jpg`` and
``test/<class>/...``; the classes are the sorted folder names (label = index),
every image of one shape, decoded with PIL (what ``keras.utils.load_img``
uses): grayscale stays one channel, anything else becomes RGB.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from afterkernel.data.errors import OWN_DATA_ADVICE, DataError
from afterkernel.data.raw import RawData, check_raw, read_npz, read_npz_file, sha256_file
from afterkernel.data.survey import SPLITS, image_folder, image_size_fault, user_path


def load_npz(spec: dict[str, Any], n_classes: int | None = None) -> RawData:
    """The checked arrays of the ``npz`` file ``spec["path"]``."""
    path = user_path(spec["path"])
    if not path.is_file():
        raise DataError(f"data set file {path} (source npz) does not exist")
    return read_npz_file(path, path.name, None, jpeg_derived=False, n_classes=n_classes)


def _read_image(path: Path, grayscale: bool) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L" if grayscale else "RGB"), dtype=np.uint8)


def load_images(spec: dict[str, Any]) -> RawData:
    """The images of the folder ``spec["path"]`` as uint8 (n, H, W) (all
    grayscale) or (n, H, W, 3); labels the class folders' sorted indices."""
    from PIL import Image

    root = user_path(spec["path"])
    folder = image_folder(root)
    names = list(folder["train"])
    files = {split: [(p, k) for k, name in enumerate(names) for p in folder[split][name]] for split in SPLITS}
    everything = [p for split in SPLITS for p, _ in files[split]]
    grayscale = True
    for p in everything:
        with Image.open(p) as im:
            grayscale &= im.mode in ("1", "L", "I", "I;16", "F")
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        images = [_read_image(p, grayscale) for p, _ in files[split]]
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            odd = next(p for (p, _), im in zip(files[split], images) if im.shape != images[0].shape)
            raise DataError(f"image folder {root}: images of shapes {sorted(shapes)}; {odd} differs from "
                            f"{files[split][0][0]} (resize them to one size)")
        arrays[f"x_{split}"] = np.stack(images) if images else np.zeros((0, 1, 1), np.uint8)
        arrays[f"y_{split}"] = np.array([k for _, k in files[split]], np.int64)
    # each file's place (its class) and bytes; the names list stays out of the
    # attrs (an HDF5 attribute holds at most 64 KB)
    digests = [f"{p.relative_to(root).as_posix()}:{sha256_file(p)}" for p in everything]
    raw = RawData(**arrays, source_sha256=hashlib.sha256("\n".join(digests).encode()).hexdigest(),
                  source_files=[f"{root.name}/ ({len(everything)} images)"],
                  jpeg_derived=any(p.suffix.lower() in (".jpg", ".jpeg") for p in everything))
    return check_raw(raw, None, str(root), len(names))


def check_values(spec: dict[str, Any]) -> None:
    """``prepare_data``'s checks of a user's data set, run when the workflow
    is planned (``DataError`` says what is wrong): an ``.npz`` is read whole
    (pixels finite and in [0, 1] if float, one label per image); of an image
    folder, every image's header (one size)."""
    path = user_path(spec["path"])
    if spec["source"] == "npz":
        arrays = read_npz(path, OWN_DATA_ADVICE)
        check_raw(RawData(**arrays, source_sha256="", source_files=[], jpeg_derived=False), None, str(path))
    elif spec["source"] == "images":
        folder = image_folder(path)
        files = [p for split in SPLITS for name in folder[split] for p in folder[split][name]]
        fault = image_size_fault(path, files) if files else None
        if fault:
            raise DataError(f"{fault}. {OWN_DATA_ADVICE}")
