"""lovasz_hinge, lovasz_softmax, dice_ce and dice_focal: against the peers' definitions written out
independently in torch (Berman et al.'s reference code as copied in segmentation_models_pytorch
0.6.0; MONAI 1.6.1's DiceCELoss and DiceFocalLoss), derivatives over the options against finite
differences, stability, the adapters and bad input."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gradcheck import assert_fd_derivatives

import losslab

REDUCTIONS = ("mean", "sum", "none")


def _tt(a):
    return torch.tensor(np.array(a, copy=True))


def _value_and_grad(fn, x, *args, **kw):
    xt = _tt(x).requires_grad_(True)
    out = fn(xt, *args, **kw)
    out.backward(torch.ones_like(out))
    return out.detach().numpy(), xt.grad.numpy()


def _reduce(per, reduction):
    return per if reduction == "none" else per.sum() if reduction == "sum" else per.mean()


# --- Berman et al.'s reference (smp 0.6.0 losses/lovasz.py), in float64 ------------------------


def lovasz_grad(gt_sorted):
    """Alg. 1 of the paper: the Lovász extension's weights for sorted ground truth."""
    p = len(gt_sorted)
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if p > 1:
        jaccard[1:p] = jaccard[1:p] - jaccard[0:-1]
    return jaccard


def ref_lovasz_hinge_flat(logits, labels):
    if len(labels) == 0:
        return logits.sum() * 0.0
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
    return torch.dot(F.relu(errors_sorted), lovasz_grad(labels[perm]))


def ref_lovasz_hinge(logits, labels, *, per_image, ignore=None):
    """``_lovasz_hinge``: per image (a list of per-image losses) or over the flattened batch."""
    def flat(lg, lb):
        lg, lb = lg.reshape(-1), lb.reshape(-1)
        if ignore is None:
            return lg, lb
        keep = lb != ignore
        return lg[keep], lb[keep]

    if per_image:
        return torch.stack([ref_lovasz_hinge_flat(*flat(lg, lb)) for lg, lb in zip(logits, labels)])
    return ref_lovasz_hinge_flat(*flat(logits, labels))


