"""Figures 1-20 from synthetic summary tables: the registry, every figure
rendered (a full paper-scale summary and one missing most panels), the
captions of the report, the script's command line."""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from afterkernel import aggregate as agg
from afterkernel import plan
from afterkernel.figures import captions
from afterkernel.figures import draw as D
from afterkernel.figures import points as P
from afterkernel.figures import registry as F

PAPER_LR = {"mnist": [0.001, 0.003, 0.01, 0.03, 0.1], "cifar10": [0.01, 0.02, 0.03, 0.04]}
N_PARAMS = {"vgg": 45527, "mega-vgg": 905591, "fc": 100675, "vgg-60k": 60171, "vgg-80k": 80426,
            "vgg-100k": 99866, "fc-60k": 60327, "fc-80k": 80419}
BASE_ERR = {("mnist-3v8", "vgg"): (0.025, 0.010), ("mnist-5v6", "vgg"): (0.012, 0.006),
            ("mnist-3v8", "fc"): (0.060, 0.015), ("mnist-5v6", "fc"): (0.030, 0.008),
            ("cifar10-cat-dog", "vgg"): (0.42, 0.24), ("mnist-3v8", "mega-vgg"): (0.02, 0.008)}


def paper_config(paper: dict, seeds: int = 4) -> dict:
    """configs/paper.yaml (every pair, epoch and learning rate) with fewer seeds."""
    c = copy.deepcopy(paper)
    c["seeds"] = list(range(seeds))
    assert c["studies"]["learning_rate"]["learning_rates"] == PAPER_LR
    return c


