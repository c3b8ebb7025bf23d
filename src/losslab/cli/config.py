"""Each command's typed configuration, built in one place from the command line and a TOML file.

Every setting is declared once, in ``SETTINGS``: its type, default, range and help text. The
argument parser, the ``--config`` file reader, the checks and the reports all read that table, so
a default lives in one place and a value is checked once, the same way wherever it came from.
Values are typed: a TOML string is never a boolean (``overwrite = "no"`` is refused, not read as
true) and a number must be finite.

Components are written in one compact syntax, ``NAME[:ARG,...,KEY=VALUE,...]``: ``huber:delta=0.5``,
``exponential:gamma=0.95``, ``mlp:64,64``, ``adam:betas=0.9,0.99``. A bare value after a
``KEY=VALUE`` extends that value into a tuple (``betas=0.9,0.99``); bare values before any key are
positional (``mlp:64,64``). In a TOML file the same is a string or a table
(``[loss] name = "huber", delta = 0.5``).

The losses are built here, with ``losslab.get``, as soon as the configuration is read: a bad option
value is reported before any data is read.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from losslab.cli.errors import UsageError

__all__ = [
    "Setting", "SETTINGS", "COMMAND_SETTINGS", "Spec", "parse_spec", "split_specs", "parse_value",
    "LossChoice", "EarlyStop", "DataConfig", "FitConfig", "OutputConfig", "RunConfig",
    "TrainConfig", "CompareConfig", "LrFindConfig", "OverfitConfig", "build", "loss_role",
    "DEFAULT_LR", "COMMAND_DEFAULTS", "default_for",
]

DEFAULT_LR = 0.02


# --- the compact NAME:KEY=VALUE syntax ----------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Spec:
    """``name`` plus positional ``args`` and keyword ``options`` parsed from ``NAME:...``."""

    name: str
    args: tuple[Any, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        return self.text or self.name


def parse_value(text: str) -> Any:
    """``'3'`` -> 3, ``'0.5'`` -> 0.5, ``'true'``/``'false'`` -> bool, ``'none'`` -> None, else the
    string. Only true and false are booleans: "no" stays a string, which a boolean option
    refuses."""
    t = text.strip()
    low = t.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    if low in ("none", "null"):
        return None
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def parse_spec(text: Any, what: str, example: str) -> Spec:
    """Parse ``NAME[:ARG,...,KEY=VALUE,...]`` (or a TOML table) given for option ``what``."""
    if isinstance(text, Spec):
        return text
    if isinstance(text, dict):
        return _spec_from_table(text, what, example)
    if not isinstance(text, str):
        raise UsageError(f"{what} must be text such as {example}; got {text!r}", flag=what)
    raw = text.strip()
    name, sep, rest = raw.partition(":")
    name = name.strip()
    if not name or not _NAME.match(name):
        raise UsageError(
            f"{what} {raw!r} is malformed: it must start with a name, e.g. {what} {example}",
            flag=what)
    if not sep:
        return Spec(name=name, text=raw)
    if not rest.strip():
        raise UsageError(f"{what} {raw!r} has nothing after ':'; give options as KEY=VALUE, "
                         f"e.g. {what} {example}", flag=what)
    args: list[Any] = []
    options: dict[str, Any] = {}
    last_key: str | None = None
    for piece in rest.split(","):
        piece = piece.strip()
        if not piece:
            raise UsageError(f"{what} {raw!r} has an empty item (two commas or a trailing comma);"
                             f" write e.g. {what} {example}", flag=what)
        if "=" in piece:
            key, _, value = piece.partition("=")
            key, value = key.strip(), value.strip()
            if not _KEY.match(key) or not value:
                raise UsageError(f"{what} {raw!r}: {piece!r} is not KEY=VALUE; write e.g. "
                                 f"{what} {example}", flag=what)
            if key in options:
                raise UsageError(f"{what} {raw!r} sets {key!r} twice; keep one.", flag=what)
            options[key] = parse_value(value)
            last_key = key
        elif last_key is not None:
            prev = options[last_key]
            prev = prev if isinstance(prev, tuple) else (prev,)
            options[last_key] = prev + (parse_value(piece),)
        else:
            args.append(parse_value(piece))
    return Spec(name=name, args=tuple(args), options=options, text=raw)


def _spec_from_table(table: dict, what: str, example: str) -> Spec:
    if "name" not in table or not isinstance(table["name"], str):
        raise UsageError(f"the [{what.lstrip('-')}] table in the config needs a 'name' string, "
                         f"e.g. name = \"{example.split(':')[0]}\"", flag=what)
    options = {k: (tuple(v) if isinstance(v, list) else v) for k, v in table.items()}
    name = str(options.pop("name"))
    args = tuple(options.pop("args", ()))
    body = ",".join([str(a) for a in args] + [f"{k}={v}" for k, v in options.items()])
    return Spec(name=name, args=args, options=options, text=name + (":" + body if body else ""))


def split_specs(text: Any, what: str, example: str) -> list[Spec]:
    """Split ``'mse,huber:delta=0.5,l1'`` into specs (a TOML list of strings or tables too).

    A comma starts a new spec only when what follows is a bare name; ``KEY=VALUE`` items and
    numbers continue the previous spec's options.
    """
    if isinstance(text, list | tuple):
        out: list[Spec] = []
        for item in text:
            out.extend(split_specs(item, what, example) if isinstance(item, str)
                       else [parse_spec(item, what, example)])
        if not out:
            raise UsageError(f"{what} is empty; give e.g. {what} {example}", flag=what)
        return out
    if not isinstance(text, str):
        raise UsageError(f"{what} must be text such as {example}; got {text!r}", flag=what)
    groups: list[str] = []
    for piece in text.split(","):
        p = piece.strip()
        head = p.split("=", 1)[0]
        starts_new = ":" in head or ("=" not in p and bool(_NAME.match(p)))
        if groups and ":" in groups[-1] and not starts_new:
            groups[-1] += "," + p
        else:
            groups.append(p)
    return [parse_spec(g, what, example) for g in groups]


# --- losses: built at once, their role read from the catalog's declared kinds -----------------


def loss_role(spec: Any) -> str | None:
    """How a catalog loss trains one model on one target column, from its declared kinds:
    "regression" (one real output against a number), "binary" (one logit or score against a
    0/1 or -1/+1 label), "multiclass" (one logit or score per class against a class index), or
    None (the loss compares something else: embeddings, distributions, probabilities)."""
    if tuple(spec.inputs) != ("input", "target"):
        return None
    if spec.layout == "elementwise":
        if spec.input_kind == "real" and spec.target_kind in ("real", "nonnegative"):
            return "regression"
        if spec.input_kind in ("logits", "scores") and spec.target_kind in ("unit_interval",
                                                                            "sign"):
            return "binary"
    if (spec.layout == "class_axis" and spec.input_kind in ("logits", "scores")
            and spec.target_kind in ("class", "class_index")):
        return "multiclass"
    return None


@dataclass(frozen=True)
class LossChoice:
    """A loss as the user wrote it (``spec``), built (``loss``), with its training role."""

    spec: Spec
    loss: Any
    role: str

    @property
    def label(self) -> str:
        return str(self.spec)


def build_loss(spec: Spec, flag: str) -> LossChoice:
    import losslab

    if spec.args:
        raise UsageError(f"{flag} {str(spec)!r}: loss options must be KEY=VALUE, e.g. "
                         f"huber:delta=0.5", flag=flag)
    if "reduction" in spec.options:
        raise UsageError(f"{flag} {str(spec)!r}: training uses reduction='mean'; drop it",
                         flag=flag)
    try:
        loss = losslab.get(spec.name, **spec.options)
    except (ValueError, TypeError) as exc:
        msg = str(exc).replace("See losslab.available() for the catalog.",
                               "'losslab losses' lists the catalog.")
        raise UsageError(f"{flag} {str(spec)!r}: {msg}", flag=flag) from None
    s = loss.spec
    role = loss_role(s)
    if role is None:
        if s.input_kind in ("probabilities", "log_probabilities"):
            why = (f"takes {s.input_kind.replace('_', '-')}, but a model's outputs are "
                   f"unbounded; choose the same loss on logits ('losslab losses' lists them)")
        else:
            why = (f"compares {', '.join(s.inputs)} ({s.task}), not one model output with one "
                   f"target column; choose a regression or classification loss")
        raise UsageError(f"{flag} {s.name!r} {why}", flag=flag)
    return LossChoice(spec=spec, loss=loss, role=role)


# --- the settings table -----------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting: ``--name-with-dashes`` on the command line, ``name`` in a TOML file."""

    name: str
    kind: str          # bool int float str path names choice spec specs early_stopping range
    default: Any
    help: str
    group: str
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    low: float | None = None       # inclusive (exclusive with strict_low)
    high: float | None = None      # exclusive
    strict_low: bool = False
    optional: bool = False         # None allowed: decided from the data or the command
    example: str = ""
    negative_flag: bool = False    # a default-True bool set off by --no-NAME
    short: str | None = None       # e.g. "-q"

    @property
    def flag(self) -> str:
        return ("--no-" if self.negative_flag else "--") + self.name.replace("_", "-")

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


