"""Learning-rate schedules with torch.optim.lr_scheduler's learning rates.

A schedule maps a step count ``t`` to a learning rate. ``lr_at(t)`` is the rate after ``t`` calls
of ``step()`` -- the same number torch's scheduler gives after ``t`` calls of
``scheduler.step()``; ``lr_at(0)`` is the rate to start with. ``step(metric=None)`` advances by
one and returns the new rate, which the caller writes into the optimizer
(``optimizer.lr = schedule.step()``). Only ``ReduceOnPlateau`` depends on anything but ``t``: it
needs the monitored metric.

What a step is: every schedule takes ``interval="epoch"`` (the default: the trainer steps it after
each epoch) or ``interval="batch"`` (after each optimizer step, as Lightning's scheduler config
``{"interval": "step"}`` and torch's usual ``OneCycleLR`` loop). ``t_max``, ``total_steps``,
``step_size`` and the like then count batches. ``ReduceOnPlateau`` steps per epoch only.

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
    "OneCycle",
    "LinearWarmup",
    "INTERVALS",
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


INTERVALS = ("epoch", "batch")


def _count(value: Any, name: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (
        hasattr(value, "__index__")
    ):
        raise TypeError(f"{name} must be an integer; got {value!r}.")
    v = int(value)
    if v < (0 if allow_zero else 1):
        raise ValueError(f"{name} must be an integer {'>= 0' if allow_zero else '>= 1'}; got {v}.")
    return v


def _interval(value: Any) -> str:
    if value not in INTERVALS:
        raise ValueError(
            f"interval must be 'epoch' or 'batch'; got {value!r}." + suggest(str(value), INTERVALS)
        )
    return str(value)


def _linear(base_lr: float, start: float, end: float, step: int, total: int) -> float:
    """``base_lr * (start + (end - start) * min(step, total) / total)``: torch's ``LinearLR``
    in closed form (its recursion agrees to rounding)."""
    return base_lr * (start + (end - start) * min(step, total) / total)


class Schedule:
    """Base class: ``lr_at(t)`` from ``base_lr``; ``step()`` advances ``last_step`` by one.

    ``interval`` says when the trainer steps it: ``"epoch"`` or ``"batch"``.
    """

    def __init__(self, base_lr: float, *, interval: str = "epoch") -> None:
        self.base_lr = _positive(base_lr, "base_lr")
        self.interval = _interval(interval)
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

    def __init__(
        self, base_lr: float, step_size: int, gamma: float = 0.1, *, interval: str = "epoch"
    ) -> None:
        super().__init__(base_lr, interval=interval)
        self.step_size = _count(step_size, "step_size")
        self.gamma = _positive(gamma, "gamma")

    def lr_at(self, step: int) -> float:
        return self.base_lr * self.gamma ** (step // self.step_size)


class Exponential(Schedule):
    """``lr_t = base_lr * gamma ** t`` (torch.optim.lr_scheduler.ExponentialLR)."""

    def __init__(self, base_lr: float, gamma: float, *, interval: str = "epoch") -> None:
        super().__init__(base_lr, interval=interval)
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
        *,
        interval: str = "epoch",
    ) -> None:
        super().__init__(base_lr, interval=interval)
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
            return _linear(self.base_lr, f, 1.0, step, w)
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
        *,
        interval: str = "epoch",
    ) -> None:
        super().__init__(base_lr, interval=interval)
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
        *,
        interval: str = "epoch",
    ) -> None:
        super().__init__(base_lr, interval=interval)
        if self.interval != "epoch":
            raise ValueError(
                "ReduceOnPlateau steps once per epoch on the monitored metric; interval must be "
                f"'epoch', got {interval!r}."
            )
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


class LinearWarmup(Schedule):
    """``lr_t = base_lr * (s + (e - s) * min(t, total_steps) / total_steps)``: the rate moves
    linearly from ``start_factor * base_lr`` to ``end_factor * base_lr`` over ``total_steps``
    steps and then stays (torch.optim.lr_scheduler.LinearLR with ``total_iters=total_steps``;
    ``start_factor`` defaults to its 1/3). Usually per batch: ``interval="batch"``.
    """

    def __init__(
        self,
        base_lr: float,
        total_steps: int,
        start_factor: float = 1.0 / 3.0,
        end_factor: float = 1.0,
        *,
        interval: str = "epoch",
    ) -> None:
        super().__init__(base_lr, interval=interval)
        self.total_steps = _count(total_steps, "total_steps")
        self.start_factor = _positive(start_factor, "start_factor")
        self.end_factor = _positive(end_factor, "end_factor", allow_zero=True)
        if self.start_factor > 1.0:
            raise ValueError(f"start_factor must lie in (0, 1]; got {start_factor!r}.")
        if self.end_factor > 1.0:
            raise ValueError(f"end_factor must lie in [0, 1]; got {end_factor!r}.")

    def lr_at(self, step: int) -> float:
        return _linear(self.base_lr, self.start_factor, self.end_factor, step, self.total_steps)


class OneCycle(Schedule):
    """The one-cycle policy (Smith & Topin, 2018): torch.optim.lr_scheduler.OneCycleLR with
    ``cycle_momentum=False`` (the optimizers' momentum is not cycled).

    The rate starts at ``initial = max_lr / div_factor``, rises to ``max_lr`` over the first
    ``pct_start * total_steps - 1`` steps, then falls to ``initial / final_div_factor`` at step
    ``total_steps - 1``; ``anneal_strategy`` "cos" (default) or "linear" shapes both ramps.
    ``three_phase=True`` comes back down to ``initial`` symmetrically before the final fall.
    Phase boundaries, interpolation and rounding are torch's, so the rates agree to the last bit.
    As in torch, stepping past ``total_steps`` is an error: set it to ``epochs * batches per
    epoch`` with ``interval="batch"`` (or to ``epochs`` per epoch).
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        *,
        interval: str = "epoch",
    ) -> None:
        super().__init__(max_lr, interval=interval)
        self.max_lr = self.base_lr
        self.total_steps = _count(total_steps, "total_steps")
        pct = _positive(pct_start, "pct_start")
        if pct >= 1.0:
            raise ValueError(f"pct_start must lie in (0, 1); got {pct_start!r}.")
        self.pct_start = pct
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"anneal_strategy must be 'cos' or 'linear'; got {anneal_strategy!r}."
            )
        self.anneal_strategy = anneal_strategy
        self.div_factor = _positive(div_factor, "div_factor")
        self.final_div_factor = _positive(final_div_factor, "final_div_factor")
        self.three_phase = bool(three_phase)
        ends = [0.0] + [end for end, _, _ in self._phases()]
        if any(b <= a for a, b in zip(ends, ends[1:])):
            raise ValueError(
                f"pct_start={pct_start!r} with total_steps={self.total_steps} leaves a phase of "
                "the cycle without steps; raise total_steps or move pct_start towards "
                f"{'0.25' if self.three_phase else '0.5'}."
            )

    def _phases(self) -> list[tuple[float, float, float]]:
        """``(last step, start rate, end rate)`` of each phase, as torch's ``_schedule_phases``."""
        initial = self.max_lr / self.div_factor
        low = initial / self.final_div_factor
        up_end = float(self.pct_start * self.total_steps) - 1
        last = float(self.total_steps - 1)
        if self.three_phase:
            down_end = float(2 * self.pct_start * self.total_steps) - 2
            return [(up_end, initial, self.max_lr), (down_end, self.max_lr, initial),
                    (last, initial, low)]
        return [(up_end, initial, self.max_lr), (last, self.max_lr, low)]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def lr_at(self, step: int) -> float:
        if step > self.total_steps:
            raise ValueError(
                f"OneCycle stepped {step} times but total_steps is {self.total_steps}; set "
                "total_steps to the number of steps the run takes (epochs * batches per epoch "
                "with interval='batch')."
            )
        start_step = 0.0
        phases = self._phases()
        for i, (end_step, start_lr, end_lr) in enumerate(phases):
            if step <= end_step or i == len(phases) - 1:
                return self._anneal(start_lr, end_lr, (step - start_step) / (end_step - start_step))
            start_step = end_step
        raise AssertionError("unreachable")  # the last phase always answers


SCHEDULES: dict[str, type[Schedule]] = {
    "constant": Constant,
    "step": StepLR,
    "exponential": Exponential,
    "cosine": CosineAnnealing,
    "cyclic": Cyclic,
    "plateau": ReduceOnPlateau,
    "linear_warmup": LinearWarmup,
    "one_cycle": OneCycle,
}


def make_schedule(name: str, base_lr: float, **options: Any) -> Schedule:
    """A schedule by name: constant, step, exponential, cosine, cyclic, plateau, linear_warmup,
    one_cycle (``base_lr`` is its ``max_lr``); ``interval="batch"`` among the options steps it
    per batch."""
    if not isinstance(name, str):
        raise TypeError(f"schedule name must be a string; got {type(name).__name__}.")
    key = name.strip().lower().replace("-", "_")
    if key not in SCHEDULES:
        raise ValueError(
            f"unknown schedule {name!r}; expected one of {', '.join(map(repr, SCHEDULES))}."
            + suggest(key, SCHEDULES)
        )
    cls = SCHEDULES[key]
    params = list(inspect.signature(cls).parameters.values())[1:]  # all but the base rate
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
