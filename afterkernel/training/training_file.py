"""The training file ``results/training/{run}.h5`` (schema in docs/design.md).

- group ``snapshots/{name}`` per snapshot (``e{epoch}``, ``final``): the
  weights as datasets ``w000``, ``w001``, ... (Keras' ``get_weights`` order)
  and the attribute ``epoch``, the epoch the weights come from;
- group ``history``: one row per epoch from 0, datasets ``epoch``,
  ``train_loss``, ``train_error``, ``test_error``, ``seconds``;
- the run's attrs (:func:`afterkernel.training.train`).

Reading needs only h5py; :func:`model_from_result` and :func:`load_model`
import Keras.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from afterkernel.vocabulary import FINAL


@dataclass
class TrainingResult:
    """Snapshots of the weights, per-epoch history and attributes of a run."""

    snapshots: dict[str, list[np.ndarray]]  # "e0", "e1", ... or "e0", "final"
    snapshot_epochs: dict[str, int]
    history: dict[str, np.ndarray]  # epoch, train_loss, train_error, test_error, seconds
    attrs: dict = field(default_factory=dict)


@dataclass
class TrainingRecord:
    """A training file without its weights: what the tables read."""

    snapshot_epochs: dict[str, int]  # in order of epoch, "final" after "e0"
    history: dict[str, np.ndarray]
    attrs: dict


def write_training(path, result: TrainingResult) -> None:
    """Write ``result`` to the training HDF5 file ``path``, atomically."""
    from afterkernel.io import atomic_h5, set_attrs

    with atomic_h5(path) as f:
        write_tables(f, result.snapshots, result.snapshot_epochs, result.history)
        attrs = {k: v for k, v in result.attrs.items() if k != "code_version"}
        set_attrs(f, attrs)


def write_tables(f, snapshots: dict[str, list[np.ndarray]], snapshot_epochs: dict[str, int],
                 history: dict[str, np.ndarray]) -> None:
    """The groups ``snapshots`` and ``history`` of an open HDF5 file ``f``
    (the training file, and the checkpoint of :mod:`~afterkernel.training.checkpoint`)."""
    snaps = f.create_group("snapshots")
    for name, weights in snapshots.items():
        write_weights(snaps.create_group(name), weights)
        snaps[name].attrs["epoch"] = int(snapshot_epochs[name])
    hist = f.create_group("history")
    for key, values in history.items():
        hist.create_dataset(key, data=np.asarray(values))


def write_weights(group, arrays) -> None:
    """``arrays`` as the datasets ``w000``, ``w001``, ... of ``group``."""
    for i, w in enumerate(arrays):
        group.create_dataset(f"w{i:03d}", data=np.asarray(w))


def read_weights(group) -> list[np.ndarray]:
    """The arrays :func:`write_weights` wrote, in order."""
    return [group[k][()] for k in sorted(group.keys())]


def _open(path):
    import h5py

    if not Path(path).is_file():
        raise FileNotFoundError(f"training file {path} does not exist")
    return h5py.File(path, "r")


def _record(f) -> TrainingRecord:
    from afterkernel.io import get_attrs

    epochs = {name: int(g.attrs["epoch"]) for name, g in f["snapshots"].items()}
    order = sorted(epochs, key=lambda name: (name == FINAL, epochs[name], name))
    return TrainingRecord(snapshot_epochs={name: epochs[name] for name in order},
                          history={k: v[()] for k, v in f["history"].items()},
                          attrs=get_attrs(f))


def read_training_record(path) -> TrainingRecord:
    """The snapshot epochs, history and attrs of the training file ``path``,
    without reading the weights."""
    with _open(path) as f:
        return _record(f)


def read_training(path) -> TrainingResult:
    """Read a training file written by :func:`write_training`. Snapshots
    come in order of epoch (``final`` after ``e0``)."""
    with _open(path) as f:
        return read_tables(f)


def read_tables(f) -> TrainingResult:
    """The snapshots, history and attrs of an open file that
    :func:`write_tables` wrote."""
    record = _record(f)
    group = f["snapshots"]
    snapshots = {name: read_weights(group[name]) for name in record.snapshot_epochs}
    return TrainingResult(snapshots=snapshots, snapshot_epochs=record.snapshot_epochs,
                          history=record.history, attrs=record.attrs)


def snapshot_reached(attrs: dict, snapshot_epochs: dict[str, int], snapshot: str) -> bool:
    """Whether ``snapshot`` holds weights the training genuinely reached: always
    unless the run diverged; then the epochs-schedule snapshots before the
    divergence (their ``epoch`` equals the number in their name) are kept,
    and the later ones, which repeat the last finite weights, and ``final``
    (the loss target was not reached) are not."""
    if not bool(attrs.get("diverged", False)):
        return True
    name = str(snapshot)
    if not (name.startswith("e") and name[1:].isdigit()):
        return False
    wanted = int(name[1:])
    if snapshot in snapshot_epochs:
        return int(snapshot_epochs[snapshot]) == wanted
    last = attrs.get("last_finite_epoch")
    return last is not None and not isinstance(last, str) and wanted <= int(last)


def model_from_result(result: TrainingResult, snapshot: str):
    """The Keras model of ``result`` with the weights of ``snapshot``."""
    from afterkernel.models import build_model

    if snapshot not in result.snapshots:
        raise KeyError(f"no snapshot {snapshot!r}; available: {list(result.snapshots)}")
    spec = result.attrs["architecture_spec"]
    if isinstance(spec, str):
        spec = json.loads(spec)
    model = build_model(spec, tuple(result.attrs["input_shape"]))
    model.set_weights(result.snapshots[snapshot])
    return model


def load_model(path, snapshot: str):
    """Rebuild the network of the training file ``path`` (from its
    ``architecture_spec`` and ``input_shape`` attributes) with the weights of
    ``snapshot`` (``"e0"``, ``"e3"``, ``"final"``, ...)."""
    return model_from_result(read_training(path), snapshot)
