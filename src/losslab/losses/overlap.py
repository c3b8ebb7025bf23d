"""Overlap (segmentation) losses: soft Dice, Jaccard (IoU) and Tversky on probabilities.

``input`` holds probabilities (sigmoid or softmax outputs) of shape (N, ...), ``target`` the same
shape with values in [0, 1] (binary masks or soft labels). Each sample gets one score over all of
its non-batch elements (channels included, as mmdetection's ``dice_loss`` and MONAI's DiceLoss
with one channel); the loss is ``1 - score``, reduced over the N samples.

The three are one computation: with ``TP = sum p t``, ``FP = sum p (1 - t)``, ``FN = sum (1 - p) t``
the Tversky index is ``(TP + s) / (TP + a FP + b FN + s)``; Jaccard is ``a = b = 1``, and Dice
``(2 TP + s) / (sum p + sum t + s)`` is ``a = b = 1/2`` with smoothing ``s / 2``. So one core
(``_tversky``) serves all three.

Smoothing ``smooth`` is added to both numerator and denominator, segmentation_models_pytorch's
``smooth`` and MONAI's ``smooth_nr = smooth_dr`` convention; it keeps the score defined (1 for an
empty prediction on an empty mask) and the gradient bounded.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from losslab.losses._primitives import is_numpy, namespace, shape_of, size_of
from losslab.losses._reduction import reduce, scale_for
from losslab.losses._registry import register
from losslab.losses._validation import (
    as_target,
    check_floating,
    check_in_range,
    check_positive_number,
    check_reduction,
    check_same_shape,
)


def _prepare(input: Any, target: Any, reduction: str, smooth: Any):
    check_reduction(reduction)
    smooth = check_positive_number(smooth, "smooth", allow_zero=True)
    xp, (input, target) = namespace(input, target)
    check_floating(xp, input, "input")
    if input.ndim < 2:
        raise ValueError(
            "input must have shape (N, ...) with at least 2 dimensions: a batch axis and the "
            f"elements each sample's score sums over; got shape {shape_of(input)}."
        )
    check_same_shape(input, target, "input", "target")
    target = as_target(xp, target, input)
    check_in_range(xp, input, "input", 0.0, 1.0, "probabilities, e.g. sigmoid or softmax output")
    check_in_range(xp, target, "target", 0.0, 1.0, "probabilities or a binary mask")
    return xp, input, target, smooth


# On CPU torch tensors, per-sample rows at least this long are handled one row at a time (a BLAS
# dot, then one fused multiply-add): the loop's overhead is small against a row's arithmetic.
_ROW_LOOP_MIN = 1 << 16


def _row_loop(xp: Any, p: Any) -> bool:
    return (
        array_api_compat.is_torch_namespace(xp)
        and p.device.type == "cpu"
        and int(p.shape[0]) > 0
        and size_of(p) >= int(p.shape[0]) * _ROW_LOOP_MIN
    )


def _row_dot(xp: Any, p: Any, t: Any, keep: tuple[int, ...]) -> Any:
    """Per-sample ``sum(p t)`` without an input-sized product where the namespace allows.

    NumPy's vecdot and, for long rows of CPU tensors, one ``torch.dot`` per row read ``p`` and
    ``t`` once and write nothing input-sized: against forming ``p * t`` and summing it, that saves
    two passes over memory and the product's buffer. (array-api-compat's torch vecdot, like
    ``einsum`` and ``bmm`` for row-wise dots, is several times slower than either.)
    """
    n = int(p.shape[0])
    flat = (n, math.prod(shape_of(p)[1:]))  # not -1: an empty batch has no row length to infer
    if is_numpy(xp):
        return xp.reshape(xp.vecdot(xp.reshape(p, flat), xp.reshape(t, flat), axis=-1), keep)
    if _row_loop(xp, p):
        import torch

        p2, t2 = p.reshape(flat), t.reshape(flat)
        return xp.reshape(torch.stack([torch.dot(p2[i], t2[i]) for i in range(n)]), keep)
    return xp.sum(p * t, axis=tuple(range(1, p.ndim)), keepdims=True)


def _row_affine(xp: Any, t: Any, slope: Any, offset: Any) -> Any:
    """``offset + t * slope`` with per-sample ``slope`` and ``offset`` of shape (N, 1, ...).

    One pass on torch: a ``torch.add(offset_i, t_i, alpha=slope_i)`` per long row on CPU (torch's
    plain scalar kernel, faster there than ``addcmul``'s broadcast of two per-sample tensors),
    ``addcmul`` otherwise. Two passes elsewhere.
    """
    if _row_loop(xp, t):
        import torch

        n = int(t.shape[0])
        g = torch.empty_like(t, memory_format=torch.contiguous_format)
        g2, t2 = g.view(n, -1), t.reshape(n, -1)
        offsets = offset.reshape(-1)
        for i, s in enumerate(slope.reshape(-1).tolist()):
            torch.add(offsets[i], t2[i], alpha=s, out=g2[i])
        return g
    if array_api_compat.is_torch_namespace(xp):
        return xp.addcmul(offset, t, slope)
    g = t * slope
    g += offset
    return g


def _tversky(
    xp: Any, p: Any, t: Any, *, alpha: float, beta: float, smooth: float, reduction: str,
    compute_grad: bool,
):
    """``1 - (TP + s) / (TP + a FP + b FN + s)`` per sample, and its gradient w.r.t. ``p``.

    With ``FP = sum p - TP`` and ``FN = sum t - TP`` the denominator is
    ``D = (1 - a - b) TP + a sum p + b sum t + s``, and
    ``dscore/dp = (t - score (a + (1 - a - b) t)) / D``.
    """
    axes = tuple(range(1, p.ndim))
    keep = (int(p.shape[0]),) + (1,) * (p.ndim - 1)
    tp = _row_dot(xp, p, t, keep)
    sp = xp.sum(p, axis=axes, keepdims=True)
    st = xp.sum(t, axis=axes, keepdims=True)
    den = (1.0 - alpha - beta) * tp + alpha * sp + beta * st + smooth
    del sp, st
    score = (tp + smooth) / den
    del tp
    value = reduce(xp, xp.reshape(1.0 - score, (int(p.shape[0]),)), reduction)
    if not compute_grad:
        return value, None
    # Two per-sample coefficients and one input-sized buffer, written in one pass where the
    # namespace allows (_row_affine); the small temporaries are dropped first, so the gradient is
    # about all this function holds at its peak.
    k = scale_for(reduction, score) / den
    del den
    slope = (score * (1.0 - alpha - beta) - 1.0) * k
    offset = (score * alpha) * k
    del score, k
    return value, _row_affine(xp, t, slope, offset)


def _example(rng: np.random.Generator, dtype: Any = "float64", **_: Any) -> tuple[Any, ...]:
    """Probabilities kept inside [0.05, 0.95] (so finite differences stay in [0, 1]); targets
    either a binary mask or soft labels."""
    shape = (int(rng.integers(1, 4)),) + tuple(
        int(d) for d in rng.integers(1, 4, size=int(rng.integers(1, 3)))
    )
    p = rng.uniform(0.05, 0.95, size=shape).astype(dtype)
    if rng.random() < 0.5:
        t = (rng.random(size=shape) < 0.5).astype(dtype)
    else:
        t = rng.random(size=shape).astype(dtype)
    return p, t


@register(
    "dice",
    input_kind="probabilities",
    target_kind="unit_interval",
    layout="per_sample",
    task="segmentation",
    formula="1 - (2 sum(p t) + s) / (sum p + sum t + s), per sample",
    example=_example,
)
def dice(
    input: Any, target: Any, *, smooth: float = 1.0, reduction: str = "mean",
    compute_grad: bool = True,
):
    """Soft Dice loss: ``l_i = 1 - (2 sum_j p_ij t_ij + s) / (sum_j p_ij + sum_j t_ij + s)``.

    Sums run over every non-batch element of sample i; ``s = smooth`` (default 1.0) is added to
    numerator and denominator.

    Gradient: ``dl_i/dp_ij = (score_i - 2 t_ij) / (sum_j p_ij + sum_j t_ij + s)``, divided by N
    for ``reduction="mean"``.

    Options: ``smooth`` >= 0 (0 gives NaN for an all-zero sample); ``reduction`` over samples.
    torch has no Dice loss; this is segmentation_models_pytorch's ``soft_dice_score`` over all
    non-batch dims with its ``smooth`` (without its ``eps`` clamp, which only matters at
    ``smooth=0``), and MONAI's ``DiceLoss`` with ``smooth_nr = smooth_dr = smooth`` for one
    channel. Not the squared-denominator V-Net variant.

    Reference: Milletari, Navab, Ahmadi, "V-Net", 3DV 2016; Sudre et al., "Generalised Dice
    overlap as a deep learning loss function", DLMIA 2017.
    """
    xp, p, t, smooth = _prepare(input, target, reduction, smooth)
    return _tversky(
        xp, p, t, alpha=0.5, beta=0.5, smooth=0.5 * smooth, reduction=reduction,
        compute_grad=compute_grad,
    )


@register(
    "jaccard",
    input_kind="probabilities",
    target_kind="unit_interval",
    layout="per_sample",
    task="segmentation",
    formula="1 - (sum(p t) + s) / (sum p + sum t - sum(p t) + s), per sample",
    example=_example,
)
def jaccard(
    input: Any, target: Any, *, smooth: float = 1.0, reduction: str = "mean",
    compute_grad: bool = True,
):
    """Soft Jaccard (IoU) loss: ``l_i = 1 - (I_i + s) / (U_i + s)``, ``I = sum p t``,
    ``U = sum p + sum t - I``.

    Sums run over every non-batch element of sample i; ``s = smooth`` (default 1.0) is added to
    numerator and denominator.

    Gradient: ``dl_i/dp_ij = (score_i - (1 + score_i) t_ij) / (U_i + s)``, divided by N for
    ``reduction="mean"``.

    Options: ``smooth`` >= 0; ``reduction`` over samples. torch has no Jaccard loss; same as
    segmentation_models_pytorch's ``soft_jaccard_score`` over all non-batch dims with its
    ``smooth`` (no ``eps`` clamp) and MONAI's ``DiceLoss(jaccard=True)`` with
    ``smooth_nr = smooth_dr``.

    Reference: Rahman and Wang, "Optimizing Intersection-Over-Union in Deep Neural Networks for
    Image Segmentation", ISVC 2016.
    """
    xp, p, t, smooth = _prepare(input, target, reduction, smooth)
    return _tversky(
        xp, p, t, alpha=1.0, beta=1.0, smooth=smooth, reduction=reduction,
        compute_grad=compute_grad,
    )


@register(
    "tversky",
    input_kind="probabilities",
    target_kind="unit_interval",
    layout="per_sample",
    task="segmentation",
    formula="1 - (TP + s) / (TP + alpha FP + beta FN + s), per sample",
    example=_example,
)
def tversky(
    input: Any,
    target: Any,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    smooth: float = 1.0,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Tversky loss: ``l_i = 1 - (TP_i + s) / (TP_i + alpha FP_i + beta FN_i + s)``.

    ``TP = sum p t``, ``FP = sum p (1 - t)``, ``FN = sum (1 - p) t`` over every non-batch element
    of sample i; ``alpha`` weighs false positives, ``beta`` false negatives; ``s = smooth``
    (default 1.0) is added to numerator and denominator. ``alpha = beta = 1`` is ``jaccard``;
    ``alpha = beta = 0.5`` with ``smooth = s / 2`` is ``dice`` with ``smooth = s``.

    Gradient: with ``D_i`` the denominator,
    ``dl_i/dp_ij = (score_i (alpha + (1 - alpha - beta) t_ij) - t_ij) / D_i``, divided by N for
    ``reduction="mean"``.

    Options: ``alpha``, ``beta`` >= 0; ``smooth`` >= 0; ``reduction`` over samples. torch has no
    Tversky loss; same as segmentation_models_pytorch's ``TverskyLoss`` score with ``gamma=1``
    over all non-batch dims (no ``eps`` clamp).

    Reference: Salehi, Erdogmus, Gholipour, "Tversky loss function for image segmentation using
    3D fully convolutional deep networks", MLMI 2017.
    """
    alpha = check_positive_number(alpha, "alpha", allow_zero=True)
    beta = check_positive_number(beta, "beta", allow_zero=True)
    xp, p, t, smooth = _prepare(input, target, reduction, smooth)
    return _tversky(
        xp, p, t, alpha=alpha, beta=beta, smooth=smooth, reduction=reduction,
        compute_grad=compute_grad,
    )
