"""Expand a validated config into the study's jobs.

A *run* is one training job: (problem, architecture, augmentation, schedule,
seed). The epochs schedule trains at the config's learning rate and keeps a
snapshot at every requested epoch (``e0`` is the initialisation, whose after
kernel is the FNTK); a ``lr{value}`` schedule trains until the training loss
reaches the target and keeps the ``final`` snapshot. Kernels, SVMs and
metrics are computed per (run, snapshot). The same run serves every study
that needs it, so nothing is trained twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from afterkernel.vocabulary import (
    EPOCHS,
    dataset_of,
    FINAL,
    KERNELS,
    STOP_AT_EPOCHS,
    STOP_AT_LOSS_TARGET,
    augmentation_name,
    lr_schedule,
    schedule_learning_rate,
    snapshot_name,
    snapshot_order,
)

RESULTS = "results"
LOGS = "logs"
RESOURCES = "resources"
#: a run's path below each stage's folder, as Snakemake wildcards
RUN_WILDCARDS = "{problem}/{arch}/{aug}/{schedule}/seed{seed}"


@dataclass(frozen=True, order=True)
class Run:
    problem: str
    arch: str
    aug: str  # vocabulary.AUGMENTED | vocabulary.PLAIN
    schedule: str  # vocabulary.EPOCHS | "lr{value}"
    seed: int

    @property
    def path(self) -> str:
        return RUN_WILDCARDS.format(problem=self.problem, arch=self.arch, aug=self.aug,
                                    schedule=self.schedule, seed=self.seed)

    @property
    def augmented(self) -> bool:
        return augmentation_name(True) == self.aug

    @property
    def target_mode(self) -> bool:
        return self.schedule != EPOCHS

    @property
    def learning_rate(self) -> float | None:
        return schedule_learning_rate(self.schedule)


@dataclass(frozen=True)
class Row:
    """One (study, run, snapshot) of the tidy table; ``kernels`` is false for
    the width study, which needs only the network's own test error."""

    study: str
    run: Run
    snapshot: str
    epoch: int | None
    kernels: bool


# --------------------------------------------------------------------------
# where each stage writes: results/<stage>/..., its log at logs/<stage>/...


def _run_path(run: Run | str) -> str:
    return run.path if isinstance(run, Run) else run


def output_roots(config: dict) -> tuple[str, str]:
    """Where a study writes: ``results/<name>`` and ``logs/<name>`` for a
    config with a ``name``, else ``results`` and ``logs`` (the embedded
    default)."""
    name = config.get("name")
    return (f"{RESULTS}/{name}", f"{LOGS}/{name}") if name else (RESULTS, LOGS)


def result_file(stage: str, name: str, root: str = RESULTS) -> str:
    return f"{root}/{stage}/{name}"


def log_file(stage: str, name: str, root: str = LOGS) -> str:
    """The log of the job writing ``<results root>/<stage>/<name>.*``."""
    return f"{root}/{stage}/{name}.log"


def benchmark_file(stage: str, name: str, root: str = RESULTS) -> str:
    return f"{root}/benchmarks/{stage}/{name}.tsv"


def fetched_keras_file(dataset: str = "{dataset}") -> str:
    """A ``keras.datasets`` dataset fetched once for every problem of it
    (``afterkernel.data.sources.fetch_keras_dataset``; a resource, not a result)."""
    return f"{RESOURCES}/keras/{dataset}.npz"


def problem_file(problem: str = "{problem}", subset: str = "", root: str = RESULTS) -> str:
    """``results/data/{problem}{subset}.h5``: ``subset`` is ``""`` for the
    full data (no cap at all), else the tag of the caps (:func:`subset_tag`),
    so that two caps of a problem never share a file; ``"{subset}"`` is the
    rule's wildcard."""
    if not isinstance(subset, str) or not (subset == "{subset}" or re.fullmatch(SUBSET_PATTERN, subset)):
        raise ValueError(f"problem_file: subset must be '' or a tag such as '.train1000-test250-s0' "
                         f"(matching {SUBSET_PATTERN}), got {subset!r} (the root is the keyword root=)")
    return result_file("data", f"{problem}{subset}.h5", root)


# --------------------------------------------------------------------------
# the per-class caps of a (problem, architecture) and the problem file's tag

#: the caps' config keys under ``data`` and in each ``data.caps`` entry
CAP_KEYS = ("max_train_per_class", "max_test_per_class")
#: a problem file's subset tag: empty (no cap), or both sides and the seed
SUBSET_PATTERN = r"(\.train(all|\d+)-test(all|\d+)-s\d+)?"


