"""Monte Carlo engine of the idealised sampler (``mdm_exact.sampler.montecarlo``).

Kinds of tests (STYLE.md §7): kernel parity (Numba == NumPy reference, same uniforms give the
same samples; bitwise equality across thread counts and batch sizes), Monte Carlo vs exact
values on tiny cases within calibrated intervals, closed forms (autoregressive and
one-token-per-step samplers have zero instance KL and zero SER), dependency counts against a
direct implementation of Definitions B.4-B.7 (STATEMENTS.md §4.C) including Example B.6.
"""

import json
import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdm_exact.sampler import montecarlo as mc
from mdm_exact.sampler.exact import exact_metrics
from mdm_exact.sampler.models import PerturbedModel
from mdm_exact.testing.oracle import joint_from_language, reference_instance_kl, reference_output_law
from mdm_exact.theory import separators
from mdm_exact.languages import HMM, IntervalLanguage, NGram, all_sequences
from mdm_exact.languages.random import random_hmm, random_ngram
from mdm_exact.sampler.schedules import FixedSizes, LeftToRight, RandomOrder, draw_steps, expected_nonempty_steps, schedule
from mdm_exact.stats import clopper_pearson, normal_quantile

# Calibrated Monte Carlo tests: each interval has miscoverage ALPHA; a test with k intervals
# fails by chance with probability <= k * ALPHA (Bonferroni), i.e. below 1e-5 per test.
ALPHA = 1e-6


def _inside(value, lo, hi):
    """``lo <= value <= hi`` up to float64 rounding (1e-12 relative): a zero-variance sample
    (e.g. the interval language, where every valid sequence has the same q) gives lo == hi."""
    slack = 1e-12 * max(abs(lo), abs(hi), abs(value), 1e-300)
    return lo - slack <= value <= hi + slack


def _sparse_hmm():
    """3 states, 2 tokens, with zeros so that the idealised sampler makes sequence errors."""
    return HMM([0.6, 0.4, 0.0], [[0.0, 0.7, 0.3], [0.5, 0.0, 0.5], [0.2, 0.3, 0.5]], [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])


def _sparse_trigram():
    V = 2
    cond = np.array([[0.9, 0.1], [0.0, 1.0], [1.0, 0.0], [0.4, 0.6]])  # (V^2, V)
    init = np.array([0.3, 0.2, 0.5, 0.0])  # (V^2,)
    return NGram(3, init, cond)


LANGS = {
    "hmm": (_sparse_hmm, 6),
    "trigram": (_sparse_trigram, 6),
    "bigram-rand": (lambda: random_ngram(2, 3, 2.0, 0.1, rng=3), 7),
    "4gram-rand": (lambda: random_ngram(4, 2, 2.0, 0.1, rng=4), 7),
    "hmm-rand": (lambda: random_hmm(5, 3, 3.2, 0.05, rng=5), 7),
    "interval3": (lambda: IntervalLanguage(3), 6),
}
RULES = {
    "linear1": lambda L: schedule("linear", 1),
    "linear2": lambda L: schedule("linear", 2),
    "cosine4": lambda L: schedule("cosine", 4),
    "fixed": lambda L: FixedSizes((2, 0, L - 3, 1)),
    "random-order": lambda L: RandomOrder(),
    "left-to-right": lambda L: LeftToRight(),
}


