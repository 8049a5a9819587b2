"""What each of Figures 1-20 draws: :func:`figure_panels`, a figure's panels
from the summary table.

For the paper's pairs (:func:`~afterkernel.figures.registry.paper_pair`)
:data:`PANELS` (figure id -> a function of the summary table) follows the
paper's captions (and ``notes/figures.md``) panel by panel. For every other
pair of the figure's study :data:`PAIR_PANELS` gives the same quantities as
one panel (or a row of panels) per pair. Each panel is a list of curves, each
one quantity of the summary restricted to one problem, architecture,
augmentation and kernel; colours, line styles and markers each encode one
variable of the panel (e.g. colour = invariance, dashes = augmentation,
markers = problem). The summary is read only to find which pairs, MNIST
problems, architecture families and epoch counts a study has.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any, Callable, Sequence

import pandas as pd

from afterkernel.aggregate import NO_KERNEL, SPECTRUM_PREFIX
from afterkernel.figures.points import with_family
from afterkernel.figures.registry import (AUG_LABELS, CIFAR, FC, KERNEL_LABELS, MEGA, MNIST_DEFAULT,
                                          NO_OTHER_PAIRS, PAPER, QUANTITY_LABELS, VGG, Curve, FigureSpec, Panel,
                                          arch_label, curve, epochs_label, paper_pair, problem_label)
from afterkernel.vocabulary import AFTER, KERNELS

#: the five (problem, architecture) panels of Figures 2, 3, 7, 9 and 13
FIVE_PAIRS = ((MNIST_DEFAULT[0], VGG), (MNIST_DEFAULT[1], VGG), (MNIST_DEFAULT[0], FC),
              (MNIST_DEFAULT[1], FC), (CIFAR, VGG))
INVARIANCES = ("translation", "zoom", "rotation")
BOTH_AUGMENTATIONS = (False, True)

PanelsOf = Callable[[pd.DataFrame], list[Panel]]
#: the panels of one (problem, network) pair, from the summary; titles without the letter
PairPanelsOf = Callable[[pd.DataFrame, str, str], list[Panel]]


def mnist_problems(summary: pd.DataFrame, study: str) -> list[str]:
    """The MNIST problems of ``study`` in the summary (the paper's two when
    there are none, so that empty panels still name them)."""
    found = sorted(p for p in summary.loc[summary["study"] == study, "problem"].dropna().unique()
                   if str(p).startswith("mnist-"))
    return found or list(MNIST_DEFAULT)


def _letter(i: int) -> str:
    return f"({chr(ord('a') + i)})"


def one_panel_per_pair(curves_of: Callable[[str, str], list[Curve]]) -> PanelsOf:
    """The five panels of :data:`FIVE_PAIRS`, ``curves_of(problem, arch)`` each."""
    return lambda s: [Panel(f"{_letter(i)} {arch_label(a)}, {problem_label(p)}", tuple(curves_of(p, a)))
                      for i, (p, a) in enumerate(FIVE_PAIRS)]


def svm_and_network_errors(p: str, a: str) -> list[Curve]:
    """The after kernel's SVM test error and the network's, no augmentation."""
    return [curve(q, QUANTITY_LABELS[q], problem=p, architecture=a, augmentation=False, kernel=AFTER)
            for q in ("svm_test_error", "nn_test_error")]


def after_and_conjugate_svm_errors(p: str, a: str) -> list[Curve]:
    return [curve("svm_test_error", KERNEL_LABELS[k], problem=p, architecture=a, augmentation=False, kernel=k)
            for k in KERNELS]


def one_curve_per_problem(quantity: str, problems: Sequence[str], arch: str, **extra: Any) -> tuple[Curve, ...]:
    return tuple(curve(quantity, problem_label(p, short=True), problem=p, architecture=arch, augmentation=False,
                       kernel=AFTER, **extra) for p in problems)


def invariance_curves(problems: Sequence[str], arch: str, augs: Sequence[bool] = (False,)) -> tuple[Curve, ...]:
    """Translation, zoom and rotation invariance of the after kernel: colour =
    invariance, dashes = augmentation (when both), markers = problem (when
    several)."""
    several = len(problems) > 1
    return tuple(
        curve(q, q, dash=AUG_LABELS[aug] if len(augs) > 1 else (problem_label(p, short=True) if several else None),
              marker=problem_label(p, short=True) if (several and len(augs) > 1) else None,
              problem=p, architecture=arch, augmentation=aug, kernel=AFTER)
        for q in INVARIANCES for aug in augs for p in problems)


def _curve_per_architecture(quantity: str, archs: Sequence[str], problems: Sequence[str],
                            short: Callable[[str], bool] = lambda p: True) -> tuple[Curve, ...]:
    """Colour = architecture, dashes = problem."""
    return tuple(curve(quantity, arch_label(a), dash=problem_label(p, short=short(p)), problem=p, architecture=a,
                       augmentation=False, kernel=AFTER) for a in archs for p in problems)


def svm_error_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 1: (a) MNIST, fully connected and VGG-like; (b) CIFAR, VGG-like."""
    return [
        Panel("(a) MNIST, fully connected and VGG-like",
              _curve_per_architecture("svm_test_error", (FC, VGG), mnist_problems(s, "epochs"))),
        Panel(f"(b) {problem_label(CIFAR)}, VGG-like",
              (curve("svm_test_error", arch_label(VGG), problem=CIFAR, architecture=VGG, augmentation=False,
                     kernel=AFTER),)),
    ]


