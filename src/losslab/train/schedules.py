"""Learning-rate schedules with torch.optim.lr_scheduler's learning rates.

A schedule maps a step count ``t`` (epochs by default; the trainer decides what a step is) to a
learning rate. ``lr_at(t)`` is the rate after ``t`` calls of ``step()`` -- the same number torch's
scheduler gives after ``t`` calls of ``scheduler.step()``; ``lr_at(0)`` is the rate to start with.
``step(metric=None)`` advances by one and returns the new rate, which the caller writes into the
optimizer (``optimizer.lr = schedule.step()``). Only ``ReduceOnPlateau`` depends on anything but
``t``: it needs the monitored metric.

Closed forms are used where torch iterates a recursion; they agree to rounding (checked to 1e-10
relative over 100 steps in ``tests/test_schedules.py``).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from losslab.losses._validation import suggest

__all__ = [
    "Schedule",
    "Constant",
    "StepLR",
    "Exponential",
    "CosineAnnealing",
    "Cyclic",
    "ReduceOnPlateau",
    "make_schedule",
    "SCHEDULES",
]


def _positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # NumPy scalars
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number; got {value!r}.") from None
    v = float(value)
    if math.isnan(v) or not (v >= 0 if allow_zero else v > 0):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}; got {value!r}.")
    return v


def _count(value: Any, name: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (
        hasattr(value, "__index__")
    ):
        raise TypeError(f"{name} must be an integer; got {value!r}.")
    v = int(value)
    if v < (0 if allow_zero else 1):
        raise ValueError(f"{name} must be an integer {'>= 0' if allow_zero else '>= 1'}; got {v}.")
    return v


class Schedule:
    """Base class: ``lr_at(t)`` from ``base_lr``; ``step()`` advances ``last_step`` by one."""

    def __init__(self, base_lr: float) -> None:
        self.base_lr = _positive(base_lr, "base_lr")
        self.last_step = 0

    def lr_at(self, step: int) -> float:
        raise NotImplementedError

    @property
    def lr(self) -> float:
        """The current learning rate, ``lr_at(last_step)``."""
        return self.lr_at(self.last_step)

    def step(self, metric: float | None = None) -> float:
        self.last_step += 1
        return self.lr

    def _options(self) -> dict[str, Any]:
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        return {k: getattr(self, k) for k in names}

    def state_dict(self) -> dict[str, Any]:
        return {"schedule": type(self).__name__, "options": self._options(),
                "last_step": self.last_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("schedule") != type(self).__name__:
            raise ValueError(
                f"state is for schedule {state.get('schedule')!r}, not {type(self).__name__!r}."
            )
        for k, v in state.get("options", {}).items():
            setattr(self, k, v)
        self.last_step = int(state["last_step"])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._options().items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """``lr_t = base_lr`` (torch: no scheduler, or ``LambdaLR(lambda t: 1)``)."""

    def lr_at(self, step: int) -> float:
        return self.base_lr


class StepLR(Schedule):
    """``lr_t = base_lr * gamma ** floor(t / step_size)`` (torch.optim.lr_scheduler.StepLR)."""

    def __init__(self, base_lr: float, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(base_lr)
        self.step_size = _count(step_size, "step_size")
        self.gamma = _positive(gamma, "gamma")

    def lr_at(self, step: int) -> float:
        return self.base_lr * self.gamma ** (step // self.step_size)


class Exponential(Schedule):
    """``lr_t = base_lr * gamma ** t`` (torch.optim.lr_scheduler.ExponentialLR)."""

    def __init__(self, base_lr: float, gamma: float) -> None:
        super().__init__(base_lr)
        self.gamma = _positive(gamma, "gamma")

    def lr_at(self, step: int) -> float:
        return self.base_lr * self.gamma**step


class CosineAnnealing(Schedule):
    """Cosine annealing (Loshchilov & Hutter, 2017) after an optional linear warm-up.

    With ``W = warmup_steps``, ``f = warmup_start_factor`` and ``T = t_max - W``:

    - ``t < W``: ``lr_t = base_lr * (f + (1 - f) * t / W)`` (torch's ``LinearLR``);
    - ``t >= W``: ``lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi (t - W) / T)) / 2``
      (torch's ``CosineAnnealingLR(T_max=T)``).

    ``t_max`` counts the warm-up, so the rate reaches ``eta_min`` at step ``t_max``. This equals
    ``SequentialLR([LinearLR(start_factor=f, total_iters=W), CosineAnnealingLR(T_max=T,
    eta_min)], milestones=[W])``; with ``W = 0`` it is ``CosineAnnealingLR(T_max=t_max)``. Like
    torch, the cosine keeps going past ``t_max`` (the rate rises again, period ``2T``): set
    ``t_max`` to the length of training. ``warmup_start_factor`` defaults to LinearLR's 1/3.
    """

    def __init__(
        self,
        base_lr: float,
        t_max: int,
        eta_min: float = 0.0,
        warmup_steps: int = 0,
        warmup_start_factor: float = 1.0 / 3.0,
    ) -> None:
        super().__init__(base_lr)
        self.t_max = _count(t_max, "t_max")
        self.eta_min = _positive(eta_min, "eta_min", allow_zero=True)
        self.warmup_steps = _count(warmup_steps, "warmup_steps", allow_zero=True)
        if self.warmup_steps >= self.t_max:
            raise ValueError(
                f"warmup_steps must be < t_max ({self.t_max}); got {self.warmup_steps}."
            )
        f = _positive(warmup_start_factor, "warmup_start_factor")
        if f > 1.0:
            raise ValueError(f"warmup_start_factor must lie in (0, 1]; got {f!r}.")
        self.warmup_start_factor = f

    def lr_at(self, step: int) -> float:
        w, f = self.warmup_steps, self.warmup_start_factor
        if step < w:
            return self.base_lr * (f + (1.0 - f) * step / w)
        t, period = step - w, self.t_max - w
        cos = 1 + math.cos(math.pi * t / period)
        return self.eta_min + (self.base_lr - self.eta_min) * cos / 2


class Cyclic(Schedule):
    """Cyclical learning rate (Smith, 2017): ``torch.optim.lr_scheduler.CyclicLR`` with
    ``cycle_momentum=False`` and ``scale_mode`` defaulting as torch's.

    One cycle is ``step_size_up + step_size_down`` steps (down defaults to up); within it the
    rate goes linearly from ``base_lr`` to ``max_lr`` and back. ``mode="triangular"`` keeps the
    amplitude; ``"triangular2"`` halves it each cycle; ``"exp_range"`` scales it by
    ``gamma ** t``.
    """

    MODES = ("triangular", "triangular2", "exp_range")

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
    ) -> None:
        super().__init__(base_lr)
        self.max_lr = _positive(max_lr, "max_lr")
        self.step_size_up = _count(step_size_up, "step_size_up")
        self.step_size_down = (
            None if step_size_down is None else _count(step_size_down, "step_size_down")
        )
        if mode not in self.MODES:
            raise ValueError(
                f"mode must be one of {', '.join(map(repr, self.MODES))}; got {mode!r}."
                + suggest(str(mode), self.MODES)
            )
        self.mode = mode
        self.gamma = _positive(gamma, "gamma")

    def lr_at(self, step: int) -> float:
        # The same operations as torch's CyclicLR.get_lr, so the floats agree to the last bit.
        up = float(self.step_size_up)
        down = float(self.step_size_down) if self.step_size_down is not None else up
        total = up + down
        ratio = up / total
        cycle = math.floor(1 + step / total)
        x = 1.0 + step / total - cycle
        scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        height = (self.max_lr - self.base_lr) * scale
        if self.mode == "triangular":
            return self.base_lr + height
        if self.mode == "triangular2":
            return self.base_lr + height * (1 / (2.0 ** (cycle - 1)))
        return self.base_lr + height * self.gamma**step


class ReduceOnPlateau(Schedule):
    """Divide the rate by ``1/factor`` when a metric stops improving
    (torch.optim.lr_scheduler.ReduceLROnPlateau).

    ``step(metric)``: an improvement is ``metric < best * (1 - threshold)`` (mode "min",
    threshold_mode "rel"), ``metric < best - threshold`` ("abs"), and mirrored for "max". After
    more than ``patience`` steps without one, ``lr <- max(lr * factor, min_lr)`` (skipped when the
    change is below ``eps``) and ``cooldown`` steps follow in which bad steps are not counted.
    ``lr_at(t)`` returns the current rate (it cannot know future metrics).
    """

    def __init__(
        self,
        base_lr: float,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(base_lr)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max'; got {mode!r}.")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs'; got {threshold_mode!r}.")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = _positive(factor, "factor")
        if self.factor >= 1.0:
            raise ValueError(f"factor must be < 1 (the rate is multiplied by it); got {factor!r}.")
        self.patience = _count(patience, "patience", allow_zero=True)
        self.threshold = _positive(threshold, "threshold", allow_zero=True)
        self.cooldown = _count(cooldown, "cooldown", allow_zero=True)
        self.min_lr = _positive(min_lr, "min_lr", allow_zero=True)
        self.eps = _positive(eps, "eps", allow_zero=True)
        self.current_lr = self.base_lr
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_steps = 0
        self.cooldown_counter = 0

    def lr_at(self, step: int) -> float:
        return self.current_lr

    def _is_better(self, a: float) -> bool:
        if self.mode == "min":
            limit = self.best * (1.0 - self.threshold) if self.threshold_mode == "rel" else (
                self.best - self.threshold)
            return a < limit
        limit = self.best * (self.threshold + 1.0) if self.threshold_mode == "rel" else (
            self.best + self.threshold)
        return a > limit

    def step(self, metric: float | None = None) -> float:
        if metric is None:
            raise ValueError("metric is required: ReduceOnPlateau.step(metric) needs the "
                             "monitored value (e.g. the validation loss).")
        current = float(metric)
        self.last_step += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_steps = 0
        else:
            self.num_bad_steps += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_steps = 0
        if self.num_bad_steps > self.patience:
            new_lr = max(self.current_lr * self.factor, self.min_lr)
            if self.current_lr - new_lr > self.eps:
                self.current_lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_steps = 0
        return self.current_lr

    _STATE = ("current_lr", "best", "num_bad_steps", "cooldown_counter")

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out.update({k: getattr(self, k) for k in self._STATE})
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for k in self._STATE:
            setattr(self, k, state[k])


SCHEDULES: dict[str, type] = {
    "constant": Constant,
    "step": StepLR,
    "exponential": Exponential,
    "cosine": CosineAnnealing,
    "cyclic": Cyclic,
    "plateau": ReduceOnPlateau,
}


def make_schedule(name: str, base_lr: float, **options: Any) -> Schedule:
    """A schedule by name: constant, step, exponential, cosine, cyclic, plateau."""
    if not isinstance(name, str):
        raise TypeError(f"schedule name must be a string; got {type(name).__name__}.")
    key = name.strip().lower().replace("-", "_")
    if key not in SCHEDULES:
        raise ValueError(
            f"unknown schedule {name!r}; expected one of {', '.join(map(repr, SCHEDULES))}."
            + suggest(key, SCHEDULES)
        )
    cls = SCHEDULES[key]
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]
    allowed = [p.name for p in params]
    for k in options:
        if k not in allowed:
            raise TypeError(
                f"{cls.__name__} has no option {k!r}." + suggest(k, allowed)
                + f" Its options: {', '.join(allowed) or 'none'}."
            )
    missing = [p.name for p in params if p.default is p.empty and p.name not in options]
    if missing:
        raise ValueError(f"schedule {key!r} needs the option {', '.join(missing)}.")
    return cls(base_lr, **options)
