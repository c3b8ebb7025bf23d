"""Contrastive and metric-learning losses: FD over options (gradients and Hessians), each paper's
formula in torch autograd, torch's triplet_margin_with_distance_loss, pytorch-metric-learning's
SupConLoss, NTXentLoss and MultiSimilarityLoss (2.9), Keras's circle (keras 3 ``losses.circle``,
written here in torch)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from family_checks import check_options

import losslab
import losslab.torch as lt


def test_options_finite_differences():
    check_options("info_nce", [{"temperature": 0.5}, {"symmetric": True, "temperature": 0.3}])
    check_options("supcon", [{"temperature": 0.5}])
    check_options("arcface", [{"scale": 4.0, "margin": 0.3},
                              {"scale": 4.0, "easy_margin": True}], seeds=3)
    check_options("cosface", [{"scale": 4.0, "margin": 0.2}])
    check_options("contrastive", [{"margin": 2.0}])
    check_options("triplet_margin_with_distance",
                  [{"distance": "cosine"}, {"distance": "cosine", "swap": True, "margin": 0.3},
                   {"swap": True}])
    check_options("circle", [{"gamma": 4.0, "margin": 0.25}])
    check_options("multi_similarity", [{"alpha": 1.0, "beta": 5.0, "base": 0.2},
                                       {"alpha": 4.0, "beta": 20.0, "base": -0.3}])


def _compare(ours_fn, ref_fn, arrays, n_diff):
    a = [torch.tensor(x, requires_grad=i < n_diff) for i, x in enumerate(arrays)]
    b = [torch.tensor(x, requires_grad=i < n_diff) for i, x in enumerate(arrays)]
    ours, ref = ours_fn(*a), ref_fn(*b)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    for x, y in zip(torch.autograd.grad(ours, a[:n_diff]), torch.autograd.grad(ref, b[:n_diff])):
        torch.testing.assert_close(x, y, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("symmetric", [False, True])
def test_info_nce_equals_clip(symmetric):
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(5, 4)), rng.normal(size=(5 if symmetric else 8, 4))

    def clip(q, k):  # Radford et al. 2021, Fig. 3; extra keys are negatives
        logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / 0.1
        labels = torch.arange(q.shape[0])
        row = F.cross_entropy(logits, labels)
        return (row + F.cross_entropy(logits.T, labels)) / 2 if symmetric else row

    _compare(lambda q, k: lt.info_nce(q, k, temperature=0.1, symmetric=symmetric), clip, [q, k],
             2)


def test_info_nce_low_temperature_similarities_near_one():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(6, 8)).astype(np.float32)
    k = q + 1e-4 * rng.normal(size=(6, 8)).astype(np.float32)
    v, (gq, gk) = losslab.get("info_nce", temperature=0.01).value_and_grad(q, k)
    assert np.isfinite(v) and np.all(np.isfinite(gq)) and np.all(np.isfinite(gk))
    v64 = losslab.get("info_nce", temperature=0.01)(q.astype(float), k.astype(float))
    np.testing.assert_allclose(v, v64, rtol=1e-3, atol=1e-6)


def test_supcon_equals_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    rng = np.random.default_rng(2)
    z, y = rng.normal(size=(8, 5)), np.array([0, 0, 1, 1, 1, 2, 3, 3])  # label 2: no positive
    _compare(lambda z: lt.supcon(z, torch.tensor(y), temperature=0.1),
             lambda z: pml.SupConLoss(temperature=0.1)(z, torch.tensor(y)), [z], 1)
    # NT-Xent: two views, one label per pair
    q, k = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    labels = torch.arange(4).repeat(2)
    _compare(lambda q, k: lt.supcon(torch.cat([q, k]), labels, temperature=0.2),
             lambda q, k: pml.NTXentLoss(temperature=0.2)(torch.cat([q, k]), labels), [q, k], 2)


def _insightface_arcface(x, w, y, s, m, easy):
    cos = F.normalize(x) @ F.normalize(w).T
    c = cos.gather(1, y[:, None])
    phi = c * math.cos(m) - torch.sqrt(1 - c * c) * math.sin(m)
    phi = torch.where(c > 0, phi, c) if easy else torch.where(
        c > math.cos(math.pi - m), phi, c - math.sin(math.pi - m) * m)
    logits = s * cos.scatter(1, y[:, None], phi)
    return F.cross_entropy(logits, y)


@pytest.mark.parametrize("easy", [False, True])
def test_arcface_and_cosface_equal_insightface(easy):
    rng = np.random.default_rng(3)
    x, y, w = losslab.spec("arcface").example(rng, easy_margin=easy, margin=0.5)
    yt = torch.tensor(y)
    _compare(lambda x, w: lt.arcface(x, yt, w, scale=8.0, easy_margin=easy),
             lambda x, w: _insightface_arcface(x, w, yt, 8.0, 0.5, easy), [x, w], 2)

    def cosface(x, w):  # Wang et al. 2018, eq. 4
        cos = F.normalize(x) @ F.normalize(w).T
        return F.cross_entropy(8.0 * (cos - 0.35 * F.one_hot(yt, w.shape[0]).double()), yt)

    _compare(lambda x, w: lt.cosface(x, yt, w, scale=8.0), cosface, [x, w], 2)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-4, math.pi - 1e-4, math.pi])
def test_arcface_gradient_finite_at_theta_near_zero_and_pi(angle):
    w = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    x = np.array([[math.cos(angle), 0.0, math.sin(angle)]])
    for dtype in ("float32", "float64"):
        v, (gx, gw) = losslab.get("arcface").value_and_grad(
            x.astype(dtype), np.array([0]), w.astype(dtype))
        assert np.isfinite(v) and np.all(np.isfinite(gx)) and np.all(np.isfinite(gw))
        # theta + m: the target logit is s cos(theta + m) (or the fallback past pi - m)
        assert np.all(np.abs(gx) < 100) and np.all(np.abs(gw) < 100)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_triplet_with_distance_equals_torch(distance, swap, reduction):
    arrays = losslab.spec("triplet_margin_with_distance").example(
        np.random.default_rng(4), distance=distance, swap=swap, margin=0.5)
    fn = None if distance == "euclidean" else (lambda a, b: 1 - F.cosine_similarity(a, b))

    def ref(a, p, n):
        return F.triplet_margin_with_distance_loss(
            a, p, n, distance_function=fn, margin=0.5, swap=swap, reduction=reduction).sum()

    def ours(a, p, n):
        return lt.triplet_margin_with_distance(a, p, n, distance=distance, margin=0.5, swap=swap,
                                               reduction=reduction).sum()

    _compare(ours, ref, list(arrays), 3)


def test_contrastive_equals_hadsell():
    x1, x2, y = losslab.spec("contrastive").example(np.random.default_rng(5))

    def ref(a, b):  # Hadsell et al. 2006, eq. 4 (Y = 0 similar is our +1)
        d = torch.linalg.norm(a - b, dim=1)
        yy = torch.tensor(y)
        return torch.where(yy > 0, 0.5 * d**2, 0.5 * torch.clamp(1.0 - d, min=0) ** 2).mean()

    _compare(lambda a, b: lt.contrastive(a, b, torch.tensor(y)), ref, [x1, x2], 2)


def test_circle_equals_keras():
    z, y = losslab.spec("circle").example(np.random.default_rng(6), margin=0.4)
    yt = torch.tensor(y)

    def keras_circle(z, gamma=8.0, margin=0.4):  # keras 3 losses.circle, on normalised rows
        e = F.normalize(z)
        d = torch.clamp(1 - e @ e.T, min=0.0)
        same = yt[:, None] == yt[None, :]
        pos = same & ~torch.eye(len(yt), dtype=torch.bool)
        neg = ~same
        pw = torch.clamp((margin + d) * pos, min=0.0)
        nw = torch.clamp((1 + margin - d) * neg, min=0.0)
        p = torch.logsumexp(torch.where(pos, -gamma * pw * (margin - d), -torch.inf), dim=1)
        n = torch.logsumexp(torch.where(neg, gamma * nw * ((1 - margin) - d), -torch.inf), dim=1)
        loss = F.softplus(p + n)
        return loss.sum() / (loss > 0).sum()  # Keras averages the non-zero (masked) losses

    _compare(lambda z: lt.circle(z, yt, gamma=8.0, margin=0.4), keras_circle, [z], 1)


def test_bad_input_refused():
    q = np.ones((3, 4))
    with pytest.raises(ValueError, match="key must have shape"):
        losslab.get("info_nce")(q, np.ones((2, 4)))
    with pytest.raises(ValueError, match="symmetric=True"):
        losslab.get("info_nce", symmetric=True)(q, np.ones((4, 4)))
    with pytest.raises(TypeError, match="integer group labels"):
        losslab.get("supcon")(q, np.zeros(3))
    with pytest.raises(ValueError, match="target holds class labels outside"):
        losslab.get("arcface")(q, np.array([0, 1, 5]), np.ones((3, 4)))
    with pytest.raises(ValueError, match="distance"):
        losslab.get("triplet_margin_with_distance", distance="manhattan")
    with pytest.raises(ValueError, match=r"target must hold labels -1 or \+1"):
        losslab.get("contrastive")(q, q, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="alpha"):
        losslab.get("multi_similarity", alpha=0.0)
    with pytest.raises(ValueError, match=r"target must have shape \(3,\)"):
        losslab.get("multi_similarity")(q, np.array([0, 1]))


@pytest.mark.parametrize(("alpha", "beta", "base"), [(2.0, 50.0, 0.5), (1.0, 4.0, 0.1)])
def test_multi_similarity_equals_pytorch_metric_learning(alpha, beta, base):
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    rng = np.random.default_rng(7)
    z, y = rng.normal(size=(9, 5)), np.array([0, 0, 1, 1, 1, 2, 3, 3, 4])  # 2, 4: no positive
    yt = torch.tensor(y)
    _compare(lambda z: lt.multi_similarity(z, yt, alpha=alpha, beta=beta, base=base),
             lambda z: pml.MultiSimilarityLoss(alpha=alpha, beta=beta, base=base)(z, yt), [z], 1)


def test_multi_similarity_equals_wang_et_al():
    z, y = losslab.spec("multi_similarity").example(np.random.default_rng(8))
    yt = torch.tensor(y)

    def paper(z, a=2.0, b=50.0, lam=0.5):  # Wang et al., CVPR 2019, eq. (8), all pairs
        e = F.normalize(z, dim=1)
        s = e @ e.T
        same = yt[:, None] == yt[None, :]
        pos = same & ~torch.eye(len(yt), dtype=torch.bool)
        neg = ~same
        p = torch.where(pos, torch.exp(-a * (s - lam)), torch.zeros_like(s)).sum(1)
        n = torch.where(neg, torch.exp(b * (s - lam)), torch.zeros_like(s)).sum(1)
        return (torch.log1p(p) / a + torch.log1p(n) / b).mean()

    _compare(lambda z: lt.multi_similarity(z, yt), paper, [z], 1)


def test_multi_similarity_extreme_similarities_are_finite():
    # beta = 50 with similarities near 1: exp(25) terms, handled by logsumexp
    z = np.array([[1.0, 0.0], [1.0, 1e-9], [1.0, 2e-9], [0.0, 1.0]])
    y = np.array([0, 1, 1, 0])
    for dtype in ("float32", "float64"):
        v, g = losslab.get("multi_similarity", beta=200.0).value_and_grad(z.astype(dtype), y)
        assert np.isfinite(v) and np.all(np.isfinite(g))
    h = losslab.get("multi_similarity", beta=200.0).hess(z, y)
    assert np.all(np.isfinite(h))
