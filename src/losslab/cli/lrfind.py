"""``losslab lr-find``: the learning-rate range test, or a sweep of short runs.

Range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017; the fastai
``lr_find``): one run whose learning rate rises exponentially from --lr-min to --lr-max over
--steps mini-batch steps. The loss is smoothed with a bias-corrected exponential moving average
(beta = 0.98) and the test stops when the smoothed loss exceeds 4x its best (divergence).

Suggested rate: fastai's "valley" rule, which is robust to the smoothing's lag: take the longest
stretch over which the smoothed loss keeps falling (the longest decreasing subsequence), and
suggest the rate half way along it (fastai: a third plus a sixth of its length), well before the
bottom where the raw loss may already be turning up. A loss still falling at --lr-max (or a
suggestion in the first 5% of the steps) says the best rate may lie beyond the range searched.

Sweep: separate short runs (--sweep-epochs) from the same initialisation at log-spaced (grid) or
log-uniform random rates; the best rate has the lowest final validation loss.
"""

from __future__ import annotations

import csv
import io
import math
import time
from typing import Any

import numpy as np

from losslab.cli import pipeline as P
from losslab.cli.config import LrFindConfig
from losslab.cli.console import Console, to_json
from losslab.cli.errors import TrainingDiverged, UsageError
from losslab.cli.train import command_line, open_run, plots_on

BETA = 0.98
DIVERGE_FACTOR = 4.0
EDGE = 0.05
RULE = ("suggested rate = half way along the longest stretch where the smoothed loss keeps "
        "falling (fastai's 'valley' rule)")


def run(cfg: LrFindConfig, console: Console) -> int:
    data = P.load_data(cfg, [cfg.loss] if cfg.loss else [], default_dataset="article_line")
    choice = cfg.loss or P.default_loss(data.task)
    plan = P.make_plan(choice, data, "--loss", cfg.data.standardize_target)
    (train_rows, val_rows), = P.splits(data, cfg)
    split = P.prepare(data, cfg, train_rows, val_rows)
    if cfg.sweep:
        return _sweep(cfg, console, data, plan, split)
    return _range_test(cfg, console, data, plan, split)


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
            bar.update(1, lr=f"{lr:.2e}", loss=s)
        best = min(best, s)
        if i > steps // 10 and s > DIVERGE_FACTOR * best:
            stop = f"smoothed loss exceeded {DIVERGE_FACTOR:g}x its minimum at lr={lr:.3g}"
            break
    return {"lr": lrs, "loss": losses, "smoothed": smooth, "stopped": stop}


def valley(smoothed: list[float]) -> int | None:
    """Index of fastai's "valley" suggestion in ``smoothed``; None when it never falls."""
    s = np.asarray(smoothed, dtype=float)
    n = len(s)
    if n < 5:
        return None
    # Longest decreasing subsequence ending at each step (O(n^2) on a few hundred steps).
    lds = np.ones(n, dtype=np.int64)
    for i in range(1, n):
        earlier = s[:i] > s[i]
        if earlier.any():
            lds[i] = int(lds[:i][earlier].max()) + 1
    end = int(np.argmax(lds))
    length = int(lds[end])
    if length < 3:
        return None
    # As fastai computes it (learner.py, ``valley``): from ``end - length``, a third of the
    # length plus a sixth.
    start = end - length
    return start + int(length / 3) + int(length / 3 / 2)


def _range_test(cfg: LrFindConfig, console: Console, data, plan, split) -> int:
    trainer = P.build_trainer(cfg.fit, plan, split, lr=cfg.lr_min)
    y = P.encode_targets(plan, split, split.y_train, cfg.fit.dtype)
    steps = cfg.steps
    draw = plots_on(cfg, console)
    with open_run(cfg, "lr-find") as rundir:
        bar = console.progress(steps, "lr-find", unit="step")
        t0 = time.perf_counter()
        try:
            res = range_test(trainer, split.X_train, y, cfg.lr_min, cfg.lr_max, steps,
                             cfg.fit.batch_size, cfg.fit.seed, bar)
        finally:
            if bar is not None:
                bar.close()
        elapsed = time.perf_counter() - t0
        if len(res["lr"]) < 2:
            raise UsageError(f"the loss diverged at once ({res['stopped']}); lower --lr-min "
                             f"(now {cfg.lr_min:g})", flag="--lr-min")
        k = valley(res["smoothed"])
        suggested = None if k is None else float(res["lr"][k])
        i_min = int(np.argmin(res["smoothed"]))
        n_run = len(res["lr"])
        # Still falling when the range ran out, or a suggestion at its very start: the best
        # rate may lie beyond the range searched.
        low_edge = k is not None and k < EDGE * n_run
        high_edge = res["stopped"] == "reached --lr-max" and i_min >= (1 - EDGE) * (n_run - 1)
        at_edge = bool(low_edge or high_edge)
        summary = {
            "suggested_lr": suggested, "rule": RULE, "at_edge": at_edge,
            "min_loss_lr": res["lr"][i_min], "min_smoothed_loss": res["smoothed"][i_min],
            "steps_run": len(res["lr"]), "stopped": res["stopped"], "seconds": elapsed,
            "loss": plan.label, "data": data.source,
        }
        edge_note = ""
        if at_edge:
            edge_note = ("the loss was still falling at --lr-max: the best rate may lie beyond "
                         "the range searched; raise --lr-max" if high_edge else
                         "the suggestion lies at the start of the range: the best rate may lie "
                         "below it; lower --lr-min")
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["step", "lr", "loss", "smoothed_loss"])
        for i, (a, b, c) in enumerate(zip(res["lr"], res["loss"], res["smoothed"])):
            w.writerow([i, repr(a), repr(b), repr(c)])
        rundir.write("lr_find.csv", buf.getvalue())
        plots = {}
        if draw:
            from losslab.cli import plots as pl

            plots["Loss against learning rate"] = pl.plot_lr_find(
                res["lr"], res["loss"], res["smoothed"], suggested, rundir.path("lr_find.png"),
                rule=RULE)
        settings = {**cfg.effective_settings(), "loss": plan.label}
        settings.pop("lr", None)  # the range test sets the rate itself
        rundir.write("metrics.json", to_json({"command": "lr-find", **summary,
                                              "settings": settings}, indent=2) + "\n")
        from losslab.cli import report

        rundir.write("report.html", report.render_report(
            title=f"losslab lr-find: {plan.label} on {data.source}",
            command=command_line(cfg.argv),
            notes=[RULE + ".", f"Stopped: {res['stopped']}."] + ([edge_note] if edge_note else [])
            + data.notes,
            metrics={k: v for k, v in summary.items() if k != "rule"},
            settings=settings, plots=plots))
        out = rundir.commit()
    if suggested is None:
        console.say("no suggestion: the smoothed loss never fell; widen --lr-min/--lr-max")
    else:
        console.say(f"suggested learning rate: {suggested:.3g}")
    console.say(f"  rule: {RULE}")
    if edge_note:
        console.say(f"  {edge_note}")
    console.say(f"  lowest smoothed loss {res['smoothed'][i_min]:.4g} at lr={res['lr'][i_min]:.3g};"
                f" {len(res['lr'])} steps, stopped: {res['stopped']}")
    console.say(f"wrote {out}")
    console.result({**summary, "output_dir": out})
    return 0


