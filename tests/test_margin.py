"""Margin losses: hinge_embedding, margin_ranking, multi_margin, multilabel_margin, hinge,
squared_hinge. Values and gradients against torch (or a direct torch expression where torch has no
such loss) over all options, against finite differences, and the refusals of bad input."""

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
    kw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    out = torch_fn(*tensors, **kw)
    out.backward(torch.ones_like(out))
    return out.detach().numpy(), tuple(tensors[i].grad.numpy() for i in diff)


def _compare(name, inputs, diff, torch_fn, dtype, torch_kwargs=None, **options):
    """losslab's value and gradients equal torch's value and autograd gradients."""
    value, grads = losslab.get(name, **options).value_and_grad(*inputs)
    t_value, t_grads = _torch_reference(torch_fn, inputs, diff, **(torch_kwargs or options))
    assert isinstance(value, np.ndarray)
    assert value.dtype == np.dtype(dtype)
    assert value.shape == t_value.shape
    np.testing.assert_allclose(value, t_value, **TOL[dtype])
    for g, tg, i in zip(as_tuple(grads), t_grads, diff):
        assert isinstance(g, np.ndarray)
        assert g.dtype == np.dtype(dtype) and g.shape == inputs[i].shape
        np.testing.assert_allclose(g, tg, **TOL[dtype], err_msg=f"gradient of input {i}")


def _signs(rng, shape):
    return np.asarray(rng.choice(np.array([-1.0, 1.0]), size=shape))


def _normal(rng, shape, dtype, scale=1.0):
    return np.asarray(scale * rng.normal(size=shape)).astype(dtype)


# ---------------------------------------------------------------- hinge_embedding

SHAPES = [(), (7,), (3, 4), (2, 3, 2)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("margin", [1.0, 0.5, 2.5, -0.3])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_hinge_embedding_matches_torch(shape, margin, reduction, dtype):
    rng = np.random.default_rng(11)
    x = _normal(rng, shape, dtype, 2.0)
    y = _signs(rng, shape).astype(dtype)
    _compare(
        "hinge_embedding", (x, y), [0], F.hinge_embedding_loss, dtype,
        margin=margin, reduction=reduction,
    )


def test_hinge_embedding_kink_subgradient_is_torchs():
    # x == margin for y = -1: torch's clamp_min passes the gradient (-1) at the kink.
    x = np.array([1.0, 1.0, 0.5, 3.0])
    y = np.array([-1.0, 1.0, -1.0, -1.0])
    _compare("hinge_embedding", (x, y), [0], F.hinge_embedding_loss, "float64", reduction="sum")


def test_hinge_embedding_without_value_checks_follows_torch_for_other_labels():
    # Labels other than +-1 are refused; with value checks off we still compute torch's numbers.
    x = np.array([0.3, -0.2, 2.0])
    y = np.array([0.0, 2.0, 0.0])
    with value_checks(False):
        _compare("hinge_embedding", (x, y), [0], F.hinge_embedding_loss, "float64",
                 reduction="none")


# ---------------------------------------------------------------- margin_ranking


@pytest.mark.parametrize("shape", [(), (6,), (3, 4)], ids=str)
@pytest.mark.parametrize("margin", [0.0, 0.5, -0.2, 1.5])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_margin_ranking_matches_torch(shape, margin, reduction, dtype):
    rng = np.random.default_rng(12)
    x1, x2 = (_normal(rng, shape, dtype) for _ in range(2))
    y = _signs(rng, shape).astype(dtype)
    _compare(
        "margin_ranking", (x1, x2, y), [0, 1], F.margin_ranking_loss, dtype,
        margin=margin, reduction=reduction,
    )


def test_margin_ranking_kink_subgradient_is_torchs():
    x1 = np.array([1.0, 2.0, 0.0])
    x2 = np.array([1.0, 1.0, 1.0])
    y = np.array([1.0, 1.0, -1.0])
    _compare("margin_ranking", (x1, x2, y), [0, 1], F.margin_ranking_loss, "float64",
             reduction="sum")


def test_margin_ranking_accepts_integer_labels():
    x1, x2 = np.array([0.2, -0.4]), np.array([0.1, 0.3])
    y = np.array([1, -1])
    _compare("margin_ranking", (x1, x2, y.astype(np.float64)), [0, 1], F.margin_ranking_loss,
             "float64", reduction="sum")
    a = losslab.get("margin_ranking", reduction="sum").value_and_grad(x1, x2, y)
    b = losslab.get("margin_ranking", reduction="sum").value_and_grad(x1, x2, y.astype(float))
    np.testing.assert_array_equal(a[0], b[0])


# ---------------------------------------------------------------- multi_margin

# (input shape, target shape): batched, unbatched with 0-d target, unbatched with (1,) target.
MM_LAYOUTS = {"batched": ((4, 5), (4,)), "unbatched0d": ((5,), ()), "unbatched1": ((5,), (1,))}


@pytest.mark.parametrize("layout", list(MM_LAYOUTS))
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [1.0, 0.3, 2.0])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_margin_matches_torch(layout, p, margin, weighted, reduction, dtype):
    rng = np.random.default_rng(13)
    xshape, tshape = MM_LAYOUTS[layout]
    x = rng.normal(size=xshape).astype(dtype)
    t = np.asarray(rng.integers(0, xshape[-1], size=tshape))
    weight = rng.uniform(0.1, 2.0, size=xshape[-1]).astype(dtype) if weighted else None
    _compare(
        "multi_margin", (x, t), [0], F.multi_margin_loss, dtype,
        p=p, margin=margin, weight=weight, reduction=reduction,
    )


