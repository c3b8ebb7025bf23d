"""Optimizers with torch.optim's update rules, on dicts of named NumPy arrays.

``opt.step(params, grads)`` updates every ``params[name]`` IN PLACE from ``grads[name]`` (names
missing from ``grads`` are left alone, like torch's parameters whose ``.grad`` is None). State is
kept per parameter name. ``opt.lr`` may be changed at any time (schedules do). ``state_dict()``
holds only str/int/float/bool/None, lists, dicts and NumPy arrays, so a checkpoint stores it
without pickle.

Each update rule below is torch's single-tensor implementation (torch 2.x, ``maximize=False``)
written in NumPy; ``tests/test_optimizers.py`` checks parameters after 20 steps against
torch.optim for every option. One deliberate difference: ``lr`` must be > 0 here (torch accepts
``lr=0``, which is almost always a configuration mistake); schedules may still set it to 0.

SGD and Adam/AdamW are written as in-place passes (``out=``) into one scratch array per parameter
shape: a NumPy expression such as ``m * b1 + (1 - b1) * g`` allocates a temporary per operator,
and at a few hundred thousand parameters per step every pass over memory counts. The scratch
arrays are not optimizer state (never saved). (SciPy's BLAS ``axpy`` would save three of Adam's
twelve passes, but SciPy ships its own OpenBLAS: with more than one thread its pool and NumPy's
spin against each other and an epoch became ten times slower.)
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np

from losslab.losses._validation import suggest

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "make_optimizer", "OPTIMIZERS"
]


def _number(
    value: Any, name: str, *, low: float = 0.0, strict: bool = False, high: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number; got {value!r}.")
    v = float(value)
    ok = (v > low if strict else v >= low) and (high is None or v < high)
    if not ok or math.isnan(v):
        rng = f"{'>' if strict else '>='} {low:g}"
        rng += f" and < {high:g}" if high is not None else ""
        raise ValueError(f"{name} must be {rng}; got {value!r}.")
    return v


class Optimizer:
    """Base class. Subclasses list their hyperparameters in ``_hyper`` and implement ``_update``."""

    _hyper: tuple[str, ...] = ("lr",)

    def __init__(self, lr: float) -> None:
        self.lr = _number(lr, "lr", strict=True)
        self.state: dict[str, dict[str, Any]] = {}
        self._scratch: dict[tuple[tuple[int, ...], np.dtype], np.ndarray] = {}

    # -- the update -------------------------------------------------------------------------

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """One update of every parameter that has a gradient, in place."""
        unknown = [k for k in grads if k not in params]
        if unknown:
            raise ValueError(
                f"grads has names that are not parameters: {unknown[:3]}."
                + suggest(unknown[0], params)
            )
        for name, p in params.items():
            g = grads.get(name)
            if g is None:
                continue
            if g.shape != p.shape:
                raise ValueError(
                    f"grads[{name!r}] must have the parameter's shape {p.shape}; got {g.shape}."
                )
            if g.dtype != p.dtype:
                g = g.astype(p.dtype)
            st = self.state.get(name)
            if st is None:
                st = self.state[name] = self._init_state(p)
            self._update(p, g, st)

    def _init_state(self, p: np.ndarray) -> dict[str, Any]:
        return {}

    def _buffer(self, p: np.ndarray) -> np.ndarray:
        """A scratch array shaped like ``p``, shared by the parameters of that shape and dtype
        (they are updated one after the other)."""
        key = (p.shape, p.dtype)
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = np.empty_like(p)
        return buf

    def _update(self, p: np.ndarray, g: np.ndarray, st: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- (de)serialisation ------------------------------------------------------------------

    def hyperparameters(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k in self._hyper
                for v in [getattr(self, k)]}

    def state_dict(self) -> dict[str, Any]:
        """``{"optimizer": name, "hyper": {...}, "state": {param: {key: array | int}}}``, copied."""
        return {
            "optimizer": type(self).__name__,
            "hyper": self.hyperparameters(),
            "state": {
                name: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
                for name, st in self.state.items()
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        kind = state.get("optimizer")
        if kind != type(self).__name__:
            raise ValueError(
                f"state is for optimizer {kind!r}, not {type(self).__name__!r}."
            )
        for k, v in state.get("hyper", {}).items():
            if k not in self._hyper:
                raise ValueError(f"state has unknown hyperparameter {k!r} for {kind}.")
            setattr(self, k, tuple(v) if isinstance(v, list) else v)
        self.state = {
            name: {
                k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else int(v))
                for k, v in st.items()
            }
            for name, st in state.get("state", {}).items()
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (torch.optim.SGD).

    ``g <- g + wd p``; with momentum ``b <- mu b + (1 - dampening) g`` (``b = g`` on the first
    step), then ``g <- g + mu b`` (Nesterov) or ``g <- b``; finally ``p <- p - lr g``.
    """

    _hyper = ("lr", "momentum", "dampening", "nesterov", "weight_decay")

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr)
        self.momentum = _number(momentum, "momentum")
        self.dampening = _number(dampening, "dampening", low=-math.inf)
        self.weight_decay = _number(weight_decay, "weight_decay")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening = 0.")

    def _update(self, p: np.ndarray, g: np.ndarray, st: dict[str, Any]) -> None:
        tmp = self._buffer(p)
        if self.weight_decay:
            g = np.add(g, self.weight_decay * p)  # a new array: g may be the model's own
        if self.momentum:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                np.multiply(g, 1.0 - self.dampening, out=tmp)
                buf += tmp
            if self.nesterov:
                np.multiply(buf, self.momentum, out=tmp)
                tmp += g
                g = tmp
            else:
                g = buf
        np.multiply(g, self.lr, out=tmp)
        p -= tmp


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) as torch.optim.Adam, with optional AMSGrad.

    ``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``, ``t`` the step;
    ``p <- p - lr/(1-b1^t) * m / (sqrt(v_hat)/sqrt(1-b2^t) + eps)`` with ``v_hat = v``, or its
    running maximum for AMSGrad. ``weight_decay`` here is *coupled*: ``g <- g + wd p``, i.e. an L2
    term ``wd/2 ||p||^2`` in the loss, which the adaptive scaling then distorts.

    The step is computed, with ``c = sqrt(1-b2^t)`` multiplying its numerator and denominator, as
    ``p <- p - (lr c/(1-b1^t)) * m / (sqrt(v_hat) + eps c)``: the same number (Kingma & Ba's
    "epsilon hat" ordering, Sec. 2, up to float rounding) with one pass fewer than torch's order;
    twelve in-place passes in all.
    """

    _hyper = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    _decoupled = False

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2); got {betas!r}.")
        self.betas = (
            _number(betas[0], "betas[0]", high=1.0),
            _number(betas[1], "betas[1]", high=1.0),
        )
        self.eps = _number(eps, "eps")
        self.weight_decay = _number(weight_decay, "weight_decay")
        self.amsgrad = bool(amsgrad)

    def _init_state(self, p: np.ndarray) -> dict[str, Any]:
        st: dict[str, Any] = {
            "step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)
        }
        if self.amsgrad:
            st["max_exp_avg_sq"] = np.zeros_like(p)
        return st

    def _update(self, p: np.ndarray, g: np.ndarray, st: dict[str, Any]) -> None:
        b1, b2 = self.betas
        st["step"] = t = st["step"] + 1
        if self._decoupled:
            p *= 1.0 - self.lr * self.weight_decay  # AdamW: shrink p directly, outside the moments
        elif self.weight_decay:
            g = np.add(g, self.weight_decay * p)  # a new array: g may be the model's own
        m, v, tmp = st["exp_avg"], st["exp_avg_sq"], self._buffer(p)
        np.subtract(g, m, out=tmp)  # m <- m + (1-b1)(g - m), rounded as torch's lerp_
        tmp *= 1.0 - b1
        m += tmp
        np.multiply(g, g, out=tmp)  # v <- b2 v + (1-b2) g^2
        tmp *= 1.0 - b2
        v *= b2
        v += tmp
        if self.amsgrad:
            np.maximum(st["max_exp_avg_sq"], v, out=st["max_exp_avg_sq"])
            v = st["max_exp_avg_sq"]
        c = math.sqrt(1.0 - b2**t)  # bias corrections folded into eps and the step size
        np.sqrt(v, out=tmp)
        tmp += self.eps * c
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr * c / (1.0 - b1**t)
        p -= tmp


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019) as torch.optim.AdamW: Adam plus *decoupled* weight
    decay ``p <- p (1 - lr wd)`` applied before the Adam step, not through the gradient."""

    _decoupled = True

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton, 2012) as torch.optim.RMSprop.

    ``s <- alpha s + (1-alpha) g^2``; centered: ``a <- alpha a + (1-alpha) g`` and
    ``d = sqrt(s - a^2) + eps``, else ``d = sqrt(s) + eps``; with momentum
    ``b <- mu b + g/d``, ``p <- p - lr b``, else ``p <- p - lr g/d``.
    """

    _hyper = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(
        self,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(lr)
        self.alpha = _number(alpha, "alpha")
        self.eps = _number(eps, "eps")
        self.weight_decay = _number(weight_decay, "weight_decay")
        self.momentum = _number(momentum, "momentum")
        self.centered = bool(centered)

    def _init_state(self, p: np.ndarray) -> dict[str, Any]:
        st: dict[str, Any] = {"step": 0, "square_avg": np.zeros_like(p)}
        if self.momentum > 0:
            st["momentum_buffer"] = np.zeros_like(p)
        if self.centered:
            st["grad_avg"] = np.zeros_like(p)
        return st

    def _update(self, p: np.ndarray, g: np.ndarray, st: dict[str, Any]) -> None:
        st["step"] += 1
        if self.weight_decay:
            g = g + self.weight_decay * p
        s = st["square_avg"]
        s *= self.alpha
        s += (1.0 - self.alpha) * (g * g)
        if self.centered:
            a = st["grad_avg"]
            a *= self.alpha
            a += (1.0 - self.alpha) * g
            d = np.sqrt(s - a * a)
        else:
            d = np.sqrt(s)
        d += self.eps
        if self.momentum > 0:
            b = st["momentum_buffer"]
            b *= self.momentum
            b += g / d
            p -= self.lr * b
        else:
            p -= self.lr * (g / d)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011) as torch.optim.Adagrad.

    ``s <- s + g^2`` (``s`` starts at ``initial_accumulator_value``);
    ``p <- p - lr/(1 + (t-1) lr_decay) * g / (sqrt(s) + eps)``.
    """

    _hyper = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(
        self,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        super().__init__(lr)
        self.lr_decay = _number(lr_decay, "lr_decay")
        self.weight_decay = _number(weight_decay, "weight_decay")
        self.initial_accumulator_value = _number(
            initial_accumulator_value, "initial_accumulator_value"
        )
        self.eps = _number(eps, "eps")

    def _init_state(self, p: np.ndarray) -> dict[str, Any]:
        return {"step": 0, "sum": np.full_like(p, self.initial_accumulator_value)}

    def _update(self, p: np.ndarray, g: np.ndarray, st: dict[str, Any]) -> None:
        st["step"] = t = st["step"] + 1
        if self.weight_decay:
            g = g + self.weight_decay * p
        clr = self.lr / (1.0 + (t - 1) * self.lr_decay)
        s = st["sum"]
        s += g * g
        std = np.sqrt(s)
        std += self.eps
        p -= clr * (g / std)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}


def make_optimizer(name: str, **options: Any) -> Optimizer:
    """An optimizer by name (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"adagrad"``).

    ``lr=None`` means the optimizer's default learning rate. Unknown names and options raise with
    the closest valid ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"optimizer name must be a string; got {type(name).__name__}.")
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {name!r}; expected one of {', '.join(map(repr, OPTIMIZERS))}."
            + suggest(key, OPTIMIZERS)
        )
    cls = OPTIMIZERS[key]
    if options.get("lr", 0) is None:
        options.pop("lr")
    allowed = list(inspect.signature(cls).parameters)
    for k in options:
        if k not in allowed:
            raise TypeError(
                f"{cls.__name__} has no option {k!r}." + suggest(k, allowed)
                + f" Its options: {', '.join(allowed)}."
            )
    return cls(**options)
