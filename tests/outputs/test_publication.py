"""The published reproduction (reproduction/): what is committed is what the
current code makes of the committed metrics table, so a change to the
claims or figure code that changes a verdict fails here until the
publication is regenerated (``python -m afterkernel.publish reproduction``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from afterkernel import aggregate as agg
from afterkernel import claims as cl
from afterkernel.publish import merge_metrics

REQUIRED = ("metrics.csv", "config.yaml", "summary.csv", "claims.csv", "claims.md", "claims.html", "headline.md",
            "README.md", "runs.json")
#: the parts the reproduction runs in (reproduction/parts/), the last one the whole config
PARTS = ("mnist", "all")


@pytest.fixture(scope="module")
def publication(root):
    return root / "reproduction"


def test_the_publication_is_complete(publication):
    missing = [name for name in REQUIRED if not (publication / name).is_file()]
    assert not missing, f"reproduction/ lacks {missing}"
    assert list((publication / "figures").glob("fig01_*.png"))


def test_committed_claims_are_what_the_code_makes_of_the_metrics(publication):
    metrics = agg.read_metrics(publication / "metrics.csv")
    expected = cl.claims_table(metrics)
    assert (publication / "claims.csv").read_text() == agg.to_csv(expected), (
        "reproduction/claims.csv is stale: run `python -m afterkernel.publish reproduction`")
    assert (publication / "claims.md").read_text() == cl.claims_markdown(expected)
    assert (publication / "headline.md").read_text() == cl.claims_headline(expected)
    assert (publication / "summary.csv").read_text() == agg.to_csv(agg.summary_table(metrics))


def test_readme_shows_the_headline(root, publication):
    readme = (root / "README.md").read_text()
    block = readme.partition("<!-- reproduction:begin -->")[2].partition("<!-- reproduction:end -->")[0]
    assert block == "\n" + (publication / "headline.md").read_text()


def test_every_part_is_recorded(root, publication):
    """Each finished part names its command, commit, wall time and the cost model's estimate."""
    runs = json.loads((publication / "runs.json").read_text())
    assert runs and [r["part"] for r in runs] == list(PARTS[:len(runs)])
    for r in runs:
        assert r["wall_minutes"] > 0 and r["estimate_minutes"] > 0 and len(r["commit"]) >= 7
        assert all((root / c).is_file() for c in r["configs"])
        assert f"{r['wall_minutes']:.0f} min" in (publication / "README.md").read_text()


def test_every_claim_has_data_from_three_seeds_on_the_full_data(publication):
    claims = cl.read_claims(publication / "claims.csv")
    measured = claims[claims["verdict"] != "not in this config"]
    assert (measured.groupby("claim")["n_seeds"].min() >= 3).all()
    done = {r["part"] for r in json.loads((publication / "runs.json").read_text())}
    # every claim but C2 (CIFAR-10 only) has a pair in the MNIST part; all ten once the last part ran
    wanted = {f"C{i}" for i in range(1, 11)} - (set() if "all" in done else {"C2"})
    assert wanted <= set(measured["claim"])
    metrics = agg.read_metrics(publication / "metrics.csv")
    full = {"mnist-3v8": (11982, 1984), "mnist-5v6": (11339, 1850), "cifar10-cat-dog": (10000, 2000)}
    sizes = metrics.groupby("problem")[["n_train", "n_test"]].max()
    for problem, row in sizes.iterrows():
        assert (row["n_train"], row["n_test"]) == full[problem]


def test_regeneration_command_redraws_the_publication(publication, tmp_path):
    work = tmp_path / "pub"
    work.mkdir()
    for name in ("metrics.csv", "config.yaml"):
        shutil.copyfile(publication / name, work / name)
    proc = subprocess.run([sys.executable, "-m", "afterkernel.publish", str(work)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("claims.csv", "claims.md", "summary.csv", "headline.md"):
        assert (work / name).read_text() == (publication / name).read_text(), name
    committed = sorted(p.name for p in (publication / "figures").glob("*.png"))
    assert sorted(p.name for p in (work / "figures").glob("*.png")) == committed


def test_parts_merge_replaces_rows_of_the_same_run(tmp_path, publication):
    metrics = agg.read_metrics(publication / "metrics.csv")
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    half = metrics.iloc[: len(metrics) // 2]
    first.write_text(agg.to_csv(half))
    changed = metrics.copy()
    changed["svm_test_error"] = 0.5
    second.write_text(agg.to_csv(changed))
    merged = merge_metrics(first, second)
    assert len(merged) == len(metrics) and (merged["svm_test_error"].dropna() == 0.5).all()
    pd.testing.assert_index_equal(merged.columns, metrics.columns)


def test_readme_figure_block_is_generated(publication):
    from afterkernel.config import load
    from afterkernel.publish import FIGURES_BEGIN, FIGURES_END, figure_sections

    block = (publication / "README.md").read_text().partition(FIGURES_BEGIN)[2].partition(FIGURES_END)[0]
    claims = cl.read_claims(publication / "claims.csv")
    assert block == "\n" + figure_sections(claims, load(publication / "config.yaml")["studies"])


def test_figure_numbers_of_a_claims_row():
    from afterkernel.publish import _figure_numbers

    assert _figure_numbers("4a, 4c, 4d") == {4}
    assert _figure_numbers("2-3") == {2, 3}
    assert _figure_numbers("6b, 6c") == {6} and _figure_numbers("16") == {16}


def test_readme_runs_block_is_generated(publication):
    from afterkernel.publish import RUNS_BEGIN, RUNS_END, runs_table

    block = (publication / "README.md").read_text().partition(RUNS_BEGIN)[2].partition(RUNS_END)[0]
    assert block == "\n" + runs_table(json.loads((publication / "runs.json").read_text()))
