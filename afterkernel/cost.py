"""Cost model of the jobs: CPU (or GPU) seconds, peak memory and disk.

Read at parse time by the rules' ``resources:`` (every cluster job re-parses
the workflow), so it is pure Python: the networks' sizes are computed from
their specs, the data sets' sizes from the config's caps and the known class
counts, without TensorFlow, h5py or a file. ``python -m afterkernel.estimate``
sums it over a config's jobs.

Work is counted in multiply-adds (MACs), not parameters: a 3×3 convolution's
cost grows with the image area, its parameter count does not (``vgg`` has
fewer parameters than ``fc`` but costs ~100× more per example). Every
constant is in :data:`COSTS`, with the measurement it comes from
(``benchmarks/results.json``, 2 cores of this machine); CPU-seconds are
wall-seconds × threads of the measurement, so runtimes on one thread are
upper bounds where two threads were less than twice as fast.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from afterkernel.vocabulary import dataset_of

#: The measured figures (2 threads; see benchmarks/RESULTS.md) and the
#: assumptions, each with where it comes from.
COSTS: dict[str, tuple[float, str]] = {
    "threads_measured": (2, "the benchmarks below ran on 2 threads, the reproduction's jobs on 1 "
                            "(configs/reproduction.yaml, 2026-12-07: reproduction/runs.json)"),
    "train_epoch_cpu_s_fc": (0.26, "reproduction run, 1 thread: fc 4x94, 100 epochs of 11,982 / 11,339 MNIST "
                                   "images, 28.8-33.0 s a job less TensorFlow's start-up, over 100 (the "
                                   "benchmark's 2-thread 0.29 s wall is 0.59 CPU-s: two threads buy little)"),
    "train_epoch_cpu_s_vgg": (13.0, "reproduction run, 1 thread: vgg 26/52, 10 epochs of 11,982 / 11,339 MNIST "
                                    "images, 172-187 s a job less start-up, over 10 and its evaluations"),
    "train_examples": (11982, "the examples of those epochs"),
    "train_epoch_cpu_s_vgg_cifar": (10.3, "reproduction run (part 2), 1 thread: vgg 26/52, 100 epochs of 10,000 "
                                          "CIFAR-10 images, 1,444-1,479 s a job less start-up, over 100 and its "
                                          "evaluations"),
    "train_examples_cifar": (10000, "the examples of those epochs"),
    "eval_fraction": (1 / 3, "assumed: the per-epoch evaluation is a forward pass, 1/3 of a forward+backward step"),
    "augment_s_per_image": (3.05e-5, "reproduction run, 1 thread: fc with rotation 15° and shift 1 on 11,339 "
                                     "MNIST images, 63.6 s against 28.8 s plain for 100 epochs: the image "
                                     "transform's cost per 28x28 image and epoch, whatever the network"),
    "epochs_to_target": (20.0, "reproduction run: fc on all of MNIST reaches training loss 0.01 at lr 0.01 in "
                               "18-23 epochs (lr 0.03: 7-11, lr 0.1: 4-5); the default's 1,000 images in 39-48"),
    "epochs_to_target_lr_power": (0.6, "the same runs: epochs ~ lr^-0.6 (20 -> 5 from lr 0.01 to 0.1)"),
    "epochs_to_target_n_power": (0.33, "the same runs: epochs ~ n^-0.33 (45 at 1,000 images, 20 at 12,000)"),
    "tf_startup_cpu_s": (7.0, "default run (results/benchmarks, cpu_time): fc train and kernel jobs, whose "
                              "work is ~1 s, take 5.4-8.6 CPU-s: TensorFlow's import and graph building"),
    "kernel_grad_examples_per_s": (494.49, "grad_vs_batched_gradient: vgg per-example gradients, n=2000"),
    "gram_gflops": (154.16, "gram_matmul_efficiency: float32 tile matmuls, vgg Gram n=2000"),
    "kernel_snapshot_cpu_s_vgg": (145.0, "reproduction run, 1 thread: one vgg snapshot of 11,982 + 1,984 MNIST "
                                         "images, test sample 1,000, jacobian_budget_mb 2048 (a 4-snapshot job "
                                         "580 s)"),
    "kernel_snapshot_cpu_s_fc": (15.5, "reproduction run, 1 thread: one fc snapshot, same images and settings "
                                       "(6-snapshot jobs 96-111 s, 1-snapshot jobs 21-26 s, less start-up)"),
    "kernel_peak_mb_vgg": (3349.0, "peak_rss_gb_vgg_mnist3v8: that job, jacobian_budget_mb 2048"),
    "dense_gram_copies": (6.0, "measurements.md: fc factorised Gram n=12,000 peaks at 3.7 GB = 6.4 n² float32"),
    "svm_s_per_pair": (1.2e-8, "reproduction run: exact-solver jobs on MNIST's n ≈ 12,000 Grams, 1-3.5 s wall "
                               "each with reading the Gram file (the non-separable CIFAR-10 kernels cost more: "
                               "maxmargin_vs_svc_seconds_vgg_cifar, nonseparable_certificate_seconds_cifar)"),
    "svm_startup_cpu_s": (0.8, "reproduction run: Python, h5py and the solver's imports of an svm job"),
    "python_base_mb": (100.0, "default run (results/benchmarks, max_rss): svm jobs at n=1,000, 91-101 MB"),
    "tf_base_mb": (620.0, "default run (results/benchmarks, max_rss): fc train jobs, 613-619 MB"),
    "prepare_cpu_s": (60.0, "assumed: reading and checking one source file"),
    "local_cpu_s_per_row": (0.05, "assumed: aggregate reads each table row's small files"),
    "figure_cpu_s": (10.0, "assumed: one matplotlib figure (importing matplotlib and pandas)"),
    "gpu_speedup": (20.0, "assumed, unmeasured here (no GPU): one GPU = this many CPU cores on MACs"),
    "runtime_safety": (2.0, "requested runtime = this × estimate (noisy nodes, slower CPUs)"),
    "memory_safety": (1.5, "requested memory = this × estimate"),
    "min_runtime_min": (10.0, "no Slurm request below this"),
}


def c(name: str) -> float:
    return float(COSTS[name][0])


# ---------------------------------------------------------------------------
# the data: images per problem

#: images per class of the full data sets (train, test), index = class id
CLASS_COUNTS = {
    "mnist": ((5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
              (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)),
    "fashion_mnist": ((6000,) * 10, (1000,) * 10),
    "cifar10": ((5000,) * 10, (1000,) * 10),
    "cifar100": ((500,) * 100, (100,) * 100),
}
#: the embedded files (afterkernel/embedded/README.md): images per class where
#: they are not the full data set's (MNIST 3, 5, 6, 8 are embedded in full)
EMBEDDED_PER_CLASS = {"cifar10": (300, 100)}
INPUT_SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3),
                "cifar100": (32, 32, 3)}


@functools.lru_cache(maxsize=None)
def _own_info(source: str, path: str, class_names: tuple[str, ...] | None):
    """A user's data set as the planning surveyed it (headers only), once per
    process: the rules ask for every job's resources."""
    from afterkernel.data.survey import describe

    spec = {"source": source, "path": path} | ({"class_names": list(class_names)} if class_names else {})
    return describe(spec)