_S = Setting
SETTINGS: dict[str, Setting] = {s.name: s for s in [
    # data
    _S("data", "path", None, "CSV file with a header row (or .parquet with the parquet extra)",
       "data", "FILE", optional=True),
    _S("target", "str", None, "column to predict (default: the last column)", "data", "COLUMN",
       optional=True),
    _S("features", "names", None, "feature columns to use (default: all but the target)", "data",
       "A,B,...", optional=True),
    _S("dataset", "str", None, "bundled data: article_line, outlier_line, digits, iris, "
       "diabetes, breast_cancer", "data", "NAME", optional=True),
    _S("task", "choice", None, "inferred from the loss and the target when absent", "data",
       choices=("regression", "classification"), optional=True),
    _S("drop_missing", "bool", False, "skip rows with missing values instead of stopping", "data"),
    _S("multiline", "bool", False, "accept CSV fields that span lines (quoted newlines); "
       "refused by default, since a stray quote makes one", "data"),
    _S("val_split", "float", 0.2, "fraction held out for validation", "data", "F", low=0.0,
       high=1.0),
    _S("standardize", "bool", True, "do not standardise features (default: standardise; the "
       "statistics are saved with the model)", "data", negative_flag=True),
    _S("standardize_target", "bool", True, "do not standardise a regression target (default: "
       "train on (y - mean) / std, report and predict on the original scale)", "data",
       negative_flag=True),
    # model and training
    _S("model", "spec", "linear", "linear or mlp:H1,H2,...", "model", "SPEC", example="mlp:64,64"),
    _S("activation", "str", "relu", "hidden activation: relu, leaky_relu, sigmoid, tanh, gelu",
       "model", "NAME"),
    _S("dropout", "float", 0.0, "dropout after hidden layers", "model", "P", low=0.0, high=1.0),
    _S("optimizer", "spec", "adam", "sgd, adam, adamw, rmsprop, adagrad; options e.g. "
       "adam:betas=0.9,0.99 or sgd:momentum=0.9", "model", "SPEC", example="sgd:momentum=0.9"),
    _S("lr", "float", None, f"learning rate (default {DEFAULT_LR})", "model", "RATE", low=0.0,
       strict_low=True, optional=True),
    _S("schedule", "spec", "cosine", "learning-rate schedule: cosine (annealed to 0 over the "
       "epochs; t_max defaults to --epochs), constant, step:step_size=10, "
       "exponential:gamma=0.95, cyclic:..., plateau:patience=5", "model", "SPEC",
       example="exponential:gamma=0.95"),
    _S("l1", "float", 0.0, "L1 penalty on weights, added to the loss", "model", "C", low=0.0),
    _S("l2", "float", 0.0, "L2 penalty on weights, added to the loss", "model", "C", low=0.0),
    _S("clip_norm", "float", None, "clip the gradient norm to N", "model", "N", low=0.0,
       strict_low=True, optional=True),
    _S("early_stopping", "early_stopping", None, "stop when the monitored value stalls: PATIENCE "
       "or patience=10,min_delta=0.001,monitor=val_loss", "model", "SPEC", optional=True),
    _S("epochs", "int", 100, "passes over the data", "model", "N", low=1),
    _S("batch_size", "int", 32, "mini-batch size", "model", "N", low=1),
    _S("seed", "int", 0, "fixes split, init, shuffling, dropout", "model", "N", low=0),
    _S("dtype", "choice", "float32", "floating-point type of the model", "model",
       choices=("float32", "float64")),
    # output
    _S("out", "path", None, "output directory (default ./losslab-runs/<command>-<time>)",
       "output", "DIR", optional=True),
    _S("overwrite", "bool", False, "replace --out if it holds an earlier losslab run", "output"),
    _S("quiet", "bool", False, "no progress bar or messages", "output", short="-q"),
    _S("json", "bool", False, "print the final metrics as one JSON object on stdout", "output"),
    _S("plots", "bool", True, "skip the PNG plots (report.html then has none)", "output",
       negative_flag=True),
    # train and lr-find
    _S("loss", "spec", None, "catalog loss with options, e.g. huber:delta=0.5 (default mse or "
       "cross_entropy by task; 'losslab losses' lists them)", "loss", "SPEC",
       optional=True, example="huber:delta=0.5"),
    # compare
    _S("losses", "specs", "mse,l1,huber,log_cosh", "comma-separated losses", "compare", "SPECS",
       example="mse,l1,huber:delta=0.5,log_cosh"),
    _S("folds", "int", 1, "K-fold cross-validation: each loss trained K times, each fold held "
       "out once (1: one --val-split split)", "compare", "K", low=1),
    _S("repeats", "int", 1, "repeat the splits R times with different shuffles", "compare", "R",
       low=1),
    # lr-find
    _S("lr_min", "float", 1e-6, "first rate of the range test", "range test", "RATE", low=0.0,
       strict_low=True),
    _S("lr_max", "float", 10.0, "last rate of the range test", "range test", "RATE", low=0.0,
       strict_low=True),
    _S("steps", "int", 200, "steps of the range test", "range test", "N", low=10),
    _S("sweep", "choice", None, "short runs over log-spaced (grid) or log-uniform random rates",
       "range test", choices=("grid", "random"), optional=True),
    _S("sweep_points", "int", 8, "rates in the sweep", "range test", "N", low=2),
    _S("sweep_epochs", "int", 10, "epochs per sweep run", "range test", "N", low=1),
    _S("sweep_range", "range", (1e-4, 1.0), "rates of the sweep", "range test", "LO,HI"),
    # overfit
    _S("show", "choice", "cures", "cures: the baseline and the five cures for overfitting side "
       "by side; gradients: per-layer gradient norms of deep sigmoid and ReLU networks",
       "overfit", choices=("cures", "gradients")),
    _S("train_fraction", "float", 0.05, "fraction of the training rows the baseline and the "
       "cures train on; the 'more data' cure trains on all of them", "overfit", "F", low=0.0,
       high=1.0, strict_low=True),
    _S("smaller_model", "spec", None, "the 'smaller model' cure (default: one hidden layer a "
       "quarter as wide as --model's first)", "overfit", "SPEC", optional=True,
       example="mlp:32"),
    _S("depth", "int", 10, "hidden layers of the deep networks (--show gradients)", "overfit",
       "N", low=1),
    _S("width", "int", 32, "units per hidden layer of the deep networks (--show gradients)",
       "overfit", "N", low=1),
]}

