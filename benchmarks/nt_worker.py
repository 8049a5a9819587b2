"""neural-tangents side of ``bench_neural_tangents.py``; runs INSIDE the JAX venv.

Do not import this from the project: it needs ``benchmarks/requirements-nt.txt``
(neural-tangents 0.6.5, jax/jaxlib 0.4.25, numpy 1.26), which cannot share the
project's environment. ``bench_neural_tangents.py`` calls it as::

    benchmarks/.nt-venv/bin/python benchmarks/nt_worker.py --npz case.npz --out result.json \
        [--impl JACOBIAN_CONTRACTION ...] [--repeats 3] [--threads 2]

``case.npz`` holds ``x`` (n, H, W, C) float32, ``arch`` ("fc" | "vgg"),
``widths`` and the Keras weights ``w000, w001, ...`` in ``model.get_weights()``
order (Dense kernels (in, out), Conv2D kernels HWIO, then biases). The network is
rebuilt with ``jax.example_libraries.stax`` (neural_tangents.stax has no MaxPool)
in NHWC / HWIO layout, so Flatten gives the same order as Keras' Flatten.

For each implementation the full n x n empirical NTK Gram
``nt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=0, implementation=I)`` is
computed under ``jax.jit``: the first call (compilation + one run) is timed
separately, then ``--repeats`` calls are timed (more for sub-second cases, up to
``--min-seconds`` in all; stopping early once a case has used ``--max-seconds``). The Gram of the last call is saved as ``<out>.<impl>.npy``
(float32) for the agreement check in the project's process. The JSON result
holds versions, per-implementation seconds (all runs), compile seconds and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import traceback

from _common import pin_threads


def _limit_threads(threads: int) -> None:
    """Pin this process to ``threads`` CPUs and size XLA's pools; before importing jax."""
    pin_threads(threads)
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}").strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"


def build_network(arch: str, widths, weights):
    """(apply_fn, params) of the stax network equal to the Keras model."""
    import jax.numpy as jnp
    from jax.example_libraries import stax

    layers = []
    if arch == "fc":
        layers.append(stax.Flatten)
        for w in widths:
            layers += [stax.Dense(int(w)), stax.Relu]
    elif arch == "vgg":
        for w in widths:
            for _ in range(2):
                # stax.Conv is GeneralConv with ("NHWC", "HWIO", "NHWC"): Keras' layout.
                layers += [stax.Conv(int(w), (3, 3), strides=(1, 1), padding="SAME"), stax.Relu]
            # spec=None: pooling over the middle axes of an N...C input (NHWC).
            layers.append(stax.MaxPool((2, 2), strides=(2, 2), padding="SAME"))
        layers.append(stax.Flatten)
    else:
        raise ValueError(f"unknown arch {arch!r}")
    layers.append(stax.Dense(1))
    init_fn, apply_fn = stax.serial(*layers)

    # Fill the stax parameter tree with the Keras weights, in order.
    import jax

    _, shapes = init_fn(jax.random.PRNGKey(0), (-1,) + tuple(weights["input_shape"]))
    it = iter(weights["arrays"])
    params = []
    for p in shapes:
        if p == ():
            params.append(())
            continue
        w, b = next(it), next(it)
        b = b.reshape(p[1].shape)  # stax.Conv keeps its bias as (1, 1, 1, C)
        if tuple(w.shape) != tuple(p[0].shape):
            raise ValueError(f"weight shape mismatch: keras {w.shape}/{b.shape} vs stax "
                             f"{p[0].shape}/{p[1].shape}")
        params.append((jnp.asarray(w), jnp.asarray(b)))
    if next(it, None) is not None:
        raise ValueError("more Keras weights than stax parameters")
    return apply_fn, params


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npz", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--impl", nargs="+",
                    default=["JACOBIAN_CONTRACTION", "STRUCTURED_DERIVATIVES"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-seconds", type=float, default=120.0,
                    help="stop repeating a case once its timed runs used this much")
    ap.add_argument("--min-seconds", type=float, default=3.0,
                    help="repeat sub-second cases until they used this much (at most 15 runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check-logits", action="store_true",
                    help="also save the network outputs (to check the port against Keras)")
    args = ap.parse_args(argv)
    _limit_threads(args.threads)

    import numpy as np
    import jax
    import jaxlib
    import neural_tangents as nt

    d = np.load(args.npz)
    x = np.asarray(d["x"], dtype=np.float32)
    arch = str(d["arch"])
    widths = [int(w) for w in d["widths"]]
    arrays = [d[k] for k in sorted(k for k in d.files if k.startswith("w") and k[1:].isdigit())]
    apply_fn, params = build_network(arch, widths, {"input_shape": x.shape[1:], "arrays": arrays})
    xj = jax.device_put(x)

    result = {
        "versions": {"neural-tangents": nt.__version__ if hasattr(nt, "__version__") else "?",
                     "jax": jax.__version__, "jaxlib": jaxlib.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0]},
        "arch": arch, "n": int(x.shape[0]), "threads": args.threads,
        "n_params": int(sum(a.size for a in arrays)), "impls": {},
    }
    try:
        from importlib.metadata import version

        result["versions"]["neural-tangents"] = version("neural-tangents")
    except Exception:  # noqa: BLE001
        pass

    if args.check_logits:
        logits = np.asarray(jax.jit(apply_fn)(params, xj))
        np.save(args.out + ".logits.npy", logits.astype(np.float32))

    for impl in args.impl:
        rec = {"seconds": [], "first_call_seconds": None, "error": None}
        result["impls"][impl] = rec
        try:
            kernel_fn = nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0,
                                            implementation=getattr(nt.NtkImplementation, impl))
            kernel_fn = jax.jit(kernel_fn)
            t0 = time.perf_counter()
            k = kernel_fn(xj, None, params).block_until_ready()
            rec["first_call_seconds"] = time.perf_counter() - t0
            used = 0.0
            # at least --repeats runs (and --min-seconds in all, up to 15 runs for
            # sub-second cases), but stop after --max-seconds
            while (len(rec["seconds"]) < max(1, args.repeats)
                   or (used < args.min_seconds and len(rec["seconds"]) < 15)):
                t0 = time.perf_counter()
                k = kernel_fn(xj, None, params).block_until_ready()
                dt = time.perf_counter() - t0
                rec["seconds"].append(dt)
                used += dt
                if used >= args.max_seconds:
                    break
            gram = np.asarray(k, dtype=np.float32).reshape(x.shape[0], x.shape[0])
            np.save(f"{args.out}.{impl}.npy", gram)
            med = float(np.median(rec["seconds"]))
            rec["median_seconds"] = med
            rec["compile_seconds"] = max(0.0, rec["first_call_seconds"] - med)
            del k, gram
        except Exception as exc:  # noqa: BLE001 - record and go on with the next implementation
            rec["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            traceback.print_exc()
        rec["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"[nt_worker] {arch} n={x.shape[0]} {impl}: {rec}", file=sys.stderr, flush=True)

    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
