"""Second derivatives against torch's double backward, over every loss and its options.

``Loss.hvp`` (and so ``Loss.hess``, its diagonal, which test_contract.py ties to ``hvp``) must
equal ``torch.autograd``'s Hessian-vector product of an independent definition: torch's own loss
where torch has one (``torch.nn.functional``, with ``reduction="sum"``), otherwise the formula
written here in torch operations, each citing where the definition comes from (for the four
segmentation compounds, MONAI's and Berman et al.'s definitions in tests/test_segmentation.py,
which checks them the same way). The catalog's
option grids are spelled out per loss below (array options are fitted to the drawn inputs).

The second half checks ``losslab.torch``'s double backward (``create_graph=True``, which
differentiates the catalog's value formula with autograd) against the closed-form ``hvp``, for
every catalog loss with second derivatives and every reduction.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gradcheck import catalog_cases, generic_adapter_names

import losslab
import losslab.torch as lt

W3 = np.array([0.5, 2.0, 1.0])
W4 = np.array([0.5, 1.0, 2.0, 1.5])


def _same_shape(inputs, rng):
    """A per-element weight of the input's shape (mse, l1, huber's ``weight``)."""
    return rng.uniform(0.3, 2.0, size=np.shape(inputs[0]))


def _grid(**axes):
    """Every combination of the given option values (dicts), defaults spelled as None-free."""
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


# --- references written in torch (where torch has no such loss) ----------------------------------


def _focal(x, y, *, alpha=0.25, gamma=2.0):
    # torchvision 0.2x, torchvision/ops/focal_loss.py: sigmoid_focal_loss
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss.sum()


def _class_rows(x, y):
    """(N, C, *rest) logits and (N, *rest) labels; unbatched (C,) becomes one row."""
    if x.ndim == 1:
        return x[None], y.reshape(1)
    return x, y


def _softmax_focal(x, y, *, gamma=2.0, alpha=None, ignore_index=-100):
    # Lin et al., ICCV 2017, eq. (5), with softmax probabilities: -alpha_y (1 - p_y)^g log p_y
    x, y = _class_rows(x, y)
    valid = y != ignore_index
    safe = torch.where(valid, y, torch.zeros_like(y))
    logp = torch.log_softmax(x, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
    a = 1.0 if alpha is None else (
        alpha if isinstance(alpha, float) else torch.as_tensor(alpha, dtype=x.dtype)[safe]
    )
    per = -a * (1 - logp.exp()) ** gamma * logp
    return torch.where(valid, per, torch.zeros_like(per)).sum()


def _poly1(x, y, *, epsilon=1.0, weight=None, ignore_index=-100, label_smoothing=0.0):
    # Leng et al., ICLR 2022, reference code: CE + epsilon * (1 - p_t), p_t from the smoothed
    # targets; the poly term weighted by w_y (losslab's documented choice).
    ce = F.cross_entropy(x, y, weight=weight, ignore_index=ignore_index,
                         label_smoothing=label_smoothing, reduction="none")
    xr, yr = _class_rows(x, y)
    c = xr.shape[1]
    valid = yr != ignore_index
    safe = torch.where(valid, yr, torch.zeros_like(yr))
    p_y = torch.softmax(xr, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
    p_t = (1 - label_smoothing) * p_y + label_smoothing / c
    w_y = torch.ones_like(p_y) if weight is None else weight[safe]
    poly = torch.where(valid, w_y * (1 - p_t), torch.zeros_like(p_t))
    return ce.sum() + epsilon * poly.sum()


def _overlap(p, t, *, alpha, beta, smooth):
    # Salehi et al., MLMI 2017 (Tversky); dice is alpha = beta = 1/2 with smooth / 2,
    # jaccard alpha = beta = 1 (segmentation_models_pytorch's scores, no eps clamp)
    axes = tuple(range(1, p.ndim))
    tp = (p * t).sum(axes)
    fp = (p * (1 - t)).sum(axes)
    fn = ((1 - p) * t).sum(axes)
    return (1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)).sum()


def _js(x, q, *, dim=-1):
    # Lin, IEEE Trans. Inf. Theory 37 (1991): JS = KL(p||m)/2 + KL(q||m)/2, p = softmax(x),
    # m = (p + q)/2, written as H(m) - H(p)/2 - H(q)/2 (no q/m, whose derivative is 0/0 at q = 0)
    p = torch.softmax(x, dim=dim)
    m = (p + q) / 2
    return (0.5 * p * torch.log_softmax(x, dim=dim) + 0.5 * torch.xlogy(q, q)
            - m * torch.log(m)).sum()


def _multi_margin(x, y, *, p=1, margin=1.0, weight=None):
    # torch.nn.MultiMarginLoss's documented formula (its kernel has no double backward):
    # sum_{i != y} w_y max(0, margin - x_y + x_i)^p / C
    x, y = _class_rows(x, y)
    c = x.shape[1]
    z = torch.clamp_min(margin - x.gather(1, y[:, None]) + x, 0) ** p
    z = z * (torch.arange(c)[None, :] != y[:, None])
    w = 1.0 if weight is None else weight[y][:, None]
    return (w * z).sum() / c


def _multilabel_margin(x, y):
    # torch.nn.MultiLabelMarginLoss's documented formula (no double backward in its kernel):
    # sum_{j in targets, i not in targets} max(0, 1 - (x_j - x_i)) / C, targets before the first -1
    x, y = (x[None], y[None]) if x.ndim == 1 else (x, y)
    c = x.shape[1]
    listed = torch.cumprod((y >= 0).to(torch.int64), dim=1).bool()
    is_t = torch.zeros_like(x, dtype=torch.bool)
    for row in range(x.shape[0]):
        is_t[row, y[row][listed[row]]] = True
    z = torch.clamp_min(1 - x[:, :, None] + x[:, None, :], 0)  # (N, j, i)
    mask = is_t[:, :, None] & ~is_t[:, None, :]
    return (z * mask).sum() / c


def _info_nce(q, k, *, temperature=0.07, symmetric=False):
    # van den Oord et al. 2018, eq. (4); CLIP (Radford et al. 2021, Fig. 3) for symmetric:
    # cross-entropy over normalised similarities, key i the positive of query i
    logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / temperature
    labels = torch.arange(q.shape[0])
    row = F.cross_entropy(logits, labels, reduction="none")
    if symmetric:
        row = 0.5 * (row + F.cross_entropy(logits.T, labels, reduction="none"))
    return row.sum()


def _supcon(z, y, *, temperature=0.07):
    # Khosla et al. 2020, eq. (2) (L_out); anchors without positives dropped, as
    # pytorch-metric-learning's SupConLoss
    e = F.normalize(z, dim=1)
    s = e @ e.T / temperature
    off = ~torch.eye(len(y), dtype=torch.bool)
    pos = (y[:, None] == y[None, :]) & off
    logp = s - torch.logsumexp(s.masked_fill(~off, -math.inf), dim=1, keepdim=True)
    count = pos.sum(1)
    per = -(logp * pos).sum(1) / count.clamp_min(1)
    return per[count > 0].sum()


def _margin_logits(x, y, w, scale, target_logit):
    cos = F.normalize(x, dim=1) @ F.normalize(w, dim=1).T
    c = cos.gather(1, y[:, None])
    return F.cross_entropy(scale * cos.scatter(1, y[:, None], target_logit(c)), y,
                           reduction="sum")


def _arcface(x, y, w, *, scale=64.0, margin=0.5, easy_margin=False):
    # insightface ArcMarginProduct (Deng et al. 2019, eq. 3), with its theta + m > pi fallback
    def target(c):
        phi = c * math.cos(margin) - torch.sqrt(1 - c * c) * math.sin(margin)
        if easy_margin:
            return torch.where(c > 0, phi, c)
        return torch.where(c > math.cos(math.pi - margin), phi, c - math.sin(margin) * margin)

    return _margin_logits(x, y, w, scale, target)


def _cosface(x, y, w, *, scale=64.0, margin=0.35):
    # Wang et al. 2018 (CosFace), eq. (4)
    return _margin_logits(x, y, w, scale, lambda c: c - margin)


def _circle(z, y, *, gamma=80.0, margin=0.4):
    # keras 3 losses.circle on L2-normalised rows (Sun et al. 2020, eq. 6), summed
    e = F.normalize(z, dim=1)
    d = torch.clamp(1 - e @ e.T, min=0.0)
    same = y[:, None] == y[None, :]
    pos = same & ~torch.eye(len(y), dtype=torch.bool)
    neg = ~same
    pw = torch.clamp((margin + d) * pos, min=0.0)
    nw = torch.clamp((1 + margin - d) * neg, min=0.0)
    p = torch.logsumexp(torch.where(pos, -gamma * pw * (margin - d), -math.inf), dim=1)
    n = torch.logsumexp(torch.where(neg, gamma * nw * ((1 - margin) - d), -math.inf), dim=1)
    live = torch.isfinite(p) & torch.isfinite(n)
    return F.softplus(torch.where(live, p + n, torch.zeros_like(p)))[live].sum()


def _contrastive(x1, x2, y, *, margin=1.0):
    # Hadsell, Chopra and LeCun, CVPR 2006, eq. (4), labels -1/+1 (+1 similar)
    d = torch.linalg.vector_norm(x1 - x2, dim=-1)
    return torch.where(y > 0, 0.5 * d**2, 0.5 * torch.clamp(margin - d, min=0.0) ** 2).sum()


def _multi_similarity(z, y, *, alpha=2.0, beta=50.0, base=0.5):
    # Wang et al., CVPR 2019, eq. (8), all pairs (pytorch-metric-learning's MultiSimilarityLoss)
    e = F.normalize(z, dim=1)
    s = e @ e.T
    same = y[:, None] == y[None, :]
    pos = same & ~torch.eye(len(y), dtype=torch.bool)
    p = torch.where(pos, torch.exp(-alpha * (s - base)), torch.zeros_like(s)).sum(1)
    n = torch.where(~same, torch.exp(beta * (s - base)), torch.zeros_like(s)).sum(1)
    return (torch.log1p(p) / alpha + torch.log1p(n) / beta).sum()


def _barron(d, alpha, scale):
    # Barron, "A General and Adaptive Robust Loss Function", CVPR 2019, eq. (1) and its limits
    z = (d / scale) ** 2
    if alpha == 2:
        return 0.5 * z
    if alpha == 0:
        return torch.log(0.5 * z + 1)
    if alpha == -math.inf:
        return 1 - torch.exp(-0.5 * z)
    if alpha == math.inf:
        return torch.exp(0.5 * z) - 1
    b = abs(alpha - 2)
    return b / alpha * ((z / b + 1) ** (alpha / 2) - 1)


def _smoothed_logsigmoid(z, e):
    # TRL 0.2x DPOTrainer.dpo_loss ("sigmoid"): -(1 - e) logsigmoid(z) - e logsigmoid(-z)
    return -(1 - e) * F.logsigmoid(z) - e * F.logsigmoid(-z)


def _dpo(pc, pr, rc, rr, *, beta=0.1, label_smoothing=0.0):
    # Rafailov et al., NeurIPS 2023, eq. (7); conservative DPO's label smoothing as TRL's
    return _smoothed_logsigmoid(beta * ((pc - rc) - (pr - rr)), label_smoothing).sum()


def _ipo(pc, pr, rc, rr, *, beta=0.1):
    # Azar et al., AISTATS 2024, eq. (17); TRL's "ipo": (h - 1/(2 beta))^2
    return (((pc - rc) - (pr - rr) - 1 / (2 * beta)) ** 2).sum()


def _simpo(pc, pr, lc, lr, *, beta=0.1, gamma=0.5, label_smoothing=0.0):
    # Meng, Xia and Chen, NeurIPS 2024, eq. (6)
    return _smoothed_logsigmoid(beta * pc / lc - beta * pr / lr - gamma, label_smoothing).sum()


def _orpo(pc, pr, *, beta=0.1, nll=True):
    # Hong, Lee and Thorne, EMNLP 2024, eqs. (6)-(7): log odds(a) = a - log(1 - e^a)
    def log_odds(a):
        return a - torch.log(-torch.expm1(a))

    loss = -beta * F.logsigmoid(log_odds(pc) - log_odds(pr))
    return (loss - pc if nll else loss).sum()


def _kto(p, ref, y, z0, *, beta=0.1, desirable_weight=1.0, undesirable_weight=1.0):
    # Ethayarajh et al., ICML 2024, eq. (8): w(y) (1 - v), v = sigmoid(+-beta (r - z0))
    r = p - ref
    return (y * desirable_weight * (1 - torch.sigmoid(beta * (r - z0)))
            + (1 - y) * undesirable_weight * (1 - torch.sigmoid(beta * (z0 - r)))).sum()


def _generalized_ce(x, y, *, q=0.5, ignore_index=-100):
    # Zhang and Sabuncu, NeurIPS 2018, eq. (6): (1 - p_y^q) / q
    x, y = _class_rows(x, y)
    valid = y != ignore_index
    safe = torch.where(valid, y, torch.zeros_like(y))
    p_y = torch.softmax(x, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
    return torch.where(valid, (1 - p_y**q) / q, torch.zeros_like(p_y)).sum()


def _categorical_hinge(x, y, *, margin=1.0):
    # Crammer and Singer, JMLR 2 (2001): max(0, margin + max_{c != y} x_c - x_y)
    x, y = _class_rows(x, y)
    x_y = x.gather(1, y.unsqueeze(1))
    wrong = x.masked_fill(F.one_hot(y, x.shape[1]).movedim(-1, 1).bool(), -math.inf)
    return torch.clamp_min(margin + wrong.amax(1) - x_y.squeeze(1), 0).sum()


def _focal_tversky(p, t, *, alpha=0.3, beta=0.7, gamma=0.75, smooth=1.0):
    # Abraham and Khan, ISBI 2019: (1 - TI)^gamma per sample (one class: mode="binary")
    axes = tuple(range(1, p.ndim))
    tp, fp, fn = (p * t).sum(axes), (p * (1 - t)).sum(axes), ((1 - p) * t).sum(axes)
    return ((1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)) ** gamma).sum()


def _mcc(p, t, *, smooth=1e-5):
    # Abhishek and Hamarneh, ISBI 2021: 1 - MCC of the soft confusion counts, per sample
    axes = tuple(range(1, p.ndim))
    tp = (p * t).sum(axes) + smooth
    fp = (p * (1 - t)).sum(axes) + smooth
    fn = ((1 - p) * t).sum(axes) + smooth
    tn = ((1 - p) * (1 - t)).sum(axes) + smooth
    mcc = (tp * tn - fp * fn) / torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (1 - mcc).sum()


def _generalized_dice(p, t, *, smooth=1e-5):
    # Sudre et al., DLMIA 2017, w_c = 1 / T_c^2; MONAI 1.6's GeneralizedDiceLoss: an empty
    # class takes the sample's largest finite weight
    axes = tuple(range(2, p.ndim))
    inter, psum, tsum = (p * t).sum(axes), p.sum(axes), t.sum(axes)
    w = 1 / tsum**2
    finite = torch.isfinite(w)
    w0 = torch.where(finite, w, torch.zeros_like(w))
    w = torch.where(finite, w, w0.amax(1, keepdim=True))
    score = (2 * (w * inter).sum(1) + smooth) / ((w * (psum + tsum)).sum(1) + smooth)
    return (1 - score).sum()


TORCH_FORMULAS = {
    "multi_margin": _multi_margin,
    "multilabel_margin": _multilabel_margin,
    "focal": _focal,
    "softmax_focal": _softmax_focal,
    "poly1": _poly1,
    # Keras losses.log_cosh
    "log_cosh": lambda x, y: torch.log(torch.cosh(x - y)).sum(),
    # Koenker & Bassett (1978)
    "quantile": lambda x, y, quantile=0.5: torch.maximum(
        quantile * (y - x), (quantile - 1) * (y - x)).sum(),
    # Cortes & Vapnik (1995); Keras losses.squared_hinge
    "hinge": lambda x, y, margin=1.0: torch.clamp_min(margin - y * x, 0).sum(),
    "squared_hinge": lambda x, y, margin=1.0: (torch.clamp_min(margin - y * x, 0) ** 2).sum(),
    # LightGBM RegressionTweedieLoss / XGBoost reg:tweedie (value whose gradient they use)
    "tweedie": lambda x, y, power=1.5: (
        -y * torch.exp((1 - power) * x) / (1 - power) + torch.exp((2 - power) * x) / (2 - power)
    ).sum(),
    "dice": lambda p, t, smooth=1.0: _overlap(p, t, alpha=0.5, beta=0.5, smooth=smooth / 2),
    "jaccard": lambda p, t, smooth=1.0: _overlap(p, t, alpha=1.0, beta=1.0, smooth=smooth),
    "tversky": lambda p, t, alpha=0.5, beta=0.5, smooth=1.0: _overlap(
        p, t, alpha=alpha, beta=beta, smooth=smooth),
    "js_div": _js,
    # XGBoost 3.2 PseudoHuberRegression (reg:pseudohubererror), slope = delta
    "pseudo_huber": lambda x, y, delta=1.0: (
        delta**2 * (torch.sqrt(1 + ((x - y) / delta) ** 2) - 1)).sum(),
    # Newey & Powell (1987)
    "expectile": lambda x, y, expectile=0.5: (
        torch.abs(expectile - ((y - x) < 0).to(x.dtype)) * (y - x) ** 2).sum(),
    # XGBoost 3.2 reg:squaredlogerror: 1/2 [log(p + 1) - log(y + 1)]^2
    "msle": lambda x, y: (0.5 * (torch.log1p(x) - torch.log1p(y)) ** 2).sum(),
    # LightGBM 4.7 mape: |y - p| / max(1, |y|) (epsilon generalises the 1)
    "mape": lambda x, y, epsilon=1.0: (torch.abs(x - y) / torch.clamp_min(y.abs(), epsilon)).sum(),
    # scikit-learn 1.x HalfGammaLoss: y exp(-x) + x, plus its constant -1 - log y
    "gamma_deviance": lambda x, y: (y * torch.exp(-x) + x - 1 - torch.log(y)).sum(),
    # Freund & Schapire (1997): exp(-y f)
    "exponential": lambda x, y: torch.exp(-y * x).sum(),
    "info_nce": _info_nce,
    "supcon": _supcon,
    "arcface": _arcface,
    "cosface": _cosface,
    "circle": _circle,
    "multi_similarity": _multi_similarity,
    "contrastive": _contrastive,
    # Black and Anandan (1996) / Barron (2019), alpha = 0: log(1/2 (d/c)^2 + 1)
    "cauchy": lambda x, y, scale=1.0: _barron(x - y, 0.0, scale).sum(),
    # Geman and McClure (1987) as Barron's alpha = -2: 2 (d/c)^2 / ((d/c)^2 + 4)
    "geman_mcclure": lambda x, y, scale=1.0: _barron(x - y, -2.0, scale).sum(),
    # Dennis and Welsch (1978), Barron's alpha = -inf: 1 - exp(-(d/c)^2 / 2)
    "welsch": lambda x, y, scale=1.0: _barron(x - y, -math.inf, scale).sum(),
    "general_robust": lambda x, y, alpha=1.0, scale=1.0: _barron(x - y, alpha, scale).sum(),
    "dpo": _dpo,
    "ipo": _ipo,
    "simpo": _simpo,
    "orpo": _orpo,
    "kto": _kto,
    # Chowdhery et al. (PaLM), section 5: scale * logsumexp(x)^2
    "z_loss": lambda x, dim=-1, scale=1e-4: (scale * torch.logsumexp(x, dim) ** 2).sum(),
    # Lee and Seung (NIPS 2000), D(q || p) with p = exp(x) (log_input) or p = x
    "generalized_kl": lambda x, q, log_input=True: (
        torch.xlogy(q, q) - q * (x if log_input else torch.log(x)) - q
        + (torch.exp(x) if log_input else x)).sum(),
    # total variation distance, 1/2 sum |p - q| (piecewise linear: a zero Hessian)
    "tvd": lambda p, q, dim=-1: (0.5 * (p - q).abs().sum(dim)).sum(),
    "generalized_ce": _generalized_ce,
    "categorical_hinge": _categorical_hinge,
    "focal_tversky": _focal_tversky,
    "mcc": _mcc,
    "generalized_dice": _generalized_dice,
}


# Second derivatives checked against a peer's torch definition by double backward elsewhere.
CHECKED_ELSEWHERE = {
    name: f"hvp against {peer}'s definition by double backward in tests/test_segmentation.py"
    for name, peer in (("dice_ce", "MONAI"), ("dice_focal", "MONAI"),
                       ("lovasz_hinge", "Berman et al."), ("lovasz_softmax", "Berman et al."))
}


# --- option grids (array options: an array, or a function of the drawn inputs) ------------------

CLASS = dict(weight=[None, W4], ignore_index=[-100, 1], label_smoothing=[0.0, 0.2])
GRIDS = {
    "mse": _grid(weight=[None, _same_shape]),
    "l1": _grid(weight=[None, _same_shape]),
    "huber": _grid(delta=[0.5, 1.0, 2.0], weight=[None, _same_shape]),
    "smooth_l1": _grid(beta=[0.0, 0.5, 1.5]),
    "quantile": _grid(quantile=[0.1, 0.5, 0.9]),
    "bce": _grid(weight=[None, W3]),
    "bce_with_logits": _grid(weight=[None, W3], pos_weight=[None, W3]),
    "focal": _grid(alpha=[0.25, -1.0, 0.9], gamma=[0.0, 0.5, 1.0, 2.0, 3.0]),
    "multilabel_soft_margin": _grid(weight=[None, W3]),
    "cross_entropy": _grid(**CLASS) + [{"probabilities": True, "weight": w, "label_smoothing": s}
                                        for w in (None, W4) for s in (0.0, 0.2)],
    "poly1": _grid(epsilon=[-0.5, 1.0, 2.5], **CLASS),
    "nll": _grid(weight=[None, W4], ignore_index=[-100, 1]),
    "softmax_focal": _grid(gamma=[0.0, 0.5, 2.0], alpha=[None, 0.25, W4], ignore_index=[-100, 1]),
    "poisson_nll": _grid(log_input=[True, False], full=[False, True], eps=[1e-8, 0.5]),
    "gaussian_nll": _grid(full=[False, True], eps=[1e-6, 0.5]),
    "tweedie": _grid(power=[1.2, 1.5, 1.8]),
    "hinge_embedding": _grid(margin=[0.5, 1.0, 2.0]),
    "hinge": _grid(margin=[0.5, 1.0, 2.0]),
    "squared_hinge": _grid(margin=[0.5, 1.0, 2.0]),
    "margin_ranking": _grid(margin=[0.0, 0.5]),
    "multi_margin": _grid(p=[1, 2], margin=[0.5, 1.0], weight=[None, W4]),
    "cosine_embedding": _grid(margin=[0.0, 0.3]),
    "triplet_margin": _grid(margin=[0.5, 1.0], p=[1.0, 2.0, 3.0], swap=[False, True]),
    "kl_div": _grid(log_target=[False, True]),
    "js_div": _grid(dim=[-1, 0, 1]),
    "dice": _grid(smooth=[0.0, 1.0]),
    "jaccard": _grid(smooth=[0.0, 1.0]),
    "tversky": _grid(alpha=[0.3, 0.7], beta=[0.3, 0.7], smooth=[0.0, 1.0]),
    "pseudo_huber": _grid(delta=[0.5, 1.0, 3.0]),
    "expectile": _grid(expectile=[0.1, 0.5, 0.9]),
    "mape": _grid(epsilon=[1.0, 1e-3]),
    "info_nce": _grid(temperature=[0.07, 0.5], symmetric=[False, True]),
    "supcon": _grid(temperature=[0.1, 0.5]),
    "arcface": _grid(scale=[4.0, 16.0], margin=[0.3, 0.5], easy_margin=[False, True]),
    "cosface": _grid(scale=[4.0, 16.0], margin=[0.2, 0.35]),
    "circle": _grid(gamma=[4.0, 16.0], margin=[0.25, 0.4]),
    "multi_similarity": _grid(alpha=[2.0, 0.5], beta=[50.0, 5.0], base=[0.5, -0.2]),
    "contrastive": _grid(margin=[0.5, 1.0, 2.0]),
    "cauchy": _grid(scale=[0.5, 1.0, 2.0]),
    "geman_mcclure": _grid(scale=[0.5, 1.0, 2.0]),
    "welsch": _grid(scale=[0.5, 1.0, 2.0]),
    "general_robust": _grid(alpha=[2.0, 1.0, 0.0, -2.0, -math.inf, math.inf, 0.5, 3.0],
                            scale=[0.7, 1.5]),
    "dpo": _grid(beta=[0.1, 2.0], label_smoothing=[0.0, 0.2]),
    "ipo": _grid(beta=[0.1, 1.0]),
    "simpo": _grid(beta=[0.1, 2.5], gamma=[0.0, 0.5], label_smoothing=[0.0, 0.2]),
    "orpo": _grid(beta=[0.1, 1.0], nll=[True, False]),
    "kto": _grid(beta=[0.1, 2.0], desirable_weight=[1.0, 1.33], undesirable_weight=[1.0, 0.5]),
    "z_loss": _grid(dim=[-1, 0], scale=[1e-4, 1.0]),
    "generalized_kl": _grid(log_input=[True, False]),
    "tvd": _grid(dim=[-1, 0]),
    "generalized_ce": _grid(q=[0.1, 0.5, 1.0], ignore_index=[-100, 1]),
    "categorical_hinge": _grid(margin=[0.5, 1.0, 2.0]),
    "focal_tversky": _grid(gamma=[0.75, 1.0, 2.0], smooth=[0.5, 1.0]),
    "mcc": _grid(smooth=[1e-5, 0.5]),
    "generalized_dice": _grid(smooth=[1e-5, 1.0]),
}

SECOND = [n for n in losslab.available() if losslab.spec(n).hessian is not None]
CASES = [
    (name, options)
    for name in SECOND
    for options in GRIDS.get(name, [{}])
]
IDS = [
    f"{n}-" + "-".join(
        f"{k}={'arr' if callable(v) or isinstance(v, np.ndarray) else v}" for k, v in o.items()
    ) for n, o in CASES
]


def _torch_hvp(scalar, x, v):
    """(gradient, Hessian times v) of ``scalar`` w.r.t. ``x`` by torch's double backward; a
    gradient that does not depend on ``x`` (piecewise linear losses) has a zero Hessian."""
    (g,) = torch.autograd.grad(scalar, x, create_graph=True)
    if not g.requires_grad:
        return g, np.zeros(x.shape)
    (hv,) = torch.autograd.grad((g * torch.tensor(v)).sum(), x, allow_unused=True)
    return g, (np.zeros(x.shape) if hv is None else hv.detach().numpy(force=True))


def _draw(name, options, rng):
    """(losslab options, NumPy inputs) for one case: arrays fitted to the inputs."""
    spec = losslab.spec(name)
    options = dict(options)
    probabilities = options.pop("probabilities", False)
    fixed = {k: v for k, v in options.items() if v is not None and not callable(v)}
    for _ in range(50):
        inputs = [np.array(a, copy=True) for a in spec.example(rng, "float64", **fixed)]
        if not probabilities or inputs[0].ndim >= 2:
            break
    if probabilities:
        # class probabilities over axis 1 instead of indices
        shape = inputs[0].shape
        q = rng.dirichlet(np.ones(shape[1]), size=shape[:1] + shape[2:])
        inputs[1] = np.moveaxis(q, -1, 1)
    if name == "kl_div" and options.get("log_target"):
        inputs[1] = np.maximum(inputs[1], -30.0)  # torch: 0 * -inf is NaN
    resolved = {k: (v(inputs, rng) if callable(v) else v) for k, v in options.items()}
    return resolved, inputs


def _torch_reference(name, inputs, options):
    """The scalar to differentiate twice: torch's loss (sum), or the formula above."""
    spec = losslab.spec(name)
    tensors = [torch.tensor(a) for a in inputs]
    i0 = spec.inputs.index(spec.differentiable[0])
    tensors[i0].requires_grad_(True)
    kw = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in options.items()}
    if name in TORCH_FORMULAS:
        return tensors, i0, lambda *t: TORCH_FORMULAS[name](*t, **kw)
    if spec.torch is None:
        return None
    fn = getattr(F, spec.torch)
    return tensors, i0, lambda *t: fn(*t, reduction="sum", **kw)


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_hvp_equals_torch_double_backward(name, options):
    rng = np.random.default_rng(21)
    for _ in range(2):
        resolved, inputs = _draw(name, options, rng)
        if name in CHECKED_ELSEWHERE:
            pytest.skip(f"{name}: {CHECKED_ELSEWHERE[name]}")
        ref = _torch_reference(name, inputs, resolved)
        if ref is None:
            pytest.skip(f"{name}: no torch loss and no torch formula in this file yet")
        tensors, i0, f = ref
        x = tensors[i0]
        v = rng.normal(size=x.shape)
        g, want = _torch_hvp(f(*tensors), x, v)
        loss = losslab.get(name, reduction="sum", **resolved)
        np.testing.assert_allclose(loss.hvp(*inputs, v=v), want, rtol=1e-7, atol=1e-9)
        # and the gradient of the same reference, so that the reference is the same loss
        np.testing.assert_allclose(
            np.asarray(loss.grad(*inputs) if len(loss.differentiable) == 1
                       else loss.grad(*inputs)[0]),
            g.detach().numpy(), rtol=1e-7, atol=1e-9,
        )


