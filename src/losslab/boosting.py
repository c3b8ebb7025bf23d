"""Every catalog loss as an XGBoost or LightGBM objective, with its closed-form Hessian.

::

    import xgboost as xgb
    from losslab import boosting

    obj = boosting.objective("focal", gamma=2.0, alpha=0.25)         # XGBoost native API
    base = boosting.init_score("focal", y, gamma=2.0, alpha=0.25)    # the best constant score
    booster = xgb.train({"base_score": base}, xgb.DMatrix(X, y), 100, obj=obj,
                        custom_metric=boosting.metric("focal", gamma=2.0, alpha=0.25))

    import lightgbm as lgb
    obj = boosting.objective("pseudo_huber", library="lightgbm", delta=2.0)
    model = lgb.train({"objective": obj}, lgb.Dataset(X, y, init_score=...))

A boosting library fits raw scores ``f`` (margins, log-means, logits) by Newton steps: each round
it asks the objective for the gradient and the Hessian of every row's loss with respect to that
row's score. ``objective(name, ...)`` returns that function for catalog loss ``name`` in the
signature the library and API expect:

- XGBoost native: ``obj(predt, dtrain) -> (grad, hess)``, for ``xgb.train(..., obj=obj)``;
- XGBoost sklearn: ``obj(y_true, y_pred, *, sample_weight=None)``, for
  ``XGBRegressor(objective=obj)`` / ``XGBClassifier``;
- LightGBM native: ``obj(preds, train_data)``, for ``lgb.train({"objective": obj, ...}, ...)``;
- LightGBM sklearn: ``obj(y_true, y_pred, weight=None, group=None)``, for
  ``LGBMRegressor(objective=obj)`` / ``LGBMClassifier``.

Gradient and Hessian are those of ``scale * sum_i w_i l_i``: the catalog's
``Loss(reduction="sum").grad_and_hess(scores, labels, sample_weight=w)``, one row (one score, or
one row of ``k`` class scores) at a time, with the libraries' sample weights passed through the
catalog's ``sample_weight``. Large inputs are computed block by block on all cores (the catalog's
blocked executor). Neither library is imported here.

**Which losses.** Those whose first input is a raw score (``input_kind`` "real", "logits" or
"scores", not probabilities) with one score per row (``layout="elementwise"``: regression, binary)
or one row of class scores (``layout="class_axis"``: ``cross_entropy``, ``softmax_focal``,
``poly1``, ``multi_margin``), whose only other input is the target and which give second
derivatives. Anything else is refused at ``objective()`` with the reason.

**Labels.** As the library holds them (float): class labels are converted to integer indices
(non-integers refused); a loss on {-1, +1} labels (``exponential``, ``hinge``, ``soft_margin``...)
also accepts 0/1 labels, which it maps to -1/+1 (a classifier's labels are 0/1).

**Multiclass.** Both libraries hand a custom objective the scores as an ``(n, k)`` array and take
gradient and Hessian in that shape (XGBoost >= 2.1, LightGBM >= 4.0; set ``num_class`` in native
params). They take the Hessian's diagonal only: we return the exact diagonal of each row's
``k x k`` Hessian (for cross-entropy ``p (1 - p)``). Their built-in multiclass objectives scale
that diagonal up (XGBoost's ``multi:softprob`` by 2, LightGBM's ``multiclass`` by ``k / (k - 1)``)
to make the diagonal Newton step more cautious; ``scale`` does not reproduce that (it scales the
gradient too), so expect slightly larger steps than theirs.

**hessian=** chooses what feeds the Newton step:

- ``"exact"``: the loss's Hessian, as derived and tested. Can be negative (focal, poly1,
  softmax_focal, msle), which breaks a Newton step: the leaf value ``-G / (H + lambda)`` then
  points uphill or explodes.
- ``"clip"``: the exact Hessian floored at ``hessian_floor`` (default ``1e-6``, XGBoost's own
  floor in ``reg:squaredlogerror``) times the row's weight.
- ``"fisher"``: the expected Hessian (``Loss.fisher``: the Hessian averaged over targets drawn
  from the model's own prediction), positive by construction, where the loss defines one
  (``msle``: ``1 / (1 + x)^2``; ``gamma_deviance``: 1). Losses with a canonical link
  (``mse``, ``bce_with_logits``, ``cross_entropy``, ``poisson_nll``) need none: their exact
  Hessian is already the expected one.
- ``"constant"``: the row's weight (1 unweighted) times ``scale``, for losses whose Hessian is zero
  almost everywhere (``l1``, ``quantile``, ``mape``, ``hinge``): the leaf value becomes a
  weighted mean of negative gradients, as XGBoost's own ``reg:quantileerror`` and
  ``reg:absoluteerror`` start from (they then refit leaves, which a custom objective cannot).

The default is read off the loss's declared Hessian (``LossSpec.hessian``): ``"nonnegative"`` ->
``"exact"``; ``"zero"`` -> ``"constant"``; ``"indefinite"`` -> ``"fisher"`` where the loss defines
an expected Hessian, else ``"clip"``. One refinement, asked of the formula on the loss's own
example inputs: a Hessian that vanishes there for the chosen options (``multi_margin`` with
``p=1``, declared "nonnegative" for its ``p=2``) is treated as "zero". ``default_hessian(name,
**options)`` says which. For the piecewise-quadratic losses (``huber``, ``smooth_l1``,
``squared_hinge``) the exact Hessian is 0 on the rows in their linear stretch; those rows then
move only through the other rows of their leaf (``"clip"`` with a larger floor is the remedy when
most rows are there).

**scale** multiplies the loss (gradient and Hessian alike), which matters because the libraries'
regularisation (``lambda``, ``min_child_weight``, ``min_sum_hessian_in_leaf``) is absolute:
``objective("mse", scale=0.5)`` is exactly XGBoost's ``reg:squarederror`` and LightGBM's
``regression`` (both minimise ``(f - y)^2 / 2``; the catalog's ``mse`` has no half).

**Starting point.** ``init_score(name, y, ...)`` is the constant score minimising the loss (found
by safeguarded Newton steps and bisection on the catalog's own gradient; a vector of ``k`` scores
for multiclass losses). XGBoost: pass it as ``base_score`` (native API and ``XGBRegressor``: the
custom objective runs on the identity link, so the value is a raw score; ``XGBClassifier`` keeps
``binary:logistic`` for ``predict_proba``, so there pass ``1 / (1 + exp(-init))``) or, per row,
as ``DMatrix(base_margin=...)`` (multiclass).
LightGBM ignores ``boost_from_average`` with a custom objective (microsoft/LightGBM#7193): pass it
as ``Dataset(init_score=...)`` and add it to ``predict(..., raw_score=True)`` yourself (LightGBM
does not store it in the model).

**Evaluation.** ``metric(name, library=..., api=...)`` is the loss's weighted mean per row on raw
scores, in the library's metric signature, lower is better: for early stopping alongside
``objective`` (both libraries hand a custom metric raw scores when the objective is custom).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

import losslab
from losslab.losses._registry import Loss, LossSpec

__all__ = ["objective", "init_score", "metric", "default_hessian", "boostable", "HESSIANS"]

HESSIANS = ("exact", "clip", "fisher", "constant")
LIBRARIES = ("xgboost", "lightgbm")
APIS = ("native", "sklearn")
# XGBoost's own Hessian floor (reg:squaredlogerror).
DEFAULT_FLOOR = 1e-6
# A boosting score is raw: these input kinds are scores, the others (probabilities,
# log-probabilities) are outputs of a link the booster does not apply.
_SCORE_KINDS = ("real", "logits", "scores")
_CLASS_TARGETS = ("class", "class_index")


# -- what a boosting objective is ------------------------------------------------------------


class _Objective:
    """A catalog loss with ``reduction="sum"`` and the choices of ``objective()``, computing
    ``(grad, hess)`` for raw scores, labels and optional sample weights."""

    def __init__(
        self, name: str, hessian: str | None, hessian_floor: float, scale: float,
        options: dict[str, Any],
    ) -> None:
        if "reduction" in options:
            raise TypeError(
                "a boosting objective sums the per-row losses (each row's gradient and Hessian "
                "are its own); reduction cannot be chosen."
            )
        self.spec = _boostable(losslab.spec(name))
        self.options = dict(options)
        self.loss = Loss(self.spec, reduction="sum", **options)  # bad options raise here
        self.scale = _positive("scale", scale)
        self.floor = _positive("hessian_floor", hessian_floor)
        self.hessian = self._choose(hessian)

    @property
    def multiclass(self) -> bool:
        return self.spec.layout == "class_axis"

    def _choose(self, hessian: str | None) -> str:
        if hessian is None:
            return _default_for(self.spec, self.loss)
        if not isinstance(hessian, str) or hessian not in HESSIANS:
            raise ValueError(f"hessian must be one of {', '.join(map(repr, HESSIANS))}; "
                             f"got {hessian!r}.")
        if hessian == "fisher" and not _has_fisher(self.loss):
            raise ValueError(
                f"hessian='fisher': {self.spec.name} defines no expected Hessian (it is not a "
                f"likelihood with a non-canonical link); use 'exact', 'clip' or 'constant'."
            )
        return hessian

    def __call__(self, scores: Any, labels: Any, weights: Any) -> tuple[np.ndarray, np.ndarray]:
        x = _scores(scores, self.multiclass, self.spec.name)
        y = _labels(labels, self.spec, x)
        w = None
        if weights is not None and np.size(weights):
            w = np.asarray(weights, dtype=x.dtype)
        loss = self.loss
        if self.hessian == "constant":
            g = loss.grad(x, y, sample_weight=w)
            h = np.ones_like(x) if w is None else np.broadcast_to(_per_row(w, x), x.shape).copy()
        elif self.hessian == "fisher":
            g, h = loss.grad_and_fisher(x, y, sample_weight=w)
        else:
            g, h = loss.grad_and_hess(x, y, sample_weight=w)
            if self.hessian == "clip":
                floor = x.dtype.type(self.floor)
                np.maximum(h, floor if w is None else floor * _per_row(w, x), out=h)
        if self.scale != 1.0:
            g *= x.dtype.type(self.scale)
            h *= x.dtype.type(self.scale)
        return g, h

    def value(self, scores: Any, labels: Any, weights: Any) -> float:
        """The weighted mean of the per-row losses, ``scale`` included."""
        x = _scores(scores, self.multiclass, self.spec.name)
        y = _labels(labels, self.spec, x)
        w = None if weights is None or not np.size(weights) else np.asarray(weights, x.dtype)
        total = float(self.loss(x, y, sample_weight=w))
        count = float(x.shape[0]) if w is None else float(np.sum(w, dtype=np.float64))
        return self.scale * total / count if count else math.nan


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"{name} must be a positive number; got {value!r}.")
    if not (math.isfinite(float(value)) and float(value) > 0):
        raise ValueError(f"{name} must be a positive number; got {value!r}.")
    return float(value)


def _reason(spec: LossSpec) -> str | None:
    """Why a booster cannot fit ``spec`` (None when it can)."""
    if spec.inputs != ("input", "target") or spec.differentiable != ("input",):
        return (f"it takes {', '.join(spec.inputs)} (differentiable: "
                f"{', '.join(spec.differentiable)}); a booster fits one score per row against a "
                f"target")
    if spec.input_kind not in _SCORE_KINDS:
        return (f"its input holds {spec.input_kind.replace('_', '-')}, but a booster fits raw "
                f"scores; use the same loss on logits or scores")
    if spec.layout not in ("elementwise", "class_axis") or spec.couples_items:
        return f"its items cover {spec.layout.replace('_', ' ')} slices, not one row of scores"
    if spec.layout == "class_axis" and spec.target_kind not in _CLASS_TARGETS:
        return "its targets are not class labels"
    if spec.hessian is None:
        return "it gives no second derivatives"
    if spec.task == "embedding":
        return "it scores embeddings (distances between pairs), not one prediction per row"
    return None


def _boostable(spec: LossSpec) -> LossSpec:
    """The spec, if a booster can fit it; else a ValueError saying why."""
    why = _reason(spec)
    if why:
        raise ValueError(
            f"{spec.name} cannot be a boosting objective: {why}. Losses that can: "
            f"{', '.join(boostable())}."
        )
    return spec


def boostable() -> list[str]:
    """The catalog losses that can be boosting objectives, sorted."""
    return [n for n in losslab.available() if _reason(losslab.spec(n)) is None]


def _has_fisher(loss: Loss) -> bool:
    """Whether the formula gives an expected Hessian for these options (asked of the formula
    itself, on the loss's own example inputs)."""
    inputs = loss.spec.example(np.random.default_rng(0), "float64", **loss.options)
    try:
        loss.fisher(*inputs)
    except NotImplementedError:
        return False
    return True


def _hessian_vanishes(loss: Loss) -> bool:
    """Whether the Hessian is zero on every one of the loss's own example inputs for these
    options: a loss declared "nonnegative" for its options at large may be piecewise linear for
    some (multi_margin with p=1), where the exact Hessian would stall every Newton step."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        inputs = loss.spec.example(rng, "float64", **loss.options)
        if np.any(np.asarray(loss.hess(*inputs)) != 0):
            return False
    return True


def _default_for(spec: LossSpec, loss: Loss) -> str:
    if spec.hessian == "zero" or _hessian_vanishes(loss):
        return "constant"
    if spec.hessian == "nonnegative":
        return "exact"
    return "fisher" if _has_fisher(loss) else "clip"


def default_hessian(name: str, **options: Any) -> str:
    """The ``hessian=`` that ``objective(name, **options)`` uses when none is given: read off the
    loss's declared Hessian (see the module docstring)."""
    spec = _boostable(losslab.spec(name))
    return _default_for(spec, Loss(spec, reduction="sum", **options))


# -- scores, labels, weights -------------------------------------------------------------------


def _scores(scores: Any, multiclass: bool, name: str) -> np.ndarray:
    x = np.asarray(scores)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if multiclass:
        if x.ndim != 2 or x.shape[1] < 2:
            raise ValueError(
                f"{name} is a multiclass loss: scores must have shape (n, k) with k >= 2 classes "
                f"(XGBoost: num_class=k; LightGBM: num_class=k and objective of k outputs); got "
                f"shape {x.shape}."
            )
        return x
    if x.ndim == 2 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim != 1:
        raise ValueError(
            f"{name} takes one score per row: scores must have shape (n,); got {x.shape}. "
            f"(A multi-output booster needs a multiclass loss.)"
        )
    return x


def _labels(labels: Any, spec: LossSpec, x: np.ndarray) -> np.ndarray:
    y = np.asarray(labels)
    n = x.shape[0]
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), one per row; got {y.shape}.")
    if spec.target_kind in _CLASS_TARGETS:
        classes = y.astype(np.int64)
        if not np.array_equal(classes, y):
            raise ValueError(
                f"{spec.name} needs class labels 0, 1, ..., k-1; found a non-integer label."
            )
        return classes
    y = y.astype(x.dtype, copy=False)
    if spec.target_kind == "sign" and n and not np.all((y == 1) | (y == -1)):
        if not np.all((y == 0) | (y == 1)):
            raise ValueError(
                f"{spec.name} needs binary labels, 0/1 or -1/+1; found another value."
            )
        y = 2 * y - 1  # a classifier's 0/1 labels as the loss's -1/+1
    return y


