"""SGD training with weight snapshots (paper §2).

The networks are trained as in the paper (Keras' defaults,
:data:`~afterkernel.training.settings.DEFAULTS`): plain SGD without momentum,
the training set shuffled afresh every epoch, binary cross-entropy on the
single logit (``BinaryCrossentropy(from_logits=True)``).

Two ways to stop (recorded as the run's ``schedule`` attribute):

:data:`~afterkernel.vocabulary.STOP_AT_EPOCHS` (``"epochs"``)
    Train for ``max(snapshot_epochs)`` epochs and keep the weights at every
    epoch of ``snapshot_epochs`` (snapshot ``"e{epoch}"``; epoch 0 is the
    initialization, i.e. the kernel there is the FNTK).
:data:`~afterkernel.vocabulary.STOP_AT_LOSS_TARGET` (``"target"``)
    The learning-rate study: train until the loss on the whole training set
    is at most ``loss_target``, checked after *every* epoch (the original
    code checked after chunks of 10, 20, 40, ... epochs, which overshoots the
    target by up to a factor two in epochs), at most ``max_epochs`` epochs.
    Snapshots ``"e0"`` and ``"final"``; ``epochs_used`` and
    ``reached_target`` are recorded.

Divergence: after every epoch the weights and the training loss are checked;
if either is NaN or infinite the run stops with ``diverged=True`` and never
raises. The diverging epoch's weights are discarded: the ``final`` snapshot
(and, when stopping at epochs, every snapshot not reached yet) holds the
*last finite weights*, those at the end of the last healthy epoch, and its
``epoch`` (``snapshot_epochs[name]``) is the epoch those weights come from,
which may differ from the number in the snapshot's name. ``epochs_used``
counts the epochs trained, the diverging one included; ``diverged_at_epoch``
is that epoch (-1: no divergence). The snapshots before it are genuine and
keep their kernels and metrics (:func:`~afterkernel.training.snapshot_reached`).

Determinism: :func:`train` seeds everything from ``seed``: the initial weights
(``build_model(spec, shape, seed)`` calls ``keras.utils.set_random_seed``),
the per-epoch permutations (a NumPy generator of its own) and augmentation
(seeded Keras generators of its own); TensorFlow's op determinism is
switched on. So the same call gives bit-identical weights on CPU, within one
process (the state of an earlier training does not leak into the next) and
across processes, *for the same number of intra-op threads* on the same
machine and TensorFlow build: CPU kernels split their reductions by thread
count, so 1, 2 and 4 threads give three different (equally valid) results
(``attrs["intra_op_threads"]`` records it). Scripts should call
:func:`afterkernel.runtime.configure_tensorflow` first to size the thread
pools. With a ``checkpoint`` the run saves its state while training and
resumes from it after a kill, with the same bits
(:mod:`~afterkernel.training.checkpoint`). On a GPU op determinism makes TensorFlow pick deterministic kernels
(or raise for an op that has none); this was not verified here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from afterkernel.training.augmentation import augmentation_layer
from afterkernel.training.checkpoint import Checkpointer, TrainingState, fingerprint
from afterkernel.training.evaluation import Evaluator
from afterkernel.training.settings import DEFAULTS, TrainingSettings
from afterkernel.training.training_file import TrainingResult
from afterkernel.vocabulary import FINAL, STOP_AT_EPOCHS, STOP_AT_LOSS_TARGET, STOPS, snapshot_name

log = logging.getLogger(__name__)


def train(x_train, y_train, x_test, y_test, arch_spec: dict, seed: int, *,
          stop: str = DEFAULTS.stop, snapshot_epochs: Sequence[int] = DEFAULTS.snapshot_epochs,
          learning_rate: float = DEFAULTS.learning_rate, batch_size: int = DEFAULTS.batch_size,
          loss_target: float = DEFAULTS.loss_target, max_epochs: int = DEFAULTS.max_epochs,
          augmentation: dict | None = DEFAULTS.augmentation,
          architecture_name: str | None = None,
          checkpoint: str | os.PathLike | None = None) -> TrainingResult:
    """Train the network of ``arch_spec`` with SGD; see the module docstring.

    ``x_*`` float32 (n, H, W, C) in [0, 1], ``y_*`` in {0, 1}. ``stop``
    ``"epochs"`` trains ``max(snapshot_epochs)`` epochs (``max_epochs`` is
    ignored); ``"target"`` trains until the training loss is at most
    ``loss_target`` or ``max_epochs`` epochs have run (``snapshot_epochs`` is
    ignored). ``augmentation``: ``None`` or ``{"rotation_degrees": 15,
    "shift_pixels": 1}`` (optionally ``interpolation``, ``fill_mode``).
    ``attrs["reached_target"]`` is whether the last healthy training loss is
    at most ``loss_target``, whatever the stop. ``checkpoint``: a path where
    the run saves its state while training and from which it resumes, if the
    file there is this run's (:mod:`~afterkernel.training.checkpoint`); the
    result is the same bits as without it.
    """
    import tensorflow as tf

    from afterkernel.models import build_model

    settings = _resolved(stop, snapshot_epochs, learning_rate, batch_size, loss_target,
                         max_epochs, augmentation)
    x_train, y_train, x_test, y_test = _checked(x_train, y_train, x_test, y_test)
    input_shape = tuple(int(d) for d in x_train.shape[1:])
    seed, arch_spec = int(seed), dict(arch_spec)
    run = {"architecture": architecture_name or arch_spec.get("type"),
           "architecture_spec": arch_spec, "input_shape": list(input_shape), "seed": seed}

    # Determinism: op determinism on; build_model seeds Keras' generators.
    tf.config.experimental.enable_op_determinism()
    model = build_model(arch_spec, input_shape, seed)
    n_params = int(model.count_params())
    aug = None
    if settings.augmentation:
        aug = augmentation_layer(seed=seed, input_shape=input_shape, **settings.augmentation)
    sgd_epoch = _SGDEpoch(model, x_train, y_train, settings, aug, seed)
    evaluate = Evaluator(model, x_train, y_train, x_test, y_test)
    device = _device_name(tf)
    log.info("training %s (%s, %d params) on %s: %d train / %d test examples of %s, "
             "stop=%s, lr=%g, batch=%d, seed=%d, augmentation=%s",
             run["architecture"], json.dumps(arch_spec, sort_keys=True), n_params, device,
             len(x_train), len(x_test), input_shape, settings.stop, settings.learning_rate,
             settings.batch_size, seed, settings.augmentation or "none")

    checkpointer = None if checkpoint is None else Checkpointer(
        checkpoint, fingerprint(settings, run, (x_train, y_train, x_test, y_test)))
    progress = _run_epochs(model, sgd_epoch, evaluate, settings, checkpointer)
    history = evaluate.history()
    attrs = _run_attrs(run, settings, progress, n_params, len(x_train), len(x_test),
                       history["seconds"][1:], device)
    return TrainingResult(snapshots=progress.snapshots, snapshot_epochs=progress.snapshot_epochs,
                          history=history, attrs=attrs)


def _resolved(stop, snapshot_epochs, learning_rate, batch_size, loss_target, max_epochs,
              augmentation) -> TrainingSettings:
    """The settings a run uses: ``snapshot_epochs`` sorted (``(0,)`` when
    stopping at the loss target) and ``max_epochs`` the epochs to run
    (``max(snapshot_epochs)`` when stopping at epochs)."""
    if stop not in STOPS:
        raise ValueError(f"stop must be one of {STOPS}, got {stop!r}")
    if stop == STOP_AT_EPOCHS:
        wanted = sorted({int(e) for e in snapshot_epochs})
        if not wanted or wanted[0] < 0:
            raise ValueError(f"snapshot_epochs must be non-negative integers, got {snapshot_epochs!r}")
        n_epochs = wanted[-1]
    else:
        wanted = [0]
        n_epochs = int(max_epochs)
        if n_epochs < 0:
            raise ValueError(f"max_epochs must be >= 0, got {max_epochs!r}")
    return TrainingSettings(stop=stop, snapshot_epochs=tuple(wanted),
                            learning_rate=float(learning_rate), batch_size=int(batch_size),
                            loss_target=float(loss_target), max_epochs=n_epochs,
                            augmentation=dict(augmentation) if augmentation else None)


def _checked(x_train, y_train, x_test, y_test) -> tuple[np.ndarray, ...]:
    """x float32 (n, H, W, C), y float32 (n,)."""
    x_train = np.asarray(x_train, dtype=np.float32)
    x_test = np.asarray(x_test, dtype=np.float32)
    y_train = np.asarray(y_train).reshape(-1).astype(np.float32)
    y_test = np.asarray(y_test).reshape(-1).astype(np.float32)
    if x_train.ndim != 4 or len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError("x must be (n, H, W, C) and y (n,) with matching n")
    if len(x_train) == 0:
        raise ValueError("empty training set")
    return x_train, y_train, x_test, y_test


class _SGDEpoch:
    """``sgd_epoch()``: one epoch of minibatch SGD over a fresh permutation
    of the training set; returns the epoch's wall time in seconds."""

    def __init__(self, model, x_train: np.ndarray, y_train: np.ndarray,
                 settings: TrainingSettings, aug, seed: int):
        import keras
        import tensorflow as tf

        optimizer = keras.optimizers.SGD(learning_rate=settings.learning_rate)
        optimizer.build(model.trainable_variables)
        loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
        self._shuffle = np.random.default_rng(np.random.SeedSequence([seed, 0]))
        self._run = _compiled_epoch(model, optimizer, loss_fn, aug, settings.batch_size,
                                    x_train.shape[1:])
        self._tf, self._optimizer, self._aug = tf, optimizer, aug
        self._x = tf.constant(x_train)
        self._y = tf.constant(y_train.reshape(-1, 1))

    @property
    def variables(self) -> tuple[list, list]:
        """The optimizer's variables and the augmentation's seed-generator
        states: with the weights and :attr:`shuffle_state`, what the next
        epochs depend on."""
        seeds = [] if self._aug is None else [g.state for g in self._aug.seed_generators]
        return list(self._optimizer.variables), seeds

    @property
    def shuffle_state(self) -> dict:
        return self._shuffle.bit_generator.state

    def restore(self, optimizer: list[np.ndarray], seeds: list[np.ndarray], shuffle: dict) -> None:
        for variable, value in zip(sum(self.variables, []), [*optimizer, *seeds], strict=True):
            variable.assign(value)
        self._shuffle.bit_generator.state = shuffle

    def __call__(self) -> float:
        perm = self._shuffle.permutation(int(self._x.shape[0])).astype(np.int32)
        t0 = time.perf_counter()
        self._run(self._x, self._y, self._tf.constant(perm))
        return time.perf_counter() - t0


