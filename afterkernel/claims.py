"""What this run reproduces: the paper's claims checked on the run's own numbers.

Long, "Properties of the after kernel", draws ten qualitative claims from
Figures 1-10, 13 and 16. :func:`claims_table` tests each one on the tidy
metrics table (:mod:`afterkernel.aggregate`), one row per claim and
(problem, architecture) pair, columns :data:`CLAIMS_COLUMNS`. ``difference``
is b - a; ``paired`` rows compare two conditions of the same training runs
(e.g. epoch 0 and the last epoch of one run; a threshold is paired with its
constant): mean of the per-seed differences with a one-sample 95 %
t-interval. Other rows compare different runs (augmented vs plain, two
learning rates): ``mean_b - mean_a`` with a Welch-Satterthwaite interval.
``n_seeds`` counts the seeds with values in both conditions (paired) or the
smaller group; below 2 there is no interval. The ``verdict``
(:data:`VERDICTS`) follows from the interval and the claim's expected
relation of b to a (:data:`RELATIONS`). Rows ``L1``, ``L2`` are findings of
the literature the paper builds on, not claims of the paper, checked on this
study's runs the same way (their statements say so; figures 17 and 19 of
this study). The paper's own pairs always get a
row (``not in this config`` when absent, ``note`` says why); diverged runs
and NaN values are missing values.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from afterkernel.aggregate import CONFIDENCE, coerce_metrics, read_metrics, to_csv
from afterkernel.io import atomic_write_text
from afterkernel.vocabulary import AFTER, CONJUGATE

log = logging.getLogger(__name__)

CLAIMS_COLUMNS = ["claim", "statement", "figure", "problem", "architecture", "quantity", "condition_a",
                  "condition_b", "relation", "mean_a", "mean_b", "difference", "ci_low", "ci_high", "n_seeds", "paired",
                  "verdict", "note"]

VERDICTS = ("reproduced", "contradicted", "inconclusive", "not in this config")
DELTA = 0.01  # absolute margin for errors and cosines: what "no larger" and "the same" allow
ALIGNMENT_THRESHOLD = 0.99  # Figure 6a read as a number: VGG alignments stay at the top
GAP = "conjugate - after"  # kernel of a per-run difference of the two kernels' values

#: expected relation of b to a -> (reproduced, contradicted) tests of the interval
RELATIONS: dict[str, tuple[Callable[[float, float], bool], Callable[[float, float], bool]]] = {
    "<": (lambda lo, hi: hi < 0, lambda lo, hi: lo > 0),
    ">": (lambda lo, hi: lo > 0, lambda lo, hi: hi < 0),
    "not greater": (lambda lo, hi: hi < DELTA, lambda lo, hi: lo > DELTA),
    "within": (lambda lo, hi: -DELTA < lo and hi < DELTA, lambda lo, hi: lo > DELTA or hi < -DELTA),
    ">=": (lambda lo, hi: lo > 0, lambda lo, hi: hi < 0),  # on value - threshold
}
_SYMBOLS = {"<": "{b} < {a}", ">": "{b} > {a}", "not greater": "{b} ≤ {a} + δ", "within": "{b} = {a} ± δ",
            ">=": "{b} ≥ {a}"}

CIFAR = "cifar10-cat-dog"
MEGA = ("mnist-3v8", "mega-vgg")
PAPER_PAIRS = (("mnist-3v8", "vgg"), ("mnist-5v6", "vgg"), ("mnist-3v8", "fc"), ("mnist-5v6", "fc"), (CIFAR, "vgg"))
_LEVEL = {"epochs": "epoch", "learning_rate": "learning_rate"}  # what a condition's `at` indexes


@dataclass(frozen=True)
class Side:
    """One condition: ``at`` an epoch (int), ``"max"``/``"min"`` (the
    largest/smallest epoch or learning rate of the pair) or ``"all"`` (the
    minimum over the epochs of each run)."""

    at: int | str
    kernel: str = AFTER
    augmentation: bool = False
    quantity: str | None = None  # instead of the claim's (C3 compares two quantities)
    prefix: str = ""


@dataclass(frozen=True)
class Check:
    """One row per applicable pair: b ``relation`` a (a ``None``: threshold)."""

    claim: str
    figure: str
    statement: str  # format fields: last, lo, hi (" (10)" or ""), delta, threshold
    quantity: str
    relation: str
    a: Side | None
    b: Side
    applies: Callable[[str, str], bool]
    study: str = "epochs"
    mega: bool = False  # the paper also shows (mnist-3v8, mega-vgg)


def _mnist(p: str) -> bool:
    return p.startswith("mnist-")


def _fc_mnist(p: str, a: str) -> bool:
    return a == "fc" and _mnist(p)


def _cifar_vgg(p: str, a: str) -> bool:
    return (p, a) == (CIFAR, "vgg")


def _any(p: str, a: str) -> bool:
    return True


def _checks() -> tuple[Check, ...]:
    """The claims C1-C10, each with the figure it is read from."""
    plain, e0, e1, last = Side("max", prefix="no augmentation"), Side(0), Side(1), Side("max")
    aug = Side("max", augmentation=True, prefix="augmentation")
    lo, hi = Side("min"), Side("max")
    fntk = "After-kernel SVM test error is lower at the last epoch{last} than at epoch 0 (the FNTK)"
    inv = ("translation", "rotation", "zoom")
    c5 = "Swap invariance of the after kernel {} (fully connected nets)"
    c8 = "At the last epoch{{last}} the conjugate kernel's SVM test error is {} the after kernel's"
    c9 = {q: (f"Data augmentation does not raise {q} invariance by more than {{delta}}", "not greater", "8")
          for q in inv}
    c9.update(svm_test_error=("Data augmentation lowers the after-kernel SVM test error", "<", "16"),
              nn_test_error=("Data augmentation lowers the network's test error", "<", "16"))
    c10 = "The largest learning rate{{hi}} gives {} than the smallest{{lo}} (runs that reached the loss target)"
    return (
        Check("C1", "1a", fntk, "svm_test_error", "<", e0, last, _fc_mnist),
        Check("C2", "1b", fntk, "svm_test_error", "<", e0, last, _cifar_vgg),
        Check("C3", "2-3", "After one epoch the after-kernel SVM has a lower test error than the network",
              "svm_test_error", "<", Side(1, quantity="nn_test_error", prefix="network"),
              Side(1, prefix="SVM (after kernel)"), _any),
        Check("C4", "4a, 4c, 4d", "Swap invariance of the after kernel is lower at the last epoch{last} than at "
              "epoch 0", "swap", "<", e0, last, lambda p, a: a in ("vgg", "mega-vgg"), mega=True),
        Check("C5", "4b", c5.format("rises from epoch 0 to epoch 1"), "swap", ">", e0, e1, _fc_mnist),
        Check("C5", "4b", c5.format("falls from epoch 1 to the last epoch{last}"), "swap", "<", e1, last,
              _fc_mnist),
        *(Check("C6", "5", f"{q.capitalize()} invariance of the after kernel rises from epoch 0 to epoch 1", q,
                ">", e0, e1, _any) for q in inv),
        Check("C7", "6a", "The after kernel and its conjugate projection stay aligned (alignment ≥ {threshold}) "
              "at every epoch", "alignment", ">=", None, Side("all"),
              lambda p, a: a in ("vgg", "mega-vgg") and _mnist(p), mega=True),
        Check("C7", "6b, 6c", "The alignment of the after kernel and its conjugate projection is lower at the "
              "last epoch{last} than at epoch 0", "alignment", "<", e0, last,
              lambda p, a: _fc_mnist(p, a) or _cifar_vgg(p, a)),
        Check("C8", "7", c8.format("higher than"), "svm_test_error", ">", Side("max", prefix="after kernel"),
              Side("max", CONJUGATE, prefix="conjugate kernel"), lambda p, a: (p, a) == ("mnist-5v6", "vgg")),
        Check("C8", "7", c8.format("within ±{delta} of"), "svm_test_error", "within",
              Side("max", prefix="after kernel"), Side("max", CONJUGATE, prefix="conjugate kernel"),
              lambda p, a: (p, a) != ("mnist-5v6", "vgg")),
        *(Check("C9", fig, text + " at the last epoch{last}", q, rel, plain, aug, lambda p, a: a == "mega-vgg"
                or _fc_mnist(p, a) or a == "vgg" and (_mnist(p) or p == CIFAR), mega=True)
          for q, (text, rel, fig) in c9.items()),
        Check("C10", "9", c10.format("a lower after-kernel SVM test error"), "svm_test_error", "<", lo, hi, _any,
              study="learning_rate"),
        Check("C10", "10", c10.format("a lower swap invariance"), "swap", "<", lo, hi, _any, study="learning_rate"),
        Check("C10", "13", c10.format("a smaller conjugate - after SVM test error gap"), "svm_test_error", "<",
              Side("min", GAP), Side("max", GAP), _any, study="learning_rate"),
        *_literature_checks(),
    )


LITERATURE = "literature, not a claim of the paper"


def _literature_checks() -> tuple[Check, ...]:
    """L1 (Fort et al. 2020) and L2 (Baratin et al. 2021): how the after kernel
    moves, read from this study's Figures 17 and 19."""
    first = Side(1, quantity="kernel_distance_init", prefix="distance epoch 0 → 1")
    rest = Side(1, quantity="kernel_distance_final", prefix="distance epoch 1 → last")
    rise = "Kernel-target alignment{} of the after kernel is higher at the last epoch{{last}} than at epoch 0"
    return (
        Check("L1", "17", f"The after kernel moves more in the first epoch than in all later ones ({LITERATURE}: "
              "Fort et al. 2020)", "kernel_distance", ">", rest, first, _any),
        *(Check("L2", "19", rise.format(kind) + f" ({LITERATURE}: Baratin et al. 2021)", q, ">", Side(0),
                Side("max"), _any) for kind, q in (("", "target_alignment"),
                                                    (" (centred)", "target_alignment_centred"))),
    )


