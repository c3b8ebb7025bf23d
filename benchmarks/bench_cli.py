"""The ``losslab`` command's speed: start-up, ``losslab train``, and reading a 200k x 11 CSV.

    python3 benchmarks/bench_cli.py [--rounds 7] [--rows 200000]

1. Wall time of fresh processes, start-up included: ``losslab --help`` (target < 0.5 s) and
   ``losslab train`` with no arguments (the article's experiment with its outputs and plots;
   target < 2 s), with the child's CPU time (user + sys) beside it.
2. Reading a CSV file of 200,000 rows x 11 numeric columns into arrays: the command's reader
   (``losslab.cli.dataio.read_table``: NumPy's C parser on whole columns) against the reader it
   replaced (the ``csv`` module with one Python ``float()`` per cell, reproduced below) and
   ``np.loadtxt`` (what a user would write), in the same process.

The machine is shared with other work, so every figure is the median of interleaved rounds (one
run of each variant per round, in turn) and the spread (min-max over the rounds) is printed. Writes
a Markdown table to benchmarks/results/cli.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

TARGETS = {"losslab --help": 0.5, "losslab train": 2.0}


def _command() -> list[str]:
    # `python -m losslab` rather than the `losslab` script, so that PYTHONPATH picks the tree
    # being measured (the script may belong to another installation).
    return [sys.executable, "-m", "losslab"]


def _time_process(argv: list[str], cwd: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def read_cell_by_cell(path: str, target: str) -> tuple[np.ndarray, np.ndarray]:
    """The reader ``losslab`` had before (issue 10): csv rows, then one float() per cell."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    header = [c.strip() for c in rows[0][1]]
    body = rows[1:]
    features = [h for h in header if h != target]
    cols = {h: i for i, h in enumerate(header)}
    X = np.empty((len(body), len(features)))
    for j, f in enumerate(features):
        c = cols[f]
        for i, (_, r) in enumerate(body):
            X[i, j] = float(r[c])
    y = np.array([float(r[cols[target]]) for _, r in body])
    return X, y


def _spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "cli.md"))
    args = ap.parse_args()
    from losslab.cli.dataio import read_table

    base = _command()
    lines = ["# losslab command-line timings", ""]
    with tempfile.TemporaryDirectory() as tmp:
        # -- processes ------------------------------------------------------------------------
        _time_process(base + ["--help"], tmp)  # warm the file cache and matplotlib's font cache
        _time_process(base + ["train", "-q", "--out", os.path.join(tmp, "warm")], tmp)
        walls: dict[str, list[float]] = {k: [] for k in TARGETS}
        cpus: dict[str, list[float]] = {k: [] for k in TARGETS}
        for i in range(args.rounds):
            for name, extra in (("losslab --help", ["--help"]),
                                ("losslab train", ["train", "-q", "--out",
                                                   os.path.join(tmp, f"run{i}")])):
                w, c = _time_process(base + extra, tmp)
                walls[name].append(w)
                cpus[name].append(c)
        lines += [
            f"Fresh subprocess per run (`{' '.join(os.path.basename(b) for b in base)}`), "
            f"{args.rounds} interleaved rounds, Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end.",
            "",
            "| command | median wall (s) | spread (s) | median CPU (s) | target (s) | meets |",
            "|---|---:|---:|---:|---:|:---:|",
        ]
        for name, target in TARGETS.items():
            med = statistics.median(walls[name])
            lines.append(f"| `{name}` | {med:.3f} | {_spread(walls[name])} | "
                         f"{statistics.median(cpus[name]):.3f} | < {target:g} | "
                         f"{'yes' if med < target else 'no'} |")
        # -- CSV reading --------------------------------------------------------------------------
        rng = np.random.default_rng(0)
        data = rng.normal(size=(args.rows, 11))
        path = os.path.join(tmp, "big.csv")
        header = ",".join([f"x{i}" for i in range(10)] + ["y"])
        np.savetxt(path, data, delimiter=",", fmt="%.10g", header=header, comments="")
        size_mb = os.path.getsize(path) / 1e6
        readers = {
            "losslab read_table (whole columns)": lambda: read_table(path, "y"),
            "previous reader (float() per cell)": lambda: read_cell_by_cell(path, "y"),
            "np.loadtxt": lambda: np.loadtxt(path, delimiter=",", skiprows=1),
        }
        ref = read_table(path, "y")
        X_old, y_old = read_cell_by_cell(path, "y")
        assert np.array_equal(ref.X, X_old) and np.array_equal(ref.y, y_old)
        times: dict[str, list[float]] = {k: [] for k in readers}
        for _ in range(args.rounds):
            for name, fn in readers.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        new = statistics.median(times["losslab read_table (whole columns)"])
        lines += [
            "",
            f"Reading a CSV of {args.rows:,} rows x 11 numeric columns ({size_mb:.1f} MB) into "
            f"arrays, in one process, {args.rounds} interleaved rounds; ratio = median time / "
            "the command's median.",
            "",
            "| reader | median (s) | spread (s) | ratio |",
            "|---|---:|---:|---:|",
        ]
        for name, ts in times.items():
            med = statistics.median(ts)
            lines.append(f"| {name} | {med:.3f} | {_spread(ts)} | {med / new:.2f}x |")
    lines += ["", "CPU = user + sys of the child process; wall includes start-up, imports, "
              "training, plots and report."]
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
