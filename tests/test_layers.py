"""Layers: every backward pass against central finite differences (float64) and torch autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import losslab
from losslab import special
from losslab.train.layers import (
    ACTIVATIONS,
    GELU,
    Dropout,
    LeakyReLU,
    Linear,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    layer_from_config,
    linear_model,
    mlp,
)

ACT_CASES = [
    ("relu", {}),
    ("leaky_relu", {}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("gelu", {}),
    ("gelu", {"approximate": "tanh"}),
]


def make_act(name: str, opts: dict):
    return ACTIVATIONS[name](**opts)


# --------------------------------------------------------------------------------------------
# torch mirror of a losslab network, and finite differences


def torch_forward(model: Sequential, x: np.ndarray):
    """The same network in torch (same weights, dropout masks taken from our last forward).

    Returns (output tensor, {param name: leaf tensor}, input leaf tensor).
    """
    xt = torch.from_numpy(np.array(x)).requires_grad_(True)
    leaves = {}
    h = xt
    for i, layer in enumerate(model):
        if isinstance(layer, Linear):
            w = torch.from_numpy(layer.weight.copy()).requires_grad_(True)
            leaves[f"{i}.weight"] = w
            b = None
            if layer.bias is not None:
                b = torch.from_numpy(layer.bias.copy()).requires_grad_(True)
                leaves[f"{i}.bias"] = b
            h = F.linear(h, w, b)
        elif isinstance(layer, ReLU):
            h = torch.relu(h)
        elif isinstance(layer, LeakyReLU):
            h = F.leaky_relu(h, layer.negative_slope)
        elif isinstance(layer, Sigmoid):
            h = torch.sigmoid(h)
        elif isinstance(layer, Tanh):
            h = torch.tanh(h)
        elif isinstance(layer, GELU):
            h = F.gelu(h, approximate=layer.approximate)
        elif isinstance(layer, Softmax):
            h = torch.softmax(h, dim=layer.axis)
        elif isinstance(layer, Dropout):
            if layer.mask is not None:
                h = h * torch.from_numpy(layer.mask)
        else:  # pragma: no cover
            raise AssertionError(type(layer))
    return h, leaves, xt


def loss_and_grads(model, x, y, loss, dropout_seed=None):
    """Our forward/backward: (loss value, {name: grad copy}, input grad)."""
    if dropout_seed is not None:
        model.set_rng(dropout_seed)
    out = model.forward(x)
    value, g = loss.value_and_grad(out, y)
    gx = model.backward(g)
    return float(value), {k: v.copy() for k, v in model.gradients().items()}, gx


def fd_grads(model, x, y, loss, dropout_seed=None, eps=1e-6):
    """Central differences of the loss w.r.t. every parameter and the input (float64)."""

    def f(inp):
        if dropout_seed is not None:
            model.set_rng(dropout_seed)
        return float(loss(model.forward(inp), y))

    grads = {}
    for name, p in model.parameters().items():
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            orig = p[idx]
            p[idx] = orig + eps
            up = f(x)
            p[idx] = orig - eps
            down = f(x)
            p[idx] = orig
            g[idx] = (up - down) / (2 * eps)
        grads[name] = g
    xc = x.copy()
    gx = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        orig = xc[idx]
        xc[idx] = orig + eps
        up = f(xc)
        xc[idx] = orig - eps
        down = f(xc)
        xc[idx] = orig
        gx[idx] = (up - down) / (2 * eps)
    return grads, gx


def check_network(model, x, y, loss, torch_loss, dropout_seed=None, fd=True):
    value, grads, gx = loss_and_grads(model, x, y, loss, dropout_seed)
    # torch, with the same dropout masks as the forward just run
    out_t, leaves, xt = torch_forward(model, x)
    yt = torch.from_numpy(np.asarray(y))
    lt = torch_loss(out_t, yt)
    lt.backward()
    np.testing.assert_allclose(value, lt.item(), rtol=1e-12)
    assert set(grads) == set(leaves)
    for k in grads:
        np.testing.assert_allclose(grads[k], leaves[k].grad.numpy(), rtol=1e-10, atol=1e-13,
                                   err_msg=k)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-13)
    if fd:
        fgrads, fgx = fd_grads(model, x, y, loss, dropout_seed)
        for k in grads:
            np.testing.assert_allclose(grads[k], fgrads[k], rtol=1e-6, atol=1e-8, err_msg=k)
        np.testing.assert_allclose(gx, fgx, rtol=1e-6, atol=1e-8)


def kink_free_input(rng, shape):
    """Inputs whose pre-activations are kept away from ReLU's kink (checked below)."""
    return rng.normal(size=shape)


