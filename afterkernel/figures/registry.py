"""What Figures 1-16 of the paper are, and Figures 17-20 beyond it (how the
kernel moves: Fort et al. 2020, Baratin et al. 2021): the registry :data:`FIGURES`.

Each figure is a :class:`FigureSpec` (``"fig01"`` ... ``"fig20"``): file
stem, title, caption, the study whose rows it draws, report category and
rule name, the x quantity (epochs, learning rate or number of parameters)
and y label. What it draws, a list of :class:`Panel` each holding
:class:`Curve` specs, comes from :mod:`afterkernel.figures.panels`; the
report caption from :func:`afterkernel.figures.captions.report_caption`.

Cheap to import (no matplotlib, pandas or h5py): ``rules/figures.smk``
imports the registry at every parse of the workflow. Where a figure's files
go is the workflow's business (:func:`afterkernel.plan.figure_files`).

The paper's pairs (:func:`paper_pair`) are drawn in the paper's layout: the
networks ``vgg``, ``fc`` and ``mega-vgg`` (the config's names) on every
``mnist-*`` problem of the study (the paper's 3-vs-8 and 5-vs-6) and ``vgg``
on ``cifar10-cat-dog``. Every other (problem, network) pair of a study gets
the same figures again, one panel (or a row of panels) per pair: the specs of
:data:`OTHER_PAIRS`, drawn when the config's study has such a pair
(:func:`drawn_figures`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from afterkernel.plan import figure_files, other_pairs_stem
from afterkernel.vocabulary import AFTER, CONJUGATE

if TYPE_CHECKING:
    import pandas as pd

MNIST_DEFAULT = ("mnist-3v8", "mnist-5v6")
CIFAR = "cifar10-cat-dog"
VGG, FC, MEGA = "vgg", "fc", "mega-vgg"
EARLY_EPOCHS = 10  # Figure 3: epochs <= this

# --------------------------------------------------------------------------
# labels

ARCH_LABELS = {VGG: "VGG-like", FC: "fully connected", MEGA: "mega-VGG-like"}
AUG_LABELS = {False: "no augmentation", True: "augmentation"}
KERNEL_LABELS = {AFTER: "after kernel", CONJUGATE: "conjugate kernel"}
QUANTITY_LABELS = {"svm_test_error": "SVM (after kernel)", "nn_test_error": "neural network"}
STUDY_NAMES = {"epochs": "epochs study", "learning_rate": "learning-rate study", "width": "width study"}
X_LABELS = {"epoch": "Kernel training epochs", "learning_rate": "Learning rate",
            "n_params": "Number of parameters", "eigen_index": "Eigenvalue index i (train Gram)"}
NOT_IN_CONFIG = "not in this config"
NO_FINITE = "no finite values\n(all runs diverged)"
NO_OTHER_PAIRS = "no pairs beyond the paper's"
PAPER = "paper"  # FigureSpec.pairs: the paper's pairs, in the paper's layout
OTHER = "other"  # every other pair, a panel (or a row of panels) each


def paper_pair(problem: str, network: str) -> bool:
    """Whether the paper's figures show ``(problem, network)`` (``network``:
    an architecture, or a width-study family)."""
    return (problem.startswith("mnist-") and network in (VGG, FC, MEGA)) or (problem, network) == (CIFAR, VGG)


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
# specs


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

    @property
    def pair(self) -> tuple[str, str]:
        """The (problem, network) it draws; the network is the width study's family where it has one."""
        where = dict(self.where)
        return where["problem"], where.get("architecture", where.get("family"))


def curve(quantity: str, hue: str, dash: str | None = None, marker: str | None = None, **where: Any) -> Curve:
    return Curve(quantity, tuple(sorted(where.items())), hue, dash, marker)


@dataclass(frozen=True)
class Panel:
    title: str
    curves: tuple[Curve, ...]
    ylabel: str | None = None
    log_y: bool = False


