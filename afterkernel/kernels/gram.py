"""Gram matrices of the after kernel and of its conjugate projection, built
tile by tile (paper §2: K = J Jᵀ, K_c = H Hᵀ, H = h_{L-1}(x)).

Tiles are accumulated in float32. A *panel* of rows is kept in memory (one
contiguous array of explicit gradients plus the dense factors, within the
budget); its own upper triangle is computed by column strips (syrk for the
diagonal squares, gemm above them), then the remaining examples are streamed
past it in blocks, so only upper tiles are computed (and mirrored). When
everything fits (FC nets: only the factors; VGG on MNIST: one or two panels)
each example's gradients are computed once or twice.

Tiles go to a *sink*: ``put(r0, c0, tile, mirror)`` stores ``tile`` at rows
r0.., columns c0.. and, with ``mirror``, its transpose at the mirrored place;
``result()`` is what the Gram function returns. :class:`GramArray` is the
in-memory sink; the kernel job writes straight into the HDF5 file
(:class:`~afterkernel.kernels.files.GramFileSink`).

The budget covers the per-example gradient storage (panel + streamed block)
and the block's working memory (an estimate); an in-memory Gram (n² floats),
two tile-sized scratch arrays for the factors' Grams (kept by the engine
between Grams) and TensorFlow's runtime come on top.
"""

from __future__ import annotations

import logging

import numpy as np

from afterkernel.kernels.engine import (DEFAULT_BLOCK_SIZE, DEFAULT_BUDGET_MB, BlockGradients,
                                        KernelEngine, Progress, as_batch, blocks)
from afterkernel.kernels.tiles import gemm_nt, mirror_upper, syrk_upper

log = logging.getLogger(__name__)

STRIP_COLUMNS = 2048  # columns per matmul of a panel's own Gram (big tiles: efficient BLAS)


class Panel:
    """Rows of several blocks held together: one contiguous (rows, P_exp)
    array of explicit gradients, and the dense factors."""

    def __init__(self, engine: KernelEngine, rows: int):
        ops = engine.ops
        self.engine = engine
        self.ops = ops
        self.filled = 0
        self.explicit = ops.empty(rows, engine.p_explicit) if engine.p_explicit else None
        self.factors = [(ops.empty(rows, di), ops.empty(rows, do)) for di, do in engine.factor_dims]

    def add_block(self, x) -> BlockGradients:
        """Compute the block's gradients straight into the next rows."""
        i0, ops = self.filled, self.ops
        target = None
        if self.explicit is not None and isinstance(self.explicit, np.ndarray):
            target = self.explicit[i0:i0 + len(x)]
        g = self.engine.block_gradients(x, out=target)
        if self.explicit is not None and target is None:
            self.explicit = ops.put_rows(self.explicit, i0, g.explicit)
        self.factors = [(ops.put_rows(pa, i0, a), ops.put_rows(pd, i0, d))
                        for (pa, pd), (a, d) in zip(self.factors, g.factors)]
        self.filled += g.n
        return g

    def rows(self, i0: int, i1: int) -> BlockGradients:
        """Rows i0..i1 as block gradients (views on CPU; no features)."""
        ops = self.ops
        ex = None if self.explicit is None else ops.rows(self.explicit, i0, i1)
        fac = [(ops.rows(a, i0, i1), ops.rows(d, i0, i1)) for a, d in self.factors]
        return BlockGradients(ex, fac, np.empty((i1 - i0, 0), np.float32))


class GramArray:
    """In-memory sink of a symmetric Gram matrix built tile by tile (the
    default of :func:`gram_with_conjugate`): an (n, n) float32 array."""

    def __init__(self, n: int, out: np.ndarray | None = None):
        self.K = np.empty((n, n), np.float32) if out is None else out

    def put(self, r0: int, c0: int, tile: np.ndarray, mirror: bool) -> None:
        h, w = tile.shape
        self.K[r0:r0 + h, c0:c0 + w] = tile
        if mirror:
            self.K[c0:c0 + w, r0:r0 + h] = tile.T

    def result(self):
        return self.K


