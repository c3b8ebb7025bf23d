"""Overlap (segmentation) losses: soft Dice, Jaccard (IoU), Tversky, focal Tversky, generalised
Dice and the Matthews correlation loss, on probabilities or logits.

**What a score covers.** Every loss here computes overlap scores over *blocks* of elements and
turns them into one loss per item. Three options say what a block is:

- ``mode`` (segmentation_models_pytorch's name and values): ``"binary"`` (default) treats all
  non-batch elements of a sample as one class; ``"multilabel"`` reads axis 1 as C independent
  classes with a target of the input's shape; ``"multiclass"`` reads axis 1 as C exclusive
  classes with a target of class indices ``(N, d1, ...)`` (or class probabilities of the input's
  shape, e.g. one-hot).
- ``average`` (kornia's name and values): ``"macro"`` (default) scores each class separately and
  averages the class losses (weighted by ``weight``); ``"micro"`` pools all classes into one
  score. With one class (``mode="binary"``) the two are the same.
- ``batch`` (MONAI's name): False (default) gives one score per sample (one loss per sample);
  True sums over the whole batch first, as if it were one sample (one loss for the batch).

So kornia's ``dice_loss(average=a)`` is ``mode="multiclass", average=a``; MONAI's
``DiceLoss(batch=b)`` is ``average="macro", batch=b``; smp's ``DiceLoss(mode=m)`` (which sums
over the batch, ``dims=(0, 2)``) is ``mode=m, average="macro", batch=True``; Keras's
``Dice(axis=None)`` is ``batch=True`` and its ``axis=(1, 2)`` on a one-channel mask is the
per-sample default. The losses reduce over their items like every catalog loss
(``reduction="mean"`` averages the per-sample losses, MONAI's and kornia's mean).

**Scores.** With ``I = sum p t`` (the intersection), ``P = sum p`` and ``T = sum t`` over a block,
the Tversky index is ``(I + s_nr) / (I + a (P - I) + b (T - I) + s_dr)``; Jaccard is
``a = b = 1``, and Dice ``(2 I + s_nr) / (P + T + s_dr)`` is ``a = b = 1/2`` with the smoothing
halved, so one core (``_tversky_items``) serves them all. ``squared=True`` takes ``P = sum p^2``,
``T = sum t^2`` (V-Net; MONAI's ``squared_pred``); ``soft_label=True`` takes the intersection
``sum min(p, t) = (|p| + |t| - |p - t|) / 2``, whose score is 1 exactly at ``p = t`` for soft
targets too (MONAI's ``soft_label=True``; segmentation_models_pytorch 0.6's only form).
``smooth`` is added to the numerator and the denominator; ``smooth_nr``/``smooth_dr`` set them
separately (MONAI).

**Logits.** ``from_logits=True`` applies a sigmoid (binary, multilabel) or a softmax over axis 1
(multiclass) inside, and the gradient is with respect to the logits, computed from one
``exp(-|x|)`` (sigmoid) or a max-shifted softmax: finite for any finite logit.

**Empty classes** (``empty``): ``"score"`` (default; kornia's micro and MONAI's convention) scores
a class with an empty target mask like any other, so a prediction on an empty mask costs about 1
and an empty prediction on it scores 1 (loss 0) through the smoothing; ``"zero"``
(segmentation_models_pytorch) gives classes absent from the target loss 0 but keeps them in the
class mean's denominator; ``"exclude"`` (kornia's macro) leaves them out of the mean (a sample with
no present class then has loss 0). Where the denominator is 0 (an empty prediction on an empty
mask with ``smooth_dr = 0``) the score is 1 and its gradient 0: never NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from losslab.losses._constraints import NONE, Array, Boolean, Choice, Either, Integer, Real
from losslab.losses._primitives import (
    is_integral,
    row_affine,
    row_dot,
    shape_of,
    sigmoid_from,
)
from losslab.losses._registry import Items, register

__all__ = [
    "dice", "jaccard", "tversky", "focal_tversky", "generalized_dice", "mcc",
    "SegmentationView", "segmentation_example", "SEGMENTATION_OPTIONS",
]

SMOOTH = Real(0, None)
SMOOTH_PART = Either(NONE, Real(0, None))
MODE = Choice("binary", "multilabel", "multiclass")
AVERAGE = Choice("macro", "micro")
EMPTY = Choice("score", "zero", "exclude")
CLASS_WEIGHT = Either(NONE, Array("shape (C,), one non-negative weight per class"))
IGNORE_INDEX = Either(NONE, Integer())

# What every Tversky-family loss takes (each register call adds its own).
SEGMENTATION_OPTIONS = {
    "mode": MODE,
    "from_logits": Boolean(),
    "average": AVERAGE,
    "batch": Boolean(),
    "weight": CLASS_WEIGHT,
    "ignore_index": IGNORE_INDEX,
    "smooth": SMOOTH,
    "smooth_nr": SMOOTH_PART,
    "smooth_dr": SMOOTH_PART,
    "soft_label": Boolean(),
    "empty": EMPTY,
}


# ----------------------------------------------------------------------------------------------
# Inputs as rows: one row per sample and class
# ----------------------------------------------------------------------------------------------


class SegmentationView:
    """A segmentation batch seen as rows: ``p`` (probabilities) and ``t`` (float targets), both of
    shape (N*C, S), one row per sample and class (C = 1 in binary mode, where a row is a whole
    sample), with ignored elements zeroed in both.

    ``act`` keeps what the chain rule through the sigmoid/softmax needs (``from_logits``);
    ``valid`` is the 0/1 mask of counted elements (None without ``ignore_index``). The shapes are
    checked here, with errors that name the argument.
    """

    def __init__(
        self, xp: Any, input: Any, target: Any, *, mode: str, from_logits: bool,
        ignore_index: int | None,
    ) -> None:
        self.xp, self.mode, self.shape = xp, mode, shape_of(input)
        shape = self.shape
        if len(shape) < 2 or (mode != "binary" and shape[1] < 1):
            what = "(N, ...)" if mode == "binary" else "(N, C, d1, ...) with C >= 1 classes"
            raise ValueError(
                f"input must have shape {what} with at least 2 dimensions (mode={mode!r}): a "
                f"batch axis and the elements each score sums over; got shape {shape}."
            )
        n = shape[0]
        c = 1 if mode == "binary" else shape[1]
        s = math.prod(shape[1:]) // c
        self.n, self.c, self.s = n, c, s
        dtype = input.dtype
        valid = None
        if mode == "multiclass" and is_integral(xp, target):
            labels_shape = shape[:1] + shape[2:]
            if shape_of(target) != labels_shape:
                raise ValueError(
                    f"target of class indices must have shape {labels_shape} (the input's shape "
                    f"{shape} without the class axis); got {shape_of(target)}."
                )
            y = xp.reshape(xp.astype(target, xp.int64), (n, 1, s))
            if ignore_index is not None:
                keep = y != ignore_index
                valid = xp.astype(keep, dtype)
                y = xp.where(keep, y, xp.zeros_like(y))
            classes = xp.reshape(xp.arange(c, dtype=xp.int64, device=_device(input)), (1, c, 1))
            t3 = xp.astype(y == classes, dtype)
            if valid is not None:
                t3 = t3 * valid
        else:
            if shape_of(target) != shape:
                extra = (
                    " (class indices would be an integer array of shape "
                    f"{shape[:1] + shape[2:]})" if mode == "multiclass" else ""
                )
                raise ValueError(
                    f"target must have the same shape as input {shape}; got "
                    f"{shape_of(target)}{extra}."
                )
            t3 = xp.reshape(target, (n, c, s))
            if ignore_index is not None:
                keep = t3 != ignore_index
                valid = xp.astype(keep, dtype)
                t3 = xp.where(keep, t3, xp.zeros_like(t3))
        x3 = xp.reshape(input, (n, c, s))
        self.act = None
        if from_logits:
            self.act = _Activation(xp, x3, "softmax" if mode == "multiclass" else "sigmoid")
            p3 = self.act.p
        else:
            p3 = x3
        if valid is not None:
            p3 = p3 * valid
        self.valid = None if valid is None else xp.reshape(
            xp.broadcast_to(valid, (n, c, s)), (n * c, s)
        )
        self.p = xp.reshape(p3, (n * c, s))
        self.t = xp.reshape(t3, (n * c, s))

    # -- from per-row quantities back to the input --------------------------------------------

    def rows3(self, a: Any) -> Any:
        """Rows (N*C, S), or per-row values (N*C, 1), as (N, C, S) or (N, C, 1)."""
        return self.xp.reshape(a, (self.n, self.c, int(a.shape[1])))

    def to_input(self, g_p: Any) -> Any:
        """A gradient with respect to the rows' probabilities, as the gradient with respect to
        the input (through the sigmoid/softmax when ``from_logits``)."""
        g3 = self.rows3(g_p)
        if self.act is not None:
            g3 = self.act.jvp(g3)
        return self.xp.reshape(g3, self.shape)

    def row_weights(self, w: Any) -> Any:
        """The reducer's weights (a number, or laid over the input with one value per sample or
        one for the batch) as an (N, 1) array or a number."""
        if isinstance(w, float):
            return w
        return self.xp.reshape(w, (-1, 1))


def _device(a: Any) -> Any:
    import array_api_compat

    return array_api_compat.device(a)


class _Activation:
    """The sigmoid or the softmax over axis 1 of logits (N, C, S), and the chain rule through it.

    ``J`` (the Jacobian of the probabilities in the logits) is symmetric and couples only the
    classes of one position: ``J v = s' v`` (sigmoid, ``s' = s (1 - s)``) or
    ``p (v - sum_c p v)`` (softmax). For a loss ``f(p(x))`` with gradient ``G`` in ``p`` and
    Hessian ``H``: the gradient in ``x`` is ``J G`` and the Hessian ``J H J + sum_k G_k d2p_k``,
    whose second term is ``G s' (1 - 2 s)`` times ``v`` (sigmoid) or
    ``u (G - sum p G) - p sum(u G)`` with ``u = J v`` (softmax).
    """

    def __init__(self, xp: Any, x: Any, kind: str) -> None:
        self.xp, self.kind = xp, kind
        if kind == "sigmoid":
            e = xp.exp(-xp.abs(x))
            self.p = sigmoid_from(xp, x, e)
            self.d1 = e / ((1.0 + e) * (1.0 + e))  # s (1 - s), accurate in both tails
        else:
            m = xp.max(x, axis=1, keepdims=True)
            ez = xp.exp(x - m)
            self.p = ez / xp.sum(ez, axis=1, keepdims=True)

    def _pdot(self, a: Any) -> Any:
        return self.xp.sum(self.p * a, axis=1, keepdims=True)

    def jvp(self, v: Any) -> Any:
        if self.kind == "sigmoid":
            return self.d1 * v
        return self.p * (v - self._pdot(v))

    def second(self, g: Any, v: Any) -> Any:
        """``sum_k G_k (d2 p_k) v``."""
        if self.kind == "sigmoid":
            return g * (self.d1 * (1.0 - 2.0 * self.p)) * v
        u = self.jvp(v)
        return u * (g - self._pdot(g)) - self.p * self.xp.sum(u * g, axis=1, keepdims=True)

    def second_diag(self, g: Any) -> Any:
        if self.kind == "sigmoid":
            return g * (self.d1 * (1.0 - 2.0 * self.p))
        return (g - self._pdot(g)) * self.p * (1.0 - 2.0 * self.p)

    def diag_through(self, h: Any) -> Any:
        """The diagonal of ``J H J`` for an ``H`` whose entries between two classes of one
        position are 0 (``h`` its diagonal): ``s'^2 h``, or for the softmax
        ``p^2 [(1 - 2 p) h + sum_c p^2 h]``."""
        if self.kind == "sigmoid":
            return self.d1 * self.d1 * h
        p = self.p
        return p * p * ((1.0 - 2.0 * p) * h + self.xp.sum(p * p * h, axis=1, keepdims=True))


# ----------------------------------------------------------------------------------------------
# Blocks: which rows one score sums over
# ----------------------------------------------------------------------------------------------


class _Blocks:
    """Per-row sums (N*C, 1) -> per-block sums (Nb, Cb) and back.

    A block is a sample and class (macro), a sample (micro, binary), or the same over the whole
    batch (``batch=True``: Nb = 1). ``weights`` (an (Nw, C) array, Nw = 1 or N) scale each class's
    sums in a micro block (kornia's micro ``weight``, the generalised Dice's volumes)."""

    def __init__(self, xp: Any, n: int, c: int, *, micro: bool, batch: bool) -> None:
        self.xp, self.n, self.c = xp, n, c
        self.micro = micro and c > 1
        self.batch = batch

    def sum(self, rows: Any, weights: Any = None) -> Any:
        xp = self.xp
        a = xp.reshape(rows, (self.n, self.c))
        if weights is not None:
            a = a * weights
        if self.micro:
            a = xp.sum(a, axis=1, keepdims=True)
        if self.batch:
            a = xp.sum(a, axis=0, keepdims=True)
        return a

    def spread(self, b: Any) -> Any:
        """Per-block values (Nb, Cb), or (N, C)-broadcastable ones, as per-row (N*C, 1)."""
        xp = self.xp
        return xp.reshape(xp.broadcast_to(b, (self.n, self.c)), (self.n * self.c, 1))

    def items(self, b: Any) -> Any:
        """Per-block losses (Nb, Cb) summed into the per-item losses: (N,), or () with batch."""
        xp = self.xp
        total = xp.sum(b, axis=1)
        return xp.reshape(total, ()) if self.batch else total


def _row_sums(xp: Any, a: Any) -> Any:
    return xp.sum(a, axis=1, keepdims=True)


def _class_vector(xp: Any, w: Any, c: int, name: str, mode: str) -> Any:
    if mode == "binary":
        raise ValueError(
            f"{name} holds one weight per class; mode='binary' has a single class. Use "
            f"mode='multilabel' or 'multiclass' for an input (N, C, ...) with classes on axis 1."
        )
    if shape_of(w) != (c,):
        raise ValueError(f"{name} must have shape ({c},), one entry per class; got {shape_of(w)}.")
    return xp.reshape(w, (1, c))


# ----------------------------------------------------------------------------------------------
# The Tversky core
# ----------------------------------------------------------------------------------------------


def _tversky_items(
    xp: Any, view: SegmentationView, *, alpha: float, beta: float, nr: float, dr: float,
    average: str, batch: bool, weight: Any = None, empty: str = "score", squared: bool = False,
    soft_label: bool = False, gamma: float | None = None, volume_weights: str | None = None,
) -> Items:
    """Per-item losses ``sum_b omega_b phi(TI_b)`` over the blocks b of each item, and their
    derivatives, where ``TI_b = (I_b + nr) / (c I_b + alpha P_b + beta T_b + dr)`` with
    ``c = 1 - alpha - beta``, ``phi(TI) = 1 - TI`` (or ``(1 - TI)^gamma``, focal Tversky), and
    ``omega_b`` the class-mean weights.

    Derivatives. With ``dI``, ``dP`` the element-wise derivatives of ``I`` and ``P`` (``t`` or
    ``[p < t]``; 1 or ``2 p``), ``e = c dI + alpha dP`` and ``g = dTI/dp = (dI - TI e) / D``:
    the gradient is ``omega phi'(TI) g`` and the Hessian, per block,
    ``A g g^T + B (g e^T + e g^T) + B TI alpha d2P`` with ``A = omega phi''``,
    ``B = -omega phi' / D`` (``d2P = 2 diag`` when squared, else 0; the intersection's second
    derivative is 0 almost everywhere).
    """
    p, t, valid = view.p, view.t, view.valid
    n, c = view.n, view.c
    blocks = _Blocks(xp, n, c, micro=average == "micro", batch=batch)
    cw = None if weight is None else _class_vector(xp, weight, c, "weight", view.mode)
    ct = 1.0 - alpha - beta
    # Per-row sums (N*C, 1).
    if soft_label and not squared:
        i_rows = _row_sums(xp, xp.minimum(p, t))
    else:
        i_rows = row_dot(xp, p, t)
    p_rows = row_dot(xp, p, p) if squared else _row_sums(xp, p)
    t_rows = row_dot(xp, t, t) if squared else _row_sums(xp, t)
    micro_w = cw if blocks.micro else None
    if volume_weights is not None:
        micro_w = _volume_weights(xp, blocks, t_rows, volume_weights)
    i_b = blocks.sum(i_rows, micro_w)
    p_b = blocks.sum(p_rows, micro_w)
    t_b = blocks.sum(t_rows, micro_w)
    den = ct * i_b + alpha * p_b + beta * t_b + dr
    if dr > 0:
        inv = 1.0 / den
        ti = (i_b + nr) / den
    else:
        # An empty prediction on an empty mask: 0/0. Score 1 (loss 0) and no gradient.
        zero = den == 0
        safe = xp.where(zero, xp.ones_like(den), den)
        inv = xp.where(zero, xp.zeros_like(den), 1.0 / safe)
        ti = xp.where(zero, xp.ones_like(den), (i_b + nr) / safe)
    loss_b = 1.0 - ti
    if gamma is None:
        phi, dphi, d2phi = loss_b, -1.0, 0.0
    else:
        phi, dphi, d2phi = _focal_power(xp, loss_b, gamma)
    omega = _class_mean_weights(
        xp, blocks, cw, empty, None if empty == "score" else blocks.sum(_row_sums(xp, t)), i_b
    )
    values = blocks.items(phi if omega is None else omega * phi)

    def row_factor(w: Any, b: Any) -> Any:
        """``w * b`` per row: per-block ``b`` times the reducer's per-sample weights."""
        f = blocks.spread(b)
        wr = view.row_weights(w)
        if not isinstance(wr, float):
            wr = xp.reshape(xp.broadcast_to(xp.reshape(wr, (-1, 1)), (n, c)), (n * c, 1))
        return f * wr if not (isinstance(wr, float) and wr == 1.0) else f

    omega_ = 1.0 if omega is None else omega
    mw_rows = None if micro_w is None else blocks.spread(micro_w)

    def derivative_parts() -> tuple[Any, Any]:
        """``dI`` and ``dP`` element-wise (rows), micro weights and the valid mask folded in."""
        if soft_label and not squared:
            d_i = 0.5 + 0.5 * xp.sign(t - p)
            if valid is not None:
                d_i = d_i * valid
        else:
            d_i = t
        if squared:
            d_p = 2.0 * p
        else:
            d_p = 1.0 if valid is None else valid
        if mw_rows is not None:
            d_i = d_i * mw_rows
            d_p = d_p * mw_rows
        return d_i, d_p

    def grad_p(w: Any) -> Any:
        k = row_factor(w, omega_ * dphi * inv)  # dloss/dTI / D per row
        ti_r = blocks.spread(ti)
        if not soft_label and not squared:
            # k [(1 - c TI) t - alpha TI]: affine in t per row, one pass (row_affine)
            slope, offset = k * (1.0 - ct * ti_r), k * (-alpha * ti_r)
            if mw_rows is not None:
                slope, offset = slope * mw_rows, offset * mw_rows
            g = row_affine(xp, t, slope, offset)
            return g if valid is None else g * valid
        d_i, d_p = derivative_parts()
        return (k * (1.0 - ct * ti_r)) * d_i - (k * (alpha * ti_r)) * d_p

    def grad(w: Any) -> Any:
        return view.to_input(grad_p(w))

    def hessian_parts(w: Any) -> tuple[Any, Any, Any, Any, Any]:
        d_i, d_p = derivative_parts()
        ti_r = blocks.spread(ti)
        e = ct * d_i + alpha * d_p
        g = (d_i - ti_r * e) * blocks.spread(inv)
        a_r = row_factor(w, omega_ * d2phi) if gamma is not None else None
        b_r = row_factor(w, -(omega_ * dphi) * inv)
        diag_d = None
        if squared:
            two = 2.0 if mw_rows is None else 2.0 * mw_rows
            diag_d = b_r * ti_r * alpha * (two if valid is None else two * valid)
        return g, e, a_r, b_r, diag_d

    def hvp_p(w: Any, v: Any) -> Any:
        g, e, a_r, b_r, diag_d = hessian_parts(w)
        gv = blocks.spread(blocks.sum(_row_sums(xp, g * v)))
        ev = blocks.spread(blocks.sum(_row_sums(xp, e * v)))
        out = b_r * (g * ev + e * gv)
        if a_r is not None:
            out = out + (a_r * gv) * g
        if diag_d is not None:
            out = out + diag_d * v
        return out

    def hvp(w: Any, v: Any) -> Any:
        g_p = None if view.act is None else grad_p(w)
        return _chain_hvp(xp, view, lambda u: hvp_p(w, u), g_p, v)

    def hess(w: Any) -> Any:
        g, e, a_r, b_r, diag_d = hessian_parts(w)
        act = view.act
        if act is not None and act.kind == "softmax" and blocks.micro:
            # One block holds all classes of a position: J's columns meet g and e whole.
            jg, je = act.jvp(view.rows3(g)), act.jvp(view.rows3(e))
            out = (2.0 * view.rows3(b_r)) * (jg * je)
            if a_r is not None:
                out = out + view.rows3(a_r) * (jg * jg)
            if diag_d is not None:
                out = out + act.diag_through(view.rows3(diag_d + xp.zeros_like(g)))
            out = out + act.second_diag(view.rows3(grad_p(w)))
            return xp.reshape(out, view.shape)
        h = (2.0 * b_r) * (g * e)
        if a_r is not None:
            h = h + a_r * (g * g)
        if diag_d is not None:
            h = h + diag_d
        return _chain_hess(xp, view, h, None if act is None else grad_p(w))

    return Items(values, grad=grad, hess=hess, hvp=hvp)


