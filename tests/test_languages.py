"""Languages: fast kernels vs brute force and the NumPy reference, Example C.7 and Note C.8,
the Algorithm 1/2 generators and presets, sampling vs the exact law.

Oracles: ``brute_force_*`` of ``mdm_exact.languages.base`` (sum over completions), explicit
sums over all hidden state paths (HMM), the product formula (n-gram), the NumPy
forward-backward ``_forward_backward.py`` (kernel parity), hmmlearn (independent code).
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats

from mdm_exact.languages import (
    HMM,
    PRESETS,
    IntervalLanguage,
    NGram,
    all_sequences,
    interval_hmm,
    load_language,
    make_preset,
    random_hmm,
    random_ngram,
)
from mdm_exact.languages.base import brute_force_conditional_marginals, brute_force_log_prob_revealed
from mdm_exact.languages.examples import interval_hmm_num_states
from mdm_exact.languages.random import random_rows
from mdm_exact.languages.base import EntropyRate, Language
from mdm_exact.stats import normal_quantile

TOL = dict(rtol=1e-12, atol=1e-12)


def _stochastic(rng, shape, zero_frac=0.4):
    a = rng.random(shape) ** 2
    a[rng.random(shape) < zero_frac] = 0.0
    a[..., 0] += a.sum(axis=-1) == 0
    return a / a.sum(axis=-1, keepdims=True)


def _hmm(rng, S, V, zero_frac=0.4):
    return HMM(_stochastic(rng, S, zero_frac), _stochastic(rng, (S, S), zero_frac), _stochastic(rng, (S, V), zero_frac))


def _ngram(rng, n, V, zero_frac=0.4):
    C = V ** (n - 1)
    return NGram(n, _stochastic(rng, C, zero_frac), _stochastic(rng, (C, V), zero_frac))


def _hmm_log_prob_by_paths(h, X):
    """log q(x) = log sum over all S^L hidden paths of pi A..A B..B (independent oracle)."""
    S, L = h.num_states, X.shape[1]
    out = np.zeros(X.shape[0])
    for path in itertools.product(range(S), repeat=L):
        p = h.initial[path[0]] * h.emission[path[0], X[:, 0]]
        for k in range(1, L):
            p = p * h.transition[path[k - 1], path[k]] * h.emission[path[k], X[:, k]]
        out += p
    with np.errstate(divide="ignore"):
        return np.log(out)


def _check_against_brute_force(lang, L, rng, n_rows=10):
    V = lang.vocab_size
    X = all_sequences(V, L)
    lp = lang.log_prob(X)
    assert_allclose(np.exp(lp).sum(), 1.0, rtol=0, atol=1e-12)
    assert np.array_equal(lang.in_support(X), np.isfinite(lp))
    assert np.all(np.isneginf(lp[~np.isfinite(lp)]))  # exactly -inf outside the support
    x = lang.sample(n_rows, L, rng=rng)
    rev = rng.random((n_rows, L)) < 0.5
    rev[0] = False  # nothing revealed
    rev[1] = True  # everything revealed
    x[2] = rng.integers(0, V, L)  # a probably impossible context, half revealed
    rev[2] = rng.random(L) < 0.6
    bf_lp = brute_force_log_prob_revealed(lang, x, rev)
    fast_lp = lang.log_prob_revealed(x, rev)
    assert np.array_equal(np.isneginf(bf_lp), np.isneginf(fast_lp))
    fin = np.isfinite(bf_lp)
    assert_allclose(fast_lp[fin], bf_lp[fin], **TOL)
    cm = lang.conditional_marginals(x, rev)
    assert_allclose(cm, brute_force_conditional_marginals(lang, x, rev), rtol=0, atol=1e-12)
    assert_allclose(cm.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    return lp


# ------------------------------------------------------------------------ brute force vs fast path
@pytest.mark.parametrize("dense", [True, False], ids=["dense-kernel", "csr-kernel"])
@pytest.mark.parametrize("S,V,L", [(1, 2, 3), (2, 2, 4), (3, 2, 5), (4, 3, 4), (3, 3, 6)])
def test_hmm_matches_brute_force(S, V, L, dense):
    rng = np.random.default_rng(100 * S + 10 * V + L)
    for zero_frac in (0.0, 0.5):
        h = _hmm(rng, S, V, zero_frac)
        h.kernel = "dense" if dense else "csr"
        lp = _check_against_brute_force(h, L, rng)
        X = all_sequences(V, L)
        by_paths = _hmm_log_prob_by_paths(h, X)
        assert np.array_equal(np.isneginf(lp), np.isneginf(by_paths))
        assert_allclose(lp[np.isfinite(lp)], by_paths[np.isfinite(lp)], **TOL)
        assert_allclose(h.log_prob_all(L), lp, **TOL)
        assert h.support_size(L) == np.isfinite(lp).sum()
        assert_allclose(h.entropy(L), -(np.exp(lp[np.isfinite(lp)]) * lp[np.isfinite(lp)]).sum(), **TOL)


@pytest.mark.parametrize("n,V,L", [(2, 2, 5), (2, 3, 4), (3, 2, 6), (3, 3, 4), (4, 2, 6), (4, 2, 2), (3, 2, 1)])
def test_ngram_matches_brute_force(n, V, L):
    rng = np.random.default_rng(100 * n + 10 * V + L)
    for zero_frac in (0.0, 0.5):
        g = _ngram(rng, n, V, zero_frac)
        lp = _check_against_brute_force(g, L, rng)
        # product formula, written out independently
        X = all_sequences(V, L)
        if L >= n - 1:
            direct = np.empty(X.shape[0])
            for i, x in enumerate(X):
                c = int("".join(map(str, x[: n - 1])), V)
                p = g.initial[c]
                for k in range(n - 1, L):
                    c_k = int("".join(map(str, x[k - n + 1 : k])), V)
                    p *= g.conditional[c_k, x[k]]
                direct[i] = p
            assert_allclose(np.exp(lp), direct, rtol=1e-12, atol=0)
        assert g.support_size(L) == np.isfinite(lp).sum()
        assert_allclose(g.entropy(L), -(np.exp(lp[np.isfinite(lp)]) * lp[np.isfinite(lp)]).sum(), **TOL)


@pytest.mark.parametrize("l,L", [(2, 2), (2, 6), (3, 3), (3, 6), (4, 4)])
def test_interval_language_matches_brute_force(l, L):
    rng = np.random.default_rng(l * 10 + L)
    lang = IntervalLanguage(l)
    lp = _check_against_brute_force(lang, L, rng)
    M, pairs = L // l, l * (l - 1) // 2
    assert np.isfinite(lp).sum() == 2 ** (M * pairs) == lang.support_size(L)
    assert_allclose(lp[np.isfinite(lp)], -M * pairs * np.log(2), **TOL)  # uniform on its support
    assert_allclose(lang.entropy(L), M * pairs * np.log(2), **TOL)
    # every token is marginally uniform (Example C.7, consequences)
    x = np.zeros((1, L), dtype=np.int64)
    assert_allclose(lang.conditional_marginals(x, np.zeros((1, L), bool)), 1.0 / lang.vocab_size, rtol=0, atol=1e-15)


def test_interval_pair_bits_are_shared():
    """Example C.7: position a's bit for b equals b's bit for a; a mismatch is impossible."""
    lang = IntervalLanguage(3)  # tokens: 2 bits, partner order (big-endian)
    # positions 0,1,2; token of 0 = (bit01, bit02), of 1 = (bit01, bit12), of 2 = (bit02, bit12)
    ok = np.array([[0b10, 0b11, 0b01]])  # bit01=1, bit02=0, bit12=1
    assert lang.in_support(ok)[0]
    bad = np.array([[0b10, 0b01, 0b01]])  # position 1 says bit01=0
    assert not lang.in_support(bad)[0] and np.isneginf(lang.log_prob(bad)[0])
    rev = np.array([[True, True, False]])
    assert np.isneginf(lang.log_prob_revealed(bad, rev)[0])
    assert_allclose(lang.conditional_marginals(bad, rev)[0, 2], 0.25, rtol=0, atol=0)  # impossible -> uniform
    cm = lang.conditional_marginals(ok, rev)[0, 2]  # bits of position 2 pinned: bit02=0, bit12=1
    assert_allclose(cm, np.eye(4)[0b01], rtol=0, atol=0)
    assert_allclose(lang.log_prob_revealed(ok, rev), [-3 * np.log(2)], **TOL)  # all 3 pair bits pinned
    assert_allclose(lang.log_prob_revealed(ok, [[True, False, False]]), [-2 * np.log(2)], **TOL)


@pytest.mark.parametrize("L", [3, 6])
def test_interval_hmm_defines_the_same_law(L):
    """Note C.8: the HMM form and Example C.7 agree on every sequence (l = 3)."""
    lang, h = IntervalLanguage(3), interval_hmm(3)
    assert h.num_states == interval_hmm_num_states(3) == 20 and h.vocab_size == 4
    X = all_sequences(4, L)
    a, b = lang.log_prob(X), h.log_prob(X)
    assert np.array_equal(np.isneginf(a), np.isneginf(b))
    assert_allclose(b[np.isfinite(a)], a[np.isfinite(a)], **TOL)
    rng = np.random.default_rng(L)
    x = lang.sample(50, L, rng=rng)
    rev = rng.random((50, L)) < 0.5
    x[:5] = rng.integers(0, 4, (5, L))
    assert_allclose(h.conditional_marginals(x, rev), lang.conditional_marginals(x, rev), rtol=0, atol=1e-12)
    la, lb = lang.log_prob_revealed(x, rev), h.log_prob_revealed(x, rev)
    assert np.array_equal(np.isneginf(la), np.isneginf(lb))
    assert_allclose(lb[np.isfinite(la)], la[np.isfinite(la)], **TOL)


def test_interval_hmm_sizes():
    """|S| = sum_s 2^(s l - s(s+1)/2) (Note C.8): 2704 for l = 5; l = 4 built in full."""
    assert interval_hmm_num_states(5) == 16 + 128 + 512 + 1024 + 1024 == 2704
    h = interval_hmm(4)
    assert h.num_states == interval_hmm_num_states(4) == 168 and h.vocab_size == 8
    X = IntervalLanguage(4).sample(200, 8, rng=1)
    assert_allclose(h.log_prob(X), IntervalLanguage(4).log_prob(X), **TOL)


# ------------------------------------------------------------------------ kernel parity
@pytest.mark.parametrize("dense", [True, False], ids=["dense-kernel", "csr-kernel"])
def test_hmm_kernels_match_numpy_reference(dense):
    rng = np.random.default_rng(7)
    for lang in (make_preset("paper-hmm"), make_preset("paper-hmm-t0"), _hmm(rng, 70, 5, 0.6), interval_hmm(3)):
        lang.kernel = "dense" if dense else "csr"
        L = 60
        x = lang.sample(40, L, rng=rng)
        x[:4] = rng.integers(0, lang.vocab_size, (4, L))
        for p_rev in (0.5, 0.05, 0.95):  # 0.05: long masked runs, jumped with A^m
            rev = rng.random((40, L)) < p_rev
            a, b = lang.log_prob_revealed(x, rev), lang._reference_log_prob_revealed(x, rev)
            assert np.array_equal(np.isneginf(a), np.isneginf(b))
            assert_allclose(a[np.isfinite(b)], b[np.isfinite(b)], rtol=1e-12, atol=1e-12)
            assert_allclose(
                lang.conditional_marginals(x, rev), lang._reference_conditional_marginals(x, rev), rtol=0, atol=1e-12
            )


def test_ngram_kernels_match_numpy_reference():
    rng = np.random.default_rng(8)
    for lang in (make_preset("paper-3gram"), make_preset("paper-4gram"), _ngram(rng, 5, 3, 0.5)):
        L = 40
        x = lang.sample(30, L, rng=rng)
        x[:3] = rng.integers(0, lang.vocab_size, (3, L))
        for p_rev in (0.5, 0.1, 0.9):
            rev = rng.random((30, L)) < p_rev
            a, b = lang.log_prob_revealed(x, rev), lang._reference_log_prob_revealed(x, rev)
            assert np.array_equal(np.isneginf(a), np.isneginf(b))
            assert_allclose(a[np.isfinite(b)], b[np.isfinite(b)], rtol=1e-12, atol=1e-12)
            assert_allclose(
                lang.conditional_marginals(x, rev), lang._reference_conditional_marginals(x, rev), rtol=0, atol=1e-12
            )


def test_kernels_do_not_depend_on_thread_count():
    import numba

    lang = make_preset("paper-hmm")
    rng = np.random.default_rng(9)
    x = lang.sample(33, 50, rng=rng)
    rev = rng.random((33, 50)) < 0.5
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = lang.conditional_marginals(x, rev), lang.log_prob_revealed(x, rev), lang.sample(20, 30, rng=5)
        numba.set_num_threads(before)
        b = lang.conditional_marginals(x, rev), lang.log_prob_revealed(x, rev), lang.sample(20, 30, rng=5)
    finally:
        numba.set_num_threads(before)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)


def test_hmm_log_likelihood_matches_hmmlearn():
    """Independent implementation: hmmlearn's CategoricalHMM.score (positive parameters)."""
    from hmmlearn.hmm import CategoricalHMM

    lang = make_preset("paper-hmm-t0")
    model = CategoricalHMM(n_components=lang.num_states, n_features=lang.vocab_size)
    model.startprob_ = lang.initial
    model.transmat_ = lang.transition
    model.emissionprob_ = lang.emission
    X = lang.sample(20, 64, rng=3)
    ours = lang.log_prob(X)
    theirs = np.array([model.score(row[:, None]) for row in X])
    assert_allclose(ours, theirs, rtol=1e-10, atol=0)


