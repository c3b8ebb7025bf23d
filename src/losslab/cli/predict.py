"""``losslab predict``: apply a model saved by ``losslab train`` to the rows of a data file.

Regression predictions are on the target's original scale (the model file stores the target's
standardisation). Classes come with probabilities only when the loss trained logits; a margin
loss (hinge and the like, input kind "scores") has none, so its scores are printed instead.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from typing import Any

import numpy as np

from losslab.cli.dataio import read_header, read_table
from losslab.cli.errors import OutputError, UsageError


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
                             f"of 'losslab train'", flag="--model")
        raise UsageError(f"--model {path!r} holds several models ({', '.join(candidates)}); "
                         f"give one file", flag="--model")
    if not os.path.exists(path):
        raise UsageError(f"--model {path!r} not found; give the output directory of "
                         f"'losslab train' or its model.npz", flag="--model")
    return path


def _same(a: str, b: str) -> bool:
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_output(output: str, data: str, model: str) -> None:
    """--output must not be an input: never write predictions over the data or the model."""
    for what, path in (("--data", data), ("--model", model)):
        if _same(output, path):
            raise OutputError(f"--output {output!r} is the {what} file; losslab never writes "
                              f"over its input: choose another --output", flag="--output")
    if os.path.isdir(output):
        raise OutputError(f"--output {output!r} is a directory; give a file name",
                          flag="--output")


def load(path: str) -> tuple[Any, dict[str, Any]]:
    """The model and its metadata; any unreadable file is one line, never numpy's advice."""
    from losslab.train.checkpoint import CheckpointError, load_model

    try:
        model, extra = load_model(path, with_extra=True)
    except (CheckpointError, OSError):
        raise UsageError(f"--model {path!r} is not a readable losslab file (truncated, empty or "
                         f"corrupt); train it again with 'losslab train'",
                         flag="--model") from None
    version = extra.get("losslab_model") if isinstance(extra, dict) else None
    if version not in (1, 2) or not isinstance(extra.get("feature_names"), list):
        raise UsageError(f"--model {path!r} was not written by 'losslab train'; it lacks the "
                         f"feature names and scaling that predict needs", flag="--model")
    if version == 1:  # files written before the encoding and target scaling were stored
        extra = {**extra, "encoding": extra.get("target_kind", "real"), "target_scaler": None}
    import losslab

    name = extra.get("loss_name") or str(extra.get("loss", "mse")).split(":")[0]
    try:
        spec = losslab.spec(name)
    except (ValueError, TypeError):
        raise UsageError(f"--model {path!r} was trained with {name!r}, which this losslab does "
                         f"not know", flag="--model") from None
    return model, {**extra, "spec": spec}


def run(args: Any) -> int:
    from losslab.cli.pipeline import predictions

    path = _model_path(args.model)
    if args.output:
        _check_output(args.output, args.data, path)
    model, extra = load(path)
    names = [str(n) for n in extra["feature_names"]]
    header = read_header(args.data)
    missing = [f for f in names if f not in header]
    if missing:
        raise UsageError(f"data file {args.data!r} lacks the model's feature column"
                         f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                         f"it needs {', '.join(names)}", flag="--data")
    table = read_table(args.data, None, features=names, drop_missing=args.drop_missing,
                       require_target=False, multiline=args.multiline)
    X = table.X
    if extra.get("standardizer"):
        from losslab.train.data import Standardizer

        X = Standardizer.from_dict(extra["standardizer"]).transform(X)
    X = np.asarray(X, dtype=extra.get("dtype", "float32"))
    model.eval()
    try:
        out = np.asarray(model.forward(X), dtype=np.float64)
    except ValueError as exc:
        raise UsageError(f"--model {path!r} does not fit the data: {exc}", flag="--model") \
            from None
    scaler = extra.get("target_scaler") or {"mean": 0.0, "scale": 1.0}
    p = predictions(out, extra["spec"], str(extra.get("encoding", "real")),
                    float(scaler["mean"]), float(scaler["scale"]))
    target = str(extra.get("target_name") or "y")
    cols: list[str]
    rows: list[list[Any]]
    if "value" in p:
        cols = [f"predicted_{target}"]
        rows = [[float(v)] for v in p["value"]]
    else:
        classes = extra.get("classes") or list(range(max(2, out.shape[1])))
        labels = [classes[int(i)] for i in p["index"]]
        if "proba" in p:
            cols = [f"predicted_{target}"] + [f"p_{c}" for c in classes]
            rows = [[lab] + [float(x) for x in pr] for lab, pr in zip(labels, p["proba"])]
        elif p["score"].ndim == 1:
            cols = [f"predicted_{target}", "score"]
            rows = [[lab, float(s)] for lab, s in zip(labels, p["score"])]
        else:
            cols = [f"predicted_{target}"] + [f"score_{c}" for c in classes]
            rows = [[lab] + [float(x) for x in s] for lab, s in zip(labels, p["score"])]
    for note in table.notes:
        print(f"losslab: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps({"columns": cols, table.unit + "s": table.lines.tolist(),
                          "rows": rows}))
        return 0
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([table.unit] + cols)
    for line, r in zip(table.lines, rows):
        w.writerow([int(line)] + [repr(v) if isinstance(v, float) else v for v in r])
    if args.output:
        from losslab.atomic import write_atomic

        try:
            write_atomic(args.output, buf.getvalue())
        except OSError as exc:
            raise OutputError(f"cannot write --output {args.output!r}: {exc.strerror}",
                              flag="--output") from None
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(buf.getvalue())
    return 0