def test_every_loss_with_second_derivatives_has_an_independent_reference():
    """Every loss with second derivatives has a torch reference: torch's own loss, a formula
    above, or (for the compounds whose peers' definitions live beside their other tests) a
    double-backward check in another file. A loss added without one fails here."""
    missing = [n for n in SECOND if losslab.spec(n).torch is None
               and n not in TORCH_FORMULAS and n not in CHECKED_ELSEWHERE]
    assert not missing, missing


def test_new_losses_declare_their_hessian_facts():
    assert losslab.spec("msle").hessian == "indefinite"  # negative where log1p(x/y) > 1
    x, y = np.array([10.0, 0.5]), np.array([0.0, 0.5])
    h = losslab.get("msle", reduction="none").hess(x, y)
    assert h[0] < 0 < h[1]
    for name in ("pseudo_huber", "expectile", "gamma_deviance", "exponential"):
        assert losslab.spec(name).hessian == "nonnegative", name
    assert losslab.spec("mape").hessian == "zero"


# --- the torch adapter's double backward equals the closed form --------------------------------

ADAPTER = [(n, o) for n, o in catalog_cases(generic_adapter_names())[0]
           if losslab.spec(n).hessian is not None]
ADAPTER_IDS = [f"{n}-{o.get('reduction', 'default')}" for n, o in ADAPTER]