# --------------------------------------------------------------------------------------------
# whole-network gradients


@pytest.mark.parametrize("act,opts", ACT_CASES)
def test_mlp_gradients_match_fd_and_torch_mse(act, opts):
    rng = np.random.default_rng(0)
    model = Sequential(
        Linear(4, 6, dtype="float64", rng=rng), make_act(act, opts),
        Linear(6, 5, dtype="float64", rng=rng), make_act(act, opts),
        Linear(5, 3, dtype="float64", rng=rng),
    )
    x = kink_free_input(rng, (7, 4))
    y = rng.normal(size=(7, 3))
    # keep ReLU-family pre-activations away from 0 so finite differences are meaningful
    h = x
    for layer in model:
        h = layer.forward(h)
        if isinstance(layer, Linear):
            assert np.min(np.abs(h)) > 1e-4
    check_network(model, x, y, losslab.get("mse"), F.mse_loss)


@pytest.mark.parametrize("act,opts", ACT_CASES)
def test_mlp_with_dropout_fixed_mask(act, opts):
    rng = np.random.default_rng(1)
    model = Sequential(
        Linear(3, 8, dtype="float64", rng=rng), make_act(act, opts), Dropout(0.4),
        Linear(8, 2, dtype="float64", rng=rng),
    )
    x = rng.normal(size=(5, 3))
    y = rng.normal(size=(5, 2))
    check_network(model, x, y, losslab.get("mse", reduction="sum"),
                  lambda a, b: F.mse_loss(a, b, reduction="sum"), dropout_seed=123)
    mask = model[2].mask
    assert mask is not None and set(np.unique(mask)) <= {0.0, 1.0 / 0.6}
    assert (mask == 0).any() and (mask != 0).any()


def test_softmax_layer_in_network():
    rng = np.random.default_rng(2)
    model = Sequential(Linear(4, 5, dtype="float64", rng=rng), Tanh(),
                       Linear(5, 3, dtype="float64", rng=rng), Softmax())
    x = rng.normal(size=(6, 4))
    y = rng.dirichlet(np.ones(3), size=6)
    check_network(model, x, y, losslab.get("mse"), F.mse_loss)


def test_softmax_axis0():
    rng = np.random.default_rng(3)
    model = Sequential(Linear(3, 4, dtype="float64", rng=rng), Softmax(axis=0))
    x = rng.normal(size=(5, 3))
    y = rng.normal(size=(5, 4))
    check_network(model, x, y, losslab.get("mse"), F.mse_loss)


def _require_catalog_loss(name: str):
    if name not in losslab.available():
        pytest.skip(f"{name!r} is not in the loss catalog yet (issue 2 adds it); "
                    "this test runs as soon as it is registered")
    return losslab.get(name)


@pytest.mark.parametrize("act,opts", ACT_CASES)
def test_mlp_gradients_cross_entropy(act, opts):
    loss = _require_catalog_loss("cross_entropy")
    rng = np.random.default_rng(4)
    model = mlp([4, 6, 3], activation=act, dtype="float64", seed=4)
    if opts:
        model.layers[1] = make_act(act, opts)
    x = rng.normal(size=(8, 4))
    y = rng.integers(0, 3, size=8)
    check_network(model, x, y, loss, F.cross_entropy)