# ----------------------------------------------------------------------------- kernel parity
@pytest.mark.parametrize("rule_name", sorted(RULES))
@pytest.mark.parametrize("lang_name", sorted(LANGS))
def test_kernel_matches_numpy_reference(lang_name, rule_name):
    """Same instances and uniforms: the Numba kernel draws exactly the reference's samples."""
    make, L = LANGS[lang_name]
    lang = make()
    rule = RULES[rule_name](L)
    rng = np.random.default_rng(11)
    n = 300
    steps = draw_steps(rule, n, L, rng=rng)  # (n, L)
    u = rng.random((n, L))  # (n, L)
    fast = mc._Engine(lang, L, method="fast")
    ref = mc._Engine(lang, L, method="reference")
    lp_f, nfe_f, lq_f, x_f = fast.run(steps, np.zeros((n, L), np.int64), u, score=False)
    lp_r, nfe_r, lq_r, x_r = ref.run(steps, np.zeros((n, L), np.int64), u, score=False)
    np.testing.assert_array_equal(x_f, x_r)
    np.testing.assert_array_equal(nfe_f, nfe_r)
    np.testing.assert_array_equal(np.isfinite(lq_f), np.isfinite(lq_r))
    np.testing.assert_array_equal(lq_f == -np.inf, lq_r == -np.inf)
    fin = np.isfinite(lq_f)
    np.testing.assert_allclose(lq_f[fin], lq_r[fin], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.isfinite(lp_f), np.isfinite(lp_r))
    fin = np.isfinite(lp_f)
    np.testing.assert_allclose(lp_f[fin], lp_r[fin], rtol=1e-12, atol=1e-12)
    # in-support decision of the kernel agrees with the language's exact zero-pattern test
    np.testing.assert_array_equal(np.isfinite(lq_f), lang.in_support(x_f))
    # score mode on data x ~ q: teacher-forced log p_tau(x) agrees too
    xd = lang.sample(n, L, rng=rng)
    lp_f, _, lq_f, _ = fast.run(steps, xd, u, score=True)
    lp_r, _, lq_r, _ = ref.run(steps, xd, u, score=True)
    np.testing.assert_allclose(lp_f, lp_r, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lq_f, lq_r, rtol=1e-12, atol=1e-12)


@st.composite
def _random_chain(draw):
    kind = draw(st.sampled_from(["hmm", "ngram"]))
    seed = draw(st.integers(0, 2**31 - 1))
    V = draw(st.integers(2, 3))
    thr = draw(st.sampled_from([0.0, 0.05, 0.2]))
    if kind == "hmm":
        lang = random_hmm(draw(st.integers(1, 5)), V, 2.0, thr, rng=seed)
    else:
        lang = random_ngram(draw(st.integers(2, 4)), V, 2.0, thr, rng=seed)
    L = draw(st.integers(1, 9))
    N = draw(st.integers(1, 6))
    return lang, L, N, seed


@settings(max_examples=30)
@given(_random_chain())
def test_kernel_parity_property(case):
    """Random sparse HMMs and n-grams (any L, including L < n - 1 via the reference)."""
    lang, L, N, seed = case
    rule = schedule("linear", N)
    a = mc.sample_idealised(lang, L, rule, 150, rng=seed)
    b = mc.sample_idealised(lang, L, rule, 150, rng=seed, method="reference")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[3], b[3])
    np.testing.assert_array_equal(np.isfinite(a[4]), np.isfinite(b[4]))


@st.composite
def _long_ngram(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    n = draw(st.integers(2, 5))
    V = draw(st.integers(2, 4 if n <= 4 else 3))
    thr = draw(st.sampled_from([0.0, 0.05, 0.2]))
    L = draw(st.integers(n - 1, 48))
    N = draw(st.sampled_from([2, 5, 16, 64]))
    G = draw(st.sampled_from([None, 1, 3]))
    return random_ngram(n, V, 2.0, thr, rng=seed), L, N, G, seed


@settings(max_examples=40, deadline=None)
@given(_long_ngram())
def test_ngram_kernel_parity_long_property(case):
    """Random sparse n-grams of order 2-5 at lengths where the kernel jumps masked stretches
    and mixes every window pattern (runs of masked digits at either end, scattered ones, with
    and without the transposed powers), also with the jump table capped at G = 1 or 3: the
    reference's samples exactly, log-probabilities within 1e-12."""
    lang, L, N, G, seed = case
    C = lang.num_contexts
    rule = schedule("linear", N)
    with pytest.MonkeyPatch.context() as mp:
        if G is not None:
            mp.setattr(mc, "NGRAM_POWER_BYTES", 2 * G * 8 * C * C)
            assert mc._Engine(lang, L)._ngram[3].shape[0] == min(G, L)
        a = mc.sample_idealised(lang, L, rule, 60, rng=seed)
    b = mc.sample_idealised(lang, L, rule, 60, rng=seed, method="reference")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[3], b[3])
    fin = np.isfinite(a[2])
    np.testing.assert_array_equal(fin, np.isfinite(b[2]))
    np.testing.assert_allclose(a[2][fin], b[2][fin], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.isfinite(a[4]), np.isfinite(b[4]))


def _tiny_mass_hmm():
    """Token 2 has emission probability 1e-150 in every state that can emit it: two of them
    in a row take a message's mass below the smallest double unless it is rescaled."""
    B = np.array([[0.5, 0.5 - 1e-150, 1e-150], [0.3, 0.7 - 1e-150, 1e-150], [0.2, 0.8, 0.0]])
    A = np.array([[0.1, 0.6, 0.3], [0.4, 0.4, 0.2], [0.0, 0.5, 0.5]])
    return HMM([0.5, 0.25, 0.25], A, B)


