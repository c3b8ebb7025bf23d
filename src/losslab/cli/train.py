"""``losslab train``: the article's experiment, or a model trained on the user's data."""

from __future__ import annotations

import shlex
import sys
import time
from typing import Any

import numpy as np

from losslab.cli.build import default_loss, load_data, plan_loss
from losslab.cli.common import Console, RunDir, progress_callback, write_json
from losslab.cli.fitting import (
    final_metrics,
    fit,
    line_fit,
    make_trainer,
    model_extra,
    prepare,
    save_model,
)
from losslab.cli.options import UsageError, parse_spec

# Settings the article's experiment honours; any other training setting needs data.
_ARTICLE_OK = {"seed", "lr", "epochs", "out", "overwrite", "quiet", "json", "plots", "config"}


def command_line(args: Any) -> str:
    argv = getattr(args, "_argv", None) or sys.argv[1:]
    return "losslab " + " ".join(shlex.quote(a) for a in argv)


def settings_for_report(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items()
            if not k.startswith("_") and (k in settings["_given"] or k in _SHOWN)}


_SHOWN = ("model", "optimizer", "lr", "schedule", "epochs", "batch_size", "val_split", "seed",
          "dtype", "standardize")


def run(settings: dict[str, Any], console: Console, args: Any) -> int:
    if settings["data"] is None and settings["dataset"] is None:
        return _article(settings, console, args)
    return _train(settings, console, args)


def _article(settings: dict[str, Any], console: Console, args: Any) -> int:
    extra = sorted(k for k in settings["_given"] if k not in _ARTICLE_OK)
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise UsageError(
            f"{flags} {'needs' if len(extra) == 1 else 'need'} data: without --data or "
            f"--dataset, 'losslab train' runs the "
            f"article's fixed experiment (linear model, MSE, SGD); add --dataset article_line "
            f"to train on its data with your settings"
        )
    from losslab.train import experiments

    lr = float(settings["lr"]) if settings["lr"] is not None else 0.01
    steps = int(settings["epochs"]) if "epochs" in settings["_given"] else 1000
    rundir = RunDir(settings["out"], "train", bool(settings["overwrite"]))
    from losslab.cli import plots as P

    # Started first: the worker imports matplotlib while the experiment runs.
    painter = P.Painter(enabled=bool(settings["plots"]))
    with rundir, painter:
        t0 = time.perf_counter()
        try:
            bar = progress_callback(console, steps, "article")
            res = experiments.article_experiment(
                seed=int(settings["seed"]), lr=lr, steps=steps,
                callbacks=[bar] if bar is not None else ())
        except ValueError as exc:  # a diverging learning rate, for instance
            raise UsageError(f"the article's experiment failed: {exc}") from None
        elapsed = time.perf_counter() - t0
        metrics = {"theta0": float(res.theta0), "theta1": float(res.theta1),
                   "mse": float(res.mse)}
        history = _history_dict(res.history)
        plots: dict[str, str] = {}
        if settings["plots"]:
            x = np.asarray(res.x).ravel()
            grid = np.linspace(x.min(), x.max(), 2)
            painter.draw("plot_history", history, rundir.tmp, xlabel="step")
            painter.draw("plot_fit", x, res.y,
                         {f"y = {res.theta0:.3f} + {res.theta1:.3f} x":
                          (grid, res.theta0 + res.theta1 * grid)}, rundir.path("fit.png"))
        save_model(res.trainer.model, rundir.path("model.npz"), {
            "losslab_model": 1, "feature_names": ["x"], "target_name": "y",
            "task": "regression", "classes": None, "target_kind": "real", "loss": "mse",
            "model": "linear", "dtype": str(res.trainer.dtype), "standardizer": None,
        })
        res.history.to_csv(rundir.path("history.csv"))
        if settings["plots"]:
            standard, fit_png = painter.results()
            plots = {**standard, "Fitted line": fit_png}
        payload = {
            "command": "train", "experiment": "article", **metrics,
            "steps": steps, "lr": lr, "seed": int(settings["seed"]),
            "train_seconds": elapsed,
        }
        write_json(rundir.path("metrics.json"), payload)
        from losslab.cli import report as reports

        reports.write_report(
            rundir.path("report.html"), title="losslab train: the article's experiment",
            command=command_line(args),
            notes=["Linear model y = theta0 + theta1 x fitted by full-batch gradient descent "
                   "on MSE to the article's data (np.random.seed(0), n = 100, "
                   "y = 2 + 3x + N(0, 0.5)). The article's script prints theta0 = 2.09496, "
                   "theta1 = 2.97989, MSE = 0.24812."],
            metrics=metrics,
            settings={"model": "linear (theta0 + theta1 x)", "loss": "mse", "optimizer": "sgd",
                      "lr": lr, "steps": steps, "seed": int(settings["seed"])},
            plots=plots,
        )
        out = rundir.commit()
    console.say("The article's experiment: linear model, MSE, gradient descent "
                f"(lr={lr:g}, {steps} steps)")
    console.say(f"theta0 = {res.theta0:.5f}")
    console.say(f"theta1 = {res.theta1:.5f}")
    console.say(f"MSE    = {res.mse:.5f}")
    console.say(f"wrote {out}")
    console.result({**metrics, "output_dir": out})
    return 0


