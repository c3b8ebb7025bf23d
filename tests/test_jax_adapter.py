"""losslab.jax: every catalog loss as a jax.custom_vjp function.

Over the whole catalog (parametrized by ``losslab.available()``): values equal the NumPy catalog,
``jax.grad``/``jax.vjp`` equal central finite differences (random cotangents for
``reduction="none"``), and ``jax.jit`` and ``jax.vmap`` give the same numbers. For a
representative subset the gradients also equal ``jax.grad`` of a direct jnp implementation.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="jax is not installed (pip install 'losslab[jax]')")
jax.config.update("jax_enable_x64", True)  # float64, for finite differences

import jax.numpy as jnp  # noqa: E402
from gradcheck import catalog_cases, generic_adapter_names  # noqa: E402

import losslab  # noqa: E402
import losslab.jax as lj  # noqa: E402
from losslab.gradcheck import numerical_grad  # noqa: E402

NAMES = generic_adapter_names()
REDUCTIONS = ("mean", "sum", "none")
CASES, IDS = catalog_cases(NAMES)


def _example(name, options, seed=0, dtype="float64"):
    spec = losslab.spec(name)
    arrays = spec.example(np.random.default_rng(seed), dtype, **options)
    diff = [
        i
        for i, (n, a) in enumerate(zip(spec.inputs, arrays))
        if n in spec.differentiable and np.issubdtype(np.asarray(a).dtype, np.floating)
    ]
    return [np.asarray(a) for a in arrays], diff


def _as_fn(name, arrays, diff, options, jit=False):
    """f(*differentiable inputs) -> loss, the other inputs fixed."""
    fixed = [jnp.asarray(a) for a in arrays]

    def f(*d):
        args = list(fixed)
        for i, x in zip(diff, d):
            args[i] = x
        return getattr(lj, name)(*args, **options)

    return jax.jit(f) if jit else f


def test_import_losslab_jax_does_not_import_torch():
    code = "import sys, losslab.jax; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# Eager for mean and none, jit for sum and none: every reduction and both modes, without paying
# for all six combinations (each JAX compile costs ~0.1 s on the 2-core CI machine).
JIT_CASES = [
    (n, c, jit)
    for n, c in CASES
    for jit in (False, True)
    if c.get("reduction", "none") == "none" or (c["reduction"] == "sum") == jit
]


@pytest.mark.parametrize(
    ("name", "options", "jit"),
    JIT_CASES,
    ids=[f"{n}-{c.get('reduction', 'default')}-{'jit' if j else 'eager'}" for n, c, j in JIT_CASES],
)
def test_value_and_vjp_equal_catalog_and_finite_differences(name, options, jit):
    arrays, diff = _example(name, options, seed=1)
    f = _as_fn(name, arrays, diff, options, jit=jit)
    primals = [jnp.asarray(arrays[i]) for i in diff]
    value, pullback = jax.vjp(f, *primals)
    ref = losslab.get(name, **options)(*arrays)
    np.testing.assert_allclose(np.asarray(value), ref, rtol=1e-10, atol=1e-12)
    assert value.dtype == jnp.float64 and value.shape == np.shape(ref)
    # A random cotangent: for reduction="none" this checks that each per-element loss (a row for
    # cross_entropy or triplet_margin) is scaled by its own cotangent.
    g = np.random.default_rng(2).uniform(0.5, 1.5, size=np.shape(ref))
    got = pullback(jnp.asarray(g))
    loss = losslab.get(name, **options)

    def weighted(*args):
        return float(np.sum(g * np.asarray(loss(*args), dtype=np.float64)))

    for i, gi in zip(diff, got):
        num = numerical_grad(weighted, arrays, i)
        np.testing.assert_allclose(np.asarray(gi), num, rtol=1e-5, atol=1e-7,
                                   err_msg=losslab.spec(name).inputs[i])


VMAP_CASES = [(n, c) for n, c in CASES if c.get("reduction") != "sum"]


@pytest.mark.parametrize(
    ("name", "options"), VMAP_CASES, ids=[f"{n}-{c.get('reduction')}" for n, c in VMAP_CASES]
)
def test_vmap_equals_a_loop(name, options):
    """vmap over a stack of two examples of the same shapes (the second a fresh draw when the
    example shapes allow, else the first again)."""
    a0, diff = _example(name, options, seed=3)
    a1 = next(
        (
            arr
            for s in range(4, 40)
            for arr in [_example(name, options, seed=s)[0]]
            if [x.shape for x in arr] == [x.shape for x in a0]
        ),
        a0,
    )
    stacked = [jnp.stack([jnp.asarray(x), jnp.asarray(y)]) for x, y in zip(a0, a1)]
    fn = getattr(lj, name)
    batched = jax.vmap(lambda *xs: fn(*xs, **options))(*stacked)
    for k, arrays in enumerate((a0, a1)):
        np.testing.assert_allclose(
            np.asarray(batched[k]), losslab.get(name, **options)(*arrays), rtol=1e-10, atol=1e-12
        )

    def total(*d):
        args = list(stacked)
        for i, x in zip(diff, d):
            args[i] = x
        return jnp.sum(jax.vmap(lambda *xs: fn(*xs, **options))(*args))

    grads = jax.grad(total, argnums=tuple(range(len(diff))))(*[stacked[i] for i in diff])
    for k, arrays in enumerate((a0, a1)):
        # jnp.sum of the (N, ...) batch: each example's part is the catalog's gradient contract
        ref = losslab.get(name, **options).grad(*arrays)
        ref = ref if isinstance(ref, tuple) else (ref,)
        for gb, r in zip(grads, ref):
            np.testing.assert_allclose(np.asarray(gb[k]), r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_float32_and_bfloat16_keep_their_dtype(name):
    arrays, diff = _example(name, {}, seed=5, dtype="float32")
    f = _as_fn(name, arrays, diff, {})
    value, grads = jax.value_and_grad(f, argnums=tuple(range(len(diff))))(
        *[jnp.asarray(arrays[i]) for i in diff]
    )
    assert value.dtype == jnp.float32
    assert all(g.dtype == jnp.float32 for g in grads)
    half = [jnp.asarray(arrays[i], dtype=jnp.bfloat16) for i in diff]
    with losslab.value_checks(False):  # rounded probabilities may leave their simplex
        value, grads = jax.value_and_grad(f, argnums=tuple(range(len(diff))))(*half)
    assert value.dtype == jnp.bfloat16 and all(g.dtype == jnp.bfloat16 for g in grads)


def test_value_checks_run_eagerly_and_are_off_under_jit():
    if "cross_entropy" not in NAMES:
        pytest.skip("cross_entropy not in the catalog yet")
    x = jnp.zeros((2, 3))
    y = jnp.asarray([0, 7])
    with pytest.raises(ValueError, match="target"):
        lj.cross_entropy(x, y)
    jax.jit(lj.cross_entropy)(x, y)  # no error: a tracer's values cannot be read


def test_bad_input_and_options():
    with pytest.raises(TypeError, match="delt"):
        lj.mse(jnp.zeros(3), jnp.zeros(3), delt=1.0)
    with pytest.raises(ValueError, match="target"):
        lj.mse(jnp.zeros(3), jnp.zeros(4))
    with pytest.raises(TypeError, match="takes 2 inputs"):
        lj.mse(jnp.zeros(3))


# --- against direct jnp implementations --------------------------------------------------------


def _reduce(l, reduction):
    return {"mean": jnp.mean, "sum": jnp.sum, "none": lambda a: a}[reduction](l)


def _mse(x, y, reduction="mean"):
    return _reduce((x - y) ** 2, reduction)


def _huber(x, y, reduction="mean", delta=1.0):
    d = jnp.abs(x - y)
    return _reduce(jnp.where(d < delta, 0.5 * d**2, delta * (d - 0.5 * delta)), reduction)


def _bce_with_logits(x, y, reduction="mean"):
    return _reduce(jnp.logaddexp(0.0, x) - x * y, reduction)


def _cross_entropy(x, y, reduction="mean", label_smoothing=0.0):
    logp = jax.nn.log_softmax(x, axis=1)
    nll = -jnp.take_along_axis(logp, y[:, None], axis=1)[:, 0]
    smooth = -jnp.mean(logp, axis=1)
    return _reduce((1 - label_smoothing) * nll + label_smoothing * smooth, reduction)


def _focal(x, y, reduction="mean", alpha=0.25, gamma=2.0):
    p = jax.nn.sigmoid(x)
    ce = jnp.logaddexp(0.0, x) - x * y
    p_t = p * y + (1 - p) * (1 - y)
    a_t = alpha * y + (1 - alpha) * (1 - y)
    return _reduce(a_t * ce * (1 - p_t) ** gamma, reduction)


def _dice(p, t, reduction="mean", smooth=1.0):
    axes = tuple(range(1, p.ndim))
    inter = jnp.sum(p * t, axis=axes)
    return _reduce(1 - (2 * inter + smooth) / (jnp.sum(p, axis=axes) + jnp.sum(t, axis=axes)
                                               + smooth), reduction)


def _kl_div(x, y, reduction="mean"):
    return _reduce(jnp.where(y > 0, y * (jnp.log(jnp.where(y > 0, y, 1.0)) - x), 0.0), reduction)


def _triplet(a, p, n, reduction="mean", margin=1.0):
    dp = jnp.linalg.norm(a - p + 1e-6, axis=-1)
    dn = jnp.linalg.norm(a - n + 1e-6, axis=-1)
    return _reduce(jnp.maximum(margin + dp - dn, 0.0), reduction)


def _log_cosh(x, y, reduction="mean"):
    d = x - y
    return _reduce(d + jnp.logaddexp(0.0, -2 * d) - jnp.log(2.0), reduction)


def _data(name, rng):
    x = rng.normal(size=(6, 4))
    if name in ("mse", "huber", "log_cosh"):
        return x, rng.normal(size=(6, 4))
    if name in ("bce_with_logits", "focal"):
        return x, rng.uniform(size=(6, 4))
    if name == "cross_entropy":
        return x, rng.integers(0, 4, size=6)
    if name == "dice":
        return rng.uniform(size=(3, 2, 5)), (rng.uniform(size=(3, 2, 5)) > 0.5) * 1.0
    if name == "kl_div":
        t = rng.dirichlet(np.ones(4), size=6)
        t[0, 1] = 0.0
        return jax.nn.log_softmax(jnp.asarray(x), axis=1), t / t.sum(1, keepdims=True)
    if name == "triplet_margin":
        return x, x + 0.3 * rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    raise KeyError(name)


DIRECT = {
    "mse": (_mse, [{}]),
    "huber": (_huber, [{}, {"delta": 0.3}]),
    "log_cosh": (_log_cosh, [{}]),
    "bce_with_logits": (_bce_with_logits, [{}]),
    "cross_entropy": (_cross_entropy, [{}, {"label_smoothing": 0.2}]),
    "focal": (_focal, [{}, {"alpha": 0.6, "gamma": 1.5}]),
    "dice": (_dice, [{}, {"smooth": 0.1}]),
    "kl_div": (_kl_div, [{}]),
    "triplet_margin": (_triplet, [{}, {"margin": 0.5}]),
}
DIRECT_CASES = [
    (n, {**o, "reduction": r}) for n, (_, opts) in DIRECT.items() for o in opts for r in REDUCTIONS
]


@pytest.mark.parametrize(
    ("name", "options"), DIRECT_CASES, ids=[f"{n}-{sorted(o.items())}" for n, o in DIRECT_CASES]
)
def test_grad_equals_jax_grad_of_a_direct_jnp_formula(name, options):
    if name not in NAMES:
        pytest.skip(f"{name} not in the catalog yet")
    direct, _ = DIRECT[name]
    spec = losslab.spec(name)
    arrays = [jnp.asarray(a) for a in _data(name, np.random.default_rng(0))]
    diff = tuple(i for i, n in enumerate(spec.inputs) if n in spec.differentiable)
    ours_v = getattr(lj, name)(*arrays, **options)
    ref_v = direct(*arrays, **options)
    np.testing.assert_allclose(np.asarray(ours_v), np.asarray(ref_v), rtol=1e-10, atol=1e-12)
    g = jnp.asarray(np.random.default_rng(1).uniform(0.5, 1.5, size=ref_v.shape))

    def pull(fn):
        def part(*d):
            args = list(arrays)
            for i, x in zip(diff, d):
                args[i] = x
            return fn(*args, **options)

        return jax.vjp(part, *[arrays[i] for i in diff])[1](g)

    for a, b in zip(pull(getattr(lj, name)), pull(direct)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)
    # ... and through jit
    jv = jax.jit(lambda *a: getattr(lj, name)(*a, **options))(*arrays)
    np.testing.assert_allclose(np.asarray(jv), np.asarray(ref_v), rtol=1e-10, atol=1e-12)
