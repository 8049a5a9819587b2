"""Problem names (paper §2): which two classes of which dataset.

A *problem* is a binary classification task between two classes of MNIST or
CIFAR-10, named ``mnist-{a}v{b}`` (``mnist-3v8``), ``cifar10-{name}-{name}``
(``cifar10-cat-dog``) or ``cifar10-{i}v{j}`` (``cifar10-3v5``). Label 1 is the
*second* class of the name, label 0 the first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)

_PROBLEM_FORMS = (
    "accepted problem names: 'mnist-{a}v{b}' with digits a != b (e.g. 'mnist-3v8'), "
    "'cifar10-{name}-{name}' with CIFAR-10 class names "
    f"({', '.join(CIFAR10_CLASSES)}; e.g. 'cifar10-cat-dog'), or "
    "'cifar10-{i}v{j}' with class indices 0-9, i != j (e.g. 'cifar10-3v5'); "
    "label 1 is the second class of the name"
)

_MNIST_RE = re.compile(r"mnist-(\d)v(\d)")
_CIFAR_IDX_RE = re.compile(r"cifar10-(\d)v(\d)")
_CIFAR_NAME_RE = re.compile(r"cifar10-([a-z]+)-([a-z]+)")


@dataclass(frozen=True)
class Problem:
    """A two-class problem; ``classes[1]`` gets label 1."""

    name: str
    dataset: str
    classes: tuple[int, int]
    class_names: tuple[str, str]


def _dataset_and_classes(name: str) -> tuple[str, int, int]:
    """The dataset and the two class indices a problem name spells."""
    for dataset, pattern in (("mnist", _MNIST_RE), ("cifar10", _CIFAR_IDX_RE)):
        m = pattern.fullmatch(name)
        if m:
            return dataset, int(m.group(1)), int(m.group(2))
    m = _CIFAR_NAME_RE.fullmatch(name)
    if not m or m.group(1) not in CIFAR10_CLASSES or m.group(2) not in CIFAR10_CLASSES:
        raise ValueError(f"unknown problem {name!r}; {_PROBLEM_FORMS}")
    return "cifar10", CIFAR10_CLASSES.index(m.group(1)), CIFAR10_CLASSES.index(m.group(2))


def parse_problem(name: str | Problem) -> Problem:
    """Parse a problem name (see the module docstring); ``ValueError`` if malformed."""
    if isinstance(name, Problem):
        return name
    if not isinstance(name, str):
        raise ValueError(f"problem name must be a string, got {name!r}; {_PROBLEM_FORMS}")
    dataset, a, b = _dataset_and_classes(name)
    if a == b:
        raise ValueError(f"problem {name!r} names the same class twice; {_PROBLEM_FORMS}")
    if dataset == "mnist":
        class_names = (str(a), str(b))
    else:
        class_names = (CIFAR10_CLASSES[a], CIFAR10_CLASSES[b])
    return Problem(name=name, dataset=dataset, classes=(a, b), class_names=class_names)