def _focal_power(xp: Any, loss: Any, gamma: float) -> tuple[Any, Any, Any]:
    """``phi = max(L, 0)^gamma`` and its first two derivatives in ``TI = 1 - L``.

    At ``L = 0`` (a perfect score) the derivative of ``L^gamma`` is infinite for ``gamma < 1``;
    we take 0 there, the value of the subgradient at the minimum (the Tversky loss is >= 0 for
    ``smooth_nr <= smooth_dr``), and 0 where rounding makes ``L`` negative."""
    pos = loss > 0
    safe = xp.where(pos, loss, xp.ones_like(loss))
    zeros = xp.zeros_like(loss)
    phi = xp.where(pos, safe**gamma, zeros)
    d1 = xp.where(pos, gamma * safe ** (gamma - 1.0), zeros)
    d2 = xp.where(pos, gamma * (gamma - 1.0) * safe ** (gamma - 2.0), zeros)
    return phi, -d1, d2  # dphi/dTI = -dphi/dL


def _class_mean_weights(
    xp: Any, blocks: _Blocks, cw: Any, empty: str, t_sums: Any, like: Any
) -> Any:
    """``omega`` (Nb, Cb): each block's weight in its item's class mean, or None (all 1).

    Macro blocks: ``w_c / sum_c w_c`` ("score"), times the class's presence in the target
    ("zero", smp), or ``w_c present_c / sum_c w_c present_c`` ("exclude", kornia's macro; 0 for
    an item with no present class). Micro blocks: 1, or the block's presence."""
    present = None if t_sums is None else xp.astype(t_sums > 0, t_sums.dtype)
    if blocks.micro or blocks.c == 1:
        return present
    cw = xp.ones_like(like[:1, :]) if cw is None else cw
    if empty == "exclude":
        num = cw * present
        total = xp.sum(num, axis=1, keepdims=True)
    else:
        num = cw if present is None else cw * present
        total = xp.sum(cw, axis=1, keepdims=True)
    positive = total > 0
    return xp.where(positive, num / xp.where(positive, total, xp.ones_like(total)),
                    xp.zeros_like(num))


