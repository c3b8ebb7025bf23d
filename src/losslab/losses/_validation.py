"""Input checks shared by every loss.

Each check names the argument and says what was expected, so a user never meets a bare NumPy
broadcast error or, worse, a silently wrong number. Shape and dtype checks are free; checks that
must read values (label ranges, probabilities in [0, 1]) can be switched off with
``value_checks(False)`` by callers that validate elsewhere, e.g. a GPU adapter that must not
synchronise with the host.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
from collections.abc import Iterable, Iterator
from typing import Any

from losslab.losses._primitives import is_floating, is_integral, shape_of, size_of, within

REDUCTIONS = ("mean", "sum", "none")

_VALUE_CHECKS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "losslab_value_checks", default=True
)


@contextlib.contextmanager
def value_checks(enabled: bool) -> Iterator[None]:
    """Turn the checks that read array values on or off within a ``with`` block."""
    token = _VALUE_CHECKS.set(bool(enabled))
    try:
        yield
    finally:
        _VALUE_CHECKS.reset(token)


def value_checks_enabled() -> bool:
    return _VALUE_CHECKS.get()


def suggest(name: str, choices: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the closest choices, or '' when nothing is close."""
    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.5)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def check_floating(xp: Any, x: Any, name: str) -> None:
    if not is_floating(xp, x):
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64); got dtype {x.dtype}. "
            f"Convert it, e.g. {name}.astype('float32')."
        )


def check_integer_labels(xp: Any, x: Any, name: str) -> None:
    if not is_integral(xp, x):
        raise TypeError(f"{name} must hold integer class indices; got dtype {x.dtype}.")


def check_same_shape(a: Any, b: Any, name_a: str, name_b: str) -> None:
    if shape_of(a) != shape_of(b):
        raise ValueError(
            f"{name_b} must have the same shape as {name_a} {shape_of(a)}; got {shape_of(b)}."
        )


def check_broadcastable(x: Any, to_shape: tuple[int, ...], name: str, to_name: str) -> None:
    """``x`` must broadcast to ``to_shape`` without changing it."""
    s = shape_of(x)
    if len(s) > len(to_shape) or any(
        d not in (1, t) for d, t in zip(reversed(s), reversed(to_shape))
    ):
        raise ValueError(
            f"{name} of shape {s} does not broadcast to the shape of {to_name} {to_shape}."
        )


def check_ndim(x: Any, allowed: Iterable[int], name: str, what: str = "") -> None:
    allowed = tuple(allowed)
    if x.ndim not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise ValueError(
            f"{name} must have {want} dimensions{' ' + what if what else ''}; "
            f"got shape {shape_of(x)}."
        )


def check_label_range(
    xp: Any, labels: Any, n_classes: int, name: str, ignore_index: int | None = None
) -> None:
    """Labels must lie in [0, n_classes), except those equal to ``ignore_index``."""
    if not value_checks_enabled():
        return
    valid = (labels >= 0) & (labels < n_classes)
    if ignore_index is not None:
        valid = valid | (labels == ignore_index)
    if not bool(xp.all(valid)):
        bad = labels[~valid]
        extra = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
        raise ValueError(
            f"{name} holds class labels outside [0, {n_classes}){extra}: "
            f"found {int(bad[0])}."
        )


