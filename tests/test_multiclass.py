"""cross_entropy, nll, softmax_focal and poly1: against torch (value and autograd gradient) over
every option combination, against finite differences with hypothesis-drawn inputs, and bad input.
"""

import itertools

import array_api_strict
import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gradcheck import assert_fd_derivatives, assert_fd_grad, torch_value_and_grad
from hypothesis import given
from hypothesis import strategies as st

import losslab

C = 5
SHAPES = [(C,), (4, C), (3, C, 2), (2, C, 3, 2)]
SHAPE_IDS = ["C", "NC", "NCd", "NCdd"]
REDUCTIONS = ("mean", "sum", "none")
TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-6)}
DTYPES = ("float64", "float32")  # looped inside each torch comparison (fewer test items)
WEIGHT = np.array([0.3, 1.7, 1.0, 0.6, 2.2])


def _label_shape(shape):
    return () if len(shape) == 1 else shape[:1] + shape[2:]


def _logits(rng, shape, dtype):
    return (2.0 * rng.normal(size=shape)).astype(dtype)


def _labels(rng, shape, ignore):
    """Labels for ``shape``; ``ignore`` is 'absent', 'default' (-100 present) or 'in_range'
    (ignore_index=1 present). Returns (labels, ignore_index)."""
    y = rng.integers(0, C, size=_label_shape(shape)).astype(np.int64)
    flat = y.reshape(-1)
    if ignore == "absent":
        return y, -100
    ignore_index = -100 if ignore == "default" else 1
    flat[0] = ignore_index  # unbatched: the only label is ignored (NaN mean, as torch)
    if flat.size > 2:
        flat[-1] = ignore_index
    return y, ignore_index


def _probs(rng, shape, dtype):
    t = rng.random(size=shape)
    t /= t.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
    return t.astype(dtype)


def _t(a):
    """Targets go to torch as tensors: gradcheck.torch_value_and_grad's np.ascontiguousarray
    would turn a 0-d label into shape (1,)."""
    return torch.from_numpy(np.array(a))


def _ours(name, inputs, **options):
    return losslab.get(name, **options).value_and_grad(*inputs)


def _assert_close(ours, ref, dtype):
    (v, g), (rv, (rg,)) = ours, ref
    assert v.dtype == np.dtype(dtype) and g.dtype == np.dtype(dtype)
    np.testing.assert_allclose(v, rv, **TOL[dtype])
    np.testing.assert_allclose(g, rg, **TOL[dtype])


# ----------------------------------------------------------------------------------------------
# cross_entropy and nll against torch
# ----------------------------------------------------------------------------------------------

CE_CASES = [
    (shape, kind, ignore, weighted, ls, red)
    for shape, kind, ignore, weighted, ls, red in itertools.product(
        SHAPES, ("index", "probs"), ("absent", "default", "in_range"), (False, True),
        (0.0, 0.1, 0.3), REDUCTIONS,
    )
    if kind == "index" or ignore == "absent"  # ignore_index does not apply to probabilities
]


@pytest.mark.parametrize(("shape", "kind", "ignore", "weighted", "ls", "red"), CE_CASES)
def test_cross_entropy_matches_torch(shape, kind, ignore, weighted, ls, red):
    for dtype in DTYPES:
        rng = np.random.default_rng(len(shape) * 7 + int(10 * ls))
        x = _logits(rng, shape, dtype)
        if kind == "index":
            y, ignore_index = _labels(rng, shape, ignore)
        else:
            y, ignore_index = _probs(rng, shape, dtype), -100
        w = WEIGHT.astype(dtype) if weighted else None
        opts = dict(weight=w, ignore_index=ignore_index, reduction=red, label_smoothing=ls)
        ours = _ours("cross_entropy", (x, y), **opts)
        ref = torch_value_and_grad(F.cross_entropy, (x, _t(y)), (0,), **opts)
        _assert_close(ours, ref, dtype)


NLL_CASES = list(
    itertools.product(
        SHAPES, ("absent", "default", "in_range"), (False, True), REDUCTIONS,
    )
)


@pytest.mark.parametrize(("shape", "ignore", "weighted", "red"), NLL_CASES)
def test_nll_matches_torch(shape, ignore, weighted, red):
    for dtype in DTYPES:
        rng = np.random.default_rng(len(shape))
        logits = torch.from_numpy(_logits(rng, shape, "float64"))
        x = torch.log_softmax(logits, dim=1 if len(shape) > 1 else 0).numpy().astype(dtype)
        y, ignore_index = _labels(rng, shape, ignore)
        w = WEIGHT.astype(dtype) if weighted else None
        opts = dict(weight=w, ignore_index=ignore_index, reduction=red)
        ours = _ours("nll", (x, y), **opts)
        ref = torch_value_and_grad(F.nll_loss, (x, _t(y)), (0,), **opts)
        _assert_close(ours, ref, dtype)