@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    batch=st.integers(1, 6),
    act=st.sampled_from(sorted(ACTIVATIONS)),
    seed=st.integers(0, 2**16),
)
def test_mlp_gradients_match_torch_property(sizes, batch, act, seed):
    rng = np.random.default_rng(seed)
    model = mlp(sizes, activation=act, dtype="float64", seed=seed)
    x = rng.normal(size=(batch, sizes[0]))
    y = rng.normal(size=(batch, sizes[-1]))
    check_network(model, x, y, losslab.get("mse"), F.mse_loss, fd=False)


def test_linear_nd_input_matches_torch():
    rng = np.random.default_rng(5)
    model = Sequential(Linear(3, 4, init="torch", dtype="float64", rng=rng), GELU())
    x = rng.normal(size=(2, 5, 3))
    y = rng.normal(size=(2, 5, 4))
    check_network(model, x, y, losslab.get("mse"), F.mse_loss)


def test_backward_params_skips_first_layer_input_grad_only():
    rng = np.random.default_rng(6)
    model = mlp([4, 5, 2], dtype="float64", seed=6)
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    loss = losslab.get("mse")
    _, grads, gx = loss_and_grads(model, x, y, loss)
    out = model.forward(x)
    assert model.backward_params(loss.grad(out, y)) is None
    for k, g in model.gradients().items():
        np.testing.assert_array_equal(g, grads[k])
    assert gx.shape == x.shape


# --------------------------------------------------------------------------------------------
# single layers against torch, float64 and float32


def _torch_act(layer, xt):
    if isinstance(layer, GELU):
        return F.gelu(xt, approximate=layer.approximate)
    return {ReLU: torch.relu, Sigmoid: torch.sigmoid, Tanh: torch.tanh,
            LeakyReLU: lambda t: F.leaky_relu(t, layer.negative_slope),
            Softmax: lambda t: torch.softmax(t, dim=-1)}[type(layer)](xt)


LAYER_CASES = [ReLU(), LeakyReLU(0.2), Sigmoid(), Tanh(), GELU(), GELU("tanh"), Softmax()]


@pytest.mark.parametrize("layer", LAYER_CASES, ids=repr)
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_activation_forward_backward_vs_torch(layer, dtype, rtol):
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(16, 9)) * 4).astype(dtype)
    x[0, :3] = [0.0, -0.0, 1e-3]
    g = rng.normal(size=x.shape).astype(dtype)
    y = layer.forward(x)
    gx = layer.backward(g)
    assert y.dtype == x.dtype and gx.dtype == x.dtype
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = _torch_act(layer, xt)
    yt.backward(torch.from_numpy(g))
    # float32: 1 + tanh(u) cancels for u << 0 in torch as here, so compare on the O(1) scale
    atol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float64_matches_torch_wide_range(approximate):
    x = np.concatenate([np.linspace(-40, 40, 4001), [0.0, 1e-300, -1e-300, 1e-8, -1e-8]])
    layer = GELU(approximate)
    y = layer.forward(x)
    gx = layer.backward(np.ones_like(x))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = F.gelu(xt, approximate=approximate)
    yt.backward(torch.ones_like(yt))
    # torch's exact form 0.5 x (1 + erf(x / sqrt 2)) cancels for x << 0, hence the atol
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_gelu_exact_keeps_relative_accuracy_for_negative_x():
    x = np.linspace(-37, -3, 200)
    y = GELU().forward(x)
    ref = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    # erfc's condition number 2 z^2 (~1400 at x = -37) turns the argument's rounding into ~1e-13
    np.testing.assert_allclose(y, ref, rtol=1e-11)
    assert np.all(y < 0)  # where 0.5 x (1 + erf(x / sqrt 2)) has cancelled to 0 or noise


