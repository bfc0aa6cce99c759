"""Tests of the adaptive-policy Monte Carlo engine (``mdm_exact.sampler.adaptive_mc``).

Kinds: kernel parity (the Numba HMM kernel against the NumPy twin, and against the plain
reference loop on the language's own conditionals, with the same uniforms: identical samples);
bitwise identity across thread counts (more than one thread is shown to run) and batch sizes;
calibrated Monte Carlo against the exact law of ``adaptive_exact`` (chi-square goodness of fit
of the output and NFE histograms, Clopper-Pearson interval for the SER, normal interval for the
mean log q per token), every test with false-fail rate 1e-6 (Bonferroni inside a test).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from numba import njit, prange
from numpy.testing import assert_array_equal

from mdm_exact.languages import NGram, all_sequences, make_preset, random_hmm
from mdm_exact.sampler import adaptive_mc as M
from mdm_exact.sampler.adaptive_exact import policy_exact_metrics, policy_output_law
from mdm_exact.sampler.policies import make_policy
from mdm_exact.stats import chi_square_law, clopper_pearson, normal_quantile, sequence_counts

FALSE_FAIL = 1e-6


def _hmm():
    """A random HMM with zeros: parallel steps leave the support (SER about 0.25 at N = 2)."""
    return random_hmm(3, 3, 2.0, 0.15, rng=4)


POLICIES = [
    ("confidence", dict(num_steps=4)),
    ("margin", dict(num_steps=6, block_length=4)),
    ("entropy", dict(num_steps=5, schedule_name="cosine")),
    ("llada", dict(num_steps=3, temperature=0.7)),
    ("llada", dict(step_sizes=(5, 5, 2), temperature=0.0)),
    ("random", dict(step_sizes=(3, 3, 6))),
    ("random", dict(num_steps=3)),
    ("threshold:0.6", dict()),
    ("eb:0.5", dict(block_length=5)),
    ("confidence", dict(num_steps=4, temperature=2.0)),
]
IDS = [f"{p}-{i}" for i, (p, _) in enumerate(POLICIES)]


def _twin(lang):
    pi, A, B = lang.initial, lang.transition, lang.emission
    return lambda x, r: M.hmm_conditionals_numpy(pi, A, B, x, r)


@pytest.mark.parametrize("policy, opts", POLICIES, ids=IDS)
def test_kernel_matches_numpy_twin(policy, opts):
    lang = _hmm()
    L = 12
    pol = make_policy(policy, L=L, **opts)
    x1, n1, lq1 = M.sample_policy(lang, L, pol, 200, rng=11)
    x2, n2, _ = M.sample_policy(lang, L, pol, 200, rng=11, conditionals=_twin(lang))
    x3, n3, _ = M.sample_policy(lang, L, pol, 200, rng=11, method="reference")
    assert_array_equal(x1, x2)
    assert_array_equal(n1, n2)
    assert_array_equal(x1, x3)
    assert_array_equal(n1, n3)
    if policy == "random":
        assert np.any(np.isinf(lq1))  # rows that left the support (uniform conditionals) are exercised


def test_twin_conditionals_match_the_language():
    lang = make_preset("paper-hmm")
    rng = np.random.default_rng(0)
    x = lang.sample(8, 64, rng=rng)
    rev = rng.random((8, 64)) < 0.4
    got = M.hmm_conditionals_numpy(lang.initial, lang.transition, lang.emission, x, rev)
    ref = lang.conditional_marginals(x, rev)
    np.testing.assert_allclose(np.where(rev[..., None], 0.0, got), np.where(rev[..., None], 0.0, ref), rtol=1e-12, atol=1e-14)


@njit(parallel=True)
def _thread_ids(n):
    out = np.empty(n, dtype=np.int64)
    for i in prange(n):
        acc = 0.0
        for j in range(200_000):
            acc += math.sqrt(j + i)
        out[i] = numba.get_thread_id() + (0 if acc > 0 else 1)
    return out


@pytest.mark.parametrize("policy, opts", [POLICIES[0], POLICIES[3], POLICIES[6], POLICIES[8]], ids=["confidence", "llada", "random", "eb"])
def test_identical_across_threads_and_batch_sizes(policy, opts):
    lang = make_preset("paper-hmm")
    L = 16
    pol = make_policy(policy, L=L, **opts)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        x1, n1, _ = M.sample_policy(lang, L, pol, 200, rng=5, batch_size=64)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        assert numba.config.NUMBA_NUM_THREADS >= 2
        if not numba.config.DISABLE_JIT:  # the pure-Python CI job has no threads
            assert np.unique(_thread_ids(8)).size > 1  # more than one thread really runs
        x2, n2, _ = M.sample_policy(lang, L, pol, 200, rng=5, batch_size=256)
        x3, n3, _ = M.sample_policy(lang, L, pol, 200, rng=5)
    finally:
        numba.set_num_threads(old)
    assert_array_equal(x1, x2)
    assert_array_equal(x1, x3)
    assert_array_equal(n1, n2)
    assert_array_equal(n1, n3)


def _chi2_pvalue(counts, probs):
    """p-value of :func:`mdm_exact.stats.chi_square_law`; an outcome of probability 0 fails outright."""
    r = chi_square_law(counts, probs)
    assert r["zero_probability_hits"] == 0, "a sample fell on an outcome of exact probability 0"
    return r["p_value"]


MC_CASES = [
    ("hmm", "confidence", dict(num_steps=2)),
    ("hmm", "llada", dict(num_steps=2, temperature=0.5)),
    ("hmm", "margin", dict(num_steps=3, block_length=2)),
    ("hmm", "eb:0.6", dict()),
    ("hmm", "threshold:0.5", dict(block_length=3)),
    ("hmm", "entropy", dict(step_sizes=(3, 2), temperature=0.0)),
    ("bigram", "confidence", dict(num_steps=3, schedule_name="cosine")),
    ("bigram", "llada", dict(step_sizes=(2, 2, 1))),
    ("trigram-chain", "threshold:0.7", dict()),
    ("trigram-chain", "entropy", dict(num_steps=3)),
]


@pytest.mark.parametrize("lang_kind, policy, opts", MC_CASES, ids=[f"{a}-{b}-{i}" for i, (a, b, _) in enumerate(MC_CASES)])
def test_monte_carlo_matches_exact_law(lang_kind, policy, opts, monkeypatch):
    """Output law, NFE law (chi-square), SER (Clopper-Pearson, width < 0.04) and mean log q per
    token (mean +- z SE) against the exact engine; false-fail rate 1e-6 for the whole test."""
    if lang_kind == "hmm":
        lang = _hmm()
    elif lang_kind == "trigram-chain":  # the sparse-chain kernel (not the window chain)
        monkeypatch.setattr(M, "NGRAM_HMM_STATES", 0)
        lang = NGram(3, np.array([0.4, 0.3, 0.3, 0.0]), np.array([[0.5, 0.5], [0.0, 1.0], [0.6, 0.4], [0.3, 0.7]]))
    else:
        lang = NGram(2, np.array([0.5, 0.3, 0.2]), np.array([[0.0, 0.6, 0.4], [0.7, 0.0, 0.3], [0.5, 0.5, 0.0]]))
    L = 5
    pol = make_policy(policy, L=L, **opts)
    n = 20_000
    a = FALSE_FAIL / 4  # four checks
    law = policy_output_law(lang, L, pol)
    exact = policy_exact_metrics(lang, L, pol)
    x, nfe, log_q = M.sample_policy(lang, L, pol, n, rng=2026)
    V = lang.vocab_size
    counts = sequence_counts(x, V)
    assert _chi2_pvalue(counts, np.exp(law.log_p)) > a
    assert _chi2_pvalue(np.bincount(nfe, minlength=L + 1), law.nfe_pmf) > a
    errors = int(np.sum(~np.isfinite(log_q)))
    lo, hi = clopper_pearson(errors, n, a)
    assert lo <= exact["ser"] <= hi and hi - lo < 0.04
    lpt = log_q[np.isfinite(log_q)] / L
    z = normal_quantile(a)
    se = lpt.std(ddof=1) / math.sqrt(lpt.size)
    assert abs(lpt.mean() - exact["mean_log_prob_per_token"]) <= z * se + 1e-12  # + rounding (T = 0: one output)
    assert z * se < 0.02


def test_run_policy_monte_carlo_keys_and_intervals():
    lang = _hmm()
    L = 5
    pol = make_policy("confidence", L=L, num_steps=2)
    r = M.run_policy_monte_carlo(lang, L, pol, 20_000, rng=1, ci_alpha=1e-6)
    d = r.to_dict()
    for k in ("ser", "ser_ci", "gen_ppl", "gen_ppl_ci", "mean_log_prob_per_token", "mean_log_prob_per_token_ci", "nfe_mean",
              "nfe_ci", "nfe_hist", "samples_per_second", "policy"):
        assert k in d, k
    ex = policy_exact_metrics(lang, L, pol)
    assert d["ser_ci"][0] <= ex["ser"] <= d["ser_ci"][1]
    assert d["gen_ppl_ci"][0] <= ex["gen_ppl"] <= d["gen_ppl_ci"][1]
    assert d["nfe_ci"][0] <= ex["nfe_mean"] <= d["nfe_ci"][1]
    assert d["engine"] == "hmm" and d["rule"]["policy"] == "confidence"


def test_bad_input():
    lang = _hmm()
    pol = make_policy("confidence", L=5, num_steps=2)
    with pytest.raises(ValueError, match="built for L = 5"):
        M.sample_policy(lang, 6, pol, 10)
    from mdm_exact.languages import IntervalLanguage

    pol4 = make_policy("confidence", L=4, num_steps=2)
    with pytest.raises(ValueError, match="no policy kernel"):
        M.sample_policy(IntervalLanguage(2), 4, pol4, 10, method="fast")
    with pytest.raises(ValueError, match="ci_alpha"):
        M.run_policy_monte_carlo(lang, 5, pol, 10, ci_alpha=0.0)


def test_kernel_conditionals_rescale_below_the_double_range():
    """L = 512 with 90% revealed: q(x_R) is far below 1e-308, so the kernel's lazy rescaling
    must keep the messages alive; conditionals equal the language's own to 1e-12."""
    from mdm_exact.sampler._kernels_policies import _hmm_conditionals_chunk

    lang = make_preset("paper-hmm")
    L, m = 512, 16
    rng = np.random.default_rng(3)
    x = lang.sample(m, L, rng=rng)
    rev = rng.random((m, L)) < 0.9
    assert np.all(lang.log_prob_revealed(x, rev) < -800)
    S, V = lang.num_states, lang.vocab_size
    A = np.ascontiguousarray(lang.transition)
    B = np.ascontiguousarray(lang.emission)
    cond = np.zeros((m, L, V))
    dead = np.zeros(m, dtype=bool)
    _hmm_conditionals_chunk(lang.initial, A, np.ascontiguousarray(A.T), B, np.ascontiguousarray(B.T), x, rev,
                            np.empty((L, m, S)), np.empty((2, m, S)), np.empty((m, S)), np.empty((m, V)), cond, dead, 1e-100)
    assert not dead.any()
    ref = lang.conditional_marginals(x, rev)
    np.testing.assert_allclose(np.where(rev[..., None], 0.0, cond), np.where(rev[..., None], 0.0, ref), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("order, V", [(2, 3), (3, 2)])
def test_ngram_window_chain_is_the_ngram(order, V):
    """The look-ahead window HMM emits exactly the n-gram's law, and the kernel on it draws the
    same samples as the reference loop on the n-gram's own conditionals."""
    from mdm_exact.languages import HMM, random_ngram

    lang = random_ngram(order, V, 2.0, 0.1, rng=order)
    pi, A, B = M.ngram_window_chain(lang)
    L = 5
    xs = all_sequences(V, L)
    np.testing.assert_allclose(np.exp(HMM(pi, A, B).log_prob(xs)), np.exp(lang.log_prob(xs)), rtol=1e-12, atol=1e-15)
    pol = make_policy("llada", L=12, num_steps=4, temperature=0.8)
    x1, n1, _ = M.sample_policy(lang, 12, pol, 200, rng=4, method="fast")
    x2, n2, _ = M.sample_policy(lang, 12, pol, 200, rng=4, method="reference")
    assert_array_equal(x1, x2)
    assert_array_equal(n1, n2)
    assert M._PolicyEngine(lang, 12, pol).kind == "ngram-hmm"


CHAIN_POLICIES = POLICIES + [("threshold:0.9", dict()), ("eb:2", dict()), ("llada", dict(num_steps=6, block_length=4))]


@pytest.mark.parametrize("order, V, seed", [(3, 3, 1), (4, 2, 2), (5, 2, 4), (4, 3, 5)])
def test_chain_kernel_matches_reference(order, V, seed, monkeypatch):
    """The sparse-chain policy kernel (segment-wise refresh of the conditionals between pinned
    windows) draws the same samples and NFE as the reference loop on ``NGram.conditional_marginals``
    with the same uniforms, for every policy; random n-grams with zeros, so rows that leave the
    support (uniform conditionals from then on) are exercised."""
    from mdm_exact.languages import random_ngram

    monkeypatch.setattr(M, "NGRAM_HMM_STATES", 0)  # small n-grams would run on the window chain
    lang = random_ngram(order, V, 2.0, 0.3, rng=seed)
    L = 12
    dead = 0
    for policy, opts in CHAIN_POLICIES:
        pol = make_policy(policy, L=L, **opts)
        assert M._PolicyEngine(lang, L, pol).kind == "ngram-chain"
        x1, n1, lq1 = M.sample_policy(lang, L, pol, 200, rng=7)
        x2, n2, _ = M.sample_policy(lang, L, pol, 200, rng=7, method="reference")
        assert_array_equal(x1, x2, err_msg=f"{policy} {opts}")
        assert_array_equal(n1, n2, err_msg=f"{policy} {opts}")
        dead += int(np.sum(np.isinf(lq1)))
    if order != 4 or V != 2:  # (4, 2, 2) has no zero reachable by these policies
        assert dead > 0


@pytest.mark.parametrize("preset", ["paper-3gram", "paper-4gram"])
def test_paper_ngrams_run_on_the_chain_kernel(preset):
    """The paper's 3- and 4-gram (64 and 512 contexts) take the chain kernel by default, with the
    reference loop's samples at L = 48 (threshold: one reveal per step, segments split by pins)."""
    lang = make_preset(preset)
    L = 48
    for policy, opts in [("threshold:0.9", {}), ("margin", dict(num_steps=8, block_length=12)), ("llada", dict(num_steps=6))]:
        pol = make_policy(policy, L=L, **opts)
        assert M._PolicyEngine(lang, L, pol).kind == "ngram-chain"
        x1, n1, _ = M.sample_policy(lang, L, pol, 48, rng=3)
        x2, n2, _ = M.sample_policy(lang, L, pol, 48, rng=3, method="reference")
        assert_array_equal(x1, x2)
        assert_array_equal(n1, n2)


def test_chain_kernel_identical_across_threads(monkeypatch):
    lang = make_preset("paper-3gram")
    pol = make_policy("eb:1", L=20)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        x1, n1, _ = M.sample_policy(lang, 20, pol, 150, rng=5, batch_size=64)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        x2, n2, _ = M.sample_policy(lang, 20, pol, 150, rng=5)
    finally:
        numba.set_num_threads(old)
    assert_array_equal(x1, x2)
    assert_array_equal(n1, n2)
