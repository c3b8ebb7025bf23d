"""What a training run measured, epoch by epoch."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable
from typing import Any

from losslab.atomic import write_atomic

__all__ = ["History"]


class History:
    """Per-epoch records: ``history["loss"][e]`` is the value after epoch ``epochs[e]``.

    Keys: ``loss``, ``val_loss``, ``lr``, metric names and ``val_<metric>``,
    ``grad_norm/<param>``, ``reg_loss`` (with a regulariser). Every list has one entry per epoch
    (NaN where a value was not measured that epoch).
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        n = len(self.epochs)
        for k, v in logs.items():
            if k not in self.history:
                self.history[k] = [math.nan] * n
            self.history[k].append(float(v))
        for col in self.history.values():
            if len(col) == n:
                col.append(math.nan)
        self.epochs.append(int(epoch))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __contains__(self, key: object) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epochs)

    def keys(self) -> Iterable[str]:
        return self.history.keys()

    def last(self) -> dict[str, float]:
        return {k: v[-1] for k, v in self.history.items()} if self.epochs else {}

    # -- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``{"epochs": [...], "history": {key: [...]}}``, copied (JSON-able)."""
        return {
            "epochs": list(self.epochs),
            "history": {k: list(v) for k, v in self.history.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs = [int(e) for e in state.get("epochs", [])]
        self.history = {k: [float(x) for x in v] for k, v in state.get("history", {}).items()}

    to_dict = state_dict

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> History:
        h = cls()
        h.load_state_dict(state)
        return h

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """One row per epoch, columns ``epoch`` then the keys in insertion order (atomic write)."""
        keys = list(self.history)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["epoch", *keys])
        for i, e in enumerate(self.epochs):
            w.writerow([e, *(repr(self.history[k][i]) for k in keys)])
        write_atomic(path, buf.getvalue())

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, keys={list(self.history)})"