def caps_of(config: dict, problem: str, arch: str | None = None) -> tuple[int | None, int | None]:
    """(train, test) images per class of ``problem`` trained with ``arch``
    (``None``: the caps of the problem itself): ``data.max_*_per_class``,
    overridden by the ``data.caps`` entries, most specific last: the data
    set's entry, the problem's (without ``architecture``), the (problem,
    ``arch``) entry. An entry without a cap key inherits it from the level
    below; an explicit ``null`` there means all images."""
    data = config.get("data") or {}
    caps = {key: data.get(key) for key in CAP_KEYS}
    entries = data.get("caps") or []
    levels = (
        lambda e: "dataset" in e and e["dataset"] == dataset_of(problem),
        lambda e: e.get("problem") == problem and "architecture" not in e,
        lambda e: arch is not None and e.get("problem") == problem and e.get("architecture") == arch,
    )
    for matches in levels:
        for entry in entries:
            if matches(entry):
                caps.update({key: entry[key] for key in CAP_KEYS if key in entry})
    return caps[CAP_KEYS[0]], caps[CAP_KEYS[1]]


def subset_tag(train_cap: int | None, test_cap: int | None, seed: int = 0) -> str:
    """``""`` without caps, else ``.train{N}-test{M}-s{seed}`` (``all`` for
    an uncapped side): the part of a problem file's name after the problem."""
    if train_cap is None and test_cap is None:
        return ""
    side = lambda cap: "all" if cap is None else str(int(cap))  # noqa: E731
    return f".train{side(train_cap)}-test{side(test_cap)}-s{int(seed)}"


def caps_from_tag(tag: str) -> tuple[int | None, int | None, int | None]:
    """The inverse of :func:`subset_tag`: (train cap, test cap, seed), all
    ``None`` for ``""`` (the full data, nothing drawn)."""
    if tag == "":
        return None, None, None
    m = re.fullmatch(r"\.train(all|\d+)-test(all|\d+)-s(\d+)", tag)
    if not m:
        raise ValueError(f"{tag!r} is not a problem file's subset tag ('' or e.g. '.train1000-test250-s0')")
    train, test, seed = m.groups()
    return (None if train == "all" else int(train)), (None if test == "all" else int(test)), int(seed)


def subset_of(config: dict, problem: str, arch: str | None = None) -> str:
    """The subset tag of the problem file that (``problem``, ``arch``) trains
    and measures on: :func:`subset_tag` of :func:`caps_of` and ``data.subset_seed``."""
    seed = (config.get("data") or {}).get("subset_seed") or 0
    return subset_tag(*caps_of(config, problem, arch), seed)


def run_problem_file(config: dict, run: Run, root: str = RESULTS) -> str:
    """The problem file of ``run`` (its problem under the caps of its architecture)."""
    return problem_file(run.problem, subset_of(config, run.problem, run.arch), root)


def training_file(run: Run | str = RUN_WILDCARDS, root: str = RESULTS) -> str:
    return result_file("training", f"{_run_path(run)}.h5", root)


def gram_file(run: Run | str = RUN_WILDCARDS, root: str = RESULTS) -> str:
    return result_file("kernels", f"{_run_path(run)}.gram.h5", root)


def kernel_metrics_file(run: Run | str = RUN_WILDCARDS, root: str = RESULTS) -> str:
    return result_file("kernels", f"{_run_path(run)}.metrics.h5", root)


def svm_name(run: Run | str = RUN_WILDCARDS, snapshot: str = "{snapshot}", kernel: str = "{kernel}") -> str:
    return f"{_run_path(run)}/{snapshot}.{kernel}"


def svm_file(run: Run | str = RUN_WILDCARDS, snapshot: str = "{snapshot}", kernel: str = "{kernel}",
             root: str = RESULTS) -> str:
    return result_file("svm", f"{svm_name(run, snapshot, kernel)}.h5", root)


def table_file(name: str, root: str = RESULTS) -> str:
    """``name``: ``metrics.csv``, ``summary.csv``, ``claims.csv``, ``claims.md``."""
    return result_file("tables", name, root)


def figure_files(stem: str, root: str = RESULTS) -> tuple[str, str]:
    """The PNG and SVG of a figure."""
    return result_file("figures", f"{stem}.png", root), result_file("figures", f"{stem}.svg", root)


def figure_caption_file(stem: str, root: str = RESULTS) -> str:
    """The figure's report caption (reStructuredText), written with it."""
    return result_file("figures", f"{stem}.rst", root)


def other_pairs_stem(stem: str) -> str:
    """The stem of figure ``stem`` drawn for the pairs the paper does not show."""
    return f"{stem}_other_pairs"


# --------------------------------------------------------------------------
# the study's runs and rows


def pair_key(problem: str, arch: str) -> str:
    """How ``studies.epochs.epochs_by_pair`` names a pair: ``problem/arch``."""
    return f"{problem}/{arch}"


def epochs_of(epochs_study: dict, problem: str, arch: str) -> list[int]:
    """The snapshot epochs of (``problem``, ``arch``) in the epochs study: the
    pair's own list under ``epochs_by_pair``, else the architecture's under
    ``epochs_by_architecture``, else ``epochs``."""
    by_pair = epochs_study.get("epochs_by_pair", {})
    if pair_key(problem, arch) in by_pair:
        return list(by_pair[pair_key(problem, arch)])
    return list(epochs_study.get("epochs_by_architecture", {}).get(arch, epochs_study["epochs"]))


