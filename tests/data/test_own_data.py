"""Your own data and networks (README, "Your own data and networks"): every
source to the same problem file, the errors at planning (named, before any
job), user modules in the code hashes, a replaced data file re-running
exactly its problem, and the worked example (configs/examples/own-data.yaml)
planned and run, its pair in the figures and the claims table."""

from __future__ import annotations

import hashlib
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import yaml

from afterkernel import config as C
from afterkernel import models
from afterkernel import plan
from afterkernel.figures import drawn_figures
from afterkernel.codehash import script_code_hash
from afterkernel.data import DataError, load_problem, prepare_problem_file, read_problem
from afterkernel.data.catalog import CIFAR100_COARSE, CIFAR100_FINE, KNOWN
from afterkernel.data.planning import CapWarning, problem_inputs
from micro import caption_index, copy_workflow, snakemake

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "configs" / "examples"
#: the shipped example data (configs/examples/make_shapes.py makes it)
SHAPES_SHA256 = "35389b4b5c6bef3977ae284a38628c92f89afb7f11b54061014a05347288f202"


@pytest.fixture(autouse=True)
def _registry_restored():
    """The example's module registers tiny-cnn: other tests see the registry as it was."""
    archs, checks = dict(models.ARCHITECTURES), dict(models.INPUT_CHECKS)
    yield
    models.ARCHITECTURES.clear()
    models.ARCHITECTURES.update(archs)
    models.INPUT_CHECKS.clear()
    models.INPUT_CHECKS.update(checks)
    for name in [m for m in sys.modules if m.startswith("configs")]:
        del sys.modules[name]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _arrays(shape=(6, 5), n=(8, 4), classes=3, dtype=np.uint8, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for split, count in zip(("train", "test"), n):
        x = rng.integers(0, 256, (count * classes, *shape)).astype(np.uint8)
        out[f"x_{split}"] = x if dtype == np.uint8 else (x / 255.0).astype(dtype)
        out[f"y_{split}"] = np.tile(np.arange(classes, dtype=np.uint8), count)
    return out


def _config(**overrides) -> dict:
    base = {"problems": ["own-0v2"], "seeds": [0],
            "architectures": {"small": {"type": "fc", "widths": [4]}},
            "studies": {"epochs": {"pairs": [["own-0v2", "small"]], "epochs": [0, 1], "augmentation": [False]}}}
    base.update(overrides)
    return C.with_defaults(base)


def _check_layout(data, shape, counts):
    assert data.x_train.dtype == np.float32 and data.x_train.shape[1:] == shape
    assert data.y_train.dtype == np.uint8 and set(np.unique(data.y_train)) == {0, 1}
    assert [data.attrs["train_counts"], data.attrs["test_counts"]] == counts
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0


# --- every source to the problem file layout ---------------------------------------
@pytest.mark.parametrize("dtype, shape", [(np.uint8, (6, 5)), (np.float32, (6, 5, 2))])
def test_npz_source(tmp_path, dtype, shape):
    arrays = _arrays(shape=shape, dtype=dtype)
    np.savez(tmp_path / "own.npz", **arrays)
    spec = {"source": "npz", "path": str(tmp_path / "own.npz")}
    out = tmp_path / "own-0v2.h5"
    prepare_problem_file("own-0v2", out, dataset=spec)
    data = read_problem(out)
    _check_layout(data, shape if len(shape) == 3 else (*shape, 1), [[8, 8], [4, 4]])
    assert data.attrs["source_sha256"] == _sha(tmp_path / "own.npz")
    assert data.attrs["class_names"] == ["0", "2"] and data.attrs["dataset"] == "own"
    keep = np.isin(arrays["y_train"], [0, 2])
    want = arrays["x_train"][keep].astype(np.float32)
    want = want / np.float32(255) if dtype == np.uint8 else want
    np.testing.assert_array_equal(data.x_train.reshape(want.shape), want)


def test_images_source(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for split, n in (("train", 3), ("test", 2)):
        for name in ("cat", "dog", "emu"):
            (tmp_path / "img" / split / name).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)).save(
                    tmp_path / "img" / split / name / f"{i}.png")
    spec = {"source": "images", "path": str(tmp_path / "img")}
    data = load_problem("pets-emu-cat", dataset=spec)
    _check_layout(data, (7, 9, 3), [[3, 3], [2, 2]])
    assert data.attrs["classes"] == [2, 0] and data.attrs["class_names"] == ["emu", "cat"]
    first_emu = np.asarray(Image.open(tmp_path / "img" / "train" / "emu" / "0.png"), np.float32) / 255
    np.testing.assert_array_equal(data.x_train[data.y_train == 0][0], first_emu)
    assert len(data.attrs["source_sha256"]) == 64
    files = problem_inputs({"problems": [], "datasets": {"pets": spec}}, "pets-emu-cat", str)["files"]
    assert len(files) == 15 and all(Path(f).is_file() for f in files)


