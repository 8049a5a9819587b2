"""Figures for the pairs the paper does not show: which figures a config
draws, the panels of an own pair on a synthetic summary (the paper's layout
keeps the paper's pairs only), what each panel drew in the caption's panel
index, and empty panels saying why."""

from __future__ import annotations

import csv
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from afterkernel import aggregate as agg
from afterkernel import plan
from afterkernel.figures import draw as D
from afterkernel.figures import panels as PN
from afterkernel.figures import points as P
from afterkernel.figures import registry as F
from micro import caption_index
from test_figures import DPI, check_png, full_summary, synthetic_metrics  # noqa: F401 (a fixture)

OWN, TINY = "shapes-square-cross", "tiny"
#: panels per pair where a figure has several quantities (Figures 17, 19, 20)
PANELS_PER_PAIR = {"fig17": 2, "fig19": 2, "fig20": 3}


def _config(root) -> dict:
    """The default config with an own pair beside paper pairs in every study, and a pair of
    paper names the paper does not show (fc on CIFAR-10)."""
    c = yaml.safe_load((root / "config.yaml").read_text())
    c["seeds"] = [0, 1, 2]
    c["studies"] = {
        "epochs": {"pairs": [[OWN, TINY], ["mnist-3v8", "fc"], ["cifar10-cat-dog", "fc"]], "epochs": [0, 1, 3, 10],
                   "augmentation": [False, True]},
        "learning_rate": {"pairs": [[OWN, TINY], ["mnist-3v8", "fc"]],
                          "learning_rates": {"shapes": [0.01, 0.1], "mnist": [0.01, 0.1]}, "augmentation": [False]},
        "width": {"pairs": [[OWN, TINY], ["mnist-3v8", "fc"]],
                  "families": {TINY: ["tiny-small", TINY], "fc": ["fc-60k", "fc"]}, "epochs": [1, 3]},
    }
    return c


@pytest.fixture(scope="module")
def own_summary(root):
    return agg.summary_table(synthetic_metrics(_config(root)))


def _pairs(spec: F.FigureSpec, summary: pd.DataFrame) -> list[tuple[str, str]]:
    panels = spec.panels(P.with_family(summary))
    return [pair for panel in panels for pair in dict.fromkeys(c.pair for c in panel.curves)]


def test_which_figures_a_config_draws(root):
    default = yaml.safe_load((root / "config.yaml").read_text())["studies"]
    # the default has every study but the width study
    assert F.drawn_figures(default) == [s for s in F.FIGURES.values() if s.study != "width"]
    own = yaml.safe_load((root / "configs" / "examples" / "own-data.yaml").read_text())["studies"]
    assert [s.fig for s in F.drawn_figures(own)] == [f"{k}_other" for k, s in F.FIGURES.items() if s.study == "epochs"]
    mixed = {"epochs": {"pairs": [["mnist-3v8", "fc"], [OWN, TINY]]}, "width": {"pairs": [["mnist-3v8", "fc"]]}}
    assert [s.fig for s in F.drawn_figures(mixed)] == [
        f for k, s in F.FIGURES.items() for f in {"epochs": [k, f"{k}_other"], "width": [k]}.get(s.study, [])]
    spec = F.OTHER_PAIRS["fig02_other"]
    assert spec.stem == "fig02_svm_vs_nn_error_other_pairs" and spec.rule == "figure_fig02_other"
    assert spec.label == "Figure 2, other pairs" and spec.paper_fig == "fig02"
    assert F.FIGURES["fig02"].label == "Figure 2"
    assert plan.figure_files(spec.stem)[0] == "results/figures/fig02_svm_vs_nn_error_other_pairs.png"
    assert {F.paper_pair(p, a) for p, a in [("mnist-1v7", "mega-vgg"), ("cifar10-cat-dog", "vgg")]} == {True}
    assert {F.paper_pair(p, a) for p, a in [("cifar10-cat-dog", "fc"), (OWN, "vgg"), ("mnist-3v8", TINY)]} == {False}


def test_paper_layout_draws_the_paper_pairs_only(own_summary):
    for k, spec in F.FIGURES.items():
        assert all(F.paper_pair(*pair) for pair in _pairs(spec, own_summary)), k
    # the layout itself is the paper's: five panels, the own pair's rows in none of them
    assert [p.title for p in F.FIGURES["fig02"].panels(own_summary)][2] == "(c) fully connected, MNIST 3-vs-8"


