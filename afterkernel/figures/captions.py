"""A figure's caption in the Snakemake report, from the registry.

:func:`report_caption` gives reStructuredText with Jinja placeholders, which
``snakemake --report`` renders against the run's config (``snakemake.config``):
the figure's title and caption (:class:`~afterkernel.figures.registry.FigureSpec`),
how its points and intervals are drawn, the config of its study, the data and
solver, the files, and the panel index (what each panel drew, pair by pair,
as a ``csv-table``). The figure rule writes it beside the figure, so the
registry is the caption's one source.
"""

from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING

from afterkernel.figures.registry import FigureSpec

if TYPE_CHECKING:
    import pandas as pd

_SEEDS = ("Each point is the mean over those of the config's {{ snakemake.config[\"seeds\"] | length }} seed(s) "
          "({{ snakemake.config[\"seeds\"] | join(\", \") }}) that have a value (the footnote gives n per point), "
          "one training run per seed; ")
_BAND = {True: "the shaded band is", False: "the error bars are"}  # by spec.x == "epoch"
_INTERVAL = (" the two-sided 95 % confidence interval of the mean from the t distribution (absent with a "
             "single seed).")
_HOLLOW_SVM = (" Hollow SVM markers: for some seed the kernel is not separable (no hard-margin SVM exists; the "
               "error is that of the fallback classifier, see docs/solvers.md) or the solver stopped above its gap "
               "tolerance.")
_EMPTY_PANEL = " A panel whose networks or problems the config does not train says \"not in this config\"."

_PAIRS = ("pairs {% for p in s.get(\"pairs\", []) %}{{ p[0] }}/{{ p[1] }}{{ \", \" if not loop.last }}"
          "{% endfor %}")
_STUDY_CONFIG = {
    "epochs": ("{% set s = snakemake.config[\"studies\"].get(\"epochs\", {}) %}Config (epochs study): snapshots "
               "after epochs {{ s.get(\"epochs\", []) | join(\", \") }} at learning rate "
               "{{ snakemake.config[\"training\"][\"learning_rate\"] }}; " + _PAIRS + "; augmentation "
               "{{ s.get(\"augmentation\", []) | join(\", \") }}."),
    "learning_rate": ("{% set s = snakemake.config[\"studies\"].get(\"learning_rate\", {}) %}Config "
                      "(learning-rate study): each network trained until its training loss is at most "
                      "{{ snakemake.config[\"training\"][\"loss_target\"] }} (at most "
                      "{{ snakemake.config[\"training\"][\"max_epochs\"] }} epochs); learning rates "
                      "{% for d, r in s.get(\"learning_rates\", {}).items() %}{{ d }}: {{ r | join(\", \") }}"
                      "{{ \"; \" if not loop.last }}{% endfor %}; " + _PAIRS + "; augmentation "
                      "{{ s.get(\"augmentation\", []) | join(\", \") }}."),
    "width": ("{% set s = snakemake.config[\"studies\"].get(\"width\", {}) %}Config (width study): families "
              "{% for f, a in s.get(\"families\", {}).items() %}{{ f }} = {{ a | join(\", \") }}"
              "{{ \"; \" if not loop.last }}{% endfor %}; " + _PAIRS + "; after epochs "
              "{{ s.get(\"epochs\", []) | join(\", \") }} at learning rate "
              "{{ snakemake.config[\"training\"][\"learning_rate\"] }}; no augmentation."),
}
_AUGMENTATION = (" Augmentation: random rotations up to "
                 "±{{ snakemake.config[\"training\"][\"augmentation\"][\"rotation_degrees\"] }} degrees and shifts "
                 "up to ±{{ snakemake.config[\"training\"][\"augmentation\"][\"shift_pixels\"] }} pixel(s).")

_DATA = ("Data: problems {{ snakemake.config[\"problems\"] | join(\", \") }} ("
         "{% for name, d in (snakemake.config.get(\"datasets\") or {}).items() %}{{ name }}: {{ d[\"source\"] }} "
         "source; {% endfor %}mnist, cifar10: {{ snakemake.config[\"data\"][\"source\"] }} source); SGD with "
         "batch size {{ snakemake.config[\"training\"][\"batch_size\"] }}.")
_KERNELS = (" Hard-margin SVM without bias: solver {{ snakemake.config[\"svm\"][\"solver\"] }}; invariances and "
            "alignment on {{ \"all\" if snakemake.config[\"kernels\"][\"test_sample\"] is none else \"a seeded "
            "sample of \" ~ snakemake.config[\"kernels\"][\"test_sample\"] ~ \", half of each class, of the\" }} "
            "test images.")


#: the panel index's header in the caption (``seeds``: per point, "2" or "2-3")
INDEX_HEADER = ("panel", "problem", "network", "curves", "points", "seeds", "status")


def _seeds(lo: int, hi: int) -> str:
    if not hi:  # nothing drawn
        return ""
    return str(hi) if lo == hi else f"{lo}-{hi}"


def rst_text(text: str) -> str:
    """``text`` read literally as reStructuredText: markup characters escaped,
    and a leading "(a)" not read as a list item."""
    escaped = re.sub(r"([\\`*_|<>\[\]])", r"\\\1", text)
    return "\\" + escaped if escaped.startswith("(") else escaped


def index_table(index: pd.DataFrame) -> str:
    """The panel index (:func:`afterkernel.figures.points.panel_index` rows)
    as a reStructuredText ``csv-table``."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for r in index.itertuples(index=False):
        writer.writerow([rst_text(r.panel), rst_text(r.problem), rst_text(r.network), r.curves, r.points,
                         _seeds(r.min_seeds, r.max_seeds), r.status])
    rows = "".join(f"   {line}\n" for line in out.getvalue().splitlines())
    return (f"Panels (one row per panel and the (problem, network) pair it shows):\n\n.. csv-table::\n"
            f"   :header: {', '.join(INDEX_HEADER)}\n\n{rows}")


def report_caption(spec: FigureSpec, png: str, summary: str, index: pd.DataFrame) -> str:
    """The report caption of figure ``spec`` whose PNG is ``png`` (also
    written as SVG), drawn from the summary table at ``summary``, with its
    panel index ``index`` (:func:`afterkernel.figures.points.panel_index` rows)."""
    points = (_SEEDS + _BAND[spec.x == "epoch"] + _INTERVAL + (_HOLLOW_SVM if spec.svm_errors else "")
              + _EMPTY_PANEL)
    config = _STUDY_CONFIG[spec.study] + (_AUGMENTATION if spec.category == "Augmentation" else "")
    data = _DATA + ("" if spec.study == "width" else _KERNELS)  # the width study computes no kernels
    files = f"File ``{png}`` (also ``.svg``), rule ``{spec.rule}``, from ``{summary}``."
    return "\n\n".join([f"**{spec.label}: {spec.title}.** {spec.caption}", points, config, data, files,
                        index_table(index)])