@pytest.mark.parametrize("N", [1, 4, 40])
def test_hmm_kernel_rescaling_matches_reference(N):
    """The HMM kernel rescales its messages only when their mass falls below 1e-20 (it skips
    the per-position normalisation). Long sequences whose probability is far below the
    smallest double (runs of 1e-150 emissions) or far below the threshold: same draws, same
    finite log-probabilities and no impossible event reported for a possible sequence."""
    L = 90
    for lang in (random_hmm(6, 40, 3.2, 0.0, rng=9), _tiny_mass_hmm()):
        rng = np.random.default_rng(N)
        steps = draw_steps(schedule("linear", N), 40, L, rng=rng)  # (40, L)
        u = rng.random((40, L))  # (40, L)
        fast = mc._Engine(lang, L, method="fast")
        ref = mc._Engine(lang, L, method="reference")
        lp_f, _, lq_f, x_f = fast.run(steps, np.zeros((40, L), np.int64), u, score=False)
        lp_r, _, lq_r, x_r = ref.run(steps, np.zeros((40, L), np.int64), u, score=False)
        np.testing.assert_array_equal(x_f, x_r)
        np.testing.assert_allclose(lp_f, lp_r, rtol=1e-11)
        np.testing.assert_allclose(lq_f, lq_r, rtol=1e-11)
        assert np.all(np.isfinite(lq_f))
        if lang.vocab_size > 3:
            assert np.all(lq_f < -3 * 46.1)  # every sequence's messages were rescaled (1e-20) often
        xd = np.ones((40, L), dtype=np.int64)
        xd[:, 1::3] = 2  # many 1e-150 emissions (and in states that can emit them)
        xd[:, 2::3] = 2
        if lang.vocab_size > 3:
            xd = lang.sample(40, L, rng=rng)
        lp_f, _, lq_f, _ = fast.run(steps, xd, u, score=True)
        lp_r, _, lq_r, _ = ref.run(steps, xd, u, score=True)
        np.testing.assert_array_equal(np.isfinite(lp_f), np.isfinite(lp_r))
        np.testing.assert_allclose(lq_f, lq_r, rtol=1e-11)
        assert np.all(np.isfinite(lq_f))
        if lang.vocab_size == 3:
            assert np.all(lq_f < -745)  # below the smallest double: only rescaling keeps it finite
        fin = np.isfinite(lp_f)
        np.testing.assert_allclose(lp_f[fin], lp_r[fin], rtol=1e-11)


@pytest.mark.parametrize("power_bytes", [None, 2 * 3 * 8 * 27 * 27])
@pytest.mark.parametrize("N", [3, 12, 40])
def test_ngram_jumps_match_reference(monkeypatch, power_bytes, N):
    """Longer sequences, so that the n-gram kernel jumps masked stretches with T^g (also with
    the table capped at G = 3 powers): exactly the reference's samples from the same uniforms."""
    if power_bytes is not None:
        monkeypatch.setattr(mc, "NGRAM_POWER_BYTES", power_bytes)
    lang = random_ngram(4, 3, 2.0, 0.1, rng=7)
    L = 40
    assert mc._Engine(lang, L)._ngram[3].shape[0] == (L if power_bytes is None else 3)  # G powers T^1..T^G
    a = mc.sample_idealised(lang, L, schedule("linear", N), 120, rng=N)
    b = mc.sample_idealised(lang, L, schedule("linear", N), 120, rng=N, method="reference")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[3], b[3])
    np.testing.assert_array_equal(np.isfinite(a[4]), np.isfinite(b[4]))
    fin = np.isfinite(a[2])
    np.testing.assert_array_equal(fin, np.isfinite(b[2]))
    np.testing.assert_allclose(a[2][fin], b[2][fin], rtol=1e-12, atol=1e-12)


def _strip_timing(d):
    return {k: v for k, v in d.items() if k not in ("seconds", "samples_per_second")}


@numba.njit(parallel=True)
def _thread_ids(n):  # which Numba thread ran each iteration of a prange loop
    out = np.empty(n, dtype=np.int64)
    for i in numba.prange(n):
        out[i] = numba.get_thread_id()
    return out