def test_multi_margin_kink_counts_only_positive_terms_like_torch():
    x = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])  # z = 0 for class 1 of row 0
    t = np.array([0, 1])
    for p in (1, 2):
        _compare("multi_margin", (x, t), [0], F.multi_margin_loss, "float64", p=p,
                 reduction="sum")


def test_multi_margin_weight_as_list_or_other_dtype():
    rng = np.random.default_rng(14)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    t = np.array([0, 3, 1])
    w = [0.5, 1.0, 2.0, 1.5]
    v_list, g_list = losslab.get("multi_margin", weight=w).value_and_grad(x, t)
    v_arr, g_arr = losslab.get("multi_margin", weight=np.array(w)).value_and_grad(x, t)
    assert v_list.dtype == np.float32 and g_list.dtype == np.float32
    np.testing.assert_array_equal(v_list, v_arr)
    np.testing.assert_array_equal(g_list, g_arr)


# ---------------------------------------------------------------- multilabel_margin

MLM_TARGETS = {
    # listed classes, padding, a repeated class, junk after the first -1 (ignored), empty rows
    "mixed": np.array([[3, 0, -1, 1], [0, 1, 2, 3], [-1, 2, 2, 0], [1, 1, -1, -1], [2, -1, 0, 3]]),
    "all_listed": np.array([[0, 1, 2, 3]] * 5),
    "none_listed": np.full((5, 4), -1),
}


