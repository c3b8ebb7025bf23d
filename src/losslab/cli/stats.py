"""Is a difference between two losses bigger than the noise of the splits? A paired test.

``compare --folds K --repeats R`` trains every loss on the same J = K * R splits, so the
difference of a metric between two losses is paired split by split. Those J differences are not
independent (the training sets overlap), which makes the plain paired t-test overconfident; the
corrected resampled t-test of Nadeau and Bengio ("Inference for the Generalization Error",
Machine Learning 52, 2003) widens the variance by the overlap::

    t = mean(d) / sqrt((1/J + n_test/n_train) * var(d)),   J - 1 degrees of freedom

(the test scikit-learn's documentation uses to compare models across repeated folds). With
several pairs, Holm's step-down adjustment keeps the chance of any false "exceeds the noise"
under the level. Student's t tail comes from the regularised incomplete beta function, so no
SciPy is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["t_sf", "PairedTest", "corrected_paired_t", "holm"]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


@dataclass(frozen=True)
class PairedTest:
    mean: float        # mean of the differences (a - b)
    sd: float          # their standard deviation across splits
    t: float
    p: float           # two-sided
    n: int             # splits


def corrected_paired_t(diffs: Sequence[float], n_train: int, n_test: int) -> PairedTest:
    """Nadeau-Bengio corrected resampled t-test of ``diffs`` (one per split) against 0."""
    d = np.asarray(diffs, dtype=np.float64)
    j = len(d)
    mean = float(np.mean(d))
    sd = float(np.std(d, ddof=1)) if j > 1 else math.nan
    if j < 2:
        return PairedTest(mean, sd, math.nan, math.nan, j)
    var = (1.0 / j + n_test / n_train) * sd * sd
    if var == 0.0:
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        t = mean / math.sqrt(var)
    return PairedTest(mean, sd, t, min(1.0, 2.0 * t_sf(abs(t), j - 1)), j)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, dtype=np.float64)
    ok = np.flatnonzero(np.isfinite(p))
    out = np.full(len(p), math.nan)
    order = ok[np.argsort(p[ok])]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()