@pytest.mark.parametrize(
    ("name", "opts"),
    [
        ("nll", {}),
        ("nll", {"weight": WEIGHT}),
        ("cross_entropy", {}),
        ("cross_entropy", {"weight": WEIGHT}),
        ("cross_entropy", {"weight": WEIGHT, "label_smoothing": 0.2}),
    ],
)
def test_all_ignored_mean_is_nan_with_zero_gradient_as_torch(name, opts):
    x = np.random.default_rng(0).normal(size=(3, C))
    y = np.full(3, -100)
    v, g = _ours(name, (x, y), **opts)
    tv, (tg,) = torch_value_and_grad(getattr(F, "cross_entropy" if name != "nll" else "nll_loss"),
                                     (x, _t(y)), (0,), **opts)
    assert np.isnan(v) and np.isnan(tv)
    np.testing.assert_array_equal(g, np.zeros_like(x))
    np.testing.assert_array_equal(tg, np.zeros_like(x))


def test_unbatched_none_gives_a_0d_value():
    v, g = _ours("cross_entropy", (np.zeros(C), np.asarray(2)), reduction="none")
    assert v.shape == () and g.shape == (C,)
    np.testing.assert_allclose(v, np.log(C))


@pytest.mark.parametrize("red", ["sum", "none"])
def test_one_hot_probabilities_equal_indices_for_sum_and_none(red):
    # With weights the *mean* differs on purpose (torch: probabilities divide by N, indices by
    # sum of target weights), so compare the un-normalised reductions.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, C, 3))
    y = rng.integers(0, C, size=(4, 3))
    onehot = np.moveaxis(np.eye(C)[y], -1, 1)
    for opts in ({}, {"weight": WEIGHT}):
        a = _ours("cross_entropy", (x, y), reduction=red, **opts)
        b = _ours("cross_entropy", (x, onehot), reduction=red, **opts)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-15)


def test_probability_targets_weighted_mean_divides_by_sample_count():
    rng = np.random.default_rng(6)
    x, t = rng.normal(size=(4, C)), _probs(rng, (4, C), "float64")
    s = _ours("cross_entropy", (x, t), weight=WEIGHT, reduction="sum")[0]
    m = _ours("cross_entropy", (x, t), weight=WEIGHT, reduction="mean")[0]
    np.testing.assert_allclose(m, s / 4, rtol=1e-12)


def test_ignored_targets_do_not_count_in_smoothing_or_mean():
    # The quirk torch fixed in pytorch/pytorch#73205: an ignored sample must change nothing.
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, C))
    y = np.array([2, -100, 4])
    opts = dict(weight=WEIGHT, label_smoothing=0.3)
    full_v, full_g = _ours("cross_entropy", (x, y), **opts)
    kept_v, kept_g = _ours("cross_entropy", (x[[0, 2]], y[[0, 2]]), **opts)
    np.testing.assert_allclose(full_v, kept_v, rtol=1e-12)
    np.testing.assert_allclose(full_g[[0, 2]], kept_g, rtol=1e-12)
    np.testing.assert_array_equal(full_g[1], 0.0)


@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize(
    "to_array",
    [array_api_strict.asarray, lambda a: torch.from_numpy(np.ascontiguousarray(a))],
    ids=["array_api_strict", "torch"],
)
def test_options_run_on_other_namespaces(kind, to_array):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, C, 2))
    y = _probs(rng, x.shape, "float64") if kind == "probs" else _labels(rng, x.shape, "default")[0]
    for red in REDUCTIONS:
        opts = dict(weight=WEIGHT, label_smoothing=0.1, reduction=red)
        v, g = _ours("cross_entropy", (x, y), **opts)
        v2, g2 = _ours("cross_entropy", (to_array(x), to_array(y)), **opts)
        np.testing.assert_allclose(np.asarray(v2), v, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(g2), g, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------------------------
# softmax_focal and poly1: reductions to cross_entropy, and direct torch re-implementations
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("ignore", ["absent", "default", "in_range"])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_focal_with_gamma_0_is_cross_entropy(shape, ignore, red):
    rng = np.random.default_rng(9)
    x = _logits(rng, shape, "float64")
    y, ii = _labels(rng, shape, ignore)
    a = _ours("softmax_focal", (x, y), gamma=0.0, ignore_index=ii, reduction=red)
    b = _ours("cross_entropy", (x, y), ignore_index=ii, reduction=red)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ls", [0.0, 0.3])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_poly1_with_epsilon_0_is_cross_entropy(shape, weighted, ls, red):
    rng = np.random.default_rng(10)
    x = _logits(rng, shape, "float64")
    y, ii = _labels(rng, shape, "default")
    opts = dict(weight=WEIGHT if weighted else None, ignore_index=ii, reduction=red,
                label_smoothing=ls)
    a = _ours("poly1", (x, y), epsilon=0.0, **opts)
    b = _ours("cross_entropy", (x, y), **opts)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-15)


