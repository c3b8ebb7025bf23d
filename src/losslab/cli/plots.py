"""PNG plots of a training run, drawn with matplotlib's Agg backend.

matplotlib is imported on first use, not with ``losslab``; the ``Figure`` API is used directly
(not pyplot), which saves most of pyplot's import time and keeps no global figure state. Each
function takes plain data (a history dict of per-epoch lists, arrays) and a path, and writes one
PNG through ``losslab.atomic.write_atomic``. Log scales only when the values span more than a
decade, and without minor tick labels: those two choices keep a plot at about 60 ms. Legends sit
beside the axes, never over the curves.

Plots are drawn in the command's own process. (A forked worker that imported matplotlib during
training used to save about 2% of ``losslab train``; it could outlive a killed parent, so it went.)
matplotlib is the ``cli`` extra: without it, ``unavailable()`` says so in one line and the commands
run without plots.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from losslab.atomic import write_atomic

__all__ = [
    "unavailable", "plot_loss_curves", "plot_lr", "plot_grad_norms", "plot_fit", "plot_compare",
    "plot_compare_fit", "plot_lr_find", "plot_sweep", "plot_loss_shape", "plot_history",
    "plot_variant_curves", "plot_learning_curve", "plot_validation_curves",
    "plot_layer_gradients", "plot_gradient_profile",
]

_DPI = 90


def unavailable() -> str | None:
    """None when plots can be drawn, else the one line that says how to get them."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ("plots skipped: matplotlib is not installed; pip install 'losslab[cli]' adds "
                "them (--no-plots silences this)")
    return None


def _figure(width: float = 6.4, height: float = 3.6, ncols: int = 1) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig, axes


def _save(fig: Any, path: str, right: float = 0.97) -> str:
    fig.subplots_adjust(left=0.13, right=right, bottom=0.14, top=0.88, wspace=0.3)
    write_atomic(path, lambda fh: fig.savefig(fh, dpi=_DPI, format="png"))
    return path


def _legend_beside(fig: Any, ax: Any, **kwargs: Any) -> float:
    """A legend to the right of the axes (never over a curve); returns the axes' right edge,
    leaving room for the longest label."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return 0.97
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              fontsize="small", **kwargs)
    longest = max(len(str(t)) for t in labels)
    width_in = fig.get_figwidth()
    # ~0.075 in per character at "small" plus the marker; at most 45% of the figure.
    return max(0.55, 1.0 - min(0.45, (0.6 + 0.075 * longest) / width_in))


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return a[np.isfinite(a)]


def _maybe_log(ax: Any, *series: Sequence[float], axis: str = "y") -> None:
    """Log scale when all values are positive and span more than a decade."""
    vals = np.concatenate([_finite(s) for s in series]) if series else np.array([])
    if vals.size and np.all(vals > 0) and vals.max() / vals.min() > 10.0:
        _log_axis(ax, axis)


def _log_axis(ax: Any, axis: str = "y") -> None:
    """Log scale with plain "0.001" tick labels: the default 10^k labels go through mathtext,
    whose parser and font lookup cost ~0.15 s on a plot's first draw."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def _epochs(n: int) -> np.ndarray:
    return np.arange(1, n + 1)


def plot_loss_curves(history: Mapping[str, Sequence[float]], path: str,
                     title: str = "Loss", xlabel: str = "epoch") -> str:
    """Training loss and, when present, validation loss per epoch."""
    fig, (ax,) = _figure()
    loss = history.get("loss", [])
    ax.plot(_epochs(len(loss)), loss, label="train", color="C0")
    series = [loss]
    val = history.get("val_loss") or []
    if len(val) and np.any(np.isfinite(np.asarray(val, dtype=float))):
        ax.plot(_epochs(len(val)), val, label="validation", color="C1")
        series.append(val)
    _maybe_log(ax, *series)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    ax.set_title(title)
    return _save(fig, path, right=_legend_beside(fig, ax))


def plot_lr(history: Mapping[str, Sequence[float]], path: str, xlabel: str = "epoch") -> str:
    fig, (ax,) = _figure()
    lr = history.get("lr", [])
    ax.plot(_epochs(len(lr)), lr, color="C2")
    _maybe_log(ax, lr)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("learning rate")
    ax.set_title("Learning rate")
    return _save(fig, path)