def own_dataset(config: Mapping, name: str):
    """The :class:`~afterkernel.data.survey.DatasetInfo` of a user's data set
    ``datasets.NAME`` (sources npz and images: real image counts and shape),
    else ``None`` (keras' and the embedded data sets are tabled above)."""
    spec = (config.get("datasets") or {}).get(name) or {}
    if spec.get("source") not in ("npz", "images"):
        return None
    names = spec.get("class_names")
    return _own_info(spec["source"], str(spec["path"]), tuple(names) if names else None)


def input_shape(problem: str, config: Mapping | None = None) -> tuple[int, int, int]:
    name = dataset_of(problem)
    own = own_dataset(config or {}, name)
    if own is not None:
        return tuple(own.image_shape)
    spec = ((config or {}).get("datasets") or {}).get(name) or {}
    return INPUT_SHAPES[spec.get("dataset", name)]


def _per_class(config: Mapping, problem: str) -> list[tuple[int, int]]:
    """(train, test) images of each of ``problem``'s two classes, uncapped."""
    data = config.get("data", {})
    name, rest = dataset_of(problem), problem.split("-", 1)[1]
    own = own_dataset(config, name)
    if own is not None:
        from afterkernel.data.problems import parse_problem

        classes = parse_problem(problem, {name: own.class_names}).classes
        return [(own.counts["train"][k], own.counts["test"][k]) for k in classes]
    spec = (config.get("datasets") or {}).get(name) or {"source": data.get("source"), "dataset": name}
    dataset, source = spec.get("dataset", name), spec.get("source")
    if source == "embedded" and dataset in EMBEDDED_PER_CLASS:
        return [EMBEDDED_PER_CLASS[dataset]] * 2
    train, test = CLASS_COUNTS[dataset]
    # class names (cifar10-cat-dog): counts are the same for every class
    m = re.fullmatch(r"(\d+)v(\d+)", rest)
    a, b = (int(m.group(1)), int(m.group(2))) if m else (0, 1)
    return [(train[a], test[a]), (train[b], test[b])]