def _class_axis(x):
    return 0 if x.dim() == 1 else 1


def _reduce_torch(per, valid, denom_w, reduction):
    per = torch.where(valid, per, torch.zeros_like(per))
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / torch.where(valid, denom_w, torch.zeros_like(denom_w)).sum()


def torch_softmax_focal(x, y, *, gamma, alpha, ignore_index, reduction):
    """Direct definition with autograd (log_softmax, gather)."""
    axis = _class_axis(x)
    valid = y != ignore_index
    ys = torch.where(valid, y, torch.zeros_like(y))
    logp = torch.log_softmax(x, dim=axis)
    lp = logp.gather(axis, ys.unsqueeze(axis)).squeeze(axis)
    per = -((1 - lp.exp()) ** gamma) * lp
    if alpha is not None:
        per = per * (alpha[ys] if torch.is_tensor(alpha) else alpha)
    return _reduce_torch(per, valid, torch.ones_like(per), reduction)


def torch_poly1(x, y, *, epsilon, weight, ignore_index, reduction, label_smoothing):
    """Leng et al.'s code: CE (torch's, per element) + epsilon * w_y * (1 - sum(q * softmax))."""
    axis = _class_axis(x)
    valid = y != ignore_index
    ys = torch.where(valid, y, torch.zeros_like(y))
    ce = F.cross_entropy(x, y, weight=weight, ignore_index=ignore_index, reduction="none",
                         label_smoothing=label_smoothing)
    n_classes = x.shape[axis]
    q = torch.movedim(F.one_hot(ys, n_classes).to(x.dtype), -1, axis)
    q = q * (1 - label_smoothing) + label_smoothing / n_classes
    pt = (q * torch.softmax(x, dim=axis)).sum(axis)
    w_y = torch.ones_like(pt) if weight is None else weight[ys]
    per = ce + epsilon * w_y * (1 - pt)
    return _reduce_torch(per, valid, w_y, reduction)


FOCAL_CASES = list(
    itertools.product(
        SHAPES, (0.0, 0.5, 2.0, 3.0), ("none", "scalar", "array"), ("absent", "default"),
        REDUCTIONS,
    )
)


@pytest.mark.parametrize(("shape", "gamma", "alpha", "ignore", "red"), FOCAL_CASES)
def test_softmax_focal_matches_torch_definition(shape, gamma, alpha, ignore, red):
    for dtype in DTYPES:
        rng = np.random.default_rng(11)
        x = _logits(rng, shape, dtype)
        y, ii = _labels(rng, shape, ignore)
        a = {"none": None, "scalar": 0.25, "array": WEIGHT.astype(dtype)}[alpha]
        opts = dict(gamma=gamma, alpha=a, ignore_index=ii, reduction=red)
        ours = _ours("softmax_focal", (x, y), **opts)
        ref = torch_value_and_grad(torch_softmax_focal, (x, _t(y)), (0,), **opts)
        _assert_close(ours, ref, dtype)


POLY_CASES = list(
    itertools.product(
        SHAPES, (-1.0, 1.0, 2.5), (False, True), (0.0, 0.1), ("absent", "default"), REDUCTIONS,
    )
)


@pytest.mark.parametrize(("shape", "eps", "weighted", "ls", "ignore", "red"), POLY_CASES)
def test_poly1_matches_torch_definition(shape, eps, weighted, ls, ignore, red):
    for dtype in DTYPES:
        rng = np.random.default_rng(12)
        x = _logits(rng, shape, dtype)
        y, ii = _labels(rng, shape, ignore)
        opts = dict(weight=WEIGHT.astype(dtype) if weighted else None, ignore_index=ii,
                    reduction=red, label_smoothing=ls, epsilon=eps)
        ours = _ours("poly1", (x, y), **opts)
        ref = torch_value_and_grad(torch_poly1, (x, _t(y)), (0,), **opts)
        _assert_close(ours, ref, dtype)


