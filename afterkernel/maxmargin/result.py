"""What a max-margin solve returns (paper §2), the solvers' defaults, and the
one place where coefficients are scaled and a status is decided."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: the solvers of :func:`afterkernel.maxmargin.solve`
SOLVERS = ("exact", "alg1")
#: default relative gaps (package docstring): exact solver and Algorithm 1
DEFAULT_TOL = {"exact": 1e-4, "alg1": 1e-3}
#: data whose dual bound is below this times max_i ||phi_i|| count as not separable,
#: by the precision of the kernel matrix (:func:`nonsep_tolerance`)
DEFAULT_NONSEP_TOL = {"float64": 1e-6, "float32": 2e-5}
#: default iteration caps (exact: pivoting rounds + Wolfe major cycles; Algorithm 1 iterations)
DEFAULT_MAX_ITER = {"exact": 200_000, "alg1": 100_000}


def nonsep_tolerance(dtype, nonsep_tol: float | None = None) -> float:
    """``nonsep_tol`` if given, else the default for a kernel matrix of ``dtype``.

    A margin below the tolerance times max_i ||phi_i|| counts as none: the
    dual bound sqrt(q^T G q) of a point q of the simplex is the certificate,
    computed in float64 from K as stored.  On a float32 K the dual value of
    a dense q is resolved only to about 1e-10 max_i K_ii, i.e. margins to
    about 1e-5 max_i ||phi_i|| (measured on CIFAR-10's vgg conjugate kernel,
    n = 10,000: q^T G q = 1.1e-10 max_i K_ii for the loss minimiser's
    weights, whose value on K's features is 1e-15; float32 rounding), so
    the float32 default is twice that, 2e-5.  The separable kernels of the
    study have margins of 1.6e-4 to 1e-2 times max_i ||phi_i||; the float64
    default is 1e-6.
    """
    if nonsep_tol is not None:
        return float(nonsep_tol)
    return DEFAULT_NONSEP_TOL["float32" if np.dtype(dtype) == np.float32 else "float64"]


@dataclass
class MaxMarginResult:
    """Outcome of a max-margin solve.

    ``coef`` (n,) are c >= 0 with ``w = sum_i c_i s_i phi_i``; when the data
    are separated they are scaled to the canonical SVM scale (min_i s_i
    f(x_i) = 1, so ||w|| = 1 / margin), otherwise to ||w|| = 1 (or left as
    they are when w = 0).  ``margin`` is the primal margin of ``coef`` (NaN
    when it does not separate the training set), ``upper_bound`` the best
    dual certificate sqrt(q^T G q) found, ``gap`` = (upper_bound - margin) /
    upper_bound (NaN when not separable).  ``status`` is ``"optimal"`` (gap
    <= tol), ``"nonseparable"`` (certified to ``nonsep_tol``) or
    ``"max_iter"`` (cap reached, nothing certified).
    """

    coef: np.ndarray
    margin: float
    upper_bound: float
    gap: float
    iterations: int
    converged: bool
    separable: bool
    solver: str
    status: str = "optimal"
    n_support: int = 0
    info: dict[str, Any] = field(default_factory=dict)


def finish(coef: np.ndarray, g: np.ndarray, ww: float, bound: float, iterations: int, tol: float,
           solver: str, nonsep: bool, info: dict[str, Any]) -> MaxMarginResult:
    """The result for coefficients ``coef`` (n,) with margins G coef = ``g``
    (n,) and c^T G c = ``ww``: scaled canonically, with its status."""
    gmin = float(g.min())
    separated = ww > 0 and gmin > 0 and not nonsep
    margin = gmin / math.sqrt(ww) if separated else float("nan")
    gap = (bound - margin) / bound if separated else float("nan")
    if nonsep:
        status = "nonseparable"
    elif separated and gap <= tol:
        status = "optimal"
    else:
        status = "max_iter"
    if separated:
        coef = coef / gmin
    elif ww > 0:
        coef = coef / math.sqrt(ww)
    return MaxMarginResult(
        coef=coef,
        margin=float(margin),
        upper_bound=float(bound),
        gap=float(gap),
        iterations=int(iterations),
        converged=status in ("optimal", "nonseparable"),
        separable=bool(separated),
        solver=solver,
        status=status,
        n_support=int(np.count_nonzero(coef)),
        info=info,
    )
