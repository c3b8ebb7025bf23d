"""info_nce and ctc, forward + backward, against what a torch user would write.

info_nce (N=4096, D=256, float32) against torch's composed CLIP-style loss (normalize, matmul,
cross_entropy); ctc (T=200, N=32, C=50, S=40) against torch.nn.functional.ctc_loss, both through
losslab.torch. Interleaved rounds in one process; medians and the spread (min-max of the
per-round ratio). Run: PYTHONPATH=src python3 benchmarks/bench_families.py [rounds]
"""

from __future__ import annotations

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


def main(rounds: int = 15) -> None:
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name, (ours, ref) in (("info_nce", _info_nce_cases()), ("ctc", _ctc_cases())):
        ours(), ref()
        a, b = [], []
        for _ in range(rounds):
            for f, out in ((ours, a), (ref, b)):
                t0 = time.perf_counter()
                f()
                out.append(time.perf_counter() - t0)
        ratios = np.array(a) / np.array(b)
        print(f"{name}: losslab {np.median(a) * 1e3:.1f} ms, torch {np.median(b) * 1e3:.1f} ms, "
              f"ratio median {np.median(ratios):.2f} (min {ratios.min():.2f}, "
              f"max {ratios.max():.2f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
