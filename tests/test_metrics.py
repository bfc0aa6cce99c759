"""Tests of ``mdm_exact.sampler.metrics`` (STATEMENTS.md §2, as reconstructed): closed forms and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import rel_entr

from mdm_exact.sampler import metrics as M


def log(a):
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(a, dtype=float))


@pytest.mark.parametrize(
    "p,q,expected",
    [
        ([0.5, 0.5], [0.5, 0.5], 0.0),
        ([1.0, 0.0], [0.5, 0.5], math.log(2)),
        ([0.5, 0.5], [0.25, 0.75], 0.5 * math.log(2) + 0.5 * math.log(2 / 3)),
        ([0.0, 1.0], [0.0, 1.0], 0.0),
        ([0.5, 0.5], [1.0, 0.0], math.inf),
    ],
)
def test_kl_closed_forms(p, q, expected):
    assert M.kl_divergence(log(p), log(q)) == pytest.approx(expected, rel=1e-14, abs=1e-16)


@settings(max_examples=40)
@given(st.integers(0, 2**32 - 1), st.integers(2, 30))
def test_kl_equals_rel_entr_and_is_nonnegative(seed, n):
    """Gibbs' inequality; agreement with scipy.special.rel_entr on probabilities."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(n))
    q = rng.dirichlet(np.ones(n))
    p[rng.random(n) < 0.3] = 0.0
    if p.sum() == 0:
        p[0] = 1.0
    p /= p.sum()
    kl = M.kl_divergence(log(p), log(q))
    assert kl >= 0.0
    assert kl == pytest.approx(rel_entr(p, q).sum(), rel=1e-12, abs=1e-15)


def test_entropy_and_ser():
    V, L = 3, 4
    u = np.full(V**L, -L * math.log(V))
    assert M.entropy(u) == pytest.approx(L * math.log(V), rel=1e-14)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    q = np.array([0.5, 0.0, 0.5, 0.0])
    assert M.sequence_error_rate(log(p), log(q)) == pytest.approx(0.6, rel=1e-15)
    assert M.sequence_error_rate(log(q), log(q)) == 0.0


def test_generative_perplexity_forms():
    """p = q: token-weighted gen. perplexity is exp(H(q)/L); per-sequence mean by hand."""
    L = 2
    q = np.array([0.1, 0.2, 0.3, 0.4])
    assert M.generative_perplexity(log(q), log(q), L) == pytest.approx(math.exp(M.entropy(log(q)) / L), rel=1e-14)
    p = np.array([0.5, 0.25, 0.25, 0.0])
    q2 = np.array([0.5, 0.0, 0.25, 0.25])  # p's second sequence is outside supp q
    w = np.array([0.5, 0.25]) / 0.75
    lq = np.log([0.5, 0.25])
    assert M.generative_perplexity(log(p), log(q2), L) == pytest.approx(math.exp(-(w * lq).sum() / L), rel=1e-14)
    assert M.generative_perplexity_seq_mean(log(p), log(q2), L) == pytest.approx((w * np.exp(-lq / L)).sum(), rel=1e-14)
    with pytest.raises(ValueError, match="no mass on supp q"):
        M.generative_perplexity(log([1.0, 0.0]), log([0.0, 1.0]), 1)


def test_log_ter_gap_is_kl_over_L():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    q = np.array([0.25, 0.25, 0.25, 0.25])
    assert M.log_ter_gap(log(p), log(q), 2) == pytest.approx(rel_entr(q, p).sum() / 2, rel=1e-14)


@pytest.mark.parametrize("V,L", [(2, 3), (3, 4)])
def test_total_correlation_closed_forms(V, L):
    """iid uniform: TC = 0; copy chain (all positions equal, uniform): TC = (L - 1) log V."""
    iid = np.full(V**L, -L * math.log(V))
    assert abs(M.total_correlation(iid, V, L)) < 1e-13
    copy = np.zeros((V,) * L)
    for v in range(V):
        copy[(v,) * L] = 1.0 / V
    assert M.total_correlation(log(copy.ravel()), V, L) == pytest.approx((L - 1) * math.log(V), rel=1e-13)


