"""From the catalog's gradient to a vector-Jacobian product: what the torch and JAX adapters share.

A catalog loss returns the gradient of its value, or for ``reduction="none"`` the gradient of the
SUM of the per-item losses. An autograd system asks for more: given a cotangent ``g`` of the
value's shape, the gradient of ``sum_j g_j * l_j``. That is ``g`` times the catalog's gradient,
once ``g`` is laid over the input the way the loss's declared layout says
(``losslab.losses._layout.lay_over``: a size-1 axis where the items reduce), because in every
loss whose spec does not declare ``couples_items`` each input element feeds exactly one item.
(Losses that couple items get the cotangent inside their formula instead: ``Loss.vjp``.)

An input that the loss broadcasts (a ``var`` of shape (N, 1) in ``gaussian_nll``) does not feed
exactly one item, so the adapters first broadcast it to the input's shape (``broadcast_like``), a
view that their own autograd sums back. All of this is written against the Array API, so one
piece of code serves both adapters.
"""

from __future__ import annotations

from typing import Any

from losslab.losses._layout import lay_over
from losslab.losses._primitives import shape_of

__all__ = ["lay_over", "vjp", "broadcast_like"]


def vjp(xp: Any, spec: Any, g: Any, grad: Any, first: Any, options: dict[str, Any]) -> Any:
    """The cotangent of one input: ``g`` laid over the first input ``first``, times the catalog's
    gradient of the (weighted) sum."""
    return lay_over(xp, spec, g, first, options) * grad


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
