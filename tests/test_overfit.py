"""``losslab overfit``: on the default data the baseline overfits and every cure closes part of the
gap (seeds 0, 1 and 2); the learning and validation curves; vanishing gradients in a deep sigmoid
network and not in ReLU ones; the report in headless Chromium; one-line errors.

Measured on seeds 0-7 (the default data: 70 digits, mlp:128,128, 100 epochs): the baseline's gap
(validation minus training cross-entropy) is 1.0-3.4 with training loss below 1e-4; on seeds 0-2
every cure ends at most 0.45 of the baseline's gap (dropout the weakest, more data the strongest at
0.04-0.08). Beyond them not every cure holds on every seed (seed 5: dropout 1.08x the baseline's
gap; seed 3: more data 0.89x), which is why the claim is made for the three seeds it holds for,
with the margin stated below.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys

import numpy as np
import pytest

from losslab.cli import main, overfit

CURES = ("smaller model", "more data", "l1", "l2", "early stopping", "dropout")
BASELINE_GAP = 1.5        # the baseline's validation loss exceeds its training loss by this much
BASELINE_TRAIN = 1e-3     # ...after memorising its training rows
CURE_RATIO = 0.6          # every cure's gap is at most this fraction of the baseline's


def _run_json(argv: list[str]) -> dict:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv + ["--json"])
    assert code == 0
    return json.loads(buf.getvalue())


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The command with every default: digits, plots, sweeps, a 3-split learning curve."""
    out = tmp_path_factory.mktemp("default") / "run"
    return _run_json(["overfit", "-q", "--out", str(out)]), out


@pytest.fixture(scope="module")
def other_seeds(tmp_path_factory):
    """Seeds 1 and 2 with the default settings; only the learning curve (not what is claimed
    here) is cut to one point on one split to save time."""
    points = overfit.CURVE_POINTS
    overfit.CURVE_POINTS = 1
    try:
        runs = {}
        for seed in (1, 2):
            out = tmp_path_factory.mktemp(f"seed{seed}") / "run"
            runs[seed] = _run_json(["overfit", "--seed", str(seed), "--repeats", "1",
                                    "--no-plots", "--out", str(out)])
    finally:
        overfit.CURVE_POINTS = points
    return runs


def test_baseline_overfits_and_every_cure_closes_the_gap_on_three_seeds(default_run,
                                                                       other_seeds):
    runs = {0: default_run[0], **other_seeds}
    for seed, r in runs.items():
        v = {x["name"]: x for x in r["variants"]}
        assert list(v) == list(overfit.VARIANTS)
        base = v["baseline"]
        assert base["train_loss"] < BASELINE_TRAIN, (seed, base)
        assert base["val_loss"] - base["train_loss"] > BASELINE_GAP, (seed, base)
        assert base["gap"] == pytest.approx(base["val_loss"] - base["train_loss"])
        for name in CURES:
            assert v[name]["gap"] < CURE_RATIO * base["gap"], (seed, name, v[name]["gap"],
                                                                base["gap"])
            assert v[name]["gap_closed"] == pytest.approx(1 - v[name]["gap"] / base["gap"])
        # More data also gives the best held-out accuracy, far above the baseline's.
        assert v["more data"]["val_accuracy"] > base["val_accuracy"] + 0.08
        assert v["more data"]["training_rows"] > 10 * base["training_rows"]
        assert "the cure that closed it most" in r["statement"].lower()
        assert "did not narrow" not in r["statement"].lower()