CHECKS = _checks()


# --------------------------------------------------------------------------
# statistics


def verdict(relation: str, ci_low: float, ci_high: float) -> str:
    """The verdict of an interval of b - a under an expected relation
    (:data:`RELATIONS`); ``inconclusive`` without an interval."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "inconclusive"
    reproduced, contradicted = RELATIONS[relation]
    if reproduced(ci_low, ci_high):
        return "reproduced"
    return "contradicted" if contradicted(ci_low, ci_high) else "inconclusive"


def _half_width(se: float, df: float) -> float:
    from scipy import stats

    # Identical values leave no uncertainty whatever df is (Welch's df is 0/0 then).
    return 0.0 if se == 0 else float(stats.t.ppf(0.5 + CONFIDENCE / 2, df) * se)


def _paired(a: pd.Series, b: pd.Series) -> tuple[float, float, float, float, float, int]:
    """Means, mean of b - a over the seeds both have, its t-interval, n."""
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    d = (both["b"] - both["a"]).to_numpy()
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    half = _half_width(float(d.std(ddof=1)) / math.sqrt(n), n - 1) if n >= 2 else math.nan
    return float(both["a"].mean()), float(both["b"].mean()), mean, mean - half, mean + half, n


def _welch(a: pd.Series, b: pd.Series) -> tuple[float, float, float, float, float, int]:
    """Means, mean_b - mean_a, its Welch-Satterthwaite interval, smaller n."""
    a, b = a.dropna().to_numpy(), b.dropna().to_numpy()
    mean_a, mean_b = (float(x.mean()) if len(x) else math.nan for x in (a, b))
    n, diff, half = min(len(a), len(b)), mean_b - mean_a, math.nan
    if n >= 2:
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va + vb > 0 else math.nan
        half = _half_width(math.sqrt(va + vb), df)
    return mean_a, mean_b, diff, diff - half, diff + half, n


# --------------------------------------------------------------------------
# conditions


def _levels(data: pd.DataFrame, check: Check, side: Side) -> list:
    """The epochs (epochs study) or learning rates of ``side``'s runs."""
    rows = data[data["augmentation"] == side.augmentation]
    return sorted(rows[_LEVEL[check.study]].dropna().unique().tolist())


