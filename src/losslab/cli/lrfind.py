"""``losslab lr-find``: the learning-rate range test, or a sweep of short runs.

Range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017; the fastai
``lr_find``): one run whose learning rate rises exponentially from --lr-min to --lr-max over
--steps mini-batch steps. The loss is smoothed with a bias-corrected exponential moving average
(beta = 0.98) and the test stops when the smoothed loss exceeds 4x its best (divergence).

Suggested rate (the rule, stated in the output): the rate where the smoothed loss falls fastest,
i.e. the minimum of d(smoothed loss)/d(log10 lr), searched between the first 10% of the steps and
the point where the smoothed loss reaches its minimum.

Sweep: separate short runs (--sweep-epochs) from the same initialisation at log-spaced (grid) or
log-uniform random rates; the best rate has the lowest final validation loss.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from typing import Any

import numpy as np

from losslab.cli.build import default_loss, encode_targets, load_data, plan_loss
from losslab.cli.common import Console, RunDir, write_json
from losslab.cli.fitting import make_trainer, prepare
from losslab.cli.options import UsageError, parse_spec
from losslab.cli.train import command_line, settings_for_report

BETA = 0.98
DIVERGE_FACTOR = 4.0
RULE = ("suggested rate = where the smoothed loss falls fastest: the minimum of "
        "d(smoothed loss)/d(log10 lr), between the first 10% of steps and the loss minimum")


def run(settings: dict[str, Any], console: Console, args: Any) -> int:
    settings = dict(settings)
    if "schedule" in settings["_given"] and settings["schedule"] != "constant":
        raise UsageError("lr-find sets the learning rate itself; drop --schedule")
    settings["schedule"] = "constant"
    spec = parse_spec(settings["loss"], "--loss", "huber:delta=0.5") if settings["loss"] else None
    data = load_data(settings, [spec] if spec else [], default_dataset="article_line")
    if spec is None:
        spec = parse_spec(default_loss(data.task), "--loss", "mse")
    plan = plan_loss(spec, data)
    prep = prepare(settings, data)
    if settings["sweep"]:
        return _sweep(settings, console, args, data, plan, prep)
    return _range_test(settings, console, args, data, plan, prep)


def range_test(trainer: Any, X: np.ndarray, y: np.ndarray, lr_min: float, lr_max: float,
               steps: int, batch_size: int, seed: int, bar: Any = None) -> dict[str, Any]:
    """Run the test; returns rates, raw and smoothed losses (as far as it got)."""
    from losslab.train.trainer import NonFiniteError

    rng = np.random.default_rng(seed)
    n = len(X)
    bs = min(batch_size, n)
    ratio = lr_max / lr_min
    lrs, losses, smooth = [], [], []
    avg, best = 0.0, math.inf
    order = rng.permutation(n)
    pos = 0
    stop = "reached --lr-max"
    for i in range(steps):
        lr = lr_min * ratio ** (i / (steps - 1))
        if pos + bs > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + bs]
        pos += bs
        trainer.optimizer.lr = lr
        try:
            loss = float(trainer.train_step(X[idx], y[idx]))
        except NonFiniteError:
            stop = f"loss became non-finite at lr={lr:.3g}"
            break
        avg = BETA * avg + (1 - BETA) * loss
        s = avg / (1 - BETA ** (i + 1))
        lrs.append(lr)
        losses.append(loss)
        smooth.append(s)
        if bar is not None:
            bar.set_postfix({"lr": f"{lr:.2e}", "loss": f"{s:.4g}"}, refresh=False)
            bar.update(1)
        best = min(best, s)
        if i > steps // 10 and s > DIVERGE_FACTOR * best:
            stop = f"smoothed loss exceeded {DIVERGE_FACTOR:g}x its minimum at lr={lr:.3g}"
            break
    return {"lr": lrs, "loss": losses, "smoothed": smooth, "stopped": stop}


def suggest_lr(lrs: list[float], smoothed: list[float]) -> float | None:
    """The rule in ``RULE``; None when the loss never fell."""
    if len(lrs) < 5:
        return None
    s = np.asarray(smoothed)
    start = max(1, len(s) // 10)
    end = int(np.argmin(s)) + 1
    if end - start < 3:
        return None
    logs = np.log10(np.asarray(lrs))
    slope = np.gradient(s, logs)
    k = start + int(np.argmin(slope[start:end]))
    if slope[k] >= 0:
        return None
    return float(lrs[k])


def _range_test(settings, console: Console, args, data, plan, prep) -> int:
    trainer = make_trainer(settings, plan, data, data.X.shape[1], lr=settings["lr_min"])
    rundir = RunDir(settings["out"], "lr-find", bool(settings["overwrite"]))
    y = encode_targets(plan, prep.y_train, settings["dtype"])
    steps = int(settings["steps"])
    bar = None
    if console.show_progress:
        from tqdm import tqdm

        from losslab.cli import common

        bar = tqdm(total=steps, desc="lr-find", unit="step", delay=common.PROGRESS_DELAY,
                   mininterval=common.PROGRESS_MININTERVAL, leave=False, file=sys.stderr)
    t0 = time.perf_counter()
    try:
        res = range_test(trainer, prep.X_train, y, float(settings["lr_min"]),
                         float(settings["lr_max"]), steps, int(settings["batch_size"]),
                         int(settings["seed"]), bar)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    if len(res["lr"]) < 2:
        raise UsageError(
            f"the loss diverged at once ({res['stopped']}); lower --lr-min "
            f"(now {settings['lr_min']:g})"
        )
    suggested = suggest_lr(res["lr"], res["smoothed"])
    i_min = int(np.argmin(res["smoothed"]))
    summary = {
        "suggested_lr": suggested, "rule": RULE,
        "min_loss_lr": res["lr"][i_min], "min_smoothed_loss": res["smoothed"][i_min],
        "steps_run": len(res["lr"]), "stopped": res["stopped"], "seconds": elapsed,
        "loss": plan.label, "data": data.source,
    }
    with rundir:
        with open(rundir.path("lr_find.csv"), "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["step", "lr", "loss", "smoothed_loss"])
            for i, (a, b, c) in enumerate(zip(res["lr"], res["loss"], res["smoothed"])):
                w.writerow([i, repr(a), repr(b), repr(c)])
        plots = {}
        if settings["plots"]:
            from losslab.cli import plots as P

            plots["Loss against learning rate"] = P.plot_lr_find(
                res["lr"], res["loss"], res["smoothed"], suggested, rundir.path("lr_find.png"))
        write_json(rundir.path("metrics.json"), {"command": "lr-find", **summary,
                                                 "settings": settings_for_report(settings)})
        from losslab.cli import report as reports

        reports.write_report(
            rundir.path("report.html"), title=f"losslab lr-find: {plan.label} on {data.source}",
            command=command_line(args), notes=[RULE + ".", f"Stopped: {res['stopped']}."],
            metrics={k: v for k, v in summary.items() if k not in ("rule",)},
            settings=settings_for_report(settings), plots=plots,
        )
        out = rundir.commit()
    if suggested is None:
        console.say("no suggestion: the smoothed loss never fell; widen --lr-min/--lr-max")
    else:
        console.say(f"suggested learning rate: {suggested:.3g}")
    console.say(f"  rule: {RULE}")
    console.say(f"  lowest smoothed loss {res['smoothed'][i_min]:.4g} at lr={res['lr'][i_min]:.3g};"
                f" {len(res['lr'])} steps, stopped: {res['stopped']}")
    console.say(f"wrote {out}")
    console.result({**summary, "output_dir": out})
    return 0


def _sweep_rates(settings: dict[str, Any]) -> np.ndarray:
    text = settings["sweep_range"]
    parts = text if isinstance(text, list | tuple) else str(text).split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise UsageError(f"--sweep-range {text!r}: write LO,HI, e.g. --sweep-range 1e-4,1") \
            from None
    if not (0 < lo < hi):
        raise UsageError(f"--sweep-range {text!r}: need 0 < LO < HI, e.g. 1e-4,1")
    k = int(settings["sweep_points"])
    if settings["sweep"] == "random":
        rng = np.random.default_rng(int(settings["seed"]))
        return np.sort(np.exp(rng.uniform(math.log(lo), math.log(hi), k)))
    return np.logspace(math.log10(lo), math.log10(hi), k)


def _sweep(settings, console: Console, args, data, plan, prep) -> int:
    from losslab.cli.fitting import fit

    rates = _sweep_rates(settings)
    rundir = RunDir(settings["out"], "lr-sweep", bool(settings["overwrite"]))
    epochs = int(settings["sweep_epochs"])
    key = "val_loss" if prep.X_val is not None else "loss"
    finals: list[float] = []
    for lr in rates:
        trainer = make_trainer(settings, plan, data, data.X.shape[1], lr=float(lr))
        try:
            h = fit(settings, trainer, plan, prep, Console(True, False), epochs=epochs,
                    early_stopping=False)
            v = float(h[key][-1])
        except UsageError:  # diverged (NonFiniteError)
            v = math.inf
        finals.append(v if math.isfinite(v) else math.inf)
        console.say(f"  lr={lr:.3g}: final {key} = {v:.5g}" if math.isfinite(v)
                    else f"  lr={lr:.3g}: diverged")
    f = np.asarray(finals)
    if not np.isfinite(f).any():
        raise UsageError("every rate in the sweep diverged; lower --sweep-range")
    best = float(rates[int(np.argmin(f))])
    summary = {"best_lr": best, "rule": f"lowest final {key} after {epochs} epochs",
               "rates": rates.tolist(), f"final_{key}": [x if math.isfinite(x) else None
                                                         for x in finals],
               "loss": plan.label, "data": data.source, "mode": settings["sweep"]}
    with rundir:
        with open(rundir.path("sweep.csv"), "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["lr", f"final_{key}"])
            for r, v in zip(rates, finals):
                w.writerow([repr(float(r)), repr(v)])
        plots = {}
        if settings["plots"]:
            from losslab.cli import plots as P

            plots["Final loss against learning rate"] = P.plot_sweep(
                rates, finals, rundir.path("sweep.png"), best=best,
                ylabel=f"final {key.replace('_', ' ')}")
        write_json(rundir.path("metrics.json"), {"command": "lr-find --sweep", **summary,
                                                 "settings": settings_for_report(settings)})
        from losslab.cli import report as reports

        reports.write_report(
            rundir.path("report.html"), title=f"losslab lr-find --sweep: {plan.label}",
            command=command_line(args),
            notes=[f"{len(rates)} runs of {epochs} epochs from the same initialisation; "
                   f"best = {summary['rule']}."],
            metrics={"best_lr": best, "loss": plan.label, "data": data.source},
            tables=[reports.Table("Sweep", ["learning rate", f"final {key}"],
                                  [[float(r), v] for r, v in zip(rates, finals)])],
            settings=settings_for_report(settings), plots=plots,
        )
        out = rundir.commit()
    console.say(f"best learning rate: {best:.3g} ({summary['rule']})")
    console.say(f"wrote {out}")
    console.result({**summary, "output_dir": out})
    return 0
