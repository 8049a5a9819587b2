"""The tidy metrics table and its across-seed summary with t-intervals.

Two tables, both written as CSV by the ``aggregate`` rule.

``metrics`` (:func:`metrics_table`, ``results/tables/metrics.csv``)
    One row per (study, run, snapshot) and kernel: ``after`` and
    ``conjugate`` for the epochs and learning-rate studies, a single row with
    kernel ``none`` for rows without kernels (the width study). Columns:

    - keys :data:`KEYS`: ``study, run, problem, architecture, family,
      augmentation, learning_rate, seed, snapshot, epoch, kernel``.
      ``family`` is the width study's network family (``vgg``, ``fc``; empty
      elsewhere); ``learning_rate`` is the rate of a learning-rate-study run
      (empty for the epochs schedule, which uses ``training.learning_rate``);
      ``epoch`` is the snapshot's epoch, and for the ``final`` snapshot of the
      learning-rate study the number of epochs trained (``epochs_used``).
    - quantities :data:`QUANTITIES`:

      * SVM (``results/svm/{run}/{snapshot}.{kernel}.h5``): ``svm_test_error,
        svm_train_error, margin, gap, separable, converged``;
      * kernel metrics (``results/kernels/{run}.metrics.h5``, group
        ``{snapshot}/{kernel}``), of the row's kernel: ``translation, rotation, zoom, swap,
        effective_rank, target_alignment``; ``alignment`` (after kernel vs
        conjugate projection) is one number per snapshot, repeated on both
        kernel rows; beyond the paper (:mod:`afterkernel.kernels.evolution`),
        appended at the end: ``kernel_distance_init, kernel_distance_prev,
        kernel_distance_final, kernel_velocity`` (velocity: the angle
        arccos(1 - distance) from the previous snapshot per SGD step; NaN where the reference
        snapshot is absent: the learning-rate schedule's ``final`` has no
        FNTK and no previous snapshot, ``e0`` no previous one),
        ``spectrum_top10_fraction, target_alignment_centred``,
        ``alignment_centred`` (the centred alignment of the two kernels, per snapshot) and
        ``spectrum_fraction_{i}`` (the i-th eigenvalue of the train Gram over
        its trace, i in :data:`SPECTRUM_INDICES`);
      * training (``results/training/{run}.h5``): ``nn_test_error`` and
        ``train_loss`` at the row's epoch (the last epoch for ``final``),
        ``epochs_used, reached_target, diverged, n_params, n_train, n_test``
        (the images the run was trained and tested on).

      NaN (empty in the CSV) where a quantity does not apply (kernel and SVM
      quantities of ``none`` rows). ``separable, converged, reached_target,
      diverged`` are booleans.

    Diverged runs never raise: their rows are kept with ``diverged`` true and
    NaN for every measured quantity of a snapshot that the training did not
    genuinely reach (the ``final`` snapshot of a diverged run; in the epochs
    schedule a snapshot whose weights are the last finite ones of an earlier
    epoch, i.e. whose ``snapshots/{snapshot}`` ``epoch`` attr differs from
    the snapshot's epoch). Snapshots reached before the divergence keep
    their values. ``epochs_used``, ``reached_target``, ``diverged`` and
    ``n_params`` are always filled. The kernel and SVM files of snapshots
    that were not reached are not read (they may be absent).

``summary`` (:func:`summary_table`, ``results/tables/summary.csv``)
    Long (tidy) format, one row per group and quantity, columns
    :data:`SUMMARY_COLUMNS`::

        study, problem, architecture, family, augmentation, learning_rate,
        snapshot, epoch, kernel, quantity, mean, std, count, ci_low, ci_high

    A group is a set of metrics rows equal in every key but ``seed`` (and
    ``run``, which only differs by the seed). For the ``final`` snapshot
    ``epoch`` is left empty in the summary (the epochs used differ from seed
    to seed; their mean is the quantity ``epochs_used``). ``mean`` and
    ``std`` (sample standard deviation, ddof 1) are over the ``count``
    seeds with a finite value (booleans count as 0/1, so the mean of
    ``diverged`` is the fraction of diverged runs); ``ci_low, ci_high`` is
    the two-sided 95 % confidence interval of the mean from the t
    distribution, ``mean -+ t_{0.975, count-1} * std / sqrt(count)``, empty
    when ``count < 2``. (The original code reported one standard error,
    ``std / sqrt(n)``, as its "confidence interval"; this is the real 95 %
    interval, about 2.3 times wider for ten seeds, 4.3 times for three.)
    Keys that are empty (NaN) still form groups. Quantities with no finite
    value in a group (``count == 0``, e.g. SVM errors of the width study)
    are left out.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import h5py
import numpy as np
import pandas as pd

from afterkernel.io import atomic_write_text, get_attrs
from afterkernel.training import TrainingRecord, read_training_record, snapshot_reached
from afterkernel.vocabulary import FINAL, KERNELS, snapshot_epoch

log = logging.getLogger(__name__)

KEYS = ["study", "run", "problem", "architecture", "family", "augmentation", "learning_rate",
        "seed", "snapshot", "epoch", "kernel"]
SVM_QUANTITIES = ["svm_test_error", "svm_train_error", "margin", "gap", "separable", "converged"]
KERNEL_QUANTITIES = ["translation", "rotation", "zoom", "swap", "effective_rank", "target_alignment"]
TRAINING_QUANTITIES = ["nn_test_error", "train_loss"]
RUN_QUANTITIES = ["epochs_used", "reached_target", "diverged", "n_params", "n_train", "n_test"]
#: eigenvalue indices (1 = largest) of the spectrum columns ``spectrum_fraction_{i}``
SPECTRUM_INDICES = (1, 2, 3, 5, 10, 20, 50)
SPECTRUM_PREFIX = "spectrum_fraction_"
EVOLUTION_QUANTITIES = (["kernel_distance_init", "kernel_distance_prev", "kernel_distance_final",
                         "kernel_velocity", "spectrum_top10_fraction", "target_alignment_centred",
                         "alignment_centred"]
                        + [f"{SPECTRUM_PREFIX}{i}" for i in SPECTRUM_INDICES])
# the paper's columns first, in their order; the evolution quantities appended
QUANTITIES = (SVM_QUANTITIES[:2] + TRAINING_QUANTITIES[:1] + SVM_QUANTITIES[2:] + KERNEL_QUANTITIES[:4]
              + ["alignment"] + KERNEL_QUANTITIES[4:] + TRAINING_QUANTITIES[1:] + RUN_QUANTITIES
              + EVOLUTION_QUANTITIES)
BOOL_QUANTITIES = ["separable", "converged", "reached_target", "diverged"]
INT_COLUMNS = ["epoch", "epochs_used", "n_params", "n_train", "n_test"]
METRICS_COLUMNS = KEYS + QUANTITIES

SUMMARY_KEYS = ["study", "problem", "architecture", "family", "augmentation", "learning_rate",
                "snapshot", "epoch", "kernel"]
SUMMARY_COLUMNS = SUMMARY_KEYS + ["quantity", "mean", "std", "count", "ci_low", "ci_high"]
CONFIDENCE = 0.95

#: kernel of the rows without kernels (width study)
NO_KERNEL = "none"


# --------------------------------------------------------------------------
# metrics table


def _float(value: Any) -> float:
    """A number from an attribute (``None``/missing/non-numeric: NaN)."""
    if value is None or isinstance(value, (str, bytes)):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _bool(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return pd.NA
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.lower(), pd.NA)
    return bool(value)


def _snapshot_reached(training: TrainingRecord, snapshot: str) -> bool:
    """Whether ``snapshot`` holds weights the training genuinely reached."""
    attrs = dict(training.attrs)
    attrs["diverged"] = _bool(attrs.get("diverged")) is True
    return snapshot_reached(attrs, training.snapshot_epochs, snapshot)


def _history_at(training: TrainingRecord, epoch: int | None) -> dict[str, float]:
    """NN test error and training loss at ``epoch`` (``None``: last epoch)."""
    h = training.history
    epochs = h.get("epoch")
    out = {"nn_test_error": math.nan, "train_loss": math.nan}
    if epochs is None or len(epochs) == 0:
        return out
    if epoch is None:
        idx = len(epochs) - 1
    else:
        hits = np.flatnonzero(epochs == epoch)
        if len(hits) == 0:
            return out
        idx = int(hits[0])
    for key, name in (("nn_test_error", "test_error"), ("train_loss", "train_loss")):
        if name in h and idx < len(h[name]):
            out[key] = float(h[name][idx])
    return out


def _read_attrs(path: str | os.PathLike, group: str | None = None) -> dict[str, Any]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist (needed by the metrics table)")
    with h5py.File(path, "r") as f:
        if group is None:
            return get_attrs(f)
        if group not in f:
            raise KeyError(f"{path} has no group {group!r}")
        return get_attrs(f[group])


def _kernel_group(path: str | os.PathLike, group: str) -> dict[str, Any]:
    """A kernel group's attrs and its spectrum as ``spectrum_fraction_{i}``
    (eigenvalue / trace; NaN beyond the stored eigenvalues)."""
    attrs = _read_attrs(path, group)
    with h5py.File(path, "r") as f:
        spectrum = f[group]["spectrum"][()] if "spectrum" in f[group] else np.zeros(0)
    trace = _float(attrs.get("trace"))
    for i in SPECTRUM_INDICES:
        attrs[f"{SPECTRUM_PREFIX}{i}"] = float(spectrum[i - 1]) / trace if i <= len(spectrum) else math.nan
    return attrs


def _run_columns(row: Mapping[str, Any], training: TrainingRecord, reached: bool) -> dict[str, Any]:
    """The key columns of ``row`` and the quantities its training file gives."""
    tattrs = training.attrs
    snapshot = row["snapshot"]
    epoch = snapshot_epoch(snapshot)
    if epoch is None:  # the final snapshot's epoch is the number of epochs trained
        epoch = tattrs.get("epochs_used")
    base: dict[str, Any] = {
        "study": row["study"],
        "run": row["run"],
        "problem": row["problem"],
        "architecture": row["architecture"],
        "family": row.get("family"),
        "augmentation": bool(row["augmentation"]),
        "learning_rate": _float(row.get("learning_rate")),
        "seed": int(row["seed"]),
        "snapshot": snapshot,
        "epoch": _float(epoch),
        "epochs_used": _float(tattrs.get("epochs_used")),
        "reached_target": _bool(tattrs.get("reached_target")),
        "diverged": bool(_bool(tattrs.get("diverged")) is True),
        "n_params": _float(tattrs.get("n_params")),
        "n_train": _float(tattrs.get("n_train")),
        "n_test": _float(tattrs.get("n_test")),
    }
    hist = _history_at(training, snapshot_epoch(snapshot))
    base.update(hist if reached else dict.fromkeys(hist, math.nan))
    return base


def _kernel_records(base: Mapping[str, Any], files: Mapping[str, Any], reached: bool) -> list[dict]:
    """One record per kernel: ``base`` with the kernel metrics and SVM
    quantities of the snapshot (NaN when the training did not reach it)."""
    snapshot = base["snapshot"]
    kernel_attrs: dict[str, dict[str, Any]] = {k: {} for k in KERNELS}
    alignment = centred = math.nan
    if reached:
        snapshot_attrs = _read_attrs(files["kernel_metrics"], snapshot)
        alignment, centred = (_float(snapshot_attrs.get(k)) for k in ("alignment", "alignment_centred"))
        for kernel in KERNELS:
            kernel_attrs[kernel] = _kernel_group(files["kernel_metrics"], f"{snapshot}/{kernel}")
    records = []
    for kernel in KERNELS:
        rec = {**base, "kernel": kernel}
        rec.update({q: _float(kernel_attrs[kernel].get(q)) for q in KERNEL_QUANTITIES + EVOLUTION_QUANTITIES})
        rec.update(alignment=alignment, alignment_centred=centred)
        sa = _read_attrs(files["svm"][kernel]) if reached else {}
        rec.update(svm_test_error=_float(sa.get("test_error")), svm_train_error=_float(sa.get("train_error")),
                   margin=_float(sa.get("margin")), gap=_float(sa.get("gap")),
                   separable=_bool(sa.get("separable")), converged=_bool(sa.get("converged")))
        records.append(rec)
    return records


def _as_bool(value: object) -> object:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return {"true": True, "false": False}.get(str(value).strip().lower(), pd.NA)


def coerce_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """The metrics table with each column's dtype (records, or a CSV that
    holds booleans as True/False/empty): text as object (NaN when empty),
    booleans as ``boolean``, counts as ``Int64``, other quantities float."""
    df = metrics.copy()
    for col in ("study", "run", "problem", "architecture", "family", "snapshot", "kernel"):
        df[col] = df[col].astype(object).where(df[col].notna(), np.nan)
    df["augmentation"] = df["augmentation"].map(_as_bool).fillna(False).astype(bool)
    df["seed"] = df["seed"].astype("int64")
    for col in QUANTITIES + ["learning_rate", "epoch"]:
        if col in BOOL_QUANTITIES:
            df[col] = df[col].map(_as_bool).astype("boolean")
        else:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in INT_COLUMNS:  # counts: written without ".0", empty when unknown
        df[col] = df[col].round().astype("Int64")
    return df


def read_metrics(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``metrics.csv`` back with the dtypes of the metrics table."""
    text = ("study", "run", "problem", "architecture", "family", "snapshot", "kernel")
    return coerce_metrics(pd.read_csv(path, dtype=dict.fromkeys(text, object)))[METRICS_COLUMNS]


