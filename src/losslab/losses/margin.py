"""Margin losses: a score must beat a threshold (or another score) by a margin, else it pays.

Every loss here is piecewise linear or quadratic in the scores. At a kink we use the subgradient
torch's autograd uses for the same expression, so that gradients agree with torch everywhere:
``clamp_min(z, 0)`` passes the gradient at ``z == 0`` (hinge_embedding, margin_ranking, and our
hinge and squared_hinge), while torch's fused multi_margin and multilabel_margin kernels count a
term only when ``z > 0``.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from losslab.losses._constraints import NONE, Array, Choice, Either, Real
from losslab.losses._primitives import shape_of
from losslab.losses._registry import Items, register
from losslab.losses._validation import (
    check_ndim,
    check_same_dtype,
    check_same_shape,
)

# A margin may be any finite real.
MARGIN = Real()

# Examples keep every hinge this far from its kink, so central differences (step 1e-6) never
# straddle one; the contract asks for at least 1e-3.
_KINK_GAP = 1e-2


def _signs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0]), size=shape)


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values of either sign with magnitude in [_KINK_GAP * 5, 2]."""
    return _signs(rng, shape) * rng.uniform(5 * _KINK_GAP, 2.0, size=shape)


# Binary hinge losses.


def _signed_example(
    rng: np.random.Generator, dtype: Any = "float64", margin: float = 1.0, **_: Any
) -> tuple[Any, ...]:
    """Scores whose hinge argument ``margin - y x`` is kept away from 0."""
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
    y = _signs(rng, shape)
    x = y * (margin - _away_from_zero(rng, shape))
    return x.astype(dtype), y.astype(dtype)


def _hinge_embedding_example(
    rng: np.random.Generator, dtype: Any = "float64", margin: float = 1.0, **_: Any
) -> tuple[Any, ...]:
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
    x = margin - _away_from_zero(rng, shape)
    return x.astype(dtype), _signs(rng, shape).astype(dtype)


@register(
    "hinge_embedding",
    input_kind="real",
    target_kind="sign",
    layout="elementwise",
    options={"margin": MARGIN},
    hessian="zero",
    task="embedding",
    formula="x if y = 1; max(0, margin - x) if y = -1",
    example=_hinge_embedding_example,
    torch="hinge_embedding_loss",
    module="HingeEmbeddingLoss",
)
def hinge_embedding(xp: Any, input: Any, target: Any, *, margin: float = 1.0) -> Items:
    """Hinge embedding loss: ``l_i = x_i`` if ``y_i = 1``, ``max(0, margin - x_i)`` if ``y_i = -1``.

    ``x`` is typically a distance between two embeddings: similar pairs (``y = 1``) pay their
    distance, dissimilar pairs (``y = -1``) pay for being closer than ``margin``.

    Gradient: ``dl_i/dx_i = 1`` for ``y_i = 1``; ``-1`` for ``y_i = -1`` where
    ``margin - x_i >= 0`` (the kink included, as torch's ``clamp_min`` does), else 0. Hessian: 0
    wherever it exists (piecewise linear).

    Options: ``margin`` (any real). ``target`` must have the input's shape and hold -1 or +1.

    Same as ``torch.nn.functional.hinge_embedding_loss``, except that labels other than -1/+1
    raise ValueError (torch silently adds both branches for them).

    Reference: PyTorch documentation, ``torch.nn.HingeEmbeddingLoss``; Hadsell, Chopra and LeCun,
    "Dimensionality reduction by learning an invariant mapping", CVPR 2006.
    """
    zeros = xp.zeros_like(input)
    hinge = margin - input
    # torch's formula: both branches where the label is neither +1 nor -1 (only reachable
    # with value_checks(False)); kept so the numbers still agree with torch there.
    neg = (target != 1) & (hinge >= 0)
    pos = target != -1
    slope = xp.astype(pos, input.dtype) - xp.astype(neg, input.dtype)
    return Items(
        xp.where(neg, hinge, zeros) + xp.where(pos, input, zeros),
        grad=lambda w: w * slope,
        hess=lambda w: zeros,
    )


