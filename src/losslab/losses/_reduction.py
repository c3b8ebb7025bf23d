"""Reductions, and the factor they put on the gradient.

``reduction="mean"`` divides by the number of elements, so each element's gradient is divided by it
too; ``"sum"`` leaves both alone; ``"none"`` returns the per-element losses, and the gradient we
return is then that of their sum (what torch's ``backward`` with a tensor of ones gives).
"""

from __future__ import annotations

from typing import Any

from losslab.losses._primitives import is_numpy, size_of


def reduce(xp: Any, elementwise: Any, reduction: str) -> Any:
    if reduction == "none":
        return xp.asarray(elementwise) if is_numpy(xp) else elementwise
    out = xp.sum(elementwise) if reduction == "sum" else xp.mean(elementwise)
    # NumPy reductions return scalars; the contract is a 0-d array of the input's dtype.
    return xp.asarray(out) if is_numpy(xp) else out


def grad_scale(reduction: str, n: int) -> float:
    """d(reduced)/d(element i): 1/n for the mean, 1 otherwise."""
    return 1.0 / n if reduction == "mean" and n > 0 else 1.0


def scale_for(reduction: str, elementwise_like: Any) -> float:
    return grad_scale(reduction, size_of(elementwise_like))
