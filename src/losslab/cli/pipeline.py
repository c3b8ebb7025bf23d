"""The one pipeline train, compare and lr-find share: data -> plan -> trainer -> fit -> artifacts.

- ``load_data``: ``--data``/``--dataset`` to arrays, the task settled (flag, else the losses'
  role, else the target).
- ``make_plan``: one loss checked against the data, from the catalog's declared kinds: how many
  outputs, how targets are encoded, whether the outputs give probabilities, which metrics apply.
- ``splits`` and ``prepare``: held-out rows (one split, or K folds repeated R times), features
  standardised on the training rows (overflow and underflow refused), the regression target's
  mean and standard deviation.
- ``build_trainer`` and ``fit``: the engine's Trainer, its memory need checked before anything is
  allocated; a diverging run becomes ``TrainingDiverged``.
- ``evaluate`` and ``predictions``: held-out metrics on the target's original scale, shared with
  ``losslab predict`` through the facts stored in the model file (``model_extra``).

Every engine ValueError/TypeError raised while *building* (bad names or values) is a user mistake
and becomes a one-line UsageError naming the flag; nothing here parses an error's text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from losslab.cli.components import (
    flag_errors,
    hidden_sizes,
    make_optimizer,
    make_schedule,
)
from losslab.cli.config import FitConfig, LossChoice, RunConfig, build_loss, parse_spec
from losslab.cli.console import Console
from losslab.cli.dataio import available_memory, read_table
from losslab.cli.errors import TrainingDiverged, UsageError
from losslab.train.data import Dataset

__all__ = [
    "load_data", "Plan", "make_plan", "default_loss", "Split", "splits", "prepare",
    "build_trainer", "fit", "evaluate", "predictions", "line_fit", "model_extra",
    "history_dict", "history_csv", "schedule_note",
]


# --- data ---------------------------------------------------------------------------------------


def _task_of(role: str) -> str:
    return "regression" if role == "regression" else "classification"


def load_data(cfg: RunConfig, losses: list[LossChoice], default_dataset: str) -> Dataset:
    """Load --data/--dataset and settle the task (flag, else the losses, else the target)."""
    d = cfg.data
    task = d.task
    tasks = {_task_of(c.role) for c in losses}
    if task is None and len(tasks) == 1:
        task = next(iter(tasks))
    if d.data is not None:
        t = read_table(d.data, d.target, features=d.features, drop_missing=d.drop_missing,
                       labels_ok=(task != "regression"), multiline=d.multiline)
        notes = list(t.notes)
        if t.y is None:  # read_table reads a target column whenever one is named
            raise UsageError(f"{d.data!r} has no target column", flag="--target")
        y = t.y
        if task is None:
            task = _infer_task(y)
            if task == "classification":
                notes.append(f"task: classification (target {t.target_name!r} has "
                             f"{len(np.unique(y))} integer values; pass --task regression to "
                             f"override)")
        if task == "regression" and not t.numeric_target:
            raise UsageError(f"target column {t.target_name!r} is not numeric; a regression "
                             f"target must be numbers", flag="--target")
        if task == "classification" and t.numeric_target and np.any(y != np.round(y)):
            i = int(np.flatnonzero(y != np.round(y))[0])
            raise UsageError(
                f"target column {t.target_name!r} is continuous (e.g. {y[i]:g} on {t.unit} "
                f"{t.lines[i]}) but the loss or --task asks for classification; use a "
                f"regression loss (mse, l1, huber, log_cosh) or a column of class labels",
                flag="--loss")
        data = Dataset(X=t.X, y=y, task=task, feature_names=t.feature_names,
                       target_name=t.target_name or "y", source=d.data, notes=notes)
    else:
        from losslab.train.data import load_dataset

        name = d.dataset or default_dataset
        try:
            ds = load_dataset(name, seed=cfg.fit.seed)
        except ImportError:
            raise UsageError(f"--dataset {name!r} is scikit-learn's bundled copy: pip install "
                             f"'losslab[cli]' (or scikit-learn)", flag="--dataset") from None
        except ValueError as exc:
            raise UsageError(f"--dataset {name!r}: {exc}", flag="--dataset") from None
        if d.task is not None and d.task != ds.task:
            raise UsageError(f"data set {name!r} is a {ds.task} data set; drop --task or use "
                             f"--task {ds.task}", flag="--task")
        names = ds.feature_names or [f"x{i}" for i in range(ds.X.shape[1])]
        data = Dataset(X=np.asarray(ds.X, dtype=np.float64), y=np.asarray(ds.y), task=ds.task,
                       feature_names=list(names), target_name=ds.target_name,
                       source=f"dataset {name}", description=ds.description)
    if data.task == "classification":
        classes, idx = np.unique(data.targets, return_inverse=True)
        if len(classes) < 2:
            raise UsageError(f"target {data.target_name!r} has a single class ({classes[0]}); "
                             f"classification needs at least two", flag="--target")
        data.classes = [c.item() if hasattr(c, "item") else c for c in classes]
        data.y = idx.astype(np.int64)
    else:
        data.y = np.asarray(data.targets, dtype=np.float64)
    if len(data.targets) < 4:
        raise UsageError(f"{data.source} has only {len(data.targets)} rows; need at least 4 to "
                         f"train", flag="--data")
    return data


def _infer_task(y: np.ndarray) -> str:
    if y.dtype == object:
        return "classification"
    if np.all(y == np.round(y)) and len(np.unique(y)) <= 10 and len(np.unique(y)) < len(y) / 2:
        return "classification"
    return "regression"


def default_loss(task: str) -> LossChoice:
    return build_loss(parse_spec("mse" if task == "regression" else "cross_entropy", "--loss",
                                 "mse"), "--loss")


# --- plan ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A loss checked against the data, and what follows from its declared kinds."""

    choice: LossChoice
    out_features: int
    encoding: str          # "real" (n, 1) floats | "index" (n,) ints | "binary01" | "pm1" (n, 1)
    probabilities: bool    # do the outputs give class probabilities (logits), or only scores?
    scale_target: bool     # train on the standardised regression target

    @property
    def label(self) -> str:
        return self.choice.label

    @property
    def loss(self) -> Any:
        return self.choice.loss

    @property
    def trainer_task(self) -> str:
        return {"index": "classification", "binary01": "binary"}.get(self.encoding,
                                                                     "regression")

    @property
    def metric_names(self) -> list[str]:
        """Metrics the trainer records per epoch, on the scale it trains on (rmse and mae in
        standard deviations of the target when it is standardised; r2 is the same on both)."""
        if self.encoding == "real":
            return ["rmse", "mae", "r2"]
        return ["accuracy"] if self.encoding in ("index", "binary01") else []


