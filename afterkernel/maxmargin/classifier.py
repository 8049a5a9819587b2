"""The max-margin classifier's decision values and error rate (paper §2:
a kernel is judged by the test error of this classifier)."""

from __future__ import annotations

import numpy as np

from afterkernel.vocabulary import signed_labels


# Rows of K_test_train read at a time: the float64 copies stay small.
_ROWS = 1024


def decision_function(K_test_train, y_train: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """f(x) = w . phi(x) = sum_i coef_i s_i K(x, x_i), shape (m,), from
    ``K_test_train`` (m, n; an array or an HDF5 dataset), the train labels
    (n,) and ``coef`` (n,).

    Reads ``_ROWS`` rows at a time and only the columns of the support
    (coef != 0), in float64: no copy of the whole matrix.
    """
    s = signed_labels(y_train)
    Kt = K_test_train if hasattr(K_test_train, "shape") else np.asarray(K_test_train)
    if len(Kt.shape) != 2 or Kt.shape[1] != len(s):
        raise ValueError(f"K_test_train must be (m, {len(s)}), got {Kt.shape}")
    coef = np.asarray(coef, dtype=np.float64)
    sv = np.flatnonzero(coef)
    cs = coef[sv] * s[sv]
    out = np.zeros(Kt.shape[0])
    for r0 in range(0, Kt.shape[0], _ROWS):
        block = np.asarray(Kt[r0 : r0 + _ROWS])[:, sv]
        out[r0 : r0 + len(block)] = block.astype(np.float64) @ cs
    return out


def error_rate(decision: np.ndarray, y: np.ndarray) -> float:
    """Fraction misclassified; class 1 (or +1) is predicted when decision > 0."""
    decision = np.asarray(decision)
    s = signed_labels(y)
    if decision.shape != s.shape:
        raise ValueError(f"decision has shape {decision.shape}, labels {s.shape}")
    return float(np.mean((decision > 0) != (s > 0)))
