"""The overlap losses (dice, jaccard, tversky, focal_tversky, generalized_dice, mcc): against
direct torch definitions with autograd, identities between them, known values, finite differences
with hypothesis-drawn inputs, and bad input; then (issue 13) every option against the peer library
it comes from (segmentation_models_pytorch, kornia, MONAI, optax, Keras: each definition written
out independently in the test), derivatives over the options, stability and the adapters."""

import itertools

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gradcheck import assert_fd_derivatives, assert_fd_grad, torch_value_and_grad
from hypothesis import given
from hypothesis import strategies as st

import losslab

REDUCTIONS = ("mean", "sum", "none")
SHAPES = [(3, 4), (2, 3, 4, 2), (1, 5)]
TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-6)}


def _reduce(per, reduction):
    return per if reduction == "none" else per.sum() if reduction == "sum" else per.mean()


def torch_tversky(p, t, *, alpha, beta, smooth, reduction):
    """smp-style definition: sums over every non-batch dim, smooth in numerator and denominator."""
    dims = tuple(range(1, p.dim()))
    tp = (p * t).sum(dims)
    fp = (p * (1 - t)).sum(dims)
    fn = ((1 - p) * t).sum(dims)
    return _reduce(1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth), reduction)


def torch_dice(p, t, *, smooth, reduction):
    dims = tuple(range(1, p.dim()))
    inter = (p * t).sum(dims)
    card = (p + t).sum(dims)
    return _reduce(1 - (2 * inter + smooth) / (card + smooth), reduction)


def torch_jaccard(p, t, *, smooth, reduction):
    dims = tuple(range(1, p.dim()))
    inter = (p * t).sum(dims)
    union = (p + t).sum(dims) - inter
    return _reduce(1 - (inter + smooth) / (union + smooth), reduction)


def _inputs(rng, shape, dtype, binary):
    p = rng.uniform(0, 1, size=shape).astype(dtype)
    t = (rng.random(shape) < 0.4) if binary else rng.random(shape)
    t = t.astype(dtype)
    # A positive in every sample: with smooth=0 and alpha=0 an empty mask is 0/0 (NaN, as torch).
    t.reshape(shape[0], -1)[:, 0] = 1.0
    return p, t


CASES = list(
    itertools.product(
        ["dice", "jaccard", "tversky-0.5-0.5", "tversky-0.3-0.7", "tversky-1-0", "tversky-0-2"],
        SHAPES, (1.0, 0.25, 0.0), (False, True), REDUCTIONS,
    )
)


@pytest.mark.parametrize(("variant", "shape", "smooth", "binary", "red"), CASES)
def test_matches_torch_definition(variant, shape, smooth, binary, red):
    name, *ab = variant.split("-")
    opts = {} if not ab else {"alpha": float(ab[0]), "beta": float(ab[1])}
    ref_fn = {"dice": torch_dice, "jaccard": torch_jaccard, "tversky": torch_tversky}[name]
    ref_opts = dict(opts, smooth=smooth, reduction=red)
    if name == "tversky" and not opts:
        ref_opts.update(alpha=0.5, beta=0.5)
    for dtype in ("float64", "float32"):
        p, t = _inputs(np.random.default_rng(len(shape)), shape, dtype, binary)
        v, g = losslab.get(name, smooth=smooth, reduction=red, **opts).value_and_grad(p, t)
        rv, (rg,) = torch_value_and_grad(ref_fn, (p, t), (0,), **ref_opts)
        assert v.dtype == np.dtype(dtype) and g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(v, rv, **TOL[dtype])
        np.testing.assert_allclose(g, rg, **TOL[dtype])


def test_tversky_defaults_are_half_half():
    assert losslab.spec("tversky").defaults["alpha"] == 0.5
    assert losslab.spec("tversky").defaults["beta"] == 0.5
    assert losslab.spec("dice").defaults["smooth"] == 1.0


@pytest.mark.parametrize("smooth", [1.0, 0.3])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_identities_between_the_three(smooth, red):
    p, t = _inputs(np.random.default_rng(1), (3, 2, 4), "float64", binary=False)
    j = losslab.get("jaccard", smooth=smooth, reduction=red).value_and_grad(p, t)
    t11 = losslab.get("tversky", alpha=1, beta=1, smooth=smooth, reduction=red).value_and_grad(p, t)
    d = losslab.get("dice", smooth=smooth, reduction=red).value_and_grad(p, t)
    thh = losslab.get("tversky", smooth=smooth / 2, reduction=red).value_and_grad(p, t)
    for a, b in ((j, t11), (d, thh)):
        np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12)


@pytest.mark.parametrize("name", ["dice", "jaccard", "tversky"])
def test_known_values(name):
    mask = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    # Perfect prediction (and an empty prediction on an empty mask) scores 1: loss 0.
    np.testing.assert_allclose(losslab.get(name, reduction="none")(mask, mask), [0.0, 0.0])
    # Disjoint binary masks without smoothing: score 0, loss 1.
    disjoint = np.array([[0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    target = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    np.testing.assert_allclose(losslab.get(name, smooth=0.0)(disjoint, target), 1.0)


def test_smooth_is_added_to_numerator_and_denominator():
    p = np.array([[0.5, 0.5]])
    t = np.array([[1.0, 0.0]])
    # dice: (2 * 0.5 + 1) / (1 + 1 + 1) = 2/3
    np.testing.assert_allclose(losslab.get("dice")(p, t), 1 - 2 / 3)
    # jaccard: (0.5 + 1) / (1 + 1 - 0.5 + 1) = 0.6
    np.testing.assert_allclose(losslab.get("jaccard")(p, t), 1 - 0.6)


# ----------------------------------------------------------------------------------------------
# Finite differences with hypothesis (probabilities kept 1e-3 inside [0, 1])
# ----------------------------------------------------------------------------------------------


@st.composite
def _prob_inputs(draw):
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=3))
    p = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.01, 0.99)))
    if draw(st.booleans()):
        t = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0])))
    else:
        t = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0)))
    return p, t