def swap_invariance_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 4: VGG-like, fully connected, CIFAR and mega-VGG-like panels."""
    mnist = mnist_problems(s, "epochs")
    return [
        Panel("(a) VGG-like, MNIST", one_curve_per_problem("swap", mnist, VGG)),
        Panel("(b) Fully connected, MNIST", one_curve_per_problem("swap", mnist, FC)),
        Panel(f"(c) VGG-like, {problem_label(CIFAR)}", one_curve_per_problem("swap", [CIFAR], VGG)),
        Panel("(d) Mega-VGG-like, MNIST", one_curve_per_problem("swap", mnist, MEGA)),
    ]


def invariance_panels_per_network(s: pd.DataFrame, augs: Sequence[bool] = (False,)) -> list[Panel]:
    """Figures 5 and 8: the three invariances, one panel per network."""
    mnist = mnist_problems(s, "epochs")
    return [
        Panel("(a) VGG-like, MNIST", invariance_curves(mnist, VGG, augs)),
        Panel("(b) Fully connected, MNIST", invariance_curves(mnist, FC, augs)),
        Panel(f"(c) VGG-like, {problem_label(CIFAR)}", invariance_curves([CIFAR], VGG, augs)),
        Panel("(d) Mega-VGG-like, MNIST", invariance_curves(mnist, MEGA, augs)),
    ]


def alignment_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 6: alignment of the after kernel and its conjugate projection."""
    mnist = mnist_problems(s, "epochs")
    return [
        Panel("(a) VGG-like and mega-VGG-like, MNIST", _curve_per_architecture("alignment", (VGG, MEGA), mnist)),
        Panel("(b) Fully connected, MNIST", one_curve_per_problem("alignment", mnist, FC)),
        Panel(f"(c) VGG-like, {problem_label(CIFAR)}", one_curve_per_problem("alignment", [CIFAR], VGG)),
    ]


