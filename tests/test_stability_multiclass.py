"""Extreme logits (1e4 in float32, 1e30 in float64): cross_entropy, softmax_focal and poly1 give
finite values and gradients equal to the mathematical limits.

With one logit ``M`` ahead of the rest by a gap of ``2M``, the softmax is exactly one-hot in
floating point, so the limits are exact: the correct class ahead gives loss 0 and gradient 0; a
wrong class ahead gives loss = gap (focal: alpha * gap; poly1: gap + epsilon) and gradient +1 at
the leader, -1 at the target (times 1/N for the mean).

Each test runs on NumPy and on torch tensors: torch takes its own softmax path (torch's fused
softmax, with ``log s`` recovered from the softmax at the row maximum), which must keep the same
limits.
"""

import numpy as np
import pytest

import losslab

torch = pytest.importorskip("torch")

MAGNITUDES = [("float32", 1e4), ("float64", 1e30)]
LOSSES = [
    ("cross_entropy", {}),
    ("softmax_focal", {}),
    ("softmax_focal", {"gamma": 0.5, "alpha": 0.25}),
    ("poly1", {}),
    ("poly1", {"epsilon": 2.0}),
]
IDS = ["ce", "focal", "focal-g0.5-a0.25", "poly1", "poly1-eps2"]


@pytest.fixture(params=["numpy", "torch"])
def backend(request):
    return request.param


def _value_and_grad(backend, loss, x, y):
    """``loss.value_and_grad(x, y)`` on the backend's arrays, returned as NumPy arrays."""
    if backend == "numpy":
        return loss.value_and_grad(x, y)
    v, g = loss.value_and_grad(torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y)))
    assert v.dtype == g.dtype == torch.from_numpy(np.asarray(x)).dtype
    return v.numpy(), g.numpy()


def _logits(dtype, m):
    # Row 0: class 0 far ahead, target 0 (right). Row 1: class 2 far ahead, target 0 (wrong).
    x = np.array([[m, -m, -m], [-m, -m, m]], dtype=dtype)
    y = np.array([0, 0])
    return x, y


def _wrong_limit(name, opts, gap):
    if name == "softmax_focal":
        return opts.get("alpha", 1.0) * gap
    if name == "poly1":
        return gap + opts.get("epsilon", 1.0)
    return gap


@pytest.mark.parametrize(("dtype", "m"), MAGNITUDES)
@pytest.mark.parametrize(("name", "opts"), LOSSES, ids=IDS)
def test_far_ahead_gives_exact_limits(backend, dtype, m, name, opts):
    x, y = _logits(dtype, m)
    v, g = _value_and_grad(backend, losslab.get(name, reduction="none", **opts), x, y)
    assert v.dtype == np.dtype(dtype) and np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    gap = np.asarray(2 * m, dtype=dtype)
    np.testing.assert_allclose(v, [0.0, _wrong_limit(name, opts, gap)], rtol=1e-6)
    # Correct class ahead: nothing to learn. Wrong class ahead: the focal factor is 1 (p_y = 0)
    # and poly1's extra term has derivative p_y (p - onehot) = 0, so all three give p - onehot.
    scale = opts.get("alpha", 1.0) if name == "softmax_focal" else 1.0
    np.testing.assert_array_equal(g, np.array([[0, 0, 0], [-scale, 0, scale]], dtype=dtype))


@pytest.mark.parametrize(("dtype", "m"), MAGNITUDES)
@pytest.mark.parametrize(("name", "opts"), LOSSES, ids=IDS)
def test_mean_scales_the_limit_gradient(backend, dtype, m, name, opts):
    x, y = _logits(dtype, m)
    v, g = _value_and_grad(backend, losslab.get(name, **opts), x, y)
    gap = 2 * m
    np.testing.assert_allclose(v, _wrong_limit(name, opts, gap) / 2, rtol=1e-6)
    scale = opts.get("alpha", 1.0) if name == "softmax_focal" else 1.0
    np.testing.assert_array_equal(g, np.array([[0, 0, 0], [-scale, 0, scale]], dtype=dtype) / 2)