def test_one_panel_per_other_pair(own_summary):
    others = {"epochs": [(OWN, TINY), ("cifar10-cat-dog", "fc")], "learning_rate": [(OWN, TINY)],
              "width": [(OWN, TINY)]}
    for k, spec in F.OTHER_PAIRS.items():
        panels = spec.panels(P.with_family(own_summary))
        n = PANELS_PER_PAIR.get(spec.paper_fig, 1)
        want = [pair for pair in others[spec.study] for _ in range(n)]
        assert [panel.curves[0].pair for panel in panels] == want, k
        assert all(len({c.pair for c in panel.curves}) == 1 for panel in panels), k
        assert [panel.title[:4] for panel in panels] == [f"({chr(97 + i)}) " for i in range(len(panels))], k
        assert panels[0].title.startswith(f"(a) {TINY}, {OWN}"), k
        for panel in panels:
            assert P.panel_status(own_summary, spec, panel) is None, (k, panel.title)


def test_other_pair_curves_are_the_summary(own_summary):
    spec = F.OTHER_PAIRS["fig02_other"]
    panel = spec.panels(own_summary)[0]
    assert panel.title == f"(a) {TINY}, {OWN}" and panel.curves == tuple(PN.svm_and_network_errors(OWN, TINY))
    d = P.curve_data(own_summary, spec, panel.curves[0])
    rows = own_summary[(own_summary["study"] == "epochs") & (own_summary["problem"] == OWN)
                       & (own_summary["kernel"] == "after") & (own_summary["quantity"] == "svm_test_error")
                       & ~own_summary["augmentation"].astype(bool)].sort_values("epoch")
    assert d["x"].tolist() == [0, 1, 3, 10] and d["mean"].tolist() == rows["mean"].tolist()
    assert set(d["count"]) == {3}
    # Figure 3's early epochs, Figure 15's family, Figure 17's two quantities and kernels
    early = F.OTHER_PAIRS["fig03_other"]
    assert P.curve_data(own_summary, early, early.panels(own_summary)[0].curves[0])["x"].max() <= F.EARLY_EPOCHS
    width = F.OTHER_PAIRS["fig15_other"].panels(P.with_family(own_summary))
    assert {dict(c.where)["family"] for c in width[0].curves} == {TINY}
    moves = F.OTHER_PAIRS["fig17_other"].panels(own_summary)[:2]
    assert [{c.quantity for c in p.curves} for p in moves] == [{"kernel_distance_init"}, {"kernel_velocity"}]
    assert {dict(c.where)["kernel"] for c in moves[0].curves} == {"after", "conjugate"} and moves[1].log_y


def test_no_other_pairs_says_so(full_summary):
    panels = F.OTHER_PAIRS["fig01_other"].panels(full_summary)
    assert [p.title for p in panels] == [f"(a) {F.NO_OTHER_PAIRS}"]
    assert P.panel_status(full_summary, F.OTHER_PAIRS["fig01_other"], panels[0]) == F.NOT_IN_CONFIG


def test_drawn_with_its_panel_index(own_summary, tmp_path):
    csv_path = tmp_path / "summary.csv"
    csv_path.write_text(agg.to_csv(own_summary))
    for k in ("fig02_other", "fig17_other", "fig02"):
        spec = {**F.FIGURES, **F.OTHER_PAIRS}[k]
        png, rst = tmp_path / f"{spec.stem}.png", tmp_path / f"{spec.stem}.rst"
        D.draw_figure(csv_path, k, png=png, caption=rst, dpi=DPI)
        check_png(png)
        index = caption_index(rst.read_text())
        own = [r for r in index if (r["problem"], r["network"]) == (OWN, TINY)]
        if spec.pairs == F.PAPER:
            assert not own and {r["panel"] for r in index} == {p.title for p in spec.panels(own_summary)}
            continue
        assert [r["panel"] for r in own] == [p.title for p in spec.panels(own_summary)][:len(own)]
        assert {(r["status"], r["seeds"]) for r in own} == {("drawn", "3")}, own
        assert all(int(r["curves"]) == 2 for r in own), own


def test_an_other_pair_with_no_finite_values(own_summary):
    s = own_summary.copy()
    s.loc[s["problem"] == OWN, ["mean", "ci_low", "ci_high"]] = np.nan
    figure, notes, index = D.figure_of(F.OTHER_PAIRS["fig04_other"], s)
    assert notes == [f"(a) {TINY}, {OWN}: {F.NO_FINITE}"]
    row = index.iloc[0]
    assert (row["problem"], row["network"], row["points"], row["status"]) == (
        OWN, TINY, 0, F.NO_FINITE.replace("\n", " "))
    assert (index.iloc[1]["problem"], index.iloc[1]["status"], index.iloc[1]["max_seeds"]) == (
        "cifar10-cat-dog", P.DRAWN, 3)
