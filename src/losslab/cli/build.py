"""From settings to engine objects: data, task, loss, model, optimizer, schedule, regularizer.

Every engine ValueError/TypeError raised while *building* (unknown names, bad option values) is a
user mistake and becomes a one-line UsageError naming the flag; errors during training are not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from losslab.cli.catalog import get_loss
from losslab.cli.dataio import read_csv
from losslab.cli.options import Spec, UsageError, parse_spec

__all__ = ["Data", "load_data", "LossPlan", "plan_loss", "build_model", "build_optimizer",
           "build_schedule", "build_regularizer", "build_early_stopping", "flag_errors"]

REGRESSION_TASKS = ("regression", "count regression")
CLASSIFICATION_TASKS = ("binary", "multiclass", "classification")
_SUGGEST_REG = "mse, l1, huber, log_cosh"
_SUGGEST_CLS = "cross_entropy, bce_with_logits (two classes)"


@contextlib.contextmanager
def flag_errors(flag: str, value: Any) -> Iterator[None]:
    """Turn an engine ValueError/TypeError into ``losslab: error: FLAG VALUE: message``."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if "needs the option" in msg:
            needed = [k.strip(" .") for k in msg.split("needs the option", 1)[1].split(",")]
            example = ",".join(f"{k}=VALUE" for k in needed)
            raise UsageError(
                f"{flag} {str(value)!r} needs the option{'s' if len(needed) > 1 else ''} "
                f"{', '.join(needed)}: write e.g. {flag} {str(value).split(':')[0]}:{example}"
            ) from None
        raise UsageError(f"{flag} {str(value)!r}: {msg}") from None


@dataclass
class Data:
    X: np.ndarray                 # float64 (n, d)
    y: np.ndarray                 # float64 (n,) regression, int64 class index classification
    task: str                     # "regression" | "classification"
    feature_names: list[str]
    target_name: str
    source: str                   # what to call it in messages and the report
    classes: list[Any] | None = None
    notes: list[str] = field(default_factory=list)
    description: str = ""

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes is not None else 0


def _loss_tasks(specs: list[Spec]) -> set[str]:
    tasks = set()
    for s in specs:
        task = get_loss(s.name, {}, "--loss").spec.task
        if task in REGRESSION_TASKS:
            tasks.add("regression")
        elif task in CLASSIFICATION_TASKS:
            tasks.add("classification")
    return tasks


def load_data(settings: dict[str, Any], loss_specs: list[Spec], default_dataset: str) -> Data:
    """Load --data/--dataset and settle the task (flag, else the loss, else the target)."""
    task = settings["task"]
    loss_tasks = _loss_tasks(loss_specs)
    if task is None and len(loss_tasks) == 1:
        task = next(iter(loss_tasks))
    if settings["data"] is not None:
        t = read_csv(
            settings["data"], settings["target"], features=settings["features"],
            drop_missing=bool(settings["drop_missing"]), labels_ok=(task == "classification"),
        )
        notes = list(t.notes)
        y = t.y
        if task is None:
            task = _infer_task(y)
            if task == "classification":
                notes.append(
                    f"task: classification (target {t.target_name!r} has "
                    f"{len(np.unique(y))} integer values; pass --task regression to override)"
                )
        if task == "regression" and not t.numeric_target:
            raise UsageError(f"target column {t.target_name!r} is not numeric; "
                             "a regression target must be numbers")
        if task == "classification" and t.numeric_target and np.any(y != np.round(y)):
            i = int(np.flatnonzero(y != np.round(y))[0])
            raise UsageError(
                f"target column {t.target_name!r} is continuous (e.g. {y[i]:g} on line "
                f"{t.lines[i]}) but the loss or --task asks for classification; use a "
                f"regression loss ({_SUGGEST_REG}) or a column of class labels"
            )
        data = Data(X=t.X, y=y, task=task, feature_names=t.feature_names,
                    target_name=t.target_name or "y", source=settings["data"], notes=notes)
    else:
        from losslab.train.data import load_dataset

        name = settings["dataset"] or default_dataset
        with flag_errors("--dataset", name):
            ds = load_dataset(name, seed=int(settings["seed"]))
        if settings["features"]:
            raise UsageError("--features applies to --data CSV files, not to --dataset")
        if settings["task"] is not None and settings["task"] != ds.task:
            raise UsageError(
                f"data set {name!r} is a {ds.task} data set; drop --task or use --task {ds.task}"
            )
        task = ds.task
        names = ds.feature_names or [f"x{i}" for i in range(ds.X.shape[1])]
        data = Data(X=np.asarray(ds.X, dtype=np.float64), y=np.asarray(ds.y), task=task,
                    feature_names=list(names), target_name=ds.target_name,
                    source=f"dataset {name}", description=ds.description)
    if data.task == "classification":
        classes, idx = np.unique(data.y, return_inverse=True)
        if len(classes) < 2:
            raise UsageError(
                f"target {data.target_name!r} has a single class ({classes[0]}); "
                f"classification needs at least two"
            )
        data.classes = [c.item() if hasattr(c, "item") else c for c in classes]
        data.y = idx.astype(np.int64)
    else:
        data.y = np.asarray(data.y, dtype=np.float64)
    if len(data.y) < 4:
        raise UsageError(f"{data.source} has only {len(data.y)} rows; need at least 4 to train")
    return data