FD_CASES = [
    ("dice", {"smooth": s}, r) for s in (1.0, 0.1) for r in REDUCTIONS
] + [
    ("jaccard", {"smooth": s}, r) for s in (1.0, 0.1) for r in REDUCTIONS
] + [
    ("tversky", {"alpha": a, "beta": b, "smooth": s}, r)
    for (a, b) in ((0.5, 0.5), (0.3, 0.7), (1.0, 0.0)) for s in (1.0, 0.1) for r in REDUCTIONS
]


@pytest.mark.parametrize(("name", "opts", "red"), FD_CASES)
@given(data=st.data())
def test_gradient_matches_fd(name, opts, red, data):
    assert_fd_grad(losslab.get(name, reduction=red, **opts), data.draw(_prob_inputs()))


@pytest.mark.parametrize("name", ["dice", "jaccard", "tversky"])
@pytest.mark.parametrize("red", REDUCTIONS)
@pytest.mark.parametrize("row_dot", ["blas-dot-per-row", "product-and-sum"])
def test_torch_row_dot_paths_equal_numpy(name, red, row_dot, monkeypatch):
    """On CPU torch, long rows get one torch.dot and one torch.add each, short ones a product, a
    sum and an addcmul; both equal the NumPy (vecdot) result, and the path the threshold picks is
    the one taken."""
    torch = pytest.importorskip("torch")
    from losslab.losses import _primitives

    rng = np.random.default_rng(3)
    p, t = _inputs(rng, (3, 2, 5, 4), "float64", binary=False)
    opts = {"alpha": 0.3, "beta": 0.7} if name == "tversky" else {}
    loss = losslab.get(name, reduction=red, **opts)
    want_v, want_g = loss.value_and_grad(p, t)
    calls = []
    real_dot = torch.dot
    monkeypatch.setattr(torch, "dot", lambda a, b: calls.append(1) or real_dot(a, b))
    monkeypatch.setattr(_primitives, "ROW_LOOP_MIN", 40 if row_dot == "blas-dot-per-row" else 41)
    v, g = loss.value_and_grad(torch.from_numpy(p), torch.from_numpy(t))
    assert len(calls) == (3 if row_dot == "blas-dot-per-row" else 0)
    np.testing.assert_allclose(v.numpy(), want_v, **TOL["float64"])
    np.testing.assert_allclose(g.numpy(), want_g, **TOL["float64"])


# ----------------------------------------------------------------------------------------------
# Bad input: one test per case
# ----------------------------------------------------------------------------------------------

NAMES = ["dice", "jaccard", "tversky"]
P = np.full((2, 3), 0.5)
T = np.zeros((2, 3))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [1.5, -0.1, np.nan])
def test_input_outside_unit_interval_names_input(name, bad):
    p = P.copy()
    p[1, 2] = bad
    with pytest.raises(ValueError, match=r"input must lie in \[0, 1\]"):
        losslab.get(name)(p, T)


@pytest.mark.parametrize("name", NAMES)
def test_target_outside_unit_interval_names_target(name):
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
        losslab.get(name)(P, T + 2.0)


@pytest.mark.parametrize("name", NAMES)
def test_shape_mismatch_names_target(name):
    with pytest.raises(ValueError, match="target must have the same shape"):
        losslab.get(name)(P, np.zeros((2, 4)))


@pytest.mark.parametrize("name", NAMES)
def test_integer_input_is_a_type_error(name):
    with pytest.raises(TypeError, match="input"):
        losslab.get(name)(np.ones((2, 3), dtype=np.int64), T)


@pytest.mark.parametrize("name", NAMES)
def test_one_dimensional_input_names_input(name):
    with pytest.raises(ValueError, match="input must have shape"):
        losslab.get(name)(np.full(3, 0.5), np.zeros(3))


@pytest.mark.parametrize("name", NAMES)
def test_negative_smooth_names_smooth(name):
    with pytest.raises(ValueError, match="smooth"):
        losslab.get(name, smooth=-1.0)(P, T)


@pytest.mark.parametrize("arg", ["alpha", "beta"])
def test_negative_tversky_weight_names_it(arg):
    with pytest.raises(ValueError, match=arg):
        losslab.get("tversky", **{arg: -0.5})(P, T)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_reduction_names_reduction(name):
    with pytest.raises(ValueError, match="reduction"):
        losslab.get(name, reduction="avg")(P, T)


# ----------------------------------------------------------------------------------------------
# Issue 13: modes, blocks, logits, weights, ignore_index, smoothing, squared and soft-label
# intersections, empty classes. Each peer's definition is written out independently below (torch,
# from the peer's source at the version named) and compared with losslab's options.
# ----------------------------------------------------------------------------------------------


def _tt(a):
    return torch.tensor(np.array(a, copy=True))


def _value_and_grad(fn, x, *args, **kw):
    xt = _tt(x).requires_grad_(True)
    out = fn(xt, *args, **kw)
    out.backward(torch.ones_like(out))
    return out.detach().numpy(), xt.grad.numpy()


def _seg_batch(rng, mode, *, n=3, c=3, spatial=(4, 3), logits=True, soft=False, dtype="float64"):
    """(input, target): logits or probabilities; masks, soft labels or class indices."""
    shape = (n,) + ((c,) if mode != "binary" else (1,)) + spatial
    x = 2.0 * rng.normal(size=shape) if logits else rng.uniform(0.05, 0.95, size=shape)
    if mode == "multiclass":
        t = rng.integers(0, c, size=(n,) + spatial)
    elif soft:
        t = rng.random(size=shape)
    else:
        t = (rng.random(size=shape) < 0.4).astype(np.float64)
    return x.astype(dtype), (t if mode == "multiclass" else t.astype(dtype))


