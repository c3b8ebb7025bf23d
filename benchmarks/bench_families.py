"""info_nce and ctc, forward + backward, against what a torch user would write.

info_nce (N=4096, D=256, float32) against torch's composed CLIP-style loss (normalize, matmul,
cross_entropy); ctc (T=200, N=32, C=50, S=40) against torch.nn.functional.ctc_loss, both through
losslab.torch. Two measures, each in interleaved rounds in one process (order alternating):

- wall: ``time.perf_counter`` with 2 intra-op threads (what a user sees; on a shared machine
  also what the other jobs do to it);
- cpu: ``time.thread_time`` with ``torch.set_num_threads(1)`` (the calling thread's CPU time:
  the code's cost, much less sensitive to other load).

Each row: medians of both sides and the median, quartiles and min-max of the per-round ratio.
Run: PYTHONPATH=src python3 benchmarks/bench_families.py [rounds]
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import losslab.torch as lt


def _info_nce_cases():
    g = torch.Generator().manual_seed(0)
    q0, k0 = torch.randn(4096, 256, generator=g), torch.randn(4096, 256, generator=g)

    def ours():
        q, k = q0.clone().requires_grad_(), k0.clone().requires_grad_()
        lt.info_nce(q, k, temperature=0.07).backward()

    def ref():
        q, k = q0.clone().requires_grad_(), k0.clone().requires_grad_()
        logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / 0.07
        F.cross_entropy(logits, torch.arange(4096)).backward()

    return ours, ref


def _ctc_cases():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(200, 32, 50, generator=g).log_softmax(2)
    tg = torch.randint(1, 50, (32, 40), generator=g)
    il, tl = torch.full((32,), 200), torch.randint(20, 41, (32,), generator=g)

    def ours():
        x = z.clone().requires_grad_()
        lt.ctc(x, tg, il, tl).backward()

    def ref():
        x = z.clone().requires_grad_()
        F.ctc_loss(x, tg, il, tl).backward()

    return ours, ref


def measure(ours, ref, rounds: int, threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    clock = time.thread_time if threads == 1 else time.perf_counter
    ours(), ref()
    a, b = [], []
    for r in range(rounds):
        for f, out in ((ours, a), (ref, b)) if r % 2 == 0 else ((ref, b), (ours, a)):
            t0 = clock()
            f()
            out.append(clock() - t0)
    ratios = np.array(a) / np.array(b)
    q1, q3 = np.quantile(ratios, [0.25, 0.75])
    return {"ours": statistics.median(a), "ref": statistics.median(b),
            "ratio": float(np.median(ratios)), "q1": float(q1), "q3": float(q3),
            "lo": float(ratios.min()), "hi": float(ratios.max())}


def main(rounds: int = 15) -> None:
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} at the start; {rounds} interleaved rounds.")
    print("| loss | measure | losslab (ms) | torch (ms) | ratio (median) | quartiles | min-max |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, (ours, ref) in (("info_nce", _info_nce_cases()), ("ctc", _ctc_cases())):
        for label, threads in (("wall, 2 threads", 2), ("CPU time, 1 thread", 1)):
            m = measure(ours, ref, rounds, threads)
            print(f"| {name} | {label} | {m['ours'] * 1e3:.1f} | {m['ref'] * 1e3:.1f} | "
                  f"{m['ratio']:.2f} | {m['q1']:.2f}-{m['q3']:.2f} | {m['lo']:.2f}-{m['hi']:.2f} |",
                  flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
