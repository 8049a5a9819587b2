"""Invariance of a kernel to a perturbation T (paper §2): the cosine
K(x, T(x)) / √(K(x, x) K(T(x), T(x))) per test image, averaged.

Translation = mean over the two 1-pixel shifts (right, down), rotation =
mean over ±0.25 rad, zoom, swap (upper-left ↔ lower-right quadrants); see
:mod:`afterkernel.transforms`. Measured for the after kernel and for its
conjugate projection from the same gradient passes; cosines do not depend on
the feature scale.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from afterkernel.kernels.diagonals import cross_diagonals
from afterkernel.transforms import INVARIANCE_GROUPS, PERTURBATIONS
from afterkernel.vocabulary import KERNELS


def cosines(k_x_xt, k_x_x, k_xt_xt) -> np.ndarray:
    """Per-example cosines K(x,T(x)) / √(K(x,x) K(T(x),T(x))) (float64);
    NaN where an embedding is zero."""
    k_x_xt = np.asarray(k_x_xt, np.float64)
    denom = np.sqrt(np.maximum(np.asarray(k_x_x, np.float64), 0.0)
                    * np.maximum(np.asarray(k_xt_xt, np.float64), 0.0))
    out = np.full(k_x_xt.shape, np.nan)
    np.divide(k_x_xt, denom, out=out, where=denom > 0)
    return out


def invariance_cosines(model, x, *, block_size: int | None = None, jacobian_budget_mb: float = 1024,
                       engine=None, transforms: Mapping[str, Callable] | None = None) -> dict:
    """Per-example cosines for every perturbation and both kernels:
    ``{kernel: {name: (n,)}}`` (default perturbations:
    :data:`~afterkernel.transforms.PERTURBATIONS`)."""
    transforms = dict(PERTURBATIONS if transforms is None else transforms)
    res = cross_diagonals(model, x, transforms, block_size=block_size,
                          jacobian_budget_mb=jacobian_budget_mb, engine=engine)
    return {k: {name: cosines(d.cross, d.original, d.perturbed) for name, d in res[k].items()}
            for k in KERNELS}


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