_DATA = ("data", "target", "features", "dataset", "task", "drop_missing", "multiline",
         "val_split", "standardize", "standardize_target")
_FIT = ("model", "activation", "dropout", "optimizer", "lr", "schedule", "l1", "l2", "clip_norm",
        "early_stopping", "epochs", "batch_size", "seed", "dtype")
_OUTPUT = ("out", "overwrite", "quiet", "json", "plots")
COMMAND_SETTINGS: dict[str, tuple[str, ...]] = {
    "train": _DATA + ("loss",) + _FIT + _OUTPUT,
    "compare": _DATA + ("losses", "folds", "repeats") + _FIT + _OUTPUT,
    "lr-find": _DATA + ("loss",) + _FIT + ("lr_min", "lr_max", "steps", "sweep", "sweep_points",
                                           "sweep_epochs", "sweep_range") + _OUTPUT,
    "overfit": _DATA + ("loss",) + _FIT + ("show", "train_fraction", "smaller_model", "repeats",
                                           "depth", "width") + _OUTPUT,
}

# A command whose lesson needs other starting values than the table's: a model wide enough to
# memorise a small slice, one step per epoch on that slice (full batch: steady curves), dropout
# at the textbook rate for its cure, and three learning-curve splits.
COMMAND_DEFAULTS: dict[str, dict[str, Any]] = {
    "overfit": {"model": "mlp:128,128", "batch_size": 256, "dropout": 0.5, "repeats": 3},
}


