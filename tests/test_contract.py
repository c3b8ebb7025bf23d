"""The declarative contract, over the whole catalog: option constraints checked at get(), declared
kinds enforced, sample weights, second derivatives, and the facts other layers read from specs.
"""

import ast
import pathlib

import array_api_strict
import numpy as np
import pytest
import torch
from gradcheck import as_tuple, catalog_cases, runs_on

import losslab
from losslab.losses._registry import INPUT_KINDS, LAYOUTS, TARGET_KINDS

NAMES = losslab.available()
CASES, IDS = catalog_cases()
SRC = pathlib.Path(losslab.__file__).parent


# --- option constraints ---------------------------------------------------------------------


def _bad_option_values():
    for name in NAMES:
        spec = losslab.spec(name)
        for option, constraint in spec.constraints.items():
            for value, exc in constraint.invalid_examples():
                yield pytest.param(name, option, value, exc, id=f"{name}-{option}-{value!r}")


@pytest.mark.parametrize(("name", "option", "value", "exc"), list(_bad_option_values()))
def test_get_refuses_each_bad_option_value_naming_the_option(name, option, value, exc):
    with pytest.raises(exc, match=rf"\b{option}\b"):
        losslab.get(name, **{option: value})


def test_every_option_of_every_loss_has_bad_values_to_try():
    for name in NAMES:
        spec = losslab.spec(name)
        assert set(spec.constraints) == set(spec.defaults), name
        for option, constraint in spec.constraints.items():
            assert constraint.invalid_examples(), (name, option)


@pytest.mark.parametrize("name", NAMES)
def test_defaults_satisfy_their_own_constraints(name):
    spec = losslab.spec(name)
    for option, default in spec.defaults.items():
        spec.constraints[option].check(default)


def test_strings_are_never_booleans():
    # kl_div(log_target="no") used to be treated as True.
    for name in NAMES:
        spec = losslab.spec(name)
        for option, default in spec.defaults.items():
            if isinstance(default, bool):
                with pytest.raises(TypeError, match=option):
                    losslab.get(name, **{option: "no"})


def test_constraint_errors_say_what_is_allowed():
    with pytest.raises(ValueError, match=r"huber: delta must be > 0; got -1\.0"):
        losslab.get("huber", delta=-1.0)
    with pytest.raises(TypeError, match=r"huber: delta must be a number > 0; got 'abc'"):
        losslab.get("huber", delta="abc")
    with pytest.raises(ValueError, match=r"tweedie: power must lie in \(1, 2\); got 5"):
        losslab.get("tweedie", power=5)
    with pytest.raises(ValueError, match="focal: gamma must be >= 0"):
        losslab.get("focal", gamma=-1)


def test_option_values_are_canonical():
    loss = losslab.get("huber", delta=np.float32(2))
    assert loss.options == {"delta": np.float32(2)}  # what the user gave, for repr
    assert type(loss._resolved["delta"]) is float


# --- declared kinds -------------------------------------------------------------------------


def test_every_spec_declares_known_kinds():
    for name in NAMES:
        spec = losslab.spec(name)
        assert spec.input_kind in INPUT_KINDS, name
        assert spec.target_kind in TARGET_KINDS, name
        assert spec.layout in LAYOUTS, name
        assert spec.module.endswith("Loss") and spec.module.isidentifier(), name


def _valid_inputs(name, seed=0):
    loss = losslab.get(name)
    return loss, [np.array(a, copy=True) for a in loss.example(np.random.default_rng(seed))]


@pytest.mark.parametrize(
    "name", [n for n in NAMES if losslab.spec(n).input_kind == "probabilities"]
)
@pytest.mark.parametrize("bad", [-0.25, 1.25, np.nan])
def test_probability_inputs_outside_unit_interval_are_refused(name, bad):
    loss, inputs = _valid_inputs(name)
    i = loss.spec.inputs.index(loss.spec.differentiable[0])
    inputs[i].reshape(-1)[0] = bad
    with pytest.raises(ValueError, match=rf"{loss.spec.differentiable[0]} must lie in \[0, 1\]"):
        loss(*inputs)


