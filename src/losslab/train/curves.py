"""Learning curves and validation curves: how the held-out loss moves with the training-set size
and with one hyperparameter, measured over several splits (scikit-learn's two functions, for a
``Trainer``).

Both train a fresh model per point and per split and return plain arrays, as
``sklearn.model_selection.learning_curve`` and ``validation_curve`` do::

    sizes, train_losses, test_losses = learning_curve(make_trainer, X, y, cv=5, epochs=50)
    train_losses, test_losses = validation_curve(
        lambda l2: Trainer(mlp([64, 128, 10], seed=0), "cross_entropy", "adam",
                           regularizer=L2(l2) if l2 else None, seed=0),
        X, y, param_name="l2", param_range=[0, 1e-4, 1e-3, 1e-2], cv=5, epochs=50)

Rows are the sizes (or the parameter values), columns the splits; the spread across a row is the
noise of one split. Conventions (scikit-learn's, except where said):

- A *loss*, not a score: lower is better. ``metric`` picks what is read from
  ``Trainer.evaluate`` after training ("loss", the data loss without any penalty, in evaluation
  mode, by default; or a metric the trainer records, e.g. "accuracy").
- ``cv`` is a number of folds (``kfold_splits``, stratified when ``y`` holds class labels:
  a 1-D integer array) or the ``(train_rows, test_rows)`` pairs themselves.
- ``learning_curve``: ``train_sizes`` are fractions of the smallest training part (floats in
  (0, 1]) or row counts (ints); a size-``n`` model trains on the *first* ``n`` rows of each
  split's training part, so the sizes are nested. ``kfold_splits`` returns the training rows in a
  shuffled order, so the first ``n`` are a random subset.
- ``validation_curve``: ``make_trainer(**{param_name: value})`` builds the model for each value;
  ``param_name="epochs"`` is the exception: it varies the epochs given to ``fit`` and
  ``make_trainer()`` is called without arguments.
- ``standardize=True`` fits a ``Standardizer`` on each training subset and applies it to that
  subset and its test rows (what a pipeline does; scaling on all rows first leaks the test rows'
  mean and spread into training).

``make_trainer`` must give the same initial weights each time it is called (build the model with a
fixed seed) if the curves are to differ only by the data or the parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from losslab.train.data import Standardizer
from losslab.train.trainer import Trainer

__all__ = ["learning_curve", "validation_curve", "kfold_splits", "fit_and_evaluate"]

Splits = Sequence[tuple[np.ndarray, np.ndarray]]
Progress = Callable[[int, int], None]


def kfold_splits(
    n_samples: int, n_splits: int = 5, *, seed: int = 0, labels: Any = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds of ``range(n_samples)``: ``[(train_rows, test_rows), ...]``, each row tested once.

    With ``labels`` (class labels, one per row) each class's rows are dealt round the folds in a
    shuffled order, so every fold keeps the class shares (scikit-learn's ``StratifiedKFold``
    idea). Test rows are sorted; training rows come in a shuffled order (see the module notes).
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer) or n_splits < 2:
        raise ValueError(f"n_splits must be an integer >= 2; got {n_splits!r}.")
    if n_samples < n_splits:
        raise ValueError(f"n_splits={n_splits} folds need at least {n_splits} samples; got "
                         f"{n_samples}.")
    rng = np.random.default_rng(seed)
    if labels is None:
        fold_of = np.empty(n_samples, dtype=np.int64)
        fold_of[rng.permutation(n_samples)] = np.arange(n_samples) % n_splits
    else:
        lab = np.asarray(labels)
        if lab.shape != (n_samples,):
            raise ValueError(f"labels must have shape ({n_samples},); got {lab.shape}.")
        fold_of = np.empty(n_samples, dtype=np.int64)
        start = 0
        for c in np.unique(lab):
            members = rng.permutation(np.flatnonzero(lab == c))
            fold_of[members] = (start + np.arange(len(members))) % n_splits
            start += len(members)
    out = []
    for k in range(n_splits):
        test = np.flatnonzero(fold_of == k)
        train = rng.permutation(np.flatnonzero(fold_of != k))
        out.append((train, test))
    return out


def _splits(cv: int | Splits, X: np.ndarray, y: np.ndarray, seed: int) -> Splits:
    if isinstance(cv, bool):
        raise ValueError(f"cv must be a number of folds or (train_rows, test_rows) pairs; got "
                         f"{cv!r}.")
    if isinstance(cv, int | np.integer):
        classes = y.ndim == 1 and y.dtype.kind in "iu"
        return kfold_splits(len(X), int(cv), seed=seed, labels=y if classes else None)
    pairs = list(cv)
    if not pairs:
        raise ValueError("cv must be a number of folds >= 2 or a non-empty list of "
                         "(train_rows, test_rows) pairs.")
    n = len(X)
    checked = []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise ValueError(f"cv[{i}] must be a pair (train_rows, test_rows); got {pair!r}.")
        train, test = (np.asarray(p) for p in pair)
        for name, rows in (("train", train), ("test", test)):
            if rows.ndim != 1 or rows.dtype.kind not in "iu" or len(rows) == 0:
                raise ValueError(f"cv[{i}]'s {name} rows must be a non-empty 1-D array of "
                                 f"row indices.")
            if rows.min() < 0 or rows.max() >= n:
                raise ValueError(f"cv[{i}]'s {name} rows must lie in [0, {n - 1}].")
        checked.append((train, test))
    return checked


def _check_data(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features); got shape {X.shape}.")
    if y.ndim == 0 or len(y) != len(X):
        raise ValueError(f"X and y must have the same number of samples; got {len(X)} and "
                         f"{len(y) if y.ndim else 'a scalar'}.")
    return X, y


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def fit_and_evaluate(
    trainer: Trainer,
    X: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    *,
    epochs: int,
    batch_size: int | None,
    standardize: bool = False,
    metric: str = "loss",
) -> tuple[float, float]:
    """Fit ``trainer`` on rows ``train`` and return ``metric`` on them and on rows ``test``
    (``Trainer.evaluate``: evaluation mode, the data loss without a penalty): one point of a
    curve, as both functions here compute it."""
    X_train, X_test = X[train], X[test]
    if standardize:
        scaler = Standardizer().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    trainer.fit(X_train, y[train], epochs=epochs, batch_size=batch_size)
    on_train = trainer.evaluate(X_train, y[train])
    on_test = trainer.evaluate(X_test, y[test])
    if metric not in on_test:
        raise ValueError(f"metric {metric!r} is not recorded by this trainer; it records "
                         f"{', '.join(on_test)}.")
    return float(on_train[metric]), float(on_test[metric])


def learning_curve(
    make_trainer: Callable[[], Trainer],
    X: Any,
    y: Any,
    *,
    train_sizes: Sequence[float | int] = (0.1, 0.325, 0.55, 0.775, 1.0),
    cv: int | Splits = 5,
    epochs: int = 10,
    batch_size: int | None = 32,
    standardize: bool = False,
    metric: str = "loss",
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training and held-out ``metric`` against the number of training rows.

    Returns ``(train_sizes_abs, train_losses, test_losses)``: the sizes used (``(n_ticks,)``,
    sorted, duplicates dropped) and two ``(n_ticks, n_splits)`` arrays. For each split, a fresh
    ``make_trainer()`` is fitted on the first ``n`` training rows for each size ``n`` and
    evaluated on them and on the split's test rows. ``progress(done, total)`` is called after
    each fit. See the module notes for ``cv``, ``standardize`` and ``metric``.
    """
    X, y = _check_data(X, y)
    epochs = _count(epochs, "epochs")
    pairs = _splits(cv, X, y, seed)
    n_max = min(len(train) for train, _ in pairs)
    sizes = []
    for s in train_sizes:
        if isinstance(s, float | np.floating):
            if not 0.0 < s <= 1.0:
                raise ValueError(f"a fractional train size must lie in (0, 1]; got {s!r}.")
            n = max(1, int(np.floor(s * n_max)))
        elif isinstance(s, int | np.integer) and not isinstance(s, bool):
            if not 1 <= s <= n_max:
                raise ValueError(f"an integer train size must lie in [1, {n_max}] (the smallest "
                                 f"training part); got {s!r}.")
            n = int(s)
        else:
            raise ValueError(f"train_sizes must hold fractions in (0, 1] or row counts; got "
                             f"{s!r}.")
        sizes.append(n)
    sizes_abs = np.unique(np.asarray(sizes, dtype=np.int64))
    if len(sizes_abs) == 0:
        raise ValueError("train_sizes is empty.")
    train_out = np.empty((len(sizes_abs), len(pairs)))
    test_out = np.empty_like(train_out)
    total, done = len(sizes_abs) * len(pairs), 0
    for j, (train, test) in enumerate(pairs):
        for i, n in enumerate(sizes_abs):
            train_out[i, j], test_out[i, j] = fit_and_evaluate(
                make_trainer(), X, y, train[:n], test, epochs=epochs, batch_size=batch_size,
                standardize=standardize, metric=metric)
            done += 1
            if progress is not None:
                progress(done, total)
    return sizes_abs, train_out, test_out