def make_plan(choice: LossChoice, data: Dataset, flag: str, standardize_target: bool) -> Plan:
    s = choice.loss.spec
    name = s.name
    if data.task == "regression":
        if choice.role != "regression":
            raise UsageError(
                f"{flag} {name!r} is a classification loss but {data.source}'s target "
                f"{data.target_name!r} is continuous; use a regression loss (mse, l1, huber, "
                f"log_cosh) or pass --task classification with a column of class labels",
                flag=flag)
        if s.target_kind == "nonnegative" and np.any(data.targets < 0):
            raise UsageError(f"{flag} {name!r} models non-negative targets (counts) but the "
                             f"target has negative values; use mse, l1, huber or log_cosh",
                             flag=flag)
        # A target that must stay non-negative is not centred: its scale is part of the model.
        scale = standardize_target and s.target_kind == "real"
        return Plan(choice, 1, "real", False, scale)
    if choice.role == "regression":
        raise UsageError(f"{flag} {name!r} is a regression loss but the task is classification;"
                         f" use cross_entropy (or bce_with_logits for two classes), or --task "
                         f"regression", flag=flag)
    from losslab.train.outputs import has_probabilities

    probabilities = has_probabilities(s)
    n_classes = data.n_classes or 0
    if choice.role == "binary":
        if n_classes != 2:
            raise UsageError(f"{flag} {name!r} is a two-class loss but the target has "
                             f"{n_classes} classes; use cross_entropy", flag=flag)
        return Plan(choice, 1, "pm1" if s.target_kind == "sign" else "binary01", probabilities,
                    False)
    return Plan(choice, n_classes, "index", probabilities, False)


