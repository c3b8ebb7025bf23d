"""lr_find: the range test leaves the trainer as it found it, stops on divergence, and suggests a
rate robust to the smoothing lag."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from losslab.train import LRFinderResult, lr_find
from losslab.train.callbacks import EarlyStopping
from losslab.train.layers import linear_model, mlp
from losslab.train.lr_finder import RULE, _suggest
from losslab.train.regularization import L2
from losslab.train.schedules import StepLR
from losslab.train.trainer import Trainer


def _data(n=120, d=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    X = (rng.normal(scale=2.0, size=(c, d))[y] + rng.normal(size=(n, d))).astype("float32")
    return X, y


def _trainer():
    return Trainer(mlp([5, 32, 3], dropout=0.2, seed=4), "cross_entropy", "adam", lr=0.01,
                   seed=4, regularizer=L2(1e-4), schedule=StepLR(0.01, step_size=2, gamma=0.5))


def assert_same_state(a, b, where="state"):
    """Nested dicts/lists of arrays and scalars, equal bit for bit (NaN equal to NaN)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_same_state(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}/{i}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b and type(a) is type(b), where


def test_trainer_after_lr_find_is_the_trainer_before():
    X, y = _data()
    es = EarlyStopping(monitor="val_loss", patience=10)
    t = _trainer()
    t.fit(X, y, epochs=3, batch_size=16, validation_split=0.2, callbacks=[es])
    twin = _trainer()
    twin_es = EarlyStopping(monitor="val_loss", patience=10)
    twin.fit(X, y, epochs=3, batch_size=16, validation_split=0.2, callbacks=[twin_es])
    t.model.eval()  # a mode lr_find must give back too
    before = t.state_dict()
    schedule, callbacks, lr = t.schedule, t.callbacks, t.optimizer.lr

    result = lr_find(t, X, y, batch_size=16, num_steps=60, end_lr=100.0)
    assert result.steps > 10 and result.suggestion is not None

    assert_same_state(t.state_dict(), before)
    assert t.schedule is schedule and t.callbacks is callbacks and t.optimizer.lr == lr
    assert t.model.training is False and t.stop_training is False
    assert es.state_dict()["best"] == twin_es.state_dict()["best"]
    # ... and training on gives the numbers it gives without the range test, bit for bit.
    t.model.train()
    t.fit(X, y, epochs=3, batch_size=16, validation_split=0.2, callbacks=[es])
    twin.fit(X, y, epochs=3, batch_size=16, validation_split=0.2, callbacks=[twin_es])
    assert_same_state(t.state_dict(), twin.state_dict())


def test_trainer_is_restored_after_a_non_finite_loss():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2)).astype("float32")
    y = (X @ np.array([3.0, -1.0]) * 1e4).astype("float32")
    t = Trainer(linear_model(2, seed=0), "mse", "sgd", lr=0.1, seed=0)
    before = t.state_dict()
    result = lr_find(t, X, y, batch_size=8, start_lr=1e-6, end_lr=1e6, num_steps=200,
                     diverge_factor=1e30)  # only the overflow can stop it
    assert "non-finite" in result.stopped and result.steps < 200
    assert_same_state(t.state_dict(), before)


def test_rates_steps_and_stopping():
    X, y = _data()
    t = Trainer(mlp([5, 16, 3], seed=0), "cross_entropy", "adam", seed=0)
    r = lr_find(t, X, y, start_lr=1e-5, end_lr=1e-2, num_steps=50, batch_size=32)
    # 4 batches per epoch: the run spans 13 epochs and stops at exactly 50 steps
    assert r.steps == 50 and r.stopped == "reached end_lr after 50 steps"
    gamma = (1e-2 / 1e-5) ** (1 / 49)
    np.testing.assert_allclose(r.lrs, [1e-5 * gamma**i for i in range(50)], rtol=1e-12)
    assert r.lrs[0] == 1e-5 and r.lrs[-1] == pytest.approx(1e-2, rel=1e-12)
    assert len(r.losses) == len(r.smoothed) == 50 and r.rule == RULE
    # bias-corrected moving average of the raw losses
    avg, expected = 0.0, []
    for i, v in enumerate(r.losses):
        avg = 0.98 * avg + 0.02 * v
        expected.append(avg / (1 - 0.98 ** (i + 1)))
    np.testing.assert_allclose(r.smoothed, expected, rtol=1e-12)
    # the loss was still falling at 1e-2 with Adam: the best rate may lie beyond the range
    assert r.at_edge
    # a huge range with SGD: stopped by the smoothed loss passing 4x its minimum
    t = Trainer(mlp([5, 16, 3], seed=0), "cross_entropy", "sgd", seed=0)
    r = lr_find(t, X, y, end_lr=1e4, batch_size=16)
    assert r.steps < 100 and ("4x its minimum" in r.stopped or "non-finite" in r.stopped)
    s = np.asarray(r.smoothed)
    if "4x" in r.stopped:
        assert s[-1] > 4 * s[:-1].min() and np.all(s[:-1] <= 4 * np.minimum.accumulate(s[:-1]))


