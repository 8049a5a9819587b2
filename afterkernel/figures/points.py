"""The points of a figure's curves, read from the summary table.

The summary (:func:`afterkernel.aggregate.summary_table`, long format) holds
one row per (study, problem, architecture, augmentation, learning rate,
epoch, kernel, quantity) with the mean over seeds, its 95 % t-interval and
the number of seeds. A :class:`~afterkernel.figures.registry.Curve` selects
the rows of one quantity; :func:`curve_data` turns them into points and the
flags drawn as hollow markers; :func:`panel_index` what a panel drew, pair by
pair.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from afterkernel.aggregate import SPECTRUM_PREFIX
from afterkernel.figures.registry import NO_FINITE, NOT_IN_CONFIG, Curve, FigureSpec, Panel

log = logging.getLogger(__name__)


def with_family(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with the width study's ``family`` filled (from the
    architecture name's first part when the table has none)."""
    w = summary["study"] == "width"
    fam = summary["family"].astype(object)
    missing = w & fam.isna()
    if missing.any():
        fam = fam.copy()
        fam[missing] = summary.loc[missing, "architecture"].astype(str).str.split("-").str[0]
        summary = summary.assign(family=fam)
    return summary


def matching_rows(summary: pd.DataFrame, study: str, where: tuple[tuple[str, Any], ...]) -> pd.Series:
    """Boolean mask of the rows of ``study`` whose keys equal ``where``
    (a NaN value matches a missing key)."""
    mask = summary["study"] == study
    for key, value in where:
        col = summary[key]
        if isinstance(value, float) and math.isnan(value):
            mask &= col.isna()
        else:
            mask &= (col == value).fillna(False).astype(bool)
    return mask.astype(bool)


def _companion_means(summary: pd.DataFrame, spec: FigureSpec, c: Curve, quantity: str,
                     x: pd.Series) -> np.ndarray:
    """Mean of ``quantity`` in the summary groups of curve ``c``'s points at
    ``x`` (NaN where absent), e.g. the fraction of separable kernels."""
    d = summary[matching_rows(summary, spec.study, c.where) & (summary["quantity"] == quantity)]
    means = dict(zip(d[spec.x].astype(float), d["mean"].astype(float)))
    return np.array([means.get(float(v), np.nan) for v in x], float)


def _with_parameter_counts(summary: pd.DataFrame, spec: FigureSpec, d: pd.DataFrame) -> pd.DataFrame:
    """``d`` with x = the network's number of parameters (Figure 15)."""
    keys = ["problem", "architecture", "augmentation", "epoch", "kernel"]
    n = summary[(summary["study"] == spec.study) & (summary["quantity"] == "n_params")]
    n = n[keys + ["mean"]].rename(columns={"mean": "x"}).drop_duplicates(keys)
    return d.merge(n, on=keys, how="left")


def curve_data(summary: pd.DataFrame, spec: FigureSpec, c: Curve) -> pd.DataFrame:
    """The points of curve ``c``: columns ``x, mean, ci_low, ci_high, count``
    (seeds averaged) and the flags drawn as hollow markers:
    ``not_separable`` (an SVM error where some seed's kernel was not
    separable, so no hard-margin SVM exists), ``not_converged`` (some
    seed's solver stopped at its iteration cap) and ``unreached`` (a
    learning-rate-study point where some run did not reach the loss target).
    Sorted by x, finite x and mean only."""
    if spec.x == "eigen_index":  # one curve = the spectrum columns of one group, x = the eigenvalue index
        d = summary[matching_rows(summary, spec.study, c.where) & summary["quantity"].str.startswith(c.quantity)]
        d = d.assign(x=d["quantity"].str[len(SPECTRUM_PREFIX):].astype(float))
    else:
        d = summary[matching_rows(summary, spec.study, c.where) & (summary["quantity"] == c.quantity)]
        d = _with_parameter_counts(summary, spec, d) if spec.x == "n_params" else d.assign(x=d[spec.x])
    if spec.max_epoch is not None:
        d = d[(d["epoch"] <= spec.max_epoch).fillna(False).astype(bool)]
    d = d[np.isfinite(d["x"].astype(float)) & np.isfinite(d["mean"].astype(float))]
    d = d.sort_values("x", kind="stable")
    if d["x"].duplicated().any():
        log.warning("%s: curve %s %s has several rows at the same x; keeping the first", spec.fig, c.quantity,
                    dict(c.where))
        d = d.drop_duplicates("x")
    out = d[["x", "mean", "ci_low", "ci_high", "count"]].astype(float).reset_index(drop=True)
    no_flag = np.zeros(len(out), bool)
    svm = c.quantity == "svm_test_error" and spec.x != "n_params"
    out["not_separable"] = _companion_means(summary, spec, c, "separable", out["x"]) < 1 if svm else no_flag
    out["not_converged"] = _companion_means(summary, spec, c, "converged", out["x"]) < 1 if svm else no_flag
    out["unreached"] = (_companion_means(summary, spec, c, "reached_target", out["x"]) < 1
                        if spec.study == "learning_rate" else no_flag)
    return out


def panel_status(summary: pd.DataFrame, spec: FigureSpec, panel: Panel,
                 data: dict[Curve, pd.DataFrame] | None = None) -> str | None:
    """``None`` when the panel has something to draw, else the note shown
    (``data``: the curves' :func:`curve_data`, when already computed)."""
    if not panel.curves:
        return NOT_IN_CONFIG
    if any(len(data[c] if data is not None else curve_data(summary, spec, c)) for c in panel.curves):
        return None
    if any(matching_rows(summary, spec.study, c.where).any() for c in panel.curves):
        return NO_FINITE
    return NOT_IN_CONFIG


DRAWN = "drawn"
#: the columns of :func:`panel_index` (``network``: the architecture, or the width study's family)
PANEL_INDEX_COLUMNS = ["panel", "problem", "network", "curves", "points", "min_seeds", "max_seeds", "status"]


def panel_index(summary: pd.DataFrame, spec: FigureSpec, panel: Panel,
                data: dict[Curve, pd.DataFrame]) -> list[dict[str, Any]]:
    """One row per (problem, network) pair the panel's curves show (one
    without a pair for a panel without curves): how many of its curves and
    points were drawn, the fewest and most seeds per point, and ``drawn`` or
    the note the panel shows instead (:func:`panel_status`). ``data``: the
    curves' :func:`curve_data`."""
    if not panel.curves:
        return [dict(panel=panel.title, problem="", network="", curves=0, points=0, min_seeds=0, max_seeds=0,
                     status=NOT_IN_CONFIG)]
    out = []
    for pair in dict.fromkeys(c.pair for c in panel.curves):
        curves = tuple(c for c in panel.curves if c.pair == pair)
        counts = [int(n) for c in curves for n in data[c]["count"]]
        status = panel_status(summary, spec, replace(panel, curves=curves), data)
        out.append(dict(panel=panel.title, problem=pair[0], network=pair[1],
                        curves=sum(len(data[c]) > 0 for c in curves), points=len(counts),
                        min_seeds=min(counts, default=0), max_seeds=max(counts, default=0),
                        status=DRAWN if status is None else status.replace("\n", " ")))
    return out
