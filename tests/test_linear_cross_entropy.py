"""linear_cross_entropy (torch, JAX, NumPy) against the composed computation it replaces.

The reference is written independently here: ``F.cross_entropy(softcap(F.linear(h, W, b)), y)``
(torch 2.13) plus the z-loss of PaLM as Liger-Kernel computes it (``liger_cross_entropy_kernel``,
v0.5: ``lse_square_scale * lse**2`` per non-ignored token, divided by the number of non-ignored
tokens under ``reduction="mean"`` whether or not there are class weights), with the per-token
outputs from ``log_softmax``. Every option and combination runs in float64 (1e-10), with random
cotangents on every output; float32 to 1e-5 relative; bfloat16/float16 inputs against the float32
reference; torch's own ``F.linear_cross_entropy`` where its options overlap; finite differences;
JAX and NumPy against torch.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import losslab.torch as lt
from losslab.losses import linear_cross_entropy as lce

# ----------------------------------------------------------------------------------------------
# The reference
# ----------------------------------------------------------------------------------------------


def composed(h, w, y, *, bias=None, reduction="mean", ignore_index=-100, label_smoothing=0.0,
             class_weight=None, z_loss=0.0, softcap=None):
    """(loss, lse, logprobs, entropy) from the full logits, with autograd."""
    d = h.shape[-1]
    s = F.linear(h.reshape(-1, d), w, bias)
    if softcap is not None:
        s = softcap * torch.tanh(s / softcap)
    probs = y.is_floating_point()
    t = y.reshape(-1, w.shape[0]) if probs else y.reshape(-1)
    ce = F.cross_entropy(s, t, weight=class_weight, ignore_index=ignore_index,
                         label_smoothing=label_smoothing, reduction=reduction)
    lse = torch.logsumexp(s, dim=1)
    logp = torch.log_softmax(s, dim=1)
    if probs:
        valid = torch.ones(s.shape[0], dtype=torch.bool)
        lp = (t * logp).sum(1)
    else:
        valid = t != ignore_index
        lp = torch.where(valid, logp.gather(1, t.clamp(min=0)[:, None])[:, 0], 0.0)
    entropy = -(logp.exp() * logp).sum(1)
    zl = torch.where(valid, z_loss * lse**2, 0.0)
    if reduction == "none":
        loss = ce + zl
    elif reduction == "sum":
        loss = ce + zl.sum()
    else:
        loss = ce + zl.sum() / valid.sum()
    shape = h.shape[:-1]
    if reduction == "none":
        loss = loss.reshape(shape)
    return loss, lse.reshape(shape), lp.reshape(shape), entropy.reshape(shape)


def make(shape=(12,), d=4, v=9, *, dtype=torch.float64, seed=0, ignore="some", probs=False,
         bias=True, ignore_index=-100):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(*shape, d, generator=g, dtype=torch.float64)
    w = torch.randn(v, d, generator=g, dtype=torch.float64)
    b = torch.randn(v, generator=g, dtype=torch.float64) if bias else None
    if probs:
        y = torch.softmax(2 * torch.randn(*shape, v, generator=g, dtype=torch.float64), -1)
        y = y.to(dtype)
    else:
        y = torch.randint(0, v, shape, generator=g)
        if ignore == "some":
            y.view(-1)[::3] = ignore_index
        elif ignore == "all":
            y.fill_(ignore_index)
    cw = torch.rand(v, generator=g, dtype=torch.float64) + 0.5
    return h.to(dtype), w.to(dtype), None if b is None else b.to(dtype), y, cw.to(dtype)


def leaves(*xs):
    return [None if x is None else x.detach().clone().requires_grad_() for x in xs]


def run_both(h, w, b, y, *, extras=False, seed=1, **opts):
    """Values and gradients (for h, w, b) of ours and the reference, with the same random
    cotangents on every output (per-token ones for reduction="none" and the extra outputs)."""
    results = []
    for impl in ("ours", "ref"):
        th, tw, tb = leaves(h, w, b)
        if impl == "ours":
            o = lt.linear_cross_entropy(th, tw, y, bias=tb, return_lse=extras,
                                        return_logprobs=extras, return_entropy=extras, **opts)
            outs = list(o) if extras else [o]
        else:
            kw = {k: v for k, v in opts.items() if k not in ("chunk_size", "memory_budget")}
            outs = list(composed(th, tw, y, bias=tb, **kw))
            outs = outs if extras else outs[:1]
        g = torch.Generator().manual_seed(seed)
        total = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs)
        total.backward()
        grads = [th.grad, tw.grad, None if tb is None else tb.grad]
        results.append(([o.detach() for o in outs], grads))
    return results


def assert_close(ours, ref, rtol, atol=0.0, what=""):
    assert ours.shape == ref.shape, what
    a, r = ours.double(), ref.double()
    if torch.isnan(r).all():
        assert torch.isnan(a).all(), what
        return
    scale = r.abs().max().item()
    err = (a - r).abs().max().item()
    assert err <= rtol * scale + atol, f"{what}: max error {err:.3g}, scale {scale:.3g}"


def check(results, rtol, atol=0.0):
    (outs, grads), (routs, rgrads) = results
    for name, a, r in zip(("loss", "lse", "logprobs", "entropy"), outs, routs):
        assert_close(a, r, rtol, atol, name)
    for name, a, r in zip(("d_hidden", "d_weight", "d_bias"), grads, rgrads):
        if r is None:
            assert a is None
        else:
            assert a.dtype == r.dtype
            assert_close(a, r, rtol, atol, name)


# ----------------------------------------------------------------------------------------------
# Every option and combination, float64
# ----------------------------------------------------------------------------------------------

COMBOS = list(itertools.product(
    ("none", "some", "all"),  # ignored targets
    (0.0, 0.1),  # label_smoothing
    (False, True),  # class weights
    (0.0, 1e-2),  # z_loss
    (None, 3.0),  # softcap
    (False, True),  # bias
    ((12,), (3, 4)),  # (N, D) or (B, T, D)
))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_every_combination_float64_index_targets(reduction):
    for ignore, ls, use_cw, z, cap, bias, shape in COMBOS:
        h, w, b, y, cw = make(shape, ignore=ignore, bias=bias)
        res = run_both(h, w, b, y, reduction=reduction, label_smoothing=ls,
                       class_weight=cw if use_cw else None, z_loss=z, softcap=cap, chunk_size=5)
        check(res, 1e-10, 1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_every_combination_float64_probability_targets(reduction):
    for ls, use_cw, z, cap, bias, shape in itertools.product(
        (0.0, 0.2), (False, True), (0.0, 1e-2), (None, 3.0), (False, True), ((12,), (3, 4))
    ):
        h, w, b, y, cw = make(shape, probs=True, bias=bias)
        res = run_both(h, w, b, y, reduction=reduction, label_smoothing=ls,
                       class_weight=cw if use_cw else None, z_loss=z, softcap=cap, chunk_size=5)
        check(res, 1e-10, 1e-12)


@pytest.mark.parametrize("probs", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_per_token_outputs_and_their_gradients(reduction, probs):
    """lse, logprobs and entropy, each with its own random cotangent, with every option."""
    for ls, use_cw, z, cap, shape in itertools.product(
        (0.0, 0.1), (False, True), (0.0, 1e-2), (None, 3.0), ((12,), (3, 4))
    ):
        h, w, b, y, cw = make(shape, probs=probs)
        res = run_both(h, w, b, y, extras=True, reduction=reduction, label_smoothing=ls,
                       class_weight=cw if use_cw else None, z_loss=z, softcap=cap, chunk_size=5)
        check(res, 1e-10, 1e-12)


def test_only_the_outputs_asked_for_are_returned():
    h, w, b, y, _ = make()
    out = lt.linear_cross_entropy(h, w, y, return_logprobs=True)
    assert isinstance(out, lce.LinearCrossEntropyOutput)
    assert out.lse is None and out.entropy is None and out.logprobs.shape == y.shape
    ref = composed(h, w, y)
    torch.testing.assert_close(out.loss, ref[0], rtol=1e-12, atol=0)
    torch.testing.assert_close(out.logprobs, ref[2], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("chunk_size", [1, 4, 12, 100])
def test_any_chunk_size_gives_the_same_numbers(chunk_size):
    h, w, b, y, cw = make((12,))
    res = run_both(h, w, b, y, extras=True, reduction="none", label_smoothing=0.1,
                   class_weight=cw, z_loss=1e-2, softcap=3.0, chunk_size=chunk_size)
    check(res, 1e-10, 1e-12)


def test_memory_budget_sets_the_chunk_and_the_numbers_do_not_change():
    h, w, b, y, _ = make((12,))
    res = run_both(h, w, b, y, reduction="mean", memory_budget=2 * 9 * 8)  # 2 rows a chunk
    check(res, 1e-10, 1e-12)


def test_all_ignored_mean_is_nan_with_zero_gradient_as_torch():
    h, w, b, y, _ = make(ignore="all")
    for z in (0.0, 1e-2):
        th, tw, tb = leaves(h, w, b)
        loss = lt.linear_cross_entropy(th, tw, y, bias=tb, z_loss=z)
        assert torch.isnan(loss)
        loss.backward()
        for g in (th.grad, tw.grad, tb.grad):
            assert torch.equal(g, torch.zeros_like(g))
    assert lt.linear_cross_entropy(h, w, y, reduction="sum").item() == 0.0


def test_no_tokens_at_all():
    h, w, b, y, _ = make((0,))
    th, tw, tb = leaves(h, w, b)
    loss = lt.linear_cross_entropy(th, tw, y, bias=tb, reduction="sum")
    loss.backward()
    assert loss.item() == 0.0 and th.grad.shape == (0, 4)
    assert not tw.grad.any() and not tb.grad.any()
    assert torch.isnan(lt.linear_cross_entropy(h, w, y))
    assert lt.linear_cross_entropy(h, w, y, reduction="none").shape == (0,)


def test_unit_cotangent_and_retained_graph():
    """loss.backward() (cotangent 1: the saved gradients are handed on unscaled) and
    retain_graph=True twice (the saved gradients are not scaled in place): both as the
    composed loss, gradients accumulating."""
    h, w, b, y, cw = make()
    th, tw, tb = leaves(h, w, b)
    loss = lt.linear_cross_entropy(th, tw, y, bias=tb, class_weight=cw, z_loss=1e-2)
    (2.5 * loss).backward(retain_graph=True)
    loss.backward()
    rh, rw, rb = leaves(h, w, b)
    ref = composed(rh, rw, y, bias=rb, class_weight=cw, z_loss=1e-2)[0]
    (3.5 * ref).backward()
    for a, r in ((th, rh), (tw, rw), (tb, rb)):
        torch.testing.assert_close(a.grad, r.grad, rtol=1e-12, atol=1e-14)


def test_only_the_inputs_that_need_a_gradient_get_one():
    h, w, b, y, _ = make()
    tw = w.clone().requires_grad_()
    lt.linear_cross_entropy(h, tw, y, bias=b).backward()  # frozen features and bias
    rw = w.clone().requires_grad_()
    composed(h, rw, y, bias=b)[0].backward()
    torch.testing.assert_close(tw.grad, rw.grad, rtol=1e-12, atol=1e-14)


def test_no_gradient_work_without_autograd(monkeypatch):
    """Under no_grad (evaluation) or with no input requiring grad, the forward pass computes the
    values only; with autograd recording a scalar loss, it computes the gradients too."""
    cots = []
    real = lce.sweep
    monkeypatch.setattr(lce, "sweep", lambda *a, **k: cots.append(k.get("cot")) or real(*a, **k))
    h, w, b, y, _ = make()
    th, tw = leaves(h, w)
    with torch.no_grad():
        lt.linear_cross_entropy(th, tw, y)
    lt.linear_cross_entropy(h, w, y)
    assert cots == [None, None]
    lt.linear_cross_entropy(th, tw, y)
    assert cots[-1] is not None


def test_create_graph_raises_a_clear_error():
    h, w, b, y, _ = make()
    for reduction in ("mean", "none"):
        th, tw = leaves(h, w)
        loss = lt.linear_cross_entropy(th, tw, y, reduction=reduction).sum()
        with pytest.raises(RuntimeError, match="double backward"):
            torch.autograd.grad(loss, th, create_graph=True)


def test_torch_compile_graph_break():
    h, w, b, y, _ = make()

    def step(h, w):
        return lt.linear_cross_entropy(torch.tanh(h), w, y, z_loss=1e-2)

    th, tw = leaves(h, w)
    torch.compile(step, backend="eager")(th, tw).backward()
    rh, rw = leaves(h, w)
    composed(torch.tanh(rh), rw, y, z_loss=1e-2)[0].backward()
    torch.testing.assert_close(th.grad, rh.grad, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(tw.grad, rw.grad, rtol=1e-12, atol=1e-14)


def test_huge_logits_stay_finite_and_exact():
    h, w, b, y, cw = make()
    h = h * 1e4
    res = run_both(h, w, b, y, extras=True, reduction="none", label_smoothing=0.1,
                   class_weight=cw, z_loss=1e-2, chunk_size=5)
    for o in res[0][0] + res[0][1]:
        assert torch.isfinite(o).all()
    check(res, 1e-10, 1e-12)


def test_gradcheck_finite_differences():
    """torch.autograd.gradcheck: central finite differences in float64, every output."""
    h, w, b, y, cw = make((2, 3), d=3, v=5)
    for reduction, extras in (("mean", False), ("none", True), ("sum", True)):
        def f(h, w, b, reduction=reduction, extras=extras):
            out = lt.linear_cross_entropy(
                h, w, y, bias=b, reduction=reduction, label_smoothing=0.1, class_weight=cw,
                z_loss=0.05, softcap=2.0, chunk_size=4, return_lse=extras,
                return_logprobs=extras, return_entropy=extras,
            )
            return tuple(out) if extras else out

        assert torch.autograd.gradcheck(f, leaves(h, w, b), eps=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------------------------
# float32, half precision, torch's own linear_cross_entropy
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_float32_within_1e_5_relative(reduction):
    h, w, b, y, cw = make((4, 32), d=16, v=300, dtype=torch.float32, seed=3)
    for ls, use_cw, z, cap in ((0.0, False, 0.0, None), (0.1, True, 1e-3, 30.0)):
        res = run_both(h, w, b, y, extras=True, reduction=reduction, label_smoothing=ls,
                       class_weight=cw if use_cw else None, z_loss=z, softcap=cap, chunk_size=50)
        assert res[0][0][0].dtype == torch.float32
        check(res, 1e-5)


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_against_the_float32_reference(half):
    """bf16/fp16 hidden and weight: the logits, log-sum-exp and gradients are accumulated in
    float32, the loss is float32, the gradients come back in the inputs' dtype.

    Bound: against the float32 composed computation on the same (half-representable) inputs,
    the loss within 1e-5 relative (float32 rounding only), each gradient element within
    2**-7 of its own size plus 1e-5 of the largest (one rounding to the half dtype, 2**-8 for
    bfloat16 and 2**-11 for float16, with room for the float32 differences). The composed loss
    run in the half dtype itself is much further off (its logits are rounded to half)."""
    h, w, b, y, cw = make((4, 64), d=32, v=500, dtype=torch.float32, seed=4)
    h, w, b = (x.to(half).float() for x in (h, w, b))  # representable in the half dtype
    for reduction in ("mean", "none"):
        opts = dict(reduction=reduction, label_smoothing=0.1, class_weight=cw, z_loss=1e-3)
        ph, pw, pb = leaves(h.to(half), w.to(half), b.to(half))
        loss = lt.linear_cross_entropy(ph, pw, y, bias=pb, **opts)
        assert loss.dtype == torch.float32
        g = torch.randn(loss.shape, generator=torch.Generator().manual_seed(0))
        (loss * g).sum().backward()
        rh, rw, rb = leaves(h, w, b)
        ref = composed(rh, rw, y, bias=rb, **opts)[0]
        (ref * g).sum().backward()
        assert_close(loss, ref.detach(), 1e-5, what="loss")
        for name, a, r in (("d_hidden", ph, rh), ("d_weight", pw, rw), ("d_bias", pb, rb)):
            assert a.grad.dtype == half, name
            err = (a.grad.float() - r.grad).abs()
            bound = 2**-7 * r.grad.abs() + 1e-5 * r.grad.abs().max()
            assert bool((err <= bound).all()), f"{name}: {(err - bound).max().item():.3g}"
        if reduction == "mean":
            in_half = composed(h.to(half), w.to(half), y, bias=b.to(half), **{
                **opts, "class_weight": cw.to(half)})[0].float()
            assert (in_half - ref).abs() > 10 * (loss - ref).abs()


def test_mixed_dtypes_and_autocast():
    """bf16 hidden with a float32 weight computes in float32; autocast does not reach inside."""
    h, w, b, y, _ = make((16,), d=8, v=50, dtype=torch.float32)
    ref = lt.linear_cross_entropy(h, w, y, bias=b)
    hb = h.to(torch.bfloat16)
    mixed = lt.linear_cross_entropy(hb, w, y, bias=b)
    torch.testing.assert_close(mixed, composed(hb.float(), w, y, bias=b)[0], rtol=1e-6, atol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = lt.linear_cross_entropy(h, w, y, bias=b)
    assert inside.dtype == torch.float32
    torch.testing.assert_close(inside, ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("chunked", [False, True])
def test_equals_torch_linear_cross_entropy_where_options_overlap(chunked):
    """torch 2.13's F.linear_cross_entropy (reference path and chunked path): bias, class
    weights, ignore_index, label smoothing, probability targets, every reduction."""
    options = torch.nn.LinearCrossEntropyOptions(chunking_method=None, batch_chunk_size=4) if (
        chunked) else None
    for reduction, ls, use_cw, probs, bias in itertools.product(
        ("mean", "sum", "none"), (0.0, 0.1), (False, True), (False, True), (False, True)
    ):
        h, w, b, y, cw = make((12,), probs=probs, bias=bias, ignore_index=-1)
        kw = dict(reduction=reduction, label_smoothing=ls)
        if not probs:  # torch refuses ignore_index with probability targets
            kw["ignore_index"] = -1
        th, tw, tb = leaves(h, w, b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unsupported chunked configurations fall back
            theirs = F.linear_cross_entropy(th, tw, y, linear_bias=tb,
                                            weight=cw if use_cw else None, options=options, **kw)
        g = torch.randn(theirs.shape, generator=torch.Generator().manual_seed(2),
                        dtype=theirs.dtype)
        (theirs * g).sum().backward()
        oh, ow, ob = leaves(h, w, b)
        ours = lt.linear_cross_entropy(oh, ow, y, bias=ob, class_weight=cw if use_cw else None,
                                       chunk_size=5, **kw)
        (ours * g).sum().backward()
        assert_close(ours.detach(), theirs.detach(), 1e-10, 1e-12, "loss")
        for a, r in ((oh, th), (ow, tw), (ob, tb)):
            if r is not None:
                assert_close(a.grad, r.grad, 1e-10, 1e-12, "grad")


# ----------------------------------------------------------------------------------------------
# The module, the chunking primitive, errors
# ----------------------------------------------------------------------------------------------


def test_module_equals_function_and_carries_class_weight():
    h, w, b, y, cw = make((3, 4))
    crit = lt.LinearCrossEntropyLoss(class_weight=cw, z_loss=1e-2, label_smoothing=0.1,
                                     return_entropy=True)
    assert "class_weight" in crit.state_dict()
    assert "z_loss=0.01" in repr(crit)
    got = crit(h, w, y, b)
    ref = lt.linear_cross_entropy(h, w, y, bias=b, class_weight=cw, z_loss=1e-2,
                                  label_smoothing=0.1, return_entropy=True)
    torch.testing.assert_close(got.loss, ref.loss, rtol=0, atol=0)
    torch.testing.assert_close(got.entropy, ref.entropy, rtol=0, atol=0)


def test_chunk_rows():
    rows = lce.chunk_rows
    assert rows(4096, 32000, 512, itemsize=4, chunk_size=100) == 100
    assert rows(50, 32000, 512, itemsize=4, chunk_size=100) == 50
    # default budget: half of dW (32000 x 512 x 4 / 2 bytes) -> 256 rows of 32000 floats
    assert rows(4096, 32000, 512, itemsize=4) == 256
    assert rows(4096, 32000, 512, itemsize=4, buffers=2) == 128
    assert rows(4096, 1000, 64, itemsize=4) == 4096  # 16 MiB floor: everything in one chunk
    assert rows(4096, 128000, 4096, itemsize=4) == 512  # 256 MiB cap
    assert rows(4096, 1000, 64, itemsize=4, memory_budget=4000 * 10) == 10
    assert rows(4097, 1000, 64, itemsize=4, memory_budget=4000 * 4096) == 2049  # evened out
    assert rows(10, 1000, 64, itemsize=4, memory_budget=1) == 1
    assert rows(0, 1000, 64, itemsize=4) == 1


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(reduction="avg"), ValueError, "reduction"),
        (dict(label_smoothing=1.5), ValueError, "label_smoothing"),
        (dict(label_smoothing="0.1"), TypeError, "label_smoothing"),
        (dict(z_loss=-1e-4), ValueError, "z_loss"),
        (dict(z_loss=True), TypeError, "z_loss"),
        (dict(softcap=0.0), ValueError, "softcap"),
        (dict(softcap=float("inf")), ValueError, "softcap"),
        (dict(chunk_size=0), TypeError, "chunk_size"),
        (dict(chunk_size=2.5), TypeError, "chunk_size"),
        (dict(memory_budget=-1), TypeError, "memory_budget"),
        (dict(ignore_index=1.0), TypeError, "ignore_index"),
        (dict(return_lse="yes"), TypeError, "return_lse"),
        (dict(process_group=object(), reduction="sum"), ValueError, "process_group"),
    ],
)
def test_bad_options_raise_naming_the_option(kwargs, error, match):
    h, w, b, y, _ = make()
    with pytest.raises(error, match=match):
        lt.linear_cross_entropy(h, w, y, **kwargs)
    with pytest.raises(error, match=match):
        lt.LinearCrossEntropyLoss(**kwargs)


def test_bad_inputs_raise_naming_the_input():
    h, w, b, y, cw = make()
    cases = [
        (lambda: lt.linear_cross_entropy(h, w[:, :3], y), ValueError, "hidden"),
        (lambda: lt.linear_cross_entropy(h, w[0], y), ValueError, "weight"),
        (lambda: lt.linear_cross_entropy(h, w, y, bias=b[:3]), ValueError, "bias"),
        (lambda: lt.linear_cross_entropy(h, w, y[:5]), ValueError, "target"),
        (lambda: lt.linear_cross_entropy(h, w, y.double()), ValueError, "probabilities"),
        (lambda: lt.linear_cross_entropy(h, w, y.clamp(min=0) + 9), ValueError, "outside"),
        (lambda: lt.linear_cross_entropy(h, w, y, class_weight=cw[:2]), ValueError,
         "class_weight"),
        (lambda: lt.linear_cross_entropy(h.long(), w, y), TypeError, "hidden"),
        (lambda: lt.linear_cross_entropy(h.numpy(), w, y), TypeError, "hidden"),
        (lambda: lt.linear_cross_entropy(h, w, torch.rand(12, 9, requires_grad=True,
                                                          dtype=torch.float64)),
         ValueError, "target requires grad"),
    ]
    for fn, error, match in cases:
        with pytest.raises(error, match=match):
            fn()


# ----------------------------------------------------------------------------------------------
# NumPy and JAX against torch
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("probs", [False, True])
def test_numpy_equals_torch(reduction, probs):
    for ls, use_cw, z, cap, shape in ((0.0, False, 0.0, None, (12,)),
                                      (0.1, True, 1e-2, 3.0, (3, 4))):
        h, w, b, y, cw = make(shape, probs=probs)
        opts = dict(reduction=reduction, label_smoothing=ls, z_loss=z, softcap=cap)
        th, tw, tb = leaves(h, w, b)
        t_cw = cw if use_cw else None
        out = lt.linear_cross_entropy(th, tw, y, bias=tb, class_weight=t_cw, return_lse=True,
                                      return_logprobs=True, return_entropy=True, **opts)
        g = torch.randn(out.loss.shape, generator=torch.Generator().manual_seed(5),
                        dtype=torch.float64)
        (out.loss * g).sum().backward()
        n_cw = None if t_cw is None else t_cw.numpy()
        val, (dh, dw, db) = lce.value_and_grad(
            h.numpy(), w.numpy(), y.numpy(), bias=b.numpy(), class_weight=n_cw,
            cotangent=g.numpy(), chunk_size=5, **opts)
        np.testing.assert_allclose(val, out.loss.detach().numpy(), rtol=1e-10, atol=1e-12)
        for a, r in ((dh, th), (dw, tw), (db, tb)):
            np.testing.assert_allclose(a, r.grad.numpy(), rtol=1e-10, atol=1e-12)
        plain = lce.linear_cross_entropy(
            h.numpy(), w.numpy(), y.numpy(), bias=b.numpy(), class_weight=n_cw, chunk_size=5,
            return_lse=True, return_logprobs=True, return_entropy=True, **opts)
        for a, r in zip(plain, out):
            np.testing.assert_allclose(a, r.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_numpy_finite_differences():
    from losslab.gradcheck import numerical_grad

    h, w, b, y, cw = make((2, 3), d=3, v=5)
    opts = dict(reduction="none", label_smoothing=0.1, class_weight=cw.numpy(), z_loss=0.05,
                softcap=2.0, chunk_size=4)
    g = np.random.default_rng(0).normal(size=(2, 3))
    arrays = [h.numpy(), w.numpy(), b.numpy()]

    def scalar(hid, wei, bia):
        return float(np.sum(g * lce.linear_cross_entropy(hid, wei, y.numpy(), bias=bia, **opts)))

    _, grads = lce.value_and_grad(*arrays[:2], y.numpy(), bias=arrays[2], cotangent=g, **opts)
    for i, grad in enumerate(grads):
        np.testing.assert_allclose(grad, numerical_grad(scalar, arrays, i), rtol=1e-6, atol=1e-8)


def test_numpy_rejects_tensors_and_bad_cotangents():
    h, w, b, y, _ = make()
    with pytest.raises(TypeError, match="NumPy"):
        lce.linear_cross_entropy(h, w, y)
    with pytest.raises(ValueError, match="cotangent"):
        lce.value_and_grad(h.numpy(), w.numpy(), y.numpy(), reduction="none",
                           cotangent=np.ones(3))


jax = pytest.importorskip("jax", reason="jax is not installed (pip install 'losslab[jax]')")
jax.config.update("jax_enable_x64", True)  # float64, as tests/test_jax_adapter.py

import jax.numpy as jnp  # noqa: E402

import losslab.jax as lj  # noqa: E402


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("probs", [False, True])
def test_jax_equals_torch(reduction, probs):
    """jit(value_and_grad) of losslab.jax, every output with a random cotangent, chunk sizes
    that do not divide the tokens (padding), 2-D and 3-D inputs."""
    for ls, use_cw, z, cap, shape, extras in (
        (0.0, False, 0.0, None, (12,), False),
        (0.1, True, 1e-2, 3.0, (3, 4), True),
        (0.0, False, 1e-2, None, (3, 4), True),
    ):
        h, w, b, y, cw = make(shape, probs=probs)
        opts = dict(reduction=reduction, label_smoothing=ls, z_loss=z, softcap=cap,
                    return_lse=extras, return_logprobs=extras, return_entropy=extras)
        t_cw = cw if use_cw else None
        th, tw, tb = leaves(h, w, b)
        out = lt.linear_cross_entropy(th, tw, y, bias=tb, class_weight=t_cw, **opts)
        outs = list(out) if extras else [out]
        rng = np.random.default_rng(6)
        cots = [rng.normal(size=tuple(o.shape)) for o in outs]
        sum((o * torch.from_numpy(c)).sum() for o, c in zip(outs, cots)).backward()
        j_cw = None if t_cw is None else jnp.asarray(t_cw.numpy())

        def f(h_, w_, b_, opts=opts, j_cw=j_cw, y=y, cots=cots, extras=extras):
            o = lj.linear_cross_entropy(h_, w_, jnp.asarray(y.numpy()), bias=b_,
                                        class_weight=j_cw, chunk_size=5, **opts)
            os_ = list(o) if extras else [o]
            return sum((a * c).sum() for a, c in zip(os_, cots)), os_

        (_, jouts), grads = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True))(
            *(jnp.asarray(x.numpy()) for x in (h, w, b)))
        for a, r in zip(jouts, outs):
            np.testing.assert_allclose(np.asarray(a), r.detach().numpy(), rtol=1e-10, atol=1e-12)
        for a, r in zip(grads, (th, tw, tb)):
            np.testing.assert_allclose(np.asarray(a), r.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_jax_all_ignored_and_half_precision():
    h, w, b, y, _ = make(ignore="all")
    jy = jnp.asarray(y.numpy())
    jh, jw = jnp.asarray(h.numpy()), jnp.asarray(w.numpy())
    assert np.isnan(float(lj.linear_cross_entropy(jh, jw, jy)))
    grads = jax.grad(lambda a, c: lj.linear_cross_entropy(a, c, jy), argnums=(0, 1))(jh, jw)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in grads)
    h, w, b, y, _ = make((4, 16), d=8, v=40, dtype=torch.float32)
    hb, wb = (jnp.asarray(x.numpy()).astype(jnp.bfloat16) for x in (h, w))
    jy = jnp.asarray(y.numpy())
    loss, (gh, gw) = jax.value_and_grad(
        lambda a, c: lj.linear_cross_entropy(a, c, jy, z_loss=1e-3), argnums=(0, 1))(hb, wb)
    assert loss.dtype == jnp.float32 and gh.dtype == gw.dtype == jnp.bfloat16
    ref = composed(*(torch.tensor(np.asarray(x.astype(jnp.float32))) for x in (hb, wb)), y,
                   z_loss=1e-3)[0]
    np.testing.assert_allclose(float(loss), ref.item(), rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# The benchmark's harness, and the GPU (only where one is present)
# ----------------------------------------------------------------------------------------------


def _bench():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_linear_cross_entropy.py"
    spec = importlib.util.spec_from_file_location("bench_linear_cross_entropy", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_memory_harness_runs_in_a_fresh_process():
    m = _bench().measure_memory("losslab", 64, 8, 100, None, 1)
    assert m["extra_bytes"] >= 0 and m["input_bytes"] == (64 * 8 + 100 * 8) * 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_equals_cpu_and_the_gpu_benchmark_runs(tmp_path, monkeypatch):
    h, w, b, y, cw = make((4, 16), d=32, v=500, dtype=torch.float32, seed=7)
    opts = dict(reduction="none", label_smoothing=0.1, class_weight=cw, z_loss=1e-3,
                softcap=30.0, chunk_size=24, return_entropy=True)
    got = []
    for dev in ("cpu", "cuda"):
        th, tw, tb = leaves(*(x.to(dev) for x in (h, w, b)))
        out = lt.linear_cross_entropy(th, tw, y.to(dev), bias=tb,
                                      **{**opts, "class_weight": cw.to(dev)})
        (out.loss.sum() + out.entropy.sum()).backward()
        got.append([t.detach().cpu() for t in (out.loss, out.entropy, th.grad, tw.grad, tb.grad)])
    for a, r in zip(*got):
        assert_close(a, r, 1e-5)
    bench = _bench()
    monkeypatch.setattr(bench, "OUT", tmp_path)
    monkeypatch.setattr("sys.argv", ["bench", "--device", "cuda", "--tokens", "512",
                                     "--vocab", "4096", "--rounds", "2"])
    bench.main()
    assert "losslab" in (tmp_path / "linear_cross_entropy_cuda.md").read_text()


# --- the catalog entry: losslab.get("linear_cross_entropy") -------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1, "z_loss": 1e-3, "softcap": 4.0},
                                     {"class_weight": [0.5, 1.0, 2.0, 1.5], "ignore_index": 1}])
def test_catalog_entry_equals_the_module_function(reduction, options):
    import losslab
    from losslab.losses import linear_cross_entropy as lce

    rng = np.random.default_rng(0)
    h, w = rng.normal(size=(7, 3)), rng.normal(size=(4, 3))
    b, y = rng.normal(size=4), rng.integers(0, 4, size=7)
    opts = dict(options)
    if "class_weight" in opts:
        opts["class_weight"] = np.asarray(opts["class_weight"])
    loss = losslab.get("linear_cross_entropy", reduction=reduction, **opts)
    value, (dh, dw, db) = loss.value_and_grad(h, w, y, b)
    module_opts = {k: v for k, v in opts.items() if k != "class_weight"}
    ref_v, (rh, rw, rb) = lce.value_and_grad(
        h, w, y, bias=b, class_weight=opts.get("class_weight"), reduction=reduction,
        **module_opts,
    )
    np.testing.assert_allclose(value, ref_v, rtol=1e-12, atol=1e-14)
    for got, want in ((dh, rh), (dw, rw), (db, rb)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)
    sw = rng.uniform(0.5, 2.0, size=7)  # sample weights: every loss of the catalog takes them
    weighted = loss(h, w, y, b, sample_weight=sw)
    per_token = losslab.get("linear_cross_entropy", reduction="none", **opts)(h, w, y, b)
    if reduction == "sum":
        np.testing.assert_allclose(weighted, np.sum(sw * per_token), rtol=1e-12)


def test_catalog_entry_refuses_what_its_one_reducer_cannot_average():
    import losslab

    loss = losslab.get("linear_cross_entropy", class_weight=np.ones(4), z_loss=1e-4)
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="two mean denominators"):
        loss(rng.normal(size=(5, 3)), rng.normal(size=(4, 3)), rng.integers(0, 4, 5), None)
    with pytest.raises(TypeError, match="runs on numpy and torch arrays"):
        import array_api_strict as xs

        losslab.get("linear_cross_entropy")(
            xs.asarray(rng.normal(size=(5, 3))), xs.asarray(rng.normal(size=(4, 3))),
            xs.asarray(rng.integers(0, 4, 5)), None,
        )
