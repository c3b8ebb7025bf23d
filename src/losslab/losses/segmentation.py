"""Segmentation losses built on the overlap scores: the Lovász extensions of the Jaccard loss and
MONAI's compound losses (Dice + cross-entropy, Dice + focal).

The Lovász losses (Berman, Rannen Triki and Blaschko, CVPR 2018) optimise the Jaccard index
directly: for one block of pixels with errors ``e`` sorted in decreasing order and the ground
truth ``g`` in the same order, the Lovász extension of the Jaccard loss is ``sum_k e_k d_k`` with
``d_k = J_k - J_{k-1}``, ``J_k = 1 - (G - cumsum(g)_k) / (G + cumsum(1 - g)_k)``, ``G = sum g``
("lovasz_grad" in the reference code). It is piecewise linear in the errors: between two changes
of the sort order its gradient is the constant ``d`` (taken back to the input's positions).

A block is a sample, or the whole batch with ``batch=True`` (the reference code's
``per_image=False``); ignored elements leave every sum. The reference code's flattening of
``(N, C, H, W)`` probabilities had a permute/reshape bug in the segmentation_models_pytorch and
pytorch-toolbelt copies (smp PR #461: classes and pixels mixed for non-square inputs); here the
class axis is never moved before the sums.

The compounds add a Dice term and a per-element term with MONAI's trade-off weights
``lambda_dice`` and ``lambda_ce`` / ``lambda_focal``, one loss per sample (or for the batch).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from losslab.losses._constraints import NONE, Boolean, Choice, Either, Real
from losslab.losses._primitives import shape_of
from losslab.losses._registry import Items, register
from losslab.losses._validation import value_checks_enabled
from losslab.losses.binary import bce_with_logits, focal
from losslab.losses.multiclass import cross_entropy
from losslab.losses.overlap import (
    AVERAGE,
    CLASS_WEIGHT,
    IGNORE_INDEX,
    MODE,
    SMOOTH,
    SMOOTH_PART,
    SegmentationView,
    dice,
    segmentation_example,
)

__all__ = ["lovasz_hinge", "lovasz_softmax", "dice_ce", "dice_focal"]

# Example errors stay this far apart (and from the hinge's kink), so that central differences
# (step 1e-6) never cross a change of the sort order.
_GAP = 2e-3


# ----------------------------------------------------------------------------------------------
# The Lovász extension on rows
# ----------------------------------------------------------------------------------------------


def _lovasz_rows(xp: Any, errors: Any, fg: Any, counted: Any) -> tuple[Any, Any, Any]:
    """For rows of errors (R, L) and 0/1 ground truth ``fg``: ``(perm, rank, d)`` with ``perm``
    the order of decreasing error, ``rank`` its inverse and ``d`` the Lovász weights in sorted
    order. Elements not ``counted`` (ignored) sort last with ground truth 0: they only change
    the weights at their own (later) positions, which multiply nothing."""
    if counted is not None:
        errors = xp.where(counted, errors, xp.full_like(errors, -xp.inf))
    perm = xp.argsort(-errors, axis=1, stable=True)
    rank = xp.argsort(perm, axis=1, stable=True)
    g = xp.take_along_axis(fg, perm, axis=1)
    total = xp.sum(g, axis=1, keepdims=True)
    inter = total - xp.cumulative_sum(g, axis=1)
    union = total + xp.cumulative_sum(1.0 - g, axis=1)  # >= 1 at every position
    jac = 1.0 - inter / union
    if int(jac.shape[1]) > 1:
        d = xp.concat([jac[:, :1], jac[:, 1:] - jac[:, :-1]], axis=1)
    else:
        d = jac
    return perm, rank, d


def _unsort(xp: Any, sorted_values: Any, rank: Any) -> Any:
    return xp.take_along_axis(sorted_values, rank, axis=1)


def _check_binary(xp: Any, t: Any, valid: Any) -> None:
    if not value_checks_enabled() or int(np.prod(shape_of(t))) == 0:
        return
    ok = (t == 0) | (t == 1)
    if valid is not None:
        ok = ok | (valid == 0)
    if not bool(xp.all(ok)):
        raise ValueError(
            "target must be a binary mask (0 or 1, or ignore_index): the Lovász extension is "
            "defined for hard labels."
        )


# ----------------------------------------------------------------------------------------------
# Examples: errors kept apart (and away from 0), so the sort order is stable under the
# finite-difference steps
# ----------------------------------------------------------------------------------------------


def _separated(rng: np.random.Generator, size: int, low: float, high: float) -> np.ndarray:
    """``size`` values in [low, high], pairwise at least ``_GAP`` apart."""
    grid = np.arange(low, high, 2 * _GAP)
    picked = rng.choice(grid, size=size, replace=False)
    return picked + rng.uniform(0, 0.5 * _GAP, size=size)


def _hinge_example(
    rng: np.random.Generator, dtype: Any = "float64", *, ignore_index: int | None = None,
    **_: Any,
) -> tuple[Any, ...]:
    """Logits whose errors ``1 - x (2 t - 1)`` are distinct over the whole batch and at least
    ``_GAP`` away from 0 (the hinge); binary targets."""
    shape = (int(rng.integers(1, 4)),) + tuple(
        int(d) for d in rng.integers(1, 4, size=int(rng.integers(1, 3)))
    )
    size = int(np.prod(shape))
    errors = _separated(rng, size, -1.5, 1.5)
    errors = np.where(np.abs(errors) < _GAP, errors + 3 * _GAP, errors)
    t = (rng.random(size=size) < 0.5).astype(np.float64)
    x = (1.0 - errors) * (2.0 * t - 1.0)
    if ignore_index is not None and size > 1:
        t = np.where(rng.random(size=size) < 0.25, float(ignore_index), t)
    return x.reshape(shape).astype(dtype), t.reshape(shape).astype(dtype)


def _softmax_example(
    rng: np.random.Generator, dtype: Any = "float64", *, from_logits: bool = False,
    ignore_index: int | None = None, **_: Any,
) -> tuple[Any, ...]:
    """Probabilities (or their logarithms as logits) whose per-class errors ``|fg - p_c|`` are
    distinct over the whole batch (so in every block) and away from 0; class-index targets."""
    n, c = int(rng.integers(1, 3)), int(rng.integers(2, 4))
    rest = tuple(int(d) for d in rng.integers(1, 3, size=int(rng.integers(1, 3))))
    labels = rng.integers(0, c, size=(n,) + rest)
    for _attempt in range(200):
        p = rng.dirichlet(np.ones(c), size=(n,) + rest)  # (..., C)
        p = np.moveaxis(p, -1, 1)
        fg = np.moveaxis(np.eye(c)[labels], -1, 1)
        err = np.abs(fg - p)
        ok = err.min() > _GAP and err.max() < 1 - _GAP
        for k in range(c):
            e = np.sort(err[:, k].reshape(-1))
            ok = ok and (e.size < 2 or np.diff(e).min() > _GAP)
        if ok:
            break
    x = np.log(p) if from_logits else p
    if ignore_index is not None and labels.size > 1:
        labels = np.where(rng.random(size=labels.shape) < 0.25, ignore_index, labels)
    return np.ascontiguousarray(x, dtype=dtype), np.asarray(labels, dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# lovasz_hinge, lovasz_softmax
# ----------------------------------------------------------------------------------------------


@register(
    "lovasz_hinge",
    input_kind="logits",
    target_kind="segmentation",
    layout="per_sample",
    options={"batch": Boolean(), "ignore_index": IGNORE_INDEX},
    hessian="zero",
    task="segmentation",
    formula="sum_k relu(e)_(k) d_k, e = 1 - x (2 t - 1) sorted, d = Lovasz Jaccard weights",
    example=_hinge_example,
    module="LovaszHingeLoss",
)
def lovasz_hinge(
    xp: Any, input: Any, target: Any, *, batch: bool = False, ignore_index: int | None = None
) -> Items:
    """Lovász hinge loss: the Lovász extension of the Jaccard loss applied to the hinge errors
    ``max(0, 1 - x (2 t - 1))`` of logits ``x`` against a binary mask ``t``, per sample (or for
    the whole batch with ``batch=True``).

    With the errors ``e = 1 - x s`` (``s = 2 t - 1``) of a block sorted in decreasing order and
    ``d`` the Lovász weights of the ground truth in that order (module docstring), the loss is
    ``sum_k relu(e_(k)) d_k``; 0 for a block whose elements are all ignored.

    Gradient: ``dl/dx_j = -s_j [e_j > 0] d_rank(j)`` (torch's ``relu`` subgradient at 0), the
    constant of the linear piece the sort order selects. Hessian: 0 wherever it exists: the loss
    is piecewise linear in the logits (the sort order and the hinges are piecewise constant), so
    ``hessian="zero"`` is exact almost everywhere; at ties and kinks no second derivative exists.

    Options: ``batch`` (default False: one loss per sample, the reference code's
    ``per_image=True`` for this loss), ``ignore_index`` (mask elements equal to it are left out).
    segmentation_models_pytorch's ``LovaszLoss(mode="binary")`` defaults to ``per_image=False``:
    ``batch=True`` here. Targets must be 0 or 1 (a soft label is refused).

    Reference: Berman, Rannen Triki and Blaschko, "The Lovász-Softmax loss: a tractable surrogate
    for the optimization of the intersection-over-union measure in neural networks", CVPR 2018
    (reference code: github.com/bermanmaxim/LovaszSoftmax).
    """
    view = SegmentationView(
        xp, input, target, mode="binary", from_logits=False, ignore_index=ignore_index
    )
    x, t, valid = view.p, view.t, view.valid  # x: logits as rows (no activation)
    _check_binary(xp, t, valid)
    n, s = view.n, view.s
    if batch:
        x, t = xp.reshape(x, (1, n * s)), xp.reshape(t, (1, n * s))
        valid = None if valid is None else xp.reshape(valid, (1, n * s))
    counted = None if valid is None else valid > 0
    signs = 2.0 * t - 1.0
    errors = 1.0 - x * signs
    perm, rank, d = _lovasz_rows(xp, errors, t, counted)
    e_sorted = xp.take_along_axis(errors, perm, axis=1)
    live = e_sorted > 0
    if counted is not None:
        live = live & xp.take_along_axis(counted, perm, axis=1)
    zeros = xp.zeros_like(e_sorted)
    rows = xp.sum(xp.where(live, e_sorted * d, zeros), axis=1)
    values = xp.reshape(rows, ()) if batch else rows
    slope = _unsort(xp, xp.where(live, d, zeros), rank) * -signs  # dl/dx per element

    def grad(w: Any) -> Any:
        g = xp.reshape(slope, view.shape)
        if isinstance(w, float):
            return g if w == 1.0 else g * w
        return g * xp.reshape(w, shape_of(w) + (1,) * (g.ndim - w.ndim)) if w.ndim else g * w

    return Items(
        values,
        grad=grad,
        hess=lambda w: xp.zeros_like(input),
        hvp=lambda w, v: xp.zeros_like(input),
    )


@register(
    "lovasz_softmax",
    input_kind="probabilities",
    target_kind="class_index",
    layout="per_sample",
    options={
        "from_logits": Boolean(), "batch": Boolean(), "ignore_index": IGNORE_INDEX,
        "classes": Choice("present", "all"),
    },
    hessian="indefinite",
    task="segmentation",
    formula="mean_c sum_k |fg_c - p_c|_(k) d_ck, sorted errors, Lovasz Jaccard weights",
    example=_softmax_example,
    module="LovaszSoftmaxLoss",
)
def lovasz_softmax(
    xp: Any, input: Any, target: Any, *, from_logits: bool = False, batch: bool = False,
    ignore_index: int | None = None, classes: str = "present",
) -> Items:
    """Lovász-Softmax loss: for each class c, the Lovász extension of the Jaccard loss of the
    errors ``|fg_c - p_c|`` (``fg_c`` the pixels labelled c), averaged over the classes present in
    the block's target (``classes="present"``, the default) or over all classes (``"all"``); per
    sample, or for the whole batch with ``batch=True``.

    ``input``: class probabilities (N, C, d1, ...) (softmax outputs; ``from_logits=True`` takes
    logits and applies the softmax over axis 1 inside); ``target``: class indices
    (N, d1, ...). Pixels labelled ``ignore_index`` leave every sum. A block with no present class
    (or no counted pixel) has loss 0.

    Gradient in the probabilities: ``omega_c sign(p_c - fg_c) d_rank`` per pixel and class, with
    ``omega_c`` the class's weight in the mean (1 / the number of classes averaged; torch's
    ``abs`` subgradient 0 at ``p = fg``), the constant of the linear piece the sort selects;
    with ``from_logits`` it goes through the softmax (``J G``). Hessian: 0 in the
    probabilities wherever it exists (piecewise linear; at ties no second derivative exists); in
    the logits the softmax's own curvature ``sum_k G_k d2p_k`` remains (``from_logits=True``),
    which can be negative: hence ``hessian="indefinite"``.

    Defaults: ``from_logits=False`` and ``classes="present"`` as the reference
    ``lovasz_softmax(probas, labels)``; ``batch=False`` is its ``per_image=True`` (its default is
    ``per_image=False``: ``batch=True`` here). segmentation_models_pytorch's
    ``LovaszLoss(mode="multiclass")`` and kornia's ``lovasz_softmax_loss`` take logits:
    ``from_logits=True`` (smp also ``batch=True``).

    Reference: Berman, Rannen Triki and Blaschko, CVPR 2018 (see ``lovasz_hinge``).
    """
    view = SegmentationView(
        xp, input, target, mode="multiclass", from_logits=from_logits,
        ignore_index=ignore_index,
    )
    n, c, s = view.n, view.c, view.s
    p, fg, valid = view.p, view.t, view.valid  # rows (N*C, S)
    if batch:
        # one row per class over the whole batch
        def to_class_rows(a: Any) -> Any:
            return xp.reshape(xp.permute_dims(xp.reshape(a, (n, c, s)), (1, 0, 2)), (c, n * s))

        p, fg = to_class_rows(p), to_class_rows(fg)
        valid = None if valid is None else to_class_rows(valid)
    counted = None if valid is None else valid > 0
    errors = xp.abs(fg - p)
    perm, rank, d = _lovasz_rows(xp, errors, fg, counted)
    e_sorted = xp.take_along_axis(errors, perm, axis=1)
    zeros = xp.zeros_like(e_sorted)
    if counted is not None:
        keep = xp.take_along_axis(counted, perm, axis=1)
        e_sorted, d = xp.where(keep, e_sorted, zeros), xp.where(keep, d, zeros)
    per_class = xp.sum(e_sorted * d, axis=1, keepdims=True)  # (rows, 1)
    nb = 1 if batch else n
    per_class = xp.reshape(per_class, (nb, c))
    if classes == "present":
        present = xp.astype(xp.reshape(xp.sum(fg, axis=1), (nb, c)) > 0, p.dtype)
        count = xp.sum(present, axis=1, keepdims=True)
        omega = xp.where(count > 0, present / xp.where(count > 0, count, 1.0 + 0 * count),
                         xp.zeros_like(present))
    else:
        omega = xp.full_like(per_class, 1.0 / c)
    values = xp.sum(omega * per_class, axis=1)
    values = xp.reshape(values, ()) if batch else values
    # dl/dp per element, in the rows' order
    slope = _unsort(xp, d, rank) * xp.sign(p - fg)
    slope = slope * xp.reshape(omega, (nb * c, 1))
    if batch:
        slope = xp.reshape(xp.permute_dims(xp.reshape(slope, (c, n, s)), (1, 0, 2)), (n * c, s))

    def grad_p(w: Any) -> Any:
        if isinstance(w, float):
            return slope if w == 1.0 else slope * w
        wr = xp.reshape(xp.broadcast_to(xp.reshape(w, (-1, 1)), (n, c)), (-1, 1)) if w.ndim else w
        return slope * wr

    def hess(w: Any) -> Any:
        act = view.act
        if act is None:
            return xp.zeros_like(input)
        return xp.reshape(act.second_diag(view.rows3(grad_p(w))), view.shape)

    def hvp(w: Any, v: Any) -> Any:
        act = view.act
        if act is None:
            return xp.zeros_like(input)
        v3 = xp.reshape(v, (n, c, s))
        return xp.reshape(act.second(view.rows3(grad_p(w)), v3), view.shape)

    return Items(values, grad=lambda w: view.to_input(grad_p(w)), hess=hess, hvp=hvp)


# ----------------------------------------------------------------------------------------------
# Compounds: Dice + cross-entropy, Dice + focal (MONAI's)
# ----------------------------------------------------------------------------------------------


def _compound_example(
    rng: np.random.Generator, dtype: Any = "float64", **options: Any
) -> tuple[Any, ...]:
    return segmentation_example(
        rng, dtype, **{"mode": "multiclass", **options, "from_logits": True}
    )


def _per_item_sum(xp: Any, values: Any, batch: bool) -> Any:
    """Per-element values (N, ...) summed per sample (N,), or over the batch ()."""
    axes = tuple(range(1, values.ndim))
    per = xp.sum(values, axis=axes) if axes else values
    return xp.sum(per) if batch else per


def _compound(
    xp: Any, a: Items, b: Items, *, lam_a: float, lam_b: float, kappa: Any, batch: bool
) -> Items:
    """``lam_a A_i + lam_b kappa sum_{elements of item i} B``: ``A`` an overlap loss's Items (one
    per item), ``B`` a per-element loss's Items, ``kappa`` = (number of items) / (what ``B``'s
    own mean divides by), so that the mean over items is ``lam_a mean(A) + lam_b mean(B)``,
    MONAI's sum of two means. The item weights ``w`` (laid over the input) reach ``B`` as
    per-element weights unchanged (every element of item i weighs ``w_i``)."""
    scale = lam_b * kappa
    values = lam_a * a.per_item() + scale * _per_item_sum(xp, b.per_item(), batch)
    b_grad, b_hess, b_hvp = b.grad, b.hess, b.hvp
    a_hess, a_hvp = a.hess, a.hvp
    assert b_hess is not None and a_hess is not None and a_hvp is not None

    def grad(w: Any) -> Any:
        return lam_a * a.grad(w) + b_grad(scale * w)

    def hess(w: Any) -> Any:
        return lam_a * a_hess(w) + b_hess(scale * w)

    def hvp(w: Any, v: Any) -> Any:
        hb = b_hvp(scale * w, v) if b_hvp is not None else b_hess(scale * w) * v
        return lam_a * a_hvp(w, v) + hb

    return Items(values, grad=grad, hess=hess, hvp=hvp)


def _mean_scale(xp: Any, denominator: Any, items: float) -> Any:
    """``items / denominator``, 0 where nothing is counted (every element ignored)."""
    if isinstance(denominator, float):
        return items / denominator if denominator else 0.0
    positive = denominator > 0
    return xp.where(positive, items / xp.where(positive, denominator, 1.0 + 0 * denominator),
                    0 * denominator)


def _one_hot_and_valid(xp: Any, view: SegmentationView) -> tuple[Any, Any]:
    """Float targets of the input's shape (one-hot for class indices) and the valid mask."""
    t = xp.reshape(view.t, view.shape)
    valid = None if view.valid is None else xp.reshape(view.valid, view.shape)
    return t, valid


