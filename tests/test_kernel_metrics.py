"""Gram-matrix metrics on known matrices (afterkernel.kernel_metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from afterkernel import kernel_metrics as km
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
