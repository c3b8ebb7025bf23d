"""Likelihood losses: poisson_nll and gaussian_nll against torch over every option and var layout;
tweedie against an independent autograd of its formula and its known limits; every option against
finite differences; bad input."""

import itertools
import math

import array_api_strict
import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gradcheck import assert_fd_grad, torch_value_and_grad
from hypothesis import given
from hypothesis import strategies as st

import losslab

REDUCTIONS = ("mean", "sum", "none")
DTYPES = ("float32", "float64")
TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-5)}


def _assert_close(ours, ref, dtype):
    np.testing.assert_allclose(np.asarray(ours), ref, **TOL[dtype])


def _reduce_t(l, reduction):
    return {"mean": l.mean, "sum": l.sum, "none": lambda: l}[reduction]()


# --- poisson_nll against torch -------------------------------------------------------------------


def _poisson_inputs(shape, dtype, log_input, seed=0):
    rng = np.random.default_rng(seed)
    if log_input:
        x = rng.normal(scale=1.5, size=shape)
    else:
        x = rng.uniform(0.0, 3.0, size=shape)
        x.reshape(-1)[0] = 0.0  # a zero rate: only eps keeps the log finite
    y = rng.poisson(2.0, size=shape).astype(np.float64)
    flat = y.reshape(-1)
    flat[: min(4, flat.size)] = [0.0, 1.0, 2.5, 7.0][: min(4, flat.size)]  # around the mask
    return x.astype(dtype), y.astype(dtype)


POISSON_OPTIONS = [
    dict(log_input=li, full=fu, eps=e)
    for li, fu, e in itertools.product((True, False), (False, True), (1e-8, 0.5))
]


@pytest.mark.parametrize("options", POISSON_OPTIONS, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (7,), (3, 4), (2, 3, 2)], ids=str)
def test_poisson_nll_matches_torch(options, reduction, dtype, shape):
    x, y = _poisson_inputs(shape, dtype, options["log_input"])
    opts = dict(options, reduction=reduction)
    value, grad = losslab.get("poisson_nll", **opts).value_and_grad(x, y)
    ref_v, (ref_g,) = torch_value_and_grad(F.poisson_nll_loss, [x, y], [0], **opts)
    assert value.dtype == np.dtype(dtype) and grad.dtype == np.dtype(dtype)
    _assert_close(value, ref_v, dtype)
    # 1 - y / eps at the zero rate is ~1e8: compare relative to the gradient's scale.
    np.testing.assert_allclose(
        grad, ref_g, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * max(1, np.abs(ref_g).max())
    )


def test_poisson_nll_full_term_is_stirling_above_one_and_zero_below():
    y = np.array([0.0, 0.5, 1.0, 1.5, 10.0])
    x = np.zeros_like(y)
    base = losslab.get("poisson_nll", reduction="none")(x, y)
    full = losslab.get("poisson_nll", full=True, reduction="none")(x, y)
    stirling = [0, 0, 0] + [t * math.log(t) - t + 0.5 * math.log(2 * math.pi * t) for t in y[3:]]
    np.testing.assert_allclose(full - base, stirling, rtol=1e-14, atol=0)
    # and it is Stirling's approximation of log(y!): within 1% at y = 10
    assert abs(stirling[-1] - math.lgamma(11.0)) < 0.01 * math.lgamma(11.0)


def test_poisson_nll_minimiser_is_the_mean_count():
    y = np.array([0.0, 3.0, 1.0, 4.0, 2.0])
    loss = losslab.get("poisson_nll", reduction="sum")
    g = loss.grad(np.full_like(y, math.log(np.mean(y))), y)
    assert abs(np.sum(g)) < 1e-12
    g = losslab.get("poisson_nll", log_input=False, eps=0.0, reduction="sum").grad(
        np.full_like(y, np.mean(y)), y
    )
    assert abs(np.sum(g)) < 1e-12


# --- gaussian_nll against torch ------------------------------------------------------------------

