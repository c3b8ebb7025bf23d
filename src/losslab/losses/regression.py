"""Regression losses: a real-valued prediction against a real-valued target.

Every loss here is elementwise: ``l_i = f(d_i)`` with ``d_i = x_i - y_i``, so its gradient is
``f'(d)`` and its Hessian the diagonal ``f''(d)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from losslab.losses._constraints import NONE, Array, Either, Real
from losslab.losses._primitives import clamp_above, scaled
from losslab.losses._registry import Items, register
from losslab.losses._validation import check_same_shape

__all__ = ["mse", "l1", "huber", "smooth_l1", "log_cosh", "quantile"]

# Per-element weights, torch's ``weight`` of mse_loss, l1_loss and huber_loss.
ELEMENT_WEIGHT = Either(NONE, Array("same shape as input"))
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


def pair_example(
    rng: np.random.Generator, dtype: Any = "float64", kinks: tuple[float, ...] = (), **_: Any
) -> tuple[Any, ...]:
    """(input, target) of one random 2-D shape, residuals kept away from ``kinks``."""
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
    x = rng.normal(size=shape)
    y = x + _away_from_kinks(rng.normal(scale=1.5, size=shape), kinks)
    return x.astype(dtype), y.astype(dtype)


def _abs_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    return pair_example(rng, dtype, kinks=(0.0,), **options)


def _huber_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    return pair_example(rng, dtype, kinks=(0.0, float(options.get("delta", 1.0))), **options)


def _smooth_l1_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    return pair_example(rng, dtype, kinks=(0.0, float(options.get("beta", 1.0))))


def _weighted(xp: Any, input: Any, weight: Any, values: Any, grad: Any, hess: Any = None,
              mean_over_weights: bool = True) -> Items:
    """``Items`` for ``weight * f(d)``: the per-element weight multiplies value, gradient and
    Hessian; torch's mse_loss and l1_loss then average over ``sum(weight)``, its huber_loss over
    the number of elements (``mean_over_weights=False``)."""
    if weight is None:
        return Items(values, grad=grad, hess=hess)
    check_same_shape(input, weight, "input", "weight")
    return Items(
        weight * values,
        grad=lambda w: grad(w * weight),
        hess=None if hess is None else (lambda w: hess(w * weight)),
        denominator=xp.sum(weight) if mean_over_weights else None,
    )


@register(
    "mse",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    options={"weight": ELEMENT_WEIGHT},
    hessian="nonnegative",
    rowwise=True,
    task="regression",
    formula="mean((input - target)^2)",
    example=pair_example,
    torch="mse_loss",
    module="MSELoss",
)
def mse(xp: Any, input: Any, target: Any, *, weight: Any = None) -> Items:
    """Mean squared error: ``l_i = (x_i - y_i)^2``.

    Gradient: ``dl_i/dx_i = 2 (x_i - y_i)``; Hessian ``2``. Through a model ``yhat(theta)`` the
    mean's gradient is ``dMSE/dtheta = -2/n sum_i (y_i - yhat_i) dyhat_i/dtheta``. (The article's
    section 3.3 drops the minus sign; its code has it.)

    Options: ``weight`` (optional, same shape as ``input``): per-element weights,
    ``l_i -> w_i l_i``, and ``reduction="mean"`` then divides by ``sum(w)`` (torch's definition).

    Same as ``torch.nn.functional.mse_loss``. Reference: Gauss, *Theoria motus* (1809); any
    statistics text on least squares.
    """
    d = input - target
    return _weighted(
        xp, input, weight, d * d,
        grad=lambda w: (2.0 * w) * d,
        hess=lambda w: xp.zeros_like(d) + 2.0 * w,
    )


@register(
    "l1",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    options={"weight": ELEMENT_WEIGHT},
    hessian="zero",
    rowwise=True,
    task="regression",
    formula="mean(|input - target|)",
    example=_abs_example,
    torch="l1_loss",
    module="L1Loss",
)
def l1(xp: Any, input: Any, target: Any, *, weight: Any = None) -> Items:
    """Mean absolute error: ``l_i = |x_i - y_i|``.

    Gradient: ``dl_i/dx_i = sign(x_i - y_i)``, with ``sign(0) = 0`` at the kink (torch's
    subgradient). Hessian: 0 wherever it exists (everywhere but the kink); gradient boosting
    needs a stand-in there (``losslab.boosting``'s ``hessian="constant"``).

    Options: ``weight`` (optional, same shape as ``input``): per-element weights, and
    ``reduction="mean"`` then divides by ``sum(w)`` (torch's definition).

    Same as ``torch.nn.functional.l1_loss``. Reference: Laplace (1774); Koenker, *Quantile
    Regression* (2005), ch. 1.
    """
    d = input - target
    return _weighted(
        xp, input, weight, xp.abs(d),
        grad=lambda w: scaled(xp.sign(d), w),
        hess=lambda w: xp.zeros_like(d),
    )


def _huber_value(xp: Any, d: Any, delta: float) -> Any:
    """Huber's value with nothing squared beyond ``delta``: ``m = min(|d|, delta)``,
    ``m (|d| - m/2)`` is ``d^2/2`` inside and ``delta (|d| - delta/2)`` outside, so a residual of
    1e30 never meets ``d * d`` (which overflows float32 at 2e19)."""
    a = xp.abs(d)
    m = xp.minimum(a, delta)
    return m * (a - 0.5 * m)


@register(
    "huber",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    options={"delta": Real(0, None, closed="neither"), "weight": ELEMENT_WEIGHT},
    hessian="nonnegative",
    rowwise=True,
    task="regression",
    formula="mean(0.5 d^2 if |d| < delta else delta (|d| - delta/2)), d = input - target",
    example=_huber_example,
    torch="huber_loss",
    module="HuberLoss",
)
def huber(xp: Any, input: Any, target: Any, *, delta: float = 1.0, weight: Any = None) -> Items:
    """Huber loss: ``l_i = d_i^2 / 2`` if ``|d_i| < delta`` else ``delta (|d_i| - delta / 2)``.

    With ``d_i = x_i - y_i``. Gradient: ``dl_i/dx_i = clip(d_i, -delta, delta)``; Hessian: 1
    where ``|d| < delta``, 0 outside.

    Options: ``delta > 0`` (default 1.0); ``weight`` (optional, same shape as ``input``):
    per-element weights, and here ``reduction="mean"`` divides by the number of elements, not by
    ``sum(w)``: that is torch's ``huber_loss`` (unlike its ``mse_loss``). Finite for any finite
    residual (nothing is squared beyond ``delta``).

    Same as ``torch.nn.functional.huber_loss``. Reference: Huber, "Robust Estimation of a
    Location Parameter", Ann. Math. Statist. 35 (1964).
    """
    d = input - target
    return _weighted(
        xp, input, weight, _huber_value(xp, d, delta),
        grad=lambda w: scaled(xp.clip(d, -delta, delta), w),
        hess=lambda w: w * xp.astype(xp.abs(d) < delta, input.dtype),
        mean_over_weights=False,
    )


@register(
    "smooth_l1",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    options={"beta": Real(0, None)},
    hessian="nonnegative",
    rowwise=True,
    task="regression",
    formula="mean(0.5 d^2 / beta if |d| < beta else |d| - beta/2), d = input - target",
    example=_smooth_l1_example,
    torch="smooth_l1_loss",
    module="SmoothL1Loss",
)
def smooth_l1(xp: Any, input: Any, target: Any, *, beta: float = 1.0) -> Items:
    """Smooth L1 loss: ``l_i = d_i^2 / (2 beta)`` if ``|d_i| < beta`` else ``|d_i| - beta / 2``.

    With ``d_i = x_i - y_i``; this is ``huber(delta=beta) / beta``. Gradient:
    ``dl_i/dx_i = clip(d_i, -beta, beta) / beta``; Hessian ``1 / beta`` inside, 0 outside.

    Options: ``beta >= 0`` (default 1.0). ``beta = 0`` is exactly ``l1`` (as in torch, which
    dispatches to ``l1_loss``).

    Same as ``torch.nn.functional.smooth_l1_loss``. Reference: Girshick, "Fast R-CNN", ICCV 2015.
    """
    if beta == 0.0:
        return l1(xp, input, target)
    d = input - target
    return Items(
        _huber_value(xp, d, beta) / beta,
        grad=lambda w: (w / beta) * xp.clip(d, -beta, beta),
        hess=lambda w: (w / beta) * xp.astype(xp.abs(d) < beta, input.dtype),
    )


@register(
    "log_cosh",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    hessian="nonnegative",
    rowwise=True,
    task="regression",
    formula="mean(log(cosh(input - target)))",
    example=pair_example,
    torch=None,
)
def log_cosh(xp: Any, input: Any, target: Any) -> Items:
    """Log-cosh loss: ``l_i = log(cosh(d_i))``, ``d_i = x_i - y_i``.

    With ``a = min(|d|, 20)``, ``M = expm1(2a)`` and ``F = 1 + M = exp(2a)``, evaluated as
    ``l = log1p(M^2 / (4F)) / 2 + (|d| - a)``, since ``sinh^2 a = cosh^2 a - 1 = M^2 / (4F)``
    exactly (``sinh a = (F - 1) / (2 sqrt F)``). ``M`` is accurate relative to its size and
    ``F = 1 + M`` with ``M >= 0`` loses nothing, so this keeps full relative accuracy near 0 (where
    it behaves like ``d^2 / 2`` and where ``|d| + softplus(-2|d|) - log 2`` would cancel to an
    absolute error of ~``eps * log 2``) and far out (like ``|d| - log 2``). Beyond ``|d| = 20``
    the rest of ``log cosh`` is ``|d| - log 2`` to within ``e^-40``, so nothing overflows
    (``M^2`` stays below ``e^80``; ``cosh`` itself overflows at ``|d| ~ 89`` in float32); the
    clamp costs a pass only when some residual needs it (``clamp_above``).

    Gradient: ``dl_i/dx_i = tanh(d_i) = sign(d_i) M / (2 + M)``, from the same ``M`` (exactly
    +-1 for large residuals). Hessian: ``1 - tanh^2 d = 4F / (1 + F)^2 = 1 / cosh^2 d``, formed
    as ``4 (1 + M) / (2 + M)^2`` (no cancellation where ``tanh`` is near 1).

    PyTorch has no log-cosh loss; Keras has ``log_cosh`` (same value, computed there as
    ``d + softplus(-2d) - log 2`` throughout). Reference: Chen et al., "Log Hyperbolic Cosine
    Loss Improves Variational Auto-Encoder", 2019; Keras ``losses.log_cosh``.
    """
    d = input - target
    a = xp.abs(d)
    clamped = clamp_above(xp, a, _LOG_COSH_LINEAR)  # a itself when nothing exceeds it
    m = xp.expm1(2.0 * clamped)  # M = exp(2a) - 1 >= 0
    # sinh^2 a = M^2 / (4F), F = 1 + M = exp(2a), exact to rounding since M >= 0
    sinh2 = m * m / (m + 1.0) * 0.25

    values = 0.5 * xp.log1p(sinh2)  # log cosh a
    if clamped is not a:
        values = values + (a - clamped)  # the linear part beyond the clamp
    return Items(
        values,
        grad=lambda w: scaled(_tanh_from(xp, m, d), w),
        hess=lambda w: w * (4.0 * (m + 1.0) / ((m + 2.0) * (m + 2.0))),
    )


def _tanh_from(xp: Any, m: Any, d: Any) -> Any:
    """``tanh d = sign(d) M / (2 + M)`` from ``M = expm1(2 |d|)``: exactly +-1 far out."""
    t = xp.copysign(m, d)
    t /= m + 2.0
    return t


@register(
    "quantile",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    options={"quantile": Real(0, 1, closed="neither")},
    hessian="zero",
    rowwise=True,
    task="regression",
    formula="mean(max(q (target - input), (q - 1) (target - input)))",
    example=_abs_example,
    torch=None,
)
def quantile(xp: Any, input: Any, target: Any, *, quantile: float = 0.5) -> Items:
    """Quantile (pinball) loss: ``l_i = max(q r_i, (q - 1) r_i)``, ``r_i = y_i - x_i``.

    Minimised in expectation when ``x`` is the ``q``-quantile of ``y``; ``q = 0.5`` is half the
    absolute error.

    Gradient: ``dl_i/dx_i = -q`` where ``y_i > x_i``, ``1 - q`` where ``y_i < x_i`` and ``0`` at
    the kink (like ``l1``'s ``sign(0) = 0``). Hessian: 0 wherever it exists.

    Options: ``quantile`` ``q`` in (0, 1) (default 0.5). PyTorch has no quantile loss.
    Reference: Koenker & Bassett, "Regression Quantiles", Econometrica 46 (1978).
    """
    q = quantile
    r = target - input
    above = xp.astype(r > 0, input.dtype)
    below = xp.astype(r < 0, input.dtype)
    return Items(
        xp.maximum(q * r, (q - 1.0) * r),
        grad=lambda w: scaled((1.0 - q) * below - q * above, w),
        hess=lambda w: xp.zeros_like(r),
    )



# ---------------------------------------------------------------------------------------------
# Losses gradient-boosting users ask for (issue 12): pseudo_huber, expectile, msle, mape. Each
# gives value, gradient and Hessian; their per-item values are lazy (a callable), so a boosting
# objective, which needs only the derivatives, never computes them. (Imports kept with the block
# so that it stays one contiguous addition.)

from losslab.losses._primitives import size_of  # noqa: E402
from losslab.losses._validation import value_checks_enabled  # noqa: E402

__all__ += ["pseudo_huber", "expectile", "msle", "mape"]


@register(
    "pseudo_huber",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    options={"delta": Real(0, None, closed="neither")},
    hessian="nonnegative",
    rowwise=True,
    task="regression",
    formula="delta^2 (sqrt(1 + (d / delta)^2) - 1), d = input - target",
    example=pair_example,
    torch=None,
)
def pseudo_huber(xp: Any, input: Any, target: Any, *, delta: float = 1.0) -> Items:
    """Pseudo-Huber loss: ``l_i = delta^2 (sqrt(1 + (d_i/delta)^2) - 1)``, ``d_i = x_i - y_i``.

    A smooth Huber: ``d^2 / 2`` near 0, ``delta |d|`` far out. With ``u = d / delta``,
    ``s = 1 + u^2`` and ``r = sqrt(s)``, the value is formed as ``delta^2 u (u / (r + 1))``
    (``r - 1 = u^2 / (r + 1)``), which keeps full relative accuracy near 0, where ``r - 1``
    would cancel, and tends to ``delta |d|`` far out. In the square root and the ratio ``u`` is
    clipped at 1e18 (``v``), so that nothing overflows, not even in float32, and value and
    gradient keep their limits (``hypot(1, u)`` would do the same, but NumPy's is a scalar loop,
    ten times the cost of clipping).

    Gradient: ``dl_i/dx_i = d_i / r_i`` (tends to ``+-delta``). Hessian:
    ``1 / r_i^3``, formed as ``(1 / r_i) / s_i`` (> 0, tends to 0 far out).

    Options: ``delta > 0`` (default 1.0), XGBoost's ``huber_slope``.

    Same value, gradient and Hessian as XGBoost's ``reg:pseudohubererror`` (its
    ``PseudoHuberRegression``: ``grad = z / sqrt(1 + (z/slope)^2)``, ``hess = slope^2 /
    ((slope^2 + z^2) sqrt(1 + (z/slope)^2))``, metric ``mphe``); the README's "Adding a loss"
    shows this formula in its plainest form. torch has no pseudo-Huber loss. Reference:
    Charbonnier et al., "Two deterministic half-quadratic regularization algorithms for computed
    imaging", ICIP 1994; Hartley & Zisserman, *Multiple View Geometry* (2003), A6.8.
    """
    d = input - target
    u = d if delta == 1.0 else d / delta
    v = xp.clip(u, -_PSEUDO_HUBER_CLIP, _PSEUDO_HUBER_CLIP)
    s = 1.0 + v * v
    r = xp.sqrt(s)
    return Items(
        lambda: (delta * delta) * (u * (v / (r + 1.0))),
        grad=lambda w: scaled(v / r, delta * w) if delta != 1.0 else scaled(v / r, w),
        hess=lambda w: (w / r) / s,  # 1 / r^3 without forming r^3 (which overflows first)
    )


# Beyond this |d / delta| the pseudo-Huber gradient is +-delta to float64 precision.
_PSEUDO_HUBER_CLIP = 1e18


@register(
    "expectile",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    options={"expectile": Real(0, 1, closed="neither")},
    hessian="nonnegative",
    rowwise=True,
    task="regression",
    formula="|tau - 1(target < input)| (target - input)^2",
    example=_abs_example,
    torch=None,
)
def expectile(xp: Any, input: Any, target: Any, *, expectile: float = 0.5) -> Items:
    """Expectile (asymmetric least squares) loss: ``l_i = |tau - 1(r_i < 0)| r_i^2``,
    ``r_i = y_i - x_i``.

    Minimised in expectation when ``x`` is the ``tau``-expectile of ``y`` (``tau = 0.5``: the
    mean, and the loss is ``mse / 2``); the squared analogue of the quantile loss, smooth where
    the quantile loss has a kink, so its Hessian is useful to Newton steps.

    Gradient: ``dl_i/dx_i = -2 k_i r_i`` with ``k_i = tau`` where ``r_i >= 0`` and ``1 - tau``
    where ``r_i < 0`` (continuous). Hessian: ``2 k_i`` (> 0; it jumps at ``r = 0``).

    Options: ``expectile`` ``tau`` in (0, 1) (default 0.5). torch, XGBoost and LightGBM have no
    expectile loss; the optimal constant equals ``scipy.stats.expectile`` (checked in the
    tests). Reference: Newey & Powell, "Asymmetric Least Squares Estimation and Testing",
    Econometrica 55 (1987).
    """
    tau = expectile
    r = target - input
    k = tau + (1.0 - 2.0 * tau) * xp.astype(r < 0, input.dtype)  # 1 - tau where r < 0
    return Items(
        lambda: k * (r * r),
        grad=lambda w: (-2.0 * w) * (k * r),
        hess=lambda w: (2.0 * w) * k,
    )


# XGBoost's guard in reg:squaredlogerror: predictions below -1 + 1e-6 are evaluated there.
_MSLE_FLOOR = -1.0 + 1e-6


def _msle_example(rng: np.random.Generator, dtype: Any = "float64", **_: Any) -> tuple[Any, ...]:
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
    x = rng.uniform(-0.5, 4.0, size=shape)
    y = np.where(rng.random(size=shape) < 0.2, 0.0, rng.uniform(-0.5, 6.0, size=shape))
    return x.astype(dtype), y.astype(dtype)


@register(
    "msle",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    hessian="indefinite",
    rowwise=True,
    task="regression",
    formula="(log1p(input) - log1p(target))^2 / 2",
    example=_msle_example,
    torch=None,
)
def msle(xp: Any, input: Any, target: Any) -> Items:
    """Squared log error: ``l_i = (log(1 + x_i) - log(1 + y_i))^2 / 2`` (XGBoost's definition).

    For targets spanning orders of magnitude (prices, counts): it compares ``log1p`` of the
    prediction and of the target, so relative errors count. ``x`` is the prediction itself
    (identity link, as XGBoost's ``reg:squaredlogerror``), and must stay above -1; as XGBoost
    does, a prediction below ``-1 + 1e-6`` is evaluated at ``-1 + 1e-6`` (value, gradient and
    Hessian there: a strong push back up), so a boosting round that overshoots never yields NaN.
    Targets must be > -1 (a value check, XGBoost's rule).

    With ``e_i = log1p(x_i) - log1p(y_i)`` (formed as ``log1p((x_i - y_i) / (1 + y_i))``, one
    logarithm instead of two, exact where they would cancel): gradient
    ``dl_i/dx_i = e_i / (1 + x_i)``; Hessian ``(1 - e_i) / (1 + x_i)^2``, **negative** wherever
    the prediction exceeds ``e (1 + y) - 1`` (``e_i > 1``). The expected Hessian
    (``Items.fisher``; Gauss-Newton: the residual's expectation is 0 when ``log1p(y)`` is centred
    on ``log1p(x)``) is ``1 / (1 + x_i)^2 > 0``; ``losslab.boosting`` uses it by default.

    Same gradient as XGBoost's ``reg:squaredlogerror`` (``SquaredLogError`` in its
    ``regression_loss.h``); XGBoost floors the Hessian at 1e-6, which
    ``losslab.boosting.objective("msle", hessian="clip", hessian_floor=1e-6)`` reproduces.
    Keras' ``mean_squared_logarithmic_error`` and scikit-learn's ``mean_squared_log_error`` have
    no ``1/2``: they are twice this value. Reference: XGBoost documentation, "Custom Objective
    and Evaluation Metric" (the squared log error example); XGBoost ``reg:squaredlogerror``.
    """
    if value_checks_enabled() and size_of(target) and not bool(xp.all(target > -1.0)):
        raise ValueError("target must be > -1 for msle (log1p(target)); found a value <= -1.")
    x = xp.maximum(input, _MSLE_FLOOR)
    one_y = 1.0 + target
    # log1p(x) - log1p(y) as one log1p: NumPy's is a scalar loop, the costliest pass here
    e = xp.log1p((x - target) / one_y)
    inv = 1.0 / (1.0 + x)
    return Items(
        lambda: 0.5 * (e * e),
        grad=lambda w: scaled(e * inv, w),
        hess=lambda w: w * ((1.0 - e) * (inv * inv)),
        fisher=lambda w: w * (inv * inv),
    )


@register(
    "mape",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    options={"epsilon": Real(0, None, closed="neither")},
    hessian="zero",
    rowwise=True,
    task="regression",
    formula="|input - target| / max(|target|, epsilon)",
    example=_abs_example,
    torch=None,
)
def mape(xp: Any, input: Any, target: Any, *, epsilon: float = 1.0) -> Items:
    """Absolute percentage error: ``l_i = |x_i - y_i| / max(|y_i|, epsilon)``.

    The mean is the MAPE as a fraction (multiply by 100 for percent).

    Gradient: ``dl_i/dx_i = sign(x_i - y_i) / max(|y_i|, epsilon)`` (0 at the kink, as ``l1``).
    Hessian: 0 wherever it exists; gradient boosting needs a stand-in
    (``losslab.boosting``'s ``hessian="constant"``).

    Options: ``epsilon > 0`` (default 1.0): the floor of the denominator. The default is
    LightGBM's ``mape`` objective and metric (``RegressionMAPELOSS``, ``MAPEMetric``: the
    label's weight is ``1 / max(1, |label|)``), which keeps targets near 0 from dominating;
    ``epsilon=np.finfo(np.float64).eps`` gives scikit-learn's ``mean_absolute_percentage_error``
    and XGBoost's ``mape`` metric (``|y - p| / |y|``) wherever ``y != 0``. torch has none.
    Reference: Hyndman & Koehler, "Another look at measures of forecast accuracy", Int. J.
    Forecasting 22 (2006); de Myttenaere et al., "Mean Absolute Percentage Error for regression
    models", Neurocomputing 192 (2016).
    """
    d = input - target
    scale = 1.0 / xp.maximum(xp.abs(target), epsilon)
    return Items(
        lambda: xp.abs(d) * scale,
        grad=lambda w: scaled(xp.sign(d) * scale, w),
        hess=lambda w: xp.zeros_like(d),
    )