def _erf_points():
    x = np.concatenate([
        np.linspace(-30, 30, 6001), np.logspace(-300, 1.4, 500), -np.logspace(-300, 1.4, 500),
        [0.0, -0.0, 0.46875, -0.46875, 4.0, -4.0, 26.5, 27.2],
    ])
    return x


# Cody's fallback is within 1e-15 of libm; SciPy's erfc (used when importable) within 6e-14.
@pytest.mark.parametrize("fn,ref,rtol", [
    (special._cody_erf, math.erf, 1e-15), (special._cody_erfc, math.erfc, 1e-15),
    (special.erf, math.erf, 1e-13), (special.erfc, math.erfc, 1e-13),
])
def test_erf_implementations_match_math(fn, ref, rtol):
    x = _erf_points()
    got = fn(x)
    want = np.array([ref(v) for v in x])
    normal = np.abs(want) > 1e-300  # subnormal results carry no relative accuracy
    np.testing.assert_allclose(got[normal], want[normal], rtol=rtol, atol=0)
    np.testing.assert_allclose(got[~normal], want[~normal], rtol=0, atol=1e-300)
    special = fn(np.array([np.inf, -np.inf, np.nan]))
    assert np.isnan(special[2])
    assert special[0] == ref(math.inf) and special[1] == ref(-math.inf)
    assert fn(np.float32([0.5, -3.0])).dtype == np.float32


def test_gelu_with_fallback_erf_matches_torch(monkeypatch):
    monkeypatch.setattr(special, "_ERF", [special._cody_erf, special._cody_erfc])
    x = np.linspace(-12, 12, 2001)
    layer = GELU()
    y = layer.forward(x)
    gx = layer.backward(np.ones_like(x))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = F.gelu(xt)
    yt.backward(torch.ones_like(yt))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert layer.forward(x.astype(np.float32)).dtype == np.float32


def test_extreme_inputs_stay_finite():
    x = np.array([[-1e4, 0.0, 1e4], [710.0, -710.0, 3.0]])
    for layer in (Sigmoid(), Softmax(), Tanh(), GELU(), GELU("tanh")):
        y = layer.forward(x)
        g = layer.backward(np.ones_like(x))
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(g)), layer
    s = Sigmoid().forward(x)
    assert s[0, 0] == 0.0 and s[0, 2] == 1.0
    sm = Softmax().forward(x)
    np.testing.assert_allclose(sm.sum(axis=-1), 1.0)
    assert sm[0, 2] == 1.0


# --------------------------------------------------------------------------------------------
# dtype


def test_float32_preserved_through_network():
    model = mlp([5, 8, 8, 3], activation="gelu", dropout=0.2, seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5)).astype(np.float32)
    out = model.forward(x)
    assert out.dtype == np.float32
    gx = model.backward(np.ones_like(out))
    assert gx.dtype == np.float32
    for k, p in model.parameters().items():
        assert p.dtype == np.float32 and model.gradients()[k].dtype == np.float32, k
    # float64 data into a float32 model is cast to the model's dtype
    assert model.forward(x.astype(np.float64)).dtype == np.float32


