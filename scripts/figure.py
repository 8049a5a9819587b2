"""Rules ``figure_fig01`` ... ``figure_fig16``: one figure of the paper
(:func:`afterkernel.figures.draw.draw_figures`; what each figure shows is in
:data:`afterkernel.figures.FIGURES`).

Snakemake passes ``input.summary`` (``results/tables/summary.csv``),
``output.png``, ``output.svg``, ``output.caption`` (the report caption,
reStructuredText), ``params.fig`` (e.g. ``fig01``),
``params.training`` (``loss_target``, ``max_epochs``) and ``log``. By hand::

    python scripts/figure.py [--summary results/tables/summary.csv] [--outdir results/figures] [fig01 ...]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's package

from afterkernel.entry import run_script  # noqa: E402
from afterkernel.figures import FIGURES  # noqa: E402
from afterkernel.figures.draw import draw_figures, figures_in  # noqa: E402


def from_snakemake(smk):
    files = dict(png=smk.output.png, svg=smk.output.svg, caption=smk.output.caption)
    return dict(summary=smk.input.summary, figures={smk.params.fig: files}, training=dict(smk.params.training))


def parser():
    ap = argparse.ArgumentParser(description="Draw the paper's figures from the summary table.")
    ap.add_argument("figs", nargs="*", help=f"figure ids (default: all of {', '.join(FIGURES)})")
    ap.add_argument("--summary", default="results/tables/summary.csv", type=Path)
    ap.add_argument("--outdir", default="results/figures", type=Path)
    return ap


def from_args(args):
    return dict(summary=args.summary, figures=figures_in(args.outdir, args.figs))


run_script(globals(), draw_figures, from_snakemake=from_snakemake, parser=parser, from_args=from_args)
