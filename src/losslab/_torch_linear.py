"""``losslab.torch.linear_cross_entropy``: the language-model loss without the logits tensor.

The math and the chunk loop are ``losslab.losses.linear_cross_entropy``'s, run on the tensors
themselves (their device, no NumPy round trip); this module adds the autograd node, the
data-parallel mean and the ``nn.Module``.

The backward pass, two ways:

- **Scalar loss** (``reduction="mean"`` or ``"sum"``): the forward pass computes the gradients
  along with the value, chunk by chunk (the chunk's softmax becomes its logits' gradient in place
  and is folded into ``d_hidden`` and ``d_weight`` by two matrix products), and keeps only them;
  the backward pass multiplies them by the incoming scalar (in place unless the graph is kept,
  not at all when it is 1). Three matrix products in all, as for the composed loss.
- **Anything else** (``reduction="none"`` with any cotangent, or a gradient through the per-token
  ``lse``/``logprobs``/``entropy`` outputs): the forward pass computes values only and keeps the
  per-token log-sum-exp (N floats); the backward pass recomputes each chunk's logits, gets the
  softmax as ``exp(s - lse)`` without another reduction, and weights each token's gradient by its
  own cotangents. Exact for any cotangent; one more matrix product than the scalar case.

Double backward is not supported: ``create_graph=True`` raises a RuntimeError (rather than giving
second derivatives that silently miss this node). ``torch.func`` transforms are not supported.
Under ``torch.compile`` the call is one graph break (the chunk loop runs eagerly; the model around
it compiles as usual).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import array_api_compat
import torch

from losslab._torch_graph import keep_graph
from losslab.losses import linear_cross_entropy as lce
from losslab.losses._validation import value_checks_enabled

__all__ = ["linear_cross_entropy", "LinearCrossEntropyLoss", "LinearCrossEntropyOutput"]

LinearCrossEntropyOutput = lce.LinearCrossEntropyOutput

_EXTRAS = ("lse", "logprobs", "entropy")


@dataclasses.dataclass
class _Call:
    """What the autograd node needs besides the differentiable tensors."""

    opts: lce.Options
    problem: lce.Problem  # its hidden/weight/bias are replaced by the node's inputs
    extras: frozenset[str]
    dens: tuple[Any, Any] | None  # mean denominators (summed over a process group), or None
    grad_mode: bool  # torch.is_grad_enabled() at the call (needs_input_grad ignores no_grad)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, hidden: Any, weight: Any, bias: Any, call: _Call) -> Any:
        ctx.set_materialize_grads(False)
        xp = array_api_compat.array_namespace(hidden)
        p = call.problem._replace(hidden=hidden, weight=weight, bias=bias)
        opts = call.opts
        n_h, n_w, n_b = (bool(n) and call.grad_mode for n in ctx.needs_input_grad[:3])
        needs = (n_h, n_w, n_b)
        # The scalar reductions precompute the gradients of the loss in this pass.
        fast = opts.reduction != "none" and any(needs)
        stats = frozenset({"ce", "lse"}) | call.extras
        cot = None
        if fast:
            a_ce, a_z = lce.loss_cotangents(xp, p, opts, 1.0, call.dens)
            cot = lce.Cotangents(ce=a_ce, z=a_z)
        with torch.autocast(hidden.device.type, enabled=False):
            out, grads = lce.sweep(xp, p, opts, stats=stats, cot=cot, grads=needs)
        value = lce.reduce_loss(xp, p, opts, out["ce"], out["lse"], call.dens)
        ctx.call, ctx.fast, ctx.needs = call, fast, needs
        ctx.save_for_backward(
            hidden, weight, bias, out["lse"], out.get("entropy"), *(grads if fast else ())
        )
        return (value, *(out[k] if k in call.extras else None for k in _EXTRAS))

    @staticmethod
    def backward(ctx: Any, g_loss: Any, g_lse: Any, g_lp: Any, g_h: Any) -> tuple[Any, ...]:
        if torch.is_grad_enabled():
            raise RuntimeError(
                "losslab.torch.linear_cross_entropy does not support double backward "
                "(create_graph=True): its backward pass is computed in closed form, chunk by "
                "chunk, and is not itself differentiable. For second derivatives, use the "
                "composed F.cross_entropy(F.linear(...)) on a small problem."
            )
        hidden, weight, bias, lse, entropy, *saved = ctx.saved_tensors
        call, opts = ctx.call, ctx.call.opts
        if ctx.fast and g_lse is None and g_lp is None and g_h is None:
            if g_loss is None:
                return None, None, None, None
            return (*_scaled(saved, g_loss), None)
        xp = array_api_compat.array_namespace(hidden)
        p = call.problem._replace(hidden=hidden, weight=weight, bias=bias)
        cdt = p.compute_dtype
        a_ce = a_z = None
        if g_loss is not None:
            a_ce, a_z = lce.loss_cotangents(xp, p, opts, g_loss.to(cdt), call.dens)
        if g_lp is not None and p.valid is not None:
            g_lp = torch.where(p.valid, g_lp, 0.0)  # ignored tokens' logprobs are constant 0
        cot = lce.Cotangents(
            ce=a_ce, z=a_z, lse=_as(g_lse, cdt), logprobs=_as(g_lp, cdt), entropy=_as(g_h, cdt)
        )
        with torch.autocast(hidden.device.type, enabled=False):
            _, grads = lce.sweep(
                xp, p, opts, cot=cot, lse=lse, entropy=entropy, grads=ctx.needs
            )
        return (*grads, None)


def _as(g: Any, dtype: Any) -> Any:
    return None if g is None else g.to(dtype)


def _scaled(grads: list[Any], g: torch.Tensor) -> list[Any]:
    """The precomputed gradients times the scalar cotangent ``g``: nothing to do for 1 on CPU
    (``loss.backward()``), in place unless the graph is kept (the buffers are this node's own
    and used once), else new tensors."""
    if g.device.type == "cpu" and g.item() == 1:
        return list(grads)

    in_place = not keep_graph()
    out: list[Any] = []
    for t in grads:
        if t is None:
            out.append(None)
        else:
            s = g.to(t.dtype)
            out.append(t.mul_(s) if in_place else t * s)
    return out


def _check_tensor(x: Any, name: str) -> None:
    if x is not None and not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}.")


def _group_denominators(
    xp: Any, p: lce.Problem, group: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean's denominators summed over ``group``, divided by its size: every rank then
    divides its own sum by the global count / world size, so that DDP's averaging of the
    gradients (sum / world size) gives the gradient of the global mean."""
    import torch.distributed as dist

    den_ce, den_z = lce.denominators(xp, p)
    both = torch.stack([den_ce, den_z]).to(torch.float64)
    dist.all_reduce(both, op=dist.ReduceOp.SUM, group=group)
    both = (both / dist.get_world_size(group)).to(p.compute_dtype)
    return both[0], both[1]


