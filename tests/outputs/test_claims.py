"""The claims table on small fabricated metrics tables (layout of
``results/tables/metrics.csv``) with a chosen effect and seeded noise."""

from __future__ import annotations

import html
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from afterkernel import aggregate as agg
from afterkernel import claims as cl

ALL_PAIRS = cl.PAPER_PAIRS + (cl.MEGA,)
INVARIANCES = ("translation", "rotation", "zoom")
N_TEST = 10_000  # the binomial floor at 10 % error: 0.003


# --------------------------------------------------------------------------
# fabricated metrics


def _centred(gen: np.random.Generator, n: int, sd: float) -> np.ndarray:
    """Noise whose mean over the seeds is zero: the effect is exactly the
    one fabricated, whatever the seed of the generator."""
    x = gen.normal(0.0, sd, n)
    return x - x.mean()


def _epochs_base(problem, arch, aug, epoch, last, sign):
    """Values of one epochs-study snapshot; ``sign`` +1: the paper's
    direction, -1: reversed, 0: no effect. Networks have trained (loss 0.1)
    from epoch 1 on."""
    p, rise = epoch / max(last, 1), min(epoch, 1)
    after = 0.15 - 0.05 * sign * p - 0.03 * sign * aug
    gap = 0.05 * sign if (problem, arch) == ("mnist-5v6", "vgg") else 0.1 * (sign < 0)
    if arch == "fc":  # C5: up at epoch 1, down after it, above epoch 0 at the end
        swap = 0.8 + sign * (0.1 if epoch == 1 else 0.05 * p)
    else:
        swap = 0.8 - 0.1 * sign * p
    aligned = arch in ("vgg", "mega-vgg") and problem.startswith("mnist-")
    aug_shift = {1.0: -0.05, -1.0: 0.2}.get(sign, 0.0) * aug  # C9: within the margin, or far above it
    values = {q: 0.6 + 0.1 * sign * rise + aug_shift for q in INVARIANCES}
    # C3: the network is behind at epoch 1 and catches up at the last epoch
    behind = 0.03 * sign if epoch < last else {1.0: 0.005, -1.0: 0.08}.get(sign, 0.0)
    values.update(swap=swap, alignment=0.99 + 0.008 * sign if aligned else 0.9 - 0.05 * sign * p,
                  nn_test_error=after + behind, train_loss=0.69 if epoch == 0 else 0.1,
                  # L1: the velocity into epoch 1 vs into later snapshots; L2: alignment rises
                  kernel_velocity=math.nan if epoch == 0 else 0.15 + 0.05 * sign * (1 if epoch == 1 else -1),
                  target_alignment=0.3 + 0.1 * sign * p, target_alignment_centred=0.2 + 0.1 * sign * p)
    return {"after": {**values, "svm_test_error": after}, "conjugate": {**values, "svm_test_error": after + gap}}


def _lr_base(largest, aug, sign):
    sign = -sign if aug else sign  # augmented runs go the other way: they must not be used
    after = 0.15 - 0.03 * sign * largest
    values = {**dict.fromkeys(INVARIANCES, 0.6), "swap": 0.7 - 0.05 * sign * largest, "alignment": 0.95,
              "nn_test_error": after + 0.02, "train_loss": 0.01}
    return {"after": {**values, "svm_test_error": after},
            "conjugate": {**values, "svm_test_error": after + 0.03 - 0.02 * sign * largest}}


def _records(base, seeds, gen, noise, run_offsets, keys):
    """One record per seed and kernel: ``base`` plus centred noise
    (alignment: one offset per run plus a small jitter, so that its minimum
    over the epochs keeps the fabricated mean up to the jitter; nn_test_error
    shared by both kernel rows of a snapshot)."""
    shared = {"alignment": run_offsets + _centred(gen, len(seeds), noise / 10),
              "nn_test_error": _centred(gen, len(seeds), noise), "train_loss": np.zeros(len(seeds))}
    out = []
    for kernel, values in base.items():
        noisy = {q: v + (shared[q] if q in shared else _centred(gen, len(seeds), noise)) for q, v in values.items()}
        for i, seed in enumerate(seeds):
            out.append({**keys(seed), "kernel": kernel, **{q: float(v[i]) for q, v in noisy.items()}})
    return out


