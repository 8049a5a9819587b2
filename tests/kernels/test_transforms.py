"""Image perturbations on known images (afterkernel.transforms)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from afterkernel import transforms as T  # noqa: E402


def impulse(h=7, w=9, row=3, col=4, c=1, n=1):
    x = np.zeros((n, h, w, c), np.float32)
    x[:, row, col, :] = 1.0
    return x


def where(x):
    return [tuple(p) for p in np.argwhere(np.asarray(x)[0, :, :, 0] != 0)]


def test_shift_right_moves_impulse_one_column():
    assert where(T.shift_right(impulse())) == [(3, 5)]


def test_shift_down_moves_impulse_one_row():
    assert where(T.shift_down(impulse())) == [(4, 4)]


def test_shift_zero_fills_border_and_drops_overflow():
    x = np.arange(1, 1 + 4 * 5, dtype=np.float32).reshape(1, 4, 5, 1)
    right = np.asarray(T.shift_right(x))[0, :, :, 0]
    assert np.all(right[:, 0] == 0)
    np.testing.assert_array_equal(right[:, 1:], x[0, :, :-1, 0])
    down = np.asarray(T.shift_down(x))[0, :, :, 0]
    assert np.all(down[0] == 0)
    np.testing.assert_array_equal(down[1:], x[0, :-1, :, 0])
    # negative shifts and shapes / dtypes kept
    up_left = np.asarray(T.shift(x, dx=-2, dy=-1))
    assert up_left.shape == x.shape and up_left.dtype == np.float32
    np.testing.assert_array_equal(up_left[0, :-1, :-2, 0], x[0, 1:, 2:, 0])
    assert np.all(up_left[0, -1] == 0) and np.all(up_left[0, :, -2:] == 0)


def test_swap_quadrants_moves_corners_and_is_an_involution():
    rng = np.random.default_rng(0)
    for h, w in [(8, 8), (7, 9)]:
        x = rng.random((3, h, w, 2)).astype(np.float32)
        s = np.asarray(T.swap_quadrants(x))
        h2, w2 = h // 2, w // 2
        np.testing.assert_array_equal(s[:, :h2, :w2], x[:, h - h2:, w - w2:])
        np.testing.assert_array_equal(s[:, h - h2:, w - w2:], x[:, :h2, :w2])
        np.testing.assert_array_equal(s[:, :h2, w2:], x[:, :h2, w2:])  # upper right kept
        np.testing.assert_array_equal(np.asarray(T.swap_quadrants(s)), x)


def test_rotation_direction_is_counter_clockwise():
    # Quarter turn of an impulse at the top centre lands at the left centre.
    x = impulse(h=7, w=7, row=1, col=3)
    assert where(T.rotate(x, np.pi / 2)) == [(3, 1)]
    assert where(T.rotate(x, -np.pi / 2)) == [(3, 5)]


def test_rotate_back_approximately_restores_the_centre():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:28, :28]
    blob = np.exp(-(((yy - 13.5) / 5) ** 2 + ((xx - 12) / 3) ** 2))
    x = (blob[None, :, :, None] * (0.8 + 0.2 * rng.random((1, 28, 28, 1)))).astype(np.float32)
    back = np.asarray(T.rotate_neg(T.rotate_pos(x)))
    centre = (slice(None), slice(6, 22), slice(6, 22))
    err = np.abs(back[centre] - x[centre])
    assert np.mean(err) < 0.02
    assert np.abs(np.asarray(T.rotate(x, 0.0)) - x).max() == 0.0


def test_rotation_per_image_angles():
    x = np.repeat(impulse(h=7, w=7, row=1, col=3), 2, axis=0)
    out = np.asarray(T.rotate(x, np.array([np.pi / 2, -np.pi / 2], np.float32)))
    assert where(out[:1]) == [(3, 1)] and where(out[1:]) == [(3, 5)]


def test_zoom_of_constant_is_constant_and_enlarges_content():
    x = np.full((2, 28, 28, 3), 0.37, np.float32)
    np.testing.assert_allclose(np.asarray(T.zoom(x)), x, atol=1e-6)
    # a centred square grows (slightly) and stays centred
    y = np.zeros((1, 28, 28, 1), np.float32)
    y[0, 10:18, 10:18, 0] = 1
    z = np.asarray(T.zoom(y))[0, :, :, 0]
    assert z.sum() > y.sum()
    np.testing.assert_allclose(z, z[::-1, ::-1], atol=1e-6)


def test_zoom_matches_crop_then_tf_resize():
    x = np.random.default_rng(2).random((2, 32, 32, 3)).astype(np.float32)
    ref = tf.image.resize(x[:, 1:-1, 1:-1, :], [32, 32]).numpy()
    np.testing.assert_array_equal(np.asarray(T.zoom(x)), ref)


def test_perturbation_registry_and_shapes():
    assert list(T.PERTURBATIONS) == ["shift_right", "shift_down", "rotate_pos", "rotate_neg",
                                     "zoom", "swap"]
    x = np.random.default_rng(3).random((4, 10, 12, 1)).astype(np.float32)
    for name, fn in T.PERTURBATIONS.items():
        out = np.asarray(fn(x))
        assert out.shape == x.shape and out.dtype == np.float32, name
