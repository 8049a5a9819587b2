"""Config validation: every bad config fails before any job, naming the key."""

from __future__ import annotations

import re

import pytest
import yaml

from afterkernel.config import ConfigError, load, validate, with_defaults
from micro import snakemake


def test_shipped_configs_are_valid(root):
    for path in ["config.yaml", "configs/paper.yaml", "tests/configs/tiny.yaml"]:
        assert load(root / path)["seeds"]


@pytest.mark.parametrize(
    "mutate, key, allowed",
    [
        (lambda c: c.update(colour="red"), "(top level)", "allowed keys"),
        (lambda c: c["training"].update(lr=0.1), "training", "learning_rate"),
        (lambda c: c["problems"].append("mnist-3v3"), "problems[-1]", "accepted problem names"),
        (lambda c: c["problems"].append("svhn-1v2"), "problems[-1]", "{dataset}-{a}v{b}"),
        (lambda c: c["studies"]["epochs"]["pairs"].append(["mnist-3v8", "resnet"]),
         "studies.epochs.pairs[-1]", "allowed values: vgg"),
        (lambda c: c["studies"]["epochs"]["pairs"].append(["mnist-1v7", "vgg"]),
         "studies.epochs.pairs[-1]", "allowed values: mnist-3v8"),
        (lambda c: c["architectures"].update(big={"type": "transformer"}),
         "architectures.big.type", "allowed values: fc, sum, vgg"),
        (lambda c: c["training"].update(batch_size="32"), "training.batch_size", "integer"),
        (lambda c: c["studies"]["epochs"].update(epochs=[0, -3]), "studies.epochs.epochs[1]", ">= 0"),
        (lambda c: c.update(seeds=[]), "seeds", "must not be empty"),
        (lambda c: c["data"].update(source="web"), "data.source", "embedded, dir, keras"),
        (lambda c: c["data"].update(subset_seed=-2), "data.subset_seed", ">= 0"),
        (lambda c: c["data"].update(caps=[{"problem": "mnist-1v7", "max_train_per_class": 5}]),
         "data.caps[0].problem", "allowed values: mnist-3v8"),
        (lambda c: c["data"].update(caps=[{"dataset": "mnist", "max_test_per_class": 5},
                                          {"problem": "mnist-3v8", "architecture": "resnet",
                                           "max_test_per_class": 5}]),
         "data.caps[1].architecture", "allowed values: vgg"),
        (lambda c: c["data"].update(caps=[{"problem": "mnist-3v8", "architecture": "vgg"}]),
         "data.caps[0]", "at least one of max_train_per_class, max_test_per_class"),
        (lambda c: c["svm"].update(solver="smo"), "svm.solver", "exact, alg1"),
        (lambda c: c["training"].update(learning_rate=0), "training.learning_rate", "> 0"),
        (lambda c: (c["problems"].append("cifar10-cat-dog"),
                    c["studies"]["learning_rate"]["pairs"].append(["cifar10-cat-dog", "vgg"]),
                    c["studies"]["learning_rate"].update(learning_rates={"mnist": [0.1]})),
         "studies.learning_rate.learning_rates", "cifar10"),
        (lambda c: c["studies"].update(width={"pairs": [["mnist-3v8", "fc"]], "families": {"fc": ["fc", "fc-1m"]},
                                              "epochs": [10]}),
         "studies.width.families.fc[1]", "allowed values"),
        (lambda c: c.pop("svm"), "(top level)", "'svm' is a required property"),
        (lambda c: c["studies"]["epochs"].update(epochs_by_architecture={"resnet": [0, 1]}),
         "studies.epochs.epochs_by_architecture.resnet", "allowed values"),
        (lambda c: c["studies"]["epochs"].update(augmentation_by_architecture={"resnet": [True]}),
         "studies.epochs.augmentation_by_architecture.resnet", "allowed values"),
        (lambda c: c["studies"]["epochs"].update(epochs_by_pair={"mnist-3v8/resnet": [0, 30]}),
         "studies.epochs.epochs_by_pair.mnist-3v8/resnet", "allowed architectures"),
    ],
)
def test_invalid_config_names_key_and_allowed(default_config, mutate, key, allowed):
    mutate(default_config)
    if "[-1]" in key:  # the item just appended, whatever the default's list length
        listed = default_config["problems"] if key.startswith("problems") else \
            default_config["studies"]["epochs"]["pairs"]
        key = key.replace("[-1]", f"[{len(listed) - 1}]")
    with pytest.raises(ConfigError) as err:
        validate(default_config)
    message = str(err.value)
    assert f"'{key}'" in message
    assert allowed in message


def test_not_a_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        validate([1, 2])


def test_missing_and_malformed_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(bad)


