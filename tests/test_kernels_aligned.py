"""THE lined-up HMM forward-backward (``mdm_exact.languages._kernels_aligned``).

``HMM.conditional_marginals`` runs it at ``L >= HMM.ALIGNED_MIN_LENGTH``; the adaptive-policy
kernel calls the same chunk function. Checked against the plain NumPy forward-backward
(``HMM._reference_conditional_marginals``) and the per-sequence kernel, entrywise to rtol 1e-12
(all terms are non-negative, so the relative rounding error is a few hundred ulps at most),
with exact zeros where the law has them, and bit for bit across batch compositions and
thread counts.
"""

import numba
import numpy as np
import pytest

from mdm_exact.languages import HMM, load_language
from mdm_exact.languages._kernels import _dense_posterior
from mdm_exact.languages.random import random_hmm


def _relerr(a, b):
    assert np.array_equal(a == 0, b == 0), "zero patterns differ"
    nz = b != 0
    return float(np.max(np.abs(a[nz] - b[nz]) / b[nz])) if nz.any() else 0.0


def _per_sequence(lang, x, rev):
    n, L = x.shape
    out = np.empty((n, L, lang.vocab_size))
    _dense_posterior(lang.initial, lang.transition, lang.transition_t(), lang.emission, lang.emission_t(),
                     np.ascontiguousarray(x), np.ascontiguousarray(rev), np.empty(n), out)
    return out


def _case(lang, n, L, frac, seed, impossible=0):
    rng = np.random.default_rng(seed)
    x = lang.sample(n, L, rng=rng)  # (n, L)
    rev = rng.random((n, L)) < frac  # (n, L)
    for b in range(impossible):  # a revealed token of zero emission probability in every state
        col = np.flatnonzero(lang.emission.max(axis=0) == 0)
        if col.size == 0:
            break
        rev[b, L // 2] = True
        x[b, L // 2] = col[0]
    return x, rev


@pytest.mark.parametrize("S,V,threshold,seed", [(6, 3, 0.3, 1), (12, 4, 0.1, 2), (32, 8, 0.02, 3)])
@pytest.mark.parametrize("frac", [0.05, 0.5, 0.95])
def test_aligned_matches_numpy_reference_and_per_sequence_kernel(S, V, threshold, seed, frac):
    lang = random_hmm(S, V, 2.0, threshold, rng=seed)
    L = 96
    assert L >= HMM.ALIGNED_MIN_LENGTH
    x, rev = _case(lang, 45, L, frac, seed)  # 45 rows: a full chunk and a padded one
    got = lang.conditional_marginals(x, rev)
    assert _relerr(got, lang._reference_conditional_marginals(x, rev)) < 1e-12
    assert _relerr(got, _per_sequence(lang, x, rev)) < 1e-12
    rb, rk = np.nonzero(rev)
    assert np.all(got[rb, rk, x[rb, rk]] == 1.0) and np.all(got[rev].sum(axis=-1) == 1.0)


def test_impossible_revealed_tokens_give_uniform_conditionals():
    # emission with a token no state emits: revealing it makes q(x_R) = 0
    pi = np.full(3, 1 / 3)
    A = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5]])
    B = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.8, 0.0]])
    lang = HMM(pi, A, B)
    x, rev = _case(lang, 5, 80, 0.3, 0, impossible=2)
    got = lang.conditional_marginals(x, rev)
    ref = lang._reference_conditional_marginals(x, rev)
    assert _relerr(got, ref) < 1e-12
    assert np.all(got[0][~rev[0]] == 1 / 3) and np.all(got[1][~rev[1]] == 1 / 3)


def test_paper_hmm_at_length_512_below_the_double_range():
    """q(x_R) of 500 revealed tokens is far below 1e-308: the lazy rescaling keeps it exact."""
    lang = load_language("paper-hmm")
    x, rev = _case(lang, 8, 512, 0.98, 4)
    assert np.all(lang.log_prob_revealed(x, rev) < -800)
    got = lang.conditional_marginals(x, rev)
    assert _relerr(got, lang._reference_conditional_marginals(x, rev)) < 1e-12


