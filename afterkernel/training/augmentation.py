"""The training augmentation: ImageDataGenerator's rotation and shift as the
paper meant them (paper §2), on the training batches only.

Per image one affine map, a rotation of up to ±15° about the centre composed
with a shift of -1, 0 or 1 pixels along each axis, bilinear interpolation,
edge fill; the original code's ``width_shift_range=1`` never shifted.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def augmentation_layer(rotation_degrees: float = 15.0, shift_pixels: int = 1, seed: int = 0,
                       input_shape: Sequence[int] | None = None, *,
                       interpolation: str = "bilinear", fill_mode: str = "nearest",
                       fill_value: float = 0.0):
    """The training augmentation of ``ImageDataGenerator(rotation_range=15,
    width_shift_range=1, height_shift_range=1)`` as the paper meant it.

    Per image: an angle uniform in ±``rotation_degrees`` and a shift drawn
    uniformly from the integers {-``shift_pixels``, ..., ``shift_pixels``},
    independently for rows and columns; then one affine map, the rotation
    about the centre composed with the shift (:func:`affine_warp`).

    As in the original code: one resampling per image, bilinear
    interpolation, edge replication (``fill_mode="nearest"``). Unlike it:
    real shifts; its integer ``width_shift_range=1`` drew them from
    ``range(1) = {0}`` and never shifted. (The invariance perturbations of
    :mod:`afterkernel.transforms` use nearest and zero fill instead.)

    Returns a callable ``aug(images, training=...)``, the identity unless
    ``training`` is true, seeded by ``seed`` (angles and shifts from
    independent streams). ``input_shape`` (H, W, C), if given, is checked
    against the images.
    """
    try:
        k = int(shift_pixels)
    except (TypeError, ValueError, OverflowError):
        k = -1
    if k != shift_pixels or k < 0:
        raise ValueError(f"shift_pixels must be a non-negative integer, got {shift_pixels!r}")
    degrees = float(rotation_degrees)
    if not 0.0 <= degrees < math.inf:
        raise ValueError(f"rotation_degrees must be finite and >= 0, got {rotation_degrees!r}")
    size = None if input_shape is None else (int(input_shape[0]), int(input_shape[1]))
    return _RandomAffine(degrees, k, int(seed), size,
                         dict(interpolation=interpolation, fill_mode=fill_mode, fill_value=fill_value))


class _RandomAffine:
    """The callable of :func:`augmentation_layer`."""

    def __init__(self, rotation_degrees: float, shift_pixels: int, seed: int,
                 size: tuple[int, int] | None, warp_kw: dict):
        import keras

        self.rotation_degrees, self.shift_pixels, self.size, self.warp_kw = (
            rotation_degrees, shift_pixels, size, warp_kw)
        # Keras' generators keep their state in a variable, so successive
        # batches inside one tf.function get fresh draws.
        self.angle_seed = keras.random.SeedGenerator(_derived_seed(seed, 1))
        self.shift_seed = keras.random.SeedGenerator(_derived_seed(seed, 2))
        self.seed_generators = (self.angle_seed, self.shift_seed)  # their states: a checkpoint's

    def sample(self, n):
        """``n`` angles (degrees) and (n, 2) integer (row, column) shifts."""
        import keras

        r, k = self.rotation_degrees, self.shift_pixels
        angles = keras.random.uniform((n,), -r, r, dtype="float32", seed=self.angle_seed)
        shifts = keras.random.randint((n, 2), -k, k + 1, dtype="int32", seed=self.shift_seed)
        return angles, shifts

    def __call__(self, images, training=False):
        if not training:
            return images
        import keras

        images = keras.ops.convert_to_tensor(images)
        if self.size is not None and tuple(images.shape[1:3]) != self.size:
            raise ValueError(f"images of shape {tuple(images.shape)}, expected {self.size} pixels")
        angles, shifts = self.sample(keras.ops.shape(images)[0])
        return affine_warp(images, angles, shifts, **self.warp_kw)


def affine_warp(images, angles, shifts, *, interpolation: str = "bilinear",
                fill_mode: str = "nearest", fill_value: float = 0.0):
    """Warp each image of ``images`` (n, H, W, C) by one affine map, as
    keras-preprocessing's ``apply_affine_transform(x, theta, tx, ty)``: the
    output pixel p = (row, column) takes the input at o + R(θ)(p - o + t),
    o = ((H-1)/2, (W-1)/2) the centre, θ = ``angles`` (n,) in degrees, t =
    ``shifts`` (n, 2) = (tx, ty) in pixels along (rows, columns)."""
    import keras

    ops = keras.ops
    images = ops.convert_to_tensor(images)
    oy, ox = (images.shape[1] - 1) / 2.0, (images.shape[2] - 1) / 2.0
    theta = ops.deg2rad(ops.cast(angles, "float32"))
    c, s = ops.cos(theta), ops.sin(theta)
    shifts = ops.cast(shifts, "float32")
    dy, dx = shifts[:, 0] - oy, shifts[:, 1] - ox
    zeros = ops.zeros_like(c)
    # keras.ops.image.affine_transform maps output (x, y) = (column, row) to
    # input coordinates; R acts on (row, column) as in ImageDataGenerator.
    transform = ops.stack([c, s, ox + s * dy + c * dx,
                           -s, c, oy + c * dy - s * dx, zeros, zeros], axis=1)
    return ops.image.affine_transform(images, transform, interpolation=interpolation,
                                      fill_mode=fill_mode, fill_value=fill_value,
                                      data_format="channels_last")


def _derived_seed(seed: int, stream: int) -> int:
    """An independent 31-bit seed for the random stream ``stream`` of ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(1)[0] & 0x7FFFFFFF)
