"""Preference optimisation: losses on per-sequence log-probabilities of preferred ("chosen") and
dispreferred ("rejected") responses.

Inputs are one number per example: ``policy_*_logps`` is ``log pi_theta(y | x)`` (summed over the
response's tokens unless a loss says otherwise), ``reference_*_logps`` the same under the frozen
reference model. Gradients are for the POLICY log-probabilities only; reference log-probabilities
(and lengths, labels, reference points) are constants, as in every trainer (they come from a model
run under ``no_grad``). Each loss is elementwise over the examples, so ``reduction="mean"``
averages over them as TRL's ``losses.mean()`` does.

Stable by construction: ``-log sigmoid(z) = softplus(-z)`` computed as ``max(-z, 0) +
log1p(exp(-|z|))``, so a log-ratio difference of 1e4 gives the exact limit (0 or ``|z|``) and a
finite gradient, where ``log(sigmoid(z))`` would give ``log 0 = -inf``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from losslab.losses._constraints import Boolean, Real
from losslab.losses._primitives import sigmoid, softplus
from losslab.losses._registry import Items, register
from losslab.losses._validation import (
    as_target,
    check_broadcastable,
    check_same_shape,
    value_checks_enabled,
)

__all__ = ["dpo", "ipo", "simpo", "orpo", "kto"]

BETA = Real(0, None, closed="neither")
SMOOTHING = Real(0.0, 0.5)


def _logps(rng: np.random.Generator, n: int, low: float = -30.0, high: float = -1.0) -> np.ndarray:
    return rng.uniform(low, high, size=n)


def _pair_example(rng: np.random.Generator, dtype: Any = "float64", **_: Any) -> tuple[Any, ...]:
    n = int(rng.integers(1, 6))
    pc, pr = _logps(rng, n), _logps(rng, n)
    rc, rr = pc + rng.normal(size=n), pr + rng.normal(size=n)
    return tuple(a.astype(dtype) for a in (pc, pr, rc, rr))


def _constants(xp: Any, like: Any, **arrays: Any) -> list[Any]:
    """Constant inputs with ``like``'s shape, cast to its dtype (dtype in = dtype out)."""
    out = []
    for name, a in arrays.items():
        check_same_shape(like, a, "policy_chosen_logps", name)
        out.append(as_target(xp, a, like, name))
    return out


def _sigmoid_loss(xp: Any, z: Any, smoothing: float) -> tuple[Any, Any, Any]:
    """``(l, dl/dz, d2l/dz2)`` of ``l = -(1 - e) log sigmoid(z) - e log sigmoid(-z)``."""
    values = (1.0 - smoothing) * softplus(xp, -z)
    if smoothing:
        values = values + smoothing * softplus(xp, z)
    s = sigmoid(xp, z)
    return values, s - (1.0 - smoothing), s * sigmoid(xp, -z)


