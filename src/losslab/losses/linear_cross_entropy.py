"""Linear cross-entropy: a language model's loss, ``cross_entropy(softcap(h W^T + b), y)``, computed
chunk by chunk over the tokens so that the (tokens x vocabulary) logits never exist at once.

Per token i, with logits ``s_i = softcap(W h_i + b)`` over V classes, ``lse_i = logsumexp(s_i)``
and ``p_i = softmax(s_i)``::

    l_i = CE_i + z_loss * lse_i**2              (0 for a token whose target is ignore_index)

``CE_i`` is torch's cross-entropy with its class weights ``w``, label smoothing ``ls`` and
``ignore_index`` (see ``losslab.losses.multiclass.cross_entropy``)::

    CE_i = (1 - ls) w_y (lse_i - s_iy) + ls/V sum_c w_c (lse_i - s_ic)     class-index targets
    CE_i = sum_c w_c q_ic (lse_i - s_ic),  q_i = (1 - ls) t_i + ls/V         probability targets

``softcap(x) = c tanh(x / c)`` (Gemma 2; none by default). The z-loss is PaLM's auxiliary term
(Chowdhery et al. 2022, section 5: ``1e-4 * log(Z)**2``), applied per token as in PaLM/T5X,
flash-attention's ``lse_square_scale`` and Liger's: it is not multiplied by class weights, ignored
tokens have none, and ``reduction="mean"`` averages it over the tokens that count::

    mean = sum_i CE_i / sum_i w_{y_i}  +  z_loss * sum_i lse_i**2 / n_counted

(sums over the non-ignored tokens; torch's mean denominator for CE, the token count for the z-loss,
which is the same number when there are no class weights. Probability targets: both divide by the
number of tokens.) ``"sum"`` adds the per-token ``l_i``; ``"none"`` returns them. A batch whose
every target is ignored has a NaN mean (0/0, as torch) and a zero gradient.

Other per-token outputs, for reinforcement-learning recipes (PPO, GRPO) that need them without the
logits: ``lse_i``; the target's log-probability ``logprobs_i = s_iy - lse_i`` (``sum_c t_ic log
p_ic`` for probability targets; 0 where ignored); the entropy ``H_i = lse_i - sum_c p_ic s_ic``.

Gradient with respect to the softcapped logits, for cotangent weights ``a_i`` on CE_i, ``zeta_i``
on ``lse_i**2`` and ``g^lse_i, g^lp_i, g^H_i`` on the other outputs (class-index targets)::

    dS_i = cp_i p_i - ct_i onehot(y_i) - u_i w - g^H_i p_i * (s_i - E_p[s_i])
    cp = a ((1 - ls) w_y + ls/V sum(w)) + 2 zeta lse + g^lse - g^lp
    ct = a (1 - ls) w_y - g^lp,        u = a ls / V

(probability targets: ``a b_i - g^lp t_i`` replaces the one-hot and ``u`` terms, with
``b_i = w * q_i``, and ``cp`` has ``a sum(b_i) - g^lp sum(t_i)`` in their place), then through the
softcap, ``ds/dx = 1 - (s / c)**2``, and into the parameters by two matrix products and a sum:
``dh_c = dX_c W``, ``dW += dX_c^T h_c``, ``db += sum dX_c``.

How a chunk of n tokens runs: one (n, V) buffer receives ``h_c W^T + b`` (a matrix product written
into it), is shifted by the row maximum, exponentiated in place, summed; the per-token statistics
come from a few gathers and row sums; and when the gradient is wanted the same buffer becomes dS in
place and is folded into dh and dW. A second (n, V) buffer is needed only to keep the shifted
logits for the softcap's derivative or the entropy. Nothing vocabulary-sized per token outlives its
chunk: besides the gradients themselves (N x D and V x D, accumulated in float32 for half-precision
inputs) the extra memory is the chunk buffers, whose size ``chunk_rows`` picks.

This module holds the math on any Array API namespace (``xp``) and the driver shared by NumPy and
PyTorch (``sweep``: matrix products into reused buffers); ``losslab.torch`` and ``losslab.jax``
wrap it (``losslab._torch_linear``, ``losslab._jax_linear``). The plain NumPy entry points are
``linear_cross_entropy`` and ``value_and_grad``.

References: Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models" (2024) for the
memory problem; Chowdhery et al., "PaLM" (2022) for the z-loss; Gemma Team, "Gemma 2" (2024) for
logit soft-capping.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from losslab.losses._constraints import Choice, check_option
from losslab.losses._primitives import in_place, namespace, shape_of
from losslab.losses._validation import value_checks_enabled

__all__ = [
    "LinearCrossEntropyOutput",
    "Options",
    "check_options",
    "chunk_rows",
    "linear_cross_entropy",
    "value_and_grad",
]

# Default size of a chunk's vocabulary-sized buffers, in bytes, unless ``memory_budget`` says
# otherwise: half the size of the weight gradient (which must exist anyway), so the chunks add
# at most 50% to the unavoidable memory, within [16 MiB, 256 MiB]. For D=512 that is 256 rows
# per chunk at any vocabulary size: within 10% of the fastest chunking (2.55 s against 2.33 s
# for 2048 rows at V=32,000; BENCHMARKS.md, chunk sweep) at a third of its memory.
_MIN_BUDGET, _MAX_BUDGET = 16 << 20, 256 << 20


class LinearCrossEntropyOutput(NamedTuple):
    """What ``linear_cross_entropy`` returns when asked for per-token outputs.

    ``loss``: the reduced loss (or per-token losses for ``reduction="none"``). The per-token fields
    have the target's token shape ((N,) or (B, T)); those not asked for are None.
    """

    loss: Any
    lse: Any = None
    logprobs: Any = None
    entropy: Any = None


@dataclasses.dataclass(frozen=True)
class Options:
    """Validated options (hashable: JAX passes them as a static argument)."""

    reduction: str = "mean"
    ignore_index: int = -100
    label_smoothing: float = 0.0
    z_loss: float = 0.0
    softcap: float | None = None
    chunk_size: int | None = None
    memory_budget: int | None = None


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number; got {value!r}.")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite; got {value!r}.")
    return v


def _count(value: Any, name: str, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise TypeError(f"{name} must be a positive int ({what}) or None; got {value!r}.")
    return int(value)


def check_options(
    *,
    reduction: str = "mean",
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
) -> Options:
    """Every option checked once, before any array is touched; errors name the option."""
    check_option("linear_cross_entropy", "reduction", Choice("mean", "sum", "none"), reduction)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int | np.integer):
        raise TypeError(f"ignore_index must be an int; got {ignore_index!r}.")
    ls = _number(label_smoothing, "label_smoothing")
    if not 0.0 <= ls <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1]; got {label_smoothing!r}.")
    z = _number(z_loss, "z_loss")
    if z < 0:
        raise ValueError(f"z_loss must be >= 0; got {z_loss!r}.")
    cap = None
    if softcap is not None:
        cap = _number(softcap, "softcap")
        if cap <= 0:
            raise ValueError(f"softcap must be > 0 (or None for no cap); got {softcap!r}.")
    return Options(
        reduction=reduction,
        ignore_index=int(ignore_index),
        label_smoothing=ls,
        z_loss=z,
        softcap=cap,
        chunk_size=_count(chunk_size, "chunk_size", "tokens per chunk"),
        memory_budget=_count(memory_budget, "memory_budget", "bytes"),
    )


def chunk_rows(
    n_tokens: int,
    n_classes: int,
    n_features: int,
    *,
    itemsize: int,
    buffers: int = 1,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
) -> int:
    """Tokens per chunk: ``chunk_size`` if given, else as many as fit ``memory_budget`` bytes of
    chunk buffers (``buffers`` arrays of (rows, n_classes) items of ``itemsize`` bytes).

    The default budget is half the weight gradient's size, ``n_classes * n_features * itemsize /
    2``, within [16 MiB, 256 MiB]. The rows are then evened out over the chunks (4097 tokens with
    room for 4096 make two chunks of 2049 and 2048, not 4096 and 1) and never exceed the tokens.
    """
    n_tokens = max(int(n_tokens), 1)
    if chunk_size is not None:
        return min(int(chunk_size), n_tokens)
    budget = memory_budget
    if budget is None:
        budget = min(max(n_classes * n_features * itemsize // 2, _MIN_BUDGET), _MAX_BUDGET)
    rows = max(1, budget // max(1, buffers * n_classes * itemsize))
    rows = min(rows, n_tokens)
    n_chunks = -(-n_tokens // rows)
    return -(-n_tokens // n_chunks)


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------


class Problem(NamedTuple):
    """The inputs flattened to tokens: what the drivers need besides the options."""

    hidden: Any  # (N, D)
    weight: Any  # (V, D)
    bias: Any  # (V,) or None
    labels: Any  # (N,) int64 with ignored entries set to 0, or None (probability targets)
    valid: Any  # (N,) bool: the tokens that count, or None (all of them)
    probs: Any  # (N, V) class probabilities in the compute dtype, or None
    class_weight: Any  # (V,) in the compute dtype, or None
    compute_dtype: Any
    token_shape: tuple[int, ...]


def _floating(xp: Any, x: Any) -> bool:
    return xp.isdtype(x.dtype, "real floating")


def compute_dtype(xp: Any, *arrays: Any) -> Any:
    """float64 if any input is float64, else float32: half-precision inputs are computed (and
    their log-sum-exp and gradients accumulated) in float32."""
    dtypes = [a.dtype for a in arrays if a is not None]
    return xp.float64 if any(d == xp.float64 for d in dtypes) else xp.float32


def prepare(
    xp: Any,
    hidden: Any,
    weight: Any,
    target: Any,
    bias: Any,
    class_weight: Any,
    opts: Options,
    *,
    check_values: bool = True,
) -> Problem:
    """Shape, dtype and (where ``check_values``) label-range checks, then the flat views."""
    for name, x in (("hidden", hidden), ("weight", weight), ("bias", bias)):
        if x is not None and not _floating(xp, x):
            raise TypeError(f"{name} must be a floating-point array; got dtype {x.dtype}.")
    if weight.ndim != 2:
        raise ValueError(
            f"weight must have shape (V, D) (classes, features), like nn.Linear's; got shape "
            f"{shape_of(weight)}."
        )
    n_classes, n_features = shape_of(weight)
    if hidden.ndim < 2 or shape_of(hidden)[-1] != n_features:
        raise ValueError(
            f"hidden must have shape (N, D) or (B, T, D) with D = weight.shape[1] = {n_features}; "
            f"got shape {shape_of(hidden)}."
        )
    if bias is not None and shape_of(bias) != (n_classes,):
        raise ValueError(f"bias must have shape ({n_classes},); got {shape_of(bias)}.")
    cdt = compute_dtype(xp, hidden, weight, bias)
    token_shape = shape_of(hidden)[:-1]
    n_tokens = math.prod(token_shape)
    h = xp.reshape(hidden, (n_tokens, n_features))
    cw = None
    if class_weight is not None:
        if shape_of(class_weight) != (n_classes,):
            raise ValueError(
                f"class_weight must have shape ({n_classes},), one weight per class; got "
                f"{shape_of(class_weight)}."
            )
        cw = xp.astype(class_weight, cdt)
    labels = valid = probs = None
    if _floating(xp, target):
        if shape_of(target) != token_shape + (n_classes,):
            raise ValueError(
                f"target holds class probabilities, so it must have shape "
                f"{token_shape + (n_classes,)}; got {shape_of(target)}. (Class indices would be "
                f"an integer array of shape {token_shape}.)"
            )
        probs = xp.astype(xp.reshape(target, (n_tokens, n_classes)), cdt)
    else:
        if not xp.isdtype(target.dtype, "integral"):
            raise TypeError(
                "target must be integer class indices or floating-point class probabilities; "
                f"got dtype {target.dtype}."
            )
        if shape_of(target) != token_shape:
            raise ValueError(
                f"target of class indices must have shape {token_shape} (hidden's shape without "
                f"its last axis); got {shape_of(target)}."
            )
        y = xp.reshape(xp.astype(target, xp.int64), (n_tokens,))
        valid = y != opts.ignore_index
        if check_values and n_tokens and not bool(
            xp.all(((y >= 0) & (y < n_classes)) | ~valid)
        ):
            raise ValueError(
                f"target holds class indices outside [0, {n_classes}) that are not "
                f"ignore_index={opts.ignore_index}."
            )
        labels = xp.where(valid, y, xp.zeros_like(y))
    return Problem(h, weight, bias, labels, valid, probs, cw, cdt, token_shape)


def denominators(xp: Any, p: Problem) -> tuple[Any, Any]:
    """``(for CE, for the z-loss)``: what ``reduction="mean"`` divides by, from the targets alone.

    Class indices: the sum of the target classes' weights over the non-ignored tokens (their
    count without class weights), and their count. Probabilities: the number of tokens, twice.
    """
    n = shape_of(p.hidden)[0]
    if p.labels is None:
        total = xp.asarray(float(n), dtype=p.compute_dtype)
        return total, total
    count = xp.sum(xp.astype(p.valid, p.compute_dtype))
    if p.class_weight is None:
        return count, count
    w_y = xp.take(p.class_weight, p.labels, axis=0)
    return xp.sum(xp.where(p.valid, w_y, xp.zeros_like(w_y))), count


def safe_inverse(xp: Any, den: Any) -> Any:
    """1/den, and 0 where den is 0 (an all-ignored batch: zero gradient, no warnings)."""
    positive = den > 0
    return xp.where(positive, 1.0 / xp.where(positive, den, xp.ones_like(den)), xp.zeros_like(den))


# ----------------------------------------------------------------------------------------------
# One chunk
# ----------------------------------------------------------------------------------------------


class Cotangents(NamedTuple):
    """Per-token weights (arrays of shape (n,), or None for zero) of each output in the scalar
    whose gradient a pass computes: ``sum_i ce_i CE_i + z_i lse_i**2 + lse_i g^lse_i + ...``.
    Entries of ignored tokens are 0 in ``ce``, ``z`` and ``logprobs``."""

    ce: Any = None
    z: Any = None
    lse: Any = None
    logprobs: Any = None
    entropy: Any = None

    def rows(self, i0: int, i1: int) -> Cotangents:
        return Cotangents(*(None if a is None else a[i0:i1] for a in self))


def _sub_at(xp: Any, g: Any, labels: Any, c: Any) -> Any:
    """``g[i, labels[i]] -= c[i]``: one entry per row."""
    rows = xp.arange(shape_of(g)[0], device=array_api_compat.device(g))
    if array_api_compat.is_jax_namespace(xp):
        return g.at[rows, labels].add(-c)
    g[rows, labels] -= c
    return g


def _sub_outer(xp: Any, g: Any, u: Any, w: Any) -> Any:
    """``g -= u[:, None] * w[None, :]`` (in place; on torch a rank-1 update, no temporary)."""
    if array_api_compat.is_torch_array(g):
        return g.addr_(u, w, alpha=-1)
    g -= u[:, None] * w[None, :]
    return g


def chunk(
    xp: Any,
    s: Any,
    p: Problem,
    i0: int,
    i1: int,
    opts: Options,
    *,
    stats: frozenset[str] = frozenset(),
    cot: Cotangents | None = None,
    lse: Any = None,
    entropy: Any = None,
    spare: Any = None,
) -> tuple[dict[str, Any], Any]:
    """Tokens ``[i0, i1)``: their statistics and, if ``cot`` is given, dX (the gradient with
    respect to ``h W^T + b``), built in the buffer ``s``.

    ``s``: (n, V) logits ``h_c W^T + b`` in the compute dtype, owned by the caller and overwritten.
    Forward (``lse`` None): returns the ``stats`` asked for among "lse", "ce" (CE_i, 0 where
    ignored), "logprobs", "entropy" (per token, shape (n,)). Backward (``lse`` given, the
    forward pass's): the row maximum and sum are not needed (``s - lse`` is already ``log p``),
    and ``entropy`` (the forward pass's) is needed only for an entropy cotangent; returns no
    statistics.
    """
    ls, cap = opts.label_smoothing, opts.softcap
    n_classes = shape_of(s)[1]
    labels = None if p.labels is None else p.labels[i0:i1]
    valid = None if p.valid is None else p.valid[i0:i1]
    t = None if p.probs is None else p.probs[i0:i1]
    cw = p.class_weight
    forward = lse is None
    g_h = None if cot is None else cot.entropy

    if cap is not None:
        s /= cap
        s = in_place(xp, "tanh", s)
        s *= cap
    m = xp.max(s, axis=1, keepdims=True) if forward else lse[:, None]
    z = s
    z -= m  # forward: shifted logits, so that nothing cancels; backward: log p
    keep_z = buffers_needed(opts, stats, cot) == 2

    out: dict[str, Any] = {}
    z_y = zdot = bdot = tdot = b = None
    if forward and labels is not None and stats & {"ce", "logprobs"}:
        z_y = xp.take_along_axis(z, labels[:, None], axis=1)[:, 0]
    if forward and "ce" in stats:
        if t is not None:
            q = t if ls == 0 else t * (1.0 - ls) + ls / n_classes
            b = q if cw is None else q * cw[None, :]
            bdot = _rowdot(xp, b, z)
        elif ls != 0:
            zdot = xp.sum(z, axis=1) if cw is None else xp.matmul(z, cw)
    if forward and t is not None and "logprobs" in stats:
        tdot = _rowdot(xp, t, z)

    e = _exp(xp, z, spare) if keep_z else in_place(xp, "exp", z)
    if forward:
        total = xp.sum(e, axis=1)
        log_total = xp.log(total)
        lse_rows = m[:, 0] + log_total
    else:
        total, log_total, lse_rows = None, 0.0, lse

    if forward:
        w_sum = float(n_classes) if cw is None else xp.sum(cw)
        if "lse" in stats:
            out["lse"] = lse_rows
        if "ce" in stats:
            if t is not None:
                ce = xp.sum(b, axis=1) * log_total - bdot
            else:
                nll = log_total - z_y
                ce = nll if cw is None else xp.take(cw, labels, axis=0) * nll
                if ls != 0:
                    ce = (1.0 - ls) * ce + (ls / n_classes) * (w_sum * log_total - zdot)
            out["ce"] = ce if valid is None else xp.where(valid, ce, xp.zeros_like(ce))
        if "logprobs" in stats:
            if t is not None:
                out["logprobs"] = tdot - xp.sum(t, axis=1) * log_total
            else:
                out["logprobs"] = z_y - log_total
        if "logprobs" in out and valid is not None:
            out["logprobs"] = xp.where(valid, out["logprobs"], xp.zeros_like(out["logprobs"]))
        if "entropy" in stats:
            out["entropy"] = log_total - _rowdot(xp, e, z) / total
            entropy = out["entropy"]
    if cot is None:
        return out, None

    # The gradient: dX = cp p - ct onehot(y) - u w - dense - g^H p (z - E_p z), times the
    # softcap's derivative; p = e / total.
    n = shape_of(e)[0]
    cp: Any = xp.zeros((n,), dtype=e.dtype, device=array_api_compat.device(e))
    ct = u = dense = None
    if cot.ce is not None:
        a = cot.ce
        if t is not None:
            if b is None:
                q = t if ls == 0 else t * (1.0 - ls) + ls / n_classes
                b = q if cw is None else q * cw[None, :]
            cp = cp + a * xp.sum(b, axis=1)
            dense = a[:, None] * b
        else:
            w_y = 1.0 if cw is None else xp.take(cw, labels, axis=0)
            ct = a * ((1.0 - ls) * w_y)
            cp = cp + ct
            if ls != 0:
                u = a * (ls / n_classes)
                cp = cp + u * (float(n_classes) if cw is None else xp.sum(cw))
    if cot.z is not None:
        cp = cp + 2.0 * cot.z * lse_rows
    if cot.lse is not None:
        cp = cp + cot.lse
    if cot.logprobs is not None:
        g_lp = cot.logprobs
        if t is not None:
            cp = cp - g_lp * xp.sum(t, axis=1)
            dense = -g_lp[:, None] * t if dense is None else dense - g_lp[:, None] * t
        else:
            cp = cp - g_lp
            ct = -g_lp if ct is None else ct - g_lp
    if g_h is not None:
        # dH/ds = -p (s - E_p s), and s - E_p s = z - E_p z with E_p z = log_total - H.
        cp = cp + g_h * (log_total - entropy)
        if cap is None:  # z is not needed afterwards: reuse its buffer
            factor = z
            factor *= -g_h[:, None]
        else:
            factor = z * -g_h[:, None]
        factor += cp[:, None]
        if total is not None:
            factor /= total[:, None]
        e *= factor
        del factor
    else:
        e *= (cp if total is None else cp / total)[:, None]
    if ct is not None:
        e = _sub_at(xp, e, labels, ct)
    if u is not None:
        e = _sub_outer(xp, e, u, cw) if cw is not None else _isub(e, u[:, None])
    if dense is not None:
        e -= dense
    if cap is not None:
        # ds/dx = 1 - tanh(x / c)**2 = 1 - (s / c)**2, with s = z + m; in z's buffer.
        z += m
        z /= cap
        z *= z
        z *= -1.0
        z += 1.0
        e *= z
    return out, e


def _isub(x: Any, y: Any) -> Any:
    x -= y
    return x


def _rowdot(xp: Any, a: Any, b: Any) -> Any:
    """``sum(a * b, axis=1)`` for (n, V) arrays without an (n, V) temporary where possible
    (torch: a batched matrix product; NumPy's vecdot is a loop without temporaries)."""
    if array_api_compat.is_torch_array(a):
        import torch

        return torch.bmm(a[:, None, :], b[:, :, None])[:, 0, 0]
    return xp.vecdot(a, b, axis=1)


def _exp(xp: Any, z: Any, spare: Any) -> Any:
    """exp(z) into ``spare`` (a reused buffer) where the namespace allows, else a new array."""
    if spare is not None and isinstance(z, np.ndarray):
        return np.exp(z, out=spare)
    if spare is not None and array_api_compat.is_torch_array(z):
        import torch

        return torch.exp(z, out=spare)
    return xp.exp(z)


# ----------------------------------------------------------------------------------------------
# The driver shared by NumPy and PyTorch, and the reductions
# ----------------------------------------------------------------------------------------------


def buffers_needed(opts: Options, stats: frozenset[str], cot: Cotangents | None) -> int:
    """Chunk buffers of (rows, V): one, or two where the shifted logits must outlive the
    exponential (the softcap's derivative, the entropy)."""
    keep = "entropy" in stats or (
        cot is not None and (opts.softcap is not None or cot.entropy is not None)
    )
    return 2 if keep else 1


def _itemsize(xp: Any, dtype: Any) -> int:
    return 8 if dtype == xp.float64 else 4


def _logits_into(h_c: Any, w: Any, b: Any, out: Any) -> Any:
    """``out = h_c @ w.T + b``, written into the reused buffer ``out``."""
    if isinstance(out, np.ndarray):
        np.matmul(h_c, w.T, out=out)
        if b is not None:
            out += b
        return out
    import torch

    if b is None:
        return torch.mm(h_c, w.T, out=out)
    return torch.addmm(b, h_c, w.T, out=out)


def _matmul_into(a: Any, b: Any, out: Any) -> None:
    """``out[...] = a @ b`` (cast to ``out``'s dtype if it differs)."""
    if out.dtype != a.dtype:
        out[...] = a @ b
    elif isinstance(out, np.ndarray):
        np.matmul(a, b, out=out)
    else:
        import torch

        torch.mm(a, b, out=out)


_VOCAB_BLOCK = 8192  # NumPy: rows of dW updated per product (bounds its temporary)


def _accumulate(dw: Any, g: Any, h_c: Any, first: bool) -> None:
    """``dw = g.T @ h_c`` for the first chunk, ``dw += g.T @ h_c`` after (no zero-filled start):
    torch's mm/addmm_ write into dw directly; NumPy, which has no accumulating product, goes
    through a temporary of at most ``_VOCAB_BLOCK`` rows."""
    if isinstance(dw, np.ndarray):
        for v0 in range(0, dw.shape[0], _VOCAB_BLOCK):
            v1 = min(dw.shape[0], v0 + _VOCAB_BLOCK)
            if first:
                np.matmul(g[:, v0:v1].T, h_c, out=dw[v0:v1])
            else:
                dw[v0:v1] += g[:, v0:v1].T @ h_c
    elif first:
        import torch

        torch.mm(g.T, h_c, out=dw)
    else:
        dw.addmm_(g.T, h_c)


def sweep(
    xp: Any,
    p: Problem,
    opts: Options,
    *,
    stats: frozenset[str] = frozenset(),
    cot: Cotangents | None = None,
    lse: Any = None,
    entropy: Any = None,
    grads: tuple[bool, bool, bool] = (True, True, True),
) -> tuple[dict[str, Any], tuple[Any, Any, Any]]:
    """Every chunk in turn, on NumPy arrays or torch tensors.

    Returns the per-token ``stats`` (arrays of shape (N,) in the compute dtype) and, when ``cot``
    is given, the gradients ``(d_hidden (N, D), d_weight, d_bias)`` of ``sum_i cot . outputs_i``
    in the inputs' dtypes, those not wanted by ``grads`` (or without an input) None. ``lse``
    (and ``entropy``) given: a backward pass, which needs no statistics.
    """
    h, w, b = p.hidden, p.weight, p.bias
    n_tokens, n_features = shape_of(h)
    n_classes = shape_of(w)[0]
    cdt = p.compute_dtype
    dev = array_api_compat.device(h)
    n_buf = buffers_needed(opts, stats, cot)
    rows = chunk_rows(
        n_tokens, n_classes, n_features, itemsize=_itemsize(xp, cdt), buffers=n_buf,
        chunk_size=opts.chunk_size, memory_budget=opts.memory_budget,
    )
    wc = w if w.dtype == cdt else xp.astype(w, cdt)
    bc = None if b is None or b.dtype == cdt else xp.astype(b, cdt)
    bc = b if bc is None else bc
    buf = xp.empty((rows, n_classes), dtype=cdt, device=dev)
    spare = xp.empty((rows, n_classes), dtype=cdt, device=dev) if n_buf == 2 else None
    out = {k: xp.empty((n_tokens,), dtype=cdt, device=dev) for k in stats}
    want_dh, want_dw, want_db = grads if cot is not None else (False, False, False)
    dh = xp.empty((n_tokens, n_features), dtype=h.dtype, device=dev) if want_dh else None
    dw = xp.empty((n_classes, n_features), dtype=cdt, device=dev) if want_dw else None
    db = xp.zeros((n_classes,), dtype=cdt, device=dev) if want_db and b is not None else None
    for i0 in range(0, n_tokens, rows):
        i1 = min(n_tokens, i0 + rows)
        h_c = h[i0:i1] if h.dtype == cdt else xp.astype(h[i0:i1], cdt)
        s = _logits_into(h_c, wc, bc, buf[: i1 - i0])
        st, g = chunk(
            xp, s, p, i0, i1, opts, stats=stats,
            cot=None if cot is None else cot.rows(i0, i1),
            lse=None if lse is None else lse[i0:i1],
            entropy=None if entropy is None else entropy[i0:i1],
            spare=None if spare is None else spare[: i1 - i0],
        )
        for k, v in st.items():
            out[k][i0:i1] = v
        if g is None:
            continue
        if dh is not None:
            _matmul_into(g, wc, dh[i0:i1])
        if dw is not None:
            _accumulate(dw, g, h_c, first=i0 == 0)
        if db is not None:
            db += xp.sum(g, axis=0)
        del g, s
    if dw is not None and n_tokens == 0:
        dw = xp.zeros_like(dw)
    if dw is not None and dw.dtype != w.dtype:
        dw = xp.astype(dw, w.dtype)
    if db is not None and db.dtype != b.dtype:
        db = xp.astype(db, b.dtype)
    return out, (dh, dw, db)


def z_term(xp: Any, p: Problem, opts: Options, lse: Any) -> Any:
    """``z_loss * lse**2`` per token, 0 where the target is ignored."""
    zl = opts.z_loss * (lse * lse)
    return zl if p.valid is None else xp.where(p.valid, zl, xp.zeros_like(zl))


def reduce_loss(
    xp: Any, p: Problem, opts: Options, ce: Any, lse: Any, dens: tuple[Any, Any] | None = None
) -> Any:
    """The loss from the per-token CE and lse: per token (token shape), summed, or the mean of
    each term over its denominator (``denominators``, or ``dens`` when the caller has them,
    e.g. summed over a process group). A mean over no tokens is NaN."""
    zl = z_term(xp, p, opts, lse) if opts.z_loss else None
    if opts.reduction == "none":
        per = ce if zl is None else ce + zl
        return xp.reshape(per, p.token_shape)
    if opts.reduction == "sum":
        return xp.sum(ce) if zl is None else xp.sum(ce) + xp.sum(zl)
    den_ce, den_z = denominators(xp, p) if dens is None else dens
    nan = xp.asarray(float("nan"), dtype=ce.dtype, device=array_api_compat.device(ce))
    value = xp.where(den_ce > 0, xp.sum(ce) * safe_inverse(xp, den_ce), nan)
    if zl is not None:
        value = value + xp.where(den_z > 0, xp.sum(zl) * safe_inverse(xp, den_z), nan)
    return value


def loss_cotangents(
    xp: Any, p: Problem, opts: Options, g: Any, dens: tuple[Any, Any] | None = None
) -> tuple[Any, Any]:
    """``(ce, z)`` fields of ``Cotangents`` for a cotangent ``g`` on the loss: a scalar for
    "mean" and "sum", per token (token shape) for "none"."""
    n = shape_of(p.hidden)[0]
    zeros = xp.zeros((n,), dtype=p.compute_dtype, device=array_api_compat.device(p.hidden))
    if opts.reduction == "none":
        a_ce = zeros + xp.reshape(xp.astype(g, p.compute_dtype), (n,))
        a_z = a_ce
    else:
        a_ce = a_z = zeros + g
        if opts.reduction == "mean":
            den_ce, den_z = denominators(xp, p) if dens is None else dens
            a_ce, a_z = a_ce * safe_inverse(xp, den_ce), a_z * safe_inverse(xp, den_z)
    if p.valid is not None:
        a_ce, a_z = xp.where(p.valid, a_ce, zeros), xp.where(p.valid, a_z, zeros)
    return a_ce, (opts.z_loss * a_z if opts.z_loss else None)


def requested(return_lse: Any, return_logprobs: Any, return_entropy: Any) -> frozenset[str]:
    """The extra per-token outputs asked for (the flags must be real booleans)."""
    names = []
    for name, flag in (("lse", return_lse), ("logprobs", return_logprobs),
                       ("entropy", return_entropy)):
        if not isinstance(flag, bool | np.bool_):
            raise TypeError(f"return_{name} must be True or False; got {flag!r}.")
        if flag:
            names.append(name)
    return frozenset(names)


# ----------------------------------------------------------------------------------------------
# NumPy entry points
# ----------------------------------------------------------------------------------------------


def _numpy_problem(hidden, weight, target, bias, class_weight, opts):
    xp, (hidden, weight, target, bias, class_weight) = namespace(
        hidden, weight, target, bias, class_weight
    )
    if not (xp is np or array_api_compat.is_numpy_namespace(xp)):
        raise TypeError(
            "losslab.losses.linear_cross_entropy takes NumPy arrays; use losslab.torch or "
            "losslab.jax for tensors."
        )
    return np, prepare(
        np, hidden, weight, target, bias, class_weight, opts, check_values=value_checks_enabled()
    )


def linear_cross_entropy(
    hidden: Any,
    weight: Any,
    target: Any,
    *,
    bias: Any = None,
    reduction: str = "mean",
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    class_weight: Any = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    return_lse: bool = False,
    return_logprobs: bool = False,
    return_entropy: bool = False,
) -> Any:
    """``cross_entropy(softcap(hidden @ weight.T + bias), target) + z_loss * lse**2`` on NumPy
    arrays, chunk by chunk (see the module docstring for the formula, the z-loss's averaging and
    the gradient).

    ``hidden``: (N, D) or (B, T, D); ``weight``: (V, D); ``target``: integer class indices of
    hidden's token shape, or class probabilities of shape token shape + (V,); ``bias``: (V,).
    Options as ``torch.nn.functional.cross_entropy`` (``class_weight`` is its ``weight``) plus
    ``z_loss``, ``softcap``, and ``chunk_size`` (tokens per chunk) or ``memory_budget`` (bytes
    for the chunk buffers; see ``chunk_rows``). The result is in float64 for float64 inputs and
    float32 otherwise. With any ``return_*`` flag: a ``LinearCrossEntropyOutput``.
    """
    opts = check_options(
        reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing,
        z_loss=z_loss, softcap=softcap, chunk_size=chunk_size, memory_budget=memory_budget,
    )
    extras = requested(return_lse, return_logprobs, return_entropy)
    xp, p = _numpy_problem(hidden, weight, target, bias, class_weight, opts)
    stats, _ = sweep(xp, p, opts, stats=frozenset({"ce", "lse"}) | extras)
    value = np.asarray(reduce_loss(xp, p, opts, stats["ce"], stats["lse"]))
    if not extras:
        return value
    return LinearCrossEntropyOutput(
        value, *(np.reshape(stats[k], p.token_shape) if k in extras else None
                 for k in ("lse", "logprobs", "entropy"))
    )


def value_and_grad(
    hidden: Any,
    weight: Any,
    target: Any,
    *,
    bias: Any = None,
    cotangent: Any = None,
    class_weight: Any = None,
    **options: Any,
) -> tuple[Any, tuple[Any, Any, Any]]:
    """``(value, (d_hidden, d_weight, d_bias))`` of ``linear_cross_entropy`` on NumPy arrays.

    The gradients are of the value times ``cotangent`` (default 1); for ``reduction="none"``,
    ``cotangent`` may have the token shape, and the gradient is that of ``sum(cotangent * l)``
    (of ``sum(l)`` by default). ``d_bias`` is None without a bias. Options as
    ``linear_cross_entropy`` (without the ``return_*`` flags).
    """
    opts = check_options(**options)
    xp, p = _numpy_problem(hidden, weight, target, bias, class_weight, opts)
    g = 1.0 if cotangent is None else np.asarray(cotangent, dtype=p.compute_dtype)
    if opts.reduction == "none" and np.ndim(g) == 0:
        g = np.full(p.token_shape, float(g), dtype=p.compute_dtype)
    elif opts.reduction == "none" and np.shape(g) != p.token_shape:
        raise ValueError(
            f"cotangent must have the token shape {p.token_shape} for reduction='none'; got "
            f"{np.shape(g)}."
        )
    elif opts.reduction != "none" and np.ndim(g) != 0:
        raise ValueError(f"cotangent must be a scalar for reduction={opts.reduction!r}.")
    a_ce, a_z = loss_cotangents(xp, p, opts, g)
    stats, (dh, dw, db) = sweep(
        xp, p, opts, stats=frozenset({"ce", "lse"}), cot=Cotangents(ce=a_ce, z=a_z)
    )
    value = np.asarray(reduce_loss(xp, p, opts, stats["ce"], stats["lse"]))
    return value, (np.reshape(dh, np.shape(hidden)), dw, db)


# ----------------------------------------------------------------------------------------------
# The catalog entry: losslab.get("linear_cross_entropy") on the declarative contract
# ----------------------------------------------------------------------------------------------


def _example(
    rng: np.random.Generator, dtype: Any = "float64", *, ignore_index: int = -100, **_: Any
) -> tuple[Any, ...]:
    """Hidden states (N, D) or (B, T, D), a (V, D) weight, class indices (some ignored, never
    all) and a bias."""
    n_classes, n_features = int(rng.integers(2, 7)), int(rng.integers(1, 5))
    token_shape = (int(rng.integers(1, 6)),) if rng.random() < 0.6 else (
        int(rng.integers(1, 3)), int(rng.integers(1, 4))
    )
    hidden = rng.normal(size=token_shape + (n_features,))
    weight = rng.normal(size=(n_classes, n_features))
    bias = 0.5 * rng.normal(size=(n_classes,))
    y = rng.integers(0, n_classes, size=token_shape)
    if y.size > 1 and rng.random() < 0.5:
        flat = y.reshape(-1)
        flat[rng.random(size=flat.size) < 0.3] = ignore_index
        flat[0] = int(rng.integers(0, n_classes))
    return (hidden.astype(dtype), weight.astype(dtype), np.asarray(y, dtype=np.int64),
            bias.astype(dtype))


def _register() -> None:
    from losslab.losses._constraints import NONE, Array, Either, Integer, Real
    from losslab.losses._registry import Items, register

    @register(
        "linear_cross_entropy",
        input_kind="real",
        target_kind="class",
        layout="feature_axis",
        classes="weight",
        options={
            "ignore_index": Integer(),
            "label_smoothing": Real(0, 1),
            "class_weight": Either(NONE, Array("shape (V,), one weight per class")),
            "z_loss": Real(0, None),
            "softcap": Either(NONE, Real(0, None, closed="neither")),
            "chunk_size": Either(NONE, Integer(1, note="tokens per chunk")),
            "memory_budget": Either(NONE, Integer(1, note="bytes for the chunk buffers")),
        },
        differentiable=("hidden", "weight", "bias"),
        shared=("weight", "bias"),
        namespaces=("numpy", "torch"),
        adapters="dedicated",
        couples_items=True,
        hessian=None,
        task="language modelling",
        formula="cross_entropy(softcap(hidden weight^T + bias), target) + z_loss lse^2, chunked",
        example=_example,
        module="LinearCrossEntropyLoss",
    )
    def linear_cross_entropy_items(
        xp: Any,
        hidden: Any,
        weight: Any,
        target: Any,
        bias: Any,
        *,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        class_weight: Any = None,
        z_loss: float = 0.0,
        softcap: float | None = None,
        chunk_size: int | None = None,
        memory_budget: int | None = None,
    ) -> Items:
        """Linear cross-entropy, one loss per token: ``CE_i + z_loss * lse_i**2`` with the logits
        ``softcap(W h_i + b)`` computed chunk by chunk, never all at once (the module docstring
        gives the formula, the z-loss's averaging and the gradient).

        Inputs ``(hidden, weight, target, bias)``: hidden states (N, D) or (B, T, D), the output
        layer's (V, D) weight, class indices of hidden's token shape (or class probabilities,
        token shape + (V,)), and a (V,) bias (or None). Gradients for hidden, weight and bias
        (None without a bias); targets are constants. ``reduction="mean"`` divides by torch's
        cross-entropy denominator (the sum of the target classes' weights over the tokens that
        count, their count without class weights), which is also PaLM's token count for the
        z-loss unless ``class_weight`` is given: the one reducer averages every per-token loss
        over one denominator, so ``class_weight`` with ``z_loss > 0`` is a ValueError here; the
        ``losslab.torch``, ``losslab.jax`` and ``losslab.losses.linear_cross_entropy`` entry
        points take it (z-loss averaged over tokens).

        Options: ``ignore_index``, ``label_smoothing`` in [0, 1], ``class_weight`` (V,),
        ``z_loss`` >= 0, ``softcap`` > 0 or None, ``chunk_size`` (tokens per chunk) or
        ``memory_budget`` (bytes) overriding the automatic chunking. No Hessian (a token's
        curvature is a V x V matrix through the softmax; not provided). Same as
        ``torch.nn.functional.cross_entropy(softcap(F.linear(hidden, weight, bias)), target)``
        plus the z-loss. Reference: Wijmans et al., "Cut Your Losses in Large-Vocabulary
        Language Models" (2024); Chowdhery et al., "PaLM" (2022).
        """
        if class_weight is not None and z_loss > 0:
            raise ValueError(
                "linear_cross_entropy: class_weight with z_loss > 0 needs two mean denominators "
                "(class weights for the cross-entropy, the token count for the z-loss); use "
                "losslab.torch.linear_cross_entropy or losslab.jax.linear_cross_entropy."
            )
        opts = check_options(
            reduction="none", ignore_index=ignore_index, label_smoothing=label_smoothing,
            z_loss=z_loss, softcap=softcap, chunk_size=chunk_size, memory_budget=memory_budget,
        )
        p = prepare(xp, hidden, weight, target, bias, class_weight, opts,
                    check_values=value_checks_enabled())
        stats, _ = sweep(xp, p, opts, stats=frozenset({"ce", "lse"}))
        per_token = reduce_loss(xp, p, opts, stats["ce"], stats["lse"])
        dtype = hidden.dtype

        def grad(w: Any) -> tuple[Any, Any, Any]:
            n = shape_of(p.hidden)[0]
            if isinstance(w, float):
                a = xp.full((n,), w, dtype=p.compute_dtype, device=array_api_compat.device(hidden))
            else:
                a = xp.reshape(xp.astype(xp.broadcast_to(w, shape_of(hidden)[:-1] + (1,)),
                                         p.compute_dtype), (n,))
            a_ce, a_z = loss_cotangents(xp, p, opts, xp.reshape(a, p.token_shape))
            _, (dh, dw, db) = sweep(xp, p, opts, cot=Cotangents(ce=a_ce, z=a_z))
            return xp.reshape(dh, shape_of(hidden)), dw, db

        values = per_token if per_token.dtype == dtype else xp.astype(per_token, dtype)
        return Items(values, grad=grad, denominator=denominators(xp, p)[0])

    del linear_cross_entropy_items  # registered; the module's own names are the entry points


_register()
