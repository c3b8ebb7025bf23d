"""``losslab overfit``: the article's closing lessons, run. A model overfits, and the five cures
side by side; or, with ``--show gradients``, gradients vanishing in a deep sigmoid network.

The cures (``--show cures``, the default). The data's validation rows are set aside
(``--val-split``); the *baseline* (``--model``, wide by default) trains on a small slice of the
remaining training rows (``--train-fraction``) until it has memorised them. Each cure changes one
thing and keeps the rest, the initial weights (same seed; the smaller model has its own shape)
and the split included:

- smaller model: ``--smaller-model`` (default one hidden layer, a quarter as wide);
- more data: every training row instead of the slice;
- l1, l2: a penalty added to the loss, its strength chosen by a validation curve (3-fold cross-
  validation *on the slice*: the validation rows play no part in the choice) unless ``--l1`` /
  ``--l2`` give it;
- early stopping: stop when the validation loss has not improved for ``--early-stopping``'s
  patience, restoring the best epoch's weights;
- dropout: ``--dropout`` (0.5 by default) after each hidden layer.

The generalisation gap is the validation loss minus the training loss at the end, both the data
loss (no penalty) in evaluation mode (no dropout) on the rows each variant trained on; the
per-epoch curves are measured the same way. A learning curve (the baseline's model on more and
more rows, over ``--repeats`` random splits) and the two validation curves of the sweep complete
the report. The command reuses the pipeline (``losslab.cli.pipeline``), the run directory and the
report of the other commands; the curves are ``losslab.train.curves``. Training runs with one
BLAS thread (``losslab.cli.threads``): these models are too small to gain from more.

Vanishing gradients (``--show gradients``): three networks of ``--depth`` hidden layers of
``--width`` units trained on the same data: sigmoid with Glorot initialisation, ReLU with the same
initialisation (only the activation changes), ReLU with He initialisation (the one derived for
ReLU). The engine records each parameter's gradient norm per epoch; the report plots every
layer's and compares the first layer's with the last's.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from losslab.cli import pipeline as P
from losslab.cli.compare import _format_table
from losslab.cli.components import hidden_sizes
from losslab.cli.config import EarlyStop, FitConfig, OverfitConfig, Spec
from losslab.cli.console import Console, to_json
from losslab.cli.errors import UsageError
from losslab.cli.threads import blas_threads
from losslab.cli.train import command_line, open_run, plots_on
from losslab.train.callbacks import Callback
from losslab.train.data import Dataset

__all__ = ["run", "VARIANTS", "L1_RANGE", "L2_RANGE", "NETWORKS"]

VARIANTS = ("baseline", "smaller model", "more data", "l1", "l2", "early stopping", "dropout")
# The sweeps' candidates: a decade apart, from too weak to change anything to strong enough to
# underfit, so the validation curve shows both ends.
L1_RANGE = (1e-5, 1e-4, 1e-3, 1e-2)
L2_RANGE = (1e-4, 1e-3, 1e-2, 1e-1)
SWEEP_FOLDS = 3
CURVE_POINTS = 4          # training-set sizes on the learning curve, from the slice to all rows
MIN_SLICE = 10            # rows the baseline needs at least (the sweep splits them in three)
NETWORKS = (("sigmoid (Glorot init)", "sigmoid", "glorot"),
            ("ReLU (Glorot init)", "relu", "glorot"),
            ("ReLU (He init)", "relu", "he"))


def run(cfg: OverfitConfig, console: Console) -> int:
    # Small models: one BLAS thread is faster, and far faster on a busy machine (threads.py).
    with blas_threads(1):
        if cfg.show == "gradients":
            return _gradients(cfg, console)
        return _cures(cfg, console)


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", label).strip("-")[:60]


class _EvalLoss(Callback):
    """The data loss on fixed rows after every epoch, in evaluation mode and without the
    penalty: the training curve measured as the validation curve is."""

    def __init__(self, X: np.ndarray, y: np.ndarray, loss: Any) -> None:
        self.X, self.y, self.loss = X, y, loss
        self.values: list[float] = []

    def on_train_begin(self, trainer: Any) -> None:
        self.values = []

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        # A diverging run is reported by the trainer's next step; no NumPy warning before it.
        with np.errstate(over="ignore", invalid="ignore"):
            self.values.append(float(self.loss(trainer.forward(self.X), self.y)))


def _fit_progress(console: Console, total: int, desc: str) -> Any:
    """A ``progress(done, total)`` for the curves, drawing the console's progress line."""
    bar = console.progress(total, desc, unit="fit")
    if bar is None:
        return None

    def step(done: int, _total: int) -> None:
        bar.update(1)
        if done == _total:
            bar.close()

    return step


