"""Step rules (STATEMENTS.md §1.5-1.7, as reconstructed)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from mdm_exact.sampler import schedules as sch
from mdm_exact.stats import clopper_pearson


@pytest.mark.parametrize("N", [1, 2, 7, 64])
def test_linear_schedule_is_uniform(N):
    assert_allclose(sch.schedule("linear", N).p, np.full(N, 1.0 / N), rtol=0, atol=1e-15)


@pytest.mark.parametrize("N", [1, 3, 8, 100])
def test_cosine_schedule_matches_alpha_differences(N):
    p = sch.schedule("cosine", N).p
    k = np.arange(1, N + 1)
    expect = np.cos(np.pi * (k - 1) / (2 * N)) - np.cos(np.pi * k / (2 * N))
    assert_allclose(p, expect, rtol=0, atol=1e-15)
    assert_allclose(p.sum(), 1.0, rtol=0, atol=1e-14)
    assert np.all(np.diff(p) >= 0)  # cosine reveals few tokens first, many last


def test_reveal_conditional_recovers_step_probabilities():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(9, 0.5))
    rule = sch.ScheduleSteps(tuple(p))
    r = rule.reveal_conditional()
    still = np.concatenate([[1.0], np.cumprod(1 - r)[:-1]])  # Pr(masked before step k)
    assert_allclose(still * r, p, rtol=0, atol=1e-12)
    assert r[-1] == 1.0


def test_draw_steps_schedule_frequencies_calibrated():
    """Step frequencies agree with p^(k): Clopper-Pearson per step, family-wise false-fail 1e-6."""
    rule = sch.schedule("cosine", 6)
    steps = sch.draw_steps(rule, 20000, 25, rng=1)
    n = steps.size
    for k, pk in enumerate(rule.p):
        lo, hi = clopper_pearson(int((steps == k).sum()), n, ci_alpha=1e-6 / 6)
        assert lo <= pk <= hi
        assert hi - lo < 0.01  # a 1% shift in any p^(k) would be caught


def test_draw_steps_fixed_sizes_and_orders():
    rule = sch.FixedSizes((3, 0, 2, 5))
    steps = sch.draw_steps(rule, 500, 10, rng=2)
    for k, s in enumerate(rule.sizes):
        assert np.all((steps == k).sum(axis=1) == s)
    # uniform subset: position 0 is in step 0 with probability 3/10 (chi-square over positions)
    counts = (steps == 0).sum(axis=0)
    assert stats.chisquare(counts).pvalue > 1e-6
    order = sch.draw_steps(sch.RandomOrder(), 300, 7, rng=3)
    assert np.all(np.sort(order, axis=1) == np.arange(7))
    ltr = sch.draw_steps(sch.LeftToRight(), 2, 5)
    assert np.array_equal(ltr, np.tile(np.arange(5), (2, 1)))


def test_draw_steps_never_picks_zero_probability_step():
    rule = sch.ScheduleSteps((0.5, 0.0, 0.5, 0.0))
    steps = sch.draw_steps(rule, 2000, 8, rng=4)
    assert set(np.unique(steps)) == {0, 2}


@pytest.mark.parametrize("N, L, rounded", [(64, 512, 64.0), (256, 512, 221.5), (2048, 512, 453.1), (1, 7, 1.0), (5, 3, None), (10, 40, None)])
def test_expected_nonempty_steps_closed_form(N, L, rounded):
    """Linear schedule (p^(k) = 1/N): E[number of non-empty steps] = N (1 - (1 - 1/N)^L), by
    linearity over steps (STATEMENTS.md §4.E); checked against SymPy's exact rational value to
    1e-12, and against the values quoted there (L = 512: 64.0, 221.5, 453.1)."""
    import sympy

    from mdm_exact.theory import symbolic as S

    exact = S.expected_nonempty_steps_uniform(N, L)
    assert exact == N * (1 - (1 - sympy.Rational(1, N)) ** L)
    value = sch.expected_nonempty_steps(sch.schedule("linear", N), L)
    assert value == pytest.approx(float(exact), rel=1e-12)
    if rounded is not None:
        assert round(value, 1) == rounded


def test_expected_nonempty_steps_general_schedule():
    """A schedule with rational step probabilities: sum_k (1 - (1 - p^(k))^L) exactly (SymPy) vs float, 1e-12."""
    from fractions import Fraction

    from mdm_exact.theory import symbolic as S

    probs = [Fraction(1, 8), Fraction(0), Fraction(3, 8), Fraction(1, 2)]
    rule = sch.ScheduleSteps(tuple(float(v) for v in probs))
    for L in (1, 2, 5, 33):
        exact = S.expected_nonempty_steps_schedule([str(v) for v in probs], L)
        assert sch.expected_nonempty_steps(rule, L) == pytest.approx(float(exact), rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(rule="linear"), "needs num_steps"),
        (dict(rule="nope", num_steps=3), "unknown step rule"),
        (dict(rule="alpha", alpha=[1.0, 0.6, 0.7, 0.0]), "non-increasing"),
        (dict(rule="alpha", alpha=[0.9, 0.0]), "alpha\\(0\\) = 1"),
        (dict(rule="probs", probs=[0.5, 0.6]), "sum to 1"),
        (dict(rule="probs", probs=[1.5, -0.5]), "non-negative"),
        (dict(rule="fixed", sizes=[1, -1]), "non-negative integers"),
    ],
)
def test_bad_rules_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sch.make_step_rule(**kwargs)


def test_fixed_sizes_must_match_length():
    with pytest.raises(ValueError, match="sum to 5"):
        sch.draw_steps(sch.FixedSizes((2, 3)), 1, 6)


def test_zero_steps_rejected():
    with pytest.raises(ValueError, match=">= 1"):
        sch.schedule("linear", 0)


def test_balanced_sizes():
    assert sch.balanced_sizes(10, 4) == (3, 3, 2, 2)
    assert sum(sch.balanced_sizes(512, 7)) == 512
