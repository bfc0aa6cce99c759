r"""Checks of results from later work: Li & Cai (arXiv:2505.21400) and Chen, Cong & Li (arXiv:2511.04647).

Both on fixed-size random-order rules with the perfect model, measured exactly with the
brute-force oracle (FIELD.md; the Li & Cai constants come from secondary summaries).
"""

from __future__ import annotations

import itertools

import numpy as np

from mdm_exact.sampler.schedules import FixedSizes, balanced_sizes
from mdm_exact.testing.instances import enumerate_instances
from mdm_exact.theory import bounds as B
from mdm_exact.theory.checks.records import _record
from mdm_exact.theory.checks.zoo import _engine, exact_languages

__all__ = ["check_li_cai", "check_chen_cong_li"]


def _fixed_cases(quick):
    for label, lang, n, L in exact_languages(quick):
        eng = _engine(label, lang, L, 0.0)
        for sizes in ((L,), balanced_sizes(L, 2), balanced_sizes(L, 3), (1,) * L):
            if len(sizes) > L:
                continue
            rule = FixedSizes(tuple(sizes))
            steps, w = enumerate_instances(rule, L)
            yield f"{label}, L={L}, fixed sizes {list(sizes)}", eng, L, sizes, float(w @ eng.kl_from(eng.log_p_tau(steps)))


def check_li_cai(quick=False):
    recs = []
    for inst, eng, L, sizes, ekl in _fixed_cases(quick):
        full = 2**L - 1
        HX = eng.subset_entropy(full)
        mi = [eng.subset_entropy(1 << i) + eng.subset_entropy(full ^ (1 << i)) - HX for i in range(L)]
        b = B.li_cai_bound(L, max(sizes), np.maximum(mi, 0.0))
        recs.append(_record("Li-Cai", inst, b, ekl))
    return recs


def _Z(eng, L):
    """:math:`Z_j=\\mathbb E[I(X_i;X_S)]`, :math:`|S|=j-1`, :math:`i\\notin S` uniform, j = 1..L."""
    Z = np.zeros(L)
    for j in range(1, L + 1):
        vals = []
        for S in itertools.combinations(range(L), j - 1):
            mS = sum(1 << s for s in S)
            for i in range(L):
                if i in S:
                    continue
                vals.append(eng.subset_entropy(1 << i) + eng.subset_entropy(mS) - eng.subset_entropy(mS | (1 << i)))
        Z[j - 1] = np.mean(vals)
    return Z


def check_chen_cong_li(quick=False):
    recs = []
    for inst, eng, L, sizes, ekl in _fixed_cases(quick):
        recs.append(_record("Chen-Cong-Li", inst, B.chen_cong_li_identity(sizes, _Z(eng, L)), ekl, direction="equal"))
    return recs
