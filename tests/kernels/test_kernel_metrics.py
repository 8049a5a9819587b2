"""Gram-matrix metrics on known matrices (afterkernel.kernels.metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from afterkernel.kernels import metrics as km
from afterkernel.vocabulary import AFTER, CONJUGATE


def test_kernel_alignment_known_matrices():
    G = np.array([[2.0, 1.0], [1.0, 2.0]])
    assert km.kernel_alignment(G, 3 * G) == pytest.approx(1.0)
    # <I, J> = 2, |I| = sqrt2, |J| = 2 -> 1/sqrt2
    assert km.kernel_alignment(np.eye(2), np.ones((2, 2))) == pytest.approx(1 / np.sqrt(2))
    # orthogonal Gram matrices
    assert km.kernel_alignment(np.diag([1.0, 0.0]), np.diag([0.0, 1.0])) == pytest.approx(0.0)
    # uncentred: constant offsets are not removed
    assert km.kernel_alignment(np.ones((3, 3)), np.ones((3, 3)) + np.eye(3)) < 1.0
    with pytest.raises(ValueError):
        km.kernel_alignment(np.eye(2), np.eye(3))


def test_effective_rank_known_matrices():
    assert km.effective_rank(np.eye(5)) == pytest.approx(5.0)
    assert km.effective_rank(np.ones((4, 4))) == pytest.approx(1.0)  # rank one
    assert km.effective_rank(np.diag([4.0, 2.0, 2.0])) == pytest.approx(2.0)


def test_effective_rank_large_matrix_uses_iterative_eigensolver():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2100, 30)).astype(np.float32)
    G = a @ a.T
    lam = np.linalg.eigvalsh(G.astype(np.float64))[-1]
    assert km.largest_eigenvalue(G) == pytest.approx(lam, rel=1e-6)
    assert km.effective_rank(G) == pytest.approx(np.trace(G.astype(np.float64)) / lam, rel=1e-6)


def test_target_alignment_known_values():
    y01 = np.array([0, 0, 1, 1])
    s = 2.0 * y01 - 1.0
    ideal = np.outer(s, s)
    assert km.target_alignment(ideal, y01) == pytest.approx(1.0)
    assert km.target_alignment(ideal, s) == pytest.approx(1.0)
    assert km.target_alignment(-ideal, s) == pytest.approx(-1.0)
    # identity: y'Iy = n, |I|_F = sqrt n, |y|^2 = n -> 1/sqrt n
    assert km.target_alignment(np.eye(4), s) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        km.target_alignment(np.eye(3), [0, 1, 2])
    with pytest.raises(ValueError):  # labels are one-dimensional
        km.target_alignment(np.eye(2), [[0, 1]])


def test_gram_metrics_combines_both_kernels():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 3))
    G = a @ a.T
    y = np.array([0, 1, 0, 1, 1, 0])
    out = km.gram_metrics(G, 2 * G, y)
    assert out["alignment"] == pytest.approx(1.0)
    assert out[AFTER]["effective_rank"] == pytest.approx(out[CONJUGATE]["effective_rank"])
    assert out[AFTER]["target_alignment"] == pytest.approx(km.target_alignment(G, y))


# --------------------------------------------------------------------------
# how the kernel moves (afterkernel.kernels.evolution)

from afterkernel.kernels import evolution as ke  # noqa: E402


def _gram(n, d, seed):
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X @ X.T


def test_kernel_distance_identical_scaled_orthogonal_and_numpy_reference():
    G = _gram(6, 3, 0)
    assert ke.kernel_distance(G, G) == pytest.approx(0.0, abs=1e-12)
    assert ke.kernel_distance(G, 7.5 * G) == pytest.approx(0.0, abs=1e-12)
    A, B = np.diag([1.0, 2.0, 0.0, 0.0]), np.diag([0.0, 0.0, 3.0, 1.0])
    assert ke.kernel_distance(A, B) == pytest.approx(1.0)
    H = _gram(6, 4, 1).astype(np.float32)
    ref = 1.0 - np.sum(G * H.astype(np.float64)) / np.sqrt(np.sum(G**2) * np.sum(H.astype(np.float64)**2))
    assert ke.kernel_distance(G, H) == pytest.approx(ref, rel=1e-12)
    assert np.isnan(ke.kernel_distance(None, G))


def _decaying_gram(n, seed):
    """A PSD Gram with a power-law spectrum, as after kernels have."""
    X = np.random.default_rng(seed).standard_normal((n, n)) * np.arange(1, n + 1) ** -0.75
    return X @ X.T


@pytest.mark.parametrize("G, kwargs, rtol", [
    (_gram(20, 80, 2), {}, 1e-5), (_gram(160, 80, 2), {}, 1e-5),  # dense path (n <= 4 blocks)
    (_gram(900, 80, 2), {}, 1e-5),  # rank 80: the Krylov space holds the range
    (_decaying_gram(900, 1), {}, 1e-5),  # block Krylov to its residual test
    (_gram(900, 900, 3), {}, 1e-3),  # a flat (Marchenko-Pastur) spectrum, the hard case: 8e-5 measured
    (_decaying_gram(900, 1), {"max_blocks": 1}, 1e-5),  # too small a Krylov space: ARPACK's Lanczos
], ids=["dense-20", "dense-160", "rank-80", "krylov", "flat", "lanczos"])
def test_top_eigenvalues_equal_eigvalsh(G, kwargs, rtol, caplog):
    """Within the residual test's bound, and far closer in practice (``rtol``)."""
    G = G.astype(np.float32)
    n = len(G)
    top = ke.top_eigenvalues(G, **kwargs)
    k = min(ke.SPECTRUM_SIZE, n - 1)
    ref = np.linalg.eigvalsh(G.astype(np.float64))[::-1][:k]
    assert top.dtype == np.float64 and top.shape == (k,)
    assert np.all(np.diff(top) <= 0)
    np.testing.assert_allclose(top, ref, rtol=ke.SPECTRUM_RTOL)
    np.testing.assert_allclose(top, ref, rtol=rtol, atol=1e-6 * ref[0])
    np.testing.assert_array_equal(ke.top_eigenvalues(G, **kwargs), top)  # seeded start block: deterministic
    assert ("using ARPACK" in caplog.text) == ("max_blocks" in kwargs)


