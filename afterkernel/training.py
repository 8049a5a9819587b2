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
counts the epochs trained, the diverging one included; ``diverged_at_epoch``
is that epoch (-1: no divergence). The snapshots before it are genuine and
keep their kernels and metrics (:func:`snapshot_reached`).

History, one row per epoch from 0 (before training): ``train_loss`` (the mean
cross-entropy on the whole training set, model in inference mode, no
augmentation), ``train_error``, ``test_error`` (NN errors: class 1 is
predicted when the logit is > 0; the original code used Keras' "accuracy",
which thresholds the logit at 0.5, a small bias) and ``seconds`` (wall time
of the epoch's SGD steps).

Augmentation (``augmentation={"rotation_degrees": 15, "shift_pixels": 1}``),
on the training batches only, is ImageDataGenerator's rotation and shift as
the paper meant it: per image one affine map, a rotation of up to ±15° about
the centre composed with a shift of -1, 0 or 1 pixels along each axis,
bilinear interpolation, edge fill; the original code's
``width_shift_range=1`` never shifted. See :func:`augmentation_layer`.

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
                       interpolation: str = "bilinear", fill_mode: str = "nearest",
                       fill_value: float = 0.0):
    """The training augmentation of ``ImageDataGenerator(rotation_range=15,
    width_shift_range=1, height_shift_range=1)`` as the paper meant it.

    Per image: an angle uniform in ±``rotation_degrees`` and a shift drawn
    uniformly from the integers {-``shift_pixels``, ..., ``shift_pixels``},
    independently for rows and columns; then one affine map, the rotation
    about the centre composed with the shift (:func:`affine_warp`).

    As in the original code: one resampling per image, bilinear
    interpolation, edge replication (``fill_mode="nearest"``). Unlike it:
    real shifts; its integer ``width_shift_range=1`` drew them from
    ``range(1) = {0}`` and never shifted. (The invariance perturbations of
    :mod:`afterkernel.transforms` use nearest and zero fill instead.)

    Returns a callable ``aug(images, training=...)``, the identity unless
    ``training`` is true, seeded by ``seed`` (angles and shifts from
    independent streams). ``input_shape`` (H, W, C), if given, is checked
    against the images.
    """
    try:
        k = int(shift_pixels)
    except (TypeError, ValueError, OverflowError):
        k = -1
    if k != shift_pixels or k < 0:
        raise ValueError(f"shift_pixels must be a non-negative integer, got {shift_pixels!r}")
    degrees = float(rotation_degrees)
    if not 0.0 <= degrees < math.inf:
        raise ValueError(f"rotation_degrees must be finite and >= 0, got {rotation_degrees!r}")
    size = None if input_shape is None else (int(input_shape[0]), int(input_shape[1]))
    return _RandomAffine(degrees, k, int(seed), size,
                         dict(interpolation=interpolation, fill_mode=fill_mode, fill_value=fill_value))


class _RandomAffine:
    """The callable of :func:`augmentation_layer`."""

    def __init__(self, rotation_degrees: float, shift_pixels: int, seed: int,
                 size: tuple[int, int] | None, warp_kw: dict):
        import keras

        self.rotation_degrees, self.shift_pixels, self.size, self.warp_kw = (
            rotation_degrees, shift_pixels, size, warp_kw)
        # Keras' generators keep their state in a variable, so successive
        # batches inside one tf.function get fresh draws.
        self.angle_seed = keras.random.SeedGenerator(_derived_seed(seed, 1))
        self.shift_seed = keras.random.SeedGenerator(_derived_seed(seed, 2))

    def sample(self, n):
        """``n`` angles (degrees) and (n, 2) integer (row, column) shifts."""
        import keras

        r, k = self.rotation_degrees, self.shift_pixels
        angles = keras.random.uniform((n,), -r, r, dtype="float32", seed=self.angle_seed)
        shifts = keras.random.randint((n, 2), -k, k + 1, dtype="int32", seed=self.shift_seed)
        return angles, shifts

    def __call__(self, images, training=False):
        if not training:
            return images
        import keras

        images = keras.ops.convert_to_tensor(images)
        if self.size is not None and tuple(images.shape[1:3]) != self.size:
            raise ValueError(f"images of shape {tuple(images.shape)}, expected {self.size} pixels")
        angles, shifts = self.sample(keras.ops.shape(images)[0])
        return affine_warp(images, angles, shifts, **self.warp_kw)


def affine_warp(images, angles, shifts, *, interpolation: str = "bilinear",
                fill_mode: str = "nearest", fill_value: float = 0.0):
    """Warp each image of ``images`` (n, H, W, C) by one affine map, as
    keras-preprocessing's ``apply_affine_transform(x, theta, tx, ty)``: the
    output pixel p = (row, column) takes the input at o + R(θ)(p - o + t),
    o = ((H-1)/2, (W-1)/2) the centre, θ = ``angles`` (n,) in degrees, t =
    ``shifts`` (n, 2) = (tx, ty) in pixels along (rows, columns)."""
    import keras

    ops = keras.ops
    images = ops.convert_to_tensor(images)
    oy, ox = (images.shape[1] - 1) / 2.0, (images.shape[2] - 1) / 2.0
    theta = ops.deg2rad(ops.cast(angles, "float32"))
    c, s = ops.cos(theta), ops.sin(theta)
    shifts = ops.cast(shifts, "float32")
    dy, dx = shifts[:, 0] - oy, shifts[:, 1] - ox
    zeros = ops.zeros_like(c)
    # keras.ops.image.affine_transform maps output (x, y) = (column, row) to
    # input coordinates; R acts on (row, column) as in ImageDataGenerator.
    transform = ops.stack([c, s, ox + s * dy + c * dx,
                           -s, c, oy + c * dy - s * dx, zeros, zeros], axis=1)
    return ops.image.affine_transform(images, transform, interpolation=interpolation,
                                      fill_mode=fill_mode, fill_value=fill_value,
                                      data_format="channels_last")


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
        "diverged_at_epoch": int(epochs_used) if diverged else -1,
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
