"""Evaluation metrics: plain NumPy functions ``metric(y_true, y_pred) -> float``.

Classification metrics take either labels or per-class scores (logits or probabilities, shape
``(n, C)``) as ``y_pred``; scores are reduced with ``argmax``. Probability metrics (``log_loss``,
``calibration_error``) take probabilities. Regression metrics take same-length arrays; with
several outputs they average over outputs (scikit-learn's ``multioutput="uniform_average"``).

``StreamingMetric`` accumulates the sufficient statistics of a metric batch by batch, so the
trainer can report training metrics without a second pass over the data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from losslab.losses._validation import suggest

__all__ = [
    "accuracy",
    "r2",
    "mae",
    "rmse",
    "log_loss",
    "calibration_error",
    "METRICS",
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "StreamingMetric",
    "get_metric",
]


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape[:1] != y_pred.shape[:1]:
        raise ValueError(
            f"y_pred must have as many rows as y_true ({y_true.shape[0] if y_true.ndim else 0}); "
            f"got shape {y_pred.shape}."
        )
    return y_true, y_pred


def _labels(y_pred: np.ndarray) -> np.ndarray:
    """Class labels from labels, (n, C) scores, or (n,)/(n, 1) binary probabilities."""
    if y_pred.ndim == 2 and y_pred.shape[1] > 1:
        return np.argmax(y_pred, axis=1)
    y_pred = y_pred.reshape(len(y_pred))
    if np.issubdtype(y_pred.dtype, np.floating) and not np.all(y_pred == np.round(y_pred)):
        return (y_pred >= 0.5).astype(np.int64)  # binary probabilities
    return y_pred


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of correct labels: ``mean(y_pred == y_true)``; scores are argmax-ed first."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(_labels(y_pred) == y_true.reshape(len(y_true))))


def _regression_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = y_true.reshape(len(y_true), -1).astype(np.float64)
    y_pred = y_pred.reshape(len(y_pred), -1).astype(np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_pred must have shape {y_true.shape}; got {y_pred.shape}.")
    return y_true, y_pred


def r2(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (scikit-learn's ``r2_score``).

    A constant ``y_true`` gives 1.0 for a perfect prediction and 0.0 otherwise, as scikit-learn.
    """
    y_true, y_pred = _regression_pair(y_true, y_pred)
    ss_res = np.sum((y_true - y_pred) ** 2, axis=0)
    ss_tot = np.sum((y_true - y_true.mean(axis=0)) ** 2, axis=0)
    return float(np.mean(_r2_from_sums(ss_res, ss_tot)))


