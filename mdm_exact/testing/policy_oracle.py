r"""Brute-force oracle of the sampler under an unmasking policy (tiny ``L``; tests only).

Written from the semantics of issue 16 alone, independently of
:mod:`mdm_exact.sampler.adaptive_exact` and of the methods of
:class:`mdm_exact.sampler.policies.Policy` (only its fields are read): plain-Python recursion
over states ``(partial sequence, step)``, conditionals by explicit summation of the joint law,
scalar scores, scalar greedy picks with tolerant ties, every random choice enumerated
(subsets, binomial counts, llada's joint draws). Cost grows like ``(V+1)^L`` times the
branching of a step: keep ``L <= 5``.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np

from mdm_exact.languages.base import all_sequences

__all__ = ["brute_force_policy_law"]

_TIE = 1e-9


def brute_force_policy_law(lang, L: int, policy):
    """Exact law of the output and of the NFE by recursion over states.

    Returns
    -------
    p : ndarray, shape (V**L,)
        Output law in ``all_sequences(V, L)`` order.
    nfe_pmf : ndarray, shape (L+1,)
        Law of the number of steps that reveal at least one position.
    """
    V = int(lang.vocab_size)
    xs = all_sequences(V, L)
    q = np.exp(lang.log_prob(xs))
    seqs = [tuple(int(t) for t in x) for x in xs]
    joint = dict(zip(seqs, q.tolist()))
    MASK = -1

    @lru_cache(maxsize=None)
    def marg(y):
        return math.fsum(joint[x] for x in seqs if all(a == MASK or a == b for a, b in zip(y, x)))

    def cond(y, j):
        base = marg(y)
        if base == 0.0:
            return [1.0 / V] * V
        out = []
        for v in range(V):
            z = list(y)
            z[j] = v
            out.append(marg(tuple(z)) / base)
        return out

    T = policy.temperature

    def tok_law(c):
        if T == 1.0:
            return list(c)
        mx = max(c)
        if T == 0.0:
            first = next(v for v in range(V) if c[v] >= mx - _TIE)
            return [1.0 if v == first else 0.0 for v in range(V)]
        w = [(cv / mx) ** (1.0 / T) if cv > 0 else 0.0 for cv in c]
        s = sum(w)
        return [wv / s for wv in w]

    def score_of(name, c, drawn=None):
        if name == "confidence":
            return max(c)
        if name == "margin":
            srt = sorted(c, reverse=True) + [0.0]
            return srt[0] - srt[1]
        if name == "entropy":
            return sum(cv * math.log(cv) for cv in c if cv > 0)
        if name == "llada":
            return c[drawn]
        raise AssertionError(name)

    def greedy(scores, m):
        """scores: dict position -> score; the first m greedy picks."""
        left = dict(scores)
        picks = []
        while left and len(picks) < m:
            best = max(left.values())
            pick = min(i for i, s in left.items() if s >= best - _TIE)
            picks.append(pick)
            del left[pick]
        return picks

    def candidates(y):
        masked = [i for i in range(L) if y[i] == MASK]
        b = policy.block_length
        if b is None or not masked:
            return masked
        blk = masked[0] // b
        return [i for i in masked if i // b == blk]

    def count_law(k, n):
        if policy.count == "sizes":
            return {min(policy.sizes[k], n): 1.0}
        if policy.count == "block-sizes":
            N = len(policy.sizes)
            b = policy.block_length
            nb = -(-L // b)
            spb = N // nb
            i, j = divmod(k, spb)
            mb = min(b, L - i * b)
            size = mb // spb + (1 if j < mb % spb else 0)
            return {min(size, n): 1.0}
        if policy.count == "schedule":
            p = policy.probs
            rest = math.fsum(p[k:])
            r = 1.0 if (k == len(p) - 1 or rest <= 0) else min(1.0, p[k] / rest)
            if r >= 1.0:
                return {n: 1.0}
            if r <= 0.0:
                return {0: 1.0}
            return {m: math.comb(n, m) * r**m * (1 - r) ** (n - m) for m in range(n + 1)}
        raise AssertionError(policy.count)

    def reveal(y, Tset, laws):
        """All (new state, probability) of drawing tokens at Tset independently from laws."""
        out = []
        for toks in itertools.product(range(V), repeat=len(Tset)):
            w = 1.0
            z = list(y)
            for j, t in zip(Tset, toks):
                w *= laws[j][t]
                z[j] = t
            if w > 0:
                out.append((tuple(z), w))
        return out

    n_steps = len(policy.probs) if policy.count == "schedule" else (len(policy.sizes) if policy.count in ("sizes", "block-sizes") else L)

    @lru_cache(maxsize=None)
    def rec(y, k):
        """dict (x, nfe from here) -> probability."""
        if all(a != MASK for a in y):
            return {(y, 0): 1.0}
        if k >= n_steps:
            raise AssertionError("positions left masked after the last step")
        C = candidates(y)
        cs = {j: cond(y, j) for j in C}
        laws = {j: tok_law(cs[j]) for j in C}
        branches = []  # (new state, probability, non-empty)
        if policy.count in ("threshold", "eb"):
            if policy.count == "threshold":
                S = [j for j in C if max(cs[j]) >= policy.gamma - _TIE]
                if not S:
                    S = greedy({j: max(cs[j]) for j in C}, 1)
            else:
                H = {j: -sum(cv * math.log(cv) for cv in cs[j] if cv > 0) for j in C}
                order = greedy({j: -H[j] for j in C}, len(C))
                kk = 1
                for m in range(1, len(order) + 1):
                    hs = [H[j] for j in order[:m]]
                    if sum(hs) - max(hs) <= policy.gamma + _TIE:
                        kk = m
                S = order[:kk]
            for z, w in reveal(y, sorted(S), laws):
                branches.append((z, w, True))
        else:
            for m, pm in count_law(k, len(C)).items():
                if pm == 0:
                    continue
                if m == 0:
                    branches.append((y, pm, False))
                    continue
                if policy.score == "random":
                    subsets = list(itertools.combinations(C, m))
                    for S in subsets:
                        for z, w in reveal(y, list(S), laws):
                            branches.append((z, pm * w / len(subsets), True))
                elif policy.score == "llada":
                    for draw in itertools.product(range(V), repeat=len(C)):
                        w = pm
                        for j, t in zip(C, draw):
                            w *= laws[j][t]
                        if w == 0:
                            continue
                        d = dict(zip(C, draw))
                        S = greedy({j: score_of("llada", cs[j], d[j]) for j in C}, m)
                        z = list(y)
                        for j in S:
                            z[j] = d[j]
                        branches.append((tuple(z), w, True))
                else:
                    S = greedy({j: score_of(policy.score, cs[j]) for j in C}, m)
                    for z, w in reveal(y, sorted(S), laws):
                        branches.append((z, pm * w, True))
        out = {}
        for z, w, nonempty in branches:
            for (x, f), pr in rec(z, k + 1).items():
                key = (x, f + int(nonempty))
                out[key] = out.get(key, 0.0) + w * pr
        return out

    res = rec(tuple([MASK] * L), 0)
    index = {x: i for i, x in enumerate(seqs)}
    p = np.zeros(V**L)
    nfe = np.zeros(L + 1)
    for (x, f), pr in res.items():
        p[index[x]] += pr
        nfe[f] += pr
    return p, nfe
