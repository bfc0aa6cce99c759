r"""Checks of results from later work: Li & Cai (arXiv:2505.21400) and Chen, Cong & Li (arXiv:2511.04647).

Both on fixed-size random-order rules with the perfect model, measured exactly with the
brute-force oracle (FIELD.md; the Li & Cai constants come from secondary summaries).
"""

from __future__ import annotations

import numpy as np

from mdm_exact.sampler.schedules import FixedSizes, balanced_sizes
from mdm_exact.testing.instances import enumerate_instances
from mdm_exact.theory import bounds as B
from mdm_exact.theory.checks.records import _record
from mdm_exact.theory.checks.zoo import _engine, exact_languages

__all__ = ["check_li_cai", "check_chen_cong_li", "check_eb_sampler"]


def _fixed_cases(quick):
    for label, lang, n, L in exact_languages(quick):
        eng = _engine(label, lang, L, 0.0)
        for sizes in ((L,), balanced_sizes(L, 2), balanced_sizes(L, 3), (1,) * L):
            if len(sizes) > L:
                continue
            rule = FixedSizes(tuple(sizes))
            steps, w = enumerate_instances(rule, L)
            yield f"{label}, L={L}, fixed sizes {list(sizes)}", lang, eng, L, sizes, float(w @ eng.kl_from(eng.log_p_tau(steps)))


def check_li_cai(quick=False):
    recs = []
    for inst, _lang, eng, L, sizes, ekl in _fixed_cases(quick):
        full = 2**L - 1
        HX = eng.subset_entropy(full)
        mi = [eng.subset_entropy(1 << i) + eng.subset_entropy(full ^ (1 << i)) - HX for i in range(L)]
        b = B.li_cai_bound(L, max(sizes), np.maximum(mi, 0.0))
        recs.append(_record("Li-Cai", inst, b, ekl))
    return recs


def check_chen_cong_li(quick=False):
    r"""Chen-Cong-Li identity: ``E KL`` of fixed sizes against the information curve
    :math:`Z_j = \mathbb E\, I(X_i; X_S)` (:func:`mdm_exact.theory.schedule_opt.information_curve_exact`)."""
    from mdm_exact.theory.schedule_opt import information_curve_exact

    recs = []
    for inst, lang, eng, L, sizes, ekl in _fixed_cases(quick):
        Z = information_curve_exact(lang, L)
        recs.append(_record("Chen-Cong-Li", inst, B.chen_cong_li_identity(sizes, Z), ekl, direction="equal"))
    return recs


def check_eb_sampler(quick=False):
    r"""EB-sampler per-step guarantee with exact conditionals (Ben-Hamu et al., arXiv:2505.24857).

    On every reachable state of ``eb:g`` (exact DP, :func:`mdm_exact.sampler.adaptive_exact.step_total_correlation`):
    the conditional total correlation of the revealed set is at most ``sum H - max H``, which the
    policy keeps at most ``g``; and, since the sets are a function of the revealed tokens,
    ``KL(q || p) = sum_k E_q TC_k`` (chain rule, an identity).
    """
    from mdm_exact.sampler.adaptive_exact import policy_exact_metrics, step_total_correlation
    from mdm_exact.sampler.policies import make_policy

    recs = []
    for label, lang, n, L in exact_languages(quick):
        for g in ((0.3,) if quick else (0.1, 0.5, 1.5)):
            pol = make_policy(f"eb:{g}", L=L)
            r = step_total_correlation(lang, L, pol)
            inst = f"{label}, L={L}, eb:{g}"
            recs.append(_record("EB", inst + ": max_state TC - (sum H - max H)", 0.0, r["max_excess"]))
            recs.append(_record("EB", inst + ": max_state (sum H - max H) <= g", g + 1e-9, r["max_bound"]))
            kl = policy_exact_metrics(lang, L, pol)["kl_data_model"]
            if kl is not None:
                recs.append(_record("EB", inst + ": KL(q||p) = sum_k E_q TC_k", sum(r["data_tc_per_step"]), kl, direction="equal"))
    return recs
