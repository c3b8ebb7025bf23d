"""Layers with explicit forward and backward passes (NumPy, float32 by default).

Each layer caches in ``forward`` what its ``backward`` needs; ``backward(grad_out)`` returns the
gradient with respect to the layer's input and *overwrites* ``self.grads`` (one backward per
batch, so nothing has to be zeroed between steps); ``backward_params(grad_out)`` fills the
gradients without returning the input's (what a trainer calls: the data need none). Parameters
are plain NumPy arrays that optimizers update in place; ``parameters()`` and ``gradients()``
hand out the arrays themselves, so references held by an optimizer or a callback stay valid.

A network is a ``Sequential``; its ``parameters()`` are named like torch's ``state_dict``
(``"0.weight"``, ``"0.bias"``, ``"2.weight"``, ...). Shapes follow torch: a ``Linear`` weight is
``(out_features, in_features)`` and ``y = x @ W.T + b``.

Every backward pass here is checked against central finite differences and torch autograd in
``tests/test_layers.py``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from losslab.losses._primitives import sigmoid as _stable_sigmoid
from losslab.losses._validation import suggest
from losslab.special import erfc

__all__ = [
    "Layer",
    "Linear",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "GELU",
    "Softmax",
    "Dropout",
    "Sequential",
    "mlp",
    "linear_model",
    "layer_from_config",
    "eval_mode",
    "ACTIVATIONS",
    "INITS",
]

INITS = ("glorot", "he", "torch")


def _float_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be 'float32' or 'float64'; got {dtype!r}.") from None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"{name} must be 'float32' or 'float64'; got {dt}.")
    return dt


class Layer:
    """Base class: a differentiable function of its input with optional parameters."""

    def __init__(self) -> None:
        self.training = True
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """``dL/dx`` from ``dL/dy``; fills ``self.grads`` (overwriting them)."""
        raise NotImplementedError

    def backward_params(self, grad_out: np.ndarray) -> None:
        """Fill ``self.grads`` from ``dL/dy`` without returning ``dL/dx`` (a trainer never needs
        the gradient with respect to the data). Layers for which ``dL/dx`` costs something skip
        computing it; by default this is ``backward`` with its result dropped."""
        self.backward(grad_out)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def parameters(self) -> dict[str, np.ndarray]:
        return {}

    def gradients(self) -> dict[str, np.ndarray]:
        return self.grads

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g.fill(0)

    def train(self, mode: bool = True) -> Layer:
        self.training = bool(mode)
        return self

    def eval(self) -> Layer:
        return self.train(False)

    def input_features(self) -> int | None:
        """The width of the input this layer expects (None when any width goes)."""
        return None

    def config(self) -> dict[str, Any]:
        """The constructor arguments as JSON-able values (for saving a model without pickle)."""
        return {"type": type(self).__name__}

    # -- state: parameters and the dropout masks' random streams ------------------------------

    def load_parameters(self, params: dict[str, Any]) -> None:
        """Copy ``params`` into the layer's arrays in place (names and shapes checked)."""
        own = self.parameters()
        missing = sorted(set(own) - set(params))
        extra = sorted(set(params) - set(own))
        if missing or extra:
            raise ValueError(
                f"params must have the model's names; missing {missing}, unexpected {extra}."
            )
        for k, a in own.items():
            v = np.asarray(params[k])
            if v.shape != a.shape:
                raise ValueError(f"params[{k!r}] must have shape {a.shape}; got {v.shape}.")
        for k, a in own.items():
            a[...] = params[k]

    def dropouts(self) -> list[Dropout]:
        """Every Dropout layer in this one (nested ones included), in order."""
        return []

    def set_rng(self, rng: np.random.Generator | int | None) -> None:
        """Give every Dropout its own generator, seeded in order from ``rng`` (or a seed)."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        for d in self.dropouts():
            d.rng = np.random.default_rng(int(rng.integers(0, 2**63 - 1)))

    def rng_states(self) -> list[dict[str, Any]]:
        """The Dropout generators' states (``bit_generator.state`` dicts: str and int values)."""
        return [dict(d.rng.bit_generator.state) for d in self.dropouts()]

    def set_rng_states(self, states: list[dict[str, Any]]) -> None:
        drops = self.dropouts()
        if len(states) != len(drops):
            raise ValueError(f"states must hold {len(drops)} generator states; got {len(states)}.")
        for d, s in zip(drops, states):
            d.rng.bit_generator.state = s

    def state_dict(self) -> dict[str, Any]:
        """``{"params": {name: copy}, "rng": [dropout generator states]}``: what continuing
        exactly needs (the architecture is ``config()``)."""
        return {
            "params": {k: v.copy() for k, v in self.parameters().items()},
            "rng": self.rng_states(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()`` in place; names, shapes and dtypes must match."""
        own = self.parameters()
        for k, v in state["params"].items():
            if k in own and np.asarray(v).dtype != own[k].dtype:
                raise ValueError(
                    f"state's parameter {k!r} is {np.asarray(v).dtype}; the model's is "
                    f"{own[k].dtype}."
                )
        if len(state["rng"]) != len(self.dropouts()):
            raise ValueError(
                f"state holds {len(state['rng'])} dropout generator states; the model has "
                f"{len(self.dropouts())} Dropout layers: not the same architecture."
            )
        self.load_parameters(state["params"])
        self.set_rng_states(state["rng"])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"

    def _need_cache(self, name: str) -> Any:
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward.")
        return value


# --------------------------------------------------------------------------------------------
# Linear


class Linear(Layer):
    """Affine map ``y = x @ W.T + b`` with ``W`` of shape ``(out_features, in_features)``.

    Initialisation (biases start at zero except for ``"torch"``):

    - ``"glorot"`` (Xavier uniform): ``W ~ U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``
      (Glorot & Bengio, 2010); keeps the activations' variance for tanh/sigmoid nets.
    - ``"he"`` (Kaiming normal, fan_in): ``W ~ N(0, 2 / fan_in)`` (He et al., 2015); for ReLU.
    - ``"torch"``: torch.nn.Linear's default, ``W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.

    Draws are made in float64 and cast, so float32 and float64 models built from the same
    ``rng`` state hold the same weights up to rounding. Inputs of another dtype are cast to the
    layer's dtype; inputs may have leading batch dimensions ``(..., in_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        init: str = "glorot",
        dtype: Any = "float32",
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}.")
        if init not in INITS:
            raise ValueError(
                f"init must be one of {', '.join(map(repr, INITS))}; got {init!r}."
                + suggest(str(init), INITS)
            )
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.init, self.use_bias = init, bool(bias)
        self.dtype = _float_dtype(dtype)
        rng = np.random.default_rng() if rng is None else rng
        fan_in, fan_out = self.in_features, self.out_features
        shape = (fan_out, fan_in)
        if init == "glorot":
            a = math.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-a, a, size=shape)
        elif init == "he":
            w = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)
        else:
            bound = 1.0 / math.sqrt(fan_in)
            w = rng.uniform(-bound, bound, size=shape)
        self.weight = w.astype(self.dtype)
        self.bias: np.ndarray | None = None
        self.grads = {"weight": np.zeros_like(self.weight)}
        if self.use_bias:
            if init == "torch":
                b = rng.uniform(-1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in), size=fan_out)
            else:
                b = np.zeros(fan_out)
            self.bias = b.astype(self.dtype)
            self.grads["bias"] = np.zeros_like(self.bias)
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"x must have {self.in_features} features in its last dimension "
                f"(Linear({self.in_features}, {self.out_features})); got shape {x.shape}."
            )
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        self._x = x
        y = x @ self.weight.T
        if self.bias is not None:
            y += self.bias  # in place: y is a fresh array
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """With ``g = dL/dy``: ``dL/dW = g^T x``, ``dL/db = sum_rows g``, ``dL/dx = g W``."""
        self.backward_params(grad_out)
        return grad_out @ self.weight

    def backward_params(self, grad_out: np.ndarray) -> None:
        """``dL/dW`` and ``dL/db`` only: ``dL/dx`` costs as much as the forward product and the
        first layer of a network does not need it."""
        x = self._need_cache("_x")
        g = grad_out.reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        np.matmul(g.T, x2, out=self.grads["weight"])
        if self.bias is not None:
            np.sum(g, axis=0, out=self.grads["bias"])

    def input_features(self) -> int | None:
        return self.in_features

    def parameters(self) -> dict[str, np.ndarray]:
        p = {"weight": self.weight}
        if self.bias is not None:
            p["bias"] = self.bias
        return p

    def config(self) -> dict[str, Any]:
        return {
            "type": "Linear",
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.use_bias,
            "init": self.init,
            "dtype": str(self.dtype),
        }


