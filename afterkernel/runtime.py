"""TensorFlow runtime set-up shared by every script: threads, seeds, devices.

GPUs: the workflow asks at parse time, without TensorFlow and without a
subprocess, whether TensorFlow jobs can use a GPU (:func:`tensorflow_gpus`);
each such job then claims one GPU of its host for itself
(:func:`claim_gpu`), so a multi-GPU workstation runs one TensorFlow job per
GPU. On a GPU, memory grows as needed and TF32 is off: Ampere and newer GPUs
would otherwise run float32 matmuls and convolutions in TF32 (~1e-3 relative
error in Grams, cosines and margins). The GPU path is not measured on this
project's CPU-only machines; its CPU side is tested.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: where each GPU's lock file lives (one job per GPU per host)
GPU_LOCK_DIR = Path(os.environ.get("AFTERKERNEL_GPU_LOCKS", "/tmp"))
_claimed: list = []  # open lock files: a GPU stays claimed while the job runs


def configure_tensorflow(threads: int = 1, seed: int | None = None):
    """Import TensorFlow with its thread pools sized to ``threads``.

    Must run before TensorFlow executes any op (pools are fixed after that).
    With a ``seed`` the Python, NumPy and TensorFlow generators are seeded and
    op determinism is switched on, so one seed gives identical numbers on CPU.
    Claims a GPU when there is one (:func:`claim_gpu`). Returns the
    ``tensorflow`` module.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    claim_gpu()
    import tensorflow as tf

    threads = max(1, int(threads))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:
        # Pools already initialised by an earlier call in this process.
        pass
    tf.config.experimental.enable_tensor_float_32_execution(False)
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the device is initialised already
            pass
    if seed is not None:
        import keras

        keras.utils.set_random_seed(int(seed))
        tf.config.experimental.enable_op_determinism()
    log.info("TensorFlow %s, %d thread(s), %s", tf.__version__, threads,
             f"GPU: {[g.name for g in gpus]}" if gpus else "CPU only")
    return tf


def visible_gpu_count() -> int:
    """NVIDIA GPUs this process may use, without TensorFlow or a subprocess
    (the workflow asks at every parse): one ``/proc/driver/nvidia/gpus``
    entry per GPU, limited by ``CUDA_VISIBLE_DEVICES`` when it is set."""
    gpus = Path("/proc/driver/nvidia/gpus")
    present = len(list(gpus.iterdir())) if gpus.is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return present
    ids = [v for v in visible.split(",") if v.strip() and not v.strip().startswith("-")]
    return min(present, len(ids))


def tensorflow_gpu_build() -> bool:
    """Whether the installed TensorFlow can run on a GPU: the ``tensorflow``
    distribution (the ``gpu`` extra), not ``tensorflow-cpu`` alone."""
    from importlib import metadata

    try:
        metadata.distribution("tensorflow")
    except metadata.PackageNotFoundError:
        return False
    return True


def tensorflow_gpus() -> int:
    """GPUs the TensorFlow jobs of this host can use (0 with a CPU build)."""
    return visible_gpu_count() if tensorflow_gpu_build() else 0


def claim_gpu(count: int | None = None) -> int | None:
    """Claim one free GPU of this host for this process, before TensorFlow is
    imported: the first of ``count`` (default :func:`tensorflow_gpus`) whose
    lock file no other process holds; ``CUDA_VISIBLE_DEVICES`` then names it
    alone. Returns its index, or None (no GPU, or all taken: then TensorFlow
    runs on the CPU, and the log says so)."""
    import fcntl

    count = tensorflow_gpus() if count is None else count
    if count == 0 or _claimed:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",")] if visible else [str(i) for i in range(count)]
    for device in ids[:count]:
        lock = open(GPU_LOCK_DIR / f"afterkernel-gpu{device}.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _claimed.append(lock)
        os.environ["CUDA_VISIBLE_DEVICES"] = device
        log.info("claimed GPU %s", device)
        return int(device) if device.isdigit() else None
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # hide the GPUs others hold
    log.warning("all %d GPU(s) of this host are taken: running on the CPU", count)
    return None


def setup_logging(logfile=None) -> None:
    """Log to stderr and, when given, to ``logfile`` (a rule's ``log:``)."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
