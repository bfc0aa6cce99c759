"""Tests of the exact engine ``mdm_exact.sampler.exact`` (STATEMENTS.md §1.7, §2, §4.C as reconstructed).

Kinds: brute force over all instances vs the forward DP; Fraction oracle; closed forms
(one step = product of marginals, one position per step = q); Lemma B.2 and B.3 (Feng et al.
2025, arXiv:2502.09622v1) as properties on random languages; kernel parity; a calibrated
chi-square test against a direct simulation of the sampler built on ``schedules.draw_steps``.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from mdm_exact.sampler import exact as E
from mdm_exact.sampler import metrics as M
from mdm_exact.sampler._kernels_exact import _forward_step
from mdm_exact.languages import HMM, NGram, all_sequences
from mdm_exact.sampler.schedules import FixedSizes, LeftToRight, RandomOrder, ScheduleSteps, draw_steps, schedule
from mdm_exact.testing import strategies
from mdm_exact.testing.languages import copy_chain, random_language
from mdm_exact.testing.oracle import reference_instance_kl, reference_output_law
from mdm_exact.testing.rational import exact_output_law_rational, rational_joint


# ---------------------------------------------------------------------------- languages
LANGS = {
    "bigram-v2": random_language(1),
    "bigram-v3-sparse": random_language(2, V=3, zero_frac=0.4),
    "trigram-v2": random_language(3, order=3),
    "hmm-v2-sparse": random_language(4, kind="hmm", zero_frac=0.3),
    "copy-v2": copy_chain(2, stay=1.0),  # x_1 uniform, then x_{k+1} = x_k: TC = (L - 1) log V
}

RULES = {
    "linear-1": schedule("linear", 1),
    "linear-2": schedule("linear", 2),
    "cosine-3": schedule("cosine", 3),
    "probs-zero-step": ScheduleSteps((0.5, 0.0, 0.5)),
    "fixed-2-1-1": FixedSizes((2, 1, 1)),
    "fixed-0-3-1": FixedSizes((0, 3, 1)),
    "random-order": RandomOrder(),
    "left-to-right": LeftToRight(),
}


def assert_same_law(a, b):
    """Log laws agree: identical -inf pattern, probabilities to 1e-12 relative."""
    assert_array_equal(np.isneginf(a), np.isneginf(b))
    fin = np.isfinite(a)
    assert_allclose(np.exp(a[fin]), np.exp(b[fin]), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------- brute force
@pytest.mark.parametrize("lang_name", list(LANGS))
@pytest.mark.parametrize("rule_name", list(RULES))
def test_law_matches_brute_force_over_instances(lang_name, rule_name):
    """DP == sum over all N^L instances of Pr(tau) p_tau(x) (Definition B.1), L = 4."""
    lang, rule = LANGS[lang_name], RULES[rule_name]
    fast = E.exact_output_law(lang, 4, rule)
    assert_same_law(fast, reference_output_law(lang, 4, rule))
    assert abs(np.exp(fast).sum() - 1.0) < 1e-12


@pytest.mark.parametrize("rule", [schedule("linear", 3), FixedSizes((2, 2, 1))], ids=["linear-3", "fixed"])
def test_law_matches_brute_force_L5_hmm(rule):
    lang = random_language(11, kind="hmm", V=3, zero_frac=0.2)
    assert_same_law(E.exact_output_law(lang, 5, rule), reference_output_law(lang, 5, rule))


def test_kernel_matches_python_reference():
    """Numba forward step == plain-Python reference, every step, including fixed sizes."""
    lang = LANGS["bigram-v3-sparse"]
    for rule in (schedule("cosine", 3), FixedSizes((1, 2, 1))):
        a = E.exact_output_law(lang, 4, rule)
        b = E.exact_output_law(lang, 4, rule, _use_kernel=False)
        assert_same_law(a, b)


@numba.njit(parallel=True, cache=True)
def _thread_ids(n):
    out = np.empty(n, dtype=np.int64)
    for i in numba.prange(n):
        out[i] = numba.get_thread_id()
    return out


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2 or numba.config.DISABLE_JIT,
                    reason="needs a Numba threading layer with at least 2 threads (one core, or NUMBA_DISABLE_JIT=1)")
def test_thread_count_does_not_change_result():
    """Fixed chunks reduced in a fixed order: bitwise identical with 1 and 2 threads; a prange
    probe under the same setting shows that 2 threads really ran (else the test would be vacuous)."""
    lang = LANGS["trigram-v2"]
    V, L = 2, 7
    log_Q = E.log_joint_table(lang, L)
    cond = E.conditional_table(log_Q)
    strides = (V + 1) ** np.arange(L - 1, -1, -1, dtype=np.int64)
    g = np.random.default_rng(0).random((V + 1) ** L)
    outs = []
    n0 = numba.get_num_threads()
    try:
        for nt in (1, 2):
            numba.set_num_threads(nt)
            assert np.unique(_thread_ids(1024)).size == nt
            buf = np.zeros((E.N_CHUNKS, g.size))
            _forward_step(g, L, V, strides, cond, np.full(L, 0.3), -1, 1.0, E._tail_size(V, L), buf)
            outs.append(buf.sum(axis=0))
    finally:
        numba.set_num_threads(n0)
    assert_array_equal(outs[0], outs[1])


# ---------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("lang_name", list(LANGS))
def test_one_step_is_product_of_marginals(lang_name):
    """N = 1: every position from its marginal, p = prod_i q_i and KL(q || p) = TC(q)."""
    lang = LANGS[lang_name]
    V, L = lang.vocab_size, 5
    log_p = E.exact_output_law(lang, L, schedule("linear", 1))
    log_q = lang.log_prob(all_sequences(V, L))
    marg = np.exp(log_q).reshape((V,) * L)
    prod = np.ones((V,) * L)
    for i in range(L):
        mi = marg.sum(axis=tuple(k for k in range(L) if k != i))
        shape = [1] * L
        shape[i] = V
        prod = prod * mi.reshape(shape)
    with np.errstate(divide="ignore"):
        assert_same_law(log_p, np.log(prod.ravel()))
    res = E.exact_metrics(lang, L, schedule("linear", 1))
    assert res["kl_data_model"] == pytest.approx(M.total_correlation(log_q, V, L), rel=1e-12, abs=1e-13)
    # with one step the Lemma B.2 bound is tight: a single instance
    assert res["instance_kl_total"] == pytest.approx(res["kl_data_model"], rel=1e-12, abs=1e-13)


@pytest.mark.parametrize("lang_name", list(LANGS))
@pytest.mark.parametrize("rule", [RandomOrder(), LeftToRight(), FixedSizes((0, 1, 1, 1, 1, 1))],
                         ids=["random-order", "left-to-right", "fixed-ones"])
def test_one_position_per_step_gives_q(lang_name, rule):
    """One token per step in any order: the chain rule makes p = q; KL = 0, SER = 0."""
    lang = LANGS[lang_name]
    V, L = lang.vocab_size, 5
    log_p = E.exact_output_law(lang, L, rule)
    assert_same_law(log_p, lang.log_prob(all_sequences(V, L)))
    res = E.exact_metrics(lang, L, rule)
    assert res["ser"] == 0.0
    assert abs(res["kl_data_model"]) < 1e-13
    assert abs(res["instance_kl_total"]) < 1e-13
    assert_allclose(res["tc_per_step"], 0.0, atol=1e-13)


IID = {
    "iid-v3": NGram(2, np.array([0.2, 0.5, 0.3]), np.tile([0.2, 0.5, 0.3], (3, 1))),
    "iid-v4-zeros": NGram(2, np.array([0.5, 0.0, 0.3, 0.2]), np.tile([0.5, 0.0, 0.3, 0.2], (4, 1))),
    "iid-hmm-v2": HMM(np.array([0.4, 0.6]), np.array([[0.4, 0.6], [0.4, 0.6]]), np.array([[0.9, 0.1], [0.25, 0.75]])),
}


@pytest.mark.parametrize("lang_name", list(IID))
@pytest.mark.parametrize("rule_name", list(RULES))
def test_iid_language_has_zero_error_for_every_rule(lang_name, rule_name):
    """i.i.d. language (every conditional equals the marginal; the HMM's states are i.i.d. too):
    p_tau = q for every instance, so KL(q||p) = E_tau KL(q||p_tau) = SER = 0 and p = q, for every
    step rule (STATEMENTS.md §4.C, Lemma B.2 with all per-step terms 0). Exact engine and the
    brute-force oracle, to 1e-14 absolute."""
    lang, rule = IID[lang_name], RULES[rule_name]
    V, L = lang.vocab_size, 4
    log_q = lang.log_prob(all_sequences(V, L))
    res = E.exact_metrics(lang, L, rule)
    assert res["ser"] == pytest.approx(0.0, abs=1e-14)
    assert res["kl_data_model"] == pytest.approx(0.0, abs=1e-14)
    assert res["instance_kl_total"] == pytest.approx(0.0, abs=1e-14)
    assert_allclose(res["instance_kl_per_step"], 0.0, atol=1e-14)
    assert_same_law(E.exact_output_law(lang, L, rule), log_q)
    assert_same_law(reference_output_law(lang, L, rule), log_q)
    total, per_step = reference_instance_kl(lang, L, rule)
    assert total == pytest.approx(0.0, abs=1e-14)
    assert_allclose(per_step, 0.0, atol=1e-14)


def test_copy_chain_two_steps_closed_form():
    """Copy chain V=2, L=2, N=1: p uniform on {0,1}^2, SER = 1/2, KL(q||p) = log 2."""
    res = E.exact_metrics(copy_chain(2, stay=1.0), 2, schedule("linear", 1))
    assert res["ser"] == pytest.approx(0.5, rel=1e-15)
    assert res["kl_data_model"] == pytest.approx(math.log(2), rel=1e-14)
    assert res["kl_model_data"] is None  # p charges sequences with q = 0
    assert res["gen_ppl"] == pytest.approx(math.sqrt(2), rel=1e-14)


# ---------------------------------------------------------------------------- Fraction oracle
def _rational_bigram():
    init = [Fraction(1, 3), Fraction(2, 3)]
    cond = [[Fraction(1, 4), Fraction(3, 4)], [Fraction(0), Fraction(1)]]
    return init, cond


@pytest.mark.parametrize(
    "rule,probs",
    [(schedule("linear", 2), [Fraction(1, 2)] * 2), (ScheduleSteps((0.25, 0.25, 0.5)), [Fraction(1, 4), Fraction(1, 4), Fraction(1, 2)]),
     (FixedSizes((2, 1)), None), (RandomOrder(), None), (LeftToRight(), None)],
    ids=["linear-2", "probs-3", "fixed", "random-order", "left-to-right"],
)
def test_float_law_matches_fraction_oracle(rule, probs):
    init, cond = _rational_bigram()
    L, V = 3, 2
    joint = []
    for x in itertools.product(range(V), repeat=L):
        w = init[x[0]]
        for a, b in zip(x, x[1:]):
            w *= cond[a][b]
        joint.append(w)
    exact = exact_output_law_rational(joint, V, L, rule, step_probs=probs)
    assert sum(exact) == 1
    lang = NGram(2, [float(v) for v in init], [[float(v) for v in row] for row in cond])
    fl = E.exact_output_law(lang, L, rule)
    ex = np.array([float(v) for v in exact])
    with np.errstate(divide="ignore"):
        assert_same_law(fl, np.log(ex))
    assert_array_equal(ex == 0, np.isneginf(fl))


@pytest.mark.parametrize("lang_name", ["bigram-v2", "hmm-v2-sparse", "trigram-v2", "copy-v2"])
@pytest.mark.parametrize("rule_name", ["linear-2", "fixed-2-1-1", "probs-zero-step"])
def test_float_law_matches_fraction_oracle_random_languages(lang_name, rule_name):
    """The float DP agrees with exact rational arithmetic on the same (binary-rational) parameters."""
    lang, rule = LANGS[lang_name], RULES[rule_name]
    if isinstance(rule, FixedSizes):
        rule = FixedSizes((2, 1))
    joint = rational_joint(lang, 3)
    assert sum(joint) == 1
    with np.errstate(divide="ignore"):
        assert_same_law(lang.log_prob(all_sequences(2, 3)), np.log(np.array([float(v) for v in joint])))
    exact = np.array([float(v) for v in exact_output_law_rational(joint, 2, 3, rule)])
    with np.errstate(divide="ignore"):
        assert_same_law(E.exact_output_law(lang, 3, rule), np.log(exact))


@pytest.mark.parametrize("rule", [RandomOrder(), LeftToRight(), FixedSizes((1, 0, 1, 1))], ids=["ro", "ltr", "fixed-ones"])
def test_one_position_per_step_is_exactly_q_in_fractions(rule):
    """Chain rule, exactly: one token per step reproduces q with zero rounding."""
    joint = rational_joint(LANGS["hmm-v2-sparse"], 3)
    assert exact_output_law_rational(joint, 2, 3, rule) == joint


def test_one_step_is_exactly_product_of_marginals_in_fractions():
    joint = rational_joint(LANGS["trigram-v2"], 3)
    seqs = list(itertools.product(range(2), repeat=3))
    marg = [[sum((w for x, w in zip(seqs, joint) if x[i] == v), Fraction(0)) for v in range(2)] for i in range(3)]
    expected = [marg[0][x[0]] * marg[1][x[1]] * marg[2][x[2]] for x in seqs]
    assert exact_output_law_rational(joint, 2, 3, ScheduleSteps((1.0,))) == expected


# ---------------------------------------------------------------------------- Lemma B.2 / B.3
@pytest.mark.parametrize("lang_name", ["bigram-v2", "hmm-v2-sparse", "copy-v2", "bigram-v3-sparse"])
@pytest.mark.parametrize("rule_name", ["linear-2", "cosine-3", "fixed-2-1-1", "probs-zero-step"])
def test_instance_kl_and_per_step_match_brute_force(lang_name, rule_name):
    """E_tau KL(q||p_tau) (Lemma B.2 RHS) and its Lemma B.3 per-step split, vs all instances."""
    lang, rule = LANGS[lang_name], RULES[rule_name]
    t = E.instance_kl_terms(lang, 4, rule)
    total, per_step = reference_instance_kl(lang, 4, rule)
    assert t["instance_kl_total"] == pytest.approx(total, rel=1e-12, abs=1e-13)
    assert_allclose(t["instance_kl_per_step"], per_step, rtol=1e-12, atol=1e-13)
    assert_allclose(t["token_kl_per_step"] + t["tc_per_step"], t["instance_kl_per_step"], rtol=1e-12, atol=1e-14)
    assert np.all(t["tc_per_step"] > -1e-13)
    res = E.exact_metrics(lang, 4, rule)
    assert res["kl_data_model"] <= res["instance_kl_total"] + 1e-13  # Lemma B.2


@settings(max_examples=25)
@given(lang=strategies.languages(), data=st.data(), L=st.integers(2, 4))
def test_properties_on_random_languages(lang, data, L):
    """Random languages and rules: DP == brute force; normalised; SER, KLs >= 0; Lemma B.2 holds;
    Lemma B.3 split sums to the brute-force E_tau KL."""
    rule = data.draw(strategies.step_rules(L))
    log_p = E.exact_output_law(lang, L, rule)
    assert abs(np.exp(log_p).sum() - 1.0) < 1e-12
    assert_same_law(log_p, reference_output_law(lang, L, rule))
    res = E.exact_metrics(lang, L, rule)
    assert 0.0 <= res["ser"] <= 1.0
    assert res["kl_data_model"] >= -1e-13
    assert res["kl_data_model"] <= res["instance_kl_total"] + 1e-12  # Lemma B.2
    total, per_step = reference_instance_kl(lang, L, rule)
    assert res["instance_kl_total"] == pytest.approx(total, rel=1e-12, abs=1e-13)
    assert_allclose(res["instance_kl_per_step"], per_step, rtol=1e-12, atol=1e-13)
    # perfect model: SER > 0 only if some step reveals >= 2 positions
    if isinstance(rule, (RandomOrder, LeftToRight)):
        assert res["ser"] == 0.0


# ---------------------------------------------------------------------------- Monte Carlo
def _simulate(lang, L, rule, n, rng):
    """Direct simulation of the sampler: draw_steps, then draw each step from the conditionals."""
    V = lang.vocab_size
    steps = draw_steps(rule, n, L, rng=rng)  # (n, L)
    x = np.zeros((n, L), dtype=np.int64)
    u = rng.random((n, L))  # (n, L)
    for k in range(rule.num_steps(L)):
        cm = lang.conditional_marginals(x, steps < k)  # (n, L, V)
        cdf = np.cumsum(cm, axis=2)
        draw = np.minimum((u[:, :, None] >= cdf).sum(axis=2), V - 1)  # (n, L)
        x = np.where(steps == k, draw, x)
    return x


@pytest.mark.parametrize("rule", [schedule("cosine", 2), FixedSizes((2, 2))], ids=["cosine-2", "fixed-2-2"])
def test_chi_square_against_simulation(rule):
    """Simulated samples fit the exact pmf (chi-square, false-fail rate 1e-6); a law with 1% of its
    mass moved between two cells would fail with this n (checked below on the same samples)."""
    lang = LANGS["bigram-v2"]
    L, n = 4, 200_000
    p = np.exp(E.exact_output_law(lang, L, rule))
    x = _simulate(lang, L, rule, n, np.random.default_rng(12345))
    counts = np.bincount(x @ (2 ** np.arange(L - 1, -1, -1)), minlength=2**L)
    assert stats.chisquare(counts, n * p).pvalue > 1e-6
    wrong = p.copy()
    i, j = np.argmax(p), np.argmin(p)
    wrong[i] -= 0.01
    wrong[j] += 0.01
    assert stats.chisquare(counts, n * wrong).pvalue < 1e-6


# ---------------------------------------------------------------------------- errors
def test_refuses_sizes_beyond_limits():
    lang = random_language(0, V=3)
    with pytest.raises(ValueError, match="MAX_STATES"):
        E.exact_output_law(lang, 16, schedule("linear", 2))
    with pytest.raises(ValueError, match="limit"):
        E.exact_output_law(lang, 12, schedule("linear", 12), max_work=1e6)
    with pytest.raises(ValueError, match="sum to"):
        E.exact_output_law(lang, 4, FixedSizes((1, 1)))


# ---------------------------------------------------------------------------- larger L
def test_invariants_at_larger_length():
    """L = 9 (beyond brute force): normalised to 1e-12, Lemma B.2, and random order gives q."""
    lang = LANGS["hmm-v2-sparse"]
    L = 9
    res = E.exact_metrics(lang, L, schedule("cosine", 4))
    assert res["kl_data_model"] <= res["instance_kl_total"] + 1e-12
    assert sum(res["instance_kl_per_step"]) == pytest.approx(res["instance_kl_total"], rel=1e-12)
    log_p = E.exact_output_law(lang, L, schedule("linear", 3))
    assert abs(np.exp(log_p).sum() - 1.0) < 1e-12
    assert_same_law(E.exact_output_law(lang, L, RandomOrder()), lang.log_prob(all_sequences(2, L)))


@pytest.mark.slow
@pytest.mark.parametrize("rule", [schedule("cosine", 3), FixedSizes((3, 2, 1))], ids=["cosine-3", "fixed"])
def test_law_matches_brute_force_L6_trigram(rule):
    lang = LANGS["trigram-v2"]
    assert_same_law(E.exact_output_law(lang, 6, rule), reference_output_law(lang, 6, rule))
    total, per_step = reference_instance_kl(lang, 6, rule)
    assert_allclose(E.instance_kl_terms(lang, 6, rule)["instance_kl_per_step"], per_step, rtol=1e-12, atol=1e-13)