def smp_loss(y_pred, y_true, *, mode, kind="dice", from_logits=True, smooth=0.0, eps=1e-7,
             ignore_index=None, class_weights=None, alpha=0.5, beta=0.5, gamma=1.0):
    """segmentation_models_pytorch 0.6.0 DiceLoss / JaccardLoss / TverskyLoss.forward: sums over
    dims=(0, 2) (the batch and the pixels), the soft intersection (|p| + |t| - |p - t|) / 2, the
    denominator clamped at eps, classes absent from the target zeroed, the class-weighted mean
    (raised to gamma for Tversky)."""
    if from_logits:
        y_pred = y_pred.log_softmax(dim=1).exp() if mode == "multiclass" else F.logsigmoid(
            y_pred).exp()
    bs = y_true.size(0)
    num_classes = y_pred.size(1)
    dims = (0, 2)
    if mode == "binary":
        y_true = y_true.reshape(bs, 1, -1)
        y_pred = y_pred.reshape(bs, 1, -1)
        if ignore_index is not None:
            mask = y_true != ignore_index
            y_pred, y_true = y_pred * mask, y_true * mask
    if mode == "multiclass":
        y_true = y_true.reshape(bs, -1)
        y_pred = y_pred.reshape(bs, num_classes, -1)
        if ignore_index is not None:
            mask = y_true != ignore_index
            y_pred = y_pred * mask.unsqueeze(1)
            y_true = F.one_hot((y_true * mask).to(torch.long), num_classes)
            y_true = y_true.permute(0, 2, 1) * mask.unsqueeze(1)
        else:
            y_true = F.one_hot(y_true, num_classes).permute(0, 2, 1)
    if mode == "multilabel":
        y_true = y_true.reshape(bs, num_classes, -1)
        y_pred = y_pred.reshape(bs, num_classes, -1)
        if ignore_index is not None:
            mask = y_true != ignore_index
            y_pred, y_true = y_pred * mask, y_true * mask
    y_true = y_true.type_as(y_pred)
    a, b = {"dice": (0.5, 0.5), "jaccard": (1.0, 1.0), "tversky": (alpha, beta)}[kind]
    out_sum, tgt_sum = y_pred.sum(dims), y_true.sum(dims)
    inter = (out_sum + tgt_sum - torch.linalg.vector_norm(y_pred - y_true, ord=1, dim=dims)) / 2
    fp, fn = out_sum - inter, tgt_sum - inter
    score = (inter + smooth) / (inter + a * fp + b * fn + smooth).clamp_min(eps)
    loss = (1.0 - score) * (y_true.sum(dims) > 0).to(score.dtype)
    if class_weights is not None:
        w = torch.as_tensor(class_weights, dtype=loss.dtype)
        agg = (loss * w).sum() / w.sum()
    else:
        agg = loss.mean()
    return agg**gamma if kind == "tversky" else agg


SMP_CASES = [
    (kind, mode, ignore, weighted, smooth)
    for kind in ("dice", "jaccard", "tversky")
    for mode in ("binary", "multilabel", "multiclass")
    for ignore in (False, True)
    for weighted in ((False, True) if mode != "binary" else (False,))
    for smooth in (0.0, 1.0)
]


@pytest.mark.parametrize(("kind", "mode", "ignore", "weighted", "smooth"), SMP_CASES)
def test_matches_segmentation_models_pytorch(kind, mode, ignore, weighted, smooth):
    rng = np.random.default_rng(21)
    x, t = _seg_batch(rng, mode, soft=(mode != "multiclass"))
    ignore_index = None
    if ignore:
        ignore_index = -1
        t = np.array(t, copy=True)
        t.reshape(-1)[::5] = -1
    w = np.array([0.5, 2.0, 1.0]) if weighted else None
    opts = {"alpha": 0.3, "beta": 0.7} if kind == "tversky" else {}
    ref_v, ref_g = _value_and_grad(
        smp_loss, x, _tt(t), mode=mode, kind=kind, smooth=smooth, ignore_index=ignore_index,
        class_weights=w, **opts,
    )
    # smp 0.6.0 computes Dice as a Tversky index (I + s) / ((P + T) / 2 + s): its smooth s is
    # losslab's 2 s (as optax's); Jaccard and Tversky take it as it is.
    loss = losslab.get(
        kind, mode=mode, from_logits=True, batch=True, soft_label=True, empty="zero",
        smooth=2 * smooth if kind == "dice" else smooth, ignore_index=ignore_index, weight=w,
        **opts,
    )
    v, g = loss.value_and_grad(x, t)
    np.testing.assert_allclose(v, ref_v, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g, ref_g, rtol=1e-9, atol=1e-12)


def test_focal_tversky_matches_smp_tversky_gamma_for_one_class():
    """smp raises the class mean to gamma, losslab each class's loss: the same for one class."""
    rng = np.random.default_rng(22)
    x, t = _seg_batch(rng, "binary")
    ref_v, ref_g = _value_and_grad(
        smp_loss, x, _tt(t), mode="binary", kind="tversky", smooth=1.0, alpha=0.3, beta=0.7,
        gamma=0.75,
    )
    loss = losslab.get("focal_tversky", from_logits=True, batch=True, soft_label=True,
                       empty="zero", alpha=0.3, beta=0.7, gamma=0.75)
    v, g = loss.value_and_grad(x, t)
    np.testing.assert_allclose(v, ref_v, rtol=1e-10)
    np.testing.assert_allclose(g, ref_g, rtol=1e-9, atol=1e-12)


def kornia_dice(pred, target, *, average, eps, weight=None, ignore_index=-100):
    """kornia 0.9.0 ``losses.dice_loss`` (its one-hot path): softmax over classes, ignored pixels
    zeroed in both, micro: ``1 - 2 sum_c w_c I_c / (sum_c w_c (P_c + T_c) + eps)`` per sample;
    macro: per sample and class, the weighted mean over the classes present in the sample; the
    mean over the batch."""
    pred_soft = F.softmax(pred, dim=1)
    mask = target != ignore_index
    target = torch.where(mask, target, 0)
    onehot = F.one_hot(target, pred.shape[1]).movedim(-1, 1).to(pred.dtype)
    m = mask.unsqueeze(1).to(pred.dtype)
    onehot, pred_soft = onehot * m, pred_soft * m
    w = pred.new_ones(pred.shape[1]) if weight is None else torch.as_tensor(weight)
    dims = tuple(range(2, pred.dim()))
    inter_t = onehot
    if average == "micro":
        dims = (1,) + dims
        wv = w.view(-1, *([1] * (pred.dim() - 2)))
        pred_soft, onehot = pred_soft * wv, onehot * wv
    inter = (pred_soft * inter_t).sum(dims)
    card = (pred_soft + onehot).sum(dims)
    loss = 1.0 - 2.0 * inter / (card + eps)
    if average == "macro":
        present = (inter_t == 1).flatten(2).any(-1)
        wp = w * present
        loss = (loss * wp).sum(-1) / wp.sum(-1)
    return loss.mean()


