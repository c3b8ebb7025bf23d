"""Layouts: which input elements one per-item loss covers, declared by each loss's spec.

A loss computes one loss per *item*; ``layout`` says how items sit in the first differentiable
input:

- ``"elementwise"``: one item per input element (mse, bce, ...);
- ``"class_axis"``: one item per sample and position, the classes on axis 1 (torch's
  ``(N, C, d1, ..., dk)`` layout; an unbatched ``(C,)`` input is one item);
- ``"feature_axis"``: one item per row along the last axis (embeddings, multi-label rows);
- ``"per_sample"``: one item per sample, covering all its non-batch elements (Dice, ...), or, where
  the loss's ``batch`` option is set, one item covering the whole batch (a 0-d per-item loss);
- ``"distribution_axis"``: one item per distribution along the axis named by the ``dim`` option;
- ``"time_major"``: one item per sample, the samples on axis 1 behind a leading time axis (torch's
  CTC layout ``(T, N, C)``; an unbatched ``(T, C)`` input is one item).

The reducer lays per-item weights (the mean's ``1/n``, sample weights, an autograd cotangent) over
the input with ``lay_over``, giving the weights size-1 axes where the layout reduces so that they
broadcast against the input and the gradient.
"""

from __future__ import annotations

import math
from typing import Any

from losslab.losses._primitives import shape_of

__all__ = ["LAYOUTS", "items_shape", "item_count", "lay_over", "batch_axis"]

LAYOUTS = (
    "elementwise", "class_axis", "feature_axis", "per_sample", "distribution_axis", "time_major",
)


def _dim(first: Any, options: dict[str, Any]) -> int:
    return int(options.get("dim", -1)) % max(first.ndim, 1)


def items_shape(spec: Any, first: Any, options: dict[str, Any]) -> tuple[int, ...]:
    """The shape of the per-item losses for the first differentiable input ``first``."""
    shape = shape_of(first)
    layout = spec.layout
    if layout == "elementwise":
        return shape
    if layout == "class_axis":
        return shape[:1] + shape[2:] if len(shape) >= 2 else ()
    if layout == "feature_axis":
        return shape[:-1]
    if layout == "per_sample":
        return () if options.get("batch", False) else shape[:1]
    if layout == "time_major":
        return shape[1:2] if len(shape) >= 3 else ()
    d = _dim(first, options)
    return shape[:d] + shape[d + 1 :]


def item_count(spec: Any, first: Any, options: dict[str, Any]) -> int:
    """How many per-item losses there are (what a plain mean divides by)."""
    return math.prod(items_shape(spec, first, options))


def lay_over(xp: Any, spec: Any, w: Any, first: Any, options: dict[str, Any]) -> Any:
    """``w``, an array of the items' shape (or one broadcastable to it with as many axes), with
    size-1 axes inserted where the layout reduces, so that it broadcasts against ``first``."""
    layout = spec.layout
    if layout == "elementwise" or w.ndim == 0:
        return w
    if layout == "class_axis":
        if first.ndim == 1:
            return xp.reshape(w, (1,))
        return xp.expand_dims(w, axis=1)
    if layout == "feature_axis":
        return xp.expand_dims(w, axis=-1)
    if layout == "per_sample":
        return xp.reshape(w, shape_of(w) + (1,) * (first.ndim - w.ndim))
    if layout == "time_major":
        return xp.reshape(w, (1,) + shape_of(w) + (1,))
    return xp.expand_dims(w, axis=_dim(first, options))


def batch_axis(spec: Any, input_name: str) -> int | None:
    """The axis of input ``input_name`` that runs over the samples: 1 for the first input of a
    ``"time_major"`` loss (CTC's ``(T, N, C)`` log-probabilities), None for an input shared by
    every sample (the inputs a spec names in ``shared``: a class-weight matrix, a bias), else 0.
    What a batch is cut along (the catalog-wide empty-batch test slices each input there)."""
    if input_name in getattr(spec, "shared", ()) or input_name == getattr(spec, "classes", None):
        return None
    if spec.layout == "time_major" and input_name == spec.differentiable[0]:
        return 1
    return 0