def _infer_task(y: np.ndarray) -> str:
    if y.dtype == object:
        return "classification"
    if np.all(y == np.round(y)) and len(np.unique(y)) <= 10 and len(np.unique(y)) < len(y) / 2:
        return "classification"
    return "regression"


@dataclass
class LossPlan:
    """A loss checked against the task, and how the model's outputs and targets must look."""

    spec: Spec
    loss: Any
    out_features: int
    target_kind: str   # "real" (n, 1) floats | "index" (n,) ints | "binary01" | "pm1" (n, 1)

    @property
    def label(self) -> str:
        return str(self.spec)


def plan_loss(spec: Spec, data: Data, flag: str = "--loss") -> LossPlan:
    if spec.args:
        raise UsageError(
            f"{flag} {str(spec)!r}: loss options must be KEY=VALUE, e.g. huber:delta=0.5"
        )
    if "reduction" in spec.options:
        raise UsageError(f"{flag} {str(spec)!r}: training uses reduction='mean'; drop it")
    loss = get_loss(spec.name, spec.options, flag)
    task = loss.spec.task
    name = loss.name
    if data.task == "regression":
        if task in CLASSIFICATION_TASKS:
            raise UsageError(
                f"{flag} {name!r} is a {task} classification loss but {data.source}'s target "
                f"{data.target_name!r} is continuous; use a regression loss ({_SUGGEST_REG}) "
                f"or pass --task classification with a column of class labels"
            )
        if task not in REGRESSION_TASKS:
            raise UsageError(_not_trainable(flag, loss))
        if task == "count regression" and np.any(data.y < 0):
            raise UsageError(f"{flag} {name!r} models counts but the target has negative values;"
                             f" use {_SUGGEST_REG}")
        return LossPlan(spec, loss, 1, "real")
    if task in REGRESSION_TASKS:
        raise UsageError(
            f"{flag} {name!r} is a regression loss but the task is classification; "
            f"use {_SUGGEST_CLS}, or --task regression"
        )
    if task == "binary":
        if data.n_classes != 2:
            raise UsageError(
                f"{flag} {name!r} is a two-class loss but the target has {data.n_classes} "
                f"classes; use cross_entropy"
            )
        return LossPlan(spec, loss, 1, "pm1" if loss.spec.target_kind == "sign" else "binary01")
    if task in ("multiclass", "classification"):
        return LossPlan(spec, loss, data.n_classes, "index")
    raise UsageError(_not_trainable(flag, loss))


def _not_trainable(flag: str, loss: Any) -> str:
    return (
        f"{flag} {loss.name!r} ({loss.spec.task}; inputs {', '.join(loss.spec.inputs)}) does not "
        f"fit one model output against one target column; use a regression loss "
        f"({_SUGGEST_REG}) or a classification loss ({_SUGGEST_CLS})"
    )


def encode_targets(plan: LossPlan, y: np.ndarray, dtype: str) -> np.ndarray:
    """Targets in the form the loss expects for the model's output."""
    if plan.target_kind == "index":
        return y.astype(np.int64)
    if plan.target_kind == "pm1":
        return (2.0 * y - 1.0).astype(dtype)[:, None]
    return y.astype(dtype)[:, None]


def default_loss(task: str) -> str:
    return "mse" if task == "regression" else "cross_entropy"