def fabricate(pairs=ALL_PAIRS, seeds=(0, 1, 2), epochs=(0, 1, 3, 10), *, sign=1.0, noise=0.001,
              augmentation=(False, True), lr_pairs=cl.PAPER_PAIRS, rates=(0.01, 0.1), rng=0) -> pd.DataFrame:
    """A metrics table of the epochs study (``pairs``) and the learning-rate
    study (``lr_pairs``), dtypes as :func:`afterkernel.aggregate.metrics_table`."""
    gen = np.random.default_rng(rng)
    rec = []
    for problem, arch in pairs:
        for aug in augmentation:
            offsets, name = _centred(gen, len(seeds), noise), "aug" if aug else "plain"
            for epoch in epochs:
                rec += _records(_epochs_base(problem, arch, aug, epoch, epochs[-1], sign), seeds, gen, noise, offsets,
                                lambda s: dict(study="epochs", run=f"{problem}/{arch}/{name}/epochs/s{s}",
                                               problem=problem, architecture=arch, augmentation=aug, seed=s,
                                               snapshot=f"e{epoch}", epoch=epoch))
    for problem, arch in lr_pairs:
        for rate in rates:
            for aug in augmentation:
                rec += _records(_lr_base(rate == max(rates), aug, sign), seeds, gen, noise, 0.0,
                                lambda s: dict(study="learning_rate", run=f"{problem}/{arch}/{aug}/lr{rate}/s{s}",
                                               problem=problem, architecture=arch, augmentation=aug,
                                               learning_rate=rate, seed=s, snapshot="final", epoch=5,
                                               epochs_used=5, reached_target=True))
    df = pd.DataFrame.from_records(rec).reindex(columns=agg.METRICS_COLUMNS)
    df = df.assign(family=np.nan, separable=True, converged=True, diverged=False, n_params=1000, n_train=1000,
                   n_test=N_TEST)
    for col in ("study", "run", "problem", "architecture", "family", "snapshot", "kernel"):
        df[col] = df[col].astype(object).where(df[col].notna(), np.nan)
    df["augmentation"] = df["augmentation"].astype(bool)
    for col in agg.QUANTITIES + ["learning_rate", "epoch"]:
        df[col] = df[col].astype("boolean") if col in agg.BOOL_QUANTITIES else df[col].astype(float)
    for col in agg.INT_COLUMNS:
        df[col] = df[col].round().astype("Int64")
    return df


def row_of(claims, claim, problem, arch, quantity=None, condition_b=None):
    sel = (claims["claim"] == claim) & (claims["problem"] == problem) & (claims["architecture"] == arch)
    if quantity is not None:
        sel &= claims["quantity"] == quantity
    if condition_b is not None:
        sel &= claims["condition_b"] == condition_b
    assert sel.sum() == 1, claims[sel]
    return claims[sel].iloc[0]


def per_seed(m, quantity, **where):
    sel = np.ones(len(m), bool)
    for col, value in where.items():
        sel &= (m[col] == value).to_numpy()
    return m[sel].set_index("seed")[quantity].sort_index()


# --------------------------------------------------------------------------
# verdicts


def test_columns_order_and_row_count():
    claims = cl.claims_table(fabricate())
    assert list(claims.columns) == cl.CLAIMS_COLUMNS
    # C1 2, C2 1, C3 6x2, C4 4, C5 2x3, C6 6x3, C7 2+3, C8 1+5, C9 6x5, C10 5x3; L1 6, L2 6x2
    assert len(claims) == 117
    assert (claims["claim"].str[0] == "L").tolist() == [False] * 99 + [True] * 18  # the paper's first
    numbers = claims["claim"].str[1:].astype(int)
    assert numbers[:99].is_monotonic_increasing and claims["claim"].iloc[98] == "C10"
    assert numbers[99:].is_monotonic_increasing and claims["claim"].iloc[-1] == "L2"
    for _, group in claims.groupby("claim"):
        pairs = list(zip(group["problem"], group["architecture"]))
        assert pairs == sorted(pairs)
    assert set(claims["verdict"]) <= set(cl.VERDICTS) and set(claims["verdict_holm"]) <= set(cl.VERDICTS)