def synthetic_metrics(config: dict, seed: int = 0) -> pd.DataFrame:
    """A metrics table with plausible numbers for every row of ``config``
    (the shape of :func:`afterkernel.aggregate.metrics_table`'s output)."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in plan.rows(config):
        run, p, a = r.run, r.run.problem, r.run.arch
        family = next((f for f, names in config["studies"].get("width", {}).get("families", {}).items()
                       if a in names), None) if r.study == "width" else None
        start, end = BASE_ERR.get((p, a), (0.05, 0.02 if p.startswith("mnist") else 0.3))
        aug = 0.85 if run.augmented else 1.0
        if run.target_mode:
            lr = run.learning_rate
            t = 1.0 - 0.25 * math.log10(lr / 0.001) / 2
            epoch, prog = float(round(40 / (lr / 0.001) ** 0.5) + 2), 1.0
            end *= t
        else:
            epoch = float(r.epoch)
            prog = 1 - math.exp(-epoch / 2.0)
        n = lambda s: rng.normal(0, s)  # noqa: E731
        svm = (start + (end - start) * prog) * aug * (1 + n(0.08))
        nn = (0.5 if epoch == 0 else end * 1.1 + (min(1.8 * start, 0.45) - end) * math.exp(-epoch / 8)) * aug * (1 + n(0.08))
        diverged = bool(run.target_mode and run.learning_rate >= 0.1 and run.seed == 0)
        local = 0.85 if a != "fc" else 0.35
        base = dict(study=r.study, run=run.path, problem=p, architecture=a, family=family,
                    augmentation=run.augmented, learning_rate=run.learning_rate, seed=run.seed,
                    snapshot=r.snapshot, epoch=epoch, nn_test_error=nn, train_loss=0.7 * math.exp(-epoch / 3),
                    epochs_used=epoch if run.target_mode else float(max(config["studies"]["epochs"]["epochs"])),
                    reached_target=True if run.target_mode else None, diverged=diverged,
                    n_params=float(N_PARAMS.get(a, 50000) * (1.02 if p.startswith("cifar") else 1)))
        if not r.kernels:
            rows.append({**base, "kernel": "none"})
            continue
        inv = 0.8 + 0.15 * math.sin(min(epoch, 6) / 4) - 0.1 * prog
        align = (0.97 if a != "fc" else 0.9) - (0.1 if a != "fc" else 0.5) * prog
        for k in agg.KERNELS:
            off = 0.0 if k == "after" else 0.05
            rows.append({**base, "kernel": k, "svm_test_error": svm * (1.1 if k == "conjugate" else 1.0),
                         "svm_train_error": 0.0, "margin": 0.01 * (1 + prog), "gap": 1e-5, "separable": True,
                         "converged": True, "translation": inv - off + n(0.02), "rotation": inv - 0.15 + n(0.02),
                         "zoom": inv - 0.08 + n(0.02), "swap": local - 0.3 * prog + n(0.02),
                         "alignment": align + n(0.01), "effective_rank": 20 + n(1), "target_alignment": 0.3,
                         **evolution_values(epoch, prog, run.target_mode, n)})
        if diverged:
            for rec in rows[-2:]:
                for q in ("svm_test_error", "nn_test_error", "translation", "rotation", "zoom", "swap",
                          "alignment", "margin"):
                    rec[q] = math.nan
    df = pd.DataFrame.from_records(rows, columns=agg.METRICS_COLUMNS)
    for q in agg.BOOL_QUANTITIES:
        df[q] = df[q].astype("boolean")
    return df


def evolution_values(epoch: float, prog: float, target_mode: bool, n) -> dict:
    """Kernel distances, velocity, spectrum and centred alignment of one row
    (the learning-rate study has no FNTK or previous snapshot: NaN)."""
    move = 0.3 * prog + abs(n(0.01))
    out = {"kernel_distance_init": math.nan if target_mode else move,
           "kernel_distance_final": 0.3 - move if not target_mode else 0.0,
           "kernel_distance_prev": math.nan if target_mode or epoch == 0 else 0.1 * math.exp(-epoch / 3),
           "spectrum_top10_fraction": 0.5 + 0.3 * prog + n(0.01), "target_alignment_centred": 0.2 + 0.4 * prog}
    out["kernel_velocity"] = out["kernel_distance_prev"] / max(epoch, 1)
    out.update({f"{agg.SPECTRUM_PREFIX}{i}": 0.3 * i ** (-1 - prog) * (1 + n(0.02)) for i in agg.SPECTRUM_INDICES})
    return out


@pytest.fixture(scope="module")
def full_summary():
    import yaml

    from conftest import ROOT

    with open(ROOT / "configs" / "paper.yaml") as f:
        paper = yaml.safe_load(f)
    return agg.summary_table(synthetic_metrics(paper_config(paper)))


@pytest.fixture(scope="module")
def sparse_summary():
    """Only the epochs study, one pair, no augmentation; no lr or width study."""
    import yaml

    from conftest import ROOT

    with open(ROOT / "config.yaml") as f:
        c = yaml.safe_load(f)
    c["studies"] = {"epochs": {"pairs": [["mnist-3v8", "vgg"]], "epochs": [0, 1, 3], "augmentation": [False]}}
    return agg.summary_table(synthetic_metrics(c))


#: Figure 18: one panel per (problem, network) of the paper's epochs study
N_SPECTRUM_PANELS = 6

DPI = 50  # small images keep the tests fast; the rule renders at 150 dpi


def check_png(path, dpi=DPI):
    import matplotlib.image as mpimg

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert len(data) > 5_000, (path, len(data))
    img = mpimg.imread(path)
    assert img.shape[0] > 3 * dpi and img.shape[1] > 6 * dpi, img.shape
    assert float(img[..., :3].std()) > 0.02  # not a blank canvas


# --------------------------------------------------------------------------
# registry


def test_registry():
    assert list(F.FIGURES) == [f"fig{i:02d}" for i in range(1, 21)]
    stems = [f.stem for f in F.FIGURES.values()]
    assert len(set(stems)) == 20
    assert all(s.startswith(k + "_") for k, s in zip(F.FIGURES, stems))
    assert F.FIGURES["fig01"].stem == "fig01_svm_error_vs_epochs"
    assert F.FIGURES["fig02"].stem == "fig02_svm_vs_nn_error"
    assert F.FIGURES["fig16"].stem == "fig16_augmentation_errors"
    assert {f.category for f in F.FIGURES.values()} == {"Epochs study", "Learning-rate study", "Augmentation",
                                                        "Width study", "Beyond the paper"}
    assert [k for k, f in F.FIGURES.items() if f.category == "Beyond the paper"] == ["fig17", "fig18", "fig19",
                                                                                   "fig20"]
    assert F.FIGURES["fig18"].x == "eigen_index" and F.FIGURES["fig20"].study == "learning_rate"
    assert {k for k, f in F.FIGURES.items() if f.category == "Augmentation"} == {"fig08", "fig14", "fig16"}
    assert F.FIGURES["fig15"].study == "width" and F.FIGURES["fig15"].x == "n_params"
    assert all(F.FIGURES[k].x == "learning_rate" for k in ("fig09", "fig10", "fig11", "fig12", "fig13", "fig14"))
    assert F.FIGURES["fig03"].rule == "figure_fig03"
    assert plan.figure_files(F.FIGURES["fig03"].stem)[0] == "results/figures/fig03_svm_vs_nn_error_early.png"
    assert "| 3 | `results/figures/fig03_svm_vs_nn_error_early.png` |" in F.index_markdown()
    assert "| 15 |" in F.index_markdown()


def test_registry_is_cheap_to_import(root):
    # rules/figures.smk imports it at every parse of the workflow
    code = ("import sys, afterkernel.figures; "
            "print([m for m in ('pandas', 'matplotlib', 'h5py', 'tensorflow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_figure_index_is_current(root):
    # docs/figures.md's index is generated by index_markdown(); a renamed
    # figure must be renamed there too
    assert F.index_markdown().rstrip() in (root / "docs" / "figures.md").read_text()


def test_panels_follow_the_paper(full_summary):
    n_panels = {k: len(f.panels(full_summary)) for k, f in F.FIGURES.items()}
    assert n_panels == {"fig01": 2, "fig02": 5, "fig03": 5, "fig04": 4, "fig05": 4, "fig06": 3, "fig07": 5,
                        "fig08": 4, "fig09": 5, "fig10": 2, "fig11": 4, "fig12": 1, "fig13": 5, "fig14": 4,
                        "fig15": 2, "fig16": 3, "fig17": 4, "fig18": N_SPECTRUM_PANELS, "fig19": 4, "fig20": 3}
    for k, spec in F.FIGURES.items():
        for panel in spec.panels(full_summary):
            assert P.panel_status(full_summary, spec, panel) is None, (k, panel.title)
    # Figure 5(a): 3 invariances x 2 MNIST problems
    assert len(F.FIGURES["fig05"].panels(full_summary)[0].curves) == 6
    # Figure 3 = Figure 2 restricted to the early epochs
    f2, f3 = F.FIGURES["fig02"], F.FIGURES["fig03"]
    c = f2.panels(full_summary)[0].curves[0]
    assert P.curve_data(full_summary, f2, c)["x"].max() == 200
    assert P.curve_data(full_summary, f3, c)["x"].tolist() == [0, 1, 3, 10]
    # Figure 15: x is the number of parameters, curves per family and epoch count (the paper has
    # no fully connected net on CIFAR-10)
    f15 = F.FIGURES["fig15"]
    curves = f15.panels(full_summary)[1].curves
    assert {(c.hue, c.dash) for c in curves} == {(F.arch_label("vgg"), F.epochs_label(e)) for e in (10, 100, 200)}
    d = P.curve_data(full_summary, f15, next(c for c in curves if c.hue == "VGG-like"))
    assert d["x"].tolist() == pytest.approx([45527 * 1.02, 60171 * 1.02, 80426 * 1.02, 99866 * 1.02])
    mnist = f15.panels(full_summary)[0].curves
    d = P.curve_data(full_summary, f15, next(c for c in mnist if c.hue == "fully connected"
                                             and c.marker == "3-vs-8" and c.dash == "10 epochs"))
    assert d["x"].tolist() == [60327, 80419, 100675]
    # Figures 8, 14, 16 compare both augmentation settings
    for k in ("fig08", "fig14", "fig16"):
        augs = {dict(c.where)["augmentation"] for p in F.FIGURES[k].panels(full_summary) for c in p.curves}
        assert augs == {False, True}, k


def test_spectrum_curve_is_the_spectrum_columns(full_summary):
    spec = F.FIGURES["fig18"]
    panel = spec.panels(full_summary)[0]
    c = panel.curves[0]  # first pair, epoch 0, after kernel
    assert panel.log_y and c.hue == F.epochs_label(0) and dict(c.where)["kernel"] == "after"
    d = P.curve_data(full_summary, spec, c)
    assert d["x"].tolist() == list(agg.SPECTRUM_INDICES)
    w = dict(c.where)
    row = full_summary[P.matching_rows(full_summary, "epochs", c.where)
                       & (full_summary["quantity"] == f"{agg.SPECTRUM_PREFIX}5")].iloc[0]
    assert row["problem"] == w["problem"] and d.loc[3, "mean"] == row["mean"]
    # Figure 17: no velocity at epoch 0 (NaN), the first point is epoch 1
    f17 = F.FIGURES["fig17"]
    vel = P.curve_data(full_summary, f17, f17.panels(full_summary)[2].curves[0])
    assert vel["x"].min() == 1 and f17.panels(full_summary)[2].log_y
    # Figure 20: the learning-rate study has no distances at all
    assert all("distance" not in c.quantity for p in F.FIGURES["fig20"].panels(full_summary) for c in p.curves)


def test_curve_values_are_the_summary(full_summary):
    spec = F.FIGURES["fig09"]
    c = spec.panels(full_summary)[4].curves[0]  # SVM, VGG cat-dog vs lr
    d = P.curve_data(full_summary, spec, c)
    assert d["x"].tolist() == PAPER_LR["cifar10"]
    row = full_summary[(full_summary["study"] == "learning_rate") & (full_summary["problem"] == "cifar10-cat-dog")
                       & (full_summary["architecture"] == "vgg") & (full_summary["kernel"] == "after")
                       & (full_summary["quantity"] == "svm_test_error") & (~full_summary["augmentation"])
                       & (full_summary["learning_rate"] == 0.02)].iloc[0]
    assert d.loc[1, "mean"] == row["mean"] and d.loc[1, "ci_high"] == row["ci_high"]


# --------------------------------------------------------------------------
# rendering


def test_render_every_figure(full_summary, tmp_path):
    for k, spec in F.FIGURES.items():
        png, svg = tmp_path / f"{spec.stem}.png", tmp_path / f"{spec.stem}.svg"
        notes = D.draw_figure(full_summary, k, png, svg, dpi=DPI)
        assert notes == [], (k, notes)
        check_png(png)
        assert svg.stat().st_size > 20_000 and b"<svg" in svg.read_bytes()[:1000]
    assert not list(tmp_path.glob(".*part"))


def test_render_with_most_panels_missing(sparse_summary, tmp_path):
    all_notes = {}
    for k, spec in F.FIGURES.items():
        png = tmp_path / f"{spec.stem}.png"
        all_notes[k] = D.draw_figure(sparse_summary, k, png=png, dpi=DPI)
        check_png(png)
    assert all_notes["fig02"] == [f"{t}: {F.NOT_IN_CONFIG}" for t in (
        "(b) VGG-like, MNIST 5-vs-6", "(c) fully connected, MNIST 3-vs-8", "(d) fully connected, MNIST 5-vs-6",
        "(e) VGG-like, CIFAR-10 cats-vs-dogs")]
    assert len(all_notes["fig15"]) == 2 and len(all_notes["fig12"]) == 1
    assert len(all_notes["fig09"]) == 5


def test_render_all_diverged_and_from_csv(full_summary, tmp_path):
    s = full_summary.copy()
    s.loc[s["problem"] == "cifar10-cat-dog", ["mean", "ci_low", "ci_high"]] = np.nan
    path = tmp_path / "summary.csv"
    path.write_text(agg.to_csv(s))
    notes = D.draw_figure(path, "fig01", png=tmp_path / "a.png", dpi=DPI)
    assert notes == [f"(b) CIFAR-10 cats-vs-dogs, VGG-like: {F.NO_FINITE}"]


def test_render_is_deterministic(full_summary, tmp_path):
    for i in (1, 2):
        D.draw_figure(full_summary, "fig12", tmp_path / f"{i}.png", tmp_path / f"{i}.svg")
    assert (tmp_path / "1.png").read_bytes() == (tmp_path / "2.png").read_bytes()
    assert (tmp_path / "1.svg").read_bytes() == (tmp_path / "2.svg").read_bytes()


# --------------------------------------------------------------------------
# report captions


ALL_SPECS = {**F.FIGURES, **F.OTHER_PAIRS}
#: a panel index with what a title may hold (commas, quotes, "(b)", a name ending in "_")
INDEX = pd.DataFrame([["(a) tiny, shapes-square-cross", "shapes-square-cross", "tiny", 2, 4, 1, 1, "drawn"],
                      ['(b) "wide_", mnist-3v8', "mnist-3v8", "wide_", 0, 0, 0, 0, F.NOT_IN_CONFIG]],
                     columns=P.PANEL_INDEX_COLUMNS)


def report_captions() -> dict[str, str]:
    """Each figure's report caption as the figure rule writes it (panel index :data:`INDEX`)."""
    return {k: captions.report_caption(spec, plan.figure_files(spec.stem)[0], plan.table_file("summary.csv"), INDEX)
            for k, spec in ALL_SPECS.items()}


