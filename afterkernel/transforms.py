"""Image perturbations of the invariance measurements (paper §2), in TF ops.

All functions take a batch of images, float NHWC (a NumPy array or a
tensor), and return a ``tf.Tensor`` of the same shape and dtype.

Conventions (images as displayed: row 0 at the top, column 0 at the left):

- :func:`shift` moves the content ``dx`` columns to the right and ``dy``
  rows down (negative values: left / up); vacated pixels are 0 (zero fill).
  ``shift_right`` = ``shift(x, dx=1)``, ``shift_down`` = ``shift(x, dy=1)``.
- :func:`rotate` turns the content by ``angle`` radians about the image
  centre ((H-1)/2, (W-1)/2), **counter-clockwise as displayed** for a
  positive angle (the convention of ``tfa.image.rotate`` and Keras'
  ``RandomRotation``); nearest-neighbour sampling, zero fill. ``rotate_pos``
  is +0.25 rad (counter-clockwise), ``rotate_neg`` −0.25 rad (clockwise);
  the paper averages the two, so the metric does not depend on the sign
  convention.
- :func:`zoom` crops the outermost ring of ``border`` pixels and resizes back
  to (H, W) with ``tf.image.resize`` and its defaults (bilinear, no
  antialiasing), as the paper's "TensorFlow resize with default parameters".
- :func:`swap_quadrants` exchanges the upper-left and lower-right
  ⌊H/2⌋×⌊W/2⌋ quadrants (for odd sizes the middle row / column stays put);
  it is its own inverse.

:data:`PERTURBATIONS` maps the transform names of the kernel-metrics file
(``shift_right, shift_down, rotate_pos, rotate_neg, zoom, swap``) to
functions of one argument.
"""

from __future__ import annotations

from typing import Callable

ROTATION_ANGLE = 0.25  # radians (paper §2: "1/4 radians")


def _tf():
    import tensorflow as tf

    return tf


def _as_images(x):
    tf = _tf()
    x = tf.convert_to_tensor(x)
    if x.shape.rank != 4:
        raise ValueError(f"expected a batch of NHWC images, got shape {tuple(x.shape)}")
    return x


def shift(x, dx: int = 0, dy: int = 0):
    """Move the content ``dx`` pixels right and ``dy`` pixels down (integers,
    either sign); pixels shifted in from outside are zero."""
    tf = _tf()
    x = _as_images(x)
    h, w = int(x.shape[1]), int(x.shape[2])
    dx, dy = int(dx), int(dy)
    if abs(dx) >= w or abs(dy) >= h:
        return tf.zeros_like(x)
    # Pad on the side the content moves away from, then crop the far side.
    padded = tf.pad(x, [[0, 0], [max(dy, 0), max(-dy, 0)], [max(dx, 0), max(-dx, 0)], [0, 0]])
    return padded[:, max(-dy, 0):max(-dy, 0) + h, max(-dx, 0):max(-dx, 0) + w, :]


def shift_right(x, pixels: int = 1):
    """Shift one pixel (or ``pixels``) to the right, zero fill."""
    return shift(x, dx=pixels)


def shift_down(x, pixels: int = 1):
    """Shift one pixel (or ``pixels``) down, zero fill."""
    return shift(x, dy=pixels)


def rotation_transforms(angles, height: int, width: int):
    """Projective transform vectors (n, 8) of ``ImageProjectiveTransformV3``
    (output pixel → input pixel) for counter-clockwise rotations about the
    centre by ``angles`` (radians, shape (n,))."""
    tf = _tf()
    angles = tf.cast(tf.reshape(angles, [-1]), tf.float32)
    c, s = tf.cos(angles), tf.sin(angles)
    w1, h1 = float(width - 1), float(height - 1)
    x_off = (w1 - (c * w1 - s * h1)) / 2.0
    y_off = (h1 - (s * w1 + c * h1)) / 2.0
    zeros = tf.zeros_like(angles)
    return tf.stack([c, -s, x_off, s, c, y_off, zeros, zeros], axis=1)


def rotate(x, angle, interpolation: str = "nearest"):
    """Rotate counter-clockwise (as displayed) by ``angle`` radians about the
    centre, nearest-neighbour, zero fill. ``angle`` is a scalar or one angle
    per image (shape (n,))."""
    import keras

    tf = _tf()
    x = _as_images(x)
    n = tf.shape(x)[0]
    angles = tf.broadcast_to(tf.cast(tf.reshape(angle, [-1]), tf.float32), [n])
    transform = rotation_transforms(angles, int(x.shape[1]), int(x.shape[2]))
    out = keras.ops.image.affine_transform(
        tf.cast(x, tf.float32), transform, interpolation=interpolation,
        fill_mode="constant", fill_value=0, data_format="channels_last")
    return tf.cast(out, x.dtype)


def rotate_pos(x):
    """Rotate +0.25 rad (counter-clockwise)."""
    return rotate(x, ROTATION_ANGLE)


def rotate_neg(x):
    """Rotate −0.25 rad (clockwise)."""
    return rotate(x, -ROTATION_ANGLE)


def zoom(x, border: int = 1):
    """Crop ``border`` pixels off every side, then ``tf.image.resize`` back
    to the original size (defaults: bilinear, no antialiasing)."""
    tf = _tf()
    x = _as_images(x)
    h, w = int(x.shape[1]), int(x.shape[2])
    cropped = x[:, border:h - border, border:w - border, :]
    return tf.cast(tf.image.resize(cropped, [h, w]), x.dtype)


def swap_quadrants(x):
    """Exchange the upper-left and lower-right quadrants."""
    tf = _tf()
    x = _as_images(x)
    h, w = int(x.shape[1]), int(x.shape[2])
    h2, w2 = h // 2, w // 2
    top_left = x[:, :h2, :w2]
    bottom_right = x[:, h - h2:, w - w2:]
    top = tf.concat([bottom_right, x[:, :h2, w2:]], axis=2)
    middle = x[:, h2:h - h2]
    bottom = tf.concat([x[:, h - h2:, :w - w2], top_left], axis=2)
    return tf.concat([top, middle, bottom], axis=1)


PERTURBATIONS: dict[str, Callable] = {
    "shift_right": shift_right,
    "shift_down": shift_down,
    "rotate_pos": rotate_pos,
    "rotate_neg": rotate_neg,
    "zoom": zoom,
    "swap": swap_quadrants,
}

# Invariance summaries of the metrics file: name -> transforms averaged.
INVARIANCE_GROUPS: dict[str, tuple[str, ...]] = {
    "translation": ("shift_right", "shift_down"),
    "rotation": ("rotate_pos", "rotate_neg"),
    "zoom": ("zoom",),
    "swap": ("swap",),
}