# ----------------------------------------------------------------------------------------------
# Finite differences, hypothesis drawing shapes, logits and labels
# ----------------------------------------------------------------------------------------------


@st.composite
def _index_inputs(draw, probs=False, log_probs=False):
    n_classes = C
    rest = draw(st.sampled_from([None, (), (2,), (1, 2)]))  # None: unbatched (C,)
    n = draw(st.integers(1, 3))
    shape = (n_classes,) if rest is None else (n, n_classes) + rest
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(-4, 4)))
    if log_probs:
        axis = 0 if rest is None else 1
        x = x - np.log(np.sum(np.exp(x), axis=axis, keepdims=True))
    if probs:
        raw = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.01, 1)))
        return x, raw / raw.sum(axis=0 if rest is None else 1, keepdims=True)
    y = draw(hnp.arrays(np.int64, _label_shape(shape), elements=st.integers(-1, n_classes - 1)))
    y = np.where(y < 0, -100, y)
    y.reshape(-1)[0] = draw(st.integers(0, n_classes - 1))  # never all ignored
    return x, y


CE_FD = list(itertools.product((None, WEIGHT), (0.0, 0.1, 0.3), REDUCTIONS, (False, True)))


@pytest.mark.parametrize(("weight", "ls", "red", "probs"), CE_FD)
@given(data=st.data())
def test_cross_entropy_gradient_matches_fd(weight, ls, red, probs, data):
    loss = losslab.get("cross_entropy", weight=weight, label_smoothing=ls, reduction=red)
    assert_fd_grad(loss, data.draw(_index_inputs(probs=probs)))


@pytest.mark.parametrize(("weight", "red"), itertools.product((None, WEIGHT), REDUCTIONS))
@given(data=st.data())
def test_nll_gradient_matches_fd(weight, red, data):
    loss = losslab.get("nll", weight=weight, reduction=red)
    assert_fd_grad(loss, data.draw(_index_inputs(log_probs=True)))


@pytest.mark.parametrize(
    ("gamma", "alpha", "red"),
    itertools.product((0.0, 0.5, 2.0), (None, 0.25, WEIGHT), REDUCTIONS),
)
@given(data=st.data())
def test_softmax_focal_gradient_matches_fd(gamma, alpha, red, data):
    loss = losslab.get("softmax_focal", gamma=gamma, alpha=alpha, reduction=red)
    assert_fd_grad(loss, data.draw(_index_inputs()))


@pytest.mark.parametrize(
    ("eps", "weight", "ls", "red"),
    itertools.product((-1.0, 1.0, 2.5), (None, WEIGHT), (0.0, 0.2), REDUCTIONS),
)
@given(data=st.data())
def test_poly1_gradient_matches_fd(eps, weight, ls, red, data):
    loss = losslab.get("poly1", epsilon=eps, weight=weight, label_smoothing=ls, reduction=red)
    assert_fd_grad(loss, data.draw(_index_inputs()))


# ----------------------------------------------------------------------------------------------
# Bad input: one test per case, each matching the argument's name
# ----------------------------------------------------------------------------------------------

X = np.zeros((3, C))
Y = np.array([0, 1, 2])
ALL = ["cross_entropy", "nll", "softmax_focal", "poly1"]


@pytest.mark.parametrize("name", ALL)
def test_integer_input_is_a_type_error(name):
    with pytest.raises(TypeError, match="input"):
        losslab.get(name)(np.zeros((3, C), dtype=np.int64), Y)


@pytest.mark.parametrize("name", ALL)
def test_label_above_range_names_target(name):
    with pytest.raises(ValueError, match=r"target.*\[0, 5\).*found 5"):
        losslab.get(name)(X, np.array([0, 5, 1]))


@pytest.mark.parametrize("name", ALL)
def test_negative_label_other_than_ignore_index_names_target(name):
    with pytest.raises(ValueError, match="target.*found -1"):
        losslab.get(name)(X, np.array([0, -1, 1]))


@pytest.mark.parametrize("name", ALL)
def test_label_shape_mismatch_names_target(name):
    with pytest.raises(ValueError, match=r"target.*\(3,\)"):
        losslab.get(name)(X, np.array([0, 1]))


def test_probability_target_of_wrong_shape_names_target():
    with pytest.raises(ValueError, match="target.*probabilities"):
        losslab.get("cross_entropy")(X, np.full((3, C + 1), 0.2))


