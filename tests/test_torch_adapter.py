"""losslab.torch: every catalog loss as a torch function and module with a closed-form backward.

Checked over the whole catalog (parametrized by ``losslab.available()`` at collection time):
torch.autograd.gradcheck and gradgradcheck in float64 for every reduction, random cotangents for
``reduction="none"``, values and gradients equal torch's built-in losses, mixed precision dtypes,
torch.compile, and the light ``import losslab``.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gradcheck import catalog_cases, generic_adapter_names

import losslab
import losslab.torch as lt
from losslab.losses import _blocked

NAMES = generic_adapter_names()
REDUCTIONS = ("mean", "sum", "none")
CASES, IDS = catalog_cases(NAMES)
TORCH_CASES = [(n, c) for n, c in CASES if losslab.spec(n).torch]
TORCH_IDS = [f"{n}-{c.get('reduction', 'default')}" for n, c in TORCH_CASES]


def _tensors(name, options, dtype="float64", seed=0, requires_grad=True):
    """The catalog's example inputs as tensors; floating differentiable ones require grad."""
    spec = losslab.spec(name)
    arrays = spec.example(np.random.default_rng(seed), dtype, **options)
    if name == "kl_div" and options.get("log_target"):
        # log q = -inf: torch gives NaN (0 * -inf), the catalog 0; compare on finite log q
        arrays = (arrays[0], np.maximum(arrays[1], -30.0))
    out = []
    for arg, a in zip(spec.inputs, arrays):
        t = torch.tensor(a) if isinstance(a, np.ndarray) else a  # keeps 0-d labels 0-d
        if (
            requires_grad
            and arg in spec.differentiable
            and isinstance(t, torch.Tensor)
            and t.is_floating_point()
        ):
            t.requires_grad_(True)
        out.append(t)
    return out


def _diff(name, tensors):
    spec = losslab.spec(name)
    return [
        t
        for arg, t in zip(spec.inputs, tensors)
        if arg in spec.differentiable and isinstance(t, torch.Tensor) and t.requires_grad
    ]


def _partial(name, tensors, options):
    """f(*differentiable inputs) for gradcheck, the constants fixed."""
    spec = losslab.spec(name)
    slots = [
        arg in spec.differentiable and isinstance(t, torch.Tensor) and t.requires_grad
        for arg, t in zip(spec.inputs, tensors)
    ]

    def f(*diff):
        it = iter(diff)
        args = [next(it) if s else t for s, t in zip(slots, tensors)]
        return getattr(lt, name)(*args, **options)

    return f


# --- exports ---------------------------------------------------------------------------------


