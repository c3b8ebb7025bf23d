"""Likelihood losses: negative log-likelihoods of a target under a distribution the model predicts.

``poisson_nll`` and ``tweedie`` model non-negative (count-like) targets through a log-mean;
``gaussian_nll`` models a real target with a predicted mean and variance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from losslab.losses._constraints import Boolean, Real
from losslab.losses._primitives import scaled, shape_of
from losslab.losses._registry import Items, register
from losslab.losses._validation import check_in_range, check_same_shape, value_checks_enabled

__all__ = ["poisson_nll", "gaussian_nll", "tweedie"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _shape(rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(1, 5)), int(rng.integers(1, 6))


# ---------------------------------------------------------------------------------------------
# Poisson


def _poisson_example(
    rng: np.random.Generator, dtype: Any = "float64", *, log_input: bool = True, **_: Any
) -> tuple[Any, ...]:
    shape = _shape(rng)
    x = rng.normal(scale=0.7, size=shape) if log_input else rng.uniform(0.2, 3.0, size=shape)
    # Rate 2 gives zeros, ones and counts above 1, so full=True's Stirling mask is exercised.
    y = rng.poisson(2.0, size=shape)
    return x.astype(dtype), y.astype(dtype)


def _stirling(xp: Any, y: Any) -> Any:
    """``y log y - y + log(2 pi y) / 2`` where ``y > 1``, else 0 (torch's ``full=True`` term)."""
    big = y > 1
    ys = xp.where(big, y, xp.ones_like(y))  # keeps log() away from 0 and negatives
    term = ys * xp.log(ys) - ys + 0.5 * xp.log(ys) + _HALF_LOG_2PI
    return xp.where(big, term, xp.zeros_like(y))


@register(
    "poisson_nll",
    input_kind="real",
    target_kind="nonnegative",
    layout="elementwise",
    options={"log_input": Boolean(), "full": Boolean(), "eps": Real(0, None)},
    hessian="nonnegative",
    rowwise=True,
    task="count regression",
    formula="mean(exp(input) - target * input)  (log_input=True)",
    example=_poisson_example,
    torch="poisson_nll_loss",
    module="PoissonNLLLoss",
)
def poisson_nll(
    xp: Any, input: Any, target: Any, *, log_input: bool = True, full: bool = False,
    eps: float = 1e-8,
) -> Items:
    """Poisson negative log-likelihood: ``l_i = exp(x_i) - y_i x_i`` (``log_input=True``).

    ``x`` is the log-rate; with ``log_input=False`` it is the rate itself and
    ``l_i = x_i - y_i log(x_i + eps)``. The ``log(y_i!)`` constant is dropped unless ``full=True``,
    which adds Stirling's approximation ``y log y - y + log(2 pi y) / 2`` for ``y_i > 1`` (0 for
    ``y_i <= 1``); it does not depend on ``x``, so it adds nothing to the gradient.

    Gradient: ``dl_i/dx_i = exp(x_i) - y_i`` (``log_input=True``) or ``1 - y_i / (x_i + eps)``
    (``log_input=False``). Hessian: ``exp(x_i)`` or ``y_i / (x_i + eps)^2``.

    Options: ``log_input`` (default True), ``full`` (default False), ``eps >= 0`` (default 1e-8,
    used only with ``log_input=False``). Targets must be >= 0 (counts; a value check, see
    ``losslab.value_checks``; torch does not check them and gives a meaningless loss).

    Same as ``torch.nn.functional.poisson_nll_loss``, including its ``log(x + eps)`` with
    ``log_input=False`` (so the loss is that of rate ``x`` only up to ``eps``; the log-rate form,
    the default, needs no such guard). Where torch returns NaN for a negative rate with
    ``log_input=False``, we raise a ValueError naming ``input`` (a value check; see
    ``losslab.value_checks``). Reference: McCullagh &
    Nelder, *Generalized Linear Models* (2nd ed., 1989), sec. 6.2.
    """
    check_same_shape(input, target, "input", "target")
    x, y = input, target
    if log_input:
        rate = xp.exp(x)
        items = Items(rate - y * x, grad=lambda w: scaled(rate - y, w), hess=lambda w: w * rate)
    else:
        check_in_range(xp, x, "input", 0.0, None, "Poisson rates when log_input=False")
        shifted = x + eps
        items = Items(
            x - y * xp.log(shifted),
            grad=lambda w: scaled(1.0 - y / shifted, w),
            hess=lambda w: w * (y / (shifted * shifted)),
        )
    if not full:
        return items
    return Items(items.per_item() + _stirling(xp, y), grad=items.grad, hess=items.hess)


# ---------------------------------------------------------------------------------------------
# Gaussian


def _gaussian_example(
    rng: np.random.Generator, dtype: Any = "float64", **_: Any
) -> tuple[Any, ...]:
    n, d = _shape(rng)
    # Every var layout torch accepts: per element, per row (one dim short or last dim 1), per
    # column. Kept well above eps so the clamp never engages.
    var_shape = [(n, d), (n,), (n, 1), (1, d)][int(rng.integers(0, 4))]
    x = rng.normal(size=(n, d))
    y = rng.normal(size=(n, d))
    var = rng.uniform(0.2, 2.0, size=var_shape)
    return x.astype(dtype), y.astype(dtype), var.astype(dtype)


def _var_view_shape(in_shape: tuple[int, ...], var_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape ``var`` is viewed as before broadcasting against ``input``: torch's rule.

    ``var`` may have ``input``'s shape; or ``input``'s shape without its last dimension (one
    variance per row: it gets a trailing 1); or ``input``'s number of dimensions with exactly one
    dimension that differs, and that one equal to 1.
    """
    if var_shape == in_shape:
        return var_shape
    if in_shape and in_shape[:-1] == var_shape:
        return var_shape + (1,)
    if len(in_shape) == len(var_shape):
        differing = [v for i, v in zip(in_shape, var_shape) if i != v]
        if differing == [1]:
            return var_shape
    raise ValueError(
        f"var of shape {var_shape} does not fit input of shape {in_shape}: var must have "
        f"input's shape, input's shape without its last dimension, or input's shape with exactly "
        f"one dimension set to 1 (torch's rule)."
    )


@register(
    "gaussian_nll",
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    options={"full": Boolean(), "eps": Real(0, None)},
    hessian="nonnegative",
    task="probabilistic regression",
    formula="mean(0.5 (log(max(var, eps)) + (input - target)^2 / max(var, eps)))",
    example=_gaussian_example,
    differentiable=("input", "var"),
    torch="gaussian_nll_loss",
    module="GaussianNLLLoss",
)
def gaussian_nll(
    xp: Any, input: Any, target: Any, var: Any, *, full: bool = False, eps: float = 1e-6
) -> Items:
    """Gaussian negative log-likelihood: ``l_i = (log v_i + (x_i - y_i)^2 / v_i) / 2``.

    ``x`` is the predicted mean, ``var`` the predicted variance and ``v = max(var, eps)``;
    ``full=True`` adds the constant ``log(2 pi) / 2``. ``var`` may be a number (one variance for
    all), an array of ``input``'s shape, of ``input``'s shape without the last dimension, or of
    ``input``'s shape with one dimension set to 1; it is broadcast against ``input`` exactly as
    torch does.

    Gradient (a tuple, one per differentiable input): ``dl_i/dx_i = (x_i - y_i) / v_i`` and
    ``dl_i/dvar_i = (1 / v_i - (x_i - y_i)^2 / v_i^2) / 2``, the latter summed over the
    dimensions along which ``var`` was broadcast, so it has ``var``'s shape (a 0-d array when
    ``var`` is a number). Hessian w.r.t. ``input``: ``1 / v``.

    Options: ``full`` (default False), ``eps >= 0`` (default 1e-6).

    Same as ``torch.nn.functional.gaussian_nll_loss``, including its clamp: torch clamps ``var``
    at ``eps`` under ``no_grad``, so where ``var < eps`` the gradient w.r.t. ``var`` is the
    formula above evaluated at ``v = eps`` (straight through the clamp), not the 0 that the
    flat clamped function has; we return the same. Negative (or NaN) variances raise a
    ValueError naming ``var`` (a value check; see ``losslab.value_checks``). Unlike torch, which
    broadcasts ``target`` silently, ``target`` must have ``input``'s shape. Reference: Nix &
    Weigend, "Estimating the mean and variance of the target probability distribution", ICNN
    1994.
    """
    check_same_shape(input, target, "input", "target")
    in_shape = shape_of(input)
    var_shape = shape_of(var)
    if var.ndim == 0:
        # One variance for every element (a number): a 0-d gradient.
        if value_checks_enabled() and not bool(var >= 0):
            raise ValueError(f"var must be >= 0 (a variance); got {float(var)!r}.")
        view_shape: tuple[int, ...] = ()
    else:
        view_shape = _var_view_shape(in_shape, var_shape)
        check_in_range(xp, var, "var", 0.0, None, "variances must be non-negative")
    v = var if var.dtype == input.dtype else xp.astype(var, input.dtype)
    if view_shape != var_shape:
        v = xp.reshape(v, view_shape)
    v = xp.maximum(v, eps)
    diff = input - target
    inv = 1.0 / v
    r = diff * inv  # (x - y) / v, of input's shape
    values = 0.5 * (xp.log(v) + diff * r)
    if full:
        values = values + _HALF_LOG_2PI
    # Broadcasting copied var along some axes; its gradient is the sum over those copies.
    axes = tuple(i for i, (a, b) in enumerate(zip(view_shape, in_shape)) if a == 1 and b != 1)
    if not view_shape:
        axes = tuple(range(len(in_shape)))

    def grad(w: Any) -> tuple[Any, Any]:
        g_v = (0.5 * w) * (inv - r * r)
        if axes:
            g_v = xp.sum(g_v, axis=axes, keepdims=bool(view_shape))
        g_var = xp.reshape(g_v, var_shape)
        if g_var.dtype != var.dtype:
            g_var = xp.astype(g_var, var.dtype)
        return w * r, g_var

    return Items(values, grad=grad, hess=lambda w: w * (inv + xp.zeros_like(diff)))


# ---------------------------------------------------------------------------------------------
# Tweedie


def _tweedie_example(
    rng: np.random.Generator, dtype: Any = "float64", **_: Any
) -> tuple[Any, ...]:
    shape = _shape(rng)
    x = rng.normal(scale=0.7, size=shape)
    # Compound Poisson-gamma draws: exact zeros mixed with positive amounts.
    y = np.where(rng.random(size=shape) < 0.3, 0.0, rng.gamma(2.0, 0.7, size=shape))
    return x.astype(dtype), y.astype(dtype)


@register(
    "tweedie",
    input_kind="real",
    target_kind="nonnegative",
    layout="elementwise",
    options={"power": Real(1, 2, closed="neither")},
    hessian="nonnegative",
    rowwise=True,
    task="count regression",
    formula="mean(-target exp((1-p) input) / (1-p) + exp((2-p) input) / (2-p))",
    example=_tweedie_example,
    torch=None,
)
def tweedie(xp: Any, input: Any, target: Any, *, power: float = 1.5) -> Items:
    """Tweedie NLL, log link: ``l_i = -y_i mu_i^(1-p) / (1-p) + mu_i^(2-p) / (2-p)``.

    ``x`` is the log-mean, ``mu_i = exp(x_i)``; ``p`` is the variance power (``Var = phi mu^p``),
    which for ``1 < p < 2`` is the compound Poisson-gamma family: non-negative targets with exact
    zeros (claim amounts, rainfall). Terms that depend only on ``y`` and the dispersion are
    dropped, so the value is not a deviance and need not be 0 at the optimum.

    Gradient: ``dl_i/dx_i = -y_i exp((1-p) x_i) + exp((2-p) x_i)``; Hessian:
    ``(2-p) exp((2-p) x_i) + (p-1) y_i exp((1-p) x_i) > 0``.

    Options: ``power`` ``p`` in (1, 2), exclusive (default 1.5). Targets must be
    >= 0 (a value check; see ``losslab.value_checks``). PyTorch has no Tweedie loss. Reference:
    the ``tweedie`` objective of LightGBM (``RegressionTweedieLoss``) and XGBoost
    (``reg:tweedie``, metric ``tweedie-nloglik``), which use this value and gradient; Jorgensen,
    *The Theory of Dispersion Models* (1997).
    """
    check_same_shape(input, target, "input", "target")
    p, y = power, target
    a = xp.exp((1.0 - p) * input)
    b = xp.exp((2.0 - p) * input)
    return Items(
        y * a / (p - 1.0) + b / (2.0 - p),
        grad=lambda w: scaled(b - y * a, w),
        hess=lambda w: w * ((2.0 - p) * b + (p - 1.0) * (y * a)),
    )


# ---------------------------------------------------------------------------------------------
# Gamma (issue 12: a boosting objective with value, gradient, Hessian and expected Hessian)

__all__ += ["gamma_deviance"]


def _gamma_example(rng: np.random.Generator, dtype: Any = "float64", **_: Any) -> tuple[Any, ...]:
    shape = _shape(rng)
    x = rng.normal(scale=0.7, size=shape)
    y = rng.gamma(2.0, 0.7, size=shape) + 1e-3  # strictly positive amounts
    return x.astype(dtype), y.astype(dtype)


@register(
    "gamma_deviance",
    input_kind="real",
    target_kind="nonnegative",
    layout="elementwise",
    hessian="nonnegative",
    rowwise=True,
    task="count regression",
    formula="target exp(-input) - 1 - log(target) + input  (half the gamma deviance, log link)",
    example=_gamma_example,
    torch=None,
)
def gamma_deviance(xp: Any, input: Any, target: Any) -> Items:
    """Gamma deviance, log link: ``l_i = y_i / mu_i - 1 - log(y_i / mu_i)``, ``mu_i = exp(x_i)``.

    ``x`` is the log-mean of a gamma-distributed positive target (claim severities, durations).
    The value is half the unit deviance: 0 at ``mu = y``, and ``>= 0``; it is the gamma negative
    log-likelihood with unit dispersion less the terms that depend on ``y`` only. Evaluated with
    ``t = log(y) - x`` as ``expm1(t) - t``.

    Gradient: ``dl_i/dx_i = 1 - y_i exp(-x_i)``; Hessian: ``y_i exp(-x_i) > 0``. Expected
    Hessian (``Items.fisher``, ``E[y] = mu``): 1.

    Targets must be > 0 (a value check; a zero target has no finite deviance).

    Same gradient and Hessian as XGBoost's ``reg:gamma`` (``GammaRegression``: ``grad = 1 - y /
    exp(p)``, ``hess = y / exp(p)``) and LightGBM's ``gamma`` objective
    (``RegressionGammaLoss``); the value is scikit-learn's ``HalfGammaLoss`` (so
    ``sklearn.metrics.mean_gamma_deviance(y, exp(x))`` is twice the mean here). torch has no
    gamma loss. Reference: McCullagh & Nelder, *Generalized Linear Models* (2nd ed., 1989),
    ch. 8.
    """
    check_same_shape(input, target, "input", "target")
    check_in_range(xp, target, "target", 1e-300, None, "gamma targets must be positive")
    t = xp.log(target) - input
    r = xp.exp(t)  # y exp(-x), the Hessian
    return Items(
        lambda: xp.expm1(t) - t,
        grad=lambda w: scaled(1.0 - r, w),
        hess=lambda w: w * r,
        fisher=lambda w: w * xp.ones_like(r),
    )