def default_for(name: str, command: str) -> Any:
    """The default of setting ``name`` in ``command`` (the command's own, else the table's)."""
    return COMMAND_DEFAULTS.get(command, {}).get(name, SETTINGS[name].default)


# --- typed configurations ---------------------------------------------------------------------


@dataclass(frozen=True)
class EarlyStop:
    patience: int = 10
    min_delta: float = 0.0
    monitor: str = "val_loss"
    restore_best_weights: bool = True
    mode: str = "auto"


@dataclass(frozen=True)
class DataConfig:
    data: str | None
    target: str | None
    features: tuple[str, ...] | None
    dataset: str | None
    task: str | None
    drop_missing: bool
    multiline: bool
    val_split: float
    standardize: bool
    standardize_target: bool


@dataclass(frozen=True)
class FitConfig:
    model: Spec
    activation: str
    dropout: float
    optimizer: Spec
    lr: float                 # the rate used (DEFAULT_LR when not given)
    schedule: Spec
    l1: float
    l2: float
    clip_norm: float | None
    early_stopping: EarlyStop | None
    epochs: int
    batch_size: int
    seed: int
    dtype: str


@dataclass(frozen=True)
class OutputConfig:
    out: str | None
    overwrite: bool
    quiet: bool
    json: bool
    plots: bool


