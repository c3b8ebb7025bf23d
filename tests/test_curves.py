"""learning_curve and validation_curve: the same numbers as a direct loop over the same splits."""

from __future__ import annotations

import numpy as np
import pytest

from losslab.train import Trainer, kfold_splits, learning_curve, validation_curve
from losslab.train.data import Standardizer
from losslab.train.layers import mlp
from losslab.train.regularization import L2

EPOCHS = 5


def _data(n=90, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) * [1.0, 3.0, 0.5, 2.0] + [0.0, 5.0, -1.0, 0.0]
    y = (X[:, 0] + 0.3 * X[:, 1] + rng.normal(0, 0.5, n) > 1.5).astype(np.int64)
    return X, y


def _make(l2: float = 0.0, width: int = 8) -> Trainer:
    return Trainer(mlp([4, width, 2], seed=3), "cross_entropy", "adam", lr=0.05,
                   regularizer=L2(l2) if l2 else None, seed=3, metrics=["accuracy"])


def _direct(trainer, X, y, train, test, epochs, standardize, metric="loss"):
    """One point written out by hand: scale on the training rows, fit, evaluate both parts."""
    Xtr, Xte = X[train], X[test]
    if standardize:
        mean, std = Xtr.mean(axis=0), Xtr.std(axis=0)
        Xtr, Xte = (Xtr - mean) / std, (Xte - mean) / std
    trainer.fit(Xtr, y[train], epochs=epochs, batch_size=16)
    return trainer.evaluate(Xtr, y[train])[metric], trainer.evaluate(Xte, y[test])[metric]


def test_kfold_splits_partition_and_stratify():
    y = np.array([0] * 30 + [1] * 12 + [2] * 6)
    pairs = kfold_splits(len(y), 3, seed=1, labels=y)
    tested = np.sort(np.concatenate([te for _, te in pairs]))
    assert np.array_equal(tested, np.arange(len(y)))          # every row tested exactly once
    for train, test in pairs:
        assert not set(train) & set(test) and len(train) + len(test) == len(y)
        assert list(np.bincount(y[test])) == [10, 4, 2]        # class shares kept
        assert not np.all(np.diff(train) > 0)                  # training rows shuffled
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(pairs, kfold_splits(48, 3, seed=1,
                                                                              labels=y)))
    with pytest.raises(ValueError, match="n_splits"):
        kfold_splits(10, 1)


@pytest.mark.parametrize("standardize", [False, True])
def test_learning_curve_equals_a_direct_loop(standardize):
    X, y = _data()
    pairs = kfold_splits(len(y), 3, seed=0, labels=y)
    calls = []
    sizes, tr, te = learning_curve(_make, X, y, train_sizes=[0.25, 0.5, 1.0], cv=pairs,
                                   epochs=EPOCHS, batch_size=16, standardize=standardize,
                                   progress=lambda done, total: calls.append((done, total)))
    assert list(sizes) == [15, 30, 60]
    assert tr.shape == te.shape == (3, 3)
    for j, (train, test) in enumerate(pairs):
        for i, n in enumerate(sizes):
            a, b = _direct(_make(), X, y, train[:n], test, EPOCHS, standardize)
            assert tr[i, j] == pytest.approx(a, rel=1e-5) and te[i, j] == pytest.approx(b,
                                                                                     rel=1e-5)
    assert calls[-1] == (9, 9) and len(calls) == 9
    # An int cv is the same as passing kfold_splits(..., labels=y) with the same seed.
    sizes2, tr2, te2 = learning_curve(_make, X, y, train_sizes=[0.25, 0.5, 1.0], cv=3,
                                      epochs=EPOCHS, batch_size=16, standardize=standardize)
    assert np.array_equal(tr2, tr) and np.array_equal(te2, te)


def test_learning_curve_sizes_and_metric():
    X, y = _data()
    pairs = kfold_splits(len(y), 3, seed=0)
    sizes, tr, te = learning_curve(_make, X, y, train_sizes=[10, 0.5, 10], cv=pairs, epochs=2,
                                   batch_size=16, metric="accuracy")
    assert list(sizes) == [10, 30]                              # sorted, duplicates dropped
    assert np.all((0 <= te) & (te <= 1)) and np.all((0 <= tr) & (tr <= 1))
    for bad in ([0.0], [1.5], [61], ["a"]):
        with pytest.raises(ValueError, match=r"train.size"):
            learning_curve(_make, X, y, train_sizes=bad, cv=pairs, epochs=1)
    with pytest.raises(ValueError, match="not recorded"):
        learning_curve(_make, X, y, train_sizes=[1.0], cv=pairs, epochs=1, metric="r2")


def test_validation_curve_equals_a_direct_loop():
    X, y = _data(seed=1)
    pairs = kfold_splits(len(y), 3, seed=2, labels=y)
    values = [0.0, 1e-2, 1.0]
    tr, te = validation_curve(_make, X, y, param_name="l2", param_range=values, cv=pairs,
                              epochs=EPOCHS, batch_size=16, standardize=True)
    assert tr.shape == te.shape == (3, 3)
    for j, (train, test) in enumerate(pairs):
        for i, v in enumerate(values):
            a, b = _direct(_make(l2=v), X, y, train, test, EPOCHS, True)
            assert tr[i, j] == pytest.approx(a, rel=1e-5) and te[i, j] == pytest.approx(b,
                                                                                     rel=1e-5)
    # A strong penalty underfits: its training loss is the highest on every split.
    assert np.all(tr[2] > tr[0])


def test_validation_curve_over_epochs_and_width():
    X, y = _data(seed=2)
    pairs = kfold_splits(len(y), 2, seed=0)
    tr, te = validation_curve(_make, X, y, param_name="epochs", param_range=[1, 4], cv=pairs,
                              batch_size=16)
    for j, (train, test) in enumerate(pairs):
        for i, e in enumerate([1, 4]):
            a, b = _direct(_make(), X, y, train, test, e, False)
            assert tr[i, j] == pytest.approx(a, rel=1e-5) and te[i, j] == pytest.approx(b,
                                                                                     rel=1e-5)
    tr, te = validation_curve(_make, X, y, param_name="width", param_range=[2, 16], cv=pairs,
                              epochs=2, batch_size=16)
    assert tr.shape == (2, 2) and np.all(np.isfinite(te))


def test_bad_arguments_name_what_was_expected():
    X, y = _data()
    with pytest.raises(ValueError, match="same number of samples"):
        validation_curve(_make, X, y[:-1], param_name="l2", param_range=[0.0], cv=2)
    with pytest.raises(ValueError, match="param_range is empty"):
        validation_curve(_make, X, y, param_name="l2", param_range=[], cv=2)
    with pytest.raises(ValueError, match="cv"):
        validation_curve(_make, X, y, param_name="l2", param_range=[0.0], cv=[])
    with pytest.raises(ValueError, match=r"cv\[0\]'s test rows"):
        validation_curve(_make, X, y, param_name="l2", param_range=[0.0],
                         cv=[(np.arange(10), np.array([len(y)]))])
    with pytest.raises(ValueError, match="epochs"):
        learning_curve(_make, X, y, cv=2, epochs=0)


def test_standardize_uses_the_engine_standardizer():
    """The by-hand scaling in _direct is the engine's Standardizer (no constant columns here)."""
    X, _ = _data()
    s = Standardizer().fit(X[:50])
    assert np.allclose(s.transform(X[50:]), (X[50:] - X[:50].mean(0)) / X[:50].std(0))