# (input shape, var shape or "number"): every layout torch's broadcasting rule accepts.
GAUSS_LAYOUTS = [
    ((2, 3, 4), (2, 3, 4)),
    ((2, 3, 4), (2, 3)),  # one dim short: a trailing 1 is added
    ((2, 3, 4), (2, 3, 1)),
    ((2, 3, 4), (1, 3, 4)),
    ((2, 3, 4), (2, 1, 4)),
    ((5,), (5,)),
    ((5,), ()),  # 0-d var against 1-d input is "one dim short"
    ((5,), (1,)),
    ((4, 1), (4,)),
    ((3, 2), "number"),
]


def _gauss_inputs(in_shape, var_shape, dtype, seed=0, clamp=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=in_shape).astype(dtype)
    y = rng.normal(size=in_shape).astype(dtype)
    if var_shape == "number":
        return x, y, 1e-7 if clamp else 0.7
    var = rng.uniform(0.0, 2.0, size=var_shape)
    if clamp and var.size >= 2:  # entries below eps: torch clamps them, straight-through grad
        var.reshape(-1)[:2] = [0.0, 1e-7]
    return x, y, var.astype(dtype)


def _torch_gaussian(x, y, var, **opts):
    """torch's value and gradients; for a number var, the gradient w.r.t. it via a full tensor."""
    if not isinstance(var, float):
        v, (gx, gv) = torch_value_and_grad(F.gaussian_nll_loss, [x, y, var], [0, 2], **opts)
        return v, gx, gv
    full_var = np.full(x.shape, var, dtype=x.dtype)
    v, (gx, gv) = torch_value_and_grad(F.gaussian_nll_loss, [x, y, full_var], [0, 2], **opts)
    ref_v, _ = torch_value_and_grad(F.gaussian_nll_loss, [x, y, var], [0], **opts)
    np.testing.assert_array_equal(v, ref_v)  # the number and the full tensor agree in torch
    return v, gx, np.sum(gv, dtype=np.float64).astype(x.dtype)


@pytest.mark.parametrize(("in_shape", "var_shape"), GAUSS_LAYOUTS, ids=str)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("eps", [1e-6, 0.3])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_nll_matches_torch(in_shape, var_shape, full, eps, reduction, dtype):
    x, y, var = _gauss_inputs(in_shape, var_shape, dtype)
    opts = dict(full=full, eps=eps, reduction=reduction)
    value, (gx, gv) = losslab.get("gaussian_nll", **opts).value_and_grad(x, y, var)
    ref_v, ref_gx, ref_gv = _torch_gaussian(x, y, var, **opts)
    assert value.dtype == np.dtype(dtype) and gx.dtype == np.dtype(dtype)
    assert gv.dtype == np.dtype(dtype) and gv.shape == np.shape(var)
    _assert_close(value, ref_v, dtype)
    _assert_close(gx / np.abs(ref_gx).max(), ref_gx / np.abs(ref_gx).max(), dtype)
    # At clamped entries d/dvar ~ -(x - y)^2 / eps^2 ~ 1e12: compare relative to the scale.
    scale = max(1.0, float(np.abs(ref_gv).max()))
    _assert_close(gv / scale, ref_gv / scale, dtype)


def test_gaussian_nll_clamped_var_gets_torchs_straight_through_gradient():
    x, y = np.array([0.5, 1.0, 2.0]), np.array([0.0, 0.2, 1.0])
    var = np.array([1e-9, 0.0, 2.0])
    _, (_, gv) = losslab.get("gaussian_nll", reduction="sum").value_and_grad(x, y, var)
    eps = 1e-6
    d2 = (x - y) ** 2
    expected = 0.5 * (1 / np.maximum(var, eps) - d2 / np.maximum(var, eps) ** 2)
    np.testing.assert_allclose(gv, expected, rtol=1e-14)
    assert gv[0] < -1e10  # not the 0 of the flat clamped function


def test_gaussian_nll_var_in_another_dtype_keeps_each_dtype():
    x, y, var = _gauss_inputs((3, 4), (3,), "float32", clamp=False)
    value, (gx, gv) = losslab.get("gaussian_nll").value_and_grad(x, y, var.astype("float64"))
    assert value.dtype == np.float32 and gx.dtype == np.float32 and gv.dtype == np.float64