@pytest.mark.parametrize("average", ["micro", "macro"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [False, True])
def test_matches_kornia_dice_loss(average, weighted, ignore):
    rng = np.random.default_rng(23)
    x, t = _seg_batch(rng, "multiclass", n=4, c=4, spatial=(3, 5))
    if ignore:
        t.reshape(-1)[::4] = -100
    t[:, 0, 0] = 1  # every sample keeps a present class
    w = np.array([0.5, 2.0, 1.0, 0.25]) if weighted else None
    ref_v, ref_g = _value_and_grad(kornia_dice, x, _tt(t), average=average, eps=1e-8, weight=w)
    loss = losslab.get(
        "dice", mode="multiclass", from_logits=True, average=average, weight=w,
        ignore_index=-100, smooth_nr=0.0, smooth_dr=1e-8,
        empty="exclude" if average == "macro" else "score",
    )
    v, g = loss.value_and_grad(x, t)
    np.testing.assert_allclose(v, ref_v, rtol=1e-10)
    np.testing.assert_allclose(g, ref_g, rtol=1e-9, atol=1e-12)


def monai_dice(inp, target, *, sigmoid=False, softmax=False, to_onehot_y=False,
               squared_pred=False, jaccard=False, smooth_nr=1e-5, smooth_dr=1e-5, batch=False,
               weight=None, soft_label=False, reduction="mean"):
    """MONAI 1.6.1 ``DiceLoss.forward`` (include_background=True, no ignore_index):
    per sample and class (over the batch too with ``batch``), ``f = 1 - (2 tp + nr) / (2 (tp
    + fp/2 + fn/2) + dr)`` (``2 (tp + fp + fn)`` for Jaccard) with ``compute_tp_fp_fn``'s
    ord-2 / soft-label forms, times the class weights, then the mean over samples and classes."""
    if sigmoid:
        inp = torch.sigmoid(inp)
    if softmax:
        inp = torch.softmax(inp, 1)
    if to_onehot_y:
        target = F.one_hot(target[:, 0].long(), inp.shape[1]).movedim(-1, 1).to(inp.dtype)
    axes = list(range(2, inp.dim()))
    if batch:
        axes = [0] + axes
    order = 2 if squared_pred else 1
    if order == 1 and not soft_label:
        tp = (inp * target).sum(axes)
        fp = inp.sum(axes) - tp
        fn = target.sum(axes) - tp
    else:
        po = torch.linalg.vector_norm(inp, ord=order, dim=axes) ** order
        go = torch.linalg.vector_norm(target, ord=order, dim=axes) ** order
        diff = torch.linalg.vector_norm(inp - target, ord=order, dim=axes) ** order
        tp = (po + go - diff) / 2
        fp, fn = po - tp, go - tp
    if not jaccard:
        fp, fn = fp * 0.5, fn * 0.5
    f = 1 - (2 * tp + smooth_nr) / (2 * (tp + fp + fn) + smooth_dr)
    if weight is not None:
        f = f * torch.as_tensor(weight, dtype=f.dtype)
    return f.mean() if reduction == "mean" else f.sum()


MONAI_CASES = [
    (kind, mode, batch, squared, soft, weighted)
    for kind in ("dice", "jaccard")
    for mode in ("multilabel", "multiclass")
    for batch in (False, True)
    for squared, soft in ((False, False), (True, False), (False, True))
    for weighted in (False, True)
]


@pytest.mark.parametrize(("kind", "mode", "batch", "squared", "soft", "weighted"), MONAI_CASES)
def test_matches_monai_dice_loss(kind, mode, batch, squared, soft, weighted):
    rng = np.random.default_rng(24)
    x, t = _seg_batch(rng, mode, soft=soft)
    w = np.array([0.5, 2.0, 1.0]) if weighted else None
    if mode == "multiclass":
        ref_target = _tt(t[:, None])
        flags = dict(softmax=True, to_onehot_y=True)
    else:
        ref_target = _tt(t)
        flags = dict(sigmoid=True)
    snr, sdr = 1e-5, 3e-5
    ref_v, ref_g = _value_and_grad(
        monai_dice, x, ref_target, squared_pred=squared, jaccard=kind == "jaccard",
        smooth_nr=snr, smooth_dr=sdr, batch=batch, weight=w, soft_label=soft, **flags,
    )
    scale = 1.0 if kind == "dice" else 0.5  # MONAI's Jaccard is (2 I + nr) / (2 U + dr)
    loss = losslab.get(
        kind, mode=mode, from_logits=True, batch=batch, squared=squared, soft_label=soft,
        weight=w, smooth_nr=snr * scale, smooth_dr=sdr * scale,
    )
    v, g = loss.value_and_grad(x, t)
    # MONAI multiplies by the class weights and takes the mean over classes; losslab takes the
    # weighted mean: MONAI = losslab * sum(w) / C.
    factor = 1.0 if w is None else w.sum() / 3
    if batch:
        factor = factor  # one score for the batch: MONAI's mean is over classes only
    np.testing.assert_allclose(v * factor, ref_v, rtol=1e-10)
    np.testing.assert_allclose(g * factor, ref_g, rtol=1e-9, atol=1e-12)


def monai_tversky(inp, target, *, alpha, beta, smooth_nr, smooth_dr, batch):
    """MONAI 1.6.1 ``TverskyLoss.forward`` with sigmoid=True: ``fp = sum p (1 - t)``,
    ``fn = sum (1 - p) t`` per sample and class (over the batch with ``batch``), then the mean."""
    inp = torch.sigmoid(inp)
    axes = list(range(2, inp.dim()))
    if batch:
        axes = [0] + axes
    tp = (inp * target).sum(axes)
    fp = alpha * (inp * (1 - target)).sum(axes)
    fn = beta * ((1 - inp) * target).sum(axes)
    return (1.0 - (tp + smooth_nr) / (tp + fp + fn + smooth_dr)).mean()


@pytest.mark.parametrize("batch", [False, True])
def test_tversky_matches_monai(batch):
    rng = np.random.default_rng(25)
    x, t = _seg_batch(rng, "multilabel", soft=True)
    ref_v, ref_g = _value_and_grad(
        monai_tversky, x, _tt(t), alpha=0.3, beta=0.7, smooth_nr=1e-5, smooth_dr=2e-5,
        batch=batch,
    )
    loss = losslab.get("tversky", mode="multilabel", from_logits=True, batch=batch, alpha=0.3,
                       beta=0.7, smooth_nr=1e-5, smooth_dr=2e-5)
    v, g = loss.value_and_grad(x, t)
    np.testing.assert_allclose(v, ref_v, rtol=1e-10)
    np.testing.assert_allclose(g, ref_g, rtol=1e-9, atol=1e-12)


def monai_generalized_dice(inp, target, *, w_type, smooth_nr, smooth_dr, batch, soft_label):
    """MONAI 1.6.1 ``GeneralizedDiceLoss.forward`` with softmax=True, one-hot targets:
    ``w = 1 / T^2`` (or ``1 / T``, 1), infinite weights replaced by the largest finite one (per
    sample, or over the batch), ``1 - (2 sum w tp + nr) / (sum w (P + T) + dr)``."""
    inp = torch.softmax(inp, 1)
    axes = list(range(2, inp.dim()))
    if batch:
        axes = [0] + axes
    if soft_label:
        po, go = inp.abs().sum(axes), target.abs().sum(axes)
        tp = (po + go - (inp - target).abs().sum(axes)) / 2
    else:
        tp = (inp * target).sum(axes)
        po, go = inp.sum(axes), target.sum(axes)
    denominator = po + go
    ground_o = target.sum(axes)
    w = {"square": 1 / (ground_o * ground_o), "simple": 1 / ground_o,
         "uniform": torch.ones_like(ground_o)}[w_type]
    infs = torch.isinf(w)
    w = torch.where(infs, torch.zeros_like(w), w)
    if batch:
        w = w + infs * torch.max(w)
    else:
        w = w + infs * torch.max(w, dim=1)[0].unsqueeze(1)
    dim = 0 if batch else 1
    numer = 2.0 * (tp * w).sum(dim, keepdim=True) + smooth_nr
    denom = (denominator * w).sum(dim, keepdim=True) + smooth_dr
    return (1.0 - numer / denom).mean()


@pytest.mark.parametrize("w_type", ["square", "simple", "uniform"])
@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("soft_label", [False, True])
def test_generalized_dice_matches_monai(w_type, batch, soft_label):
    rng = np.random.default_rng(26)
    x, labels = _seg_batch(rng, "multiclass", n=3, c=4, spatial=(5, 4))
    labels[0] = np.where(labels[0] == 2, 1, labels[0])  # class 2 absent from sample 0
    onehot = np.moveaxis(np.eye(4)[labels], -1, 1)
    ref_v, ref_g = _value_and_grad(
        monai_generalized_dice, x, _tt(onehot), w_type=w_type, smooth_nr=1e-5, smooth_dr=1e-5,
        batch=batch, soft_label=soft_label,
    )
    for target, mode in ((onehot, "multilabel"), (labels, "multiclass")):
        loss = losslab.get("generalized_dice", mode=mode, from_logits=True, batch=batch,
                           weight_type=w_type, soft_label=soft_label)
        v, g = loss.value_and_grad(x, target)
        if mode == "multilabel":
            # multilabel applies a sigmoid: compare on the softmax's probabilities instead
            p = F.softmax(_tt(x), 1).numpy()
            loss = losslab.get("generalized_dice", batch=batch, weight_type=w_type,
                               soft_label=soft_label)
            np.testing.assert_allclose(loss(p, target), ref_v, rtol=1e-10)
            continue
        np.testing.assert_allclose(v, ref_v, rtol=1e-10)
        np.testing.assert_allclose(g, ref_g, rtol=1e-9, atol=1e-12)


def optax_dice(predictions, targets, *, smooth, alpha=0.5, beta=0.5, class_weights=None):
    """optax 0.2.8 ``losses.dice_loss`` (channels last, probabilities given, apply_softmax=False,
    reduction="mean"): per sample and class over the spatial axes,
    ``1 - (I + s) / (I + alpha (P - I) + beta (T - I) + s)``, times the class weights, mean over
    the classes."""
    axis = tuple(range(1, predictions.ndim - 1))
    inter = (predictions * targets).sum(axis)
    ps, ts = predictions.sum(axis), targets.sum(axis)
    loss = 1.0 - (inter + smooth) / (inter + alpha * (ps - inter) + beta * (ts - inter) + smooth)
    if class_weights is not None:
        loss = loss * class_weights
    return loss.mean(-1)


@pytest.mark.parametrize("weighted", [False, True])
def test_optax_smooth_s_is_losslab_smooth_2s(weighted):
    rng = np.random.default_rng(27)
    p, t = _seg_batch(rng, "multilabel", logits=False, soft=True)
    w = np.array([0.5, 2.0, 1.0]) if weighted else None
    ref = optax_dice(np.moveaxis(p, 1, -1), np.moveaxis(t, 1, -1), smooth=0.7, class_weights=w)
    ours = losslab.get("dice", mode="multilabel", smooth=1.4, weight=w, reduction="none")(p, t)
    factor = 1.0 if w is None else w.sum() / 3  # optax multiplies by w and means over classes
    np.testing.assert_allclose(ours * factor, ref, rtol=1e-12)
    ref_t = optax_dice(np.moveaxis(p, 1, -1), np.moveaxis(t, 1, -1), smooth=0.7, alpha=0.3,
                       beta=0.8)
    ours_t = losslab.get("tversky", mode="multilabel", smooth=0.7, alpha=0.3, beta=0.8,
                         reduction="none")(p, t)
    np.testing.assert_allclose(ours_t, ref_t, rtol=1e-12)


def keras_dice(y_true, y_pred, axis=None):
    """Keras 3.15.1 ``losses.dice``: ``1 - 2 sum(t p) / (sum t + sum p + 1e-7)``."""
    inter = np.sum(y_true * y_pred, axis=axis)
    return 1 - 2.0 * inter / (np.sum(y_true, axis=axis) + np.sum(y_pred, axis=axis) + 1e-7)


def keras_tversky(y_true, y_pred, alpha=0.5, beta=0.5, axis=None):
    """Keras 3.15.1 ``losses.tversky``: its ``fp`` is ``sum((1 - y_pred) y_true)`` (missed
    positives) and its ``fn`` ``sum(y_pred (1 - y_true))``, so Keras's ``alpha`` weighs false
    negatives: losslab's ``beta``."""
    inter = np.sum(y_true * y_pred, axis=axis)
    fp = np.sum((1 - y_pred) * y_true, axis=axis)
    fn = np.sum(y_pred * (1 - y_true), axis=axis)
    return 1 - inter / (inter + fp * alpha + fn * beta + 1e-7)


def test_keras_dice_and_tversky_axes():
    rng = np.random.default_rng(28)
    p, t = _seg_batch(rng, "binary", logits=False)
    keras_p, keras_t = np.moveaxis(p, 1, -1), np.moveaxis(t, 1, -1)
    dice_opts = dict(smooth_nr=0.0, smooth_dr=1e-7)
    np.testing.assert_allclose(
        losslab.get("dice", batch=True, **dice_opts)(p, t), keras_dice(keras_t, keras_p),
        rtol=1e-12)
    np.testing.assert_allclose(
        losslab.get("dice", reduction="none", **dice_opts)(p, t),
        keras_dice(keras_t, keras_p, axis=(1, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(
        losslab.get("tversky", batch=True, alpha=0.8, beta=0.2, smooth_nr=0.0,
                    smooth_dr=1e-7)(p, t),
        keras_tversky(keras_t, keras_p, alpha=0.2, beta=0.8), rtol=1e-12)


# --- options against their own definitions -----------------------------------------------------


def _by_hand(p, t, *, nr, dr, a, b, axes, squared=False, soft=False):
    """The Tversky index over ``axes`` in NumPy."""
    inter = np.minimum(p, t).sum(axes) if soft else (p * t).sum(axes)
    ps = (p * p).sum(axes) if squared else p.sum(axes)
    ts = (t * t).sum(axes) if squared else t.sum(axes)
    return (inter + nr) / (inter + a * (ps - inter) + b * (ts - inter) + dr)


@pytest.mark.parametrize("average", ["macro", "micro"])
@pytest.mark.parametrize("batch", [False, True])
def test_blocks_by_hand(average, batch):
    rng = np.random.default_rng(29)
    p, t = _seg_batch(rng, "multilabel", logits=False, soft=True)
    axes = (2, 3) if average == "macro" else (1, 2, 3)
    if batch:
        axes = (0,) + axes
    score = _by_hand(p, t, nr=0.3, dr=0.6, a=0.5, b=0.5, axes=axes)
    want = (1 - score).mean(-1) if average == "macro" else 1 - score
    got = losslab.get("dice", mode="multilabel", average=average, batch=batch, smooth_nr=0.6,
                      smooth_dr=1.2, reduction="none")(p, t)
    assert got.shape == (() if batch else (3,))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_batch_is_one_sample_of_the_concatenation():
    rng = np.random.default_rng(30)
    p, t = _seg_batch(rng, "binary", logits=False)
    glued = (p.reshape(1, -1), t.reshape(1, -1))
    for name in ("dice", "jaccard", "tversky", "focal_tversky", "mcc"):
        a = losslab.get(name, batch=True, reduction="none")(p, t)
        b = losslab.get(name, reduction="none")(*glued)
        assert a.shape == ()
        np.testing.assert_allclose(a, b[0], rtol=1e-12)


def test_squared_and_soft_label_by_hand():
    rng = np.random.default_rng(31)
    p, t = _seg_batch(rng, "binary", logits=False, soft=True)
    axes = tuple(range(1, p.ndim))
    sq = 1 - _by_hand(p, t, nr=0.5, dr=0.5, a=0.5, b=0.5, axes=axes, squared=True)
    np.testing.assert_allclose(losslab.get("dice", squared=True, reduction="none")(p, t), sq,
                               rtol=1e-12)
    soft = 1 - _by_hand(p, t, nr=1.0, dr=1.0, a=1.0, b=1.0, axes=axes, soft=True)
    np.testing.assert_allclose(losslab.get("jaccard", soft_label=True, reduction="none")(p, t),
                               soft, rtol=1e-12)


@pytest.mark.parametrize("name", ["dice", "jaccard", "tversky", "focal_tversky"])
def test_soft_label_minimum_is_at_the_soft_target(name):
    """The product intersection scores soft targets below 1 even at p = t; the soft-label one
    reaches its minimum 0 there, with a zero gradient on the side of smaller p."""
    t = np.array([[0.2, 0.7, 0.5, 0.9]])
    opts = {"smooth": 0.0} if name != "tversky" else {"smooth": 0.0, "alpha": 0.5, "beta": 0.5}
    assert losslab.get(name, **opts)(t, t) > 0.05
    soft = losslab.get(name, soft_label=True, **opts)
    np.testing.assert_allclose(soft(t, t), 0.0, atol=1e-15)
    assert soft(t * 0.9, t) > 0 and soft(np.minimum(t * 1.1, 1), t) > 0


def test_class_weights_are_a_weighted_class_mean():
    rng = np.random.default_rng(32)
    p, t = _seg_batch(rng, "multilabel", logits=False)
    w = np.array([0.5, 2.0, 1.0])
    per_class = [losslab.get("dice", reduction="none")(p[:, c], t[:, c]) for c in range(3)]
    want = sum(wc * pc for wc, pc in zip(w, per_class)) / w.sum()
    got = losslab.get("dice", mode="multilabel", weight=w, reduction="none")(p, t)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_ignore_index_drops_elements_from_every_sum():
    rng = np.random.default_rng(33)
    x, labels = _seg_batch(rng, "multiclass", n=2, c=3, spatial=(6,))
    labels[:, ::3] = 255
    kept = labels != 255
    loss = losslab.get("dice", mode="multiclass", from_logits=True, ignore_index=255,
                       reduction="none")
    v, g = loss.value_and_grad(x, labels)
    for i in range(2):
        xi, yi = x[i][:, kept[i]][None], labels[i][kept[i]][None]
        vi, gi = losslab.get("dice", mode="multiclass", from_logits=True,
                             reduction="sum").value_and_grad(xi, yi)
        np.testing.assert_allclose(v[i], vi, rtol=1e-12)
        np.testing.assert_allclose(g[i][:, kept[i]], gi[0], rtol=1e-12)
    assert np.all(g[:, :, ~kept[0]][0] == 0)
    # masks: elements equal to ignore_index (here 255 in a uint8 mask) are dropped too
    m = (rng.random((2, 6)) < 0.5).astype(np.uint8)
    m[:, 0] = 255
    p = rng.uniform(0.05, 0.95, size=(2, 6))
    got = losslab.get("dice", ignore_index=255, reduction="none")(p, m)
    want = losslab.get("dice", reduction="none")(p[:, 1:], m[:, 1:].astype(float))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_one_hot_probability_targets_equal_class_indices():
    rng = np.random.default_rng(34)
    x, labels = _seg_batch(rng, "multiclass")
    onehot = np.moveaxis(np.eye(3)[labels], -1, 1)
    for average in ("macro", "micro"):
        loss = losslab.get("dice", mode="multiclass", from_logits=True, average=average)
        a, b = loss.value_and_grad(x, labels), loss.value_and_grad(x, onehot)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12)


EMPTY_P = np.array([[[0.0, 0.0], [0.6, 0.2], [0.1, 0.0]]])  # (1, 3 classes, 2)
EMPTY_T = np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]])  # class 0 empty & unpredicted,
# class 1 present, class 2 empty but predicted


