"""The left-to-right lattice recursions of CTC (and of left-to-right HMMs), in log space.

For emissions ``emit`` of shape (T, N, S) (``-inf`` where a state cannot emit) and a mask
``skip`` of shape (N, S) (where state ``s`` may be entered from ``s - 2``):

``log_forward`` gives ``alpha`` (T, N, S), the log-probability of the emissions up to and
including frame ``t`` ending in state ``s``::

    alpha[0, n, s] = emit[0, n, s] for s < 2, -inf otherwise
    alpha[t, n, s] = emit[t, n, s] + log(exp alpha[t-1, n, s] + exp alpha[t-1, n, s-1]
                                         + [skip[n, s]] exp alpha[t-1, n, s-2])

``log_backward`` gives ``beta`` (T, N, S), the log-probability of the emissions AFTER frame ``t``
given state ``s`` at ``t``, each sample ending at its frame ``last[n]`` with the values
``init[n]`` there (0 at the accepting states, ``-inf`` elsewhere), and ``-inf`` after it::

    beta[t, n, s] = log sum_{s' in s, s+1, s+2 (if skip[n, s+2])} exp(beta[t+1, n, s'] +
                                                                      emit[t+1, n, s'])

so that ``alpha + beta`` is the log-probability of all complete paths through ``(t, s)``: no
emission is subtracted, and no ``-inf - (-inf)`` can appear.

Both are vectorised over the batch and the states and loop over time only (each step depends on
the previous one). A step is two ``logaddexp`` passes: exact for ``-inf`` (unreachable states
stay ``-inf``, never NaN), and never underflowing a state that another state dominates (the
maximum is taken per state inside ``logaddexp``, not per row).

Two paths, one result: on NumPy arrays and on torch tensors outside autograd the steps write into
one preallocated buffer through ``out=`` (four or five kernels a step, no allocation: the state
axis carries two ``-inf`` padding columns so that shifted states are plain views); elsewhere (JAX,
array-api-strict, torch recording autograd for a double backward) the steps are out-of-place and
stacked, and under torch autograd ``logaddexp`` is replaced by a form whose derivatives are 0, not
NaN, at ``(-inf, -inf)`` (torch's ``logaddexp`` backward gives ``exp(-inf - (-inf)) = NaN``
there, which would poison every unreachable state's gradient).
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

__all__ = ["log_forward", "log_backward", "logaddexp"]

_NEG = -math.inf


def _fast(xp: Any, emit: Any) -> tuple[Any, Any, Any] | None:
    """``(module, logaddexp, where-into)`` for the in-place path, or None."""
    if isinstance(emit, np.ndarray):
        return np, np.logaddexp, lambda c, a, out: np.copyto(out, a, where=c)
    if array_api_compat.is_torch_namespace(xp):
        import torch

        if not (torch.is_grad_enabled() and emit.requires_grad):
            return torch, torch.logaddexp, lambda c, a, out: torch.where(c, a, out, out=out)
    return None


def _skip_add(xp: Any, skip: Any, like: Any) -> Any:
    zeros = xp.zeros(skip.shape, dtype=like.dtype, device=array_api_compat.device(like))
    return xp.where(skip, zeros, zeros + _NEG)


def _pad(xp: Any, a: Any, front: bool) -> Any:
    """``a`` (T, N, S) with two ``-inf`` state columns in front or behind: (T, N, S + 2)."""
    pad = xp.full(tuple(a.shape[:2]) + (2,), _NEG, dtype=a.dtype,
                  device=array_api_compat.device(a))
    return xp.concat([pad, a] if front else [a, pad], axis=2)


def log_forward(xp: Any, emit: Any, skip: Any) -> Any:
    """``alpha`` of shape (T, N, S): see the module docstring."""
    t_len, n, s_len = (int(d) for d in emit.shape)
    if t_len == 0 or s_len == 0:
        return emit
    skip_add = _skip_add(xp, skip, emit)
    fast = _fast(xp, emit)
    if fast is not None:
        mod, lae, _ = fast
        alpha = mod.empty_like(emit, shape=(t_len, n, s_len + 2)) if mod is np else (
            emit.new_empty((t_len, n, s_len + 2)))
        alpha[:, :, :2] = _NEG  # the padding states (small writes: no full-buffer pass)
        alpha[0, :, 2:4] = emit[0, :, :2]
        alpha[0, :, 4:] = _NEG
        tmp = mod.empty_like(emit[0, ...])
        rows, emits = list(alpha), list(emit)
        for t in range(1, t_len):
            prev, cur = rows[t - 1], rows[t][:, 2:]
            lae(prev[:, 2:], prev[:, 1:-1], out=cur)
            mod.add(prev[:, :-2], skip_add, out=tmp)
            lae(cur, tmp, out=cur)
            mod.add(cur, emits[t], out=cur)
        return alpha[:, :, 2:]
    lae = _lae_for(xp, emit)
    states = xp.arange(s_len, device=array_api_compat.device(emit))
    prev = _pad(xp, xp.where(states < 2, emit[0:1, ...], _NEG), front=True)[0, ...]
    steps = [prev]
    for t in range(1, t_len):
        cur = lae(xp, lae(xp, prev[:, 2:], prev[:, 1:-1]), prev[:, :-2] + skip_add)
        prev = xp.concat([prev[:, :2], cur + emit[t, ...]], axis=1)
        steps.append(prev)
    return xp.stack(steps, axis=0)[:, :, 2:]


def log_backward(xp: Any, emit: Any, skip: Any, last: Any, init: Any) -> Any:
    """``beta`` of shape (T, N, S): see the module docstring. ``last`` (N,) integers, ``init``
    (N, S) the values at each sample's last frame (0 at its accepting states, -inf elsewhere; a
    caller may add a constant per sample, e.g. ``-log Z`` to get posteriors directly)."""
    t_len, n, s_len = (int(d) for d in emit.shape)
    if t_len == 0 or s_len == 0:
        return emit
    # skip_back[n, s] = skip[n, s + 2]: s + 2 may be entered from s.
    skip_back = _pad(xp, _skip_add(xp, skip, emit)[None, ...], front=False)[0, :, 2:]
    frames = xp.arange(t_len, device=array_api_compat.device(emit))
    start = (frames[:, None] == last[None, :])[..., None]  # (T, N, 1)
    fast = _fast(xp, emit)
    if fast is not None:
        mod, lae, select = fast
        beta = mod.empty_like(emit)
        rows, emits, starts = list(beta), list(emit), list(start)
        rows[t_len - 1][...] = _NEG
        select(starts[t_len - 1], init, rows[t_len - 1])
        # Frames where some sample starts (read once where values are free to read): the
        # other steps need no selection.
        readable = mod is np or emit.device.type == "cpu"
        begins = set(np.asarray(last if mod is np else last.cpu()).tolist()) if readable else None
        tmp = mod.full((n, s_len + 2), _NEG, dtype=emit.dtype)
        if mod is not np:
            tmp = tmp.to(emit.device)
        tmp2 = mod.empty_like(emit[0, ...])
        with np.errstate(invalid="ignore"):  # NaN starts (impossible CTC samples) propagate
            _backward_steps(mod, lae, select, rows, emits, starts, begins, init, tmp, tmp2,
                            skip_back, s_len)
        return beta
    lae = _lae_for(xp, emit)
    nxt = xp.where(start[t_len - 1, ...], init, _NEG)
    steps = [nxt]
    pad = xp.full((n, 2), _NEG, dtype=emit.dtype, device=array_api_compat.device(emit))
    for t in range(t_len - 2, -1, -1):
        e = xp.concat([nxt + emit[t + 1, ...], pad], axis=1)
        cur = lae(xp, lae(xp, e[:, :-2], e[:, 1:-1]), e[:, 2:] + skip_back)
        nxt = xp.where(start[t, ...], init, cur)
        steps.append(nxt)
    return xp.stack(steps[::-1], axis=0)


def _backward_steps(mod: Any, lae: Any, select: Any, rows: list, emits: list, starts: list,
                    begins: set | None, init: Any, tmp: Any, tmp2: Any, skip_back: Any,
                    s_len: int) -> None:
    """The in-place backward loop (``tmp`` carries two -inf padding states behind)."""
    for t in range(len(rows) - 2, -1, -1):
        cur = rows[t]
        mod.add(rows[t + 1], emits[t + 1], out=tmp[:, :s_len])
        lae(tmp[:, :-2], tmp[:, 1:-1], out=cur)
        mod.add(tmp[:, 2:], skip_back, out=tmp2)
        lae(cur, tmp2, out=cur)
        if begins is None or t in begins:
            select(starts[t], init, cur)


def _lae_for(xp: Any, emit: Any) -> Any:
    """The out-of-place ``logaddexp``: autograd-safe on torch (only reached under autograd)."""
    if array_api_compat.is_torch_namespace(xp):
        return _logaddexp_autograd
    return lambda xp_, a, b: xp_.logaddexp(a, b)


def logaddexp(xp: Any, a: Any, b: Any) -> Any:
    """``log(exp(a) + exp(b))``; under torch autograd in the form whose derivatives (first and
    second) are 0, not NaN, where both arguments are ``-inf``."""
    if array_api_compat.is_torch_namespace(xp):
        import torch

        if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
            return _logaddexp_autograd(xp, a, b)
    return xp.logaddexp(a, b)


def _logaddexp_autograd(xp: Any, a: Any, b: Any) -> Any:
    """``logaddexp`` whose autograd derivatives are 0 where both arguments are ``-inf``."""
    m = xp.maximum(a, b)
    finite = m > _NEG
    m0 = xp.where(finite, m, 0.0)
    s = xp.exp(a - m0) + xp.exp(b - m0)
    return xp.where(finite, m0 + xp.log(xp.where(finite, s, 1.0)), _NEG)