@pytest.mark.parametrize(
    "bad,match",
    [([0.5, 0.4], "sums to"), ([0.5, float("nan")], "NaN"), ([], "non-empty")],
)
def test_bad_input_is_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        M.entropy(log(bad))


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="same number"):
        M.kl_divergence(log([0.5, 0.5]), log([1.0, 0.0, 0.0]))


# ----------------------------------------------------------------------------- mdm_exact.stats
@pytest.mark.parametrize("k,n", [(0, 1), (0, 10), (3, 10), (10, 10), (1, 1000), (517, 1000), (999, 1000), (5, 123457)])
@pytest.mark.parametrize("ci_alpha", [0.05, 1e-3, 1e-6])
def test_clopper_pearson_solves_its_defining_equations(k, n, ci_alpha):
    """Clopper-Pearson (1934): lo solves P(X >= k | lo) = ci_alpha/2 and hi solves
    P(X <= k | hi) = ci_alpha/2 (scipy's binomial tails, to 1e-10); scipy's root-finding
    ``binomtest(...).proportion_ci(method="exact")`` agrees to its own tolerance."""
    from scipy.stats import binom, binomtest

    from mdm_exact.stats import clopper_pearson

    lo, hi = clopper_pearson(k, n, ci_alpha)
    assert (lo == 0.0) == (k == 0) and (hi == 1.0) == (k == n) and lo < hi
    if k > 0:
        assert binom.sf(k - 1, n, lo) == pytest.approx(ci_alpha / 2, rel=1e-10)
    if k < n:
        assert binom.cdf(k, n, hi) == pytest.approx(ci_alpha / 2, rel=1e-10)
    ref = binomtest(k, n).proportion_ci(confidence_level=1 - ci_alpha, method="exact")
    np.testing.assert_allclose([lo, hi], [ref.low, ref.high], rtol=1e-3, atol=1e-12)


@pytest.mark.parametrize("ci_alpha", [0.05, 1e-3, 1e-6])
def test_mean_ci_is_the_normal_interval(ci_alpha):
    """mean +- z SE with SE = std(ddof=1)/sqrt(n) and 2 P(Z > z) = ci_alpha."""
    from scipy import stats as S

    from mdm_exact.stats import mean_ci, normal_quantile

    z = normal_quantile(ci_alpha)
    assert 2 * S.norm.sf(z) == pytest.approx(ci_alpha, rel=1e-12)
    v = np.random.default_rng(3).exponential(size=1000)  # (1000,)
    m, lo, hi = mean_ci(v, ci_alpha)
    se = S.sem(v)
    np.testing.assert_allclose([m, lo, hi], [v.mean(), v.mean() - z * se, v.mean() + z * se], rtol=1e-12, atol=0)
    if ci_alpha == 0.05:
        np.testing.assert_allclose([lo, hi], S.norm.interval(0.95, loc=v.mean(), scale=se), rtol=1e-12, atol=0)


def test_stats_edge_cases_and_errors():
    from mdm_exact.stats import clopper_pearson, mean_ci, normal_quantile

    assert mean_ci([2.0], 0.05) == (2.0, -math.inf, math.inf)  # one value: no interval
    assert mean_ci([1.0, math.inf], 0.05)[1:] == (-math.inf, math.inf)
    with pytest.raises(ValueError, match="NaN"):
        mean_ci([1.0, math.nan])
    with pytest.raises(ValueError, match="no values"):
        mean_ci([])
    with pytest.raises(ValueError, match="ci_alpha"):
        clopper_pearson(1, 2, 1.5)
    with pytest.raises(ValueError, match="successes"):
        clopper_pearson(3, 2)
    with pytest.raises(ValueError, match="ci_alpha"):
        normal_quantile(0.0)
