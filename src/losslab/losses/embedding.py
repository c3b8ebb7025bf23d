"""Embedding losses: pairs and triplets of vectors pulled together or pushed apart.

Both losses reduce over the last axis (the embedding dimension) and return one loss per row; the
gradient comes back as one array per differentiable input.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from losslab.losses._constraints import Boolean, Real
from losslab.losses._primitives import shape_of
from losslab.losses._registry import Items, register
from losslab.losses._validation import check_ndim, check_same_dtype, check_same_shape

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
    options={"margin": Real()},
    hessian="indefinite",
    task="embedding",
    formula="1 - cos(x1, x2) if y = 1; max(0, cos(x1, x2) - margin) if y = -1",
    example=_cosine_example,
    differentiable=("input1", "input2"),
    torch="cosine_embedding_loss",
    module="CosineEmbeddingLoss",
)
def cosine_embedding(
    xp: Any, input1: Any, input2: Any, target: Any, *, margin: float = 0.0
) -> Items:
    """Cosine embedding loss: ``1 - cos(x1, x2)`` if ``y = 1``, ``max(0, cos - margin)`` if -1.

    With ``A = |x1|^2 + eps``, ``B = |x2|^2 + eps`` (``eps = float32(1e-12)``, torch's constant,
    so zero vectors give ``cos = 0`` rather than NaN) and ``D = sqrt(A) sqrt(B)``:
    ``cos = <x1, x2> / D``.

    Gradient: ``dcos/dx1 = x2 / D - cos x1 / A`` and ``dcos/dx2 = x1 / D - cos x2 / B``; the loss
    multiplies them by -1 for ``y = 1`` and by 1 for ``y = -1`` where ``cos - margin >= 0`` (kink
    included, as torch's ``clamp_min``), else 0. Returns ``(grad_input1, grad_input2)``.
    Hessian w.r.t. ``x1`` (``u``; ``g = dcos/du``, ``r`` a direction): ``H r = -x2 (u.r) / (D A)
    - (g.r) u / A - cos r / A + 2 cos u (u.r) / A^2``, times the same sign; cosine similarity is
    not convex, so it can be negative.

    Options: ``margin`` (any real; torch suggests [-1, 1], 0 to 0.5). Inputs are
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
    _check_vectors(xp, {"input1": input1, "input2": input2}, (1, 2))
    if shape_of(target) != shape_of(input1)[:-1]:
        raise ValueError(
            f"target must have shape {shape_of(input1)[:-1]} (one label per row of input1 "
            f"{shape_of(input1)}); got {shape_of(target)}."
        )
    u, v = input1, input2
    dot = xp.sum(u * v, axis=-1, keepdims=True)
    a = xp.sum(u * u, axis=-1, keepdims=True) + COSINE_EPSILON
    b = xp.sum(v * v, axis=-1, keepdims=True) + COSINE_EPSILON
    denom = xp.sqrt(a) * xp.sqrt(b)
    cos = dot / denom
    y = target[..., None]
    pos = y == 1
    neg = (y == -1) & (cos - margin >= 0)
    zeros = xp.zeros_like(cos)
    per_row = xp.where(pos, 1.0 - cos, zeros) + xp.where(neg, cos - margin, zeros)
    # The loss is sign * cos (+ a constant) on each row: -1 for y = 1, +1 for active y = -1.
    sign = xp.astype(neg, u.dtype) - xp.astype(pos, u.dtype)
    g1 = v / denom - cos * u / a  # dcos/du
    g2 = u / denom - cos * v / b  # dcos/dv

    def hvp(w: Any, r: Any) -> Any:
        # d/du of dcos/du, applied to r:
        # -v (u.r) / (D A) - (g1.r) u / A - cos r / A + 2 cos u (u.r) / A^2
        ur = xp.sum(u * r, axis=-1, keepdims=True)
        g1r = xp.sum(g1 * r, axis=-1, keepdims=True)
        h = -v * ur / (denom * a) - g1r * u / a - cos * r / a + 2.0 * cos * u * ur / (a * a)
        return (w * sign) * h

    def hess(w: Any) -> Any:
        h = -v * u / (denom * a) - g1 * u / a - cos / a + 2.0 * cos * u * u / (a * a)
        return (w * sign) * h

    return Items(
        xp.squeeze(per_row, axis=-1),
        grad=lambda w: ((w * sign) * g1, (w * sign) * g2),
        hess=hess,
        hvp=hvp,
    )


# Triplet margin.


class _PNorm:
    """``||d||_p`` over the last axis, with its gradient and Hessian w.r.t. ``d``.

    Gradient ``g_k = sign(d_k) |d_k|^(p-1) / ||d||^(p-1)`` (``d / ||d||`` for p = 2), torch's
    conventions: 0 where the norm is 0 (and, for p < 1, where ``d_k`` is 0), split evenly among
    tied maxima for ``p = inf``. Hessian ``(p - 1) / ||d|| [diag((|d| / ||d||)^(p-2)) - g g^T]``
    (``(I - n n^T) / ||d||`` for p = 2; 0 almost everywhere for p = 1 and p = inf).
    """

    def __init__(self, xp: Any, d: Any, p: float) -> None:
        self.xp, self.d, self.p = xp, d, p
        ad = xp.abs(d)
        if p == 2.0:
            norm = xp.sqrt(xp.sum(d * d, axis=-1, keepdims=True))
        elif p == 1.0:
            norm = xp.sum(ad, axis=-1, keepdims=True)
        elif math.isinf(p):
            norm = xp.max(ad, axis=-1, keepdims=True)
        else:
            norm = xp.sum(ad**p, axis=-1, keepdims=True) ** (1.0 / p)
        self.abs, self.norm = ad, norm
        self.nonzero = norm > 0
        self.safe_norm = xp.where(self.nonzero, norm, xp.ones_like(norm))

    def grad(self) -> Any:
        xp, d, p, ad, n = self.xp, self.d, self.p, self.abs, self.safe_norm
        zeros = xp.zeros_like(d)
        if p == 2.0:
            g = d / n
        elif p == 1.0:
            g = xp.sign(d)
        elif math.isinf(p):
            at_max = xp.where(ad == self.norm, xp.ones_like(d), zeros)
            g = xp.sign(d) * at_max / xp.sum(at_max, axis=-1, keepdims=True)
        else:
            safe_ad = xp.where(ad > 0, ad, xp.ones_like(ad))
            g = xp.where(ad > 0, xp.sign(d) * (safe_ad / n) ** (p - 1.0), zeros)
        return xp.where(self.nonzero, g, zeros)

    def _curvature(self) -> tuple[Any, Any] | None:
        """``(diag factor, g)`` with Hessian ``(p - 1)/||d|| [diag(f) - g g^T]``; None where the
        Hessian is 0 almost everywhere (p = 1, p = inf)."""
        xp, p = self.xp, self.p
        if p == 1.0 or math.isinf(p):
            return None
        if p == 2.0:
            f = xp.ones_like(self.d)
        else:
            safe_ad = xp.where(self.abs > 0, self.abs, xp.ones_like(self.abs))
            ratio = (safe_ad / self.safe_norm) ** (p - 2.0)
            f = xp.where(self.abs > 0, ratio, xp.zeros_like(self.d))
        return f, self.grad()

    def hvp(self, r: Any) -> Any:
        xp = self.xp
        parts = self._curvature()
        if parts is None:
            return xp.zeros_like(self.d)
        f, g = parts
        k = xp.where(self.nonzero, (self.p - 1.0) / self.safe_norm, xp.zeros_like(self.norm))
        return k * (f * r - g * xp.sum(g * r, axis=-1, keepdims=True))

    def hess(self) -> Any:
        xp = self.xp
        parts = self._curvature()
        if parts is None:
            return xp.zeros_like(self.d)
        f, g = parts
        k = xp.where(self.nonzero, (self.p - 1.0) / self.safe_norm, xp.zeros_like(self.norm))
        return k * (f - g * g)


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
    options={
        "margin": Real(),
        "p": Real(0, None, closed="neither", inf=True),
        "eps": Real(),
        "swap": Boolean(),
    },
    hessian="indefinite",
    task="embedding",
    formula="max(0, margin + ||a - p + eps||_p - ||a - n + eps||_p)",
    example=_triplet_example,
    differentiable=("anchor", "positive", "negative"),
    torch="triplet_margin_loss",
    module="TripletMarginLoss",
)
def triplet_margin(
    xp: Any,
    anchor: Any,
    positive: Any,
    negative: Any,
    *,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
) -> Items:
    """Triplet margin loss: ``max(0, margin + d(a, p) - d(a, n))``, ``d(u, v) = ||u - v + eps||_p``.

    The distance is torch's ``pairwise_distance``: ``eps`` is added to the difference (not to
    the norm), over the last axis. With ``swap=True`` the negative distance is
    ``min(d(a, n), d(p, n))`` (Balntas et al.'s distance swap).

    Gradient: with ``g = 1`` where ``margin + d(a, p) - d_neg >= 0`` (kink included, as torch's
    ``clamp_min``), else 0, and ``u = (a - p + eps)``: ``dd/du_k = sign(u_k) |u_k|^(p-1) /
    ||u||_p^(p-1)`` (``u / ||u||`` for p = 2; 0 where the norm is 0, as torch). Then
    ``dl/da = g (dd(a,p)/du - dd(a,n)/du)``, ``dl/dp = -g dd(a,p)/du``, ``dl/dn = g dd(a,n)/du``;
    under ``swap`` the chosen ``d(p, n)`` sends ``-g dd/du`` to p and ``+g dd/du`` to n, and a
    tie splits the gradient half and half, as torch's ``min``. Returns ``(grad_anchor,
    grad_positive, grad_negative)``. Hessian w.r.t. the anchor: ``g [H(a - p) - H(a - n)]`` with
    the p-norm's Hessian ``H(u) = (p - 1) / ||u|| [diag((|u| / ||u||)^(p - 2)) - dd^T]``
    (``dd`` its gradient; 0 almost everywhere for p = 1 and inf); the second term makes it
    indefinite.

    Options: ``margin`` (any real), ``p`` (> 0, inf allowed), ``eps``, ``swap``.
    The three inputs share one shape, (N, D), unbatched (D,), or (..., D).

    Same as ``torch.nn.functional.triplet_margin_loss``, except: ``p <= 0`` raises ValueError
    (torch computes a meaningless "norm"), and shapes must be equal (torch broadcasts inputs of
    equal rank).

    Reference: Schroff, Kalenichenko and Philbin, "FaceNet", CVPR 2015; Balntas et al., "Learning
    local feature descriptors with triplets and shallow convolutional neural networks", BMVC 2016.
    """
    _check_vectors(xp, {"anchor": anchor, "positive": positive, "negative": negative}, None)
    ap = _PNorm(xp, anchor - positive + eps, p)
    an = _PNorm(xp, anchor - negative + eps, p)
    d_neg = an.norm
    if swap:
        pn = _PNorm(xp, positive - negative + eps, p)
        d_neg = xp.minimum(an.norm, pn.norm)
    z = margin + ap.norm - d_neg
    zeros = xp.zeros_like(z)
    active = xp.where(z >= 0, xp.ones_like(z), zeros)
    ones = xp.ones_like(z)
    if swap:
        # torch's min(): all of the gradient to the smaller distance, half each at a tie.
        tie = xp.where(pn.norm == an.norm, 0.5 * ones, zeros)
        w_swap = xp.where(pn.norm < an.norm, ones, tie)
        w_neg = 1.0 - w_swap
    else:
        w_neg = ones

    def grad(w: Any) -> tuple[Any, Any, Any]:
        g = w * active
        gp = g * ap.grad()
        gn = (g * w_neg) * an.grad()
        grad_a, grad_p, grad_n = gp - gn, -gp, gn
        if swap:
            gs = (g * w_swap) * pn.grad()
            grad_p, grad_n = grad_p - gs, grad_n + gs
        return grad_a, grad_p, grad_n

    return Items(
        xp.squeeze(xp.where(z >= 0, z, zeros), axis=-1),
        grad=grad,
        hess=lambda w: (w * active) * (ap.hess() - w_neg * an.hess()),
        hvp=lambda w, r: (w * active) * (ap.hvp(r) - w_neg * an.hvp(r)),
    )
