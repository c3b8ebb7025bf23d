"""What train, compare and lr-find share: settings, output directory, console, progress bar."""

from __future__ import annotations

import datetime
import json
import math
import os
import shutil
import sys
import tempfile
import time
from typing import Any

from losslab.cli.options import RUN_DEFAULTS, UsageError, command_section, load_config

__all__ = ["resolve_settings", "RunDir", "Console", "progress_callback", "write_json"]

# Seconds a run must last before its progress bar appears (tqdm's ``delay``).
PROGRESS_DELAY = 1.0
PROGRESS_MININTERVAL = 0.1  # seconds between redraws

# Settings whose values are paths: relative paths in a config file are relative to that file.
_PATH_KEYS = ("data", "out")


def resolve_settings(args: Any) -> dict[str, Any]:
    """Defaults, then the config file (top level, then its ``[command]`` table), then the flags.

    ``settings["_given"]`` is the set of keys the user set (file or flag); commands use it to tell
    "not given" from "given the default value".
    """
    cli = {k: v for k, v in vars(args).items() if k in RUN_DEFAULTS and v is not None}
    config: dict[str, Any] = {}
    path = getattr(args, "config", None)
    if path:
        config = load_config(path, RUN_DEFAULTS)
        config.update(command_section(path, args.command, RUN_DEFAULTS))
        base = os.path.dirname(os.path.abspath(path))
        for k in _PATH_KEYS:
            if isinstance(config.get(k), str) and not os.path.isabs(config[k]):
                config[k] = os.path.join(base, config[k])
    settings = dict(RUN_DEFAULTS)
    settings.update(config)
    settings.update(cli)
    settings["_given"] = set(config) | set(cli)
    settings["_command"] = args.command
    _check_types(settings)
    return settings


def _check_types(s: dict[str, Any]) -> None:
    def number(key: str, *, integer: bool = False, low: float | None = None,
               high: float | None = None, strict_low: bool = False, none_ok: bool = False):
        v = s[key]
        flag = "--" + key.replace("_", "-")
        if v is None and none_ok:
            return
        ok_type = isinstance(v, int) if integer else isinstance(v, int | float)
        if isinstance(v, bool) or not ok_type:
            kind = "an integer" if integer else "a number"
            raise UsageError(f"{flag} must be {kind}; got {v!r}")
        if low is not None and (v <= low if strict_low else v < low):
            raise UsageError(f"{flag} must be {'>' if strict_low else '>='} {low:g}; got {v!r}")
        if high is not None and v >= high:
            raise UsageError(f"{flag} must be < {high:g}; got {v!r}")

    number("epochs", integer=True, low=1)
    number("batch_size", integer=True, low=1)
    number("seed", integer=True, low=0)
    number("val_split", low=0.0, high=1.0)
    number("lr", low=0.0, strict_low=True, none_ok=True)
    number("dropout", low=0.0, high=1.0)
    number("l1", low=0.0)
    number("l2", low=0.0)
    number("clip_norm", low=0.0, strict_low=True, none_ok=True)
    number("lr_min", low=0.0, strict_low=True)
    number("lr_max", low=0.0, strict_low=True)
    number("steps", integer=True, low=10)
    number("sweep_points", integer=True, low=2)
    number("sweep_epochs", integer=True, low=1)
    if s["lr_min"] >= s["lr_max"]:
        raise UsageError(f"--lr-min ({s['lr_min']:g}) must be below --lr-max ({s['lr_max']:g})")
    for key in ("data", "target", "dataset", "out"):
        if s[key] is not None and not isinstance(s[key], str):
            raise UsageError(f"--{key} must be a string; got {s[key]!r}")
    if s["data"] is not None and s["dataset"] is not None:
        raise UsageError("give either --data or --dataset, not both")
    if s["dtype"] not in ("float32", "float64"):
        raise UsageError(f"--dtype must be float32 or float64; got {s['dtype']!r}")
    if s["task"] not in (None, "regression", "classification"):
        raise UsageError(f"--task must be regression or classification; got {s['task']!r}")
    if isinstance(s["features"], str):
        s["features"] = [f.strip() for f in s["features"].split(",") if f.strip()]


class Console:
    """Human messages on stdout unless ``--quiet`` or ``--json`` (then stdout is the JSON)."""

    def __init__(self, quiet: bool, as_json: bool) -> None:
        self.quiet = bool(quiet)
        self.as_json = bool(as_json)

    def say(self, *parts: Any) -> None:
        if not (self.quiet or self.as_json):
            print(*parts, flush=True)

    def result(self, payload: dict[str, Any]) -> None:
        if self.as_json:
            print(json.dumps(_finite(payload), default=_json_default, allow_nan=False))

    @property
    def show_progress(self) -> bool:
        return not self.quiet and sys.stderr.isatty()