@pytest.mark.parametrize("key, module, kwargs, names, shape", [
    ("fashion_mnist", "fashion_mnist", {}, KNOWN["fashion_mnist"][0], (28, 28)),
    ("cifar100_coarse", "cifar100", {"label_mode": "coarse"}, CIFAR100_COARSE, (32, 32, 3)),
])
def test_keras_sources(monkeypatch, tmp_path, key, module, kwargs, names, shape):
    """fetch_data's file for the new keras data sets (keras faked: offline), then the problem."""
    from afterkernel.data.sources import fetch_keras_dataset

    n = len(names)
    arrays = _arrays(shape=shape, n=(2, 1), classes=n)
    calls = []

    def load_data(**kw):
        calls.append(kw)
        return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    datasets = types.ModuleType("keras.datasets")
    setattr(datasets, module, types.SimpleNamespace(load_data=load_data))
    monkeypatch.setitem(sys.modules, "keras", types.SimpleNamespace(datasets=datasets))
    monkeypatch.setitem(sys.modules, "keras.datasets", datasets)
    fetch_keras_dataset(key, tmp_path / f"{key}.npz")
    assert calls == [kwargs]
    spec = {"source": "keras", "dataset": module, **({"labels": "coarse"} if kwargs else {})}
    problem = f"k-{names[1]}-{names[n - 1]}"
    data = load_problem(problem, dataset=spec, directory=tmp_path)
    _check_layout(data, shape if len(shape) == 3 else (*shape, 1), [[2, 2], [1, 1]])
    assert data.attrs["classes"] == [1, n - 1]


def test_cifar100_names_and_shipped_example():
    assert len(CIFAR100_FINE) == len(set(CIFAR100_FINE)) == 100
    assert len(CIFAR100_COARSE) == 20
    assert _sha(EXAMPLE / "shapes.npz") == SHAPES_SHA256
    data = load_problem("shapes-square-cross",
                        dataset={"source": "npz", "path": str(EXAMPLE / "shapes.npz")})
    _check_layout(data, (16, 16, 1), [[40, 40], [20, 20]])
    assert data.attrs["source_sha256"] == SHAPES_SHA256


# --- errors before any job ------------------------------------------------------------
def _error(config) -> str:
    with pytest.raises(C.ConfigError) as err:
        C.validate(config)
    return str(err.value)


def test_missing_file_and_folder(tmp_path):
    msg = _error(_config(datasets={"own": {"source": "npz", "path": str(tmp_path / "none.npz")}}))
    assert "config key 'datasets.own.path'" in msg and "none.npz (source npz) does not exist" in msg
    msg = _error(_config(datasets={"own": {"source": "images", "path": str(tmp_path / "nodir")}}))
    assert "image folder" in msg and "nodir" in msg and "does not exist" in msg
    msg = _error(_config(datasets={"own": {"source": "npz"}}))
    assert "config key 'datasets.own.path'" in msg


def _faulty(fault: str) -> dict:
    a = _arrays(dtype=np.float32)
    if fault == "nan":
        a["x_train"][3, 1, 1] = np.nan
    elif fault == "inf":
        a["x_test"][2, 0, 0] = np.inf
    elif fault == "labels":
        a["y_train"] = a["y_train"][:-1]
    elif fault == "range":
        a["x_train"] = a["x_train"] * 255
    elif fault == "test_sample":  # one test image of class 2 left: half of a sample of 4 needs 2
        keep = (a["y_test"] != 2) | (np.arange(len(a["y_test"])) == 2)
        a["x_test"], a["y_test"] = a["x_test"][keep], a["y_test"][keep]
    return a


