"""neural.leakage against brute force on tiny languages (issue 14).

Per-context values are exact (rtol 1e-12 against enumeration); the Monte Carlo means over contexts
are compared with the exact expectation over (x, t, mask) by a normal interval at false-fail rate
1e-6 per test.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scipy import integrate  # noqa: E402
from scipy.special import rel_entr  # noqa: E402

from mdm_exact.languages import NGram, all_sequences  # noqa: E402
from mdm_exact.languages.base import brute_force_conditional_marginals  # noqa: E402
from mdm_exact.stats import normal_quantile  # noqa: E402
from neural.leakage import ar_leakage, context_terms, expected_ser_from_leakage, mdm_leakage  # noqa: E402
from neural.model import ModelConfig  # noqa: E402
from neural.oracle import ExactOracle  # noqa: E402

P_FAIL = 1e-6
C = 0.03  # the perturbed model puts mass proportional to C on every token


def _bigram(V=3, seed=0):
    rng = np.random.default_rng(seed)
    cond = rng.dirichlet(np.ones(V), size=V)
    cond[0, 1] = cond[2, 2] = 0.0
    cond /= cond.sum(1, keepdims=True)
    init = np.array([0.5, 0.0, 0.5])
    return NGram(2, init, cond)


def _perturbed(q):
    p = (q + C) / (q + C).sum(-1, keepdims=True)
    return np.log(p)


class PerturbedDenoiser:
    """A deterministic imperfect MDM: p(. | x_R) = normalise(q(. | x_R) + C)."""

    def __init__(self, lang):
        self.lang = lang
        self.vocab_size = lang.vocab_size
        self.mask_id = lang.vocab_size
        self.device = torch.device("cpu")

    def __call__(self, x_t):
        x = x_t.numpy()
        rev = x != self.mask_id
        q = self.lang.conditional_marginals(np.where(rev, x, 0), rev)
        lp = _perturbed(q)
        with np.errstate(divide="ignore"):
            logq = np.log(q)  # revealed rows: one-hot, 0 / -inf (SUBS copy-through)
        return torch.from_numpy(np.where(rev[..., None], logq, lp))


class PerturbedAR(torch.nn.Module):
    """An imperfect AR model with the interface ar_leakage uses: p(. | x_<i) = normalise(q(. | x_<i) + C)."""

    def __init__(self, lang, L):
        super().__init__()
        self.lang = lang
        self.config = ModelConfig(vocab_size=lang.vocab_size, block_size=L, causal=True, n_layer=1, n_head=1, n_embd=2)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inp):
        x = inp[:, 1:].numpy()  # (B, L-1) the tokens x_1..x_{L-1} after BOS
        B, L = inp.shape
        full = np.concatenate([x, np.zeros((B, 1), dtype=np.int64)], axis=1)
        out = np.zeros((B, L, self.lang.vocab_size))
        for i in range(L):
            rev = np.broadcast_to(np.arange(L) < i, (B, L))
            out[:, i] = _perturbed(self.lang.conditional_marginals(full, rev)[:, i])
        return torch.from_numpy(out)


def test_context_terms_against_direct_sums():
    lang = _bigram()
    X = all_sequences(3, 3)
    rev = np.array([[True, False, False]] * X.shape[0])
    q = brute_force_conditional_marginals(lang, X, rev)
    lp = _perturbed(q)
    leak, kl = context_terms(q, lp, ~rev)
    p = np.exp(lp)
    for b, i in itertools.product(range(X.shape[0]), range(3)):
        if rev[b, i]:
            assert leak[b, i] == 0 and kl[b, i] == 0
            continue
        want = sum(p[b, i, v] for v in range(3) if q[b, i, v] == 0)
        np.testing.assert_allclose(leak[b, i], want, rtol=1e-12, atol=0)
        np.testing.assert_allclose(kl[b, i], rel_entr(q[b, i], p[b, i]).sum(), rtol=1e-12, atol=1e-15)
    assert leak.max() > 0  # the language has impossible continuations


def _mask_probability(k, L, eps=1e-3):
    """P(a given set of k masked positions) under the linear schedule, t = eps + (1 - eps) u."""
    return integrate.quad(lambda t: t**k * (1 - t) ** (L - k), eps, 1.0, epsabs=0, epsrel=1e-13)[0] / (1 - eps)


def test_mdm_leakage_mean_matches_exact_expectation():
    lang = _bigram()
    L = 3
    X = all_sequences(3, L)
    qx = np.exp(lang.log_prob(X))
    den = PerturbedDenoiser(lang)
    num = tot = 0.0
    num_kl = 0.0
    for masked in itertools.product([False, True], repeat=L):
        m = np.array(masked)
        k = int(m.sum())
        if k == 0:
            continue
        pm = _mask_probability(k, L)
        rev = np.broadcast_to(~m, X.shape)
        q = brute_force_conditional_marginals(lang, X, rev)
        lp = den(torch.from_numpy(np.where(rev, X, 3))).numpy()
        leak, kl = context_terms(q, lp, ~rev)
        num += pm * np.sum(qx * leak.sum(1) / k)
        num_kl += pm * np.sum(qx * kl.sum(1) / k)
        tot += pm
        if k == L:  # the all-masked context: one context, whatever x is
            all_leak, all_kl, all_p = np.sum(qx * leak.sum(1) / k), np.sum(qx * kl.sum(1) / k), pm
            all_by_pos = leak[0]
    exact_leak, exact_kl = num / tot, num_kl / tot
    r = mdm_leakage(lang, den, L, num_sequences=40000, rng=1, batch_size=4000)
    a = r["all_masked"]  # exact: one forward pass and two integrals
    np.testing.assert_allclose(a["probability"], all_p, rtol=1e-9)
    np.testing.assert_allclose([a["leakage_per_token"], a["kl_per_token"]], [all_leak, all_kl], rtol=1e-12)
    np.testing.assert_allclose(a["leakage_by_position"], all_by_pos, rtol=1e-12)
    np.testing.assert_allclose(a["leakage_contribution"], all_p * all_leak / tot, rtol=1e-9)
    assert a["leakage_max"] == max(all_by_pos) > 0
    z = normal_quantile(P_FAIL)
    se = (r["leakage_ci"][1] - r["leakage_per_token"]) / normal_quantile(0.05)
    assert abs(r["leakage_per_token"] - exact_leak) <= z * se
    se_kl = (r["kl_ci"][1] - r["kl_per_token"]) / normal_quantile(0.05)
    assert abs(r["kl_per_token"] - exact_kl) <= z * se_kl
    assert exact_leak > 1e-3


def test_ar_leakage_matches_exact_expectation():
    lang = _bigram()
    L = 3
    X = all_sequences(3, L)
    qx = np.exp(lang.log_prob(X))
    net = PerturbedAR(lang, L)
    want_leak = want_kl = 0.0
    for i in range(L):
        rev = np.broadcast_to(np.arange(L) < i, X.shape)
        q = brute_force_conditional_marginals(lang, X, rev)[:, i]
        lp = _perturbed(q)
        leak, kl = context_terms(q[:, None], lp[:, None], np.ones((X.shape[0], 1), bool))
        want_leak += np.sum(qx * leak[:, 0]) / L
        want_kl += np.sum(qx * kl[:, 0]) / L
    # exact on a fixed set: every sequence once, weighted by hand
    r = ar_leakage(lang, net, L, data=X[qx > 0], rng=0)
    assert r["num_tokens"] == (qx > 0).sum() * L
    # Monte Carlo over fresh held-out sequences
    r = ar_leakage(lang, net, L, num_sequences=30000, rng=2, batch_size=3000)
    z = normal_quantile(P_FAIL)
    se = (r["leakage_ci"][1] - r["leakage_per_token"]) / normal_quantile(0.05)
    assert abs(r["leakage_per_token"] - want_leak) <= z * se
    se_kl = (r["kl_ci"][1] - r["kl_per_token"]) / normal_quantile(0.05)
    assert abs(r["kl_per_token"] - want_kl) <= z * se_kl
    # random subsets of positions estimate the same mean
    r2 = ar_leakage(lang, net, L, num_sequences=30000, positions_per_sequence=1, rng=3, batch_size=3000)
    se2 = (r2["leakage_ci"][1] - r2["leakage_per_token"]) / normal_quantile(0.05)
    assert abs(r2["leakage_per_token"] - want_leak) <= z * se2


def test_exact_oracle_has_zero_leakage_and_kl():
    lang = _bigram()

    class D:
        vocab_size, mask_id, device = 3, 3, torch.device("cpu")

        def __call__(self, x_t):
            return ExactOracle(lang)(x_t)

    r = mdm_leakage(lang, D(), 6, num_sequences=200, rng=0)
    assert r["leakage_per_token"] == 0.0 and r["leakage_max"] == 0.0 and r["kl_max"] == 0.0


def test_expected_ser_from_leakage():
    assert expected_ser_from_leakage(0.0, 512) == 0.0
    np.testing.assert_allclose(expected_ser_from_leakage(1e-4, 512), 1 - (1 - 1e-4) ** 512, rtol=1e-12)


def test_mdm_leakage_by_mask_fraction_matches_exact_expectation():
    """Each bin's means against the exact expectation given that bin (masks enumerated, x enumerated).

    With L = 4 and 4 bins a context with k masked positions goes to bin min(k, 3): bin 0 is empty
    (k = 0 has no masked token), bins 1 and 2 hold k = 1 and 2, bin 3 holds k = 3 and 4.
    """
    lang = _bigram()
    L, bins = 4, 4
    X = all_sequences(3, L)
    qx = np.exp(lang.log_prob(X))
    den = PerturbedDenoiser(lang)
    num = {j: np.zeros(3) for j in range(bins)}  # leak, kl, entropy
    tot = np.zeros(bins)
    for masked in itertools.product([False, True], repeat=L):
        m = np.array(masked)
        k = int(m.sum())
        if k == 0:
            continue
        j = min(k * bins // L, bins - 1)
        pm = _mask_probability(k, L)
        rev = np.broadcast_to(~m, X.shape)
        q = brute_force_conditional_marginals(lang, X, rev)
        lp = den(torch.from_numpy(np.where(rev, X, 3))).numpy()
        leak, kl = context_terms(q, lp, ~rev)
        ent = np.where(~rev, -np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0).sum(-1), 0.0)
        num[j] += pm * np.array([np.sum(qx * leak.sum(1) / k), np.sum(qx * kl.sum(1) / k), np.sum(qx * ent.sum(1) / k)])
        tot[j] += pm
    r = mdm_leakage(lang, den, L, num_sequences=40000, rng=4, batch_size=4000, bins=bins)
    rows = r["by_mask_fraction"]
    assert [row["mask_fraction"] for row in rows] == [[0.0, 0.25], [0.25, 0.5], [0.5, 0.75], [0.75, 1.0]]
    assert rows[0]["num_contexts"] == 0 and "kl_per_token" not in rows[0]
    z = normal_quantile(P_FAIL)
    for j in (1, 2, 3):
        want = num[j] / tot[j]
        row = rows[j]
        for name, w in zip(("leakage", "kl", "entropy"), want):
            se = (row[f"{name}_ci"][1] - row[f"{name}_per_token"]) / normal_quantile(0.05)
            assert abs(row[f"{name}_per_token"] - w) <= z * se, (j, name, row[f"{name}_per_token"], w)
        assert row["kl_over_entropy"] == pytest.approx(row["kl_per_token"] / row["entropy_per_token"], rel=1e-15)
    assert num[3][0] / tot[3] > 1e-3  # the perturbation leaks in the top bin too


def test_mdm_leakage_bins_partition_the_contexts():
    """The rows split the contexts: their counts add up and their context-weighted means give the totals."""
    lang = _bigram()
    r = mdm_leakage(lang, PerturbedDenoiser(lang), 7, num_sequences=300, rng=5, bins=3)
    rows = [row for row in r["by_mask_fraction"] if row["num_contexts"]]
    n = np.array([row["num_contexts"] for row in rows])
    assert n.sum() == r["num_contexts"] and sum(row["num_tokens"] for row in rows) == r["num_tokens"]
    for key in ("kl_per_token", "leakage_per_token"):
        np.testing.assert_allclose((n * np.array([row[key] for row in rows])).sum() / n.sum(), r[key], rtol=1e-12)
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        mdm_leakage(lang, PerturbedDenoiser(lang), 7, num_sequences=10, rng=5, bins=0)


def test_exact_oracle_has_zero_kl_in_every_bin():
    lang = _bigram()
    r = mdm_leakage(lang, ExactOracle(lang), 6, num_sequences=200, rng=0)
    rows = [row for row in r["by_mask_fraction"] if row["num_contexts"]]
    assert len(rows) >= 5
    assert all(row["kl_per_token"] == 0.0 and row["leakage_per_token"] == 0.0 for row in rows)


def test_expected_ser_from_profile_closed_forms():
    from neural.leakage import expected_ser_from_profile

    flat = [{"num_contexts": 3, "leakage_per_token": 1e-3} for _ in range(10)]
    for N in (1, 7, 64, 2048):  # the same leakage everywhere: 1 - (1 - leak)^L whatever the steps
        np.testing.assert_allclose(expected_ser_from_profile(flat, 64, N), expected_ser_from_leakage(1e-3, 64),
                                   rtol=1e-12)
    a, b = 0.01, 0.2
    rows = [{"num_contexts": 5, "leakage_per_token": a}, {"num_contexts": 5, "leakage_per_token": b}]
    # L = 8, N = 4: masked fractions 1, 3/4, 1/2, 1/4 before the steps -> bins 1, 1, 1, 0; 2 tokens a step
    want = 1 - (1 - b) ** 6 * (1 - a) ** 2
    np.testing.assert_allclose(expected_ser_from_profile(rows, 8, 4), want, rtol=1e-12)
    np.testing.assert_allclose(expected_ser_from_profile(rows, 8, 4, ideal_ser=0.1), 1 - 0.9 * (1 - want), rtol=1e-12)
    # an empty bin takes its nearest filled neighbour's leakage (the lower one on a tie)
    gap = [{"num_contexts": 5, "leakage_per_token": a}, {"num_contexts": 0}, {"num_contexts": 5, "leakage_per_token": b}]
    # L = 3, N = 3: fractions 1, 2/3, 1/3 -> bins 2, 2, 1 (the empty one, filled with a): one token each
    np.testing.assert_allclose(expected_ser_from_profile(gap, 3, 3), 1 - (1 - b) ** 2 * (1 - a), rtol=1e-12)
    assert expected_ser_from_profile([{"num_contexts": 1, "leakage_per_token": 1.0}], 4, 2) == 1.0
    assert expected_ser_from_profile(flat, 64, 8, ideal_ser=1.0) == 1.0
    for bad, kw, match in ((flat, {"num_steps": 0}, "num_steps"), (flat, {"num_steps": 8, "ideal_ser": 1.5}, "ideal_ser"),
                           ([{"num_contexts": 0}], {"num_steps": 8}, "no bin holds a context")):
        with pytest.raises(ValueError, match=match):
            expected_ser_from_profile(bad, 8, **kw)


def test_one_context_has_no_interval_and_strict_json():
    """With a single context there is no interval: None, never [0, inf] (``Infinity`` is not JSON)."""
    import json

    lang = _bigram()
    r = mdm_leakage(lang, PerturbedDenoiser(lang), 6, data=lang.sample(1, 6, rng=np.random.default_rng(0)), rng=9)
    assert r["num_contexts"] == 1 and r["kl_ci"] is None and r["leakage_ci"] is None
    json.dumps(r, allow_nan=False)  # raises on inf / nan
    r = mdm_leakage(lang, PerturbedDenoiser(lang), 6, num_sequences=50, rng=9)
    assert r["kl_ci"][0] <= r["kl_per_token"] <= r["kl_ci"][1]
    json.dumps(r, allow_nan=False)


def test_no_masked_position_is_a_clear_error():
    """Contexts with nothing masked (here: a schedule that never masks) give one clear error, not a NaN."""
    from unittest import mock

    lang = _bigram()
    x = lang.sample(2, 3, rng=np.random.default_rng(0))
    with mock.patch("neural.leakage.alpha", lambda name, t: np.ones_like(t)):  # alpha_t = 1: nothing masked
        with pytest.raises(ValueError, match="none of the 2 contexts has a masked position"):
            mdm_leakage(lang, PerturbedDenoiser(lang), 3, data=x, rng=0)


def test_mdm_pattern_kl_is_the_average_of_brute_force_terms_over_the_data():
    """On every sequence of a tiny language, each pattern's KL, leakage and entropy per masked token
    are the plain averages of the enumerated per-context values (rtol 1e-12), and the exact oracle
    scores 0 on all of them."""
    from neural.leakage import mdm_pattern_kl, standard_patterns

    lang, L = _bigram(), 5
    X = all_sequences(3, L)
    pats = standard_patterns(L)
    assert [int(p.sum()) for p in pats.values()] == [1, 2, 2, 1]
    got = mdm_pattern_kl(lang, PerturbedDenoiser(lang), L, data=X, batch_size=7)
    for name, pat in pats.items():
        masked = np.broadcast_to(pat, X.shape)
        q = brute_force_conditional_marginals(lang, X, ~masked)
        p = np.exp(_perturbed(q))
        k = pat.sum()
        kl = np.array([rel_entr(q[b, pat], p[b, pat]).sum() / k for b in range(len(X))])
        leak = np.array([np.where(q[b, pat] == 0, p[b, pat], 0).sum() / k for b in range(len(X))])
        ent = np.array([-(q[b, pat] * np.log(np.where(q[b, pat] > 0, q[b, pat], 1))).sum() / k for b in range(len(X))])
        row = got[name]
        np.testing.assert_allclose(row["kl_per_token"], kl.mean(), rtol=1e-12)
        np.testing.assert_allclose(row["leakage_per_token"], leak.mean(), rtol=1e-12)
        np.testing.assert_allclose(row["entropy_per_token"], ent.mean(), rtol=1e-12)
        np.testing.assert_allclose(row["kl_over_entropy"], kl.mean() / ent.mean(), rtol=1e-12)
        assert row["masked_positions"] == k and row["num_sequences"] == len(X)
    assert min(r["leakage_per_token"] for r in got.values()) > 0  # the language has impossible tokens there
    exact = mdm_pattern_kl(lang, ExactOracle(lang), L, data=X)
    assert all(r["kl_per_token"] == 0 and r["leakage_per_token"] == 0 for r in exact.values())
    with pytest.raises(ValueError, match="must be an"):
        mdm_pattern_kl(lang, ExactOracle(lang), L, {"none": np.zeros(L, bool)}, data=X)
    with pytest.raises(ValueError, match="L >= 4"):
        standard_patterns(3)
