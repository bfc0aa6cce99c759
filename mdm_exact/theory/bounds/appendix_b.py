r"""Appendix B: Lemmas B.2, B.3, B.8-B.12 and Theorem 4.2 (= B.13), STATEMENTS.md §4.A, §4.C."""

from __future__ import annotations

import math

import numpy as np

from mdm_exact.theory.bounds._validate import BoundResult, _kl_values, _pos_int, _real, _step_probs
from mdm_exact.theory.bounds.appendix_a import chernoff_lower_tail, chernoff_upper_tail

__all__ = [
    "lemma_b2_bound",
    "lemma_b3_identity",
    "lemma_b8_bound",
    "lemma_b9_bound",
    "lemma_b10_new_positions_bound",
    "lemma_b10_separator_bound",
    "lemma_b11_bound",
    "lemma_b11_case3_idealised",
    "lemma_b12_schedule",
    "lemma_b12_dependency_bound",
    "lemma_b12_min_length",
    "lemma_b12_kl_bound",
    "theorem_42_log_ter_bound",
]


def lemma_b2_bound(instance_kls, instance_probs) -> float:
    r"""Lemma B.2: :math:`D_{\rm KL}(q\|p)\le\mathbb E_{\tau}[D_{\rm KL}(q\|p_\tau)]`.

    As reconstructed, STATEMENTS.md §4.C, Lemma B.2 ``[reconstructed·H]`` (convexity of KL in
    its second argument; :math:`p=\mathbb E_\tau p_\tau`).

    Parameters
    ----------
    instance_kls : array_like, shape (T,)
        :math:`D_{\rm KL}(q\|p_\tau)` for every instance (``inf`` allowed).
    instance_probs : array_like, shape (T,)
        :math:`\Pr_\alpha(\tau)`, summing to 1.
    """
    kl = _kl_values(instance_kls, "instance_kls")
    w = _step_probs(instance_probs, "instance_probs")
    if kl.shape != w.shape:
        raise ValueError(f"instance_kls and instance_probs: expected equal lengths, got {kl.size} and {w.size}")
    pos = w > 0
    return float(np.sum(w[pos] * kl[pos]))


def lemma_b3_identity(step_kls) -> float:
    r"""Lemma B.3: :math:`D_{\rm KL}(q\|p_\tau)=\sum_k\mathbb E_q[D_{\rm KL}(q(x_{\mathcal M_k}|x_{\mathcal M_{<k}})\|p_\theta(\cdot))]`.

    As reconstructed, STATEMENTS.md §4.C, Lemma B.3 ``[reconstructed·H]`` (chain rule; an
    identity, so this "bound" is the right-hand side, to be compared for equality).

    Parameters
    ----------
    step_kls : array_like, shape (N,)
        The per-step expected conditional KLs.
    """
    return float(np.sum(_kl_values(step_kls, "step_kls")))


def lemma_b8_bound(D_tau, L, V, epsilon_learning) -> float:
    r"""Lemma B.8: :math:`D_{\rm KL}(q\|p_\tau)\le D_\tau\log|\mathcal V|+L\,\epsilon_{\rm learning}`.

    As reconstructed, STATEMENTS.md §4.C, Lemma B.8 ``[reconstructed·M]``. Hypotheses: an
    :math:`n`-gram language; Assumption 4.1 with ``epsilon_learning``; :math:`D_\tau` counted
    with the **corrected** Definition B.5 (:func:`mdm_exact.theory.separators.instance_dependencies`).
    With the literal reading the inequality is false (STATEMENTS.md §7.2); that reading is
    accepted here so that the check can exhibit the counterexample.
    """
    D_tau = _real(D_tau, "D_tau", lo=0.0)
    L = _pos_int(L, "L")
    V = _pos_int(V, "V")
    eps = _real(epsilon_learning, "epsilon_learning", lo=0.0)
    return D_tau * math.log(V) + L * eps


