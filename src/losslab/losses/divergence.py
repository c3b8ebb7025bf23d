"""Divergences between distributions: Kullback-Leibler (plain and generalised), Jensen-Shannon
(generalised with Liger's and TRL's ``beta``), total variation, and PaLM's z-loss on the
log-partition function."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from losslab.losses._constraints import Boolean, Integer, Real
from losslab.losses._primitives import log_softmax, logsumexp, scaled
from losslab.losses._registry import Items, register
from losslab.losses._validation import check_in_range, check_same_shape

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
    if options.get("beta", 0.5) != 1.0:  # reverse KL is infinite where the target is 0
        t[rng.random(size=shape) < 0.2] = 0.0  # zero target probabilities take the q = 0 path
    t = t + np.where(np.sum(t, axis=axis, keepdims=True) == 0, 1.0, 0.0)  # no empty rows
    t = t / np.sum(t, axis=axis, keepdims=True)
    if options.get("log_target", False):
        with np.errstate(divide="ignore"):
            t = np.log(t)
    return z.astype(dtype), t.astype(dtype)


def _softmax_curvature(xp: Any, p: Any, u: Any, axis: int) -> tuple[Any, Any]:
    """``(hvp, hess)`` of a loss ``f(softmax(x))`` whose Hessian in the logits is
    ``diag(u) - u p^T - p u^T + sum(u) p p^T`` (``u`` per distribution, already weighted)."""

    def hvp(v: Any) -> Any:
        t = v - xp.sum(p * v, axis=axis, keepdims=True)
        return u * t - p * xp.sum(u * t, axis=axis, keepdims=True)

    def hess() -> Any:
        return u * (1.0 - 2.0 * p) + p * p * xp.sum(u, axis=axis, keepdims=True)

    return hvp, hess


def _log_target(xp: Any, target: Any, log_target: bool) -> tuple[Any, Any, Any]:
    """``(q, has_q, log q with 0 where q = 0)`` from probabilities or log-probabilities."""
    if log_target:
        q = xp.exp(target)
        has_q = q > 0
        return q, has_q, xp.where(has_q, target, 0.0)
    has_q = target > 0
    return target, has_q, xp.log(xp.where(has_q, target, 1.0))


@register(
    "js_div",
    input_kind="logits",
    target_kind="distribution",
    layout="distribution_axis",
    options={"dim": Integer(), "beta": Real(0.0, 1.0), "log_target": Boolean()},
    hessian="indefinite",
    task="distribution",
    formula="beta KL(q || m) + (1 - beta) KL(p || m), p = softmax(x), m = beta q + (1 - beta) p",
    example=_js_example,
    torch=None,
    module="JSDivLoss",
)
def js_div(
    xp: Any, input: Any, target: Any, *, dim: int = -1, beta: float = 0.5, log_target: bool = False
) -> Items:
    """Jensen-Shannon divergence, generalised: ``beta KL(q || m) + (1 - beta) KL(p || m)``.

    ``input`` holds LOGITS, ``p = softmax(input, dim)`` (the model, the "student"); ``target``
    holds the distribution ``q`` (the "teacher") as probabilities along ``dim`` (each slice >= 0,
    summing to 1), or as log-probabilities with ``log_target=True`` (Liger's and TRL's log-space
    inputs; ``-inf`` marks a zero probability). The mixture is ``m = beta q + (1 - beta) p``. One
    value per distribution, in nats. To compare two probability arrays pass ``log(p)`` as input:
    softmax undoes it. ``beta = 0.5`` (the default) is Lin's Jensen-Shannon divergence
    ``JS(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m)``, in [0, log 2].

    The endpoints, stated exactly (TRL issue #6780 shows how easily they are misread):
    ``beta = 0`` gives the FORWARD KL ``KL(q || p) = sum q log(q/p)`` (target || model: mass-
    covering, ordinary distillation) and ``beta = 1`` the REVERSE KL ``KL(p || q)`` (model ||
    target: mode-seeking). These are what TRL's ``generalized_jsd_loss`` and Liger's
    ``LigerJSD`` compute at ``beta`` 0 and 1, and what losslab computes. They are NOT the values
    of the interior formula at its ends: ``beta KL(q||m) + (1-beta) KL(p||m)`` tends to 0 as
    ``beta -> 0`` or ``1`` (it behaves like ``beta KL(q || p)`` near 0 and ``(1 - beta) KL(p ||
    q)`` near 1), so the loss jumps at the endpoints; the KLs are the limits of the interior
    divided by ``beta`` (resp. ``1 - beta``). Reverse KL is infinite wherever ``q = 0``.

    Stable by construction: ``log p`` from log_softmax, ``log m = logaddexp(log beta + log q,
    log(1 - beta) + log p)``, ``0 log 0 = 0``; nothing is divided by ``m`` except in the Hessian
    (``p q / m <= min(p/(1-beta), q/beta)``). Finite for any finite logits.

    Gradient w.r.t. the logits (the target is a constant): interior ``beta``: ``dJ/dp_j =
    (1 - beta) log(p_j/m_j)`` (the other terms cancel since ``beta q + (1 - beta) p = m``), and
    through the softmax ``dJ/dx_j = (1 - beta) p_j [log(p_j/m_j) - KL(p || m)]``; forward KL:
    ``p_j sum(q) - q_j``; reverse KL: ``p_j [log(p_j/q_j) - KL(p || q)]``. Hessian w.r.t. the
    logits, per distribution: ``H = diag(u) - u p^T - p u^T + sum(u) p p^T`` with
    ``u = (1-beta) [beta p q / m + p log(p/m) - KL(p||m) p]`` (interior), ``u = sum(q) p``
    (forward KL), ``u = p + p log(p/q) - KL(p||q) p`` (reverse KL); the interior JSD is not convex
    in the logits, so it can be negative.

    Options: ``dim`` (the distribution axis), ``beta`` in [0, 1], ``log_target``.
    ``reduction="mean"`` averages over the distributions (every position of the other axes; for
    (N, C) input that is torch-kl_div's "batchmean", Liger's default); "none" has the input's
    shape without ``dim``. TRL's ``generalized_jsd_loss(student_logits, teacher_logits, beta)``
    is ``js_div(student_logits, log_softmax(teacher_logits), beta=beta, log_target=True)`` with
    ``reduction="sum"`` divided by its own denominator (TRL: "batchmean" over the tokens);
    TRL's ``temperature`` divides both logit sets first. Liger's ``LigerJSD(beta)(X, Y)`` takes
    log-probabilities ``X`` (student) and ``Y`` (teacher): ``js_div(X, Y, beta=beta,
    log_target=True)``.

    No torch equivalent. Reference: J. Lin, "Divergence measures based on the Shannon entropy",
    IEEE Trans. Inf. Theory 37(1), 145-151 (1991); Agarwal et al., "On-Policy Distillation of
    Language Models: Learning from Self-Generated Mistakes" (GKD), ICLR 2024, eq. (2).
    """
    if input.ndim < 1:
        raise ValueError("input must have at least 1 dimension (the distribution axis, dim).")
    axis = _normalize_dim(dim, input.ndim)
    check_same_shape(input, target, "input", "target")
    q, has_q, log_q0 = _log_target(xp, target, log_target)
    log_p = log_softmax(xp, input, axis=axis)
    p = xp.exp(log_p)

    def kl_sum(a: Any) -> Any:
        return xp.sum(a, axis=axis, keepdims=True)

    if beta == 0.0:  # forward KL(q || p)
        values = kl_sum(xp.where(has_q, q * (log_q0 - log_p), 0.0))
        mass = kl_sum(q)
        return _js_items(xp, values, axis, p,
                         grad=lambda w: w * (p * mass - q), u=lambda w: w * mass * p)
    if beta == 1.0:  # reverse KL(p || q): infinite where q = 0
        log_q = xp.where(has_q, log_q0, -math.inf)
        ell = log_p - log_q
        kl = kl_sum(p * ell)
        return _js_items(xp, values=kl, axis=axis, p=p,
                         grad=lambda w: w * p * (ell - kl), u=lambda w: w * (p + p * ell - kl * p))
    log_q = xp.where(has_q, log_q0, -math.inf)
    log_m = xp.logaddexp(math.log(beta) + log_q, math.log1p(-beta) + log_p)
    ell = log_p - log_m
    kl_pm = kl_sum(p * ell)
    kl_qm = kl_sum(xp.where(has_q, q * (log_q0 - log_m), 0.0))

    def u(w: Any) -> Any:
        s = (beta * p) * q / xp.exp(log_m)
        return ((1.0 - beta) * w) * (s + p * ell - kl_pm * p)

    return _js_items(
        xp, beta * kl_qm + (1.0 - beta) * kl_pm, axis, p,
        grad=lambda w: ((1.0 - beta) * w) * p * (ell - kl_pm), u=u,
    )


def _js_items(xp: Any, values: Any, axis: int, p: Any, grad: Any, u: Any) -> Items:
    return Items(
        xp.squeeze(values, axis=axis),
        grad=grad,
        hess=lambda w: _softmax_curvature(xp, p, u(w), axis)[1](),
        hvp=lambda w, v: _softmax_curvature(xp, p, u(w), axis)[0](v),
    )


# Total variation.


def _tvd_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    dim = options.get("dim", -1)
    n, c = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    for _attempt in range(1000):
        p = rng.dirichlet(5.0 * np.ones(c), size=n)
        q = rng.dirichlet(5.0 * np.ones(c), size=n)
        # away from the kink p = q and from the ends of [0, 1] (central differences stay inside)
        if np.min(np.abs(p - q)) >= 1e-2 and np.min(p) >= 1e-2 and np.max(p) <= 1 - 1e-2:
            break
    if dim % 2 == 0:
        p, q = p.T, q.T
    return np.ascontiguousarray(p).astype(dtype), np.ascontiguousarray(q).astype(dtype)


@register(
    "tvd",
    input_kind="probabilities",
    target_kind="distribution",
    layout="distribution_axis",
    options={"dim": Integer()},
    hessian="zero",
    task="distribution",
    formula="1/2 sum |p - q|   (p = input, q = target: probabilities)",
    example=_tvd_example,
    module="TVDLoss",
)
def tvd(xp: Any, input: Any, target: Any, *, dim: int = -1) -> Items:
    """Total variation distance: ``TV(p, q) = 1/2 sum_j |p_j - q_j|`` along ``dim``.

    ``input`` holds probabilities ``p`` (each in [0, 1]), ``target`` a distribution ``q`` (each
    slice summing to 1). One value per distribution, in [0, 1] when ``p`` is a distribution too.

    Gradient w.r.t. ``input`` (a subgradient at ties): ``1/2 sign(p_j - q_j)``, with the
    convention ``sign(0) = 0`` where ``p_j = q_j`` exactly (torch's ``abs`` backward and Liger's
    ``LigerTVDLoss`` use the same), so a perfect prediction gets a zero gradient. The gradient is
    with respect to the probabilities themselves; it is not projected onto the simplex (compose
    with a softmax for logits). Hessian: 0 almost everywhere (piecewise linear).

    Options: ``dim``. ``reduction="mean"`` averages over the distributions, Liger's
    ``reduction="batchmean"`` for (BT, V) inputs.

    Same as Liger's ``LigerTVDLoss`` (without its ``ignore_index``/``shift_labels``: pass
    ``sample_weight`` zeros for ignored positions and ``reduction="sum"`` over your own count).
    Reference: Levin, Peres and Wilmer, "Markov Chains and Mixing Times", Prop. 4.2; Liger-Kernel
    ``liger_kernel/ops/tvd.py``.
    """
    if input.ndim < 1:
        raise ValueError("input must have at least 1 dimension (the distribution axis, dim).")
    axis = _normalize_dim(dim, input.ndim)
    check_same_shape(input, target, "input", "target")
    d = input - target
    return Items(
        xp.sum(0.5 * xp.abs(d), axis=axis),
        grad=lambda w: (0.5 * w) * xp.sign(d),
        hess=lambda w: xp.zeros_like(input),
        hvp=lambda w, v: xp.zeros_like(input),
    )


# z-loss.


def _z_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    dim = options.get("dim", -1)
    ndim = max(2, (dim + 1) if dim >= 0 else -dim)
    shape = [int(rng.integers(1, 4)) for _ in range(ndim)]
    shape[dim % ndim] = int(rng.integers(2, 6))
    return ((rng.normal(size=shape) * 2.0 + rng.normal()).astype(dtype),)


@register(
    "z_loss",
    input_kind="logits",
    target_kind=None,
    layout="distribution_axis",
    options={"dim": Integer(), "scale": Real(0, None)},
    hessian="indefinite",
    task="regularization",
    formula="scale * logsumexp(x)^2   (PaLM's auxiliary loss, scale = 1e-4)",
    example=_z_example,
    module="ZLoss",
)
def z_loss(xp: Any, input: Any, *, dim: int = -1, scale: float = 1e-4) -> Items:
    """z-loss: ``l = scale * log(Z)^2``, ``Z = sum_j exp(x_j)`` along ``dim`` (the softmax's
    normaliser).

    An auxiliary loss that keeps the log-partition function near 0, so that logits do not drift
    (PaLM trains with ``scale = 1e-4`` added to the cross-entropy; the default here). ``input``
    holds logits; one value per distribution. ``log Z`` is a stable logsumexp.

    Gradient: ``2 scale log(Z) softmax(x)``. Hessian: ``2 scale [p p^T + log(Z) (diag(p) - p
    p^T)]`` with ``p = softmax(x)``; negative directions exist where ``log Z < 0``.

    Options: ``dim`` (the class/vocabulary axis), ``scale`` (>= 0). ``reduction="mean"``
    averages over the distributions (tokens), as PaLM and T5X do.

    Same as T5X's ``z_loss`` term of ``cross_entropy_with_logits`` and Liger's
    ``lse_square_scale`` term of its cross-entropy (both ``scale * logsumexp^2`` per token).
    Reference: Chowdhery et al., "PaLM: Scaling Language Modeling with Pathways", JMLR 24 (2023),
    section 5; Zoph et al., "ST-MoE" (2022), section 3.2 (router z-loss).
    """
    if input.ndim < 1:
        raise ValueError("input must have at least 1 dimension (the class axis, dim).")
    axis = _normalize_dim(dim, input.ndim)
    lse = logsumexp(xp, input, axis=axis, keepdims=True)
    p = xp.exp(input - lse)

    def hvp(w: Any, v: Any) -> Any:
        pv = xp.sum(p * v, axis=axis, keepdims=True)
        return (2.0 * scale * w) * (p * pv + lse * (p * v - p * pv))

    return Items(
        xp.squeeze(scale * lse * lse, axis=axis),
        grad=lambda w: (2.0 * scale * w) * lse * p,
        hess=lambda w: (2.0 * scale * w) * (p * p + lse * (p - p * p)),
        hvp=hvp,
    )


# Generalised (unnormalised) KL.


def _gkl_example(rng: np.random.Generator, dtype: Any = "float64", **options: Any):
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
    x = rng.normal(size=shape)
    q = np.exp(rng.normal(size=shape))
    q[rng.random(size=shape) < 0.2] = 0.0  # q = 0 takes the 0 log 0 = 0 path
    if not options.get("log_input", True):
        x = np.exp(x)
    return x.astype(dtype), q.astype(dtype)


@register(
    "generalized_kl",
    input_kind="real",
    target_kind="nonnegative",
    layout="elementwise",
    options={"log_input": Boolean()},
    hessian="nonnegative",
    rowwise=True,
    task="distribution",
    formula="q log(q/p) - q + p, p = exp(input) (log_input=True), q = target",
    example=_gkl_example,
    reductions=("mean", "batchmean", "sum", "none"),
    module="GeneralizedKLDivLoss",
)
def generalized_kl(xp: Any, input: Any, target: Any, *, log_input: bool = True) -> Items:
    """Generalised (unnormalised) KL divergence, point-wise: ``l = q log(q/p) - q + p``.

    For non-negative measures ``p`` (prediction) and ``q`` (target) that need not sum to 1 (the
    I-divergence of NMF; it reduces to ``KL(q || p)`` when both sum to 1). With
    ``log_input=True`` (the default, like ``kl_div`` and ``poisson_nll``) ``input`` is ``x = log
    p`` and ``l = q (log q - x) - q + exp(x)``: defined for every real input. With
    ``log_input=False`` ``input`` is ``p >= 0`` itself (ValueError if negative); ``p = 0`` where
    ``q > 0`` gives ``inf``. ``q = 0`` contributes ``p`` (``0 log 0 = 0``). Summed, ``l >= 0``
    with equality iff ``p = q``.

    Gradient: ``exp(x) - q`` (log_input) or ``1 - q/p``; the target is a constant. Hessian:
    ``exp(x)`` or ``q / p^2``, non-negative either way (convex). Options: ``log_input``.
    Reductions: "mean" over elements, "batchmean" (sum / input.shape[0]), "sum", "none".

    ``poisson_nll(x, q)`` (log_input) equals this minus ``q log q - q``, a constant: same
    gradient. No torch equivalent. Reference: Lee and Seung, "Algorithms for Non-negative Matrix
    Factorization", NIPS 2000 (the divergence D(A || B)); Csiszar's I-divergence (1975).
    """
    check_same_shape(input, target, "input", "target")
    q = target
    has_q = q > 0
    log_q0 = xp.log(xp.where(has_q, q, 1.0))
    if log_input:
        e = xp.exp(input)
        values = xp.where(has_q, q * (log_q0 - input), 0.0) - q + e
        return Items(values, grad=lambda w: scaled(e - q, w), hess=lambda w: scaled(e * 1.0, w))
    check_in_range(xp, input, "input", 0.0, None, "a non-negative measure; or log_input=True")
    p = input
    with np.errstate(divide="ignore"):
        log_p = xp.log(p)
    values = xp.where(has_q, q * (log_q0 - log_p), 0.0) - q + p
    return Items(
        values,
        grad=lambda w: scaled(1.0 - q / p, w),
        hess=lambda w: scaled(q / (p * p), w),
    )
