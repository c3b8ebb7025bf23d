"""The command and the user's files: nothing it did not create is ever removed or overwritten."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from losslab.cli import main
from losslab.cli.outdir import MANIFEST, RunDir


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _csv(path, n=60, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, n))
    y = 1 + 2 * a - b + rng.normal(0, 0.1, n)
    with open(path, "w") as fh:
        fh.write("a,b,y\n")
        for row in zip(a, b, y):
            fh.write(",".join(f"{v:.6f}" for v in row) + "\n")
    return str(path)


DIVERGE = ["--dataset", "article_line", "--optimizer", "sgd", "--lr", "1e30", "--epochs", "3",
           "--no-plots"]


def test_failed_run_from_an_empty_directory_keeps_it(tmp_path, capsys):
    """os.removedirs used to remove every empty parent, the working directory included."""
    work = tmp_path / "empty" / "work"
    work.mkdir(parents=True)
    os.chdir(work)
    assert main(["train", *DIVERGE]) == 2
    assert "diverged" in capsys.readouterr().err
    assert work.is_dir() and os.listdir(work) == []       # losslab-runs/ it made is gone
    assert (tmp_path / "empty").is_dir()


def test_failed_run_removes_only_the_directories_it_made(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    assert main(["train", *DIVERGE, "--out", "results/2024/run1"]) == 2
    capsys.readouterr()
    assert (tmp_path / "results").is_dir()                # the user's (empty) directory stays
    assert os.listdir(tmp_path / "results") == []         # 2024/run1, which losslab made, go
    assert sorted(os.listdir(tmp_path)) == ["results"]


def test_failed_run_into_an_existing_empty_directory_keeps_it(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    assert main(["train", *DIVERGE, "--out", "mine"]) == 2
    assert (tmp_path / "mine").is_dir() and os.listdir(tmp_path / "mine") == []


def test_interrupted_run_leaves_nothing(tmp_path, capsys, monkeypatch):
    from losslab.cli import pipeline

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "history_csv", interrupt)
    assert main(["train", "--dataset", "article_line", "--epochs", "2", "--out", "a/b",
                 "--no-plots"]) == 130
    assert "nothing was written" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_overwrite_refuses_the_working_directory_with_the_input(tmp_path, capsys):
    data = _csv(tmp_path / "data.csv")
    (tmp_path / "notes.txt").write_text("mine")
    before = sorted(os.listdir(tmp_path))
    assert main(["train", "--data", "data.csv", "--out", ".", "--overwrite", "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "holds the input" in err and err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == before
    assert open(data).read().startswith("a,b,y\n")


def test_overwrite_refuses_a_run_directory_holding_the_input(tmp_path, capsys):
    assert main(["train", "--out", "run", "--no-plots", "-q"]) == 0
    _csv(tmp_path / "run" / "data.csv")
    assert main(["train", "--data", "run/data.csv", "--out", "run", "--overwrite", "-q"]) == 2
    assert "holds the input" in capsys.readouterr().err
    assert (tmp_path / "run" / "data.csv").exists()


def test_overwrite_refuses_a_run_directory_with_foreign_files(tmp_path, capsys):
    assert main(["train", "--out", "run", "--no-plots", "-q"]) == 0
    (tmp_path / "run" / "my-notes.txt").write_text("keep me")
    assert main(["train", "--out", "run", "--overwrite", "--no-plots", "-q"]) == 2
    assert "did not write (my-notes.txt)" in capsys.readouterr().err
    assert (tmp_path / "run" / "my-notes.txt").read_text() == "keep me"


def test_overwrite_replaces_exactly_the_earlier_run(tmp_path, capsys):
    assert main(["train", "--out", "run", "-q"]) == 0           # with plots
    first = set(os.listdir(tmp_path / "run"))
    manifest = json.loads((tmp_path / "run" / MANIFEST).read_text())
    assert set(manifest["files"]) | {MANIFEST} == first
    assert main(["train", "--out", "run", "--overwrite", "--no-plots", "-q"]) == 0
    second = set(os.listdir(tmp_path / "run"))
    assert "loss.png" not in second and "metrics.json" in second
    assert sorted(os.listdir(tmp_path)) == ["run"]               # no staging or old copy left


def test_a_failed_overwrite_keeps_the_earlier_run(tmp_path, capsys):
    assert main(["train", "--dataset", "article_line", "--out", "run", "--no-plots", "-q",
                 "--epochs", "2"]) == 0
    before = {f: (tmp_path / "run" / f).read_bytes() for f in os.listdir(tmp_path / "run")}
    assert main(["train", *DIVERGE, "--out", "run", "--overwrite"]) == 2
    after = {f: (tmp_path / "run" / f).read_bytes() for f in os.listdir(tmp_path / "run")}
    assert after == before


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["train", "--out", "f", "--overwrite"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert (tmp_path / "f").read_text() == "x"


def test_second_concurrent_claim_is_refused(tmp_path):
    with RunDir(str(tmp_path / "out"), "train") as first:
        first.write("a.txt", "1")
        with pytest.raises(Exception) as exc, RunDir(str(tmp_path / "out"), "train"):
            pass
        assert "another losslab run" in str(exc.value)
        first.commit()
    assert sorted(os.listdir(tmp_path / "out")) == ["a.txt", MANIFEST]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_two_concurrent_runs_into_one_out_cannot_both_succeed(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-m", "losslab", "train", "--dataset", "article_line", "--epochs",
            "300", "--no-plots", "-q", "--out", str(tmp_path / "shared")]
    procs = [subprocess.Popen(argv + ["--seed", str(s)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for s in (1, 2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    err = next(e for code, e in results if code == 2)
    assert err.count("\n") == 1 and "Traceback" not in err
    m = json.loads((tmp_path / "shared" / "metrics.json").read_text())
    winner = next(i for i, (code, _) in enumerate(results) if code == 0)
    assert m["settings"]["seed"] == (1, 2)[winner]  # the survivor's own output, not replaced


def test_predict_refuses_to_write_over_its_input(tmp_path, capsys):
    data = _csv(tmp_path / "d.csv")
    assert main(["train", "--data", data, "--out", "m", "-q", "--epochs", "2",
                 "--no-plots"]) == 0
    original = open(data).read()
    os.symlink(data, tmp_path / "alias.csv")
    for output in (data, "d.csv", "./d.csv", "alias.csv", "m/model.npz"):
        assert main(["predict", "--model", "m", "--data", data, "--output", output]) == 2
        err = capsys.readouterr().err
        assert "never writes over its input" in err and err.count("\n") == 1
    assert open(data).read() == original
    assert main(["predict", "--model", "m", "--data", data, "--output", "p.csv"]) == 0
    assert open("p.csv").read().startswith("line,predicted_y\n2,")


def test_predict_output_is_atomic(tmp_path, capsys, monkeypatch):
    data = _csv(tmp_path / "d.csv")
    assert main(["train", "--data", data, "--out", "m", "-q", "--epochs", "2",
                 "--no-plots"]) == 0
    (tmp_path / "p.csv").write_text("old predictions\n")
    import losslab.atomic

    def broken(path, content, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(losslab.atomic, "write_atomic", broken)
    assert main(["predict", "--model", "m", "--data", data, "--output", "p.csv"]) == 2
    assert "No space left" in capsys.readouterr().err
    assert (tmp_path / "p.csv").read_text() == "old predictions\n"


def test_plot_into_a_read_only_place_is_one_line(tmp_path, capsys, monkeypatch):
    import losslab.cli.plots as plots

    def denied(path, content, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(plots, "write_atomic", denied)
    assert main(["losses", "huber", "--plot", str(tmp_path / "h.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("losslab: error: cannot write --plot") and err.count("\n") == 1
    assert "Permission denied" in err


def test_output_parent_not_writable_is_one_line(tmp_path, capsys, monkeypatch):
    import tempfile

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    assert main(["train", "--out", "ro/run", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "Permission denied" in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == []   # the directories it made are gone again


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_for_real(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(["train", "--out", "ro/run", "--no-plots"]) == 2
        assert main(["losses", "huber", "--plot", "ro/h.png"]) == 2
    finally:
        ro.chmod(0o700)
    assert os.listdir(ro) == []


def test_every_written_file_goes_through_write_atomic(tmp_path, capsys, monkeypatch):
    import losslab.atomic

    written = []
    real = losslab.atomic.write_atomic

    def spy(path, content, **k):
        written.append(os.path.basename(path))
        return real(path, content, **k)

    for module in ("losslab.cli.outdir", "losslab.cli.plots", "losslab.train.checkpoint"):
        monkeypatch.setattr(sys.modules[module] if module in sys.modules
                            else __import__(module, fromlist=["x"]), "write_atomic", spy)
    assert main(["train", "--out", "run", "-q"]) == 0
    assert set(written) == set(os.listdir(tmp_path / "run"))


def test_run_dir_leaves_no_staging_behind_on_success(tmp_path):
    t0 = time.time()
    with RunDir(str(tmp_path / "x"), "train") as rd:
        rd.write("a.txt", "1")
        rd.commit()
    assert os.listdir(tmp_path) == ["x"]
    assert time.time() - t0 < 5
