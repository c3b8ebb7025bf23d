"""Properties every catalog loss must have, checked over the whole catalog.

Family files (test_regression.py, test_multiclass.py, ...) check each loss against torch and over
all of its options; this file checks the contract itself: gradients equal finite differences,
dtype in = dtype out, one pass equals two, and the same numbers on every array namespace.
"""

import array_api_strict
import numpy as np
import pytest
import torch
from gradcheck import as_tuple, assert_fd_grad, catalog_cases

import losslab

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
