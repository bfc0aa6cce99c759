"""Interim closed forms used only while :mod:`mdm_exact.bounds` has not landed.

Each function here is replaced by the ``mdm_exact.bounds`` function of the same statement as
soon as that module is importable (see :func:`reports.experiments.bound`); the figure JSON
records which implementation produced the numbers (``"bounds_source"``).
"""

from __future__ import annotations

import math

import numpy as np


def elementary_symmetric(p, l: int) -> float:
    """``e_l(p_1, ..., p_N)`` by the standard O(N l) recursion (all terms non-negative)."""
    e = np.zeros(l + 1)  # (l + 1,)
    e[0] = 1.0
    for pi in np.asarray(p, dtype=np.float64):
        e[1:] = e[1:] + pi * e[:-1]
    return float(e[l])


def lemma_c5_exact(p, l):
    """``P_j = l! e_l(p)``: all ``l`` positions of an interval at distinct steps (STATEMENTS.md §4.D)."""
    return math.factorial(l) * elementary_symmetric(p, l)


def lemma_c5_intermediate(p, l):
    """``sum_i p_i (1 - p_i)^(l-1)``, the first inequality of Lemma C.5."""
    p = np.asarray(p, dtype=np.float64)
    return float(np.sum(p * (1.0 - p) ** (l - 1)))


def lemma_c5_bound(N, l):
    """``(1 - 1/N)^(l-1)``, Lemma C.5's final bound."""
    return (1.0 - 1.0 / N) ** (l - 1)


def lemma_c6_ser_lower_bound(L, l, N, p_err):
    """``1 - (1 - p_err (1 - (1 - 1/N)^(l-1)))^(L/l)`` (Lemma C.6, STATEMENTS.md §4.D)."""
    return 1.0 - (1.0 - p_err * (1.0 - lemma_c5_bound(N, l))) ** (L / l)


def lemma_a1_bound(k, V, kl_marginals):
    """``(k - 1) log V + sum_i KL(q_i || p_i)`` (Lemma A.1, STATEMENTS.md §4.B)."""
    kl = np.asarray(kl_marginals, dtype=np.float64)
    return (k - 1) * math.log(V) + float(kl.sum())


def lemma_b11_bound(L, p, P, n):
    """Reconstructed Lemma B.11 bound on ``E[D_k]`` for a step with ``p = p^(k)``, ``P = P^(k)``."""
    main = 8 * (n - 1) * L * p**2 / P ** (n - 1)
    tails = (2 * L * p + 3) * math.exp(-L * p / 3) + 2 * L * p * math.exp(-L * P ** (n - 1) / (8 * (n - 1)))
    return {"case3": main, "total": main + tails}