@pytest.mark.parametrize("targets", list(MLM_TARGETS))
@pytest.mark.parametrize("unbatched", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_multilabel_margin_matches_torch(targets, unbatched, reduction, dtype):
    rng = np.random.default_rng(15)
    t = MLM_TARGETS[targets]
    x = rng.normal(size=t.shape).astype(dtype)
    if unbatched:
        x, t = x[0], t[0]
    _compare("multilabel_margin", (x, t), [0], F.multilabel_margin_loss, dtype,
             reduction=reduction)


def test_multilabel_margin_unbatched_rows_all_match_torch():
    rng = np.random.default_rng(16)
    t = MLM_TARGETS["mixed"]
    x = rng.normal(size=t.shape)
    for row in range(t.shape[0]):
        _compare("multilabel_margin", (x[row], t[row]), [0], F.multilabel_margin_loss,
                 "float64", reduction="none")


def test_multilabel_margin_kink_counts_only_positive_terms_like_torch():
    x = np.array([[1.0, 0.0, 0.5]])  # 1 - x_0 + x_1 == 0
    t = np.array([[0, -1, -1]])
    _compare("multilabel_margin", (x, t), [0], F.multilabel_margin_loss, "float64",
             reduction="sum")


def test_multilabel_margin_wide_random_against_torch():
    rng = np.random.default_rng(17)
    n, c = 6, 9
    t = np.full((n, c), -1)
    for row in range(n):
        k = int(rng.integers(0, c + 1))
        t[row, :k] = rng.integers(0, c, size=k)  # repeats allowed
    x = rng.normal(size=(n, c))
    _compare("multilabel_margin", (x, t), [0], F.multilabel_margin_loss, "float64")


# ---------------------------------------------------------------- hinge, squared_hinge


def _torch_hinge(x, y, margin=1.0, reduction="mean"):
    h = torch.clamp_min(margin - y * x, 0)
    return {"mean": torch.mean, "sum": torch.sum, "none": lambda v: v}[reduction](h)


def _torch_squared_hinge(x, y, margin=1.0, reduction="mean"):
    h = torch.clamp_min(margin - y * x, 0) ** 2
    return {"mean": torch.mean, "sum": torch.sum, "none": lambda v: v}[reduction](h)


@pytest.mark.parametrize(
    ("name", "reference"), [("hinge", _torch_hinge), ("squared_hinge", _torch_squared_hinge)]
)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("margin", [1.0, 0.0, 0.5, 2.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_hinges_match_direct_torch_autograd(name, reference, shape, margin, reduction,
                                                    dtype):
    rng = np.random.default_rng(18)
    x = _normal(rng, shape, dtype, 1.5)
    y = _signs(rng, shape).astype(dtype)
    _compare(name, (x, y), [0], reference, dtype, margin=margin, reduction=reduction)


@pytest.mark.parametrize(
    ("name", "reference"), [("hinge", _torch_hinge), ("squared_hinge", _torch_squared_hinge)]
)
def test_binary_hinges_at_the_kink_agree_with_torch(name, reference):
    x = np.array([1.0, -1.0, 0.5, -2.0])  # y x == margin for the first two
    y = np.array([1.0, -1.0, 1.0, 1.0])
    _compare(name, (x, y), [0], reference, "float64", reduction="sum")


def test_hinge_of_zero_one_labels_is_not_silently_computed():
    # The classic mistake: 0/1 labels. 2y - 1 converts them, and then the numbers are right.
    x, y01 = np.array([0.3, -1.2, 2.0]), np.array([1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="target"):
        losslab.get("hinge")(x, y01)
    np.testing.assert_allclose(
        losslab.get("hinge", reduction="none")(x, 2 * y01 - 1), [0.7, 0.0, 0.0]
    )


# ---------------------------------------------------------------- finite differences


def _fd(name, seed, unbatched=False, **options):
    loss = losslab.get(name, **options)
    inputs = loss.example(np.random.default_rng(seed), "float64")
    if unbatched:
        inputs = tuple(a[0] for a in inputs)
    assert_fd_grad(loss, inputs)


seeds = st.integers(0, 2**31 - 1)
reductions = st.sampled_from(REDUCTIONS)
margins = st.sampled_from([1.0, 0.0, 0.5, 2.0, -0.5])


@given(seed=seeds, margin=margins, reduction=reductions)
def test_fd_hinge_embedding(seed, margin, reduction):
    _fd("hinge_embedding", seed, margin=margin, reduction=reduction)


@given(seed=seeds, margin=margins, reduction=reductions)
def test_fd_margin_ranking(seed, margin, reduction):
    _fd("margin_ranking", seed, margin=margin, reduction=reduction)


@given(seed=seeds, margin=margins, reduction=reductions,
       name=st.sampled_from(["hinge", "squared_hinge"]))
def test_fd_binary_hinges(seed, margin, reduction, name):
    _fd(name, seed, margin=margin, reduction=reduction)


@given(
    seed=seeds,
    p=st.sampled_from([1, 2]),
    margin=st.sampled_from([1.0, 0.3, 2.0]),
    weight=st.sampled_from([None, (0.5, 2.0, 1.0), (1.0, 0.2, 3.0, 0.7, 1.5)]),
    reduction=reductions,
    unbatched=st.booleans(),
)
def test_fd_multi_margin(seed, p, margin, weight, reduction, unbatched):
    _fd("multi_margin", seed, unbatched, p=p, margin=margin,
        weight=None if weight is None else np.array(weight), reduction=reduction)


@given(seed=seeds, reduction=reductions, unbatched=st.booleans())
def test_fd_multilabel_margin(seed, reduction, unbatched):
    _fd("multilabel_margin", seed, unbatched, reduction=reduction)


def test_examples_stay_off_the_kinks():
    # The fd tests above are only meaningful if examples keep away from kinks (>= 1e-3).
    for seed in range(50):
        rng = np.random.default_rng(seed)
        for margin in (1.0, 0.0, -0.5):
            x, y = losslab.get("hinge", margin=margin).example(rng)
            assert np.min(np.abs(margin - y * x)) >= 1e-3
            x, y = losslab.get("hinge_embedding", margin=margin).example(rng)
            assert np.min(np.abs(margin - x)) >= 1e-3
            x1, x2, y = losslab.get("margin_ranking", margin=margin).example(rng)
            assert np.min(np.abs(margin - y * (x1 - x2))) >= 1e-3


# ---------------------------------------------------------------- other namespaces, options on


NAMESPACE_CASES = [
    ("hinge_embedding", {"margin": 0.5, "reduction": "none"}, False),
    ("margin_ranking", {"margin": 0.3, "reduction": "sum"}, False),
    ("multi_margin", {"p": 2, "weight": np.array([0.5, 2.0, 1.0]), "reduction": "none"}, False),
    ("multi_margin", {"p": 1, "margin": 0.4}, True),
    ("multilabel_margin", {"reduction": "none"}, True),
    ("hinge", {"margin": 2.0, "reduction": "none"}, False),
    ("squared_hinge", {"margin": 0.5}, False),
]


@pytest.mark.parametrize(("name", "options", "unbatched"), NAMESPACE_CASES)
@pytest.mark.parametrize("backend", ["array_api_strict", "torch"])
def test_options_run_the_same_on_other_namespaces(name, options, unbatched, backend):
    loss = losslab.get(name, **options)
    inputs = loss.example(np.random.default_rng(19), "float64")
    if unbatched:
        inputs = tuple(a[0] for a in inputs)
    ref_v, ref_g = loss.value_and_grad(*inputs)
    if backend == "torch":
        conv, back = (lambda a: torch.from_numpy(np.ascontiguousarray(a))), (lambda t: t.numpy())
    else:
        conv, back = array_api_strict.asarray, np.asarray
    value, grad = loss.value_and_grad(*[conv(a) for a in inputs])
    np.testing.assert_allclose(back(value), ref_v, rtol=1e-12, atol=1e-14)
    for a, b in zip(as_tuple(grad), as_tuple(ref_g)):
        np.testing.assert_allclose(back(a), b, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- bad input


X = np.array([[0.5, -0.2, 1.0], [0.1, 0.3, -0.7]])
Y = np.array([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]])


@pytest.mark.parametrize("name", ["hinge", "squared_hinge", "hinge_embedding"])
def test_signed_losses_reject_mismatched_shapes(name):
    with pytest.raises(ValueError, match="target must have the same shape as input"):
        losslab.get(name)(X, Y[:, :2])


@pytest.mark.parametrize("name", ["hinge", "squared_hinge", "hinge_embedding"])
def test_signed_losses_reject_integer_predictions(name):
    with pytest.raises(TypeError, match="input must be a floating-point array"):
        losslab.get(name)(X.astype(np.int64), Y)


@pytest.mark.parametrize("name", ["hinge", "squared_hinge", "hinge_embedding"])
def test_signed_losses_reject_zero_one_labels(name):
    with pytest.raises(ValueError, match=r"target must hold labels -1 or \+1.*found 0.0"):
        losslab.get(name)(X, (Y + 1) / 2)


@pytest.mark.parametrize("name", ["hinge", "squared_hinge", "hinge_embedding"])
def test_signed_losses_reject_soft_targets(name):
    with pytest.raises(ValueError, match=r"target must hold labels -1 or \+1.*found 0.25"):
        losslab.get(name)(X, np.where(Y > 0, 0.25, -1.0))


def test_signed_label_check_can_be_switched_off():
    with value_checks(False):
        losslab.get("hinge")(X, (Y + 1) / 2)  # no error: the caller validated elsewhere


@pytest.mark.parametrize("name", ["hinge", "hinge_embedding", "margin_ranking"])
def test_margin_must_be_a_number(name):
    with pytest.raises(TypeError, match="margin must be a real number"):
        losslab.get(name, margin="1")(*losslab.get(name).example(np.random.default_rng(0)))


def test_margin_must_be_finite():
    with pytest.raises(ValueError, match="margin must be finite"):
        losslab.get("squared_hinge", margin=float("inf"))(X, Y)


def test_margin_ranking_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="input2 must have the same shape as input1"):
        losslab.get("margin_ranking")(X[0], X[1, :2], Y[0])


def test_margin_ranking_rejects_mismatched_target():
    with pytest.raises(ValueError, match="target must have the same shape as input1"):
        losslab.get("margin_ranking")(X[0], X[1], Y)


def test_margin_ranking_rejects_integer_predictions():
    with pytest.raises(TypeError, match="input2 must be a floating-point array"):
        losslab.get("margin_ranking")(X[0], np.array([1, 2, 3]), Y[0])


def test_margin_ranking_rejects_mixed_dtypes():
    with pytest.raises(TypeError, match="input2 must have the same dtype as input1"):
        losslab.get("margin_ranking")(X[0], X[1].astype(np.float32), Y[0])


def test_margin_ranking_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match="target must hold labels -1 or"):
        losslab.get("margin_ranking")(X[0], X[1], np.array([1.0, 0.0, -1.0]))


MX = np.array([[0.2, -0.3, 1.1, 0.0], [1.0, 0.5, -0.5, 0.3]])


@pytest.mark.parametrize("p", [0, 3, 1.5, "1", True])
def test_multi_margin_rejects_bad_p(p):
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        losslab.get("multi_margin", p=p)(MX, np.array([0, 1]))


def test_multi_margin_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match=r"target holds class labels outside \[0, 4\).*4"):
        losslab.get("multi_margin")(MX, np.array([0, 4]))


def test_multi_margin_rejects_negative_labels():
    with pytest.raises(ValueError, match=r"target holds class labels outside \[0, 4\).*-1"):
        losslab.get("multi_margin")(MX, np.array([-1, 2]))


def test_multi_margin_rejects_float_labels():
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        losslab.get("multi_margin")(MX, np.array([0.0, 1.0]))


def test_multi_margin_rejects_integer_predictions():
    with pytest.raises(TypeError, match="input must be a floating-point array"):
        losslab.get("multi_margin")(MX.astype(np.int32), np.array([0, 1]))


def test_multi_margin_rejects_mismatched_target_shape():
    with pytest.raises(ValueError, match=r"target must have shape \(2,\)"):
        losslab.get("multi_margin")(MX, np.array([0, 1, 2]))


def test_multi_margin_rejects_3d_input():
    with pytest.raises(ValueError, match="input must have 1 or 2 dimensions"):
        losslab.get("multi_margin")(MX[None], np.array([[0, 1]]))


def test_multi_margin_rejects_weight_of_wrong_length():
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        losslab.get("multi_margin", weight=np.ones(3))(MX, np.array([0, 1]))


def test_multilabel_margin_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="target must have the same shape as input"):
        losslab.get("multilabel_margin")(MX, np.array([[0, -1, -1], [1, -1, -1]]))