@pytest.mark.parametrize("n, d, exact_width, rtol", [
    (300, 20, 1024, 1e-10), (300, 120, 1024, 1e-10), (30, 60, 1024, 1e-10),  # exact: d < k, d < n, d > n
    (900, 400, 100, 1e-5),  # wider than exact_width: block Krylov on H (H^T q)
])
def test_feature_eigenvalues_equal_eigvalsh_of_the_gram(n, d, exact_width, rtol):
    H = (np.random.default_rng(4).standard_normal((n, d)) * np.arange(1, d + 1) ** -0.75).astype(np.float32)
    G = H.astype(np.float64) @ H.astype(np.float64).T
    ref = np.linalg.eigvalsh(G)[::-1][:min(ke.SPECTRUM_SIZE, n - 1)]
    top = ke.feature_eigenvalues(H, exact_width=exact_width)
    assert top.shape == ref.shape and np.all(np.diff(top) <= 0)
    np.testing.assert_allclose(top, ref, rtol=rtol, atol=rtol * ref[0])
    out, dense = ke.spectrum_metrics(features=H), ke.spectrum_metrics(G)
    assert out["trace"] == pytest.approx(np.trace(G), rel=1e-12)
    assert out["spectrum_top10_fraction"] == pytest.approx(dense["spectrum_top10_fraction"], rel=1e-6)


def test_spectrum_top10_fraction():
    G = np.diag(np.arange(1.0, 201.0)).astype(np.float32)
    out = ke.spectrum_metrics(G)
    assert out["trace"] == pytest.approx(200 * 201 / 2)
    assert out["spectrum_top10_fraction"] == pytest.approx(sum(range(191, 201)) / out["trace"], rel=1e-6)
    np.testing.assert_allclose(out["spectrum"], np.arange(200.0, 150.0, -1), rtol=1e-6)


