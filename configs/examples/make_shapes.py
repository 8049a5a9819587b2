"""Make ``shapes.npz``, the worked example's own data (README, "Your own data
and networks"): 16×16 grayscale images of two classes, a hollow square (label
0) and a cross (label 1), of random size, place and brightness;
keras' layout (x_train, y_train, x_test, y_test, uint8) plus the class names.

    python configs/examples/make_shapes.py  # writes configs/examples/shapes.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SIZE = 16
CLASS_NAMES = ("square", "cross")


def shape_image(label: int, rng: np.random.Generator) -> np.ndarray:
    """One (SIZE, SIZE) uint8 image: a square outline (0) or a cross (1)."""
    img = np.zeros((SIZE, SIZE), np.int64)
    half = int(rng.integers(3, 6))
    r, c = (int(v) for v in rng.integers(half, SIZE - half, 2))
    ink = int(rng.integers(160, 256))
    if label == 0:
        img[r - half, c - half:c + half + 1] = img[r + half, c - half:c + half + 1] = ink
        img[r - half:r + half + 1, c - half] = img[r - half:r + half + 1, c + half] = ink
    else:
        img[r, c - half:c + half + 1] = img[r - half:r + half + 1, c] = ink
    return img.astype(np.uint8)


def make(n_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.repeat(np.arange(2), n_per_class)
    rng.shuffle(y)
    return np.stack([shape_image(int(label), rng) for label in y]), y.astype(np.uint8)


def main(out: Path) -> None:
    rng = np.random.default_rng(0)
    x_train, y_train = make(40, rng)
    x_test, y_test = make(20, rng)
    np.savez_compressed(out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                        class_names=np.array(CLASS_NAMES))
    print(f"wrote {out}: train {x_train.shape}, test {x_test.shape}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("shapes.npz"))
