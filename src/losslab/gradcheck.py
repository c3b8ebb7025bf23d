"""Check a loss's closed-form gradient against central finite differences.

Used by the test suite and by ``losslab gradcheck NAME``. Work in float64: with a step of 1e-6 the
central difference ``(f(x + h) - f(x - h)) / 2h`` is accurate to about 1e-9 relative for smooth
losses, so disagreement beyond 1e-5 means a wrong formula, not rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["numerical_grad", "check_gradient", "max_relative_error"]


def numerical_grad(
    f: Callable[..., float], inputs: Sequence[np.ndarray], index: int, eps: float = 1e-6
) -> np.ndarray:
    """Central-difference gradient of the scalar ``f(*inputs)`` w.r.t. ``inputs[index]``."""
    args = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in inputs]
    x = args[index]
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        up = float(f(*args))
        flat[i] = orig - eps
        down = float(f(*args))
        flat[i] = orig
        gflat[i] = (up - down) / (2.0 * eps)
    return grad


def check_gradient(
    loss: Any, inputs: Sequence[np.ndarray], eps: float = 1e-6
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{input name: (closed-form gradient, finite-difference gradient)}`` for a ``Loss``.

    The scalar differentiated is the loss value, or the sum of the per-element losses when the
    loss is configured with ``reduction="none"`` (matching the catalog's gradient contract).
    """
    inputs = [np.asarray(a, dtype=np.float64) if _is_float(a) else a for a in inputs]

    def scalar(*args: Any) -> float:
        return float(np.sum(np.asarray(loss(*args), dtype=np.float64)))

    grads = loss.grad(*inputs)
    grads = grads if isinstance(grads, tuple) else (grads,)
    names = loss.spec.inputs
    report = {}
    for name, g in zip(loss.spec.differentiable, grads):
        idx = names.index(name)
        report[name] = (np.asarray(g, dtype=np.float64), numerical_grad(scalar, inputs, idx, eps))
    return report


def max_relative_error(report: dict[str, tuple[np.ndarray, np.ndarray]]) -> float:
    """Largest ``|a - n| / max(|a|, |n|, 1e-6)`` over all entries of all inputs."""
    worst = 0.0
    for analytic, numeric in report.values():
        if analytic.size == 0:
            continue
        denom = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1e-6)
        worst = max(worst, float(np.max(np.abs(analytic - numeric) / denom)))
    return worst


def _is_float(a: Any) -> bool:
    return isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)
