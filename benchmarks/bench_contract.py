"""The declarative loss contract against the code before it, in one process: no row may be slower.

Issue 9 replaced per-loss plumbing (option checks on every call, per-loss reductions, in-place
choreography inside formulas) with a declarative spec, one reducer and plain formulas. This script
measures the cost of that change where it matters: ``value_and_grad`` on NumPy arrays and forward +
backward of ``losslab.torch`` on CPU tensors, for the hot losses, against the package as it was at
a baseline commit (default: the last commit before the contract), imported side by side as
``losslab_base`` from a ``git archive`` of that commit.

Time is measured in rounds that run both versions back to back (order alternating); the table
gives each one's median and the median and quartiles of the per-round ratio new / baseline. Target
(issue 9): no row more than 5% slower (ratio <= 1.05).

    python3 benchmarks/bench_contract.py [--baseline aa65917] [--rounds 31] [--only dice]
        [--new REF]  (measure commit REF instead of the working tree)

Writes a Markdown table to benchmarks/results/contract.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"


def import_baseline(ref: str, name: str = "losslab_base") -> tuple[object, object]:
    """``(package, package.torch)``: losslab at ``ref``, renamed ``name`` so that it imports
    beside the working tree's ``losslab``."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src/losslab"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    src = tmp / "src" / "losslab"
    dst = tmp / name
    src.rename(dst)
    pattern = re.compile(r"\blosslab\b(?!_)")
    for path in dst.rglob("*.py"):
        text = path.read_text()
        path.write_text(pattern.sub(name, text))
    sys.path.insert(0, str(tmp))
    return importlib.import_module(name), importlib.import_module(f"{name}.torch")


def cases(rng: np.random.Generator):
    """(label, loss name, options, NumPy inputs): ~4M float32 elements each."""
    n, c = 4096, 1000
    logits = rng.standard_normal((n, c), dtype=np.float32)
    labels = rng.integers(0, c, n)
    shape = (4096, 1000)
    x = rng.standard_normal(shape, dtype=np.float32)
    y = rng.standard_normal(shape, dtype=np.float32)
    yb = (rng.random(shape) < 0.5).astype(np.float32)
    p = rng.random((16, 4, 256, 256), dtype=np.float32)
    m = (rng.random((16, 4, 256, 256)) < 0.5).astype(np.float32)
    yield "cross_entropy (4096x1000)", "cross_entropy", {}, (logits, labels)
    yield "mse (4M)", "mse", {}, (x, y)
    yield "huber (4M)", "huber", {}, (x, y)
    yield "bce_with_logits (4M)", "bce_with_logits", {}, (x, yb)
    yield "focal (4M)", "focal", {}, (x, yb)
    yield "log_cosh (4M)", "log_cosh", {}, (x, y)
    yield "softmax_focal (4096x1000)", "softmax_focal", {}, (logits, labels)
    yield "dice (16x4x256x256)", "dice", {}, (p, m)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def paired(new, old, rounds: int) -> tuple[float, float, float, float, float]:
    """Medians of new and old, and the median and quartiles of the per-round ratio new/old."""
    new(), old()  # warm up
    tn, to, ratios = [], [], []
    for r in range(rounds):
        if r % 2:
            b, a = _timed(old), _timed(new)
        else:
            a, b = _timed(new), _timed(old)
        tn.append(a)
        to.append(b)
        ratios.append(a / b)
    q = statistics.quantiles(ratios, n=4)
    return statistics.median(tn), statistics.median(to), statistics.median(ratios), q[0], q[2]


def torch_step(fn, tensors, options):
    x = tensors[0]

    def step():
        x.grad = None
        out = fn(*tensors, **options)
        out.backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="aa65917")
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--only", default="", help="comma-separated loss names (printed; the "
                        "results file is written by full runs only)")
    parser.add_argument("--new", default="", help="a commit to measure instead of the working "
                        "tree (e.g. the contract alone, before later issues built on it)")
    args = parser.parse_args()

    if args.new:
        losslab, lt = import_baseline(args.new, "losslab_new")
    else:
        import losslab
        import losslab.torch as lt

    base, base_torch = import_baseline(args.baseline)
    from losslab.losses._blocked import num_threads

    torch.set_num_threads(num_threads())
    only = {s for s in args.only.split(",") if s}
    rows = []
    for label, name, options, inputs in cases(np.random.default_rng(0)):
        if only and name not in only:
            continue
        new_loss, old_loss = losslab.get(name, **options), base.get(name, **options)
        rows.append((label, "NumPy value_and_grad", *paired(
            lambda new_loss=new_loss, inputs=inputs: new_loss.value_and_grad(*inputs),
            lambda old_loss=old_loss, inputs=inputs: old_loss.value_and_grad(*inputs),
            args.rounds,
        )))
        tensors = [torch.from_numpy(a) for a in inputs]
        tensors[0].requires_grad_(True)
        rows.append((label, "losslab.torch fwd+bwd", *paired(
            torch_step(getattr(lt, name), tensors, options),
            torch_step(getattr(base_torch, name), tensors, options),
            args.rounds,
        )))
        print(rows[-2], rows[-1], flush=True)

    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, threads={num_threads()}, "
        f"numpy {np.__version__}, torch {torch.__version__}; baseline {args.baseline}, "
        f"measured: {args.new or 'the working tree'}; "
        f"{args.rounds} paired rounds, float32.",
        "",
        "| loss | path | this contract (ms) | baseline (ms) | ratio (median) | ratio quartiles |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, path, tn, to, ratio, q1, q3 in rows:
        lines.append(
            f"| {label} | {path} | {tn * 1e3:.2f} | {to * 1e3:.2f} | {ratio:.3f} | "
            f"{q1:.3f}-{q3:.3f} |"
        )
    text = "\n".join(lines)
    print(text)
    if only:
        return  # a partial run prints its rows; the results file holds full runs only
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / (f"contract_{args.new}.md" if args.new else "contract.md")).write_text(text + "\n")


if __name__ == "__main__":
    main()
