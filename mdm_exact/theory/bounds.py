r"""The paper's statements as functions: one function per lemma or theorem, returning the bound.

Feng et al. (2025), "Theoretical Benefit and Limitation of Diffusion Language Model",
arXiv:2502.09622v1, **as reconstructed** in ``shared/theory/STATEMENTS.md`` (cited below as
"STATEMENTS.md §x" with the confidence tag recorded there). Every formula of the paper was
stripped from the available text, so each function implements the reconstruction, not a
quotation; the tags say how sure the reconstruction is.

Every function

* validates its arguments (types, ranges, lengths, probabilities summing to 1), raising
  :class:`ValueError` with a message that names the argument;
* checks a statement's hypotheses **only where they are a property of its arguments**:
  :math:`(n-1)\mid L` (:func:`lemma_b10_separator_bound`, :func:`lemma_b11_bound`,
  :func:`lemma_b12_dependency_bound`, :func:`lemma_b12_kl_bound`), :math:`p+P\le1` and
  :math:`P>0` (:func:`lemma_b11_bound`), :math:`l\mid L` (:func:`lemma_c6_ser_lower_bound`,
  :func:`theorem_44_ser_lower_bound`), :math:`\epsilon_{\rm learning}<1/128`
  (:func:`theorem_44_ser_lower_bound`), the Lemma B.12 size condition on :math:`L`
  (:func:`lemma_b12_kl_bound`, :func:`theorem_42_log_ter_bound`), :math:`s_{\max}\le L`
  (:func:`li_cai_bound`), :math:`\sqrt{\epsilon/2}\le1/8` (``crude`` form of
  :func:`example_c7_p_err`). Hypotheses about objects that are not arguments (the language
  is an :math:`n`-gram, an HMM or the interval language; the model satisfies Assumption 4.1
  with the given ``epsilon_learning``; positions pick steps i.i.d.; an instance reveals at most
  one position per step; :math:`D_\tau` uses the corrected Definition B.5) are stated in the
  docstrings and are the caller's responsibility; :mod:`mdm_exact.theory.checks` measures them;
* returns the bound (never an estimate): a ``float``, or a :class:`BoundResult` (the bound
  with its named parts) for the two statements whose proofs bound several terms (Lemmas
  B.10 and B.11). The measured side of each statement lives in :mod:`mdm_exact.theory.checks`.

Names: theorems by their main-text number (``theorem_42_*``, ``theorem_43_*``,
``theorem_44_*``; Theorems 4.3 and 4.4 are C.3 and C.9 of the appendix), lemmas and examples by
their appendix number (``lemma_c5_*``, ``example_c7_*``).

Conventions: natural logarithms (nats); steps in generation order ``k = 1..N`` with per-step
probabilities ``p^(k)`` and ``P^(k) = sum_{j<k} p^(j)`` (STATEMENTS.md §1.6);
``epsilon_learning`` is the per-token, pointwise KL(data || model) bound of Assumption 4.1
(STATEMENTS.md §3).

Two later results on the same sampler (``shared/notes/FIELD.md``; constants from secondary
summaries) are included: :func:`li_cai_bound` and :func:`chen_cong_li_identity`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

import numpy as np


@dataclass(frozen=True)
class BoundResult:
    """The result type of a bound function that returns named parts besides the bound.

    Attributes
    ----------
    value : float
        The bound itself (the number a check compares with the measured side).
    parts : mapping of str to float
        Named terms in the statement's order (read-only), e.g. the three cases of Lemma B.11
        or the threshold of a Lemma B.10 tail bound.
    """

    value: float
    parts: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "parts", MappingProxyType({str(k): float(v) for k, v in dict(self.parts).items()}))

    def to_dict(self) -> dict:
        """``{"value": value, **parts}`` (plain floats)."""
        return {"value": self.value, **self.parts}

# --------------------------------------------------------------------------- validation

#: Negative KL values down to ``-KL_ROUNDING`` are float64 rounding of an exact 0 and are clipped.
KL_ROUNDING = 1e-12


def _pos_int(v, name, minimum=1) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {v!r}")
    if v < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {v}")
    return int(v)


def _real(v, name, *, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a real number, got {v!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {x}")
    if lo is not None and (x < lo or (lo_open and x == lo)):
        raise ValueError(f"{name}: expected {name} {'>' if lo_open else '>='} {lo}, got {x}")
    if hi is not None and (x > hi or (hi_open and x == hi)):
        raise ValueError(f"{name}: expected {name} {'<' if hi_open else '<='} {hi}, got {x}")
    return x


def _step_probs(p, name="p", *, atol=1e-9) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"{name}: expected a non-empty 1-d array of per-step probabilities, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name}: expected finite, non-negative per-step probabilities")
    if abs(arr.sum() - 1.0) > atol:
        raise ValueError(f"{name}: per-step probabilities must sum to 1 (STATEMENTS.md §1.6), they sum to {arr.sum():.12g}")
    return arr


def _kl_values(kl, name="kl_marginals") -> np.ndarray:
    arr = np.atleast_1d(np.asarray(kl, dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array of KL divergences, got shape {arr.shape}")
    if np.any(np.isnan(arr)) or np.any(arr < -KL_ROUNDING):
        bad = arr[np.isnan(arr) | (arr < -KL_ROUNDING)][0]
        raise ValueError(f"{name}: expected KL divergences >= 0 (inf allowed), got {bad}")
    return np.maximum(arr, 0.0)  # clip float64 rounding of exact zeros


# --------------------------------------------------------------------------- Appendix A


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


# --------------------------------------------------------------------------- Appendix B


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


# --------------------------------------------------------------------------- Appendix C


def elementary_symmetric_scaled(p, l, *, exact=False):
    r""":math:`F_j=j!\,e_j(p)` for :math:`j=0..l` by the standard recurrence.

    Adding one probability :math:`p_i` updates :math:`e_j\leftarrow e_j+p_ie_{j-1}`
    (descending :math:`j`), i.e. :math:`F_j\leftarrow F_j+j\,p_iF_{j-1}`. With
    :math:`p_i\ge0` every operation adds non-negative terms (no cancellation), and
    :math:`F_j\le1` is the probability that :math:`j` given positions fall in distinct steps,
    so nothing overflows. ``exact=True`` uses :class:`fractions.Fraction` (floats are
    converted exactly, so the result is exact for the given float values).

    Returns
    -------
    ndarray of float64, shape (l + 1,), or list of Fraction when ``exact``.
    """
    l = _pos_int(l, "l", minimum=0)
    if exact:
        ps = [x if isinstance(x, Fraction) else Fraction(x) for x in (p if not isinstance(p, np.ndarray) else p.tolist())]
        if not ps or any(x < 0 for x in ps) or abs(sum(ps) - 1) > Fraction(1, 10**9):
            raise ValueError("p: expected non-negative per-step probabilities summing to 1 (floats are converted exactly)")
        F = [Fraction(1)] + [Fraction(0)] * l
        for pi in ps:
            for j in range(l, 0, -1):
                F[j] += j * pi * F[j - 1]
        return F
    ps = _step_probs(p)
    F = np.zeros(l + 1)  # (l+1,)
    F[0] = 1.0
    j = np.arange(1, l + 1, dtype=np.float64)  # (l,)
    for pi in ps:
        F[1:] = F[1:] + j * pi * F[:-1]  # right-hand side uses the old F: descending update
    return F


def lemma_c1_bound(p, L) -> float:
    r"""Lemma C.1 (union bound): :math:`\Pr[\exists k:|\mathcal M_k|\ge2]\le\min(1,\binom L2\sum_ip_i^2)`.

    As reconstructed, STATEMENTS.md §4.D, Lemma C.1 ``[reconstructed·M]``. Hypothesis (not
    an argument): a schedule, positions pick their step i.i.d. with probabilities ``p``. The
    weaker form is :func:`lemma_c1_max_bound`, the exact value :func:`lemma_c1_exact`.
    """
    ps = _step_probs(p)
    L = _pos_int(L, "L")
    pairs = L * (L - 1) / 2.0
    return min(1.0, pairs * float(np.sum(ps**2)))


def lemma_c1_max_bound(p, L) -> float:
    r"""Lemma C.1 (second form): :math:`\Pr[\exists k:|\mathcal M_k|\ge2]\le\min(1,\binom L2\max_ip_i)`.

    As reconstructed, STATEMENTS.md §4.D, Lemma C.1 ``[reconstructed·M]``; at least
    :func:`lemma_c1_bound`.
    """
    ps = _step_probs(p)
    L = _pos_int(L, "L")
    pairs = L * (L - 1) / 2.0
    return min(1.0, pairs * float(ps.max()))


def lemma_c1_exact(p, L) -> float:
    r"""Lemma C.1, exact: :math:`\Pr[\exists k:|\mathcal M_k|\ge2]=1-L!\,e_L(p)` (1 when :math:`L>N`).

    STATEMENTS.md §4.D, Lemma C.1 ``[derived]``; by :func:`elementary_symmetric_scaled`.
    """
    ps = _step_probs(p)
    L = _pos_int(L, "L")
    exact = 1.0 - elementary_symmetric_scaled(ps, L)[L] if L <= ps.size else 1.0
    return float(max(exact, 0.0))


def lemma_c1_num_steps(L, delta) -> int:
    r"""Lemma C.1 for the linear schedule (:math:`p_i=1/N`): the smallest :math:`N_\delta` with :math:`\binom L2/N\le\delta`.

    STATEMENTS.md §4.D, Lemma C.1 ``[reconstructed·M]``.
    """
    L = _pos_int(L, "L")
    delta = _real(delta, "delta", lo=0.0, hi=1.0, lo_open=True)
    return max(1, math.ceil(L * (L - 1) / (2.0 * delta) - 1e-9))


def lemma_c2_bound(L, epsilon_learning) -> float:
    r"""Lemma C.2: :math:`p_{\rm acc}\ge e^{-L\,\epsilon_{\rm learning}}` (one token per step).

    As reconstructed, STATEMENTS.md §4.D, Lemma C.2 ``[reconstructed·M]``. Hypotheses: an
    HMM (any language works for the proof), an instance with :math:`|\mathcal M_k|\le1`,
    Assumption 4.1 with ``epsilon_learning``. Returns the *lower* bound on the probability
    that the instance's output is in :math:`\mathcal L_q`.
    """
    L = _pos_int(L, "L")
    eps = _real(epsilon_learning, "epsilon_learning", lo=0.0)
    return math.exp(-L * eps)


def lemma_c5_exact(p, l, *, exact=False):
    r"""Lemma C.5, exact: :math:`P_j=l!\,e_l(p_1,\dots,p_N)`, the probability that :math:`l` positions fall in distinct steps.

    STATEMENTS.md §4.D, Lemma C.5 facts ``[derived]``; computed by
    :func:`elementary_symmetric_scaled` (``exact=True``: a :class:`~fractions.Fraction`).
    """
    l = _pos_int(l, "l")
    if exact:
        return elementary_symmetric_scaled(p, l, exact=True)[l]
    ps = _step_probs(p)
    if l > ps.size:
        return 0.0  # pigeonhole
    return float(elementary_symmetric_scaled(ps, l)[l])


def lemma_c5_intermediate(p, l) -> float:
    r"""Lemma C.5, first inequality: :math:`P_j\le\sum_ip_i(1-p_i)^{l-1}`.

    STATEMENTS.md §4.D, Lemma C.5 ``[reconstructed·M]``. (The paper's next, Jensen, step
    :math:`\sum_if(p_i)\le Nf(1/N)` fails for :math:`N<l`, STATEMENTS.md §7.3.)
    """
    ps = _step_probs(p)
    l = _pos_int(l, "l")
    return float(np.sum(ps * (1.0 - ps) ** (l - 1)))


def lemma_c5_bound(N, l) -> float:
    r"""Lemma C.5, final bound: :math:`P_j\le(1-1/N)^{l-1}`.

    As reconstructed, STATEMENTS.md §4.D, Lemma C.5 ``[reconstructed·M]``; true for every
    schedule with :math:`N` steps (Schur-concavity of :math:`e_l`, STATEMENTS.md §4.D facts),
    even where the paper's Jensen step fails.
    """
    N = _pos_int(N, "N")
    l = _pos_int(l, "l")
    return (1.0 - 1.0 / N) ** (l - 1)


def lemma_c5_uniform(N, l) -> float:
    r"""Closed form of :math:`P_j` for the uniform schedule: :math:`\prod_{r=1}^{l-1}(1-r/N)`.

    STATEMENTS.md §4.D, Lemma C.5 facts ``[derived]``.
    """
    N = _pos_int(N, "N")
    l = _pos_int(l, "l")
    return float(np.prod(1.0 - np.arange(1, l) / N)) if l <= N else 0.0


def lemma_c6_ser_lower_bound(L, l, N, p_err, *, P_j=None) -> float:
    r"""Lemma C.6: :math:`{\rm SER}\ge1-\big(1-p_{\rm err}(1-(1-1/N)^{l-1})\big)^{L/l}`.

    As reconstructed, STATEMENTS.md §4.D, Lemma C.6 ``[reconstructed·M]``. Hypotheses: the
    interval setting of Definition C.4 (:math:`l\mid L`, intervals independent), two positions
    of one interval sampled at the same step cause an error with probability at least
    ``p_err``, errors are never removed. With ``P_j`` (the exact value of
    :func:`lemma_c5_exact`), returns the tighter intermediate
    :math:`1-(1-p_{\rm err}(1-P_j))^{L/l}` instead.
    """
    L = _pos_int(L, "L")
    l = _pos_int(l, "l", minimum=2)
    N = _pos_int(N, "N")
    p_err = _real(p_err, "p_err", lo=0.0, hi=1.0)
    if L % l:
        raise ValueError(f"L = {L}: the interval setting (Definition C.4) needs L to be a multiple of l = {l}")
    Pj = lemma_c5_bound(N, l) if P_j is None else _real(P_j, "P_j", lo=0.0, hi=1.0)
    return 1.0 - (1.0 - p_err * (1.0 - Pj)) ** (L // l)


def example_c7_error_probability(delta_a=0.0, delta_b=0.0) -> float:
    r"""Example C.7: mismatch probability of one shared pair bit drawn at one step.

    STATEMENTS.md §4.D, Example C.7 ``[reconstructed·M]``: the model gives bit 0 with
    probabilities :math:`\frac12+\Delta_a` and :math:`\frac12+\Delta_b`, drawn independently,
    so :math:`\Pr[\text{mismatch}]=\frac12-2\Delta_a\Delta_b` (``1/2`` for a perfect model).
    """
    da = _real(delta_a, "delta_a", lo=-0.5, hi=0.5)
    db = _real(delta_b, "delta_b", lo=-0.5, hi=0.5)
    return (0.5 + da) * (0.5 - db) + (0.5 - da) * (0.5 + db)


P_ERR_FORMS = ("pinsker", "pinsker-l1", "crude")


def example_c7_p_err(epsilon_learning, *, form="pinsker") -> float:
    r"""Example C.7: a lower bound on :math:`p_{\rm err}` from Assumption 4.1 (three candidate readings).

    STATEMENTS.md §4.D, Example C.7, values of :math:`p_{\rm err}` ``[reconstructed·L]``
    (the paper's value was not recovered, §7.14):

    * ``pinsker``: :math:`|\Delta|\le\sqrt{\epsilon/2}`, :math:`p_{\rm err}\ge\frac12-\epsilon`;
    * ``pinsker-l1``: :math:`|\Delta|\le\sqrt{2\epsilon}`, :math:`p_{\rm err}\ge\frac12-4\epsilon`
      (``15/32`` at :math:`\epsilon=1/128`);
    * ``crude``: bit probabilities within :math:`[\frac38,\frac58]` (needs
      :math:`\sqrt{\epsilon/2}\le\frac18`), :math:`p_{\rm err}\ge2(\frac38)^2=\frac9{32}`.
    """
    eps = _real(epsilon_learning, "epsilon_learning", lo=0.0)
    if form == "pinsker":
        d = math.sqrt(eps / 2.0)
    elif form == "pinsker-l1":
        d = math.sqrt(2.0 * eps)
    elif form == "crude":
        if math.sqrt(eps / 2.0) > 1.0 / 8.0:
            raise ValueError(f"epsilon_learning = {eps}: the 'crude' form needs sqrt(eps/2) <= 1/8, i.e. eps <= 1/32")
        return 9.0 / 32.0
    else:
        raise ValueError(f"form: expected one of {P_ERR_FORMS}, got {form!r}")
    if d > 0.5:
        raise ValueError(f"epsilon_learning = {eps} is too large for the {form!r} form (|Delta| bound {d:.3g} > 1/2)")
    return 0.5 - 2.0 * d * d


def theorem_43_ser_bound(L, p, epsilon_learning) -> float:
    r"""Theorem 4.3 (= C.3), explicit: :math:`{\rm SER}\le1-\big(1-\binom L2\sum_ip_i^2\big)_+\,e^{-L\epsilon_{\rm learning}}`.

    As reconstructed, STATEMENTS.md §4.A Theorem 4.3 and §4.D Theorem C.3
    ``[reconstructed·M]``: on the event that all positions get distinct steps (Lemma C.1),
    Lemma C.2 applies. Hypotheses: any HMM (any language), any schedule, Assumption 4.1.
    The statement's form ":math:`{\rm SER}\le\delta`" follows once
    :math:`\epsilon_{\rm learning}\le-\ln(1-\delta/2)/L` and :math:`N\ge N_\delta`
    (:func:`theorem_43_max_epsilon_learning`, :func:`theorem_43_min_num_steps`).
    """
    L = _pos_int(L, "L")
    return 1.0 - max(0.0, 1.0 - lemma_c1_bound(p, L)) * lemma_c2_bound(L, epsilon_learning)


def theorem_43_max_epsilon_learning(L, delta) -> float:
    r"""Theorem 4.3: the largest :math:`\epsilon_{\rm learning}=-\ln(1-\delta/2)/L` of the explicit condition for :math:`{\rm SER}\le\delta`.

    STATEMENTS.md §4.A, §4.D Theorem C.3, §7.8 (with :func:`theorem_43_min_num_steps`).
    """
    L = _pos_int(L, "L")
    delta = _real(delta, "delta", lo=0.0, hi=1.0, lo_open=True)
    return -math.log1p(-delta / 2.0) / L


def theorem_43_min_num_steps(L, delta) -> int:
    r"""Theorem 4.3: the smallest number of steps :math:`N_{\delta/2}` of the linear schedule (:func:`lemma_c1_num_steps`) for :math:`{\rm SER}\le\delta`.

    STATEMENTS.md §4.A, §4.D Theorem C.3, §7.8 (with :func:`theorem_43_max_epsilon_learning`).
    """
    L = _pos_int(L, "L")
    delta = _real(delta, "delta", lo=0.0, hi=1.0, lo_open=True)
    return lemma_c1_num_steps(L, delta / 2.0)


def theorem_44_ser_lower_bound(L, N, p_err, *, l=5, epsilon_learning=0.0) -> float:
    r"""Theorem 4.4 (= C.9): SER lower bound for the interval language, :math:`|\mathcal V|=2^{l-1}`.

    As reconstructed, STATEMENTS.md §4.A Theorem 4.4 and §4.D Theorem C.9
    ``[reconstructed·M]``, constants ``[derived]``: Lemma C.6 with interval length ``l``.
    Hypotheses (checked): :math:`\epsilon_{\rm learning}<1/128`, :math:`l\mid L`. ``p_err`` is
    a parameter (STATEMENTS.md §7.14; see :func:`example_c7_p_err`).
    """
    eps = _real(epsilon_learning, "epsilon_learning", lo=0.0)
    if eps >= 1.0 / 128.0:
        raise ValueError(f"epsilon_learning = {eps}: Theorem 4.4 assumes epsilon_learning < 1/128")
    return lemma_c6_ser_lower_bound(L, l, N, p_err)


def theorem_44_asymptotic(C, p_err, *, l=5) -> float:
    r"""Theorem 4.4 (= C.9): the limit of the bound as :math:`L\to\infty` with :math:`N=CL`: :math:`1-\exp(-p_{\rm err}(l-1)/(lC))`.

    STATEMENTS.md §4.D Theorem C.9 step 3 ``[derived]``. The bound increases to this limit.
    """
    C = _real(C, "C", lo=0.0, lo_open=True)
    p_err = _real(p_err, "p_err", lo=0.0, hi=1.0)
    l = _pos_int(l, "l", minimum=2)
    return -math.expm1(-p_err * (l - 1) / (l * C))


def theorem_44_constant(p_err, *, l=5) -> float:
    r"""Theorem 4.4 (= C.9): the largest :math:`C` with asymptotic bound :math:`>\frac12`: :math:`C\le p_{\rm err}(l-1)/(l\ln2)`.

    STATEMENTS.md §4.D Theorem C.9 step 4 ``[derived]`` (0.2885 for ``p_err = 1/4``, 0.541
    for ``15/32``).
    """
    p_err = _real(p_err, "p_err", lo=0.0, hi=1.0, lo_open=True)
    l = _pos_int(l, "l", minimum=2)
    return p_err * (l - 1) / (l * math.log(2.0))


def interval_validity_perfect_model(p, l, *, exact=False):
    r"""Per-interval validity of a **perfect** model in Example C.7: :math:`\mathbb E[2^{-K}]`.

    STATEMENTS.md §8 check 6 ``[derived]``: :math:`K` is the number of pairs of the
    interval's :math:`l` positions drawn at the same step; each such pair's shared bit is
    drawn twice independently and matches with probability :math:`\frac12`; pairs drawn at
    different steps are copied correctly. Computed exactly by a recurrence over steps on the
    number of positions already placed: placing :math:`c` of the remaining positions at one
    step multiplies by :math:`\binom{r}{c}p_i^c\,2^{-\binom c2}`.

    The exact SER of the perfect model is then :math:`1-(\cdot)^{L/l}`.
    """
    l = _pos_int(l, "l", minimum=1)
    if exact:
        ps = [Fraction(x) for x in (p.tolist() if isinstance(p, np.ndarray) else p)]
        one, half = Fraction(1), Fraction(1, 2)
    else:
        ps = _step_probs(p).tolist()
        one, half = 1.0, 0.5
    # g[r] = sum over placements of r positions into the steps seen so far of prob * 2^-K
    g = [one] + [0 * one] * l
    for pi in ps:
        new = [0 * one] * (l + 1)
        for r in range(l + 1):
            for c in range(r + 1):
                new[r] += g[r - c] * math.comb(r, c) * pi**c * half ** (c * (c - 1) // 2)
        g = new
    return g[l]


# --------------------------------------------------------------------------- later results (FIELD.md)


def li_cai_bound(L, s_max, mutual_informations, epsilon_train=0.0) -> float:
    r"""Li & Cai (arXiv:2505.21400): :math:`\mathbb E_M{\rm KL}\le\frac{2^{\lceil\log_2 s_{\max}\rceil}-1}{L}\sum_iI(X_i;X_{-i})+\epsilon_{\rm train}`.

    Constants taken from **secondary summaries** (``shared/notes/FIELD.md``), not from the
    paper; treat a violation as a finding about the constants. Setting: uniformly random
    positions, step sizes at most ``s_max``; KL(data || sampler) averaged over instances.

    Parameters
    ----------
    mutual_informations : array_like, shape (L,)
        :math:`I(X_i;X_{-i})` in nats.
    """
    L = _pos_int(L, "L")
    s_max = _pos_int(s_max, "s_max")
    if s_max > L:
        raise ValueError(f"s_max = {s_max} exceeds L = {L}")
    mi = _kl_values(mutual_informations, "mutual_informations")
    if mi.size != L:
        raise ValueError(f"mutual_informations: expected L = {L} values, got {mi.size}")
    eps = _real(epsilon_train, "epsilon_train", lo=0.0)
    factor = (2 ** math.ceil(math.log2(s_max)) - 1) / L
    return float(factor * mi.sum() + eps)


def chen_cong_li_identity(sizes, Z) -> float:
    r"""Chen, Cong & Li (arXiv:2511.04647): :math:`\mathbb E_M{\rm KL}=\sum_t\sum_{j=c_{t-1}+1}^{c_t}(Z_j-Z_{c_{t-1}+1})`.

    From the secondary summary in ``shared/notes/FIELD.md``, **re-derived** here: for the
    ideal factorised random-order sampler with step sizes :math:`s_t` (cumulative
    :math:`c_t`), the step-:math:`t` KL is :math:`\mathbb E[\sum_{i\in U}H(X_i|X_S)-H(X_U|X_S)]`;
    expanding :math:`H(X_U|X_S)` by the chain rule in a uniformly random order of :math:`U`
    gives :math:`\sum_{r=1}^{s_t}(h_{c_{t-1}+1}-h_{c_{t-1}+r})` with
    :math:`h_j=\mathbb E[H(X_i|X_S)]`, :math:`|S|=j-1`, and :math:`h_j=\bar H-Z_j`.
    One token per step gives 0; one step gives the total correlation.

    Parameters
    ----------
    sizes : sequence of int
        Step sizes :math:`s_t` (summing to :math:`L`).
    Z : array_like, shape (L,)
        :math:`Z_j=\mathbb E[I(X_i;X_S)]` for :math:`j=1..L` (``Z[0]`` is :math:`Z_1=0`).
    """
    s = [int(v) for v in sizes]
    if any(v < 0 for v in s) or sum(s) < 1:
        raise ValueError(f"sizes: expected non-negative step sizes with a positive sum, got {sizes!r}")
    Zs = np.asarray(Z, dtype=np.float64)
    if Zs.ndim != 1 or Zs.size != sum(s):
        raise ValueError(f"Z: expected L = sum(sizes) = {sum(s)} values, got shape {Zs.shape}")
    total, c = 0.0, 0
    for st in s:
        if st:
            total += float(np.sum(Zs[c : c + st] - Zs[c]))
        c += st
    return total


__all__ = [
    "lemma_a1_bound",
    "chernoff_upper_tail",
    "chernoff_lower_tail",
    "lemma_b2_bound",
    "lemma_b3_identity",
    "lemma_b8_bound",
    "lemma_b9_bound",
    "BoundResult",
    "lemma_b10_new_positions_bound",
    "lemma_b10_separator_bound",
    "lemma_b11_bound",
    "lemma_b11_case3_idealised",
    "lemma_b12_schedule",
    "lemma_b12_dependency_bound",
    "lemma_b12_min_length",
    "lemma_b12_kl_bound",
    "theorem_42_log_ter_bound",
    "elementary_symmetric_scaled",
    "lemma_c1_bound",
    "lemma_c1_max_bound",
    "lemma_c1_exact",
    "lemma_c1_num_steps",
    "lemma_c2_bound",
    "lemma_c5_exact",
    "lemma_c5_intermediate",
    "lemma_c5_bound",
    "lemma_c5_uniform",
    "lemma_c6_ser_lower_bound",
    "example_c7_error_probability",
    "example_c7_p_err",
    "P_ERR_FORMS",
    "theorem_43_ser_bound",
    "theorem_43_max_epsilon_learning",
    "theorem_43_min_num_steps",
    "theorem_44_ser_lower_bound",
    "theorem_44_asymptotic",
    "theorem_44_constant",
    "interval_validity_perfect_model",
    "li_cai_bound",
    "chen_cong_li_identity",
]
