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

from typing import Any

import numpy as np

from losslab.losses._constraints import Real
from losslab.losses._primitives import row_affine, row_dot
from losslab.losses._registry import Items, register
from losslab.losses._validation import check_same_shape

SMOOTH = Real(0, None)


def _check_shapes(input: Any, target: Any) -> None:
    if input.ndim < 2:
        raise ValueError(
            "input must have shape (N, ...) with at least 2 dimensions: a batch axis and the "
            f"elements each sample's score sums over; got shape {tuple(input.shape)}."
        )
    check_same_shape(input, target, "input", "target")


def _tversky(xp: Any, p: Any, t: Any, *, alpha: float, beta: float, smooth: float) -> Items:
    """``1 - (TP + s) / (TP + a FP + b FN + s)`` per sample, and its derivatives w.r.t. ``p``.

    With ``FP = sum p - TP`` and ``FN = sum t - TP`` the denominator is
    ``D = (1 - a - b) TP + a sum p + b sum t + s`` and, with ``e = dD/dp = (1 - a - b) t + a``,
    ``g = dscore/dp = (t - score e) / D``: the loss's gradient is ``-g``, affine in ``t`` per
    sample, and its Hessian ``(e g^T + g e^T) / D`` (rank two, indefinite).
    """
    _check_shapes(p, t)
    axes = tuple(range(1, p.ndim))
    c = 1.0 - alpha - beta
    tp = row_dot(xp, p, t)  # (N, 1, ...): sum(p t) per sample
    den = c * tp + alpha * xp.sum(p, axis=axes, keepdims=True) + beta * xp.sum(
        t, axis=axes, keepdims=True
    ) + smooth
    score = (tp + smooth) / den

    def per_sample(w: Any) -> Any:
        return w if isinstance(w, float) or w.ndim == p.ndim else xp.reshape(w, (1,) * p.ndim)

    def grad(w: Any) -> Any:
        # -g = (score (a + c t) - t) / D = offset + t * slope, one pass (row_affine)
        k = per_sample(w) / den
        return row_affine(xp, t, (score * c - 1.0) * k, (score * alpha) * k)

    def parts(w: Any) -> tuple[Any, Any, Any]:
        e = c * t + alpha
        g = (t - score * e) / den
        return e, g, per_sample(w) / den

    def hvp(w: Any, v: Any) -> Any:
        e, g, k = parts(w)
        gv = xp.sum(g * v, axis=axes, keepdims=True)
        ev = xp.sum(e * v, axis=axes, keepdims=True)
        return k * (e * gv + g * ev)

    def hess(w: Any) -> Any:
        e, g, k = parts(w)
        return (2.0 * k) * (e * g)

    return Items(
        xp.reshape(1.0 - score, (int(p.shape[0]),)), grad=grad, hess=hess, hvp=hvp
    )


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
    options={"smooth": SMOOTH},
    hessian="indefinite",
    task="segmentation",
    formula="1 - (2 sum(p t) + s) / (sum p + sum t + s), per sample",
    example=_example,
)
def dice(xp: Any, input: Any, target: Any, *, smooth: float = 1.0) -> Items:
    """Soft Dice loss: ``l_i = 1 - (2 sum_j p_ij t_ij + s) / (sum_j p_ij + sum_j t_ij + s)``.

    Sums run over every non-batch element of sample i; ``s = smooth`` (default 1.0) is added to
    numerator and denominator.

    Gradient: ``dl_i/dp_ij = (score_i - 2 t_ij) / (sum_j p_ij + sum_j t_ij + s)``. Hessian: per
    sample ``(e g^T + g e^T) / D`` with ``e = 1/2``, ``g = (t - score / 2) / D`` and ``D`` half the
    denominator (see ``tversky``); indefinite.

    Options: ``smooth`` >= 0 (0 gives NaN for an all-zero sample).
    torch has no Dice loss; this is segmentation_models_pytorch's ``soft_dice_score`` over all
    non-batch dims with its ``smooth`` (without its ``eps`` clamp, which only matters at
    ``smooth=0``), and MONAI's ``DiceLoss`` with ``smooth_nr = smooth_dr = smooth`` for one
    channel. Not the squared-denominator V-Net variant.

    Reference: Milletari, Navab, Ahmadi, "V-Net", 3DV 2016; Sudre et al., "Generalised Dice
    overlap as a deep learning loss function", DLMIA 2017.
    """
    return _tversky(xp, input, target, alpha=0.5, beta=0.5, smooth=0.5 * smooth)



