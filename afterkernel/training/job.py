"""The job of rule ``train``: a problem file to a training file."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from afterkernel.training.checkpoint import checkpoint_path
from afterkernel.training.settings import DEFAULTS
from afterkernel.training.sgd import train
from afterkernel.training.training_file import write_training

log = logging.getLogger(__name__)


def train_to_file(data: str | os.PathLike, out: str | os.PathLike, *, arch_spec: Mapping[str, Any],
                  seed: int, arch_name: str | None = None, stop: str = DEFAULTS.stop,
                  snapshot_epochs: Sequence[int] = DEFAULTS.snapshot_epochs,
                  learning_rate: float = DEFAULTS.learning_rate,
                  batch_size: int = DEFAULTS.batch_size, loss_target: float = DEFAULTS.loss_target,
                  max_epochs: int = DEFAULTS.max_epochs,
                  augmentation: Mapping[str, Any] | None = DEFAULTS.augmentation) -> dict[str, Any]:
    """Train on the problem file ``data`` (:func:`afterkernel.data.read_problem`)
    with :func:`afterkernel.training.train` and write the training file
    ``out``; returns the file's attrs. TensorFlow should have been configured
    with :func:`afterkernel.runtime.configure_tensorflow` (``scripts/train.py``
    does it); otherwise TensorFlow's defaults apply.

    While training, the state is saved to :func:`checkpoint_path` ``(out)``;
    a job started again (a retry, a requeue, a re-run after a kill) resumes
    from it with the same final bits; it is removed once ``out`` is written."""
    from afterkernel.data import read_problem

    problem = read_problem(data)
    name = problem.attrs.get("problem", Path(data).stem)
    log.info("problem %s from %s: train %s, test %s", name, data, problem.x_train.shape,
             problem.x_test.shape)
    t0 = time.perf_counter()
    result = train(problem.x_train, problem.y_train, problem.x_test, problem.y_test,
                   arch_spec, seed, stop=stop, snapshot_epochs=tuple(snapshot_epochs or (0,)),
                   learning_rate=learning_rate, batch_size=batch_size, loss_target=loss_target,
                   max_epochs=max_epochs, augmentation=augmentation, architecture_name=arch_name,
                   checkpoint=checkpoint_path(out))
    result.attrs["problem"] = name
    write_training(out, result)
    checkpoint_path(out).unlink(missing_ok=True)
    a = result.attrs
    log.info("wrote %s: %d epoch(s) in %.1f s (median %.2f s/epoch on %s), snapshots %s, "
             "final training loss %.4g, reached_target=%s, diverged=%s", out, a["epochs_used"],
             time.perf_counter() - t0, a["seconds_per_epoch"], a["device"],
             result.snapshot_epochs, a["final_train_loss"], a["reached_target"], a["diverged"])
    return a
