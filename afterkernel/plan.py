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

from dataclasses import dataclass

KERNELS = ("after", "conjugate")


@dataclass(frozen=True, order=True)
class Run:
    problem: str
    arch: str
    aug: str  # "plain" | "augmented"
    schedule: str  # "epochs" | "lr{value}"
    seed: int

    @property
    def path(self) -> str:
        return f"{self.problem}/{self.arch}/{self.aug}/{self.schedule}/seed{self.seed}"

    @property
    def augmented(self) -> bool:
        return self.aug == "augmented"

    @property
    def target_mode(self) -> bool:
        return self.schedule != "epochs"

    @property
    def learning_rate(self) -> float | None:
        return float(self.schedule[2:]) if self.target_mode else None


@dataclass(frozen=True)
class Row:
    """One (study, run, snapshot) of the tidy table; ``kernels`` is false for
    the width study, which needs only the network's own test error."""

    study: str
    run: Run
    snapshot: str
    epoch: int | None
    kernels: bool


def aug_name(augmented: bool) -> str:
    return "augmented" if augmented else "plain"


def lr_schedule(rate: float) -> str:
    return f"lr{rate:g}"


def dataset(problem: str) -> str:
    return problem.split("-", 1)[0]


def epochs_of(epochs_study: dict, arch: str) -> list[int]:
    """The snapshot epochs of ``arch`` in the epochs study: its own list under
    ``epochs_by_architecture``, else ``epochs``."""
    return list(epochs_study.get("epochs_by_architecture", {}).get(arch, epochs_study["epochs"]))


def rows(config: dict) -> list[Row]:
    """Every (study, run, snapshot) the config asks for, in a stable order."""
    studies, seeds = config["studies"], config["seeds"]
    out = []
    if "epochs" in studies:
        s = studies["epochs"]
        for problem, arch in s["pairs"]:
            epochs = sorted(epochs_of(s, arch))
            for augmented in s["augmentation"]:
                for seed in seeds:
                    run = Run(problem, arch, aug_name(augmented), "epochs", seed)
                    out += [Row("epochs", run, f"e{e}", e, True) for e in epochs]
    if "learning_rate" in studies:
        s = studies["learning_rate"]
        for problem, arch in s["pairs"]:
            for rate in s["learning_rates"][dataset(problem)]:
                for augmented in s["augmentation"]:
                    for seed in seeds:
                        run = Run(problem, arch, aug_name(augmented), lr_schedule(rate), seed)
                        out.append(Row("learning_rate", run, "final", None, True))
    if "width" in studies:
        s = studies["width"]
        for problem, family in s["pairs"]:
            for arch in s["families"][family]:
                for seed in seeds:
                    run = Run(problem, arch, "plain", "epochs", seed)
                    out += [Row("width", run, f"e{e}", e, False) for e in sorted(s["epochs"])]
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
    order = lambda s: -1 if s == "final" else int(s[1:])  # noqa: E731
    return {run: sorted(snaps, key=order) for run, snaps in out.items()}


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
        params.update(schedule="target", snapshot_epochs=[0], learning_rate=run.learning_rate,
                      loss_target=t["loss_target"], max_epochs=t["max_epochs"])
    else:
        params.update(schedule="epochs", snapshot_epochs=snapshot_epochs,
                      learning_rate=t["learning_rate"])
    return params
