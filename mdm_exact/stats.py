"""Confidence intervals used by every Monte Carlo estimate in the package.

All intervals are two-sided with miscoverage ``ci_alpha`` (``1 - ci_alpha`` confidence); the
name ``alpha`` is kept for masking-schedule values (:mod:`mdm_exact.sampler.schedules`).
"""

from __future__ import annotations

import numpy as np
from scipy import special as _sp  # not scipy.stats: importing it costs about 1 s per CLI call


def clopper_pearson(successes, n, ci_alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval for a binomial proportion.

    Parameters
    ----------
    successes : int
        Number of events observed, ``0 <= successes <= n``.
    n : int
        Number of trials, ``n >= 1``.
    ci_alpha : float
        Miscoverage; the interval covers the true proportion with probability >= ``1 - ci_alpha``.
    """
    k = int(successes)
    n = int(n)
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"clopper_pearson: expected 0 <= successes <= n and n >= 1, got {k} and {n}")
    if not 0 < ci_alpha < 1:
        raise ValueError(f"clopper_pearson: expected 0 < ci_alpha < 1, got {ci_alpha}")
    lo = 0.0 if k == 0 else float(_sp.betaincinv(k, n - k + 1, ci_alpha / 2))  # = scipy.stats.beta.ppf
    hi = 1.0 if k == n else float(_sp.betaincinv(k + 1, n - k, 1 - ci_alpha / 2))
    return lo, hi


def normal_quantile(ci_alpha: float) -> float:
    """``z`` with ``P(|Z| > z) = ci_alpha`` for a standard normal ``Z``."""
    if not 0 < ci_alpha < 1:
        raise ValueError(f"normal_quantile: expected 0 < ci_alpha < 1, got {ci_alpha}")
    return float(-_sp.ndtri(ci_alpha / 2))  # = scipy.stats.norm.isf


def mean_ci(values, ci_alpha: float = 0.05) -> tuple[float, float, float]:
    """Sample mean with a normal-approximation interval ``mean +- z * SE``.

    Returns ``(mean, lo, hi)``. With fewer than two finite values the interval is
    ``(-inf, inf)``. NaN input raises: a NaN is always a bug upstream.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if np.any(np.isnan(v)):
        raise ValueError("mean_ci: input contains NaN")
    if v.size == 0:
        raise ValueError("mean_ci: no values")
    m = float(v.mean())
    if v.size < 2 or not np.all(np.isfinite(v)):
        return m, -np.inf, np.inf
    se = float(v.std(ddof=1) / np.sqrt(v.size))
    z = normal_quantile(ci_alpha)
    return m, m - z * se, m + z * se
