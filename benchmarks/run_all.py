"""Run the benchmark suite and rewrite benchmarks/RESULTS.md and benchmarks/results.json.

    .venv/bin/python benchmarks/run_all.py                 # full suite (~30-40 min on 2 cores)
    .venv/bin/python benchmarks/run_all.py --quick         # smoke test, small sizes (~3 min)
    .venv/bin/python benchmarks/run_all.py --with-default-run   # + the whole default study

Each benchmark script runs as a subprocess writing its JSON entries to a
temporary ``--out`` file (its log goes to ``benchmarks/logs/``); a script that
is missing or fails is recorded in RESULTS.md and the suite goes on. The
entries of all scripts are merged into ``results.json`` (a list of
``{"name", "value", "unit", "comparator", "comparator_value", "ratio", "date"}``)
and RESULTS.md is generated from them (never edit it by hand), with the
machine, the library versions, how busy the machine was with other work
during the run, and the per-benchmark details.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import blas_kernels

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LOGS = HERE / "logs"
LAST_RUN = HERE / ".cache" / "last_run.json"  # for --merge


def portable(text: str) -> str:
    """``text`` with this checkout's absolute paths made relative to the
    repository (the committed files name no machine's folders)."""
    return text.replace(str(REPO) + "/", "").replace(str(REPO.parent) + "/", "../")

# name -> (script, takes --details, flags used with --quick when the script has them)
BENCHES = {
    "kernels": ("bench_kernels.py", False, []),
    "training": ("bench_training.py", False,
                 ["--nets", "fc", "vgg", "--epochs", "2", "--mega-examples", "200", "--mega-epochs", "1"]),
    "neural_tangents": ("bench_neural_tangents.py", True, ["--quick"]),
    "maxmargin": ("bench_maxmargin.py", True, ["--quick"]),
    "evolution": ("bench_evolution.py", False, ["--quick"]),
    "throughput": ("bench_throughput.py", False, ["--quick"]),
    "reproduction": ("bench_reproduction.py", False, []),
}
ORDER = ["kernels", "training", "neural_tangents", "maxmargin", "evolution", "throughput", "reproduction",
         "default_run"]

# How to read the ratio of each entry, and its target where the issue set one:
# prefix -> (ratio definition, how to read it, target, "ratio>=" | "ratio<=" | "value<=" | None)
RATIO_MEANING = {
    "gram_vs_neural_tangents_": ("neural-tangents' best seconds / ours", "> 1: ours faster", 2.0, "ratio>="),
    "gram_agreement_neural_tangents": ("–", "float32 rounding is ~1e-7..1e-6", 1e-5, "value<="),
    "maxmargin_vs_svc_seconds_": ("our exact solver's seconds / SVC's fit seconds", "< 1: ours faster",
                                  0.5, "ratio<="),
    "nonseparable_certificate_seconds_": ("–", "s to certify a kernel not separable, lower is better", 10.0,
                                          "value<="),
    "svm_job_peak_rss_gb_": ("SVM job peak RSS / the train Gram's size", "lower is better", 1.3, "ratio<="),
    "maxmargin_margin_vs_svc_": ("our no-bias margin / SVC's margin (with intercept)",
                                 "expected 0.99-1.0", 0.99, "ratio>="),
    "alg1_seconds_gap1e-3_": ("Algorithm 1 seconds to gap 1e-3 / SVC's fit seconds", "< 1: ours faster",
                              None, None),
    "train_seconds_per_epoch_": ("comparator / ours (see bench_training.py)", "> 1: ours faster",
                                 None, None),
    "grad_vs_batched_gradient": ("ours / one batched gradient (examples/s)", "> target: good", 0.5, "ratio>="),
    "grad_vs_original_pfor": ("ours / the original tape.jacobian pfor (examples/s)", "> 1: ours faster",
                              6.0, "ratio>="),
    "gram_matmul_efficiency": ("Gram matmul GFLOP/s / machine float32 matmul GFLOP/s", "1 = peak", 0.7,
                               "ratio>="),
    "fc_factorized_vs_explicit": ("explicit J J^T seconds / factorised seconds", "> 1: factorised faster",
                                  30.0, "ratio>="),
    "peak_rss_gb_vgg_mnist3v8": ("–", "GB, lower is better", 4.0, "value<="),
    "evolution_overhead_fraction": ("kernel job seconds with / without the evolution quantities",
                                    "value: (with - without) / without, lower is better", 0.1, "value<="),
    "peak_rss_gb_megavgg_test": ("–", "GB, lower is better", 6.0, "value<="),
    "study_throughput_": ("one 2-thread job at a time / two 1-thread jobs side by side (wall s)",
                          "> 1: side by side is faster", None, None),
    "reproduction_run_minutes": ("measured minutes / 150", "every part of configs/reproduction.yaml, 2 cores "
                                 "(reproduction/runs.json)", 150.0, "value<="),
    "reproduction_estimate_ratio": ("the cost model's minutes / the measured minutes", "1 = exact; target 0.7-1.3",
                                    None, None),
}


def log(msg: str) -> None:
    print(f"[run_all {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
# Machine, versions, load
# ----------------------------------------------------------------------------
def machine_info() -> dict:
    info = {"cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}
    try:
        info["usable_cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("flags")), "")
        info["avx512"] = "avx512f" in flags
    except OSError:
        pass
    try:
        mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        info["memory_gb"] = round(int(mem.split()[1]) / 2**20, 1)
    except (OSError, StopIteration):
        pass
    info["blas"] = blas_kernels()
    return info


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("tensorflow-cpu", "tensorflow", "keras", "numpy", "scipy", "scikit-learn",
                "threadpoolctl", "h5py", "snakemake", "psutil"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


class LoadSampler(threading.Thread):
    """CPU time used by processes outside this run's process tree, every ``every`` s."""

    def __init__(self, every: float = 5.0):
        super().__init__(daemon=True)
        self.every = every
        self.samples: list[float] = []  # cores busy with other work
        self.stop = threading.Event()

    def run(self):
        try:
            import psutil
        except ImportError:
            return
        me = psutil.Process()
        prev: dict[int, float] = {}
        t_prev = None
        while not self.stop.is_set():
            try:
                ours = {me.pid} | {c.pid for c in me.children(recursive=True)}
            except psutil.Error:
                ours = {me.pid}
            cur: dict[int, float] = {}
            for p in psutil.process_iter(["cpu_times"]):
                ct = p.info.get("cpu_times")
                if ct is not None:
                    cur[p.pid] = ct.user + ct.system
            now = time.monotonic()
            if t_prev is not None:
                other = sum(v - prev.get(pid, v) for pid, v in cur.items() if pid not in ours)
                # processes started since the last sample count from their start
                other += sum(v for pid, v in cur.items() if pid not in prev and pid not in ours)
                self.samples.append(max(0.0, other / (now - t_prev)))
            prev, t_prev = cur, now
            self.stop.wait(self.every)

    def summary(self) -> dict:
        s = sorted(self.samples)
        if not s:
            return {}
        return {"mean_other_cores": sum(s) / len(s), "median_other_cores": s[len(s) // 2],
                "max_other_cores": s[-1], "samples": len(s),
                "fraction_above_half_core": sum(v > 0.5 for v in s) / len(s)}


# ----------------------------------------------------------------------------
# Running the scripts
# ----------------------------------------------------------------------------
def script_help(path: Path) -> str:
    try:
        return subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True,
                              timeout=120).stdout
    except Exception:  # noqa: BLE001
        return ""


def run_bench(name: str, quick: bool, threads: int, tmp: Path, timeout: float) -> dict:
    script, has_details, quick_flags = BENCHES[name]
    path = HERE / script
    rec = {"name": name, "script": f"benchmarks/{script}", "status": "ok", "entries": [],
           "details": None}
    if not path.exists():
        rec.update(status="missing", reason=f"benchmarks/{script} does not exist")
        return rec
    out = tmp / f"{name}.json"
    det = tmp / f"{name}.details.json"
    cmd = [sys.executable, str(path), "--out", str(out)]
    if has_details:
        cmd += ["--details", str(det)]
    helptext = script_help(path)
    if "--threads" in helptext:
        cmd += ["--threads", str(threads)]
    if quick:
        flags = [f for f in quick_flags if f.startswith("--")]
        if flags and all(f in helptext for f in flags):
            cmd += quick_flags
        elif "--quick" in helptext:
            cmd += ["--quick"]
        else:
            rec["note"] = "has no quick mode: ran at full size"
    rec["command"] = (" ".join(shlex.quote(c) for c in cmd).replace(str(tmp), "$TMP")
                      .replace(str(REPO) + "/", ""))
    LOGS.mkdir(parents=True, exist_ok=True)
    logfile = LOGS / f"{name}.log"
    log(f"{name}: {rec['command']}  (log: {logfile.relative_to(REPO)})")
    t0 = time.perf_counter()
    try:
        with open(logfile, "w") as lf:
            proc = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT, cwd=REPO, timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    rec["seconds"] = time.perf_counter() - t0
    if rc != 0:
        tail = logfile.read_text(errors="replace").strip().splitlines()[-8:]
        rec.update(status="failed", reason=f"exit {rc} after {rec['seconds']:.0f} s; log tail: "
                   + " | ".join(t.strip() for t in tail)[-1500:])
    if out.exists():
        try:
            entries = json.loads(out.read_text())
            if isinstance(entries, dict):
                entries = entries.get("entries", [entries])
            rec["entries"] = entries
        except json.JSONDecodeError as exc:
            rec.update(status="failed", reason=f"unreadable JSON: {exc}")
    elif rec["status"] == "ok":
        rec.update(status="failed", reason="no JSON written")
    if det.exists():
        rec["details"] = json.loads(det.read_text())
    log(f"{name}: {rec['status']} in {rec['seconds']:.0f} s, {len(rec['entries'])} entries")
    return rec


def default_run(threads: int, date: str, timeout: float, keep_dir: Path | None = None) -> dict:
    """Wall time and peak RSS (whole process tree) of the default study, in a
    fresh directory (``keep_dir``: there, kept afterwards for a look at the
    figures; it must not exist yet or be empty)."""
    rec = {"name": "default_run", "script": "snakemake (config.yaml)", "status": "ok", "entries": [],
           "details": None}
    snakemake = Path(sys.executable).parent / "snakemake"
    if not snakemake.exists():
        snakemake = Path(shutil.which("snakemake") or "snakemake")
    import psutil

    if keep_dir is not None:
        keep_dir.mkdir(parents=True, exist_ok=True)
        if any(keep_dir.iterdir()):
            raise ValueError(f"--default-run-dir {keep_dir} is not empty: the run must start fresh")
        workdir = keep_dir.resolve()
    else:
        workdir = Path(tempfile.mkdtemp(prefix="afterkernel_default_run_"))
    base = [str(snakemake), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(REPO / "config.yaml"), "--cores", str(threads)]
    rec["command"] = " ".join(base).replace(str(workdir), "$TMPDIR").replace(str(REPO) + "/", "")
    LOGS.mkdir(parents=True, exist_ok=True)
    logfile = LOGS / "default_run.log"
    dry = subprocess.run(base + ["--dry-run", "--quiet"], capture_output=True, text=True, cwd=workdir)
    if dry.returncode != 0:
        rec.update(status="failed", reason="the dry run failed: "
                   + " | ".join((dry.stderr or dry.stdout).strip().splitlines()[-6:])[-1200:])
        if keep_dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        return rec
    log(f"default_run: {rec['command']} (log: {logfile.relative_to(REPO)})")
    peak = 0
    t0 = time.perf_counter()
    with open(logfile, "w") as lf:
        proc = psutil.Popen(base, stdout=lf, stderr=subprocess.STDOUT, cwd=workdir)
        while proc.poll() is None:
            total = 0
            try:
                for p in [proc] + proc.children(recursive=True):
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            peak = max(peak, total)
            if time.perf_counter() - t0 > timeout:
                for p in proc.children(recursive=True):
                    p.kill()
                proc.kill()
                break
            time.sleep(0.5)
    rc = proc.wait()
    secs = time.perf_counter() - t0
    import resource

    rec["seconds"] = secs
    rec["details"] = {"peak_rss_tree_gb": peak / 2**30,
                      "max_single_process_rss_gb":
                          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20,
                      "rc": rc, "outputs": sum(1 for _ in workdir.rglob("*") if _.is_file())}
    if rc != 0:
        tail = logfile.read_text(errors="replace").strip().splitlines()[-8:]
        rec.update(status="failed", reason=f"snakemake exit {rc} after {secs / 60:.1f} min: "
                   + " | ".join(tail)[-1500:])
    else:
        rec["entries"] = [
            {"name": "default_run_minutes", "value": secs / 60, "unit": "min",
             "comparator": f"none (whole default study, snakemake --cores {threads}, fresh directory)",
             "comparator_value": None, "ratio": None, "date": date},
            {"name": "default_run_peak_rss_gb", "value": peak / 2**30, "unit": "GiB",
             "comparator": "none (sum of RSS over the snakemake process tree, polled every 0.5 s)",
             "comparator_value": None, "ratio": None, "date": date},
        ]
    if keep_dir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return rec


# ----------------------------------------------------------------------------
# RESULTS.md
# ----------------------------------------------------------------------------
def fmt(v, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) < 1e-3:
            return f"{v:.2e}"
        return f"{v:.{digits}g}"
    return str(v)


def cell(v) -> str:
    """Text safe inside a Markdown table cell."""
    return str(v).replace("|", "\\|").replace("\n", " ")


def meaning(name: str):
    for prefix, m in RATIO_MEANING.items():
        if name.startswith(prefix):
            return m
    return None


def targets(entries: list[dict]) -> list[str]:
    lines = []
    for e in entries:
        m = meaning(e["name"])
        if not m or m[3] is None:
            continue
        target, kind = m[2], m[3]
        x = e.get("ratio") if kind.startswith("ratio") else e.get("value")
        if x is None:
            lines.append(f"- `{e['name']}`: not measured")
            continue
        ok = x >= target if kind.endswith(">=") else x <= target
        what = "ratio" if kind.startswith("ratio") else "value"
        miss = ""
        if not ok:
            miss = (f" (short by a factor {target / x:.2f})" if kind.endswith(">=") and x > 0
                    else f" (over by a factor {x / target:.2f})" if target > 0 else "")
        lines.append(f"- `{e['name']}`: {what} **{fmt(x)}** vs target {'>=' if kind.endswith('>=') else '<='} "
                     f"{fmt(target)} — **{'met' if ok else 'MISSED'}**{miss}"
                     + (f" (ours {fmt(e['value'])} {e.get('unit', '')}, comparator "
                        f"{fmt(e['comparator_value'])})" if what == "ratio" else ""))
    return lines


def nt_section(d: dict) -> list[str]:
    out = [f"Inputs: {d.get('inputs')}; {d.get('threads')} threads for both sides; each figure is the "
           f"median of up to {d.get('repeats')} timed runs (neural-tangents: after compilation; ours: "
           "with the engine's tf.function traced).", ""]
    if d.get("nt_versions"):
        out += ["neural-tangents side: " + ", ".join(f"{k} {v}" for k, v in d["nt_versions"].items()), ""]
    out += ["| net | n | P | implementation | median s | runs | compile ≈ first call − median / first call s | "
            "vs ours (s ratio) | agreement (max rel.) | kink examples | peak RSS GB |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in d.get("cases", []):
        ours = c["ours"]
        out.append(f"| {c['net']} | {c['n']} | {c['n_params']:,} | **ours** (after_kernel_gram) | "
                   f"**{fmt(ours['median_seconds'])}** | {len(ours['seconds'])} | "
                   f"first cold API call {fmt(ours['first_call_seconds'])} | 1 | – | – | – |")
        for impl, r in (c.get("nt") or {}).items():
            if r.get("error"):
                out.append(f"| {c['net']} | {c['n']} | | {impl} | failed: {r['error'][:120]} | | | | | | |")
                continue
            a = r.get("agreement", {})
            out.append(f"| {c['net']} | {c['n']} | | {impl} | {fmt(r['median_seconds'])} | "
                       f"{len(r['seconds'])} | {fmt(r['compile_seconds'])} / {fmt(r['first_call_seconds'])} | "
                       f"{r['median_seconds'] / ours['median_seconds']:.2f} | "
                       f"{fmt(a.get('max_rel_to_max'))} (all: {fmt(a.get('max_rel_to_max_all'))}) | "
                       f"{len(a.get('kink_examples', []))} | {fmt(r.get('peak_rss_gb'), 3)} |")
        if c.get("logits_max_abs_diff") is not None:
            out.append(f"| {c['net']} | {c['n']} | | (JAX port vs Keras logits: max abs diff "
                       f"{fmt(c['logits_max_abs_diff'])}) | | | | | | | |")
    out += ["", "Agreement = max |K_nt - K_ours| / max |K_ours| over the examples that are not on a "
            "kink; \"all\" includes them. A kink example is one whose diagonal differs by > 1e-4 "
            "relative: a max-pool window whose two largest inputs are equal up to float32 rounding, "
            "where TensorFlow and XLA pick different (equally valid) subgradients."]
    return out


def mm_section(d: dict) -> list[str]:
    out = [f"Data: {d.get('data')}; networks trained {d.get('epochs')} epochs (seed {d.get('seed')}); "
           f"{d.get('threads')} threads (SVC/libsvm is single-threaded); median of up to "
           f"{d.get('repeats')} runs; scikit-learn {d.get('sklearn')}.", "",
           "| net | solver | median s | runs | iterations | margin | gap | converged | test error | "
           "support |", "|---|---|---|---|---|---|---|---|---|---|"]
    for net, nd in d.get("nets", {}).items():
        g = nd.get("gram")
        s = nd.get("svc")
        if s:
            out.append(f"| {net} | SVC (C=1e10, intercept) | {fmt(s['median_seconds'])} | "
                       f"{len(s['seconds'])} | – | {s['margin']:.6g} (achieved {s['margin_achieved']:.6g}) | "
                       f"– | – | {s['test_error']:.4f} | {s['n_support']} |")
        for label, r in nd.get("ours", {}).items():
            out.append(f"| {net} | ours {label} | {fmt(r['median_seconds'])} | {len(r['seconds'])} | "
                       f"{r['iterations']:,} | {r['margin']:.6g} | {r['gap']:.1e} | "
                       f"{fmt(r['converged'])} | {r['test_error']:.4f} | {r['n_support']} |")
        if g:
            out.append(f"| {net} | (Gram: train {fmt(g['gram_seconds'])} s, test x train "
                       f"{fmt(g['gram_test_seconds'])} s; training {fmt(g['train_seconds'])} s; "
                       f"NN test error {g['nn_test_error']:.4f}) | | | | | | | | |")
    return out


def entry_sections(entries: list[dict]) -> list[str]:
    """The "Headlines and targets" and "All entries" sections of RESULTS.md."""
    L = ["", "## Headlines and targets", ""] + (targets(entries) or ["(no headline entries in this run)"])
    L += ["", "## All entries", "",
          "Value and comparator measured side by side in the same run (except where the comparator "
          "names a reference figure).", "",
          "| name | value | unit | comparator | comparator value | ratio | ratio is / notes |",
          "|---|---|---|---|---|---|---|"]
    for e in entries:
        mm = meaning(e["name"])
        how = (mm[0] + "; " + mm[1]) if mm else ""
        if e.get("notes"):
            how = (how + "; " if how else "") + str(e["notes"])
        L.append(f"| `{e['name']}` | {fmt(e.get('value'))} | {cell(e.get('unit', ''))} | "
                 f"{cell(e.get('comparator', ''))} | {fmt(e.get('comparator_value'))} | "
                 f"{fmt(e.get('ratio'), 3)} | {cell(how)} |")
    return L


def update_entries(name: str, json_path: Path, md_path: Path, threads: int, timeout: float) -> int:
    """Run one benchmark and merge its entries into the committed results
    (``json_path``, by entry name) and into RESULTS.md's entry sections; the
    rest of RESULTS.md (the full run's header and details) is kept, with a
    line saying which entries came later."""
    with tempfile.TemporaryDirectory(prefix="afterkernel_bench_") as tmp:
        bench = run_bench(name, False, threads, Path(tmp), timeout)
    if bench["status"] != "ok":
        log(f"{name}: {bench['status']} ({bench.get('reason')})")
        return 1
    date = dt.datetime.now().isoformat(timespec="seconds")
    new = {e["name"]: dict(e, date=e.get("date") or date) for e in bench["entries"]}
    old = json.loads(json_path.read_text())
    entries = [new.pop(e["name"], e) for e in old] + list(new.values())
    json_path.write_text(portable(json.dumps(entries, indent=1) + "\n"))
    text = md_path.read_text()
    head, _, rest = text.partition("\n## Headlines and targets\n")
    tail = rest[rest.index("\n## Benchmarks run\n"):]
    note = (f"- The `{name}` entries ({', '.join(e['name'] for e in bench['entries'])}) are from "
            f"`run_all.py --update {name}`, {date}; the header above is the full run's.")
    head = "\n".join(line for line in head.splitlines() if not line.startswith(f"- The `{name}` entries"))
    md_path.write_text(portable(head.rstrip("\n") + "\n" + note + "\n" + "\n".join(entry_sections(entries)) + tail))
    log(f"merged {len(bench['entries'])} {name} entries into {json_path} and {md_path}")
    return 0


def write_markdown(path: Path, run: dict) -> None:
    m, v = run["machine"], run["versions"]
    entries = run["entries"]
    load = run.get("load", {})
    shared = load.get("mean_other_cores", 0) > 0.25 or load.get("max_other_cores", 0) > 1.0
    L = ["# Benchmark results", "",
         "<!-- GENERATED by benchmarks/run_all.py: do not edit by hand; rerun it instead. -->", "",
         f"- Date: {run['date']} (suite took {run['seconds'] / 60:.1f} min)",
         f"- Command: `{run['command']}`",
         f"- Mode: **{'QUICK (small sizes: a smoke test, not the reference figures)' if run['quick'] else 'full'}**",
         f"- Machine: {m.get('cpu', '?')}, {m.get('cores')} cores"
         + (f" ({m['usable_cores']} usable)" if m.get("usable_cores") not in (None, m.get("cores")) else "")
         + f", {m.get('memory_gb', '?')} GB RAM, AVX-512: {fmt(m.get('avx512'))}; {m.get('platform')}",
         f"- BLAS: {'; '.join(m.get('blas') or ['?'])}",
         f"- Threads given to each side: {run['threads']}",
         "- Versions: Python " + m.get("python", "?") + ", " + ", ".join(f"{k} {x}" for k, x in v.items()),
         ]
    nt_det = next((r["details"] for r in run["benches"] if r["name"] == "neural_tangents" and r["details"]), None)
    if nt_det and nt_det.get("nt_versions"):
        L.append("- Peer venv (benchmarks/.nt-venv): "
                 + ", ".join(f"{k} {x}" for k, x in nt_det["nt_versions"].items()))
    if load:
        L.append(f"- Other work on the machine during the run: {load['mean_other_cores']:.2f} cores busy on "
                 f"average (median {load['median_other_cores']:.2f}, max {load['max_other_cores']:.2f}; "
                 f"{load['samples']} samples) — "
                 + ("**the machine was SHARED: timings are noisy; the side-by-side ratios are the "
                    "figures to read**" if shared else "the machine was essentially idle"))
    if run.get("note"):
        L.append(f"- Note: {run['note']}")
    L += entry_sections(entries)
    L += ["", "## Benchmarks run", "", "| benchmark | status | seconds | command / reason |", "|---|---|---|---|"]
    for r in run["benches"]:
        why = r.get("reason") or r.get("command", "")
        if r.get("note"):
            why += f" ({r['note']})"
        L.append(f"| {r['name']} | **{r['status']}** | {fmt(r.get('seconds'))} | "
                 f"{cell(why)[:1600]} |")
    for r in run["benches"]:
        if not r.get("details"):
            continue
        if r["name"] == "neural_tangents":
            L += ["", "## Kernel engine vs neural-tangents (full n x n Gram)", ""] + nt_section(r["details"])
            if r["details"].get("errors"):
                L += ["", "Errors: " + "; ".join(e[:300] for e in r["details"]["errors"])]
        elif r["name"] == "maxmargin":
            L += ["", "## Max-margin solvers vs scikit-learn SVC (same after-kernel matrix)", ""] + \
                mm_section(r["details"])
            if r["details"].get("errors"):
                L += ["", "Errors: " + "; ".join(e[:300] for e in r["details"]["errors"])]
        elif r["name"] == "default_run":
            d = r["details"]
            L += ["", "## Default study end to end", "",
                  f"`{r['command']}`: {r['seconds'] / 60:.1f} min, peak RSS of the process tree "
                  f"{d['peak_rss_tree_gb']:.2f} GiB (largest single process {d['max_single_process_rss_gb']:.2f} "
                  f"GiB), exit {d['rc']}, {d['outputs']} files written."]
    L += ["", "See benchmarks/README.md for what each benchmark measures.", ""]
    path.write_text(portable("\n".join(L)))


# ----------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test (minutes)")
    ap.add_argument("--with-default-run", action="store_true",
                    help="also time the whole default study (snakemake on config.yaml)")
    ap.add_argument("--default-run-dir", type=Path,
                    help="run the default study in this (new or empty) folder and keep its results")
    ap.add_argument("--only", nargs="+", choices=ORDER, help="run only these benchmarks")
    ap.add_argument("--threads", type=int, default=2, help="threads for every benchmark (default 2)")
    ap.add_argument("--timeout", type=float, default=7200, help="seconds per benchmark script")
    ap.add_argument("--md", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--json", type=Path, default=HERE / "results.json")
    ap.add_argument("--note", help="a line added to RESULTS.md")
    ap.add_argument("--render-only", action="store_true",
                    help="run nothing: rewrite RESULTS.md/results.json from the last full run's record")
    ap.add_argument("--update", choices=list(BENCHES), metavar="NAME",
                    help="run one benchmark and merge its entries into the committed results.json and "
                         "RESULTS.md (no run record needed), e.g. --update reproduction")
    ap.add_argument("--merge", action="store_true",
                    help="keep the benchmarks of the previous run (benchmarks/.cache/last_run.json) "
                         "that this one does not rerun, e.g. with --only default_run")
    args = ap.parse_args(argv)

    if args.update:
        return update_entries(args.update, args.json, args.md, args.threads, args.timeout)
    if args.render_only:
        if not LAST_RUN.exists():
            ap.error(f"--render-only: no {LAST_RUN}")
        run = json.loads(LAST_RUN.read_text())
        args.json.write_text(portable(json.dumps(run["entries"], indent=1) + "\n"))
        write_markdown(args.md, run)
        log(f"re-rendered {args.md} and {args.json} from {LAST_RUN}")
        return 0
    date = dt.datetime.now().isoformat(timespec="seconds")
    names = [n for n in ORDER if (args.only is None or n in args.only)]
    if "default_run" in names and not args.with_default_run and not (args.only and "default_run" in args.only):
        names.remove("default_run")
    sampler = LoadSampler()
    sampler.start()
    t0 = time.perf_counter()
    benches = []
    argv_txt = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    machine, vers = machine_info(), versions()
    earlier = []
    if args.merge and LAST_RUN.exists():
        prev = json.loads(LAST_RUN.read_text())
        if bool(prev.get("quick")) != args.quick:
            log(f"--merge: the previous run was {'quick' if prev.get('quick') else 'full'}; not merged")
            prev = {}
        for b in prev.get("benches", []):
            if b["name"] not in names:
                b = dict(b)
                b["note"] = (b.get("note", "") + f" from the run of {b.get('date', prev.get('date'))}").strip()
                b.setdefault("date", prev.get("date"))
                earlier.append(b)

    def write(final: bool) -> int:
        run = {"date": date, "seconds": time.perf_counter() - t0, "quick": args.quick,
               "threads": args.threads,
               "note": "; ".join(x for x in [args.note, None if final else
                                             f"IN PROGRESS: {len(benches)} of {len(names)} benchmarks done"]
                                 if x),
               "command": f".venv/bin/python benchmarks/run_all.py {argv_txt}".strip(),
               "machine": machine, "versions": vers, "load": sampler.summary(),
               "benches": sorted(earlier + benches, key=lambda b: ORDER.index(b["name"]))}
        entries = []
        for b in run["benches"]:
            for e in b["entries"]:
                e = dict(e)
                e.setdefault("date", date)
                for k in ("name", "value", "unit", "comparator", "comparator_value", "ratio"):
                    e.setdefault(k, None)
                entries.append(e)
        run["entries"] = entries
        args.json.write_text(portable(json.dumps(entries, indent=1) + "\n"))
        write_markdown(args.md, run)
        if final and args.md.resolve() == (HERE / "RESULTS.md").resolve():
            LAST_RUN.parent.mkdir(parents=True, exist_ok=True)
            LAST_RUN.write_text(json.dumps(run, indent=1))
        return len(entries)

    with tempfile.TemporaryDirectory(prefix="afterkernel_bench_") as tmp:
        for name in names:
            if name == "default_run":
                try:
                    benches.append(default_run(args.threads, date, args.timeout, args.default_run_dir))
                except Exception as exc:  # noqa: BLE001
                    benches.append({"name": name, "status": "failed", "entries": [], "details": None,
                                    "reason": f"{type(exc).__name__}: {exc}"})
            else:
                benches.append(run_bench(name, args.quick, args.threads, Path(tmp), args.timeout))
            benches[-1]["date"] = date
            write(final=False)  # a run stopped half-way still leaves what it measured
    sampler.stop.set()
    n_entries = write(final=True)
    log(f"wrote {args.md} and {args.json} ({n_entries} entries)")
    bad = [b["name"] for b in benches if b["status"] not in ("ok", "skipped")]
    if bad:
        log(f"not ok: {', '.join(bad)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
