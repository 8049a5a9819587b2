"""The max-margin classifier's decision values and error rate (paper §2:
a kernel is judged by the test error of this classifier)."""

from __future__ import annotations

import numpy as np

from afterkernel.vocabulary import signed_labels


def decision_function(K_test_train: np.ndarray, y_train: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """f(x) = w . phi(x) = sum_i coef_i s_i K(x, x_i), shape (m,), from
    ``K_test_train`` (m, n), the train labels (n,) and ``coef`` (n,)."""
    s = signed_labels(y_train)
    Kt = np.asarray(K_test_train)
    if Kt.ndim != 2 or Kt.shape[1] != len(s):
        raise ValueError(f"K_test_train must be (m, {len(s)}), got {Kt.shape}")
    return Kt.astype(np.float64, copy=False) @ (np.asarray(coef, dtype=np.float64) * s)


def error_rate(decision: np.ndarray, y: np.ndarray) -> float:
    """Fraction misclassified; class 1 (or +1) is predicted when decision > 0."""
    decision = np.asarray(decision)
    s = signed_labels(y)
    if decision.shape != s.shape:
        raise ValueError(f"decision has shape {decision.shape}, labels {s.shape}")
    return float(np.mean((decision > 0) != (s > 0)))
