"""Schedules: learning rates equal torch.optim.lr_scheduler's over 100 steps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as TL

from losslab.train.callbacks import LambdaCallback
from losslab.train.layers import linear_model
from losslab.train.optimizers import SGD, Adam
from losslab.train.schedules import (
    SCHEDULES,
    Constant,
    CosineAnnealing,
    Cyclic,
    Exponential,
    LinearWarmup,
    OneCycle,
    ReduceOnPlateau,
    StepLR,
    make_schedule,
)
from losslab.train.trainer import Trainer

BASE = 0.1
N = 100


def torch_lrs(make, base=BASE, n=N, metrics=None):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make(opt)
        out = [opt.param_groups[0]["lr"]]
        for t in range(n):
            opt.step()
            if metrics is None:
                sched.step()
            else:
                sched.step(metrics[t])
            out.append(opt.param_groups[0]["lr"])
    return np.array(out)


def our_lrs(sched, n=N, metrics=None):
    out = [sched.lr]
    for t in range(n):
        out.append(sched.step(None if metrics is None else metrics[t]))
    return np.array(out)


CASES = [
    ("constant", lambda: Constant(BASE), lambda o: TL.LambdaLR(o, lambda t: 1.0)),
    ("step", lambda: StepLR(BASE, 7), lambda o: TL.StepLR(o, 7)),
    ("step_gamma", lambda: StepLR(BASE, 10, gamma=0.5), lambda o: TL.StepLR(o, 10, gamma=0.5)),
    ("exponential", lambda: Exponential(BASE, 0.95), lambda o: TL.ExponentialLR(o, 0.95)),
    ("cosine", lambda: CosineAnnealing(BASE, 100), lambda o: TL.CosineAnnealingLR(o, 100)),
    ("cosine_past_tmax", lambda: CosineAnnealing(BASE, 30, eta_min=0.01),
     lambda o: TL.CosineAnnealingLR(o, 30, eta_min=0.01)),
    ("cosine_warmup", lambda: CosineAnnealing(BASE, 100, eta_min=0.001, warmup_steps=10),
     lambda o: TL.SequentialLR(o, [TL.LinearLR(o, start_factor=1 / 3, total_iters=10),
                                   TL.CosineAnnealingLR(o, T_max=90, eta_min=0.001)],
                               milestones=[10])),
    ("cosine_warmup_factor", lambda: CosineAnnealing(BASE, 40, warmup_steps=5,
                                                     warmup_start_factor=0.01),
     lambda o: TL.SequentialLR(o, [TL.LinearLR(o, start_factor=0.01, total_iters=5),
                                   TL.CosineAnnealingLR(o, T_max=35)], milestones=[5])),
    ("cyclic", lambda: Cyclic(0.01, 0.1, step_size_up=10),
     lambda o: TL.CyclicLR(o, 0.01, 0.1, step_size_up=10, cycle_momentum=False)),
    ("cyclic_asym", lambda: Cyclic(0.01, 0.1, step_size_up=7, step_size_down=3),
     lambda o: TL.CyclicLR(o, 0.01, 0.1, step_size_up=7, step_size_down=3,
                           cycle_momentum=False)),
    ("cyclic_triangular2", lambda: Cyclic(0.01, 0.1, step_size_up=5, mode="triangular2"),
     lambda o: TL.CyclicLR(o, 0.01, 0.1, step_size_up=5, mode="triangular2",
                           cycle_momentum=False)),
    ("cyclic_exp_range", lambda: Cyclic(0.01, 0.1, step_size_up=5, mode="exp_range",
                                        gamma=0.98),
     lambda o: TL.CyclicLR(o, 0.01, 0.1, step_size_up=5, mode="exp_range", gamma=0.98,
                           cycle_momentum=False)),
    ("one_cycle", lambda: OneCycle(1.0, 100),
     lambda o: TL.OneCycleLR(o, max_lr=1.0, total_steps=100, cycle_momentum=False)),
    ("one_cycle_linear", lambda: OneCycle(0.5, 100, pct_start=0.25, anneal_strategy="linear",
                                          div_factor=10, final_div_factor=100),
     lambda o: TL.OneCycleLR(o, max_lr=0.5, total_steps=100, pct_start=0.25,
                             anneal_strategy="linear", div_factor=10, final_div_factor=100,
                             cycle_momentum=False)),
    ("one_cycle_three_phase", lambda: OneCycle(0.3, 100, pct_start=0.2, three_phase=True),
     lambda o: TL.OneCycleLR(o, max_lr=0.3, total_steps=100, pct_start=0.2, three_phase=True,
                             cycle_momentum=False)),
    ("linear_warmup", lambda: LinearWarmup(BASE, 20),
     lambda o: TL.LinearLR(o, total_iters=20)),
    ("linear_warmup_factors", lambda: LinearWarmup(BASE, 37, start_factor=0.01,
                                                   end_factor=0.5),
     lambda o: TL.LinearLR(o, start_factor=0.01, end_factor=0.5, total_iters=37)),
    ("linear_decay", lambda: LinearWarmup(BASE, 60, start_factor=1.0, end_factor=0.0),
     lambda o: TL.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=60)),
]


@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_learning_rates_match_torch(name, ours, theirs):
    base = 0.01 if name.startswith("cyclic") else BASE
    ref = torch_lrs(theirs, base=base)
    got = our_lrs(ours())
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-15)
    sched = ours()
    np.testing.assert_allclose([sched.lr_at(t) for t in range(N + 1)], got, rtol=0, atol=0)
    if name != "constant":
        assert len(np.unique(np.round(got, 12))) > 1  # the schedule actually moves


PLATEAU_CASES = [
    {},
    {"patience": 3},
    {"patience": 2, "factor": 0.5, "cooldown": 3},
    {"patience": 1, "factor": 0.5, "min_lr": 0.02},
    {"patience": 2, "threshold": 0.05, "threshold_mode": "abs"},
    {"mode": "max", "patience": 2, "factor": 0.3},
    {"mode": "max", "patience": 0, "threshold_mode": "abs", "threshold": 0.01, "cooldown": 1},
]


@pytest.mark.parametrize("options", PLATEAU_CASES, ids=str)
def test_reduce_on_plateau_matches_torch(options):
    rng = np.random.default_rng(0)
    # a metric that improves, then plateaus with noise, then improves again
    metrics = np.concatenate([np.linspace(1.0, 0.5, 20), 0.5 + 0.02 * rng.random(50),
                              np.linspace(0.49, 0.3, 30)])
    ref = torch_lrs(lambda o: TL.ReduceLROnPlateau(o, **options), metrics=metrics)
    got = our_lrs(ReduceOnPlateau(BASE, **options), metrics=metrics)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)
    assert got[-1] < got[0]


def test_plateau_nan_metric_counts_as_bad_like_torch():
    metrics = [1.0, float("nan"), float("nan"), float("nan")]
    ref = torch_lrs(lambda o: TL.ReduceLROnPlateau(o, patience=1), n=4, metrics=metrics)
    got = our_lrs(ReduceOnPlateau(BASE, patience=1), n=4, metrics=metrics)
    np.testing.assert_allclose(got, ref)


@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_state_dict_round_trip(name, ours, theirs):
    a = ours()
    for _ in range(13):
        a.step()
    state = a.state_dict()
    b = ours()
    b.load_state_dict(state)
    assert b.lr == a.lr
    assert [a.step() for _ in range(20)] == [b.step() for _ in range(20)]


def test_plateau_state_dict_round_trip():
    metrics = [1.0, 0.9, 0.95, 0.97, 0.99, 0.98, 0.97, 0.99, 1.0, 1.1] * 3
    a = ReduceOnPlateau(BASE, patience=1, cooldown=1)
    for m in metrics[:12]:
        a.step(m)
    b = ReduceOnPlateau(BASE, patience=1, cooldown=1)
    b.load_state_dict(a.state_dict())
    assert [a.step(m) for m in metrics[12:]] == [b.step(m) for m in metrics[12:]]


def test_make_schedule_names():
    assert isinstance(make_schedule("constant", 0.1), Constant)
    assert isinstance(make_schedule("step", 0.1, step_size=3), StepLR)
    assert isinstance(make_schedule("exponential", 0.1, gamma=0.9), Exponential)
    assert isinstance(make_schedule("cosine", 0.1, t_max=10, warmup_steps=2), CosineAnnealing)
    assert isinstance(make_schedule("cyclic", 0.01, max_lr=0.1, step_size_up=4), Cyclic)
    assert isinstance(make_schedule("Plateau", 0.1, patience=2), ReduceOnPlateau)
    assert isinstance(make_schedule("one_cycle", 0.1, total_steps=50), OneCycle)
    s = make_schedule("linear-warmup", 0.1, total_steps=5, interval="batch")
    assert isinstance(s, LinearWarmup) and s.interval == "batch"
    assert set(SCHEDULES) == {"constant", "step", "exponential", "cosine", "cyclic", "plateau",
                              "linear_warmup", "one_cycle"}


def test_unknown_schedule_suggests():
    with pytest.raises(ValueError, match="unknown schedule 'cosin'.*'cosine'"):
        make_schedule("cosin", 0.1, t_max=10)
    with pytest.raises(TypeError, match="no option 'gama'.*'gamma'"):
        make_schedule("exponential", 0.1, gama=0.9)


@pytest.mark.parametrize("make,exc,match", [
    (lambda: Constant(0.0), ValueError, "base_lr must be > 0"),
    (lambda: make_schedule("step", -1.0, step_size=2), ValueError, "base_lr"),
    (lambda: StepLR(0.1, 0), ValueError, "step_size"),
    (lambda: StepLR(0.1, 2.5), TypeError, "step_size"),
    (lambda: Exponential(0.1, 0), ValueError, "gamma"),
    (lambda: CosineAnnealing(0.1, 10, warmup_steps=10), ValueError, "warmup_steps"),
    (lambda: CosineAnnealing(0.1, 10, warmup_start_factor=0), ValueError, "warmup_start"),
    (lambda: Cyclic(0.01, 0.1, mode="triangle"), ValueError, "mode"),
    (lambda: ReduceOnPlateau(0.1, factor=1.0), ValueError, "factor"),
    (lambda: ReduceOnPlateau(0.1, mode="minimum"), ValueError, "mode"),
    (lambda: ReduceOnPlateau(0.1, interval="batch"), ValueError, "interval must be 'epoch'"),
    (lambda: StepLR(0.1, 2, interval="step"), ValueError, "interval must be 'epoch' or 'batch'"),
    (lambda: OneCycle(0.1, 2), ValueError, "phase of the cycle without steps"),
    (lambda: OneCycle(0.1, 100, pct_start=1.0), ValueError, "pct_start"),
    (lambda: OneCycle(0.1, 100, anneal_strategy="cosine"), ValueError, "anneal_strategy"),
    (lambda: LinearWarmup(0.1, 0), ValueError, "total_steps"),
    (lambda: LinearWarmup(0.1, 10, start_factor=0), ValueError, "start_factor"),
    (lambda: LinearWarmup(0.1, 10, end_factor=1.5), ValueError, "end_factor"),
])
def test_bad_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_plateau_needs_metric():
    with pytest.raises(ValueError, match="metric"):
        ReduceOnPlateau(0.1).step()


def test_load_wrong_schedule():
    with pytest.raises(ValueError, match="'StepLR', not 'Constant'"):
        Constant(0.1).load_state_dict(StepLR(0.1, 2).state_dict())


# -- per-batch steps ---------------------------------------------------------------------------


@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_is_bit_equal_to_torch(three_phase):
    # The same phase table and float operations as torch's OneCycleLR.get_lr.
    ref = torch_lrs(lambda o: TL.OneCycleLR(o, max_lr=0.7, total_steps=57, pct_start=0.3,
                                            three_phase=three_phase, cycle_momentum=False),
                    n=57)
    got = our_lrs(OneCycle(0.7, 57, pct_start=0.3, three_phase=three_phase), n=57)
    np.testing.assert_array_equal(got, ref)


def test_one_cycle_past_total_steps_is_an_error_like_torch():
    s = OneCycle(0.1, 10)
    for _ in range(10):
        s.step()
    with pytest.raises(ValueError, match="stepped 11 times but total_steps is 10"):
        s.step()


def _data(n=32, d=3):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * rng.normal(size=n)
    return X, y


CASES_PER_BATCH = [
    ("one_cycle", lambda: (SGD(lr=0.1, momentum=0.9),
                           OneCycle(0.1, 12, interval="batch")),
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
     lambda o: TL.OneCycleLR(o, max_lr=0.1, total_steps=12, cycle_momentum=False)),
    ("linear_warmup", lambda: (Adam(lr=0.05), LinearWarmup(0.05, 7, start_factor=0.1,
                                                          interval="batch")),
     lambda p: torch.optim.Adam(p, lr=0.05),
     lambda o: TL.LinearLR(o, start_factor=0.1, total_iters=7)),
]


@pytest.mark.parametrize("name,ours,opt,sched", CASES_PER_BATCH,
                         ids=[c[0] for c in CASES_PER_BATCH])
def test_trainer_steps_batch_schedules_like_a_torch_loop(name, ours, opt, sched):
    """3 epochs of 4 batches: the rate of every batch and the final parameters equal torch's
    loop of ``optimizer.step(); scheduler.step()`` per batch."""
    X, y = _data()
    model = linear_model(3, dtype="float64", seed=0)
    w0, b0 = model[0].weight.copy(), model[0].bias.copy()
    optimizer, schedule = ours()
    seen = []
    t = Trainer(model, "mse", optimizer, schedule=schedule, metrics=[])
    h = t.fit(X, y, epochs=3, batch_size=8, shuffle=False,
              callbacks=[LambdaCallback(on_batch_end=lambda tr, e, b, logs: seen.append(
                  logs["lr"]))])

    lin = torch.nn.Linear(3, 1).double()
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w0))
        lin.bias.copy_(torch.from_numpy(b0))
    topt = opt(lin.parameters())
    tsched = sched(topt)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)[:, None]
    ref_lrs = []
    for _ in range(3):
        for i in range(0, 32, 8):
            ref_lrs.append(topt.param_groups[0]["lr"])
            topt.zero_grad()
            torch.nn.functional.mse_loss(lin(Xt[i:i + 8]), yt[i:i + 8]).backward()
            topt.step()
            tsched.step()
    np.testing.assert_allclose(seen, ref_lrs, rtol=1e-12, atol=0)
    assert len(np.unique(seen)) > 3  # the rate moved within epochs
    assert h["lr"] == [seen[0], seen[4], seen[8]]  # each epoch's first batch
    assert t.optimizer.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
    np.testing.assert_allclose(model[0].weight, lin.weight.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(model[0].bias, lin.bias.detach().numpy(), rtol=1e-10)


def test_epoch_schedule_is_not_stepped_per_batch():
    X, y = _data()
    seen = []
    t = Trainer(linear_model(3, dtype="float64", seed=0), "mse", "sgd", lr=0.1, metrics=[],
                schedule=StepLR(0.1, step_size=1, gamma=0.5))
    t.fit(X, y, epochs=2, batch_size=8, callbacks=[LambdaCallback(
        on_batch_end=lambda tr, e, b, logs: seen.append(logs["lr"]))])
    assert seen == [0.1] * 4 + [0.05] * 4
