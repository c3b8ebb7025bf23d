"""``losslab lr-find``: the learning-rate range test, or a sweep of short runs.

Range test: the engine's ``losslab.train.lr_find`` (Smith 2017, as fastai and Lightning run it:
a per-batch exponential schedule plus a callback, the trainer restored afterwards). Its rule for
the suggestion (``RULE``) reads a lag-free smoothing of the raw loss up to where the raw loss
diverges, so the suggestion is never taken where the loss is already blowing up; the plot shows
the raw loss, its running average and that curve, with the suggestion marked. A suggestion at the
edge of the range (or a loss still falling at --lr-max) says the best rate may lie beyond it.

Sweep: separate short runs (--sweep-epochs) from the same initialisation at log-spaced (grid) or
log-uniform random rates; the best rate has the lowest final validation loss.
"""

from __future__ import annotations

import csv
import io
import math
import time

import numpy as np

from losslab.cli import pipeline as P
from losslab.cli.config import LrFindConfig
from losslab.cli.console import Console, to_json
from losslab.cli.errors import TrainingDiverged, UsageError
from losslab.cli.train import command_line, open_run, plots_on


def run(cfg: LrFindConfig, console: Console) -> int:
    data = P.load_data(cfg, [cfg.loss] if cfg.loss else [], default_dataset="article_line")
    choice = cfg.loss or P.default_loss(data.task)
    plan = P.make_plan(choice, data, "--loss", cfg.data.standardize_target)
    (train_rows, val_rows), = P.splits(data, cfg)
    split = P.prepare(data, cfg, train_rows, val_rows)
    if cfg.sweep:
        return _sweep(cfg, console, data, plan, split)
    return _range_test(cfg, console, data, plan, split)


def _range_test(cfg: LrFindConfig, console: Console, data, plan, split) -> int:
    from losslab.train import lr_find

    trainer = P.build_trainer(cfg.fit, plan, split, lr=cfg.lr_min)
    y = P.encode_targets(plan, split, split.y_train, cfg.fit.dtype)
    draw = plots_on(cfg, console)
    with open_run(cfg, "lr-find") as rundir:
        bar = console.progress(cfg.steps, "lr-find", unit="step")
        t0 = time.perf_counter()
        res = lr_find(trainer, split.X_train, y, start_lr=cfg.lr_min, end_lr=cfg.lr_max,
                      num_steps=cfg.steps, batch_size=cfg.fit.batch_size)
        elapsed = time.perf_counter() - t0
        if bar is not None:
            bar.update(res.steps, lr=f"{res.lrs[-1]:.2e}" if res.lrs else "-")
            bar.close()
        if res.steps < 2:
            raise UsageError(f"the loss diverged at once ({res.stopped}); lower --lr-min "
                             f"(now {cfg.lr_min:g})", flag="--lr-min")
        suggested = res.suggestion
        i_min = int(np.argmin(res.smoothed))
        summary = {
            "suggested_lr": suggested, "rule": res.rule, "at_edge": res.at_edge,
            "min_loss_lr": res.lrs[i_min], "min_smoothed_loss": res.smoothed[i_min],
            "steps_run": res.steps, "stopped": res.stopped, "seconds": elapsed,
            "loss": plan.label, "data": data.source,
        }
        edge_note = ("the suggestion lies at the edge of the range searched (or the loss was "
                     "still falling at --lr-max): the best rate may lie beyond it; widen "
                     "--lr-min/--lr-max") if res.at_edge else ""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["step", "lr", "loss", "smoothed_loss", "lag_free_loss"])
        for i in range(res.steps):
            lag = repr(res.lag_free[i]) if i < len(res.lag_free) else ""
            w.writerow([i, repr(res.lrs[i]), repr(res.losses[i]), repr(res.smoothed[i]), lag])
        rundir.write("lr_find.csv", buf.getvalue())
        plots = {}
        if draw:
            from losslab.cli import plots as pl

            plots["Loss against learning rate"] = pl.plot_lr_find(
                res.lrs, res.losses, res.smoothed, suggested, rundir.path("lr_find.png"),
                lag_free=res.lag_free)
        settings = {**cfg.effective_settings(), "loss": plan.label}
        settings.pop("lr", None)  # the range test sets the rate itself
        rundir.write("metrics.json", to_json({"command": "lr-find", **summary,
                                              "settings": settings}, indent=2) + "\n")
        from losslab.cli import report

        rundir.write("report.html", report.render_report(
            title=f"losslab lr-find: {plan.label} on {data.source}",
            command=command_line(cfg.argv),
            notes=[res.rule + ".", f"Stopped: {res.stopped}."] + ([edge_note] if edge_note else [])
            + data.notes,
            metrics={k: v for k, v in summary.items() if k != "rule"},
            settings=settings, plots=plots))
        out = rundir.commit()
    if suggested is None:
        console.say("no suggestion: the loss never fell; widen --lr-min/--lr-max")
    else:
        console.say(f"suggested learning rate: {suggested:.3g}")
    console.say(f"  rule: {res.rule}")
    if edge_note:
        console.say(f"  {edge_note}")
    console.say(f"  lowest smoothed loss {res.smoothed[i_min]:.4g} at lr={res.lrs[i_min]:.3g};"
                f" {res.steps} steps, stopped: {res.stopped}")
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
