"""The bounds library (mdm_exact.theory.bounds), as reconstructed in STATEMENTS.md.

Closed forms, brute force against recurrences, hypothesis properties (each bound holds on
random instances satisfying its hypotheses), the known counterexamples (literal Definition
B.5, Jensen step of Lemma C.5) and clear errors when hypotheses fail.
"""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.special import rel_entr

from mdm_exact.theory import bounds as B
from mdm_exact.testing import strategies
from mdm_exact.testing.instances import enumerate_instances
from mdm_exact.testing.languages import copy_chain
from mdm_exact.testing.oracle import ExactInstances, joint_from_language
from mdm_exact.sampler.schedules import schedule
from mdm_exact.theory.separators import instance_dependencies

probs_st = strategies.probability_vectors()


# ----------------------------------------------------------------------------- Lemma C.5 / e_l
@pytest.mark.parametrize("N, l", [(1, 1), (2, 2), (4, 3), (16, 5), (64, 10), (3, 5), (1024, 8)])
def test_c5_uniform_closed_form(N, l):
    """Lemma C.5 with p^(k) = 1/N: P_j = prod_{r<l} (1 - r/N) (STATEMENTS.md §4.D facts)."""
    expected = math.prod(1 - r / N for r in range(1, l))
    assert B.lemma_c5_exact(np.full(N, 1.0 / N), l) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert B.lemma_c5_uniform(N, l) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    exact = B.lemma_c5_exact([Fraction(1, N)] * N, l, exact=True)
    assert exact == math.prod(Fraction(N - r, N) for r in range(1, l))


@given(probs_st, st.integers(1, 6))
def test_elementary_symmetric_matches_brute_force(p, l):
    """F_j = j! e_j(p) by the recurrence equals the sum over j-subsets, and the Fraction path agrees."""
    F = B.elementary_symmetric_scaled(p, l)
    for j in range(l + 1):
        brute = math.factorial(j) * sum(math.prod(c) for c in itertools.combinations(p.tolist(), j))
        assert F[j] == pytest.approx(brute, rel=1e-12, abs=1e-15)
    pf = [Fraction(x) for x in p.tolist()]
    pf[-1] = 1 - sum(pf[:-1])  # exactly normalised
    assume(pf[-1] >= 0)
    Fx = B.elementary_symmetric_scaled(pf, l, exact=True)
    assert float(Fx[l]) == pytest.approx(F[l], rel=1e-12, abs=1e-14)


@given(probs_st, st.integers(2, 10))
def test_c5_chain_holds(p, l):
    """Lemma C.5: exact P_j <= sum p_i (1-p_i)^(l-1) and P_j <= (1 - 1/N)^(l-1) for every schedule."""
    ex = B.lemma_c5_exact(p, l)
    assert 0.0 <= ex <= B.lemma_c5_intermediate(p, l) + 1e-12
    assert ex <= B.lemma_c5_bound(p.size, l) + 1e-12


def test_c5_exact_is_a_probability_of_distinct_steps():
    """P_j equals the brute-force probability that l positions land in pairwise different steps."""
    p = np.array([0.1, 0.2, 0.3, 0.4])
    for l in (2, 3, 4):
        brute = sum(
            math.prod(p[list(a)]) for a in itertools.product(range(4), repeat=l) if len(set(a)) == l
        )
        assert B.lemma_c5_exact(p, l) == pytest.approx(brute, rel=1e-12)


def test_c5_jensen_step_fails_for_few_steps():
    """Finding (STATEMENTS.md §7.3): the Jensen step sum f(p_i) <= N f(1/N) fails for N < l,
    e.g. l = 5, N = 2, p = (0.2, 0.8): 0.0832 > 0.0625, while the final bound survives (P_j = 0)."""
    p = np.array([0.2, 0.8])
    assert B.lemma_c5_intermediate(p, 5) == pytest.approx(0.2 * 0.8**4 + 0.8 * 0.2**4, rel=1e-12)
    assert B.lemma_c5_intermediate(p, 5) > B.lemma_c5_bound(2, 5) == 0.0625
    assert B.lemma_c5_exact(p, 5) == 0.0


