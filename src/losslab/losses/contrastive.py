"""Contrastive and metric-learning losses: embeddings pulled towards their positives and pushed
from their negatives, mostly through cosine similarities of L2-normalised rows.

The losses over a similarity MATRIX (info_nce, supcon, arcface, cosface, circle,
multi_similarity) share inputs between items (a key is every query's negative; the class-weight
matrix serves every sample), so they declare ``couples_items``: the adapters pass the real
per-item cotangent into ``grad(w)``. Their derivatives are the matrix chain rule, written once
here. First order: the loss's derivative ``G = dL/dS`` with respect to the similarity matrix
``S = c a^ b^T`` (``c`` a constant such as ``1/temperature``), then ``c G b^`` (and ``c G^T a^``)
back through the row normalisation ``a^ = a / |a|``, whose Jacobian is ``J = (I - a^ a^T) / |a|``
(``_Normalized.back``). For a self-similarity ``S = c z^ z^T`` (supcon, circle) the row ``z^_i``
enters row i and column i: ``dL/dz^ = c (G + G^T) z^``.

Second order (w.r.t. the first input only, the keys / class weights held fixed): every one of
these losses is a sum of functions of the ROWS of ``S`` (CLIP's symmetric InfoNCE adds functions
of its columns), and each row function's Hessian has the form ``diag(D_i) + sum_k gamma_ik q_ik
q_ik^T`` (a softmax's ``diag(p) - p p^T``, circle's three rank-one terms): ``_Curvature`` holds
``D``, the ``(gamma, Q)`` pairs, and applies the Hessian to a direction ``E`` of ``S``. Then

- ``hvp``: ``da^ = J v``, ``dS = c da^ b^T`` (self: ``c (da^ z^T + z^ da^T)``), ``dG = H_S[dS]``,
  ``d(dL/da^) = c dG b^`` (self: ``c ((dG + dG^T) z^ + (G + G^T) da^)``), and back through the
  normalisation with its own second derivative (``_Normalized.back_hvp``): for ``g = dL/da^``,
  ``d(J g) = J dg - (da^ (a^ . g) + a^ (da^ . g)) / |a| - (J g)(a^ . v) / |a|``.
- ``hess`` (the diagonal): row i's block of the Hessian w.r.t. ``a^_i`` is
  ``H_i = c^2 [b^T diag(D~_i) b + sum_k gamma_ik (b^T q_ik)(b^T q_ik)^T]``, with ``D~`` = ``D``
  plus the diagonal entries the column terms put in row i (self-similarity: plus the transposed
  diagonal entries ``d^2 f / dS_ji^2`` of every row, as ``z^_i`` is also column i). Its diagonal,
  ``H_i a^_i`` and ``a^_i^T H_i a^_i`` are three matrix products (``D~ @ (b * b)``,
  ``(D~ * cos) @ b``, ``Q_k @ b``), and ``(H_dd - 2 a^_d (H a^)_d + a^_d^2 a^T H a^) / |a|^2``
  plus the normalisation's own term ``(-2 a^_d (g_d - a^_d (a^ . g)) - (a^ . g)(1 - a^_d^2)) /
  |a|^2`` is the diagonal w.r.t. ``a`` (``_Normalized.second``).

These Hessians are indefinite (the normalisation alone makes them so: the loss is constant along
``a``, where the curvature is negative). The pair and triplet losses have their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import array_api_compat
import numpy as np

from losslab.losses._constraints import Boolean, Choice, Real
from losslab.losses._primitives import (
    SoftmaxPass,
    add_at_labels,
    log_softmax,
    logsumexp,
    sigmoid,
    softplus,
)
from losslab.losses._registry import Items, register
from losslab.losses._validation import check_ndim, check_same_dtype
from losslab.losses.embedding import triplet_margin

__all__ = [
    "info_nce", "supcon", "arcface", "cosface", "contrastive", "triplet_margin_with_distance",
    "circle", "multi_similarity",
]

_GAP = 1e-2  # examples keep kinks at least this far away
TEMPERATURE = Real(0, None, closed="neither")


def _rowsum(xp: Any, a: Any) -> Any:
    return xp.sum(a, axis=1, keepdims=True)


def _t(xp: Any, a: Any) -> Any:
    return xp.permute_dims(a, (1, 0))


class _Normalized:
    """Rows ``a^ = a / |a|`` of an (N, D) array and the chain rule back through them, to first
    and second order."""

    def __init__(self, xp: Any, a: Any) -> None:
        self.xp = xp
        norm = xp.sqrt(_rowsum(xp, a * a))
        self.norm = xp.where(norm > 0, norm, xp.ones_like(norm))  # a zero row: gradient 0
        self.unit = a / self.norm

    def back(self, g: Any, scale: Any = 1.0) -> Any:
        """``scale * d/da`` from ``g = d/da^``: ``scale (g - a^ (a^ . g)) / |a|``. The Jacobian is
        symmetric, so this is also the tangent ``da^`` of a step ``g`` in ``a``."""
        u = self.unit
        coef = scale / self.norm if not (isinstance(scale, float) and scale == 1.0) else (
            1.0 / self.norm)
        return (g - u * _rowsum(self.xp, u * g)) * coef

    def back_hvp(self, g: Any, dg: Any, v: Any) -> Any:
        """The change of ``back(g)`` as ``a`` moves along ``v`` and ``g`` along ``dg``."""
        xp, u, r = self.xp, self.unit, self.norm
        du = self.back(v)
        return (self.back(dg) - (du * _rowsum(xp, u * g) + u * _rowsum(xp, du * g)) / r
                - self.back(g) * (_rowsum(xp, u * v) / r))

    def second(self, g: Any, h_dd: Any, h_a: Any, h_aa: Any) -> Any:
        """The diagonal of the Hessian w.r.t. ``a`` of ``F(a^)``, given ``g = dF/da^`` and, of
        the Hessian ``H`` of ``F`` w.r.t. each row ``a^_i``: its diagonal ``h_dd``, ``H a^``
        (``h_a``) and ``a^T H a^`` (``h_aa``, (N, 1))."""
        u = self.unit
        ug = _rowsum(self.xp, u * g)
        uu = u * u
        return (h_dd - 2.0 * u * h_a + uu * h_aa - 2.0 * u * (g - u * ug) - ug * (1.0 - uu)) / (
            self.norm * self.norm)


class _Curvature:
    """The Hessian of a loss ``f(S)`` w.r.t. its (N, M) similarity matrix, where ``f`` sums
    functions of the rows (``rows``) and columns (``cols``) of ``S``: applied to a direction
    ``E``, ``diag * E + sum_k gamma_k q_k rowsum(q_k E) + sum_k gamma_k q_k colsum(q_k E)``
    (``gamma`` a number or broadcasting per row / column, ``q`` (N, M))."""

    def __init__(self, xp: Any, diag: Any, rows: Sequence[tuple[Any, Any]] = (),
                 cols: Sequence[tuple[Any, Any]] = ()) -> None:
        self.xp, self.diag, self.rows, self.cols = xp, diag, tuple(rows), tuple(cols)

    def apply(self, e: Any) -> Any:
        xp = self.xp
        out = self.diag * e
        for gamma, q in self.rows:
            out = out + (gamma * q) * _rowsum(xp, q * e)
        for gamma, q in self.cols:
            out = out + (gamma * q) * xp.sum(q * e, axis=0, keepdims=True)
        return out

    def row_block_diagonal(self, self_similar: bool) -> Any:
        """``D~``: the diagonal part of row i's Hessian block (see the module docstring)."""
        d = self.diag
        for gamma, q in self.cols:
            d = d + gamma * q * q
        if self_similar:
            full = d
            for gamma, q in self.rows:
                full = full + gamma * q * q
            d = d + _t(self.xp, full)
        return d


