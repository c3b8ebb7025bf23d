"""Parsing of the command line's compact option syntax and of ``--config`` TOML files.

One syntax serves every component: ``NAME[:ARG,...,KEY=VALUE,...]``, e.g. ``huber:delta=0.5``,
``exponential:gamma=0.95``, ``mlp:64,64`` or ``adam:betas=0.9,0.99``. A bare value after a
``KEY=VALUE`` extends that value into a tuple (``betas=0.9,0.99``); bare values before any key are
positional (``mlp:64,64``). The same settings can come from a TOML file whose keys are the long
options (``loss = "huber:delta=0.5"`` or a table ``[loss] name = "huber", delta = 0.5``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from losslab.losses._validation import suggest

__all__ = ["UsageError", "Spec", "parse_spec", "split_specs", "parse_value", "load_config"]


class UsageError(Exception):
    """A mistake in what the user asked for: printed as one line, exit status 2."""


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Spec:
    """``name`` plus positional ``args`` and keyword ``options`` parsed from ``NAME:...``."""

    name: str
    args: list[Any] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        return self.text or self.name


def parse_value(text: str) -> Any:
    """``'3'`` -> 3, ``'0.5'`` -> 0.5, ``'true'`` -> True, ``'none'`` -> None, else the string."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
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
    """Parse ``NAME[:ARG,...,KEY=VALUE,...]`` given for option ``what`` (e.g. ``'--loss'``).

    ``example`` is shown in the error message of a malformed spec.
    """
    if isinstance(text, Spec):
        return text
    if isinstance(text, dict):  # a TOML table: {"name": ..., key: value, ...}
        return _spec_from_table(text, what, example)
    raw = str(text).strip()
    name, sep, rest = raw.partition(":")
    name = name.strip()
    if not name or not _NAME.match(name):
        raise UsageError(
            f"{what} {raw!r} is malformed: it must start with a name, e.g. {what} {example}"
        )
    spec = Spec(name=name, text=raw)
    if not sep:
        return spec
    if not rest.strip():
        raise UsageError(
            f"{what} {raw!r} has nothing after ':'; "
            f"give options as KEY=VALUE, e.g. {what} {example}"
        )
    last_key: str | None = None
    for piece in rest.split(","):
        piece = piece.strip()
        if not piece:
            raise UsageError(
                f"{what} {raw!r} has an empty item (two commas or a trailing comma); "
                f"write e.g. {what} {example}"
            )
        if "=" in piece:
            key, _, value = piece.partition("=")
            key, value = key.strip(), value.strip()
            if not _KEY.match(key) or not value:
                raise UsageError(
                    f"{what} {raw!r}: {piece!r} is not KEY=VALUE; write e.g. {what} {example}"
                )
            if key in spec.options:
                raise UsageError(f"{what} {raw!r} sets {key!r} twice; keep one.")
            spec.options[key] = parse_value(value)
            last_key = key
        elif last_key is not None:
            prev = spec.options[last_key]
            prev = prev if isinstance(prev, tuple) else (prev,)
            spec.options[last_key] = prev + (parse_value(piece),)
        else:
            spec.args.append(parse_value(piece))
    return spec


def _spec_from_table(table: dict, what: str, example: str) -> Spec:
    if "name" not in table:
        raise UsageError(
            f"the [{what.lstrip('-')}] table in the config needs a 'name' key, "
            f"e.g. name = \"{example.split(':')[0]}\""
        )
    options = {k: (tuple(v) if isinstance(v, list) else v) for k, v in table.items()}
    name = str(options.pop("name"))
    args = list(options.pop("args", ()))
    body = ",".join([str(a) for a in args] + [f"{k}={v}" for k, v in options.items()])
    return Spec(name=name, args=args, options=options, text=name + (":" + body if body else ""))


