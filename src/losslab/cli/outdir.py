"""The run's output directory: claimed atomically, written all-or-nothing, replaced only when it
is losslab's own.

A user's files are sacred, so the rules are few and strict:

- The directory is claimed before the run starts: created by this run, or an existing empty
  directory, locked with ``flock`` (released by the kernel if the process dies) so two runs into
  the same ``--out`` cannot both proceed; the second stops at once with a one-line error.
- Files are written (each through ``losslab.atomic.write_atomic``) into a hidden staging
  directory beside the destination, and the staging directory is renamed into place at the end,
  with ``losslab-run.json`` (the manifest: which command, which files). A reader sees no run or a
  whole run.
- ``--overwrite`` replaces only a directory that holds a manifest and nothing but the files the
  manifest lists, and never one that holds (or is) an input of the run. The old files are
  removed by name, after the new run is in place.
- On failure or Ctrl-C only what this run created is removed: the staging directory, the
  destination if this run created it, and any parent directories this run created (each only if
  empty). Never ``os.removedirs``, which walks up into the user's directories.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from losslab.atomic import write_atomic
from losslab.cli.errors import OutputError

__all__ = ["RunDir", "MANIFEST", "read_manifest"]

MANIFEST = "losslab-run.json"


def read_manifest(directory: str) -> dict[str, Any] | None:
    """The manifest of a losslab run directory, or None when there is none (or it is broken)."""
    try:
        with open(os.path.join(directory, MANIFEST), encoding="utf-8") as fh:
            m = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("losslab_run") != 1 or not isinstance(m.get("files"), list):
        return None
    if not all(isinstance(f, str) and f and os.path.basename(f) == f for f in m["files"]):
        return None
    return m


def _inside(path: str, directory: str) -> bool:
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


class RunDir:
    """``with RunDir(out, command, overwrite, inputs) as rd: write rd.path(name); rd.commit()``.

    ``inputs`` are the files the run reads: an output directory that holds one is refused.
    """

    def __init__(self, out: str | None, command: str, *, overwrite: bool = False,
                 inputs: Sequence[str] = ()) -> None:
        self.out = out
        self.command = command
        self.overwrite = overwrite
        self.inputs = [os.path.abspath(p) for p in inputs]
        self.final = ""
        self.staging: str | None = None
        self.files: list[str] = []
        self._created: list[str] = []      # directories this run made, outermost first
        self._replacing: list[str] = []    # files of the earlier run to remove after commit
        self._lock_fd: int | None = None

    # -- claiming ------------------------------------------------------------------------------

    def __enter__(self) -> RunDir:
        try:
            self._claim()
        except BaseException:
            self._abort()
            raise
        return self

    def _flag(self) -> str:
        return f"--out {self.out!r}" if self.out is not None else f"output directory {self.final!r}"

    def _claim(self) -> None:
        if self.out is None:
            parent = os.path.abspath("losslab-runs")
            self._make_parents(parent)
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            base = os.path.join(parent, f"{self.command}-{stamp}")
            for k in range(1, 1000):
                self.final = base if k == 1 else f"{base}-{k}"
                try:
                    os.mkdir(self.final)
                except FileExistsError:
                    continue
                except OSError as exc:
                    raise OutputError(f"cannot create output directory {self.final!r}: "
                                      f"{exc.strerror}", flag="--out") from None
                self._created.append(self.final)
                break
        else:
            self.final = os.path.abspath(self.out)
            for p in self.inputs:
                if _inside(p, self.final):
                    raise OutputError(f"{self._flag()} holds the input {p!r}; losslab never "
                                      f"writes into a directory holding its input: choose "
                                      f"another --out", flag="--out")
            if os.path.lexists(self.final) and not os.path.isdir(self.final):
                raise OutputError(f"{self._flag()} is a file; give a directory path",
                                  flag="--out")
            if not os.path.exists(self.final):
                self._make_parents(os.path.dirname(self.final))
                try:
                    os.mkdir(self.final)
                    self._created.append(self.final)
                except FileExistsError:
                    pass  # another process made it just now: the lock below decides
                except OSError as exc:
                    raise OutputError(f"cannot create {self._flag()}: {exc.strerror}",
                                      flag="--out") from None
        self._lock()
        self._check_contents()
        parent = os.path.dirname(self.final)
        try:
            self.staging = tempfile.mkdtemp(prefix=f".{os.path.basename(self.final)}.losslab-",
                                            dir=parent)
        except OSError as exc:
            raise OutputError(f"cannot write to {parent!r}: {exc.strerror}; choose another --out",
                              flag="--out") from None

    def _make_parents(self, parent: str) -> None:
        """Create ``parent`` and its missing ancestors one by one, remembering each."""
        missing = []
        p = parent
        while not os.path.isdir(p):
            if os.path.lexists(p):
                raise OutputError(f"cannot create output directory: {p!r} is a file",
                                  flag="--out")
            missing.append(p)
            p = os.path.dirname(p)
        for d in reversed(missing):
            try:
                os.mkdir(d)
            except FileExistsError:
                continue
            except OSError as exc:
                raise OutputError(f"cannot create output directory {d!r}: {exc.strerror}",
                                  flag="--out") from None
            self._created.append(d)

    def _lock(self) -> None:
        import fcntl

        try:
            fd = os.open(self.final, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as exc:
            raise OutputError(f"cannot open {self._flag()}: {exc.strerror}", flag="--out") \
                from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(f"{self._flag()} is being written by another losslab run; "
                                  f"wait for it or choose another --out", flag="--out") from None
            raise
        self._lock_fd = fd
        # The path may have been replaced (a run that finished just now): the lock must be on
        # the directory that is there now.
        if os.fstat(fd).st_ino != os.stat(self.final).st_ino:
            raise OutputError(f"{self._flag()} was written by another losslab run just now; "
                              f"choose another --out or pass --overwrite", flag="--out")

    def _check_contents(self) -> None:
        entries = os.listdir(self.final)
        if not entries:
            return
        if not self.overwrite:
            raise OutputError(f"{self._flag()} already exists and is not empty; choose another "
                              f"--out, or pass --overwrite to replace an earlier losslab run",
                              flag="--out")
        manifest = read_manifest(self.final)
        if manifest is None:
            raise OutputError(f"{self._flag()} was not written by losslab (it has no {MANIFEST});"
                              f" --overwrite only replaces losslab's own run directories: "
                              f"choose another --out", flag="--out")
        listed = set(manifest["files"]) | {MANIFEST}
        foreign = sorted(set(entries) - listed)
        if foreign:
            shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            raise OutputError(f"{self._flag()} holds files losslab did not write ({shown}); "
                              f"--overwrite never removes them: move them or choose another "
                              f"--out", flag="--out")
        self._replacing = [f for f in entries if f in listed]

    # -- writing -------------------------------------------------------------------------------

    def path(self, name: str) -> str:
        """Where to write ``name`` (a plain file name); the file is listed in the manifest."""
        assert self.staging is not None and os.path.basename(name) == name
        if name not in self.files:
            self.files.append(name)
        return os.path.join(self.staging, name)

    def write(self, name: str, content: bytes | str | Any) -> str:
        """Write one file atomically; an OS error (read-only, disk full) is a one-line error."""
        path = self.path(name)
        try:
            write_atomic(path, content)
        except OSError as exc:
            raise OutputError(f"cannot write {name} into {os.path.dirname(self.final)!r}: "
                              f"{exc.strerror}", flag="--out") from None
        return path

    def commit(self) -> str:
        """Put the run in place (manifest last written, then one rename); returns its path."""
        assert self.staging is not None
        self.write(MANIFEST, json.dumps({
            "losslab_run": 1, "command": self.command,
            "files": [f for f in self.files if f != MANIFEST],
            "written": datetime.datetime.now().isoformat(timespec="seconds"),
        }, indent=2) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.staging, 0o777 & ~umask)  # mkdtemp made it private
        old = None
        if self._replacing:
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(self.final)}.losslab-old-",
                                   dir=os.path.dirname(self.final))
            os.rmdir(old)
            os.rename(self.final, old)
        try:
            # rename(2) replaces an empty directory atomically and fails on a non-empty one.
            os.rename(self.staging, self.final)
        except OSError as exc:
            if old is not None:
                os.rename(old, self.final)
            raise OutputError(f"cannot put the run into {self._flag()}: {exc.strerror}",
                              flag="--out") from None
        self.staging = None
        if old is not None:
            for name in self._replacing:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(old, name))
            with contextlib.suppress(OSError):
                os.rmdir(old)
        self._unlock()
        return self.final

    # -- cleaning up ---------------------------------------------------------------------------

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.staging is not None or exc_type is not None:
            self._abort()
        self._unlock()

    def _abort(self) -> None:
        """Remove what this run created, and nothing else."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        self._unlock()
        for d in reversed(self._created):
            with contextlib.suppress(OSError):
                os.rmdir(d)  # only if empty: a directory someone else filled meanwhile stays
        self._created = []

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
