"""Tests of the data layer (afterkernel.data, scripts/prepare_data.py)."""

from __future__ import annotations

import os
import pickle
import runpy
import shutil
import subprocess
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import pytest

from afterkernel import data as D
from afterkernel.data import (DataError, load_problem, parse_problem, prepare_problem_file,
                              read_problem, write_problem)
from afterkernel.data import raw, sources

REPO = Path(__file__).resolve().parents[2]


def _shared_data_dir() -> Path:
    env = os.environ.get("AFTERKERNEL_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


SHARED = _shared_data_dir()
needs_shared = pytest.mark.skipif(
    not (SHARED / "mnist.npz").is_file() or not (SHARED / "cifar10_cat_dog_jpeg_q75.npz").is_file(),
    reason=f"real data not found at {SHARED} (set AFTERKERNEL_SHARED_DATA to the folder holding "
    "mnist.npz and cifar10_cat_dog_jpeg_q75.npz)",
)


# ---------------------------------------------------------------------------
# problem names
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, dataset, classes, names",
    [
        ("mnist-3v8", "mnist", (3, 8), ("3", "8")),
        ("mnist-5v6", "mnist", (5, 6), ("5", "6")),
        ("cifar10-cat-dog", "cifar10", (3, 5), ("cat", "dog")),
        ("cifar10-dog-cat", "cifar10", (5, 3), ("dog", "cat")),
        ("cifar10-0v9", "cifar10", (0, 9), ("airplane", "truck")),
    ],
)
def test_parse_problem(name, dataset, classes, names):
    p = parse_problem(name)
    assert (p.name, p.dataset, p.classes, p.class_names) == (name, dataset, classes, names)
    with pytest.raises(Exception):
        p.name = "x"  # frozen


@pytest.mark.parametrize(
    "bad", ["mnist-3v3", "mnist-38", "mnist-3v10", "cifar10-cat-cat", "cifar10-cat-wolf",
            "cifar100-1v2", "MNIST-3v8", " mnist-3v8", "cifar10-3v3", ""],
)
def test_parse_problem_rejects(bad):
    with pytest.raises(ValueError, match=r"\{dataset\}-\{a\}v\{b\}.*\{dataset\}-\{name\}-\{name\}"):
        parse_problem(bad)


# ---------------------------------------------------------------------------
# embedded source
# ---------------------------------------------------------------------------
def test_no_tensorflow_at_import():
    code = ("import sys, afterkernel.data; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]; "
            "sys.exit(1 if bad else 0)")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# the embedded MNIST file holds every image of digits 3, 5, 6, 8 (the full
# problems); the CIFAR file 300 train / 100 test per class
@pytest.mark.parametrize("problem, shape, train_counts, test_counts", [
    ("mnist-3v8", (28, 28, 1), [6131, 5851], [1010, 974]),
    ("mnist-5v6", (28, 28, 1), [5421, 5918], [892, 958]),
    ("cifar10-cat-dog", (32, 32, 3), [300, 300], [100, 100]),
])
def test_embedded_shapes_dtypes_labels(problem, shape, train_counts, test_counts):
    n_train, n_test = sum(train_counts), sum(test_counts)
    d = load_problem(problem, source="embedded")
    assert d.x_train.shape == (n_train, *shape) and d.x_test.shape == (n_test, *shape)
    assert d.x_train.dtype == np.float32 and d.x_test.dtype == np.float32
    assert d.y_train.dtype == np.uint8 and d.y_test.dtype == np.uint8
    for x in (d.x_train, d.x_test):
        assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.9
    assert set(np.unique(d.y_train)) == {0, 1} and set(np.unique(d.y_test)) == {0, 1}
    a = d.attrs
    assert a["n_train"] == n_train and a["n_test"] == n_test
    assert a["train_counts"] == train_counts and a["test_counts"] == test_counts
    assert a["source"] == "embedded" and a["problem"] == problem
    assert a["max_train_per_class"] is None and a["subset_seed"] is None  # nothing drawn
    assert a["source_sha256"] == D.EMBEDDED[a["dataset"]]["sha256"]
    assert a["jpeg_derived"] is (a["dataset"] == "cifar10")


