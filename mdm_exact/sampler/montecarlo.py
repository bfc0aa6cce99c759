r"""Monte Carlo of the idealised masked-diffusion sampler at paper scale.

The idealised sampler (Feng et al. 2025, arXiv:2502.09622v1; as reconstructed,
STATEMENTS.md §1.4-§1.7): draw an instance :math:`\tau = (\mathcal M_1, \dots, \mathcal M_N)`
from the step rule (:func:`mdm_exact.sampler.schedules.draw_steps`); then for :math:`k = 1..N`, every
position :math:`j \in \mathcal M_k` draws :math:`x_j` independently from the exact conditional
marginal :math:`q(x_j \mid x_{\mathcal M_{<k}})` (``Language.conditional_marginals``; an
impossible context gives the uniform law). ``LeftToRight()`` is the autoregressive sampler and
runs through the same code.

Engines (chosen by ``method="auto"``):

* HMM (:class:`~mdm_exact.languages.HMM`): Numba kernel; forward/backward messages only at
  revealed positions, masked gaps jumped with cached powers :math:`A^g` (memory
  ``2 L S^2`` floats), zero entries of messages skipped (pruned languages are sparse).
* n-gram (:class:`~mdm_exact.languages.NGram`, ``L >= n - 1``): Numba kernel on the chain of
  context windows; a run of :math:`n-1` revealed tokens pins the state (a separator,
  Definition B.4), so each step only recomputes messages inside the segments that hold new
  positions; messages live only on the contexts compatible with the revealed tokens, and
  masked stretches of up to G positions are jumped with cached powers :math:`T^g` of the
  context-chain transition and their transposes (both tables capped at :data:`NGRAM_POWER_BYTES`);
  loops run over runs of consecutive compatible contexts, so they vectorise.
* anything else (any ``Language``, any ``model`` with ``conditional_marginals``): the plain
  batched NumPy reference :func:`reference_run`, one ``conditional_marginals`` call per step
  over the sequences whose step is non-empty. It is the reference the kernels are tested
  against (same uniforms give the same samples) and the baseline of the benchmark.

Randomness: samples are cut into fixed chunks of :data:`CHUNK` sequences; chunk ``c`` draws
everything it needs from ``rng.spawn(...)[c]`` (instances, one uniform per position, data
samples for the instance KL). Kernels get the uniforms, so results do not depend on the thread
count or on ``batch_size``.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from mdm_exact._validate import as_count, as_length
from mdm_exact.languages import HMM, IntervalLanguage, NGram, as_language
from mdm_exact.languages._draw import inverse_cdf
from mdm_exact.sampler.results import SamplerResult
from mdm_exact.sampler.schedules import LeftToRight, ScheduleSteps, StepRule, draw_steps, expected_nonempty_steps
from mdm_exact.stats import clopper_pearson, log_scale_mean_ci, mean_ci

#: Number of sequences per randomness chunk (fixed: results do not depend on batch size/threads).
CHUNK = 512
#: Memory limit (bytes) for the cached HMM matrix powers; above it the NumPy reference is used.
HMM_POWER_BYTES = 512 * 2**20
#: Memory limit (bytes) for the n-gram transition powers T^1..T^G used to jump masked stretches,
#: and their transposes (both tables together: 64 MiB each, G = 32, for a 4-gram with V = 8).
NGRAM_POWER_BYTES = 128 * 2**20
#: HMM kernel: messages are rescaled to total mass 1 only when their mass falls below this (it
#: never grows: rows of A sum to 1 and emissions are probabilities); a full normalisation every
#: position would put a reduction and a division on the critical path of every chain.
HMM_RESCALE_BELOW = 1e-20
#: n-gram kernel: a jump's multiply-adds read T^g (2 MiB for a 4-gram) rather than the small
#: conditional table: count each as this many of a one-position step's when choosing between
#: them (0.5, 1, 2 and 4 measured with the run-based kernel on the paper 4-gram: 2 is fastest
#: or within noise at every N; the choice changes rounding only, never the samples' law).
NGRAM_JUMP_PENALTY = 2
METHODS = ("auto", "fast", "reference")


# ----------------------------------------------------------------------------- engines
def reference_run(model, steps, x, u, *, score: bool):
    r"""Plain batched NumPy idealised sampler (the reference of the Numba kernels).

    Parameters
    ----------
    model : object with ``conditional_marginals(x, revealed) -> (batch, L, V)``
        The per-position predictor; a ``Language`` is the perfect model.
    steps : ndarray, shape (n, L), int64
        0-based generation step of every position (an instance per row).
    x : ndarray, shape (n, L), int64
        Tokens. Overwritten with the samples unless ``score``; in score mode the given tokens
        are kept and scored.
    u : ndarray, shape (n, L), float64
        One uniform per position, consumed by the inverse-CDF draw of that position.
    score : bool
        Teacher-forced scoring of the given ``x`` instead of sampling.

    Returns
    -------
    log_p_tau : ndarray, shape (n,)
        :math:`\sum_k \sum_{j\in\mathcal M_k} \log p(x_j \mid x_{\mathcal M_{<k}})` for the
        final tokens (Lemma B.3 chain rule, STATEMENTS.md §4.C).
    nfe : ndarray, shape (n,)
        Number of non-empty steps of every instance.
    """
    n, L = steps.shape
    log_p = np.zeros(n)  # (n,)
    nfe = np.zeros(n, dtype=np.int64)  # (n,)
    for k in np.unique(steps):
        new = steps == k  # (n, L)
        rows = np.flatnonzero(new.any(axis=1))  # sequences with a non-empty step k
        nfe[rows] += 1
        marg = model.conditional_marginals(x[rows], steps[rows] < k)  # (r, L, V)
        rb, rk = np.nonzero(new[rows])  # (m,), (m,)
        w = marg[rb, rk, :]  # (m, V)
        cdf = np.cumsum(w, axis=1)  # (m, V)
        if score:
            tok = x[rows[rb], rk]  # (m,)
        else:
            tok = inverse_cdf(w, u[rows[rb], rk] * cdf[:, -1])  # (m,) the kernels' draw, in NumPy
            x[rows[rb], rk] = tok
        pt = w[np.arange(w.shape[0]), tok] / cdf[:, -1]  # (m,)
        with np.errstate(divide="ignore"):
            np.add.at(log_p, rows[rb], np.log(pt))
    return log_p, nfe


class _Engine:
    """Dispatch to a Numba kernel or the NumPy reference; ``run`` returns (log_p_tau, nfe, log_q, x).

    The kernels' tables come from the language (built and cached there, one place each):
    ``HMM.transition_powers``, ``NGram.context_marginals`` / ``context_transition_powers``,
    ``IntervalLanguage.pair_bit_table``.
    """

    def __init__(self, lang, L, *, model=None, method="auto"):
        if method not in METHODS:
            raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
        self.lang = lang
        self.model = model
        self.kind = "reference"
        if model is None and method != "reference":
            if isinstance(lang, HMM):
                S = lang.num_states
                if 2 * L * S * S * 8 <= HMM_POWER_BYTES:
                    self.kind = "hmm"
                    self._hmm = (
                        np.ascontiguousarray(lang.initial, dtype=np.float64),  # (S,)
                        lang.transition_t(),  # (S, S) A^T
                        lang.transition_powers(L),  # (L, S, S) A^g, g = 0..L-1
                        lang.transition_powers(L, transposed=True),  # (L, S, S) (A^g)^T
                        lang.emission_t(),  # (V, S)
                    )
            elif isinstance(lang, NGram) and L >= lang.order - 1:
                self.kind = "ngram"
                C = lang.num_contexts
                G = int(max(1, min(L, NGRAM_POWER_BYTES // (2 * 8 * C * C))))
                self._ngram = (
                    np.ascontiguousarray(lang.initial, dtype=np.float64),  # (C,)
                    np.ascontiguousarray(lang.conditional, dtype=np.float64),  # (C, V)
                    lang.context_marginals(L),  # (L-n+2, C) context law, nothing revealed
                    lang.context_transition_powers(G),  # (G, C, C) T^1..T^G
                    lang.context_transition_powers(G, transposed=True),  # (G, C, C) (T^g)^T
                    int(lang.order),
                )
            elif isinstance(lang, IntervalLanguage) and L % lang.interval_length == 0:
                self.kind = "interval"
                # q is uniform on its support: log q(x) = -H(q) for every x in supp q
                self._interval = (lang.pair_bit_table, int(lang.interval_length), -lang.entropy(L))
        if method == "fast" and self.kind == "reference":
            raise ValueError(
                f"method='fast': no Numba kernel for {type(lang).__name__}"
                + (" with a separate model" if model is not None else "")
                + f" at L = {L}; use method='auto' or 'reference'"
            )

    def warm(self, L):
        """Resolve the kernel's compiled code (Numba loads it from its disk cache on the first
        call in a process, about 0.3-0.7 s here) with an empty batch, outside any timed region."""
        from mdm_exact.sampler import _kernels_mc as K

        if self.kind != "reference":
            kernel = {"hmm": K._hmm_run, "ngram": K._ngram_run, "interval": K._interval_run}[self.kind]
            if not kernel.signatures:  # once per process: later calls would only pay a parallel launch
                e = np.zeros((0, L), dtype=np.int64)
                self._kernel(e, e.copy(), np.zeros((0, L)), False)

    def run(self, steps, x, u, *, score):
        steps = np.ascontiguousarray(steps, dtype=np.int64)
        x = np.ascontiguousarray(x, dtype=np.int64)
        u = np.ascontiguousarray(u, dtype=np.float64)
        if self.kind == "reference":
            log_p, nfe = reference_run(self.model if self.model is not None else self.lang, steps, x, u, score=score)
            return log_p, nfe, self.lang.log_prob(x), x
        return self._kernel(steps, x, u, score)

    def _kernel(self, steps, x, u, score):
        from mdm_exact.sampler import _kernels_mc as K

        n = steps.shape[0]
        log_p = np.empty(n)  # (n,)
        nfe = np.empty(n, dtype=np.int64)  # (n,)
        log_q = np.empty(n)  # (n,)
        if self.kind == "hmm":
            pi, AT, P, PT, BT = self._hmm
            K._hmm_run(pi, AT, P, PT, BT, HMM_RESCALE_BELOW, steps, x, u, bool(score), log_p, nfe, log_q)
        elif self.kind == "ngram":
            init, cond, prior, Tp, TpT, order = self._ngram
            K._ngram_run(init, cond, prior, Tp, TpT, order, NGRAM_JUMP_PENALTY, steps, x, u, bool(score), log_p, nfe, log_q)
        else:
            bits, l, lq_in = self._interval
            K._interval_run(bits, l, lq_in, steps, x, u, bool(score), log_p, nfe, log_q)
        return log_p, nfe, log_q, x


def sample_idealised(lang, L, rule, num_samples, *, rng=None, model=None, method="auto"):
    """Draw ``num_samples`` sequences from the idealised sampler (no statistics).

    Returns ``(x, steps, log_p_tau, nfe, log_q)`` with shapes (n, L), (n, L), (n,), (n,), (n,).
    Uses the same chunked randomness as :func:`run_monte_carlo`.
    """
    lang = as_language(lang)
    L = as_length(L)
    n = as_count(num_samples, "num_samples")
    rng = np.random.default_rng(rng)
    eng = _Engine(lang, L, model=model, method=method)
    outs = []
    for c, g in enumerate(rng.spawn(math.ceil(n / CHUNK))):
        m = min(CHUNK, n - c * CHUNK)
        steps, u = _draw_chunk(rule, m, L, g)
        log_p, nfe, log_q, x = eng.run(steps, np.zeros((m, L), dtype=np.int64), u, score=False)
        outs.append((x, steps, log_p, nfe, log_q))
    return tuple(np.concatenate([o[i] for o in outs]) for i in range(5))


def _validate_length(lang, L):
    """Let the language refuse ``L`` (e.g. not a multiple of ``l``), once per language and ``L``:
    ``in_support`` of one sequence costs about 10 ms at L = 512 (a loop over positions)."""
    done = lang.__dict__.setdefault("_mc_valid_lengths", set())
    if L not in done:
        lang.in_support(np.zeros((1, L), dtype=np.int64))
        done.add(L)


def _draw_chunk(rule, m, L, g):
    steps = draw_steps(rule, m, L, rng=g)  # (m, L)
    u = g.random((m, L))  # (m, L) one uniform per position
    return steps, u


def _rule_num_steps(rule: StepRule, L: int) -> int:
    return rule.num_steps(L)


def _language_summary(lang) -> dict:
    try:
        return lang.describe()
    except Exception:  # noqa: BLE001 - a model object may not describe itself
        return {"kind": type(lang).__name__}


def write_progress(done, total, t0, stream):
    """One carriage-returned progress line of a Monte Carlo run (done / total sequences, rate, time)."""
    el = time.perf_counter() - t0
    rate = done / el if el > 0 else float("nan")
    stream.write(f"\rsampling {done}/{total} sequences ({rate:.0f}/s, {el:.0f} s)")
    stream.flush()


def run_monte_carlo(
    lang,
    L,
    rule: StepRule,
    num_samples,
    *,
    rng=None,
    ci_alpha: float = 0.05,
    batch_size=None,
    progress: bool = False,
    instance_kl: bool = True,
    dependencies=False,
    model=None,
    method: str = "auto",
) -> SamplerResult:
    r"""Monte Carlo estimates for the idealised sampler of ``lang`` at length ``L``.

    Parameters
    ----------
    lang : Language or str or os.PathLike
        A language, or a preset name or language file (:func:`mdm_exact.languages.as_language`).
        The data law :math:`q` (scores samples; the perfect model unless ``model`` is given).
    L : int
        Sequence length.
    rule : StepRule
        Step rule (:mod:`mdm_exact.sampler.schedules`); ``LeftToRight()`` is the AR sampler.
    num_samples : int
        Number of generated sequences (and of data sequences for the instance KL).
    rng : None, int, SeedSequence or Generator
        Root of the randomness (``np.random.default_rng(rng)``); chunk ``c`` uses
        ``rng.spawn(n_chunks)[c]``.
    ci_alpha : float
        Miscoverage of every interval (two-sided, ``1 - ci_alpha`` confidence).
    batch_size : int, optional
        Sequences per kernel call (memory ``O(batch_size * L)`` plus per-thread
        ``O(L * states)``); rounded up to a multiple of :data:`CHUNK`. Does not change results.
    progress : bool
        Progress line on stderr.
    instance_kl : bool
        Estimate the Lemma B.2 bound :math:`\mathbb E_\tau D_{KL}(q \| p_\tau) / L`.
    dependencies : bool or int
        Per-step separator/dependency counts (Definitions B.4-B.7). ``True`` uses the n-gram
        order of ``lang``; an int ``n >= 2`` sets the order.
    model : object, optional
        A predictor with ``conditional_marginals`` used for sampling instead of ``lang``
        (e.g. ``mdm_exact.sampler.models.PerturbedModel``); runs on the NumPy reference.
    method : {"auto", "fast", "reference"}
        Engine choice; see the module docstring.

    Returns
    -------
    SamplerResult
        The shared fields (:mod:`mdm_exact.sampler.results`) as estimates: ``ser``,
        ``gen_ppl`` (token-weighted over samples in ``supp q``), ``gen_ppl_seq_mean`` (mean of
        per-sequence perplexities), ``nfe_mean``, ``instance_kl_total`` and
        ``instance_kl_per_token`` (``None`` without ``instance_kl``), ``ci_alpha``. Intervals
        (``intervals``, keys as in ``to_dict()``): ``ser_ci`` (Clopper-Pearson), ``gen_ppl_ci``
        (the normal interval of the mean per-token NLL, mapped through ``exp``: an interval on
        the log scale), ``gen_ppl_seq_mean_ci`` (delta method on the log scale, never below 0), ``mean_log_prob_per_token_ci``,
        ``nfe_ci``, ``instance_kl_total_ci`` and ``instance_kl_per_token_ci`` (mean +- z SE).
        Extras: ``num_errors``, ``num_in_support``, ``mean_log_prob_per_token`` (over samples
        in ``supp q``), ``nfe_hist``, ``nfe_expected`` (STATEMENTS.md §4.E), the dependency
        counts, ``seconds``, ``samples_per_second``, ``interrupted``, ``num_samples_done``,
        ``num_samples``, ``seed``, ``language``, ``model``.

    Notes
    -----
    Lemma B.2 (as reconstructed, STATEMENTS.md §4.C):
    :math:`D_{KL}(q\|p) \le \mathbb E_\tau D_{KL}(q\|p_\tau)`. With :math:`x \sim q` and
    :math:`\tau` drawn independently,

    .. math:: \log q(x) - \sum_k \sum_{j\in\mathcal M_k} \log p(x_j \mid x_{\mathcal M_{<k}})

    is an unbiased estimate of :math:`\mathbb E_\tau D_{KL}(q\|p_\tau)` (chain rule,
    Lemma B.3). The number of non-empty steps is what a per-sequence ``ddpm_cache`` calls the
    network; its expectation is :math:`\sum_k 1-(1-p^{(k)})^L` (STATEMENTS.md §4.E).
    """
    lang = as_language(lang)
    L = as_length(L)
    n = as_count(num_samples, "num_samples")
    if not isinstance(rule, StepRule):
        raise ValueError(f"rule: expected a StepRule from mdm_exact.sampler.schedules, got {type(rule).__name__}")
    if not 0 < ci_alpha < 1:
        raise ValueError(f"ci_alpha: expected 0 < ci_alpha < 1, got {ci_alpha}")
    dep_order = None
    if dependencies is not False and dependencies is not None:
        if dependencies is True:
            dep_order = getattr(lang, "order", None)
            if dep_order is None:
                raise ValueError(
                    "dependencies=True needs an n-gram language (separators are defined for n-grams, "
                    "Definition B.4); pass dependencies=n to count them for order n"
                )
        else:
            dep_order = as_count(dependencies, "dependencies", minimum=2)
    if batch_size is None:
        batch_size = max(CHUNK, min(8 * CHUNK, 2**22 // L))  # about 32 MiB per (batch, L) array
    batch_size = as_count(batch_size, "batch_size")
    chunks_per_batch = max(1, math.ceil(batch_size / CHUNK))
    rng = np.random.default_rng(rng)
    seed_seq = getattr(rng.bit_generator, "seed_seq", None)
    seed = getattr(seed_seq, "entropy", None)
    _validate_length(lang, L)
    N = _rule_num_steps(rule, L)
    eng = _Engine(lang, L, model=model, method=method)
    eng.warm(L)  # one-time kernel loading is not part of ``seconds`` (the sampling time)
    n_chunks = math.ceil(n / CHUNK)
    children = rng.spawn(n_chunks)

    log_q_all, nfe_all, kl_all = [], [], []
    dep_sums = None
    done = 0
    interrupted = False
    stream = sys.stderr
    t0 = time.perf_counter()
    try:
        for c0 in range(0, n_chunks, chunks_per_batch):
            cs = range(c0, min(n_chunks, c0 + chunks_per_batch))
            sizes = [min(CHUNK, n - c * CHUNK) for c in cs]
            draws = []
            for c, m in zip(cs, sizes):
                g = children[c]
                steps, u = _draw_chunk(rule, m, L, g)
                xd = steps2 = None
                if instance_kl:
                    xd = lang.sample(m, L, rng=g)  # (m, L) data x ~ q
                    steps2 = draw_steps(rule, m, L, rng=g)  # (m, L) an independent instance
                draws.append((steps, u, xd, steps2))
            steps = np.concatenate([d[0] for d in draws])  # (b, L)
            u = np.concatenate([d[1] for d in draws])  # (b, L)
            _, nfe, log_q, _x = eng.run(steps, np.zeros(steps.shape, dtype=np.int64), u, score=False)
            log_q_all.append(log_q)
            nfe_all.append(nfe)
            if instance_kl:
                xd = np.concatenate([d[2] for d in draws])
                steps2 = np.concatenate([d[3] for d in draws])
                lp_tau, _, lq, _ = eng.run(steps2, xd, np.zeros(xd.shape), score=True)
                kl_all.append(lq - lp_tau)
            if dep_order is not None:
                sums = _dependency_sums(steps, dep_order, N)
                dep_sums = sums if dep_sums is None else {k: dep_sums[k] + v for k, v in sums.items()}
            done += steps.shape[0]
            if progress:
                write_progress(done, n, t0, stream)
    except KeyboardInterrupt:
        interrupted = True
        if done == 0:
            raise
    finally:
        if progress:
            stream.write("\n")
            stream.flush()
    seconds = time.perf_counter() - t0
    log_q = np.concatenate(log_q_all)  # (done,)
    nfe = np.concatenate(nfe_all)  # (done,)
    out = _estimates(log_q, nfe, L, ci_alpha)
    if instance_kl:
        kl_total = np.concatenate(kl_all)  # (done,) log q(x) - log p_tau(x) per sample
        kl = kl_total / L  # (done,)
        if np.any(np.isnan(kl)):
            raise RuntimeError("instance KL: NaN in the per-sample estimates (a bug)")
        # E_tau KL >= 0: the interval is intersected with [0, inf) (same coverage)
        m_, lo, hi = mean_ci(kl, ci_alpha)
        out["instance_kl_per_token"] = m_
        out["instance_kl_per_token_ci"] = [max(lo, 0.0), max(hi, 0.0)]
        m_, lo, hi = mean_ci(kl_total, ci_alpha)
        out["instance_kl_total"] = m_
        out["instance_kl_total_ci"] = [max(lo, 0.0), max(hi, 0.0)]
    else:
        for k in ("instance_kl_per_token", "instance_kl_total"):
            out[k] = None
            out[k + "_ci"] = None
    if isinstance(rule, ScheduleSteps) or not isinstance(rule, LeftToRight):
        out["nfe_expected"] = expected_nonempty_steps(rule, L)
    else:
        out["nfe_expected"] = float(L)
    if dep_sums is not None:
        out["dependency_order"] = int(dep_order)
        for k, v in dep_sums.items():
            out[k] = (v / done).tolist()
        out["D_tau_mean"] = float(dep_sums["D_k"].sum() / done)
        out["D_tau_literal_mean"] = float(dep_sums["D_k_literal"].sum() / done)
        out["same_step_pairs_mean"] = float(dep_sums["same_step_pairs_k"].sum() / done)
    out.update(
        {
            "seconds": seconds,
            "samples_per_second": done / seconds if seconds > 0 else float("inf"),
            "engine": eng.kind,
            "interrupted": interrupted,
            "num_samples_done": int(done),
            "L": L,
            "num_steps": int(N),
            "num_samples": n,
            "seed": seed if isinstance(seed, (int, type(None))) else str(seed),
            "language": _language_summary(lang),
            "model": None if model is None else _language_summary(model),
        }
    )
    shared = {k: out.pop(k) for k in ("ser", "gen_ppl", "gen_ppl_seq_mean", "nfe_mean", "instance_kl_total", "instance_kl_per_token")}
    intervals = {k: out.pop(k) for k in [k for k in out if k.endswith("_ci")]}
    engine = out.pop("engine")
    return SamplerResult(
        engine=engine,
        L=out.pop("L"),
        V=int(lang.vocab_size),
        num_steps=out.pop("num_steps"),
        rule=rule.to_dict(),
        ci_alpha=ci_alpha,
        intervals=intervals,
        extra=out,
        **shared,
    )


def _estimates(log_q, nfe, L, ci_alpha):
    n = log_q.shape[0]
    inside = np.isfinite(log_q)  # (n,)
    errors = int(n - inside.sum())
    ser_lo, ser_hi = clopper_pearson(errors, n, ci_alpha)
    out = {"ser": errors / n, "ser_ci": [ser_lo, ser_hi], "num_errors": errors, "num_in_support": int(inside.sum())}
    lpt = log_q[inside] / L  # (n_in,) log q(x) per token
    if lpt.size:
        m, lo, hi = mean_ci(lpt, ci_alpha)
        out["mean_log_prob_per_token"] = m
        out["mean_log_prob_per_token_ci"] = [lo, hi]
        out["gen_ppl"] = math.exp(-m)
        out["gen_ppl_ci"] = [math.exp(-hi), math.exp(-lo) if lo > -np.inf else math.inf]
        # per-sequence perplexities exp(-lpt): positive, heavy-tailed; interval on the log scale (never < 0,
        # no overflow before the final exp)
        m2, lo2, hi2 = log_scale_mean_ci(-lpt, ci_alpha)
        out["gen_ppl_seq_mean"] = m2
        out["gen_ppl_seq_mean_ci"] = [lo2, hi2]
    else:
        for k in ("mean_log_prob_per_token", "gen_ppl", "gen_ppl_seq_mean"):
            out[k] = None
            out[k + "_ci"] = None
    m, lo, hi = mean_ci(nfe.astype(np.float64), ci_alpha)
    out["nfe_mean"] = m
    out["nfe_ci"] = [lo, hi]
    vals, counts = np.unique(nfe, return_counts=True)
    out["nfe_hist"] = {int(v): int(c) for v, c in zip(vals, counts)}
    return out


def _dependency_sums(steps, n, N):
    """Per-step sums over sequences of S_k, D_k (corrected, literal), |M_k| and same-step pairs."""
    from mdm_exact.sampler import _kernels_mc as K

    b = steps.shape[0]
    S = np.empty((b, N), dtype=np.int64)  # (b, N)
    D = np.empty((b, N), dtype=np.int64)  # (b, N)
    m = np.empty((b, N), dtype=np.int64)  # (b, N)
    pairs = np.empty((b, N), dtype=np.int64)  # (b, N)
    K._dependencies_run(np.ascontiguousarray(steps, dtype=np.int64), int(n), int(N), S, D, m, pairs)
    return {
        "S_k": S.sum(axis=0),
        "D_k": D.sum(axis=0),
        "D_k_literal": (m - D).sum(axis=0),
        "M_k_size": m.sum(axis=0),
        "same_step_pairs_k": pairs.sum(axis=0),
    }


def step_dependencies(steps, n, num_steps=None):
    """Per-instance, per-step ``(S, D_corrected, D_literal, sizes, pairs)`` by the Numba kernel.

    ``steps`` (batch, L) 0-based step indices; each output has shape (batch, num_steps).
    Definitions B.4-B.7 as reconstructed (STATEMENTS.md §4.C; literal reading §7.2).
    """
    from mdm_exact.sampler import _kernels_mc as K

    st = np.ascontiguousarray(np.atleast_2d(steps), dtype=np.int64)
    N = int(st.max()) + 1 if num_steps is None else int(num_steps)
    b = st.shape[0]
    S = np.empty((b, N), dtype=np.int64)
    D = np.empty((b, N), dtype=np.int64)
    m = np.empty((b, N), dtype=np.int64)
    pairs = np.empty((b, N), dtype=np.int64)
    K._dependencies_run(st, as_count(n, "n", minimum=2), N, S, D, m, pairs)
    return S, D, m - D, m, pairs


__all__ = ["run_monte_carlo", "SamplerResult", "reference_run", "sample_idealised", "step_dependencies", "CHUNK"]