@pytest.mark.parametrize("name", ["nll", "generalized_ce"])
def test_float_target_where_indices_required_is_a_type_error(name):
    with pytest.raises(TypeError, match="target.*integer class indices"):
        losslab.get(name)(X, np.full((3, C), 0.2))


@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal", "poly1"])
def test_float_targets_are_class_probabilities_of_the_input_shape(name):
    # softmax_focal and poly1 took class indices only before issue 13; a float target is now a
    # class-probability target, which must have the input's shape
    assert np.isfinite(losslab.get(name)(X, np.full((3, C), 0.2)))
    with pytest.raises(ValueError, match="target.*probabilities"):
        losslab.get(name)(X, np.full((3, C + 1), 0.2))


def test_boolean_target_is_a_type_error():
    with pytest.raises(TypeError, match="target"):
        losslab.get("cross_entropy")(X, np.array([True, False, True]))


@pytest.mark.parametrize("name", ALL)
def test_0d_input_names_input(name):
    with pytest.raises(ValueError, match="input must have shape"):
        losslab.get(name)(np.float64(1.0), np.asarray(0))


@pytest.mark.parametrize("name", ["cross_entropy", "nll", "poly1"])
def test_weight_of_wrong_length_names_weight(name):
    with pytest.raises(ValueError, match=r"weight must have shape \(5,\)"):
        losslab.get(name, weight=np.ones(4))(X, Y)


def test_alpha_of_wrong_length_names_alpha():
    with pytest.raises(ValueError, match=r"alpha must have shape \(5,\)"):
        losslab.get("softmax_focal", alpha=np.ones(3))(X, Y)


@pytest.mark.parametrize("ls", [-0.1, 1.5])
def test_label_smoothing_outside_unit_interval(ls):
    with pytest.raises(ValueError, match="label_smoothing"):
        losslab.get("cross_entropy", label_smoothing=ls)(X, Y)


@pytest.mark.parametrize("name", ALL)
def test_non_integer_ignore_index_is_a_type_error(name):
    with pytest.raises(TypeError, match="ignore_index"):
        losslab.get(name, ignore_index=0.5)(X, Y)


def test_negative_gamma_names_gamma():
    with pytest.raises(ValueError, match="gamma"):
        losslab.get("softmax_focal", gamma=-1.0)(X, Y)


def test_poly1_epsilon_below_minus_one_names_epsilon():
    with pytest.raises(ValueError, match="epsilon"):
        losslab.get("poly1", epsilon=-1.5)(X, Y)


def test_unknown_reduction_names_reduction():
    with pytest.raises(ValueError, match="reduction"):
        losslab.get("cross_entropy", reduction="avg")(X, Y)


# ----------------------------------------------------------------------------------------------
# Issue 13: softmax_focal weight, label smoothing and class-probability targets; poly1 probability
# targets; cross_entropy at -inf logits; generalized_ce
# ----------------------------------------------------------------------------------------------


def torch_softmax_focal_dense(x, q, *, gamma, alpha=None, weight=None):
    """``-sum_c alpha_c w_c q_c (1 - p_c)^gamma log p_c`` per sample (autograd)."""
    axis = _class_axis(x)
    logp = torch.log_softmax(x, dim=axis)
    b = q
    for f in (alpha, weight):
        if f is not None:
            b = b * (f.view(-1, *([1] * (x.dim() - 2))) if torch.is_tensor(f) else f)
    return -(b * (1 - logp.exp()) ** gamma * logp).sum(axis)