def _json_default(o: Any) -> Any:
    try:
        return o.item()
    except AttributeError:
        pass
    if isinstance(o, set | tuple):
        return list(o)
    return str(o)


def _finite(o: Any) -> Any:
    """Strict JSON: NaN and infinities (a metric that does not apply) become null."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    if hasattr(o, "item") and getattr(o, "ndim", 1) == 0:
        return _finite(o.item())
    return o


def write_json(path: str, payload: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(_finite(payload), fh, indent=2, default=_json_default, allow_nan=False)
        fh.write("\n")


class RunDir:
    """The run's output directory, written all-or-nothing.

    Files go into a hidden temporary directory next to the destination; ``commit`` renames it into
    place. If anything fails before that, the temporary directory is removed, so the destination
    never holds a partial run (and a directory that existed before is left untouched).
    """

    def __init__(self, out: str | None, command: str, overwrite: bool = False) -> None:
        if out is None:
            parent = os.path.abspath("losslab-runs")
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            name = f"{command}-{stamp}"
            final = os.path.join(parent, name)
            k = 2
            while os.path.exists(final):
                final = os.path.join(parent, f"{name}-{k}")
                k += 1
        else:
            final = os.path.abspath(out)
            if os.path.exists(final):
                if not os.path.isdir(final):
                    raise UsageError(f"--out {out!r} is a file; give a directory path")
                if os.listdir(final) and not overwrite:
                    raise UsageError(
                        f"--out {out!r} already exists and is not empty; choose another --out "
                        f"or pass --overwrite to replace it"
                    )
        self.final = final
        self.tmp: str | None = None
        self._made_parent: str | None = None

    def __enter__(self) -> RunDir:
        parent = os.path.dirname(self.final)
        if not os.path.isdir(parent):
            # Remember the topmost directory we create, to remove it again on failure.
            top = parent
            while not os.path.isdir(os.path.dirname(top)):
                top = os.path.dirname(top)
            try:
                os.makedirs(parent)
            except OSError as exc:
                raise UsageError(
                    f"cannot create output directory {parent!r}: {exc.strerror}"
                ) from None
            self._made_parent = top
        try:
            self.tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(self.final)}.tmp-", dir=parent)
        except OSError as exc:
            raise UsageError(f"cannot write to {parent!r}: {exc.strerror}; choose another --out") \
                from None
        return self

    def path(self, name: str) -> str:
        assert self.tmp is not None
        return os.path.join(self.tmp, name)

    def commit(self) -> str:
        assert self.tmp is not None
        old = None
        if os.path.exists(self.final):
            old = f"{self.tmp}.old"
            os.rename(self.final, old)
        # mkdtemp made it private (0700); give it the permissions of a normal new directory.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o777 & ~umask)
        os.rename(self.tmp, self.final)
        self.tmp = None
        if old:
            shutil.rmtree(old, ignore_errors=True)
        return self.final

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
            if self._made_parent and os.path.isdir(self._made_parent):
                try:
                    os.removedirs(os.path.dirname(self.final))
                except OSError:
                    pass


def progress_callback(console: Console, total_epochs: int, desc: str = "train") -> Any:
    """A callback drawing a tqdm bar (epoch, loss, val loss, lr) on stderr, or None.

    The bar appears only once a run has lasted a second (tqdm's ``delay``), so quick runs stay
    quiet; it is off with --quiet and when stderr is not a terminal.
    """
    if not console.show_progress:
        return None
    from tqdm import tqdm

    from losslab.train.callbacks import Callback

    class _Progress(Callback):
        def on_train_begin(self, trainer: Any) -> None:
            self.bar = tqdm(total=total_epochs, desc=desc, unit="epoch", delay=PROGRESS_DELAY,
                            mininterval=PROGRESS_MININTERVAL, file=sys.stderr,
                            dynamic_ncols=True, leave=False)
            self.t0 = time.perf_counter()

        def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
            post = {"loss": f"{logs.get('loss', float('nan')):.4g}"}
            if "val_loss" in logs:
                post["val"] = f"{logs['val_loss']:.4g}"
            if "lr" in logs:
                post["lr"] = f"{logs['lr']:.3g}"
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)

        def on_train_end(self, trainer: Any) -> None:
            self.bar.close()

    return _Progress()
