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
from losslab._torch_graph import keep_graph
from losslab._vjp import broadcast_like, lay_over, vjp
from losslab.losses import _registry
from losslab.losses._primitives import namespace
from losslab.losses._validation import value_checks, value_checks_enabled

__all__ = ["LossModule", "loss_function", "module_class"]

_HALF = (torch.float16, torch.bfloat16)

@contextlib.contextmanager
def _plain_compute(device: torch.device) -> Iterator[None]:
    """Autocast off (we pick the precision) and, on accelerators, no value checks (no host sync)."""
    with torch.autocast(device_type=device.type, enabled=False):
        with value_checks(device.type == "cpu" and value_checks_enabled()):
            yield


class _CatalogFunction(torch.autograd.Function):
    """One autograd node per loss call: forward = value and gradient, backward = g * gradient."""

    @staticmethod
    def forward(
        ctx: Any, loss: _registry.Loss, sample_weight: Any, *inputs: Any
    ) -> torch.Tensor:
        spec = loss.spec
        device = next(x.device for x in inputs if isinstance(x, torch.Tensor))
        # A loss whose items share inputs (spec.couples_items) needs the actual per-item
        # cotangent inside its formula: for reduction="none" its backward recomputes.
        ctx.recompute = spec.couples_items and loss.reduction == "none"
        with _plain_compute(device):
            if ctx.recompute:
                value, grads = loss(*inputs, sample_weight=sample_weight), ()
            else:
                value, grads = loss.value_and_grad(*inputs, sample_weight=sample_weight)
        grads = grads if isinstance(grads, tuple) else (grads,)
        ctx.loss, ctx.device, ctx.sample_weight = loss, device, sample_weight
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
        loss = ctx.loss
        spec = loss.spec
        saved = ctx.saved_tensors
        tensors, grads = list(saved[: len(saved) - ctx.n_grads]), saved[len(saved) - ctx.n_grads :]
        inputs = [tensors.pop(0) if s else c for s, c in zip(ctx.slots, ctx.constants)]
        if torch.is_grad_enabled():
            return (None, None, *_differentiable_backward(ctx, inputs, g))
        if ctx.recompute:
            with _plain_compute(ctx.device):
                grads = loss.vjp(*inputs, cotangent=g, sample_weight=ctx.sample_weight)
            grads = grads if isinstance(grads, tuple) else (grads,)
            out_r: list[Any] = [None, None]
            k = 0
            for i, name in enumerate(spec.inputs):
                if name in spec.differentiable:
                    out_r.append(grads[k] if ctx.needs_input_grad[2 + i] else None)
                    k += 1
                else:
                    out_r.append(None)
            return tuple(out_r)
        xp, _ = namespace(g)
        first = inputs[spec.inputs.index(spec.differentiable[0])]
        # Unless the graph is kept (retain_graph=True), this is the saved gradient's last use: scale
        # it in place and hand it on, so that AccumulateGrad can adopt it as x.grad without a copy.
        in_place = not keep_graph()
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
            scale = lay_over(xp, spec, g, first, loss._resolved)
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
                out.append(vjp(xp, spec, g, grad, first, loss._resolved))
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


def tensors_of(items: Any) -> list[torch.Tensor]:
    return [t for t in items if isinstance(t, torch.Tensor)]


def _differentiable_backward(ctx: Any, inputs: list[Any], g: torch.Tensor) -> list[Any]:
    """create_graph=True: the input gradients as a differentiable function of inputs and ``g``.

    The loss's value formula is recomputed with autograd recording it and differentiated, so
    second derivatives are those of the formula (the closed-form gradient code may build its
    result in place to save memory, which autograd cannot differentiate). Only this path keeps a
    tape; the ordinary backward pass never does.
    """
    spec = ctx.loss.spec
    wanted = [
        i
        for i, (name, x) in enumerate(zip(spec.inputs, inputs))
        if name in spec.differentiable
        and isinstance(x, torch.Tensor)
        and ctx.needs_input_grad[2 + i]
    ]
    with _plain_compute(ctx.device), value_checks(False):
        value = ctx.loss(*inputs, sample_weight=ctx.sample_weight)
    grads = torch.autograd.grad(value, [inputs[i] for i in wanted], g, create_graph=True)
    out: list[Any] = [None] * len(inputs)
    for i, gr in zip(wanted, grads):
        out[i] = gr
    return out


@torch._dynamo.disable
def _apply(
    spec: _registry.LossSpec, given: tuple[Any, ...], options: dict[str, Any]
) -> torch.Tensor:
    sample_weight = options.pop("sample_weight", None)
    loss = _registry.Loss(spec, **options)  # unknown options and bad values raise here
    if len(given) != len(spec.inputs):
        raise TypeError(
            f"{spec.name} takes {len(spec.inputs)} inputs ({', '.join(spec.inputs)}); "
            f"got {len(given)}."
        )
    tensors = [x for x in given if isinstance(x, torch.Tensor)]
    if not tensors:
        raise TypeError(f"{spec.name}: expected torch tensors; got {[type(x) for x in given]}.")
    inputs = list(given)
    grad_mode = torch.is_grad_enabled()
    constants = [(n, x) for n, x in zip(spec.inputs, inputs) if n not in spec.differentiable]
    for name, x in constants + [("sample_weight", sample_weight)]:
        if grad_mode and isinstance(x, torch.Tensor) and x.requires_grad:
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
        loss = _registry.Loss(spec, **options)
        sample_weight = _upcast(sample_weight)
    if loss.reduction == "none":
        xp, _ = namespace(*tensors)
        ref = inputs[spec.inputs.index(spec.differentiable[0])]
        for name in spec.differentiable[1:]:
            i = spec.inputs.index(name)
            if isinstance(inputs[i], torch.Tensor) and isinstance(ref, torch.Tensor):
                # A broadcast input (gaussian_nll's var) feeds several per-element losses; make it
                # one element per loss, and let autograd's expand node sum the cotangent back.
                inputs[i] = broadcast_like(xp, inputs[i], ref)
    value = _CatalogFunction.apply(loss, sample_weight, *inputs)
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
        _registry.Loss(losslab.spec(name), **options)  # bad options raise at construction
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

    def forward(self, *inputs: Any, sample_weight: Any = None) -> torch.Tensor:
        return _apply(
            losslab.spec(self.loss_name), inputs, {**self.options, "sample_weight": sample_weight}
        )

    def extra_repr(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self._fixed.items())
        return f"{self.loss_name!r}" + (f", {opts}" if opts else "")


def module_class(name: str) -> type[LossModule]:
    """The ``nn.Module`` class for catalog loss ``name`` (cross_entropy -> ``CrossEntropyLoss``)."""
    spec = losslab.spec(name)
    cls_name = spec.module

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
        if spec.adapters == "dedicated":
            continue  # exported below, from its own module
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
