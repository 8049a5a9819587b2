"""Our after-kernel Gram engine vs neural-tangents' empirical NTK, side by side.

For the paper's ``fc`` (4 x 94) and ``vgg`` (26/52) networks with the same
weights (Keras, seed 0, at initialisation: the timings do not depend on the
weights) and the same inputs (the first n MNIST 3v8 training images, or
random images when MNIST is absent), this times the full n x n Gram:

* ours: ``afterkernel.kernels.after_kernel_gram(model, x, engine=engine)``
  with one ``KernelEngine`` reused across the timed calls (its tf.function
  traced beforehand, as JAX's compilation is excluded on the other side); the
  cold first call of the plain API (engine built and traced inside) is
  reported separately; TensorFlow limited to ``--threads``; ours is timed
  before and again after the peer (median over both rounds), so that a change
  of load on a shared machine favours neither side;
* neural-tangents 0.6.5 (JAX 0.4.25, its own venv ``benchmarks/.nt-venv``):
  ``jit(nt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=0, implementation=I))``
  for JACOBIAN_CONTRACTION and STRUCTURED_DERIVATIVES on both nets and
  NTK_VECTOR_PRODUCTS on ``fc`` only (hours for the convnet on CPU); the
  network is rebuilt with ``jax.example_libraries.stax`` and run in
  ``benchmarks/nt_worker.py``, pinned to the same number of CPUs. Compilation
  is excluded from its seconds (reported separately).

Every figure is the median of ``--repeats`` timed runs (more, up to 15, for
sub-second cases, until they used ``--min-seconds``). Agreement: for every
implementation, max_ij |K_nt - K_ours| / max_ij |K_ours| (and the element-wise
max relative difference), plus a check that the JAX port gives the Keras logits.
Examples sitting on a kink of the network (a max-pool window whose two largest
entries are equal up to float32 rounding: TF and XLA then route the gradient to
different, equally valid, positions) are detected by their diagonal, counted and
left out of the headline figure; the maximum over all entries is kept too (see
:func:`agreement`).

Writes a list of result entries to ``--out`` (JSON) and the full measurements
to ``--details``. Entries (at the largest n):
``gram_vs_neural_tangents_fc`` / ``_vgg`` (value: our seconds; ratio =
neural-tangents' best seconds / ours, > 1 means we are faster) and
``gram_agreement_neural_tangents`` (the largest max relative difference).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import logger, pin_threads, write_results
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

NETS = {"fc": {"type": "fc", "widths": [94, 94, 94, 94]},
        "vgg": {"type": "vgg", "widths": [26, 52]}}
IMPLS = {"fc": ["JACOBIAN_CONTRACTION", "STRUCTURED_DERIVATIVES", "NTK_VECTOR_PRODUCTS"],
         "vgg": ["JACOBIAN_CONTRACTION", "STRUCTURED_DERIVATIVES"]}
MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"


log = logger("bench_neural_tangents")


def load_images(n: int, data_dir: Path | None) -> tuple[np.ndarray, str]:
    """The first n MNIST 3v8 training images (float32 NHWC in [0, 1])."""
    from afterkernel.data import load_problem

    if data_dir is not None and (data_dir / "mnist.npz").exists():
        data = load_problem("mnist-3v8", source="dir", directory=str(data_dir))
        src = f"MNIST 3v8 ({data_dir / 'mnist.npz'})"
    else:
        data = None
        src = "random uniform images (MNIST not found)"
    if data is not None and len(data.x_train) >= n:
        return np.ascontiguousarray(data.x_train[:n], dtype=np.float32), src
    rng = np.random.default_rng(0)
    return rng.random((n, 28, 28, 1), dtype=np.float32), "random uniform images (MNIST not found)"


def agreement(k: np.ndarray, ref: np.ndarray, kink_tol: float = 1e-4) -> dict:
    """How close neural-tangents' Gram ``k`` is to ours (``ref``).

    ReLU and max-pooling are not differentiable everywhere: where two entries of
    a pooling window are equal up to float32 rounding (or a pre-activation is ~0),
    TensorFlow and XLA, whose convolutions round differently, may pick different
    (equally valid) subgradients, and that example's whole row differs by ~1e-3.
    Such "kink" examples are detected by their diagonal (relative difference
    > ``kink_tol``), counted, and left out of ``max_rel_to_max``; the maximum over
    all entries is ``max_rel_to_max_all``."""
    k = k.astype(np.float64)
    ref = ref.astype(np.float64)
    diff = np.abs(k - ref)
    scale = float(np.max(np.abs(ref)))
    d_ref = np.abs(np.diag(ref))
    kinks = np.flatnonzero(np.abs(np.diag(k) - np.diag(ref)) > kink_tol * np.maximum(d_ref, 1e-30))
    keep = np.setdiff1d(np.arange(len(ref)), kinks)
    sub = diff[np.ix_(keep, keep)]
    big = np.abs(ref[np.ix_(keep, keep)]) > 1e-3 * scale
    return {"max_rel_to_max": float(sub.max() / scale) if sub.size else None,
            "max_rel_to_max_all": float(diff.max() / scale),
            "max_elementwise_rel": (float(np.max(sub[big] / np.abs(ref[np.ix_(keep, keep)][big])))
                                    if big.any() else None),
            "frobenius_rel": float(np.linalg.norm(diff) / np.linalg.norm(ref)),
            "kink_examples": [int(i) for i in kinks]}


def time_ours(model, x, repeats: int, block_size: int | None, budget_mb: float | None,
              min_seconds: float = 3.0, cold: bool = True):
    """(gram, cold_call_seconds, [seconds]): one cold API call (engine built and
    tf.function traced inside it, like neural-tangents' first call), then
    ``repeats`` calls reusing the engine (tracing excluded, like JAX's compile)."""
    from afterkernel.kernels import KernelEngine, after_kernel_gram

    kw = {}
    if block_size:
        kw["block_size"] = block_size
    if budget_mb:
        kw["jacobian_budget_mb"] = budget_mb
    first = None
    if cold:
        t0 = time.perf_counter()
        gram = after_kernel_gram(model, x, **kw)
        first = time.perf_counter() - t0
    engine = KernelEngine(model)
    after_kernel_gram(model, x[: min(len(x), 64)], engine=engine, **kw)  # trace
    secs = []
    while len(secs) < repeats or (sum(secs) < min_seconds and len(secs) < 15):
        t0 = time.perf_counter()
        gram = after_kernel_gram(model, x, engine=engine, **kw)
        secs.append(time.perf_counter() - t0)
    return gram, first, secs


def run_worker(nt_python: Path, npz: Path, out: Path, impls, repeats, threads, max_seconds,
               min_seconds, timeout):
    cmd = [str(nt_python), str(HERE / "nt_worker.py"), "--npz", str(npz), "--out", str(out),
           "--impl", *impls, "--repeats", str(repeats), "--threads", str(threads),
           "--max-seconds", str(max_seconds), "--min-seconds", str(min_seconds), "--check-logits"]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        err = proc.stderr
        if "Traceback" in err:
            err = err[err.rindex("Traceback"):]
        raise RuntimeError(f"nt_worker failed (rc {proc.returncode}) after {wall:.0f} s: {err[-1500:]}")
    return json.loads(out.read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON list of result entries")
    ap.add_argument("--details", type=Path, help="JSON with every measurement")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--sizes", type=int, nargs="+", help="n values (default 1000 2000; quick 200)")
    ap.add_argument("--nets", nargs="+", default=["fc", "vgg"], choices=sorted(NETS))
    ap.add_argument("--repeats", type=int, help="timed runs per case (default 3; quick 2)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nt-venv", type=Path, default=HERE / ".nt-venv")
    ap.add_argument("--data-dir", type=Path, default=MNIST.parent)
    ap.add_argument("--max-seconds", type=float, default=150.0,
                    help="per neural-tangents case: stop repeating after this many timed seconds")
    ap.add_argument("--min-seconds", type=float, default=3.0,
                    help="both sides: repeat sub-second cases until they used this much (<= 15 runs)")
    ap.add_argument("--block-size", type=int, default=None, help="ours: block_size (default: the API's)")
    ap.add_argument("--budget-mb", type=float, default=None, help="ours: jacobian_budget_mb")
    args = ap.parse_args(argv)
    sizes = args.sizes or ([200] if args.quick else [1000, 2000])
    repeats = args.repeats or (2 if args.quick else 3)
    date = dt.datetime.now().isoformat(timespec="seconds")

    pin_threads(args.threads)
    from afterkernel.runtime import configure_tensorflow

    tf = configure_tensorflow(threads=args.threads, seed=None)
    import keras

    from afterkernel.models import build_model

    nt_python = args.nt_venv / "bin" / "python"
    details = {"date": date, "threads": args.threads, "repeats": repeats, "sizes": sizes,
               "cases": [], "errors": [], "nt_versions": None,
               "ours_versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                                 "numpy": np.__version__}}
    if not nt_python.exists():
        details["errors"].append(f"neural-tangents venv missing: {nt_python} (create it with "
                                 f"python3 -m venv {args.nt_venv} && {args.nt_venv}/bin/pip install "
                                 f"-r benchmarks/requirements-nt.txt)")
    x_all, src = load_images(max(sizes), args.data_dir)
    details["inputs"] = src
    log(f"inputs: {src}; sizes {sizes}; repeats {repeats}; threads {args.threads}")

    with tempfile.TemporaryDirectory(prefix="bench_nt_") as tmp:
        tmp = Path(tmp)
        for net in args.nets:
            model = build_model(NETS[net], (28, 28, 1), seed=0)
            weights = model.get_weights()
            n_params = int(sum(w.size for w in weights))
            for n in sizes:
                x = x_all[:n]
                case = {"net": net, "n": n, "n_params": n_params}
                details["cases"].append(case)
                log(f"{net} n={n}: ours ...")
                gram, first, secs = time_ours(model, x, repeats, args.block_size, args.budget_mb,
                                              args.min_seconds)
                case["ours"] = {"seconds": secs, "median_seconds": float(np.median(secs)),
                                "first_call_seconds": first}
                log(f"{net} n={n}: ours median {np.median(secs):.3f} s (first {first:.2f} s)")
                if not nt_python.exists():
                    continue
                npz = tmp / f"{net}_{n}.npz"
                np.savez(npz, x=x, arch=np.array(net), widths=np.array(NETS[net]["widths"]),
                         **{f"w{i:03d}": w for i, w in enumerate(weights)})
                out = tmp / f"{net}_{n}.json"
                log(f"{net} n={n}: neural-tangents {IMPLS[net]} ...")
                try:
                    res = run_worker(nt_python, npz, out, IMPLS[net], repeats, args.threads,
                                     args.max_seconds, args.min_seconds, timeout=3600)
                except Exception as exc:  # noqa: BLE001
                    details["errors"].append(f"{net} n={n}: {exc}")
                    log(f"{net} n={n}: neural-tangents FAILED: {exc}")
                    continue
                details["nt_versions"] = res["versions"]
                # ours again after the peer, so that a change of load on a shared
                # machine does not favour either side: the median is over both rounds
                _, _, secs2 = time_ours(model, x, repeats, args.block_size, args.budget_mb,
                                        args.min_seconds, cold=False)
                case["ours"]["seconds"] = secs + secs2
                case["ours"]["median_seconds"] = float(np.median(secs + secs2))
                log(f"{net} n={n}: ours, second round: median {np.median(secs2):.3f} s")
                logits_nt = np.load(str(out) + ".logits.npy").reshape(-1)
                logits_k = model.predict(x, batch_size=500, verbose=0).reshape(-1)
                case["logits_max_abs_diff"] = float(np.max(np.abs(logits_nt - logits_k)))
                case["nt"] = {}
                for impl, rec in res["impls"].items():
                    case["nt"][impl] = rec
                    f = Path(f"{out}.{impl}.npy")
                    if rec.get("error") or not f.exists():
                        details["errors"].append(f"{net} n={n} {impl}: {rec.get('error')}")
                        continue
                    rec["agreement"] = agreement(np.load(f), gram)
                    f.unlink()
                    log(f"{net} n={n} {impl}: median {rec['median_seconds']:.3f} s, compile "
                        f"{rec['compile_seconds']:.1f} s, agreement {rec['agreement']['max_rel_to_max']:.2e}")
            del model
            keras.backend.clear_session()

    # Entries at the largest n.
    n_top = max(sizes)
    entries = []
    worst, worst_all, kinks = None, 0.0, 0
    for net in args.nets:
        case = next(c for c in details["cases"] if c["net"] == net and c["n"] == n_top)
        ok = {k: v for k, v in case.get("nt", {}).items() if not v.get("error") and v.get("seconds")}
        ours = case["ours"]["median_seconds"]
        if ok:
            best = min(ok, key=lambda k: ok[k]["median_seconds"])
            best_s = ok[best]["median_seconds"]
            comparator = (f"neural-tangents {(details['nt_versions'] or {}).get('neural-tangents', '?')} "
                          f"{best} (best of {len(ok)} implementations; jit, compile excluded), "
                          f"n={n_top}, {args.threads} threads")
            ratio = best_s / ours
            for v in ok.values():
                a = v["agreement"]["max_rel_to_max"]
                worst = a if worst is None else max(worst, a)
                worst_all = max(worst_all, v["agreement"]["max_rel_to_max_all"])
                kinks = max(kinks, len(v["agreement"]["kink_examples"]))
        else:
            best_s, ratio = None, None
            comparator = "neural-tangents (not measured: see errors)"
        entries.append({"name": f"gram_vs_neural_tangents_{net}", "value": ours, "unit": "s",
                        "comparator": comparator, "comparator_value": best_s, "ratio": ratio,
                        "date": date})
    if worst is not None:
        entries.append({"name": "gram_agreement_neural_tangents", "value": worst,
                        "unit": "relative (max abs difference / max abs entry of ours)",
                        "comparator": f"every neural-tangents implementation vs ours, n={n_top}, "
                                      f"nets {', '.join(args.nets)}; leaving out <= {kinks} example(s) "
                                      f"at a max-pool/ReLU kink (over all entries: {worst_all:.1e})",
                        "comparator_value": None, "ratio": None, "date": date})
    write_results(args.out, entries, args.details, details)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