# ----------------------------------------------------------------------------- Lemma A.1
@st.composite
def joint_and_product(draw):
    k = draw(st.integers(1, 3))
    V = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    conc = draw(st.sampled_from([0.05, 0.5, 2.0]))
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.full(V**k, conc)).reshape((V,) * k)
    ps = [rng.dirichlet(np.full(V, 1.0)) for _ in range(k)]
    return q, ps, k, V


@given(joint_and_product())
def test_a1_holds_and_identity(case):
    """Lemma A.1: KL(q || prod p_i) <= (k-1) log V + sum KL(q_i || p_i) <= (k-1) log V + k delta;
    and the exact identity KL = TC + sum KL_i (STATEMENTS.md §4.B)."""
    q, ps, k, V = case
    prod = ps[0]
    for pi in ps[1:]:
        prod = np.multiply.outer(prod, pi)
    kl = rel_entr(q, prod).sum()
    marg = [q.sum(axis=tuple(a for a in range(k) if a != i)) for i in range(k)]
    kli = [rel_entr(m, pi).sum() for m, pi in zip(marg, ps)]
    H = -np.sum(rel_entr(q, np.ones_like(q)))  # H(q) = -sum q log q
    tc = sum(-np.sum(rel_entr(m, np.ones_like(m))) for m in marg) - H
    assert kl == pytest.approx(tc + sum(kli), rel=1e-12, abs=1e-13)
    assert kl <= B.lemma_a1_bound(k, V, kli) + 1e-12
    assert B.lemma_a1_bound(k, V, kli) <= B.lemma_a1_bound(k, V, delta=max(kli)) + 1e-12


@pytest.mark.parametrize("k, V", [(2, 2), (3, 3), (4, 5)])
def test_a1_tight_case(k, V):
    """k copies of one uniform symbol against uniform marginals attain (k-1) log V exactly."""
    q = np.zeros((V,) * k)
    for v in range(V):
        q[(v,) * k] = 1.0 / V
    kl = rel_entr(q, np.full_like(q, float(V) ** -k)).sum()
    assert kl == pytest.approx(B.lemma_a1_bound(k, V), rel=1e-12)
    assert B.lemma_a1_bound(k, V) == pytest.approx((k - 1) * math.log(V), rel=1e-15)


# ----------------------------------------------------------------------------- Lemma B.8 / B.9
def test_b8_literal_reading_counterexample():
    """STATEMENTS.md §7.2: copy chain (stay = 1 - a, a = 1e-3), L = 5, N = 1. One step draws every
    position from its (uniform) marginal, so p_tau is uniform and
    KL(q || p_tau) = L log 2 - H(q) = 5 log 2 - (log 2 + 4 h(a)) = 4 log 2 - 4 h(a) = 2.7400...,
    h the binary entropy in nats. That exceeds log 2, the literal Definition B.5 bound (one
    interval touched), while the corrected bound 4 log 2 holds."""
    L, a = 5, 1e-3
    lang = copy_chain(2, 1 - a)
    eng = ExactInstances(joint_from_language(lang, L), 2, L)
    steps = np.zeros((1, L), dtype=np.int64)
    kl = eng.kl_from(eng.log_p_tau(steps))[0]
    h = -(a * math.log(a) + (1 - a) * math.log1p(-a))
    assert kl == pytest.approx(4 * math.log(2) - 4 * h, rel=1e-12)
    _, D_lit = instance_dependencies(steps[0], 2, reading="literal")
    _, D_cor = instance_dependencies(steps[0], 2, reading="corrected")
    assert B.lemma_b8_bound(D_lit.sum(), L, 2, eng.epsilon_learning) == pytest.approx(math.log(2), rel=1e-15)
    assert kl > B.lemma_b8_bound(D_lit.sum(), L, 2, eng.epsilon_learning)
    assert B.lemma_b8_bound(D_cor.sum(), L, 2, eng.epsilon_learning) == pytest.approx(4 * math.log(2), rel=1e-15)
    assert kl <= B.lemma_b8_bound(D_cor.sum(), L, 2, eng.epsilon_learning)