@pytest.mark.parametrize(("name", "options"), ADAPTER, ids=ADAPTER_IDS)
def test_torch_adapter_double_backward_equals_closed_form_hvp(name, options):
    loss = losslab.get(name, **options)
    spec = loss.spec
    rng = np.random.default_rng(22)
    inputs = [np.array(a, copy=True) for a in loss.example(rng, "float64")]
    if name == "kl_div":
        inputs[1] = np.maximum(inputs[1], -30.0)
    i0 = spec.inputs.index(spec.differentiable[0])
    tensors = [torch.tensor(a) if isinstance(a, np.ndarray) else a for a in inputs]
    x = tensors[i0].requires_grad_(True)
    value = getattr(lt, name)(*tensors, **options)
    v = rng.normal(size=inputs[i0].shape)
    _, got = _torch_hvp(value.sum(), x, v)
    np.testing.assert_allclose(got, loss.hvp(*inputs, v=v), rtol=1e-7, atol=1e-9)


ROWWISE_SECOND = [n for n in SECOND if losslab.spec(n).rowwise]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", ROWWISE_SECOND)
def test_blocked_grad_and_hess_equal_one_call(name, reduction, monkeypatch):
    """grad_and_hess (and grad_and_fisher) run block by block on large NumPy inputs
    (``_blocked.second_order``): the same arrays as one call, sample weights included."""
    from losslab.losses import _blocked

    loss = losslab.get(name, reduction=reduction)
    rng = np.random.default_rng(5)
    while True:
        inputs = loss.example(rng, "float64")
        if all(np.ndim(a) >= 1 for a in inputs) and np.ndim(inputs[0]) >= 1:
            break
    inputs = [np.concatenate([a] * 30, axis=0) for a in inputs]
    w = rng.uniform(0.2, 2.0, size=inputs[0].shape[0])
    direct = {}
    with monkeypatch.context() as m:
        m.setattr(_blocked, "MIN_ELEMENTS", 1 << 62)
        for sw in (None, w):
            direct[sw is None] = loss.grad_and_hess(*inputs, sample_weight=sw)
    monkeypatch.setattr(_blocked, "MIN_ELEMENTS", 1)
    monkeypatch.setattr(_blocked, "BLOCK_ELEMENTS", 40)
    monkeypatch.setenv("LOSSLAB_NUM_THREADS", "3")
    assert _blocked.applicable(loss.spec, list(inputs), {}, None)
    for sw in (None, w):
        g, h = loss.grad_and_hess(*inputs, sample_weight=sw)
        g0, h0 = direct[sw is None]
        np.testing.assert_allclose(g, g0, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(h, h0, rtol=1e-12, atol=1e-300)
        assert h.shape == h0.shape and h.dtype == h0.dtype


def test_blocked_fisher_equals_one_call(monkeypatch):
    from losslab.losses import _blocked

    rng = np.random.default_rng(6)
    x, y = np.abs(rng.normal(size=500)), rng.gamma(2.0, 1.0, size=500)
    loss = losslab.get("msle")
    want = loss.grad_and_fisher(x, y)
    monkeypatch.setattr(_blocked, "MIN_ELEMENTS", 1)
    monkeypatch.setattr(_blocked, "BLOCK_ELEMENTS", 40)
    got = loss.grad_and_fisher(x, y)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    np.testing.assert_allclose(loss.fisher(x, y), want[1], rtol=1e-14)
    with pytest.raises(NotImplementedError, match="focal"):
        losslab.get("focal").grad_and_fisher(x, (y > 1).astype(float))


def test_hvp_of_a_large_batch_equals_the_small_batches():
    # grad_and_hess runs block by block on large inputs: same arrays as one call per block.
    from losslab.losses import _blocked

    rng = np.random.default_rng(3)
    x = rng.normal(size=(_blocked.MIN_ELEMENTS + 5,))
    y = rng.normal(size=x.shape)
    w = rng.uniform(0.1, 2.0, size=x.shape)
    for name in ("pseudo_huber", "msle", "expectile"):
        xx = np.abs(x) if name == "msle" else x
        loss = losslab.get(name, reduction="mean")
        g, h = loss.grad_and_hess(xx, np.abs(y) if name == "msle" else y, sample_weight=w)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(_blocked, "MIN_ELEMENTS", 1 << 62)
            g0, h0 = loss.grad_and_hess(xx, np.abs(y) if name == "msle" else y, sample_weight=w)
        np.testing.assert_allclose(g, g0, rtol=1e-14, atol=0)
        np.testing.assert_allclose(h, h0, rtol=1e-14, atol=0)
    assert not math.isnan(float(g.sum()))
