"""Our max-margin solvers vs scikit-learn's SVC on real after kernels, side by side.

Problem: MNIST 3v8 (11,982 training / 1,984 test images, from
``--data-dir``/mnist.npz; without it the real MNIST subset shipped in the
package (``data.source: embedded``), which is smaller: the output says which).
For each network (``fc`` 4x94, ``vgg`` 26/52) trained 3 epochs with
``afterkernel.training.train`` (seed 0, the study's defaults), the train Gram
and the test x train Gram of the after kernel are computed with
``afterkernel.kernels.after_kernel_gram`` and scaled as in the study (divided
by the squared mean feature norm, paper §2). They are cached in
``benchmarks/.cache/`` (git-ignored): the trained weights keyed by the
sources of the data/models/training modules (training is deterministic), the
Grams by a hash of those weights and of the images (``--prepare-only`` fills
the cache and times nothing).

``--gram-file LABEL=PATH`` (repeatable) reads the kernels of the study's own
Gram files instead (e.g. full MNIST 3v8 ``fc`` and ``vgg``, full CIFAR-10
cat-vs-dog ``vgg``, snapshots ``--snapshots``, default e0 e3): per LABEL the
worst ratio over the snapshots (``maxmargin_vs_svc_seconds_LABEL``), the
smallest margin ratio and, where a kernel is not separable (the conjugate
kernel of CIFAR), ``nonseparable_certificate_seconds_`` + the part of LABEL
after its last ``_``.

``--kernels DIR`` reads the full-size Grams from
``DIR/mnist-3v8_{net}_e{epochs}.after.{train,test_train}.npy`` instead
(built once, e.g. with the study's kernel job; nothing is trained then).

On the same matrix, each timed ``--repeats`` times (median reported):

* ``maxmargin.solve(K, y, solver="exact", tol=1e-4)`` (the study's default)
  on one and on two BLAS threads,
* ``maxmargin.solve(K, y, solver="alg1", tol=1e-3)`` (``--threads``),
* ``sklearn.svm.SVC(kernel="precomputed", C=1e10, tol=tol).fit(K, y)`` at
  ``tol`` 1e-4 and 1e-3 (libsvm, with an intercept, one thread; the
  float64 copy it needs is made outside the timing).

With ``--gram-file`` the pair behind the ratio, ours on one thread and SVC
at tol 1e-4, runs in turn (ours, SVC, ours, SVC, ...), so that the
machine's changes of speed during the run reach both sides alike.

Margins: ours from the solver (no bias; certified within its gap); SVC's
certified bracket on its own problem (with intercept): the achieved margin
min_i s_i f(x_i) / ||w|| and the dual bound ||w|| / sum(alpha), ||w||^2 =
a^T K_SV a with a = ``dual_coef_`` (its bias makes its optimum >= the no-bias
one). Test errors: ours from ``decision_function``/``error_rate``, SVC's
from its ``decision_function``.

Entries: ``maxmargin_vs_svc_seconds_{net}`` (value: our exact solver's seconds to
gap 1e-4 on one thread; ratio = ours / SVC's fit seconds at tol 1e-4, one
thread; < 1 means we are faster), ``maxmargin_margin_vs_svc_{net}`` (ratio =
our margin / SVC's achieved margin) and
``alg1_seconds_gap1e-3_{net}`` (comparator: SVC's fit seconds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
import time
from pathlib import Path

from _common import blas_kernels, logger, pin_threads, write_results
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

NETS = {"fc": {"type": "fc", "widths": [94, 94, 94, 94]},
        "vgg": {"type": "vgg", "widths": [26, 52]}}
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
CACHE = HERE / ".cache"
# Modules whose code determines the cached trained weights.
WEIGHT_SOURCES = ["afterkernel/models.py", *sorted(str(p.relative_to(REPO)) for d in ("data", "training") for p in (REPO / "afterkernel" / d).glob("*.py"))]


log = logger("bench_maxmargin")


def load_data(data_dir: Path, cap_train: int | None, cap_test: int | None):
    from afterkernel.data import load_problem

    if (data_dir / "mnist.npz").exists():
        d = load_problem("mnist-3v8", source="dir", directory=str(data_dir),
                         max_train_per_class=cap_train, max_test_per_class=cap_test)
        what = f"MNIST 3v8 from {data_dir / 'mnist.npz'}"
    else:
        d = load_problem("mnist-3v8", source="embedded", max_train_per_class=cap_train,
                         max_test_per_class=cap_test)
        what = "MNIST 3v8, the SMALL real subset embedded in the package (mnist.npz not found)"
    return d, f"{what}: {len(d.y_train)} train / {len(d.y_test)} test"


def _src_hash(paths) -> str:
    h = hashlib.sha256()
    for src in paths:
        h.update((REPO / src).read_bytes())
    return h.hexdigest()[:12]


def trained_weights(net: str, data, epochs: int, seed: int, use_cache: bool):
    """(weights, info) of ``net`` trained ``epochs`` epochs; cached by the
    sources of the data/models/training modules (training is deterministic)."""
    key = hashlib.sha256(json.dumps(
        [net, NETS[net], epochs, seed, int(len(data.y_train)), int(len(data.y_test)),
         str(data.attrs.get("source_sha256")), _src_hash(WEIGHT_SOURCES)]).encode()).hexdigest()[:16]
    f = CACHE / f"{net}_e{epochs}_s{seed}_n{len(data.y_train)}_{key}.weights.npz"
    if use_cache and f.exists():
        z = np.load(f)
        weights = [z[k] for k in sorted(k for k in z.files if k.startswith("w"))]
        return weights, json.loads(str(z["info"]))
    from afterkernel.training import train

    log(f"{net}: training {epochs} epochs on {len(data.y_train)} examples ...")
    t0 = time.perf_counter()
    result = train(data.x_train, data.y_train, data.x_test, data.y_test, NETS[net], seed,
                   stop="epochs", snapshot_epochs=(epochs,), architecture_name=net)
    weights = [np.asarray(w) for w in result.snapshots[f"e{epochs}"]]
    hist = result.history
    info = {"train_seconds": time.perf_counter() - t0,
            "nn_test_error": float(np.asarray(hist["test_error"])[-1]),
            "nn_train_error": float(np.asarray(hist["train_error"])[-1])}
    log(f"{net}: trained in {info['train_seconds']:.0f} s")
    if use_cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(f, info=np.array(json.dumps(info)), **{f"w{i:03d}": w for i, w in enumerate(weights)})
    return weights, info


def after_kernel_grams(net: str, data, epochs: int, seed: int, use_cache: bool):
    """(K_train, K_test_train, info), scaled as in the study, float32.

    Cached by a hash of the trained weights and the data: the matrices are
    then defined mathematically, whatever version of the engine computes them
    (delete ``benchmarks/.cache`` after fixing a bug in the engine)."""
    weights, info = trained_weights(net, data, epochs, seed, use_cache)
    h = hashlib.sha256()
    for w in weights:
        h.update(np.ascontiguousarray(w).tobytes())
    h.update(np.ascontiguousarray(data.x_train).tobytes())
    h.update(np.ascontiguousarray(data.x_test).tobytes())
    key = f"{net}_n{len(data.y_train)}_{h.hexdigest()[:16]}"
    f_tr, f_te, f_meta = (CACHE / f"{key}.train.npy", CACHE / f"{key}.test_train.npy",
                          CACHE / f"{key}.json")
    if use_cache and f_tr.exists() and f_te.exists() and f_meta.exists():
        log(f"{net}: Grams from cache {f_tr.name}")
        return np.load(f_tr), np.load(f_te), {**info, **json.loads(f_meta.read_text())}

    from afterkernel.kernels import after_kernel_gram, feature_scale
    from afterkernel.models import build_model

    model = build_model(NETS[net], data.input_shape)
    model.set_weights(weights)
    log(f"{net}: train Gram ({len(data.y_train)} examples) ...")
    t0 = time.perf_counter()
    k_train = after_kernel_gram(model, data.x_train)
    t_gram = time.perf_counter() - t0
    t0 = time.perf_counter()
    k_test = after_kernel_gram(model, data.x_test, data.x_train)
    t_gram_test = time.perf_counter() - t0
    scale = feature_scale(np.diag(k_train).astype(np.float64))
    k_train /= np.float32(scale**2)
    k_test /= np.float32(scale**2)
    meta = {"gram_seconds": t_gram, "gram_test_seconds": t_gram_test, "scale": float(scale),
            "n_params": int(model.count_params())}
    log(f"{net}: Grams in {t_gram:.0f} s + {t_gram_test:.0f} s")
    if use_cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(f_tr, k_train)
        np.save(f_te, k_test)
        f_meta.write_text(json.dumps(meta, indent=1))
    return k_train, k_test, {**info, **meta}


def repeat(fn, repeats: int, max_seconds: float):
    """(last result, [seconds]) of up to ``repeats`` calls, stopping after ``max_seconds``."""
    return alternate([fn], repeats, max_seconds)[0]


def alternate(fns, repeats: int, max_seconds: float, others_if=None):
    """[(last result, [seconds])] of each of ``fns``, called in turn (a, b,
    a, b, ...) up to ``repeats`` times each, stopping after ``max_seconds``
    of any one: a change of the machine's speed during the run then reaches
    both sides of a comparison alike.  With ``others_if``, the others run
    only if it holds for the first result of ``fns[0]`` (else their
    entries are (None, []))."""
    secs, outs = [[] for _ in fns], [None] * len(fns)
    for _ in range(max(1, repeats)):
        for k, fn in enumerate(fns):
            if k and others_if is not None and not others_if(outs[0]):
                break
            t0 = time.perf_counter()
            outs[k] = fn()
            secs[k].append(time.perf_counter() - t0)
        if max(sum(x) for x in secs) >= max_seconds:
            break
    return list(zip(outs, secs))


def svc_case(k_train, k_test, y_train, y_test, repeats, max_seconds, tol):
    """SVC(C=1e10, tol) on one BLAS thread (libsvm is single-threaded), with
    its certified bracket on its own (with-intercept) problem: the achieved
    geometric margin min_i s_i f(x_i) / ||w|| and the dual bound ||w|| / sum(alpha)."""
    from threadpoolctl import threadpool_limits

    k64 = np.asarray(k_train, dtype=np.float64)
    with threadpool_limits(1):
        svc, secs = repeat(svc_fit(k64, y_train, tol), repeats, max_seconds)
    return svc_summary(svc, secs, k64, k_test, y_train, y_test, tol)


def svc_fit(k64, y_train, tol):
    """The timed call: SVC(C=1e10, tol).fit on the float64 train Gram ``k64``."""
    from sklearn.svm import SVC

    y = np.asarray(y_train).astype(int)
    return lambda: SVC(kernel="precomputed", C=1e10, tol=tol).fit(k64, y)


def svc_summary(svc, secs, k64, k_test, y_train, y_test, tol):
    """What :func:`svc_case` reports for the fitted ``svc`` and its ``secs``."""
    y = np.asarray(y_train).astype(int)
    sv = svc.support_
    a = svc.dual_coef_[0].astype(np.float64)
    w = float(np.sqrt(a @ k64[np.ix_(sv, sv)] @ a))
    s = 2.0 * y - 1.0
    f_train = k64[:, sv] @ a + svc.intercept_[0]
    achieved = float(np.min(s * f_train) / w)
    dec_test = svc.decision_function(np.asarray(k_test, dtype=np.float64))
    test_err = float(np.mean((dec_test > 0).astype(int) != np.asarray(y_test).astype(int)))
    return {"tol": tol, "seconds": secs, "median_seconds": float(np.median(secs)), "margin": 1.0 / w,
            "margin_achieved": achieved, "dual_bound": w / float(np.abs(a).sum()),
            "n_support": int(len(sv)), "intercept": float(svc.intercept_[0]),
            "test_error": test_err, "train_error": float(np.mean((f_train > 0) != (y == 1)))}


def cached_kernels(directory: Path, net: str, epochs: int):
    """(K_train, K_test_train, info) from ``{directory}/mnist-3v8_{net}_e{epochs}.after.*.npy``
    (built once elsewhere, e.g. by the study's kernel job), or None when absent."""
    stem = directory / f"mnist-3v8_{net}_e{epochs}.after"
    if not (Path(f"{stem}.train.npy").exists() and Path(f"{stem}.test_train.npy").exists()):
        return None
    return np.load(f"{stem}.train.npy"), np.load(f"{stem}.test_train.npy"), {"from": str(stem)}


def gram_file_cases(spec: str, snapshots: list[str], kernels=("after", "conjugate")):
    """Yield (label, snapshot, kernel, K_train, K_test_train, y_train, y_test)
    from a study Gram file given as ``LABEL=PATH`` (``results/kernels/...gram.h5``
    with ``keep_grams: true``, or the kernel job's own output), for each of
    ``snapshots`` and ``kernels``."""
    import h5py

    label, _, path = spec.partition("=")
    with h5py.File(path, "r") as f:
        y_train, y_test = f["y_train"][()], f["y_test"][()]
        for snapshot in snapshots:
            for kernel in kernels:
                yield (label, snapshot, kernel, f[f"{snapshot}/{kernel}/train"][()],
                       f[f"{snapshot}/{kernel}/test_train"][()], y_train, y_test)


def ours_case(k_train, k_test, y_train, y_test, solver, tol, repeats, max_seconds, max_iter, threads=None):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads):
        res, secs = repeat(ours_solve(k_train, y_train, solver, tol, max_iter), repeats, max_seconds)
    return ours_summary(res, secs, k_train, k_test, y_train, y_test, solver, tol, threads)


