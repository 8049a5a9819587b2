"""Drawing Figures 1-20 with matplotlib, and the figure job.

:func:`draw_figure` reads the summary table, draws one figure and writes it
as PNG and SVG (and its report caption, which lists what each panel drew),
atomically. Each curve is the mean over seeds; vs epochs a line with a
shaded band, vs learning rate or number of parameters a line with error
bars, band and bars being the 95 % t-interval of the mean (absent with fewer
than two seeds). Learning-rate axes are logarithmic. Colours, line styles
and markers each encode one variable of the panel and the legend lists each
variable's levels once. Hollow markers flag points where some seed's kernel
was not separable, its solver stopped early or its run missed the loss
target. A panel with no rows in the summary says "not in this config"
instead of failing; one whose rows hold no finite value (every run diverged)
says so.

The figures use matplotlib's Agg canvas directly (no pyplot state), a fixed
SVG hash salt and no dates in the files, so the same summary gives the same
bytes.
"""

from __future__ import annotations

import logging
import math
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from afterkernel.aggregate import read_summary
from afterkernel.figures.captions import report_caption
from afterkernel.figures.points import PANEL_INDEX_COLUMNS, curve_data, panel_index, panel_status, with_family
from afterkernel.figures.registry import FIGURES, OTHER_PAIRS, X_LABELS, Curve, FigureSpec, Panel
from afterkernel.io import atomic_file, atomic_write_text
from afterkernel.vocabulary import CONJUGATE, dataset_of

log = logging.getLogger(__name__)

DASHES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_SALT = "afterkernel"

#: hollow-marker flags of :func:`~afterkernel.figures.points.curve_data` -> legend text
FLAG_LABELS = {"not_separable": "hollow: kernel not separable\n(some seed; no hard-margin SVM)",
               "not_converged": "hollow: SVM solver stopped\nabove its gap tolerance (some seed)",
               "unreached": "hollow: loss target not reached\n(some run)"}


def _rc() -> dict[str, Any]:
    rc = dict(sns.axes_style("whitegrid"))
    rc.update(sns.plotting_context("paper", font_scale=1.0))
    rc.update({"svg.hashsalt": _SALT, "svg.fonttype": "path", "font.family": "DejaVu Sans",
               "axes.titlesize": 9.5, "axes.labelsize": 9, "legend.fontsize": 7,
               "xtick.labelsize": 8, "ytick.labelsize": 8, "path.simplify": False})
    return rc


@dataclass(frozen=True)
class _Styles:
    """The figure's colour, line style and marker for each level."""

    color: dict[str, Any]
    dash: dict[str, Any]
    marker: dict[str, str]

    @classmethod
    def of(cls, panels: Sequence[Panel]) -> _Styles:
        hues, dashes, markers = (_levels(panels, a) for a in ("hue", "dash", "marker"))
        palette = sns.color_palette("colorblind", max(len(hues), 1))
        return cls(color={h: palette[i % len(palette)] for i, h in enumerate(hues)},
                   dash={d: DASHES[i % len(DASHES)] for i, d in enumerate(dashes)},
                   marker={m: MARKERS[i % len(MARKERS)] for i, m in enumerate(markers)})


def _levels(panels: Sequence[Panel], attr: str) -> list[str]:
    return list(dict.fromkeys(getattr(c, attr) for p in panels for c in p.curves if getattr(c, attr) is not None))


@dataclass
class _Drawn:
    """What a figure's panels drew: the seed counts per point and the flags."""

    counts: set[int] = field(default_factory=set)
    flags: set[str] = field(default_factory=set)


@dataclass
class _PanelDrawn:
    """What a panel's curves drew, for its axes and legend."""

    curves: list[Curve] = field(default_factory=list)
    counts: set[int] = field(default_factory=set)
    flags: set[str] = field(default_factory=set)
    xs: set[float] = field(default_factory=set)
    scale_points: list[float] = field(default_factory=list)  # the values the y range must show
    init_nn: list[tuple[float, Any]] = field(default_factory=list)  # (NN error at epoch 0, colour): may go off scale


# --------------------------------------------------------------------------
# a figure


def _layout(n: int) -> tuple[int, int]:
    return {1: (1, 1), 2: (1, 2), 3: (1, 3), 4: (2, 2)}.get(n, (math.ceil(n / 3), 3))


