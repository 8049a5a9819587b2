"""A published run: its tables and figures redrawn from its metrics table.

``python -m afterkernel.publish FOLDER`` reads ``FOLDER/metrics.csv`` (the
tidy table of a finished run, :mod:`afterkernel.aggregate`) and
``FOLDER/config.yaml`` (the config it ran) and writes, in seconds and
without re-running a job: ``summary.csv``, ``claims.csv``, ``claims.md``,
``claims.html``, ``headline.md`` (one line per claim: the README's block,
``tools/readme_claims.py --reproduction``) and ``figures/*.png`` (every
figure the config's studies draw). A change to the claims or figure code is then published by running
it again; ``tests/test_publication.py`` fails while the committed claims
table differs from what the current code makes of the committed metrics.

``python -m afterkernel.publish FOLDER --from RESULTS`` first copies a
run's ``RESULTS/tables/metrics.csv`` (and merges it with the rows already
published, a part at a time: rows of the same run and snapshot are replaced).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import pandas as pd

from afterkernel.aggregate import read_metrics, summary_table, to_csv
from afterkernel.claims import claims_headline, claims_html, claims_markdown, claims_table
from afterkernel.config import ConfigError, load
from afterkernel.figures import drawn_figures
from afterkernel.io import atomic_write_text

log = logging.getLogger(__name__)

METRICS, CONFIG = "metrics.csv", "config.yaml"
_ROW_KEYS = ["study", "run", "snapshot", "kernel"]


def merge_metrics(published: Path, new: Path) -> pd.DataFrame:
    """The published metrics table with ``new``'s rows added, a row of the
    same (study, run, snapshot, kernel) replaced by the new one."""
    table = read_metrics(new)
    if published.exists():
        old = read_metrics(published)
        keep = ~old.set_index(_ROW_KEYS).index.isin(table.set_index(_ROW_KEYS).index)
        table = pd.concat([old[keep], table], ignore_index=True)
    return table.sort_values(_ROW_KEYS, kind="stable").reset_index(drop=True)


def regenerate(folder: str | Path, figures: bool = True) -> dict[str, Path]:
    """Write the summary, claims and figures of the run published in
    ``folder`` from its ``metrics.csv`` and ``config.yaml``; return the files."""
    folder = Path(folder)
    config = load(folder / CONFIG)
    metrics = read_metrics(folder / METRICS)
    out = {name: folder / name for name in ("summary.csv", "claims.csv", "claims.md", "claims.html", "headline.md")}
    summary = summary_table(metrics)
    atomic_write_text(out["summary.csv"], to_csv(summary))
    claims = claims_table(metrics)
    atomic_write_text(out["claims.csv"], to_csv(claims))
    atomic_write_text(out["claims.md"], claims_markdown(claims))
    atomic_write_text(out["claims.html"], claims_html(claims))
    atomic_write_text(out["headline.md"], claims_headline(claims))
    if figures:
        from afterkernel.figures.draw import draw_figure

        training = {k: config["training"][k] for k in ("loss_target", "max_epochs")}
        for spec in drawn_figures(config["studies"]):
            png = folder / "figures" / f"{spec.stem}.png"
            draw_figure(summary, spec.fig, png=png, training=training)
            out[spec.stem] = png
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="the publication: metrics.csv and config.yaml")
    ap.add_argument("--from", dest="source", type=Path,
                    help="a run's results folder: merge its tables/metrics.csv into the publication first")
    ap.add_argument("--config", type=Path, help="with --from: the config that run used (copied as config.yaml)")
    ap.add_argument("--no-figures", action="store_true", help="tables only")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.source is not None:
            args.folder.mkdir(parents=True, exist_ok=True)
            merged = merge_metrics(args.folder / METRICS, args.source / "tables" / METRICS)
            atomic_write_text(args.folder / METRICS, to_csv(merged))
            if args.config is not None:
                shutil.copyfile(args.config, args.folder / CONFIG)
        files = regenerate(args.folder, figures=not args.no_figures)
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
