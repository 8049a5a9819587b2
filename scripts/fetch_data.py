"""Rule ``fetch_data``: download one ``keras.datasets`` dataset, once, into
``resources/keras/{dataset}.npz`` for every problem of it
(:func:`afterkernel.data.sources.fetch_keras_dataset`). A local rule: it runs
on the host that runs Snakemake, never on a compute node.

Snakemake passes ``params.dataset``, ``output[0]`` and ``log``. By hand::

    python scripts/fetch_data.py --dataset mnist --out resources/keras/mnist.npz
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's package

from afterkernel.data.sources import fetch_keras_dataset  # noqa: E402
from afterkernel.entry import run_script  # noqa: E402


def from_snakemake(smk):
    return dict(dataset=smk.params.dataset, out=smk.output[0])


def parser():
    ap = argparse.ArgumentParser(description="Download a keras dataset once, as an .npz file.")
    ap.add_argument("--dataset", required=True, choices=["mnist", "cifar10"])
    ap.add_argument("--out", required=True, type=Path)
    return ap


run_script(globals(), fetch_keras_dataset, from_snakemake=from_snakemake, parser=parser)
