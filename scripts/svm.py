"""Rule ``svm``: the hard-margin SVM of one kernel of one snapshot (paper §2),
from the run's Gram file to the SVM file
(:func:`afterkernel.maxmargin.job.write_svm`; NaN results for a diverged run).

Snakemake passes ``input.gram``, ``output[0]``, ``params.snapshot``,
``params.kernel``, ``params.svm`` (the config's ``svm`` settings) and ``log``.
By hand::

    python scripts/svm.py --gram seed0.gram.h5 --snapshot e3 --kernel after --out e3.after.h5
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's package

from afterkernel.entry import run_script  # noqa: E402
from afterkernel.maxmargin import SOLVERS  # noqa: E402
from afterkernel.maxmargin.job import write_svm  # noqa: E402
from afterkernel.vocabulary import KERNELS  # noqa: E402


def from_snakemake(smk):
    return dict(gram=smk.input.gram, out=smk.output[0], snapshot=smk.params.snapshot,
                kernel=smk.params.kernel, svm=smk.params.svm)


def parser():
    ap = argparse.ArgumentParser(description="Max-margin SVM of one kernel of a Gram file.")
    ap.add_argument("--gram", required=True)
    ap.add_argument("--snapshot", required=True, help='e.g. "e3" or "final"')
    ap.add_argument("--kernel", choices=KERNELS, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--solver", choices=SOLVERS, default="exact")
    ap.add_argument("--tolerance", type=float, default=None)
    ap.add_argument("--max-iterations", type=int, default=None)
    return ap


def from_args(args):
    return dict(gram=args.gram, out=args.out, snapshot=args.snapshot, kernel=args.kernel,
                svm={"solver": args.solver, "tolerance": args.tolerance, "max_iterations": args.max_iterations})


run_script(globals(), write_svm, from_snakemake=from_snakemake, parser=parser, from_args=from_args)
