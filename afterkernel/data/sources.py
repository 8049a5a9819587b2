"""Where a data set comes from (key ``source`` of its spec, see
:mod:`afterkernel.data.catalog`; the ``data`` section for ``mnist`` and
``cifar10``).

``embedded``
    real data shipped inside the package (``afterkernel/embedded/``, see its
    README): every MNIST image of digits 3, 5, 6 and 8, and a seeded draw of
    300 train / 100 test images per class of CIFAR-10 cat and dog (decoded
    from JPEG); checked against the sha256 values of :data:`EMBEDDED`.
``dir``
    a local folder (``data.dir``, or ``path``) holding keras' ``mnist.npz``
    and/or CIFAR-10: the python batches ``cifar-10-batches-py/`` (exact
    CIFAR-10, preferred) or ``cifar10_cat_dog_jpeg_q75.npz`` (cat and dog
    only, decoded from JPEG: *not* the exact CIFAR-10 pixels).
``keras``
    ``keras.datasets`` (mnist, fashion_mnist, cifar10, cifar100 with fine or
    coarse labels): the workflow's local rule ``fetch_data`` downloads each
    once, on the host that runs Snakemake (not on a compute node, never two
    at a time), into ``resources/keras/{name}.npz``
    (:func:`fetch_keras_dataset`); the problem files are then made from that
    file. Without it (by hand) the loader calls keras itself. Only this
    source imports keras.
``npz``, ``images``
    a user's file or image folder (:mod:`afterkernel.data.own_files`).

``.npz`` files are read with ``allow_pickle=False``; the CIFAR-10 batches
with a restricted unpickler (:mod:`afterkernel.data.cifar_batches`).
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from afterkernel.data.catalog import known_key
from afterkernel.data.cifar_batches import CIFAR_BATCH_DIR, CIFAR_TEST_BATCH, CIFAR_TRAIN_BATCHES, load_cifar_batches
from afterkernel.data.errors import HOW_TO_PROVIDE, DataError
from afterkernel.data.problems import Problem
from afterkernel.data.raw import RawData, check_raw, combine_hashes, read_npz, read_npz_file, sha256_file

# File names inside a `dir` source folder.
MNIST_FILE = "mnist.npz"
CIFAR_JPEG_FILE = "cifar10_cat_dog_jpeg_q75.npz"

# The embedded files (afterkernel/embedded/): all of MNIST 3, 5, 6, 8; CIFAR-10
# cat/dog 300 / 100 per class drawn with seed 0 (`subset_seed` array); regenerate with
# `python tools/make_embedded_data.py --source-dir DIR`, which prints these
# values. The folder is looked up at call time so tests can monkeypatch it.
EMBEDDED_DIR = Path(__file__).resolve().parents[1] / "embedded"
EMBEDDED: dict[str, dict[str, Any]] = {
    "mnist": {
        "file": "mnist_3568.npz",
        "sha256": "f5c0c3afd69f88b238c81c784b4fc2514da05f467303cdd0ae07560d633da5f9",
        "classes": (3, 5, 6, 8),
        "jpeg_derived": False,
    },
    "cifar10": {
        "file": "cifar10_cat_dog_jpeg_q75_subset.npz",
        "sha256": "6eb240b0504e19792820a779be310e9aec82bad8006bb9bcd3ca1ad9cb94ca2c",
        "classes": (3, 5),
        "jpeg_derived": True,
    },
}


def raw_data(problem: Problem, spec: dict[str, Any], fetched: str | os.PathLike | None = None,
             n_classes: int | None = None) -> RawData:
    """The data set of ``problem`` from its ``spec``; ``fetched``: the folder
    of rule ``fetch_data`` (source keras); ``n_classes`` of a user's file."""
    from afterkernel.data import own_files

    source = spec["source"]
    if source == "embedded":
        held = EMBEDDED[spec["dataset"]]["classes"]
        absent = [c for c in problem.classes if c not in held]
        if absent:
            raise DataError(
                f"the embedded {spec['dataset']} subset holds only classes {list(held)}, not "
                f"{absent} needed by {problem.name!r}; use `data.source: dir` (with `data.dir`) "
                f"or `data.source: keras` for it. {HOW_TO_PROVIDE}"
            )
        return _load_embedded(spec["dataset"])
    if source == "dir":
        return _load_dir(spec["dataset"], spec.get("path"))
    if source == "keras":
        return _load_keras(known_key(spec), fetched)
    if source == "npz":
        return own_files.load_npz(spec, n_classes)
    return own_files.load_images(spec)


