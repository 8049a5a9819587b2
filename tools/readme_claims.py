"""Put a run's claims headline (one line per claim statement, verdicts by
pair) into the README (between the ``claims:begin`` and ``claims:end``
markers) and keep the CSV it came from beside the benchmarks, so the README
shows what the embedded default measured, never typed numbers::

    python tools/readme_claims.py results/tables/claims.csv

and the published reproduction's headline (``reproduction/headline.md``,
written by ``python -m afterkernel.publish reproduction``) between the
``reproduction:begin`` and ``reproduction:end`` markers::

    python tools/readme_claims.py --reproduction

tests/outputs/test_claims.py checks that the README block is the headline of
``benchmarks/default_run_claims.csv``.
"""

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from afterkernel.claims import claims_headline, read_claims  # noqa: E402

KEPT = REPO / "benchmarks" / "default_run_claims.csv"
BEGIN, END = "<!-- claims:begin -->", "<!-- claims:end -->"
HEADLINE = REPO / "reproduction" / "headline.md"
REPRO_BEGIN, REPRO_END = "<!-- reproduction:begin -->", "<!-- reproduction:end -->"


def readme_with_claims(readme: str, markdown: str, begin: str = BEGIN, end: str = END) -> str:
    """``readme`` with the text between the markers replaced by ``markdown``."""
    head, sep, rest = readme.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise ValueError(f"README.md lacks the markers {begin} ... {end}")
    return f"{head}{begin}\n{markdown}{end}{tail}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("claims", type=Path, nargs="?", help="claims.csv of a run of the embedded default")
    ap.add_argument("--reproduction", action="store_true", help="put reproduction/headline.md in the README")
    args = ap.parse_args(argv)
    readme = REPO / "README.md"
    if args.reproduction:
        readme.write_text(readme_with_claims(readme.read_text(), HEADLINE.read_text(), REPRO_BEGIN, REPRO_END))
    if args.claims is None:
        return 0
    if args.claims.resolve() != KEPT.resolve():
        shutil.copyfile(args.claims, KEPT)
    readme.write_text(readme_with_claims(readme.read_text(), claims_headline(read_claims(KEPT))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
