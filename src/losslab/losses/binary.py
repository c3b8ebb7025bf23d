"""Binary and multi-label losses: one independent yes/no decision per element.

All logit-based losses here are built from the same stable pieces: ``softplus(x)`` and
``softplus(-x)`` sharing one ``e = exp(-|x|)``, and ``sigmoid(x) = exp(min(x, 0)) / (1 + e)``
(``sigmoid_from``; ``sigmoid(x) sigmoid(-x) = e / (1 + e)^2``). Every term then stays finite for
any finite logit (1e30 in float64, 1e4 in float32), and no ``log(p + eps)`` appears anywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from losslab.losses._constraints import NONE, Array, Either, Real
from losslab.losses._primitives import (
    in_place,
    logistic_parts,
    positive_and_negative_parts,
    power,
    scaled,
    sigmoid_from,
)
from losslab.losses._registry import Items, register
from losslab.losses._validation import check_broadcastable, check_same_shape

# torch clamps each log term of binary_cross_entropy at -100 (so p = 0 or 1 gives a finite
# loss), and its backward divides by max((1 - p) p, 1e-12). We reproduce both exactly; torch's
# 1e-12 is a C float, i.e. 9.99999996e-13 even for float64 inputs (measured on torch 2.13).
_LOG_CLAMP = -100.0
_BCE_GRAD_EPS = float(np.float32(1e-12))

# An element weight broadcast against the input the NumPy way (torch's ``weight`` of bce).
BROADCAST_WEIGHT = Either(NONE, Array("broadcastable to input"))
LABEL_SMOOTHING = Real(0, 1)


def smoothed_labels(y: Any, label_smoothing: float) -> Any:
    """Keras's binary label smoothing: ``y (1 - ls) + ls / 2`` (each label moves towards 1/2)."""
    if label_smoothing == 0:
        return y
    return y * (1.0 - label_smoothing) + 0.5 * label_smoothing


def _check_option_arrays(input: Any, **arrays: Any) -> None:
    for name, a in arrays.items():
        if a is not None:
            check_broadcastable(a, tuple(input.shape), name, "input")


# --- examples ----------------------------------------------------------------------------------


