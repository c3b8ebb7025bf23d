"""Callbacks: code that runs at fixed points of ``Trainer.fit`` (Keras-style hooks).

Hooks: ``on_train_begin(trainer)``, ``on_epoch_begin(trainer, epoch)``,
``on_batch_end(trainer, epoch, batch, logs)``, ``on_epoch_end(trainer, epoch, logs)``,
``on_train_end(trainer)``. A callback stops training by setting ``trainer.stop_training = True``.
Callbacks with state that matters for an exact resume expose ``state_dict``/``load_state_dict``;
checkpoints store it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Callback", "EarlyStopping", "LambdaCallback", "ModelCheckpoint"]


class Callback:
    """Base class: every hook does nothing."""

    def on_train_begin(self, trainer: Any) -> None:
        pass

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        pass

    def on_batch_end(self, trainer: Any, epoch: int, batch: int, logs: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, trainer: Any) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``mode="min"`` (losses) or ``"max"`` (accuracy, R^2); ``"auto"`` picks "max" for names
    containing acc/r2 and "min" otherwise. With ``restore_best_weights`` the parameters of the best
    epoch are copied back (in place) when training ends, whether or not it stopped early (Keras 3
    behaviour), so the model ends at its best monitored value. ``best_epoch`` and
    ``stopped_epoch`` (-1 if it never stopped) are kept for reports.
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

    def on_train_begin(self, trainer: Any) -> None:
        if not getattr(self, "_resumed", False):  # a resumed run keeps its loaded state
            self._reset()
        self._resumed = False

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        if self.monitor not in logs:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which is not in the epoch logs "
                f"({', '.join(k for k in logs if not k.startswith('grad_norm/'))}); "
                "pass validation data for val_* metrics or choose another monitor."
            )
        value = float(logs[self.monitor])
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

    def on_train_end(self, trainer: Any) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            params = trainer.model.parameters()
            for k, v in self.best_weights.items():
                np.copyto(params[k], v)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
        }
        if self.best_weights is not None:
            state["best_weights"] = dict(self.best_weights)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        bw = state.get("best_weights")
        self.best_weights = None if bw is None else {k: np.array(v) for k, v in bw.items()}
        self._resumed = True


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

    def on_train_begin(self, trainer: Any) -> None:
        if self._hooks["on_train_begin"]:
            self._hooks["on_train_begin"](trainer)

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        if self._hooks["on_epoch_begin"]:
            self._hooks["on_epoch_begin"](trainer, epoch)

    def on_batch_end(self, trainer: Any, epoch: int, batch: int, logs: dict[str, float]) -> None:
        if self._hooks["on_batch_end"]:
            self._hooks["on_batch_end"](trainer, epoch, batch, logs)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        if self._hooks["on_epoch_end"]:
            self._hooks["on_epoch_end"](trainer, epoch, logs)

    def on_train_end(self, trainer: Any) -> None:
        if self._hooks["on_train_end"]:
            self._hooks["on_train_end"](trainer)


class ModelCheckpoint(Callback):
    """Save the model after epochs: every ``every`` epochs, or only on improvement of ``monitor``.

    ``path`` may contain ``{epoch}`` (1-based, as Keras). With ``save_best_only`` the file is
    rewritten when ``monitor`` improves (``mode`` as in EarlyStopping). Writes are atomic.
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
        self.path = str(path)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = mode
        self.every = int(every)
        self.best = math.inf if mode == "min" else -math.inf

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        from losslab.train.checkpoint import save_model

        if self.save_best_only:
            value = float(logs.get(self.monitor, math.nan))
            better = value < self.best if self.mode == "min" else value > self.best
            if not (math.isfinite(value) and better):
                return
            self.best = value
        elif (epoch + 1) % self.every:
            return
        save_model(trainer.model, self.path.format(epoch=epoch + 1), extra={"epoch": epoch + 1})