class _Similarity:
    """``S = c a^ b^T`` of the first input's rows ``a`` (the differentiable one of the second
    derivatives) and ``b``'s (held fixed), or ``c a^ a^T`` (``other=None``), with ``hess`` and
    ``hvp`` through it given ``G = dL/dS`` and the loss's ``_Curvature`` (module docstring)."""

    def __init__(self, xp: Any, a: _Normalized, other: Any, scale: float) -> None:
        self.xp, self.a, self.other, self.c = xp, a, other, scale

    def _b(self) -> Any:
        return self.a.unit if self.other is None else self.other

    def grad_a(self, g: Any) -> Any:
        """``dL/da^`` from ``G``."""
        xp = self.xp
        if self.other is None:
            return self.c * xp.matmul(g + _t(xp, g), self.a.unit)
        return self.c * xp.matmul(g, self.other)

    def hvp(self, g: Any, curv: _Curvature, v: Any) -> Any:
        xp, a, c = self.xp, self.a.unit, self.c
        da = self.a.back(v)
        if self.other is None:
            ds = xp.matmul(da, _t(xp, a))
            dg = curv.apply(c * (ds + _t(xp, ds)))
            dga = c * (xp.matmul(dg + _t(xp, dg), a) + xp.matmul(g + _t(xp, g), da))
        else:
            dg = curv.apply(c * xp.matmul(da, _t(xp, self.other)))
            dga = c * xp.matmul(dg, self.other)
        return self.a.back_hvp(self.grad_a(g), dga, v)

    def hess(self, g: Any, curv: _Curvature, cos: Any) -> Any:
        """The diagonal; ``cos = a^ b^T`` (the similarities without ``c``)."""
        xp, b, c2 = self.xp, self._b(), self.c * self.c
        d = curv.row_block_diagonal(self.other is None)
        h_dd = xp.matmul(d, b * b)
        h_a = xp.matmul(d * cos, b)
        h_aa = _rowsum(xp, d * cos * cos)
        for gamma, q in curv.rows:
            qb = xp.matmul(q, b)
            qc = _rowsum(xp, q * cos)
            h_dd = h_dd + gamma * qb * qb
            h_a = h_a + gamma * qb * qc
            h_aa = h_aa + gamma * qc * qc
        return self.a.second(self.grad_a(g), c2 * h_dd, c2 * h_a, c2 * h_aa)


def _check_rows(xp: Any, name: str, a: Any) -> None:
    check_ndim(a, (2,), name, "(N, D)")


def _empty(xp: Any, *inputs: Any, denominator: Any = None) -> Items:
    """An empty batch: no items, zero gradients (a matrix of 0 rows has no row maxima)."""
    first = inputs[0]
    grads = tuple(xp.zeros_like(a) for a in inputs)
    return Items(xp.zeros((0,), dtype=first.dtype, device=array_api_compat.device(first)),
                 grad=lambda w: grads if len(grads) > 1 else grads[0],
                 hess=lambda w: xp.zeros_like(first), hvp=lambda w, v: xp.zeros_like(first),
                 denominator=denominator)


def _masked_logsumexp(xp: Any, x: Any, mask: Any) -> Any:
    """``logsumexp`` over the masked entries of each row; ``-inf`` for a row with none (and no
    ``log 0`` warning)."""
    any_ = xp.any(mask, axis=1)
    filler = xp.where(any_[:, None], xp.zeros_like(x) - math.inf, xp.zeros_like(x))
    lse = logsumexp(xp, xp.where(mask, x, filler), axis=1)
    return xp.where(any_, lse, -math.inf)


def _eye(xp: Any, n: int, m: int, like: Any) -> Any:
    return xp.eye(n, m, dtype=like.dtype, device=array_api_compat.device(like))


def _transposed_weight(xp: Any, w: Any) -> Any:
    """Per-item weights (N, 1) as weights of the columns (1, N); a number stays a number."""
    return w if isinstance(w, float) else _t(xp, w)


# InfoNCE.


def _info_nce_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    n, d = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    extra = 0 if options.get("symmetric", False) else int(rng.integers(0, 3))
    q = rng.normal(size=(n, d))
    k = np.concatenate([q + 0.5 * rng.normal(size=(n, d)), rng.normal(size=(extra, d))])
    return q.astype(dtype), k.astype(dtype)


@register(
    "info_nce",
    input_kind="real",
    target_kind=None,
    layout="feature_axis",
    options={"temperature": TEMPERATURE, "symmetric": Boolean()},
    hessian="indefinite",
    task="contrastive",
    formula="-log softmax(q^ k^T / t)_ii  (cosine similarities; keys past N are negatives)",
    example=_info_nce_example,
    differentiable=("query", "key"),
    couples_items=True,
    module="InfoNCELoss",
)
def info_nce(
    xp: Any, query: Any, key: Any, *, temperature: float = 0.07, symmetric: bool = False
) -> Items:
    """InfoNCE / NT-Xent with in-batch negatives: ``l_i = -log softmax_j(S_ij)_i``,
    ``S = q^ k^T / t``.

    ``query`` (N, D) and ``key`` (M, D), M >= N, are normalised inside (``q^ = q / |q|``), as
    CLIP and SimCLR's NT-Xent do, so ``S`` holds cosine similarities over the temperature ``t``.
    Row i's positive is key i; every other key is its negative, keys N..M-1 being explicit extra
    negatives shared by all queries (MoCo's queue, mined hard negatives): pass
    ``concat([positive_keys, negatives])``. ``symmetric=True`` is CLIP's two-way loss
    ``l_i = (row_i + column_i) / 2`` with ``column_i = -log softmax_j(S_ji)_i`` (keys classify
    queries too; needs M == N). One loss per query.

    Gradient (``P`` the row softmax of ``S``, ``E`` the (N, M) identity): ``dL/dS = W (P - E)``
    (``W`` the per-query weights; symmetric: the mean with the column term ``(P^c - E) W``,
    ``P^c`` the column softmax); ``dL/dq^ = (dL/dS) k^ / t``, ``dL/dk^ = (dL/dS)^T q^ / t``, then
    through the normalisation ``(g - x^ (x^ . g)) / |x|``. Returns ``(grad_query, grad_key)``.
    Hessian w.r.t. the query (keys fixed; the module docstring has the chain rule): the
    softmax's curvature ``d^2 L / dS_i dS_i = w_i (diag(P_i) - P_i P_i^T)`` per row (symmetric:
    halved, plus ``w_j (diag(P^c_j) - P^c_j P^c_j^T) / 2`` per column), through ``S = q^ k^T /
    t``. One-way, each query's block is ``J_i [k^T (diag P_i - P_i P_i^T) k / t^2] J_i`` plus
    the normalisation's term; indefinite.
    Computed as one fused softmax pass per direction (``SoftmaxPass``: torch's softmax kernel on
    torch) whose buffer becomes ``P - E`` in place, the weights and ``1/t`` applied to the
    (N, D) products rather than the (N, M) matrix. Stable by construction: ``log p_ii`` from the
    max-shifted logits, so a temperature of 0.01 with similarities near 1 (logits near 100) is
    exact.

    Options: ``temperature`` (> 0; 0.07 as CLIP's initial value and MoCo), ``symmetric``.
    Mapping: CLIP's ``(cross_entropy(logits, arange) + cross_entropy(logits.T, arange)) / 2`` with
    ``logits = q^ k^T * logit_scale`` is ``info_nce(q, k, temperature=1/logit_scale,
    symmetric=True)``; info-nce-pytorch's ``InfoNCE(negative_mode="unpaired")`` is the one-way
    loss with the negatives appended. For SimCLR's NT-Xent, whose negatives include the other
    view's samples, use ``supcon`` on ``concat([q, k])`` with labels ``concat([arange(N),
    arange(N)])``.
    Reference: van den Oord, Li and Vinyals, "Representation Learning with Contrastive Predictive
    Coding" (2018), eq. (4); Radford et al., "Learning Transferable Visual Models From Natural
    Language Supervision" (CLIP), ICML 2021, Fig. 3.
    """
    _check_rows(xp, "query", query)
    _check_rows(xp, "key", key)
    check_same_dtype(query, key, "query", "key")
    n, m = int(query.shape[0]), int(key.shape[0])
    if int(key.shape[1]) != int(query.shape[1]) or m < n:
        raise ValueError(
            f"key must have shape (M, {int(query.shape[1])}) with M >= N = {n} (row i the "
            f"positive of query i, rows past N extra negatives); got {tuple(key.shape)}."
        )
    if symmetric and m != n:
        raise ValueError(
            f"symmetric=True needs as many keys as queries; got {m} keys, {n} queries."
        )
    if n == 0:
        return _empty(xp, query, key)
    inv_t = 1.0 / temperature
    qn, kn = _Normalized(xp, query), _Normalized(xp, key)
    # 1/t on the (N, D) queries, not on the (N, M) similarities.
    s = xp.matmul(qn.unit * inv_t, _t(xp, kn.unit))
    labels = xp.reshape(xp.arange(n, device=array_api_compat.device(s)), (n, 1))
    rows = SoftmaxPass(xp, s, labels)
    values = -rows.log_p_y[:, 0]
    cols = None
    if symmetric:
        cols = SoftmaxPass(xp, _t(xp, s), labels)  # rows of S^T: the column softmax
        values = 0.5 * (values - cols.log_p_y[:, 0])

    def grad(w: Any) -> tuple[Any, Any]:
        if cols is not None:
            half = 0.5 * w
            g = rows.combine(half, labels, half)
            g += _t(xp, cols.combine(half, labels, half))
            q_side, scale_q, scale_k = qn.unit, inv_t, inv_t
        else:
            g = rows.combine(1.0, labels, 1.0)  # P - E in the softmax's buffer
            plain = isinstance(w, float)  # else per-query weights (N, 1): fold into q^
            q_side = qn.unit if plain else qn.unit * w
            scale_q, scale_k = w * inv_t, (w * inv_t if plain else inv_t)
        return (qn.back(xp.matmul(g, kn.unit), scale_q),
                kn.back(xp.matmul(_t(xp, g), q_side), scale_k))

    def parts(w: Any) -> tuple[Any, _Curvature]:
        """``G = dL/dS`` and the curvature, from fresh copies of the softmaxes."""
        p = rows.p
        g = add_at_labels(xp, p * w, labels, -w)
        curv = _Curvature(xp, p * w, rows=[(-w, p)])
        if cols is not None:
            pc = cols.p  # (S^T coordinates)
            gc = add_at_labels(xp, pc * w, labels, -w)
            wc = _transposed_weight(xp, w)
            pc = _t(xp, pc)
            g = 0.5 * (g + _t(xp, gc))
            curv = _Curvature(xp, 0.5 * w * p + 0.5 * wc * pc, rows=[(-0.5 * w, p)],
                              cols=[(-0.5 * wc, pc)])
        return g, curv

    sim = _Similarity(xp, qn, kn.unit, inv_t)

    def hess(w: Any) -> Any:
        g, curv = parts(w)
        return sim.hess(g, curv, s * temperature)

    def hvp(w: Any, v: Any) -> Any:
        g, curv = parts(w)
        return sim.hvp(g, curv, v)

    return Items(values, grad=grad, hess=hess, hvp=hvp)