@pytest.mark.parametrize("name", [n for n in NAMES if losslab.spec(n).target_kind == "sign"])
def test_sign_targets_refuse_zero_one_labels(name):
    loss, inputs = _valid_inputs(name)
    i = loss.spec.inputs.index("target")
    inputs[i] = (inputs[i] > 0).astype(inputs[i].dtype)  # 0/1 labels
    inputs[i].reshape(-1)[0] = 0.0
    with pytest.raises(ValueError, match=r"target must hold labels -1 or \+1"):
        loss(*inputs)


@pytest.mark.parametrize(
    "name", [n for n in NAMES if losslab.spec(n).target_kind == "unit_interval"]
)
@pytest.mark.parametrize("bad", [-0.5, 1.5])
def test_unit_interval_targets_outside_are_refused(name, bad):
    loss, inputs = _valid_inputs(name)
    i = loss.spec.inputs.index("target")
    inputs[i].reshape(-1)[0] = bad
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
        loss(*inputs)


@pytest.mark.parametrize(
    "name", [n for n in NAMES if losslab.spec(n).target_kind == "nonnegative"]
)
def test_nonnegative_targets_refuse_negative_values(name):
    loss, inputs = _valid_inputs(name)
    i = loss.spec.inputs.index("target")
    inputs[i].reshape(-1)[0] = -1.0
    with pytest.raises(ValueError, match=r"target must lie in \[0, inf\]"):
        loss(*inputs)


@pytest.mark.parametrize(
    "name", [n for n in NAMES if losslab.spec(n).target_kind in ("class", "class_index")]
)
@pytest.mark.parametrize("where", ["above", "below"])
def test_class_index_targets_out_of_range_are_refused(name, where):
    loss = losslab.get(name)
    spec = loss.spec
    for seed in range(20):
        inputs = [np.array(a, copy=True) for a in loss.example(np.random.default_rng(seed))]
        x, t = inputs[0], inputs[spec.inputs.index("target")]
        if t.ndim >= 1 and np.issubdtype(t.dtype, np.integer):
            break
    n_classes = x.shape[1] if x.ndim >= 2 else x.shape[0]
    if spec.classes:  # the classes are another input's rows (a class-weight matrix)
        n_classes = inputs[spec.inputs.index(spec.classes)].shape[0]
    t.reshape(-1)[0] = n_classes if where == "above" else -7
    with pytest.raises(ValueError, match=r"target holds class labels outside \[0, "):
        loss(*inputs)


@pytest.mark.parametrize(
    "name", [n for n in NAMES if losslab.spec(n).target_kind == "multilabel_indices"]
)
def test_multilabel_indices_out_of_range_are_refused(name):
    loss, inputs = _valid_inputs(name)
    inputs[1].reshape(-1)[0] = inputs[0].shape[-1]
    with pytest.raises(ValueError, match="target must hold class indices"):
        loss(*inputs)


def test_value_checks_can_be_switched_off():
    x = np.array([0.2, 1.5])
    with pytest.raises(ValueError):
        losslab.get("bce")(x, np.zeros(2))
    with losslab.value_checks(False):
        losslab.get("bce")(x, np.zeros(2))


# --- sample_weight ----------------------------------------------------------------------------


def _weights_for(loss, inputs, rng):
    """Per-item weights: shape (N,) when the items have a batch axis, else the items' shape."""
    none = losslab.get(loss.name, **{**loss.options, "reduction": "none"})
    items = np.asarray(none(*inputs))
    if items.ndim == 0:
        return rng.uniform(0.2, 2.0), items
    return rng.uniform(0.2, 2.0, size=items.shape[:1]), items


