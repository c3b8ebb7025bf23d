"""Binary and multi-label losses: against torch (value and autograd gradient, float64 and float32)
over every option, against finite differences with hypothesis-drawn shapes and values, the
article's cross-entropy, and one test per kind of bad input."""

import itertools

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gradcheck import assert_fd_derivatives, assert_fd_grad, torch_value_and_grad
from hypothesis import given
from hypothesis import strategies as st

import losslab

REDUCTIONS = ("mean", "sum", "none")
DTYPES = ("float64", "float32")
TOL = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 1e-5, "atol": 1e-6}}


def torchvision_sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss, body copied from pytorch/vision
    torchvision/ops/focal_loss.py (BSD-3-Clause; torchvision is not installed here)."""
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)

    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss

    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()

    return loss


# --- data --------------------------------------------------------------------------------------


def _labels(rng, shape, soft=True):
    y = rng.integers(0, 2, size=shape).astype(np.float64)
    if soft:
        y = np.where(rng.random(size=shape) < 0.3, rng.random(size=shape), y)
    return y


def _dims(spec, shape):
    """A weight shape from a spec over the input's dims: 'C' -> (shape[-1],), 'N1' -> (N, 1)..."""
    if spec is None:
        return None
    if spec == "scalar":
        return ()
    return tuple(shape[i] if ch != "1" else 1 for i, ch in zip(range(-len(spec), 0), spec))


def _weights(rng, spec, shape):
    s = _dims(spec, shape)
    return None if s is None else rng.uniform(0.2, 3.0, size=s)


def _compare(name, torch_fn, inputs, dtype, ours_opts, torch_kwargs):
    inputs = [np.asarray(a, dtype=dtype) for a in inputs]
    torch_kwargs = {
        k: (np.asarray(v, dtype=dtype) if isinstance(v, np.ndarray) else v)
        for k, v in torch_kwargs.items()
    }
    value, grad = losslab.get(name, **ours_opts).value_and_grad(*inputs)
    ref_value, (ref_grad,) = torch_value_and_grad(torch_fn, inputs, (0,), **torch_kwargs)
    if inputs[0].ndim == 0:
        # torch_value_and_grad goes through np.ascontiguousarray, which makes 0-d arrays 1-d.
        ref_value, ref_grad = ref_value.reshape(value.shape), ref_grad.reshape(())
    assert value.dtype == np.dtype(dtype) and grad.dtype == np.dtype(dtype)
    assert value.shape == ref_value.shape and grad.shape == inputs[0].shape
    np.testing.assert_allclose(value, ref_value, **TOL[dtype])
    np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])


# --- against torch -----------------------------------------------------------------------------

# (input shape, weight spec): weight broadcast along trailing dims, as torch does.
BCE_WEIGHTS = [
    ((4, 5), None),
    ((4, 5), "scalar"),
    ((4, 5), "C"),
    ((4, 5), "1C"),
    ((4, 5), "N1"),
    ((4, 5), "NC"),
    ((2, 3, 4), "C1"),
    ((2, 3, 4), "C"),
    ((6,), "C"),
    ((), None),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("shape", "wspec"), BCE_WEIGHTS)
def test_bce_matches_torch(shape, wspec, reduction, dtype):
    rng = np.random.default_rng(10)
    p = rng.uniform(0.01, 0.99, size=shape)
    y = _labels(rng, shape)
    w = _weights(rng, wspec, shape)
    _compare(
        "bce",
        F.binary_cross_entropy,
        [p, y],
        dtype,
        {"reduction": reduction, "weight": w},
        {"reduction": reduction, "weight": w},
    )


# (input shape, weight spec, pos_weight spec); pos_weight broadcasts from the last (class) axis,
# so (N, C, H, W) inputs take a (C, 1, 1) pos_weight as torch documents.
LOGIT_OPTIONS = [
    ((4, 5), None, None),
    ((4, 5), None, "C"),
    ((4, 5), None, "1C"),
    ((4, 5), None, "scalar"),
    ((4, 5), None, "NC"),
    ((4, 5), "C", "C"),
    ((4, 5), "N1", "C"),
    ((4, 5), "NC", "1C"),
    ((2, 3, 4, 5), None, "C11"),
    ((2, 3, 4, 5), "C11", "C11"),
    ((2, 3, 4, 5), "HW", "W"),
    ((7,), "C", "C"),
    ((), None, None),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("shape", "wspec", "pwspec"), LOGIT_OPTIONS)
