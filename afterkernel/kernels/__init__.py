"""The after kernel (the FNTK after training) and its conjugate projection.

For a network f with parameters θ (all trainable weights, biases included),
the after kernel is K(x, x') = ∇θf(x)·∇θf(x') and the conjugate projection
K_c(x, x') = h_{L-1}(x)·h_{L-1}(x'), h_{L-1} being the input of the final
``logit`` layer (paper §2). The n×P Jacobian is never materialised unless
it fits ``jacobian_budget_mb``.

Modules, in the order the data flows:

- :mod:`.layers`: the layer plan (:class:`LayerKind` of each layer);
- :mod:`.layer_gradients`: per-example gradients of one layer's weights
  (:class:`ConvMethod` for Conv2D);
- :mod:`.engine`: :class:`KernelEngine`, the :class:`BlockGradients` of a
  block of examples in one forward and one backward pass, Gram tiles;
- :mod:`.tiles`: the NumPy (SciPy BLAS) and TensorFlow tile backends;
- :mod:`.gram`: streamed Gram matrices (:func:`after_kernel_gram`,
  :func:`gram_with_conjugate`, :func:`conjugate_gram`);
- :mod:`.diagonals`: per-example values (:func:`after_kernel_diag`,
  :func:`feature_scale`, :func:`cross_diagonals` for the invariances);
- :mod:`.job` and :mod:`.files`: the kernel job of the workflow and the
  layout of its HDF5 files.

TensorFlow is imported only when an engine or a Gram is computed.
"""

from afterkernel.kernels.diagonals import (CrossDiagonals, after_kernel_diag, cross_diagonals,
                                           feature_scale)
from afterkernel.kernels.engine import (AUTO_BLOCK_MAX, DEFAULT_BLOCK_SIZE, DEFAULT_BUDGET_MB,
                                        BlockGradients, KernelEngine, per_example_gradients)
from afterkernel.kernels.gram import (STRIP_COLUMNS, GramArray, after_kernel_gram,
                                      conjugate_features, conjugate_gram, gram_with_conjugate)
from afterkernel.kernels.layer_gradients import ConvMethod, conv_method
from afterkernel.kernels.layers import LayerKind

__all__ = [
    "AUTO_BLOCK_MAX", "DEFAULT_BLOCK_SIZE", "DEFAULT_BUDGET_MB", "STRIP_COLUMNS",
    "BlockGradients", "ConvMethod", "CrossDiagonals", "GramArray", "KernelEngine", "LayerKind",
    "after_kernel_diag", "after_kernel_gram", "conjugate_features", "conjugate_gram",
    "conv_method", "cross_diagonals", "feature_scale", "gram_with_conjugate",
    "per_example_gradients",
]
