"""Real data shipped inside scikit-learn (no download): digits and diabetes, in seconds."""

from __future__ import annotations

import numpy as np
import pytest

from losslab.train.data import Standardizer, load_dataset, train_test_split
from losslab.train.layers import linear_model, mlp
from losslab.train.metrics import r2
from losslab.train.trainer import Trainer

pytest.importorskip("sklearn")


def test_digits_mlp_reaches_95_percent():
    d = load_dataset("digits")
    X_train, X_test, y_train, y_test = train_test_split(d.X, d.y, test_size=0.25, seed=0,
                                                        stratify=True)
    scaler = Standardizer().fit(X_train)
    trainer = Trainer(mlp([64, 128, 10], seed=0), "cross_entropy", "adam", lr=2e-3, seed=0)
    trainer.fit(scaler.transform(X_train), y_train, epochs=15, batch_size=32)
    result = trainer.evaluate(scaler.transform(X_test), y_test)
    assert result["accuracy"] >= 0.95, result
    proba = trainer.predict_proba(scaler.transform(X_test))
    assert proba.shape == (len(y_test), 10)
    assert np.mean(proba.argmax(1) == y_test) == pytest.approx(result["accuracy"])


def test_diabetes_linear_model_matches_ols():
    d = load_dataset("diabetes")
    X_train, X_test, y_train, y_test = train_test_split(d.X, d.y, test_size=0.25, seed=0)
    xs = Standardizer().fit(X_train)
    ys = Standardizer().fit(y_train[:, None])
    X_train, X_test = xs.transform(X_train), xs.transform(X_test)
    coef = np.linalg.lstsq(np.c_[np.ones(len(X_train)), X_train], y_train, rcond=None)[0]
    r2_ols = r2(y_test, np.c_[np.ones(len(X_test)), X_test] @ coef)
    trainer = Trainer(linear_model(10, seed=0), "mse", "sgd", lr=0.1, seed=0)
    trainer.fit(X_train, ys.transform(y_train[:, None])[:, 0], epochs=300, batch_size=None)
    pred = ys.inverse_transform(trainer.predict(X_test)[:, None])[:, 0]
    r2_engine = r2(y_test, pred)
    assert abs(r2_engine - r2_ols) < 0.01, (r2_engine, r2_ols)
    assert r2_ols > 0.3  # the split is a meaningful one
