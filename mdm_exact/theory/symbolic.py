r"""Exact symbolic closed forms (SymPy) of quantities that :mod:`mdm_exact.theory.bounds` and the samplers compute numerically.

Each function *derives* its closed form with SymPy from a definition that is written
differently from the numerical code (falling factorials instead of the
:math:`F_j\leftarrow F_j+jp_iF_{j-1}` recurrence, a symbolic limit instead of the
hand-derived one, a sum over sequences grouped by their number of switches instead of a
joint table), so that the tests comparing the two (``tests/test_bounds.py``,
``tests/test_schedules.py``) are independent checks, to 1e-12 or exactly. As reconstructed,
STATEMENTS.md §4.C-§4.E (Feng et al. 2025, arXiv:2502.09622v1).

SymPy is imported by this module only; ``import mdm_exact`` does not load it.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from mdm_exact.theory.bounds._validate import _pos_int

__all__ = [
    "x",
    "lemma_c5_uniform_polynomial",
    "lemma_c5_uniform_value",
    "expected_nonempty_steps_uniform",
    "expected_nonempty_steps_schedule",
    "lemma_c6_bound_expr",
    "theorem_44_asymptotic_expr",
    "theorem_44_constant_expr",
    "lemma_b11_cases_exact",
    "lemma_b12_num_steps_exact",
    "copy_chain_one_step_kl",
]

#: The variable :math:`x=1/N` of the Lemma C.5 polynomial.
x = sp.Symbol("x", positive=True)


def lemma_c5_uniform_polynomial(l) -> sp.Poly:
    r"""Lemma C.5 for the uniform schedule: :math:`l!\,e_l(1/N,\dots,1/N)` as a polynomial in :math:`x=1/N`.

    Derivation: :math:`e_l` of :math:`N` equal entries :math:`x` is :math:`\binom Nl x^l`, so
    :math:`l!\,e_l=N^{\underline l}x^l` (falling factorial); with :math:`N=1/x` this expands to
    :math:`\prod_{r=1}^{l-1}(1-rx)`, a polynomial of degree :math:`l-1` with integer
    coefficients (Stirling numbers of the first kind). STATEMENTS.md §4.D, Lemma C.5 facts.
    """
    l = _pos_int(l, "l")
    return sp.Poly(sp.expand(sp.ff(1 / x, l) * x**l), x)


def lemma_c5_uniform_value(N, l) -> sp.Rational:
    """The exact rational :math:`l!\\,e_l(1/N,\\dots,1/N)` (0 when :math:`l > N`, the pigeonhole case)."""
    N = _pos_int(N, "N")
    return sp.Rational(lemma_c5_uniform_polynomial(l).eval(sp.Rational(1, N)))


def expected_nonempty_steps_uniform(N, L) -> sp.Expr:
    r""":math:`\mathbb E[\#\{k:\mathcal M_k\ne\emptyset\}]=N(1-(1-1/N)^L)` for the uniform (``linear``) schedule, exact.

    Derivation: by linearity over steps, step :math:`k` is empty iff none of the :math:`L`
    positions (i.i.d., STATEMENTS.md §1.6) picks it; here summed symbolically over :math:`k`.
    """
    N = _pos_int(N, "N")
    L = _pos_int(L, "L")
    k = sp.Symbol("k", integer=True, positive=True)
    return sp.nsimplify(sp.summation(1 - (1 - sp.Rational(1, N)) ** L, (k, 1, N)))


def expected_nonempty_steps_schedule(probs, L) -> sp.Expr:
    r""":math:`\sum_k\big(1-(1-p^{(k)})^L\big)` for a schedule with exact (rational) step probabilities ``probs``."""
    L = _pos_int(L, "L")
    ps = [sp.nsimplify(v, rational=True) for v in probs]
    if any(v < 0 for v in ps) or sum(ps) != 1:
        raise ValueError("probs: expected non-negative step probabilities summing to 1 exactly")
    return sp.Add(*[1 - (1 - v) ** L for v in ps])


def lemma_c6_bound_expr(l=5):
    r"""Lemma C.6 as an expression in symbols ``(L, N, p_err)``: :math:`1-(1-p_{\rm err}(1-(1-1/N)^{l-1}))^{L/l}`.

    STATEMENTS.md §4.D, Lemma C.6 ``[reconstructed·M]``. Returns ``(expr, (L, N, p_err))``.
    """
    l = _pos_int(l, "l", minimum=2)
    L, N, p = sp.symbols("L N p_err", positive=True)
    return 1 - (1 - p * (1 - (1 - 1 / N) ** (l - 1))) ** (L / l), (L, N, p)


@lru_cache(maxsize=8)
def theorem_44_asymptotic_expr(l=5):
    r"""Theorem 4.4 (= C.9): :math:`\lim_{L\to\infty}` of the Lemma C.6 bound along :math:`N=CL`, by SymPy.

    Returns ``(expr, (C, p_err))``; simplifies to :math:`1-\exp(-p_{\rm err}(l-1)/(lC))`
    (STATEMENTS.md §4.D Theorem C.9 step 3).
    """
    expr, (L, N, p) = lemma_c6_bound_expr(l)
    C = sp.Symbol("C", positive=True)
    lim = sp.limit(expr.subs(N, C * L), L, sp.oo)
    return sp.simplify(lim), (C, p)


def theorem_44_constant_expr(l=5):
    r"""Theorem 4.4 (= C.9): the :math:`C` at which the asymptotic bound equals :math:`\frac12`, solved by SymPy.

    Returns ``(expr, p_err)``; :math:`p_{\rm err}(l-1)/(l\ln2)` (STATEMENTS.md §4.D Theorem C.9 step 4).
    """
    lim, (C, p) = theorem_44_asymptotic_expr(l)
    (sol,) = sp.solve(sp.Eq(lim, sp.Rational(1, 2)), C)
    return sp.simplify(sol), p


def lemma_b11_cases_exact(L, p, P, n) -> dict:
    r"""The three cases of Lemma B.11 at rational ``p``, ``P`` as exact SymPy numbers (STATEMENTS.md §4.C).

    ``p`` and ``P`` are read as exact rationals (``sympy.nsimplify``: pass ``Rational`` or a
    string such as ``"1/100"`` to avoid binary fractions).
    """
    L = _pos_int(L, "L")
    n = _pos_int(n, "n", minimum=2)
    p, P = sp.Rational(p), sp.Rational(P)
    return {
        "case1": (2 * L * p + 3) * sp.exp(-L * p / 3),
        "case2": 2 * L * p * sp.exp(-L * P ** (n - 1) / (8 * (n - 1))),
        "case3": 8 * (n - 1) * L * p**2 / P ** (n - 1),
    }


def lemma_b12_num_steps_exact(epsilon, n) -> int:
    r"""Lemma B.12 schedule length :math:`N=1+\lceil8(n-1)(1-\epsilon)/\epsilon^n\rceil` in exact rational arithmetic."""
    eps = sp.Rational(epsilon)
    n = _pos_int(n, "n", minimum=2)
    if not 0 < eps < 1:
        raise ValueError(f"epsilon: expected 0 < epsilon < 1, got {eps}")
    return int(1 + sp.ceiling(8 * (n - 1) * (1 - eps) / eps**n))


@lru_cache(maxsize=8)
def copy_chain_one_step_kl(L) -> sp.Expr:
    r""":math:`D_{\rm KL}(q\|p_\tau)` of the copy chain (``x_1`` uniform on {0, 1}, stay probability :math:`1-a`) when one step reveals all :math:`L` positions.

    One step draws every position from its marginal, which is uniform, so :math:`p_\tau=2^{-L}`.
    Sequences are grouped by their number :math:`m` of switches (:math:`2\binom{L-1}m` of
    them, each with :math:`q=\frac12a^m(1-a)^{L-1-m}`); the sum simplifies to
    :math:`(L-1)(\log2+a\log a+(1-a)\log(1-a))` (STATEMENTS.md §7.2: 2.74 at :math:`L=5`,
    :math:`a=10^{-3}`). Returns an expression in the symbol ``a``.
    """
    L = _pos_int(L, "L", minimum=2)
    a = sp.Symbol("a", positive=True)
    terms = []
    for m in range(L):
        q = sp.Rational(1, 2) * a**m * (1 - a) ** (L - 1 - m)
        terms.append(2 * sp.binomial(L - 1, m) * q * (sp.expand_log(sp.log(q), force=True) + L * sp.log(2)))
    return sp.simplify(sp.expand(sp.Add(*terms)))
