"""``losslab compare``: the same model, from the same initialisation, trained with each loss."""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np

from losslab.cli.build import load_data, plan_loss
from losslab.cli.common import Console, RunDir, write_json
from losslab.cli.fitting import (
    final_metrics,
    fit,
    line_fit,
    make_trainer,
    model_extra,
    prepare,
    save_model,
)
from losslab.cli.options import UsageError, split_specs
from losslab.cli.train import _history_dict, command_line, settings_for_report

_REG_COLS = ("rmse", "mae", "r2")
_CLS_COLS = ("accuracy", "log_loss", "calibration_error")
_HEAD = {"rmse": "RMSE", "mae": "MAE", "r2": "R^2", "accuracy": "accuracy",
         "log_loss": "log-loss", "calibration_error": "ECE", "slope": "slope",
         "intercept": "intercept", "epochs": "epochs", "seconds": "seconds"}


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", label)[:60]


def run(settings: dict[str, Any], console: Console, args: Any) -> int:
    specs = split_specs(settings["losses"], "--losses", "mse,l1,huber:delta=0.5,log_cosh")
    labels = [str(s) for s in specs]
    if len(set(labels)) != len(labels):
        dup = next(x for x in labels if labels.count(x) > 1)
        raise UsageError(f"--losses lists {dup!r} twice; give each loss once")
    data = load_data(settings, specs, default_dataset="outlier_line")
    plans = [plan_loss(s, data, "--losses") for s in specs]
    prep = prepare(settings, data)
    d = data.X.shape[1]
    trainers = [make_trainer(settings, p, data, d) for p in plans]
    _check_same_init(trainers, plans)
    rundir = RunDir(settings["out"], "compare", bool(settings["overwrite"]))
    for note in data.notes:
        console.say(note)
    from losslab.cli import plots as P

    with P.Painter(enabled=bool(settings["plots"])) as painter:
        return _compare(settings, console, args, data, plans, prep, trainers, rundir, painter)


def _compare(settings, console, args, data, plans, prep, trainers, rundir, painter) -> int:
    held_out = prep.X_val is not None
    X_eval = prep.X_val if held_out else prep.X_train
    y_eval = prep.y_val if held_out else prep.y_train
    cols = _REG_COLS if data.task == "regression" else _CLS_COLS
    results: dict[str, dict[str, Any]] = {}
    histories: dict[str, dict[str, list[float]]] = {}
    fits: dict[str, dict[str, Any]] = {}
    for plan, trainer in zip(plans, trainers):
        t0 = time.perf_counter()
        history = fit(settings, trainer, plan, prep, console, desc=plan.label)
        h = _history_dict(history)
        m = final_metrics(trainer, plan, X_eval, y_eval, settings["dtype"])
        m["epochs"] = len(h.get("loss", []))
        m["seconds"] = time.perf_counter() - t0
        lf = line_fit(trainer, prep, data, settings["dtype"])
        if lf is not None:
            m["slope"], m["intercept"] = lf["slope"], lf["intercept"]
            fits[plan.label] = lf
        results[plan.label] = m
        histories[plan.label] = h
    table_cols = list(cols) + (["slope", "intercept"] if fits else []) + ["epochs"]
    where = "validation" if held_out else "training (no --val-split)"
    rows = [[label] + [results[label][c] for c in table_cols] for label in results]
    notes = [f"Held-out metrics on the {where} rows ({len(y_eval)}); every loss starts from "
             f"the same initial weights (seed {settings['seed']})."]
    if data.source in ("dataset outlier_line", "dataset article_line"):
        notes.append("The data follow y = 2 + 3x plus noise: a slope near 3 means the loss "
                     "recovered the line" + (
                         "; the outliers pull least squares (mse) away from it."
                         if data.source == "dataset outlier_line" else "."))
    with rundir:
        for plan, trainer in zip(plans, trainers):
            name = _safe(plan.label)
            save_model(trainer.model, rundir.path(f"model-{name}.npz"),
                       model_extra(settings, data, plan, prep))
            trainer.history.to_csv(rundir.path(f"history-{name}.csv"))
        plots: dict[str, str] = {}
        if settings["plots"]:
            metric = "val_rmse" if data.task == "regression" else "val_accuracy"
            if not held_out:
                metric = metric[4:]
            captions = [f"{metric} per epoch, by loss"]
            painter.draw("plot_compare", histories, metric, rundir.path("compare.png"),
                         title=f"{metric} per epoch (same initialisation)")
            if fits:
                captions.append("Fitted lines, by loss")
                painter.draw("plot_compare_fit", data.X[:, 0], data.y,
                             {k: (v["x"], v["y"]) for k, v in fits.items()},
                             rundir.path("compare_fit.png"), xlabel=data.feature_names[0],
                             ylabel=data.target_name)
            plots = dict(zip(captions, painter.results()))
        write_json(rundir.path("metrics.json"), {
            "command": "compare", "data": data.source, "task": data.task,
            "metrics_on": where, "results": results,
            "settings": settings_for_report(settings),
        })
        from losslab.cli import report as reports

        reports.write_report(
            rundir.path("report.html"), title=f"losslab compare on {data.source}",
            command=command_line(args), notes=notes + data.notes,
            tables=[reports.Table("Comparison", ["loss"] + [_HEAD[c] for c in table_cols],
                                  rows)],
            settings=settings_for_report(settings), plots=plots,
        )
        out = rundir.commit()
    console.say(f"compare on {data.source} ({data.task}); {where} metrics, same initialisation")
    console.say(_format_table(["loss"] + [_HEAD[c] for c in table_cols], rows))
    for n in notes[1:]:
        console.say(n)
    console.say(f"wrote {out}")
    console.result({"results": results, "output_dir": out})
    return 0


def _check_same_init(trainers: list[Any], plans: list[Any]) -> None:
    """Same architecture -> identical initial weights (the comparison's premise); asserted."""
    first = trainers[0].model.parameters()
    for t, p in zip(trainers[1:], plans[1:]):
        if p.out_features != plans[0].out_features:
            continue
        for k, v in t.model.parameters().items():
            assert np.array_equal(v, first[k]), f"initial weights differ for {p.label} ({k})"


def _format_table(headers: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 1e5 else f"{v:.4g}"
        return str(v)

    cells = [[fmt(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(  # noqa: E731
        (c.ljust(w) if i == 0 else c.rjust(w)) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])