def test_captions_render(default_config):
    """Each figure's report caption (from the registry) renders with Jinja
    against the config (as snakemake --report does) and parses as
    reStructuredText."""
    import jinja2
    from docutils.core import publish_parts

    from conftest import ROOT

    env = jinja2.Environment()
    snakemake = type("S", (), {"config": default_config})()
    for k, text in report_captions().items():
        spec = ALL_SPECS[k]
        assert spec.title in text and spec.label in text, k
        out = env.from_string(text).render(snakemake=snakemake)
        assert "mnist-3v8" in out or "seeds" in out
        html = publish_parts(out, writer="html",
                             settings_overrides={"report_level": 2, "halt_level": 2})["body"]
        assert "system-message" not in html, k
        # the panel index is a table: one row per panel and pair, the header first
        assert html.count("<tr") == 3 and "(a) tiny, shapes-square-cross</td>" in html, k
        assert "&quot;wide_&quot;, mnist-3v8</td>" in html and f"{F.NOT_IN_CONFIG}</td>" in html, k
    for name in ("metrics", "summary"):
        text = (ROOT / "report" / f"{name}.rst").read_text()
        publish_parts(env.from_string(text).render(snakemake=snakemake), writer="html",
                      settings_overrides={"report_level": 2, "halt_level": 2})