def test_gaussian_nll_minimiser_of_var_is_the_mean_squared_residual():
    x, y, _ = _gauss_inputs((6,), (6,), "float64", clamp=False)
    best = float(np.mean((x - y) ** 2))
    _, (_, gv) = losslab.get("gaussian_nll", reduction="sum").value_and_grad(x, y, best)
    assert abs(float(gv)) < 1e-12


@pytest.mark.parametrize(("in_shape", "var_shape"), GAUSS_LAYOUTS, ids=str)
def test_gaussian_nll_var_layouts_run_on_array_api_strict_and_torch(in_shape, var_shape):
    x, y, var = _gauss_inputs(in_shape, var_shape, "float64")
    loss = losslab.get("gaussian_nll", reduction="sum")
    ref_v, ref_g = loss.value_and_grad(x, y, var)
    for conv, back in [
        (array_api_strict.asarray, np.asarray),
        (torch.from_numpy, lambda t: t.numpy()),
    ]:
        v_in = var if isinstance(var, float) else conv(var)
        v, g = loss.value_and_grad(conv(x), conv(y), v_in)
        np.testing.assert_allclose(back(v), ref_v, rtol=1e-12)
        for a, b in zip(g, ref_g):
            assert tuple(a.shape) == np.shape(b)
            np.testing.assert_allclose(back(a), b, rtol=1e-12)


# --- tweedie -------------------------------------------------------------------------------------


def _tweedie_inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    y = np.where(rng.random(size=shape) < 0.3, 0.0, rng.gamma(2.0, 1.0, size=shape))
    return x.astype(dtype), y.astype(dtype)


def _tweedie_torch(x, y, power, reduction):
    # Written from LightGBM's RegressionTweedieLoss / XGBoost's tweedie-nloglik, independently.
    a = y * torch.exp((1 - power) * x) / (1 - power)
    b = torch.exp((2 - power) * x) / (2 - power)
    return _reduce_t(-a + b, reduction)


@pytest.mark.parametrize("power", [1.01, 1.2, 1.5, 1.8, 1.99])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_tweedie_matches_autograd_of_the_lightgbm_formula(power, reduction, dtype):
    x, y = _tweedie_inputs((4, 5), dtype)
    opts = dict(power=power, reduction=reduction)
    value, grad = losslab.get("tweedie", **opts).value_and_grad(x, y)
    ref_v, (ref_g,) = torch_value_and_grad(_tweedie_torch, [x, y], [0], **opts)
    assert value.dtype == np.dtype(dtype) and grad.dtype == np.dtype(dtype)
    _assert_close(value, ref_v, dtype)
    _assert_close(grad, ref_g, dtype)


def test_tweedie_value_by_hand():
    # x = log 2, y = 3, p = 1.5: -3 * 2^-0.5 / -0.5 + 2^0.5 / 0.5 = 6/sqrt2 + 2 sqrt2 = 5 sqrt2
    v, g = losslab.get("tweedie", reduction="sum").value_and_grad(
        np.array([math.log(2.0)]), np.array([3.0])
    )
    np.testing.assert_allclose(v, 5 * math.sqrt(2.0), rtol=1e-14)
    np.testing.assert_allclose(g, -3 / math.sqrt(2.0) + math.sqrt(2.0), rtol=1e-14)


def test_tweedie_minimiser_is_the_mean_and_gradient_tends_to_poisson_as_power_tends_to_one():
    x, y = _tweedie_inputs((10,), "float64")
    g = losslab.get("tweedie", power=1.7, reduction="sum").grad(
        np.full_like(y, math.log(np.mean(y))), y
    )
    assert abs(np.sum(g)) < 1e-12
    near = losslab.get("tweedie", power=1 + 1e-9, reduction="none").grad(x, y)
    poisson = losslab.get("poisson_nll", reduction="none").grad(x, y)
    np.testing.assert_allclose(near, poisson, rtol=1e-7, atol=1e-8)


# --- finite differences over every option, hypothesis-drawn shapes and values --------------------