def test_import_losslab_imports_neither_torch_nor_jax():
    code = (
        "import sys, losslab; losslab.get('mse');"
        "bad = [m for m in ('torch', 'jax', 'matplotlib') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_has_a_function_and_a_module(name):
    fn = getattr(lt, name)
    cls = getattr(lt, losslab.spec(name).module)
    assert callable(fn) and issubclass(cls, torch.nn.Module) and issubclass(cls, lt.LossModule)
    assert losslab.spec(name).summary in fn.__doc__
    spec = losslab.spec(name)
    if spec.torch:
        assert getattr(lt, spec.torch) is fn
        tcls = {"mse": torch.nn.MSELoss, "cross_entropy": torch.nn.CrossEntropyLoss}.get(name)
        if tcls is not None:
            assert cls.__name__ == tcls.__name__


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_module_equals_function_and_generic_module(name, options):
    tensors = _tensors(name, options, requires_grad=False)
    cls = getattr(lt, losslab.spec(name).module)
    a = cls(**options)(*tensors)
    b = getattr(lt, name)(*tensors, **options)
    c = lt.LossModule(name, **options)(*tensors)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(c, b, rtol=0, atol=0)


# --- gradients -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_gradcheck(name, options):
    # For reduction="none" gradcheck builds the whole Jacobian from one-hot cotangents, so it
    # also proves that a per-row loss scales each row by its own cotangent.
    for seed in range(2):
        tensors = _tensors(name, options, seed=seed)
        f = _partial(name, tensors, options)
        assert torch.autograd.gradcheck(f, tuple(_diff(name, tensors)))


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_gradgradcheck(name, options):
    tensors = _tensors(name, options, seed=3)
    f = _partial(name, tensors, options)
    assert torch.autograd.gradgradcheck(f, tuple(_diff(name, tensors)))


@pytest.mark.parametrize("name", [n for n in NAMES if "reduction" in losslab.spec(n).defaults])
def test_random_cotangent_for_reduction_none(name):
    """backward(g) with a random g equals central differences of sum(g * l): each per-element
    loss (a whole row for cross_entropy, triplet_margin, dice ...) is scaled by its own g."""
    tensors = _tensors(name, {"reduction": "none"}, seed=5)
    out = getattr(lt, name)(*tensors, reduction="none")
    g = torch.rand(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(0)) + 0.5
    diff = _diff(name, tensors)
    got = torch.autograd.grad(out, diff, g)
    f = _partial(name, tensors, {"reduction": "none"})

    def weighted(*xs):
        return (f(*xs) * g).sum()

    for i, x in enumerate(diff):
        num = torch.zeros_like(x)
        flat = num.view(-1)
        base = [d.detach().clone() for d in diff]
        for j in range(x.numel()):
            up = [b.clone() for b in base]
            dn = [b.clone() for b in base]
            up[i].view(-1)[j] += 1e-6
            dn[i].view(-1)[j] -= 1e-6
            flat[j] = (weighted(*up) - weighted(*dn)) / 2e-6
        torch.testing.assert_close(got[i], num, rtol=1e-5, atol=1e-7)


def _torch_call(name, tensors, options):
    spec = losslab.spec(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's reduction="mean" warning
        return getattr(F, spec.torch)(*tensors, **options)


@pytest.mark.parametrize(("name", "options"), TORCH_CASES, ids=TORCH_IDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_equals_torch_builtin(name, options, dtype):
    tol = {"float64": 1e-10, "float32": 1e-5}[dtype]
    for seed in range(2):
        ours_in = _tensors(name, options, dtype, seed)
        ref_in = _tensors(name, options, dtype, seed)
        ours = getattr(lt, name)(*ours_in, **options)
        ref = _torch_call(name, ref_in, options)
        torch.testing.assert_close(ours, ref, rtol=tol, atol=tol)
        assert ours.dtype == ref.dtype and ours.shape == ref.shape
        g = torch.rand(ref.shape, dtype=ref.dtype, generator=torch.Generator().manual_seed(seed))
        got = torch.autograd.grad(ours, _diff(name, ours_in), g)
        want = torch.autograd.grad(ref, _diff(name, ref_in), g)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def _with_options(name):
    """A few option combinations whose tensors must pass through the adapter untouched."""
    rng = np.random.default_rng(7)
    cases = {
        "cross_entropy": [
            {"label_smoothing": 0.1},
            {"weight": torch.from_numpy(rng.uniform(0.5, 2.0, 5)), "ignore_index": 1},
        ],
        "bce_with_logits": [{"pos_weight": torch.from_numpy(rng.uniform(0.5, 2.0, 6))}],
        "focal": [{"alpha": 0.5, "gamma": 1.0}],
        "softmax_focal": [{"gamma": 1.0}],
        "kl_div": [{"log_target": True}],
        "huber": [{"delta": 0.5}],
        "triplet_margin": [{"swap": True, "margin": 0.5}],
        "js_div": [{"dim": 0}],
    }
    return cases.get(name, [])


OPTION_CASES = [
    (n, {**o, "reduction": r})
    for n in NAMES
    for o in _with_options(n)
    if all(k in losslab.spec(n).defaults for k in o)
    for r in REDUCTIONS
]


@pytest.mark.parametrize(("name", "options"), OPTION_CASES, ids=[c[0] for c in OPTION_CASES])
def test_options_gradcheck_and_torch(name, options):
    spec = losslab.spec(name)
    arrays_opts = {k: v for k, v in options.items() if not isinstance(v, torch.Tensor)}
    shape_src = spec.example(np.random.default_rng(0), "float64", **arrays_opts)
    tensors = _fit_option_shapes(name, shape_src, options)
    f = _partial(name, tensors, options)
    assert torch.autograd.gradcheck(f, tuple(_diff(name, tensors)))
    if spec.torch:
        ref_in = [t.detach().clone().requires_grad_(t.requires_grad) for t in tensors]
        ours, ref = f(*_diff(name, tensors)), _torch_call(name, ref_in, options)
        torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
        g = torch.rand(ref.shape, dtype=ref.dtype, generator=torch.Generator().manual_seed(1))
        for a, b in zip(
            torch.autograd.grad(ours, _diff(name, tensors), g),
            torch.autograd.grad(ref, _diff(name, ref_in), g),
        ):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def _fit_option_shapes(name, arrays, options):
    """Example inputs that fit the option tensors' class counts (C = 5 or 6 above)."""
    rng = np.random.default_rng(11)
    spec = losslab.spec(name)
    if name == "cross_entropy" and "weight" in options:
        x = rng.normal(size=(4, 5))
        y = np.array([0, 1, 4, 2])  # label 1 is ignored
        return [torch.tensor(x, requires_grad=True), torch.from_numpy(y)]
    if name == "bce_with_logits" and "pos_weight" in options:
        x = rng.normal(size=(3, 6))
        y = rng.uniform(size=(3, 6))
        return [torch.tensor(x, requires_grad=True), torch.from_numpy(y)]
    if name == "kl_div" and options.get("log_target"):
        # log q = -inf: torch gives NaN (0 * -inf), the catalog 0; compare on finite log q
        arrays = (arrays[0], np.maximum(arrays[1], -30.0))
    out = []
    for arg, a in zip(spec.inputs, arrays):
        t = torch.tensor(a)
        if arg in spec.differentiable and t.is_floating_point():
            t.requires_grad_(True)
        out.append(t)
    return out


def test_gaussian_nll_broadcast_var_with_random_cotangent():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 3, dtype=torch.float64)
    for shape in [(4, 1), (4,), (1, 3)]:
        v = (torch.rand(shape, dtype=torch.float64) + 0.5).requires_grad_(True)
        assert torch.autograd.gradcheck(lambda a, b: lt.gaussian_nll(a, y, b, reduction="none"),
                                        (x, v))
        g = torch.rand(4, 3, dtype=torch.float64)
        ours = torch.autograd.grad(lt.gaussian_nll(x, y, v, reduction="none"), (x, v), g)
        ref = torch.autograd.grad(F.gaussian_nll_loss(x, y, v, reduction="none"), (x, v), g)
        for a, b in zip(ours, ref):
            torch.testing.assert_close(a, b)


def test_cross_entropy_k_dim_rows_scaled_by_their_cotangent():
    # (N, C, d1, d2) with C == d2 == d1: the layout must follow the class axis, not the shapes.
    x = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 3, (2, 3, 3))
    g = torch.rand(2, 3, 3, dtype=torch.float64)
    ours = torch.autograd.grad(lt.cross_entropy(x, y, reduction="none"), x, g)[0]
    ref = torch.autograd.grad(F.cross_entropy(x, y, reduction="none"), x, g)[0]
    torch.testing.assert_close(ours, ref)


def test_hessian_vector_product_equals_torch():
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (5,))
    v = torch.randn(5, 4, dtype=torch.float64)
    hv = []
    for f in (lt.cross_entropy, F.cross_entropy):
        (g,) = torch.autograd.grad(f(x, y, label_smoothing=0.1), x, create_graph=True)
        hv.append(torch.autograd.grad((g * v).sum(), x)[0])
    torch.testing.assert_close(hv[0], hv[1])


