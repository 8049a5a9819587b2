"""Metrics of Gram matrices on the same examples (paper §2): kernel
alignment, effective rank and kernel-target alignment; and everything the
metrics file holds, from a test sample alone (:func:`sample_metrics`).

- Kernel alignment <G, H>_F / (‖G‖_F ‖H‖_F), uncentred (the after kernel
  against its conjugate projection, on the test sample).
- Effective rank trace(G) / λ_max(G).
- Kernel-target alignment yᵀGy / (‖G‖_F ‖y‖²), y ∈ {−1, +1}, uncentred
  and centred (Cortes et al. 2012; over training: Baratin et al. 2021).
"""

from __future__ import annotations

import numpy as np

from afterkernel.vocabulary import AFTER, CONJUGATE, signed_labels


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


def _centre(G: np.ndarray) -> np.ndarray:
    """HGH with H = I − 11ᵀ/k: G with its row, column and grand means removed."""
    return G - G.mean(axis=0) - G.mean(axis=1)[:, None] + G.mean()


def centred_kernel_alignment(G, H) -> float:
    """Centred kernel alignment <HGH, HHH>_F / (‖HGH‖_F ‖HHH‖_F) (Cortes et al.
    2012; Kornblith et al. 2019, the paper's [32]): the alignment without the
    constant component that dominates uncentred alignment of positive kernels."""
    return kernel_alignment(_centre(np.asarray(G, np.float64)), _centre(np.asarray(H, np.float64)))


def target_alignment(G, y) -> float:
    """Kernel-target alignment yᵀGy / (‖G‖_F ‖y‖²) with y ∈ {−1, +1}
    (labels (n,) in {0, 1} are mapped to ±1)."""
    G = np.asarray(G, np.float64)
    s = signed_labels(y)
    return float(s @ G @ s / (np.linalg.norm(G) * (s @ s)))


def centred_target_alignment(G, y) -> float:
    """Centred kernel-target alignment <HGH, ssᵀ>_F / (‖HGH‖_F ‖Hs‖²), H = I − 11ᵀ/k,
    s ∈ {−1, +1} (Cortes et al. 2012; Baratin et al. 2021)."""
    G = np.asarray(G, np.float64)
    s = signed_labels(y)
    s = s - s.mean()
    Gc = _centre(G)
    return float(s @ Gc @ s / (np.linalg.norm(Gc) * (s @ s)))


def gram_metrics(after_gram, conjugate_gram, y) -> dict:
    """Metrics of the test-sample Gram matrices: ``{"alignment": ..., "alignment_centred": ..., "after":
    {effective_rank, target_alignment, target_alignment_centred}, "conjugate": {...}}``."""
    out = {"alignment": kernel_alignment(after_gram, conjugate_gram),
           "alignment_centred": centred_kernel_alignment(after_gram, conjugate_gram)}
    for name, G in ((AFTER, after_gram), (CONJUGATE, conjugate_gram)):
        out[name] = {"effective_rank": effective_rank(G), "target_alignment": target_alignment(G, y),
                     "target_alignment_centred": centred_target_alignment(G, y)}
    return out


def sample_metrics(model, x, y, *, block_size: int | None = None, jacobian_budget_mb: float = 1024,
                   engine=None) -> dict:
    """Everything the metrics file holds, from the test sample alone (no train
    set: the Gram matrices are unscaled, which no metric depends on):
    ``{"gram_metrics": ..., "cosines": ..., "invariances": ...}``."""
    from afterkernel.kernels.invariances import all_invariances
    from afterkernel.kernels import KernelEngine, conjugate_gram, gram_with_conjugate

    engine = engine or KernelEngine.for_model(model)
    G, H = gram_with_conjugate(engine, x, block_size=block_size,
                               jacobian_budget_mb=jacobian_budget_mb, what="test Gram")
    # strips of 4096 columns: one syrk for samples of up to 4096 images
    metrics = gram_metrics(G, conjugate_gram(H, strip_columns=4096), y)
    cos, inv = all_invariances(model, x, block_size=block_size,
                               jacobian_budget_mb=jacobian_budget_mb, engine=engine)
    return {"gram_metrics": metrics, "cosines": cos, "invariances": inv}
