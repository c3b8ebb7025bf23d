"""Checks a family test runs over a loss's OPTIONS (the catalog-wide tests run the defaults only):
closed-form gradients against central finite differences, and the Hessian's diagonal and
Hessian-vector products against finite differences of that gradient, all in float64.

Imported by the family test files as ``from family_checks import ...``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gradcheck import as_tuple, assert_fd_grad

import losslab


def assert_second_order(loss: Any, inputs: list, rng: np.random.Generator, eps: float = 1e-6,
                        rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """``hvp`` and ``hess`` w.r.t. the first differentiable input equal central differences of
    ``grad`` (the diagonal entry by entry)."""
    i0 = loss.spec.inputs.index(loss.spec.differentiable[0])
    inputs = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in inputs]
    x = inputs[i0]

    def g(z: np.ndarray) -> np.ndarray:
        args = list(inputs)
        args[i0] = z
        return np.asarray(as_tuple(loss.grad(*args))[0], dtype=np.float64)

    v = rng.normal(size=x.shape)
    np.testing.assert_allclose(
        loss.hvp(*inputs, v=v), (g(x + eps * v) - g(x - eps * v)) / (2 * eps), rtol=rtol, atol=atol,
        err_msg="hvp",
    )
    diag = np.empty(x.size)
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = eps
        e = e.reshape(x.shape)
        diag[j] = ((g(x + e) - g(x - e)) / (2 * eps)).reshape(-1)[j]
    np.testing.assert_allclose(np.asarray(loss.hess(*inputs)).reshape(-1), diag, rtol=rtol,
                               atol=atol, err_msg="hess diagonal")


def check_options(name: str, grid: list[dict], seeds: int = 2, second: bool = True,
                  reductions: tuple[str, ...] = ("sum", "none"), **tol: float) -> None:
    """For every option set in ``grid`` and each reduction: FD gradients (every differentiable
    input) and, where the loss has them and ``second``, FD Hessians."""
    for options in grid:
        for reduction in reductions:
            loss = losslab.get(name, **options, reduction=reduction)
            rng = np.random.default_rng(sum(map(ord, repr(sorted(options.items())))))
            for _ in range(seeds):
                inputs = list(loss.example(rng, "float64"))
                try:
                    assert_fd_grad(loss, inputs, **tol)
                    if second and loss.spec.hessian is not None:
                        assert_second_order(loss, inputs, rng)
                except AssertionError as exc:
                    raise AssertionError(f"{name} {options} {reduction}: {exc}") from None
