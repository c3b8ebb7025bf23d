"""Regression losses: mse, l1, huber, smooth_l1 against torch; log_cosh and quantile against
independent references; every option against finite differences; bad input; extreme inputs."""

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
SHAPES = [(), (7,), (3, 4), (2, 3, 4)]
TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-6)}


def _pair(shape, dtype, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=scale, size=shape).astype(dtype)
    y = rng.normal(scale=scale, size=shape).astype(dtype)
    w = rng.uniform(0.1, 2.0, size=shape).astype(dtype)
    return x, y, w


def _assert_close(ours, ref, dtype):
    np.testing.assert_allclose(np.asarray(ours), ref, **TOL[dtype])


# --- against torch -------------------------------------------------------------------------------

# (losslab name, torch function, options); torch spells every option the same way.
TORCH_CASES = (
    [("mse", F.mse_loss, {}), ("l1", F.l1_loss, {})]
    + [("huber", F.huber_loss, {"delta": d}) for d in (0.3, 1.0, 2.5)]
    + [("smooth_l1", F.smooth_l1_loss, {"beta": b}) for b in (0.0, 0.4, 1.0, 2.5)]
)
WEIGHTED = {"mse", "l1", "huber"}


TORCH_PARAMS = [
    (n, f, o, wt) for n, f, o in TORCH_CASES for wt in (False, True) if n in WEIGHTED or not wt
]


@pytest.mark.parametrize(
    ("name", "tfn", "options", "weighted"),
    TORCH_PARAMS,
    ids=[f"{n}-{o}-{'weighted' if wt else 'unweighted'}" for n, _, o, wt in TORCH_PARAMS],
)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_torch(name, tfn, options, weighted, reduction, dtype, shape):
    x, y, w = _pair(shape, dtype)
    opts = dict(options, reduction=reduction)
    if weighted:
        opts["weight"] = w
    value, grad = losslab.get(name, **opts).value_and_grad(x, y)
    ref_v, (ref_g,) = torch_value_and_grad(tfn, [x, y], [0], **opts)
    assert value.dtype == np.dtype(dtype) and grad.dtype == np.dtype(dtype)
    _assert_close(value, ref_v, dtype)
    _assert_close(grad, ref_g, dtype)


@pytest.mark.parametrize(
    ("name", "tfn", "options"), TORCH_CASES, ids=[f"{n}-{o}" for n, _, o in TORCH_CASES]
)
def test_matches_torch_exactly_on_the_kinks(name, tfn, options):
    # Residuals of exactly 0 and +-delta/beta: the subgradient choices must be torch's.
    k = options.get("delta", options.get("beta", 1.0))
    x = np.array([0.0, k, -k, 0.5 * k, -3.0 * k, 3.0 * k])
    y = np.zeros_like(x)
    value, grad = losslab.get(name, **options).value_and_grad(x, y)
    ref_v, (ref_g,) = torch_value_and_grad(tfn, [x, y], [0], **options)
    _assert_close(value, ref_v, "float64")
    _assert_close(grad, ref_g, "float64")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_log_cosh_matches_torch_autograd_of_the_naive_formula(reduction, dtype):
    # Moderate residuals, where log(cosh(d)) is itself accurate.
    x, y, _ = _pair((4, 5), dtype)
    value, grad = losslab.get("log_cosh", reduction=reduction).value_and_grad(x, y)

    def naive(a, b, reduction):
        l = torch.log(torch.cosh(a - b))
        return {"mean": l.mean, "sum": l.sum, "none": lambda: l}[reduction]()

    ref_v, (ref_g,) = torch_value_and_grad(naive, [x, y], [0], reduction=reduction)
    _assert_close(value, ref_v, dtype)
    _assert_close(grad, ref_g, dtype)


