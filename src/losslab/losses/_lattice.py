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

Two paths, one result. On NumPy arrays and on torch tensors outside autograd (``Lattice``'s
in-place path) a frame of all samples' states is ONE flat row: sample n's state s at
``n (S + 2) + 2 + s``, two ``-inf`` padding entries before every sample and two after the last,
so that the states shifted by one and two are plain 1-D views of the previous row and each step
is four kernels over contiguous memory writing into one preallocated buffer (no allocation, no
per-step slicing: the views of every frame are made once). A (N, S) strided view per frame
would cost torch's ``logaddexp`` twice as much (10.7 against 5.7 us a call at N=32, S=81). The
padding entries keep the samples apart: their emissions are ``-inf``, so they hold ``-inf``
whatever a neighbour holds, unless that is NaN or ``+inf`` (from such inputs, or a NaN
``init``): then each step also resets them (one fill), so that nothing crosses from one sample
into the next. Elsewhere (JAX, array-api-strict, torch recording autograd for a double
backward) the steps are out-of-place and stacked, and under torch autograd ``logaddexp`` is
replaced by a form whose derivatives are 0, not NaN, at ``(-inf, -inf)`` (torch's ``logaddexp``
backward gives ``exp(-inf - (-inf)) = NaN`` there, which would poison every unreachable state's
gradient).
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from losslab.losses._primitives import exp_flushed

__all__ = [
    "Lattice", "log_forward", "log_backward", "logaddexp", "gather_states", "sum_states_by_class",
]

_NEG = -math.inf


def _in_place(xp: Any, emit: Any) -> tuple[Any, Any, Any] | None:
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


def _frames(mod: Any, a: Any) -> list[Any] | tuple[Any, ...]:
    """The views ``a[0], a[1], ...`` at once (torch's ``unbind`` makes them in one call)."""
    return list(a) if mod is np else a.unbind(0)


def _fill(mod: Any, a: Any) -> None:
    """``a[...] = -inf`` (torch's ``fill_`` directly: its item assignment costs 5 times more)."""
    if mod is np:
        a.fill(_NEG)
    else:
        a.fill_(_NEG)


class _Flat:
    """(rows, N, S) arrays as flat rows (see the module docstring): ``buf`` (rows, L) filled
    with ``-inf``, ``grid`` its (rows, N, S + 2) view (padding at ``[..., :2]``, states at
    ``[..., 2:]``), L = N (S + 2) + 2."""

    def __init__(self, mod: Any, rows: int, n: int, s_len: int, like: Any,
                 filled: bool = True) -> None:
        width = s_len + 2
        self.length = n * width + 2
        # Filled whole (a contiguous fill costs less than the padding's strided columns alone),
        # or left for a recursion that writes what it reads (``filled=False``).
        shape = (rows, self.length)
        if mod is np:
            self.buf = np.full(shape, _NEG, dtype=like.dtype) if filled else np.empty(
                shape, dtype=like.dtype)
        else:
            make = mod.full if filled else mod.empty
            args = (shape, _NEG) if filled else (shape,)
            self.buf = make(*args, dtype=like.dtype, device=like.device)
        self.grid = self.buf[:, : n * width].reshape(rows, n, width)
        self.states = self.grid[:, :, 2:]


