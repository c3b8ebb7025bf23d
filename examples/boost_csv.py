"""Train a gradient-boosted model on a CSV file with any catalog loss as the objective.

    python examples/boost_csv.py data.csv --target price --loss pseudo_huber:delta=2 \
        [--library xgboost|lightgbm] [--rounds 200] [--hessian clip] [--out model.json]

The CSV has a header row; every column but the target is a numeric feature. The last 20% of the
rows are held out: the script prints the objective's loss on both parts every few rounds (and
stops early when the held-out loss stops improving), then writes the model to ``--out`` (XGBoost
JSON or LightGBM text; never over the CSV itself, and only if the file does not exist yet unless
``--overwrite``). Multiclass losses (cross_entropy, softmax_focal, poly1) take labels 0..k-1.
Needs ``pip install -e ".[boosting]"``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from losslab import boosting
from losslab.atomic import write_atomic


def parse_loss(text: str) -> tuple[str, dict[str, float]]:
    """``name:key=value,key=value`` (the command line's spelling) -> (name, options)."""
    name, _, rest = text.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        options[key] = float(value)
    return name, options


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--target", required=True)
    ap.add_argument("--loss", default="mse")
    ap.add_argument("--library", default="xgboost", choices=boosting.LIBRARIES)
    ap.add_argument("--hessian", default=None, choices=boosting.HESSIANS)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--out", default=None)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)

    name, options = parse_loss(args.loss)
    try:
        objective = boosting.objective(name, args.library, hessian=args.hessian, **options)
        metric = boosting.metric(name, args.library, **options)
    except (TypeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out and os.path.abspath(args.out) == os.path.abspath(args.csv):
        print("error: --out would overwrite the input CSV", file=sys.stderr)
        return 2
    if args.out and os.path.exists(args.out) and not args.overwrite:
        print(f"error: {args.out} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 2

    data = np.genfromtxt(args.csv, delimiter=",", names=True, dtype=np.float64)
    if args.target not in data.dtype.names:
        print(f"error: no column {args.target!r} in {args.csv}", file=sys.stderr)
        return 2
    features = [c for c in data.dtype.names if c != args.target]
    X = np.column_stack([data[c] for c in features])
    y = data[args.target]
    cut = int(0.8 * len(y))
    init = boosting.init_score(name, y[:cut], **options)
    k = np.size(init)

    def margin(n: int) -> np.ndarray:
        return np.tile(init, (n, 1)) if k > 1 else np.full(n, init)

    if args.library == "xgboost":
        import xgboost as xgb

        params = {"max_depth": 4, "eta": 0.1, "disable_default_eval_metric": 1}
        if k > 1:  # one start per class: a base margin per row (add init at predict time)
            params["num_class"] = k
            train = xgb.DMatrix(X[:cut], y[:cut], base_margin=margin(cut))
            valid = xgb.DMatrix(X[cut:], y[cut:], base_margin=margin(len(y) - cut))
        else:  # the custom objective runs on the identity link: base_score is a raw score
            params["base_score"] = float(init)
            train, valid = xgb.DMatrix(X[:cut], y[:cut]), xgb.DMatrix(X[cut:], y[cut:])
        model = xgb.train(params, train, args.rounds, obj=objective, custom_metric=metric,
                          evals=[(train, "train"), (valid, "valid")], early_stopping_rounds=20,
                          verbose_eval=max(1, args.rounds // 10))
        text = model.save_raw("json")
    else:
        import lightgbm as lgb

        def dataset(a: int, b: int) -> lgb.Dataset:
            return lgb.Dataset(X[a:b], y[a:b], init_score=margin(b - a).ravel(order="F"))

        train, valid = dataset(0, cut), dataset(cut, len(y))
        params = {"objective": objective, "metric": "None", "learning_rate": 0.1,
                  "num_leaves": 15, "verbose": -1, **({"num_class": k} if k > 1 else {})}
        model = lgb.train(params, train, args.rounds, valid_sets=[train, valid],
                          valid_names=["train", "valid"], feval=metric,
                          callbacks=[lgb.log_evaluation(max(1, args.rounds // 10)),
                                     lgb.early_stopping(20, verbose=False)])
        text = model.model_to_string()
    print(f"{name} {options or ''}: init score {np.round(init, 6)}, hessian "
          f"{objective.hessian}; features: {', '.join(features)}")
    if args.out:
        write_atomic(args.out, text if isinstance(text, str) else bytes(text))
        stored = args.library == "xgboost" and k == 1
        print(f"model written to {args.out}" + ("" if stored else (
            f" (add the init score to its raw predictions: {np.round(init, 6).tolist()})")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