# ------------------------------------------------------------------------ properties (hypothesis)
@st.composite
def _small_language(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    zero_frac = draw(st.sampled_from([0.0, 0.3, 0.6]))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        lang = _hmm(rng, draw(st.integers(1, 4)), draw(st.integers(1, 3)), zero_frac)
        lang.kernel = draw(st.sampled_from(["dense", "csr"]))
    else:
        lang = _ngram(rng, draw(st.integers(2, 4)), draw(st.integers(1, 3)), zero_frac)
    L = draw(st.integers(1, 4))
    return lang, L, rng


@settings(max_examples=25)
@given(_small_language())
def test_property_random_languages(case):
    """Chain rule and Bayes: sum_v q(x_i=v, x_R) = q(x_R); q(x_i=v|x_R) q(x_R) = q(x_{R+i})."""
    lang, L, rng = case
    V = lang.vocab_size
    lp = lang.log_prob(all_sequences(V, L))
    assert_allclose(np.exp(lp).sum(), 1.0, rtol=0, atol=1e-12)
    assert lang.support_size(L) == int(np.isfinite(lp).sum())
    x = lang.sample(6, L, rng=rng)
    rev = rng.random((6, L)) < 0.5
    base = lang.log_prob_revealed(x, rev)
    assert np.all(np.isfinite(base))  # samples are possible, so their revealed parts are too
    cm = lang.conditional_marginals(x, rev)
    for i in range(L):
        rev_i = rev.copy()
        rev_i[:, i] = True
        for v in range(V):
            xv = x.copy()
            xv[:, i] = v
            joint = lang.log_prob_revealed(xv, rev_i)
            expect = np.where(rev[:, i], (x[:, i] == v).astype(float), np.exp(joint - base))
            assert_allclose(cm[:, i, v], expect, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------ sampling vs exact law
@pytest.mark.parametrize(
    "name,L",
    [("hmm", 4), ("hmm-sparse", 4), ("ngram3", 5), ("interval-l3", 6), ("interval-hmm-l3", 6), ("paper-2gram", 3)],
)
def test_sampling_matches_exact_law(name, L):
    """Pearson chi-square of 200k exact samples against the exact pmf; reject at p < 1e-6
    (false-fail rate 1e-6 per case). Power: a total-variation error of 1% moved between two
    cells of mass >= 1/64 gives a noncentrality >= 200000 * 1e-4 * 128 = 2560 >> the critical
    value (< 150 for these <= 512 cells), so it would be caught."""
    rng = np.random.default_rng(sum(map(ord, name)))
    if name == "hmm":
        lang = _hmm(rng, 3, 2, 0.0)
    elif name == "hmm-sparse":
        lang = _hmm(rng, 4, 3, 0.5)
        lang.kernel = "csr"
    elif name == "ngram3":
        lang = _ngram(rng, 3, 2, 0.3)
    elif name == "interval-l3":
        lang = IntervalLanguage(3)
    else:
        lang = load_language(name)
    V = lang.vocab_size
    p = np.exp(lang.log_prob(all_sequences(V, L)))
    n = 200_000
    x = lang.sample(n, L, rng=12345)
    idx = (x * V ** np.arange(L - 1, -1, -1)).sum(axis=1)
    counts = np.bincount(idx, minlength=V**L)
    assert counts[p == 0].sum() == 0  # never outside the support
    keep = p > 0
    stat, pval = stats.chisquare(counts[keep], n * p[keep])
    assert pval > 1e-6, (stat, pval)


def test_samples_of_pruned_presets_are_in_support():
    for name in ("paper-2gram", "paper-3gram", "paper-4gram", "paper-hmm", "interval-l5"):
        lang = load_language(name)
        x = lang.sample(2000, 40, rng=1)
        assert lang.in_support(x).all()
        assert np.all(np.isfinite(lang.log_prob(x)))


# ------------------------------------------------------------------------ generators and presets
@pytest.mark.parametrize("reading", ["multiply", "divide"])
def test_random_rows_prune_and_renormalise(reading):
    rng = np.random.default_rng(1)
    rows, pruned = random_rows((500, 8), 3.2, 0.02, reading=reading, rng=rng)
    assert_allclose(rows.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert pruned == int((rows == 0).sum())
    assert np.all((rows == 0) | (rows >= 0.02))  # kept entries only grow by renormalising
    assert np.all((rows > 0).sum(axis=1) >= 1)
    # the same logits unpruned: pruned rows are the renormalised restriction
    raw, none = random_rows((500, 8), 3.2, 0.0, reading=reading, rng=np.random.default_rng(1))
    assert none == 0 and np.all(raw > 0)
    restricted = np.where(rows > 0, raw, 0.0)
    assert_allclose(rows, restricted / restricted.sum(axis=1, keepdims=True), rtol=1e-12, atol=0)
    assert np.array_equal(np.argmax(rows, axis=1), np.argmax(raw, axis=1))  # arg-max never pruned


def test_random_rows_never_prune_a_whole_row():
    rows, pruned = random_rows((200, 16), 0.01, 0.5, rng=np.random.default_rng(2))  # threshold above 1/16
    assert np.all((rows > 0).sum(axis=1) == 1) and pruned == 200 * 15
    assert_allclose(rows.sum(axis=1), 1.0, rtol=0, atol=0)


def test_temperature_readings_differ_as_documented():
    """'multiply' with temperature 3.2 is sharper than 'divide' (more mass on the arg-max)."""
    mul, _ = random_rows((2000, 8), 3.2, 0.0, reading="multiply", rng=np.random.default_rng(3))
    div, _ = random_rows((2000, 8), 3.2, 0.0, reading="divide", rng=np.random.default_rng(3))
    assert mul.max(axis=1).mean() > div.max(axis=1).mean()


def test_table1_presets():
    """STATEMENTS.md §5.2: V = 8; HMM with 32 states; -t0 variants are unpruned, same logits."""
    specs = {"paper-2gram": 2, "paper-3gram": 3, "paper-4gram": 4}
    for name, n in specs.items():
        g, g0 = load_language(name), load_language(name + "-t0")
        assert isinstance(g, NGram) and g.order == n and g.vocab_size == 8
        assert g.conditional.shape == (8 ** (n - 1), 8) and g.initial.shape == (8 ** (n - 1),)
        assert 0 < g.generation["conditional_pruned_fraction"] < 1
        assert g0.generation["conditional_pruned_fraction"] == 0 and np.all(g0.conditional > 0)
        r = np.where(g.conditional > 0, g0.conditional, 0.0)
        assert_allclose(g.conditional, r / r.sum(axis=1, keepdims=True), rtol=1e-12, atol=0)
    h = load_language("paper-hmm")
    assert isinstance(h, HMM) and h.num_states == 32 and h.vocab_size == 8
    assert h.generation["temperature"] == 3.2 and h.generation["threshold"] == 0.003
    assert_allclose(h.generation["transition_pruned_fraction"], np.mean(h.transition == 0), rtol=0, atol=0)
    # fixed default seed: deterministic; another seed gives another language
    assert np.array_equal(load_language("paper-hmm").transition, h.transition)
    assert not np.array_equal(load_language("paper-hmm", seed=1).transition, h.transition)
    assert isinstance(load_language("interval-l5"), IntervalLanguage) and load_language("interval-l5").vocab_size == 16
    assert set(PRESETS) >= {
        "paper-2gram", "paper-3gram", "paper-4gram", "paper-hmm", "paper-2gram-t0", "paper-3gram-t0",
        "paper-4gram-t0", "paper-hmm-t0", "interval-l3", "interval-l4", "interval-l5", "interval-hmm-l3",
    }


def test_generators_validate_parameters():
    with pytest.raises(ValueError, match="temperature"):
        random_hmm(4, 3, 0.0, 0.01, rng=0)
    with pytest.raises(ValueError, match="threshold"):
        random_ngram(2, 3, 1.0, -0.1, rng=0)
    with pytest.raises(ValueError, match="reading"):
        random_ngram(2, 3, 1.0, 0.1, reading="power", rng=0)


# ------------------------------------------------------------------------ entropy rates
def test_ngram_entropy_rate_is_the_limit_of_entropy_increments():
    for name in ("paper-2gram", "paper-3gram", "paper-4gram-t0"):
        g = load_language(name)
        r = g.entropy_rate()
        assert isinstance(r, EntropyRate) and r.converged and r.std_error == 0.0
        assert_allclose(g.entropy(2001) - g.entropy(2000), r.value, rtol=1e-9, atol=0)


def test_ngram_entropy_rate_that_does_not_converge_says_so():
    """A slowly mixing bigram (stay probability 1 - 1e-6): the Cesaro averages over 64 steps are
    still moving after 128 steps, so the result is flagged, with the last block average."""
    eps = 1e-6
    g = NGram(2, [1.0, 0.0], [[1 - eps, eps], [0.5, 0.5]])
    r = g.entropy_rate(max_steps=128)
    assert not r.converged and "NOT converged" in r.method
    h0 = float(-(1 - eps) * np.log(1 - eps) - eps * np.log(eps))
    assert h0 <= r.value < np.log(2)  # between the entropies of the two rows
    done = g.entropy_rate()
    assert done.converged
    # stationary law (1/(1 + 2 eps), 2 eps/(1 + 2 eps)) gives the exact rate
    pi0 = 1 / (1 + 2 * eps)
    assert_allclose(done.value, pi0 * h0 + (1 - pi0) * np.log(2), rtol=1e-9, atol=0)


def test_interval_entropy_rate():
    for l in (3, 4, 5):
        lang = IntervalLanguage(l)
        r = lang.entropy_rate()
        assert r.converged and r.std_error == 0.0
        assert_allclose(r.value, lang.entropy(4 * l) / (4 * l), rtol=1e-15, atol=0)


def test_hmm_entropy_rate_estimate_brackets_exact_per_token_entropy():
    """Mean of -log q(X)/L is unbiased for H(q_L)/L: exact value inside mean +- z SE with
    z for a two-sided false-fail rate of 1e-6; the width (2 z SE < 0.02) is asserted."""
    h = _hmm(np.random.default_rng(4), 3, 2, 0.2)
    r = h.entropy_rate(L=12, num_samples=20000, rng=1)
    z = normal_quantile(1e-6)
    assert isinstance(r, EntropyRate) and r.converged and r.std_error > 0
    assert abs(r.value - h.entropy(12) / 12) < z * r.std_error and 2 * z * r.std_error < 0.02
    assert h.entropy_rate(L=12, num_samples=50, rng=1) == h.entropy_rate(L=12, num_samples=50, rng=np.random.default_rng(1))


def test_every_language_has_one_entropy_rate_shape_and_a_support_size():
    langs = [_hmm(np.random.default_rng(5), 3, 2, 0.2), load_language("paper-2gram"), IntervalLanguage(3)]
    for lang in langs:
        r = lang.entropy_rate(rng=0)
        assert set(r.to_dict()) == {"value", "std_error", "converged", "method"}
        L = 6
        # the subclass DP / closed form agrees with the base class's enumeration
        assert lang.support_size(L) == Language.support_size(lang, L)
    with pytest.raises(NotImplementedError, match="refused above"):
        Language.support_size(load_language("paper-2gram"), 8)


# ------------------------------------------------------------------------ automatic choices
def test_hmm_kernel_auto_picks_dense_or_csr_and_both_agree():
    """``HMM.kernel = "auto"``: the dense kernel for S <= 64 or a transition density >= 10%,
    the CSR kernel otherwise (Note C.8 HMM: l = 3 has 20 states -> dense; l = 4 has 168
    states at 2.4% density -> CSR). Every choice gives the same numbers."""
    small = interval_hmm(3)
    big = interval_hmm(4)
    assert small.num_states <= 64 and small._use_dense()
    S = big.num_states
    assert S > 64 and big._csr()[1].shape[0] < 0.1 * S * S and not big._use_dense()
    rng = np.random.default_rng(7)
    for lang in (small, big):
        L = 8
        x = lang.sample(40, L, rng=rng)  # (40, L)
        rev = rng.random(x.shape) < 0.5  # (40, L)
        out = {}
        for k in ("auto", "dense", "csr"):
            lang.kernel = k
            out[k] = (lang.log_prob_revealed(x, rev), lang.conditional_marginals(x, rev))
        lang.kernel = "auto"
        for k in ("dense", "csr"):
            assert_allclose(out[k][0], out["auto"][0], **TOL)
            assert_allclose(out[k][1], out["auto"][1], **TOL)
    bad = interval_hmm(3)
    bad.kernel = "gpu"
    with pytest.raises(ValueError, match="kernel"):
        bad.log_prob(np.zeros((1, 3), dtype=np.int64))


# ------------------------------------------------------------------------ the inverse-CDF draw
def _weights(rng, n, V, zero_frac):
    w = rng.random((n, V)) ** 3  # (n, V)
    w[rng.random((n, V)) < zero_frac] = 0.0
    w[np.arange(n), rng.integers(0, V, n)] += 1e-300  # rows never all zero
    return w


@pytest.mark.parametrize("V", [1, 2, 7, 40])
def test_inverse_cdf_kernel_equals_numpy_twin(V):
    """THE draw: jitted ``_inverse_cdf`` == ``_draw.inverse_cdf`` bitwise, for probability rows
    (threshold u), unnormalised weights (threshold u * total) and thresholds at and above the
    rounded total (the fallback: last positive weight, never a zero-weight index)."""
    from mdm_exact.languages._draw import inverse_cdf
    from mdm_exact.languages._kernels import _inverse_cdf

    rng = np.random.default_rng(V)
    n = 2000
    w = _weights(rng, n, V, 0.4)  # (n, V)
    tot = np.cumsum(w, axis=1)[:, -1]  # (n,)
    u = rng.random(n)  # (n,)
    u[:50] = 0.0
    for thr in (u, u * tot, tot, tot * (1 + 1e-15), np.nextafter(tot, 0)):
        twin = inverse_cdf(w, thr)  # (n,)
        kern = np.array([_inverse_cdf(w[i], 0, V, thr[i]) for i in range(n)])
        np.testing.assert_array_equal(twin, kern)
        assert np.all(w[np.arange(n), twin] > 0)
    # a shared weight vector (1-d form, searchsorted) gives the same as the row form
    thr = rng.random(300) * tot[0]
    np.testing.assert_array_equal(inverse_cdf(w[0], thr), inverse_cdf(np.broadcast_to(w[0], (300, V)), thr))
    # a slice [lo, hi) of a longer array, as for CSR rows
    lo, hi = 3, 3 + V
    big = np.concatenate([np.ones(3), w[1], np.ones(2)])
    assert _inverse_cdf(big, lo, hi, 0.5 * tot[1]) - lo == inverse_cdf(w[1], np.array([0.5 * tot[1]]))[0]



# ------------------------------------------------------------------------ next-token laws (AR targets)
def _brute_force_next_token_laws(lang, x):
    """``q(x_i = v | x_{<i})`` for every row, position and token, (B, L, V), by the brute-force
    joint (uniform after an impossible prefix), and where it is an exact zero (possible prefix,
    impossible continuation)."""
    B, L = x.shape
    V = lang.vocab_size
    out, zero = np.empty((B, L, V)), np.zeros((B, L, V), dtype=bool)
    for i in range(L):
        base = brute_force_log_prob_revealed(lang, x, np.broadcast_to(np.arange(L) < i, x.shape))
        for v in range(V):
            xv = x.copy()
            xv[:, i] = v
            joint = brute_force_log_prob_revealed(lang, xv, np.broadcast_to(np.arange(L) <= i, x.shape))
            with np.errstate(invalid="ignore"):
                out[:, i, v] = np.where(np.isfinite(base), np.exp(joint - base), 1.0 / V)
            zero[:, i, v] = np.isfinite(base) & ~np.isfinite(joint)
    return out, zero


@settings(max_examples=30)
@given(_small_language())
def test_prefix_conditionals_are_the_brute_force_next_token_laws(case):
    """q(x_i = v | x_{<i}) = q(x_{<i}, x_i = v) / q(x_{<i}) by summing the joint over completions;
    uniform after an impossible prefix; the n-gram/HMM one-pass overrides equal the base
    implementation (one conditional_marginals row per position)."""
    lang, L, rng = case
    V = lang.vocab_size
    x = np.concatenate([lang.sample(4, L, rng=rng), rng.integers(V, size=(4, L))])  # possible and arbitrary rows
    got = lang.prefix_conditionals(x)
    assert got.shape == (8, L, V)
    assert_allclose(got, Language.prefix_conditionals(lang, x), **TOL)
    expect, zero = _brute_force_next_token_laws(lang, x)
    assert_allclose(got, expect, rtol=1e-10, atol=1e-12)
    assert np.array_equal(got == 0, zero)  # exact zeros
    pos = np.sort(rng.integers(L, size=(8, 2)), axis=1)
    assert_allclose(lang.prefix_conditionals(x, pos), np.take_along_axis(got, pos[:, :, None], axis=1), **TOL)


@pytest.mark.parametrize("name", ["paper-3gram", "paper-hmm", "interval-l3"])
def test_prefix_conditionals_of_presets_match_the_base_implementation(name):
    lang = load_language(name)
    x = lang.sample(5, 12, rng=3)
    assert_allclose(lang.prefix_conditionals(x), Language.prefix_conditionals(lang, x), **TOL)


@pytest.mark.parametrize("l", [2, 3, 4])
def test_interval_prefix_conditionals_closed_form_is_the_brute_force_law(l):
    """The interval language's one-pass override against the brute-force next-token law over all
    V^L sequences (possible rows, arbitrary rows with impossible prefixes), and against the base
    implementation at a length where brute force is out of reach."""
    lang = IntervalLanguage(l)
    V, L = lang.vocab_size, (2 * l if l < 4 else l)  # V^L = 16, 4096, 4096 sequences
    rng = np.random.default_rng(l)
    x = np.concatenate([lang.sample(6, L, rng=rng), rng.integers(V, size=(6, L))])  # (12, L)
    got = lang.prefix_conditionals(x)
    expect, zero = _brute_force_next_token_laws(lang, x)
    assert_allclose(got, expect, rtol=1e-12, atol=0)
    assert np.array_equal(got == 0, zero)
    assert not np.all(lang.in_support(x))  # some rows have impossible prefixes
    y = np.concatenate([lang.sample(3, 8 * l, rng=rng), rng.integers(V, size=(3, 8 * l))])
    assert_allclose(lang.prefix_conditionals(y), Language.prefix_conditionals(lang, y), rtol=0, atol=0)
    pos = np.sort(rng.integers(8 * l, size=(6, 3)), axis=1)
    assert_allclose(lang.prefix_conditionals(y, pos), Language.prefix_conditionals(lang, y, pos), rtol=0, atol=0)


def test_prefix_conditionals_refuse_bad_positions():
    lang = load_language("paper-2gram")
    x = lang.sample(2, 6, rng=0)
    with pytest.raises(ValueError, match=r"positions: expected an integer array of shape \(2, K\)"):
        lang.prefix_conditionals(x, np.zeros((3, 1), dtype=int))
    with pytest.raises(ValueError, match=r"positions: expected indices in \[0, 6\)"):
        lang.prefix_conditionals(x, np.full((2, 1), 6))