def test_paper_direction_is_reproduced():
    claims = cl.claims_table(fabricate(sign=1.0))
    assert (claims["verdict"] == "reproduced").all(), claims.loc[claims["verdict"] != "reproduced"]
    assert (claims["n_seeds"] == 3).all()
    r = row_of(claims, "C1", "mnist-3v8", "fc")
    assert (r["condition_a"], r["condition_b"], r["paired"], r["confidence"]) == ("epoch 0", "epoch 10", True, 0.95)
    assert r["statement"] == "After-kernel SVM test error is lower at the last epoch (10) than at epoch 0 (the FNTK)"
    r = row_of(claims, "C10", "cifar10-cat-dog", "vgg", quantity="swap")
    assert (r["condition_a"], r["condition_b"], r["paired"]) == ("lr 0.01", "lr 0.1", False)
    r = row_of(claims, "C3", "mnist-3v8", "vgg", quantity="svm_test_error vs nn_test_error")
    assert r["condition_a"] == "network, epoch 1 (first with training loss ≤ 0.3 in every seed)"
    r = row_of(claims, "C3", "mnist-3v8", "fc", quantity="nn_test_error vs svm_test_error")
    assert r["relation"] == "not greater" and r["confidence"] == 0.9
    assert r["margin"] == pytest.approx(0.25 * r["mean_a"])
    # C7: the contrast of the two networks' drops, Welch, with VGG's lowest alignment beside it
    r = row_of(claims, "C7", "mnist-3v8", "fc", quantity="alignment drop")
    assert not r["paired"] and r["condition_a"] == "vgg, drop from epoch 0 to epoch 10"
    assert r["difference"] == pytest.approx(0.05, abs=1e-3) and "vgg's lowest alignment" in r["note"]
    assert len(claims[(claims["claim"] == "C5") & (claims["problem"] == "mnist-3v8")]) == 3


def test_reversed_effect_is_contradicted():
    claims = cl.claims_table(fabricate(sign=-1.0))
    assert (claims["verdict"] == "contradicted").all(), claims.loc[claims["verdict"] != "contradicted"]


def test_literature_rows_are_marked_and_checked():
    claims = cl.claims_table(fabricate())
    lit = claims[claims["claim"].str.startswith("L")]
    assert lit["statement"].str.contains(cl.LITERATURE).all()
    assert set(lit["figure"]) == {"17", "19"}
    r = row_of(claims, "L1", "mnist-3v8", "fc")
    assert (r["condition_a"], r["condition_b"]) == ("into the last snapshot, epoch 10", "epoch 0 → 1, epoch 1")
    assert r["paired"] and r["difference"] == pytest.approx(0.1, abs=0.005) and r["verdict"] == "reproduced"
    m = fabricate()
    r = row_of(claims, "L2", "mnist-3v8", "vgg", quantity="target_alignment_centred")
    a = per_seed(m, "target_alignment_centred", study="epochs", problem="mnist-3v8", architecture="vgg",
                 augmentation=False, kernel="after", epoch=0)
    b = per_seed(m, "target_alignment_centred", study="epochs", problem="mnist-3v8", architecture="vgg",
                 augmentation=False, kernel="after", epoch=10)
    assert r["difference"] == pytest.approx((b - a).mean()) and r["verdict"] == "reproduced"
    reversed_ = cl.claims_table(fabricate(sign=-1.0))
    assert (reversed_.loc[reversed_["claim"].str.startswith("L") & (reversed_["verdict"] != "not in this config"),
                          "verdict"] == "contradicted").all()