def metrics_table(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The tidy table of every (study, run, snapshot) and kernel (see the
    module docstring for the columns).

    ``rows`` are mappings with keys ``study, run, problem, architecture,
    family, augmentation, learning_rate, seed, snapshot, epoch, kernels`` and
    ``files``, the files to read (:func:`afterkernel.plan.table_rows`: the
    aggregate rule's ``rows`` param and inputs). Raises ``FileNotFoundError``
    when a file of a snapshot that was reached is missing.
    """
    trainings: dict[str, TrainingRecord] = {}
    records = []
    for row in rows:
        files = row["files"]
        if files["training"] not in trainings:
            trainings[files["training"]] = read_training_record(files["training"])
        training = trainings[files["training"]]
        reached = _snapshot_reached(training, row["snapshot"])
        base = _run_columns(row, training, reached)
        if row.get("kernels", True):
            records += _kernel_records(base, files, reached)
        else:
            records.append({**base, "kernel": NO_KERNEL})
    return coerce_metrics(pd.DataFrame.from_records(records, columns=METRICS_COLUMNS))


# --------------------------------------------------------------------------
# summary


def t_interval(mean: np.ndarray, std: np.ndarray, count: np.ndarray,
               confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided t confidence interval of a mean: ``mean -+ t_{(1+c)/2,
    n-1} * std / sqrt(n)``; NaN where ``count < 2``."""
    from scipy import stats

    mean, std, count = (np.asarray(a, float) for a in (mean, std, count))
    ok = count >= 2
    half = np.full(mean.shape, np.nan)
    half[ok] = stats.t.ppf(0.5 + confidence / 2, count[ok] - 1) * std[ok] / np.sqrt(count[ok])
    return mean - half, mean + half


def summary_table(metrics: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Across-seed summary of :func:`metrics_table`'s output, in the long
    format described in the module docstring."""
    df = metrics.copy()
    if "family" not in df:
        df["family"] = np.nan
    df["epoch"] = df["epoch"].astype("Int64")
    df.loc[df["snapshot"] == FINAL, "epoch"] = pd.NA
    keys = list(SUMMARY_KEYS)
    quantities = [q for q in QUANTITIES if q in df.columns]
    for q in quantities:
        df[q] = df[q].to_numpy(dtype=float, na_value=np.nan)
    df["_group"] = df.groupby(keys, dropna=False, sort=False).ngroup()
    groups = df.drop_duplicates("_group")[keys + ["_group"]].set_index("_group")
    long = df.melt(id_vars=["_group"], value_vars=quantities, var_name="quantity", value_name="value")
    agg = (long.groupby(["_group", "quantity"], sort=False)["value"]
           .agg(mean="mean", std="std", count="count").reset_index())
    agg = agg[agg["count"] > 0].copy()
    agg["_q"] = agg["quantity"].map({q: i for i, q in enumerate(quantities)})
    agg = agg.sort_values(["_group", "_q"], kind="stable")
    agg.loc[agg["count"] < 2, "std"] = np.nan
    agg["ci_low"], agg["ci_high"] = t_interval(agg["mean"], agg["std"], agg["count"], confidence)
    out = groups.loc[agg["_group"]].reset_index(drop=True)
    for col in ("quantity", "mean", "std", "count", "ci_low", "ci_high"):
        out[col] = agg[col].to_numpy()
    out["count"] = out["count"].astype("int64")
    out["augmentation"] = out["augmentation"].astype(bool)
    return out[SUMMARY_COLUMNS].reset_index(drop=True)


def read_summary(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``summary.csv`` back with the dtypes :func:`summary_table` gives."""
    df = pd.read_csv(path, dtype={"study": object, "problem": object, "architecture": object,
                                  "family": object, "snapshot": object, "kernel": object,
                                  "quantity": object})
    if df["augmentation"].dtype != bool:
        df["augmentation"] = df["augmentation"].map(
            lambda v: v if isinstance(v, bool) else str(v).strip().lower() == "true").astype(bool)
    for col in ("learning_rate", "mean", "std", "ci_low", "ci_high"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["epoch"] = pd.to_numeric(df["epoch"], errors="coerce").astype("Int64")
    return df


def to_csv(df: pd.DataFrame) -> str:
    """The table as CSV text (no index; full float precision)."""
    return df.to_csv(index=False, lineterminator="\n")


def write_tables(rows: Iterable[Mapping[str, Any]], metrics: str | os.PathLike,
                 summary: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The aggregate job: build both tables from the files ``rows`` name
    (:func:`metrics_table`) and write them atomically as CSV to ``metrics``
    and ``summary``; return them."""
    rows = list(rows)
    log.info("%d rows (study, run, snapshot)", len(rows))
    table = metrics_table(rows)
    n_div = int(table.drop_duplicates(["run"])["diverged"].sum()) if len(table) else 0
    if n_div:
        log.warning("%d run(s) diverged: their unreached snapshots have NaN metrics", n_div)
    across_seeds = summary_table(table)
    small = across_seeds[across_seeds["count"] < 2]
    if len(small):
        log.warning("%d summary rows have fewer than 2 values: no confidence interval", len(small))
    atomic_write_text(metrics, to_csv(table))
    atomic_write_text(summary, to_csv(across_seeds))
    log.info("wrote %s (%d rows) and %s (%d rows)", metrics, len(table), summary, len(across_seeds))
    return table, across_seeds
