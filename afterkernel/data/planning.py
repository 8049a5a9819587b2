"""The data side of planning: what a config's problems need, checked before
any job runs, and what rule ``prepare_data`` gets (its input files, its data
set spec).

A missing file or folder, a class the data set lacks (or has no images of)
and a bad ``datasets`` entry are config errors naming the key; a per-class
cap above what a class holds is a warning naming the count used.
"""

from __future__ import annotations

import warnings
from typing import Any

from afterkernel.data.catalog import dataset_specs, known_key, spec_errors
from afterkernel.data.errors import HOW_TO_PROVIDE, DataError
from afterkernel.data.problems import PROBLEM_FORMS, Problem, parse_problem
from afterkernel.data.survey import DatasetInfo, describe

CAPS = {"train": "max_train_per_class", "test": "max_test_per_class"}


class CapWarning(UserWarning):
    """A per-class cap above the images a class has: all of them are used."""


def dataset_of(problem: str) -> str:
    return problem.split("-", 1)[0]


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


def _short(error: Exception) -> str:
    return str(error).split(HOW_TO_PROVIDE)[0].strip()


def _check_counts(key: str, config: dict, prob: Problem, info: DatasetInfo) -> list[str]:
    """Classes without images are errors; caps above a class's images warn."""
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
        cap = config.get("data", {}).get(cap_key)
        if cap is not None and cap > min(counts):
            used = ", ".join(f"{min(cap, n)} of class {name}" for name, n in zip(prob.class_names, counts))
            warnings.warn(f"config key 'data.{cap_key}': {cap} is more than {prob.name} has; it uses "
                          f"{used} ({split})", CapWarning, stacklevel=2)
    return out


def data_errors(config: dict) -> list[str]:
    """Every data problem of ``config`` as one line naming its key."""
    out = [m for name, spec in (config.get("datasets") or {}).items() for m in spec_errors(name, spec)]
    if out:
        return out
    for i, problem in enumerate(config["problems"]):
        key = f"problems[{i}]"
        try:
            prob, info = problem_info(config, problem)
        except DataError as e:
            out.append(f"config key '{key}': {_short(e)}")
            continue
        out += _check_counts(key, config, prob, info)
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
