"""ctc against torch.nn.functional.ctc_loss (torch 2.13, float64): values equal; gradients equal
through a log_softmax (torch's backward on raw log-probabilities adds exp(log_probs))."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import losslab
from losslab.losses._lattice import (
    Lattice,
    gather_states,
    log_backward,
    log_forward,
    sum_states_by_class,
)


def _case(seed, t=12, n=4, c=6, s=4):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(t, n, c)) * 2
    tg = rng.integers(1, c, size=(n, s))
    tg[0, 1] = tg[0, 0]  # repeated label
    tl = np.array([s, 0, 2, 3])[:n]  # an empty target
    il = np.array([t, t - 2, 3, t])[:n]
    return z, tg, il, tl


def _both(z, tg, il, tl, **options):
    zt = torch.tensor(z, requires_grad=True)
    ref = F.ctc_loss(zt.log_softmax(2), *map(torch.tensor, (tg, il, tl)), **options)
    ref.backward(torch.ones_like(ref))
    zo = torch.tensor(z, requires_grad=True)
    import losslab.torch as lt

    ours = lt.ctc(zo.log_softmax(2), *map(torch.tensor, (tg, il, tl)), **options)
    ours.backward(torch.ones_like(ours))
    return ours, ref, zo.grad, zt.grad


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_equals_torch_through_log_softmax(reduction, zero_infinity):
    for seed in range(3):
        z, tg, il, tl = _case(seed)
        il[2] = 1  # target of length 2 in 1 frame: impossible
        ours, ref, g, g_ref = _both(z, tg, il, tl, reduction=reduction,
                                    zero_infinity=zero_infinity)
        torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_true_gradient_is_torchs_minus_exp_log_probs_on_valid_frames():
    z, tg, il, tl = _case(5)
    lp = torch.tensor(z).log_softmax(2).numpy()
    x = torch.tensor(lp, requires_grad=True)
    F.ctc_loss(x, *map(torch.tensor, (tg, il, tl)), reduction="sum").backward()
    ours = losslab.get("ctc", reduction="sum").grad(lp, tg, il, tl)
    valid = (np.arange(lp.shape[0])[:, None] < il[None, :])[:, :, None]
    np.testing.assert_allclose(ours, x.grad.numpy() - np.exp(lp) * valid, atol=1e-12)
    # ... and the true gradient equals finite differences
    from gradcheck import assert_fd_grad

    assert_fd_grad(losslab.get("ctc", reduction="sum"), [lp, tg, il, tl])


def test_batched_equals_one_by_one_and_concatenated_and_unbatched():
    z, tg, il, tl = _case(7)
    lp = torch.tensor(z).log_softmax(2).numpy()
    loss = losslab.get("ctc", reduction="none")
    v, g = loss.value_and_grad(lp, tg, il, tl)
    for i in range(len(il)):
        vi, gi = loss.value_and_grad(lp[:, i], tg[i], il[i], tl[i])
        np.testing.assert_array_equal(vi, v[i])
        np.testing.assert_array_equal(gi, g[:, i])
    flat = np.concatenate([tg[i, : tl[i]] for i in range(len(tl))])
    v2, g2 = loss.value_and_grad(lp, flat, il, tl)
    np.testing.assert_array_equal(v2, v)
    np.testing.assert_array_equal(g2, g)


def test_very_long_impossible_alignment_is_inf_not_nan():
    rng = np.random.default_rng(0)
    t, c, s = 3000, 5, 1600  # 1600 labels, all repeats, need 3199 frames: impossible
    lp = torch.tensor(rng.normal(size=(t, 1, c))).log_softmax(2).numpy()
    tg = np.ones((1, s), dtype=np.int64)
    args = (lp, tg, np.array([t]), np.array([s]))
    v = losslab.get("ctc", reduction="none")(*args)
    assert np.isinf(v[0]) and v[0] > 0
    v0, g0 = losslab.get("ctc", reduction="sum", zero_infinity=True).value_and_grad(*args)
    assert v0 == 0 and np.all(g0 == 0)
    # a feasible long alignment stays finite (log space: no underflow of the path probability)
    tg2 = (np.arange(s) % (c - 1) + 1)[None, :]
    v2, g2 = losslab.get("ctc").value_and_grad(lp, tg2, np.array([t]), np.array([s]))
    assert np.isfinite(v2) and np.all(np.isfinite(g2)) and v2 > 0


def test_lattice_paths_agree():
    z, tg, il, tl = _case(3)
    loss = losslab.get("ctc", reduction="none")
    lp = torch.tensor(z).log_softmax(2).numpy()
    ref = loss.value_and_grad(lp, tg, il, tl)
    import array_api_strict as xs

    got = loss.value_and_grad(*[xs.asarray(a) for a in (lp, tg, il, tl)])  # stacked path
    np.testing.assert_allclose(np.asarray(got[0]), ref[0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(got[1]), ref[1], atol=1e-12)
    assert callable(log_forward) and callable(log_backward)


def test_bad_input_refused():
    z, tg, il, tl = _case(1)
    lp = torch.tensor(z).log_softmax(2).numpy()
    loss = losslab.get("ctc")
    with pytest.raises(ValueError, match="blank"):
        losslab.get("ctc", blank=6)(lp, tg, il, tl)
    with pytest.raises(ValueError, match="targets must hold class indices"):
        loss(lp, np.zeros_like(tg), il, np.full_like(tl, 1))
    with pytest.raises(ValueError, match="input_lengths must lie"):
        loss(lp, tg, il + 100, tl)
    with pytest.raises(TypeError, match="target_lengths must hold integers"):
        loss(lp, tg, il, tl.astype(float))
    with pytest.raises(ValueError, match="input_lengths must have shape"):
        loss(lp, tg, il[:2], tl)
    with pytest.raises(TypeError, match="blank"):
        losslab.get("ctc", blank=1.5)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_padding_frames_stay_out_of_every_sample(bad):
    """Frames past a sample's input length are ignored (torch's semantics), whatever they hold:
    the in-place lattice lays the samples side by side in one row, and not even a NaN in one
    sample's padding reaches its neighbours or its own gradient."""
    z, tg, il, tl = _case(5)
    lp = torch.tensor(z).log_softmax(2).numpy()
    il = il.copy()
    il[1] = max(int(il[1]) - 3, int(2 * tl[1] + 1))  # sample 1 ends early ...
    lp[int(il[1]):, 1, :] = bad  # ... and its padding frames hold garbage
    loss = losslab.get("ctc", reduction="none")
    for namespace in (np.asarray, torch.tensor):
        v, g = loss.value_and_grad(*[namespace(a) for a in (lp, tg, il, tl)])
        v, g = np.asarray(v), np.asarray(g)
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
        assert np.all(g[int(il[1]):, 1, :] == 0)
        for n in range(lp.shape[1]):  # each sample as if alone
            vn, gn = loss.value_and_grad(*[namespace(a) for a in (
                lp[:, n], tg[n, : int(tl[n])], il[n], tl[n])])
            np.testing.assert_allclose(v[n], np.asarray(vn), rtol=1e-12)
            np.testing.assert_allclose(g[:, n], np.asarray(gn), rtol=1e-10, atol=1e-14)


