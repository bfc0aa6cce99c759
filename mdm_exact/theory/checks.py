r"""Regression suite: every statement of :mod:`mdm_exact.theory.bounds`, measured on a grid of instances.

For each statement and instance the *measured* side is computed exactly where possible
(small ``L``: all ``V^L`` sequences and all instances :math:`\tau` are enumerated by
:class:`ExactInstances`, independently of the languages' own inference; step-assignment
probabilities by exact recurrences) or by Monte Carlo with a confidence interval (large
``L``, :func:`mdm_exact.sampler.montecarlo.run_monte_carlo`). Each record reports the bound, the
measured value, the slack, the tightness ratio and a status:

* ``holds`` / ``violated`` for exact values (tolerance :data:`TOL` for rounding);
* with an interval: ``holds`` if the whole interval is on the right side of the bound,
  ``violated`` if the whole interval is on the wrong side, ``inconclusive`` otherwise.

Statements whose reading is *known* to be false (the literal Definition B.5, the Jensen step
of Lemma C.5, STATEMENTS.md §7.2-7.3) and those whose constants come from secondary
summaries (Li & Cai) are marked ``believed=False``: their violations are reported as
findings and do not fail the suite. A violation of a statement believed true does.

The grid is documented in ``docs/bounds.md``; :func:`run_checks` runs it and
:func:`summarize` turns the records into the table that ``mdm-theory check`` prints.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp, rel_entr
from scipy.stats import binom

from mdm_exact.theory import bounds as B
from mdm_exact.languages import HMM, NGram
from mdm_exact.languages.base import all_sequences
from mdm_exact.sampler.schedules import FixedSizes, LeftToRight, RandomOrder, ScheduleSteps, balanced_sizes, schedule
from mdm_exact.theory.separators import instance_dependencies

#: Absolute tolerance for exact comparisons (float64 rounding of sums of ~1e4 terms).
TOL = 1e-9

# =========================================================================== exact measured sides


def separator_count_pmf(L, P, n) -> np.ndarray:
    r"""Exact law of :math:`S_k` (Definition B.4) when positions are revealed i.i.d. with probability ``P``.

    Dynamic programme over positions with state (current run length mod :math:`n-1`,
    separators so far); cost :math:`O(L^2)`. Returns ``pmf`` of shape ``(L // (n-1) + 1,)``.
    """
    L = B._pos_int(L, "L")
    n = B._pos_int(n, "n", minimum=2)
    P = B._real(P, "P", lo=0.0, hi=1.0)
    w = n - 1
    smax = L // w
    dist = np.zeros((w, smax + 1))  # (run mod w, S)
    dist[0, 0] = 1.0
    for _ in range(L):
        new = np.zeros_like(dist)
        new[0] += (1.0 - P) * dist.sum(axis=0)  # position not revealed: run ends
        if w == 1:
            new[0, 1:] += P * dist[0, :-1]
        else:
            new[1:w] += P * dist[0 : w - 1]  # run grows, no block completed
            new[0, 1:] += P * dist[w - 1, :-1]  # a block of n-1 completes
        dist = new
    return dist.sum(axis=0)


def expected_dependencies(L, p, P, n):
    r"""Exact :math:`\mathbb E[D_k]` (both readings) when positions are i.i.d. before/new/later with probabilities ``(P, p, 1-P-p)``.

    A new position starts a group (an interval touched) iff, scanning to its left, the start
    of the sequence or a run of :math:`n-1` revealed positions comes before any other new
    position. With :math:`g(j)` the probability of that over :math:`j` positions (a small
    Markov chain), :math:`\mathbb E[T]=p\sum_{i<L}g(i)`, :math:`\mathbb E[D^{\rm corr}]=Lp-\mathbb E[T]`,
    :math:`\mathbb E[D^{\rm lit}]=\mathbb E[T]`. ``p`` and ``P`` may be arrays (one entry per
    step); returns ``(corrected, literal)`` with their shape.
    """
    L = B._pos_int(L, "L")
    n = B._pos_int(n, "n", minimum=2)
    p = np.atleast_1d(np.asarray(p, dtype=np.float64))  # (K,)
    P = np.broadcast_to(np.asarray(P, dtype=np.float64), p.shape)  # (K,)
    if np.any(p < 0) or np.any(P < 0) or np.any(p + P > 1 + 1e-12):
        raise ValueError("expected_dependencies: need p, P >= 0 and p + P <= 1")
    r = np.clip(1.0 - P - p, 0.0, 1.0)  # (K,)
    w = n - 1
    alive = np.zeros(p.shape + (w,))  # (K, w): no new seen yet, current consecutive-revealed count
    alive[:, 0] = 1.0
    absorbed = np.zeros(p.shape)  # (K,) separated already
    gsum = np.zeros(p.shape)  # (K,) sum_{j < L} g(j)
    for _ in range(L):
        gsum += absorbed + alive.sum(axis=1)
        new = np.zeros_like(alive)
        new[:, 0] = r * alive.sum(axis=1)
        if w > 1:
            new[:, 1:] = P[:, None] * alive[:, :-1]
        absorbed = absorbed + P * alive[:, w - 1]
        alive = new
    ET = p * gsum
    corr = L * p - ET
    return np.maximum(corr, 0.0), ET


def step_distribution_quantities(probs):
    """``p^(k)`` and ``P^(k) = sum_{j<k} p^(j)`` for a schedule, shapes (N,)."""
    p = np.asarray(probs, dtype=np.float64)
    P = np.concatenate([[0.0], np.cumsum(p)[:-1]])  # (N,)
    return p, np.minimum(P, 1.0)


def enumerate_instances(rule, L, *, max_instances=200_000):
    """All instances :math:`\\tau` of a step rule with their probabilities (STATEMENTS.md §1.7).

    Returns ``(steps, probs)``: ``steps`` (T, L) int64 0-based step indices, ``probs`` (T,)
    summing to 1 (zero-probability instances dropped).
    """
    if isinstance(rule, ScheduleSteps):
        p = rule.p
        N = p.size
        if N**L > max_instances:
            raise ValueError(f"enumerating N^L = {N}^{L} instances exceeds {max_instances}")
        steps = np.array(list(itertools.product(range(N), repeat=L)), dtype=np.int64).reshape(-1, L)  # (N^L, L)
        with np.errstate(divide="ignore"):
            logw = np.log(p)[steps].sum(axis=1)  # (N^L,)
        keep = np.isfinite(logw)
        steps, w = steps[keep], np.exp(logw[keep])
        return steps, w / w.sum()
    if isinstance(rule, FixedSizes):
        rule.check_length(L)
        labels = np.repeat(np.arange(len(rule.sizes)), rule.sizes)
        count = math.factorial(L) // math.prod(math.factorial(s) for s in rule.sizes)
        if count > max_instances:
            raise ValueError(f"{count} instances exceed {max_instances}")
        steps = np.array(sorted(set(itertools.permutations(labels.tolist()))), dtype=np.int64).reshape(-1, L)
        return steps, np.full(steps.shape[0], 1.0 / steps.shape[0])
    if isinstance(rule, RandomOrder):
        if math.factorial(L) > max_instances:
            raise ValueError(f"L! = {math.factorial(L)} instances exceed {max_instances}")
        steps = np.array(list(itertools.permutations(range(L))), dtype=np.int64).reshape(-1, L)
        return steps, np.full(steps.shape[0], 1.0 / steps.shape[0])
    if isinstance(rule, LeftToRight):
        return np.arange(L, dtype=np.int64)[None, :], np.ones(1)
    raise TypeError(f"unknown step rule {rule!r}")


class MixtureModel:
    r"""An imperfect per-token model: :math:`p_\theta=(1-\eta)\,q_{0|t}+\eta/|\mathcal V|`.

    Deterministic, a function of the context only; satisfies Assumption 4.1 with
    :math:`\epsilon_{\rm learning}\le-\ln(1-\eta)` (STATEMENTS.md §3). Used by the checks
    when no model from :mod:`mdm_exact.sampler.models` is requested.
    """

    def __init__(self, lang, eta):
        self.lang = lang
        self.eta = B._real(eta, "eta", lo=0.0, hi=1.0)

    def mix(self, cond):
        V = cond.shape[-1]
        return (1.0 - self.eta) * cond + self.eta / V

    def conditional_marginals(self, x, revealed):
        cm = self.lang.conditional_marginals(x, revealed)  # (batch, L, V)
        rev = np.asarray(revealed, dtype=bool)
        return np.where(np.broadcast_to(rev, cm.shape[:2])[..., None], cm, self.mix(cm))

    def describe(self):
        return f"mixture(eta={self.eta:g})"


class ExactInstances:
    r"""Exact per-instance quantities by brute force over all :math:`V^L` sequences and :math:`2^L` revealed sets.

    Independent of the language's own inference: every conditional
    :math:`q(x_i\mid x_R)` is summed out of the explicit joint table (STATEMENTS.md §1.3;
    impossible contexts get the uniform law, as in :mod:`mdm_exact.languages.base`).

    Parameters
    ----------
    log_q : array_like, shape (V**L,)
        :math:`\log q(x)` in :func:`~mdm_exact.languages.base.all_sequences` order.
    V, L : int
    model : None, float or object
        ``None``: the perfect model :math:`q_{0|t}`; a float ``eta``: :class:`MixtureModel`
        applied to the table; otherwise an object with ``conditional_marginals(x, revealed)``.

    Attributes
    ----------
    epsilon_learning : float
        :math:`\max` over contexts with :math:`q(x_R)>0` and masked positions of
        :math:`D_{\rm KL}(q_{0|t}\|p_\theta)` (Assumption 4.1, STATEMENTS.md §3; the proofs of
        B.8 and C.2 use it only on such contexts, §7.9, so this is the demanding choice and
        agrees with :meth:`mdm_exact.sampler.models.PerturbedModel.epsilon_learning`).
    """

    MAX_CELLS = 6_000_000

    def __init__(self, log_q, V, L, *, model=None):
        self.V, self.L = int(V), int(L)
        lq = np.asarray(log_q, dtype=np.float64)
        if lq.shape != (self.V**self.L,):
            raise ValueError(f"log_q: expected shape ({self.V**self.L},), got {lq.shape}")
        if (2**self.L) * lq.size * self.L > self.MAX_CELLS:
            raise ValueError(f"V^L 2^L L = {(2**self.L) * lq.size * self.L} cells exceed {self.MAX_CELLS}")
        q = np.exp(lq)
        if abs(q.sum() - 1.0) > 1e-9:
            raise ValueError(f"log_q: the law sums to {q.sum():.12g}, expected 1")
        self.log_q, self.q = lq, q
        self.X = all_sequences(self.V, self.L)  # (V^L, L)
        self.support = q > 0
        V, L = self.V, self.L
        shape = (V,) * L
        Qt = q.reshape(shape)
        nmask = 2**L
        self.log_qR = np.empty((nmask, V**L))  # (2^L, V^L) log q(x_R)
        self.G = np.zeros((nmask, V**L, L))  # (2^L, V^L, L) log model prob of x_j given x_R
        eps = 0.0
        full = list(range(L))
        for m in range(nmask):
            R = [i for i in full if m >> i & 1]
            qR = np.broadcast_to(Qt.sum(axis=tuple(i for i in full if i not in R), keepdims=True), shape).reshape(-1)
            with np.errstate(divide="ignore"):
                self.log_qR[m] = np.log(qR)
            hidden = [i for i in full if i not in R]
            if not hidden:
                continue
            cond = np.empty((V**L, len(hidden), V))  # (V^L, |hidden|, V)
            for h, i in enumerate(hidden):
                qRi = Qt.sum(axis=tuple(a for a in full if a not in R and a != i), keepdims=True)
                arr = np.moveaxis(qRi, i, -1)  # others..., V
                arr = np.broadcast_to(arr, (V,) * (L - 1) + (V,))
                arr = np.broadcast_to(np.expand_dims(arr, i), (V,) * L + (V,)).reshape(V**L, V)
                with np.errstate(invalid="ignore", divide="ignore"):
                    c = np.where(qR[:, None] > 0, arr / np.where(qR > 0, qR, 1.0)[:, None], 1.0 / V)
                cond[:, h, :] = c
            if model is None:
                mc = cond
            elif isinstance(model, (int, float)):
                mc = (1.0 - float(model)) * cond + float(model) / V
            else:
                rev = np.zeros((V**L, L), dtype=bool)
                rev[:, R] = True
                mc = np.asarray(model.conditional_marginals(self.X, rev), dtype=np.float64)[:, hidden, :]
            live = qR > 0  # Assumption 4.1 is only used on contexts that occur (STATEMENTS.md §7.9)
            if live.any():
                eps = max(eps, float(rel_entr(cond[live], mc[live]).sum(axis=-1).max()))
            with np.errstate(divide="ignore"):
                lmc = np.log(mc)  # (V^L, |hidden|, V)
            for h, i in enumerate(hidden):
                self.G[m, :, i] = np.take_along_axis(lmc[:, h, :], self.X[:, i : i + 1], axis=1)[:, 0]
        self.epsilon_learning = eps

    # -- per-instance laws
    def _before_masks(self, steps):
        steps = np.atleast_2d(steps)  # (T, L)
        bits = (1 << np.arange(self.L)).astype(np.int64)  # (L,)
        before = steps[:, None, :] < steps[:, :, None]  # (T, L_j, L_i): i revealed before j
        return (before * bits).sum(axis=2)  # (T, L)

    def log_p_tau(self, steps):
        """:math:`\\log p_\\tau(x)` for instances ``steps`` (T, L); returns (T, V^L)."""
        masks = self._before_masks(steps)  # (T, L)
        out = np.zeros((masks.shape[0], self.V**self.L))  # (T, V^L)
        for j in range(self.L):
            out += self.G[masks[:, j], :, j]
        return out

    def kl_from(self, log_p):
        """:math:`D_{\\rm KL}(q\\|p)` for rows of ``log_p`` (T, V^L); ``inf`` when ``p = 0`` on ``supp q``."""
        lp = np.atleast_2d(log_p)[:, self.support]
        q = self.q[self.support]
        lq = self.log_q[self.support]
        with np.errstate(invalid="ignore"):
            terms = q * (lq - lp)
        out = terms.sum(axis=1)
        out[np.any(np.isneginf(lp), axis=1)] = np.inf
        return out

    def step_kls(self, steps_row):
        """Lemma B.3 right-hand side per step for one instance (N,)."""
        s = np.asarray(steps_row)
        N = int(s.max()) + 1
        bits = 1 << np.arange(self.L)
        masks = self._before_masks(s)[0]  # (L,)
        out = np.zeros(N)
        lq = self.q[self.support]
        for k in range(N):
            new = s == k
            if not new.any():
                continue
            m_before = int(bits[s < k].sum())
            m_upto = int(bits[s <= k].sum())
            sup = self.support
            log_cond_q = self.log_qR[m_upto][sup] - self.log_qR[m_before][sup]  # (|supp q|,)
            log_cond_p = sum(self.G[masks[j], :, j][sup] for j in np.flatnonzero(new))
            d = log_cond_q - log_cond_p
            out[k] = np.inf if np.any(np.isinf(d)) else float(np.sum(lq * d))
        return out

    def subset_entropy(self, m):
        """:math:`H(X_A)` for the subset with bitmask ``m``."""
        lq = self.log_qR[m][self.support]
        return float(-np.sum(self.q[self.support] * lq))

    def ser_from(self, log_p):
        p = np.exp(np.atleast_2d(log_p))
        return 1.0 - p[:, self.support].sum(axis=1)


def joint_from_language(lang, L):
    """``log q(x)`` over all ``V^L`` sequences from ``lang.log_prob``."""
    return lang.log_prob(all_sequences(lang.vocab_size, L))


def interval_language_table(l, M=1):
    r"""Example C.7 (STATEMENTS.md §4.D ``[reconstructed·M]``) as an explicit table, built from its definition.

    Token :math:`v\in\{0..2^{l-1}-1\}` at in-interval index :math:`a` holds one bit per other
    index :math:`b` (increasing :math:`b`, most significant first); the bit for :math:`b`
    must equal token :math:`b`'s bit for :math:`a`. :math:`q` is uniform on the
    :math:`2^{M\binom l2}` valid sequences. Returns ``(log_q, V, L)``.
    """
    V, L = 2 ** (l - 1), l * M
    X = all_sequences(V, L)

    def bit(tok, a, b):  # a's bit for partner b
        others = [c for c in range(l) if c != a]
        pos = others.index(b)
        return (tok >> (l - 2 - pos)) & 1

    valid = np.ones(X.shape[0], dtype=bool)
    for j in range(M):
        for a in range(l):
            for b in range(a + 1, l):
                valid &= bit(X[:, j * l + a], a, b) == bit(X[:, j * l + b], b, a)
    with np.errstate(divide="ignore"):
        lq = np.where(valid, -math.log(valid.sum()), -np.inf)
    return lq, V, L


# =========================================================================== records


@dataclass
class Statement:
    name: str
    func: object
    reference: str
    believed: bool = True
    finding: str = ""


def _record(statement, instance, bound, measured, *, direction="upper", ci=None, count=1, violations=None, detail=None):
    """One result row; ``direction`` is ``upper`` (measured <= bound), ``lower`` or ``equal``."""
    bound = float(bound)
    measured = float(measured)
    if direction == "upper":
        slack = bound - measured
        if abs(bound) <= TOL and abs(measured) <= TOL:
            ratio = None  # 0 vs 0 up to rounding: no tightness information (left out of the summary's maximum)
        else:
            ratio = measured / bound if bound > 0 else (0.0 if measured <= 0 else math.inf)
    elif direction == "lower":
        slack = measured - bound
        ratio = bound / measured if measured > 0 else (0.0 if bound <= 0 else math.inf)
    else:
        slack = -abs(measured - bound)
        ratio = 1.0
    if ci is not None:
        lo, hi = float(ci[0]), float(ci[1])
        ok = hi <= bound + TOL if direction == "upper" else lo >= bound - TOL
        bad = lo > bound + TOL if direction == "upper" else hi < bound - TOL
        status = "holds" if ok else ("violated" if bad else "inconclusive")
    else:
        tol = TOL * max(1.0, abs(bound))
        status = "holds" if slack >= -tol or (math.isinf(bound) and bound > 0 and direction == "upper") else "violated"
    if violations is None:
        violations = 0 if status != "violated" else 1
    return {
        "statement": statement,
        "instance": instance,
        "bound": bound,
        "measured": measured,
        "measured_ci": None if ci is None else [float(ci[0]), float(ci[1])],
        "direction": direction,
        "slack": slack,
        "ratio": ratio,  # None when bound and measured are both 0 up to rounding
        "status": status,
        "count": int(count),
        "violations": int(violations),
        "detail": detail or {},
    }


def _worst(statement, instance, bounds_arr, measured_arr, *, direction="upper", detail=None):
    """Aggregate per-:math:`\\tau` comparisons into one record (worst slack), counting violations."""
    b = np.asarray(bounds_arr, dtype=np.float64)
    m = np.asarray(measured_arr, dtype=np.float64)
    if direction == "upper":
        slack = b - m
    elif direction == "lower":
        slack = m - b
    else:
        slack = -np.abs(m - b)
    slack = np.where(np.isnan(slack), -np.inf, slack)
    tol = TOL * np.maximum(1.0, np.abs(np.where(np.isfinite(b), b, 1.0)))
    viol = int(np.sum(slack < -tol))
    i = int(np.argmin(slack))
    return _record(statement, instance, b[i], m[i], direction=direction, count=b.size, violations=viol, detail=detail)


# =========================================================================== grid


def _random_ngram(order, V, seed, *, reading="multiply", temperature=2.0, threshold=0.1):
    try:
        from mdm_exact.languages.random import random_ngram
    except ImportError:  # pragma: no cover - fallback before the languages team lands
        rng = np.random.default_rng(seed)

        def rows(shape):
            z = rng.standard_normal(shape)
            lg = z * temperature if reading == "multiply" else z / temperature
            pr = np.exp(lg - lg.max(axis=-1, keepdims=True))
            pr /= pr.sum(axis=-1, keepdims=True)
            keep = pr >= threshold
            np.put_along_axis(keep, np.argmax(pr, axis=-1)[..., None], True, axis=-1)
            pr = np.where(keep, pr, 0.0)
            return pr / pr.sum(axis=-1, keepdims=True)

        init = np.ones(1)
        for j in range(order - 1):
            init = (init[:, None] * rows((V**j, V))).reshape(-1)
        return NGram(order, init, rows((V ** (order - 1), V)))
    return random_ngram(order, V, temperature, threshold, reading=reading, rng=seed)


def _random_hmm(S, V, seed, *, reading="multiply", temperature=2.0, threshold=0.1):
    try:
        from mdm_exact.languages.random import random_hmm
    except ImportError:  # pragma: no cover
        rng = np.random.default_rng(seed)
        d = lambda shape: rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])  # noqa: E731
        return HMM(d((1, S))[0], d((S, S)), d((S, V)))
    return random_hmm(S, V, temperature, threshold, reading=reading, rng=seed)


def copy_chain(V=2, stay=1 - 1e-3):
    """Near-deterministic bigram: ``x_1`` uniform, ``x_{k+1} = x_k`` with probability ``stay`` (STATEMENTS.md §7.2)."""
    T = np.full((V, V), (1.0 - stay) / (V - 1))
    np.fill_diagonal(T, stay)
    return NGram(2, np.full(V, 1.0 / V), T)


def _load_preset(name):
    try:
        from mdm_exact.languages import load_language
    except ImportError:
        return None
    try:
        return load_language(name)
    except (ValueError, FileNotFoundError, KeyError):
        return None


def exact_languages(quick):
    """Small languages for the exact checks: ``(label, language, n or None, L)``."""
    out = [
        ("copy-chain V=2", copy_chain(), 2, 4 if quick else 5),
        ("random 2-gram V=2 (multiply)", _random_ngram(2, 2, 11, threshold=0.2), 2, 5),  # deterministic: 2 sequences
        ("random 2-gram V=2 (multiply, temp 1)", _random_ngram(2, 2, 16, temperature=1.0, threshold=0.1), 2, 5),
        ("random 2-gram V=3 (divide)", _random_ngram(2, 3, 12, reading="divide", threshold=0.3, temperature=0.5), 2, 4),
        ("random 3-gram V=2 (multiply)", _random_ngram(3, 2, 13, threshold=0.2), 3, 5 if quick else 6),
        ("random HMM S=3 V=2", _random_hmm(3, 2, 14, threshold=0.2), None, 5),
    ]
    if not quick:
        out.append(("random 3-gram V=3 (divide)", _random_ngram(3, 3, 15, reading="divide", threshold=0.3, temperature=0.5), 3, 4))
        for name, n in (("paper-2gram", 2), ("paper-3gram", 3), ("paper-hmm", None)):
            lang = _load_preset(name)
            if lang is not None:
                out.append((name, lang, n, 3))
    return out


def exact_rules(L, quick):
    rules = [("linear N=1", schedule("linear", 1)), ("linear N=2", schedule("linear", 2)), ("cosine N=3", schedule("cosine", 3))]
    if 3**L > 800:
        rules[-1] = ("cosine N=2", schedule("cosine", 2))
    if not quick:
        rules += [("fixed balanced N=2", FixedSizes(balanced_sizes(L, 2))), ("random-order", RandomOrder())]
    return rules


_ENGINE_CACHE: dict = {}


def _make_model(lang, spec):
    """``spec``: ``0`` / ``None`` (perfect), a float ``eta`` (mixture with uniform) or
    ``("perturbed", eta, seed)`` (:class:`mdm_exact.sampler.models.PerturbedModel`)."""
    if not spec:
        return None
    if isinstance(spec, (int, float)):
        return float(spec)
    try:
        from mdm_exact.sampler.models import PerturbedModel
    except ImportError:  # pragma: no cover - before the exact-engine team lands
        return MixtureModel(lang, spec[1])
    return PerturbedModel(lang, spec[1], rng=spec[2])


def _model_label(spec):
    if not spec:
        return "perfect"
    if isinstance(spec, (int, float)):
        return f"mixture eta={spec:g}"
    return f"perturbed eta={spec[1]:g} seed={spec[2]}"


def _engine(label, lang, L, spec):
    key = (label, L, spec)
    if key not in _ENGINE_CACHE:
        _ENGINE_CACHE[key] = ExactInstances(joint_from_language(lang, L), lang.vocab_size, L, model=_make_model(lang, spec))
    return _ENGINE_CACHE[key]


def exact_models(quick):
    return (0.0, 0.05) if quick else (0.0, 0.05, ("perturbed", 0.5, 0))


def _exact_cases(quick):
    for label, lang, n, L in exact_languages(quick):
        for spec in exact_models(quick):
            eng = _engine(label, lang, L, spec)
            for rlabel, rule in exact_rules(L, quick):
                steps, w = enumerate_instances(rule, L)
                inst = f"{label}, L={L}, {rlabel}, model={_model_label(spec)}"
                yield inst, lang, n, L, eng, rule, steps, w


# =========================================================================== statement checks


def check_a1(quick=False):
    """Lemma A.1 on random joint laws with random product laws, and its tight case."""
    rng = np.random.default_rng(101)
    recs = []
    for k, V in [(2, 2), (2, 4), (3, 2), (3, 3), (4, 2)] if not quick else [(2, 3), (3, 2)]:
        reps = 60 if not quick else 20
        bnd, meas, bd = [], [], []
        for r in range(reps):
            conc = [0.05, 0.3, 1.0, 5.0][r % 4]
            q = rng.dirichlet(np.full(V**k, conc)).reshape((V,) * k)
            marg = [q.sum(axis=tuple(a for a in range(k) if a != i)) for i in range(k)]
            ps = [m if r % 3 == 0 else rng.dirichlet(np.full(V, 2.0)) * 0.3 + 0.7 * m for m in marg]
            prod = ps[0]
            for pi in ps[1:]:
                prod = np.multiply.outer(prod, pi)
            kl = float(rel_entr(q, prod).sum())
            kli = [float(rel_entr(m, pi).sum()) for m, pi in zip(marg, ps)]
            bnd.append(B.lemma_a1_bound(k, V, kli))
            meas.append(kl)
            bd.append(B.lemma_a1_bound(k, V, delta=max(kli)))
        recs.append(_worst("A.1", f"random joint laws k={k} V={V} ({reps} laws)", bnd, meas))
        recs.append(_worst("A.1", f"random joint laws k={k} V={V}, delta form", bd, meas))
    # tight case: k copies of a uniform symbol
    for k, V in [(2, 2), (3, 4)]:
        q = np.zeros((V,) * k)
        for v in range(V):
            q[(v,) * k] = 1.0 / V
        prod = np.full((V,) * k, float(V) ** -k)
        recs.append(_record("A.1", f"tight case: {k} copies of a uniform symbol, V={V}", B.lemma_a1_bound(k, V), rel_entr(q, prod).sum()))
    return recs


def check_b2(quick=False):
    recs = []
    for inst, lang, n, L, eng, rule, steps, w in _exact_cases(quick):
        lp = eng.log_p_tau(steps)
        kl_tau = eng.kl_from(lp)
        logp = logsumexp(lp + np.log(w)[:, None], axis=0)
        recs.append(_record("B.2", inst, B.lemma_b2_bound(kl_tau, w), eng.kl_from(logp)[0], count=len(w)))
    return recs


def check_b3(quick=False):
    recs = []
    for inst, lang, n, L, eng, rule, steps, w in _exact_cases(quick):
        sel = steps[:: max(1, len(steps) // 20)]
        kl_tau = eng.kl_from(eng.log_p_tau(sel))
        rhs = [B.lemma_b3_identity(eng.step_kls(s)) for s in sel]
        recs.append(_worst("B.3", inst, rhs, kl_tau, direction="equal"))
    return recs


def _check_b8(quick, reading, name):
    recs = []
    for inst, lang, n, L, eng, rule, steps, w in _exact_cases(quick):
        if n is None:
            continue
        kl_tau = eng.kl_from(eng.log_p_tau(steps))
        _, D = instance_dependencies(steps, n, reading=reading)
        Dtau = D.sum(axis=1)
        b = [B.lemma_b8_bound(d, L, lang.vocab_size, eng.epsilon_learning) for d in Dtau]
        recs.append(_worst(name, inst, b, kl_tau, detail={"epsilon_learning": eng.epsilon_learning}))
    return recs


def check_b8(quick=False):
    return _check_b8(quick, "corrected", "B.8")


def check_b8_literal(quick=False):
    return _check_b8(quick, "literal", "B.8-literal")


def _check_b9(quick, reading, name):
    recs = []
    for inst, lang, n, L, eng, rule, steps, w in _exact_cases(quick):
        if n is None:
            continue
        lp = eng.log_p_tau(steps)
        logp = logsumexp(lp + np.log(w)[:, None], axis=0)
        _, D = instance_dependencies(steps, n, reading=reading)
        ED = float(w @ D.sum(axis=1))
        b = B.lemma_b9_bound(ED, L, lang.vocab_size, eng.epsilon_learning)
        recs.append(_record(name, inst, b, eng.kl_from(logp)[0], count=1))
    return recs


def check_b9(quick=False):
    return _check_b9(quick, "corrected", "B.9")


def check_b9_literal(quick=False):
    return _check_b9(quick, "literal", "B.9-literal")


def _b10_grid(quick):
    Ls = (64, 512) if quick else (64, 512, 2048)
    for L in Ls:
        for n in (2, 3, 4):
            if L % (n - 1):
                continue
            for P in (0.1, 0.3, 0.6):
                for p in (0.002, 0.01, 0.05):
                    yield L, n, P, p


def check_b10(quick=False):
    recs = []
    for L, n, P, p in _b10_grid(quick):
        bd = B.lemma_b10_bounds(L, p, P, n)
        thr = bd["new_threshold"]
        meas_new = float(binom.sf(math.ceil(thr - 1e-12) - 1, L, p))  # P[N_k >= 2Lp]
        recs.append(_record("B.10", f"Pr[N_k >= 2Lp], L={L} p={p}", bd["new_tail_bound"], meas_new))
        pmf = separator_count_pmf(L, P, n)
        meas_sep = float(pmf[: math.floor(bd["separator_threshold"] + 1e-12) + 1].sum())
        recs.append(_record("B.10", f"Pr[S_k <= L P^(n-1)/(2(n-1))], L={L} n={n} P={P}", bd["separator_tail_bound"], meas_sep))
    return recs


def check_b11(quick=False):
    recs = []
    for L, n, P, p in _b10_grid(quick):
        corr, _ = expected_dependencies(L, p, P, n)
        bd = B.lemma_b11_bound(L, p, P, n)
        recs.append(_record("B.11", f"E[D_k], L={L} n={n} P={P} p={p}", bd["total"], corr[0], detail=bd))
    return recs


def _b12_grid(quick):
    return [(2, 0.3), (2, 0.2), (3, 0.3)] if quick else [(2, 0.3), (2, 0.2), (2, 0.1), (3, 0.3), (3, 0.2), (4, 0.3)]


def check_b12(quick=False):
    """Lemma B.12's core: the constructed schedule keeps :math:`\\sum_k\\mathbb E[D_k]\\le4\\epsilon L` (exact), at L_min and 4 L_min."""
    recs = []
    for n, eps in _b12_grid(quick):
        probs = B.lemma_b12_schedule(eps, n)
        Lmin = B.lemma_b12_min_length(eps, n)
        for L in (Lmin, 4 * Lmin) if not quick else (Lmin,):
            if L > 20000:
                continue
            p, P = step_distribution_quantities(probs)
            corr, _ = expected_dependencies(L, p, P, n)
            recs.append(
                _record(
                    "B.12",
                    f"sum_k E[D_k] vs 4 eps L, n={n} eps={eps} N={len(probs)} L={L}",
                    4 * eps * L,
                    float(corr.sum()),
                    detail={"num_steps": len(probs), "dependency_bound": B.lemma_b12_dependency_bound(L, eps, n)},
                )
            )
    return recs


def check_theorem_42(quick=False):
    """Theorem 4.2 by Monte Carlo: the unbiased Lemma B.2 quantity E_tau KL(q||p_tau)/L (an upper bound on log TER gap) vs the bound."""
    try:
        from mdm_exact.sampler.montecarlo import run_monte_carlo
    except ImportError:
        return [{**_record("4.2", "Monte Carlo engine not available", 0.0, 0.0), "status": "skipped"}]
    recs = []
    cases = [("random 2-gram V=3", _random_ngram(2, 3, 21, threshold=0.0), 2, 0.3)]
    if not quick:
        cases.append(("random 2-gram V=3", _random_ngram(2, 3, 21, threshold=0.0), 2, 0.2))
        lang = _load_preset("paper-2gram-t0")
        if lang is not None:
            cases.append(("paper-2gram-t0", lang, 2, 0.3))
    for label, lang, n, eps in cases:
        L = B.lemma_b12_min_length(eps, n)
        rule = ScheduleSteps(tuple(B.lemma_b12_schedule(eps, n)), label="b12")
        res = run_monte_carlo(lang, L, rule, 64 if quick else 1000, rng=42, ci_alpha=1e-3, instance_kl=True).to_dict()
        lo, hi = res["instance_kl_per_token_ci"]
        bound = B.lemma_b12_kl_bound(L, eps, n, lang.vocab_size, 0.0) / L  # log TER(p) - log TER(q)
        recs.append(
            _record(
                "4.2",
                f"{label}, L={L}, B.12 schedule N={len(rule.probs)}, eps={eps}, perfect model (upper CI of E_tau KL/L)",
                bound,
                res["instance_kl_per_token"],
                ci=(lo, hi),
            )
        )
    return recs


def check_c1(quick=False):
    recs = []
    for L in (4, 16, 64) if quick else (4, 16, 64, 128):
        for name in ("linear", "cosine"):
            for N in (L, 4 * L, L * L, 4 * L * L):
                if N > 20_000:
                    continue
                p = schedule(name, N).p
                c = B.lemma_c1_bound(p, L)
                if c["union_bound"] >= 1.0:
                    continue  # vacuous: the union bound says nothing
                recs.append(_record("C.1", f"{name} N={N}, L={L}", c["union_bound"], c["exact"]))
    return recs


def check_c2(quick=False):
    recs = []
    for label, lang, n, L in exact_languages(quick):
        for spec in (0.05, 0.2) if quick else (0.05, 0.2, ("perturbed", 0.3, 1), ("perturbed", 1.0, 2)):
            eng = _engine(label, lang, L, spec)
            for rlabel, rule in (("left-to-right", LeftToRight()), ("random-order", RandomOrder())):
                steps, w = enumerate_instances(rule, L)
                acc = 1.0 - eng.ser_from(eng.log_p_tau(steps))  # (T,)
                b = B.lemma_c2_bound(L, eng.epsilon_learning)
                inst = f"{label}, L={L}, {rlabel}, {_model_label(spec)}, eps={eng.epsilon_learning:.3g}"
                recs.append(_worst("C.2", inst, np.full(acc.size, b), acc, direction="lower"))
    return recs


def _c5_schedules(N, rng):
    yield "uniform", np.full(N, 1.0 / N)
    yield "cosine", schedule("cosine", N).p
    yield "linear-ramp", np.arange(1, N + 1) / (N * (N + 1) / 2)
    yield "dirichlet(1)", rng.dirichlet(np.ones(N))
    yield "dirichlet(0.1)", rng.dirichlet(np.full(N, 0.1))


def _c5_grid(quick):
    rng = np.random.default_rng(5)
    for l in (2, 3, 5, 8, 10):
        for N in (2, 4, 8, 16, 64) if quick else (2, 3, 4, 8, 16, 64, 256, 1024):
            for sname, p in _c5_schedules(N, rng):
                p = p / p.sum()
                yield l, N, sname, p


def check_c5(quick=False):
    recs = []
    for l, N, sname, p in _c5_grid(quick):
        ex = B.lemma_c5_exact(p, l)
        recs.append(_record("C.5", f"l={l} N={N} {sname}", B.lemma_c5_bound(N, l), ex))
        recs.append(_record("C.5-first", f"l={l} N={N} {sname}", B.lemma_c5_intermediate(p, l), ex))
    return recs


def check_c5_jensen(quick=False):
    recs = []
    for l, N, sname, p in _c5_grid(quick):
        recs.append(_record("C.5-jensen", f"l={l} N={N} {sname}", B.lemma_c5_bound(N, l), B.lemma_c5_intermediate(p, l)))
    return recs


def check_c6(quick=False):
    """Lemma C.6 on the Example C.7 language: exact enumeration (l = 3) and the exact perfect-model formula (l = 3, 4, 5)."""
    recs = []
    lq, V, L = interval_language_table(3, 2 if not quick else 1)
    for eta in (0.0, 0.05):
        eng = ExactInstances(lq, V, L, model=eta if eta else None)
        for N in (1, 2, 3) if L <= 3 else (1, 2):
            rule = schedule("linear", N)
            steps, w = enumerate_instances(rule, L)
            lp = logsumexp(eng.log_p_tau(steps) + np.log(w)[:, None], axis=0)
            ser = eng.ser_from(lp)[0]
            b = B.lemma_c6_ser_lower_bound(L, 3, N, 0.5)
            recs.append(_record("C.6", f"interval l=3, L={L}, linear N={N}, model eta={eta}, p_err=1/2 (exact enumeration)", b, ser, direction="lower"))
    lang = _load_preset("interval-l3")
    if lang is not None and not quick:
        for spec in (("perturbed", 0.05, 0), ("perturbed", 0.1, 1)):
            eng = ExactInstances(lq, V, L, model=_make_model(lang, spec))
            eps = eng.epsilon_learning
            for N in (1, 2):
                rule = schedule("linear", N)
                steps, w = enumerate_instances(rule, L)
                ser = eng.ser_from(logsumexp(eng.log_p_tau(steps) + np.log(w)[:, None], axis=0))[0]
                p_err = B.example_c7_p_err(eps, form="pinsker")
                b = B.lemma_c6_ser_lower_bound(L, 3, N, p_err)
                inst = f"interval l=3, L={L}, linear N={N}, {_model_label(spec)}, eps={eps:.3g}, p_err=1/2-eps (exact enumeration)"
                recs.append(_record("C.6", inst, b, ser, direction="lower"))
    for l in (3, 4, 5):
        for L in (l, 4 * l, 20 * l):
            for N in (1, L // 2 or 1, L, 4 * L):
                p = np.full(N, 1.0 / N)
                ser = 1.0 - B.interval_validity_perfect_model(p, l) ** (L // l)
                b = B.lemma_c6_ser_lower_bound(L, l, N, 0.5)
                recs.append(_record("C.6", f"interval l={l}, L={L}, linear N={N}, perfect model (exact formula)", b, ser, direction="lower"))
    return recs


class _BiasedPairModel:
    """Example C.7 with l = 2 (V = 2, L = 2): the model predicts bit 0 with 1/2 + Delta_a, 1/2 + Delta_b at the empty context."""

    def __init__(self, da, db):
        self.d = (da, db)

    def conditional_marginals(self, x, revealed):
        x = np.asarray(x)
        rev = np.asarray(revealed, dtype=bool)
        out = np.empty(x.shape + (2,))
        for i in range(2):
            other = 1 - i
            # the shared bit must equal the other token once it is revealed
            copy = np.stack([x[:, other] == 0, x[:, other] == 1], axis=-1).astype(float)
            biased = np.array([0.5 + self.d[i], 0.5 - self.d[i]])
            out[:, i] = np.where(rev[:, other, None], copy, biased)
            out[:, i] = np.where(rev[:, i, None], np.eye(2)[x[:, i]], out[:, i])
        return out


def check_c7(quick=False):
    """Example C.7: exact mismatch probability of a pair drawn at one step vs the formula and the p_err lower bounds."""
    recs = []
    lq, V, L = interval_language_table(2, 1)
    for da, db in [(0.0, 0.0), (0.05, 0.05), (0.06, -0.04), (-0.08, -0.03)]:
        model = _BiasedPairModel(da, db)
        eng = ExactInstances(lq, V, L, model=model)
        steps, w = enumerate_instances(schedule("linear", 1), L)
        err = eng.ser_from(eng.log_p_tau(steps))[0]
        recs.append(_record("C.7", f"l=2 pair, Delta=({da},{db}): formula", B.example_c7_error_probability(da, db), err, direction="equal"))
        for form in B.P_ERR_FORMS:
            try:
                pe = B.example_c7_p_err(eng.epsilon_learning, form=form)
            except ValueError:
                continue
            recs.append(_record("C.7", f"l=2 pair, Delta=({da},{db}), eps={eng.epsilon_learning:.2e}: p_err[{form}]", pe, err, direction="lower"))
    return recs


def _ser_exact(lang, L, rule, spec, eng):
    """Exact SER: the exact engine's DP (:func:`mdm_exact.sampler.exact.exact_output_law`) when
    available, else the sum over instances of :class:`ExactInstances`."""
    try:
        from mdm_exact.sampler.exact import exact_output_law
    except ImportError:
        exact_output_law = None
    if exact_output_law is not None:
        model = _make_model(lang, spec)
        model = MixtureModel(lang, model) if isinstance(model, float) else model
        return float(eng.ser_from(exact_output_law(lang, L, rule, model=model))[0])
    steps, w = enumerate_instances(rule, L)
    lp = logsumexp(eng.log_p_tau(steps) + np.log(w)[:, None], axis=0)
    return float(eng.ser_from(lp)[0])


def check_theorem_43(quick=False):
    recs = []
    for label, lang, n, L in exact_languages(quick):
        for spec in (0.0, 0.01) if quick else (0.0, 0.01, ("perturbed", 0.1, 3)):
            eng = _engine(label, lang, L, spec)
            for N in (L, 4 * L, L * L) if not quick else (L, L * L):
                rule = schedule("linear", N)
                ser = _ser_exact(lang, L, rule, spec, eng)
                b = B.theorem_43_ser_bound(L, rule.p, eng.epsilon_learning)
                inst = f"{label}, L={L}, linear N={N}, {_model_label(spec)}, eps={eng.epsilon_learning:.3g}"
                recs.append(_record("4.3", inst, b, ser))
    return recs


def check_theorem_44(quick=False):
    """Theorem 4.4 / C.9 with l = 5 (V = 16): exact perfect-model SER (formula checked against enumeration in the tests)."""
    recs = []
    for p_err_label, p_err in (("1/4", 0.25), ("15/32", 15 / 32), ("1/2 (perfect model)", 0.5)):
        for C in (0.2, B.theorem_c9_constant(p_err)):
            for L in (20, 100, 1000) if quick else (20, 100, 1000, 10000):
                N = max(1, int(C * L))
                ser = 1.0 - B.interval_validity_perfect_model(np.full(N, 1.0 / N), 5) ** (L // 5)
                b = B.theorem_c9_ser_lower_bound(L, N, p_err)
                recs.append(
                    _record("4.4", f"interval l=5, L={L}, N={N} (C={C:.4g}), p_err={p_err_label}", b, ser, direction="lower",
                            detail={"asymptotic_bound": B.theorem_c9_asymptotic(C, p_err), "ser_above_half": ser > 0.5})
                )
    recs.extend(_theorem_44_monte_carlo(quick))
    return recs


def _theorem_44_monte_carlo(quick):
    """Theorem 4.4 by Monte Carlo of the actual sampler on ``interval-l5`` (Clopper-Pearson,
    alpha = 1e-3); the record's detail says whether the interval covers the exact formula."""
    try:
        from mdm_exact.sampler.montecarlo import run_monte_carlo
    except ImportError:
        return []
    lang = _load_preset("interval-l5")
    if lang is None:
        return []
    recs = []
    for L, C in ((50, 0.2), (50, 1.0)) if quick else ((50, 0.2), (100, 0.2), (500, 0.2), (100, 1.0), (100, 4.0)):
        N = int(C * L)
        rule = schedule("linear", N)
        res = run_monte_carlo(lang, L, rule, 1000 if quick else 5000, rng=7, ci_alpha=1e-3, instance_kl=False).to_dict()
        exact = 1.0 - B.interval_validity_perfect_model(rule.p, 5) ** (L // 5)
        lo, hi = res["ser_ci"]
        b = B.theorem_c9_ser_lower_bound(L, N, 0.25)
        recs.append(
            _record("4.4", f"interval-l5 Monte Carlo, L={L}, N={N} (C={C:g}), p_err=1/4", b, res["ser"], direction="lower", ci=(lo, hi),
                    detail={"exact_formula": exact, "formula_in_ci": bool(lo <= exact <= hi)})
        )
    return recs


def _fixed_cases(quick):
    for label, lang, n, L in exact_languages(quick):
        eng = _engine(label, lang, L, 0.0)
        for sizes in ((L,), balanced_sizes(L, 2), balanced_sizes(L, 3), (1,) * L):
            if len(sizes) > L:
                continue
            rule = FixedSizes(tuple(sizes))
            steps, w = enumerate_instances(rule, L)
            yield f"{label}, L={L}, fixed sizes {list(sizes)}", eng, L, sizes, float(w @ eng.kl_from(eng.log_p_tau(steps)))


def check_li_cai(quick=False):
    recs = []
    for inst, eng, L, sizes, ekl in _fixed_cases(quick):
        full = 2**L - 1
        HX = eng.subset_entropy(full)
        mi = [eng.subset_entropy(1 << i) + eng.subset_entropy(full ^ (1 << i)) - HX for i in range(L)]
        b = B.li_cai_bound(L, max(sizes), np.maximum(mi, 0.0))
        recs.append(_record("Li-Cai", inst, b, ekl))
    return recs


def _Z(eng, L):
    """:math:`Z_j=\\mathbb E[I(X_i;X_S)]`, :math:`|S|=j-1`, :math:`i\\notin S` uniform, j = 1..L."""
    Z = np.zeros(L)
    for j in range(1, L + 1):
        vals = []
        for S in itertools.combinations(range(L), j - 1):
            mS = sum(1 << s for s in S)
            for i in range(L):
                if i in S:
                    continue
                vals.append(eng.subset_entropy(1 << i) + eng.subset_entropy(mS) - eng.subset_entropy(mS | (1 << i)))
        Z[j - 1] = np.mean(vals)
    return Z


def check_chen_cong_li(quick=False):
    recs = []
    for inst, eng, L, sizes, ekl in _fixed_cases(quick):
        recs.append(_record("Chen-Cong-Li", inst, B.chen_cong_li_identity(sizes, _Z(eng, L)), ekl, direction="equal"))
    return recs


# =========================================================================== one instance


def _language_order(lang):
    order = getattr(lang, "order", None)
    return int(order) if order is not None else None


def check_instance(
    name, lang, L, rule, *, model=None, method="auto", num_samples=20000, rng=None, alpha=1e-3, p_err=None, epsilon_learning=None
) -> dict:
    r"""Check one statement on one user-given instance; returns one record (see :func:`run_checks`).

    Parameters
    ----------
    name : str
        ``B.2``, ``B.3``, ``B.8``, ``B.8-literal``, ``B.9``, ``B.9-literal``, ``C.2``, ``4.3``,
        ``Li-Cai``, ``Chen-Cong-Li`` (exact only), ``C.6`` / ``4.4`` (interval languages,
        exact or Monte Carlo), ``4.2`` (Monte Carlo: the Lemma B.8 bound averaged over
        instances, :math:`\mathbb E_	au D_{
m KL}(q\|p_	au)\le\mathbb E[D_	au]\log|\mathcal V|+L\epsilon`,
        which is what Theorem 4.2 rests on; schedule rules and :math:`n`-gram languages).
    lang : Language
    L : int
    rule : StepRule
    model : None, float or object
        ``None`` the perfect model; a float ``eta``: :class:`MixtureModel`; or an object with
        ``conditional_marginals`` (e.g. :class:`mdm_exact.sampler.models.PerturbedModel`).
    method : {"auto", "exact", "mc"}
        ``auto``: exact when the enumeration fits (:attr:`ExactInstances.MAX_CELLS`), else Monte Carlo.
    p_err : float, optional
        For ``C.6`` / ``4.4``: the error probability of Lemma C.6 (default: ``1/2 - eps``,
        :func:`mdm_exact.theory.bounds.example_c7_p_err` with the measured or model ``epsilon_learning``).
    epsilon_learning : float, optional
        Monte Carlo only: Assumption 4.1's constant when the model cannot measure it at this
        ``L`` (exact checks always measure it, :attr:`ExactInstances.epsilon_learning`).
    num_samples, rng, alpha
        Monte Carlo: number of samples, seed, miscoverage of the interval.

    Returns
    -------
    dict
        A record as in :func:`run_checks` (``bound``, ``measured``, ``measured_ci``,
        ``slack``, ``ratio``, ``status``).
    """
    V = int(lang.vocab_size)
    exact_ok = (2**L) * (V**L) * L <= ExactInstances.MAX_CELLS
    if method not in ("auto", "exact", "mc"):
        raise ValueError(f"method: expected 'auto', 'exact' or 'mc', got {method!r}")
    use_exact = exact_ok if method == "auto" else method == "exact"
    if use_exact and not exact_ok:
        raise ValueError(f"exact check of V^L = {V}^{L} sequences with 2^L revealed sets is too large; use method='mc'")
    label = f"{getattr(lang, 'kind', 'language')} V={V}, L={L}, {rule.to_dict().get('rule')} N={rule.num_steps(L)}"
    n = _language_order(lang)
    l = getattr(lang, "interval_length", None)
    if name in ("B.8", "B.8-literal", "B.9", "B.9-literal", "4.2") and n is None:
        raise ValueError(f"{name} is a statement about n-gram languages; this language has no 'order'")
    if name in ("C.6", "4.4") and l is None:
        raise ValueError(f"{name} is a statement about the interval language of Example C.7 (needs 'interval_length')")
    if name == "4.2" or (not use_exact and name in ("C.6", "4.4")):
        from mdm_exact.sampler.montecarlo import run_monte_carlo

        mc_model = MixtureModel(lang, model) if isinstance(model, (int, float)) and model else model
        res = run_monte_carlo(lang, L, rule, num_samples, rng=rng, ci_alpha=alpha, instance_kl=(name == "4.2"), model=mc_model).to_dict()
        if epsilon_learning is not None:
            eps = B._real(epsilon_learning, "epsilon_learning", lo=0.0)
        elif mc_model is None:
            eps = 0.0
        elif isinstance(mc_model, MixtureModel):
            eps = -math.log1p(-mc_model.eta)  # an upper bound on its epsilon_learning
        elif hasattr(mc_model, "epsilon_learning"):
            try:
                eps = float(mc_model.epsilon_learning(L))
            except ValueError:
                raise ValueError(
                    f"cannot measure the model's epsilon_learning exhaustively at L = {L} (the exact engine is limited "
                    "to small L); pass epsilon_learning="
                ) from None
        else:
            raise ValueError("the model has no epsilon_learning(L) method; pass epsilon_learning=")
        if name == "4.2":
            if not isinstance(rule, ScheduleSteps):
                raise ValueError("4.2 (Monte Carlo) needs a schedule rule (positions pick steps i.i.d.) for the exact E[D_tau]")
            p, P = step_distribution_quantities(rule.p)
            ED = float(expected_dependencies(L, p, P, n)[0].sum())
            bound = B.lemma_b9_bound(ED, L, V, eps) / L
            lo, hi = res["instance_kl_per_token_ci"]
            return _record("4.2", f"{label}, model={_model_label(model) if not hasattr(model, 'conditional_marginals') else 'object'} (per token)",
                           bound, res["instance_kl_per_token"], ci=(lo, hi), detail={"expected_D_tau": ED, "epsilon_learning": eps})
        pe = B.example_c7_p_err(eps) if p_err is None else p_err
        N = rule.num_steps(L)
        lo, hi = res["ser_ci"]
        return _record(name, f"{label}, Monte Carlo, p_err={pe:.4g}", B.lemma_c6_ser_lower_bound(L, l, N, pe), res["ser"], direction="lower", ci=(lo, hi))
    spec = model if (model is None or isinstance(model, (int, float))) else None
    eng = ExactInstances(joint_from_language(lang, L), V, L, model=model if spec is None else (spec or None))
    steps, w = enumerate_instances(rule, L)
    lp = eng.log_p_tau(steps)
    logp = logsumexp(lp + np.log(w)[:, None], axis=0)
    eps = eng.epsilon_learning
    inst = f"{label}, exact, eps={eps:.3g}"
    if name == "B.2":
        return _record("B.2", inst, B.lemma_b2_bound(eng.kl_from(lp), w), eng.kl_from(logp)[0], count=len(w))
    if name == "B.3":
        return _worst("B.3", inst, [B.lemma_b3_identity(eng.step_kls(s)) for s in steps], eng.kl_from(lp), direction="equal")
    if name in ("B.8", "B.8-literal"):
        _, D = instance_dependencies(steps, n, reading="literal" if name.endswith("literal") else "corrected")
        return _worst(name, inst, [B.lemma_b8_bound(d, L, V, eps) for d in D.sum(axis=1)], eng.kl_from(lp))
    if name in ("B.9", "B.9-literal"):
        _, D = instance_dependencies(steps, n, reading="literal" if name.endswith("literal") else "corrected")
        return _record(name, inst, B.lemma_b9_bound(float(w @ D.sum(axis=1)), L, V, eps), eng.kl_from(logp)[0])
    if name == "C.2":
        if np.any([np.bincount(s).max() > 1 for s in steps]):
            raise ValueError("C.2 needs one position per step (rules random-order or left-to-right)")
        acc = 1.0 - eng.ser_from(lp)
        return _worst("C.2", inst, np.full(acc.size, B.lemma_c2_bound(L, eps)), acc, direction="lower")
    if name == "4.3":
        if not isinstance(rule, ScheduleSteps):
            raise ValueError("4.3 needs a schedule rule (positions pick steps i.i.d.)")
        return _record("4.3", inst, B.theorem_43_ser_bound(L, rule.p, eps), eng.ser_from(logp)[0])
    if name in ("C.6", "4.4"):
        pe = B.example_c7_p_err(eps) if p_err is None else p_err
        return _record(name, f"{inst}, p_err={pe:.4g}", B.lemma_c6_ser_lower_bound(L, l, rule.num_steps(L), pe), eng.ser_from(logp)[0], direction="lower")
    if name in ("Li-Cai", "Chen-Cong-Li"):
        if not isinstance(rule, FixedSizes) or model is not None:
            raise ValueError(f"{name} is checked for fixed-size random-order rules (FixedSizes) and the perfect model")
        ekl = float(w @ eng.kl_from(lp))
        if name == "Chen-Cong-Li":
            return _record(name, inst, B.chen_cong_li_identity(rule.sizes, _Z(eng, L)), ekl, direction="equal")
        full = 2**L - 1
        HX = eng.subset_entropy(full)
        mi = [eng.subset_entropy(1 << i) + eng.subset_entropy(full ^ (1 << i)) - HX for i in range(L)]
        return _record(name, inst, B.li_cai_bound(L, max(rule.sizes), np.maximum(mi, 0.0)), ekl)
    raise ValueError(f"check_instance: statement {name!r} is not supported; expected one of B.2, B.3, B.8, B.8-literal, B.9, "
                     "B.9-literal, C.2, 4.3, C.6, 4.4, 4.2, Li-Cai, Chen-Cong-Li (the others are statements about step "
                     "assignments only; see run_checks)")


STATEMENTS = {
    s.name: s
    for s in [
        Statement("A.1", check_a1, "STATEMENTS.md §4.B Lemma A.1 [reconstructed·H]"),
        Statement("B.2", check_b2, "STATEMENTS.md §4.C Lemma B.2 [reconstructed·H]"),
        Statement("B.3", check_b3, "STATEMENTS.md §4.C Lemma B.3 [reconstructed·H] (identity)"),
        Statement("B.8", check_b8, "STATEMENTS.md §4.C Lemma B.8 [reconstructed·M], corrected Definition B.5"),
        Statement("B.8-literal", check_b8_literal, "STATEMENTS.md §7.2: literal Definition B.5", False, "finding: literal reading violates B.8"),
        Statement("B.9", check_b9, "STATEMENTS.md §4.C Lemma B.9 [reconstructed·H], corrected Definition B.5"),
        Statement("B.9-literal", check_b9_literal, "STATEMENTS.md §7.2: literal Definition B.5", False, "finding: literal reading violates B.9"),
        Statement("B.10", check_b10, "STATEMENTS.md §4.C Lemma B.10 [reconstructed·M]"),
        Statement("B.11", check_b11, "STATEMENTS.md §4.C Lemma B.11 [reconstructed·M], constants [reconstructed·L]"),
        Statement("B.12", check_b12, "STATEMENTS.md §4.C Lemma B.12 [reconstructed·L] schedule"),
        Statement("4.2", check_theorem_42, "STATEMENTS.md §4.A Theorem 4.2 [reconstructed·M]"),
        Statement("C.1", check_c1, "STATEMENTS.md §4.D Lemma C.1 [reconstructed·M]"),
        Statement("C.2", check_c2, "STATEMENTS.md §4.D Lemma C.2 [reconstructed·M]"),
        Statement("C.5", check_c5, "STATEMENTS.md §4.D Lemma C.5 [reconstructed·M] (final bound; also its first inequality as C.5-first)"),
        Statement("C.5-jensen", check_c5_jensen, "STATEMENTS.md §7.3: the Jensen step of Lemma C.5", False, "finding: Jensen step of C.5 fails (N < l)"),
        Statement("C.6", check_c6, "STATEMENTS.md §4.D Lemma C.6 [reconstructed·M]"),
        Statement("C.7", check_c7, "STATEMENTS.md §4.D Example C.7 [reconstructed·M], p_err forms [reconstructed·L]"),
        Statement("4.3", check_theorem_43, "STATEMENTS.md §4.A Theorem 4.3 / C.3 [reconstructed·M]"),
        Statement("4.4", check_theorem_44, "STATEMENTS.md §4.A Theorem 4.4 / C.9 [reconstructed·M], constants [derived]"),
        Statement("Li-Cai", check_li_cai, "FIELD.md: Li & Cai arXiv:2505.21400 (constants from secondary summaries)", False, "finding: secondary-summary constants violated"),
        Statement("Chen-Cong-Li", check_chen_cong_li, "FIELD.md: Chen, Cong & Li arXiv:2511.04647 (identity, re-derived)"),
    ]
}


def _squash(name: str) -> str:
    import re

    t = str(name).lower().replace("_", "-").replace(" ", "-")
    t = re.sub(r"^(lemma|theorem|thm|example|ex|definition|def)-?", "", t)
    return t.replace(".", "").replace("-", "")


def canonical_name(name) -> str:
    """The statement key for ``name``: exact keys, or aliases such as ``lemma_c5``, ``theorem-4.4``,
    ``b8_literal`` (case, ``_``/``-``/``.`` and a lemma/theorem prefix are ignored)."""
    if name in STATEMENTS:
        return name
    table = {_squash(k): k for k in STATEMENTS}
    table.update({_squash("C.9"): "4.4", _squash("C.3"): "4.3", _squash("B.13"): "4.2"})  # appendix numbers
    return table.get(_squash(name), name)


def run_checks(names=None, *, quick=False) -> list:
    """Run the regression suite; returns one record (dict) per (statement, instance).

    Parameters
    ----------
    names : iterable of str, optional
        Statement names (keys of :data:`STATEMENTS`, or aliases, see :func:`canonical_name`);
        default all.
    quick : bool
        A smaller grid (the default test suite uses it).
    """
    names = list(STATEMENTS) if names is None else [canonical_name(n) for n in names]
    unknown = [n for n in names if n not in STATEMENTS]
    if unknown:
        raise ValueError(f"unknown statement(s) {unknown}; expected some of {list(STATEMENTS)}")
    out = []
    for name in names:
        st = STATEMENTS[name]
        t0 = time.perf_counter()
        recs = st.func(quick)
        dt = time.perf_counter() - t0
        for r in recs:
            r["believed"] = st.believed
            r["reference"] = st.reference
            r["seconds_statement"] = dt
        out.extend(recs)
    return out


def summarize(records) -> list:
    """One row per statement: instances tried, violations, minimum slack, largest tightness ratio, status."""
    rows = {}
    identities = {r["statement"] for r in records if r["direction"] == "equal"} - {
        r["statement"] for r in records if r["direction"] != "equal"
    }
    for r in records:
        name = r["statement"]
        row = rows.setdefault(
            name,
            {"statement": name, "instances": 0, "violations": 0, "inconclusive": 0, "skipped": 0, "min_slack": math.inf, "max_ratio": 0.0,
             "believed": r.get("believed", True), "reference": r.get("reference", "")},
        )
        if r["status"] == "skipped":
            row["skipped"] += 1
            continue
        row["instances"] += r["count"]
        row["violations"] += r["violations"]
        row["inconclusive"] += r["status"] == "inconclusive"
        row["min_slack"] = min(row["min_slack"], r["slack"])
        if r["ratio"] is not None and math.isfinite(r["ratio"]) and r["direction"] != "equal":
            row["max_ratio"] = max(row["max_ratio"], r["ratio"])
    for row in rows.values():
        if row["statement"] in identities:
            row["max_ratio"] = None  # identities: the slack is minus the absolute error
        st = STATEMENTS.get(row["statement"])
        believed = st.believed if st is not None else row["believed"]
        if row["instances"] == 0 and row["skipped"]:
            row["status"] = "skipped"
        elif row["violations"] == 0:
            row["status"] = "holds" if not row["inconclusive"] else "holds (some inconclusive)"
            if not believed:
                row["status"] = "no counterexample in grid"
        else:
            row["status"] = (st.finding if st is not None and st.finding else "finding") if not believed else "VIOLATED"
    return list(rows.values())


def exit_code(summary) -> int:
    """1 if a statement believed true was violated, else 0."""
    return int(any(r["status"] == "VIOLATED" for r in summary))


__all__ = [
    "STATEMENTS",
    "check_instance",
    "canonical_name",
    "TOL",
    "run_checks",
    "summarize",
    "exit_code",
    "separator_count_pmf",
    "expected_dependencies",
    "enumerate_instances",
    "ExactInstances",
    "MixtureModel",
    "interval_language_table",
    "copy_chain",
    "joint_from_language",
]
