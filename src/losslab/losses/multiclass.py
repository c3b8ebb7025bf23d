"""Multi-class losses: logits (or log-probabilities) over C classes against class labels.

Layout follows torch: input ``(N, C)``, ``(C,)`` unbatched, or ``(N, C, d1, ..., dk)`` with the
classes on axis 1; class-index targets have the input's shape without the class axis. Internally
every input is viewed as ``(N, C, *rest)`` and per-item quantities keep a length-1 class axis
``(N, 1, *rest)`` so they broadcast against it without copies.

The softmax losses share one pass (``SoftmaxPass``: shift by the row max, exponentiate once) and
every gradient here has the form ``coef_p * softmax - coef_t * onehot(y) - dense``
(``SoftmaxPass.combine``). Their Hessians have the form ``c1 (diag p - p p^T) + c2 a a^T`` with
``a = onehot(y) - p``, so the Hessian-vector product costs two passes and no C x C matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from losslab.losses._constraints import NONE, Array, Either, Integer, Real
from losslab.losses._primitives import (
    SoftmaxPass,
    add_at_labels,
    all_within,
    is_floating,
    log_softmax,
    shape_of,
)
from losslab.losses._registry import Items, register

__all__ = ["cross_entropy", "poly1", "nll", "softmax_focal", "generalized_ce"]

CLASS_WEIGHT = Either(NONE, Array("shape (C,), one weight per class"))
IGNORE_INDEX = Integer()
LABEL_SMOOTHING = Real(0, 1)

# ----------------------------------------------------------------------------------------------
# Shapes
# ----------------------------------------------------------------------------------------------


def _batched(xp: Any, input: Any, target: Any, *, allow_probs: bool) -> tuple[Any, Any, bool]:
    """``(x, t, unbatched)`` with ``x`` of shape (N, C, *rest); ``t`` int64 labels of shape
    (N, 1, *rest) or, when ``allow_probs`` and the target is floating, class probabilities of
    ``x``'s shape."""
    shape = shape_of(input)
    if len(shape) == 0 or shape[1 if len(shape) > 1 else 0] < 1:
        raise ValueError(
            "input must have shape (C,), (N, C) or (N, C, d1, ..., dk) with C >= 1 classes on "
            f"axis 1 (axis 0 when unbatched); got shape {shape}."
        )
    unbatched = len(shape) == 1
    x = xp.reshape(input, (1, shape[0])) if unbatched else input
    label_shape = () if unbatched else shape[:1] + shape[2:]
    if allow_probs and is_floating(xp, target):
        if shape_of(target) != shape:
            raise ValueError(
                f"target holds class probabilities, so it must have the input's shape {shape}; "
                f"got {shape_of(target)}. (Class indices would be an integer array of shape "
                f"{label_shape}.)"
            )
        return x, xp.reshape(target, shape_of(x)), unbatched
    if shape_of(target) != label_shape:
        raise ValueError(
            f"target of class indices must have shape {label_shape} (the input's shape {shape} "
            f"without the class axis); got {shape_of(target)}."
        )
    keep = shape_of(x)[:1] + (1,) + shape_of(x)[2:]
    return x, xp.reshape(xp.astype(target, xp.int64), keep), unbatched


def _items_of(xp: Any, per: Any, unbatched: bool) -> Any:
    """Per-item values (N, 1, *rest) -> the items' shape (N, *rest), or () unbatched."""
    per = xp.squeeze(per, axis=1)
    return xp.reshape(per, ()) if unbatched else per


def _grad_shape(xp: Any, g: Any, unbatched: bool) -> Any:
    return xp.reshape(g, (int(g.shape[1]),)) if unbatched else g


def _per_row(xp: Any, w: Any, x: Any) -> Any:
    """The reducer's weights ``w`` (a number, or laid over the input) as a per-row factor for the
    batched view ``x`` (N, C, *rest)."""
    if isinstance(w, float) or w.ndim == x.ndim:
        return w
    return xp.reshape(w, (1,) * x.ndim)


def _class_vector(xp: Any, a: Any, x: Any, name: str) -> Any:
    n_classes = int(x.shape[1])
    if shape_of(a) != (n_classes,):
        raise ValueError(
            f"{name} must have shape ({n_classes},), one entry per class; got {shape_of(a)}."
        )
    return a


def _along_classes(xp: Any, w: Any, ndim: int) -> Any:
    """A (C,) array reshaped to broadcast along axis 1 of an ndim-dimensional input."""
    return xp.reshape(w, (1, int(w.shape[0])) + (1,) * (ndim - 2))


def _gather(xp: Any, w: Any, y: Any) -> Any:
    """``w[y]`` for labels of any shape (take wants 1-D indices)."""
    return xp.reshape(xp.take(w, xp.reshape(y, (-1,)), axis=0), shape_of(y))


def _labels(xp: Any, y: Any, ignore_index: int) -> tuple[Any, Any]:
    """``(safe, valid)``: labels with ignored entries replaced by 0 (so they can index), and the
    0/1 mask of entries that count, in the input's dtype later."""
    valid = y != ignore_index
    return xp.where(valid, y, xp.zeros_like(y)), valid


