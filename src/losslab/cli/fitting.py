"""One model fitted on prepared data: what train, compare and lr-find --sweep share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from losslab.cli.build import (
    Data,
    LossPlan,
    build_early_stopping,
    build_model,
    build_optimizer,
    build_regularizer,
    build_schedule,
    encode_targets,
    flag_errors,
)
from losslab.cli.common import Console, progress_callback
from losslab.cli.options import UsageError

__all__ = ["Prepared", "prepare", "make_trainer", "fit", "final_metrics", "line_fit",
           "save_model", "model_extra"]


@dataclass
class Prepared:
    X_train: np.ndarray
    X_val: np.ndarray | None
    y_train: np.ndarray           # class indices or floats (n,), before loss encoding
    y_val: np.ndarray | None
    X_train_raw: np.ndarray
    X_val_raw: np.ndarray | None
    standardizer: Any | None


def prepare(settings: dict[str, Any], data: Data) -> Prepared:
    from losslab.train.data import Standardizer, train_test_split

    X, y = data.X, data.y
    vs = float(settings["val_split"])
    if vs > 0:
        n_val = int(round(vs * len(X)))
        if n_val < 1 or n_val >= len(X) - 1:
            raise UsageError(
                f"--val-split {vs:g} leaves {n_val} of {len(X)} rows for validation; "
                f"choose a fraction that leaves at least one row on each side"
            )
        strat = y if data.task == "classification" else None
        if strat is not None and np.min(np.bincount(y)) < 2:
            strat = None
        Xtr, Xva, ytr, yva = train_test_split(X, y, test_size=vs, seed=int(settings["seed"]),
                                              stratify=strat)
    else:
        Xtr, Xva, ytr, yva = X, None, y, None
    std = None
    Xtr_s, Xva_s = Xtr, Xva
    if settings["standardize"]:
        std = Standardizer().fit(Xtr)
        Xtr_s = std.transform(Xtr)
        Xva_s = std.transform(Xva) if Xva is not None else None
    dt = settings["dtype"]
    return Prepared(
        X_train=Xtr_s.astype(dt), X_val=None if Xva_s is None else Xva_s.astype(dt),
        y_train=ytr, y_val=yva, X_train_raw=Xtr, X_val_raw=Xva, standardizer=std,
    )


def _trainer_task(plan: LossPlan) -> tuple[str, list[str]]:
    if plan.target_kind == "index":
        return "classification", ["accuracy", "log_loss", "calibration_error"]
    if plan.target_kind == "binary01":
        return "binary", ["accuracy", "log_loss", "calibration_error"]
    if plan.target_kind == "pm1":
        return "regression", []
    return "regression", ["rmse", "mae", "r2"]


def make_trainer(settings: dict[str, Any], plan: LossPlan, data: Data, in_features: int,
                 lr: float | None = None) -> Any:
    from losslab.train.trainer import Trainer

    model = build_model(settings, in_features, plan.out_features)
    optimizer = build_optimizer(settings, lr)
    schedule = build_schedule(settings, optimizer.lr)
    task, metrics = _trainer_task(plan)
    with flag_errors("--clip-norm", settings["clip_norm"]):
        return Trainer(model, plan.loss, optimizer, schedule=schedule,
                       regularizer=build_regularizer(settings), clip_norm=settings["clip_norm"],
                       metrics=metrics, task=task, seed=int(settings["seed"]),
                       dtype=settings["dtype"])


def fit(settings: dict[str, Any], trainer: Any, plan: LossPlan, prep: Prepared,
        console: Console, desc: str = "train", epochs: int | None = None,
        early_stopping: bool = True) -> Any:
    from losslab.train.trainer import NonFiniteError

    dt = settings["dtype"]
    ytr = encode_targets(plan, prep.y_train, dt)
    val = None
    if prep.X_val is not None:
        val = (prep.X_val, encode_targets(plan, prep.y_val, dt))
    callbacks = []
    if early_stopping:
        es = build_early_stopping(settings, val is not None)
        if es is not None:
            callbacks.append(es)
    n_epochs = int(epochs if epochs is not None else settings["epochs"])
    bar = progress_callback(console, n_epochs, desc)
    if bar is not None:
        callbacks.append(bar)
    try:
        return trainer.fit(prep.X_train, ytr, epochs=n_epochs,
                           batch_size=int(settings["batch_size"]), validation_data=val,
                           callbacks=callbacks)
    except NonFiniteError as exc:
        raise UsageError(f"training with {plan.label} diverged: {exc}") from None


def final_metrics(trainer: Any, plan: LossPlan, X: np.ndarray, y: np.ndarray,
                  dtype: str) -> dict[str, float]:
    """Held-out metrics that do not depend on the loss (plus the loss itself)."""
    from losslab.train import metrics as M

    out = trainer.forward(np.asarray(X, dtype=dtype))
    out = np.asarray(out, dtype=np.float64)
    result: dict[str, float] = {}
    try:
        result["loss"] = float(plan.loss(out.astype(dtype), encode_targets(plan, y, dtype)))
    except (ValueError, TypeError):
        result["loss"] = float("nan")
    if plan.target_kind == "real":
        pred = out[:, 0]
        result.update(rmse=M.rmse(y, pred), mae=M.mae(y, pred), r2=M.r2(y, pred))
        return result
    if plan.target_kind == "index":
        z = out - out.max(axis=1, keepdims=True)
        proba = np.exp(z)
        proba /= proba.sum(axis=1, keepdims=True)
    else:
        p1 = 1.0 / (1.0 + np.exp(-np.clip(out[:, 0], -500, 500)))
        proba = np.stack([1 - p1, p1], axis=1)
    result["accuracy"] = M.accuracy(y, proba)
    if plan.target_kind == "pm1":
        # A margin loss's output is a score, not a log-odds: no probabilities to judge.
        result["log_loss"] = float("nan")
        result["calibration_error"] = float("nan")
    else:
        result["log_loss"] = M.log_loss(y, proba)
        result["calibration_error"] = M.calibration_error(y, proba)
    return result


def predict_raw(trainer: Any, prep: Prepared, X_raw: np.ndarray, dtype: str) -> np.ndarray:
    X = prep.standardizer.transform(X_raw) if prep.standardizer is not None else X_raw
    with _eval(trainer.model):
        return np.asarray(trainer.model.forward(np.asarray(X, dtype=dtype)), dtype=np.float64)


class _eval:
    def __init__(self, model: Any) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.was = getattr(self.model, "training", True)
        self.model.eval()

    def __exit__(self, *exc: Any) -> None:
        self.model.train(self.was)


def line_fit(trainer: Any, prep: Prepared, data: Data, dtype: str) -> dict[str, Any] | None:
    """For one-feature regression: the fitted curve on a grid and its least-squares slope."""
    if data.task != "regression" or data.X.shape[1] != 1:
        return None
    lo, hi = float(data.X[:, 0].min()), float(data.X[:, 0].max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return None
    grid = np.linspace(lo, hi, 200)
    pred = predict_raw(trainer, prep, grid[:, None], dtype)[:, 0]
    slope, intercept = np.polyfit(grid, pred, 1)
    return {"x": grid, "y": pred, "slope": float(slope), "intercept": float(intercept)}


def model_extra(settings: dict[str, Any], data: Data, plan: LossPlan,
                prep: Prepared | None) -> dict[str, Any]:
    """What ``predict`` needs besides the weights, stored in the model file's JSON."""
    return {
        "losslab_model": 1,
        "feature_names": list(data.feature_names),
        "target_name": data.target_name,
        "task": data.task,
        "classes": data.classes,
        "target_kind": plan.target_kind,
        "loss": plan.label,
        "model": str(settings["model"]),
        "activation": settings["activation"],
        "dtype": settings["dtype"],
        "standardizer": (prep.standardizer.to_dict()
                         if prep is not None and prep.standardizer is not None else None),
    }


def save_model(model: Any, path: str, extra: dict[str, Any]) -> None:
    from losslab.train.checkpoint import save_model as _save

    _save(model, path, extra=extra)
