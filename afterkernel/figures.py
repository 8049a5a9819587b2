"""Figures 1-16 of the paper, drawn from the summary table.

Every figure is a :class:`FigureSpec` in :data:`FIGURES` (``"fig01"`` ...
``"fig16"``), holding what the README figure index and the report captions
need (file stem, title, caption, study, report category, rule name) and how
to draw it: the x quantity (epochs, learning rate or number of parameters),
the y label and a function that lists the panels, each a list of
:class:`Curve` (one quantity of the summary, restricted to one problem,
architecture, augmentation and kernel). The panels follow the paper's
captions and ``notes/figures.md`` panel by panel.

Drawing (:func:`render`) reads only the summary table
(:func:`afterkernel.aggregate.summary_table`, long format): each curve is the
mean over seeds; vs epochs a line with a shaded band, vs learning rate or
number of parameters a line with error bars, band and bars being the 95 %
t-interval of the mean (absent with fewer than two seeds). Learning-rate
axes are logarithmic. Colours, line styles and markers each encode one
variable of the panel (e.g. colour = invariance, dashes = augmentation,
markers = problem) and the legend lists each variable's levels once. A panel
with no rows in the summary says "not in this config" instead of failing;
one whose rows hold no finite value (every run diverged) says so.

The figures use matplotlib's Agg canvas directly (no pyplot state), a fixed
SVG hash salt and no dates in the files, so the same summary gives the same
bytes. matplotlib and seaborn are imported inside the drawing functions: the
registry is cheap to import from the Snakefile.

Problems and architectures are those of the paper's figures: MNIST problems
are every ``mnist-*`` problem of the study (the paper's 3-vs-8 and 5-vs-6),
``cifar10-cat-dog``; architectures ``vgg``, ``fc``, ``mega-vgg`` (the
config's names). Other pairs of a config appear in the tables only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from afterkernel.aggregate import NO_KERNEL, read_summary

log = logging.getLogger(__name__)

MNIST_DEFAULT = ("mnist-3v8", "mnist-5v6")
CIFAR = "cifar10-cat-dog"
VGG, FC, MEGA = "vgg", "fc", "mega-vgg"
FIVE_PAIRS = ((MNIST_DEFAULT[0], VGG), (MNIST_DEFAULT[1], VGG), (MNIST_DEFAULT[0], FC),
              (MNIST_DEFAULT[1], FC), (CIFAR, VGG))
INVARIANCES = ("translation", "zoom", "rotation")
EARLY_EPOCHS = 10  # Figure 3: epochs <= this

ARCH_LABELS = {VGG: "VGG-like", FC: "fully connected", MEGA: "mega-VGG-like"}
AUG_LABELS = {False: "no augmentation", True: "augmentation"}
KERNEL_LABELS = {"after": "after kernel", "conjugate": "conjugate kernel"}
QUANTITY_LABELS = {"svm_test_error": "SVM (after kernel)", "nn_test_error": "neural network"}
STUDY_NAMES = {"epochs": "epochs study", "learning_rate": "learning-rate study", "width": "width study"}
X_LABELS = {"epoch": "Kernel training epochs", "learning_rate": "Learning rate",
            "n_params": "Number of parameters"}
NOT_IN_CONFIG = "not in this config"
NO_FINITE = "no finite values\n(all runs diverged)"


def problem_label(problem: str, short: bool = False) -> str:
    """``mnist-3v8`` -> ``MNIST 3-vs-8`` (short: ``3-vs-8``);
    ``cifar10-cat-dog`` -> ``CIFAR-10 cats-vs-dogs``."""
    dataset, _, rest = problem.partition("-")
    if dataset == "mnist" and "v" in rest:
        a, b = rest.split("v", 1)
        pair = f"{a}-vs-{b}"
        return pair if short else f"MNIST {pair}"
    if dataset == "cifar10" and rest:
        if rest == "cat-dog":
            return "CIFAR-10 cats-vs-dogs"
        a, _, b = rest.partition("v") if "-" not in rest else rest.partition("-")
        return f"CIFAR-10 {a}-vs-{b}"
    return problem


def arch_label(arch: str) -> str:
    return ARCH_LABELS.get(arch, arch)


def epochs_label(e: float) -> str:
    e = int(e)
    return f"{e} epoch" if e == 1 else f"{e} epochs"


# --------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class Curve:
    """One line: the ``quantity`` rows of the summary matching ``where``
    (summary key -> value). ``hue``, ``dash`` and ``marker`` are the levels
    of the variables that colour, line style and marker encode."""

    quantity: str
    where: tuple[tuple[str, Any], ...]
    hue: str
    dash: str | None = None
    marker: str | None = None


def curve(quantity: str, hue: str, dash: str | None = None, marker: str | None = None, **where: Any) -> Curve:
    return Curve(quantity, tuple(sorted(where.items())), hue, dash, marker)


@dataclass(frozen=True)
class Panel:
    title: str
    curves: tuple[Curve, ...]
    ylabel: str | None = None


@dataclass(frozen=True)
class FigureSpec:
    fig: str  # registry id, "fig01"
    number: int
    stem: str  # file stem under results/figures/
    title: str
    caption: str
    study: str  # the study whose rows it draws (epochs, learning_rate, width)
    category: str  # report category
    x: str  # "epoch" | "learning_rate" | "n_params"
    ylabel: str
    panels: Callable[[pd.DataFrame], list[Panel]] = field(repr=False)
    max_epoch: float | None = None

    @property
    def rule(self) -> str:
        return f"figure_{self.fig}"

    @property
    def files(self) -> tuple[str, str]:
        return (f"results/figures/{self.stem}.png", f"results/figures/{self.stem}.svg")


def _mnist(summary: pd.DataFrame, study: str) -> list[str]:
    """The MNIST problems of ``study`` in the summary (the paper's two when
    there are none, so that empty panels still name them)."""
    found = sorted(p for p in summary.loc[summary["study"] == study, "problem"].dropna().unique()
                   if str(p).startswith("mnist-"))
    return found or list(MNIST_DEFAULT)


def _letter(i: int) -> str:
    return f"({chr(ord('a') + i)})"


def _pair_title(i: int, problem: str, arch: str) -> str:
    return f"{_letter(i)} {arch_label(arch)}, {problem_label(problem)}"


def _five(make: Callable[[str, str], list[Curve]]) -> Callable[[pd.DataFrame], list[Panel]]:
    """The five panels of Figures 2, 3, 7, 9 and 13."""
    return lambda s: [Panel(_pair_title(i, p, a), tuple(make(p, a))) for i, (p, a) in enumerate(FIVE_PAIRS)]


def _svm_nn(aug: bool = False) -> Callable[[str, str], list[Curve]]:
    return lambda p, a: [
        curve("svm_test_error", QUANTITY_LABELS["svm_test_error"], problem=p, architecture=a, augmentation=aug,
              kernel="after"),
        curve("nn_test_error", QUANTITY_LABELS["nn_test_error"], problem=p, architecture=a, augmentation=aug,
              kernel="after"),
    ]


def _after_conj(p: str, a: str) -> list[Curve]:
    return [curve("svm_test_error", KERNEL_LABELS[k], problem=p, architecture=a, augmentation=False, kernel=k)
            for k in ("after", "conjugate")]


def _by_problem(quantity: str, problems: Sequence[str], arch: str, **extra: Any) -> tuple[Curve, ...]:
    return tuple(curve(quantity, problem_label(p, short=True), problem=p, architecture=arch, augmentation=False,
                       kernel="after", **extra) for p in problems)


def _invariances(problems: Sequence[str], arch: str, augs: Sequence[bool] = (False,)) -> tuple[Curve, ...]:
    """Translation, zoom and rotation invariance of the after kernel: colour =
    invariance, dashes = augmentation (when both), markers = problem (when
    several)."""
    several = len(problems) > 1
    return tuple(
        curve(q, q, dash=AUG_LABELS[aug] if len(augs) > 1 else (problem_label(p, short=True) if several else None),
              marker=problem_label(p, short=True) if (several and len(augs) > 1) else None,
              problem=p, architecture=arch, augmentation=aug, kernel="after")
        for q in INVARIANCES for aug in augs for p in problems)


def _fig01(s: pd.DataFrame) -> list[Panel]:
    mnist = _mnist(s, "epochs")
    return [
        Panel("(a) MNIST, fully connected and VGG-like",
              tuple(curve("svm_test_error", arch_label(a), dash=problem_label(p, short=True), problem=p,
                          architecture=a, augmentation=False, kernel="after") for a in (FC, VGG) for p in mnist)),
        Panel(f"(b) {problem_label(CIFAR)}, VGG-like",
              (curve("svm_test_error", arch_label(VGG), problem=CIFAR, architecture=VGG, augmentation=False,
                     kernel="after"),)),
    ]


def _fig04(s: pd.DataFrame) -> list[Panel]:
    mnist = _mnist(s, "epochs")
    return [
        Panel("(a) VGG-like, MNIST", _by_problem("swap", mnist, VGG)),
        Panel("(b) Fully connected, MNIST", _by_problem("swap", mnist, FC)),
        Panel(f"(c) VGG-like, {problem_label(CIFAR)}", _by_problem("swap", [CIFAR], VGG)),
        Panel("(d) Mega-VGG-like, MNIST", _by_problem("swap", mnist, MEGA)),
    ]


def _fig05(s: pd.DataFrame, augs: Sequence[bool] = (False,)) -> list[Panel]:
    mnist = _mnist(s, "epochs")
    return [
        Panel("(a) VGG-like, MNIST", _invariances(mnist, VGG, augs)),
        Panel("(b) Fully connected, MNIST", _invariances(mnist, FC, augs)),
        Panel(f"(c) VGG-like, {problem_label(CIFAR)}", _invariances([CIFAR], VGG, augs)),
        Panel("(d) Mega-VGG-like, MNIST", _invariances(mnist, MEGA, augs)),
    ]


def _fig06(s: pd.DataFrame) -> list[Panel]:
    mnist = _mnist(s, "epochs")
    return [
        Panel("(a) VGG-like and mega-VGG-like, MNIST",
              tuple(curve("alignment", arch_label(a), dash=problem_label(p, short=True), problem=p, architecture=a,
                          augmentation=False, kernel="after") for a in (VGG, MEGA) for p in mnist)),
        Panel("(b) Fully connected, MNIST", _by_problem("alignment", mnist, FC)),
        Panel(f"(c) VGG-like, {problem_label(CIFAR)}", _by_problem("alignment", [CIFAR], VGG)),
    ]


def _fig10(s: pd.DataFrame) -> list[Panel]:
    mnist = _mnist(s, "learning_rate")
    return [
        Panel("(a) MNIST, fully connected and VGG-like",
              tuple(curve("swap", arch_label(a), dash=problem_label(p, short=True), problem=p, architecture=a,
                          augmentation=False, kernel="after") for a in (FC, VGG) for p in mnist)),
        Panel(f"(b) VGG-like, {problem_label(CIFAR)}", _by_problem("swap", [CIFAR], VGG)),
    ]


def _fig11(s: pd.DataFrame, augs: Sequence[bool] = (False,)) -> list[Panel]:
    mnist = _mnist(s, "learning_rate")
    both = len(augs) > 1

    def mnist_panel(i: int, q: str) -> Panel:
        return Panel(f"{_letter(i)} {q.capitalize()} invariance, MNIST",
                     tuple(curve(q, arch_label(a),
                                 dash=AUG_LABELS[aug] if both else problem_label(p, short=True),
                                 marker=problem_label(p, short=True) if both else None,
                                 problem=p, architecture=a, augmentation=aug, kernel="after")
                           for a in (FC, VGG) for aug in augs for p in mnist),
                     ylabel=f"{q.capitalize()} invariance (cosine)")

    return [mnist_panel(i, q) for i, q in enumerate(INVARIANCES)] + [
        Panel(f"(d) VGG-like, {problem_label(CIFAR)}", _invariances([CIFAR], VGG, augs))]


def _fig12(s: pd.DataFrame) -> list[Panel]:
    problems = _mnist(s, "learning_rate") + [CIFAR]
    return [Panel("MNIST and CIFAR-10 pairs",
                  tuple(curve("alignment", arch_label(a), dash=problem_label(p, short=p != CIFAR), problem=p,
                              architecture=a, augmentation=False, kernel="after")
                        for a in (FC, VGG) for p in problems))]


def _with_family(summary: pd.DataFrame) -> pd.DataFrame:
    """The width study's rows with ``family`` filled (from the architecture
    name's first part when the table has none)."""
    w = summary["study"] == "width"
    fam = summary["family"].astype(object)
    missing = w & fam.isna()
    if missing.any():
        fam = fam.copy()
        fam[missing] = summary.loc[missing, "architecture"].astype(str).str.split("-").str[0]
        summary = summary.assign(family=fam)
    return summary