def swap_invariance_lr_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 10: (a) MNIST, fully connected and VGG-like; (b) CIFAR."""
    return [
        Panel("(a) MNIST, fully connected and VGG-like",
              _curve_per_architecture("swap", (FC, VGG), mnist_problems(s, "learning_rate"))),
        Panel(f"(b) VGG-like, {problem_label(CIFAR)}", one_curve_per_problem("swap", [CIFAR], VGG)),
    ]


def invariance_panels_per_kind(s: pd.DataFrame, augs: Sequence[bool] = (False,)) -> list[Panel]:
    """Figures 11 and 14: one MNIST panel per invariance (colour = network),
    then CIFAR with all three."""
    mnist = mnist_problems(s, "learning_rate")
    both = len(augs) > 1

    def mnist_panel(i: int, q: str) -> Panel:
        return Panel(f"{_letter(i)} {q.capitalize()} invariance, MNIST",
                     tuple(curve(q, arch_label(a),
                                 dash=AUG_LABELS[aug] if both else problem_label(p, short=True),
                                 marker=problem_label(p, short=True) if both else None,
                                 problem=p, architecture=a, augmentation=aug, kernel=AFTER)
                           for a in (FC, VGG) for aug in augs for p in mnist),
                     ylabel=f"{q.capitalize()} invariance (cosine)")

    return [mnist_panel(i, q) for i, q in enumerate(INVARIANCES)] + [
        Panel(f"(d) VGG-like, {problem_label(CIFAR)}", invariance_curves([CIFAR], VGG, augs))]


def alignment_lr_panel(s: pd.DataFrame) -> list[Panel]:
    """Figure 12: every MNIST and CIFAR pair in one panel."""
    problems = mnist_problems(s, "learning_rate") + [CIFAR]
    return [Panel("MNIST and CIFAR-10 pairs",
                  _curve_per_architecture("alignment", (FC, VGG), problems, short=lambda p: p != CIFAR))]


def _width_errors(s: pd.DataFrame) -> pd.DataFrame:
    w = with_family(s)
    return w[(w["study"] == "width") & (w["quantity"] == "nn_test_error")]


def width_curves(s: pd.DataFrame, families: Sequence[str], problems: Sequence[str]) -> tuple[Curve, ...]:
    """Network test error per family and epochs trained: colour = family,
    dashes = epochs trained, markers = problem (when several)."""
    epochs = sorted(_width_errors(s)["epoch"].dropna().unique())
    return tuple(curve("nn_test_error", arch_label(f), dash=epochs_label(e),
                       marker=problem_label(p, short=True) if len(problems) > 1 else None,
                       problem=p, family=f, epoch=float(e), kernel=NO_KERNEL)
                 for f in families for e in epochs for p in problems)


def network_error_by_width_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 15: every family of the width study, by problem."""
    families = list(dict.fromkeys(_width_errors(s)["family"].dropna()))
    return [Panel("(a) MNIST", width_curves(s, families, mnist_problems(s, "width"))),
            Panel(f"(b) {problem_label(CIFAR)}", width_curves(s, families, [CIFAR]))]


def augmentation_error_curves(problems: Sequence[str], arch: str) -> tuple[Curve, ...]:
    """SVM and network test errors without and with augmentation."""
    return tuple(curve(q, QUANTITY_LABELS[q], dash=AUG_LABELS[aug],
                       marker=problem_label(p, short=True) if len(problems) > 1 else None,
                       problem=p, architecture=arch, augmentation=aug, kernel=AFTER)
                 for q in ("svm_test_error", "nn_test_error") for aug in BOTH_AUGMENTATIONS for p in problems)


def augmentation_error_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 16: SVM and network test errors without and with augmentation."""
    mnist = mnist_problems(s, "epochs")
    return [Panel("(a) VGG-like, MNIST", augmentation_error_curves(mnist, VGG)),
            Panel("(b) Fully connected, MNIST", augmentation_error_curves(mnist, FC)),
            Panel(f"(c) VGG-like, {problem_label(CIFAR)}", augmentation_error_curves([CIFAR], VGG))]


# --------------------------------------------------------------------------
# beyond the paper: how the kernel moves (Figures 17-20)


def _per_pair(quantity: str, kernel: str, problems: Sequence[str]) -> tuple[Curve, ...]:
    """Colour = architecture, dashes = problem, one kernel, no augmentation."""
    return tuple(curve(quantity, arch_label(a), dash=problem_label(p, short=p != CIFAR), problem=p,
                       architecture=a, augmentation=False, kernel=kernel) for a in (FC, VGG, MEGA) for p in problems)


def _kernels(study: str) -> tuple[str, ...]:
    """The kernels drawn: the learning-rate figures show the after kernel only."""
    return KERNELS if study == "epochs" else (AFTER,)


def _kernel_panels(s: pd.DataFrame, study: str, rows: Sequence[tuple[str, str, str, bool]]) -> list[Panel]:
    """One panel per (title, quantity, y label, log y) and kernel."""
    problems = mnist_problems(s, study) + [CIFAR]
    kernels = _kernels(study)
    specs = [(t, q, y, log, k) for t, q, y, log in rows for k in kernels]
    return [Panel(f"{_letter(i)} {t}, {KERNEL_LABELS[k]}" if len(kernels) > 1 else f"{_letter(i)} {t}",
                  _per_pair(q, k, problems), ylabel=y, log_y=log) for i, (t, q, y, log, k) in enumerate(specs)]


#: (title, quantity, y label, log y) of the panels of Figures 17, 19 and 20
DISTANCE_ROWS = (("Distance to the FNTK", "kernel_distance_init", "Kernel distance to epoch 0", False),
                 ("Velocity", "kernel_velocity", "Kernel velocity (angle per SGD step, log)", True))
TARGET_ROWS = (("Uncentred", "target_alignment", "Kernel-target alignment", False),
               ("Centred", "target_alignment_centred", "Centred kernel-target alignment", False))
LR_EVOLUTION_ROWS = (
    ("Top-10 eigenvalues' share of the trace", "spectrum_top10_fraction", "Top-10 fraction of the trace", False),
    ("Kernel-target alignment, uncentred", "target_alignment", "Kernel-target alignment", False),
    ("Kernel-target alignment, centred", "target_alignment_centred", "Centred kernel-target alignment", False))


def _spectra(s: pd.DataFrame) -> pd.DataFrame:
    """The epochs study's spectrum rows without augmentation (one quantity: one row per group)."""
    return s[(s["study"] == "epochs") & (s["quantity"] == f"{SPECTRUM_PREFIX}1") & ~s["augmentation"].astype(bool)]