def test_bitwise_independent_of_batch_and_threads():
    lang = load_language("paper-hmm")
    x, rev = _case(lang, 70, 128, 0.5, 5)
    full = lang.conditional_marginals(x, rev)
    for m in (1, 3, 7, 32, 33):
        parts = np.concatenate([lang.conditional_marginals(x[i:i + m], rev[i:i + m]) for i in range(0, 70, m)])
        assert np.array_equal(parts, full), m
    p = np.random.default_rng(0).permutation(70)
    assert np.array_equal(lang.conditional_marginals(x[p], rev[p]), full[p])
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = lang.conditional_marginals(x, rev)
    finally:
        numba.set_num_threads(old)
    assert np.array_equal(one, full)


def test_policy_kernel_shares_the_primitive():
    from mdm_exact.languages import _kernels_aligned
    from mdm_exact.sampler import _kernels_policies

    assert _kernels_policies._hmm_conditionals_chunk is _kernels_aligned._hmm_aligned_chunk


def test_short_sequences_keep_the_per_sequence_kernel_bit_for_bit():
    """Below ALIGNED_MIN_LENGTH (every exact engine) nothing changed."""
    lang = random_hmm(5, 3, 2.0, 0.3, rng=7)
    x, rev = _case(lang, 20, HMM.ALIGNED_MIN_LENGTH - 1, 0.5, 7)
    assert np.array_equal(lang.conditional_marginals(x, rev), _per_sequence(lang, x, rev))


def test_kernel_source_agrees_with_compiled_code_under_disable_jit():
    """STYLE.md §3.5: the same call as plain Python (NUMBA_DISABLE_JIT=1) gives the same numbers."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, numpy as np\n"
        "from mdm_exact.languages.random import random_hmm\n"
        "lang = random_hmm(3, 2, 2.0, 0.1, rng=11)\n"
        "rng = np.random.default_rng(11)\n"
        "x = lang.sample(3, 64, rng=rng); rev = rng.random((3, 64)) < 0.5\n"
        "print(json.dumps(lang.conditional_marginals(x, rev).ravel().tolist()))\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    py = np.array(json.loads(out.stdout))
    lang = random_hmm(3, 2, 2.0, 0.1, rng=11)
    rng = np.random.default_rng(11)
    x = lang.sample(3, 64, rng=rng)
    rev = rng.random((3, 64)) < 0.5
    jit = lang.conditional_marginals(x, rev).ravel()
    assert _relerr(jit, py) < 1e-12


class _PerSequenceModel:
    """The same HMM through the per-sequence kernel (the path before the lined-up one)."""

    def __init__(self, lang):
        self.lang = lang
        self.vocab_size = lang.vocab_size

    def conditional_marginals(self, x, revealed):
        return _per_sequence(self.lang, x, revealed)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("N", [4, 16, 64])
def test_reference_sampler_draws_the_same_samples_as_before(seed, N):
    """Equivalence of the change for the Monte Carlo reference engine (HMMs at L >= 64): the
    same uniforms give the same samples, and log p_tau agrees to rtol 1e-12, in sampling and in
    teacher-forced scoring (the instance-KL pass)."""
    from mdm_exact.sampler import montecarlo as mc
    from mdm_exact.sampler.schedules import draw_steps, schedule

    lang = [random_hmm(8, 4, 2.0, 0.05, rng=seed), load_language("paper-hmm"), random_hmm(5, 3, 1.0, 0.2, rng=seed)][seed]
    L, n = 80, 40
    g = np.random.default_rng(seed)
    steps = draw_steps(schedule("linear", N), n, L, rng=g)
    u = g.random((n, L))
    xa, xb = np.zeros((n, L), np.int64), np.zeros((n, L), np.int64)
    lpa, nfea = mc.reference_run(lang, steps, xa, u, score=False)
    lpb, nfeb = mc.reference_run(_PerSequenceModel(lang), steps, xb, u, score=False)
    assert np.array_equal(xa, xb) and np.array_equal(nfea, nfeb)
    np.testing.assert_allclose(lpa, lpb, rtol=1e-12, atol=0)
    xd = lang.sample(n, L, rng=g)
    sa, _ = mc.reference_run(lang, steps, xd.copy(), u, score=True)
    sb, _ = mc.reference_run(_PerSequenceModel(lang), steps, xd.copy(), u, score=True)
    np.testing.assert_allclose(sa, sb, rtol=1e-12, atol=0)