# --------------------------------------------------------------------------------------------
# Activations (no parameters; dtype in = dtype out)


class ReLU(Layer):
    """``y = max(x, 0)``; ``dy/dx = 1[x > 0]`` (0 at x = 0, as torch)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.maximum(x, 0)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * self._need_cache("_mask")


class LeakyReLU(Layer):
    """``y = x`` for x > 0 else ``negative_slope * x``; ``dy/dx = 1`` or ``negative_slope``."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.where(self._mask, x, x * self.negative_slope)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        mask = self._need_cache("_mask")
        return np.where(mask, grad_out, grad_out * self.negative_slope)

    def config(self) -> dict[str, Any]:
        return {"type": "LeakyReLU", "negative_slope": self.negative_slope}


class Sigmoid(Layer):
    """``y = 1 / (1 + exp(-x))`` without overflow; ``dy/dx = y (1 - y)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = _stable_sigmoid(np, x)
        return self._y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._need_cache("_y")
        return grad_out * y * (1.0 - y)


class Tanh(Layer):
    """``y = tanh(x)``; ``dy/dx = 1 - y^2``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = np.tanh(x)
        return self._y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._need_cache("_y")
        return grad_out * (1.0 - y * y)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


class GELU(Layer):
    """Gaussian error linear unit (Hendrycks & Gimpel, 2016).

    ``approximate="none"`` (torch's default): ``y = x Phi(x)`` with the normal CDF
    ``Phi(x) = erfc(-x / sqrt 2) / 2``; ``dy/dx = Phi(x) + x phi(x)``, ``phi`` the normal density.
    ``approximate="tanh"``: ``y = x (1 + tanh(u)) / 2``, ``u = sqrt(2/pi) (x + 0.044715 x^3)``;
    ``dy/dx = (1 + t)/2 + x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2``, ``t = tanh(u)``.
    Same as ``torch.nn.GELU`` (the exact form is written with erfc so that very negative x keep
    full relative accuracy, where ``1 + erf`` would cancel).
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh'; got {approximate!r}.")
        self.approximate = approximate

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        if self.approximate == "tanh":
            self._t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x))
            return 0.5 * x * (1.0 + self._t)
        self._cdf = 0.5 * erfc(-_SQRT_HALF * x)
        return x * self._cdf

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x = self._need_cache("_x")
        if self.approximate == "tanh":
            t = self._t
            du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * x * x)
            return grad_out * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
        return grad_out * (self._cdf + x * pdf)

    def config(self) -> dict[str, Any]:
        return {"type": "GELU", "approximate": self.approximate}


class Softmax(Layer):
    """``y_i = exp(x_i - max x) / sum_j exp(x_j - max x)`` along ``axis``.

    Backward (Jacobian ``diag(y) - y y^T`` applied to g): ``dL/dx = y * (g - sum_j g_j y_j)``.
    For classification prefer raw logits with the catalog's cross-entropy, which fuses the two.
    """

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = int(axis)

    def forward(self, x: np.ndarray) -> np.ndarray:
        e = np.exp(x - np.max(x, axis=self.axis, keepdims=True))
        e /= np.sum(e, axis=self.axis, keepdims=True)
        self._y = e
        return e

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._need_cache("_y")
        return y * (grad_out - np.sum(grad_out * y, axis=self.axis, keepdims=True))

    def config(self) -> dict[str, Any]:
        return {"type": "Softmax", "axis": self.axis}


class Dropout(Layer):
    """Inverted dropout (Srivastava et al., 2014): in training, ``y = x * m`` with
    ``m = 1[u >= p] / (1 - p)``, ``u ~ U[0, 1)`` drawn from ``self.rng``; identity in eval mode.

    Backward: ``dL/dx = g * m`` with the same mask. The last mask (already scaled, in x's dtype) is
    ``self.mask``. Uniforms are drawn in float32 whatever the dtype, so float32 and float64 models
    with the same generator state drop the same units. ``p = 1`` drops everything (zeros, as
    torch).
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)):
            raise TypeError(f"p must be a number in [0, 1]; got {p!r}.")
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p (dropout probability) must lie in [0, 1]; got {p!r}.")
        self.p = float(p)
        self.rng = np.random.default_rng() if rng is None else rng
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0.0:
            self.mask = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        self.mask = np.multiply(keep, scale, dtype=x.dtype)
        return x * self.mask

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out if self.mask is None else grad_out * self.mask

    def dropouts(self) -> list[Dropout]:
        return [self]

    def config(self) -> dict[str, Any]:
        return {"type": "Dropout", "p": self.p}