# --- splits and preparation ---------------------------------------------------------------------


@dataclass
class Split:
    X_train: np.ndarray           # standardised, in the run's dtype
    X_val: np.ndarray | None
    y_train: np.ndarray           # class indices or floats, original scale
    y_val: np.ndarray | None
    standardizer: Any | None      # the features' (fitted on the training rows)
    target_mean: float = 0.0      # the regression target's, on the training rows
    target_scale: float = 1.0
    label: str = "validation"

    @property
    def has_val(self) -> bool:
        return self.X_val is not None

    def eval_set(self) -> tuple[np.ndarray, np.ndarray, str]:
        if self.X_val is not None and self.y_val is not None:
            return self.X_val, self.y_val, self.label
        return self.X_train, self.y_train, "training (no --val-split)"


def splits(data: Dataset, cfg: RunConfig, folds: int = 1,
           repeats: int = 1) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """``(train rows, held-out rows)`` pairs: one ``--val-split`` split (repeated with new shuffles
    when ``repeats`` > 1), or K folds (stratified for classification), each round reshuffled."""
    from losslab.train.data import train_test_split

    n = len(data.targets)
    seed = cfg.fit.seed
    y = data.targets
    strat = y if data.task == "classification" and np.min(np.bincount(y)) >= 2 else None
    out: list[tuple[np.ndarray, np.ndarray | None]] = []
    if folds == 1:
        vs = cfg.data.val_split
        if vs == 0:
            return [(np.arange(n), None)]
        n_val = int(round(vs * n))
        if n_val < 1 or n_val >= n - 1:
            raise UsageError(f"--val-split {vs:g} leaves {n_val} of {n} rows for validation; "
                             f"choose a fraction that leaves at least one row on each side",
                             flag="--val-split")
        for r in range(repeats):
            tr, va, _, _ = train_test_split(np.arange(n), np.arange(n), test_size=vs,
                                            seed=seed + r, stratify=strat)
            out.append((tr, va))
        return out
    if folds > n // 2:
        raise UsageError(f"--folds {folds} leaves fewer than 2 rows per fold for {n} rows",
                         flag="--folds")
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        if strat is None:
            parts = np.array_split(rng.permutation(n), folds)
        else:
            # Deal each class's shuffled rows round the folds: every fold keeps the class shares.
            fold_of = np.empty(n, dtype=np.int64)
            start = 0
            for c in np.unique(strat):
                members = rng.permutation(np.flatnonzero(strat == c))
                fold_of[members] = (start + np.arange(len(members))) % folds
                start += len(members)
            parts = [np.flatnonzero(fold_of == k) for k in range(folds)]
        for k in range(folds):
            val = np.sort(parts[k])
            train = np.setdiff1d(np.arange(n), val)
            out.append((train, val))
    return out