@register(
    "dpo",
    input_kind="log_probabilities",
    target_kind=None,
    layout="elementwise",
    options={"beta": BETA, "label_smoothing": SMOOTHING},
    hessian="nonnegative",
    task="preference",
    formula="-(1-e) log sigmoid(beta h) - e log sigmoid(-beta h), h = (pc - rc) - (pr - rr)",
    example=_pair_example,
    differentiable=("policy_chosen_logps", "policy_rejected_logps"),
    module="DPOLoss",
)
def dpo(
    xp: Any,
    policy_chosen_logps: Any,
    policy_rejected_logps: Any,
    reference_chosen_logps: Any,
    reference_rejected_logps: Any,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
) -> Items:
    """Direct Preference Optimisation: ``l = -log sigmoid(beta h)``, with label smoothing
    ``e``: ``l = -(1 - e) log sigmoid(beta h) - e log sigmoid(-beta h)``.

    ``h = (pc - rc) - (pr - rr)``: the policy's log-ratio against the reference on the chosen
    response minus that on the rejected one (``pc = policy_chosen_logps``, ``rc =
    reference_chosen_logps``, ...). Paper (Rafailov et al., eq. 7): ``L = -log sigmoid(beta
    log(pi(y_w)/pi_ref(y_w)) - beta log(pi(y_l)/pi_ref(y_l)))``. ``label_smoothing = e`` is
    conservative DPO (Mitchell, "A note on DPO with noisy preferences", 2023): the label is
    flipped with probability ``e``.

    Gradient with ``z = beta h``: ``dl/dz = sigmoid(z) - (1 - e)``; ``dl/dpc = beta dl/dz``,
    ``dl/dpr = -beta dl/dz``. Returns ``(grad_policy_chosen, grad_policy_rejected)``. Hessian
    w.r.t. ``pc``: ``beta^2 sigmoid(z) sigmoid(-z)`` (convex in ``h``).

    Options: ``beta`` (> 0; TRL's default 0.1), ``label_smoothing`` in [0, 0.5].
    Mapping: TRL's ``DPOTrainer`` with ``loss_type="sigmoid"`` computes exactly this per pair
    (``logits = chosen_logratios - rejected_logratios``, ``losses = -logsigmoid(beta logits)
    (1 - label_smoothing) - logsigmoid(-beta logits) label_smoothing``) and averages; TRL's
    ``"robust"`` loss type (Chowdhury et al. 2024) divides the smoothed difference by
    ``1 - 2 e`` instead and is not this loss. Liger's ``LigerFusedLinearDPOLoss(beta=...)`` is
    the ``e = 0`` case (it fuses the log-probabilities' computation; pass its per-sequence
    log-probabilities here).
    Reference: Rafailov et al., "Direct Preference Optimization: Your Language Model is Secretly
    a Reward Model", NeurIPS 2023, eq. (7).
    """
    pc, pr = policy_chosen_logps, policy_rejected_logps
    rc, rr, pr = _constants(
        xp, pc, reference_chosen_logps=reference_chosen_logps,
        reference_rejected_logps=reference_rejected_logps, policy_rejected_logps=pr,
    )
    z = beta * ((pc - rc) - (pr - rr))
    values, dz, d2z = _sigmoid_loss(xp, z, label_smoothing)

    def grad(w: Any) -> tuple[Any, Any]:
        g = (beta * w) * dz
        return g, -g

    return Items(values, grad=grad, hess=lambda w: (beta * beta * w) * d2z)


@register(
    "ipo",
    input_kind="log_probabilities",
    target_kind=None,
    layout="elementwise",
    options={"beta": BETA},
    hessian="nonnegative",
    task="preference",
    formula="(h - 1/(2 beta))^2, h = (pc - rc) - (pr - rr)",
    example=_pair_example,
    differentiable=("policy_chosen_logps", "policy_rejected_logps"),
    module="IPOLoss",
)
def ipo(
    xp: Any,
    policy_chosen_logps: Any,
    policy_rejected_logps: Any,
    reference_chosen_logps: Any,
    reference_rejected_logps: Any,
    *,
    beta: float = 0.1,
) -> Items:
    """Identity Preference Optimisation: ``l = (h - 1/(2 beta))^2``,
    ``h = (pc - rc) - (pr - rr)``.

    Paper (Azar et al., eq. 17, with ``tau = beta``): regress the log-likelihood-ratio margin to
    ``1/(2 tau)`` instead of pushing it to infinity, which DPO does on deterministic preferences.
    Gradient: ``dl/dpc = 2 (h - 1/(2 beta))``, ``dl/dpr = -dl/dpc``. Hessian w.r.t. ``pc``: 2.

    Options: ``beta`` (> 0, the paper's ``tau``). Mapping: TRL's ``loss_type="ipo"`` is this
    formula with ``logits = chosen_logratios - rejected_logratios``; note that TRL feeds it
    log-probabilities AVERAGED over each response's tokens (the paper's are sums), so pass the
    averages to reproduce TRL. Liger has no separate IPO loss.
    Reference: Azar et al., "A General Theoretical Paradigm to Understand Learning from Human
    Preferences", AISTATS 2024.
    """
    pc, pr = policy_chosen_logps, policy_rejected_logps
    rc, rr, pr = _constants(
        xp, pc, reference_chosen_logps=reference_chosen_logps,
        reference_rejected_logps=reference_rejected_logps, policy_rejected_logps=pr,
    )
    e = ((pc - rc) - (pr - rr)) - 0.5 / beta

    def grad(w: Any) -> tuple[Any, Any]:
        g = (2.0 * w) * e
        return g, -g

    return Items(e * e, grad=grad, hess=lambda w: 2.0 * w + xp.zeros_like(e))