@dataclass(frozen=True)
class FigureSpec:
    fig: str  # registry id, "fig01"
    number: int
    stem: str  # the figure files' name without suffix, "fig01_svm_error_vs_epochs"
    title: str
    caption: str  # what the figure shows, panel by panel (the report adds how it is drawn)
    study: str  # the study whose rows it draws (epochs, learning_rate, width)
    category: str  # report category
    x: str  # "epoch" | "learning_rate" | "n_params" | "eigen_index"
    ylabel: str
    svm_errors: bool = False  # draws SVM test errors (hollow where a kernel is not separable)
    max_epoch: float | None = None
    pairs: str = PAPER  # PAPER | OTHER

    @property
    def rule(self) -> str:
        return f"figure_{self.fig}"

    @property
    def paper_fig(self) -> str:
        """The id of the paper's figure it is or repeats for other pairs: ``"fig02"``."""
        return f"fig{self.number:02d}"

    @property
    def label(self) -> str:
        """How the figure names itself: "Figure 2", "Figure 2, other pairs"."""
        return f"Figure {self.number}" + (", other pairs" if self.pairs == OTHER else "")

    def panels(self, summary: pd.DataFrame) -> list[Panel]:
        """The figure's panels for the pairs of ``summary`` (the summary
        table, long format): :func:`afterkernel.figures.panels.figure_panels`."""
        from afterkernel.figures.panels import figure_panels  # imports pandas: only when drawing

        return figure_panels(self, summary)


_FIVE_TEXT = ("(a) VGG-like, MNIST 3-vs-8; (b) VGG-like, MNIST 5-vs-6; (c) fully connected, MNIST 3-vs-8; "
              "(d) fully connected, MNIST 5-vs-6; (e) VGG-like, CIFAR-10 cats-vs-dogs")
_EPOCHS = "as a function of the number of epochs the network was trained (0 = the FNTK)"
_LR = ("as a function of the learning rate, each network trained until its training loss is at most "
       "the loss target or the epoch cap is reached; hollow markers: not every run reached the target "
       "(the footnote counts them)")
_INV = ("average cosine similarity, over the test images, between the after-kernel features of an image "
        "and of its perturbation")
_OFF_SCALE = ("The network's test error at initialisation (about 0.5) is off the scale where the panel says "
              "\"network at epoch 0\" (its value is written there).")

#: the report's sections in the study's order (the report sorts its sections by name)
REPORT_SECTIONS = ("What this run reproduces", "Epochs study", "Learning-rate study", "Width study", "Augmentation",
                   "Beyond the paper", "Tables")


def report_sections(studies: dict) -> tuple[str, ...]:
    """The report's sections of a config's ``studies``, in :data:`REPORT_SECTIONS`' order."""
    drawn = {spec.category for spec in drawn_figures(studies)}
    return tuple(s for s in REPORT_SECTIONS if s in drawn or s in (REPORT_SECTIONS[0], REPORT_SECTIONS[-1]))


def report_section(category: str, sections: tuple[str, ...] = REPORT_SECTIONS) -> str:
    """The report category of ``category``, numbered by its place among ``sections``
    (the report sorts its sections by name); a section not drawn keeps its name."""
    return f"{sections.index(category) + 1}. {category}" if category in sections else category


def report_labels(spec: "FigureSpec") -> dict[str, str]:
    """The labels naming a figure in the report's table of its section."""
    number = str(spec.number) if spec.pairs == PAPER else f"{spec.number}, pairs the paper does not show"
    return {"figure": number, "shows": spec.title}


BEYOND = "Beyond the paper"
_BEYOND = "Beyond the paper: measured on this study's runs, not a figure of the paper. "

