"""Margin losses: a score must beat a threshold (or another score) by a margin, else it pays.

Every loss here is piecewise linear or quadratic in the scores. At a kink we use the subgradient
torch's autograd uses for the same expression, so that gradients agree with torch everywhere:
``clamp_min(z, 0)`` passes the gradient at ``z == 0`` (hinge_embedding, margin_ranking, and our
hinge and squared_hinge), while torch's fused multi_margin and multilabel_margin kernels count a
term only when ``z > 0``.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from losslab.losses._primitives import is_numpy, namespace, shape_of, to_namespace
from losslab.losses._reduction import reduce, scale_for
from losslab.losses._registry import register
from losslab.losses._validation import (
    as_target,
    check_floating,
    check_integer_labels,
    check_label_range,
    check_ndim,
    check_reduction,
    check_same_shape,
    value_checks_enabled,
)

# Examples keep every hinge this far from its kink, so central differences (step 1e-6) never
# straddle one; the contract asks for at least 1e-3.
_KINK_GAP = 1e-2


# Shared helpers (embedding.py uses them too).


def check_sign_labels(xp: Any, target: Any, name: str = "target") -> None:
    """Labels must be -1 or +1 (a value check: honours ``value_checks(False)``)."""
    if not value_checks_enabled():
        return
    ok = (target == 1) | (target == -1)
    if not bool(xp.all(ok)):
        bad = target[~ok]
        raise ValueError(
            f"{name} must hold labels -1 or +1 (not 0/1, not soft targets); "
            f"found {float(bad[0])!r}."
        )


def check_real_number(value: Any, name: str) -> float:
    """A finite real option such as ``margin`` (any sign)."""
    if isinstance(value, bool | str | bytes):
        raise TypeError(f"{name} must be a real number; got {value!r}.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; got {value!r}.") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite; got {value!r}.")
    return v


def check_same_dtype(a: Any, b: Any, name_a: str, name_b: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(
            f"{name_b} must have the same dtype as {name_a} ({a.dtype}); got {b.dtype}."
        )


def as_array(xp: Any, v: Any) -> Any:
    """NumPy reductions of a 1-D array give scalars; the contract wants 0-d arrays."""
    return xp.asarray(v) if is_numpy(xp) else v


def _prepare_signed(input: Any, target: Any, reduction: str) -> tuple[Any, Any, Any]:
    """Checks for ``loss(scores, labels in {-1, +1})`` with same-shape labels."""
    check_reduction(reduction)
    xp, (input, target) = namespace(input, target)
    check_floating(xp, input, "input")
    check_same_shape(input, target, "input", "target")
    target = as_target(xp, target, input)
    check_sign_labels(xp, target)
    return xp, input, target


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
    task="embedding",
    formula="x if y = 1; max(0, margin - x) if y = -1",
    example=_hinge_embedding_example,
    torch="hinge_embedding_loss",
)
def hinge_embedding(
    input: Any,
    target: Any,
    *,
    margin: float = 1.0,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Hinge embedding loss: ``l_i = x_i`` if ``y_i = 1``, ``max(0, margin - x_i)`` if ``y_i = -1``.

    ``x`` is typically a distance between two embeddings: similar pairs (``y = 1``) pay their
    distance, dissimilar pairs (``y = -1``) pay for being closer than ``margin``.

    Gradient: ``dl_i/dx_i = 1`` for ``y_i = 1``; ``-1`` for ``y_i = -1`` where
    ``margin - x_i >= 0`` (the kink included, as torch's ``clamp_min`` does), else 0; divided by
    the number of elements for ``reduction="mean"``.

    Options: ``margin`` (any real), ``reduction``. ``target`` must have the input's shape and hold
    -1 or +1.

    Same as ``torch.nn.functional.hinge_embedding_loss``, except that labels other than -1/+1
    raise ValueError (torch silently adds both branches for them).

    Reference: PyTorch documentation, ``torch.nn.HingeEmbeddingLoss``; Hadsell, Chopra and LeCun,
    "Dimensionality reduction by learning an invariant mapping", CVPR 2006.
    """
    margin = check_real_number(margin, "margin")
    xp, input, target = _prepare_signed(input, target, reduction)
    zeros = xp.zeros_like(input)
    hinge = margin - input
    # torch's formula: both branches where the label is neither +1 nor -1 (only reachable
    # with value_checks(False)); kept so the numbers still agree with torch there.
    neg = (target != 1) & (hinge >= 0)
    pos = target != -1
    per = xp.where(neg, hinge, zeros) + xp.where(pos, input, zeros)
    value = reduce(xp, as_array(xp, per), reduction)
    if not compute_grad:
        return value, None
    s = scale_for(reduction, input)
    ones = xp.ones_like(input)
    return value, as_array(xp, (xp.where(pos, ones, zeros) - xp.where(neg, ones, zeros)) * s)