@dataclass(frozen=True)
class RunConfig:
    """What every training command shares: data, model and training, output."""

    command: str
    data: DataConfig
    fit: FitConfig
    output: OutputConfig
    given: frozenset[str]        # settings the user set (flag or file)
    values: dict[str, Any]       # every setting's effective value, by name, for reports
    argv: tuple[str, ...]
    inputs: tuple[str, ...]      # files the run reads (never overwritten, never removed)

    def effective_settings(self) -> dict[str, Any]:
        """Every setting with the value the run used, for metrics.json and the report."""
        out: dict[str, Any] = {}
        for name, value in self.values.items():
            if name in ("out", "overwrite", "quiet", "json", "plots"):
                continue
            if value is None and name not in self.given:
                continue
            out[name] = _display(value)
        return out


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    loss: LossChoice | None


@dataclass(frozen=True)
class CompareConfig(RunConfig):
    losses: tuple[LossChoice, ...]
    folds: int
    repeats: int


@dataclass(frozen=True)
class OverfitConfig(RunConfig):
    """``losslab overfit``: ``fit`` is the baseline's training; its ``dropout``, ``l1``, ``l2``
    and ``early_stopping`` are the cures' strengths (the baseline has none of them)."""

    loss: LossChoice | None
    show: str
    train_fraction: float
    smaller_model: Spec | None
    repeats: int
    depth: int
    width: int


@dataclass(frozen=True)
class LrFindConfig(RunConfig):
    loss: LossChoice | None
    lr_min: float
    lr_max: float
    steps: int
    sweep: str | None
    sweep_points: int
    sweep_epochs: int
    sweep_range: tuple[float, float]


def _display(value: Any) -> Any:
    if isinstance(value, Spec | LossChoice):
        return str(value if isinstance(value, Spec) else value.spec)
    if isinstance(value, EarlyStop):
        return (f"patience={value.patience},min_delta={value.min_delta:g},"
                f"monitor={value.monitor},restore_best_weights={value.restore_best_weights}")
    if isinstance(value, tuple):
        return [_display(v) for v in value]
    return value


# --- reading and checking values --------------------------------------------------------------


def _where(setting: Setting, source: str | None) -> str:
    return setting.option if source is None else f"{setting.name!r} in {source}"


def _kind_name(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return repr(value)


def _from_text(setting: Setting, text: str) -> Any:
    """A command-line value (always text) in the setting's type."""
    kind = setting.kind
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"{setting.option} must be an integer; got {text!r}",
                             flag=setting.option) from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise UsageError(f"{setting.option} must be a number; got {text!r}",
                             flag=setting.option) from None
    return text