def test_captions_say_what_the_figures_mark():
    text = report_captions()
    for k, spec in ALL_SPECS.items():
        assert f"``{plan.figure_files(spec.stem)[0]}``" in text[k] and f"rule ``{spec.rule}``" in text[k]
        assert ("Hollow SVM markers" in text[k]) == spec.svm_errors, k
        assert ("hollow markers: not every run reached the target" in text[k]) == (spec.study == "learning_rate")
        assert ("shaded band" in text[k]) == (spec.x == "epoch"), k
        assert ("a seeded sample of" in text[k]) == (spec.study != "width"), k
        assert ("Augmentation: random rotations" in text[k]) == (spec.paper_fig in ("fig08", "fig14", "fig16")), k
        assert ("that the paper's figures do not show" in text[k]) == (spec.pairs == F.OTHER), k
    assert {k for k in text if "network at epoch 0" in text[k]} == {
        f"{k}{other}" for k in ("fig02", "fig03", "fig16") for other in ("", "_other")}


def test_figure_files_are_written_atomically_with_usual_permissions(full_summary, tmp_path):
    csv = tmp_path / "summary.csv"
    csv.write_text(agg.to_csv(full_summary))
    out = tmp_path / "figures"
    old = os.umask(0o022)
    try:
        D.draw_figure(csv, "fig12", out / "f.png", out / "f.svg", caption=out / "f.rst", dpi=DPI)
    finally:
        os.umask(old)
    for name in ("f.png", "f.svg", "f.rst"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name
    assert sorted(p.name for p in out.iterdir()) == ["f.png", "f.rst", "f.svg"]  # no temporary left
    index = D.figure_of(F.FIGURES["fig12"], full_summary)[2]
    assert (out / "f.rst").read_text() == captions.report_caption(F.FIGURES["fig12"], str(out / "f.png"), str(csv),
                                                                  index)
    with pytest.raises(ValueError):  # a caption names the summary's path
        D.draw_figure(full_summary, "fig12", out / "g.png", caption=out / "g.rst", dpi=DPI)
    assert not (out / "g.rst").exists() and not (out / "g.png").exists()  # checked before drawing


def test_script_command_line(full_summary, tmp_path):
    from conftest import ROOT

    path = tmp_path / "summary.csv"
    path.write_text(agg.to_csv(full_summary))
    D.draw_figures(path, {"fig12": {"png": tmp_path / "f.png", "svg": tmp_path / "f.svg"}})
    check_png(tmp_path / "f.png", dpi=150)
    assert (tmp_path / "f.svg").is_file()
    script = [sys.executable, str(ROOT / "scripts" / "figure.py"), "--summary", str(path), "--outdir",
              str(tmp_path / "cli")]
    subprocess.run(script + ["fig12"], check=True, capture_output=True)
    stem = F.FIGURES["fig12"].stem
    assert (tmp_path / "cli" / f"{stem}.png").read_bytes() == (tmp_path / "f.png").read_bytes()
    assert (tmp_path / "cli" / f"{stem}.svg").is_file()
    bad = subprocess.run(script + ["fig99"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown figure 'fig99'" in bad.stderr


def test_unreached_targets_and_nonseparable_kernels_are_flagged(tmp_path):
    import yaml

    from conftest import ROOT

    with open(ROOT / "config.yaml") as f:
        c = yaml.safe_load(f)
    c["seeds"] = [0, 1, 2]
    c["studies"] = {"learning_rate": {"pairs": [["mnist-3v8", "fc"]], "learning_rates": {"mnist": [0.01, 0.1]},
                                      "augmentation": [False]}}
    m = synthetic_metrics(c)
    slow = m["learning_rate"] == 0.01
    m.loc[slow & (m["seed"] == 2), "reached_target"] = False  # 1 of 3 runs at lr 0.01 missed it
    m.loc[(m["kernel"] == "conjugate") & (m["learning_rate"] == 0.1), "separable"] = False
    s = agg.summary_table(m)
    spec = F.FIGURES["fig13"]  # after vs conjugate SVM error vs learning rate
    panel = next(p for p in spec.panels(s) if "fully connected, MNIST 3-vs-8" in p.title)
    data = {c.hue: P.curve_data(s, spec, c) for c in panel.curves}
    after, conj = data["after kernel"].set_index("x"), data["conjugate kernel"].set_index("x")
    assert after.loc[0.01, "unreached"] and not after.loc[0.1, "unreached"]
    assert not after["not_separable"].any()
    assert conj.loc[0.1, "not_separable"] and not conj.loc[0.01, "not_separable"]
    assert after["count"].tolist() == [3, 2]  # the synthetic seed 0 diverged at lr 0.1
    notes = D._unreached_note(s, {"loss_target": 0.01, "max_epochs": 10})
    assert notes == "1 of 6 learning-rate runs did not reach training loss <= 0.01 within 10 epochs"
    assert "trained to the loss target" not in F.X_LABELS["learning_rate"]
    D.draw_figure(s, "fig13", tmp_path / "f.png", dpi=DPI, training={"loss_target": 0.01, "max_epochs": 10})
    check_png(tmp_path / "f.png")
    assert D._seed_note({3}) == "mean over n = 3 seeds per point" and D._seed_note({2, 3}).startswith("mean over n = 2-3")


def test_data_note_names_the_images_of_each_pair_when_they_differ():
    """A subset beside the full data (data.caps) is said under the figure."""
    def rows(arch, n_train, n_test):
        return [{"problem": "mnist-3v8", "architecture": arch, "quantity": q, "mean": v}
                for q, v in (("n_train", n_train), ("n_test", n_test))]

    summary = pd.DataFrame(rows("fc", 11982, 1984) + rows("vgg", 2000, 500))
    pairs = {("mnist-3v8", "fc"), ("mnist-3v8", "vgg")}
    assert D._data_note(summary, pairs) == \
        "images (train/test): fc, mnist-3v8: 11,982/1,984; vgg, mnist-3v8: 2,000/500"
    assert D._data_note(pd.DataFrame(rows("fc", 11982, 1984) + rows("vgg", 11982, 1984)), pairs) == ""
    assert D._data_note(summary, {("mnist-3v8", "fc")}) == ""


def test_report_sections_follow_the_study_and_skip_what_is_not_drawn():
    full = {"epochs": {"pairs": [["mnist-3v8", "fc"]]}, "learning_rate": {"pairs": [["mnist-3v8", "fc"]]},
            "width": {"pairs": [["mnist-3v8", "fc"]]}}
    assert F.report_sections(full) == F.REPORT_SECTIONS
    no_width = F.report_sections({k: v for k, v in full.items() if k != "width"})
    assert [F.report_section(s, no_width) for s in no_width] == [
        "1. What this run reproduces", "2. Epochs study", "3. Learning-rate study", "4. Augmentation",
        "5. Beyond the paper", "6. Tables"]
    assert F.report_labels(F.FIGURES["fig01"]) == {"figure": "1", "shows": F.FIGURES["fig01"].title}


def test_dataset_notes_on_the_figures_that_draw_the_data_set(full_summary):
    """A published run's data-set footnote (JPEG-derived CIFAR-10) is on a
    figure drawing CIFAR-10 and on no other."""
    from afterkernel.figures.draw import figure_of
    from afterkernel.publish import dataset_notes

    notes = dataset_notes([{"data": "../shared/data/cifar10_cat_dog_jpeg_q75.npz (sha256 ...)"}])
    assert set(notes) == {"cifar10"} and "JPEG" in notes["cifar10"]
    assert dataset_notes([{"data": "../shared/data/mnist.npz"}]) == {}
    with_cifar, _, _ = figure_of(F.FIGURES["fig01"], full_summary, None, notes)
    assert notes["cifar10"] in with_cifar.get_supxlabel()
    mnist_only = full_summary[~full_summary["problem"].str.startswith("cifar10")]
    without, _, _ = figure_of(F.FIGURES["fig01"], mnist_only, None, notes)
    assert notes["cifar10"] not in without.get_supxlabel()
