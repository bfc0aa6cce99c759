r"""Exact laws of the Appendix B step-assignment quantities (no enumeration of instances).

Separator counts :math:`S_k` (Definition B.4) and dependency counts :math:`D_k` (Definitions
B.5-B.7) when positions pick steps i.i.d. (schedule rules), by small dynamic programmes; the
measured sides of Lemmas B.10-B.12 and of the Monte Carlo Theorem 4.2 check
(STATEMENTS.md §4.C, as reconstructed).
"""

from __future__ import annotations

import numpy as np

from mdm_exact.theory import bounds as B

__all__ = ["separator_count_pmf", "expected_dependencies", "step_distribution_quantities"]


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