FD_CASES = (
    [("poisson_nll", dict(log_input=li, full=fu)) for li in (True, False) for fu in (False, True)]
    + [("poisson_nll", dict(log_input=False, eps=0.5))]
    + [("gaussian_nll", dict(full=fu)) for fu in (False, True)]
    + [("gaussian_nll", dict(eps=0.05))]
    + [("tweedie", dict(power=p)) for p in (1.01, 1.5, 1.99)]
)
FD_PARAMS = [(n, o, r) for (n, o), r in itertools.product(FD_CASES, REDUCTIONS)]


def _floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_subnormal=False)


def _gauss_var(data, shape):
    layouts = ["same", "number"]
    if shape:
        layouts.append("short")
        layouts += [i for i, s in enumerate(shape) if s != 1]
    layout = data.draw(st.sampled_from(layouts), label="var layout")
    if layout == "number":
        return data.draw(_floats(0.1, 3.0), label="var")
    var_shape = {"same": shape, "short": shape[:-1]}.get(layout)
    if var_shape is None:
        var_shape = shape[:layout] + (1,) + shape[layout + 1 :]
    return data.draw(hnp.arrays(np.float64, var_shape, elements=_floats(0.1, 3.0)), label="var")


@pytest.mark.parametrize(("name", "options", "reduction"), FD_PARAMS, ids=str)
@given(data=st.data())
def test_gradient_matches_finite_differences(name, options, reduction, data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), label="shape")
    positive_input = name == "poisson_nll" and not options["log_input"]
    lo, hi = (0.05, 4.0) if positive_input else (-2.0, 2.0)
    x = data.draw(hnp.arrays(np.float64, shape, elements=_floats(lo, hi)), label="input")
    if name == "gaussian_nll":
        y = data.draw(hnp.arrays(np.float64, shape, elements=_floats(-3.0, 3.0)), label="target")
        inputs = [x, y, _gauss_var(data, shape)]
    else:
        y = data.draw(hnp.arrays(np.float64, shape, elements=_floats(0.0, 6.0)), label="target")
        inputs = [x, y]
    loss = losslab.get(name, **options, reduction=reduction)
    if isinstance(inputs[-1], float):
        # A number var is not an array the finite-difference helper can perturb; check d/dx
        # against it and d/dvar against the same var as a 0-d array broadcast to input.
        g = loss.grad(*inputs)[1]
        full = np.full(shape, inputs[-1])
        g_full = loss.grad(x, y, full)[1]
        np.testing.assert_allclose(g, np.sum(g_full), rtol=1e-12, atol=1e-14)
        inputs[-1] = full
    # Central differences lose ~eps_machine * |sum of l_i| / h to rounding; the 1/(p - 1) term of
    # tweedie at p = 1.01 makes that sum large while the gradient stays O(1).
    magnitude = float(np.sum(np.abs(losslab.get(name, **options, reduction="none")(*inputs))))
    assert_fd_grad(loss, inputs, atol=max(1e-7, 1e-9 * magnitude))


# --- bad input -----------------------------------------------------------------------------------


def _call(name, x, y, **opts):
    args = (x, y, np.ones_like(x) if np.issubdtype(np.asarray(x).dtype, np.floating) else 1.0)
    return losslab.get(name, **opts)(*(args if name == "gaussian_nll" else args[:2]))


NAMES = ("poisson_nll", "gaussian_nll", "tweedie")


@pytest.mark.parametrize("name", NAMES)
def test_shape_mismatch_names_target(name):
    with pytest.raises(ValueError, match=r"target must have the same shape as input \(3, 2\)"):
        _call(name, np.ones((3, 2)), np.ones((2, 3)))


@pytest.mark.parametrize("name", NAMES)
def test_integer_input_is_a_type_error_naming_input(name):
    with pytest.raises(TypeError, match="input must be a floating-point array"):
        _call(name, np.arange(6).reshape(2, 3), np.ones((2, 3)))


@pytest.mark.parametrize("name", NAMES)
def test_unknown_reduction_names_reduction(name):
    with pytest.raises(ValueError, match="reduction must be one of"):
        losslab.get(name, reduction="average")
    with pytest.raises(TypeError, match="reduction"):  # the formula has none: the catalog reduces
        args = (np.ones(3), np.ones(3), np.ones(3))
        losslab.spec(name).fn(np, *args[: len(losslab.spec(name).inputs)], reduction="average")


