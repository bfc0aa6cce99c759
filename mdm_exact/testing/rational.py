r"""THE exact-rational oracle: the joint law and the sampler's output law in :class:`fractions.Fraction`.

For the tiniest cases (``V^L`` Python loops): no rounding anywhere, so identities such as
"one position per step reproduces :math:`q`" (the chain rule) hold with equality, and the
float engines can be compared with the exact value of the same binary-rational parameters
(STATEMENTS.md §1.7 as reconstructed; Feng et al. 2025, arXiv:2502.09622v1, Definition B.1).
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np

from mdm_exact._validate import as_length
from mdm_exact.languages import HMM, NGram
from mdm_exact.sampler.schedules import FixedSizes, LeftToRight, RandomOrder, ScheduleSteps, StepRule

__all__ = ["rational_joint", "exact_output_law_rational"]


def rational_joint(lang, L: int) -> list:
    """``q(x)`` as exact fractions for an :class:`NGram` or :class:`HMM`, ``all_sequences`` order.

    Parameters are read as the exact binary rationals of their float64 values
    (``Fraction(float)``), renormalised exactly; the joint is then computed without rounding
    (n-gram product, HMM forward sums). For the tiniest cases only (``V^L`` Python loops).
    """
    if not isinstance(lang, (NGram, HMM)):
        raise TypeError(f"rational_joint: expected an NGram or HMM, got {type(lang).__name__}")
    L = as_length(L)
    V = int(lang.vocab_size)

    def rows(a):
        a = np.atleast_2d(np.asarray(a, dtype=np.float64))
        out = []
        for row in a:
            fr = [Fraction(float(v)) for v in row]
            tot = sum(fr)
            out.append([v / tot for v in fr])
        return out

    seqs = list(itertools.product(range(V), repeat=L))
    if isinstance(lang, NGram):
        n = lang.order
        init = rows(lang.initial)[0]
        cond = rows(lang.conditional)
        res = []
        for x in seqs:
            m = min(n - 1, L)
            # law of the first min(n-1, L) tokens: marginal of the initial context law
            ctx_prob = sum(
                (init[c] for c in range(V ** (n - 1)) if all((c // V ** (n - 2 - i)) % V == x[i] for i in range(m))),
                Fraction(0),
            )
            w = ctx_prob
            for k in range(n - 1, L):
                c = 0
                for t in x[k - n + 1 : k]:
                    c = c * V + t
                w *= cond[c][x[k]]
            res.append(w)
        return res
    if isinstance(lang, HMM):
        pi = rows(lang.initial)[0]
        A = rows(lang.transition)
        B = rows(lang.emission)
        S = len(pi)
        res = []
        for x in seqs:
            alpha = [pi[s] * B[s][x[0]] for s in range(S)]
            for t in x[1:]:
                alpha = [sum((alpha[a] * A[a][b] for a in range(S)), Fraction(0)) * B[b][t] for b in range(S)]
            res.append(sum(alpha, Fraction(0)))
    return res


def exact_output_law_rational(joint, V: int, L: int, rule: StepRule, *, step_probs=None) -> list:
    """Exact output law with ``fractions.Fraction`` arithmetic (the oracle for tiny cases).

    Parameters
    ----------
    joint : sequence of Fraction, length V**L
        ``q(x)`` in ``all_sequences(V, L)`` order, summing to 1.
    step_probs : sequence of Fraction, optional
        ``p^(k)`` for a :class:`ScheduleSteps` rule (default: the exact binary value of
        ``rule.probs``).

    Returns
    -------
    list of Fraction
        ``p(x)`` in ``all_sequences`` order (perfect model, uniform conditionals in
        impossible contexts).
    """
    L = as_length(L)
    joint = [Fraction(v) for v in joint]
    if len(joint) != V**L or sum(joint) != 1:
        raise ValueError(f"joint: expected {V**L} fractions summing to 1")
    seqs = list(itertools.product(range(V), repeat=L))
    Q = {}
    for y in itertools.product(range(V + 1), repeat=L):
        Q[y] = sum(
            (joint[n] for n, x in enumerate(seqs) if all(a == V or a == b for a, b in zip(y, x))),
            Fraction(0),
        )

    def cond(y, j, v):
        if Q[y] == 0:
            return Fraction(1, V)
        z = list(y)
        z[j] = v
        return Q[tuple(z)] / Q[y]

    if isinstance(rule, ScheduleSteps):
        p = [Fraction(v) for v in (rule.probs if step_probs is None else step_probs)]
        if sum(p) != 1:
            raise ValueError("step_probs: expected fractions summing to 1")
        plan = []
        done = Fraction(0)
        for k, pk in enumerate(p):
            rem = 1 - done
            r = Fraction(1) if (k == len(p) - 1 or rem == 0) else pk / rem
            plan.append(([r] * L, -1))
            done += pk
    elif isinstance(rule, LeftToRight):
        plan = [([Fraction(int(i == k)) for i in range(L)], -1) for k in range(L)]
    else:
        sizes = (1,) * L if isinstance(rule, RandomOrder) else rule.sizes
        FixedSizes(tuple(sizes)).check_length(L)
        plan = [([Fraction(1)] * L, s) for s in sizes]
    g = {tuple([V] * L): Fraction(1)}
    for r, size in plan:
        new = {}
        for y, mass in g.items():
            masked = [i for i in range(L) if y[i] == V]
            for opts in itertools.product(range(V + 1), repeat=len(masked)):
                nrev = sum(o < V for o in opts)
                if size >= 0 and nrev != size:
                    continue
                w = mass / math.comb(len(masked), size) if size >= 0 else mass
                z = list(y)
                for j, o in zip(masked, opts):
                    if o == V:
                        w *= 1 if size >= 0 else 1 - r[j]
                    else:
                        w *= (1 if size >= 0 else r[j]) * cond(y, j, o)
                        z[j] = o
                if w:
                    new[tuple(z)] = new.get(tuple(z), Fraction(0)) + w
        g = new
    return [g.get(x, Fraction(0)) for x in seqs]
