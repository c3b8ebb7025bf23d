"""Reading a user's table (CSV, or Parquet with the ``parquet`` extra) into arrays, with a clear
one-line message for every way it can be wrong.

CSV is converted by whole columns: NumPy's C reader (``np.loadtxt``) parses an all-numeric file
in one pass, and its result is accepted only when it read exactly one record per line after the
header (so a quoted field spanning lines, or a blank line, sends the file down the careful path).
The careful path reads the file with the ``csv`` module, keeping each record's line number,
converts each column with one NumPy call, and looks for the failing line only when a conversion
fails. A field that spans lines is refused unless ``--multiline`` is given: a stray quote makes
one, and it would silently swallow the rest of the file into one cell.
"""

from __future__ import annotations

import csv
import io
import os
import stat
from dataclasses import dataclass, field

import numpy as np

from losslab.cli.errors import UsageError
from losslab.losses._validation import suggest

__all__ = ["Table", "read_table", "read_header", "MISSING", "available_memory"]

# Cells read as "no value" (pandas' defaults, lower-cased, minus the exotic ones).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-nan", "#n/a"})
_SHOW = 8  # line numbers shown before "and N more"
_PARQUET = (".parquet", ".pq")
# Reading a CSV file takes up to about this many times its size in memory (the careful path's
# Python strings); a file beyond what is available is refused before it is read.
_MEMORY_FACTOR = 12


@dataclass
class Table:
    X: np.ndarray                      # (n, d) float64
    y: np.ndarray | None               # (n,) float64, or str labels (None: no target)
    feature_names: list[str]
    target_name: str | None
    lines: np.ndarray                  # each row's line in the file (header = 1), or row number
    source: str
    unit: str = "line"                 # "line" (CSV) or "row" (Parquet)
    notes: list[str] = field(default_factory=list)
    numeric_target: bool = True


def _lines_text(lines) -> str:
    lines = [int(v) for v in lines]
    shown = ", ".join(str(n) for n in lines[:_SHOW])
    more = f" and {len(lines) - _SHOW} more" if len(lines) > _SHOW else ""
    return shown + more


def available_memory() -> int | None:
    """Bytes of memory available to this process now (None where it cannot be told)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _read_text(path: str, what: str) -> str:
    """The file's text, refused before reading when it is a device, a directory or too big."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"data file {path!r} not found; check the path given to {what}",
                         flag=what) from None
    except OSError as exc:
        raise UsageError(f"cannot read data file {path!r}: {exc.strerror}", flag=what) from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path!r} is a directory; give {what} a CSV file", flag=what)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        raise UsageError(f"{path!r} is a device, not a data file; give {what} a CSV file",
                         flag=what)
    avail = available_memory()
    limit = None if avail is None else avail // _MEMORY_FACTOR
    if stat.S_ISREG(st.st_mode) and avail is not None and limit is not None \
            and st.st_size > limit:
        raise UsageError(f"data file {path!r} is {_gb(st.st_size)}; reading it needs about "
                         f"{_gb(st.st_size * _MEMORY_FACTOR)} of memory and "
                         f"{_gb(avail)} is available", flag=what)
    try:
        with open(path, "rb") as fh:
            # A pipe has no size: read at most the limit, and refuse if there is more.
            raw = fh.read(-1 if limit is None or stat.S_ISREG(st.st_mode) else limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read data file {path!r}: {exc.strerror}", flag=what) from None
    if limit is not None and len(raw) > limit:
        raise UsageError(f"{what} {path!r} gives more than {_gb(limit)}, more than fits in the "
                         f"memory available; give a smaller file", flag=what)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"data file {path!r} is not UTF-8 text; save it as a UTF-8 CSV file",
                         flag=what) from None


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    sample = text[:65536]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def _check_header(header: list[str], path: str) -> list[str]:
    header = [c.strip() for c in header]
    for i, h in enumerate(header):
        if not h:
            raise UsageError(f"data file {path!r}: column {i + 1} of the header has no name; "
                             f"name every column", flag="--data")
    seen: set[str] = set()
    for h in header:
        if h in seen:
            raise UsageError(f"data file {path!r} has two columns named {h!r}; give each column "
                             f"its own name", flag="--data")
        seen.add(h)
    return header


def _records(text: str, path: str, dialect, multiline: bool) -> tuple[list[str], list, list]:
    """Header, records and their line numbers, read with the csv module (the careful path)."""
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    rows: list[list[str]] = []
    lines: list[int] = []
    prev = 0
    try:
        for r in reader:
            end = reader.line_num
            start = prev + 1
            prev = end
            if end > start and not multiline:
                span = "the end of the file" if end >= text.count("\n") else f"line {end}"
                raise UsageError(
                    f"line {start} of {path!r} starts a quoted field that runs to {span} "
                    f"({end - start + 1} lines read as one record): a stray quote? Fix that "
                    f"line, or pass --multiline if fields really contain line breaks",
                    flag="--data")
            if any(c.strip() for c in r):
                rows.append(r)
                lines.append(start)
    except csv.Error as exc:
        raise UsageError(f"data file {path!r} is not valid CSV near line {prev + 1} ({exc}); "
                         f"fix the file", flag="--data") from None
    if not rows:
        raise UsageError(f"data file {path!r} is empty; it needs a header row and data rows",
                         flag="--data")
    header = _check_header(rows[0], path)
    n = len(header)
    for r, line in zip(rows[1:], lines[1:]):
        if len(r) != n:
            raise UsageError(f"line {line} of {path!r} has {len(r)} fields but the header has "
                             f"{n}; fix that row", flag="--data")
    return header, rows[1:], lines[1:]