def ours_solve(k_train, y_train, solver, tol, max_iter):
    """The timed call: ``maxmargin.solve`` on the train Gram."""
    from afterkernel import maxmargin

    kw = {"solver": solver, "tol": tol}
    if max_iter:
        kw["max_iter"] = max_iter
    return lambda: maxmargin.solve(k_train, y_train, **kw)


def ours_summary(res, secs, k_train, k_test, y_train, y_test, solver, tol, threads):
    """What :func:`ours_case` reports for the result ``res`` and its ``secs``."""
    from afterkernel import maxmargin

    dec = maxmargin.decision_function(k_test, y_train, res.coef)
    test_err = float(maxmargin.error_rate(dec, y_test))
    return {"solver": solver, "tol": tol, "threads": threads, "seconds": secs, "median_seconds": float(np.median(secs)),
            "margin": float(res.margin), "upper_bound": float(res.upper_bound), "gap": float(res.gap),
            "iterations": int(res.iterations), "converged": bool(res.converged),
            "separable": bool(res.separable), "status": res.status, "test_error": test_err,
            "coef_from": res.info.get("coef_from"), "loss_seconds": res.info.get("loss_seconds"),
            "certified_by": None if res.separable else ("loss minimiser" if res.info.get("loss_certificate")
                                                        else "working set + Wolfe"),
            # the dual bound in units of max_i ||z_i||, and the threshold below which it counts as 0
            "upper_bound_relative": float(res.upper_bound) / float(np.sqrt(np.max(np.diagonal(k_train)))),
            "nonsep_tol": maxmargin.nonsep_tolerance(k_train.dtype),
            # dual weights above 1e-6 of the largest (Algorithm 1's softmax weights are never 0)
            "n_support": int(np.sum(np.asarray(res.coef) > 1e-6 * np.max(np.asarray(res.coef))))}


