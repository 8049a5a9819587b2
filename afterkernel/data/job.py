"""The job of rule ``prepare_data``: one problem's data to its problem file."""

from __future__ import annotations

import logging
import os
from typing import Any

from afterkernel.data.problem_data import load_problem
from afterkernel.data.problem_file import write_problem
from afterkernel.data.catalog import DEFAULT_SOURCE

log = logging.getLogger(__name__)


def prepare_problem_file(problem: str, out: str | os.PathLike, source: str = DEFAULT_SOURCE,
                         directory: str | os.PathLike | None = None,
                         max_train_per_class: int | None = None,
                         max_test_per_class: int | None = None,
                         dataset: dict[str, Any] | None = None,
                         subset_seed: int | None = None) -> dict[str, Any]:
    """Load ``problem`` from the data set spec ``dataset``, else from
    ``source`` (:func:`afterkernel.data.load_problem`; the caps
    ``max_*_per_class`` are seeded draws with ``subset_seed``), log what was
    loaded and write it to the problem file ``out``; return the file's attrs."""
    log.info("problem %s: loading from %s", problem, f"data set {dataset}" if dataset else
             f"source {source!r}" + (f" (dir {directory})" if source == "dir" else ""))
    data = load_problem(problem, source=source, directory=directory,
                        max_train_per_class=max_train_per_class,
                        max_test_per_class=max_test_per_class, dataset=dataset,
                        subset_seed=subset_seed)
    a = data.attrs
    log.info("classes %s (%s -> label 0, %s -> label 1)", a["classes"], *a["class_names"])
    log.info("train: %d images %s, counts per label %s", a["n_train"],
             data.x_train.shape, a["train_counts"])
    log.info("test: %d images %s, counts per label %s", a["n_test"],
             data.x_test.shape, a["test_counts"])
    if a["subset_seed"] is not None:
        log.info("caps: %s train / %s test images per class (null: all), drawn with seed %d",
                 a["max_train_per_class"], a["max_test_per_class"], a["subset_seed"])
    log.info("source files %s, sha256 %s", a["source_files"], a["source_sha256"])
    if a["jpeg_derived"]:
        log.warning("the pixels are decoded from JPEG (for CIFAR-10: not the true CIFAR-10): "
                    "numbers computed on them must say so")
    write_problem(out, data)
    log.info("wrote %s", out)
    return a
