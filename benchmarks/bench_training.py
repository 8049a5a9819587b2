"""Seconds per training epoch (SGD, batch 32) on MNIST-3v8-size data.

    python benchmarks/bench_training.py --out /tmp/training.json   (run_all.py merges it into results.json)

Times :func:`afterkernel.training.train` (the SGD steps of an epoch, without
the per-epoch evaluation of the history) for the VGG-like net (26/52), the
FC net (4x94) and, on a subset scaled up linearly, the mega-VGG net
(119/238). Data: MNIST 3-vs-8 (11,982 training images) from
``../shared/data/mnist.npz`` when present, else random images of that shape
(the cost does not depend on the pixel values). The first epoch includes
building the graph and is left out; the figure is the median of the others.
The comparators are the single measurements in the project notes
(measurements.md, Keras ``model.fit`` on a 2-core machine); ratio =
comparator / ours, so > 1 means faster than the comparator.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
from pathlib import Path

import numpy as np
from _common import write_results

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MNIST = REPO.parent / "shared" / "data" / "mnist.npz"
N_TRAIN = 11_982  # MNIST 3-vs-8

NETS = {
    # name: (spec, comparator text, comparator seconds/epoch at 11,982 examples)
    "vgg": ({"type": "vgg", "widths": [26, 52]},
            "measurements.md: VGG-like (26/52), 1 epoch of 11,982 MNIST-size examples, "
            "SGD batch 32: ~8-12 s (midpoint 10)", 10.0),
    "fc": ({"type": "fc", "widths": [94, 94, 94, 94]},
           "measurements.md: FC 4x94, same: ~0.6 s", 0.6),
    "megavgg": ({"type": "vgg", "widths": [119, 238]},
                "measurements.md: mega-VGG (119/238), same: ~140 s", 140.0),
}


def load_data(n: int | None = None, seed: int = 0):
    """MNIST 3-vs-8 (first ``n`` training images) or random data of its shape."""
    if MNIST.is_file():
        with np.load(MNIST) as d:
            m = np.isin(d["y_train"], [3, 8])
            x = (d["x_train"][m][..., None] / 255.0).astype(np.float32)
            y = (d["y_train"][m] == 8).astype(np.uint8)
        source = "MNIST 3-vs-8 (mnist.npz)"
    else:
        rng = np.random.default_rng(seed)
        x = rng.random((N_TRAIN, 28, 28, 1), dtype=np.float32)
        y = (rng.random(N_TRAIN) > 0.5).astype(np.uint8)
        source = "random images of MNIST 3-vs-8 size"
    if n is not None:
        x, y = x[:n], y[:n]
    return x, y, source


def bench(name: str, epochs: int, n: int | None) -> dict:
    from afterkernel.training import train

    spec, comparator, comparator_value = NETS[name]
    x, y, source = load_data(n)
    # a small test set: the evaluation is not part of the timed SGD steps
    r = train(x, y, x[:256], y[:256], spec, 0, snapshot_epochs=(epochs,))
    seconds = r.history["seconds"][1:]
    timed = seconds[1:] if len(seconds) > 1 else seconds
    per_epoch = float(np.median(timed))
    scale = N_TRAIN / len(x)
    value = per_epoch * scale
    unit = "s/epoch (11,982 examples, batch 32, 2 threads)"
    notes = (f"{source}; median of {len(timed)} epoch(s) after the first (graph building); "
             f"epoch times {np.round(seconds, 3).tolist()} s")
    if scale != 1:
        unit = "s/epoch (scaled linearly from %d examples to 11,982; batch 32, 2 threads)" % len(x)
        notes += f"; measured on the first {len(x)} examples and scaled by {scale:.3f}"
    logging.info("%s: %.3f s/epoch (%s)", name, value, notes)
    return {
        "name": f"train_seconds_per_epoch_{name}",
        "value": round(value, 4),
        "unit": unit,
        "comparator": comparator,
        "comparator_value": comparator_value,
        "ratio": round(comparator_value / value, 3),
        "date": datetime.date.today().isoformat(),
        "notes": notes,
        "n_params": int(r.attrs["n_params"]),
        "device": r.attrs["device"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nets", nargs="+", default=["fc", "vgg", "megavgg"], choices=sorted(NETS))
    ap.add_argument("--epochs", type=int, default=3, help="epochs for vgg (fc: 2 more)")
    ap.add_argument("--mega-examples", type=int, default=2000)
    ap.add_argument("--mega-epochs", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from afterkernel.runtime import configure_tensorflow

    configure_tensorflow(args.threads, 0)
    plan = {"fc": (args.epochs + 2, None), "vgg": (args.epochs, None),
            "megavgg": (args.mega_epochs, args.mega_examples)}
    results = [bench(name, *plan[name]) for name in args.nets]
    write_results(args.out, results)
    for e in results:
        print(f"{e['name']}: {e['value']:.3f} s (comparator {e['comparator_value']} s, ratio {e['ratio']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