def _volume_weights(xp: Any, blocks: _Blocks, t_rows: Any, kind: str) -> Any:
    """The generalised Dice's class weights, (Nb, C): ``1 / T_c^2`` ("square"), ``1 / T_c``
    ("simple") or 1 ("uniform") with ``T_c`` the class's target volume in the block; a class with
    volume 0 takes the block's largest finite weight (MONAI's rule), all 0 if every class is
    empty."""
    vol = xp.reshape(t_rows, (blocks.n, blocks.c))
    if blocks.batch:
        vol = xp.sum(vol, axis=0, keepdims=True)
    if kind == "uniform":
        return xp.ones_like(vol)
    present = vol > 0
    safe = xp.where(present, vol, xp.ones_like(vol))
    w = 1.0 / (safe * safe) if kind == "square" else 1.0 / safe
    w = xp.where(present, w, xp.zeros_like(w))
    biggest = xp.max(w, axis=1, keepdims=True)
    return xp.where(present, w, biggest + xp.zeros_like(w))


def _smoothing(smooth: float, smooth_nr: float | None, smooth_dr: float | None) -> tuple:
    return (
        smooth if smooth_nr is None else smooth_nr,
        smooth if smooth_dr is None else smooth_dr,
    )


# ----------------------------------------------------------------------------------------------
# Examples: valid inputs for any option combination
# ----------------------------------------------------------------------------------------------


