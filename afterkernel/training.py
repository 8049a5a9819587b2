"""SGD training with weight snapshots (paper §2).

The networks are trained as in the paper (Keras' defaults): plain SGD with
learning rate 0.01 and no momentum, batch size 32, the training set shuffled
afresh every epoch, binary cross-entropy on the single logit
(``BinaryCrossentropy(from_logits=True)``).

Two schedules:

``"epochs"``
    Train for ``max(snapshot_epochs)`` epochs and keep the weights at every
    epoch of ``snapshot_epochs`` (snapshot ``"e{epoch}"``; epoch 0 is the
    initialization, i.e. the kernel there is the FNTK).
``"target"``
    The learning-rate study: train until the loss on the whole training set
    is at most ``loss_target``, checked after *every* epoch (the original
    code checked after chunks of 10, 20, 40, ... epochs, which overshoots the
    target by up to a factor two in epochs), at most ``max_epochs`` epochs.
    Snapshots ``"e0"`` and ``"final"``; ``epochs_used`` and
    ``reached_target`` are recorded.

Divergence: after every epoch the weights and the training loss are checked;
if either is NaN or infinite the run stops with ``diverged=True`` and never
raises. The diverging epoch's weights are discarded: the ``final`` snapshot
(and, in the epochs schedule, every snapshot not reached yet) holds the
*last finite weights*, those at the end of the last healthy epoch, and its
``epoch`` (``snapshot_epochs[name]``) is the epoch those weights come from,
which may differ from the number in the snapshot's name. ``epochs_used``
counts the epochs trained, the diverging one included.

History, one row per epoch from 0 (before training): ``train_loss`` (the mean
cross-entropy on the whole training set, model in inference mode, no
augmentation), ``train_error``, ``test_error`` (NN errors: class 1 is
predicted when the logit is > 0; the original code used Keras' "accuracy",
which thresholds the logit at 0.5, a small bias) and ``seconds`` (wall time
of the epoch's SGD steps).

Augmentation (``augmentation={"rotation_degrees": 15, "shift_pixels": 1}``)
applies Keras' ``RandomRotation`` and ``RandomTranslation`` to the training
batches only; see :func:`augmentation_layer`.

Determinism: :func:`train` seeds everything from ``seed``: the initial weights
(``build_model(spec, shape, seed)`` calls ``keras.utils.set_random_seed``),
the per-epoch permutations (a NumPy generator of its own) and augmentation
(layers with their own seeded generators); TensorFlow's op determinism is
switched on. So the same call gives bit-identical weights on CPU, within one
process (the state of an earlier training does not leak into the next) and
across processes, *for the same number of intra-op threads* on the same
machine and TensorFlow build: CPU kernels split their reductions by thread
count, so 1, 2 and 4 threads give three different (equally valid) results
(``attrs["intra_op_threads"]`` records it). Scripts should call
:func:`afterkernel.runtime.configure_tensorflow` first to size the thread
pools. On a GPU op determinism makes TensorFlow pick deterministic kernels
(or raise for an op that has none); this was not verified here.

TensorFlow and Keras are imported inside the functions: reading a training
file (:func:`read_training`) needs only h5py.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

SCHEDULES = ("epochs", "target")
EVAL_BATCH = 1024  # examples per forward pass when evaluating losses/errors


@dataclass
class TrainingResult:
    """Snapshots of the weights, per-epoch history and attributes of a run."""

    snapshots: dict[str, list[np.ndarray]]  # "e0", "e1", ... or "e0", "final"
    snapshot_epochs: dict[str, int]
    history: dict[str, np.ndarray]  # epoch, train_loss, train_error, test_error, seconds
    attrs: dict = field(default_factory=dict)


# --------------------------------------------------------------------------
# augmentation


def augmentation_layer(rotation_degrees: float = 15.0, shift_pixels: int = 1, seed: int = 0,
                       input_shape: Sequence[int] | None = None, *,
                       interpolation: str = "nearest", fill_mode: str = "constant",
                       fill_value: float = 0.0):
    """The training augmentation: a random rotation of up to
    ±``rotation_degrees`` about the image centre, then a random shift by an
    integer number of pixels in {-``shift_pixels``, ..., ``shift_pixels``},
    drawn uniformly and independently for each axis and each image.

    Built from Keras' ``RandomRotation`` and ``RandomTranslation`` (seeded
    with ``seed``; active only when called with ``training=True``).

    - ``RandomTranslation`` takes *fractions* of the height/width: a shift
      factor of ``(k + 0.5) / H`` draws a real shift uniform in
      [-(k+0.5), k+0.5] pixels, which nearest-neighbour resampling rounds to
      an integer in {-k, ..., k}, each with probability 1/(2k+1); that is
      exactly the integer-shift semantics ImageDataGenerator documents. The
      original code passed ``width_shift_range=1`` (an int) to
      ImageDataGenerator, which draws shifts from ``range(1) = {0}``: its
      augmentation never shifted. Here ``shift_pixels=1`` really shifts by
      up to one pixel each way (the paper's intent).
    - Interpolation ``"nearest"`` keeps shifts exact (no blur) and the pixel
      values unchanged, and matches the perturbations with which invariance
      is measured (nearest, zero fill). The original's ImageDataGenerator
      rotated with bilinear interpolation.
    - Fill ``"constant"`` with 0: MNIST digits sit on a black background, so
      this equals the original's edge replication (``fill_mode="nearest"``)
      there; on CIFAR it gives black corners rather than smeared edges, the
      same fill as the invariance perturbations.

    ``input_shape`` (H, W, C) fixes H and W for the shift fractions; without
    it 28×28 is assumed. Returns a ``keras.Sequential`` of the two layers
    (either may be omitted when its amount is 0).
    """
    import keras

    h, w = (28, 28) if input_shape is None else (int(input_shape[0]), int(input_shape[1]))
    seed = int(seed)
    layers = []
    if rotation_degrees:
        layers.append(keras.layers.RandomRotation(
            factor=float(rotation_degrees) / 360.0, fill_mode=fill_mode,
            interpolation=interpolation, fill_value=fill_value,
            seed=_derived_seed(seed, 1), name="random_rotation"))
    if shift_pixels:
        k = int(shift_pixels)
        if k != shift_pixels or k < 0:
            raise ValueError(f"shift_pixels must be a non-negative integer, got {shift_pixels!r}")
        layers.append(keras.layers.RandomTranslation(
            height_factor=(k + 0.5) / h, width_factor=(k + 0.5) / w,
            fill_mode=fill_mode, interpolation="nearest", fill_value=fill_value,
            seed=_derived_seed(seed, 2), name="random_translation"))
    return keras.Sequential(layers, name="augmentation")


def _derived_seed(seed: int, stream: int) -> int:
    """An independent 31-bit seed for the random stream ``stream`` of ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(1)[0] & 0x7FFFFFFF)


