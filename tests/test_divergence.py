"""kl_div against torch over every reduction (batchmean included) and log_target; js_div against a
direct torch-autograd evaluation of Lin's definition, its properties and extreme logits; finite
differences with hypothesis-drawn shapes and values; one test per kind of bad input."""

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gradcheck import assert_fd_grad, catalog_function, numerical_grad
from hypothesis import given
from hypothesis import strategies as st

import losslab

kl_div = catalog_function("kl_div")
js_div = catalog_function("js_div")

KL_REDUCTIONS = ("mean", "batchmean", "sum", "none")
REDUCTIONS = ("mean", "sum", "none")
DTYPES = ("float64", "float32")
TOL = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 1e-5, "atol": 1e-6}}

pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")


def _log_softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def _distribution(rng, shape, axis=-1, zeros=0.25):
    """Probabilities along ``axis`` with some exact zeros (never a whole slice)."""
    t = np.exp(rng.normal(size=shape))
    t = np.where(rng.random(size=shape) < zeros, 0.0, t)
    t = t + (np.sum(t, axis=axis, keepdims=True) == 0)
    return t / np.sum(t, axis=axis, keepdims=True)


def _torch_ref(fn, x, y, **kwargs):
    """Value and autograd gradient w.r.t. x (0-d arrays kept 0-d)."""
    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt, torch.tensor(y), **kwargs)
    out.backward(torch.ones_like(out))
    return out.detach().numpy(), xt.grad.numpy()


def _check(value, grad, ref_value, ref_grad, x, dtype):
    assert value.dtype == np.dtype(dtype) and grad.dtype == np.dtype(dtype)
    assert value.shape == ref_value.shape and grad.shape == x.shape
    np.testing.assert_allclose(value, ref_value, **TOL[dtype])
    np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])


# --- kl_div against torch ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("reduction", KL_REDUCTIONS)
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4), (6,), (1, 3), ()])
def test_kl_div_matches_torch(shape, reduction, log_target, dtype):
    rng = np.random.default_rng(20)
    x = _log_softmax(rng.normal(size=shape)) if shape else np.array(-0.7)
    t = _distribution(rng, shape) if shape else np.array(0.4)
    if log_target:
        with np.errstate(divide="ignore"):
            t = np.log(t)
        t = np.where(np.isinf(t), -30.0, t)  # torch gives NaN at t = -inf (see below)
    x, t = x.astype(dtype), t.astype(dtype)
    opts = {"reduction": reduction, "log_target": log_target}
    value, grad = kl_div(x, t, **opts)
    _check(value, grad, *_torch_ref(F.kl_div, x, t, **opts), x, dtype)
    if reduction != "batchmean":
        v2, g2 = losslab.get("kl_div", **opts).value_and_grad(x, t)
        np.testing.assert_array_equal(v2, value)
        np.testing.assert_array_equal(g2, grad)


def test_kl_div_mean_divides_by_elements_and_batchmean_by_rows():
    rng = np.random.default_rng(21)
    x, t = _log_softmax(rng.normal(size=(4, 5))), _distribution(rng, (4, 5))
    total = kl_div(x, t, reduction="sum")[0]
    np.testing.assert_allclose(kl_div(x, t)[0], total / 20, rtol=1e-14)
    np.testing.assert_allclose(kl_div(x, t, reduction="batchmean")[0], total / 4, rtol=1e-14)
    p = np.exp(x)
    kl_rows = np.sum(np.where(t > 0, t * np.log(np.where(t > 0, t, 1) / p), 0.0), axis=1)
    np.testing.assert_allclose(kl_div(x, t, reduction="batchmean")[0], kl_rows.mean(), rtol=1e-12)