def _threads_used(n=4096):
    return np.unique(_thread_ids(n)).size


@pytest.mark.parametrize(
    "lang",
    [random_hmm(6, 3, 3.2, 0.05, rng=2), random_ngram(3, 3, 2.0, 0.05, rng=2), IntervalLanguage(4)],
    ids=["hmm", "trigram", "interval4"],
)
def test_bitwise_identical_across_threads_and_batch_sizes(lang):
    """One thread versus several (asserted: more than one thread runs the prange loops)."""
    rule = schedule("linear", 5)
    kw = dict(rng=123, instance_kl=True, dependencies=3)
    old = numba.get_num_threads()
    many_threads = max(2, numba.config.NUMBA_NUM_THREADS)
    assert numba.config.NUMBA_NUM_THREADS >= 2, "run with NUMBA_NUM_THREADS >= 2: one thread cannot test thread independence"
    try:
        numba.set_num_threads(1)
        assert _threads_used() == 1
        one = mc.run_monte_carlo(lang, 40, rule, 1300, batch_size=mc.CHUNK, **kw).to_dict()
        numba.set_num_threads(many_threads)
        assert _threads_used() > 1
        many = mc.run_monte_carlo(lang, 40, rule, 1300, batch_size=100000, **kw).to_dict()
    finally:
        numba.set_num_threads(old)
    assert _strip_timing(one) == _strip_timing(many)
    again = mc.run_monte_carlo(lang, 40, rule, 1300, batch_size=3 * mc.CHUNK, **kw).to_dict()
    assert _strip_timing(again) == _strip_timing(one)
    other = mc.run_monte_carlo(lang, 40, rule, 1300, rng=124, instance_kl=True).to_dict()
    assert other["instance_kl_per_token"] != one["instance_kl_per_token"]


# ----------------------------------------------------------------------------- exact values
def _brute_force_exact(lang, L, rule):
    """(log q, p, E_tau KL(q || p_tau)) over ``all_sequences`` from THE brute-force oracle
    (``mdm_exact.testing.oracle``: sum over every instance, conditionals from the joint table)."""
    log_q = joint_from_language(lang, L)  # (V^L,)
    with np.errstate(divide="ignore"):
        p = np.exp(reference_output_law(lang, L, rule))  # (V^L,)
    ekl, _ = reference_instance_kl(lang, L, rule)
    return log_q, p, ekl


@pytest.mark.parametrize(
    "lang_name,N", [("hmm", 2), ("trigram", 3), ("interval3", 2)], ids=["hmm-N2", "trigram-N3", "interval3-N2"]
)
def test_monte_carlo_matches_exact(lang_name, N):
    """SER, generative perplexities, instance KL and NFE agree with enumeration.

    Four intervals at miscoverage 1e-6 each (false-fail rate < 1e-5). The asserted widths
    show that an error of 0.01 in SER, of 1% in either generative perplexity or of 0.01
    nats/token in the instance KL would be caught.
    """
    make, _ = LANGS[lang_name]
    lang = make()
    L = 6 if lang_name == "interval3" else 4
    rule = schedule("cosine", N)
    log_q, p, ekl = _brute_force_exact(lang, L, rule)
    inside = log_q > -np.inf
    ser = float(p[~inside].sum())  # mass outside supp q
    mlp = float(np.sum(p[inside] * log_q[inside]) / p[inside].sum() / L)
    ppl_seq = float(np.sum(p[inside] * np.exp(-log_q[inside] / L)) / p[inside].sum())
    n = 400_000
    r = mc.run_monte_carlo(lang, L, rule, n, rng=2024, ci_alpha=ALPHA, batch_size=50_000)
    assert r.engine != "reference"
    lo, hi = r["ser_ci"]
    assert lo <= ser <= hi and hi - lo < 0.01
    lo, hi = r["gen_ppl_ci"]
    assert _inside(math.exp(-mlp), lo, hi) and hi - lo < 0.01 * math.exp(-mlp)
    lo, hi = r["gen_ppl_seq_mean_ci"]
    assert _inside(ppl_seq, lo, hi) and hi - lo < 0.01 * ppl_seq
    lo, hi = r["instance_kl_per_token_ci"]
    assert _inside(ekl / L, lo, hi) and hi - lo < 0.01
    # the exact engine of the package agrees with this brute force
    ex = exact_metrics(lang, L, rule)
    assert ex["ser"] == pytest.approx(ser, abs=1e-12)
    assert ex["instance_kl_total"] == pytest.approx(ekl, abs=1e-12)
    assert ex["gen_ppl"] == pytest.approx(math.exp(-mlp), rel=1e-12)


