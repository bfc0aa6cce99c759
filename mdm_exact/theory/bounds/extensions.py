r"""Later results on the same sampler (``shared/notes/FIELD.md``): Li & Cai (arXiv:2505.21400), Chen, Cong & Li (arXiv:2511.04647)."""

from __future__ import annotations

import math

import numpy as np

from mdm_exact.theory.bounds._validate import _kl_values, _pos_int, _real

__all__ = ["li_cai_bound", "chen_cong_li_identity"]


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
