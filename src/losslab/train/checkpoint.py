"""Saving models and training state without pickle, atomically.

This module packs and unpacks nested dicts of arrays; what goes into them is the business of
their owners (``Layer.config``/``state_dict``, ``Trainer.state_dict``). A file is one NPZ
archive: the arrays under path-like keys, plus ``__meta__``, a UTF-8 JSON document (as a uint8
array) holding everything else. Where a value in the JSON is an array it is written
``{"__array__": "<key>"}``. Files are read with ``allow_pickle=False``: loading runs no code.

- a model file (``save_model``): ``{"format": "losslab-model", "version": 1, "model": config,
  "params": {name: array}, "extra": {...}}``;
- a checkpoint (``save_checkpoint``): ``{"format": "losslab-checkpoint", "version": 2,
  "model": config, "trainer": trainer.state_dict(), "extra": {...}}``. ``Trainer.state_dict``
  holds the parameters, the optimizer and schedule state, the epoch, the random generators, the
  history and the callbacks' state, so resuming gives bit-identical numbers.

Writes go through ``losslab.atomic.write_atomic``: a crash at any point leaves the old file or the
new one, never a torn one. A file that is empty, truncated, damaged, needs pickle or lacks what a
losslab file holds raises ``CheckpointError`` (a ValueError) saying it is "not a readable losslab
file" and why.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from typing import Any, Protocol

import numpy as np

from losslab.atomic import write_atomic
from losslab.train.layers import Layer, layer_from_config

__all__ = [
    "CheckpointError",
    "save_model",
    "load_model",
    "save_checkpoint",
    "read_checkpoint",
    "load_checkpoint",
    "read_metadata",
    "atomic_save_npz",
]

FORMAT_MODEL = "losslab-model"
FORMAT_CHECKPOINT = "losslab-checkpoint"
VERSIONS = {FORMAT_MODEL: 1, FORMAT_CHECKPOINT: 2}
_META = "__meta__"
_ZIP_MAGIC = b"PK\x03\x04"
# What Trainer.state_dict() holds; a checkpoint lacking any of it is not readable.
_TRAINER_KEYS = ("epoch", "model", "optimizer", "schedule", "rng", "history", "callbacks")


class CheckpointError(ValueError):
    """A file given as a losslab model or checkpoint cannot be read as one."""


class Stateful(Protocol):
    """What ``save_checkpoint``/``load_checkpoint`` need of a trainer."""

    @property
    def model(self) -> Layer: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# -- JSON <-> arrays -------------------------------------------------------------------------


def _pack(obj: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    """``obj`` with arrays moved into ``arrays`` (replaced by references) and tuples as lists."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"cannot save object array at {key!r} without pickle.")
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _pack(v, f"{key}/{k}", arrays) for k, v in obj.items()}
        return {"__items__": [[k, _pack(v, f"{key}/{i}", arrays)]
                              for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        return [_pack(v, f"{key}/{i}", arrays) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot save {type(obj).__name__} at {key!r} without pickle.")


def _unpack(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        if set(obj) == {"__items__"}:
            return {k: _unpack(v, arrays) for k, v in obj["__items__"]}
        return {k: _unpack(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unpack(v, arrays) for v in obj]
    return obj


def atomic_save_npz(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an NPZ archive at ``path`` atomically (losslab.atomic)."""
    # NumPy's stub reads **arrays as if a key could be its allow_pickle flag.
    write_atomic(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]


def _write(path: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    arrays: dict[str, np.ndarray] = {}
    packed = _pack(meta, "meta", arrays)
    text = json.dumps(packed, allow_nan=True)
    arrays[_META] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    atomic_save_npz(path, arrays)


def _unreadable(path: str | os.PathLike[str], why: str) -> CheckpointError:
    return CheckpointError(f"{os.fspath(path)!r} is not a readable losslab file: {why}.")


def _read_archive(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays of the NPZ file at ``path``; CheckpointError if it is not a sound one."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {os.fspath(path)!r}") from None
    except IsADirectoryError:
        raise _unreadable(path, "it is a directory") from None
    if not data:
        raise _unreadable(path, "the file is empty")
    if not data.startswith(_ZIP_MAGIC):
        raise _unreadable(path, "it is not an NPZ archive (no zip header)")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            for k in z.files:
                try:
                    arrays[k] = z[k]
                except ValueError as exc:
                    # NumPy's own message would suggest loading with pickle: never do that.
                    why = "needs pickle" if "pickle" in str(exc) else "is damaged"
                    raise _unreadable(
                        path, f"entry {k!r} {why} (losslab files never hold pickled data)"
                    ) from None
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise _unreadable(
            path, f"the NPZ archive is truncated or damaged ({type(exc).__name__})"
        ) from None
    return arrays


def _read(path: str | os.PathLike[str], expected: tuple[str, ...]) -> dict[str, Any]:
    arrays = _read_archive(path)
    if _META not in arrays:
        raise _unreadable(path, f"it is an NPZ archive but not a losslab file (no {_META} entry)")
    try:
        meta = _unpack(json.loads(arrays.pop(_META).tobytes().decode("utf-8")), arrays)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise _unreadable(path, f"its {_META} entry is damaged") from None
    if not isinstance(meta, dict):
        raise _unreadable(path, f"its {_META} entry is damaged")
    fmt = meta.get("format")
    if fmt not in VERSIONS:
        raise _unreadable(path, f"unknown format {fmt!r}")
    if fmt not in expected:
        raise CheckpointError(
            f"{os.fspath(path)!r} holds a {fmt!r}, expected a {' or '.join(map(repr, expected))}."
        )
    if meta.get("version") != VERSIONS[fmt]:
        raise _unreadable(
            path, f"{fmt} format version {meta.get('version')!r}; this losslab reads version "
            f"{VERSIONS[fmt]}"
        )
    required = ("model", "params") if fmt == FORMAT_MODEL else ("model", "trainer")
    missing = [k for k in required if not isinstance(meta.get(k), dict)]
    if fmt == FORMAT_CHECKPOINT and not missing:
        missing = [f"trainer/{k}" for k in _TRAINER_KEYS if k not in meta["trainer"]]
        if not missing and not isinstance(meta["trainer"]["model"].get("params"), dict):
            missing = ["trainer/model/params"]
    if missing:
        raise _unreadable(path, f"it lacks {', '.join(missing)}")
    return meta


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Everything stored in a model or checkpoint file, arrays included, as nested dicts."""
    return _read(path, (FORMAT_MODEL, FORMAT_CHECKPOINT))


# -- models ----------------------------------------------------------------------------------


def save_model(
    model: Layer, path: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> None:
    """Save architecture and parameters (and JSON-able or array ``extra``) to ``path``."""
    if not isinstance(model, Layer):
        raise TypeError(f"model must be a losslab Layer; got {type(model).__name__}.")
    _write(path, {
        "format": FORMAT_MODEL,
        "version": VERSIONS[FORMAT_MODEL],
        "model": model.config(),
        "params": {k: np.array(v) for k, v in model.parameters().items()},
        "extra": extra or {},
    })


def load_model(path: str | os.PathLike[str], *, with_extra: bool = False) -> Any:
    """The model saved at ``path`` (a model file or a checkpoint); with ``with_extra`` the pair
    ``(model, extra)``."""
    meta = read_metadata(path)
    is_model = meta["format"] == FORMAT_MODEL
    params = meta["params"] if is_model else meta["trainer"]["model"]["params"]
    try:
        model = layer_from_config(meta["model"])
        model.load_parameters(params)
    except (ValueError, TypeError, KeyError) as exc:
        raise _unreadable(path, f"its model does not match its parameters ({exc})") from None
    return (model, meta.get("extra", {})) if with_extra else model


# -- training state --------------------------------------------------------------------------


def save_checkpoint(
    trainer: Stateful, path: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> None:
    """Save ``trainer.state_dict()`` (and the model's architecture) to ``path``."""
    _write(path, {
        "format": FORMAT_CHECKPOINT,
        "version": VERSIONS[FORMAT_CHECKPOINT],
        "model": trainer.model.config(),
        "trainer": trainer.state_dict(),
        "extra": extra or {},
    })


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint at ``path`` as nested dicts; ``["trainer"]`` is a trainer state."""
    return _read(path, (FORMAT_CHECKPOINT,))


def load_checkpoint(trainer: Stateful, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Restore the state saved by ``save_checkpoint`` into ``trainer`` (same architecture,
    optimizer and schedule types); returns the file's metadata."""
    meta = read_checkpoint(path)
    trainer.load_state_dict(meta["trainer"])
    return meta
