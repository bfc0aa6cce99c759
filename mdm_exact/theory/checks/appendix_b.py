r"""Appendix B checks: Lemmas B.2, B.3, B.8-B.12 and Theorem 4.2 (STATEMENTS.md §4.A, §4.C).

B.2, B.3, B.8 and B.9 are measured exactly on the zoo (:mod:`mdm_exact.theory.checks.zoo`) with the
brute-force oracle; B.10-B.12 by the exact laws of :mod:`mdm_exact.theory.checks.dependency_laws`;
Theorem 4.2 by Monte Carlo with an interval.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp
from scipy.stats import binom

from mdm_exact.sampler.montecarlo import run_monte_carlo
from mdm_exact.sampler.schedules import ScheduleSteps
from mdm_exact.theory import bounds as B
from mdm_exact.theory.checks.dependency_laws import expected_dependencies, separator_count_pmf, step_distribution_quantities
from mdm_exact.theory.checks.records import _record, _worst
from mdm_exact.theory.checks.zoo import _exact_cases, _load_preset, _random_ngram
from mdm_exact.theory.separators import instance_dependencies

__all__ = [
    "check_b2",
    "check_b3",
    "check_b8",
    "check_b8_literal",
    "check_b9",
    "check_b9_literal",
    "check_b10",
    "check_b11",
    "check_b12",
    "check_theorem_42",
]


def check_b2(quick=False):
    recs = []
    for inst, lang, n, L, eng, rule, steps, w in _exact_cases(quick):
        lp = eng.log_p_tau(steps)
        kl_tau = eng.kl_from(lp)
        logp = logsumexp(lp + np.log(w)[:, None], axis=0)
        recs.append(_record("B.2", inst, B.lemma_b2_bound(kl_tau, w), eng.kl_from(logp)[0], count=len(w)))
    return recs


def check_b3(quick=False):
    recs = []
    for inst, lang, n, L, eng, rule, steps, w in _exact_cases(quick):
        sel = steps[:: max(1, len(steps) // 20)]
        kl_tau = eng.kl_from(eng.log_p_tau(sel))
        rhs = [B.lemma_b3_identity(eng.step_kls(s)) for s in sel]
        recs.append(_worst("B.3", inst, rhs, kl_tau, direction="equal"))
    return recs


def _check_b8(quick, reading, name):
    recs = []
    for inst, lang, n, L, eng, rule, steps, w in _exact_cases(quick):
        if n is None:
            continue
        kl_tau = eng.kl_from(eng.log_p_tau(steps))
        _, D = instance_dependencies(steps, n, reading=reading)
        Dtau = D.sum(axis=1)
        b = [B.lemma_b8_bound(d, L, lang.vocab_size, eng.epsilon_learning) for d in Dtau]
        recs.append(_worst(name, inst, b, kl_tau, detail={"epsilon_learning": eng.epsilon_learning}))
    return recs


def check_b8(quick=False):
    return _check_b8(quick, "corrected", "B.8")


def check_b8_literal(quick=False):
    return _check_b8(quick, "literal", "B.8-literal")


def _check_b9(quick, reading, name):
    recs = []
    for inst, lang, n, L, eng, rule, steps, w in _exact_cases(quick):
        if n is None:
            continue
        lp = eng.log_p_tau(steps)
        logp = logsumexp(lp + np.log(w)[:, None], axis=0)
        _, D = instance_dependencies(steps, n, reading=reading)
        ED = float(w @ D.sum(axis=1))
        b = B.lemma_b9_bound(ED, L, lang.vocab_size, eng.epsilon_learning)
        recs.append(_record(name, inst, b, eng.kl_from(logp)[0], count=1))
    return recs


def check_b9(quick=False):
    return _check_b9(quick, "corrected", "B.9")


def check_b9_literal(quick=False):
    return _check_b9(quick, "literal", "B.9-literal")


def _b10_grid(quick):
    Ls = (64, 512) if quick else (64, 512, 2048)
    for L in Ls:
        for n in (2, 3, 4):
            if L % (n - 1):
                continue
            for P in (0.1, 0.3, 0.6):
                for p in (0.002, 0.01, 0.05):
                    yield L, n, P, p


def check_b10(quick=False):
    recs = []
    for L, n, P, p in _b10_grid(quick):
        new = B.lemma_b10_new_positions_bound(L, p)
        thr = new.parts["threshold"]
        meas_new = float(binom.sf(math.ceil(thr - 1e-12) - 1, L, p))  # P[N_k >= 2Lp]
        recs.append(_record("B.10", f"Pr[N_k >= 2Lp], L={L} p={p}", new.value, meas_new))
        sep = B.lemma_b10_separator_bound(L, P, n)
        pmf = separator_count_pmf(L, P, n)
        meas_sep = float(pmf[: math.floor(sep.parts["threshold"] + 1e-12) + 1].sum())
        recs.append(_record("B.10", f"Pr[S_k <= L P^(n-1)/(2(n-1))], L={L} n={n} P={P}", sep.value, meas_sep))
    return recs


def check_b11(quick=False):
    recs = []
    for L, n, P, p in _b10_grid(quick):
        corr, _ = expected_dependencies(L, p, P, n)
        bd = B.lemma_b11_bound(L, p, P, n)
        detail = {**bd.parts, "total": bd.value}  # the record's schema: the three cases and their total
        recs.append(_record("B.11", f"E[D_k], L={L} n={n} P={P} p={p}", bd.value, corr[0], detail=detail))
    return recs


def _b12_grid(quick):
    return [(2, 0.3), (2, 0.2), (3, 0.3)] if quick else [(2, 0.3), (2, 0.2), (2, 0.1), (3, 0.3), (3, 0.2), (4, 0.3)]


def check_b12(quick=False):
    """Lemma B.12's core: the constructed schedule keeps :math:`\\sum_k\\mathbb E[D_k]\\le4\\epsilon L` (exact), at L_min and 4 L_min."""
    recs = []
    for n, eps in _b12_grid(quick):
        probs = B.lemma_b12_schedule(eps, n)
        Lmin = B.lemma_b12_min_length(eps, n)
        for L in (Lmin, 4 * Lmin) if not quick else (Lmin,):
            if L > 20000:
                continue
            p, P = step_distribution_quantities(probs)
            corr, _ = expected_dependencies(L, p, P, n)
            recs.append(
                _record(
                    "B.12",
                    f"sum_k E[D_k] vs 4 eps L, n={n} eps={eps} N={len(probs)} L={L}",
                    4 * eps * L,
                    float(corr.sum()),
                    detail={"num_steps": len(probs), "dependency_bound": B.lemma_b12_dependency_bound(L, eps, n)},
                )
            )
    return recs


