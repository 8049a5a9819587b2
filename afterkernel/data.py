"""Problems, data sources, preprocessing and the problem HDF5 file.

A *problem* is a binary classification task between two classes of MNIST or
CIFAR-10, named ``mnist-{a}v{b}`` (``mnist-3v8``), ``cifar10-{name}-{name}``
(``cifar10-cat-dog``) or ``cifar10-{i}v{j}`` (``cifar10-3v5``).  Label 1 is the
*second* class of the name, label 0 the first.

Sources (config key ``data.source``):

``embedded``
    a small subset of the real data shipped inside the package
    (``afterkernel/embedded/``, see its README); checked against sha256 values
    stored in this module.
``dir``
    a local folder (config key ``data.dir``) holding keras' ``mnist.npz``
    and/or CIFAR-10: the python batches ``cifar-10-batches-py/`` (exact
    CIFAR-10, preferred) or ``cifar10_cat_dog_jpeg_q75.npz`` (cat and dog
    only, decoded from JPEG: *not* the exact CIFAR-10 pixels).
``keras``
    download with ``keras.datasets`` (cached by keras in ``~/.keras``); needs
    a network connection the first time.

Preprocessing follows the paper: only the two classes, original order kept
(no shuffling), float32 pixels / 255 in NHWC (MNIST gets a channel axis), no
mean subtraction; labels uint8 in {0, 1}.

Safety: ``.npz`` files are read with ``allow_pickle=False``.  The CIFAR-10
python batches are pickles; only files at exactly
``{data.dir}/cifar-10-batches-py/data_batch_{1..5}`` and ``test_batch`` are
ever unpickled, and then with an unpickler that only resolves the handful of
numpy names an array needs.

This module does not import TensorFlow or Keras; ``keras.datasets`` is
imported only when the ``keras`` source is used.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CIFAR10_CLASSES",
    "DataError",
    "EMBEDDED",
    "Problem",
    "ProblemData",
    "SOURCES",
    "load_problem",
    "parse_problem",
    "read_problem",
    "draw_test_sample",
    "write_problem",
]


class DataError(ValueError, RuntimeError):
    """Data missing, unreadable or not what was expected; the message says how to fix it."""


CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
SOURCES = ("embedded", "dir", "keras")
DATASETS = ("mnist", "cifar10")
IMAGE_SHAPES = {"mnist": (28, 28), "cifar10": (32, 32, 3)}

# File names inside a `dir` source folder.
MNIST_FILE = "mnist.npz"
CIFAR_BATCH_DIR = "cifar-10-batches-py"
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCH = "test_batch"
CIFAR_JPEG_FILE = "cifar10_cat_dog_jpeg_q75.npz"

# The embedded subsets (afterkernel/embedded/); regenerate with
# `python tools/make_embedded_data.py --source-dir DIR`, which prints these
# values.  The folder is looked up at call time so tests can monkeypatch it.
EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
EMBEDDED: dict[str, dict[str, Any]] = {
    "mnist": {
        "file": "mnist_3568_subset.npz",
        "sha256": "c896ae98b0c067c4d9a2a591b801c83f6b5ae893c3720efa6fef4dc95cfa9818",
        "classes": (3, 5, 6, 8),
        "jpeg_derived": False,
    },
    "cifar10": {
        "file": "cifar10_cat_dog_jpeg_q75_subset.npz",
        "sha256": "d9a70b1239d6d4cf2f33b535a281bb59ee13eb88ee1aff80c5bb93dfb9cb0986",
        "classes": (3, 5),
        "jpeg_derived": True,
    },
}

_HOW_TO_PROVIDE = (
    "Provide the data in one of these ways (config keys `data.source` and `data.dir`):\n"
    "  - data.source: dir, data.dir: a folder holding keras' `mnist.npz` (MNIST) and/or\n"
    "    `cifar-10-batches-py/` with data_batch_1..data_batch_5 and test_batch (the\n"
    "    CIFAR-10 python version, cifar-10-python.tar.gz unpacked), or\n"
    "    `cifar10_cat_dog_jpeg_q75.npz` (JPEG-derived cat/dog only);\n"
    "  - data.source: keras, to download with keras.datasets (needs network access once);\n"
    "  - data.source: embedded, the small subset shipped with the package\n"
    "    (MNIST digits 3, 5, 6, 8 and CIFAR-10 cat/dog only)."
)

_PROBLEM_FORMS = (
    "accepted problem names: 'mnist-{a}v{b}' with digits a != b (e.g. 'mnist-3v8'), "
    "'cifar10-{name}-{name}' with CIFAR-10 class names "
    f"({', '.join(CIFAR10_CLASSES)}; e.g. 'cifar10-cat-dog'), or "
    "'cifar10-{i}v{j}' with class indices 0-9, i != j (e.g. 'cifar10-3v5'); "
    "label 1 is the second class of the name"
)


# --------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """A two-class problem; ``classes[1]`` gets label 1."""

    name: str
    dataset: str
    classes: tuple[int, int]
    class_names: tuple[str, str]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape of one preprocessed image (H, W, C)."""
        return (28, 28, 1) if self.dataset == "mnist" else (32, 32, 3)


