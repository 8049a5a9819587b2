"""Caps per data set, problem or (problem, architecture) (config key
``data.caps``): which caps a run gets, the problem file each subset has, the
errors before any job, and the plan Snakemake makes of them."""

from __future__ import annotations

import re
import warnings

import pytest
import yaml

from afterkernel import config as C
from afterkernel import cost, plan
from afterkernel.data import read_problem
from afterkernel.data.planning import CapWarning, prepare_params
from micro import snakemake

CAPS = [
    {"dataset": "mnist", "max_train_per_class": 300, "max_test_per_class": 90},
    {"problem": "mnist-3v8", "max_train_per_class": 200},
    {"problem": "mnist-3v8", "architecture": "vgg", "max_train_per_class": 30, "max_test_per_class": 12},
    {"problem": "mnist-5v6", "architecture": "vgg", "max_test_per_class": None},
]


def _config(caps=CAPS, **data) -> dict:
    return {"data": {"source": "embedded", "max_train_per_class": 40, "max_test_per_class": 20,
                     "subset_seed": 7, "caps": caps, **data},
            "problems": ["mnist-3v8", "mnist-5v6", "cifar10-cat-dog"],
            "architectures": {"vgg": {"type": "vgg", "widths": [2, 4]}, "fc": {"type": "fc", "widths": [4]}}}


def test_the_most_specific_entry_wins():
    c = _config()
    # (problem, architecture) > problem > data set > data.max_*_per_class
    assert plan.caps_of(c, "mnist-3v8", "vgg") == (30, 12)
    assert plan.caps_of(c, "mnist-3v8", "fc") == (200, 90)  # test cap from the data set's entry
    assert plan.caps_of(c, "mnist-3v8") == (200, 90)
    assert plan.caps_of(c, "mnist-5v6", "fc") == (300, 90)
    assert plan.caps_of(c, "mnist-5v6", "vgg") == (300, None)  # an explicit null: every test image
    assert plan.caps_of(c, "cifar10-cat-dog", "vgg") == (40, 20)  # no entry: the defaults
    assert plan.caps_of(_config(caps=[]), "mnist-3v8", "vgg") == (40, 20)
    # the order of the entries does not matter, only how specific they are
    assert plan.caps_of(_config(caps=CAPS[::-1]), "mnist-3v8", "fc") == (200, 90)
    assert plan.caps_of({"data": {"source": "embedded"}}, "mnist-3v8", "fc") == (None, None)


def test_subset_tags_and_problem_files():
    c = _config()
    assert plan.subset_of(c, "mnist-3v8", "vgg") == ".train30-test12-s7"
    assert plan.subset_of(c, "mnist-5v6", "vgg") == ".train300-testall-s7"
    assert plan.subset_of(_config(caps=[], max_train_per_class=None), "mnist-3v8", "fc") == ".trainall-test20-s7"
    full = {"data": {"source": "embedded", "subset_seed": 3}}
    assert plan.subset_of(full, "mnist-3v8", "fc") == ""  # no cap at all: the full data, no seed
    assert plan.problem_file("mnist-3v8") == "results/data/mnist-3v8.h5"
    assert plan.problem_file("mnist-3v8", ".train30-test12-s7") == "results/data/mnist-3v8.train30-test12-s7.h5"
    assert plan.problem_file("mnist-3v8", "{subset}") == "results/data/mnist-3v8{subset}.h5"
    assert plan.problem_file("mnist-3v8", root="out") == "out/data/mnist-3v8.h5"
    files = {plan.problem_file(p, plan.subset_of(c, p, a)) for p in c["problems"] for a in ("vgg", "fc")}
    assert len(files) == 5  # cifar10-cat-dog: the same caps with both networks, one file
    run = plan.Run("mnist-3v8", "vgg", "plain", "epochs", 0)
    assert plan.run_problem_file(c, run) == "results/data/mnist-3v8.train30-test12-s7.h5"
    for caps in [(30, 12, 7), (None, 250, 0), (1000, None, 12), (None, None, None)]:
        tag = plan.subset_tag(*caps[:2], caps[2] or 0)
        assert plan.caps_from_tag(tag) == caps
        assert re.fullmatch(plan.SUBSET_PATTERN, tag)
    for bad in (".train-test5-s0", "train5-test5-s0", ".train5-test5", ".trainall-testall-s-1"):
        with pytest.raises(ValueError, match="subset tag"):
            plan.caps_from_tag(bad)
    with pytest.raises(ValueError, match="root="):
        plan.problem_file("mnist-3v8", "/tmp/results")  # a root given where the subset goes