_SPECS = [
    dict(stem="svm_error_vs_epochs", study="epochs", category="Epochs study", x="epoch",
         ylabel="SVM test error (after kernel)", svm_errors=True,
         title="SVM test error of the after kernel vs training epochs",
         caption=f"Test error of the hard-margin SVM with the after kernel, {_EPOCHS}. (a) MNIST 3-vs-8 and "
                 "5-vs-6, fully connected and VGG-like networks; (b) CIFAR-10 cats-vs-dogs, VGG-like network."),
    dict(stem="svm_vs_nn_error", study="epochs", category="Epochs study", x="epoch", ylabel="Test error",
         svm_errors=True, title="SVM (after kernel) and network test error vs training epochs",
         caption="Test error of the hard-margin SVM with the after kernel and of the neural network that "
                 f"produced the kernel, {_EPOCHS}. {_FIVE_TEXT}. {_OFF_SCALE}"),
    dict(stem="svm_vs_nn_error_early", study="epochs", category="Epochs study", x="epoch", ylabel="Test error",
         svm_errors=True, max_epoch=EARLY_EPOCHS,
         title=f"As Figure 2, early epochs (0-{EARLY_EPOCHS})",
         caption=f"As Figure 2, restricted to the early stage of training (epochs 0 to {EARLY_EPOCHS}): the "
                 f"kernel is learned first, then the network. {_FIVE_TEXT}. {_OFF_SCALE}"),
    dict(stem="swap_invariance_vs_epochs", study="epochs", category="Epochs study", x="epoch",
         ylabel="Swap invariance (cosine)",
         title="Swap invariance of the after kernel vs training epochs",
         caption=f"Swap invariance ({_INV}, the perturbation exchanging the upper-left and lower-right "
                 f"quadrants), {_EPOCHS}. (a) VGG-like, MNIST 3-vs-8 and 5-vs-6; (b) fully connected, MNIST; "
                 "(c) VGG-like, CIFAR-10 cats-vs-dogs; (d) mega-VGG-like, MNIST 3-vs-8."),
    dict(stem="invariances_vs_epochs", study="epochs", category="Epochs study", x="epoch",
         ylabel="Invariance (cosine)",
         title="Translation, zoom and rotation invariance vs training epochs",
         caption=f"Translation (1-pixel shifts), zoom and rotation (1/4 radian) invariance ({_INV}), "
                 f"{_EPOCHS}. (a) VGG-like, MNIST 3-vs-8 and 5-vs-6 (3 invariances x 2 problems); (b) fully "
                 "connected, MNIST; (c) VGG-like, CIFAR-10 cats-vs-dogs; (d) mega-VGG-like, MNIST 3-vs-8."),
    dict(stem="alignment_vs_epochs", study="epochs", category="Epochs study", x="epoch",
         ylabel="Alignment, after vs conjugate kernel",
         title="Alignment of the after kernel and its conjugate projection vs training epochs",
         caption="Kernel alignment <G,H> / (‖G‖ ‖H‖) (uncentred, Frobenius) of the test-set Gram matrices of "
                 f"the after kernel and of its conjugate projection, {_EPOCHS}. (a) VGG-like and mega-VGG-like "
                 "networks, MNIST; (b) fully connected, MNIST 3-vs-8 and 5-vs-6; (c) VGG-like, CIFAR-10 "
                 "cats-vs-dogs."),
    dict(stem="after_vs_conjugate_error_vs_epochs", study="epochs", category="Epochs study", x="epoch",
         ylabel="SVM test error", svm_errors=True,
         title="SVM test error, after kernel vs conjugate kernel, vs training epochs",
         caption="Test error of hard-margin SVMs with the after kernel and with its conjugate projection, "
                 f"{_EPOCHS}. {_FIVE_TEXT}."),
    dict(stem="augmentation_invariances_vs_epochs", study="epochs", category="Augmentation", x="epoch",
         ylabel="Invariance (cosine)",
         title="Invariances with and without data augmentation vs training epochs",
         caption=f"Translation, zoom and rotation invariance of the after kernel, {_EPOCHS}, for networks "
                 "trained without (solid) and with (dashed) data augmentation (random rotations and 1-pixel "
                 "shifts). (a) VGG-like, MNIST; (b) fully connected, MNIST; (c) VGG-like, CIFAR-10 "
                 "cats-vs-dogs; (d) mega-VGG-like, MNIST 3-vs-8."),
    dict(stem="svm_vs_nn_error_vs_lr", study="learning_rate", category="Learning-rate study", x="learning_rate",
         ylabel="Test error", svm_errors=True,
         title="SVM (after kernel) and network test error vs learning rate",
         caption="Test error of the hard-margin SVM with the after kernel and of the neural network that "
                 f"produced the kernel, {_LR}. {_FIVE_TEXT}."),
    dict(stem="swap_invariance_vs_lr", study="learning_rate", category="Learning-rate study", x="learning_rate",
         ylabel="Swap invariance (cosine)",
         title="Swap invariance of the after kernel vs learning rate",
         caption=f"Swap invariance of the after kernel ({_INV}, upper-left and lower-right quadrants "
                 f"exchanged), {_LR}. (a) MNIST problems, fully connected and VGG-like; (b) VGG-like, "
                 "CIFAR-10 cats-vs-dogs."),
    dict(stem="invariances_vs_lr", study="learning_rate", category="Learning-rate study", x="learning_rate",
         ylabel="Invariance (cosine)",
         title="Translation, zoom and rotation invariance vs learning rate",
         caption=f"Invariances of the after kernel ({_INV}), {_LR}. (a) translation, (b) zoom, (c) rotation "
                 "invariance on the MNIST problems (fully connected and VGG-like); (d) VGG-like, CIFAR-10 "
                 "cats-vs-dogs, all three."),
    dict(stem="alignment_vs_lr", study="learning_rate", category="Learning-rate study", x="learning_rate",
         ylabel="Alignment, after vs conjugate kernel",
         title="Alignment of the after kernel and its conjugate projection vs learning rate",
         caption="Kernel alignment of the test-set Gram matrices of the after kernel and its conjugate "
                 f"projection for the MNIST and CIFAR-10 architecture/problem pairs, {_LR}."),
    dict(stem="after_vs_conjugate_error_vs_lr", study="learning_rate", category="Learning-rate study",
         x="learning_rate", ylabel="SVM test error", svm_errors=True,
         title="SVM test error, after kernel vs conjugate kernel, vs learning rate",
         caption="Test error of hard-margin SVMs with the after kernel and with its conjugate projection, "
                 f"{_LR}. {_FIVE_TEXT}."),
    dict(stem="augmentation_invariances_vs_lr", study="learning_rate", category="Augmentation", x="learning_rate",
         ylabel="Invariance (cosine)",
         title="Invariances with and without data augmentation vs learning rate",
         caption=f"Invariances of the after kernel for networks trained without and with data augmentation, "
                 f"{_LR}. (a) translation, (b) zoom, (c) rotation invariance on the MNIST problems; "
                 "(d) VGG-like, CIFAR-10 cats-vs-dogs, all three."),
    dict(stem="nn_error_vs_params", study="width", category="Width study", x="n_params",
         ylabel="Network test error",
         title="Network test error vs number of parameters",
         caption="Test error of the neural networks as a function of their number of parameters (widths "
                 "scaled to about 60K, 80K and 100K parameters), per architecture family and number of "
                 "training epochs (Appendix A). (a) MNIST problems; (b) CIFAR-10 cats-vs-dogs."),
    dict(stem="augmentation_errors", study="epochs", category="Augmentation", x="epoch", ylabel="Test error",
         svm_errors=True, title="Test error with and without data augmentation",
         caption="Test error of the hard-margin SVM with the after kernel and of the network that produced "
                 f"it, without and with data augmentation, {_EPOCHS} (Appendix B). (a) VGG-like, MNIST; "
                 f"(b) fully connected, MNIST; (c) VGG-like, CIFAR-10 cats-vs-dogs. {_OFF_SCALE}"),
    dict(stem="kernel_distance_vs_epochs", study="epochs", category=BEYOND, x="epoch",
         ylabel="Kernel distance", title="How far and how fast the kernel moves: kernel distance to the FNTK "
                                         "and kernel velocity vs training epochs",
         caption=f"{_BEYOND}Kernel distance 1 − <K_t,K_0> / (‖K_t‖ ‖K_0‖) (Fort et al. 2020) of the "
                 f"test-sample Gram matrix at epoch t to the FNTK (epoch 0), {_EPOCHS}, and kernel velocity: "
                 "the angle arccos(1 − d) from the previous snapshot divided by the SGD steps between them "
                 "(Fort et al.'s velocity; steps = epochs × ⌈n_train / batch size⌉), drawn at the later snapshot "
                 "(none at epoch 0; log scale). (a) after kernel, (b) conjugate kernel: "
                 "distance to the FNTK; (c), (d) their velocity. Distances to or from a diverged snapshot are NaN "
                 "and not drawn."),
    dict(stem="spectrum_vs_epochs", study="epochs", category=BEYOND, x="eigen_index",
         ylabel="λ_i / trace (log)", title="Spectrum of the kernel's train Gram matrix, one line per epoch",
         caption=f"{_BEYOND}The largest eigenvalues λ_1 ≥ λ_2 ≥ ... of the train Gram matrix (block Krylov; "
                 "the conjugate kernel's exact, top 50 stored per snapshot; drawn at i = 1, 2, 3, 5, 10, 20, 50) divided by its trace, "
                 "log-log, one colour per snapshot epoch (0 = the FNTK), solid: after kernel, dashed: "
                 "conjugate kernel; one panel per (problem, network) of the epochs study without "
                 "augmentation. A spectrum that concentrates (Baratin et al. 2021) rises at small i and "
                 "falls at large i."),
    dict(stem="target_alignment_vs_epochs", study="epochs", category=BEYOND, x="epoch",
         ylabel="Kernel-target alignment",
         title="Kernel-target alignment vs training epochs",
         caption=f"{_BEYOND}Kernel-target alignment sᵀKs / (‖K‖ ‖s‖²) with labels s = ±1 on the test "
                 f"sample, {_EPOCHS}: (a) after kernel, (b) conjugate kernel, uncentred; (c), (d) the same "
                 "centred (the Gram matrix and s centred over the sample; Cortes et al. 2012), the measure "
                 "Baratin et al. 2021 find rising with training."),
    dict(stem="kernel_evolution_vs_lr", study="learning_rate", category=BEYOND, x="learning_rate",
         ylabel="Value", title="Spectrum concentration and kernel-target alignment of the after kernel vs "
                               "learning rate",
         caption=f"{_BEYOND}For the after kernel of each network trained to the loss target, {_LR}: (a) "
                 "the fraction of the train Gram's trace held by its top 10 eigenvalues; (b) kernel-target "
                 "alignment, uncentred; (c) centred. The learning-rate study keeps only the final snapshot of "
                 "each run (no FNTK, no earlier snapshot), so its kernel distances and velocity are NaN "
                 "and not drawn."),
]

