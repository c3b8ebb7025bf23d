"""The blocked, multi-threaded NumPy executor gives the catalog function's own results."""

import numpy as np
import pytest
from gradcheck import as_tuple

import losslab
from losslab.losses import _blocked

ROWWISE = [n for n in losslab.available() if losslab.spec(n).rowwise]


@pytest.fixture
def small_blocks(monkeypatch):
    # Make modest arrays take the blocked path, in many blocks, on several threads.
    monkeypatch.setattr(_blocked, "MIN_ELEMENTS", 1)
    monkeypatch.setattr(_blocked, "BLOCK_ELEMENTS", 40)
    monkeypatch.setenv("LOSSLAB_NUM_THREADS", "3")


def _direct(loss, inputs, **kwargs):
    """The same loss computed in one call (blocking switched off)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_blocked, "MIN_ELEMENTS", 1 << 62)
        return loss.value_and_grad(*inputs, **kwargs)


def _batch(name, rng, dtype):
    # Stack several examples along the batch axis so there are many rows to split.
    loss = losslab.get(name)
    while True:
        inputs = loss.example(rng, dtype)
        if inputs[0].ndim >= 1 and all(a.ndim >= 1 for a in inputs):
            break
    reps = 30
    return tuple(np.concatenate([a] * reps, axis=0) for a in inputs)


def test_the_hot_losses_are_rowwise():
    for name in ("mse", "huber", "cross_entropy"):
        assert losslab.spec(name).rowwise


@pytest.mark.parametrize("name", ROWWISE)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_blocked_equals_direct(small_blocks, name, reduction, dtype):
    spec = losslab.spec(name)
    inputs = _batch(name, np.random.default_rng(0), dtype)
    loss = losslab.get(name, reduction=reduction)
    assert _blocked.applicable(spec, list(inputs), {}, None)
    value, grad = loss.value_and_grad(*inputs)
    ref_v, ref_g = _direct(loss, inputs)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    assert value.dtype == ref_v.dtype and value.shape == ref_v.shape
    np.testing.assert_allclose(value, ref_v, rtol=rtol, atol=1e-7)
    for a, b in zip(as_tuple(grad), as_tuple(ref_g)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-9)
    np.testing.assert_allclose(loss(*inputs), ref_v, rtol=rtol, atol=1e-7)


def test_blocked_cross_entropy_with_weights_ignore_and_smoothing(small_blocks):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 7))
    y = rng.integers(0, 7, 300)
    y[::5] = -100
    w = rng.random(7) + 0.1
    loss = losslab.get("cross_entropy", weight=w, label_smoothing=0.2)
    value, grad = loss.value_and_grad(x, y)
    ref_v, ref_g = _direct(loss, (x, y))
    np.testing.assert_allclose(value, ref_v, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_g, rtol=1e-12, atol=1e-15)


def test_blocked_all_ignored_mean_is_nan_with_zero_gradient(small_blocks):
    x = np.ones((200, 4))
    y = np.full(200, -100)
    value, grad = losslab.get("cross_entropy").value_and_grad(x, y)
    assert np.isnan(value)
    assert not grad.any()


def test_blocked_errors_still_name_the_argument(small_blocks):
    x = np.zeros((200, 4))
    y = np.zeros(200, dtype=np.int64)
    y[150] = 9
    with pytest.raises(ValueError, match="target"):
        losslab.get("cross_entropy").value_and_grad(x, y)


def test_small_inputs_skip_the_threads():
    spec = losslab.spec("mse")
    x = np.zeros((10, 10))
    assert not _blocked.applicable(spec, [x, x], {}, None)


@pytest.mark.parametrize("name", ["mse", "bce_with_logits", "cross_entropy", "log_cosh"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_blocked_sample_weights_equal_direct(small_blocks, name, reduction):
    inputs = _batch(name, np.random.default_rng(2), "float64")
    sw = np.random.default_rng(3).random(inputs[0].shape[0])
    loss = losslab.get(name, reduction=reduction)
    value, grad = loss.value_and_grad(*inputs, sample_weight=sw)
    ref_v, ref_g = _direct(loss, inputs, sample_weight=sw)
    np.testing.assert_allclose(value, ref_v, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, ref_g, rtol=1e-12, atol=1e-15)