@torch._dynamo.disable  # a graph break under torch.compile, as the catalog's losses (losslab.torch)
def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    reduction: str = "mean",
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    class_weight: torch.Tensor | None = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    return_lse: bool = False,
    return_logprobs: bool = False,
    return_entropy: bool = False,
    process_group: Any = None,
) -> Any:
    """``F.cross_entropy(softcap(hidden @ weight.T + bias), target, ...) + z_loss * lse**2``
    without materialising the logits: a drop-in for the composed loss at the end of a language
    model, computed chunk by chunk over the tokens.

    Args:
        hidden: (N, D) or (B, T, D) features (the last hidden state).
        weight: (V, D) output projection (``lm_head.weight``; tied embeddings work).
        target: class indices (int) of hidden's token shape ((N,) or (B, T)), or class
            probabilities of shape token shape + (V,). Constants: no gradient flows to them.
        bias: optional (V,) bias.
        reduction, ignore_index, label_smoothing: as ``F.cross_entropy``.
        class_weight: (V,) class weights, ``F.cross_entropy``'s ``weight``.
        z_loss: coefficient of PaLM's z-loss ``lse**2`` per token. Averaging, as PaLM, T5X,
            flash-attention and Liger: per non-ignored token, not multiplied by class weights;
            ``"mean"`` is ``sum CE_i / sum w_{y_i} + z_loss * sum lse_i**2 / n_tokens`` over the
            non-ignored tokens (the two denominators coincide without class weights).
        softcap: ``c`` in Gemma 2's logit soft-capping ``c * tanh(logits / c)``, applied before
            the softmax; None for none.
        chunk_size: tokens per chunk; by default chosen from the sizes so that the chunk's
            (chunk, V) buffers take at most ``memory_budget`` bytes (default: half the size of
            the weight's gradient, within [16, 256] MiB; ``losslab.losses.linear_cross_entropy
            .chunk_rows``).
        return_lse, return_logprobs, return_entropy: also return, per token, the log-sum-exp of
            the (capped) logits, the log-probability of the target (0 where ignored; for
            probability targets ``sum_c t_c log p_c``) and the entropy of the softmax, all
            differentiable; the result is then a ``LinearCrossEntropyOutput(loss, lse,
            logprobs, entropy)`` whose fields not asked for are None.
        process_group: for ``reduction="mean"`` under data parallelism (DDP, FSDP): divide by
            the number of counted tokens over all ranks of the group (one all-reduce of two
            numbers), times the group's size. Every rank's gradient is then its share of the
            gradient of the global mean, and DDP's averaging gives exactly that mean's
            gradient, even when ranks hold different numbers of ignored tokens or none at all.
            The value returned on each rank is that rank's share times the world size (their
            average over ranks is the global mean).

    Precision: float16/bfloat16 inputs are computed in float32 (the logits, their log-sum-exp and
    the gradients accumulate in float32; the weight is converted to float32 once, V x D x 4
    bytes), the loss and the per-token outputs are float32, the gradients come back in each
    input's dtype. float64 inputs are computed in float64. Autocast is switched off inside.

    Memory beyond the inputs: the gradients (N x D and V x D, in float32 for half inputs) plus one
    or two (chunk, V) buffers (two with ``softcap`` or the entropy), instead of the composed
    loss's several (N, V) tensors. See the module docstring for how the backward pass works.
    """
    opts = lce.check_options(
        reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing,
        z_loss=z_loss, softcap=softcap, chunk_size=chunk_size, memory_budget=memory_budget,
    )
    extras = lce.requested(return_lse, return_logprobs, return_entropy)
    for name, x in (("hidden", hidden), ("weight", weight), ("target", target), ("bias", bias),
                    ("class_weight", class_weight)):
        _check_tensor(x, name)
    if target.requires_grad or (class_weight is not None and class_weight.requires_grad):
        name = "target" if target.requires_grad else "class_weight"
        raise ValueError(
            f"linear_cross_entropy: {name} requires grad, but it is a constant here (no "
            f"gradient flows to it). Pass {name}.detach()."
        )
    if process_group is not None and opts.reduction != "mean":
        raise ValueError(
            "process_group only applies to reduction='mean' (it makes the mean global over the "
            f"group); got reduction={opts.reduction!r}."
        )
    xp = array_api_compat.array_namespace(hidden)
    p = lce.prepare(
        xp, hidden, weight, target.detach(), bias,
        None if class_weight is None else class_weight.detach(), opts,
        check_values=hidden.device.type == "cpu" and value_checks_enabled(),
    )
    dens = None
    if process_group is not None:
        dens = _group_denominators(xp, p, process_group)
    call = _Call(opts, p, extras, dens, torch.is_grad_enabled())
    value, *per_token = _LinearCrossEntropy.apply(p.hidden, weight, bias, call)
    if not extras:
        return value
    return LinearCrossEntropyOutput(
        value, *(None if t is None else t.reshape(p.token_shape) for t in per_token)
    )


