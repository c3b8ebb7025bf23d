"""compare across folds and repeats with a paired test; lr-find's rule and plot."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from losslab.cli import main


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def run_json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_t_distribution_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    from losslab.cli.stats import t_sf

    for t in (-3.0, -0.4, 0.0, 0.7, 2.2, 9.0):
        for df in (1, 2, 4, 9, 29):
            expected = stats.t.sf(t, df)
        assert t_sf(t, df) == pytest.approx(expected, rel=1e-10, abs=1e-14)


def test_corrected_paired_t_and_holm():
    from losslab.cli.stats import corrected_paired_t, holm

    d = [0.1, 0.12, 0.08, 0.11, 0.09]
    r = corrected_paired_t(d, n_train=80, n_test=20)
    sd = np.std(d, ddof=1)
    assert r.t == pytest.approx(np.mean(d) / math.sqrt((1 / 5 + 20 / 80) * sd ** 2))
    assert r.n == 5 and 0 < r.p < 0.01
    # The correction makes it more cautious than the plain paired t-test.
    plain = np.mean(d) / (sd / math.sqrt(5))
    assert abs(r.t) < plain
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_compare_folds_mean_spread_and_test(capsys, tmp_path):
    res = run_json(capsys, ["compare", "--folds", "4", "--repeats", "2", "--epochs", "40",
                            "--out", "cv"])
    assert res["splits"] == 8
    results, tests = res["results"], res["tests"]
    assert set(results) == {"mse", "l1", "huber", "log_cosh"}
    for m in results.values():
        assert {"rmse", "mae", "r2"} <= set(m) and m["spread"]["rmse"] > 0
    m = json.loads((tmp_path / "cv" / "metrics.json").read_text())
    assert all(len(v) == 8 for v in m["per_split"].values())
    for label, v in m["per_split"].items():
        assert results[label]["rmse"] == pytest.approx(np.mean([s["rmse"] for s in v]))
    # Each non-best loss is tested against the best on RMSE; the sentence says which differ.
    assert len(tests) == 3 and {t["metric"] for t in tests} == {"rmse"}
    best = tests[0]["against"]
    assert results[best]["rmse"] == min(r["rmse"] for r in results.values())
    assert res["statement"].startswith(f"Best mean RMSE: {best}.")
    for t in tests:
        assert (t["loss"] in res["statement"])
        assert t["exceeds_noise"] == (t["p_holm"] < 0.05)
    files = set(os.listdir(tmp_path / "cv"))
    assert {"compare.png", "compare_splits.png", "report.html"} <= files
    html = (tmp_path / "cv" / "report.html").read_text()
    assert "±" in html and "Paired tests" in html and "exceeds the noise" in html


def test_compare_classification_folds_are_stratified(capsys):
    res = run_json(capsys, ["compare", "--dataset", "iris", "--losses",
                            "cross_entropy,multi_margin", "--folds", "3", "--epochs", "5",
                            "--out", "ci", "--no-plots"])
    assert res["splits"] == 3 and res["tests"][0]["metric"] == "accuracy"
    from losslab.cli import pipeline
    from losslab.cli.config import build

    class Args:
        command, config, dataset = "compare", None, "iris"

    cfg = build(Args(), [])
    data = pipeline.load_data(cfg, [], "iris")
    for train, val in pipeline.splits(data, cfg, folds=3):
        counts = np.bincount(data.y[val])
        assert counts.max() - counts.min() <= 1         # each class's share kept
        assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(data.y)


def test_folds_refuse_val_split(capsys):
    assert main(["compare", "--folds", "3", "--val-split", "0.3"]) == 2
    assert "--folds" in capsys.readouterr().err


def test_one_split_says_it_may_be_noise(capsys):
    assert main(["compare", "--epochs", "5", "--out", "one", "--no-plots"]) == 0
    html = open("one/report.html").read()
    assert "One split: differences may be noise" in html


# --- lr-find ------------------------------------------------------------------------------------

def test_lr_find_suggestion_before_divergence_and_plot_range(capsys, tmp_path):
    res = run_json(capsys, ["lr-find", "--optimizer", "sgd", "--steps", "100", "--lr-max",
                            "1e3", "--out", "lf"])
    rows = np.genfromtxt(tmp_path / "lf" / "lr_find.csv", delimiter=",", names=True)
    i_min = int(np.argmin(rows["smoothed_loss"]))
    # Not where the raw loss is already rising: at or before the smoothed minimum.
    assert res["suggested_lr"] <= rows["lr"][i_min]
    k = int(np.argmin(np.abs(rows["lr"] - res["suggested_lr"])))
    assert rows["loss"][k] < rows["loss"][0]
    from losslab.cli.plots import lr_find_ylim

    lo, hi = lr_find_ylim(rows["loss"], rows["smoothed_loss"])
    shown = rows["loss"][: i_min + 1]
    assert lo <= shown.min() and hi >= shown.max()   # the raw curve is not cut off


def test_lr_find_edge_suggestion_is_flagged(capsys):
    """A loss still falling at --lr-max: the best rate may lie beyond the range."""
    argv = ["lr-find", "--optimizer", "sgd", "--lr-min", "1e-4", "--lr-max", "1e-2", "--steps",
            "60", "--no-plots"]
    res = run_json(capsys, argv + ["--out", "edge"])
    assert res["at_edge"]
    assert main(argv + ["--out", "edge2"]) == 0
    assert "may lie beyond" in capsys.readouterr().out


def test_lr_find_uses_the_library_range_test(capsys, monkeypatch):
    """The command runs losslab.train.lr_find (no loop of its own) and reports its result."""
    import losslab.train
    from losslab.cli import lrfind

    calls = []
    real = losslab.train.lr_find

    def spy(*a, **k):
        calls.append(k)
        return real(*a, **k)

    monkeypatch.setattr(losslab.train, "lr_find", spy)
    res = run_json(capsys, ["lr-find", "--steps", "50", "--lr-min", "1e-5", "--out", "lib",
                            "--no-plots"])
    assert calls and calls[0]["num_steps"] == 50 and calls[0]["start_lr"] == 1e-5
    assert res["rule"] == losslab.train.lr_finder.RULE
    assert not hasattr(lrfind, "range_test") and not hasattr(lrfind, "valley")


def test_lr_find_sweep_reports_the_epochs_used(capsys):
    res = run_json(capsys, ["lr-find", "--sweep", "--sweep-points", "3", "--sweep-epochs", "2",
                            "--out", "sw", "--no-plots"])
    assert res["epochs_per_run"] == 2
    s = json.loads(open("sw/metrics.json").read())["settings"]
    assert s["epochs"] == 2 and "swept" in s["lr"]
