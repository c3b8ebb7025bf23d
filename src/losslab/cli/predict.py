"""``losslab predict``: apply a model saved by ``losslab train`` to the rows of a CSV file."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from typing import Any

import numpy as np

from losslab.cli.dataio import read_csv, read_rows
from losslab.cli.options import UsageError


def _model_path(path: str) -> str:
    if os.path.isdir(path):
        candidates = sorted(f for f in os.listdir(path) if f.startswith("model")
                            and f.endswith(".npz"))
        if "model.npz" in candidates:
            return os.path.join(path, "model.npz")
        if len(candidates) == 1:
            return os.path.join(path, candidates[0])
        if not candidates:
            raise UsageError(f"--model {path!r} holds no model.npz; give the output directory "
                             f"of 'losslab train'")
        raise UsageError(f"--model {path!r} holds several models ({', '.join(candidates)}); "
                         f"give one file")
    if not os.path.exists(path):
        raise UsageError(f"--model {path!r} not found; give the output directory of "
                         f"'losslab train' or its model.npz")
    return path


def run(args: Any) -> int:
    from losslab.train.checkpoint import load_model

    path = _model_path(args.model)
    try:
        model, extra = load_model(path, with_extra=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--model {path!r} is not a losslab model ({exc})") from None
    if not extra.get("losslab_model"):
        raise UsageError(f"--model {path!r} was not written by 'losslab train'; it lacks the "
                         f"feature names and scaling that predict needs")
    names = list(extra["feature_names"])
    header, _ = read_rows(args.data)
    missing = [f for f in names if f not in header]
    if missing:
        raise UsageError(f"data file {args.data!r} lacks the model's feature column"
                         f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                         f"it needs {', '.join(names)}")
    table = read_csv(args.data, None, features=names, drop_missing=args.drop_missing,
                     require_target=False)
    X = table.X
    if extra.get("standardizer"):
        from losslab.train.data import Standardizer

        X = Standardizer.from_dict(extra["standardizer"]).transform(X)
    X = np.asarray(X, dtype=extra.get("dtype", "float32"))
    model.eval()
    out = np.asarray(model.forward(X), dtype=np.float64)
    kind = extra.get("target_kind", "real")
    classes = extra.get("classes")
    target = str(extra.get("target_name") or "y")
    cols: list[str]
    rows: list[list[Any]]
    if kind == "real":
        cols = [f"predicted_{target}"]
        rows = [[float(v)] for v in out[:, 0]]
    else:
        if kind == "index":
            z = out - out.max(axis=1, keepdims=True)
            proba = np.exp(z)
            proba /= proba.sum(axis=1, keepdims=True)
        else:
            p1 = 1.0 / (1.0 + np.exp(-np.clip(out[:, 0], -500, 500)))
            proba = np.stack([1 - p1, p1], axis=1)
        labels = classes or list(range(proba.shape[1]))
        cols = [f"predicted_{target}"] + [f"p_{c}" for c in labels]
        rows = [[labels[int(np.argmax(p))]] + [float(x) for x in p] for p in proba]
    for note in table.notes:
        print(note, file=sys.stderr)
    if args.json:
        print(json.dumps({"columns": cols, "lines": table.lines.tolist(), "rows": rows}))
        return 0
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["line"] + cols)
    for line, r in zip(table.lines, rows):
        w.writerow([int(line)] + [repr(v) if isinstance(v, float) else v for v in r])
    if args.output:
        tmp = f"{args.output}.tmp-{os.getpid()}"
        try:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write(buf.getvalue())
            os.replace(tmp, args.output)
        except OSError as exc:
            raise UsageError(f"cannot write --output {args.output!r}: {exc.strerror}") from None
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(buf.getvalue())
    return 0