#: Figure id ("fig01" ... "fig20") -> its spec.
FIGURES: dict[str, FigureSpec] = {}
for _i, _spec in enumerate(_SPECS, start=1):
    _id = f"fig{_i:02d}"
    FIGURES[_id] = FigureSpec(fig=_id, number=_i, **{**_spec, "stem": f"{_id}_{_spec['stem']}"})
del _i, _spec, _id

_X_TEXT = {"epochs": _EPOCHS, "learning_rate": _LR,
           "width": "as a function of the number of parameters, per number of training epochs"}
_PAPER_PAIRS_TEXT = ("the VGG-like, fully connected and mega-VGG-like networks on MNIST problems, the VGG-like "
                     "network on CIFAR-10 cats-vs-dogs")


def _other_pairs_spec(spec: FigureSpec) -> FigureSpec:
    """Figure ``spec`` for the pairs the paper does not show."""
    network = "family" if spec.study == "width" else "network"
    caption = (f"The quantities of Figure {spec.number} for each (problem, {network}) pair of this config's "
               f"{STUDY_NAMES[spec.study]} that the paper's figures do not show (the paper's: "
               f"{_PAPER_PAIRS_TEXT}; those are in Figure {spec.number}), {_X_TEXT[spec.study]}. Each pair has "
               f"its own panel, or one per quantity where the figure has several, titled {network}, problem.")
    if _OFF_SCALE in spec.caption:  # the same annotation
        caption += f" {_OFF_SCALE}"
    return replace(spec, fig=f"{spec.fig}_{OTHER}", stem=other_pairs_stem(spec.stem), caption=caption,
                   pairs=OTHER)