def plot_grad_norms(history: Mapping[str, Sequence[float]], path: str,
                    xlabel: str = "epoch") -> str:
    """One line per parameter ("grad_norm/<name>" keys): vanishing/exploding gradients show."""
    fig, (ax,) = _figure()
    keys = [k for k in history if k.startswith("grad_norm/")]
    for i, k in enumerate(keys):
        ax.plot(_epochs(len(history[k])), history[k], label=k.split("/", 1)[1], color=f"C{i % 10}")
    right = 0.97
    if keys:
        _maybe_log(ax, *(history[k] for k in keys))
        right = _legend_beside(fig, ax, ncols=1 + len(keys) // 12)
    else:
        ax.text(0.5, 0.5, "no gradient norms recorded", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("gradient L2 norm")
    ax.set_title("Gradient norm per parameter")
    return _save(fig, path, right=right)


def plot_fit(x: np.ndarray, y: np.ndarray, lines: Mapping[str, tuple[np.ndarray, np.ndarray]],
             path: str, xlabel: str = "x", ylabel: str = "y", title: str = "Fitted line") -> str:
    """Data as points and one or more fitted curves ``{label: (xs, ys)}``."""
    fig, (ax,) = _figure()
    ax.scatter(np.asarray(x).ravel(), np.asarray(y).ravel(), s=10, alpha=0.6, color="0.35",
               label="data")
    for i, (label, (xs, ys)) in enumerate(lines.items()):
        ax.plot(xs, ys, color=f"C{i % 10}", lw=2, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _save(fig, path, right=_legend_beside(fig, ax))


def plot_compare(histories: Mapping[str, Mapping[str, Sequence[float]]], metric: str,
                 path: str, title: str | None = None) -> str:
    """The same loss-independent held-out metric per epoch, one line per loss."""
    fig, (ax,) = _figure()
    series = []
    for i, (label, h) in enumerate(histories.items()):
        vals = h.get(metric) or []
        ax.plot(_epochs(len(vals)), vals, label=label, color=f"C{i % 10}")
        series.append(vals)
    _maybe_log(ax, *series)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} per epoch, by loss")
    return _save(fig, path, right=_legend_beside(fig, ax))


def plot_compare_fit(x: np.ndarray, y: np.ndarray,
                     lines: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str,
                     xlabel: str = "x", ylabel: str = "y") -> str:
    return plot_fit(x, y, lines, path, xlabel, ylabel, title="Fitted lines, by loss")


def lr_find_ylim(losses: Sequence[float], smoothed: Sequence[float]) -> tuple[float, float]:
    """A y-range that shows the raw loss up to where the smoothed loss is lowest (and the
    smoothed curve throughout), cut above only where the loss runs away after that."""
    raw = np.asarray(losses, dtype=float)
    sm = np.asarray(smoothed, dtype=float)
    stop = int(np.nanargmin(sm)) + 1 if np.isfinite(sm).any() else len(raw)
    shown = np.concatenate([_finite(raw[:stop]), _finite(sm)])
    if not shown.size:
        return 0.0, 1.0
    lo, hi = float(shown.min()), float(shown.max())
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
    return lo - pad, hi + pad


def plot_lr_find(lrs: Sequence[float], losses: Sequence[float], smoothed: Sequence[float],
                 suggested: float | None, path: str,
                 lag_free: Sequence[float] | None = None) -> str:
    """The raw loss, its running average and (when given) the lag-free curve the suggestion is
    read from, against the rate; the suggestion marked on that curve."""
    fig, (ax,) = _figure(width=8.0)
    ax.plot(lrs, losses, color="C0", alpha=0.35, lw=1, label="loss")
    ax.plot(lrs, smoothed, color="C0", lw=2, label="running average")
    curve = smoothed
    if lag_free is not None and len(lag_free):
        ax.plot(lrs[: len(lag_free)], lag_free, color="C1", lw=1.5, ls="--",
                label="lag-free (suggestion)")
        curve = lag_free
    _log_axis(ax, "x")
    ax.set_ylim(*lr_find_ylim(losses, smoothed))
    if suggested is not None and math.isfinite(suggested):
        i = int(np.argmin(np.abs(np.log(np.asarray(lrs[: len(curve)])) - math.log(suggested))))
        ax.axvline(suggested, color="C3", ls=":", label=f"suggested {suggested:.3g}")
        ax.plot([lrs[i]], [curve[i]], "o", color="C3", ms=7)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate range test")
    return _save(fig, path, right=_legend_beside(fig, ax))


def plot_sweep(rates: Sequence[float] | np.ndarray, finals: Sequence[float] | np.ndarray, path: str,
               best: float | None = None, ylabel: str = "final validation loss") -> str:
    fig, (ax,) = _figure()
    r = np.asarray(rates, dtype=float)
    f = np.asarray(finals, dtype=float)
    order = np.argsort(r)
    ok = np.isfinite(f[order])
    ax.plot(r[order][ok], f[order][ok], "o-", color="C0", label="final loss")
    if (~ok).any():
        top = float(np.max(f[np.isfinite(f)])) if np.isfinite(f).any() else 1.0
        ax.plot(r[order][~ok], np.full((~ok).sum(), top), "x", color="C3", ms=9,
                label="diverged")
    _log_axis(ax, "x")
    _maybe_log(ax, f[np.isfinite(f)])
    if best is not None:
        ax.axvline(best, color="C2", ls="--", label=f"best {best:.3g}")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(ylabel)
    ax.set_title("Learning-rate sweep")
    return _save(fig, path, right=_legend_beside(fig, ax))


def plot_loss_shape(title: str, z: np.ndarray,
                    curves: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str) -> str:
    """A loss and its gradient against the prediction, one line per fixed target."""
    fig, (a1, a2) = _figure(width=10.0, ncols=2)
    for i, (label, v, g) in enumerate(curves):
        a1.plot(z, v, color=f"C{i}", label=label)
        a2.plot(z, g, color=f"C{i}", label=label)
    a1.set_title("loss")
    a2.set_title("gradient")
    for ax in (a1, a2):
        ax.set_xlabel("prediction")
    fig.suptitle(title)
    right = _legend_beside(fig, a2)
    return _save(fig, path, right=right)


def plot_history(history: Mapping[str, Sequence[float]], path_for: Callable[[str], str],
                 xlabel: str = "epoch") -> dict[str, str]:
    """The standard plots of one run, ``{title: path}`` (loss, learning rate, gradient norms);
    ``path_for(file name)`` says where each goes."""
    out = {"Loss": plot_loss_curves(history, path_for("loss.png"), xlabel=xlabel)}
    if history.get("lr"):
        out["Learning rate"] = plot_lr(history, path_for("lr.png"), xlabel=xlabel)
    if any(k.startswith("grad_norm/") for k in history):
        out["Gradient norms"] = plot_grad_norms(history, path_for("grad_norms.png"),
                                                xlabel=xlabel)
    return out


def plot_splits(values: Mapping[str, Sequence[float]], metric: str, path: str) -> str:
    """One column of dots per loss (its metric on each held-out set) with the mean ± sd bar."""
    fig, (ax,) = _figure(width=max(6.4, 1.2 * len(values) + 2))
    for i, v in enumerate(values.values()):
        a = _finite(v)
        if not a.size:
            continue
        jitter = np.linspace(-0.12, 0.12, a.size) if a.size > 1 else np.zeros(1)
        ax.plot(i + jitter, a, "o", color=f"C{i % 10}", alpha=0.6, ms=5)
        sd = float(np.std(a, ddof=1)) if a.size > 1 else 0.0
        ax.errorbar([i + 0.3], [float(a.mean())], yerr=[sd], fmt="s", color="0.2", capsize=4)
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(list(values), rotation=20, fontsize="small")
    ax.set_xlim(-0.5, len(values) - 0.3)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} on each held-out set (square: mean ± sd)")
    return _save(fig, path)


# --- overfit: small multiples, learning and validation curves, gradients by layer -------------


def _grid(nrows: int, ncols: int, width: float, height: float,
          sharey: bool = False) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    axes = fig.subplots(nrows, ncols, sharey=sharey, squeeze=False).ravel().tolist()
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig, axes


def _no_minor_ticks(*axes: Any) -> None:
    """No minor ticks on the y axes: on a grid of log axes they are most of the drawing time."""
    from matplotlib.ticker import NullLocator

    for ax in axes:
        ax.yaxis.set_minor_locator(NullLocator())


def _save_adjusted(fig: Any, path: str, **margins: float) -> str:
    fig.subplots_adjust(**margins)
    write_atomic(path, lambda fh: fig.savefig(fh, dpi=_DPI, format="png"))
    return path


def _band(ax: Any, x: np.ndarray, values: np.ndarray, color: str, label: str) -> None:
    """Mean over the columns (splits) as a line, the range from the lowest to the highest split
    as a band (positive, so it shows on a log axis as a standard deviation might not)."""
    v = np.asarray(values, dtype=float)
    ax.plot(x, v.mean(axis=1), "o-", color=color, ms=4, label=label)
    if v.shape[1] > 1:
        ax.fill_between(x, v.min(axis=1), v.max(axis=1), color=color, alpha=0.2, lw=0)


def plot_variant_curves(variants: Mapping[str, Mapping[str, Any]], path: str,
                        ylabel: str = "loss") -> str:
    """Small multiples, one panel per variant: its training and validation loss per epoch on a
    shared y axis (``{"train": [...], "val": [...], "gap": g, "best_epoch": e or None}``, epochs
    from 1), and a last panel with every variant's final gap as a bar."""
    n = len(variants) + 1
    ncols = 4
    nrows = -(-n // ncols)
    fig, axes = _grid(nrows, ncols, 12.0, 2.6 * nrows + 0.6, sharey=True)
    series: list[Sequence[float]] = []
    for ax, (name, v) in zip(axes, variants.items()):
        train, val = v["train"], v["val"]
        ax.plot(_epochs(len(train)), train, color="C0", label="training loss")
        ax.plot(_epochs(len(val)), val, color="C1", label="validation loss")
        series += [train, val]
        if v.get("best_epoch") is not None:
            ax.axvline(v["best_epoch"], color="0.4", ls=":", lw=1, label="best epoch (restored)")
        ax.set_title(f"{name}: gap {v['gap']:.3g}", fontsize="medium")
        ax.set_xlabel("epoch", fontsize="small")
    _maybe_log(axes[0], *series)
    _no_minor_ticks(*axes)
    longest = max(len(v["train"]) for v in variants.values())
    for ax in axes[: len(variants)]:
        ax.set_xlim(0, longest + 1)  # one time axis: an early stop shows as a short curve
    axes[0].set_ylabel(ylabel)
    if ncols < len(axes):
        axes[ncols].set_ylabel(ylabel)
    # The bars share nothing with the curves: their own axes in the last slot.
    bar_slot = axes[len(variants)]
    fig.delaxes(bar_slot)
    bars = fig.add_subplot(nrows, ncols, len(variants) + 1)
    names = list(variants)
    gaps = [float(variants[k]["gap"]) for k in names]
    colors = ["C3" if i == 0 else "C2" for i in range(len(names))]
    bars.barh(range(len(names)), gaps, color=colors)
    bars.set_yticks(range(len(names)))
    bars.set_yticklabels(names, fontsize="small")
    bars.invert_yaxis()
    bars.axvline(0, color="0.3", lw=0.8)
    bars.set_title("gap = validation - training", fontsize="medium")
    bars.grid(alpha=0.3, axis="x")
    for ax in axes[len(variants) + 1:]:
        fig.delaxes(ax)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:len(variants)]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(handles, labels, loc="upper center", ncols=len(labels), fontsize="small",
               frameon=False)
    top = 1.0 - 0.75 / fig.get_figheight()
    return _save_adjusted(fig, path, left=0.075, right=0.98, bottom=0.1, top=top, wspace=0.35,
                          hspace=0.55)


def plot_learning_curve(sizes: Sequence[int] | np.ndarray, train: np.ndarray, val: np.ndarray,
                        path: str, ylabel: str = "loss", marks: Mapping[str, int] | None = None,
                        ) -> str:
    """Training and held-out loss against the number of training rows: mean over the splits
    with ± one standard deviation; ``marks`` ({label: rows}) drawn as vertical lines."""
    fig, (ax,) = _figure()
    x = np.asarray(sizes, dtype=float)
    _band(ax, x, train, "C0", "training")
    _band(ax, x, val, "C1", "held out")
    for i, (label, rows) in enumerate((marks or {}).items()):
        ax.axvline(rows, color="0.4", ls=(":" if i == 0 else "--"), lw=1, label=label)
    _log_axis(ax, "x")
    _maybe_log(ax, np.asarray(train).ravel().tolist(), np.asarray(val).ravel().tolist())
    ax.set_xlabel("training rows")
    ax.set_ylabel(ylabel)
    ax.set_title(f"Learning curve (mean, band: range over {np.asarray(val).shape[1]} splits)")
    return _save(fig, path, right=_legend_beside(fig, ax))


def plot_validation_curves(panels: Mapping[str, Mapping[str, Any]], path: str,
                           ylabel: str = "loss") -> str:
    """One panel per hyperparameter: training and held-out loss (mean ± sd over folds) against
    its values on a log axis, the chosen value marked (``{"values", "train", "val",
    "chosen"}``)."""
    fig, axes = _figure(width=5.0 * len(panels) + 1.6, ncols=len(panels))
    for ax, (name, p) in zip(axes, panels.items()):
        x = np.asarray(p["values"], dtype=float)
        _band(ax, x, p["train"], "C0", "training")
        _band(ax, x, p["val"], "C1", "held out")
        ax.axvline(p["chosen"], color="C2", ls="--", label="chosen")
        _log_axis(ax, "x")
        _maybe_log(ax, np.asarray(p["train"]).ravel().tolist(),
                   np.asarray(p["val"]).ravel().tolist())
        ax.set_xlabel(f"{name} strength")
        ax.set_title(f"Validation curve: {name}")
    axes[0].set_ylabel(ylabel)
    right = _legend_beside(fig, axes[-1])
    fig.subplots_adjust(wspace=0.3)
    return _save(fig, path, right=right)


def plot_layer_gradients(networks: Mapping[str, Mapping[str, Sequence[float]]], path: str) -> str:
    """Small multiples, one panel per network: each layer's gradient norm per epoch (shared log
    axis), coloured from the first layer (dark) to the last (light)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig, axes = _grid(1, len(networks), 4.2 * len(networks) + 1.2, 3.8, sharey=True)
    cmap = colormaps["viridis"]
    deepest = max(len(layers) for layers in networks.values())
    series = []
    for ax, (name, layers) in zip(axes, networks.items()):
        for i, values in enumerate(layers.values()):
            ax.plot(_epochs(len(values)), values, color=cmap(i / max(1, deepest - 1)), lw=1.2)
            series.append(values)
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("epoch")
    _log_axis(axes[0])
    _no_minor_ticks(*axes)
    axes[0].set_ylabel("gradient L2 norm (weights)")
    fig.suptitle("Gradient norm of each layer's weights during training")
    fig.subplots_adjust(left=0.07, right=0.89, bottom=0.14, top=0.82, wspace=0.12)
    bar = fig.colorbar(ScalarMappable(Normalize(1, deepest), cmap),
                       cax=fig.add_axes((0.91, 0.14, 0.012, 0.68)))
    bar.set_label("layer (1 = input side)")
    return _save_adjusted(fig, path)  # margins set above, before the colour bar took its place


def plot_gradient_profile(profiles: Mapping[str, Mapping[str, Sequence[float]]],
                          path: str) -> str:
    """Gradient norm against the layer's depth, one colour per network, solid for the first
    epoch and dashed for the last (``{network: {"first": [...], "last": [...]}}``)."""
    fig, (ax,) = _figure(width=8.0)
    for i, (name, p) in enumerate(profiles.items()):
        layers = np.arange(1, len(p["first"]) + 1)
        ax.plot(layers, p["first"], "o-", color=f"C{i}", ms=4, label=f"{name}, first epoch")
        ax.plot(layers, p["last"], "s--", color=f"C{i}", ms=3, alpha=0.7,
                label=f"{name}, last epoch")
    _log_axis(ax)
    ax.set_xlabel("layer (1 = input side)")
    ax.set_ylabel("gradient L2 norm (weights)")
    ax.set_title("Where the gradient vanishes")
    return _save(fig, path, right=_legend_beside(fig, ax))