def test_json_names_every_variant_with_its_figures(default_run):
    r, out = default_run
    assert [v["name"] for v in r["variants"]] == ["baseline", "smaller model", "more data", "l1",
                                                 "l2", "early stopping", "dropout"]
    for v in r["variants"]:
        assert "overfit.png" in v["figures"]
        for f in v["figures"] + [v["history"]]:
            assert (out / f).is_file(), f
    by = {v["name"]: v for v in r["variants"]}
    assert "validation_curves.png" in by["l1"]["figures"] and "validation_curves.png" in \
        by["l2"]["figures"]
    assert "learning_curve.png" in by["more data"]["figures"]
    assert set(r["figures"].values()) == {"overfit.png", "learning_curve.png",
                                          "validation_curves.png"}
    # Strengths chosen by the sweep are stated and used.
    assert r["strengths"]["l1"] in overfit.L1_RANGE and r["strengths"]["l2"] in overfit.L2_RANGE
    assert f"{r['strengths']['l2']:g}" in by["l2"]["changed"] and "sweep" in by["l2"]["changed"]
    # Early stopping restored the best epoch: its validation loss is the lowest it recorded.
    es = by["early stopping"]
    hist = np.genfromtxt(out / es["history"], delimiter=",", names=True)
    assert es["best_epoch"] == int(np.argmin(hist["val_loss"])) + 1
    assert es["val_loss"] == pytest.approx(float(np.min(hist["val_loss"])), rel=1e-5)
    assert es["epochs_run"] < 100
    files = set(os.listdir(out))
    manifest = json.loads((out / "losslab-run.json").read_text())
    assert set(manifest["files"]) | {"losslab-run.json"} == files
    assert {"report.html", "metrics.json", "overfit.png"} <= files


def test_curves_in_the_command(default_run):
    r, out = default_run
    m = json.loads((out / "metrics.json").read_text())
    lc = m["learning_curve"]
    sizes = lc["sizes"]
    assert sizes[0] == r["rows"]["baseline"] and sizes[-1] == r["rows"]["more_data"]
    assert lc["splits"] == 3 and np.array(lc["val"]).shape == (len(sizes), 3)
    held = np.mean(lc["val"], axis=1)
    assert held[-1] < 0.3 * held[0]                  # more rows, far lower held-out loss
    for name in ("l1", "l2"):
        s = m["sweeps"][name]
        means = np.mean(s["val"], axis=1)
        assert s["chosen"] == s["values"][int(np.argmin(means))]
        assert np.array(s["train"]).shape == (len(s["values"]), overfit.SWEEP_FOLDS)
        train = np.mean(s["train"], axis=1)
        assert train[-1] > 100 * train[0]             # a strong penalty cannot memorise
    page = (out / "report.html").read_text()
    for caption in ("Generalisation gap", "Penalty strengths", "Learning curve",
                    "the cure that closed it most"):
        assert caption.lower() in page.lower()
    assert page.count("data:image/png;base64,") == 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradients_vanish_in_the_deep_sigmoid_network_not_in_relu(seed, tmp_path):
    r = _run_json(["overfit", "--show", "gradients", "--epochs", "3", "--seed", str(seed),
                   "--no-plots", "-q", "--out", str(tmp_path / "g")])
    nets = {n["name"]: n for n in r["networks"]}
    assert list(nets) == [name for name, _, _ in overfit.NETWORKS]
    sig = nets["sigmoid (Glorot init)"]
    first, last = sig["grad_norm_first_layer"][0], sig["grad_norm_last_layer"][0]
    assert first < 1e-4 * last and sig["orders_of_magnitude"] > 4      # measured: 5.8-5.9
    for name in ("ReLU (Glorot init)", "ReLU (He init)"):
        ratio = nets[name]["ratio_first_epoch"]
        assert 0.1 < ratio < 10, (name, ratio)                         # measured: 0.4-0.8
    assert "vanishes" in r["statement"]


def test_gradients_report_plots(tmp_path):
    r = _run_json(["overfit", "--show", "gradients", "--epochs", "4", "--depth", "6",
                   "--width", "16", "-q", "--out", str(tmp_path / "g")])
    assert set(r["figures"].values()) == {"gradients.png", "gradient_profile.png",
                                          "gradient_loss.png"}
    assert len(r["networks"][0]["grad_norm_first_layer"]) == 4
    m = json.loads((tmp_path / "g" / "metrics.json").read_text())
    assert len(m["per_layer"]["ReLU (He init)"]) == 7                  # 6 hidden + output
    assert "first layer against last" in (tmp_path / "g" / "report.html").read_text()


