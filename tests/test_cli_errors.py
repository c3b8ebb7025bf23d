"""Every failure is one line naming the problem (and the right option), exit 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from losslab.cli import main


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
    a, b = rng.normal(size=(2, 40))
    return _csv(tmp_path / "reg.csv", ["a", "b", "y"], zip(a, b, 1 + a - b))


def _one_line(capsys, argv, expected, tmp_path):
    before = sorted(os.listdir(tmp_path))
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("losslab: error: ")
    for e in expected if isinstance(expected, tuple) else (expected,):
        assert e in lines[0], lines[0]
    assert captured.out == ""
    assert sorted(os.listdir(tmp_path)) == before
    return lines[0]


# --- loss option values: at get() time, before any data is read ---------------------------------
# These rely on losslab.get validating option values (issue 9); the data file named does not
# exist, so a message about the loss proves the loss was checked first.

def _get_validates_values() -> bool:
    import losslab

    try:
        losslab.get("huber", delta="abc")
    except (ValueError, TypeError):
        return True
    return False


# Until losslab.get checks option values (issue 9) these cannot pass; once it does, they must.
needs_get_validation = pytest.mark.xfail(
    not _get_validates_values(), strict=True,
    reason="losslab.get does not yet validate option values (issue 9)")

BAD_LOSS_OPTIONS = [
    ("huber:delta=abc", "delta"),
    ("focal:gamma=-1", "gamma"),
    ("tweedie:power=5", "power"),
]


@needs_get_validation
@pytest.mark.parametrize("command", ["train", "compare", "lr-find"])
@pytest.mark.parametrize("spec,option", BAD_LOSS_OPTIONS)
def test_bad_loss_option_values_before_data(command, spec, option, capsys, tmp_path):
    flag = "--losses" if command == "compare" else "--loss"
    line = _one_line(capsys, [command, flag, spec, "--data", "missing.csv"], option, tmp_path)
    assert "not found" not in line


@needs_get_validation
def test_string_is_not_a_boolean_loss_option(capsys, tmp_path):
    _one_line(capsys, ["train", "--loss", "kl_div:log_target=no", "--data", "missing.csv"],
              "log_target", tmp_path)


def test_only_true_and_false_are_booleans_in_option_syntax():
    from losslab.cli.config import parse_value

    assert parse_value("true") is True and parse_value("False") is False
    for text in ("no", "yes", "on", "off"):
        assert parse_value(text) == text


# --- the command's own settings: typed, finite, blamed on the right flag --------------------------

@pytest.mark.parametrize("argv,expected", [
    (["--lr", "inf"], ("--lr", "finite")),
    (["--lr", "nan"], ("--lr", "finite")),
    (["--lr", "-1"], "--lr must be > 0"),
    (["--dropout", "nan"], ("--dropout", "finite")),
    (["--dropout", "1.5"], "--dropout must be below 1"),
    (["--val-split", "nan"], ("--val-split", "finite")),
    (["--clip-norm", "inf"], ("--clip-norm", "finite")),
    (["--epochs", "2.5"], "--epochs must be an integer"),
    (["--l2", "abc"], "--l2 must be a number"),
])
def test_bad_numbers_name_their_own_flag(argv, expected, capsys, tmp_path):
    line = _one_line(capsys, ["train", "--dataset", "article_line", *argv], expected, tmp_path)
    for other in ("--clip-norm", "--optimizer", "--activation"):
        if other not in argv:
            assert other not in line


def test_target_with_dataset_is_refused(capsys, tmp_path):
    _one_line(capsys, ["train", "--dataset", "diabetes", "--target", "bmi"],
              ("--target", "--data files only"), tmp_path)


def test_features_with_dataset_is_refused(capsys, tmp_path):
    _one_line(capsys, ["compare", "--dataset", "diabetes", "--features", "bmi"],
              "--features", tmp_path)


@pytest.mark.parametrize("toml,expected", [
    ('overwrite = "no"\n', ("'overwrite'", "true or false", "the string 'no'")),
    ('quiet = "no"\n', ("'quiet'", "the string 'no'")),
    ('plots = "false"\n', ("'plots'", "the string 'false'")),
    ("epochs = 2.5\n", ("'epochs'", "integer")),
    ('lr = "0.1"\n', ("'lr'", "number")),
    ("lr = nan\n", ("'lr'", "finite")),
    ("epoch = 3\n", "Did you mean 'epochs'"),
    ('losses = "mse,l1"\n', ("setting of compare", "[compare]")),
    ("[compare]\nfoldz = 3\n", ("'foldz'", "[compare]")),
    ("[train\n", "not valid TOML"),
])
def test_config_values_are_typed(toml, expected, capsys, tmp_path):
    (tmp_path / "c.toml").write_text(toml)
    _one_line(capsys, ["train", "--config", "c.toml"], expected, tmp_path)


def test_config_booleans_work_when_typed(capsys, tmp_path):
    (tmp_path / "c.toml").write_text('dataset = "article_line"\nepochs = 2\nplots = false\n'
                                     'quiet = true\nout = "run"\n')
    assert main(["train", "--config", "c.toml"]) == 0
    assert capsys.readouterr().out == ""
    assert not any(f.endswith(".png") for f in os.listdir(tmp_path / "run"))


def test_config_overwrite_no_does_not_overwrite(capsys, tmp_path):
    """overwrite = "no" used to turn overwriting on."""
    assert main(["train", "--out", "run", "-q", "--no-plots"]) == 0
    (tmp_path / "c.toml").write_text('out = "run"\noverwrite = "no"\n')
    assert main(["train", "--config", "c.toml"]) == 2
    assert "the string 'no'" in capsys.readouterr().err


# --- input that cannot be used ------------------------------------------------------------------

def test_early_stopping_monitor_must_exist_for_the_task(capsys, tmp_path, reg_csv):
    _one_line(capsys, ["train", "--data", reg_csv, "--early-stopping", "monitor=val_accuracy"],
              ("val_accuracy", "val_loss", "val_r2"), tmp_path)
    _one_line(capsys, ["train", "--data", reg_csv, "--val-split", "0", "--early-stopping",
                       "patience=3"], ("val_loss", "--val-split"), tmp_path)


def test_early_stopping_option_types(capsys, tmp_path, reg_csv):
    _one_line(capsys, ["train", "--data", reg_csv, "--early-stopping", "patience=abc"],
              ("patience", "integer"), tmp_path)
    _one_line(capsys, ["train", "--data", reg_csv, "--early-stopping",
                       "restore_best_weights=no"], ("restore_best_weights", "true or false"),
              tmp_path)


def test_features_that_overflow_when_standardised(capsys, tmp_path):
    rows = [[1e307 * (i % 7 + 1), i, i * 2.0] for i in range(40)]
    path = _csv(tmp_path / "big.csv", ["a", "b", "y"], rows)
    _one_line(capsys, ["train", "--data", path], ("'a'", "overflows", "rescale"), tmp_path)


def test_features_that_underflow_when_standardised(capsys, tmp_path):
    rows = [[5e-324 * (i % 3), i, i * 2.0] for i in range(40)]
    path = _csv(tmp_path / "tiny.csv", ["a", "b", "y"], rows)
    _one_line(capsys, ["train", "--data", path], ("'a'", "underflow"), tmp_path)


def test_features_beyond_float32_without_standardisation(capsys, tmp_path):
    rows = [[1e39 * (i % 3 + 1), i, i * 2.0] for i in range(40)]
    path = _csv(tmp_path / "f.csv", ["a", "b", "y"], rows)
    _one_line(capsys, ["train", "--data", path, "--no-standardize"], ("'a'", "float32"),
              tmp_path)


def test_model_too_big_for_memory_is_refused_before_allocating(capsys, tmp_path):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _one_line(capsys, ["train", "--dataset", "diabetes", "--model", "mlp:100000000"],
              ("--model", "GB", "available"), tmp_path)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 500_000


def test_endless_input_is_refused(capsys, tmp_path):
    _one_line(capsys, ["train", "--data", "/dev/zero"], ("/dev/zero", "device"), tmp_path)


def test_endless_pipe_is_refused(tmp_path):
    code = ("import sys; from losslab.cli import dataio; dataio.available_memory = lambda: 12 "
            "* 4096; from losslab.cli import main; sys.exit(main(['train', '--data', "
            "'/dev/stdin', '--out', 'x']))")
    proc = subprocess.run([sys.executable, "-c", code], input=b"a,b\n" + b"1,2\n" * 100_000,
                          capture_output=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "more than" in err and "Traceback" not in err


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated", b"\x00" * 100,
                                     b"\x93NUMPY garbage", None])
def test_corrupt_model_files_in_predict(content, capsys, tmp_path, reg_csv):
    if content is None:  # a real model cut in half
        assert main(["train", "--data", reg_csv, "--out", "m", "-q", "--no-plots",
                     "--epochs", "2"]) == 0
        raw = (tmp_path / "m" / "model.npz").read_bytes()
        (tmp_path / "bad.npz").write_bytes(raw[: len(raw) // 2])
    else:
        (tmp_path / "bad.npz").write_bytes(content)
    line = _one_line(capsys, ["predict", "--model", "bad.npz", "--data", reg_csv],
                     "not a readable losslab file", tmp_path)
    assert "pickle" not in line


def test_model_with_object_array_is_refused_without_pickle(capsys, tmp_path, reg_csv):
    np.savez(tmp_path / "obj.npz", __meta__=np.array([{"a": 1}], dtype=object))
    line = _one_line(capsys, ["predict", "--model", "obj.npz", "--data", reg_csv],
                     "not a readable losslab file", tmp_path)
    assert "pickle" not in line


def test_no_traceback_in_a_subprocess(tmp_path):
    for argv in (["train", "--lr", "nan", "--dataset", "article_line"],
                 ["train", "--data", "/dev/zero"],
                 ["predict", "--model", "nowhere", "--data", "x.csv"]):
        out = subprocess.run([sys.executable, "-m", "losslab", *argv], capture_output=True,
                             text=True, cwd=tmp_path)
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