def rows(config: dict) -> list[Row]:
    """Every (study, run, snapshot) the config asks for, in a stable order."""
    studies, seeds = config["studies"], config["seeds"]
    out = []
    if "epochs" in studies:
        s = studies["epochs"]
        for problem, arch in s["pairs"]:
            epochs = sorted(epochs_of(s, problem, arch))
            for augmented in s.get("augmentation_by_architecture", {}).get(arch, s["augmentation"]):
                for seed in seeds:
                    run = Run(problem, arch, augmentation_name(augmented), EPOCHS, seed)
                    out += [Row("epochs", run, snapshot_name(e), e, True) for e in epochs]
    if "learning_rate" in studies:
        s = studies["learning_rate"]
        for problem, arch in s["pairs"]:
            for rate in s["learning_rates"][dataset_of(problem)]:
                for augmented in s["augmentation"]:
                    for seed in seeds:
                        run = Run(problem, arch, augmentation_name(augmented), lr_schedule(rate), seed)
                        out.append(Row("learning_rate", run, FINAL, None, True))
    if "width" in studies:
        s = studies["width"]
        for problem, family in s["pairs"]:
            for arch in s["families"][family]:
                for seed in seeds:
                    run = Run(problem, arch, augmentation_name(False), EPOCHS, seed)
                    out += [Row("width", run, snapshot_name(e), e, False) for e in sorted(s["epochs"])]
    return out


def training_runs(config: dict) -> dict[Run, list[int]]:
    """Each run to train, with its snapshot epochs (union over the studies)."""
    runs: dict[Run, set[int]] = {}
    for row in rows(config):
        epochs = runs.setdefault(row.run, set())
        if row.epoch is not None:
            epochs.add(row.epoch)
    return {run: sorted(epochs) for run, epochs in sorted(runs.items())}


def kernel_snapshots(config: dict) -> list[tuple[Run, str]]:
    """Each (run, snapshot) whose kernels are computed, without repeats."""
    return sorted({(row.run, row.snapshot) for row in rows(config) if row.kernels})


def kernel_runs(config: dict) -> dict[Run, list[str]]:
    """Each run with kernels to compute, with its snapshots in epoch order."""
    out: dict[Run, list[str]] = {}
    for run, snapshot in kernel_snapshots(config):
        out.setdefault(run, []).append(snapshot)
    return {run: sorted(snaps, key=snapshot_order) for run, snaps in out.items()}


def training_params(config: dict, run: Run, snapshot_epochs: list[int]) -> dict:
    """The config slice one training job depends on (and nothing more, so a
    change elsewhere in the config does not retrain)."""
    t = config["training"]
    params = {
        "arch_spec": config["architectures"][run.arch],
        "batch_size": t["batch_size"],
        "augmentation": t["augmentation"] if run.augmented else None,
    }
    if run.target_mode:
        params.update(stop=STOP_AT_LOSS_TARGET, snapshot_epochs=[0], learning_rate=run.learning_rate,
                      loss_target=t["loss_target"], max_epochs=t["max_epochs"])
    else:
        params.update(stop=STOP_AT_EPOCHS, snapshot_epochs=snapshot_epochs,
                      learning_rate=t["learning_rate"])
    return params


def width_family(width_study: dict | None, problem: str, arch: str) -> str | None:
    """The network family (``studies.width.families`` key) of ``arch`` among
    the families the width study pairs with ``problem``."""
    width_study = width_study or {}
    for paired, family in width_study.get("pairs", []):
        if paired == problem and arch in width_study.get("families", {}).get(family, ()):
            return family
    return None


def row_files(row: Row, root: str = RESULTS) -> dict:
    """The files the tidy table reads for ``row``: its run's training file and,
    for rows with kernels, the kernel metrics file and one SVM file per kernel."""
    files: dict = {"training": training_file(row.run, root)}
    if row.kernels:
        files["kernel_metrics"] = kernel_metrics_file(row.run, root)
        files["svm"] = {k: svm_file(row.run, row.snapshot, k, root) for k in KERNELS}
    return files


def table_rows(config: dict, root: str = RESULTS) -> list[dict]:
    """The rows of the tidy table as plain mappings (the aggregate rule's
    ``rows`` param): the keys of :mod:`afterkernel.aggregate` and ``files``."""
    width = config["studies"].get("width")
    return [
        {
            "study": row.study, "run": row.run.path, "problem": row.run.problem,
            "architecture": row.run.arch,
            "family": width_family(width, row.run.problem, row.run.arch) if row.study == "width" else None,
            "augmentation": row.run.augmented, "learning_rate": row.run.learning_rate,
            "seed": row.run.seed, "snapshot": row.snapshot, "epoch": row.epoch, "kernels": row.kernels,
            "files": row_files(row, root),
        }
        for row in rows(config)
    ]


def table_inputs(table_rows: list[dict]) -> list[str]:
    """Every file the tidy table reads, once each, in a stable order."""
    out: dict[str, None] = {}
    for row in table_rows:
        files = row["files"]
        out[files["training"]] = None
        if "kernel_metrics" in files:
            out[files["kernel_metrics"]] = None
            out.update(dict.fromkeys(files["svm"].values()))
    return list(out)
