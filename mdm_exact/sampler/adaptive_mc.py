r"""Monte Carlo of the sampler under adaptive unmasking policies, at paper scale (L = 512).

Every step needs the conditionals :math:`q(x_i \mid x_R)` at *every* candidate (the policy
scores them all), so each step is one full forward-backward. Engines:

* ``hmm`` (:class:`~mdm_exact.languages.HMM`, perfect model): the Numba kernel
  :func:`mdm_exact.sampler._kernels_policies._hmm_policy_run`. The sequences of a fixed chunk
  of :data:`CHUNK` run lined up, so each position of the forward-backward is one
  matrix-matrix product ``(CHUNK, S) @ (S, S)``; the policy step (scores, tolerant greedy
  picks, counts, tempered draws) is the kernel twin of :meth:`Policy.select`.
* ``ngram-hmm`` (:class:`~mdm_exact.languages.NGram` with at most :data:`NGRAM_HMM_STATES`
  contexts, e.g. every bigram of the paper): the same kernel on the window chain of
  :func:`ngram_window_chain`.
* ``ngram-chain`` (any other :class:`~mdm_exact.languages.NGram`, e.g. the paper's 3- and
  4-gram): :func:`mdm_exact.sampler._kernels_policies._chain_policy_run`, one sequence per
  thread with the n-gram's own sparse forward-backward (``NGram.conditional_marginals``'
  kernel, bitwise the same conditionals) at the steps where it reveals something.
* ``reference`` (any language, any ``model`` with ``conditional_marginals``): the plain batched
  NumPy loop :func:`reference_policy_run`, calling :meth:`Policy.select` itself. With
  ``conditionals=hmm_conditionals_numpy`` it is the NumPy twin of the kernel (same uniforms,
  same samples) and the baseline of ``benchmarks/bench_policies.py``.

A sequence's conditionals are computed only at the steps where it reveals something (a
per-sequence cache: the NFE counts exactly these calls).

Randomness: chunk ``c`` of :data:`CHUNK` sequences draws, from ``rng.spawn(n_chunks)[c]`` and
in this order, the token uniforms (one per position, or one per position and step for
``llada``, whose re-masked draws must be fresh), the random-order keys (``random``) and one
count uniform per step (binomial counts). Results do not depend on the thread count or
``batch_size``.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from mdm_exact._validate import as_count, as_length
from mdm_exact.languages.io import as_language
from mdm_exact.sampler.montecarlo import write_progress
from mdm_exact.sampler.policies import TIE_ATOL, Policy
from mdm_exact.sampler.results import SamplerResult
from mdm_exact.stats import clopper_pearson, log_scale_mean_ci, mean_ci

__all__ = [
    "run_policy_monte_carlo",
    "sample_policy",
    "reference_policy_run",
    "hmm_conditionals_numpy",
    "draw_chunk_uniforms",
    "ngram_window_chain",
    "CHUNK",
]

#: Sequences per randomness chunk and per lined-up kernel chunk (fixed: results do not depend on
#: batch size or threads).
CHUNK = 64
METHODS = ("auto", "fast", "reference")
#: n-grams with at most this many contexts ``V^(n-1)`` run on the HMM kernel as a window chain
#: (:func:`ngram_window_chain`); larger ones use the sparse chain kernel (a dense ``C x C`` product
#: per position would cost more than the n-gram's own sparse forward-backward).
NGRAM_HMM_STATES = 32
_SCORE_CODE = {"random": 0, "confidence": 1, "margin": 2, "entropy": 3, "llada": 4}
_COUNT_CODE = {"sizes": 0, "block-sizes": 0, "schedule": 1, "threshold": 2, "eb": 3}


# ----------------------------------------------------------------------------- randomness
def draw_chunk_uniforms(policy: Policy, m: int, L: int, g):
    """Uniforms of one chunk of ``m`` sequences, drawn from generator ``g`` in a fixed order.

    Returns ``u_tok`` (n_tok, m, L) (``n_tok = num_steps`` for llada, else 1), ``u_order``
    (m, L) (random keys; zeros unless ``random``) and ``u_count`` (num_steps, m) (zeros unless
    the count is binomial).
    """
    N = policy.num_steps
    n_tok = N if policy.fresh_token_uniforms else 1
    u_tok = g.random((n_tok, m, L))  # (n_tok, m, L)
    u_order = g.random((m, L)) if policy.score == "random" and not policy.adaptive_count else np.zeros((m, L))  # (m, L)
    u_count = g.random((N, m)) if policy.count == "schedule" else np.zeros((N, m))  # (N, m)
    return u_tok, u_order, u_count


# ----------------------------------------------------------------------------- n-gram as a chain
def ngram_window_chain(lang):
    """An order-``n`` n-gram as an HMM ``(pi, A, B)`` on look-ahead windows of ``n - 1`` tokens.

    The state at position ``t`` is the window ``(x_t, ..., x_{t+n-2})`` (index with ``x_t`` most
    significant), so ``pi`` is the n-gram's initial law of the first ``n - 1`` tokens,
    ``A[c, (c mod V^(n-2)) V + v] = q(v | c)`` and ``B`` emits the first token of the window.
    For ``L >= n - 1`` the law of the emitted ``x_1..x_L`` is the n-gram's exactly (the window
    tokens past ``L`` are drawn from the chain and marginalise out). Shapes (C,), (C, C), (C, V)
    with ``C = V^(n-1)``.
    """
    cond = np.asarray(lang.conditional, dtype=np.float64)  # (C, V)
    C, V = cond.shape
    R = C // V  # V^(n-2)
    A = np.zeros((C, C))  # (C, C)
    cols = (np.arange(C) % R)[:, None] * V + np.arange(V)[None, :]  # (C, V)
    A[np.arange(C)[:, None], cols] = cond
    B = np.zeros((C, V))  # (C, V)
    B[np.arange(C), np.arange(C) // R] = 1.0
    return np.asarray(lang.initial, dtype=np.float64), A, B


# ----------------------------------------------------------------------------- NumPy twin
def hmm_conditionals_numpy(pi, A, B, x, revealed):
    """Plain batched NumPy forward-backward, sequences lined up: ``q(x_t | x_R)`` (n, L, V).

    The twin of ``_kernels_policies._hmm_conditionals_chunk`` (same normalisations); rows whose
    revealed tokens are impossible get uniform conditionals.
    """
    n, L = x.shape
    S = pi.shape[0]
    V = B.shape[1]
    BT = B.T  # (V, S)
    alpha = np.empty((L, n, S))  # (L, n, S)
    dead = np.zeros(n, dtype=bool)
    for t in range(L):
        a = np.broadcast_to(pi, (n, S)).copy() if t == 0 else alpha[t - 1] @ A  # (n, S)
        a = np.where(revealed[:, t, None], a * BT[x[:, t]], a)
        z = a.sum(axis=1)  # (n,)
        dead |= z <= 0
        alpha[t] = np.where((z > 0)[:, None], a / np.where(z > 0, z, 1.0)[:, None], 1.0 / S)
    beta = np.empty((L, n, S))  # (L, n, S)
    beta[L - 1] = 1.0
    for t in range(L - 1, 0, -1):
        tmp = np.where(revealed[:, t, None], beta[t] * BT[x[:, t]], beta[t])
        b = tmp @ A.T  # (n, S)
        z = b.sum(axis=1)
        beta[t - 1] = b / np.where(z > 0, z, 1.0)[:, None]
    post = alpha * beta  # (L, n, S)
    z = post.sum(axis=2, keepdims=True)
    post = np.where(z > 0, post / np.where(z > 0, z, 1.0), 0.0)
    cond = np.einsum("tns,sv->ntv", post, B)  # (n, L, V)
    cond[dead] = 1.0 / V
    return cond


def reference_policy_run(conditionals, policy: Policy, L: int, u_tok, u_order, u_count):
    """Plain batched NumPy sampler under ``policy`` (the reference of the kernel).

    Parameters
    ----------
    conditionals : callable ``(x, revealed) -> (batch, L, V)``
        E.g. ``lang.conditional_marginals`` or a model's; called only for the sequences that
        reveal something at the step.
    u_tok, u_order, u_count
        As :func:`draw_chunk_uniforms` (any number of rows).

    Returns
    -------
    x : ndarray (n, L) int64
    nfe : ndarray (n,) int64
    """
    n = u_order.shape[0]
    x = np.zeros((n, L), dtype=np.int64)  # (n, L)
    rev = np.zeros((n, L), dtype=bool)  # (n, L)
    nfe = np.zeros(n, dtype=np.int64)  # (n,)
    for k in range(policy.num_steps):
        cand = policy.candidates(rev)  # (n, L)
        nc = cand.sum(axis=1)  # (n,)
        if policy.adaptive_count:
            active = nc > 0
        else:
            active = policy.draw_count(k, nc, u_count[k]) > 0
        rows = np.flatnonzero(active)
        if rows.size == 0:
            if not (~rev).any():
                break
            continue
        c = np.asarray(conditionals(x[rows], rev[rows]), dtype=np.float64)  # (r, L, V)
        ut = u_tok[k if policy.fresh_token_uniforms else 0][rows]
        reveal, tok = policy.select(c, rev[rows], k, u_tok=ut, u_order=u_order[rows], u_count=u_count[k][rows])
        xr = x[rows]
        xr[reveal] = tok[reveal]
        x[rows] = xr
        rev[rows] |= reveal
        nfe[rows] += reveal.any(axis=1)
    return x, nfe


# ----------------------------------------------------------------------------- engine
class _PolicyEngine:
    def __init__(self, lang, L, policy, *, model=None, method="auto", conditionals=None):
        from mdm_exact.languages import HMM, NGram

        if method not in METHODS:
            raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
        self.lang, self.L, self.policy, self.model = lang, L, policy, model
        self.conditionals = conditionals
        self.kind = "reference"
        chain = None
        if model is None and conditionals is None and method != "reference":
            if isinstance(lang, HMM):
                self.kind = "hmm"
                chain = (lang.initial, lang.transition, lang.emission)
            elif isinstance(lang, NGram) and L >= lang.order - 1 and lang.vocab_size ** (lang.order - 1) <= NGRAM_HMM_STATES:
                self.kind = "ngram-hmm"
                chain = ngram_window_chain(lang)
            elif isinstance(lang, NGram) and L >= lang.order - 1:
                self.kind = "ngram-chain"
                self._chain = (np.ascontiguousarray(lang.initial, dtype=np.float64), lang.order - 2) + tuple(lang._chain())
        if chain is not None:
            A = np.ascontiguousarray(chain[1], dtype=np.float64)
            Bm = np.ascontiguousarray(chain[2], dtype=np.float64)
            self._hmm = (np.ascontiguousarray(chain[0], dtype=np.float64), A, np.ascontiguousarray(A.T), Bm,
                         np.ascontiguousarray(Bm.T))
        if method == "fast" and self.kind == "reference":
            raise ValueError(f"method='fast': no policy kernel for {type(lang).__name__}" + (" with a model" if model is not None else ""))
        p = policy
        N = p.num_steps
        sizes = np.zeros(N, dtype=np.int64)
        if p.count in ("sizes", "block-sizes"):
            sizes[:] = p.sizes
        rprobs = np.zeros(N)
        if p.count == "schedule":
            rprobs[:] = [p.reveal_probability(k) for k in range(N)]
        self._codes = (_SCORE_CODE[p.score], _COUNT_CODE[p.count], sizes, rprobs,
                       float(p.gamma) if p.gamma is not None else 0.0, int(p.block_length or 0), float(p.temperature))

    def run(self, u_tok, u_order, u_count):
        """Samples (n, L) and NFE (n,) of a batch of whole chunks."""
        if self.kind == "reference":
            cf = self.conditionals
            if cf is None:
                cf = (self.model if self.model is not None else self.lang).conditional_marginals
            return reference_policy_run(cf, self.policy, self.L, u_tok, u_order, u_count)
        from mdm_exact.sampler._kernels_policies import _chain_policy_run, _hmm_policy_run

        n = u_order.shape[0]
        x = np.empty((n, self.L), dtype=np.int64)  # (n, L)
        nfe = np.empty(n, dtype=np.int64)  # (n,)
        score, count, sizes, rprobs, gamma, blk, T = self._codes
        if self.kind == "ngram-chain":
            init, start, digits, indptr, indices, data, emis, tok_edge = self._chain
            _chain_policy_run(init, digits, start, indptr, indices, data, emis, tok_edge, score, count, sizes, rprobs, gamma,
                              blk, T, TIE_ATOL, self.policy.num_steps, np.ascontiguousarray(u_tok),
                              np.ascontiguousarray(u_order), np.ascontiguousarray(u_count), x, nfe)
            return x, nfe
        pi, A, AT, Bm, BT = self._hmm
        _hmm_policy_run(pi, A, AT, Bm, BT, score, count, sizes, rprobs, gamma, blk, T, TIE_ATOL, self.policy.num_steps,
                        CHUNK, np.ascontiguousarray(u_tok), np.ascontiguousarray(u_order), np.ascontiguousarray(u_count), x, nfe)
        return x, nfe


def _check(lang, L, policy):
    L = as_length(L)
    if not isinstance(policy, Policy):
        raise ValueError(f"policy: expected a mdm_exact.sampler.policies.Policy, got {type(policy).__name__}")
    if policy.L != L:
        raise ValueError(f"policy was built for L = {policy.L}, but L = {L}")
    lang.in_support(np.zeros((1, L), dtype=np.int64))  # the language validates L
    return L


def _batches(policy, L, n, rng, batch_size):
    """Yield (u_tok, u_order, u_count) for batches of whole chunks, chunk c from rng.spawn(...)[c]."""
    n_chunks = math.ceil(n / CHUNK)
    children = rng.spawn(n_chunks)
    per = max(1, math.ceil(batch_size / CHUNK))
    for c0 in range(0, n_chunks, per):
        parts = [draw_chunk_uniforms(policy, min(CHUNK, n - c * CHUNK), L, children[c]) for c in range(c0, min(n_chunks, c0 + per))]
        yield (np.concatenate([p[0] for p in parts], axis=1), np.concatenate([p[1] for p in parts], axis=0),
               np.concatenate([p[2] for p in parts], axis=1))


def _default_batch(policy, L):
    per_seq = L * 8 * (policy.num_steps if policy.fresh_token_uniforms else 3)
    return max(CHUNK, min(64 * CHUNK, (2**26 // per_seq) // CHUNK * CHUNK))


def sample_policy(lang, L, policy: Policy, num_samples, *, rng=None, model=None, method="auto", batch_size=None, conditionals=None):
    """Draw ``num_samples`` sequences under ``policy``: ``(x (n, L), nfe (n,), log_q (n,))``.

    ``conditionals`` (a callable ``(x, revealed) -> (batch, L, V)``) forces the reference
    engine with that primitive (e.g. :func:`hmm_conditionals_numpy` for the twin).
    """
    L = _check(lang, L, policy)
    n = as_count(num_samples, "num_samples")
    rng = np.random.default_rng(rng)
    eng = _PolicyEngine(lang, L, policy, model=model, method=method, conditionals=conditionals)
    bs = _default_batch(policy, L) if batch_size is None else as_count(batch_size, "batch_size")
    xs, nfes = [], []
    for u in _batches(policy, L, n, rng, bs):
        x, nfe = eng.run(*u)
        xs.append(x)
        nfes.append(nfe)
    x = np.concatenate(xs)
    return x, np.concatenate(nfes), lang.log_prob(x)


def run_policy_monte_carlo(lang, L, policy: Policy, num_samples, *, rng=None, ci_alpha: float = 0.05, batch_size=None,
                           model=None, method: str = "auto", progress: bool = False) -> SamplerResult:
    r"""Monte Carlo estimates under an unmasking policy, as a :class:`SamplerResult`.

    Shared fields as :func:`mdm_exact.sampler.montecarlo.run_monte_carlo` (``rule =
    policy.to_dict()``; ``instance_kl_total`` / ``instance_kl_per_token`` are ``None``: Lemma
    B.2 is about content-blind instances). Intervals (miscoverage ``ci_alpha``): ``ser_ci``
    (Clopper-Pearson), ``gen_ppl_ci`` (normal interval of the mean log q per token over samples
    in ``supp q``, through ``exp``), ``gen_ppl_seq_mean_ci``, ``mean_log_prob_per_token_ci``,
    ``nfe_ci``. Extras: ``mean_log_prob_per_token``, ``nfe_hist``, ``num_errors``,
    ``num_in_support``, ``seconds``, ``samples_per_second``, ``num_samples``, ``seed``,
    ``policy``, ``language``, ``interrupted``.
    """
    lang = as_language(lang)
    L = _check(lang, L, policy)
    n = as_count(num_samples, "num_samples")
    if not 0 < ci_alpha < 1:
        raise ValueError(f"ci_alpha: expected 0 < ci_alpha < 1, got {ci_alpha}")
    rng = np.random.default_rng(rng)
    seed_seq = getattr(rng.bit_generator, "seed_seq", None)
    seed = getattr(seed_seq, "entropy", None)
    eng = _PolicyEngine(lang, L, policy, model=model, method=method)
    bs = _default_batch(policy, L) if batch_size is None else as_count(batch_size, "batch_size")
    log_q_all, nfe_all = [], []
    done = 0
    interrupted = False
    t0 = time.perf_counter()
    try:
        for u in _batches(policy, L, n, rng, bs):
            x, nfe = eng.run(*u)
            log_q_all.append(lang.log_prob(x))
            nfe_all.append(nfe)
            done += x.shape[0]
            if progress:
                write_progress(done, n, t0, sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
        if done == 0:
            raise
    finally:
        if progress:
            sys.stderr.write("\n")
    seconds = time.perf_counter() - t0
    log_q = np.concatenate(log_q_all)  # (done,)
    nfe = np.concatenate(nfe_all)  # (done,)
    inside = np.isfinite(log_q)
    errors = int(done - inside.sum())
    intervals = {"ser_ci": list(clopper_pearson(errors, done, ci_alpha))}
    lpt = log_q[inside] / L  # (n_in,)
    if lpt.size:
        m, lo, hi = mean_ci(lpt, ci_alpha)
        gppl, gppl_ci = math.exp(-m), [math.exp(-hi), math.exp(-lo) if lo > -np.inf else math.inf]
        m2, lo2, hi2 = log_scale_mean_ci(-lpt, ci_alpha)  # positive: log-scale interval, never < 0
        seqm, seqm_ci, mlpt, mlpt_ci = m2, [lo2, hi2], m, [lo, hi]
    else:
        gppl = gppl_ci = seqm = seqm_ci = mlpt = mlpt_ci = None
    intervals.update({"gen_ppl_ci": gppl_ci, "gen_ppl_seq_mean_ci": seqm_ci, "mean_log_prob_per_token_ci": mlpt_ci})
    nm, nlo, nhi = mean_ci(nfe.astype(np.float64), ci_alpha)
    intervals["nfe_ci"] = [nlo, nhi]
    vals, counts = np.unique(nfe, return_counts=True)
    describe = getattr(lang, "describe", None)
    return SamplerResult(
        engine=eng.kind,
        L=L,
        V=int(lang.vocab_size),
        num_steps=int(policy.num_steps),
        rule=policy.to_dict(),
        ser=errors / done,
        gen_ppl=gppl,
        gen_ppl_seq_mean=seqm,
        nfe_mean=nm,
        instance_kl_total=None,
        instance_kl_per_token=None,
        ci_alpha=ci_alpha,
        intervals=intervals,
        extra={
            "policy": policy.name,
            "mean_log_prob_per_token": mlpt,
            "nfe_hist": {str(int(v)): int(c) for v, c in zip(vals, counts)},
            "num_errors": errors,
            "num_in_support": int(inside.sum()),
            "seconds": seconds,
            "samples_per_second": done / seconds if seconds > 0 else float("inf"),
            "num_samples": n,
            "num_samples_done": int(done),
            "interrupted": interrupted,
            "seed": seed if isinstance(seed, (int, type(None))) else str(seed),
            "language": describe() if callable(describe) else {"kind": type(lang).__name__},
        },
    )
