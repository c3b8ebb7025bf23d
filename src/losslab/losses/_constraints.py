"""Option constraints: what values a loss's options may take, declared once and checked once.

Each catalog entry declares a constraint per option in its ``register(..., options={...})`` call,
in the spirit of scikit-learn's ``_parameter_constraints``. ``losslab.get(name, **options)``
checks every value against it before anything is computed, so ``get("huber", delta=-1.0)`` and
``get("kl_div", log_target="no")`` fail at once with an error naming the option and what it
accepts, never at the first call and never silently (a string is not a boolean).

``check(value)`` returns the value in its canonical form (a Python float for ``Real``, an int for
``Integer``, ...) or raises ``TypeError`` (wrong type) / ``ValueError`` (right type, outside the
allowed set; NaN counts as outside). ``describe()`` is the human-readable rule that errors and
``losslab losses NAME`` show; ``invalid_examples()`` lists values the constraint must refuse, with
the exception each must raise, which the catalog-wide tests derive their bad inputs from.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import array_api_compat
import numpy as np

from losslab.losses._validation import suggest

__all__ = ["Constraint", "Real", "Integer", "Boolean", "Choice", "Array", "Either", "NONE"]


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def _scalar(value: Any) -> Any:
    """A 0-d array (NumPy, torch, JAX) as the Python number it holds; anything else unchanged."""
    if array_api_compat.is_array_api_obj(value) and getattr(value, "ndim", None) == 0:
        if isinstance(value, np.ndarray):
            return value.item()
        if getattr(value, "device", None) is not None and str(value.device).startswith("cpu"):
            return value.item()
    return value


class Constraint:
    """Base class: a set of allowed values for one option."""

    def check(self, value: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def invalid_examples(self) -> list[tuple[Any, type[Exception]]]:  # pragma: no cover
        raise NotImplementedError

    def accepts_type(self, value: Any) -> bool:
        """Whether ``value`` has a type this constraint takes (used by ``Either``)."""
        try:
            self.check(value)
        except TypeError:
            return False
        except ValueError:
            return True
        return True

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


class Real(Constraint):
    """A real number in an interval; ``closed`` says which ends belong to it.

    ``low``/``high`` of None mean unbounded on that side; infinities are refused unless ``inf``
    is True (a p-norm's order may be inf; a margin may not). ``text`` replaces the interval's
    wording where the allowed set needs words ("in [0, 1], or negative to disable it").
    """

    def __init__(
        self,
        low: float | None = None,
        high: float | None = None,
        *,
        closed: str = "both",
        inf: bool = False,
        text: str = "",
    ) -> None:
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither'; got {closed!r}")
        self.low, self.high, self.closed, self.inf, self.text = low, high, closed, inf, text

    def _contains(self, v: float) -> bool:
        if math.isnan(v) or (math.isinf(v) and not self.inf):
            return False
        if self.low is not None:
            if v < self.low or (v == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if v > self.high or (v == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def phrase(self) -> str:
        """The allowed set after "a number": "> 0", "in (0, 1)", or the given ``text``."""
        if self.text:
            return self.text
        if self.low is None and self.high is None:
            return "finite" if not self.inf else "(any, inf included)"
        if self.high is None:
            return f"{'>=' if self.closed in ('both', 'left') else '>'} {self.low:g}"
        if self.low is None:
            return f"{'<=' if self.closed in ('both', 'right') else '<'} {self.high:g}"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        return f"in {left}{self.low:g}, {self.high:g}{right}"

    def describe(self) -> str:
        if self.low is None and self.high is None and not self.text:
            return "a real number" + ("" if self.inf else " (finite)")
        return f"a number {self.phrase()}"

    def check(self, value: Any) -> float:
        value = _scalar(value)
        if _is_bool(value) or not isinstance(value, numbers.Real):
            raise TypeError(f"must be {self.describe()}; got {value!r}")
        v = float(value)
        if not self._contains(v):
            phrase = self.phrase()
            verb = "lie" if phrase.startswith("in ") else "be"
            raise ValueError(f"must {verb} {phrase}; got {value!r}")
        return v

    def invalid_examples(self) -> list[tuple[Any, type[Exception]]]:
        bad: list[tuple[Any, type[Exception]]] = [
            ("abc", TypeError), (True, TypeError), (float("nan"), ValueError)
        ]
        if self.low is not None:
            bad.append((self.low - 1.0, ValueError))
            if self.closed in ("right", "neither"):
                bad.append((float(self.low), ValueError))
        if self.high is not None:
            bad.append((self.high + 1.0, ValueError))
            if self.closed in ("left", "neither"):
                bad.append((float(self.high), ValueError))
        if not self.inf:
            bad.append((math.inf if self.high is None else -math.inf, ValueError))
        return bad


class Integer(Constraint):
    """An integer (not a bool, not a float) in an interval with closed ends."""

    def __init__(self, low: int | None = None, high: int | None = None, note: str = "") -> None:
        self.low, self.high, self.note = low, high, note

    def describe(self) -> str:
        if self.low is None and self.high is None:
            text = "an integer"
        elif self.high is None:
            text = f"an integer >= {self.low}"
        elif self.low is None:
            text = f"an integer <= {self.high}"
        else:
            text = f"an integer in [{self.low}, {self.high}]"
        return text + (f" ({self.note})" if self.note else "")

    def check(self, value: Any) -> int:
        value = _scalar(value)
        if _is_bool(value) or not isinstance(value, numbers.Integral):
            raise TypeError(f"must be {self.describe()}; got {value!r}")
        v = int(value)
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise ValueError(f"must be {self.describe()}; got {value!r}")
        return v

    def invalid_examples(self) -> list[tuple[Any, type[Exception]]]:
        bad: list[tuple[Any, type[Exception]]] = [
            (1.5, TypeError), ("1", TypeError), (True, TypeError)
        ]
        if self.low is not None:
            bad.append((self.low - 1, ValueError))
        if self.high is not None:
            bad.append((self.high + 1, ValueError))
        return bad


class Boolean(Constraint):
    """True or False (a Python or NumPy bool): never a string, never a number."""

    def describe(self) -> str:
        return "True or False"

    def check(self, value: Any) -> bool:
        value = _scalar(value)
        if not _is_bool(value):
            raise TypeError(f"must be True or False; got {value!r}")
        return bool(value)

    def invalid_examples(self) -> list[tuple[Any, type[Exception]]]:
        return [("no", TypeError), ("False", TypeError), (1, TypeError), (None, TypeError)]


class Choice(Constraint):
    """One of a fixed set of values (strings, or numbers such as a norm's order 1 or 2)."""

    def __init__(self, *values: Any) -> None:
        self.values = tuple(values)

    def describe(self) -> str:
        shown = [repr(v) if isinstance(v, str) else str(v) for v in self.values]
        words = " or ".join(shown) if len(shown) < 3 else ", ".join(shown[:-1]) + " or " + shown[-1]
        return ("one of " if all(isinstance(v, str) for v in self.values) else "") + words

    def check(self, value: Any) -> Any:
        value = _scalar(value)
        for v in self.values:
            if type(v) is str and isinstance(value, str) and value == v:
                return v
            if (
                not isinstance(v, str)
                and not isinstance(value, str)
                and not _is_bool(value)
                and isinstance(value, numbers.Number)
                and value == v
            ):
                return v
        hint = suggest(str(value), [str(v) for v in self.values]) if isinstance(value, str) else ""
        if all(isinstance(v, str) for v in self.values) and not isinstance(value, str):
            raise TypeError(f"must be {self.describe()}; got {value!r}")
        raise ValueError(f"must be {self.describe()}; got {value!r}.{hint}".rstrip("."))

    def invalid_examples(self) -> list[tuple[Any, type[Exception]]]:
        if all(isinstance(v, str) for v in self.values):
            return [("no-such-choice", ValueError), (3, TypeError)]
        numbers_ = [v for v in self.values if not isinstance(v, str)]
        return [(max(numbers_) + 1, ValueError), (True, ValueError)]


class Array(Constraint):
    """An array of real numbers (NumPy, torch, JAX, array-api-strict, or a list of numbers).

    The shape it must have depends on the input (one entry per class, or broadcastable to the
    input); ``shape`` describes it, and the loss checks it when it sees the input. Values are
    not read here (they may live on a GPU).
    """

    def __init__(self, shape: str) -> None:
        self.shape = shape

    def describe(self) -> str:
        return f"a real-valued array ({self.shape})"

    def check(self, value: Any) -> Any:
        if array_api_compat.is_array_api_obj(value):
            dtype = value.dtype
            try:
                xp = array_api_compat.array_namespace(value)
                ok = xp.isdtype(dtype, ("real floating", "integral", "bool"))
            except TypeError:
                ok = False
            if not ok:
                raise TypeError(f"must be {self.describe()}; got an array of dtype {dtype}")
            return value
        if isinstance(value, list | tuple):
            try:
                a = np.asarray(value)
            except (TypeError, ValueError):
                a = np.asarray(value, dtype=object)
            if a.dtype.kind not in "fiub":
                raise TypeError(f"must be {self.describe()}; got {value!r}")
            return value
        raise TypeError(f"must be {self.describe()}; got {value!r}")

    def accepts_type(self, value: Any) -> bool:
        return array_api_compat.is_array_api_obj(value) or isinstance(value, list | tuple)

    def invalid_examples(self) -> list[tuple[Any, type[Exception]]]:
        return [("abc", TypeError), (["a", "b"], TypeError)]


class _NoneConstraint(Constraint):
    def describe(self) -> str:
        return "None"

    def check(self, value: Any) -> None:
        if value is not None:
            raise TypeError(f"must be None; got {value!r}")
        return None

    def invalid_examples(self) -> list[tuple[Any, type[Exception]]]:
        return [("abc", TypeError)]


NONE = _NoneConstraint()


class Either(Constraint):
    """Any one of several constraints, tried in order (e.g. None, a number, or an array).

    A value whose type one member takes is judged by that member alone (``alpha=-2.0`` against
    "None, a number in [0, 1], or an array" is a ValueError from the number, not a TypeError).
    """

    def __init__(self, *members: Constraint) -> None:
        self.members = members

    def describe(self) -> str:
        return ", or ".join(m.describe() for m in self.members)

    def check(self, value: Any) -> Any:
        for m in self.members:
            if m.accepts_type(value):
                try:
                    return m.check(value)
                except ValueError as exc:
                    raise ValueError(f"{exc} ({self.describe()})") from None
        raise TypeError(f"must be {self.describe()}; got {value!r}")

    def invalid_examples(self) -> list[tuple[Any, type[Exception]]]:
        bad: list[tuple[Any, type[Exception]]] = []
        for m in self.members:
            for value, exc in m.invalid_examples():
                takers = [o for o in self.members if o.accepts_type(value)]
                if exc is ValueError and takers and takers[0] is m:
                    bad.append((value, ValueError))
                elif not takers:
                    bad.append((value, TypeError))
        return bad


def check_option(loss: str, option: str, constraint: Constraint, value: Any) -> Any:
    """``constraint.check(value)`` with the error naming the loss and the option."""
    try:
        return constraint.check(value)
    except TypeError as exc:
        raise TypeError(f"{loss}: {option} {exc}.") from None
    except ValueError as exc:
        raise ValueError(f"{loss}: {option} {exc}.") from None


def describe_all(constraints: dict[str, Constraint], defaults: dict[str, Any]) -> Iterable[str]:
    """One line per option: ``name = default: rule``."""
    for name, c in constraints.items():
        yield f"{name} = {defaults.get(name)!r}: {c.describe()}"