def _compiled_epoch(model, optimizer, loss_fn, aug, batch_size: int, image_shape):
    """The epoch ``run(x (n, H, W, C), y (n, 1), perm (n,))`` as one
    TensorFlow graph: the loop over batches runs inside TensorFlow, without
    a Python round trip per step."""
    import tensorflow as tf

    variables = model.trainable_variables

    @tf.function(input_signature=[tf.TensorSpec([None, *image_shape], tf.float32),
                                  tf.TensorSpec([None, 1], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def run(x, y, perm):
        n = tf.shape(perm)[0]
        steps = (n + batch_size - 1) // batch_size
        for i in tf.range(steps):
            idx = perm[i * batch_size:tf.minimum((i + 1) * batch_size, n)]
            xb = tf.gather(x, idx)
            yb = tf.gather(y, idx)
            if aug is not None:
                xb = aug(xb, training=True)
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, model(xb, training=True))
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables))

    return run


@dataclass
class _Progress:
    """The loop's state: the snapshots kept and the last healthy epoch."""

    last_epoch: int
    last_weights: list[np.ndarray]
    last_loss: float
    snapshots: dict[str, list[np.ndarray]] = field(default_factory=dict)
    snapshot_epochs: dict[str, int] = field(default_factory=dict)
    epochs_used: int = 0
    diverged: bool = False
    seconds: float = 0.0

    def keep(self, name: str, weights: list[np.ndarray], epoch: int) -> None:
        self.snapshots[name], self.snapshot_epochs[name] = weights, epoch

    def reached(self, loss_target: float) -> bool:
        return bool(math.isfinite(self.last_loss) and self.last_loss <= loss_target)