def source_files(spec: dict[str, Any]) -> list[str]:
    """The files an embedded or dir data set is read from (none for keras:
    rule fetch_data's file is the input); ``DataError`` if one is missing."""
    if spec["source"] == "embedded":
        return [str(_embedded_file(spec["dataset"]))]
    if spec["source"] != "dir":
        return []
    path = _dir_file(spec["dataset"], spec.get("path"))
    if path.is_dir():
        return [str(path / name) for name in (*CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH)]
    return [str(path)]


# --- dir ----------------------------------------------------------------------
def _dir_not_found(directory: Path, what: str) -> DataError:
    return DataError(f"data folder {directory} {what}. {HOW_TO_PROVIDE}")


def _data_folder(directory: str | os.PathLike | None) -> Path:
    """The existing folder ``data.dir``."""
    if directory is None or str(directory) == "":
        raise DataError(
            "data.source is 'dir' but no folder was given: set `data.dir` in the config "
            f"(or pass directory=...). {HOW_TO_PROVIDE}"
        )
    folder = Path(os.path.expanduser(str(directory)))
    if not folder.exists():
        raise _dir_not_found(folder, "(data.dir) does not exist")
    if not folder.is_dir():
        raise _dir_not_found(folder, "(data.dir) is not a folder")
    return folder


def _dir_file(dataset: str, directory: str | os.PathLike | None) -> Path:
    """The file (or CIFAR-10 batch folder) of ``dataset`` in the folder ``directory``."""
    folder = _data_folder(directory)
    if dataset == "mnist":
        path = folder / MNIST_FILE
        if not path.is_file():
            raise _dir_not_found(
                folder, f"(data.dir) has no `{MNIST_FILE}` (keras' MNIST file, arrays "
                "x_train, y_train, x_test, y_test) for the MNIST problems"
            )
        return path
    if (folder / CIFAR_BATCH_DIR).is_dir():  # the exact pixels win over the JPEG file
        return folder / CIFAR_BATCH_DIR
    if (folder / CIFAR_JPEG_FILE).is_file():
        return folder / CIFAR_JPEG_FILE
    raise _dir_not_found(
        folder, f"(data.dir) has neither `{CIFAR_BATCH_DIR}/` (data_batch_1..5, test_batch) "
        f"nor `{CIFAR_JPEG_FILE}` for the CIFAR-10 problems"
    )


def _load_dir(dataset: str, directory: str | os.PathLike | None) -> RawData:
    path = _dir_file(dataset, directory)
    if path.is_dir():
        return load_cifar_batches(path)
    return read_npz_file(path, path.name, dataset, jpeg_derived=path.name == CIFAR_JPEG_FILE)


# --- embedded -------------------------------------------------------------------
_REGEN = ("regenerate it with `python tools/make_embedded_data.py --source-dir DIR` "
          "or reinstall the package")


def _embedded_file(dataset: str) -> Path:
    path = Path(EMBEDDED_DIR) / EMBEDDED[dataset]["file"]
    if not path.is_file():
        raise DataError(f"embedded data file {path} is missing; {_REGEN}. {HOW_TO_PROVIDE}")
    return path


def _load_embedded(dataset: str) -> RawData:
    spec = EMBEDDED[dataset]
    path = _embedded_file(dataset)
    digest = sha256_file(path)
    if digest != spec["sha256"]:
        raise DataError(
            f"embedded data file {path} fails its checksum (sha256 {digest}, expected "
            f"{spec['sha256']}): it is corrupt or was modified; {_REGEN}."
        )
    return read_npz_file(path, f"embedded/{spec['file']}", dataset,
                         jpeg_derived=bool(spec["jpeg_derived"]), digest=digest)