def _resolve(at: int | str, levels: list) -> int | float | tuple | None:
    """The level(s) ``at`` names among ``levels`` (None: absent)."""
    if not levels:
        return None
    return {"max": levels[-1], "min": levels[0], "all": tuple(levels)}.get(at, at if at in levels else None)


def _label(check: Check, side: Side, level) -> str:
    lr = check.study == "learning_rate"
    if level is None:
        text = {"max": "largest lr" if lr else "last epoch", "min": "smallest lr",
                "all": "min over epochs"}.get(side.at, f"epoch {side.at}")
    elif lr:
        text = f"lr {level:g}"
    elif isinstance(level, tuple):
        text = f"min over epochs {level[0]:g}-{level[-1]:g}"
    else:
        text = f"epoch {level:g}"
    return f"{side.prefix}, {text}" if side.prefix else text


def _values(rows: pd.DataFrame, level_col: str, quantity: str, kernel: str) -> pd.Series:
    """Finite per-seed values (index: seed); over several levels their
    minimum, missing when one level is."""
    if kernel == GAP:
        return (_values(rows, level_col, quantity, CONJUGATE) - _values(rows, level_col, quantity, AFTER)).dropna()
    rows = rows[(rows["kernel"] == kernel) & ~rows["diverged"]]
    table = rows.groupby(["seed", level_col])[quantity].mean().unstack(level_col)
    values = table.min(axis=1, skipna=False)
    return values[np.isfinite(values)]


