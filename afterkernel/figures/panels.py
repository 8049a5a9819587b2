"""What each of Figures 1-20 draws: :data:`PANELS`, figure id -> a function
of the summary table returning the figure's panels.

The panels follow the paper's captions (and ``notes/figures.md``) panel by
panel. Each panel is a list of curves, each one quantity of the summary
restricted to one problem, architecture, augmentation and kernel; colours,
line styles and markers each encode one variable of the panel (e.g. colour =
invariance, dashes = augmentation, markers = problem). The summary is read
only to find which MNIST problems, architecture families and epoch counts a
study has.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Sequence

import pandas as pd

from afterkernel.aggregate import NO_KERNEL, SPECTRUM_PREFIX
from afterkernel.figures.points import with_family
from afterkernel.figures.registry import (AUG_LABELS, CIFAR, FC, KERNEL_LABELS, MEGA, MNIST_DEFAULT,
                                          QUANTITY_LABELS, VGG, Curve, Panel, arch_label, curve, epochs_label,
                                          problem_label)
from afterkernel.vocabulary import AFTER, KERNELS

#: the five (problem, architecture) panels of Figures 2, 3, 7, 9 and 13
FIVE_PAIRS = ((MNIST_DEFAULT[0], VGG), (MNIST_DEFAULT[1], VGG), (MNIST_DEFAULT[0], FC),
              (MNIST_DEFAULT[1], FC), (CIFAR, VGG))
INVARIANCES = ("translation", "zoom", "rotation")
BOTH_AUGMENTATIONS = (False, True)

PanelsOf = Callable[[pd.DataFrame], list[Panel]]


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


def network_error_by_width_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 15: colour = architecture family, dashes = epochs trained,
    markers = problem (when several)."""
    w = with_family(s)
    w = w[(w["study"] == "width") & (w["quantity"] == "nn_test_error")]
    families = list(dict.fromkeys(w["family"].dropna()))
    epochs = sorted(w["epoch"].dropna().unique())

    def curves(problems: Sequence[str]) -> tuple[Curve, ...]:
        return tuple(curve("nn_test_error", arch_label(f), dash=epochs_label(e),
                           marker=problem_label(p, short=True) if len(problems) > 1 else None,
                           problem=p, family=f, epoch=float(e), kernel=NO_KERNEL)
                     for f in families for e in epochs for p in problems)

    return [Panel("(a) MNIST", curves(mnist_problems(s, "width"))),
            Panel(f"(b) {problem_label(CIFAR)}", curves([CIFAR]))]


def augmentation_error_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 16: SVM and network test errors without and with augmentation."""
    mnist = mnist_problems(s, "epochs")

    def curves(problems: Sequence[str], arch: str) -> tuple[Curve, ...]:
        return tuple(curve(q, QUANTITY_LABELS[q], dash=AUG_LABELS[aug],
                           marker=problem_label(p, short=True) if len(problems) > 1 else None,
                           problem=p, architecture=arch, augmentation=aug, kernel=AFTER)
                     for q in ("svm_test_error", "nn_test_error") for aug in BOTH_AUGMENTATIONS for p in problems)

    return [Panel("(a) VGG-like, MNIST", curves(mnist, VGG)),
            Panel("(b) Fully connected, MNIST", curves(mnist, FC)),
            Panel(f"(c) VGG-like, {problem_label(CIFAR)}", curves([CIFAR], VGG))]


# --------------------------------------------------------------------------
# beyond the paper: how the kernel moves (Figures 17-20)


def _per_pair(quantity: str, kernel: str, problems: Sequence[str]) -> tuple[Curve, ...]:
    """Colour = architecture, dashes = problem, one kernel, no augmentation."""
    return tuple(curve(quantity, arch_label(a), dash=problem_label(p, short=p != CIFAR), problem=p,
                       architecture=a, augmentation=False, kernel=kernel) for a in (FC, VGG, MEGA) for p in problems)


def _kernel_panels(s: pd.DataFrame, study: str, rows: Sequence[tuple[str, str, str, bool]]) -> list[Panel]:
    """One panel per (title, quantity, y label, log y) and kernel."""
    problems = mnist_problems(s, study) + [CIFAR]
    kernels = KERNELS if study == "epochs" else (AFTER,)
    specs = [(t, q, y, log, k) for t, q, y, log in rows for k in kernels]
    return [Panel(f"{_letter(i)} {t}, {KERNEL_LABELS[k]}" if len(kernels) > 1 else f"{_letter(i)} {t}",
                  _per_pair(q, k, problems), ylabel=y, log_y=log) for i, (t, q, y, log, k) in enumerate(specs)]


def kernel_distance_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 17: distance to the FNTK and velocity, after and conjugate kernel."""
    return _kernel_panels(s, "epochs", [
        ("Distance to the FNTK", "kernel_distance_init", "Kernel distance to epoch 0", False),
        ("Velocity", "kernel_velocity", "Kernel velocity (distance / epoch, log)", True)])


def spectrum_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 18: one panel per (problem, network) of the epochs study (no
    augmentation); colour = snapshot epoch, dashes = kernel."""
    e = s[(s["study"] == "epochs") & (s["quantity"] == f"{SPECTRUM_PREFIX}1") & ~s["augmentation"].astype(bool)]
    pairs = list(dict.fromkeys(e[["problem", "architecture"]].itertuples(index=False, name=None)))
    if not pairs:
        return [Panel("(a) no spectra", ())]
    return [Panel(f"{_letter(i)} {arch_label(a)}, {problem_label(p)}",
                  tuple(curve(SPECTRUM_PREFIX, epochs_label(ep), dash=KERNEL_LABELS[k], problem=p,
                              architecture=a, augmentation=False, kernel=k, epoch=int(ep))
                        for ep in sorted(e.loc[(e["problem"] == p) & (e["architecture"] == a), "epoch"]
                                         .dropna().unique()) for k in KERNELS), log_y=True)
            for i, (p, a) in enumerate(pairs)]


def target_alignment_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 19: kernel-target alignment, uncentred and centred."""
    return _kernel_panels(s, "epochs", [("Uncentred", "target_alignment", "Kernel-target alignment", False),
                                        ("Centred", "target_alignment_centred", "Centred kernel-target alignment",
                                         False)])


def kernel_evolution_lr_panels(s: pd.DataFrame) -> list[Panel]:
    """Figure 20: top-10 fraction and target alignments of the after kernel vs learning rate."""
    return _kernel_panels(s, "learning_rate", [
        ("Top-10 eigenvalues' share of the trace", "spectrum_top10_fraction", "Top-10 fraction of the trace", False),
        ("Kernel-target alignment, uncentred", "target_alignment", "Kernel-target alignment", False),
        ("Kernel-target alignment, centred", "target_alignment_centred", "Centred kernel-target alignment", False)])


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
