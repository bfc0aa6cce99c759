r"""Check one statement on one user-given instance (:func:`check_instance`, ``mdm-theory check``-style records)."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from mdm_exact.sampler.montecarlo import run_monte_carlo
from mdm_exact.sampler.schedules import FixedSizes, ScheduleSteps
from mdm_exact.testing.instances import enumerate_instances
from mdm_exact.testing.oracle import ExactInstances, joint_from_language
from mdm_exact.theory import bounds as B
from mdm_exact.theory.checks.dependency_laws import expected_dependencies, step_distribution_quantities
from mdm_exact.theory.checks.records import _record, _worst
from mdm_exact.theory.checks.zoo import MixtureModel, _model_label
from mdm_exact.theory.schedule_opt import information_curve_exact
from mdm_exact.theory.separators import instance_dependencies

__all__ = ["check_instance"]


def _language_order(lang):
    order = getattr(lang, "order", None)
    return int(order) if order is not None else None


def check_instance(
    name, lang, L, rule, *, model=None, method="auto", num_samples=20000, rng=None, alpha=1e-3, p_err=None, epsilon_learning=None
) -> dict:
    r"""Check one statement on one user-given instance; returns one record (see :func:`run_checks`).

    Parameters
    ----------
    name : str
        ``B.2``, ``B.3``, ``B.8``, ``B.8-literal``, ``B.9``, ``B.9-literal``, ``C.2``, ``4.3``,
        ``Li-Cai``, ``Chen-Cong-Li`` (exact only), ``C.6`` / ``4.4`` (interval languages,
        exact or Monte Carlo), ``4.2`` (Monte Carlo: the Lemma B.8 bound averaged over
        instances, :math:`\mathbb E_\tau D_{\rm KL}(q\|p_\tau)\le\mathbb E[D_\tau]\log|\mathcal V|+L\epsilon`,
        which is what Theorem 4.2 rests on; schedule rules and :math:`n`-gram languages).
    lang : Language
    L : int
    rule : StepRule
    model : None, float or object
        ``None`` the perfect model; a float ``eta``: :class:`MixtureModel`; or an object with
        ``conditional_marginals`` (e.g. :class:`mdm_exact.sampler.models.PerturbedModel`).
    method : {"auto", "exact", "mc"}
        ``auto``: exact when the enumeration fits (:attr:`ExactInstances.MAX_CELLS`), else Monte Carlo.
    p_err : float, optional
        For ``C.6`` / ``4.4``: the error probability of Lemma C.6 (default: ``1/2 - eps``,
        :func:`mdm_exact.theory.bounds.example_c7_p_err` with the measured or model ``epsilon_learning``).
    epsilon_learning : float, optional
        Monte Carlo only: Assumption 4.1's constant when the model cannot measure it at this
        ``L`` (exact checks always measure it, :attr:`ExactInstances.epsilon_learning`).
    num_samples, rng, alpha
        Monte Carlo: number of samples, seed, miscoverage of the interval.

    Returns
    -------
    dict
        A record as in :func:`run_checks` (``bound``, ``measured``, ``measured_ci``,
        ``slack``, ``ratio``, ``status``).
    """
    V = int(lang.vocab_size)
    exact_ok = (2**L) * (V**L) * L <= ExactInstances.MAX_CELLS
    if method not in ("auto", "exact", "mc"):
        raise ValueError(f"method: expected 'auto', 'exact' or 'mc', got {method!r}")
    use_exact = exact_ok if method == "auto" else method == "exact"
    if use_exact and not exact_ok:
        raise ValueError(f"exact check of V^L = {V}^{L} sequences with 2^L revealed sets is too large; use method='mc'")
    label = f"{getattr(lang, 'kind', 'language')} V={V}, L={L}, {rule.to_dict().get('rule')} N={rule.num_steps(L)}"
    n = _language_order(lang)
    l = getattr(lang, "interval_length", None)
    if name in ("B.8", "B.8-literal", "B.9", "B.9-literal", "4.2") and n is None:
        raise ValueError(f"{name} is a statement about n-gram languages; this language has no 'order'")
    if name in ("C.6", "4.4") and l is None:
        raise ValueError(f"{name} is a statement about the interval language of Example C.7 (needs 'interval_length')")
    if name == "4.2" or (not use_exact and name in ("C.6", "4.4")):
        mc_model = MixtureModel(lang, model) if isinstance(model, (int, float)) and model else model
        res = run_monte_carlo(lang, L, rule, num_samples, rng=rng, ci_alpha=alpha, instance_kl=(name == "4.2"), model=mc_model).to_dict()
        if epsilon_learning is not None:
            eps = B._real(epsilon_learning, "epsilon_learning", lo=0.0)
        elif mc_model is None:
            eps = 0.0
        elif isinstance(mc_model, MixtureModel):
            eps = -math.log1p(-mc_model.eta)  # an upper bound on its epsilon_learning
        elif hasattr(mc_model, "epsilon_learning"):
            try:
                eps = float(mc_model.epsilon_learning(L))
            except ValueError:
                raise ValueError(
                    f"cannot measure the model's epsilon_learning exhaustively at L = {L} (the exact engine is limited "
                    "to small L); pass epsilon_learning="
                ) from None
        else:
            raise ValueError("the model has no epsilon_learning(L) method; pass epsilon_learning=")
        if name == "4.2":
            if not isinstance(rule, ScheduleSteps):
                raise ValueError("4.2 (Monte Carlo) needs a schedule rule (positions pick steps i.i.d.) for the exact E[D_tau]")
            p, P = step_distribution_quantities(rule.p)
            ED = float(expected_dependencies(L, p, P, n)[0].sum())
            bound = B.lemma_b9_bound(ED, L, V, eps) / L
            lo, hi = res["instance_kl_per_token_ci"]
            return _record("4.2", f"{label}, model={_model_label(model) if not hasattr(model, 'conditional_marginals') else 'object'} (per token)",
                           bound, res["instance_kl_per_token"], ci=(lo, hi), detail={"expected_D_tau": ED, "epsilon_learning": eps})
        pe = B.example_c7_p_err(eps) if p_err is None else p_err
        N = rule.num_steps(L)
        lo, hi = res["ser_ci"]
        return _record(name, f"{label}, Monte Carlo, p_err={pe:.4g}", B.lemma_c6_ser_lower_bound(L, l, N, pe), res["ser"], direction="lower", ci=(lo, hi))
    spec = model if (model is None or isinstance(model, (int, float))) else None
    eng = ExactInstances(joint_from_language(lang, L), V, L, model=model if spec is None else (spec or None))
    steps, w = enumerate_instances(rule, L)
    lp = eng.log_p_tau(steps)
    logp = logsumexp(lp + np.log(w)[:, None], axis=0)
    eps = eng.epsilon_learning
    inst = f"{label}, exact, eps={eps:.3g}"
    if name == "B.2":
        return _record("B.2", inst, B.lemma_b2_bound(eng.kl_from(lp), w), eng.kl_from(logp)[0], count=len(w))
    if name == "B.3":
        return _worst("B.3", inst, [B.lemma_b3_identity(eng.step_kls(s)) for s in steps], eng.kl_from(lp), direction="equal")
    if name in ("B.8", "B.8-literal"):
        _, D = instance_dependencies(steps, n, reading="literal" if name.endswith("literal") else "corrected")
        return _worst(name, inst, [B.lemma_b8_bound(d, L, V, eps) for d in D.sum(axis=1)], eng.kl_from(lp))
    if name in ("B.9", "B.9-literal"):
        _, D = instance_dependencies(steps, n, reading="literal" if name.endswith("literal") else "corrected")
        return _record(name, inst, B.lemma_b9_bound(float(w @ D.sum(axis=1)), L, V, eps), eng.kl_from(logp)[0])
    if name == "C.2":
        if np.any([np.bincount(s).max() > 1 for s in steps]):
            raise ValueError("C.2 needs one position per step (rules random-order or left-to-right)")
        acc = 1.0 - eng.ser_from(lp)
        return _worst("C.2", inst, np.full(acc.size, B.lemma_c2_bound(L, eps)), acc, direction="lower")
    if name == "4.3":
        if not isinstance(rule, ScheduleSteps):
            raise ValueError("4.3 needs a schedule rule (positions pick steps i.i.d.)")
        return _record("4.3", inst, B.theorem_43_ser_bound(L, rule.p, eps), eng.ser_from(logp)[0])
    if name in ("C.6", "4.4"):
        pe = B.example_c7_p_err(eps) if p_err is None else p_err
        return _record(name, f"{inst}, p_err={pe:.4g}", B.lemma_c6_ser_lower_bound(L, l, rule.num_steps(L), pe), eng.ser_from(logp)[0], direction="lower")
    if name in ("Li-Cai", "Chen-Cong-Li"):
        if not isinstance(rule, FixedSizes) or model is not None:
            raise ValueError(f"{name} is checked for fixed-size random-order rules (FixedSizes) and the perfect model")
        ekl = float(w @ eng.kl_from(lp))
        if name == "Chen-Cong-Li":
            return _record(name, inst, B.chen_cong_li_identity(rule.sizes, information_curve_exact(lang, L)), ekl, direction="equal")
        full = 2**L - 1
        HX = eng.subset_entropy(full)
        mi = [eng.subset_entropy(1 << i) + eng.subset_entropy(full ^ (1 << i)) - HX for i in range(L)]
        return _record(name, inst, B.li_cai_bound(L, max(rule.sizes), np.maximum(mi, 0.0)), ekl)
    raise ValueError(f"check_instance: statement {name!r} is not supported; expected one of B.2, B.3, B.8, B.8-literal, B.9, "
                     "B.9-literal, C.2, 4.3, C.6, 4.4, 4.2, Li-Cai, Chen-Cong-Li (the others are statements about step "
                     "assignments only; see run_checks)")