#: Figure id ("fig01_other" ...) -> the spec of that figure for the pairs the paper does not show.
OTHER_PAIRS: dict[str, FigureSpec] = {s.fig: s for s in map(_other_pairs_spec, FIGURES.values())}


def drawn_figures(studies: dict[str, dict]) -> list[FigureSpec]:
    """The figures the config's ``studies`` draw: each figure of a study with
    one of the paper's pairs, and its :data:`OTHER_PAIRS` figure when the
    study has another pair."""
    out = []
    for fig, spec in FIGURES.items():
        kinds = {paper_pair(*pair) for pair in studies.get(spec.study, {}).get("pairs", ())}
        if True in kinds:
            out.append(spec)
        if False in kinds:
            out.append(OTHER_PAIRS[f"{fig}_{OTHER}"])
    return out


def index_markdown() -> str:
    """A Markdown table of the figures (id, file, study, rule, title): the
    figure index of docs/figures.md."""
    lines = ["| figure | file | study | rule | shows |", "|---|---|---|---|---|"]
    for f in FIGURES.values():
        png = figure_files(f.stem)[0]
        lines.append(f"| {f.number} | `{png}` | {STUDY_NAMES[f.study]} | `{f.rule}` | {f.title} |")
    return "\n".join(lines) + "\n"
