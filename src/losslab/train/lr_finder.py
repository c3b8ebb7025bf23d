"""The learning-rate range test: which rates make this model learn, and where it falls apart.

Smith, "Cyclical Learning Rates for Training Neural Networks" (2017), as fastai's ``lr_find`` and
Lightning's ``LearningRateFinder`` run it: one short run whose rate grows exponentially from
``start_lr`` to ``end_lr`` over ``num_steps`` mini-batch steps, recording each batch's loss. Here
it is, as in Lightning, a schedule plus a callback on the ordinary ``Trainer.fit``:

- ``Exponential(start_lr, gamma, interval="batch")`` with ``gamma = (end_lr/start_lr) **
  (1/(num_steps - 1))`` sets the rates;
- ``_RangeRecorder`` records each batch's rate and loss, keeps the bias-corrected exponential
  moving average of the loss (``smoothing`` = fastai's beta, 0.98), and stops the run when that
  average exceeds ``diverge_factor`` times its lowest value (fastai's rule), when ``num_steps``
  are done, or when the loss becomes non-finite;
- afterwards the trainer gets back everything the run changed (``Trainer.state_dict``: model,
  optimizer, schedule, callbacks, random streams, history, epoch; and its schedule, callbacks
  and train/eval mode), so a ``fit`` after ``lr_find`` gives the numbers it would have without it.

The suggestion (``RULE``): the steepest descent before the minimum, found on a curve without lag.
The running average lags the raw loss by tens of steps, so its steepest point and its minimum come
late, sometimes where the raw loss is already blowing up. So:

1. the search ends where the raw loss diverged for good: at the start of the final stretch of
   steps whose raw loss exceeds ``diverge_factor`` times the lowest running average so far (the
   divergence threshold; a single noisy batch above it earlier does not end the search);
2. the raw losses before that point, each capped at that threshold (so one exploding batch cannot
   drag the average), are smoothed forwards and then backwards with the same moving average
   (``lag_free``): the two lags cancel;
3. the suggestion is the rate where ``lag_free`` falls fastest against ``log10(lr)``, between the
   first 10% of those steps and the minimum of ``lag_free``. None if the loss never fell.

``at_edge`` is True when the suggestion is the first or last step searched, or when the loss was
still falling at the last rate tried without having diverged: the best rate may lie outside
``[start_lr, end_lr]``; widen the range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from losslab.train.callbacks import Callback
from losslab.train.schedules import Exponential
from losslab.train.trainer import NonFiniteError, Trainer

__all__ = ["lr_find", "LRFinderResult", "RULE"]

RULE = (
    "suggested rate = the steepest descent before the minimum: where the loss, smoothed "
    "forwards and backwards (no lag) up to where the raw loss diverges, falls fastest against "
    "log10(lr), between the first 10% of those steps and its minimum"
)


@dataclass(frozen=True)
class LRFinderResult:
    """What ``lr_find`` measured and suggests.

    ``lrs``, ``losses`` (raw mini-batch losses, with any regularisation term) and ``smoothed``
    (their running bias-corrected moving average, which the divergence stop watches) have one
    entry per step run. ``lag_free`` is the curve the suggestion is read from (see the module
    docstring), over the steps before the raw loss diverged. ``suggestion`` is a rate from
    ``lrs`` (index ``suggestion_index``) or None; ``rule`` says how it was chosen; ``at_edge``
    warns that the best rate may lie outside the range tried; ``stopped`` says why the run ended.
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    lag_free: tuple[float, ...]
    suggestion: float | None
    suggestion_index: int | None
    rule: str
    at_edge: bool
    stopped: str

    @property
    def steps(self) -> int:
        return len(self.lrs)


def _moving_average(values: np.ndarray, beta: float) -> np.ndarray:
    """Bias-corrected exponential moving average (Adam's and fastai's correction)."""
    out = np.empty(len(values))
    avg = 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1.0 - beta) * float(v)
        out[i] = avg / (1.0 - beta ** (i + 1))
    return out


def _lag_free(values: np.ndarray, beta: float) -> np.ndarray:
    """The moving average run forwards, then backwards over its result: no net lag."""
    return _moving_average(_moving_average(values, beta)[::-1], beta)[::-1]