def _csv(path, n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = X[:, 0] - 2 * X[:, 1] + np.sin(3 * X[:, 2]) + rng.normal(0, 0.5, n)
    with open(path, "w") as fh:
        fh.write("a,b,c,d,e,f,price\n")
        for row, t in zip(X, y):
            fh.write(",".join(f"{v:.6f}" for v in row) + f",{t:.6f}\n")
    return str(path)


def test_runs_on_a_users_csv(tmp_path):
    data = _csv(tmp_path / "house.csv")
    r = _run_json(["overfit", "--data", data, "--train-fraction", "0.1", "--epochs", "5",
                   "--repeats", "2", "--model", "mlp:64,64", "--l1", "1e-4",
                   "--smaller-model", "mlp:8", "--loss", "huber", "--no-plots", "-q",
                   "--out", str(tmp_path / "run")])
    assert r["task"] == "regression" and r["loss"] == "huber"
    v = {x["name"]: x for x in r["variants"]}
    assert v["baseline"]["training_rows"] == 32 and v["more data"]["training_rows"] == 320
    assert v["smaller model"]["changed"] == "--model mlp:8"
    assert "given" in v["l1"]["changed"] and "sweep" in v["l2"]["changed"]
    assert r["strengths"]["l1"] == 1e-4
    assert all(np.isfinite(x["val_rmse"]) for x in r["variants"])
    assert open(data).read().startswith("a,b,c,d,e,f,price\n")
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(m["sweeps"]) == {"l2"}


def test_help_shows_the_commands_own_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["overfit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default mlp:128,128)" in text and "(default 256)" in text
    assert "--show {cures,gradients}" in text and "--train-fraction" in text
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "(default linear)" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("argv, flag, words", [
    (["--val-split", "0"], "--val-split", "set --val-split > 0"),
    (["--depth", "4"], "--depth", "applies to --show gradients"),
    (["--show", "gradients", "--l2", "0.01"], "--l2", "applies to --show cures"),
    (["--show", "gradients", "--activation", "tanh"], "--activation", "drop --activation"),
    (["--l2", "0"], "--l2", "would make its cure the baseline"),
    (["--dropout", "0"], "--dropout", "would make its cure the baseline"),
    (["--train-fraction", "1"], "--train-fraction", "below 1"),
    (["--dataset", "diabetes", "--train-fraction", "0.02"], "--train-fraction",
     "needs at least 10"),
    (["--smaller-model", "mlp:512"], "--smaller-model", "not smaller"),
    (["--smaller-model", "cnn:3"], "--smaller-model", "mlp:32"),
    (["--model", "linear"], "--smaller-model", "no hidden layer"),
    (["--show", "both"], "--show", "invalid choice"),
])
def test_mistakes_are_one_line_exit_2(argv, flag, words, capsys, tmp_path):
    out = tmp_path / "never"
    assert main(["overfit", *argv, "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert not out.exists()


def test_config_file_overfit_table(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[overfit]\nshow = "gradients"\ndepth = 3\nwidth = 8\nepochs = 2\n'
                   'plots = false\n')
    assert main(["overfit", "--config", str(cfg), "-q", "--out", str(tmp_path / "r")]) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["show"] == "gradients" and m["depth"] == 3
    cfg.write_text('[overfit]\ntrain_fraction = "0.1"\n')
    assert main(["overfit", "--config", str(cfg), "--out", str(tmp_path / "s")]) == 2
    assert "must be a number" in capsys.readouterr().err
    cfg.write_text('[train]\ndepth = 3\n')
    assert main(["overfit", "--config", str(cfg), "--out", str(tmp_path / "s")]) == 2
    assert "setting of overfit" in capsys.readouterr().err


def test_report_renders_in_chromium(default_run, tmp_path):
    from test_report import _chromium, _screenshot

    browser = _chromium()
    if browser is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    _, out = default_run
    img = _screenshot(browser, str(out / "report.html"), str(tmp_path / "shot.png"),
                      str(tmp_path / "profile"))
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    assert np.any(img < 0.9, axis=2).mean() > 0.02, "screenshot is (nearly) blank"
    half = img.shape[1] // 2
    for rgb in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0xD6, 0x27, 0x28)):  # C0, C1, C3
        close = np.all(np.abs(img - np.array(rgb) / 255.0) < 0.08, axis=2)
        assert close.sum() > 300, f"no plot pixels of colour {rgb}"
    # The small multiples span the page: training curves in both halves of the first rows.
    blue = np.all(np.abs(img - np.array((0x1F, 0x77, 0xB4)) / 255.0) < 0.08, axis=2)
    assert blue[:, :half].sum() > 500 and blue[:, half:].sum() > 500


def test_blas_threads_limits_and_restores(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from losslab.cli.threads import blas_threads

    def counts():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]

    before = counts()
    with blas_threads(1) as limited:
        assert limited and all(n == 1 for n in counts())
    assert counts() == before
    with blas_threads(None) as limited:
        assert not limited and counts() == before
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)     # not installed: no change
    with blas_threads(1) as limited:
        assert not limited


@pytest.mark.parametrize("name", ["variants", "learning", "validation", "profile", "layers"])
def test_legends_do_not_cover_the_curves(tmp_path, name, monkeypatch):
    """As for the other commands' plots: every legend sits outside the axes it could hide."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from losslab.cli import plots

    figures = []
    for saver in ("_save", "_save_adjusted"):
        real = getattr(plots, saver)

        def keep(fig, path, *a, _real=real, **k):
            figures.append(fig)
            return _real(fig, path, *a, **k)

        monkeypatch.setattr(plots, saver, keep)
    monkeypatch.setattr(plots, "write_atomic", lambda path, content: figures.append(None))
    x = np.linspace(0, 1, 30)
    path = str(tmp_path / "p.png")
    curves = {"train": list(1e-3 + x), "val": list(2 - x), "gap": 1.0, "best_epoch": None}
    splits = np.array([[1.0, 1.2, 0.9], [0.5, 0.6, 0.4], [0.3, 0.2, 0.25]])
    if name == "variants":
        plots.plot_variant_curves({v: curves for v in overfit.VARIANTS}, path)
    elif name == "learning":
        plots.plot_learning_curve([70, 300, 1400], splits / 100, splits, path,
                                  marks={"baseline (70 rows)": 70, "more data": 1400})
    elif name == "validation":
        panel = {"values": [1e-4, 1e-3, 1e-2], "train": splits / 100, "val": splits,
                 "chosen": 1e-3}
        plots.plot_validation_curves({"l1": panel, "l2": panel}, path)
    elif name == "profile":
        plots.plot_gradient_profile({"sigmoid": {"first": [1e-6, 1e-3, 1], "last": [1e-5, 1e-2,
                                                                                   1]}}, path)
    else:
        plots.plot_layer_gradients({"a": {"layer 1": list(x + 1), "layer 2": list(x + 2)},
                                    "b": {"layer 1": list(x), "layer 2": list(x)}}, path)
    fig = next(f for f in figures if f is not None)
    renderer = FigureCanvasAgg(fig).get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    legends += list(fig.legends)
    assert legends or name == "layers"
    for ax in fig.axes:
        box = ax.get_window_extent(renderer)
        assert box.x1 <= fig.bbox.x1 + 1.0 and box.y1 <= fig.bbox.y1 + 1.0
        for leg in legends:
            lb = leg.get_window_extent(renderer)
            overlap_x = min(box.x1, lb.x1) - max(box.x0, lb.x0)
            overlap_y = min(box.y1, lb.y1) - max(box.y0, lb.y0)
            assert overlap_x <= 1.0 or overlap_y <= 1.0, f"legend over the axes ({name})"
    for leg in legends:
        lb = leg.get_window_extent(renderer)
        assert lb.x1 <= fig.bbox.x1 + 1.0 and lb.y1 <= fig.bbox.y1 + 1.0   # not cut off
