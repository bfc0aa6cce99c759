"""Tests of the policy primitives (issue 16 semantics): scores, tolerant greedy ties, counts,
threshold / EB sets, blocks, tempered token laws, and every bad option combination."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from mdm_exact.sampler import policies as P
from mdm_exact.sampler.schedules import FixedSizes, RandomOrder, balanced_sizes, schedule


# ----------------------------------------------------------------------------- ties
def test_greedy_noise_never_changes_the_choice():
    """Scores equal up to 1e-12 noise: the lowest index is picked first, in index order."""
    s = np.array([[0.5 + 3e-13, 0.5, 0.5 - 2e-13, 0.5 + 1e-12]])
    assert_array_equal(P.greedy_order(s, np.ones((1, 4), bool)), [[0, 1, 2, 3]])


def test_greedy_separated_scores_are_ordered():
    s = np.array([[0.5, 0.5 + 2e-9, 0.1, 0.9]])
    assert_array_equal(P.greedy_order(s, np.ones((1, 4), bool)), [[3, 1, 0, 2]])


def test_greedy_chain_of_near_ties_is_greedy_not_transitive():
    """Best is index 2; index 1 is within 1e-9 of it (index 0 is not) -> pick 1, then 2, then 0."""
    s = np.array([[0.5, 0.5 + 0.8e-9, 0.5 + 1.6e-9]])
    assert_array_equal(P.greedy_order(s, np.ones((1, 3), bool)), [[1, 2, 0]])


def test_greedy_respects_candidates_and_runs_out():
    s = np.array([[0.9, 0.1, 0.8], [0.2, 0.3, 0.4]])
    cand = np.array([[False, True, True], [False, False, False]])
    assert_array_equal(P.greedy_order(s, cand, 3), [[2, 1, -1], [-1, -1, -1]])


# ----------------------------------------------------------------------------- scores
def test_scores_closed_forms():
    c = np.array([[[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]]])  # (1, 2, 3)
    assert_allclose(P.position_scores("confidence", c), [[0.7, 1 / 3]], rtol=1e-15)
    assert_allclose(P.position_scores("margin", c), [[0.5, 0.0]], atol=1e-15)
    H0 = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    assert_allclose(P.position_scores("entropy", c), [[-H0, -math.log(3)]], rtol=1e-14)
    assert_allclose(P.position_scores("llada", c, tokens=np.array([[1, 2]])), [[0.2, 1 / 3]], rtol=1e-15)
    with pytest.raises(ValueError, match="drawn tokens"):
        P.position_scores("llada", c)


# ----------------------------------------------------------------------------- token laws
def test_token_law_temperatures():
    c = np.array([0.5, 0.3, 0.2, 0.0])
    assert_array_equal(P.token_law(c, 1.0), c)
    assert_array_equal(P.token_law(np.array([0.4, 0.4 + 1e-12, 0.2]), 0.0), [1.0, 0.0, 0.0])  # tie -> lowest id
    assert_array_equal(P.token_law(np.array([0.4, 0.4 + 2e-9, 0.2]), 0.0), [0.0, 1.0, 0.0])
    w = c[:3] ** 2
    assert_allclose(P.token_law(c, 0.5), np.append(w / w.sum(), 0.0), rtol=1e-14)
    w = np.sqrt(c[:3])
    assert_allclose(P.token_law(c, 2.0), np.append(w / w.sum(), 0.0), rtol=1e-14)
    assert P.token_law(c, 0.5)[3] == 0.0  # zero mass stays exactly zero


def test_draw_tokens_inverse_cdf_never_picks_zero_mass():
    law = np.array([[0.0, 0.5, 0.5, 0.0]] * 4)
    assert_array_equal(P.draw_tokens(law, np.array([0.0, 0.49, 0.5, 1.0 - 1e-17])), [1, 1, 2, 2])


def test_binomial_count_is_the_binomial_law():
    """Inverse CDF at a grid of uniforms reproduces the Binomial(12, 0.3) pmf (exact ranks)."""
    u = (np.arange(200_000) + 0.5) / 200_000
    m = P.binomial_count(12, 0.3, u)
    freq = np.bincount(m, minlength=13) / u.size
    assert_allclose(freq, stats.binom.pmf(np.arange(13), 12, 0.3), atol=1e-5)
    assert_allclose(P.binomial_pmf(12, 0.3), stats.binom.pmf(np.arange(13), 12, 0.3), rtol=1e-12)
    assert_array_equal(P.binomial_count(7, 1.0, np.array([0.0, 0.999])), [7, 7])
    assert_array_equal(P.binomial_count(7, 0.0, np.array([0.0, 0.999])), [0, 0])


# ----------------------------------------------------------------------------- counts and sets
def test_threshold_set_and_at_least_one():
    pol = P.make_policy("threshold:0.6", L=3)
    c = np.array([
        [[0.6 - 5e-10, 0.4 + 5e-10], [0.9, 0.1], [0.5, 0.5]],  # 0 within 1e-9 of g -> kept
        [[0.55, 0.45], [0.5, 0.5], [0.55, 0.45]],  # nobody passes: the single best (tie -> index 0)
    ])
    out = pol.adaptive_set(c, np.ones((2, 3), bool))
    assert_array_equal(out, [[True, True, False], [True, False, False]])


def test_eb_prefix():
    """Entropies (nats) a < b < c: sum - max of {a, b} = a; of {a, b, c} = a + b."""
    pol = P.make_policy("eb:0.4", L=3)
    ps = [0.95, 0.8, 0.6]
    c = np.array([[[p, 1 - p] for p in ps]])
    H = [-(p * math.log(p) + (1 - p) * math.log(1 - p)) for p in ps]
    assert H[0] <= 0.4 < H[0] + H[1]
    assert_array_equal(pol.adaptive_set(c, np.ones((1, 3), bool)), [[True, True, False]])
    pol0 = P.make_policy("eb:0", L=3)
    assert_array_equal(pol0.adaptive_set(c, np.ones((1, 3), bool)), [[True, False, False]])


def test_blocks_candidates_and_sizes():
    pol = P.make_policy("confidence", L=7, num_steps=6, block_length=3)
    # blocks [0,1,2] [3,4,5] [6]; 2 steps each; balanced: 3 -> (2, 1), 1 -> (1, 0)
    assert pol.sizes == (2, 1, 2, 1, 1, 0)
    rev = np.array([[True, True, True, False, True, False, False], [False] * 7])
    assert_array_equal(pol.candidates(rev), [[0, 0, 0, 1, 0, 1, 0], [1, 1, 1, 0, 0, 0, 0]])


def test_schedule_counts_reveal_probabilities():
    pol = P.make_policy("random", L=5, num_steps=4, schedule_name="cosine")
    rule = schedule("cosine", 4)
    assert_allclose([pol.reveal_probability(k) for k in range(4)], rule.reveal_conditional(), rtol=1e-12)


def test_policy_from_rule():
    assert P.policy_from_rule("random", RandomOrder(), 3).sizes == (1, 1, 1)
    assert P.policy_from_rule("margin", FixedSizes((2, 1)), 3).count == "sizes"
    assert P.make_policy("random", L=5, step_sizes=balanced_sizes(5, 2)).sizes == (3, 2)


def test_select_random_subset_size_and_tokens():
    rng = np.random.default_rng(0)
    pol = P.make_policy("random", L=6, step_sizes=(2, 4))
    c = np.full((3, 6, 2), 0.5)
    rev = np.zeros((3, 6), bool)
    reveal, tok = pol.select(c, rev, 0, u_tok=rng.random((3, 6)), u_order=rng.random((3, 6)))
    assert_array_equal(reveal.sum(axis=1), [2, 2, 2])
    assert set(np.unique(tok)) <= {0, 1}


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(policy="threshold:0.9", num_steps=4), "takes no count option"),
        (dict(policy="eb:0.1", step_sizes=(2, 2)), "takes no count option"),
        (dict(policy="threshold:0", ), "0 < g <= 1"),
        (dict(policy="threshold:1.5"), "0 < g <= 1"),
        (dict(policy="eb:-0.1"), "g >= 0"),
        (dict(policy="threshold"), "needs a number"),
        (dict(policy="threshold:abc"), "expected a number"),
        (dict(policy="confidence:0.5", num_steps=2), "takes no ':'"),
        (dict(policy="greedy", num_steps=2), "unknown policy"),
        (dict(policy="confidence"), "exactly one of"),
        (dict(policy="confidence", num_steps=2, step_sizes=(2, 2)), "exactly one of"),
        (dict(policy="confidence", num_steps=3, block_length=2), "must divide"),
        (dict(policy="confidence", step_sizes=(2, 2), block_length=2), "cannot be combined"),
        (dict(policy="confidence", step_sizes=(2, 1)), "sum to 3"),
        (dict(policy="confidence", num_steps=2, temperature=-1.0), "T >= 0"),
        (dict(policy="confidence", num_steps=2, schedule_name="zigzag"), "unknown schedule"),
    ],
)
def test_bad_combinations(kwargs, match):
    with pytest.raises(ValueError, match=match):
        P.make_policy(L=4, **kwargs)


def test_policy_from_options_cli_text():
    p = P.policy_from_options("margin", L=6, steps=3, step_sizes="1,2,3")
    assert p.count == "sizes" and p.sizes == (1, 2, 3)
    assert P.policy_from_options("entropy", L=6, steps=2, block_length=3).count == "block-sizes"
    assert P.policy_from_options("random", L=6, steps=2, schedule_name="cosine").label == "cosine"
    assert P.policy_from_options("threshold:0.9", L=6).count == "threshold"


@pytest.mark.parametrize("kwargs, match", [
    (dict(policy="confidence", rule="random-order"), "does not combine with --rule"),
    (dict(policy="confidence", steps=2, step_sizes="3,3,0"), "disagrees"),
    (dict(policy="confidence", step_sizes="3,x"), "comma-separated integers"),
    (dict(policy="confidence", step_sizes="3,3", schedule_name="cosine"), "does not combine with --step-sizes"),
    (dict(policy="confidence", steps=2, schedule_name="cosine", block_length=3), "does not combine with --block-length"),
    (dict(policy="threshold:0.5", steps=4), "takes no count option"),
])
def test_policy_from_options_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        P.policy_from_options(L=6, **kwargs)


@pytest.mark.parametrize("kwargs", [dict(policy="confidence", num_steps=3), dict(policy="llada", step_sizes=(2, 4), temperature=0.5),
                                    dict(policy="eb:0.25", block_length=2), dict(policy="margin", num_steps=3, block_length=2),
                                    dict(policy="random", num_steps=2, schedule_name="cosine")])
def test_policy_dict_round_trip(kwargs):
    import json

    p = P.make_policy(L=6, **kwargs)
    assert P.Policy.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(ValueError, match="missing key"):
        P.Policy.from_dict({"score": "confidence"})
