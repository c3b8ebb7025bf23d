"""The ``losslab`` command: happy paths in-process and as subprocesses, outputs, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from losslab.cli import main
from losslab.cli.config import parse_spec, split_specs
from losslab.cli.errors import UsageError

ARTICLE = {"theta0": 2.09496, "theta1": 2.97989, "mse": 0.24812}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _csv(path, header, rows):
    with open(path, "w") as fh:
        fh.write(",".join(header) + "\n")
        for r in rows:
            fh.write(",".join(str(v) for v in r) + "\n")
    return str(path)


@pytest.fixture
def reg_csv(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 80))
    y = 1 + 2 * a - b + rng.normal(0, 0.1, 80)
    return _csv(tmp_path / "reg.csv", ["a", "b", "target"], zip(a, b, y))


@pytest.fixture
def cls_csv(tmp_path):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 90))
    lab = np.where(a + b > 0, "dog", "cat")
    return _csv(tmp_path / "cls.csv", ["a", "b", "label"], zip(a, b, lab))


def run_json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


# --- option syntax --------------------------------------------------------------------------

def test_parse_spec_forms():
    s = parse_spec("huber:delta=0.5", "--loss", "x")
    assert (s.name, s.args, s.options) == ("huber", (), {"delta": 0.5})
    assert parse_spec("mlp:64,64", "--model", "x").args == (64, 64)
    assert parse_spec("adam:betas=0.9,0.99", "--o", "x").options == {"betas": (0.9, 0.99)}
    assert parse_spec("sgd:nesterov=true,momentum=0.9", "--o", "x").options == {
        "nesterov": True, "momentum": 0.9}
    assert parse_spec({"name": "huber", "delta": 2}, "--loss", "x").options == {"delta": 2}


@pytest.mark.parametrize("bad", ["", ":x=1", "huber:", "huber:delta=", "huber:=1",
                                 "huber:delta=1,,", "huber:delta=1,delta=2"])
def test_parse_spec_malformed(bad):
    with pytest.raises(UsageError):
        parse_spec(bad, "--loss", "huber:delta=0.5")


def test_split_specs_keeps_option_commas():
    specs = split_specs("mse,huber:delta=0.5,reduction=mean,focal:gamma=2,l1", "--losses", "x")
    assert [s.name for s in specs] == ["mse", "huber", "focal", "l1"]
    assert specs[1].options == {"delta": 0.5, "reduction": "mean"}


# --- help and catalog -----------------------------------------------------------------------

def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("train", "compare", "lr-find", "losses", "gradcheck", "predict"):
        assert cmd in out


def test_help_imports_nothing_heavy():
    code = ("import sys, contextlib, io\nfrom losslab.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try: main(['--help'])\n    except SystemExit: pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'matplotlib', 'torch', 'jax', 'tqdm', 'sklearn', 'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_losses_list_and_show(capsys, tmp_path):
    assert main(["losses"]) == 0
    out = capsys.readouterr().out
    assert "mse" in out and "regression" in out and "mean((input - target)^2)" in out
    assert main(["losses", "huber", "--plot", str(tmp_path / "h.png")]) == 0
    out = capsys.readouterr().out
    assert "Gradient" in out and "delta" in out
    assert (tmp_path / "h.png").stat().st_size > 1000
    rows = run_json(capsys, ["losses"])
    assert {r["name"] for r in rows} >= {"mse", "l1", "huber"}


def test_losses_show_declared_kinds_and_constraints(capsys):
    assert main(["losses", "tweedie"]) == 0
    out = capsys.readouterr().out
    assert "input holds: real; target holds: nonnegative" in out
    assert "power = 1.5: a number in (1, 2)" in out
    assert "Hessian: closed form, never negative" in out
    info = run_json(capsys, ["losses", "focal"])
    assert info["input_kind"] == "logits" and info["target_kind"] == "unit_interval"
    assert info["constraints"]["gamma"] == "a number >= 0"
    assert info["module"] == "FocalLoss"


def test_gradcheck(capsys):
    res = run_json(capsys, ["gradcheck", "huber:delta=0.5", "reduction=sum", "--trials", "2"])
    assert res["ok"] and res["max_relative_error"] < 1e-6
    assert res["options"] == {"delta": 0.5, "reduction": "sum"}
    assert main(["gradcheck", "mse"]) == 0
    assert "largest relative error" in capsys.readouterr().out


# --- train ----------------------------------------------------------------------------------

def test_train_article_default(capsys, tmp_path):
    assert main(["train"]) == 0
    out = capsys.readouterr().out
    for v in ("2.09496", "2.97989", "0.24812"):
        assert v in out
    runs = os.listdir(tmp_path / "losslab-runs")
    assert len(runs) == 1 and runs[0].startswith("train-")
    d = tmp_path / "losslab-runs" / runs[0]
    assert str(d) in out
    files = set(os.listdir(d))
    assert {"metrics.json", "history.csv", "model.npz", "report.html", "loss.png", "lr.png",
            "grad_norms.png", "fit.png"} <= files
    m = json.loads((d / "metrics.json").read_text())
    for k, v in ARTICLE.items():
        assert m[k] == pytest.approx(v, abs=1e-5)
    from losslab.train.checkpoint import load_model

    model = load_model(str(d / "model.npz"))  # loads with allow_pickle=False
    p = model.parameters()
    assert p["0.bias"][0] == pytest.approx(ARTICLE["theta0"], abs=1e-5)
    html = (d / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert len(open(d / "history.csv").readlines()) == 1001


def test_train_article_json_subprocess(tmp_path):
    out = subprocess.run([sys.executable, "-m", "losslab", "train", "--json", "--no-plots",
                          "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    for k, v in ARTICLE.items():
        assert res[k] == pytest.approx(v, abs=1e-5)
    assert res["output_dir"] == str(tmp_path / "run")


def test_train_csv_regression_then_predict(capsys, tmp_path, reg_csv):
    res = run_json(capsys, ["train", "--data", reg_csv, "--target", "target", "--epochs", "30",
                            "--loss", "huber:delta=0.5", "--optimizer", "adam:betas=0.9,0.99",
                            "--schedule", "exponential:gamma=0.95", "--l2", "1e-4", "--lr", "0.1",
                            "--out", "r", "--no-plots"])
    assert res["r2"] > 0.9 and {"rmse", "mae", "loss", "train_loss"} <= set(res)
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["settings"]["schedule"] == "exponential:gamma=0.95"
    assert m["standardizer"]["mean"] and len(m["standardizer"]["scale"]) == 2
    pred = run_json(capsys, ["predict", "--model", "r", "--data", reg_csv])
    assert pred["columns"] == ["predicted_target"] and len(pred["rows"]) == 80
    y = np.loadtxt(reg_csv, delimiter=",", skiprows=1)[:, 2]
    assert np.corrcoef(np.array(pred["rows"])[:, 0], y)[0, 1] > 0.95
    assert main(["predict", "--model", "r", "--data", reg_csv, "--output", "p.csv"]) == 0
    assert (tmp_path / "p.csv").read_text().startswith("line,predicted_target\n2,")


def test_train_classification_labels_mlp_predict(capsys, tmp_path, cls_csv):
    res = run_json(capsys, ["train", "--data", cls_csv, "--target", "label", "--task",
                            "classification", "--model", "mlp:8", "--epochs", "40",
                            "--early-stopping", "patience=5,min_delta=0.0", "--out", "c"])
    assert res["accuracy"] >= 0.8
    assert {"log_loss", "calibration_error"} <= set(res)
    assert main(["predict", "--model", "c", "--data", cls_csv]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "line,predicted_label,p_cat,p_dog"
    assert lines[1].split(",")[1] in ("cat", "dog")


def test_train_dataset_and_config(capsys, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('dataset = "iris"\nmodel = "mlp:16"\nepochs = 15\nbatch-size = 16\n'
                   'out = "from_config"\n[optimizer]\nname = "adam"\nbetas = [0.9, 0.99]\n'
                   '[train]\nlr = 0.02\n')
    res = run_json(capsys, ["train", "--config", str(cfg), "--seed", "3"])
    assert res["accuracy"] > 0.7
    m = json.loads((tmp_path / "from_config" / "metrics.json").read_text())
    assert m["settings"]["lr"] == 0.02 and m["settings"]["seed"] == 3
    assert m["settings"]["batch_size"] == 16


def test_train_bce_two_classes(capsys, cls_csv):
    res = run_json(capsys, ["train", "--data", cls_csv, "--target", "label", "--task",
                            "classification", "--loss", "bce_with_logits", "--epochs", "20",
                            "--out", "b", "--no-plots"])
    assert res["accuracy"] > 0.8


# --- compare and lr-find ---------------------------------------------------------------------

def test_compare_default_shows_robust_losses(capsys, tmp_path):
    res = run_json(capsys, ["compare", "--out", "cmp"])["results"]
    assert list(res) == ["mse", "l1", "huber", "log_cosh"]
    assert abs(res["mse"]["slope"] - 3) > 1.0          # pulled away by the outliers
    for name in ("l1", "huber", "log_cosh"):
        assert abs(res[name]["slope"] - 3) < 0.3, (name, res[name]["slope"])
        assert {"rmse", "mae", "r2"} <= set(res[name])
    files = set(os.listdir(tmp_path / "cmp"))
    assert {"compare.png", "compare_fit.png", "report.html", "metrics.json",
            "model-mse.npz", "history-huber.csv"} <= files
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert "Comparison" in html and "log_cosh" in html


def test_compare_classification(capsys):
    res = run_json(capsys, ["compare", "--dataset", "iris", "--losses",
                            "cross_entropy,multi_margin", "--epochs", "5", "--out", "ci",
                            "--no-plots"])["results"]
    assert set(res) == {"cross_entropy", "multi_margin"}
    for m in res.values():
        assert {"accuracy", "log_loss", "calibration_error"} <= set(m)


def test_lr_find_range_test(capsys, tmp_path):
    res = run_json(capsys, ["lr-find", "--steps", "80", "--out", "lf"])
    assert res["suggested_lr"] is not None and 1e-6 <= res["suggested_lr"] <= 10
    assert "steepest descent" in res["rule"]
    assert {"lr_find.png", "lr_find.csv", "report.html"} <= set(os.listdir(tmp_path / "lf"))


def test_lr_find_divergence_stops(capsys):
    res = run_json(capsys, ["lr-find", "--optimizer", "sgd", "--steps", "100", "--lr-max",
                            "1e4", "--out", "lfd", "--no-plots"])
    assert res["steps_run"] < 100 and ("non-finite" in res["stopped"] or "x its" in res["stopped"])
    assert res["suggested_lr"] < 10


def test_lr_find_sweep(capsys, tmp_path):
    res = run_json(capsys, ["lr-find", "--sweep", "random", "--sweep-points", "3",
                            "--sweep-epochs", "2", "--out", "sw"])
    assert len(res["rates"]) == 3 and res["best_lr"] in res["rates"]
    assert "sweep.png" in os.listdir(tmp_path / "sw")


# --- bad input: one line, exit 2, nothing written ----------------------------------------------

BAD = {
    "missing file": (["train", "--data", "nope.csv"], "not found"),
    "missing target": (["train", "--data", "{reg}", "--target", "targt"], "Did you mean 'target'"),
    "non-numeric target": (["train", "--data", "{txt}", "--target", "y"], "not numeric"),
    "non-numeric feature": (["train", "--data", "{txt}", "--target", "a"], "'color' is not numer"),
    "nan cells": (["train", "--data", "{nan}", "--target", "y"], "lines 3, 4"),
    "unknown loss": (["train", "--data", "{reg}", "--loss", "hubr"], "Did you mean 'huber'"),
    "unknown optimizer": (["train", "--data", "{reg}", "--optimizer", "adm"], "'adam'"),
    "unknown schedule": (["train", "--data", "{reg}", "--schedule", "expo:gamma=0.9"],
                         "'exponential'"),
    "unknown dataset": (["compare", "--dataset", "irs"], "Did you mean 'iris'"),
    "unknown loss in compare": (["compare", "--losses", "mse,logcosh2"], "log_cosh"),
    "malformed option": (["train", "--data", "{reg}", "--loss", "huber:delta"], "KEY=VALUE"),
    "empty option value": (["train", "--data", "{reg}", "--loss", "huber:delta="], "KEY=VALUE"),
    "unknown loss option": (["train", "--data", "{reg}", "--loss", "huber:delt=1"], "'delta'"),
    "cross_entropy on continuous": (["train", "--data", "{reg}", "--loss", "cross_entropy"],
                                    "continuous"),
    "regression loss on classes": (["train", "--dataset", "iris", "--loss", "mse"],
                                   "regression loss"),
    "bad model": (["train", "--data", "{reg}", "--model", "mlp:a"], "mlp:64,64"),
    "bad number": (["train", "--data", "{reg}", "--epochs", "0"], "--epochs"),
    "bad flag": (["train", "--frobnicate"], "unrecognized"),
    "loss needs data": (["train", "--loss", "l1"], "--dataset article_line"),
    "diverging lr": (["train", "--dataset", "article_line", "--optimizer", "sgd", "--lr", "1e30",
                      "--epochs", "3"], "diverged"),
    "config unknown key": (["train", "--config", "{cfg}"], "Did you mean 'epochs'"),
    "gradcheck unknown": (["gradcheck", "msee"], "Did you mean 'mse'"),
    "predict missing model": (["predict", "--model", "nowhere", "--data", "{reg}"], "not found"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_one_line_exit_2(case, capsys, tmp_path, reg_csv):
    files = {
        "reg": reg_csv,
        "txt": _csv(tmp_path / "txt.csv", ["a", "color", "y"],
                    [[1, "red", "x"], [2, "blue", "y"], [3, "red", "z"], [4, "red", "w"]]),
        "nan": _csv(tmp_path / "nan.csv", ["a", "b", "y"],
                    [[1, 2, 3.5], [2, "", 4], [3, 4, "nan"], [4, 5, 6], [5, 6, 7], [6, 7, 8]]),
        "cfg": str(tmp_path / "bad.toml"),
    }
    (tmp_path / "bad.toml").write_text("epoch = 3\n")
    argv, expected = BAD[case]
    argv = [a.format(**files) for a in argv]
    if argv[0] in ("train", "compare", "lr-find"):
        argv += ["--out", str(tmp_path / "out" / "run")]
    before = set(os.listdir(tmp_path))
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("losslab: error: ")
    assert expected in lines[0]
    assert captured.out == ""
    assert set(os.listdir(tmp_path)) == before   # no output dir, no temp dir left


def test_drop_missing(capsys, tmp_path):
    path = _csv(tmp_path / "nan.csv", ["a", "y"],
                [[i, "" if i in (2, 5) else 2 * i + 1] for i in range(12)])
    assert main(["train", "--data", path, "--target", "y", "--drop-missing", "--epochs", "3",
                 "--out", "dm", "--no-plots"]) == 0
    assert "dropped 2 rows" in capsys.readouterr().out


def test_out_exists_refused_then_overwrite(capsys, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("x")
    assert main(["train", "--out", "taken", "--no-plots"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert os.listdir(tmp_path / "taken") == ["keep.txt"]
    # --overwrite never replaces a directory losslab did not write...
    assert main(["train", "--out", "taken", "--no-plots", "--overwrite", "-q"]) == 2
    assert "not written by losslab" in capsys.readouterr().err
    assert os.listdir(tmp_path / "taken") == ["keep.txt"]
    # ...and replaces one it did.
    assert main(["train", "--out", "run", "--no-plots", "-q"]) == 0
    assert main(["train", "--out", "run", "--no-plots", "--overwrite", "-q", "--seed", "1"]) == 0
    assert "metrics.json" in os.listdir(tmp_path / "run")
    assert sorted(os.listdir(tmp_path)) == ["run", "taken"]


def test_bad_input_subprocess_no_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "losslab", "train", "--loss", "hubr",
                          "--dataset", "article_line"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert not (tmp_path / "losslab-runs").exists()


def test_progress_bar_on_stderr(capsys, monkeypatch):
    from losslab.cli import console

    monkeypatch.setattr(console, "PROGRESS_DELAY", 0.0)
    monkeypatch.setattr(console, "PROGRESS_MININTERVAL", 0.0)
    monkeypatch.setattr(console.Console, "show_progress", property(lambda self: True))
    assert main(["train", "--dataset", "article_line", "--epochs", "5", "--out", "pb",
                 "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert "/5 " in err and "epoch/s" in err and "loss=" in err and "val=" in err and "lr=" in err
    assert main(["lr-find", "--steps", "20", "--out", "pb2", "--no-plots"]) == 0
    assert "lr-find" in capsys.readouterr().err


def test_quiet_and_not_tty_print_no_progress(capsys):
    assert main(["train", "--dataset", "article_line", "--epochs", "3", "--out", "q", "-q",
                 "--no-plots"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_lr_find_subprocess(tmp_path):
    out = subprocess.run([sys.executable, "-m", "losslab", "lr-find", "--steps", "40",
                          "--json", "--no-plots", "--out", str(tmp_path / "lf")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["steps_run"] <= 40
