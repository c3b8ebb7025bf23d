"""Data sets, the seeded split and the Standardizer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from losslab.train.data import DATASETS, Standardizer, load_dataset, train_test_split


def test_article_line_is_the_articles_data_and_leaves_global_state_alone():
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    d = load_dataset("article_line")
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    np.random.seed(0)
    x = np.random.uniform(-1, 1, 100)
    y = 2 + 3 * x + np.random.normal(0, 0.5, 100)
    np.testing.assert_array_equal(d.X[:, 0], x)
    np.testing.assert_array_equal(d.y, y)
    assert d.task == "regression" and d.X.shape == (100, 1)


def test_outlier_line_pulls_least_squares_but_not_l1():
    d = load_dataset("outlier_line")
    A = np.c_[np.ones(len(d.y)), d.X[:, 0]]
    slope_ls = np.linalg.lstsq(A, d.y, rcond=None)[0][1]
    # L1 fit by iteratively reweighted least squares (enough to show the slope is recovered)
    beta = np.linalg.lstsq(A, d.y, rcond=None)[0]
    for _ in range(200):
        w = 1 / np.maximum(np.abs(d.y - A @ beta), 1e-6)
        beta = np.linalg.solve(A.T @ (A * w[:, None]), A.T @ (w * d.y))
    assert slope_ls < 2.0 and abs(beta[1] - 3) < 0.3
    assert np.array_equal(load_dataset("outlier_line", seed=0).y, d.y)
    assert not np.array_equal(load_dataset("outlier_line", seed=1).y, d.y)


@pytest.mark.parametrize(
    "name, shape, task, n_classes",
    [
        ("digits", (1797, 64), "classification", 10),
        ("iris", (150, 4), "classification", 3),
        ("diabetes", (442, 10), "regression", None),
        ("breast_cancer", (569, 30), "classification", 2),
    ],
)
def test_bundled_sets(name, shape, task, n_classes):
    pytest.importorskip("sklearn")
    d = load_dataset(name)
    assert d.X.shape == shape and d.task == task and d.n_classes == n_classes
    assert len(d.feature_names) == shape[1] and d.description
    assert d.y.dtype == (np.int64 if task == "classification" else np.float64)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="Did you mean 'digits'"):
        load_dataset("digit")
    assert set(DATASETS) == {"article_line", "outlier_line", "digits", "iris", "diabetes",
                             "breast_cancer"}


def test_missing_sklearn_message(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sklearn(name, *a, **k):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ImportError, match="install scikit-learn"):
        load_dataset("iris")


def test_split_is_seeded_partition():
    X = np.arange(100)[:, None]
    y = np.arange(100)
    a = train_test_split(X, y, test_size=0.25, seed=3)
    b = train_test_split(X, y, test_size=0.25, seed=3)
    c = train_test_split(X, y, test_size=0.25, seed=4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])
    Xtr, Xte, ytr, yte = a
    assert len(Xte) == 25 and len(Xtr) == 75
    assert sorted(np.r_[ytr, yte].tolist()) == list(range(100))
    np.testing.assert_array_equal(Xtr[:, 0], ytr)
    assert len(train_test_split(X, y, test_size=10)[1]) == 10


def test_stratified_split_keeps_class_shares():
    y = np.r_[np.zeros(80, int), np.ones(20, int)]
    X = np.arange(100)[:, None]
    _, _, ytr, yte = train_test_split(X, y, test_size=0.2, seed=0, stratify=y)
    assert (yte == 1).sum() == 4 and (yte == 0).sum() == 16
    _, _, _, yte2 = train_test_split(X, y, test_size=0.2, seed=0, stratify=True)
    assert (yte2 == 1).sum() == 4


@pytest.mark.parametrize("kwargs, match", [({"test_size": 0.0}, "test_size"),
                                           ({"test_size": 1.5}, "test_size"),
                                           ({"stratify": [0, 1]}, "stratify")])
def test_split_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_test_split(np.zeros((10, 2)), np.zeros(10), **kwargs)
    with pytest.raises(ValueError, match="X and y"):
        train_test_split(np.zeros((10, 2)), np.zeros(9))


def test_standardizer_round_trip_and_json():
    rng = np.random.default_rng(0)
    X = rng.normal(loc=5, scale=3, size=(50, 3)).astype("float32")
    X[:, 2] = 7.0  # constant column: scale 1, not a division by zero
    s = Standardizer().fit(X)
    Z = s.transform(X)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z[:, :2].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(Z[:, :2].std(0), 1, atol=1e-5)
    np.testing.assert_array_equal(Z[:, 2], 0)
    np.testing.assert_allclose(s.inverse_transform(Z), X, rtol=1e-5)
    s2 = Standardizer.from_dict(json.loads(json.dumps(s.to_dict())))
    np.testing.assert_array_equal(s2.transform(X), Z)
    with pytest.raises(ValueError, match="3 features"):
        s.transform(np.zeros((2, 4)))
    with pytest.raises(RuntimeError, match="not fitted"):
        Standardizer().transform(X)
    with pytest.raises(ValueError, match="NaN"):
        Standardizer().fit(np.array([[np.nan]]))


def test_dataset_checks_and_subsets():
    from losslab.train.data import Dataset

    X = np.arange(12.0).reshape(6, 2)
    y = np.array([0, 1, 2, 0, 1, 2])
    d = Dataset(X, y, "classification", feature_names=["a", "b"], classes=["x", "y", "z"],
                source="t.csv", lines=np.arange(2, 8))
    assert (d.n_samples, d.n_features, d.n_classes) == (6, 2, 3)
    s = d.subset([0, 2])
    np.testing.assert_array_equal(s.X, X[[0, 2]])
    np.testing.assert_array_equal(s.y, [0, 2])
    np.testing.assert_array_equal(s.lines, [2, 4])
    assert s.classes == ["x", "y", "z"] and s.source == "t.csv" and s.feature_names == ["a", "b"]
    s.notes.append("changed")
    assert d.notes == []  # a subset's lists are its own
    no_target = Dataset(X, None, "regression")
    assert no_target.subset(np.array([True] * 3 + [False] * 3)).y is None
    assert Dataset(X, y, "classification").n_classes == 3
    assert load_dataset("article_line").source == "article_line"
    with pytest.raises(ValueError, match="task must be one of"):
        Dataset(X, y, "ranking")
    with pytest.raises(ValueError, match=r"y must have shape \(6,\)"):
        Dataset(X, y[:5], "regression")
    with pytest.raises(ValueError, match="X must be a 2-D array"):
        Dataset(X[:, 0], y, "regression")
    with pytest.raises(ValueError, match="feature_names has 1 names for 2"):
        Dataset(X, y, "regression", feature_names=["a"])