def _fig15(s: pd.DataFrame) -> list[Panel]:
    w = _with_family(s)
    w = w[(w["study"] == "width") & (w["quantity"] == "nn_test_error")]
    mnist = _mnist(s, "width")
    families = list(dict.fromkeys(w["family"].dropna()))
    epochs = sorted(w["epoch"].dropna().unique())

    def curves(problems: Sequence[str]) -> tuple[Curve, ...]:
        return tuple(curve("nn_test_error", arch_label(f), dash=epochs_label(e),
                           marker=problem_label(p, short=True) if len(problems) > 1 else None,
                           problem=p, family=f, epoch=float(e), kernel=NO_KERNEL)
                     for f in families for e in epochs for p in problems)

    return [Panel("(a) MNIST", curves(mnist)), Panel(f"(b) {problem_label(CIFAR)}", curves([CIFAR]))]


def _fig16(s: pd.DataFrame) -> list[Panel]:
    mnist = _mnist(s, "epochs")

    def curves(problems: Sequence[str], arch: str) -> tuple[Curve, ...]:
        return tuple(curve(q, QUANTITY_LABELS[q], dash=AUG_LABELS[aug],
                           marker=problem_label(p, short=True) if len(problems) > 1 else None,
                           problem=p, architecture=arch, augmentation=aug, kernel="after")
                     for q in ("svm_test_error", "nn_test_error") for aug in (False, True) for p in problems)

    return [Panel("(a) VGG-like, MNIST", curves(mnist, VGG)),
            Panel("(b) Fully connected, MNIST", curves(mnist, FC)),
            Panel(f"(c) VGG-like, {problem_label(CIFAR)}", curves([CIFAR], VGG))]


