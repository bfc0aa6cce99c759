r"""Appendix A: Lemma A.1 (KL to a product law) and Lemma A.2 (Chernoff bounds), STATEMENTS.md §4.B."""

from __future__ import annotations

import math

from mdm_exact.theory.bounds._validate import _kl_values, _pos_int, _real

__all__ = ["lemma_a1_bound", "chernoff_upper_tail", "chernoff_lower_tail"]


def lemma_a1_bound(k, V, kl_marginals=None, *, delta=None) -> float:
    r"""Lemma A.1: KL of a joint law against a product of per-coordinate laws.

    As reconstructed, STATEMENTS.md §4.B, Lemma A.1 ``[reconstructed·H]``. For
    :math:`X\sim q` on :math:`\mathcal V^k` with marginals :math:`q_i` and any product law
    :math:`\tilde p=\prod_i p_i`,

    .. math::
        D_{\rm KL}(q\|\tilde p)\le (k-1)\log|\mathcal V| + \sum_i D_{\rm KL}(q_i\|p_i)
        \le (k-1)\log|\mathcal V| + k\delta .

    Parameters
    ----------
    k : int
        Number of coordinates, ``k >= 1``.
    V : int
        Vocabulary size ``|V| >= 1``.
    kl_marginals : array_like of shape (k,), optional
        :math:`D_{\rm KL}(q_i\|p_i)`; gives the middle expression.
    delta : float, optional
        :math:`\max_i D_{\rm KL}(q_i\|p_i)`; gives the right-hand expression. With neither,
        the perfect-marginals bound :math:`(k-1)\log|\mathcal V|` is returned (tight for
        :math:`k` copies of one uniform symbol).
    """
    k = _pos_int(k, "k")
    V = _pos_int(V, "V")
    base = (k - 1) * math.log(V)
    if kl_marginals is not None and delta is not None:
        raise ValueError("lemma_a1_bound: give kl_marginals or delta, not both")
    if kl_marginals is not None:
        kl = _kl_values(kl_marginals)
        if kl.size != k:
            raise ValueError(f"kl_marginals: expected {k} values (one per coordinate), got {kl.size}")
        return float(base + kl.sum())
    if delta is not None:
        return base + k * _real(delta, "delta", lo=0.0)
    return base


def chernoff_upper_tail(mu, delta) -> float:
    r"""Lemma A.2 (Chernoff, upper tail): :math:`\Pr[X\ge(1+\delta)\mu]\le e^{-\delta^2\mu/(2+\delta)}`.

    STATEMENTS.md §4.B, Lemma A.2 ``[reconstructed·M]``; ``X`` a sum of independent 0/1
    variables with mean ``mu``; ``delta >= 0``.
    """
    mu = _real(mu, "mu", lo=0.0)
    delta = _real(delta, "delta", lo=0.0)
    return math.exp(-(delta**2) * mu / (2.0 + delta))


def chernoff_lower_tail(mu, delta) -> float:
    r"""Lemma A.2 (Chernoff, lower tail): :math:`\Pr[X\le(1-\delta)\mu]\le e^{-\delta^2\mu/2}`, ``0 < delta < 1``.

    STATEMENTS.md §4.B, Lemma A.2 ``[reconstructed·M]``.
    """
    mu = _real(mu, "mu", lo=0.0)
    delta = _real(delta, "delta", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    return math.exp(-(delta**2) * mu / 2.0)
