"""A published run: its tables and figures redrawn from its metrics table.

``python -m afterkernel.publish FOLDER`` reads ``FOLDER/metrics.csv`` (the
tidy table of a finished run, :mod:`afterkernel.aggregate`) and
``FOLDER/config.yaml`` (the config it ran) and writes, in seconds and
without re-running a job: ``summary.csv``, ``claims.csv``, ``claims.md``,
``claims.html``, ``headline.md`` (one line per claim: the README's block,
``tools/readme_claims.py --reproduction``) and ``figures/*.png`` (every
figure the config's studies draw). A change to the claims or figure code is then published by running
it again; ``tests/outputs/test_publication.py`` fails while the committed claims
table differs from what the current code makes of the committed metrics.

``python -m afterkernel.publish FOLDER --from RESULTS`` first copies a
run's ``RESULTS/tables/metrics.csv`` (and merges it with the rows already
published, a part at a time: rows of the same run and snapshot are replaced).
"""

from __future__ import annotations

import argparse
import json
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
FIGURES_BEGIN, FIGURES_END = "<!-- figures:begin -->", "<!-- figures:end -->"
RUNS, RUNS_BEGIN, RUNS_END = "runs.json", "<!-- runs:begin -->", "<!-- runs:end -->"

#: what the paper's text (Section 3, Appendices A and B) says each figure shows
PAPER_SAYS = {
    1: "With a fully connected net the after kernel quickly improves on the FNTK within a few epochs; for VGG on "
       "MNIST the FNTK is already good (some improvement on 3-vs-8); on CIFAR-10 the after kernel is much better "
       "than the FNTK.",
    2: "The kernel is learned first, then the network: the network's test error ultimately catches up with the "
       "after-kernel SVM's.",
    3: "Figure 2's early epochs: the SVM with the after kernel is ahead of the network early in training.",
    4: "Swap invariance falls with training for VGG (most on CIFAR-10, mega-VGG least invariant); for fully "
       "connected nets it is lowest at initialisation, and (§1, §3) the after kernel is less global than VGG's.",
    5: "The after kernel becomes more invariant to small shifts, zooms and rotations with training.",
    6: "The conjugate projection stays a good approximation of the after kernel for VGG (6a) but becomes much "
       "less so after training for fully connected nets (6b) and for VGG on CIFAR-10 (6c).",
    7: "In most cases the conjugate kernel's SVM is nearly as accurate as the after kernel's; the exception is VGG "
       "on MNIST 5-vs-6, where the after kernel is substantially more accurate.",
    8: "Data augmentation does not make the after kernel more invariant to shifts, zooms and rotations.",
    9: "At equal training loss, a larger learning rate gives a better after kernel (lower SVM test error).",
    10: "Larger learning rates give features that reflect global properties more (lower swap invariance).",
    11: "Features from larger learning rates are less invariant to small shifts, zooms and rotations (§3; §1 says "
        "more invariant).",
    12: "The alignment of the after kernel and the conjugate kernel is highest at low learning rates for VGG, at "
        "high ones for fully connected nets.",
    13: "The after kernel is generally more accurate, the conjugate kernel more competitive at higher learning "
        "rates.",
    14: "Figure 11 with augmentation: the trend persists.",
    15: "The networks' test error does not improve much from about 60K to 100K parameters.",
    16: "Augmentation improves the test error of the networks and of the SVMs with their after kernels.",
    17: "(Not a figure of the paper.) Fort et al. 2020: the kernel moves fastest early in training.",
    18: "(Not a figure of the paper.) The top of the train Gram's spectrum.",
    19: "(Not a figure of the paper.) Baratin et al. 2021: kernel-target alignment rises with training.",
    20: "(Not a figure of the paper.) Spectrum and target alignment vs learning rate.",
}
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


def _figure_numbers(field: str) -> set[int]:
    """The figure numbers a claims row's ``figure`` names ("4a, 4c, 4d", "2-3")."""
    out: set[int] = set()
    for part in field.replace(" ", "").split(","):
        digits = "".join(ch if ch.isdigit() or ch == "-" else " " for ch in part).split()
        for d in digits:
            lo, _, hi = d.partition("-")
            if lo:
                out.update(range(int(lo), int(hi or lo) + 1))
    return out


