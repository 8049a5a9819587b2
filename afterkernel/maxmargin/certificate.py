"""The hardware-independent certificate of a max-margin solve (paper §2):
the primal margin of coefficients c and the dual bound of a simplex point q,
which bracket the optimal margin gamma*, and their relative gap."""

from __future__ import annotations

import math

import numpy as np

from afterkernel.maxmargin.gram import SignedGram, check_kernel
from afterkernel.vocabulary import signed_labels


def certificate(K: np.ndarray, y: np.ndarray, coef: np.ndarray, q: np.ndarray | None = None):
    """Primal margin of ``coef`` (n,) and the dual bound of ``q`` (n,; default coef/sum).

    Returns ``(margin, bound, gap)``: margin = min_i (Gc)_i / sqrt(c^T G c),
    bound = sqrt(q^T G q) / sum(q) >= optimal margin, gap = (bound - margin)
    / bound.  Computed in float64 from scratch from the train Gram ``K``
    (n, n) and labels ``y`` (n,); used by tests and callers that want to
    re-check a stored result.
    """
    s = signed_labels(y)
    K = check_kernel(K, len(s))
    gram = SignedGram(K, s)
    coef = np.asarray(coef, dtype=np.float64)
    g = gram.matvec(coef)
    ww = float(coef @ g)
    margin = float(g.min() / math.sqrt(ww)) if ww > 0 else float("nan")
    q = coef if q is None else np.asarray(q, dtype=np.float64)
    if np.any(q < 0) or not q.sum() > 0:
        raise ValueError("the dual point q must be non-negative and not all zero")
    gq = g if q is coef else gram.matvec(q)
    bound = math.sqrt(max(float(q @ gq), 0.0)) / float(q.sum())
    return margin, bound, (bound - margin) / bound if bound > 0 else float("nan")