def keras_categorical_focal(y_true, logits, *, alpha, gamma, ls):
    """Keras 3.15.1 ``losses.categorical_focal_crossentropy(from_logits=True)``, classes on the
    last axis: smoothed labels ``y (1 - ls) + ls / C``, ``p = softmax``, renormalised and clipped
    to [1e-7, 1 - 1e-7], ``sum_c alpha (1 - p)^gamma (-y log p)``."""
    n_classes = y_true.shape[-1]
    y_true = y_true * (1 - ls) + ls / n_classes
    e = np.exp(logits - logits.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    p = np.clip(p / p.sum(-1, keepdims=True), 1e-7, 1 - 1e-7)
    return np.sum(alpha * (1 - p) ** gamma * (-y_true * np.log(p)), axis=-1)


@pytest.mark.parametrize("ls", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("gamma", [0.0, 2.0])
@pytest.mark.parametrize("kind", ["index", "probs"])
def test_softmax_focal_matches_keras_categorical_focal(kind, gamma, ls):
    rng = np.random.default_rng(50)
    x = np.clip(_logits(rng, (6, C), "float64"), -6, 6)
    y = rng.integers(0, C, size=6)
    t = np.eye(C)[y] if kind == "index" else _probs(rng, (6, C), "float64")
    want = keras_categorical_focal(t, x, alpha=0.25, gamma=gamma, ls=ls)
    got = losslab.get("softmax_focal", alpha=0.25, gamma=gamma, label_smoothing=ls,
                      reduction="none")(x, y if kind == "index" else t)
    np.testing.assert_allclose(got, want, rtol=1e-9)


@pytest.mark.parametrize("shape", SHAPES[1:], ids=SHAPE_IDS[1:])
@pytest.mark.parametrize("gamma", [0.5, 2.0])
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("ls", [0.0, 0.2])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_softmax_focal_weight_and_smoothing_match_torch_definition(shape, gamma, kind, ls, red):
    rng = np.random.default_rng(51)
    x = _logits(rng, shape, "float64")
    y, ii = _labels(rng, shape, "default")
    axis = _class_axis(torch.from_numpy(x))
    if kind == "index":
        valid = y != ii
        q = np.moveaxis(np.eye(C)[np.where(valid, y, 0)], -1, axis) * np.expand_dims(valid, axis)
        q = q * (1 - ls) + ls / C * np.expand_dims(valid, axis)
        target = y
        denom = (WEIGHT[np.where(valid, y, 0)] * valid).sum()
    else:
        q = _probs(rng, shape, "float64")
        target = q
        q = q * (1 - ls) + ls / C
        denom = np.prod(shape) / C

    def ref(xt):
        per = torch_softmax_focal_dense(xt, torch.from_numpy(q), gamma=gamma, alpha=0.25,
                                        weight=torch.from_numpy(WEIGHT))
        return per if red == "none" else per.sum() if red == "sum" else per.sum() / denom

    rv, (rg,) = torch_value_and_grad(ref, (x,), (0,))
    v, g = losslab.get("softmax_focal", gamma=gamma, alpha=0.25, weight=WEIGHT, ignore_index=ii,
                       label_smoothing=ls, reduction=red).value_and_grad(x, target)
    np.testing.assert_allclose(v, rv, **TOL["float64"])
    np.testing.assert_allclose(g, rg, **TOL["float64"])


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("ls", [0.0, 0.3])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_softmax_focal_gamma_0_with_weight_is_cross_entropy(shape, kind, ls, red):
    rng = np.random.default_rng(52)
    x = _logits(rng, shape, "float64")
    t = _labels(rng, shape, "default")[0] if kind == "index" else _probs(rng, shape, "float64")
    opts = dict(weight=WEIGHT, label_smoothing=ls, reduction=red)
    a = losslab.get("softmax_focal", gamma=0.0, **opts).value_and_grad(x, t)
    b = losslab.get("cross_entropy", **opts).value_and_grad(x, t)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-14)


def test_softmax_focal_one_hot_probabilities_equal_indices_for_sum_and_none():
    rng = np.random.default_rng(53)
    x = _logits(rng, (4, C, 2), "float64")
    y = rng.integers(0, C, size=(4, 2))
    onehot = np.moveaxis(np.eye(C)[y], -1, 1)
    for red in ("sum", "none"):
        loss = losslab.get("softmax_focal", alpha=WEIGHT, reduction=red)
        a, b = loss.value_and_grad(x, y), loss.value_and_grad(x, onehot)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-15)


def leng_poly1_probs(x, q, *, epsilon, label_smoothing):
    """Leng et al.'s reference (TF) for soft labels: labels smoothed, then
    ``softmax_cross_entropy(labels, logits) + epsilon * (1 - sum(labels * softmax(logits)))``."""
    axis = _class_axis(x)
    n_classes = x.shape[axis]
    q = q * (1 - label_smoothing) + label_smoothing / n_classes
    logp = torch.log_softmax(x, dim=axis)
    ce = -(q * logp).sum(axis)
    return ce + epsilon * (1 - (q * logp.exp()).sum(axis))


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("eps", [-1.0, 1.0, 2.5])
@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_poly1_probability_targets_match_leng(shape, eps, ls, red):
    rng = np.random.default_rng(54)
    x, q = _logits(rng, shape, "float64"), _probs(rng, shape, "float64")

    def ref(xt):
        per = leng_poly1_probs(xt, torch.from_numpy(q), epsilon=eps, label_smoothing=ls)
        return per if red == "none" else per.sum() if red == "sum" else per.mean()

    rv, (rg,) = torch_value_and_grad(ref, (x,), (0,))
    v, g = losslab.get("poly1", epsilon=eps, label_smoothing=ls,
                       reduction=red).value_and_grad(x, q)
    np.testing.assert_allclose(v, rv, **TOL["float64"])
    np.testing.assert_allclose(g, rg, **TOL["float64"])


