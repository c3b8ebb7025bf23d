"""Dispatch for the commands that train: settings first, then the command's module."""

from __future__ import annotations

from typing import Any

from losslab.cli.common import Console, resolve_settings


def run(args: Any) -> int:
    settings = resolve_settings(args)
    console = Console(settings["quiet"], settings["json"])
    if args.command == "train":
        from losslab.cli import train

        return train.run(settings, console, args)
    if args.command == "compare":
        from losslab.cli import compare

        return compare.run(settings, console, args)
    from losslab.cli import lrfind

    return lrfind.run(settings, console, args)
