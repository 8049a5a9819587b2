"""Invariance cosines and their summaries on known values (afterkernel.kernels.invariances)."""

from __future__ import annotations

import numpy as np
import pytest

from afterkernel.kernels import invariances as inv


def test_cosines_known_values_and_zero_norm():
    c = inv.cosines([1.0, 0.0, -2.0, 1.0], [1.0, 4.0, 4.0, 0.0], [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(c[:3], [1.0, 0.0, -1.0])
    assert np.isnan(c[3])


def test_summaries_average_the_right_transforms():
    cos = {"shift_right": np.array([1.0, 0.8]), "shift_down": np.array([0.6, np.nan]),
           "rotate_pos": np.array([0.5]), "rotate_neg": np.array([0.7]),
           "zoom": np.array([0.9, 0.7]), "swap": np.array([0.2])}
    s = inv.summarize_invariances(cos)
    assert s["translation"] == pytest.approx((0.9 + 0.6) / 2)
    assert s["rotation"] == pytest.approx(0.6)
    assert s["zoom"] == pytest.approx(0.8)
    assert s["swap"] == pytest.approx(0.2)
