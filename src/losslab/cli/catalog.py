"""``losslab losses [NAME]`` and ``losslab gradcheck NAME``: the catalog from the terminal."""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import numpy as np

import losslab
from losslab.cli.options import UsageError, parse_spec, parse_value

__all__ = ["run", "get_loss"]


def get_loss(name: str, options: dict[str, Any], what: str = "--loss") -> Any:
    """``losslab.get`` with its ValueError/TypeError (unknown name/option) as a UsageError."""
    try:
        return losslab.get(name, **options)
    except (ValueError, TypeError) as exc:
        msg = str(exc).replace("See losslab.available() for the catalog.",
                               "'losslab losses' lists the catalog.")
        raise UsageError(f"{what}: {msg}") from None


def run(args: Any) -> int:
    if args.command == "gradcheck":
        return _gradcheck(args)
    if args.name is None:
        return _list(args)
    return _show(args)


def _list(args: Any) -> int:
    rows = []
    for name in losslab.available():
        s = losslab.spec(name)
        rows.append({"name": name, "task": s.task, "formula": s.formula})
    if args.json:
        print(json.dumps(rows))
        return 0
    wn = max(len("name"), *(len(r["name"]) for r in rows))
    wt = max(len("task"), *(len(r["task"]) for r in rows))
    print(f"{'name':<{wn}}  {'task':<{wt}}  formula")
    for r in rows:
        print(f"{r['name']:<{wn}}  {r['task']:<{wt}}  {r['formula']}")
    print(f"\n{len(rows)} losses. 'losslab losses NAME' shows one in full.")
    return 0


def _show(args: Any) -> int:
    spec = parse_spec(args.name, "losses", "huber")
    loss = get_loss(spec.name, spec.options, "losses")
    s = loss.spec
    if args.json:
        print(json.dumps({
            "name": s.name, "task": s.task, "formula": s.formula, "inputs": list(s.inputs),
            "differentiable": list(s.differentiable), "options": _jsonable(s.defaults),
            "torch": s.torch, "doc": s.doc,
        }))
    else:
        print(f"{s.name}  ({s.task})")
        print(f"  formula: {s.formula}")
        print(f"  inputs: {', '.join(s.inputs)}  (gradient w.r.t. {', '.join(s.differentiable)})")
        if s.defaults:
            opts = ", ".join(f"{k}={v!r}" for k, v in s.defaults.items())
            print(f"  options: {opts}")
        if s.torch:
            print(f"  torch: torch.nn.functional.{s.torch}")
        print()
        print(s.doc)
    if args.plot:
        path = _plot_loss(loss, args.plot)
        if not args.json:
            print(f"\nwrote {path}")
    return 0


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, str | int | float | bool | type(None)) else repr(v))
            for k, v in d.items()}


def _curve(loss: Any) -> tuple[np.ndarray, list[tuple[str, np.ndarray, np.ndarray]]]:
    """Per-element loss and gradient against the prediction, for a few fixed targets."""
    s = loss.spec
    per = losslab.get(s.name, **{**loss.options, "reduction": "none"}) \
        if "reduction" in s.defaults else loss
    rng = np.random.default_rng(0)
    example = per.example(rng, "float64")
    if len(example) != 2 or np.ndim(example[0]) == 0:
        raise UsageError(
            f"losses --plot draws losses of (input, target); {s.name!r} takes "
            f"{', '.join(s.inputs)}: plot it from Python instead"
        )
    x0, t0 = example
    z = np.linspace(-3.0, 3.0, 401)
    if np.issubdtype(np.asarray(t0).dtype, np.integer):
        if np.ndim(x0) < 2:
            raise UsageError(f"losses --plot cannot draw {s.name!r}; plot it from Python")
        # Class logits (0, z): the loss for each true class against the logit margin.
        x = np.stack([np.zeros_like(z), z], axis=1)
        targets = [("target class 1", np.ones(z.size, dtype=np.asarray(t0).dtype)),
                   ("target class 0", np.zeros(z.size, dtype=np.asarray(t0).dtype))]
        out = []
        for label, t in targets:
            v, g = per.value_and_grad(x, t)
            out.append((label, np.asarray(v, dtype=float), np.asarray(g, dtype=float)[:, 1]))
        return z, out
    # Try target sets from most to least common; the loss's own checks reject the wrong ones.
    if s.task == "binary":
        attempts = [(z, [1.0, 0.0]), (z, [1.0, -1.0]), (np.linspace(0.005, 0.995, 401), [1.0, 0.0])]
    else:
        attempts = [(z, [0.0]), (np.linspace(0.05, 3.0, 401), [1.0]), (z, [1.0])]
    error: Exception | None = None
    for zz, targets in attempts:
        try:
            out = []
            for tv in targets:
                v, g = per.value_and_grad(zz.copy(), np.full(zz.shape, tv))
                out.append((f"target {tv:g}", np.asarray(v, dtype=float),
                            np.asarray(g, dtype=float)))
            return zz, out
        except (ValueError, TypeError) as exc:
            error = exc
    raise UsageError(f"losses --plot cannot draw {s.name!r} ({error}); plot it from Python")


def _plot_loss(loss: Any, path: str) -> str:
    if not path.lower().endswith(".png"):
        raise UsageError(f"--plot {path!r}: give a .png file name, e.g. --plot {loss.name}.png")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"--plot {path!r}: directory {parent!r} does not exist")
    z, curves = _curve(loss)
    from losslab.cli import plots

    plots.plot_loss_shape(repr(loss), z, curves, path)
    return path


def _gradcheck(args: Any) -> int:
    spec = parse_spec(args.name, "gradcheck", "huber:delta=0.5")
    options = dict(spec.options)
    for item in args.options:
        key, eq, value = item.partition("=")
        if not eq or not re.match(r"^[A-Za-z_]\w*$", key) or not value:
            raise UsageError(f"gradcheck option {item!r} is not KEY=VALUE, e.g. delta=0.5")
        options[key] = parse_value(value)
    if spec.args:
        raise UsageError(
            f"gradcheck {args.name!r}: options must be KEY=VALUE, e.g. gradcheck huber:delta=0.5"
        )
    if args.trials < 1:
        raise UsageError("--trials must be at least 1")
    loss = get_loss(spec.name, options, "gradcheck")
    from losslab.gradcheck import check_gradient, max_relative_error

    rng = np.random.default_rng(args.seed)
    errors = []
    for _ in range(args.trials):
        try:
            inputs = loss.example(rng, "float64")
            report = check_gradient(loss, inputs)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"gradcheck {loss!r}: {exc}") from None
        errors.append(max_relative_error(report))
    worst = max(errors)
    ok = worst <= args.tol
    if args.json:
        print(json.dumps({"loss": spec.name, "options": _jsonable(options), "trials": args.trials,
                          "max_relative_error": worst, "tol": args.tol, "ok": ok}))
    else:
        print(f"{loss!r}: gradient vs central finite differences (float64, eps=1e-6)")
        print(f"  trials: {args.trials}, largest relative error: {worst:.3e} "
              f"({'ok' if ok else 'FAILED'}, tol {args.tol:g})")
    if not ok:
        print(f"losslab: gradient check failed for {loss!r}", file=sys.stderr)
    return 0 if ok else 1