# --------------------------------------------------------------------------
# training


def _bce_from_logits(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-example binary cross-entropy of logits ``z`` (float64, stable)."""
    z = z.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))


def _errors(z: np.ndarray, y: np.ndarray) -> float:
    if len(y) == 0:
        return float("nan")
    return float(np.mean((z > 0) != (y > 0.5)))


def _all_finite(weights: list[np.ndarray]) -> bool:
    return all(bool(np.all(np.isfinite(w))) for w in weights)


def train(x_train, y_train, x_test, y_test, arch_spec: dict, seed: int, *,
          schedule: str = "epochs", snapshot_epochs: Sequence[int] = (0, 1, 3),
          learning_rate: float = 0.01, batch_size: int = 32, loss_target: float = 0.01,
          max_epochs: int = 200, augmentation: dict | None = None,
          architecture_name: str | None = None) -> TrainingResult:
    """Train the network of ``arch_spec`` with SGD; see the module docstring.

    ``x_*`` float32 (n, H, W, C) in [0, 1], ``y_*`` in {0, 1}. ``schedule``
    ``"epochs"`` trains ``max(snapshot_epochs)`` epochs (``max_epochs`` is
    ignored); ``"target"`` trains until the training loss is at most
    ``loss_target`` or ``max_epochs`` epochs have run (``snapshot_epochs`` is
    ignored). ``augmentation``: ``None`` or ``{"rotation_degrees": 15,
    "shift_pixels": 1}`` (optionally ``interpolation``, ``fill_mode``).
    ``attrs["reached_target"]`` is whether the last healthy training loss is
    at most ``loss_target``, in both schedules.
    """
    import keras
    import tensorflow as tf

    from afterkernel.models import build_model

    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    x_train = np.asarray(x_train, dtype=np.float32)
    x_test = np.asarray(x_test, dtype=np.float32)
    y_train = np.asarray(y_train).reshape(-1).astype(np.float32)
    y_test = np.asarray(y_test).reshape(-1).astype(np.float32)
    if x_train.ndim != 4 or len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError("x must be (n, H, W, C) and y (n,) with matching n")
    if len(x_train) == 0:
        raise ValueError("empty training set")
    input_shape = tuple(int(d) for d in x_train.shape[1:])
    seed = int(seed)
    batch_size = int(batch_size)
    learning_rate = float(learning_rate)

    if schedule == "epochs":
        wanted = sorted({int(e) for e in snapshot_epochs})
        if not wanted or wanted[0] < 0:
            raise ValueError(f"snapshot_epochs must be non-negative integers, got {snapshot_epochs!r}")
        n_epochs = wanted[-1]
    else:
        wanted = [0]
        n_epochs = int(max_epochs)
        if n_epochs < 0:
            raise ValueError(f"max_epochs must be >= 0, got {max_epochs!r}")

    # Determinism: op determinism on; build_model seeds Keras' generators.
    tf.config.experimental.enable_op_determinism()
    model = build_model(arch_spec, input_shape, seed)
    n_params = int(model.count_params())
    aug = None
    if augmentation:
        aug_kw = dict(augmentation)
        aug = augmentation_layer(aug_kw.pop("rotation_degrees", 15.0), aug_kw.pop("shift_pixels", 1),
                                 seed, input_shape, **aug_kw)
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
    shuffle_rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))

    h, w, c = input_shape
    xs = tf.TensorSpec([None, h, w, c], tf.float32)
    variables = model.trainable_variables

    @tf.function(input_signature=[xs, tf.TensorSpec([None, 1], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def run_epoch(x, y, perm):
        # One graph per epoch: the loop over batches runs inside TensorFlow,
        # without a Python round trip per step.
        n = tf.shape(perm)[0]
        steps = (n + batch_size - 1) // batch_size
        total = tf.constant(0.0, tf.float32)
        for i in tf.range(steps):
            idx = perm[i * batch_size:tf.minimum((i + 1) * batch_size, n)]
            xb = tf.gather(x, idx)
            yb = tf.gather(y, idx)
            if aug is not None:
                xb = aug(xb, training=True)
            with tf.GradientTape() as tape:
                logits = model(xb, training=True)
                loss = loss_fn(yb, logits)
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables))
            total += loss
        return total / tf.cast(steps, tf.float32)

    @tf.function(input_signature=[xs])
    def logits_of(x):
        return model(x, training=False)

    def predict(x: np.ndarray) -> np.ndarray:
        out = [logits_of(tf.constant(x[i:i + EVAL_BATCH])).numpy().reshape(-1)
               for i in range(0, len(x), EVAL_BATCH)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    x_tf = tf.constant(x_train)
    y_tf = tf.constant(y_train.reshape(-1, 1))
    device = _device_name(tf)
    log.info("training %s (%s, %d params) on %s: %d train / %d test examples of %s, "
             "schedule=%s, lr=%g, batch=%d, seed=%d, augmentation=%s",
             architecture_name or arch_spec.get("type"), json.dumps(arch_spec, sort_keys=True),
             n_params, device, len(x_train), len(x_test), input_shape, schedule,
             learning_rate, batch_size, seed, augmentation or "none")

    history = {k: [] for k in ("epoch", "train_loss", "train_error", "test_error", "seconds")}

    def evaluate(epoch: int, seconds: float) -> float:
        z_tr = predict(x_train)
        loss = float(np.mean(_bce_from_logits(z_tr, y_train)))
        tr_err = _errors(z_tr, y_train)
        te_err = _errors(predict(x_test), y_test)
        for k, v in zip(history, (epoch, loss, tr_err, te_err, seconds)):
            history[k].append(v)
        log.info("epoch %4d  loss %.6g  train error %.4f  test error %.4f  %.2f s",
                 epoch, loss, tr_err, te_err, seconds)
        return loss

    snapshots: dict[str, list[np.ndarray]] = {}
    snap_epochs: dict[str, int] = {}
    weights = model.get_weights()
    loss = evaluate(0, 0.0)
    snapshots["e0"], snap_epochs["e0"] = weights, 0
    last_good = (0, weights, loss)  # (epoch, weights, loss) of the last healthy epoch
    diverged = not (math.isfinite(loss) and _all_finite(weights))
    epochs_used = 0
    t_start = time.perf_counter()
    epoch = 0
    while not diverged and epoch < n_epochs:
        if schedule == "target" and last_good[2] <= loss_target:
            break
        epoch += 1
        perm = shuffle_rng.permutation(len(x_train)).astype(np.int32)
        t0 = time.perf_counter()
        run_epoch(x_tf, y_tf, tf.constant(perm))
        seconds = time.perf_counter() - t0
        epochs_used = epoch
        weights = model.get_weights()
        loss = evaluate(epoch, seconds)
        if not (math.isfinite(loss) and _all_finite(weights)):
            diverged = True
            log.warning("diverged at epoch %d (training loss %s); keeping the weights of epoch %d",
                        epoch, loss, last_good[0])
            break
        last_good = (epoch, weights, loss)
        if schedule == "epochs" and epoch in wanted:
            snapshots[f"e{epoch}"], snap_epochs[f"e{epoch}"] = weights, epoch

    if schedule == "epochs":
        for e in wanted:  # snapshots not reached because of divergence
            if f"e{e}" not in snapshots:
                snapshots[f"e{e}"], snap_epochs[f"e{e}"] = last_good[1], last_good[0]
    else:
        snapshots["final"], snap_epochs["final"] = last_good[1], last_good[0]
    reached = bool(math.isfinite(last_good[2]) and last_good[2] <= loss_target)
    total_seconds = time.perf_counter() - t_start
    train_seconds = [s for s in history["seconds"][1:]]
    if schedule == "target":
        log.info("%s the loss target %g after %d epoch(s)%s", "reached" if reached else "did not reach",
                 loss_target, epochs_used, " (diverged)" if diverged else "")
    if diverged and epochs_used == 0:
        log.warning("the loss at initialization is not finite")

    attrs = {
        "problem": None,
        "architecture": architecture_name or arch_spec.get("type"),
        "architecture_spec": dict(arch_spec),
        "input_shape": list(input_shape),
        "seed": seed,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "augmentation": bool(augmentation),
        "augmentation_spec": dict(augmentation) if augmentation else None,
        "schedule": schedule,
        "snapshot_epochs": wanted if schedule == "epochs" else [0],
        "loss_target": float(loss_target),
        "max_epochs": int(n_epochs),
        "epochs_used": int(epochs_used),
        "reached_target": reached,
        "diverged": bool(diverged),
        "last_finite_epoch": int(last_good[0]),
        "n_params": n_params,
        "n_train": int(len(x_train)),
        "n_test": int(len(x_test)),
        "final_train_loss": float(last_good[2]),
        "seconds": float(total_seconds),
        "seconds_per_epoch": float(np.median(train_seconds)) if train_seconds else float("nan"),
        "device": device,
        "intra_op_threads": int(tf.config.threading.get_intra_op_parallelism_threads()),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
    }
    hist = {
        "epoch": np.asarray(history["epoch"], np.int64),
        **{k: np.asarray(history[k], np.float64) for k in ("train_loss", "train_error", "test_error", "seconds")},
    }
    return TrainingResult(snapshots=snapshots, snapshot_epochs=snap_epochs, history=hist, attrs=attrs)


def _device_name(tf) -> str:
    gpus = tf.config.list_logical_devices("GPU")
    return f"GPU ({gpus[0].name})" if gpus else "CPU"


# --------------------------------------------------------------------------
# files


def write_training(path, result: TrainingResult) -> None:
    """Write ``result`` to the training HDF5 file ``path`` (schema in
    docs/design.md), atomically."""
    from afterkernel.io import atomic_h5, set_attrs

    with atomic_h5(path) as f:
        snaps = f.create_group("snapshots")
        for name, weights in result.snapshots.items():
            g = snaps.create_group(name)
            g.attrs["epoch"] = int(result.snapshot_epochs[name])
            for i, w in enumerate(weights):
                g.create_dataset(f"w{i:03d}", data=np.asarray(w))
        hist = f.create_group("history")
        for key, values in result.history.items():
            hist.create_dataset(key, data=np.asarray(values))
        attrs = {k: v for k, v in result.attrs.items() if k != "code_version"}
        set_attrs(f, attrs)


def read_training(path) -> TrainingResult:
    """Read a training file written by :func:`write_training`. Snapshots
    come in order of epoch (``final`` after ``e0``)."""
    import h5py

    from afterkernel.io import get_attrs

    with h5py.File(path, "r") as f:
        items = []
        for name, g in f["snapshots"].items():
            weights = [g[k][()] for k in sorted(g.keys())]
            items.append((int(g.attrs["epoch"]), name == "final", name, weights))
        items.sort(key=lambda t: (t[1], t[0], t[2]))
        history = {k: v[()] for k, v in f["history"].items()}
        attrs = get_attrs(f)
    return TrainingResult(snapshots={n: w for _, _, n, w in items},
                          snapshot_epochs={n: e for e, _, n, _ in items},
                          history=history, attrs=attrs)


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
