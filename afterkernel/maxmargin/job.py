"""The job of rule ``svm``: the hard-margin SVM of one kernel of one snapshot
(paper §2), from the run's Gram file to its SVM file.

Reads ``{snapshot}/{kernel}/train`` (n, n), ``{snapshot}/{kernel}/test_train``
(m, n), ``y_train`` (n,) and ``y_test`` (m,) of the Gram file; writes the SVM
file: attributes ``kernel``, ``solver``, ``snapshot``, ``diverged``,
``test_error``, ``train_error``, ``margin``, ``upper_bound``, ``gap``,
``iterations``, ``converged``, ``separable``, ``status``, ``n_support`` and
``seconds``, and the dataset ``decision_test`` (m,).  A diverged training
run (snapshot attribute ``diverged``) gives NaN results with status
``diverged`` (and no ``n_support``) instead of an error.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from afterkernel.io import atomic_h5, get_attrs, set_attrs
from afterkernel.maxmargin import decision_function, error_rate, solve

log = logging.getLogger("svm")


def write_svm(gram: str | Path, out: str | Path, snapshot: str, kernel: str,
              svm: Mapping[str, Any]) -> dict[str, Any]:
    """Solve the max-margin SVM for ``kernel`` (``after`` or ``conjugate``) of
    ``snapshot`` in the Gram file ``gram`` with the config's ``svm`` settings
    (``solver``, ``tolerance``, ``max_iterations``); write the SVM file
    ``out`` and return its attributes."""
    K, y_train, y_test, diverged = _read_snapshot(gram, snapshot, kernel)
    attrs: dict[str, Any] = {"kernel": kernel, "solver": svm["solver"], "snapshot": snapshot,
                             "diverged": diverged}
    if diverged:
        log.warning("training diverged: no kernel, writing NaN results")
        nan = float("nan")
        attrs.update(test_error=nan, train_error=nan, margin=nan, upper_bound=nan, gap=nan,
                     iterations=0, converged=False, separable=False, status="diverged", seconds=0.0)
        decision = np.full(len(y_test), np.nan)
    else:
        decision, solved = _solve_and_score(K, gram, f"{snapshot}/{kernel}/test_train", y_train, y_test, svm)
        attrs.update(solved)
        log.info("%s kernel, n=%d: %s after %d iterations (%.2f s): margin %.6g, bound %.6g, "
                 "gap %.2e, separable %s; train error %.4f, test error %.4f",
                 kernel, len(y_train), attrs["status"], attrs["iterations"], attrs["seconds"],
                 attrs["margin"], attrs["upper_bound"], attrs["gap"], attrs["separable"],
                 attrs["train_error"], attrs["test_error"])
    with atomic_h5(out) as f:
        set_attrs(f, attrs)
        f.create_dataset("decision_test", data=decision)
    return attrs


def _read_snapshot(gram: str | Path, snapshot: str, kernel: str):
    """(K (n, n), y_train (n,), y_test (m,), diverged) of one snapshot's
    kernel in the Gram file (the test x train Gram is read after the solve,
    by rows: :func:`_solve_and_score`)."""
    with h5py.File(gram, "r") as f:
        if f"{snapshot}/{kernel}" not in f:
            raise ValueError(f"{gram} has no {snapshot}/{kernel} Gram matrices")
        group = f[snapshot]
        diverged = bool(get_attrs(group).get("diverged", False))
        K = group[f"{kernel}/train"][...]
        y_train, y_test = f["y_train"][...], f["y_test"][...]
    return K, y_train, y_test, diverged


def _solve_and_score(K: np.ndarray, gram: str | Path, test_train: str, y_train: np.ndarray,
                     y_test: np.ndarray, svm: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """The decision values on the test set (m,) and the SVM file's result
    attributes; ``test_train`` names the (m, n) dataset in the Gram file.

    Peak memory stays near the train Gram's: decision values come from the
    support's columns, a block of rows at a time (:func:`decision_function`)."""
    start = time.perf_counter()
    result = solve(K, y_train, solver=svm["solver"], tol=svm["tolerance"], max_iter=svm["max_iterations"])
    seconds = time.perf_counter() - start
    train_decision = decision_function(K, y_train, result.coef)
    with h5py.File(gram, "r") as f:
        decision = decision_function(f[test_train], y_train, result.coef)
    return decision, dict(
        test_error=error_rate(decision, y_test),
        train_error=error_rate(train_decision, y_train),
        margin=result.margin, upper_bound=result.upper_bound, gap=result.gap,
        iterations=result.iterations, converged=result.converged, separable=result.separable,
        status=result.status, n_support=result.n_support, seconds=seconds,
    )