@pytest.mark.parametrize("weighted", [False, True])
def test_poly1_one_hot_probabilities_equal_indices_for_sum_and_none(weighted):
    rng = np.random.default_rng(55)
    x = _logits(rng, (4, C), "float64")
    y = rng.integers(0, C, size=4)
    for red in ("sum", "none"):
        loss = losslab.get("poly1", weight=WEIGHT if weighted else None, reduction=red)
        a, b = loss.value_and_grad(x, y), loss.value_and_grad(x, np.eye(C)[y])
        np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-15)


def optax_safe_softmax_cross_entropy(logits, labels):
    """optax 0.2.8 ``safe_softmax_cross_entropy``: ``-sum(weighted_logsoftmax(logits, labels))``
    where ``weighted_logsoftmax`` is ``labels * log_softmax`` with 0 where labels are 0."""
    m = np.max(logits, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        logp = logits - m - np.log(np.sum(np.exp(logits - m), axis=-1, keepdims=True))
    return -np.sum(np.where(labels != 0, labels * np.where(labels != 0, logp, 0.0), 0.0), -1)


MASKED_X = np.array([[1.0, -np.inf, 0.5, -np.inf, 2.0], [-np.inf, 3.0, -1.0, 0.0, -np.inf]])
MASKED_T = np.array([[0.2, 0.0, 0.5, 0.0, 0.3], [0.0, 1.0, 0.0, 0.0, 0.0]])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_cross_entropy_masked_logits_follow_optax_safe_softmax_cross_entropy(weighted, red):
    import warnings

    w = WEIGHT if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning
        loss = losslab.get("cross_entropy", weight=w, reduction=red)
        v, g = loss.value_and_grad(MASKED_X, MASKED_T)
        h = loss.hess(MASKED_X, MASKED_T)
    per = optax_safe_softmax_cross_entropy(MASKED_X, MASKED_T * (1 if w is None else w))
    want = per if red == "none" else per.sum() if red == "sum" else per.mean()
    np.testing.assert_allclose(v, want, rtol=1e-12)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(h))
    assert np.all(g[np.isinf(MASKED_X)] == 0)
    # the same as the loss on the unmasked classes alone
    keep = ~np.isinf(MASKED_X[0])
    v0 = losslab.get("cross_entropy", weight=None if w is None else w[keep],
                     reduction="sum")(MASKED_X[:1, keep], MASKED_T[:1, keep])
    np.testing.assert_allclose(per[0], v0, rtol=1e-12)


@pytest.mark.parametrize("to_array", ["torch", "array_api_strict", "jax-jit"])
def test_cross_entropy_masked_logits_on_other_namespaces(to_array):
    want_v, want_g = losslab.get("cross_entropy").value_and_grad(MASKED_X, MASKED_T)
    if to_array == "jax-jit":
        jax = pytest.importorskip("jax")
        import losslab.jax as lj

        jax.config.update("jax_enable_x64", True)
        f = jax.jit(jax.value_and_grad(lambda z: lj.cross_entropy(z, MASKED_T)))
        v, g = f(jax.numpy.asarray(MASKED_X))
    else:
        conv = torch.from_numpy if to_array == "torch" else array_api_strict.asarray
        v, g = losslab.get("cross_entropy").value_and_grad(conv(MASKED_X), conv(MASKED_T))
    np.testing.assert_allclose(np.asarray(v), want_v, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(g), want_g, rtol=1e-12, atol=1e-300)


def test_cross_entropy_positive_target_at_a_masked_logit_is_infinite():
    t = MASKED_T.copy()
    t[0, 1], t[0, 0] = 0.2, 0.0
    assert np.isinf(losslab.get("cross_entropy", reduction="none")(MASKED_X, t)[0])


def keras_generalized_ce(y_true, y_pred, q):
    """Keras 3.15.1 ``losses.categorical_generalized_cross_entropy``: one-hot of the integer
    labels, ``p = sum(y_pred * onehot)``, ``(1 - p^q) / q``."""
    onehot = np.eye(y_pred.shape[-1])[y_true]
    return (1 - np.sum(y_pred * onehot, -1) ** q) / q


