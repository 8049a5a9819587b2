"""Rule ``claims``: what this run reproduces of the paper's claims.

Input ``results/tables/metrics.csv`` (:mod:`afterkernel.aggregate`); outputs
the claims table (one row per claim and (problem, architecture) pair,
columns :data:`afterkernel.claims.CLAIMS_COLUMNS`) as CSV and as a compact
Markdown table for the README and the report.

Run by Snakemake (``script:`` directive), which provides
``snakemake.input.metrics``, ``snakemake.output.claims``,
``snakemake.output.markdown`` and ``snakemake.log[0]``; or by hand::

    python scripts/claims.py --metrics results/tables/metrics.csv --claims claims.csv --markdown claims.md
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

from afterkernel.aggregate import to_csv  # noqa: E402
from afterkernel.claims import VERDICTS, claims_markdown, claims_table, read_metrics  # noqa: E402
from afterkernel.io import atomic_write_text  # noqa: E402

log = logging.getLogger("claims")


def main(metrics: str | Path, claims_out: str | Path, markdown_out: str | Path) -> Any:
    """Check the claims on ``metrics`` and write both tables (atomically);
    return the claims table."""
    claims = claims_table(read_metrics(metrics))
    counts = claims["verdict"].value_counts()
    for v in VERDICTS:
        log.info("%s: %d of %d claim rows", v, int(counts.get(v, 0)), len(claims))
    atomic_write_text(claims_out, to_csv(claims))
    atomic_write_text(markdown_out, claims_markdown(claims))
    log.info("wrote %s and %s", claims_out, markdown_out)
    return claims


def _from_snakemake(smk: Any) -> None:
    setup_logging(smk.log[0] if len(smk.log) else None)
    try:
        main(smk.input.metrics, smk.output.claims, smk.output.markdown)
    except Exception:
        log.exception("claims failed")
        raise


def _cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Check the paper's claims on the metrics table.")
    ap.add_argument("--metrics", default="results/tables/metrics.csv", type=Path,
                    help="the metrics table (default: results/tables/metrics.csv)")
    ap.add_argument("--claims", default="results/tables/claims.csv", type=Path,
                    help="claims table, CSV (default: results/tables/claims.csv)")
    ap.add_argument("--markdown", default="results/tables/claims.md", type=Path,
                    help="claims table, Markdown (default: results/tables/claims.md)")
    ap.add_argument("--log", default=None, help="also log to this file")
    args = ap.parse_args(argv)
    setup_logging(args.log)
    try:
        main(args.metrics, args.claims, args.markdown)
    except (FileNotFoundError, KeyError) as e:
        log.error("%s", e)
        return 2
    return 0


if __name__ == "__main__" or "snakemake" in globals():  # run by Snakemake's script: directive
    if "snakemake" in globals():
        _from_snakemake(snakemake)  # type: ignore[name-defined]  # noqa: F821
    else:
        sys.exit(_cli())
