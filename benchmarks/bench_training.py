"""One training epoch: losslab vs PyTorch vs scikit-learn, and the GEMM floor.

Workload (issue 3): an MLP 784-256-10 with ReLU, softmax cross-entropy and Adam (lr 1e-3),
mini-batches of 128, 20,000 samples, float32, shuffled every epoch.

- losslab: ``Trainer(mlp([784, 256, 10]), "cross_entropy", "adam", metrics=[])``; each epoch is
  timed inside one ``fit`` call (callbacks stamp its start and end), so per-call validation of
  the data is not counted, but shuffling, the NaN guard and the per-layer gradient norms are.
- torch: the same model and loop by hand (``randperm``, slicing, ``zero_grad``, ``backward``,
  ``step``), ``F.cross_entropy``.
- scikit-learn: ``MLPClassifier(hidden_layer_sizes=(256,), solver="adam", alpha=0,
  batch_size=128)``; one ``partial_fit`` call is one epoch.
- floor: the epoch's matrix products (forward, weight gradients, the hidden layer's input
  gradient; ``2 * n * (784*256*2 + 256*10*3)`` FLOPs) at the float32 GEMM rate measured here on
  the same shapes.

All run in one process with the same number of BLAS/torch threads (``--threads``, default 1:
the machine may be shared, and oversubscribed OpenBLAS threads make every GEMM erratic). The
first epoch of each is a warm-up and is dropped; the table shows the median of the others.

    python benchmarks/bench_training.py [--epochs 6] [--threads 1] [--out FILE.md] [--append]

``--append`` adds this run's section to FILE.md instead of replacing it (e.g. a 2-thread run
below the 1-thread one).
"""

from __future__ import annotations

import argparse
import os
import sys


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=6, help="epochs per library (first is warm-up)")
    p.add_argument("--threads", type=int, default=2, help="BLAS / torch threads for everyone")
    p.add_argument("--samples", type=int, default=20_000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--skip", nargs="*", default=[], choices=["torch", "sklearn"])
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                 "training.md"))
    p.add_argument("--append", action="store_true", help="append to --out instead of replacing")
    return p.parse_args()


ARGS = _parse()
# Thread counts must be fixed before NumPy (OpenBLAS) or torch start their pools; losslab's own
# blocked executor (losslab.losses._blocked) reads LOSSLAB_NUM_THREADS.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "LOSSLAB_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

IN, HIDDEN, OUT = 784, 256, 10


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 images and labels with some structure (timing does not depend on it)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, OUT, n)
    centers = rng.normal(size=(OUT, IN)).astype(np.float32)
    X = centers[y] + rng.normal(size=(n, IN)).astype(np.float32)
    return X.astype(np.float32), y.astype(np.int64)


def bench_losslab(X, y, epochs, batch_size) -> list[float]:
    from losslab.train.callbacks import LambdaCallback
    from losslab.train.layers import mlp
    from losslab.train.trainer import Trainer

    times: list[float] = []
    start = [0.0]
    cb = LambdaCallback(
        on_epoch_begin=lambda t, e: start.__setitem__(0, time.perf_counter()),
        on_epoch_end=lambda t, e, logs: times.append(time.perf_counter() - start[0]),
    )
    trainer = Trainer(mlp([IN, HIDDEN, OUT], seed=0), "cross_entropy", "adam", lr=1e-3,
                      metrics=[], seed=0)
    trainer.fit(X, y, epochs=epochs, batch_size=batch_size, callbacks=[cb])
    return times


