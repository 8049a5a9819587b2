"""Rule ``svm``: the hard-margin SVM of one kernel of one snapshot (paper §2).

Reads one snapshot of the run's Gram file (``{snapshot}/{kernel}/train``,
``{snapshot}/{kernel}/test_train``, ``y_train``, ``y_test``), solves the max-margin problem without bias with the
configured solver (``afterkernel.maxmargin``), and writes the SVM file: test
and training error, margin, dual bound, relative gap, iterations, the
converged and separable flags, and the decision values on the test set.
A diverged training run (snapshot attr ``diverged``) gives NaN results
flagged ``diverged`` instead of an error. Run by Snakemake or by hand::

    python scripts/svm.py --gram seed0.gram.h5 --snapshot e3 --kernel after --out e3.after.h5
"""

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, Mapping

_REPO = Path(__file__).resolve().parents[1]
if (_REPO / "afterkernel" / "__init__.py").is_file() and str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from afterkernel import maxmargin  # noqa: E402
from afterkernel.io import atomic_h5, get_attrs, set_attrs  # noqa: E402
from afterkernel.runtime import setup_logging  # noqa: E402

log = logging.getLogger("svm")


def main(gram: str | Path, out: str | Path, snapshot: str, kernel: str,
         svm: Mapping[str, Any]) -> dict[str, Any]:
    """Solve the max-margin SVM for ``kernel`` (``after`` or ``conjugate``) of
    ``snapshot`` in the Gram file ``gram`` with the config's ``svm`` settings;
    write ``out``."""
    with h5py.File(gram, "r") as f:
        if f"{snapshot}/{kernel}" not in f:
            raise ValueError(f"{gram} has no {snapshot}/{kernel} Gram matrices")
        group = f[snapshot]
        root = get_attrs(group)
        K = group[f"{kernel}/train"][...]
        K_test = group[f"{kernel}/test_train"][...]
        y_train, y_test = f["y_train"][...], f["y_test"][...]
    attrs: dict[str, Any] = {"kernel": kernel, "solver": svm["solver"], "snapshot": snapshot,
                             "diverged": bool(root.get("diverged", False))}
    if attrs["diverged"]:
        log.warning("training diverged: no kernel, writing NaN results")
        nan = float("nan")
        attrs.update(test_error=nan, train_error=nan, margin=nan, upper_bound=nan, gap=nan,
                     iterations=0, converged=False, separable=False, status="diverged", seconds=0.0)
        decision = np.full(len(y_test), np.nan)
    else:
        start = time.perf_counter()
        result = maxmargin.solve(K, y_train, solver=svm["solver"], tol=svm["tolerance"],
                                 max_iter=svm["max_iterations"])
        seconds = time.perf_counter() - start
        decision = maxmargin.decision_function(K_test, y_train, result.coef)
        train_decision = maxmargin.decision_function(K, y_train, result.coef)
        attrs.update(
            test_error=maxmargin.error_rate(decision, y_test),
            train_error=maxmargin.error_rate(train_decision, y_train),
            margin=result.margin, upper_bound=result.upper_bound, gap=result.gap,
            iterations=result.iterations, converged=result.converged, separable=result.separable,
            status=result.status, n_support=result.n_support, seconds=seconds,
        )
        log.info("%s kernel, n=%d: %s after %d iterations (%.2f s): margin %.6g, bound %.6g, "
                 "gap %.2e, separable %s; train error %.4f, test error %.4f",
                 kernel, len(y_train), result.status, result.iterations, seconds, result.margin,
                 result.upper_bound, result.gap, result.separable, attrs["train_error"],
                 attrs["test_error"])
    with atomic_h5(out) as f:
        set_attrs(f, attrs)
        f.create_dataset("decision_test", data=decision)
    return attrs


if "snakemake" in globals():  # run by Snakemake's script: directive
    smk = snakemake  # type: ignore[name-defined]  # noqa: F821
    setup_logging(smk.log[0])
    try:
        main(smk.input.gram, smk.output[0], smk.params.snapshot, smk.params.kernel, smk.params.svm)
    except Exception:
        log.exception("svm failed")
        raise
elif __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Max-margin SVM of one kernel of a Gram file.")
    ap.add_argument("--gram", required=True)
    ap.add_argument("--snapshot", required=True, help='e.g. "e3" or "final"')
    ap.add_argument("--kernel", choices=["after", "conjugate"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--solver", choices=["exact", "alg1"], default="exact")
    ap.add_argument("--tolerance", type=float, default=None)
    ap.add_argument("--max-iterations", type=int, default=None)
    args = ap.parse_args()
    setup_logging()
    main(args.gram, args.out, args.snapshot, args.kernel,
         {"solver": args.solver, "tolerance": args.tolerance, "max_iterations": args.max_iterations})