def _by_hand(loss, inputs, sw):
    """``reduction`` applied by hand to weighted per-item losses (Keras's semantics)."""
    none = losslab.get(loss.name, **{**loss.options, "reduction": "none"})
    items = np.asarray(none(*inputs), dtype=np.float64)
    w = np.asarray(sw, dtype=np.float64)
    w = w.reshape(w.shape + (1,) * (items.ndim - w.ndim))
    weighted = items * w
    if loss.reduction == "none":
        return weighted
    if loss.reduction == "sum":
        return weighted.sum()
    unweighted_mean = np.asarray(loss(*inputs), dtype=np.float64)
    unweighted_sum = np.asarray(
        losslab.get(loss.name, **{**loss.options, "reduction": "sum"})(*inputs), dtype=np.float64
    )
    if loss.reduction == "batchmean":
        return weighted.sum() / (inputs[0].shape[0] if inputs[0].ndim else 1)
    # mean: the loss's own denominator, which the unweighted mean reveals
    return weighted.sum() * (unweighted_mean / unweighted_sum)


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_sample_weight_equals_weighting_by_hand(name, options):
    loss = losslab.get(name, **options)
    rng = np.random.default_rng(7)
    inputs = loss.example(rng, "float64")
    sw, _ = _weights_for(loss, inputs, rng)
    want = _by_hand(loss, inputs, sw)
    np.testing.assert_allclose(loss(*inputs, sample_weight=sw), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_sample_weight_gradient_matches_finite_differences(name, options):
    from losslab.gradcheck import numerical_grad

    loss = losslab.get(name, **options)
    rng = np.random.default_rng(8)
    inputs = [np.array(a, copy=True) for a in loss.example(rng, "float64")]
    sw, _ = _weights_for(loss, inputs, rng)
    grads = as_tuple(loss.grad(*inputs, sample_weight=sw))

    def f(*args):
        return float(np.sum(loss(*args, sample_weight=sw)))

    for gname, g in zip(loss.differentiable, grads):
        num = numerical_grad(f, inputs, loss.spec.inputs.index(gname))
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7, err_msg=gname)