def split_specs(text: str | list, what: str, example: str) -> list[Spec]:
    """Split ``'mse,huber:delta=0.5,l1'`` into specs.

    A comma starts a new spec only when what follows is a bare name; ``KEY=VALUE`` items and
    numbers continue the previous spec's options.
    """
    if isinstance(text, list | tuple):
        out: list[Spec] = []
        for item in text:
            out.extend(split_specs(item, what, example) if isinstance(item, str) else
                       [parse_spec(item, what, example)])
        return out
    groups: list[str] = []
    for piece in str(text).split(","):
        p = piece.strip()
        head = p.split("=", 1)[0]
        starts_new = ":" in head or ("=" not in p and bool(_NAME.match(p)))
        continues = bool(groups) and ":" in groups[-1] and not starts_new
        if continues:
            groups[-1] += "," + p
        else:
            groups.append(p)
    specs = [parse_spec(g, what, example) for g in groups]
    if not specs:
        raise UsageError(f"{what} is empty; give e.g. {what} {example}")
    return specs


# --- TOML configuration --------------------------------------------------------------------

def load_config(path: str, allowed: dict[str, Any]) -> dict[str, Any]:
    """Read a TOML file of settings; keys are the long options (``batch-size`` or ``batch_size``).

    ``allowed`` maps each accepted key (underscored) to its default; unknown keys are an error
    with the closest names suggested. A ``[train]``/``[compare]``/``[lr-find]`` table is merged
    over the top level so one file can serve several commands.
    """
    import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(
            f"config file {path!r} not found; check the path given to --config"
        ) from None
    except IsADirectoryError:
        raise UsageError(
            f"config file {path!r} is a directory; give a .toml file to --config"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(
            f"config file {path!r} is not valid TOML ({exc}); fix the syntax"
        ) from None
    except OSError as exc:
        raise UsageError(
            f"cannot read config file {path!r}: {exc.strerror}"
        ) from None
    out: dict[str, Any] = {}
    for key, value in data.items():
        k = key.replace("-", "_")
        if k in ("train", "compare", "lr_find", "predict") and isinstance(value, dict):
            continue  # per-command sections are merged by the caller
        out[k] = value
    return _check_keys(out, allowed, path)


def command_section(path: str, command: str, allowed: dict[str, Any]) -> dict[str, Any]:
    """The ``[command]`` table of a config file (already validated by ``load_config``)."""
    import tomllib

    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    section = data.get(command) or data.get(command.replace("-", "_")) or {}
    if not isinstance(section, dict):
        return {}
    return _check_keys({k.replace("-", "_"): v for k, v in section.items()}, allowed, path)


def _check_keys(values: dict[str, Any], allowed: dict[str, Any], path: str) -> dict[str, Any]:
    for k in values:
        if k not in allowed:
            raise UsageError(
                f"config file {path!r} has unknown setting {k!r}."
                + suggest(k, list(allowed))
                + " Settings are the long options without '--'."
            )
    return values


# --- defaults shared by the parser's help and the commands ---------------------------------

# Every setting a run accepts, by its underscored long-option name, with its default. The config
# file accepts exactly these keys. ``None`` means "decided from the data or the command".
RUN_DEFAULTS: dict[str, Any] = {
    "data": None,
    "target": None,
    "features": None,
    "dataset": None,
    "task": None,
    "drop_missing": False,
    "loss": None,
    "losses": "mse,l1,huber,log_cosh",
    "model": "linear",
    "activation": "relu",
    "dropout": 0.0,
    "optimizer": "adam",
    "lr": None,
    "schedule": "constant",
    "l1": 0.0,
    "l2": 0.0,
    "clip_norm": None,
    "early_stopping": None,
    "epochs": 100,
    "batch_size": 32,
    "val_split": 0.2,
    "seed": 0,
    "dtype": "float32",
    "standardize": True,
    "out": None,
    "overwrite": False,
    "quiet": False,
    "json": False,
    "plots": True,
    # lr-find
    "lr_min": 1e-6,
    "lr_max": 10.0,
    "steps": 200,
    "sweep": None,
    "sweep_points": 8,
    "sweep_epochs": 10,
    "sweep_range": "1e-4,1",
}
