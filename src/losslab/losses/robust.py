"""Robust regression losses: Barron's general loss and its named special cases.

Each loss here is elementwise in the residual ``d = input - target`` and is the member of Barron's
family ``rho(d, alpha, c)`` for one shape ``alpha`` (``c`` is the ``scale`` option, the width of
the quadratic bowl). All of them behave like ``(d/c)^2 / 2`` near 0 and grow more slowly than the
square further out, down-weighting outliers; they are the forms kornia uses (kornia's are the
``scale=1`` case). ``pseudo_huber`` (alpha = 1) lives in ``regression.py``.

    alpha = 2      (d/c)^2 / 2                               (L2)
    alpha = 1      sqrt((d/c)^2 + 1) - 1                     (pseudo-Huber / Charbonnier)
    alpha = 0      log((d/c)^2 / 2 + 1)                      (Cauchy / Lorentzian)
    alpha = -2     2 (d/c)^2 / ((d/c)^2 + 4)                 (Geman-McClure)
    alpha = -inf   1 - exp(-(d/c)^2 / 2)                     (Welsch / Leclerc)
    otherwise      |alpha-2|/alpha [((d/c)^2/|alpha-2| + 1)^(alpha/2) - 1]

Reference: J. T. Barron, "A General and Adaptive Robust Loss Function", CVPR 2019, eq. (1)-(8).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from losslab.losses._constraints import Real
from losslab.losses._primitives import scaled
from losslab.losses._registry import Items, register
from losslab.losses._validation import check_same_shape

__all__ = ["cauchy", "geman_mcclure", "welsch", "general_robust"]

SCALE = Real(0, None, closed="neither")


def _example(rng: np.random.Generator, dtype: Any = "float64", **_: Any) -> tuple[Any, ...]:
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
    x = rng.normal(size=shape)
    return x.astype(dtype), (x + rng.normal(scale=2.0, size=shape)).astype(dtype)


def barron(xp: Any, d: Any, alpha: float, c: float) -> tuple[Any, Any, Any]:
    """``(rho, drho/dd, d2rho/dd2)`` of Barron's loss, elementwise; the closed forms for
    ``alpha`` in {2, 1, 0, -2, inf, -inf} and the general one (in the ``expm1``/``log1p`` form,
    accurate for ``alpha`` near 0) elsewhere. ``rho'`` and ``rho''`` are returned as functions
    of nothing (lazy), so a value-only call computes no derivative."""
    x = d / c
    z = x * x
    inv_c2 = 1.0 / (c * c)
    if alpha == 2.0:
        return 0.5 * z, lambda: d * inv_c2, lambda: xp.full_like(d, inv_c2)
    if alpha == 0.0:
        u = 1.0 + 0.5 * z
        return (
            xp.log1p(0.5 * z),
            lambda: (d * inv_c2) / u,
            lambda: inv_c2 * (1.0 - 0.5 * z) / (u * u),
        )
    if alpha == 1.0:
        r = xp.sqrt(1.0 + z)
        return z / (r + 1.0), lambda: (d * inv_c2) / r, lambda: inv_c2 / (r * r * r)
    if alpha == -2.0:
        u = 1.0 + 0.25 * z
        return (
            2.0 * z / (z + 4.0),
            lambda: (d * inv_c2) / (u * u),
            lambda: inv_c2 * (1.0 - 0.75 * z) / (u * u * u),
        )
    if math.isinf(alpha):
        s = 1.0 if alpha > 0 else -1.0
        e = xp.exp(s * 0.5 * z)
        return (
            s * xp.expm1(s * 0.5 * z),
            lambda: (d * inv_c2) * e,
            lambda: inv_c2 * e * (1.0 + s * z),
        )
    b = abs(alpha - 2.0)
    log_u = xp.log1p(z / b)  # log(u), u = (d/c)^2 / |alpha - 2| + 1
    return (
        (b / alpha) * xp.expm1((0.5 * alpha) * log_u),
        lambda: (d * inv_c2) * xp.exp((0.5 * alpha - 1.0) * log_u),
        lambda: inv_c2
        * xp.exp((0.5 * alpha - 2.0) * log_u)
        * (1.0 + z / b + ((alpha - 2.0) / b) * z),
    )


def _items(xp: Any, input: Any, target: Any, alpha: float, scale: float) -> Items:
    check_same_shape(input, target, "input", "target")
    value, grad, hess = barron(xp, input - target, alpha, scale)
    return Items(value, grad=lambda w: scaled(grad(), w), hess=lambda w: scaled(hess(), w))


_COMMON: dict[str, Any] = dict(
    input_kind="real",
    target_kind="real",
    layout="elementwise",
    hessian="indefinite",
    rowwise=True,
    task="robust regression",
    example=_example,
)


@register(
    "cauchy",
    options={"scale": SCALE},
    formula="log(1/2 (d/c)^2 + 1), d = input - target, c = scale",
    **_COMMON,
)
def cauchy(xp: Any, input: Any, target: Any, *, scale: float = 1.0) -> Items:
    """Cauchy (Lorentzian) loss: ``l = log((d/c)^2 / 2 + 1)``, ``d = input - target``, c = scale.

    Barron's loss at alpha = 0. Gradient: ``d / (c^2 + d^2 / 2)`` = ``(d/c^2) / (1 + (d/c)^2/2)``;
    it peaks at ``|d| = sqrt(2) c`` and decays like ``2/d``, so outliers barely pull. Hessian:
    ``(1/c^2) (1 - (d/c)^2/2) / (1 + (d/c)^2/2)^2``, negative beyond ``|d| = sqrt(2) c`` (the
    loss is not convex). Options: ``scale`` (> 0).

    Same as kornia's ``cauchy_loss`` at ``scale=1``. scipy's ``least_squares(loss="cauchy",
    f_scale=C)`` uses ``C^2 log(1 + (d/C)^2)``: that is ``C^2 * cauchy`` with
    ``scale = C / sqrt(2)``. Ours has curvature ``1/c^2`` at 0, like every member of Barron's
    family.
    Reference: Barron, "A General and Adaptive Robust Loss Function", CVPR 2019; Black and
    Anandan, "The robust estimation of multiple motions", CVIU 63(1), 1996.
    """
    return _items(xp, input, target, 0.0, scale)


@register(
    "geman_mcclure",
    options={"scale": SCALE},
    formula="2 (d/c)^2 / ((d/c)^2 + 4), d = input - target, c = scale",
    module="GemanMcClureLoss",
    **_COMMON,
)
def geman_mcclure(xp: Any, input: Any, target: Any, *, scale: float = 1.0) -> Items:
    """Geman-McClure loss: ``l = 2 (d/c)^2 / ((d/c)^2 + 4)``, ``d = input - target``, ``c = scale``.

    Barron's loss at alpha = -2: bounded (tends to 2), so a gross outlier costs at most 2.
    Gradient: ``(d/c^2) / (1 + (d/c)^2/4)^2``, redescending (it tends to 0 for large ``|d|``).
    Hessian: ``(1/c^2) (1 - 3/4 (d/c)^2) / (1 + (d/c)^2/4)^3``, negative beyond
    ``|d| = 2c/sqrt(3)``. Options: ``scale`` (> 0).

    Same as kornia's ``geman_mcclure_loss`` at ``scale=1``. The original Geman-McClure form
    ``d^2 / (d^2 + s)`` is ``geman_mcclure / 2`` with ``s = 4 c^2``.
    Reference: Geman and McClure, "Bayesian image analysis: an application to single photon
    emission tomography", Proc. Amer. Statist. Assoc. 1985; Barron, CVPR 2019.
    """
    return _items(xp, input, target, -2.0, scale)


@register(
    "welsch",
    options={"scale": SCALE},
    formula="1 - exp(-1/2 (d/c)^2), d = input - target, c = scale",
    **_COMMON,
)
def welsch(xp: Any, input: Any, target: Any, *, scale: float = 1.0) -> Items:
    """Welsch (Leclerc) loss: ``l = 1 - exp(-(d/c)^2 / 2)``, ``d = input - target``, ``c = scale``.

    Barron's loss at alpha = -inf: bounded by 1, computed as ``-expm1(-(d/c)^2/2)`` (exact for
    tiny residuals). Gradient: ``(d/c^2) exp(-(d/c)^2/2)``; Hessian:
    ``(1/c^2) exp(-(d/c)^2/2) (1 - (d/c)^2)``, negative beyond ``|d| = c``. Options: ``scale``.

    Same as kornia's ``welsch_loss`` at ``scale=1``.
    Reference: Dennis and Welsch, "Techniques for nonlinear least squares and robust regression",
    Comm. Statist. Simul. Comput. 7(4), 1978; Barron, CVPR 2019.
    """
    return _items(xp, input, target, -math.inf, scale)


@register(
    "general_robust",
    options={"alpha": Real(inf=True), "scale": SCALE},
    formula="|a-2|/a [((d/c)^2/|a-2| + 1)^(a/2) - 1], a = alpha (limits at 0, 2, +-inf)",
    **_COMMON,
)
def general_robust(
    xp: Any, input: Any, target: Any, *, alpha: float = 1.0, scale: float = 1.0
) -> Items:
    """Barron's general robust loss: ``rho(d, a, c) = |a-2|/a [((d/c)^2/|a-2| + 1)^(a/2) - 1]``.

    ``d = input - target``, ``a = alpha`` (the shape: any real, or +-inf), ``c = scale`` (> 0).
    The special cases are computed in their own closed forms, not as limits of the general
    expression: a = 2 gives ``(d/c)^2/2``, a = 1 ``sqrt((d/c)^2 + 1) - 1``, a = 0
    ``log((d/c)^2/2 + 1)`` (``cauchy``), a = -2 ``2 (d/c)^2/((d/c)^2 + 4)`` (``geman_mcclure``),
    a = -inf ``1 - exp(-(d/c)^2/2)`` (``welsch``) and a = +inf ``exp((d/c)^2/2) - 1``. Elsewhere
    the general form is evaluated as ``|a-2|/a * expm1(a/2 * log1p((d/c)^2/|a-2|))``, which keeps
    full relative accuracy as ``a`` approaches 0 (where the naive form cancels).

    Gradient: ``(d/c^2) u^(a/2 - 1)``, ``u = (d/c)^2/|a-2| + 1``. Hessian:
    ``(1/c^2) u^(a/2 - 2) [u + (a-2)/|a-2| (d/c)^2]``: non-negative for a >= 1 (convex), negative
    for large residuals when a < 1. Options: ``alpha``, ``scale``.

    ``alpha`` is an option (a constant). Barron's *adaptive* loss also learns alpha and the scale
    by minimising the negative log-likelihood of the distribution ``p ~ exp(-rho)``, which needs
    its partition function (a spline approximation in his code); that is not provided here.
    Reference: J. T. Barron, "A General and Adaptive Robust Loss Function", CVPR 2019.
    """
    return _items(xp, input, target, alpha, scale)
