"""Peak memory and time of forward + backward: losslab.torch against the same loss from torch ops.

For the losses torch lacks (focal, softmax_focal, dice, tversky, poly1, log_cosh), each composed
the way a user (or torchvision / the paper's code) writes it, with autograd recording the tape,
against ``losslab.torch``, whose backward is the saved closed-form gradient. Inputs of about 4M
float32 elements.

Memory ("extra", issue 5's meaning) is the memory beyond the inputs: the peak of the bytes
allocated during one forward + backward above what was live before it, i.e. above the inputs. The
gradient left in ``x.grad`` counts, the same input-sized buffer for both, so the ratio can never
go below 1 / (composed extra / input size): 0.5 exactly when the composed version needs just one
input-sized temporary besides the gradient (dice). On CPU it is read from the
profiler's allocation events (``profile_memory=True``: every CPU-allocator allocation and free,
replayed in time order); on CUDA from ``torch.cuda.max_memory_allocated``. Time is measured
without the profiler, in rounds that run both versions side by side (order alternating): the
table gives each one's median and the median and quartiles of the per-round ratio. Target
(issue 5): at most half the composed version's extra memory and no slower.

    python3 benchmarks/bench_torch_memory.py [--device cuda] [--rounds 41]

Writes a Markdown table to benchmarks/results/torch_memory[_cuda].md.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

import losslab.torch as lt

OUT = Path(__file__).resolve().parent / "results"


# --- the losses composed from torch operations (autograd keeps their intermediates) -----------


def focal_composed(x, t, alpha=0.25, gamma=2.0):
    # torchvision.ops.sigmoid_focal_loss
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * t + (1 - alpha) * (1 - t)
    return (alpha_t * loss).mean()


def softmax_focal_composed(x, y, gamma=2.0):
    logp_t = F.log_softmax(x, dim=1).gather(1, y[:, None])[:, 0]
    return (-((1 - logp_t.exp()) ** gamma) * logp_t).mean()


def _sums(p, t):
    dims = tuple(range(1, p.ndim))
    return dims, (p * t).sum(dims)


def dice_composed(p, t, smooth=1.0):
    dims, inter = _sums(p, t)
    return (1 - (2 * inter + smooth) / (p.sum(dims) + t.sum(dims) + smooth)).mean()


def tversky_composed(p, t, alpha=0.5, beta=0.5, smooth=1.0):
    dims, tp = _sums(p, t)
    fp = (p * (1 - t)).sum(dims)
    fn = ((1 - p) * t).sum(dims)
    return (1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)).mean()


def poly1_composed(x, y, epsilon=1.0):
    # Leng et al. 2022, Poly-1 with cross-entropy: CE + epsilon * (1 - p_t)
    ce = F.cross_entropy(x, y, reduction="none")
    p_t = F.softmax(x, dim=1).gather(1, y[:, None])[:, 0]
    return (ce + epsilon * (1 - p_t)).mean()


def log_cosh_composed(x, t):
    d = x - t
    return (d + F.softplus(-2.0 * d) - math.log(2.0)).mean()


def make_inputs(name, n, device, gen):
    """(inputs, index of the differentiable one) with about n float32 elements."""
    if name in ("softmax_focal", "poly1"):
        c = 128
        x = torch.randn(n // c, c, generator=gen)
        y = torch.randint(0, c, (n // c,), generator=gen)
        return [x.to(device), y.to(device)]
    if name in ("dice", "tversky"):
        side = int(math.isqrt(n // 16))
        p = torch.rand(16, 1, side, side, generator=gen)
        t = (torch.rand(16, 1, side, side, generator=gen) > 0.5).float()
        return [p.to(device), t.to(device)]
    x = torch.randn(n, generator=gen)
    t = torch.rand(n, generator=gen) if name == "focal" else torch.randn(n, generator=gen)
    return [x.to(device), t.to(device)]


COMPOSED = {
    "focal": focal_composed,
    "softmax_focal": softmax_focal_composed,
    "dice": dice_composed,
    "tversky": tversky_composed,
    "poly1": poly1_composed,
    "log_cosh": log_cosh_composed,
}


def step(fn, inputs):
    x = inputs[0].detach().requires_grad_(True)
    loss = fn(x, *inputs[1:])
    loss.backward()
    return loss.detach(), x.grad


def peak_extra_bytes(fn, inputs, device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step(fn, inputs)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(fn, inputs)
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def one_time(fn, inputs, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    step(fn, inputs)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def paired_times(fns, inputs, device, rounds):
    """Per-function times of ``rounds`` rounds, each running every function once, the order
    alternating between rounds. Load from other processes drifts slowly on a shared machine, so
    the ratio of two runs side by side is far steadier than the ratio of separate medians."""
    times = [[] for _ in fns]
    for r in range(rounds):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            times[i].append(one_time(fns[i], inputs, device))
    return times


def quartiles(values):
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--elements", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--rounds", type=int, default=41)
    args = parser.parse_args()
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for name, composed in COMPOSED.items():
        ours = getattr(lt, name)
        inputs = make_inputs(name, args.elements, device, gen)
        v_ours, g_ours = step(ours, inputs)
        v_ref, g_ref = step(composed, inputs)
        torch.testing.assert_close(v_ours, v_ref, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-3, atol=1e-9)
        del g_ours, g_ref
        for fn in (ours, composed):  # warm up (first-call allocations, thread pools)
            step(fn, inputs)
        mem = [peak_extra_bytes(fn, inputs, device) for fn in (ours, composed)]
        t_ours, t_ref = paired_times((ours, composed), inputs, device, args.rounds)
        tm = [statistics.median(t_ours), statistics.median(t_ref)]
        ratio = quartiles([a / b for a, b in zip(t_ours, t_ref)])
        size = inputs[0].numel() * inputs[0].element_size()
        rows.append((name, tuple(inputs[0].shape), size, mem, tm, ratio))
        print(
            f"{name:14s} mem {mem[0] / 2**20:7.1f} MiB vs {mem[1] / 2**20:7.1f} MiB "
            f"({mem[0] / mem[1]:.3f}x, {mem[0] - mem[1] // 2:+d} B vs half)  "
            f"time {tm[0] * 1e3:7.2f} ms vs {tm[1] * 1e3:7.2f} ms "
            f"(paired ratio {ratio[1]:.2f}, quartiles {ratio[0]:.2f}-{ratio[2]:.2f})",
            flush=True,
        )
    write_table(rows, device, args)


def write_table(rows, device, args) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / ("torch_memory.md" if device.type == "cpu" else f"torch_memory_{device.type}.md")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"CPU, {torch.get_num_threads()} threads"
    )
    lines = [
        f"# losslab.torch vs composed torch ops: forward + backward ({where}, torch "
        f"{torch.__version__}, float32)",
        "",
        "Extra memory = memory beyond the inputs: peak bytes allocated during one forward + "
        "backward above what was live before it (the inputs), x.grad included (one input-sized "
        "buffer for both, so the ratio's floor is input MiB / composed MiB). Time: "
        f"{args.rounds} rounds, each running both versions once side by side (order "
        "alternating); ms = each one's median, time ratio = median of the per-round ratios "
        "(quartiles in brackets). Target: memory ratio <= 0.5, time ratio <= 1.0.",
        "",
        "| loss | input shape | input MiB | extra MiB losslab | extra MiB composed | memory "
        "ratio | ms losslab | ms composed | time ratio [quartiles] |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, shape, size, mem, tm, ratio in rows:
        lines.append(
            f"| {name} | {'x'.join(map(str, shape))} | {size / 2**20:.0f} | "
            f"{mem[0] / 2**20:.1f} | {mem[1] / 2**20:.1f} | {mem[0] / mem[1]:.3f} | "
            f"{tm[0] * 1e3:.2f} | {tm[1] * 1e3:.2f} | {ratio[1]:.2f} "
            f"[{ratio[0]:.2f}-{ratio[2]:.2f}] |"
        )
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
