"""How one network is trained (paper §2): the one place of the defaults.

:func:`afterkernel.training.train`, the job of rule ``train`` and the
command line of ``scripts/train.py`` take their defaults from
:data:`DEFAULTS`. The workflow's own values come from the config (section
``training``) through :func:`afterkernel.plan.training_params`.
"""

from __future__ import annotations

from dataclasses import dataclass

from afterkernel.vocabulary import STOP_AT_EPOCHS


@dataclass(frozen=True)
class TrainingSettings:
    """SGD as Keras' defaults have it: learning rate 0.01, no momentum,
    batch size 32.

    ``stop``: :data:`~afterkernel.vocabulary.STOP_AT_EPOCHS` trains
    ``max(snapshot_epochs)`` epochs and keeps a snapshot at each of
    ``snapshot_epochs``; :data:`~afterkernel.vocabulary.STOP_AT_LOSS_TARGET`
    trains until the training loss is at most ``loss_target``, at most
    ``max_epochs`` epochs. ``augmentation``: ``None`` or the keyword
    arguments of :func:`~afterkernel.training.augmentation_layer`
    (``{"rotation_degrees": 15, "shift_pixels": 1}``).
    """

    stop: str = STOP_AT_EPOCHS
    snapshot_epochs: tuple[int, ...] = (0, 1, 3)
    learning_rate: float = 0.01
    batch_size: int = 32
    loss_target: float = 0.01
    max_epochs: int = 200
    augmentation: dict | None = None


DEFAULTS = TrainingSettings()
