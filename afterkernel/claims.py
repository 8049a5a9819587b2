"""What this run reproduces: the paper's claims checked on the run's own numbers.

Long, "Properties of the after kernel", draws qualitative claims from
Figures 1-10, 13 and 16. :func:`claims_table` tests each one on the tidy
metrics table (:mod:`afterkernel.aggregate`), one row per claim and
(problem, architecture) pair, columns :data:`CLAIMS_COLUMNS`.

Scope. Every interval is over training seeds only: the test set, the
subset of the data and the metric test sample are fixed, so a verdict says
what holds across seeds of this run on these images, not on new data.

- ``difference`` is b - a. ``paired`` rows compare two conditions of the same
  training runs (epoch 0 and the last epoch of one run): mean of the per-seed
  differences with a one-sample t-interval. Other rows compare different runs
  (augmented vs plain, two learning rates, two networks): ``mean_b - mean_a``
  with a Welch-Satterthwaite interval.
- Directional relations (``<``, ``>``) use the two-sided 95 % interval;
  equivalence relations (``within``, ``not greater``) the 90 % interval of
  two one-sided tests (TOST) against a relative margin
  (:data:`RELATIVE_MARGIN` of the error for test errors, of the distance to 1
  for invariance cosines), given in ``margin``.
- A test error's per-seed spread is floored at the test set's binomial error
  sqrt(p (1 - p) / n_test), one seed's measurement error: errors sit on a
  1 / n_test grid, and seeds that agree to the image do not make a difference
  certain (the SE of a mean over n seeds is then at least that / sqrt(n)).
  Any other row whose seeds agree exactly has no interval (``inconclusive``).
- A claim on the last epoch needs a trained network there: every seed's
  training loss at most :data:`TRAINED_LOSS` (else ``not in this config``,
  ``note`` says so); C3 compares at the first epoch where that holds.
- ``p_value`` is the p-value of the claim (two-sided-equivalent for
  directional relations, the larger TOST p for equivalence); ``verdict_holm``
  is the verdict after Holm's adjustment over every row tested.

Rows ``L1``, ``L2`` are findings of the literature the paper builds on, not
claims of the paper, checked the same way. The paper's own pairs always get a
row (``not in this config`` when absent, ``note`` says why); diverged runs and
NaN values are missing values.
"""

from __future__ import annotations

import html
import logging
import math
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from afterkernel.aggregate import coerce_metrics, read_metrics, to_csv
from afterkernel.io import atomic_write_text
from afterkernel.vocabulary import AFTER, CONJUGATE

log = logging.getLogger(__name__)

CLAIMS_COLUMNS = ["claim", "statement", "figure", "problem", "architecture", "quantity", "condition_a",
                  "condition_b", "relation", "mean_a", "mean_b", "difference", "ci_low", "ci_high", "confidence",
                  "margin", "n_seeds", "paired", "p_value", "verdict", "verdict_holm", "note"]
_FLOATS = ("mean_a", "mean_b", "difference", "ci_low", "ci_high", "confidence", "margin", "p_value")

VERDICTS = ("reproduced", "contradicted", "inconclusive", "not in this config")
ALPHA = 0.05  # two-sided 95 % intervals for directions, 90 % (TOST at 5 %) for equivalence
RELATIVE_MARGIN = 0.25  # "equal" / "not greater": within 25 % of the error (of 1 - cosine for invariances)
TRAINED_LOSS = 0.3  # C3 compares where every seed's network has trained this far (untrained: log 2 = 0.69)
GAP = "conjugate - after"  # kernel of a per-run difference of the two kernels' values
ERRORS = ("svm_test_error", "nn_test_error")
COSINES = ("translation", "rotation", "zoom", "swap")

DIRECTIONAL = ("<", ">")
EQUIVALENCE = ("within", "not greater")
_SYMBOLS = {"<": "{b} < {a}", ">": "{b} > {a}", "not greater": "{b} ≤ {a} + margin",
            "within": "{b} = {a} ± margin"}

CIFAR = "cifar10-cat-dog"
MEGA = ("mnist-3v8", "mega-vgg")
PAPER_PAIRS = (("mnist-3v8", "vgg"), ("mnist-5v6", "vgg"), ("mnist-3v8", "fc"), ("mnist-5v6", "fc"), (CIFAR, "vgg"))
_LEVEL = {"epochs": "epoch", "learning_rate": "learning_rate"}  # what a condition's `at` indexes


