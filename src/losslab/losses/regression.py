"""Regression losses: a real-valued prediction against a real-valued target."""

from __future__ import annotations

from typing import Any

import numpy as np

from losslab._array import namespace
from losslab._reduction import reduce, scale_for
from losslab._registry import register
from losslab._validation import as_target, check_floating, check_reduction, check_same_shape


def _pair_example(rng: np.random.Generator, dtype: Any = "float64", **_: Any) -> tuple[Any, ...]:
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
    x = rng.normal(size=shape).astype(dtype)
    y = rng.normal(size=shape).astype(dtype)
    return x, y


def _prepare_pair(input: Any, target: Any, reduction: str) -> tuple[Any, Any, Any]:
    """Shared up-front checks for ``loss(input, target)`` with same-shape real targets."""
    check_reduction(reduction)
    xp, (input, target) = namespace(input, target)
    check_floating(xp, input, "input")
    check_same_shape(input, target, "input", "target")
    return xp, input, as_target(xp, target, input)


@register(
    "mse",
    task="regression",
    formula="mean((input - target)^2)",
    example=_pair_example,
    torch="mse_loss",
)
def mse(input: Any, target: Any, *, reduction: str = "mean", compute_grad: bool = True):
    """Mean squared error: ``l_i = (x_i - y_i)^2``.

    Gradient: ``dl_i/dx_i = 2 (x_i - y_i)``, divided by the number of elements for
    ``reduction="mean"``. (The article's section 3.3 writes ``2/n sum (y_i - yhat_i) dyhat/dtheta``;
    the correct sign is ``-2/n sum (y_i - yhat_i) dyhat/dtheta = 2/n sum (yhat_i - y_i) dyhat/dtheta``,
    which is what its code computes.)

    Same as ``torch.nn.functional.mse_loss``. Reference: Gauss, *Theoria motus* (1809); any
    statistics text on least squares.
    """
    xp, input, target = _prepare_pair(input, target, reduction)
    diff = input - target
    value = reduce(xp, diff * diff, reduction)
    if not compute_grad:
        return value, None
    return value, diff * (2.0 * scale_for(reduction, diff))
