"""Training the study's networks with SGD and keeping weight snapshots (paper §2).

- :mod:`~afterkernel.training.settings`: how a network is trained, and the
  defaults (Keras' SGD: learning rate 0.01, batch 32);
- :mod:`~afterkernel.training.sgd`: :func:`train`, the loop: snapshots, the
  two ways to stop, divergence, determinism;
- :mod:`~afterkernel.training.evaluation`: the per-epoch history (loss and
  NN errors on the whole training and test sets);
- :mod:`~afterkernel.training.augmentation`: ImageDataGenerator's rotation
  and shift as the paper meant them;
- :mod:`~afterkernel.training.training_file`: the training HDF5 file, the
  weight-free reader of the tables, :func:`snapshot_reached`;
- :mod:`~afterkernel.training.checkpoint`: the state saved while training,
  from which a killed, requeued or retried job resumes with the same bits;
- :mod:`~afterkernel.training.job`: rule ``train``'s job.

TensorFlow and Keras are imported inside the functions: reading a training
file needs only h5py.
"""

from afterkernel.training.augmentation import affine_warp, augmentation_layer
from afterkernel.training.job import train_to_file
from afterkernel.training.settings import DEFAULTS, TrainingSettings
from afterkernel.training.sgd import train
from afterkernel.training.training_file import (
    TrainingRecord,
    TrainingResult,
    load_model,
    model_from_result,
    read_training,
    read_training_record,
    snapshot_reached,
    write_training,
)

__all__ = [
    "DEFAULTS",
    "TrainingRecord",
    "TrainingResult",
    "TrainingSettings",
    "affine_warp",
    "augmentation_layer",
    "load_model",
    "model_from_result",
    "read_training",
    "read_training_record",
    "snapshot_reached",
    "train",
    "train_to_file",
    "write_training",
]