def figure_sections(claims: pd.DataFrame, studies: dict) -> str:
    """For each figure the config draws: what the paper says it shows, the
    figure, and the verdicts of the claim rows read from it."""
    lines = []
    for spec in drawn_figures(studies):
        if spec.pairs != "paper":
            continue
        lines += [f"### Figure {spec.number}: {spec.title}", "",
                  f"**The paper:** {PAPER_SAYS.get(spec.number, '')}", "",
                  f"![Figure {spec.number}](figures/{spec.stem}.png)", ""]
        rows = claims[claims["figure"].map(lambda f: spec.number in _figure_numbers(f))
                      & (claims["verdict"] != "not in this config")]
        if len(rows):
            lines.append("**This run:**")
            for r in rows.itertuples(index=False):
                diff = f"{r.difference:+.3g}" + (f" [{r.ci_low:+.3g}, {r.ci_high:+.3g}]" if r.ci_low == r.ci_low
                                                 else "")
                lines.append(f"- {r.claim}, {r.problem} / {r.architecture}: {r.statement} — **{r.verdict}** "
                             f"(b − a = {diff}, {r.n_seeds} seeds; Holm: {r.verdict_holm})")
            lines.append("")
    return "\n".join(lines)


def runs_table(runs: list[dict]) -> str:
    """The parts of a published run: command, commit, machine, data, wall time
    and the cost model's estimate beside it."""
    lines = ["| part | configs | commit | started | wall time | estimate (cost model, same cores) | estimate / measured |",
             "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['part']} | {', '.join(f'`{c}`' for c in r['configs'])} | `{r['commit']}` | {r['started']} | "
                     f"{r['wall_minutes']:.0f} min | {r['estimate_minutes']:.0f} min | "
                     f"{r['estimate_minutes'] / r['wall_minutes']:.2f} |")
    wall, est = sum(r["wall_minutes"] for r in runs), sum(r["estimate_minutes"] for r in runs)
    lines.append(f"| **all parts** | | | | **{wall:.0f} min** | {est:.0f} min | {est / wall:.2f} |")
    lines.append("")
    for r in runs:
        lines += [f"Part `{r['part']}`: `{r['command']}`", "", f"- machine: {r['machine']}",
                  f"- data: {r['data']}"] + [f"- {note}" for note in r.get("notes", [])] + [""]
    return "\n".join(lines)


def _with_block(text: str, block: str, begin: str = FIGURES_BEGIN, end: str = FIGURES_END) -> str:
    head, sep, rest = text.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        return text
    return f"{head}{begin}\n{block}{end}{tail}"


#: a data file recorded in runs.json -> the footnote of every figure drawing its data set
JPEG_CIFAR = ("cifar10_cat_dog_jpeg_q75", "cifar10",
              "CIFAR-10: cats and dogs decoded from JPEG (quality 75), not the true pixels")


def dataset_notes(runs: list[dict]) -> dict[str, str]:
    """The figures' data-set footnotes of a published run, from the data its
    parts record (``runs.json``): JPEG-derived CIFAR-10 pixels say so."""
    marker, dataset, note = JPEG_CIFAR
    return {dataset: note} if any(marker in r.get("data", "") for r in runs) else {}


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
    readme = folder / "README.md"
    if readme.exists():  # its generated blocks
        text = _with_block(readme.read_text(), figure_sections(claims, config["studies"]))
        if (folder / RUNS).exists():
            text = _with_block(text, runs_table(json.loads((folder / RUNS).read_text())), RUNS_BEGIN, RUNS_END)
        atomic_write_text(readme, text)
        out["README.md"] = readme
    if figures:
        from afterkernel.figures.draw import draw_figure

        training = {k: config["training"][k] for k in ("loss_target", "max_epochs")}
        notes = dataset_notes(json.loads((folder / RUNS).read_text()) if (folder / RUNS).exists() else [])
        for spec in drawn_figures(config["studies"]):
            png = folder / "figures" / f"{spec.stem}.png"
            draw_figure(summary, spec.fig, png=png, training=training, dataset_notes=notes)
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
