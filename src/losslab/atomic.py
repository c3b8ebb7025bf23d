"""One way to write a file: completely or not at all.

Every file losslab writes (models, checkpoints, metrics, histories, plots, reports, predictions)
goes through ``write_atomic``: the content goes to a temporary file beside the target, is flushed
and fsync-ed, then ``os.replace``-d over the target, and the directory is fsync-ed so the rename
itself survives a crash. A reader therefore sees the old file or the new one, never half of one,
and an interrupted write leaves nothing behind but, at worst, the old file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import IO, Any

__all__ = ["write_atomic"]


def write_atomic(
    path: str | os.PathLike[str],
    content: bytes | str | Callable[[IO[bytes]], Any],
    *,
    encoding: str = "utf-8",
) -> None:
    """Write ``content`` (bytes, text, or a function that writes to a binary file object) to
    ``path`` atomically."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, bytes):
                f.write(content)
            elif isinstance(content, str):
                f.write(content.encode(encoding))
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX); not possible on every platform."""
    with contextlib.suppress(OSError, AttributeError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
