"""Special functions: erf and erfc (the exact GELU needs them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["erf", "erfc"]

# erf / erfc: SciPy's ufuncs when SciPy is importable, else W. J. Cody's rational
# approximations (CALERF, ACM TOMS 1993 / Math. Comp. 1969), vectorised. Both are accurate to a
# few float64 ulps; float32 input is computed in float64 by the fallback and cast back.

_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_SQRPI = 5.6418958354775628695e-1  # 1 / sqrt(pi)
_XBIG = 27.3  # erfc(x) < smallest subnormal beyond this


def _erfc_abs(y: np.ndarray) -> np.ndarray:
    """erfc(y) for y >= 1/2-ish (Cody's 2nd and 3rd intervals), y a float64 array."""
    out = np.zeros_like(y)
    mid = y <= 4.0
    if mid.any():
        t = y[mid]
        num, den = _C[8] * t, t
        for i in range(7):
            num, den = (num + _C[i]) * t, (den + _D[i]) * t
        out[mid] = (num + _C[7]) / (den + _D[7])
    big = (~mid) & (y < _XBIG)
    if big.any():
        t = y[big]
        z = 1.0 / (t * t)
        num, den = _P[5] * z, z
        for i in range(4):
            num, den = (num + _P[i]) * z, (den + _Q[i]) * z
        out[big] = (_SQRPI - z * (num + _P[4]) / (den + _Q[4])) / t
    # exp(-y^2) split as exp(-ys^2) exp(-(y - ys)(y + ys)), ys = y rounded down to 1/16, so the
    # large y^2 loses no bits.
    ys = np.trunc(y * 16.0) / 16.0
    with np.errstate(over="ignore", invalid="ignore"):
        scale = np.exp(-ys * ys) * np.exp(-(y - ys) * (y + ys))
    keep = out != 0.0
    out[keep] *= scale[keep]
    return out


def _erf_small(x: np.ndarray) -> np.ndarray:
    """erf(x) for |x| <= 0.46875 (Cody's 1st interval)."""
    z = x * x
    num, den = _A[4] * z, z
    for i in range(3):
        num, den = (num + _A[i]) * z, (den + _B[i]) * z
    return x * (num + _A[3]) / (den + _B[3])


def _cody(x: Any, complement: bool) -> np.ndarray:
    x = np.asarray(x)
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    x64 = np.asarray(x, dtype=np.float64)
    y = np.abs(x64)
    out = np.empty_like(x64)
    small = y <= 0.46875
    large = ~small & ~np.isnan(y)
    e = _erf_small(x64[small])
    out[small] = 1.0 - e if complement else e
    c = _erfc_abs(y[large])
    neg = x64[large] < 0
    if complement:
        out[large] = np.where(neg, 2.0 - c, c)
    else:
        r = (0.5 - c) + 0.5
        out[large] = np.where(neg, -r, r)
    out[np.isnan(y)] = np.nan
    return out.astype(dtype, copy=False)


def _cody_erf(x: Any) -> np.ndarray:
    return _cody(x, complement=False)


def _cody_erfc(x: Any) -> np.ndarray:
    return _cody(x, complement=True)


def _pick(name: str, fallback: Callable[[Any], np.ndarray]) -> Callable[[Any], np.ndarray]:
    try:
        import scipy.special as sc
    except ImportError:  # scipy is optional
        return fallback
    return getattr(sc, name)


_ERF: list[Callable[[Any], np.ndarray]] = []


def _funcs() -> list[Callable[[Any], np.ndarray]]:
    if not _ERF:  # resolved lazily so `import losslab.train.layers` never imports scipy
        _ERF.extend([_pick("erf", _cody_erf), _pick("erfc", _cody_erfc)])
    return _ERF


def erf(x: Any) -> np.ndarray:
    """The error function, elementwise, keeping float32/float64."""
    return _funcs()[0](x)


def erfc(x: Any) -> np.ndarray:
    """The complementary error function ``1 - erf(x)`` without cancellation for large x."""
    return _funcs()[1](x)