def _lattice_case(seed, t=9, n=3, s=7):
    rng = np.random.default_rng(seed)
    emit = rng.normal(size=(t, n, s)) * 3 - 2
    emit[rng.random(size=emit.shape) < 0.1] = -np.inf  # states that cannot emit
    skip = rng.random(size=(n, s)) < 0.5
    skip[:, :2] = False
    last = np.array([t - 1, t - 3, 0])[:n]
    init = np.where(rng.random(size=(n, s)) < 0.4, 0.0, -np.inf)
    return emit, skip, last, init


def _as(kind, a):
    import array_api_strict as xs

    return {"numpy": np.asarray, "torch": torch.tensor, "strict": xs.asarray}[kind](a)


def test_lattice_in_place_and_stacked_paths_agree():
    """The flat in-place recursions (NumPy, torch) equal the out-of-place stacked ones
    (array-api-strict), -inf emissions and samples ending early included."""
    import array_api_compat

    emit, skip, last, init = _lattice_case(1)
    got = {}
    for kind in ("numpy", "torch", "strict"):
        e, k, la, i = (_as(kind, a) for a in (emit, skip, last, init))
        xp = array_api_compat.array_namespace(e)
        lattice = Lattice(xp, e, k)
        alpha = np.asarray(lattice.forward())
        beta = np.asarray(lattice.backward(la, i))
        post = np.asarray(lattice.posteriors(la, i))
        got[kind] = alpha, beta, post
    for kind in ("numpy", "torch"):
        for a, b in zip(got[kind], got["strict"]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    alpha, beta, post = got["numpy"]
    with np.errstate(invalid="ignore"):
        want = np.exp(alpha + beta)
    want[np.arange(emit.shape[0])[:, None] > last[None, :]] = 0.0
    np.testing.assert_allclose(post, np.nan_to_num(want), rtol=1e-12, atol=0)
    np.testing.assert_array_equal(got["numpy"][0], log_forward(np, emit, skip))
    np.testing.assert_array_equal(got["numpy"][1], log_backward(np, emit, skip, last, init))


def test_gather_states_and_sum_states_by_class_on_every_backend():
    import array_api_compat

    rng = np.random.default_rng(2)
    lp = rng.normal(size=(5, 3, 4))
    ext = rng.integers(0, 4, size=(3, 6))
    occ = rng.random(size=(5, 3, 6))
    want_emit = np.stack([[lp[t, n, ext[n]] for n in range(3)] for t in range(5)])
    want_sum = np.zeros((5, 3, 4))
    for t in range(5):
        for n in range(3):
            np.add.at(want_sum[t, n], ext[n], occ[t, n])
    for kind in ("numpy", "torch", "strict"):
        a, e, o = _as(kind, lp), _as(kind, ext), _as(kind, occ)
        xp = array_api_compat.array_namespace(a)
        np.testing.assert_array_equal(np.asarray(gather_states(xp, a, e)), want_emit)
        np.testing.assert_allclose(np.asarray(sum_states_by_class(xp, o, e, 4)), want_sum,
                                   rtol=1e-14)
        lattice = Lattice.gathered(xp, a, e, _as(kind, np.zeros((3, 6), dtype=bool)))
        np.testing.assert_array_equal(np.asarray(lattice.emit), want_emit)