@given(strategies.ngram_instances())
def test_b3_b8_hold_on_random_instances(case):
    """Lemma B.3 (chain rule, an identity) and Lemma B.8 (corrected D) on random n-gram instances."""
    lang, n, L, eta, steps = case
    eng = ExactInstances(joint_from_language(lang, L), 2, L, model=eta or None)
    kl = eng.kl_from(eng.log_p_tau(steps))
    _, D = instance_dependencies(steps, n)
    for r in range(steps.shape[0]):
        assert B.lemma_b3_identity(eng.step_kls(steps[r])) == pytest.approx(kl[r], rel=1e-12, abs=1e-13)
        assert kl[r] <= B.lemma_b8_bound(D[r].sum(), L, 2, eng.epsilon_learning) + 1e-12


def test_mixture_model_epsilon_learning():
    """The mixture model's measured epsilon_learning is at most -log(1 - eta) (Assumption 4.1)."""
    lang = copy_chain(2, 1 - 1e-3)
    eng = ExactInstances(joint_from_language(lang, 4), 2, 4, model=0.1)
    assert 0 < eng.epsilon_learning <= -math.log(0.9) + 1e-15


# ----------------------------------------------------------------------------- B.10 - B.12
def test_b10_values():
    """Lemma B.10 at L = 512, p = 0.01, P = 0.3, n = 3 (STATEMENTS.md §4.C): thresholds 2Lp = 256/25
    and L P^2 / (2 (n - 1)) = 288/25, tail bounds e^{-Lp/3} = e^{-128/75} and
    exp(-L P^2 / (8 (n - 1))) = e^{-72/25} (exact rationals worked out by hand)."""
    new = B.lemma_b10_new_positions_bound(512, 0.01)
    assert new.parts["threshold"] == pytest.approx(256 / 25, rel=1e-15)
    assert new.value == pytest.approx(math.exp(-128 / 75), rel=1e-14)
    sep = B.lemma_b10_separator_bound(512, 0.3, 3)
    assert sep.parts["threshold"] == pytest.approx(288 / 25, rel=1e-14)
    assert sep.value == pytest.approx(math.exp(-72 / 25), rel=1e-14)
    assert sep.to_dict() == {"value": sep.value, "threshold": sep.parts["threshold"]}


def test_b11_cases():
    """Lemma B.11 at L = 2048, p = 1/100, P = 1/10, n = 3 (STATEMENTS.md §4.C), values worked out by
    hand: Lp = 512/25, case 1 = (1024/25 + 3) e^{-512/75}, case 2 = (1024/25) e^{-32/25}
    (L P^2 / 16 = 32/25), case 3 = 16 L p^2 / P^2 = 8192/25."""
    d = B.lemma_b11_bound(2048, 0.01, 0.1, 3)
    assert isinstance(d, B.BoundResult) and list(d.parts) == ["case1", "case2", "case3"]
    assert d.parts["case1"] == pytest.approx((1024 / 25 + 3) * math.exp(-512 / 75), rel=1e-13)
    assert d.parts["case2"] == pytest.approx(1024 / 25 * math.exp(-32 / 25), rel=1e-13)
    assert d.parts["case3"] == pytest.approx(8192 / 25, rel=1e-13)
    assert d.value == pytest.approx(sum(d.parts.values()), rel=1e-15)
    assert d.to_dict() == {"value": d.value, **d.parts}
    with pytest.raises(TypeError):
        d.parts["case1"] = 0.0  # read-only
    assert B.lemma_b11_case3_idealised(5, 10) == pytest.approx(4 / 3, rel=1e-15)  # m(m-1)/(m+s) = 20/15


