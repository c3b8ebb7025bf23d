"""PNG plots of a training run, drawn with matplotlib's Agg backend.

matplotlib is imported on first use, not with ``losslab``; the ``Figure`` API is used directly
(not pyplot), which saves most of pyplot's import time and keeps no global figure state. Each
function takes plain data (a history dict of per-epoch lists, arrays) and a path, and writes one
PNG. Log scales only when the values span more than a decade, and without minor tick labels:
those two choices keep a plot at about 60 ms.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "plot_loss_curves", "plot_lr", "plot_grad_norms", "plot_fit", "plot_compare",
    "plot_compare_fit", "plot_lr_find", "plot_sweep", "plot_loss_shape", "plot_history",
]

_DPI = 90


def _figure(width: float = 6.4, height: float = 3.6, ncols: int = 1) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig, axes


def _save(fig: Any, path: str) -> str:
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.14, top=0.88, wspace=0.3)
    fig.savefig(path, dpi=_DPI)
    return path


def _finite(values: Sequence[float]) -> np.ndarray:
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
    ax.legend(loc="upper right")
    return _save(fig, path)


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
    if keys:
        _maybe_log(ax, *(history[k] for k in keys))
        ax.legend(loc="upper right", fontsize="small", ncols=1 + len(keys) // 6)
    else:
        ax.text(0.5, 0.5, "no gradient norms recorded", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("gradient L2 norm")
    ax.set_title("Gradient norm per parameter")
    return _save(fig, path)


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
    ax.legend(loc="best" if len(x) <= 500 else "upper left", fontsize="small")
    return _save(fig, path)


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
    ax.legend(loc="upper right", fontsize="small")
    return _save(fig, path)


def plot_compare_fit(x: np.ndarray, y: np.ndarray,
                     lines: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str,
                     xlabel: str = "x", ylabel: str = "y") -> str:
    return plot_fit(x, y, lines, path, xlabel, ylabel, title="Fitted lines, by loss")


def plot_lr_find(lrs: Sequence[float], losses: Sequence[float], smoothed: Sequence[float],
                 suggested: float | None, path: str) -> str:
    fig, (ax,) = _figure()
    ax.plot(lrs, losses, color="C0", alpha=0.35, lw=1, label="loss")
    ax.plot(lrs, smoothed, color="C0", lw=2, label="smoothed loss")
    _log_axis(ax, "x")
    fin = _finite(smoothed)
    if fin.size:
        lo, hi = float(fin.min()), float(np.percentile(fin, 95))
        pad = 0.1 * (hi - lo) if hi > lo else 1.0
        ax.set_ylim(lo - pad, hi + pad)
    if suggested is not None and math.isfinite(suggested):
        ax.axvline(suggested, color="C3", ls="--", label=f"suggested {suggested:.3g}")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate range test")
    ax.legend(loc="upper left", fontsize="small")
    return _save(fig, path)


def plot_sweep(rates: Sequence[float], finals: Sequence[float], path: str,
               best: float | None = None, ylabel: str = "final validation loss") -> str:
    fig, (ax,) = _figure()
    r = np.asarray(rates, dtype=float)
    f = np.asarray(finals, dtype=float)
    order = np.argsort(r)
    ok = np.isfinite(f[order])
    ax.plot(r[order][ok], f[order][ok], "o-", color="C0")
    if (~ok).any():
        top = float(np.max(f[np.isfinite(f)])) if np.isfinite(f).any() else 1.0
        ax.plot(r[order][~ok], np.full((~ok).sum(), top), "x", color="C3", ms=9,
                label="diverged")
        ax.legend(loc="upper left", fontsize="small")
    _log_axis(ax, "x")
    _maybe_log(ax, f[np.isfinite(f)])
    if best is not None:
        ax.axvline(best, color="C2", ls="--")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(ylabel)
    ax.set_title("Learning-rate sweep")
    return _save(fig, path)


def plot_loss_shape(title: str, z: np.ndarray,
                    curves: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str) -> str:
    """A loss and its gradient against the prediction, one line per fixed target."""
    fig, (a1, a2) = _figure(width=9.0, ncols=2)
    for i, (label, v, g) in enumerate(curves):
        a1.plot(z, v, color=f"C{i}", label=label)
        a2.plot(z, g, color=f"C{i}", label=label)
    a1.set_title("loss")
    a2.set_title("gradient")
    for ax in (a1, a2):
        ax.set_xlabel("prediction")
        ax.legend(loc="best", fontsize="small")
    fig.suptitle(title)
    return _save(fig, path)


def plot_history(history: Mapping[str, Sequence[float]], out_dir: str,
                 xlabel: str = "epoch") -> dict[str, str]:
    """The standard plots of one run: ``{title: path}`` for loss, learning rate, gradients."""
    import os

    out = {"Loss": plot_loss_curves(history, os.path.join(out_dir, "loss.png"), xlabel=xlabel)}
    if history.get("lr"):
        out["Learning rate"] = plot_lr(history, os.path.join(out_dir, "lr.png"), xlabel=xlabel)
    if any(k.startswith("grad_norm/") for k in history):
        out["Gradient norms"] = plot_grad_norms(
            history, os.path.join(out_dir, "grad_norms.png"), xlabel=xlabel
        )
    return out


# --- drawing in a second process ---------------------------------------------------------------

def _serve(conn: Any) -> None:  # pragma: no cover - runs in the forked child
    import sys

    try:
        _figure()  # import matplotlib and load the font cache while the parent trains
        while True:
            job = conn.recv()
            if job is None:
                break
            name, args, kwargs = job
            try:
                conn.send(("ok", globals()[name](*args, **kwargs)))
            except Exception as exc:  # reported to the parent, which raises it
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
        sys.stdout.flush()


_THREADED_RUNTIMES = ("jax", "torch", "tensorflow")


class Painter:
    """Draws plots in a forked child process that imports matplotlib while the parent computes.

    matplotlib's import (~0.45 s) is most of a short run's plotting cost; started before the
    training, the child has it done by the time the history is ready, so on a machine with a
    spare core the plots cost little wall time. ``draw(name, *args)`` queues a call of the
    module function ``name``; ``results()`` waits and returns what each call returned, in order.
    Where ``fork`` is unavailable (Windows, macOS' default), or unsafe because a threaded
    runtime (JAX, torch) is loaded, it draws in-process.
    """

    def __init__(self, enabled: bool = True) -> None:
        self._jobs: list[tuple[str, tuple, dict]] = []
        self._conn = None
        self._proc = None
        if not enabled:
            return
        import multiprocessing
        import os

        if "fork" not in multiprocessing.get_all_start_methods() or os.name != "posix":
            return
        # Forking a process in which JAX or torch have started their thread pools can deadlock
        # the child (a lock held by a thread that does not exist there): draw in-process then.
        if any(m in sys.modules for m in _THREADED_RUNTIMES):
            return
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child,), daemon=True)
        proc.start()
        child.close()
        self._conn, self._proc = parent, proc

    def draw(self, name: str, *args: Any, **kwargs: Any) -> None:
        self._jobs.append((name, args, kwargs))

    def results(self) -> list[Any]:
        jobs, self._jobs = self._jobs, []
        if self._conn is None:
            return [globals()[n](*a, **k) for n, a, k in jobs]
        out = []
        try:
            for job in jobs:
                self._conn.send(job)
                status, value = self._conn.recv()
                if status != "ok":
                    raise RuntimeError(f"plotting failed in the worker process: {value}")
                out.append(value)
        finally:
            self.close()
        return out

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
            self._proc = None

    def __enter__(self) -> Painter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