@pytest.mark.parametrize(("dtype", "m"), MAGNITUDES)
@pytest.mark.parametrize(("name", "opts"), LOSSES, ids=IDS)
def test_tie_at_huge_magnitude_keeps_log2(backend, dtype, m, name, opts):
    # Two classes tied at M: p = (1/2, 1/2, 0). A naive logsumexp(x) - x_y cancels to 0 here.
    x = np.array([[m, m, -m]], dtype=dtype)
    y = np.array([0])
    v, g = _value_and_grad(backend, losslab.get(name, reduction="sum", **opts), x, y)
    ln2 = np.log(2.0)
    if name == "cross_entropy":
        want_v, c = ln2, 1.0
    elif name == "poly1":
        want_v, c = ln2 + opts.get("epsilon", 1.0) * 0.5, 1.0 + opts.get("epsilon", 1.0) * 0.5
    else:
        gamma, alpha = opts.get("gamma", 2.0), opts.get("alpha", 1.0)
        want_v = alpha * 0.5**gamma * ln2
        c = alpha * 0.5**gamma * (1.0 + gamma * ln2)  # q^g (1 - g p lp / q), p = q = 1/2
    np.testing.assert_allclose(v, want_v, rtol=1e-6)
    np.testing.assert_allclose(g, np.array([[-0.5 * c, 0.5 * c, 0.0]]), rtol=1e-6)


@pytest.mark.parametrize(("dtype", "m"), MAGNITUDES)
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_label_smoothing_limits(backend, dtype, m, weighted):
    # -log p_c = M - x_c exactly in the limit; grad = (sum b) p - b, b = w * q.
    x = np.array([[-m, -m, m]], dtype=dtype)
    y = np.array([0])
    ls, n = 0.3, 3
    w = np.array([2.0, 1.0, 0.5]) if weighted else np.ones(3)
    q = np.full(3, ls / n)
    q[0] += 1 - ls
    b = w * q
    loss = losslab.get(
        "cross_entropy", label_smoothing=ls, weight=w if weighted else None, reduction="sum"
    )
    v, g = _value_and_grad(backend, loss, x, y)
    nll = np.array([2 * m, 2 * m, 0.0])
    np.testing.assert_allclose(v, np.sum(b * nll), rtol=1e-6)
    np.testing.assert_allclose(g, (b.sum() * np.array([0.0, 0.0, 1.0]) - b)[None], rtol=1e-6)
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize(("dtype", "m"), MAGNITUDES)
def test_cross_entropy_probability_targets_limits(backend, dtype, m):
    x = np.array([[m, -m, -m], [-m, -m, m]], dtype=dtype)
    t = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=dtype)
    v, g = _value_and_grad(backend, losslab.get("cross_entropy", reduction="none"), x, t)
    np.testing.assert_allclose(v, [0.0, 2 * m], rtol=1e-6)
    np.testing.assert_array_equal(g, np.array([[0, 0, 0], [-1, 0, 1]], dtype=dtype))


@pytest.mark.parametrize(("dtype", "m"), MAGNITUDES)
@pytest.mark.parametrize(("name", "opts"), LOSSES, ids=IDS)
def test_k_dimensional_random_huge_logits_stay_finite(backend, dtype, m, name, opts):
    rng = np.random.default_rng(0)
    x = (m * rng.uniform(-1, 1, size=(3, 4, 2, 2))).astype(dtype)
    y = rng.integers(0, 4, size=(3, 2, 2))
    v, g = _value_and_grad(backend, losslab.get(name, **opts), x, y)
    assert np.isfinite(v) and np.all(np.isfinite(g))
    # Each position's gradient sums to zero over the classes (softmax shift invariance).
    np.testing.assert_allclose(np.sum(g, axis=1), 0.0, atol=1e-6)
