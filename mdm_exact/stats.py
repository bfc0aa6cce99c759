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


def clip_nonnegative(value):
    """``max(value, 0.0)`` for a quantity that is mathematically ``>= 0`` (KL, entropy, total
    correlation), so float64 rounding never shows as ``-5e-16``; None and inf pass through.

    Only for exact values whose negative part is rounding: the clipped amount is at most a
    few ulps of the terms summed. NaN raises (always a bug upstream).
    """
    if value is None:
        return None
    v = float(value)
    if v != v:
        raise ValueError("clip_nonnegative: NaN")
    return v if v > 0.0 else 0.0


def log_scale_mean_ci(log_values, ci_alpha: float = 0.05) -> tuple[float, float, float]:
    """Mean of the positive values ``exp(log_values)`` with an interval on the log scale.

    Returns ``(mean, lo, hi)`` with ``0 <= lo <= mean <= hi``: the delta-method interval for
    ``log(mean)``, ``log(mean) +- z * SE(mean) / mean``, mapped back by ``exp``; it has the
    same first-order coverage as ``mean +- z SE`` but never goes below zero. Everything is
    computed from ``w = exp(log_values - max)``, so no value overflows before the final
    ``exp`` (which gives ``inf`` only when the mean itself exceeds the float64 range). With
    one value the interval is ``(0, inf)``.
    """
    a = np.asarray(log_values, dtype=np.float64).ravel()
    if np.any(np.isnan(a)):
        raise ValueError("log_scale_mean_ci: input contains NaN")
    if a.size == 0:
        raise ValueError("log_scale_mean_ci: no values")
    amax = float(a.max())
    if amax == -np.inf:
        return 0.0, 0.0, 0.0
    if amax == np.inf:
        return np.inf, 0.0, np.inf
    w = np.exp(a - amax)  # (n,) in (0, 1]
    mw = float(w.mean())
    log_mean = amax + float(np.log(mw))
    with np.errstate(over="ignore"):
        mean = float(np.exp(log_mean))
        if a.size < 2:
            return mean, 0.0, np.inf
        rel = float(w.std(ddof=1)) / (mw * np.sqrt(a.size))  # SE(mean) / mean, scale-free
        half = normal_quantile(ci_alpha) * rel
        return mean, float(np.exp(log_mean - half)), float(np.exp(log_mean + half))


def sequence_counts(x, V: int) -> np.ndarray:
    """Histogram of the sequences ``x`` (n, L) over all ``V^L`` sequences, in
    :func:`mdm_exact.languages.all_sequences` order (``x_1`` most significant)."""
    x = np.asarray(x, dtype=np.int64)
    if x.ndim != 2:
        raise ValueError(f"sequence_counts: expected sequences of shape (n, L), got shape {x.shape}")
    L = x.shape[1]
    if x.size and (x.min() < 0 or x.max() >= V):
        raise ValueError(f"sequence_counts: expected tokens in [0, {V}), got values in [{x.min()}, {x.max()}]")
    return np.bincount(x @ (V ** np.arange(L - 1, -1, -1, dtype=np.int64)), minlength=V**L)


def chi_square_law(counts, probs, *, min_expected: float = 5.0) -> dict:
    """Pearson's chi-square goodness of fit of ``counts`` to the exact law ``probs``.

    Outcomes of exact probability 0 are not cells: samples on them are returned as
    ``zero_probability_hits`` (any one of them refutes the law outright; a test should check it
    first). Cells whose expected count is below ``min_expected`` are pooled into one cell.
    Returns ``statistic``, ``dof``, ``p_value`` (1.0 with fewer than two cells: nothing to
    test), ``zero_probability_hits`` and ``cells``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    if counts.shape != p.shape:
        raise ValueError(f"chi_square_law: counts {counts.shape} and probs {p.shape} differ in shape")
    if np.any(~np.isfinite(p)) or np.any(p < 0) or abs(p.sum() - 1.0) > 1e-9:
        raise ValueError(f"chi_square_law: probs must be a probability vector (sum {p.sum()!r})")
    support = p > 0
    hits = int(counts[~support].sum())
    n = counts[support].sum()
    expected = p[support] / p[support].sum() * n
    obs = counts[support]
    small = expected < min_expected
    if small.any():
        obs = np.append(obs[~small], obs[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    cells = int(obs.size)
    if cells < 2 or n == 0:
        return {"statistic": 0.0, "dof": max(cells - 1, 0), "p_value": 1.0, "zero_probability_hits": hits,
                "cells": cells}
    stat = float(((obs - expected) ** 2 / expected).sum())
    return {"statistic": stat, "dof": cells - 1, "p_value": float(_sp.chdtrc(cells - 1, stat)),
            "zero_probability_hits": hits, "cells": cells}
