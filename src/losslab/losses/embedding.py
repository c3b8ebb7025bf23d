"""Embedding losses: pairs and triplets of vectors pulled together or pushed apart.

Both losses reduce over the last axis (the embedding dimension) and return one loss per row, then
apply ``reduction``; the gradient comes back as one array per differentiable input.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from losslab.losses._primitives import namespace, shape_of
from losslab.losses._reduction import reduce, scale_for
from losslab.losses._registry import register
from losslab.losses._validation import (
    as_target,
    check_floating,
    check_ndim,
    check_reduction,
    check_same_shape,
)
from losslab.losses.margin import (
    as_array,
    check_real_number,
    check_same_dtype,
    check_sign_labels,
)

# torch adds this to each squared norm in cosine_embedding_loss (aten/src/ATen/native/Loss.cpp,
# a C++ ``float EPSILON = 1e-12``), so zero vectors give cos = 0 rather than NaN. Being a float32
# constant it is 9.99999996e-13, not 1e-12, in float64 too; we use the same number.
COSINE_EPSILON = float(np.float32(1e-12))

# Examples keep kinks (hinge, |d_k| for p = 1, min() of swap) at least this far away.
_KINK_GAP = 1e-2


def _check_vectors(xp: Any, arrays: dict[str, Any], ndims: tuple[int, ...] | None) -> None:
    """Floating arrays of one shape and one dtype (the first one's)."""
    names = list(arrays)
    first = arrays[names[0]]
    for name, a in arrays.items():
        check_floating(xp, a, name)
        check_same_dtype(first, a, names[0], name)
        if ndims is not None:
            check_ndim(a, ndims, name, "((N, D) or unbatched (D,))")
        elif a.ndim < 1:
            raise ValueError(f"{name} must have at least 1 dimension (..., D); got shape ().")
        check_same_shape(first, a, names[0], name)


# Cosine embedding.


def _cosine_example(
    rng: np.random.Generator, dtype: Any = "float64", margin: float = 0.0, **_: Any
) -> tuple[Any, ...]:
    n, d = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    y = rng.choice(np.array([-1.0, 1.0]), size=n)
    for _attempt in range(1000):
        x1, x2 = rng.normal(size=(n, d)), rng.normal(size=(n, d))
        cos = np.sum(x1 * x2, -1) / np.sqrt(np.sum(x1 * x1, -1) * np.sum(x2 * x2, -1))
        if np.all((y == 1) | (np.abs(cos - margin) >= _KINK_GAP)):
            return x1.astype(dtype), x2.astype(dtype), y.astype(dtype)
    raise RuntimeError("could not draw a cosine_embedding example away from its kink")


@register(
    "cosine_embedding",
    input_kind="real",
    target_kind="sign",
    layout="feature_axis",
    task="embedding",
    formula="1 - cos(x1, x2) if y = 1; max(0, cos(x1, x2) - margin) if y = -1",
    example=_cosine_example,
    differentiable=("input1", "input2"),
    torch="cosine_embedding_loss",
)
def cosine_embedding(
    input1: Any,
    input2: Any,
    target: Any,
    *,
    margin: float = 0.0,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Cosine embedding loss: ``1 - cos(x1, x2)`` if ``y = 1``, ``max(0, cos - margin)`` if -1.

    With ``A = |x1|^2 + eps``, ``B = |x2|^2 + eps`` (``eps = float32(1e-12)``, torch's constant,
    so zero vectors give ``cos = 0`` rather than NaN) and ``D = sqrt(A) sqrt(B)``:
    ``cos = <x1, x2> / D``.

    Gradient: ``dcos/dx1 = x2 / D - cos x1 / A`` and ``dcos/dx2 = x1 / D - cos x2 / B``; the loss
    multiplies them by -1 for ``y = 1`` and by 1 for ``y = -1`` where ``cos - margin >= 0`` (kink
    included, as torch's ``clamp_min``), else 0. Divided by N for ``reduction="mean"``. Returns
    ``(grad_input1, grad_input2)``.

    Options: ``margin`` (any real; torch suggests [-1, 1], 0 to 0.5), ``reduction``. Inputs are
    (N, D) with ``target`` (N,), or unbatched (D,) with ``target`` (), as in torch; ``target``
    holds -1 or +1.

    Same as ``torch.nn.functional.cosine_embedding_loss``, with two deliberate differences: labels
    other than -1/+1 raise ValueError (torch silently gives them loss 0), and ``D`` is computed as
    ``sqrt(A) sqrt(B)`` instead of torch's ``sqrt(A B)``, which overflows in float32 once
    ``|x1| |x2|`` exceeds ~1.8e19 (two vectors of norm 1e10); values otherwise agree to rounding.

    Reference: PyTorch ``torch.nn.CosineEmbeddingLoss``; Mikolov et al. / Salton's cosine
    similarity, e.g. Manning, Raghavan and Schuetze, *Introduction to Information Retrieval*
    (2008), section 6.3.
    """
    margin = check_real_number(margin, "margin")
    check_reduction(reduction)
    xp, (input1, input2, target) = namespace(input1, input2, target)
    _check_vectors(xp, {"input1": input1, "input2": input2}, (1, 2))
    if shape_of(target) != shape_of(input1)[:-1]:
        raise ValueError(
            f"target must have shape {shape_of(input1)[:-1]} (one label per row of input1 "
            f"{shape_of(input1)}); got {shape_of(target)}."
        )
    target = as_target(xp, target, input1)
    check_sign_labels(xp, target)
    dot = xp.sum(input1 * input2, axis=-1)
    a = xp.sum(input1 * input1, axis=-1) + COSINE_EPSILON
    b = xp.sum(input2 * input2, axis=-1) + COSINE_EPSILON
    denom = xp.sqrt(a) * xp.sqrt(b)
    cos = dot / denom
    zeros = xp.zeros_like(cos)
    pos = target == 1
    neg = (target == -1) & (cos - margin >= 0)
    per_row = xp.where(pos, 1.0 - cos, zeros) + xp.where(neg, cos - margin, zeros)
    value = reduce(xp, as_array(xp, per_row), reduction)
    if not compute_grad:
        return value, None
    ones = xp.ones_like(cos)
    dcos = (xp.where(neg, ones, zeros) - xp.where(pos, ones, zeros)) * scale_for(reduction, cos)
    dcos, cos, a, b, denom = (as_array(xp, v)[..., None] for v in (dcos, cos, a, b, denom))
    g1 = dcos * (input2 / denom - cos * input1 / a)
    g2 = dcos * (input1 / denom - cos * input2 / b)
    return value, (g1, g2)


# Triplet margin.


def _check_p(p: Any) -> float:
    if isinstance(p, bool | str | bytes):
        raise TypeError(f"p must be a number > 0 (the norm's order); got {p!r}.")
    try:
        v = float(p)
    except (TypeError, ValueError):
        raise TypeError(f"p must be a number > 0 (the norm's order); got {p!r}.") from None
    if not v > 0:
        raise ValueError(f"p must be > 0 (the order of the p-norm; inf allowed); got {p!r}.")
    return v


def _pnorm(xp: Any, d: Any, p: float, compute_grad: bool) -> tuple[Any, Any]:
    """``||d||_p`` over the last axis and, if asked, its gradient w.r.t. ``d``.

    The gradient is torch's: 0 where the norm is 0 (and, for p < 1, where ``d_k`` is 0), and
    split evenly among tied maxima for ``p = inf``.
    """
    ad = xp.abs(d)
    zeros = xp.zeros_like(d)
    if p == 2.0:
        norm = xp.sqrt(xp.sum(d * d, axis=-1))
    elif p == 1.0:
        norm = xp.sum(ad, axis=-1)
    elif math.isinf(p):
        norm = xp.max(ad, axis=-1)
    else:
        norm = xp.sum(ad**p, axis=-1) ** (1.0 / p)
    norm = as_array(xp, norm)
    if not compute_grad:
        return norm, None
    n = norm[..., None]
    nonzero = n > 0
    safe_n = xp.where(nonzero, n, xp.ones_like(n))
    if p == 2.0:
        g = d / safe_n
    elif p == 1.0:
        g = xp.sign(d)
    elif math.isinf(p):
        at_max = xp.where(ad == n, xp.ones_like(d), zeros)
        g = xp.sign(d) * at_max / xp.sum(at_max, axis=-1, keepdims=True)
    else:
        safe_ad = xp.where(ad > 0, ad, xp.ones_like(ad))
        g = xp.where(ad > 0, xp.sign(d) * (safe_ad / safe_n) ** (p - 1.0), zeros)
    return norm, xp.where(nonzero, g, zeros)


def _triplet_example(
    rng: np.random.Generator,
    dtype: Any = "float64",
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    **_: Any,
) -> tuple[Any, ...]:
    n, d = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    p = float(p)

    def dist(u: np.ndarray) -> np.ndarray:
        return np.linalg.norm(u, ord=p, axis=-1) if p >= 1 else np.sum(np.abs(u) ** p, -1) ** (
            1 / p
        )

    for _attempt in range(1000):
        a, pos, neg = (rng.normal(size=(n, d)) for _ in range(3))
        diffs = [a - pos + eps, a - neg + eps, pos - neg + eps]
        dp, dn, ds = (dist(u) for u in diffs)
        dneg = np.minimum(dn, ds) if swap else dn
        ok = np.min(np.abs(margin + dp - dneg)) >= _KINK_GAP
        ok &= not swap or np.min(np.abs(dn - ds)) >= _KINK_GAP
        # |d_k| has a kink at 0 for p <= 1; max() has one at ties for p = inf.
        ok &= min(np.min(np.abs(u)) for u in diffs) >= _KINK_GAP
        if math.isinf(p):
            top = [np.sort(np.abs(u), axis=-1) for u in diffs]
            ok &= min(np.min(t[:, -1] - t[:, -2]) for t in top) >= _KINK_GAP
        if ok:
            return a.astype(dtype), pos.astype(dtype), neg.astype(dtype)
    raise RuntimeError("could not draw a triplet_margin example away from its kinks")


@register(
    "triplet_margin",
    input_kind="real",
    target_kind=None,
    layout="feature_axis",
    task="embedding",
    formula="max(0, margin + ||a - p + eps||_p - ||a - n + eps||_p)",
    example=_triplet_example,
    differentiable=("anchor", "positive", "negative"),
    torch="triplet_margin_loss",
)
def triplet_margin(
    anchor: Any,
    positive: Any,
    negative: Any,
    *,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Triplet margin loss: ``max(0, margin + d(a, p) - d(a, n))``, ``d(u, v) = ||u - v + eps||_p``.

    The distance is torch's ``pairwise_distance``: ``eps`` is added to the difference (not to
    the norm), over the last axis. With ``swap=True`` the negative distance is
    ``min(d(a, n), d(p, n))`` (Balntas et al.'s distance swap).

    Gradient: with ``g = 1`` where ``margin + d(a, p) - d_neg >= 0`` (kink included, as torch's
    ``clamp_min``), else 0, and ``u = (a - p + eps)``: ``dd/du_k = sign(u_k) |u_k|^(p-1) /
    ||u||_p^(p-1)`` (``u / ||u||`` for p = 2; 0 where the norm is 0, as torch). Then
    ``dl/da = g (dd(a,p)/du - dd(a,n)/du)``, ``dl/dp = -g dd(a,p)/du``, ``dl/dn = g dd(a,n)/du``;
    under ``swap`` the chosen ``d(p, n)`` sends ``-g dd/du`` to p and ``+g dd/du`` to n, and a
    tie splits the gradient half and half, as torch's ``min``. Divided by the number of rows for
    ``reduction="mean"``. Returns ``(grad_anchor, grad_positive, grad_negative)``.

    Options: ``margin`` (any real), ``p`` (> 0, inf allowed), ``eps``, ``swap``, ``reduction``.
    The three inputs share one shape, (N, D), unbatched (D,), or (..., D).

    Same as ``torch.nn.functional.triplet_margin_loss``, except: ``p <= 0`` raises ValueError
    (torch computes a meaningless "norm"), and shapes must be equal (torch broadcasts inputs of
    equal rank).

    Reference: Schroff, Kalenichenko and Philbin, "FaceNet", CVPR 2015; Balntas et al., "Learning
    local feature descriptors with triplets and shallow convolutional neural networks", BMVC 2016.
    """
    margin = check_real_number(margin, "margin")
    eps = check_real_number(eps, "eps")
    p = _check_p(p)
    if not isinstance(swap, bool | np.bool_):
        raise TypeError(f"swap must be True or False; got {swap!r}.")
    check_reduction(reduction)
    xp, (anchor, positive, negative) = namespace(anchor, positive, negative)
    _check_vectors(xp, {"anchor": anchor, "positive": positive, "negative": negative}, None)
    d_ap, d_an = anchor - positive + eps, anchor - negative + eps
    dist_pos, g_ap = _pnorm(xp, d_ap, p, compute_grad)
    dist_neg, g_an = _pnorm(xp, d_an, p, compute_grad)
    if swap:
        d_pn = positive - negative + eps
        dist_swap, g_pn = _pnorm(xp, d_pn, p, compute_grad)
        dist_neg_used = xp.minimum(dist_neg, dist_swap)
    else:
        dist_neg_used = dist_neg
    z = margin + dist_pos - dist_neg_used
    active = z >= 0
    zeros = xp.zeros_like(z)
    value = reduce(xp, as_array(xp, xp.where(active, z, zeros)), reduction)
    if not compute_grad:
        return value, None
    g = xp.where(active, xp.ones_like(z), zeros) * scale_for(reduction, z)
    if swap:
        # torch's min(): all of the gradient to the smaller distance, half each at a tie.
        ones = xp.ones_like(z)
        tie = xp.where(dist_swap == dist_neg, 0.5 * ones, zeros)
        w_swap = xp.where(dist_swap < dist_neg, ones, tie)
        w_neg = 1.0 - w_swap
    else:
        w_neg = 1.0
    gp = as_array(xp, g)[..., None] * g_ap
    gn = as_array(xp, g * w_neg)[..., None] * g_an
    grad_a = gp - gn
    grad_p = -gp
    grad_n = gn
    if swap:
        gs = as_array(xp, g * w_swap)[..., None] * g_pn
        grad_p = grad_p - gs
        grad_n = grad_n + gs
    return value, (grad_a, grad_p, grad_n)