def _finite(loss: float, weights: list[np.ndarray]) -> bool:
    return math.isfinite(loss) and all(bool(np.all(np.isfinite(w))) for w in weights)


def _run_epochs(model, sgd_epoch: _SGDEpoch, evaluate: Evaluator, settings: TrainingSettings,
                checkpointer: Checkpointer | None = None) -> _Progress:
    """Epoch 0 (the initialization), or the checkpoint's epoch, then SGD
    epochs until the stop or a divergence; the snapshots and where the run
    stopped. A checkpoint is saved after healthy epochs when due."""
    state = checkpointer.load() if checkpointer else None
    p = _resumed(model, sgd_epoch, evaluate, state) if state else _initialized(model, evaluate)
    t_start = time.perf_counter() - p.seconds
    epoch = p.last_epoch
    while not p.diverged and epoch < settings.max_epochs:
        if settings.stop == STOP_AT_LOSS_TARGET and p.last_loss <= settings.loss_target:
            break
        epoch += 1
        seconds = sgd_epoch()
        p.epochs_used = epoch
        weights = model.get_weights()
        loss = evaluate(epoch, seconds)
        if not _finite(loss, weights):
            p.diverged = True
            log.warning("diverged at epoch %d (training loss %s); keeping the weights of epoch %d",
                        epoch, loss, p.last_epoch)
            break
        p.last_epoch, p.last_weights, p.last_loss = epoch, weights, loss
        if settings.stop == STOP_AT_EPOCHS and epoch in settings.snapshot_epochs:
            p.keep(snapshot_name(epoch), weights, epoch)
        if checkpointer and epoch < settings.max_epochs:
            p.seconds = time.perf_counter() - t_start
            checkpointer.save_if_due(lambda: _state(p, sgd_epoch, evaluate))
    _keep_last_weights(p, settings)
    p.seconds = time.perf_counter() - t_start
    return p