def test_float32_network_close_to_float64():
    m32 = mlp([5, 16, 3], activation="tanh", seed=3)
    m64 = mlp([5, 16, 3], activation="tanh", seed=3, dtype="float64")
    x = np.random.default_rng(0).normal(size=(10, 5))
    np.testing.assert_allclose(m32.forward(x), m64.forward(x), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------
# initialisation


def test_init_schemes():
    rng = np.random.default_rng(0)
    fan_in, fan_out = 400, 300
    g = Linear(fan_in, fan_out, init="glorot", dtype="float64", rng=rng)
    a = math.sqrt(6 / (fan_in + fan_out))
    assert np.max(np.abs(g.weight)) <= a and np.max(np.abs(g.weight)) > 0.99 * a
    assert abs(g.weight.std() - a / math.sqrt(3)) < 0.01 * a
    assert np.all(g.bias == 0)
    h = Linear(fan_in, fan_out, init="he", dtype="float64", rng=rng)
    assert abs(h.weight.std() - math.sqrt(2 / fan_in)) < 0.01 * math.sqrt(2 / fan_in)
    assert np.all(h.bias == 0)
    t = Linear(fan_in, fan_out, init="torch", dtype="float64", rng=rng)
    bound = 1 / math.sqrt(fan_in)
    assert np.max(np.abs(t.weight)) <= bound and np.max(np.abs(t.bias)) <= bound
    assert np.any(t.bias != 0)
    assert g.weight.shape == (fan_out, fan_in) == torch.nn.Linear(fan_in, fan_out).weight.shape


def test_mlp_init_defaults_and_seed():
    assert mlp([3, 4, 2], seed=0)[0].init == "he"
    assert mlp([3, 4, 2], activation="leaky_relu", seed=0)[0].init == "he"
    assert mlp([3, 4, 2], activation="tanh", seed=0)[0].init == "glorot"
    assert mlp([3, 4, 2], activation="tanh", init="torch", seed=0)[0].init == "torch"
    a, b, c = mlp([3, 4, 2], seed=1), mlp([3, 4, 2], seed=1), mlp([3, 4, 2], seed=2)
    for k in a.parameters():
        np.testing.assert_array_equal(a.parameters()[k], b.parameters()[k])
    assert not np.array_equal(a[0].weight, c[0].weight)
    a64 = mlp([3, 4, 2], seed=1, dtype="float64")
    np.testing.assert_allclose(a[0].weight, a64[0].weight, rtol=1e-7)


def test_mlp_structure_and_names():
    m = mlp([4, 8, 8, 2], activation="sigmoid", dropout=0.3, seed=0)
    kinds = [type(layer).__name__ for layer in m]
    assert kinds == ["Linear", "Sigmoid", "Dropout", "Linear", "Sigmoid", "Dropout", "Linear"]
    assert list(m.parameters()) == ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight",
                                    "6.bias"]
    assert list(m.gradients()) == list(m.parameters())
    assert len(m) == 7 and m[0] is m.layers[0] and list(iter(m)) == m.layers
    lm = linear_model(3, seed=0)
    assert list(lm.parameters()) == ["0.weight", "0.bias"] and lm[0].weight.shape == (1, 3)
    names = [n for n, _ in torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.Sigmoid(), torch.nn.Dropout(), torch.nn.Linear(8, 8),
        torch.nn.Sigmoid(), torch.nn.Dropout(), torch.nn.Linear(8, 2)).named_parameters()]
    assert names == list(m.parameters())


def test_parameters_are_live_references():
    m = mlp([2, 3, 1], seed=0)
    p = m.parameters()["0.weight"]
    p += 1.0
    np.testing.assert_array_equal(m[0].weight, p)
    x = np.ones((2, 2), np.float32)
    m.backward(np.ones_like(m.forward(x)))
    g = m.gradients()["0.weight"]
    m.backward(2 * np.ones_like(m.forward(x)))
    assert m.gradients()["0.weight"] is g  # gradients are overwritten in place, not re-bound
    m.zero_grad()
    assert all(np.all(v == 0) for v in m.gradients().values())


def test_train_eval_dropout():
    m = mlp([20, 50, 1], dropout=0.5, seed=0)
    x = np.ones((64, 20), np.float32)
    m.eval()
    assert all(not layer.training for layer in m)
    np.testing.assert_array_equal(m.forward(x), m.forward(x))
    assert m[2].mask is None
    m.train()
    assert all(layer.training for layer in m)
    assert not np.array_equal(m.forward(x), m.forward(x))


