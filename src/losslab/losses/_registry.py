"""The catalog: every loss registers here; ``losslab.get`` hands out configured ``Loss`` objects.

A loss is one pure function ``fn(*arrays, compute_grad=True, **options) -> (value, grad)``. The
gradient is that of the returned value (of the sum of the per-element losses for
``reduction="none"``); for losses with several differentiable inputs it is a tuple in argument
order. With ``compute_grad=False`` the function skips the gradient and returns ``(value, None)``.
This single entry point is what ``torch.autograd.Function`` and ``jax.custom_vjp`` adapters wrap.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from losslab.losses import _blocked
from losslab.losses._primitives import size_of
from losslab.losses._validation import REDUCTIONS, check_reduction, suggest

__all__ = ["LossSpec", "Loss", "register", "get", "spec", "available", "ALIASES"]

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
# class probabilities, "class_index" indices only.
TARGET_KINDS = (
    None, "real", "nonnegative", "unit_interval", "sign", "class", "class_index",
    "multilabel_indices", "distribution",
)
# Which input elements one per-item loss covers: one element ("elementwise"), a row along the
# class axis 1 ("class_axis", torch's (N, C, d1, ...) layout), a row along the last axis
# ("feature_axis": embeddings, multi-label rows), all of a sample's elements ("per_sample"), or a
# row along the axis named by the ``dim`` option ("distribution_axis").
LAYOUTS = ("elementwise", "class_axis", "feature_axis", "per_sample", "distribution_axis")


def _input_size(input: Any, *_: Any, **__: Any) -> float:
    return float(size_of(input))


@dataclass(frozen=True)
class LossSpec:
    """What the catalog knows about one loss.

    ``example(rng, dtype, **options)`` returns NumPy arrays in argument order, valid for the given
    options: the catalog-wide tests and ``losslab gradcheck`` draw inputs from it.
    """

    name: str
    fn: Callable[..., tuple[Any, Any]]
    task: str
    formula: str
    inputs: tuple[str, ...]
    differentiable: tuple[str, ...]
    example: Callable[..., tuple[Any, ...]]
    torch: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    reductions: tuple[str, ...] = REDUCTIONS
    input_kind: str = "real"
    target_kind: str | None = "real"
    layout: str = "elementwise"
    # Row-wise losses (each sample's terms depend on its own row only) may be evaluated in
    # cache-sized blocks on several threads (losslab.losses._blocked); ``mean_denominator(*inputs,
    # **options)`` is what reduction="mean" divides by (default: the number of input elements).
    rowwise: bool = False
    mean_denominator: Callable[..., float] = _input_size

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else self.formula


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
    differentiable: tuple[str, ...] = ("input",),
    torch: str | None = None,
    reductions: tuple[str, ...] = REDUCTIONS,
    rowwise: bool = False,
    mean_denominator: Callable[..., float] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding a loss function to the catalog under ``name``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _CATALOG:
            raise RuntimeError(f"loss {name!r} registered twice")
        sig = inspect.signature(fn)
        inputs = tuple(
            p.name
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
        defaults = {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind == p.KEYWORD_ONLY and p.name != "compute_grad"
        }
        for what, value, allowed in (
            ("input_kind", input_kind, INPUT_KINDS),
            ("target_kind", target_kind, TARGET_KINDS),
            ("layout", layout, LAYOUTS),
        ):
            if value not in allowed:
                raise RuntimeError(f"{name}: {what} {value!r} not in {allowed}")
        missing = [d for d in differentiable if d not in inputs]
        if missing:
            raise RuntimeError(f"{name}: differentiable inputs {missing} not in {inputs}")
        _CATALOG[name] = LossSpec(
            name=name,
            fn=fn,
            task=task,
            formula=formula,
            inputs=inputs,
            differentiable=tuple(differentiable),
            example=example,
            torch=torch,
            input_kind=input_kind,
            target_kind=target_kind,
            layout=layout,
            defaults=defaults,
            reductions=tuple(reductions),
            rowwise=rowwise,
            mean_denominator=mean_denominator or _input_size,
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


class Loss:
    """A catalog loss with its options fixed.

    ``loss(*inputs)`` gives the value, ``loss.grad(*inputs)`` the gradient with respect to the
    differentiable inputs (same shape and dtype as each), and ``loss.value_and_grad(*inputs)``
    both from one pass.
    """

    def __init__(self, spec: LossSpec, **options: Any) -> None:
        unknown = [k for k in options if k not in spec.defaults]
        if unknown:
            raise TypeError(
                f"{spec.name} has no option {unknown[0]!r}."
                + suggest(unknown[0], spec.defaults)
                + f" Its options: {', '.join(spec.defaults) or 'none'}."
            )
        if "reduction" in options and options["reduction"] not in spec.reductions:
            check_reduction(options["reduction"])  # raises, naming the argument
            raise ValueError(
                f"{spec.name} takes reduction in {spec.reductions}; got {options['reduction']!r}."
            )
        self.spec = spec
        self.options = dict(options)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def differentiable(self) -> tuple[str, ...]:
        return self.spec.differentiable

    def _run(self, inputs: tuple[Any, ...], compute_grad: bool) -> tuple[Any, Any]:
        if any(isinstance(a, np.ndarray) and a.dtype == np.float16 for a in inputs):
            return self._run_half(inputs, compute_grad)
        if self.spec.rowwise and _blocked.applicable(self.spec, list(inputs), self.options):
            return _blocked.value_and_grad(self.spec, list(inputs), self.options, compute_grad)
        value, grad = self.spec.fn(*inputs, compute_grad=compute_grad, **self.options)
        # NumPy turns 0-d results into scalars; the contract is arrays.
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if isinstance(grad, tuple):
            grad = tuple(np.asarray(g) if isinstance(g, np.generic) else g for g in grad)
        elif isinstance(grad, np.generic):
            grad = np.asarray(grad)
        return value, grad

    def _run_half(self, inputs: tuple[Any, ...], compute_grad: bool) -> tuple[Any, Any]:
        """float16 NumPy inputs: computed in float32 and rounded back once, as torch computes its
        half-precision losses (and as losslab.torch and losslab.jax do). float16's range (65504)
        and precision would otherwise overflow the closed forms' intermediates (log_cosh's
        exp(2|d|) beyond |d| ~ 2.8) and the sums of the mean."""
        up = tuple(
            a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == np.float16 else a
            for a in inputs
        )
        value, grad = self._run(up, compute_grad)

        def down(a: Any, like: Any) -> Any:
            half = getattr(like, "dtype", None) == np.float16
            return a.astype(np.float16) if half and a is not None else a

        first = inputs[self.spec.inputs.index(self.spec.differentiable[0])]
        value = down(value, first)
        if isinstance(grad, tuple):
            grad = tuple(
                down(g, inputs[self.spec.inputs.index(n)])
                for g, n in zip(grad, self.spec.differentiable)
            )
        elif grad is not None:
            grad = down(grad, first)
        return value, grad

    def __call__(self, *inputs: Any) -> Any:
        return self._run(inputs, False)[0]

    def grad(self, *inputs: Any) -> Any:
        return self._run(inputs, True)[1]

    def value_and_grad(self, *inputs: Any) -> tuple[Any, Any]:
        return self._run(inputs, True)

    def example(self, rng: Any, dtype: Any = "float64") -> tuple[Any, ...]:
        return self.spec.example(rng, dtype, **self.options)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"losslab.get({self.name!r}{', ' if opts else ''}{opts})"


def get(name: str, **options: Any) -> Loss:
    """A catalog loss configured with ``options`` (unknown names and options raise with hints)."""
    return Loss(spec(name), **options)
