"""Extreme inputs for the binary family: logits of magnitude 1e4 (float32) and 1e30 (float64) give
finite values and gradients equal to the mathematical limits; bce at probabilities exactly 0 and 1
gives torch's clamped value and torch's gradient, never NaN."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import losslab

# (dtype, logit magnitude): 1e4 overflows exp in float32, 1e30 does in float64.
EXTREMES = [("float32", 1e4), ("float64", 1e30), ("float32", 100.0), ("float64", 800.0)]
IDS = [f"{d}-{m:g}" for d, m in EXTREMES]

# Every (logit sign, label) pair: confidently right (+M, 1), (-M, 0); confidently wrong (-M, 1),
# (+M, 0); and soft labels.
SIGNS = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
LABELS = np.array([1.0, 1.0, 0.0, 0.0, 0.3, 0.3])


def _assert_exact(actual, expected, dtype):
    actual = np.asarray(actual)
    assert actual.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(actual))
    # atol covers the denormal tails (exp(-100) in float32) of limits that are exactly 0.
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize(("dtype", "m"), EXTREMES, ids=IDS)
def test_bce_with_logits_limits(dtype, m):
    x, y = (SIGNS * m).astype(dtype), LABELS.astype(dtype)
    v, g = losslab.get("bce_with_logits", reduction="none").value_and_grad(x, y)
    # loss -> (1 - y) x for x -> +inf and -y x for x -> -inf; gradient -> (1 - y) and -y.
    _assert_exact(v, np.where(SIGNS > 0, (1 - LABELS) * m, LABELS * m), dtype)
    _assert_exact(g, np.where(SIGNS > 0, 1 - LABELS, -LABELS), dtype)


@pytest.mark.parametrize(("dtype", "m"), EXTREMES, ids=IDS)
def test_bce_with_logits_limits_with_weights(dtype, m):
    x, y = (SIGNS * m).astype(dtype), LABELS.astype(dtype)
    w, pw = np.full(6, 0.5), np.full(6, 3.0)
    loss = losslab.get("bce_with_logits", weight=w, pos_weight=pw, reduction="sum")
    v, g = loss.value_and_grad(x, y)
    per = np.where(SIGNS > 0, (1 - LABELS) * m, 3.0 * LABELS * m)
    _assert_exact(v, 0.5 * per.sum(), dtype)
    _assert_exact(g, 0.5 * np.where(SIGNS > 0, 1 - LABELS, -3.0 * LABELS), dtype)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [0.25, -1.0])
@pytest.mark.parametrize(("dtype", "m"), EXTREMES, ids=IDS)
def test_focal_limits(dtype, m, alpha, gamma):
    x, y = (SIGNS * m).astype(dtype), LABELS.astype(dtype)
    v, g = losslab.get("focal", alpha=alpha, gamma=gamma, reduction="none").value_and_grad(x, y)
    a_t = np.ones(6) if alpha < 0 else alpha * LABELS + (1 - alpha) * (1 - LABELS)
    # 1 - p_t -> 1 - y for x -> +inf and y for x -> -inf; the loss grows like that power times
    # the bce limit, and the gradient tends to a_t (1 - p_t)^gamma (sigmoid(x) - y).
    q = np.where(SIGNS > 0, 1 - LABELS, LABELS)
    mod = q**gamma
    ce = np.where(SIGNS > 0, (1 - LABELS) * m, LABELS * m)
    _assert_exact(v, a_t * mod * ce, dtype)
    _assert_exact(g, a_t * mod * np.where(SIGNS > 0, 1 - LABELS, -LABELS), dtype)


@pytest.mark.parametrize(("dtype", "m"), EXTREMES, ids=IDS)
def test_soft_margin_limits(dtype, m):
    x = (np.array([1.0, -1.0, 1.0, -1.0]) * m).astype(dtype)
    y = np.array([1.0, 1.0, -1.0, -1.0], dtype=dtype)
    v, g = losslab.get("soft_margin", reduction="none").value_and_grad(x, y)
    wrong = (np.sign(x) != y).astype(np.float64)
    _assert_exact(v, wrong * m, dtype)
    _assert_exact(g, -y.astype(np.float64) * wrong, dtype)


@pytest.mark.parametrize(("dtype", "m"), EXTREMES, ids=IDS)
def test_multilabel_soft_margin_limits(dtype, m):
    x, y = (SIGNS * m).reshape(2, 3).astype(dtype), LABELS.reshape(2, 3).astype(dtype)
    w = np.array([1.0, 2.0, 0.5])
    v, g = losslab.get("multilabel_soft_margin", weight=w, reduction="none").value_and_grad(x, y)
    per = np.where(SIGNS > 0, (1 - LABELS) * m, LABELS * m).reshape(2, 3) * w
    _assert_exact(v, per.sum(axis=1) / 3, dtype)
    _assert_exact(g, np.where(SIGNS > 0, 1 - LABELS, -LABELS).reshape(2, 3) * w / 3, dtype)


@pytest.mark.parametrize(("dtype", "m"), EXTREMES, ids=IDS)
@pytest.mark.parametrize("name", ["bce_with_logits", "soft_margin", "multilabel_soft_margin"])
def test_extreme_logits_agree_with_torch_where_torch_is_finite(name, dtype, m):
    """torch's own logit losses stay finite at these magnitudes except soft_margin (log1p(exp))
    once -y x > ~89 (float32) or ~709 (float64); where torch is finite we equal it."""
    fn = {
        "bce_with_logits": F.binary_cross_entropy_with_logits,
        "soft_margin": F.soft_margin_loss,
        "multilabel_soft_margin": F.multilabel_soft_margin_loss,
    }[name]
    x = (SIGNS * m).reshape(2, 3).astype(dtype)
    y = (np.sign(SIGNS) if name == "soft_margin" else LABELS).reshape(2, 3).astype(dtype)
    xt = torch.from_numpy(x).requires_grad_(True)
    ref = fn(xt, torch.from_numpy(y), reduction="sum")
    ref.backward()
    v, g = losslab.get(name, reduction="sum").value_and_grad(x, y)
    if torch.isfinite(ref):
        np.testing.assert_allclose(v, ref.detach().numpy(), rtol=1e-6, atol=1e-30)
        np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-6, atol=1e-30)
    assert np.isfinite(v) and np.all(np.isfinite(g))


# --- bce at the edges of [0, 1] ----------------------------------------------------------------

EDGE_P = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1e-30, 1e-7, 0.5])
EDGE_Y = np.array([0.0, 1.0, 1.0, 0.0, 0.4, 0.4, 0.0, 1.0, 0.3])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_at_exactly_0_and_1_is_torchs_clamped_result(dtype, reduction, weighted):
    p, y = EDGE_P.astype(dtype), EDGE_Y.astype(dtype)
    w = np.linspace(0.5, 2.0, p.size).astype(dtype) if weighted else None
    opts = {"reduction": reduction, "weight": w}
    v, g = losslab.get("bce", **opts).value_and_grad(p, y)
    pt = torch.from_numpy(p).requires_grad_(True)
    wt = None if w is None else torch.from_numpy(w)
    ref = F.binary_cross_entropy(pt, torch.from_numpy(y), weight=wt, reduction=reduction)
    ref.backward(torch.ones_like(ref))
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(v, ref.detach().numpy(), rtol=1e-6 if dtype == "float32" else 1e-14)
    np.testing.assert_allclose(g, pt.grad.numpy(), rtol=1e-6 if dtype == "float32" else 1e-14)


def test_bce_clamped_values_are_100_per_wrong_certainty():
    v, g = losslab.get("bce", reduction="none").value_and_grad(EDGE_P[:6], EDGE_Y[:6])
    # log terms clamped at -100: p = 0 with y = 1 costs 100; p = y costs exactly 0.
    np.testing.assert_array_equal(v, [0.0, 0.0, 100.0, 100.0, 40.0, 60.0])
    # torch's backward: (p - y) / max((1 - p) p, 1e-12 as a C float).
    eps = float(np.float32(1e-12))
    np.testing.assert_array_equal(g, (EDGE_P[:6] - EDGE_Y[:6]) / eps)
