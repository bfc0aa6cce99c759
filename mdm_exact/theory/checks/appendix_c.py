r"""Appendix C checks: Lemmas C.1, C.2, C.5, C.6, Example C.7, Theorems 4.3 and 4.4 (STATEMENTS.md §4.A, §4.D).

Exact where possible (the brute-force oracle on the zoo, the exact engine for SER, closed forms of
:mod:`mdm_exact.theory.bounds`), Monte Carlo with an interval for Theorem 4.4 on ``interval-l5``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from mdm_exact.sampler.exact import exact_output_law
from mdm_exact.sampler.montecarlo import run_monte_carlo
from mdm_exact.sampler.schedules import LeftToRight, RandomOrder, schedule
from mdm_exact.testing.instances import enumerate_instances
from mdm_exact.testing.oracle import ExactInstances
from mdm_exact.theory import bounds as B
from mdm_exact.theory.checks.records import _record, _worst
from mdm_exact.theory.checks.zoo import MixtureModel, _engine, _load_preset, _make_model, _model_label, exact_languages, interval_language_table

__all__ = [
    "check_c1",
    "check_c2",
    "check_c5",
    "check_c5_jensen",
    "check_c6",
    "check_c7",
    "check_theorem_43",
    "check_theorem_44",
]


def check_c1(quick=False):
    recs = []
    for L in (4, 16, 64) if quick else (4, 16, 64, 128):
        for name in ("linear", "cosine"):
            for N in (L, 4 * L, L * L, 4 * L * L):
                if N > 20_000:
                    continue
                p = schedule(name, N).p
                union = B.lemma_c1_bound(p, L)
                if union >= 1.0:
                    continue  # vacuous: the union bound says nothing
                recs.append(_record("C.1", f"{name} N={N}, L={L}", union, B.lemma_c1_exact(p, L)))
    return recs


def check_c2(quick=False):
    recs = []
    for label, lang, n, L in exact_languages(quick):
        for spec in (0.05, 0.2) if quick else (0.05, 0.2, ("perturbed", 0.3, 1), ("perturbed", 1.0, 2)):
            eng = _engine(label, lang, L, spec)
            for rlabel, rule in (("left-to-right", LeftToRight()), ("random-order", RandomOrder())):
                steps, w = enumerate_instances(rule, L)
                acc = 1.0 - eng.ser_from(eng.log_p_tau(steps))  # (T,)
                b = B.lemma_c2_bound(L, eng.epsilon_learning)
                inst = f"{label}, L={L}, {rlabel}, {_model_label(spec)}, eps={eng.epsilon_learning:.3g}"
                recs.append(_worst("C.2", inst, np.full(acc.size, b), acc, direction="lower"))
    return recs


def _c5_schedules(N, rng):
    yield "uniform", np.full(N, 1.0 / N)
    yield "cosine", schedule("cosine", N).p
    yield "linear-ramp", np.arange(1, N + 1) / (N * (N + 1) / 2)
    yield "dirichlet(1)", rng.dirichlet(np.ones(N))
    yield "dirichlet(0.1)", rng.dirichlet(np.full(N, 0.1))


def _c5_grid(quick):
    rng = np.random.default_rng(5)
    for l in (2, 3, 5, 8, 10):
        for N in (2, 4, 8, 16, 64) if quick else (2, 3, 4, 8, 16, 64, 256, 1024):
            for sname, p in _c5_schedules(N, rng):
                p = p / p.sum()
                yield l, N, sname, p


def check_c5(quick=False):
    recs = []
    for l, N, sname, p in _c5_grid(quick):
        ex = B.lemma_c5_exact(p, l)
        recs.append(_record("C.5", f"l={l} N={N} {sname}", B.lemma_c5_bound(N, l), ex))
        recs.append(_record("C.5-first", f"l={l} N={N} {sname}", B.lemma_c5_intermediate(p, l), ex))
    return recs


def check_c5_jensen(quick=False):
    recs = []
    for l, N, sname, p in _c5_grid(quick):
        recs.append(_record("C.5-jensen", f"l={l} N={N} {sname}", B.lemma_c5_bound(N, l), B.lemma_c5_intermediate(p, l)))
    return recs


def check_c6(quick=False):
    """Lemma C.6 on the Example C.7 language: exact enumeration (l = 3) and the exact perfect-model formula (l = 3, 4, 5)."""
    recs = []
    lq, V, L = interval_language_table(3, 2 if not quick else 1)
    for eta in (0.0, 0.05):
        eng = ExactInstances(lq, V, L, model=eta if eta else None)
        for N in (1, 2, 3) if L <= 3 else (1, 2):
            rule = schedule("linear", N)
            steps, w = enumerate_instances(rule, L)
            lp = logsumexp(eng.log_p_tau(steps) + np.log(w)[:, None], axis=0)
            ser = eng.ser_from(lp)[0]
            b = B.lemma_c6_ser_lower_bound(L, 3, N, 0.5)
            recs.append(_record("C.6", f"interval l=3, L={L}, linear N={N}, model eta={eta}, p_err=1/2 (exact enumeration)", b, ser, direction="lower"))
    lang = _load_preset("interval-l3")
    if not quick:
        for spec in (("perturbed", 0.05, 0), ("perturbed", 0.1, 1)):
            eng = ExactInstances(lq, V, L, model=_make_model(lang, spec))
            eps = eng.epsilon_learning
            for N in (1, 2):
                rule = schedule("linear", N)
                steps, w = enumerate_instances(rule, L)
                ser = eng.ser_from(logsumexp(eng.log_p_tau(steps) + np.log(w)[:, None], axis=0))[0]
                p_err = B.example_c7_p_err(eps, form="pinsker")
                b = B.lemma_c6_ser_lower_bound(L, 3, N, p_err)
                inst = f"interval l=3, L={L}, linear N={N}, {_model_label(spec)}, eps={eps:.3g}, p_err=1/2-eps (exact enumeration)"
                recs.append(_record("C.6", inst, b, ser, direction="lower"))
    for l in (3, 4, 5):
        for L in (l, 4 * l, 20 * l):
            for N in (1, L // 2 or 1, L, 4 * L):
                p = np.full(N, 1.0 / N)
                ser = 1.0 - B.interval_validity_perfect_model(p, l) ** (L // l)
                b = B.lemma_c6_ser_lower_bound(L, l, N, 0.5)
                recs.append(_record("C.6", f"interval l={l}, L={L}, linear N={N}, perfect model (exact formula)", b, ser, direction="lower"))
    return recs


class _BiasedPairModel:
    """Example C.7 with l = 2 (V = 2, L = 2): the model predicts bit 0 with 1/2 + Delta_a, 1/2 + Delta_b at the empty context."""

    def __init__(self, da, db):
        self.d = (da, db)

    def conditional_marginals(self, x, revealed):
        x = np.asarray(x)
        rev = np.asarray(revealed, dtype=bool)
        out = np.empty(x.shape + (2,))
        for i in range(2):
            other = 1 - i
            # the shared bit must equal the other token once it is revealed
            copy = np.stack([x[:, other] == 0, x[:, other] == 1], axis=-1).astype(float)
            biased = np.array([0.5 + self.d[i], 0.5 - self.d[i]])
            out[:, i] = np.where(rev[:, other, None], copy, biased)
            out[:, i] = np.where(rev[:, i, None], np.eye(2)[x[:, i]], out[:, i])
        return out


def check_c7(quick=False):
    """Example C.7: exact mismatch probability of a pair drawn at one step vs the formula and the p_err lower bounds."""
    recs = []
    lq, V, L = interval_language_table(2, 1)
    for da, db in [(0.0, 0.0), (0.05, 0.05), (0.06, -0.04), (-0.08, -0.03)]:
        model = _BiasedPairModel(da, db)
        eng = ExactInstances(lq, V, L, model=model)
        steps, w = enumerate_instances(schedule("linear", 1), L)
        err = eng.ser_from(eng.log_p_tau(steps))[0]
        recs.append(_record("C.7", f"l=2 pair, Delta=({da},{db}): formula", B.example_c7_error_probability(da, db), err, direction="equal"))
        for form in B.P_ERR_FORMS:
            try:
                pe = B.example_c7_p_err(eng.epsilon_learning, form=form)
            except ValueError:
                continue
            recs.append(_record("C.7", f"l=2 pair, Delta=({da},{db}), eps={eng.epsilon_learning:.2e}: p_err[{form}]", pe, err, direction="lower"))
    return recs


def _ser_exact(lang, L, rule, spec, eng):
    """Exact SER by the exact engine's DP (:func:`mdm_exact.sampler.exact.exact_output_law`),
    measured on the support of the oracle ``eng``."""
    model = _make_model(lang, spec)
    model = MixtureModel(lang, model) if isinstance(model, float) else model
    return float(eng.ser_from(exact_output_law(lang, L, rule, model=model))[0])


def check_theorem_43(quick=False):
    recs = []
    for label, lang, n, L in exact_languages(quick):
        for spec in (0.0, 0.01) if quick else (0.0, 0.01, ("perturbed", 0.1, 3)):
            eng = _engine(label, lang, L, spec)
            for N in (L, 4 * L, L * L) if not quick else (L, L * L):
                rule = schedule("linear", N)
                ser = _ser_exact(lang, L, rule, spec, eng)
                b = B.theorem_43_ser_bound(L, rule.p, eng.epsilon_learning)
                inst = f"{label}, L={L}, linear N={N}, {_model_label(spec)}, eps={eng.epsilon_learning:.3g}"
                recs.append(_record("4.3", inst, b, ser))
    return recs


def check_theorem_44(quick=False):
    """Theorem 4.4 / C.9 with l = 5 (V = 16): exact perfect-model SER (formula checked against enumeration in the tests)."""
    recs = []
    for p_err_label, p_err in (("1/4", 0.25), ("15/32", 15 / 32), ("1/2 (perfect model)", 0.5)):
        for C in (0.2, B.theorem_44_constant(p_err)):
            for L in (20, 100, 1000) if quick else (20, 100, 1000, 10000):
                N = max(1, int(C * L))
                ser = 1.0 - B.interval_validity_perfect_model(np.full(N, 1.0 / N), 5) ** (L // 5)
                b = B.theorem_44_ser_lower_bound(L, N, p_err)
                recs.append(
                    _record("4.4", f"interval l=5, L={L}, N={N} (C={C:.4g}), p_err={p_err_label}", b, ser, direction="lower",
                            detail={"asymptotic_bound": B.theorem_44_asymptotic(C, p_err), "ser_above_half": ser > 0.5})
                )
    recs.extend(_theorem_44_monte_carlo(quick))
    return recs


def _theorem_44_monte_carlo(quick):
    """Theorem 4.4 by Monte Carlo of the actual sampler on ``interval-l5`` (Clopper-Pearson,
    alpha = 1e-3); the record's detail says whether the interval covers the exact formula."""
    lang = _load_preset("interval-l5")
    recs = []
    for L, C in ((50, 0.2), (50, 1.0)) if quick else ((50, 0.2), (100, 0.2), (500, 0.2), (100, 1.0), (100, 4.0)):
        N = int(C * L)
        rule = schedule("linear", N)
        res = run_monte_carlo(lang, L, rule, 1000 if quick else 5000, rng=7, ci_alpha=1e-3, instance_kl=False).to_dict()
        exact = 1.0 - B.interval_validity_perfect_model(rule.p, 5) ** (L // 5)
        lo, hi = res["ser_ci"]
        b = B.theorem_44_ser_lower_bound(L, N, 0.25)
        recs.append(
            _record("4.4", f"interval-l5 Monte Carlo, L={L}, N={N} (C={C:g}), p_err=1/4", b, res["ser"], direction="lower", ci=(lo, hi),
                    detail={"exact_formula": exact, "formula_in_ci": bool(lo <= exact <= hi)})
        )
    return recs
