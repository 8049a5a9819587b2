"""Rule ``prepare_data``: load one problem and write ``results/data/{problem}{subset}.h5``
(:func:`afterkernel.data.prepare_problem_file`).

Snakemake gives ``output[0]``, ``params.problem``, ``params.data``
(``source, dir`` of the config's ``data`` mapping and ``max_train_per_class,
max_test_per_class, subset_seed`` read from the file's subset tag,
``afterkernel.data.planning.prepare_params``) and ``params.dataset`` (the
problem's data set spec, ``afterkernel.data.planning.problem_spec``); or by hand::

    python scripts/prepare_data.py --problem mnist-3v8 --out y.h5 --max-train-per-class 1000 --subset-seed 0
    python scripts/prepare_data.py --problem own-0v1 --out y.h5 --dataset '{"source": "npz", "path": "own.npz"}'
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's package

from afterkernel.data import DEFAULT_SOURCE, SOURCES, prepare_problem_file  # noqa: E402
from afterkernel.entry import run_script  # noqa: E402

# config key of the `data` mapping -> keyword of prepare_problem_file
CONFIG_KEYS = {"source": "source", "dir": "directory",
               "max_train_per_class": "max_train_per_class",
               "max_test_per_class": "max_test_per_class",
               "subset_seed": "subset_seed"}


def from_snakemake(smk) -> dict:
    data = smk.params.data or {}
    kwargs = {"problem": smk.params.problem, "out": smk.output[0], "dataset": getattr(smk.params, "dataset", None),
              **{arg: data[key] for key, arg in CONFIG_KEYS.items() if key in data}}
    fetched = getattr(smk.input, "fetched", None)  # data.source keras: rule fetch_data's file
    if fetched:
        kwargs["directory"] = str(Path(fetched).parent)
    return kwargs


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="Write the problem HDF5 file of one problem.")
    ap.add_argument("--problem", required=True, help="e.g. mnist-3v8, cifar10-cat-dog")
    ap.add_argument("--out", required=True, type=Path, help="output .h5 file")
    ap.add_argument("--source", default=DEFAULT_SOURCE, choices=SOURCES)
    ap.add_argument("--dir", dest="directory", default=None,
                    help="data folder for --source dir (config key data.dir)")
    ap.add_argument("--dataset", type=json.loads, default=None,
                    help='a data set spec as JSON (config key datasets.NAME), e.g. '
                         '\'{"source": "npz", "path": "own.npz"}\' for problem own-0v1')
    ap.add_argument("--max-train-per-class", type=int, default=None,
                    help="N training images per class, a seeded draw (default: all)")
    ap.add_argument("--max-test-per-class", type=int, default=None,
                    help="N test images per class, a seeded draw (default: all)")
    ap.add_argument("--subset-seed", type=int, default=None,
                    help="seed of the per-class draws (config key data.subset_seed; default 0)")
    return ap


run_script(globals(), prepare_problem_file, from_snakemake=from_snakemake, parser=parser)