@pytest.mark.parametrize("smooth", [0.0, 1e-5, 1.0])
def test_empty_conventions(smooth):
    loss = {
        e: losslab.get("dice", mode="multilabel", smooth=smooth, empty=e, reduction="none")
        for e in ("score", "zero", "exclude")
    }
    per_class = [
        losslab.get("dice", smooth=smooth, reduction="none")(EMPTY_P[:, c], EMPTY_T[:, c])[0]
        for c in range(3)
    ]
    assert per_class[0] == 0.0  # an empty prediction on an empty mask is perfect, never NaN
    # a prediction on an empty mask costs 1 (with little smoothing: s / (0.1 + s) scores it)
    assert per_class[2] == pytest.approx(1.0 - smooth / (0.1 + smooth), abs=1e-12)
    np.testing.assert_allclose(loss["score"](EMPTY_P, EMPTY_T), np.mean(per_class))
    np.testing.assert_allclose(loss["zero"](EMPTY_P, EMPTY_T), per_class[1] / 3)
    np.testing.assert_allclose(loss["exclude"](EMPTY_P, EMPTY_T), per_class[1])
    for e in loss.values():
        assert np.all(np.isfinite(e.grad(EMPTY_P, EMPTY_T)))


@pytest.mark.parametrize("name", ["dice", "jaccard", "tversky", "focal_tversky",
                                  "generalized_dice"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_all_empty_never_nan_whatever_the_smoothing(name, from_logits):
    z = np.full((2, 3, 4), -1e4 if from_logits else 0.0)
    t = np.zeros((2, 3, 4))
    for opts in ({"smooth": 0.0}, {"smooth_nr": 0.0, "smooth_dr": 0.0}, {}):
        if name == "generalized_dice":
            opts = {**opts, "mode": "binary"}
        v, g = losslab.get(name, from_logits=from_logits, reduction="none",
                           **opts).value_and_grad(z, t)
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(g)), opts
        np.testing.assert_allclose(v, 0.0, atol=1e-12)


def test_every_pixel_ignored_gives_a_finite_zero():
    x = np.random.default_rng(35).normal(size=(2, 3, 4))
    y = np.full((2, 4), 7)
    for name in ("dice", "jaccard", "tversky", "focal_tversky", "generalized_dice"):
        loss = losslab.get(name, mode="multiclass", from_logits=True, ignore_index=7,
                           smooth=0.0)
        v, g = loss.value_and_grad(x, y)
        assert v == 0.0 and np.all(g == 0), name


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize(("dtype", "m"), [("float32", 1e4), ("float64", 1e30)])
def test_extreme_logits_stay_finite_with_the_right_limits(mode, dtype, m):
    rng = np.random.default_rng(36)
    x, t = _seg_batch(rng, mode, dtype=dtype)
    x = np.sign(x) * (0.5 + np.abs(x)) + 0.1 * np.arange(x.size).reshape(x.shape)
    big = (x * m).astype(dtype)  # logits (and their differences) of order m at least
    for name in ("dice", "jaccard", "tversky", "focal_tversky", "generalized_dice", "mcc"):
        if name == "mcc" and mode != "binary":
            continue
        opts = {} if name == "mcc" else {"mode": mode}
        loss = losslab.get(name, from_logits=True, **opts)
        v, g = loss.value_and_grad(big, t)
        assert v.dtype == np.dtype(dtype) and np.isfinite(v) and np.all(np.isfinite(g)), name
        # saturated logits give the probabilities 0 and 1 exactly: the loss on those
        if mode == "multiclass":
            probs = (big == big.max(axis=1, keepdims=True)).astype(dtype)
        else:
            probs = (big > 0).astype(dtype)
        ref = losslab.get(name, **({} if name == "mcc" else {"mode": mode}))(probs, t)
        np.testing.assert_allclose(v, ref, rtol=1e-5 if dtype == "float32" else 1e-12)
        np.testing.assert_allclose(g, 0.0, atol=1e-30)  # the sigmoid/softmax is flat there


# --- derivatives over the options: gradient, Hessian diagonal and Hessian-vector products ------


_BASE = [
    dict(mode=m, from_logits=fl, average=a, batch=b)
    for m in ("binary", "multilabel", "multiclass")
    for fl in (False, True)
    for a in (("macro", "micro") if m != "binary" else ("macro",))
    for b in (False, True)
]
_EXTRA = [{}, {"ignore_index": -1}, {"soft_label": True}, {"empty": "zero"},
          {"empty": "exclude", "smooth": 0.0}, {"weight": [0.5, 2.0, 1.0]},
          {"smooth_nr": 0.3, "smooth_dr": 0.7}]
DERIV_CASES = [
    (name, {**base, **extra, "reduction": red})
    for name in ("dice", "jaccard", "tversky", "focal_tversky")
    for i, base in enumerate(_BASE)
    for j, extra in enumerate(_EXTRA)
    if not ("weight" in extra and base["mode"] == "binary")
    for red in (("mean", "none")[(i + j) % 2],)
] + [
    (name, {**base, "squared": True, "reduction": "sum"})
    for name in ("dice", "jaccard") for base in _BASE
] + [
    ("focal_tversky", {**base, "gamma": g, "reduction": "mean"})
    for base in _BASE[::3] for g in (0.5, 2.0)
] + [
    ("generalized_dice", {"mode": m, "from_logits": fl, "batch": b, **extra})
    for m in ("binary", "multilabel", "multiclass") for fl in (False, True)
    for b in (False, True)
    for extra in ({}, {"weight_type": "simple", "ignore_index": -1}, {"soft_label": True},
                  {"weight_type": "uniform", "smooth": 0.0})
] + [
    ("mcc", {"from_logits": fl, "batch": b, "smooth": s, "reduction": r})
    for fl in (False, True) for b in (False, True) for s in (1e-5, 0.5) for r in ("mean", "none")
]


@pytest.mark.parametrize(("name", "opts"), DERIV_CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(DERIV_CASES)])
def test_gradient_hessian_and_hvp_match_finite_differences_over_the_options(name, opts):
    rng = np.random.default_rng(37)
    loss = losslab.get(name, **opts)
    for _ in range(2):
        assert_fd_derivatives(loss, loss.example(rng, "float64"), rng)