def lemma_b9_bound(expected_D, L, V, epsilon_learning) -> float:
    r"""Lemma B.9: :math:`D_{\rm KL}(q\|p)\le\sum_k\mathbb E_\tau[D_k]\log|\mathcal V|+L\,\epsilon_{\rm learning}`.

    As reconstructed, STATEMENTS.md §4.C, Lemma B.9 ``[reconstructed·H]``.

    Parameters
    ----------
    expected_D : float or array_like of shape (N,)
        :math:`\mathbb E_\tau[D_k]` per step (or their sum), corrected Definition B.5.
    """
    total = float(np.sum(_kl_values(expected_D, "expected_D")))
    return lemma_b8_bound(total, L, V, epsilon_learning)


def _check_b10_args(L, p, P, n, *, need_divisible=True):
    L = _pos_int(L, "L")
    n = _pos_int(n, "n", minimum=2)
    p = _real(p, "p", lo=0.0, hi=1.0)
    P = _real(P, "P", lo=0.0, hi=1.0)
    if p + P > 1.0 + 1e-12:
        raise ValueError(f"p + P: the step probability p = {p} plus the mass P = {P} of earlier steps exceeds 1")
    if need_divisible and L % (n - 1) != 0:
        raise ValueError(f"L = {L}: Lemma B.10 assumes (n - 1) | L (aligned blocks of n - 1 = {n - 1} positions)")
    return L, p, P, n


def lemma_b10_new_positions_bound(L, p) -> BoundResult:
    r"""Lemma B.10, first part: :math:`\Pr[N_k\ge 2Lp]\le e^{-Lp/3}` for the new positions :math:`N_k\sim{\rm Bin}(L,p)`.

    As reconstructed, STATEMENTS.md §4.C, Lemma B.10 ``[reconstructed·M]`` (Lemma A.2 with
    :math:`\delta=1`).

    Returns
    -------
    BoundResult
        ``value`` the tail bound :math:`e^{-Lp/3}`; ``parts["threshold"]`` = :math:`2Lp`.
    """
    L = _pos_int(L, "L")
    p = _real(p, "p", lo=0.0, hi=1.0)
    return BoundResult(chernoff_upper_tail(L * p, 1.0), {"threshold": 2.0 * L * p})


def lemma_b10_separator_bound(L, P, n) -> BoundResult:
    r"""Lemma B.10, second part: :math:`\Pr\big[S_k\le\frac{LP^{n-1}}{2(n-1)}\big]\le\exp\big(-\frac{LP^{n-1}}{8(n-1)}\big)`.

    As reconstructed, STATEMENTS.md §4.C, Lemma B.10 ``[reconstructed·M]``: :math:`S_k`
    (Definition B.4) dominates a binomial over the :math:`L/(n-1)` aligned blocks, each all
    revealed before step :math:`k` with probability :math:`P^{n-1}` (:math:`P=P^{(k)}`); Lemma
    A.2 with :math:`\delta=1/2`. Hypothesis (checked): :math:`(n-1)\mid L`.

    Returns
    -------
    BoundResult
        ``value`` the tail bound; ``parts["threshold"]`` = :math:`LP^{n-1}/(2(n-1))`.
    """
    L = _pos_int(L, "L")
    n = _pos_int(n, "n", minimum=2)
    P = _real(P, "P", lo=0.0, hi=1.0)
    if L % (n - 1) != 0:
        raise ValueError(f"L = {L}: Lemma B.10 assumes (n - 1) | L (aligned blocks of n - 1 = {n - 1} positions)")
    mu_s = L * P ** (n - 1) / (n - 1)
    return BoundResult(chernoff_lower_tail(mu_s, 0.5), {"threshold": mu_s / 2.0})


