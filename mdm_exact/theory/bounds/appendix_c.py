r"""Appendix C: Lemmas C.1, C.2, C.5, C.6, Example C.7, Theorems 4.3 (= C.3) and 4.4 (= C.9), STATEMENTS.md §4.A, §4.D."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from mdm_exact.theory.bounds._validate import _pos_int, _real, _step_probs

__all__ = [
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
]


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