def test_kl_div_zero_targets_contribute_zero_even_where_torch_gives_nan():
    x = np.array([-np.inf, -1.0, -0.5])
    t = np.array([0.0, 0.5, 0.5])
    value, grad = kl_div(x, t, reduction="none")
    ref_value, ref_grad = _torch_ref(F.kl_div, x, t, reduction="none")
    assert np.isnan(ref_value[0])  # torch: 0 * (log 0 - (-inf))
    np.testing.assert_allclose(value[1:], ref_value[1:], rtol=1e-15)
    assert value[0] == 0.0
    np.testing.assert_array_equal(grad, ref_grad)
    with np.errstate(divide="ignore"):
        log_t = np.log(t)
    v_log, g_log = kl_div(np.array([-1.0, -1.0, -0.5]), log_t, reduction="none", log_target=True)
    assert v_log[0] == 0.0 and np.all(np.isfinite(v_log))
    np.testing.assert_allclose(g_log, -t)


def test_kl_div_batchmean_through_losslab_get():
    rng = np.random.default_rng(22)
    x, t = _log_softmax(rng.normal(size=(3, 4))), _distribution(rng, (3, 4))
    loss = losslab.get("kl_div", reduction="batchmean")
    np.testing.assert_allclose(loss(x, t), kl_div(x, t, reduction="batchmean")[0])


# --- js_div against Lin's definition evaluated by torch autograd -------------------------------


def js_reference(z, q, dim=-1, reduction="mean"):
    """JS(softmax(z), q) straight from the definition, with torch's xlogy for 0 log 0."""
    p = torch.softmax(z, dim)
    m = (p + q) / 2

    def kl(a):
        return torch.sum(torch.xlogy(a, a) - torch.xlogy(a, m), dim)

    rows = 0.5 * (kl(p) + kl(q))
    return {"mean": rows.mean(), "sum": rows.sum(), "none": rows}[reduction]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("shape", "dim"), [((4, 5), -1), ((4, 5), 1), ((4, 5), 0), ((2, 3, 4), 1), ((7,), 0)]
)
def test_js_div_matches_definition(shape, dim, reduction, dtype):
    rng = np.random.default_rng(23)
    z = 2.0 * rng.normal(size=shape)
    q = _distribution(rng, shape, axis=dim)
    z, q = z.astype(dtype), q.astype(dtype)
    value, grad = js_div(z, q, dim=dim, reduction=reduction)
    ref = _torch_ref(js_reference, z, q, dim=dim, reduction=reduction)
    _check(value, grad, *ref, z, dtype)
    v2, g2 = losslab.get("js_div", dim=dim, reduction=reduction).value_and_grad(z, q)
    np.testing.assert_array_equal(v2, value)
    np.testing.assert_array_equal(g2, grad)


def test_js_div_properties():
    rng = np.random.default_rng(24)
    p, q = _distribution(rng, (5, 6), zeros=0.0), _distribution(rng, (5, 6))
    with np.errstate(divide="ignore"):
        log_q = np.log(q)
    js = losslab.get("js_div", reduction="none")
    # Symmetric: JS(p, q) = JS(q, p) (probabilities given to the input as log-probabilities).
    np.testing.assert_allclose(js(np.log(p), q), js(np.where(q > 0, log_q, -1e300), p), rtol=1e-9)
    # Zero at p = q, with zero gradient; bounded by log 2, reached for disjoint supports.
    v, g = js.value_and_grad(np.log(p), p)
    np.testing.assert_allclose(v, 0.0, atol=1e-15)
    np.testing.assert_allclose(g, 0.0, atol=1e-15)
    assert np.all(js(np.log(p), q) <= np.log(2))
    z = np.array([[1e3, 0.0, 0.0], [0.0, 0.0, 800.0]])
    q_disjoint = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(js(z, q_disjoint), np.log(2), rtol=1e-15)