def segmentation_example(
    rng: np.random.Generator, dtype: Any = "float64", *, mode: str = "binary",
    from_logits: bool = False, weight: Any = None, ignore_index: int | None = None,
    soft_label: bool = False, logits: bool = False, **_: Any,
) -> tuple[Any, ...]:
    """Inputs for the overlap losses: probabilities in [0.05, 0.95] (or logits), targets a mask
    or soft labels (binary, multilabel) or class indices / class probabilities (multiclass), with
    some entries equal to ``ignore_index`` when it is given. With ``soft_label`` the
    probabilities stay 0.02 away from the targets (the kink of ``min(p, t)``)."""
    n = int(rng.integers(1, 4))
    if mode == "binary":
        shape = (n,) + tuple(int(d) for d in rng.integers(1, 4, size=int(rng.integers(1, 3))))
        c = 1
    else:
        c = int(np.shape(weight)[0]) if weight is not None else int(rng.integers(2, 4))
        rest = tuple(int(d) for d in rng.integers(1, 4, size=int(rng.integers(0, 3))))
        shape = (n, c) + rest
    if mode == "multiclass" and rng.random() < 0.6:
        labels = rng.integers(0, c, size=shape[:1] + shape[2:]).astype(np.int64)
        if ignore_index is not None and labels.size > 1:
            labels[rng.random(size=labels.shape) < 0.25] = ignore_index
        target: Any = labels
    elif mode == "multiclass":
        t = rng.random(size=shape) + 0.05
        target = (t / t.sum(axis=1, keepdims=True)).astype(dtype)
    elif rng.random() < 0.5:
        target = (rng.random(size=shape) < 0.5).astype(dtype)
    else:
        target = rng.random(size=shape).astype(dtype)
    if logits or from_logits:
        x = 2.0 * rng.normal(size=shape)
    else:
        x = rng.uniform(0.05, 0.95, size=shape)
        if soft_label and not np.issubdtype(np.asarray(target).dtype, np.integer):
            close = np.abs(x - target) < 0.02
            x = np.where(close, np.where(target > 0.5, target - 0.03, target + 0.03), x)
    if ignore_index is not None and mode != "multiclass" and target.size > 1:
        target = np.where(rng.random(size=shape) < 0.25, float(ignore_index), target).astype(dtype)
    return x.astype(dtype), target