def test_pure_noise_is_inconclusive():
    """No effect: no direction is shown; "not greater" may hold (it is true), never the opposite."""
    claims = cl.claims_table(fabricate(sign=0.0, noise=0.05, rng=3))
    directional = claims["relation"].isin(cl.DIRECTIONAL)
    assert (claims.loc[directional, "verdict"] == "inconclusive").all(), claims.loc[claims["verdict"] != "inconclusive"]
    assert (claims.loc[~directional, "verdict"] != "contradicted").all()
    assert (claims["ci_low"] < claims["ci_high"]).all()


def test_identical_seeds_never_give_a_certain_verdict():
    """Errors on a 1 / n_test grid: seeds that agree to the image keep the
    binomial error of the test set; other quantities get no interval."""
    m = fabricate(noise=0.0)
    claims = cl.claims_table(m)
    r = row_of(claims, "C1", "mnist-3v8", "fc")
    floor = math.sqrt(0.125 * 0.875 / N_TEST)  # p: the mean of the two errors, 0.15 and 0.10
    half = stats.t.ppf(0.975, 2) * floor / math.sqrt(3)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((-0.05 - half, -0.05 + half))
    assert "spread floored at the binomial error of 10000 test images" in r["note"]
    m["n_test"] = 50  # the same differences on 50 test images: no longer certain
    assert row_of(cl.claims_table(m), "C1", "mnist-3v8", "fc")["verdict"] == "inconclusive"
    r = row_of(claims, "C4", "mnist-3v8", "vgg")
    assert (r["verdict"], math.isnan(r["ci_low"])) == ("inconclusive", True)
    assert "every seed gives the same value" in r["note"]


def test_untrained_network_is_not_compared():
    """C3 waits for the training loss to fall to 0.3 in every seed: a network
    that has not trained at the compared snapshot never gives 'reproduced'."""
    m = fabricate(pairs=[("mnist-3v8", "fc")], augmentation=(False,), lr_pairs=[])
    untrained = m["epoch"] < 3
    m.loc[untrained, "train_loss"] = 0.6
    m.loc[untrained & (m["seed"] == 0) | (m["epoch"] == 3) & (m["seed"] == 1), "train_loss"] = 0.5
    r = row_of(cl.claims_table(m), "C3", "mnist-3v8", "fc", quantity="svm_test_error vs nn_test_error")
    assert r["condition_b"] == "SVM (after kernel), epoch 10 (first with training loss ≤ 0.3 in every seed)"
    m.loc[:, "train_loss"] = 0.6
    r = row_of(cl.claims_table(m), "C3", "mnist-3v8", "fc", quantity="svm_test_error vs nn_test_error")
    assert r["verdict"] == "not in this config" and "training loss is ≤ 0.3" in r["note"]


def test_claims_on_the_last_epoch_need_a_trained_network():
    m = fabricate(pairs=[("mnist-3v8", "fc"), ("mnist-3v8", "vgg")], augmentation=(False,), lr_pairs=[])
    m.loc[(m["architecture"] == "vgg") & (m["seed"] == 2), "train_loss"] = 0.5  # one seed never trains
    claims = cl.claims_table(m)
    for claim, arch, quantity in (("C4", "vgg", "swap"), ("C7", "fc", "alignment drop")):
        r = row_of(claims, claim, "mnist-3v8", arch, quantity=quantity)
        assert r["verdict"] == "not in this config"
        assert r["note"] == "the vgg network has not trained by its last epoch (10): training loss up to 0.5 > 0.3"
    assert row_of(claims, "C6", "mnist-3v8", "vgg", quantity="zoom")["verdict"] == "reproduced"  # epoch 0 -> 1
    assert row_of(claims, "C1", "mnist-3v8", "fc")["verdict"] == "reproduced"