def _sweep_rates(cfg: LrFindConfig) -> np.ndarray:
    lo, hi = cfg.sweep_range
    k = cfg.sweep_points
    if cfg.sweep == "random":
        rng = np.random.default_rng(cfg.fit.seed)
        return np.sort(np.exp(rng.uniform(math.log(lo), math.log(hi), k)))
    return np.logspace(math.log10(lo), math.log10(hi), k)


def _sweep(cfg: LrFindConfig, console: Console, data, plan, split) -> int:
    rates = _sweep_rates(cfg)
    epochs = cfg.sweep_epochs
    key = "val_loss" if split.has_val else "loss"
    finals: list[float] = []
    draw = plots_on(cfg, console)
    quiet = Console(True, False)
    with open_run(cfg, "lr-sweep") as rundir:
        for lr in rates:
            trainer = P.build_trainer(cfg.fit, plan, split, lr=float(lr))
            try:
                h = P.fit(trainer, plan, split, cfg.fit, quiet, epochs=epochs,
                          use_early_stopping=False)
                v = float(h[key][-1])
            except TrainingDiverged:
                v = math.inf
            finals.append(v if math.isfinite(v) else math.inf)
            console.say(f"  lr={lr:.3g}: final {key} = {v:.5g}" if math.isfinite(v)
                        else f"  lr={lr:.3g}: diverged")
        f = np.asarray(finals)
        if not np.isfinite(f).any():
            raise UsageError("every rate in the sweep diverged; lower --sweep-range",
                             flag="--sweep-range")
        best = float(rates[int(np.argmin(f))])
        summary = {"best_lr": best, "rule": f"lowest final {key} after {epochs} epochs",
                   "rates": rates.tolist(), f"final_{key}": [x if math.isfinite(x) else None
                                                             for x in finals],
                   "epochs_per_run": epochs, "loss": plan.label, "data": data.source,
                   "mode": cfg.sweep}
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["lr", f"final_{key}"])
        for r, v in zip(rates, finals):
            w.writerow([repr(float(r)), repr(v)])
        rundir.write("sweep.csv", buf.getvalue())
        plots = {}
        if draw:
            from losslab.cli import plots as pl

            plots["Final loss against learning rate"] = pl.plot_sweep(
                rates, finals, rundir.path("sweep.png"), best=best,
                ylabel=f"final {key.replace('_', ' ')}")
        settings = {**cfg.effective_settings(), "loss": plan.label, "epochs": epochs,
                    "lr": f"swept: {len(rates)} rates in [{rates[0]:.3g}, {rates[-1]:.3g}]"}
        rundir.write("metrics.json", to_json({"command": "lr-find --sweep", **summary,
                                              "settings": settings}, indent=2) + "\n")
        from losslab.cli import report

        rundir.write("report.html", report.render_report(
            title=f"losslab lr-find --sweep: {plan.label}", command=command_line(cfg.argv),
            notes=[f"{len(rates)} runs of {epochs} epochs each from the same initialisation; "
                   f"best = {summary['rule']}."],
            metrics={"best_lr": best, "epochs_per_run": epochs, "loss": plan.label,
                     "data": data.source},
            tables=[report.Table("Sweep", ["learning rate", "epochs", f"final {key}"],
                                 [[float(r), epochs, v] for r, v in zip(rates, finals)])],
            settings=settings, plots=plots))
        out = rundir.commit()
    console.say(f"best learning rate: {best:.3g} ({summary['rule']})")
    console.say(f"wrote {out}")
    console.result({**summary, "output_dir": out})
    return 0