def _condition(check: Check, side: Side, data: pd.DataFrame, level) -> tuple[pd.Series, str]:
    """Per-seed values of one condition and, in the learning-rate study,
    how many of its runs were excluded."""
    col = _LEVEL[check.study]
    rows = data[(data["augmentation"] == side.augmentation)
                & data[col].isin(level if isinstance(level, tuple) else (level,))]
    excluded = ""
    if check.study == "learning_rate":  # the study compares networks trained to the same loss
        reached = rows["reached_target"]
        excluded = f"lr {level:g}: {rows.loc[~reached, 'run'].nunique()} of {rows['run'].nunique()} runs"
        rows = rows[reached]
    return _values(rows, col, side.quantity or check.quantity, side.kernel), excluded


def _missing(check: Check, data: pd.DataFrame, pair: tuple[str, str], levels: dict) -> str:
    """Why the config cannot test ``check`` on ``pair`` ('' if it can)."""
    study = check.study.replace("_", "-")
    if data.empty:
        return f"no {study}-study runs of ({pair[0]}, {pair[1]})"
    for side in (s for s in (check.a, check.b) if s is not None):
        if not _levels(data, check, side):
            kind = "augmented" if side.augmentation else "non-augmented"
            return f"no {kind} {study}-study runs of ({pair[0]}, {pair[1]})"
        if levels[side] is None:
            return f"epoch {side.at} is not among this config's epochs"
    if check.a is not None and check.a.at != check.b.at and levels[check.a] == levels[check.b]:
        if check.study == "learning_rate":
            return f"only one learning rate ({levels[check.a]:g}) in this config"
        return f"the last epoch of this config is epoch {levels[check.a]:g}"
    return ""


# --------------------------------------------------------------------------
# the table


def _quantity_label(check: Check) -> str:
    qa = (check.a.quantity if check.a else None) or check.quantity
    qb = check.b.quantity or check.quantity
    label = qb if qa == qb else f"{qb} vs {qa}"
    return f"{label} ({GAP})" if check.b.kernel == GAP else label


def _statement(check: Check, data: pd.DataFrame) -> str:
    levels = _levels(data, check, check.b) if len(data) else []
    lo, hi = (f" ({levels[i]:g})" if levels else "" for i in (0, -1))
    return check.statement.format(last=hi, lo=lo, hi=hi, delta=DELTA, threshold=ALIGNMENT_THRESHOLD)


def _evaluate(check: Check, data: pd.DataFrame, pair: tuple[str, str]) -> dict:
    """The claims-table row of ``check`` on ``pair`` (``data``: that pair's
    rows of the check's study)."""
    levels = {s: _resolve(s.at, _levels(data, check, s)) for s in (check.a, check.b) if s is not None}
    row = dict(claim=check.claim, statement=_statement(check, data), figure=check.figure, problem=pair[0],
               architecture=pair[1], quantity=_quantity_label(check),
               condition_a=(_label(check, check.a, levels[check.a]) if check.a
                            else f"threshold {ALIGNMENT_THRESHOLD:g}"),
               condition_b=_label(check, check.b, levels[check.b]), relation=check.relation,
               paired=check.study == "epochs" and (check.a is None or check.a.augmentation == check.b.augmentation))
    missing = _missing(check, data, pair, levels)
    if missing:
        return {**row, **dict.fromkeys(("mean_a", "mean_b", "difference", "ci_low", "ci_high"), math.nan),
                "n_seeds": 0, "verdict": "not in this config", "note": missing}
    b, excluded_b = _condition(check, check.b, data, levels[check.b])
    a, excluded_a = (_condition(check, check.a, data, levels[check.a]) if check.a
                     else (pd.Series(ALIGNMENT_THRESHOLD, index=b.index), ""))
    stats = (_paired if row["paired"] else _welch)(a, b)
    if check.a is None:  # the threshold itself, not a float mean of copies of it
        stats = (ALIGNMENT_THRESHOLD, *stats[1:])
    notes = []
    if excluded_a or excluded_b:
        notes.append(f"excluded for not reaching the loss target: {excluded_a}, {excluded_b}")
    if stats[-1] < 2:
        what = "seeds with values in both conditions" if row["paired"] else "runs per side"
        notes.append(f"fewer than 2 {what} (n = {stats[-1]}): no interval")
    keys = ("mean_a", "mean_b", "difference", "ci_low", "ci_high", "n_seeds")
    return {**row, **dict(zip(keys, stats)), "verdict": verdict(check.relation, *stats[3:5]),
            "note": "; ".join(notes)}