@pytest.mark.parametrize("relation, diff, margin, expected", [
    ("<", -0.1, math.nan, "reproduced"), ("<", 0.1, math.nan, "contradicted"), ("<", -0.01, math.nan, "inconclusive"),
    (">", 0.1, math.nan, "reproduced"), (">", -0.1, math.nan, "contradicted"), (">", 0.01, math.nan, "inconclusive"),
    ("not greater", -0.1, 0.05, "reproduced"), ("not greater", 0.2, 0.05, "contradicted"),
    ("not greater", 0.05, 0.05, "inconclusive"), ("within", 0.0, 0.1, "reproduced"),
    ("within", 0.3, 0.1, "contradicted"), ("within", -0.3, 0.1, "contradicted"),
    ("within", 0.1, 0.1, "inconclusive"), ("within", 0.0, math.nan, "inconclusive"),
])
def test_relations(relation, diff, margin, expected):
    est = cl.Estimate(0.5, 0.5 + diff, diff, se=0.01, df=4, n=5)
    assert cl.test_relation(relation, est, margin).verdict == expected


def test_equivalence_is_tost_at_90_percent():
    est = cl.Estimate(0.1, 0.105, 0.005, se=0.004, df=4, n=5)
    t = cl.test_relation("within", est, 0.025)
    half = stats.t.ppf(0.95, 4) * 0.004
    assert (t.ci_low, t.ci_high, t.confidence) == pytest.approx((0.005 - half, 0.005 + half, 0.9))
    # the two one-sided tests of scipy: H0 d <= -margin and H0 d >= margin
    p_low = stats.t.sf((0.005 + 0.025) / 0.004, 4)
    p_high = stats.t.cdf((0.005 - 0.025) / 0.004, 4)
    assert t.p_reproduced == pytest.approx(max(p_low, p_high))
    assert t.verdict == ("reproduced" if max(p_low, p_high) <= 0.05 else "inconclusive")


def test_holm_matches_hand_computation():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 (m = 4): 4x, 3x, 2x, 1x, running maximum
    assert cl.holm(p) == pytest.approx([0.03, 0.06, np.nan, 0.06, 0.02], nan_ok=True)


def test_holm_column_is_more_conservative():
    m = fabricate(noise=0.004, seeds=(0, 1, 2), rng=5)
    claims = cl.claims_table(m)
    order = {v: i for i, v in enumerate(("reproduced", "inconclusive"))}
    tested = claims[claims["p_value"].notna()]
    assert (tested["verdict_holm"] != "reproduced").sum() >= (tested["verdict"] != "reproduced").sum()
    for r in tested.itertuples():
        if r.verdict_holm == "reproduced":
            assert r.verdict == "reproduced"
        assert order.get(r.verdict, 0) <= order.get(r.verdict_holm, 1) or r.verdict == "contradicted"


# --------------------------------------------------------------------------
# intervals against scipy


def test_paired_interval_matches_scipy():
    m = fabricate(noise=0.01, seeds=(0, 1, 2, 3), rng=1)
    claims = cl.claims_table(m)
    run = dict(study="epochs", problem="mnist-3v8", architecture="fc", augmentation=False, kernel="after")
    a, b = (per_seed(m, "swap", epoch=e, **run) for e in (0, 1))
    r = row_of(claims, "C5", "mnist-3v8", "fc", condition_b="epoch 1")
    res = stats.ttest_rel(b, a, alternative="greater")
    ci = stats.ttest_rel(b, a).confidence_interval()
    assert r["paired"] and r["n_seeds"] == 4
    assert r["difference"] == pytest.approx((b - a).mean(), abs=1e-12)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert r["p_value"] == pytest.approx(2 * res.pvalue)


def test_welch_interval_matches_scipy():
    m = fabricate(noise=0.01, seeds=(0, 1, 2, 3, 4), rng=2)
    m.loc[m["run"] == "mnist-3v8/vgg/aug/epochs/s0", "diverged"] = True  # groups of 5 and 4
    claims = cl.claims_table(m)
    run = dict(study="epochs", problem="mnist-3v8", architecture="vgg", epoch=10, kernel="after")
    a = per_seed(m, "svm_test_error", augmentation=False, **run)
    b = per_seed(m, "svm_test_error", augmentation=True, **run).drop(0)
    r = row_of(claims, "C9", "mnist-3v8", "vgg", quantity="svm_test_error")
    ci = stats.ttest_ind(b, a, equal_var=False).confidence_interval()
    assert not r["paired"] and r["n_seeds"] == 4
    assert (r["mean_a"], r["mean_b"]) == pytest.approx((a.mean(), b.mean()), abs=1e-12)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-12)


