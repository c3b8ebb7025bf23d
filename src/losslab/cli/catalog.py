"""``losslab losses [NAME]`` and ``losslab gradcheck NAME``: the catalog from the terminal."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from typing import Any

import numpy as np

import losslab
from losslab.cli.config import parse_spec, parse_value
from losslab.cli.errors import OutputError, UsageError

__all__ = ["run", "get_loss"]


def get_loss(name: str, options: dict[str, Any], what: str = "--loss") -> Any:
    """``losslab.get`` with its ValueError/TypeError (unknown name, bad option) as a UsageError."""
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
            "constraints": {k: c.describe() for k, c in s.constraints.items()},
            "input_kind": s.input_kind, "target_kind": s.target_kind, "layout": s.layout,
            "hessian": s.hessian, "torch": s.torch, "module": s.module, "doc": s.doc,
        }))
    else:
        print(f"{s.name}  ({s.task})")
        print(f"  formula: {s.formula}")
        print(f"  inputs: {', '.join(s.inputs)}  (gradient w.r.t. {', '.join(s.differentiable)})")
        print(f"  input holds: {s.input_kind}; target holds: {s.target_kind or 'no target'}; "
              f"one loss per {_LAYOUT_WORDS[s.layout]}")
        print(f"  Hessian: {_HESSIAN_WORDS[s.hessian]}")
        if s.defaults:
            print("  options:")
            for key, default in s.defaults.items():
                print(f"    {key} = {default!r}: {s.constraints[key].describe()}")
        if s.torch:
            print(f"  torch: torch.nn.functional.{s.torch}")
        print(f"  modules: losslab.torch.{s.module}, losslab.jax.{s.name}")
        print()
        print(s.doc)
    if args.plot:
        path = _plot_loss(loss, args.plot)
        if not args.json:
            print(f"\nwrote {path}")
    return 0


_LAYOUT_WORDS = {
    "elementwise": "element",
    "class_axis": "sample and position (classes on axis 1)",
    "feature_axis": "row (the last axis)",
    "per_sample": "sample (all its elements)",
    "distribution_axis": "distribution (along dim)",
}
_HESSIAN_WORDS = {
    None: "not provided",
    "nonnegative": "closed form, never negative",
    "zero": "closed form, zero almost everywhere (boosting needs a stand-in)",
    "indefinite": "closed form, can be negative",
}


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, str | int | float | bool | type(None)) else repr(v))
            for k, v in d.items()}


def _curve(loss: Any) -> tuple[np.ndarray, list[tuple[str, np.ndarray, np.ndarray]]]:
    """Per-element loss and gradient against the prediction, for the targets its declared kinds
    call for (no trial and error)."""
    s = loss.spec
    per = losslab.get(s.name, **{**loss.options, "reduction": "none"}) \
        if "reduction" in s.defaults else loss
    if tuple(s.inputs) != ("input", "target"):
        raise UsageError(f"losses --plot draws losses of (input, target); {s.name!r} takes "
                         f"{', '.join(s.inputs)}: plot it from Python instead")
    z = np.linspace(-3.0, 3.0, 401)
    if s.layout == "class_axis" and s.target_kind in ("class", "class_index"):
        # Two classes' inputs (0, z): the loss for each true class against the margin z.
        x = np.stack([np.zeros_like(z), z], axis=1)
        if s.input_kind == "log_probabilities":
            x = x - np.logaddexp(x[:, :1], x[:, 1:])
        out = []
        for label, c in (("target class 1", 1), ("target class 0", 0)):
            v, g = _value_and_grad(per, x, np.full(z.size, c, dtype=np.int64))
            out.append((label, v, g[:, 1]))
        return z, out
    if s.layout != "elementwise":
        raise UsageError(f"losses --plot draws elementwise losses; {s.name!r} is {s.layout} "
                         f"({s.task}): plot it from Python instead")
    inputs = {"probabilities": np.linspace(0.005, 0.995, 401),
              "log_probabilities": np.log(np.linspace(0.005, 0.995, 401))}.get(s.input_kind, z)
    targets = {"real": [0.0], "nonnegative": [1.0], "unit_interval": [1.0, 0.0],
               "sign": [1.0, -1.0], "distribution": [0.5]}.get(s.target_kind)
    if targets is None:
        raise UsageError(f"losses --plot cannot draw {s.name!r}; plot it from Python")
    out = []
    for tv in targets:
        v, g = _value_and_grad(per, inputs.copy(), np.full(inputs.shape, tv))
        out.append((f"target {tv:g}", v, g))
    return inputs, out


def _value_and_grad(loss: Any, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        v, g = loss.value_and_grad(x, t)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"losses --plot cannot draw {loss!r} over the usual range ({exc}); "
                         f"plot it from Python") from None
    return np.asarray(v, dtype=float), np.asarray(g, dtype=float)


def _plot_loss(loss: Any, path: str) -> str:
    if not path.lower().endswith(".png"):
        raise UsageError(f"--plot {path!r}: give a .png file name, e.g. --plot {loss.name}.png",
                         flag="--plot")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"--plot {path!r}: directory {parent!r} does not exist", flag="--plot")
    z, curves = _curve(loss)
    from losslab.cli import plots

    why = plots.unavailable()
    if why:
        raise UsageError("--plot needs matplotlib: pip install 'losslab[cli]'", flag="--plot")
    try:
        plots.plot_loss_shape(repr(loss), z, curves, path)
    except OSError as exc:
        raise OutputError(f"cannot write --plot {path!r}: {exc.strerror}", flag="--plot") \
            from None
    return path


# --- gradcheck ------------------------------------------------------------------------------

# Central differences with step h: the rounding of each loss evaluation (about eps |f| times a
# few, growing like log2 of the number of summed terms) divided by 2h is the noise floor of the
# estimate. An entry passes when |analytic - numeric| <= tol * max(|analytic|, |numeric|) plus
# that floor: an exact gradient entry of 1e-6 next to a loss of 0.4 is not a false alarm, and a
# wrong entry is still caught unless it is below what finite differences can resolve.
STEP = 1e-6


def compare_gradients(report: dict[str, tuple[np.ndarray, np.ndarray]], f: float,
                      tol: float, step: float = STEP) -> dict[str, float]:
    """Largest relative error, the noise floor, and the largest error in units of the allowance
    (<= 1 passes)."""
    worst_rel, worst_ratio, floor = 0.0, 0.0, 0.0
    for analytic, numeric in report.values():
        if analytic.size == 0:
            continue
        size = sum(a.size for a, _ in report.values())
        floor = (4.0 + math.log2(max(size, 1))) * np.finfo(np.float64).eps * max(abs(f), 1e-300) \
            / step
        err = np.abs(analytic - numeric)
        scale = np.maximum(np.abs(analytic), np.abs(numeric))
        worst_rel = max(worst_rel, float(np.max(err / np.maximum(scale, 1e-6))))
        worst_ratio = max(worst_ratio, float(np.max(err / (tol * scale + floor))))
    return {"max_relative_error": worst_rel, "noise_floor": floor, "worst_ratio": worst_ratio}


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
        raise UsageError("--trials must be at least 1", flag="--trials")
    if not (math.isfinite(args.tol) and args.tol > 0):
        raise UsageError(f"--tol must be a positive number; got {args.tol!r}", flag="--tol")
    loss = get_loss(spec.name, options, "gradcheck")
    from losslab.gradcheck import check_gradient

    rng = np.random.default_rng(args.seed)
    worst = {"max_relative_error": 0.0, "noise_floor": 0.0, "worst_ratio": 0.0}
    for _ in range(args.trials):
        try:
            inputs = loss.example(rng, "float64")
            report = check_gradient(loss, inputs, eps=STEP)
            f = float(np.sum(np.asarray(loss(*inputs), dtype=np.float64)))
        except (ValueError, TypeError) as exc:
            raise UsageError(f"gradcheck {loss!r}: {exc}") from None
        r = compare_gradients(report, f, args.tol)
        worst = {k: max(worst[k], r[k]) for k in worst}
    ok = worst["worst_ratio"] <= 1.0
    if args.json:
        print(json.dumps({"loss": spec.name, "options": _jsonable(options), "trials": args.trials,
                          "max_relative_error": worst["max_relative_error"],
                          "noise_floor": worst["noise_floor"],
                          "error_over_allowance": worst["worst_ratio"], "tol": args.tol,
                          "ok": ok}))
    else:
        print(f"{loss!r}: gradient vs central finite differences (float64, step={STEP:g})")
        print(f"  trials: {args.trials}, largest relative error: "
              f"{worst['max_relative_error']:.3e}, largest error over its allowance "
              f"(tol {args.tol:g} x entry + finite-difference noise "
              f"{worst['noise_floor']:.1e}): {worst['worst_ratio']:.3f} "
              f"({'ok' if ok else 'FAILED'})")
    if not ok:
        print(f"losslab: gradient check failed for {loss!r}", file=sys.stderr)
    return 0 if ok else 1