# --- the adapters over the options -------------------------------------------------------------

ADAPTER_CASES = [
    ("dice", dict(mode="multiclass", from_logits=True, average="micro", ignore_index=-1)),
    ("dice", dict(mode="multilabel", from_logits=True, batch=True, weight=[1.0, 2.0, 0.5])),
    ("jaccard", dict(mode="multiclass", soft_label=True, empty="zero")),
    ("tversky", dict(mode="multilabel", from_logits=True, batch=True, alpha=0.2, beta=0.9)),
    ("focal_tversky", dict(mode="multiclass", from_logits=True, average="micro")),
    ("generalized_dice", dict(mode="multiclass", from_logits=True, batch=True)),
    ("mcc", dict(from_logits=True, batch=True)),
]


@pytest.mark.parametrize(("name", "opts"), ADAPTER_CASES, ids=[c[0] for c in ADAPTER_CASES])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_torch_adapter_gradcheck_over_the_options(name, opts, red):
    import losslab.torch as lt

    spec = losslab.spec(name)
    x, t = spec.example(np.random.default_rng(38), "float64", **opts)
    if "weight" in opts:
        x, t = spec.example(np.random.default_rng(38), "float64", **opts)
    xt = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(t)

    def f(z):
        return getattr(lt, name)(z, tt, reduction=red, **opts)

    assert torch.autograd.gradcheck(f, (xt,))
    module = getattr(lt, spec.module)(reduction=red, **opts)
    torch.testing.assert_close(module(xt, tt), f(xt))