_FIVE_TEXT = ("(a) VGG-like, MNIST 3-vs-8; (b) VGG-like, MNIST 5-vs-6; (c) fully connected, MNIST 3-vs-8; "
              "(d) fully connected, MNIST 5-vs-6; (e) VGG-like, CIFAR-10 cats-vs-dogs")
_EPOCHS = "as a function of the number of epochs the network was trained (0 = the FNTK)"
_LR = ("as a function of the learning rate, each network trained until its training loss is at most "
       "the loss target or the epoch cap is reached (hollow markers: not every run reached the target; "
       "the footnote says how many)")
_INV = ("average cosine similarity, over the test images, between the after-kernel features of an image "
        "and of its perturbation")

_SPECS = [
    dict(stem="svm_error_vs_epochs", study="epochs", category="Epochs study", x="epoch",
         ylabel="SVM test error (after kernel)", panels=_fig01,
         title="SVM test error of the after kernel vs training epochs",
         caption=f"Test error of the hard-margin SVM with the after kernel, {_EPOCHS}. (a) MNIST 3-vs-8 and "
                 "5-vs-6, fully connected and VGG-like networks; (b) CIFAR-10 cats-vs-dogs, VGG-like network."),
    dict(stem="svm_vs_nn_error", study="epochs", category="Epochs study", x="epoch", ylabel="Test error",
         panels=_five(_svm_nn()), title="SVM (after kernel) and network test error vs training epochs",
         caption="Test error of the hard-margin SVM with the after kernel and of the neural network that "
                 f"produced the kernel, {_EPOCHS}. {_FIVE_TEXT}."),
    dict(stem="svm_vs_nn_error_early", study="epochs", category="Epochs study", x="epoch", ylabel="Test error",
         panels=_five(_svm_nn()), max_epoch=EARLY_EPOCHS,
         title=f"As Figure 2, early epochs (0-{EARLY_EPOCHS})",
         caption=f"As Figure 2, restricted to the early stage of training (epochs 0 to {EARLY_EPOCHS}): the "
                 f"kernel is learned first, then the network. {_FIVE_TEXT}."),
    dict(stem="swap_invariance_vs_epochs", study="epochs", category="Epochs study", x="epoch",
         ylabel="Swap invariance (cosine)", panels=_fig04,
         title="Swap invariance of the after kernel vs training epochs",
         caption=f"Swap invariance ({_INV}, the perturbation exchanging the upper-left and lower-right "
                 f"quadrants), {_EPOCHS}. (a) VGG-like, MNIST 3-vs-8 and 5-vs-6; (b) fully connected, MNIST; "
                 "(c) VGG-like, CIFAR-10 cats-vs-dogs; (d) mega-VGG-like, MNIST 3-vs-8."),
    dict(stem="invariances_vs_epochs", study="epochs", category="Epochs study", x="epoch",
         ylabel="Invariance (cosine)", panels=_fig05,
         title="Translation, zoom and rotation invariance vs training epochs",
         caption=f"Translation (1-pixel shifts), zoom and rotation (1/4 radian) invariance ({_INV}), "
                 f"{_EPOCHS}. (a) VGG-like, MNIST 3-vs-8 and 5-vs-6 (3 invariances x 2 problems); (b) fully "
                 "connected, MNIST; (c) VGG-like, CIFAR-10 cats-vs-dogs; (d) mega-VGG-like, MNIST 3-vs-8."),
    dict(stem="alignment_vs_epochs", study="epochs", category="Epochs study", x="epoch",
         ylabel="Alignment, after vs conjugate kernel", panels=_fig06,
         title="Alignment of the after kernel and its conjugate projection vs training epochs",
         caption="Kernel alignment <G,H> / (‖G‖ ‖H‖) (uncentred, Frobenius) of the test-set Gram matrices of the after kernel and of "
                 f"its conjugate projection, {_EPOCHS}. (a) VGG-like and mega-VGG-like networks, MNIST; "
                 "(b) fully connected, MNIST 3-vs-8 and 5-vs-6; (c) VGG-like, CIFAR-10 cats-vs-dogs."),
    dict(stem="after_vs_conjugate_error_vs_epochs", study="epochs", category="Epochs study", x="epoch",
         ylabel="SVM test error", panels=_five(_after_conj),
         title="SVM test error, after kernel vs conjugate kernel, vs training epochs",
         caption="Test error of hard-margin SVMs with the after kernel and with its conjugate projection, "
                 f"{_EPOCHS}. {_FIVE_TEXT}."),
    dict(stem="augmentation_invariances_vs_epochs", study="epochs", category="Augmentation", x="epoch",
         ylabel="Invariance (cosine)", panels=lambda s: _fig05(s, (False, True)),
         title="Invariances with and without data augmentation vs training epochs",
         caption=f"Translation, zoom and rotation invariance of the after kernel, {_EPOCHS}, for networks "
                 "trained without (solid) and with (dashed) data augmentation (random rotations and 1-pixel "
                 "shifts). (a) VGG-like, MNIST; (b) fully connected, MNIST; (c) VGG-like, CIFAR-10 "
                 "cats-vs-dogs; (d) mega-VGG-like, MNIST 3-vs-8."),
    dict(stem="svm_vs_nn_error_vs_lr", study="learning_rate", category="Learning-rate study", x="learning_rate",
         ylabel="Test error", panels=_five(_svm_nn()),
         title="SVM (after kernel) and network test error vs learning rate",
         caption="Test error of the hard-margin SVM with the after kernel and of the neural network that "
                 f"produced the kernel, {_LR}. {_FIVE_TEXT}."),
    dict(stem="swap_invariance_vs_lr", study="learning_rate", category="Learning-rate study", x="learning_rate",
         ylabel="Swap invariance (cosine)", panels=_fig10,
         title="Swap invariance of the after kernel vs learning rate",
         caption=f"Swap invariance of the after kernel ({_INV}, upper-left and lower-right quadrants "
                 f"exchanged), {_LR}. (a) MNIST problems, fully connected and VGG-like; (b) VGG-like, "
                 "CIFAR-10 cats-vs-dogs."),
    dict(stem="invariances_vs_lr", study="learning_rate", category="Learning-rate study", x="learning_rate",
         ylabel="Invariance (cosine)", panels=_fig11,
         title="Translation, zoom and rotation invariance vs learning rate",
         caption=f"Invariances of the after kernel ({_INV}), {_LR}. (a) translation, (b) zoom, (c) rotation "
                 "invariance on the MNIST problems (fully connected and VGG-like); (d) VGG-like, CIFAR-10 "
                 "cats-vs-dogs, all three."),
    dict(stem="alignment_vs_lr", study="learning_rate", category="Learning-rate study", x="learning_rate",
         ylabel="Alignment, after vs conjugate kernel", panels=_fig12,
         title="Alignment of the after kernel and its conjugate projection vs learning rate",
         caption="Kernel alignment of the test-set Gram matrices of the after kernel and its conjugate "
                 f"projection, {_LR}, for the MNIST and CIFAR-10 architecture/problem pairs."),
    dict(stem="after_vs_conjugate_error_vs_lr", study="learning_rate", category="Learning-rate study",
         x="learning_rate", ylabel="SVM test error", panels=_five(_after_conj),
         title="SVM test error, after kernel vs conjugate kernel, vs learning rate",
         caption="Test error of hard-margin SVMs with the after kernel and with its conjugate projection, "
                 f"{_LR}. {_FIVE_TEXT}."),
    dict(stem="augmentation_invariances_vs_lr", study="learning_rate", category="Augmentation", x="learning_rate",
         ylabel="Invariance (cosine)", panels=lambda s: _fig11(s, (False, True)),
         title="Invariances with and without data augmentation vs learning rate",
         caption=f"Invariances of the after kernel, {_LR}, for networks trained without and with data "
                 "augmentation. (a) translation, (b) zoom, (c) rotation invariance on the MNIST problems; "
                 "(d) VGG-like, CIFAR-10 cats-vs-dogs, all three."),
    dict(stem="nn_error_vs_params", study="width", category="Width study", x="n_params",
         ylabel="Network test error", panels=_fig15,
         title="Network test error vs number of parameters",
         caption="Test error of the neural networks as a function of their number of parameters (widths "
                 "scaled to about 60K, 80K and 100K parameters), per architecture family and number of "
                 "training epochs (Appendix A). (a) MNIST problems; (b) CIFAR-10 cats-vs-dogs."),
    dict(stem="augmentation_errors", study="epochs", category="Augmentation", x="epoch", ylabel="Test error",
         panels=_fig16, title="Test error with and without data augmentation",
         caption="Test error of the hard-margin SVM with the after kernel and of the network that produced "
                 f"it, without and with data augmentation, {_EPOCHS} (Appendix B). (a) VGG-like, MNIST; "
                 "(b) fully connected, MNIST; (c) VGG-like, CIFAR-10 cats-vs-dogs."),
]