@pytest.mark.parametrize("n, eps, N", [(2, 0.1, 721), (3, 0.1, 14401), (4, 0.1, 216001)])
def test_b12_schedule_sizes(n, eps, N):
    """STATEMENTS.md §8 check 9: N = 1 + ceil(8 (n-1)(1-eps)/eps^n), independent of L."""
    p = B.lemma_b12_schedule(eps, n)
    assert p.size == N and p[0] == eps and p.sum() == pytest.approx(1.0, abs=1e-12)
    assert p[1] <= eps**n / (8 * (n - 1)) + 1e-15


def test_b12_min_length_and_kl_bound():
    Lmin = B.lemma_b12_min_length(0.1, 2)
    assert Lmin == 8192  # the order of STATEMENTS.md §8 check 9 (8.2e3)
    assert B.lemma_b12_dependency_bound(Lmin, 0.1, 2) <= 0.4 * Lmin < B.lemma_b12_dependency_bound(Lmin // 2, 0.1, 2) * 2
    assert B.lemma_b12_kl_bound(Lmin, 0.1, 2, 8, 0.01) == pytest.approx(0.4 * Lmin * math.log(8) + Lmin * 0.01, rel=1e-13)
    with pytest.raises(ValueError, match="too short"):
        B.lemma_b12_kl_bound(64, 0.1, 2, 8, 0.0)
    assert B.theorem_42_log_ter_bound(1.2, Lmin, 0.1, 2, 8, 0.01) == pytest.approx(1.2 + 0.01 + 0.4 * math.log(8), rel=1e-13)


# ----------------------------------------------------------------------------- C.1, C.2, C.6, C.7, C.9
@given(probs_st, st.integers(1, 5))
def test_c1_exact_and_union_bound(p, L):
    """Lemma C.1: exact collision probability 1 - L! e_L(p) (brute force over N^L) <= union bound."""
    N = p.size
    assume(N**L <= 5000)
    brute = sum(math.prod(p[list(a)]) for a in itertools.product(range(N), repeat=L) if len(set(a)) < L)
    exact = B.lemma_c1_exact(p, L)
    assert exact == pytest.approx(brute, rel=1e-12, abs=1e-14)
    assert exact <= B.lemma_c1_bound(p, L) + 1e-12 <= B.lemma_c1_max_bound(p, L) + 2e-12


def test_c1_num_steps():
    N = B.lemma_c1_num_steps(16, 0.1)
    assert B.lemma_c1_max_bound(np.full(N, 1.0 / N), 16) <= 0.1
    assert B.lemma_c1_max_bound(np.full(N - 1, 1.0 / (N - 1)), 16) > 0.1


def test_c6_and_theorem_44_constants():
    """STATEMENTS.md §4.D Theorem C.9 (= Theorem 4.4) / §8 check 6, closed forms worked out by hand:
    C = p_err (l-1) / (l ln 2) is 1/(5 ln 2) = 0.2885 for p_err = 1/4 and 3/(8 ln 2) = 0.541 for
    15/32 (l = 5); at L = 20, N = 4, p_err = 1/4 the bound is 1 - (1 - (1/4)(1 - (3/4)^4))^4
    = 1 - (849/1024)^4 = 0.527; along N = L/5 the limit is 1 - exp(-(1/4)(4/5)/(1/5)) = 1 - 1/e."""
    assert B.theorem_44_constant(0.25) == pytest.approx(1 / (5 * math.log(2)), rel=1e-15)
    assert B.theorem_44_constant(15 / 32) == pytest.approx(3 / (8 * math.log(2)), rel=1e-15)
    assert round(B.theorem_44_constant(0.25), 4) == 0.2885 and round(B.theorem_44_constant(15 / 32), 3) == 0.541
    assert B.theorem_44_ser_lower_bound(20, 4, 0.25) == pytest.approx(1 - (849 / 1024) ** 4, rel=1e-14)
    assert round(B.theorem_44_ser_lower_bound(20, 4, 0.25), 3) == 0.527
    assert B.theorem_44_asymptotic(0.2, 0.25) == pytest.approx(1 - math.exp(-1), rel=1e-12)
    # the bound increases towards its limit along N = C L
    vals = [B.theorem_44_ser_lower_bound(L, L // 5, 0.25) for L in (20, 100, 1000, 10000)]
    assert all(a < b for a, b in zip(vals, vals[1:])) and vals[-1] < B.theorem_44_asymptotic(0.2, 0.25)


def test_c7_p_err_forms():
    """Example C.7: eps < 1/128 gives p_err >= 15/32 (l1 Pinsker), 1/2 - eps (Pinsker), 9/32 (crude)."""
    assert B.example_c7_p_err(1 / 128, form="pinsker-l1") == pytest.approx(15 / 32, rel=1e-15)
    assert B.example_c7_p_err(1 / 128, form="pinsker") == pytest.approx(0.5 - 1 / 128, rel=1e-15)
    assert B.example_c7_p_err(1 / 128, form="crude") == 9 / 32
    assert B.example_c7_error_probability(0.0, 0.0) == 0.5
    assert B.example_c7_error_probability(0.1, 0.1) == pytest.approx(0.5 - 2 * 0.01, rel=1e-15)  # 1/2 - 2 Delta_a Delta_b


@pytest.mark.parametrize("N", [1, 2, 3, 5])
def test_interval_validity_formula_exact(N):
    """Perfect-model validity of one Example C.7 interval E[2^-K] (K = same-step pairs), Fraction
    recurrence equals the brute-force sum over step assignments."""
    for l in (2, 3, 4):
        p = [Fraction(1, N)] * N
        brute = sum(
            Fraction(1, N**l) * Fraction(1, 2 ** sum(math.comb(a.count(k), 2) for k in range(N)))
            for a in itertools.product(range(N), repeat=l)
        )
        assert B.interval_validity_perfect_model(p, l, exact=True) == brute
        assert B.interval_validity_perfect_model(np.full(N, 1.0 / N), l) == pytest.approx(float(brute), rel=1e-12)


def test_theorem_43_explicit():
    """Theorem 4.3: with eps <= -ln(1 - delta/2)/L and N >= N_{delta/2}, the explicit bound is <= delta."""
    L, delta = 8, 0.1
    N = B.theorem_43_min_num_steps(L, delta)
    eps = B.theorem_43_max_epsilon_learning(L, delta)
    assert N == 560  # ceil(C(8, 2) / (delta / 2)) = ceil(28 / 0.05)
    assert B.theorem_43_ser_bound(L, np.full(N, 1.0 / N), eps) <= delta + 1e-12
    assert B.lemma_c2_bound(L, eps) == pytest.approx(1 - delta / 2, rel=1e-15)


# ----------------------------------------------------------------------------- later results
def test_chen_cong_li_special_cases():
    """One token per step gives 0; one step gives sum_j Z_j (= TC)."""
    Z = np.array([0.0, 0.1, 0.25, 0.3])
    assert B.chen_cong_li_identity([1, 1, 1, 1], Z) == 0.0
    assert B.chen_cong_li_identity([4], Z) == pytest.approx(Z.sum(), rel=1e-15)
    assert B.chen_cong_li_identity([2, 2], Z) == pytest.approx(0.1 + 0.3 - 0.25, rel=1e-14)


def test_li_cai_factor():
    mi = np.full(8, 0.5)
    assert B.li_cai_bound(8, 1, mi) == 0.0
    assert B.li_cai_bound(8, 3, mi, 0.1) == pytest.approx(3 / 8 * 4 + 0.1, rel=1e-15)  # (2^2 - 1)/8 * sum MI + eps


# ----------------------------------------------------------------------------- hypotheses checked
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: B.lemma_a1_bound(0, 2), "k: expected an integer >= 1"),
        (lambda: B.lemma_a1_bound(2, 2, [0.1]), "expected 2 values"),
        (lambda: B.lemma_a1_bound(2, 2, [0.1, -0.5]), "KL divergences >= 0"),
        (lambda: B.lemma_a1_bound(2, 2, [0.1, 0.1], delta=0.1), "not both"),
        (lambda: B.lemma_b8_bound(1, 4, 2, -0.1), "epsilon_learning"),
        (lambda: B.lemma_b10_separator_bound(5, 0.3, 3), r"\(n - 1\) \| L"),
        (lambda: B.lemma_b10_new_positions_bound(8, 1.5), "p: expected p <= 1"),
        (lambda: B.lemma_b11_bound(8, 0.8, 0.3, 3), "exceeds 1"),
        (lambda: B.lemma_b11_bound(8, 0.1, 0.0, 3), "k >= 2"),
        (lambda: B.lemma_b12_schedule(1.5, 2), "epsilon"),
        (lambda: B.lemma_c1_bound([0.5, 0.6], 3), "sum to 1"),
        (lambda: B.lemma_c5_exact([np.nan, 1.0], 2), "finite"),
        (lambda: B.lemma_c6_ser_lower_bound(7, 3, 4, 0.5), "multiple of l"),
        (lambda: B.lemma_c6_ser_lower_bound(6, 3, 4, 1.5), "p_err"),
        (lambda: B.theorem_44_ser_lower_bound(10, 4, 0.25, epsilon_learning=0.01), "1/128"),
        (lambda: B.example_c7_p_err(0.1, form="crude"), "eps <= 1/32"),
        (lambda: B.example_c7_p_err(0.1, form="other"), "form"),
        (lambda: B.li_cai_bound(4, 5, [0.1] * 4), "exceeds L"),
        (lambda: B.chen_cong_li_identity([2, 2], [0.0, 0.1]), "sum\\(sizes\\)"),
        (lambda: B.lemma_b2_bound([0.1, 0.2], [0.5, 0.6]), "sum to 1"),
    ],
)
def test_hypotheses_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_schedule_probabilities_feed_bounds():
    """Bounds accept the package's schedules directly (cosine schedule, N = 8)."""
    p = schedule("cosine", 8).p
    assert 0 < B.lemma_c5_exact(p, 3) < B.lemma_c5_bound(8, 3)
    steps, w = enumerate_instances(schedule("linear", 2), 3)
    assert steps.shape == (8, 3) and w.sum() == pytest.approx(1.0, abs=1e-15)