@pytest.mark.parametrize("q", [0.1, 0.5, 0.7, 1.0])
def test_generalized_ce_matches_keras_on_softmax(q):
    rng = np.random.default_rng(56)
    x, y = _logits(rng, (6, C), "float64"), rng.integers(0, C, size=6)
    p = np.exp(x - x.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    got = losslab.get("generalized_ce", q=q, reduction="none")(x, y)
    np.testing.assert_allclose(got, keras_generalized_ce(y, p, q), rtol=1e-12)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("ignore", ["absent", "default", "in_range"])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_generalized_ce_matches_torch_definition(shape, ignore, red):
    rng = np.random.default_rng(57)
    x = _logits(rng, shape, "float64")
    y, ii = _labels(rng, shape, ignore)

    def ref(xt, yt):
        axis = _class_axis(xt)
        valid = yt != ii
        ys = torch.where(valid, yt, torch.zeros_like(yt))
        p_y = torch.softmax(xt, dim=axis).gather(axis, ys.unsqueeze(axis)).squeeze(axis)
        return _reduce_torch((1 - p_y**0.7) / 0.7, valid, torch.ones_like(p_y), red)

    ours = _ours("generalized_ce", (x, y), q=0.7, ignore_index=ii, reduction=red)
    _assert_close(ours, torch_value_and_grad(ref, (x, _t(y)), (0,)), "float64")


def test_generalized_ce_limits():
    rng = np.random.default_rng(58)
    x, y = _logits(rng, (4, C), "float64"), rng.integers(0, C, size=4)
    ce = losslab.get("cross_entropy", reduction="none")(x, y)
    np.testing.assert_allclose(losslab.get("generalized_ce", q=1e-9, reduction="none")(x, y), ce,
                               rtol=1e-7)
    p_y = np.exp(-ce)
    np.testing.assert_allclose(losslab.get("generalized_ce", q=1.0, reduction="none")(x, y),
                               1 - p_y, rtol=1e-12)


@pytest.mark.parametrize(("dtype", "m"), [("float32", 1e4), ("float64", 1e30)])
def test_new_options_stay_finite_at_extreme_logits(dtype, m):
    rng = np.random.default_rng(59)
    x = (np.sign(rng.normal(size=(4, C))) * m).astype(dtype)
    x[:, 0] = -m
    y = np.array([0, 1, 2, 3])
    probs = _probs(rng, (4, C), dtype)
    for name, opts, t in [
        ("softmax_focal", {"weight": WEIGHT, "label_smoothing": 0.1}, y),
        ("softmax_focal", {"gamma": 0.5}, probs),
        ("poly1", {"epsilon": 2.0}, probs),
        ("generalized_ce", {"q": 0.3}, y),
    ]:
        loss = losslab.get(name, **opts)
        v, g = loss.value_and_grad(x, t)
        h = loss.hess(x, t)
        assert v.dtype == np.dtype(dtype), name
        assert np.isfinite(v) and np.all(np.isfinite(g)) and np.all(np.isfinite(h)), name


OPTION_DERIV_CASES = [
    ("softmax_focal", {"weight": WEIGHT, "gamma": 2.0}, "index"),
    ("softmax_focal", {"weight": WEIGHT, "alpha": 0.25, "label_smoothing": 0.2}, "index"),
    ("softmax_focal", {"gamma": 0.5, "alpha": WEIGHT}, "probs"),
    ("softmax_focal", {"gamma": 3.0, "label_smoothing": 0.1, "weight": WEIGHT}, "probs"),
    ("poly1", {"epsilon": 2.0}, "probs"),
    ("poly1", {"epsilon": -1.0, "weight": WEIGHT, "label_smoothing": 0.2}, "probs"),
    ("generalized_ce", {"q": 0.3}, "index"),
    ("generalized_ce", {"q": 1.0, "ignore_index": 1}, "index"),
]


@pytest.mark.parametrize(("name", "opts", "kind"), OPTION_DERIV_CASES)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("red", REDUCTIONS)
def test_option_gradients_and_hessians_match_finite_differences(name, opts, kind, shape, red):
    rng = np.random.default_rng(60)
    loss = losslab.get(name, reduction=red, **opts)
    x = _logits(rng, shape, "float64")
    ignore = "in_range" if "ignore_index" in opts else "default"
    t = _labels(rng, shape, ignore)[0] if kind == "index" else _probs(rng, shape, "float64")
    if kind == "index":
        t = np.array(t, copy=True)
        t.reshape(-1)[-1] = 0  # keep one label, so the mean is defined
    assert_fd_derivatives(loss, [x, t], rng)


def test_q_outside_zero_one_is_refused():
    for q in (0.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="q"):
            losslab.get("generalized_ce", q=q)
