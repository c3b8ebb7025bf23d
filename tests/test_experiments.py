"""The seed article's experiment through the engine, and convergence to least squares."""

from __future__ import annotations

import numpy as np
import pytest

from losslab.train.data import load_dataset
from losslab.train.experiments import ARTICLE_PRINTED, article_experiment
from losslab.train.layers import linear_model
from losslab.train.optimizers import SGD
from losslab.train.trainer import Trainer


def _article_script(n=100, lr=0.01, steps=1000):
    """The article's script verbatim, except for a private RandomState instead of the global
    one (same stream)."""
    rs = np.random.RandomState(0)
    x = rs.uniform(-1, 1, n)
    y = 2 + 3 * x + rs.normal(0, 0.5, n)
    theta_0 = rs.uniform(-1, 1)
    theta_1 = rs.uniform(-1, 1)
    for _ in range(steps):
        y_hat = theta_0 + theta_1 * x
        mse = np.mean((y - y_hat) ** 2)
        grad_theta_0 = -2 * np.mean(y - y_hat)
        grad_theta_1 = -2 * np.mean(x * (y - y_hat))
        theta_0 = theta_0 - lr * grad_theta_0
        theta_1 = theta_1 - lr * grad_theta_1
    return theta_0, theta_1, mse


def test_article_numbers():
    r = article_experiment()
    # What the article prints, to 1e-6 of the printed (5-decimal) values' full precision.
    assert r.theta0 == pytest.approx(2.0949559569, abs=1e-6)
    assert r.theta1 == pytest.approx(2.9798895588, abs=1e-6)
    assert r.mse == pytest.approx(0.248116034, abs=1e-6)
    assert r.mse_final == pytest.approx(0.24811595, abs=1e-6)
    assert round(r.theta0, 5) == ARTICLE_PRINTED["theta0"]
    assert round(r.theta1, 5) == ARTICLE_PRINTED["theta1"]
    assert round(r.mse, 5) == ARTICLE_PRINTED["mse"] == round(r.mse_final, 5)
    # and the same as running the script itself, to rounding
    t0, t1, mse = _article_script()
    assert r.theta0 == pytest.approx(t0, abs=1e-12)
    assert r.theta1 == pytest.approx(t1, abs=1e-12)
    assert r.mse == pytest.approx(mse, abs=1e-12)
    assert len(r.history["loss"]) == 1000 and r.history["lr"][0] == 0.01
    assert "theta0 = 2.09496" in r.summary()


def test_article_initial_theta_and_global_state():
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    r = article_experiment(steps=1)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    np.random.seed(0)
    np.random.uniform(-1, 1, 100)
    np.random.normal(0, 0.5, 100)
    assert r.theta_init == (np.random.uniform(-1, 1), np.random.uniform(-1, 1))


def test_article_options_change_the_run():
    short = article_experiment(steps=10)
    assert len(short.history["loss"]) == 10
    t0, t1, mse = _article_script(lr=0.05, steps=50)
    r = article_experiment(lr=0.05, steps=50)
    assert (r.theta0, r.theta1, r.mse) == pytest.approx((t0, t1, mse), abs=1e-12)


def test_engine_linear_fit_converges_to_least_squares():
    d = load_dataset("article_line")
    A = np.c_[np.ones(100), d.X]
    b0, b1 = np.linalg.lstsq(A, d.y, rcond=None)[0]
    r = article_experiment(lr=0.2, steps=2000)
    assert r.theta0 == pytest.approx(b0, abs=1e-10)
    assert r.theta1 == pytest.approx(b1, abs=1e-10)
    # Several features and momentum: still the normal equations' solution.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.7 + rng.normal(scale=0.3, size=200)
    coef = np.linalg.lstsq(np.c_[np.ones(200), X], y, rcond=None)[0]
    model = linear_model(4, dtype="float64", seed=0)
    t = Trainer(model, "mse", SGD(lr=0.1, momentum=0.9), seed=0, metrics=[])
    t.fit(X, y, epochs=400, batch_size=None, shuffle=False)
    np.testing.assert_allclose(model[0].weight[0], coef[1:], atol=1e-8)
    assert model[0].bias[0] == pytest.approx(coef[0], abs=1e-8)
