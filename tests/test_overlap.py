"""dice, jaccard and tversky: against direct torch definitions with autograd, identities between
them, known values, finite differences with hypothesis-drawn inputs, and bad input."""

import itertools

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from gradcheck import assert_fd_grad, torch_value_and_grad
from hypothesis import given
from hypothesis import strategies as st

import losslab

REDUCTIONS = ("mean", "sum", "none")
SHAPES = [(3, 4), (2, 3, 4, 2), (1, 5)]
TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-6)}


def _reduce(per, reduction):
    return per if reduction == "none" else per.sum() if reduction == "sum" else per.mean()


def torch_tversky(p, t, *, alpha, beta, smooth, reduction):
    """smp-style definition: sums over every non-batch dim, smooth in numerator and denominator."""
    dims = tuple(range(1, p.dim()))
    tp = (p * t).sum(dims)
    fp = (p * (1 - t)).sum(dims)
    fn = ((1 - p) * t).sum(dims)
    return _reduce(1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth), reduction)


def torch_dice(p, t, *, smooth, reduction):
    dims = tuple(range(1, p.dim()))
    inter = (p * t).sum(dims)
    card = (p + t).sum(dims)
    return _reduce(1 - (2 * inter + smooth) / (card + smooth), reduction)


def torch_jaccard(p, t, *, smooth, reduction):
    dims = tuple(range(1, p.dim()))
    inter = (p * t).sum(dims)
    union = (p + t).sum(dims) - inter
    return _reduce(1 - (inter + smooth) / (union + smooth), reduction)


def _inputs(rng, shape, dtype, binary):
    p = rng.uniform(0, 1, size=shape).astype(dtype)
    t = (rng.random(shape) < 0.4) if binary else rng.random(shape)
    t = t.astype(dtype)
    # A positive in every sample: with smooth=0 and alpha=0 an empty mask is 0/0 (NaN, as torch).
    t.reshape(shape[0], -1)[:, 0] = 1.0
    return p, t


CASES = list(
    itertools.product(
        ["dice", "jaccard", "tversky-0.5-0.5", "tversky-0.3-0.7", "tversky-1-0", "tversky-0-2"],
        SHAPES, (1.0, 0.25, 0.0), (False, True), REDUCTIONS,
    )
)


@pytest.mark.parametrize(("variant", "shape", "smooth", "binary", "red"), CASES)
def test_matches_torch_definition(variant, shape, smooth, binary, red):
    name, *ab = variant.split("-")
    opts = {} if not ab else {"alpha": float(ab[0]), "beta": float(ab[1])}
    ref_fn = {"dice": torch_dice, "jaccard": torch_jaccard, "tversky": torch_tversky}[name]
    ref_opts = dict(opts, smooth=smooth, reduction=red)
    if name == "tversky" and not opts:
        ref_opts.update(alpha=0.5, beta=0.5)
    for dtype in ("float64", "float32"):
        p, t = _inputs(np.random.default_rng(len(shape)), shape, dtype, binary)
        v, g = losslab.get(name, smooth=smooth, reduction=red, **opts).value_and_grad(p, t)
        rv, (rg,) = torch_value_and_grad(ref_fn, (p, t), (0,), **ref_opts)
        assert v.dtype == np.dtype(dtype) and g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(v, rv, **TOL[dtype])
        np.testing.assert_allclose(g, rg, **TOL[dtype])


def test_tversky_defaults_are_half_half():
    assert losslab.spec("tversky").defaults["alpha"] == 0.5
    assert losslab.spec("tversky").defaults["beta"] == 0.5
    assert losslab.spec("dice").defaults["smooth"] == 1.0


@pytest.mark.parametrize("smooth", [1.0, 0.3])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_identities_between_the_three(smooth, red):
    p, t = _inputs(np.random.default_rng(1), (3, 2, 4), "float64", binary=False)
    j = losslab.get("jaccard", smooth=smooth, reduction=red).value_and_grad(p, t)
    t11 = losslab.get("tversky", alpha=1, beta=1, smooth=smooth, reduction=red).value_and_grad(p, t)
    d = losslab.get("dice", smooth=smooth, reduction=red).value_and_grad(p, t)
    thh = losslab.get("tversky", smooth=smooth / 2, reduction=red).value_and_grad(p, t)
    for a, b in ((j, t11), (d, thh)):
        np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12)


