"""The catalog inside JAX: every loss as a function with a ``jax.custom_vjp`` closed-form gradient.

::

    import losslab.jax as lj
    value = lj.cross_entropy(logits, labels, label_smoothing=0.1)
    grads = jax.grad(lambda w: lj.focal(model(w, x), y, gamma=2.0))(w)

Inputs are positional in the catalog's order, options keywords with torch's names and defaults
(the same as ``losslab.get``). ``jax.jit``, ``jax.vmap`` and ``jax.grad`` work.

How it works. ``jax.custom_vjp``'s forward rule calls the catalog function on the JAX arrays
themselves (jax.numpy implements the Array API, which is all the catalog code uses), returning the
value and saving the closed-form gradient; the backward rule multiplies it by the cotangent
(``losslab._vjp`` lays a per-element cotangent over the input for ``reduction="none"``). Targets,
labels and option arrays (``weight``, ``pos_weight``) are constants: they receive zero cotangents.

Under ``jit``/``vmap`` the arrays are tracers whose values are unknown, so the checks that read
values (label ranges, probabilities in [0, 1]) cannot run and are switched off
(``losslab.value_checks(False)``) inside traced code; shape and dtype checks always run. Call the
loss once outside ``jit`` to have your data checked.

float16/bfloat16 inputs are computed in float32 and the value is returned in the input's dtype
(the gradient reaches the input in its dtype through the cast). Second derivatives are not
available: ``jax.custom_vjp`` functions cannot be differentiated in forward mode, and the
closed-form gradient is not itself differentiated (use ``jax.hessian`` of a jnp formula for that).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import losslab
from losslab._vjp import broadcast_like, vjp
from losslab.losses import _registry
from losslab.losses._validation import value_checks, value_checks_enabled

__all__ = ["loss_function"]

_HALF = (jnp.float16, jnp.bfloat16)


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


def _traced(args: Any) -> bool:
    return any(isinstance(a, jax.core.Tracer) for a in args)


def _call(name: str, static: tuple, array_keys: tuple, args: tuple) -> tuple[Any, ...]:
    """``(loss, inputs, sample_weight)`` from the primal arrays (``args``: arrays in input order,
    then array options, then the sample weights if any)."""
    spec = _registry.spec(name)
    fixed_inputs, fixed_options = dict(static[0]), dict(static[1])
    it = iter(args)
    inputs = [fixed_inputs[i] if i in fixed_inputs else next(it) for i in range(len(spec.inputs))]
    options = {**fixed_options, **dict(zip(array_keys, it))}
    sample_weight = options.pop("sample_weight", None)
    return _registry.Loss(spec, **options), tuple(inputs), sample_weight


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _core(name: str, static: tuple, array_keys: tuple, *args: Any) -> Any:
    loss, inputs, sample_weight = _call(name, static, array_keys, args)
    with value_checks(value_checks_enabled() and not _traced(args)):
        return loss(*inputs, sample_weight=sample_weight)


def _core_fwd(name: str, static: tuple, array_keys: tuple, *args: Any) -> tuple[Any, Any]:
    loss, inputs, sample_weight = _call(name, static, array_keys, args)
    with value_checks(value_checks_enabled() and not _traced(args)):
        if loss.spec.couples_items and loss.reduction == "none":
            # Items share inputs: the backward pass needs the cotangent inside the formula.
            return loss(*inputs, sample_weight=sample_weight), (None, args)
        value, grads = loss.value_and_grad(*inputs, sample_weight=sample_weight)
    return value, (grads if isinstance(grads, tuple) else (grads,), args)


def _zero_cotangent(a: Any) -> Any:
    if jnp.issubdtype(a.dtype, jnp.inexact):
        return jnp.zeros_like(a)
    return np.zeros(np.shape(a), dtype=jax.dtypes.float0)  # what JAX wants for integer inputs


def _core_bwd(name: str, static: tuple, array_keys: tuple, res: Any, g: Any) -> tuple:
    grads, args = res
    loss, inputs, sample_weight = _call(name, static, array_keys, args)
    spec = loss.spec
    if grads is None:
        with value_checks(False):
            grads = loss.vjp(*inputs, cotangent=g, sample_weight=sample_weight)
        grads = grads if isinstance(grads, tuple) else (grads,)
        g = None
    first = inputs[spec.inputs.index(spec.differentiable[0])]
    fixed_inputs = dict(static[0])
    out = []
    k = 0
    pos = 0
    for i, input_name in enumerate(spec.inputs):
        if i in fixed_inputs:
            if input_name in spec.differentiable:
                k += 1
            continue
        a = args[pos]
        pos += 1
        if input_name in spec.differentiable:
            gk = grads[k] if g is None else vjp(jnp, spec, g, grads[k], first, loss._resolved)
            out.append(gk.astype(a.dtype))
            k += 1
        else:
            out.append(_zero_cotangent(a))
    out.extend(_zero_cotangent(a) for a in args[pos:])
    return tuple(out)


_core.defvjp(_core_fwd, _core_bwd)


def _apply(spec: _registry.LossSpec, given: tuple[Any, ...], options: dict[str, Any]) -> Any:
    sample_weight = options.pop("sample_weight", None)
    _registry.Loss(spec, **options)  # unknown options and bad values raise here, with hints
    if len(given) != len(spec.inputs):
        raise TypeError(
            f"{spec.name} takes {len(spec.inputs)} inputs ({', '.join(spec.inputs)}); "
            f"got {len(given)}."
        )
    inputs = [jnp.asarray(x) if isinstance(x, (list, tuple, np.ndarray)) else x for x in given]
    first_i = spec.inputs.index(spec.differentiable[0])
    first = inputs[first_i]
    out_dtype = None
    if _is_array(first) and first.dtype in _HALF:
        # float32 compute (and accumulation); the cast's own derivative brings the gradient back.
        out_dtype = first.dtype
        inputs = [x.astype(jnp.float32) if _is_array(x) and x.dtype in _HALF else x
                  for x in inputs]
        first = inputs[first_i]
    if options.get("reduction", spec.defaults.get("reduction")) == "none" and _is_array(first):
        for name in spec.differentiable[1:]:
            i = spec.inputs.index(name)
            if _is_array(inputs[i]):
                # A broadcast input (gaussian_nll's var) feeds several per-element losses; one
                # element per loss, and jnp.broadcast_to's transpose sums the cotangent back.
                inputs[i] = broadcast_like(jnp, inputs[i], first)
    fixed_inputs = tuple((i, x) for i, x in enumerate(inputs) if not _is_array(x))
    arrays = [x for x in inputs if _is_array(x)]
    if sample_weight is not None:
        options["sample_weight"] = jnp.asarray(sample_weight)
    array_opts = {
        k: jnp.asarray(v) for k, v in options.items() if _is_array(v) or isinstance(v, list)
    }
    fixed_options = tuple(sorted((k, v) for k, v in options.items() if k not in array_opts))
    value = _core(
        spec.name,
        (fixed_inputs, fixed_options),
        tuple(array_opts),
        *arrays,
        *array_opts.values(),
    )
    return value if out_dtype is None else value.astype(out_dtype)


def loss_function(name: str) -> Callable[..., Any]:
    """The JAX function for catalog loss ``name``: ``f(*inputs, **options) -> jax.Array``."""
    spec = losslab.spec(name)

    def loss(*inputs: Any, **options: Any) -> Any:
        return _apply(spec, inputs, options)

    loss.__name__ = loss.__qualname__ = spec.name
    loss.__module__ = __name__
    loss.__doc__ = (
        f"{spec.summary}\n\nlosslab.jax.{spec.name}({', '.join(spec.inputs)}, **options): the "
        f"catalog loss on JAX arrays, with its closed-form gradient as a custom VJP.\n"
        f"Options (torch's names and defaults): "
        f"{', '.join(f'{k}={v!r}' for k, v in spec.defaults.items()) or 'none'}.\n\n{spec.doc}"
    )
    return loss


def _export() -> None:
    for name in losslab.available():
        if losslab.spec(name).adapters == "dedicated":
            continue  # exported below, from its own module
        globals()[name] = loss_function(name)
        __all__.append(name)


_export()

from losslab._jax_linear import linear_cross_entropy  # noqa: E402

__all__ += ["linear_cross_entropy"]