def test_gaussian_negative_var_array_names_var():
    with pytest.raises(ValueError, match=r"var must lie in \[0, inf\]"):
        losslab.get("gaussian_nll")(np.zeros(3), np.zeros(3), np.array([1.0, -0.1, 1.0]))


def test_gaussian_negative_var_number_names_var():
    with pytest.raises(ValueError, match="var must be >= 0"):
        losslab.get("gaussian_nll")(np.zeros(3), np.zeros(3), -1.0)


def test_gaussian_nan_var_names_var():
    with pytest.raises(ValueError, match="var must lie in"):
        losslab.get("gaussian_nll")(np.zeros(3), np.zeros(3), np.array([1.0, np.nan, 1.0]))


def test_gaussian_negative_var_check_can_be_switched_off():
    with losslab.value_checks(False):
        v = losslab.get("gaussian_nll")(np.zeros(2), np.zeros(2), np.array([-1.0, 1.0]))
    assert np.isfinite(v)  # clamped at eps, as torch would after its own check


@pytest.mark.parametrize(
    ("in_shape", "var_shape"),
    [((2, 3), (3,)), ((2, 3), (1, 1)), ((2, 3), (2, 2)), ((2, 3, 4), (2,)), ((3,), (2,))],
    ids=str,
)
def test_gaussian_var_of_the_wrong_shape_names_var(in_shape, var_shape):
    x = np.zeros(in_shape)
    with pytest.raises(ValueError, match=rf"var of shape {re_shape(var_shape)}"):
        losslab.get("gaussian_nll")(x, x, np.ones(var_shape))
    with pytest.raises(ValueError):  # torch refuses them too
        F.gaussian_nll_loss(torch.zeros(in_shape), torch.zeros(in_shape), torch.ones(var_shape))


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_gaussian_integer_var_is_a_type_error_naming_var():
    with pytest.raises(TypeError, match="var must be a floating-point array"):
        losslab.get("gaussian_nll")(np.zeros(3), np.zeros(3), np.ones(3, dtype=np.int64))


@pytest.mark.parametrize("name", ["poisson_nll", "gaussian_nll"])
def test_negative_eps_names_eps(name):
    with pytest.raises(ValueError, match="eps must be >= 0"):
        _call(name, np.ones(3), np.ones(3), eps=-1e-3)


def test_poisson_negative_rate_with_log_input_false_names_input():
    with pytest.raises(ValueError, match=r"input must lie in \[0, inf\]"):
        losslab.get("poisson_nll", log_input=False)(np.array([1.0, -0.5]), np.ones(2))


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5, 3.0, float("nan")])
def test_bad_power(power):
    with pytest.raises(ValueError, match=r"power must lie in \(1, 2\)"):
        losslab.get("tweedie", power=power)(np.zeros(3), np.ones(3))


def test_non_numeric_power_is_a_type_error():
    with pytest.raises(TypeError, match="power must be a number"):
        losslab.get("tweedie", power="compound")(np.zeros(3), np.ones(3))


def test_tweedie_negative_target_names_target():
    with pytest.raises(ValueError, match=r"target must lie in \[0, inf\]"):
        losslab.get("tweedie")(np.zeros(3), np.array([1.0, -2.0, 0.0]))


# --- extreme inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_extremes_stay_finite(dtype):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        x = np.array([-1e4, -50.0, 0.0], dtype=dtype)
        y = np.array([3.0, 0.0, 1.0], dtype=dtype)
        v, g = losslab.get("poisson_nll", full=True, reduction="none").value_and_grad(x, y)
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
        np.testing.assert_allclose(g[:2], [-3.0, 0.0], atol=1e-12)
        # all-zero var: clamped at eps, finite (torch gives the same)
        v, (gx, gv) = losslab.get("gaussian_nll").value_and_grad(x[1:], y[1:], np.zeros(2, dtype))
        assert np.isfinite(v) and np.all(np.isfinite(gx)) and np.all(np.isfinite(gv))