def test_suggestion_is_before_the_raw_divergence():
    X, y = _data()
    for seed in range(3):
        t = Trainer(mlp([5, 16, 3], seed=seed), "cross_entropy", "sgd", seed=seed)
        r = lr_find(t, X, y, end_lr=1e3, batch_size=16)
        k = r.suggestion_index
        assert k is not None and r.suggestion == r.lrs[k]
        losses, s = np.asarray(r.losses), np.asarray(r.smoothed)
        threshold = 4 * np.minimum.accumulate(s)
        assert len(r.lag_free) <= len(losses)
        # every raw loss from the suggestion's step to the end of the searched stretch is below
        # the divergence threshold somewhere after it: the search ended before the raw blow-up
        assert k < len(r.lag_free) and np.all(losses[len(r.lag_free):] > threshold[
            len(r.lag_free):])
        assert losses[k] < losses[len(r.lag_free):].min(initial=np.inf)
        assert 1e-3 < r.suggestion < r.lrs[len(r.lag_free) - 1]


def _synthetic(n=100, noise=0.05, seed=0, spike_at=None):
    """A range test's losses: flat, then a drop whose steepest point is at lr = 0.1
    (log10 = -1), then an explosion from lr = 1; plus 5% multiplicative noise."""
    lrs = 1e-7 * (1e8) ** (np.arange(n) / (n - 1))
    u = np.log10(lrs)
    losses = 1.0 + 1.5 * (1 - np.tanh((u + 1) * 2.0)) + np.where(u > 0, 10 ** (3 * u) - 1, 0.0)
    losses *= 1 + noise * np.random.default_rng(seed).normal(size=n)
    if spike_at is not None:
        losses[spike_at] *= 6.0  # one noisy batch far above the divergence threshold
    return lrs, losses


def _run_stats(losses, beta=0.98, factor=4.0):
    avg, s = 0.0, []
    for i, v in enumerate(losses):
        avg = beta * avg + (1 - beta) * v
        s.append(avg / (1 - beta ** (i + 1)))
    s = np.asarray(s)
    stop = np.flatnonzero(s > factor * np.minimum.accumulate(s))
    n = stop[0] + 1 if len(stop) else len(losses)
    return n, s[:n]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spike", [None, 30])
def test_suggestion_is_robust_to_the_smoothing_lag(seed, spike):
    lrs, losses = _synthetic(seed=seed, spike_at=spike)
    n, s = _run_stats(losses)
    _, k, at_edge = _suggest(lrs[:n], losses[:n], s, 4.0, 0.98, n < len(lrs))
    assert k is not None and not at_edge
    error = abs(np.log10(lrs[k]) + 1)  # in decades from the true steepest descent
    assert error <= 0.3, lrs[k]
    # The same rule on the running (lagged) average, as the command line had it, lands 3-6
    # times further off, late, at rates where the raw loss has turned up.
    lo, i_min = n // 10, int(np.argmin(s))
    lagged = lo + int(np.argmin(np.gradient(s, np.log10(lrs[:n]))[lo : i_min + 1]))
    assert abs(np.log10(lrs[lagged]) + 1) > error + 0.2


def test_no_suggestion_when_the_loss_never_falls():
    lrs = 1e-7 * (1e8) ** (np.arange(60) / 59)
    losses = 1.0 + 0.01 * np.random.default_rng(0).normal(size=60) + 1e-3 * np.arange(60)
    n, s = _run_stats(losses)
    _, k, at_edge = _suggest(lrs[:n], losses[:n], s, 4.0, 0.98, False)
    assert k is None and not at_edge


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"start_lr": 1.0, "end_lr": 0.1}, ValueError, "start_lr < end_lr"),
    ({"start_lr": 0.0}, ValueError, "start_lr"),
    ({"end_lr": float("inf")}, ValueError, "end_lr"),
    ({"num_steps": 1}, ValueError, "num_steps"),
    ({"num_steps": 10.0}, ValueError, "num_steps"),
    ({"smoothing": 1.0}, ValueError, "smoothing"),
    ({"smoothing": "0.9"}, TypeError, "smoothing"),
    ({"diverge_factor": 1.0}, ValueError, "diverge_factor"),
    ({"batch_size": 0}, ValueError, "batch_size"),
])
def test_bad_arguments(kwargs, exc, match):
    X, y = _data(n=20)
    t = Trainer(mlp([5, 4, 3], seed=0), "cross_entropy", "adam")
    with pytest.raises(exc, match=match):
        lr_find(t, X, y, **kwargs)
    with pytest.raises(TypeError, match="Trainer"):
        lr_find(object(), X, y)


def test_result_is_frozen():
    X, y = _data(n=40)
    r = lr_find(Trainer(mlp([5, 4, 3], seed=0), "cross_entropy", "adam"), X, y, num_steps=20)
    assert isinstance(r, LRFinderResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.suggestion = 1.0
    assert isinstance(r.lrs, tuple) and isinstance(r.losses, tuple)
