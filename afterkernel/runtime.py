"""TensorFlow runtime set-up shared by every script: threads, seeds, devices."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def configure_tensorflow(threads: int = 1, seed: int | None = None):
    """Import TensorFlow with its thread pools sized to ``threads``.

    Must run before TensorFlow executes any op (pools are fixed after that).
    With a ``seed`` the Python, NumPy and TensorFlow generators are seeded and
    op determinism is switched on, so one seed gives identical numbers on CPU.
    Returns the ``tensorflow`` module.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    threads = max(1, int(threads))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:
        # Pools already initialised by an earlier call in this process.
        pass
    if seed is not None:
        import keras

        keras.utils.set_random_seed(int(seed))
        tf.config.experimental.enable_op_determinism()
    gpus = tf.config.list_physical_devices("GPU")
    log.info("TensorFlow %s, %d thread(s), %s", tf.__version__, threads,
             f"GPU: {[g.name for g in gpus]}" if gpus else "CPU only")
    return tf


def visible_gpu_count() -> int:
    """NVIDIA GPUs this process may use, without TensorFlow or a subprocess
    (the workflow asks at every parse): one ``/proc/driver/nvidia/gpus``
    entry per GPU, limited by ``CUDA_VISIBLE_DEVICES`` when it is set."""
    from pathlib import Path

    gpus = Path("/proc/driver/nvidia/gpus")
    present = len(list(gpus.iterdir())) if gpus.is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return present
    ids = [v for v in visible.split(",") if v.strip() and not v.strip().startswith("-")]
    return min(present, len(ids))


def setup_logging(logfile=None) -> None:
    """Log to stderr and, when given, to ``logfile`` (a rule's ``log:``)."""
    from pathlib import Path

    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