def check_theorem_42(quick=False):
    """Theorem 4.2 by Monte Carlo: the unbiased Lemma B.2 quantity E_tau KL(q||p_tau)/L (an upper bound on log TER gap) vs the bound."""
    recs = []
    cases = [("random 2-gram V=3", _random_ngram(2, 3, 21, threshold=0.0), 2, 0.3)]
    if not quick:
        cases.append(("random 2-gram V=3", _random_ngram(2, 3, 21, threshold=0.0), 2, 0.2))
        cases.append(("paper-2gram-t0", _load_preset("paper-2gram-t0"), 2, 0.3))
    for label, lang, n, eps in cases:
        L = B.lemma_b12_min_length(eps, n)
        rule = ScheduleSteps(tuple(B.lemma_b12_schedule(eps, n)), label="b12")
        res = run_monte_carlo(lang, L, rule, 64 if quick else 1000, rng=42, ci_alpha=1e-3, instance_kl=True).to_dict()
        lo, hi = res["instance_kl_per_token_ci"]
        bound = B.lemma_b12_kl_bound(L, eps, n, lang.vocab_size, 0.0) / L  # log TER(p) - log TER(q)
        recs.append(
            _record(
                "4.2",
                f"{label}, L={L}, B.12 schedule N={len(rule.probs)}, eps={eps}, perfect model (upper CI of E_tau KL/L)",
                bound,
                res["instance_kl_per_token"],
                ci=(lo, hi),
            )
        )
    return recs
