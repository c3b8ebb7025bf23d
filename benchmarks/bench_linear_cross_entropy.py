"""Linear cross-entropy, forward + backward: losslab against the composed loss and torch's own.

Contenders (float32, N tokens, D features, V classes, mean over class-index targets):

- ``losslab``: ``losslab.torch.linear_cross_entropy`` with its automatic chunking;
- ``composed``: ``F.cross_entropy(F.linear(h, W), y)``, what a user writes (and what torch's
  ``F.linear_cross_entropy(..., options=None)`` runs);
- ``torch-auto``: ``F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())``, torch
  2.13's chunked path with its defaults (chunking_method "auto");
- ``torch-aspect``: the same with ``chunking_method="aspect_ratio"`` (larger chunks than "auto",
  whose CPU fallback is "aspect_ratio:2");
- ``torch-512``: the same with ``batch_chunk_size=512`` (``chunking_method=None``), losslab's
  chunk size at D=512.

Memory: each measurement runs in a fresh subprocess (tracemalloc does not see torch's allocator,
and a process's high-water mark cannot be lowered after the fact): build the inputs, run the
contender once on a tiny problem (to load its kernels), reset the kernel's peak-RSS counter
(``/proc/self/clear_refs``, value 5), read the resident set size, run one forward + backward, and
report ``VmHWM - VmRSS before``: the extra memory of the step, gradients included (``h.grad`` and
``W.grad`` are the same size for everyone).

Time: rounds that run every contender once, in an order rotated each round, in one process;
medians per contender, and the median and quartiles of the per-round ratio to ``losslab``.

    python3 benchmarks/bench_linear_cross_entropy.py [--vocab 32000 128000] [--rounds 5]
    python3 benchmarks/bench_linear_cross_entropy.py --device cuda     # only on a GPU
    python3 benchmarks/bench_linear_cross_entropy.py --chunk-sweep   # losslab's chunk sizes

On CUDA (only where a GPU is present; skipped otherwise) ``--device cuda`` compares losslab with
the composed loss and, if importable, Liger-Kernel's and Apple's Cut Cross-Entropy kernels, memory
from ``torch.cuda.max_memory_allocated``. Writes benchmarks/results/linear_cross_entropy_V<vocab>.md
(``_chunks.md`` for the chunk sweep, ``_cuda.md`` on a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

import losslab.torch as lt

OUT = Path(__file__).resolve().parent / "results"
MIB = 1 << 20
CPU_CONTENDERS = ("losslab", "composed", "torch-auto", "torch-aspect", "torch-512")


def _torch_chunked(**kwargs):
    def run(h, w, y):
        opts = torch.nn.LinearCrossEntropyOptions(**kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return F.linear_cross_entropy(h, w, y, options=opts)

    return run


def contender(name: str, chunk_size: int | None = None):
    """``f(h, w, y) -> loss`` for a contender's name."""
    if name == "losslab":
        return lambda h, w, y: lt.linear_cross_entropy(h, w, y, chunk_size=chunk_size)
    if name == "composed":
        return lambda h, w, y: F.cross_entropy(F.linear(h, w), y)
    if name == "torch-auto":
        return _torch_chunked()
    if name == "torch-aspect":
        return _torch_chunked(chunking_method="aspect_ratio")
    if name == "torch-512":
        return _torch_chunked(chunking_method=None, batch_chunk_size=512)
    if name == "liger":
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

        return lambda h, w, y: liger_fused_linear_cross_entropy(h, w, y)
    if name == "cce":
        from cut_cross_entropy import linear_cross_entropy

        return lambda h, w, y: linear_cross_entropy(h, w, y)
    raise ValueError(f"unknown contender {name!r}")


