"""Put a run's claims table into the README (between the ``claims:begin`` and
``claims:end`` markers) and keep the CSV it came from beside the benchmarks,
so the README shows what the embedded default measured, never typed numbers::

    python tools/readme_claims.py results/tables/claims.csv

tests/test_claims.py checks that the README block is the Markdown of
``benchmarks/default_run_claims.csv``.
"""

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from afterkernel.claims import claims_markdown, read_claims  # noqa: E402

KEPT = REPO / "benchmarks" / "default_run_claims.csv"
BEGIN, END = "<!-- claims:begin -->", "<!-- claims:end -->"


def readme_with_claims(readme: str, markdown: str) -> str:
    """``readme`` with the text between the markers replaced by ``markdown``."""
    head, sep, rest = readme.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"README.md lacks the markers {BEGIN} ... {END}")
    return f"{head}{BEGIN}\n{markdown}{END}{tail}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("claims", type=Path, help="claims.csv of a run of the embedded default")
    args = ap.parse_args(argv)
    if args.claims.resolve() != KEPT.resolve():
        shutil.copyfile(args.claims, KEPT)
    readme = REPO / "README.md"
    readme.write_text(readme_with_claims(readme.read_text(), claims_markdown(read_claims(KEPT))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
