"""Reading a user's CSV file into arrays, with a clear message for every way it can be wrong."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field

import numpy as np

from losslab.cli.options import UsageError
from losslab.losses._validation import suggest

__all__ = ["Table", "read_csv", "MISSING"]

# Cells read as "no value" (pandas' defaults, lower-cased, minus the exotic ones).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-nan", "#n/a"})
_SHOW = 8  # line numbers shown before "and N more"


@dataclass
class Table:
    X: np.ndarray                      # (n, d) float64
    y: np.ndarray | None               # (n,) float64 or str labels (None when no target)
    feature_names: list[str]
    target_name: str | None
    lines: np.ndarray                  # the file line number of each row (header is line 1)
    source: str
    notes: list[str] = field(default_factory=list)
    numeric_target: bool = True


def _lines_text(lines: list[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:_SHOW])
    more = f" and {len(lines) - _SHOW} more" if len(lines) > _SHOW else ""
    return shown + more


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def read_rows(path: str, what: str = "--data") -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, cells)`` rows of a CSV file; blank lines skipped."""
    if not os.path.exists(path):
        raise UsageError(f"data file {path!r} not found; check the path given to {what}")
    if os.path.isdir(path):
        raise UsageError(f"{path!r} is a directory; give {what} a CSV file")
    if path.lower().endswith((".parquet", ".pq", ".xlsx", ".xls")):
        raise UsageError(
            f"data file {path!r} is not CSV; losslab reads CSV with a header row: "
            f"export it as .csv first"
        )
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            sample = fh.read(65536)
            fh.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.reader(fh, dialect)
            rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    except UnicodeDecodeError:
        raise UsageError(
            f"data file {path!r} is not UTF-8 text; save it as a UTF-8 CSV file"
        ) from None
    except csv.Error as exc:
        raise UsageError(
            f"data file {path!r} is not valid CSV ({exc}); fix the file"
        ) from None
    except OSError as exc:
        raise UsageError(
            f"cannot read data file {path!r}: {exc.strerror}"
        ) from None
    if not rows:
        raise UsageError(f"data file {path!r} is empty; it needs a header row and data rows")
    header = [c.strip() for c in rows[0][1]]
    if any(not h for h in header):
        i = next(i for i, h in enumerate(header) if not h)
        raise UsageError(
            f"data file {path!r}: column {i + 1} of the header has no name; name every column"
        )
    seen: set[str] = set()
    for h in header:
        if h in seen:
            raise UsageError(
                f"data file {path!r} has two columns named {h!r}; give each column its own name"
            )
        seen.add(h)
    body = rows[1:]
    for line, r in body:
        if len(r) != len(header):
            raise UsageError(
                f"line {line} of {path!r} has {len(r)} fields but the header has {len(header)};"
                f" fix that row"
            )
    return header, body


def read_csv(
    path: str,
    target: str | None,
    *,
    features: list[str] | None = None,
    drop_missing: bool = False,
    labels_ok: bool = False,
    require_target: bool = True,
) -> Table:
    """Load ``path``: numeric features and the ``target`` column (the last column when None).

    ``labels_ok`` accepts a non-numeric target as class labels (``--task classification``).
    With ``require_target=False`` (prediction) a missing target column is fine.
    """
    header, body = read_rows(path)
    notes: list[str] = []
    if target is None and require_target:
        target = header[-1]
        notes.append(f"target: {target!r} (the last column; choose another with --target)")
    if target is not None and target not in header:
        if require_target:
            raise UsageError(
                f"target column {target!r} is not in {path!r}."
                + suggest(target, header)
                + f" Its columns are: {', '.join(header)}. Pass one of them to --target"
            )
        target = None
    if features is None:
        features = [h for h in header if h != target]
    else:
        for f in features:
            if f not in header:
                raise UsageError(
                    f"feature column {f!r} is not in {path!r}." + suggest(f, header)
                    + f" Its columns are: {', '.join(header)}"
                )
            if f == target:
                raise UsageError(f"column {f!r} is the target; leave it out of --features")
    if not features:
        raise UsageError(
            f"data file {path!r} has no feature columns besides the target {target!r}; "
            f"add at least one input column"
        )
    if not body:
        raise UsageError(f"data file {path!r} has a header but no data rows")

    cols = {h: i for i, h in enumerate(header)}
    used = features + ([target] if target is not None else [])
    missing_lines: list[int] = []
    missing_cols: list[str] = []
    keep: list[int] = []
    for k, (line, r) in enumerate(body):
        bad = [c for c in used if r[cols[c]].strip().lower() in MISSING
               or _is_nonfinite(r[cols[c]])]
        if bad:
            missing_lines.append(line)
            missing_cols.extend(c for c in bad if c not in missing_cols)
        else:
            keep.append(k)
    if missing_lines:
        if not drop_missing:
            raise UsageError(
                f"data file {path!r} has missing or non-finite values on line"
                f"{'s' if len(missing_lines) > 1 else ''} {_lines_text(missing_lines)} "
                f"(column{'s' if len(missing_cols) > 1 else ''} {', '.join(missing_cols)}); "
                f"fill them in or pass --drop-missing to skip those rows"
            )
        notes.append(
            f"dropped {len(missing_lines)} row{'s' if len(missing_lines) > 1 else ''} with "
            f"missing values (lines {_lines_text(missing_lines)})"
        )
        body = [body[k] for k in keep]
        if len(body) < 2:
            raise UsageError(
                f"data file {path!r} has fewer than 2 complete rows after --drop-missing; "
                f"fill in the missing values"
            )

    X = np.empty((len(body), len(features)), dtype=np.float64)
    for j, f in enumerate(features):
        c = cols[f]
        for i, (line, r) in enumerate(body):
            v = _number(r[c])
            if v is None:
                raise UsageError(
                    f"feature column {f!r} is not numeric (line {line}: {r[c].strip()!r}); "
                    f"encode it as numbers or leave it out with --features"
                )
            X[i, j] = v
    y = None
    numeric_target = True
    if target is not None:
        c = cols[target]
        vals = [_number(r[c]) for _, r in body]
        if any(v is None for v in vals):
            bad = next(i for i, v in enumerate(vals) if v is None)
            if not labels_ok:
                raise UsageError(
                    f"target column {target!r} is not numeric (line {body[bad][0]}: "
                    f"{body[bad][1][c].strip()!r}); for class labels pass --task classification,"
                    f" otherwise fix the column or choose another --target"
                )
            numeric_target = False
            y = np.array([r[c].strip() for _, r in body], dtype=object)
        else:
            y = np.asarray(vals, dtype=np.float64)
    return Table(
        X=X, y=y, feature_names=list(features), target_name=target,
        lines=np.array([line for line, _ in body]), source=path, notes=notes,
        numeric_target=numeric_target,
    )


def _is_nonfinite(cell: str) -> bool:
    v = _number(cell)
    return v is not None and not math.isfinite(v)
