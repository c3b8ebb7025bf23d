"""Each named primitive of losses/_primitives.py against its plain definition, on every backend it
branches for (NumPy, torch, array-api-strict, JAX where it matters).

Their speed is measured against the plain alternative in benchmarks/bench_primitives.py.
"""

import array_api_strict
import numpy as np
import pytest
import torch

from losslab.losses import _primitives as P

RNG = np.random.default_rng(0)


def _backends(a):
    """(name, array, namespace, to_numpy) for NumPy, torch and array-api-strict copies of ``a``."""
    import array_api_compat

    t = torch.from_numpy(np.array(a, copy=True))
    s = array_api_strict.asarray(a)
    return [
        ("numpy", np.array(a, copy=True), np, np.asarray),
        ("torch", t, array_api_compat.array_namespace(t), lambda x: x.numpy()),
        ("strict", s, array_api_compat.array_namespace(s), np.asarray),
    ]


@pytest.mark.parametrize("k", [0, 1, 2, 3, 0.5, 1.7, 2.5])
def test_power_equals_float_power(k):
    q = RNG.random(50)
    got = P.power(np, q, k)
    np.testing.assert_allclose(got, q**k, rtol=1e-15)


def test_scaled_skips_the_multiply_by_one_and_writes_in_place():
    g = np.arange(4.0)
    assert P.scaled(g, 1.0) is g and np.array_equal(g, np.arange(4.0))
    out = P.scaled(g, 2.0)
    assert out is g and np.array_equal(g, 2.0 * np.arange(4.0))
    w = np.array([1.0, 0.0, 2.0, 1.0])
    assert np.array_equal(P.scaled(np.ones(4), w), w)


def test_positive_and_negative_parts_are_exact_infinities_included():
    x = np.array([-3.5, -0.0, 0.0, 1e-300, 2.0, np.inf, -np.inf])
    hi, lo = P.positive_and_negative_parts(np, x)
    np.testing.assert_array_equal(hi, np.maximum(x, 0.0))
    np.testing.assert_array_equal(lo, np.minimum(x, 0.0))


def test_sigmoid_from_both_tails():
    x = np.array([-800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0])
    e = np.exp(-np.abs(x))
    got = P.sigmoid_from(np, x, e)
    want = np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + e))
    np.testing.assert_allclose(got, want, rtol=1e-15)
    assert got[0] == 0.0 and got[-1] == 1.0 and got[1] > 0


def test_logistic_parts_match_their_definitions_on_every_backend():
    x = np.array([-800.0, -40.0, -3.0, -1e-300, -0.0, 0.0, 0.5, 40.0, 800.0, np.inf, -np.inf])
    e = np.exp(-np.abs(x))
    s_want = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    s_neg_want = np.where(x >= 0, e / (1 + e), 1 / (1 + e))
    for name, a, xp, back in _backends(x):
        hi, lo, ee, s, s_neg = (back(p) for p in P.logistic_parts(xp, a))
        np.testing.assert_array_equal(hi, np.maximum(x, 0.0), err_msg=name)
        np.testing.assert_array_equal(lo, np.minimum(x, 0.0), err_msg=name)
        np.testing.assert_allclose(ee, e, rtol=1e-15, err_msg=name)
        np.testing.assert_allclose(s, s_want, rtol=1e-15, atol=0, err_msg=name)
        np.testing.assert_allclose(s_neg, s_neg_want, rtol=1e-15, atol=0, err_msg=name)
        # both tails exact: tiny probabilities stay positive, never rounded to 0 early
        assert s[1] > 0 and s_neg[7] > 0 and s[-2] == 1.0 and s[-1] == 0.0, name


def test_logistic_parts_keep_the_input_and_the_dtype():
    x = RNG.normal(size=100).astype(np.float32)
    before = x.copy()
    parts = P.logistic_parts(np, x)
    assert all(p.dtype == np.float32 for p in parts)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("shape", [(4, 5), (3, 5, 2)])
def test_softmax_pass_matches_log_softmax_on_every_backend(shape):
    x = 3.0 * RNG.normal(size=shape)
    y = RNG.integers(0, shape[1], size=(shape[0], 1) + shape[2:])
    b = RNG.random(size=shape)
    logp = x - np.log(np.sum(np.exp(x), axis=1, keepdims=True))
    for name, a, xp, back in _backends(x):
        yy = xp.asarray(y) if name != "torch" else torch.from_numpy(y)
        bb = xp.asarray(b) if name != "torch" else torch.from_numpy(b)
        sm = P.SoftmaxPass(xp, a, yy)
        np.testing.assert_allclose(back(sm.log_p_y), np.take_along_axis(logp, y, 1), rtol=1e-12)
        np.testing.assert_allclose(back(sm.p), np.exp(logp), rtol=1e-12)
        dot = P.SoftmaxPass(xp, a, dot=bb)
        np.testing.assert_allclose(
            back(dot.neg_log_p_dot), -np.sum(b * logp, axis=1, keepdims=True), rtol=1e-12
        )
        coef_p, coef_t = RNG.random(y.shape), RNG.random(y.shape)
        g = sm.combine(xp.asarray(coef_p) if name != "torch" else torch.from_numpy(coef_p), yy,
                       xp.asarray(coef_t) if name != "torch" else torch.from_numpy(coef_t))
        onehot = np.zeros(shape)
        np.put_along_axis(onehot, y, 1.0, axis=1)
        np.testing.assert_allclose(back(g), coef_p * np.exp(logp) - coef_t * onehot, rtol=1e-12)
        if name in ("numpy", "torch"):  # written in place: the buffer became the gradient
            with pytest.raises(RuntimeError, match="consumed"):
                sm.p  # noqa: B018


