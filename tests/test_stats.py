"""Confidence intervals of ``mdm_exact.stats`` against SciPy and against their definitions.

Clopper & Pearson (1934): the exact interval's endpoints solve P(X >= k | p_lo) = alpha/2 and
P(X <= k | p_hi) = alpha/2 for X ~ Bin(n, p), so its coverage is at least 1 - alpha for every p
(checked exactly by summing the binomial law). Normal intervals: z = Phi^{-1}(1 - alpha/2) and
mean +- z s / sqrt(n).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mdm_exact.stats import clopper_pearson, mean_ci, normal_quantile

CASES = [(0, 1), (1, 1), (0, 10), (10, 10), (3, 10), (1, 50), (49, 50), (250, 1000), (7, 100000), (99999, 100000)]


@pytest.mark.parametrize("k, n", CASES)
@pytest.mark.parametrize("ci_alpha", [0.05, 1e-3, 1e-6])
def test_clopper_pearson_matches_scipy_binomtest(k, n, ci_alpha):
    """Same interval as ``scipy.stats.binomtest(k, n).proportion_ci(method='exact')``.

    SciPy solves the tail equations with ``brentq`` (absolute ``xtol = 2e-12``) and receives
    ``1 - ci_alpha`` (so ``ci_alpha`` itself is rounded); ``mdm_exact.stats`` uses the beta
    quantiles directly. The two therefore agree to an absolute 1e-11, not relatively; the
    defining equations are checked to much finer precision below."""
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=1 - ci_alpha, method="exact")
    lo, hi = clopper_pearson(k, n, ci_alpha=ci_alpha)
    assert lo == pytest.approx(ref.low, rel=0, abs=1e-11)
    assert hi == pytest.approx(ref.high, rel=0, abs=1e-11)


@pytest.mark.parametrize("k, n", CASES)
@pytest.mark.parametrize("ci_alpha", [0.05, 1e-6])
def test_clopper_pearson_endpoints_solve_their_equations(k, n, ci_alpha):
    """The endpoints are the roots of the defining tail equations to 1e-10 relative in p (about the
    joint precision of SciPy's beta quantiles and binomial tails at miscoverage 1e-6):
    P(X >= k | p) - alpha/2 changes sign between lo (1 - 1e-10) and lo (1 + 1e-10), and
    P(X <= k | p) - alpha/2 between hi (1 - 1e-10) and hi (1 + 1e-10); conventions lo = 0 for
    k = 0 and hi = 1 for k = n."""
    lo, hi = clopper_pearson(k, n, ci_alpha=ci_alpha)
    a, d = ci_alpha / 2, 1e-10
    assert 0.0 <= lo < hi <= 1.0
    if k == 0:
        assert lo == 0.0
    else:  # P(X >= k | p) increases with p
        assert stats.binom.sf(k - 1, n, lo * (1 - d)) <= a <= stats.binom.sf(k - 1, n, min(1.0, lo * (1 + d)))
    if k == n:
        assert hi == 1.0
    else:  # P(X <= k | p) decreases with p
        assert stats.binom.cdf(k, n, hi * (1 - d)) >= a >= stats.binom.cdf(k, n, min(1.0, hi * (1 + d)))


@pytest.mark.parametrize("n", [5, 20, 100])
@pytest.mark.parametrize("p", [0.01, 0.3, 0.5, 0.93])
def test_clopper_pearson_coverage_is_exactly_at_least_nominal(n, p):
    """Coverage sum_k Bin(k; n, p) [lo_k <= p <= hi_k] >= 1 - alpha, computed exactly (no sampling)."""
    ci_alpha = 0.05
    pmf = stats.binom.pmf(np.arange(n + 1), n, p)
    covered = np.array([lo <= p <= hi for lo, hi in (clopper_pearson(k, n, ci_alpha=ci_alpha) for k in range(n + 1))])
    assert pmf[covered].sum() >= 1 - ci_alpha - 1e-12


@pytest.mark.parametrize("ci_alpha, z", [(0.05, 1.959963984540054), (0.01, 2.5758293035489004), (0.3173105078629141, 1.0)])
def test_normal_quantile(ci_alpha, z):
    """z with P(|Z| > z) = ci_alpha: against tabulated values and scipy.stats.norm, rel 1e-12."""
    got = normal_quantile(ci_alpha)
    assert got == pytest.approx(z, rel=1e-12)
    assert got == pytest.approx(stats.norm.ppf(1 - ci_alpha / 2), rel=1e-12)
    assert 2 * stats.norm.sf(got) == pytest.approx(ci_alpha, rel=1e-12)


@pytest.mark.parametrize("ci_alpha", [0.05, 1e-3, 1e-9])
def test_normal_quantile_small_alpha(ci_alpha):
    """Far tails (isf, no 1 - alpha/2 cancellation): 2 P(Z > z) = ci_alpha to 1e-12."""
    assert 2 * stats.norm.sf(normal_quantile(ci_alpha)) == pytest.approx(ci_alpha, rel=1e-12)


@pytest.mark.parametrize("ci_alpha", [0.05, 1e-4])
def test_mean_ci_matches_scipy_normal_interval(ci_alpha):
    """mean +- z s / sqrt(n) equals scipy.stats.norm.interval(1 - ci_alpha, loc=mean, scale=sem), rel 1e-12."""
    v = np.random.default_rng(3).gamma(2.0, 1.5, size=137)  # (137,)
    m, lo, hi = mean_ci(v, ci_alpha=ci_alpha)
    assert m == pytest.approx(float(np.mean(v)), rel=1e-15)
    ref_lo, ref_hi = stats.norm.interval(1 - ci_alpha, loc=np.mean(v), scale=stats.sem(v))
    assert lo == pytest.approx(ref_lo, rel=1e-12)
    assert hi == pytest.approx(ref_hi, rel=1e-12)
    half = normal_quantile(ci_alpha) * math.sqrt(np.var(v, ddof=1) / v.size)
    assert hi - lo == pytest.approx(2 * half, rel=1e-12)


def test_mean_ci_degenerate_inputs():
    assert mean_ci([2.5]) == (2.5, -np.inf, np.inf)  # one value: no interval
    m, lo, hi = mean_ci([1.0, np.inf])
    assert m == np.inf and (lo, hi) == (-np.inf, np.inf)
    assert mean_ci([4.0, 4.0, 4.0]) == (4.0, 4.0, 4.0)  # zero spread
    with pytest.raises(ValueError, match="NaN"):
        mean_ci([1.0, np.nan])
    with pytest.raises(ValueError, match="no values"):
        mean_ci([])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: clopper_pearson(3, 0), "n >= 1"),
        (lambda: clopper_pearson(11, 10), "successes <= n"),
        (lambda: clopper_pearson(-1, 10), "successes <= n"),
        (lambda: clopper_pearson(3, 10, ci_alpha=0.0), "ci_alpha"),
        (lambda: clopper_pearson(3, 10, ci_alpha=1.0), "ci_alpha"),
        (lambda: normal_quantile(1.5), "ci_alpha"),
        (lambda: mean_ci([1.0, 2.0], ci_alpha=-0.1), "ci_alpha"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