def margin_entry(name: str, ours: dict, svc: dict, date: str, where: str = "") -> dict:
    """Entry ``name``: our certified no-bias margin against SVC's achieved margin."""
    return {"name": name, "value": ours["margin"], "unit": "margin (scaled kernel)",
            "comparator": "SVC (tol 1e-4, with intercept) achieved geometric margin",
            "comparator_value": svc["margin_achieved"], "ratio": ours["margin"] / svc["margin_achieved"],
            "date": date, "target": ">= 0.99",
            "notes": f"{where}ours certified [{ours['margin']:.6g}, {ours['upper_bound']:.6g}] (no bias); "
                     f"SVC's bracket on its own problem [{svc['margin_achieved']:.6g}, {svc['dual_bound']:.6g}]"}


def svm_job_peak_rss(name: str, spec: str, snapshot: str, date: str) -> dict:
    """Entry ``name``: the peak RSS of the study's SVM job
    (``afterkernel.maxmargin.job.write_svm``, after kernel of ``snapshot``,
    default settings) on the Gram file of ``spec`` (``LABEL=PATH``), in a
    fresh process, against the size of the train Gram it reads."""
    import subprocess
    import tempfile

    import h5py

    path = spec.partition("=")[2]
    with h5py.File(path, "r") as f:
        n = f[f"{snapshot}/after/train"].shape[0]
    # VmHWM, not ru_maxrss: Linux carries the parent's RSS at fork into the child's ru_maxrss
    code = ("import sys; from afterkernel.maxmargin.job import write_svm; "
            "write_svm(sys.argv[1], sys.argv[2], sys.argv[3], 'after', "
            "{'solver': 'exact', 'tolerance': 1e-4, 'max_iterations': 200000}); "
            "print(next(ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')))")
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", code, path, str(Path(d) / "svm.h5"), snapshot],
                             check=True, capture_output=True, text=True, cwd=REPO).stdout
    peak, gram = int(out.split()[-1]) / 2**20, n * n * 4 / 2**30
    log(f"{name}: peak RSS {peak:.3f} GB, train Gram {gram:.3f} GB")
    return {"name": name, "value": round(peak, 4), "unit": "GB",
            "comparator": f"the train Gram (float32, n={n}) of the Gram file", "comparator_value": round(gram, 4),
            "ratio": round(peak / gram, 4), "date": date, "target": "<= 1.3",
            "notes": f"peak RSS (VmHWM, whole process incl. Python/NumPy/h5py) of write_svm, exact "
                     f"solver, after kernel of {snapshot}, in a fresh process"}