@pytest.mark.parametrize("name", ["dice", "jaccard", "tversky"])
def test_known_values(name):
    mask = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    # Perfect prediction (and an empty prediction on an empty mask) scores 1: loss 0.
    np.testing.assert_allclose(losslab.get(name, reduction="none")(mask, mask), [0.0, 0.0])
    # Disjoint binary masks without smoothing: score 0, loss 1.
    disjoint = np.array([[0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    target = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    np.testing.assert_allclose(losslab.get(name, smooth=0.0)(disjoint, target), 1.0)


def test_smooth_is_added_to_numerator_and_denominator():
    p = np.array([[0.5, 0.5]])
    t = np.array([[1.0, 0.0]])
    # dice: (2 * 0.5 + 1) / (1 + 1 + 1) = 2/3
    np.testing.assert_allclose(losslab.get("dice")(p, t), 1 - 2 / 3)
    # jaccard: (0.5 + 1) / (1 + 1 - 0.5 + 1) = 0.6
    np.testing.assert_allclose(losslab.get("jaccard")(p, t), 1 - 0.6)


# ----------------------------------------------------------------------------------------------
# Finite differences with hypothesis (probabilities kept 1e-3 inside [0, 1])
# ----------------------------------------------------------------------------------------------


@st.composite
def _prob_inputs(draw):
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=3))
    p = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.01, 0.99)))
    if draw(st.booleans()):
        t = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0])))
    else:
        t = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0)))
    return p, t


FD_CASES = [
    ("dice", {"smooth": s}, r) for s in (1.0, 0.1) for r in REDUCTIONS
] + [
    ("jaccard", {"smooth": s}, r) for s in (1.0, 0.1) for r in REDUCTIONS
] + [
    ("tversky", {"alpha": a, "beta": b, "smooth": s}, r)
    for (a, b) in ((0.5, 0.5), (0.3, 0.7), (1.0, 0.0)) for s in (1.0, 0.1) for r in REDUCTIONS
]


@pytest.mark.parametrize(("name", "opts", "red"), FD_CASES)
@given(data=st.data())
def test_gradient_matches_fd(name, opts, red, data):
    assert_fd_grad(losslab.get(name, reduction=red, **opts), data.draw(_prob_inputs()))


@pytest.mark.parametrize("name", ["dice", "jaccard", "tversky"])
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("row_dot", ["blas-dot-per-row", "product-and-sum"])
def test_torch_row_dot_paths_equal_numpy(name, red, row_dot, monkeypatch):
    """On CPU torch, long rows get one torch.dot and one torch.add each, short ones a product, a
    sum and an addcmul; both equal the NumPy (vecdot) result, and the path the threshold picks is
    the one taken."""
    torch = pytest.importorskip("torch")
    from losslab.losses import _primitives

    rng = np.random.default_rng(3)
    p, t = _inputs(rng, (3, 2, 5, 4), "float64", binary=False)
    opts = {"alpha": 0.3, "beta": 0.7} if name == "tversky" else {}
    loss = losslab.get(name, reduction=red, **opts)
    want_v, want_g = loss.value_and_grad(p, t)
    calls = []
    real_dot = torch.dot
    monkeypatch.setattr(torch, "dot", lambda a, b: calls.append(1) or real_dot(a, b))
    monkeypatch.setattr(_primitives, "ROW_LOOP_MIN", 40 if row_dot == "blas-dot-per-row" else 41)
    v, g = loss.value_and_grad(torch.from_numpy(p), torch.from_numpy(t))
    assert len(calls) == (3 if row_dot == "blas-dot-per-row" else 0)
    np.testing.assert_allclose(v.numpy(), want_v, **TOL["float64"])
    np.testing.assert_allclose(g.numpy(), want_g, **TOL["float64"])


# ----------------------------------------------------------------------------------------------
# Bad input: one test per case
# ----------------------------------------------------------------------------------------------

NAMES = ["dice", "jaccard", "tversky"]
P = np.full((2, 3), 0.5)
T = np.zeros((2, 3))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [1.5, -0.1, np.nan])
def test_input_outside_unit_interval_names_input(name, bad):
    p = P.copy()
    p[1, 2] = bad
    with pytest.raises(ValueError, match=r"input must lie in \[0, 1\]"):
        losslab.get(name)(p, T)


@pytest.mark.parametrize("name", NAMES)
def test_target_outside_unit_interval_names_target(name):
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
        losslab.get(name)(P, T + 2.0)


@pytest.mark.parametrize("name", NAMES)
def test_shape_mismatch_names_target(name):
    with pytest.raises(ValueError, match="target must have the same shape"):
        losslab.get(name)(P, np.zeros((2, 4)))


@pytest.mark.parametrize("name", NAMES)
def test_integer_input_is_a_type_error(name):
    with pytest.raises(TypeError, match="input"):
        losslab.get(name)(np.ones((2, 3), dtype=np.int64), T)


@pytest.mark.parametrize("name", NAMES)
def test_one_dimensional_input_names_input(name):
    with pytest.raises(ValueError, match="input must have shape"):
        losslab.get(name)(np.full(3, 0.5), np.zeros(3))


@pytest.mark.parametrize("name", NAMES)
def test_negative_smooth_names_smooth(name):
    with pytest.raises(ValueError, match="smooth"):
        losslab.get(name, smooth=-1.0)(P, T)


@pytest.mark.parametrize("arg", ["alpha", "beta"])
def test_negative_tversky_weight_names_it(arg):
    with pytest.raises(ValueError, match=arg):
        losslab.get("tversky", **{arg: -0.5})(P, T)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_reduction_names_reduction(name):
    with pytest.raises(ValueError, match="reduction"):
        losslab.get(name, reduction="avg")(P, T)
