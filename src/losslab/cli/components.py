"""Engine components named on the command line: optimizer, schedule, model, activation.

Built (or checked) from their specs without any data, so the configuration can refuse a bad one
before data is read, and the pipeline builds the same way; an engine ValueError/TypeError while
building becomes a one-line UsageError naming the flag.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from losslab.cli.errors import UsageError

if TYPE_CHECKING:  # the configuration imports this module
    from losslab.cli.config import Spec

__all__ = ["flag_errors", "make_optimizer", "make_schedule", "hidden_sizes", "check_activation"]


@contextlib.contextmanager
def flag_errors(flag: str, value: Any) -> Iterator[None]:
    """An engine ValueError/TypeError while building becomes ``FLAG VALUE: message``."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{flag} {str(value)!r}: {exc}", flag=flag) from None


def make_optimizer(spec: Spec, lr: float) -> Any:
    from losslab.train import optimizers

    if spec.args:
        raise UsageError(f"--optimizer {str(spec)!r}: options must be KEY=VALUE, e.g. "
                         f"sgd:momentum=0.9", flag="--optimizer")
    if "lr" in spec.options:
        raise UsageError(f"--optimizer {str(spec)!r}: set the learning rate with --lr",
                         flag="--optimizer")
    with flag_errors("--optimizer", spec):
        return optimizers.make_optimizer(spec.name, lr=lr, **spec.options)


def make_schedule(spec: Spec, lr: float) -> Any:
    from losslab.train import schedules

    if spec.args:
        raise UsageError(f"--schedule {str(spec)!r}: options must be KEY=VALUE, e.g. "
                         f"exponential:gamma=0.95", flag="--schedule")
    with flag_errors("--schedule", spec):
        return schedules.make_schedule(spec.name, lr, **spec.options)


def hidden_sizes(spec: Spec) -> list[int]:
    """The hidden layer sizes of ``--model`` (empty for linear)."""
    name = spec.name.lower()
    if name == "linear":
        if spec.args or spec.options:
            raise UsageError("--model linear takes no options; for hidden layers use mlp:64,64",
                             flag="--model")
        return []
    if name == "mlp":
        hidden = list(spec.args) + list(spec.options.get("hidden", ()) or ())
        if not hidden or any(not isinstance(h, int) or isinstance(h, bool) or h < 1
                             for h in hidden):
            raise UsageError(f"--model {str(spec)!r}: give hidden layer sizes as positive "
                             f"integers, e.g. --model mlp:64,64", flag="--model")
        extra = [k for k in spec.options if k != "hidden"]
        if extra:
            raise UsageError(f"--model {str(spec)!r}: unknown option {extra[0]!r}; write "
                             f"mlp:H1,H2,...", flag="--model")
        return hidden
    from losslab.losses._validation import suggest

    raise UsageError(f"unknown --model {spec.name!r}." + suggest(name, ["linear", "mlp"])
                     + " Use linear or mlp:H1,H2,... (e.g. mlp:64,64)", flag="--model")


def check_activation(name: str) -> None:
    from losslab.train.layers import ACTIVATIONS

    key = name.strip().lower().replace("-", "_")
    if key not in ACTIVATIONS:
        from losslab.losses._validation import suggest

        raise UsageError(f"unknown --activation {name!r}." + suggest(key, ACTIVATIONS)
                         + f" Choose one of {', '.join(ACTIVATIONS)}", flag="--activation")