def _history_dict(history: Any) -> dict[str, list[float]]:
    h = getattr(history, "history", history)
    return {k: list(v) for k, v in dict(h).items()}


def _train(settings: dict[str, Any], console: Console, args: Any) -> int:
    spec = parse_spec(settings["loss"], "--loss", "huber:delta=0.5") if settings["loss"] else None
    data = load_data(settings, [spec] if spec else [], default_dataset="article_line")
    if spec is None:
        spec = parse_spec(default_loss(data.task), "--loss", "mse")
    plan = plan_loss(spec, data)
    prep = prepare(settings, data)
    trainer = make_trainer(settings, plan, data, data.X.shape[1])
    rundir = RunDir(settings["out"], "train", bool(settings["overwrite"]))
    for note in data.notes:
        console.say(note)
    from losslab.cli import plots as P

    with P.Painter(enabled=bool(settings["plots"])) as painter:
        return _train_and_write(settings, console, args, data, plan, prep, trainer, rundir,
                                painter)


def _train_and_write(settings, console, args, data, plan, prep, trainer, rundir, painter) -> int:
    t0 = time.perf_counter()
    history = fit(settings, trainer, plan, prep, console, desc=f"train {plan.label}")
    elapsed = time.perf_counter() - t0
    h = _history_dict(history)
    held_out = prep.X_val is not None
    X_eval = prep.X_val if held_out else prep.X_train
    y_eval = prep.y_val if held_out else prep.y_train
    metrics = final_metrics(trainer, plan, X_eval, y_eval, settings["dtype"])
    metrics["train_loss"] = float(h["loss"][-1]) if h.get("loss") else float("nan")
    fitline = line_fit(trainer, prep, data, settings["dtype"])
    if fitline is not None:
        metrics["slope"] = fitline["slope"]
        metrics["intercept"] = fitline["intercept"]
    where = "validation" if held_out else "training (no --val-split)"
    with rundir:
        save_model(trainer.model, rundir.path("model.npz"),
                   model_extra(settings, data, plan, prep))
        history.to_csv(rundir.path("history.csv"))
        plots: dict[str, str] = {}
        if settings["plots"]:
            painter.draw("plot_history", h, rundir.tmp)
            if fitline is not None:
                painter.draw("plot_fit", data.X[:, 0], data.y,
                             {plan.label: (fitline["x"], fitline["y"])}, rundir.path("fit.png"),
                             xlabel=data.feature_names[0], ylabel=data.target_name)
            drawn = painter.results()
            plots = dict(drawn[0])
            if fitline is not None:
                plots["Fitted line"] = drawn[1]
        payload = {
            "command": "train", "loss": plan.label, "data": data.source,
            "task": data.task, "metrics_on": where, "epochs_run": len(h.get("loss", [])),
            "train_seconds": elapsed, "final": metrics,
            "settings": settings_for_report(settings),
            "standardizer": model_extra(settings, data, plan, prep)["standardizer"],
        }
        write_json(rundir.path("metrics.json"), payload)
        from losslab.cli import report as reports

        reports.write_report(
            rundir.path("report.html"),
            title=f"losslab train: {plan.label} on {data.source}",
            command=command_line(args),
            notes=[*data.notes, f"Metrics on the {where} data ({len(y_eval)} rows); "
                   f"{data.task}, {len(data.feature_names)} features: "
                   f"{', '.join(data.feature_names[:20])}"
                   f"{' ...' if len(data.feature_names) > 20 else ''}; "
                   f"target {data.target_name}."],
            metrics=metrics, settings=settings_for_report(settings), plots=plots,
        )
        out = rundir.commit()
    console.say(f"trained {plan.label} on {data.source} ({data.task}, "
                f"{len(h.get('loss', []))} epochs, {elapsed:.2f} s)")
    console.say(f"{where} metrics: " + ", ".join(f"{k}={v:.5g}" for k, v in metrics.items()))
    console.say(f"wrote {out}")
    console.result({**metrics, "output_dir": out})
    return 0
