"""The regression suite (mdm_exact.theory.checks) and ``mdm-theory check``.

The exact measured sides are tested against brute force (all reveal patterns, all sequences),
against the exact engine of mdm_exact.sampler.exact, and against a calibrated Monte Carlo of
draw_steps + separators.
"""

import itertools
import json
import math

import numpy as np
import pytest

from mdm_exact.languages import HMM, load_language
from mdm_exact.runtime.cli import main
from mdm_exact.sampler import exact as enumeration
from mdm_exact.sampler.models import PerturbedModel
from mdm_exact.sampler.schedules import FixedSizes, RandomOrder, draw_steps, schedule
from mdm_exact.stats import clopper_pearson
from mdm_exact.testing.instances import enumerate_instances
from mdm_exact.testing.oracle import ExactInstances, joint_from_language
from mdm_exact.theory import bounds as B
from mdm_exact.theory import checks as C
from mdm_exact.theory.checks import records as check_records
from mdm_exact.theory.checks import zoo
from mdm_exact.theory.separators import instance_dependencies, separators_and_dependencies
from mdm_exact.stats import normal_quantile


@pytest.mark.parametrize("L, n, P", [(1, 2, 0.3), (6, 2, 0.5), (9, 3, 0.4), (10, 4, 0.7), (8, 3, 1.0), (7, 3, 0.0)])
def test_separator_pmf_brute_force(L, n, P):
    """Exact law of S_k (Definition B.4) from the DP equals the sum over all 2^L reveal patterns."""
    pmf = C.separator_count_pmf(L, P, n)
    brute = np.zeros_like(pmf)
    for bits in itertools.product([False, True], repeat=L):
        before = np.array(bits)
        S, _ = separators_and_dependencies(before, np.zeros(L, bool), n)
        brute[S] += P ** before.sum() * (1 - P) ** (L - before.sum())
    np.testing.assert_allclose(pmf, brute, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("L, n, P, p", [(1, 2, 0.3, 0.5), (5, 2, 0.3, 0.4), (6, 3, 0.5, 0.3), (7, 4, 0.6, 0.2), (6, 3, 0.0, 1.0)])
def test_expected_dependencies_brute_force(L, n, P, p):
    """Exact E[D_k] (both readings of Definition B.5) equals the sum over all 3^L patterns."""
    corr, lit = C.expected_dependencies(L, p, P, n)
    r = 1 - P - p
    bc = bl = 0.0
    for lab in itertools.product(range(3), repeat=L):
        lab = np.array(lab)
        w = P ** np.sum(lab == 0) * p ** np.sum(lab == 1) * r ** np.sum(lab == 2)
        if w == 0:
            continue
        bc += w * separators_and_dependencies(lab == 0, lab == 1, n)[1]
        bl += w * separators_and_dependencies(lab == 0, lab == 1, n, reading="literal")[1]
    assert corr[0] == pytest.approx(bc, rel=1e-12, abs=1e-14)
    assert lit[0] == pytest.approx(bl, rel=1e-12, abs=1e-14)


def test_expected_dependencies_monte_carlo():
    """E[D_k] per step of a cosine schedule (L = 96, n = 3, N = 6) against draw_steps + separators.

    z-interval per step with false-fail rate 1e-6 overall (Bonferroni over 6 steps); 20000
    instances give a standard error of about 0.5 % of E[D_k], so a 5 % error would be caught.
    """
    L, n, N = 96, 3, 6
    rule = schedule("cosine", N)
    p, P = C.step_distribution_quantities(rule.p)
    exact, _ = C.expected_dependencies(L, p, P, n)
    steps = draw_steps(rule, 20000, L, rng=123)
    _, D = instance_dependencies(steps, n, num_steps=N)
    z = normal_quantile(1e-6 / N)
    mean = D.mean(axis=0)
    se = D.std(axis=0, ddof=1) / math.sqrt(D.shape[0])
    assert np.all(np.abs(mean - exact) <= z * se + 1e-12)
    assert np.all(z * se[exact > 1] < 0.05 * exact[exact > 1])


def test_enumerate_instances_probabilities():
    rule = schedule("cosine", 3)
    steps, w = enumerate_instances(rule, 4)
    assert steps.shape == (81, 4) and w.sum() == pytest.approx(1.0, abs=1e-15)
    k = 17
    assert w[k] == pytest.approx(np.prod(rule.p[steps[k]]), rel=1e-12)  # Pr(tau) = prod (p^(k))^|M_k|
    steps, w = enumerate_instances(FixedSizes((2, 1, 2)), 5)
    assert steps.shape[0] == math.factorial(5) // (2 * 1 * 2)
    steps, w = enumerate_instances(RandomOrder(), 4)
    assert steps.shape[0] == 24 and np.all(np.sort(steps, axis=1) == np.arange(4))


@pytest.mark.parametrize("eta", [0.0, 0.1])
@pytest.mark.parametrize("rule", [schedule("linear", 2), schedule("cosine", 3), FixedSizes((2, 2, 1)), RandomOrder()])
def test_exact_instances_match_enumeration_engine(eta, rule):
    """Brute force over instances (checks.ExactInstances) agrees with the exact engine's DP
    (enumeration.exact_metrics): KL(q||p), E_tau KL(q||p_tau) (Lemma B.2 RHS) and SER."""
    lang = zoo._random_ngram(2, 2, 11, threshold=0.2)
    L = 5
    model = C.MixtureModel(lang, eta) if eta else None
    ref = enumeration.exact_metrics(lang, L, rule, model=model)
    eng = ExactInstances(joint_from_language(lang, L), 2, L, model=eta or None)
    steps, w = enumerate_instances(rule, L)
    lp = eng.log_p_tau(steps)
    logp = eng.log_output_law(steps, w)
    np.testing.assert_allclose(logp, enumeration.exact_output_law(lang, L, rule, model=model), rtol=1e-12, atol=1e-12)
    assert eng.kl_from(logp)[0] == pytest.approx(ref["kl_data_model"], rel=1e-12, abs=1e-14)
    assert float(w @ eng.kl_from(lp)) == pytest.approx(ref["instance_kl_total"], rel=1e-12, abs=1e-14)
    assert eng.ser_from(logp)[0] == pytest.approx(ref["ser"], rel=1e-12, abs=1e-14)


def test_interval_table_matches_language_preset():
    """Example C.7 table built from its definition equals the languages team's interval-l3."""
    lq, V, L = C.interval_language_table(3, 2)
    assert V == 4 and L == 6
    assert np.sum(np.isfinite(lq)) == 2 ** (2 * 3)  # 2^(M binom(l,2)) valid sequences
    lang = load_language("interval-l3")
    ref = joint_from_language(lang, L)
    np.testing.assert_array_equal(np.isfinite(ref), np.isfinite(lq))
    np.testing.assert_allclose(ref[np.isfinite(ref)], lq[np.isfinite(lq)], rtol=1e-12)


@pytest.mark.parametrize("N", [1, 2, 3])
def test_interval_perfect_model_ser_formula_vs_enumeration(N):
    """Perfect-model SER of Example C.7 (l = 3, L = 6) = 1 - E[2^-K]^(L/l), by full enumeration;
    and it is above the Lemma C.6 bound with p_err = 1/2."""
    lq, V, L = C.interval_language_table(3, 2)
    eng = ExactInstances(lq, V, L)
    rule = schedule("linear", N)
    steps, w = enumerate_instances(rule, L)
    ser = eng.ser_from(eng.log_output_law(steps, w))[0]
    formula = 1 - B.interval_validity_perfect_model(rule.p, 3) ** 2
    assert ser == pytest.approx(formula, rel=1e-12, abs=1e-14)
    assert ser >= B.lemma_c6_ser_lower_bound(L, 3, N, 0.5) - 1e-12


def test_c5_exact_monte_carlo():
    """P_j = l! e_l(p) against simulated step assignments (cosine schedule, N = 16, l = 5);
    Clopper-Pearson at false-fail rate 1e-6 with 10^6 intervals: half-width ~0.0024, so a 1 %
    relative error (0.0042) would be caught."""
    rule = schedule("cosine", 16)
    steps = np.sort(draw_steps(rule, 1_000_000, 5, rng=9), axis=1)  # (n, 5)
    distinct = np.all(np.diff(steps, axis=1) > 0, axis=1)  # (n,)
    lo, hi = clopper_pearson(int(distinct.sum()), distinct.size, ci_alpha=1e-6)
    exact = B.lemma_c5_exact(rule.p, 5)
    assert lo <= exact <= hi and (hi - lo) / 2 < 0.01 * exact


@pytest.fixture(scope="module")
def quick_suite():
    records = C.run_checks(quick=True)
    return records, C.summarize(records)


def test_quick_suite_no_violation_of_believed_statements(quick_suite):
    """Every statement believed true holds on the quick grid (the regression suite itself)."""
    records, summary = quick_suite
    bad = [r for r in records if r["believed"] and r["violations"]]
    assert not bad, bad[:3]
    assert C.exit_code(summary) == 0
    names = {row["statement"] for row in summary}
    assert set(C.STATEMENTS) <= names
    for row in summary:
        if row["status"] != "skipped":
            assert row["instances"] > 0


def test_quick_suite_reports_known_findings(quick_suite):
    """The literal Definition B.5 violates B.8/B.9 and the Jensen step of C.5 fails (STATEMENTS.md §7.2, §7.3)."""
    _, summary = quick_suite
    rows = {row["statement"]: row for row in summary}
    assert rows["B.8-literal"]["violations"] > 0 and rows["B.8-literal"]["status"].startswith("finding")
    assert rows["B.9-literal"]["violations"] > 0
    assert rows["C.5-jensen"]["violations"] > 0 and "N < l" in rows["C.5-jensen"]["status"]
    assert rows["B.8"]["violations"] == 0 and rows["B.8"]["status"] == "holds"


def test_status_logic():
    r = check_records._record("X", "i", 1.0, 1.5)
    assert r["status"] == "violated" and r["slack"] == -0.5 and r["ratio"] == 1.5
    assert check_records._record("X", "i", 1.0, 0.5, ci=(0.4, 1.2))["status"] == "inconclusive"
    assert check_records._record("X", "i", 1.0, 1.5, ci=(1.1, 1.9))["status"] == "violated"
    assert check_records._record("X", "i", 1.0, 2.0, direction="lower", ci=(1.5, 2.5))["status"] == "holds"
    assert check_records._record("X", "i", 1.0, 1.0 + 1e-7, direction="equal")["status"] == "violated"
    summary = C.summarize([{**check_records._record("B.8", "i", 1.0, 2.0), "believed": True}])
    assert summary[0]["status"] == "VIOLATED" and C.exit_code(summary) == 1
    summary = C.summarize([{**check_records._record("B.8-literal", "i", 1.0, 2.0), "believed": False}])
    assert summary[0]["status"].startswith("finding") and C.exit_code(summary) == 0


def test_cli_json(capsys):
    assert main(["check", "C.5", "C.5-jensen", "--quick", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["statement"]: r for r in out["summary"]}
    assert rows["C.5"]["violations"] == 0 and rows["C.5-jensen"]["violations"] > 0
    assert out["exit_code"] == 0


def test_cli_table_and_errors(capsys):
    assert main(["check", "B.10", "--quick"]) == 0
    assert "B.10" in capsys.readouterr().out
    assert main(["check", "--list"]) == 0
    assert "B.8-literal" in capsys.readouterr().out
    assert main(["check"]) == 2
    assert main(["check", "no-such-lemma"]) == 2
    assert "unknown statement" in capsys.readouterr().err


@pytest.mark.parametrize("rule", [schedule("linear", 2), RandomOrder()])
def test_exact_instances_with_perturbed_model(rule):
    """ExactInstances with the exact-engine team's PerturbedModel: same epsilon_learning (max over
    contexts with q(x_R) > 0) and the same output law as enumeration.exact_output_law."""
    lang = zoo._random_ngram(2, 2, 11, threshold=0.2)
    L = 4
    model = PerturbedModel(lang, 0.4, rng=3)
    eng = ExactInstances(joint_from_language(lang, L), 2, L, model=model)
    assert eng.epsilon_learning == pytest.approx(model.epsilon_learning(L), rel=1e-12, abs=1e-14)
    assert eng.epsilon_learning > 0
    steps, w = enumerate_instances(rule, L)
    logp = eng.log_output_law(steps, w)
    np.testing.assert_allclose(logp, enumeration.exact_output_law(lang, L, rule, model=model), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "name, L, rule, model, status",
    [
        ("B.2", 4, schedule("linear", 2), None, "holds"),
        ("B.3", 4, schedule("cosine", 3), 0.1, "holds"),
        ("B.8", 5, schedule("linear", 1), None, "holds"),
        ("B.8-literal", 5, schedule("linear", 1), None, "violated"),  # STATEMENTS.md §7.2
        ("B.9", 4, schedule("linear", 2), 0.05, "holds"),
        ("C.2", 4, RandomOrder(), 0.2, "holds"),
        ("4.3", 4, schedule("linear", 16), 0.01, "holds"),
        ("Chen-Cong-Li", 4, FixedSizes((2, 2)), None, "holds"),
        ("Li-Cai", 4, FixedSizes((3, 1)), None, "holds"),
    ],
)
def test_check_instance_exact(name, L, rule, model, status):
    r = C.check_instance(name, C.copy_chain(), L, rule, model=model)
    assert r["statement"] == name and r["status"] == status and r["measured_ci"] is None


def test_check_instance_interval_exact_and_monte_carlo():
    """C.6 exact on interval-l3 and Theorem 4.4 by Monte Carlo on interval-l5 (L = 50, N = 10).

    C.6: perfect model, p_err = 1/2, bound 1 - (1 - (1/2)(1 - (1/2)^2))^(6/3) = 1 - (5/8)^2 = 39/64.
    4.4: Clopper-Pearson interval at miscoverage 1e-6, so the test fails falsely with probability
    at most 1e-6 (a single random event: coverage of the exact perfect-model SER 0.99480; with the
    asserted half-width below 0.006 it also implies the interval lies above the bound 0.848, so no
    Bonferroni split is needed); 5000 samples give a width of about 0.010, so an engine whose SER
    is off by 0.012 or more would fail."""
    r = C.check_instance("C.6", load_language("interval-l3"), 6, schedule("linear", 2))
    assert r["status"] == "holds" and r["bound"] == pytest.approx(39 / 64, rel=1e-15)
    r = C.check_instance("4.4", load_language("interval-l5"), 50, schedule("linear", 10), num_samples=5000, rng=1, alpha=1e-6)
    lo, hi = r["measured_ci"]
    exact = 1 - B.interval_validity_perfect_model(np.full(10, 0.1), 5) ** 10
    assert lo <= exact <= hi
    assert hi - lo < 0.012
    assert r["status"] == "holds" and lo > r["bound"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="B.8", lang="hmm", L=3, rule=schedule("linear", 2)), "n-gram"),
        (dict(name="C.6", lang="chain", L=3, rule=schedule("linear", 2)), "interval"),
        (dict(name="C.2", lang="chain", L=3, rule=schedule("linear", 1)), "one position per step"),
        (dict(name="A.1", lang="chain", L=3, rule=schedule("linear", 1)), "not supported"),
        (dict(name="B.2", lang="chain", L=3, rule=schedule("linear", 1), method="x"), "method"),
        (dict(name="B.2", lang="chain", L=30, rule=schedule("linear", 1), method="exact"), "too large"),
    ],
)
def test_check_instance_errors(kwargs, match):
    langs = {"chain": C.copy_chain(), "hmm": HMM(np.array([0.5, 0.5]), np.eye(2), np.eye(2))}
    kwargs["lang"] = langs[kwargs["lang"]]
    with pytest.raises(ValueError, match=match):
        C.check_instance(**kwargs)


@pytest.mark.parametrize(
    "alias, key",
    [("lemma_c5", "C.5"), ("Theorem 4.4", "4.4"), ("theorem_c9", "4.4"), ("b8-literal", "B.8-literal"),
     ("C.5-jensen", "C.5-jensen"), ("li_cai", "Li-Cai"), ("chen-cong-li", "Chen-Cong-Li"), ("B.13", "4.2")],
)
def test_statement_aliases(alias, key):
    assert C.canonical_name(alias) == key


def test_unknown_alias_is_an_error():
    with pytest.raises(ValueError, match="unknown statement"):
        C.run_checks(["lemma_z9"])