def test_centred_target_alignment():
    y = np.array([0, 1, 0, 1, 1, 0])
    s = 2.0 * y - 1
    ideal = np.outer(s, s) + 5.0  # a constant offset: centring removes it
    assert km.centred_target_alignment(ideal, y) == pytest.approx(1.0)
    assert km.target_alignment(ideal, y) < 0.5
    G = _gram(6, 3, 3)
    C = np.eye(6) - 1 / 6
    Gc, sc = C @ G @ C, C @ s
    ref = sc @ Gc @ sc / (np.linalg.norm(Gc) * (sc @ sc))
    assert km.centred_target_alignment(G, y) == pytest.approx(ref, rel=1e-12)


def test_run_evolution_distances_velocity_and_missing_references():
    G0, G1, G3 = _gram(5, 2, 4), _gram(5, 2, 5), _gram(5, 2, 6)
    grams = {"e3": {"after": G3}, "e0": {"after": G0}, "e1": {"after": G1}}
    out = ke.run_evolution(["e0", "e1", "e3"], grams, ["after"])
    d = ke.kernel_distance
    e0, e1, e3 = (out[s]["after"] for s in ("e0", "e1", "e3"))
    assert e0["kernel_distance_init"] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(e0["kernel_distance_prev"]) and np.isnan(e0["kernel_velocity"])
    assert e1["kernel_distance_init"] == pytest.approx(d(G0, G1))
    assert e3["kernel_distance_prev"] == pytest.approx(d(G1, G3))
    assert e3["kernel_velocity"] == pytest.approx(np.arccos(1 - d(G1, G3)) / 2)
    # per SGD step: 10 steps an epoch
    steps = ke.run_evolution(["e0", "e1", "e3"], grams, ["after"], steps_per_epoch=10)
    assert steps["e3"]["after"]["kernel_velocity"] == pytest.approx(np.arccos(1 - d(G1, G3)) / 20)
    assert ke.sgd_steps_per_epoch(11982, 32) == 375 and ke.sgd_steps_per_epoch(64, 32) == 2
    assert e0["kernel_distance_final"] == pytest.approx(d(G0, G3))
    assert e3["kernel_distance_final"] == pytest.approx(0.0, abs=1e-12)
    # a diverged snapshot (no Gram): NaN to and from it
    out = ke.run_evolution(["e0", "e1", "e3"], {**grams, "e1": {}}, ["after"])
    assert np.isnan(out["e1"]["after"]["kernel_distance_init"])
    assert np.isnan(out["e3"]["after"]["kernel_velocity"])
    assert out["e3"]["after"]["kernel_distance_init"] == pytest.approx(d(G0, G3))
    # the learning-rate schedule: final alone, no FNTK, no previous snapshot
    lr = ke.run_evolution(["final"], {"final": {"after": G1}}, ["after"])["final"]["after"]
    assert np.isnan(lr["kernel_distance_init"]) and np.isnan(lr["kernel_distance_prev"])
    assert lr["kernel_distance_final"] == pytest.approx(0.0, abs=1e-12)


def test_centred_kernel_alignment_against_float64_brute_force():
    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=(12, 5)) + 3.0, rng.normal(size=(12, 4)) + 3.0  # a large common component
    G, H = X @ X.T, Y @ Y.T
    C = np.eye(12) - np.ones((12, 12)) / 12
    Gc, Hc = C @ G @ C, C @ H @ C
    ref = np.sum(Gc * Hc) / (np.linalg.norm(Gc) * np.linalg.norm(Hc))
    assert km.centred_kernel_alignment(G, H) == pytest.approx(ref, rel=1e-12)
    # the uncentred alignment is dominated by the common component, the centred one is not
    assert km.kernel_alignment(G, H) > 0.9 > km.centred_kernel_alignment(G, H)
    assert km.gram_metrics(G, H, np.arange(12) % 2)["alignment_centred"] == pytest.approx(ref, rel=1e-12)
