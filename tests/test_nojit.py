"""Every Numba kernel module under ``NUMBA_DISABLE_JIT=1`` (STYLE.md §3.5).

A subprocess runs the kernels of ``mdm_exact.languages._kernels``, ``mdm_exact.sampler._kernels_exact``,
``mdm_exact.sampler._kernels_mc`` and ``mdm_exact.sampler._kernels_policies`` as plain Python on tiny cases, checks them there against
their NumPy references (brute-force marginals, the plain-Python DP, ``reference_run``, the
``separators`` module, the NumPy inverse-CDF twin), and prints what it computed; this process
(jitted) recomputes the same and asserts equality: the compiled kernels and their Python
source agree, so a Numba-only behaviour (wrapping, typing, parallel races) cannot hide.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = r"""
import json, sys
import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
from numba import config
assert config.DISABLE_JIT == int(sys.argv[1])

from mdm_exact.languages import HMM, NGram, IntervalLanguage, interval_hmm
from mdm_exact.languages.base import brute_force_conditional_marginals, brute_force_log_prob_revealed
from mdm_exact.languages._draw import inverse_cdf
from mdm_exact.languages._kernels import _inverse_cdf
from mdm_exact.sampler import exact as E, montecarlo as mc
from mdm_exact.sampler.schedules import FixedSizes, draw_steps, schedule
from mdm_exact.theory import separators

rng = np.random.default_rng(0)
def st(shape):
    a = rng.random(shape); a[rng.random(shape) < 0.4] = 0; a[..., 0] += a.sum(-1) == 0
    return a / a.sum(-1, keepdims=True)
out = {}
# languages/_kernels: exact inference (dense and CSR HMM, n-gram chain) and sampling
h_dense = HMM(st(3), st((3, 3)), st((3, 2)))
h_csr = HMM(st(3), st((3, 3)), st((3, 2))); h_csr.kernel = "csr"
langs = {"hmm-dense": h_dense, "hmm-csr": h_csr, "trigram": NGram(3, st(4), st((4, 2))), "note-c8": interval_hmm(3)}
for name, lang in langs.items():
    x = lang.sample(6, 6, rng=rng); rev = rng.random((6, 6)) < 0.5; x[0] = rng.integers(0, lang.vocab_size, 6)
    a, b = lang.log_prob_revealed(x, rev), brute_force_log_prob_revealed(lang, x, rev)
    assert_array_equal(np.isinf(a), np.isinf(b)); assert_allclose(a[np.isfinite(b)], b[np.isfinite(b)], rtol=1e-12, atol=1e-12)
    cm = lang.conditional_marginals(x, rev)
    assert_allclose(cm, brute_force_conditional_marginals(lang, x, rev), rtol=0, atol=1e-12)
    out[name] = {"x": x.tolist(), "log_prob_revealed": a.tolist(), "marginals": cm.ravel().tolist()}
w = st((50, 5)); u = rng.random(50)
out["inverse_cdf"] = [int(_inverse_cdf(w[i], 0, 5, u[i])) for i in range(50)]
assert out["inverse_cdf"] == inverse_cdf(w, u).tolist()
# sampler/_kernels_exact: the forward DP against its plain-Python reference
lang = langs["trigram"]
for rule in (schedule("cosine", 3), FixedSizes((2, 0, 2))):
    lp = E.exact_output_law(lang, 4, rule)
    ref = E.exact_output_law(lang, 4, rule, _use_kernel=False)
    assert_array_equal(np.isinf(lp), np.isinf(ref)); assert_allclose(lp[np.isfinite(lp)], ref[np.isfinite(ref)], rtol=1e-12, atol=0)
    out.setdefault("exact", []).append(lp.tolist())
