"""The network on the whole training and test sets after each epoch: the
history of a run (paper §2).

One row per epoch from 0 (before training): ``train_loss`` (the mean
cross-entropy on the whole training set, model in inference mode, no
augmentation), ``train_error``, ``test_error`` (NN errors: class 1 is
predicted when the logit is > 0; the original code used Keras' "accuracy",
which thresholds the logit at 0.5, a small bias) and ``seconds`` (wall time
of the epoch's SGD steps).
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

EVAL_BATCH = 1024  # examples per forward pass when evaluating losses/errors
HISTORY = ("epoch", "train_loss", "train_error", "test_error", "seconds")


def bce_from_logits(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-example binary cross-entropy of logits ``z`` (n,), labels ``y``
    in {0, 1} (n,), in float64 and stable for large |z|."""
    z = z.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))


def nn_error(z: np.ndarray, y: np.ndarray) -> float:
    """The fraction of logits ``z`` (n,) on the wrong side of 0 for labels ``y``."""
    if len(y) == 0:
        return float("nan")
    return float(np.mean((z > 0) != (y > 0.5)))


class Evaluator:
    """Call ``evaluator(epoch, seconds)`` after each epoch: it appends a row
    to the history, logs it and returns the training loss."""

    def __init__(self, model, x_train: np.ndarray, y_train: np.ndarray,
                 x_test: np.ndarray, y_test: np.ndarray):
        import tensorflow as tf

        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test
        self.rows: dict[str, list] = {k: [] for k in HISTORY}
        self._tf = tf

        @tf.function(input_signature=[tf.TensorSpec([None, *x_train.shape[1:]], tf.float32)])
        def logits_of(x):
            return model(x, training=False)

        self._logits_of = logits_of

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The network's logits (n,) on ``x`` (n, H, W, C), in batches."""
        out = [self._logits_of(self._tf.constant(x[i:i + EVAL_BATCH])).numpy().reshape(-1)
               for i in range(0, len(x), EVAL_BATCH)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def __call__(self, epoch: int, seconds: float) -> float:
        z_train = self.logits(self.x_train)
        loss = float(np.mean(bce_from_logits(z_train, self.y_train)))
        train_error = nn_error(z_train, self.y_train)
        test_error = nn_error(self.logits(self.x_test), self.y_test)
        for k, v in zip(HISTORY, (epoch, loss, train_error, test_error, seconds)):
            self.rows[k].append(v)
        log.info("epoch %4d  loss %.6g  train error %.4f  test error %.4f  %.2f s",
                 epoch, loss, train_error, test_error, seconds)
        return loss

    def restore(self, history: dict[str, np.ndarray]) -> None:
        """Continue the ``history`` of a checkpoint (its rows replace these)."""
        self.rows = {k: list(np.asarray(history[k]).tolist()) for k in HISTORY}

    def history(self) -> dict[str, np.ndarray]:
        """The history: ``epoch`` int64, the others float64, each (epochs + 1,)."""
        return {k: np.asarray(v, np.int64 if k == "epoch" else np.float64)
                for k, v in self.rows.items()}
