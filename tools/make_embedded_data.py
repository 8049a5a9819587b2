#!/usr/bin/env python
"""Regenerate the embedded data files in ``afterkernel/embedded/``.

Usage::

    python tools/make_embedded_data.py --source-dir DIR [--out-dir afterkernel/embedded]

``DIR`` holds ``mnist.npz`` (keras layout, the full MNIST) and
``cifar10_cat_dog_jpeg_q75.npz`` (CIFAR-10 cat/dog decoded from JPEG); see
``afterkernel/embedded/README.md`` for their provenance.  The source files are
checked against their known sha256 (``--allow-other-source`` to skip).

Selection (deterministic):

- MNIST (``mnist_3568.npz``): every train and test image of digits 3, 5, 6
  and 8, in source order;
- CIFAR-10 cat/dog (``cifar10_cat_dog_jpeg_q75_subset.npz``): for each class
  300 train and 100 test images drawn at random without replacement from the
  whole split with seed 0 (``afterkernel.data.sample.draw_per_class``, the
  draw of the config's caps), merged back in source order.

The original labels (0-9) are kept.  Besides ``x_train, y_train, x_test,
y_test`` (uint8) each file stores ``index_train, index_test`` (int32 row
numbers in the source arrays); a drawn file also stores ``subset_seed`` (a
0-d int64 array, the seed of its draw).  The ``.npz`` is written with fixed
zip timestamps so the same inputs give the same bytes (for the same numpy and
zlib); the script prints the sha256 values to put into
``afterkernel/data/sources.py`` (``EMBEDDED``) and the README.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from afterkernel.data.raw import sha256_file  # noqa: E402
from afterkernel.data.sample import draw_per_class  # noqa: E402
from afterkernel.data.sources import EMBEDDED  # noqa: E402

# sha256 of the source files (provenance: afterkernel/embedded/README.md).
KNOWN_SOURCES = {
    "mnist.npz": "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
    "cifar10_cat_dog_jpeg_q75.npz":
        "ff24dfb6880d4a2aa1926f60404c487a1b8390879d8b258031fbb1f40ea6c86e",
}
SOURCE_FILE = {"mnist": "mnist.npz", "cifar10": "cifar10_cat_dog_jpeg_q75.npz"}
#: (train, test) images per class (None: all) and the seed of the draw (None: no draw)
SELECTION = {"mnist": (None, None, None), "cifar10": (300, 100, 0)}


def _count(value: str) -> int | None:
    return None if value.lower() == "all" else int(value)


def write_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed .npz with fixed member order and timestamps, atomically."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for key, arr in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(arr) if arr.ndim else arr,
                                          allow_pickle=False)  # (0-d stays 0-d)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue(), compresslevel=9)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make(dataset: str, source_dir: Path, out_dir: Path, n_train: int | None, n_test: int | None,
         seed: int | None, allow_other: bool) -> tuple[Path, str]:
    src = source_dir / SOURCE_FILE[dataset]
    if not src.is_file():
        sys.exit(f"error: {src} not found (expected in --source-dir)")
    digest = sha256_file(src)
    if digest != KNOWN_SOURCES[src.name] and not allow_other:
        sys.exit(f"error: {src} has sha256 {digest}, expected {KNOWN_SOURCES[src.name]} "
                 "(use --allow-other-source to proceed anyway)")
    classes = EMBEDDED[dataset]["classes"]
    with np.load(src, allow_pickle=False) as f:
        d = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    if seed is None and (n_train is not None or n_test is not None):
        sys.exit(f"error: {dataset}: a per-class count needs a seed (the draw is seeded)")
    draw = 0 if seed is None else seed  # no cap: every image of the classes, no draw
    i_train = draw_per_class(d["y_train"], classes, n_train, draw, "train")
    i_test = draw_per_class(d["y_test"], classes, n_test, draw, "test")
    arrays = {
        "x_train": d["x_train"][i_train].astype(np.uint8),
        "y_train": d["y_train"][i_train].astype(np.uint8),
        "x_test": d["x_test"][i_test].astype(np.uint8),
        "y_test": d["y_test"][i_test].astype(np.uint8),
        "index_train": i_train.astype(np.int32),
        "index_test": i_test.astype(np.int32),
    }
    if seed is not None:
        arrays["subset_seed"] = np.array(seed, dtype=np.int64)
    out = out_dir / EMBEDDED[dataset]["file"]
    write_npz_deterministic(out, arrays)
    counts = {int(c): (int(np.sum(arrays["y_train"] == c)), int(np.sum(arrays["y_test"] == c)))
              for c in classes}
    rule = "all, source order" if seed is None else f"seeded draw (seed {seed}), source order"
    print(f"{out.name}: from {src.name} (sha256 {digest}); classes {list(classes)}; {rule}; "
          f"(train, test) per class {counts}; {out.stat().st_size} bytes")
    return out, sha256_file(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source-dir", required=True, type=Path,
                    help="folder holding mnist.npz and cifar10_cat_dog_jpeg_q75.npz")
    ap.add_argument("--out-dir", type=Path, default=REPO / "afterkernel" / "embedded")
    for name, dataset in (("mnist", "mnist"), ("cifar", "cifar10")):
        n_train, n_test, seed = SELECTION[dataset]
        for split, n in (("train", n_train), ("test", n_test)):
            ap.add_argument(f"--{name}-{split}", type=_count, default=n,
                            help=f"{split} images per class, or 'all' (default {n or 'all'})")
        ap.add_argument(f"--{name}-seed", type=int, default=seed,
                        help=f"seed of the per-class draw (default {seed}; needed with a count)")
    ap.add_argument("--allow-other-source", action="store_true",
                    help="do not require the known source sha256 values")
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    mismatch = False
    for dataset, (n_train, n_test, seed) in (
            ("mnist", (args.mnist_train, args.mnist_test, args.mnist_seed)),
            ("cifar10", (args.cifar_train, args.cifar_test, args.cifar_seed))):
        if n_train is None and n_test is None:
            seed = None  # every image: nothing drawn
        out, digest = make(dataset, args.source_dir, args.out_dir, n_train, n_test, seed,
                           args.allow_other_source)
        expected = EMBEDDED[dataset]["sha256"]
        status = "matches afterkernel/data/sources.py" if digest == expected else (
            f"DIFFERS from afterkernel/data/sources.py ({expected}): update EMBEDDED['{dataset}']"
            "['sha256'] and the README")
        mismatch |= digest != expected
        print(f"  sha256 {digest}  {status}")
    return 1 if mismatch else 0


if __name__ == "__main__":
    sys.exit(main())
