"""Speed and memory of the catalog's value_and_grad against torch's forward + backward.

Run: ``python3 benchmarks/bench_losses.py [--repeats 9] [--out benchmarks/results/losses.md]``.
Both sides use the machine's cores (torch.set_num_threads(n); losslab's blocked executor uses as
many threads). float32 throughout. Reported: median seconds, losslab/torch time ratio, ratio of
losslab's time to the memory-bandwidth floor (read every input once and write the gradient once at
the measured copy bandwidth), and losslab's peak extra memory beyond its gradient, in units of the
input's size (measured with tracemalloc, which NumPy reports its buffers to).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import losslab
from losslab.losses._blocked import num_threads


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def copy_bandwidth(nbytes: int = 1 << 28, repeats: int = 7) -> float:
    """Bytes per second moved by a large memcpy (read + write counted)."""
    a = np.ones(nbytes // 4, dtype=np.float32)
    b = np.empty_like(a)
    t = median_time(lambda: np.copyto(b, a), repeats)
    return 2 * a.nbytes / t


def peak_extra_memory(fn, input_bytes: int, grad_bytes: int) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    out = fn()
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    del out
    return (peak - grad_bytes) / input_bytes


def cases(rng: np.random.Generator):
    n, c = 16384, 1000
    logits = rng.standard_normal((n, c), dtype=np.float32)
    labels = rng.integers(0, c, n)
    yield "cross_entropy (N=16384, C=1000)", "cross_entropy", {}, (logits, labels), \
        lambda x, t: F.cross_entropy(x, t)
    shape = (10_000, 1000)  # 10 million elements
    x = rng.standard_normal(shape, dtype=np.float32)
    y = rng.standard_normal(shape, dtype=np.float32)
    yb = (rng.random(shape) < 0.5).astype(np.float32)
    yield "mse (10M)", "mse", {}, (x, y), F.mse_loss
    yield "huber (10M)", "huber", {}, (x, y), F.huber_loss
    yield "bce_with_logits (10M)", "bce_with_logits", {}, (x, yb), \
        F.binary_cross_entropy_with_logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", default="benchmarks/results/losses.md")
    args = parser.parse_args()

    torch.set_num_threads(num_threads())
    bandwidth = copy_bandwidth()
    rng = np.random.default_rng(0)
    rows = []
    for label, name, options, inputs, torch_fn in cases(rng):
        loss = losslab.get(name, **options)
        tensors = [torch.from_numpy(a) for a in inputs]
        tensors[0].requires_grad_(True)

        def run_torch(tensors=tensors, torch_fn=torch_fn):
            tensors[0].grad = None
            out = torch_fn(*tensors)
            out.backward()
            return out

        def run_ours(loss=loss, inputs=inputs):
            return loss.value_and_grad(*inputs)

        t_ours = median_time(run_ours, args.repeats)
        t_torch = median_time(run_torch, args.repeats)
        moved = sum(a.nbytes for a in inputs) + inputs[0].nbytes
        floor = moved / bandwidth
        extra = peak_extra_memory(run_ours, inputs[0].nbytes, inputs[0].nbytes)
        rows.append((label, t_ours, t_torch, t_ours / t_torch, t_ours / floor, extra))

    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"threads={num_threads()}, numpy {np.__version__}, torch {torch.__version__}; "
        f"copy bandwidth {bandwidth / 1e9:.1f} GB/s. Medians of {args.repeats} runs, float32.",
        "",
        "| loss | losslab value_and_grad (ms) | torch fwd+bwd (ms) | ratio to torch | "
        "ratio to bandwidth floor | peak extra memory (x input) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, t_ours, t_torch, ratio, to_floor, extra in rows:
        lines.append(
            f"| {label} | {t_ours * 1e3:.1f} | {t_torch * 1e3:.1f} | {ratio:.2f}x | "
            f"{to_floor:.1f}x | {extra:.2f} |"
        )
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