def test_embedded_matches_raw_order_and_labels():
    """Label 1 = second class; rows are the raw rows of the two classes in order, / 255."""
    with np.load(sources.EMBEDDED_DIR / D.EMBEDDED["mnist"]["file"]) as f:
        x, y, idx = f["x_train"], f["y_train"], f["index_train"]
    assert np.all(np.diff(idx) > 0)  # original order kept in the embedded file
    keep = np.isin(y, [3, 8])
    d = load_problem("mnist-3v8")
    np.testing.assert_array_equal(d.y_train, (y[keep] == 8).astype(np.uint8))
    np.testing.assert_array_equal(d.x_train[..., 0], x[keep].astype(np.float32) / np.float32(255))
    # reversed problem name: labels flip, order unchanged
    r = load_problem("mnist-8v3")
    np.testing.assert_array_equal(r.y_train, 1 - d.y_train)
    np.testing.assert_array_equal(r.x_train, d.x_train)
    # CIFAR: cats come first in the source, so label 0 (cat) rows come first
    c = load_problem("cifar10-cat-dog")
    assert c.y_train[:300].max() == 0 and c.y_train[300:].min() == 1


def _rows_of(full, part, split):
    """The rows of ``full`` that ``part`` holds (images are distinct in MNIST 5-vs-6 here)."""
    xf = getattr(full, f"x_{split}").reshape(getattr(full, f"x_{split}").shape[0], -1)
    xp = getattr(part, f"x_{split}").reshape(getattr(part, f"x_{split}").shape[0], -1)
    where = {row.tobytes(): i for i, row in enumerate(xf)}
    return np.array([where[row.tobytes()] for row in xp])


def test_caps_are_seeded_class_balanced_draws_from_the_whole_split():
    full = load_problem("mnist-5v6")
    d = load_problem("mnist-5v6", max_train_per_class=100, max_test_per_class=30)
    assert d.attrs["train_counts"] == [100, 100] and d.attrs["test_counts"] == [30, 30]
    assert d.attrs["n_train"] == 200 and d.x_test.shape[0] == 60
    assert (d.attrs["max_train_per_class"], d.attrs["max_test_per_class"], d.attrs["subset_seed"]) == (100, 30, 0)
    for split, k in (("train", 100), ("test", 30)):
        yf = getattr(full, f"y_{split}")
        idx = D.draw_per_class(np.where(yf == 0, 5, 6), (5, 6), k, 0, split)  # seeded by the digit
        np.testing.assert_array_equal(getattr(d, f"x_{split}"), getattr(full, f"x_{split}")[idx])
        np.testing.assert_array_equal(getattr(d, f"y_{split}"), yf[idx])
        rows = _rows_of(full, d, split)
        np.testing.assert_array_equal(rows, idx)
        assert np.all(np.diff(rows) > 0)  # original order kept
        for c in (0, 1):  # from the whole split: not the first k, and some from its second half
            of_class = np.flatnonzero(yf == c)
            picked = rows[getattr(d, f"y_{split}") == c]
            assert not np.array_equal(picked, of_class[:k])
            assert picked.max() > of_class[len(of_class) // 2]
    # same seed: the same images; another seed: others
    again = load_problem("mnist-5v6", max_train_per_class=100, max_test_per_class=30, subset_seed=0)
    np.testing.assert_array_equal(again.x_train, d.x_train)
    other = load_problem("mnist-5v6", max_train_per_class=100, max_test_per_class=30, subset_seed=1)
    assert other.attrs["train_counts"] == [100, 100] and other.attrs["subset_seed"] == 1
    assert len(np.intersect1d(_rows_of(full, other, "train"), _rows_of(full, d, "train"))) < 50
    # a cap above what exists keeps everything, in order
    big = load_problem("mnist-5v6", max_train_per_class=10**6)
    assert big.attrs["n_train"] == full.attrs["n_train"]
    np.testing.assert_array_equal(big.x_train, full.x_train)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(DataError, match="max_train_per_class"):
            load_problem("mnist-5v6", max_train_per_class=bad)
    for bad in (-1, 1.5, "0"):
        with pytest.raises(DataError, match="subset_seed"):
            load_problem("mnist-5v6", max_train_per_class=3, subset_seed=bad)


def test_draw_per_class():
    y = np.array([3] * 1000 + [8] * 50 + [3] * 1000 + [1] * 7)
    idx = D.draw_per_class(y, (3, 8), 100, seed=0)
    assert np.bincount(y[idx], minlength=9)[[3, 8]].tolist() == [100, 50]  # the small class: all of it
    assert np.all(np.diff(idx) > 0) and set(y[idx]) == {3, 8}
    threes = idx[y[idx] == 3]
    assert threes.min() < 1000 < threes.max()  # both halves of the class
    np.testing.assert_array_equal(idx, D.draw_per_class(y, (3, 8), 100, seed=0))
    np.testing.assert_array_equal(idx, D.draw_per_class(y, (8, 3), 100, seed=0))  # order of the classes
    assert not np.array_equal(idx, D.draw_per_class(y, (3, 8), 100, seed=1))
    assert not np.array_equal(idx, D.draw_per_class(y, (3, 8), 100, seed=0, split="test"))
    # a class's draw does not depend on the other class; a smaller cap keeps a subset
    np.testing.assert_array_equal(threes, D.draw_per_class(y, (3,), 100, seed=0))
    np.testing.assert_array_equal(threes, D.draw_per_class(y, (1, 3), 100, seed=0)[y[D.draw_per_class(
        y, (1, 3), 100, seed=0)] == 3])
    assert set(D.draw_per_class(y, (3,), 40, seed=0)) <= set(threes)
    np.testing.assert_array_equal(D.draw_per_class(y, (3, 8), None), np.flatnonzero(np.isin(y, [3, 8])))


def test_embedded_lacks_class_and_bad_source():
    with pytest.raises(DataError, match=r"classes \[3, 5, 6, 8\].*data.source: dir"):
        load_problem("mnist-1v7", source="embedded")
    with pytest.raises(DataError, match="data.source must be one of"):
        load_problem("mnist-3v8", source="internet")


@pytest.fixture
def embedded_copy(tmp_path, monkeypatch):
    folder = tmp_path / "embedded"
    shutil.copytree(sources.EMBEDDED_DIR, folder)
    monkeypatch.setattr(sources, "EMBEDDED_DIR", folder)
    return folder


def test_embedded_checksum_failure(embedded_copy):
    path = embedded_copy / D.EMBEDDED["mnist"]["file"]
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=rf"{path.name}.*checksum.*make_embedded_data"):
        load_problem("mnist-3v8")
    load_problem("cifar10-cat-dog", max_train_per_class=2, max_test_per_class=2)  # other file fine