def lemma_b11_bound(L, p, P, n) -> BoundResult:
    r"""Lemma B.11: bound on the expected dependencies :math:`\mathbb E[D_k]` of one step.

    As reconstructed, STATEMENTS.md §4.C, Lemma B.11 ``[reconstructed·M]``, constants
    ``[reconstructed·L]``; Case 3 rests on an idealisation (STATEMENTS.md §7.5). Hypotheses:
    step :math:`k\ge2` (:math:`P>0`), :math:`(n-1)\mid L`. The three cases:

    .. math::
        \underbrace{(2Lp+3)e^{-Lp/3}}_{N_k\ge2Lp}
        +\underbrace{2Lp\,e^{-LP^{n-1}/(8(n-1))}}_{N_k<2Lp,\ S_k\text{ small}}
        +\underbrace{\frac{8(n-1)Lp^2}{P^{n-1}}}_{N_k<2Lp,\ S_k\text{ large}} .

    Returns
    -------
    BoundResult
        ``value`` the bound on :math:`\mathbb E[D_k]` (the sum of the cases);
        ``parts`` ``case1``, ``case2``, ``case3``.
    """
    L, p, P, n = _check_b10_args(L, p, P, n)
    if P <= 0.0:
        raise ValueError("P = 0: Lemma B.11 applies to steps k >= 2 with P^(k) > 0 (the first step is bounded by Lemma A.1)")
    case1 = (2.0 * L * p + 3.0) * math.exp(-L * p / 3.0)
    case2 = 2.0 * L * p * math.exp(-L * P ** (n - 1) / (8.0 * (n - 1)))
    case3 = 8.0 * (n - 1) * L * p**2 / P ** (n - 1)
    return BoundResult(case1 + case2 + case3, {"case1": case1, "case2": case2, "case3": case3})


def lemma_b11_case3_idealised(m, s) -> float:
    r"""Case 3 of Lemma B.11: :math:`\mathbb E[D_k\mid m,s]=m(m-1)/(m+s)` under the uniform-order idealisation.

    STATEMENTS.md §4.C, Lemma B.11 Case 3, issue §7.5 (a heuristic, not a proof).
    """
    m = _pos_int(m, "m", minimum=0)
    s = _pos_int(s, "s", minimum=0)
    if m + s == 0:
        return 0.0
    return m * (m - 1) / (m + s)