def test_dropout_statistics_and_inverted_scaling():
    d = Dropout(0.3, rng=np.random.default_rng(0))
    x = np.ones((400, 500), np.float32)
    y = d.forward(x)
    assert y.dtype == np.float32 and d.mask.dtype == np.float32
    frac = np.mean(d.mask == 0)
    assert abs(frac - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.01
    np.testing.assert_array_equal(d.backward(x), d.mask)
    d.eval()
    assert d.forward(x) is x and d.backward(x) is x


def test_dropout_edge_probabilities():
    x = np.ones((3, 4))
    assert np.array_equal(Dropout(0.0).forward(x), x)
    z = Dropout(1.0).forward(x)
    assert np.all(z == 0) and np.all(np.isfinite(z))
    torch_z = F.dropout(torch.ones(3, 4), p=1.0, training=True)
    assert torch.all(torch_z == 0)


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_dropout_bad_p(p):
    with pytest.raises(ValueError, match="p"):
        Dropout(p)


def test_dropout_p_not_a_number():
    with pytest.raises(TypeError, match="p"):
        Dropout("0.5")


def test_set_rng_reproducible_masks_and_states():
    m = mlp([5, 10, 10, 1], dropout=0.5, seed=0)
    x = np.ones((8, 5), np.float32)
    m.set_rng(42)
    a = m.forward(x)
    m.set_rng(np.random.default_rng(42))
    b = m.forward(x)
    np.testing.assert_array_equal(a, b)
    states = m.rng_states()
    c = m.forward(x)
    m.set_rng_states(states)
    np.testing.assert_array_equal(m.forward(x), c)
    m64 = mlp([5, 10, 10, 1], dropout=0.5, seed=0, dtype="float64")
    m64.set_rng(42)
    m64.forward(x)
    m.set_rng(42)
    m.forward(x)
    np.testing.assert_array_equal(m[2].mask, m64[2].mask.astype(np.float32))


def test_config_round_trip():
    m = mlp([4, 6, 3], activation="leaky_relu", dropout=0.1, seed=0)
    m2 = layer_from_config(m.config())
    m2.load_parameters(m.parameters())
    m.eval()
    m2.eval()
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_array_equal(m.forward(x), m2.forward(x))
    assert repr(m2).startswith("Sequential(")


# --------------------------------------------------------------------------------------------
# bad input


def test_linear_wrong_feature_count():
    with pytest.raises(ValueError, match=r"x must have 4 features.*\(2, 3\)"):
        Linear(4, 2).forward(np.ones((2, 3)))


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        Linear(2, 2).backward(np.ones((1, 2)))


@pytest.mark.parametrize("kwargs,match", [
    ({"in_features": 0, "out_features": 2}, "in_features"),
    ({"in_features": 2, "out_features": 2.5}, "out_features"),
    ({"in_features": 2, "out_features": 2, "init": "xavier"}, "init"),
    ({"in_features": 2, "out_features": 2, "dtype": "int32"}, "dtype"),
    ({"in_features": 2, "out_features": 2, "dtype": "float16"}, "dtype"),
])
def test_linear_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Linear(**kwargs)


def test_mlp_bad_args():
    with pytest.raises(ValueError, match="unknown activation 'rellu'.*'relu'"):
        mlp([2, 3, 1], activation="rellu")
    with pytest.raises(ValueError, match="sizes"):
        mlp([3])
    with pytest.raises(ValueError, match="sizes"):
        mlp([3, 0, 1])
    with pytest.raises(ValueError, match="dropout"):
        mlp([3, 4, 1], dropout=1.0)
    with pytest.raises(TypeError, match="layer 0"):
        Sequential(np.eye(2))
    with pytest.raises(ValueError, match="approximate"):
        GELU("fast")


def test_load_parameters_checks():
    m = mlp([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match="missing"):
        m.load_parameters({"0.weight": np.zeros((3, 2))})
    bad = {k: np.zeros(1) for k in m.parameters()}
    with pytest.raises(ValueError, match="shape"):
        m.load_parameters(bad)