def _example(rng: np.random.Generator, dtype: Any = "float64", **options: Any) -> tuple[Any, ...]:
    return segmentation_example(rng, dtype, **options)


def _multilabel_example(
    rng: np.random.Generator, dtype: Any = "float64", **options: Any
) -> tuple[Any, ...]:
    return segmentation_example(rng, dtype, **{"mode": "multilabel", **options})


# ----------------------------------------------------------------------------------------------
# The catalog entries
# ----------------------------------------------------------------------------------------------


@register(
    "dice",
    input_kind="probabilities",
    target_kind="segmentation",
    layout="per_sample",
    options={**SEGMENTATION_OPTIONS, "squared": Boolean()},
    hessian="indefinite",
    task="segmentation",
    formula="1 - (2 sum(p t) + s) / (sum p + sum t + s), per sample (and class)",
    example=_example,
    module="DiceLoss",
)
def dice(
    xp: Any, input: Any, target: Any, *, mode: str = "binary", from_logits: bool = False,
    average: str = "macro", batch: bool = False, weight: Any = None,
    ignore_index: int | None = None, smooth: float = 1.0, smooth_nr: float | None = None,
    smooth_dr: float | None = None, soft_label: bool = False, empty: str = "score",
    squared: bool = False,
) -> Items:
    """Soft Dice loss: ``l = 1 - (2 I + s_nr) / (P + T + s_dr)`` per block (sample, or sample and
    class), ``I = sum p t``, ``P = sum p``, ``T = sum t``.

    Blocks, logits, class weights, ignored elements, smoothing and empty classes: see the module
    docstring (``mode``, ``from_logits``, ``average``, ``batch``, ``weight``, ``ignore_index``,
    ``smooth``/``smooth_nr``/``smooth_dr``, ``soft_label``, ``empty``). ``squared=True`` is
    V-Net's ``1 - (2 I + s) / (sum p^2 + sum t^2 + s)``.

    Gradient: ``dl/dp_j = (score - 2 t_j) / (P + T + s_dr)`` per block (``score (2 p_j) - 2 t_j``
    squared; ``[p_j < t_j]`` in place of ``t_j`` with ``soft_label``), averaged over the classes
    with the class weights, then through the sigmoid/softmax with ``from_logits``. Hessian: per
    block rank two, ``(e g^T + g e^T) / D`` with ``e = 1/2``, ``g = (t - score/2) / D``, ``D``
    half the denominator (plus ``score / D`` on the diagonal when squared), then the chain rule;
    indefinite.

    Defaults and peers: ``smooth = 1`` in numerator and denominator (the classic soft Dice;
    MONAI's ``smooth_nr = smooth_dr``). smp 0.6 and optax compute Dice as a Tversky index
    ``(I + s) / ((P + T) / 2 + s)``: their ``smooth=s`` is ``smooth = 2 s`` here; Keras's
    ``dice`` is ``smooth_nr = 0, smooth_dr = 1e-7``. Class weights give the weighted class mean
    ``sum_c w_c l_c / sum_c w_c`` (smp, kornia's macro); MONAI and optax multiply without
    normalising (their value is ``sum(w) / C`` times ours). ``average="micro"`` with weights is
    kornia's micro (``w_c`` scales class c's terms in both sums). ``ignore_index`` zeroes ignored
    elements of ``p`` and ``t`` (smp, MONAI, kornia). smp 0.6's ``DiceLoss(mode, smooth=s)`` is
    ``dice(mode=..., from_logits=True, batch=True, smooth=2 s, soft_label=True, empty="zero")``
    (it sums over the batch, uses the soft intersection and zeroes absent classes, up to its
    ``eps`` clamp of the denominator); MONAI's ``DiceLoss`` is ``mode="multilabel"`` (one-hot
    targets) or ``"multiclass"`` with ``smooth_nr``/``smooth_dr`` 1e-5 and
    ``squared=squared_pred``; kornia's ``dice_loss(average="macro")`` is ``empty="exclude"`` with
    ``smooth_nr = 0``, ``smooth_dr = eps`` (it gives 1, not 0, for a sample whose pixels are all
    ignored). The README's table "Segmentation losses and their options" lists them all.

    Reference: Milletari, Navab, Ahmadi, "V-Net", 3DV 2016; Sudre et al., "Generalised Dice
    overlap as a deep learning loss function", DLMIA 2017; Wang and Blaschko, "Dice semimetric
    losses: optimizing the Dice score with soft labels", MICCAI 2023 (soft_label).
    """
    view = SegmentationView(
        xp, input, target, mode=mode, from_logits=from_logits, ignore_index=ignore_index
    )
    nr, dr = _smoothing(smooth, smooth_nr, smooth_dr)
    return _tversky_items(
        xp, view, alpha=0.5, beta=0.5, nr=0.5 * nr, dr=0.5 * dr, average=average, batch=batch,
        weight=weight, empty=empty, squared=squared, soft_label=soft_label,
    )


