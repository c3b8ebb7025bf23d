"""Preference losses against each paper's formula in torch autograd and TRL's DPO formula
(trl 0.x ``DPOTrainer.dpo_loss``, loss_type="sigmoid", written here independently: TRL itself
imports transformers and cannot be installed without it)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from family_checks import check_options

import losslab


def test_options_finite_differences_and_hessians():
    check_options("dpo", [{"beta": 0.5}, {"beta": 0.1, "label_smoothing": 0.2}])
    check_options("ipo", [{"beta": 0.3}])
    check_options("simpo", [{"beta": 2.0, "gamma": 1.0}, {"label_smoothing": 0.1}])
    check_options("orpo", [{"beta": 0.5}, {"nll": False}])
    check_options("kto", [{"beta": 0.5, "desirable_weight": 1.3, "undesirable_weight": 0.7}])


def _trl_dpo(pc, pr, rc, rr, beta, label_smoothing):
    logits = (pc - pr) - (rc - rr)
    return (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
            - F.logsigmoid(-beta * logits) * label_smoothing).mean()


def _grads(name, ref_fn, arrays, n_diff, **options):
    ts = [torch.tensor(a, requires_grad=i < n_diff) for i, a in enumerate(arrays)]
    ref = ref_fn(*ts)
    ref.backward()
    v, g = losslab.get(name, **options).value_and_grad(*arrays)
    np.testing.assert_allclose(v, ref.item(), rtol=1e-11)
    g = g if isinstance(g, tuple) else (g,)
    for a, t in zip(g, ts[:n_diff]):
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("ls", [0.0, 0.3])
def test_dpo_equals_trl(ls):
    arrays = losslab.spec("dpo").example(np.random.default_rng(0))
    _grads("dpo", lambda *t: _trl_dpo(*t, 0.2, ls), arrays, 2, beta=0.2, label_smoothing=ls)


def test_ipo_simpo_orpo_kto_equal_their_papers():
    rng = np.random.default_rng(1)
    a = losslab.spec("ipo").example(rng)
    _grads("ipo", lambda pc, pr, rc, rr: (((pc - rc) - (pr - rr) - 1 / (2 * 0.3)) ** 2).mean(),
           a, 2, beta=0.3)  # Azar et al. 2024, eq. 17
    a = losslab.spec("simpo").example(rng)
    _grads("simpo",
           lambda pc, pr, lc, lr: -F.logsigmoid(2.0 * pc / lc - 2.0 * pr / lr - 1.0).mean(),
           a, 2, beta=2.0, gamma=1.0)  # Meng et al. 2024, eq. 6

    def orpo(pc, pr):  # Hong et al. 2024, eqs. 6-7, odds written out
        odds = lambda p: torch.exp(p) / (1 - torch.exp(p))  # noqa: E731
        return (-pc - 0.1 * F.logsigmoid(torch.log(odds(pc) / odds(pr)))).mean()

    _grads("orpo", orpo, losslab.spec("orpo").example(rng), 2)

    def kto(p, r, y, z0):  # Ethayarajh et al. 2024, eq. 8
        v_d = torch.sigmoid(0.5 * (p - r - z0))
        v_u = torch.sigmoid(0.5 * (z0 - (p - r)))
        return (y * 1.2 * (1 - v_d) + (1 - y) * 0.8 * (1 - v_u)).mean()

    _grads("kto", kto, losslab.spec("kto").example(rng), 1, beta=0.5, desirable_weight=1.2,
           undesirable_weight=0.8)


def test_huge_log_ratio_differences_are_finite_with_the_right_limits():
    h = np.array([1e4, -1e4, 1e8, -1e8])
    zeros = np.zeros(4)
    for ls in (0.0, 0.1):
        loss = losslab.get("dpo", beta=1.0, label_smoothing=ls, reduction="none")
        v, (gc, gr) = loss.value_and_grad(h, zeros, zeros, zeros)
        want = (1 - ls) * np.maximum(-h, 0) + ls * np.maximum(h, 0)
        np.testing.assert_allclose(v, want, rtol=1e-12)
        np.testing.assert_allclose(gc, np.where(h > 0, ls, -(1 - ls)), atol=1e-12)
        assert np.all(np.isfinite(gr))
    v, g = losslab.get("orpo", reduction="none").value_and_grad(np.array([-1e-12, -50.0]),
                                                               np.array([-50.0, -1e-12]))
    assert np.all(np.isfinite(v)) and all(np.all(np.isfinite(a)) for a in g)


def test_bad_input_refused():
    with pytest.raises(ValueError, match="policy_chosen_logps must be < 0"):
        losslab.get("orpo")(np.array([0.0]), np.array([-1.0]))
    with pytest.raises(ValueError, match="label_smoothing"):
        losslab.get("dpo", label_smoothing=0.7)
    with pytest.raises(ValueError, match="reference_chosen_logps"):
        losslab.get("dpo")(np.zeros(3) - 1, np.zeros(3) - 1, np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="target must lie in"):
        losslab.get("kto")(np.zeros(2) - 1, np.zeros(2), np.array([2.0, 0.0]), np.zeros(1))
    with pytest.raises(ValueError, match="chosen_lengths"):
        losslab.get("simpo")(*[np.array([-1.0])] * 2, np.array([0.0]), np.array([1.0]))
