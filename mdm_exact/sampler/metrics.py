"""Metrics of the paper on explicit laws over ``V^L`` (float64 nats, exact ``-inf``/``inf``).

Every function takes laws as arrays of **log** probabilities over the same enumeration of
sequences (e.g. :func:`mdm_exact.languages.all_sequences` order); ``-inf`` marks an
impossible sequence. Definitions as reconstructed in STATEMENTS.md §2 (Feng et al. 2025,
arXiv:2502.09622v1):

* SER (§2.2, eq. 5): ``p(outside supp q)``;
* ``log TER(p) - log TER(q) = KL(q || p) / L`` (§2.1, eq. 4, natural logs);
* generative perplexity (§2.3), token-weighted and per-sequence mean, over the samples of
  ``p`` that lie in ``supp q``;
* entropies and the total correlation ``TC(q) = sum_i H(X_i) - H(X)``.

KL terms are pointwise ``p(x) (log p(x) - log q(x))`` (``scipy.special.rel_entr`` on
probabilities, evaluated from the logs so that tiny probabilities do not underflow), with
``inf`` as soon as ``p(x) > 0 = q(x)``; never a difference of two aggregate cross-entropies.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import entr, logsumexp

from mdm_exact.stats import clip_nonnegative

__all__ = [
    "as_log_law",
    "kl_divergence",
    "entropy",
    "sequence_error_rate",
    "generative_perplexity",
    "generative_perplexity_seq_mean",
    "log_ter_gap",
    "marginal_entropies",
    "total_correlation",
]

#: Tolerance on the total mass of a law passed to these functions.
MASS_ATOL = 1e-9


def as_log_law(log_p, name: str = "log_p") -> np.ndarray:
    """Return ``log_p`` as a 1-d float64 array, checking it is a normalised log law.

    Raises
    ------
    ValueError
        On NaN or ``+inf`` entries, or when ``exp(log_p)`` does not sum to 1 within
        ``MASS_ATOL``.
    """
    a = np.asarray(log_p, dtype=np.float64).ravel()  # (n,)
    if a.size == 0:
        raise ValueError(f"{name}: expected a non-empty array of log probabilities")
    if np.any(np.isnan(a)) or np.any(a == np.inf):
        raise ValueError(f"{name}: expected log probabilities (finite or -inf), found NaN or +inf")
    with np.errstate(divide="ignore"):
        total = float(np.exp(logsumexp(a))) if np.any(a > -np.inf) else 0.0
    if abs(total - 1.0) > MASS_ATOL:
        raise ValueError(f"{name}: the law sums to {total:.12g}; expected 1 (tolerance {MASS_ATOL})")
    return a


def _pair(log_p, log_q):
    a = as_log_law(log_p, "log_p")
    b = as_log_law(log_q, "log_q")
    if a.shape != b.shape:
        raise ValueError(f"log_p and log_q: expected the same number of sequences, got {a.size} and {b.size}")
    return a, b


def kl_divergence(log_p, log_q) -> float:
    r"""``KL(p || q) = sum_x p(x) log(p(x) / q(x))`` in nats; ``inf`` if ``p`` charges a ``q``-null set.

    Notes
    -----
    .. math:: D_{KL}(p\|q) = \sum_{x: p(x) > 0} p(x)\,(\log p(x) - \log q(x))

    Terms with ``p(x) = 0`` are 0 (``rel_entr`` convention).
    """
    a, b = _pair(log_p, log_q)
    pos = a > -np.inf  # (n,) supp p
    if np.any(b[pos] == -np.inf):
        return math.inf
    terms = np.exp(a[pos]) * (a[pos] - b[pos])  # (|supp p|,) rel_entr(p, q) pointwise
    return clip_nonnegative(terms.sum())  # KL >= 0: rounding never shows as -5e-16


def entropy(log_p) -> float:
    """Shannon entropy ``H(p)`` in nats (``scipy.special.entr``)."""
    a = as_log_law(log_p)
    return clip_nonnegative(entr(np.exp(a)).sum())


def sequence_error_rate(log_p, log_q) -> float:
    """SER (STATEMENTS.md §2.2, eq. 5): ``1 - p(supp q)``, summed over ``x`` with ``q(x) = 0``.

    Summing the outside mass (not ``1 - inside``) keeps small SERs accurate.
    """
    a, b = _pair(log_p, log_q)
    return float(np.exp(a[b == -np.inf]).sum())


def _inside(log_p, log_q):
    a, b = _pair(log_p, log_q)
    inside = (b > -np.inf) & (a > -np.inf)  # (n,) in supp q, charged by p
    w = np.exp(a[inside])
    mass = w.sum()
    if not mass > 0:
        raise ValueError("generative perplexity is undefined: p puts no mass on supp q (SER = 1)")
    return w / mass, b[inside]


def generative_perplexity(log_p, log_q, L: int) -> float:
    r"""Token-weighted generative perplexity over the samples of ``p`` inside ``supp q``.

    STATEMENTS.md §2.3 (as reconstructed):
    :math:`\exp(-\mathbb E_{x\sim p}[\log q(x) \mid x\in\mathrm{supp}\,q] / L)`.
    Samples outside ``supp q`` (infinite perplexity) are excluded, as the SER counts them.

    Raises
    ------
    ValueError
        When ``p(supp q) = 0``.
    """
    w, lq = _inside(log_p, log_q)
    return float(np.exp(-(w * lq).sum() / L))


def generative_perplexity_seq_mean(log_p, log_q, L: int) -> float:
    r"""Per-sequence mean :math:`\mathbb E_{x\sim p}[\exp(-\log q(x)/L) \mid x\in\mathrm{supp}\,q]` (§2.3)."""
    w, lq = _inside(log_p, log_q)
    return float((w * np.exp(-lq / L)).sum())


def log_ter_gap(log_p, log_q, L: int) -> float:
    """``log TER(p) - log TER(q) = KL(q || p) / L`` (STATEMENTS.md §2.1, natural logs)."""
    return kl_divergence(log_q, log_p) / L


def marginal_entropies(log_p, V: int, L: int) -> np.ndarray:
    """Entropies ``H(X_i)`` of the single-position marginals, shape (L,); sequences in
    ``all_sequences(V, L)`` order."""
    a = as_log_law(log_p)
    if a.size != V**L:
        raise ValueError(f"log_p: expected V^L = {V}^{L} = {V**L} entries, got {a.size}")
    p = np.exp(a).reshape((V,) * L)  # (V,)*L
    out = np.empty(L)  # (L,)
    for i in range(L):
        axes = tuple(k for k in range(L) if k != i)
        out[i] = entr(p.sum(axis=axes)).sum()
    return out


def total_correlation(log_p, V: int, L: int) -> float:
    """``TC(p) = sum_i H(X_i) - H(X)`` (STATEMENTS.md §4.B, Lemma A.1 identity) in nats.

    With one sampling step the idealised sampler draws every position from its marginal, so
    ``KL(q || p) = TC(q)`` exactly.
    """
    return clip_nonnegative(marginal_entropies(log_p, V, L).sum() - entropy(log_p))  # TC >= 0


def law_metrics(log_p, log_q, V: int, L: int) -> dict:
    r"""The exact metrics of a model law ``log_p`` against the data law ``log_q`` (both (V^L,)).

    The keys the exact engines share (:func:`mdm_exact.sampler.exact.exact_metrics`,
    :func:`mdm_exact.sampler.adaptive_exact.policy_exact_metrics`): ``ser``, ``gen_ppl`` and
    ``gen_ppl_seq_mean`` (``None`` at SER 1), ``mean_log_prob_per_token``
    (:math:`E_p[\log q(x) \mid x \in \mathrm{supp}\,q] / L`, ``None`` at SER 1),
    ``kl_data_model`` = KL(q||p), ``kl_model_data`` = KL(p||q), ``log_ter_gap`` = KL(q||p)/L
    (each ``None`` when infinite), ``entropy_model``, ``entropy_data``, ``total_correlation_data``.
    """
    kl_qp = kl_divergence(log_q, log_p)
    kl_pq = kl_divergence(log_p, log_q)
    try:
        gppl = generative_perplexity(log_p, log_q, L)
        gppl_seq = generative_perplexity_seq_mean(log_p, log_q, L)
        inside = (log_q > -np.inf) & (log_p > -np.inf)
        w = np.exp(log_p[inside])
        mlpt = float((w * log_q[inside]).sum() / w.sum() / L)
    except ValueError:  # no model mass inside supp q (SER = 1)
        gppl = gppl_seq = mlpt = None

    def finite(v):
        return float(v) if math.isfinite(v) else None

    return {
        "ser": sequence_error_rate(log_p, log_q),
        "gen_ppl": gppl,
        "gen_ppl_seq_mean": gppl_seq,
        "mean_log_prob_per_token": mlpt,
        "kl_data_model": finite(kl_qp),
        "kl_model_data": finite(kl_pq),
        "log_ter_gap": finite(kl_qp / L),
        "entropy_model": entropy(log_p),
        "entropy_data": entropy(log_q),
        "total_correlation_data": total_correlation(log_q, V, L),
    }