def _check_scalable(X: np.ndarray, names: list[str], std: Any | None, dtype: str) -> None:
    """Refuse features whose standardisation (or conversion to ``dtype``) overflows or
    underflows: they would train on infinities, NaNs or zeros."""
    info = np.finfo(dtype)
    amax = np.max(np.abs(X), axis=0) if len(X) else np.zeros(X.shape[1])
    for j, name in enumerate(names):
        col = X[:, j]
        if std is not None:
            mean, scale = std.mean_[j], std.scale_[j]
            if not (math.isfinite(mean) and math.isfinite(scale)):
                raise UsageError(f"feature column {name!r} overflows when standardised (values "
                                 f"up to {amax[j]:.3g}): rescale it, e.g. divide it by a power "
                                 f"of ten", flag="--data")
            spread = float(np.max(col) - np.min(col))
            if scale == 1.0 and spread > 0 and spread < 1e-150:
                raise UsageError(f"feature column {name!r} underflows when standardised (its "
                                 f"values differ by {spread:.3g}): rescale it, e.g. multiply it "
                                 f"by a power of ten", flag="--data")
        elif amax[j] > info.max:
            raise UsageError(f"feature column {name!r} has values up to {amax[j]:.3g}, beyond "
                             f"{dtype}'s range; keep standardisation on or rescale it",
                             flag="--no-standardize")
        elif 0 < amax[j] < info.tiny:
            raise UsageError(f"feature column {name!r} has values of at most {amax[j]:.3g}, "
                             f"which underflow to 0 in {dtype}; keep standardisation on or "
                             f"rescale it", flag="--no-standardize")


def prepare(data: Dataset, cfg: RunConfig, train: np.ndarray, val: np.ndarray | None,
            label: str = "validation") -> Split:
    from losslab.train.data import Standardizer

    X, y = data.X, data.targets
    dt = cfg.fit.dtype
    Xtr, ytr = X[train], y[train]
    Xva, yva = (X[val], y[val]) if val is not None else (None, None)
    std = None
    if cfg.data.standardize:
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            std = Standardizer().fit(Xtr)
    _check_scalable(Xtr, data.feature_names, std, dt)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        Xtr_s = std.transform(Xtr) if std is not None else Xtr
        Xva_s = (std.transform(Xva) if std is not None else Xva) if Xva is not None else None
        Xtr_s, Xva_s = Xtr_s.astype(dt), None if Xva_s is None else Xva_s.astype(dt)
    if not np.all(np.isfinite(Xtr_s)) or (Xva_s is not None and not np.all(np.isfinite(Xva_s))):
        raise UsageError(f"the features of {data.source} do not fit {dt} after "
                         f"standardisation (extreme values far from the training rows'); "
                         f"rescale them or use --dtype float64", flag="--data")
    mean, scale = 0.0, 1.0
    if data.task == "regression":
        mean, scale = target_standardisation(ytr, data.target_name)
    return Split(X_train=Xtr_s, X_val=Xva_s, y_train=ytr, y_val=yva, standardizer=std,
                 target_mean=mean, target_scale=scale, label=label)


def target_standardisation(y: np.ndarray, name: str) -> tuple[float, float]:
    """``(centre, scale)`` for a regression target: its median, and the power of ten nearest its
    spread (1.4826 x the median absolute deviation, the standard deviation where that is 0).

    A power of ten keeps the target's units readable (predictions in hundreds, thousands) and
    leaves a target that is already on a unit scale unscaled, so a loss option with units (huber's
    ``delta``, smooth_l1's ``beta``) keeps its meaning there; a target in the hundreds of
    thousands trains on a unit scale, which Adam at lr 0.01 reaches in a few hundred steps.
    """
    centre = float(np.median(y))
    spread = 1.4826 * float(np.median(np.abs(y - centre)))
    if not spread > 0:
        spread = float(np.std(y))
    if not (math.isfinite(centre) and math.isfinite(spread)):
        raise UsageError(f"target {name!r} overflows when standardised; rescale it",
                         flag="--target")
    scale = 10.0 ** round(math.log10(spread)) if spread > 0 else 1.0
    return centre, scale


def target_scaling(plan: Plan, split: Split) -> tuple[float, float]:
    """``(mean, scale)`` the model's output is in: the target's when the plan standardises it."""
    return (split.target_mean, split.target_scale) if plan.scale_target else (0.0, 1.0)


