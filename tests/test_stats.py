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


# --------------------------------------------------------------------------- chi-square on an exact law
def test_sequence_counts_index_all_sequences_in_order():
    from mdm_exact.languages import all_sequences
    from mdm_exact.stats import sequence_counts

    V, L = 3, 4
    seqs = all_sequences(V, L)
    assert np.array_equal(sequence_counts(seqs, V), np.ones(V**L, dtype=np.int64))
    x = seqs[[5, 5, 80, 0]]
    c = sequence_counts(x, V)
    assert c[5] == 2 and c[80] == 1 and c[0] == 1 and c.sum() == 4
    with pytest.raises(ValueError, match=r"tokens in \[0, 3\)"):
        sequence_counts(np.array([[0, 3]]), V)
    with pytest.raises(ValueError, match="shape \\(n, L\\)"):
        sequence_counts(np.array([0, 1]), V)


def test_chi_square_law_pools_small_cells_and_matches_scipy():
    """Against scipy.stats.chisquare on the cells built by hand: support only, expected < 5 pooled."""
    from mdm_exact.stats import chi_square_law

    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(30, 0.3))
    p[[2, 7]] = 0.0
    p /= p.sum()
    counts = rng.multinomial(400, p)
    counts[2] = 3  # samples on an impossible outcome: counted apart, not a cell
    r = chi_square_law(counts, p)
    exp = p * (counts.sum() - 3)
    sup = p > 0
    big, small = sup & (exp >= 5), sup & (exp < 5)
    obs = np.append(counts[big], counts[small].sum())
    ex = np.append(exp[big], exp[small].sum())
    ref = stats.chisquare(obs, ex)
    assert r["zero_probability_hits"] == 3 and r["cells"] == obs.size and r["dof"] == obs.size - 1
    assert r["statistic"] == pytest.approx(ref.statistic, rel=1e-12)
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_chi_square_law_is_calibrated_and_has_power():
    """Under the law the p-values are uniform (KS, false-fail 1e-6); a law moved by 0.05 in total
    variation is rejected at 1e-6 with 20,000 samples (noncentrality n sum (q - p)^2 / p in the
    thousands)."""
    from mdm_exact.stats import chi_square_law

    rng = np.random.default_rng(11)
    p = rng.dirichlet(np.ones(12))
    pv = [chi_square_law(rng.multinomial(2000, p), p)["p_value"] for _ in range(1000)]
    assert stats.kstest(pv, "uniform").pvalue > 1e-6
    q = p.copy()
    q[np.argmax(q)] -= 0.05
    q[np.argmin(q)] += 0.05
    assert chi_square_law(rng.multinomial(20000, q), p)["p_value"] < 1e-6


def test_chi_square_law_edge_cases_and_bad_input():
    from mdm_exact.stats import chi_square_law

    r = chi_square_law(np.array([7, 0]), np.array([1.0, 0.0]))
    assert r == {"statistic": 0.0, "dof": 0, "p_value": 1.0, "zero_probability_hits": 0, "cells": 1}
    with pytest.raises(ValueError, match="differ in shape"):
        chi_square_law(np.ones(3), np.ones(4) / 4)
    with pytest.raises(ValueError, match="probability vector"):
        chi_square_law(np.ones(2), np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="probability vector"):
        chi_square_law(np.ones(2), np.array([np.nan, 1.0]))