def test_softmax_pass_is_exact_for_huge_logits():
    x = np.array([[1e30, 0.0, -1e30]])
    sm = P.SoftmaxPass(np, x, np.array([[1]]))
    assert sm.log_p_y[0, 0] == -1e30  # log p_1 = 0 - 1e30, no cancellation
    t = torch.tensor(x)
    smt = P.SoftmaxPass(__import__("array_api_compat").array_namespace(t), t,
                        torch.tensor([[1]]))
    assert float(smt.log_p_y[0, 0]) == -1e30


def test_add_at_labels_touches_only_the_labels():
    g = np.zeros((2, 3, 2))
    y = np.array([[[0, 2]], [[1, 1]]])
    out = P.add_at_labels(np, g, y, np.array([[[1.0, 2.0]], [[3.0, 4.0]]]))
    want = np.zeros((2, 3, 2))
    want[0, 0, 0], want[0, 2, 1], want[1, 1, 0], want[1, 1, 1] = 1.0, 2.0, 3.0, 4.0
    np.testing.assert_array_equal(out, want)
    s = array_api_strict.asarray(np.zeros((2, 3, 2)))
    import array_api_compat

    got = P.add_at_labels(array_api_compat.array_namespace(s), s, array_api_strict.asarray(y),
                          array_api_strict.asarray(np.array([[[1.0, 2.0]], [[3.0, 4.0]]])))
    np.testing.assert_array_equal(np.asarray(got), want)


def test_row_dot_and_row_affine_on_every_backend(monkeypatch):
    p, t = RNG.random((3, 4, 5)), RNG.random((3, 4, 5))
    slope, offset = RNG.random((3, 1, 1)), RNG.random((3, 1, 1))
    for long_rows in (False, True):
        monkeypatch.setattr(P, "ROW_LOOP_MIN", 1 if long_rows else 1 << 30)
        for name, a, xp, back in _backends(p):
            tt = {"numpy": t, "torch": torch.from_numpy(t), "strict": array_api_strict.asarray(t)}
            b = tt[name]
            conv = {"numpy": np.asarray, "torch": torch.from_numpy,
                    "strict": array_api_strict.asarray}[name]
            np.testing.assert_allclose(
                back(P.row_dot(xp, a, b)), np.sum(p * t, axis=(1, 2), keepdims=True), rtol=1e-13
            )
            np.testing.assert_allclose(
                back(P.row_affine(xp, b, conv(slope), conv(offset))), offset + t * slope,
                rtol=1e-14,
            )


def test_within_and_clamp_above():
    x = np.array([0.0, 0.5, 1.0])
    assert P.within(np, x, 0.0, 1.0) and not P.within(np, x, 0.0, 0.9)
    assert not P.within(np, np.array([np.nan]), 0.0, 1.0)
    t = torch.tensor([0.0, 0.5, 1.0])
    assert P.within(None, t, 0.0, 1.0)  # one aminmax pass on torch
    a = np.array([1.0, 3.0])
    assert P.clamp_above(np, a, 5.0) is a  # nothing to clamp: no pass
    np.testing.assert_array_equal(P.clamp_above(np, a, 2.0), [1.0, 2.0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_exp_flushed_is_exp_except_below_twice_e_tiny(dtype, overwrite):
    tiny = float(np.finfo(dtype).tiny)
    lo = np.log(tiny)
    x = np.array([0.0, -1.0, -30.0, lo + 2.0, lo + 1.0, lo + 0.5, lo, lo - 20.0, -1e4, -np.inf,
                  np.nan, np.inf, 3.0], dtype=dtype)
    want = np.exp(x.astype(np.float64))
    want[want <= 2 * np.e * tiny] = 0.0
    for name, a, xp, to_np in _backends(x):
        before = to_np(a).copy()
        got = to_np(P.exp_flushed(xp, a, overwrite=overwrite))
        assert got.dtype == np.dtype(dtype), name
        if name == "strict":  # plain exp there: no flush
            np.testing.assert_allclose(got, np.exp(before), rtol=1e-6)
            continue
        np.testing.assert_allclose(got, want.astype(dtype), rtol=1e-6, atol=0, err_msg=name)
        assert np.isnan(got[10]) and got[11] == np.inf and got[9] == 0.0, name
        if not overwrite:
            np.testing.assert_array_equal(to_np(a), before)  # the input is left alone


def test_namespace_of_torch_tensors_is_array_api_compats():
    """The cached torch namespace is the one array-api-compat gives, for tensors and parameters;
    anything else (a tensor subclass, a mix with NumPy) goes through array_namespace."""
    import array_api_compat

    t, w = torch.ones(3), torch.nn.Parameter(torch.ones(3))
    xp, (a, b) = P.namespace(t, w)
    assert xp is array_api_compat.array_namespace(t) and a is t and b is w

    class Sub(torch.Tensor):
        pass

    s = torch.ones(2).as_subclass(Sub)
    assert P._torch_namespace([s]) is None
    assert P.namespace(s)[0] is array_api_compat.array_namespace(s)