def _r2_from_sums(ss_res: np.ndarray, ss_tot: np.ndarray) -> np.ndarray:
    ss_res = np.asarray(ss_res, dtype=np.float64)
    ss_tot = np.asarray(ss_tot, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - ss_res / ss_tot
    return np.where(ss_tot > 0, out, np.where(ss_res == 0, 1.0, 0.0))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error ``mean(|y_true - y_pred|)``."""
    y_true, y_pred = _regression_pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error ``sqrt(mean((y_true - y_pred)^2))`` (averaged over outputs)."""
    y_true, y_pred = _regression_pair(y_true, y_pred)
    return float(np.mean(np.sqrt(np.mean((y_true - y_pred) ** 2, axis=0))))


def _probabilities(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true, proba = _pair(y_true, proba)
    proba = proba.astype(np.float64)
    if proba.ndim == 1 or (proba.ndim == 2 and proba.shape[1] == 1):
        p1 = proba.reshape(-1)
        proba = np.stack([1.0 - p1, p1], axis=1)  # binary: probability of class 1
    if proba.ndim != 2:
        raise ValueError(f"proba must have shape (n, n_classes); got {proba.shape}.")
    if np.any(proba < 0) or np.any(proba > 1):
        raise ValueError("proba must hold probabilities in [0, 1].")
    y_true = y_true.reshape(-1)
    if not np.issubdtype(y_true.dtype, np.integer):
        if not np.all(y_true == np.round(y_true)):
            raise ValueError("y_true must hold integer class labels.")
        y_true = y_true.astype(np.int64)
    if y_true.size and (y_true.min() < 0 or y_true.max() >= proba.shape[1]):
        raise ValueError(f"y_true labels must lie in [0, {proba.shape[1] - 1}].")
    return y_true, proba


def log_loss(y_true: Any, proba: Any) -> float:
    """Mean negative log-likelihood ``-mean(log p[i, y_i])`` of probabilities ``proba``.

    Probabilities are clipped to ``[eps, 1]`` (float64 machine epsilon), as scikit-learn does, so
    a confident mistake costs a large finite number rather than inf. To train, use the
    ``cross_entropy`` loss on logits, which needs no clipping.
    """
    y_true, proba = _probabilities(y_true, proba)
    p = np.take_along_axis(proba, y_true[:, None], axis=1)[:, 0]
    return float(-np.mean(np.log(np.clip(p, np.finfo(np.float64).eps, 1.0))))


def calibration_error(y_true: Any, proba: Any, n_bins: int = 15) -> float:
    """Expected calibration error over ``n_bins`` equal-width bins of the max probability.

    ``ECE = sum_b |B_b|/n * |accuracy(B_b) - confidence(B_b)|`` with bins ``(k/M, (k+1)/M]``
    (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017).
    """
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}.")
    y_true, proba = _probabilities(y_true, proba)
    if len(y_true) == 0:
        return 0.0
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    # Bin k holds (k/M, (k+1)/M]; confidence 0 (impossible for a max-probability) goes to bin 0.
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    gap = np.bincount(bins, weights=correct - conf, minlength=n_bins)
    return float(np.sum(np.abs(gap)) / len(y_true))


METRICS: dict[str, Callable[[Any, Any], float]] = {
    "accuracy": accuracy,
    "r2": r2,
    "mae": mae,
    "rmse": rmse,
    "log_loss": log_loss,
    "calibration_error": calibration_error,
}
# Metrics computed from model outputs (logits) by default for each task.
CLASSIFICATION_METRICS = ("accuracy",)
REGRESSION_METRICS = ("r2", "mae")


def get_metric(name: str) -> Callable[[Any, Any], float]:
    """The metric function called ``name`` (a ValueError lists the choices otherwise)."""
    if name not in METRICS:
        raise ValueError(
            f"unknown metric {name!r}." + suggest(str(name), METRICS)
            + f" Available: {', '.join(METRICS)}."
        )
    return METRICS[name]


class StreamingMetric:
    """Batch-by-batch accumulation of a metric, equal to the metric over all batches at once.

    Supported: accuracy, r2, mae, rmse (sufficient statistics are sums). ``update`` takes the
    batch's targets and the model's raw outputs (logits for classification).
    """

    SUPPORTED = ("accuracy", "r2", "mae", "rmse")

    def __init__(self, name: str) -> None:
        if name not in self.SUPPORTED:
            raise ValueError(f"metric {name!r} cannot be streamed; use one of {self.SUPPORTED}.")
        self.name = name
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.sums: Any = None

    def update(self, y_true: np.ndarray, output: np.ndarray) -> None:
        if self.name == "accuracy":
            hits = float(np.count_nonzero(_labels(output) == y_true.reshape(len(y_true))))
            self.sums = (self.sums or 0.0) + hits
            self.n += len(y_true)
            return
        y = y_true.reshape(len(y_true), -1)
        diff = output.reshape(y.shape) - y
        if self.name == "mae":
            stats = [np.abs(diff).sum(axis=0, dtype=np.float64)]
        elif self.name == "rmse":
            stats = [np.einsum("ij,ij->j", diff, diff, dtype=np.float64)]
        else:  # r2: residual sum of squares and the moments of y
            y64 = y.astype(np.float64)
            stats = [
                np.einsum("ij,ij->j", diff, diff, dtype=np.float64),
                y64.sum(axis=0),
                np.einsum("ij,ij->j", y64, y64),
            ]
        self.sums = stats if self.sums is None else [a + b for a, b in zip(self.sums, stats)]
        self.n += len(y)

    def result(self) -> float:
        if self.n == 0:
            return float("nan")
        if self.name == "accuracy":
            return float(self.sums / self.n)
        if self.name == "mae":
            return float(np.mean(self.sums[0] / self.n))
        if self.name == "rmse":
            return float(np.mean(np.sqrt(self.sums[0] / self.n)))
        sse, sy, syy = self.sums
        ss_tot = np.maximum(syy - sy * sy / self.n, 0.0)
        return float(np.mean(_r2_from_sums(sse, ss_tot)))
