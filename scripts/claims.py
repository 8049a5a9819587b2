"""Rule ``claims``: what this run reproduces of the paper's claims
(:func:`afterkernel.claims.write_claims`; columns
:data:`afterkernel.claims.CLAIMS_COLUMNS`), from the metrics table.

Snakemake passes ``input.metrics``, ``output.claims`` (CSV),
``output.markdown``, ``output.html`` and ``log``. By hand::

    python scripts/claims.py --metrics results/tables/metrics.csv --claims claims.csv --markdown claims.md \
        --html claims.html
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's package

from afterkernel.claims import write_claims  # noqa: E402
from afterkernel.entry import run_script  # noqa: E402


def from_snakemake(smk):
    return dict(metrics=smk.input.metrics, claims=smk.output.claims, markdown=smk.output.markdown,
                html_page=smk.output.html)


def parser():
    ap = argparse.ArgumentParser(description="Check the paper's claims on the metrics table.")
    for flag, default in (("metrics", "metrics.csv"), ("claims", "claims.csv"), ("markdown", "claims.md"),
                          ("html", "claims.html")):
        ap.add_argument(f"--{flag}", default=f"results/tables/{default}", help=f"default: results/tables/{default}",
                        **({"dest": "html_page"} if flag == "html" else {}))
    return ap


run_script(globals(), write_claims, from_snakemake=from_snakemake, parser=parser)