def _fast_numeric(text: str, dialect, n_cols: int) -> np.ndarray | None:
    """Every column as float64 by NumPy's C reader, or None when the careful path is needed."""
    if getattr(dialect, "quotechar", '"') != '"' or getattr(dialect, "escapechar", None):
        return None
    try:
        X = np.loadtxt(io.StringIO(text), delimiter=dialect.delimiter, quotechar='"',
                       comments=None, skiprows=1, ndmin=2, dtype=np.float64, encoding=None)
    except ValueError:
        return None
    n_lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if X.shape != (n_lines - 1, n_cols) or not np.all(np.isfinite(X)):
        return None  # a blank line, a multi-line field, or a missing value: read carefully
    return X


def read_header(path: str, what: str = "--data") -> list[str]:
    """The column names of a CSV or Parquet file."""
    if path.lower().endswith(_PARQUET):
        return list(_parquet(path, what).column_names)
    text = _read_text(path, what)
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(first, newline=""), _dialect(text))
    row = next(reader, None)
    if not row:
        raise UsageError(f"data file {path!r} is empty; it needs a header row and data rows",
                         flag=what)
    return _check_header(row, path)


def _parquet(path: str, what: str):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(f"reading Parquet ({path!r}) needs pyarrow: pip install "
                         f"'losslab[parquet]', or export the table as CSV", flag=what) from None
    if not os.path.exists(path):
        raise UsageError(f"data file {path!r} not found; check the path given to {what}",
                         flag=what)
    try:
        return pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid, OSError, ...
        raise UsageError(f"data file {path!r} is not a readable Parquet file "
                         f"({type(exc).__name__})", flag=what) from None


def _select(header: list[str], target: str | None, features, require_target: bool,
            path: str, notes: list[str]) -> tuple[list[str], str | None]:
    if target is None and require_target:
        target = header[-1]
        notes.append(f"target: {target!r} (the last column; choose another with --target)")
    if target is not None and target not in header:
        if require_target:
            raise UsageError(f"target column {target!r} is not in {path!r}."
                             + suggest(target, header)
                             + f" Its columns are: {', '.join(header)}. Pass one of them to "
                               f"--target", flag="--target")
        target = None
    if features is None:
        features = [h for h in header if h != target]
    else:
        features = list(features)
        for f in features:
            if f not in header:
                raise UsageError(f"feature column {f!r} is not in {path!r}." + suggest(f, header)
                                 + f" Its columns are: {', '.join(header)}", flag="--features")
            if f == target:
                raise UsageError(f"column {f!r} is the target; leave it out of --features",
                                 flag="--features")
    if not features:
        raise UsageError(f"data file {path!r} has no feature columns besides the target "
                         f"{target!r}; add at least one input column", flag="--data")
    return features, target


def read_table(path: str, target: str | None, *, features=None, drop_missing: bool = False,
               labels_ok: bool = False, require_target: bool = True,
               multiline: bool = False) -> Table:
    """Load ``path``: numeric features and the ``target`` column (the last column when None).

    ``labels_ok`` accepts a non-numeric target as class labels (classification). With
    ``require_target=False`` (prediction) a missing target column is fine.
    """
    if path.lower().endswith(_PARQUET):
        return _read_parquet(path, target, features, drop_missing, labels_ok, require_target)
    if path.lower().endswith((".xlsx", ".xls", ".feather", ".json")):
        raise UsageError(f"data file {path!r} is not CSV; losslab reads CSV with a header row "
                         f"(or Parquet): export it as .csv first", flag="--data")
    text = _read_text(path, "--data")
    dialect = _dialect(text)
    notes: list[str] = []
    first = next(csv.reader(io.StringIO(text.split("\n", 1)[0], newline=""), dialect), None)
    if first is not None and any(c.strip() for c in first):
        header = _check_header(first, path)
        X_all = _fast_numeric(text, dialect, len(header))
        if X_all is not None:
            if len(X_all) == 0:
                raise UsageError(f"data file {path!r} has a header but no data rows",
                                 flag="--data")
            features, target = _select(header, target, features, require_target, path, notes)
            col = {h: i for i, h in enumerate(header)}
            return Table(
                X=np.ascontiguousarray(X_all[:, [col[f] for f in features]]),
                y=None if target is None else X_all[:, col[target]].copy(),
                feature_names=features, target_name=target,
                lines=np.arange(2, len(X_all) + 2), source=path, notes=notes)
    header, rows, lines = _records(text, path, dialect, multiline)
    features, target = _select(header, target, features, require_target, path, notes)
    if not rows:
        raise UsageError(f"data file {path!r} has a header but no data rows", flag="--data")
    col = {h: i for i, h in enumerate(header)}
    cells = {name: np.array([r[col[name]] for r in rows])
             for name in features + ([target] if target is not None else [])}
    return _assemble(cells, features, target, np.asarray(lines), path, "line", notes,
                     drop_missing, labels_ok)