def encode_targets(plan: Plan, split: Split, y: np.ndarray, dtype: str) -> np.ndarray:
    """Targets in the form the loss expects for the model's output."""
    if plan.encoding == "index":
        return y.astype(np.int64)
    if plan.encoding == "pm1":
        return (2.0 * y - 1.0).astype(dtype)[:, None]
    if plan.encoding == "real" and plan.scale_target:
        return ((y - split.target_mean) / split.target_scale).astype(dtype)[:, None]
    return y.astype(dtype)[:, None]


# --- trainer ------------------------------------------------------------------------------------


def _check_memory(fit_cfg: FitConfig, sizes: list[int], rows: int) -> None:
    """Refuse a model whose parameters, gradients, optimizer state and activations cannot fit in
    the memory available, before any of it is allocated."""
    itemsize = np.dtype(fit_cfg.dtype).itemsize
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    need = params * itemsize * 4 + rows * sum(sizes) * itemsize * 3
    avail = available_memory()
    if avail is not None and need > 0.8 * avail:
        raise UsageError(f"--model {fit_cfg.model} needs about {need / 1e9:.1f} GB "
                         f"({params:,} parameters with their gradients and optimizer state, "
                         f"activations for {rows} rows) and {avail / 1e9:.1f} GB is available;"
                         f" use smaller hidden layers", flag="--model")


def build_trainer(fit_cfg: FitConfig, plan: Plan, split: Split, lr: float | None = None,
                  init: str | None = None) -> Any:
    """The engine's Trainer for ``fit_cfg``; ``init`` overrides the layers' initialisation (the
    default is ``layers.mlp``'s: He for the ReLU family, Glorot otherwise)."""
    from losslab.train import layers
    from losslab.train.trainer import Trainer

    d = split.X_train.shape[1]
    hidden = hidden_sizes(fit_cfg.model)
    rows = max(fit_cfg.batch_size, len(split.X_train),
               0 if split.X_val is None else len(split.X_val))
    _check_memory(fit_cfg, [d, *hidden, plan.out_features], rows)
    if hidden:
        with flag_errors("--model", fit_cfg.model):
            model = layers.mlp([d, *hidden, plan.out_features], activation=fit_cfg.activation,
                               dropout=fit_cfg.dropout, init=init, dtype=fit_cfg.dtype,
                               seed=fit_cfg.seed)
    else:
        model = layers.linear_model(d, plan.out_features, dtype=fit_cfg.dtype, seed=fit_cfg.seed)
    rate = fit_cfg.lr if lr is None else lr
    optimizer = make_optimizer(fit_cfg.optimizer, rate)
    schedule = make_schedule(fit_cfg.schedule, optimizer.lr)
    regularizer = None
    if fit_cfg.l1 or fit_cfg.l2:
        from losslab.train.regularization import Regularizer

        with flag_errors("--l1/--l2", f"{fit_cfg.l1:g}/{fit_cfg.l2:g}"):
            regularizer = Regularizer(l1=fit_cfg.l1, l2=fit_cfg.l2)
    return Trainer(model, plan.loss, optimizer, schedule=schedule, regularizer=regularizer,
                   clip_norm=fit_cfg.clip_norm, metrics=plan.metric_names,
                   task=plan.trainer_task, seed=fit_cfg.seed, dtype=fit_cfg.dtype)


def early_stopping(fit_cfg: FitConfig, plan: Plan, has_val: bool) -> Any:
    """The EarlyStopping callback, its monitor checked against what this run records."""
    es = fit_cfg.early_stopping
    if es is None:
        return None
    logs = ["loss"] + [m for m in plan.metric_names if m in ("accuracy", "r2", "mae", "rmse")]
    if fit_cfg.l1 or fit_cfg.l2:
        logs.append("reg_loss")
    if has_val:
        logs += ["val_loss"] + ["val_" + m for m in plan.metric_names]
    if es.monitor not in logs:
        why = ("; set --val-split > 0 for the val_ values" if not has_val
               and es.monitor.startswith("val_") else "")
        raise UsageError(f"--early-stopping monitors {es.monitor!r}, which this run does not "
                         f"record; it can monitor {', '.join(logs)}{why}",
                         flag="--early-stopping")
    from losslab.train.callbacks import EarlyStopping

    return EarlyStopping(monitor=es.monitor, patience=es.patience, min_delta=es.min_delta,
                         restore_best_weights=es.restore_best_weights, mode=es.mode)


