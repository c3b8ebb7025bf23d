"""Each speed primitive of losses/_primitives.py against the plain code it replaces, same run.

A trick stays only where its row shows it pays (issue 9). Each row times the primitive and the
plain alternative in rounds that run both back to back (order alternating) and gives the median
of the per-round ratio primitive / plain with its quartiles; below 1 means the primitive is
faster. 4M float32 elements (a 4096 x 1000 batch for the class-axis ones) unless stated.

    python3 benchmarks/bench_primitives.py [--rounds 21]

Writes a Markdown table to benchmarks/results/primitives.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import array_api_compat
import numpy as np
import torch

from losslab.losses import _primitives as P

OUT = Path(__file__).resolve().parent / "results"


def paired(new, old, rounds: int) -> tuple[float, float, float, float, float]:
    new(), old()
    tn, to, ratios = [], [], []
    for r in range(rounds):
        first, second = (old, new) if r % 2 else (new, old)
        t0 = time.perf_counter()
        first()
        t1 = time.perf_counter()
        second()
        t2 = time.perf_counter()
        a, b = (t2 - t1, t1 - t0) if r % 2 else (t1 - t0, t2 - t1)
        tn.append(a)
        to.append(b)
        ratios.append(a / b)
    q = statistics.quantiles(ratios, n=4)
    return statistics.median(tn), statistics.median(to), statistics.median(ratios), q[0], q[2]


def _corrected_log1p(e: np.ndarray) -> np.ndarray:
    u = 1.0 + e
    return np.log(u) - ((u - 1.0) - e) / u


def _paired_log1p_sum(v: np.ndarray) -> float:
    h = v.size // 2
    a, b = v[:h], v[h : 2 * h]
    return float(np.sum(np.log1p(a * b + a + b)) + np.sum(np.log1p(v[2 * h :])))


def rows(rng: np.random.Generator):
    n = 1 << 22
    e = rng.random(n, dtype=np.float32)
    v = (rng.random(n, dtype=np.float32) * 1e3).astype(np.float32)
    q = rng.random(n, dtype=np.float32)
    x = rng.standard_normal(n, dtype=np.float32)
    ex = np.exp(-np.abs(x))
    # Two tricks of the previous code, kept here as rows to show why they were removed: NumPy
    # 2.4's log1p is vectorised, so neither the corrected log nor pairing logarithms pays.
    yield ("removed: corrected log1p (NumPy)", "log(u) - ((u - 1) - e) / u vs np.log1p",
           lambda: _corrected_log1p(e), lambda: np.log1p(e))
    yield ("removed: paired log1p sum (NumPy)", "log1p(a + b + ab) on halves vs sum(log1p(v))",
           lambda: _paired_log1p_sum(v), lambda: np.sum(np.log1p(v)))
    yield ("power(q, 2) (NumPy)", "q * q vs q ** 2.0",
           lambda: P.power(np, q, 2.0), lambda: q**2.0)
    yield ("sigmoid_from (NumPy)", "exp(min(x, 0)) / (1 + e) vs a where() of two branches",
           lambda: P.sigmoid_from(np, x, ex),
           lambda: np.where(x >= 0, 1.0 / (1.0 + ex), ex / (1.0 + ex)))

    def logistic_plain():
        # the same formulas written out of place (focal's code before the primitive)
        hi, lo = np.maximum(x, 0.0), np.minimum(x, 0.0)
        a, b = np.exp(lo), np.exp(-hi)
        e = a * b
        inv = 1.0 / (1.0 + e)
        return hi, lo, e, a * inv, b * inv

    yield ("logistic_parts (NumPy)", "in place over its own temporaries vs the same formulas "
           "out of place", lambda: P.logistic_parts(np, x), logistic_plain)

    def scaled_new():
        g = x * 2.0
        return P.scaled(g, 0.5)

    def scaled_old():
        g = x * 2.0
        return 0.5 * g

    yield ("scaled (NumPy)", "in place on a fresh 16 MB gradient vs w * g", scaled_new, scaled_old)
    big = rng.standard_normal((4096, 1000), dtype=np.float32)
    labels = rng.integers(0, 1000, size=(4096, 1))

    def softmax_new():
        sm = P.SoftmaxPass(np, big, labels)
        return sm.log_p_y, sm.combine(1.0, labels, 1.0)

    def softmax_old():
        m = np.max(big, axis=1, keepdims=True)
        z = big - m
        lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        logp = z - lse
        g = np.exp(logp)
        onehot = np.zeros_like(g)
        np.put_along_axis(onehot, labels, 1.0, axis=1)
        return np.take_along_axis(logp, labels, axis=1), g - onehot

    yield ("SoftmaxPass + combine (NumPy)", "one buffer, in-place gradient vs log_softmax, "
           "exp and a float one-hot", softmax_new, softmax_old)
    tb, tl = torch.from_numpy(big), torch.from_numpy(labels)
    xt = array_api_compat.array_namespace(tb)

    def softmax_torch_new():
        sm = P.SoftmaxPass(xt, tb, tl)
        return sm.log_p_y, sm.combine(1.0, tl, 1.0)

    def softmax_torch_old():
        logp = torch.log_softmax(tb, dim=1)
        g = logp.exp()
        return logp.gather(1, tl), g - torch.nn.functional.one_hot(tl[:, 0], 1000)

    yield ("SoftmaxPass + combine (torch)", "fused softmax, scatter vs log_softmax, exp, one_hot",
           softmax_torch_new, softmax_torch_old)
    g0 = np.zeros((4096, 1000), dtype=np.float32)
    vals = rng.random((4096, 1), dtype=np.float32)

    def at_new():
        return P.add_at_labels(np, g0.copy(), labels, vals)

    def at_old():
        onehot = np.zeros_like(g0)
        np.put_along_axis(onehot, labels, 1.0, axis=1)
        return g0.copy() + vals * onehot

    yield ("add_at_labels (NumPy)", "gather/scatter vs a float one-hot", at_new, at_old)
    p = rng.random((16, 4, 256, 256), dtype=np.float32)
    t = (rng.random((16, 4, 256, 256)) < 0.5).astype(np.float32)
    yield ("row_dot (NumPy)", "vecdot per sample vs sum(p * t)",
           lambda: P.row_dot(np, p, t), lambda: np.sum(p * t, axis=(1, 2, 3), keepdims=True))
    pt, tt = torch.from_numpy(p), torch.from_numpy(t)
    xpt = array_api_compat.array_namespace(pt)
    yield ("row_dot (torch, long rows)", "one torch.dot per row vs sum(p * t)",
           lambda: P.row_dot(xpt, pt, tt), lambda: torch.sum(pt * tt, dim=(1, 2, 3), keepdim=True))
    slope = rng.random((16, 1, 1, 1), dtype=np.float32)
    offset = rng.random((16, 1, 1, 1), dtype=np.float32)
    yield ("row_affine (NumPy)", "t * slope then += offset vs t * slope + offset",
           lambda: P.row_affine(np, t, slope, offset), lambda: t * slope + offset)
    st, ot = torch.from_numpy(slope), torch.from_numpy(offset)
    yield ("row_affine (torch, long rows)", "torch.add per row vs addcmul",
           lambda: P.row_affine(xpt, tt, st, ot), lambda: torch.addcmul(ot, tt, st))
    xtt = torch.from_numpy(q)
    yield ("within (torch)", "one aminmax vs min and max",
           lambda: P.within(xt, xtt, 0.0, 1.0),
           lambda: bool(torch.min(xtt) >= 0.0) and bool(torch.max(xtt) <= 1.0))
    a = np.abs(x)
    yield ("clamp_above (NumPy, nothing to clamp)", "one max reduction vs minimum(a, 20)",
           lambda: P.clamp_above(np, a, 20.0), lambda: np.minimum(a, 20.0))
    yield from _lattice_rows(rng)


def _strided_forward(emit: torch.Tensor, skip_add: torch.Tensor) -> torch.Tensor:
    """The CTC forward recursion on (N, S) frames of a (T, N, S + 2) buffer, the layout
    ``Lattice`` replaced (its frames' views made once, as there)."""
    t_len, n, s_len = emit.shape
    alpha = emit.new_full((t_len, n, s_len + 2), -np.inf)
    alpha[0, :, 2:4] = emit[0, :, :2]
    tmp = torch.empty_like(emit[0])
    here, back1, back2 = (alpha[:, :, k : k + s_len].unbind(0) for k in (2, 1, 0))
    emits = emit.unbind(0)
    for t in range(1, t_len):
        torch.logaddexp(here[t - 1], back1[t - 1], out=here[t])
        torch.add(back2[t - 1], skip_add, out=tmp)
        torch.logaddexp(here[t], tmp, out=here[t])
        torch.add(here[t], emits[t], out=here[t])
    return alpha[:, :, 2:]


def _lattice_rows(rng: np.random.Generator):
    """CTC's primitives (losses/_lattice.py, exp_flushed) at the issue-14 benchmark's size:
    T=200, N=32, C=50, S=40 (81 states)."""
    from losslab.losses import _lattice as lat

    t_len, n, c, s_len = 200, 32, 50, 81
    lp = torch.from_numpy(rng.standard_normal((t_len, n, c), dtype=np.float32)).log_softmax(2)
    ext = torch.from_numpy(rng.integers(0, c, size=(n, s_len)))
    xt = array_api_compat.array_namespace(lp)
    # log-posteriors as CTC's: most far below float's normal range, a fifth -inf
    logpost = torch.from_numpy(-rng.uniform(0.0, 300.0, size=(t_len, n, s_len)).astype(np.float32))
    logpost[torch.from_numpy(rng.random((t_len, n, s_len)) < 0.2)] = -np.inf
    yield ("exp_flushed (torch, CTC log-posteriors)", "clamp, exp, threshold vs torch.exp",
           lambda: P.exp_flushed(xt, logpost), lambda: torch.exp(logpost))
    yield ("gather_states (torch)", "gather, index broadcast by a stride-0 view vs "
           "take_along_dim", lambda: lat.gather_states(xt, lp, ext),
           lambda: torch.take_along_dim(lp, ext[None], dim=2))
    occ = torch.from_numpy(rng.random((t_len, n, s_len), dtype=np.float32))
    onehot = torch.nn.functional.one_hot(ext, c).to(torch.float32)
    yield ("sum_states_by_class (torch)", "scatter_add_ vs bmm with a one-hot",
           lambda: lat.sum_states_by_class(xt, occ, ext, c),
           lambda: torch.bmm(occ.permute(1, 0, 2), onehot).permute(1, 0, 2))
    skip = torch.from_numpy(rng.random((n, s_len)) < 0.4)
    skip[:, :2] = False
    emit = lat.gather_states(xt, lp, ext)
    skip_add = torch.where(skip, 0.0, -np.inf)
    yield ("Lattice.forward (torch, flat rows)", "one flat row a frame vs (N, S) strided frames",
           lambda: lat.Lattice(xt, emit, skip).forward(), lambda: _strided_forward(emit, skip_add))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--only", default="", help="comma-separated texts: the rows whose label "
                        "contains one (printed; the results file is written by full runs only)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    results = []
    for label, what, new, old in rows(np.random.default_rng(0)):
        if args.only and not any(part in label for part in args.only.split(",")):
            continue
        tn, to, r, q1, q3 = paired(new, old, args.rounds)
        results.append((label, what, tn, to, r, q1, q3))
        print(f"{label:40s} {tn * 1e3:8.2f} ms vs {to * 1e3:8.2f} ms  ratio {r:.2f} "
              f"[{q1:.2f}-{q3:.2f}]", flush=True)
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
        f"torch {torch.__version__}; {args.rounds} paired rounds, float32.",
        "",
        "| primitive | against | primitive (ms) | plain (ms) | ratio (median) | quartiles |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, what, tn, to, r, q1, q3 in results:
        lines.append(f"| {label} | {what} | {tn * 1e3:.2f} | {to * 1e3:.2f} | {r:.2f} | "
                     f"{q1:.2f}-{q3:.2f} |")
    text = "\n".join(lines)
    print(text)
    if not args.only:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "primitives.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