def test_prepare_params_come_from_the_tag():
    c = C.with_defaults(_config())
    assert prepare_params(c, ".train30-testall-s7") == {
        "source": "embedded", "dir": None, "max_train_per_class": 30, "max_test_per_class": None,
        "subset_seed": 7}
    # the full data's job does not depend on the seed or the global caps
    assert prepare_params(c, "") == {"source": "embedded", "dir": None, "max_train_per_class": None,
                                     "max_test_per_class": None, "subset_seed": None}


def _valid(caps, **data) -> dict:
    base = _config(caps)
    base["data"].update(data)
    base.update(seeds=[0], studies={"epochs": {"pairs": [["mnist-3v8", "vgg"], ["mnist-3v8", "fc"]],
                                               "epochs": [0], "augmentation": [False]}})
    return C.with_defaults(base)


@pytest.mark.parametrize("caps, key, words", [
    ([{"problem": "mnist-1v7", "max_train_per_class": 5}], "data.caps[0].problem",
     "not listed under 'problems'; allowed values: mnist-3v8, mnist-5v6, cifar10-cat-dog"),
    ([{"max_train_per_class": 5}, {"problem": "mnist-3v8", "architecture": "resnet", "max_train_per_class": 5}],
     "data.caps[0]", "exactly one of dataset or problem"),
    ([CAPS[0], {"problem": "mnist-3v8", "architecture": "resnet", "max_train_per_class": 5}],
     "data.caps[1].architecture", "'resnet' is not defined under 'architectures'"),
    ([{"dataset": "svhn", "max_train_per_class": 5}], "data.caps[0].dataset", "unknown data set 'svhn'"),
    ([*CAPS, {"dataset": "mnist", "max_test_per_class": 5}], "data.caps[4]",
     "a second entry for data set 'mnist' (data.caps[0] is the first)"),
    ([*CAPS, {"problem": "mnist-3v8", "max_test_per_class": 5}], "data.caps[4]",
     "a second entry for problem 'mnist-3v8' (data.caps[1] is the first)"),
    ([*CAPS, {"problem": "mnist-3v8", "architecture": "vgg", "max_test_per_class": 5}], "data.caps[4]",
     "a second entry for problem 'mnist-3v8' with architecture 'vgg' (data.caps[2] is the first)"),
    ([{"dataset": "mnist", "problem": "mnist-3v8", "max_train_per_class": 5}], "data.caps[0]",
     "exactly one of dataset or problem"),
    ([{"dataset": "mnist", "architecture": "vgg", "max_train_per_class": 5}], "data.caps[0]",
     "architecture only with problem"),
    ([CAPS[0], {"problem": "mnist-3v8", "architecture": "vgg"}], "data.caps[1]",
     "at least one of max_train_per_class, max_test_per_class"),
    ([{"problem": "mnist-3v8", "max_train_per_class": 0}], "data.caps[0].max_train_per_class", ">= 1"),
    ([{"problem": "mnist-3v8", "max_train_per_class": 5, "seed": 1}], "data.caps[0]", "unknown key(s) 'seed'"),
])
def test_bad_caps_entries_are_config_errors_naming_the_entry(caps, key, words):
    with pytest.raises(C.ConfigError) as err:
        C.validate(_valid(caps))
    message = str(err.value)
    assert f"config key '{key}'" in message and words in message, message


def test_bad_subset_seed():
    for seed, words in ((-1, ">= 0"), (1.5, "has the wrong type")):
        with pytest.raises(C.ConfigError, match=rf"'data.subset_seed'.*{re.escape(words)}"):
            C.validate(_valid(CAPS, subset_seed=seed))
    assert C.validate(_valid(CAPS, subset_seed="3"))["data"]["subset_seed"] == 3  # --config text


def test_each_entry_warns_of_a_cap_above_a_class_s_count():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        C.validate(_valid([{"dataset": "mnist", "max_train_per_class": 5900},
                           {"problem": "mnist-3v8", "architecture": "vgg", "max_test_per_class": 1000}]))
    messages = sorted(str(w.message) for w in caught if issubclass(w.category, CapWarning))
    assert messages == [
        "config key 'data.caps[0].max_train_per_class': 5900 is more than mnist-3v8 has; it uses 5900 of "
        "class 3, 5851 of class 8 (train)",
        "config key 'data.caps[0].max_train_per_class': 5900 is more than mnist-5v6 has; it uses 5421 of "
        "class 5, 5900 of class 6 (train)",
        "config key 'data.caps[1].max_test_per_class': 1000 is more than mnist-3v8 has; it uses 1000 of "
        "class 3, 974 of class 8 (test)",
    ]