# --------------------------------------------------------------------------------------------
# Containers and builders


class Sequential(Layer):
    """Layers applied in order. Parameters are named ``"<index>.<name>"`` as in torch."""

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} must be a losslab Layer; got {type(layer).__name__}.")
        self.layers = list(layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Chain rule, last layer first."""
        g = grad_out
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return g

    def backward_params(self, grad_out: np.ndarray) -> None:
        """The chain rule down to the first layer, which fills its gradients only."""
        g = grad_out
        for layer in reversed(self.layers[1:]):
            g = layer.backward(g)
        if self.layers:
            self.layers[0].backward_params(g)

    def parameters(self) -> dict[str, np.ndarray]:
        return {f"{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.parameters().items()}

    def gradients(self) -> dict[str, np.ndarray]:
        return {f"{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.gradients().items()}

    def zero_grad(self) -> None:
        for layer in self.layers:
            layer.zero_grad()

    def train(self, mode: bool = True) -> Sequential:
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def dropouts(self) -> list[Dropout]:
        return [d for layer in self.layers for d in layer.dropouts()]

    def input_features(self) -> int | None:
        """The first layer's that knows one (activations and dropout take any width)."""
        return next((w for w in (la.input_features() for la in self.layers) if w is not None), None)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def config(self) -> dict[str, Any]:
        return {"type": "Sequential", "layers": [layer.config() for layer in self.layers]}

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


ACTIVATIONS: dict[str, type] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "gelu": GELU,
}