def test_bce_with_logits_matches_torch(shape, wspec, pwspec, reduction, dtype):
    rng = np.random.default_rng(11)
    x = 3.0 * rng.normal(size=shape)
    y = _labels(rng, shape)
    w = _weights(rng, wspec, shape)
    pw = _weights(rng, pwspec, shape)
    opts = {"reduction": reduction, "weight": w, "pos_weight": pw}
    _compare("bce_with_logits", F.binary_cross_entropy_with_logits, [x, y], dtype, opts, opts)


FOCAL_ALPHAS = (0.25, 0.0, 0.7, 1.0, -1.0)
FOCAL_GAMMAS = (0.0, 0.5, 1.0, 2.0, 3.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", FOCAL_GAMMAS)
@pytest.mark.parametrize("alpha", FOCAL_ALPHAS)
def test_focal_matches_torchvision(alpha, gamma, reduction, dtype):
    rng = np.random.default_rng(12)
    shape = (3, 4, 5)
    x = 2.0 * rng.normal(size=shape)
    y = _labels(rng, shape)
    opts = {"alpha": alpha, "gamma": gamma, "reduction": reduction}
    _compare("focal", torchvision_sigmoid_focal_loss, [x, y], dtype, opts, opts)


def test_focal_default_reduction_is_mean_unlike_torchvision():
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(4, 3)), _labels(rng, (4, 3), soft=False)
    assert losslab.spec("focal").defaults["reduction"] == "mean"
    ref = torchvision_sigmoid_focal_loss(torch.from_numpy(x), torch.from_numpy(y))
    np.testing.assert_allclose(losslab.get("focal")(x, y), ref.numpy().mean(), rtol=1e-12)


def test_focal_with_gamma_0_is_alpha_weighted_bce_with_logits():
    rng = np.random.default_rng(14)
    x, y = rng.normal(size=(6, 2)), _labels(rng, (6, 2), soft=False)
    alpha_t = np.where(y == 1, 0.25, 0.75)
    v, g = losslab.get("focal", gamma=0.0, reduction="sum").value_and_grad(x, y)
    bv, bg = losslab.get("bce_with_logits", weight=alpha_t, reduction="sum").value_and_grad(x, y)
    np.testing.assert_allclose(v, bv, rtol=1e-14)
    np.testing.assert_allclose(g, bg, rtol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4), (7,), ()])
def test_soft_margin_matches_torch(shape, reduction, dtype):
    rng = np.random.default_rng(15)
    x = 3.0 * rng.normal(size=shape)
    y = rng.choice([-1.0, 1.0], size=shape)
    opts = {"reduction": reduction}
    _compare("soft_margin", F.soft_margin_loss, [x, y], dtype, opts, opts)


# (input shape, weight spec): the class axis is the last one.
MULTILABEL_OPTIONS = [
    ((4, 5), None),
    ((4, 5), "C"),
    ((4, 5), "1C"),
    ((4, 5), "NC"),
    ((4, 5), "N1"),
    ((2, 3, 4), "C"),
    ((2, 3, 4), None),
    ((6,), "C"),
    ((6,), None),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("shape", "wspec"), MULTILABEL_OPTIONS)
def test_multilabel_soft_margin_matches_torch(shape, wspec, reduction, dtype):
    rng = np.random.default_rng(16)
    x = 3.0 * rng.normal(size=shape)
    y = _labels(rng, shape)
    w = _weights(rng, wspec, shape)
    opts = {"reduction": reduction, "weight": w}
    _compare("multilabel_soft_margin", F.multilabel_soft_margin_loss, [x, y], dtype, opts, opts)


@pytest.mark.parametrize("name", ["bce", "bce_with_logits", "multilabel_soft_margin"])
def test_float64_option_arrays_keep_float32_input_float32(name):
    rng = np.random.default_rng(17)
    x = rng.uniform(0.1, 0.9, size=(3, 4)).astype(np.float32)
    y = _labels(rng, (3, 4)).astype(np.float32)
    value, grad = losslab.get(name, weight=np.linspace(0.5, 2.0, 4)).value_and_grad(x, y)
    assert value.dtype == np.float32 and grad.dtype == np.float32