@pytest.mark.parametrize("fault, says", [
    ("nan", "x_train has 1 non-finite pixel value(s) (NaN or infinite), the first in image 3"),
    ("inf", "x_test has 1 non-finite pixel value(s) (NaN or infinite), the first in image 2"),
    ("labels", "y_train has 23 labels but x_train has 24 images"),
    ("range", "x_train has float pixel values from 0 to 255, outside [0, 1]"),
    ("test_sample", "needs 2 test images of class 2 of own-0v2 (problems[0]), which has 1"),
])
def test_bad_values_stopped_at_planning_named_by_their_key(tmp_path, fault, says):
    np.savez(tmp_path / "own.npz", **_faulty(fault))
    spec = {"source": "npz", "path": str(tmp_path / "own.npz")}
    config = _config(datasets={"own": spec})
    config["kernels"]["test_sample"] = 4
    msg = _error(config)
    key = "kernels.test_sample" if fault == "test_sample" else "datasets.own.path"
    assert f"config key '{key}'" in msg and says in msg, msg
    assert "data.source" not in msg  # the advice of keras' data sets does not apply
    if fault in ("nan", "inf", "range"):  # prepare_data checks again: nothing non-finite is written
        with pytest.raises(DataError, match=r"non-finite|outside \[0, 1\]"):
            prepare_problem_file("own-0v2", tmp_path / "own.h5", dataset=spec)
        assert not (tmp_path / "own.h5").exists()


