"""Callbacks: code that runs at fixed points of ``Trainer.fit`` (Keras-style hooks).

Hooks: ``on_train_begin(trainer)``, ``on_epoch_begin(trainer, epoch)``,
``on_batch_end(trainer, epoch, batch, logs)``, ``on_epoch_end(trainer, epoch, logs)``,
``on_train_end(trainer)``. A callback stops training by setting ``trainer.stop_training = True``
(checked after every batch and every epoch).

Callbacks whose state matters for an exact resume (``EarlyStopping``, ``ModelCheckpoint``) return
it from ``state_dict()``; the trainer's state stores it under the callback's ``state_key`` (its
class and the options that tell two instances apart, as Lightning does), so a resumed run may pass
its callbacks in another order or add stateless ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from losslab.train.checkpoint import save_model

if TYPE_CHECKING:  # the trainer imports this module; the hooks only receive a trainer
    from losslab.train.trainer import Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "LambdaCallback",
    "ModelCheckpoint",
    "callback_states",
    "load_callback_states",
]


class Callback:
    """Base class: every hook does nothing, and there is no state to save."""

    def on_train_begin(self, trainer: Trainer) -> None:
        pass

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        pass

    def on_batch_end(
        self, trainer: Trainer, epoch: int, batch: int, logs: dict[str, float]
    ) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, trainer: Trainer) -> None:
        pass

    @property
    def state_key(self) -> str:
        """The name this callback's state is saved under."""
        return type(self).__qualname__

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _key(cls: str, **options: Any) -> str:
    return f"{cls}{{{', '.join(f'{k}={v!r}' for k, v in options.items())}}}"


def _unique_keys(callbacks: Sequence[Callback]) -> list[str]:
    """Each callback's ``state_key``; a repeated key gets ``#2``, ``#3``, ... in order."""
    seen: dict[str, int] = {}
    keys = []
    for cb in callbacks:
        k = cb.state_key
        seen[k] = seen.get(k, 0) + 1
        keys.append(k if seen[k] == 1 else f"{k}#{seen[k]}")
    return keys


def callback_states(callbacks: Sequence[Callback]) -> dict[str, dict[str, Any]]:
    """``{state_key: state}`` for the callbacks that have state."""
    out = {}
    for key, cb in zip(_unique_keys(callbacks), callbacks):
        state = cb.state_dict()
        if state:
            out[key] = state
    return out


def load_callback_states(
    callbacks: Sequence[Callback], states: dict[str, dict[str, Any]]
) -> None:
    """Give each callback the state saved under its key (callbacks without one keep theirs)."""
    for key, cb in zip(_unique_keys(callbacks), callbacks):
        if key in states:
            cb.load_state_dict(states[key])