@register(
    "jaccard",
    input_kind="probabilities",
    target_kind="segmentation",
    layout="per_sample",
    options={**SEGMENTATION_OPTIONS, "squared": Boolean()},
    hessian="indefinite",
    task="segmentation",
    formula="1 - (sum(p t) + s) / (sum p + sum t - sum(p t) + s), per sample (and class)",
    example=_example,
    module="JaccardLoss",
)
def jaccard(
    xp: Any, input: Any, target: Any, *, mode: str = "binary", from_logits: bool = False,
    average: str = "macro", batch: bool = False, weight: Any = None,
    ignore_index: int | None = None, smooth: float = 1.0, smooth_nr: float | None = None,
    smooth_dr: float | None = None, soft_label: bool = False, empty: str = "score",
    squared: bool = False,
) -> Items:
    """Soft Jaccard (IoU) loss: ``l = 1 - (I + s_nr) / (U + s_dr)``, ``I = sum p t``,
    ``U = sum p + sum t - I``, per block (see the module docstring for the options).

    Gradient: ``dl/dp_j = (score - (1 + score) t_j) / (U + s_dr)`` per block (``2 score p_j``
    for ``score`` when squared), then averaged over classes and through the sigmoid/softmax as
    ``dice``. Hessian: as ``tversky`` with ``alpha = beta = 1``; indefinite.

    Peers: segmentation_models_pytorch's ``soft_jaccard_score`` with its ``smooth`` (no ``eps``
    clamp; its JaccardLoss is ``batch=True, soft_label=True, empty="zero"``); MONAI's
    ``DiceLoss(jaccard=True, smooth_nr=a, smooth_dr=b)`` is ``smooth_nr = a / 2,
    smooth_dr = b / 2`` here (MONAI writes ``(2 I + a) / (2 U + b)``), with
    ``squared=squared_pred``.

    Reference: Rahman and Wang, "Optimizing Intersection-Over-Union in Deep Neural Networks for
    Image Segmentation", ISVC 2016; Wang and Blaschko, "Jaccard metric losses", NeurIPS 2023.
    """
    view = SegmentationView(
        xp, input, target, mode=mode, from_logits=from_logits, ignore_index=ignore_index
    )
    nr, dr = _smoothing(smooth, smooth_nr, smooth_dr)
    return _tversky_items(
        xp, view, alpha=1.0, beta=1.0, nr=nr, dr=dr, average=average, batch=batch,
        weight=weight, empty=empty, squared=squared, soft_label=soft_label,
    )


@register(
    "tversky",
    input_kind="probabilities",
    target_kind="segmentation",
    layout="per_sample",
    options={**SEGMENTATION_OPTIONS, "alpha": Real(0, None), "beta": Real(0, None)},
    hessian="indefinite",
    task="segmentation",
    formula="1 - (TP + s) / (TP + alpha FP + beta FN + s), per sample (and class)",
    example=_example,
    module="TverskyLoss",
)
def tversky(
    xp: Any, input: Any, target: Any, *, mode: str = "binary", from_logits: bool = False,
    average: str = "macro", batch: bool = False, weight: Any = None,
    ignore_index: int | None = None, smooth: float = 1.0, smooth_nr: float | None = None,
    smooth_dr: float | None = None, soft_label: bool = False, empty: str = "score",
    alpha: float = 0.5, beta: float = 0.5,
) -> Items:
    """Tversky loss: ``l = 1 - (TP + s_nr) / (TP + alpha FP + beta FN + s_dr)`` per block.

    ``TP = sum p t``, ``FP = sum p (1 - t)``, ``FN = sum (1 - p) t``; ``alpha`` weighs false
    positives, ``beta`` false negatives. ``alpha = beta = 1`` is ``jaccard``;
    ``alpha = beta = 0.5`` with ``smooth = s / 2`` is ``dice`` with ``smooth = s``. Blocks and
    the other options: see the module docstring. (With ``soft_label``, ``TP = sum min(p, t)``,
    ``FP = sum p - TP``, ``FN = sum t - TP``, MONAI's soft form.)

    Gradient: with ``D`` the denominator,
    ``dl/dp_j = (score (alpha + (1 - alpha - beta) t_j) - t_j) / D`` per block. Hessian: with
    ``e = alpha + (1 - alpha - beta) t`` and ``g = (t - score e) / D``, per block
    ``(e g^T + g e^T) / D`` (rank two, indefinite), then the chain rule with ``from_logits``.

    Peers: segmentation_models_pytorch's ``TverskyLoss`` with ``gamma=1`` (its blocks as for
    ``dice``); MONAI's ``TverskyLoss(alpha, beta, smooth_nr, smooth_dr)``; optax's
    ``dice_loss(alpha, beta, smooth=s)`` is ``smooth = s`` here.

    Reference: Salehi, Erdogmus, Gholipour, "Tversky loss function for image segmentation using
    3D fully convolutional deep networks", MLMI 2017.
    """
    view = SegmentationView(
        xp, input, target, mode=mode, from_logits=from_logits, ignore_index=ignore_index
    )
    nr, dr = _smoothing(smooth, smooth_nr, smooth_dr)
    return _tversky_items(
        xp, view, alpha=alpha, beta=beta, nr=nr, dr=dr, average=average, batch=batch,
        weight=weight, empty=empty, soft_label=soft_label,
    )


