"""Sequence losses: Connectionist Temporal Classification (CTC).

CTC scores an unsegmented label sequence against per-frame class log-probabilities by summing over
every alignment (a path through the blank-interleaved label sequence, one state per frame). The
sum runs as the alpha (forward) recursion of ``losses/_lattice.py``'s ``Lattice``; the gradient is
the classical alpha-beta posterior, from its beta (backward) recursion, summed onto each state's
class. The lattice lays the emissions out once for both recursions (on NumPy and CPU/GPU torch
outside autograd: one flat row per frame, four kernels a step; see its module docstring).
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from losslab.losses._constraints import Boolean, Integer
from losslab.losses._lattice import Lattice, logaddexp, sum_states_by_class
from losslab.losses._primitives import is_integral, is_numpy, shape_of
from losslab.losses._registry import Items, register
from losslab.losses._validation import check_ndim, value_checks_enabled

__all__ = ["ctc"]


def _example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    """Log-probabilities (T, N, C) and padded targets with feasible alignments: varied lengths,
    repeated labels and an empty target for sum/none; one target length for "mean" (the
    catalog-wide sample-weight test computes a mean as one denominator)."""
    blank = int(options.get("blank", 0))
    n, c = int(rng.integers(1, 4)), int(rng.integers(3, 6))
    c = max(c, blank + 2)
    s = int(rng.integers(1, 4))
    labels = np.array([k for k in range(c) if k != blank])
    if options.get("reduction", "mean") == "mean":
        tl = np.full(n, s)
    else:
        tl = rng.integers(0, s + 1, size=n)
    targets = rng.choice(labels, size=(n, s))
    if n > 1 and s > 1:
        targets[0, 1] = targets[0, 0]  # a repeated label needs a blank between
    need = tl + np.array([np.sum(t[1:k] == t[: max(k - 1, 0)]) for t, k in zip(targets, tl)])
    t_len = int(np.max(need)) + int(rng.integers(1, 4))
    il = np.array([int(rng.integers(k, t_len + 1)) for k in need])
    il[0] = t_len
    z = rng.normal(size=(t_len, n, c))
    lp = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    return lp.astype(dtype), targets.astype(np.int64), il.astype(np.int64), tl.astype(np.int64)


@register(
    "ctc",
    input_kind="log_probabilities",
    target_kind=None,
    layout="time_major",
    options={"blank": Integer(0), "zero_infinity": Boolean()},
    hessian=None,
    task="sequence",
    formula="-log sum over alignments pi of prod_t p_t(pi_t)  (Graves et al. 2006)",
    example=_example,
    differentiable=("log_probs",),
    torch=None,  # torch's ctc_loss has other gradients on raw log-probabilities (see docstring)
    module="CTCLoss",
)
def ctc(
    xp: Any,
    log_probs: Any,
    targets: Any,
    input_lengths: Any,
    target_lengths: Any,
    *,
    blank: int = 0,
    zero_infinity: bool = False,
) -> Items:
    """Connectionist Temporal Classification: ``l_n = -log sum_{pi in B^-1(y_n)} prod_t
    p_t(pi_t)``, the negative log-probability of the target sequence ``y_n`` summed over all
    alignments ``pi`` (frame-level paths that collapse to ``y_n`` once repeats are merged and
    blanks removed).

    torch's argument order and semantics: ``log_probs`` (T, N, C) (or unbatched (T, C)), the
    per-frame class log-probabilities (normally a log_softmax output); ``targets`` padded (N, S)
    (entries past each target's length are ignored) or concatenated (sum(target_lengths),);
    ``input_lengths`` (N,) and ``target_lengths`` (N,) integers (0-d when unbatched). Targets
    may not contain ``blank``. A repeated label needs a blank between its copies, so a target
    that needs more frames than ``input_lengths`` gives is impossible: ``l = inf`` (``0`` with
    ``zero_infinity=True``). An empty target scores the all-blank path.

    The alpha recursion runs in log space over the extended sequence (blank, y1, blank, y2, ...,
    blank), vectorised over the batch and the states (``losses/_lattice.py``), so very long or
    impossible alignments give exact ``inf`` or finite values, never NaN. Gradient, in closed
    form from the alpha-beta posteriors: ``dl_n/dlog_probs[t, n, c] = -sum_{s: ext_s = c}
    exp(alpha_t(s) + beta_t(s) + l_n)`` (``alpha`` including frame t's emission, ``beta`` the
    frames after t) for ``t < input_lengths[n]``, 0 beyond whatever those frames hold; the
    occupancies of each frame sum to 1 (posteriors below 6.4e-38 in float32 are flushed to 0,
    see ``exp_flushed``). This is the TRUE gradient with respect to
    ``log_probs``. torch's ``ctc_loss`` backward returns that plus ``exp(log_probs)`` (it assumes
    a log_softmax in front, whose backward then removes the extra term), so the two agree through
    a log_softmax and differ by ``exp(log_probs)`` on raw log-probabilities. An infinite loss has
    a NaN gradient, as in torch (zero with ``zero_infinity=True``). The integer inputs get no
    gradient. No Hessian: it would couple every frame with every other through the posteriors.

    Options: ``blank`` (the blank class index, default 0; must be < C), ``zero_infinity``.
    Reductions: ``"mean"`` divides each loss by its target length (at least 1), then averages
    over the batch (torch's definition; with ``sample_weight``, ``sum_n w_n l_n / max(S_n, 1) /
    N``), ``"sum"``, ``"none"`` (one loss per sample).

    Same as ``torch.nn.functional.ctc_loss`` (values equal in float64; gradients equal through a
    log_softmax), including repeated labels, empty targets, impossible alignments and
    ``zero_infinity``; batched and one-by-one evaluation agree exactly (torch #25057 reports
    otherwise for its CUDA kernel).
    Reference: Graves, Fernandez, Gomez and Schmidhuber, "Connectionist Temporal Classification:
    Labelling Unsegmented Sequence Data with Recurrent Neural Networks", ICML 2006, eqs. (5)-(16).
    """
    unbatched = log_probs.ndim == 2
    check_ndim(log_probs, (2, 3), "log_probs", "((T, N, C) or unbatched (T, C))")
    if unbatched:
        log_probs = log_probs[:, None, :]
        targets, input_lengths, target_lengths = (
            xp.reshape(targets, (1, -1)), xp.reshape(input_lengths, (1,)),
            xp.reshape(target_lengths, (1,)),
        )
    t_len, n, c = (int(d) for d in log_probs.shape)
    targets, il, tl = _check(xp, log_probs, targets, input_lengths, target_lengths, blank)
    s_len = int(targets.shape[1])
    ext = _extended(xp, targets, blank)  # (N, 2S + 1)
    states = xp.arange(2 * s_len + 1, device=array_api_compat.device(log_probs))
    valid_state = states[None, :] <= 2 * tl[:, None]
    # States past 2 S_n get emissions too (padding labels read as blank): the forward recursion
    # never carries them back into a sample's own states, and the backward one never leaves
    # -inf there, so no (T, N, 2S + 1) mask is needed.
    ext = xp.where(valid_state, ext, blank)
    skip = _skip(xp, ext, blank)
    # Emissions emit[t, n, s] = log_probs[t, n, ext[n, s]], (T, N, 2S + 1).
    lattice = Lattice.gathered(xp, log_probs, ext, skip)
    alpha = lattice.forward()
    log_z = _log_likelihood(xp, alpha, il, tl)
    values = -log_z
    if zero_infinity:
        values = xp.where(xp.isinf(values), 0.0, values)
    dtype = log_probs.dtype

    def grad(w: Any) -> Any:
        occ = _occupancy(xp, lattice, alpha, il, tl, log_z)
        # Each state's posterior onto its class, then -w_n (per sample, over C < S' classes).
        g = sum_states_by_class(xp, occ, ext, c)
        g *= -w if isinstance(w, float) else -xp.reshape(w, (1, -1, 1))
        if not zero_infinity and _any(xp, xp.isinf(log_z)):
            # An infinite loss has a NaN gradient on its frames (torch's; those past the input
            # length stay 0). Its posteriors are 0 (zero_infinity's gradient) until here.
            frames = xp.arange(t_len, device=array_api_compat.device(il))[:, None]
            bad = xp.isinf(log_z)[None, :] & (frames < il[None, :])
            g = xp.where(bad[:, :, None], math.nan, g)
        return xp.reshape(g, (t_len, c)) if unbatched else g

    mean_weights = 1.0 / (xp.astype(xp.maximum(tl, 1), dtype) * float(max(n, 1)))
    if unbatched:
        values, mean_weights = values[0], mean_weights[0]
    return Items(values, grad=grad, mean_weights=mean_weights)


def _check(
    xp: Any, log_probs: Any, targets: Any, input_lengths: Any, target_lengths: Any, blank: int
) -> tuple[Any, Any, Any]:
    """Padded (N, S) targets and the lengths, checked; raises naming the argument."""
    t_len, n, c = (int(d) for d in log_probs.shape)
    if blank >= c:
        raise ValueError(f"blank must be a class index < C = {c}; got {blank}.")
    for name, a in (
        ("targets", targets), ("input_lengths", input_lengths), ("target_lengths", target_lengths)
    ):
        if not is_integral(xp, a):
            raise TypeError(f"{name} must hold integers; got dtype {a.dtype}.")
    for name, a in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if shape_of(a) != (n,):
            raise ValueError(
                f"{name} must have shape ({n},) (one length per sample of log_probs "
                f"{shape_of(log_probs)}); got {shape_of(a)}."
            )
    il, tl = input_lengths, target_lengths
    checks = value_checks_enabled()
    if checks and n and not bool(xp.all((il >= 0) & (il <= t_len))):
        raise ValueError(f"input_lengths must lie in [0, T = {t_len}]; found one outside.")
    if checks and n and not bool(xp.all(tl >= 0)):
        raise ValueError("target_lengths must be >= 0; found a negative one.")
    if targets.ndim == 1:  # concatenated
        total = int(xp.sum(tl)) if n else 0
        if int(targets.shape[0]) != total:
            raise ValueError(
                f"concatenated targets must have sum(target_lengths) = {total} entries; got "
                f"{int(targets.shape[0])}."
            )
        s_len = int(xp.max(tl)) if n else 0
        k = xp.arange(s_len, device=array_api_compat.device(targets))
        starts = xp.cumulative_sum(tl) - tl if n else tl
        index = xp.clip(starts[:, None] + k[None, :], 0, max(total - 1, 0))
        if total:
            targets = xp.reshape(xp.take(targets, xp.reshape(index, (-1,))), (n, s_len))
        else:
            targets = xp.zeros((n, s_len), dtype=targets.dtype)
    elif targets.ndim != 2 or int(targets.shape[0]) != n:
        raise ValueError(
            f"targets must be padded (N, S) = ({n}, S) or concatenated (sum(target_lengths),); "
            f"got shape {shape_of(targets)}."
        )
    s_len = int(targets.shape[1])
    if checks and n and not bool(xp.all(tl <= s_len)):
        raise ValueError(f"target_lengths must be <= S = {s_len} (the targets' width); found more.")
    if checks and n and s_len:
        live = xp.arange(s_len, device=array_api_compat.device(targets))[None, :] < tl[:, None]
        bad = live & ((targets < 0) | (targets >= c) | (targets == blank))
        if bool(xp.any(bad)):
            raise ValueError(
                f"targets must hold class indices in [0, {c}) other than blank={blank} "
                f"(within each target's length); found {int(targets[bad][0])}."
            )
    return targets, il, tl


def _extended(xp: Any, targets: Any, blank: int) -> Any:
    """(N, 2S + 1): blank, y1, blank, y2, ..., yS, blank."""
    n, s_len = (int(d) for d in targets.shape)
    k = xp.arange(2 * s_len + 1, device=array_api_compat.device(targets))
    if s_len == 0:
        return xp.full((n, 1), blank, dtype=targets.dtype, device=array_api_compat.device(targets))
    idx = xp.broadcast_to(xp.clip((k - 1) // 2, 0, s_len - 1)[None, :], (n, 2 * s_len + 1))
    labels = xp.take_along_axis(targets, idx, axis=1)
    return xp.where((k % 2 == 1)[None, :], labels, blank)


def _skip(xp: Any, ext: Any, blank: int) -> Any:
    """Where state s may be entered from s - 2: a label differing from the one two back."""
    n, s2 = (int(d) for d in ext.shape)
    if s2 < 3:
        return xp.zeros((n, s2), dtype=xp.bool, device=array_api_compat.device(ext))
    back = xp.concat([ext[:, :2], ext[:, : s2 - 2]], axis=1)
    k = xp.arange(s2, device=array_api_compat.device(ext))[None, :]
    return (k >= 2) & (ext != blank) & (ext != back)


def _log_likelihood(xp: Any, alpha: Any, il: Any, tl: Any) -> Any:
    """``log p(y_n | x_n)``: alpha at the last frame in the last two states (-inf if none)."""
    t_len, n, s2 = (int(d) for d in alpha.shape)
    if t_len == 0 or n == 0:
        zeros = xp.zeros((n,), dtype=alpha.dtype, device=array_api_compat.device(alpha))
        return xp.where(tl == 0, zeros, zeros - math.inf)
    t_last = xp.clip(il - 1, 0, t_len - 1)
    last = xp.take_along_axis(
        alpha, xp.broadcast_to(xp.astype(t_last, xp.int64)[None, :, None], (1, n, s2)), axis=0
    )[0, ...]
    ends = xp.stack([2 * tl, xp.clip(2 * tl - 1, 0, None)], axis=1)
    fin = xp.take_along_axis(last, xp.astype(ends, xp.int64), axis=1)
    second = xp.where(tl > 0, fin[:, 1], -math.inf)
    log_z = logaddexp(xp, fin[:, 0], second)
    # No frames: the empty target has probability 1, any other 0.
    empty = xp.where(tl == 0, xp.zeros_like(log_z), xp.zeros_like(log_z) - math.inf)
    return xp.where(il == 0, empty, log_z)


def _any(xp: Any, mask: Any) -> bool:
    """``any(mask)``; True where reading the answer back would synchronise with a device (the
    caller then takes the path that is right either way)."""
    if array_api_compat.is_torch_namespace(xp) and mask.device.type != "cpu":
        return True
    if not (is_numpy(xp) or array_api_compat.is_torch_namespace(xp)):
        return True  # JAX tracers, array-api-strict: no host reads
    return bool(xp.any(mask))


def _occupancy(xp: Any, lattice: Lattice, alpha: Any, il: Any, tl: Any, log_z: Any) -> Any:
    """State posteriors ``exp(alpha + beta)``, the backward recursion started at ``-log Z`` so
    that no separate normalising pass is needed: 0 outside each sample's frames and states, and
    for an impossible sample."""
    t_len, n, s2 = (int(d) for d in alpha.shape)
    if t_len == 0 or n == 0:
        return xp.zeros_like(alpha)
    states = xp.arange(s2, device=array_api_compat.device(alpha))[None, :]
    final = (states == 2 * tl[:, None]) | ((states == 2 * tl[:, None] - 1) & (tl[:, None] > 0))
    # An impossible sample (log Z = -inf) has no complete path: all its posteriors are 0.
    start = xp.where(xp.isinf(log_z), -math.inf, -log_z)
    init = xp.where(final, start[:, None], -math.inf)
    # exp(alpha + beta): most log-posteriors are far below float's normal range or -inf, which
    # the lattice's exp_flushed keeps on exp's fast path (the flush is below 3.2e-38 in float32).
    return lattice.posteriors(il - 1, init)
