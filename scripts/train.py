"""Rule ``train``: train one network and write its training file
``results/training/{problem}/{arch}/{aug}/{schedule}/seed{seed}.h5``.

Run by Snakemake (``script:`` directive), which provides
``snakemake.input.data`` (the problem HDF5 file), ``snakemake.output[0]``,
``snakemake.log[0]``, ``snakemake.threads`` and ``snakemake.params``:
``arch_name``, ``seed`` and the training settings ``arch_spec, schedule,
snapshot_epochs, learning_rate, batch_size, loss_target, max_epochs,
augmentation`` (``None`` or ``{"rotation_degrees", "shift_pixels"}``),
either as params of their own or gathered in one ``params.training`` mapping.
Or by hand::

    python scripts/train.py --data results/data/mnist-3v8.h5 --out run.h5 \\
        --arch-spec '{"type": "fc"}' --seed 0 --snapshot-epochs 0 1 3

TensorFlow is configured (threads, seed, determinism) before anything else
imports it; a GPU is used when TensorFlow sees one (default placement).
"""

# No `from __future__ import ...` here: Snakemake prepends a preamble to the
# script, and such imports must be the first statement of a file.
import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Mapping

# Snakemake runs a copy of this file but sets __file__ to the real path: make
# the repository's package importable when it is not installed.
_REPO = Path(__file__).resolve().parents[1]
if (_REPO / "afterkernel" / "__init__.py").is_file() and str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from afterkernel.runtime import setup_logging  # noqa: E402

log = logging.getLogger("train")

TRAINING_KEYS = ("arch_spec", "schedule", "snapshot_epochs", "learning_rate", "batch_size",
                 "loss_target", "max_epochs", "augmentation")


def main(data: str | Path, out: str | Path, *, arch_spec: Mapping[str, Any], seed: int,
         arch_name: str | None = None, schedule: str = "epochs", snapshot_epochs=(0, 1, 3),
         learning_rate: float = 0.01, batch_size: int = 32, loss_target: float = 0.01,
         max_epochs: int = 200, augmentation: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Train on the problem file ``data`` and write the training file ``out``;
    returns the file's attrs. TensorFlow should have been configured with
    :func:`afterkernel.runtime.configure_tensorflow` (``_from_snakemake`` and
    the command line do it); otherwise TensorFlow's defaults apply."""
    from afterkernel.data import read_problem
    from afterkernel.training import train, write_training

    problem = read_problem(data)
    name = problem.attrs.get("problem", Path(data).stem)
    log.info("problem %s from %s: train %s, test %s", name, data, problem.x_train.shape,
             problem.x_test.shape)
    t0 = time.perf_counter()
    result = train(problem.x_train, problem.y_train, problem.x_test, problem.y_test,
                   dict(arch_spec), int(seed), schedule=schedule,
                   snapshot_epochs=tuple(snapshot_epochs or (0,)), learning_rate=float(learning_rate),
                   batch_size=int(batch_size), loss_target=float(loss_target),
                   max_epochs=int(max_epochs), augmentation=dict(augmentation) if augmentation else None,
                   architecture_name=arch_name)
    result.attrs["problem"] = name
    write_training(out, result)
    a = result.attrs
    log.info("wrote %s: %d epoch(s) in %.1f s (median %.2f s/epoch on %s), snapshots %s, "
             "final training loss %.4g, reached_target=%s, diverged=%s", out, a["epochs_used"],
             time.perf_counter() - t0, a["seconds_per_epoch"], a["device"],
             result.snapshot_epochs, a["final_train_loss"], a["reached_target"], a["diverged"])
    return a


def settings_from_params(params: Any) -> dict[str, Any]:
    """The keyword arguments of :func:`main` from Snakemake's ``params``:
    flat (``params.arch_spec``, ...) or grouped (``params.training``)."""
    def get(key, default=None):
        try:
            return getattr(params, key)
        except AttributeError:
            return default

    settings = dict(get("training") or {})
    for key in TRAINING_KEYS:
        value = get(key)
        if value is not None:
            settings[key] = value
    if "arch_spec" not in settings:
        raise ValueError("params must give arch_spec (directly or in params.training)")
    settings["arch_name"] = get("arch_name")
    settings["seed"] = int(get("seed"))
    return settings


def _from_snakemake(smk: Any) -> None:
    setup_logging(smk.log[0] if len(smk.log) else None)
    try:
        settings = settings_from_params(smk.params)
        from afterkernel.runtime import configure_tensorflow

        configure_tensorflow(smk.threads, settings["seed"])
        main(smk.input.data, smk.output[0], **settings)
    except Exception:
        log.exception("train failed")
        raise


def _cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train one network and write its training file.")
    ap.add_argument("--data", required=True, type=Path, help="problem .h5 file (rule prepare_data)")
    ap.add_argument("--out", required=True, type=Path, help="output training .h5 file")
    ap.add_argument("--arch-spec", required=True, type=json.loads,
                    help='architecture spec as JSON, e.g. \'{"type": "vgg", "widths": [26, 52]}\'')
    ap.add_argument("--arch-name", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--schedule", choices=["epochs", "target"], default="epochs")
    ap.add_argument("--snapshot-epochs", type=int, nargs="+", default=[0, 1, 3])
    ap.add_argument("--learning-rate", type=float, default=0.01)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--loss-target", type=float, default=0.01)
    ap.add_argument("--max-epochs", type=int, default=200)
    ap.add_argument("--augmentation", type=json.loads, default=None,
                    help='e.g. \'{"rotation_degrees": 15, "shift_pixels": 1}\'')
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log", default=None, help="also log to this file")
    args = ap.parse_args(argv)
    setup_logging(args.log)
    from afterkernel.runtime import configure_tensorflow

    configure_tensorflow(args.threads, args.seed)
    try:
        main(args.data, args.out, arch_spec=args.arch_spec, seed=args.seed, arch_name=args.arch_name,
             schedule=args.schedule, snapshot_epochs=args.snapshot_epochs,
             learning_rate=args.learning_rate, batch_size=args.batch_size,
             loss_target=args.loss_target, max_epochs=args.max_epochs,
             augmentation=args.augmentation)
    except Exception:
        log.exception("train failed")
        return 1
    return 0


if __name__ == "__main__" or "snakemake" in globals():  # run by Snakemake's script: directive
    if "snakemake" in globals():
        _from_snakemake(snakemake)  # type: ignore[name-defined]  # noqa: F821
    else:
        sys.exit(_cli())