@register(
    "hinge",
    input_kind="scores",
    target_kind="sign",
    layout="elementwise",
    options={"margin": MARGIN},
    hessian="zero",
    task="binary",
    formula="max(0, margin - y * x), y in {-1, +1}",
    example=_signed_example,
)
def hinge(xp: Any, input: Any, target: Any, *, margin: float = 1.0) -> Items:
    """Binary hinge loss: ``l_i = max(0, margin - y_i x_i)`` with labels ``y_i in {-1, +1}``.

    Gradient: ``dl_i/dx_i = -y_i`` where ``margin - y_i x_i >= 0`` (the kink included, the
    subgradient torch's ``clamp_min`` gives), else 0. Hessian: 0 wherever it exists (piecewise
    linear).

    Options: ``margin`` (1 is the SVM hinge). Labels 0/1 or soft targets raise ValueError:
    convert with ``2 * y - 1``.

    torch has no such function; equals ``torch.clamp_min(margin - y * x, 0)`` reduced, and the
    tests check it against that expression's autograd.

    Reference: Cortes and Vapnik, "Support-vector networks", Machine Learning 20 (1995);
    Rosasco et al., "Are loss functions all the same?", Neural Computation 16 (2004).
    """
    z = margin - target * input
    active = z >= 0
    zeros = xp.zeros_like(z)
    return Items(
        xp.where(active, z, zeros),
        grad=lambda w: w * xp.where(active, -target, zeros),
        hess=lambda w: zeros,
    )


@register(
    "squared_hinge",
    input_kind="scores",
    target_kind="sign",
    layout="elementwise",
    options={"margin": MARGIN},
    hessian="nonnegative",
    task="binary",
    formula="max(0, margin - y * x)^2, y in {-1, +1}",
    example=_signed_example,
)
def squared_hinge(xp: Any, input: Any, target: Any, *, margin: float = 1.0) -> Items:
    """Squared hinge loss: ``l_i = max(0, margin - y_i x_i)^2`` with labels ``y_i in {-1, +1}``.

    Gradient: ``dl_i/dx_i = -2 y_i max(0, margin - y_i x_i)`` (continuous: no kink). Hessian:
    2 where ``margin - y x > 0``, else 0.

    Options: ``margin``. Labels 0/1 or soft targets raise ValueError.

    torch has no such function; equals ``torch.clamp_min(margin - y * x, 0) ** 2`` reduced
    (Keras' ``squared_hinge`` with ``margin=1``), checked against that in the tests.

    Reference: Lee and Lin, "A study on L2-loss (squared hinge-loss) multiclass SVM", Neural
    Computation 25 (2013); Keras ``losses.squared_hinge``.
    """
    h = xp.maximum(margin - target * input, xp.zeros_like(input))
    return Items(
        h * h,
        grad=lambda w: (-2.0 * w) * (target * h),
        hess=lambda w: (2.0 * w) * xp.astype(h > 0, input.dtype),
    )


# Ranking.


def _ranking_example(
    rng: np.random.Generator, dtype: Any = "float64", margin: float = 0.0, **_: Any
) -> tuple[Any, ...]:
    n = int(rng.integers(1, 7))
    y = _signs(rng, (n,))
    x2 = rng.normal(size=n)
    x1 = x2 + y * (margin - _away_from_zero(rng, (n,)))
    return x1.astype(dtype), x2.astype(dtype), y.astype(dtype)


@register(
    "margin_ranking",
    input_kind="scores",
    target_kind="sign",
    layout="elementwise",
    options={"margin": MARGIN},
    hessian="zero",
    task="ranking",
    formula="max(0, -y * (x1 - x2) + margin)",
    example=_ranking_example,
    differentiable=("input1", "input2"),
    torch="margin_ranking_loss",
    module="MarginRankingLoss",
)
def margin_ranking(
    xp: Any, input1: Any, input2: Any, target: Any, *, margin: float = 0.0
) -> Items:
    """Margin ranking loss: ``l_i = max(0, -y_i (x1_i - x2_i) + margin)``.

    ``y_i = 1`` asks for ``x1_i`` to rank above ``x2_i`` by ``margin``, ``y_i = -1`` the reverse.

    Gradient: where ``-y_i (x1_i - x2_i) + margin >= 0`` (kink included, as torch's
    ``clamp_min``), ``dl_i/dx1_i = -y_i`` and ``dl_i/dx2_i = y_i``; else 0. Divided by the number
    Returns ``(grad_input1, grad_input2)``. Hessian: 0 wherever it exists.

    Options: ``margin`` (any real). ``input1``, ``input2`` and ``target`` must
    have one shape; ``target`` holds -1 or +1.

    Same as ``torch.nn.functional.margin_ranking_loss``, except that torch broadcasts shapes of
    equal rank and accepts any label value; we ask for equal shapes and labels -1/+1.

    Reference: Herbrich, Graepel and Obermayer, "Large margin rank boundaries for ordinal
    regression" (2000); PyTorch ``torch.nn.MarginRankingLoss``.
    """
    check_same_dtype(input1, input2, "input1", "input2")
    check_same_shape(input1, input2, "input1", "input2")
    check_same_shape(input1, target, "input1", "target")
    z = margin - target * (input1 - input2)
    active = z >= 0
    zeros = xp.zeros_like(z)

    def grad(w: Any) -> tuple[Any, Any]:
        g2 = w * xp.where(active, target, zeros)
        return -g2, g2

    return Items(xp.where(active, z, zeros), grad=grad, hess=lambda w: zeros)


