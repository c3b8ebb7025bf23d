"""Shared test helpers: central finite differences, and torch references.

Imported by the test files as ``from gradcheck import ...`` (pytest puts ``tests/`` on sys.path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from losslab.gradcheck import numerical_grad  # noqa: F401  (one implementation, re-exported)


def as_tuple(g: Any) -> tuple:
    return g if isinstance(g, tuple) else (g,)


def assert_fd_grad(
    loss: Any,
    inputs: Sequence[np.ndarray],
    *,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    eps: float = 1e-6,
) -> None:
    """The loss's closed-form gradient equals central finite differences (float64 inputs)."""
    from losslab.gradcheck import check_gradient

    report = check_gradient(loss, inputs, eps=eps)
    for name, (analytic, numeric) in report.items():
        np.testing.assert_allclose(
            analytic, numeric, rtol=rtol, atol=atol, err_msg=f"gradient w.r.t. {name}"
        )


def assert_fd_derivatives(loss: Any, inputs: Sequence[np.ndarray], rng: Any) -> None:
    """Gradient, Hessian diagonal and a Hessian-vector product (along a random ``v``) against
    central finite differences (float64, step 1e-6) of the loss and of its own gradient: what the
    catalog-wide tests check on default options, for any configured loss."""
    inputs = [np.array(a, copy=True) for a in inputs]
    assert_fd_grad(loss, inputs)
    i0 = loss.spec.inputs.index(loss.spec.differentiable[0])
    x = inputs[i0]

    def g(z: np.ndarray) -> np.ndarray:
        args = list(inputs)
        args[i0] = z
        out = loss.grad(*args)
        return out[0] if isinstance(out, tuple) else out

    eps = 1e-6
    v = rng.normal(size=x.shape)
    np.testing.assert_allclose(
        loss.hvp(*inputs, v=v), (g(x + eps * v) - g(x - eps * v)) / (2 * eps),
        rtol=1e-5, atol=1e-6, err_msg="Hessian-vector product",
    )
    diag = np.empty(x.size)
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = eps
        e = e.reshape(x.shape)
        diag[j] = ((g(x + e) - g(x - e)) / (2 * eps)).reshape(-1)[j]
    h = loss.hess(*inputs)
    assert h.shape == x.shape and h.dtype == x.dtype
    np.testing.assert_allclose(h.reshape(-1), diag, rtol=1e-5, atol=1e-6, err_msg="Hessian")


def torch_value_and_grad(
    fn: Callable[..., Any], inputs: Sequence[Any], diff: Sequence[int], **kwargs: Any
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Value of ``fn(*inputs, **kwargs)`` and autograd gradients w.r.t. ``inputs[i]`` for i in diff.

    NumPy arrays become tensors (kept dtype); the backward seed is a tensor of ones, which for
    ``reduction='none'`` gives the gradient of the sum, as losslab's contract says.
    """
    import torch

    tensors = []
    for i, a in enumerate(inputs):
        if isinstance(a, np.ndarray):
            t = torch.tensor(np.array(a, copy=True))
            if i in diff:
                t.requires_grad_(True)
            tensors.append(t)
        else:
            tensors.append(a)
    kw = {
        k: (torch.tensor(np.array(v, copy=True)) if isinstance(v, np.ndarray) else v)
        for k, v in kwargs.items()
    }
    out = fn(*tensors, **kw)
    out.backward(torch.ones_like(out))
    grads = tuple(tensors[i].grad.detach().numpy() for i in diff)
    return out.detach().numpy(), grads


def generic_adapter_names() -> list[str]:
    """The catalog losses that losslab.torch and losslab.jax export by wrapping the catalog's
    formula (the others, ``adapters="dedicated"``, have their own implementations and tests)."""
    import losslab

    return [n for n in losslab.available() if losslab.spec(n).adapters == "generic"]


def runs_on(name: str, namespace: str) -> bool:
    """Whether catalog loss ``name``'s formula runs on arrays of ``namespace``."""
    import losslab

    spaces = losslab.spec(name).namespaces
    return spaces is None or namespace in spaces


def catalog_cases(names: Sequence[str] | None = None) -> tuple[list, list[str]]:
    """``(cases, ids)``: one ``(name, options)`` per catalog loss and reduction it accepts
    (``kl_div`` includes ``"batchmean"``), for parametrizing a test over the whole catalog."""
    import losslab

    cases = []
    for name in losslab.available() if names is None else names:
        spec = losslab.spec(name)
        if "reduction" in spec.defaults:
            cases += [(name, {"reduction": r}) for r in spec.reductions]
        else:
            cases.append((name, {}))
    ids = [f"{n}-{c.get('reduction', 'default')}" for n, c in cases]
    return cases, ids


def catalog_function(name: str) -> Callable[..., tuple[Any, Any]]:
    """``f(*inputs, compute_grad=True, **options) -> (value, grad or None)``: a catalog loss as one
    function call (what the family functions were before the declarative contract; the tests
    written against that signature use it)."""
    import losslab

    def f(*inputs: Any, compute_grad: bool = True, **options: Any) -> tuple[Any, Any]:
        loss = losslab.get(name, **options)
        return loss.value_and_grad(*inputs) if compute_grad else (loss(*inputs), None)

    f.__name__ = name
    return f