# --- dtypes, precision, compile, devices ---------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("autocast", [False, True])
def test_mixed_precision(name, half, autocast):
    """Half inputs are computed in float32; value float32 under autocast (torch's policy for
    losses), the input's dtype otherwise; the gradient in the input's dtype."""
    base = _tensors(name, {}, "float32", seed=8, requires_grad=False)
    low = [t.to(half) if t.is_floating_point() else t for t in base]
    for t, arg in zip(low, losslab.spec(name).inputs):
        if arg in losslab.spec(name).differentiable and t.is_floating_point():
            t.requires_grad_(True)
    # Rounding a distribution to 8 mantissa bits breaks its sum-to-1 (a value check js_div does).
    checks = losslab.value_checks(name != "js_div")
    with checks, torch.autocast("cpu", dtype=half, enabled=autocast):
        value = getattr(lt, name)(*low)
    assert value.dtype == (torch.float32 if autocast else half)
    # exactly the float32 computation on the rounded inputs
    with losslab.value_checks(name != "js_div"):
        up = [t.detach().float() if t.is_floating_point() else t for t in low]
        exact = getattr(lt, name)(*up)
    torch.testing.assert_close(value.float(), exact.to(value.dtype).float(), rtol=0, atol=0)
    value.backward()
    for t in _diff(name, low):
        assert t.grad.dtype == half and torch.isfinite(t.grad.float()).all()


@pytest.mark.parametrize("name", ["cross_entropy", "focal"])
def test_matches_torch_mse_dtype_rule_under_autocast(name):
    if name not in NAMES:
        pytest.skip(f"{name} not in the catalog yet")
    x = torch.randn(4, 3, dtype=torch.bfloat16)
    y = torch.tensor([0, 1, 2, 0]) if name == "cross_entropy" else torch.rand(4, 3).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert getattr(lt, name)(x, y).dtype == F.mse_loss(x, x).dtype == torch.float32


@pytest.mark.parametrize("name", ["mse", "cross_entropy"])
@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_torch_compile(name, backend):
    if name not in NAMES:
        pytest.skip(f"{name} not in the catalog yet")
    torch._dynamo.reset()
    model = torch.nn.Linear(6, 3).double()
    x = torch.randn(8, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (8,)) if name == "cross_entropy" else torch.randn(8, 3).double()

    def step(x, y):
        return getattr(lt, name)(torch.tanh(model(x)), y)

    ref = step(x, y)
    ref_g = torch.autograd.grad(ref, model.weight)[0]
    out = torch.compile(step, backend=backend)(x, y)
    out_g = torch.autograd.grad(out, model.weight)[0]
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(out_g, ref_g)


