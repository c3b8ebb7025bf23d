"""Array-namespace plumbing and numerically stable building blocks.

Every loss is written once against the Python Array API standard (``xp``), so the same code runs on
NumPy, array-api-strict, PyTorch tensors and anything else array-api-compat understands. NumPy
inputs may additionally take a fast path (see ``losslab.losses._fast``) where the benchmarks show
that it pays.
"""

from __future__ import annotations

import operator
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "namespace",
    "to_namespace",
    "update_ops",
    "in_place",
    "is_numpy",
    "is_floating",
    "is_integral",
    "shape_of",
    "size_of",
    "all_within",
    "log1p_unit",
    "softplus",
    "log_sigmoid",
    "sigmoid",
    "logsumexp",
    "log_softmax",
]


def _is_array(x: Any) -> bool:
    return array_api_compat.is_array_api_obj(x)


def namespace(*args: Any) -> tuple[Any, list[Any]]:
    """Return ``(xp, arrays)``: the common array namespace of ``args`` and the args as arrays.

    ``None`` entries pass through unchanged. Python scalars and lists are converted with the
    namespace of the first real array (NumPy when there is none), so
    ``loss([1.0, 2.0], [0.0, 1.0])`` works like NumPy input.
    """
    real = [a for a in args if a is not None and _is_array(a)]
    if all(type(a) is np.ndarray for a in real):
        # NumPy 2 implements the standard itself; skipping array-api-compat's wrappers saves a
        # function call per operation, which is most of a small batch's cost.
        xp = np
    else:
        xp = array_api_compat.array_namespace(*real)
    like = real[0] if real else None
    out = []
    for a in args:
        if a is None or _is_array(a):
            out.append(a)
        else:
            try:
                if like is None:
                    out.append(xp.asarray(np.asarray(a)))
                else:
                    out.append(xp.asarray(a, device=array_api_compat.device(like)))
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"expected an array or a list of numbers; got {type(a).__name__}"
                ) from exc
    return xp, out


def to_namespace(xp: Any, a: Any, like: Any, dtype: Any = None) -> Any:
    """An option array (a class ``weight``, a ``pos_weight``) moved into ``xp`` beside ``like``.

    Options are often given as NumPy arrays or lists while the inputs live elsewhere (torch,
    array-api-strict); this converts them once, on the input's device, in ``dtype`` if given.
    """
    if a is None:
        return None
    if _is_array(a) and array_api_compat.array_namespace(a) is xp:
        out = a
    else:
        host = np.asarray(a.cpu() if hasattr(a, "cpu") else a)
        out = xp.asarray(host, device=array_api_compat.device(like))
    return out if dtype is None or out.dtype == dtype else xp.astype(out, dtype)


def update_ops(x: Any) -> tuple[Any, Any, Any, Any]:
    """``(iadd, isub, imul, itruediv)``: in-place updates of temporaries, or their out-of-place
    twins while autograd records ``x`` (a torch tensor requiring grad: the double backward of
    losslab.torch differentiates the value formula, and in-place writes would break its tape).
    JAX arrays have no in-place operators, so Python rebinds there anyway."""
    if getattr(x, "requires_grad", False):
        return operator.add, operator.sub, operator.mul, operator.truediv
    return operator.iadd, operator.isub, operator.imul, operator.itruediv


def in_place(xp: Any, op: str, x: Any, *args: Any) -> Any:
    """``xp.<op>(x, *args)`` for a temporary ``x`` nobody else holds, written over ``x`` where the
    namespace allows it: NumPy arrays (``out=x``) and torch tensors outside autograd
    (``x.<op>_(*args)``). That saves an input-sized allocation, whose first touch costs about as
    much as a cheap arithmetic pass. Elsewhere (JAX, array-api-strict, a tensor autograd is
    recording) a new array, as ``xp.<op>`` gives."""
    if isinstance(x, np.ndarray) and x.ndim:
        return getattr(np, op)(x, *args, out=x)
    if array_api_compat.is_torch_namespace(xp) and not x.requires_grad:
        return getattr(x, op + "_")(*args)
    return getattr(xp, op)(x, *args)


def is_numpy(xp: Any) -> bool:
    """True when ``xp`` is NumPy (or array-api-compat's NumPy wrapper)."""
    return array_api_compat.is_numpy_namespace(xp)


def is_floating(xp: Any, x: Any) -> bool:
    return xp.isdtype(x.dtype, "real floating")


def is_integral(xp: Any, x: Any) -> bool:
    return xp.isdtype(x.dtype, "integral")


def shape_of(x: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


def size_of(x: Any) -> int:
    n = 1
    for d in x.shape:
        n *= int(d)
    return n


def all_within(xp: Any, a: Any, bound: float) -> bool:
    """True when every entry of the non-negative array ``a`` is known to be <= ``bound``.

    Answered by one reduction where reading a value back is free: NumPy and CPU torch tensors.
    Elsewhere (a GPU, where the read would synchronise with the device; JAX, whose arrays may be
    tracers) the answer is False, so the caller takes the path that is correct for any values.
    NaN is never within.
    """
    readable = is_numpy(xp) or (
        array_api_compat.is_torch_namespace(xp) and a.device.type == "cpu"
    )
    return readable and (size_of(a) == 0 or bool(xp.max(a) <= bound))


# Stable primitives. Written with ``xp`` only, so they serve every backend.


def log1p_unit(xp: Any, e: Any) -> Any:
    """log(1 + e) for e >= 0: the tail of every softplus (there 0 <= e <= 1), and log_cosh's.

    NumPy's ``log1p`` is a scalar libm loop (about 10 ns an element, five times its SIMD
    ``log``), so on NumPy we take ``log(u) - ((u - 1) - e) / u`` with ``u = 1 + e``: the second
    term restores what rounding ``1 + e`` lost (Goldberg, "What every computer scientist should
    know about floating-point arithmetic", 1991), and it is exactly ``e`` when ``e`` is below the
    rounding of 1. Measured against log1p in extended precision over 2 million draws: at most
    3.5 ulp in float32 and 1.1 ulp in float64 (log1p itself: 0.8). Other namespaces have
    vectorised ``log1p`` already.
    """
    if not is_numpy(xp):
        return xp.log1p(e)
    u = 1.0 + e
    return xp.log(u) - ((u - 1.0) - e) / u


def softplus(xp: Any, x: Any) -> Any:
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))."""
    return xp.maximum(x, 0.0) + log1p_unit(xp, xp.exp(-xp.abs(x)))


def log_sigmoid(xp: Any, x: Any) -> Any:
    """log(sigmoid(x)) = -softplus(-x), finite for every finite x."""
    return xp.minimum(x, 0.0) - log1p_unit(xp, xp.exp(-xp.abs(x)))


def sigmoid(xp: Any, x: Any) -> Any:
    """1 / (1 + exp(-x)) evaluated so that neither branch overflows."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def logsumexp(xp: Any, x: Any, axis: int, keepdims: bool = False) -> Any:
    """log(sum(exp(x), axis)) with the max subtracted first; rows of -inf give -inf, not NaN."""
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else xp.squeeze(out, axis=axis)


def log_softmax(xp: Any, x: Any, axis: int) -> Any:
    """(x - max) - log(sum(exp(x - max))): subtracting the max first keeps log p exact even for
    huge logits, where ``x - logsumexp(x)`` would lose the log-sum to cancellation."""
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    z = x - m
    return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))