def _seed_note(counts: set[int]) -> str:
    if not counts:
        return ""
    lo, hi = min(counts), max(counts)
    n = f"n = {lo}" if lo == hi else f"n = {lo}-{hi}"
    return f"mean over {n} seed{'s' if hi > 1 else ''} per point"


def _unreached_note(summary: pd.DataFrame, training: dict | None) -> str:
    """How many learning-rate runs of the summary missed the loss target."""
    r = summary[(summary["study"] == "learning_rate") & (summary["quantity"] == "reached_target")
                & (summary["kernel"] != CONJUGATE)]
    total = int(r["count"].sum())
    missed = int(round(float(((1 - r["mean"]) * r["count"]).sum())))
    if not missed:
        return ""
    t = training or {}
    within = (f"training loss <= {t['loss_target']:g} within {t['max_epochs']} epochs"
              if "loss_target" in t and "max_epochs" in t else "the loss target within the epoch cap")
    return f"{missed} of {total} learning-rate runs did not reach {within}"


def _data_note(summary: pd.DataFrame, pairs: set[tuple[str, str]]) -> str:
    """The training and test images behind each drawn pair, when they differ
    between pairs (a subset next to the full data: data.caps)."""
    n = summary[summary["quantity"].isin(("n_train", "n_test"))]
    if n.empty or not pairs:
        return ""
    sizes = {}
    for (problem, arch), rows in n.groupby(["problem", "architecture"]):
        if (problem, arch) in pairs:
            mean = rows.groupby("quantity")["mean"].max()
            sizes[problem, arch] = (mean.get("n_train", math.nan), mean.get("n_test", math.nan))
    if len({v for v in sizes.values()}) < 2:
        return ""
    return "images (train/test): " + "; ".join(f"{a}, {p}: {t:,.0f}/{m:,.0f}"
                                               for (p, a), (t, m) in sorted(sizes.items()))