@register(
    "focal_tversky",
    input_kind="probabilities",
    target_kind="segmentation",
    layout="per_sample",
    options={
        **SEGMENTATION_OPTIONS, "alpha": Real(0, None), "beta": Real(0, None),
        "gamma": Real(0, None, closed="neither"),
    },
    hessian="indefinite",
    task="segmentation",
    formula="(1 - TI)^gamma, TI = (TP + s) / (TP + alpha FP + beta FN + s), per sample (and class)",
    example=_example,
    module="FocalTverskyLoss",
)
def focal_tversky(
    xp: Any, input: Any, target: Any, *, mode: str = "binary", from_logits: bool = False,
    average: str = "macro", batch: bool = False, weight: Any = None,
    ignore_index: int | None = None, smooth: float = 1.0, smooth_nr: float | None = None,
    smooth_dr: float | None = None, soft_label: bool = False, empty: str = "score",
    alpha: float = 0.3, beta: float = 0.7, gamma: float = 0.75,
) -> Items:
    """Focal Tversky loss: ``l = (1 - TI)^gamma`` per block, ``TI`` the Tversky index of
    ``tversky`` (same options), averaged over the classes like the other overlap losses.

    Defaults follow Abraham and Khan: false negatives weigh 0.7 (``beta``), false positives 0.3
    (``alpha``), and their best exponent ``1 / gamma_paper = 1 / (4/3) = 0.75``: we take the
    exponent itself as ``gamma`` (segmentation_models_pytorch's ``TverskyLoss(gamma=...)``
    convention), so ``gamma = 1`` is ``tversky``. smp raises the *class mean* to the power; we
    raise each class's loss (the paper's sum over classes), which is the same for one class
    (``mode="binary"``, or ``average="micro"``).

    Gradient: ``gamma (1 - TI)^(gamma - 1)`` times ``tversky``'s gradient per block; at
    ``TI = 1`` (a perfect score) it is taken as 0 (for ``gamma < 1`` the slope is infinite
    there; 0 is the subgradient at the minimum). Hessian:
    ``gamma (gamma - 1) (1 - TI)^(gamma - 2) g g^T`` plus ``gamma (1 - TI)^(gamma - 1)`` times
    ``tversky``'s, per block (``g = dTI/dp``); indefinite.

    Reference: Abraham and Khan, "A novel focal Tversky loss function with improved attention
    U-Net for lesion segmentation", ISBI 2019.
    """
    view = SegmentationView(
        xp, input, target, mode=mode, from_logits=from_logits, ignore_index=ignore_index
    )
    nr, dr = _smoothing(smooth, smooth_nr, smooth_dr)
    return _tversky_items(
        xp, view, alpha=alpha, beta=beta, nr=nr, dr=dr, average=average, batch=batch,
        weight=weight, empty=empty, soft_label=soft_label, gamma=gamma,
    )


@register(
    "generalized_dice",
    input_kind="probabilities",
    target_kind="segmentation",
    layout="per_sample",
    options={
        "mode": MODE, "from_logits": Boolean(), "batch": Boolean(),
        "ignore_index": IGNORE_INDEX, "smooth": SMOOTH, "smooth_nr": SMOOTH_PART,
        "smooth_dr": SMOOTH_PART, "soft_label": Boolean(),
        "weight_type": Choice("square", "simple", "uniform"),
    },
    hessian="indefinite",
    task="segmentation",
    formula="1 - (2 sum_c w_c I_c + s) / (sum_c w_c (P_c + T_c) + s), w_c = 1 / T_c^2",
    example=_multilabel_example,
    module="GeneralizedDiceLoss",
)
def generalized_dice(
    xp: Any, input: Any, target: Any, *, mode: str = "multilabel", from_logits: bool = False,
    batch: bool = False, ignore_index: int | None = None, smooth: float = 1e-5,
    smooth_nr: float | None = None, smooth_dr: float | None = None, soft_label: bool = False,
    weight_type: str = "square",
) -> Items:
    """Generalised Dice loss: ``l = 1 - (2 sum_c w_c I_c + s_nr) / (sum_c w_c (P_c + T_c) +
    s_dr)`` per sample (or for the batch), one score pooling the classes with weights
    ``w_c = 1 / T_c^2`` (``weight_type="square"``; ``"simple"``: ``1 / T_c``; ``"uniform"``: 1),
    ``T_c`` the class's target volume in the sample (in the batch with ``batch=True``).

    A class with volume 0 takes the sample's largest finite weight (MONAI's rule; ``1 / 0`` would
    be infinite), and a sample whose classes are all empty has all weights 0, score
    ``s_nr / s_dr`` (1 by default; 1 also where ``s_dr = 0``: never NaN). The weights depend on
    the target only, so they are constants for the derivatives.

    Gradient: that of a micro-averaged Dice with class weights ``w`` (see ``dice``): per sample
    ``w_c (score - 2 t_j) / (sum_c w_c (P_c + T_c) + s_dr)`` for ``p_j`` of class c. Hessian:
    ``dice``'s with the weights; indefinite.

    Options: ``mode`` (default "multilabel": one-hot or soft targets of the input's shape; also
    "multiclass" with class indices, and "binary" for one class), ``from_logits``, ``batch``,
    ``ignore_index``, ``smooth``/``smooth_nr``/``smooth_dr`` (default 1e-5, MONAI's; the weights
    make the sums small, so a smoothing of 1 would swamp them), ``soft_label``,
    ``weight_type``. Same as MONAI's ``GeneralizedDiceLoss`` (``w_type``, ``batch``,
    ``soft_label``, ``smooth_nr``, ``smooth_dr``) with ``include_background=True``; optax's
    ``multiclass_generalized_dice_loss`` is ``smooth = 2 s`` without the volume-0 rule.

    Reference: Sudre, Li, Vercauteren, Ourselin, Cardoso, "Generalised Dice overlap as a deep
    learning loss function for highly unbalanced segmentations", DLMIA 2017.
    """
    view = SegmentationView(
        xp, input, target, mode=mode, from_logits=from_logits, ignore_index=ignore_index
    )
    nr, dr = _smoothing(smooth, smooth_nr, smooth_dr)
    return _tversky_items(
        xp, view, alpha=0.5, beta=0.5, nr=0.5 * nr, dr=0.5 * dr, average="micro", batch=batch,
        soft_label=soft_label, volume_weights=weight_type,
    )


