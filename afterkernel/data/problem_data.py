"""One problem's preprocessed data (paper §2): the two classes only (at most
a cap of images per class, a seeded draw from the whole split), in their
original order (no shuffling), float32 pixels / 255 in NHWC (images
without a channel axis, as MNIST's, get one; float images in [0, 1] are kept
as they are), no mean subtraction; labels uint8 in {0, 1}."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from afterkernel.data.catalog import BUILTIN, DEFAULT_SOURCE, SOURCES, builtin_spec
from afterkernel.data.errors import HOW_TO_PROVIDE, DataError
from afterkernel.data.problems import Problem, parse_problem
from afterkernel.data.raw import RawData
from afterkernel.data.sample import SUBSET_SEED, draw_per_class
from afterkernel.vocabulary import dataset_of
from afterkernel.data.sources import raw_data
from afterkernel.data.survey import describe


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


def load_problem(
    problem: str | Problem,
    source: str = DEFAULT_SOURCE,
    directory: str | os.PathLike | None = None,
    max_train_per_class: int | None = None,
    max_test_per_class: int | None = None,
    dataset: dict[str, Any] | None = None,
    subset_seed: int | None = None,
) -> ProblemData:
    """Load and preprocess one problem: from the data set spec ``dataset``
    (:mod:`afterkernel.data.catalog`) when given, else from ``source`` and
    ``directory`` (``mnist`` and ``cifar10``, see
    :mod:`afterkernel.data.sources`; for source keras ``directory`` is rule
    fetch_data's folder).

    ``max_*_per_class`` = N keeps N images of each class drawn at random
    without replacement from the whole split with the seed ``subset_seed``
    (``None``: :data:`~afterkernel.data.sample.SUBSET_SEED`, 0), kept in
    their original order (:func:`~afterkernel.data.sample.draw_per_class`);
    ``None``, or N at least a class's count, keeps all of it. The attrs
    record the caps and the seed (``None`` when nothing is capped). Raises
    :class:`DataError` when the data are missing or corrupt, with a message
    saying how to provide them.
    """
    name = problem.name if isinstance(problem, Problem) else str(problem)
    spec = dataset or _builtin(name, source, directory)
    if spec["source"] not in SOURCES:
        raise DataError(f"data.source must be one of {', '.join(SOURCES)}, got {spec['source']!r}")
    info = describe(spec)
    try:
        prob = parse_problem(problem, {dataset_of(name): info.class_names})
    except ValueError as e:
        raise DataError(str(e)) from None
    caps = {"train": _check_cap(max_train_per_class, "data.max_train_per_class"),
            "test": _check_cap(max_test_per_class, "data.max_test_per_class")}
    seed = _check_seed(subset_seed)
    raw = raw_data(prob, spec, directory if spec["source"] == "keras" else None, len(info.class_names))
    source = spec["source"]
    arrays: dict[str, np.ndarray] = {}
    counts: dict[str, list[int]] = {}
    for split, cap in caps.items():
        x, y = _two_classes(raw, split, prob, cap, source, seed)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
        counts[split] = [int(np.sum(y == 0)), int(np.sum(y == 1))]
    attrs = {
        "problem": prob.name,
        "dataset": prob.dataset,
        "classes": list(prob.classes),
        "class_names": list(prob.class_names),
        "source": source,
        "n_train": int(arrays["y_train"].shape[0]),
        "n_test": int(arrays["y_test"].shape[0]),
        "train_counts": counts["train"],
        "test_counts": counts["test"],
        "source_sha256": raw.source_sha256,
        "source_files": raw.source_files,
        "jpeg_derived": bool(raw.jpeg_derived),
        "max_train_per_class": caps["train"],
        "max_test_per_class": caps["test"],
        "subset_seed": None if caps["train"] is None and caps["test"] is None else seed,
    }
    return ProblemData(attrs=attrs, **arrays)


def _builtin(name: str, source: str, directory: str | os.PathLike | None) -> dict[str, Any]:
    """The spec of a problem of ``mnist`` or ``cifar10`` from ``source``."""
    dataset = dataset_of(name)
    if dataset not in BUILTIN:
        raise DataError(f"problem {name!r}: data set {dataset!r} is not mnist or cifar10; pass its "
                        f"spec (config key 'datasets.{dataset}') as dataset=...")
    return builtin_spec(dataset, source, directory)


def _check_cap(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{key} must be a positive integer or null (all), got {value!r}")
    return int(value)


def _check_seed(value: Any) -> int:
    if value is None:
        return SUBSET_SEED
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise DataError(f"data.subset_seed must be an integer >= 0, got {value!r}")
    return int(value)


def _two_classes(raw: RawData, split: str, prob: Problem, cap: int | None,
                 source: str, seed: int = SUBSET_SEED) -> tuple[np.ndarray, np.ndarray]:
    """At most ``cap`` images of each class of ``prob`` in ``split``, drawn
    at random without replacement from the whole split with ``seed``
    (:func:`~afterkernel.data.sample.draw_per_class`; ``None``: all), in
    their original order, preprocessed: x float32 (n, H, W, C), y uint8 (n,)
    with label 1 for ``prob.classes[1]``."""
    y_all = getattr(raw, f"y_{split}")
    idx = draw_per_class(y_all, prob.classes, cap, seed, split)
    y = (y_all[idx] == prob.classes[1]).astype(np.uint8)
    empty = [prob.classes[k] for k in (0, 1) if not np.any(y == k)]
    if empty:
        raise DataError(
            f"{source} data for {prob.name!r} has no {split} examples of class(es) {empty} "
            f"(from {', '.join(raw.source_files)}); the data are incomplete. {HOW_TO_PROVIDE}"
        )
    x = getattr(raw, f"x_{split}")[idx]
    if x.dtype == np.uint8:
        x = x.astype(np.float32)
        x /= np.float32(255.0)
    else:  # a user's float images, already in [0, 1] (raw.check_raw)
        x = x.astype(np.float32)
    return (x[..., None] if x.ndim == 3 else x), y