@pytest.mark.parametrize("namespace", ["array_api_strict", "torch"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_sample_weight_on_other_namespaces(name, options, namespace):
    if not runs_on(name, namespace):
        pytest.skip(f"{name} runs on {losslab.spec(name).namespaces} only")
    loss = losslab.get(name, **options)
    rng = np.random.default_rng(9)
    inputs = loss.example(rng, "float64")
    sw, _ = _weights_for(loss, inputs, rng)
    ref_v, ref_g = loss.value_and_grad(*inputs, sample_weight=sw)
    if namespace == "torch":
        conv, back = (lambda a: torch.tensor(np.array(a, copy=True))), (lambda t: t.numpy())
    else:
        conv, back = array_api_strict.asarray, np.asarray
    value, grad = loss.value_and_grad(
        *[conv(a) for a in inputs], sample_weight=conv(np.asarray(sw))
    )
    np.testing.assert_allclose(back(value), ref_v, rtol=1e-10, atol=1e-12)
    for a, b in zip(as_tuple(grad), as_tuple(ref_g)):
        np.testing.assert_allclose(back(a), b, rtol=1e-10, atol=1e-12)


def test_sample_weight_broadcastable_to_items():
    x = np.arange(6.0).reshape(2, 3)
    t = np.zeros((2, 3))
    loss = losslab.get("mse", reduction="sum")
    w = np.array([[1.0, 2.0, 3.0]])  # per column
    assert loss(x, t, sample_weight=w) == np.sum(x * x * w)
    with pytest.raises(ValueError, match="sample_weight of shape"):
        loss(x, t, sample_weight=np.ones(4))


def test_weighted_mean_divides_by_item_count_not_weight_sum():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.array([1.0, 0.0, 0.0, 3.0])
    value = losslab.get("mse")(x, np.zeros(4), sample_weight=w)
    assert value == pytest.approx((1.0 + 3.0 * 16.0) / 4)
    over_weights = losslab.get("mse", reduction="sum")(x, np.zeros(4), sample_weight=w) / w.sum()
    assert over_weights == pytest.approx((1.0 + 48.0) / 4.0)


# --- second derivatives -----------------------------------------------------------------------

SECOND = [(n, o) for n, o in CASES if losslab.spec(n).hessian is not None]
SECOND_IDS = [f"{n}-{o.get('reduction', 'default')}" for n, o in SECOND]


def _grad_wrt_first(loss, inputs, i0):
    def g(x):
        args = list(inputs)
        args[i0] = x
        return as_tuple(loss.grad(*args))[0]

    return g


@pytest.mark.parametrize(("name", "options"), SECOND, ids=SECOND_IDS)
def test_hessian_diagonal_and_hvp_match_finite_differences_of_the_gradient(name, options):
    loss = losslab.get(name, **options)
    rng = np.random.default_rng(11)
    i0 = loss.spec.inputs.index(loss.spec.differentiable[0])
    for _ in range(2):
        inputs = [np.array(a, copy=True) for a in loss.example(rng, "float64")]
        x = inputs[i0]
        g = _grad_wrt_first(loss, inputs, i0)
        eps = 1e-6
        v = rng.normal(size=x.shape)
        hv = loss.hvp(*inputs, v=v)
        np.testing.assert_allclose(
            hv, (g(x + eps * v) - g(x - eps * v)) / (2 * eps), rtol=1e-5, atol=1e-6
        )
        diag = np.empty(x.size)
        for j in range(x.size):
            e = np.zeros(x.size)
            e[j] = eps
            e = e.reshape(x.shape)
            diag[j] = ((g(x + e) - g(x - e)) / (2 * eps)).reshape(-1)[j]
        h = loss.hess(*inputs)
        assert h.shape == x.shape and h.dtype == x.dtype
        np.testing.assert_allclose(h.reshape(-1), diag, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "options"), SECOND, ids=SECOND_IDS)
def test_grad_and_hess_equal_the_two_separately(name, options):
    loss = losslab.get(name, **options)
    inputs = loss.example(np.random.default_rng(12), "float64")
    g, h = loss.grad_and_hess(*inputs)
    for a, b in zip(as_tuple(g), as_tuple(loss.grad(*inputs))):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(h, loss.hess(*inputs))


def test_declared_hessian_signs_hold_on_examples():
    rng = np.random.default_rng(13)
    for name in NAMES:
        spec = losslab.spec(name)
        if spec.hessian not in ("nonnegative", "zero"):
            continue
        loss = losslab.get(name, reduction="sum")
        for _ in range(3):
            h = loss.hess(*loss.example(rng, "float64"))
            if spec.hessian == "zero":
                assert np.all(h == 0), name
            else:
                assert np.all(h >= -1e-12), name


def test_losses_without_second_derivatives_say_so():
    missing = [n for n in NAMES if losslab.spec(n).hessian is None]
    for name in missing:
        loss = losslab.get(name)
        with pytest.raises(NotImplementedError, match=name):
            loss.hess(*loss.example(np.random.default_rng(0)))


# --- facts live in the catalog ------------------------------------------------------------------


def _string_constants(path):
    tree = ast.parse(path.read_text())
    return {
        node.value for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


@pytest.mark.parametrize(
    "module",
    ["train", "cli", "_vjp.py", "torch.py", "jax.py"],
)
def test_no_list_of_catalog_loss_names_outside_the_catalog(module):
    """Trainer, command line and adapters read a loss's facts from its spec: at most two catalog
    names may appear as literals in a module (a default such as "mse"/"cross_entropy", an
    example in help text), never a list of them."""
    path = SRC / module
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    names = set(NAMES)
    for f in files:
        used = _string_constants(f) & names
        assert len(used) <= 2, (f.name, sorted(used))


def test_the_reducer_lives_in_one_place():
    """No loss formula reduces or scales by the mean itself: the registry does."""
    for path in sorted((SRC / "losses").glob("*.py")):
        if path.name.startswith("_"):
            continue
        text = path.read_text()
        for word in ("check_reduction", "scale_for", "_reduction", "compute_grad"):
            assert word not in text, (path.name, word)