_LAYER_TYPES: dict[str, type] = {
    c.__name__: c for c in (Linear, ReLU, LeakyReLU, Sigmoid, Tanh, GELU, Softmax, Dropout)
}


def layer_from_config(config: dict[str, Any], rng: np.random.Generator | None = None) -> Layer:
    """Rebuild a layer (or a Sequential) from ``layer.config()``; weights are freshly initialised,
    load the saved ones with ``Sequential.load_parameters``."""
    cfg = dict(config)
    kind = cfg.pop("type", None)
    if kind == "Sequential":
        return Sequential(*(layer_from_config(c, rng) for c in cfg["layers"]))
    if kind not in _LAYER_TYPES:
        raise ValueError(
            f"config has unknown layer type {kind!r}." + suggest(str(kind), _LAYER_TYPES)
        )
    if kind in ("Linear", "Dropout"):
        cfg["rng"] = rng
    return _LAYER_TYPES[kind](**cfg)


def _activation_factory(activation: str | type | Callable[[], Layer]) -> Callable[[], Layer]:
    if isinstance(activation, str):
        key = activation.strip().lower().replace("-", "_")
        if key not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; expected one of "
                f"{', '.join(map(repr, ACTIVATIONS))}." + suggest(key, ACTIVATIONS)
            )
        return ACTIVATIONS[key]
    if callable(activation):
        return activation
    raise TypeError(f"activation must be a name or a Layer class; got {activation!r}.")


def mlp(
    sizes: list[int] | tuple[int, ...],
    *,
    activation: str | type = "relu",
    dropout: float = 0.0,
    init: str | None = None,
    dtype: Any = "float32",
    seed: int | np.random.Generator | None = None,
) -> Sequential:
    """A multilayer perceptron ``Linear, act, [Dropout], ..., Linear`` (last layer: logits).

    ``sizes = [in, h1, ..., out]``. ``init`` defaults to ``"he"`` for ReLU-family activations and
    ``"glorot"`` otherwise. One ``seed`` fixes the initial weights and the dropout masks.
    """
    sizes = list(sizes) if isinstance(sizes, (list, tuple)) else sizes
    if (
        not isinstance(sizes, list)
        or len(sizes) < 2
        or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes)
    ):
        raise ValueError(
            f"sizes must be a list of at least two positive integers [in, ..., out]; got {sizes!r}."
        )
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
        0.0 <= dropout < 1.0
    ):
        raise ValueError(f"dropout must be a probability in [0, 1); got {dropout!r}.")
    make_act = _activation_factory(activation)
    if init is None:
        relu_family = make_act in (ReLU, LeakyReLU)
        init = "he" if relu_family else "glorot"
    dtype = _float_dtype(dtype)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    layers: list[Layer] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(n_in, n_out, init=init, dtype=dtype, rng=rng))
        if i < len(sizes) - 2:
            layers.append(make_act())
            if dropout > 0:
                layers.append(Dropout(dropout))
    model = Sequential(*layers)
    model.set_rng(rng)
    return model


def linear_model(
    in_features: int,
    out_features: int = 1,
    *,
    init: str = "glorot",
    dtype: Any = "float32",
    seed: int | np.random.Generator | None = None,
) -> Sequential:
    """``Sequential(Linear(in_features, out_features))``: linear regression / logits model."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return Sequential(Linear(in_features, out_features, init=init, dtype=dtype, rng=rng))


@contextlib.contextmanager
def eval_mode(model: Layer) -> Iterator[Layer]:
    """``with eval_mode(model):`` the model in evaluation mode (dropout off); its previous mode
    comes back afterwards, also after an error."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