# ----------------------------------------------------------------------------- more properties
@st.composite
def b10_params(draw):
    n = draw(st.integers(2, 4))
    L = (n - 1) * draw(st.integers(1, 120))
    P = draw(st.floats(0.01, 0.99))
    p = draw(st.floats(0.0, 1.0 - P))
    return L, p, P, n


@given(b10_params())
def test_b10_b11_hold_exactly(params):
    """Lemmas B.10 (both Chernoff bounds) and B.11 against exact laws (binomial tail, DP for S_k
    and E[D_k]) for random (L, p, P, n) with (n-1) | L."""
    from scipy.stats import binom

    from mdm_exact.theory.checks.dependency_laws import expected_dependencies, separator_count_pmf

    L, p, P, n = params
    new = B.lemma_b10_new_positions_bound(L, p)
    tail_new = binom.sf(math.ceil(new.parts["threshold"] - 1e-12) - 1, L, p)
    assert tail_new <= new.value + 1e-12
    sep = B.lemma_b10_separator_bound(L, P, n)
    pmf = separator_count_pmf(L, P, n)
    assert pmf[: math.floor(sep.parts["threshold"] + 1e-12) + 1].sum() <= sep.value + 1e-12
    corr, lit = expected_dependencies(L, p, P, n)
    assert corr[0] <= B.lemma_b11_bound(L, p, P, n).value + 1e-12
    assert 0 <= corr[0] <= L * p + 1e-12 and lit[0] <= L * p + 1e-12