class _FeatureRows:
    """The conjugate features of the examples, filled block by block ((n, d)
    float32, allocated when the first block gives d)."""

    def __init__(self, n: int):
        self.n = n
        self.array = None

    def put(self, s: int, e: int, h: np.ndarray) -> None:
        if self.array is None:
            self.array = np.empty((self.n, int(h.shape[1])), np.float32)
        self.array[s:e] = h

    def result(self) -> np.ndarray:
        return np.empty((0, 0), np.float32) if self.array is None else self.array


def _panel_blocks(engine: KernelEngine, n: int, block_size, jacobian_budget_mb,
                  panel_rows: int | None = None):
    """(block size, rows per panel, the panels as lists of (start, end) blocks)."""
    b = engine.block_size_for(block_size, jacobian_budget_mb)
    p = engine.panel_rows_for(b, jacobian_budget_mb) if panel_rows is None else \
        max(b, (int(panel_rows) // b) * b)
    bl = blocks(n, b)
    per_panel = max(1, p // b)
    return b, p, [bl[i:i + per_panel] for i in range(0, len(bl), per_panel)]


def gram_with_conjugate(engine: KernelEngine, x, *, block_size: int | None = DEFAULT_BLOCK_SIZE,
                        jacobian_budget_mb: float = DEFAULT_BUDGET_MB, sink=None,
                        what: str = "after kernel Gram", panel_rows: int | None = None,
                        strip_columns: int = STRIP_COLUMNS):
    """Symmetric after-kernel Gram of ``x`` and, from the same forward passes,
    the conjugate features h_{L-1}(x) (n, d). Returns ``(sink.result(), H)``;
    the default sink is a :class:`GramArray` (an (n, n) float32 array); a
    sink that writes tiles to a file keeps the n² matrix out of memory.
    ``panel_rows`` overrides the panel size derived from the budget,
    ``strip_columns`` the width of the matmuls of a panel's own Gram (tests,
    tuning)."""
    x = as_batch(x)
    n = len(x)
    b, p, panels = _panel_blocks(engine, n, block_size, jacobian_budget_mb, panel_rows)
    evals = sum(min(sum(e - s for s, e in pb) + (n - pb[-1][1]), n) for pb in panels)
    log.info("%s: n=%d, P=%d (%d explicit, %d factorised layers), block %d, panel %d rows, "
             "%d panel(s), %d gradient evaluations, backend %s", what, n, engine.n_params,
             engine.p_explicit, len(engine.factor_dims), b, min(p, n), len(panels), evals,
             engine.ops.name)
    sink = GramArray(n) if sink is None else sink
    progress = Progress(what, evals)
    features = _FeatureRows(n)
    for pb in panels:
        # one function call per panel: its arrays (and views of them) are freed
        # before the next panel is allocated
        _panel_pass(engine, x, pb, b, sink, features, progress, strip_columns)
    progress.finish()
    return sink.result(), features.result()


def _panel_pass(engine: KernelEngine, x: np.ndarray, pb, b: int, sink, features: _FeatureRows,
                progress: Progress, strip_columns: int) -> None:
    """Fill one panel (blocks ``pb``), emit its upper triangle and the tiles of
    all later examples (streamed) against it."""
    ops = engine.ops
    n = len(x)
    ps, pe = pb[0][0], pb[-1][1]
    panel = Panel(engine, pe - ps)
    for s, e in pb:
        g = panel.add_block(x[s:e])
        progress.add(e - s)
        features.put(s, e, ops.to_numpy(g.h))
    # the panel's own upper triangle, by column strips: rows ps..c1 x columns c0..c1
    rows = pe - ps
    for c0, c1 in blocks(rows, max(1, int(strip_columns))):
        strip = panel.rows(c0, c1)
        # diagonal square by syrk (half the work, exactly symmetric)
        sink.put(ps + c0, ps + c0, ops.to_numpy(engine.tile(strip, strip, True)), False)
        if c0 > 0:
            sink.put(ps, ps + c0, ops.to_numpy(engine.tile(panel.rows(0, c0), strip)), True)
    # the rest of the examples, streamed past the panel
    head = panel.rows(0, rows)
    for s, e in blocks(n - pe, b):
        s, e = s + pe, e + pe
        g = engine.block_gradients(x[s:e])
        progress.add(e - s)
        sink.put(ps, s, ops.to_numpy(engine.tile(head, g)), True)


def _cross_gram(engine: KernelEngine, x1, x2, *, block_size, jacobian_budget_mb, what):
    x1, x2 = as_batch(x1), as_batch(x2)
    n1, n2 = len(x1), len(x2)
    b, _, panels = _panel_blocks(engine, n1, block_size, jacobian_budget_mb)
    log.info("%s: %d x %d, block %d, %d panel(s)", what, n1, n2, b, len(panels))
    K = np.empty((n1, n2), np.float32)
    ops = engine.ops
    progress = Progress(what, n1 + len(panels) * n2)
    for pb in panels:
        ps, pe = pb[0][0], pb[-1][1]
        panel = Panel(engine, pe - ps)
        for s, e in pb:
            panel.add_block(x1[s:e])
            progress.add(e - s)
        head = panel.rows(0, pe - ps)
        for s, e in blocks(n2, b):
            g = engine.block_gradients(x2[s:e])
            progress.add(e - s)
            K[ps:pe, s:e] = ops.to_numpy(engine.tile(head, g))
        del panel, head
    progress.finish()
    return K


def after_kernel_gram(model, x1, x2=None, *, block_size: int | None = DEFAULT_BLOCK_SIZE,
                      jacobian_budget_mb: float = DEFAULT_BUDGET_MB, backend: str | None = None,
                      engine: KernelEngine | None = None) -> np.ndarray:
    """After-kernel Gram matrix K(x1, x2) = J(x1) J(x2)ᵀ, float32 (n1, n2).

    ``x2=None``: the symmetric Gram of ``x1`` (only upper tiles computed).
    Unscaled (divide by ``scale**2`` of
    :func:`~afterkernel.kernels.diagonals.feature_scale` for the paper's
    normalisation)."""
    engine = engine or KernelEngine.for_model(model, backend=backend)
    if x2 is None:
        return gram_with_conjugate(engine, x1, block_size=block_size,
                                   jacobian_budget_mb=jacobian_budget_mb)[0]
    return _cross_gram(engine, x1, x2, block_size=block_size,
                       jacobian_budget_mb=jacobian_budget_mb, what="after kernel cross Gram")


def conjugate_features(model, x, block_size: int = 1024) -> np.ndarray:
    """h_{L-1}(x), the input of the final layer, flattened: float32 (n, d)."""
    from afterkernel.models import conjugate_model

    import tensorflow as tf

    cm = conjugate_model(model)
    fn = tf.function(lambda t: cm(t, training=False), reduce_retracing=True, autograph=False)
    x = as_batch(x)
    parts = [np.asarray(fn(tf.convert_to_tensor(x[s:e]))).reshape(e - s, -1)
             for s, e in blocks(len(x), int(block_size))]
    if not parts:
        return np.empty((0, int(np.prod(cm.output_shape[1:]))), np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def conjugate_gram(h: np.ndarray, sink=None, strip_columns: int = STRIP_COLUMNS):
    """Gram H Hᵀ of the conjugate features ``h`` (n, d) (the conjugate
    projection), float32, exactly symmetric, by column strips into ``sink``
    (default: an in-memory (n, n) array)."""
    h = np.asarray(h, np.float32)
    n = len(h)
    sink = GramArray(n) if sink is None else sink
    for c0, c1 in blocks(n, max(1, int(strip_columns))):
        strip = h[c0:c1]
        sink.put(c0, c0, mirror_upper(syrk_upper(strip)), False)
        if c0 > 0:
            sink.put(0, c0, gemm_nt(h[:c0], strip), True)
    return sink.result()
