"""``losslab train``: the article's experiment, or a model trained on the user's data."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from losslab.cli import pipeline as P
from losslab.cli.config import TrainConfig
from losslab.cli.console import Console, to_json
from losslab.cli.errors import UsageError
from losslab.cli.outdir import RunDir

ARTICLE_LR = 0.01  # the article's rate (the article's experiment ignores the defaults of --lr)
# Settings the article's experiment honours; any other training setting needs data.
_ARTICLE_OK = {"seed", "lr", "epochs", "out", "overwrite", "quiet", "json", "plots"}


def command_line(argv: tuple[str, ...]) -> str:
    import shlex

    return "losslab " + " ".join(shlex.quote(a) for a in argv)


def open_run(cfg: Any, name: str) -> RunDir:
    o = cfg.output
    return RunDir(o.out, name, overwrite=o.overwrite, inputs=cfg.inputs)


def plots_on(cfg: Any, console: Console) -> bool:
    """Plots asked for and possible; says in one line why not when matplotlib is missing."""
    if not cfg.output.plots:
        return False
    from losslab.cli import plots

    why = plots.unavailable()
    if why:
        console.note(why)
        return False
    return True


def save_model(rundir: RunDir, name: str, model: Any, extra: dict[str, Any]) -> None:
    from losslab.cli.errors import OutputError
    from losslab.train.checkpoint import save_model as _save

    try:
        _save(model, rundir.path(name), extra=extra)
    except OSError as exc:
        raise OutputError(f"cannot write {name}: {exc.strerror}", flag="--out") from None


def run(cfg: TrainConfig, console: Console) -> int:
    if cfg.data.data is None and cfg.data.dataset is None:
        return _article(cfg, console)
    return _train(cfg, console)


def _article(cfg: TrainConfig, console: Console) -> int:
    extra = sorted(k for k in cfg.given if k not in _ARTICLE_OK)
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise UsageError(
            f"{flags} {'needs' if len(extra) == 1 else 'need'} data: without --data or "
            f"--dataset, 'losslab train' runs the article's fixed experiment (linear model, MSE, "
            f"SGD); add --dataset article_line to train on its data with your settings")
    from losslab.train import experiments

    lr = cfg.fit.lr if "lr" in cfg.given else ARTICLE_LR
    steps = cfg.fit.epochs if "epochs" in cfg.given else 1000
    seed = cfg.fit.seed
    draw = plots_on(cfg, console)
    with open_run(cfg, "train") as rundir:
        t0 = time.perf_counter()
        bar = P.progress_callback(console, steps, "article")
        try:
            res = experiments.article_experiment(seed=seed, lr=lr, steps=steps,
                                                 callbacks=[bar] if bar is not None else ())
        except ValueError as exc:  # a diverging learning rate, for instance
            raise UsageError(f"the article's experiment failed: {exc}") from None
        elapsed = time.perf_counter() - t0
        metrics = {"theta0": float(res.theta0), "theta1": float(res.theta1),
                   "mse": float(res.mse)}
        history = P.history_dict(res.history)
        plots: dict[str, str] = {}
        if draw:
            from losslab.cli import plots as pl

            plots = pl.plot_history(history, rundir.path, xlabel="step")
            x = np.asarray(res.x).ravel()
            grid = np.linspace(x.min(), x.max(), 2)
            plots["Fitted line"] = pl.plot_fit(
                x, res.y, {f"y = {res.theta0:.3f} + {res.theta1:.3f} x":
                           (grid, res.theta0 + res.theta1 * grid)}, rundir.path("fit.png"))
        save_model(rundir, "model.npz", res.trainer.model, {
            "losslab_model": 2, "feature_names": ["x"], "target_name": "y",
            "task": "regression", "classes": None, "encoding": "real", "probabilities": False,
            "loss": "mse", "model": "linear", "dtype": str(res.trainer.dtype),
            "standardizer": None, "target_scaler": None,
        })
        rundir.write("history.csv", P.history_csv(res.history))
        settings = {"model": "linear (theta0 + theta1 x)", "loss": "mse", "optimizer": "sgd",
                    "lr": lr, "steps": steps, "batch": "full (100 rows)", "seed": seed}
        rundir.write("metrics.json", to_json({
            "command": "train", "experiment": "article", **metrics, "steps": steps, "lr": lr,
            "seed": seed, "train_seconds": elapsed, "settings": settings}, indent=2) + "\n")
        from losslab.cli import report

        rundir.write("report.html", report.render_report(
            title="losslab train: the article's experiment", command=command_line(cfg.argv),
            notes=["Linear model y = theta0 + theta1 x fitted by full-batch gradient descent "
                   "on MSE to the article's data (np.random.seed(0), n = 100, "
                   "y = 2 + 3x + N(0, 0.5)). The article's script prints theta0 = 2.09496, "
                   "theta1 = 2.97989, MSE = 0.24812."],
            metrics=metrics, settings=settings, plots=plots))
        out = rundir.commit()
    console.say("The article's experiment: linear model, MSE, gradient descent "
                f"(lr={lr:g}, {steps} steps)")
    console.say(f"theta0 = {res.theta0:.5f}")
    console.say(f"theta1 = {res.theta1:.5f}")
    console.say(f"MSE    = {res.mse:.5f}")
    console.say(f"wrote {out}")
    console.result({**metrics, "output_dir": out})
    return 0


def _train(cfg: TrainConfig, console: Console) -> int:
    data = P.load_data(cfg, [cfg.loss] if cfg.loss else [], default_dataset="article_line")
    choice = cfg.loss or P.default_loss(data.task)
    plan = P.make_plan(choice, data, "--loss", cfg.data.standardize_target)
    (train_rows, val_rows), = P.splits(data, cfg)
    split = P.prepare(data, cfg, train_rows, val_rows)
    P.early_stopping(cfg.fit, plan, split.has_val)  # its monitor checked before training
    trainer = P.build_trainer(cfg.fit, plan, split)
    notes = list(data.notes)
    sched = P.schedule_note(cfg.fit, cfg.fit.epochs)
    if sched:
        notes.append(sched)
    if plan.scale_target:
        notes.append(f"target standardised for training: (y - {split.target_mean:.6g}) / "
                     f"{split.target_scale:g} (its median, and the power of ten nearest its "
                     f"spread; stored with the model); metrics and predictions are on the "
                     f"original scale, the per-epoch loss, rmse and mae in history.csv on the "
                     f"standardised one")
    draw = plots_on(cfg, console)
    with open_run(cfg, "train") as rundir:
        t0 = time.perf_counter()
        history = P.fit(trainer, plan, split, cfg.fit, console, desc=f"train {plan.label}")
        elapsed = time.perf_counter() - t0
        h = P.history_dict(history)
        X_eval, y_eval, where = split.eval_set()
        metrics = P.evaluate(trainer, plan, split, X_eval, y_eval, cfg.fit.dtype)
        metrics["train_loss"] = float(h["loss"][-1]) if h.get("loss") else float("nan")
        fitline = P.line_fit(trainer, plan, split, data, cfg.fit.dtype)
        if fitline is not None:
            metrics["slope"] = fitline["slope"]
            metrics["intercept"] = fitline["intercept"]
        extra = P.model_extra(cfg.fit, data, plan, split)
        save_model(rundir, "model.npz", trainer.model, extra)
        rundir.write("history.csv", P.history_csv(history))
        plots: dict[str, str] = {}
        if draw:
            from losslab.cli import plots as pl

            plots = pl.plot_history(h, rundir.path)
            if fitline is not None:
                plots["Fitted line"] = pl.plot_fit(
                    data.X[:, 0], data.targets, {plan.label: (fitline["x"], fitline["y"])},
                    rundir.path("fit.png"), xlabel=data.feature_names[0],
                    ylabel=data.target_name)
        settings = {**cfg.effective_settings(), "loss": plan.label,
                    "epochs_run": len(h.get("loss", []))}
        rundir.write("metrics.json", to_json({
            "command": "train", "loss": plan.label, "data": data.source, "task": data.task,
            "metrics_on": where, "epochs_run": len(h.get("loss", [])),
            "train_seconds": elapsed, "final": metrics, "settings": settings,
            "standardizer": extra["standardizer"], "target_scaler": extra["target_scaler"],
            "notes": notes}, indent=2) + "\n")
        from losslab.cli import report

        rundir.write("report.html", report.render_report(
            title=f"losslab train: {plan.label} on {data.source}",
            command=command_line(cfg.argv),
            notes=[*notes, f"Metrics on the {where} data ({len(y_eval)} rows); {data.task}, "
                   f"{len(data.feature_names)} features: "
                   f"{', '.join(data.feature_names[:20])}"
                   f"{' ...' if len(data.feature_names) > 20 else ''}; "
                   f"target {data.target_name}."],
            metrics=metrics, settings=settings, plots=plots))
        out = rundir.commit()
    for note in notes:
        console.say(note)
    console.say(f"trained {plan.label} on {data.source} ({data.task}, "
                f"{len(h.get('loss', []))} epochs, {elapsed:.2f} s)")
    console.say(f"{where} metrics: " + ", ".join(f"{k}={v:.5g}" for k, v in metrics.items()))
    console.say(f"wrote {out}")
    console.result({**metrics, "output_dir": out})
    return 0
