"""Regularization as a term added to the loss, and gradient clipping.

The article's cure for overfitting "adds a regular term to the loss function". Here a
``Regularizer`` is exactly that: ``value(params)`` is added to the reported loss and
``grad(params)`` to the parameters' gradients. Convention (Keras's ``l1``/``l2``/``l1_l2``):

- ``L1(l1)``:            ``R = l1 * sum |w|``,              ``dR/dw = l1 * sign(w)`` (0 at 0)
- ``L2(l2)``:            ``R = l2 * sum w^2``,              ``dR/dw = 2 * l2 * w``
- ``ElasticNet(l1, l2)``: ``R = l1 * sum |w| + l2 * sum w^2``

By default only parameters named ``*.weight`` (or ``weight``) are penalised, not biases.

How this relates to optimizers' ``weight_decay``: with plain SGD, ``L2(l2)`` gives the gradient
``g + 2 l2 w``, exactly ``SGD(weight_decay=wd)`` with ``wd = 2 * l2`` -- note the factor 2, so
``L2(l2=wd/2)`` is the same as ``weight_decay=wd`` (and ``Adam(weight_decay=wd)``, whose decay is
also coupled through the gradient). AdamW's *decoupled* decay ``w <- w (1 - lr wd)`` bypasses
Adam's per-coordinate scaling and is not equivalent to any loss term; it also leaves the reported
loss unchanged. ``tests/test_regularization.py`` checks all three statements.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["Regularizer", "L1", "L2", "ElasticNet", "clip_grad_norm", "clip_grad_value"]

DEFAULT_INCLUDE = ("*.weight", "weight")


def _coef(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number >= 0; got {value!r}.")
    v = float(value)
    if not v >= 0 or math.isinf(v):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}.")
    return v


class Regularizer:
    """``l1 * sum |w| + l2 * sum w^2`` over the parameters whose names match ``include``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0, *,
                 include: str | Iterable[str] = DEFAULT_INCLUDE) -> None:
        self.l1 = _coef(l1, "l1")
        self.l2 = _coef(l2, "l2")
        self.include = (include,) if isinstance(include, str) else tuple(include)

    def applies_to(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pat) for pat in self.include)

    def _selected(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: w for k, w in params.items() if self.applies_to(k)}

    def value(self, params: dict[str, np.ndarray]) -> float:
        total = 0.0
        for w in self._selected(params).values():
            if self.l1:
                total += self.l1 * float(np.sum(np.abs(w)))
            if self.l2:
                total += self.l2 * float(np.vdot(w, w))
        return total

    def grad(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{name: dR/dw}`` for the penalised parameters (same dtype as each)."""
        out = {}
        for k, w in self._selected(params).items():
            g = np.zeros_like(w)
            if self.l1:
                g += self.l1 * np.sign(w)
            if self.l2:
                g += (2.0 * self.l2) * w
            out[k] = g
        return out

    def add_grad(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> float:
        """Add ``dR/dw`` into ``grads`` in place and return ``R`` (one pass for a trainer)."""
        for k, g in self.grad(params).items():
            if k in grads:
                grads[k] += g
        return self.value(params)

    def config(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "l1": self.l1, "l2": self.l2,
                "include": list(self.include)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(l1={self.l1!r}, l2={self.l2!r}, include={self.include!r})"


class L1(Regularizer):
    """Lasso penalty ``l1 * sum |w|``; gradient ``l1 * sign(w)`` (torch's subgradient 0 at 0)."""

    def __init__(self, l1: float, *, include: str | Iterable[str] = DEFAULT_INCLUDE) -> None:
        super().__init__(l1=l1, include=include)


class L2(Regularizer):
    """Ridge penalty ``l2 * sum w^2``; gradient ``2 * l2 * w`` (= weight_decay ``2 * l2``)."""

    def __init__(self, l2: float, *, include: str | Iterable[str] = DEFAULT_INCLUDE) -> None:
        super().__init__(l2=l2, include=include)


class ElasticNet(Regularizer):
    """``l1 * sum |w| + l2 * sum w^2`` (Zou & Hastie, 2005; Keras's ``l1_l2``)."""

    def __init__(self, l1: float, l2: float, *,
                 include: str | Iterable[str] = DEFAULT_INCLUDE) -> None:
        super().__init__(l1=l1, l2=l2, include=include)


def clip_grad_norm(
    grads: dict[str, np.ndarray],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients in place so their joint norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: ``total = ||(||g_1||, ..., ||g_k||)||`` (p-norm,
    ``norm_type=inf`` for the max), ``coef = min(max_norm / (total + 1e-6), 1)``, every gradient
    multiplied by ``coef``. Returns ``total``, the norm *before* clipping. A non-finite total
    raises ValueError when ``error_if_nonfinite`` (torch raises RuntimeError).
    """
    max_norm = float(max_norm)
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0; got {max_norm!r}.")
    p = float(norm_type)
    if not p > 0:
        raise ValueError(f"norm_type must be > 0 or inf; got {norm_type!r}.")
    gs = [g for g in grads.values() if g is not None and g.size]
    if not gs:
        return 0.0
    if math.isinf(p):
        total = max(float(np.max(np.abs(g))) for g in gs)
    else:
        norms = [float(np.linalg.norm(g.ravel(), ord=p)) for g in gs]
        total = float(np.linalg.norm(np.asarray(norms), ord=p))
    if error_if_nonfinite and not math.isfinite(total):
        raise ValueError(
            f"the total norm of order {norm_type} of the gradients is {total}; "
            "cannot clip (set error_if_nonfinite=False to clip anyway)."
        )
    coef = min(max_norm / (total + 1e-6), 1.0)
    if coef < 1.0 or not math.isfinite(total):
        with np.errstate(invalid="ignore"):  # inf * 0 -> nan, as torch
            for g in gs:
                g *= coef
    return total


def clip_grad_value(grads: dict[str, np.ndarray], clip_value: float) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place
    (``torch.nn.utils.clip_grad_value_``)."""
    c = float(clip_value)
    if not c > 0:
        raise ValueError(f"clip_value must be > 0; got {clip_value!r}.")
    for g in grads.values():
        if g is not None:
            np.clip(g, -c, c, out=g)
