"""report.html: self-contained, escaped, and (in headless Chromium) showing the plots."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from losslab.cli import main
from losslab.cli import report as reports

EVIL = '<script>alert("x")</script>'


def test_render_escapes_every_user_string(tmp_path):
    png = tmp_path / "p.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    page = reports.render_report(
        title=f"t {EVIL}", command=f"losslab train --target '{EVIL}'",
        settings={EVIL: EVIL, "lr": 0.01}, metrics={EVIL: 1.5},
        tables=[reports.Table(EVIL, [EVIL], [[EVIL]], notes=[EVIL])],
        plots={EVIL: str(png)}, notes=[EVIL],
    )
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "data:image/png;base64," in page


def test_report_from_csv_with_malicious_column_names(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    with open("evil.csv", "w") as fh:
        fh.write(f'"{EVIL.replace(chr(34), chr(34) * 2)}",<img src=x onerror=alert(1)>\n')
        for v in x:
            fh.write(f"{v},{2 * v + 1}\n")
    assert main(["train", "--data", "evil.csv", "--epochs", "3", "--out", "run", "-q"]) == 0
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "http://" not in page and "https://" not in page


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def _screenshot(browser: str, page: str, png: str, profile: str) -> np.ndarray:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
           f"--screenshot={png}", "--window-size=1200,2000", "file://" + page]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert os.path.exists(png), f"chromium wrote no screenshot: {proc.stderr[-2000:]}"
    from matplotlib.image import imread

    img = imread(png)
    return img[..., :3] if img.dtype != np.uint8 else img[..., :3] / 255.0


@pytest.mark.skipif(_chromium() is None,
                    reason="headless Chromium not installed (apt-get install chromium)")
def test_report_renders_plots_in_chromium(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--out", "with", "-q"]) == 0
    assert main(["train", "--out", "without", "--no-plots", "-q"]) == 0
    browser = _chromium()
    shots = {}
    for name in ("with", "without"):
        shots[name] = _screenshot(browser, str(tmp_path / name / "report.html"),
                                  str(tmp_path / f"{name}.png"), str(tmp_path / f"prof-{name}"))
    img = shots["with"]
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    non_white = np.any(img < 0.9, axis=2)
    base = np.any(shots["without"] < 0.9, axis=2)
    assert non_white.mean() > 0.01, "screenshot is (nearly) blank"
    # The plots add a lot of ink compared with the same page without them...
    assert non_white.sum() > base.sum() + 20_000
    # ...drawn in matplotlib's line colours: C0 (#1f77b4, loss, gradient norm, fitted line), C1
    # (#ff7f0e, the bias's gradient norm) and C2 (#2ca02c, the learning rate),
    for rgb, least in (((0x1F, 0x77, 0xB4), 200), ((0xFF, 0x7F, 0x0E), 100),
                       ((0x2C, 0xA0, 0x2C), 200)):
        close = np.all(np.abs(img - np.array(rgb) / 255.0) < 0.08, axis=2)
        assert close.sum() > least, f"no plot pixels of colour {rgb}"
    # ...in both columns of the plot grid (four plots, two per row).
    blue = np.all(np.abs(img - np.array((0x1F, 0x77, 0xB4)) / 255.0) < 0.08, axis=2)
    half = img.shape[1] // 2
    assert blue[:, :half].sum() > 100 and blue[:, half:].sum() > 100
    assert not np.any(np.all(np.abs(shots["without"] - np.array((0x1F, 0x77, 0xB4)) / 255.0)
                             < 0.08, axis=2))


def test_plots_draw_in_process_and_atomically(tmp_path):
    from losslab.cli import plots

    h = {"loss": [3.0, 2.0, 1.0], "val_loss": [3.5, 2.5, 1.5], "lr": [0.1, 0.05, 0.025]}
    out = [plots.plot_loss_curves(h, str(tmp_path / "a.png")),
           plots.plot_lr(h, str(tmp_path / "b.png"))]
    assert out == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    for f in out:
        assert open(f, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(OSError):
        plots.plot_lr(h, str(tmp_path / "missing-dir" / "c.png"))
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]  # no temporary file left


def test_no_plotting_worker_process():
    """The forked plotting worker is gone: nothing can outlive the command."""
    from losslab.cli import plots

    assert not hasattr(plots, "Painter")
    src = open(plots.__file__).read()
    assert "multiprocessing" not in src and "fork" not in src.replace("forked", "")


@pytest.mark.parametrize("name", ["compare", "fit", "loss_curves", "grad_norms", "lr_find",
                                  "loss_shape"])
def test_legends_do_not_cover_the_curves(tmp_path, name, monkeypatch):
    """Every legend sits outside its axes, so it cannot hide a curve."""
    from matplotlib.figure import Figure

    from losslab.cli import plots

    figures = []
    real = plots._save

    def keep(fig, path, right=0.97):
        figures.append(fig)
        return real(fig, path, right)

    monkeypatch.setattr(plots, "_save", keep)
    x = np.linspace(0, 1, 50)
    h = {"loss": list(1 / (1 + x)), "val_loss": list(1.1 / (1 + x)),
         "grad_norm/0.weight": list(x + 1), "grad_norm/0.bias": list(x + 2)}
    path = str(tmp_path / "p.png")
    if name == "compare":
        plots.plot_compare({"mse": {"val_r2": list(x)}, "huber:delta=0.5": {"val_r2": list(x)}},
                           "val_r2", path)
    elif name == "fit":
        plots.plot_fit(x, 2 * x, {"a long label for a line": (x, 2 * x)}, path)
    elif name == "loss_curves":
        plots.plot_loss_curves(h, path)
    elif name == "grad_norms":
        plots.plot_grad_norms(h, path)
    elif name == "lr_find":
        lrs = np.logspace(-6, 1, 50)
        plots.plot_lr_find(lrs, 1 / (1 + x), 1 / (1 + x), 1e-3, path)
    else:
        plots.plot_loss_shape("huber", x, [("target 0", x, x), ("target 1", x, x)], path)
    fig = figures[-1]
    assert isinstance(fig, Figure)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    legends = [(ax, ax.get_legend()) for ax in fig.axes if ax.get_legend() is not None]
    assert legends
    for ax in fig.axes:
        box = ax.get_window_extent(renderer)
        for _, leg in legends:
            lb = leg.get_window_extent(renderer)
            overlap = min(box.x1, lb.x1) - max(box.x0, lb.x0)
            assert overlap <= 1.0, f"legend overlaps the axes by {overlap:.1f} px"
        assert box.x1 <= fig.bbox.x1  # and the axes themselves stay in the figure
    for _, leg in legends:
        assert leg.get_window_extent(renderer).x1 <= fig.bbox.x1 + 1.0  # legend not cut off