def _check(setting: Setting, value: Any, source: str | None) -> Any:
    """``value`` checked against the setting's type and range; returns the typed value."""
    where = _where(setting, source)
    flag = setting.option
    kind = setting.kind
    if value is None:
        if setting.optional:
            return None
        raise UsageError(f"{where} needs a value", flag=flag)
    if kind == "bool":
        if not isinstance(value, bool):
            raise UsageError(f"{where} must be true or false (a TOML boolean, unquoted); got "
                             f"{_kind_name(value)}", flag=flag)
        return value
    if kind in ("int", "float"):
        ok = isinstance(value, int) if kind == "int" else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            what = "an integer" if kind == "int" else "a number"
            raise UsageError(f"{where} must be {what}; got {_kind_name(value)}", flag=flag)
        if kind == "float":
            value = float(value)
            if not math.isfinite(value):
                raise UsageError(f"{where} must be a finite number; got {value!r}", flag=flag)
        low, high = setting.low, setting.high
        if low is not None and (value <= low if setting.strict_low else value < low):
            raise UsageError(f"{where} must be {'>' if setting.strict_low else '>='} {low:g}; "
                             f"got {value!r}", flag=flag)
        if high is not None and value >= high:
            raise UsageError(f"{where} must be below {high:g}; got {value!r}", flag=flag)
        return value
    if kind in ("str", "path"):
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"{where} must be a non-empty string; got {_kind_name(value)}",
                             flag=flag)
        return value
    if kind == "choice":
        if value not in setting.choices:
            raise UsageError(f"{where} must be one of {', '.join(setting.choices)}; got "
                             f"{_kind_name(value)}", flag=flag)
        return value
    if kind == "names":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise UsageError(f"{where} must be column names, e.g. a,b; got {value!r}", flag=flag)
        names = tuple(i.strip() for i in items if i.strip())
        if not names:
            raise UsageError(f"{where} names no column", flag=flag)
        return names
    if kind == "spec":
        return parse_spec(value, flag, setting.example)
    if kind == "specs":
        return tuple(split_specs(value, flag, setting.example))
    if kind == "range":
        parts = value.split(",") if isinstance(value, str) else value
        try:
            lo, hi = (float(p) for p in parts)
        except (TypeError, ValueError):
            raise UsageError(f"{where} must be LO,HI, e.g. 1e-4,1; got {value!r}",
                             flag=flag) from None
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
            raise UsageError(f"{where}: need 0 < LO < HI, e.g. 1e-4,1; got {value!r}", flag=flag)
        return (lo, hi)
    if kind == "early_stopping":
        return _early_stop(value, where)
    raise AssertionError(kind)


_ES_TYPES = {"patience": "int", "min_delta": "float", "monitor": "str",
             "restore_best_weights": "bool", "mode": "str"}


def _early_stop(value: Any, where: str) -> EarlyStop | None:
    flag = "--early-stopping"
    if value is False:
        return None
    if value is True:
        return EarlyStop()
    if isinstance(value, int) and not isinstance(value, bool):
        opts: dict[str, Any] = {"patience": value}
    elif isinstance(value, dict):
        opts = dict(value)
    elif isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        if all("=" not in p for p in parts):  # "10" or "10,0.001": patience[, min_delta]
            if len(parts) > 2:
                raise UsageError(f"{where} {value!r}: write PATIENCE[,MIN_DELTA], e.g. 10,0.001",
                                 flag=flag)
            opts = {k: parse_value(p) for k, p in zip(("patience", "min_delta"), parts)}
        else:
            opts = parse_spec("es:" + value, flag, "patience=10,min_delta=0.001").options
    else:
        raise UsageError(f"{where} must be a patience, true, or options such as "
                         f"patience=10,min_delta=0.001; got {value!r}", flag=flag)
    for k, v in opts.items():
        if k not in _ES_TYPES:
            from losslab.losses._validation import suggest

            raise UsageError(f"{where} has no option {k!r}." + suggest(k, _ES_TYPES)
                             + f" Options: {', '.join(_ES_TYPES)}", flag=flag)
        kind = _ES_TYPES[k]
        bad = (
            (kind == "int" and (isinstance(v, bool) or not isinstance(v, int) or v < 0))
            or (kind == "float" and (isinstance(v, bool) or not isinstance(v, int | float)
                                     or not math.isfinite(v) or v < 0))
            or (kind == "bool" and not isinstance(v, bool))
            or (kind == "str" and not isinstance(v, str))
        )
        if bad:
            need = {"int": "an integer >= 0", "float": "a finite number >= 0",
                    "bool": "true or false", "str": "a name"}[kind]
            raise UsageError(f"{where}: {k} must be {need}; got {_kind_name(v)}", flag=flag)
    if "mode" in opts and opts["mode"] not in ("min", "max", "auto"):
        raise UsageError(f"{where}: mode must be min, max or auto; got {opts['mode']!r}",
                         flag=flag)
    return EarlyStop(**opts)


# --- TOML files -------------------------------------------------------------------------------


_SECTIONS = {"train": "train", "compare": "compare", "lr-find": "lr-find", "lr_find": "lr-find",
             "overfit": "overfit"}


def _read_toml(path: str) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"config file {path!r} not found; check the path given to --config",
                         flag="--config") from None
    except IsADirectoryError:
        raise UsageError(f"config file {path!r} is a directory; give a .toml file to --config",
                         flag="--config") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path!r} is not valid TOML ({exc}); fix the syntax",
                         flag="--config") from None
    except UnicodeDecodeError:
        raise UsageError(f"config file {path!r} is not UTF-8 text", flag="--config") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {path!r}: {exc.strerror}",
                         flag="--config") from None