def spectrum_curves(s: pd.DataFrame, p: str, a: str) -> tuple[Curve, ...]:
    """Colour = snapshot epoch, dashes = kernel."""
    e = _spectra(s)
    epochs = sorted(e.loc[(e["problem"] == p) & (e["architecture"] == a), "epoch"].dropna().unique())
    return tuple(curve(SPECTRUM_PREFIX, epochs_label(ep), dash=KERNEL_LABELS[k], problem=p, architecture=a,
                       augmentation=False, kernel=k, epoch=int(ep)) for ep in epochs for k in KERNELS)


def spectrum_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 18: one panel per (problem, network) of the epochs study (no
    augmentation)."""
    pairs = [pair for pair in dict.fromkeys(_spectra(s)[["problem", "architecture"]].itertuples(index=False,
                                                                                                 name=None))
             if paper_pair(*pair)]
    if not pairs:
        return [Panel("(a) no spectra", ())]
    return [Panel(f"{_letter(i)} {arch_label(a)}, {problem_label(p)}", spectrum_curves(s, p, a), log_y=True)
            for i, (p, a) in enumerate(pairs)]


def kernel_distance_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 17: distance to the FNTK and velocity, after and conjugate kernel."""
    return _kernel_panels(s, "epochs", DISTANCE_ROWS)


def target_alignment_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 19: kernel-target alignment, uncentred and centred."""
    return _kernel_panels(s, "epochs", TARGET_ROWS)


def kernel_evolution_lr_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 20: top-10 fraction and target alignments of the after kernel vs learning rate."""
    return _kernel_panels(s, "learning_rate", LR_EVOLUTION_ROWS)


#: figure id -> its panels, from the summary table
PANELS: dict[str, PanelsOf] = {
    "fig01": svm_error_panels,
    "fig02": one_panel_per_pair(svm_and_network_errors),
    "fig03": one_panel_per_pair(svm_and_network_errors),  # Figure 2's, the spec keeps the early epochs
    "fig04": swap_invariance_panels,
    "fig05": invariance_panels_per_network,
    "fig06": alignment_panels,
    "fig07": one_panel_per_pair(after_and_conjugate_svm_errors),
    "fig08": partial(invariance_panels_per_network, augs=BOTH_AUGMENTATIONS),
    "fig09": one_panel_per_pair(svm_and_network_errors),
    "fig10": swap_invariance_lr_panels,
    "fig11": invariance_panels_per_kind,
    "fig12": alignment_lr_panel,
    "fig13": one_panel_per_pair(after_and_conjugate_svm_errors),
    "fig14": partial(invariance_panels_per_kind, augs=BOTH_AUGMENTATIONS),
    "fig15": network_error_by_width_panels,
    "fig16": augmentation_error_panels,
    "fig17": kernel_distance_panels,
    "fig18": spectrum_panels,
    "fig19": target_alignment_panels,
    "fig20": kernel_evolution_lr_panels,
}