def figure_of(spec: FigureSpec, summary: pd.DataFrame, training: dict | None = None,
              dataset_notes: Mapping[str, str] | None = None) -> tuple[Figure, list[str], pd.DataFrame]:
    """Figure ``spec`` drawn from the summary table, the notes of the panels
    drawn empty and the panel index (:func:`~afterkernel.figures.points.panel_index`
    of every panel). ``training``: the config's ``loss_target`` and
    ``max_epochs``, for the note on unreached targets; ``dataset_notes``: data
    set -> a line for the footnote of a figure drawing one of its problems
    (what the numbers of a published run stand on, e.g. JPEG-derived pixels)."""
    summary = with_family(summary)
    panels = spec.panels(summary)
    summary = summary[summary["study"] == spec.study]  # every curve is of the figure's study
    styles = _Styles.of(panels)
    with matplotlib.rc_context(_rc()):
        nrows, ncols = _layout(len(panels))
        width = max(5.0 * ncols, 7.0)
        fig = Figure(figsize=(width, 3.2 * nrows + 0.7), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax in axes[len(panels):]:
            ax.set_axis_off()
        notes, index = [], []
        drawn = _Drawn()
        for ax, panel in zip(axes, panels):
            data = {c: curve_data(summary, spec, c) for c in panel.curves}
            note = _draw_panel(ax, spec, panel, data, summary, styles, drawn)
            if note is not None:
                notes.append(f"{panel.title}: {note}")
            index += panel_index(summary, spec, panel, data)
        band = "shaded band" if spec.x == "epoch" else "error bars"
        lines = [f"{_seed_note(drawn.counts) or 'mean over seeds'}; {band}: 95 % t-interval of the mean"]
        if "unreached" in drawn.flags:
            lines.append(_unreached_note(summary, training))
        pairs = {c.pair for p in panels for c in p.curves}
        lines.append(_data_note(summary, pairs))
        present = set(zip(summary["problem"], summary["architecture"]))
        drawn_sets = {dataset_of(problem) for problem, arch in pairs if (problem, arch) in present}
        lines += [note for name, note in sorted((dataset_notes or {}).items()) if name in drawn_sets]
        footnote = "\n".join(line for line in lines if line)
        fig.suptitle(textwrap.fill(f"{spec.label}: {spec.title}", int(width * 11)), fontsize=11)
        fig.supxlabel(footnote, fontsize=7, color="0.35", x=0.99, ha="right")
    return fig, notes, pd.DataFrame(index, columns=PANEL_INDEX_COLUMNS)


# --------------------------------------------------------------------------
# a panel


def _draw_panel(ax, spec: FigureSpec, panel: Panel, data: dict[Curve, pd.DataFrame], summary: pd.DataFrame,
                styles: _Styles, drawn: _Drawn) -> str | None:
    """Draw ``panel``, whose curves' points are ``data``, on ``ax`` (recording
    seed counts and flags in ``drawn``); return the note drawn instead, if any."""
    ax.set_title(panel.title, loc="left")
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
    here = _PanelDrawn()
    for c in panel.curves:
        if len(data[c]):
            _plot_curve(ax, spec, c, data[c], styles, is_error, here)
    drawn.counts |= here.counts
    drawn.flags |= here.flags
    ax.set_xlabel(X_LABELS[spec.x])
    ax.set_ylabel(ylabel)
    if panel.log_y:
        ax.set_yscale("log", nonpositive="clip")
    _format_x_axis(ax, spec.x, sorted(here.xs))
    if is_error:
        _fit_error_axis(ax, here.scale_points, here.init_nn)
    _legend(ax, here.curves, styles, here.flags)
    return None


def _plot_curve(ax, spec: FigureSpec, c: Curve, d: pd.DataFrame, styles: _Styles, is_error: bool,
                here: _PanelDrawn) -> None:
    """One curve's line with its band (vs epochs) or error bars, and white
    markers over its flagged points; records what it drew in ``here``."""
    here.curves.append(c)
    here.xs.update(d["x"])
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
            here.flags.add(flag)
            hollow |= d[flag].to_numpy(bool)
    if hollow.any():  # white-faced markers over the filled ones
        ax.plot(x[hollow], m[hollow], linestyle="none", marker=style["marker"], markersize=4.5,
                markerfacecolor="white", markeredgecolor=col, markeredgewidth=1.1, zorder=4)
    here.counts.update(int(n) for n in d["count"])
    at_init = (x == 0) & (c.quantity == "nn_test_error") & (spec.x == "epoch")
    here.scale_points += list(np.where(ok, hi, m)[~at_init])
    here.init_nn += [(v, col) for v in m[at_init]]


def _format_x_axis(ax, x: str, ticks: list[float]) -> None:
    """Learning rates and eigenvalue indices: a log axis with a tick per value; numbers of
    parameters: thousands ("60K"); epochs: integer ticks."""
    if x == "eigen_index":  # a few indices from 1 to 50: log axis, a tick at each
        ax.set_xscale("log")
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
    elif x == "learning_rate":
        ax.set_xscale("log")
        lo_x, hi_x = ticks[0] / (2 if len(ticks) == 1 else 1.4), ticks[-1] * (2 if len(ticks) == 1 else 1.4)
        ax.set_xlim(lo_x, hi_x)
        ax.set_xticks(ticks)
        ax.set_xticklabels(_sparse_labels(ticks, math.log10(hi_x / lo_x)))
        ax.xaxis.set_minor_locator(NullLocator())
    elif x == "n_params":
        lo_x, hi_x = ticks[0], ticks[-1]
        pad = 0.08 * (hi_x - lo_x) if hi_x > lo_x else 0.1 * hi_x
        ax.set_xlim(lo_x - pad, hi_x + pad)
        digits = 0 if hi_x - lo_x + 2 * pad >= 8e3 else 1 if hi_x - lo_x + 2 * pad >= 8e2 else 2
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e3:.{digits}f}K"))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        span = max(ticks[-1], 1.0)
        ax.set_xlim(ticks[0] - 0.02 * span, ticks[-1] + 0.02 * span)
        if len(ticks) == 1:  # the locator would label fractions around the one epoch
            ax.set_xticks(ticks)


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