def test_embedded_missing_file(embedded_copy):
    (embedded_copy / D.EMBEDDED["cifar10"]["file"]).unlink()
    with pytest.raises(DataError, match=r"missing.*data.source.*data.dir"):
        load_problem("cifar10-cat-dog")


# ---------------------------------------------------------------------------
# dir source: errors, npz, fake CIFAR python batches
# ---------------------------------------------------------------------------
def test_dir_missing_folder_and_files(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as e:
        load_problem("mnist-3v8", source="dir", directory=missing)
    msg = str(e.value)
    assert str(missing) in msg and "data.source" in msg and "data.dir" in msg and "mnist.npz" in msg
    with pytest.raises(DataError, match=r"no folder was given.*data\.dir"):
        load_problem("mnist-3v8", source="dir", directory=None)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=rf"{empty}.*mnist\.npz.*data\.dir"):
        load_problem("mnist-3v8", source="dir", directory=empty)
    with pytest.raises(DataError, match=rf"{empty}.*cifar-10-batches-py.*data\.dir"):
        load_problem("cifar10-cat-dog", source="dir", directory=empty)


def _fake_mnist(folder: Path, **override):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        "y_train": np.tile(np.arange(10, dtype=np.uint8), 4),
        "x_test": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "y_test": np.tile(np.arange(10, dtype=np.uint8), 2),
    }
    arrays.update(override)
    np.savez(folder / "mnist.npz", **arrays)
    return arrays


def test_dir_mnist_npz(tmp_path):
    arrays = _fake_mnist(tmp_path)
    d = load_problem("mnist-3v8", source="dir", directory=tmp_path)
    keep = np.isin(arrays["y_train"], [3, 8])
    np.testing.assert_array_equal(d.x_train[..., 0] * 255, arrays["x_train"][keep].astype(np.float32))
    np.testing.assert_array_equal(d.y_train, [0, 1, 0, 1, 0, 1, 0, 1])
    assert d.attrs["source_files"] == ["mnist.npz"]
    assert d.attrs["source_sha256"] == raw.sha256_file(tmp_path / "mnist.npz")
    assert d.attrs["jpeg_derived"] is False


