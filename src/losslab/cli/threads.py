"""The BLAS's thread count while a command trains small models: one thread.

NumPy's BLAS (OpenBLAS) starts as many threads as there are cores and splits every matrix
product among them. The models a lesson trains are small (a batch of 256 rows times a 128 x 128
weight): splitting them buys nothing, and on a machine whose cores are busy with other work the
threads wait for each other, spinning. Measured on a 2-core machine while other work
shared it (BENCHMARKS.md, ``benchmarks/bench_overfit.py``): ``losslab overfit`` took a median 228 s
wall and 92 s CPU with the default two threads, 17 s and 8 s with one.

``blas_threads(n)`` limits the BLAS to ``n`` threads inside a ``with`` block and restores it
afterwards, through ``threadpoolctl`` (installed with scikit-learn, which the ``cli`` extra
brings); without ``threadpoolctl`` it changes nothing and says so by yielding False.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["blas_threads"]


@contextlib.contextmanager
def blas_threads(limit: int | None) -> Iterator[bool]:
    """Inside the block, the BLAS uses at most ``limit`` threads (None: leave it); yields
    whether a limit is in force."""
    if limit is None:
        yield False
        return
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=limit, user_api="blas"):
        yield True
