"""Per-example kernel values without a Gram matrix: K(x_i, x_i) for the
feature scale, and the cross terms of x and a perturbation x' = T(x) for the
invariance cosines (paper §2).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import numpy as np

from afterkernel.kernels.engine import (DEFAULT_BLOCK_SIZE, DEFAULT_BUDGET_MB, KernelEngine,
                                        Progress, as_batch, blocks)
from afterkernel.vocabulary import AFTER, CONJUGATE, KERNELS

# A perturbation T: a function of a block of images (NHWC) returning the
# perturbed block (array or tensor), or the perturbed images T(x) themselves.
Perturbation = Callable[[np.ndarray], object] | np.ndarray


@dataclasses.dataclass(frozen=True)
class CrossDiagonals:
    """One kernel's per-example values for inputs x and x' = T(x), float64
    (n,), unscaled: ``cross`` K(x_i, x'_i), ``original`` K(x_i, x_i),
    ``perturbed`` K(x'_i, x'_i)."""

    cross: np.ndarray
    original: np.ndarray
    perturbed: np.ndarray


def after_kernel_diag(model, x, *, block_size: int | None = DEFAULT_BLOCK_SIZE,
                      jacobian_budget_mb: float = DEFAULT_BUDGET_MB,
                      engine: KernelEngine | None = None) -> np.ndarray:
    """Per-example K(x_i, x_i) = ‖∇θf(x_i)‖² (float64 (n,))."""
    engine = engine or KernelEngine.for_model(model)
    x = as_batch(x)
    b = engine.block_size_for(block_size, jacobian_budget_mb)
    out = np.empty(len(x), np.float64)
    for s, e in blocks(len(x), b):
        g = engine.block_gradients(x[s:e])
        out[s:e] = engine.rowdot(g, g)
    return out


def feature_scale(diag) -> float:
    """Mean L2 norm of the embeddings: mean_i √K(x_i, x_i) (paper §2)."""
    diag = np.asarray(diag, np.float64)
    return float(np.mean(np.sqrt(np.maximum(diag, 0.0))))


def _perturbed_block(perturbation: Perturbation, x: np.ndarray, s: int, e: int) -> np.ndarray:
    xt = perturbation(x[s:e]) if callable(perturbation) else perturbation[s:e]
    return as_batch(xt.numpy() if hasattr(xt, "numpy") else xt)


def _rowdot64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def cross_diagonals(model, x, perturbations: Mapping[str, Perturbation], *,
                    block_size: int | None = DEFAULT_BLOCK_SIZE,
                    jacobian_budget_mb: float = DEFAULT_BUDGET_MB,
                    engine: KernelEngine | None = None) -> dict[str, dict[str, CrossDiagonals]]:
    """The :class:`CrossDiagonals` of x (n images, NHWC) and each
    perturbation, for both kernels: ``{kernel: {name: CrossDiagonals}}``,
    kernel in :data:`~afterkernel.vocabulary.KERNELS` (the after kernel and
    the conjugate projection, from the same gradient passes)."""
    engine = engine or KernelEngine.for_model(model)
    x = as_batch(x)
    n = len(x)
    perturbations = {name: p if callable(p) else as_batch(p) for name, p in perturbations.items()}
    for name, p in perturbations.items():
        if not callable(p) and len(p) != n:
            raise ValueError(f"perturbation {name!r}: {len(p)} images for {n}")
    # two blocks of gradients (x and T(x)) alive at once
    b = engine.block_size_for(block_size, jacobian_budget_mb / 2)
    original = {k: np.empty(n) for k in KERNELS}
    cross = {k: {name: np.empty(n) for name in perturbations} for k in KERNELS}
    perturbed = {k: {name: np.empty(n) for name in perturbations} for k in KERNELS}
    ops = engine.ops
    progress = Progress("invariance cross terms", n * (1 + len(perturbations)))
    for s, e in blocks(n, b):
        g0 = engine.block_gradients(x[s:e])
        h0 = ops.to_numpy(g0.h).astype(np.float64)
        original[AFTER][s:e] = engine.rowdot(g0, g0)
        original[CONJUGATE][s:e] = _rowdot64(h0, h0)
        progress.add(e - s)
        for name, p in perturbations.items():
            gt = engine.block_gradients(_perturbed_block(p, x, s, e))
            ht = ops.to_numpy(gt.h).astype(np.float64)
            cross[AFTER][name][s:e] = engine.rowdot(g0, gt)
            perturbed[AFTER][name][s:e] = engine.rowdot(gt, gt)
            cross[CONJUGATE][name][s:e] = _rowdot64(h0, ht)
            perturbed[CONJUGATE][name][s:e] = _rowdot64(ht, ht)
            progress.add(e - s)
    progress.finish()
    return {k: {name: CrossDiagonals(cross[k][name], original[k], perturbed[k][name])
                for name in perturbations} for k in KERNELS}