def lemma_b12_schedule(epsilon, n) -> np.ndarray:
    r"""Lemma B.12: the constructed schedule (per-step probabilities, generation order).

    STATEMENTS.md §4.C, Lemma B.12, schedule ``[reconstructed·L / derived]``: first step
    :math:`p^{(1)}=\epsilon`, then :math:`N-1` equal steps
    :math:`p=(1-\epsilon)/(N-1)\le\epsilon^n/(8(n-1))` with
    :math:`N=1+\lceil 8(n-1)(1-\epsilon)/\epsilon^n\rceil`. Hypotheses: :math:`0<\epsilon<1`,
    :math:`n\ge2`.
    """
    eps = _real(epsilon, "epsilon", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    n = _pos_int(n, "n", minimum=2)
    N = 1 + math.ceil(8 * (n - 1) * (1 - eps) / eps**n)
    probs = np.full(N, (1.0 - eps) / (N - 1))  # (N,)
    probs[0] = eps
    return probs


def lemma_b12_dependency_bound(L, epsilon, n) -> float:
    r"""Lemma B.12 proof: :math:`\sum_k\mathbb E[D_k]\le L\epsilon+\sum_{k\ge2}` (Lemma B.11 bound).

    STATEMENTS.md §4.C, Lemma B.12 ``[reconstructed·L]``: the first step contributes at most
    :math:`\mathbb E N_1=L\epsilon`; the others are bounded by :func:`lemma_b11_bound` for
    the schedule :func:`lemma_b12_schedule`. Needs :math:`(n-1)\mid L`.
    """
    probs = lemma_b12_schedule(epsilon, n)
    L = _pos_int(L, "L")
    if L % (n - 1):
        raise ValueError(f"L = {L}: Lemma B.12 (via B.10) assumes (n - 1) | L")
    P = np.concatenate([[0.0], np.cumsum(probs)[:-1]])  # (N,) P^(k)
    p = probs[1]
    Pk = np.minimum(P[1:], 1.0)  # (N-1,)
    case1 = (2.0 * L * p + 3.0) * math.exp(-L * p / 3.0)
    case2 = 2.0 * L * p * np.exp(-L * Pk ** (n - 1) / (8.0 * (n - 1)))
    case3 = 8.0 * (n - 1) * L * p**2 / Pk ** (n - 1)
    return float(L * probs[0] + np.sum(case1 + case2 + case3))


def lemma_b12_min_length(epsilon, n, *, max_doublings=40) -> int:
    r"""Smallest :math:`L=(n-1)2^j` with :func:`lemma_b12_dependency_bound` :math:`\le4\epsilon L`.

    This is the explicit version of the size condition :math:`L\ge O((n-1)/\epsilon^{n+0.5})`
    of Lemma B.12 / Theorem 4.2 (STATEMENTS.md §4.C, §7.7, §8 check 9; ``[derived]``).
    """
    lemma_b12_schedule(epsilon, n)  # validates epsilon and n
    for j in range(max_doublings):
        L = (n - 1) * 2**j
        if lemma_b12_dependency_bound(L, epsilon, n) <= 4.0 * epsilon * L:
            return L
    raise ValueError(f"no L <= (n-1) 2^{max_doublings} satisfies the Lemma B.12 size condition for epsilon = {epsilon}")


def lemma_b12_kl_bound(L, epsilon, n, V, epsilon_learning) -> float:
    r"""Lemma B.12: :math:`D_{\rm KL}(q\|p)\le 4\epsilon L\log|\mathcal V|+L\,\epsilon_{\rm learning}`.

    STATEMENTS.md §4.C, Lemma B.12 ``[reconstructed·M]`` (statement). Hypotheses (checked):
    the schedule is :func:`lemma_b12_schedule` and :math:`L` satisfies the explicit size
    condition (the dependency bound is at most :math:`4\epsilon L`; see
    :func:`lemma_b12_min_length`).
    """
    L = _pos_int(L, "L")
    V = _pos_int(V, "V")
    eps_l = _real(epsilon_learning, "epsilon_learning", lo=0.0)
    dep = lemma_b12_dependency_bound(L, epsilon, n)
    if dep > 4.0 * epsilon * L:
        raise ValueError(
            f"L = {L} is too short for Lemma B.12 with epsilon = {epsilon}, n = {n}: the dependency bound "
            f"{dep:.4g} exceeds 4 epsilon L = {4 * epsilon * L:.4g}; use L >= lemma_b12_min_length(epsilon, n) "
            f"= {lemma_b12_min_length(epsilon, n)}"
        )
    return 4.0 * epsilon * L * math.log(V) + L * eps_l


def theorem_42_log_ter_bound(log_ter_data, L, epsilon, n, V, epsilon_learning) -> float:
    r"""Theorem 4.2 (= B.13): :math:`\log{\rm TER}(p)\le\log{\rm TER}(q)+\epsilon_{\rm learning}+4\epsilon\log|\mathcal V|`.

    As reconstructed, STATEMENTS.md §4.A Theorem 4.2 ``[reconstructed·M]`` (the
    :math:`n+0.5` exponent ``[reconstructed·L]``), in nats: :math:`\log{\rm TER}(p)=
    \frac1L\mathbb E_q[-\ln p]` (§2.1). Hypotheses (checked): :math:`n`-gram language, the
    schedule of :func:`lemma_b12_schedule` with :math:`N=O((n-1)/\epsilon^n)` steps,
    :math:`L` past the explicit size condition of :func:`lemma_b12_min_length`.
    """
    log_ter_data = _real(log_ter_data, "log_ter_data", lo=0.0)
    return log_ter_data + lemma_b12_kl_bound(L, epsilon, n, V, epsilon_learning) / L