def test_dtype_in_equals_dtype_out_float32():
    for name in NAMES:
        tensors = _tensors(name, {}, "float32", seed=9)
        value = getattr(lt, name)(*tensors)
        assert value.dtype == torch.float32, name
        value.backward()
        for t in _diff(name, tensors):
            assert t.grad.dtype == torch.float32, name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_cuda_no_host_sync_and_equal_to_cpu(name, options):
    cpu = _tensors(name, options, "float32", seed=10)
    gpu = [t.detach().cuda().requires_grad_(t.requires_grad) for t in cpu]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        value = getattr(lt, name)(*gpu, **options)
        grads = torch.autograd.grad(value.sum(), _diff(name, gpu))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    ref = getattr(lt, name)(*cpu, **options)
    ref_grads = torch.autograd.grad(ref.sum(), _diff(name, cpu))
    assert value.device.type == "cuda"
    torch.testing.assert_close(value.cpu(), ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-5, atol=1e-6)


# --- bad input -----------------------------------------------------------------------------


def test_target_requiring_grad_is_refused():
    x = torch.randn(3, requires_grad=True)
    y = torch.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="target"):
        lt.mse(x, y)
    lt.mse(x, y.detach()).backward()  # detached is fine


def test_unknown_option_and_wrong_arity():
    x, y = torch.randn(3), torch.randn(3)
    with pytest.raises(TypeError, match="delt"):
        lt.mse(x, y, delt=1.0)
    with pytest.raises(TypeError, match="takes 2 inputs"):
        lt.mse(x)
    with pytest.raises(ValueError, match="reduction"):
        lt.MSELoss(reduction="avg")


def test_module_buffers_move_with_the_module():
    if "cross_entropy" not in NAMES:
        pytest.skip("cross_entropy not in the catalog yet")
    w = torch.tensor([1.0, 2.0, 0.5])
    crit = lt.CrossEntropyLoss(weight=w).double()
    assert crit.weight.dtype == torch.float64 and "weight" in crit.state_dict()
    x = torch.randn(4, 3, dtype=torch.float64)
    y = torch.tensor([0, 2, 1, 1])
    torch.testing.assert_close(crit(x, y), F.cross_entropy(x, y, weight=w.double()))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_retain_graph_backward_twice_accumulates(reduction):
    """The saved gradient is scaled in place only on its last use; retain_graph keeps it intact."""
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 3, dtype=torch.float64)
    out = lt.mse(x, y, reduction=reduction)
    g = torch.rand(out.shape, dtype=torch.float64)
    out.backward(g, retain_graph=True)
    first = x.grad.clone()
    out.backward(g)
    torch.testing.assert_close(x.grad, 2 * first)
    ref = torch.autograd.grad(F.mse_loss(x, y, reduction=reduction), x, g)[0]
    torch.testing.assert_close(first, ref)


BLOCKABLE = [
    n for n in NAMES
    if getattr(losslab.spec(n), "rowwise", False) and losslab.spec(n).layout == "elementwise"
]


@pytest.mark.parametrize("name", BLOCKABLE)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_blocked_cpu_path_equals_one_call(name, reduction, monkeypatch):
    """Big CPU inputs of elementwise losses run block by block; same value and gradient."""
    if reduction not in getattr(losslab.spec(name), "reductions", REDUCTIONS):
        pytest.skip(f"{name} has no reduction {reduction!r}")
    rng = np.random.default_rng(12)
    spec = losslab.spec(name)
    # stack several example draws of the same trailing shape into one batch of rows
    first = spec.example(rng, "float64", reduction=reduction)
    draws = [first] + [
        d for d in (spec.example(rng, "float64", reduction=reduction) for _ in range(60))
        if [a.shape[1:] for a in d] == [a.shape[1:] for a in first]
    ]
    arrays = [np.concatenate([d[i] for d in draws]) for i in range(len(first))]
    tensors = [torch.tensor(a) for a in arrays]
    for t, arg in zip(tensors, spec.inputs):
        if arg in spec.differentiable:
            t.requires_grad_(True)
    ref = getattr(lt, name)(*tensors, reduction=reduction)
    ref_g = torch.autograd.grad(ref.sum(), _diff(name, tensors))
    monkeypatch.setattr(_blocked, "MIN_ELEMENTS", 1)
    monkeypatch.setattr(_blocked, "BLOCK_ELEMENTS", 7)  # several rows a block, a ragged last one
    with torch.no_grad():  # as inside the autograd Function's forward
        assert _blocked.applicable(spec, [t.detach() for t in tensors], {}, None)
    out = getattr(lt, name)(*tensors, reduction=reduction)
    out_g = torch.autograd.grad(out.sum(), _diff(name, tensors))
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(out_g, ref_g):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