def test_snakemake_rejects_bad_config_before_any_job(root, tmp_path, default_config):
    """The workflow refuses an invalid config at parse time and touches nothing."""
    default_config["studies"]["epochs"]["epochs"] = [0, -1]
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(default_config))
    workdir = tmp_path / "work"
    (workdir / "results").mkdir(parents=True)
    sentinel = workdir / "results" / "keep.txt"
    sentinel.write_text("precious")
    proc = snakemake(workdir, "--configfile", str(cfg), "--cores", "1", snakefile=root / "Snakefile",
                     check=False, timeout=120)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "studies.epochs.epochs[1]" in out and ">= 0" in out
    assert sentinel.read_text() == "precious"
    assert sorted(p.name for p in (workdir / "results").iterdir()) == ["keep.txt"]


def test_a_partial_config_is_completed_by_the_default(default_config):
    from afterkernel.config import with_defaults

    assert validate(with_defaults({})) == validate(default_config)
    mine = {"architectures": {"tiny-fc": {"type": "fc", "widths": [8]}},
            "training": {"batch_size": 8},
            "studies": {"epochs": {"pairs": [["mnist-3v8", "tiny-fc"]], "epochs": [0, 1],
                                   "augmentation": [False]}}}
    config = validate(with_defaults(mine))
    # mappings merge key by key; the studies are replaced whole (a study left out is not run)
    assert set(config["architectures"]) == set(default_config["architectures"]) | {"tiny-fc"}
    assert config["training"]["batch_size"] == 8
    assert config["training"]["learning_rate"] == default_config["training"]["learning_rate"]
    assert list(config["studies"]) == ["epochs"]
    assert config["seeds"] == default_config["seeds"]


def test_text_values_are_read_as_the_schema_wants(default_config):
    """Snakemake passes --config values as text (seeds=[0,1] gives ['0', '1'])."""
    from afterkernel.config import with_defaults

    config = validate(with_defaults({"seeds": ["0", "1"], "training": {"batch_size": "8"},
                                     "data": {"max_train_per_class": "null", "source": "embedded",
                                              "subset_seed": "2",
                                              "caps": "[{problem: mnist-3v8, max_train_per_class: 10}]"},
                                     "problems": ["mnist-3v8", "mnist-5v6"]}))
    assert config["seeds"] == [0, 1] and config["training"]["batch_size"] == 8
    assert config["data"]["max_train_per_class"] is None and config["problems"] == ["mnist-3v8", "mnist-5v6"]
    assert config["data"]["subset_seed"] == 2
    assert config["data"]["caps"] == [{"problem": "mnist-3v8", "max_train_per_class": 10}]
    with pytest.raises(ConfigError, match=r"seeds\[0\]"):
        validate(with_defaults({"seeds": ["zero"]}))


def test_partial_configfile_and_config_override_plan(root, tmp_path):
    (tmp_path / "partial.yaml").write_text(
        "seeds: [0]\nstudies:\n  epochs:\n    pairs: [[mnist-3v8, fc]]\n    epochs: [0, 3]\n"
        "    augmentation: [false]\n")
    out = snakemake(tmp_path, "-n", "--configfile", "partial.yaml", "--config", "seeds=[0,1]", "--cores", "1",
                    snakefile=root / "Snakefile").stdout
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1].split("total")[0], re.M))
    assert (jobs["prepare_data"], jobs["train"], jobs["kernel"], jobs["svm"]) == ("1", "2", "2", "8")


def test_each_study_has_its_own_results_folder(root, tmp_path):
    """Named after `name`, else after the last config file; `name: null` and
    the default alone write to results/ (./run.sh puts the report there too)."""
    from afterkernel.config import results_root
    from afterkernel.plan import output_roots

    assert output_roots(with_defaults({})) == ("results", "logs")
    assert output_roots(with_defaults({"seeds": [0]}, ["x/mine.yaml"])) == ("results/mine", "logs/mine")
    assert output_roots(with_defaults({"name": None}, ["x/mine.yaml"])) == ("results", "logs")
    assert output_roots(with_defaults({"name": "a1"}, ["x/mine.yaml"])) == ("results/a1", "logs/a1")
    (tmp_path / "base.yaml").write_text("name: study\n")
    (tmp_path / "overlay.yaml").write_text("seeds: [0]\n")
    base, overlay = str(tmp_path / "base.yaml"), str(tmp_path / "overlay.yaml")
    assert results_root([]) == "results"
    assert results_root(["-n", "--configfile", str(root / "configs/paper.yaml")]) == "results/paper"
    assert results_root(["--configfile", base, overlay, "--cores", "2"]) == "results/study"
    assert results_root([f"--configfile={overlay}"]) == "results/overlay"
    assert results_root(["--configfile", base, "--config", "seeds=[0]", "name=other"]) == "results/other"
    with pytest.raises(ConfigError) as err:
        validate(with_defaults({"name": "a b"}))
    assert "'name'" in str(err.value)
