"""The paper config's DAG: the job count of every rule is what the config implies.

The expected counts are derived here from the config directly (not from
afterkernel.plan), so the test checks the workflow's expansion end to end;
only which subset a pair's caps name is taken from afterkernel.plan.subset_of
(tests/data/test_caps.py checks it).
"""

from __future__ import annotations


import yaml
from micro import job_counts, snakemake

from afterkernel.figures import drawn_figures
from afterkernel.plan import subset_of


def expected_counts(c: dict) -> dict[str, int]:
    s, seeds = c["studies"], len(c["seeds"])
    ep, lr = s["epochs"], s["learning_rate"]
    width = s.get("width", {"pairs": [], "families": {}})
    augs = ep.get("augmentation_by_architecture", {})
    epoch_runs = {(p, a, aug) for p, a in ep["pairs"] for aug in augs.get(a, ep["augmentation"])}
    width_runs = {(p, a, False) for p, fam in width["pairs"] for a in width["families"][fam]}
    lr_runs = sum(len(lr["learning_rates"][p.split("-")[0]]) * len(lr["augmentation"])
                  for p, _ in lr["pairs"])
    own = ep.get("epochs_by_architecture", {})
    pairs = {(p, a) for p, a in ep["pairs"] + lr["pairs"]} | {
        (p, a) for p, fam in width["pairs"] for a in width["families"][fam]}
    by_pair = ep.get("epochs_by_pair", {})
    snapshots = sum(len(by_pair.get(f"{p}/{a}", own.get(a, ep["epochs"]))) for p, a, _ in epoch_runs) + lr_runs
    counts = {
        # one problem file per problem and subset (data.caps)
        "prepare_data": len({(p, subset_of(c, p, a)) for p, a in pairs}),
        "train": (len(epoch_runs | width_runs) + lr_runs) * seeds,
        "kernel": (len(epoch_runs) + lr_runs) * seeds,
        "svm": 2 * snapshots * seeds,
        "aggregate": 1,
        "claims": 1,
        "all": 1,
    }
    counts.update({spec.rule: 1 for spec in drawn_figures(c["studies"])})
    if c["data"]["source"] == "keras":  # one download per dataset
        counts["fetch_data"] = len({p.split("-")[0] for p in c["problems"]})
    return counts


def planned_counts(root, configfile, tmp_path) -> dict[str, int]:
    proc = snakemake(tmp_path, "-n", "--configfile", str(configfile), "--cores", "1",
                     snakefile=root / "Snakefile", timeout=600)
    return job_counts(proc.stdout)


def test_paper_dag_job_counts(root, tmp_path):
    config = yaml.safe_load((root / "configs/paper.yaml").read_text())
    assert planned_counts(root, root / "configs/paper.yaml", tmp_path) == expected_counts(config)


def test_default_dag_job_counts(root, tmp_path):
    config = yaml.safe_load((root / "config.yaml").read_text())
    assert planned_counts(root, root / "config.yaml", tmp_path) == expected_counts(config)


def test_run_sh_dry_run_plans_and_writes_no_report(root):
    """./run.sh -n: the README's main command as a dry run (no report step)."""
    import subprocess

    proc = subprocess.run(["bash", str(root / "run.sh"), "-n", "--quiet"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Report:" not in proc.stdout


def test_reproduction_dag_job_counts(root, tmp_path):
    """The reproduction config: per-architecture and per-pair epochs lists."""
    config = yaml.safe_load((root / "configs/reproduction.yaml").read_text())
    assert config["studies"]["epochs"]["epochs_by_pair"]
    assert planned_counts(root, root / "configs/reproduction.yaml", tmp_path) == expected_counts(config)