# Multi-class and multi-label margins (Weston-Watkins style, as torch defines them).


def _prepare_rows(xp: Any, input: Any) -> tuple[int, int]:
    """``input`` of shape (N, C) or (C,): returns (N, C) with N = 1 for unbatched input."""
    check_ndim(input, (1, 2), "input", "((N, C) or unbatched (C,))")
    shape = shape_of(input)
    return (1 if len(shape) == 1 else shape[0]), shape[-1]


def _multi_margin_example(
    rng: np.random.Generator,
    dtype: Any = "float64",
    margin: float = 1.0,
    weight: Any = None,
    **_: Any,
) -> tuple[Any, ...]:
    n = int(rng.integers(1, 5))
    c = len(np.asarray(weight)) if weight is not None else int(rng.integers(2, 6))
    t = rng.integers(0, c, size=n)
    for _attempt in range(1000):
        x = rng.normal(size=(n, c))
        z = margin - np.take_along_axis(x, t[:, None], axis=1) + x
        z[np.arange(n), t] = 1.0  # the target's own term is skipped, so it has no kink
        if np.min(np.abs(z)) >= _KINK_GAP:
            return x.astype(dtype), t
    raise RuntimeError("could not draw a multi_margin example away from its kinks")


@register(
    "multi_margin",
    input_kind="scores",
    target_kind="class_index",
    layout="class_axis",
    options={
        "p": Choice(1, 2),
        "margin": MARGIN,
        "weight": Either(NONE, Array("shape (C,), one weight per class")),
    },
    hessian="nonnegative",
    task="multiclass",
    formula="sum_{i != y} w_y max(0, margin - x_y + x_i)^p / C",
    example=_multi_margin_example,
    torch="multi_margin_loss",
    module="MultiMarginLoss",
)
def multi_margin(
    xp: Any,
    input: Any,
    target: Any,
    *,
    p: int = 1,
    margin: float = 1.0,
    weight: Any = None,
) -> Items:
    """Multi-class margin loss: ``l_n = sum_{i != y} w_y max(0, margin - x_y + x_i)^p / C``.

    Every wrong class ``i`` must score at least ``margin`` below the true class ``y_n``.

    Gradient: with ``z_i = margin - x_{y} + x_i`` and ``h_i = w_y (1 if p = 1 else 2 z_i) / C``
    for ``i != y`` and ``z_i > 0`` (torch's kernel counts ``z > 0`` only; else ``h_i = 0``):
    ``dl/dx_i = h_i`` and ``dl/dx_y = -sum_i h_i``. Hessian: 0 for ``p = 1``; for ``p = 2``
    each active term ``k z_i^2`` (``k = w_y / C``) adds ``2k (e_i - e_y)(e_i - e_y)^T``.

    Options: ``p`` (1 or 2), ``margin``, ``weight`` (per-class weights of shape (C,), applied as
    ``w_{y_n}``; the mean still divides by N, as torch does). ``input`` is (N, C)
    with ``target`` (N,), or unbatched (C,) with ``target`` () or (1,); ``reduction="none"``
    returns the target's shape.

    Same as ``torch.nn.functional.multi_margin_loss``.

    Reference: Weston and Watkins, "Support vector machines for multi-class pattern recognition",
    ESANN 1999; PyTorch ``torch.nn.MultiMarginLoss``.
    """
    n, c = _prepare_rows(xp, input)
    want = ((n,),) if input.ndim == 2 else ((), (1,))
    if shape_of(target) not in want:
        raise ValueError(
            f"target must have shape {' or '.join(str(w) for w in want)} for input of shape "
            f"{shape_of(input)}; got {shape_of(target)}."
        )
    t = xp.reshape(xp.astype(target, xp.int64), (n,))
    x = xp.reshape(input, (n, c))
    z = margin - xp.take_along_axis(x, t[:, None], axis=1) + x
    onehot = xp.arange(c, device=array_api_compat.device(x))[None, :] == t[:, None]
    active = (z > 0) & ~onehot
    zeros = xp.zeros_like(z)
    za = xp.where(active, z, zeros)
    row_w: Any = 1.0 / c
    if weight is not None:
        if shape_of(weight) != (c,):
            raise ValueError(
                f"weight must have shape ({c},), one per class; got {shape_of(weight)}."
            )
        row_w = xp.take(weight, t)[:, None] / c
    on = xp.astype(active, x.dtype)

    def rows(w: Any) -> Any:
        return w if isinstance(w, float) else xp.reshape(w, (n, 1))

    def grad(w: Any) -> Any:
        h = rows(w) * row_w * (on if p == 1 else 2.0 * za)
        g = h - xp.where(onehot, xp.sum(h, axis=1, keepdims=True), zeros)
        return xp.reshape(g, shape_of(input))

    def hvp(w: Any, v: Any) -> Any:
        # p = 2: each active term k (m - x_y + x_i)^2 has curvature 2k on (e_i - e_y)
        v = xp.reshape(v, (n, c))
        k = (2.0 if p == 2 else 0.0) * rows(w) * row_w * on
        d = k * (v - xp.take_along_axis(v, t[:, None], axis=1))
        out = d - xp.where(onehot, xp.sum(d, axis=1, keepdims=True), zeros)
        return xp.reshape(out, shape_of(input))

    def hess(w: Any) -> Any:
        k = (2.0 if p == 2 else 0.0) * rows(w) * row_w * on
        out = k + xp.where(onehot, xp.sum(k, axis=1, keepdims=True), zeros)
        return xp.reshape(out, shape_of(input))

    per_sample = xp.sum((za if p == 1 else za * za) * row_w, axis=1)
    return Items(xp.reshape(per_sample, shape_of(target)), grad=grad, hess=hess, hvp=hvp)