def test_log_cosh_matches_logaddexp_for_large_residuals():
    d = np.array([-800.0, -30.0, -1.5, 1.0, 1.2, 40.0, 700.0])
    value = losslab.get("log_cosh", reduction="none")(d, np.zeros_like(d))
    np.testing.assert_allclose(value, np.logaddexp(d, -d) - math.log(2.0), rtol=1e-14, atol=0)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_log_cosh_clamped_path_equals_unclamped_path(backend, reduction, monkeypatch):
    # Where a look at the data shows every |d| <= 20 (NumPy, CPU torch), log_cosh skips the clamp
    # that GPUs and JAX always take (primitive clamp_above); both paths give the same numbers.
    from losslab.losses import _primitives

    x = np.linspace(-19.0, 19.0, 42).reshape(6, 7)  # residuals up to 19.5, all below 20
    y = np.full_like(x, -0.5)
    if backend == "torch":
        x, y = torch.from_numpy(x), torch.from_numpy(y)
    loss = losslab.get("log_cosh", reduction=reduction)
    answers = []
    real = _primitives.all_within

    def spy(*args):
        answers.append(real(*args))
        return answers[-1]

    monkeypatch.setattr(_primitives, "all_within", spy)
    value, grad = loss.value_and_grad(x, y)
    assert answers == [True], "the unclamped path was not taken"
    monkeypatch.setattr(_primitives, "all_within", lambda *a: answers.append(False) or False)
    clamped_value, clamped_grad = loss.value_and_grad(x, y)
    assert answers == [True, False]
    np.testing.assert_allclose(np.asarray(clamped_value), np.asarray(value), rtol=1e-15, atol=0)
    np.testing.assert_array_equal(np.asarray(clamped_grad), np.asarray(grad))


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_cosh_keeps_relative_accuracy_for_small_residuals(dtype):
    # log cosh d = d^2/2 - d^4/12 + ...; the |d| + softplus(-2|d|) - log 2 form alone would give
    # 0 or 6e-8 here in float32 (absolute error eps * log 2), and can even go negative.
    d = np.array([1e-7, 1e-4, 1e-3, 0.3, 0.999, 1.0, 1.001], dtype=dtype)
    value = losslab.get("log_cosh", reduction="none")(d, np.zeros_like(d))
    exact = np.log(np.cosh(np.float64(d))) if dtype == "float64" else None
    ref = np.logaddexp(d.astype(np.float64), -d.astype(np.float64)) - math.log(2.0)
    small = d.astype(np.float64)
    ref = np.where(small < 1e-2, small**2 / 2 - small**4 / 12 + small**6 / 45, ref)
    if exact is not None:
        np.testing.assert_allclose(value[3:], exact[3:], rtol=1e-14)
    np.testing.assert_allclose(value, ref, rtol=2e-7 if dtype == "float32" else 1e-13)
    assert np.all(value > 0)


