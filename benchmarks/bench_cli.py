"""Wall time of the ``losslab`` command, start-up included (issue 4's speed targets).

    python3 benchmarks/bench_cli.py [--runs 5]

Runs ``losslab --help`` (target < 0.5 s) and ``losslab train`` with no arguments (the article's
experiment with its outputs and plots; target < 2 s) in fresh subprocesses, several times each,
and reports the median wall time and the median CPU time (user + sys of the child). On a shared
machine the wall time includes waiting for a core; the CPU time does not, and the load average is
printed beside them so the two can be told apart. Writes a Markdown table to
benchmarks/results/cli.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGETS = {"losslab --help": 0.5, "losslab train": 2.0}


def _command() -> list[str]:
    exe = shutil.which("losslab")
    return [exe] if exe else [sys.executable, "-m", "losslab"]


def _time(argv: list[str], cwd: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "cli.md"))
    args = ap.parse_args()
    base = _command()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # One untimed run of each warms the OS file cache and matplotlib's font cache.
        _time(base + ["--help"], tmp)
        _time(base + ["train", "-q", "--out", os.path.join(tmp, "warm")], tmp)
        for name, extra in (("losslab --help", ["--help"]), ("losslab train", ["train", "-q"])):
            walls, cpus = [], []
            for i in range(args.runs):
                argv = base + extra
                if extra[0] == "train":
                    argv += ["--out", os.path.join(tmp, f"run{i}")]
                w, c = _time(argv, tmp)
                walls.append(w)
                cpus.append(c)
            rows.append((name, statistics.median(walls), min(walls), statistics.median(cpus),
                         TARGETS[name]))
    load = os.getloadavg()[0]
    lines = [
        "# losslab command-line timings",
        "",
        f"{args.runs} runs each, fresh subprocess per run "
        f"(`{' '.join(os.path.basename(b) for b in base)}`), "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {load:.2f} at the end.",
        "",
        "| command | median wall (s) | best wall (s) | median CPU (s) | target (s) | meets |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for name, med, best, cpu, target in rows:
        lines.append(f"| `{name}` | {med:.3f} | {best:.3f} | {cpu:.3f} | < {target:g} | "
                     f"{'yes' if med < target else 'no'} |")
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