def _check_keys(table: dict[str, Any], command: str, path: str, where: str) -> dict[str, Any]:
    from losslab.losses._validation import suggest

    allowed = COMMAND_SETTINGS[command]
    out = {}
    for key, value in table.items():
        k = key.replace("-", "_")
        if k not in allowed:
            others = [c for c, names in COMMAND_SETTINGS.items() if k in names]
            if others:
                hint = (f" It is a setting of {' and '.join(others)}: put it in a "
                        f"[{others[0]}] table.")
            else:
                hint = suggest(k, list(allowed)) + " Settings are the long options without '--'."
            raise UsageError(f"config file {path!r} has unknown setting {key!r}{where}." + hint,
                             flag="--config")
        out[k] = value
    return out


def load_toml(path: str, command: str) -> dict[str, Any]:
    """The settings for ``command`` in a TOML file: the top level, then its ``[command]`` table.

    Keys are the long options (``batch-size`` or ``batch_size``). A key that is not a setting of
    ``command`` is refused, naming the command it belongs to; the other commands' tables are
    checked against their own settings. Relative paths are relative to the file.
    """
    data = _read_toml(path)
    top = {k: v for k, v in data.items() if k not in _SECTIONS}
    values = _check_keys(top, command, path, "")
    for key, section in data.items():
        if key not in _SECTIONS:
            continue
        if not isinstance(section, dict):
            raise UsageError(f"config file {path!r}: [{key}] must be a table of settings",
                             flag="--config")
        checked = _check_keys(section, _SECTIONS[key], path, f" in [{key}]")
        if _SECTIONS[key] == command:
            values.update(checked)
    base = os.path.dirname(os.path.abspath(path))
    for k in ("data", "out"):
        if isinstance(values.get(k), str) and not os.path.isabs(values[k]):
            values[k] = os.path.join(base, values[k])
    return values


# --- building a configuration -----------------------------------------------------------------


def build(args: Any, argv: Sequence[str]) -> RunConfig:
    """The typed configuration of ``args.command``: defaults, then the ``--config`` file (top
    level, then its ``[command]`` table), then the command line; every value checked once."""
    command = args.command
    names = COMMAND_SETTINGS[command]
    raw: dict[str, tuple[Any, str | None]] = {}
    config_path = getattr(args, "config", None)
    if config_path:
        for k, v in load_toml(config_path, command).items():
            raw[k] = (v, f"config file {config_path!r}")
    for name in names:
        v = getattr(args, name, None)
        if v is not None:
            s = SETTINGS[name]
            raw[name] = (_from_text(s, v) if isinstance(v, str) else v, None)
    values: dict[str, Any] = {}
    for name in names:
        s = SETTINGS[name]
        if name in raw:
            value, source = raw[name]
            values[name] = _check(s, value, source)
        else:
            default = default_for(name, command)
            values[name] = _check(s, default, None) if default is not None else None
    given = frozenset(raw)
    _cross_checks(values, given, command)
    inputs = tuple(os.path.abspath(p) for p in (values["data"], config_path) if p)
    # Losses first: their option values are checked before any data is read.
    choices: dict[str, Any] = {}
    if "loss" in values and values["loss"] is not None:
        choices["loss"] = build_loss(values["loss"], "--loss")
    if "losses" in values:
        specs = values["losses"]
        labels = [str(s) for s in specs]
        dup = next((x for x in labels if labels.count(x) > 1), None)
        if dup is not None:
            raise UsageError(f"--losses lists {dup!r} twice; give each loss once",
                             flag="--losses")
        choices["losses"] = tuple(build_loss(s, "--losses") for s in specs)
    values["schedule"] = _schedule_defaults(values, given, command)
    _check_components(values)
    lr = values["lr"] if values["lr"] is not None else DEFAULT_LR
    values["lr"] = lr
    data = DataConfig(**{k: values[k] for k in _DATA})
    fit = FitConfig(**{k: values[k] for k in _FIT})
    output = OutputConfig(**{k: values[k] for k in _OUTPUT})
    common = dict(command=command, data=data, fit=fit, output=output, given=given,
                  values=values, argv=tuple(argv), inputs=inputs)
    if command == "train":
        return TrainConfig(**common, loss=choices.get("loss"))
    if command == "compare":
        return CompareConfig(**common, losses=choices["losses"], folds=values["folds"],
                             repeats=values["repeats"])
    if command == "overfit":
        return OverfitConfig(**common, loss=choices.get("loss"),
                             **{k: values[k] for k in ("show", "train_fraction", "smaller_model",
                                                       "repeats", "depth", "width")})
    return LrFindConfig(**common, loss=choices.get("loss"),
                        **{k: values[k] for k in ("lr_min", "lr_max", "steps", "sweep",
                                                  "sweep_points", "sweep_epochs",
                                                  "sweep_range")})


