"""Rule ``kernel``: the after kernel and its conjugate projection for the
snapshots of one training run, and their metrics
(:func:`afterkernel.kernels.job.kernel_job`; file layouts in
:mod:`afterkernel.kernels.files`).

Snakemake passes ``input.training``, ``input.data``, ``output.gram``,
``output.metrics``, ``params.snapshots``, ``params.kernels`` (``block_size,
jacobian_budget_mb, test_sample``) and ``threads``. By hand::

    python scripts/kernel.py --training run.h5 --data results/data/mnist-3v8.h5 \\
        --snapshots e0 e3 --gram run.gram.h5 --metrics run.metrics.h5 --test-sample 1000
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's package

from afterkernel.entry import run_script  # noqa: E402
from afterkernel.kernels.job import kernel_job, settings_from_kernels  # noqa: E402


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="After kernel / conjugate Gram matrices and metrics "
                                             "of one training run's snapshots.")
    ap.add_argument("--training", required=True, type=Path, help="training .h5 file (rule train)")
    ap.add_argument("--data", required=True, type=Path, help="problem .h5 file (rule prepare_data)")
    ap.add_argument("--snapshots", required=True, nargs="+", help="snapshot names, e.g. e0 e3 or final")
    ap.add_argument("--gram", required=True, type=Path, help="output Gram .h5 file")
    ap.add_argument("--metrics", required=True, type=Path, help="output metrics .h5 file")
    ap.add_argument("--block-size", type=int, default=None,
                    help="examples per gradient block (default: as many as a quarter of the budget holds)")
    ap.add_argument("--jacobian-budget-mb", type=float, default=1024)
    ap.add_argument("--test-sample", type=int, default=None,
                    help="test images of the seeded class-balanced sample (default all)")
    ap.add_argument("--backend", choices=["numpy", "tensorflow"], default=None,
                    help="Gram matmuls (default: tensorflow if a GPU is visible, else numpy)")
    return ap


def from_snakemake(smk) -> dict:
    return {"training": smk.input.training, "data": smk.input.data, "gram": smk.output.gram,
            "metrics": smk.output.metrics, "snapshots": list(smk.params.snapshots),
            **settings_from_kernels(smk.params.kernels)}


run_script(globals(), kernel_job, from_snakemake=from_snakemake, parser=parser, tensorflow=True)
