"""Reading the user's data: whole-column conversion, exact line numbers, no silent swallowing."""

from __future__ import annotations

import os

import numpy as np
import pytest

from losslab.cli import main
from losslab.cli.dataio import read_table
from losslab.cli.errors import UsageError


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _write(path, text):
    path.write_text(text)
    return str(path)


def _numeric_text(n=30, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, n))
    lines = ["a,b,y"] + [f"{x:.6f},{z:.6f},{1 + x - z:.6f}" for x, z in zip(a, b)]
    return "\n".join(lines) + "\n"


def test_fast_and_careful_paths_agree(tmp_path):
    fast = read_table(_write(tmp_path / "f.csv", _numeric_text()), "y")
    # A blank line sends the file down the careful path; the values must not change.
    text = _numeric_text().replace("\n", "\n\n", 3)
    careful = read_table(_write(tmp_path / "c.csv", text), "y")
    np.testing.assert_array_equal(fast.X, careful.X)
    np.testing.assert_array_equal(fast.y, careful.y)
    assert fast.lines.tolist() == list(range(2, 32))
    assert careful.lines[:3].tolist() == [3, 5, 7]


def test_stray_quote_is_refused_with_its_line(tmp_path, capsys):
    lines = _numeric_text().splitlines()
    lines[4] = lines[4].replace(",", ',"', 1)         # a stray quote on line 5
    path = _write(tmp_path / "q.csv", "\n".join(lines) + "\n")
    assert main(["train", "--data", path, "--out", "o"]) == 2
    err = capsys.readouterr().err
    assert "line 5" in err and "stray quote" in err and err.count("\n") == 1
    assert not os.path.exists("o")


def test_stray_quote_in_a_column_not_used_is_refused_too(tmp_path, capsys):
    text = "a,note,y\n1,ok,2\n2,\"oops,3\n3,fine,4\n4,x,5\n5,y,6\n"
    path = _write(tmp_path / "q.csv", text)
    assert main(["train", "--data", path, "--features", "a", "--target", "y"]) == 2
    assert "line 3" in capsys.readouterr().err


def test_quoted_newlines_need_multiline(tmp_path, capsys):
    text = 'a,note,y\n1,"two\nlines",2\n2,b,3\n3,c,4\n4,d,5\n5,e,7\n'
    path = _write(tmp_path / "m.csv", text)
    with pytest.raises(UsageError, match="line 2 .* --multiline"):
        read_table(path, "y", features=["a"])
    t = read_table(path, "y", features=["a"], multiline=True)
    assert t.X[:, 0].tolist() == [1, 2, 3, 4, 5]
    assert t.lines.tolist() == [2, 4, 5, 6, 7]       # each record's first line


def test_missing_values_are_reported_by_line(tmp_path):
    text = "a,b,y\n1,2,3\n2,,4\n3,4,nan\n4,5,6\n5,6,7\n6,7,inf\n"
    path = _write(tmp_path / "n.csv", text)
    with pytest.raises(UsageError, match=r"lines 3, 4, 7 \(columns b, y\)"):
        read_table(path, "y")
    t = read_table(path, "y", drop_missing=True)
    assert t.lines.tolist() == [2, 5, 6]
    assert "dropped 3 rows" in t.notes[-1]


def test_non_numeric_cell_reported_with_its_line(tmp_path):
    text = "a,b,y\n1,2,3\n2,x3,4\n3,4,5\n"
    with pytest.raises(UsageError, match=r"'b' is not numeric \(line 3: 'x3'\)"):
        read_table(_write(tmp_path / "t.csv", text), "y")


def test_field_count_mismatch(tmp_path):
    text = "a,b,y\n1,2,3\n2,3\n3,4,5\n"
    with pytest.raises(UsageError, match="line 3 .* 2 fields but the header has 3"):
        read_table(_write(tmp_path / "t.csv", text), "y")


def test_semicolons_bom_crlf_and_labels(tmp_path):
    text = "\ufeffa;b;label\r\n1;2;cat\r\n2;3;dog\r\n3;1;cat\r\n4;2;dog\r\n"
    t = read_table(_write(tmp_path / "s.csv", text), "label", labels_ok=True)
    assert t.feature_names == ["a", "b"] and t.y.tolist() == ["cat", "dog", "cat", "dog"]
    assert not t.numeric_target


def test_columns_converted_whole_not_cell_by_cell(tmp_path, monkeypatch):
    """The per-cell fallback runs only once a whole-column conversion has failed."""
    from losslab.cli import dataio

    calls = []
    real = dataio._to_float
    monkeypatch.setattr(dataio, "_to_float", lambda c: calls.append(len(c)) or real(c))
    text = _numeric_text(200).replace("\n", "\n\n", 1)   # careful path, all numeric
    read_table(_write(tmp_path / "c.csv", text), "y")
    assert calls == [200, 200, 200]                      # one call per column


def test_parquet_input(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow", reason="Parquet input needs the parquet extra (pyarrow)")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 60))
    y = 1 + 2 * a - b
    b_missing = [None if i == 4 else float(v) for i, v in enumerate(b)]
    pq.write_table(pa.table({"a": a, "b": b_missing, "y": y}), tmp_path / "d.parquet")
    with pytest.raises(UsageError, match="row 5"):
        read_table(str(tmp_path / "d.parquet"), "y")
    t = read_table(str(tmp_path / "d.parquet"), "y", drop_missing=True)
    assert t.X.shape == (59, 2) and t.unit == "row"
    assert main(["train", "--data", str(tmp_path / "d.parquet"), "--drop-missing", "--out", "p",
                 "-q", "--no-plots", "--json"]) == 0
    pq.write_table(pa.table({"a": a, "b": b}), tmp_path / "new.parquet")
    assert main(["predict", "--model", "p", "--data", str(tmp_path / "new.parquet")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("row,predicted_y") and len(out) == 62


def test_parquet_without_pyarrow_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    assert main(["train", "--data", "d.parquet"]) == 2
    assert "losslab[parquet]" in capsys.readouterr().err


def test_file_bigger_than_memory_is_refused_before_reading(tmp_path, monkeypatch):
    from losslab.cli import dataio

    path = _write(tmp_path / "d.csv", _numeric_text())
    monkeypatch.setattr(dataio, "available_memory", lambda: 1000)
    monkeypatch.setattr("builtins.open", lambda *a, **k: pytest.fail("file was opened"))
    with pytest.raises(UsageError, match="needs about .* of memory"):
        dataio._read_text(path, "--data")