def problem_sizes(config: Mapping, problem: str, arch: str | None = None) -> tuple[int, int]:
    """(n_train, n_test) of ``problem`` under the config's source and the
    caps of (``problem``, ``arch``) (:func:`afterkernel.plan.caps_of`;
    ``arch`` ``None``: the problem's own): ``mnist-3v8`` is 11,982 / 1,984
    in full (keras, dir or embedded), ``cifar10-cat-dog`` 600 / 200 embedded,
    a user's data set what its file or folder holds."""
    from afterkernel.plan import caps_of

    caps = caps_of(config, problem, arch)
    capped = [[v if cap is None else min(v, int(cap)) for v, cap in zip(cls, caps)]
              for cls in _per_class(config, problem)]
    return capped[0][0] + capped[1][0], capped[0][1] + capped[1][1]


# ---------------------------------------------------------------------------
# the networks (afterkernel.models), counted from their specs


@dataclass(frozen=True)
class NetSize:
    """``params``: trainable parameters; ``macs``: multiply-adds of one
    forward pass per example; ``gram_dim``: multiply-adds per pair of the
    after-kernel Gram (conv weights: their count, explicit gradients; dense
    layers: in + 1 + out, the factorisation (A Aᵀ + 1) ⊙ (D Dᵀ)); ``embed``:
    dim h_{L-1}; ``dense_only``: the Gram is all factorisation (n² temporaries)."""

    params: int
    macs: int
    gram_dim: int
    embed: int
    dense_only: bool


def _dense(width_in: int, width_out: int) -> tuple[int, int, int]:
    return (width_in + 1) * width_out, width_in * width_out, width_in + 1 + width_out


