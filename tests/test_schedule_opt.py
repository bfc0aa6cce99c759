"""Tests of the best content-blind schedule (``mdm_exact.theory.schedule_opt``).

Kinds: the Chen-Cong-Li identity (arXiv:2511.04647, re-derived) against the exact engine's
Lemma B.2 right-hand side ``instance_kl_total`` for fixed sizes; closed forms (one token per
step gives 0, one step gives the total correlation); the dynamic programme against brute force
over every size vector; the Monte Carlo information curve against the exact one (calibrated,
false-fail rate 1e-6, Bonferroni over the L values).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mdm_exact.languages import NGram, all_sequences, random_hmm
from mdm_exact.sampler import metrics as Mt
from mdm_exact.sampler.exact import exact_metrics
from mdm_exact.sampler.schedules import FixedSizes
from mdm_exact.theory import schedule_opt as SO


def _langs():
    return {
        "hmm": random_hmm(3, 3, 2.0, 0.05, rng=1),
        "bigram0": NGram(2, np.array([0.5, 0.3, 0.2]), np.array([[0.0, 0.6, 0.4], [0.7, 0.0, 0.3], [0.5, 0.5, 0.0]])),
    }


@pytest.mark.parametrize("name", ["hmm", "bigram0"])
@pytest.mark.parametrize("sizes", [(2, 3), (1, 2, 2), (3, 1, 1), (5,), (1, 1, 1, 1, 1), (2, 2, 1)])
def test_identity_matches_instance_kl(name, sizes):
    lang = _langs()[name]
    L = 5
    Z = SO.information_curve_exact(lang, L)
    ref = exact_metrics(lang, L, FixedSizes(sizes))["instance_kl_total"]
    assert SO.schedule_kl(Z, sizes) == pytest.approx(ref, rel=1e-10, abs=1e-13)


@pytest.mark.parametrize("name", ["hmm", "bigram0"])
def test_closed_forms(name):
    lang = _langs()[name]
    L = 5
    Z = SO.information_curve_exact(lang, L)
    assert Z[0] == 0.0
    assert abs(SO.schedule_kl(Z, (1,) * L)) < 1e-15
    tc = Mt.total_correlation(lang.log_prob(all_sequences(lang.vocab_size, L)), lang.vocab_size, L)
    assert SO.schedule_kl(Z, (L,)) == pytest.approx(tc, rel=1e-12)
    assert SO.optimal_sizes(Z, 1) == ((L,), pytest.approx(tc, rel=1e-12))
    assert SO.optimal_sizes(Z, L)[0] == (1,) * L


@pytest.mark.parametrize("seed", range(4))
def test_dp_is_optimal_against_brute_force(seed):
    """On exact curves of random languages and on random non-decreasing curves."""
    rng = np.random.default_rng(seed)
    L = 7
    curves = [SO.information_curve_exact(random_hmm(3, 2, 2.0, 0.0, rng=seed), L),
              np.concatenate([[0.0], np.cumsum(rng.random(L - 1))])]
    for Z in curves:
        for N in range(1, L + 1):
            sizes, kl = SO.optimal_sizes(Z, N)
            bsizes, bkl = SO.brute_force_optimal_sizes(Z, N)
            assert len(sizes) == N and sum(sizes) == L and min(sizes) >= 1
            assert kl == pytest.approx(bkl, rel=1e-12, abs=1e-14)
            assert SO.schedule_kl(Z, sizes) == pytest.approx(kl, rel=1e-12, abs=1e-14)


def test_information_curve_mc_matches_exact():
    lang = random_hmm(3, 3, 2.0, 0.0, rng=3)
    L = 6
    Z = SO.information_curve_exact(lang, L)
    a = 1e-6 / L
    mc = SO.information_curve_mc(lang, L, 8000, rng=9, ci_alpha=a, batch_size=2000)
    assert np.all((mc.lo <= Z) & (Z <= mc.hi))
    assert np.all(mc.hi - mc.lo < 0.07)  # an error of 0.035 in any Z_j (about a third of Z_L) is caught
    w = SO.schedule_weights(L, (3, 3))
    m, lo, hi = mc.linear_ci(w)
    assert lo <= SO.schedule_kl(Z, (3, 3)) <= hi


def test_best_schedule_beats_uniform():
    lang = _langs()["hmm"]
    Z = SO.information_curve_exact(lang, 5)
    r = SO.best_schedule(Z, 2)
    assert r["uniform_sizes"] == [3, 2]
    assert r["optimal_kl"] <= r["uniform_kl"] + 1e-15
    assert r["optimal_kl"] == pytest.approx(SO.brute_force_optimal_sizes(Z, 2)[1], rel=1e-12)


def test_monotone_curve_is_the_isotonic_projection():
    assert_allclose(SO.monotone_curve([0.0, 0.3, 0.1, 0.5, 0.4, 0.4]), [0.0, 0.2, 0.2, 13 / 30, 13 / 30, 13 / 30], rtol=1e-12)
    z = np.array([0.0, 0.1, 0.2])
    assert_allclose(SO.monotone_curve(z), z, rtol=0)


@pytest.mark.parametrize("sizes", [(2, 3, 2), (7,), (1,) * 7, (0, 4, 0, 3)])
def test_weights_are_the_identity_as_a_linear_form(sizes):
    Z = SO.information_curve_exact(random_hmm(3, 2, 2.0, 0.0, rng=2), 7)
    assert SO.schedule_weights(7, sizes) @ Z == pytest.approx(SO.schedule_kl(Z, sizes), rel=1e-12, abs=1e-15)


def test_bad_input():
    Z = np.zeros(4)
    with pytest.raises(ValueError, match="summing to L = 4"):
        SO.schedule_kl(Z, (2, 1))
    with pytest.raises(ValueError, match="at most L = 4"):
        SO.optimal_sizes(Z, 5)