def _per_row(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Row weights shaped to broadcast against scores of shape (n,) or (n, k)."""
    return w[:, None] if x.ndim == 2 else w


# -- the public functions ----------------------------------------------------------------------


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")
    return value


def objective(
    name: str,
    library: str = "xgboost",
    api: str = "native",
    hessian: str | None = None,
    *,
    hessian_floor: float = DEFAULT_FLOOR,
    scale: float = 1.0,
    **options: Any,
) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """Catalog loss ``name`` (with its ``options``) as a custom objective for ``library``'s
    ``api`` (see the module docstring for the signatures, ``hessian=``, ``scale`` and labels).

    Bad names, options and choices raise here, not at the first boosting round. The returned
    function has attributes ``loss`` (the catalog ``Loss``, reduction "sum"), ``hessian`` (the
    choice in force) and ``scale``.
    """
    library = _check_choice("library", library, LIBRARIES)
    api = _check_choice("api", api, APIS)
    obj = _Objective(name, hessian, hessian_floor, scale, options)

    if library == "xgboost" and api == "native":

        def fn(predt: np.ndarray, dtrain: Any) -> tuple[np.ndarray, np.ndarray]:
            return obj(predt, dtrain.get_label(), dtrain.get_weight())

    elif library == "xgboost":

        def fn(  # type: ignore[misc]
            y_true: np.ndarray, y_pred: np.ndarray, *, sample_weight: Any = None
        ) -> tuple[np.ndarray, np.ndarray]:
            return obj(y_pred, y_true, sample_weight)

    elif api == "native":

        def fn(preds: np.ndarray, train_data: Any) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[misc]
            return obj(preds, train_data.get_label(), train_data.get_weight())

    else:
        # LightGBM counts the parameters to decide what to pass: four means (y, pred, w, group).
        def fn(  # type: ignore[misc]
            y_true: np.ndarray, y_pred: np.ndarray, weight: Any = None, group: Any = None
        ) -> tuple[np.ndarray, np.ndarray]:
            return obj(y_pred, y_true, weight)

    fn.__name__ = fn.__qualname__ = f"{obj.spec.name}_objective"
    fn.__doc__ = (
        f"losslab {obj.spec.name} ({_describe(obj)}) as a {library} {api}-API objective: "
        f"gradient and Hessian ({obj.hessian}) of each row's loss w.r.t. its raw score."
    )
    fn.loss = obj.loss  # type: ignore[attr-defined]
    fn.hessian = obj.hessian  # type: ignore[attr-defined]
    fn.scale = obj.scale  # type: ignore[attr-defined]
    return fn


def _describe(obj: _Objective) -> str:
    opts = ", ".join(f"{k}={v!r}" for k, v in obj.options.items())
    return (opts + ", " if opts else "") + f"scale={obj.scale:g}"


def metric(
    name: str,
    library: str = "xgboost",
    api: str = "native",
    *,
    scale: float = 1.0,
    **options: Any,
) -> Callable[..., Any]:
    """Catalog loss ``name`` as an evaluation metric on raw scores (the weighted mean of the
    per-row losses; lower is better), for early stopping:

    - XGBoost native: ``f(predt, dmatrix) -> (name, value)``: ``xgb.train(..., custom_metric=f)``;
    - XGBoost sklearn: ``f(y_true, y_pred, sample_weight=None) -> value``:
      ``XGBRegressor(eval_metric=f)`` (named ``f.__name__``);
    - LightGBM native: ``f(preds, eval_data) -> (name, value, False)``: ``lgb.train(...,
      feval=f)``;
    - LightGBM sklearn: ``f(y_true, y_pred, weight=None, group=None) -> (name, value, False)``:
      ``model.fit(..., eval_metric=f)``.
    """
    library = _check_choice("library", library, LIBRARIES)
    api = _check_choice("api", api, APIS)
    obj = _Objective(name, "exact", DEFAULT_FLOOR, scale, options)  # only its value is used
    label = obj.spec.name

    if library == "xgboost" and api == "native":

        def fn(predt: np.ndarray, dmatrix: Any) -> Any:
            return label, obj.value(predt, dmatrix.get_label(), dmatrix.get_weight())

    elif library == "xgboost":

        def fn(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: Any = None) -> Any:  # type: ignore[misc]
            return obj.value(y_pred, y_true, sample_weight)

    elif api == "native":

        def fn(preds: np.ndarray, eval_data: Any) -> Any:  # type: ignore[misc]
            return label, obj.value(preds, eval_data.get_label(), eval_data.get_weight()), False

    else:

        def fn(  # type: ignore[misc]
            y_true: np.ndarray, y_pred: np.ndarray, weight: Any = None, group: Any = None
        ) -> Any:
            return label, obj.value(y_pred, y_true, weight), False

    fn.__name__ = fn.__qualname__ = label
    return fn


def init_score(
    name: str,
    y: Any,
    *,
    sample_weight: Any = None,
    n_classes: int | None = None,
    **options: Any,
) -> Any:
    """The constant raw score ``c`` minimising ``sum_i w_i l(c, y_i)`` for catalog loss ``name``:
    a float, or for a multiclass loss an array of ``n_classes`` scores (default: the largest
    label + 1, or the length of a per-class option).

    Found on the catalog's own gradient, so it needs no per-loss closed form: one score by a
    bracket on the gradient's sign change and safeguarded Newton steps (bisection where a step
    leaves the bracket or the Hessian is not positive; for l1, quantile and mape, whose gradient
    is a step function, the bracket closes on the weighted median or quantile); class scores by
    diagonal Newton steps with a backtracking line search on the loss. The closed forms where
    they exist (mean for mse, logit of the mean for bce_with_logits, log of the mean for the
    log-link losses, log class frequencies for cross_entropy, ``scipy.stats.expectile`` for
    expectile) are checked in the tests. A non-convex loss (focal) gets a stationary point of the
    gradient's first sign change from below. Raises ValueError when no finite minimiser exists
    (every label of one class for a logistic loss).
    """
    obj = _Objective(name, "exact", DEFAULT_FLOOR, 1.0, options)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] == 0:
        raise ValueError(f"y must be a non-empty 1-D array of labels; got shape {y.shape}.")
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if w is not None and w.shape != y.shape:
        raise ValueError(f"sample_weight must have y's shape {y.shape}; got {w.shape}.")
    if obj.multiclass:
        return _class_scores(obj, y, w, n_classes)
    return _one_score(obj, y, w)


def _one_score(obj: _Objective, y: np.ndarray, w: np.ndarray | None) -> float:
    ones = np.ones(y.shape[0])
    labels = _labels(y, obj.spec, ones)

    def g_and_h(c: float) -> tuple[float, float]:
        g, h = obj.loss.grad_and_hess(c * ones, labels, sample_weight=w)
        return float(np.sum(g)), float(np.sum(h))

    def g(c: float) -> float:
        return float(np.sum(obj.loss.grad(c * ones, labels, sample_weight=w)))

    # Bracket a strict sign change of the gradient, walking each end out by doubling steps (a
    # gradient that underflows to 0 far out, every label of one class, never closes a bracket).
    lo = _walk_out(g, -1.0, lambda v: v < 0)
    hi = _walk_out(g, 1.0, lambda v: v > 0)
    if lo is None or hi is None:
        raise ValueError(
            f"{obj.spec.name}: no finite constant score minimises the loss for these labels "
            f"(the gradient keeps one sign; e.g. every label is of one class)."
        )
    c = 0.5 * (lo + hi)
    for _ in range(200):
        gc, hc = g_and_h(c)
        if gc == 0.0:
            return c
        if gc < 0:
            lo = c
        else:
            hi = c
        step = c - gc / hc if hc > 0 and math.isfinite(hc) else math.nan
        c_next = step if lo < step < hi else 0.5 * (lo + hi)
        if abs(c_next - c) <= 1e-13 * max(1.0, abs(c)) or hi - lo <= 1e-13 * max(1.0, abs(c)):
            return c_next
        c = c_next
    return c


def _walk_out(g: Callable[[float], float], c: float, ok: Callable[[float], bool]) -> float | None:
    """``c``, doubled until ``ok(g(c))``; None past ``|c| = 2^64`` (no score is that large)."""
    for _ in range(65):
        if ok(g(c)):
            return c
        c *= 2.0
    return None


def _class_scores(
    obj: _Objective, y: np.ndarray, w: np.ndarray | None, n_classes: int | None
) -> np.ndarray:
    if n_classes is None:
        per_class = [v for v in obj.loss._resolved.values() if isinstance(v, np.ndarray)]
        n_classes = int(per_class[0].shape[0]) if per_class else int(np.max(y)) + 1
    k = int(n_classes)
    if k < 2:
        raise ValueError(f"n_classes must be >= 2; got {n_classes}.")
    n = y.shape[0]
    labels = _labels(y, obj.spec, np.zeros((n, k)))

    def scores(c: np.ndarray) -> np.ndarray:
        return np.broadcast_to(c, (n, k)).copy()

    def value(c: np.ndarray) -> float:
        return float(obj.loss(scores(c), labels, sample_weight=w))

    c = np.zeros(k)
    f = value(c)
    for _ in range(200):
        g, h = obj.loss.grad_and_hess(scores(c), labels, sample_weight=w)
        g, h = g.sum(axis=0), h.sum(axis=0)
        if np.max(np.abs(g)) <= 1e-12 * max(1.0, float(n if w is None else np.sum(w))):
            break
        step = -g / np.where(h > 0, h, np.abs(g) + 1.0)
        t = 1.0
        while t > 1e-8:
            c_try = c + t * step
            f_try = value(c_try)
            if f_try <= f:
                break
            t *= 0.5
        else:
            break
        if f - f_try <= 1e-15 * max(1.0, abs(f)):
            c, f = c_try, f_try
            break
        c, f = c_try, f_try
    return c