COMPOUND_OPTIONS = {
    "mode": MODE,
    "average": AVERAGE,
    "batch": Boolean(),
    "weight": CLASS_WEIGHT,
    "ignore_index": IGNORE_INDEX,
    "smooth": SMOOTH,
    "smooth_nr": SMOOTH_PART,
    "smooth_dr": SMOOTH_PART,
    "squared": Boolean(),
    "lambda_dice": Real(0, None),
}


@register(
    "dice_ce",
    input_kind="logits",
    target_kind="segmentation",
    layout="per_sample",
    options={**COMPOUND_OPTIONS, "label_smoothing": Real(0, 1), "lambda_ce": Real(0, None)},
    hessian="indefinite",
    task="segmentation",
    formula="lambda_dice dice(softmax(x), t) + lambda_ce cross_entropy(x, t)",
    example=_compound_example,
    module="DiceCELoss",
)
def dice_ce(
    xp: Any, input: Any, target: Any, *, mode: str = "multiclass", average: str = "macro",
    batch: bool = False, weight: Any = None, ignore_index: int | None = None,
    smooth: float = 1e-5, smooth_nr: float | None = None, smooth_dr: float | None = None,
    squared: bool = False, lambda_dice: float = 1.0, label_smoothing: float = 0.0,
    lambda_ce: float = 1.0,
) -> Items:
    """Dice + cross-entropy on logits: ``l = lambda_dice dice + lambda_ce ce`` per sample (or for
    the batch), MONAI's ``DiceCELoss``.

    ``dice`` is ``dice(from_logits=True)`` with ``mode``, ``average``, ``batch``, ``weight``,
    ``ignore_index``, the smoothing and ``squared``; ``ce`` is ``cross_entropy(x, t, weight,
    ignore_index, label_smoothing)`` for ``mode="multiclass"`` (class indices or class
    probabilities) and ``bce_with_logits(x, t, pos_weight=weight, label_smoothing)`` (the weight
    along the class axis) for ``"binary"`` and ``"multilabel"``. Each sample's ``ce`` is the sum
    of its elements' terms times ``N / D``, with ``D`` what the cross-entropy's own mean divides
    by over the whole batch (``sum w_y`` over counted pixels, or the element count), so that
    ``reduction="mean"`` gives ``lambda_dice mean(dice) + lambda_ce CE_mean``, MONAI's sum of two
    means; with ``batch=True`` the one item is exactly that.

    Gradient and Hessian: the two terms' (``dice``'s through the softmax or sigmoid, the
    cross-entropy's in closed form); indefinite.

    Defaults and peers: ``mode="multiclass"`` (MONAI's ``softmax=True, to_onehot_y=True``),
    ``smooth = 1e-5`` (MONAI's ``smooth_nr = smooth_dr``), ``lambda_dice = lambda_ce = 1``.
    MONAI multiplies the Dice term's class losses by ``weight`` and averages them
    (``sum(w) / C`` times losslab's weighted mean: equal when the weights sum to C); for
    ``C > 1`` with ``sigmoid=True`` MONAI still applies a softmax cross-entropy, where losslab's
    ``"multilabel"`` takes the binary cross-entropy per class. MONAI's ``jaccard`` and
    ``include_background=False`` have no counterpart here (slice the classes off first).

    Reference: Isensee et al., "nnU-Net", Nature Methods 2021 (Dice + CE); MONAI ``DiceCELoss``.
    """
    view = SegmentationView(
        xp, input, target, mode=mode, from_logits=False, ignore_index=ignore_index
    )
    a = dice(
        xp, input, target, mode=mode, from_logits=True, average=average, batch=batch,
        weight=weight, ignore_index=ignore_index, smooth=smooth, smooth_nr=smooth_nr,
        smooth_dr=smooth_dr, squared=squared,
    )
    n_items = 1.0 if batch else float(view.n)
    if mode == "multiclass":
        b = cross_entropy(
            xp, input, target, weight=weight,
            ignore_index=-100 if ignore_index is None else ignore_index,
            label_smoothing=label_smoothing,
        )
        denominator = b.denominator
        if denominator is None:
            denominator = float(view.n * view.s)
    else:
        t, valid = _one_hot_and_valid(xp, view)
        pw = None
        if weight is not None:
            if mode == "binary":
                raise ValueError(
                    "weight holds one weight per class; mode='binary' has a single class. Use "
                    "mode='multilabel' for an input (N, C, ...) with classes on axis 1."
                )
            pw = xp.reshape(weight, (1, view.c) + (1,) * (input.ndim - 2))
        b = bce_with_logits(xp, input, t, pos_weight=pw, label_smoothing=label_smoothing)
        if valid is not None:
            b = _masked(xp, b, valid)
            denominator = xp.sum(valid)
        else:
            denominator = float(view.n * view.c * view.s)
    kappa = _mean_scale(xp, denominator, n_items)
    return _compound(xp, a, b, lam_a=lambda_dice, lam_b=lambda_ce, kappa=kappa, batch=batch)