def test_multilabel_margin_rejects_labels_at_or_above_c():
    with pytest.raises(ValueError, match=r"target must hold class indices in \[0, 4\).*found 4"):
        losslab.get("multilabel_margin")(MX, np.array([[0, 4, -1, -1], [1, -1, -1, -1]]))


def test_multilabel_margin_rejects_padding_below_minus_one():
    # torch refuses this too, even after the first -1.
    with pytest.raises(ValueError, match=r"padded with -1; found -2"):
        losslab.get("multilabel_margin")(MX, np.array([[0, -1, -2, -1], [1, -1, -1, -1]]))


def test_multilabel_margin_rejects_a_float_mask():
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        losslab.get("multilabel_margin")(MX, np.array([[1.0, 0, 0, 1], [0, 1, 0, 0]]))


def test_multilabel_margin_rejects_integer_predictions():
    with pytest.raises(TypeError, match="input must be a floating-point array"):
        losslab.get("multilabel_margin")(MX.astype(np.int64), np.full((2, 4), -1))


def test_option_sets_are_those_the_torch_tests_span():
    # The torch tests above parametrize every option; a new option must extend them.
    assert set(losslab.spec("multi_margin").defaults) == {"p", "margin", "weight", "reduction"}
    assert set(losslab.spec("hinge_embedding").defaults) == {"margin", "reduction"}
    assert set(losslab.spec("margin_ranking").defaults) == {"margin", "reduction"}
    assert set(losslab.spec("multilabel_margin").defaults) == {"reduction"}
    assert set(losslab.spec("hinge").defaults) == {"margin", "reduction"}
    assert set(losslab.spec("squared_hinge").defaults) == {"margin", "reduction"}


