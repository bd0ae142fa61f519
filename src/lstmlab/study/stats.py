"""Welch's t-test for comparing runs (``lstmlab study``), with its p-value computed from the
regularized incomplete beta function, so no statistics package is needed (checked against mpmath
and published examples in tests/test_study.py)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def betainc(a: float, b: float, x: float) -> float:
    r"""The regularized incomplete beta function :math:`I_x(a, b)`, for a, b > 0, 0 <= x <= 1.

    The continued fraction of Numerical Recipes (Press et al. 2007, §6.4), evaluated by the
    modified Lentz method; it converges fast for :math:`x < (a + 1) / (a + b + 2)`, and
    :math:`I_x(a, b) = 1 - I_{1-x}(b, a)` covers the rest.
    """
    if not (a > 0 and b > 0 and 0 <= x <= 1):
        raise ValueError(f"betainc needs a > 0, b > 0 and 0 <= x <= 1; got a={a}, b={b}, x={x}")
    if x in (0, 1):
        return float(x)
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1 - front * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300  # keeps Lentz's denominators off zero
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        for coefficient in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),  # d_2m
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):  # d_2m+1
            d = 1 + coefficient * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + coefficient / c
            c = c if abs(c) > tiny else tiny
            h *= c * d
        if abs(c * d - 1) < 1e-15:
            break
    return h


def t_two_sided_p(t: float, df: float) -> float:
    r"""P(|T| >= |t|) for Student's t with ``df`` degrees of freedom:
    :math:`I_{\nu / (\nu + t^2)}(\nu / 2, 1 / 2)`."""
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isinf(t):
        return 0.0
    return betainc(df / 2, 0.5, df / (df + t * t))


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    r"""Welch's t-test of equal means, unequal variances (Welch 1947): ``(t, df, p)``.

    .. math::
        t = \frac{\bar a - \bar b}{\sqrt{s_a^2 / n_a + s_b^2 / n_b}}, \qquad
        \nu = \frac{(s_a^2 / n_a + s_b^2 / n_b)^2}
                   {\frac{(s_a^2 / n_a)^2}{n_a - 1} + \frac{(s_b^2 / n_b)^2}{n_b - 1}}

    (Welch-Satterthwaite), ``p`` two-sided. Both samples need two values or more. Two samples
    without spread give ``p = 1`` if their means agree and ``p = 0`` if not (``t = ±inf``).

    Example::

        >>> t, df, p = welch_t_test([0.91, 0.93, 0.90], [0.80, 0.84, 0.79])   # p ≈ 0.004
    """
    if len(a) < 2 or len(b) < 2:
        raise ValueError(
            f"Welch's t-test needs at least 2 values per sample; got {len(a)} and {len(b)}"
        )
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    if va + vb == 0:
        return (0.0, math.nan, 1.0) if diff == 0 else (math.copysign(math.inf, diff), math.nan, 0.0)
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return t, df, t_two_sided_p(t, df)
