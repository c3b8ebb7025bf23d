"""Regression losses: a real-valued prediction against a real-valued target."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from losslab.losses._primitives import (
    all_within,
    in_place,
    is_numpy,
    log1p_unit,
    namespace,
    size_of,
    to_namespace,
    update_ops,
)
from losslab.losses._reduction import grad_scale, reduce, scale_for
from losslab.losses._registry import register
from losslab.losses._validation import (
    as_target,
    check_floating,
    check_positive_number,
    check_reduction,
    check_same_shape,
)

__all__ = ["mse", "l1", "huber", "smooth_l1", "log_cosh", "quantile"]

_LOG2 = math.log(2.0)
# Beyond this |d|, log cosh d = |d| - log 2 within float64 rounding (the rest is < e^-40).
_LOG_COSH_LINEAR = 20.0


# Examples: inputs valid for the options, with |input - target| kept >= _GAP away from every kink
# so that central differences (step 1e-6) never straddle one.

_GAP = 1e-2


def _away_from_kinks(d: np.ndarray, kinks: tuple[float, ...]) -> np.ndarray:
    a = np.abs(d)
    for k in kinks:
        a = np.where(np.abs(a - k) < _GAP, k + _GAP, a)
    return np.where(d < 0, -a, a)


def _pair_example(
    rng: np.random.Generator, dtype: Any = "float64", kinks: tuple[float, ...] = (), **options: Any
) -> tuple[Any, ...]:
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
    x = rng.normal(size=shape)
    y = x + _away_from_kinks(rng.normal(scale=1.5, size=shape), kinks)
    return x.astype(dtype), y.astype(dtype)


def _abs_example(rng: np.random.Generator, dtype: Any = "float64", **_: Any) -> tuple[Any, ...]:
    return _pair_example(rng, dtype, kinks=(0.0,))


def _huber_example(
    rng: np.random.Generator, dtype: Any = "float64", *, delta: float = 1.0, **_: Any
) -> tuple[Any, ...]:
    return _pair_example(rng, dtype, kinks=(0.0, float(delta)))


def _smooth_l1_example(
    rng: np.random.Generator, dtype: Any = "float64", *, beta: float = 1.0, **_: Any
) -> tuple[Any, ...]:
    return _pair_example(rng, dtype, kinks=(0.0, float(beta)))


# Shared up-front work.


def _prepare_pair(input: Any, target: Any, reduction: str) -> tuple[Any, Any, Any]:
    """Shared up-front checks for ``loss(input, target)`` with same-shape real targets."""
    check_reduction(reduction)
    xp, (input, target) = namespace(input, target)
    check_floating(xp, input, "input")
    check_same_shape(input, target, "input", "target")
    return xp, input, as_target(xp, target, input)


def _prepare_weight(xp: Any, weight: Any, input: Any) -> Any:
    if weight is None:
        return None
    w = to_namespace(xp, weight, input)
    if not xp.isdtype(w.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"weight must be a real-valued array; got dtype {w.dtype}.")
    check_same_shape(input, w, "input", "weight")
    return xp.astype(w, input.dtype) if w.dtype != input.dtype else w


def _finish(
    xp: Any,
    elementwise: Any,
    dl: Any,
    reduction: str,
    compute_grad: bool,
    weight: Any = None,
    weighted_mean: str = "sum_of_weights",
) -> tuple[Any, Any]:
    """Reduce ``elementwise`` losses and scale their derivatives ``dl`` (a thunk) to match.

    ``dl`` is called only when the gradient is wanted. With a per-element ``weight``, torch's
    ``mse_loss`` and ``l1_loss`` take the mean as ``sum(w l) / sum(w)``
    (``weighted_mean="sum_of_weights"``) while ``huber_loss`` takes ``mean(w l)``
    (``weighted_mean="count"``); both are reproduced.
    """
    if weight is None:
        value = reduce(xp, elementwise, reduction)
        if not compute_grad:
            return value, None
        scale = scale_for(reduction, elementwise)
        return value, dl() if scale == 1.0 else dl() * scale
    weighted = elementwise * weight
    if reduction == "mean" and weighted_mean == "sum_of_weights":
        total = xp.sum(weight)
        value = reduce(xp, weighted, "sum") / total
        if not compute_grad:
            return value, None
        return value, dl() * (weight / total)
    value = reduce(xp, weighted, reduction)
    if not compute_grad:
        return value, None
    return value, dl() * (weight * scale_for(reduction, elementwise))


@register(
    "mse",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    rowwise=True,
    task="regression",
    formula="mean((input - target)^2)",
    example=_pair_example,
    torch="mse_loss",
)
def mse(
    input: Any,
    target: Any,
    *,
    reduction: str = "mean",
    weight: Any = None,
    compute_grad: bool = True,
):
    """Mean squared error: ``l_i = (x_i - y_i)^2``.

    Gradient: ``dl_i/dx_i = 2 (x_i - y_i)``, divided by the number of elements for
    ``reduction="mean"``. Through a model ``yhat(theta)`` this is
    ``dMSE/dtheta = -2/n sum_i (y_i - yhat_i) dyhat_i/dtheta``. (The article's section 3.3 drops
    the minus sign; its code has it.)

    Options: ``reduction``; ``weight`` (optional, same shape as ``input``): per-element weights,
    ``l_i -> w_i l_i``, and ``reduction="mean"`` then divides by ``sum(w)`` (torch's definition).

    Same as ``torch.nn.functional.mse_loss``. Reference: Gauss, *Theoria motus* (1809); any
    statistics text on least squares.
    """
    xp, input, target = _prepare_pair(input, target, reduction)
    w = _prepare_weight(xp, weight, input)
    diff = input - target
    return _finish(xp, diff * diff, lambda: 2.0 * diff, reduction, compute_grad, w)


@register(
    "l1",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    rowwise=True,
    task="regression",
    formula="mean(|input - target|)",
    example=_abs_example,
    torch="l1_loss",
)
def l1(
    input: Any,
    target: Any,
    *,
    reduction: str = "mean",
    weight: Any = None,
    compute_grad: bool = True,
):
    """Mean absolute error: ``l_i = |x_i - y_i|``.

    Gradient: ``dl_i/dx_i = sign(x_i - y_i)``, with ``sign(0) = 0`` at the kink (torch's
    subgradient), divided by the number of elements for ``reduction="mean"``.

    Options: ``reduction``; ``weight`` (optional, same shape as ``input``): per-element weights,
    and ``reduction="mean"`` then divides by ``sum(w)`` (torch's definition).

    Same as ``torch.nn.functional.l1_loss``. Reference: Laplace (1774); Koenker, *Quantile
    Regression* (2005), ch. 1.
    """
    xp, input, target = _prepare_pair(input, target, reduction)
    w = _prepare_weight(xp, weight, input)
    diff = input - target
    return _finish(xp, xp.abs(diff), lambda: xp.sign(diff), reduction, compute_grad, w)


def _huber_parts(xp: Any, diff: Any, delta: float) -> tuple[Any, Any]:
    """Huber value and clipped residual, written so that nothing is squared beyond ``delta``.

    ``m = min(|d|, delta)``; ``m (|d| - m/2)`` is ``d^2/2`` inside and ``delta (|d| - delta/2)``
    outside, so a residual of 1e30 never meets ``d * d`` (which overflows float32 at 2e19).
    """
    a = xp.abs(diff)
    m = xp.minimum(a, delta)
    return m * (a - 0.5 * m), xp.clip(diff, -delta, delta)


@register(
    "huber",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    rowwise=True,
    task="regression",
    formula="mean(0.5 d^2 if |d| < delta else delta (|d| - delta/2)), d = input - target",
    example=_huber_example,
    torch="huber_loss",
)
def huber(
    input: Any,
    target: Any,
    *,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Any = None,
    compute_grad: bool = True,
):
    """Huber loss: ``l_i = d_i^2 / 2`` if ``|d_i| < delta`` else ``delta (|d_i| - delta / 2)``.

    With ``d_i = x_i - y_i``. Gradient: ``dl_i/dx_i = clip(d_i, -delta, delta)``, divided by the
    number of elements for ``reduction="mean"``.

    Options: ``reduction``; ``delta > 0`` (default 1.0); ``weight`` (optional, same shape as
    ``input``): per-element weights, and here ``reduction="mean"`` divides by the number of
    elements, not by ``sum(w)``: that is torch's ``huber_loss`` (unlike its ``mse_loss``).
    Finite for any finite residual (nothing is squared beyond ``delta``).

    Same as ``torch.nn.functional.huber_loss``. Reference: Huber, "Robust Estimation of a
    Location Parameter", Ann. Math. Statist. 35 (1964).
    """
    delta = check_positive_number(delta, "delta")
    xp, input, target = _prepare_pair(input, target, reduction)
    w = _prepare_weight(xp, weight, input)
    value, clipped = _huber_parts(xp, input - target, delta)
    return _finish(xp, value, lambda: clipped, reduction, compute_grad, w, weighted_mean="count")


@register(
    "smooth_l1",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    rowwise=True,
    task="regression",
    formula="mean(0.5 d^2 / beta if |d| < beta else |d| - beta/2), d = input - target",
    example=_smooth_l1_example,
    torch="smooth_l1_loss",
)
def smooth_l1(
    input: Any,
    target: Any,
    *,
    reduction: str = "mean",
    beta: float = 1.0,
    compute_grad: bool = True,
):
    """Smooth L1 loss: ``l_i = d_i^2 / (2 beta)`` if ``|d_i| < beta`` else ``|d_i| - beta / 2``.

    With ``d_i = x_i - y_i``; this is ``huber(delta=beta) / beta``. Gradient:
    ``dl_i/dx_i = clip(d_i, -beta, beta) / beta``, divided by the number of elements for
    ``reduction="mean"``.

    Options: ``reduction``; ``beta >= 0`` (default 1.0). ``beta = 0`` is exactly ``l1``
    (as in torch, which dispatches to ``l1_loss``).

    Same as ``torch.nn.functional.smooth_l1_loss``. Reference: Girshick, "Fast R-CNN", ICCV 2015.
    """
    beta = check_positive_number(beta, "beta", allow_zero=True)
    if beta == 0.0:
        return l1(input, target, reduction=reduction, compute_grad=compute_grad)
    xp, input, target = _prepare_pair(input, target, reduction)
    value, clipped = _huber_parts(xp, input - target, beta)
    return _finish(xp, value / beta, lambda: clipped / beta, reduction, compute_grad)


def _sum_log1p(xp: Any, v: Any) -> Any:
    """``sum(log1p(v))`` for ``0 <= v <= sinh(20)^2``, with half the logarithms.

    ``log1p(a) + log1p(b) = log1p(a + b + a b)``: the pair's ``(1 + a)(1 + b) - 1``, formed
    without cancellation since ``a, b >= 0`` (so with full relative accuracy, tiny terms
    included), and at most ``cosh(20)^4 ~ 3.5e33``, inside float32's range. The logarithm is the
    expensive pass (NumPy's is a scalar libm loop), the pairing three cheap ones on half the data.
    """
    flat = xp.reshape(v, (-1,))
    n = size_of(flat)
    h = n // 2
    a, b = flat[:h], flat[h : 2 * h]
    iadd = update_ops(v)[0]
    w = a * b
    w = iadd(w, a)
    w = iadd(w, b)
    total = xp.sum(_log1p_of_temporary(xp, w))
    if n % 2:
        total = total + xp.sum(xp.log1p(flat[n - 1 :]))
    return total


def _log1p_of_temporary(xp: Any, v: Any) -> Any:
    """``log1p(v)`` for a temporary ``v >= 0``: NumPy's SIMD log with a rounding correction
    (``log1p_unit``; NumPy's own log1p is a scalar loop), elsewhere ``log1p`` written over ``v``."""
    return log1p_unit(xp, v) if is_numpy(xp) else in_place(xp, "log1p", v)


@register(
    "log_cosh",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    rowwise=True,
    task="regression",
    formula="mean(log(cosh(input - target)))",
    example=_pair_example,
    torch=None,
)
def log_cosh(input: Any, target: Any, *, reduction: str = "mean", compute_grad: bool = True):
    """Log-cosh loss: ``l_i = log(cosh(d_i))``, ``d_i = x_i - y_i``.

    With ``a = min(|d|, 20)``, ``M = expm1(2a)`` and ``F = 1 + M = exp(2a)``, evaluated as
    ``l = log1p(M^2 / (4F)) / 2 + (|d| - a)``, since ``sinh^2 a = cosh^2 a - 1 = M^2 / (4F)``
    exactly (``sinh a = (F - 1) / (2 sqrt F)``). ``M`` is accurate relative to its size and
    ``F = 1 + M`` with ``M >= 0`` loses nothing, so this keeps full relative accuracy near 0 (where
    it behaves like ``d^2 / 2`` and where ``|d| + softplus(-2|d|) - log 2`` would cancel to an
    absolute error of ~``eps * log 2``) and far out (like ``|d| - log 2``), from two
    transcendental passes (``expm1``, ``log1p``). Beyond ``|d| = 20`` the rest of ``log cosh`` is
    ``|d| - log 2`` to within ``e^-40``, so nothing overflows (``M^2`` stays below ``e^80``;
    ``cosh`` itself overflows at ``|d| ~ 89`` in float32).

    For ``"sum"`` and ``"mean"`` the terms share logarithms in pairs,
    ``log1p(u) + log1p(w) = log1p(u + w + u w)`` (no cancellation: all terms are >= 0), which
    halves the costliest pass.

    Gradient: ``dl_i/dx_i = tanh(d_i) = sign(d_i) M / (2 + M)``, from the same ``M`` (exactly
    +-1 for large residuals), divided by the number of elements for ``reduction="mean"``.

    Options: ``reduction``. PyTorch has no log-cosh loss; Keras has ``log_cosh`` (same value,
    computed there as ``d + softplus(-2d) - log 2`` throughout). Reference: Chen et al., "Log
    Hyperbolic Cosine Loss Improves Variational Auto-Encoder", 2019; Keras ``losses.log_cosh``.
    """
    xp, input, target = _prepare_pair(input, target, reduction)
    iadd, _, imul, idiv = update_ops(input)
    d = input - target
    a = xp.abs(d)
    # Two transcendental passes (expm1, log1p) for value and gradient; the rest are cheap
    # passes, done in place where the namespace allows (JAX rebinds instead). Residuals beyond
    # the linear threshold are clamped and their excess added back, unless one look at the data
    # (where that is free) shows there are none.
    linear = None
    if not all_within(xp, a, _LOG_COSH_LINEAR):
        clamped = xp.minimum(a, _LOG_COSH_LINEAR)
        linear = a - clamped if reduction == "none" else xp.sum(a) - xp.sum(clamped)
        a = clamped
    a = imul(a, 2.0)
    m = in_place(xp, "expm1", a)  # M = exp(2a) - 1 >= 0
    del a
    f = m + 1.0  # F = exp(2a), exact to rounding since M >= 0
    v = m * m
    v = idiv(v, f)
    v = imul(v, 0.25)  # sinh^2 a = M^2 / (4F)
    n = size_of(v)
    if reduction == "none":
        half = _log1p_of_temporary(xp, v)  # log cosh^2 a
        half = imul(half, 0.5)
        if linear is not None:
            half = iadd(half, linear)
        value = reduce(xp, half, reduction)
        del half
    else:
        value = _sum_log1p(xp, v) * 0.5
        if linear is not None:
            value = value + linear
        if reduction == "mean":
            value = value / n
        value = xp.asarray(value) if is_numpy(xp) else value
    del v
    if not compute_grad:
        return value, None
    scale = grad_scale(reduction, n)
    f = iadd(f, 1.0)
    m = idiv(m, f)  # M / (2 + M) = tanh a
    del f
    grad = in_place(xp, "copysign", m, d)
    if scale != 1.0:
        grad = imul(grad, scale)
    return value, grad


@register(
    "quantile",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    rowwise=True,
    task="regression",
    formula="mean(max(q (target - input), (q - 1) (target - input)))",
    example=_abs_example,
    torch=None,
)
def quantile(
    input: Any,
    target: Any,
    *,
    quantile: float = 0.5,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Quantile (pinball) loss: ``l_i = max(q r_i, (q - 1) r_i)``, ``r_i = y_i - x_i``.

    Minimised in expectation when ``x`` is the ``q``-quantile of ``y``; ``q = 0.5`` is half the
    absolute error.

    Gradient: ``dl_i/dx_i = -q`` where ``y_i > x_i``, ``1 - q`` where ``y_i < x_i`` and ``0`` at
    the kink (like ``l1``'s ``sign(0) = 0``), divided by the number of elements for
    ``reduction="mean"``.

    Options: ``quantile`` ``q`` in (0, 1) (default 0.5); ``reduction``. PyTorch has no quantile
    loss. Reference: Koenker & Bassett, "Regression Quantiles", Econometrica 46 (1978).
    """
    q = _check_quantile(quantile)
    xp, input, target = _prepare_pair(input, target, reduction)
    r = target - input
    value = xp.maximum(q * r, (q - 1.0) * r)

    def dl() -> Any:
        zero = xp.zeros_like(r)
        return xp.where(r > 0, zero - q, xp.where(r < 0, zero + (1.0 - q), zero))

    return _finish(xp, value, dl, reduction, compute_grad)


def _check_quantile(q: Any) -> float:
    try:
        v = float(q)
    except (TypeError, ValueError):
        raise TypeError(f"quantile must be a number in (0, 1); got {q!r}.") from None
    if not 0.0 < v < 1.0:
        raise ValueError(f"quantile must lie in (0, 1), exclusive; got {q!r}.")
    return v