# --- categorical_hinge (issue 13) ---------------------------------------------------------------


def keras_categorical_hinge(y_true, y_pred):
    """Keras 3.15.1 ``losses.categorical_hinge``: ``pos = sum(y_true * y_pred)``,
    ``neg = max((1 - y_true) * y_pred)``, ``max(neg - pos + 1, 0)`` over the last axis."""
    pos = np.sum(y_true * y_pred, axis=-1)
    neg = np.max((1.0 - y_true) * y_pred, axis=-1)
    return np.maximum(neg - pos + 1.0, 0.0)


def torch_categorical_hinge(x, y, *, margin, reduction):
    """Crammer-Singer with autograd: the best wrong score by masking the target class."""
    xb = x if x.dim() > 1 else x.unsqueeze(0)
    yb = y if x.dim() > 1 else y.unsqueeze(0)
    mask = torch.nn.functional.one_hot(yb, xb.shape[1]).movedim(-1, 1).bool()
    wrong = xb.masked_fill(mask, float("-inf")).amax(1)
    per = (margin + wrong - xb.gather(1, yb.unsqueeze(1)).squeeze(1)).clamp_min(0)
    per = per if x.dim() > 1 else per.squeeze(0)
    return per if reduction == "none" else per.sum() if reduction == "sum" else per.mean()