def test_images_of_two_sizes_stopped_at_planning(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for name in ("a", "b"):
            (tmp_path / "img" / split / name).mkdir(parents=True)
            for i in range(2):
                size = (9, 7) if (split, name, i) == ("test", "b", 1) else (8, 8)
                Image.fromarray(np.zeros(size, np.uint8)).save(tmp_path / "img" / split / name / f"{i}.png")
    msg = _error(_config(problems=["pix-a-b"], datasets={"pix": {"source": "images", "path": str(tmp_path / "img")}},
                         studies={"epochs": {"pairs": [["pix-a-b", "small"]], "epochs": [0],
                                             "augmentation": [False]}}))
    assert "config key 'datasets.pix.path'" in msg and "1.png is 9x7 pixels" in msg and "resize" in msg


def test_classes_the_source_lacks(tmp_path):
    msg = _error(_config(problems=["mnist-1v7"], studies={"epochs": {
        "pairs": [["mnist-1v7", "small"]], "epochs": [0], "augmentation": [False]}}))
    assert "config key 'problems[0]'" in msg and "no train images of class(es) 1 (1), 7 (7)" in msg
    assert "classes with images: 3, 5, 6, 8" in msg
    np.savez(tmp_path / "own.npz", **_arrays(classes=2))
    msg = _error(_config(datasets={"own": {"source": "npz", "path": str(tmp_path / "own.npz")}}))
    assert "data set 'own' has no such classes; it has 2 classes" in msg


def test_cap_above_what_exists_warns_with_the_count_used():
    """The embedded MNIST holds every image: 6,131 threes and 5,851 eights to train on."""
    config = _config(problems=["mnist-3v8"], data={"source": "embedded", "max_train_per_class": 7000},
                     studies={"epochs": {"pairs": [["mnist-3v8", "small"]], "epochs": [0],
                                         "augmentation": [False]}})
    with pytest.warns(CapWarning, match=r"'data.max_train_per_class': 7000 .* uses 6131 of class 3, 5851 of "
                                        r"class 8 \(train\)"):
        C.validate(config)
    # a cap between the two counts: the larger class is capped, the smaller keeps all
    config["data"]["max_train_per_class"] = 6000
    with pytest.warns(CapWarning, match=r"uses 6000 of class 3, 5851 of class 8"):
        C.validate(config)
    # each data.caps entry is checked too, named by its key
    config["data"].update(max_train_per_class=None, caps=[{"problem": "mnist-3v8", "architecture": "small",
                                                           "max_test_per_class": 1000}])
    with pytest.warns(CapWarning, match=r"'data.caps\[0\].max_test_per_class': 1000 .* uses 1000 of class 3, "
                                        r"974 of class 8 \(test\)"):
        C.validate(config)


def test_network_arguments_and_image_size(tmp_path):
    np.savez(tmp_path / "own.npz", **_arrays(shape=(3, 3)))
    own = {"own": {"source": "npz", "path": str(tmp_path / "own.npz")}}
    msg = _error(_config(datasets=own, architectures={"small": {"type": "fc", "dropout": 0.5}}))
    assert "config key 'architectures.small.dropout': unknown argument of builder 'fc'; allowed: widths" in msg
    msg = _error(_config(datasets=own, modules=["configs.examples.mynets"],
                         architectures={"small": {"type": "tiny-cnn", "width": "wide"}}))
    assert "config key 'architectures.small.width': 'wide' has the wrong type" in msg and "int" in msg
    msg = _error(_config(datasets=own, modules=["configs.examples.mynets"],
                         architectures={"small": {"type": "tiny-cnn"}}))
    assert "config key 'studies.epochs.pairs[0]': network 'small' cannot take the own-0v2 images 3x3x1" in msg
    msg = _error(_config(datasets=own, modules=["no_such_module_here"]))
    assert "config key 'modules[0]': cannot import module 'no_such_module_here'" in msg


def test_user_module_in_spec_and_code_hash(tmp_path):
    np.savez(tmp_path / "own.npz", **_arrays(shape=(8, 8)))
    config = C.validate(_config(datasets={"own": {"source": "npz", "path": str(tmp_path / "own.npz")}},
                                modules=["configs.examples.mynets"],
                                architectures={"small": {"type": "tiny-cnn", "width": 2}}))
    spec = config["architectures"]["small"]
    assert spec["module"] == "configs.examples.mynets"
    assert config["architectures"]["fc"].get("module") is None
    files = models.module_files(spec)
    assert files == [str(EXAMPLE / "mynets.py")]
    script, package = ROOT / "scripts" / "train.py", ROOT / "afterkernel"
    copy = tmp_path / "mynets.py"
    shutil.copy(files[0], copy)
    before = script_code_hash(script, package, extra_files=[copy])
    assert before != script_code_hash(script, package)
    copy.write_text(copy.read_text() + "\n# a comment re-runs nothing\n")
    assert script_code_hash(script, package, extra_files=[copy]) == before
    copy.write_text(copy.read_text().replace("int(width)", "int(width) + 1"))
    assert script_code_hash(script, package, extra_files=[copy]) != before


# --- the worked example through Snakemake -------------------------------------------
def _example_copy(dest: Path) -> Path:
    copy_workflow(dest)
    shutil.copytree(EXAMPLE, dest / "configs" / "examples")
    return dest


def _jobs(out: str) -> dict[str, int]:
    counts, table = {}, False
    for line in out.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            table = True
        elif table and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def _example_figures():
    """The figures the example draws: its pair is not the paper's, so the other-pairs figures of its study."""
    studies = yaml.safe_load((EXAMPLE / "own-data.yaml").read_text())["studies"]
    return drawn_figures(studies)


def test_example_plans_its_jobs(tmp_path):
    work = _example_copy(tmp_path / "w")
    counts = _jobs(snakemake(work, "-n", "--configfile", "configs/examples/own-data.yaml").stdout)
    assert counts["prepare_data"] == counts["train"] == counts["kernel"] == 1
    figures = {rule for rule in counts if rule.startswith("figure_")}
    assert counts["svm"] == 4 and figures == {spec.rule for spec in _example_figures()}
    assert len(figures) == 12 and all(rule.endswith("_other") for rule in figures)


def _planned(work: Path, *args: str) -> list[tuple[str, str]]:
    """The (rule, wildcards) of every job a dry run plans."""
    jobs = []
    for line in snakemake(work, "-n", *args).stdout.splitlines():
        line = line.strip()
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            jobs.append([line.split()[1][:-1], ""])
        elif line.startswith("wildcards:") and jobs:
            jobs[-1][1] = line.removeprefix("wildcards:").strip()
    return sorted(map(tuple, jobs))


@pytest.mark.slow
def test_replaced_data_file_reruns_exactly_its_problem(tmp_path):
    """Two npz data sets, one problem each, every output up to date (made and
    touched in order, no job run): new bytes in one file plan that problem's
    prepare_data, train, kernel and SVM jobs and what reads the tables, nothing
    of the other problem."""
    work = copy_workflow(tmp_path / "w")
    for i, name in enumerate(("left", "right")):
        np.savez(work / f"{name}.npz", **_arrays(shape=(8, 8), n=(4, 2), classes=2, seed=i))
    config = {"name": None, "datasets": {n: {"source": "npz", "path": f"{n}.npz"} for n in ("left", "right")},
              "problems": ["left-0v1", "right-0v1"], "seeds": [0],
              "architectures": {"small": {"type": "fc", "widths": [2]}}, "kernels": {"test_sample": 4},
              "studies": {"epochs": {"pairs": [["left-0v1", "small"], ["right-0v1", "small"]], "epochs": [0, 1],
                                     "augmentation": [False]}}}
    (work / "two.yaml").write_text(yaml.safe_dump(config))
    args = ("--configfile", "two.yaml")
    summary = snakemake(work, *args, "--summary").stdout.splitlines()[1:]
    for line in summary:  # path, date, rule, log, status, plan
        path = work / line.split("\t")[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    snakemake(work, *args, "--touch", "--cores", "1")  # every output newer than its inputs
    everything = _planned(work, *args, "--forceall")
    assert _planned(work, *args) == []
    arrays = dict(np.load(work / "left.npz"))
    np.savez(work / "left.npz", **{**arrays, "x_train": 255 - arrays["x_train"]})
    runs = ("prepare_data", "train", "kernel", "svm")
    want = [(rule, wc) for rule, wc in everything if rule not in runs or "problem=left-0v1" in wc]
    assert _planned(work, *args) == want
    assert {rule for rule, _ in want} >= {*runs, "aggregate", "claims", "all"}
    assert [wc for rule, wc in want if rule == "prepare_data"] == ["problem=left-0v1, subset="]


def test_bad_input_stops_before_any_job(tmp_path):
    work = _example_copy(tmp_path / "w")
    (work / "configs" / "examples" / "shapes.npz").unlink()
    proc = snakemake(work, "--configfile", "configs/examples/own-data.yaml", "--cores", "1", check=False)
    assert proc.returncode != 0
    assert "config key 'datasets.shapes.path'" in proc.stderr and "shapes.npz (source npz) does not exist" in proc.stderr
    assert not (work / "results").exists()


@pytest.mark.slow
def test_example_end_to_end_and_module_edit(tmp_path, micro_reference):
    """The example runs to its tables, in results/own-data/, beside a
    finished unnamed study (the micro config's, in results/), whose files it
    leaves byte-identical; editing mynets.py's code re-plans exactly the
    example's train, kernel and SVM jobs (and what reads them), a comment
    nothing."""
    import pandas as pd

    work = _example_copy(tmp_path / "w")
    shutil.copytree(micro_reference / "results", work / "results")
    before = {p: p.read_bytes() for p in (work / "results").rglob("*") if p.is_file()}
    assert any(p.suffix == ".png" for p in before) and any(p.name == "claims.csv" for p in before)
    args = ("--configfile", "configs/examples/own-data.yaml")
    snakemake(work, *args, "--cores", "2")
    assert all(p.read_bytes() == data for p, data in before.items())
    root = plan.output_roots({"name": "own-data"})[0]
    metrics = pd.read_csv(work / root / "tables" / "metrics.csv")
    mine = metrics[(metrics["problem"] == "shapes-square-cross") & (metrics["architecture"] == "tiny")]
    assert sorted(mine["epoch"].unique()) == [0, 2]
    claims = pd.read_csv(work / root / "tables" / "claims.csv")
    mine = claims[(claims["problem"] == "shapes-square-cross") & (claims["architecture"] == "tiny")]
    # the claims of any pair; the example's tiny net has not trained by its last epoch (2), so the
    # claims on the last epoch say so instead of comparing it
    assert {"C3", "C6", "L1", "L2"} <= set(mine["claim"])
    l2 = mine[mine["claim"] == "L2"]
    assert (l2["verdict"] == "not in this config").all()
    assert l2["note"].str.startswith("the tiny network has not trained by its last epoch (2)").all()
    for spec in _example_figures():  # the pair's panels, from each figure's panel index
        assert (work / plan.figure_files(spec.stem, root)[0]).stat().st_size > 5000, spec.stem
        index = caption_index((work / plan.figure_caption_file(spec.stem, root)).read_text())
        assert {(r["problem"], r["network"], r["status"], r["seeds"]) for r in index} == {
            ("shapes-square-cross", "tiny", "drawn", "1")}, (spec.stem, index)
    assert "Nothing to be done" in snakemake(work, "-n", *args).stdout
    nets = work / "configs" / "examples" / "mynets.py"
    nets.write_text(nets.read_text() + "\n# only a comment\n")
    assert "Nothing to be done" in snakemake(work, "-n", *args).stdout
    nets.write_text(nets.read_text().replace('name="flatten"', 'name="flat"'))
    counts = _jobs(snakemake(work, "-n", *args).stdout)
    assert "prepare_data" not in counts and counts["train"] == counts["kernel"] == 1 and counts["svm"] == 4