def test_nfe_matches_statements_4e():
    """Mean number of non-empty steps = sum_k 1 - (1 - p_k)^L (STATEMENTS.md §4.E), L = 120."""
    lang = IntervalLanguage(4)
    for N in (16, 64, 256):
        rule = schedule("linear", N)
        r = mc.run_monte_carlo(lang, 120, rule, 20_000, rng=N, ci_alpha=ALPHA, instance_kl=False)
        lo, hi = r["nfe_ci"]
        expected = expected_nonempty_steps(rule, 120)
        assert lo <= expected <= hi and hi - lo < 0.01 * expected
        assert sum(r["nfe_hist"].values()) == 20_000
    r = mc.run_monte_carlo(lang, 8, FixedSizes((3, 0, 5)), 50, rng=0)
    assert r["nfe_hist"] == {2: 50}


@pytest.mark.parametrize("rule", [LeftToRight(), RandomOrder()], ids=["left-to-right", "random-order"])
@pytest.mark.parametrize("preset", ["paper-hmm", "paper-3gram", "interval-l4"])
def test_one_token_per_step_is_exact(rule, preset):
    """One token per step: p_tau = q for every tau, so SER = 0 and the instance KL is 0."""
    from mdm_exact.languages import load_language

    lang = load_language(preset)
    L = 64
    r = mc.run_monte_carlo(lang, L, rule, 256, rng=5)
    assert r.ser == 0.0 and r["num_errors"] == 0
    assert abs(r.instance_kl_per_token) < 1e-12
    assert r.nfe_mean == L


def test_single_step_instance_kl_is_total_correlation():
    """N = 1 draws the product of marginals: E_tau KL(q || p_tau) = TC(q) (Lemma A.1 identity)."""
    lang = _sparse_hmm()
    L = 5
    X = all_sequences(2, L)
    with np.errstate(divide="ignore"):
        lq = lang.log_prob(X)
    q = np.exp(lq)
    marg = lang.conditional_marginals(X[:1], np.zeros((1, L), bool))[0]  # (L, V)
    inside = q > 0
    tc = float(np.sum(q[inside] * (lq[inside] - np.log(marg[np.arange(L), X[inside]]).sum(axis=1))))
    r = mc.run_monte_carlo(lang, L, schedule("linear", 1), 200_000, rng=9, ci_alpha=ALPHA)
    lo, hi = r["instance_kl_per_token_ci"]
    assert lo <= tc / L <= hi and hi - lo < 0.01