@given(st.integers(2, 6), st.integers(1, 40), st.integers(1, 30), st.sampled_from(["linear", "cosine"]))
def test_c6_holds_for_perfect_model(l, N, M, name):
    """Lemma C.6 with p_err = 1/2 (perfect model, Example C.7) against the exact perfect-model SER."""
    p = schedule(name, N).p
    ser = 1 - B.interval_validity_perfect_model(p, l) ** M
    assert ser >= B.lemma_c6_ser_lower_bound(M * l, l, N, 0.5) - 1e-12
    assert ser >= B.lemma_c6_ser_lower_bound(M * l, l, N, 0.5, P_j=B.lemma_c5_exact(p, l)) - 1e-12


@given(strategies.sparse_bigram_cases())
def test_c2_b2_b9_and_theorem_43_hold(case):
    """Lemma C.2 (random one-token-per-step instance), Lemma B.2, Lemma B.9 and Theorem 4.3 on
    random sparse bigrams with mixture models, all exact."""
    lang, V, L, eta, seed = case
    eng = ExactInstances(joint_from_language(lang, L), V, L, model=eta or None)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(L)[None, :]
    acc = 1 - eng.ser_from(eng.log_p_tau(perm))[0]
    assert acc >= B.lemma_c2_bound(L, eng.epsilon_learning) - 1e-12
    rule = schedule("linear", int(rng.integers(1, 4)))
    steps, w = enumerate_instances(rule, L)
    lp = eng.log_p_tau(steps)
    logp = eng.log_output_law(steps, w)
    kl = eng.kl_from(logp)[0]
    assert kl <= B.lemma_b2_bound(eng.kl_from(lp), w) + 1e-12
    _, D = instance_dependencies(steps, 2)
    assert kl <= B.lemma_b9_bound(float(w @ D.sum(axis=1)), L, V, eng.epsilon_learning) + 1e-12
    assert eng.ser_from(logp)[0] <= B.theorem_43_ser_bound(L, rule.p, eng.epsilon_learning) + 1e-12


