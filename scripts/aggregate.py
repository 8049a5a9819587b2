"""Rule ``aggregate``: the tidy metrics table and the across-seed summary
(:func:`afterkernel.aggregate.write_tables`; columns documented there).

Snakemake passes ``params.rows`` (:func:`afterkernel.plan.table_rows`: each
row names the training, kernel metrics and SVM files it reads, the rule's
inputs), ``output.metrics``, ``output.summary`` and ``log``. By hand, from a
config::

    python scripts/aggregate.py --config config.yaml [--results results]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's package

from afterkernel.aggregate import write_tables  # noqa: E402
from afterkernel.entry import run_script  # noqa: E402


def from_snakemake(smk):
    return dict(rows=smk.params.rows, metrics=smk.output.metrics, summary=smk.output.summary)


def parser():
    ap = argparse.ArgumentParser(description="Write the metrics and summary tables.")
    ap.add_argument("--config", required=True, type=Path, help="the study's config (YAML)")
    ap.add_argument("--results", default="results", help="results folder (default: results)")
    ap.add_argument("--metrics", default=None, help="default: RESULTS/tables/metrics.csv")
    ap.add_argument("--summary", default=None, help="default: RESULTS/tables/summary.csv")
    return ap


def from_args(args):
    from afterkernel import config, plan

    rows = plan.table_rows(config.load(args.config), root=args.results)
    return dict(rows=rows, metrics=args.metrics or plan.table_file("metrics.csv", args.results),
                summary=args.summary or plan.table_file("summary.csv", args.results))


run_script(globals(), write_tables, from_snakemake=from_snakemake, parser=parser, from_args=from_args)