def test_dir_corrupt_npz(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match=r"mnist\.npz.*corrupt"):
        load_problem("mnist-3v8", source="dir", directory=tmp_path)
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"missing arrays"):
        load_problem("mnist-3v8", source="dir", directory=tmp_path)
    _fake_mnist(tmp_path, x_train=np.zeros((40, 28, 28), np.float32))
    with pytest.raises(DataError, match=r"x_train should be uint8"):
        load_problem("mnist-3v8", source="dir", directory=tmp_path)
    _fake_mnist(tmp_path, y_test=np.zeros(20, np.uint8))  # no 3 or 8 in the test set
    with pytest.raises(DataError, match=r"no test examples"):
        load_problem("mnist-3v8", source="dir", directory=tmp_path)
    # object arrays would need pickle: refused
    np.savez(tmp_path / "mnist.npz", x_train=np.array([None, 1], dtype=object),
             y_train=np.zeros(2), x_test=np.zeros(2), y_test=np.zeros(2))
    with pytest.raises(DataError, match=r"corrupt"):
        load_problem("mnist-3v8", source="dir", directory=tmp_path)


def _fake_cifar_batches(folder: Path, n_per_batch: int = 20, protocol: int = 2) -> dict:
    """Batches with the CIFAR-10 python layout (bytes keys, data (n, 3072) uint8 CHW rows)."""
    rng = np.random.default_rng(1)
    bdir = folder / "cifar-10-batches-py"
    bdir.mkdir(parents=True)
    out = {"x": [], "y": []}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n_per_batch)]
        labels[:4] = [3, 5, 0, 9]  # every batch has the classes used below
        with open(bdir / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * n_per_batch}, f, protocol=protocol)
        out["x"].append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        out["y"].append(np.array(labels))
    return out


@pytest.mark.parametrize("protocol", [2, 5])
def test_dir_cifar_python_batches(tmp_path, protocol):
    fake = _fake_cifar_batches(tmp_path, protocol=protocol)
    # the JPEG file beside the batches is ignored: the exact batches win
    (tmp_path / "cifar10_cat_dog_jpeg_q75.npz").write_bytes(b"ignored")
    d = load_problem("cifar10-cat-dog", source="dir", directory=tmp_path)
    x_all, y_all = np.concatenate(fake["x"][:5]), np.concatenate(fake["y"][:5])
    keep = np.isin(y_all, [3, 5])
    assert d.x_train.shape == (keep.sum(), 32, 32, 3)
    np.testing.assert_array_equal(d.x_train * 255, x_all[keep].astype(np.float32))
    np.testing.assert_array_equal(d.y_train, (y_all[keep] == 5).astype(np.uint8))
    keep_t = np.isin(fake["y"][5], [3, 5])
    np.testing.assert_array_equal(d.x_test * 255, fake["x"][5][keep_t].astype(np.float32))
    a = d.attrs
    assert a["jpeg_derived"] is False and len(a["source_files"]) == 6
    assert a["train_counts"] == [int(np.sum(y_all == 3)), int(np.sum(y_all == 5))]
    # another pair from the same batches, by index
    e = load_problem("cifar10-0v9", source="dir", directory=tmp_path)
    assert e.attrs["class_names"] == ["airplane", "truck"]


def test_dir_cifar_batches_refuse_foreign_pickles(tmp_path):
    _fake_cifar_batches(tmp_path)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(pickle.dumps({b"data": os.system}, protocol=2))  # a callable global
    with pytest.raises(DataError, match=r"data_batch_3.*refusing"):
        load_problem("cifar10-cat-dog", source="dir", directory=tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataError, match=r"lacks test_batch"):
        load_problem("cifar10-cat-dog", source="dir", directory=tmp_path)


# ---------------------------------------------------------------------------
# keras source (faked: no network, no TensorFlow import)
# ---------------------------------------------------------------------------
def _fake_keras(monkeypatch, load_data):
    keras = types.ModuleType("keras")
    datasets = types.ModuleType("keras.datasets")
    datasets.mnist = types.SimpleNamespace(load_data=load_data)
    keras.datasets = datasets
    monkeypatch.setitem(sys.modules, "keras", keras)
    monkeypatch.setitem(sys.modules, "keras.datasets", datasets)


def test_keras_source_offline_message(monkeypatch):
    def offline():
        raise Exception("URL fetch failure on https://...: None -- [Errno -3] name resolution")
    _fake_keras(monkeypatch, offline)
    with pytest.raises(DataError, match=r"Offline\?.*data\.source: dir.*embedded"):
        load_problem("mnist-3v8", source="keras")