@dataclass(frozen=True)
class Side:
    """One condition: ``at`` an epoch (int), ``"max"``/``"min"`` (the
    largest/smallest epoch or learning rate of the pair) or ``"trained"``
    (the first epoch at which every seed's training loss is at most
    :data:`TRAINED_LOSS`). ``drop``: the per-seed value at epoch 0 minus at
    ``at``. ``architecture``: another network's runs on the same problem."""

    at: int | str
    kernel: str = AFTER
    augmentation: bool = False
    quantity: str | None = None  # instead of the claim's (C3 compares two quantities)
    prefix: str = ""
    architecture: str | None = None
    drop: bool = False


@dataclass(frozen=True)
class Check:
    """One row per applicable pair: b ``relation`` a."""

    claim: str
    figure: str
    statement: str  # format fields: last, lo, hi (" (10)" or ""), margin, loss
    quantity: str
    relation: str
    a: Side
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
    c9 = {q: (f"Data augmentation does not raise {q} invariance (by more than {{margin}} of 1 - cosine)",
              "not greater", "8") for q in inv}
    c9.update(svm_test_error=("Data augmentation lowers the after-kernel SVM test error", "<", "16"),
              nn_test_error=("Data augmentation lowers the network's test error", "<", "16"))
    c10 = "The largest learning rate{{hi}} gives {} than the smallest{{lo}} (runs that reached the loss target)"
    drop = "The alignment of the after kernel and its conjugate projection falls more from epoch 0 to the last " \
           "epoch for the fully connected net than for the VGG-like net on the same problem"
    return (
        Check("C1", "1a", fntk, "svm_test_error", "<", e0, last, _fc_mnist),
        Check("C2", "1b", fntk, "svm_test_error", "<", e0, last, _cifar_vgg),
        Check("C3", "2-3", "Once the network has trained (training loss ≤ {loss}), the after-kernel SVM has a "
              "lower test error than the network", "svm_test_error", "<",
              Side("trained", quantity="nn_test_error", prefix="network"),
              Side("trained", prefix="SVM (after kernel)"), _any),
        Check("C3", "2", "At the last epoch{last} the network has caught up: its test error is not above the "
              "after-kernel SVM's by more than {margin}", "nn_test_error", "not greater",
              Side("max", quantity="svm_test_error", prefix="SVM (after kernel)"), Side("max", prefix="network"),
              _any),
        Check("C4", "4a, 4c, 4d", "Swap invariance of the after kernel is lower at the last epoch{last} than at "
              "epoch 0", "swap", "<", e0, last, lambda p, a: a in ("vgg", "mega-vgg"), mega=True),
        Check("C5", "4b", c5.format("rises from epoch 0 to epoch 1"), "swap", ">", e0, e1, _fc_mnist),
        Check("C5", "4b", c5.format("falls from epoch 1 to the last epoch{last}"), "swap", "<", e1, last,
              _fc_mnist),
        Check("C5", "4b", c5.format("ends above its epoch-0 value (last epoch{last})"), "swap", ">", e0, last,
              _fc_mnist),
        *(Check("C6", "5", f"{q.capitalize()} invariance of the after kernel rises from epoch 0 to epoch 1", q,
                ">", e0, e1, _any) for q in inv),
        Check("C7", "6a, 6b", drop, "alignment", ">", Side("max", prefix="vgg", architecture="vgg", drop=True),
              Side("max", prefix="fc", drop=True), _fc_mnist),
        Check("C7", "6b, 6c", "The alignment of the after kernel and its conjugate projection is lower at the "
              "last epoch{last} than at epoch 0", "alignment", "<", e0, last,
              lambda p, a: _fc_mnist(p, a) or _cifar_vgg(p, a)),
        Check("C8", "7", c8.format("higher than"), "svm_test_error", ">", Side("max", prefix="after kernel"),
              Side("max", CONJUGATE, prefix="conjugate kernel"), lambda p, a: (p, a) == ("mnist-5v6", "vgg")),
        Check("C8", "7", c8.format("within {margin} of"), "svm_test_error", "within",
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
    first = Side(1, prefix="epoch 0 → 1")
    rest = Side("max", prefix="into the last snapshot")
    rise = "Kernel-target alignment{} of the after kernel is higher at the last epoch{{last}} than at epoch 0"
    return (
        Check("L1", "17", "The after kernel's velocity (angle per SGD step) decays: it is higher in the first "
              f"epoch than into the last epoch{{last}} ({LITERATURE}: Fort et al. 2020)", "kernel_velocity", ">",
              rest, first, _any),
        *(Check("L2", "19", rise.format(kind) + f" ({LITERATURE}: Baratin et al. 2021)", q, ">", Side(0),
                Side("max"), _any) for kind, q in (("", "target_alignment"),
                                                    (" (centred)", "target_alignment_centred"))),
    )


CHECKS = _checks()


# --------------------------------------------------------------------------
# statistics


@dataclass(frozen=True)
class Estimate:
    """b - a over seeds: the two means, the difference, its standard error
    (after the binomial floor) and degrees of freedom, the seeds used."""

    mean_a: float
    mean_b: float
    difference: float
    se: float
    df: float
    n: int


def _t():
    from scipy import stats

    return stats.t


def paired_estimate(a: pd.Series, b: pd.Series, floor: float = 0.0) -> Estimate:
    """Mean of b - a over the seeds (index) both have; the SE of that mean
    from the per-seed differences' SD, which is taken to be at least
    ``floor`` (one seed's measurement error)."""
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    d = (both["b"] - both["a"]).to_numpy(float)
    n = len(d)
    se = max(float(d.std(ddof=1)), floor) / math.sqrt(n) if n >= 2 else math.nan
    return Estimate(float(both["a"].mean()), float(both["b"].mean()), float(d.mean()) if n else math.nan,
                    se, n - 1.0, n)


def welch_estimate(a: pd.Series, b: pd.Series, floor: float = 0.0) -> Estimate:
    """mean_b - mean_a with the Welch-Satterthwaite SE and df, each group's
    SD taken to be at least ``floor``."""
    a, b = a.dropna().to_numpy(float), b.dropna().to_numpy(float)
    mean_a, mean_b = (float(x.mean()) if len(x) else math.nan for x in (a, b))
    n, se, df = min(len(a), len(b)), math.nan, math.nan
    if n >= 2:
        va, vb = (max(float(x.std(ddof=1)), floor) ** 2 / len(x) for x in (a, b))
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va + vb > 0 else n - 1.0
    return Estimate(mean_a, mean_b, mean_b - mean_a, se, df, n)


@dataclass(frozen=True)
class Test:
    ci_low: float
    ci_high: float
    confidence: float
    p_reproduced: float  # p-value of the claim (two-sided-equivalent for directions)
    p_contradicted: float  # p-value of its opposite
    verdict: str


def _no_test() -> Test:
    return Test(math.nan, math.nan, math.nan, math.nan, math.nan, "inconclusive")


def verdict(p_reproduced: float, p_contradicted: float, alpha: float = ALPHA) -> str:
    """``reproduced`` when the claim's p-value is at most ``alpha``,
    ``contradicted`` when its opposite's is, else ``inconclusive``."""
    if math.isfinite(p_reproduced) and p_reproduced <= alpha:
        return "reproduced"
    if math.isfinite(p_contradicted) and p_contradicted <= alpha:
        return "contradicted"
    return "inconclusive"


def test_relation(relation: str, est: Estimate, margin: float = math.nan) -> Test:
    """The interval and p-values of b - a under ``relation``: for ``<``, ``>``
    the two-sided 95 % interval and twice the one-sided p; for ``not
    greater`` (b - a < margin) and ``within`` (|b - a| < margin) the 90 %
    interval of two one-sided tests. Without a positive SE: no test."""
    if not (est.n >= 2 and math.isfinite(est.se) and est.se > 0 and math.isfinite(est.difference)):
        return _no_test()
    t, d, se, df = _t(), est.difference, est.se, est.df
    if relation in DIRECTIONAL:
        half = float(t.ppf(1 - ALPHA / 2, df)) * se
        below, above = float(t.cdf(d / se, df)), float(t.sf(d / se, df))  # evidence for d < 0, d > 0
        p_rep, p_con = (below, above) if relation == "<" else (above, below)
        p_rep, p_con = min(1.0, 2 * p_rep), min(1.0, 2 * p_con)
        return Test(d - half, d + half, 1 - ALPHA, p_rep, p_con, verdict(p_rep, p_con))
    if not (math.isfinite(margin) and margin > 0):
        return _no_test()
    half = float(t.ppf(1 - ALPHA, df)) * se
    under_upper = float(t.cdf((d - margin) / se, df))  # evidence for d < margin
    over_upper = float(t.sf((d - margin) / se, df))  # evidence for d > margin
    if relation == "not greater":
        p_rep, p_con = under_upper, over_upper
    elif relation == "within":
        over_lower = float(t.sf((d + margin) / se, df))  # evidence for d > -margin
        under_lower = float(t.cdf((d + margin) / se, df))  # evidence for d < -margin
        p_rep, p_con = max(under_upper, over_lower), min(over_upper, under_lower)
    else:
        raise ValueError(f"unknown relation {relation!r}")
    return Test(d - half, d + half, 1 - 2 * ALPHA, p_rep, p_con, verdict(p_rep, p_con))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted)."""
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m = len(order)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def binomial_se(error: float, n_test: float) -> float:
    """sqrt(p (1 - p) / n): the resolution of an error rate on n test images
    (at least one image's worth: an error of 0 is not exact either)."""
    if not (math.isfinite(error) and math.isfinite(n_test) and n_test > 0):
        return 0.0
    p = min(max(error, 1.0 / n_test), 1 - 1.0 / n_test)
    return math.sqrt(p * (1 - p) / n_test)


def relative_margin(quantity: str, mean_a: float) -> float:
    """The equivalence margin: :data:`RELATIVE_MARGIN` of a test error, of
    1 - cosine for an invariance."""
    if quantity in COSINES:
        return RELATIVE_MARGIN * (1.0 - mean_a)
    return RELATIVE_MARGIN * mean_a


# --------------------------------------------------------------------------
# conditions


def _side_rows(check: Check, side: Side, data: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """The rows a side reads: the pair's, or another network's on the same problem."""
    rows = other[other["architecture"] == side.architecture] if side.architecture else data
    return rows[rows["augmentation"] == side.augmentation]


def _levels(check: Check, rows: pd.DataFrame) -> list:
    """The epochs (epochs study) or learning rates of ``rows``."""
    return sorted(rows[_LEVEL[check.study]].dropna().unique().tolist())


def _trained_epoch(rows: pd.DataFrame, levels: list):
    """The first epoch at which every seed's training loss is at most
    :data:`TRAINED_LOSS` (None if none is)."""
    loss = rows[(rows["kernel"] == AFTER) & ~rows["diverged"]].groupby(["epoch", "seed"])["train_loss"].mean()
    for epoch in levels:
        values = loss.get(epoch)
        if values is not None and len(values) and bool((values <= TRAINED_LOSS).all()):
            return epoch
    return None


def _resolve(at: int | str, levels: list, rows: pd.DataFrame) -> int | float | None:
    """The level ``at`` names among ``levels`` (None: absent)."""
    if not levels:
        return None
    if at == "trained":
        return _trained_epoch(rows, levels)
    return {"max": levels[-1], "min": levels[0]}.get(at, at if at in levels else None)


def _label(check: Check, side: Side, level) -> str:
    lr = check.study == "learning_rate"
    if level is None:
        text = {"max": "largest lr" if lr else "last epoch", "min": "smallest lr",
                "trained": f"first epoch with training loss ≤ {TRAINED_LOSS:g}"}.get(side.at, f"epoch {side.at}")
    elif lr:
        text = f"lr {level:g}"
    else:
        text = f"epoch {level:g}"
        if side.at == "trained":
            text += f" (first with training loss ≤ {TRAINED_LOSS:g} in every seed)"
    if side.drop:
        text = f"drop from epoch 0 to {text}"
    return f"{side.prefix}, {text}" if side.prefix else text


def _values(rows: pd.DataFrame, level_col: str, level, quantity: str, kernel: str) -> pd.Series:
    """Finite per-seed values at ``level`` (index: seed)."""
    if kernel == GAP:
        return (_values(rows, level_col, level, quantity, CONJUGATE)
                - _values(rows, level_col, level, quantity, AFTER)).dropna()
    rows = rows[(rows["kernel"] == kernel) & ~rows["diverged"] & (rows[level_col] == level)]
    values = rows.groupby("seed")[quantity].mean()
    return values[np.isfinite(values)]


def _condition(check: Check, side: Side, rows: pd.DataFrame, level) -> tuple[pd.Series, str]:
    """Per-seed values of one condition and, in the learning-rate study,
    how many of its runs were excluded."""
    col = _LEVEL[check.study]
    excluded = ""
    if check.study == "learning_rate":  # the study compares networks trained to the same loss
        at = rows[rows[col] == level]
        reached = at["reached_target"]
        excluded = f"lr {level:g}: {at.loc[~reached, 'run'].nunique()} of {at['run'].nunique()} runs"
        rows = rows[rows["reached_target"] | (rows[col] != level)]
    quantity = side.quantity or check.quantity
    values = _values(rows, col, level, quantity, side.kernel)
    if side.drop:
        values = (_values(rows, col, 0, quantity, side.kernel) - values).dropna()
    return values, excluded


def _untrained(check: Check, side: Side, rows: pd.DataFrame, level) -> str:
    """Why the last epoch of ``side`` says nothing of a trained network ('' if
    every seed's training loss there is at most :data:`TRAINED_LOSS`): the
    paper's claims on the last epoch are claims on trained networks."""
    if check.study != "epochs" or side.at != "max":
        return ""
    loss = rows[(rows["epoch"] == level) & (rows["kernel"] == AFTER) & ~rows["diverged"]]["train_loss"].dropna()
    if len(loss) and float(loss.max()) > TRAINED_LOSS:
        arch = side.architecture or str(rows["architecture"].iloc[0])
        return (f"the {arch} network has not trained by its last epoch ({level:g}): training loss up to "
                f"{float(loss.max()):.3g} > {TRAINED_LOSS:g}")
    return ""


def _missing(check: Check, pair: tuple[str, str], rows: dict[Side, pd.DataFrame], levels: dict) -> str:
    """Why the config cannot test ``check`` on ``pair`` ('' if it can)."""
    study = check.study.replace("_", "-")
    for side in (check.a, check.b):
        arch = side.architecture or pair[1]
        if not len(rows[side]):
            kind = ("augmented " if side.augmentation else "non-augmented ") if check.claim == "C9" else ""
            return f"no {kind}{study}-study runs of ({pair[0]}, {arch})"
        if side.drop and 0 not in _levels(check, rows[side]):
            return f"no epoch-0 snapshot of ({pair[0]}, {arch})"
        if levels[side] is None:
            if side.at == "trained":
                loss = rows[side].groupby("epoch")["train_loss"].max()
                return (f"no snapshot where every seed's training loss is ≤ {TRAINED_LOSS:g} (largest over seeds "
                        f"at the last epoch {loss.index[-1]:g}: {loss.iloc[-1]:.3g})")
            return f"epoch {side.at} is not among this config's epochs"
    same_runs = check.a.architecture == check.b.architecture and check.a.augmentation == check.b.augmentation
    if same_runs and check.a.at != check.b.at and levels[check.a] == levels[check.b]:
        if check.study == "learning_rate":
            return f"only one learning rate ({levels[check.a]:g}) in this config"
        return f"the last epoch of this config is epoch {levels[check.a]:g}"
    if check.b.drop and levels[check.b] == 0:
        return "the last epoch of this config is epoch 0"
    return next((u for u in (_untrained(check, s, rows[s], levels[s]) for s in (check.a, check.b)) if u), "")


# --------------------------------------------------------------------------
# the table


def _quantity_label(check: Check) -> str:
    qa = check.a.quantity or check.quantity
    qb = check.b.quantity or check.quantity
    label = qb if qa == qb else f"{qb} vs {qa}"
    if check.b.drop:
        label = f"{label} drop"
    return f"{label} ({GAP})" if check.b.kernel == GAP else label


def _statement(check: Check, rows: pd.DataFrame) -> str:
    levels = _levels(check, rows) if len(rows) else []
    lo, hi = (f" ({levels[i]:g})" if levels else "" for i in (0, -1))
    return check.statement.format(last=hi, lo=lo, hi=hi, margin=f"{RELATIVE_MARGIN:.0%}", loss=f"{TRAINED_LOSS:g}")


def _n_test(rows: pd.DataFrame) -> float:
    n = rows["n_test"].dropna() if "n_test" in rows else pd.Series(dtype=float)
    return float(n.min()) if len(n) else math.nan


def _images(*sides: pd.DataFrame) -> str:
    """The training and test images the compared runs used (a subset shows)."""
    sizes = []
    for rows in sides:
        if "n_train" in rows and rows["n_train"].notna().any():
            size = f"{rows['n_train'].max():,.0f} training / {rows['n_test'].max():,.0f} test images"
            if size not in sizes:
                sizes.append(size)
    return " vs ".join(sizes)


def _c7_note(check: Check, rows: dict[Side, pd.DataFrame]) -> str:
    """Beside C7's contrast: VGG's lowest alignment and the centred alignments' drops."""
    parts = []
    vgg = rows[check.a]
    kernel = vgg[(vgg["kernel"] == AFTER) & ~vgg["diverged"]]
    if len(kernel):
        lowest = kernel.groupby("seed")["alignment"].min().mean()
        parts.append(f"vgg's lowest alignment over its epochs: {lowest:.3f} (mean over seeds)")
    for side in (check.a, check.b):
        r = rows[side]
        r = r[(r["kernel"] == AFTER) & ~r["diverged"]]
        if "alignment_centred" in r and r["alignment_centred"].notna().any():
            by_epoch = r.groupby("epoch")["alignment_centred"].mean()
            parts.append(f"centred alignment {side.prefix}: {by_epoch.iloc[0]:.3f} → {by_epoch.iloc[-1]:.3f}")
    return "; ".join(parts)


def _evaluate(check: Check, data: pd.DataFrame, other: pd.DataFrame, pair: tuple[str, str]) -> dict:
    """The claims-table row of ``check`` on ``pair`` (``data``: that pair's
    rows of the check's study, ``other``: its problem's)."""
    rows = {s: _side_rows(check, s, data, other) for s in (check.a, check.b)}
    levels = {s: _resolve(s.at, _levels(check, rows[s]), rows[s]) for s in (check.a, check.b)}
    same_runs = check.a.architecture == check.b.architecture and check.a.augmentation == check.b.augmentation
    row = dict(claim=check.claim, statement=_statement(check, rows[check.b]), figure=check.figure, problem=pair[0],
               architecture=pair[1], quantity=_quantity_label(check),
               condition_a=_label(check, check.a, levels[check.a]),
               condition_b=_label(check, check.b, levels[check.b]), relation=check.relation,
               paired=check.study == "epochs" and same_runs)
    missing = _missing(check, pair, rows, levels)
    if missing:
        return {**row, **dict.fromkeys(_FLOATS, math.nan), "n_seeds": 0, "verdict": "not in this config",
                "verdict_holm": "not in this config", "note": missing}
    a, excluded_a = _condition(check, check.a, rows[check.a], levels[check.a])
    b, excluded_b = _condition(check, check.b, rows[check.b], levels[check.b])
    errors = {check.a.quantity or check.quantity, check.b.quantity or check.quantity} <= set(ERRORS)
    floor = 0.0
    if errors:
        n_test = _n_test(pd.concat([rows[check.a], rows[check.b]]))
        # a gap row's values are differences: the resolution is that of the after kernel's errors
        level_errors = (a.mean() + b.mean()) / 2 if check.b.kernel != GAP else _values(
            rows[check.b], _LEVEL[check.study], levels[check.b], check.quantity, AFTER).mean()
        floor = binomial_se(level_errors, n_test)
    est = (paired_estimate if row["paired"] else welch_estimate)(a, b, floor)
    margin = relative_margin(check.a.quantity or check.quantity, est.mean_a) if check.relation in EQUIVALENCE \
        else math.nan
    test = test_relation(check.relation, est, margin)
    notes = []
    if excluded_a or excluded_b:
        notes.append(f"excluded for not reaching the loss target: {excluded_a}, {excluded_b}")
    if est.n < 2:
        what = "seeds with values in both conditions" if row["paired"] else "runs per side"
        notes.append(f"fewer than 2 {what} (n = {est.n}): no interval")
    elif not math.isfinite(test.ci_low):
        notes.append("every seed gives the same value: no interval")
    if errors and est.n >= 2 and floor > 0 and _floored(a, b, row["paired"], floor):
        notes.append(f"spread floored at the binomial error of {_n_test(rows[check.b]):.0f} test images")
    if check.claim == "C7" and check.a.architecture:
        notes.append(_c7_note(check, rows))
    notes.append(_images(rows[check.a], rows[check.b]))
    return {**row, "mean_a": est.mean_a, "mean_b": est.mean_b, "difference": est.difference,
            "ci_low": test.ci_low, "ci_high": test.ci_high, "confidence": test.confidence, "margin": margin,
            "n_seeds": est.n, "p_value": test.p_reproduced, "verdict": test.verdict,
            "_p_contradicted": test.p_contradicted, "note": "; ".join(n for n in notes if n)}


def _floored(a: pd.Series, b: pd.Series, paired: bool, floor: float) -> bool:
    """Whether the binomial floor replaced a per-seed spread."""
    if paired:
        return bool((b - a).dropna().std(ddof=1) < floor)
    return any(x.dropna().std(ddof=1) < floor for x in (a, b))


def _pairs(check: Check, study: pd.DataFrame) -> list[tuple[str, str]]:
    """The paper's pairs the claim applies to, and those of the metrics."""
    paper = [p for p in PAPER_PAIRS + ((MEGA,) if check.mega else ()) if check.applies(*p)]
    present = study[["problem", "architecture"]].drop_duplicates().itertuples(index=False, name=None)
    return sorted(set(paper) | {p for p in present if check.applies(*p)})


def _holm_verdicts(out: pd.DataFrame) -> pd.Series:
    """Each tested row's verdict after Holm's adjustment over the tested rows."""
    tested = out["verdict"] != VERDICTS[-1]
    p_rep, p_con = holm(out["p_value"].where(tested)), holm(out["_p_contradicted"].where(tested))
    holm_v = [verdict(r, c) for r, c in zip(p_rep, p_con)]
    return pd.Series(holm_v, index=out.index).where(tested, out["verdict"])


def claims_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Every claim of :data:`CHECKS` on every pair it applies to (columns
    :data:`CLAIMS_COLUMNS`), sorted by claim number, then the config's own
    pairs before the paper's absent ones, problem, architecture."""
    df = coerce_metrics(metrics)
    # a narrow frame of plain dtypes: the many small selections below stay fast
    quantities = sorted({s.quantity or c.quantity for c in CHECKS for s in (c.a, c.b)}
                        | {"train_loss", "alignment_centred", "n_test"})
    quantities = [q for q in quantities if q in df]
    df = df[["study", "run", "problem", "architecture", "augmentation", "learning_rate", "seed", "epoch",
             "kernel"] + quantities].assign(
        epoch=df["epoch"].astype(float), diverged=df["diverged"].fillna(False).astype(bool),
        reached_target=df["reached_target"].fillna(False).astype(bool)).copy()  # copy: consolidated blocks
    rows = []
    for check in CHECKS:
        study = df[df["study"] == check.study]
        for pair in _pairs(check, study):
            other = study[study["problem"] == pair[0]]
            rows.append(_evaluate(check, other[other["architecture"] == pair[1]], other, pair))
    out = pd.DataFrame(rows, columns=CLAIMS_COLUMNS + ["_p_contradicted"])
    out["verdict_holm"] = _holm_verdicts(out)
    out = out.astype({"n_seeds": "int64", "paired": bool})
    # the paper's claims (C) before the literature's (L), each by number (C10 after C9);
    # the config's pairs before absent ones; ties keep the order of CHECKS
    out["_k"], out["_n"], out["_i"] = out["claim"].str[0] != "C", out["claim"].str[1:].astype(int), range(len(out))
    out["_absent"] = out["verdict"] == VERDICTS[-1]
    keys = ["_k", "_n", "_absent", "problem", "architecture", "_i"]
    return out.sort_values(keys)[CLAIMS_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------
# reading and writing


def read_claims(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``claims.csv`` back with the dtypes of :func:`claims_table`."""
    text = [c for c in CLAIMS_COLUMNS if c not in _FLOATS + ("n_seeds", "paired")]
    df = pd.read_csv(path, dtype=dict.fromkeys(text, object), keep_default_na=False,
                     na_values={c: [""] for c in _FLOATS})
    return df.astype({"n_seeds": "int64", "paired": bool})[CLAIMS_COLUMNS]


def _number(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:+.3g}".replace("-", "−")


def scope(claims: pd.DataFrame) -> str:
    """What the verdicts cover: one line above every rendering of the table."""
    tested = claims[claims["p_value"].notna()]
    seeds = sorted(set(tested["n_seeds"])) if len(tested) else [0]
    n = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    return (f"Scope: intervals over training seeds only ({n} per row); the test set, the data subset and the "
            f"metric test sample are fixed. Directions: 95 % t-intervals; \"equal\" and \"not greater\": 90 % "
            f"intervals (TOST) against a {RELATIVE_MARGIN:.0%} relative margin; a test error's per-seed spread "
            f"is floored at the binomial error of the test set. {len(tested)} rows tested: the Holm column adjusts "
            f"for all of them.")


def _counts(claims: pd.DataFrame, column: str) -> str:
    counts = claims[column].value_counts()
    return ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS)


def _conditions(r) -> str:
    return _SYMBOLS.get(r.relation, "{b} vs {a}").format(a=r.condition_a, b=r.condition_b)


def _difference(r) -> str:
    diff = _number(r.difference)
    if math.isfinite(r.ci_low):
        diff += f" [{_number(r.ci_low)}, {_number(r.ci_high)}]"
    if math.isfinite(r.margin):
        diff += f" (margin {r.margin:.3g})"
    return diff


def _absent_lines(claims: pd.DataFrame) -> list[str]:
    """One line per claim for the rows this config has no data for."""
    absent = claims[claims["verdict"] == VERDICTS[-1]]
    out = []
    for claim, group in absent.groupby("claim", sort=False):
        pairs = sorted(set(zip(group["problem"], group["architecture"])))
        out.append(f"- {claim}: " + ", ".join(f"{p} / {a}" for p, a in pairs))
    return out


def claims_markdown(claims: pd.DataFrame) -> str:
    """A compact Markdown rendering: the scope, the verdict counts, one table
    row per tested claim row ("b (expected relation) a", b − a with its
    interval), then one line per claim for the pairs this config lacks."""
    lines = [scope(claims), "",
             f"Verdicts: {_counts(claims, 'verdict')}; after Holm: {_counts(claims, 'verdict_holm')}.", "",
             "| claim | pair | quantity | conditions (b vs a) | b − a [CI] | n | verdict | Holm |",
             "|---|---|---|---|---|---|---|---|"]
    for r in claims[claims["verdict"] != VERDICTS[-1]].itertuples(index=False):
        source = "" if r.claim.startswith("C") else "; literature, not the paper"
        lines.append(f"| {r.claim} (fig. {r.figure}{source}) | {r.problem} / {r.architecture} | {r.quantity} | "
                     f"{_conditions(r)} | {_difference(r)} | {r.n_seeds} | {r.verdict} | {r.verdict_holm} |")
    absent = _absent_lines(claims)
    if absent:
        lines += ["", "Not in this config (no runs of these pairs or epochs; `claims.csv` says why):", *absent]
    return "\n".join(lines) + "\n"


def claims_headline(claims: pd.DataFrame) -> str:
    """One Markdown line per claim statement with the verdict of each of its
    tested rows by pair; then the verdict counts first."""
    tested = claims[claims["verdict"] != VERDICTS[-1]]
    lines = []
    for (claim, statement), group in tested.groupby(["claim", "statement"], sort=False):
        several = group["quantity"].nunique() > 1
        verdicts = "; ".join(f"{r.problem} / {r.architecture}{' (' + r.quantity + ')' if several else ''}: "
                             f"**{r.verdict}**" for r in group.itertuples(index=False))
        source = "" if claim.startswith("C") else " (literature)"
        lines.append(f"- **{claim}**{source}: {statement}. {verdicts}")
    counts = f"Verdicts: {_counts(claims, 'verdict')}; after Holm: {_counts(claims, 'verdict_holm')}."
    return "\n".join([counts, "", *lines]) + "\n"


_COLOURS = {"reproduced": "#d4edda", "contradicted": "#f8d7da", "inconclusive": "#fff3cd",
            "not in this config": "#e9ecef"}


def claims_html(claims: pd.DataFrame) -> str:
    """A standalone HTML page of the claims table (verdicts coloured, the
    scope line above it): the report's first entry."""
    e = html.escape
    head = ["claim", "statement", "pair", "conditions (b vs a)", "b − a [CI]", "n", "verdict", "Holm", "note"]
    body = []
    for r in claims[claims["verdict"] != VERDICTS[-1]].itertuples(index=False):
        cells = [f"{r.claim} (fig. {r.figure})", r.statement, f"{r.problem} / {r.architecture}",
                 _conditions(r), _difference(r), str(r.n_seeds)]
        tds = "".join(f"<td>{e(c)}</td>" for c in cells)
        for v in (r.verdict, r.verdict_holm):
            tds += f'<td style="background:{_COLOURS[v]}"><b>{e(v)}</b></td>'
        body.append(f"<tr>{tds}<td class='note'>{e(r.note)}</td></tr>")
    absent = "".join(f"<li>{e(line[2:])}</li>" for line in _absent_lines(claims))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>What this run reproduces</title><style>"
        "body{font-family:sans-serif;font-size:13px;margin:12px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}th{background:#f3f3f3}"
        ".note{color:#555;font-size:11px}</style></head><body>"
        f"<h2>What this run reproduces</h2><p>{e(scope(claims))}</p>"
        f"<p>Verdicts: {e(_counts(claims, 'verdict'))}; after Holm: {e(_counts(claims, 'verdict_holm'))}.</p>"
        "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>" + "".join(body) + "</table>"
        + (f"<p>Not in this config:</p><ul>{absent}</ul>" if absent else "") + "</body></html>\n")


def write_claims(metrics: str | os.PathLike, claims: str | os.PathLike, markdown: str | os.PathLike,
                 html_page: str | os.PathLike | None = None) -> pd.DataFrame:
    """The claims job: check the claims on the metrics table ``metrics``
    (CSV), write the claims table as CSV to ``claims``, as Markdown to
    ``markdown`` and as an HTML page to ``html_page`` (atomically); return it."""
    table = claims_table(read_metrics(metrics))
    counts = table["verdict"].value_counts()
    for v in VERDICTS:
        log.info("%s: %d of %d claim rows", v, int(counts.get(v, 0)), len(table))
    atomic_write_text(claims, to_csv(table))
    atomic_write_text(markdown, claims_markdown(table))
    if html_page is not None:
        atomic_write_text(html_page, claims_html(table))
    log.info("wrote %s and %s", claims, markdown)
    return table