def build_model(settings: dict[str, Any], in_features: int, out_features: int) -> Any:
    from losslab.train import layers

    spec = parse_spec(settings["model"], "--model", "mlp:64,64")
    name = spec.name.lower()
    if name == "linear":
        if spec.args or spec.options:
            raise UsageError("--model linear takes no options; for hidden layers use mlp:64,64")
        with flag_errors("--model", spec):
            return layers.linear_model(in_features, out_features, dtype=settings["dtype"],
                                       seed=int(settings["seed"]))
    if name == "mlp":
        hidden = list(spec.args) + list(spec.options.pop("hidden", ()) or ())
        if not hidden or any(not isinstance(h, int) or isinstance(h, bool) or h < 1
                             for h in hidden):
            raise UsageError(
                f"--model {str(spec)!r}: give hidden layer sizes as positive integers, "
                f"e.g. --model mlp:64,64"
            )
        if spec.options:
            raise UsageError(f"--model {str(spec)!r}: unknown option "
                             f"{next(iter(spec.options))!r}; write mlp:H1,H2,...")
        with flag_errors("--activation", settings["activation"]):
            return layers.mlp([in_features, *hidden, out_features],
                              activation=settings["activation"], dropout=settings["dropout"],
                              dtype=settings["dtype"], seed=int(settings["seed"]))
    from losslab.losses._validation import suggest

    raise UsageError(
        f"unknown --model {spec.name!r}." + suggest(name, ["linear", "mlp"])
        + " Use linear or mlp:H1,H2,... (e.g. mlp:64,64)"
    )


def build_optimizer(settings: dict[str, Any], lr: float | None = None) -> Any:
    from losslab.train import optimizers

    spec = parse_spec(settings["optimizer"], "--optimizer", "adam:betas=0.9,0.99")
    if spec.args:
        raise UsageError(f"--optimizer {str(spec)!r}: options must be KEY=VALUE, "
                         f"e.g. sgd:momentum=0.9")
    options = dict(spec.options)
    if "lr" in options:
        raise UsageError(f"--optimizer {str(spec)!r}: set the learning rate with --lr")
    options["lr"] = lr if lr is not None else _lr(settings)
    with flag_errors("--optimizer", spec):
        return optimizers.make_optimizer(spec.name, **options)


def _lr(settings: dict[str, Any]) -> float:
    return float(settings["lr"]) if settings["lr"] is not None else 0.01


def build_schedule(settings: dict[str, Any], lr: float | None = None) -> Any:
    from losslab.train import schedules

    spec = parse_spec(settings["schedule"], "--schedule", "exponential:gamma=0.95")
    if spec.args:
        raise UsageError(f"--schedule {str(spec)!r}: options must be KEY=VALUE, "
                         f"e.g. exponential:gamma=0.95")
    with flag_errors("--schedule", spec):
        return schedules.make_schedule(spec.name, lr if lr is not None else _lr(settings),
                                       **spec.options)


def build_regularizer(settings: dict[str, Any]) -> Any:
    l1, l2 = float(settings["l1"]), float(settings["l2"])
    if l1 == 0 and l2 == 0:
        return None
    from losslab.train import regularization

    with flag_errors("--l1/--l2", f"{l1:g}/{l2:g}"):
        return regularization.Regularizer(l1=l1, l2=l2)


def build_early_stopping(settings: dict[str, Any], has_validation: bool) -> Any:
    value = settings["early_stopping"]
    if value is None or value is False:
        return None
    if value is True:
        value = "patience=10"
    if isinstance(value, int):
        value = f"patience={value}"
    if isinstance(value, dict):
        opts = dict(value)
    else:
        text = str(value)
        parts = [p.strip() for p in text.split(",")]
        if all("=" not in p for p in parts):  # "10" or "10,0.001": patience[, min_delta]
            keys = ["patience", "min_delta"]
            if len(parts) > 2:
                raise UsageError(f"--early-stopping {text!r}: write PATIENCE[,MIN_DELTA], "
                                 f"e.g. --early-stopping 10,0.001")
            text = "es:" + ",".join(f"{k}={p}" for k, p in zip(keys, parts))
        else:
            text = "es:" + text
        opts = parse_spec(text, "--early-stopping", "patience=10,min_delta=0.001").options
    if not has_validation:
        raise UsageError("--early-stopping watches the validation loss; set --val-split > 0")
    from losslab.train.callbacks import EarlyStopping

    allowed = {"patience", "min_delta", "monitor", "restore_best_weights", "mode"}
    for k in opts:
        if k not in allowed:
            from losslab.losses._validation import suggest

            raise UsageError(f"--early-stopping has no option {k!r}." + suggest(k, allowed)
                             + " Options: patience, min_delta, restore_best_weights")
    with flag_errors("--early-stopping", value):
        return EarlyStopping(**opts)