@pytest.mark.parametrize("margin", [1.0, 0.3, -0.5])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_categorical_hinge_matches_torch_definition(margin, reduction, dtype):
    loss = losslab.get("categorical_hinge", margin=margin, reduction=reduction)
    rng = np.random.default_rng(61)
    for _ in range(4):
        x, y = loss.example(rng, dtype)
        v, g = loss.value_and_grad(x, y)
        rv, (rg,) = _torch_reference(torch_categorical_hinge, [x, y], (0,), margin=margin,
                                     reduction=reduction)
        np.testing.assert_allclose(v, rv, **TOL[dtype])
        np.testing.assert_allclose(g, rg, **TOL[dtype])
        assert_fd_grad(losslab.get("categorical_hinge", margin=margin, reduction=reduction),
                       [a.astype(np.float64) if a.dtype.kind == "f" else a for a in (x, y)])


def test_categorical_hinge_equals_keras_when_a_wrong_score_is_nonnegative():
    rng = np.random.default_rng(62)
    p = rng.dirichlet(np.ones(4), size=6)  # probabilities: every wrong score >= 0
    y = rng.integers(0, 4, size=6)
    got = losslab.get("categorical_hinge", reduction="none")(p, y)
    np.testing.assert_allclose(got, keras_categorical_hinge(np.eye(4)[y], p), rtol=1e-12)
    # all-negative wrong scores: Keras's max counts the true class's 0; a zero column gives it
    x = -rng.uniform(0.5, 2.0, size=(6, 4))
    keras = keras_categorical_hinge(np.eye(4)[y], x)
    assert not np.allclose(losslab.get("categorical_hinge", reduction="none")(x, y), keras)
    padded = np.concatenate([x, np.zeros((6, 1))], axis=1)
    np.testing.assert_allclose(
        losslab.get("categorical_hinge", reduction="none")(padded, y), keras, rtol=1e-12)


def test_categorical_hinge_one_class_and_bad_labels():
    assert losslab.get("categorical_hinge")(np.array([[3.0], [-1.0]]), np.array([0, 0])) == 0.0
    with pytest.raises(ValueError, match=r"target holds class labels outside \[0, 3\)"):
        losslab.get("categorical_hinge")(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="margin"):
        losslab.get("categorical_hinge", margin="1")
