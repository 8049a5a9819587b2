"""The data side of planning: what a config's problems need, checked before
any job runs, and what rule ``prepare_data`` gets (its input files, its data
set spec).

A missing file or folder, a class the data set lacks (or has no images of),
a bad ``datasets`` entry and a bad ``data.caps`` entry (a problem, network or
data set the config does not have, two entries for one target) are config
errors naming the key; a per-class cap above what a class holds is a warning
naming the count used.

The caps of a (problem, architecture) and the subset tag of its problem file
are :func:`afterkernel.plan.caps_of`, :func:`afterkernel.plan.subset_of`;
``prepare_data`` reads its caps back from the tag (:func:`prepare_params`).
"""

from __future__ import annotations

import warnings
from typing import Any

from afterkernel.data.catalog import dataset_specs, known_key, spec_errors
from afterkernel.data.errors import HOW_TO_PROVIDE, OWN_DATA_ADVICE, DataError
from afterkernel.data.problems import PROBLEM_FORMS, Problem, parse_problem
from afterkernel.data.survey import DatasetInfo, describe
from afterkernel.plan import caps_from_tag, caps_of
from afterkernel.vocabulary import dataset_of

CAPS = {"train": "max_train_per_class", "test": "max_test_per_class"}


class CapWarning(UserWarning):
    """A per-class cap above the images a class has: all of them are used."""


def problem_spec(config: dict, problem: str) -> dict[str, Any]:
    """The data set spec of ``problem`` (the ``prepare_data`` job's ``dataset`` param)."""
    specs = dataset_specs(config)
    name = dataset_of(problem)
    if name not in specs:
        raise DataError(f"problem {problem!r}: unknown data set {name!r}; known data sets: "
                        f"{', '.join(sorted(specs))} (add others under 'datasets'); {PROBLEM_FORMS}")
    return specs[name]


def problem_info(config: dict, problem: str) -> tuple[Problem, DatasetInfo]:
    """The parsed problem and its data set's :class:`DatasetInfo`."""
    info = describe(problem_spec(config, problem))
    try:
        return parse_problem(problem, {dataset_of(problem): info.class_names}), info
    except ValueError as e:
        raise DataError(str(e)) from None


def problem_inputs(config: dict, problem: str, fetched_file) -> dict[str, Any]:
    """``prepare_data``'s inputs: rule fetch_data's file (``fetched_file(name)``)
    for keras, else the files the data are read from, so that replacing one
    re-runs exactly its problems."""
    spec = problem_spec(config, problem)
    if spec["source"] == "keras":
        return {"fetched": fetched_file(known_key(spec))}
    if spec["source"] == "embedded":
        # package data, checked against its sha256 when read: part of the code,
        # and its absolute path would change with every copy of the workflow
        return {}
    return {"files": list(describe(spec).files)}


def prepare_params(config: dict, subset: str) -> dict[str, Any]:
    """``prepare_data``'s ``data`` param for the problem file of subset tag
    ``subset``: ``data.source`` and ``data.dir``, and the caps and seed read
    from the tag (not the config's global caps: each file has its own)."""
    train, test, seed = caps_from_tag(subset)
    data = config.get("data", {})
    return {"source": data.get("source"), "dir": data.get("dir"), CAPS["train"]: train,
            CAPS["test"]: test, "subset_seed": seed}


def _short(error: Exception) -> str:
    return str(error).split(HOW_TO_PROVIDE)[0].split(OWN_DATA_ADVICE)[0].strip()


def _check_counts(key: str, config: dict, prob: Problem, info: DatasetInfo) -> list[str]:
    """Classes without images are errors; caps above a class's images warn
    (``data.max_*_per_class`` and each ``data.caps`` entry of the problem)."""
    if info.counts is None:  # keras and CIFAR-10 batches: counted when loaded
        return []
    out = []
    for split, cap_key in CAPS.items():
        counts = [info.counts[split][c] for c in prob.classes]
        empty = [f"{c} ({n})" for c, n in zip(prob.classes, prob.class_names) if info.counts[split][c] == 0]
        if empty:
            held = [str(c) for c, n in enumerate(info.counts[split]) if n]
            out.append(f"config key '{key}': data set {prob.dataset!r} has no {split} images of class(es) "
                       f"{', '.join(empty)}; classes with images: {', '.join(held) or 'none'}")
            continue
        data = config.get("data", {})
        capped = [(f"data.{cap_key}", data.get(cap_key))]
        capped += [(f"data.caps[{i}].{cap_key}", entry.get(cap_key))
                   for i, entry in enumerate(data.get("caps") or [])
                   if _concerns(entry, prob.name) and entry.get(cap_key) is not None]
        for cap_name, cap in capped:
            if cap is not None and cap > min(counts):
                used = ", ".join(f"{min(cap, n)} of class {name}" for name, n in zip(prob.class_names, counts))
                warnings.warn(f"config key '{cap_name}': {cap} is more than {prob.name} has; it uses "
                              f"{used} ({split})", CapWarning, stacklevel=2)
    return out


