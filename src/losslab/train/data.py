"""Data: the ``Dataset`` container, small data sets that need no download, a seeded
train/test split, and feature scaling.

``Dataset`` is the package's one container for a table of samples (built-in and scikit-learn
data sets here; a CSV file's rows in the command line). ``load_dataset(name)`` gives one:

- ``article_line``: exactly the seed article's data, ``np.random.seed(0)``, ``x ~ U(-1, 1)``,
  ``y = 2 + 3x + N(0, 0.5)``, n = 100 (drawn from a private ``RandomState`` in the same order, so
  the global NumPy random state is left alone).
- ``outlier_line``: the same kind of line, ``y = 2 + 3x + N(0, 0.3)`` with n = 200, where 10% of
  the points with ``x > 0.3`` are shifted down by 8 to 12. Least squares' slope is pulled from 3
  to about 1.3; L1 and Huber fits stay near 2.9. The case for a robust loss.
- ``digits``, ``iris``, ``diabetes``, ``breast_cancer``: scikit-learn's bundled copies (imported
  only when asked for; scikit-learn must be installed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from losslab.losses._validation import suggest

__all__ = [
    "Dataset",
    "TASKS",
    "DATASETS",
    "load_dataset",
    "article_stream",
    "train_test_split",
    "Standardizer",
]


TASKS = ("regression", "classification")


@dataclass
class Dataset:
    """Features ``X`` (n, d), targets ``y`` (n,), and what they mean.

    ``y`` is None for rows without targets (data to predict for). For classification ``y`` holds
    class indices 0..C-1 and ``classes`` (if known) the original label of each index. ``source``
    names where the data came from (for messages and reports), ``notes`` what was done to them
    on the way in (rows dropped, a task inferred), ``lines`` each row's line number in its file.
    Shapes and the task are checked on construction.
    """

    X: np.ndarray
    y: np.ndarray | None
    task: str  # "regression" or "classification"
    feature_names: list[str] = field(default_factory=list)
    target_name: str = "y"
    description: str = ""
    source: str = ""
    classes: list[Any] | None = None
    notes: list[str] = field(default_factory=list)
    lines: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}; got {self.task!r}.")
        self.X = np.asarray(self.X)
        if self.X.ndim != 2:
            raise ValueError(f"X must be a 2-D array (n_samples, n_features); got {self.X.shape}.")
        n = len(self.X)
        for name in ("y", "lines"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value)
                if value.shape != (n,):
                    raise ValueError(
                        f"{name} must have shape ({n},), one entry per row of X; got "
                        f"{value.shape}."
                    )
                setattr(self, name, value)
        if self.feature_names and len(self.feature_names) != self.X.shape[1]:
            raise ValueError(
                f"feature_names has {len(self.feature_names)} names for {self.X.shape[1]} "
                "features."
            )

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def targets(self) -> np.ndarray:
        """``y``, for code that needs targets: a ValueError where the rows have none."""
        if self.y is None:
            raise ValueError(f"{self.source or 'this data set'} has no targets.")
        return self.y

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int | None:
        """Number of classes for classification (``len(classes)`` when known), else None."""
        if self.task != "classification":
            return None
        if self.classes is not None:
            return len(self.classes)
        return None if self.y is None or len(self.y) == 0 else int(self.y.max()) + 1

    def subset(self, rows: Any) -> Dataset:
        """The rows ``rows`` (indices or a boolean mask) as a new Dataset, facts kept."""
        return replace(
            self,
            X=self.X[rows],
            y=None if self.y is None else self.y[rows],
            lines=None if self.lines is None else self.lines[rows],
            feature_names=list(self.feature_names),
            notes=list(self.notes),
        )


def article_stream(seed: int = 0, n: int = 100) -> tuple[np.ndarray, np.ndarray, Any]:
    """The article's ``x`` and ``y`` and the random stream positioned right after them.

    The article calls ``np.random.seed(0)`` and then draws x, the noise, theta0 and theta1 from
    the global stream. ``np.random.RandomState(seed)`` produces the identical sequence without
    touching the global state; the returned stream gives theta next.
    """
    rs = np.random.RandomState(seed)
    x = rs.uniform(-1, 1, n)
    y = 2 + 3 * x + rs.normal(0, 0.5, n)
    return x, y, rs


def _article_line(seed: int = 0) -> Dataset:
    x, y, _ = article_stream(seed)
    return Dataset(
        X=x[:, None],
        y=y,
        task="regression",
        feature_names=["x"],
        target_name="y",
        description="The seed article's data: np.random.seed(0); x ~ U(-1, 1), n = 100; "
        "y = 2 + 3x + N(0, 0.5).",
    )


def _outlier_line(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n = 200
    x = rng.uniform(-1, 1, n)
    y = 2 + 3 * x + rng.normal(0, 0.3, n)
    k = n // 10
    # Gross errors at the right end lever the least-squares slope down; robust losses ignore them.
    idx = rng.choice(np.flatnonzero(x > 0.3), k, replace=False)
    y[idx] -= rng.uniform(8, 12, k)
    return Dataset(
        X=x[:, None],
        y=y,
        task="regression",
        feature_names=["x"],
        target_name="y",
        description="y = 2 + 3x + N(0, 0.3), n = 200, with 10% of the points at x > 0.3 shifted "
        "down by 8-12: least squares' slope is pulled towards 1.3, L1/Huber stay near 3.",
    )


def _sklearn(loader: str, task: str) -> Callable[[int], Dataset]:
    def load(seed: int = 0) -> Dataset:
        try:
            from sklearn import datasets
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"the {loader.removeprefix('load_')!r} data set is scikit-learn's bundled copy; "
                "install scikit-learn (pip install 'losslab[cli]' or pip install scikit-learn)."
            ) from exc
        bunch = getattr(datasets, loader)()
        y = bunch.target.astype(np.int64 if task == "classification" else np.float64)
        desc = (bunch.DESCR or "").strip().splitlines()
        return Dataset(
            X=np.asarray(bunch.data, dtype=np.float64),
            y=y,
            task=task,
            feature_names=[str(f) for f in getattr(bunch, "feature_names", [])],
            target_name="target",
            description=next((line for line in desc if line.strip(". ")), loader),
        )

    return load


DATASETS: dict[str, Callable[[int], Dataset]] = {
    "article_line": _article_line,
    "outlier_line": _outlier_line,
    "digits": _sklearn("load_digits", "classification"),
    "iris": _sklearn("load_iris", "classification"),
    "diabetes": _sklearn("load_diabetes", "regression"),
    "breast_cancer": _sklearn("load_breast_cancer", "classification"),
}


def load_dataset(name: str, seed: int = 0) -> Dataset:
    """The data set called ``name`` (see ``DATASETS``); ``seed`` matters for generated ones."""
    if name not in DATASETS:
        raise ValueError(
            f"unknown data set {name!r}." + suggest(str(name), DATASETS)
            + f" Available: {', '.join(DATASETS)}."
        )
    data = DATASETS[name](seed)
    data.source = name
    return data


def train_test_split(
    X: Any, y: Any, test_size: float = 0.2, seed: int = 0, stratify: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded random split ``(X_train, X_test, y_train, y_test)`` (scikit-learn's order).

    ``test_size`` is a fraction in (0, 1) or a number of samples. ``stratify`` (labels, or
    ``True`` for ``y``) keeps each class's share in both parts: every class contributes
    ``round(test_size * class_count)`` test samples, at least one when it has two or more.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X and y must have the same length; got {n} and {len(y)}.")
    if isinstance(test_size, float) and 0.0 < test_size < 1.0:
        n_test = int(round(test_size * n))
    elif isinstance(test_size, int | np.integer) and 0 < test_size < n:
        n_test = int(test_size)
    else:
        raise ValueError(
            f"test_size must be a fraction in (0, 1) or a count in [1, {n - 1}]; got {test_size!r}."
        )
    frac = n_test / n
    rng = np.random.default_rng(seed)
    if stratify is None or stratify is False:
        perm = rng.permutation(n)
        test, train = perm[:n_test], perm[n_test:]
    else:
        labels = y if stratify is True else np.asarray(stratify)
        if len(labels) != n:
            raise ValueError(f"stratify must have length {n}; got {len(labels)}.")
        test_parts, train_parts = [], []
        for cls in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == cls))
            k = int(round(frac * len(members)))
            if len(members) >= 2:
                k = min(max(k, 1), len(members) - 1)
            test_parts.append(members[:k])
            train_parts.append(members[k:])
        test = rng.permutation(np.concatenate(test_parts))
        train = rng.permutation(np.concatenate(train_parts))
    return X[train], X[test], y[train], y[test]


class Standardizer:
    """Scale features to zero mean and unit variance: ``(X - mean) / scale``.

    Constant features get ``scale = 1`` (left centred, not divided by zero). ``to_dict`` /
    ``from_dict`` give a JSON-ready form so a saved model can carry its preprocessing.
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, X: Any) -> Standardizer:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim not in (1, 2) or len(X) == 0:
            raise ValueError(f"X must be a non-empty 1-D or 2-D array; got shape {X.shape}.")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinite values.")
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def _check(self, X: Any) -> np.ndarray:
        if self.mean_ is None or self.scale_ is None:
            raise RuntimeError("Standardizer is not fitted; call fit(X) first.")
        X = np.asarray(X)
        if X.shape[1:] != self.mean_.shape:
            raise ValueError(
                f"X must have {self.mean_.shape[0] if self.mean_.ndim else 1} features; "
                f"got shape {X.shape}."
            )
        return X

    def transform(self, X: Any) -> np.ndarray:
        X = self._check(X)
        dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
        return ((X - self.mean_) / self.scale_).astype(dtype, copy=False)

    def fit_transform(self, X: Any) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, X: Any) -> np.ndarray:
        X = self._check(X)
        dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
        return (X * self.scale_ + self.mean_).astype(dtype, copy=False)

    inverse = inverse_transform

    def to_dict(self) -> dict[str, Any]:
        if self.mean_ is None or self.scale_ is None:
            raise RuntimeError("Standardizer is not fitted; call fit(X) first.")
        return {"mean": self.mean_.tolist(), "scale": self.scale_.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Standardizer:
        s = cls()
        s.mean_ = np.asarray(d["mean"], dtype=np.float64)
        s.scale_ = np.asarray(d["scale"], dtype=np.float64)
        return s
