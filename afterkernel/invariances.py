"""Kernel metrics of the paper (§2): invariance cosines, kernel alignment,
effective rank and kernel-target alignment.

- Invariance to a perturbation T: the cosine
  K(x, T(x)) / √(K(x, x) K(T(x), T(x))) per test image, averaged;
  translation = mean over the two 1-pixel shifts (right, down), rotation =
  mean over ±0.25 rad, zoom, swap (upper-left ↔ lower-right quadrants); see
  :mod:`afterkernel.transforms`. Cosines do not depend on the feature scale.
- Kernel alignment <G, H>_F / (‖G‖_F ‖H‖_F), uncentred, of two Gram
  matrices on the same examples (the test sample).
- Effective rank trace(G) / λ_max(G).
- Kernel-target alignment yᵀGy / (‖G‖_F ‖y‖²), y ∈ {−1, +1}.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

import numpy as np

from afterkernel.transforms import INVARIANCE_GROUPS, PERTURBATIONS

log = logging.getLogger(__name__)

KERNELS = ("after", "conjugate")


def cosines(k_x_xt, k_x_x, k_xt_xt) -> np.ndarray:
    """Per-example cosines K(x,T(x)) / √(K(x,x) K(T(x),T(x))) (float64);
    NaN where an embedding is zero."""
    k_x_xt = np.asarray(k_x_xt, np.float64)
    denom = np.sqrt(np.maximum(np.asarray(k_x_x, np.float64), 0.0)
                    * np.maximum(np.asarray(k_xt_xt, np.float64), 0.0))
    out = np.full(k_x_xt.shape, np.nan)
    np.divide(k_x_xt, denom, out=out, where=denom > 0)
    return out


def kernel_alignment(G, H) -> float:
    """Uncentred kernel alignment <G,H>_F / (‖G‖_F ‖H‖_F) (paper §2)."""
    G = np.asarray(G, np.float64)
    H = np.asarray(H, np.float64)
    if G.shape != H.shape:
        raise ValueError(f"Gram matrices of different shapes: {G.shape} vs {H.shape}")
    return float(np.vdot(G, H) / (np.linalg.norm(G) * np.linalg.norm(H)))


def largest_eigenvalue(G) -> float:
    """λ_max of a symmetric matrix (float64)."""
    G = np.asarray(G)
    n = G.shape[0]
    if n == 0:
        return float("nan")
    if n <= 2000:
        return float(np.linalg.eigvalsh(np.asarray(G, np.float64))[-1])
    G32 = np.asarray(G, np.float32)  # no float64 copy of a large matrix

    def matvec(v):
        return (G32 @ np.asarray(v, np.float32).ravel()).astype(np.float64)

    try:
        from scipy.sparse.linalg import LinearOperator, eigsh

        op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
        return float(eigsh(op, k=1, which="LA", return_eigenvectors=False, tol=1e-8)[0])
    except ImportError:  # pragma: no cover - scipy is normally present
        v = np.ones(n) / np.sqrt(n)
        lam = 0.0
        for _ in range(1000):
            w = matvec(v)
            new = float(v @ w)
            v = w / np.linalg.norm(w)
            if abs(new - lam) <= 1e-10 * abs(new):
                break
            lam = new
        return lam


def effective_rank(G) -> float:
    """trace(G) / λ_max(G)."""
    G = np.asarray(G)
    return float(np.trace(np.asarray(G, np.float64)) / largest_eigenvalue(G))


def signed_labels(y) -> np.ndarray:
    """Labels as ±1: {0, 1} labels are mapped by s = 2y − 1; ±1 kept."""
    y = np.asarray(y).astype(np.float64).ravel()
    values = set(np.unique(y).tolist())
    if values <= {0.0, 1.0} and 0.0 in values:
        return 2.0 * y - 1.0
    if not values <= {-1.0, 1.0}:
        raise ValueError(f"labels must be in {{0,1}} or {{-1,+1}}, got {sorted(values)[:5]}")
    return y


def target_alignment(G, y) -> float:
    """Kernel-target alignment yᵀGy / (‖G‖_F ‖y‖²) with y ∈ {−1, +1}
    (labels in {0, 1} are mapped to ±1)."""
    G = np.asarray(G, np.float64)
    s = signed_labels(y)
    return float(s @ G @ s / (np.linalg.norm(G) * (s @ s)))


def invariance_cosines(model, x, *, block_size: int | None = None, jacobian_budget_mb: float = 1024,
                       engine=None, transforms: Mapping[str, Callable] | None = None) -> dict:
    """Per-example cosines for every perturbation and both kernels:
    ``{"after": {name: (n,)}, "conjugate": {name: (n,)}}``."""
    from afterkernel.kernels import cross_diagonals

    transforms = dict(PERTURBATIONS if transforms is None else transforms)
    res = cross_diagonals(model, x, transforms, block_size=block_size,
                          jacobian_budget_mb=jacobian_budget_mb, engine=engine)
    return {k: {name: cosines(res[k][name], res[k]["self"], res[k][name + "_self"])
                for name in transforms} for k in KERNELS}


def summarize_invariances(cos: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Means per invariance (translation, rotation, zoom, swap) from the
    per-example cosines of one kernel (NaN cosines are ignored)."""
    out = {}
    for group, names in INVARIANCE_GROUPS.items():
        if all(n in cos for n in names):
            out[group] = float(np.mean([np.nanmean(cos[n]) for n in names]))
    return out


def all_invariances(model, x, *, block_size: int | None = None, jacobian_budget_mb: float = 1024,
                    engine=None) -> tuple[dict, dict]:
    """Cosines and their summaries for both kernels:
    (``{kernel: {transform: cosines}}``, ``{kernel: {invariance: mean}}``)."""
    cos = invariance_cosines(model, x, block_size=block_size,
                             jacobian_budget_mb=jacobian_budget_mb, engine=engine)
    return cos, {k: summarize_invariances(cos[k]) for k in KERNELS}


def gram_metrics(after_gram, conjugate_gram, y) -> dict:
    """Metrics of the test-sample Gram matrices: ``{"alignment": ..., "after":
    {effective_rank, target_alignment}, "conjugate": {...}}``."""
    out = {"alignment": kernel_alignment(after_gram, conjugate_gram)}
    for name, G in (("after", after_gram), ("conjugate", conjugate_gram)):
        out[name] = {"effective_rank": effective_rank(G), "target_alignment": target_alignment(G, y)}
    return out


def sample_metrics(model, x, y, *, block_size: int | None = None, jacobian_budget_mb: float = 1024,
                 engine=None) -> dict:
    """Everything the metrics file holds, from the test sample alone (no train
    set: the Gram matrices are unscaled, which no metric depends on):
    ``{"gram_metrics": ..., "cosines": ..., "invariances": ...}``."""
    from afterkernel.kernels import KernelEngine, conjugate_gram, gram_with_conjugate

    engine = engine or KernelEngine.for_model(model)
    G, H = gram_with_conjugate(engine, x, block_size=block_size,
                               jacobian_budget_mb=jacobian_budget_mb, what="test Gram")
    metrics = gram_metrics(G, conjugate_gram(H), y)
    cos, inv = all_invariances(model, x, block_size=block_size,
                               jacobian_budget_mb=jacobian_budget_mb, engine=engine)
    return {"gram_metrics": metrics, "cosines": cos, "invariances": inv}