#: Figure id ("fig01" ... "fig16") -> its spec.
FIGURES: dict[str, FigureSpec] = {}
for _i, _spec in enumerate(_SPECS, start=1):
    _id = f"fig{_i:02d}"
    FIGURES[_id] = FigureSpec(fig=_id, number=_i, **{**_spec, "stem": f"{_id}_{_spec['stem']}"})
del _i, _spec, _id


def figure_index() -> dict[str, dict[str, str]]:
    """Figure id -> ``{stem, title, caption, study, category, rule, png, svg}``
    (for the README figure index and the report captions)."""
    return {k: {"stem": f.stem, "title": f.title, "caption": f.caption, "study": f.study,
                "category": f.category, "rule": f.rule, "png": f.files[0], "svg": f.files[1]}
            for k, f in FIGURES.items()}


def index_markdown() -> str:
    """A Markdown table of the figures (id, file, study, rule, title)."""
    lines = ["| figure | file | study | rule | shows |", "|---|---|---|---|---|"]
    for f in FIGURES.values():
        lines.append(f"| {f.number} | `{f.files[0]}` | {STUDY_NAMES[f.study]} | `{f.rule}` | {f.title} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# data


def _match(summary: pd.DataFrame, study: str, where: tuple[tuple[str, Any], ...]) -> pd.Series:
    mask = summary["study"] == study
    for key, value in where:
        col = summary[key]
        if isinstance(value, float) and math.isnan(value):
            mask &= col.isna()
        else:
            mask &= (col == value).fillna(False).astype(bool)
    return mask.astype(bool)


def _companion(summary: pd.DataFrame, spec: FigureSpec, c: Curve, quantity: str, x: pd.Series) -> np.ndarray:
    """Mean of ``quantity`` in the summary groups of curve ``c``'s points at
    ``x`` (NaN where absent), e.g. the fraction of separable kernels."""
    d = summary[_match(summary, spec.study, c.where) & (summary["quantity"] == quantity)]
    means = dict(zip(d[spec.x].astype(float), d["mean"].astype(float)))
    return np.array([means.get(float(v), np.nan) for v in x], float)


def curve_data(summary: pd.DataFrame, spec: FigureSpec, c: Curve) -> pd.DataFrame:
    """The points of curve ``c``: columns ``x, mean, ci_low, ci_high, count``
    (seeds averaged) and the flags drawn as hollow markers:
    ``not_separable`` (an SVM error where some seed's kernel was not
    separable, so no hard-margin SVM exists), ``not_converged`` (some
    seed's solver stopped at its iteration cap) and ``unreached`` (a
    learning-rate-study point where some run did not reach the loss target).
    Sorted by x, finite x and mean only."""
    d = summary[_match(summary, spec.study, c.where) & (summary["quantity"] == c.quantity)]
    if spec.x == "n_params":
        keys = ["problem", "architecture", "augmentation", "epoch", "kernel"]
        n = summary[(summary["study"] == spec.study) & (summary["quantity"] == "n_params")]
        n = n[keys + ["mean"]].rename(columns={"mean": "x"}).drop_duplicates(keys)
        d = d.merge(n, on=keys, how="left")
    else:
        d = d.assign(x=d[spec.x])
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
    out["not_separable"] = _companion(summary, spec, c, "separable", out["x"]) < 1 if svm else no_flag
    out["not_converged"] = _companion(summary, spec, c, "converged", out["x"]) < 1 if svm else no_flag
    out["unreached"] = (_companion(summary, spec, c, "reached_target", out["x"]) < 1
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
    if any(_match(summary, spec.study, c.where).any() for c in panel.curves):
        return NO_FINITE
    return NOT_IN_CONFIG


# --------------------------------------------------------------------------
# drawing

DASHES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_SALT = "afterkernel"


def _levels(panels: Sequence[Panel], attr: str) -> list[str]:
    return list(dict.fromkeys(getattr(c, attr) for p in panels for c in p.curves if getattr(c, attr) is not None))


def _layout(n: int) -> tuple[int, int]:
    return {1: (1, 1), 2: (1, 2), 3: (1, 3), 4: (2, 2)}.get(n, (math.ceil(n / 3), 3))


def _rc() -> dict[str, Any]:
    import seaborn as sns

    rc = dict(sns.axes_style("whitegrid"))
    rc.update(sns.plotting_context("paper", font_scale=1.0))
    rc.update({"svg.hashsalt": _SALT, "svg.fonttype": "path", "font.family": "DejaVu Sans",
               "axes.titlesize": 9.5, "axes.labelsize": 9, "legend.fontsize": 7,
               "xtick.labelsize": 8, "ytick.labelsize": 8, "path.simplify": False})
    return rc


@dataclass(frozen=True)
class _Styles:
    color: dict[str, Any]
    dash: dict[str, Any]
    marker: dict[str, str]


#: hollow-marker flags of :func:`curve_data` -> legend text
FLAG_LABELS = {"not_separable": "hollow: kernel not separable\n(some seed; no hard-margin SVM)",
               "not_converged": "hollow: SVM solver stopped\nabove its gap tolerance (some seed)",
               "unreached": "hollow: loss target not reached\n(some run)"}


@dataclass
class _Drawn:
    """What a figure's panels drew: the seed counts per point and the flags."""

    counts: set[int] = field(default_factory=set)
    flags: set[str] = field(default_factory=set)


def _seed_note(counts: set[int]) -> str:
    if not counts:
        return ""
    lo, hi = min(counts), max(counts)
    n = f"n = {lo}" if lo == hi else f"n = {lo}-{hi}"
    return f"mean over {n} seed{'s' if hi > 1 else ''} per point"


def _unreached_note(summary: pd.DataFrame, training: dict | None) -> str:
    """How many learning-rate runs of the summary missed the loss target."""
    r = summary[(summary["study"] == "learning_rate") & (summary["quantity"] == "reached_target")
                & (summary["kernel"] != "conjugate")]
    total = int(r["count"].sum())
    missed = int(round(float(((1 - r["mean"]) * r["count"]).sum())))
    if not missed:
        return ""
    t = training or {}
    within = (f"training loss <= {t['loss_target']:g} within {t['max_epochs']} epochs"
              if "loss_target" in t and "max_epochs" in t else "the loss target within the epoch cap")
    return f"{missed} of {total} learning-rate runs did not reach {within}"


def _draw(spec: FigureSpec | str, summary: pd.DataFrame, training: dict | None = None):
    """(Figure, notes of the panels drawn empty). ``training``: the config's
    ``loss_target`` and ``max_epochs``, for the note on unreached targets."""
    import matplotlib
    import seaborn as sns
    from matplotlib.figure import Figure

    if isinstance(spec, str):
        spec = FIGURES[spec]
    summary = _with_family(summary)
    panels = spec.panels(summary)
    summary = summary[summary["study"] == spec.study]  # every curve is of the figure's study
    hues, dashes, markers = (_levels(panels, a) for a in ("hue", "dash", "marker"))
    palette = sns.color_palette("colorblind", max(len(hues), 1))
    styles = _Styles(color={h: palette[i % len(palette)] for i, h in enumerate(hues)},
                     dash={d: DASHES[i % len(DASHES)] for i, d in enumerate(dashes)},
                     marker={m: MARKERS[i % len(MARKERS)] for i, m in enumerate(markers)})
    with matplotlib.rc_context(_rc()):
        nrows, ncols = _layout(len(panels))
        width = max(5.0 * ncols, 7.0)
        fig = Figure(figsize=(width, 3.2 * nrows + 0.7), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax in axes[len(panels):]:
            ax.set_axis_off()
        notes = []
        drawn = _Drawn()
        for ax, panel in zip(axes, panels):
            note = _draw_panel(ax, spec, panel, summary, styles, drawn)
            if note is not None:
                notes.append(f"{panel.title}: {note}")
        band = "shaded band" if spec.x == "epoch" else "error bars"
        lines = [f"{_seed_note(drawn.counts) or 'mean over seeds'}; {band}: 95 % t-interval of the mean"]
        if "unreached" in drawn.flags:
            lines.append(_unreached_note(summary, training))
        footnote = "\n".join(line for line in lines if line)
        fig.suptitle(textwrap.fill(f"Figure {spec.number}: {spec.title}", int(width * 11)), fontsize=11)
        fig.supxlabel(footnote, fontsize=7, color="0.35", x=0.99, ha="right")
    return fig, notes


def _draw_panel(ax, spec: FigureSpec, panel: Panel, summary: pd.DataFrame, styles: _Styles,
                drawn_stats: _Drawn) -> str | None:
    """Draw ``panel`` on ``ax`` (recording seed counts and flags in
    ``drawn_stats``); return the note drawn instead, if any."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

    ax.set_title(panel.title, loc="left")
    data = {c: curve_data(summary, spec, c) for c in panel.curves}
    note = panel_status(summary, spec, panel, data)
    if note is not None:
        ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", color="0.4",
                fontsize=10, style="italic")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        return note
    ylabel = panel.ylabel or spec.ylabel
    is_error = "error" in ylabel.lower()
    drawn: list[Curve] = []
    panel_flags: set[str] = set()
    xs: set[float] = set()
    scale_points: list[float] = []  # the values the y range must show
    init_nn: list[tuple[float, float, Any]] = []  # NN error at initialisation (may go off scale)
    for c in panel.curves:
        d = data[c]
        if not len(d):
            continue
        drawn.append(c)
        xs.update(d["x"])
        col = styles.color[c.hue]
        style = dict(color=col, linestyle=styles.dash.get(c.dash, "-"), marker=styles.marker.get(c.marker, "o"),
                     markersize=4, linewidth=1.4)
        x, m = d["x"].to_numpy(), d["mean"].to_numpy()
        # with few seeds a t-interval can reach past the quantity's range
        # (errors in [0, 1], cosines and alignments at most 1): draw it clipped
        lo = np.clip(d["ci_low"].to_numpy(), 0.0 if is_error else -1.0, 1.0)
        hi = np.clip(d["ci_high"].to_numpy(), 0.0 if is_error else -1.0, 1.0)
        ok = np.isfinite(lo) & np.isfinite(hi)
        if spec.x == "epoch":
            ax.plot(x, m, **style)
            if ok.any():
                ax.fill_between(x, np.where(ok, lo, m), np.where(ok, hi, m), color=col, alpha=0.15, linewidth=0)
        else:
            yerr = np.vstack([np.where(ok, m - lo, 0.0), np.where(ok, hi - m, 0.0)])
            ax.errorbar(x, m, yerr=yerr, capsize=2.5, elinewidth=0.9, **style)
        hollow = np.zeros(len(d), bool)
        for flag in FLAG_LABELS:
            if d[flag].any():
                drawn_stats.flags.add(flag)
                panel_flags.add(flag)
                hollow |= d[flag].to_numpy(bool)
        if hollow.any():  # white-faced markers over the filled ones
            ax.plot(x[hollow], m[hollow], linestyle="none", marker=style["marker"], markersize=4.5,
                    markerfacecolor="white", markeredgecolor=col, markeredgewidth=1.1, zorder=4)
        drawn_stats.counts.update(int(n) for n in d["count"])
        at_init = (x == 0) & (c.quantity == "nn_test_error") & (spec.x == "epoch")
        scale_points += list(np.where(ok, hi, m)[~at_init])
        init_nn += [(0.0, v, col) for v in m[at_init]]
    ax.set_xlabel(X_LABELS[spec.x])
    ax.set_ylabel(ylabel)
    if spec.x == "learning_rate":
        ax.set_xscale("log")
        ticks = sorted(xs)
        lo_x, hi_x = ticks[0] / (2 if len(ticks) == 1 else 1.4), ticks[-1] * (2 if len(ticks) == 1 else 1.4)
        ax.set_xlim(lo_x, hi_x)
        ax.set_xticks(ticks)
        ax.set_xticklabels(_sparse_labels(ticks, math.log10(hi_x / lo_x)))
        ax.xaxis.set_minor_locator(NullLocator())
    elif spec.x == "n_params":
        lo_x, hi_x = min(xs), max(xs)
        pad = 0.08 * (hi_x - lo_x) if hi_x > lo_x else 0.1 * hi_x
        ax.set_xlim(lo_x - pad, hi_x + pad)
        digits = 0 if hi_x - lo_x + 2 * pad >= 8e3 else 1 if hi_x - lo_x + 2 * pad >= 8e2 else 2
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e3:.{digits}f}K"))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        span = max(max(xs), 1.0)
        ax.set_xlim(min(xs) - 0.02 * span, max(xs) + 0.02 * span)
    if is_error:
        ax.set_ylim(bottom=0)
        # The network's error at initialisation (about 0.5) would squash the
        # curves: the y range is set by the other points and the off-scale
        # values are written at the top edge (as the paper's plots, whose
        # error axes stop at a few per cent).
        finite = [v for v in scale_points if np.isfinite(v)]
        if finite and init_nn:
            top = 1.12 * max(finite)
            off = sorted(v for _, v, _ in init_nn if v > top)
            if off:
                ax.set_ylim(0, top)
                cols = {tuple(col) for _, v, col in init_nn if v > top}
                text = f"{off[0]:.2f}" if off[-1] - off[0] < 0.005 else f"{off[0]:.2f}-{off[-1]:.2f}"
                ax.annotate(f"\u2191 network at epoch 0: {text}", xy=(0.0, top), xytext=(5, -3),
                            textcoords="offset points", ha="left", va="top", fontsize=7,
                            color=cols.pop() if len(cols) == 1 else "0.3")
    _legend(ax, drawn, styles, panel_flags)
    return None


def _sparse_labels(ticks: Sequence[float], decades: float, axis_inches: float = 3.2,
                   label_inches: float = 0.42) -> list[str]:
    """Labels of learning-rate ticks (one per rate), left empty where a label
    would overlap the previous one on a log axis spanning ``decades``."""
    gap = label_inches * decades / axis_inches
    labels, last = [], -math.inf
    for t in ticks:
        if math.log10(t) - last >= gap:
            labels.append(f"{t:g}")
            last = math.log10(t)
        else:
            labels.append("")
    return labels


def _legend(ax, drawn: Sequence[Curve], styles: _Styles, flags: set[str] = frozenset()) -> None:
    """Beside the panel: the colours' levels, then one entry per level of the
    line styles and markers that vary in the panel, then the hollow-marker
    flags the panel shows."""
    from matplotlib.lines import Line2D

    if not drawn:
        return
    dims = [("hue", list(dict.fromkeys(c.hue for c in drawn))),
            ("dash", list(dict.fromkeys(c.dash for c in drawn if c.dash is not None))),
            ("marker", list(dict.fromkeys(c.marker for c in drawn if c.marker is not None)))]
    varying = [dims[0]] + [(k, v) for k, v in dims[1:] if len(v) > 1]
    handles, labels = [], []
    for kind, levels in varying:
        for level in levels:
            if kind == "hue":
                h = Line2D([], [], color=styles.color[level], linewidth=2,
                           marker=None if styles.marker else "o", markersize=4)
            elif kind == "dash":
                h = Line2D([], [], color="0.3", linestyle=styles.dash[level], linewidth=1.4)
            else:
                h = Line2D([], [], color="0.3", linestyle="none", marker=styles.marker[level], markersize=5)
            handles.append(h)
            labels.append(level)
    for flag in (f for f in FLAG_LABELS if f in flags):
        handles.append(Line2D([], [], color="0.3", linestyle="none", marker="o", markersize=5,
                              markerfacecolor="white"))
        labels.append(FLAG_LABELS[flag])
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              frameon=False, handlelength=2.6)


def _atomic_savefig(fig, path: str | os.PathLike, fmt: str, **kwargs: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format=fmt, **kwargs)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def render(fig_id: str, summary: pd.DataFrame | str | os.PathLike, png: str | os.PathLike | None = None,
           svg: str | os.PathLike | None = None, dpi: int = 150, training: dict | None = None) -> list[str]:
    """Draw figure ``fig_id`` from ``summary`` (a DataFrame or the path of
    ``summary.csv``) and write it as PNG and/or SVG (atomically); ``training``
    (``loss_target``, ``max_epochs``) words the note on unreached targets.
    Returns the notes of the panels drawn empty."""
    import matplotlib

    spec = FIGURES[fig_id]
    if not isinstance(summary, pd.DataFrame):
        summary = read_summary(summary)
    fig, notes = _draw(spec, summary, training)
    with matplotlib.rc_context(_rc()):
        if png is not None:
            _atomic_savefig(fig, png, "png", dpi=dpi, metadata={"Software": None})
        if svg is not None:
            _atomic_savefig(fig, svg, "svg", metadata={"Date": None, "Creator": None})
    return notes
