"""Messages and the progress line: human text on stdout, or one JSON object with ``--json``.

The progress line is drawn here (a dozen lines, no dependency): it appears on stderr once a run
has lasted ``PROGRESS_DELAY`` seconds, redraws at most every ``PROGRESS_MININTERVAL`` seconds,
and is erased when the run ends. It is off with ``--quiet`` and when stderr is not a terminal.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

__all__ = ["Console", "Progress", "to_json"]

PROGRESS_DELAY = 1.0        # seconds a run lasts before its progress line appears
PROGRESS_MININTERVAL = 0.1  # seconds between redraws


class Console:
    """Human messages on stdout unless ``--quiet`` or ``--json`` (then stdout is the JSON)."""

    def __init__(self, quiet: bool, as_json: bool) -> None:
        self.quiet = bool(quiet)
        self.as_json = bool(as_json)

    def say(self, *parts: Any) -> None:
        if not (self.quiet or self.as_json):
            print(*parts, flush=True)

    def note(self, text: str) -> None:
        """A one-line remark on stderr (shown with --json too, hidden by --quiet)."""
        if not self.quiet:
            print(f"losslab: {text}", file=sys.stderr, flush=True)

    def result(self, payload: dict[str, Any]) -> None:
        if self.as_json:
            print(to_json(payload))

    @property
    def show_progress(self) -> bool:
        return not self.quiet and sys.stderr.isatty()

    def progress(self, total: int, desc: str, unit: str = "epoch") -> Progress | None:
        return Progress(total, desc, unit) if self.show_progress else None


class Progress:
    """``desc  12/100 [35.2 epoch/s] loss=0.41 val=0.44 lr=0.01`` on one stderr line."""

    def __init__(self, total: int, desc: str, unit: str = "epoch") -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.shown = False
        self.post: dict[str, str] = {}

    def update(self, n: int = 1, **post: Any) -> None:
        self.n += n
        self.post.update({k: (f"{v:.4g}" if isinstance(v, float) else str(v))
                          for k, v in post.items()})
        now = time.perf_counter()
        if now - self.t0 < PROGRESS_DELAY or now - self.last < PROGRESS_MININTERVAL:
            return
        self.last = now
        rate = self.n / max(now - self.t0, 1e-9)
        extra = " ".join(f"{k}={v}" for k, v in self.post.items())
        sys.stderr.write(f"\r{self.desc} {self.n}/{self.total} [{rate:.1f} {self.unit}/s] "
                         f"{extra}\x1b[K")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False


def _plain(o: Any) -> Any:
    """Strict JSON: NumPy scalars as numbers, NaN and infinities (a metric that does not apply)
    as null, tuples and sets as lists."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, list | tuple | set):
        return [_plain(v) for v in o]
    if hasattr(o, "tolist"):
        return _plain(o.tolist())
    if o is None or isinstance(o, bool | int | str):
        return o
    return str(o)


def to_json(payload: Any, indent: int | None = None) -> str:
    return json.dumps(_plain(payload), indent=indent, allow_nan=False)