def bench_torch(X, y, epochs, batch_size, threads) -> list[float]:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(HIDDEN, OUT))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n = len(X)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        Xs, ys = Xt[perm], yt[perm]
        for i in range(0, n, batch_size):
            xb, yb = Xs[i:i + batch_size], ys[i:i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return times


def bench_sklearn(X, y, epochs, batch_size) -> list[float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", solver="adam",
                        alpha=0.0, batch_size=batch_size, learning_rate_init=1e-3,
                        shuffle=True, random_state=0)
    classes = np.arange(OUT)
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(epochs):
            t0 = time.perf_counter()
            clf.partial_fit(X, y, classes=classes)
            times.append(time.perf_counter() - t0)
    return times


def gemm_floor(n: int, batch_size: int, repeats: int = 30) -> tuple[float, float, float]:
    """(epoch floor in s, epoch GFLOP, measured GFLOP/s) from timing the epoch's GEMM shapes."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(batch_size, IN)).astype(np.float32)
    w1 = rng.normal(size=(HIDDEN, IN)).astype(np.float32)
    h = rng.normal(size=(batch_size, HIDDEN)).astype(np.float32)
    w2 = rng.normal(size=(OUT, HIDDEN)).astype(np.float32)
    g2 = rng.normal(size=(batch_size, OUT)).astype(np.float32)
    g1 = rng.normal(size=(batch_size, HIDDEN)).astype(np.float32)
    products = [  # one training step's matrix products
        lambda: x @ w1.T,    # forward, layer 1
        lambda: h @ w2.T,    # forward, layer 2
        lambda: g2.T @ h,    # dW2
        lambda: g2 @ w2,     # dL/dh
        lambda: g1.T @ x,    # dW1 (no dL/dx: the data need no gradient)
    ]
    flops_step = 2 * batch_size * (IN * HIDDEN * 2 + HIDDEN * OUT * 3)
    for f in products:
        f()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeats):
            for f in products:
                f()
        best = min(best, (time.perf_counter() - t0) / repeats)
    rate = flops_step / best
    epoch_flops = 2 * n * (IN * HIDDEN * 2 + HIDDEN * OUT * 3)
    return epoch_flops / rate, epoch_flops / 1e9, rate / 1e9


def main() -> int:
    X, y = make_data(ARGS.samples)
    results: dict[str, list[float]] = {}
    results["losslab"] = bench_losslab(X, y, ARGS.epochs, ARGS.batch_size)
    if "torch" not in ARGS.skip:
        results["torch"] = bench_torch(X, y, ARGS.epochs, ARGS.batch_size, ARGS.threads)
    if "sklearn" not in ARGS.skip:
        results["scikit-learn"] = bench_sklearn(X, y, ARGS.epochs, ARGS.batch_size)
    floor, gflop, gflops = gemm_floor(ARGS.samples, ARGS.batch_size)
    med = {k: statistics.median(v[1:] if len(v) > 1 else v) for k, v in results.items()}

    def ratio(a: str, b: str) -> str:
        return f"{med[a] / med[b]:.2f}x" if a in med and b in med else "-"

    rows = [
        "| implementation | median epoch (s) | epochs timed | vs torch | vs scikit-learn "
        "| vs GEMM floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k in results:
        rows.append(
            f"| {k} | {med[k]:.4f} | {max(len(results[k]) - 1, 1)} | {ratio(k, 'torch')} | "
            f"{ratio(k, 'scikit-learn')} | {med[k] / floor:.2f}x |"
        )
    rows.append(f"| GEMM floor | {floor:.4f} | - | - | - | 1.00x |")
    versions = [f"numpy {np.__version__}"]
    for mod in ("torch", "sklearn"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            pass
    import losslab

    title = "# Training benchmark: one epoch, MLP 784-256-10 (ReLU), softmax cross-entropy, Adam"
    header = [
        f"## {ARGS.threads} thread(s)" if ARGS.append else title,
        "",
        f"{ARGS.samples} samples, batch {ARGS.batch_size}, float32, shuffled every epoch; "
        f"{ARGS.threads} BLAS/torch thread(s) for everyone; median over epochs 2..{ARGS.epochs} "
        "(epoch 1 is a warm-up). Produced by `python benchmarks/bench_training.py`.",
        "",
        f"GEMM floor: {gflop:.2f} GFLOP per epoch at the measured float32 GEMM rate "
        f"{gflops:.1f} GFLOP/s (the step's five products timed at the batch's shapes).",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}, losslab {losslab.__version__}, "
        + ", ".join(versions) + f"; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
    ]
    raw = ["", "Per-epoch times (s):", ""] + [
        f"- {k}: " + ", ".join(f"{t:.4f}" for t in v) for k, v in results.items()
    ]
    text = "\n".join(header + rows + raw) + "\n"
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(ARGS.out)), exist_ok=True)
    with open(ARGS.out, "a" if ARGS.append else "w") as f:
        f.write(("\n" if ARGS.append else "") + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