def test_c5_exact_rational_from_float_schedule():
    """exact=True converts float probabilities exactly: the Fraction result agrees with the float
    recurrence to rounding (cosine schedule, N = 8)."""
    p = schedule("cosine", 8).p
    for l in (2, 3, 5, 8):
        assert float(B.lemma_c5_exact(p, l, exact=True)) == pytest.approx(B.lemma_c5_exact(p, l), rel=1e-13, abs=1e-16)


# ----------------------------------------------------------------------------- SymPy closed forms
@pytest.mark.parametrize("l", [1, 2, 3, 5, 8, 10])
def test_c5_uniform_polynomial_matches_bounds(l):
    """Lemma C.5, uniform schedule (STATEMENTS.md §4.D facts): the SymPy polynomial in x = 1/N,
    derived from the falling factorial N^(l) x^l, equals prod_{r<l} (1 - r x), the exact Fraction
    recurrence of bounds.lemma_c5_exact and the float closed form lemma_c5_uniform (rel 1e-12)."""
    import sympy as sp

    from mdm_exact.theory import symbolic as S

    poly = S.lemma_c5_uniform_polynomial(l)
    assert poly.degree() == l - 1 and poly.as_expr().subs(S.x, 0) == 1
    assert sp.expand(poly.as_expr() - sp.prod([1 - r * S.x for r in range(1, l)])) == 0
    for N in (1, 2, 3, 4, 7, 16, 64, 1024):
        exact = S.lemma_c5_uniform_value(N, l)
        assert Fraction(int(exact.p), int(exact.q)) == B.lemma_c5_exact([Fraction(1, N)] * N, l, exact=True)
        assert B.lemma_c5_uniform(N, l) == pytest.approx(float(exact), rel=1e-12, abs=1e-300)
        assert B.lemma_c5_exact(np.full(N, 1.0 / N), l) == pytest.approx(float(exact), rel=1e-12, abs=1e-300)