class Lattice:
    """A batch's lattice: emissions ``emit`` (T, N, S) and ``skip`` (N, S), laid out once for
    both recursions. ``forward()`` gives ``alpha``, ``backward(last, init)`` ``beta`` (the module
    docstring has both), ``posteriors(last, init)`` ``exp(alpha + beta)`` after ``forward()``.
    ``Lattice.gathered`` takes class log-probabilities and each state's class instead (CTC's
    emissions), gathered straight into the in-place path's layout."""

    def __init__(self, xp: Any, emit: Any, skip: Any) -> None:
        self.xp, self.emit, self.skip = xp, emit, skip
        self.t_len, self.n, self.s_len = (int(d) for d in emit.shape)
        self._fast = _in_place(xp, emit) if self.t_len and self.s_len and self.n else None
        self._emit_rows: Any = None
        self._skip_add: Any = None
        self._alpha: Any = None  # the forward recursion's result (flat rows on the fast path)
        self._unsafe: bool | None = None  # NaN or +inf among the emissions

    @classmethod
    def gathered(cls, xp: Any, log_probs: Any, ext: Any, skip: Any) -> Lattice:
        """The lattice of ``emit[t, n, s] = log_probs[t, n, ext[n, s]]`` (``gather_states``)."""
        t_len, n, s_len = int(log_probs.shape[0]), int(ext.shape[0]), int(ext.shape[1])
        fast = _in_place(xp, log_probs)
        if fast is None or not (t_len and n and s_len):
            return cls(xp, gather_states(xp, log_probs, ext), skip)
        mod = fast[0]
        flat = _Flat(mod, t_len, n, s_len, log_probs)
        index = xp.astype(ext, xp.int64)[None, ...]
        if mod is np:
            flat.states[...] = np.take_along_axis(log_probs, index, axis=2)
        else:
            mod.gather(log_probs, 2, index.expand(t_len, -1, -1), out=flat.states)
        lattice = cls(xp, flat.states, skip)
        lattice._emit_rows = flat.buf
        return lattice

    def _needs_reset(self, init: Any = None) -> bool:
        """Whether a NaN or ``+inf`` could reach the padding (then reset it every step): one
        reduction of the emissions where values are free to read (``max`` propagates NaN),
        else assumed."""
        mod = self._fast[0] if self._fast is not None else None
        if mod is not np and (mod is None or self.emit.device.type != "cpu"):
            return True
        if self._unsafe is None:
            self._unsafe = not bool(mod.max(self.emit) < math.inf)
        return self._unsafe or (init is not None and not bool(mod.max(init) < math.inf))

    def _in_place_ops(self) -> tuple[Any, Any, Any]:
        if self._fast is None:  # pragma: no cover (the callers check first)
            raise RuntimeError("the lattice's in-place path is not available here")
        return self._fast

    def _flat_emissions(self) -> Any:
        if self._emit_rows is None:
            flat = _Flat(self._in_place_ops()[0], self.t_len, self.n, self.s_len, self.emit)
            flat.states[...] = self.emit
            self._emit_rows = flat.buf
        return self._emit_rows

    def _skip_added(self) -> Any:
        if self._skip_add is None:
            self._skip_add = _skip_add(self.xp, self.skip, self.emit)
        return self._skip_add

    def forward(self) -> Any:
        """``alpha`` (T, N, S)."""
        if self.t_len == 0 or self.s_len == 0:
            return self.emit
        if self._fast is None:
            self._alpha = self._forward_stacked()
            return self._alpha
        return self._forward_flat()

    def _forward_flat(self) -> Any:
        emit, t_len, n, s_len = self.emit, self.t_len, self.n, self.s_len
        mod, lae, _ = self._in_place_ops()
        # Frame 0, and each frame's first two entries (read, never written): -inf; the loop
        # writes everything else it reads.
        alpha = _Flat(mod, t_len, n, s_len, emit, filled=False)
        alpha.buf[0] = _NEG
        alpha.buf[:, :2] = _NEG
        alpha.states[0, :, :2] = emit[0, :, :2]
        skip = _Flat(mod, 1, n, s_len, emit)
        skip.states[0] = self._skip_added()
        skip_v, tmp = skip.buf[0, 2:], mod.empty_like(skip.buf[0, 2:])
        here, back1, back2 = (_frames(mod, alpha.buf[:, k : alpha.length - 2 + k])
                              for k in (2, 1, 0))
        emits = _frames(mod, self._flat_emissions()[:, 2:])
        reset = n > 1 and self._needs_reset()
        pads = _frames(mod, alpha.grid[:, 1:, :2]) if reset else None
        with np.errstate(invalid="ignore"):  # NaN inputs propagate (in their own sample)
            for t in range(1, t_len):
                cur = here[t]
                lae(here[t - 1], back1[t - 1], out=cur)
                mod.add(back2[t - 1], skip_v, out=tmp)
                lae(cur, tmp, out=cur)
                mod.add(cur, emits[t], out=cur)
                if pads is not None:
                    _fill(mod, pads[t])
        self._alpha = alpha
        return alpha.states

    def backward(self, last: Any, init: Any) -> Any:
        """``beta`` (T, N, S). ``last`` (N,) integers, ``init`` (N, S) the values at each
        sample's last frame (0 at its accepting states, -inf elsewhere; a caller may add a
        constant per sample, e.g. ``-log Z`` to get posteriors directly)."""
        xp, emit, t_len = self.xp, self.emit, self.t_len
        if t_len == 0 or self.s_len == 0:
            return emit
        frames = xp.arange(t_len, device=array_api_compat.device(emit))
        start = (frames[:, None] == last[None, :])[..., None]  # (T, N, 1)
        if self._fast is None:
            return self._backward_stacked(start, init)
        return self._backward_flat(start, init, last).states

    def posteriors(self, last: Any, init: Any) -> Any:
        """``exp(alpha + beta)`` (T, N, S), after ``forward()``; ``init`` as for ``backward``
        (with ``-log Z`` added these are the state posteriors). On the in-place path the sum is
        taken over the flat rows in the backward recursion's own buffer (contiguous, no new
        array) and exponentiated there (``exp_flushed``)."""
        if self._alpha is None:
            raise RuntimeError("Lattice.posteriors needs forward() first")
        xp = self.xp
        if self.t_len == 0 or self.s_len == 0:
            return xp.zeros_like(self.emit)
        frames = xp.arange(self.t_len, device=array_api_compat.device(self.emit))
        if self._fast is None:
            post = exp_flushed(xp, self.backward(last, init) + self._alpha)
        else:
            start = (frames[:, None] == last[None, :])[..., None]
            beta = self._backward_flat(start, init, last)
            with np.errstate(invalid="ignore"):  # inf - inf past a last frame: masked below
                beta.buf += self._alpha.buf
            exp_flushed(xp, beta.buf, overwrite=True)
            post = beta.states
        if self._needs_reset(init):
            # NaN or inf emissions past a sample's last frame (padding its recursions never
            # need) reach the posteriors there, which are 0.
            post = xp.where((frames[:, None] <= last[None, :])[..., None], post, 0.0)
        return post

    def _backward_flat(self, start: Any, init: Any, last: Any) -> _Flat:
        emit, t_len, n, s_len = self.emit, self.t_len, self.n, self.s_len
        mod, lae, select = self._in_place_ops()
        # The last frame, and each frame's last two entries (read, never written): -inf.
        beta = _Flat(mod, t_len, n, s_len, emit, filled=False)
        beta.buf[t_len - 1] = _NEG
        beta.buf[:, beta.length - 2 :] = _NEG
        # skip_back at s: s + 2 may be entered from s (state s's flat place, next two ahead).
        skip = _Flat(mod, 1, n, s_len, emit)
        skip.states[0, :, : max(s_len - 2, 0)] = self._skip_added()[:, 2:]
        length = beta.length
        skip_v = skip.buf[0, : length - 2]  # at state s's place: the skip from s into s + 2
        tmp = mod.empty_like(beta.buf[0])
        tmp2 = mod.empty_like(skip_v)
        here, next1, next2 = tmp[: length - 2], tmp[1 : length - 1], tmp[2:]
        rows = _frames(mod, beta.buf)
        cur_rows = _frames(mod, beta.buf[:, : length - 2])
        state_rows, starts = _frames(mod, beta.states), _frames(mod, start)
        emits = _frames(mod, self._flat_emissions())
        pads = _frames(mod, beta.grid[:, :, :2]) if self._needs_reset(init) else None
        select(starts[t_len - 1], init, state_rows[t_len - 1])
        # Frames where some sample starts (read once where values are free to read): the
        # other steps need no selection.
        readable = mod is np or emit.device.type == "cpu"
        begins = set(np.asarray(last if mod is np else last.cpu()).tolist()) if readable else None
        with np.errstate(invalid="ignore"):  # NaN inputs propagate (in their own sample)
            for t in range(t_len - 2, -1, -1):
                cur = cur_rows[t]
                mod.add(rows[t + 1], emits[t + 1], out=tmp)
                lae(here, next1, out=cur)
                mod.add(next2, skip_v, out=tmp2)
                lae(cur, tmp2, out=cur)
                if pads is not None:
                    _fill(mod, pads[t])
                if begins is None or t in begins:
                    select(starts[t], init, state_rows[t])
        return beta

    def _forward_stacked(self) -> Any:
        xp, emit = self.xp, self.emit
        lae = _lae_for(xp, emit)
        skip_add = self._skip_added()
        states = xp.arange(self.s_len, device=array_api_compat.device(emit))
        prev = _pad(xp, xp.where(states < 2, emit[0:1, ...], _NEG), front=True)[0, ...]
        steps = [prev]
        for t in range(1, self.t_len):
            cur = lae(xp, lae(xp, prev[:, 2:], prev[:, 1:-1]), prev[:, :-2] + skip_add)
            prev = xp.concat([prev[:, :2], cur + emit[t, ...]], axis=1)
            steps.append(prev)
        return xp.stack(steps, axis=0)[:, :, 2:]

    def _backward_stacked(self, start: Any, init: Any) -> Any:
        xp, emit, t_len = self.xp, self.emit, self.t_len
        lae = _lae_for(xp, emit)
        # skip_back[n, s] = skip[n, s + 2]: s + 2 may be entered from s.
        skip_back = _pad(xp, self._skip_added()[None, ...], front=False)[0, :, 2:]
        nxt = xp.where(start[t_len - 1, ...], init, _NEG)
        steps = [nxt]
        pad = xp.full((self.n, 2), _NEG, dtype=emit.dtype, device=array_api_compat.device(emit))
        for t in range(t_len - 2, -1, -1):
            e = xp.concat([nxt + emit[t + 1, ...], pad], axis=1)
            cur = lae(xp, lae(xp, e[:, :-2], e[:, 1:-1]), e[:, 2:] + skip_back)
            nxt = xp.where(start[t, ...], init, cur)
            steps.append(nxt)
        return xp.stack(steps[::-1], axis=0)