def _shape_for(rng: np.random.Generator, *option_arrays: Any) -> tuple[int, ...]:
    """A random (N, C) shape, or (N, *shape) of the largest option array so that it broadcasts."""
    shapes = [np.shape(a) for a in option_arrays if a is not None]
    tail = max(shapes, key=len, default=())
    if len(tail) == 0:
        return (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
    return (int(rng.integers(1, 4)), *tail)


def _labels01(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Hard 0/1 labels, with some soft labels mixed in (every loss here accepts y in [0, 1])."""
    y = rng.integers(0, 2, size=shape).astype(dtype)
    soft = rng.random(size=shape) < 0.3
    return np.where(soft, rng.random(size=shape), y).astype(dtype)


def _prob_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    shape = _shape_for(rng, options.get("weight"))
    # Kept inside [0.05, 0.95]: away from the clamps, so finite differences are meaningful.
    p = rng.uniform(0.05, 0.95, size=shape).astype(dtype)
    return p, _labels01(rng, shape, dtype)


def _logit_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    shape = _shape_for(rng, options.get("weight"), options.get("pos_weight"))
    x = (2.0 * rng.normal(size=shape)).astype(dtype)
    return x, _labels01(rng, shape, dtype)


def _sign_example(rng: np.random.Generator, dtype: Any = "float64", **_: Any):
    shape = _shape_for(rng)
    x = (2.0 * rng.normal(size=shape)).astype(dtype)
    y = rng.choice(np.array([-1.0, 1.0]), size=shape).astype(dtype)
    return x, y


def _multilabel_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    shape = _shape_for(rng, options.get("weight"))
    x = (2.0 * rng.normal(size=shape)).astype(dtype)
    y = rng.integers(0, 2, size=shape).astype(dtype)
    return x, y


# --- losses ------------------------------------------------------------------------------------


def _scaled(items: Items, weight: Any) -> Items:
    """``weight * items`` for a per-element weight (no renormalisation of the mean)."""
    if weight is None:
        return items
    grad, hess = items.grad, items.hess
    return Items(
        lambda: weight * items.per_item(),
        grad=lambda w: grad(w * weight),
        hess=None if hess is None else (lambda w: hess(w * weight)),
    )


@register(
    "bce",
    input_kind="probabilities",
    target_kind="unit_interval",
    layout="elementwise",
    options={"weight": BROADCAST_WEIGHT, "label_smoothing": LABEL_SMOOTHING},
    hessian="nonnegative",
    rowwise=True,
    task="binary",
    formula="-w [y log p + (1 - y) log(1 - p)], logs clamped at -100",
    example=_prob_example,
    torch="binary_cross_entropy",
    module="BCELoss",
)
def bce(
    xp: Any, input: Any, target: Any, *, weight: Any = None, label_smoothing: float = 0.0
) -> Items:
    """Binary cross-entropy on probabilities: ``l_i = -w_i [y_i log p_i + (1 - y_i) log(1 - p_i)]``.

    Each log term is clamped below at -100, as torch documents, so ``p = 0`` or ``p = 1`` gives
    a finite loss (at most ``100 w``) instead of ``inf`` or ``nan``.

    Gradient: ``dl_i/dp_i = w_i (p_i - y_i) / max((1 - p_i) p_i, 1e-12)``. The 1e-12 floor is
    torch's backward, reproduced exactly: at ``p = 0`` or ``1`` the gradient is ``+-w 1e12`` (or
    0 where ``p == y``), never ``nan``. (Below ``p = 1e-12`` this is no longer the derivative of
    the clamped value; it is torch's.) Hessian: ``w [y / p^2 + (1 - y) / (1 - p)^2] =
    w (p^2 - 2 p y + y) / (p (1 - p))^2``, with the same floor on ``p (1 - p)``.

    Options: ``weight`` (broadcastable to ``input``; rescales each element, not normalised by
    the mean); ``label_smoothing`` in [0, 1]: the target becomes ``y (1 - ls) + ls / 2``
    (Keras's ``BinaryCrossentropy(label_smoothing=ls)``; torch has no such option).

    The article's cross-entropy ``CE = -1/n sum_i sum_j [y_ij log p_ij + (1 - y_ij) log(1 - p_ij)]``
    (summed over the C classes, averaged over the n samples) is exactly
    ``losslab.get("bce", reduction="sum")(p, y) / n``; ``reduction="mean"`` would divide by
    ``n C`` instead. Prefer ``bce_with_logits`` on logits: it is stable without any clamp.

    Same as ``torch.nn.functional.binary_cross_entropy`` (``input`` and ``target`` must lie in
    [0, 1]; anything else is a ValueError naming the argument). Reference: Goodfellow, Bengio and
    Courville, *Deep Learning* (2016), section 6.2.2.2; PyTorch ``BCELoss`` documentation.
    """
    _check_option_arrays(input, weight=weight)
    p, y = input, smoothed_labels(target, label_smoothing)
    # Masked so that log(0) is never evaluated (no warnings); the -100 floor is torch's.
    pos, below = p > 0, p < 1
    log_p = xp.maximum(xp.where(pos, xp.log(xp.where(pos, p, 1.0)), _LOG_CLAMP), _LOG_CLAMP)
    log_q = xp.maximum(
        xp.where(below, xp.log1p(-xp.where(below, p, 0.0)), _LOG_CLAMP), _LOG_CLAMP
    )
    var = xp.maximum((1.0 - p) * p, _BCE_GRAD_EPS)
    return _scaled(
        Items(
            -(y * log_p + (1.0 - y) * log_q),
            grad=lambda w: scaled((p - y) / var, w),
            hess=lambda w: w * ((p * p - 2.0 * p * y + y) / (var * var)),
        ),
        weight,
    )


def _logit_bce(xp: Any, x: Any, y: Any, pos_weight: Any) -> Items:
    """Element-wise ``-[pw y log sigmoid(x) + (1 - y) log sigmoid(-x)]`` and its derivatives.

    Written as ``pw y softplus(-x) + (1 - y) softplus(x)`` with ``softplus(+-x) = max(+-x, 0) +
    log1p(exp(-|x|))``: for y in [0, 1] both terms are >= 0, so nothing cancels. Gradient
    ``(1 - y) sigmoid(x) - pw y sigmoid(-x)`` (``sigmoid(x) - y`` without pos_weight); Hessian
    ``((1 - y) + pw y) sigmoid(x) sigmoid(-x)``.
    """
    e = xp.exp(-xp.abs(x))
    inv = 1.0 / (1.0 + e)
    py = y if pos_weight is None else pos_weight * y

    def values() -> Any:
        hi, lo = positive_and_negative_parts(xp, x)
        tail = xp.log1p(e)
        return py * (tail - lo) + (1.0 - y) * (hi + tail)  # softplus(-x) = tail - min(x, 0)

    def grad(w: Any) -> Any:
        s = xp.exp(xp.minimum(x, 0.0)) * inv  # sigmoid(x), both tails exact
        if pos_weight is None:
            g = s - y
        else:
            g = (1.0 - y) * s - py * (xp.exp(-xp.maximum(x, 0.0)) * inv)
        return scaled(g, w)

    def hess(w: Any) -> Any:
        h = e * inv * inv  # sigmoid(x) sigmoid(-x), accurate in both tails
        if pos_weight is not None:
            h *= (1.0 - y) + py
        return scaled(h, w)

    # Values on demand: gradient boosting asks for the two derivatives only.
    return Items(values, grad=grad, hess=hess)


@register(
    "bce_with_logits",
    input_kind="logits",
    target_kind="unit_interval",
    layout="elementwise",
    options={
        "weight": BROADCAST_WEIGHT,
        "pos_weight": BROADCAST_WEIGHT,
        "label_smoothing": LABEL_SMOOTHING,
    },
    hessian="nonnegative",
    rowwise=True,
    task="binary",
    formula="w [pw y softplus(-x) + (1 - y) softplus(x)]",
    example=_logit_example,
    torch="binary_cross_entropy_with_logits",
    module="BCEWithLogitsLoss",
)
def bce_with_logits(
    xp: Any, input: Any, target: Any, *, weight: Any = None, pos_weight: Any = None,
    label_smoothing: float = 0.0,
) -> Items:
    """Binary cross-entropy on logits:
    ``l_i = -w_i [pw_i y_i log sigmoid(x_i) + (1 - y_i) log sigmoid(-x_i)]``.

    Evaluated as ``w [pw y softplus(-x) + (1 - y) softplus(x)]`` with one ``exp(-|x|)``: finite
    and accurate for every finite logit (both terms are non-negative, nothing cancels), so for
    strongly negative margins it is more accurate than torch's ``(1 - y) x - log_w log_sigmoid(x)``,
    which returns 0 where the true loss is e.g. 4e-18.

    Gradient: ``dl_i/dx_i = w_i [(1 - y_i) sigmoid(x_i) - pw_i y_i sigmoid(-x_i)]``, i.e.
    ``w (sigmoid(x) - y)`` without pos_weight. Limits: ``w (1 - y)`` as ``x -> inf``,
    ``-w pw y`` as ``x -> -inf``. Hessian: ``w ((1 - y) + pw y) sigmoid(x) sigmoid(-x)``
    (``w p (1 - p)`` without pos_weight).

    Options: ``weight`` (broadcastable to ``input``), ``pos_weight`` (weight of the positive term;
    broadcast against ``input`` the NumPy way, so a shape-(C,) pos_weight applies along the last
    axis; for (N, C, H, W) inputs use shape (C, 1, 1) as torch documents), ``label_smoothing`` in
    [0, 1] (the target becomes ``y (1 - ls) + ls / 2``, Keras's
    ``BinaryCrossentropy(from_logits=True, label_smoothing=ls)``).

    Same as ``torch.nn.functional.binary_cross_entropy_with_logits``, except that option arrays
    must broadcast to ``input`` without enlarging it (torch would silently broadcast the output).
    Reference: PyTorch ``BCEWithLogitsLoss`` documentation; Goodfellow et al., *Deep Learning*
    (2016), section 6.2.2.2.
    """
    _check_option_arrays(input, weight=weight, pos_weight=pos_weight)
    y = smoothed_labels(target, label_smoothing)
    return _scaled(_logit_bce(xp, input, y, pos_weight), weight)


@register(
    "focal",
    input_kind="logits",
    target_kind="unit_interval",
    layout="elementwise",
    options={
        "alpha": Real(None, 1.0, text="in [0, 1], or negative to disable the class weighting"),
        "gamma": Real(0, None),
        "weight": BROADCAST_WEIGHT,
        "pos_weight": BROADCAST_WEIGHT,
        "label_smoothing": LABEL_SMOOTHING,
    },
    hessian="indefinite",
    rowwise=True,
    task="binary",
    formula="-alpha_t (1 - p_t)^gamma log p_t, p = sigmoid(x)",
    example=_logit_example,
    torch=None,
)
def focal(
    xp: Any, input: Any, target: Any, *, alpha: float = 0.25, gamma: float = 2.0,
    weight: Any = None, pos_weight: Any = None, label_smoothing: float = 0.0,
) -> Items:
    """Sigmoid focal loss: ``l_i = w_i alpha_t (1 - p_t)^gamma ce_i`` on logits ``x``.

    With ``s = sigmoid(x)``: ``ce = bce_with_logits(x, y, pos_weight)`` element-wise
    (``pw y softplus(-x) + (1 - y) softplus(x)``), ``q = 1 - p_t = (1 - y) s + y (1 - s)``,
    ``alpha_t = alpha y + (1 - alpha)(1 - y)`` (``alpha_t = 1`` when ``alpha < 0``, which disables
    the weighting as in torchvision). For hard labels and no ``pos_weight`` this is
    ``-alpha_t (1 - p_t)^gamma log p_t``.

    Stability: ``s`` and ``1 - s`` come from one exponential each, accurate in both tails; ``q``
    is a sum of non-negative terms (no cancellation; it may underflow to 0 only where its power
    does), ``ce = (1 - y) max(x, 0) + pw y max(-x, 0) + ((1 - y) + pw y) log1p(exp(-|x|))``.
    Finite for any finite logit; ``gamma = 0`` gives ``w alpha_t ce`` exactly.

    Derivatives, with ``q' = dq/dx = (1 - 2y) s (1 - s)``, ``ce' = (1 - y) s - pw y (1 - s)``
    (``s - y`` without pos_weight) and ``ce'' = ((1 - y) + pw y) s (1 - s)`` (powers of ``q``
    below 0 are taken as ``q^gamma / q^k``, 0 where ``q`` underflows to 0, the limit of what they
    multiply):

    - gradient ``dl/dx = w alpha_t [gamma q^(gamma-1) q' ce + q^gamma ce']``;
    - Hessian ``d2l/dx2 = w alpha_t [gamma (gamma - 1) q^(gamma-2) q'^2 ce + gamma q^(gamma-1) q'
      ((1 - 2s) ce + 2 ce') + q^gamma ce'']``, which is negative for confidently wrong logits
      when ``gamma > 0`` (for hard labels and ``gamma = 2``, beyond about ``|x| = 2.8`` on the
      wrong side, where the loss approaches its linear asymptote from above): gradient
      boosting needs a positive stand-in there (``losslab.boosting``).

    Limits of the gradient (``w = pw = 1``): ``-alpha`` (y = 1) and ``1 - alpha`` (y = 0) on
    confidently wrong logits, 0 on confidently right ones.

    Options: ``alpha`` (in [0, 1], or negative to disable), ``gamma`` (>= 0), ``weight`` and
    ``pos_weight`` (broadcastable to ``input``, as ``bce_with_logits``: ``weight`` rescales each
    element, ``pos_weight`` the positive term of ``ce`` only; the modulating factor ``q^gamma``
    is unchanged), ``label_smoothing`` in [0, 1] (the target becomes ``y (1 - ls) + ls / 2`` in
    every term, ``alpha_t`` and ``p_t`` included: Keras's ``BinaryFocalCrossentropy(
    apply_class_balancing=True, alpha, gamma, from_logits=True, label_smoothing)``).

    Unlike ``torchvision.ops.sigmoid_focal_loss``, whose default reduction is "none", the default
    here is "mean", like every other loss in the catalog; pass ``reduction="none"`` for
    torchvision's default. Values and gradients otherwise equal torchvision's, with ``weight``
    and ``pos_weight`` passed to its ``binary_cross_entropy_with_logits`` call (alpha > 1, which
    torchvision accepts and which makes negatives' weight negative, is a ValueError here). Keras's
    ``BinaryFocalCrossentropy`` defaults to ``apply_class_balancing=False``: that is
    ``alpha=-1`` here. bokbokbok 1.0.5's published focal Hessian uses the label where the
    probability belongs (so it is 0 for every positive example); the Hessian here is checked
    against finite differences and torch.

    Reference: Lin, Goyal, Girshick, He and Dollar, "Focal Loss for Dense Object Detection",
    ICCV 2017 (arXiv:1708.02002); ``torchvision.ops.sigmoid_focal_loss``.
    """
    _check_option_arrays(input, weight=weight, pos_weight=pos_weight)
    y = smoothed_labels(target, label_smoothing)
    parts = _FocalParts(xp, input, y, alpha, gamma, pos_weight)

    def grad(w: Any) -> Any:
        g = parts.ce_prime * parts.q_gamma
        if gamma != 0:
            # gamma (1 - 2y) s (1 - s) q^(gamma - 1) ce
            g += parts.s_s_neg * parts.q_power(1.0) * parts.ce * (y * (-2.0 * gamma) + gamma)
        g *= parts.a_t
        return scaled(g, w)

    items = Items(
        parts.a_t * parts.q_gamma * parts.ce,
        grad=grad,
        hess=parts.hess,
    )
    return _scaled(items, weight)


class _FocalParts:
    """The pieces of the sigmoid focal loss at ``x``, kept as few arrays as the gradient needs:
    ``q = 1 - p_t``, ``q^gamma``, ``ce``, ``alpha_t``, ``ce'`` and ``s (1 - s)``."""

    def __init__(
        self, xp: Any, x: Any, y: Any, alpha: float, gamma: float, pos_weight: Any = None
    ) -> None:
        self.xp, self.x, self.y, self.gamma = xp, x, y, gamma
        # The logistic pieces are temporaries of this function: each is overwritten by the next
        # quantity made from it (``in_place``), so a block's working set stays small. Under the
        # blocked executor's two threads that pays: benchmarks/bench_contract.py's focal row,
        # 1.13-1.18x the previous code written out of place, 0.98-1.01x in place.
        hi, lo, e, s, s_neg = logistic_parts(xp, x)
        not_y = 1.0 - y
        self.s_s_neg = s * s_neg  # sigmoid(x) sigmoid(-x)
        a_pos = in_place(xp, "multiply", s, not_y)  # (1 - y) sigmoid(x)
        b_neg = in_place(xp, "multiply", s_neg, y)  # y sigmoid(-x)
        self.q = a_pos + b_neg  # 1 - p_t, a sum of non-negative terms
        tail = in_place(xp, "log1p", e)  # log(1 + exp(-|x|))
        ce = in_place(xp, "multiply", hi, not_y)  # (1 - y) max(x, 0)
        if pos_weight is None:
            self.ce_prime = in_place(xp, "subtract", a_pos, b_neg)  # sigmoid(x) - y
            ce = in_place(xp, "subtract", ce, in_place(xp, "multiply", lo, y))
            self.ce = in_place(xp, "add", ce, tail)
            self.ce_second_factor: Any = 1.0
        else:
            py = pos_weight * y
            self.ce_prime = a_pos - pos_weight * b_neg
            self.ce_second_factor = not_y + py
            ce = in_place(xp, "subtract", ce, in_place(xp, "multiply", lo, py))
            self.ce = in_place(xp, "add", ce, in_place(xp, "multiply", tail, self.ce_second_factor))
        self.a_t = 1.0 if alpha < 0 else y * (2.0 * alpha - 1.0) + (1.0 - alpha)
        self.q_gamma = power(xp, self.q, gamma)

    def q_power(self, k: float) -> Any:
        """``q^(gamma - k)``, 0 where q = 0 (its limit there times what it multiplies)."""
        xp, q, gamma = self.xp, self.q, self.gamma
        if gamma >= k:
            return power(xp, q, gamma - k)
        return self.q_gamma / power(xp, xp.maximum(q, xp.finfo(q.dtype).smallest_normal), k)

    def hess(self, w: Any) -> Any:
        """With q' = (1 - 2y) s (1 - s): a_t [gamma (gamma - 1) q^(gamma-2) q'^2 ce
        + gamma q^(gamma-1) q' ((1 - 2s) ce + 2 ce') + q^gamma ce'']."""
        gamma, y, ce, ss = self.gamma, self.y, self.ce, self.s_s_neg
        h = self.q_gamma * (ss * self.ce_second_factor)
        if gamma != 0:
            x = self.x
            # e = exp(-|x|) was overwritten (one buffer less for the value and gradient, which
            # every step needs): the Hessian makes it again
            s = sigmoid_from(self.xp, x, self.xp.exp(-self.xp.abs(x)))
            dq = (1.0 - 2.0 * y) * ss
            h = h + gamma * self.q_power(1.0) * dq * ((1.0 - 2.0 * s) * ce + 2.0 * self.ce_prime)
            if gamma != 1:
                h = h + gamma * (gamma - 1.0) * self.q_power(2.0) * (dq * dq) * ce
        return (w * self.a_t) * h


@register(
    "soft_margin",
    input_kind="scores",
    target_kind="sign",
    layout="elementwise",
    hessian="nonnegative",
    rowwise=True,
    task="binary",
    formula="log(1 + exp(-y x)), y in {-1, +1}",
    example=_sign_example,
    torch="soft_margin_loss",
    module="SoftMarginLoss",
)
def soft_margin(xp: Any, input: Any, target: Any) -> Items:
    """Two-class soft-margin (logistic) loss: ``l_i = log(1 + exp(-y_i x_i))``, y in {-1, +1}.

    Evaluated as ``softplus(-y x)``, finite for every finite ``x`` (torch's ``log1p(exp(-y x))``
    overflows to ``inf`` once ``-y x`` exceeds ~89 in float32).

    Gradient: ``dl_i/dx_i = -y_i sigmoid(-y_i x_i)``; limits ``-y`` (confidently wrong) and 0
    (confidently right). Hessian: ``sigmoid(x) sigmoid(-x)`` (``y^2 = 1``).

    Same as ``torch.nn.functional.soft_margin_loss``, except that target values other than -1 and
    +1 (which torch accepts) are a ValueError: a 0/1 label would otherwise silently contribute the
    constant log 2. Reference: PyTorch ``SoftMarginLoss`` documentation; logistic regression with
    +-1 labels, e.g. Hastie, Tibshirani and Friedman, *The Elements of Statistical Learning*
    (2009), section 10.6.
    """
    z = -target * input
    e = xp.exp(-xp.abs(z))
    return Items(
        xp.maximum(z, 0.0) + xp.log1p(e),
        grad=lambda w: scaled(-target * sigmoid_from(xp, z, e), w),
        hess=lambda w: w * (e / ((1.0 + e) * (1.0 + e))),
    )


@register(
    "multilabel_soft_margin",
    input_kind="logits",
    target_kind="unit_interval",
    layout="feature_axis",
    options={"weight": BROADCAST_WEIGHT},
    hessian="nonnegative",
    task="multilabel",
    formula="mean_c w_c [y log(1 + exp(-x)) + (1 - y) log(1 + exp(x))]",
    example=_multilabel_example,
    torch="multilabel_soft_margin_loss",
    module="MultiLabelSoftMarginLoss",
)
def multilabel_soft_margin(xp: Any, input: Any, target: Any, *, weight: Any = None) -> Items:
    """Multi-label one-versus-all logistic loss, one value per sample:
    ``l_n = 1/C sum_c w_c [y_nc softplus(-x_nc) + (1 - y_nc) softplus(x_nc)]``.

    The class axis is the last one; ``input`` of shape (N, C) gives N losses (shape (C,) gives
    one 0-d loss).

    Gradient: ``dl_n/dx_nc = w_c (sigmoid(x_nc) - y_nc) / C``; Hessian: diagonal (each logit
    appears in one term), ``w_c sigmoid(x) sigmoid(-x) / C``.

    Options: ``weight`` (broadcastable to ``input``; usually one weight per class, shape (C,)).
    Equals ``C^-1 * bce_with_logits(x, y, weight, reduction="sum")`` per sample. Targets must lie
    in [0, 1] (torch does not check; values outside give a meaningless loss).

    Same as ``torch.nn.functional.multilabel_soft_margin_loss``. Reference: PyTorch
    ``MultiLabelSoftMarginLoss`` documentation.
    """
    if input.ndim < 1:
        raise ValueError(
            "input must have at least 1 dimension (the last one holds the classes); got a 0-d "
            "array."
        )
    check_same_shape(input, target, "input", "target")
    _check_option_arrays(input, weight=weight)
    per_element = _scaled(_logit_bce(xp, input, target, None), weight)
    inv_c = 1.0 / int(input.shape[-1]) if input.shape[-1] else 0.0
    grad, element_hess = per_element.grad, per_element.hess
    assert element_hess is not None

    def hess(w: Any) -> Any:
        return element_hess(w * inv_c)

    return Items(
        xp.sum(per_element.per_item(), axis=-1) * inv_c,
        grad=lambda w: grad(w * inv_c),
        hess=hess,
        hvp=lambda w, v: hess(w) * v,
    )
