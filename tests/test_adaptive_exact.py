"""Tests of the exact engine under adaptive policies (``mdm_exact.sampler.adaptive_exact``).

Kinds: brute force (``mdm_exact.testing.policy_oracle``, an independent recursion over states)
vs the DP for every policy, count rule, blocks and temperatures (T = 0 included) at
``rtol=1e-12``; ``random`` vs the content-blind engine (``exact.exact_output_law``) to 1e-15;
closed forms (one token per step, ``threshold:1`` and ``eb:0`` give ``p = q`` exactly, since
their steps only join positions that are conditionally determined; llada at T = 0 is
confidence at T = 0); ties on exactly symmetric languages, and the same law through an HMM
whose conditionals carry rounding noise; every metric against its definition.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import entr, rel_entr

from mdm_exact.languages import HMM, IntervalLanguage, NGram, all_sequences, interval_hmm, random_hmm
from mdm_exact.sampler.adaptive_exact import policy_exact_metrics, policy_output_law, step_total_correlation
from mdm_exact.sampler.exact import exact_output_law
from mdm_exact.sampler.policies import make_policy, policy_from_rule
from mdm_exact.sampler.schedules import FixedSizes, RandomOrder, schedule
from mdm_exact.testing.policy_oracle import brute_force_policy_law


def _hmm3():
    return random_hmm(3, 3, 2.0, 0.05, rng=1)


def _sparse_bigram():
    """A bigram with zeros, so that parallel steps leave the support (SER > 0)."""
    init = np.array([0.5, 0.3, 0.2])
    cond = np.array([[0.0, 0.6, 0.4], [0.7, 0.0, 0.3], [0.5, 0.5, 0.0]])
    return NGram(2, init, cond)


def _hmm2():
    rng = np.random.default_rng(5)
    A = rng.dirichlet(np.ones(3), size=3)
    B = rng.dirichlet(np.ones(2), size=3)
    return HMM(rng.dirichlet(np.ones(3)), A, B)


LANGS = {"hmm3": _hmm3, "bigram0": _sparse_bigram, "hmm2": _hmm2, "interval2": lambda: IntervalLanguage(2)}

POLICIES = [
    # (policy, options)
    ("random", dict(num_steps=2)),
    ("confidence", dict(num_steps=2)),
    ("margin", dict(num_steps=3, schedule_name="cosine")),
    ("entropy", dict(step_sizes=(2, 1, 1))),
    ("llada", dict(num_steps=2)),
    ("llada", dict(step_sizes=(3, 1))),
    ("confidence", dict(step_sizes=(1, 3))),
    ("threshold:0.7", dict()),
    ("threshold:0.3", dict()),
    ("eb:0.5", dict()),
    ("eb:2.0", dict()),
    ("confidence", dict(num_steps=2, block_length=2)),
    ("llada", dict(num_steps=4, block_length=2)),
    ("margin", dict(num_steps=2, block_length=3)),
    ("threshold:0.6", dict(block_length=2)),
    ("eb:0.3", dict(block_length=3)),
    ("random", dict(num_steps=4, block_length=2)),
]


@pytest.mark.parametrize("lang_name", ["hmm3", "bigram0", "interval2"])
@pytest.mark.parametrize("policy, opts", POLICIES, ids=[f"{p}-{'-'.join(f'{k}{v}' for k, v in o.items())}" for p, o in POLICIES])
def test_dp_matches_brute_force(lang_name, policy, opts):
    lang = LANGS[lang_name]()
    L = 4
    pol = make_policy(policy, L=L, **opts)
    law = policy_output_law(lang, L, pol)
    p_ref, nfe_ref = brute_force_policy_law(lang, L, pol)
    p = np.exp(law.log_p)
    assert abs(p.sum() - 1.0) < 1e-12
    assert abs(law.nfe_pmf.sum() - 1.0) < 1e-12
    assert_allclose(p, p_ref, rtol=1e-12, atol=1e-15)
    assert_allclose(law.nfe_pmf, nfe_ref, rtol=1e-12, atol=1e-15)
    assert np.all(law.log_p[p_ref == 0] == -np.inf)  # impossible outputs are exactly -inf


@pytest.mark.parametrize("T", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("policy, opts", [
    ("confidence", dict(num_steps=2)),
    ("llada", dict(num_steps=2)),
    ("random", dict(step_sizes=(2, 2))),
    ("eb:0.4", dict()),
    ("threshold:0.5", dict(block_length=2)),
    ("entropy", dict(num_steps=2, block_length=2)),
])
def test_temperatures_match_brute_force(policy, opts, T):
    lang = _hmm2()
    L = 4
    pol = make_policy(policy, L=L, temperature=T, **opts)
    law = policy_output_law(lang, L, pol)
    p_ref, nfe_ref = brute_force_policy_law(lang, L, pol)
    assert_allclose(np.exp(law.log_p), p_ref, rtol=1e-12, atol=1e-15)
    assert_allclose(law.nfe_pmf, nfe_ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("lang_name", ["hmm3", "bigram0"])
@pytest.mark.parametrize("rule", [schedule("linear", 3), schedule("cosine", 4), FixedSizes((2, 1, 2)), FixedSizes((0, 5)),
                                  RandomOrder()], ids=["linear3", "cosine4", "sizes212", "sizes05", "random-order"])
def test_random_policy_is_the_content_blind_rule(lang_name, rule):
    """``random`` with binomial / fixed counts is ScheduleSteps / FixedSizes (issue 16), to 1e-15."""
    lang = LANGS[lang_name]()
    L = 5
    ref = np.exp(exact_output_law(lang, L, rule))
    law = policy_output_law(lang, L, policy_from_rule("random", rule, L))
    assert_allclose(np.exp(law.log_p), ref, rtol=0, atol=1e-15)


@pytest.mark.parametrize("policy, opts", [
    ("confidence", dict(step_sizes=(1,) * 5)),
    ("margin", dict(step_sizes=(1,) * 5)),
    ("entropy", dict(num_steps=5, block_length=1)),
    ("threshold:1.0", dict()),
    ("eb:0", dict()),
    ("eb:0", dict(block_length=2)),
])
@pytest.mark.parametrize("lang_name", ["hmm3", "bigram0", "interval2"])
def test_closed_form_policies_reproduce_q(policy, opts, lang_name):
    """Steps that join only conditionally determined positions sample q exactly (chain rule)."""
    lang = LANGS[lang_name]()
    L = 4 if lang_name == "interval2" else 5
    if "step_sizes" in opts:
        opts = dict(step_sizes=(1,) * L)
    if "num_steps" in opts:
        opts = dict(opts, num_steps=L)
    pol = make_policy(policy, L=L, **opts)
    r = policy_exact_metrics(lang, L, pol)
    assert r["ser"] < 1e-15
    assert abs(r["kl_data_model"]) < 1e-12
    assert r["kl_model_data"] is not None and abs(r["kl_model_data"]) < 1e-12
    if "step_sizes" in opts or "num_steps" in opts:
        assert r["nfe_pmf"][L] == pytest.approx(1.0, abs=1e-12)


def test_llada_one_token_per_step_is_biased():
    """llada keeps the draw with the highest probability, so even one token per step does not
    sample q (the kept token is not drawn from its conditional): KL(q || p) > 0."""
    lang = _hmm3()
    r = policy_exact_metrics(lang, 5, make_policy("llada", L=5, step_sizes=(1,) * 5))
    assert r["kl_data_model"] > 1e-3


def test_llada_at_temperature_zero_is_confidence():
    lang = _hmm3()
    L = 5
    a = policy_output_law(lang, L, make_policy("llada", L=L, num_steps=3, temperature=0.0))
    b = policy_output_law(lang, L, make_policy("confidence", L=L, num_steps=3, temperature=0.0))
    assert_allclose(np.exp(a.log_p), np.exp(b.log_p), rtol=1e-12, atol=1e-15)
    assert_allclose(a.nfe_pmf, b.nfe_pmf, rtol=1e-12, atol=1e-15)


def test_ties_go_to_the_lowest_index():
    """Interval language l = 2: every conditional is uniform or one-hot. confidence with sizes
    (2, 2) reveals positions 0 and 1 (one interval, one shared bit) together first: they agree
    with probability 1/2, then the second interval is drawn jointly the same way."""
    lang = IntervalLanguage(2)
    r = policy_exact_metrics(lang, 4, make_policy("confidence", L=4, step_sizes=(2, 2)))
    assert r["ser"] == pytest.approx(0.75, abs=1e-15)
    # lowest-index rule within blocks of 2 and one step per block: the same law
    r2 = policy_exact_metrics(lang, 4, make_policy("margin", L=4, num_steps=2, block_length=2))
    assert r2["ser"] == pytest.approx(0.75, abs=1e-15)
    # (1, 3): position 0 first (a four-way tie); then position 1 is determined and 2, 3 are
    # drawn independently: they agree with probability 1/2
    r3 = policy_exact_metrics(lang, 4, make_policy("confidence", L=4, step_sizes=(1, 3)))
    assert r3["ser"] == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize("policy, opts", [("confidence", dict(step_sizes=(2, 2, 2))), ("entropy", dict(num_steps=3)),
                                          ("margin", dict(num_steps=4, block_length=3)), ("threshold:0.9", dict()),
                                          ("eb:0.7", dict())])
def test_rounding_noise_does_not_change_choices(policy, opts):
    """The same q as an interval language (exact 2^-k) and as its Note C.8 HMM (rounded sums):
    every tie is broken the same way, so the laws agree to rounding."""
    L = 6
    pol = make_policy(policy, L=L, **opts)
    a = policy_output_law(IntervalLanguage(3), L, pol)
    b = policy_output_law(interval_hmm(3), L, pol)
    assert_allclose(np.exp(a.log_p), np.exp(b.log_p), rtol=1e-12, atol=1e-15)
    assert_allclose(a.nfe_pmf, b.nfe_pmf, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("lang_name", ["hmm3", "bigram0"])
@pytest.mark.parametrize("policy, opts", [("confidence", dict(num_steps=2)), ("llada", dict(num_steps=2, temperature=0.0)),
                                          ("eb:0.5", dict())])
def test_every_metric_against_its_definition(lang_name, policy, opts):
    lang = LANGS[lang_name]()
    L = 4
    pol = make_policy(policy, L=L, **opts)
    r = policy_exact_metrics(lang, L, pol).to_dict()
    p, nfe = brute_force_policy_law(lang, L, pol)
    q = np.exp(lang.log_prob(all_sequences(lang.vocab_size, L)))
    inside = q > 0
    assert r["ser"] == pytest.approx(p[~inside].sum(), abs=1e-14)
    w = p[inside] / p[inside].sum()
    mlpt = float((w * np.log(q[inside])).sum()) / L
    assert r["mean_log_prob_per_token"] == pytest.approx(mlpt, rel=1e-12)
    assert r["gen_ppl"] == pytest.approx(math.exp(-mlpt), rel=1e-12)
    assert r["gen_ppl_seq_mean"] == pytest.approx(float((w * q[inside] ** (-1.0 / L)).sum()), rel=1e-12)
    kl_qp = float(rel_entr(q, p).sum())
    kl_pq = float(rel_entr(p, q).sum())
    assert (r["kl_data_model"] is None) == (not math.isfinite(kl_qp))
    if math.isfinite(kl_qp):
        assert r["kl_data_model"] == pytest.approx(kl_qp, rel=1e-9, abs=1e-13)
    if math.isfinite(kl_pq):
        assert r["kl_model_data"] == pytest.approx(kl_pq, rel=1e-9, abs=1e-13)
    else:
        assert r["kl_model_data"] is None
    assert r["entropy_model"] == pytest.approx(float(entr(p).sum()), rel=1e-12)
    assert r["entropy_data"] == pytest.approx(float(entr(q).sum()), rel=1e-12)
    assert r["nfe_mean"] == pytest.approx(float(np.dot(np.arange(L + 1), nfe)), rel=1e-12)
    assert_allclose(r["nfe_pmf"], nfe, rtol=1e-12, atol=1e-15)
    assert r["engine"] == "exact" and r["rule"]["policy"] == pol.name
    assert r["instance_kl_total"] is None


def test_infinite_kl_model_data_is_none():
    lang = _sparse_bigram()
    r = policy_exact_metrics(lang, 4, make_policy("confidence", L=4, num_steps=1))
    assert r["ser"] > 0
    assert r["kl_model_data"] is None


def test_model_argument_and_length_mismatch():
    lang = _hmm3()
    pol = make_policy("entropy", L=4, num_steps=2)
    a = policy_output_law(lang, 4, pol)
    b = policy_output_law(lang, 4, pol, model=lang.__class__(lang.initial, lang.transition, lang.emission))
    assert_allclose(np.exp(a.log_p), np.exp(b.log_p), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="built for L = 4"):
        policy_output_law(lang, 5, pol)
    with pytest.raises(ValueError, match="MAX_STATES"):
        policy_output_law(lang, 16, make_policy("entropy", L=16, num_steps=2))


@pytest.mark.parametrize("lang_name", ["hmm3", "bigram0", "interval2"])
@pytest.mark.parametrize("policy, opts", [("eb:0.3", dict()), ("eb:1.5", dict(block_length=2)), ("confidence", dict(num_steps=2)),
                                          ("threshold:0.5", dict())])
def test_eb_guarantee_exactly(lang_name, policy, opts):
    """EB-sampler per-step guarantee with exact conditionals (Ben-Hamu et al., arXiv:2505.24857):
    TC(X_T | x_R) <= sum H - max H on every reachable state, and eb:g keeps the bound <= g."""
    lang = LANGS[lang_name]()
    L = 4
    pol = make_policy(policy, L=L, **opts)
    r = step_total_correlation(lang, L, pol)
    assert r["num_states"] > 0
    assert r["max_excess"] <= 1e-12
    if pol.count == "eb":
        assert r["max_bound"] <= pol.gamma + 1e-9
    assert all(t <= b + 1e-12 for t, b in zip(r["expected_tc_per_step"], r["expected_bound_per_step"]))


@pytest.mark.parametrize("lang_name", ["hmm3", "bigram0", "hmm2"])
@pytest.mark.parametrize("policy, opts", [("eb:0.4", dict()), ("confidence", dict(step_sizes=(2, 2))),
                                          ("margin", dict(num_steps=2, block_length=2)), ("threshold:0.6", dict())])
def test_kl_is_the_sum_of_step_total_correlations(lang_name, policy, opts):
    """Sets that are a function of the revealed tokens, T = 1: each x has one path, so
    KL(q || p) = sum_k E_{x~q} TC(X_{T_k} | x_{R_k}) (chain rule), exactly."""
    lang = LANGS[lang_name]()
    L = 4
    pol = make_policy(policy, L=L, **opts)
    r = step_total_correlation(lang, L, pol)
    kl = policy_exact_metrics(lang, L, pol)["kl_data_model"]
    assert kl is not None
    assert sum(r["data_tc_per_step"]) == pytest.approx(kl, rel=1e-9, abs=1e-13)