# ----------------------------------------------------------------------------------------------
# Matthews correlation
# ----------------------------------------------------------------------------------------------


@register(
    "mcc",
    input_kind="probabilities",
    target_kind="segmentation",
    layout="per_sample",
    options={
        "from_logits": Boolean(), "batch": Boolean(), "smooth": Real(0, None, closed="neither"),
    },
    hessian="indefinite",
    task="segmentation",
    formula="1 - (TP TN - FP FN) / sqrt((TP + FP)(TP + FN)(TN + FP)(TN + FN)), per sample",
    example=_example,
    module="MCCLoss",
)
def mcc(
    xp: Any, input: Any, target: Any, *, from_logits: bool = False, batch: bool = False,
    smooth: float = 1e-5,
) -> Items:
    """Matthews correlation loss: ``l = 1 - MCC`` with the soft confusion counts of a binary mask,
    ``MCC = (TP TN - FP FN) / sqrt((TP + FP)(TP + FN)(TN + FP)(TN + FN))``.

    ``TP = sum p t + s``, ``FP = sum p (1 - t) + s``, ``FN = sum (1 - p) t + s``,
    ``TN = sum (1 - p)(1 - t) + s`` over each sample's elements (over the batch with
    ``batch=True``); ``s = smooth`` (> 0) keeps the square root's argument positive when the
    target or the prediction is constant.

    Derivatives: with ``n`` elements, ``u = sum p + 2 s``, ``L = n + 4 s``,
    ``T2 = sum t + 2 s``, ``M2 = n - sum t + 2 s``, the numerator's gradient is
    ``dN_j = L t_j - T2`` (it is affine in ``p``) and
    ``MCC = N (T2 M2)^(-1/2) h(u)`` with ``h(u) = (u (L - u))^(-1/2)``; so
    ``dl/dp_j = -(T2 M2)^(-1/2) (dN_j h + N h')`` and the Hessian is
    ``-(T2 M2)^(-1/2) [h' (dN 1^T + 1 dN^T) + N h'' 1 1^T]`` (rank two, indefinite); through the
    sigmoid with ``from_logits``.

    Options: ``from_logits``, ``batch``, ``smooth`` (default 1e-5). segmentation_models_pytorch's
    ``MCCLoss(eps)`` sums over the whole batch: it is ``batch=True, smooth=eps``.

    Reference: Abhishek and Hamarneh, "Matthews correlation coefficient loss for deep
    convolutional networks: application to skin lesion segmentation", ISBI 2021.
    """
    view = SegmentationView(
        xp, input, target, mode="binary", from_logits=from_logits, ignore_index=None
    )
    p, t = view.p, view.t
    blocks = _Blocks(xp, view.n, 1, micro=False, batch=batch)
    eps = smooth
    a = blocks.sum(row_dot(xp, p, t))
    sp = blocks.sum(_row_sums(xp, p))
    st = blocks.sum(_row_sums(xp, t))
    count = float(view.s * (view.n if batch else 1))
    tp, fp, fn = a + eps, sp - a + eps, st - a + eps
    tn = count - sp - st + a + eps
    numer = tp * tn - fp * fn
    t2, m2, big_l = st + 2.0 * eps, count - st + 2.0 * eps, count + 4.0 * eps
    u = sp + 2.0 * eps
    q = u * (big_l - u)
    k = 1.0 / xp.sqrt(t2 * m2)
    h = 1.0 / xp.sqrt(q)
    h1 = -0.5 * (big_l - 2.0 * u) * h / q
    h2 = 0.75 * (big_l - 2.0 * u) ** 2 * h / (q * q) + h / q
    values = blocks.items(1.0 - numer * k * h)

    def grad_p(w: Any) -> Any:
        wr = view.row_weights(w)
        kk = blocks.spread(k) * wr
        # -k (dN h + N h') with dN = L t - T2: affine in t per row
        slope = -kk * (big_l * blocks.spread(h))
        offset = -kk * (blocks.spread(numer * h1 - t2 * h))
        return row_affine(xp, t, slope, offset)

    def parts(w: Any) -> tuple[Any, Any, Any, Any]:
        wr = view.row_weights(w)
        kk = blocks.spread(k) * wr
        d_n = big_l * t - blocks.spread(t2)
        return kk, d_n, blocks.spread(h1), blocks.spread(numer * h2)

    def hvp_p(w: Any, v: Any) -> Any:
        kk, d_n, h1_r, nh2 = parts(w)
        sv = blocks.spread(blocks.sum(_row_sums(xp, v)))
        dv = blocks.spread(blocks.sum(_row_sums(xp, d_n * v)))
        return -kk * (h1_r * (d_n * sv + dv) + nh2 * sv)

    def hess_p(w: Any) -> Any:
        kk, d_n, h1_r, nh2 = parts(w)
        return -kk * (2.0 * h1_r * d_n + nh2)

    return Items(
        values,
        grad=lambda w: view.to_input(grad_p(w)),
        hess=lambda w: _chain_hess(xp, view, hess_p(w), grad_p(w)),
        hvp=lambda w, v: _chain_hvp(xp, view, lambda u: hvp_p(w, u), grad_p(w), v),
    )


def _chain_hvp(xp: Any, view: SegmentationView, hvp_p: Any, g_p: Any, v: Any) -> Any:
    """The Hessian-vector product in the input, from the one in ``p`` (elementwise
    activations and probability inputs)."""
    n, c, s = view.n, view.c, view.s
    v3 = xp.reshape(v, (n, c, s))
    act = view.act
    if act is None:
        return xp.reshape(hvp_p(xp.reshape(v3, (n * c, s))), view.shape)
    u = xp.reshape(act.jvp(v3), (n * c, s))
    out = act.jvp(view.rows3(hvp_p(u))) + act.second(view.rows3(g_p), v3)
    return xp.reshape(out, view.shape)


def _chain_hess(xp: Any, view: SegmentationView, h_p: Any, g_p: Any) -> Any:
    """The Hessian's diagonal in the input from the one in ``p`` (activations whose Jacobian
    does not mix classes, or class-separated Hessians)."""
    act = view.act
    if act is None:
        return xp.reshape(h_p, view.shape)
    out = act.diag_through(view.rows3(h_p)) + act.second_diag(view.rows3(g_p))
    return xp.reshape(out, view.shape)
