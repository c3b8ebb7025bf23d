"""Embedding losses: cosine_embedding and triplet_margin against torch (values and autograd
gradients for every input) over all options, against finite differences, and bad input."""

import array_api_strict
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gradcheck import as_tuple, assert_fd_grad, torch_value_and_grad
from hypothesis import given
from hypothesis import strategies as st

import losslab
from losslab.losses._validation import value_checks
from losslab.losses.embedding import COSINE_EPSILON

REDUCTIONS = ("mean", "sum", "none")
DTYPES = ("float64", "float32")
TOL = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 1e-5, "atol": 1e-6}}


def _torch_reference(torch_fn, inputs, diff, **kwargs):
    """gradcheck.torch_value_and_grad, except that 0-d inputs stay 0-d.

    (``np.ascontiguousarray`` there turns a 0-d array into shape (1,).)
    """
    if all(np.ndim(a) > 0 for a in inputs):
        return torch_value_and_grad(torch_fn, inputs, diff, **kwargs)
    tensors = [torch.tensor(np.asarray(a), requires_grad=i in diff) for i, a in enumerate(inputs)]
    out = torch_fn(*tensors, **kwargs)
    out.backward(torch.ones_like(out))
    return out.detach().numpy(), tuple(tensors[i].grad.numpy() for i in diff)


def _compare(name, inputs, diff, torch_fn, dtype, tol=None, **options):
    value, grads = losslab.get(name, **options).value_and_grad(*inputs)
    t_value, t_grads = _torch_reference(torch_fn, inputs, diff, **options)
    tol = tol or TOL[dtype]
    assert isinstance(value, np.ndarray) and value.dtype == np.dtype(dtype)
    assert value.shape == t_value.shape
    np.testing.assert_allclose(value, t_value, **tol)
    grads = as_tuple(grads)
    assert len(grads) == len(diff)
    for g, tg, i in zip(grads, t_grads, diff):
        assert isinstance(g, np.ndarray)
        assert g.dtype == np.dtype(dtype) and g.shape == inputs[i].shape
        np.testing.assert_allclose(g, tg, **tol, err_msg=f"gradient of input {i}")


def _signs(rng, shape):
    return np.asarray(rng.choice(np.array([-1.0, 1.0]), size=shape))


# ---------------------------------------------------------------- cosine_embedding