def progress_callback(console: Console, total: int, desc: str) -> Any:
    progress = console.progress(total, desc)
    if progress is None:
        return None
    bar = progress
    from losslab.train.callbacks import Callback

    class _Progress(Callback):
        def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
            post = {"loss": float(logs.get("loss", math.nan))}
            if "val_loss" in logs:
                post["val"] = float(logs["val_loss"])
            if "lr" in logs:
                post["lr"] = float(logs["lr"])
            bar.update(1, **post)

        def on_train_end(self, trainer: Any) -> None:
            bar.close()

    return _Progress()


def fit(trainer: Any, plan: Plan, split: Split, fit_cfg: FitConfig, console: Console,
        desc: str = "train", epochs: int | None = None, use_early_stopping: bool = True,
        callbacks: Sequence[Any] = ()) -> Any:
    """Train on ``split`` (validation rows as validation data); ``callbacks`` run before the
    early stopping and the progress line this adds."""
    from losslab.train.trainer import NonFiniteError

    dt = fit_cfg.dtype
    ytr = encode_targets(plan, split, split.y_train, dt)
    val = None
    if split.X_val is not None and split.y_val is not None:
        val = (split.X_val, encode_targets(plan, split, split.y_val, dt))
    callbacks = list(callbacks)
    if use_early_stopping:
        es = early_stopping(fit_cfg, plan, val is not None)
        if es is not None:
            callbacks.append(es)
    n_epochs = fit_cfg.epochs if epochs is None else epochs
    bar = progress_callback(console, n_epochs, desc)
    if bar is not None:
        callbacks.append(bar)
    try:
        return trainer.fit(split.X_train, ytr, epochs=n_epochs, batch_size=fit_cfg.batch_size,
                           validation_data=val, callbacks=callbacks)
    except NonFiniteError as exc:
        raise TrainingDiverged(plan.label, exc.epoch, exc.batch, str(exc)) from None


# --- outputs and metrics ------------------------------------------------------------------------


def predictions(out: np.ndarray, spec: Any, encoding: str, target_mean: float = 0.0,
                target_scale: float = 1.0) -> dict[str, np.ndarray]:
    """What a model's raw outputs mean, read from the loss it was trained with
    (``losslab.train.outputs``): ``{"value"}`` (regression, on the original scale), or
    ``{"index", "proba"}`` (classes from logits) or ``{"index", "score"}`` (from scores, which
    have no probabilities)."""
    from losslab.train import outputs

    out = np.asarray(out, dtype=np.float64)
    if encoding == "real":
        return {"value": out[:, 0] * target_scale + target_mean}
    index = outputs.predicted_labels(out, spec)
    if outputs.has_probabilities(spec):
        return {"index": index, "proba": outputs.class_probabilities(out, spec)}
    return {"index": index, "score": out if spec.layout == "class_axis" else out[:, 0]}


def evaluate(trainer: Any, plan: Plan, split: Split, X: np.ndarray, y: np.ndarray,
             dtype: str) -> dict[str, float]:
    """Held-out metrics that do not depend on the loss, on the target's original scale, plus
    the loss itself (on the scale it was trained on)."""
    from losslab.train import metrics as M

    out = np.asarray(trainer.forward(np.asarray(X, dtype=dtype)), dtype=np.float64)
    result: dict[str, float] = {}
    try:
        result["loss"] = float(plan.loss(out.astype(dtype), encode_targets(plan, split, y, dtype)))
    except (ValueError, TypeError):
        result["loss"] = math.nan
    p = predictions(out, plan.loss.spec, plan.encoding, *target_scaling(plan, split))
    if "value" in p:
        pred = p["value"]
        result.update(rmse=M.rmse(y, pred), mae=M.mae(y, pred), r2=M.r2(y, pred))
        return result
    result["accuracy"] = float(np.mean(p["index"] == y))
    if "proba" in p:
        result["log_loss"] = M.log_loss(y, p["proba"])
        result["calibration_error"] = M.calibration_error(y, p["proba"])
    else:  # a margin loss's output is a score, not a log-odds: no probabilities to judge
        result["log_loss"] = math.nan
        result["calibration_error"] = math.nan
    return result


