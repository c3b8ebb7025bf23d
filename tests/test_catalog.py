"""Properties every catalog loss must have, checked over the whole catalog.

Family files (test_regression.py, test_multiclass.py, ...) check each loss against torch and over
all of its options; this file checks the contract itself: gradients equal finite differences,
dtype in = dtype out (float16 computed in float32), one pass equals two, empty batches, and the
same numbers on every array namespace.
"""

import warnings

import array_api_strict
import numpy as np
import pytest
import torch
from gradcheck import as_tuple, assert_fd_grad, catalog_cases, runs_on

import losslab
from losslab.losses._layout import batch_axis

NAMES = losslab.available()


CASES, IDS = catalog_cases()  # every reduction each loss accepts (kl_div: also batchmean)


def test_catalog_has_the_promised_losses():
    promised = {
        "mse", "l1", "huber", "smooth_l1", "bce", "bce_with_logits", "cross_entropy", "nll",
        "kl_div", "poisson_nll", "gaussian_nll", "hinge_embedding", "margin_ranking",
        "soft_margin", "multilabel_soft_margin", "multilabel_margin", "multi_margin",
        "cosine_embedding", "triplet_margin", "log_cosh", "quantile", "focal", "softmax_focal",
        "hinge", "squared_hinge", "dice", "jaccard", "tversky", "tweedie", "poly1", "js_div",
    }
    assert promised <= set(NAMES), sorted(promised - set(NAMES))


@pytest.mark.parametrize("name", NAMES)
def test_docstring_gives_formula_gradient_and_reference(name):
    doc = losslab.spec(name).doc.lower()
    assert "gradient" in doc, name
    assert "reference" in doc or "same as" in doc, name


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_gradient_matches_finite_differences(name, options):
    loss = losslab.get(name, **options)
    rng = np.random.default_rng(0)
    for _ in range(3):
        assert_fd_grad(loss, loss.example(rng, "float64"))


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_in_equals_dtype_out(name, options, dtype):
    loss = losslab.get(name, **options)
    inputs = loss.example(np.random.default_rng(1), dtype)
    value, grad = loss.value_and_grad(*inputs)
    assert value.dtype == np.dtype(dtype)
    if options.get("reduction", "mean") != "none":
        assert value.shape == ()
    for gname, g in zip(loss.differentiable, as_tuple(grad)):
        x = inputs[loss.spec.inputs.index(gname)]
        assert g.dtype == x.dtype and g.shape == x.shape, gname


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_float16_is_computed_in_float32_and_rounded_once(name, options):
    loss = losslab.get(name, **options)
    inputs = loss.example(np.random.default_rng(4), "float16")
    value, grad = loss.value_and_grad(*inputs)
    wide = [a.astype(np.float32) if a.dtype == np.float16 else a for a in inputs]
    want_value, want_grad = loss.value_and_grad(*wide)
    assert value.dtype == np.float16
    np.testing.assert_array_equal(value, want_value.astype(np.float16))
    for gname, g, w in zip(loss.differentiable, as_tuple(grad), as_tuple(want_grad)):
        assert g.dtype == np.float16, gname
        np.testing.assert_array_equal(g, w.astype(np.float16))


def test_float16_log_cosh_stays_finite_far_out():
    # In float16 itself, exp(2|d|) overflows beyond |d| ~ 5.5 and its square beyond ~2.8.
    d = np.array([15.0, 0.5, -3.0, 30.0, -1000.0], dtype=np.float16)
    value, grad = losslab.get("log_cosh", reduction="none").value_and_grad(d, np.zeros_like(d))
    want = np.abs(d.astype(np.float64))
    want = want + np.log1p(np.exp(-2 * want)) - np.log(2.0)
    np.testing.assert_allclose(value, want, rtol=1e-3)
    np.testing.assert_allclose(grad, np.tanh(d.astype(np.float64)), rtol=1e-3)


def _batched_example(loss, rng):
    """An example whose first input has a batch axis beside its other axes (ndim >= 2), or,
    for losses whose inputs are 1-D, one of those."""
    draws = [loss.example(rng, "float64") for _ in range(40)]
    for inputs in draws:
        if np.ndim(inputs[0]) >= 2:
            return inputs
    return draws[0]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_empty_batch_gives_torchs_answer(name, options, backend):
    # An empty batch: mean -> NaN, sum -> 0, none -> empty; gradients empty, of the input's shape.
    loss = losslab.get(name, **options)
    inputs = [
        a if not np.ndim(a) or batch_axis(loss.spec, arg) is None
        else np.take(a, np.arange(0), axis=batch_axis(loss.spec, arg))
        for arg, a in zip(loss.spec.inputs, _batched_example(loss, np.random.default_rng(5)))
    ]
    if backend == "torch":
        inputs = [torch.from_numpy(np.asarray(a)) if np.ndim(a) else a for a in inputs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's "mean of empty slice"
        value, grad = loss.value_and_grad(*inputs)
    value = np.asarray(value)
    reduction = options.get("reduction", "mean")
    if reduction == "none":
        assert value.size == 0
    elif reduction == "sum":
        assert value == 0
    else:
        assert np.isnan(value)
    for gname, g in zip(loss.differentiable, as_tuple(grad)):
        assert tuple(g.shape) == tuple(inputs[loss.spec.inputs.index(gname)].shape), gname


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_one_pass_equals_separate_calls(name, options):
    loss = losslab.get(name, **options)
    inputs = loss.example(np.random.default_rng(2), "float64")
    value, grad = loss.value_and_grad(*inputs)
    np.testing.assert_array_equal(value, loss(*inputs))
    for a, b in zip(as_tuple(grad), as_tuple(loss.grad(*inputs))):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", [n for n in NAMES if "reduction" in losslab.spec(n).defaults])
def test_reductions_agree(name):
    inputs = losslab.get(name).example(np.random.default_rng(3), "float64")
    none_v, none_g = losslab.get(name, reduction="none").value_and_grad(*inputs)
    sum_v, sum_g = losslab.get(name, reduction="sum").value_and_grad(*inputs)
    np.testing.assert_allclose(np.sum(none_v), sum_v, rtol=1e-12, atol=1e-12)
    for a, b in zip(as_tuple(none_g), as_tuple(sum_g)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def _same_on(namespace_of, to_numpy, name, options):
    loss = losslab.get(name, **options)
    inputs = loss.example(np.random.default_rng(4), "float64")
    ref_v, ref_g = loss.value_and_grad(*inputs)
    value, grad = loss.value_and_grad(*[namespace_of(a) for a in inputs])
    np.testing.assert_allclose(to_numpy(value), ref_v, rtol=1e-10, atol=1e-12)
    for a, b in zip(as_tuple(grad), as_tuple(ref_g)):
        np.testing.assert_allclose(to_numpy(a), b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_runs_on_array_api_strict(name, options):
    if not runs_on(name, "array_api_strict"):
        with pytest.raises(TypeError, match=f"{name} runs on"):
            _same_on(array_api_strict.asarray, lambda a: np.asarray(a), name, options)
        return
    _same_on(array_api_strict.asarray, lambda a: np.asarray(a), name, options)


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_runs_on_torch_tensors_as_plain_arrays(name, options):
    _same_on(
        lambda a: torch.tensor(np.array(a, copy=True)),
        lambda t: t.detach().cpu().numpy(),
        name,
        options,
    )


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match="cross_entropy"):
        losslab.get("crossentropy")


def test_unknown_option_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="delt"):
        losslab.get("mse", delt=1.0)


def test_unknown_reduction_names_the_argument():
    with pytest.raises(ValueError, match="reduction"):
        losslab.get("mse", reduction="avg")
