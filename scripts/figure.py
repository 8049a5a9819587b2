"""Rules ``figure_fig01`` ... ``figure_fig16``: one figure of the paper.

Input: ``results/tables/summary.csv`` (the across-seed summary, long format,
see :mod:`afterkernel.aggregate`). Outputs: the figure as PNG and SVG,
``results/figures/{stem}.png`` / ``.svg``; what each figure shows is in
:data:`afterkernel.figures.FIGURES`. Panels whose data the config does not
produce are drawn with a "not in this config" note (and logged).

Run by Snakemake (``script:`` directive), which provides
``snakemake.input.summary``, ``snakemake.output.png``, ``snakemake.output.svg``,
``snakemake.params.fig`` (e.g. ``fig01``) and ``snakemake.log[0]``; or by hand::

    python scripts/figure.py [--summary results/tables/summary.csv] [--outdir results/figures] [fig01 ...]
"""

# (no `from __future__` import: Snakemake prepends its preamble to the script)
import argparse
import logging
import sys
from pathlib import Path
from typing import Any

# Snakemake runs a copy of this file but sets __file__ to the real path: make
# the repository's package importable when it is not installed.
_REPO = Path(__file__).resolve().parents[1]
if (_REPO / "afterkernel" / "__init__.py").is_file() and str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from afterkernel.runtime import setup_logging  # noqa: E402

from afterkernel.figures import FIGURES, render  # noqa: E402

log = logging.getLogger("figure")


def main(summary: str | Path, fig: str, png: str | Path, svg: str | Path | None = None,
         training: dict | None = None) -> list[str]:
    """Draw figure ``fig`` from the summary CSV into ``png`` (and ``svg``);
    ``training``: the config's ``loss_target`` and ``max_epochs``. Return the
    notes of the panels drawn empty."""
    if fig not in FIGURES:
        raise KeyError(f"unknown figure {fig!r}; known: {', '.join(FIGURES)}")
    spec = FIGURES[fig]
    log.info("Figure %d (%s): %s, from %s", spec.number, fig, spec.title, summary)
    notes = render(fig, summary, png, svg, training=training)
    for note in notes:
        log.warning("panel %s", note)
    log.info("wrote %s%s", png, f" and {svg}" if svg else "")
    return notes


def _from_snakemake(smk: Any) -> None:
    setup_logging(smk.log[0] if len(smk.log) else None)
    try:
        main(smk.input.summary, smk.params.fig, smk.output.png, smk.output.svg, dict(smk.params.training))
    except Exception:
        log.exception("figure failed")
        raise


def _cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Draw the paper's figures from the summary table.")
    ap.add_argument("figs", nargs="*", help=f"figure ids (default: all of {', '.join(FIGURES)})")
    ap.add_argument("--summary", default="results/tables/summary.csv", type=Path)
    ap.add_argument("--outdir", default="results/figures", type=Path)
    ap.add_argument("--log", default=None, help="also log to this file")
    args = ap.parse_args(argv)
    setup_logging(args.log)
    try:
        for fig in args.figs or list(FIGURES):
            stem = FIGURES[fig].stem if fig in FIGURES else fig
            main(args.summary, fig, args.outdir / f"{stem}.png", args.outdir / f"{stem}.svg")
    except (KeyError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    return 0


if __name__ == "__main__" or "snakemake" in globals():  # run by Snakemake's script: directive
    if "snakemake" in globals():
        _from_snakemake(snakemake)  # type: ignore[name-defined]  # noqa: F821
    else:
        sys.exit(_cli())
