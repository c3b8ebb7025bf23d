"""Wall time of ``losslab overfit`` with every default (issue 16: under 30 s on a 2-core machine),
and what one BLAS thread does for the small models it trains.

    python3 benchmarks/bench_overfit.py [--rounds 5]

1. Fresh processes, start-up included: ``losslab overfit`` (digits, the baseline and the five
   cures, two penalty sweeps of 12 fits each, a learning curve of 4 sizes x 3 splits, three plots
   and the report) and ``losslab overfit --show gradients``, as a user starts them.
2. In one process, the baseline's model (mlp 64-128-128-10, Adam, batch 256) trained for 20
   epochs on 1438 rows, with NumPy's BLAS at its default thread count and inside
   ``losslab.cli.threads.blas_threads(1)`` (what the command does), one after the other in each
   round; the ratio is per round.

Rounds are interleaved; the tables give medians, the spread (min-max) and the load average
before and after. Writes benchmarks/results/overfit.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 30.0


def _time(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _fit_seconds(limit: int | None) -> float:
    import numpy as np

    from losslab.cli.threads import blas_threads
    from losslab.train.layers import mlp
    from losslab.train.trainer import Trainer

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1438, 64)).astype("float32")
    y = rng.integers(0, 10, 1438)
    trainer = Trainer(mlp([64, 128, 128, 10], seed=0), "cross_entropy", "adam", lr=0.01,
                      seed=0, metrics=[])
    with blas_threads(limit):
        t0 = time.perf_counter()
        trainer.fit(X, y, epochs=20, batch_size=256)
        return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                  "overfit.md"))
    args = ap.parse_args()
    base = [sys.executable, "-m", "losslab", "overfit", "-q"]  # PYTHONPATH picks the tree
    env = dict(os.environ)
    cases = {"`losslab overfit`": base,
             "`losslab overfit --show gradients`": base + ["--show", "gradients"]}
    load_before = os.getloadavg()
    walls: dict[str, list[float]] = {k: [] for k in cases}
    cpus: dict[str, list[float]] = {k: [] for k in cases}
    with tempfile.TemporaryDirectory() as tmp:
        # Warm the file cache, scikit-learn's data and matplotlib's font cache.
        _time(base + ["--show", "gradients", "--epochs", "2", "--out", "warm"], env, tmp)
        for r in range(args.rounds):
            for i, (name, argv) in enumerate(cases.items()):
                w, c = _time(argv + ["--out", f"run-{r}-{i}"], env, tmp)
                walls[name].append(w)
                cpus[name].append(c)
                print(f"round {r + 1}: {name}: {w:.1f} s", file=sys.stderr, flush=True)
    fits: dict[str, list[float]] = {"default": [], "one": []}
    _fit_seconds(1)  # warm-up
    for _ in range(args.rounds):
        fits["default"].append(_fit_seconds(None))
        fits["one"].append(_fit_seconds(1))
    ratios = [d / o for d, o in zip(fits["default"], fits["one"])]
    load_after = os.getloadavg()
    lines = [
        "# losslab overfit timings", "",
        f"{args.rounds} interleaved rounds, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; load average (1 min) {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after. Target: under {TARGET:g} s.",
        "",
        "| command (fresh process) | median wall (s) | spread (s) | median CPU (s) | under 30 s |",
        "|---|---:|---:|---:|:---:|",
    ]
    for name in cases:
        med = statistics.median(walls[name])
        lines.append(f"| {name} | {med:.1f} | {min(walls[name]):.1f}-{max(walls[name]):.1f} | "
                     f"{statistics.median(cpus[name]):.1f} | {'yes' if med < TARGET else 'no'} |")
    lines += [
        "", "| baseline's model, 20 epochs, same process | median (s) | spread (s) | ratio |",
        "|---|---:|---:|---:|",
        f"| BLAS default threads | {statistics.median(fits['default']):.3f} | "
        f"{min(fits['default']):.3f}-{max(fits['default']):.3f} | "
        f"{statistics.median(ratios):.1f}x (per-round {min(ratios):.1f}-{max(ratios):.1f}) |",
        f"| `blas_threads(1)` (the command) | {statistics.median(fits['one']):.3f} | "
        f"{min(fits['one']):.3f}-{max(fits['one']):.3f} | 1.0x |",
        "", "CPU = user + sys of the child process; wall includes start-up, imports, the "
        "data, training, plots and report.",
    ]
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
