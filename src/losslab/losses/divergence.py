"""Divergences between probability distributions: Kullback-Leibler and Jensen-Shannon."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from losslab.losses._constraints import Boolean, Integer
from losslab.losses._primitives import log_softmax
from losslab.losses._registry import Items, register
from losslab.losses._validation import check_same_shape

_LOG2 = math.log(2.0)


def _kl_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    shape = (int(rng.integers(1, 5)), int(rng.integers(2, 6)))
    z = rng.normal(size=shape)
    log_p = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    t = rng.dirichlet(np.ones(shape[-1]), size=shape[0])
    t[rng.random(size=shape) < 0.2] = 0.0  # zero targets exercise the xlogy convention
    if options.get("log_target", False):
        with np.errstate(divide="ignore"):
            t = np.log(t)
    return log_p.astype(dtype), t.astype(dtype)


@register(
    "kl_div",
    input_kind="log_probabilities",
    target_kind="distribution",
    layout="elementwise",
    options={"log_target": Boolean()},
    hessian="zero",
    task="distribution",
    formula="y (log y - x)   (x = log-probabilities)",
    example=_kl_example,
    torch="kl_div",
    module="KLDivLoss",
    reductions=("mean", "batchmean", "sum", "none"),
)
def kl_div(xp: Any, input: Any, target: Any, *, log_target: bool = False) -> Items:
    """Kullback-Leibler divergence, point-wise: ``l_i = y_i (log y_i - x_i)``.

    ``input`` holds log-probabilities ``x = log q`` (e.g. from log_softmax); ``target`` holds
    probabilities ``y``, or log-probabilities when ``log_target=True``, in which case
    ``l_i = exp(t_i) (t_i - x_i)``. Summed over a distribution this is ``KL(y || q)``. A zero
    target probability contributes exactly 0 (``0 log 0 = 0``, torch's ``xlogy``), also where
    the input is ``-inf`` or, with log_target, the target is ``-inf``: torch returns NaN there
    (``0 * inf``); we return the limit 0, so masked log-probabilities cannot poison the sum.

    Gradient (w.r.t. ``input`` only; the target is a constant): ``dl_i/dx_i = -y_i``
    (``-exp(t_i)`` with log_target). Hessian: 0 (the loss is linear in the input).

    Options: ``log_target`` (bool). Probabilities given as ``target`` must lie in [0, 1]
    (ValueError otherwise). Reductions: "mean" divides the sum by the number of ELEMENTS (torch's
    default, which torch itself warns is not the KL divergence), "batchmean" divides by
    ``input.shape[0]`` (the true mean KL per sample for (N, C) inputs; a 0-d input is just
    summed), "sum", "none".

    Same as ``torch.nn.functional.kl_div`` (``target`` must have ``input``'s shape; torch would
    broadcast). ``losslab.get("kl_div", reduction="batchmean")`` accepts it too.
    Reference: Kullback and Leibler, "On Information and Sufficiency", Ann. Math. Statist. 22
    (1951); PyTorch ``KLDivLoss`` documentation.
    """
    check_same_shape(input, target, "input", "target")
    # A zero target probability contributes exactly 0, whatever the input: torch's NaN from
    # 0 * inf (masked log-probabilities, or log_target with t = -inf) would poison the sum. The
    # masks keep every product finite, so not even a warning is raised.
    if log_target:
        prob = xp.exp(target)
        live = prob > 0
        values = prob * (xp.where(live, target, 0.0) - xp.where(live, input, 0.0))
    else:
        prob = target
        live = target > 0
        values = target * (xp.log(xp.where(live, target, 1.0)) - xp.where(live, input, 0.0))
    return Items(
        values,
        grad=lambda w: -(w * prob),
        hess=lambda w: xp.zeros_like(input),
    )


def _normalize_dim(dim: int, ndim: int) -> int:
    if not -ndim <= dim < ndim:
        raise ValueError(
            f"dim must lie in [{-ndim}, {ndim}) for input with {ndim} dimensions; got {dim}."
        )
    return int(dim) % ndim


def _js_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    dim = options.get("dim", -1)
    ndim = max(2, (dim + 1) if dim >= 0 else -dim)
    shape = [int(rng.integers(1, 4)) for _ in range(ndim)]
    axis = dim % ndim
    shape[axis] = int(rng.integers(2, 6))
    z = 2.0 * rng.normal(size=shape)
    t = np.exp(rng.normal(size=shape))
    t[rng.random(size=shape) < 0.2] = 0.0  # zero target probabilities take the q = 0 path
    t = t + np.where(np.sum(t, axis=axis, keepdims=True) == 0, 1.0, 0.0)  # no empty rows
    t = t / np.sum(t, axis=axis, keepdims=True)
    return z.astype(dtype), t.astype(dtype)


@register(
    "js_div",
    input_kind="logits",
    target_kind="distribution",
    layout="distribution_axis",
    options={"dim": Integer()},
    hessian="indefinite",
    task="distribution",
    formula="1/2 KL(p || m) + 1/2 KL(q || m), p = softmax(x), m = (p + q)/2",
    example=_js_example,
    torch=None,
    module="JSDivLoss",
)
def js_div(xp: Any, input: Any, target: Any, *, dim: int = -1) -> Items:
    """Jensen-Shannon divergence: ``JS(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m)``, ``m = (p+q)/2``.

    ``input`` holds LOGITS, ``p = softmax(input, dim)``; ``target`` holds probabilities ``q``
    along ``dim`` (each slice >= 0 and summing to 1). One value per distribution, in nats, in
    [0, log 2]. To compare two probability arrays pass ``log(p)`` as input: softmax undoes it.

    Stable by construction: ``log p`` comes from log_softmax, ``log m = logaddexp(log p, log q)
    - log 2`` (so ``q = 0`` gives ``log(p/m) = log 2`` exactly and contributes ``0 log 0 = 0``),
    and nothing is ever divided by ``m``. Finite for any finite logits.

    Gradient w.r.t. the logits: ``dJS/dp_j = 1/2 log(p_j/m_j)`` (the other terms cancel because
    ``p_j/(2 m_j) + q_j/(2 m_j) = 1``), and through the softmax
    ``dJS/dx_j = p_j/2 [log(p_j/m_j) - KL(p || m)]``. The target is a constant. Hessian w.r.t.
    the logits, per distribution: ``H v = u (v - p.v) - p [u . (v - p.v)]`` with
    ``u = p q / (4 m) + p log(p/m) / 2 - KL(p || m) p / 2`` (from ``d2JS/dp2 = diag(q / (4 p m))``
    and the softmax's curvature); JS is not convex in the logits, so it can be negative.

    Options: ``dim`` (the distribution axis). ``reduction="mean"`` averages over the
    distributions (every position of the other axes; for (N, C) input that is torch-kl_div's
    "batchmean", not its element-wise "mean"); "none" has the input's shape without ``dim``.

    No torch equivalent. Reference: J. Lin, "Divergence measures based on the Shannon entropy",
    IEEE Trans. Inf. Theory 37(1), 145-151 (1991).
    """
    if input.ndim < 1:
        raise ValueError("input must have at least 1 dimension (the distribution axis, dim).")
    axis = _normalize_dim(dim, input.ndim)
    check_same_shape(input, target, "input", "target")
    q = target
    log_p = log_softmax(xp, input, axis=axis)
    p = xp.exp(log_p)
    has_q = q > 0
    log_q_or_0 = xp.log(xp.where(has_q, q, 1.0))  # finite everywhere: no 0 * inf below
    log_q = xp.where(has_q, log_q_or_0, -math.inf)
    hi = xp.maximum(log_p, log_q)
    lo = xp.minimum(log_p, log_q)
    log_m = hi + xp.log1p(xp.exp(lo - hi)) - _LOG2
    log_p_over_m = log_p - log_m
    kl_pm = xp.sum(p * log_p_over_m, axis=axis, keepdims=True)
    kl_qm = xp.sum(xp.where(has_q, q * (log_q_or_0 - log_m), 0.0), axis=axis, keepdims=True)

    def curvature(w: Any) -> Any:
        # Hessian = (I - p 1^T) diag(u) (I - 1 p^T) - terms; see the docstring.
        m = xp.exp(log_m)
        s = p * q / (4.0 * m)  # p q / (4 m) <= min(p, q) / 2: finite
        psi = 0.5 * p * log_p_over_m
        return w * (s + psi - 0.5 * kl_pm * p)

    def hvp(w: Any, v: Any) -> Any:
        u = curvature(w)
        t = v - xp.sum(p * v, axis=axis, keepdims=True)
        return u * t - p * xp.sum(u * t, axis=axis, keepdims=True)

    def hess(w: Any) -> Any:
        u = curvature(w)
        return u * (1.0 - 2.0 * p) + p * p * xp.sum(u, axis=axis, keepdims=True)

    return Items(
        xp.squeeze(0.5 * (kl_pm + kl_qm), axis=axis),
        grad=lambda w: (0.5 * w) * p * (log_p_over_m - kl_pm),
        hess=hess,
        hvp=hvp,
    )