def make_inputs(n: int, d: int, v: int, device: str = "cpu", dtype=torch.float32, seed: int = 0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    h = torch.randn(n, d, generator=g).to(device, dtype).requires_grad_()
    w = (torch.randn(v, d, generator=g) * d**-0.5).to(device, dtype).requires_grad_()
    y = torch.randint(0, v, (n,), generator=g).to(device)
    return h, w, y


def step(fn, h, w, y) -> None:
    h.grad = w.grad = None
    fn(h, w, y).backward()


# --- memory: one fresh process per measurement ------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory_here(name: str, n: int, d: int, v: int, chunk_size: int | None) -> dict:
    fn = contender(name, chunk_size)
    step(fn, *make_inputs(64, d, 1000))  # load the kernels on a tiny problem
    h, w, y = make_inputs(n, d, v)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
    before = _status_kib("VmRSS")
    t0 = time.perf_counter()
    step(fn, h, w, y)
    seconds = time.perf_counter() - t0
    extra = (_status_kib("VmHWM") - before) * 1024
    return {"extra_bytes": extra, "seconds": seconds, "input_bytes": (h.numel() + w.numel()) * 4}


def measure_memory(name: str, n: int, d: int, v: int, chunk_size: int | None, threads: int):
    cmd = [sys.executable, __file__, "--memory-child", name, str(n), str(d), str(v),
           str(chunk_size or 0), "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


# --- time: interleaved rounds in one process ---------------------------------------------------


def time_rounds(names, n, d, v, rounds, chunk_sizes=None):
    h, w, y = make_inputs(n, d, v)
    fns = [contender(nm, (chunk_sizes or {}).get(nm)) for nm in names]
    for fn in fns:  # warm-up
        step(fn, *make_inputs(64, d, 1000))
    times = {nm: [] for nm in names}
    for r in range(rounds):
        order = list(range(len(names)))
        order = order[r % len(order):] + order[: r % len(order)]
        for i in order:
            t0 = time.perf_counter()
            step(fns[i], h, w, y)
            times[names[i]].append(time.perf_counter() - t0)
        print(f"  round {r}: " + "  ".join(f"{nm} {times[nm][-1]:.2f}s" for nm in names),
              flush=True)
    return times


def _quartiles(xs):
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def cpu_table(vocabs, n, d, rounds, threads) -> str:
    lines = [
        f"N={n} tokens, D={d}, float32, mean over class-index targets, {threads} threads. "
        "Extra MiB: peak RSS of one forward + backward above the inputs (fresh process each). "
        f"Time: {rounds} interleaved rounds; s = median [min-max]; ratio = median of per-round "
        "ratios losslab / contender [quartiles].",
        "",
        "| V | contender | extra MiB | losslab memory / this | s (median [min-max]) | "
        "losslab time / this [quartiles] |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for v in vocabs:
        print(f"V={v}: memory", flush=True)
        mem = {nm: measure_memory(nm, n, d, v, None, threads) for nm in CPU_CONTENDERS}
        for nm, m in mem.items():
            print(f"  {nm}: {m['extra_bytes'] / MIB:.1f} MiB", flush=True)
        print(f"V={v}: time", flush=True)
        times = time_rounds(CPU_CONTENDERS, n, d, v, rounds)
        ours = times["losslab"]
        for nm in CPU_CONTENDERS:
            ts = times[nm]
            ratios = [a / b for a, b in zip(ours, ts)]
            q1, q3 = _quartiles(ratios)
            mem_ratio = mem["losslab"]["extra_bytes"] / mem[nm]["extra_bytes"]
            lines.append(
                f"| {v} | {nm} | {mem[nm]['extra_bytes'] / MIB:.0f} | {mem_ratio:.3f} | "
                f"{statistics.median(ts):.2f} [{min(ts):.2f}-{max(ts):.2f}] | "
                f"{statistics.median(ratios):.2f} [{q1:.2f}-{q3:.2f}] |"
            )
    return "\n".join(lines)


def chunk_sweep(v, n, d, rounds, threads, sizes=(64, 128, 256, 512, 1024, 2048)) -> str:
    lines = [
        f"losslab's chunk size (tokens per chunk), N={n}, D={d}, V={v}, float32, {threads} "
        f"threads; auto = {lt_auto_rows(n, d, v)}.",
        "",
        "| chunk | extra MiB | s (median [min-max]) |",
        "|---:|---:|---:|",
    ]
    names = [f"losslab@{c}" for c in sizes]
    h, w, y = make_inputs(n, d, v)
    fns = {nm: contender("losslab", c) for nm, c in zip(names, sizes)}
    times = {nm: [] for nm in names}
    for r in range(rounds):
        for nm in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            step(fns[nm], h, w, y)
            times[nm].append(time.perf_counter() - t0)
    for nm, c in zip(names, sizes):
        mem = measure_memory("losslab", n, d, v, c, threads)
        ts = times[nm]
        lines.append(f"| {c} | {mem['extra_bytes'] / MIB:.0f} | {statistics.median(ts):.2f} "
                     f"[{min(ts):.2f}-{max(ts):.2f}] |")
    return "\n".join(lines)


def lt_auto_rows(n, d, v) -> int:
    from losslab.losses.linear_cross_entropy import chunk_rows

    return chunk_rows(n, v, d, itemsize=4)


# --- CUDA ---------------------------------------------------------------------------------------


def cuda_table(vocabs, n, d, rounds, dtype) -> str:
    names = ["losslab", "composed"]
    for extra in ("liger", "cce"):
        try:
            contender(extra)
            names.append(extra)
        except ImportError:
            print(f"{extra} not importable: skipped", flush=True)
    lines = [
        f"CUDA ({torch.cuda.get_device_name()}), N={n}, D={d}, {dtype}; extra MiB = "
        "torch.cuda.max_memory_allocated above the inputs; ms = median of "
        f"{rounds} interleaved rounds.",
        "",
        "| V | contender | extra MiB | ms (median [min-max]) |",
        "|---:|---|---:|---:|",
    ]
    for v in vocabs:
        h, w, y = make_inputs(n, d, v, "cuda", dtype)
        fns = {nm: contender(nm) for nm in names}
        mem = {}
        for nm, fn in fns.items():
            step(fn, h, w, y)
            torch.cuda.synchronize()
            h.grad = w.grad = None
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            step(fn, h, w, y)
            torch.cuda.synchronize()
            mem[nm] = torch.cuda.max_memory_allocated() - base
        times = {nm: [] for nm in names}
        for r in range(rounds):
            for nm in names[r % len(names):] + names[: r % len(names)]:
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                step(fns[nm], h, w, y)
                torch.cuda.synchronize()
                times[nm].append(time.perf_counter() - t0)
        for nm in names:
            ts = [t * 1e3 for t in times[nm]]
            lines.append(f"| {v} | {nm} | {mem[nm] / MIB:.0f} | {statistics.median(ts):.2f} "
                         f"[{min(ts):.2f}-{max(ts):.2f}] |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, nargs="+", default=[32000, 128000])
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--features", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--chunk-sweep", action="store_true")
    ap.add_argument("--memory-child", nargs=5, metavar=("NAME", "N", "D", "V", "CHUNK"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        name, n, d, v, c = args.memory_child
        print(json.dumps(measure_memory_here(name, int(n), int(d), int(v), int(c) or None)))
        return
    OUT.mkdir(exist_ok=True)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("no CUDA device: the GPU benchmark is skipped")
            return
        text = "\n\n".join(
            cuda_table(args.vocab, args.tokens, args.features, args.rounds, dt)
            for dt in (torch.float32, torch.bfloat16)
        )
        path = OUT / "linear_cross_entropy_cuda.md"
    elif args.chunk_sweep:
        text = chunk_sweep(args.vocab[0], args.tokens, args.features, args.rounds, args.threads)
        path = OUT / "linear_cross_entropy_chunks.md"
    else:
        text = cpu_table(args.vocab, args.tokens, args.features, args.rounds, args.threads)
        path = OUT / f"linear_cross_entropy_V{'_'.join(map(str, args.vocab))}.md"
    load = os.getloadavg()[0]
    text += f"\n\n(load average at the end: {load:.2f})\n"
    print(text)
    path.write_text(text)


if __name__ == "__main__":
    main()