def _simpo_example(rng: np.random.Generator, dtype: Any = "float64", **_: Any):
    n = int(rng.integers(1, 6))
    lc, lr = rng.integers(1, 40, size=n), rng.integers(1, 40, size=n)
    pc = rng.uniform(-2.0, -0.1, size=n) * lc
    pr = rng.uniform(-2.0, -0.1, size=n) * lr
    return pc.astype(dtype), pr.astype(dtype), lc.astype(dtype), lr.astype(dtype)


@register(
    "simpo",
    input_kind="log_probabilities",
    target_kind=None,
    layout="elementwise",
    options={"beta": BETA, "gamma": Real(), "label_smoothing": SMOOTHING},
    hessian="nonnegative",
    task="preference",
    formula="-log sigmoid(beta (pc/|c| - pr/|r|) - gamma)   (lengths |c|, |r|)",
    example=_simpo_example,
    differentiable=("policy_chosen_logps", "policy_rejected_logps"),
    module="SimPOLoss",
)
def simpo(
    xp: Any,
    policy_chosen_logps: Any,
    policy_rejected_logps: Any,
    chosen_lengths: Any,
    rejected_lengths: Any,
    *,
    beta: float = 0.1,
    gamma: float = 0.5,
    label_smoothing: float = 0.0,
) -> Items:
    """SimPO: ``l = -log sigmoid(beta pc/|c| - beta pr/|r| - gamma)`` (reference-free,
    length-normalised, with a target reward margin ``gamma``).

    ``pc``, ``pr`` are the policy's summed log-probabilities of the chosen and rejected
    responses and ``|c|``, ``|r|`` their lengths in tokens (> 0; any real dtype), so
    ``pc/|c|`` is the average log-probability per token. With label smoothing ``e``:
    ``-(1 - e) log sigmoid(z) - e log sigmoid(-z)``. Paper (Meng et al., eq. 6):
    ``L = -log sigmoid(beta/|y_w| log pi(y_w|x) - beta/|y_l| log pi(y_l|x) - gamma)``.

    Gradient with ``z = beta (pc/|c| - pr/|r|) - gamma`` and ``dl/dz = sigmoid(z) - (1 - e)``:
    ``dl/dpc = beta/|c| dl/dz``, ``dl/dpr = -beta/|r| dl/dz``. Hessian w.r.t. ``pc``:
    ``(beta/|c|)^2 sigmoid(z) sigmoid(-z)``.

    Options: ``beta`` (> 0), ``gamma`` (the margin), ``label_smoothing``. Defaults are TRL's
    ``CPOConfig(loss_type="simpo")`` and Liger's (beta 0.1, gamma 0.5); the paper tunes beta in
    [2, 2.5] with gamma/beta about 0.5. Mapping: TRL passes per-token AVERAGED log-probabilities
    and ``simpo_gamma = gamma`` (its ``gamma_beta_ratio`` is ``gamma / beta``): call this with
    lengths of 1 on averaged inputs, or with sums and lengths. Liger's
    ``LigerFusedLinearSimPOLoss(beta, gamma)`` averages itself: give sums and lengths.
    Reference: Meng, Xia and Chen, "SimPO: Simple Preference Optimization with a Reference-Free
    Reward", NeurIPS 2024.
    """
    pc, pr = policy_chosen_logps, policy_rejected_logps
    lc, lr, pr = _constants(
        xp, pc, chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths,
        policy_rejected_logps=pr,
    )
    for name, a in (("chosen_lengths", lc), ("rejected_lengths", lr)):
        if value_checks_enabled() and not bool(xp.all(a > 0)):
            raise ValueError(f"{name} must be > 0 (token counts); found a value <= 0 or NaN.")
    kc, kr = beta / lc, beta / lr
    values, dz, d2z = _sigmoid_loss(xp, kc * pc - kr * pr - gamma, label_smoothing)

    def grad(w: Any) -> tuple[Any, Any]:
        g = w * dz
        return kc * g, -(kr * g)

    return Items(values, grad=grad, hess=lambda w: w * (kc * kc) * d2z)


def log1mexp(xp: Any, a: Any) -> Any:
    """``log(1 - exp(a))`` for ``a < 0``, accurate everywhere: ``log(-expm1(a))`` near 0 and
    ``log1p(-exp(a))`` below ``-log 2`` (Maechler, "Accurately computing log(1 - exp(-|a|))",
    CRAN Rmpfr vignette, 2012)."""
    near = a > -math.log(2.0)
    return xp.where(
        near, xp.log(-xp.expm1(xp.where(near, a, -1.0))), xp.log1p(-xp.exp(xp.where(near, -1.0, a)))
    )