def test_theorem_44_closed_forms_by_sympy():
    """Theorem 4.4 (= C.9, STATEMENTS.md §4.D steps 3-4): SymPy's limit of the Lemma C.6 bound
    along N = C L is 1 - exp(-p_err (l-1)/(l C)); solving limit = 1/2 gives
    C = p_err (l-1)/(l ln 2). Both agree with bounds.theorem_44_* to 1e-12."""
    import sympy as sp

    from mdm_exact.theory import symbolic as S

    lim, (C, p) = S.theorem_44_asymptotic_expr(5)
    const, p2 = S.theorem_44_constant_expr(5)
    for c, pe in [(0.2, 0.25), (1.0, 0.5), (0.05, 15 / 32), (3.0, 0.1)]:
        assert B.theorem_44_asymptotic(c, pe) == pytest.approx(float(lim.subs({C: c, p: pe})), rel=1e-12)
        assert B.theorem_44_constant(pe) == pytest.approx(float(const.subs(p2, pe)), rel=1e-12)
    bound, (L, N, pp) = S.lemma_c6_bound_expr(5)
    for Lv, Nv, pe in [(20, 4, 0.25), (100, 20, 0.5), (1000, 3, 0.1)]:
        exact = bound.subs({L: Lv, N: Nv, pp: sp.Rational(pe)})
        assert B.theorem_44_ser_lower_bound(Lv, Nv, pe) == pytest.approx(float(exact), rel=1e-12)


@pytest.mark.parametrize("L, p, P, n", [(2048, "1/100", "1/10", 3), (512, "1/50", "3/10", 2), (999, "1/1000", "1/2", 4)])
def test_b11_cases_match_exact_rationals(L, p, P, n):
    """Lemma B.11 (STATEMENTS.md §4.C): the three cases at rational (p, P) in exact SymPy arithmetic
    equal the float bound to 1e-12."""
    from mdm_exact.theory import symbolic as S

    exact = S.lemma_b11_cases_exact(L, p, P, n)
    d = B.lemma_b11_bound(L, float(Fraction(p)), float(Fraction(P)), n)
    for key in ("case1", "case2", "case3"):
        assert d.parts[key] == pytest.approx(float(exact[key]), rel=1e-12)
    assert d.value == pytest.approx(float(sum(exact.values())), rel=1e-12)


@pytest.mark.parametrize("eps, n", [("1/10", 2), ("1/10", 3), ("1/10", 4), ("3/10", 2), ("1/5", 3), ("1/2", 2)])
def test_b12_schedule_length_exact(eps, n):
    """Lemma B.12 schedule length N = 1 + ceil(8 (n-1)(1-eps)/eps^n) in exact rational arithmetic
    equals the float implementation's (the ceiling is where float rounding could bite)."""
    from mdm_exact.theory import symbolic as S

    assert B.lemma_b12_schedule(float(Fraction(eps)), n).size == S.lemma_b12_num_steps_exact(eps, n)


def test_copy_chain_one_step_kl_symbolic():
    """STATEMENTS.md §7.2: the copy chain's one-step KL(q || p_tau), summed symbolically over
    sequences grouped by their number of switches, simplifies to (L-1)(log 2 - h(a)) and equals the
    brute-force oracle to 1e-12 (L = 5, a = 1e-3: 2.7400)."""
    import sympy as sp

    from mdm_exact.theory import symbolic as S

    L = 5
    expr = S.copy_chain_one_step_kl(L)
    (a,) = expr.free_symbols
    closed = (L - 1) * (sp.log(2) + a * sp.log(a) + (1 - a) * sp.log(1 - a))
    assert sp.simplify(sp.expand_log(expr - closed, force=True)) == 0
    for av in (1e-3, 0.1, 0.5):
        eng = ExactInstances(joint_from_language(copy_chain(2, 1 - av), L), 2, L)
        kl = eng.kl_from(eng.log_p_tau(np.zeros((1, L), dtype=np.int64)))[0]
        assert kl == pytest.approx(float(expr.subs(a, av)), rel=1e-12, abs=1e-14)