# --------------------------------------------------------------------------
# missing data


def test_config_without_a_pair_is_not_in_this_config():
    m = fabricate(pairs=[("mnist-3v8", "vgg")], epochs=(0, 3), augmentation=(False,),
                  lr_pairs=[("mnist-3v8", "vgg")], rates=(0.01,))
    claims = cl.claims_table(m)
    expected = {"C1": {("mnist-3v8", "fc"), ("mnist-5v6", "fc")}, "C2": {("cifar10-cat-dog", "vgg")},
                "C3": set(cl.PAPER_PAIRS), "C4": {("mnist-3v8", "vgg"), ("mnist-5v6", "vgg"),
                                                  ("cifar10-cat-dog", "vgg"), cl.MEGA},
                "C10": set(cl.PAPER_PAIRS)}
    for claim, pairs in expected.items():
        rows = claims[claims["claim"] == claim]
        assert set(zip(rows["problem"], rows["architecture"])) == pairs
    absent = claims[claims["problem"] + claims["architecture"] != "mnist-3v8vgg"]
    assert (absent["verdict"] == "not in this config").all() and (absent["n_seeds"] == 0).all()
    assert absent["difference"].isna().all()
    assert row_of(claims, "C1", "mnist-5v6", "fc")["note"] == "no epochs-study runs of (mnist-5v6, fc)"
    notes = {(r.claim, r.quantity): (r.verdict, r.note) for r in
             claims[(claims["problem"] == "mnist-3v8") & (claims["architecture"] == "vgg")].itertuples()}
    assert notes["C3", "svm_test_error vs nn_test_error"][0] != "not in this config"  # trained by epoch 3
    assert notes["C9", "zoom"] == ("not in this config", "no augmented epochs-study runs of (mnist-3v8, vgg)")
    assert notes["C10", "swap"] == ("not in this config", "only one learning rate (0.01) in this config")
    assert notes["C4", "swap"][0] == "reproduced"  # epochs 0 and 3 are enough for C4


def test_pairs_of_the_data_are_added():
    claims = cl.claims_table(fabricate(pairs=ALL_PAIRS + (("cifar10-cat-dog", "mega-vgg"),)))
    added = claims[claims["architecture"].eq("mega-vgg") & claims["problem"].eq("cifar10-cat-dog")]
    assert sorted(set(added["claim"])) == ["C3", "C4", "C6", "C8", "C9", "L1", "L2"]
    assert (added["verdict"] == "reproduced").all()


def test_only_epoch_zero_cannot_compare_epochs():
    claims = cl.claims_table(fabricate(pairs=[("mnist-3v8", "fc")], epochs=(0,), augmentation=(False,),
                                       lr_pairs=[]))
    r = row_of(claims, "C1", "mnist-3v8", "fc")
    assert (r["verdict"], r["note"]) == ("not in this config", "the last epoch of this config is epoch 0")


def test_one_seed_is_inconclusive():
    claims = cl.claims_table(fabricate(seeds=(0,)))
    assert (claims["verdict"] == "inconclusive").all()
    assert claims["ci_low"].isna().all() and claims["ci_high"].isna().all() and (claims["n_seeds"] == 1).all()
    assert claims["note"].str.contains("fewer than 2").all()
    assert claims["difference"].notna().all()


def test_diverged_runs_and_nan_values_are_missing():
    m = fabricate(seeds=(0, 1, 2, 3))
    m.loc[m["run"] == "mnist-3v8/fc/plain/epochs/s0", "diverged"] = True
    m.loc[(m["run"] == "mnist-3v8/fc/plain/epochs/s1") & (m["epoch"] == 0), "svm_test_error"] = np.nan
    claims = cl.claims_table(m)
    assert row_of(claims, "C1", "mnist-3v8", "fc")["n_seeds"] == 2
    assert row_of(claims, "C4", "mnist-3v8", "vgg")["n_seeds"] == 4