def line_fit(trainer: Any, plan: Plan, split: Split, data: Dataset,
             dtype: str) -> dict[str, Any] | None:
    """For one-feature regression: the fitted curve on a grid and its least-squares slope."""
    if data.task != "regression" or data.X.shape[1] != 1:
        return None
    lo, hi = float(data.X[:, 0].min()), float(data.X[:, 0].max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return None
    grid = np.linspace(lo, hi, 200)
    X = split.standardizer.transform(grid[:, None]) if split.standardizer is not None \
        else grid[:, None]
    out = trainer.forward(np.asarray(X, dtype=dtype))
    pred = predictions(out, plan.loss.spec, plan.encoding, *target_scaling(plan, split))["value"]
    slope, intercept = np.polyfit(grid, pred, 1)
    return {"x": grid, "y": pred, "slope": float(slope), "intercept": float(intercept)}


def model_extra(fit_cfg: FitConfig, data: Dataset, plan: Plan, split: Split) -> dict[str, Any]:
    """What ``predict`` needs besides the weights, stored in the model file's JSON."""
    return {
        "losslab_model": 2,
        "feature_names": list(data.feature_names),
        "target_name": data.target_name,
        "task": data.task,
        "classes": data.classes,
        "encoding": plan.encoding,
        "probabilities": plan.probabilities,
        "loss": plan.label,
        "loss_name": plan.loss.spec.name,
        "model": str(fit_cfg.model),
        "activation": fit_cfg.activation,
        "dtype": fit_cfg.dtype,
        "standardizer": split.standardizer.to_dict() if split.standardizer is not None else None,
        "target_scaler": ({"mean": split.target_mean, "scale": split.target_scale}
                          if plan.scale_target else None),
    }


# --- history and notes --------------------------------------------------------------------------


def history_dict(history: Any) -> dict[str, list[float]]:
    h = getattr(history, "history", history)
    return {k: list(v) for k, v in dict(h).items()}


def history_csv(history: Any) -> str:
    """One row per epoch: ``epoch`` then the recorded values (``repr`` keeps every digit)."""
    import csv
    import io

    h = history_dict(history)
    epochs = list(getattr(history, "epochs", range(len(next(iter(h.values()), [])))))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["epoch", *h])
    for i, e in enumerate(epochs):
        w.writerow([e, *(repr(h[k][i]) for k in h)])
    return buf.getvalue()


def schedule_note(fit_cfg: FitConfig, epochs: int) -> str | None:
    """A sentence when the schedule keeps the rate below 1% of --lr for more than the last tenth
    of training (a cosine annealed over the run only reaches that in its last 6%)."""
    sched = make_schedule(fit_cfg.schedule, fit_cfg.lr)
    if type(sched).__name__ == "ReduceOnPlateau":
        return None  # its decay depends on the run
    rates = [sched.lr]
    for _ in range(epochs - 1):
        rates.append(float(sched.step(0.0)))
    floor = 0.01 * fit_cfg.lr
    low = next((i for i, r in enumerate(rates) if r < floor), None)
    if low is None or epochs - low <= epochs // 10:
        return None
    return (f"--schedule {fit_cfg.schedule} brings the learning rate from {fit_cfg.lr:g} to "
            f"{rates[-1]:.3g} by epoch {epochs}: below 1% of --lr from epoch {low + 1} on, so "
            f"the last {epochs - low} epochs barely move the weights")