def _pairs(check: Check, study: pd.DataFrame) -> list[tuple[str, str]]:
    """The paper's pairs the claim applies to, and those of the metrics."""
    paper = [p for p in PAPER_PAIRS + ((MEGA,) if check.mega else ()) if check.applies(*p)]
    present = study[["problem", "architecture"]].drop_duplicates().itertuples(index=False, name=None)
    return sorted(set(paper) | {p for p in present if check.applies(*p)})


def claims_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Every claim of :data:`CHECKS` on every pair it applies to (columns
    :data:`CLAIMS_COLUMNS`), sorted by claim number, problem, architecture."""
    df = coerce_metrics(metrics)
    # a narrow frame of plain dtypes: the many small selections below stay fast
    quantities = sorted({s.quantity or c.quantity for c in CHECKS for s in (c.a, c.b) if s is not None})
    df = df[["study", "run", "problem", "architecture", "augmentation", "learning_rate", "seed", "epoch",
             "kernel"] + quantities].assign(
        epoch=df["epoch"].astype(float), diverged=df["diverged"].fillna(False).astype(bool),
        reached_target=df["reached_target"].fillna(False).astype(bool)).copy()  # copy: consolidated blocks
    rows = []
    for check in CHECKS:
        study = df[df["study"] == check.study]
        for pair in _pairs(check, study):
            data = study[(study["problem"] == pair[0]) & (study["architecture"] == pair[1])]
            rows.append(_evaluate(check, data, pair))
    out = pd.DataFrame(rows, columns=CLAIMS_COLUMNS).astype({"n_seeds": "int64", "paired": bool})
    # the paper's claims (C) before the literature's (L), each by number (C10 after C9);
    # ties keep the order of CHECKS
    out["_k"], out["_n"], out["_i"] = out["claim"].str[0] != "C", out["claim"].str[1:].astype(int), range(len(out))
    return out.sort_values(["_k", "_n", "problem", "architecture", "_i"])[CLAIMS_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------
# reading and writing


def read_claims(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``claims.csv`` back with the dtypes of :func:`claims_table`."""
    text = [c for c in CLAIMS_COLUMNS if c not in ("mean_a", "mean_b", "difference", "ci_low", "ci_high",
                                                   "n_seeds", "paired")]
    df = pd.read_csv(path, dtype=dict.fromkeys(text, object), keep_default_na=False, na_values={
        c: [""] for c in ("mean_a", "mean_b", "difference", "ci_low", "ci_high")})
    return df.astype({"n_seeds": "int64", "paired": bool})[CLAIMS_COLUMNS]


def _number(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:+.3g}".replace("-", "−")


def claims_markdown(claims: pd.DataFrame, measured_only: bool = False) -> str:
    """A compact Markdown table of :func:`claims_table`'s rows after a line
    counting the verdicts; conditions read "b (expected relation) a".
    ``measured_only``: leave out the ``not in this config`` rows (counted)."""
    counts = claims["verdict"].value_counts()
    lines = ["Verdicts: " + ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS) + f" (δ = {DELTA:g}).",
             "", "| claim | pair | quantity | conditions (b vs a) | b − a [95 % CI] | n | verdict |",
             "|---|---|---|---|---|---|---|"]
    shown = claims[claims["verdict"] != VERDICTS[-1]] if measured_only else claims
    for r in shown.itertuples(index=False):
        symbols = _SYMBOLS.get(r.relation, "{b} vs {a}")
        diff = _number(r.difference)
        if math.isfinite(r.ci_low):
            diff += f" [{_number(r.ci_low)}, {_number(r.ci_high)}]"
        source = "" if r.claim.startswith("C") else "; literature, not the paper"
        lines.append(f"| {r.claim} (fig. {r.figure}{source}) | {r.problem} / {r.architecture} | {r.quantity} | "
                     f"{symbols.format(a=r.condition_a, b=r.condition_b)} | {diff} | {r.n_seeds} | {r.verdict} |")
    return "\n".join(lines) + "\n"


def write_claims(metrics: str | os.PathLike, claims: str | os.PathLike,
                 markdown: str | os.PathLike) -> pd.DataFrame:
    """The claims job: check the claims on the metrics table ``metrics``
    (CSV), write the claims table as CSV to ``claims`` and as Markdown to
    ``markdown`` (atomically); return it."""
    table = claims_table(read_metrics(metrics))
    counts = table["verdict"].value_counts()
    for v in VERDICTS:
        log.info("%s: %d of %d claim rows", v, int(counts.get(v, 0)), len(table))
    atomic_write_text(claims, to_csv(table))
    atomic_write_text(markdown, claims_markdown(table))
    log.info("wrote %s and %s", claims, markdown)
    return table