def check_in_range(
    xp: Any, x: Any, name: str, low: float | None, high: float | None, what: str = ""
) -> None:
    """All values within [low, high] (NaN fails too)."""
    if not value_checks_enabled() or size_of(x) == 0:
        return
    if not within(xp, x, low, high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(
            f"{name} must lie in [{lo}, {hi}]{' (' + what + ')' if what else ''}; "
            f"found a value outside."
        )


def check_signs(xp: Any, target: Any, name: str = "target") -> None:
    """Labels must be -1 or +1 (a 0/1 label would silently give a constant loss)."""
    if not value_checks_enabled():
        return
    ok = (target == 1) | (target == -1)
    if not bool(xp.all(ok)):
        bad = target[~ok]
        raise ValueError(
            f"{name} must hold labels -1 or +1 (not 0/1, not soft targets: convert 0/1 labels "
            f"with 2 * y - 1); found {float(bad[0])!r}."
        )


def check_same_dtype(a: Any, b: Any, name_a: str, name_b: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(
            f"{name_b} must have the same dtype as {name_a} ({a.dtype}); got {b.dtype}."
        )


# Slices of a "distribution" target along a distribution axis must sum to 1 within this: loose
# enough for float32 round-off and float32-made targets cast to float64.
_SUM_TOL = 1e-3


def check_input_kinds(xp: Any, spec: Any, arrays: list[Any], options: dict[str, Any]) -> list[Any]:
    """Check the inputs against the spec's declared kinds; returns them with real-valued targets
    cast to the first input's dtype (dtype in = dtype out).

    Declared kinds are promises the formula relies on: a "probabilities" input lies in [0, 1]
    (unless the loss's ``from_logits`` option is set: then it holds logits); targets are real
    ("real"), >= 0 ("nonnegative"), in [0, 1] ("unit_interval"), -1 or +1 ("sign"), class
    indices in [0, C) or ``ignore_index`` ("class_index"; "class" also takes class
    probabilities), class indices in [-1, C) ("multilabel_indices"), probabilities
    ("distribution"; log-probabilities where ``log_target`` is set; along a distribution axis,
    each slice sums to 1), integer group labels of any value ("group"), or a segmentation target
    ("segmentation", see ``segmentation_target``). Class indices are checked against the classes
    of the input ``spec.classes`` names, where a spec names one. Checks that read values honour
    ``value_checks(False)``.
    """
    arrays = list(arrays)
    names = spec.inputs
    first_name = spec.differentiable[0]
    first = arrays[names.index(first_name)]
    for name in spec.differentiable[1:]:
        a = arrays[names.index(name)]
        if hasattr(a, "dtype"):
            check_floating(xp, a, name)
    if spec.layout == "class_axis" and (first.ndim == 0 or first.shape[first.ndim > 1] < 1):
        raise ValueError(
            f"{first_name} must have shape (C,), (N, C) or (N, C, d1, ..., dk) with C >= 1 "
            f"classes on axis 1 (axis 0 when unbatched); got shape {shape_of(first)}."
        )
    if spec.input_kind == "probabilities" and not options.get("from_logits", False):
        check_in_range(
            xp, first, first_name, 0.0, 1.0, "probabilities, e.g. sigmoid or softmax output"
        )
    kind = spec.target_kind
    if kind is None:
        return arrays
    i = names.index("target")
    t = arrays[i]
    if spec.layout == "elementwise":
        check_same_shape(first, t, first_name, "target")
    if kind == "group":
        if not is_integral(xp, t):
            raise TypeError(
                f"target must hold integer group labels (equal labels make positive pairs); "
                f"got dtype {t.dtype}."
            )
        return arrays
    if kind == "segmentation":
        arrays[i] = segmentation_target(xp, first, t, options)
        return arrays
    if kind in ("class", "class_index", "multilabel_indices"):
        if kind == "class" and is_floating(xp, t):
            t = as_target(xp, t, first)
            check_in_range(xp, t, "target", 0.0, 1.0, "class probabilities")
        elif not is_integral(xp, t):
            raise TypeError(
                f"target must hold integer class indices; got dtype {t.dtype}."
                + (" (Class probabilities would be a floating array of the input's shape.)"
                   if kind == "class" else "")
            )
        elif kind == "multilabel_indices":
            n = int(first.shape[-1]) if first.ndim else 0
            if value_checks_enabled() and not bool(xp.all((t >= -1) & (t < n))):
                bad = t[(t < -1) | (t >= n)]
                raise ValueError(
                    f"target must hold class indices in [0, {n}) padded with -1; found "
                    f"{int(bad[0])}."
                )
        else:
            n = int(first.shape[1] if first.ndim >= 2 else first.shape[0]) if first.ndim else 0
            if getattr(spec, "classes", None):
                classes = arrays[names.index(spec.classes)]
                n = int(classes.shape[0]) if classes.ndim else 0
            check_label_range(xp, t, n, "target", options.get("ignore_index"))
        arrays[i] = t
        return arrays
    t = as_target(xp, t, first)
    if kind == "nonnegative":
        check_in_range(xp, t, "target", 0.0, None, "non-negative targets")
    elif kind == "unit_interval":
        check_in_range(xp, t, "target", 0.0, 1.0, "probabilities or 0/1 labels")
    elif kind == "sign":
        check_signs(xp, t)
    elif kind == "distribution" and not options.get("log_target", False):
        what = "probabilities"
        if "log_target" in options:
            what += "; use log_target=True for log-probabilities"
        check_in_range(xp, t, "target", 0.0, 1.0, what)
        dim = int(options.get("dim", -1))
        if (
            spec.layout == "distribution_axis" and value_checks_enabled()
            and -t.ndim <= dim < t.ndim
        ):
            axis = dim % t.ndim
            if size_of(t) and not bool(xp.all(xp.abs(xp.sum(t, axis=axis) - 1.0) <= _SUM_TOL)):
                raise ValueError(
                    f"target must hold probability distributions along dim={options.get('dim', -1)}"
                    " (each summing to 1); found a slice that does not."
                )
    arrays[i] = t
    return arrays


def segmentation_target(xp: Any, x: Any, t: Any, options: dict[str, Any]) -> Any:
    """A segmentation target, checked: where the loss's ``mode`` option is "multiclass", integer
    class indices in [0, C) (C = ``x.shape[1]``) or ``ignore_index``, returned as they are;
    otherwise a mask or class probabilities with values in [0, 1] (entries equal to
    ``ignore_index`` excepted), returned in ``x``'s dtype. Shapes are the loss's to check."""
    ignore = options.get("ignore_index")
    if options.get("mode") == "multiclass" and is_integral(xp, t):
        n = int(x.shape[1]) if x.ndim >= 2 else 0
        check_label_range(xp, t, n, "target", ignore)
        return t
    t = as_target(xp, t, x)
    counted = t if ignore is None or size_of(t) == 0 else xp.where(
        t == ignore, xp.zeros_like(t), t
    )
    what = "a mask, soft labels or class probabilities"
    if ignore is not None:
        what += f", or ignore_index={ignore}"
    check_in_range(xp, counted, "target", 0.0, 1.0, what)
    return t


def as_target(xp: Any, target: Any, like: Any, name: str = "target") -> Any:
    """A floating target cast to the input's dtype (dtype in = dtype out)."""
    if not is_floating(xp, target):
        if xp.isdtype(target.dtype, ("integral", "bool")):
            return xp.astype(target, like.dtype)
        raise TypeError(f"{name} must be a real-valued array; got dtype {target.dtype}.")
    if target.dtype != like.dtype:
        return xp.astype(target, like.dtype)
    return target