class LinearCrossEntropyLoss(torch.nn.Module):
    """``linear_cross_entropy`` as an ``nn.Module``: ``LinearCrossEntropyLoss(z_loss=1e-4)(
    hidden, weight, target, bias=None)``. Options are checked here, at construction; a
    ``class_weight`` tensor is registered as a buffer (``.to(device)`` and ``state_dict`` carry
    it). See ``losslab.torch.linear_cross_entropy`` for the options.
    """

    def __init__(
        self,
        *,
        reduction: str = "mean",
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        class_weight: torch.Tensor | None = None,
        z_loss: float = 0.0,
        softcap: float | None = None,
        chunk_size: int | None = None,
        memory_budget: int | None = None,
        return_lse: bool = False,
        return_logprobs: bool = False,
        return_entropy: bool = False,
        process_group: Any = None,
    ) -> None:
        super().__init__()
        self.options = dataclasses.asdict(lce.check_options(
            reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing,
            z_loss=z_loss, softcap=softcap, chunk_size=chunk_size, memory_budget=memory_budget,
        ))
        lce.requested(return_lse, return_logprobs, return_entropy)
        self.returns = {
            "return_lse": return_lse, "return_logprobs": return_logprobs,
            "return_entropy": return_entropy,
        }
        if process_group is not None and reduction != "mean":
            raise ValueError("process_group only applies to reduction='mean'.")
        self.process_group = process_group
        _check_tensor(class_weight, "class_weight")
        self.register_buffer("class_weight", class_weight)

    def forward(
        self,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        target: torch.Tensor,
        bias: torch.Tensor | None = None,
    ) -> Any:
        return linear_cross_entropy(
            hidden, weight, target, bias=bias, class_weight=self.class_weight,
            process_group=self.process_group, **self.options, **self.returns,
        )

    def extra_repr(self) -> str:
        defaults = dataclasses.asdict(lce.Options())
        changed = {
            k: v for k, v in {**self.options, **self.returns}.items()
            if v != defaults.get(k, False)
        }
        return ", ".join(f"{k}={v!r}" for k, v in changed.items())