@pytest.mark.parametrize(("dtype", "m"), [("float32", 1e4), ("float64", 1e30)])
def test_js_div_extreme_logits_are_finite_with_the_right_limits(dtype, m):
    z = np.array([[m, -m, 0.0], [-m, -m, m], [m, m, -m]], dtype=dtype)
    q = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.5, 0.5]], dtype=dtype)
    value, grad = js_div(z, q, reduction="none")
    assert value.dtype == np.dtype(dtype) and np.all(np.isfinite(grad))
    # p = (1, 0, 0) equals q: 0. p = (0, 0, 1) vs (1/2, 1/2, 0): disjoint, log 2.
    # p = (1/2, 1/2, 0) vs (0, 1/2, 1/2): 1/2 [1/2 log 2 + 1/2 log 2] = 1/2 log 2.
    np.testing.assert_allclose(value, [0.0, np.log(2), 0.5 * np.log(2)], rtol=1e-6, atol=1e-7)
    # Saturated softmax: the gradient vanishes (p_j (1 - p_j) -> 0 for every logit).
    np.testing.assert_allclose(grad[:2], 0.0, atol=1e-30)
    # Row 3: p/2 (log(p/m) - KL(p || m)) with KL(p || m) = log(2)/2.
    np.testing.assert_allclose(grad[2], [np.log(2) / 8, -np.log(2) / 8, 0.0], rtol=1e-6, atol=1e-30)


# --- finite differences, hypothesis-drawn shapes and values ------------------------------------


@st.composite
def _kl_problem(draw, log_target):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(-6.0, 0.5)))
    if log_target:
        elements = st.one_of(st.just(-np.inf), st.floats(-6.0, 0.0))
    else:
        elements = st.one_of(st.just(0.0), st.floats(0.0, 1.0))
    t = draw(hnp.arrays(np.float64, shape, elements=elements))
    return x, t


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("reduction", KL_REDUCTIONS)
@given(data=st.data())
def test_kl_div_gradient_matches_finite_differences(reduction, log_target, data):
    x, t = data.draw(_kl_problem(log_target))
    opts = {"reduction": reduction, "log_target": log_target}

    def scalar(a, b):
        return float(np.sum(kl_div(a, b, compute_grad=False, **opts)[0]))

    value, grad = kl_div(x, t, **opts)
    assert np.all(np.isfinite(value))
    np.testing.assert_allclose(grad, numerical_grad(scalar, [x, t], 0), rtol=1e-5, atol=1e-7)


