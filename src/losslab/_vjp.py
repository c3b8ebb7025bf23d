"""From the catalog's gradient to a vector-Jacobian product: what the torch and JAX adapters share.

A catalog loss returns the gradient of its value, or for ``reduction="none"`` the gradient of the
SUM of the per-element losses. An autograd system asks for more: given a cotangent ``g`` of the
value's shape, the gradient of ``sum_j g_j * l_j``. That is ``g`` times the catalog's gradient,
once ``g`` is laid over the input the right way, because in every catalog loss each input element
feeds exactly one per-element loss:

- elementwise losses (``mse``, ``bce``, ...): ``l`` has the input's shape, ``g`` multiplies as is;
- row losses (``cross_entropy`` and ``nll`` over the class axis 1, ``triplet_margin`` and
  ``cosine_embedding`` over the feature axis): ``l`` has one axis fewer, and ``g`` gets that axis
  back as a size-1 axis, so it scales each row;
- per-sample losses (``dice``, ``jaccard``, ``tversky`` with ``reduction="none"``): ``l`` is
  indexed by the leading axes only, and ``g`` gets size-1 trailing axes.

Which axis a loss reduces is its declared ``LossSpec.layout``. An input that the loss broadcasts (a
``var`` of shape (N, 1) in ``gaussian_nll``) does not feed exactly one element, so the adapters
first broadcast it to the input's shape (``broadcast_like``), a view that their own autograd sums
back. All of this is written against the Array API, so one piece of code serves both adapters.
"""

from __future__ import annotations

from typing import Any

from losslab.losses._primitives import shape_of
from losslab.losses._registry import spec as _spec

__all__ = ["lay_over", "vjp", "broadcast_like"]

# The loss's declared layout (LossSpec.layout) names the axis its per-item losses reduce.
_RULES = {
    "elementwise": "same",
    "class_axis": "class",
    "feature_axis": "last",
    "per_sample": "trailing",
    "distribution_axis": "dim",
}


def _layouts(
    g_shape: tuple[int, ...], x_shape: tuple[int, ...], rule: str | None, dim: int
) -> list[str]:
    fits = {
        "dim": len(x_shape) >= 1 and x_shape[:dim] + x_shape[dim + 1 :] == g_shape,
        "same": g_shape == x_shape,
        "class": len(x_shape) >= 2 and x_shape[:1] + x_shape[2:] == g_shape,
        "last": len(x_shape) >= 1 and x_shape[:-1] == g_shape,
        "trailing": len(g_shape) < len(x_shape) and x_shape[: len(g_shape)] == g_shape,
    }
    order = ["same", "class", "last", "trailing"]
    if rule is not None:
        order = ["same", rule] + [o for o in order if o not in ("same", rule)]
    return [o for o in order if fits[o]]


def lay_over(
    xp: Any, g: Any, x_shape: tuple[int, ...], name: str = "", options: dict | None = None
) -> Any:
    """``g`` (the cotangent of a per-element loss) reshaped so it broadcasts over the input."""
    g_shape, x_shape = shape_of(g), tuple(x_shape)
    if len(g_shape) == 0:
        return g
    dim = int((options or {}).get("dim", -1)) % max(len(x_shape), 1)
    found = _layouts(g_shape, x_shape, _RULES[_spec(name).layout], dim)
    if not found:
        raise RuntimeError(
            f"losslab: cannot lay the cotangent of shape {g_shape} of loss {name!r} over an input "
            f"of shape {tuple(x_shape)}; its declared layout does not fit these shapes."
        )
    layout = found[0]
    if layout == "same":
        return g
    if layout == "dim":
        return xp.expand_dims(g, axis=dim)
    if layout == "class":
        return xp.expand_dims(g, axis=1)
    if layout == "last":
        return xp.expand_dims(g, axis=-1)
    return xp.reshape(g, g_shape + (1,) * (len(x_shape) - len(g_shape)))


def vjp(
    xp: Any, name: str, g: Any, grad: Any, x_shape: tuple[int, ...], options: dict | None = None
) -> Any:
    """The cotangent of one input: ``g`` laid over it, times the catalog's gradient."""
    return lay_over(xp, g, x_shape, name, options) * grad


def broadcast_like(xp: Any, x: Any, ref: Any) -> Any:
    """``x`` broadcast to ``ref``'s shape, the way torch's ``gaussian_nll_loss`` reads ``var``.

    A ``var`` with one dimension fewer than the input gets a trailing axis first. Returns ``x``
    unchanged when it already has ``ref``'s shape or does not broadcast to it (the loss's own
    checks then report the problem).
    """
    xs, rs = shape_of(x), shape_of(ref)
    if xs == rs:
        return x
    y = x
    if len(xs) == len(rs) - 1 and xs == rs[:-1]:
        y = xp.expand_dims(x, axis=-1)
        xs = xs + (1,)
    if len(xs) > len(rs) or any(d not in (1, r) for d, r in zip(reversed(xs), reversed(rs))):
        return x
    return xp.broadcast_to(y, rs)
