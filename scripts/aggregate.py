"""Rule ``aggregate``: the tidy metrics table and the across-seed summary.

Inputs: every training file, kernel metrics file and SVM file of the study
(schemas in docs/design.md), read from ``results/``. Outputs
``results/tables/metrics.csv`` (one row per (study, run, snapshot) and
kernel) and ``results/tables/summary.csv`` (mean, std, count and 95 %
t-interval over seeds, long format); the columns are documented in
:mod:`afterkernel.aggregate`.

Run by Snakemake (``script:`` directive), which provides
``snakemake.params.rows`` (list of dicts ``study, run, problem, architecture,
family, augmentation, learning_rate, seed, snapshot, epoch, kernels``),
``snakemake.output.metrics``, ``snakemake.output.summary`` and
``snakemake.log[0]``; or by hand, from a config::

    python scripts/aggregate.py --config config.yaml [--results results]
"""

# (no `from __future__` import: Snakemake prepends its preamble to the script)
import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

# Snakemake runs a copy of this file but sets __file__ to the real path: make
# the repository's package importable when it is not installed.
_REPO = Path(__file__).resolve().parents[1]
if (_REPO / "afterkernel" / "__init__.py").is_file() and str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from afterkernel.runtime import setup_logging  # noqa: E402

from afterkernel.aggregate import add_families, metrics_table, summary_table, to_csv  # noqa: E402
from afterkernel.io import atomic_write_text  # noqa: E402

log = logging.getLogger("aggregate")


def main(
    rows: Iterable[Mapping[str, Any]],
    metrics_out: str | Path,
    summary_out: str | Path,
    results_dir: str | Path = "results",
) -> tuple[Any, Any]:
    """Build both tables from the files under ``results_dir`` and write them
    (atomically); return ``(metrics, summary)``."""
    rows = list(rows)
    log.info("%d rows (study, run, snapshot) from %s", len(rows), results_dir)
    metrics = metrics_table(rows, results_dir)
    n_div = int(metrics.drop_duplicates(["run"])["diverged"].sum()) if len(metrics) else 0
    if n_div:
        log.warning("%d run(s) diverged: their unreached snapshots have NaN metrics", n_div)
    summary = summary_table(metrics)
    small = summary[summary["count"] < 2]
    if len(small):
        log.warning("%d summary rows have fewer than 2 values: no confidence interval", len(small))
    atomic_write_text(metrics_out, to_csv(metrics))
    atomic_write_text(summary_out, to_csv(summary))
    log.info("wrote %s (%d rows) and %s (%d rows)", metrics_out, len(metrics), summary_out, len(summary))
    return metrics, summary


def rows_from_config(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a validated config, as the Snakefile passes them."""
    from afterkernel import plan

    rows = [
        {
            "study": r.study, "run": r.run.path, "problem": r.run.problem, "architecture": r.run.arch,
            "augmentation": r.run.augmented, "learning_rate": r.run.learning_rate, "seed": r.run.seed,
            "snapshot": r.snapshot, "epoch": r.epoch, "kernels": r.kernels,
        }
        for r in plan.rows(dict(config))
    ]
    return add_families(rows, config["studies"].get("width"))


def _from_snakemake(smk: Any) -> None:
    setup_logging(smk.log[0] if len(smk.log) else None)
    try:
        main(smk.params.rows, smk.output.metrics, smk.output.summary)
    except Exception:
        log.exception("aggregate failed")
        raise


def _cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the metrics and summary tables.")
    ap.add_argument("--config", required=True, type=Path, help="the study's config (YAML)")
    ap.add_argument("--results", default="results", type=Path, help="results folder (default: results)")
    ap.add_argument("--metrics", default=None, type=Path, help="default: RESULTS/tables/metrics.csv")
    ap.add_argument("--summary", default=None, type=Path, help="default: RESULTS/tables/summary.csv")
    ap.add_argument("--log", default=None, help="also log to this file")
    args = ap.parse_args(argv)
    setup_logging(args.log)
    from afterkernel.config import ConfigError, load

    try:
        config = load(args.config)
        main(rows_from_config(config), args.metrics or args.results / "tables" / "metrics.csv",
             args.summary or args.results / "tables" / "summary.csv", args.results)
    except (ConfigError, FileNotFoundError, KeyError) as e:
        log.error("%s", e)
        return 2
    return 0


if __name__ == "__main__" or "snakemake" in globals():  # run by Snakemake's script: directive
    if "snakemake" in globals():
        _from_snakemake(snakemake)  # type: ignore[name-defined]  # noqa: F821
    else:
        sys.exit(_cli())