def test_bce_with_logits_is_accurate_where_torch_cancels():
    # softplus(-40) = 4.25e-18; torch's (1 - y) x - log_sigmoid(x) returns 0 there.
    x, y = np.array([-40.0, -20.0, 40.0]), np.array([0.0, 0.0, 1.0])
    value = losslab.get("bce_with_logits", reduction="none")(x, y)
    np.testing.assert_allclose(value, np.log1p(np.exp(-np.abs(x))), rtol=1e-15)


# --- the article's cross-entropy ---------------------------------------------------------------


def test_article_cross_entropy():
    """CE = -1/n sum_i sum_j [y_ij log p_ij + (1 - y_ij) log(1 - p_ij)] (summed over the C
    classes, averaged over the n samples) is bce(reduction="sum") / n, and the same from logits
    with bce_with_logits; reduction="mean" would divide by n C instead."""
    rng = np.random.default_rng(18)
    n, c = 8, 5
    logits = 2.0 * rng.normal(size=(n, c))
    p = 1.0 / (1.0 + np.exp(-logits))
    y = rng.integers(0, 2, size=(n, c)).astype(np.float64)
    article = -1.0 / n * np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))

    ce_probs = losslab.get("bce", reduction="sum")(p, y) / n
    ce_logits = losslab.get("bce_with_logits", reduction="sum")(logits, y) / n
    np.testing.assert_allclose(ce_probs, article, rtol=1e-13)
    np.testing.assert_allclose(ce_logits, article, rtol=1e-13)
    # "mean" is the per-element mean, C times smaller; multilabel_soft_margin is that too.
    np.testing.assert_allclose(losslab.get("bce")(p, y), article / c, rtol=1e-13)
    np.testing.assert_allclose(
        losslab.get("multilabel_soft_margin")(logits, y), article / c, rtol=1e-13
    )
    # Its gradient w.r.t. the logits is (p - y) / n.
    grad = losslab.get("bce_with_logits", reduction="sum").grad(logits, y) / n
    np.testing.assert_allclose(grad, (p - y) / n, rtol=1e-12, atol=1e-15)


# --- finite differences, hypothesis-drawn shapes and values ------------------------------------


