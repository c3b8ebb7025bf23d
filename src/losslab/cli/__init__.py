"""The ``losslab`` command: train with a chosen loss, compare losses, find a learning rate, watch
a model overfit and the cures work.

This module only builds the argument parser (``losslab --help`` must stay fast) from the settings
table in ``losslab.cli.config``; each command's module, the engine and matplotlib are imported when
that command runs. Layout: ``config`` (typed settings, one place) -> ``pipeline`` (data -> plan ->
trainer -> fit) -> ``outdir`` (the run directory) with ``plots`` and ``report``; one module per
command (``train``, ``compare``, ``lrfind``, ``overfit``, ``predict``, ``catalog``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import cast

from losslab.cli.config import COMMAND_SETTINGS, SETTINGS, Setting, default_for
from losslab.cli.errors import UsageError

__all__ = ["main", "build_parser", "UsageError"]

PROG = "losslab"
_TRAINING = ("train", "compare", "lr-find", "overfit")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a mistake as one line instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _help(s: Setting, command: str) -> str:
    value = default_for(s.name, command)
    if s.kind == "bool" or value is None:
        return s.help
    default = ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else value
    return f"{s.help} (default {default})"


def _add_settings(p: argparse.ArgumentParser, command: str) -> None:
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name in COMMAND_SETTINGS[command]:
        s = SETTINGS[name]
        if s.group not in groups:
            groups[s.group] = p.add_argument_group(s.group)
            if s.group == "data":
                groups["data"].add_argument(
                    "--config", metavar="FILE.toml",
                    help="TOML file with any of these settings (keys = long options; a "
                         f"[{command}] table applies to this command only)")
        g = groups[s.group]
        if s.kind == "bool":
            flags = [s.short, s.flag] if s.short else [s.flag]
            g.add_argument(*flags, dest=name, action="store_false" if s.negative_flag
                           else "store_true", default=None, help=_help(s, command))
        elif s.kind == "early_stopping":
            g.add_argument(s.flag, dest=name, nargs="?", const="patience=10", metavar=s.metavar,
                           help=_help(s, command))
        elif s.kind == "choice":
            g.add_argument(s.flag, dest=name, choices=s.choices, help=_help(s, command))
        else:
            g.add_argument(s.flag, dest=name, metavar=s.metavar, help=_help(s, command))
    if command == "lr-find":
        # --sweep alone means a grid.
        for action in p._actions:
            if action.dest == "sweep":
                action.nargs, action.const = "?", "grid"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Loss functions for neural networks: train with a chosen loss, compare "
                    "losses on the same data, find a learning rate, watch a model overfit and "
                    "the cures work.",
        epilog="Start with 'losslab train' (the article's experiment), then "
               "'losslab compare' and 'losslab losses'. 'losslab COMMAND --help' for details.",
    )
    from losslab import __version__

    parser.add_argument("--version", action="version", version=f"losslab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "train", help="train a model (no arguments: the article's experiment)",
        description="Train a model with a chosen loss. With no data options, reproduce the "
                    "article's experiment (linear model, MSE, SGD lr=0.01, 1000 steps).",
    )
    _add_settings(p, "train")
    p = sub.add_parser(
        "compare", help="train the same model with several losses and compare",
        description="Train the same model from the same initialisation with each loss and "
                    "report held-out metrics that do not depend on the loss. Default: a line "
                    "with outliers, losses mse,l1,huber,log_cosh. --folds/--repeats give a "
                    "mean, a spread and a paired test of the differences.",
    )
    _add_settings(p, "compare")
    p = sub.add_parser(
        "lr-find", help="learning-rate range test, or a sweep of short runs",
        description="Raise the learning rate exponentially over a few hundred steps and plot "
                    "the loss against it; suggest a rate by fastai's 'valley' rule. --sweep "
                    "instead trains short runs over a range of rates.",
    )
    _add_settings(p, "lr-find")
    p = sub.add_parser(
        "overfit", help="a model overfitting and the five cures side by side; vanishing "
                        "gradients",
        description="Train a wide network on a small slice of the data until it overfits, then "
                    "each of the article's five cures from the same initialisation and split: "
                    "a smaller model, more data, L1 and L2 penalties (strengths chosen by a "
                    "sweep on the training slice), early stopping restoring the best weights, "
                    "dropout. Reports each one's generalisation gap (validation minus training "
                    "loss), learning and validation curves. Here --dropout, --l1, --l2 and "
                    "--early-stopping set the cures' strengths; the baseline has none. "
                    "Default data: digits. --show gradients trains deep sigmoid and ReLU "
                    "networks and plots their per-layer gradient norms.",
    )
    _add_settings(p, "overfit")

    p = sub.add_parser(
        "losses", help="list the catalog, or show one loss",
        description="Without NAME: every loss with its task and formula. With NAME: its "
                    "formula, gradient, options and reference.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="a loss name, e.g. huber")
    p.add_argument("--plot", metavar="FILE.png",
                   help="plot the loss and its gradient against the prediction")
    p.add_argument("--json", action="store_true", help="print as JSON")

    p = sub.add_parser(
        "gradcheck", help="check a loss's gradient against finite differences",
        description="Compare the closed-form gradient with central finite differences "
                    "(float64) on random inputs from the loss's example generator. An entry "
                    "passes when its error is within --tol of its size plus the finite "
                    "differences' own rounding noise. Exit status 1 if one does not.",
    )
    p.add_argument("name", metavar="NAME[:OPTIONS]", help="e.g. huber:delta=0.5")
    p.add_argument("options", nargs="*", metavar="KEY=VALUE", help="more loss options")
    p.add_argument("--trials", type=int, default=5, metavar="N", help="random inputs (5)")
    p.add_argument("--seed", type=int, default=0, metavar="N")
    p.add_argument("--tol", type=float, default=1e-5, metavar="T",
                   help="relative tolerance per gradient entry (1e-5)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser(
        "predict", help="apply a saved model to a data file",
        description="Load a model written by 'losslab train' and predict for each row of a "
                    "CSV (or Parquet) file that has the same feature columns.",
    )
    p.add_argument("--model", required=True, metavar="DIR", help="a 'losslab train' output dir")
    p.add_argument("--data", required=True, metavar="FILE")
    p.add_argument("--output", metavar="FILE.csv",
                   help="write here instead of stdout (never over --data)")
    p.add_argument("--drop-missing", action="store_true", help="skip rows with missing values")
    p.add_argument("--multiline", action="store_true",
                   help="accept CSV fields that span lines")
    p.add_argument("--json", action="store_true", help="print predictions as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        if args.command in _TRAINING:
            from losslab.cli import config
            from losslab.cli.console import Console

            cfg = config.build(args, argv)
            console = Console(cfg.output.quiet, cfg.output.json)
            if args.command == "train":
                from losslab.cli import train

                return train.run(cast(config.TrainConfig, cfg), console)
            if args.command == "compare":
                from losslab.cli import compare

                return compare.run(cast(config.CompareConfig, cfg), console)
            if args.command == "overfit":
                from losslab.cli import overfit

                return overfit.run(cast(config.OverfitConfig, cfg), console)
            from losslab.cli import lrfind

            return lrfind.run(cast(config.LrFindConfig, cfg), console)
        if args.command in ("losses", "gradcheck"):
            from losslab.cli import catalog

            return catalog.run(args)
        from losslab.cli import predict

        return predict.run(args)
    except UsageError as exc:
        msg = " ".join(str(exc).split())  # always exactly one line
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `losslab losses | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
