"""Saving models and full training state without pickle, atomically.

A file is one NPZ archive: the arrays (parameters, optimizer moments, ...) under path-like keys,
plus ``__meta__``, a UTF-8 JSON document (as a uint8 array) holding everything else: the model's
architecture (``model.config()``), scalar optimizer and schedule state, the epoch, the random
generators' states and the history. Where a value in the JSON is an array it is written
``{"__array__": "<key>"}``. Files are read with ``np.load(..., allow_pickle=False)``: loading
runs no code.

Writes are atomic: the archive goes to a temporary file in the target's directory, is flushed
and fsync-ed, then ``os.replace``-d over the target (and the directory fsync-ed). A crash at any
point leaves either the old file or the new one, never a torn one.

``save_checkpoint``/``load_checkpoint`` cover what an exact resume needs: parameters, optimizer
state (moments, step counts, lr), schedule state, epoch, the shuffling and dropout generators,
the history and callbacks' state (EarlyStopping's best value and weights). Resuming a run
from a checkpoint gives bit-identical parameters to never having stopped.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from losslab.atomic import write_atomic

__all__ = [
    "save_model",
    "load_model",
    "save_checkpoint",
    "load_checkpoint",
    "read_metadata",
    "atomic_save_npz",
]

FORMAT_MODEL = "losslab-model"
FORMAT_CHECKPOINT = "losslab-checkpoint"
VERSION = 1
_META = "__meta__"


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
    write_atomic(path, lambda f: np.savez(f, **arrays))


def _write(path: str | os.PathLike[str], meta: dict[str, Any], arrays: dict[str, np.ndarray]):
    packed = _pack(meta, "meta", arrays)
    text = json.dumps(packed, allow_nan=True)
    arrays[_META] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    atomic_save_npz(path, arrays)


def _read(path: str | os.PathLike[str], expected: str) -> dict[str, Any]:
    try:
        with np.load(os.fspath(path), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {os.fspath(path)!r}") from None
    except (ValueError, OSError) as exc:
        raise ValueError(f"{os.fspath(path)!r} is not a readable losslab file: {exc}") from None
    if _META not in arrays:
        raise ValueError(f"{os.fspath(path)!r} is not a losslab file (no {_META} entry).")
    meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
    meta = _unpack(meta, arrays)
    fmt = meta.get("format")
    if fmt not in expected.split("|"):
        raise ValueError(f"{os.fspath(path)!r} holds a {fmt!r}, expected a {expected!r}.")
    return meta


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Everything stored in a model or checkpoint file, arrays included, as nested dicts."""
    return _read(path, f"{FORMAT_MODEL}|{FORMAT_CHECKPOINT}")


# -- models ----------------------------------------------------------------------------------


def _config(model: Any) -> dict[str, Any]:
    if not hasattr(model, "config"):
        raise TypeError(f"model must be a losslab Layer with config(); got {type(model).__name__}.")
    return model.config()


def save_model(
    model: Any, path: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> None:
    """Save architecture and parameters (and JSON-able or array ``extra``) to ``path``."""
    meta = {
        "format": FORMAT_MODEL,
        "version": VERSION,
        "model": _config(model),
        "params": {k: np.array(v) for k, v in model.parameters().items()},
        "extra": extra or {},
    }
    _write(path, meta, {})


def _build(config: dict[str, Any], params: dict[str, np.ndarray]) -> Any:
    from losslab.train.layers import Sequential, layer_from_config

    model = layer_from_config(config)
    if isinstance(model, Sequential):
        model.load_parameters(params)
    else:
        own = model.parameters()
        for k, v in params.items():
            own[k][...] = v
    return model


def load_model(path: str | os.PathLike[str], *, with_extra: bool = False) -> Any:
    """The model saved at ``path`` (a model file or a checkpoint); with ``with_extra`` the pair
    ``(model, extra)``."""
    meta = read_metadata(path)
    model = _build(meta["model"], meta["params"])
    return (model, meta.get("extra", {})) if with_extra else model


# -- training state --------------------------------------------------------------------------


def save_checkpoint(trainer: Any, path: str | os.PathLike[str], extra: dict | None = None) -> None:
    """Save everything ``trainer`` needs to continue exactly where it is."""
    model = trainer.model
    rng_states = model.rng_states() if hasattr(model, "rng_states") else []
    meta = {
        "format": FORMAT_CHECKPOINT,
        "version": VERSION,
        "model": _config(model),
        "params": {k: np.array(v) for k, v in model.parameters().items()},
        "epoch": int(trainer.epoch),
        "task": trainer.task,
        "dtype": str(trainer.dtype),
        "loss": repr(trainer.loss),
        "lr": float(trainer.optimizer.lr),
        "optimizer": trainer.optimizer.state_dict(),
        "schedule": None if trainer.schedule is None else trainer.schedule.state_dict(),
        "rng": {
            "shuffle": trainer.shuffle_rng.bit_generator.state,
            "init": trainer.init_rng.bit_generator.state,
            "dropout": rng_states,
        },
        "history": trainer.history.to_dict(),
        "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else {}
                      for cb in trainer.callbacks],
        "extra": extra or {},
    }
    _write(path, meta, {})


def load_checkpoint(trainer: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Restore the state saved by ``save_checkpoint`` into ``trainer`` (same architecture and
    optimizer type); returns the file's metadata."""
    from losslab.train.trainer import History

    meta = _read(path, FORMAT_CHECKPOINT)
    model = trainer.model
    own = model.parameters()
    saved = meta["params"]
    if set(own) != set(saved):
        raise ValueError(
            f"checkpoint {os.fspath(path)!r} has parameters {sorted(saved)}, the model has "
            f"{sorted(own)}: not the same architecture."
        )
    for k, a in own.items():
        if saved[k].shape != a.shape:
            raise ValueError(
                f"checkpoint parameter {k!r} has shape {saved[k].shape}; the model's is {a.shape}."
            )
    for k, a in own.items():
        a[...] = saved[k]
    trainer.optimizer.load_state_dict(meta["optimizer"])
    trainer.optimizer.lr = float(meta["lr"])
    if meta.get("schedule") is not None:
        if trainer.schedule is None:
            raise ValueError(
                f"checkpoint {os.fspath(path)!r} has a schedule; the trainer has none."
            )
        trainer.schedule.load_state_dict(meta["schedule"])
    trainer.shuffle_rng.bit_generator.state = meta["rng"]["shuffle"]
    trainer.init_rng.bit_generator.state = meta["rng"]["init"]
    if meta["rng"]["dropout"] and hasattr(model, "set_rng_states"):
        model.set_rng_states(meta["rng"]["dropout"])
    trainer.epoch = int(meta["epoch"])
    if meta.get("task") is not None:
        trainer.task = meta["task"]
    trainer.history = History.from_dict(meta["history"])
    states = meta.get("callbacks", [])
    for cb, state in zip(trainer.callbacks, states):
        if state and hasattr(cb, "load_state_dict"):
            cb.load_state_dict(state)
    return meta
