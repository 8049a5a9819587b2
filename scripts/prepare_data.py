"""Rule ``prepare_data``: load one problem and write ``results/data/{problem}.h5``.

Run by Snakemake (``script:`` directive), which provides ``snakemake.output[0]``,
``snakemake.params.problem``, ``snakemake.params.data`` (the config's ``data``
mapping: ``source, dir, max_train_per_class, max_test_per_class``) and
``snakemake.log[0]``; or by hand::

    python scripts/prepare_data.py --problem mnist-3v8 --out x.h5 --source embedded
"""

# No `from __future__ import ...` here: Snakemake prepends a preamble to the
# script, and such imports must be the first statement of a file.
import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Mapping

# Snakemake runs a copy of this file but sets __file__ to the real path: make
# the repository's package importable when it is not installed.
_REPO = Path(__file__).resolve().parents[1]
if (_REPO / "afterkernel" / "__init__.py").is_file() and str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from afterkernel.runtime import setup_logging  # noqa: E402

from afterkernel.data import load_problem, write_problem  # noqa: E402

log = logging.getLogger("prepare_data")


def main(
    problem: str,
    out: str | Path,
    source: str = "embedded",
    directory: str | Path | None = None,
    max_train_per_class: int | None = None,
    max_test_per_class: int | None = None,
) -> dict[str, Any]:
    """Load ``problem`` from ``source`` and write it to ``out``; return the file's attrs."""
    log.info("problem %s: loading from source %r%s", problem, source,
             f" (dir {directory})" if source == "dir" else "")
    data = load_problem(problem, source=source, directory=directory,
                        max_train_per_class=max_train_per_class,
                        max_test_per_class=max_test_per_class)
    a = data.attrs
    log.info("classes %s (%s -> label 0, %s -> label 1)", a["classes"], *a["class_names"])
    log.info("train: %d images %s, counts per label %s", a["n_train"],
             data.x_train.shape, a["train_counts"])
    log.info("test: %d images %s, counts per label %s", a["n_test"],
             data.x_test.shape, a["test_counts"])
    log.info("source files %s, sha256 %s", a["source_files"], a["source_sha256"])
    if a["jpeg_derived"]:
        log.warning("the CIFAR-10 pixels are decoded from JPEG (not the true CIFAR-10): "
                    "numbers computed on them must say so")
    write_problem(out, data)
    log.info("wrote %s", out)
    return a


def run_from_config(problem: str, out: str | Path, data_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`main` with the config's ``data`` mapping."""
    cfg = dict(data_cfg or {})
    return main(
        problem,
        out,
        source=cfg.get("source", "embedded"),
        directory=cfg.get("dir"),
        max_train_per_class=cfg.get("max_train_per_class"),
        max_test_per_class=cfg.get("max_test_per_class"),
    )


def _from_snakemake(smk: Any) -> None:
    setup_logging(smk.log[0] if len(smk.log) else None)
    try:
        run_from_config(smk.params.problem, smk.output[0], smk.params.data)
    except Exception:
        log.exception("prepare_data failed")
        raise


def _cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the problem HDF5 file of one problem.")
    ap.add_argument("--problem", required=True, help="e.g. mnist-3v8, cifar10-cat-dog")
    ap.add_argument("--out", required=True, type=Path, help="output .h5 file")
    ap.add_argument("--source", default="embedded", choices=["embedded", "dir", "keras"])
    ap.add_argument("--dir", dest="directory", default=None,
                    help="data folder for --source dir (config key data.dir)")
    ap.add_argument("--max-train-per-class", type=int, default=None)
    ap.add_argument("--max-test-per-class", type=int, default=None)
    ap.add_argument("--log", default=None, help="also log to this file")
    args = ap.parse_args(argv)
    setup_logging(args.log)
    from afterkernel.data import DataError

    try:
        main(args.problem, args.out, args.source, args.directory,
             args.max_train_per_class, args.max_test_per_class)
    except (DataError, ValueError) as e:
        log.error("%s", e)
        return 2
    return 0


if __name__ == "__main__" or "snakemake" in globals():  # run by Snakemake's script: directive
    if "snakemake" in globals():
        _from_snakemake(snakemake)  # type: ignore[name-defined]  # noqa: F821
    else:
        sys.exit(_cli())