@pytest.mark.parametrize("unbatched", [False, True])
@pytest.mark.parametrize("margin", [0.0, 0.5, -0.3, 1.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cosine_embedding_matches_torch(unbatched, margin, reduction, dtype):
    rng = np.random.default_rng(21)
    x1, x2 = (rng.normal(size=(6, 4)).astype(dtype) for _ in range(2))
    x2[0] = x1[0] * 0.7 + 0.1  # some pairs close, so y = -1 hinges are active at large margins
    y = _signs(rng, (6,)).astype(dtype)
    if unbatched:
        x1, x2, y = x1[0], x2[0], y[0]
    _compare("cosine_embedding", (x1, x2, y), [0, 1], F.cosine_embedding_loss, dtype,
             margin=margin, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cosine_embedding_zero_and_tiny_vectors_use_torchs_epsilon(dtype):
    # |x|^2 + 1e-12 in the norms: zero vectors give cos = 0, tiny ones are damped.
    x1 = np.array([[0.0, 0.0, 0.0], [1e-7, 0.0, 2e-7], [1.0, 2.0, 3.0], [3e-7, 1e-7, 0.0]])
    x2 = np.array([[1.0, 2.0, 0.5], [1e-7, 1e-7, 0.0], [0.0, 0.0, 0.0], [0.5, -1.0, 2.0]])
    x1, x2 = x1.astype(dtype), x2.astype(dtype)
    for y in ([1.0, 1.0, 1.0, -1.0], [-1.0, 1.0, -1.0, 1.0]):
        y = np.array(y, dtype=dtype)
        _compare("cosine_embedding", (x1, x2, y), [0, 1], F.cosine_embedding_loss, dtype,
                 tol={"rtol": 1e-4, "atol": 1e-6} if dtype == "float32" else None,
                 margin=-0.5, reduction="none")
    assert np.float32(COSINE_EPSILON) == np.float32(1e-12)


def test_cosine_embedding_kink_subgradient_is_torchs():
    # cos == margin exactly for y = -1: like torch's clamp_min, the hinge branch's gradient is
    # used (torch's own cos may differ by an ulp, so compare with torch just inside the branch).
    x1 = np.array([[1.0, 0.0], [0.3, -2.0]])
    x2 = np.array([[1.0, 1.0], [0.5, 0.7]])
    y = np.array([-1.0, -1.0])
    a = np.sum(x1 * x1, -1) + COSINE_EPSILON
    b = np.sum(x2 * x2, -1) + COSINE_EPSILON
    cos = np.sum(x1 * x2, -1) / (np.sqrt(a) * np.sqrt(b))
    for row in range(2):
        args = (x1[row], x2[row], y[row])
        value, grads = losslab.get("cosine_embedding", margin=float(cos[row])).value_and_grad(
            *args)
        assert value == 0.0
        _, t_grads = _torch_reference(F.cosine_embedding_loss, args, [0, 1],
                                      margin=float(cos[row]) - 1e-9)
        for g, tg in zip(grads, t_grads):
            assert np.any(g != 0)
            np.testing.assert_allclose(g, tg, rtol=1e-10, atol=1e-15)


def test_cosine_embedding_float32_large_norms_stay_finite():
    # torch's sqrt(|x1|^2 |x2|^2) overflows float32 here; sqrt(A) sqrt(B) does not.
    rng = np.random.default_rng(22)
    x1, x2 = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    y = np.array([1.0, -1.0, 1.0])
    loss = losslab.get("cosine_embedding", reduction="none")
    ref_v, ref_g = loss.value_and_grad(x1, x2, y)
    s1, s2 = 3e9, 7e9
    v, (g1, g2) = loss.value_and_grad(
        (x1 * s1).astype(np.float32), (x2 * s2).astype(np.float32), y.astype(np.float32))
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g1)) and np.all(np.isfinite(g2))
    np.testing.assert_allclose(v, ref_v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g1 * s1, ref_g[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(g2 * s2, ref_g[1], rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- triplet_margin

PS = [2.0, 1.0, 1.5, 3.0, 0.5, float("inf")]
MARGIN_EPS = [(1.0, 1e-6), (0.3, 0.0), (2.0, 0.1)]
TRIPLET_SHAPES = [(5, 4), (4,), (2, 3, 4)]


@pytest.mark.parametrize("shape", TRIPLET_SHAPES, ids=str)
@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize(("margin", "eps"), MARGIN_EPS)
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_triplet_margin_matches_torch(shape, p, margin, eps, swap, reduction, dtype):
    rng = np.random.default_rng(23)
    a, pos, neg = (rng.normal(size=shape).astype(dtype) for _ in range(3))
    _compare("triplet_margin", (a, pos, neg), [0, 1, 2], F.triplet_margin_loss, dtype,
             margin=margin, p=p, eps=eps, swap=swap, reduction=reduction)


def test_triplet_margin_swap_is_used_and_matches_torch():
    # Rows where d(p, n) < d(a, n): the swap must change the value, as in torch.
    a = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    pos = np.array([[2.0, 0.0], [0.1, 0.2], [1.0, 1.0]])
    neg = np.array([[2.5, 0.0], [0.5, 0.1], [1.2, 0.9]])
    on = losslab.get("triplet_margin", swap=True, reduction="none")(a, pos, neg)
    off = losslab.get("triplet_margin", swap=False, reduction="none")(a, pos, neg)
    assert on[0] > off[0]
    _compare("triplet_margin", (a, pos, neg), [0, 1, 2], F.triplet_margin_loss, "float64",
             swap=True, reduction="none")


def test_triplet_margin_swap_tie_splits_the_gradient_like_torch():
    # d(a, n) == d(p, n) exactly (eps = 0): torch's min() gives each half.
    a = np.array([[1.0, 0.0]])
    pos = np.array([[0.0, 1.0]])
    neg = np.array([[0.0, 0.0]])
    _compare("triplet_margin", (a, pos, neg), [0, 1, 2], F.triplet_margin_loss, "float64",
             swap=True, eps=0.0, margin=2.0, reduction="sum")


def test_triplet_margin_kink_and_zero_distance_follow_torch():
    # Row 0: margin + d(a,p) - d(a,n) == 0 exactly (p = 1, eps = 0): clamp_min passes the gradient.
    # Row 1: a == p, so d(a, p) == 0 and its gradient is 0 (torch's norm backward).
    a = np.array([[0.0, 0.0], [1.0, 2.0]])
    pos = np.array([[1.0, 0.0], [1.0, 2.0]])
    neg = np.array([[1.0, 1.0], [3.0, 2.0]])
    for p in (1.0, 2.0, 0.5, 3.0, float("inf")):
        _compare("triplet_margin", (a, pos, neg), [0, 1, 2], F.triplet_margin_loss, "float64",
                 p=p, eps=0.0, margin=1.0, reduction="sum")


def test_triplet_margin_inf_norm_ties_split_like_torch():
    a = np.array([[1.0, -1.0, 0.5]])
    pos = np.array([[0.0, 0.0, 0.0]])
    neg = np.array([[3.0, 0.0, 0.0]])
    _compare("triplet_margin", (a, pos, neg), [0, 1, 2], F.triplet_margin_loss, "float64",
             p=float("inf"), eps=0.0, margin=5.0, reduction="sum")


# ---------------------------------------------------------------- finite differences

seeds = st.integers(0, 2**31 - 1)
reductions = st.sampled_from(REDUCTIONS)


def _fd(name, seed, unbatched, **options):
    loss = losslab.get(name, **options)
    inputs = loss.example(np.random.default_rng(seed), "float64")
    if unbatched:
        inputs = tuple(a[0] for a in inputs)
    assert_fd_grad(loss, inputs)


@given(seed=seeds, margin=st.sampled_from([0.0, 0.5, -0.5, 0.9]), reduction=reductions,
       unbatched=st.booleans())
def test_fd_cosine_embedding(seed, margin, reduction, unbatched):
    _fd("cosine_embedding", seed, unbatched, margin=margin, reduction=reduction)


@given(
    seed=seeds,
    p=st.sampled_from(PS),
    margin=st.sampled_from([1.0, 0.2, 3.0]),
    eps=st.sampled_from([1e-6, 0.0, 0.05]),
    swap=st.booleans(),
    reduction=reductions,
    unbatched=st.booleans(),
)
def test_fd_triplet_margin(seed, p, margin, eps, swap, reduction, unbatched):
    _fd("triplet_margin", seed, unbatched, margin=margin, p=p, eps=eps, swap=swap,
        reduction=reduction)


def test_triplet_examples_are_off_the_kinks_and_hit_both_branches():
    zs = []
    for seed in range(40):
        for swap in (False, True):
            loss = losslab.get("triplet_margin", swap=swap, margin=0.5, reduction="none")
            a, pos, neg = loss.example(np.random.default_rng(seed))
            dp = np.linalg.norm(a - pos + 1e-6, axis=-1)
            dn = np.linalg.norm(a - neg + 1e-6, axis=-1)
            if swap:
                dn = np.minimum(dn, np.linalg.norm(pos - neg + 1e-6, axis=-1))
            zs.append(0.5 + dp - dn)
    z = np.concatenate(zs)
    assert np.min(np.abs(z)) >= 1e-3
    assert np.any(z > 0) and np.any(z < 0)


# ---------------------------------------------------------------- other namespaces, options on

NAMESPACE_CASES = [
    ("cosine_embedding", {"margin": 0.2, "reduction": "none"}, False),
    ("cosine_embedding", {"margin": -0.5}, True),
    ("triplet_margin", {"p": 3.0, "swap": True, "reduction": "none"}, False),
    ("triplet_margin", {"p": float("inf"), "eps": 0.0, "reduction": "sum"}, False),
    ("triplet_margin", {"p": 1.0, "margin": 2.0, "swap": True}, True),
    ("triplet_margin", {"p": 0.5, "reduction": "none"}, True),
]


@pytest.mark.parametrize(("name", "options", "unbatched"), NAMESPACE_CASES)
@pytest.mark.parametrize("backend", ["array_api_strict", "torch"])
def test_options_run_the_same_on_other_namespaces(name, options, unbatched, backend):
    loss = losslab.get(name, **options)
    inputs = loss.example(np.random.default_rng(24), "float64")
    if unbatched:
        inputs = tuple(a[0] for a in inputs)
    ref_v, ref_g = loss.value_and_grad(*inputs)
    if backend == "torch":
        conv, back = (lambda a: torch.tensor(np.asarray(a))), (lambda t: t.numpy())
    else:
        conv, back = array_api_strict.asarray, np.asarray
    value, grad = loss.value_and_grad(*[conv(a) for a in inputs])
    np.testing.assert_allclose(back(value), ref_v, rtol=1e-12, atol=1e-14)
    for a, b in zip(as_tuple(grad), as_tuple(ref_g)):
        np.testing.assert_allclose(back(a), b, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- bad input

U = np.array([[0.5, -0.2, 1.0], [0.1, 0.3, -0.7]])
V = np.array([[1.0, 0.4, 0.2], [-0.3, 0.8, 0.6]])
W = np.array([[0.2, 0.1, -1.0], [0.9, -0.4, 0.3]])
Y = np.array([1.0, -1.0])


def test_cosine_embedding_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="input2 must have the same shape as input1"):
        losslab.get("cosine_embedding")(U, V[:, :2], Y)


def test_cosine_embedding_rejects_mismatched_target():
    with pytest.raises(ValueError, match=r"target must have shape \(2,\)"):
        losslab.get("cosine_embedding")(U, V, np.array([1.0, -1.0, 1.0]))


def test_cosine_embedding_rejects_integer_predictions():
    with pytest.raises(TypeError, match="input1 must be a floating-point array"):
        losslab.get("cosine_embedding")(U.astype(np.int64), V, Y)


def test_cosine_embedding_rejects_mixed_dtypes():
    with pytest.raises(TypeError, match="input2 must have the same dtype as input1"):
        losslab.get("cosine_embedding")(U, V.astype(np.float32), Y)


def test_cosine_embedding_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match=r"target must hold labels -1 or \+1.*found 0.0"):
        losslab.get("cosine_embedding")(U, V, np.array([1.0, 0.0]))


def test_cosine_embedding_label_check_can_be_switched_off_and_then_follows_torch():
    y = np.array([1.0, 0.0])  # torch gives label 0 a loss of 0
    with value_checks(False):
        _compare("cosine_embedding", (U, V, y), [0, 1], F.cosine_embedding_loss, "float64",
                 reduction="none")


def test_cosine_embedding_rejects_3d_inputs():
    with pytest.raises(ValueError, match="input1 must have 1 or 2 dimensions"):
        losslab.get("cosine_embedding")(U[None], V[None], Y[None])


def test_cosine_embedding_margin_must_be_a_number():
    with pytest.raises(TypeError, match="margin must be a real number"):
        losslab.get("cosine_embedding", margin=None)(U, V, Y)


@pytest.mark.parametrize("p", [0, -1.0, float("nan")])
def test_triplet_margin_rejects_bad_p(p):
    with pytest.raises(ValueError, match="p must be > 0"):
        losslab.get("triplet_margin", p=p)(U, V, W)


def test_triplet_margin_rejects_non_numeric_p():
    with pytest.raises(TypeError, match="p must be a number"):
        losslab.get("triplet_margin", p="2")(U, V, W)


def test_triplet_margin_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="negative must have the same shape as anchor"):
        losslab.get("triplet_margin")(U, V, W[:1])


def test_triplet_margin_rejects_integer_predictions():
    with pytest.raises(TypeError, match="positive must be a floating-point array"):
        losslab.get("triplet_margin")(U, V.astype(np.int32), W)


def test_triplet_margin_rejects_mixed_dtypes():
    with pytest.raises(TypeError, match="negative must have the same dtype as anchor"):
        losslab.get("triplet_margin")(U, V, W.astype(np.float32))


def test_triplet_margin_rejects_scalars():
    with pytest.raises(ValueError, match="anchor must have at least 1 dimension"):
        losslab.get("triplet_margin")(np.float64(1.0), np.float64(2.0), np.float64(3.0))


def test_triplet_margin_rejects_non_bool_swap():
    with pytest.raises(TypeError, match="swap must be True or False"):
        losslab.get("triplet_margin", swap="yes")(U, V, W)


def test_triplet_margin_rejects_non_finite_margin():
    with pytest.raises(ValueError, match="margin must be finite"):
        losslab.get("triplet_margin", margin=float("nan"))(U, V, W)


def test_option_sets_are_those_the_torch_tests_span():
    assert set(losslab.spec("cosine_embedding").defaults) == {"margin", "reduction"}
    assert set(losslab.spec("triplet_margin").defaults) == {
        "margin", "p", "eps", "swap", "reduction"}