def test_keras_source_arrays(monkeypatch):
    y = np.tile(np.arange(10, dtype=np.uint8), 3)
    x = np.arange(30 * 784, dtype=np.int64).reshape(30, 28, 28).astype(np.uint8)
    _fake_keras(monkeypatch, lambda: ((x, y), (x[:10], y[:10])))
    d = load_problem("mnist-3v8", source="keras")
    assert d.attrs["n_train"] == 6 and d.attrs["n_test"] == 2 and d.attrs["source"] == "keras"
    assert len(d.attrs["source_sha256"]) == 64


# ---------------------------------------------------------------------------
# the problem HDF5 file
# ---------------------------------------------------------------------------
def test_write_read_roundtrip(tmp_path):
    d = load_problem("mnist-3v8", max_train_per_class=20, max_test_per_class=10)
    path = tmp_path / "sub" / "mnist-3v8.h5"
    write_problem(path, d)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]
    r = read_problem(path)
    for k in ("x_train", "y_train", "x_test", "y_test"):
        a, b = getattr(d, k), getattr(r, k)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    for k, v in d.attrs.items():
        assert r.attrs[k] == v, k
    assert r.attrs["classes"] == [3, 8] and r.attrs["train_counts"] == [20, 20]
    assert r.attrs["jpeg_derived"] is False and "code_version" in r.attrs
    assert r.input_shape == (28, 28, 1)


def test_read_problem_errors(tmp_path):
    missing = tmp_path / "mnist-3v8.h5"
    with pytest.raises(DataError, match=rf"{missing}.*does not exist.*prepare_data"):
        read_problem(missing)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    with pytest.raises(DataError, match=rf"{bad}.*corrupt.*regenerate"):
        read_problem(bad)
    part = tmp_path / "part.h5"
    with h5py.File(part, "w") as f:
        f["x_train"] = np.zeros((2, 28, 28, 1), np.float32)
    with pytest.raises(DataError, match=r"lacks datasets.*y_train"):
        read_problem(part)
    # truncated copy of a good file
    good = tmp_path / "good.h5"
    write_problem(good, load_problem("mnist-3v8", max_train_per_class=5, max_test_per_class=5))
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(DataError, match=r"trunc\.h5.*corrupt"):
        read_problem(trunc)


# ---------------------------------------------------------------------------
# scripts/prepare_data.py and its job
# ---------------------------------------------------------------------------
def test_prepare_data_job_and_snakemake_entry(tmp_path):
    out = tmp_path / "a.h5"
    attrs = prepare_problem_file("mnist-5v6", out, max_train_per_class=3, max_test_per_class=2)
    assert attrs["n_train"] == 6 and read_problem(out).attrs["n_test"] == 4
    # the Snakemake path: the script run with a fake `snakemake` object
    log = tmp_path / "logs" / "prepare.log"
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(), output=[str(tmp_path / "b.h5")], log=[str(log)],
        params=types.SimpleNamespace(problem="cifar10-cat-dog", data={
            "source": "embedded", "dir": None, "max_train_per_class": 4,
            "max_test_per_class": None, "subset_seed": 5}),
    )
    runpy.run_path(str(REPO / "scripts" / "prepare_data.py"), init_globals={"snakemake": smk})
    r = read_problem(tmp_path / "b.h5")
    assert r.attrs["train_counts"] == [4, 4] and r.attrs["test_counts"] == [100, 100]
    assert (r.attrs["max_train_per_class"], r.attrs["max_test_per_class"], r.attrs["subset_seed"]) == (4, None, 5)
    np.testing.assert_array_equal(
        r.x_train, load_problem("cifar10-cat-dog", max_train_per_class=4, subset_seed=5).x_train)
    text = log.read_text()
    assert "cifar10-cat-dog" in text and D.EMBEDDED["cifar10"]["sha256"] in text
    assert "[4, 4]" in text and "JPEG" in text


