"""Foundation checks of the reference (NumPy) inference against brute force enumeration."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mdm_exact._validate import LanguageError
from mdm_exact.languages import HMM, NGram, all_sequences
from mdm_exact.languages.base import brute_force_conditional_marginals, brute_force_log_prob_revealed


def _sparse_stochastic(rng, shape, zero_frac=0.3):
    a = rng.random(shape) ** 2
    a[rng.random(shape) < zero_frac] = 0.0
    a[..., 0] += (a.sum(axis=-1) == 0)  # never an all-zero row
    return a / a.sum(axis=-1, keepdims=True)


def _languages(rng):
    yield HMM(_sparse_stochastic(rng, 3), _sparse_stochastic(rng, (3, 3)), _sparse_stochastic(rng, (3, 2)))
    for n in (2, 3, 4):
        yield NGram(n, _sparse_stochastic(rng, 2 ** (n - 1)), _sparse_stochastic(rng, (2 ** (n - 1), 2)))


@pytest.mark.parametrize("L", [1, 2, 3, 5])
def test_reference_inference_matches_brute_force(L):
    rng = np.random.default_rng(L)
    for lang in _languages(rng):
        X = all_sequences(2, L)
        lp = lang.log_prob(X)
        assert_allclose(np.exp(lp).sum(), 1.0, rtol=0, atol=1e-12)
        assert np.array_equal(lang.in_support(X), np.isfinite(lp))
        x = lang.sample(8, L, rng=rng)
        rev = rng.random((8, L)) < 0.5
        rev[0] = False
        assert_allclose(lang.log_prob_revealed(x, rev), brute_force_log_prob_revealed(lang, x, rev), rtol=1e-12, atol=1e-12)
        assert_allclose(
            lang.conditional_marginals(x, rev), brute_force_conditional_marginals(lang, x, rev), rtol=0, atol=1e-12
        )
        p = np.exp(lp[np.isfinite(lp)])
        assert_allclose(lang.entropy(L), -(p * np.log(p)).sum(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("order", [10**30, 40])
def test_ngram_refuses_a_huge_order_at_once(order):
    """An order whose V^(n-1) table could never match is refused before V^(n-1) is computed
    (a crafted file or checkpoint with "order": 10**30 hung here)."""
    import time

    t0 = time.perf_counter()
    with pytest.raises(LanguageError, match="order"):
        NGram(order, np.ones(4) / 4, np.ones((4, 2)) / 2)
    assert time.perf_counter() - t0 < 0.5