# Supervised contrastive.


def _group_example(rng: np.random.Generator, dtype: Any = "float64", **_: Any):
    n, d = int(rng.integers(2, 7)), int(rng.integers(2, 6))
    y = rng.integers(0, max(2, n // 2), size=n)
    z = rng.normal(size=(n, d)) + 1.5 * rng.normal(size=(int(y.max()) + 1, d))[y]
    return z.astype(dtype), y.astype(np.int64)


def _pair_masks(xp: Any, target: Any, like: Any) -> tuple[Any, Any, Any]:
    """``(positive, negative, off-diagonal)`` boolean (N, N) masks from group labels."""
    n = int(target.shape[0])
    same = target[:, None] == target[None, :]
    off = ~(_eye(xp, n, n, like) > 0)
    return same & off, ~same, off


@register(
    "supcon",
    input_kind="real",
    target_kind="group",
    layout="feature_axis",
    options={"temperature": TEMPERATURE},
    hessian="indefinite",
    task="contrastive",
    formula="-mean_{p in P(i)} log softmax_{a != i}(z^_i . z^_a / t)_p",
    example=_group_example,
    couples_items=True,
    module="SupConLoss",
)
def supcon(xp: Any, input: Any, target: Any, *, temperature: float = 0.07) -> Items:
    """Supervised contrastive loss (SupCon's L_out): ``l_i = -1/|P(i)| sum_{p in P(i)}
    log(exp(S_ip) / sum_{a != i} exp(S_ia))``, ``S = z^ z^T / t``.

    ``input`` (N, D) holds the embeddings (normalised inside), ``target`` (N,) integer labels:
    ``P(i)`` is every other sample with ``i``'s label. Several views of a sample are several rows
    with the same label. An anchor without positives has loss 0 and does not count:
    ``reduction="mean"`` divides by the number of anchors that have positives (as
    pytorch-metric-learning's SupConLoss; the authors' code divides by N instead: multiply by
    that count / N). Computed as ``logsumexp_{a != i} S_ia - mean_p S_ip`` (stable).

    Gradient: ``dL/dS_ia = w_i (P_ia - [a in P(i)] / |P(i)|)`` for anchors with positives
    (``P`` the softmax over ``a != i``), and since ``S`` is symmetric in the embeddings
    ``dL/dz^ = (G + G^T) z^ / t``, then through the normalisation. Hessian: each anchor's row
    of ``S`` has the softmax's curvature ``w_i (diag(P_i) - P_i P_i^T)`` (the positives' mean is
    linear in ``S``), through the self-similarity ``S = z^ z^T / t`` (every row enters its own
    row and column; the module docstring has the chain rule); indefinite.

    Options: ``temperature`` (> 0; 0.07 in the paper, 0.1 in pytorch-metric-learning).
    Mapping: the authors' ``SupConLoss(temperature, base_temperature)`` multiplies by
    ``temperature / base_temperature`` (1 at their defaults) and takes features (bsz, n_views, D):
    reshape to (bsz * n_views, D) with labels repeated. With two views and one label per pair this
    is SimCLR's NT-Xent (pytorch-metric-learning's NTXentLoss).
    Reference: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020, eq. (2).
    """
    _check_rows(xp, "input", input)
    n = int(input.shape[0])
    if tuple(target.shape) != (n,):
        raise ValueError(f"target must have shape ({n},) (one label per row); got "
                         f"{tuple(target.shape)}.")
    if n == 0:
        return _empty(xp, input, denominator=0.0)
    zn = _Normalized(xp, input)
    s = xp.matmul(zn.unit, xp.permute_dims(zn.unit, (1, 0))) / temperature
    pos, _, off = _pair_masks(xp, target, s)
    posf = xp.astype(pos, s.dtype)
    count = xp.sum(posf, axis=1)
    has = count > 0
    inv_count = xp.where(has, 1.0 / xp.where(has, count, 1.0), 0.0)
    s_off = xp.where(off, s, -math.inf)
    lse = _masked_logsumexp(xp, s, off)
    mean_pos = xp.sum(posf * s, axis=1) * inv_count
    values = xp.where(has, lse - mean_pos, 0.0)
    denominator = xp.sum(xp.astype(has, s.dtype))

    def parts(w: Any) -> tuple[Any, Any, Any]:
        """``G = dL/dS`` and the softmax ``P`` over the other samples; ``hw`` the weights of
        anchors with positives."""
        p = xp.where(off, xp.exp(s_off - lse[:, None]), 0.0)
        hw = w * xp.astype(has, s.dtype)[:, None]
        return hw * (p - posf * inv_count[:, None]), p, hw

    def grad(w: Any) -> Any:
        g = parts(w)[0]
        g = (g + _t(xp, g)) / temperature
        return zn.back(xp.matmul(g, zn.unit))

    sim = _Similarity(xp, zn, None, 1.0 / temperature)

    def curvature(w: Any) -> tuple[Any, _Curvature]:
        g, p, hw = parts(w)
        return g, _Curvature(xp, hw * p, rows=[(-hw, p)])

    return Items(values, grad=grad, denominator=denominator,
                 hess=lambda w: sim.hess(*curvature(w), s * temperature),
                 hvp=lambda w, v: sim.hvp(*curvature(w), v))


# ArcFace and CosFace.


def _margin_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    """Embeddings, class weights and labels; D >= C (the catalog's class-index test counts C from
    the embeddings' second axis), target angles away from the margin branch's switch."""
    margin = float(options.get("margin", 0.5))
    easy = options.get("easy_margin", False)
    for _attempt in range(1000):
        c = int(rng.integers(2, 4))
        n, d = int(rng.integers(1, 5)), int(rng.integers(c, 6))
        x, w = rng.normal(size=(n, d)), rng.normal(size=(c, d))
        y = rng.integers(0, c, size=n)
        cos = np.sum((x / np.linalg.norm(x, axis=1, keepdims=True))
                     * (w / np.linalg.norm(w, axis=1, keepdims=True))[y], axis=1)
        switch = 0.0 if easy else math.cos(math.pi - margin)
        if np.min(np.abs(cos - switch)) >= 5 * _GAP and np.max(np.abs(cos)) <= 1 - _GAP:
            return x.astype(dtype), y.astype(np.int64), w.astype(dtype)
    raise RuntimeError("could not draw a margin example away from its switch")


def _margin_softmax(
    xp: Any, input: Any, target: Any, weight: Any, scale: float, phi: Any
) -> Items:
    """Softmax cross-entropy over ``scale * cos`` with the target entry replaced by
    ``scale * phi``, ``phi`` a function of the target angle theta.

    ``phi(cos, sin)`` returns ``(phi, -dphi/dtheta, d^2 phi/dtheta^2)`` per sample. Angles enter
    through unit tangent vectors (``u``: at ``x^``, towards the class centre), so ``sin theta``
    keeps full accuracy near 0 and pi and the gradient stays finite there: w.r.t. ``x`` the
    target logit's gradient is ``scale (-dphi/dtheta) u / |x|`` (``grad theta = -u / |x|``).

    The Hessian w.r.t. ``x`` is the plain cosine softmax's (``_Similarity``, ``phi = cos``)
    plus, per sample, ``Delta H`` for the target entry's difference from ``cos theta``; with
    ``s`` the scale, ``w`` the weight, ``p_y``, ``g_y = s w (p_y - 1)``, ``sigma1 = -phi' -
    sin theta``, ``sigma2 = phi'^2 - sin^2 theta``, ``mu = J (P w^)`` (the softmax-mean centre
    through the normalisation), ``x^``, ``u``, ``r = |x|``:
    ``Delta H = s^2 w p_y [(sigma2 - p_y sigma1^2) u u^T / r^2 - sigma1 (mu u^T + u mu^T) / r]
    + g_y [(phi'' + cos) u u^T - sigma1 (x^ u^T + u x^T) - cos sigma1 / sin theta P_perp] / r^2``,
    ``P_perp = I - x^ x^T - u u^T`` (the directions normal to both; its ``1 / sin theta`` is the
    cone point of the angle at theta = 0, taken as 0 at exactly 0, like the gradient's
    direction). For cosface, and arcface's fallback branches, ``phi - cos`` is constant:
    ``Delta H = 0``."""
    _check_rows(xp, "input", input)
    _check_rows(xp, "weight", weight)
    check_same_dtype(input, weight, "input", "weight")
    if int(weight.shape[1]) != int(input.shape[1]):
        raise ValueError(f"weight must have shape (C, {int(input.shape[1])}) (one row per class); "
                         f"got {tuple(weight.shape)}.")
    n, c = int(input.shape[0]), int(weight.shape[0])
    if tuple(target.shape) != (n,):
        raise ValueError(f"target must have shape ({n},); got {tuple(target.shape)}.")
    xn, wn = _Normalized(xp, input), _Normalized(xp, weight)
    cos = xp.matmul(xn.unit, _t(xp, wn.unit))
    classes = xp.arange(c, device=array_api_compat.device(target))
    onehot = xp.astype(target[:, None] == classes[None, :], cos.dtype)
    w_y = xp.matmul(onehot, wn.unit)  # (N, D): each sample's class weight (normalised)
    cos_y = _rowsum(xp, xn.unit * w_y)
    # sin(theta) as the norm of the tangent component: accurate near 0 and pi, where
    # sqrt(1 - cos^2) has lost half its digits.
    tan_x = w_y - cos_y * xn.unit
    sin_y = xp.sqrt(_rowsum(xp, tan_x * tan_x))
    phi_v, slope, curve = phi(cos_y, sin_y)
    sigma1 = slope - sin_y  # -dphi/dtheta minus the cosine's own
    logits = scale * (cos + onehot * (phi_v - cos_y))
    log_p = log_softmax(xp, logits, axis=1)
    values = -_rowsum(xp, log_p * onehot)[:, 0]
    has_sin = sin_y > 0
    u_x = tan_x / xp.where(has_sin, sin_y, 1.0)  # unit tangents, 0 at theta = 0 exactly

    def gz_of(w: Any) -> tuple[Any, Any]:
        gz = (w * scale) * (xp.exp(log_p) - onehot)  # dL/dcos of the plain cosine softmax
        return gz, _rowsum(xp, gz * onehot)

    def grad(w: Any) -> tuple[Any, Any]:
        gz, gy = gz_of(w)
        tan_w = xn.unit - cos_y * w_y
        u_w = tan_w / xp.where(has_sin, xp.sqrt(_rowsum(xp, tan_w * tan_w)), 1.0)
        k = gy * sigma1  # the target logit's angular part beyond the cosine's
        gx = xp.matmul(gz, wn.unit) + k * u_x
        gw = xp.matmul(_t(xp, gz), xn.unit) + xp.matmul(_t(xp, onehot), k * u_w)
        return xn.back(gx), wn.back(gw)

    sim = _Similarity(xp, xn, wn.unit, 1.0)

    def second(w: Any) -> tuple[Any, _Curvature, Any]:
        """``G``, the cosine softmax's curvature, and ``Delta H``'s coefficients."""
        gz, gy = gz_of(w)
        p = xp.exp(log_p)
        ws2 = w * (scale * scale)
        p_y = _rowsum(xp, p * onehot)
        r = xn.norm
        mu = xn.back(xp.matmul(p, wn.unit))
        rho = -cos_y * sigma1 / xp.where(has_sin, sin_y, 1.0)  # P_perp's, over r^2 / g_y
        k_uu = (ws2 * p_y * (slope * slope - sin_y * sin_y - p_y * sigma1 * sigma1)
                + gy * (curve + cos_y - rho)) / (r * r)
        k_perp = gy * rho / (r * r)
        k_mu = -ws2 * p_y * sigma1 / r
        k_a = -gy * sigma1 / (r * r)
        return gz, _Curvature(xp, ws2 * p, rows=[(-ws2, p)]), (k_uu, k_perp, k_mu, mu, k_a)

    def hess(w: Any) -> Any:
        gz, curv, (k_uu, k_perp, k_mu, mu, k_a) = second(w)
        a, u = xn.unit, u_x
        delta = k_uu * u * u + k_perp * (1.0 - a * a) + 2.0 * (k_mu * mu + k_a * a) * u
        return sim.hess(gz, curv, cos) + delta

    def hvp(w: Any, v: Any) -> Any:
        gz, curv, (k_uu, k_perp, k_mu, mu, k_a) = second(w)
        a, u = xn.unit, u_x
        uv, av, muv = _rowsum(xp, u * v), _rowsum(xp, a * v), _rowsum(xp, mu * v)
        delta = (k_uu * uv * u + k_perp * (v - av * a) + k_mu * (uv * mu + muv * u)
                 + k_a * (uv * a + av * u))
        return sim.hvp(gz, curv, v) + delta

    return Items(values, grad=grad, hess=hess, hvp=hvp)


_MARGIN_COMMON: dict[str, Any] = dict(
    input_kind="real",
    target_kind="class_index",
    layout="feature_axis",
    hessian="indefinite",
    task="metric learning",
    example=_margin_example,
    differentiable=("input", "weight"),
    couples_items=True,
    classes="weight",
)


@register(
    "arcface",
    options={"scale": TEMPERATURE, "margin": Real(0, math.pi, closed="left"),
             "easy_margin": Boolean()},
    formula="cross-entropy over s cos(theta_j), target s cos(theta_y + m)",
    module="ArcFaceLoss",
    **_MARGIN_COMMON,
)
def arcface(
    xp: Any, input: Any, target: Any, weight: Any, *, scale: float = 64.0, margin: float = 0.5,
    easy_margin: bool = False,
) -> Items:
    """ArcFace (additive angular margin): softmax cross-entropy over logits ``s cos(theta_j)``,
    the target's replaced by ``s cos(theta_y + m)``.

    Called as ``arcface(input, target, weight)``: ``input`` (N, D) embeddings, ``target`` (N,)
    class indices in [0, C), ``weight`` (C, D) class centres (the learnable matrix that
    insightface's and pytorch-metric-learning's modules hold); embeddings and centres are both
    normalised inside, and ``theta_j`` is the angle between a sample and centre j.
    ``cos(theta + m) = cos(theta) cos(m) - sin(theta) sin(m)`` with ``sin(theta)`` computed as
    the norm of the tangent ``w^_y - cos(theta) x^`` (full accuracy near 0 and pi).

    Where ``theta + m > pi`` the margin stops penalising (cos(theta + m) turns upward); as in
    insightface, the target logit there is ``s (cos(theta) - m sin(m))`` (``theta > pi - m``), a
    branch that is NOT continuous with the arc at ``theta = pi - m`` (a jump of ``1 - cos(m) -
    m sin(m)``). ``easy_margin=True`` applies the margin only where ``cos(theta) > 0`` and uses
    ``cos(theta)`` itself elsewhere (also discontinuous, at ``theta = pi/2``).
    pytorch-metric-learning's ArcFaceLoss has no fallback (and its margin is in degrees).

    Gradient: the softmax gradient ``G = W (softmax - onehot) s`` w.r.t. the cosines, with the
    target entry's ``dphi/dcos = cos(m)`` on the arc branch, plus the sine's part
    ``s W (p_y - 1) sin(m) cos(theta) u`` along the unit tangents ``u`` (finite as theta -> 0,
    where the angle has a cone point and the direction of ``u`` is taken as 0 at exactly 0);
    then ``G w^`` and ``G^T x^`` through the two normalisations. Returns ``(grad_input,
    grad_weight)``. Hessian w.r.t. the input (class centres fixed), piecewise (the branch
    switch): the cosine softmax's ``s^2 w J (W^T (diag P - P P^T) W) J`` and normalisation term,
    plus the target angle's ``Delta H`` (see ``_margin_softmax``) with ``-dphi/dtheta =
    sin(theta + m)``, ``d^2 phi/dtheta^2 = -cos(theta + m)`` on the arc (its ``1 / sin theta``
    part is the cone point of the angle at theta = 0); 0 on the fallback branches. Indefinite.

    Options: ``scale`` s (> 0; 64), ``margin`` m in [0, pi) (0.5 rad), ``easy_margin``.
    Same as insightface's ``ArcMarginProduct`` / ``CombinedMarginLoss(s, 1.0, m, 0.0)`` followed
    by cross-entropy.
    Reference: Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
    CVPR 2019, eq. (3).
    """
    cos_m, sin_m = math.cos(margin), math.sin(margin)
    switch = 0.0 if easy_margin else math.cos(math.pi - margin)

    def phi(c: Any, s: Any) -> tuple[Any, Any, Any]:
        arc = c > switch
        fallback = c if easy_margin else c - margin * sin_m
        value = xp.where(arc, c * cos_m - s * sin_m, fallback)  # cos(theta + m)
        slope = xp.where(arc, s * cos_m + c * sin_m, s)  # sin(theta + m)
        return value, slope, xp.where(arc, -value, -c)

    return _margin_softmax(xp, input, target, weight, scale, phi)


@register(
    "cosface",
    options={"scale": TEMPERATURE, "margin": Real()},
    formula="cross-entropy over s cos(theta_j), target s (cos(theta_y) - m)",
    module="CosFaceLoss",
    **_MARGIN_COMMON,
)
def cosface(
    xp: Any, input: Any, target: Any, weight: Any, *, scale: float = 64.0, margin: float = 0.35
) -> Items:
    """CosFace (large margin cosine loss): softmax cross-entropy over ``s cos(theta_j)``, the
    target's replaced by ``s (cos(theta_y) - m)``.

    Called as ``cosface(input, target, weight)``: ``input`` (N, D) embeddings, ``target`` (N,)
    class indices, ``weight`` (C, D) class centres; both normalised inside.
    Gradient: ``G = W (softmax - onehot) s`` w.r.t. the cosine matrix (the margin is a constant
    shift), then ``G w^`` and ``G^T x^`` through the normalisations. Returns ``(grad_input,
    grad_weight)``. Hessian w.r.t. the input (class centres fixed): the softmax's curvature
    ``s^2 w (diag P - P P^T)`` through ``cos = x^ w^T`` and the normalisation (module
    docstring); indefinite.

    Options: ``scale`` s (> 0; 64), ``margin`` m (0.35). Same as insightface's
    ``CombinedMarginLoss(s, 1.0, 0.0, m)`` and pytorch-metric-learning's CosFaceLoss (which holds
    the weight itself).
    Reference: Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition",
    CVPR 2018, eq. (4).
    """

    def phi(c: Any, s: Any) -> tuple[Any, Any, Any]:
        return c - margin, s, -c

    return _margin_softmax(xp, input, target, weight, scale, phi)


# Contrastive (pairs).


def _pair_example(rng: np.random.Generator, dtype: Any = "float64", margin: float = 1.0, **_: Any):
    n, d = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    for _attempt in range(1000):
        x1 = rng.normal(size=(n, d))
        x2 = x1 + rng.normal(scale=0.6, size=(n, d))
        y = rng.choice(np.array([-1.0, 1.0]), size=n)
        dist = np.linalg.norm(x1 - x2, axis=1)
        if np.min(np.abs(dist - margin)) >= _GAP and np.min(dist) >= _GAP:
            return x1.astype(dtype), x2.astype(dtype), y.astype(dtype)
    raise RuntimeError("could not draw a contrastive example away from its kink")


@register(
    "contrastive",
    input_kind="real",
    target_kind="sign",
    layout="feature_axis",
    options={"margin": Real(0, None, closed="neither")},
    hessian="indefinite",
    task="metric learning",
    formula="1/2 d^2 if y = 1; 1/2 max(0, margin - d)^2 if y = -1, d = ||x1 - x2||",
    example=_pair_example,
    differentiable=("input1", "input2"),
    module="ContrastiveLoss",
)
def contrastive(xp: Any, input1: Any, input2: Any, target: Any, *, margin: float = 1.0) -> Items:
    """Contrastive loss (Hadsell, Chopra and LeCun): ``l = 1/2 d^2`` for a similar pair
    (``y = 1``) and ``1/2 max(0, m - d)^2`` for a dissimilar one (``y = -1``),
    ``d = ||x1 - x2||_2`` over the last axis.

    Labels are -1/+1 as torch's cosine_embedding and hinge_embedding losses (the paper's ``Y = 0``
    similar is our ``+1``; 0/1 labels are refused: use ``2 y - 1`` after making 1 "similar").
    Gradient w.r.t. ``x1`` with ``u = x1 - x2``: ``u`` (similar), ``-(m - d) u / d`` (dissimilar
    inside the margin; 0 outside, and 0 at ``d = 0`` where the direction is undefined); the
    gradient w.r.t. ``x2`` is its negative. Hessian w.r.t. ``x1``: ``I`` (similar),
    ``I - (m/d) (I - n n^T)`` with ``n = u/d`` (dissimilar, inside): indefinite for ``d < m``.

    Options: ``margin`` (> 0). pytorch-metric-learning's ContrastiveLoss is the unsquared
    variant ``relu(d - pos_margin)``, ``relu(neg_margin - d)``; this is the paper's.
    Reference: Hadsell, Chopra and LeCun, "Dimensionality Reduction by Learning an Invariant
    Mapping", CVPR 2006, eq. (4).
    """
    check_same_dtype(input1, input2, "input1", "input2")
    if tuple(input1.shape) != tuple(input2.shape) or input1.ndim < 1:
        raise ValueError(f"input2 must have the shape of input1 {tuple(input1.shape)} (..., D); "
                         f"got {tuple(input2.shape)}.")
    if tuple(target.shape) != tuple(input1.shape[:-1]):
        raise ValueError(f"target must have shape {tuple(input1.shape[:-1])}; got "
                         f"{tuple(target.shape)}.")
    u = input1 - input2
    d = xp.sqrt(xp.sum(u * u, axis=-1, keepdims=True))
    y = target[..., None]
    similar = y > 0
    gap = margin - d
    active = (~similar) & (gap > 0)
    zeros = xp.zeros_like(d)
    values = xp.where(similar, 0.5 * d * d, xp.where(active, 0.5 * gap * gap, zeros))
    safe_d = xp.where(d > 0, d, 1.0)
    # dissimilar, active: g = u - (m/d) u
    k = xp.where(similar, 1.0, xp.where(active & (d > 0), 1.0 - margin / safe_d, zeros))

    def hvp(w: Any, v: Any) -> Any:
        n = u / safe_d
        proj = v - n * xp.sum(n * v, axis=-1, keepdims=True)
        inner = xp.where(active & (d > 0), (margin / safe_d), zeros)
        on = xp.astype(similar | active, v.dtype)
        return w * (on * v - inner * proj)

    def hess(w: Any) -> Any:
        n = u / safe_d
        inner = xp.where(active & (d > 0), (margin / safe_d), zeros)
        on = xp.astype(similar | active, u.dtype)
        return w * (on - inner * (1.0 - n * n))

    def grad(w: Any) -> tuple[Any, Any]:
        g = (w * k) * u
        return g, -g

    return Items(xp.squeeze(values, axis=-1), grad=grad, hess=hess, hvp=hvp)


# Triplet with a distance.


class _CosineDistance:
    """``1 - cos(u, v)`` over the last axis (torch's cosine_similarity, norms clamped at 1e-8),
    with its gradients and the Hessian w.r.t. ``u``."""

    def __init__(self, xp: Any, u: Any, v: Any) -> None:
        self.xp, self.u, self.v = xp, u, v
        self.nu = xp.maximum(xp.sqrt(xp.sum(u * u, axis=-1, keepdims=True)), 1e-8)
        self.nv = xp.maximum(xp.sqrt(xp.sum(v * v, axis=-1, keepdims=True)), 1e-8)
        self.cos = xp.sum(u * v, axis=-1, keepdims=True) / (self.nu * self.nv)
        self.norm = 1.0 - self.cos  # named like _PNorm's distance

    def grad_u(self) -> Any:  # d(1 - cos)/du
        return -(self.v / (self.nu * self.nv) - self.cos * self.u / (self.nu * self.nu))

    def grad_v(self) -> Any:
        return -(self.u / (self.nu * self.nv) - self.cos * self.v / (self.nv * self.nv))

    def hvp_u(self, r: Any) -> Any:
        xp, u, v, a, dd = self.xp, self.u, self.v, self.nu * self.nu, self.nu * self.nv
        g1 = -self.grad_u()
        ur = xp.sum(u * r, axis=-1, keepdims=True)
        g1r = xp.sum(g1 * r, axis=-1, keepdims=True)
        h = -v * ur / (dd * a) - g1r * u / a - self.cos * r / a + 2.0 * self.cos * u * ur / (a * a)
        return -h

    def hess_u(self) -> Any:
        u, v, a, dd = self.u, self.v, self.nu * self.nu, self.nu * self.nv
        g1 = -self.grad_u()
        h = -v * u / (dd * a) - g1 * u / a - self.cos / a + 2.0 * self.cos * u * u / (a * a)
        return -h


def _triplet_distance_example(
    rng: np.random.Generator, dtype: Any = "float64", margin: float = 1.0,
    distance: str = "euclidean", swap: bool = False, **_: Any,
):
    n, d = int(rng.integers(1, 5)), int(rng.integers(2, 6))

    def dist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if distance == "euclidean":
            return np.linalg.norm(x - y + 1e-6, axis=-1)
        return 1 - np.sum(x * y, -1) / np.linalg.norm(x, axis=-1) / np.linalg.norm(y, axis=-1)

    for _attempt in range(1000):
        a, p, ng = (rng.normal(size=(n, d)) for _ in range(3))
        dp, dn, ds = dist(a, p), dist(a, ng), dist(p, ng)
        dneg = np.minimum(dn, ds) if swap else dn
        ok = np.min(np.abs(margin + dp - dneg)) >= _GAP
        ok &= not swap or np.min(np.abs(dn - ds)) >= _GAP
        if ok:
            return a.astype(dtype), p.astype(dtype), ng.astype(dtype)
    raise RuntimeError("could not draw a triplet example away from its kinks")


@register(
    "triplet_margin_with_distance",
    input_kind="real",
    target_kind=None,
    layout="feature_axis",
    options={"distance": Choice("euclidean", "cosine"), "margin": Real(0, None, closed="neither"),
             "swap": Boolean()},
    hessian="indefinite",
    task="metric learning",
    formula="max(0, margin + d(a, p) - d(a, n)), d euclidean or 1 - cosine",
    example=_triplet_distance_example,
    differentiable=("anchor", "positive", "negative"),
    torch="triplet_margin_with_distance_loss",
    module="TripletMarginWithDistanceLoss",
)
def triplet_margin_with_distance(
    xp: Any, anchor: Any, positive: Any, negative: Any, *, distance: str = "euclidean",
    margin: float = 1.0, swap: bool = False,
) -> Items:
    """Triplet margin loss with a chosen distance: ``max(0, margin + d(a, p) - d(a, n))``.

    ``distance="euclidean"`` is torch's default ``pairwise_distance`` (``||a - p + 1e-6||_2``;
    this is then exactly ``triplet_margin`` with ``p=2``), ``"cosine"`` is ``1 - cos(x, y)``
    (torch's ``cosine_similarity``, norms clamped at 1e-8). ``swap=True`` takes
    ``min(d(a, n), d(p, n))`` as the negative distance (a tie splits the gradient, as torch).

    Gradient: with ``g = 1`` where ``margin + d(a, p) - d_neg >= 0``, ``dl/da = g (dd(a,p)/da -
    dd(a,n)/da)``, ``dl/dp = g dd(a,p)/dp``, ``dl/dn = -g dd(a,n)/dn``; cosine: ``d(1 - cos)/du =
    -(v / (|u||v|) - cos u / |u|^2)``. Returns the three gradients. Hessian w.r.t. the anchor:
    ``g [H_u d(a, p) - H_u d(a, n)]``, indefinite.

    Options: ``distance`` ("euclidean" or "cosine"; torch takes any callable, losslab a fixed
    set so that every gradient is closed-form), ``margin`` (> 0, torch's requirement), ``swap``.
    Same as ``torch.nn.functional.triplet_margin_with_distance_loss`` with
    ``distance_function=None`` or ``lambda x, y: 1 - F.cosine_similarity(x, y)``.
    Reference: Schroff, Kalenichenko and Philbin, "FaceNet", CVPR 2015; Balntas et al., BMVC 2016
    (the swap).
    """
    if distance == "euclidean":
        return triplet_margin(xp, anchor, positive, negative, margin=margin, p=2.0, eps=1e-6,
                              swap=swap)
    check_same_dtype(anchor, positive, "anchor", "positive")
    check_same_dtype(anchor, negative, "anchor", "negative")
    for name, a in (("positive", positive), ("negative", negative)):
        if tuple(a.shape) != tuple(anchor.shape) or a.ndim < 1:
            raise ValueError(f"{name} must have the shape of anchor {tuple(anchor.shape)}; got "
                             f"{tuple(a.shape)}.")
    ap, an = _CosineDistance(xp, anchor, positive), _CosineDistance(xp, anchor, negative)
    d_neg = an.norm
    if swap:
        pn = _CosineDistance(xp, positive, negative)
        d_neg = xp.minimum(an.norm, pn.norm)
    z = margin + ap.norm - d_neg
    zeros = xp.zeros_like(z)
    active = xp.where(z >= 0, xp.ones_like(z), zeros)
    if swap:
        tie = xp.where(pn.norm == an.norm, 0.5 * xp.ones_like(z), zeros)
        w_swap = xp.where(pn.norm < an.norm, xp.ones_like(z), tie)
        w_neg = 1.0 - w_swap
    else:
        w_neg = xp.ones_like(z)

    def grad(w: Any) -> tuple[Any, Any, Any]:
        g = w * active
        gn = g * w_neg
        grad_a = g * ap.grad_u() - gn * an.grad_u()
        grad_p = g * ap.grad_v()
        grad_n = -(gn * an.grad_v())
        if swap:
            gs = g * w_swap
            grad_p = grad_p - gs * pn.grad_u()
            grad_n = grad_n - gs * pn.grad_v()
        return grad_a, grad_p, grad_n

    return Items(
        xp.squeeze(xp.where(z >= 0, z, zeros), axis=-1),
        grad=grad,
        hess=lambda w: (w * active) * (ap.hess_u() - w_neg * an.hess_u()),
        hvp=lambda w, r: (w * active) * (ap.hvp_u(r) - w_neg * an.hvp_u(r)),
    )


# Circle.


def _circle_example(rng: np.random.Generator, dtype: Any = "float64", margin: float = 0.4,
                    **_: Any):
    for _attempt in range(1000):
        z, y = _group_example(rng, dtype="float64")
        zn = z / np.linalg.norm(z, axis=1, keepdims=True)
        s = zn @ zn.T
        neg = y[:, None] != y[None, :]
        if not neg.any() or np.min(np.abs(s[neg] + margin)) >= _GAP:
            return z.astype(dtype), y
    raise RuntimeError("could not draw a circle example away from its kink")


@register(
    "circle",
    input_kind="real",
    target_kind="group",
    layout="feature_axis",
    options={"gamma": TEMPERATURE, "margin": Real(0, None)},
    hessian="indefinite",
    task="metric learning",
    formula="softplus(logsumexp_n g a_n (s_n - m) + logsumexp_p -g a_p (s_p - 1 + m))",
    example=_circle_example,
    couples_items=True,
    module="CircleLoss",
)
def circle(xp: Any, input: Any, target: Any, *, gamma: float = 80.0, margin: float = 0.4) -> Items:
    """Circle loss: ``l_i = softplus(logsumexp_{n in N(i)} gamma a_n (s_n - Delta_n) +
    logsumexp_{p in P(i)} -gamma a_p (s_p - Delta_p))``.

    ``input`` (N, D) embeddings (normalised inside), ``target`` (N,) integer labels; ``s`` are the
    cosine similarities of anchor ``i`` to the others, ``P(i)`` those with its label (itself
    excluded), ``N(i)`` the rest. With ``m = margin``: ``Delta_p = 1 - m``, ``Delta_n = m``, and
    the self-paced weights ``a_p = relu(1 + m - s_p)``, ``a_n = relu(s_n + m)``. An anchor without
    positives or without negatives has loss 0 and does not count in the mean (Keras masks zero
    losses out of its average). Keras writes it in cosine distances ``d = max(1 - s, 0)``:
    ``a_p = m + d``, ``a_n = 1 + m - d``, ``s_p - Delta_p = m - d``, ``s_n - Delta_n = 1 - m - d``.

    Gradient: the weights ``a`` are differentiated too (as Keras does, by autodiff): per pair
    ``d(a_p (s_p - Delta_p))/ds_p = -2 (1 - s_p)`` (so ``-gamma`` times that) and
    ``d(a_n (s_n - Delta_n))/ds_n = 2 s_n`` where ``s_n > -m``, else 0; these are weighted by
    ``sigmoid(.)`` times each logsumexp's softmax, giving ``G = dL/dS``, and ``dL/dz^ = (G + G^T)
    z^``, then through the normalisation. The paper's reference code detaches ``a_p``, ``a_n``
    (treats them as constants in backprop): that update is not the gradient of any loss value,
    so losslab, like Keras, does not.
    Hessian (piecewise: the kinks at ``s_n = -m`` and ``s = 1``): per anchor, with ``t`` the
    softplus's argument, ``sigma = sigmoid(t)``, ``pi``, ``nu`` the positive and negative logits
    as functions of ``s`` (``pi' = -2 gamma (1 - s)``, ``pi'' = 2 gamma``; ``nu' = 2 gamma s``,
    ``nu'' = 2 gamma`` where ``s > -m``, else 0) and ``P``, ``N`` their logsumexps' softmaxes:
    ``d^2 l / dS dS = sigma (1 - sigma) r r^T + sigma [diag(P (pi'^2 + pi'') + N (nu'^2 +
    nu'')) - (P pi')(P pi')^T - (N nu')(N nu')^T]``, ``r = P pi' + N nu'``, through the
    self-similarity (module docstring); indefinite.

    Options: ``gamma`` (> 0; 80, Keras's default; the paper uses 80 to 256), ``margin`` (>= 0;
    0.4 as Keras, 0.25 in the paper's face experiments). Same as ``keras.losses.Circle(gamma,
    margin)`` with ``remove_diagonal=True`` on L2-normalised embeddings.
    Reference: Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity Optimization",
    CVPR 2020, eq. (6).
    """
    _check_rows(xp, "input", input)
    n = int(input.shape[0])
    if tuple(target.shape) != (n,):
        raise ValueError(f"target must have shape ({n},); got {tuple(target.shape)}.")
    if n == 0:
        return _empty(xp, input, denominator=0.0)
    zn = _Normalized(xp, input)
    s = xp.matmul(zn.unit, xp.permute_dims(zn.unit, (1, 0)))
    pos, neg, _ = _pair_masks(xp, target, s)
    d = xp.maximum(1.0 - s, 0.0)
    pos_logit = -gamma * (margin + d) * (margin - d)
    a_n = xp.maximum(1.0 + margin - d, 0.0)
    neg_logit = gamma * a_n * ((1.0 - margin) - d)
    pos_l = xp.where(pos, pos_logit, -math.inf)
    neg_l = xp.where(neg, neg_logit, -math.inf)
    lse_p = _masked_logsumexp(xp, pos_logit, pos)
    lse_n = _masked_logsumexp(xp, neg_logit, neg)
    live = xp.isfinite(lse_p) & xp.isfinite(lse_n)
    t = xp.where(live, lse_p + lse_n, 0.0)
    values = xp.where(live, softplus(xp, t), 0.0)
    denominator = xp.sum(xp.astype(live, s.dtype))

    inside = xp.astype(s < 1.0, s.dtype)  # d = max(1 - s, 0) is flat above s = 1
    dpos = (-2.0 * gamma) * d * inside  # d(pos_logit)/ds = -2 gamma (1 - s)
    neg_on = xp.astype(a_n > 0, s.dtype) * inside
    dneg = gamma * (a_n * inside + ((1.0 - margin) - d) * neg_on)  # 2 gamma s where s > -m

    def parts(w: Any) -> tuple[Any, Any, Any, Any]:
        """``w sigma`` per anchor (0 where dead), the two softmaxes, and ``G = dL/dS``."""
        sig = xp.where(live, sigmoid(xp, t), 0.0)[:, None] * w
        safe_p = xp.where(xp.isfinite(lse_p), lse_p, 0.0)[:, None]
        safe_n = xp.where(xp.isfinite(lse_n), lse_n, 0.0)[:, None]
        soft_p = xp.where(pos, xp.exp(pos_l - safe_p), 0.0)
        soft_n = xp.where(neg, xp.exp(neg_l - safe_n), 0.0)
        return sig, soft_p, soft_n, sig * (soft_p * dpos + soft_n * dneg)

    def grad(w: Any) -> Any:
        g = parts(w)[3]
        g = g + _t(xp, g)
        return zn.back(xp.matmul(g, zn.unit))

    sim = _Similarity(xp, zn, None, 1.0)

    def curvature(w: Any) -> tuple[Any, _Curvature]:
        sig, soft_p, soft_n, g = parts(w)
        sig1 = xp.where(live, sigmoid(xp, -t), 0.0)[:, None]  # 1 - sigma, without cancellation
        qp, qn_ = soft_p * dpos, soft_n * dneg
        diag = sig * (qp * dpos + soft_p * ((2.0 * gamma) * inside)
                      + qn_ * dneg + soft_n * ((2.0 * gamma) * neg_on))
        r = qp + qn_
        return g, _Curvature(xp, diag, rows=[(sig * sig1, r), (-sig, qp), (-sig, qn_)])

    return Items(values, grad=grad, denominator=denominator,
                 hess=lambda w: sim.hess(*curvature(w), s),
                 hvp=lambda w, v: sim.hvp(*curvature(w), v))


# Multi-similarity.


@register(
    "multi_similarity",
    input_kind="real",
    target_kind="group",
    layout="feature_axis",
    options={"alpha": TEMPERATURE, "beta": TEMPERATURE, "base": Real()},
    hessian="indefinite",
    task="metric learning",
    formula="log(1 + sum_p exp(-a (s_p - base))) / a + log(1 + sum_n exp(b (s_n - base))) / b",
    example=_group_example,
    couples_items=True,
    module="MultiSimilarityLoss",
)
def multi_similarity(
    xp: Any, input: Any, target: Any, *, alpha: float = 2.0, beta: float = 50.0,
    base: float = 0.5,
) -> Items:
    """Multi-similarity loss: ``l_i = 1/alpha log(1 + sum_{p in P(i)} exp(-alpha (s_ip - base)))
    + 1/beta log(1 + sum_{n in N(i)} exp(beta (s_in - base)))``.

    ``input`` (N, D) embeddings (normalised inside), ``target`` (N,) integer labels; ``s`` are
    cosine similarities, ``P(i)`` the other samples with anchor i's label, ``N(i)`` those with
    another label. Each term is ``softplus(logsumexp(...))`` (stable; an empty set gives 0), one
    loss per anchor, ``reduction="mean"`` over all N anchors (pytorch-metric-learning's
    MeanReducer).

    Gradient: with ``A_i``, ``B_i`` the two logsumexps, ``q`` and ``r`` their softmaxes over
    ``P(i)`` and ``N(i)``: ``dL/ds_ip = -w_i sigmoid(A_i) q_ip``, ``dL/ds_in = w_i sigmoid(B_i)
    r_in``, then ``(G + G^T) z^`` and through the normalisation. Hessian w.r.t. row i of ``S``:
    ``w_i alpha sigmoid(A_i) [diag(q) - sigmoid(A_i) q q^T] + w_i beta sigmoid(B_i) [diag(r) -
    sigmoid(B_i) r r^T]``, through the self-similarity (module docstring); indefinite.

    Options: ``alpha`` (> 0; 2), ``beta`` (> 0; 50), ``base`` (the similarity margin lambda;
    0.5): the paper's and pytorch-metric-learning's defaults. Same as pytorch-metric-learning's
    ``MultiSimilarityLoss(alpha, beta, base)`` with its default CosineSimilarity and all pairs;
    the paper's hard-pair mining (epsilon, PML's ``MultiSimilarityMiner``) selects pairs before
    the loss and is not part of it.
    Reference: Wang, Han, Huang, Dong and Scott, "Multi-Similarity Loss with General Pair
    Weighting for Deep Metric Learning", CVPR 2019, eq. (8).
    """
    _check_rows(xp, "input", input)
    n = int(input.shape[0])
    if tuple(target.shape) != (n,):
        raise ValueError(f"target must have shape ({n},); got {tuple(target.shape)}.")
    if n == 0:
        return _empty(xp, input)
    zn = _Normalized(xp, input)
    s = xp.matmul(zn.unit, _t(xp, zn.unit))
    pos, neg, _ = _pair_masks(xp, target, s)
    pos_logit, neg_logit = alpha * (base - s), beta * (s - base)
    lse_p = _masked_logsumexp(xp, pos_logit, pos)
    lse_n = _masked_logsumexp(xp, neg_logit, neg)
    values = softplus(xp, lse_p) / alpha + softplus(xp, lse_n) / beta
    sig_p, sig_n = sigmoid(xp, lse_p)[:, None], sigmoid(xp, lse_n)[:, None]  # 0 for no pairs

    def parts(w: Any) -> tuple[Any, Any, Any, Any, Any]:
        """``w sigmoid(A)``, ``w sigmoid(B)``, the two softmaxes, and ``G = dL/dS``."""
        # The logits of other pairs at -inf before exp (no overflow where a row has none).
        q = xp.exp(xp.where(pos, pos_logit - xp.where(xp.isfinite(lse_p), lse_p, 0.0)[:, None],
                            -math.inf))
        r = xp.exp(xp.where(neg, neg_logit - xp.where(xp.isfinite(lse_n), lse_n, 0.0)[:, None],
                            -math.inf))
        wp, wn = w * sig_p, w * sig_n
        return wp, wn, q, r, wn * r - wp * q

    def grad(w: Any) -> Any:
        g = parts(w)[4]
        return zn.back(xp.matmul(g + _t(xp, g), zn.unit))

    sim = _Similarity(xp, zn, None, 1.0)

    def curvature(w: Any) -> tuple[Any, _Curvature]:
        wp, wn, q, r, g = parts(w)
        diag = (alpha * wp) * q + (beta * wn) * r
        return g, _Curvature(xp, diag, rows=[(-alpha * wp * sig_p, q), (-beta * wn * sig_n, r)])

    return Items(values, grad=grad,
                 hess=lambda w: sim.hess(*curvature(w), s),
                 hvp=lambda w, v: sim.hvp(*curvature(w), v))
