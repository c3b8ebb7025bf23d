"""Cache-blocked, multi-threaded evaluation of row-wise losses on NumPy arrays.

NumPy runs each elementwise operation as a separate pass over memory, on one core. A loss written
as ten array expressions therefore streams its input through main memory ten times. For a loss
whose per-sample terms depend only on that sample's row (every elementwise loss, cross-entropy
over classes, Dice per sample, ...), we instead run the *same* catalog function on blocks of a few
hundred kilobytes: the ten passes then hit the CPU cache, the gradient is written once into its
final buffer, and the blocks are shared among threads (NumPy releases the GIL in its loops).

This is an executor, not a second implementation: the arithmetic is the catalog formula's own,
called on each block, whose per-item losses are summed (or kept, for ``"none"``) and whose
gradient is asked for with the reduction's weights (``Items.grad(w)``: the mean's ``1/n``, a block
of sample weights) and written straight into its final buffer. The catalog entry says whether a
loss may be split this way (``LossSpec.rowwise``) and, for the mean, what it divides by
(``LossSpec.mean_denominator``, known before the blocks run).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

# Below this many input elements the threads cost more than they save.
MIN_ELEMENTS = 1 << 18
# About 512 KiB of float32 per block: big enough that the per-call Python overhead of a loss
# function is small against its arithmetic, small enough that its temporaries stay in cache.
BLOCK_ELEMENTS = 1 << 17
# torch blocks are this many times larger (each torch operation splits a block among its own
# intra-op threads and costs more Python dispatch than NumPy's). Measured over the torch rows of
# benchmarks/bench_contract.py at 1, 2, 4 and 16 (quiet machine, 21 paired rounds against the
# previous code): 2 is the best compromise. The cheap losses want larger blocks (mse 1.03x at
# 1, 0.97x at 2), the long formulas smaller ones (focal 0.65x at 1, 0.78x at 2, 0.82x at 4;
# bce_with_logits 0.87x, 0.92x, 1.07x); at 16 every row is 1.3-1.7x.
TORCH_BLOCK_FACTOR = 2

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def num_threads() -> int:
    """Worker threads: ``LOSSLAB_NUM_THREADS`` or the CPUs this process may run on."""
    env = os.environ.get("LOSSLAB_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=num_threads(), thread_name_prefix="losslab")
        return _pool


def host(a: Any) -> Any:
    """A NumPy view of a CPU torch tensor (zero copy); anything else unchanged."""
    return a.detach().numpy() if _is_torch_cpu(a) else a


def _is_torch_cpu(a: Any) -> bool:
    return type(a).__module__.startswith("torch") and getattr(a, "device", None) is not None and (
        a.device.type == "cpu"
    )


def applicable(spec: Any, inputs: list[Any], options: dict[str, Any], sample_weight: Any) -> bool:
    """True when ``spec`` may be evaluated block by block on these inputs.

    The loss must be row-wise, the inputs all NumPy arrays or all CPU torch tensors outside
    autograd (whose operations write into slices of a preallocated buffer and release the GIL),
    large enough to pay for the blocking. On torch only elementwise losses: the class-axis ones
    make few passes and keep one input-sized buffer already, and per-block call overhead made
    them slower (benchmarks/bench_torch_memory.py: poly1 9.6 ms blocked vs 8.4-9.0 direct);
    per-sample ones (dice, ...) would add a block buffer to a peak that is the gradient alone.
    """
    if not spec.rowwise:
        return False
    numpy_inputs = all(isinstance(a, np.ndarray) for a in inputs)
    if not numpy_inputs:
        if not (all(_is_torch_cpu(a) for a in inputs) and spec.layout == "elementwise"):
            return False
        import torch

        if torch.is_grad_enabled() and any(a.requires_grad for a in inputs):
            return False  # autograd is recording the formula (double backward)
    first = inputs[0]
    if first.ndim < 1 or _size(first) < MIN_ELEMENTS:
        return False
    n = first.shape[0]
    if any(a.ndim == 0 or a.shape[0] != n for a in inputs):
        return False
    # Option arrays that vary along the batch axis would need slicing too; leave those alone.
    for v in options.values():
        if hasattr(v, "ndim") and hasattr(v, "shape") and v.ndim >= first.ndim:
            return False
    return sample_weight is None or sample_weight.ndim == 0 or int(sample_weight.shape[0]) in (1, n)


def _size(a: Any) -> int:
    n = 1
    for d in a.shape:
        n *= int(d)
    return n


def evaluate(
    spec: Any,
    xp: Any,
    inputs: list[Any],
    options: dict[str, Any],
    reduction: str,
    weights: tuple[Any, Any] | None,
    denominator: float | None,
    want_grad: bool,
) -> tuple[Any, Any]:
    """``(value, grad)`` of ``spec.fn`` on ``inputs``, block by block; the same results as one
    call up to the order of the sums. ``weights`` are the sample weights laid over the first
    input and shaped like the per-item losses (or None); ``denominator`` is what ``"mean"``
    divides by."""
    first = inputs[0]
    on_numpy = isinstance(first, np.ndarray)
    n, rows, starts = _blocks(first)
    diff_idx = [spec.inputs.index(d) for d in spec.differentiable]
    grads: list[Any] = [_empty_like(inputs[i]) for i in diff_idx] if want_grad else []
    # Nothing to average over (every target ignored): NaN value and a zero gradient, as torch.
    scale = 1.0
    if reduction == "mean":
        scale = 1.0 / denominator if denominator else 0.0
    nones: list[Any] = [None] * len(starts)
    sums = np.zeros(len(starts), dtype=np.float64)

    def rows_of(a: Any, r0: int, r1: int) -> Any:
        return a[r0:r1] if a.ndim and a.shape[0] == n and n != 1 else a

    def work(block_ids: range) -> None:
        for b in block_ids:
            r0 = starts[b]
            r1 = min(r0 + rows, n)
            items = spec.fn(xp, *[a[r0:r1] for a in inputs], **options)
            laid = per_item = None
            if weights is not None:
                laid, per_item = (rows_of(a, r0, r1) for a in weights)
            values = items.per_item() if per_item is None else items.per_item() * per_item
            if reduction == "none":
                nones[b] = values
            else:
                sums[b] = float(xp.sum(values))
            if want_grad:
                # Unscaled (weight 1.0: formulas skip that multiply), then scaled while copied
                # into place: one pass instead of two.
                g = items.grad(1.0 if laid is None else laid)
                for out, gi in zip(grads, g if isinstance(g, tuple) else (g,)):
                    _scaled_copy(out[r0:r1], gi, scale)

    _share(work, len(starts), on_numpy)

    if reduction == "none":
        value = _concat(nones)
    else:
        total = sums.sum() * scale if scale or reduction == "sum" else np.nan
        value = _scalar_like(total, first)
    if not want_grad:
        return value, None
    return value, (tuple(grads) if len(grads) > 1 else grads[0])


def second_order(
    spec: Any,
    xp: Any,
    inputs: list[Any],
    options: dict[str, Any],
    reduction: str,
    weights: tuple[Any, Any] | None,
    denominator: float | None,
    which: str,
) -> tuple[Any, Any]:
    """``(grad, second)`` of ``spec.fn`` on ``inputs``, block by block, where ``second`` is the
    ``Items`` closure named by ``which`` ("hess" or "fisher"): the same arrays as one call (no
    sums are involved, so to the last bit). No per-item values are summed; a formula whose
    ``values`` are lazy (a callable) never computes them here."""
    first = inputs[0]
    on_numpy = isinstance(first, np.ndarray)
    n, rows, starts = _blocks(first)
    grads = [_empty_like(inputs[spec.inputs.index(d)]) for d in spec.differentiable]
    second = _empty_like(first)
    scale = 1.0
    if reduction in ("mean", "batchmean"):
        scale = 1.0 / denominator if denominator else 0.0
    missing: list[str] = []

    def work(block_ids: range) -> None:
        for b in block_ids:
            r0 = starts[b]
            r1 = min(r0 + rows, n)
            items = spec.fn(xp, *[a[r0:r1] for a in inputs], **options)
            w: Any = 1.0
            if weights is not None:
                laid = weights[0]
                w = laid[r0:r1] if laid.ndim and laid.shape[0] == n and n != 1 else laid
            closure = getattr(items, which)
            if closure is None:
                missing.append(which)
                return
            # The second derivative first: the gradient may reuse a buffer it reads.
            _scaled_copy(second[r0:r1], closure(w), scale)
            g = items.grad(w)
            for out, gi in zip(grads, g if isinstance(g, tuple) else (g,)):
                _scaled_copy(out[r0:r1], gi, scale)

    _share(work, len(starts), on_numpy)
    if missing:
        raise NotImplementedError(f"{spec.name} defines no Items.{which} for these options.")
    return (tuple(grads) if len(grads) > 1 else grads[0]), second


def _blocks(first: Any) -> tuple[int, int, list[int]]:
    """``(n, rows, starts)``: the batch size, the rows per block and each block's first row."""
    n = first.shape[0]
    block = BLOCK_ELEMENTS if isinstance(first, np.ndarray) else BLOCK_ELEMENTS * TORCH_BLOCK_FACTOR
    rows = max(1, block // max(1, _size(first) // n))
    return n, rows, list(range(0, n, rows))


def _share(work: Any, n_blocks: int, on_numpy: bool) -> None:
    """Run ``work(range of block ids)`` over all blocks. NumPy runs one operation on one core, so
    the blocks are shared among threads; torch already spreads each operation over its own
    intra-op threads."""
    workers = min(num_threads(), n_blocks) if on_numpy else 1
    chunk = -(-n_blocks // workers)
    groups = [range(i, min(i + chunk, n_blocks)) for i in range(0, n_blocks, chunk)]
    if len(groups) == 1:
        work(groups[0])
    else:
        for f in [_executor().submit(work, g) for g in groups]:
            f.result()


def _empty_like(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        return np.empty_like(a)
    import torch

    return torch.empty_like(a, memory_format=torch.contiguous_format)


def _scaled_copy(out: Any, g: Any, scale: float) -> None:
    if isinstance(out, np.ndarray):
        np.multiply(g, out.dtype.type(scale), out=out)
    else:
        import torch

        torch.mul(g, scale, out=out)


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts, axis=0)
    import torch

    return torch.cat(parts, dim=0)


def _scalar_like(total: float, like: Any) -> Any:
    if isinstance(like, np.ndarray):
        return np.asarray(total, dtype=like.dtype)
    import torch

    return torch.tensor(total, dtype=like.dtype, device=like.device)
