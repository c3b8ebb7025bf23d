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

import array_api_compat

from losslab.losses._primitives import is_floating, is_integral, shape_of, size_of

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


def check_reduction(reduction: Any) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction must be one of 'mean', 'sum' or 'none'; got {reduction!r}."
            + suggest(str(reduction), REDUCTIONS)
        )
    return reduction


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
    # Two reductions and no temporaries (this runs on every call); min and max propagate NaN,
    # so a NaN fails too.
    if low is not None and high is not None and array_api_compat.is_torch_array(x):
        lo, hi = x.aminmax()  # one pass for both bounds; NaN propagates into both
        ok = float(lo) >= low and float(hi) <= high
    else:
        ok = True
        if low is not None:
            ok = bool(xp.min(x) >= low)
        if ok and high is not None:
            ok = bool(xp.max(x) <= high)
    if not ok:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(
            f"{name} must lie in [{lo}, {hi}]{' (' + what + ')' if what else ''}; "
            f"found a value outside."
        )


def check_positive_number(value: Any, name: str, *, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number; got {value!r}.") from None
    if not (v >= 0 if allow_zero else v > 0) or v != v:
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}; got {value!r}.")
    return v


def check_fraction(value: Any, name: str) -> float:
    v = check_positive_number(value, name, allow_zero=True)
    if v > 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got {value!r}.")
    return v


def as_target(xp: Any, target: Any, like: Any, name: str = "target") -> Any:
    """A floating target cast to the input's dtype (dtype in = dtype out)."""
    if not is_floating(xp, target):
        if xp.isdtype(target.dtype, ("integral", "bool")):
            return xp.astype(target, like.dtype)
        raise TypeError(f"{name} must be a real-valued array; got dtype {target.dtype}.")
    if target.dtype != like.dtype:
        return xp.astype(target, like.dtype)
    return target