# --- the cures --------------------------------------------------------------------------------


@dataclass
class _Variant:
    name: str
    changed: str
    fit: FitConfig
    split: P.Split
    rows: int
    early_stop: EarlyStop | None = None
    # filled by training
    train_curve: list[float] | None = None
    history: dict[str, list[float]] | None = None
    train: dict[str, float] | None = None
    val: dict[str, float] | None = None
    best_epoch: int | None = None
    seconds: float = 0.0

    @property
    def gap(self) -> float:
        assert self.train is not None and self.val is not None
        return self.val["loss"] - self.train["loss"]


def _take_slice(data: Dataset, pool: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """``fraction`` of the training rows, drawn at random (per class for classification, so
    every class keeps its share and appears at least once)."""
    rng = np.random.default_rng(seed)
    if data.task == "classification":
        parts = []
        for c in np.unique(data.targets[pool]):
            members = pool[data.targets[pool] == c]
            k = max(1, int(round(fraction * len(members))))
            parts.append(rng.choice(members, k, replace=False))
        rows = np.concatenate(parts)
    else:
        rows = rng.choice(pool, max(1, int(round(fraction * len(pool)))), replace=False)
    if len(rows) < MIN_SLICE:
        raise UsageError(f"--train-fraction {fraction:g} leaves {len(rows)} of the {len(pool)} "
                         f"training rows for the baseline; it needs at least {MIN_SLICE}: raise "
                         f"--train-fraction or use more data", flag="--train-fraction")
    if len(rows) >= len(pool):
        raise UsageError(f"--train-fraction {fraction:g} keeps every training row, so 'more "
                         f"data' has none to add; lower it", flag="--train-fraction")
    return np.sort(rows)


def _weights(n_in: int, hidden: list[int], n_out: int) -> int:
    sizes = [n_in, *hidden, n_out]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def _smaller_model(cfg: OverfitConfig, n_in: int, n_out: int) -> Spec:
    base = hidden_sizes(cfg.fit.model)
    if cfg.smaller_model is None:
        if not base:
            raise UsageError("--model linear has no hidden layer to shrink: give "
                             "--smaller-model, or an mlp for --model", flag="--smaller-model")
        width = max(1, base[0] // 4)
        return Spec("mlp", (width,), text=f"mlp:{width}")
    spec = cfg.smaller_model
    try:
        small = hidden_sizes(spec)
    except UsageError:
        raise UsageError(f"--smaller-model {str(spec)!r}: write linear or mlp:H1,H2,..., e.g. "
                         f"mlp:32", flag="--smaller-model") from None
    big, little = _weights(n_in, base, n_out), _weights(n_in, small, n_out)
    if little >= big:
        raise UsageError(f"--smaller-model {spec} is not smaller than --model {cfg.fit.model} "
                         f"({little:,} parameters against {big:,})", flag="--smaller-model")
    return spec


def _sweep(cfg: OverfitConfig, console: Console, data: Dataset, plan: P.Plan, split: P.Split,
           base_fit: FitConfig, rows: np.ndarray, name: str,
           values: tuple[float, ...]) -> dict[str, Any]:
    """The validation curve of one penalty's strength on the slice (3-fold cross-validation);
    the strength with the lowest mean held-out loss is chosen."""
    from losslab.train.curves import kfold_splits, validation_curve

    dt = base_fit.dtype
    y = P.encode_targets(plan, split, data.targets[rows], dt)
    labels = data.targets[rows] if data.task == "classification" else None
    folds = kfold_splits(len(rows), SWEEP_FOLDS, seed=base_fit.seed, labels=labels)

    def make(**strength: Any) -> Any:
        return P.build_trainer(replace(base_fit, **strength), plan, split)

    train, held = validation_curve(
        make, data.X[rows], y, param_name=name, param_range=values, cv=folds,
        epochs=base_fit.epochs, batch_size=base_fit.batch_size,
        standardize=cfg.data.standardize,
        progress=_fit_progress(console, len(values) * SWEEP_FOLDS, f"{name} sweep"))
    means = held.mean(axis=1)
    chosen = float(values[int(np.argmin(means))])
    return {"values": list(values), "train": train, "val": held, "chosen": chosen}


def _train_variant(v: _Variant, plan: P.Plan, console: Console) -> tuple[Any, dict[str, Any]]:
    """Build and train one variant; returns its trainer and its initial weights."""
    trainer = P.build_trainer(v.fit, plan, v.split)
    initial = {k: a.copy() for k, a in trainer.model.parameters().items()}
    dt = v.fit.dtype
    recorder = _EvalLoss(v.split.X_train, P.encode_targets(plan, v.split, v.split.y_train, dt),
                         plan.loss)
    callbacks: list[Any] = [recorder]
    stopper = None
    if v.early_stop is not None:
        stopper = P.early_stopping(replace(v.fit, early_stopping=v.early_stop), plan, True)
        callbacks.append(stopper)
    t0 = time.perf_counter()
    history = P.fit(trainer, plan, v.split, v.fit, console, desc=v.name,
                    use_early_stopping=False, callbacks=callbacks)
    v.seconds = time.perf_counter() - t0
    v.history = P.history_dict(history)
    v.train_curve = recorder.values
    assert v.split.X_val is not None and v.split.y_val is not None
    v.train = P.evaluate(trainer, plan, v.split, v.split.X_train, v.split.y_train, dt)
    v.val = P.evaluate(trainer, plan, v.split, v.split.X_val, v.split.y_val, dt)
    if stopper is not None and stopper.best_epoch >= 0:
        v.best_epoch = stopper.best_epoch + 1  # counted from 1, as the plots' epochs
    return trainer, initial


def _check_same_init(variants: list[_Variant], initial: dict[str, dict[str, np.ndarray]]) -> None:
    """Every variant with the baseline's architecture starts from its weights (the premise of
    the comparison); asserted."""
    base = initial["baseline"]
    for v in variants:
        params = initial[v.name]
        if set(params) != set(base) or any(params[k].shape != base[k].shape for k in base):
            continue  # the smaller model: its own shape, the same seed
        for k, a in params.items():
            assert np.array_equal(a, base[k]), f"initial weights differ for {v.name} ({k})"


def _held_out_metric(task: str) -> tuple[str, str, bool]:
    """(metric key, its name, larger is better) of the held-out metric shown beside the gap."""
    return ("accuracy", "accuracy", True) if task == "classification" else ("rmse", "RMSE", False)


def _statement(variants: list[_Variant], task: str) -> str:
    """Which cures closed the gap most, in plain words."""
    base = variants[0]
    assert base.train is not None and base.val is not None
    g0 = base.gap
    key, mname, larger = _held_out_metric(task)
    if not g0 > 0:
        return (f"The baseline did not overfit here: its validation loss ({base.val['loss']:.3g})"
                f" is not above its training loss ({base.train['loss']:.3g}), so there is no gap "
                f"to close. Give it fewer rows (--train-fraction), a wider --model or more "
                f"--epochs.")
    cures = sorted(variants[1:], key=lambda v: v.gap)
    helped = [v for v in cures if v.gap < g0]
    failed = [v for v in cures if v.gap >= g0]
    parts = [f"The baseline ends with training loss {base.train['loss']:.3g} and validation loss "
             f"{base.val['loss']:.3g}: a gap of {g0:.3g}"
             + (" (it has memorised its training rows)." if base.train["loss"] < 0.1 * g0
                else ".")]

    def closed(v: _Variant) -> str:
        return f"{v.name} (gap {v.gap:.3g}, {100 * (1 - v.gap / g0):.0f}% closed)"

    if helped:
        first, rest = helped[0], helped[1:]
        text = f"The cure that closed it most on this data: {closed(first)}"
        if len(rest) > 1:
            text += f"; then {', '.join(closed(v) for v in rest[:-1])}"
        if rest:
            text += f"; least: {closed(rest[-1])}"
        parts.append(text + ".")
    if failed:
        listed = ", ".join(f"{v.name} (gap {v.gap:.3g})" for v in failed)
        parts.append(f"Did not narrow it: {listed}.")
    scores = {v.name: v.val.get(key, math.nan) for v in variants if v.val is not None}
    finite = {k: s for k, s in scores.items() if math.isfinite(s)}
    if finite:
        best = (max if larger else min)(finite, key=lambda k: finite[k])
        parts.append(f"Best held-out {mname}: {best} ({finite[best]:.3g}; baseline "
                     f"{scores['baseline']:.3g}). A smaller gap is not by itself a better model: "
                     f"judge a cure by its validation loss and {mname} too.")
    return " ".join(parts)


def _cures(cfg: OverfitConfig, console: Console) -> int:
    data = P.load_data(cfg, [cfg.loss] if cfg.loss else [], default_dataset="digits")
    choice = cfg.loss or P.default_loss(data.task)
    plan = P.make_plan(choice, data, "--loss", cfg.data.standardize_target)
    (pool, val_rows), = P.splits(data, cfg)
    assert val_rows is not None  # the configuration refuses --val-split 0
    rows = _take_slice(data, pool, cfg.train_fraction, cfg.fit.seed)
    base_split = P.prepare(data, cfg, rows, val_rows)
    more_split = P.prepare(data, cfg, pool, val_rows)
    base_fit = replace(cfg.fit, dropout=0.0, l1=0.0, l2=0.0, early_stopping=None)
    smaller = _smaller_model(cfg, data.X.shape[1], plan.out_features)
    stop = cfg.fit.early_stopping or EarlyStop()
    P.early_stopping(replace(base_fit, early_stopping=stop), plan, True)  # its monitor checked
    draw = plots_on(cfg, console)
    n_rows, n_pool, n_val = len(rows), len(pool), len(val_rows)
    console.say(f"overfit on {data.source} ({data.task}): {base_fit.model} on {n_rows} of the "
                f"{n_pool} training rows, {n_val} validation rows, {base_fit.epochs} epochs")
    with open_run(cfg, "overfit") as rundir:
        t0 = time.perf_counter()
        sweeps: dict[str, dict[str, Any]] = {}
        strength: dict[str, float] = {}
        for name, values in (("l1", L1_RANGE), ("l2", L2_RANGE)):
            if name in cfg.given:
                strength[name] = float(getattr(cfg.fit, name))
            else:
                sweeps[name] = _sweep(cfg, console, data, plan, base_split, base_fit, rows, name,
                                      values)
                strength[name] = sweeps[name]["chosen"]
        how = {k: ("chosen by the sweep" if k in sweeps else "given") for k in strength}
        variants = [
            _Variant("baseline", f"nothing: --model {base_fit.model}", base_fit, base_split,
                     n_rows),
            _Variant("smaller model", f"--model {smaller}", replace(base_fit, model=smaller),
                     base_split, n_rows),
            _Variant("more data", f"all {n_pool} training rows instead of {n_rows}", base_fit,
                     more_split, n_pool),
            _Variant("l1", f"L1 penalty {strength['l1']:g} x sum|w| added to the loss "
                     f"({how['l1']})", replace(base_fit, l1=strength["l1"]), base_split, n_rows),
            _Variant("l2", f"L2 penalty {strength['l2']:g} x sum w^2 added to the loss "
                     f"({how['l2']})", replace(base_fit, l2=strength["l2"]), base_split, n_rows),
            _Variant("early stopping", f"stop after {stop.patience} epochs without a better "
                     f"{stop.monitor}" + (", best weights restored" if stop.restore_best_weights
                                          else ""), base_fit, base_split, n_rows,
                     early_stop=stop),
            _Variant("dropout", f"dropout {cfg.fit.dropout:g} after each hidden layer",
                     replace(base_fit, dropout=cfg.fit.dropout), base_split, n_rows),
        ]
        initial: dict[str, dict[str, np.ndarray]] = {}
        for v in variants:
            _, initial[v.name] = _train_variant(v, plan, console)
        _check_same_init(variants, initial)
        learning = _learning_curve(cfg, console, data, plan, base_split, base_fit, n_rows)
        elapsed = time.perf_counter() - t0
        statement = _statement(variants, data.task)
        key, mname, _ = _held_out_metric(data.task)

        figures: dict[str, list[str]] = {v.name: [] for v in variants}
        plots: dict[str, str] = {}
        if draw:
            plots = _cure_plots(rundir, variants, sweeps, learning, n_rows, n_pool, plan,
                                figures)
        for v in variants:
            assert v.history is not None and v.train_curve is not None
            rundir.write(f"history-{_safe(v.name)}.csv",
                         P.history_csv({**v.history, "train_loss_eval": v.train_curve}))
        results = [_variant_json(v, key, figures[v.name], variants[0].gap) for v in variants]
        notes = [statement, _setup_note(cfg, data, plan, base_fit, n_rows, n_pool, n_val,
                                        sweeps, stop)] + data.notes
        settings = {**cfg.effective_settings(), "loss": plan.label, "smaller_model": str(smaller),
                    "early_stopping": f"patience={stop.patience},monitor={stop.monitor},"
                                      f"restore_best_weights={stop.restore_best_weights}",
                    "l1": f"{strength['l1']:g} ({how['l1']})",
                    "l2": f"{strength['l2']:g} ({how['l2']})"}
        for k in ("depth", "width"):  # --show gradients only
            settings.pop(k, None)
        payload = {
            "command": "overfit", "show": "cures", "data": data.source, "task": data.task,
            "loss": plan.label, "rows": {"baseline": n_rows, "more_data": n_pool,
                                         "validation": n_val},
            "variants": results, "statement": statement, "strengths": strength,
            "sweeps": {k: {"values": s["values"], "train": s["train"], "val": s["val"],
                           "chosen": s["chosen"], "folds": SWEEP_FOLDS}
                       for k, s in sweeps.items()},
            "learning_curve": learning, "seconds": elapsed, "settings": settings,
        }
        rundir.write("metrics.json", to_json(payload, indent=2) + "\n")
        headers, rows_ = _gap_table(variants, key, mname, variants[0].gap)
        from losslab.cli import report

        tables = [report.Table("Generalisation gap: each cure against the baseline", headers,
                               rows_, notes=[
                                   "Losses: the data loss (no penalty) in evaluation mode (no "
                                   "dropout), each on the rows that variant trained on and on "
                                   f"the {n_val} validation rows. {mname} on the validation "
                                   "rows" + (", on the target's original scale." if key == "rmse"
                                             else ".")])]
        if sweeps:
            tables.append(_sweep_table(sweeps))
        tables.append(_learning_table(learning))
        rundir.write("report.html", report.render_report(
            title=f"losslab overfit on {data.source}: the five cures",
            command=command_line(cfg.argv), notes=notes, tables=tables, settings=settings,
            plots=plots))
        out = rundir.commit()
    console.say(_format_table(headers, rows_))
    console.say(statement)
    console.say(f"wrote {out}")
    console.result({k: payload[k] for k in ("data", "task", "loss", "rows", "variants",
                                            "strengths", "statement")}
                   | {"figures": {c: os.path.basename(p) for c, p in plots.items()},
                      "output_dir": out})
    return 0


def _learning_curve(cfg: OverfitConfig, console: Console, data: Dataset, plan: P.Plan,
                    split: P.Split, base_fit: FitConfig, n_rows: int) -> dict[str, Any]:
    """The baseline's model on more and more training rows, over ``--repeats`` random splits
    (the first is the split the variants use), each evaluated on its held-out rows."""
    from losslab.train.curves import learning_curve

    pairs = [(tr, va) for tr, va in P.splits(data, cfg, repeats=cfg.repeats) if va is not None]
    n_max = min(len(tr) for tr, _ in pairs)
    sizes = np.unique(np.round(np.geomspace(min(n_rows, n_max), n_max,
                                            CURVE_POINTS)).astype(int))
    y = P.encode_targets(plan, split, data.targets, base_fit.dtype)
    sizes_abs, train, held = learning_curve(
        lambda: P.build_trainer(base_fit, plan, split), data.X, y,
        train_sizes=[int(s) for s in sizes], cv=pairs, epochs=base_fit.epochs,
        batch_size=base_fit.batch_size, standardize=cfg.data.standardize,
        progress=_fit_progress(console, len(sizes) * len(pairs), "learning curve"))
    return {"sizes": sizes_abs, "train": train, "val": held, "splits": len(pairs)}


def _variant_json(v: _Variant, key: str, figures: list[str], base_gap: float) -> dict[str, Any]:
    assert v.train is not None and v.val is not None and v.history is not None
    return {
        "name": v.name, "changed": v.changed, "training_rows": v.rows,
        "train_loss": v.train["loss"], "val_loss": v.val["loss"], "gap": v.gap,
        "gap_closed": (1 - v.gap / base_gap) if base_gap > 0 and v.name != "baseline" else None,
        f"val_{key}": v.val.get(key, math.nan),
        "validation": {k: x for k, x in v.val.items()},
        "epochs_run": len(v.history.get("loss", [])), "best_epoch": v.best_epoch,
        "seconds": v.seconds, "figures": figures,
        "history": f"history-{_safe(v.name)}.csv",
    }


def _gap_table(variants: list[_Variant], key: str, mname: str,
               base_gap: float) -> tuple[list[str], list[list[Any]]]:
    headers = ["variant", "what changed", "training rows", "epochs", "training loss",
               "validation loss", "gap", "gap closed", f"validation {mname}"]
    rows = []
    for v in variants:
        assert v.train is not None and v.val is not None and v.history is not None
        epochs = len(v.history.get("loss", []))
        shown_epochs = f"{epochs} (best {v.best_epoch})" if v.best_epoch is not None else epochs
        closed = "-" if v.name == "baseline" or not base_gap > 0 else \
            f"{100 * (1 - v.gap / base_gap):.0f}%"
        rows.append([v.name, v.changed, v.rows, shown_epochs, v.train["loss"], v.val["loss"],
                     v.gap, closed, v.val.get(key, math.nan)])
    return headers, rows


def _mean_sd(a: np.ndarray) -> str:
    a = np.asarray(a, dtype=float)
    sd = float(np.std(a, ddof=1)) if a.size > 1 else 0.0
    return f"{float(np.mean(a)):.4g} ± {sd:.2g}"


def _sweep_table(sweeps: dict[str, dict[str, Any]]) -> Any:
    from losslab.cli import report

    rows = []
    for name, s in sweeps.items():
        for i, value in enumerate(s["values"]):
            rows.append([name, value, _mean_sd(s["train"][i]), _mean_sd(s["val"][i]),
                         "chosen" if value == s["chosen"] else ""])
    return report.Table("Penalty strengths: the sweep (validation curves)",
                        ["penalty", "strength", "training loss (mean ± sd)",
                         "held-out loss (mean ± sd)", ""], rows,
                        notes=[f"{SWEEP_FOLDS}-fold cross-validation on the baseline's training "
                               "rows only; the validation rows play no part in the choice. The "
                               "strength with the lowest mean held-out loss is used."])


def _learning_table(learning: dict[str, Any]) -> Any:
    from losslab.cli import report

    rows = [[int(n), _mean_sd(learning["train"][i]), _mean_sd(learning["val"][i])]
            for i, n in enumerate(learning["sizes"])]
    return report.Table("Learning curve: the baseline's model on more rows",
                        ["training rows", "training loss (mean ± sd)",
                         "held-out loss (mean ± sd)"], rows,
                        notes=[f"Over {learning['splits']} random splits (--repeats); the gap "
                               "narrows as the rows grow: more data is a cure."])


def _setup_note(cfg: OverfitConfig, data: Dataset, plan: P.Plan, base_fit: FitConfig,
                n_rows: int, n_pool: int, n_val: int, sweeps: dict[str, Any],
                stop: EarlyStop) -> str:
    batch = ("full batch" if base_fit.batch_size >= n_rows
             else f"batches of {base_fit.batch_size}")
    text = (f"Data: {data.source} ({data.task}, {data.X.shape[1]} features). {n_val} rows are "
            f"held out for validation; the baseline and the cures train on {n_rows} of the "
            f"{n_pool} other rows (--train-fraction {cfg.train_fraction:g}), 'more data' on all "
            f"{n_pool}. Every variant: loss {plan.label}, --optimizer {base_fit.optimizer}, "
            f"--lr {base_fit.lr:g}, --schedule {base_fit.schedule}, {base_fit.epochs} epochs, "
            f"{batch} on the slice, and the same initial weights (seed {base_fit.seed}; the "
            f"smaller model has its own shape).")
    if sweeps:
        text += (" L1/L2 strengths: chosen by " + " and ".join(sweeps) + " sweeps on the "
                 "training slice.")
    if stop.monitor.startswith("val_"):
        text += (f" Early stopping watches the validation rows' {stop.monitor[4:]}, so its "
                 "epoch is chosen on them.")
    return text


def _cure_plots(rundir: Any, variants: list[_Variant], sweeps: dict[str, Any],
                learning: dict[str, Any], n_rows: int, n_pool: int, plan: P.Plan,
                figures: dict[str, list[str]]) -> dict[str, str]:
    from losslab.cli import plots as pl

    ylabel = f"loss ({plan.label})"
    out: dict[str, str] = {}
    panels = {}
    for v in variants:
        assert v.history is not None and v.train_curve is not None
        panels[v.name] = {"train": v.train_curve, "val": v.history.get("val_loss", []),
                          "gap": v.gap, "best_epoch": v.best_epoch}
    out["Training and validation loss per epoch, each variant (small multiples); the gaps"] = \
        pl.plot_variant_curves(panels, rundir.path("overfit.png"), ylabel=ylabel)
    for v in variants:
        figures[v.name].append("overfit.png")
    out["Learning curve: the baseline's model on more training rows"] = pl.plot_learning_curve(
        learning["sizes"], learning["train"], learning["val"],
        rundir.path("learning_curve.png"), ylabel=ylabel,
        marks={f"baseline ({n_rows} rows)": n_rows, f"more data ({n_pool} rows)": n_pool})
    for name in ("baseline", "more data"):
        figures[name].append("learning_curve.png")
    if sweeps:
        out["Validation curves: the penalty strengths swept on the training slice"] = \
            pl.plot_validation_curves(sweeps, rundir.path("validation_curves.png"),
                                      ylabel=ylabel)
        for name in sweeps:
            figures[name].append("validation_curves.png")
    return out


# --- vanishing gradients ----------------------------------------------------------------------


def _layer_norms(history: dict[str, list[float]]) -> dict[str, list[float]]:
    """``{"layer 1": [...], ...}``: each Linear layer's weight-gradient norm per epoch, in the
    network's order (``grad_norm/<index>.weight``)."""
    keys = [k for k in history if k.startswith("grad_norm/") and k.endswith(".weight")]
    keys.sort(key=lambda k: int(k.split("/", 1)[1].split(".", 1)[0]))
    return {f"layer {i + 1}": history[k] for i, k in enumerate(keys)}


def _gradients(cfg: OverfitConfig, console: Console) -> int:
    data = P.load_data(cfg, [cfg.loss] if cfg.loss else [], default_dataset="digits")
    choice = cfg.loss or P.default_loss(data.task)
    plan = P.make_plan(choice, data, "--loss", cfg.data.standardize_target)
    (train_rows, val_rows), = P.splits(data, cfg)
    split = P.prepare(data, cfg, train_rows, val_rows)
    hidden = (cfg.width,) * cfg.depth
    model = Spec("mlp", hidden, text="mlp:" + ",".join(map(str, hidden)))
    key, mname, _ = _held_out_metric(data.task)
    draw = plots_on(cfg, console)
    console.say(f"overfit --show gradients on {data.source}: {cfg.depth} hidden layers of "
                f"{cfg.width}, {cfg.fit.epochs} epochs")
    nets: list[dict[str, Any]] = []
    with open_run(cfg, "overfit") as rundir:
        t0 = time.perf_counter()
        for name, activation, init in NETWORKS:
            fit_cfg = replace(cfg.fit, model=model, activation=activation, dropout=0.0, l1=0.0,
                              l2=0.0, early_stopping=None)
            trainer = P.build_trainer(fit_cfg, plan, split, init=init)
            history = P.fit(trainer, plan, split, fit_cfg, console, desc=name,
                            use_early_stopping=False)
            h = P.history_dict(history)
            assert split.X_val is not None and split.y_val is not None
            val = P.evaluate(trainer, plan, split, split.X_val, split.y_val, fit_cfg.dtype)
            layers = _layer_norms(h)
            first, last = list(layers.values())[0], list(layers.values())[-1]
            ratio0, ratio1 = first[0] / last[0], first[-1] / last[-1]
            nets.append({"name": name, "activation": activation, "init": init,
                         "layers": layers, "history": h, "val": val,
                         "ratio_first_epoch": ratio0, "ratio_last_epoch": ratio1,
                         "orders_of_magnitude": -math.log10(ratio0) if ratio0 > 0 else math.inf})
            rundir.write(f"history-{_safe(name)}.csv", P.history_csv(history))
        elapsed = time.perf_counter() - t0
        statement = _gradient_statement(nets, cfg, key, mname)
        plots: dict[str, str] = {}
        if draw:
            from losslab.cli import plots as pl

            plots["Each layer's gradient norm per epoch, by network"] = pl.plot_layer_gradients(
                {n["name"]: n["layers"] for n in nets}, rundir.path("gradients.png"))
            plots["Gradient norm against depth: first epoch (solid), last (dashed)"] = \
                pl.plot_gradient_profile(
                    {n["name"]: {"first": [s[0] for s in n["layers"].values()],
                                 "last": [s[-1] for s in n["layers"].values()]} for n in nets},
                    rundir.path("gradient_profile.png"))
            plots["Validation loss per epoch, by network"] = pl.plot_compare(
                {n["name"]: n["history"] for n in nets}, "val_loss",
                rundir.path("gradient_loss.png"), title="Validation loss per epoch")
        files = [os.path.basename(p) for p in plots.values()]
        results = [{
            "name": n["name"], "activation": n["activation"], "init": n["init"],
            "grad_norm_first_layer": list(n["layers"].values())[0],
            "grad_norm_last_layer": list(n["layers"].values())[-1],
            "ratio_first_epoch": n["ratio_first_epoch"],
            "ratio_last_epoch": n["ratio_last_epoch"],
            "orders_of_magnitude": n["orders_of_magnitude"],
            "val_loss": n["val"]["loss"], f"val_{key}": n["val"].get(key, math.nan),
            "figures": files, "history": f"history-{_safe(n['name'])}.csv",
        } for n in nets]
        settings = {**cfg.effective_settings(), "loss": plan.label, "model": str(model)}
        for k in ("dropout", "early_stopping", "repeats", "train_fraction", "activation", "l1",
                  "l2"):  # --show cures only
            settings.pop(k, None)
        rundir.write("metrics.json", to_json({
            "command": "overfit", "show": "gradients", "data": data.source, "task": data.task,
            "depth": cfg.depth, "width": cfg.width, "networks": results,
            "statement": statement, "seconds": elapsed, "settings": settings,
            "per_layer": {n["name"]: n["layers"] for n in nets}}, indent=2) + "\n")
        headers = ["network", "first layer (epoch 1)", "last layer (epoch 1)",
                   "first / last (epoch 1)", "first / last (last epoch)", "validation loss",
                   f"validation {mname}"]
        rows = [[n["name"], f"{list(n['layers'].values())[0][0]:.2e}",
                 f"{list(n['layers'].values())[-1][0]:.2e}", f"{n['ratio_first_epoch']:.2e}",
                 f"{n['ratio_last_epoch']:.2e}", n["val"]["loss"],
                 n["val"].get(key, math.nan)] for n in nets]
        from losslab.cli import report

        rundir.write("report.html", report.render_report(
            title=f"losslab overfit --show gradients on {data.source}",
            command=command_line(cfg.argv),
            notes=[statement, f"{cfg.depth} hidden layers of {cfg.width} units; gradient norm = "
                   "the L2 norm of a layer's weight gradient, averaged over the epoch's batches "
                   "(recorded by the engine before the optimizer step). Same data, loss, "
                   f"optimizer ({cfg.fit.optimizer}) and seed for the three networks."]
            + data.notes,
            tables=[report.Table("Gradient norms, first layer against last", headers, rows)],
            settings=settings, plots=plots))
        out = rundir.commit()
    console.say(_format_table(headers, rows))
    console.say(statement)
    console.say(f"wrote {out}")
    console.result({"data": data.source, "task": data.task, "depth": cfg.depth,
                    "width": cfg.width, "networks": results, "statement": statement,
                    "figures": {c: os.path.basename(p) for c, p in plots.items()},
                    "output_dir": out})
    return 0


def _gradient_statement(nets: list[dict[str, Any]], cfg: OverfitConfig, key: str,
                        mname: str) -> str:
    sig, *others = nets
    r = sig["ratio_first_epoch"]
    text = (f"In the {cfg.depth}-layer sigmoid network the first layer's gradient is "
            f"{r:.1e} of the last layer's in the first epoch")
    if r > 0 and r < 1e-2:
        text += f" ({-math.log10(r):.0f} orders of magnitude smaller): the gradient vanishes"
    text += (f"; after {cfg.fit.epochs} epochs its validation {mname} is "
             f"{sig['val'].get(key, math.nan):.3g}. ")
    text += "; ".join(f"{n['name']}: first / last {n['ratio_first_epoch']:.2g}, validation "
                      f"{mname} {n['val'].get(key, math.nan):.3g}" for n in others) + "."
    text += (" The sigmoid's slope is at most 1/4, so each layer scales the gradient flowing back"
             " by a factor below one; ReLU passes it unchanged where a unit is active, and He "
             "initialisation keeps the signal's scale through the depth.")
    return text
