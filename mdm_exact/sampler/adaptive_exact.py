r"""Exact output law of the sampler under any unmasking policy (small ``L``).

A policy (:mod:`mdm_exact.sampler.policies`) chooses positions from the conditionals of the
current state, so it is a function of the DP state of the content-blind engine
(:mod:`mdm_exact.sampler.exact`): the forward DP over partial sequences
``y in {0..V-1, MASK}^L`` extends unchanged, with the policy's randomness enumerated exactly:

* ``confidence``/``margin``/``entropy`` with fixed counts, ``threshold`` and ``eb``: the
  revealed set is a deterministic function of the state;
* binomial counts (``schedule``): a sum over the count ``m`` with its ``Binomial(#cand, r_k)``
  weight, each with its deterministic (or, for ``random``, uniform) set;
* ``random``: every subset of size ``m`` of the candidates with weight ``1 / C(#cand, m)``;
* ``llada``: every joint draw of tokens at all candidates (``V^#cand``, product of the
  tempered laws); the set is the top-``m`` by the untempered probability of the drawn token and
  the kept tokens are the drawn ones.

Revealed tokens are drawn independently from the tempered conditionals, so a set ``T`` sends
mass ``g(y) w_T(y) prod_{j in T} c_j^{1/T}(x_j)`` to ``y + x_T``.

Storage: the DP mass is kept per revealed pattern ``R`` as an array of shape
``(|R| + 1, V^|R|)``: the number of non-empty steps so far (NFE, at most ``|R|``) by the
revealed tokens in position order (first revealed position most significant), so the exact law
of the NFE comes out with the law of the output. The conditionals of pattern ``R`` are slices
of the joint table :func:`mdm_exact.sampler.exact.log_joint_table` (the same arithmetic as the
content-blind engine, uniform where ``q(x_R) = 0``), or a model's ``conditional_marginals``.

The content-blind theorems (Feng et al. 2025, arXiv:2502.09622v1, as reconstructed in
STATEMENTS.md §1.6-§1.7, §4) assume ``random``: positions independent of the content. Other
policies are outside them; this engine measures what they do.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import entr

from mdm_exact._validate import as_length
from mdm_exact.languages.io import as_language
from mdm_exact.sampler import metrics as _metrics
from mdm_exact.sampler.exact import MAX_STATES, log_joint_table
from mdm_exact.sampler.policies import Policy, greedy_order, position_scores
from mdm_exact.sampler.results import SamplerResult

__all__ = ["PolicyLaw", "policy_output_law", "policy_exact_metrics", "step_total_correlation", "MAX_ENTRIES", "MAX_BRANCHES"]

#: Largest number of DP entries ``sum_R (|R|+1) V^|R|`` accepted (8 bytes each).
MAX_ENTRIES = 2**26
#: Largest number of (pattern, outcome) branches over the whole run (Python-level loop count).
MAX_BRANCHES = 3 * 10**6


@dataclass(frozen=True)
class PolicyLaw:
    """Exact law of one policy: ``log_p`` (V^L,) in ``all_sequences`` order (``-inf`` where
    ``p(x) = 0``), ``nfe_pmf`` (L+1,) the law of the number of non-empty steps, and the number of
    steps run (``num_steps``)."""

    log_p: np.ndarray
    nfe_pmf: np.ndarray
    num_steps: int


# ----------------------------------------------------------------------------- helpers
def _popcount(R: int) -> int:
    return bin(R).count("1")


def _positions(R: int, L: int) -> list:
    return [i for i in range(L) if R >> i & 1]


def _digits(n: int, V: int, width: int) -> np.ndarray:
    """Tokens of the ``V^width`` states of a pattern, (V^width, width), first position most significant."""
    if width == 0:
        return np.zeros((1, 0), dtype=np.int64)
    return np.indices((V,) * width, dtype=np.int64).reshape(width, -1).T  # (V^width, width)


class _Tables:
    """Conditionals per revealed pattern (cached), from the joint table or a model."""

    def __init__(self, lang, L, model):
        self.L = L
        self.V = int(lang.vocab_size)
        self.model = None if (model is None or model is lang) else model
        self.log_Q = log_joint_table(lang, L)  # (V+1,)*L
        self._cache = {}

    def _index(self, R, extra=None):
        V = self.V
        return tuple(slice(0, V) if (R >> i & 1 or i == extra) else V for i in range(self.L))

    def cond(self, R: int) -> np.ndarray:
        """``c[s, j, v] = q(x_j = v | x_R = state s)`` for masked ``j`` (n_R, L, V); revealed rows one-hot."""
        hit = self._cache.get(R)
        if hit is not None:
            return hit
        L, V = self.L, self.V
        pos = _positions(R, L)
        n = V ** len(pos)
        digits = _digits(n, V, len(pos))  # (n, |R|)
        if self.model is not None:
            x = np.zeros((n, L), dtype=np.int64)  # (n, L)
            x[:, pos] = digits
            rev = np.zeros((n, L), dtype=bool)
            rev[:, pos] = True
            c = np.array(self.model.conditional_marginals(x, rev), dtype=np.float64)  # (n, L, V)
            if c.shape != (n, L, V) or not np.all(np.isfinite(c)) or np.any(c < 0):
                raise ValueError("model: conditional marginals must be finite, non-negative, shape (batch, L, V)")
        else:
            c = np.zeros((n, L, V))  # (n, L, V)
            base = self.log_Q[self._index(R)].reshape(n)  # (n,) log q(x_R)
            dead = base == -np.inf
            for j in range(L):
                if R >> j & 1:
                    continue
                num = self.log_Q[self._index(R, j)]  # (V,)*(|R|+1)
                axis = sum(1 for i in pos if i < j)
                num = np.moveaxis(num, axis, -1).reshape(n, V)  # (n, V)
                with np.errstate(invalid="ignore"):
                    cj = np.exp(num - np.where(dead, 0.0, base)[:, None])
                c[:, j, :] = np.where(dead[:, None], 1.0 / V, cj)
            for a, i in enumerate(pos):
                c[np.arange(n), i, digits[:, a]] = 1.0
        self._cache[R] = c
        return c


class _DP:
    """Mass per pattern, ``g[R]`` of shape (|R|+1, V^|R|) (NFE level, revealed tokens)."""

    def __init__(self, L, V):
        self.L, self.V = L, V
        self.g = {0: np.ones((1, 1))}
        self.branches = 0

    def empty_like(self):
        d = _DP(self.L, self.V)
        d.g = {}
        d.branches = self.branches
        return d

    def _target(self, R):
        arr = self.g.get(R)
        if arr is None:
            k = _popcount(R)
            arr = self.g[R] = np.zeros((k + 1, self.V**k))
        return arr

    def stay(self, R, mass):
        """Add ``mass`` (|R|+1, n_R) at pattern ``R`` (an empty step: NFE unchanged)."""
        self._target(R)[...] += mass

    def push(self, R, T, states, mass, tok_law=None, tokens=None):
        """Reveal positions ``T`` (sorted tuple, non-empty) from ``states`` of pattern ``R``.

        ``mass`` (|R|+1, n_sel): NFE-level masses already weighted by the choice of ``T``;
        either ``tok_law`` (n_sel, |T|, V) (independent draws) or ``tokens`` (|T|,) fixed
        tokens (llada's kept draws).
        """
        self.branches += 1
        L, V = self.L, self.V
        R2 = R
        for j in T:
            R2 |= 1 << j
        pos2 = _positions(R2, L)
        k2 = len(pos2)
        n2 = V**k2
        rank = {p: k2 - 1 - a for a, p in enumerate(pos2)}  # power of V of each position in R2
        posR = _positions(R, L)
        digR = _digits(V ** len(posR), V, len(posR))[states]  # (n_sel, |R|)
        powR = np.array([V ** rank[p] for p in posR], dtype=np.int64)
        powT = np.array([V ** rank[p] for p in T], dtype=np.int64)
        base = digR @ powR if posR else np.zeros(len(states), dtype=np.int64)  # (n_sel,)
        lev = mass.shape[0]
        if tokens is not None:
            idx = base + int(np.dot(tokens, powT))  # (n_sel,)
            flat = (np.arange(1, lev + 1)[:, None] * n2 + idx[None, :]).ravel()  # (lev * n_sel,)
            w = mass.ravel()
        else:
            grid = _digits(V ** len(T), V, len(T))  # (V^|T|, |T|)
            prob = np.ones((len(states), grid.shape[0]))  # (n_sel, V^|T|)
            for a in range(len(T)):
                prob *= tok_law[:, a, :][:, grid[:, a]]
            idx = base[:, None] + (grid @ powT)[None, :]  # (n_sel, V^|T|)
            flat = (np.arange(1, lev + 1)[:, None, None] * n2 + idx[None]).ravel()
            w = (mass[:, :, None] * prob[None]).ravel()
        tgt = self._target(R2)
        tgt += np.bincount(flat, weights=w, minlength=(k2 + 1) * n2).reshape(k2 + 1, n2)


def _group(keys):
    """Unique keys and, for each, the indices with that key (in increasing order)."""
    uk, inv = np.unique(keys, return_inverse=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(uk.size + 1))
    return [(int(uk[a]), order[bounds[a]:bounds[a + 1]]) for a in range(uk.size)]


def _set_keys(chosen):
    """Bitmask (position i -> bit i) of each row of a (n, L) bool array, (n,) int64."""
    L = chosen.shape[1]
    return chosen.astype(np.int64) @ (np.int64(1) << np.arange(L, dtype=np.int64))


def _bits(key: int, L: int) -> tuple:
    return tuple(i for i in range(L) if key >> i & 1)


# ----------------------------------------------------------------------------- one step
def _step(policy: Policy, tables: _Tables, dp: _DP, k: int, record=None) -> _DP:
    L, V = dp.L, dp.V
    full = (1 << L) - 1
    new = dp.empty_like()
    for R, arr in dp.g.items():
        if R == full:
            new.stay(R, arr)
            continue
        if not np.any(arr):
            continue
        if new.branches > MAX_BRANCHES:
            raise ValueError(f"adaptive exact engine: more than MAX_BRANCHES = {MAX_BRANCHES} branches; use Monte Carlo or a smaller L")
        n = arr.shape[1]
        rev = np.zeros((1, L), dtype=bool)
        rev[0, _positions(R, L)] = True
        cand_row = policy.candidates(rev)[0]  # (L,)
        C = np.flatnonzero(cand_row)
        cand = np.broadcast_to(cand_row, (n, L))
        c = tables.cond(R)  # (n, L, V)
        tl = policy.token_law(c)  # (n, L, V)
        all_states = np.arange(n)
        if policy.adaptive_count:
            chosen = policy.adaptive_set(c, cand)  # (n, L)
            for key, st in _group(_set_keys(chosen)):
                T = _bits(key, L)
                if record is not None:
                    record(k, R, T, st, arr[:, st].sum(axis=0), c[st], 1.0)
                new.push(R, T, st, arr[:, st], tok_law=tl[st][:, list(T), :])
            continue
        law = policy.count_law(k, C.size)  # (|C|+1,)
        ms = np.flatnonzero(law > 0)
        if policy.score == "random":
            for m in ms:
                if m == 0:
                    new.stay(R, arr * law[0])
                    continue
                w = law[m] / math.comb(C.size, int(m))
                for T in itertools.combinations(C.tolist(), int(m)):
                    new.push(R, T, all_states, arr * w, tok_law=tl[:, list(T), :])
            continue
        if policy.score == "llada":
            if law[0] > 0:
                new.stay(R, arr * law[0])
            ms = ms[ms > 0]
            if ms.size == 0:
                continue
            for draw in itertools.product(range(V), repeat=C.size):
                d = np.array(draw, dtype=np.int64)
                pd = np.ones(n)
                for a, j in enumerate(C):
                    pd *= tl[:, j, d[a]]
                live = np.flatnonzero(pd > 0)
                if live.size == 0:
                    continue
                tokens = np.zeros((live.size, L), dtype=np.int64)
                tokens[:, C] = d
                s = position_scores("llada", c[live], tokens=tokens)  # (n_live, L)
                order = greedy_order(s, cand[live], int(ms.max()))  # (n_live, m_max)
                for m in ms:
                    chosen = np.zeros((live.size, L), dtype=bool)
                    np.put_along_axis(chosen, order[:, :m], True, axis=1)
                    for key, st in _group(_set_keys(chosen)):
                        T = _bits(key, L)
                        sel = live[st]
                        tok = d[np.searchsorted(C, T)]
                        new.push(R, T, sel, arr[:, sel] * (law[m] * pd[sel])[None, :], tokens=tok)
            continue
        s = position_scores(policy.score, c)  # (n, L)
        order = greedy_order(s, cand, C.size)  # (n, |C|)
        for m in ms:
            if m == 0:
                new.stay(R, arr * law[0])
                continue
            chosen = np.zeros((n, L), dtype=bool)
            np.put_along_axis(chosen, order[:, :m], True, axis=1)
            for key, st in _group(_set_keys(chosen)):
                T = _bits(key, L)
                if record is not None:
                    record(k, R, T, st, arr[:, st].sum(axis=0) * law[m], c[st], law[m])
                new.push(R, T, st, arr[:, st] * law[m], tok_law=tl[st][:, list(T), :])
    return new


def _check_size(V: int, L: int, policy: Policy):
    S = (V + 1) ** L
    if S > MAX_STATES:
        raise ValueError(f"adaptive exact engine: (V+1)^L = {V + 1}^{L} = {S} states exceeds MAX_STATES = {MAX_STATES}; use Monte Carlo")
    entries = sum(math.comb(L, r) * (r + 1) * V**r for r in range(L + 1))
    if entries > MAX_ENTRIES:
        raise ValueError(f"adaptive exact engine: {entries} DP entries (patterns x NFE x tokens) exceeds MAX_ENTRIES = {MAX_ENTRIES}; use Monte Carlo")
    if policy.score == "llada":
        work = policy.num_steps * (2 * V) ** L
        if work > MAX_BRANCHES * 100:
            raise ValueError(f"adaptive exact engine: llada enumerates about {work:.3g} joint draws; use Monte Carlo or a smaller L")


def policy_output_law(lang, L, policy: Policy, *, model=None) -> PolicyLaw:
    r"""Exact output law and NFE law of the sampler under ``policy``.

    Parameters
    ----------
    lang : Language or str or os.PathLike
        A language, or a preset name or language file (:func:`mdm_exact.languages.as_language`).
        The data law ``q`` (its joint table gives the perfect model's conditionals).
    L : int
        Sequence length (must equal ``policy.L``).
    policy : Policy
        From :func:`mdm_exact.sampler.policies.make_policy`.
    model : object, optional
        Anything with ``conditional_marginals(x, revealed)``; ``None`` is the perfect model.

    Returns
    -------
    PolicyLaw

    Raises
    ------
    ValueError
        When ``L`` differs from ``policy.L``, or the size limits (:data:`MAX_ENTRIES`,
        :data:`MAX_BRANCHES`, ``exact.MAX_STATES``) are exceeded.
    """
    lang = as_language(lang)
    L = as_length(L)
    if not isinstance(policy, Policy):
        raise ValueError(f"policy: expected a mdm_exact.sampler.policies.Policy, got {type(policy).__name__}")
    if policy.L != L:
        raise ValueError(f"policy was built for L = {policy.L}, but L = {L}")
    V = int(lang.vocab_size)
    _check_size(V, L, policy)
    lang.in_support(np.zeros((1, L), dtype=np.int64))  # the language validates L
    tables = _Tables(lang, L, model)
    dp = _DP(L, V)
    full = (1 << L) - 1
    steps = 0
    for k in range(policy.num_steps):
        if all(R == full for R, a in dp.g.items() if np.any(a)):
            break
        dp = _step(policy, tables, dp, k)
        steps += 1
    left = sum(float(a.sum()) for R, a in dp.g.items() if R != full)
    if left > 0:
        raise RuntimeError(f"adaptive exact engine: mass {left:.3g} still masked after {steps} steps (a bug in the count rule)")
    arr = dp.g[full]  # (L+1, V^L)
    p = arr.sum(axis=0)  # (V^L,)
    nfe = arr.sum(axis=1)  # (L+1,)
    with np.errstate(divide="ignore"):
        log_p = np.log(p)
    return PolicyLaw(log_p=log_p, nfe_pmf=nfe, num_steps=steps)


def policy_exact_metrics(lang, L, policy: Policy, *, model=None) -> SamplerResult:
    r"""Every exact metric of the output law under ``policy``, as a :class:`SamplerResult`.

    Shared fields as :func:`mdm_exact.sampler.exact.exact_metrics` (``engine = "exact"``,
    ``rule = policy.to_dict()``, ``nfe_mean`` exact); ``instance_kl_total`` /
    ``instance_kl_per_token`` are ``None`` (Lemma B.2 is about content-blind instances).
    Extras: ``kl_data_model`` (``KL(q||p)``), ``kl_model_data`` (``KL(p||q)``, ``None`` when
    infinite), ``log_ter_gap``, ``entropy_model``, ``entropy_data``,
    ``total_correlation_data``, ``mean_log_prob_per_token`` (``E_p[log q(x) | x in supp q] / L``;
    ``None`` at SER 1), ``nfe_pmf`` (list, index = NFE), ``policy``.
    """
    lang = as_language(lang)
    law = policy_output_law(lang, L, policy, model=model)
    V = int(lang.vocab_size)
    log_Q = log_joint_table(lang, L)
    log_q = log_Q[(slice(0, V),) * L].ravel()  # (V^L,)
    m = _metrics.law_metrics(law.log_p, log_q, V, L)
    nfe = law.nfe_pmf
    return SamplerResult(
        engine="exact",
        L=L,
        V=V,
        num_steps=int(policy.num_steps if not policy.adaptive_count else law.num_steps),
        rule=policy.to_dict(),
        ser=m["ser"],
        gen_ppl=m["gen_ppl"],
        gen_ppl_seq_mean=m["gen_ppl_seq_mean"],
        nfe_mean=float(np.dot(np.arange(nfe.size), nfe)),
        instance_kl_total=None,
        instance_kl_per_token=None,
        extra={
            "policy": policy.name,
            **{k: m[k] for k in ("kl_data_model", "kl_model_data", "log_ter_gap", "entropy_model", "entropy_data",
                                 "total_correlation_data", "mean_log_prob_per_token")},
            "nfe_pmf": [float(v) for v in nfe],
        },
    )


def step_total_correlation(lang, L, policy: Policy) -> dict:
    r"""Exact per-step check of the EB-sampler guarantee on every reachable state.

    For every step ``k``, reachable state ``x_R`` (mass > 0, ``q(x_R) > 0``) and the set ``T``
    the policy reveals there: the conditional total correlation
    :math:`TC(X_T \mid x_R) = \sum_{j\in T} H(X_j \mid x_R) - H(X_T \mid x_R)` (exact, from the
    joint table) and the EB bound :math:`\sum_{j\in T} H(X_j\mid x_R) - \max_{j\in T} H(X_j\mid x_R)`
    (Ben-Hamu et al., arXiv:2505.24857: with exact marginals the error a step adds is this
    TC, which the bound dominates since :math:`H(X_T\mid x_R) \ge \max_j H(X_j\mid x_R)`;
    ``eb:g`` keeps the bound at most ``g``).

    Perfect model only; not for ``llada`` (its kept tokens are not the conditionals' draws) or
    ``random``. Returns ``max_excess`` (max of TC - bound, <= 0 up to rounding), ``max_bound``,
    ``max_tc``, ``num_states`` checked, ``num_dead`` (states outside supp q, skipped),
    ``expected_tc_per_step`` and ``expected_bound_per_step`` (lists, mass-weighted sums over
    states: the expected total correlation a step adds along the sampler's own path), and
    ``data_tc_per_step``: the same TC weighted by ``q(x_R)`` (states reached by data ``x ~ q``).
    For a policy whose sets are a function of the revealed tokens (fixed or adaptive counts,
    not binomial) at ``T = 1``, every ``x`` has one path and
    ``p(x) = prod_k prod_{j in T_k} q(x_j | x_{R_k})``, so the chain rule gives
    ``KL(q || p) = sum_k E_{x~q} TC(X_{T_k} | x_{R_k})`` = ``sum(data_tc_per_step)`` exactly;
    ``None`` otherwise.
    """
    L = as_length(L)
    if policy.score in ("llada", "random"):
        raise ValueError(f"step_total_correlation: defined for deterministic-set policies, not {policy.score}")
    if policy.L != L:
        raise ValueError(f"policy was built for L = {policy.L}, but L = {L}")
    V = int(lang.vocab_size)
    _check_size(V, L, policy)
    tables = _Tables(lang, L, None)
    acc = {"max_excess": -np.inf, "max_bound": 0.0, "max_tc": 0.0, "num_states": 0, "num_dead": 0}
    tc_k = np.zeros(policy.num_steps)
    bd_k = np.zeros(policy.num_steps)
    dq_k = np.zeros(policy.num_steps)

    def record(k, R, T, st, mass, c, w_choice):
        posR = _positions(R, L)
        base = tables.log_Q[tables._index(R)].reshape(-1)[st]  # (n_sel,) log q(x_R)
        R2 = R
        for j in T:
            R2 |= 1 << j
        pos2 = _positions(R2, L)
        joint = tables.log_Q[tables._index(R2)]  # (V,)*|R2| in position order
        axesT = [pos2.index(j) for j in T]
        joint = np.moveaxis(joint, axesT, list(range(len(pos2) - len(T), len(pos2))))
        joint = joint.reshape(V ** len(posR), V ** len(T))[st]  # (n_sel, V^|T|)
        live = (base > -np.inf) & (mass > 0)
        acc["num_dead"] += int(np.sum((base == -np.inf) & (mass > 0)))
        if not np.any(live):
            return
        with np.errstate(invalid="ignore"):
            pT = np.exp(joint[live] - base[live][:, None])  # (n_live, V^|T|) q(x_T | x_R)
        HT = entr(pT).sum(axis=1)  # (n_live,)
        Hj = entr(c[live][:, list(T), :]).sum(axis=2)  # (n_live, |T|)
        tc = Hj.sum(axis=1) - HT
        bound = Hj.sum(axis=1) - Hj.max(axis=1)
        acc["max_excess"] = max(acc["max_excess"], float(np.max(tc - bound)))
        acc["max_bound"] = max(acc["max_bound"], float(bound.max()))
        acc["max_tc"] = max(acc["max_tc"], float(tc.max()))
        acc["num_states"] += int(live.sum())
        tc_k[k] += float(mass[live] @ tc)
        bd_k[k] += float(mass[live] @ bound)
        dq_k[k] += float(np.exp(base[live]) @ tc)

    dp = _DP(L, V)
    full = (1 << L) - 1
    steps = 0
    for k in range(policy.num_steps):
        if all(R == full for R, a in dp.g.items() if np.any(a)):
            break
        dp = _step(policy, tables, dp, k, record=record)
        steps += 1
    acc["expected_tc_per_step"] = tc_k[:steps].tolist()
    acc["expected_bound_per_step"] = bd_k[:steps].tolist()
    exact_path = policy.count != "schedule" and policy.temperature == 1.0
    acc["data_tc_per_step"] = dq_k[:steps].tolist() if exact_path else None
    acc["policy"] = policy.name
    return acc