def test_module_names_users_expect():
    import losslab.torch as lt

    for name, module in [("dice", "DiceLoss"), ("jaccard", "JaccardLoss"),
                         ("tversky", "TverskyLoss"), ("focal_tversky", "FocalTverskyLoss"),
                         ("generalized_dice", "GeneralizedDiceLoss"), ("mcc", "MCCLoss")]:
        assert losslab.spec(name).module == module
        assert issubclass(getattr(lt, module), torch.nn.Module)
    crit = lt.DiceLoss(mode="multiclass", from_logits=True)
    x = torch.randn(2, 3, 4, requires_grad=True)
    crit(x, torch.tensor([[0, 1, 2, 1], [2, 2, 0, 1]])).backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("batch", [False, True])
def test_jax_adapter_over_the_options(batch):
    jax = pytest.importorskip("jax")
    import losslab.jax as lj

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(39)
    x, t = _seg_batch(rng, "multiclass")
    opts = dict(mode="multiclass", from_logits=True, average="micro", batch=batch)
    want_v, want_g = losslab.get("dice", **opts).value_and_grad(x, t)
    v, g = jax.value_and_grad(lambda z: lj.dice(z, t, **opts))(jax.numpy.asarray(x))
    np.testing.assert_allclose(np.asarray(v), want_v, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(g), want_g, rtol=1e-10, atol=1e-14)


