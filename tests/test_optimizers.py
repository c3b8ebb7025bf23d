"""Optimizers: parameters after 20 steps equal torch.optim's on the same gradient sequence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from losslab.train.optimizers import (
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    AdamW,
    RMSprop,
    make_optimizer,
)

SHAPES = {"0.weight": (4, 3), "0.bias": (4,), "2.weight": (2, 4)}

CASES = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.05}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01, "amsgrad": True}),
    ("adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.3}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.9}),
    ("rmsprop", {"lr": 0.01, "centered": True}),
    ("rmsprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    ("adagrad", {"lr": 0.1}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    ("adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6}),
    ("adagrad", {"lr": 0.1, "weight_decay": 0.1, "lr_decay": 0.01}),
]

TORCH = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}


def initial_params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()}


def gradient(params, t, rng_seed=1):
    """A gradient that depends on the parameters (a quadratic pull) plus step-t noise, so errors
    in the update would compound over the steps rather than cancel."""
    rng = np.random.default_rng(rng_seed + t)
    return {k: 0.5 * (p - 0.3) + rng.normal(size=p.shape).astype(p.dtype)
            for k, p in params.items()}


def run_ours(name, options, steps=20, dtype=np.float64, lr_change=None):
    params = initial_params(dtype=dtype)
    opt = make_optimizer(name, **options)
    for t in range(steps):
        if lr_change and t == lr_change[0]:
            opt.lr = lr_change[1]
        opt.step(params, gradient(params, t))
    return params, opt


def run_torch(name, options, steps=20, lr_change=None):
    start = initial_params()
    tp = {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in start.items()}
    opt = TORCH[name](list(tp.values()), foreach=False, **options)
    for t in range(steps):
        if lr_change and t == lr_change[0]:
            opt.param_groups[0]["lr"] = lr_change[1]
        current = {k: p.detach().numpy() for k, p in tp.items()}
        for k, g in gradient(current, t).items():
            tp[k].grad = torch.from_numpy(g)
        opt.step()
    return {k: p.detach().numpy() for k, p in tp.items()}


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_20_steps_match_torch(name, options):
    ours, _ = run_ours(name, options)
    ref = run_torch(name, options)
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-6, atol=1e-9, err_msg=k)
        # the run moved the parameters: a test where nothing happens could not fail
        assert not np.allclose(ours[k], initial_params()[k])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_lr_change_mid_run_matches_torch(name):
    options = {"lr": 0.02}
    ours, _ = run_ours(name, options, lr_change=(10, 0.005))
    ref = run_torch(name, options, lr_change=(10, 0.005))
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-6, atol=1e-9, err_msg=k)


@pytest.mark.parametrize("name,options", CASES[::2], ids=[f"{n}-{o}" for n, o in CASES[::2]])
def test_state_dict_round_trip_resumes_exactly(name, options):
    full, _ = run_ours(name, options, steps=20)
    params = initial_params()
    opt = make_optimizer(name, **options)
    for t in range(10):
        opt.step(params, gradient(params, t))
    state = opt.state_dict()
    _assert_plain(state)
    fresh = make_optimizer(name, **{**options, "lr": 0.5})  # hyperparameters come from the state
    fresh.load_state_dict(state)
    assert fresh.lr == opt.lr
    # the saved state is a copy: stepping the original does not change it
    p10 = {k: v.copy() for k, v in params.items()}
    # the saved state is a copy: stepping the original further does not change it
    before = {k: {kk: np.copy(vv) for kk, vv in st.items()} for k, st in state["state"].items()}
    opt.step(params, gradient(params, 10))
    for k, st in state["state"].items():
        for kk, vv in st.items():
            np.testing.assert_array_equal(vv, before[k][kk])
    for t in range(10, 20):
        fresh.step(p10, gradient(p10, t))
    for k in full:
        np.testing.assert_array_equal(p10[k], full[k])


def _assert_plain(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, str)
            _assert_plain(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _assert_plain(v)
    else:
        assert obj is None or isinstance(obj, (str, int, float, bool, np.ndarray)), type(obj)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_float32_preserved_and_close_to_float64(name):
    p32, opt = run_ours(name, {"lr": 0.01}, dtype=np.float32)
    p64, _ = run_ours(name, {"lr": 0.01})
    for k in p32:
        assert p32[k].dtype == np.float32
        np.testing.assert_allclose(p32[k], p64[k], rtol=1e-4, atol=1e-5)
    for st in opt.state.values():
        for v in st.values():
            if isinstance(v, np.ndarray):
                assert v.dtype == np.float32


def test_updates_in_place_and_skip_missing_grads():
    params = initial_params()
    refs = dict(params)
    before = {k: v.copy() for k, v in params.items()}
    opt = Adam(lr=0.1)
    opt.step(params, {"0.weight": np.ones(SHAPES["0.weight"])})
    assert all(params[k] is refs[k] for k in params)
    assert not np.array_equal(params["0.weight"], before["0.weight"])
    np.testing.assert_array_equal(params["0.bias"], before["0.bias"])
    assert set(opt.state) == {"0.weight"}


def test_adamw_differs_from_adam_weight_decay():
    a, _ = run_ours("adam", {"lr": 0.01, "weight_decay": 0.3})
    w, _ = run_ours("adamw", {"lr": 0.01, "weight_decay": 0.3})
    assert not np.allclose(a["0.weight"], w["0.weight"])


def test_make_optimizer_names_and_defaults():
    assert isinstance(make_optimizer("SGD"), SGD)
    assert isinstance(make_optimizer("adam_w"), AdamW)
    assert isinstance(make_optimizer("RMSProp"), RMSprop)
    assert isinstance(make_optimizer("adagrad"), Adagrad)
    assert make_optimizer("adam", lr=None).lr == 1e-3
    assert make_optimizer("sgd", lr=0.5, momentum=0.9).momentum == 0.9
    assert AdamW().weight_decay == torch.optim.AdamW([torch.zeros(1)]).defaults["weight_decay"]
    # default learning rates are torch's, except SGD: 0.01 (the contract's and the article's;
    # torch 2.x defaults to 1e-3)
    assert SGD().lr == 0.01
    for name, cls in OPTIMIZERS.items():
        ref = torch.optim.__dict__[cls.__name__]([torch.zeros(1, requires_grad=True)]).defaults
        ours = cls().hyperparameters()
        for k, v in ours.items():
            if not (name == "sgd" and k == "lr"):
                want = list(ref[k]) if isinstance(ref[k], tuple) else ref[k]
                assert v == want, (name, k)


def test_unknown_optimizer_suggests():
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'.*'adam'"):
        make_optimizer("adamm")
    with pytest.raises(TypeError, match="no option 'momentun'.*'momentum'"):
        make_optimizer("sgd", momentun=0.9)
    with pytest.raises(TypeError, match="optimizer name"):
        make_optimizer(3)


@pytest.mark.parametrize("cls", list(OPTIMIZERS.values()))
@pytest.mark.parametrize("lr", [0, -0.1, float("nan")])
def test_lr_must_be_positive(cls, lr):
    with pytest.raises(ValueError, match="lr must be > 0"):
        cls(lr=lr)


@pytest.mark.parametrize("make,match", [
    (lambda: SGD(nesterov=True), "nesterov"),
    (lambda: SGD(momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (lambda: SGD(momentum=-1), "momentum"),
    (lambda: Adam(betas=(1.0, 0.999)), r"betas\[0\]"),
    (lambda: Adam(betas=(0.9,)), "betas"),
    (lambda: Adam(eps=-1), "eps"),
    (lambda: AdamW(weight_decay=-0.1), "weight_decay"),
    (lambda: RMSprop(alpha=-0.1), "alpha"),
    (lambda: Adagrad(lr_decay=-1), "lr_decay"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_lr_not_a_number():
    with pytest.raises(TypeError, match="lr must be a number"):
        SGD(lr="0.1")


def test_bad_grads():
    params = initial_params()
    with pytest.raises(ValueError, match=r"grads\['0.bias'\] must have the parameter's shape"):
        SGD().step(params, {"0.bias": np.zeros(5)})
    with pytest.raises(ValueError, match="not parameters.*'0.weight'"):
        SGD().step(params, {"0.weigth": np.zeros((4, 3))})


def test_load_state_dict_wrong_optimizer():
    with pytest.raises(ValueError, match="'Adam', not 'SGD'"):
        SGD().load_state_dict(Adam().state_dict())


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_non_contiguous_parameters_updated_in_place(name):
    """Fortran-ordered parameters and gradients give the same update as contiguous ones, in
    place (the scratch arrays follow the parameter's layout)."""
    contiguous = initial_params()
    fortran = {k: np.asfortranarray(v) for k, v in contiguous.items()}
    refs = dict(fortran)
    opt_c, opt_f = make_optimizer(name, lr=0.01), make_optimizer(name, lr=0.01)
    for t in range(5):
        g = gradient(contiguous, t)
        opt_c.step(contiguous, g)
        opt_f.step(fortran, {k: np.asfortranarray(v) for k, v in g.items()})
    for k in contiguous:
        assert fortran[k] is refs[k]
        np.testing.assert_allclose(fortran[k], contiguous[k], rtol=1e-12, atol=1e-15)