def _monitored(logs: dict[str, float], monitor: str, who: str) -> float:
    if monitor not in logs:
        shown = ", ".join(k for k in logs if not k.startswith("grad_norm/"))
        raise ValueError(
            f"{who} monitors {monitor!r}, which is not in the epoch logs (available: {shown}); "
            "pass validation data for val_* metrics or choose another monitor."
        )
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``mode="min"`` (losses) or ``"max"`` (accuracy, R^2); ``"auto"`` picks "max" for names
    containing acc/r2 and "min" otherwise. With ``restore_best_weights`` the parameters of the best
    epoch are copied back (in place) when training ends, whether or not it stopped early (Keras 3
    behaviour), so the model ends at its best monitored value. ``best_epoch`` and
    ``stopped_epoch`` (-1 if it never stopped) are kept for reports. Each ``fit`` starts it
    afresh (Keras); ``fit(..., resume=True)`` restores the best value, counter and weights saved
    in the checkpoint.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
        mode: str = "min",
    ) -> None:
        if mode not in ("min", "max", "auto"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto'; got {mode!r}.")
        if int(patience) < 0:
            raise ValueError(f"patience must be >= 0; got {patience!r}.")
        if float(min_delta) < 0:
            raise ValueError(f"min_delta must be >= 0; got {min_delta!r}.")
        if mode == "auto":
            mode = "max" if any(k in monitor for k in ("acc", "r2")) else "min"
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self.mode = mode
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1
        self.wait = 0
        self.stopped_epoch = -1
        self.best_weights: dict[str, np.ndarray] | None = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, trainer: Trainer) -> None:
        # Every fit starts afresh (Keras); a resumed fit then loads the saved state over this.
        self._reset()

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if math.isfinite(value) and self._improved(value):
            self.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = {k: v.copy() for k, v in trainer.model.parameters().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer: Trainer) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            params = trainer.model.parameters()
            for k, v in self.best_weights.items():
                np.copyto(params[k], v)

    @property
    def state_key(self) -> str:
        return _key("EarlyStopping", monitor=self.monitor, mode=self.mode)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
        }
        if self.best_weights is not None:
            state["best_weights"] = {k: v.copy() for k, v in self.best_weights.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        bw = state.get("best_weights")
        self.best_weights = None if bw is None else {k: np.array(v) for k, v in bw.items()}


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda t, e, logs: ...)``.

    Each function takes the same arguments as the hook it replaces.
    """

    def __init__(
        self,
        on_train_begin: Callable[..., Any] | None = None,
        on_epoch_begin: Callable[..., Any] | None = None,
        on_batch_end: Callable[..., Any] | None = None,
        on_epoch_end: Callable[..., Any] | None = None,
        on_train_end: Callable[..., Any] | None = None,
    ) -> None:
        self._hooks = {
            "on_train_begin": on_train_begin,
            "on_epoch_begin": on_epoch_begin,
            "on_batch_end": on_batch_end,
            "on_epoch_end": on_epoch_end,
            "on_train_end": on_train_end,
        }

    def on_train_begin(self, trainer: Trainer) -> None:
        if self._hooks["on_train_begin"]:
            self._hooks["on_train_begin"](trainer)

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        if self._hooks["on_epoch_begin"]:
            self._hooks["on_epoch_begin"](trainer, epoch)

    def on_batch_end(
        self, trainer: Trainer, epoch: int, batch: int, logs: dict[str, float]
    ) -> None:
        if self._hooks["on_batch_end"]:
            self._hooks["on_batch_end"](trainer, epoch, batch, logs)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if self._hooks["on_epoch_end"]:
            self._hooks["on_epoch_end"](trainer, epoch, logs)

    def on_train_end(self, trainer: Trainer) -> None:
        if self._hooks["on_train_end"]:
            self._hooks["on_train_end"](trainer)


class ModelCheckpoint(Callback):
    """Save the model after epochs: every ``every`` epochs, or only on improvement of ``monitor``.

    ``path`` may contain ``{epoch}`` (1-based, as Keras). With ``save_best_only`` the file is
    rewritten when ``monitor`` improves (``mode`` as in EarlyStopping); the best value so far is
    state that a resumed run restores, so a resume never overwrites the best model with a worse
    one. ``monitor`` is read only with ``save_best_only``; a monitor the epoch logs lack raises
    a ValueError at the first epoch end. Writes are atomic.
    """

    def __init__(
        self,
        path: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "min",
        every: int = 1,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max'; got {mode!r}.")
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be a positive integer; got {every!r}.")
        self.path = str(path)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = mode
        self.every = int(every)
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            better = value < self.best if self.mode == "min" else value > self.best
            if not (math.isfinite(value) and better):
                return
            self.best = value
            self.best_epoch = epoch
        elif (epoch + 1) % self.every:
            return
        save_model(trainer.model, self.path.format(epoch=epoch + 1), extra={"epoch": epoch + 1})

    @property
    def state_key(self) -> str:
        return _key("ModelCheckpoint", monitor=self.monitor, mode=self.mode,
                    save_best_only=self.save_best_only, every=self.every)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