def test_unreached_learning_rate_runs_are_excluded_and_noted():
    m = fabricate(seeds=(0, 1, 2, 3))
    lr = (m["study"] == "learning_rate") & (m["problem"] == "mnist-3v8") & (m["architecture"] == "fc")
    plain_fast = lr & ~m["augmentation"] & (m["learning_rate"] == 0.1)
    m.loc[plain_fast & m["seed"].isin([0, 1]), "reached_target"] = False
    m.loc[lr & m["augmentation"], "reached_target"] = False  # other runs do not count
    claims = cl.claims_table(m)
    r = row_of(claims, "C10", "mnist-3v8", "fc", quantity="svm_test_error")
    assert r["n_seeds"] == 2 and r["verdict"] == "reproduced"
    kept = m[plain_fast & (m["kernel"] == "after") & m["seed"].isin([2, 3])]
    assert r["mean_b"] == pytest.approx(kept["svm_test_error"].mean(), abs=1e-15)
    assert r["note"].startswith("excluded for not reaching the loss target: lr 0.01: 0 of 4 runs, lr 0.1: 2 of 4 runs")
    m.loc[plain_fast & (m["seed"] == 2), "reached_target"] = pd.NA  # unknown counts as not reached
    r = row_of(cl.claims_table(m), "C10", "mnist-3v8", "fc", quantity="swap")
    assert (r["verdict"], r["n_seeds"]) == ("inconclusive", 1) and math.isnan(r["ci_low"])
    assert "lr 0.1: 3 of 4 runs" in r["note"] and "fewer than 2 runs per side" in r["note"]


def test_learning_rate_gap_is_per_run():
    m = fabricate(seeds=(0, 1, 2), noise=0.01)  # above the binomial floor
    claims = cl.claims_table(m)
    r = row_of(claims, "C10", "mnist-3v8", "vgg", quantity="svm_test_error (conjugate - after)")
    run = dict(study="learning_rate", problem="mnist-3v8", architecture="vgg", augmentation=False)
    gaps = [per_seed(m, "svm_test_error", kernel="conjugate", learning_rate=lr, **run)
            - per_seed(m, "svm_test_error", kernel="after", learning_rate=lr, **run) for lr in (0.01, 0.1)]
    ci = stats.ttest_ind(gaps[1], gaps[0], equal_var=False).confidence_interval()
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-12)


# --------------------------------------------------------------------------
# output


def test_markdown_lists_every_claim():
    claims = cl.claims_table(fabricate(pairs=cl.PAPER_PAIRS[:2], augmentation=(False,)))
    text = cl.claims_markdown(claims)
    for claim in [f"C{i}" for i in range(1, 11)] + ["L1", "L2"]:
        assert f"| {claim} (fig. " in text or f"\n- {claim}: " in text
    lines = text.splitlines()
    assert lines[0].startswith("Scope: intervals over training seeds only (3 per row)")
    measured = claims[claims["verdict"] != "not in this config"]
    assert len([x for x in lines if x.startswith(("| C", "| L"))]) == len(measured)
    assert "| mnist-3v8 / vgg | svm_test_error | conjugate kernel, epoch 10 = after kernel, epoch 10 ± margin |" in text
    # the pairs this config lacks: one line per claim, not one row per pair
    assert "- C9: cifar10-cat-dog / vgg, mnist-3v8 / fc, mnist-3v8 / mega-vgg, mnist-3v8 / vgg, mnist-5v6 / fc, " \
           "mnist-5v6 / vgg" in lines
    assert "not in this config |" not in text


def test_own_pairs_come_first():
    claims = cl.claims_table(fabricate(pairs=[("shapes-0v1", "vgg")], augmentation=(False,), lr_pairs=[]))
    c4 = claims[claims["claim"] == "C4"]
    assert (c4["problem"].iloc[0], c4["verdict"].iloc[0]) == ("shapes-0v1", "reproduced")
    assert (c4["verdict"].iloc[1:] == "not in this config").all()


