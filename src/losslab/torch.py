"""The catalog inside PyTorch: a function and an ``nn.Module`` per loss, with closed-form backward.

::

    import losslab.torch as lt
    loss = lt.cross_entropy(logits, target, label_smoothing=0.1)   # like F.cross_entropy
    criterion = lt.CrossEntropyLoss(label_smoothing=0.1)            # like nn.CrossEntropyLoss
    criterion = lt.LossModule("focal", alpha=0.25, gamma=2.0)       # any catalog loss by name
    loss.backward()

Every catalog loss is exposed under its catalog name (``lt.focal``), under torch's functional
name where torch has it (``lt.mse_loss``, ``lt.binary_cross_entropy_with_logits``), and as a
module named like torch's (``lt.MSELoss``, ``lt.BCEWithLogitsLoss``; ``lt.FocalLoss``,
``lt.SoftmaxFocalLoss`` ... for the rest). Inputs are positional in the catalog's order, options
are keywords with torch's names and defaults.

How it works. A ``torch.autograd.Function`` calls the catalog function on the tensors themselves
(the catalog is written against the Array API, which array-api-compat maps onto torch), so the
computation runs on the tensors' device, in their dtype, with no NumPy round trip. The forward
pass computes the value and the closed-form gradient together and saves only the gradient; the
backward pass multiplies it by the incoming gradient (``losslab._vjp`` lays a per-element
cotangent over the input for ``reduction="none"``, row by row where one loss covers a row). No
tape of intermediate tensors is kept, which is where the memory saving comes from. Unless the
graph is retained, the backward scales the saved gradient in place and hands that very buffer to
``x.grad``, so a loss step costs about one input-sized buffer (and for ``loss.backward()`` on
CPU, whose cotangent is exactly 1, not even the multiply). Elementwise losses on large CPU
tensors run block by block (cache-sized row blocks, the catalog's own code on each), which bounds
their temporaries and keeps the many passes of a closed form in cache; the mean's divisor (the
only NumPy helper involved) reads zero-copy views of the CPU tensors.

Semantics worth knowing:

- **Targets are constants.** Labels and targets get no gradient (torch's ``mse_loss`` would give
  ``target`` one). A target that requires grad raises ``ValueError`` rather than silently getting
  none: detach it, or use torch's loss for that case. Option tensors (``weight``,
  ``pos_weight``) are constants too.
- **No host synchronisation on CUDA.** The checks that read values (label ranges, probabilities in
  [0, 1]) need a device-to-host copy, so they are switched off (``losslab.value_checks(False)``)
  when the inputs are on a GPU; shape and dtype checks always run. On CPU every check runs.
- **Mixed precision.** float16/bfloat16 inputs are computed in float32 (so sums accumulate in
  float32), and the gradient reaches the input in its own dtype. The value is float32 under
  ``torch.autocast`` (torch's autocast policy runs losses in float32) and the input's dtype
  otherwise, exactly as torch's own losses behave.
- **Double backward** is supported: with ``create_graph=True`` the backward pass recomputes the
  loss's value with autograd recording it and differentiates that (the closed-form gradient code
  builds its result in place to save memory, which autograd cannot differentiate), so Hessian-
  vector products and gradient penalties work and equal torch's. Without ``create_graph`` nothing
  is recomputed and no tape is kept.
- **torch.compile.** The catalog function runs outside the compiled graph (one graph break per
  loss call, at ``torch._dynamo.disable``): dynamo cannot trace through array-api-compat's
  dispatch, and the loss is one fused pass already. The model around it compiles as usual.
- **Distributed.** Losses are ordinary autograd nodes, so ``DistributedDataParallel`` works
  unchanged; see ``examples/ddp_train.py``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import torch

import losslab
from losslab._vjp import broadcast_like, lay_over, vjp
from losslab.losses import _blocked, _registry
from losslab.losses._primitives import namespace
from losslab.losses._validation import value_checks, value_checks_enabled

__all__ = ["LossModule", "loss_function", "module_class", "CLASS_NAMES"]

_HALF = (torch.float16, torch.bfloat16)

# torch.nn's spelling of the losses it has; the others are CamelCase(name) + "Loss".
CLASS_NAMES = {
    "mse": "MSELoss",
    "l1": "L1Loss",
    "huber": "HuberLoss",
    "smooth_l1": "SmoothL1Loss",
    "bce": "BCELoss",
    "bce_with_logits": "BCEWithLogitsLoss",
    "cross_entropy": "CrossEntropyLoss",
    "nll": "NLLLoss",
    "kl_div": "KLDivLoss",
    "js_div": "JSDivLoss",
    "poisson_nll": "PoissonNLLLoss",
    "gaussian_nll": "GaussianNLLLoss",
    "hinge_embedding": "HingeEmbeddingLoss",
    "margin_ranking": "MarginRankingLoss",
    "soft_margin": "SoftMarginLoss",
    "multilabel_soft_margin": "MultiLabelSoftMarginLoss",
    "multilabel_margin": "MultiLabelMarginLoss",
    "multi_margin": "MultiMarginLoss",
    "cosine_embedding": "CosineEmbeddingLoss",
    "triplet_margin": "TripletMarginLoss",
}


def _class_name(name: str) -> str:
    return CLASS_NAMES.get(name) or "".join(p[:1].upper() + p[1:] for p in name.split("_")) + "Loss"


@contextlib.contextmanager
def _plain_compute(device: torch.device) -> Iterator[None]:
    """Autocast off (we pick the precision) and, on accelerators, no value checks (no host sync)."""
    with torch.autocast(device_type=device.type, enabled=False):
        with value_checks(device.type == "cpu" and value_checks_enabled()):
            yield


class _CatalogFunction(torch.autograd.Function):
    """One autograd node per loss call: forward = value and gradient, backward = g * gradient."""

    @staticmethod
    def forward(ctx: Any, name: str, options: dict[str, Any], *inputs: Any) -> torch.Tensor:
        spec = _registry.spec(name)
        device = next(x.device for x in inputs if isinstance(x, torch.Tensor))
        with _plain_compute(device):
            if _blockwise(spec, inputs, options):
                value, grads = _blocked.value_and_grad(spec, list(inputs), options, True)
            else:
                value, grads = spec.fn(*inputs, compute_grad=True, **options)
        grads = grads if isinstance(grads, tuple) else (grads,)
        ctx.name, ctx.options, ctx.device = name, options, device
        # Non-tensor inputs (a float ``var``) are kept as they are; tensors go through
        # save_for_backward, which costs nothing for the inputs (no copy) and lets the double
        # backward recompute the gradient from them.
        ctx.slots = [isinstance(x, torch.Tensor) for x in inputs]
        ctx.constants = [None if s else x for s, x in zip(ctx.slots, inputs)]
        ctx.save_for_backward(*(x for x in inputs if isinstance(x, torch.Tensor)), *grads)
        ctx.n_grads = len(grads)
        return value

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        spec = _registry.spec(ctx.name)
        saved = ctx.saved_tensors
        tensors, grads = list(saved[: len(saved) - ctx.n_grads]), saved[len(saved) - ctx.n_grads :]
        inputs = [tensors.pop(0) if s else c for s, c in zip(ctx.slots, ctx.constants)]
        if torch.is_grad_enabled():
            return (None, None, *_differentiable_backward(ctx, spec, inputs, g))
        xp, _ = namespace(g)
        # Unless the graph is kept (retain_graph=True), this is the saved gradient's last use: scale
        # it in place and hand it on, so that AccumulateGrad can adopt it as x.grad without a copy.
        in_place = not _keep_graph()
        owned = {t.untyped_storage().data_ptr() for t in tensors_of(inputs)}
        out: list[Any] = [None, None]
        k = 0
        for i, (name, x) in enumerate(zip(spec.inputs, inputs)):
            if name not in spec.differentiable:
                out.append(None)
                continue
            grad = grads[k]
            k += 1
            if not (ctx.needs_input_grad[2 + i] and isinstance(x, torch.Tensor)):
                out.append(None)
                continue
            scale = lay_over(xp, g, tuple(x.shape), spec.name, ctx.options)
            ptr = grad.untyped_storage().data_ptr()
            if (
                in_place
                and grad.is_contiguous()
                and ptr not in owned  # never write into an input, or twice into one buffer
                and _fits_in(scale, grad)
            ):
                owned.add(ptr)
                out.append(grad if _is_one(scale) else grad.mul_(scale))
            else:
                out.append(vjp(xp, spec.name, g, grad, tuple(x.shape), ctx.options))
        return tuple(out)


def _is_one(g: torch.Tensor) -> bool:
    """A CPU scalar cotangent equal to 1 (``loss.backward()``): the multiply would be a no-op
    pass over the whole gradient. Never asked on accelerators, where reading it would sync."""
    return g.device.type == "cpu" and g.ndim == 0 and g.item() == 1


def _fits_in(scale: torch.Tensor, grad: torch.Tensor) -> bool:
    """Whether ``grad *= scale`` can be done in place: ``scale`` broadcasts to ``grad``'s shape
    without enlarging it, and does not promote its dtype. (Spelled out: torch.broadcast_shapes
    costs tens of microseconds, a tenth of a small loss call.)"""
    if torch.promote_types(scale.dtype, grad.dtype) != grad.dtype or scale.ndim > grad.ndim:
        return False
    tail = grad.shape[grad.ndim - scale.ndim :]
    return all(s == 1 or s == d for s, d in zip(scale.shape, tail))


def _blockwise(spec: _registry.LossSpec, inputs: tuple[Any, ...], options: dict) -> bool:
    """Big CPU tensors of row-wise losses go through losslab.losses._blocked, as NumPy arrays do.

    Only elementwise losses: the class-axis ones (cross_entropy, poly1, softmax_focal, ...) make
    few passes and keep one input-sized buffer already, and per-block call overhead made them
    slower in benchmarks/bench_torch_memory.py (poly1: 9.6 ms blocked vs 8.4-9.0 direct);
    per-sample ones (dice, ...) would add a block buffer to a peak that is the gradient alone.
    """
    return spec.layout == "elementwise" and _blocked.applicable(spec, list(inputs), options)


def tensors_of(items: Any) -> list[torch.Tensor]:
    return [t for t in items if isinstance(t, torch.Tensor)]


def _keep_graph() -> bool:
    """Whether the running backward pass keeps the graph (retain_graph=True); True if unknown.

    torch's own aot_autograd asks the engine the same question to free saved tensors early.
    """
    probe = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    try:
        return True if probe is None else bool(probe())
    except RuntimeError:
        return True


def _differentiable_backward(
    ctx: Any, spec: _registry.LossSpec, inputs: list[Any], g: torch.Tensor
) -> list[Any]:
    """create_graph=True: the input gradients as a differentiable function of inputs and ``g``.

    The loss's value formula is recomputed with autograd recording it and differentiated, so
    second derivatives are those of the formula (the closed-form gradient code may build its
    result in place to save memory, which autograd cannot differentiate). Only this path keeps a
    tape; the ordinary backward pass never does.
    """
    wanted = [
        i
        for i, (name, x) in enumerate(zip(spec.inputs, inputs))
        if name in spec.differentiable
        and isinstance(x, torch.Tensor)
        and ctx.needs_input_grad[2 + i]
    ]
    with _plain_compute(ctx.device), value_checks(False):
        value, _ = spec.fn(*inputs, compute_grad=False, **ctx.options)
    grads = torch.autograd.grad(value, [inputs[i] for i in wanted], g, create_graph=True)
    out: list[Any] = [None] * len(inputs)
    for i, gr in zip(wanted, grads):
        out[i] = gr
    return out


@torch._dynamo.disable
def _apply(spec: _registry.LossSpec, inputs: tuple[Any, ...], options: dict[str, Any]) -> Any:
    _registry.Loss(spec, **options)  # unknown options and reductions raise here, with hints
    if len(inputs) != len(spec.inputs):
        raise TypeError(
            f"{spec.name} takes {len(spec.inputs)} inputs ({', '.join(spec.inputs)}); "
            f"got {len(inputs)}."
        )
    tensors = [x for x in inputs if isinstance(x, torch.Tensor)]
    if not tensors:
        raise TypeError(f"{spec.name}: expected torch tensors; got {[type(x) for x in inputs]}.")
    inputs = list(inputs)
    grad_mode = torch.is_grad_enabled()
    for name, x in zip(spec.inputs, inputs):
        if (
            grad_mode
            and name not in spec.differentiable
            and isinstance(x, torch.Tensor)
            and x.requires_grad
        ):
            raise ValueError(
                f"{spec.name}: {name} requires grad, but losslab treats {name} as a constant "
                f"(no gradient flows to it). Pass {name}.detach(), or use torch's own loss if you "
                f"need d(loss)/d({name})."
            )
    first = inputs[spec.inputs.index(spec.differentiable[0])]
    device = first.device if isinstance(first, torch.Tensor) else tensors[0].device
    out_dtype = None
    if any(x.dtype in _HALF for x in tensors):
        # Mixed precision: compute in float32 (float32 accumulation); autograd's cast node brings
        # the gradient back to the input's dtype.
        autocast = torch.is_autocast_enabled(device.type)
        if isinstance(first, torch.Tensor) and first.dtype in _HALF and not autocast:
            out_dtype = first.dtype
        inputs = [_upcast(x) for x in inputs]
        options = {k: _upcast(v) for k, v in options.items()}
    reduction = options.get("reduction", spec.defaults.get("reduction"))
    if reduction == "none":
        xp, _ = namespace(*tensors)
        ref = inputs[spec.inputs.index(spec.differentiable[0])]
        for name in spec.differentiable[1:]:
            i = spec.inputs.index(name)
            if isinstance(inputs[i], torch.Tensor) and isinstance(ref, torch.Tensor):
                # A broadcast input (gaussian_nll's var) feeds several per-element losses; make it
                # one element per loss, and let autograd's expand node sum the cotangent back.
                inputs[i] = broadcast_like(xp, inputs[i], ref)
    value = _CatalogFunction.apply(spec.name, options, *inputs)
    return value if out_dtype is None else value.to(out_dtype)


def _upcast(x: Any) -> Any:
    if isinstance(x, torch.Tensor) and x.dtype in _HALF:
        return x.float()
    return x


def loss_function(name: str) -> Callable[..., torch.Tensor]:
    """The torch function for catalog loss ``name``: ``f(*inputs, **options) -> Tensor``."""
    spec = losslab.spec(name)

    def loss(*inputs: Any, **options: Any) -> torch.Tensor:
        return _apply(spec, inputs, options)

    loss.__name__ = loss.__qualname__ = spec.name
    loss.__module__ = __name__
    loss.__doc__ = (
        f"{spec.summary}\n\nlosslab.torch.{spec.name}({', '.join(spec.inputs)}, **options): "
        f"the catalog loss on torch tensors, with its closed-form backward.\n"
        f"Options (torch's names and defaults): "
        f"{', '.join(f'{k}={v!r}' for k, v in spec.defaults.items()) or 'none'}.\n\n{spec.doc}"
    )
    return loss


class LossModule(torch.nn.Module):
    """Any catalog loss as an ``nn.Module``: ``LossModule("focal", gamma=2.0)(input, target)``.

    Tensor options (``weight``, ``pos_weight``) are registered as buffers, so ``.to(device)`` and
    ``state_dict`` carry them, like torch's ``_WeightedLoss``.
    """

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__()
        self.loss_name = losslab.spec(name).name
        _registry.Loss(losslab.spec(name), **options)
        self._fixed: dict[str, Any] = {}
        for key, value in options.items():
            if isinstance(value, torch.Tensor):
                self.register_buffer(key, value)
            else:
                self._fixed[key] = value
        self._buffer_keys = [k for k, v in options.items() if isinstance(v, torch.Tensor)]

    @property
    def options(self) -> dict[str, Any]:
        return {**self._fixed, **{k: getattr(self, k) for k in self._buffer_keys}}

    def forward(self, *inputs: Any) -> torch.Tensor:
        return _apply(losslab.spec(self.loss_name), inputs, self.options)

    def extra_repr(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self._fixed.items())
        return f"{self.loss_name!r}" + (f", {opts}" if opts else "")


def module_class(name: str) -> type[LossModule]:
    """The ``nn.Module`` class for catalog loss ``name`` (cross_entropy -> ``CrossEntropyLoss``)."""
    spec = losslab.spec(name)
    cls_name = _class_name(spec.name)

    def __init__(self: LossModule, **options: Any) -> None:
        LossModule.__init__(self, spec.name, **options)

    doc = (
        f"{spec.summary}\n\n``{cls_name}(**options)(" + ", ".join(spec.inputs) + ")``: the catalog "
        f"loss {spec.name!r} as an nn.Module (options are keywords; see losslab.torch."
        f"{spec.name}).\n\n{spec.doc}"
    )
    attrs = {"__init__": __init__, "__doc__": doc, "__module__": __name__}
    return type(cls_name, (LossModule,), attrs)


def _export() -> None:
    namespace_ = globals()
    for name in losslab.available():
        spec = losslab.spec(name)
        fn = loss_function(name)
        namespace_[name] = fn
        cls = module_class(name)
        namespace_[cls.__name__] = cls
        __all__.extend([name, cls.__name__])
        if spec.torch and re.fullmatch(r"[a-z_0-9]+", spec.torch) and spec.torch not in namespace_:
            namespace_[spec.torch] = fn  # torch's functional name: a drop-in for F.<name>
            __all__.append(spec.torch)


_export()

from losslab._torch_linear import LinearCrossEntropyLoss, linear_cross_entropy  # noqa: E402

__all__ += ["linear_cross_entropy", "LinearCrossEntropyLoss"]
