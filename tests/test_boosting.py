"""losslab.boosting: catalog losses as XGBoost and LightGBM objectives.

The new boosting losses against each library's own definition (written here in NumPy, citing the
library and version), the objective's signatures, sample weights, label conventions and Hessian
choices, init_score against closed forms, metric, the same model as each library's built-in
objective, training on scikit-learn's bundled data sets, and XGBoost's Dask interface.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits

import losslab
from losslab import boosting

_MISSING = "is not installed (pip install -e '.[boosting]'; CI installs it with the test extra)"
xgb = pytest.importorskip("xgboost", reason=f"xgboost {_MISSING}")
lgb = pytest.importorskip("lightgbm", reason=f"lightgbm {_MISSING}")

RNG = np.random.default_rng(0)


def _rows(name, rng, n=None, **options):
    """Scores, labels and weights for loss ``name``, drawn from its catalog example: 1-D scores
    and labels (one per row), or (n, k) scores and (n,) class labels."""
    spec = losslab.spec(name)
    for _ in range(100):
        x, y = spec.example(rng, "float64", **options)
        if spec.layout == "class_axis":
            if x.ndim == 2 and np.all(y >= 0):
                break
        else:
            x, y = x.reshape(-1), y.reshape(-1)
            break
    w = rng.uniform(0.2, 2.0, size=x.shape[0])
    return x, y.astype(np.float32 if spec.layout == "class_axis" else y.dtype), w


# --- the new losses against the libraries' own definitions --------------------------------------


def test_pseudo_huber_is_xgboosts_pseudohubererror():
    # XGBoost 3.2, src/objective/regression_obj.cu PseudoHuberRegression and metric mphe:
    # z = p - y, s = 1 + (z/slope)^2: grad z / sqrt(s), hess slope^2 / ((slope^2 + z^2) sqrt(s)),
    # value slope^2 (sqrt(s) - 1)
    p, y = RNG.normal(scale=3, size=200), RNG.normal(scale=3, size=200)
    for slope in (0.5, 1.0, 4.0):
        z = p - y
        s = 1 + (z / slope) ** 2
        loss = losslab.get("pseudo_huber", delta=slope, reduction="none")
        np.testing.assert_allclose(loss(p, y), slope**2 * (np.sqrt(s) - 1), rtol=1e-10)
        g, h = loss.grad_and_hess(p, y)
        np.testing.assert_allclose(g, z / np.sqrt(s), rtol=1e-12)
        np.testing.assert_allclose(h, slope**2 / ((slope**2 + z**2) * np.sqrt(s)), rtol=1e-10)


def test_pseudo_huber_extremes_are_finite_with_the_right_limits():
    d = np.array([1e30, -1e30, 1e-20, 0.0], dtype=np.float32)
    loss = losslab.get("pseudo_huber", delta=2.0, reduction="none")
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # nothing overflows
        v, g = loss.value_and_grad(d, np.zeros_like(d))
        h = loss.hess(d, np.zeros_like(d))
    np.testing.assert_allclose(h, [0.0, 0.0, 1.0, 1.0])
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(v[:2], 2.0 * 1e30, rtol=1e-6)  # delta |d|
    np.testing.assert_allclose(g, [2.0, -2.0, 1e-20, 0.0], rtol=1e-6)
    assert v[2] == np.float32(0.5e-40) or v[2] > 0  # d^2 / 2, not a cancelled 0


def test_msle_is_xgboosts_squaredlogerror():
    # XGBoost 3.2, src/objective/regression_loss.h SquaredLogError: predt = max(predt, -1 + 1e-6);
    # grad (log1p(p) - log1p(y)) / (p + 1); hess max((-log1p(p) + log1p(y) + 1) / (p + 1)^2, 1e-6)
    p = np.concatenate([RNG.uniform(-0.9, 20, 300), [-1.5, -1.0]])
    y = np.concatenate([RNG.uniform(-0.5, 20, 300), [3.0, 0.0]])
    pc = np.maximum(p, -1 + 1e-6)
    grad = (np.log1p(pc) - np.log1p(y)) / (pc + 1)
    hess = np.maximum((-np.log1p(pc) + np.log1p(y) + 1) / (pc + 1) ** 2, 1e-6)
    loss = losslab.get("msle", reduction="none")
    np.testing.assert_allclose(loss(p, y), 0.5 * (np.log1p(pc) - np.log1p(y)) ** 2, rtol=1e-10)
    np.testing.assert_allclose(loss.grad(p, y), grad, rtol=1e-10)
    assert np.any(loss.hess(p, y) < 0)  # the exact Hessian is negative where e > 1
    obj = boosting.objective("msle", hessian="clip", hessian_floor=1e-6, api="sklearn")
    g, h = obj(y, p)
    np.testing.assert_allclose(g, grad, rtol=1e-10)
    np.testing.assert_allclose(h, hess, rtol=1e-10)
    with pytest.raises(ValueError, match="target must be > -1"):
        loss(p[:2], np.array([0.0, -1.0]))


def test_mape_is_lightgbms_mape_and_sklearns_with_epsilon():
    # LightGBM 4.7, src/objective/regression_objective.hpp RegressionMAPELOSS: label_weight =
    # 1 / max(1, |label|), gradient sign(score - label) * label_weight; metric.hpp MAPEMetric:
    # |label - score| / max(1, |label|)
    from sklearn.metrics import mean_absolute_percentage_error

    p, y = RNG.normal(scale=3, size=300), RNG.normal(scale=3, size=300)
    lw = 1 / np.maximum(1, np.abs(y))
    loss = losslab.get("mape", reduction="none")
    np.testing.assert_allclose(loss(p, y), np.abs(y - p) * lw, rtol=1e-12)
    np.testing.assert_allclose(loss.grad(p, y), np.sign(p - y) * lw, rtol=1e-12)
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(
        losslab.get("mape", epsilon=eps)(p, y), mean_absolute_percentage_error(y, p), rtol=1e-12
    )


def test_gamma_deviance_is_xgboost_and_lightgbm_gamma():
    # XGBoost 3.2 GammaRegression and LightGBM 4.7 RegressionGammaLoss: grad 1 - y exp(-x),
    # hess y exp(-x); value: half of scikit-learn's mean_gamma_deviance(y, exp(x))
    from sklearn.metrics import mean_gamma_deviance

    x, y = RNG.normal(size=300), RNG.gamma(2.0, 1.5, size=300)
    g, h = losslab.get("gamma_deviance", reduction="sum").grad_and_hess(x, y)
    np.testing.assert_allclose(g, 1 - y * np.exp(-x), rtol=1e-12)
    np.testing.assert_allclose(h, y * np.exp(-x), rtol=1e-12)
    np.testing.assert_allclose(
        2 * losslab.get("gamma_deviance")(x, y), mean_gamma_deviance(y, np.exp(x)), rtol=1e-10
    )
    np.testing.assert_allclose(losslab.get("gamma_deviance").fisher(x, y), np.ones(300) / 300)
    with pytest.raises(ValueError, match="target"):
        losslab.get("gamma_deviance")(x[:2], np.array([1.0, 0.0]))


def test_exponential_is_sklearns_exponential_loss():
    # scikit-learn 1.x, sklearn/_loss/loss.py ExponentialLoss (0/1 labels):
    # y exp(-x) + (1 - y) exp(x); gradient -y exp(-x) + (1 - y) exp(x); Hessian the loss itself
    x, y01 = RNG.normal(size=300), RNG.integers(0, 2, size=300).astype(float)
    ref = y01 * np.exp(-x) + (1 - y01) * np.exp(x)
    loss = losslab.get("exponential", reduction="none")
    ypm = 2 * y01 - 1
    np.testing.assert_allclose(loss(x, ypm), ref, rtol=1e-12)
    g, h = loss.grad_and_hess(x, ypm)
    np.testing.assert_allclose(g, -y01 * np.exp(-x) + (1 - y01) * np.exp(x), rtol=1e-12)
    np.testing.assert_allclose(h, ref, rtol=1e-12)


def test_expectile_optimum_is_scipys_expectile():
    # SciPy >= 1.10 scipy.stats.expectile: the root of sum alpha (y - t)_+ - (1 - alpha)(t - y)_+
    from scipy.stats import expectile

    y, w = RNG.gamma(2.0, 2.0, size=500), RNG.uniform(0.1, 2.0, size=500)
    for tau in (0.1, 0.5, 0.9):
        got = boosting.init_score("expectile", y, expectile=tau)
        assert got == pytest.approx(expectile(y, alpha=tau), rel=1e-10)
        got = boosting.init_score("expectile", y, sample_weight=w, expectile=tau)
        assert got == pytest.approx(expectile(y, alpha=tau, weights=w), rel=1e-10)
    r = np.array([1.0, -1.0])
    np.testing.assert_allclose(
        losslab.get("expectile", expectile=0.9, reduction="none")(-r, np.zeros(2)), [0.9, 0.1]
    )


# --- objective: signatures, weights, labels, Hessian choices ------------------------------------

BOOSTABLE = boosting.boostable()


def test_boostable_losses_are_derived_from_their_specs():
    assert {"mse", "bce_with_logits", "focal", "cross_entropy", "softmax_focal", "poly1",
            "pseudo_huber", "expectile", "msle", "mape", "gamma_deviance", "exponential",
            "quantile", "l1", "huber", "log_cosh", "tweedie", "poisson_nll"} <= set(BOOSTABLE)
    for name, why in [("bce", "probabilities"), ("nll", "log-probabilities"),
                      ("dice", "probabilities"), ("hinge_embedding", "embeddings"),
                      ("margin_ranking", "input1"),
                      ("triplet_margin", "anchor"), ("multilabel_soft_margin", "feature axis")]:
        with pytest.raises(ValueError, match=why):
            boosting.objective(name)


@pytest.mark.parametrize("name", BOOSTABLE)
def test_objective_is_the_catalogs_per_row_gradient_and_hessian(name):
    rng = np.random.default_rng(1)
    x, y, w = _rows(name, rng)
    loss = losslab.get(name, reduction="sum")
    yy = y.astype(np.int64) if loss.spec.layout == "class_axis" else y
    g_ref, h_ref = loss.grad_and_hess(x, yy, sample_weight=w)
    g1, h1 = loss.grad_and_hess(x, yy)
    per_row = w[:, None] if x.ndim == 2 else w
    np.testing.assert_allclose(g_ref, g1 * per_row, rtol=1e-12, atol=1e-300)  # per-row weights
    obj = boosting.objective(name, hessian="exact", api="sklearn")
    g, h = obj(y, x, sample_weight=w)
    np.testing.assert_allclose(g, g_ref, rtol=1e-12)
    np.testing.assert_allclose(h, h_ref, rtol=1e-12)
    assert g.shape == h.shape == x.shape and g.dtype == x.dtype
    # constant: the row weights; clip: at least floor * w; scale multiplies both
    g, h = boosting.objective(name, "lightgbm", "sklearn", hessian="constant", scale=2.0)(y, x, w)
    np.testing.assert_allclose(g, 2 * g_ref, rtol=1e-12)
    np.testing.assert_allclose(h, 2 * np.broadcast_to(per_row, x.shape), rtol=1e-12)
    _, h = boosting.objective(name, api="sklearn", hessian="clip", hessian_floor=0.01)(
        y, x, sample_weight=w)
    np.testing.assert_allclose(h, np.maximum(h_ref, 0.01 * per_row), rtol=1e-12)


def _dmatrix(x, y, w):
    return xgb.DMatrix(np.zeros((len(y), 1)), label=y, weight=w)


@pytest.mark.parametrize("name", ["focal", "cross_entropy", "msle"])
def test_the_four_signatures_give_the_same_numbers(name):
    x, y, w = _rows(name, np.random.default_rng(2))
    want = boosting.objective(name, api="sklearn")(y, x, sample_weight=w)
    got = [
        boosting.objective(name)(x, _dmatrix(x, y, w)),
        boosting.objective(name, "lightgbm", "sklearn")(y, x, w, None),
        boosting.objective(name, "lightgbm")(
            x, lgb.Dataset(np.zeros((len(y), 1)), label=y, weight=w).construct()),
    ]
    for g, h in got:
        np.testing.assert_allclose(g, want[0], rtol=1e-5)  # DMatrix stores float32 labels
        np.testing.assert_allclose(h, want[1], rtol=1e-5)
    # no weights: XGBoost's empty weight array, LightGBM's None
    g, _ = boosting.objective(name)(x, _dmatrix(x, y, None))
    np.testing.assert_allclose(g, boosting.objective(name, api="sklearn")(y, x)[0], rtol=1e-5)


def _defines_fisher(name):
    loss = losslab.get(name)
    try:
        loss.fisher(*loss.example(np.random.default_rng(0)))
    except NotImplementedError:
        return False
    return True


def test_default_hessian_follows_the_declared_hessian():
    for name in BOOSTABLE:
        kind = losslab.spec(name).hessian
        want = {"nonnegative": "exact", "zero": "constant"}.get(
            kind, "fisher" if _defines_fisher(name) else "clip")
        if name == "multi_margin":  # p=1: piecewise linear, though "nonnegative" for p=2
            want = "constant"
            assert boosting.default_hessian(name, p=2) == "exact"
        got = boosting.default_hessian(name)
        assert got == want, name
        assert boosting.objective(name).hessian == got
    assert boosting.default_hessian("msle") == "fisher"
    assert boosting.default_hessian("focal") == "clip"


def test_hessian_choices_are_checked_early():
    with pytest.raises(ValueError, match="hessian must be one of"):
        boosting.objective("mse", hessian="newton")
    with pytest.raises(ValueError, match="focal defines no expected Hessian"):
        boosting.objective("focal", hessian="fisher")
    with pytest.raises(ValueError, match="hessian_floor must be a positive number"):
        boosting.objective("focal", hessian="clip", hessian_floor=0.0)
    with pytest.raises(TypeError, match="reduction"):
        boosting.objective("mse", reduction="mean")
    with pytest.raises(ValueError, match="library must be one of"):
        boosting.objective("mse", library="catboost")
    with pytest.raises(ValueError, match="api must be one of"):
        boosting.objective("mse", api="R")
    with pytest.raises(ValueError, match="focal: gamma must be >= 0"):
        boosting.objective("focal", gamma=-1.0)


def test_labels_are_converted_as_classifiers_hold_them():
    x = np.array([0.3, -1.2, 2.0])
    obj = boosting.objective("exponential", api="sklearn")
    g01, _ = obj(np.array([1.0, 0.0, 1.0]), x)
    gpm, _ = obj(np.array([1.0, -1.0, 1.0]), x)
    np.testing.assert_array_equal(g01, gpm)
    with pytest.raises(ValueError, match="binary labels"):
        obj(np.array([1.0, 2.0, 0.0]), x)
    ce = boosting.objective("cross_entropy", api="sklearn")
    with pytest.raises(ValueError, match="non-integer label"):
        ce(np.array([0.0, 1.5]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"shape \(n, k\)"):
        ce(np.array([0.0, 1.0]), np.zeros(2))
    with pytest.raises(ValueError, match="one score per row"):
        boosting.objective("mse", api="sklearn")(np.zeros(2), np.zeros((2, 3)))


def test_import_losslab_imports_neither_library():
    code = ("import sys, losslab, losslab.boosting; "
            "print('xgboost' in sys.modules, 'lightgbm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- init_score and metric ----------------------------------------------------------------------


def test_init_score_matches_the_closed_forms():
    y = RNG.gamma(2.0, 2.0, size=400)
    w = RNG.uniform(0.1, 2.0, size=400)
    b = (RNG.random(400) < 0.3).astype(float)
    assert boosting.init_score("mse", y) == pytest.approx(np.mean(y), rel=1e-12)
    assert boosting.init_score("mse", y, sample_weight=w) == pytest.approx(
        np.average(y, weights=w), rel=1e-12)
    assert boosting.init_score("bce_with_logits", b) == pytest.approx(
        np.log(b.mean() / (1 - b.mean())), rel=1e-10)
    for name in ("poisson_nll", "gamma_deviance", "tweedie"):
        assert boosting.init_score(name, y) == pytest.approx(np.log(np.mean(y)), rel=1e-10), name
    assert boosting.init_score("exponential", 2 * b - 1) == pytest.approx(
        0.5 * np.log(b.mean() / (1 - b.mean())), rel=1e-10)
    # step-function gradients: a minimiser of the weighted absolute / pinball loss
    for name, opts, q in [("l1", {}, 0.5), ("quantile", {"quantile": 0.8}, 0.8)]:
        c = boosting.init_score(name, y, **opts)
        below, above = np.mean(y < c - 1e-9), np.mean(y > c + 1e-9)
        assert below <= q <= 1 - above, name
    digits = RNG.integers(0, 5, size=300)
    c = boosting.init_score("cross_entropy", digits)
    logf = np.log(np.bincount(digits) / 300)
    np.testing.assert_allclose(c - c.mean(), logf - logf.mean(), atol=1e-8)
    assert boosting.init_score("cross_entropy", digits, n_classes=7).shape == (7,)
    with pytest.raises(ValueError, match="no finite constant"):
        boosting.init_score("bce_with_logits", np.ones(10))


def test_metric_is_the_weighted_mean_per_row():
    x, y, w = _rows("huber", np.random.default_rng(4))
    want = float(losslab.get("huber", reduction="sum")(x, y, sample_weight=w) / w.sum())
    d = _dmatrix(x, y, w)
    assert boosting.metric("huber")(x, d) == ("huber", pytest.approx(want, rel=1e-6))
    assert boosting.metric("huber", api="sklearn")(y, x, sample_weight=w) == pytest.approx(want)
    assert boosting.metric("huber", "lightgbm", "sklearn")(y, x, w) == ("huber",
                                                                        pytest.approx(want), False)
    ds = lgb.Dataset(np.zeros((len(y), 1)), label=y, weight=w).construct()
    assert boosting.metric("huber", "lightgbm")(x, ds) == ("huber", pytest.approx(want, rel=1e-6),
                                                           False)


# --- the same model as the libraries' built-in objectives ---------------------------------------

XGB = dict(max_depth=3, eta=0.3, tree_method="hist", nthread=1, seed=0)
LGB = dict(num_leaves=7, learning_rate=0.3, verbose=-1, num_threads=1, seed=0,
           deterministic=True)


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_xgboost_builtins_and_catalog_objectives_train_the_same_model():
    X, y = load_breast_cancer(return_X_y=True)
    d = xgb.DMatrix(X, y)
    builtin = xgb.train({**XGB, "objective": "binary:logistic", "base_score": 0.5}, d, 20)
    ours = xgb.train({**XGB, "base_score": 0.0}, d, 20, obj=boosting.objective("bce_with_logits"))
    _close(ours.predict(d, output_margin=True), builtin.predict(d, output_margin=True))

    X, y = load_diabetes(return_X_y=True)
    d = xgb.DMatrix(X, y)
    base = boosting.init_score("mse", y)
    builtin = xgb.train({**XGB, "objective": "reg:squarederror", "base_score": base}, d, 20)
    # the catalog's mse has no 1/2: scale=0.5 is XGBoost's (f - y)^2 / 2
    ours = xgb.train({**XGB, "base_score": base}, d, 20, obj=boosting.objective("mse", scale=0.5))
    _close(ours.predict(d), builtin.predict(d))
    for slope in (1.0, 30.0):
        builtin = xgb.train({**XGB, "objective": "reg:pseudohubererror", "huber_slope": slope,
                             "base_score": base}, d, 20)
        ours = xgb.train({**XGB, "base_score": base}, d, 20,
                         obj=boosting.objective("pseudo_huber", delta=slope))
        _close(ours.predict(d), builtin.predict(d))


def test_lightgbm_builtins_and_catalog_objectives_train_the_same_model():
    # LightGBM ignores boost_from_average with a custom objective (#7193): init_score gives the
    # built-in's starting constant, passed as the Dataset's init_score and added at predict.
    for (X, y), builtin_name, name, scale in [
        (load_diabetes(return_X_y=True), "regression", "mse", 0.5),
        (load_breast_cancer(return_X_y=True), "binary", "bce_with_logits", 1.0),
    ]:
        builtin = lgb.train({**LGB, "objective": builtin_name}, lgb.Dataset(X, y), 20)
        init = boosting.init_score(name, y)
        ds = lgb.Dataset(X, y, init_score=np.full(len(y), init))
        ours = lgb.train({**LGB, "objective": boosting.objective(name, "lightgbm", scale=scale)},
                         ds, 20)
        _close(ours.predict(X, raw_score=True) + init, builtin.predict(X, raw_score=True))


# --- real data: every boostable loss trains ------------------------------------------------------


def _imbalanced():
    """breast_cancer with malignant (label 0 there) as the positive class, 1 in 8 kept: ~7%."""
    X, y = load_breast_cancer(return_X_y=True)
    pos = np.flatnonzero(y == 0)
    keep = np.sort(np.concatenate([np.flatnonzero(y == 1), pos[::8]]))
    return X[keep], (y[keep] == 0).astype(float)


def data_for(name):
    """The bundled data set a loss's declared kinds call for: digits for class labels,
    breast_cancer for binary labels, diabetes (targets / their std, all positive) otherwise."""
    spec = losslab.spec(name)
    if spec.layout == "class_axis":
        return load_digits(return_X_y=True)
    if spec.target_kind in ("unit_interval", "sign"):
        return load_breast_cancer(return_X_y=True)
    X, y = load_diabetes(return_X_y=True)
    return X, y / np.std(y)


def _train_curve(name, library, rounds=15, hessian=None, data=None, **options):
    X, y = data_for(name) if data is None else data
    init = boosting.init_score(name, y, **options)
    k = np.size(init)
    margin = np.tile(init, (len(y), 1)) if k > 1 else np.full(len(y), init)
    obj = boosting.objective(name, library, hessian=hessian, **options)
    if library == "xgboost":
        d = xgb.DMatrix(X, y, base_margin=margin)
        params = {**XGB, "disable_default_eval_metric": 1, **({"num_class": k} if k > 1 else {})}
        result = {}
        xgb.train(params, d, rounds, obj=obj, evals=[(d, "train")], evals_result=result,
                  custom_metric=boosting.metric(name, **options), verbose_eval=False)
        return np.array(result["train"][name])
    ds = lgb.Dataset(X, y, init_score=margin.ravel(order="F") if k > 1 else margin)
    result = {}
    params = {**LGB, "objective": obj, "metric": "None", **({"num_class": k} if k > 1 else {})}
    lgb.train(params, ds, rounds, valid_sets=[ds], valid_names=["train"],
              feval=boosting.metric(name, "lightgbm", **options),
              callbacks=[lgb.record_evaluation(result)])
    return np.array(result["train"][name])


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("name", BOOSTABLE)
def test_every_boostable_loss_trains_on_real_data(name, library):
    """Training loss after every round: never above the previous round's by more than 1e-6
    (relative) for the losses whose default Hessian is exact and convex-safe; the non-convex ones
    (clip) and the zero-Hessian ones (constant) may wobble but must end well below the start."""
    curve = _train_curve(name, library)
    assert np.all(np.isfinite(curve)), name
    # some values carry target-only constants (tweedie, poisson_nll): a relative drop of 1e-3
    assert curve[-1] < curve[0] - 1e-3 * abs(curve[0]), (name, curve[0], curve[-1])
    if boosting.default_hessian(name) in ("exact", "fisher"):
        rises = np.diff(curve) > 1e-6 * np.abs(curve[:-1])
        assert not rises.any(), (name, curve)


def test_focal_on_imbalanced_data_with_each_hessian():
    data = _imbalanced()
    finals = {}
    for hessian in ("exact", "clip", "constant"):
        curve = _train_curve("focal", "xgboost", rounds=20, hessian=hessian, data=data)
        assert np.all(np.isfinite(curve)) and curve[-1] < curve[0], hessian
        finals[hessian] = curve[-1]
    assert finals["clip"] <= finals["constant"]


# --- scale: XGBoost's Dask interface -------------------------------------------------------------


def test_dask_training_equals_single_process_training():
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    dxgb = pytest.importorskip("xgboost.dask", reason="xgboost.dask needs dask[dataframe]")
    import dask.array as da
    from distributed import Client, LocalCluster

    X, y = load_digits(return_X_y=True)
    y = (y == 9).astype(np.float32)  # pixel values 0..16: every bin boundary is exact
    params = {**XGB, "nthread": 1, "base_score": boosting.init_score("focal", y)}
    obj = boosting.objective("focal", gamma=2.0)
    single = xgb.train(params, xgb.DMatrix(X, y), 10, obj=obj)
    want = single.predict(xgb.DMatrix(X), output_margin=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        dX = da.from_array(X, chunks=(len(y) // 2 + 1, X.shape[1]))
        dy = da.from_array(y, chunks=(len(y) // 2 + 1,))
        dtrain = dxgb.DaskDMatrix(client, dX, dy)
        out = dxgb.train(client, params, dtrain, 10, obj=obj)
        got = dxgb.predict(client, out["booster"], dX, output_margin=True).compute()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# --- the README's CSV example --------------------------------------------------------------------


def test_csv_example_trains_any_loss_and_keeps_the_users_files(tmp_path, capsys):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "examples"))
    try:
        import boost_csv
    finally:
        sys.path.pop(0)
    X, y = load_diabetes(return_X_y=True)
    csv = tmp_path / "data.csv"
    names = [f"f{i}" for i in range(X.shape[1])] + ["target"]
    np.savetxt(csv, np.column_stack([X, y]), delimiter=",", header=",".join(names), comments="")
    before = csv.read_bytes()
    out = tmp_path / "model.json"
    assert boost_csv.main([str(csv), "--target", "target", "--loss", "pseudo_huber:delta=20",
                           "--rounds", "20", "--out", str(out)]) == 0
    booster = xgb.Booster(model_file=str(out))
    assert booster.predict(xgb.DMatrix(X)).shape == (len(y),)
    assert boost_csv.main([str(csv), "--target", "target", "--loss", "gamma_deviance",
                           "--library", "lightgbm", "--rounds", "10"]) == 0
    # refusals: one line, exit 2, nothing written
    assert boost_csv.main([str(csv), "--target", "target", "--out", str(csv)]) == 2
    assert boost_csv.main([str(csv), "--target", "target", "--out", str(out)]) == 2
    assert boost_csv.main([str(csv), "--target", "target", "--loss", "bce"]) == 2
    assert csv.read_bytes() == before
    assert "cannot be a boosting objective" in capsys.readouterr().err


def test_readme_states_each_boostable_losss_default_hessian():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith('| `"') and "` |" in line:
            choice, names = line.strip("|").split("|", 1)
            rows[choice.strip().strip('`"')] = {n.strip(" `") for n in names.split(",")}
    listed = set().union(*rows.values())
    for choice, names in rows.items():
        for name in names:
            assert boosting.default_hessian(name) == choice, name
    # every boostable loss there was when the table was written (later ones may be missing)
    assert {"bce_with_logits", "cross_entropy", "expectile", "exponential", "focal",
            "gamma_deviance", "hinge", "huber", "l1", "log_cosh", "mape", "mse", "msle",
            "multi_margin", "poisson_nll", "poly1", "pseudo_huber", "quantile", "smooth_l1",
            "soft_margin", "softmax_focal", "squared_hinge", "tweedie"} <= listed