# sampler/_kernels_mc: HMM, n-gram and interval kernels against reference_run; dependency counts
for name, lang, L in (("mc-hmm", h_dense, 6), ("mc-ngram", lang, 6), ("mc-interval", IntervalLanguage(3), 6)):
    steps = draw_steps(schedule("linear", 3), 40, L, rng=rng); uu = rng.random((40, L))
    lp_f, nfe_f, lq_f, x_f = mc._Engine(lang, L, method="fast").run(steps, np.zeros((40, L), np.int64), uu, score=False)
    lp_r, nfe_r, lq_r, x_r = mc._Engine(lang, L, method="reference").run(steps, np.zeros((40, L), np.int64), uu, score=False)
    assert_array_equal(x_f, x_r); assert_array_equal(nfe_f, nfe_r)
    fin = np.isfinite(lp_f); assert_array_equal(fin, np.isfinite(lp_r)); assert_allclose(lp_f[fin], lp_r[fin], rtol=1e-12, atol=1e-12)
    out[name] = {"x": x_f.tolist(), "log_p_tau": [v if np.isfinite(v) else None for v in lp_f.tolist()], "nfe": nfe_f.tolist()}
steps = rng.integers(0, 4, size=(5, 12))
S, D, D_lit, m, pairs = mc.step_dependencies(steps, 3, num_steps=4)
S_ref, D_ref = separators.instance_dependencies(steps, 3, reading="corrected", num_steps=4)
assert_array_equal(S, S_ref); assert_array_equal(D, D_ref)
out["dependencies"] = D.tolist()
# sampler/_kernels_policies: the lined-up HMM and the sparse-chain policy kernels against the reference loop
from mdm_exact.sampler import adaptive_mc as amc
from mdm_exact.sampler.policies import make_policy
amc.NGRAM_HMM_STATES = 0  # the trigram on the sparse chain kernel (segment refresh), not the window chain
for name, plang, pn, opts in (("pol-hmm", h_dense, "llada", {"num_steps": 3}), ("pol-chain", langs["trigram"], "threshold:0.6", {}),
                              ("pol-chain-topk", langs["trigram"], "confidence", {"num_steps": 3})):
    pol = make_policy(pn, L=6, **opts)
    assert amc._PolicyEngine(plang, 6, pol).kind == ("hmm" if name == "pol-hmm" else "ngram-chain")
    xf, nf, _ = amc.sample_policy(plang, 6, pol, 40, rng=1, method="fast")
    xr, nr, _ = amc.sample_policy(plang, 6, pol, 40, rng=1, method="reference")
    assert_array_equal(xf, xr); assert_array_equal(nf, nr)
    out[name] = {"x": xf.tolist(), "nfe": nf.tolist()}
print(json.dumps(out))
"""


def _run(disable_jit):
    env = dict(os.environ, NUMBA_DISABLE_JIT=str(disable_jit))
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(disable_jit)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def python_kernels():
    return _run(1)


def test_kernels_as_plain_python_match_their_references(python_kernels):
    """The subprocess asserted kernel == reference under NUMBA_DISABLE_JIT=1 for all three modules."""
    assert {"hmm-dense", "hmm-csr", "trigram", "note-c8", "exact", "mc-hmm", "mc-ngram", "mc-interval", "dependencies",
            "pol-hmm", "pol-chain", "pol-chain-topk"} <= set(
        python_kernels
    )


def test_compiled_kernels_equal_their_python_source(python_kernels):
    """Same script, jitted: identical tokens, step counts and draws; floats to 1e-12 (the HMM
    Monte Carlo mat-vec may reassociate sums when compiled)."""
    jit = _run(0)
    for name in ("hmm-dense", "hmm-csr", "trigram", "note-c8"):
        assert jit[name]["x"] == python_kernels[name]["x"]
        np.testing.assert_allclose(jit[name]["log_prob_revealed"], python_kernels[name]["log_prob_revealed"], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(jit[name]["marginals"], python_kernels[name]["marginals"], rtol=0, atol=1e-12)
    assert jit["inverse_cdf"] == python_kernels["inverse_cdf"]
    np.testing.assert_allclose(np.array(jit["exact"]), np.array(python_kernels["exact"]), rtol=1e-12, atol=0)
    for name in ("mc-hmm", "mc-ngram", "mc-interval"):
        assert jit[name]["x"] == python_kernels[name]["x"] and jit[name]["nfe"] == python_kernels[name]["nfe"]
        a = np.array(jit[name]["log_p_tau"], dtype=float)
        b = np.array(python_kernels[name]["log_p_tau"], dtype=float)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-12, atol=1e-12)
    assert jit["dependencies"] == python_kernels["dependencies"]
    for name in ("pol-hmm", "pol-chain", "pol-chain-topk"):
        assert jit[name] == python_kernels[name]
