"""``losslab overfit`` and the user's files: the run directory is claimed, written all-or-nothing
and replaced only when it is losslab's own, as for the other commands (``losslab.cli.outdir``)."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from losslab.cli import main
from losslab.cli.outdir import MANIFEST

# Small and quick: a few epochs, strengths given (no sweep), one learning-curve split.
FAST = ["--epochs", "2", "--l1", "1e-3", "--l2", "1e-2", "--repeats", "1", "-q"]
GRADIENTS = ["--show", "gradients", "--epochs", "2", "--depth", "3", "--width", "8", "-q"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _csv(path, n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    with open(path, "w") as fh:
        fh.write("a,b,c,label\n")
        for row, t in zip(X, y):
            fh.write(",".join(f"{v:.6f}" for v in row) + f",{t}\n")
    return str(path)


def test_out_that_holds_foreign_files_is_refused_and_untouched(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["overfit", *FAST, "--out", "mine"]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert main(["overfit", *FAST, "--out", "mine", "--overwrite"]) == 2
    assert "not written by losslab" in capsys.readouterr().err
    assert os.listdir(tmp_path / "mine") == ["notes.txt"]
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_overwrite_replaces_exactly_the_earlier_run(tmp_path, capsys):
    assert main(["overfit", *FAST, "--out", "run"]) == 0                # with plots
    first = set(os.listdir(tmp_path / "run"))
    assert {"overfit.png", "learning_curve.png", "report.html"} <= first
    manifest = json.loads((tmp_path / "run" / MANIFEST).read_text())
    assert set(manifest["files"]) | {MANIFEST} == first and manifest["command"] == "overfit"
    assert main(["overfit", *GRADIENTS, "--no-plots", "--out", "run", "--overwrite"]) == 0
    second = set(os.listdir(tmp_path / "run"))
    assert "overfit.png" not in second and "history-ReLU-He-init.csv" in second
    assert sorted(os.listdir(tmp_path)) == ["run"]                      # no staging left


def test_overwrite_refuses_a_run_directory_with_foreign_files(tmp_path, capsys):
    assert main(["overfit", *GRADIENTS, "--no-plots", "--out", "run"]) == 0
    (tmp_path / "run" / "my-notes.txt").write_text("keep me")
    assert main(["overfit", *GRADIENTS, "--no-plots", "--out", "run", "--overwrite"]) == 2
    assert "did not write (my-notes.txt)" in capsys.readouterr().err
    assert (tmp_path / "run" / "my-notes.txt").read_text() == "keep me"


def test_never_writes_into_the_directory_holding_its_input(tmp_path, capsys):
    data = _csv(tmp_path / "data.csv")
    before = open(data).read()
    assert main(["overfit", *FAST, "--data", data, "--train-fraction", "0.2", "--out", ".",
                 "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "holds the input" in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == ["data.csv"] and open(data).read() == before
    # Elsewhere it runs on that file and leaves it as it was.
    assert main(["overfit", *FAST, "--data", data, "--train-fraction", "0.2", "--no-plots",
                 "--out", "run"]) == 0
    assert open(data).read() == before


def test_failed_run_removes_only_the_directories_it_made(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    argv = ["overfit", "--optimizer", "sgd", "--lr", "1e30", *FAST, "--out",
            "results/2024/run1"]
    assert main(argv) == 2
    assert "diverged" in capsys.readouterr().err
    assert os.listdir(tmp_path / "results") == []                       # 2024/run1 are gone
    assert sorted(os.listdir(tmp_path)) == ["results"]


def test_a_failed_overwrite_keeps_the_earlier_run(tmp_path, capsys):
    assert main(["overfit", *GRADIENTS, "--no-plots", "--out", "run"]) == 0
    before = {f: (tmp_path / "run" / f).read_bytes() for f in os.listdir(tmp_path / "run")}
    assert main(["overfit", "--optimizer", "sgd", "--lr", "1e30", *FAST, "--out", "run",
                 "--overwrite"]) == 2
    after = {f: (tmp_path / "run" / f).read_bytes() for f in os.listdir(tmp_path / "run")}
    assert after == before


def test_interrupted_run_leaves_nothing(tmp_path, capsys, monkeypatch):
    from losslab.cli import overfit

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(overfit, "_learning_curve", interrupt)      # after the cures trained
    assert main(["overfit", *FAST, "--out", "a/b"]) == 130
    assert "nothing was written" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mode", [FAST, GRADIENTS])
def test_every_written_file_goes_through_write_atomic(tmp_path, monkeypatch, mode):
    import losslab.atomic

    written = []
    real = losslab.atomic.write_atomic

    def spy(path, content, **k):
        written.append(os.path.basename(path))
        return real(path, content, **k)

    for module in ("losslab.cli.outdir", "losslab.cli.plots"):
        monkeypatch.setattr(sys.modules[module] if module in sys.modules
                            else __import__(module, fromlist=["x"]), "write_atomic", spy)
    assert main(["overfit", *mode, "--out", "run"]) == 0
    assert set(written) == set(os.listdir(tmp_path / "run"))
    assert any(f.endswith(".png") for f in written)
