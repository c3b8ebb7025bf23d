"""Regularization terms (value, gradient, convention) and gradient clipping against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from losslab.gradcheck import numerical_grad
from losslab.train.optimizers import SGD, Adam, AdamW
from losslab.train.regularization import (
    L1,
    L2,
    ElasticNet,
    Regularizer,
    clip_grad_norm,
    clip_grad_value,
)

SHAPES = {"0.weight": (4, 3), "0.bias": (4,), "2.weight": (2, 4), "2.bias": (2,)}


def params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()}


REGS = [L1(0.03), L2(0.05), ElasticNet(0.02, 0.07)]


@pytest.mark.parametrize("reg", REGS, ids=repr)
def test_value_and_grad_match_torch_and_fd(reg):
    p = params()
    tp = {k: torch.from_numpy(v.copy()).requires_grad_(True) for k, v in p.items()}
    ref = sum(reg.l1 * w.abs().sum() + reg.l2 * (w * w).sum()
              for k, w in tp.items() if k.endswith("weight"))
    ref.backward()
    assert reg.value(p) == pytest.approx(ref.item(), rel=1e-12)
    g = reg.grad(p)
    assert set(g) == {"0.weight", "2.weight"}  # biases are not penalised by default
    for k, v in g.items():
        np.testing.assert_allclose(v, tp[k].grad.numpy(), rtol=1e-12)
        fd = numerical_grad(lambda w, k=k: reg.value({**p, k: w}), [p[k]], 0)
        np.testing.assert_allclose(v, fd, rtol=1e-6, atol=1e-9)


def test_convention_is_lambda_sum_w_squared():
    p = {"weight": np.array([1.0, -2.0, 3.0])}
    assert L2(0.5).value(p) == 0.5 * 14.0
    np.testing.assert_array_equal(L2(0.5).grad(p)["weight"], [1.0, -2.0, 3.0])
    assert L1(0.5).value(p) == 3.0
    np.testing.assert_array_equal(L1(0.5).grad(p)["weight"], [0.5, -0.5, 0.5])
    assert ElasticNet(0.5, 0.5).value(p) == 10.0
    assert L1(1.0).grad({"weight": np.zeros(2)})["weight"].tolist() == [0.0, 0.0]


def test_include_patterns():
    p = params()
    everything = L2(0.1, include="*")
    assert set(everything.grad(p)) == set(SHAPES)
    first = L2(0.1, include=["0.*"])
    assert set(first.grad(p)) == {"0.weight", "0.bias"}
    assert first.value(p) == pytest.approx(0.1 * (np.sum(p["0.weight"] ** 2)
                                                  + np.sum(p["0.bias"] ** 2)))


def test_add_grad_in_place_and_dtype():
    p = params(dtype=np.float32)
    grads = {k: np.ones_like(v) for k, v in p.items()}
    refs = dict(grads)
    value = ElasticNet(0.1, 0.2).add_grad(p, grads)
    assert isinstance(value, float)
    assert all(grads[k] is refs[k] for k in grads)
    np.testing.assert_array_equal(grads["0.bias"], 1.0)
    expected = 1.0 + 0.1 * np.sign(p["0.weight"]) + 0.4 * p["0.weight"]
    np.testing.assert_allclose(grads["0.weight"], expected, rtol=1e-6)
    for g in ElasticNet(0.1, 0.2).grad(p).values():
        assert g.dtype == np.float32


def _grad_fn(p, t):
    rng = np.random.default_rng(100 + t)
    return {k: (v - 0.2) + rng.normal(size=v.shape) for k, v in p.items()}


def _train(opt, reg=None, steps=20):
    p = params()
    for t in range(steps):
        g = _grad_fn(p, t)
        if reg is not None:
            reg.add_grad(p, g)
        opt.step(p, g)
    return p


def test_l2_half_wd_equals_sgd_weight_decay():
    # L2(l2) adds 2*l2*w to the gradient: the same as SGD(weight_decay=2*l2) on penalised params
    wd = 0.1
    with_term = _train(SGD(lr=0.05, momentum=0.9), L2(wd / 2, include="*"))
    with_decay = _train(SGD(lr=0.05, momentum=0.9, weight_decay=wd))
    for k in with_term:
        np.testing.assert_allclose(with_term[k], with_decay[k], rtol=1e-12)
    # ... and not the same as L2(wd): the factor of 2
    doubled = _train(SGD(lr=0.05, momentum=0.9), L2(wd, include="*"))
    assert not np.allclose(doubled["0.weight"], with_decay["0.weight"])


def test_l2_matches_coupled_adam_decay_not_adamw():
    wd = 0.2
    term = _train(Adam(lr=0.01), L2(wd / 2, include="*"))
    coupled = _train(Adam(lr=0.01, weight_decay=wd))
    decoupled = _train(AdamW(lr=0.01, weight_decay=wd))
    for k in term:
        np.testing.assert_allclose(term[k], coupled[k], rtol=1e-10)
    assert not np.allclose(term["0.weight"], decoupled["0.weight"], rtol=1e-3)


def test_bad_coefficients():
    with pytest.raises(ValueError, match="l2"):
        L2(-0.1)
    with pytest.raises(ValueError, match="l1"):
        L1(float("nan"))
    with pytest.raises(TypeError, match="l1"):
        ElasticNet("a", 0.1)
    assert Regularizer().value(params()) == 0.0


# --------------------------------------------------------------------------------------------
# clipping


def _torch_clip(p, fn, *args, **kwargs):
    ts = []
    for v in p.values():
        t = torch.zeros(v.shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.from_numpy(v.copy())
        ts.append(t)
    out = fn(ts, *args, **kwargs)
    return out, {k: t.grad.numpy() for k, t in zip(p, ts)}


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    g = params(seed=3)
    ref_norm, ref = _torch_clip(g, torch.nn.utils.clip_grad_norm_, max_norm, norm_type=norm_type)
    total = clip_grad_norm(g, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(ref_norm.item(), rel=1e-12)
    for k in g:
        np.testing.assert_allclose(g[k], ref[k], rtol=1e-12)


def test_clip_grad_norm_actually_clips_and_keeps_dtype():
    g = {k: v.astype(np.float32) * 10 for k, v in params(seed=4).items()}
    refs = dict(g)
    total = clip_grad_norm(g, 1.0)
    assert total > 1.0
    new = np.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2)) for v in g.values()))
    assert new == pytest.approx(1.0, rel=1e-5)
    assert all(g[k] is refs[k] and g[k].dtype == np.float32 for k in g)


def test_clip_grad_norm_nonfinite():
    g = {"w": np.array([1.0, np.inf])}
    with pytest.raises(ValueError, match="total norm"):
        clip_grad_norm({"w": g["w"].copy()}, 1.0, error_if_nonfinite=True)
    total = clip_grad_norm(g, 1.0)
    _, ref = _torch_clip({"w": np.array([1.0, np.inf])}, torch.nn.utils.clip_grad_norm_, 1.0)
    assert total == float("inf")
    np.testing.assert_array_equal(np.isnan(g["w"]), np.isnan(ref["w"]))


def test_clip_grad_value_matches_torch():
    g = params(seed=5)
    _, ref = _torch_clip(g, torch.nn.utils.clip_grad_value_, 0.7)
    assert clip_grad_value(g, 0.7) is None
    for k in g:
        np.testing.assert_array_equal(g[k], ref[k])
    assert max(np.max(np.abs(v)) for v in g.values()) == pytest.approx(0.7)


@pytest.mark.parametrize("fn,arg,match", [
    (clip_grad_norm, 0.0, "max_norm"),
    (clip_grad_norm, -1.0, "max_norm"),
    (clip_grad_value, 0.0, "clip_value"),
    (clip_grad_value, -0.5, "clip_value"),
])
def test_clip_bad_args(fn, arg, match):
    with pytest.raises(ValueError, match=match):
        fn(params(), arg)