def _orpo_example(rng: np.random.Generator, dtype: Any = "float64", **_: Any):
    n = int(rng.integers(1, 6))
    return (rng.uniform(-3.0, -0.05, size=n).astype(dtype),
            rng.uniform(-3.0, -0.05, size=n).astype(dtype))


@register(
    "orpo",
    input_kind="log_probabilities",
    target_kind=None,
    layout="elementwise",
    options={"beta": BETA, "nll": Boolean()},
    hessian="indefinite",
    task="preference",
    formula="-pc - beta log sigmoid(log odds(pc) - log odds(pr)), odds(a) = e^a / (1 - e^a)",
    example=_orpo_example,
    differentiable=("policy_chosen_logps", "policy_rejected_logps"),
    module="ORPOLoss",
)
def orpo(
    xp: Any,
    policy_chosen_logps: Any,
    policy_rejected_logps: Any,
    *,
    beta: float = 0.1,
    nll: bool = True,
) -> Items:
    """ORPO: ``l = -pc - beta log sigmoid(log odds(pc) - log odds(pr))`` (reference-free).

    ``pc``, ``pr`` are the policy's AVERAGE per-token log-probabilities of the chosen and
    rejected responses (strictly negative: ValueError otherwise, the odds of a certain response
    are infinite), and ``odds(a) = e^a / (1 - e^a)``, so ``log odds(a) = a - log(1 - e^a)``
    (computed with ``log1mexp``, accurate as ``a -> 0``). Paper (Hong et al., eqs. 6-7):
    ``L_ORPO = L_SFT + lambda L_OR``, ``L_OR = -log sigmoid(log(odds(y_w)/odds(y_l)))``, and
    ``L_SFT = -pc`` is the chosen response's average negative log-likelihood; ``nll=False``
    leaves ``L_SFT`` out (the odds-ratio term alone).

    Gradient with ``h = lo(pc) - lo(pr)``, ``lo'(a) = 1/(1 - e^a)``: ``dl/dpc = -beta
    sigmoid(-h) lo'(pc) - [nll]``, ``dl/dpr = beta sigmoid(-h) lo'(pr)``. Hessian w.r.t. ``pc``:
    ``beta [sigmoid(h) sigmoid(-h) lo'(pc)^2 - sigmoid(-h) lo''(pc)]``, ``lo''(a) = e^a/(1 -
    e^a)^2``: can be negative.

    Options: ``beta`` (the paper's lambda; TRL's name and default 0.1), ``nll``. Mapping: TRL's
    ``ORPOTrainer.odds_ratio_loss`` returns ``beta logsigmoid(h)`` and the trainer's loss is
    ``policy_nll_loss - mean(that)``: ``orpo(nll=False)`` averaged is its second term; TRL's NLL
    is a token-level mean over the whole batch, equal to the mean of ``-pc`` when the chosen
    responses have equal lengths. Liger's ``LigerFusedLinearORPOLoss(beta)`` computes the same
    sum (NLL + ``beta`` odds-ratio term) from hidden states.
    Reference: Hong, Lee and Thorne, "ORPO: Monolithic Preference Optimization without Reference
    Model", EMNLP 2024.
    """
    pc = policy_chosen_logps
    (pr,) = _constants(xp, pc, policy_rejected_logps=policy_rejected_logps)
    for name, a in (("policy_chosen_logps", pc), ("policy_rejected_logps", pr)):
        if value_checks_enabled() and not bool(xp.all(a < 0)):
            raise ValueError(
                f"{name} must be < 0 (average log-probabilities; a response of probability 1 has "
                f"infinite odds); found a value >= 0 or NaN."
            )
    h = (pc - log1mexp(xp, pc)) - (pr - log1mexp(xp, pr))
    s_neg = sigmoid(xp, -h)
    d_c, d_r = -1.0 / xp.expm1(pc), -1.0 / xp.expm1(pr)  # lo'(a) = 1 / (1 - e^a)
    values = beta * softplus(xp, -h)
    if nll:
        values = values - pc

    def grad(w: Any) -> tuple[Any, Any]:
        g = (beta * w) * s_neg
        gc = -(g * d_c)
        return (gc - w if nll else gc), g * d_r

    def hess(w: Any) -> Any:
        lo2 = xp.exp(pc) * d_c * d_c
        return (beta * w) * (sigmoid(xp, h) * s_neg * d_c * d_c - s_neg * lo2)

    return Items(values, grad=grad, hess=hess)