def _cross_checks(values: dict[str, Any], given: frozenset[str], command: str) -> None:
    if values["data"] is not None and values["dataset"] is not None:
        raise UsageError("give either --data or --dataset, not both", flag="--data")
    if values["data"] is None and ("features" in given or "target" in given):
        which = "--target" if "target" in given else "--features"
        where = "--dataset data sets have their own target" if values["dataset"] else \
            "they name columns of a --data file"
        raise UsageError(f"{which} applies to --data files only; {where}", flag=which)
    if values["data"] is None and "multiline" in given:
        raise UsageError("--multiline applies to --data CSV files only", flag="--multiline")
    if command == "lr-find":
        if values["lr_min"] >= values["lr_max"]:
            raise UsageError(f"--lr-min ({values['lr_min']:g}) must be below --lr-max "
                             f"({values['lr_max']:g})", flag="--lr-min")
        if "schedule" in given and values["schedule"].name != "constant":
            raise UsageError("lr-find sets the learning rate itself; drop --schedule",
                             flag="--schedule")
    if command == "compare" and values["folds"] > 1 and "val_split" in given:
        raise UsageError("--folds K holds out each fold in turn; drop --val-split",
                         flag="--val-split")
    if command == "compare" and values["folds"] == 1 and values["repeats"] > 1 \
            and values["val_split"] == 0:
        raise UsageError("--repeats draws new validation splits; set --val-split > 0",
                         flag="--repeats")
    if command == "overfit":
        _overfit_checks(values, given)


# Settings that only one of overfit's two lessons reads.
_OVERFIT_ONLY = {
    "cures": ("train_fraction", "smaller_model", "repeats", "dropout", "l1", "l2",
              "early_stopping"),
    "gradients": ("depth", "width"),
}


def _overfit_checks(values: dict[str, Any], given: frozenset[str]) -> None:
    if values["val_split"] == 0:
        raise UsageError("overfitting shows on rows the model did not train on; set "
                         "--val-split > 0", flag="--val-split")
    show = values["show"]
    other = "gradients" if show == "cures" else "cures"
    for name in _OVERFIT_ONLY[other]:
        if name in given:
            flag = SETTINGS[name].option
            raise UsageError(f"{flag} applies to --show {other}, not --show {show}", flag=flag)
    if show == "gradients" and "activation" in given:
        raise UsageError("--show gradients compares sigmoid and ReLU networks itself; drop "
                         "--activation", flag="--activation")
    for name in ("dropout", "l1", "l2"):
        if name in given and values[name] == 0:
            flag = SETTINGS[name].option
            how = " (then a sweep chooses it)" if name != "dropout" else ""
            raise UsageError(f"{flag} 0 would make its cure the baseline; give a strength > 0, "
                             f"or leave {flag} out{how}", flag=flag)
    if "early_stopping" in given and values["early_stopping"] is None:
        raise UsageError("--early-stopping false would make its cure the baseline; leave it out",
                         flag="--early-stopping")


def _schedule_defaults(values: dict[str, Any], given: frozenset[str], command: str) -> Spec:
    """lr-find runs at constant rates; a cosine schedule anneals over the run's epochs unless
    told otherwise (``t_max`` filled in from --epochs)."""
    spec = values["schedule"]
    if command == "lr-find" and "schedule" not in given:
        return Spec("constant", text="constant")
    if spec.name.strip().lower() == "cosine" and not spec.args and "t_max" not in spec.options:
        options = {"t_max": values["epochs"], **spec.options}
        body = ",".join(f"{k}={v}" for k, v in options.items())
        return Spec(spec.name, (), options, f"{spec.name}:{body}")
    return spec


def _check_components(values: dict[str, Any]) -> None:
    """Optimizer, schedule and model specs checked now, with the flag that names them."""
    from losslab.cli import components

    lr = values["lr"] if values["lr"] is not None else DEFAULT_LR
    opt = components.make_optimizer(values["optimizer"], lr)
    components.make_schedule(values["schedule"], opt.lr)
    components.hidden_sizes(values["model"])
    components.check_activation(values["activation"])
