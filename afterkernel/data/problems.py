"""Problem names (paper §2): which two classes of which data set.

A *problem* is a binary classification task between two classes of a data
set (:mod:`afterkernel.data.catalog`), named ``{dataset}-{a}v{b}`` with class
indices (``mnist-3v8``, ``cifar10-3v5``) or ``{dataset}-{name}-{name}`` with
class names when the data set has them (``cifar10-cat-dog``). Label 1 is the
*second* class of the name, label 0 the first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from afterkernel.data.catalog import CIFAR10_CLASSES, DIGITS

#: the class names of the data sets every config has (``mnist``, ``cifar10``)
BUILTIN_CLASSES: dict[str, tuple[str, ...]] = {"mnist": DIGITS, "cifar10": CIFAR10_CLASSES}

PROBLEM_FORMS = ("accepted problem names: '{dataset}-{a}v{b}' with class indices a != b (e.g. 'mnist-3v8'), "
          "or '{dataset}-{name}-{name}' with the data set's class names (e.g. 'cifar10-cat-dog'); "
          "label 1 is the second class of the name")
_INDEX_RE = re.compile(r"(\d+)v(\d+)")


@dataclass(frozen=True)
class Problem:
    """A two-class problem; ``classes[1]`` gets label 1."""

    name: str
    dataset: str
    classes: tuple[int, int]
    class_names: tuple[str, str]


def _classes(rest: str, names: Sequence[str]) -> tuple[int, int] | None:
    """The two class indices ``rest`` spells (``AvB`` or ``name-name``)."""
    m = _INDEX_RE.fullmatch(rest)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        return (a, b) if a < len(names) and b < len(names) else None
    for i in range(1, len(rest)):  # class names may hold '-' themselves
        if rest[i] == "-" and rest[:i] in names and rest[i + 1:] in names:
            return names.index(rest[:i]), names.index(rest[i + 1:])
    return None


def parse_problem(name: str | Problem,
                  classes: Mapping[str, Sequence[str]] | None = None) -> Problem:
    """Parse a problem name; ``classes`` maps each data set to its class
    names (index order; default :data:`BUILTIN_CLASSES`). ``ValueError`` if
    the name is malformed or names classes the data set lacks."""
    if isinstance(name, Problem):
        return name
    classes = BUILTIN_CLASSES if classes is None else classes
    if not isinstance(name, str) or "-" not in name:
        raise ValueError(f"unknown problem {name!r}; {PROBLEM_FORMS}")
    dataset, rest = name.split("-", 1)
    if dataset not in classes:
        raise ValueError(f"problem {name!r}: unknown data set {dataset!r}; known data sets: "
                         f"{', '.join(sorted(classes))} (add others under 'datasets'); {PROBLEM_FORMS}")
    names = tuple(classes[dataset])
    pair = _classes(rest, names)
    if pair is None:
        raise ValueError(f"problem {name!r}: data set {dataset!r} has no such classes; it has "
                         f"{len(names)} classes, indices 0-{len(names) - 1}, named "
                         f"{', '.join(names)}; {PROBLEM_FORMS}")
    if pair[0] == pair[1]:
        raise ValueError(f"problem {name!r} names the same class twice; {PROBLEM_FORMS}")
    return Problem(name=name, dataset=dataset, classes=pair, class_names=(names[pair[0]], names[pair[1]]))