def test_html_page_shows_the_table():
    claims = cl.claims_table(fabricate(pairs=cl.PAPER_PAIRS[:2], augmentation=(False,)))
    page = cl.claims_html(claims)
    assert page.startswith("<!doctype html>") and html.escape(cl.scope(claims)) in page
    assert page.count("<tr>") == 1 + (claims["verdict"] != "not in this config").sum()
    assert 'style="background:#d4edda"><b>reproduced</b>' in page


def test_csv_round_trip(tmp_path):
    m = fabricate(seeds=(0, 1))
    m.loc[m.index[:3], "svm_test_error"] = np.nan
    path = tmp_path / "metrics.csv"
    path.write_text(agg.to_csv(m))
    back = agg.read_metrics(path)
    pd.testing.assert_frame_equal(back, m)
    pd.testing.assert_frame_equal(cl.claims_table(back), cl.claims_table(m))


def test_write_claims_and_the_script(tmp_path):
    m = fabricate(pairs=cl.PAPER_PAIRS[:1], lr_pairs=[])
    (tmp_path / "metrics.csv").write_text(agg.to_csv(m))
    out, md, page = tmp_path / "t" / "claims.csv", tmp_path / "t" / "claims.md", tmp_path / "t" / "claims.html"
    cl.write_claims(tmp_path / "metrics.csv", out, md, page)
    assert page.read_text() == cl.claims_html(cl.claims_table(m))
    claims = pd.read_csv(out)
    assert list(claims.columns) == cl.CLAIMS_COLUMNS
    assert md.read_text() == cl.claims_markdown(cl.claims_table(m))
    assert not list(out.parent.glob(".*part"))
    # the script's command line: the same files; a missing input is one line and status 2
    from conftest import ROOT

    script = [sys.executable, str(ROOT / "scripts" / "claims.py")]
    res = subprocess.run(script + ["--metrics", str(tmp_path / "metrics.csv"), "--claims", str(tmp_path / "c.csv"),
                                   "--markdown", str(tmp_path / "c.md"), "--html", str(tmp_path / "c.html")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "c.csv").read_text() == out.read_text()
    res = subprocess.run(script + ["--metrics", str(tmp_path / "absent.csv")], capture_output=True, text=True,
                         cwd=tmp_path)
    assert res.returncode == 2 and "absent.csv" in res.stderr and "Traceback" not in res.stderr


def test_claims_csv_round_trip(tmp_path):
    claims = cl.claims_table(fabricate(pairs=cl.PAPER_PAIRS[:2], seeds=(0, 1)))
    path = tmp_path / "claims.csv"
    path.write_text(agg.to_csv(claims))
    back = cl.read_claims(path)
    pd.testing.assert_frame_equal(back, claims, check_dtype=False)
    assert cl.claims_markdown(back) == cl.claims_markdown(claims)


def test_readme_block_is_the_kept_claims_table():
    """The README shows the default run's own claims headline (generated by
    tools/readme_claims.py from the kept CSV), never typed numbers."""
    from conftest import ROOT

    kept, readme = ROOT / "benchmarks" / "default_run_claims.csv", (ROOT / "README.md").read_text()
    begin, end = "<!-- claims:begin -->", "<!-- claims:end -->"
    table = cl.read_claims(kept)
    assert set(table["claim"]) == {f"C{i}" for i in range(1, 11)} | {"L1", "L2"}
    block = readme.partition(begin)[2].partition(end)[0]
    assert block == "\n" + cl.claims_headline(table)
    # the default shows the paper's headline on fc, MNIST 3-vs-8
    fc = table[(table["problem"] == "mnist-3v8") & (table["architecture"] == "fc")]
    for claim in ("C1", "C3", "C5", "C7"):
        rows = fc[fc["claim"] == claim]
        if claim == "C3":  # the SVM against the trained network; "catches up" is its own row
            rows = rows[rows["relation"] == "<"]
        assert len(rows) and (rows["verdict"] == "reproduced").all(), rows
