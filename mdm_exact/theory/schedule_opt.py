r"""The best content-blind fixed-size schedule: the baseline adaptive policies must beat.

Chen, Cong & Li (arXiv:2511.04647; identity re-derived here and verified numerically by the
tests, see FIELD.md): for the ideal factorised sampler that reveals, at step ``t``, a uniformly
random set of ``s_t`` still-masked positions (exact conditionals; cumulative sizes
``c_0 = 0 < c_1 < ... < c_N = L``),

.. math::

    \mathbb E_M\, D_{KL}(q \,\|\, p_M) = \sum_{t=1}^N \sum_{j=c_{t-1}+1}^{c_t} (Z_j - Z_{c_{t-1}+1}),
    \qquad Z_j = \mathbb E\, I(X_i ; X_S),

with ``S`` a uniform random subset of size ``j - 1`` and ``i`` uniform outside ``S``. This is
the Lemma B.2 right-hand side (``instance_kl_total`` of :func:`mdm_exact.sampler.exact.exact_metrics`
for a :class:`~mdm_exact.sampler.schedules.FixedSizes` rule). The cost is a sum over steps of a
function of ``(c_{t-1}, c_t)``, so a dynamic programme over cumulative sizes finds the sizes that
minimise it for a given number of steps (:func:`optimal_sizes`). Checks: one token per step gives
0; one step gives the total correlation ``TC(X) = sum_i H(X_i) - H(X)``.

``Z`` comes exactly from the joint law for small ``L`` (:func:`information_curve_exact`) or from
Monte Carlo with intervals at ``L = 512`` (:func:`information_curve_mc`): with ``x ~ q`` and a
uniform random order ``pi``, ``S = pi_{<j}``, the average over ``i`` outside ``S`` of
``log q(x_i | x_S) - log q(x_i)`` is unbiased for ``Z_j``. The same samples serve every ``j``,
so the KL of any schedule, a linear function ``w . Z``, gets its interval from the per-sample
values of ``w . Z``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import entr

from mdm_exact._validate import as_count, as_length
from mdm_exact.stats import mean_ci

__all__ = [
    "information_curve_exact",
    "information_curve_mc",
    "InformationCurve",
    "schedule_weights",
    "schedule_kl",
    "optimal_sizes",
    "brute_force_optimal_sizes",
    "best_schedule",
    "monotone_curve",
]


def _subset_entropies(lang, L):
    """``H(X_R)`` for every subset ``R`` (bit ``i`` = position ``i``), shape (2^L,), from the joint table."""
    from mdm_exact.sampler.exact import log_joint_table

    log_Q = log_joint_table(lang, L)  # (V+1,)*L
    V = log_Q.shape[0] - 1
    pat = np.zeros((V + 1,) * L, dtype=np.int64)
    for i in range(L):
        shape = [1] * L
        shape[i] = V + 1
        pat = pat + ((np.arange(V + 1) < V).astype(np.int64) << i).reshape(shape)
    return np.bincount(pat.ravel(), weights=entr(np.exp(log_Q)).ravel(), minlength=1 << L)  # (2^L,)


def information_curve_exact(lang, L) -> np.ndarray:
    r"""Exact :math:`Z_j = \mathbb E\, I(X_i; X_S)`, ``j = 1..L``, shape (L,) (``Z[0] = 0``).

    Average over all ``(S, i)`` with ``|S| = j - 1``, ``i`` not in ``S`` of
    ``H(X_i) + H(X_S) - H(X_{S+i})``; the subset entropies come from the joint table
    (``(V+1)^L`` states, see ``exact.MAX_STATES``).
    """
    L = as_length(L)
    H = _subset_entropies(lang, L)  # (2^L,)
    Z = np.zeros(L)
    cnt = np.zeros(L)
    Hi = H[1 << np.arange(L)]  # (L,)
    for S in range(1 << L):
        k = bin(S).count("1")
        if k == L:
            continue
        for i in range(L):
            if S >> i & 1:
                continue
            Z[k] += Hi[i] + H[S] - H[S | (1 << i)]
            cnt[k] += 1
    Z = Z / cnt
    Z[0] = 0.0  # I(X_i; X_empty) = 0 exactly (the formula leaves rounding)
    return Z


@dataclass(frozen=True)
class InformationCurve:
    """Monte Carlo estimate of ``Z`` (L,) with per-sample values ``samples`` (n, L) (unbiased
    for ``Z`` row by row), the interval ``lo``/``hi`` of each ``Z_j`` and the miscoverage."""

    Z: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    samples: np.ndarray
    ci_alpha: float

    def linear_ci(self, w):
        """Estimate and interval of ``w . Z`` from the per-sample values: ``(mean, lo, hi)``."""
        return mean_ci(self.samples @ np.asarray(w, dtype=np.float64), self.ci_alpha)


def information_curve_mc(lang, L, num_samples, *, rng=None, ci_alpha: float = 0.05, batch_size: int = 64) -> InformationCurve:
    r"""Monte Carlo :math:`Z_j`, ``j = 1..L``, with intervals (any language with ``conditional_marginals``).

    Per sample: ``x ~ q``, a uniform random order ``pi``; for every ``j`` one call of
    ``conditional_marginals`` with ``S = pi_{<j}`` revealed gives ``log q(x_i | x_S)`` at every
    ``i`` outside ``S``; their mean minus the mean of ``log q(x_i)`` is the sample's value for
    ``Z_j`` (unbiased). Cost: ``L`` conditional calls per sample.
    """
    L = as_length(L)
    n = as_count(num_samples, "num_samples", minimum=2)
    rng = np.random.default_rng(rng)
    out = np.empty((n, L))  # (n, L)
    for b0 in range(0, n, batch_size):
        m = min(batch_size, n - b0)
        x = lang.sample(m, L, rng=rng)  # (m, L)
        order = np.argsort(rng.random((m, L)), axis=1)  # (m, L) a uniform random order per row
        rank = np.argsort(order, axis=1)  # (m, L) rank of each position
        with np.errstate(divide="ignore"):
            c0 = lang.conditional_marginals(x, np.zeros((m, L), dtype=bool))  # (m, L, V)
            lq0 = np.log(np.take_along_axis(c0, x[..., None], axis=2)[..., 0])  # (m, L) log q(x_i)
            for j in range(1, L + 1):
                rev = rank < (j - 1)  # (m, L) S = the first j-1 positions of the order
                c = lang.conditional_marginals(x, rev)  # (m, L, V)
                lc = np.log(np.take_along_axis(c, x[..., None], axis=2)[..., 0])  # (m, L)
                outside = ~rev
                out[b0 : b0 + m, j - 1] = np.where(outside, lc - lq0, 0.0).sum(axis=1) / outside.sum(axis=1)
    if not np.all(np.isfinite(out)):
        raise RuntimeError("information_curve_mc: non-finite per-sample values (a sample outside supp q?)")
    Z = out.mean(axis=0)
    lo = np.empty(L)
    hi = np.empty(L)
    for j in range(L):
        _, lo[j], hi[j] = mean_ci(out[:, j], ci_alpha)
    return InformationCurve(Z=Z, lo=lo, hi=hi, samples=out, ci_alpha=ci_alpha)


def _cumulative(L, sizes):
    s = np.asarray(sizes, dtype=np.int64)
    if s.ndim != 1 or s.size < 1 or np.any(s < 0) or s.sum() != L:
        raise ValueError(f"sizes: expected non-negative integers summing to L = {L}, got {tuple(s.tolist())}")
    return np.concatenate([[0], np.cumsum(s)])


def schedule_weights(L, sizes) -> np.ndarray:
    """Weights ``w`` (L,) with ``E KL = w . Z`` for the fixed sizes ``sizes`` (Chen-Cong-Li)."""
    L = as_length(L)
    c = _cumulative(L, sizes)
    w = np.zeros(L)
    for a, b in zip(c[:-1], c[1:]):
        if b > a:
            w[a:b] += 1.0  # Z_j for j = a+1..b, index j-1
            w[a] -= b - a  # minus (b - a) Z_{a+1}
    return w


def schedule_kl(Z, sizes) -> float:
    r""":math:`\sum_t \sum_{j=c_{t-1}+1}^{c_t} (Z_j - Z_{c_{t-1}+1})` for ``Z`` (L,) and the sizes.

    The statement itself is :func:`mdm_exact.theory.bounds.chen_cong_li_identity` (one
    implementation); this checks that the sizes sum to ``L``.
    """
    from mdm_exact.theory.bounds import chen_cong_li_identity

    Z = np.asarray(Z, dtype=np.float64)
    _cumulative(Z.size, sizes)
    return float(chen_cong_li_identity(sizes, Z))


def optimal_sizes(Z, num_steps):
    """Sizes (each >= 1) over ``num_steps`` steps minimising :func:`schedule_kl`; ``(sizes, kl)``.

    Dynamic programme over cumulative sizes: ``f[t, b] = min_a f[t-1, a] + cost(a, b)`` with
    ``cost(a, b) = sum_{j=a+1}^{b} Z_j - (b - a) Z_{a+1}``; ``O(N L^2)``. Ties go to the
    smallest cumulative size ``a`` (``argmin``).
    """
    Z = np.asarray(Z, dtype=np.float64)
    L = Z.size
    N = as_count(num_steps, "num_steps")
    if N > L:
        raise ValueError(f"num_steps: at most L = {L} steps of at least one position, got {N}")
    P = np.concatenate([[0.0], np.cumsum(Z)])  # (L+1,) P[b] = Z_1 + ... + Z_b
    a = np.arange(L + 1)[:, None]
    b = np.arange(L + 1)[None, :]
    with np.errstate(invalid="ignore"):
        cost = np.where(b > a, P[b] - P[np.minimum(a, L)] - (b - a) * Z[np.minimum(a, L - 1)], np.inf)  # (L+1, L+1)
    f = np.full(L + 1, np.inf)
    f[0] = 0.0
    back = np.zeros((N, L + 1), dtype=np.int64)
    for t in range(N):
        tot = f[:, None] + cost  # (L+1, L+1) over (a, b)
        back[t] = np.argmin(tot, axis=0)
        f = tot[back[t], np.arange(L + 1)]
    cuts = [L]
    for t in range(N - 1, -1, -1):
        cuts.append(int(back[t, cuts[-1]]))
    cuts = cuts[::-1]
    sizes = tuple(int(v) for v in np.diff(cuts))
    return sizes, float(f[L])


def brute_force_optimal_sizes(Z, num_steps):
    """Minimum of :func:`schedule_kl` over every composition of ``L`` into ``num_steps`` parts >= 1 (tests)."""
    Z = np.asarray(Z, dtype=np.float64)
    L = Z.size
    best = (None, math.inf)
    for cuts in itertools.combinations(range(1, L), num_steps - 1):
        c = (0,) + cuts + (L,)
        sizes = tuple(int(b - a) for a, b in zip(c[:-1], c[1:]))
        v = schedule_kl(Z, sizes)
        if v < best[1]:
            best = (sizes, v)
    return best


def monotone_curve(Z) -> np.ndarray:
    """Least-squares projection of ``Z`` onto non-decreasing sequences (pool adjacent violators).

    The true curve is non-decreasing (conditioning on more positions never lowers the mutual
    information, and ``S`` grows with ``j``); projecting a Monte Carlo estimate keeps the DP
    from exploiting noise.
    """
    Z = np.asarray(Z, dtype=np.float64)
    vals, wts = [], []
    for z in Z:
        vals.append(float(z))
        wts.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w = wts[-2] + wts[-1]
            v = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / w
            vals[-2:] = [v]
            wts[-2:] = [w]
    return np.repeat(vals, wts)


def best_schedule(curve, num_steps, *, monotone: bool = True) -> dict:
    """The optimal sizes for ``num_steps`` steps next to balanced (uniform) sizes.

    ``curve``: an exact ``Z`` (L,) or an :class:`InformationCurve` (then every KL also gets an
    interval from the per-sample values, at the curve's miscoverage; the optimal sizes are the
    plug-in optimum of the estimated curve, so its KL interval is for those sizes, not for the
    unknown true optimum). Returns ``optimal_sizes``, ``optimal_kl``, ``uniform_sizes``,
    ``uniform_kl`` and, for a Monte Carlo curve, ``optimal_kl_ci`` and ``uniform_kl_ci``
    (``E KL(q || p)`` totals in nats over the ``L`` positions). With ``monotone`` the sizes
    are optimised on :func:`monotone_curve` of a Monte Carlo curve; the reported KLs are always
    the unbiased linear estimates on the raw curve.
    """
    from mdm_exact.sampler.schedules import balanced_sizes

    Z = curve.Z if isinstance(curve, InformationCurve) else np.asarray(curve, dtype=np.float64)
    L = Z.size
    sizes, _ = optimal_sizes(monotone_curve(Z) if (monotone and isinstance(curve, InformationCurve)) else Z, num_steps)
    kl = schedule_kl(Z, sizes)
    uni = balanced_sizes(L, num_steps)
    out = {"num_steps": int(num_steps), "L": int(L), "optimal_sizes": list(sizes), "optimal_kl": kl,
           "uniform_sizes": list(uni), "uniform_kl": schedule_kl(Z, uni)}
    if isinstance(curve, InformationCurve):
        for key, s in (("optimal", sizes), ("uniform", uni)):
            _, lo, hi = curve.linear_ci(schedule_weights(L, s))
            out[key + "_kl_ci"] = [lo, hi]
    return out