def log_forward(xp: Any, emit: Any, skip: Any) -> Any:
    """``alpha`` of shape (T, N, S): see the module docstring."""
    return Lattice(xp, emit, skip).forward()


def log_backward(xp: Any, emit: Any, skip: Any, last: Any, init: Any) -> Any:
    """``beta`` of shape (T, N, S): see the module docstring and ``Lattice.backward``."""
    return Lattice(xp, emit, skip).backward(last, init)


def gather_states(xp: Any, log_probs: Any, ext: Any) -> Any:
    """``emit[t, n, s] = log_probs[t, n, ext[n, s]]`` (T, N, S) from (T, N, C) and (N, S).

    On torch a ``gather`` with the index broadcast along time as a stride-0 view: 4.5 times
    faster than ``take_along_dim``, which materialises the (T, N, S) index (0.33 against 1.5 ms
    for T=200, N=32, C=50, S=81). Elsewhere ``take_along_axis`` (the index broadcasts there
    without a copy)."""
    index = xp.astype(ext, xp.int64)[None, ...]
    if array_api_compat.is_torch_namespace(xp):
        import torch

        return torch.gather(log_probs, 2, index.expand(int(log_probs.shape[0]), -1, -1))
    return xp.take_along_axis(log_probs, index, axis=2)


def sum_states_by_class(xp: Any, occ: Any, ext: Any, n_classes: int) -> Any:
    """``g[t, n, c] = sum_{s: ext[n, s] = c} occ[t, n, s]``: (T, N, C) from (T, N, S).

    On torch one ``scatter_add_`` into zeros (twice as fast as the batched matmul with a
    one-hot (N, S, C) matrix: 0.36 against 0.72 ms at T=200, N=32, S=81, C=50, and no one-hot);
    elsewhere that matmul (NumPy's ``add.at`` is a scalar loop)."""
    t_len, n, s_len = (int(d) for d in occ.shape)
    if array_api_compat.is_torch_namespace(xp):
        import torch

        g = torch.zeros((t_len, n, n_classes), dtype=occ.dtype, device=occ.device)
        return g.scatter_add_(2, ext.to(torch.int64)[None, ...].expand(t_len, -1, -1), occ)
    classes = xp.arange(n_classes, device=array_api_compat.device(ext))
    onehot = xp.astype(ext[:, :, None] == classes[None, None, :], occ.dtype)
    return xp.permute_dims(xp.matmul(xp.permute_dims(occ, (1, 0, 2)), onehot), (1, 0, 2))


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