def _fit_error_axis(ax, scale_points: list[float], init_nn: list[tuple[float, Any]]) -> None:
    """Errors from 0. The network's error at initialisation (about 0.5)
    would squash the curves: the y range is set by the other points and the
    off-scale values are written at the top edge (as the paper's plots,
    whose error axes stop at a few per cent)."""
    ax.set_ylim(bottom=0)
    finite = [v for v in scale_points if np.isfinite(v)]
    if not (finite and init_nn):
        return
    top = 1.12 * max(finite)
    off = sorted(v for v, _ in init_nn if v > top)
    if off:
        ax.set_ylim(0, top)
        cols = {tuple(col) for v, col in init_nn if v > top}
        text = f"{off[0]:.2f}" if off[-1] - off[0] < 0.005 else f"{off[0]:.2f}-{off[-1]:.2f}"
        ax.annotate(f"\u2191 network at epoch 0: {text}", xy=(0.0, top), xytext=(5, -3),
                    textcoords="offset points", ha="left", va="top", fontsize=7,
                    color=cols.pop() if len(cols) == 1 else "0.3")


def _legend(ax, drawn: Sequence[Curve], styles: _Styles, flags: set[str] = frozenset()) -> None:
    """Beside the panel: the colours' levels, then one entry per level of the
    line styles and markers that vary in the panel, then the hollow-marker
    flags the panel shows."""
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


# --------------------------------------------------------------------------
# the job


def _spec(fig: str) -> FigureSpec:
    specs = {**FIGURES, **OTHER_PAIRS}
    if fig not in specs:
        raise KeyError(f"unknown figure {fig!r}; known: {', '.join(specs)}")
    return specs[fig]


def _save(fig: Figure, path: str | os.PathLike, fmt: str, **kwargs: Any) -> None:
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        fig.savefig(f, format=fmt, **kwargs)


def draw_figure(summary: pd.DataFrame | str | os.PathLike, fig: str, png: str | os.PathLike | None = None,
                svg: str | os.PathLike | None = None, caption: str | os.PathLike | None = None,
                training: dict | None = None, dpi: int = 150,
                dataset_notes: Mapping[str, str] | None = None) -> list[str]:
    """Draw figure ``fig`` (``"fig01"`` ..., ``"fig01_other"`` ...) from
    ``summary`` (the summary table or the path of ``summary.csv``) into
    ``png`` and/or ``svg``, and write its report caption
    (:func:`~afterkernel.figures.captions.report_caption`, naming ``png`` and
    the summary's path, with the panel index) to ``caption``; every file is
    written atomically. ``training`` (``loss_target``, ``max_epochs``) words
    the note on unreached targets; ``dataset_notes``: see :func:`figure_of`.
    Returns the notes of the panels drawn empty (also logged)."""
    spec = _spec(fig)
    if caption is not None and (png is None or isinstance(summary, pd.DataFrame)):
        raise ValueError("a report caption names the PNG and the summary's path: give both")
    log.info("%s (%s): %s, from %s", spec.label, fig, spec.title,
             "a table" if isinstance(summary, pd.DataFrame) else summary)
    table = summary if isinstance(summary, pd.DataFrame) else read_summary(summary)
    figure, notes, index = figure_of(spec, table, training, dataset_notes)
    with matplotlib.rc_context(_rc()):
        if png is not None:
            _save(figure, png, "png", dpi=dpi, metadata={"Software": None})
        if svg is not None:
            _save(figure, svg, "svg", metadata={"Date": None, "Creator": None})
    if caption is not None:
        atomic_write_text(caption, report_caption(spec, str(png), str(summary), index))
    for note in notes:
        log.warning("panel %s", note)
    log.info("wrote %s", ", ".join(str(p) for p in (png, svg, caption) if p is not None))
    return notes


def draw_figures(summary: str | os.PathLike, figures: Mapping[str, Mapping[str, Any]],
                 training: dict | None = None) -> dict[str, list[str]]:
    """:func:`draw_figure` for each figure id of ``figures``, whose value
    holds its files (keywords ``png``, ``svg``, ``caption``). Returns each
    figure's notes."""
    return {fig: draw_figure(summary, fig, training=training, **files) for fig, files in figures.items()}


def figures_in(outdir: str | os.PathLike, figs: Sequence[str] = ()) -> dict[str, dict[str, Path]]:
    """The files of figures ``figs`` (default: all) in ``outdir``, named by
    their stems: ``{fig: {"png": outdir/stem.png, "svg": outdir/stem.svg}}``."""
    stems = {fig: _spec(fig).stem for fig in figs or FIGURES}
    return {fig: {"png": Path(outdir) / f"{stem}.png", "svg": Path(outdir) / f"{stem}.svg"}
            for fig, stem in stems.items()}
