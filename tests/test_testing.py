"""The test-support package ``mdm_exact.testing``: the instance enumerator, the brute-force oracle,
the Fraction oracle, the seeded language generators and the hypothesis strategies.

The oracle is checked against the definitions it implements (STATEMENTS.md §1.7 as
reconstructed; Feng et al. 2025, arXiv:2502.09622v1, Definition B.1) on cases small enough to
do by hand, and against the exact rational oracle; its agreement with the exact engine's DP is
tested in tests/test_enumeration.py and tests/test_checks.py.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from mdm_exact.languages import NGram, all_sequences
from mdm_exact.sampler.schedules import FixedSizes, LeftToRight, RandomOrder, ScheduleSteps, StepRule, schedule
from mdm_exact.testing import strategies
from mdm_exact.testing.instances import enumerate_instances
from mdm_exact.testing.languages import copy_chain, random_language, random_rows, sparse_bigram
from mdm_exact.testing.oracle import ExactInstances, joint_from_language, reference_instance_kl, reference_output_law
from mdm_exact.testing.rational import exact_output_law_rational, rational_joint


# ----------------------------------------------------------------------------- instances
@pytest.mark.parametrize(
    "rule, L, count",
    [(schedule("linear", 3), 4, 81), (ScheduleSteps((0.5, 0.0, 0.5)), 3, 8), (FixedSizes((2, 0, 1)), 3, 3),
     (RandomOrder(), 4, 24), (LeftToRight(), 5, 1)],
    ids=["linear-3", "zero-step", "fixed", "random-order", "left-to-right"],
)
def test_enumerate_instances_counts_and_probabilities(rule, L, count):
    """N^L schedule instances (zero-probability ones dropped), multinomial many fixed-size ones,
    L! orders; probabilities sum to 1 and each is prod_i p^(tau_i) or uniform."""
    steps, w = enumerate_instances(rule, L)
    assert steps.shape == (count, L) and steps.dtype == np.int64
    assert w.sum() == pytest.approx(1.0, abs=1e-15)
    assert len({tuple(r) for r in steps}) == count  # distinct
    if isinstance(rule, ScheduleSteps):
        assert_allclose(w, np.prod(rule.p[steps], axis=1), rtol=1e-14)
    else:
        assert_allclose(w, 1.0 / count, rtol=1e-15)
    if isinstance(rule, FixedSizes):
        assert all(tuple(np.bincount(r, minlength=len(rule.sizes))) == rule.sizes for r in steps)


def test_enumerate_instances_refuses_too_many():
    with pytest.raises(ValueError, match="exceeds 100"):
        enumerate_instances(schedule("linear", 3), 5, max_instances=100)
    with pytest.raises(ValueError, match="exceed 100"):
        enumerate_instances(RandomOrder(), 6, max_instances=100)
    with pytest.raises(TypeError, match="step rule"):
        enumerate_instances("linear", 3)


# ----------------------------------------------------------------------------- oracle
def test_oracle_one_step_by_hand():
    """Copy chain V = 2, L = 2 (q = 1/2 on 00 and 11), one step: both positions from their uniform
    marginals, p = 1/4 everywhere; KL(q || p) = log 2, SER = 1/2; revealing one position per step
    gives back q exactly (chain rule)."""
    lang = copy_chain(2, stay=1.0)
    log_p = reference_output_law(lang, 2, schedule("linear", 1))
    assert_allclose(np.exp(log_p), 0.25, rtol=1e-15)
    eng = ExactInstances(joint_from_language(lang, 2), 2, 2)
    assert eng.kl_from(log_p)[0] == pytest.approx(math.log(2), rel=1e-15)
    assert eng.ser_from(log_p)[0] == pytest.approx(0.5, rel=1e-15)
    with np.errstate(divide="ignore"):
        assert_array_equal(reference_output_law(lang, 2, LeftToRight()), np.log([0.5, 0.0, 0.0, 0.5]))
    total, per_step = reference_instance_kl(lang, 2, schedule("linear", 1))
    assert total == pytest.approx(math.log(2), rel=1e-15) and per_step.shape == (1,)


def test_oracle_per_step_kls_sum_and_pad():
    """Lemma B.3: per-step terms sum to KL(q || p_tau); a rule with an empty step gets a 0 there
    and the per-step vector has rule.num_steps(L) entries."""
    lang = sparse_bigram(3, seed=5)
    eng = ExactInstances(joint_from_language(lang, 3), 3, 3, model=0.2)
    s = np.array([0, 2, 2])
    kl = eng.kl_from(eng.log_p_tau(s[None]))[0]
    parts = eng.step_kls(s, 4)
    assert parts.shape == (4,) and parts[1] == 0.0 and parts[3] == 0.0
    assert parts.sum() == pytest.approx(kl, rel=1e-12)
    total, per_step = reference_instance_kl(lang, 3, FixedSizes((1, 0, 2)))
    assert per_step.shape == (3,) and per_step[1] == 0.0
    assert per_step.sum() == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize("rule", [schedule("linear", 2), FixedSizes((2, 1)), RandomOrder(), LeftToRight()],
                         ids=["linear-2", "fixed", "random-order", "left-to-right"])
def test_oracle_matches_fraction_oracle(rule):
    """Float oracle (sum over instances, conditionals summed out of the joint table) == the
    Fraction oracle (forward recursion in exact rationals) on the same binary-rational parameters."""
    lang = random_language(7, V=2, order=2, zero_frac=0.3)
    joint = rational_joint(lang, 3)
    exact = np.array([float(v) for v in exact_output_law_rational(joint, 2, 3, rule)])
    log_p = reference_output_law(lang, 3, rule)
    assert_array_equal(np.isneginf(log_p), exact == 0)
    fin = exact > 0
    assert_allclose(np.exp(log_p[fin]), exact[fin], rtol=1e-12, atol=1e-15)


def test_oracle_rejects_bad_input():
    with pytest.raises(ValueError, match="expected shape"):
        ExactInstances(np.zeros(5), 2, 3)
    with pytest.raises(ValueError, match="sums to"):
        ExactInstances(np.full(8, math.log(0.1)), 2, 3)
    with pytest.raises(ValueError, match="cells exceed"):
        ExactInstances(np.full(4**12, -12 * math.log(4)), 4, 12)


def test_rational_oracle_rejects_bad_input():
    with pytest.raises(ValueError, match="summing to 1"):
        exact_output_law_rational([Fraction(1, 3)] * 4, 2, 2, schedule("linear", 1))
    with pytest.raises(TypeError, match="NGram or HMM"):
        rational_joint(object(), 2)


# ----------------------------------------------------------------------------- generators
def test_random_rows_have_exact_zeros_and_sum_to_one():
    rows = random_rows(np.random.default_rng(0), (200, 5), 0.5)  # (200, 5)
    assert_allclose(rows.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    assert np.all(rows.max(axis=1) > 0) and 0.3 < np.mean(rows == 0) < 0.5  # about zero_frac, never a whole row
    assert not np.any(random_rows(np.random.default_rng(0), (50, 5), 0.0) == 0)


def test_generators_are_deterministic_and_valid():
    a, b = random_language(3, kind="hmm", V=3, zero_frac=0.3), random_language(3, kind="hmm", V=3, zero_frac=0.3)
    assert_array_equal(a.log_prob(all_sequences(3, 3)), b.log_prob(all_sequences(3, 3)))
    assert copy_chain(3, stay=1.0).conditional.tolist() == np.eye(3).tolist()
    lang = sparse_bigram()
    assert lang.conditional[0, 1] == 0.0 and isinstance(lang, NGram)
    with pytest.raises(ValueError, match="kind"):
        random_language(0, kind="tree")


@settings(max_examples=20, deadline=None)
@given(lang=strategies.languages(), data=st.data())
def test_strategies_draw_valid_languages_and_rules(lang, data):
    """Drawn languages are normalised on V^L; drawn rules are StepRules whose instances enumerate."""
    L = data.draw(st.integers(1, 4))
    q = np.exp(lang.log_prob(all_sequences(lang.vocab_size, L)))
    assert q.sum() == pytest.approx(1.0, abs=1e-12)
    rule = data.draw(strategies.step_rules(L))
    assert isinstance(rule, StepRule)
    _, w = enumerate_instances(rule, L)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=10, deadline=None)
@given(strategies.ngram_instances(), strategies.probability_vectors())
def test_strategies_instances_and_probability_vectors(case, p):
    lang, n, L, eta, steps = case
    assert lang.order == n and n <= L <= 5 and steps.shape == (6, L) and 0 <= eta < 1
    assert p.ndim == 1 and np.all(p >= 0) and p.sum() == pytest.approx(1.0, abs=1e-12)


# ----------------------------------------------------------------------------- optional hypothesis
_BLOCK_HYPOTHESIS = textwrap.dedent(
    """
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "hypothesis" or name.startswith("hypothesis."):
                raise ImportError("hypothesis blocked for this test")
    sys.meta_path.insert(0, _Block())
    """
)


def test_mdm_exact_does_not_need_hypothesis():
    """``import mdm_exact`` (and the oracle) work without hypothesis; the strategies module says
    what to install."""
    code = _BLOCK_HYPOTHESIS + textwrap.dedent(
        """
        import mdm_exact, mdm_exact.testing, mdm_exact.testing.oracle, mdm_exact.testing.languages
        try:
            import mdm_exact.testing.strategies
        except ImportError as exc:
            print("IMPORTERROR", exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "IMPORTERROR mdm_exact.testing.strategies needs hypothesis" in out.stdout
    assert "pip install 'mdm-theory[test]'" in out.stdout
