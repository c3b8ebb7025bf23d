"""The catalog: every loss registers here; ``losslab.get`` hands out configured ``Loss`` objects.

The contract between a loss and the catalog, in three parts:

1. **A spec, declared once** (``register(...)``): what the loss's inputs hold (``input_kind``,
   ``target_kind``), which input elements one per-item loss covers (``layout``), the constraint
   of every option (``options``, see ``losslab.losses._constraints``), its torch name, whether
   its Hessian can be negative. The trainer, the command line and the adapters read these facts
   from the spec; nothing outside the catalog keeps lists of loss names.
2. **A plain formula**: ``fn(xp, *inputs, **options) -> Items``, the per-item losses and a
   closure giving the gradient of their weighted sum (see ``Items``). It receives inputs already
   checked against the declared kinds (a probability input is in [0, 1], a {-1, +1} target
   holds only -1 and +1, a real target has the input's dtype) and option values already checked
   against their constraints, with option arrays in the input's namespace and dtype.
3. **One reducer**, here: ``mean``/``sum``/``none`` (and ``batchmean`` where declared),
   ``sample_weight``, the mean's denominator, float16 computed in float32, and the 0-d array
   contract live in ``Loss`` and nowhere else.

``sample_weight`` follows Keras: per-item weights of shape (N,) (laid along the batch axis) or
broadcastable to the per-item losses; ``"none"`` returns the weighted per-item losses, ``"sum"``
their sum, and ``"mean"`` divides that sum by the same denominator as without weights (the number
of items, or the loss's own torch-defined denominator such as the sum of class weights), NOT by
the sum of the sample weights. For a mean over the weights, use
``losslab.get(name, reduction="sum")(x, t, sample_weight=w) / w.sum()``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from losslab.losses import _blocked
from losslab.losses._constraints import Choice, Constraint, check_option
from losslab.losses._layout import LAYOUTS, item_count, items_shape, lay_over
from losslab.losses._primitives import namespace, namespace_name, shape_of, to_namespace
from losslab.losses._validation import (
    REDUCTIONS,
    check_floating,
    check_input_kinds,
    suggest,
)

__all__ = [
    "Items", "LossSpec", "Loss", "register", "get", "spec", "available", "ALIASES",
    "INPUT_KINDS", "TARGET_KINDS", "LAYOUTS", "HESSIANS", "validate_options",
]

# Common names people type for catalog losses.
ALIASES = {
    "mae": "l1",
    "l2": "mse",
    "mean_squared_error": "mse",
    "mean_absolute_error": "l1",
    "pinball": "quantile",
    "iou": "jaccard",
    "binary_cross_entropy": "bce",
    "binary_cross_entropy_with_logits": "bce_with_logits",
    "logcosh": "log_cosh",
    "kl": "kl_div",
    "js": "js_div",
    "sigmoid_focal": "focal",
}

# What a loss's first differentiable input holds.
INPUT_KINDS = ("real", "logits", "probabilities", "log_probabilities", "scores")
# What its target holds (None: no target, e.g. triplet_margin). "class" accepts class indices or
# class probabilities, "class_index" indices only; "distribution" is probabilities (or
# log-probabilities where the loss's ``log_target`` option says so); "group" is integer labels of
# any value, samples with equal labels forming the positive pairs (supervised contrastive losses);
# "segmentation" is a mask in [0, 1] of the input's shape, or class indices / class probabilities
# where the loss's ``mode`` option is "multiclass" (see ``_validation.check_input_kinds``).
TARGET_KINDS = (
    None, "real", "nonnegative", "unit_interval", "sign", "class", "class_index",
    "multilabel_indices", "distribution", "group", "segmentation",
)
# The Hessian of the summed per-item losses w.r.t. the first input: positive semi-definite
# ("nonnegative": convex losses), zero almost everywhere ("zero": piecewise linear losses such
# as l1, quantile, hinge), possibly negative ("indefinite": focal, non-convex robust losses), or
# not provided (None).
HESSIANS = (None, "nonnegative", "zero", "indefinite")


@dataclass(frozen=True)
class Items:
    """What a loss function returns: the per-item losses and their derivatives, lazily.

    ``values``: the per-item losses (for ``layout="elementwise"`` one per input element, for
    ``"class_axis"`` one per sample and position, ...), or a function of no arguments returning
    them, where they cost work the derivatives do not share (gradient boosting asks for the
    gradient and Hessian only); ``Items.per_item()`` gives them either way.

    ``grad(w)``: the gradient of ``sum_i w_i values_i`` w.r.t. the differentiable inputs (a tuple
    when there are several), where ``w`` is a Python float (every item weighted alike) or an array
    laid over the first differentiable input (items' shape with size-1 axes where the layout
    reduces: the per-item weights broadcast against the input). The reducer passes the mean's
    ``1/denominator``, sample weights or an autograd cotangent through ``w``, so a formula can fold
    them into its coefficients (``(2.0 * w) * d`` costs one pass when ``w`` is a number).

    ``denominator``: what ``reduction="mean"`` divides the sum by, when it is not the number of
    items (torch's weighted means: the sum of class weights over non-ignored targets, ...).

    ``mean_weights``: per-item coefficients of ``reduction="mean"`` where the mean is not one
    plain denominator: the value is ``sum_i mean_weights_i * values_i`` (torch's ``ctc_loss``
    divides each loss by its target length, then averages over the batch). A batch without items
    still gives NaN, as a plain mean does.

    ``hess(w)``: the diagonal of the Hessian of ``sum_i w_i values_i`` w.r.t. the first
    differentiable input; ``hvp(w, v)``: that Hessian times ``v`` (an array of the input's shape),
    needed only where an item couples several input elements (for ``layout="elementwise"`` the
    Hessian is its diagonal and ``hess(w) * v`` serves).

    ``fisher(w)`` (optional): the diagonal of the *expected* Hessian of the same sum, the
    expectation taken over targets drawn from the distribution the input predicts (Fisher
    scoring; Gauss-Newton for a least-squares loss on a transformed scale). Only losses that are
    a negative log-likelihood, or a squared residual, of a model the input parametrises give it,
    and only where it differs from ``hess`` (a canonical link's Hessian does not depend on the
    target, so there the two are equal and ``hess`` serves). Gradient boosting uses it where the
    exact Hessian can be negative (``losslab.boosting``'s ``hessian="fisher"``).
    """

    values: Any
    grad: Callable[[Any], Any]
    denominator: Any = None
    hess: Callable[[Any], Any] | None = None
    hvp: Callable[[Any, Any], Any] | None = None
    mean_weights: Any = None
    fisher: Callable[[Any], Any] | None = None

    def per_item(self) -> Any:
        """The per-item losses (``values``, called if it is a function)."""
        return self.values() if callable(self.values) else self.values


def _no_example(*_: Any, **__: Any) -> tuple[Any, ...]:  # pragma: no cover
    raise NotImplementedError


@dataclass(frozen=True)
class LossSpec:
    """What the catalog knows about one loss (declared in its ``register`` call).

    ``example(rng, dtype, **options)`` returns NumPy arrays in argument order, valid for the given
    options: the catalog-wide tests and ``losslab gradcheck`` draw inputs from it.
    ``defaults`` are the options' defaults (``reduction`` included) and ``constraints`` what each
    option accepts. ``torch`` is the name of torch's functional equivalent (None when torch has
    none) and ``module`` the name of the ``nn.Module`` class the adapters export (torch's own
    spelling where torch has the loss, ``CamelCase + "Loss"`` otherwise). ``rowwise`` losses
    (each sample's terms depend on its own row only) may be evaluated in cache-sized blocks on
    several threads (``losses/_blocked.py``);
    ``mean_denominator(*inputs, **options)`` is then what ``reduction="mean"`` divides by, known
    before the blocks run (default: the number of items). ``couples_items`` says that an input
    element may feed several items (a key in InfoNCE is every query's negative), so a per-item
    cotangent cannot be laid over a precomputed gradient: adapters call ``Items.grad`` with it.
    ``classes`` names the input whose axis 0 enumerates the classes, where that is not the first
    input's class axis (arcface's class-weight matrix): class-index targets are checked against it.
    ``shared`` names the inputs every item uses (that matrix, a bias), which have no batch axis.
    ``namespaces`` lists the array libraries the formula runs on where it is not every Array API
    one (a formula that writes into reused buffers needs NumPy's or torch's ``out=``); others get
    a TypeError. ``adapters="dedicated"``: ``losslab.torch`` and ``losslab.jax`` export their own
    implementation of the loss (with options and outputs the generic wrapper cannot carry)
    instead of wrapping this formula.
    """

    name: str
    fn: Callable[..., Items]
    task: str
    formula: str
    inputs: tuple[str, ...]
    differentiable: tuple[str, ...]
    example: Callable[..., tuple[Any, ...]] = _no_example
    input_kind: str = "real"
    target_kind: str | None = "real"
    layout: str = "elementwise"
    torch: str | None = None
    module: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, Constraint] = field(default_factory=dict)
    reductions: tuple[str, ...] = REDUCTIONS
    rowwise: bool = False
    mean_denominator: Callable[..., float] | None = None
    hessian: str | None = None
    couples_items: bool = False
    classes: str | None = None
    shared: tuple[str, ...] = ()
    namespaces: tuple[str, ...] | None = None
    adapters: str = "generic"

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else self.formula

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(self.defaults)


_CATALOG: dict[str, LossSpec] = {}


def register(
    name: str,
    *,
    task: str,
    formula: str,
    example: Callable[..., tuple[Any, ...]],
    input_kind: str,
    target_kind: str | None,
    layout: str,
    options: dict[str, Constraint] | None = None,
    differentiable: tuple[str, ...] = ("input",),
    torch: str | None = None,
    module: str | None = None,
    reductions: tuple[str, ...] = REDUCTIONS,
    rowwise: bool = False,
    mean_denominator: Callable[..., float] | None = None,
    hessian: str | None = None,
    couples_items: bool = False,
    classes: str | None = None,
    shared: tuple[str, ...] = (),
    namespaces: tuple[str, ...] | None = None,
    adapters: str = "generic",
) -> Callable[[Callable[..., Items]], Callable[..., Items]]:
    """Decorator adding a loss function ``fn(xp, *inputs, **options) -> Items`` to the catalog.

    The inputs are ``fn``'s positional parameters after ``xp``; its keyword-only parameters are
    the options, each with a default and a constraint in ``options``. ``reduction`` is added by
    the catalog (with ``reductions`` as its choices).
    """
    constraints = dict(options or {})

    def deco(fn: Callable[..., Items]) -> Callable[..., Items]:
        if name in _CATALOG:
            raise RuntimeError(f"loss {name!r} registered twice")
        params = list(inspect.signature(fn).parameters.values())
        if not params or params[0].name != "xp":
            raise RuntimeError(f"{name}: the loss function's first parameter must be xp")
        inputs = tuple(
            p.name for p in params[1:] if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
        keywords = {p.name: p.default for p in params if p.kind == p.KEYWORD_ONLY}
        for what, value, allowed in (
            ("input_kind", input_kind, INPUT_KINDS),
            ("target_kind", target_kind, TARGET_KINDS),
            ("layout", layout, LAYOUTS),
            ("hessian", hessian, HESSIANS),
        ):
            if value not in allowed:
                raise RuntimeError(f"{name}: {what} {value!r} not in {allowed}")
        if set(keywords) != set(constraints):
            raise RuntimeError(
                f"{name}: options {sorted(keywords)} and constraints {sorted(constraints)} differ"
            )
        if target_kind is not None and "target" not in inputs:
            raise RuntimeError(f"{name}: target_kind {target_kind!r} but no input named target")
        if classes is not None and classes not in inputs:
            raise RuntimeError(f"{name}: classes input {classes!r} not in {inputs}")
        missing = [d for d in differentiable if d not in inputs]
        if missing:
            raise RuntimeError(f"{name}: differentiable inputs {missing} not in {inputs}")
        if "reduction" in keywords:
            raise RuntimeError(f"{name}: reduction belongs to the catalog, not the formula")
        defaults = {**keywords, "reduction": "mean"}
        _CATALOG[name] = LossSpec(
            name=name,
            fn=fn,
            task=task,
            formula=formula,
            inputs=inputs,
            differentiable=tuple(differentiable),
            example=example,
            input_kind=input_kind,
            target_kind=target_kind,
            layout=layout,
            torch=torch,
            module=module or "".join(w[:1].upper() + w[1:] for w in name.split("_")) + "Loss",
            defaults=defaults,
            constraints={**constraints, "reduction": Choice(*reductions)},
            reductions=tuple(reductions),
            rowwise=rowwise,
            mean_denominator=mean_denominator,
            hessian=hessian,
            couples_items=couples_items,
            classes=classes,
            shared=tuple(shared) + ((classes,) if classes and classes not in shared else ()),
            namespaces=None if namespaces is None else tuple(namespaces),
            adapters=adapters,
        )
        return fn

    return deco


def _resolve(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"loss name must be a string; got {type(name).__name__}.")
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in _CATALOG:
        raise ValueError(
            f"unknown loss {name!r}." + suggest(key, list(_CATALOG) + list(ALIASES))
            + " See losslab.available() for the catalog."
        )
    return key


def spec(name: str) -> LossSpec:
    """The catalog entry for ``name`` (aliases such as 'mae' accepted)."""
    return _CATALOG[_resolve(name)]


def available() -> list[str]:
    """The names in the catalog, sorted."""
    return sorted(_CATALOG)


def validate_options(spec: LossSpec, options: dict[str, Any]) -> dict[str, Any]:
    """Every option name known and every value within its constraint; returns the full option
    set (defaults filled in) in canonical form. Raises TypeError/ValueError naming the option."""
    unknown = [k for k in options if k not in spec.defaults]
    if unknown:
        raise TypeError(
            f"{spec.name} has no option {unknown[0]!r}."
            + suggest(unknown[0], spec.defaults)
            + f" Its options: {', '.join(spec.defaults)}."
        )
    resolved = dict(spec.defaults)
    for key, value in options.items():
        resolved[key] = check_option(spec.name, key, spec.constraints[key], value)
    return resolved


@dataclass
class _Prepared:
    """Inputs checked against the spec, ready for the formula."""

    xp: Any
    arrays: list[Any]
    options: dict[str, Any]  # the formula's options (no reduction), arrays in xp
    reduction: str
    first: Any  # the first differentiable input
    sample_weight: Any  # laid over ``first``, or None
    item_weight: Any  # the same weights shaped to broadcast against the per-item losses


class Loss:
    """A catalog loss with its options fixed (and checked: bad values raise at construction).

    ``loss(*inputs)`` gives the value, ``loss.grad(*inputs)`` the gradient of that value with
    respect to the differentiable inputs (same shape and dtype as each; a tuple when there are
    several), ``loss.value_and_grad(*inputs)`` both from one pass. Every method takes
    ``sample_weight=`` (see the module docstring). With ``reduction="none"`` the gradient is that
    of the sum of the (weighted) per-item losses, what torch's ``backward`` with a tensor of ones
    gives. ``hess``, ``grad_and_hess`` and ``hvp`` give second derivatives where the loss
    declares them.
    """

    def __init__(self, spec: LossSpec, **options: Any) -> None:
        self.spec = spec
        self.options = dict(options)
        self._resolved = validate_options(spec, options)
        # Fixed from here on: the formula's options, and which of them are arrays to convert to
        # each call's namespace (the rest pass as they are, with no per-call inspection).
        self._options = {k: v for k, v in self._resolved.items() if k != "reduction"}
        self._array_options = tuple(k for k, v in self._options.items() if _is_array_option(v))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def differentiable(self) -> tuple[str, ...]:
        return self.spec.differentiable

    @property
    def reduction(self) -> str:
        return str(self._resolved["reduction"])

    # -- preparation -----------------------------------------------------------------------

    def _prepare(self, inputs: tuple[Any, ...], sample_weight: Any) -> _Prepared:
        spec = self.spec
        if len(inputs) != len(spec.inputs):
            raise TypeError(
                f"{spec.name} takes {len(spec.inputs)} inputs ({', '.join(spec.inputs)}); "
                f"got {len(inputs)}."
            )
        xp, arrays = namespace(*inputs)
        if spec.namespaces is not None and namespace_name(xp) not in spec.namespaces:
            raise TypeError(
                f"{spec.name} runs on {' and '.join(spec.namespaces)} arrays; got "
                f"{namespace_name(xp)} arrays"
                + ("; use losslab.jax" if spec.adapters == "dedicated" else "") + "."
            )
        first_i = spec.inputs.index(spec.differentiable[0])
        first = arrays[first_i]
        check_floating(xp, first, spec.differentiable[0])
        options = dict(self._options)
        for key in self._array_options:
            options[key] = to_namespace(xp, options[key], first, first.dtype)
        arrays = check_input_kinds(xp, spec, arrays, options)
        first = arrays[first_i]
        sw = sw_items = None
        if sample_weight is not None:
            sw_items = _item_weights(xp, spec, sample_weight, first, options)
            sw = lay_over(xp, spec, sw_items, first, options)
        return _Prepared(xp, arrays, options, self.reduction, first, sw, sw_items)

    # -- evaluation --------------------------------------------------------------------------

    def _run(
        self, inputs: tuple[Any, ...], sample_weight: Any, want_grad: bool
    ) -> tuple[Any, Any]:
        """``(value, grad or None)``: the one reducer."""
        half = _half_inputs(inputs, sample_weight)
        if half is not None:
            return self._run_half(inputs, sample_weight, want_grad, half)
        p = self._prepare(inputs, sample_weight)
        if _blocked.applicable(self.spec, p.arrays, p.options, p.sample_weight):
            denominator = self._block_denominator(p)
            weights = None if p.sample_weight is None else (p.sample_weight, p.item_weight)
            return _blocked.evaluate(
                self.spec, p.xp, p.arrays, p.options, p.reduction, weights, denominator, want_grad
            )
        items = self.spec.fn(p.xp, *p.arrays, **p.options)
        value, w = _reduce(p, self.spec, items)
        if not want_grad:
            return value, None
        return value, _as_arrays(p.xp, items.grad(w))

    def _block_denominator(self, p: _Prepared) -> Any:
        if p.reduction != "mean":
            return None
        if self.spec.mean_denominator is not None:
            options = {k: _blocked.host(v) for k, v in p.options.items()}
            return float(self.spec.mean_denominator(*map(_blocked.host, p.arrays), **options))
        return float(item_count(self.spec, p.first, p.options))

    def _run_half(
        self, inputs: tuple[Any, ...], sample_weight: Any, want_grad: bool, up: tuple[Any, ...]
    ) -> tuple[Any, Any]:
        """float16 NumPy inputs: computed in float32 and rounded back once, as torch computes its
        half-precision losses (and as losslab.torch and losslab.jax do). float16's range (65504)
        and precision would otherwise overflow the closed forms' intermediates (log_cosh's
        exp(2|d|) beyond |d| ~ 2.8) and the sums of the mean."""
        sw = sample_weight
        if isinstance(sw, np.ndarray) and sw.dtype == np.float16:
            sw = sw.astype(np.float32)
        value, grad = self._run(up, sw, want_grad)
        first = inputs[self.spec.inputs.index(self.spec.differentiable[0])]
        value = _down(value, first)
        if isinstance(grad, tuple):
            grad = tuple(
                _down(g, inputs[self.spec.inputs.index(n)])
                for g, n in zip(grad, self.spec.differentiable)
            )
        elif grad is not None:
            grad = _down(grad, first)
        return value, grad

    def _items(self, inputs: tuple[Any, ...], sample_weight: Any) -> tuple[_Prepared, Items, Any]:
        """The formula's ``Items`` on prepared inputs, with the reduction's weights ``w``."""
        p = self._prepare(inputs, sample_weight)
        items = self.spec.fn(p.xp, *p.arrays, **p.options)
        value, w = _reduce(p, self.spec, items)
        return p, items, (value, w)

    def __call__(self, *inputs: Any, sample_weight: Any = None) -> Any:
        return self._run(inputs, sample_weight, False)[0]

    def grad(self, *inputs: Any, sample_weight: Any = None) -> Any:
        return self._run(inputs, sample_weight, True)[1]

    def value_and_grad(self, *inputs: Any, sample_weight: Any = None) -> tuple[Any, Any]:
        return self._run(inputs, sample_weight, True)

    def vjp(self, *inputs: Any, cotangent: Any, sample_weight: Any = None) -> Any:
        """The gradient of ``sum(cotangent * loss(*inputs))``: for ``reduction="none"`` a
        cotangent of the per-item losses' shape, else a scalar (what an autograd system's
        backward pass asks for)."""
        p, items, (_, w) = self._items(inputs, sample_weight)
        g = cotangent
        if p.reduction == "none":
            g = lay_over(p.xp, self.spec, _as_namespace(p.xp, g, p.first), p.first, p.options)
        return _as_arrays(p.xp, items.grad(_times(w, g)))

    # -- second order ----------------------------------------------------------------------

    def _second(self, inputs: tuple[Any, ...], sample_weight: Any) -> tuple[_Prepared, Items, Any]:
        self._check_second()
        return self._items(inputs, sample_weight)

    def _check_second(self) -> None:
        if self.spec.hessian is None:
            raise NotImplementedError(
                f"{self.spec.name} does not provide second derivatives (its gradient is not "
                f"piecewise differentiable, or they are not derived yet)."
            )

    def hess(self, *inputs: Any, sample_weight: Any = None) -> Any:
        """The diagonal of the Hessian of the loss's value (of the sum for ``"none"``) w.r.t.
        the first differentiable input: same shape and dtype."""
        p, items, (_, w) = self._second(inputs, sample_weight)
        return _as_arrays(p.xp, _hessian(items)(w))

    def grad_and_hess(self, *inputs: Any, sample_weight: Any = None) -> tuple[Any, Any]:
        """``(grad, hess)`` from one evaluation of the formula (block by block on large NumPy
        inputs of row-wise losses, like ``value_and_grad``)."""
        return self._grad_and_second(inputs, sample_weight, "hess")

    def fisher(self, *inputs: Any, sample_weight: Any = None) -> Any:
        """The diagonal of the expected Hessian (``Items.fisher``) of the loss's value w.r.t. the
        first differentiable input; NotImplementedError where the loss defines none."""
        return self._grad_and_second(inputs, sample_weight, "fisher", want_grad=False)[1]

    def grad_and_fisher(self, *inputs: Any, sample_weight: Any = None) -> tuple[Any, Any]:
        """``(grad, fisher)`` from one evaluation of the formula."""
        return self._grad_and_second(inputs, sample_weight, "fisher")

    def _grad_and_second(
        self, inputs: tuple[Any, ...], sample_weight: Any, which: str, want_grad: bool = True
    ) -> tuple[Any, Any]:
        """``(grad or None, second)``: ``which`` names the ``Items`` closure giving the second
        derivative ("hess" or "fisher")."""
        self._check_second()
        p = self._prepare(inputs, sample_weight)
        if want_grad and _blocked.applicable(self.spec, p.arrays, p.options, p.sample_weight):
            weights = None if p.sample_weight is None else (p.sample_weight, p.item_weight)
            return _blocked.second_order(
                self.spec, p.xp, p.arrays, p.options, p.reduction, weights,
                self._block_denominator(p), which,
            )
        items = self.spec.fn(p.xp, *p.arrays, **p.options)
        w = _weights(p, self.spec, items)
        second = getattr(items, which)
        if second is None:
            raise NotImplementedError(
                f"{self.spec.name} defines no expected Hessian (Items.fisher) for options "
                f"{self.options or 'at their defaults'}."
            )
        # The second derivative first: a gradient may be built in a buffer it reads (SoftmaxPass).
        out = _as_arrays(p.xp, second(w))
        return (_as_arrays(p.xp, items.grad(w)) if want_grad else None), out

    def hvp(self, *inputs: Any, v: Any, sample_weight: Any = None) -> Any:
        """The exact Hessian of the loss's value w.r.t. the first differentiable input, times
        ``v`` (an array of that input's shape)."""
        p, items, (_, w) = self._second(inputs, sample_weight)
        v = _as_namespace(p.xp, v, p.first)
        if items.hvp is None:
            # Each item depends on one element of the input: the Hessian is its diagonal.
            return _as_arrays(p.xp, _hessian(items)(w) * v)
        return _as_arrays(p.xp, items.hvp(w, v))

    def example(self, rng: Any, dtype: Any = "float64") -> tuple[Any, ...]:
        return self.spec.example(rng, dtype, **self.options)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"losslab.get({self.name!r}{', ' if opts else ''}{opts})"


def get(name: str, **options: Any) -> Loss:
    """A catalog loss configured with ``options``.

    Unknown names and options raise with hints; every option value is checked against its
    declared constraint here, so a bad value fails now, not at the first call.
    """
    return Loss(spec(name), **options)


# -- the reducer's pieces -------------------------------------------------------------------


def _reduce(p: _Prepared, spec: LossSpec, items: Items) -> tuple[Any, Any]:
    """``(value, w)``: the reduced value and the weight of each item in it, laid over the first
    differentiable input (a Python float when every item weighs the same)."""
    xp, sw, reduction = p.xp, p.sample_weight, p.reduction
    values = items.per_item()
    if reduction == "none":
        out = values if sw is None else values * p.item_weight
        return _as_array(xp, out), (1.0 if sw is None else sw)
    total = xp.sum(values if sw is None else values * p.item_weight)
    if reduction == "sum":
        return _as_array(xp, total), (1.0 if sw is None else sw)
    if reduction == "mean" and items.mean_weights is not None:
        return _weighted_mean(p, spec, items, values)
    d, inv = _mean_inverse(p, spec, items)
    if isinstance(d, float):
        value = total * inv if d else total * math.nan
    else:
        # An array denominator (weighted means) may be 0 (every target ignored): NaN value and
        # a zero gradient, as torch, without a division warning.
        value = xp.where(d > 0, total * inv, xp.full_like(inv, math.nan))
    return _as_array(xp, value), (inv if sw is None else sw * inv)


def _weights(p: _Prepared, spec: LossSpec, items: Items) -> Any:
    """The ``w`` of ``_reduce`` without the value (second derivatives need only the weights)."""
    sw = p.sample_weight
    if p.reduction in ("none", "sum"):
        return 1.0 if sw is None else sw
    if p.reduction == "mean" and items.mean_weights is not None:
        return _weighted_mean(p, spec, items, items.per_item())[1]
    inv = _mean_inverse(p, spec, items)[1]
    return inv if sw is None else sw * inv


def _mean_inverse(p: _Prepared, spec: LossSpec, items: Items) -> tuple[Any, Any]:
    """``(d, 1/d)``: what a mean divides by, and its inverse (0 where ``d`` is 0)."""
    xp = p.xp
    if p.reduction == "batchmean":
        d: Any = float(p.first.shape[0]) if p.first.ndim > 0 else 1.0
    elif items.denominator is not None:
        d = items.denominator
    else:
        d = float(item_count(spec, p.first, p.options))
    if isinstance(d, float):
        return d, (1.0 / d if d else 0.0)
    positive = d > 0
    inv = 1.0 / xp.where(positive, d, xp.ones_like(d))
    return d, xp.where(positive, inv, xp.zeros_like(inv))


def _weighted_mean(p: _Prepared, spec: LossSpec, items: Items, values: Any) -> tuple[Any, Any]:
    """``reduction="mean"`` with per-item coefficients (``Items.mean_weights``): the value
    ``sum_i c_i sw_i values_i`` and the weights ``c_i sw_i`` laid over the first input; NaN and
    zero weights for a batch without items."""
    xp = p.xp
    c = items.mean_weights
    if p.item_weight is not None:
        c = c * p.item_weight
    if item_count(spec, p.first, p.options) == 0:
        return _as_array(xp, xp.sum(values) * math.nan), 0.0
    return _as_array(xp, xp.sum(values * c)), lay_over(xp, spec, c, p.first, p.options)


def _item_weights(xp: Any, spec: LossSpec, sw: Any, first: Any, options: dict) -> Any:
    """Sample weights as an array with the per-item losses' number of axes, broadcastable to
    them. Shape (N,) weighs whole samples (laid along the batch axis, Keras's convention); any
    other shape must broadcast to the per-item losses' shape without enlarging it."""
    items = items_shape(spec, first, options)
    w = _as_namespace(xp, sw, first)
    if not xp.isdtype(w.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"sample_weight must hold real numbers; got dtype {w.dtype}.")
    ws = shape_of(w)
    if len(ws) == 1 and len(items) > 1 and ws[0] == items[0]:
        w = xp.reshape(w, ws + (1,) * (len(items) - 1))
        ws = shape_of(w)
    if len(ws) > len(items) or any(
        d not in (1, t) for d, t in zip(reversed(ws), reversed(items))
    ):
        raise ValueError(
            f"sample_weight of shape {shape_of(sw)} does not fit the per-item losses of shape "
            f"{items}: give one weight per sample, shape ({items[0] if items else ''},), or an "
            f"array broadcastable to {items}."
        )
    return xp.reshape(w, (1,) * (len(items) - len(ws)) + ws)


def _hessian(items: Items) -> Callable[[Any], Any]:
    if items.hess is None:
        raise NotImplementedError("this evaluation of the loss gives no Hessian")
    return items.hess


def _is_array_option(value: Any) -> bool:
    return isinstance(value, list | tuple) or hasattr(value, "shape") and hasattr(value, "dtype")


def _as_namespace(xp: Any, a: Any, like: Any) -> Any:
    return to_namespace(xp, a, like, like.dtype)


def _times(w: Any, g: Any) -> Any:
    if isinstance(w, float) and w == 1.0:
        return g
    return w * g


def _as_array(xp: Any, a: Any) -> Any:
    """NumPy turns 0-d results into scalars; the contract is arrays."""
    return np.asarray(a) if isinstance(a, np.generic) else a


def _as_arrays(xp: Any, g: Any) -> Any:
    if isinstance(g, tuple):
        return tuple(_as_array(xp, a) for a in g)
    return _as_array(xp, g)


def _half_inputs(inputs: tuple[Any, ...], sample_weight: Any) -> tuple[Any, ...] | None:
    if not any(isinstance(a, np.ndarray) and a.dtype == np.float16 for a in inputs):
        return None
    return tuple(
        a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == np.float16 else a
        for a in inputs
    )


def _down(a: Any, like: Any) -> Any:
    half = getattr(like, "dtype", None) == np.float16
    return a.astype(np.float16) if half and a is not None else a

