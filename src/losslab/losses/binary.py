"""Binary and multi-label losses: one independent yes/no decision per element.

All logit-based losses here are built from the same two stable pieces: ``softplus(x)`` and
``softplus(-x)`` sharing one ``exp(-|x|)``, and ``sigmoid(x)``, ``sigmoid(-x)`` from that same
exponential. Every term then stays finite for any finite logit (1e30 in float64, 1e4 in float32),
and no ``log(p + eps)`` appears anywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from losslab.losses._primitives import log1p_unit, namespace, to_namespace, update_ops
from losslab.losses._reduction import reduce, scale_for
from losslab.losses._registry import register
from losslab.losses._validation import (
    as_target,
    check_broadcastable,
    check_floating,
    check_in_range,
    check_positive_number,
    check_reduction,
    check_same_shape,
    value_checks_enabled,
)

# torch clamps each log term of binary_cross_entropy at -100 (so p = 0 or 1 gives a finite
# loss), and its backward divides by max((1 - p) p, 1e-12). We reproduce both exactly; torch's
# 1e-12 is a C float, i.e. 9.99999996e-13 even for float64 inputs (measured on torch 2.13).
_LOG_CLAMP = -100.0
_BCE_GRAD_EPS = float(np.float32(1e-12))


# --- shared pieces ---------------------------------------------------------------------------


def _prepare(
    input: Any, target: Any, reduction: str, **options: Any
) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Checks shared by every loss here: float input, same-shape target, option arrays that
    broadcast to the input (moved to its namespace and dtype)."""
    check_reduction(reduction)
    xp, (input, target) = namespace(input, target)
    check_floating(xp, input, "input")
    check_same_shape(input, target, "input", "target")
    target = as_target(xp, target, input)
    arrays = {}
    for name, a in options.items():
        a = to_namespace(xp, a, input, input.dtype)
        if a is not None:
            check_broadcastable(a, tuple(input.shape), name, "input")
        arrays[name] = a
    return xp, input, target, arrays


def _softplus_both(xp: Any, x: Any) -> tuple[Any, Any, Any]:
    """``(softplus(x), softplus(-x), exp(-|x|))`` from a single exponential.

    softplus(+-x) = max(+-x, 0) + log1p(exp(-|x|)); the two are returned separately (never as
    ``softplus(x) - x``) so that neither loses precision to cancellation.
    """
    e = xp.exp(-xp.abs(x))
    tail = log1p_unit(xp, e)
    return xp.maximum(x, 0.0) + tail, xp.maximum(-x, 0.0) + tail, e


def _sigmoid_both(xp: Any, x: Any, e: Any) -> tuple[Any, Any]:
    """``(sigmoid(x), sigmoid(-x))`` given ``e = exp(-|x|)``; both accurate in their tails."""
    big = 1.0 / (1.0 + e)
    small = e * big
    nonneg = x >= 0
    return xp.where(nonneg, big, small), xp.where(nonneg, small, big)


def _logit_bce(xp: Any, x: Any, y: Any, pos_weight: Any, compute_grad: bool) -> tuple[Any, Any]:
    """Element-wise ``-[pw y log sigmoid(x) + (1 - y) log sigmoid(-x)]`` and its derivative.

    Written as ``pw y softplus(-x) + (1 - y) softplus(x)``: for y in [0, 1] both terms are >= 0,
    so nothing cancels. Derivative: ``(1 - y) sigmoid(x) - pw y sigmoid(-x)`` (``sigmoid(x) - y``
    without pos_weight).
    """
    sp_pos, sp_neg, e = _softplus_both(xp, x)
    pos_term = y * sp_neg if pos_weight is None else (pos_weight * y) * sp_neg
    loss = pos_term + (1.0 - y) * sp_pos
    if not compute_grad:
        return loss, None
    if pos_weight is None:
        # sigmoid(x) = exp(min(x, 0)) / (1 + exp(-|x|)): both tails exact, and an exp is several
        # times cheaper than a where over the whole array.
        return loss, xp.exp(xp.minimum(x, 0.0)) / (1.0 + e) - y
    s, s_neg = _sigmoid_both(xp, x, e)
    return loss, (1.0 - y) * s - (pos_weight * y) * s_neg