@register(
    "hinge",
    input_kind="scores",
    target_kind="sign",
    layout="elementwise",
    task="binary",
    formula="max(0, margin - y * x), y in {-1, +1}",
    example=_signed_example,
)
def hinge(
    input: Any,
    target: Any,
    *,
    margin: float = 1.0,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Binary hinge loss: ``l_i = max(0, margin - y_i x_i)`` with labels ``y_i in {-1, +1}``.

    Gradient: ``dl_i/dx_i = -y_i`` where ``margin - y_i x_i >= 0`` (the kink included, the
    subgradient torch's ``clamp_min`` gives), else 0; divided by the number of elements for
    ``reduction="mean"``.

    Options: ``margin`` (1 is the SVM hinge), ``reduction``. Labels 0/1 or soft targets raise
    ValueError: convert with ``2 * y - 1``.

    torch has no such function; equals ``torch.clamp_min(margin - y * x, 0)`` reduced, and the
    tests check it against that expression's autograd.

    Reference: Cortes and Vapnik, "Support-vector networks", Machine Learning 20 (1995);
    Rosasco et al., "Are loss functions all the same?", Neural Computation 16 (2004).
    """
    margin = check_real_number(margin, "margin")
    xp, input, target = _prepare_signed(input, target, reduction)
    z = margin - target * input
    active = z >= 0
    value = reduce(xp, as_array(xp, xp.where(active, z, xp.zeros_like(z))), reduction)
    if not compute_grad:
        return value, None
    g = xp.where(active, -target, xp.zeros_like(z)) * scale_for(reduction, z)
    return value, as_array(xp, g)


@register(
    "squared_hinge",
    input_kind="scores",
    target_kind="sign",
    layout="elementwise",
    task="binary",
    formula="max(0, margin - y * x)^2, y in {-1, +1}",
    example=_signed_example,
)
def squared_hinge(
    input: Any,
    target: Any,
    *,
    margin: float = 1.0,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Squared hinge loss: ``l_i = max(0, margin - y_i x_i)^2`` with labels ``y_i in {-1, +1}``.

    Gradient: ``dl_i/dx_i = -2 y_i max(0, margin - y_i x_i)`` (continuous: no kink), divided by
    the number of elements for ``reduction="mean"``.

    Options: ``margin``, ``reduction``. Labels 0/1 or soft targets raise ValueError.

    torch has no such function; equals ``torch.clamp_min(margin - y * x, 0) ** 2`` reduced
    (Keras' ``squared_hinge`` with ``margin=1``), checked against that in the tests.

    Reference: Lee and Lin, "A study on L2-loss (squared hinge-loss) multiclass SVM", Neural
    Computation 25 (2013); Keras ``losses.squared_hinge``.
    """
    margin = check_real_number(margin, "margin")
    xp, input, target = _prepare_signed(input, target, reduction)
    h = xp.maximum(margin - target * input, xp.zeros_like(input))
    value = reduce(xp, as_array(xp, h * h), reduction)
    if not compute_grad:
        return value, None
    return value, as_array(xp, target * h * (-2.0 * scale_for(reduction, h)))


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
    task="ranking",
    formula="max(0, -y * (x1 - x2) + margin)",
    example=_ranking_example,
    differentiable=("input1", "input2"),
    torch="margin_ranking_loss",
)
def margin_ranking(
    input1: Any,
    input2: Any,
    target: Any,
    *,
    margin: float = 0.0,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Margin ranking loss: ``l_i = max(0, -y_i (x1_i - x2_i) + margin)``.

    ``y_i = 1`` asks for ``x1_i`` to rank above ``x2_i`` by ``margin``, ``y_i = -1`` the reverse.

    Gradient: where ``-y_i (x1_i - x2_i) + margin >= 0`` (kink included, as torch's
    ``clamp_min``), ``dl_i/dx1_i = -y_i`` and ``dl_i/dx2_i = y_i``; else 0. Divided by the number
    of elements for ``reduction="mean"``. Returns ``(grad_input1, grad_input2)``.

    Options: ``margin`` (any real), ``reduction``. ``input1``, ``input2`` and ``target`` must
    have one shape; ``target`` holds -1 or +1.

    Same as ``torch.nn.functional.margin_ranking_loss``, except that torch broadcasts shapes of
    equal rank and accepts any label value; we ask for equal shapes and labels -1/+1.

    Reference: Herbrich, Graepel and Obermayer, "Large margin rank boundaries for ordinal
    regression" (2000); PyTorch ``torch.nn.MarginRankingLoss``.
    """
    margin = check_real_number(margin, "margin")
    check_reduction(reduction)
    xp, (input1, input2, target) = namespace(input1, input2, target)
    check_floating(xp, input1, "input1")
    check_floating(xp, input2, "input2")
    check_same_dtype(input1, input2, "input1", "input2")
    check_same_shape(input1, input2, "input1", "input2")
    check_same_shape(input1, target, "input1", "target")
    target = as_target(xp, target, input1)
    check_sign_labels(xp, target)
    z = margin - target * (input1 - input2)
    active = z >= 0
    zeros = xp.zeros_like(z)
    value = reduce(xp, as_array(xp, xp.where(active, z, zeros)), reduction)
    if not compute_grad:
        return value, None
    g2 = as_array(xp, xp.where(active, target, zeros) * scale_for(reduction, z))
    return value, (as_array(xp, -g2), g2)


# Multi-class and multi-label margins (Weston-Watkins style, as torch defines them).


def _prepare_rows(xp: Any, input: Any) -> tuple[int, int]:
    """``input`` of shape (N, C) or (C,): returns (N, C) with N = 1 for unbatched input."""
    check_floating(xp, input, "input")
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
    task="multiclass",
    formula="sum_{i != y} w_y max(0, margin - x_y + x_i)^p / C",
    example=_multi_margin_example,
    torch="multi_margin_loss",
)
def multi_margin(
    input: Any,
    target: Any,
    *,
    p: int = 1,
    margin: float = 1.0,
    weight: Any = None,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Multi-class margin loss: ``l_n = sum_{i != y} w_y max(0, margin - x_y + x_i)^p / C``.

    Every wrong class ``i`` must score at least ``margin`` below the true class ``y_n``.

    Gradient: with ``z_i = margin - x_{y} + x_i`` and ``h_i = w_y (1 if p = 1 else 2 z_i) / C``
    for ``i != y`` and ``z_i > 0`` (torch's kernel counts ``z > 0`` only; else ``h_i = 0``):
    ``dl/dx_i = h_i`` and ``dl/dx_y = -sum_i h_i``. Divided by N for ``reduction="mean"``.

    Options: ``p`` (1 or 2), ``margin``, ``weight`` (per-class weights of shape (C,), applied as
    ``w_{y_n}``; the mean still divides by N, as torch does), ``reduction``. ``input`` is (N, C)
    with ``target`` (N,), or unbatched (C,) with ``target`` () or (1,); ``reduction="none"``
    returns the target's shape.

    Same as ``torch.nn.functional.multi_margin_loss``.

    Reference: Weston and Watkins, "Support vector machines for multi-class pattern recognition",
    ESANN 1999; PyTorch ``torch.nn.MultiMarginLoss``.
    """
    if isinstance(p, bool) or p not in (1, 2):
        raise ValueError(f"p must be 1 or 2; got {p!r}.")
    margin = check_real_number(margin, "margin")
    check_reduction(reduction)
    xp, (input, target) = namespace(input, target)
    n, c = _prepare_rows(xp, input)
    check_integer_labels(xp, target, "target")
    want = ((n,),) if input.ndim == 2 else ((), (1,))
    if shape_of(target) not in want:
        raise ValueError(
            f"target must have shape {' or '.join(str(w) for w in want)} for input of shape "
            f"{shape_of(input)}; got {shape_of(target)}."
        )
    t = xp.reshape(xp.astype(target, xp.int64), (n,))
    check_label_range(xp, t, c, "target")
    x = xp.reshape(input, (n, c))
    z = margin - xp.take_along_axis(x, t[:, None], axis=1) + x
    onehot = xp.arange(c, device=array_api_compat.device(x))[None, :] == t[:, None]
    active = (z > 0) & ~onehot
    zeros = xp.zeros_like(z)
    za = xp.where(active, z, zeros)
    terms = za if p == 1 else za * za
    row_w = 1.0 / c
    if weight is not None:
        w = to_namespace(xp, weight, input, input.dtype)
        if shape_of(w) != (c,):
            raise ValueError(f"weight must have shape ({c},), one per class; got {shape_of(w)}.")
        row_w = xp.take(w, t)[:, None] / c
    per_sample = xp.sum(terms * row_w, axis=1)
    value = reduce(xp, as_array(xp, xp.reshape(per_sample, shape_of(target))), reduction)
    if not compute_grad:
        return value, None
    h = (xp.where(active, xp.ones_like(z), zeros) if p == 1 else 2.0 * za) * row_w
    h = h * scale_for(reduction, per_sample)
    g = h - xp.where(onehot, xp.sum(h, axis=1, keepdims=True), zeros)
    return value, xp.reshape(g, shape_of(input))


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
    task="multilabel",
    formula="sum_{j in targets} sum_{i not in targets} max(0, 1 - (x_j - x_i)) / C",
    example=_multilabel_example,
    torch="multilabel_margin_loss",
)
def multilabel_margin(
    input: Any,
    target: Any,
    *,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Multi-label margin loss: ``l_n = sum_{j in Y_n, i not in Y_n} max(0, 1 - x_j + x_i) / C``.

    ``target`` holds class indices, not a 0/1 mask: row ``n`` lists the classes ``Y_n`` of
    sample ``n`` and ends at the first -1 (the rest is padding). Every true class must score at
    least 1 above every other class.

    Gradient: for each pair (j, i) with ``z = 1 - x_j + x_i > 0`` (torch's kernel counts
    ``z > 0`` only), ``dl/dx_i += 1/C`` and ``dl/dx_j -= 1/C``; divided by N for
    ``reduction="mean"``. A class listed twice counts twice, as in torch.

    Options: ``reduction``. ``input`` is (N, C) or unbatched (C,); ``target`` has its shape, an
    integer dtype and values in [-1, C) (torch checks the padding too; so do we).
    ``reduction="none"`` returns (N,), or () for unbatched input.

    Same as ``torch.nn.functional.multilabel_margin_loss``. Cost is O(N C^2), like torch's kernel.

    Reference: Crammer and Singer, "A family of additive online algorithms for category ranking",
    JMLR 3 (2003); PyTorch ``torch.nn.MultiLabelMarginLoss``.
    """
    check_reduction(reduction)
    xp, (input, target) = namespace(input, target)
    n, c = _prepare_rows(xp, input)
    check_integer_labels(xp, target, "target")
    check_same_shape(input, target, "input", "target")
    t = xp.reshape(xp.astype(target, xp.int64), (n, c))
    if value_checks_enabled() and not bool(xp.all((t >= -1) & (t < c))):
        bad = t[(t < -1) | (t >= c)]
        raise ValueError(
            f"target must hold class indices in [0, {c}) padded with -1; found {int(bad[0])}."
        )
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
    value = reduce(xp, as_array(xp, xp.reshape(per_sample, shape_of(input)[:-1])), reduction)
    if not compute_grad:
        return value, None
    a = xp.where(active, xp.ones_like(z), zeros) * (scale_for(reduction, per_sample) / c)
    # +1/C to each non-target class i, -1/C to the class named at each position j.
    per_position = xp.sum(a, axis=2)  # (N, position)
    names_f = xp.where(names, xp.ones_like(z), zeros)
    g = xp.sum(a, axis=1) - xp.sum(names_f * per_position[:, :, None], axis=1)
    return value, xp.reshape(g, shape_of(input))
