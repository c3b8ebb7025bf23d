"""The article's cures for overfitting, shown on a task built to overfit.

Few noisy samples (40 points, two overlapping Gaussian classes in 2-D) and a network far larger
than the problem needs (2-64-64-2 ReLU), trained full-batch with Adam until it memorises the
training set: the validation cross-entropy of the unregularised run blows up. An L2 penalty
added to the loss, dropout, and early stopping (restoring the best weights) must each end with a
lower validation loss than the unregularised run, for every one of 5 seeds. Each pair of runs
shares its seed (same initial weights, same data).
"""

from __future__ import annotations

import numpy as np
import pytest

from losslab.train.callbacks import EarlyStopping
from losslab.train.layers import mlp
from losslab.train.regularization import L2
from losslab.train.trainer import Trainer

SEEDS = range(5)
EPOCHS = 200


def _task(seed):
    rng = np.random.default_rng(100 + seed)

    def draw(n):
        y = rng.integers(0, 2, n)
        x = rng.normal(size=(n, 2))
        x[:, 0] += 2 * y - 1  # class means +-1 apart on one axis: heavy overlap
        return x.astype("float32"), y

    (X, y), (Xv, yv) = draw(40), draw(500)
    return X, y, Xv, yv


def _run(seed, *, dropout=0.0, regularizer=None, early_stopping=False):
    X, y, Xv, yv = _task(seed)
    trainer = Trainer(mlp([2, 64, 64, 2], dropout=dropout, seed=seed), "cross_entropy", "adam",
                      lr=0.01, regularizer=regularizer, seed=seed, metrics=[])
    callbacks = [EarlyStopping(monitor="val_loss", patience=10)] if early_stopping else []
    trainer.fit(X, y, epochs=EPOCHS, batch_size=None, callbacks=callbacks,
                validation_data=(Xv, yv) if early_stopping else None)
    return trainer.evaluate(X, y)["loss"], trainer.evaluate(Xv, yv)["loss"]


@pytest.fixture(scope="module")
def unregularised():
    return {seed: _run(seed) for seed in SEEDS}


def test_the_task_overfits(unregularised):
    for seed, (train, val) in unregularised.items():
        assert train < 0.05 and val > 1.0, (seed, train, val)  # memorised, and it shows


@pytest.mark.parametrize(
    "cure",
    [
        pytest.param({"regularizer": L2(1e-2)}, id="l2"),
        pytest.param({"dropout": 0.5}, id="dropout"),
        pytest.param({"early_stopping": True}, id="early_stopping"),
    ],
)
def test_each_cure_lowers_validation_loss_for_every_seed(unregularised, cure):
    for seed in SEEDS:
        train, val = _run(seed, **cure)
        base_train, base_val = unregularised[seed]
        assert val < base_val, (seed, val, base_val)
        assert train > base_train, (seed, train, base_train)  # it fits the noise less