def ref_lovasz_softmax_flat(probas, labels, classes="present"):
    if probas.numel() == 0:
        return probas.sum() * 0.0
    losses = []
    for c in range(probas.size(1)):
        fg = (labels == c).to(probas.dtype)
        if classes == "present" and fg.sum() == 0:
            continue
        errors = (fg - probas[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, 0, descending=True)
        losses.append(torch.dot(errors_sorted, lovasz_grad(fg[perm])))
    return torch.stack(losses).mean() if losses else probas.sum() * 0.0


def ref_flatten_probas(probas, labels, ignore=None):
    """The fixed flattening (smp PR #461): classes moved last before the reshape."""
    c = probas.size(1)
    probas = torch.movedim(probas, 1, -1).reshape(-1, c)
    labels = labels.reshape(-1)
    if ignore is None:
        return probas, labels
    keep = labels != ignore
    return probas[keep], labels[keep]


def ref_lovasz_softmax(probas, labels, *, per_image, classes="present", ignore=None):
    if per_image:
        return torch.stack([
            ref_lovasz_softmax_flat(*ref_flatten_probas(p[None], lb[None], ignore), classes)
            for p, lb in zip(probas, labels)
        ])
    return ref_lovasz_softmax_flat(*ref_flatten_probas(probas, labels, ignore), classes)


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("ignore", [None, 255])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_lovasz_hinge_matches_the_reference(batch, ignore, red):
    loss = losslab.get("lovasz_hinge", batch=batch, ignore_index=ignore, reduction=red)
    rng = np.random.default_rng(70)
    for _ in range(3):
        x, t = loss.example(rng)
        ref_v, ref_g = _value_and_grad(
            lambda z, t=t: _reduce(
                ref_lovasz_hinge(z, _tt(t), per_image=not batch, ignore=ignore),
                red if not batch else "sum"), x)
        v, g = loss.value_and_grad(x, t)
        np.testing.assert_allclose(v, ref_v, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(g, ref_g, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("classes", ["present", "all"])
@pytest.mark.parametrize("ignore", [None, 255])
@pytest.mark.parametrize("from_logits", [False, True])
def test_lovasz_softmax_matches_the_reference(batch, classes, ignore, from_logits):
    loss = losslab.get("lovasz_softmax", batch=batch, classes=classes, ignore_index=ignore,
                       from_logits=from_logits, reduction="mean")
    rng = np.random.default_rng(71)
    for _ in range(3):
        x, y = loss.example(rng)

        def ref(z, y=y):
            p = torch.softmax(z, 1) if from_logits else z
            out = ref_lovasz_softmax(p, _tt(y), per_image=not batch, classes=classes,
                                     ignore=ignore)
            return out.mean()

        ref_v, ref_g = _value_and_grad(ref, x)
        v, g = loss.value_and_grad(x, y)
        np.testing.assert_allclose(v, ref_v, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(g, ref_g, rtol=1e-11, atol=1e-14)


def test_lovasz_softmax_never_mixes_classes_and_pixels():
    """Non-square inputs whose class count differs from every spatial size (the permute/reshape
    bug of smp < PR #461 flattened (N, C, H, W) as if classes were last): each class's errors are
    exactly that class's pixels, checked against a per-class loop."""
    rng = np.random.default_rng(72)
    p = rng.dirichlet(np.ones(3), size=(2, 4, 5)).transpose(0, 3, 1, 2)  # (2, 3, 4, 5)
    y = rng.integers(0, 3, size=(2, 4, 5))
    got = losslab.get("lovasz_softmax", classes="all", reduction="none")(p, y)
    for i in range(2):
        per_class = []
        for c in range(3):
            fg = (y[i] == c).reshape(-1).astype(np.float64)
            errors = np.abs(fg - p[i, c].reshape(-1))
            order = np.argsort(-errors, kind="stable")
            per_class.append(float(errors[order] @ lovasz_grad(_tt(fg[order])).numpy()))
        np.testing.assert_allclose(got[i], np.mean(per_class), rtol=1e-12)
    # the buggy flattening gives another number on these shapes
    wrong = ref_lovasz_softmax_flat(_tt(p[:1]).reshape(-1, 3), _tt(y[:1]).reshape(-1), "all")
    assert abs(float(wrong) - got[0]) > 1e-3


def test_lovasz_limits_and_empty_blocks():
    # a perfect margin: every error <= 0 gives 0; all pixels ignored gives 0 with no gradient
    x = np.array([[3.0, -2.0, 4.0]])
    t = np.array([[1.0, 0.0, 1.0]])
    assert losslab.get("lovasz_hinge")(x, t) == 0.0
    v, g = losslab.get("lovasz_hinge", ignore_index=7).value_and_grad(x, np.full((1, 3), 7.0))
    assert v == 0.0 and np.all(g == 0)
    p = np.full((1, 3, 2), 1 / 3)
    v, g = losslab.get("lovasz_softmax", ignore_index=9).value_and_grad(p, np.full((1, 2), 9))
    assert v == 0.0 and np.all(g == 0)
    # a perfect prediction scores 0
    y = np.array([[0, 2]])
    onehot = np.moveaxis(np.eye(3)[y], -1, 1)
    assert losslab.get("lovasz_softmax")(onehot, y) == 0.0


@pytest.mark.parametrize(("dtype", "m"), [("float32", 1e4), ("float64", 1e30)])
def test_lovasz_extreme_logits_are_finite(dtype, m):
    rng = np.random.default_rng(73)
    x = (np.sign(rng.normal(size=(2, 3, 4))) * m).astype(dtype)
    y = rng.integers(0, 3, size=(2, 4))
    v, g = losslab.get("lovasz_softmax", from_logits=True).value_and_grad(x, y)
    h = losslab.get("lovasz_softmax", from_logits=True).hess(x, y)
    assert v.dtype == np.dtype(dtype)
    assert np.isfinite(v) and np.all(np.isfinite(g)) and np.all(np.isfinite(h))
    t = (rng.random((2, 3, 4)) < 0.5).astype(dtype)
    v, g = losslab.get("lovasz_hinge").value_and_grad(x, t)
    assert np.isfinite(v) and np.all(np.isfinite(g))


def test_lovasz_hinge_refuses_soft_labels():
    with pytest.raises(ValueError, match="binary mask"):
        losslab.get("lovasz_hinge")(np.zeros((2, 3)), np.full((2, 3), 0.5))


# --- MONAI 1.6.1 compounds, in float64 ---------------------------------------------------------


def monai_dice(inp, target, *, batch, weight, smooth_nr, smooth_dr, squared=False):
    """DiceLoss.forward after its activation: per sample and class (over the batch with
    ``batch``), weights multiplied in, the mean over samples and classes."""
    axes = list(range(2, inp.dim()))
    if batch:
        axes = [0] + axes
    if squared:
        tp = (inp * target).sum(axes)
        fp = (inp * inp).sum(axes) - tp
        fn = (target * target).sum(axes) - tp
    else:
        tp = (inp * target).sum(axes)
        fp, fn = inp.sum(axes) - tp, target.sum(axes) - tp
    f = 1 - (2 * tp + smooth_nr) / (2 * tp + fp + fn + smooth_dr)
    if weight is not None:
        f = f * torch.as_tensor(weight, dtype=f.dtype)
    return f.mean()


def monai_dice_ce(inp, labels, *, batch=False, weight=None, smooth_nr=1e-5, smooth_dr=1e-5,
                  lambda_dice=1.0, lambda_ce=1.0, label_smoothing=0.0, squared=False):
    """DiceCELoss(softmax=True, to_onehot_y=True): the Dice term on the softmax, plus
    ``nn.CrossEntropyLoss(weight, label_smoothing)`` on the logits (``BCEWithLogitsLoss
    (pos_weight=weight)`` for one channel), each a mean."""
    c = inp.shape[1]
    if c == 1:
        target = labels.to(inp.dtype)
        d = monai_dice(torch.sigmoid(inp), target, batch=batch, weight=None,
                       smooth_nr=smooth_nr, smooth_dr=smooth_dr, squared=squared)
        ce = F.binary_cross_entropy_with_logits(
            inp, target, pos_weight=None if weight is None else torch.as_tensor(weight))
    else:
        onehot = F.one_hot(labels, c).movedim(-1, 1).to(inp.dtype)
        d = monai_dice(torch.softmax(inp, 1), onehot, batch=batch, weight=weight,
                       smooth_nr=smooth_nr, smooth_dr=smooth_dr, squared=squared)
        ce = F.cross_entropy(inp, labels,
                             weight=None if weight is None else torch.as_tensor(weight),
                             label_smoothing=label_smoothing)
    return lambda_dice * d + lambda_ce * ce


def monai_sigmoid_focal(inp, target, *, gamma, alpha):
    """monai.losses.focal_loss.sigmoid_focal_loss (per element)."""
    loss = inp - inp * target - F.logsigmoid(inp)
    invprobs = F.logsigmoid(-inp * (target * 2 - 1))
    loss = (invprobs * gamma).exp() * loss
    if alpha is not None:
        loss = (target * alpha + (1 - target) * (1 - alpha)) * loss
    return loss


def monai_dice_focal(inp, target, *, sigmoid, batch=False, weight=None, gamma=2.0, alpha=None,
                     smooth_nr=1e-5, smooth_dr=1e-5, lambda_dice=1.0, lambda_focal=1.0):
    """DiceFocalLoss(softmax=not sigmoid, sigmoid=sigmoid) with one-hot targets: the Dice term,
    plus FocalLoss (sigmoid, class weights multiplied per channel, the mean over elements)."""
    probs = torch.sigmoid(inp) if sigmoid else torch.softmax(inp, 1)
    d = monai_dice(probs, target, batch=batch, weight=weight, smooth_nr=smooth_nr,
                   smooth_dr=smooth_dr)
    fl = monai_sigmoid_focal(inp, target, gamma=gamma, alpha=alpha)
    if weight is not None:
        fl = fl * torch.as_tensor(weight, dtype=fl.dtype).view(1, -1, *([1] * (inp.dim() - 2)))
    return lambda_dice * d + lambda_focal * fl.mean()


# weights summing to C: MONAI's unnormalised class mean then equals losslab's weighted mean
W4 = np.array([0.5, 1.5, 1.2, 0.8])


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("ls", "squared"), [(0.0, False), (0.1, True)])
def test_dice_ce_matches_monai(batch, weighted, ls, squared):
    rng = np.random.default_rng(74)
    x = 2.0 * rng.normal(size=(3, 4, 5, 3))
    y = rng.integers(0, 4, size=(3, 5, 3))
    w = W4 if weighted else None
    opts = dict(batch=batch, weight=w, label_smoothing=ls, lambda_dice=0.7, lambda_ce=1.3,
                squared=squared)
    ref_v, ref_g = _value_and_grad(monai_dice_ce, x, _tt(y), **opts)
    v, g = losslab.get("dice_ce", **opts).value_and_grad(x, y)
    np.testing.assert_allclose(v, ref_v, rtol=1e-12)
    np.testing.assert_allclose(g, ref_g, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("batch", [False, True])
def test_dice_ce_one_channel_is_monai_bce(batch):
    rng = np.random.default_rng(75)
    x = 2.0 * rng.normal(size=(3, 1, 4, 2))
    t = (rng.random(size=x.shape) < 0.4).astype(np.float64)
    ref_v, ref_g = _value_and_grad(monai_dice_ce, x, _tt(t), batch=batch)
    v, g = losslab.get("dice_ce", mode="binary", batch=batch).value_and_grad(x, t)
    np.testing.assert_allclose(v, ref_v, rtol=1e-12)
    np.testing.assert_allclose(g, ref_g, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("sigmoid", [False, True])
@pytest.mark.parametrize(("weighted", "alpha", "gamma"), [(False, None, 2.0), (True, 0.3, 1.5)])
def test_dice_focal_matches_monai(batch, sigmoid, weighted, alpha, gamma):
    rng = np.random.default_rng(76)
    x = 2.0 * rng.normal(size=(3, 4, 5, 3))
    y = rng.integers(0, 4, size=(3, 5, 3))
    onehot = np.moveaxis(np.eye(4)[y], -1, 1)
    w = W4 if weighted else None
    opts = dict(batch=batch, weight=w, gamma=gamma, alpha=alpha, lambda_dice=0.6,
                lambda_focal=1.7)
    ref_v, ref_g = _value_and_grad(monai_dice_focal, x, _tt(onehot), sigmoid=sigmoid, **opts)
    mode = "multilabel" if sigmoid else "multiclass"
    loss = losslab.get("dice_focal", mode=mode, **opts)
    for target in ((onehot,) if sigmoid else (onehot, y)):
        v, g = loss.value_and_grad(x, target)
        np.testing.assert_allclose(v, ref_v, rtol=1e-12)
        np.testing.assert_allclose(g, ref_g, rtol=1e-10, atol=1e-14)


def test_compounds_are_the_sum_of_their_parts():
    rng = np.random.default_rng(77)
    x = 2.0 * rng.normal(size=(3, 4, 6))
    y = rng.integers(0, 4, size=(3, 6))
    y[0, :2] = -1
    common = dict(mode="multiclass", weight=W4, ignore_index=-1, smooth=0.5)
    dice = losslab.get("dice", from_logits=True, reduction="none", **common)(x, y)
    ce = losslab.get("cross_entropy", weight=W4, ignore_index=-1)(x, y)
    got = losslab.get("dice_ce", lambda_dice=2.0, lambda_ce=0.5, **common)(x, y)
    np.testing.assert_allclose(got, 2.0 * dice.mean() + 0.5 * ce, rtol=1e-12)
    onehot = np.moveaxis(np.eye(4)[np.where(y < 0, 0, y)], -1, 1) * (y >= 0)[:, None]
    fw = W4[None, :, None] * (y >= 0)[:, None]
    fl = losslab.get("focal", alpha=0.25, weight=fw, reduction="sum")(x, onehot) / (
        (y >= 0).sum() * 4)
    got = losslab.get("dice_focal", alpha=0.25, lambda_focal=3.0, **common)(x, y)
    np.testing.assert_allclose(got, dice.mean() + 3.0 * fl, rtol=1e-12)


def test_compound_every_pixel_ignored_is_finite():
    x = np.random.default_rng(78).normal(size=(2, 3, 4))
    y = np.full((2, 4), 5)
    for name in ("dice_ce", "dice_focal"):
        v, g = losslab.get(name, ignore_index=5).value_and_grad(x, y)
        assert v == 0.0 and np.all(g == 0), name


@pytest.mark.parametrize(("dtype", "m"), [("float32", 1e4), ("float64", 1e30)])
def test_compounds_at_extreme_logits_are_finite(dtype, m):
    rng = np.random.default_rng(79)
    x = (rng.normal(size=(2, 3, 4)) * m).astype(dtype)
    y = rng.integers(0, 3, size=(2, 4))
    for name in ("dice_ce", "dice_focal"):
        loss = losslab.get(name)
        v, g = loss.value_and_grad(x, y)
        assert v.dtype == np.dtype(dtype), name
        assert np.isfinite(v) and np.all(np.isfinite(g)) and np.all(np.isfinite(loss.hess(x, y)))


# --- derivatives over the options ----------------------------------------------------------------

DERIV_CASES = (
    [("lovasz_hinge", dict(batch=b, ignore_index=i, reduction=r))
     for b, i, r in itertools.product((False, True), (None, -1), REDUCTIONS)]
    + [("lovasz_softmax", dict(from_logits=f, batch=b, ignore_index=i, classes=c, reduction=r))
       for f, b, i, c, r in itertools.product((False, True), (False, True), (None, 255),
                                              ("present", "all"), ("mean", "none"))
       if (b + (i is None) + (c == "all")) % 2 == 0]
    + [(name, dict(mode=m, batch=b, average=a, reduction=r, **extra))
       for name in ("dice_ce", "dice_focal")
       for m, b, a, r in itertools.product(("binary", "multilabel", "multiclass"),
                                           (False, True), ("macro", "micro"), ("mean", "none"))
       for extra in ({}, {"ignore_index": -1}, {"weight": [0.5, 2.0, 1.0]},
                     {"squared": True, "smooth": 0.5})
       if not ("weight" in extra and m == "binary") and (b + (a == "micro") + len(extra)) % 2 == 0]
)


@pytest.mark.parametrize(("name", "opts"), DERIV_CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(DERIV_CASES)])
def test_gradient_hessian_and_hvp_match_finite_differences_over_the_options(name, opts):
    rng = np.random.default_rng(80)
    extra = {"label_smoothing": 0.1, "lambda_ce": 0.7} if name == "dice_ce" else (
        {"alpha": 0.25, "gamma": 1.5, "lambda_focal": 2.0} if name == "dice_focal" else {})
    loss = losslab.get(name, **opts, **extra)
    for _ in range(2):
        assert_fd_derivatives(loss, loss.example(rng, "float64"), rng)


# --- second derivatives against the references' double backward ---------------------------------


def _double_backward_hvp(f, x, v):
    """torch's Hessian of the scalar ``f`` at ``x`` times ``v`` (zero where the gradient does
    not depend on ``x``: the piecewise linear Lovasz extensions)."""
    xt = _tt(x).requires_grad_(True)
    (g,) = torch.autograd.grad(f(xt), xt, create_graph=True)
    if not g.requires_grad:
        return np.zeros(x.shape)
    (hv,) = torch.autograd.grad((g * _tt(v)).sum(), xt, allow_unused=True)
    return np.zeros(x.shape) if hv is None else hv.numpy()


@pytest.mark.parametrize(("batch", "weighted", "ls", "squared"),
                         [(False, False, 0.0, False), (True, True, 0.1, True)])
def test_dice_ce_hvp_equals_monais_double_backward(batch, weighted, ls, squared):
    rng = np.random.default_rng(81)
    x = 2.0 * rng.normal(size=(3, 4, 5, 3))
    y = rng.integers(0, 4, size=(3, 5, 3))
    v = rng.normal(size=x.shape)
    opts = dict(batch=batch, weight=W4 if weighted else None, label_smoothing=ls,
                lambda_dice=0.7, lambda_ce=1.3, squared=squared)
    want = _double_backward_hvp(lambda z: monai_dice_ce(z, _tt(y), **opts), x, v)
    got = losslab.get("dice_ce", **opts).hvp(x, y, v=v)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("sigmoid", [False, True])
@pytest.mark.parametrize(("batch", "weighted", "alpha", "gamma"),
                         [(False, False, None, 2.0), (True, True, 0.3, 1.5)])
def test_dice_focal_hvp_equals_monais_double_backward(sigmoid, batch, weighted, alpha, gamma):
    rng = np.random.default_rng(82)
    x = 2.0 * rng.normal(size=(3, 4, 5, 3))
    onehot = np.moveaxis(np.eye(4)[rng.integers(0, 4, size=(3, 5, 3))], -1, 1)
    v = rng.normal(size=x.shape)
    opts = dict(batch=batch, weight=W4 if weighted else None, gamma=gamma, alpha=alpha,
                lambda_dice=0.6, lambda_focal=1.7)
    want = _double_backward_hvp(
        lambda z: monai_dice_focal(z, _tt(onehot), sigmoid=sigmoid, **opts), x, v)
    loss = losslab.get("dice_focal", mode="multilabel" if sigmoid else "multiclass", **opts)
    np.testing.assert_allclose(loss.hvp(x, onehot, v=v), want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("batch", "ignore"), [(False, None), (True, 255)])
def test_lovasz_hinge_hvp_equals_the_references_double_backward(batch, ignore):
    loss = losslab.get("lovasz_hinge", batch=batch, ignore_index=ignore)
    rng = np.random.default_rng(83)
    x, t = loss.example(rng)
    v = rng.normal(size=x.shape)
    want = _double_backward_hvp(
        lambda z: ref_lovasz_hinge(z, _tt(t), per_image=not batch, ignore=ignore).mean(), x, v)
    np.testing.assert_allclose(loss.hvp(x, t, v=v), want, atol=1e-14)


@pytest.mark.parametrize(("batch", "classes", "ignore"),
                         [(False, "present", None), (True, "all", 255)])
def test_lovasz_softmax_hvp_equals_the_references_double_backward(batch, classes, ignore):
    loss = losslab.get("lovasz_softmax", batch=batch, classes=classes, ignore_index=ignore,
                       from_logits=True)
    rng = np.random.default_rng(84)
    x, y = loss.example(rng)
    v = rng.normal(size=x.shape)
    want = _double_backward_hvp(
        lambda z: ref_lovasz_softmax(torch.softmax(z, 1), _tt(y), per_image=not batch,
                                     classes=classes, ignore=ignore).mean(), x, v)
    np.testing.assert_allclose(loss.hvp(x, y, v=v), want, rtol=1e-9, atol=1e-12)


# --- adapters and names --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "module", "opts"), [
    ("lovasz_hinge", "LovaszHingeLoss", {"batch": True}),
    ("lovasz_softmax", "LovaszSoftmaxLoss", {"from_logits": True, "ignore_index": 255}),
    ("dice_ce", "DiceCELoss", {"weight": [0.5, 1.5, 1.0], "label_smoothing": 0.1}),
    ("dice_focal", "DiceFocalLoss", {"batch": True, "alpha": 0.3}),
])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_torch_modules_gradcheck(name, module, opts, red):
    import losslab.torch as lt

    spec = losslab.spec(name)
    assert spec.module == module
    x, t = spec.example(np.random.default_rng(81), "float64", **opts)
    if "weight" in opts:
        while x.shape[1] != 3:
            x, t = spec.example(np.random.default_rng(int(x.size) + 82), "float64", **opts)
    xt, tt = torch.tensor(x, requires_grad=True), torch.tensor(t)
    crit = getattr(lt, module)(reduction=red, **opts)
    assert torch.autograd.gradcheck(lambda z: crit(z, tt), (xt,))
    torch.testing.assert_close(crit(xt, tt), getattr(lt, name)(xt, tt, reduction=red, **opts))


def test_jax_adapter_runs_the_compounds_under_jit():
    jax = pytest.importorskip("jax")
    import losslab.jax as lj

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(83)
    x = rng.normal(size=(2, 3, 4))
    y = rng.integers(0, 3, size=(2, 4))
    for name in ("dice_ce", "dice_focal", "lovasz_softmax"):
        opts = {"from_logits": True} if name == "lovasz_softmax" else {}
        want_v, want_g = losslab.get(name, **opts).value_and_grad(x, y)
        f = jax.jit(jax.value_and_grad(lambda z, n=name, o=opts: getattr(lj, n)(z, y, **o)))
        v, g = f(jax.numpy.asarray(x))
        np.testing.assert_allclose(np.asarray(v), want_v, rtol=1e-10)
        np.testing.assert_allclose(np.asarray(g), want_g, rtol=1e-10, atol=1e-14)