# ----------------------------------------------------------------------------- dependencies
def _direct_dependencies(before, new, n):
    """Definitions B.4/B.5 straight from the text: runs, separator blocks, intervals touched."""
    L = len(before)
    runs = []
    i = 0
    while i < L:
        if before[i]:
            j = i
            while j < L and before[j]:
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    S = sum((b - a) // (n - 1) for a, b in runs)
    # interval label of a position = number of separator blocks entirely to its left
    blocks_end = []
    for a, b in runs:
        for t in range((b - a) // (n - 1)):
            blocks_end.append(a + (t + 1) * (n - 1) - 1)
    labels = {sum(1 for e in blocks_end if e < p) for p in np.flatnonzero(new)}
    m = int(np.sum(new))
    return S, m - len(labels), len(labels)


def test_example_b6():
    """STATEMENTS.md §4.C Example B.6: L=10, n=3, M_<k={2,5,6,9}, M_k={3,7,10} (1-based) -> S=1, D=1."""
    steps = np.full(10, 2)
    steps[[1, 4, 5, 8]] = 0
    steps[[2, 6, 9]] = 1
    S, D, D_lit, m, pairs = mc.step_dependencies(steps, 3)
    assert S[0, 1] == 1 and D[0, 1] == 1 and D_lit[0, 1] == 2 and m[0, 1] == 3 and pairs[0, 1] == 3
    before = steps < 1
    assert _direct_dependencies(before, steps == 1, 3) == (1, 1, 2)


@settings(max_examples=60)
@given(st.integers(1, 40), st.integers(2, 5), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_dependency_kernel_matches_definitions(L, n, N, seed):
    rng = np.random.default_rng(seed)
    steps = rng.integers(0, N, size=(3, L))  # (3, L)
    S, D, D_lit, m, pairs = mc.step_dependencies(steps, n, num_steps=N)
    for b in range(3):
        for k in range(N):
            s_, d_, t_ = _direct_dependencies(steps[b] < k, steps[b] == k, n)
            assert (S[b, k], D[b, k], D_lit[b, k]) == (s_, d_, t_)
            assert pairs[b, k] == m[b, k] * (m[b, k] - 1) // 2
    for reading, ours in (("corrected", D), ("literal", D_lit)):
        S_ref, D_ref = separators.instance_dependencies(steps, n, reading=reading, num_steps=N)
        np.testing.assert_array_equal(S, S_ref)
        np.testing.assert_array_equal(ours, D_ref)


def test_run_reports_dependency_means():
    lang = random_ngram(3, 3, 2.0, 0.05, rng=1)
    rule = schedule("linear", 6)
    r = mc.run_monte_carlo(lang, 30, rule, 300, rng=4, dependencies=True, instance_kl=False).to_dict()
    _, steps, _, _, _ = mc.sample_idealised(lang, 30, rule, 300, rng=4)
    S, D, D_lit, m, pairs = mc.step_dependencies(steps, 3, num_steps=6)
    np.testing.assert_allclose(r["S_k"], S.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(r["D_k"], D.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(r["D_k_literal"], D_lit.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(r["same_step_pairs_k"], pairs.mean(axis=0), rtol=1e-15)
    assert r["D_tau_mean"] == pytest.approx(D.sum(axis=1).mean(), rel=1e-12)


# ----------------------------------------------------------------------------- driver
def test_interrupt_keeps_finished_batches(monkeypatch):
    lang = IntervalLanguage(3)
    real = mc._Engine.run
    calls = {"n": 0}

    def flaky(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > 2:  # first batch: sampling + instance-KL scoring, then Ctrl-C
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(mc._Engine, "run", flaky)
    r = mc.run_monte_carlo(lang, 9, schedule("linear", 3), 3 * mc.CHUNK, rng=0, batch_size=mc.CHUNK)
    assert r["interrupted"] and r["num_samples_done"] == mc.CHUNK


def test_model_runs_on_reference_and_matches_exact():
    """A separate model runs on the NumPy reference; SER, generative perplexity and the
    instance KL per token agree with the exact engine on the same PerturbedModel.

    Three intervals at miscoverage 1e-6 (false-fail rate <= 3e-6). The asserted widths mean a
    drift of 0.02 in SER (13% of its value), of 0.025 in perplexity (1.6%) or of 0.01
    nats/token in the KL (8%) between the engines would be caught."""
    lang = _sparse_trigram()
    model = PerturbedModel(lang, 0.5, rng=3)
    rule = schedule("linear", 2)
    ex = exact_metrics(lang, 4, rule, model=model)
    r = mc.run_monte_carlo(lang, 4, rule, 40_000, rng=8, model=model, ci_alpha=ALPHA)
    assert r.engine == "reference"
    lo, hi = r["ser_ci"]
    assert lo <= ex.ser <= hi and hi - lo < 0.02
    lo, hi = r["gen_ppl_ci"]
    assert lo <= ex.gen_ppl <= hi and hi - lo < 0.025
    lo, hi = r["instance_kl_per_token_ci"]
    assert lo <= ex.instance_kl_per_token <= hi and hi - lo < 0.01


# ----------------------------------------------------------------------------- fallbacks
def test_hmm_beyond_the_power_memory_limit_falls_back_to_the_reference(monkeypatch):
    """``method="auto"``: the HMM kernel needs 2 L S^2 floats of powers; above HMM_POWER_BYTES
    the engine is the NumPy reference, and it draws the same samples as the kernel."""
    lang = _sparse_hmm()
    L, S = 6, lang.num_states
    rule = schedule("linear", 3)
    kw = dict(rng=4, instance_kl=True)
    fast = mc.run_monte_carlo(lang, L, rule, 700, **kw).to_dict()
    assert fast["engine"] == "hmm"
    monkeypatch.setattr(mc, "HMM_POWER_BYTES", 2 * L * S * S * 8 - 1)
    slow = mc.run_monte_carlo(lang, L, rule, 700, **kw).to_dict()
    assert slow["engine"] == "reference"
    assert mc._Engine(lang, L).kind == "reference"
    with pytest.raises(ValueError, match="no Numba kernel"):
        mc._Engine(lang, L, method="fast")
    monkeypatch.setattr(mc, "HMM_POWER_BYTES", 2 * L * S * S * 8)
    assert mc._Engine(lang, L).kind == "hmm"
    for k in ("ser", "ser_ci", "nfe_mean", "nfe_hist", "num_errors"):
        assert slow[k] == fast[k], k
    np.testing.assert_allclose(slow["instance_kl_per_token"], fast["instance_kl_per_token"], rtol=1e-12)


@pytest.mark.parametrize(
    "lang,L,kind",
    [
        (_sparse_trigram(), 1, "reference"),  # L < n - 1: no context chain
        (_sparse_trigram(), 2, "ngram"),
        (IntervalLanguage(3), 6, "interval"),
        (_sparse_hmm(), 6, "hmm"),
    ],
)
def test_auto_method_picks_the_engine(lang, L, kind):
    assert mc._Engine(lang, L).kind == kind
    assert mc._Engine(lang, L, method="reference").kind == "reference"
    model = lang  # any object with conditional_marginals, passed as a separate model
    assert mc._Engine(lang, L, model=model).kind == "reference"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(num_samples=0), "num_samples"),
        (dict(L=0), "L"),
        (dict(ci_alpha=1.5), "ci_alpha"),
        (dict(rule="linear"), "StepRule"),
        (dict(dependencies=True), "n-gram"),
        (dict(method="gpu"), "method"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, match):
    args = dict(lang=_sparse_hmm(), L=4, rule=schedule("linear", 2), num_samples=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        mc.run_monte_carlo(args.pop("lang"), args.pop("L"), args.pop("rule"), args.pop("num_samples"), **args)


def test_fast_method_refuses_unsupported_language():
    lang = _sparse_trigram()
    with pytest.raises(ValueError, match="no Numba kernel"):
        mc.run_monte_carlo(lang, 1, schedule("linear", 1), 5, method="fast")


def test_cli_sample_json(capsys):
    from mdm_exact.runtime.cli import main

    rc = main(["sample", "--language", "interval-l3", "--length", "9", "--steps", "3", "--samples", "300", "--seed", "1", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "ser",
        "ser_ci",
        "gen_ppl",
        "gen_ppl_ci",
        "mean_log_prob_per_token",
        "nfe_mean",
        "instance_kl_per_token",
        "instance_kl_per_token_ci",
        "seconds",
        "samples_per_second",
        "L",
        "num_steps",
        "num_samples",
        "seed",
    ):
        assert key in out
    assert out["L"] == 9 and out["num_steps"] == 3 and out["seed"] == 1
    rc = main(["sample", "--language", "paper-2gram", "--length", "16", "--rule", "left-to-right", "--samples", "64", "--seed", "2", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ser"] == 0.0 and out["num_steps"] == 16


def test_cli_bad_input(capsys):
    from mdm_exact.runtime.cli import main

    assert main(["sample", "--language", "interval-l3", "--length", "10", "--steps", "3", "--samples", "10", "--json"]) == 2
    assert "multiple of 3" in capsys.readouterr().err


def test_z_quantile_sanity():
    # the calibration constant used above: 1e-6 two-sided is about 4.9 standard errors
    assert 4.8 < normal_quantile(ALPHA) < 5.0
    lo, hi = clopper_pearson(0, 10, 0.05)
    assert lo == 0.0 and hi < 0.31


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["paper-hmm", "paper-3gram", "paper-4gram", "interval-l4"])
@pytest.mark.parametrize("N", [8, 64, 512])
def test_kernel_matches_reference_at_paper_scale(preset, N):
    """L = 512: the kernels' message caching draws exactly the reference's samples."""
    from mdm_exact.languages import load_language

    lang = load_language(preset)
    a = mc.sample_idealised(lang, 512, schedule("linear", N), 6, rng=N)
    b = mc.sample_idealised(lang, 512, schedule("linear", N), 6, rng=N, method="reference")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[3], b[3])
    np.testing.assert_allclose(a[2], b[2], rtol=1e-10, atol=1e-10)


def test_sample_path_does_not_import_scipy_stats():
    """``scipy.stats`` costs about 1 s per CLI call to import; the sampler and its intervals
    (``mdm_exact.stats``: ``betaincinv``/``ndtri`` from ``scipy.special``) must not pull it in."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import mdm_exact.sampler.montecarlo, mdm_exact.stats\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
