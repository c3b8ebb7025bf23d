"""``losslab compare``: the same model, from the same initialisation, trained with each loss.

One split is noise: with ``--folds K`` (K-fold cross-validation) and ``--repeats R`` every loss is
trained on the same J = K * R splits; the table shows each metric's mean and spread across them,
and a paired test (``losslab.cli.stats``) says which differences from the best loss exceed the
noise. The models, the per-epoch curves and the fitted lines shown are those of the first split.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import numpy as np

from losslab.cli import pipeline as P
from losslab.cli.config import CompareConfig
from losslab.cli.console import Console, to_json
from losslab.cli.train import command_line, open_run, plots_on, save_model

_REG_COLS = ("rmse", "mae", "r2")
_CLS_COLS = ("accuracy", "log_loss", "calibration_error")
_HEAD = {"rmse": "RMSE", "mae": "MAE", "r2": "R^2", "accuracy": "accuracy",
         "log_loss": "log-loss", "calibration_error": "ECE", "slope": "slope",
         "intercept": "intercept", "epochs": "epochs", "seconds": "seconds"}
# The metric the paired test is about, and whether larger is better.
_PRIMARY = {"regression": ("rmse", False), "classification": ("accuracy", True)}
LEVEL = 0.05


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", label)[:60]


def run(cfg: CompareConfig, console: Console) -> int:
    data = P.load_data(cfg, list(cfg.losses), default_dataset="outlier_line")
    plans = [P.make_plan(c, data, "--losses", cfg.data.standardize_target) for c in cfg.losses]
    pairs = P.splits(data, cfg, cfg.folds, cfg.repeats)
    for plan in plans:
        P.early_stopping(cfg.fit, plan, pairs[0][1] is not None)
    draw = plots_on(cfg, console)
    cols = _REG_COLS if data.task == "regression" else _CLS_COLS
    per_split: dict[str, list[dict[str, float]]] = {p.label: [] for p in plans}
    first: dict[str, Any] = {}
    with open_run(cfg, "compare") as rundir:
        for j, (train_rows, val_rows) in enumerate(pairs):
            split = P.prepare(data, cfg, train_rows, val_rows,
                              label="validation" if len(pairs) == 1 else "held-out fold")
            trainers = [P.build_trainer(cfg.fit, p, split) for p in plans]
            _check_same_init(trainers, plans)
            X_eval, y_eval, where = split.eval_set()
            for plan, trainer in zip(plans, trainers):
                t0 = time.perf_counter()
                desc = plan.label if len(pairs) == 1 else f"{plan.label} {j + 1}/{len(pairs)}"
                history = P.fit(trainer, plan, split, cfg.fit, console, desc=desc)
                m = P.evaluate(trainer, plan, split, X_eval, y_eval, cfg.fit.dtype)
                m["epochs"] = len(history["loss"])
                m["seconds"] = time.perf_counter() - t0
                lf = P.line_fit(trainer, plan, split, data, cfg.fit.dtype) if j == 0 else None
                if lf is not None:
                    m["slope"], m["intercept"] = lf["slope"], lf["intercept"]
                per_split[plan.label].append(m)
                if j == 0:
                    first[plan.label] = (trainer, history, lf, split)
        n_eval = len(y_eval)
        results = _summarise(per_split, len(pairs))
        tests, statement = _tests(per_split, data.task, pairs, len(data.targets))
        has_fit = any(v[2] is not None for v in first.values())
        table_cols = list(cols) + (["slope", "intercept"] if has_fit and len(pairs) == 1
                                   else []) + ["epochs"]
        headers = ["loss"] + [_HEAD[c] for c in table_cols]
        rows = [[label] + [_cell(results[label], c, len(pairs)) for c in table_cols]
                for label in results]
        if len(pairs) == 1:
            notes = [f"Held-out metrics on the {where} rows ({n_eval}); every loss starts from "
                     f"the same initial weights (seed {cfg.fit.seed}). One split: differences "
                     f"may be noise; --folds 5 (and --repeats) gives a mean, a spread and a "
                     f"paired test."]
        else:
            kind = (f"{cfg.folds}-fold cross-validation" if cfg.folds > 1
                    else f"{len(pairs)} random splits")
            notes = [f"{kind}{f', repeated {cfg.repeats} times' if cfg.repeats > 1 and cfg.folds > 1 else ''}: "  # noqa: E501
                     f"mean ± standard deviation over {len(pairs)} held-out sets; in each split "
                     f"every loss starts from the same initial weights (seed {cfg.fit.seed}).",
                     statement]
        if data.source in ("dataset outlier_line", "dataset article_line"):
            notes.append("The data follow y = 2 + 3x plus noise: a slope near 3 means the loss "
                         "recovered the line" + (
                             "; the outliers pull least squares (mse) away from it."
                             if data.source == "dataset outlier_line" else "."))
        if any(p.scale_target for p in plans):
            notes.append("Regression targets standardised for training; metrics are on the "
                         "original scale.")
        for label, (trainer, history, _lf, split0) in first.items():
            name = _safe(label)
            plan = next(p for p in plans if p.label == label)
            save_model(rundir, f"model-{name}.npz", trainer.model,
                       P.model_extra(cfg.fit, data, plan, split0))
            rundir.write(f"history-{name}.csv", P.history_csv(history))
        plots: dict[str, str] = {}
        if draw:
            plots = _plots(rundir, data, first, per_split, len(pairs))
        settings = {**cfg.effective_settings(),
                    "epochs_run": {k: [m["epochs"] for m in v] for k, v in per_split.items()}}
        rundir.write("metrics.json", to_json({
            "command": "compare", "data": data.source, "task": data.task,
            "metrics_on": where, "splits": len(pairs), "results": results,
            "per_split": per_split, "tests": tests, "statement": statement,
            "settings": settings}, indent=2) + "\n")
        from losslab.cli import report

        rundir.write("report.html", report.render_report(
            title=f"losslab compare on {data.source}", command=command_line(cfg.argv),
            notes=notes + data.notes,
            tables=[report.Table("Comparison", headers, rows)]
            + ([report.Table("Paired tests against the best loss",
                             ["loss", "metric", "difference (mean ± sd)", "t", "p (Holm)",
                              "exceeds the noise"],
                             [[t["loss"], _HEAD[t["metric"]],
                               f"{t['mean_diff']:+.4g} ± {t['sd_diff']:.2g}", t["t"],
                               t["p_holm"], "yes" if t["exceeds_noise"] else "no"]
                              for t in tests])] if tests else []),
            settings=settings, plots=plots))
        out = rundir.commit()
    console.say(f"compare on {data.source} ({data.task}); {where} metrics"
                + (f" over {len(pairs)} splits (mean ± sd)" if len(pairs) > 1 else "")
                + ", same initialisation")
    console.say(_format_table(headers, rows))
    for n in notes[1:] + data.notes:
        console.say(n)
    console.say(f"wrote {out}")
    console.result({"results": results, "tests": tests, "statement": statement,
                    "splits": len(pairs), "output_dir": out})
    return 0


def _summarise(per_split: dict[str, list[dict[str, float]]], n: int) -> dict[str, dict]:
    """Per loss: each metric's mean (one split: its value), and with several splits its
    standard deviation under ``spread``."""
    out: dict[str, dict] = {}
    for label, ms in per_split.items():
        keys = [k for k in ms[0] if all(k in m for m in ms)]
        entry: dict[str, Any] = {k: float(np.mean([m[k] for m in ms])) for k in keys}
        entry["epochs"] = int(round(entry["epochs"]))
        if n > 1:
            entry["spread"] = {k: float(np.std([m[k] for m in ms], ddof=1)) for k in keys}
        out[label] = entry
    return out


def _cell(result: dict[str, Any], col: str, n: int) -> Any:
    v = result.get(col, math.nan)
    if n == 1 or col == "epochs" or not math.isfinite(v):
        return v
    return f"{v:.4g} ± {result['spread'][col]:.2g}"


def _tests(per_split: dict[str, list[dict[str, float]]], task: str,
           pairs: list[tuple[np.ndarray, np.ndarray | None]], n_rows: int):
    """Each loss against the best one on the primary metric; one plain sentence."""
    from losslab.cli import stats

    if len(pairs) < 2 or len(per_split) < 2:
        return [], ""
    metric, larger_better = _PRIMARY[task]
    means = {k: float(np.mean([m[metric] for m in v])) for k, v in per_split.items()}
    best = (max if larger_better else min)(means, key=lambda k: means[k])
    n_test = int(np.mean([len(v) for _, v in pairs if v is not None]))
    n_train = n_rows - n_test
    raw = []
    for label, ms in per_split.items():
        if label == best:
            continue
        diffs = [m[metric] - b[metric] for m, b in zip(ms, per_split[best])]
        raw.append((label, stats.corrected_paired_t(diffs, n_train, n_test)))
    adjusted = stats.holm([r.p for _, r in raw])
    tests = []
    for (label, r), p_adj in zip(raw, adjusted):
        tests.append({"loss": label, "against": best, "metric": metric, "mean_diff": r.mean,
                      "sd_diff": r.sd, "t": r.t, "p": r.p, "p_holm": p_adj, "splits": r.n,
                      "exceeds_noise": bool(math.isfinite(p_adj) and p_adj < LEVEL)})
    worse = [str(t["loss"]) for t in tests if t["exceeds_noise"]]
    same = [str(t["loss"]) for t in tests if not t["exceeds_noise"]]
    name = _HEAD[metric]
    parts = [f"Best mean {name}: {best}."]
    if worse:
        parts.append(f"{', '.join(worse)} {'is' if len(worse) == 1 else 'are'} worse by more "
                     f"than the noise across the {len(pairs)} splits (corrected paired t-test, "
                     f"Holm-adjusted p < {LEVEL:g}).")
    if same:
        parts.append(f"The difference{'s' if len(same) > 1 else ''} from {', '.join(same)} "
                     f"{'are' if len(same) > 1 else 'is'} within the noise.")
    return tests, " ".join(parts)


def _plots(rundir, data, first, per_split, n_splits) -> dict[str, str]:
    from losslab.cli import plots as pl

    out: dict[str, str] = {}
    histories = {label: P.history_dict(v[1]) for label, v in first.items()}
    held_out = next(iter(first.values()))[3].has_val
    metric = "val_r2" if data.task == "regression" else "val_accuracy"
    if not held_out:
        metric = metric[4:]
    out[f"{metric} per epoch, by loss"] = pl.plot_compare(
        histories, metric, rundir.path("compare.png"),
        title=f"{metric} per epoch (same initialisation)"
              + (", first split" if n_splits > 1 else ""))
    fits = {label: (v[2]["x"], v[2]["y"]) for label, v in first.items() if v[2] is not None}
    if fits:
        out["Fitted lines, by loss"] = pl.plot_compare_fit(
            data.X[:, 0], data.targets, fits, rundir.path("compare_fit.png"),
            xlabel=data.feature_names[0], ylabel=data.target_name)
    if n_splits > 1:
        metric, _ = _PRIMARY[data.task]
        out[f"{_HEAD[metric]} on each held-out set"] = pl.plot_splits(
            {k: [m[metric] for m in v] for k, v in per_split.items()}, _HEAD[metric],
            rundir.path("compare_splits.png"))
    return out


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

    def line(r: list[str]) -> str:
        return "  ".join((c.ljust(w) if i == 0 else c.rjust(w))
                         for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])