def validation_curve(
    make_trainer: Callable[..., Trainer],
    X: Any,
    y: Any,
    *,
    param_name: str,
    param_range: Sequence[Any],
    cv: int | Splits = 5,
    epochs: int = 10,
    batch_size: int | None = 32,
    standardize: bool = False,
    metric: str = "loss",
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out ``metric`` against one hyperparameter.

    Returns ``(train_losses, test_losses)``, each ``(len(param_range), n_splits)``. For each split
    and value ``v``, ``make_trainer(**{param_name: v})`` is fitted on the split's training rows
    and evaluated on them and on its test rows; ``param_name="epochs"`` instead fits
    ``make_trainer()`` for ``v`` epochs. ``progress(done, total)`` is called after each fit.
    """
    X, y = _check_data(X, y)
    if not isinstance(param_name, str) or not param_name:
        raise ValueError(f"param_name must be a non-empty string; got {param_name!r}.")
    values = list(param_range)
    if not values:
        raise ValueError("param_range is empty.")
    epochs = _count(epochs, "epochs")
    pairs = _splits(cv, X, y, seed)
    train_out = np.empty((len(values), len(pairs)))
    test_out = np.empty_like(train_out)
    total, done = len(values) * len(pairs), 0
    for j, (train, test) in enumerate(pairs):
        for i, v in enumerate(values):
            if param_name == "epochs":
                trainer, n_epochs = make_trainer(), _count(v, "an epochs value")
            else:
                trainer, n_epochs = make_trainer(**{param_name: v}), epochs
            train_out[i, j], test_out[i, j] = fit_and_evaluate(
                trainer, X, y, train, test, epochs=n_epochs, batch_size=batch_size,
                standardize=standardize, metric=metric)
            done += 1
            if progress is not None:
                progress(done, total)
    return train_out, test_out
