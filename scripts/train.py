"""Rule ``train``: train one network and write its training file
``results/training/{problem}/{arch}/{aug}/{schedule}/seed{seed}.h5``
(:func:`afterkernel.training.train_to_file`).

Snakemake gives ``input.data`` (the problem file), ``output[0]``,
``threads``, ``params.training`` (the keyword arguments of the job:
``arch_spec, stop, snapshot_epochs, learning_rate, batch_size, loss_target,
max_epochs, augmentation``), ``params.arch_name`` and ``params.seed``; or by
hand::

    python scripts/train.py --data results/data/mnist-3v8.h5 --out run.h5 \\
        --arch-spec '{"type": "fc"}' --seed 0 --snapshot-epochs 0 1 3
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's package

from afterkernel.entry import run_script  # noqa: E402
from afterkernel.training import DEFAULTS, train_to_file  # noqa: E402
from afterkernel.vocabulary import STOPS  # noqa: E402


def from_snakemake(smk) -> dict:
    return {"data": smk.input.data, "out": smk.output[0], **smk.params.training,
            "arch_name": smk.params.arch_name, "seed": int(smk.params.seed)}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="Train one network and write its training file.")
    ap.add_argument("--data", required=True, type=Path, help="problem .h5 file (rule prepare_data)")
    ap.add_argument("--out", required=True, type=Path, help="output training .h5 file")
    ap.add_argument("--arch-spec", required=True, type=json.loads,
                    help='architecture spec as JSON, e.g. \'{"type": "vgg", "widths": [26, 52]}\'')
    ap.add_argument("--arch-name", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--schedule", dest="stop", choices=STOPS, default=DEFAULTS.stop,
                    help="stop after the snapshot epochs or at the loss target")
    ap.add_argument("--snapshot-epochs", type=int, nargs="+", default=list(DEFAULTS.snapshot_epochs))
    ap.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate)
    ap.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    ap.add_argument("--loss-target", type=float, default=DEFAULTS.loss_target)
    ap.add_argument("--max-epochs", type=int, default=DEFAULTS.max_epochs)
    ap.add_argument("--augmentation", type=json.loads, default=DEFAULTS.augmentation,
                    help='e.g. \'{"rotation_degrees": 15, "shift_pixels": 1}\'')
    return ap


run_script(globals(), train_to_file, from_snakemake=from_snakemake, parser=parser, tensorflow=True)
