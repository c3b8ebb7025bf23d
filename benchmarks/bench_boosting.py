"""losslab.boosting: objective call time against hand-written NumPy objectives, and the
objectives trained on scikit-learn's bundled data beside XGBoost's built-in objectives.

Part 1 (speed). One call of an XGBoost native objective ``obj(predt, dtrain)`` on 1M rows
(float32 scores, as XGBoost hands them; 1M x 10 for the multiclass row), losslab's against the
objective users write today for the same loss (the XGBoost documentation's demos for logistic,
pseudo-Huber and squared log error; the usual vectorised softmax and focal objectives), both with
the exact Hessian. Rounds run every variant back to back in a rotating order; the table gives each
one's median, and the median and quartiles of the per-round ratio losslab / hand-written. Target
(issue 12): at most 1.0x.

Part 2 (quality). Train/test split 70/30 (seed 0); XGBoost, depth 3, eta 0.1, 100 rounds, the
objective's ``init_score`` as base score; test metrics beside the built-in objective's, and how
monotonically the training loss (the objective's own, via ``boosting.metric``) fell: the number
of rounds, out of 99, where it rose.

    python3 benchmarks/bench_boosting.py [--rounds 21] [--rows N] [--skip-speed | --speed-only]

Writes Markdown tables to benchmarks/results/boosting.md (``--speed-only``: boosting_speed.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split

import losslab
from losslab import boosting

OUT = Path(__file__).resolve().parent / "results"


# --- Part 1: hand-written objectives, as users write them ---------------------------------------


def hand_logistic(preds, dtrain):
    # XGBoost demo/guide-python/custom_objective.py (logregobj)
    labels = dtrain.get_label()
    preds = 1.0 / (1.0 + np.exp(-preds))
    grad = preds - labels
    hess = preds * (1.0 - preds)
    return grad, hess


def hand_pseudo_huber(preds, dtrain):
    # the pseudo-Huber objective of XGBoost's issues and tutorials (huber_approx_obj), slope 1
    d = preds - dtrain.get_label()
    h = 1.0
    scale = 1 + (d / h) ** 2
    scale_sqrt = np.sqrt(scale)
    grad = d / scale_sqrt
    hess = 1 / scale / scale_sqrt
    return grad, hess


def hand_msle(preds, dtrain):
    # XGBoost docs, "Custom Objective and Evaluation Metric": squared log error
    y = dtrain.get_label()
    preds[preds < -1] = -1 + 1e-6
    grad = (np.log1p(preds) - np.log1p(y)) / (preds + 1)
    hess = (-np.log1p(preds) + np.log1p(y) + 1) / np.power(preds + 1, 2)
    return grad, hess


def hand_focal(preds, dtrain, alpha=0.25, gamma=2.0):
    # the usual hand derivation (probabilities, log(p + eps)), alpha-weighted, gamma = 2
    y = dtrain.get_label()
    p = 1.0 / (1.0 + np.exp(-preds))
    eps = 1e-9
    a = alpha * y + (1 - alpha) * (1 - y)
    pt = p * y + (1 - p) * (1 - y)
    q = 1 - pt
    ce = -np.log(pt + eps)
    dpt = (2 * y - 1) * p * (1 - p)  # d p_t / dx
    grad = a * (-gamma * q ** (gamma - 1) * dpt * ce - q**gamma * dpt / (pt + eps))
    d2pt = (2 * y - 1) * p * (1 - p) * (1 - 2 * p)
    hess = a * (
        gamma * (gamma - 1) * q ** (gamma - 2) * dpt**2 * ce
        + 2 * gamma * q ** (gamma - 1) * dpt**2 / (pt + eps)
        - gamma * q ** (gamma - 1) * d2pt * ce
        + q**gamma * dpt**2 / (pt + eps) ** 2
        - q**gamma * d2pt / (pt + eps)
    )
    return grad, hess


def hand_softmax(preds, dtrain):
    # the vectorised form of XGBoost's demo/guide-python/custom_softmax.py (which loops in Python)
    labels = dtrain.get_label().astype(np.int64)
    e = np.exp(preds - preds.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    grad = p.copy()
    grad[np.arange(len(labels)), labels] -= 1.0
    hess = p * (1.0 - p)
    return grad, hess


def speed_cases(n, rng):
    """(label, losslab objective, hand-written objective, predt, DMatrix)."""
    x = rng.normal(size=n).astype(np.float32)
    b = (rng.random(n) < 0.3).astype(np.float32)
    r = (x + rng.normal(size=n)).astype(np.float32)
    pos_x = np.abs(x) * 3
    pos_y = (rng.gamma(2.0, 1.5, size=n)).astype(np.float32)
    k = 10
    xm = rng.normal(size=(n, k)).astype(np.float32)
    ym = rng.integers(0, k, size=n).astype(np.float32)
    feats = np.zeros((n, 1), dtype=np.float32)
    return [
        ("bce_with_logits (logistic)", boosting.objective("bce_with_logits"), hand_logistic, x,
         xgb.DMatrix(feats, b)),
        ("pseudo_huber (delta 1)", boosting.objective("pseudo_huber"), hand_pseudo_huber, x,
         xgb.DMatrix(feats, r)),
        ("msle (exact Hessian)", boosting.objective("msle", hessian="exact"), hand_msle, pos_x,
         xgb.DMatrix(feats, pos_y)),
        ("focal (alpha 0.25, gamma 2, exact)", boosting.objective("focal", hessian="exact"),
         hand_focal, x, xgb.DMatrix(feats, b)),
        (f"cross_entropy (k = {k})", boosting.objective("cross_entropy"), hand_softmax, xm,
         xgb.DMatrix(feats, ym)),
    ]


def speed(rounds, n):
    rng = np.random.default_rng(0)
    rows = []
    for label, ours, hand, x, d in speed_cases(n, rng):
        g0, h0 = ours(x.copy(), d)
        g1, h1 = hand(x.copy(), d)
        agree = np.allclose(g0, g1, rtol=1e-3, atol=1e-5) and np.allclose(h0, h1, rtol=1e-2,
                                                                         atol=1e-5)
        times = {"ours": [], "hand": []}
        ratios = []
        for r in range(rounds):
            order = [("ours", ours), ("hand", hand)]
            if r % 2:
                order.reverse()
            t = {}
            for key, fn in order:
                xc = x.copy()  # the msle demo writes into preds
                t0 = time.perf_counter()
                fn(xc, d)
                t[key] = time.perf_counter() - t0
                times[key].append(t[key])
            ratios.append(t["ours"] / t["hand"])
        q = statistics.quantiles(ratios, n=4)
        rows.append(
            f"| {label} | {1e3 * statistics.median(times['ours']):.1f} | "
            f"{1e3 * statistics.median(times['hand']):.1f} | {statistics.median(ratios):.2f}x | "
            f"{q[0]:.2f}-{q[2]:.2f} | {'yes' if agree else 'no'} |"
        )
        print(rows[-1], flush=True)
    head = (
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the end, numpy {np.__version__}, xgboost "
        f"{xgb.__version__}; {n:,} rows, float32, {rounds} interleaved rounds.\n\n"
        "| objective | losslab (ms) | hand-written NumPy (ms) | ratio (median) | ratio IQR | "
        "same numbers |\n|---|---:|---:|---:|---:|---|"
    )
    return head + "\n" + "\n".join(rows)


# --- Part 2: real data ------------------------------------------------------------------------

PARAMS = dict(max_depth=3, eta=0.1, tree_method="hist", nthread=2, seed=0)
ROUNDS = 100


def _split(X, y):
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=None)


def _fit_builtin(objective, Xtr, ytr, extra=None):
    d = xgb.DMatrix(Xtr, ytr)
    return xgb.train({**PARAMS, "objective": objective, **(extra or {})}, d, ROUNDS)


def _fit_ours(name, Xtr, ytr, hessian=None, params=None, **options):
    init = boosting.init_score(name, ytr, **options)
    k = np.size(init)
    margin = np.tile(init, (len(ytr), 1)) if k > 1 else np.full(len(ytr), init)
    d = xgb.DMatrix(Xtr, ytr, base_margin=margin)
    result = {}
    p = {**PARAMS, "disable_default_eval_metric": 1, **(params or {})}
    if k > 1:
        p["num_class"] = k
    obj = boosting.objective(name, hessian=hessian, **options)
    booster = xgb.train(p, d, ROUNDS, obj=obj, evals=[(d, "train")], evals_result=result,
                        custom_metric=boosting.metric(name, **options), verbose_eval=False)
    curve = np.array(result["train"][name])
    rises = int(np.sum(np.diff(curve) > 1e-7 * np.abs(curve[:-1])))
    return booster, init, rises, obj.hessian


def _margin(booster, init, X):
    k = np.size(init)
    n = X.shape[0]
    margin = np.tile(init, (n, 1)) if k > 1 else np.full(n, init)
    return booster.predict(xgb.DMatrix(X, base_margin=margin), output_margin=True)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def binary_table(X, y, title, names, extra_focal=False):
    Xtr, Xte, ytr, yte = _split(X, y)
    rows = [f"### {title}\n", "| objective | hessian | rounds loss rose (of 99) | test AUC | "
            "test average precision | test accuracy |", "|---|---|---:|---:|---:|---:|"]
    b = _fit_builtin("binary:logistic", Xtr, ytr)
    p = b.predict(xgb.DMatrix(Xte))
    rows.append(f"| XGBoost binary:logistic (built-in) | exact | - | {roc_auc_score(yte, p):.4f} | "
                f"{average_precision_score(yte, p):.4f} | {accuracy_score(yte, p > 0.5):.4f} |")
    cases = [(n, None) for n in names]
    if extra_focal:
        cases += [("focal", h) for h in ("exact", "constant")]
    for name, hessian in cases:
        booster, init, rises, used = _fit_ours(name, Xtr, ytr, hessian=hessian)
        z = _margin(booster, init, Xte)
        rows.append(f"| {name} | {used} | {rises} | {roc_auc_score(yte, z):.4f} | "
                    f"{average_precision_score(yte, z):.4f} | {accuracy_score(yte, z > 0):.4f} |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


def regression_table():
    X, y = load_diabetes(return_X_y=True)
    y = y / np.std(y)  # every target positive (~0.3 to 4.5), for the log-link losses
    Xtr, Xte, ytr, yte = _split(X, y)
    rows = ["### diabetes (targets / their std)\n",
            "| objective | hessian | rounds loss rose (of 99) | test RMSE | test MAE |",
            "|---|---|---:|---:|---:|"]
    builtins = [("reg:squarederror", {}), ("reg:pseudohubererror", {}), ("reg:absoluteerror", {}),
                ("reg:squaredlogerror", {}), ("reg:gamma", {}), ("reg:tweedie", {}),
                ("count:poisson", {})]
    for objective, extra in builtins:
        p = _fit_builtin(objective, Xtr, ytr, extra).predict(xgb.DMatrix(Xte))
        rmse, mae = mean_squared_error(yte, p) ** 0.5, mean_absolute_error(yte, p)
        rows.append(f"| XGBoost {objective} (built-in) | - | - | {rmse:.4f} | {mae:.4f} |")
    log_link = {"gamma_deviance", "tweedie", "poisson_nll"}
    for name in ("mse", "pseudo_huber", "huber", "log_cosh", "expectile", "l1", "quantile",
                 "mape", "msle", "gamma_deviance", "tweedie", "poisson_nll"):
        booster, init, rises, used = _fit_ours(name, Xtr, ytr)
        z = _margin(booster, init, Xte)
        p = np.exp(z) if name in log_link else z
        rows.append(f"| {name} | {used} | {rises} | {mean_squared_error(yte, p) ** 0.5:.4f} | "
                    f"{mean_absolute_error(yte, p):.4f} |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


def multiclass_table():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = _split(X, y)
    rows = ["### digits (10 classes)\n",
            "| objective | hessian | rounds loss rose (of 99) | test accuracy | test log-loss |",
            "|---|---|---:|---:|---:|"]
    b = _fit_builtin("multi:softprob", Xtr, ytr, {"num_class": 10})
    p = b.predict(xgb.DMatrix(Xte))
    rows.append(f"| XGBoost multi:softprob (built-in) | exact x2 | - | "
                f"{accuracy_score(yte, p.argmax(1)):.4f} | {log_loss(yte, p):.4f} |")
    for name in ("cross_entropy", "softmax_focal", "poly1"):
        booster, init, rises, used = _fit_ours(name, Xtr, ytr)
        z = _margin(booster, init, Xte)
        e = np.exp(z - z.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        rows.append(f"| {name} | {used} | {rises} | {accuracy_score(yte, p.argmax(1)):.4f} | "
                    f"{log_loss(yte, p):.4f} |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


def quality():
    X, y = load_breast_cancer(return_X_y=True)
    pos = np.flatnonzero(y == 0)
    keep = np.sort(np.concatenate([np.flatnonzero(y == 1), pos[::8]]))
    Xi, yi = X[keep], (y[keep] == 0).astype(float)
    parts = [
        binary_table(X, y.astype(float), "breast_cancer",
                     ["bce_with_logits", "focal", "exponential", "soft_margin", "squared_hinge",
                      "hinge"]),
        binary_table(Xi, yi, f"imbalanced breast_cancer ({int(yi.sum())} positives of {len(yi)}, "
                     "malignant kept 1 in 8): focal with each hessian", ["bce_with_logits",
                                                                         "focal"],
                     extra_focal=True),
        regression_table(),
        multiclass_table(),
    ]
    head = (f"XGBoost {xgb.__version__}, depth 3, eta 0.1, {ROUNDS} rounds, 70/30 split (seed 0), "
            f"losslab {losslab.__version__}.\n")
    return head + "\n\n".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true")
    args = ap.parse_args()
    parts = []
    if not args.skip_speed:
        parts.append("## Objective call time, 1M rows\n\n" + speed(args.rounds, args.rows))
    if not args.speed_only:
        parts.append("## Trained on bundled data, beside XGBoost's built-in objectives\n\n"
                     + quality())
    text = "\n\n".join(parts) + "\n"
    OUT.mkdir(exist_ok=True)
    (OUT / ("boosting_speed.md" if args.speed_only else "boosting.md")).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
