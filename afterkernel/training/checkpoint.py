"""The training checkpoint: where a killed, requeued or retried training
resumes, with the same bits as an uninterrupted run.

Beside the training file ``out`` the hidden file
``.{out.name}.checkpoint.h5`` (:func:`checkpoint_path`) holds the state at the
end of the last saved epoch: the model's weights, the SGD optimizer's
variables (``iterations``, learning rate), the states of the random streams
(the NumPy generator of the data order, the Keras seed generators of the
augmentation), the snapshots kept so far and the history. Restoring these
continues the run exactly where it stopped: every later draw and every later
update is the one the uninterrupted run makes (for the same thread count and
TensorFlow build, which the fingerprint holds).

It is written atomically (:mod:`afterkernel.io`) after a healthy epoch once
the time since the last write is at least ``1 / MAX_OVERHEAD`` times what
that write took: writing costs at most about 5 % of the training time, and a
network whose epochs take seconds is saved after every epoch.

A checkpoint is used only by the run that wrote it: its ``fingerprint``
hashes the settings, the run (architecture, input shape, seed), the training
and test arrays, the thread count, the TensorFlow and Keras versions and the
code of the training package (:func:`afterkernel.codehash.script_code_hash`);
any other is ignored, and overwritten at the next save. It is not a rule
output: Snakemake deletes a job's outputs before re-running it, not other
files, so it survives a kill, ``scancel`` or a retry;
:func:`~afterkernel.training.train_to_file` removes it once the training file
is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from afterkernel.training.settings import TrainingSettings
from afterkernel.training.training_file import (read_tables, read_weights, write_tables,
                                                 write_weights)

log = logging.getLogger(__name__)

MAX_OVERHEAD = 0.05  # the largest fraction of the training time spent writing checkpoints
STATE_GROUPS = ("model", "optimizer", "seeds")


def checkpoint_path(out: str | os.PathLike) -> Path:
    """The checkpoint of the training file ``out``: hidden, beside it."""
    out = Path(out)
    return out.with_name(f".{out.name}.checkpoint.h5")


@dataclass
class TrainingState:
    """A run at the end of epoch ``epoch`` (a healthy one).

    ``model``: ``model.get_weights()``; ``optimizer``: the values of
    ``optimizer.variables``; ``seeds``: the augmentation's seed-generator
    states (empty without augmentation); ``shuffle``: the data-order NumPy
    generator's ``bit_generator.state``; ``loss``: the training loss at
    ``epoch``; ``seconds``: the training time so far.
    """

    epoch: int
    loss: float
    seconds: float
    model: list[np.ndarray]
    optimizer: list[np.ndarray]
    seeds: list[np.ndarray]
    shuffle: dict
    snapshots: dict[str, list[np.ndarray]]
    snapshot_epochs: dict[str, int]
    history: dict[str, np.ndarray]


def fingerprint(settings: TrainingSettings, run: dict, arrays) -> str:
    """The identity of a run (see the module docstring): SHA-256 hex."""
    import keras
    import tensorflow as tf

    from afterkernel.codehash import script_code_hash

    package = Path(__file__).resolve().parents[1]
    what = [asdict(settings), run, tf.__version__, keras.__version__,
            tf.config.threading.get_intra_op_parallelism_threads(),
            script_code_hash(Path(__file__).with_name("__init__.py"), package)]
    h = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode())
    for a in arrays:
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class Checkpointer:
    """Loads and saves the checkpoint ``path`` of the run ``fingerprint``."""

    def __init__(self, path: str | os.PathLike, fingerprint: str):
        self.path, self.fingerprint = Path(path), fingerprint
        self._last_write = time.perf_counter()
        self._write_seconds = 0.0

    def load(self) -> TrainingState | None:
        """The stored state of this run, or ``None`` (no checkpoint, or one
        of another run: logged and ignored)."""
        import h5py

        if not self.path.is_file():
            return None
        try:
            with h5py.File(self.path, "r") as f:
                if f.attrs.get("fingerprint") != self.fingerprint:
                    log.warning("ignoring the checkpoint %s: written by another run", self.path)
                    return None
                tables = read_tables(f)
                state = TrainingState(
                    epoch=int(f.attrs["epoch"]), loss=float(f.attrs["loss"]),
                    seconds=float(f.attrs["seconds"]), shuffle=json.loads(f.attrs["shuffle"]),
                    snapshots=tables.snapshots, snapshot_epochs=tables.snapshot_epochs,
                    history=tables.history, **{k: read_weights(f[k]) for k in STATE_GROUPS})
        except (OSError, KeyError, ValueError) as e:
            log.warning("ignoring the unreadable checkpoint %s: %s", self.path, e)
            return None
        log.info("resuming from epoch %d (checkpoint %s)", state.epoch, self.path)
        return state

    def save_if_due(self, state_of) -> None:
        """Save ``state_of()`` unless the last write was too recent (see the
        module docstring)."""
        now = time.perf_counter()
        if (now - self._last_write) * MAX_OVERHEAD < self._write_seconds:
            return
        self.save(state_of())
        self._last_write = time.perf_counter()
        self._write_seconds = self._last_write - now

    def save(self, state: TrainingState) -> None:
        from afterkernel.io import atomic_h5

        with atomic_h5(self.path) as f:
            write_tables(f, state.snapshots, state.snapshot_epochs, state.history)
            for key in STATE_GROUPS:
                write_weights(f.create_group(key), getattr(state, key))
            f.attrs.update(fingerprint=self.fingerprint, epoch=state.epoch, loss=state.loss,
                           seconds=state.seconds, shuffle=json.dumps(state.shuffle))