@st.composite
def _js_problem(draw, dim):
    ndim = draw(st.integers(max(1, dim + 1 if dim >= 0 else -dim), 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    z = draw(hnp.arrays(np.float64, shape, elements=st.floats(-6.0, 6.0)))
    w = draw(hnp.arrays(np.float64, shape, elements=st.one_of(st.just(0.0), st.floats(0.01, 1))))
    w = w + (np.sum(w, axis=dim, keepdims=True) == 0)
    return z, w / np.sum(w, axis=dim, keepdims=True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dim", [-1, 0, 1])
@given(data=st.data())
def test_js_div_gradient_matches_finite_differences(dim, reduction, data):
    z, q = data.draw(_js_problem(dim))
    assert_fd_grad(losslab.get("js_div", dim=dim, reduction=reduction), [z, q])


# --- bad input: one test per case --------------------------------------------------------------

X = _log_softmax(np.array([[0.1, 0.5, -0.3], [1.0, 0.0, 0.2]]))
T = np.array([[0.2, 0.3, 0.5], [0.0, 0.5, 0.5]])


def test_kl_div_rejects_negative_target_probabilities():
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
        kl_div(X, T - 0.3)


def test_kl_div_negative_targets_are_fine_with_log_target():
    kl_div(X, np.log(T + 0.1), log_target=True)


def test_kl_div_unknown_reduction_suggests_batchmean():
    with pytest.raises(ValueError, match="reduction must be one of.*batchmean.*Did you mean"):
        kl_div(X, T, reduction="batch_mean")


def test_kl_div_mismatched_shapes():
    with pytest.raises(ValueError, match="target must have the same shape as input"):
        kl_div(X, T[:, :2])


def test_kl_div_integer_input():
    with pytest.raises(TypeError, match="input must be a floating-point array"):
        kl_div(np.array([[-1, -2]]), np.array([[0.5, 0.5]]))


def test_js_div_rejects_target_that_is_not_a_distribution():
    with pytest.raises(ValueError, match=r"target must hold probability distributions along dim"):
        js_div(X, T * 0.5)


def test_js_div_rejects_target_outside_unit_interval():
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
        js_div(X, np.array([[1.5, -0.5, 0.0], [0.0, 0.5, 0.5]]))


def test_js_div_rejects_dim_out_of_range():
    with pytest.raises(ValueError, match=r"dim must lie in \[-2, 2\)"):
        losslab.get("js_div", dim=2)(X, T)


def test_js_div_rejects_non_integer_dim():
    with pytest.raises(TypeError, match="dim must be an integer"):
        losslab.get("js_div", dim=1.0)(X, T)


def test_js_div_rejects_0d_input():
    with pytest.raises(ValueError, match="input must have at least 1 dimension"):
        js_div(np.float64(0.3), np.float64(1.0))


def test_js_div_rejects_batchmean():
    with pytest.raises(ValueError, match="reduction must be one of"):
        js_div(X, T, reduction="batchmean")


def test_js_div_mismatched_shapes():
    with pytest.raises(ValueError, match="target must have the same shape as input"):
        js_div(X, T[:1])


def test_registered_tasks_and_aliases():
    assert losslab.spec("kl_div").task == losslab.spec("js_div").task == "distribution"
    assert losslab.get("kl").name == "kl_div" and losslab.get("js").name == "js_div"


@pytest.mark.parametrize("options", [{"log_target": True}, {"dim": 0}, {"dim": 1}])
def test_examples_are_valid_for_their_options(options):
    name = "kl_div" if "log_target" in options else "js_div"
    loss = losslab.get(name, **options)
    rng = np.random.default_rng(25)
    for _ in range(5):
        inputs = loss.example(rng)
        assert np.all(np.isfinite(loss(*inputs)))
        assert_fd_grad(loss, inputs)


# --- js_div's generalised beta, tvd, z_loss, generalized_kl (issue 14) ------------------------

from family_checks import check_options  # noqa: E402


def test_new_divergences_over_options():
    check_options("js_div", [{"beta": b, "log_target": lt_} for b in (0.0, 0.2, 1.0)
                             for lt_ in (False, True)] + [{"beta": 0.7, "dim": 0}], seeds=1)
    check_options("tvd", [{}, {"dim": 0}])
    check_options("z_loss", [{"scale": 1.0}, {"dim": 0, "scale": 0.3}])
    check_options("generalized_kl", [{"log_input": True}, {"log_input": False}])


def _trl_generalized_jsd(student_logits, teacher_logits, beta):
    """TRL 0.x ``GKDTrainer.generalized_jsd_loss`` (temperature 1), per token, summed over
    the vocabulary (written independently; TRL needs transformers to import)."""
    s = torch.log_softmax(student_logits, -1)
    t = torch.log_softmax(teacher_logits, -1)
    if beta == 0:
        return F.kl_div(s, t, reduction="none", log_target=True).sum(-1)
    if beta == 1:
        return F.kl_div(t, s, reduction="none", log_target=True).sum(-1)
    b = torch.tensor(beta, dtype=s.dtype)
    m = torch.logsumexp(torch.stack([s + torch.log(1 - b), t + torch.log(b)]), dim=0)
    return (b * F.kl_div(m, t, reduction="none", log_target=True).sum(-1)
            + (1 - b) * F.kl_div(m, s, reduction="none", log_target=True).sum(-1))


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_js_div_beta_equals_trl_and_its_endpoints_are_the_kls(beta):
    rng = np.random.default_rng(0)
    z, zt = rng.normal(size=(4, 6)), rng.normal(size=(4, 6)) * 2
    x = torch.tensor(z, requires_grad=True)
    ref = _trl_generalized_jsd(x, torch.tensor(zt), beta).sum()
    ref.backward()
    log_q = torch.log_softmax(torch.tensor(zt), -1).numpy()
    v, g = losslab.get("js_div", beta=beta, log_target=True, reduction="sum").value_and_grad(
        z, log_q)
    np.testing.assert_allclose(v, ref.item(), rtol=1e-10)
    np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-8, atol=1e-12)
    q = np.exp(log_q)
    v2 = losslab.get("js_div", beta=beta, reduction="sum")(z, q)  # probabilities in
    np.testing.assert_allclose(v2, v, rtol=1e-10)
    p = torch.softmax(torch.tensor(z), -1).numpy()
    if beta == 0.0:  # forward KL(target || model)
        np.testing.assert_allclose(v, np.sum(q * (log_q - np.log(p))), rtol=1e-10)
    if beta == 1.0:  # reverse KL(model || target)
        np.testing.assert_allclose(v, np.sum(p * (np.log(p) - log_q)), rtol=1e-10)


def test_js_div_interior_tends_to_zero_at_the_ends_while_the_endpoints_are_the_kls():
    rng = np.random.default_rng(1)
    z, q = rng.normal(size=(1, 5)), rng.dirichlet(np.ones(5), size=1)
    fwd = losslab.get("js_div", beta=0.0)(z, q)
    near = losslab.get("js_div", beta=1e-6)(z, q)
    np.testing.assert_allclose(near / 1e-6, fwd, rtol=1e-4)  # JSD(beta) ~ beta KL(q || p)


def test_tvd_z_loss_generalized_kl_equal_their_definitions():
    rng = np.random.default_rng(2)
    p, q = rng.dirichlet(np.ones(5), size=3), rng.dirichlet(np.ones(5), size=3)
    v, g = losslab.get("tvd", reduction="sum").value_and_grad(p, q)
    np.testing.assert_allclose(v, 0.5 * np.abs(p - q).sum(), rtol=1e-12)
    np.testing.assert_array_equal(g, 0.5 * np.sign(p - q))
    np.testing.assert_array_equal(losslab.get("tvd").grad(q, q), np.zeros_like(q))  # sign(0) = 0
    z = torch.tensor(rng.normal(size=(3, 7)) * 30, requires_grad=True)  # PaLM: 1e-4 log^2 Z
    ref = (1e-4 * torch.logsumexp(z, -1) ** 2).mean()
    ref.backward()
    v, g = losslab.get("z_loss").value_and_grad(z.detach().numpy())
    np.testing.assert_allclose(v, ref.item(), rtol=1e-12)
    np.testing.assert_allclose(g, z.grad.numpy(), rtol=1e-10)
    x, t = rng.normal(size=(3, 4)), rng.exponential(size=(3, 4))
    t[0, 0] = 0.0
    want = np.where(t > 0, t * np.log(np.where(t > 0, t, 1) / np.exp(x)), 0) - t + np.exp(x)
    np.testing.assert_allclose(losslab.get("generalized_kl", reduction="none")(x, t), want,
                               rtol=1e-12)
    np.testing.assert_allclose(
        losslab.get("generalized_kl", log_input=False, reduction="none")(np.exp(x), t), want,
        rtol=1e-10, atol=1e-14)


def test_new_divergences_refuse_bad_input():
    with pytest.raises(ValueError, match="beta"):
        losslab.get("js_div", beta=1.5)
    with pytest.raises(ValueError, match=r"input must lie in \[0, 1\]"):
        losslab.get("tvd")(np.array([[1.5, -0.5]]), np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"input must lie in \[0, inf\]"):
        losslab.get("generalized_kl", log_input=False)(np.array([-1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="scale"):
        losslab.get("z_loss", scale=-1.0)