def _multilabel_example(
    rng: np.random.Generator, dtype: Any = "float64", **_: Any
) -> tuple[Any, ...]:
    n, c = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    t = np.full((n, c), -1, dtype=np.int64)
    for row in range(n):
        k = int(rng.integers(0, c + 1))
        t[row, :k] = rng.permutation(c)[:k]
    for _attempt in range(1000):
        x = rng.normal(size=(n, c))
        # every pair (j, i) may be a term 1 - x_j + x_i; keep them all off the kink
        z = 1.0 - x[:, :, None] + x[:, None, :]
        if np.min(np.abs(z)) >= _KINK_GAP:
            return x.astype(dtype), t
    raise RuntimeError("could not draw a multilabel_margin example away from its kinks")


@register(
    "multilabel_margin",
    input_kind="scores",
    target_kind="multilabel_indices",
    layout="feature_axis",
    hessian="zero",
    task="multilabel",
    formula="sum_{j in targets} sum_{i not in targets} max(0, 1 - (x_j - x_i)) / C",
    example=_multilabel_example,
    torch="multilabel_margin_loss",
    module="MultiLabelMarginLoss",
)
def multilabel_margin(xp: Any, input: Any, target: Any) -> Items:
    """Multi-label margin loss: ``l_n = sum_{j in Y_n, i not in Y_n} max(0, 1 - x_j + x_i) / C``.

    ``target`` holds class indices, not a 0/1 mask: row ``n`` lists the classes ``Y_n`` of
    sample ``n`` and ends at the first -1 (the rest is padding). Every true class must score at
    least 1 above every other class.

    Gradient: for each pair (j, i) with ``z = 1 - x_j + x_i > 0`` (torch's kernel counts
    ``z > 0`` only), ``dl/dx_i += 1/C`` and ``dl/dx_j -= 1/C``. A class listed twice counts
    twice, as in torch. Hessian: 0 wherever it exists (piecewise linear).

    ``input`` is (N, C) or unbatched (C,); ``target`` has its shape, an
    integer dtype and values in [-1, C) (torch checks the padding too; so do we).
    ``reduction="none"`` returns (N,), or () for unbatched input.

    Same as ``torch.nn.functional.multilabel_margin_loss``. Cost is O(N C^2), like torch's kernel.

    Reference: Crammer and Singer, "A family of additive online algorithms for category ranking",
    JMLR 3 (2003); PyTorch ``torch.nn.MultiLabelMarginLoss``.
    """
    n, c = _prepare_rows(xp, input)
    check_same_shape(input, target, "input", "target")
    t = xp.reshape(xp.astype(target, xp.int64), (n, c))
    x = xp.reshape(input, (n, c))
    pos = xp.arange(c, device=array_api_compat.device(x))
    # Positions before the first -1 of each row name the target classes.
    first_pad = xp.min(xp.where(t < 0, pos[None, :], c), axis=1, keepdims=True)
    listed = pos[None, :] < first_pad  # (N, position)
    t0 = xp.where(listed, t, 0)
    names = (t0[:, :, None] == pos[None, None, :]) & listed[:, :, None]  # (N, position, class)
    is_target = xp.any(names, axis=1)  # (N, class)
    z = 1.0 - xp.take_along_axis(x, t0, axis=1)[:, :, None] + x[:, None, :]
    active = (z > 0) & listed[:, :, None] & ~is_target[:, None, :]  # (N, position j, class i)
    zeros = xp.zeros_like(z)
    per_sample = xp.sum(xp.where(active, z, zeros), axis=(1, 2)) / c

    def grad(w: Any) -> Any:
        w = w if isinstance(w, float) else xp.reshape(w, (n, 1, 1))
        a = xp.where(active, xp.ones_like(z), zeros) * (w / c)
        # +1/C to each non-target class i, -1/C to the class named at each position j.
        per_position = xp.sum(a, axis=2)  # (N, position)
        names_f = xp.where(names, xp.ones_like(z), zeros)
        g = xp.sum(a, axis=1) - xp.sum(names_f * per_position[:, :, None], axis=1)
        return xp.reshape(g, shape_of(input))

    return Items(
        xp.reshape(per_sample, shape_of(input)[:-1]),
        grad=grad,
        hess=lambda w: xp.zeros_like(input),
        hvp=lambda w, v: xp.zeros_like(input),
    )


