"""The ``losslab`` command: train with a chosen loss, compare losses, find a learning rate.

This module only builds the argument parser (``losslab --help`` must stay fast); each command's
module, the engine and matplotlib are imported when that command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from losslab.cli.options import RUN_DEFAULTS, UsageError

__all__ = ["main", "build_parser", "UsageError"]

PROG = "losslab"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a mistake as one line instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--config", metavar="FILE.toml",
                   help="TOML file with any of these settings (keys = long options)")
    g.add_argument("--data", metavar="FILE.csv", help="CSV file with a header row")
    g.add_argument("--target", metavar="COLUMN", help="column to predict (default: last column)")
    g.add_argument("--features", metavar="A,B,...",
                   help="feature columns to use (default: all but the target)")
    g.add_argument("--dataset", metavar="NAME",
                   help="bundled data: article_line, outlier_line, digits, iris, diabetes, "
                        "breast_cancer")
    g.add_argument("--task", choices=["regression", "classification"],
                   help="inferred from the loss and the target when absent")
    g.add_argument("--drop-missing", action="store_true", default=None,
                   help="skip rows with missing values instead of stopping")
    g.add_argument("--val-split", type=float, metavar="F",
                   help=f"fraction held out for validation (default {RUN_DEFAULTS['val_split']})")
    g.add_argument("--no-standardize", dest="standardize", action="store_false", default=None,
                   help="do not standardise features (default: standardise, stats saved)")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and training")
    g.add_argument("--model", metavar="SPEC", help="linear (default) or mlp:H1,H2,...")
    g.add_argument("--activation", metavar="NAME",
                   help="hidden activation: relu (default), leaky_relu, sigmoid, tanh, gelu")
    g.add_argument("--dropout", type=float, metavar="P", help="dropout after hidden layers")
    g.add_argument("--optimizer", metavar="SPEC",
                   help="sgd, adam (default), adamw, rmsprop, adagrad; options e.g. "
                        "adam:betas=0.9,0.99 or sgd:momentum=0.9")
    g.add_argument("--lr", type=float, metavar="RATE", help="learning rate (default 0.01)")
    g.add_argument("--schedule", metavar="SPEC",
                   help="constant (default), step:step_size=10, exponential:gamma=0.95, "
                        "cosine:t_max=100, cyclic:..., plateau:patience=5")
    g.add_argument("--l1", type=float, metavar="C", help="L1 penalty on weights, added to loss")
    g.add_argument("--l2", type=float, metavar="C", help="L2 penalty on weights, added to loss")
    g.add_argument("--clip-norm", type=float, metavar="N", help="clip the gradient norm to N")
    g.add_argument("--early-stopping", nargs="?", const="patience=10", metavar="SPEC",
                   help="stop when val loss stalls: PATIENCE or patience=10,min_delta=0.001")
    g.add_argument("--epochs", type=int, metavar="N",
                   help=f"passes over the data (default {RUN_DEFAULTS['epochs']})")
    g.add_argument("--batch-size", type=int, metavar="N",
                   help=f"mini-batch size (default {RUN_DEFAULTS['batch_size']})")
    g.add_argument("--seed", type=int, metavar="N", help="fixes split, init, shuffling, dropout")
    g.add_argument("--dtype", choices=["float32", "float64"], help="default float32")


def _add_output_options(p: argparse.ArgumentParser, plots: bool = True) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR",
                   help="output directory (default ./losslab-runs/<command>-<time>)")
    g.add_argument("--overwrite", action="store_true", default=None,
                   help="replace --out if it already exists")
    g.add_argument("-q", "--quiet", action="store_true", default=None,
                   help="no progress bar or messages")
    g.add_argument("--json", action="store_true", default=None,
                   help="print the final metrics as one JSON object on stdout")
    if plots:
        g.add_argument("--no-plots", dest="plots", action="store_false", default=None,
                       help="skip the PNG plots (report.html then has none)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Loss functions for neural networks: train with a chosen loss, compare "
                    "losses on the same data, find a learning rate.",
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
    _add_data_options(p)
    p.add_argument("--loss", metavar="SPEC",
                   help="catalog loss with options, e.g. huber:delta=0.5 (default mse or "
                        "cross_entropy by task; 'losslab losses' lists them)")
    _add_model_options(p)
    _add_output_options(p)

    p = sub.add_parser(
        "compare", help="train the same model with several losses and compare",
        description="Train the same model from the same initialisation with each loss and "
                    "report held-out metrics that do not depend on the loss. Default: a line "
                    "with outliers, losses mse,l1,huber,log_cosh.",
    )
    _add_data_options(p)
    p.add_argument("--losses", metavar="SPECS",
                   help=f"comma-separated losses (default {RUN_DEFAULTS['losses']})")
    _add_model_options(p)
    _add_output_options(p)

    p = sub.add_parser(
        "lr-find", help="learning-rate range test, or a sweep of short runs",
        description="Raise the learning rate exponentially over a few hundred steps and plot "
                    "the loss against it; suggest the rate where the smoothed loss falls "
                    "fastest. --sweep instead trains short runs over a range of rates.",
    )
    _add_data_options(p)
    p.add_argument("--loss", metavar="SPEC", help="catalog loss with options")
    _add_model_options(p)
    g = p.add_argument_group("range test")
    g.add_argument("--lr-min", type=float, metavar="RATE", help="first rate (default 1e-6)")
    g.add_argument("--lr-max", type=float, metavar="RATE", help="last rate (default 10)")
    g.add_argument("--steps", type=int, metavar="N", help="steps of the test (default 200)")
    g.add_argument("--sweep", nargs="?", const="grid", choices=["grid", "random"],
                   help="short runs over log-spaced (grid) or log-uniform random rates")
    g.add_argument("--sweep-points", type=int, metavar="N", help="rates in the sweep (8)")
    g.add_argument("--sweep-epochs", type=int, metavar="N", help="epochs per sweep run (10)")
    g.add_argument("--sweep-range", metavar="LO,HI", help="sweep rates (default 1e-4,1)")
    _add_output_options(p)

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
                    "(float64) on random inputs from the loss's example generator; print the "
                    "largest relative error. Exit status 1 if it exceeds --tol.",
    )
    p.add_argument("name", metavar="NAME[:OPTIONS]", help="e.g. huber:delta=0.5")
    p.add_argument("options", nargs="*", metavar="KEY=VALUE", help="more loss options")
    p.add_argument("--trials", type=int, default=5, metavar="N", help="random inputs (5)")
    p.add_argument("--seed", type=int, default=0, metavar="N")
    p.add_argument("--tol", type=float, default=1e-5, metavar="T",
                   help="largest acceptable relative error (1e-5)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser(
        "predict", help="apply a saved model to a CSV file",
        description="Load a model written by 'losslab train' and predict for each row of a "
                    "CSV file that has the same feature columns.",
    )
    p.add_argument("--model", required=True, metavar="DIR", help="a 'losslab train' output dir")
    p.add_argument("--data", required=True, metavar="FILE.csv")
    p.add_argument("--output", metavar="FILE.csv", help="write here instead of stdout")
    p.add_argument("--drop-missing", action="store_true", help="skip rows with missing values")
    p.add_argument("--json", action="store_true", help="print predictions as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args._argv = argv
        if args.command is None:
            parser.print_help()
            return 0
        if args.command in ("train", "compare", "lr-find"):
            from losslab.cli import commands

            return commands.run(args)
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