def _concerns(entry: dict, problem: str) -> bool:
    """Whether a ``data.caps`` entry caps ``problem`` (with some network)."""
    return entry.get("problem") == problem or entry.get("dataset") == dataset_of(problem)


def _target(entry: dict) -> tuple:
    return ("dataset", entry["dataset"]) if "dataset" in entry else (
        "problem", entry.get("problem"), entry.get("architecture"))


def _target_name(entry: dict) -> str:
    if "dataset" in entry:
        return f"data set {entry['dataset']!r}"
    arch = entry.get("architecture")
    return f"problem {entry.get('problem')!r}" + (f" with architecture {arch!r}" if arch else "")


def caps_errors(config: dict) -> list[str]:
    """Each ``data.caps`` entry names a data set, problem and network of the
    config, and no two entries the same target (the schema checks the shape:
    exactly one of ``dataset``, ``problem``; ``architecture`` only with
    ``problem``; at least one cap)."""
    entries = config.get("data", {}).get("caps") or []
    datasets, problems = dataset_specs(config), config.get("problems", [])
    archs = config.get("architectures", {})
    out, seen = [], {}
    for i, entry in enumerate(entries):
        key = f"data.caps[{i}]"
        if "dataset" in entry and entry["dataset"] not in datasets:
            out.append(f"config key '{key}.dataset': unknown data set {entry['dataset']!r}; allowed "
                       f"values: {', '.join(sorted(datasets))} (or a name under 'datasets')")
        if "problem" in entry and entry["problem"] not in problems:
            out.append(f"config key '{key}.problem': problem {entry['problem']!r} is not listed under "
                       f"'problems'; allowed values: {', '.join(problems)}")
        if "architecture" in entry and entry["architecture"] not in archs:
            out.append(f"config key '{key}.architecture': architecture {entry['architecture']!r} is not "
                       f"defined under 'architectures'; allowed values: {', '.join(archs)}")
        target = _target(entry)
        if target in seen:
            out.append(f"config key '{key}': a second entry for {_target_name(entry)} (data.caps"
                       f"[{seen[target]}] is the first); give each data set, problem or (problem, "
                       "architecture) one entry")
        else:
            seen[target] = i
    return out


def _own_data_errors(config: dict, values: bool) -> dict[str, str]:
    """Each user data set (``datasets.NAME`` of source npz or images) a
    problem uses that cannot be read or whose values are wrong: NAME -> one
    line naming ``datasets.NAME.path``. ``values``: read the values too
    (:func:`~afterkernel.data.own_files.check_values`), not only the headers."""
    from afterkernel.data.own_files import check_values

    used = {dataset_of(p) for p in config["problems"]}
    out = {}
    for name, spec in (config.get("datasets") or {}).items():
        if name not in used or spec.get("source") not in ("npz", "images"):
            continue
        try:
            describe(spec)
            if values:
                check_values(spec)
        except DataError as e:
            out[name] = f"config key 'datasets.{name}.path': {_short(e)}"
    return out


def _test_sample_errors(config: dict, key: str, prob: Problem, info: DatasetInfo) -> list[str]:
    """A class with fewer test images than its half of ``kernels.test_sample``
    (when the sample is smaller than the test set: else every image is used)."""
    size = (config.get("kernels") or {}).get("test_sample")
    if size is None or info.counts is None:
        return []
    cap = caps_of(config, prob.name)[1]
    counts = [min(info.counts["test"][c], cap) if cap is not None else info.counts["test"][c] for c in prob.classes]
    if size >= sum(counts):
        return []
    shares = (size // 2, size - size // 2)
    return [f"config key 'kernels.test_sample': {size} (half per class) needs {share} test images of class "
            f"{name} of {prob.name} ({key}), which has {n}; lower kernels.test_sample or give the class "
            "more test images" for name, n, share in zip(prob.class_names, counts, shares) if n < share]


def data_errors(config: dict, values: bool = True) -> list[str]:
    """Every data problem of ``config`` as one line naming its key
    (``values``: read a user's data sets whole, see :func:`_own_data_errors`)."""
    out = [m for name, spec in (config.get("datasets") or {}).items() for m in spec_errors(name, spec)]
    out += caps_errors(config)
    if out:
        return out
    own = _own_data_errors(config, values)
    out += own.values()
    for i, problem in enumerate(config["problems"]):
        key = f"problems[{i}]"
        if dataset_of(problem) in own:
            continue
        try:
            prob, info = problem_info(config, problem)
        except DataError as e:
            out.append(f"config key '{key}': {_short(e)}")
            continue
        out += _check_counts(key, config, prob, info) or _test_sample_errors(config, key, prob, info)
    return out


def input_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Each problem's image shape (H, W, C) as the networks get it."""
    out = {}
    for problem in config["problems"]:
        try:
            out[problem] = describe(problem_spec(config, problem)).image_shape
        except DataError:
            continue  # data_errors names it
    return out