def _weighted(loss: Any, grad: Any, weight: Any) -> tuple[Any, Any]:
    if weight is None:
        return loss, grad
    return loss * weight, (None if grad is None else grad * weight)


def _reduce_with_grad(
    xp: Any, loss: Any, grad: Any, reduction: str, compute_grad: bool
) -> tuple[Any, Any]:
    value = reduce(xp, loss, reduction)
    if not compute_grad:
        return value, None
    scale = scale_for(reduction, loss)
    return value, grad if scale == 1.0 else grad * scale


def _check_probabilities(xp: Any, x: Any, name: str) -> None:
    check_in_range(xp, x, name, 0.0, 1.0, "probabilities")


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


@register(
    "bce",
    input_kind="probabilities",
    target_kind="unit_interval",
    layout="elementwise",
    rowwise=True,
    task="binary",
    formula="-w [y log p + (1 - y) log(1 - p)], logs clamped at -100",
    example=_prob_example,
    torch="binary_cross_entropy",
)
def bce(
    input: Any,
    target: Any,
    *,
    weight: Any = None,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Binary cross-entropy on probabilities: ``l_i = -w_i [y_i log p_i + (1 - y_i) log(1 - p_i)]``.

    Each log term is clamped below at -100, as torch documents, so ``p = 0`` or ``p = 1`` gives
    a finite loss (at most ``100 w``) instead of ``inf`` or ``nan``.

    Gradient: ``dl_i/dp_i = w_i (p_i - y_i) / max((1 - p_i) p_i, 1e-12)``, divided by the number of
    elements for ``reduction="mean"``. The 1e-12 floor is torch's backward, reproduced exactly:
    at ``p = 0`` or ``1`` the gradient is ``+-w 1e12`` (or 0 where ``p == y``), never ``nan``.
    (Below ``p = 1e-12`` this is no longer the derivative of the clamped value; it is torch's.)

    Options: ``weight`` (broadcastable to ``input``; rescales each element, not normalised by
    the mean), ``reduction`` ("mean" | "sum" | "none").

    The article's cross-entropy ``CE = -1/n sum_i sum_j [y_ij log p_ij + (1 - y_ij) log(1 - p_ij)]``
    (summed over the C classes, averaged over the n samples) is exactly
    ``losslab.get("bce", reduction="sum")(p, y) / n``; ``reduction="mean"`` would divide by
    ``n C`` instead. Prefer ``bce_with_logits`` on logits: it is stable without any clamp.

    Same as ``torch.nn.functional.binary_cross_entropy`` (``input`` and ``target`` must lie in
    [0, 1]; anything else is a ValueError naming the argument). Reference: Goodfellow, Bengio and
    Courville, *Deep Learning* (2016), section 6.2.2.2; PyTorch ``BCELoss`` documentation.
    """
    xp, input, target, opts = _prepare(input, target, reduction, weight=weight)
    _check_probabilities(xp, input, "input")
    _check_probabilities(xp, target, "target")
    # Masked so that log(0) is never evaluated (no warnings); the -100 floor is torch's.
    pos = input > 0
    below = input < 1
    log_p = xp.where(pos, xp.log(xp.where(pos, input, 1.0)), _LOG_CLAMP)
    log_1mp = xp.where(below, xp.log1p(-xp.where(below, input, 0.0)), _LOG_CLAMP)
    log_p = xp.maximum(log_p, _LOG_CLAMP)
    log_1mp = xp.maximum(log_1mp, _LOG_CLAMP)
    loss = -(target * log_p + (1.0 - target) * log_1mp)
    grad = None
    if compute_grad:
        grad = (input - target) / xp.maximum((1.0 - input) * input, _BCE_GRAD_EPS)
    loss, grad = _weighted(loss, grad, opts["weight"])
    return _reduce_with_grad(xp, loss, grad, reduction, compute_grad)


@register(
    "bce_with_logits",
    input_kind="logits",
    target_kind="unit_interval",
    layout="elementwise",
    rowwise=True,
    task="binary",
    formula="w [pw y softplus(-x) + (1 - y) softplus(x)]",
    example=_logit_example,
    torch="binary_cross_entropy_with_logits",
)
def bce_with_logits(
    input: Any,
    target: Any,
    *,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
    compute_grad: bool = True,
):
    """Binary cross-entropy on logits:
    ``l_i = -w_i [pw_i y_i log sigmoid(x_i) + (1 - y_i) log sigmoid(-x_i)]``.

    Evaluated as ``w [pw y softplus(-x) + (1 - y) softplus(x)]`` with one ``exp(-|x|)``: finite
    and accurate for every finite logit (both terms are non-negative, nothing cancels), so for
    strongly negative margins it is more accurate than torch's ``(1 - y) x - log_w log_sigmoid(x)``,
    which returns 0 where the true loss is e.g. 4e-18.

    Gradient: ``dl_i/dx_i = w_i [(1 - y_i) sigmoid(x_i) - pw_i y_i sigmoid(-x_i)]``, i.e.
    ``w (sigmoid(x) - y)`` without pos_weight; divided by the number of elements for
    ``reduction="mean"``. Limits: ``w (1 - y)`` as ``x -> inf``, ``-w pw y`` as ``x -> -inf``.

    Options: ``weight`` (broadcastable to ``input``), ``pos_weight`` (weight of the positive term;
    broadcast against ``input`` the NumPy way, so a shape-(C,) pos_weight applies along the last
    axis; for (N, C, H, W) inputs use shape (C, 1, 1) as torch documents), ``reduction``.

    Same as ``torch.nn.functional.binary_cross_entropy_with_logits``, except that option arrays
    must broadcast to ``input`` without enlarging it (torch would silently broadcast the output).
    Reference: PyTorch ``BCEWithLogitsLoss`` documentation; Goodfellow et al., *Deep Learning*
    (2016), section 6.2.2.2.
    """
    xp, input, target, opts = _prepare(
        input, target, reduction, weight=weight, pos_weight=pos_weight
    )
    loss, grad = _logit_bce(xp, input, target, opts["pos_weight"], compute_grad)
    loss, grad = _weighted(loss, grad, opts["weight"])
    return _reduce_with_grad(xp, loss, grad, reduction, compute_grad)


@register(
    "focal",
    input_kind="logits",
    target_kind="unit_interval",
    layout="elementwise",
    rowwise=True,
    task="binary",
    formula="-alpha_t (1 - p_t)^gamma log p_t, p = sigmoid(x)",
    example=_logit_example,
    torch=None,
)
def focal(
    input: Any,
    target: Any,
    *,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Sigmoid focal loss: ``l_i = alpha_t (1 - p_t)^gamma ce_i`` on logits ``x``.

    With ``p = sigmoid(x)``: ``ce = bce_with_logits(x, y)`` element-wise,
    ``p_t = p y + (1 - p)(1 - y)``, ``alpha_t = alpha y + (1 - alpha)(1 - y)`` (``alpha_t = 1``
    when ``alpha < 0``, which disables the weighting as in torchvision). For hard labels this is
    ``-alpha_t (1 - p_t)^gamma log p_t``.

    Stability: with ``e = exp(-|x|)``, written as ``exp(min(x, 0)) exp(-max(x, 0))`` (one of the
    two factors is exactly 1), ``sigmoid(x) = exp(min(x, 0)) / (1 + e)`` and
    ``sigmoid(-x) = exp(-max(x, 0)) / (1 + e)`` are accurate in both tails without a branch, and
    ``1 - p_t = q = (1 - y) sigmoid(x) + y sigmoid(-x)`` and ``sigmoid(x) - y =
    (1 - y) sigmoid(x) - y sigmoid(-x)`` are sums of non-negative terms (no cancellation in
    ``q``, which may underflow to 0 only where its power does). ``ce = (1 - y) max(x, 0) +
    y max(-x, 0) + log1p(e)``. Finite for any finite logit; ``gamma = 0`` gives ``alpha_t ce``
    exactly.

    Gradient: ``dl_i/dx_i = alpha_t [gamma (1 - 2y) sigmoid(x) sigmoid(-x) q^(gamma - 1) ce +
    q^gamma (sigmoid(x) - y)]``, with ``sigmoid(x) sigmoid(-x) = e / (1 + e)^2`` and, for
    ``gamma < 1``, ``q^(gamma - 1)`` taken as ``q^gamma / q`` (0 where q = 0, its limit there);
    divided by the number of elements for ``reduction="mean"``.
    Limits: ``-alpha`` (y = 1) and ``1 - alpha`` (y = 0) on confidently wrong logits, 0 on
    confidently right ones.

    Options: ``alpha`` (in [0, 1], or negative to disable), ``gamma`` (>= 0), ``reduction``.
    Unlike ``torchvision.ops.sigmoid_focal_loss``, whose default reduction is "none", the default
    here is "mean", like every other loss in the catalog; pass ``reduction="none"`` for
    torchvision's default. Values and gradients otherwise equal torchvision's (alpha > 1, which
    torchvision accepts and which makes negatives' weight negative, is a ValueError here).

    Reference: Lin, Goyal, Girshick, He and Dollar, "Focal Loss for Dense Object Detection",
    ICCV 2017 (arXiv:1708.02002); ``torchvision.ops.sigmoid_focal_loss``.
    """
    alpha = _check_alpha(alpha)
    gamma = check_positive_number(gamma, "gamma", allow_zero=True)
    xp, x, y, _ = _prepare(input, target, reduction)
    _check_probabilities(xp, y, "target")
    # No xp.where anywhere (a select pass costs several arithmetic ones); temporaries are
    # updated in place where the namespace allows (JAX rebinds instead).
    iadd, isub, imul, idiv = update_ops(x)
    lo = xp.minimum(x, 0.0)
    hi = xp.maximum(x, 0.0)
    n_pos = xp.exp(lo)  # sigmoid(x) (1 + e)
    n_neg = xp.exp(-hi)  # sigmoid(-x) (1 + e)
    e = n_pos * n_neg
    inv = 1.0 / (e + 1.0)
    one_minus_y = 1.0 - y
    ce = one_minus_y * hi
    del hi
    ce = isub(ce, y * lo)
    del lo
    ce = iadd(ce, log1p_unit(xp, e))
    a_pos = one_minus_y * n_pos  # (1 - y) sigmoid(x), once scaled by inv
    del n_pos, one_minus_y
    a_pos = imul(a_pos, inv)
    b_neg = y * n_neg  # y sigmoid(-x)
    del n_neg
    b_neg = imul(b_neg, inv)
    a_t = None
    if alpha >= 0:
        a_t = y * (2.0 * alpha - 1.0)
        a_t = iadd(a_t, 1.0 - alpha)
    mod = q = None
    if gamma != 0.0:
        q = a_pos + b_neg
        mod = q**gamma
        loss = mod * ce
    else:
        loss = ce  # not needed after this when gamma = 0
    if a_t is not None:
        loss = imul(loss, a_t)
    value = reduce(xp, loss, reduction)
    if not compute_grad:
        return value, None
    scale = scale_for(reduction, loss)
    del loss
    grad = a_pos
    grad = isub(grad, b_neg)  # sigmoid(x) - y
    del a_pos, b_neg
    if mod is not None:
        grad = imul(grad, mod)
        term = e * inv
        term = imul(term, inv)  # sigmoid(x) sigmoid(-x)
        if gamma >= 1.0:
            if gamma != 1.0:
                term = imul(term, q ** (gamma - 1.0))
        else:
            term = imul(term, mod)
            term = idiv(term, xp.maximum(q, xp.finfo(x.dtype).smallest_normal))
        term = imul(term, ce)
        term = imul(term, y * (-2.0 * gamma) + gamma)
        grad = iadd(grad, term)
    if a_t is not None:
        grad = imul(grad, a_t)
    if scale != 1.0:
        grad = imul(grad, scale)
    return value, grad


def _check_alpha(alpha: Any) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise TypeError(f"alpha must be a number; got {alpha!r}.") from None
    if a != a or a > 1.0:
        raise ValueError(
            f"alpha must lie in [0, 1] (or be negative to disable class weighting); got {alpha!r}."
        )
    return a


def _check_signs(xp: Any, y: Any, name: str) -> None:
    """Labels must be -1 or +1 (a 0/1 label here would silently give the constant log 2)."""
    if value_checks_enabled() and not bool(xp.all((y == 1.0) | (y == -1.0))):
        raise ValueError(f"{name} must hold labels -1 or +1; found another value.")


@register(
    "soft_margin",
    input_kind="scores",
    target_kind="sign",
    layout="elementwise",
    rowwise=True,
    task="binary",
    formula="log(1 + exp(-y x)), y in {-1, +1}",
    example=_sign_example,
    torch="soft_margin_loss",
)
def soft_margin(input: Any, target: Any, *, reduction: str = "mean", compute_grad: bool = True):
    """Two-class soft-margin (logistic) loss: ``l_i = log(1 + exp(-y_i x_i))``, y in {-1, +1}.

    Evaluated as ``softplus(-y x)``, finite for every finite ``x`` (torch's ``log1p(exp(-y x))``
    overflows to ``inf`` once ``-y x`` exceeds ~89 in float32).

    Gradient: ``dl_i/dx_i = -y_i sigmoid(-y_i x_i)``, divided by the number of elements for
    ``reduction="mean"``; limits ``-y`` (confidently wrong) and 0 (confidently right).

    Options: ``reduction``. Same as ``torch.nn.functional.soft_margin_loss``, except that target
    values other than -1 and +1 (which torch accepts) are a ValueError: a 0/1 label would
    otherwise silently contribute the constant log 2. Reference: PyTorch ``SoftMarginLoss``
    documentation; logistic regression with +-1 labels, e.g. Hastie, Tibshirani and Friedman,
    *The Elements of Statistical Learning* (2009), section 10.6.
    """
    xp, input, y, _ = _prepare(input, target, reduction)
    _check_signs(xp, y, "target")
    z = -y * input
    loss, _, e = _softplus_both(xp, z)
    if not compute_grad:
        return reduce(xp, loss, reduction), None
    s, _ = _sigmoid_both(xp, z, e)
    return _reduce_with_grad(xp, loss, -y * s, reduction, compute_grad)


@register(
    "multilabel_soft_margin",
    input_kind="logits",
    target_kind="unit_interval",
    layout="feature_axis",
    task="multilabel",
    formula="mean_c w_c [y log(1 + exp(-x)) + (1 - y) log(1 + exp(x))]",
    example=_multilabel_example,
    torch="multilabel_soft_margin_loss",
)
def multilabel_soft_margin(
    input: Any,
    target: Any,
    *,
    weight: Any = None,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Multi-label one-versus-all logistic loss, one value per sample:
    ``l_n = 1/C sum_c w_c [y_nc softplus(-x_nc) + (1 - y_nc) softplus(x_nc)]``.

    The class axis is the last one; ``input`` of shape (N, C) gives N losses (shape (C,) gives
    one 0-d loss), then ``reduction`` averages or sums them over the samples.

    Gradient: ``dl_n/dx_nc = w_c (sigmoid(x_nc) - y_nc) / C``, divided by N for
    ``reduction="mean"``.

    Options: ``weight`` (broadcastable to ``input``; usually one weight per class, shape (C,)),
    ``reduction``. Equals ``C^-1 * bce_with_logits(x, y, weight, reduction="sum")`` per sample.
    Targets must lie in [0, 1] (torch does not check; values outside give a meaningless loss).

    Same as ``torch.nn.functional.multilabel_soft_margin_loss``. Reference: PyTorch
    ``MultiLabelSoftMarginLoss`` documentation.
    """
    xp, input, y, opts = _prepare(input, target, reduction, weight=weight)
    if input.ndim < 1:
        raise ValueError(
            "input must have at least 1 dimension (the last one holds the classes); got a 0-d "
            "array."
        )
    _check_probabilities(xp, y, "target")
    n_classes = int(input.shape[-1])
    loss, grad = _logit_bce(xp, input, y, None, compute_grad)
    loss, grad = _weighted(loss, grad, opts["weight"])
    per_sample = xp.sum(loss, axis=-1) / n_classes
    value = reduce(xp, per_sample, reduction)
    if not compute_grad:
        return value, None
    return value, grad * (scale_for(reduction, per_sample) / n_classes)
