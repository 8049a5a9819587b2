"""The study's words, spelled once: kernels, snapshots, schedules, labels.

Every module, rule and script that names a kernel, a snapshot or a run's
schedule takes the name from here, so a file written by one stage is read
under the same name by the next.

- Kernels (paper §2): the *after kernel* (the empirical NTK of the trained
  network, ``after``) and the *conjugate kernel* of its last hidden layer
  (``conjugate``, the features whose conjugate projection §3 compares).
- Snapshots: ``e{epoch}`` in the epochs schedule (``e0`` is the
  initialisation, whose after kernel is the FNTK), ``final`` for a run
  trained until its training loss reaches the target.
- A run's schedule: ``epochs`` (train at the config's learning rate, keep a
  snapshot at each requested epoch) or ``lr{rate}`` (train at ``rate`` until
  the loss target, keep ``final``). Training itself knows the two ways to
  stop as :data:`STOP_AT_EPOCHS` and :data:`STOP_AT_LOSS_TARGET`.
"""

from __future__ import annotations

import numpy as np

AFTER = "after"
CONJUGATE = "conjugate"
KERNELS = (AFTER, CONJUGATE)

FINAL = "final"

EPOCHS = "epochs"

STOP_AT_EPOCHS = "epochs"
STOP_AT_LOSS_TARGET = "target"
STOPS = (STOP_AT_EPOCHS, STOP_AT_LOSS_TARGET)

AUGMENTED = "augmented"
PLAIN = "plain"


def dataset_of(problem: str) -> str:
    """The data set a problem is drawn from: ``mnist-3v8`` -> ``mnist``."""
    return problem.split("-", 1)[0]


def snapshot_name(epoch: int) -> str:
    """The snapshot after ``epoch`` epochs of the epochs schedule."""
    return f"e{int(epoch)}"


def snapshot_epoch(snapshot: str) -> int | None:
    """The epoch of ``e{epoch}``; None for ``final``."""
    return None if snapshot == FINAL else int(snapshot[1:])


def snapshot_order(snapshot: str) -> int:
    """Sort key putting snapshots in training order (``final`` first: a run
    has either ``final`` or ``e*`` snapshots, never both)."""
    return -1 if snapshot == FINAL else int(snapshot[1:])


def lr_schedule(rate: float) -> str:
    """The schedule name of a run trained at ``rate`` until the loss target."""
    return f"lr{rate:g}"


def schedule_learning_rate(schedule: str) -> float | None:
    """The learning rate of an ``lr{rate}`` schedule; None for ``epochs``."""
    return None if schedule == EPOCHS else float(schedule[2:])


def augmentation_name(augmented: bool) -> str:
    return AUGMENTED if augmented else PLAIN


def signed_labels(y: np.ndarray) -> np.ndarray:
    """Labels in {0, 1} or {-1, +1} as float64 signs s = +-1 (1 / +1 -> +1),
    shape (n,)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {y.shape}")
    vals = np.unique(y)
    if not (set(vals.tolist()) <= {0, 1} or set(vals.tolist()) <= {-1, 1}):
        raise ValueError(f"labels must be in {{0, 1}} or {{-1, +1}}, got values {vals[:10]}")
    return np.where(y > 0, 1.0, -1.0)