def _vgg(shape, widths: Sequence[int] = (26, 52), convs_per_block: int = 2) -> tuple[int, int, int, int]:
    h, w, ch = shape
    params = macs = gram = 0
    for width in widths:
        for _ in range(convs_per_block):
            params += (9 * ch + 1) * int(width)
            macs += h * w * 9 * ch * int(width)
            ch = int(width)
        h, w = -(-h // 2), -(-w // 2)  # 2×2 pooling, stride 2, 'same'
    gram = params
    return params, macs, gram, h * w * ch


def _fc(shape, widths: Sequence[int] = (94, 94, 94, 94)) -> tuple[int, int, int, int]:
    width_in, params, macs, gram = shape[0] * shape[1] * shape[2], 0, 0, 0
    for width in widths:
        p, m, g = _dense(width_in, int(width))
        params, macs, gram, width_in = params + p, macs + m, gram + g, int(width)
    return params, macs, gram, width_in


def _sum(shape, width: int = 16) -> tuple[int, int, int, int]:
    p, m, g = _dense(1, int(width))
    return p, m + shape[0] * shape[1] * shape[2], g, int(width)


_HIDDEN = {"vgg": _vgg, "fc": _fc, "sum": _sum}
#: an architecture type the model does not know: sized as the paper's fc on the input
UNKNOWN_TYPE = "fc"


def net_size(spec: Mapping, shape: Sequence[int]) -> NetSize:
    """The sizes of network ``spec`` (a config's ``architectures`` entry) on
    inputs of ``shape`` (H, W, C), with the final ``Dense(1)`` logit."""
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    kind = spec["type"] if spec["type"] in _HIDDEN else UNKNOWN_TYPE
    if kind != spec["type"]:
        kwargs = {}
    params, macs, gram, embed = _HIDDEN[kind](tuple(shape), **kwargs)
    p, m, g = _dense(embed, 1)
    return NetSize(params + p, macs + m, gram + g, embed, kind != "vgg")


# ---------------------------------------------------------------------------
# the constants derived from the measurements


def _paper_net(kind: str) -> NetSize:
    return net_size({"type": kind}, INPUT_SHAPES["mnist"])


@dataclass(frozen=True)
class Rates:
    """CPU-seconds per unit of work, fitted from :data:`COSTS`."""

    train_mac: float  # per multiply-add of one example's SGD step
    train_step: float  # per SGD step, whatever the network (fc's epoch is mostly this)
    grad_mac: float  # per multiply-add of one example's per-example gradient
    gram_mac: float  # per multiply-add of a Gram matmul
    kernel_scale: float  # measured / modelled snapshot, conv nets (the work the model leaves out)
    kernel_scale_dense: float  # the same, for nets of dense layers only (the factorised Gram)


def rates() -> Rates:
    t, n = c("threads_measured"), c("train_examples")
    fc, vgg = _paper_net("fc"), _paper_net("vgg")
    steps = math.ceil(n / 32)
    # cpu = steps * step + n * macs * mac: fc fixes the step; the rate per
    # multiply-add is the geometric mean of what vgg's epochs on MNIST and on
    # CIFAR-10 imply (one rate cannot meet both: CIFAR-10's took less per
    # multiply-add), so that each is within its square root of the model
    cpu_fc, cpu_vgg = c("train_epoch_cpu_s_fc"), c("train_epoch_cpu_s_vgg")
    mnist_mac = (cpu_vgg - cpu_fc) / (n * (vgg.macs - fc.macs))
    mnist_step = (cpu_fc - n * fc.macs * mnist_mac) / steps
    n_c, vgg_c = c("train_examples_cifar"), net_size({"type": "vgg"}, INPUT_SHAPES["cifar10"])
    cifar_mac = (c("train_epoch_cpu_s_vgg_cifar") - math.ceil(n_c / 32) * mnist_step) / (n_c * vgg_c.macs)
    train_mac = math.sqrt(mnist_mac * cifar_mac)
    train_step = (cpu_fc - n * fc.macs * train_mac) / steps
    grad_mac = t / (c("kernel_grad_examples_per_s") * vgg.macs)
    gram_mac = t * 2 / (c("gram_gflops") * 1e9)
    partial = Rates(train_mac, train_step, grad_mac, gram_mac, 1.0, 1.0)
    vgg_scale = c("kernel_snapshot_cpu_s_vgg") / _snapshot_cpu_s(vgg, 11982, 1984, 1000, partial)
    fc_scale = c("kernel_snapshot_cpu_s_fc") / _snapshot_cpu_s(fc, 11982, 1984, 1000, partial)
    return Rates(train_mac, train_step, grad_mac, gram_mac, vgg_scale, fc_scale)


# ---------------------------------------------------------------------------
# the jobs


@dataclass(frozen=True)
class JobCost:
    """One job: ``cpu_s`` CPU-seconds (``gpu_s`` its GPU-seconds where it
    runs on a GPU), ``mem_mb`` peak resident memory, ``disk_mb`` the results
    it keeps, ``temp_mb`` its temporary files (Gram files)."""

    cpu_s: float
    mem_mb: float
    disk_mb: float = 0.0
    temp_mb: float = 0.0
    gpu_s: float = 0.0

    def runtime_minutes(self, threads: int = 1, gpu: bool = False) -> int:
        """The Slurm request for one attempt: the estimate × ``runtime_safety``."""
        seconds = self.gpu_s if gpu and self.gpu_s else self.cpu_s / max(int(threads), 1)
        return int(math.ceil(max(c("min_runtime_min"), c("runtime_safety") * seconds / 60)))

    def request_mb(self) -> int:
        return int(math.ceil(c("memory_safety") * self.mem_mb))


MB = 1e6


def _gpu_seconds(cpu_mac_s: float, cpu_other_s: float) -> float:
    """GPU time: the MAC work at ``gpu_speedup`` CPU cores, the rest as on one core."""
    return cpu_mac_s / c("gpu_speedup") + cpu_other_s


def _run_facts(config: Mapping, run) -> tuple[NetSize, int, int, tuple[int, int, int]]:
    shape = input_shape(run.problem, config)
    n, m = problem_sizes(config, run.problem, run.arch)
    return net_size(config["architectures"][run.arch], shape), n, m, shape


def epochs_to_target(learning_rate: float, n: int, cap: int) -> int:
    """Epochs a learning-rate run takes to its loss target: the model fitted
    on the reproduction's runs, epochs_to_target × (lr / 0.01)^-a × (n /
    12,000)^-b, at most the ``max_epochs`` cap."""
    epochs = (c("epochs_to_target") * (learning_rate / 0.01) ** -c("epochs_to_target_lr_power")
              * (n / 12000) ** -c("epochs_to_target_n_power"))
    return int(min(cap, max(1, math.ceil(epochs))))


def training_epochs(config: Mapping, run, snapshot_epochs: Sequence[int], bound: bool = False) -> int:
    """Epochs a run trains: its last snapshot, or for a learning-rate run
    :func:`epochs_to_target` (``bound``: the ``max_epochs`` cap)."""
    if not run.target_mode:
        return max(snapshot_epochs, default=0)
    cap = int(config["training"]["max_epochs"])
    return cap if bound else epochs_to_target(run.learning_rate, problem_sizes(config, run.problem, run.arch)[0],
                                              cap)


def train_cost(config: Mapping, run, snapshot_epochs: Sequence[int], bound: bool = True) -> JobCost:
    """A ``train`` job: SGD epochs (batch ``training.batch_size``) and each
    epoch's evaluation on the train and test sets (history). ``bound``: a
    learning-rate run at its epoch cap (what a Slurm request must cover),
    else at the fitted epochs to its target (the estimate)."""
    net, n, m, shape = _run_facts(config, run)
    r, epochs = rates(), training_epochs(config, run, snapshot_epochs, bound)
    steps = math.ceil(n / int(config["training"]["batch_size"]))
    pixels = shape[0] * shape[1] * shape[2]
    aug_s = epochs * n * c("augment_s_per_image") * pixels / 784 if run.augmented else 0.0
    mac_s = epochs * n * net.macs * r.train_mac + (epochs + 1) * (n + m) * net.macs * r.train_mac * c("eval_fraction")
    other_s = epochs * steps * r.train_step + aug_s + c("tf_startup_cpu_s")
    snapshots = 2 if run.target_mode else len(snapshot_epochs)
    # the data twice (arrays and the batches' copies), weights, gradients and the
    # optimizer's, every snapshot; a batch's activations are within tf_base_mb
    mem = c("tf_base_mb") + (2 * 4 * (n + m) * pixels + 4 * net.params * (snapshots + 4)) / MB
    return JobCost(mac_s + other_s, mem, disk_mb=4 * net.params * snapshots / MB + 0.1,
                   gpu_s=_gpu_seconds(mac_s, other_s))


def gram_file_mb(n: int, m: int, snapshots: int) -> float:
    """Today's Gram file: per snapshot, after and conjugate, the train (n, n)
    and test×train (m, n) Grams in float32."""
    return snapshots * 2 * 4 * (n * n + m * n) / MB


def _snapshot_cpu_s(net: NetSize, n: int, m: int, k: int, r: Rates) -> float:
    """One snapshot's kernels: per-example gradients of the train and test
    images and of the 6 transforms of the k-image test sample, the after and
    conjugate train and test×train Grams (train: symmetric, half)."""
    grads = net.macs * (n + m + 6 * k) * r.grad_mac
    pairs = n * n / 2 + m * n
    dense_pairs = n * n + m * n  # the factorisation's elementwise products are not halved
    gram = ((net.gram_dim * dense_pairs) if net.dense_only else (net.gram_dim * pairs)) * r.gram_mac
    return (grads + gram + net.embed * pairs * r.gram_mac) * (r.kernel_scale_dense if net.dense_only
                                                              else r.kernel_scale)


def kernel_cost(config: Mapping, run, snapshots: Sequence[str]) -> JobCost:
    """A ``kernel`` job: one run's snapshots (:func:`_snapshot_cpu_s`)."""
    net, n, m, shape = _run_facts(config, run)
    kernels = config["kernels"]
    k = m if kernels.get("test_sample") is None else min(m, int(kernels["test_sample"]))
    snap_s = len(snapshots) * _snapshot_cpu_s(net, n, m, k, rates())
    budget = float(kernels.get("jacobian_budget_mb") or 2048)
    grams = 4 * (n * n + m * n) / MB
    data = 4 * (n + m) * shape[0] * shape[1] * shape[2] / MB
    work = c("dense_gram_copies") * 4 * (n + m) ** 2 / MB if net.dense_only else budget
    # fitted: the vgg job's peak less its budget, Gram and data
    base = c("kernel_peak_mb_vgg") - 2048 - 4 * (11982 ** 2 + 1984 * 11982) / MB - 4 * 13966 * 784 / MB
    metrics = len(snapshots) * 2 * 6 * k * 8 / MB + 0.1
    return JobCost(snap_s + c("tf_startup_cpu_s"), base + grams + data + work, disk_mb=metrics,
                   temp_mb=gram_file_mb(n, m, len(snapshots)),
                   gpu_s=_gpu_seconds(snap_s, c("tf_startup_cpu_s")))


def svm_cost(config: Mapping, run) -> JobCost:
    """An ``svm`` job: reading the (n, n) Gram and the exact solver; memory:
    the float32 Gram and the solver's float64 working set."""
    n, m = problem_sizes(config, run.problem, run.arch)
    solve = n * n * c("svm_s_per_pair")
    mem = c("python_base_mb") + (4 * n * n + 8 * n * n / 4 + 8 * m) / MB
    return JobCost(solve + c("svm_startup_cpu_s"), mem, disk_mb=8 * m / MB + 0.01)


def data_cost(config: Mapping, problem: str, arch: str | None = None) -> JobCost:
    """A ``prepare_data`` job: the two classes' images as float32 (the
    subset of (``problem``, ``arch``)'s caps)."""
    n, m = problem_sizes(config, problem, arch)
    shape = input_shape(problem, config)
    size = 4 * (n + m) * shape[0] * shape[1] * shape[2] / MB
    return JobCost(c("prepare_cpu_s"), c("python_base_mb") + 3 * size + 200, disk_mb=size)


def local_cost(table_rows: int, figures: int) -> JobCost:
    """``aggregate``, ``claims`` and the figures on the submit host, together."""
    return JobCost(table_rows * c("local_cpu_s_per_row") + figures * c("figure_cpu_s"),
                   c("python_base_mb") + 300 + table_rows * 0.002, disk_mb=1 + table_rows * 0.001)