_MNIST_RE = re.compile(r"mnist-(\d)v(\d)")
_CIFAR_IDX_RE = re.compile(r"cifar10-(\d)v(\d)")
_CIFAR_NAME_RE = re.compile(r"cifar10-([a-z]+)-([a-z]+)")


def parse_problem(name: str | Problem) -> Problem:
    """Parse a problem name (see module docstring); ``ValueError`` if malformed."""
    if isinstance(name, Problem):
        return name
    if not isinstance(name, str):
        raise ValueError(f"problem name must be a string, got {name!r}; {_PROBLEM_FORMS}")
    m = _MNIST_RE.fullmatch(name)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        dataset = "mnist"
    else:
        m = _CIFAR_IDX_RE.fullmatch(name)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            dataset = "cifar10"
        else:
            m = _CIFAR_NAME_RE.fullmatch(name)
            if not m or m.group(1) not in CIFAR10_CLASSES or m.group(2) not in CIFAR10_CLASSES:
                raise ValueError(f"unknown problem {name!r}; {_PROBLEM_FORMS}")
            a, b = CIFAR10_CLASSES.index(m.group(1)), CIFAR10_CLASSES.index(m.group(2))
            dataset = "cifar10"
    if a == b:
        raise ValueError(f"problem {name!r} names the same class twice; {_PROBLEM_FORMS}")
    if dataset == "mnist":
        class_names = (str(a), str(b))
    else:
        class_names = (CIFAR10_CLASSES[a], CIFAR10_CLASSES[b])
    return Problem(name=name, dataset=dataset, classes=(a, b), class_names=class_names)


# --------------------------------------------------------------------------
# Problem data
# --------------------------------------------------------------------------
@dataclass
class ProblemData:
    """Preprocessed data of one problem: float32 NHWC images in [0, 1], uint8 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _combine_hashes(hashes: list[str]) -> str:
    """One hash for one file; sha256 of the concatenated hex digests for several."""
    if len(hashes) == 1:
        return hashes[0]
    return hashlib.sha256("".join(hashes).encode()).hexdigest()


@dataclass
class _Raw:
    """Raw uint8 images and integer class labels (0-9) of one dataset."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source_sha256: str
    source_files: list[str]
    jpeg_derived: bool


def _check_raw(raw: _Raw, dataset: str, where: str) -> _Raw:
    """Validate shapes, dtypes and label ranges; labels become 1-D int64."""
    shape = IMAGE_SHAPES[dataset]
    for split in ("train", "test"):
        x = getattr(raw, f"x_{split}")
        y = np.asarray(getattr(raw, f"y_{split}"))
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.shape[1:] != shape:
            got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise DataError(
                f"{where}: x_{split} should be uint8 of shape (n, {', '.join(map(str, shape))}), "
                f"got {got}; the file is corrupt or not {dataset} data. {_HOW_TO_PROVIDE}"
            )
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.shape[0] != x.shape[0] or not np.issubdtype(y.dtype, np.integer):
            raise DataError(
                f"{where}: y_{split} should be integer labels of shape ({x.shape[0]},), "
                f"got {y.dtype} {y.shape}; the file is corrupt. {_HOW_TO_PROVIDE}"
            )
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{where}: y_{split} has labels outside 0-9; the file is corrupt.")
        setattr(raw, f"y_{split}", y.astype(np.int64))
    return raw


