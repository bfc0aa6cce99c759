r"""Appendix A checks: Lemma A.1 (KL of a joint law to a product law), STATEMENTS.md §4.B."""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr

from mdm_exact.theory import bounds as B
from mdm_exact.theory.checks.records import _record, _worst

__all__ = ["check_a1"]


def check_a1(quick=False):
    """Lemma A.1 on random joint laws with random product laws, and its tight case."""
    rng = np.random.default_rng(101)
    recs = []
    for k, V in [(2, 2), (2, 4), (3, 2), (3, 3), (4, 2)] if not quick else [(2, 3), (3, 2)]:
        reps = 60 if not quick else 20
        bnd, meas, bd = [], [], []
        for r in range(reps):
            conc = [0.05, 0.3, 1.0, 5.0][r % 4]
            q = rng.dirichlet(np.full(V**k, conc)).reshape((V,) * k)
            marg = [q.sum(axis=tuple(a for a in range(k) if a != i)) for i in range(k)]
            ps = [m if r % 3 == 0 else rng.dirichlet(np.full(V, 2.0)) * 0.3 + 0.7 * m for m in marg]
            prod = ps[0]
            for pi in ps[1:]:
                prod = np.multiply.outer(prod, pi)
            kl = float(rel_entr(q, prod).sum())
            kli = [float(rel_entr(m, pi).sum()) for m, pi in zip(marg, ps)]
            bnd.append(B.lemma_a1_bound(k, V, kli))
            meas.append(kl)
            bd.append(B.lemma_a1_bound(k, V, delta=max(kli)))
        recs.append(_worst("A.1", f"random joint laws k={k} V={V} ({reps} laws)", bnd, meas))
        recs.append(_worst("A.1", f"random joint laws k={k} V={V}, delta form", bd, meas))
    # tight case: k copies of a uniform symbol
    for k, V in [(2, 2), (3, 4)]:
        q = np.zeros((V,) * k)
        for v in range(V):
            q[(v,) * k] = 1.0 / V
        prod = np.full((V,) * k, float(V) ** -k)
        recs.append(_record("A.1", f"tight case: {k} copies of a uniform symbol, V={V}", B.lemma_a1_bound(k, V), rel_entr(q, prod).sum()))
    return recs
