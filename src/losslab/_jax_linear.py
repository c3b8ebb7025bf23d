"""``losslab.jax.linear_cross_entropy``: the language-model loss without the logits tensor, in JAX.

The per-chunk math is ``losslab.losses.linear_cross_entropy.chunk`` (written against the Array
API, so it runs on ``jax.numpy`` unchanged); the chunks run under ``lax.scan`` (the tokens padded
to a whole number of equal chunks, the padding masked out), so the function is jit-able and XLA
never sees an (N, V) array. A ``jax.custom_vjp`` supplies the gradient:

- scalar loss (``"mean"``/``"sum"``) and no per-token outputs: the forward pass of ``jax.grad``
  computes the gradients with the value, one scan carrying ``d_weight`` and ``d_bias`` and
  emitting ``d_hidden`` per chunk; the backward pass multiplies them by the cotangent;
- otherwise (``reduction="none"``, or per-token outputs that may carry cotangents): the forward
  pass keeps the per-token log-sum-exp, and the backward pass recomputes each chunk's logits and
  applies every cotangent exactly.

Without differentiation (``jax.jit(f)(...)``), only the values are computed. Semantics, options
and precision are those of ``losslab.torch.linear_cross_entropy`` (no ``process_group``: under
``pmap``/``shard_map`` use ``reduction="sum"`` and divide by a ``psum`` of the counts).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from losslab.losses import linear_cross_entropy as lce
from losslab.losses._validation import value_checks_enabled

__all__ = ["linear_cross_entropy", "LinearCrossEntropyOutput"]

LinearCrossEntropyOutput = lce.LinearCrossEntropyOutput
_EXTRAS = ("lse", "logprobs", "entropy")


@dataclasses.dataclass(frozen=True)
class _Static:
    """Everything about a call that fixes the traced program (hashable)."""

    opts: lce.Options
    extras: tuple[str, ...]
    rows: int  # tokens per chunk
    n_tokens: int  # before padding
    token_shape: tuple[int, ...]
    compute_dtype: Any

    @property
    def fast(self) -> bool:
        return self.opts.reduction != "none" and not self.extras


def _pad(x: Any, n: int, value: Any = 0) -> Any:
    if x is None or x.shape[0] == n:
        return x
    widths = [(0, n - x.shape[0])] + [(0, 0)] * (x.ndim - 1)
    return jnp.pad(x, widths, constant_values=value)


def _problem(st: _Static, hidden, weight, bias, labels, valid, probs, class_weight):
    return lce.Problem(
        hidden, weight, bias, labels, valid, probs, class_weight, st.compute_dtype, st.token_shape
    )


def _sweep(st: _Static, p: lce.Problem, *, stats=frozenset(), cot=None, lse=None, entropy=None,
           bias_grad: bool = False):
    """Every chunk under ``lax.scan``; the arrays of ``p`` (and ``cot``, ``lse``, ``entropy``)
    are padded to a whole number of chunks. Returns (stats, (d_hidden, d_weight, d_bias))."""
    cdt, rows = st.compute_dtype, st.rows
    n_pad, n_features = p.hidden.shape
    n_classes = p.weight.shape[0]
    n_chunks = n_pad // rows
    wc = p.weight.astype(cdt)
    bc = None if p.bias is None else p.bias.astype(cdt)

    def split(x):
        return None if x is None else x.reshape((n_chunks, rows) + x.shape[1:])

    xs = {
        "h": split(p.hidden), "labels": split(p.labels), "valid": split(p.valid),
        "probs": split(p.probs), "lse": split(lse), "entropy": split(entropy),
        "cot": None if cot is None else lce.Cotangents(*(split(a) for a in cot)),
    }

    def body(carry, x):
        h_c = x["h"].astype(cdt)
        s = h_c @ wc.T
        if bc is not None:
            s = s + bc
        pc = _problem(st, h_c, wc, bc, x["labels"], x["valid"], x["probs"], p.class_weight)
        out, g = lce.chunk(
            jnp, s, pc, 0, rows, st.opts, stats=stats, cot=x["cot"], lse=x["lse"],
            entropy=x["entropy"],
        )
        if g is None:
            return carry, out
        dw, db = carry
        out["dh"] = (g @ wc).astype(p.hidden.dtype)
        dw = dw + g.T @ h_c
        if db is not None:
            db = db + jnp.sum(g, axis=0)
        return (dw, db), out

    carry: Any = None
    if cot is not None:
        carry = (
            jnp.zeros((n_classes, n_features), cdt),
            jnp.zeros((n_classes,), cdt) if bias_grad else None,
        )
    carry, ys = lax.scan(body, carry, xs)
    stats_out = {k: v.reshape(n_pad) for k, v in ys.items() if k != "dh"}
    if cot is None:
        return stats_out, None
    dw, db = carry
    dh = ys["dh"].reshape(n_pad, n_features)
    return stats_out, (
        dh,
        dw.astype(p.weight.dtype),
        None if db is None else db.astype(p.bias.dtype),
    )


def _outputs(st: _Static, p_real: lce.Problem, stats: dict[str, Any]) -> tuple[Any, ...]:
    n = st.n_tokens
    value = lce.reduce_loss(jnp, p_real, st.opts, stats["ce"][:n], stats["lse"][:n])
    return (value, *(stats[k][:n].reshape(st.token_shape) for k in st.extras))


def _padded(st: _Static, hidden, labels, valid, probs):
    """Pad the tokens to a whole number of chunks; padded tokens do not count."""
    n_pad = -(-max(st.n_tokens, 1) // st.rows) * st.rows
    if valid is None:
        valid = jnp.ones((st.n_tokens,), bool)
    return n_pad, _pad(hidden, n_pad), _pad(labels, n_pad), _pad(valid, n_pad, False), _pad(
        probs, n_pad
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _lce(st: _Static, hidden, weight, bias, labels, valid, probs, class_weight):
    return _primal(st, hidden, weight, bias, labels, valid, probs, class_weight, grad=False)[0]


def _primal(st, hidden, weight, bias, labels, valid, probs, class_weight, *, grad):
    p_real = _problem(st, hidden, weight, bias, labels, valid, probs, class_weight)
    n_pad, hp, lp, vp, pp = _padded(st, hidden, labels, valid, probs)
    p = _problem(st, hp, weight, bias, lp, vp, pp, class_weight)
    stats = frozenset({"ce", "lse"}) | frozenset(st.extras)
    cot = None
    if grad:
        a_ce, a_z = lce.loss_cotangents(jnp, p_real, st.opts, 1.0)
        cot = lce.Cotangents(ce=_pad(a_ce, n_pad), z=_pad(a_z, n_pad))
    out, grads = _sweep(st, p, stats=stats, cot=cot, bias_grad=bias is not None)
    return _outputs(st, p_real, out), out, grads


def _fwd(st, hidden, weight, bias, labels, valid, probs, class_weight):
    if st.fast:
        outs, _, (dh, dw, db) = _primal(
            st, hidden, weight, bias, labels, valid, probs, class_weight, grad=True
        )
        return outs, (dh[: st.n_tokens], dw, db)
    outs, stats, _ = _primal(st, hidden, weight, bias, labels, valid, probs, class_weight,
                             grad=False)
    return outs, (hidden, weight, bias, labels, valid, probs, class_weight, stats["lse"],
                  stats.get("entropy"))


def _bwd(st, res, g):
    if st.fast:
        dh, dw, db = res
        g0 = g[0]
        return (
            (g0 * dh).astype(dh.dtype), (g0 * dw).astype(dw.dtype),
            None if db is None else (g0 * db).astype(db.dtype),
            None, None, None, None,
        )
    hidden, weight, bias, labels, valid, probs, class_weight, lse, entropy = res
    p_real = _problem(st, hidden, weight, bias, labels, valid, probs, class_weight)
    n_pad, hp, lp, vp, pp = _padded(st, hidden, labels, valid, probs)
    p = _problem(st, hp, weight, bias, lp, vp, pp, class_weight)
    cdt = st.compute_dtype
    a_ce, a_z = lce.loss_cotangents(jnp, p_real, st.opts, g[0].astype(cdt))
    extra = dict(zip(st.extras, g[1:]))

    def flat(name):
        if name not in extra:
            return None
        c = extra[name].reshape(st.n_tokens).astype(cdt)
        if name == "logprobs" and valid is not None:
            c = jnp.where(valid, c, 0.0)  # ignored tokens' logprobs are constant 0
        return _pad(c, n_pad)

    cot = lce.Cotangents(
        ce=_pad(a_ce, n_pad), z=None if a_z is None else _pad(a_z, n_pad), lse=flat("lse"),
        logprobs=flat("logprobs"), entropy=flat("entropy"),
    )
    _, (dh, dw, db) = _sweep(st, p, cot=cot, lse=lse, entropy=entropy,
                             bias_grad=bias is not None)
    return (dh[: st.n_tokens].reshape(hidden.shape), dw, db, None, None, None, None)


_lce.defvjp(_fwd, _bwd)


def _traced(*xs: Any) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in xs)


def linear_cross_entropy(
    hidden: Any,
    weight: Any,
    target: Any,
    bias: Any = None,
    *,
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
    """``cross_entropy(softcap(hidden @ weight.T + bias), target) + z_loss * lse**2`` on JAX
    arrays, chunk by chunk under ``lax.scan``, with a custom VJP; jit-able (options and shapes
    are static). Arguments, semantics and outputs as ``losslab.torch.linear_cross_entropy``
    (see its docstring, and ``losslab.losses.linear_cross_entropy`` for the formulas)."""
    opts = lce.check_options(
        reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing,
        z_loss=z_loss, softcap=softcap, chunk_size=chunk_size, memory_budget=memory_budget,
    )
    extras = lce.requested(return_lse, return_logprobs, return_entropy)
    hidden, weight, target = jnp.asarray(hidden), jnp.asarray(weight), jnp.asarray(target)
    bias = None if bias is None else jnp.asarray(bias)
    class_weight = None if class_weight is None else jnp.asarray(class_weight)
    p = lce.prepare(
        jnp, hidden, weight, target, bias, class_weight, opts,
        check_values=value_checks_enabled() and not _traced(target),
    )
    n_tokens, n_features = p.hidden.shape
    n_classes = weight.shape[0]
    ordered = tuple(k for k in _EXTRAS if k in extras)
    # One chunk size for the forward and the backward pass: count the buffers either needs.
    buffers = lce.buffers_needed(opts, extras, lce.Cotangents())
    rows = lce.chunk_rows(
        n_tokens, n_classes, n_features, itemsize=jnp.dtype(p.compute_dtype).itemsize,
        buffers=buffers, chunk_size=opts.chunk_size, memory_budget=opts.memory_budget,
    )
    st = _Static(opts, ordered, rows, n_tokens, p.token_shape, p.compute_dtype)
    value, *per_token = _lce(
        st, p.hidden, weight, bias, p.labels, p.valid, p.probs, p.class_weight
    )
    value = value.reshape(p.token_shape) if opts.reduction == "none" else value
    if not extras:
        return value
    got = dict(zip(ordered, per_token))
    return LinearCrossEntropyOutput(value, *(got.get(k) for k in _EXTRAS))
