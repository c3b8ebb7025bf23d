"""Robust regression losses: Barron's family over its shapes, against the paper's formula in
torch autograd (Barron, "A General and Adaptive Robust Loss Function", CVPR 2019, eq. 1) and
kornia's forms (scale 1)."""

import math

import numpy as np
import pytest
import torch
from family_checks import check_options

import losslab

ALPHAS = [2.0, 1.0, 0.0, -2.0, -math.inf, math.inf, 0.5, -1.0, 3.0, 1e-9, 2.0 - 1e-7]


@pytest.mark.parametrize("name", ["cauchy", "geman_mcclure", "welsch"])
def test_named_losses_over_scales(name):
    check_options(name, [{"scale": 0.5}, {"scale": 2.0}])


def test_general_robust_over_shapes():
    check_options("general_robust", [{"alpha": a, "scale": 1.5} for a in ALPHAS], seeds=1)


def _barron_torch(x, alpha, c):
    z = (x / c) ** 2
    if alpha == 2:
        return 0.5 * z
    if alpha == 0:
        return torch.log(0.5 * z + 1)
    if alpha == -math.inf:
        return 1 - torch.exp(-0.5 * z)
    if alpha == math.inf:
        return torch.exp(0.5 * z) - 1
    b = abs(alpha - 2)
    return b / alpha * ((z / b + 1) ** (alpha / 2) - 1)


@pytest.mark.parametrize("alpha", [2.0, 1.0, 0.0, -2.0, -math.inf, math.inf, 0.5, -1.0, 3.0])
def test_general_robust_equals_the_paper_in_torch_autograd(alpha):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    xt = torch.tensor(x, requires_grad=True)
    ref = _barron_torch(xt - torch.tensor(y), alpha, 0.7).sum()
    ref.backward()
    loss = losslab.get("general_robust", alpha=alpha, scale=0.7, reduction="sum")
    v, g = loss.value_and_grad(x, y)
    np.testing.assert_allclose(v, ref.item(), rtol=1e-12)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_named_losses_are_the_special_cases_and_kornias_forms():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=20) * 3, rng.normal(size=20)
    d = x - y
    kornia = {
        "cauchy": (0.0, np.log(0.5 * d**2 + 1)),
        "geman_mcclure": (-2.0, 2 * d**2 / (d**2 + 4)),
        "welsch": (-math.inf, 1 - np.exp(-0.5 * d**2)),
    }
    for name, (alpha, want) in kornia.items():
        ours = losslab.get(name, reduction="none")(x, y)
        np.testing.assert_allclose(ours, want, rtol=1e-12)
        general = losslab.get("general_robust", alpha=alpha, reduction="none")(x, y)
        np.testing.assert_allclose(general, ours, rtol=1e-12)


def test_near_special_shapes_are_continuous_and_tiny_residuals_exact():
    x, y = np.array([1e-9, 0.3, 5.0, 1e3]), np.zeros(4)
    for a in (0.0, 2.0, 1.0):
        exact = losslab.get("general_robust", alpha=a, reduction="none")(x, y)
        near = losslab.get("general_robust", alpha=a + 1e-8, reduction="none")(x, y)
        np.testing.assert_allclose(near, exact, rtol=1e-6)
    # (d/c)^2 / 2 for tiny residuals, without cancellation, for every shape
    for a in ALPHAS:
        v = losslab.get("general_robust", alpha=a, reduction="none")(np.array([1e-9]), np.zeros(1))
        np.testing.assert_allclose(v, 0.5e-18, rtol=1e-6)


def test_bad_options_refused_at_get():
    with pytest.raises(ValueError, match="scale"):
        losslab.get("cauchy", scale=0.0)
    with pytest.raises(ValueError, match="alpha"):
        losslab.get("general_robust", alpha=math.nan)
    with pytest.raises(TypeError, match="alpha"):
        losslab.get("general_robust", alpha="1")