def _hvp_softmax(
    xp: Any, sm: SoftmaxPass, v: Any, c1: Any, y: Any = None, c2: Any = None
) -> Any:
    """``[c1 (diag p - p p^T) + c2 a a^T] v`` per row, ``a = onehot(y) - p``."""
    p = sm.p
    pv = xp.sum(p * v, axis=1, keepdims=True)
    out = c1 * (p * v - p * pv)
    if c2 is not None:
        a = add_at_labels(xp, -p, y, 1.0)
        av = xp.take_along_axis(v, y, axis=1) - pv
        out = out + (c2 * av) * a
    return out


def _hess_softmax(xp: Any, sm: SoftmaxPass, c1: Any, y: Any = None, c2: Any = None) -> Any:
    """The diagonal of ``c1 (diag p - p p^T) + c2 a a^T``."""
    p = sm.p
    out = c1 * (p - p * p)
    if c2 is not None:
        a = add_at_labels(xp, -p, y, 1.0)
        out = out + c2 * (a * a)
    return out


def _index_mean_denominator(
    input: Any, target: Any, *, weight: Any = None, ignore_index: int = -100, **_: Any
) -> float:
    """What ``reduction="mean"`` divides by, from the targets alone (NumPy inputs).

    The blocked executor (losses/_blocked.py) needs it before it splits the batch: the sum of the
    target classes' weights over the non-ignored entries for index targets, the number of
    samples for probability targets.
    """
    target = np.asarray(target)
    if np.issubdtype(target.dtype, np.floating):
        return float(target.size // target.shape[1])
    valid = target != ignore_index
    if weight is None:
        return float(np.count_nonzero(valid))
    w = np.asarray(weight, dtype=np.float64)
    return float(w[target[valid]].sum())


# ----------------------------------------------------------------------------------------------
# Examples for the catalog (NumPy inputs valid for the given options)
# ----------------------------------------------------------------------------------------------


def _index_example(
    rng: np.random.Generator,
    dtype: Any = "float64",
    *,
    weight: Any = None,
    alpha: Any = None,
    ignore_index: int = -100,
    **_: Any,
) -> tuple[Any, ...]:
    """Logits of shape (N, C), (C,) or (N, C, d1) and int64 labels, some of them ``ignore_index``
    (never all, so a mean stays defined)."""
    per_class = weight if weight is not None else alpha
    if per_class is not None and np.ndim(per_class) == 1:
        n_classes = int(np.shape(per_class)[0])
    else:
        n_classes = int(rng.integers(2, 6))
    kind = int(rng.integers(0, 3))
    n = int(rng.integers(1, 5))
    if kind == 0:
        label_shape: tuple[int, ...] = ()
        shape: tuple[int, ...] = (n_classes,)
    elif kind == 1:
        label_shape, shape = (n,), (n, n_classes)
    else:
        d = int(rng.integers(1, 4))
        label_shape, shape = (n, d), (n, n_classes, d)
    x = (2.0 * rng.normal(size=shape)).astype(dtype)
    y = rng.integers(0, n_classes, size=label_shape).astype(np.int64)
    if y.ndim and y.size > 1 and rng.random() < 0.5:
        y[rng.random(size=label_shape) < 0.3] = ignore_index
        keep = [c for c in range(n_classes) if c != ignore_index]
        y.reshape(-1)[0] = keep[int(rng.integers(0, len(keep)))]
    return x, np.asarray(y)


def _nll_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    x, y = _index_example(rng, dtype, **options)
    axis = 0 if x.ndim == 1 else 1
    x64 = x.astype(np.float64)
    logp = x64 - np.log(np.sum(np.exp(x64), axis=axis, keepdims=True))
    return logp.astype(dtype), y


# ----------------------------------------------------------------------------------------------
# cross_entropy and poly1 (one implementation: poly1 adds a term to the same pass)
# ----------------------------------------------------------------------------------------------


def _ce_index(
    xp: Any, x: Any, y: Any, unbatched: bool, *, weight: Any, ignore_index: int,
    label_smoothing: float, poly_epsilon: float = 0.0,
) -> Items:
    """Cross-entropy with class-index targets, plus ``poly_epsilon * w_y * (1 - p_t)`` (poly1)."""
    n_classes = int(x.shape[1])
    ls = label_smoothing
    y, valid = _labels(xp, y, ignore_index)
    live = xp.astype(valid, x.dtype)
    w_b = None if weight is None else _along_classes(xp, weight, x.ndim)
    w_y = live if weight is None else _gather(xp, weight, y) * live  # 0 where ignored
    total_w = float(n_classes) if weight is None else xp.sum(weight)
    sm = SoftmaxPass(xp, x, y, dot=None if ls == 0 else (True if w_b is None else w_b))
    lp = sm.log_p_y  # log p_y, exact even for huge logits
    per = xp.where(valid, w_y * -lp, xp.zeros_like(lp))  # an ignored -inf logit: no 0 * inf
    if ls != 0:
        # torch: (1 - ls) w_y (-log p_y) + ls / C sum_c w_c (-log p_c)
        smooth = xp.where(valid, sm.neg_log_p_dot, xp.zeros_like(lp))
        per = (1.0 - ls) * per + (ls / n_classes) * smooth
    k = None
    if poly_epsilon != 0:
        p_y = xp.exp(lp)
        # 1 - p_t with p_t = (1 - ls) p_y + ls / C, and 1 - p_y without cancellation near 1
        poly = (1.0 - ls) * -xp.expm1(lp) + ls * (n_classes - 1) / n_classes
        per = per + poly_epsilon * xp.where(valid, w_y * poly, xp.zeros_like(lp))
        k = poly_epsilon * (1.0 - ls) * w_y * p_y  # the poly term's coefficient on p - onehot
    # c_t: the one-hot coefficient, c_p: the softmax coefficient (sum of the smoothed targets)
    c_t = (1.0 - ls) * w_y
    c_p = c_t + (ls / n_classes) * total_w * live
    dense = None if ls == 0 else (ls / n_classes) * (live if w_b is None else live * w_b)

    def grad(w: Any) -> Any:
        w = _per_row(xp, w, x)
        kw = 0.0 if k is None else k * w
        d = None if dense is None else w * dense
        return _grad_shape(xp, sm.combine(w * c_p + kw, y, w * c_t + kw, d), unbatched)

    def second(w: Any) -> tuple[Any, Any]:
        w = _per_row(xp, w, x)
        if k is None:
            return w * c_p, None
        return w * (c_p + k), w * -k  # -k a a^T: the poly term's curvature

    def hess(w: Any) -> Any:
        c1, c2 = second(w)
        return _grad_shape(xp, _hess_softmax(xp, sm, c1, y, c2), unbatched)

    def hvp(w: Any, v: Any) -> Any:
        c1, c2 = second(w)
        v = xp.reshape(v, shape_of(x))
        return _grad_shape(xp, _hvp_softmax(xp, sm, v, c1, y, c2), unbatched)

    return Items(
        _items_of(xp, per, unbatched),
        grad=grad,
        hess=hess,
        hvp=hvp,
        denominator=xp.sum(w_y),
    )


def _ce_probs(
    xp: Any, x: Any, t: Any, unbatched: bool, *, weight: Any, label_smoothing: float,
    poly_epsilon: float = 0.0,
) -> Items:
    """Cross-entropy with class-probability targets, ``-sum_c w_c q_c log p_c``, plus
    ``poly_epsilon * sum_c w_c q_c (1 - p_c)`` (poly1)."""
    n_classes = int(x.shape[1])
    ls = label_smoothing
    b = t if ls == 0 else t * (1.0 - ls) + ls / n_classes
    if weight is not None:
        b = b * _along_classes(xp, weight, x.ndim)
    big_b = xp.sum(b, axis=1, keepdims=True)
    with _quiet():  # 0 * -inf in the dot (a masked logit): handled by _neg_log_p_dot
        sm = SoftmaxPass(xp, x, dot=b)
    per = _neg_log_p_dot(xp, sm, x, b, big_b)
    eps = poly_epsilon
    beta = None
    if eps != 0:
        beta = xp.sum(b * sm.p, axis=1, keepdims=True)  # sum_c b_c p_c
        per = per + eps * (big_b - beta)

    def grad(w: Any) -> Any:
        w = _per_row(xp, w, x)
        if beta is None:
            return _grad_shape(xp, sm.combine(w * big_b, dense=w * b), unbatched)
        # (B + eps beta) p - b (1 + eps p): cross-entropy's plus -eps sum_c b_c dp_c/dx
        dense = w * (b + eps * (b * sm.p))
        return _grad_shape(xp, sm.combine(w * (big_b + eps * beta), dense=dense), unbatched)

    def poly_g() -> Any:
        return -eps * b  # the poly term's gradient in p

    def hvp(w: Any, v: Any) -> Any:
        w = _per_row(xp, w, x)
        v = xp.reshape(v, shape_of(x))
        out = _hvp_softmax(xp, sm, v, w * big_b)
        if beta is not None:
            out = out + w * _second_softmax(xp, sm.p, poly_g(), v)
        return _grad_shape(xp, out, unbatched)

    def hess(w: Any) -> Any:
        w = _per_row(xp, w, x)
        out = _hess_softmax(xp, sm, w * big_b)
        if beta is not None:
            out = out + w * _second_softmax_diag(xp, sm.p, poly_g())
        return _grad_shape(xp, out, unbatched)

    # torch divides by the number of samples here, weights or not (unlike index targets).
    return Items(_items_of(xp, per, unbatched), grad=grad, hess=hess, hvp=hvp)


def _quiet() -> Any:
    """NumPy's invalid-value warning off (the caller repairs what it would report), for NumPy and
    the namespaces that run on it (array-api-strict); nothing for the others."""
    return np.errstate(invalid="ignore")


def _neg_log_p_dot(xp: Any, sm: SoftmaxPass, x: Any, b: Any, big_b: Any) -> Any:
    """``-sum_c b_c log p_c`` per row, with ``0 log 0 = 0`` where a logit is ``-inf`` and its
    target weight ``b_c`` is 0 (a masked vocabulary; optax's ``safe_softmax_cross_entropy``).

    ``SoftmaxPass`` forms ``sum_c b_c (x_c - max)``, whose ``0 * -inf`` is NaN; where one
    reduction shows every row finite (NumPy, CPU torch: free to read) that is the answer, else the
    dot is formed again over the logits with ``b_c > 0`` only (a row with ``b_c > 0`` at a
    ``-inf`` logit is then ``+inf``, the right limit)."""
    per = sm.neg_log_p_dot
    if all_within(xp, xp.abs(per), float(xp.finfo(per.dtype).max)):
        return per
    m = xp.max(x, axis=1, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    zb = xp.where(b > 0, x - m, xp.zeros_like(x)) * b
    return big_b * xp.log(sm.s) - xp.sum(zb, axis=1, keepdims=True)


def _second_softmax(xp: Any, p: Any, g: Any, v: Any) -> Any:
    """``sum_k g_k (d2 p_k / dx2) v`` for ``p = softmax(x)`` along axis 1: with ``u = J v =
    p (v - p.v)``, ``u (g - p.g) - p (u.g)``."""
    u = p * (v - xp.sum(p * v, axis=1, keepdims=True))
    return u * (g - xp.sum(p * g, axis=1, keepdims=True)) - p * xp.sum(u * g, axis=1, keepdims=True)


def _second_softmax_diag(xp: Any, p: Any, g: Any) -> Any:
    """The diagonal of ``sum_k g_k d2 p_k / dx2``: ``(g - p.g) p (1 - 2 p)``."""
    return (g - xp.sum(p * g, axis=1, keepdims=True)) * p * (1.0 - 2.0 * p)


@register(
    "cross_entropy",
    input_kind="logits",
    target_kind="class",
    layout="class_axis",
    options={
        "weight": CLASS_WEIGHT,
        "ignore_index": IGNORE_INDEX,
        "label_smoothing": LABEL_SMOOTHING,
    },
    hessian="nonnegative",
    rowwise=True,
    mean_denominator=_index_mean_denominator,
    task="multiclass",
    formula="-w_y log softmax(x)_y, label-smoothed, mean over sum of w_y",
    example=_index_example,
    torch="cross_entropy",
    module="CrossEntropyLoss",
)
def cross_entropy(
    xp: Any,
    input: Any,
    target: Any,
    *,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Items:
    """Softmax cross-entropy: ``l_i = -sum_c w_c q_ic log p_ic`` with ``p_i = softmax(x_i)``.

    ``input``: logits of shape (N, C), (C,) unbatched, or (N, C, d1, ..., dk) (classes on axis 1).
    ``target``: either integer class indices of the input's shape without the class axis, or
    floating class probabilities of the input's shape.

    Class indices y: ``q = (1 - ls) onehot(y) + ls / C`` mixed with the uniform distribution, and
    torch's weighting: ``l_i = (1 - ls) w_{y_i} (-log p_{i,y_i}) + ls/C sum_c w_c (-log p_ic)``
    (the smoothing term weights each class by its own weight); entries whose label equals
    ``ignore_index`` contribute 0 to both terms; ``reduction="mean"`` divides the sum by
    ``sum_i w_{y_i}`` over the non-ignored entries (the count when ``weight`` is None). A batch
    with every entry ignored gives NaN for the mean (0/0) and a zero gradient, as torch.
    Class probabilities t: ``q = (1 - ls) t + ls / C``, ``l_i = -sum_c w_c q_ic log p_ic``, and the
    mean divides by the number of samples N*d1*...*dk, weights or not; ``ignore_index`` does
    not apply. A logit of ``-inf`` (a masked vocabulary) where ``q`` is 0 contributes
    ``0 log 0 = 0``: finite value and gradient, no NaN, no warning (optax's
    ``safe_softmax_cross_entropy``; torch gives NaN there); where ``q > 0`` the loss is ``+inf``.

    Gradient: ``dl_i/dx_i = (sum_c b_ic) p_i - b_i`` with ``b_ic = w_c q_ic`` (for index targets
    ``b_i = (1 - ls) w_y onehot(y) + ls/C w``). Hessian: ``(sum_c b_ic) (diag(p_i) - p_i p_i^T)``
    (the Hessian-vector product costs two passes; its diagonal is ``B p (1 - p)``). ``log p`` is
    taken as ``(x - max) - log sum exp(x - max)``, which stays exact for logits of any magnitude.

    Options: ``weight`` (C,) class weights; ``ignore_index``; ``label_smoothing`` in [0, 1].

    Same as ``torch.nn.functional.cross_entropy`` (values and gradients, every option and
    combination, including torch's current rule that ignored targets count in neither the
    smoothing term nor the mean's denominator, pytorch/pytorch#73205 and #69511). We accept any
    integer label dtype (torch wants int64). The article's binary form
    ``-1/n sum_ij [y log p + (1 - y) log(1 - p)]`` is ``bce`` with ``reduction="sum"`` divided by
    n, not this loss.

    Reference: Szegedy et al., "Rethinking the Inception Architecture" (2016) for label smoothing;
    Goodfellow, Bengio, Courville, *Deep Learning* (2016), section 6.2.2.3.
    """
    x, t, unbatched = _batched(xp, input, target, allow_probs=True)
    if weight is not None:
        weight = _class_vector(xp, weight, x, "weight")
    if is_floating(xp, t):
        return _ce_probs(xp, x, t, unbatched, weight=weight, label_smoothing=label_smoothing)
    return _ce_index(
        xp, x, t, unbatched, weight=weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing,
    )


@register(
    "poly1",
    input_kind="logits",
    target_kind="class",
    layout="class_axis",
    options={
        "epsilon": Real(-1.0, None),
        "weight": CLASS_WEIGHT,
        "ignore_index": IGNORE_INDEX,
        "label_smoothing": LABEL_SMOOTHING,
    },
    hessian="indefinite",
    rowwise=True,
    mean_denominator=_index_mean_denominator,
    task="multiclass",
    formula="cross_entropy + epsilon * (1 - p_t)",
    example=_index_example,
)
def poly1(
    xp: Any,
    input: Any,
    target: Any,
    *,
    epsilon: float = 1.0,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Items:
    """Poly-1 loss: ``l_i = CE_i + epsilon * w_{y_i} (1 - p_t)``, ``p_t = sum_c q_ic p_ic``.

    ``CE_i`` is exactly ``cross_entropy``'s per-sample term with the same ``weight``,
    ``ignore_index`` and ``label_smoothing``; ``q`` is the (smoothed) target distribution, as in
    Leng et al.'s reference code, so ``p_t = (1 - ls) p_y + ls / C``. The poly term is weighted
    by the target's class weight and the mean divides by ``sum_i w_{y_i}`` over non-ignored
    entries, so that ``epsilon = 0`` is ``cross_entropy`` exactly and the weighted mean stays a
    weighted average of per-sample Poly-1 losses.

    Class-probability targets ``t`` (the input's shape): ``l_i = CE_i + epsilon sum_c w_c q_c
    (1 - p_c)`` with ``q = (1 - ls) t + ls / C`` (Leng et al.'s reference code,
    ``CE + epsilon (1 - sum_c q_c p_c)`` without weights, so one-hot targets give the index
    form); the mean divides by the number of samples, as ``cross_entropy``'s. Its gradient adds
    ``epsilon p_k (sum_c b_c p_c - b_k)`` (``b = w q``) and its Hessian ``-epsilon sum_c b_c
    d2p_c``.

    Gradient: cross_entropy's plus ``k (p_i - onehot(y_i))`` with ``k = epsilon w_y (1 - ls) p_y``.
    Hessian: cross_entropy's plus ``-k [a a^T - (diag p - p p^T)]``, ``a = onehot(y) - p``
    (``-p_y``'s curvature; negative directions appear for ``epsilon > 0``). ``1 - p_y`` is
    computed as ``-expm1(log p_y)``, exact near p_y = 1.

    Options: ``epsilon`` >= -1 (the paper's range: below -1 the loss is no longer decreasing in
    p_t), and cross_entropy's options. torch has no Poly-1 loss; common PyTorch ports apply the
    poly term unweighted and take a plain mean, which differs from ours only when ``weight`` is
    given.

    Reference: Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
    Functions", ICLR 2022.
    """
    x, y, unbatched = _batched(xp, input, target, allow_probs=True)
    if weight is not None:
        weight = _class_vector(xp, weight, x, "weight")
    if is_floating(xp, y):
        return _ce_probs(
            xp, x, y, unbatched, weight=weight, label_smoothing=label_smoothing,
            poly_epsilon=epsilon,
        )
    return _ce_index(
        xp, x, y, unbatched, weight=weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, poly_epsilon=epsilon,
    )


# ----------------------------------------------------------------------------------------------
# nll and softmax_focal
# ----------------------------------------------------------------------------------------------


@register(
    "nll",
    input_kind="log_probabilities",
    target_kind="class_index",
    layout="class_axis",
    options={"weight": CLASS_WEIGHT, "ignore_index": IGNORE_INDEX},
    hessian="zero",
    rowwise=True,
    mean_denominator=_index_mean_denominator,
    task="multiclass",
    formula="-w_y input_y, mean over sum of w_y",
    example=_nll_example,
    torch="nll_loss",
    module="NLLLoss",
)
def nll(
    xp: Any, input: Any, target: Any, *, weight: Any = None, ignore_index: int = -100
) -> Items:
    """Negative log-likelihood: ``l_i = -w_{y_i} input_{i, y_i}`` for log-probabilities ``input``.

    Shapes as ``cross_entropy`` with class-index targets: (N, C), (C,), (N, C, d1, ..., dk).
    Entries labelled ``ignore_index`` contribute 0; ``reduction="mean"`` divides by
    ``sum_i w_{y_i}`` over the other entries (NaN when all are ignored, as torch).

    Gradient: ``-w_{y_i}`` at the target entry, 0 elsewhere. Hessian: 0 (the loss is linear).

    Same as ``torch.nn.functional.nll_loss``. Reference: any text on maximum likelihood; with
    ``input = log_softmax(x)`` this is ``cross_entropy``.
    """
    x, y, unbatched = _batched(xp, input, target, allow_probs=False)
    if weight is not None:
        weight = _class_vector(xp, weight, x, "weight")
    y, valid = _labels(xp, y, ignore_index)
    live = xp.astype(valid, x.dtype)
    w_y = live if weight is None else _gather(xp, weight, y) * live
    x_y = xp.take_along_axis(x, y, axis=1)
    per = xp.where(valid, -(w_y * x_y), xp.zeros_like(x_y))

    def grad(w: Any) -> Any:
        g = add_at_labels(xp, xp.zeros_like(x), y, -(_per_row(xp, w, x) * w_y))
        return _grad_shape(xp, g, unbatched)

    return Items(
        _items_of(xp, per, unbatched),
        grad=grad,
        hess=lambda w: xp.zeros_like(input),
        hvp=lambda w, v: xp.zeros_like(input),
        denominator=xp.sum(w_y),
    )


@register(
    "softmax_focal",
    input_kind="logits",
    target_kind="class",
    layout="class_axis",
    options={
        "gamma": Real(0, None),
        "alpha": Either(NONE, Real(), Array("shape (C,), one factor per class")),
        "weight": CLASS_WEIGHT,
        "ignore_index": IGNORE_INDEX,
        "label_smoothing": LABEL_SMOOTHING,
    },
    hessian="indefinite",
    task="multiclass",
    formula="-alpha_y (1 - p_y)^gamma log p_y, p = softmax(x)",
    example=_index_example,
)
def softmax_focal(
    xp: Any,
    input: Any,
    target: Any,
    *,
    gamma: float = 2.0,
    alpha: Any = None,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Items:
    """Multi-class focal loss: ``l_i = -alpha_{y_i} w_{y_i} (1 - p_{i,y_i})^gamma log p_{i,y_i}``.

    ``p = softmax(input)`` over axis 1; shapes as ``cross_entropy``. ``alpha`` is None (1), a
    number, or a (C,) array of per-class factors; ``weight`` a (C,) array of class weights.
    Entries labelled ``ignore_index`` contribute 0. ``alpha`` is a fixed balancing factor as in
    Lin et al. and torchvision's sigmoid focal loss, not renormalised by the mean; ``weight`` is
    torch's class weight: ``reduction="mean"`` divides by ``sum_i w_{y_i}`` over the non-ignored
    entries (their number without ``weight``; NaN when there are none). So ``gamma=0`` is
    ``cross_entropy`` exactly, with the same ``weight``, ``ignore_index`` and
    ``label_smoothing``.

    Class probabilities (a floating target of the input's shape) and ``label_smoothing``:
    ``l_i = -sum_c alpha_c w_c q_c (1 - p_c)^gamma log p_c`` with ``q = (1 - ls) t + ls / C``
    (``t`` the one-hot labels or the given probabilities): Keras's
    ``CategoricalFocalCrossentropy(alpha, gamma, from_logits=True, label_smoothing)``, whose
    modulating factor is each class's own ``(1 - p_c)^gamma`` (MONAI's softmax focal loss too).
    The mean divides by the number of samples for probability targets (as ``cross_entropy``).

    As a function of ``u = log p_c`` each term is ``b_c f(u_c)``, ``f(u) = -q^gamma u`` with
    ``q = 1 - p_c``; ``du_c/dx = a_c = onehot(c) - p`` and ``d2u_c/dx2 = -(diag p - p p^T)``.
    With ``c = -f'(u) = q^gamma (1 - gamma p u / q)`` (``u / q -> -1`` as ``q -> 0``, which we
    use at ``q = 0``) and ``f''(u) = gamma q^(gamma - 1) p [2 + u - (gamma - 1) p u / q]`` (taken
    as 0 where ``q`` underflows to 0):

    - gradient ``dl_i/dx_i = R p - r`` with ``r_c = b_c c_c``, ``R = sum_c r_c`` (one class:
      ``alpha_y w_y c (p - onehot(y))``);
    - Hessian ``sum_c d_c a_c a_c^T + R (diag p - p p^T)`` with ``d_c = b_c f''(u_c)``, whose
      product with ``v`` is ``d v - d (p.v) - p (d.v) + (sum d) p (p.v) + R (p v - p (p.v))``;
      it can be negative for ``gamma > 0``.

    ``u`` comes from the shifted logits (on torch from the fused softmax where ``p_y`` is a
    normal number) and ``q = -expm1(u)``, so both stay exact for logits of any magnitude.

    torch has no multi-class focal loss. MONAI's scalar ``alpha`` weighs the background class
    ``1 - alpha`` and the others ``alpha``; pass that as a (C,) array here. Reference: Lin et
    al., "Focal Loss for Dense Object Detection", ICCV 2017 (defined there for sigmoids; this is
    its usual softmax generalisation).
    """
    x, y, unbatched = _batched(xp, input, target, allow_probs=True)
    if weight is not None:
        weight = _class_vector(xp, weight, x, "weight")
    if alpha is not None and not isinstance(alpha, float):
        alpha = _class_vector(xp, alpha, x, "alpha")
    if is_floating(xp, y) or label_smoothing != 0:
        return _focal_dense(
            xp, x, y, unbatched, gamma=gamma, alpha=alpha, weight=weight,
            ignore_index=ignore_index, label_smoothing=label_smoothing,
        )
    y, valid = _labels(xp, y, ignore_index)
    live = xp.astype(valid, x.dtype)
    a_y: Any = live
    if alpha is not None:
        a_y = alpha * live if isinstance(alpha, float) else _gather(xp, alpha, y) * live
    count = live
    if weight is not None:
        w_y = _gather(xp, weight, y)
        a_y = a_y * w_y
        count = w_y * live
    sm = SoftmaxPass(xp, x, y)
    u = sm.log_p_y
    q = -xp.expm1(u)
    q_gamma = q**gamma
    positive = q > 0
    q_safe = xp.where(positive, q, xp.ones_like(q))
    ratio = xp.where(positive, u / q_safe, -xp.ones_like(q))  # u / q, -1 in the limit q -> 0
    p_y = xp.exp(u)
    c = q_gamma * (1.0 - gamma * p_y * ratio)
    coef = a_y * c

    def second(w: Any) -> tuple[Any, Any]:
        w = _per_row(xp, w, x)
        q_gm1 = xp.where(positive, q_gamma / q_safe, xp.zeros_like(q))  # q^(gamma - 1)
        f2 = gamma * q_gm1 * p_y * (2.0 + u - (gamma - 1.0) * p_y * ratio)
        return w * coef, w * (a_y * f2)

    def hvp(w: Any, v: Any) -> Any:
        c1, c2 = second(w)
        v = xp.reshape(v, shape_of(x))
        return _grad_shape(xp, _hvp_softmax(xp, sm, v, c1, y, c2), unbatched)

    def hess(w: Any) -> Any:
        c1, c2 = second(w)
        return _grad_shape(xp, _hess_softmax(xp, sm, c1, y, c2), unbatched)

    def grad(w: Any) -> Any:
        k = _per_row(xp, w, x) * coef
        return _grad_shape(xp, sm.combine(k, y, k), unbatched)

    per = xp.where(valid, -(a_y * q_gamma * u), xp.zeros_like(u))
    return Items(
        _items_of(xp, per, unbatched),
        grad=grad,
        hess=hess,
        hvp=hvp,
        denominator=xp.sum(count),
    )


def _focal_dense(
    xp: Any, x: Any, y: Any, unbatched: bool, *, gamma: float, alpha: Any, weight: Any,
    ignore_index: int, label_smoothing: float,
) -> Items:
    """``-sum_c b_c (1 - p_c)^gamma log p_c`` with ``b = alpha w q``, ``q`` the smoothed one-hot
    labels or class probabilities (see ``softmax_focal``)."""
    n_classes = int(x.shape[1])
    ls = label_smoothing
    denominator = None
    if is_floating(xp, y):
        q_t = y
    else:
        y, valid = _labels(xp, y, ignore_index)
        live = xp.astype(valid, x.dtype)
        q_t = add_at_labels(xp, xp.zeros_like(x), y, live)  # one-hot, 0 rows where ignored
        denominator = xp.sum(live if weight is None else _gather(xp, weight, y) * live)
        if ls != 0:
            q_t = q_t * (1.0 - ls) + (ls / n_classes) * live
            ls = 0.0
    b = q_t if ls == 0 else q_t * (1.0 - ls) + ls / n_classes
    for factor in (alpha, weight):
        if factor is not None:
            b = b * (factor if isinstance(factor, float) else _along_classes(xp, factor, x.ndim))
    u = log_softmax(xp, x, axis=1)
    p = xp.exp(u)
    q = -xp.expm1(u)
    q_gamma = q**gamma
    positive = q > 0
    q_safe = xp.where(positive, q, xp.ones_like(q))
    ratio = xp.where(positive, u / q_safe, -xp.ones_like(q))
    r = b * (q_gamma * (1.0 - gamma * p * ratio))  # b_c c_c
    big_r = xp.sum(r, axis=1, keepdims=True)
    per = -xp.sum(b * (q_gamma * u), axis=1, keepdims=True)

    def curvature(w: Any) -> tuple[Any, Any, Any, Any]:
        w = _per_row(xp, w, x)
        q_gm1 = xp.where(positive, q_gamma / q_safe, xp.zeros_like(q))
        d = b * (gamma * q_gm1 * p * (2.0 + u - (gamma - 1.0) * p * ratio))
        return w * d, w * xp.sum(d, axis=1, keepdims=True), w * big_r, w

    def grad(w: Any) -> Any:
        w = _per_row(xp, w, x)
        return _grad_shape(xp, (w * big_r) * p - w * r, unbatched)

    def hvp(w: Any, v: Any) -> Any:
        d, big_d, rr, _ = curvature(w)
        v = xp.reshape(v, shape_of(x))
        pv = xp.sum(p * v, axis=1, keepdims=True)
        dv = xp.sum(d * v, axis=1, keepdims=True)
        out = d * v - d * pv - p * dv + (big_d * pv) * p + rr * (p * v - p * pv)
        return _grad_shape(xp, out, unbatched)

    def hess(w: Any) -> Any:
        d, big_d, rr, _ = curvature(w)
        out = d - 2.0 * d * p + big_d * (p * p) + rr * (p - p * p)
        return _grad_shape(xp, out, unbatched)

    return Items(
        _items_of(xp, per, unbatched), grad=grad, hess=hess, hvp=hvp, denominator=denominator
    )


# ----------------------------------------------------------------------------------------------
# generalized_ce
# ----------------------------------------------------------------------------------------------


@register(
    "generalized_ce",
    input_kind="logits",
    target_kind="class_index",
    layout="class_axis",
    options={"q": Real(0, 1, closed="right"), "ignore_index": IGNORE_INDEX},
    hessian="indefinite",
    rowwise=True,
    mean_denominator=_index_mean_denominator,
    task="multiclass",
    formula="(1 - p_y^q) / q, p = softmax(x)",
    example=_index_example,
    module="GeneralizedCrossEntropyLoss",
)
def generalized_ce(
    xp: Any, input: Any, target: Any, *, q: float = 0.5, ignore_index: int = -100
) -> Items:
    """Generalized cross-entropy (L_q loss): ``l_i = (1 - p_{i,y_i}^q) / q``, ``p = softmax(x)``.

    Between cross-entropy (``q -> 0``: ``-log p_y``) and the mean absolute error of the
    probabilities (``q = 1``: ``1 - p_y``), robust to noisy labels for larger ``q``. Evaluated as
    ``-expm1(q log p_y) / q`` with ``log p_y`` from the shifted logits: exact for small ``q`` and
    for logits of any magnitude. Shapes and class-index targets as ``cross_entropy``; entries
    labelled ``ignore_index`` contribute 0 and ``reduction="mean"`` divides by the number of the
    others.

    Gradient: ``dl_i/dx_i = p_y^q (p_i - onehot(y_i))`` (as ``f(u) = -expm1(q u) / q`` with
    ``u = log p_y``: ``f'(u) = -p_y^q``). Hessian: ``p_y^q (diag p - p p^T) - q p_y^q a a^T``,
    ``a = onehot(y) - p`` (``f''(u) = -q p_y^q``); indefinite.

    Options: ``q`` in (0, 1] (default 0.5, Keras's; Zhang and Sabuncu use 0.7),
    ``ignore_index``. Keras's ``CategoricalGeneralizedCrossEntropy(q)`` takes probabilities with
    classes on the last axis: it equals this loss on ``softmax(x)``.

    Reference: Zhang and Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural
    Networks with Noisy Labels", NeurIPS 2018; Keras ``CategoricalGeneralizedCrossEntropy``.
    """
    x, y, unbatched = _batched(xp, input, target, allow_probs=False)
    y, valid = _labels(xp, y, ignore_index)
    live = xp.astype(valid, x.dtype)
    sm = SoftmaxPass(xp, x, y)
    u = sm.log_p_y
    p_q = xp.exp(q * u) * live  # p_y^q, 0 where ignored
    per = xp.where(valid, -xp.expm1(q * u) / q, xp.zeros_like(u))

    def grad(w: Any) -> Any:
        k = _per_row(xp, w, x) * p_q
        return _grad_shape(xp, sm.combine(k, y, k), unbatched)

    def second(w: Any) -> tuple[Any, Any]:
        k = _per_row(xp, w, x) * p_q
        return k, -q * k

    def hvp(w: Any, v: Any) -> Any:
        c1, c2 = second(w)
        v = xp.reshape(v, shape_of(x))
        return _grad_shape(xp, _hvp_softmax(xp, sm, v, c1, y, c2), unbatched)

    def hess(w: Any) -> Any:
        c1, c2 = second(w)
        return _grad_shape(xp, _hess_softmax(xp, sm, c1, y, c2), unbatched)

    return Items(
        _items_of(xp, per, unbatched), grad=grad, hess=hess, hvp=hvp, denominator=xp.sum(live)
    )