def _suggest(
    lrs: np.ndarray, losses: np.ndarray, smoothed: np.ndarray, factor: float, beta: float,
    diverged: bool,
) -> tuple[np.ndarray, int | None, bool]:
    """``(lag_free, suggestion index or None, at_edge)`` by ``RULE``."""
    threshold = factor * np.minimum.accumulate(smoothed)
    above = losses > threshold
    end = len(losses)
    while end > 0 and above[end - 1]:  # the final stretch where the raw loss has diverged
        end -= 1
    curve = _lag_free(np.minimum(losses[:end], threshold[:end]), beta)
    if end < 5:
        return curve, None, False
    lo = max(1, end // 10)
    i_min = int(np.argmin(curve))
    if i_min - lo < 2:  # the loss never fell after the first steps
        return curve, None, False
    slope = np.gradient(curve, np.log10(lrs[:end]))
    k = lo + int(np.argmin(slope[lo : i_min + 1]))
    if not slope[k] < 0:
        return curve, None, False
    still_falling = i_min == len(losses) - 1 and not diverged
    return curve, k, k in (lo, i_min) or still_falling


class _RangeRecorder(Callback):
    """Records each batch's rate and loss; stops after ``num_steps`` or on divergence."""

    def __init__(self, num_steps: int, beta: float, factor: float) -> None:
        self.num_steps, self.beta, self.factor = num_steps, beta, factor
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self._avg = 0.0
        self._best = math.inf
        self.stopped = ""
        self.diverged = False

    def on_batch_end(
        self, trainer: Trainer, epoch: int, batch: int, logs: dict[str, float]
    ) -> None:
        lr, loss = float(logs["lr"]), float(logs["loss"])
        self._avg = self.beta * self._avg + (1.0 - self.beta) * loss
        smooth = self._avg / (1.0 - self.beta ** (len(self.losses) + 1))
        self.lrs.append(lr)
        self.losses.append(loss)
        self.smoothed.append(smooth)
        self._best = min(self._best, smooth)
        if smooth > self.factor * self._best:
            self.stopped = (f"the smoothed loss exceeded {self.factor:g}x its minimum at "
                            f"lr={lr:.3g}")
            self.diverged = True
            trainer.stop_training = True
        elif len(self.losses) == self.num_steps:
            self.stopped = f"reached end_lr after {self.num_steps} steps"
            trainer.stop_training = True


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number; got {value!r}.")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite; got {value!r}.")
    return v


def lr_find(
    trainer: Trainer,
    X: Any,
    y: Any,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    batch_size: int | None = None,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
) -> LRFinderResult:
    """Run the learning-rate range test on ``trainer`` with data ``(X, y)``; the trainer is left
    exactly as it was. See the module docstring for the method and ``RULE`` for the suggestion.

    ``num_steps`` mini-batches of ``batch_size`` (None: the whole data set, as in ``fit``) are
    drawn by the trainer's own shuffling, epoch after epoch as needed; the rate of step ``i`` is
    ``start_lr * gamma ** i`` with ``gamma = (end_lr / start_lr) ** (1 / (num_steps - 1))``, so
    the last step's rate is ``end_lr`` (to rounding). ``smoothing`` is the moving
    average's beta in [0, 1); the run stops once the smoothed loss exceeds ``diverge_factor``
    (> 1) times its minimum.
    """
    if not isinstance(trainer, Trainer):
        raise TypeError(f"trainer must be a losslab Trainer; got {type(trainer).__name__}.")
    start_lr, end_lr = _number(start_lr, "start_lr"), _number(end_lr, "end_lr")
    if not 0.0 < start_lr < end_lr:
        raise ValueError(
            f"need 0 < start_lr < end_lr; got start_lr={start_lr!r}, end_lr={end_lr!r}."
        )
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or (
        num_steps < 2
    ):
        raise ValueError(f"num_steps must be an integer >= 2; got {num_steps!r}.")
    smoothing = _number(smoothing, "smoothing")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must lie in [0, 1); got {smoothing!r}.")
    diverge_factor = _number(diverge_factor, "diverge_factor")
    if not diverge_factor > 1.0:
        raise ValueError(f"diverge_factor must be > 1; got {diverge_factor!r}.")
    n = len(np.asarray(X))
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer or None; got {batch_size!r}.")
    per_epoch = max(1, math.ceil(n / (batch_size or max(n, 1))))

    saved = trainer.state_dict()
    schedule, callbacks = trainer.schedule, trainer.callbacks
    was_training, stop_training = trainer.model.training, trainer.stop_training
    recorder = _RangeRecorder(int(num_steps), smoothing, diverge_factor)
    gamma = (end_lr / start_lr) ** (1.0 / (int(num_steps) - 1))
    try:
        trainer.schedule = Exponential(start_lr, gamma, interval="batch")
        trainer.optimizer.lr = start_lr
        trainer.fit(X, y, epochs=math.ceil(int(num_steps) / per_epoch), batch_size=batch_size,
                    callbacks=[recorder])
    except NonFiniteError:
        lr = trainer.optimizer.lr
        recorder.stopped = f"the loss became non-finite at lr={lr:.3g}"
        recorder.diverged = True
    finally:
        trainer.schedule = schedule
        trainer.callbacks = callbacks
        trainer.load_state_dict(saved)
        trainer.model.train(was_training)
        trainer.stop_training = stop_training
    lrs = np.asarray(recorder.lrs)
    losses = np.asarray(recorder.losses)
    curve, k, at_edge = _suggest(lrs, losses, np.asarray(recorder.smoothed), diverge_factor,
                                 smoothing, recorder.diverged)
    return LRFinderResult(
        lrs=tuple(recorder.lrs),
        losses=tuple(recorder.losses),
        smoothed=tuple(recorder.smoothed),
        lag_free=tuple(float(v) for v in curve),
        suggestion=None if k is None else float(lrs[k]),
        suggestion_index=k,
        rule=RULE,
        at_edge=at_edge,
        stopped=recorder.stopped or "the data ran out",
    )