def compare_on_gram_files(args, repeats: int, date: str, sklearn_version: str):
    """Entries from study Gram files (``--gram-file LABEL=PATH``): per label,
    the worst ratio over ``--snapshots`` of our exact solver (one thread) to
    SVC at tol 1e-4 (one thread) on the after kernel, the smallest margin
    ratio, and for kernels that are not separable (the conjugate kernel of
    CIFAR) our seconds to certify that."""
    from threadpoolctl import threadpool_limits

    entries, details = [], {"date": date, "repeats": repeats, "sklearn": sklearn_version, "cases": []}
    for spec in args.gram_file:
        rows = []
        for label, snapshot, kernel, k_train, k_test, y_train, y_test in gram_file_cases(spec, args.snapshots, args.kernel):
            case = {"label": label, "snapshot": snapshot, "kernel": kernel, "n": int(len(y_train)),
                    "dtype": str(k_train.dtype)}
            # One thread each side, in turn (ours, SVC, ours, ...); SVC only
            # where ours finds the kernel separable (else its hard-margin
            # fit would not end), and on the after kernels only.
            k64 = np.asarray(k_train, dtype=np.float64) if kernel == "after" else None
            calls = [ours_solve(k_train, y_train, "exact", 1e-4, args.max_iter)]
            if k64 is not None:
                calls.append(svc_fit(k64, y_train, 1e-4))
            with threadpool_limits(1):
                runs = alternate(calls, repeats, args.max_seconds, others_if=lambda r: r.separable)
            (res, secs), (svc, svc_secs) = runs[0], runs[1] if len(runs) > 1 else (None, [])
            ours = {1: ours_summary(res, secs, k_train, k_test, y_train, y_test, "exact", 1e-4, 1)}
            ours.update({t: ours_case(k_train, k_test, y_train, y_test, "exact", 1e-4, repeats, args.max_seconds,
                                      args.max_iter, t) for t in args.ours_threads if t != 1})
            case["ours"] = ours
            log(f"{label} {snapshot} {kernel}: ours " + ", ".join(
                f"{ours[t]['median_seconds']:.2f} s ({t} thread{'s' * (t > 1)})" for t in ours)
                + f", separable {ours[1]['separable']}, support {ours[1]['n_support']}, "
                  f"test error {ours[1]['test_error']:.4f}, classifier {ours[1]['coef_from']}")
            if svc is not None:
                case["svc"] = {"0.0001": svc_summary(svc, svc_secs, k64, k_test, y_train, y_test, 1e-4),
                               "0.001": svc_case(k64, k_test, y_train, y_test, repeats, args.max_seconds, 1e-3)}
                log(f"{label} {snapshot}: SVC tol 1e-4 {case['svc']['0.0001']['median_seconds']:.2f} s")
            rows.append(case)
            details["cases"].append(case)
            del k_train, k_test, k64
        label = rows[0]["label"]
        timed = [c for c in rows if "svc" in c]
        if timed:
            def ratio(c):
                return c["ours"][1]["median_seconds"] / c["svc"]["0.0001"]["median_seconds"]

            worst = max(timed, key=ratio)
            each = "; ".join(f"{c['snapshot']}: ours {c['ours'][1]['median_seconds']:.3f} s (2 threads "
                             f"{c['ours'].get(2, {}).get('median_seconds', float('nan')):.3f} s), SVC tol 1e-4 "
                             f"{c['svc']['0.0001']['median_seconds']:.3f} s, tol 1e-3 "
                             f"{c['svc']['0.001']['median_seconds']:.3f} s, {c['ours'][1]['n_support']} support "
                             f"vectors, first of the repeats ours "
                             f"{c['ours'][1]['seconds'][0]:.3f} s, SVC {c['svc']['0.0001']['seconds'][0]:.3f} s"
                             for c in timed)
            entries.append({"name": f"maxmargin_vs_svc_seconds_{label}", "value": worst["ours"][1]["median_seconds"],
                            "unit": "s", "comparator": f"sklearn {sklearn_version} SVC(kernel='precomputed', "
                            f"C=1e10, tol=1e-4).fit, same matrix (n={worst['n']}), one thread each side",
                            "comparator_value": worst["svc"]["0.0001"]["median_seconds"], "ratio": ratio(worst),
                            "date": date, "target": "<= 0.5",
                            "notes": f"after kernel, worst of snapshots {', '.join(args.snapshots)} (median of "
                                     f"{repeats}): {each}"})
            margin = min(timed, key=lambda c: c["ours"][1]["margin"] / c["svc"]["0.0001"]["margin_achieved"])
            entries.append(margin_entry(f"maxmargin_margin_vs_svc_{label}", margin["ours"][1],
                                        margin["svc"]["0.0001"], date, f"{margin['snapshot']} (smallest ratio): "))
        nonsep = [c for c in rows if not c["ours"][1]["separable"]]
        if nonsep:
            worst = max(nonsep, key=lambda c: c["ours"][1]["median_seconds"])
            entries.append({"name": f"nonseparable_certificate_seconds_{label.split('_')[-1]}",
                            "value": worst["ours"][1]["median_seconds"], "unit": "s", "target": "<= 10",
                            "comparator": "–", "comparator_value": None, "ratio": None, "date": date,
                            "notes": "; ".join(f"{c['snapshot']} {c['kernel']}: {c['ours'][1]['median_seconds']:.2f} s "
                                               + (f"(2 threads {c['ours'][2]['median_seconds']:.2f} s) " if 2 in c["ours"]
                                                  else "")
                                               + f"to status {c['ours'][1]['status']}, certified by the "
                                               f"{c['ours'][1]['certified_by']} (dual bound "
                                               f"{c['ours'][1]['upper_bound_relative']:.3g} max||z_i||, threshold "
                                               f"{c['ours'][1]['nonsep_tol']:g} for a {c['dtype']} K); classifier: the "
                                               f"{c['ours'][1]['coef_from']} in "
                                               f"{c['ours'][1]['loss_seconds'] or 0:.2f} s, test error "
                                               f"{c['ours'][1]['test_error']:.4f}" for c in nonsep)
                                     + f" (n={worst['n']}, one thread, solve() with the study's defaults, "
                                       "including the classifier reported for it)"})
    # The kernels OpenBLAS runs set our side's speed (LIBSVM uses no BLAS).
    details["blas"] = blas_kernels()
    for e in entries:
        if e["unit"] == "s":
            e["notes"] += f"; BLAS: {'; '.join(details['blas'])}"
    return entries, details


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON list of result entries")
    ap.add_argument("--details", type=Path, help="JSON with every measurement")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 400 train / 200 test images per class")
    ap.add_argument("--nets", nargs="+", default=["fc", "vgg"], choices=sorted(NETS))
    ap.add_argument("--repeats", type=int, help="timed runs per solver (default 3; quick 2)")
    ap.add_argument("--max-seconds", type=float, default=240.0,
                    help="stop repeating a solver after this many timed seconds")
    ap.add_argument("--max-iter", type=int, default=200000, help="iteration cap of our solvers")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--kernels", type=Path,
                    help="read the full-size Grams from DIR/mnist-3v8_{net}_e{epochs}.after.{train,test_train}.npy")
    ap.add_argument("--gram-file", action="append", metavar="LABEL=PATH",
                    help="a study Gram file (kernels of every snapshot); entries named by LABEL")
    ap.add_argument("--snapshots", nargs="+", default=["e0", "e3"], help="with --gram-file")
    ap.add_argument("--kernel", nargs="+", default=["after", "conjugate"], choices=["after", "conjugate"],
                    help="with --gram-file")
    ap.add_argument("--ours-threads", nargs="+", type=int, default=[1, 2],
                    help="with --gram-file: BLAS threads of our solver's runs (1 is the entries' figure)")
    ap.add_argument("--job-rss", action="append", default=[], metavar="NAME=LABEL",
                    help="with --gram-file: entry NAME, the SVM job's peak RSS on LABEL's Gram file")
    ap.add_argument("--prepare-only", action="store_true",
                    help="only train and cache the Grams (benchmarks/.cache), time nothing")
    args = ap.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 3)
    date = dt.datetime.now().isoformat(timespec="seconds")

    pin_threads(args.threads)
    from afterkernel.runtime import configure_tensorflow

    configure_tensorflow(threads=args.threads, seed=None)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        pass
    import sklearn

    if args.gram_file:
        entries, details = compare_on_gram_files(args, repeats, date, sklearn.__version__)
        files = dict(spec.partition("=")[::2] for spec in args.gram_file)
        for job in args.job_rss:
            name, _, label = job.partition("=")
            entries.append(svm_job_peak_rss(name, f"{label}={files[label]}", args.snapshots[-1], date))
        write_results(args.out, entries, args.details, details)
        log(f"wrote {args.out}")
        return 0
    cap = (400, 200) if args.quick else (None, None)
    data, what = load_data(args.data_dir, *cap)
    log(f"data: {what}; repeats {repeats}; threads {args.threads}")
    details = {"date": date, "data": what, "repeats": repeats, "threads": args.threads,
               "sklearn": sklearn.__version__, "epochs": args.epochs, "seed": args.seed,
               "nets": {}, "errors": []}
    entries = []
    n = len(data.y_train)
    for net in args.nets:
        d = details["nets"][net] = {"n_train": n, "n_test": int(len(data.y_test))}
        try:
            got = cached_kernels(args.kernels, net, args.epochs) if args.kernels else None
            k_train, k_test, info = got or after_kernel_grams(net, data, args.epochs, args.seed,
                                                              not args.no_cache)
        except Exception as exc:  # noqa: BLE001
            details["errors"].append(f"{net}: Gram failed: {type(exc).__name__}: {exc}")
            log(details["errors"][-1])
            continue
        d["gram"] = info
        if args.prepare_only:
            continue
        d["svc"] = {}
        for tol in (1e-4, 1e-3):
            log(f"{net}: SVC tol {tol:g} ...")
            svc = d["svc"][f"{tol:g}"] = svc_case(k_train, k_test, data.y_train, data.y_test, repeats,
                                                   args.max_seconds, tol)
            log(f"{net}: SVC tol {tol:g} {svc['median_seconds']:.2f} s, margin [{svc['margin_achieved']:.6g}, "
                f"{svc['dual_bound']:.6g}], test error {svc['test_error']:.4f}")
        svc = d["svc"]["0.0001"]
        d["ours"] = {}
        for solver, tol, threads in (("exact", 1e-4, 1), ("exact", 1e-4, 2), ("alg1", 1e-3, args.threads)):
            label = f"{solver}@{tol:g}x{threads}"
            try:
                r = ours_case(k_train, k_test, data.y_train, data.y_test, solver, tol, repeats,
                              args.max_seconds, args.max_iter, threads)
            except Exception as exc:  # noqa: BLE001
                details["errors"].append(f"{net} {label}: {type(exc).__name__}: {exc}")
                log(details["errors"][-1])
                continue
            d["ours"][label] = r
            log(f"{net}: {label} {r['median_seconds']:.2f} s, {r['iterations']} it, margin "
                f"{r['margin']:.6g}, gap {r['gap']:.2e}, test error {r['test_error']:.4f}")
        svc_name = (f"sklearn {sklearn.__version__} SVC(kernel='precomputed', C=1e10, tol=1e-4).fit, "
                    f"same matrix (n={n}), one thread each side")

        def vs_svc(name, r):
            return {"name": name, "value": r["median_seconds"], "unit": "s", "comparator": svc_name,
                    "comparator_value": svc["median_seconds"],
                    "ratio": r["median_seconds"] / svc["median_seconds"], "date": date}

        exact = d["ours"].get("exact@0.0001x1")
        if exact:
            two = d["ours"].get("exact@0.0001x2", {}).get("median_seconds", float("nan"))
            svc3 = d["svc"]["0.001"]
            entries.append({**vs_svc(f"maxmargin_vs_svc_seconds_{net}", exact), "target": "<= 0.5",
                            "notes": f"ours with 2 threads {two:.2f} s; SVC tol 1e-3 "
                                     f"{svc3['median_seconds']:.2f} s (one thread)"})
            entries.append(margin_entry(f"maxmargin_margin_vs_svc_{net}", exact, svc, date))
        a3 = d["ours"].get(f"alg1@0.001x{args.threads}")
        if a3:
            entries.append(vs_svc(f"alg1_seconds_gap1e-3_{net}", a3))
        del k_train, k_test
    write_results(args.out, entries, args.details, details)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