# --------------------------------------------------------------------------
# the pairs the paper does not show: the same quantities, a panel (or a row) per pair


def pair_title(p: str, a: str, what: str | None = None) -> str:
    return f"{arch_label(a)}, {problem_label(p)}" + (f": {what}" if what else "")


def one_panel(curves_of: Callable[[str, str], Sequence[Curve]]) -> PairPanelsOf:
    """One panel of ``curves_of(problem, network)``."""
    return lambda s, p, a: [Panel(pair_title(p, a), tuple(curves_of(p, a)))]


def kernel_row_panels(study: str, rows: Sequence[tuple[str, str, str, bool]]) -> PairPanelsOf:
    """Figures 17, 19, 20: a panel per (title, quantity, y label, log y), colour = kernel."""
    return lambda s, p, a: [
        Panel(pair_title(p, a, t), tuple(curve(q, KERNEL_LABELS[k], problem=p, architecture=a, augmentation=False,
                                               kernel=k) for k in _kernels(study)), ylabel=y, log_y=log)
        for t, q, y, log in rows]


def _svm_error(p: str, a: str) -> list[Curve]:
    return [curve("svm_test_error", arch_label(a), problem=p, architecture=a, augmentation=False, kernel=AFTER)]


#: paper figure id -> the panels of one pair the paper does not show
PAIR_PANELS: dict[str, PairPanelsOf] = {
    "fig01": one_panel(_svm_error),
    "fig02": one_panel(svm_and_network_errors),
    "fig03": one_panel(svm_and_network_errors),
    "fig04": one_panel(lambda p, a: one_curve_per_problem("swap", [p], a)),
    "fig05": one_panel(lambda p, a: invariance_curves([p], a)),
    "fig06": one_panel(lambda p, a: one_curve_per_problem("alignment", [p], a)),
    "fig07": one_panel(after_and_conjugate_svm_errors),
    "fig08": one_panel(lambda p, a: invariance_curves([p], a, BOTH_AUGMENTATIONS)),
    "fig15": lambda s, p, family: [Panel(pair_title(p, family), width_curves(s, [family], [p]))],
    "fig16": one_panel(lambda p, a: augmentation_error_curves([p], a)),
    "fig17": kernel_row_panels("epochs", DISTANCE_ROWS),
    "fig18": lambda s, p, a: [Panel(pair_title(p, a), spectrum_curves(s, p, a), log_y=True)],
    "fig19": kernel_row_panels("epochs", TARGET_ROWS),
    "fig20": kernel_row_panels("learning_rate", LR_EVOLUTION_ROWS),
}
# Figures 9-14 are Figures 2 and 4-8 over the learning-rate study: the same panels.
PAIR_PANELS.update({f"fig{lr:02d}": PAIR_PANELS[f"fig{ep:02d}"]
                    for lr, ep in zip(range(9, 15), (2, 4, 5, 6, 7, 8))})


def other_pairs(s: pd.DataFrame, study: str) -> list[tuple[str, str]]:
    """The (problem, network) pairs of ``study`` in the summary that the paper
    does not show, in the table's order (network: the width study's family)."""
    rows = s[s["study"] == study]
    network = with_family(rows)["family"] if study == "width" else rows["architecture"]
    pairs = dict.fromkeys((p, a) for p, a in zip(rows["problem"], network) if pd.notna(p) and pd.notna(a))
    return [pair for pair in pairs if not paper_pair(*pair)]


def figure_panels(spec: FigureSpec, s: pd.DataFrame) -> list[Panel]:
    """The panels of ``spec`` from the summary: the paper's layout, drawing the
    paper's pairs only, or a panel (or a row) per other pair of its study."""
    if spec.pairs == PAPER:  # the layout's cross products name pairs the paper does not show: left to the other figure
        return [replace(panel, curves=tuple(c for c in panel.curves if paper_pair(*c.pair)))
                for panel in PANELS[spec.fig](s)]
    panels = [panel for pair in other_pairs(s, spec.study) for panel in PAIR_PANELS[spec.paper_fig](s, *pair)]
    if not panels:
        return [Panel(f"(a) {NO_OTHER_PAIRS}", ())]
    return [replace(panel, title=f"{_letter(i)} {panel.title}") for i, panel in enumerate(panels)]