@register(
    "dice_focal",
    input_kind="logits",
    target_kind="segmentation",
    layout="per_sample",
    options={
        **COMPOUND_OPTIONS, "gamma": Real(0, None), "alpha": Either(NONE, Real(0, 1)),
        "lambda_focal": Real(0, None),
    },
    hessian="indefinite",
    task="segmentation",
    formula="lambda_dice dice(act(x), t) + lambda_focal focal(x, onehot(t))",
    example=_compound_example,
    module="DiceFocalLoss",
)
def dice_focal(
    xp: Any, input: Any, target: Any, *, mode: str = "multiclass", average: str = "macro",
    batch: bool = False, weight: Any = None, ignore_index: int | None = None,
    smooth: float = 1e-5, smooth_nr: float | None = None, smooth_dr: float | None = None,
    squared: bool = False, lambda_dice: float = 1.0, gamma: float = 2.0,
    alpha: float | None = None, lambda_focal: float = 1.0,
) -> Items:
    """Dice + sigmoid focal on logits: ``l = lambda_dice dice + lambda_focal focal`` per sample
    (or for the batch), MONAI's ``DiceFocalLoss``.

    ``dice`` is ``dice(from_logits=True)`` with the options shared with ``dice_ce`` (softmax in
    ``"multiclass"`` mode, sigmoid otherwise); ``focal`` is the sigmoid focal loss
    (``losslab``'s ``focal``, torchvision's) of every logit against the one-hot (or given)
    target, with ``gamma``, ``alpha`` (None: no balancing; MONAI's default) and the class
    ``weight`` multiplying class c's terms. As in MONAI (whose ``DiceFocalLoss`` has no softmax
    focal), the focal term is the sigmoid one in every mode; for Dice + softmax focal, add
    ``dice`` and ``softmax_focal``. Each sample's ``focal`` is the sum of its elements' terms
    times ``N / D`` with ``D`` the number of counted elements in the batch, so that
    ``reduction="mean"`` gives ``lambda_dice mean(dice) + lambda_focal mean(focal)``.

    Gradient and Hessian: the two terms'; indefinite.

    Defaults and peers: ``mode="multiclass"``, ``smooth = 1e-5``, ``gamma = 2``,
    ``lambda_dice = lambda_focal = 1``, as MONAI. MONAI's Dice term multiplies its class losses
    by ``weight`` without normalising (equal to losslab's weighted class mean when the weights sum
    to C); its focal term is the same as here.

    Reference: Zhu et al., "AnatomyNet", Medical Physics 2019 (Dice + focal); Lin et al., ICCV
    2017; MONAI ``DiceFocalLoss``.
    """
    view = SegmentationView(
        xp, input, target, mode=mode, from_logits=False, ignore_index=ignore_index
    )
    a = dice(
        xp, input, target, mode=mode, from_logits=True, average=average, batch=batch,
        weight=weight, ignore_index=ignore_index, smooth=smooth, smooth_nr=smooth_nr,
        smooth_dr=smooth_dr, squared=squared,
    )
    t, valid = _one_hot_and_valid(xp, view)
    cw = None
    if weight is not None:
        if mode == "binary":
            raise ValueError(
                "weight holds one weight per class; mode='binary' has a single class. Use "
                "mode='multilabel' or 'multiclass' for an input (N, C, ...) with classes on "
                "axis 1."
            )
        cw = xp.reshape(weight, (1, view.c) + (1,) * (input.ndim - 2))
        if valid is not None:
            cw = cw * valid
    elif valid is not None:
        cw = valid
    b = focal(xp, input, t, alpha=-1.0 if alpha is None else alpha, gamma=gamma, weight=cw)
    denominator: Any = float(view.n * view.c * view.s)
    if valid is not None:
        denominator = xp.sum(valid)
    kappa = _mean_scale(xp, denominator, 1.0 if batch else float(view.n))
    return _compound(
        xp, a, b, lam_a=lambda_dice, lam_b=lambda_focal, kappa=kappa, batch=batch
    )


def _masked(xp: Any, items: Items, valid: Any) -> Items:
    """Element-wise Items with the ignored elements' terms removed."""
    grad, hess = items.grad, items.hess
    return Items(
        items.per_item() * valid,
        grad=lambda w: grad(w * valid),
        hess=None if hess is None else (lambda w: hess(w * valid)),
    )
