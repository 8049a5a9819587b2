#!/usr/bin/env python
"""Regenerate the embedded data subsets in ``afterkernel/embedded/``.

Usage::

    python tools/make_embedded_data.py --source-dir DIR [--out-dir afterkernel/embedded]

``DIR`` holds ``mnist.npz`` (keras layout, the full MNIST) and
``cifar10_cat_dog_jpeg_q75.npz`` (CIFAR-10 cat/dog decoded from JPEG); see
``afterkernel/embedded/README.md`` for their provenance.  The source files are
checked against their known sha256 (``--allow-other-source`` to skip).

Selection (deterministic): for each kept class, the first N train and the
first M test images in the source order, merged back in source order; the
original labels (0-9) are kept.  Besides ``x_train, y_train, x_test, y_test``
(uint8) each file stores ``index_train, index_test`` (int32 row numbers in the
source arrays).  The ``.npz`` is written with fixed zip timestamps so the same
inputs give the same bytes (for the same zlib); the script prints the sha256
values to put into ``afterkernel/data/sources.py`` (``EMBEDDED``) and the README.
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
from afterkernel.data.sources import EMBEDDED  # noqa: E402

# sha256 of the source files (provenance: afterkernel/embedded/README.md).
KNOWN_SOURCES = {
    "mnist.npz": "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
    "cifar10_cat_dog_jpeg_q75.npz":
        "ff24dfb6880d4a2aa1926f60404c487a1b8390879d8b258031fbb1f40ea6c86e",
}
SOURCE_FILE = {"mnist": "mnist.npz", "cifar10": "cifar10_cat_dog_jpeg_q75.npz"}
DEFAULT_COUNTS = {"mnist": (500, 200), "cifar10": (300, 100)}  # (train, test) per class


def first_per_class(y: np.ndarray, classes, k: int) -> np.ndarray:
    """Row numbers of the first k examples of each class, in source order."""
    return np.sort(np.concatenate([np.flatnonzero(y == c)[:k] for c in classes]))


def write_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed .npz with fixed member order and timestamps, atomically."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for key, arr in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue(), compresslevel=9)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make(dataset: str, source_dir: Path, out_dir: Path, n_train: int, n_test: int,
         allow_other: bool) -> tuple[Path, str]:
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
    i_train = first_per_class(d["y_train"], classes, n_train)
    i_test = first_per_class(d["y_test"], classes, n_test)
    arrays = {
        "x_train": d["x_train"][i_train].astype(np.uint8),
        "y_train": d["y_train"][i_train].astype(np.uint8),
        "x_test": d["x_test"][i_test].astype(np.uint8),
        "y_test": d["y_test"][i_test].astype(np.uint8),
        "index_train": i_train.astype(np.int32),
        "index_test": i_test.astype(np.int32),
    }
    out = out_dir / EMBEDDED[dataset]["file"]
    write_npz_deterministic(out, arrays)
    counts = {int(c): (int(np.sum(arrays["y_train"] == c)), int(np.sum(arrays["y_test"] == c)))
              for c in classes}
    print(f"{out.name}: from {src.name} (sha256 {digest}); classes {list(classes)}; "
          f"(train, test) per class {counts}; {out.stat().st_size} bytes")
    return out, sha256_file(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source-dir", required=True, type=Path,
                    help="folder holding mnist.npz and cifar10_cat_dog_jpeg_q75.npz")
    ap.add_argument("--out-dir", type=Path, default=REPO / "afterkernel" / "embedded")
    ap.add_argument("--mnist-train", type=int, default=DEFAULT_COUNTS["mnist"][0])
    ap.add_argument("--mnist-test", type=int, default=DEFAULT_COUNTS["mnist"][1])
    ap.add_argument("--cifar-train", type=int, default=DEFAULT_COUNTS["cifar10"][0])
    ap.add_argument("--cifar-test", type=int, default=DEFAULT_COUNTS["cifar10"][1])
    ap.add_argument("--allow-other-source", action="store_true",
                    help="do not require the known source sha256 values")
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    mismatch = False
    for dataset, (n_train, n_test) in (("mnist", (args.mnist_train, args.mnist_test)),
                                       ("cifar10", (args.cifar_train, args.cifar_test))):
        out, digest = make(dataset, args.source_dir, args.out_dir, n_train, n_test,
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
