"""The command line's exceptions: what ``main`` turns into one line and an exit status.

Each carries what it is about as attributes, so no caller ever parses another module's message.
"""

from __future__ import annotations

__all__ = ["UsageError", "OutputError", "TrainingDiverged"]


class UsageError(Exception):
    """A mistake in what the user asked for, or input that cannot be used: printed as one line,
    exit status 2. ``flag`` names the option at fault when there is one."""

    def __init__(self, message: str, *, flag: str | None = None) -> None:
        super().__init__(message)
        self.flag = flag


class OutputError(UsageError):
    """The output cannot be written where asked (exists, read-only, taken by another run)."""


class TrainingDiverged(UsageError):
    """Training produced a NaN or infinite loss or gradient; ``label`` is the loss's label and
    ``epoch``/``batch`` (from 0) where it happened."""

    def __init__(self, label: str, epoch: int, batch: int, detail: str) -> None:
        super().__init__(f"training with {label} diverged: {detail}")
        self.label, self.epoch, self.batch = label, epoch, batch