# AdaBoost's exponential loss (issue 12).


def _exponential_example(
    rng: np.random.Generator, dtype: Any = "float64", **_: Any
) -> tuple[Any, ...]:
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
    return rng.normal(size=shape).astype(dtype), _signs(rng, shape).astype(dtype)


@register(
    "exponential",
    input_kind="scores",
    target_kind="sign",
    layout="elementwise",
    hessian="nonnegative",
    rowwise=True,
    task="binary",
    formula="exp(-y * x), y in {-1, +1}",
    example=_exponential_example,
)
def exponential(xp: Any, input: Any, target: Any) -> Items:
    """Exponential loss: ``l_i = exp(-y_i x_i)`` with labels ``y_i in {-1, +1}``.

    The loss AdaBoost minimises stagewise; its population minimiser is half the log-odds,
    ``x = log(p / (1 - p)) / 2``. It punishes confident mistakes exponentially (hence its
    sensitivity to label noise, against the logistic loss's linear growth).

    Gradient: ``dl_i/dx_i = -y_i exp(-y_i x_i)``; Hessian: ``exp(-y_i x_i) > 0`` (``y^2 = 1``).
    A margin below about -88 (float32) or -709 (float64) overflows to ``inf``, the true value.

    Labels 0/1 raise ValueError: convert with ``2 * y - 1`` (``losslab.boosting`` maps 0/1
    labels itself). Same as scikit-learn's ``ExponentialLoss`` (``GradientBoostingClassifier(
    loss="exponential")``, written there for 0/1 labels as ``y exp(-x) + (1 - y) exp(x)``).
    torch, XGBoost and LightGBM have no exponential loss. Reference: Freund & Schapire, "A
    decision-theoretic generalization of on-line learning and an application to boosting",
    JCSS 55 (1997); Friedman, Hastie & Tibshirani, "Additive logistic regression", Ann. Statist.
    28 (2000).
    """
    e = xp.exp(-target * input)
    return Items(
        e,
        grad=lambda w: w * (-target * e),
        hess=lambda w: w * e,
    )


# Crammer-Singer multi-class hinge.


