"""Speed and memory of the kernel engine (afterkernel.kernels), side by side.

    python benchmarks/bench_kernels.py --out benchmarks/results_kernels.json [--quick]

Entries (``{"name", "value", "unit", "comparator", "comparator_value", "ratio",
"date"}`` plus ``notes``), every comparator measured in the same run:

- ``grad_vs_batched_gradient``: per-example gradients of the VGG-like net
  (26/52) on n MNIST-size images (all parameters, explicit (n, P) blocks, NumPy
  out), examples/s, vs an ordinary batched gradient of Σ_i f(x_i) over the same
  examples and blocks (one gradient per block); ratio = ours / batched
  (target ≥ 0.5).
- ``grad_vs_original_pfor``: the same vs the original code's method,
  ``tape.jacobian`` (pfor) in eager mode on chunks of 32; ratio = ours /
  original (target ≥ 6).
- ``gram_matmul_efficiency``: GFLOP/s of the Gram tile matmuls while building
  the VGG Gram of those n images (best of 2), vs the machine's float32 matmul
  rate (the best of NumPy, SciPy — whose BLAS the engine's CPU tiles call —
  and TensorFlow on 4096² × 4096²); ratio (target ≥ 0.7).
- ``fc_factorized_vs_explicit``: seconds for the FC (4×94) Gram of n images
  through explicit per-example gradients (J Jᵀ) / seconds by the layer
  factorisation; 3 interleaved rounds, each side starting on an idle machine,
  the factorised Gram (~0.1 s) run 3 times a round; best times (target ≥ 30).
- ``peak_rss_gb_vgg_mnist3v8``: peak RSS of a subprocess running the kernel
  job (``afterkernel.kernels.job.snapshot_kernels``: train Gram, test×train, conjugate
  Gram, alignment, invariances, both HDF5 files) for the VGG-like net on
  MNIST 3-vs-8 (11,982 train, 1,984 test) with ``configs/paper.yaml``'s
  kernel settings (target ≤ 4 GB).
- ``peak_rss_gb_megavgg_test``: the same for the mega-VGG net (119/238), test
  set only (test Gram, alignment, invariances) (target ≤ 6 GB).

Data: MNIST from ``../shared/data/mnist.npz`` when present (read only), else
random images of the same shapes (speed and memory do not depend on pixel
values). Networks at initialisation (Keras defaults, seed 0).
The mega-VGG memory job runs on the first 512 test images by default
(``--mega-test 0``: all 1,984; ~7 gradient passes per image make the full set
take ~10 min on 2 cores), and says so in its notes: its memory is set by the
budget-bound gradient panel, not by the number of images. ``--quick`` runs
smaller sizes (n = 1000 for the speed entries, 256 mega-VGG test images).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_results

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MNIST = REPO.parent / "shared" / "data" / "mnist.npz"
VGG = {"type": "vgg", "widths": [26, 52]}
MEGA = {"type": "vgg", "widths": [119, 238]}
FC = {"type": "fc", "widths": [94, 94, 94, 94]}

log = logging.getLogger("bench_kernels")


def load_mnist_3v8():
    """(x_train, y_train, x_test, y_test, source) of MNIST 3-vs-8."""
    if MNIST.is_file():
        with np.load(MNIST) as d:
            out = []
            for split in ("train", "test"):
                keep = np.isin(d[f"y_{split}"], [3, 8])
                out.append((d[f"x_{split}"][keep][..., None] / 255.0).astype(np.float32))
                out.append((d[f"y_{split}"][keep] == 8).astype(np.uint8))
        return (*out, "MNIST 3-vs-8 (mnist.npz)")
    rng = np.random.default_rng(0)
    return (rng.random((11_982, 28, 28, 1), dtype=np.float32), rng.integers(0, 2, 11_982).astype(np.uint8),
            rng.random((1_984, 28, 28, 1), dtype=np.float32), rng.integers(0, 2, 1_984).astype(np.uint8),
            "random images of MNIST 3-vs-8 size")


def paper_kernel_settings() -> dict:
    import yaml

    with open(REPO / "configs" / "paper.yaml") as f:
        k = yaml.safe_load(f)["kernels"]
    return {"block_size": int(k["block_size"]), "jacobian_budget_mb": float(k["jacobian_budget_mb"])}


def entry(name, value, unit, comparator, comparator_value, ratio, notes, **extra):
    return {"name": name, "value": round(float(value), 4), "unit": unit, "comparator": comparator,
            "comparator_value": round(float(comparator_value), 4), "ratio": round(float(ratio), 3),
            "date": datetime.date.today().isoformat(), "notes": notes, **extra}


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# ----------------------------------------------------------------------------
# in-process benchmarks
# ----------------------------------------------------------------------------

def matmul_rate(tf) -> dict:
    from scipy.linalg.blas import sgemm

    n = 4096
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    flops = 2.0 * n**3
    np.matmul(a, b)
    t_np = best_of(lambda: np.matmul(a, b), 3)
    # the engine's CPU tiles call SciPy's BLAS (its own OpenBLAS build)
    af, bf = np.asfortranarray(a), np.asfortranarray(b)
    sgemm(1.0, af, bf)
    t_sp = best_of(lambda: sgemm(1.0, af, bf), 3)
    ta, tb = tf.constant(a), tf.constant(b)
    tf.matmul(ta, tb).numpy()
    t_tf = best_of(lambda: tf.matmul(ta, tb).numpy(), 3)
    return {"numpy": flops / t_np / 1e9, "scipy": flops / t_sp / 1e9, "tensorflow": flops / t_tf / 1e9}


def bench_gradients(tf, x, repeats: int, n_original: int) -> list[dict]:
    from afterkernel.kernels import KernelEngine
    from afterkernel.models import build_model

    model = build_model(VGG, x.shape[1:], seed=0)
    n, block = len(x), 256
    engine = KernelEngine(model, factorize_dense=False)
    variables = model.trainable_weights

    @tf.function(input_signature=[tf.TensorSpec((None, *x.shape[1:]), tf.float32)])
    def batched(xb):
        with tf.GradientTape() as tape:
            f = tf.reduce_sum(model(xb, training=False))
        return tape.gradient(f, variables)

    def ours():
        for s in range(0, n, block):
            r = engine.block_gradients(x[s:s + block])
            assert r.explicit.shape == (min(block, n - s), engine.n_params)

    def plain():
        for s in range(0, n, block):
            g = batched(tf.constant(x[s:s + block]))
        _ = [t.numpy() for t in g]

    def original():
        rows = []
        for s in range(0, n_original, 32):
            xb = tf.constant(x[s:s + 32])
            with tf.GradientTape() as tape:
                f = model(xb)
            jac = tape.jacobian(f, variables)  # pfor, eager, as the original code
            rows.append(np.concatenate([np.asarray(j).reshape(len(xb), -1) for j in jac], axis=1))
        return np.concatenate(rows)

    engine.block_gradients(x[:block])  # trace
    batched(tf.constant(x[:block]))
    t_ours, t_plain = [], []
    for _ in range(repeats):  # interleaved: the machine is shared
        t_ours.append(best_of(ours, 1))
        t_plain.append(best_of(plain, 1))
    original()  # warm-up (pfor traces per shape)
    t_orig = best_of(original, 1)
    rate_ours, rate_plain = n / min(t_ours), n / min(t_plain)
    rate_orig = n_original / t_orig
    notes = (f"VGG-like 26/52, {engine.n_params} params, n={n} MNIST-size images, blocks of {block}; "
             f"ours: all per-example gradients as one (b, P) NumPy array per block, conv "
             f"method {str(engine.conv_method)!r}; "
             f"best of {repeats} interleaved runs (ours {[round(t, 2) for t in t_ours]} s, batched "
             f"{[round(t, 2) for t in t_plain]} s); original on {n_original} examples: {t_orig:.2f} s")
    log.info(notes)
    return [
        entry("grad_vs_batched_gradient", rate_ours, "examples/s (per-example gradients, all params)",
              "batched gradient of the summed output, same blocks (examples/s)", rate_plain,
              rate_ours / rate_plain, notes, target=">= 0.5"),
        entry("grad_vs_original_pfor", rate_ours, "examples/s (per-example gradients, all params)",
              "original method: tape.jacobian (pfor, eager) on chunks of 32 (examples/s)", rate_orig,
              rate_ours / rate_orig, notes, target=">= 6"),
    ]


def bench_gram(tf, x, rates: dict) -> dict:
    from afterkernel.kernels import KernelEngine, gram_with_conjugate
    from afterkernel.models import build_model

    model = build_model(VGG, x.shape[1:], seed=0)
    engine = KernelEngine(model)
    engine.block_gradients(x[:256])
    runs = []  # (tile GFLOP/s, stats, whole Gram seconds); best of 2
    for _ in range(2):
        engine.reset_stats()
        t0 = time.perf_counter()
        gram_with_conjugate(engine, x, block_size=256, jacobian_budget_mb=2048)
        total = time.perf_counter() - t0
        st = dict(engine.stats)
        runs.append((st["tile_flops"] / st["tile_seconds"] / 1e9, st, total))
    gflops, st, total = max(runs, key=lambda r: r[0])
    machine = max(rates.values())
    notes = (f"VGG-like Gram, n={len(x)}, P={engine.n_params}: {st['tile_flops'] / 1e9:.0f} GFLOP of "
             f"tile matmuls in {st['tile_seconds']:.2f} s (syrk on diagonal blocks counted at half; "
             f"best of 2 Grams: {[round(r[0]) for r in runs]} GFLOP/s); gradients "
             f"{st['gradient_seconds']:.2f} s; whole Gram {total:.2f} s; machine 4096^2 sgemm: "
             + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()) + " GFLOP/s")
    log.info(notes)
    return entry("gram_matmul_efficiency", gflops, "GFLOP/s (Gram tile matmuls, float32)",
                 "float32 4096^2 matmul, best of NumPy / SciPy / TensorFlow (GFLOP/s)", machine,
                 gflops / machine, notes, target=">= 0.7", seconds_total=round(total, 2))


def bench_fc(tf, x) -> dict:
    from afterkernel.kernels import after_kernel_gram, per_example_gradients
    from afterkernel.models import build_model

    model = build_model(FC, x.shape[1:], seed=0)
    after_kernel_gram(model, x[:64])
    per_example_gradients(model, x[:64], block_size=256)
    t_fact, t_expl = [], []
    for _ in range(3):  # interleaved rounds: both sides see the same machine state
        # each side starts on an idle machine: the worker threads of the other
        # side's BLAS (NumPy's and SciPy's OpenBLAS are separate) stop spinning;
        # the 0.1 s side runs 3 times a round (as timeit repeats short calls)
        time.sleep(0.5)
        for _ in range(3):
            t0 = time.perf_counter()
            Kf = after_kernel_gram(model, x)
            t_fact.append(time.perf_counter() - t0)
        time.sleep(0.5)
        t0 = time.perf_counter()
        J = per_example_gradients(model, x, block_size=256)
        Ke = J @ J.T
        t_expl.append(time.perf_counter() - t0)
        del J
    err = float(np.abs(Kf - Ke).max() / np.abs(Ke).max())
    notes = (f"FC 4x94, n={len(x)}: factorised (default blocks) {[round(t, 3) for t in t_fact]} s, "
             f"best of 9 (3 per round); explicit J (n x {model.count_params()}, blocks of 256) then "
             f"J J^T {[round(t, 2) for t in t_expl]} s, best of 3 rounds; max relative difference "
             f"{err:.1e}")
    log.info(notes)
    return entry("fc_factorized_vs_explicit", min(t_fact), "s (FC Gram by factorisation)",
                 "explicit per-example gradients + J J^T (s)", min(t_expl), min(t_expl) / min(t_fact),
                 notes, target=">= 30")


# ----------------------------------------------------------------------------
# subprocess jobs (peak RSS)
# ----------------------------------------------------------------------------

def child(job: str, out: str, test_limit: int | None, budget: float, block: int) -> None:
    """Run one kernel job in this (fresh) process and write its figures."""
    from afterkernel.runtime import configure_tensorflow

    configure_tensorflow(2)
    from afterkernel.models import build_model

    x_train, y_train, x_test, y_test, source = load_mnist_3v8()
    if test_limit:
        x_test, y_test = x_test[:test_limit], y_test[:test_limit]
    t0 = time.perf_counter()
    info = {"source": source, "n_train": len(x_train), "n_test": len(x_test)}
    if job == "vgg":
        from afterkernel.kernels.job import snapshot_kernels

        model = build_model(VGG, x_train.shape[1:], seed=0)
        with tempfile.TemporaryDirectory() as tmp:
            root = snapshot_kernels(model, x_train, y_train, x_test, y_test, Path(tmp) / "g.h5",
                                    Path(tmp) / "m.h5", root={"snapshot": "e0", "architecture": "vgg"},
                                    block_size=block, jacobian_budget_mb=budget)
        info["alignment"] = root["alignment"]
    else:
        from afterkernel.kernels.metrics import sample_metrics

        model = build_model(MEGA, x_train.shape[1:], seed=0)
        res = sample_metrics(model, x_test, y_test, block_size=block, jacobian_budget_mb=budget)
        info["alignment"] = res["gram_metrics"]["alignment"]
        info["invariances"] = res["invariances"]
        info["n_train"] = 0
    info["seconds"] = time.perf_counter() - t0
    info["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    Path(out).write_text(json.dumps(info))


def run_child(job: str, test_limit: int | None, budget: float, block: int, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "child.json"
        cmd = [sys.executable, __file__, "--child", job, "--child-out", str(out),
               "--budget", str(budget), "--block", str(block)]
        if test_limit:
            cmd += ["--test-limit", str(test_limit)]
        log.info("running %s", " ".join(cmd))
        subprocess.run(cmd, check=True, timeout=timeout)
        return json.loads(out.read_text())


def rss_entry(name: str, r: dict, limit_gb: float, notes: str) -> dict:
    """Entry for a child job's peak RSS against the brief's limit."""
    log.info(notes)
    return entry(name, r["peak_rss_gb"], "GB (peak RSS, subprocess)", f"target (brief): {limit_gb:g} GB",
                 limit_gb, r["peak_rss_gb"] / limit_gb, notes, target=f"<= {limit_gb:g} GB",
                 seconds=round(r["seconds"], 1))


def bench_rss(mega_test: int | None) -> list[dict]:
    settings = paper_kernel_settings()
    budget, block = settings["jacobian_budget_mb"], settings["block_size"]
    entries = []
    r = run_child("vgg", None, budget, block, timeout=900)
    notes = (f"kernel job (snapshot_kernels: after + conjugate Gram over {r['n_train']} train + {r['n_test']} test, "
             f"HDF5 outputs, invariances and alignment on all test images), VGG-like 26/52, "
             f"{r['source']}, configs/paper.yaml kernels: block {block}, jacobian_budget_mb {budget:g}; "
             f"{r['seconds']:.0f} s on 2 threads; alignment {r['alignment']:.4f}")
    entries.append(rss_entry("peak_rss_gb_vgg_mnist3v8", r, 4.0, notes))
    limit = mega_test or None
    r = run_child("mega", limit, budget, block, timeout=1800)
    subset = (" - a SUBSET of the 1,984 (time: ~7 gradient passes per image at ~30-60 images/s "
              "on 2 cores); the memory is dominated by the budget-bound gradient panel, not by "
              "the number of images (pass --mega-test 0 for all)") if limit else ""
    notes = (f"mega-VGG 119/238, test set only ({r['n_test']} test images{subset}): "
             f"test Gram, alignment, 6 invariances x 2 kernels; {r['source']}, block {block}, "
             f"jacobian_budget_mb {budget:g}; {r['seconds']:.0f} s; alignment {r['alignment']:.4f}")
    entries.append(rss_entry("peak_rss_gb_megavgg_test", r, 6.0, notes))
    return entries


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_kernels.json")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (see the module docstring)")
    ap.add_argument("--n", type=int, default=None, help="examples for the speed benchmarks (default 2000)")
    ap.add_argument("--mega-test", type=int, default=None,
                    help="test images for the mega-VGG memory job (default 512, --quick 256; 0 = all)")
    ap.add_argument("--skip-rss", action="store_true", help="leave out the two peak-RSS jobs")
    ap.add_argument("--only-rss", action="store_true", help="only the two peak-RSS jobs")
    ap.add_argument("--child", choices=["vgg", "mega"], help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--test-limit", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--budget", type=float, default=2048, help=argparse.SUPPRESS)
    ap.add_argument("--block", type=int, default=256, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.child:
        child(args.child, args.child_out, args.test_limit, args.budget, args.block)
        return 0

    entries: list[dict] = []
    if not args.only_rss:
        from afterkernel.runtime import configure_tensorflow

        tf = configure_tensorflow(2)
        n = args.n or (1000 if args.quick else 2000)
        x_train, _, _, _, source = load_mnist_3v8()
        x = x_train[:n]
        log.info("data: %s, n=%d", source, n)
        rates = matmul_rate(tf)
        log.info("machine float32 4096^2 matmul: %s GFLOP/s", {k: round(v) for k, v in rates.items()})
        entries += bench_gradients(tf, x, repeats=3, n_original=256 if args.quick else 512)
        entries.append(bench_gram(tf, x, rates))
        entries.append(bench_fc(tf, x))
    if not args.skip_rss:
        mega_test = args.mega_test if args.mega_test is not None else (256 if args.quick else 512)
        entries += bench_rss(mega_test)
    write_results(args.out, entries)
    for e in entries:
        print(f"{e['name']:28s} {e['value']:>10} {e['unit']:45s} ratio {e['ratio']} (target {e['target']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