# --- bad options -------------------------------------------------------------------------------


@pytest.mark.parametrize(("opts", "exc", "match"), [
    ({"mode": "multi"}, ValueError, "mode"),
    ({"average": "weighted"}, ValueError, "average"),
    ({"batch": "yes"}, TypeError, "batch"),
    ({"from_logits": 1}, TypeError, "from_logits"),
    ({"smooth_nr": -1.0}, ValueError, "smooth_nr"),
    ({"empty": "skip"}, ValueError, "empty"),
    ({"ignore_index": 1.5}, TypeError, "ignore_index"),
])
def test_bad_options_are_refused_at_get(opts, exc, match):
    with pytest.raises(exc, match=match):
        losslab.get("dice", **opts)


def test_class_weights_need_classes_and_the_right_length():
    p, t = P, T
    with pytest.raises(ValueError, match="weight .*mode='binary'"):
        losslab.get("dice", weight=[1.0])(p, t)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        losslab.get("dice", mode="multilabel", weight=[1.0, 2.0])(p, t)


def test_multiclass_targets_must_fit():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"target of class indices must have shape \(2, 4\)"):
        losslab.get("dice", mode="multiclass", from_logits=True)(x, np.zeros((2, 3), int))
    with pytest.raises(ValueError, match=r"target holds class labels outside \[0, 3\)"):
        losslab.get("dice", mode="multiclass", from_logits=True)(x, np.full((2, 4), 3))
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
        losslab.get("dice", mode="multilabel")(np.full((2, 3, 4), 0.5), np.full((2, 3, 4), 2.0))
    with pytest.raises(ValueError, match="same shape"):
        losslab.get("dice", mode="multiclass")(np.full((2, 3, 4), 0.2), np.zeros((2, 3, 5)))