def _kto_example(rng: np.random.Generator, dtype: Any = "float64", **_: Any):
    n = int(rng.integers(1, 6))
    p = _logps(rng, n)
    r = p + rng.normal(size=n)
    y = (rng.random(size=n) < 0.5).astype(float)
    z0 = np.array([abs(rng.normal()) * 0.5])  # one reference point for the batch
    return p.astype(dtype), r.astype(dtype), y.astype(dtype), z0.astype(dtype)


@register(
    "kto",
    input_kind="log_probabilities",
    target_kind="unit_interval",
    layout="elementwise",
    options={"beta": BETA, "desirable_weight": Real(0, None), "undesirable_weight": Real(0, None)},
    hessian="indefinite",
    task="preference",
    formula="y wD sigmoid(beta (z0 - r)) + (1 - y) wU sigmoid(beta (r - z0)), r = p - ref",
    example=_kto_example,
    differentiable=("policy_logps",),
    module="KTOLoss",
)
def kto(
    xp: Any,
    policy_logps: Any,
    reference_logps: Any,
    target: Any,
    reference_point: Any,
    *,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> Items:
    """Kahneman-Tversky Optimisation: one response per example, labelled desirable or not.

    ``r = policy_logps - reference_logps`` (the implied reward over ``beta``), ``z0 =
    reference_point`` (the KL reference point, a constant; broadcast against ``r``), ``y =
    target``: 1 for a desirable response, 0 for an undesirable one (values in between mix the
    two losses linearly). ``l = y wD (1 - sigmoid(beta (r - z0))) + (1 - y) wU (1 -
    sigmoid(beta (z0 - r)))``, ``wD``/``wU`` the desirable/undesirable weights. Paper
    (Ethayarajh et al., eq. 8): ``L = E[w(y) (1 - v(x, y))]``, ``v = sigmoid(beta (r - z0))``
    for desirable and ``sigmoid(beta (z0 - r))`` for undesirable responses.

    Gradient with ``a = beta (r - z0)``: ``dl/dr = beta sigmoid(a) sigmoid(-a) ((1 - y) wU -
    y wD)``. Hessian: ``beta^2 sigmoid(a) sigmoid(-a) (1 - 2 sigmoid(a)) ((1 - y) wU - y wD)``,
    of either sign.

    Options: ``beta`` (> 0), ``desirable_weight``, ``undesirable_weight`` (>= 0; the paper
    keeps ``wD n_D / (wU n_U)`` in [1, 4/3]). Mapping: TRL's ``kto_loss`` estimates ``z0`` as
    ``mean(policy_KL_logps - reference_KL_logps).clamp(min=0)``, detached, from mismatched pairs
    of the batch: compute that and pass it as ``reference_point``; its losses are
    ``cat(wD chosen_losses, wU rejected_losses)``, averaged: this loss on the concatenated
    batch with ``y`` 1 then 0. Liger's ``LigerFusedLinearKTOLoss`` takes ``preference_labels``
    (our ``target``) and a precomputed ``kl`` (our ``reference_point``).
    Reference: Ethayarajh et al., "KTO: Model Alignment as Prospect Theoretic Optimization",
    ICML 2024.
    """
    p = policy_logps
    (ref,) = _constants(xp, p, reference_logps=reference_logps)
    check_broadcastable(reference_point, tuple(p.shape), "reference_point", "policy_logps")
    z0 = as_target(xp, reference_point, p, "reference_point")
    y = target
    a = beta * ((p - ref) - z0)
    s_pos, s_neg = sigmoid(xp, a), sigmoid(xp, -a)
    values = (desirable_weight * y) * s_neg + (undesirable_weight * (1.0 - y)) * s_pos
    k = s_pos * s_neg * ((undesirable_weight * (1.0 - y)) - desirable_weight * y)
    return Items(
        values,
        grad=lambda w: (beta * w) * k,
        hess=lambda w: (beta * beta * w) * k * (1.0 - 2.0 * s_pos),
    )