def test_cost_uses_the_caps_of_the_pair():
    c = _config()
    assert cost.problem_sizes(c, "mnist-3v8", "vgg") == (60, 24)
    assert cost.problem_sizes(c, "mnist-3v8", "fc") == (400, 180)
    assert cost.problem_sizes(c, "mnist-5v6", "vgg") == (600, 892 + 958)
    c["architectures"] = {"vgg": {"type": "vgg"}, "fc": {"type": "fc"}}
    c["training"] = {"batch_size": 32, "max_epochs": 10}
    small = cost.train_cost(c, plan.Run("mnist-3v8", "vgg", "plain", "epochs", 0), [1])
    c["data"]["caps"] = []
    assert cost.train_cost(c, plan.Run("mnist-3v8", "vgg", "plain", "epochs", 0), [1]).cpu_s > small.cpu_s


# --- the plan -----------------------------------------------------------------------
PLANNED = {
    "name": None,  # results/ itself
    "data": {"source": "embedded", "max_train_per_class": 24, "max_test_per_class": 12,
             "caps": [{"dataset": "mnist", "max_test_per_class": 10},
                      {"problem": "mnist-3v8", "architecture": "vgg", "max_train_per_class": 30},
                      {"problem": "mnist-3v8", "architecture": "fc", "max_train_per_class": None,
                       "max_test_per_class": None}]},
    "problems": ["mnist-3v8"],
    "seeds": [0],
    "architectures": {"vgg": {"type": "vgg", "widths": [2, 4]}, "fc": {"type": "fc", "widths": [4]},
                      "fc-small": {"type": "fc", "widths": [2]}},
    "studies": {"epochs": {"pairs": [["mnist-3v8", "vgg"], ["mnist-3v8", "fc"], ["mnist-3v8", "fc-small"]],
                           "epochs": [0, 1], "augmentation": [False]}},
}


def _jobs(out: str) -> list[dict]:
    """Every planned job's rule, input and output lines (snakemake -n)."""
    jobs = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            jobs.append({"rule": line.split()[1][:-1]})
        elif jobs and ":" in line and line.split(":", 1)[0] in ("input", "output", "wildcards"):
            field, value = line.split(":", 1)
            jobs[-1][field] = value.strip()
    return jobs


def test_two_pairs_of_one_problem_get_their_own_problem_files(root, tmp_path):
    (tmp_path / "caps.yaml").write_text(yaml.safe_dump(PLANNED))
    out = snakemake(tmp_path, "-n", "--configfile", "caps.yaml", "--cores", "1", snakefile=root / "Snakefile").stdout
    jobs = _jobs(out)
    prepared = sorted(j["output"] for j in jobs if j["rule"] == "prepare_data")
    assert prepared == ["results/data/mnist-3v8.h5",  # fc: both caps null, the full data
                        "results/data/mnist-3v8.train24-test10-s0.h5",  # fc-small: the defaults, data set's test
                        "results/data/mnist-3v8.train30-test10-s0.h5"]  # vgg: its own train cap
    want = {"vgg": prepared[2], "fc": prepared[0], "fc-small": prepared[1]}
    for rule in ("train", "kernel"):
        got = {j["output"].split("/")[3]: j["input"] for j in jobs if j["rule"] == rule}
        assert {arch: [f for f in inputs.split(", ") if f.startswith("results/data/")]
                for arch, inputs in got.items()} == {arch: [f] for arch, f in want.items()}, rule
    # the wildcards: the problem and the tag (empty for the full data)
    assert sorted(j["wildcards"] for j in jobs if j["rule"] == "prepare_data") == [
        "problem=mnist-3v8, subset=", "problem=mnist-3v8, subset=.train24-test10-s0",
        "problem=mnist-3v8, subset=.train30-test10-s0"]


def test_a_capped_problem_file_is_made_with_the_tag_s_caps(root, tmp_path):
    config = dict(PLANNED, data={**PLANNED["data"], "subset_seed": 4})
    (tmp_path / "caps.yaml").write_text(yaml.safe_dump(config))
    target = "results/data/mnist-3v8.train30-test10-s4.h5"
    snakemake(tmp_path, "--configfile", "caps.yaml", "--cores", "1", target, snakefile=root / "Snakefile")
    a = read_problem(tmp_path / target).attrs
    assert (a["train_counts"], a["test_counts"]) == ([30, 30], [10, 10])
    assert (a["max_train_per_class"], a["max_test_per_class"], a["subset_seed"]) == (30, 10, 4)
    # any tag names a file the rule can make: the job reads its caps and seed from the tag alone
    other = "results/data/mnist-3v8.train5-testall-s2.h5"
    snakemake(tmp_path, "--configfile", "caps.yaml", "--cores", "1", other, snakefile=root / "Snakefile")
    b = read_problem(tmp_path / other).attrs
    assert (b["train_counts"], b["test_counts"]) == ([5, 5], [1010, 974])
    assert (b["max_train_per_class"], b["max_test_per_class"], b["subset_seed"]) == (5, None, 2)