# --- keras ----------------------------------------------------------------------
def _array_hash(*arrays: np.ndarray) -> str:
    return combine_hashes(
        [hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() for a in arrays]
    )


def _keras_call(dataset: str) -> tuple[str, dict[str, str]]:
    """The ``keras.datasets`` module and ``load_data`` arguments of a
    :data:`~afterkernel.data.catalog.KNOWN` name (``cifar100_coarse``: the
    20 superclasses)."""
    if dataset.startswith("cifar100"):
        return "cifar100", {"label_mode": "coarse" if dataset.endswith("_coarse") else "fine"}
    return dataset, {}


def _keras_arrays(dataset: str) -> tuple[np.ndarray, ...]:
    """``keras.datasets.{dataset}.load_data()`` as (x_train, y_train, x_test, y_test)."""
    try:
        datasets = importlib.import_module("keras.datasets")
    except ImportError as e:
        raise DataError(f"data.source is 'keras' but keras cannot be imported ({e}). "
                        f"{HOW_TO_PROVIDE}") from e
    name, kwargs = _keras_call(dataset)
    module = getattr(datasets, name)
    try:
        (x_train, y_train), (x_test, y_test) = module.load_data(**kwargs)
    except Exception as e:  # noqa: BLE001 - keras raises bare Exception on fetch failure
        raise DataError(
            f"could not get {dataset} through keras.datasets.{dataset}.load_data() "
            f"({type(e).__name__}: {e}). Offline? Use `data.source: dir` with `data.dir` set "
            f"to a folder holding the files, or `data.source: embedded`. {HOW_TO_PROVIDE}"
        ) from e
    return np.asarray(x_train), np.asarray(y_train), np.asarray(x_test), np.asarray(y_test)


def _channels_last(dataset: str, x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if dataset.startswith("cifar") and x_train.ndim == 4 and x_train.shape[1] == 3:  # channels_first
        x_train, x_test = x_train.transpose(0, 2, 3, 1), x_test.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x_train), np.ascontiguousarray(x_test)


def fetch_keras_dataset(dataset: str, out: str | os.PathLike) -> None:
    """The job of rule ``fetch_data``: ``keras.datasets.{dataset}`` as the
    ``.npz`` file ``out`` (x_train, y_train, x_test, y_test; images channels
    last), written atomically."""
    from afterkernel.io import atomic_file

    x_train, y_train, x_test, y_test = _keras_arrays(dataset)
    x_train, x_test = _channels_last(dataset, x_train, x_test)
    with atomic_file(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def fetched_file(directory: str | os.PathLike, dataset: str) -> Path:
    """Where :func:`fetch_keras_dataset` puts ``dataset`` in ``directory``."""
    return Path(directory) / f"{dataset}.npz"


def _load_keras(dataset: str, fetched: str | os.PathLike | None = None) -> RawData:
    """The arrays of ``keras.datasets.{dataset}``: from the folder ``fetched``
    of rule ``fetch_data`` when given, else from keras itself."""
    if fetched is not None:
        path = fetched_file(fetched, dataset)
        if not path.is_file():
            raise DataError(f"{path} does not exist: the workflow's rule fetch_data writes the keras "
                            f"{dataset} there (by hand: leave the folder out to download). {HOW_TO_PROVIDE}")
        arrays = read_npz(path)
        x_train, y_train, x_test, y_test = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    else:
        x_train, y_train, x_test, y_test = _keras_arrays(dataset)
        x_train, x_test = _channels_last(dataset, x_train, x_test)
    name, kwargs = _keras_call(dataset)
    call = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    raw = RawData(
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        source_sha256="", source_files=[f"keras.datasets.{name}.load_data({call})"],
        jpeg_derived=False,
    )
    raw = check_raw(raw, dataset, f"keras.datasets.{name}")
    # keras hides its cache path: hash the arrays it returned instead.
    raw.source_sha256 = _array_hash(raw.x_train, raw.y_train.astype(np.uint8),
                                    raw.x_test, raw.y_test.astype(np.uint8))
    return raw