@pytest.mark.parametrize("q", [0.05, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_quantile_matches_torch_autograd_of_the_formula(q, reduction, dtype):
    x, y, _ = _pair((3, 6), dtype)

    def pinball(a, b, reduction, quantile):
        r = b - a
        l = torch.where(r >= 0, quantile * r, (quantile - 1.0) * r)
        return {"mean": l.mean, "sum": l.sum, "none": lambda: l}[reduction]()

    opts = dict(quantile=q, reduction=reduction)
    value, grad = losslab.get("quantile", **opts).value_and_grad(x, y)
    ref_v, (ref_g,) = torch_value_and_grad(pinball, [x, y], [0], **opts)
    _assert_close(value, ref_v, dtype)
    _assert_close(grad, ref_g, dtype)


def test_quantile_half_is_half_of_l1_and_its_kink_gradient_is_zero():
    x, y, _ = _pair((5, 3), "float64")
    y[0, 0] = x[0, 0]
    v, g = losslab.get("quantile", quantile=0.5, reduction="sum").value_and_grad(x, y)
    v1, g1 = losslab.get("l1", reduction="sum").value_and_grad(x, y)
    np.testing.assert_allclose(v, 0.5 * v1, rtol=1e-14)
    np.testing.assert_allclose(g, 0.5 * g1, rtol=1e-14)
    assert g[0, 0] == 0.0


def test_quantile_minimiser_is_the_empirical_quantile():
    # d/dc sum_i pinball(c, y_i) is < 0 below the q-quantile of y and > 0 above it; for
    # y = 1..10 and q = 0.3 every c in [3, 4] is a minimiser (the sum is flat there).
    y = np.arange(1.0, 11.0)
    loss = losslab.get("quantile", quantile=0.3, reduction="sum")

    def slope(c):
        return float(np.sum(loss.grad(np.full_like(y, c), y)))

    assert slope(2.9) < 0 < slope(4.1)
    assert slope(3.5) == pytest.approx(0.0, abs=1e-12)


# --- finite differences over every option, hypothesis-drawn shapes and values --------------------

FD_CASES = [
    ("mse", {}, ()),
    ("mse", {"weight": True}, ()),
    ("l1", {}, (0.0,)),
    ("l1", {"weight": True}, (0.0,)),
    ("huber", {"delta": 0.3}, (0.3,)),
    ("huber", {"delta": 1.0}, (1.0,)),
    ("huber", {"delta": 2.0, "weight": True}, (2.0,)),
    ("smooth_l1", {"beta": 0.0}, (0.0,)),
    ("smooth_l1", {"beta": 0.5}, (0.5,)),
    ("smooth_l1", {"beta": 1.0}, (1.0,)),
    ("smooth_l1", {"beta": 2.0}, (2.0,)),
    ("log_cosh", {}, ()),
    ("quantile", {"quantile": 0.1}, (0.0,)),
    ("quantile", {"quantile": 0.5}, (0.0,)),
    ("quantile", {"quantile": 0.9}, (0.0,)),
]
FD_PARAMS = [(n, o, k, r) for (n, o, k), r in itertools.product(FD_CASES, REDUCTIONS)]

_values = st.floats(-4.0, 4.0, allow_nan=False, allow_subnormal=False)


def _away(d, kinks, gap=1e-3):
    a = np.abs(d)
    for k in kinks:
        a = np.where(np.abs(a - k) < gap, k + 2 * gap, a)
    return np.where(d < 0, -a, a)


@pytest.mark.parametrize(
    ("name", "options", "kinks", "reduction"),
    FD_PARAMS,
    ids=[f"{n}-{o}-{r}" for n, o, _, r in FD_PARAMS],
)
@given(data=st.data())
def test_gradient_matches_finite_differences(name, options, kinks, reduction, data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), label="shape")
    x = data.draw(hnp.arrays(np.float64, shape, elements=_values), label="input")
    d = data.draw(hnp.arrays(np.float64, shape, elements=_values), label="residual")
    opts = dict(options, reduction=reduction)
    if opts.get("weight"):
        opts["weight"] = data.draw(
            hnp.arrays(np.float64, shape, elements=st.floats(0.1, 3.0)), label="weight"
        )
    y = x - _away(d, kinks)
    assert_fd_grad(losslab.get(name, **opts), [x, y])


# --- bad input -----------------------------------------------------------------------------------

NAMES = ("mse", "l1", "huber", "smooth_l1", "log_cosh", "quantile")


@pytest.mark.parametrize("name", NAMES)
def test_shape_mismatch_names_target(name):
    with pytest.raises(ValueError, match=r"target must have the same shape as input \(3, 2\)"):
        losslab.get(name)(np.zeros((3, 2)), np.zeros((2, 3)))


@pytest.mark.parametrize("name", NAMES)
def test_integer_input_is_a_type_error_naming_input(name):
    with pytest.raises(TypeError, match="input must be a floating-point array"):
        losslab.get(name)(np.arange(6).reshape(2, 3), np.zeros((2, 3)))


@pytest.mark.parametrize("name", NAMES)
def test_unknown_reduction_names_reduction(name):
    with pytest.raises(ValueError, match="reduction must be one of"):
        losslab.get(name, reduction="avg")
    with pytest.raises(TypeError, match="reduction"):  # the formula has none: the catalog reduces
        losslab.spec(name).fn(np, np.zeros(3), np.zeros(3), reduction="avg")


@pytest.mark.parametrize("delta", [0.0, -1.0, float("nan")])
def test_bad_delta(delta):
    with pytest.raises(ValueError, match="delta must be > 0"):
        losslab.get("huber", delta=delta)(np.zeros(3), np.zeros(3))


def test_non_numeric_delta_is_a_type_error():
    with pytest.raises(TypeError, match="delta must be a number"):
        losslab.get("huber", delta="big")(np.zeros(3), np.zeros(3))


@pytest.mark.parametrize("beta", [-0.5, float("nan")])
def test_bad_beta(beta):
    with pytest.raises(ValueError, match="beta must be >= 0"):
        losslab.get("smooth_l1", beta=beta)(np.zeros(3), np.zeros(3))


@pytest.mark.parametrize("q", [0.0, 1.0, -0.2, 1.5, float("nan")])
def test_bad_quantile(q):
    with pytest.raises(ValueError, match=r"quantile must lie in \(0, 1\)"):
        losslab.get("quantile", quantile=q)(np.zeros(3), np.zeros(3))


def test_non_numeric_quantile_is_a_type_error():
    with pytest.raises(TypeError, match="quantile must be a number"):
        losslab.get("quantile", quantile="median")(np.zeros(3), np.zeros(3))


@pytest.mark.parametrize("name", sorted(WEIGHTED))
def test_weight_shape_mismatch_names_weight(name):
    with pytest.raises(ValueError, match=r"weight must have the same shape as input"):
        losslab.get(name, weight=np.ones(3))(np.zeros((2, 3)), np.zeros((2, 3)))


def test_complex_weight_is_a_type_error_naming_weight():
    with pytest.raises(TypeError, match="weight must be a real-valued array"):
        losslab.get("mse", weight=np.ones(3, dtype=complex))(np.zeros(3), np.zeros(3))


# --- extreme inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "big"), [("float32", 1e4), ("float64", 1e30)])
def test_log_cosh_is_finite_with_unit_gradient_far_out(dtype, big):
    x = np.array([big, -big, big, 0.5], dtype=dtype)
    y = np.array([0.0, 0.0, -big, 0.5], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grad = losslab.get("log_cosh", reduction="none").value_and_grad(x, y)
    assert value.dtype == np.dtype(dtype) and np.all(np.isfinite(value))
    np.testing.assert_allclose(value[:3], np.abs(x - y)[:3] - math.log(2.0), rtol=1e-6)
    np.testing.assert_array_equal(grad, np.array([1.0, -1.0, 1.0, 0.0], dtype=dtype))


@pytest.mark.parametrize("name", ["huber", "smooth_l1"])
@pytest.mark.parametrize(("dtype", "big"), [("float32", 1e30), ("float64", 1e300)])
def test_huber_family_is_finite_for_huge_residuals(name, dtype, big):
    x = np.array([big, -big, 0.25], dtype=dtype)
    y = np.zeros(3, dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grad = losslab.get(name, reduction="none").value_and_grad(x, y)
    assert np.all(np.isfinite(value)) and value.dtype == np.dtype(dtype)
    np.testing.assert_allclose(value, [big - 0.5, big - 0.5, 0.03125], rtol=1e-6)
    np.testing.assert_array_equal(grad, np.array([1.0, -1.0, 0.25], dtype=dtype))
    if dtype == "float32":  # torch agrees where it is finite
        ref_v, (ref_g,) = torch_value_and_grad(
            getattr(F, f"{name}_loss"), [x, y], [0], reduction="none"
        )
        np.testing.assert_allclose(value, ref_v, rtol=1e-6)
        np.testing.assert_array_equal(grad, ref_g)


# --- options on other array namespaces -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WEIGHTED))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weight_works_on_array_api_strict_and_torch(name, reduction):
    x, y, w = _pair((3, 4), "float64")
    ref_v, ref_g = losslab.get(name, weight=w, reduction=reduction).value_and_grad(x, y)
    for conv, back in [
        (array_api_strict.asarray, np.asarray),
        (torch.from_numpy, lambda t: t.numpy()),
    ]:
        v, g = losslab.get(name, weight=conv(w), reduction=reduction).value_and_grad(
            conv(x), conv(y)
        )
        np.testing.assert_allclose(back(v), ref_v, rtol=1e-12)
        np.testing.assert_allclose(back(g), ref_g, rtol=1e-12)
    # a NumPy weight with torch inputs is moved into torch
    v, _ = losslab.get(name, weight=w, reduction=reduction).value_and_grad(
        torch.from_numpy(x), torch.from_numpy(y)
    )
    np.testing.assert_allclose(v.numpy(), ref_v, rtol=1e-12)