def _initialized(model, evaluate: Evaluator) -> _Progress:
    """The run at epoch 0: the initial weights, their loss, snapshot ``e0``."""
    weights = model.get_weights()
    p = _Progress(last_epoch=0, last_weights=weights, last_loss=evaluate(0, 0.0))
    p.keep(snapshot_name(0), weights, 0)
    p.diverged = not _finite(p.last_loss, weights)
    return p


def _state(p: _Progress, sgd_epoch: _SGDEpoch, evaluate: Evaluator) -> TrainingState:
    """The checkpoint of the run at its last (healthy) epoch."""
    optimizer, seeds = sgd_epoch.variables
    return TrainingState(epoch=p.last_epoch, loss=p.last_loss, seconds=p.seconds,
                         model=p.last_weights, optimizer=[np.asarray(v) for v in optimizer],
                         seeds=[np.asarray(v) for v in seeds], shuffle=sgd_epoch.shuffle_state,
                         snapshots=p.snapshots, snapshot_epochs=p.snapshot_epochs,
                         history=evaluate.history())


def _resumed(model, sgd_epoch: _SGDEpoch, evaluate: Evaluator, state: TrainingState) -> _Progress:
    """The run as the checkpoint ``state`` left it: weights, optimizer,
    random streams and history restored."""
    model.set_weights(state.model)
    sgd_epoch.restore(state.optimizer, state.seeds, state.shuffle)
    evaluate.restore(state.history)
    return _Progress(last_epoch=state.epoch, last_weights=state.model, last_loss=state.loss,
                     snapshots=dict(state.snapshots), snapshot_epochs=dict(state.snapshot_epochs),
                     epochs_used=state.epoch, seconds=state.seconds)


def _keep_last_weights(p: _Progress, settings: TrainingSettings) -> None:
    """The snapshots the loop did not reach (after a divergence) and
    ``final`` get the last finite weights; log how the run ended."""
    if settings.stop == STOP_AT_EPOCHS:
        for e in settings.snapshot_epochs:
            if snapshot_name(e) not in p.snapshots:
                p.keep(snapshot_name(e), p.last_weights, p.last_epoch)
    else:
        p.keep(FINAL, p.last_weights, p.last_epoch)
        log.info("%s the loss target %g after %d epoch(s)%s",
                 "reached" if p.reached(settings.loss_target) else "did not reach",
                 settings.loss_target, p.epochs_used, " (diverged)" if p.diverged else "")
    if p.diverged and p.epochs_used == 0:
        log.warning("the loss at initialization is not finite")


def _run_attrs(run: dict, settings: TrainingSettings, p: _Progress, n_params: int,
               n_train: int, n_test: int, epoch_seconds: np.ndarray, device: str) -> dict:
    """The training file's attrs: what was trained, how, how it ended, where."""
    import keras
    import tensorflow as tf

    return {
        "problem": None,
        **run,
        "learning_rate": settings.learning_rate,
        "batch_size": settings.batch_size,
        "augmentation": bool(settings.augmentation),
        "augmentation_spec": settings.augmentation,
        "schedule": settings.stop,
        "snapshot_epochs": list(settings.snapshot_epochs),
        "loss_target": settings.loss_target,
        "max_epochs": settings.max_epochs,
        "epochs_used": int(p.epochs_used),
        "reached_target": p.reached(settings.loss_target),
        "diverged": bool(p.diverged),
        "last_finite_epoch": int(p.last_epoch),
        "diverged_at_epoch": int(p.epochs_used) if p.diverged else -1,
        "n_params": n_params,
        "n_train": int(n_train),
        "n_test": int(n_test),
        "final_train_loss": float(p.last_loss),
        "seconds": float(p.seconds),
        "seconds_per_epoch": float(np.median(epoch_seconds)) if len(epoch_seconds) else float("nan"),
        "device": device,
        "intra_op_threads": int(tf.config.threading.get_intra_op_parallelism_threads()),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
    }


def _device_name(tf) -> str:
    gpus = tf.config.list_logical_devices("GPU")
    return f"GPU ({gpus[0].name})" if gpus else "CPU"