def test_prepare_data_cli(tmp_path):
    # Snakemake prepends a preamble to the script: a __future__ import would be a SyntaxError
    lines = (REPO / "scripts" / "prepare_data.py").read_text().splitlines()
    assert not [ln for ln in lines if ln.startswith("from __future__")]
    out = tmp_path / "c.h5"
    res = subprocess.run([sys.executable, "scripts/prepare_data.py", "--problem", "mnist-3v8",
                          "--out", str(out), "--max-train-per-class", "2"],
                         cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert read_problem(out).attrs["n_train"] == 4
    res = subprocess.run([sys.executable, "scripts/prepare_data.py", "--problem", "mnist-3v8",
                          "--out", str(out), "--source", "dir", "--dir", str(tmp_path / "no")],
                         cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 2 and "data.dir" in res.stderr


# ---------------------------------------------------------------------------
# the real data (read-only; skipped when absent)
# ---------------------------------------------------------------------------
@needs_shared
@pytest.mark.parametrize("problem, n_train, n_test, counts_train, counts_test, sha, jpeg", [
    ("mnist-3v8", 11982, 1984, [6131, 5851], [1010, 974],
     "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64", False),
    ("mnist-5v6", 11339, 1850, [5421, 5918], [892, 958],
     "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64", False),
    ("cifar10-cat-dog", 10000, 2000, [5000, 5000], [1000, 1000],
     "ff24dfb6880d4a2aa1926f60404c487a1b8390879d8b258031fbb1f40ea6c86e", True),
])
def test_shared_data_counts(problem, n_train, n_test, counts_train, counts_test, sha, jpeg):
    d = load_problem(problem, source="dir", directory=SHARED)
    a = d.attrs
    assert (a["n_train"], a["n_test"]) == (n_train, n_test)
    assert a["train_counts"] == counts_train and a["test_counts"] == counts_test
    assert a["source_sha256"] == sha and a["jpeg_derived"] is jpeg
    assert d.x_train.dtype == np.float32 and 0 <= d.x_train.min() and d.x_train.max() <= 1
    assert d.x_train.shape[0] == d.y_train.shape[0] == n_train


MNIST_COUNTS = {"train": {3: 6131, 5: 5421, 6: 5918, 8: 5851}, "test": {3: 1010, 5: 892, 6: 958, 8: 974}}


def _embedded(dataset: str) -> dict[str, np.ndarray]:
    with np.load(sources.EMBEDDED_DIR / D.EMBEDDED[dataset]["file"], allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def test_embedded_mnist_holds_every_image_of_3_5_6_8():
    e = _embedded("mnist")
    assert sorted(e) == ["index_test", "index_train", "x_test", "x_train", "y_test", "y_train"]
    assert D.EMBEDDED["mnist"]["file"] == "mnist_3568.npz"
    for split in ("train", "test"):
        y, i = e[f"y_{split}"], e[f"index_{split}"]
        assert e[f"x_{split}"].dtype == np.uint8 and e[f"x_{split}"].shape == (len(y), 28, 28)
        assert dict(zip(*map(list, np.unique(y, return_counts=True)))) == MNIST_COUNTS[split]
        assert i.dtype == np.int32 and np.all(np.diff(i) > 0)  # source order
    assert (len(e["y_train"]), len(e["y_test"])) == (23321, 3834)


def test_embedded_cifar_is_a_seeded_balanced_draw():
    e = _embedded("cifar10")
    assert int(e["subset_seed"]) == 0 and e["subset_seed"].shape == ()
    for split, k in (("train", 300), ("test", 100)):
        y, i = e[f"y_{split}"], e[f"index_{split}"]
        assert np.bincount(y, minlength=10)[[3, 5]].tolist() == [k, k] and set(y) == {3, 5}
        assert np.all(np.diff(i) > 0)
        # the source holds 5,000 / 1,000 per class, cats (rows 0..) before dogs: the draw
        # reaches beyond the first k rows of each class
        n = 5000 if split == "train" else 1000
        cats, dogs = i[y == 3], i[y == 5]
        assert cats.max() >= n // 2 and not np.array_equal(cats, np.arange(k))
        assert dogs.max() >= n + n // 2 and not np.array_equal(dogs, n + np.arange(k))


@pytest.mark.skipif(not (SHARED / "mnist.npz").is_file(), reason=f"no {SHARED / 'mnist.npz'}")
def test_embedded_mnist_pixels_are_the_source_s():
    e = _embedded("mnist")
    with np.load(SHARED / "mnist.npz") as s:
        for split in ("train", "test"):
            y = s[f"y_{split}"]
            i = e[f"index_{split}"]
            np.testing.assert_array_equal(i, np.flatnonzero(np.isin(y, [3, 5, 6, 8])))  # every one
            np.testing.assert_array_equal(e[f"x_{split}"], s[f"x_{split}"][i])
            np.testing.assert_array_equal(e[f"y_{split}"], y[i])
    # a cap draws the same images from the embedded file as from the full source
    a = load_problem("mnist-3v8", max_train_per_class=50, max_test_per_class=20, subset_seed=3)
    b = load_problem("mnist-3v8", source="dir", directory=SHARED, max_train_per_class=50,
                     max_test_per_class=20, subset_seed=3)
    for k in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))


@needs_shared
def test_embedded_cifar_pixels_are_the_source_s():
    e = _embedded("cifar10")
    with np.load(SHARED / "cifar10_cat_dog_jpeg_q75.npz") as s:
        for split, k in (("train", 300), ("test", 100)):
            i = e[f"index_{split}"]
            np.testing.assert_array_equal(i, D.draw_per_class(s[f"y_{split}"], (3, 5), k, 0, split))
            np.testing.assert_array_equal(e[f"x_{split}"], s[f"x_{split}"][i])
            np.testing.assert_array_equal(e[f"y_{split}"], s[f"y_{split}"][i])


@needs_shared
def test_make_embedded_data_rebuilds_the_same_bytes(tmp_path):
    res = subprocess.run([sys.executable, "tools/make_embedded_data.py", "--source-dir", str(SHARED),
                          "--out-dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    for dataset in ("mnist", "cifar10"):
        name = D.EMBEDDED[dataset]["file"]
        assert raw.sha256_file(tmp_path / name) == D.EMBEDDED[dataset]["sha256"]
        assert (tmp_path / name).read_bytes() == (sources.EMBEDDED_DIR / name).read_bytes()
    assert res.stdout.count("matches afterkernel/data/sources.py") == 2
    total = sum((sources.EMBEDDED_DIR / D.EMBEDDED[d]["file"]).stat().st_size for d in D.EMBEDDED)
    assert total < 8e6


def test_test_sample_of_a_class_sorted_problem_is_balanced_and_fixed():
    # the embedded CIFAR file stores every cat before every dog
    prob = load_problem("cifar10-cat-dog")
    assert (np.diff(prob.y_test.astype(int)) >= 0).all()
    idx = D.draw_test_sample(prob.y_test, 100)
    assert len(idx) == 100 and len(np.unique(idx)) == 100 and (np.diff(idx) > 0).all()
    assert np.bincount(prob.y_test[idx], minlength=2).tolist() == [50, 50]
    # the same images every time (every run and snapshot of the problem)
    np.testing.assert_array_equal(idx, D.draw_test_sample(load_problem("cifar10-cat-dog").y_test, 100))
    assert not np.array_equal(idx, np.arange(100))  # a draw, not the first images


def test_test_sample_edge_cases():
    y = np.array([0] * 3 + [1] * 20, np.uint8)
    idx = D.draw_test_sample(y, 10)  # the small class gives all it has
    assert np.bincount(y[idx], minlength=2).tolist() == [3, 7]
    np.testing.assert_array_equal(D.draw_test_sample(y, None), np.arange(23))
    np.testing.assert_array_equal(D.draw_test_sample(y, 500), np.arange(23))
    assert np.bincount(y[D.draw_test_sample(y, 5)], minlength=2).tolist() == [2, 3]


def test_keras_dataset_is_fetched_once_then_read_from_the_file(monkeypatch, tmp_path):
    """Rule fetch_data downloads once; the problem files are made from its file,
    equal to what keras itself gives, without calling keras again."""
    from afterkernel.data.sources import fetch_keras_dataset, fetched_file

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    y = np.tile(np.array([3, 8, 1], np.uint8), 10)
    _fake_keras(monkeypatch, lambda: ((x, y), (x[:12], y[:12])))
    direct = load_problem("mnist-3v8", source="keras")
    fetch_keras_dataset("mnist", fetched_file(tmp_path, "mnist"))
    _fake_keras(monkeypatch, lambda: pytest.fail("keras called again"))
    fetched = load_problem("mnist-3v8", source="keras", directory=tmp_path)
    for k in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(fetched, k), getattr(direct, k))
    assert fetched.attrs["source_sha256"] == direct.attrs["source_sha256"]
    with pytest.raises(DataError, match="fetch_data"):
        load_problem("mnist-3v8", source="keras", directory=tmp_path / "absent")