_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read the four keras-layout arrays of an ``.npz`` (no pickles)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in _NPZ_KEYS if k not in f.files]
            if missing:
                raise DataError(
                    f"{path}: missing arrays {missing} (has {sorted(f.files)}); expected the keras "
                    f"layout x_train, y_train, x_test, y_test. {_HOW_TO_PROVIDE}"
                )
            return {k: f[k] for k in _NPZ_KEYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise DataError(
            f"{path}: cannot read this .npz file ({type(e).__name__}: {e}); it is corrupt or "
            f"truncated: replace it with a fresh copy. {_HOW_TO_PROVIDE}"
        ) from e


# --- CIFAR-10 python batches (pickles): restricted unpickling ---------------
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


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> uint8 (n, 32, 32, 3), labels (n,)."""
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - any failure means a corrupt batch
        raise DataError(
            f"{path}: cannot read this CIFAR-10 python batch ({type(e).__name__}: {e}); "
            f"replace `{CIFAR_BATCH_DIR}/` with a fresh copy from cifar-10-python.tar.gz. "
            f"{_HOW_TO_PROVIDE}"
        ) from e
    if not isinstance(d, dict):
        raise DataError(f"{path}: not a CIFAR-10 python batch (a {type(d).__name__}, not a dict).")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
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
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), labels


# --- sources ------------------------------------------------------------------
def _dir_not_found(directory: Path, what: str) -> DataError:
    return DataError(f"data folder {directory} {what}. {_HOW_TO_PROVIDE}")


def _load_dir(dataset: str, directory: str | os.PathLike | None) -> _Raw:
    if directory is None or str(directory) == "":
        raise DataError(
            "data.source is 'dir' but no folder was given: set `data.dir` in the config "
            f"(or pass directory=...). {_HOW_TO_PROVIDE}"
        )
    directory = Path(os.path.expanduser(str(directory)))
    if not directory.exists():
        raise _dir_not_found(directory, "(data.dir) does not exist")
    if not directory.is_dir():
        raise _dir_not_found(directory, "(data.dir) is not a folder")
    if dataset == "mnist":
        path = directory / MNIST_FILE
        if not path.is_file():
            raise _dir_not_found(
                directory, f"(data.dir) has no `{MNIST_FILE}` (keras' MNIST file, arrays "
                "x_train, y_train, x_test, y_test) for the MNIST problems"
            )
        arrays = _read_npz(path)
        raw = _Raw(**arrays, source_sha256=_sha256_file(path), source_files=[MNIST_FILE],
                   jpeg_derived=False)
        return _check_raw(raw, dataset, str(path))

    batch_dir = directory / CIFAR_BATCH_DIR
    if batch_dir.is_dir():
        names = [*CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH]
        missing = [n for n in names if not (batch_dir / n).is_file()]
        if missing:
            raise DataError(
                f"CIFAR-10 folder {batch_dir} lacks {', '.join(missing)}; it needs "
                f"{', '.join(names)} (cifar-10-python.tar.gz unpacked). {_HOW_TO_PROVIDE}"
            )
        parts = [_read_cifar_batch(batch_dir / n) for n in names]
        raw = _Raw(
            x_train=np.concatenate([p[0] for p in parts[:5]]),
            y_train=np.concatenate([p[1] for p in parts[:5]]),
            x_test=parts[5][0], y_test=parts[5][1],
            source_sha256=_combine_hashes([_sha256_file(batch_dir / n) for n in names]),
            source_files=[f"{CIFAR_BATCH_DIR}/{n}" for n in names], jpeg_derived=False,
        )
        return _check_raw(raw, dataset, str(batch_dir))
    path = directory / CIFAR_JPEG_FILE
    if path.is_file():
        arrays = _read_npz(path)
        raw = _Raw(**arrays, source_sha256=_sha256_file(path), source_files=[CIFAR_JPEG_FILE],
                   jpeg_derived=True)
        return _check_raw(raw, dataset, str(path))
    raise _dir_not_found(
        directory, f"(data.dir) has neither `{CIFAR_BATCH_DIR}/` (data_batch_1..5, test_batch) "
        f"nor `{CIFAR_JPEG_FILE}` for the CIFAR-10 problems"
    )


def _load_embedded(dataset: str) -> _Raw:
    spec = EMBEDDED[dataset]
    path = Path(EMBEDDED_DIR) / spec["file"]
    regen = ("regenerate it with `python tools/make_embedded_data.py --source-dir DIR` "
             "or reinstall the package")
    if not path.is_file():
        raise DataError(f"embedded data file {path} is missing; {regen}. {_HOW_TO_PROVIDE}")
    digest = _sha256_file(path)
    if digest != spec["sha256"]:
        raise DataError(
            f"embedded data file {path} fails its checksum (sha256 {digest}, expected "
            f"{spec['sha256']}): it is corrupt or was modified; {regen}."
        )
    arrays = _read_npz(path)
    raw = _Raw(**arrays, source_sha256=digest, source_files=[f"embedded/{spec['file']}"],
               jpeg_derived=bool(spec["jpeg_derived"]))
    return _check_raw(raw, dataset, str(path))


def _array_hash(*arrays: np.ndarray) -> str:
    return _combine_hashes(
        [hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() for a in arrays]
    )


def _load_keras(dataset: str) -> _Raw:
    try:
        datasets = importlib.import_module("keras.datasets")
    except ImportError as e:
        raise DataError(f"data.source is 'keras' but keras cannot be imported ({e}). "
                        f"{_HOW_TO_PROVIDE}") from e
    module = getattr(datasets, dataset)
    try:
        (x_train, y_train), (x_test, y_test) = module.load_data()
    except Exception as e:  # noqa: BLE001 - keras raises bare Exception on fetch failure
        raise DataError(
            f"could not get {dataset} through keras.datasets.{dataset}.load_data() "
            f"({type(e).__name__}: {e}). Offline? Use `data.source: dir` with `data.dir` set "
            f"to a folder holding the files, or `data.source: embedded`. {_HOW_TO_PROVIDE}"
        ) from e
    x_train, x_test = np.asarray(x_train), np.asarray(x_test)
    if dataset == "cifar10" and x_train.ndim == 4 and x_train.shape[1] == 3:  # channels_first
        x_train, x_test = x_train.transpose(0, 2, 3, 1), x_test.transpose(0, 2, 3, 1)
    raw = _Raw(
        x_train=np.ascontiguousarray(x_train), y_train=np.asarray(y_train),
        x_test=np.ascontiguousarray(x_test), y_test=np.asarray(y_test),
        source_sha256="", source_files=[f"keras.datasets.{dataset}.load_data()"],
        jpeg_derived=False,
    )
    raw = _check_raw(raw, dataset, f"keras.datasets.{dataset}")
    # keras hides its cache path: hash the arrays it returned instead.
    raw.source_sha256 = _array_hash(raw.x_train, raw.y_train.astype(np.uint8),
                                    raw.x_test, raw.y_test.astype(np.uint8))
    return raw


def _check_cap(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{key} must be a positive integer or null (all), got {value!r}")
    return int(value)


def _select(y: np.ndarray, classes: tuple[int, int], cap: int | None) -> np.ndarray:
    """Indices of the first ``cap`` examples of each class, in original order."""
    idx = [np.flatnonzero(y == c)[:cap] for c in classes]
    return np.sort(np.concatenate(idx))


def _to_float(x: np.ndarray, dataset: str) -> np.ndarray:
    out = x.astype(np.float32)
    out /= np.float32(255.0)
    return out[..., None] if dataset == "mnist" else out


def load_problem(
    problem: str | Problem,
    source: str = "embedded",
    directory: str | os.PathLike | None = None,
    max_train_per_class: int | None = None,
    max_test_per_class: int | None = None,
) -> ProblemData:
    """Load and preprocess one problem from ``source`` (see module docstring).

    ``max_*_per_class`` keep the first k examples of each class (original
    order); ``None`` keeps all.  Raises :class:`DataError` when the data are
    missing or corrupt, with a message saying how to provide them.
    """
    prob = parse_problem(problem)
    if source not in SOURCES:
        raise DataError(f"data.source must be one of {', '.join(SOURCES)}, got {source!r}")
    cap_train = _check_cap(max_train_per_class, "data.max_train_per_class")
    cap_test = _check_cap(max_test_per_class, "data.max_test_per_class")
    if source == "embedded":
        held = EMBEDDED[prob.dataset]["classes"]
        absent = [c for c in prob.classes if c not in held]
        if absent:
            raise DataError(
                f"the embedded {prob.dataset} subset holds only classes {list(held)}, not "
                f"{absent} needed by {prob.name!r}; use `data.source: dir` (with `data.dir`) "
                f"or `data.source: keras` for it. {_HOW_TO_PROVIDE}"
            )
        raw = _load_embedded(prob.dataset)
    elif source == "dir":
        raw = _load_dir(prob.dataset, directory)
    else:
        raw = _load_keras(prob.dataset)

    out: dict[str, np.ndarray] = {}
    counts: dict[str, list[int]] = {}
    for split, cap in (("train", cap_train), ("test", cap_test)):
        y_all = getattr(raw, f"y_{split}")
        idx = _select(y_all, prob.classes, cap)
        y = (y_all[idx] == prob.classes[1]).astype(np.uint8)
        counts[split] = [int(np.sum(y == 0)), int(np.sum(y == 1))]
        empty = [prob.classes[k] for k in (0, 1) if counts[split][k] == 0]
        if empty:
            raise DataError(
                f"{source} data for {prob.name!r} has no {split} examples of class(es) {empty} "
                f"(from {', '.join(raw.source_files)}); the data are incomplete. {_HOW_TO_PROVIDE}"
            )
        out[f"x_{split}"] = _to_float(getattr(raw, f"x_{split}")[idx], prob.dataset)
        out[f"y_{split}"] = y
    attrs = {
        "problem": prob.name,
        "dataset": prob.dataset,
        "classes": list(prob.classes),
        "class_names": list(prob.class_names),
        "source": source,
        "n_train": int(out["y_train"].shape[0]),
        "n_test": int(out["y_test"].shape[0]),
        "train_counts": counts["train"],
        "test_counts": counts["test"],
        "source_sha256": raw.source_sha256,
        "source_files": raw.source_files,
        "jpeg_derived": bool(raw.jpeg_derived),
        "max_train_per_class": cap_train,
        "max_test_per_class": cap_test,
    }
    return ProblemData(attrs=attrs, **out)


#: seed of the test sample's draw (one sample per problem, shared by every run)
TEST_SAMPLE_SEED = 0


def draw_test_sample(y_test: np.ndarray, size: int | None, seed: int = TEST_SAMPLE_SEED) -> np.ndarray:
    """Indices (sorted, int64 (k,)) of the test sample on which alignment,
    effective rank, target alignment and invariances are measured (paper §2):
    a seeded draw without replacement with ``size // 2`` images of label 0
    and the rest of label 1 (all of a class when it has fewer), so a
    class-sorted test set still gives both classes. ``size`` ``None`` or at
    least ``len(y_test)``: every test image. Depends only on the labels,
    ``size`` and ``seed``: the same images for every run and snapshot."""
    y = np.asarray(y_test).reshape(-1)
    m = len(y)
    if size is None or int(size) >= m:
        return np.arange(m, dtype=np.int64)
    k = int(size)
    pools = [np.flatnonzero(y == 0), np.flatnonzero(y != 0)]
    want0 = min(k // 2, len(pools[0]))
    want1 = min(k - want0, len(pools[1]))
    want0 = min(k - want1, len(pools[0]))  # a small class leaves its share to the other
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), k, m]))
    picked = [rng.choice(pool, want, replace=False) for pool, want in zip(pools, (want0, want1))]
    return np.sort(np.concatenate(picked)).astype(np.int64)


# --------------------------------------------------------------------------
# The problem HDF5 file
# --------------------------------------------------------------------------
def write_problem(path: str | os.PathLike, data: ProblemData) -> None:
    """Write ``data`` atomically to ``path`` (datasets x/y train/test + attrs)."""
    from afterkernel.io import atomic_h5, set_attrs

    with atomic_h5(path) as f:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            arr = np.ascontiguousarray(getattr(data, key))
            kw: dict[str, Any] = {}
            if arr.ndim > 1 and arr.shape[0] > 0:
                kw = dict(compression="gzip", compression_opts=1, shuffle=True,
                          chunks=(min(arr.shape[0], 256), *arr.shape[1:]))
            f.create_dataset(key, data=arr, **kw)
        set_attrs(f, data.attrs)


def read_problem(path: str | os.PathLike) -> ProblemData:
    """Read a problem file written by :func:`write_problem`; ``DataError`` if missing/corrupt."""
    import h5py

    from afterkernel.io import get_attrs

    path = Path(path)
    regen = (
        f"regenerate it: delete it and run `snakemake {path}` (rule prepare_data), or "
        f"`python scripts/prepare_data.py --problem PROBLEM --out {path}`"
    )
    if not path.is_file():
        raise DataError(f"problem data file {path} does not exist; {regen}.")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in _NPZ_KEYS if k not in f]
            if missing:
                raise DataError(f"problem data file {path} lacks datasets {missing}; "
                                f"it is incomplete or not a problem file; {regen}.")
            arrays = {k: f[k][()] for k in _NPZ_KEYS}
            attrs = get_attrs(f)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - h5py raises OSError/KeyError/RuntimeError...
        raise DataError(f"problem data file {path} is corrupt or unreadable "
                        f"({type(e).__name__}: {e}); {regen}.") from e
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
