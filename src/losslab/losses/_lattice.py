"""The left-to-right lattice recursion of CTC (and of left-to-right HMMs), in log space.

``log_forward(xp, emit, skip)`` returns, for emissions ``emit`` of shape (T, N, S) (``-inf`` where
a state cannot emit) and a mask ``skip`` of shape (N, S) (where state ``s`` may be entered from
``s - 2``),

    alpha[0, n, s] = emit[0, n, s] for s < 2, -inf otherwise
    alpha[t, n, s] = emit[t, n, s] + log(exp alpha[t-1, n, s] + exp alpha[t-1, n, s-1]
                                         + [skip[n, s]] exp alpha[t-1, n, s-2])

vectorised over the batch and the states, looping over time only (each step depends on the
previous one). Each step is two ``logaddexp`` passes, which are exact for ``-inf`` (unreachable
states stay ``-inf``, never NaN) and never underflow a state that another state dominates (the
per-state maximum is taken inside ``logaddexp``, not a per-row one).

Two paths, one result: on NumPy arrays and on torch tensors outside autograd the steps write into
one preallocated (T, N, S) buffer through ``out=`` (four kernels a step, no allocation but one
small temporary); elsewhere (JAX, array-api-strict, torch recording autograd for a double
backward) the steps are out-of-place and stacked, and under autograd ``logaddexp`` is replaced by
a form whose gradient is 0, not NaN, at ``(-inf, -inf)`` (torch's ``logaddexp`` backward gives
``exp(-inf - (-inf)) = NaN`` there, which would poison every unreachable state's gradient).
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

__all__ = ["log_forward", "logaddexp"]


def log_forward(xp: Any, emit: Any, skip: Any) -> Any:
    """``alpha`` of shape (T, N, S): see the module docstring."""
    t_len, _, s_len = (int(d) for d in emit.shape)
    if t_len == 0 or s_len == 0:
        return emit
    neg = -math.inf
    states = xp.arange(s_len, device=array_api_compat.device(emit))
    first = xp.where(states < 2, emit[0, ...], neg)
    zeros = xp.zeros(skip.shape, dtype=emit.dtype, device=array_api_compat.device(emit))
    skip_add = xp.where(skip, zeros, zeros + neg)
    if isinstance(emit, np.ndarray):
        return _in_place(np, emit, first, skip_add, np.logaddexp, np.add)
    if array_api_compat.is_torch_namespace(xp):
        import torch

        if not (torch.is_grad_enabled() and emit.requires_grad):
            return _in_place(xp, emit, first, skip_add, torch.logaddexp, torch.add)
        return _stacked(xp, emit, first, skip_add, _logaddexp_autograd)
    return _stacked(xp, emit, first, skip_add, lambda xp_, a, b: xp_.logaddexp(a, b))


def _in_place(xp: Any, emit: Any, first: Any, skip_add: Any, lae: Any, add: Any) -> Any:
    alpha = xp.empty_like(emit)
    alpha[0, ...] = first
    s_len = int(emit.shape[2])
    for t in range(1, int(emit.shape[0])):
        prev, cur = alpha[t - 1, ...], alpha[t, ...]
        cur[:, 0] = prev[:, 0]
        lae(prev[:, 1:], prev[:, :-1], out=cur[:, 1:])
        if s_len > 2:
            lae(cur[:, 2:], prev[:, :-2] + skip_add[:, 2:], out=cur[:, 2:])
        add(cur, emit[t, ...], out=cur)
    return alpha


def _stacked(xp: Any, emit: Any, first: Any, skip_add: Any, lae: Any) -> Any:
    n, s_len = int(emit.shape[1]), int(emit.shape[2])
    pad = xp.full((n, 2), -math.inf, dtype=emit.dtype, device=array_api_compat.device(emit))
    steps = [first]
    prev = first
    for t in range(1, int(emit.shape[0])):
        shifted1 = xp.concat([pad[:, :1], prev[:, : s_len - 1]], axis=1)
        cur = lae(xp, prev, shifted1)
        if s_len > 2:
            shifted2 = xp.concat([pad, prev[:, : s_len - 2]], axis=1) + skip_add
            cur = lae(xp, cur, shifted2)
        prev = cur + emit[t, ...]
        steps.append(prev)
    return xp.stack(steps, axis=0)


def logaddexp(xp: Any, a: Any, b: Any) -> Any:
    """``log(exp(a) + exp(b))``; under torch autograd in the form whose derivatives (first and
    second) are 0, not NaN, where both arguments are ``-inf``."""
    if array_api_compat.is_torch_namespace(xp):
        import torch

        if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
            return _logaddexp_autograd(xp, a, b)
    return xp.logaddexp(a, b)


def _logaddexp_autograd(xp: Any, a: Any, b: Any) -> Any:
    """``logaddexp`` whose autograd gradient is 0 where both arguments are ``-inf``."""
    m = xp.maximum(a, b)
    finite = m > -math.inf
    m0 = xp.where(finite, m, 0.0)
    s = xp.exp(a - m0) + xp.exp(b - m0)
    return xp.where(finite, m0 + xp.log(xp.where(finite, s, 1.0)), -math.inf)