def _categorical_hinge_example(
    rng: np.random.Generator, dtype: Any = "float64", margin: float = 1.0, **_: Any
) -> tuple[Any, ...]:
    """Scores (C,), (N, C) or (N, C, d) whose largest wrong-class score is unique (by
    ``_KINK_GAP`` or more) and whose hinge argument is kept away from 0."""
    n_classes = int(rng.integers(2, 6))
    n = int(rng.integers(1, 5))
    shape = [(n_classes,), (n, n_classes), (n, n_classes, int(rng.integers(1, 4)))][
        int(rng.integers(0, 3))
    ]
    x = rng.normal(size=shape)
    y = np.asarray(rng.integers(0, n_classes, size=shape[:1] + shape[2:] if len(shape) > 1 else ()))
    xb = x.reshape((1,) + x.shape) if x.ndim == 1 else x
    yb = y.reshape((1,) + y.shape) if y.ndim == 0 else y
    n_classes = xb.shape[1]
    moved = np.moveaxis(xb, 1, -1).reshape(-1, n_classes)  # one row of scores per item
    labels = yb.reshape(-1)
    for row, label in zip(moved, labels):
        wrong = [c for c in range(n_classes) if c != label]
        # distinct wrong scores 5 gaps apart, in a random order
        row[wrong] = rng.permutation(len(wrong)) * 5 * _KINK_GAP + rng.uniform(-1.0, 1.0)
        top = row[wrong].max() if wrong else 0.0
        row[label] = margin + top - _away_from_zero(rng, ())
    xb = np.moveaxis(moved.reshape(np.moveaxis(xb, 1, -1).shape), -1, 1)
    return np.ascontiguousarray(xb.reshape(x.shape), dtype=dtype), y


@register(
    "categorical_hinge",
    input_kind="scores",
    target_kind="class_index",
    layout="class_axis",
    options={"margin": MARGIN},
    hessian="zero",
    rowwise=True,
    task="multiclass",
    formula="max(0, margin + max_{c != y} x_c - x_y)",
    example=_categorical_hinge_example,
)
def categorical_hinge(xp: Any, input: Any, target: Any, *, margin: float = 1.0) -> Items:
    """Crammer-Singer multi-class hinge: ``l_i = max(0, margin + max_{c != y_i} x_ic - x_{i y_i})``.

    The correct class must beat the best wrong class by ``margin``. Shapes as
    ``cross_entropy``: scores (N, C), (C,) unbatched, or (N, C, d1, ...) with the classes on axis 1,
    and class indices of the input's shape without the class axis. (torch's ``multi_margin`` sums
    over the wrong classes instead: Weston and Watkins's form.)

    Gradient: where ``margin + max_wrong - x_y >= 0`` (the kink counted as active, like
    ``hinge``), +1 at the best wrong class (the first of equal ones) and -1 at the target class;
    0 elsewhere. Hessian: 0 wherever it exists (piecewise linear).

    Keras's ``CategoricalHinge`` takes one-hot targets and ``neg = max((1 - y_true) * y_pred)``,
    which counts the true class's entry as a score of 0: it is ``max(0, max_wrong)`` where ours is
    ``max_wrong``. The two agree whenever some wrong score is >= 0 (probabilities, Keras's usual
    input); for Keras's value on other scores, append a column of zeros to ``input`` (a class that
    is never the target). Keras fixes ``margin = 1``.

    Reference: Crammer and Singer, "On the algorithmic implementation of multiclass kernel-based
    vector machines", JMLR 2 (2001); Keras ``CategoricalHinge``.
    """
    from losslab.losses.multiclass import _batched, _grad_shape, _items_of

    x, y, unbatched = _batched(xp, input, target, allow_probs=False)
    n_classes = int(x.shape[1])
    classes = xp.reshape(
        xp.arange(n_classes, dtype=y.dtype, device=array_api_compat.device(x)),
        (1, n_classes) + (1,) * (x.ndim - 2),
    )
    is_target = classes == y
    wrong = xp.where(is_target, xp.full_like(x, -float("inf")), x)
    best = xp.argmax(wrong, axis=1, keepdims=True)
    z = margin + xp.max(wrong, axis=1, keepdims=True) - xp.take_along_axis(x, y, axis=1)
    active = xp.astype(z >= 0, x.dtype)

    def grad(w: Any) -> Any:
        a = active if isinstance(w, float) and w == 1.0 else active * (
            w if isinstance(w, float) or w.ndim == x.ndim else xp.reshape(w, (1,) * x.ndim)
        )
        zeros = xp.zeros_like(x)
        g = xp.where(classes == best, a, zeros) - xp.where(is_target, a, zeros)
        return _grad_shape(xp, g, unbatched)

    return Items(
        _items_of(xp, xp.maximum(z, 0.0), unbatched),
        grad=grad,
        hess=lambda w: xp.zeros_like(input),
        hvp=lambda w, v: xp.zeros_like(input),
    )