@st.composite
def _problem(draw, kind, wspecs=(), ndim_max=2):
    """(x, y, {option name: array}) with x drawn per ``kind``: 'prob', 'logit' or 'sign'."""
    ndim = draw(st.integers(1, ndim_max))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    if kind == "prob":
        elements = st.floats(0.02, 0.98)
    else:
        elements = st.floats(-6.0, 6.0)
    x = draw(hnp.arrays(np.float64, shape, elements=elements))
    if kind == "sign":
        y = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0])))
    else:
        y = draw(
            hnp.arrays(
                np.float64, shape, elements=st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1))
            )
        )
    options = {}
    for name, spec in wspecs:
        s = _dims(spec, shape) if spec is None or spec == "scalar" or len(spec) <= ndim else None
        if s is not None:
            options[name] = draw(hnp.arrays(np.float64, s, elements=st.floats(0.2, 3.0)))
    return x, y, options


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("wspec", [None, "C", "NC", "N1"])
@given(data=st.data())
def test_bce_gradient_matches_finite_differences(wspec, reduction, data):
    x, y, opts = data.draw(_problem("prob", [("weight", wspec)]))
    assert_fd_grad(losslab.get("bce", reduction=reduction, **opts), [x, y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("wspec", "pwspec"), [(None, None), (None, "C"), ("C", "1C"), ("NC", "C"), ("N1", "NC")]
)
@given(data=st.data())
def test_bce_with_logits_gradient_matches_finite_differences(wspec, pwspec, reduction, data):
    x, y, opts = data.draw(_problem("logit", [("weight", wspec), ("pos_weight", pwspec)]))
    assert_fd_grad(losslab.get("bce_with_logits", reduction=reduction, **opts), [x, y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", FOCAL_GAMMAS)
@pytest.mark.parametrize("alpha", FOCAL_ALPHAS)
@given(data=st.data())
def test_focal_gradient_matches_finite_differences(alpha, gamma, reduction, data):
    x, y, _ = data.draw(_problem("logit", ndim_max=3))
    loss = losslab.get("focal", alpha=alpha, gamma=gamma, reduction=reduction)
    assert_fd_grad(loss, [x, y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(data=st.data())
def test_soft_margin_gradient_matches_finite_differences(reduction, data):
    x, y, _ = data.draw(_problem("sign", ndim_max=3))
    assert_fd_grad(losslab.get("soft_margin", reduction=reduction), [x, y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("wspec", [None, "C", "NC"])
@given(data=st.data())
def test_multilabel_soft_margin_gradient_matches_finite_differences(wspec, reduction, data):
    x, y, opts = data.draw(_problem("logit", [("weight", wspec)], ndim_max=3))
    assert_fd_grad(losslab.get("multilabel_soft_margin", reduction=reduction, **opts), [x, y])


# --- bad input: one test per case --------------------------------------------------------------

P = np.array([[0.2, 0.7], [0.5, 0.9]])
Y = np.array([[0.0, 1.0], [1.0, 0.0]])


def test_bce_rejects_probabilities_above_one():
    with pytest.raises(ValueError, match=r"input must lie in \[0, 1\]"):
        losslab.get("bce")(P + 0.5, Y)


def test_bce_rejects_negative_probabilities():
    with pytest.raises(ValueError, match="input"):
        losslab.get("bce")(P - 0.5, Y)


def test_bce_rejects_nan_probabilities():
    with pytest.raises(ValueError, match="input"):
        losslab.get("bce")(np.where(P > 0.6, np.nan, P), Y)


def test_bce_rejects_target_outside_unit_interval():
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
        losslab.get("bce")(P, Y * 2.0)


def test_value_checks_can_be_switched_off():
    with losslab.value_checks(False):
        losslab.get("bce")(P, Y * 2.0)  # no error: the caller validates elsewhere
        losslab.get("soft_margin")(P, Y)


@pytest.mark.parametrize("name", ["bce", "bce_with_logits", "focal", "multilabel_soft_margin"])
def test_mismatched_shapes_name_target(name):
    with pytest.raises(ValueError, match="target must have the same shape as input"):
        losslab.get(name)(P, Y[:, :1])


@pytest.mark.parametrize("name", ["bce", "bce_with_logits", "focal", "soft_margin"])
def test_integer_predictions_are_a_type_error(name):
    with pytest.raises(TypeError, match="input must be a floating-point array"):
        losslab.get(name)(np.array([[0, 1], [1, 0]]), Y)


@pytest.mark.parametrize("name", ["bce", "bce_with_logits", "multilabel_soft_margin"])
def test_weight_that_does_not_broadcast(name):
    with pytest.raises(ValueError, match=r"weight of shape \(3,\) does not broadcast"):
        losslab.get(name, weight=np.ones(3))(P, Y)


def test_weight_that_would_enlarge_the_output():
    with pytest.raises(ValueError, match="weight"):
        losslab.get("bce_with_logits", weight=np.ones((3, 2, 2)))(P, Y)


def test_pos_weight_that_does_not_broadcast():
    with pytest.raises(ValueError, match=r"pos_weight of shape \(3,\)"):
        losslab.get("bce_with_logits", pos_weight=np.ones(3))(P, Y)


def test_focal_rejects_negative_gamma():
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        losslab.get("focal", gamma=-1.0)(P, Y)


def test_focal_rejects_alpha_above_one():
    with pytest.raises(ValueError, match="alpha must lie in"):
        losslab.get("focal", alpha=1.5)(P, Y)


def test_focal_rejects_non_numeric_alpha():
    with pytest.raises(TypeError, match="alpha must be a number"):
        losslab.get("focal", alpha="balanced")(P, Y)


def test_focal_rejects_target_outside_unit_interval():
    with pytest.raises(ValueError, match="target"):
        losslab.get("focal")(P, Y - 1.0)


def test_soft_margin_rejects_zero_one_labels():
    with pytest.raises(ValueError, match="target must hold labels -1 or"):
        losslab.get("soft_margin")(P, Y)


def test_multilabel_soft_margin_rejects_0d_input():
    with pytest.raises(ValueError, match="input must have at least 1 dimension"):
        losslab.get("multilabel_soft_margin")(np.float64(0.3), np.float64(1.0))


def test_multilabel_soft_margin_rejects_target_outside_unit_interval():
    with pytest.raises(ValueError, match="target"):
        losslab.get("multilabel_soft_margin")(P, Y * 3.0)


@pytest.mark.parametrize("name", ["bce", "bce_with_logits", "focal", "soft_margin"])
def test_unknown_reduction_calling_the_function_directly(name):
    fn = losslab.spec(name).fn
    with pytest.raises(ValueError, match="reduction must be one of"):
        losslab.get(name, reduction="avg")
    with pytest.raises(TypeError, match="reduction"):  # the formula has none: the catalog reduces
        fn(np, P, Y * 2 - 1 if name == "soft_margin" else Y, reduction="avg")


def test_registered_tasks():
    tasks = {n: losslab.spec(n).task for n in ("bce", "bce_with_logits", "focal", "soft_margin")}
    assert set(tasks.values()) == {"binary"}
    assert losslab.spec("multilabel_soft_margin").task == "multilabel"
    assert losslab.get("binary_cross_entropy").name == "bce"


def test_examples_respect_option_shapes():
    rng = np.random.default_rng(19)
    for name, opts in itertools.product(
        ["bce", "bce_with_logits", "multilabel_soft_margin"],
        [{"weight": np.ones(3)}, {"weight": np.ones((2, 3))}],
    ):
        loss = losslab.get(name, **opts)
        loss(*loss.example(rng))
    loss = losslab.get("bce_with_logits", pos_weight=np.ones((3, 1, 1)))
    x, y = loss.example(rng)
    assert x.shape[1:] == (3, 1, 1)
    loss(x, y)


# --- issue 13: focal weight and pos_weight, label smoothing (Keras's convention) ------------------


def torchvision_focal_weighted(inputs, targets, alpha=0.25, gamma=2.0, weight=None,
                               pos_weight=None):
    """torchvision's sigmoid_focal_loss (above) with ``weight`` and ``pos_weight`` passed to its
    binary_cross_entropy_with_logits call; reduction "none"."""
    p = torch.sigmoid(inputs)
    ce = F.binary_cross_entropy_with_logits(
        inputs, targets, weight=weight, pos_weight=pos_weight, reduction="none"
    )
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize(("wspec", "pwspec"), [("NC", None), (None, "C"), ("C", "NC"),
                                               ("N1", "scalar")])
def test_focal_weight_and_pos_weight_match_torchvision_with_bce_weights(wspec, pwspec, gamma,
                                                                      dtype):
    rng = np.random.default_rng(40)
    shape = (4, 5)
    x, y = 2.0 * rng.normal(size=shape), _labels(rng, shape)
    w, pw = _weights(rng, wspec, shape), _weights(rng, pwspec, shape)
    ref_v, (ref_g,) = torch_value_and_grad(
        torchvision_focal_weighted, [x.astype(dtype), y.astype(dtype)], (0,),
        gamma=gamma, weight=None if w is None else w.astype(dtype),
        pos_weight=None if pw is None else pw.astype(dtype),
    )
    v, g = losslab.get("focal", gamma=gamma, weight=w, pos_weight=pw,
                       reduction="none").value_and_grad(x.astype(dtype), y.astype(dtype))
    np.testing.assert_allclose(v, ref_v, **TOL[dtype])
    np.testing.assert_allclose(g, ref_g, **TOL[dtype])


def keras_smooth(y, ls):
    """Keras 3.15.1 ``losses.binary_crossentropy`` / ``binary_focal_crossentropy``:
    ``y_true = y_true * (1 - label_smoothing) + 0.5 * label_smoothing``."""
    return y * (1.0 - ls) + 0.5 * ls


def keras_bce(y, p):
    """Keras's backend binary_crossentropy on probabilities (clipped to [1e-7, 1 - 1e-7])."""
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def keras_binary_focal(y, logits, *, alpha, gamma, ls, balance):
    """Keras 3.15.1 ``losses.binary_focal_crossentropy(from_logits=True)`` before its mean over
    the last axis: smoothed labels, ``p = sigmoid(x)``, ``(1 - p_t)^gamma bce``, and with
    ``apply_class_balancing`` the factor ``alpha y + (1 - alpha)(1 - y)``."""
    y = keras_smooth(y, ls)
    p = 1.0 / (1.0 + np.exp(-logits))
    bce = keras_bce(y, p)
    p_t = y * p + (1 - y) * (1 - p)
    out = (1.0 - p_t) ** gamma * bce
    if balance:
        out = (alpha * y + (1 - alpha) * (1 - y)) * out
    return out


@pytest.mark.parametrize("ls", [0.0, 0.1, 0.4, 1.0])
def test_label_smoothing_follows_keras(ls):
    rng = np.random.default_rng(41)
    shape = (3, 4)
    y = _labels(rng, shape)
    x = np.clip(2.0 * rng.normal(size=shape), -6, 6)  # inside Keras's 1e-7 clip
    p = 1.0 / (1.0 + np.exp(-x))
    want = keras_bce(keras_smooth(y, ls), p)
    np.testing.assert_allclose(
        losslab.get("bce", label_smoothing=ls, reduction="none")(p, y), want, rtol=1e-9)
    np.testing.assert_allclose(
        losslab.get("bce_with_logits", label_smoothing=ls, reduction="none")(x, y), want,
        rtol=1e-9)
    for alpha, balance in ((0.25, True), (0.6, True), (-1.0, False)):
        got = losslab.get("focal", alpha=alpha, gamma=2.0, label_smoothing=ls,
                          reduction="none")(x, y)
        ref = keras_binary_focal(y, x, alpha=alpha, gamma=2.0, ls=ls, balance=balance)
        np.testing.assert_allclose(got, ref, rtol=1e-8)
        # Keras then averages over the last axis
        np.testing.assert_allclose(got.mean(-1), ref.mean(-1), rtol=1e-8)


def test_label_smoothing_is_the_loss_on_smoothed_labels():
    rng = np.random.default_rng(42)
    x, y = rng.normal(size=(4, 3)), _labels(rng, (4, 3), soft=False)
    ys = keras_smooth(y, 0.2)
    for name in ("bce_with_logits", "focal"):
        a = losslab.get(name, label_smoothing=0.2).value_and_grad(x, y)
        b = losslab.get(name).value_and_grad(x, ys)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-14)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-14)


OPTION_DERIV_CASES = [
    ("bce", {"label_smoothing": 0.2, "weight": "C"}),
    ("bce_with_logits", {"label_smoothing": 0.3, "pos_weight": "NC"}),
    ("focal", {"weight": "NC", "pos_weight": "C", "gamma": 2.0}),
    ("focal", {"pos_weight": "NC", "gamma": 0.5, "alpha": 0.7, "label_smoothing": 0.1}),
    ("focal", {"pos_weight": "scalar", "gamma": 1.0, "alpha": -1.0}),
    ("focal", {"label_smoothing": 0.5, "gamma": 3.0}),
]


@pytest.mark.parametrize(("name", "spec"), OPTION_DERIV_CASES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_option_gradients_and_hessians_match_finite_differences(name, spec, reduction):
    rng = np.random.default_rng(43)
    shape = (3, 4)
    opts = {k: (_weights(rng, v, shape) if k in ("weight", "pos_weight") else v)
            for k, v in spec.items()}
    loss = losslab.get(name, reduction=reduction, **opts)
    for _ in range(2):
        x = rng.uniform(0.05, 0.95, size=shape) if name == "bce" else 2.0 * rng.normal(size=shape)
        assert_fd_derivatives(loss, [x, _labels(rng, shape)], rng)


@pytest.mark.parametrize(("dtype", "m"), [("float32", 1e4), ("float64", 1e30)])
def test_focal_options_stay_finite_at_extreme_logits(dtype, m):
    x = (np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0]) * m).astype(dtype)
    y = np.array([1.0, 1.0, 0.0, 0.0, 0.3, 0.3], dtype=dtype)
    pw = np.array([3.0, 3.0, 0.5, 0.5, 2.0, 2.0], dtype=dtype)
    for gamma in (0.5, 2.0):
        loss = losslab.get("focal", gamma=gamma, pos_weight=pw, label_smoothing=0.1,
                           reduction="none")
        v, g = loss.value_and_grad(x, y)
        h = loss.hess(x, y)
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(g)) and np.all(np.isfinite(h))
        assert v.dtype == np.dtype(dtype)
    # without smoothing: confidently right, loss and gradient vanish; confidently wrong with a
    # positive label, the gradient tends to -alpha pw
    v, g = losslab.get("focal", pos_weight=pw[:2], reduction="none").value_and_grad(x[:2], y[:2])
    assert v[0] == 0 and g[0] == 0
    np.testing.assert_allclose(g[1], -0.25 * 3.0, rtol=1e-6)


def test_label_smoothing_outside_unit_interval_is_refused():
    for name in ("bce", "bce_with_logits", "focal"):
        with pytest.raises(ValueError, match="label_smoothing"):
            losslab.get(name, label_smoothing=1.5)
