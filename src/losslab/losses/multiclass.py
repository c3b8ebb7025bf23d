"""Multi-class losses: logits (or log-probabilities) over C classes against class labels.

Layout follows torch: input ``(N, C)``, ``(C,)`` unbatched, or ``(N, C, d1, ..., dk)`` with the
classes on axis 1; class-index targets have the input's shape without the class axis. Internally
every input is viewed as ``(N, C, *rest)`` and per-sample quantities keep a length-1 class axis
``(N, 1, *rest)`` so they broadcast against it without copies.

The softmax losses share one pass (``_softmax_pass``): shift by the row max, gather the target's
shifted logit, exponentiate once; the exponentials then become the gradient buffer in place
(``_assemble_grad``), since every gradient here has the form
``coef_p * softmax - coef_t * onehot(target) - coef_w * weight``.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from losslab.losses._primitives import (
    in_place,
    is_floating,
    is_integral,
    namespace,
    shape_of,
    size_of,
    to_namespace,
)
from losslab.losses._reduction import reduce
from losslab.losses._registry import register
from losslab.losses._validation import (
    as_target,
    check_floating,
    check_fraction,
    check_label_range,
    check_positive_number,
    check_reduction,
)

# ----------------------------------------------------------------------------------------------
# Shared plumbing
# ----------------------------------------------------------------------------------------------


def _prepare(input: Any, target: Any, reduction: str, *, allow_probs: bool):
    """Checks up front; returns ``(xp, x, target, unbatched)`` with ``x`` of shape (N, C, *rest).

    ``target`` comes back as int64 labels of shape (N, 1, *rest) or, when ``allow_probs`` and the
    target is floating, as class probabilities of the input's (batched) shape and dtype.
    """
    check_reduction(reduction)
    xp, (input, target) = namespace(input, target)
    check_floating(xp, input, "input")
    shape = shape_of(input)
    if len(shape) == 0 or shape[1 if len(shape) > 1 else 0] < 1:
        raise ValueError(
            "input must have shape (C,), (N, C) or (N, C, d1, ..., dk) with C >= 1 classes on "
            f"axis 1 (axis 0 when unbatched); got shape {shape}."
        )
    unbatched = len(shape) == 1
    x = xp.reshape(input, (1, shape[0])) if unbatched else input
    label_shape = () if unbatched else shape[:1] + shape[2:]
    if is_floating(xp, target):
        if not allow_probs:
            raise TypeError(
                f"target must hold integer class indices of shape {label_shape}; got a "
                f"floating-point array (dtype {target.dtype})."
            )
        if shape_of(target) != shape:
            raise ValueError(
                f"target holds class probabilities, so it must have the input's shape {shape}; "
                f"got {shape_of(target)}. (Class indices would be an integer array of shape "
                f"{label_shape}.)"
            )
        t = as_target(xp, target, x)
        return xp, x, (xp.reshape(t, shape_of(x)) if unbatched else t), unbatched
    if not is_integral(xp, target):
        raise TypeError(
            "target must be integer class indices or floating-point class probabilities; got "
            f"dtype {target.dtype}."
        )
    if shape_of(target) != label_shape:
        raise ValueError(
            f"target of class indices must have shape {label_shape} (the input's shape {shape} "
            f"without the class axis); got {shape_of(target)}."
        )
    keep = shape_of(x)[:1] + (1,) + shape_of(x)[2:]
    return xp, x, xp.reshape(xp.astype(target, xp.int64), keep), unbatched


def _check_ignore_index(ignore_index: Any) -> int:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int | np.integer):
        raise TypeError(f"ignore_index must be an int; got {ignore_index!r}.")
    return int(ignore_index)


def _labels(xp: Any, y: Any, n_classes: int, ignore_index: int) -> tuple[Any, Any]:
    """``(safe, valid)``: labels with ignored entries replaced by 0 (so they can index), and the
    mask of entries that count."""
    check_label_range(xp, y, n_classes, "target", ignore_index)
    valid = y != ignore_index
    return xp.where(valid, y, xp.zeros_like(y)), valid


def _class_array(xp: Any, a: Any, x: Any, name: str) -> Any:
    """A per-class option (``weight``, ``alpha``) as an array of shape (C,) in the input's dtype."""
    n_classes = int(x.shape[1])
    try:
        w = to_namespace(xp, a, x, x.dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of {n_classes} numbers; got {a!r}.") from exc
    if shape_of(w) != (n_classes,):
        raise ValueError(
            f"{name} must have shape ({n_classes},), one entry per class; got {shape_of(w)}."
        )
    return w


def _along_classes(xp: Any, w: Any, ndim: int) -> Any:
    """A (C,) array reshaped to broadcast along axis 1 of an ndim-dimensional input."""
    return xp.reshape(w, (1, int(w.shape[0])) + (1,) * (ndim - 2))


def _gather(xp: Any, w: Any, y_safe: Any) -> Any:
    """``w[y]`` for labels of any shape (take wants 1-D indices)."""
    return xp.reshape(xp.take(w, xp.reshape(y_safe, (-1,)), axis=0), shape_of(y_safe))


def _full(xp: Any, value: float, like: Any) -> Any:
    return xp.full((), value, dtype=like.dtype, device=array_api_compat.device(like))


def _mean_scale(xp: Any, total: Any) -> tuple[Any, Any]:
    """``(1/total, total > 0)``, with the division guarded so an all-ignored batch yields a
    zero gradient and a NaN value (what torch gives) without floating-point warnings."""
    positive = total > 0
    safe = xp.where(positive, total, xp.ones_like(total))
    return 1.0 / safe, positive


def _finish(xp: Any, per: Any, reduction: str, total: Any, unbatched: bool) -> Any:
    """Reduce per-sample losses of shape (N, 1, *rest); ``total`` is the mean's denominator."""
    per = xp.squeeze(per, axis=1)
    if unbatched:
        per = xp.reshape(per, ())
    if reduction != "mean" or total is None:
        return reduce(xp, per, reduction)
    inv, positive = _mean_scale(xp, total)
    out = xp.where(positive, xp.sum(per) * inv, _full(xp, float("nan"), per))
    return xp.asarray(out)


def _softmax_pass(xp: Any, x: Any, y_safe: Any | None, dot: Any = None):
    """One stable pass over the logits.

    Returns ``(e, s, log_s, z_y, zdot)`` where ``z = x - max`` (row max along the classes),
    ``e / s`` is the softmax (``e = exp(z)``, a fresh buffer the caller may overwrite, and
    ``s = sum(e)``; on torch ``e`` is the softmax and ``s = 1``), ``log_s`` is the log of
    ``sum(exp(z))``, so that ``log_softmax = z - log_s``; ``z_y`` is ``z`` at the target (if
    ``y_safe`` is given; on torch only ``z_y - log_s = log p_y`` is promised) and
    ``zdot = sum(dot * z)`` over the classes (``dot=True`` means plain sum). Working with ``z``
    rather than ``x - logsumexp`` keeps ``log p`` exact for huge logits (1e30), where ``x`` and
    the logsumexp would cancel catastrophically.
    """
    if dot is None and array_api_compat.is_torch_namespace(xp):
        return _torch_softmax_pass(x, y_safe)
    m = xp.max(x, axis=1, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    z = x - m
    z_y = None if y_safe is None else xp.take_along_axis(z, y_safe, axis=1)
    zdot = None
    if dot is True:
        zdot = xp.sum(z, axis=1, keepdims=True)
    elif dot is not None:
        zdot = xp.sum(z * dot, axis=1, keepdims=True)
    e = in_place(xp, "exp", z)  # one input-sized buffer for the pass, not two
    del z
    s = xp.sum(e, axis=1, keepdims=True)
    return e, s, xp.log(s), z_y, zdot


def _torch_softmax_pass(x: Any, y_safe: Any | None):
    """``_softmax_pass`` on torch tensors, from torch's fused softmax (one kernel instead of max,
    subtract, exp and sum passes).

    Returns ``e`` = the softmax itself and ``s = 1``, and ``z_y - log_s = log p_y`` exactly for
    logits of any magnitude, by one of two routes:

    - On CPU, when every target probability is a normal number (the usual case, checked on the
      gathered column, free to read there), ``log p_y`` is taken directly: the softmax is
      accurate to a few ulp relative to its size, so its log is accurate to a few ulp in
      absolute terms, as good as the shifted form. Then ``z_y = log p_y``, ``log_s = 0``.
    - Otherwise (a target probability that underflows, or any GPU tensor, where the check would
      synchronise with the device), the shifted form: ``z_y = x_y - max`` and ``log s =
      -log(max softmax)``, since the softmax's largest entry, at the row's maximum, is
      ``exp(0) / s`` (and never underflows, ``s <= C``).

    ``amax`` rather than ``torch.max``: with indices, the latter is ten times slower on CPU.
    """
    import torch

    p = torch.softmax(x, dim=1)
    if y_safe is None:
        return p, 1.0, -torch.log(torch.amax(p, dim=1, keepdim=True)), None, None
    if x.device.type == "cpu":
        p_y = torch.gather(p, 1, y_safe)
        if bool(torch.all(p_y >= torch.finfo(p.dtype).tiny)):
            return p, 1.0, 0.0, torch.log(p_y), None
    log_s = -torch.log(torch.amax(p, dim=1, keepdim=True))
    z_y = torch.gather(x, 1, y_safe) - torch.amax(x, dim=1, keepdim=True)
    return p, 1.0, log_s, z_y, None


def _subtract_at_target(xp: Any, g: Any, y_safe: Any, coef_t: Any) -> bool:
    """``g -= coef_t * onehot(y)`` along axis 1 by a gather and a scatter of one entry per row,
    where the namespace has them (NumPy, torch); False where it has not."""
    if array_api_compat.is_numpy_namespace(xp):
        at = np.take_along_axis(g, y_safe, axis=1) - coef_t
        np.put_along_axis(g, y_safe, at, axis=1)
        return True
    if array_api_compat.is_torch_namespace(xp) and not g.requires_grad:
        g.scatter_(1, y_safe, g.gather(1, y_safe) - coef_t)
        return True
    return False


def _assemble_grad(
    xp: Any, e: Any, s: Any, coef_p: Any, y_safe: Any = None, coef_t: Any = None, dense: Any = None
) -> Any:
    """``coef_p * softmax - coef_t * onehot(y) - dense``, built in place in the buffer ``e``.

    ``coef_p`` and ``coef_t`` are per-sample (N, 1, *rest); ``dense`` broadcasts to the input.
    The one-hot term touches only the target entries (a gather and scatter of one entry per
    row where the namespace has them, else a boolean mask; never a float one-hot).
    """
    def target_mask() -> Any:
        n_classes = int(e.shape[1])
        classes = xp.arange(n_classes, dtype=y_safe.dtype, device=array_api_compat.device(e))
        return _along_classes(xp, classes, e.ndim) == y_safe

    if array_api_compat.is_jax_namespace(xp):
        # Immutable arrays: the same formula without writing into the buffer.
        g = e * (coef_p / s)
        if coef_t is not None:
            g = g - xp.where(target_mask(), coef_t, xp.zeros_like(g))
        return g if dense is None else g - dense
    g = e
    g *= coef_p / s
    if coef_t is not None and not _subtract_at_target(xp, g, y_safe, coef_t):
        mask = target_mask()
        g[mask] -= xp.broadcast_to(coef_t, shape_of(g))[mask]
    if dense is not None:
        g -= dense
    return g


def _unbatch(xp: Any, g: Any, unbatched: bool) -> Any:
    return xp.reshape(g, (int(g.shape[1]),)) if unbatched else g


def _index_mean_denominator(
    input: Any, target: Any, *, weight: Any = None, ignore_index: int = -100, **_: Any
) -> float:
    """What ``reduction="mean"`` divides by, from the targets alone (NumPy inputs).

    The blocked executor (losslab.losses._blocked) needs it before it splits the batch: the sum
    of the target classes' weights over the non-ignored entries for index targets, the number of
    samples for probability targets.
    """
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
    xp: Any,
    x: Any,
    y: Any,
    unbatched: bool,
    *,
    weight: Any,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    compute_grad: bool,
    poly_epsilon: float = 0.0,
):
    """Cross-entropy with class-index targets, plus ``poly_epsilon * w_y * (1 - p_t)`` (poly1)."""
    n_classes = int(x.shape[1])
    ls = label_smoothing
    y_safe, valid = _labels(xp, y, n_classes, ignore_index)
    w = None if weight is None else _class_array(xp, weight, x, "weight")
    w_b = None if w is None else _along_classes(xp, w, x.ndim)
    big_w = float(n_classes) if w is None else xp.sum(w)
    e, s, log_s, z_y, zdot = _softmax_pass(
        xp, x, y_safe, dot=(None if ls == 0 else (True if w is None else w_b))
    )
    w_y = None if w is None else _gather(xp, w, y_safe)
    nll = log_s - z_y  # -log p_y, exact even for huge logits
    per = nll if w_y is None else w_y * nll
    if ls != 0:
        # torch: (1 - ls) * w_y * nll + ls / C * sum_c w_c * (-log p_c)
        per = (1.0 - ls) * per + (ls / n_classes) * (big_w * log_s - zdot)
    p_y = one_minus_py = None
    if poly_epsilon != 0:
        lp = z_y - log_s
        p_y = xp.exp(lp)
        one_minus_py = -xp.expm1(lp)  # 1 - p_y without cancellation as p_y -> 1
        # 1 - p_t with p_t = sum_c q_c p_c for the smoothed q = (1 - ls) onehot + ls / C
        poly = (1.0 - ls) * one_minus_py + ls * (n_classes - 1) / n_classes
        per = per + poly_epsilon * (poly if w_y is None else w_y * poly)
    zero = xp.zeros_like(per)
    per = xp.where(valid, per, zero)

    total = None
    if reduction == "mean":
        total = xp.sum(xp.astype(valid, x.dtype)) if w_y is None else xp.sum(
            xp.where(valid, w_y, xp.zeros_like(w_y))
        )
    value = _finish(xp, per, reduction, total, unbatched)
    if not compute_grad:
        return value, None

    scale = 1.0 if total is None else _mean_scale(xp, total)[0]
    wy_s = scale if w_y is None else w_y * scale
    coef_t = (1.0 - ls) * wy_s
    coef_p = coef_t + (ls / n_classes) * (big_w * scale)
    if poly_epsilon != 0:
        k = poly_epsilon * (1.0 - ls) * wy_s * p_y
        coef_p, coef_t = coef_p + k, coef_t + k
    coef_p = xp.where(valid, coef_p + zero, zero)
    coef_t = xp.where(valid, coef_t + zero, zero)
    dense = None
    if ls != 0:
        u = xp.where(valid, (ls / n_classes) * scale + zero, zero)
        dense = u if w_b is None else u * w_b
    g = _assemble_grad(xp, e, s, coef_p, y_safe, coef_t, dense)
    return value, _unbatch(xp, g, unbatched)


def _ce_probs(
    xp: Any, x: Any, t: Any, unbatched: bool, *, weight: Any, reduction: str,
    label_smoothing: float, compute_grad: bool,
):
    """Cross-entropy with class-probability targets: ``-sum_c w_c q_c log p_c``."""
    n_classes = int(x.shape[1])
    ls = label_smoothing
    q = t if ls == 0 else t * (1.0 - ls) + ls / n_classes
    if weight is not None:
        q = q * _along_classes(xp, _class_array(xp, weight, x, "weight"), x.ndim)
    b = q
    big_b = xp.sum(b, axis=1, keepdims=True)
    e, s, log_s, _, bz = _softmax_pass(xp, x, None, dot=b)
    per = big_b * log_s - bz
    # torch divides by the number of samples here, weights or not (unlike index targets).
    n_samples = size_of(per)
    value = _finish(xp, per, reduction, None, unbatched)
    if not compute_grad:
        return value, None
    scale = 1.0 / n_samples if reduction == "mean" and n_samples > 0 else 1.0
    dense = b if scale == 1.0 else b * scale
    g = _assemble_grad(xp, e, s, big_b * scale, dense=dense)
    return value, _unbatch(xp, g, unbatched)


@register(
    "cross_entropy",
    input_kind="logits",
    target_kind="class",
    layout="class_axis",
    rowwise=True,
    mean_denominator=_index_mean_denominator,
    task="multiclass",
    formula="-w_y log softmax(x)_y, label-smoothed, mean over sum of w_y",
    example=_index_example,
    torch="cross_entropy",
)
def cross_entropy(
    input: Any,
    target: Any,
    *,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    compute_grad: bool = True,
):
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
    not apply.

    Gradient: ``dl_i/dx_i = (sum_c b_ic) p_i - b_i`` with ``b_ic = w_c q_ic`` (for index targets
    ``b_i = (1 - ls) w_y onehot(y) + ls/C w``), times the mean's 1/denominator. Computed from
    ``exp(x - max)`` in place; ``log p`` is taken as ``(x - max) - log sum exp(x - max)``, which
    stays exact for logits of any magnitude.

    Options: ``weight`` (C,) class weights; ``ignore_index``; ``reduction`` in
    {"mean", "sum", "none"}; ``label_smoothing`` in [0, 1].

    Same as ``torch.nn.functional.cross_entropy`` (values and gradients, every option and
    combination, including torch's current rule that ignored targets count in neither the
    smoothing term nor the mean's denominator, pytorch/pytorch#73205 and #69511). We accept any
    integer label dtype (torch wants int64). The article's binary form
    ``-1/n sum_ij [y log p + (1 - y) log(1 - p)]`` is ``bce`` with ``reduction="sum"`` divided by
    n, not this loss.

    Reference: Szegedy et al., "Rethinking the Inception Architecture" (2016) for label smoothing;
    Goodfellow, Bengio, Courville, *Deep Learning* (2016), section 6.2.2.3.
    """
    ignore_index = _check_ignore_index(ignore_index)
    ls = check_fraction(label_smoothing, "label_smoothing")
    xp, x, t, unbatched = _prepare(input, target, reduction, allow_probs=True)
    if is_floating(xp, t):
        return _ce_probs(
            xp, x, t, unbatched, weight=weight, reduction=reduction, label_smoothing=ls,
            compute_grad=compute_grad,
        )
    return _ce_index(
        xp, x, t, unbatched, weight=weight, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=ls, compute_grad=compute_grad,
    )


@register(
    "poly1",
    input_kind="logits",
    target_kind="class_index",
    layout="class_axis",
    rowwise=True,
    mean_denominator=_index_mean_denominator,
    task="multiclass",
    formula="cross_entropy + epsilon * (1 - p_t)",
    example=_index_example,
)
def poly1(
    input: Any,
    target: Any,
    *,
    epsilon: float = 1.0,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    compute_grad: bool = True,
):
    """Poly-1 loss: ``l_i = CE_i + epsilon * w_{y_i} (1 - p_t)``, ``p_t = sum_c q_ic p_ic``.

    ``CE_i`` is exactly ``cross_entropy``'s per-sample term with the same ``weight``,
    ``ignore_index`` and ``label_smoothing``; ``q`` is the (smoothed) target distribution, as in
    Leng et al.'s reference code, so ``p_t = (1 - ls) p_y + ls / C``. The poly term is weighted
    by the target's class weight and the mean divides by ``sum_i w_{y_i}`` over non-ignored
    entries, so that ``epsilon = 0`` is ``cross_entropy`` exactly and the weighted mean stays a
    weighted average of per-sample Poly-1 losses. Class-index targets only.

    Gradient: cross_entropy's plus ``epsilon w_y (1 - ls) p_y (p_i - onehot(y_i))`` (scaled by the
    mean's 1/denominator). ``1 - p_y`` is computed as ``-expm1(log p_y)``, exact near p_y = 1.

    Options: ``epsilon`` >= -1 (the paper's range: below -1 the loss is no longer decreasing in
    p_t), and cross_entropy's options. torch has no Poly-1 loss; common PyTorch ports apply the
    poly term unweighted and take a plain mean, which differs from ours only when ``weight`` is
    given.

    Reference: Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
    Functions", ICLR 2022.
    """
    ignore_index = _check_ignore_index(ignore_index)
    ls = check_fraction(label_smoothing, "label_smoothing")
    try:
        eps = float(epsilon)
    except (TypeError, ValueError):
        raise TypeError(f"epsilon must be a number; got {epsilon!r}.") from None
    if not eps >= -1.0:
        raise ValueError(f"epsilon must be >= -1; got {epsilon!r}.")
    xp, x, y, unbatched = _prepare(input, target, reduction, allow_probs=False)
    return _ce_index(
        xp, x, y, unbatched, weight=weight, ignore_index=ignore_index, reduction=reduction,
        label_smoothing=ls, compute_grad=compute_grad, poly_epsilon=eps,
    )


# ----------------------------------------------------------------------------------------------
# nll and softmax_focal
# ----------------------------------------------------------------------------------------------


@register(
    "nll",
    input_kind="log_probabilities",
    target_kind="class_index",
    layout="class_axis",
    rowwise=True,
    mean_denominator=_index_mean_denominator,
    task="multiclass",
    formula="-w_y input_y, mean over sum of w_y",
    example=_nll_example,
    torch="nll_loss",
)
def nll(
    input: Any,
    target: Any,
    *,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Negative log-likelihood: ``l_i = -w_{y_i} input_{i, y_i}`` for log-probabilities ``input``.

    Shapes as ``cross_entropy`` with class-index targets: (N, C), (C,), (N, C, d1, ..., dk).
    Entries labelled ``ignore_index`` contribute 0; ``reduction="mean"`` divides by
    ``sum_i w_{y_i}`` over the other entries (NaN when all are ignored, as torch).

    Gradient: ``-w_{y_i}`` at the target entry, 0 elsewhere (divided by ``sum_i w_{y_i}`` for the
    mean).

    Same as ``torch.nn.functional.nll_loss``. Reference: any text on maximum likelihood; with
    ``input = log_softmax(x)`` this is ``cross_entropy``.
    """
    ignore_index = _check_ignore_index(ignore_index)
    xp, x, y, unbatched = _prepare(input, target, reduction, allow_probs=False)
    n_classes = int(x.shape[1])
    y_safe, valid = _labels(xp, y, n_classes, ignore_index)
    w = None if weight is None else _class_array(xp, weight, x, "weight")
    w_y = None if w is None else _gather(xp, w, y_safe)
    x_y = xp.take_along_axis(x, y_safe, axis=1)
    zero = xp.zeros_like(x_y)
    per = xp.where(valid, -(x_y if w_y is None else w_y * x_y), zero)
    total = None
    if reduction == "mean":
        total = xp.sum(xp.astype(valid, x.dtype)) if w_y is None else xp.sum(
            xp.where(valid, w_y, zero)
        )
    value = _finish(xp, per, reduction, total, unbatched)
    if not compute_grad:
        return value, None
    scale = 1.0 if total is None else _mean_scale(xp, total)[0]
    coef = xp.where(valid, -(scale if w_y is None else w_y * scale) + zero, zero)
    classes = xp.arange(n_classes, dtype=xp.int64, device=array_api_compat.device(x))
    mask = _along_classes(xp, classes, x.ndim) == y_safe
    g = xp.where(mask, coef, zero)
    return value, _unbatch(xp, g, unbatched)


@register(
    "softmax_focal",
    input_kind="logits",
    target_kind="class_index",
    layout="class_axis",
    task="multiclass",
    formula="-alpha_y (1 - p_y)^gamma log p_y, p = softmax(x)",
    example=_index_example,
)
def softmax_focal(
    input: Any,
    target: Any,
    *,
    gamma: float = 2.0,
    alpha: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    compute_grad: bool = True,
):
    """Multi-class focal loss: ``l_i = -alpha_{y_i} (1 - p_{i,y_i})^gamma log p_{i,y_i}``.

    ``p = softmax(input)`` over axis 1; shapes and class-index targets as ``cross_entropy``.
    ``alpha`` is None (1), a number, or a (C,) array of per-class factors. Entries labelled
    ``ignore_index`` contribute 0, and ``reduction="mean"`` divides by the number of non-ignored
    entries (NaN when there are none): ``alpha`` is a fixed balancing factor as in Lin et al. and
    torchvision's sigmoid focal loss, not a weight the mean renormalises by (cross_entropy's
    ``weight`` is). So ``gamma=0, alpha=None`` is ``cross_entropy`` exactly.

    Gradient: with ``q = 1 - p_y`` and ``lp = log p_y``,
    ``dl_i/dx_i = alpha_y c_i (p_i - onehot(y_i))``, ``c_i = q^gamma (1 - gamma p_y lp / q)``
    (``lp / q -> -1`` as ``q -> 0``, which we use at ``q = 0``). ``lp`` comes from the shifted
    logits (on torch, from the fused softmax wherever ``p_y`` is a normal number; see
    ``_torch_softmax_pass``) and ``q = -expm1(lp)``, so both stay exact for logits of any
    magnitude.

    torch has no multi-class focal loss. Reference: Lin et al., "Focal Loss for Dense Object
    Detection", ICCV 2017 (defined there for sigmoids; this is its usual softmax
    generalisation).
    """
    ignore_index = _check_ignore_index(ignore_index)
    gamma = check_positive_number(gamma, "gamma", allow_zero=True)
    xp, x, y, unbatched = _prepare(input, target, reduction, allow_probs=False)
    n_classes = int(x.shape[1])
    y_safe, valid = _labels(xp, y, n_classes, ignore_index)
    a_y = None
    if alpha is not None:
        if isinstance(alpha, int | float) and not isinstance(alpha, bool):
            a_y = float(alpha)
        else:
            a_y = _gather(xp, _class_array(xp, alpha, x, "alpha"), y_safe)
    e, s, log_s, z_y, _ = _softmax_pass(xp, x, y_safe)
    lp = z_y - log_s
    q = -xp.expm1(lp)
    q_gamma = q**gamma
    per = -(q_gamma * lp)
    if a_y is not None:
        per = a_y * per
    zero = xp.zeros_like(per)
    per = xp.where(valid, per, zero)
    total = xp.sum(xp.astype(valid, x.dtype)) if reduction == "mean" else None
    value = _finish(xp, per, reduction, total, unbatched)
    if not compute_grad:
        return value, None
    scale = 1.0 if total is None else _mean_scale(xp, total)[0]
    positive = q > 0
    ratio = xp.where(positive, lp / xp.where(positive, q, xp.ones_like(q)), -xp.ones_like(q))
    c = q_gamma * (1.0 - gamma * xp.exp(lp) * ratio)
    k = c * scale if a_y is None else a_y * c * scale
    k = xp.where(valid, k + zero, zero)
    g = _assemble_grad(xp, e, s, k, y_safe, k)
    return value, _unbatch(xp, g, unbatched)