@register(
    "jaccard",
    input_kind="probabilities",
    target_kind="unit_interval",
    layout="per_sample",
    options={"smooth": SMOOTH},
    hessian="indefinite",
    task="segmentation",
    formula="1 - (sum(p t) + s) / (sum p + sum t - sum(p t) + s), per sample",
    example=_example,
)
def jaccard(xp: Any, input: Any, target: Any, *, smooth: float = 1.0) -> Items:
    """Soft Jaccard (IoU) loss: ``l_i = 1 - (I_i + s) / (U_i + s)``, ``I = sum p t``,
    ``U = sum p + sum t - I``.

    Sums run over every non-batch element of sample i; ``s = smooth`` (default 1.0) is added to
    numerator and denominator.

    Gradient: ``dl_i/dp_ij = (score_i - (1 + score_i) t_ij) / (U_i + s)``. Hessian: as
    ``tversky`` with ``alpha = beta = 1``.

    Options: ``smooth`` >= 0. torch has no Jaccard loss; same as
    segmentation_models_pytorch's ``soft_jaccard_score`` over all non-batch dims with its
    ``smooth`` (no ``eps`` clamp) and MONAI's ``DiceLoss(jaccard=True)`` with
    ``smooth_nr = smooth_dr``.

    Reference: Rahman and Wang, "Optimizing Intersection-Over-Union in Deep Neural Networks for
    Image Segmentation", ISVC 2016.
    """
    return _tversky(xp, input, target, alpha=1.0, beta=1.0, smooth=smooth)



@register(
    "tversky",
    input_kind="probabilities",
    target_kind="unit_interval",
    layout="per_sample",
    options={"alpha": Real(0, None), "beta": Real(0, None), "smooth": SMOOTH},
    hessian="indefinite",
    task="segmentation",
    formula="1 - (TP + s) / (TP + alpha FP + beta FN + s), per sample",
    example=_example,
)
def tversky(
    xp: Any, input: Any, target: Any, *, alpha: float = 0.5, beta: float = 0.5,
    smooth: float = 1.0,
) -> Items:
    """Tversky loss: ``l_i = 1 - (TP_i + s) / (TP_i + alpha FP_i + beta FN_i + s)``.

    ``TP = sum p t``, ``FP = sum p (1 - t)``, ``FN = sum (1 - p) t`` over every non-batch element
    of sample i; ``alpha`` weighs false positives, ``beta`` false negatives; ``s = smooth``
    (default 1.0) is added to numerator and denominator. ``alpha = beta = 1`` is ``jaccard``;
    ``alpha = beta = 0.5`` with ``smooth = s / 2`` is ``dice`` with ``smooth = s``.

    Gradient: with ``D_i`` the denominator,
    ``dl_i/dp_ij = (score_i (alpha + (1 - alpha - beta) t_ij) - t_ij) / D_i``. Hessian: with
    ``e = alpha + (1 - alpha - beta) t`` and ``g = (t - score e) / D``, per sample
    ``(e g^T + g e^T) / D`` (rank two, indefinite).

    Options: ``alpha``, ``beta`` >= 0; ``smooth`` >= 0. torch has no
    Tversky loss; same as segmentation_models_pytorch's ``TverskyLoss`` score with ``gamma=1``
    over all non-batch dims (no ``eps`` clamp).

    Reference: Salehi, Erdogmus, Gholipour, "Tversky loss function for image segmentation using
    3D fully convolutional deep networks", MLMI 2017.
    """
    return _tversky(xp, input, target, alpha=alpha, beta=beta, smooth=smooth)