def _to_float(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values (NaN where a cell is not a number) and a mask of the cells that parsed."""
    try:
        return cells.astype(np.float64), np.ones(len(cells), dtype=bool)
    except ValueError:
        pass
    out = np.full(len(cells), np.nan)
    ok = np.zeros(len(cells), dtype=bool)
    for i, c in enumerate(cells.tolist()):  # only once a column has failed as a whole
        try:
            out[i] = float(c)
            ok[i] = True
        except ValueError:
            pass
    return out, ok


def _is_missing(cells: np.ndarray) -> np.ndarray:
    low = np.char.lower(np.char.strip(cells.astype(str)))
    return np.isin(low, list(MISSING))


def _assemble(cells: dict[str, np.ndarray], features: list[str], target: str | None,
              lines: np.ndarray, path: str, unit: str, notes: list[str], drop_missing: bool,
              labels_ok: bool) -> Table:
    """Columns of cells (strings, or numbers from Parquet) to arrays, with exact messages."""
    n = len(lines)
    values: dict[str, np.ndarray] = {}
    bad: dict[str, np.ndarray] = {}
    numeric_target = True
    for name, c in cells.items():
        if c.dtype.kind in "fiub":
            v = c.astype(np.float64)
            values[name], bad[name] = v, ~np.isfinite(v)
            continue
        v, parsed = _to_float(c)
        missing = _is_missing(c) | (parsed & ~np.isfinite(v))
        not_number = ~parsed & ~missing
        if name == target and not_number.any():
            if not labels_ok:
                i = int(np.flatnonzero(not_number)[0])
                raise UsageError(
                    f"target column {name!r} is not numeric ({unit} {lines[i]}: "
                    f"{str(c[i]).strip()!r}); for class labels pass --task classification, "
                    f"otherwise fix the column or choose another --target", flag="--target")
            numeric_target = False
            values[name] = np.char.strip(c.astype(str)).astype(object)
            bad[name] = missing
            continue
        if not_number.any():
            i = int(np.flatnonzero(not_number)[0])
            raise UsageError(
                f"feature column {name!r} is not numeric ({unit} {lines[i]}: "
                f"{str(c[i]).strip()!r}); encode it as numbers or leave it out with --features",
                flag="--features")
        values[name], bad[name] = v, missing
    rows_bad = np.zeros(n, dtype=bool)
    for m in bad.values():
        rows_bad |= m
    if rows_bad.any():
        where = lines[rows_bad]
        cols = [name for name in cells if bad[name].any()]
        s = "s" if len(where) > 1 else ""
        if not drop_missing:
            raise UsageError(
                f"data file {path!r} has missing or non-finite values on {unit}{s} "
                f"{_lines_text(where)} (column{'s' if len(cols) > 1 else ''} {', '.join(cols)});"
                f" fill them in or pass --drop-missing to skip those rows", flag="--data")
        notes.append(f"dropped {len(where)} row{s} with missing values ({unit}{s} "
                     f"{_lines_text(where)})")
        keep = ~rows_bad
        values = {k: v[keep] for k, v in values.items()}
        lines = lines[keep]
        if len(lines) < 2:
            raise UsageError(f"data file {path!r} has fewer than 2 complete rows after "
                             f"--drop-missing; fill in the missing values", flag="--data")
    X = np.column_stack([values[f] for f in features]) if features else np.empty((len(lines), 0))
    return Table(X=np.ascontiguousarray(X, dtype=np.float64),
                 y=None if target is None else values[target],
                 feature_names=list(features), target_name=target, lines=lines, source=path,
                 unit=unit, notes=notes, numeric_target=numeric_target)


def _read_parquet(path, target, features, drop_missing, labels_ok, require_target) -> Table:
    table = _parquet(path, "--data")
    header = _check_header(list(table.column_names), path)
    notes: list[str] = []
    features, target = _select(header, target, features, require_target, path, notes)
    if table.num_rows == 0:
        raise UsageError(f"data file {path!r} has no rows", flag="--data")
    cells: dict[str, np.ndarray] = {}
    for name in features + ([target] if target is not None else []):
        column = table.column(name)
        values = np.asarray(column.to_numpy(zero_copy_only=False))
        nulls = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if values.dtype.kind in "fiub":
            values = values.astype(np.float64)
            values[nulls] = np.nan
        else:
            values = np.array(["" if m else str(v) for v, m in zip(values.tolist(), nulls)])
        cells[name] = values
    return _assemble(cells, features, target, np.arange(1, table.num_rows + 1), path, "row",
                     notes, drop_missing, labels_ok)
