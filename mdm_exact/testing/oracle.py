r"""THE brute-force oracle: the sampler's output law and per-instance quantities from the joint table.

Everything is computed from the explicit table :math:`\log q(x)` over all :math:`V^L`
sequences (``lang.log_prob(all_sequences(V, L))``): every conditional
:math:`q(x_i\mid x_R)` is summed out of it for each of the :math:`2^L` revealed sets ``R``,
independently of the languages' own inference (forward-backward, n-gram recursions) and of
the exact engine's DP (:mod:`mdm_exact.sampler.exact`). The output law is then the sum over
all instances :math:`\tau` (:func:`mdm_exact.testing.instances.enumerate_instances`) of
:math:`\Pr(\tau)\,p_\tau(x)`, with :math:`p_\tau(x)=\prod_k\prod_{j\in M_k} m_j(x_j\mid
x_{M_{<k}})` (STATEMENTS.md §1.7, as reconstructed; Feng et al. 2025, arXiv:2502.09622v1,
Definition B.1). Impossible contexts (:math:`q(x_R)=0`) get the uniform law, the convention of
:mod:`mdm_exact.languages.base` and of the exact engine.

Used by the lemma checks (:mod:`mdm_exact.theory.checks`) and by every test that needs a
brute-force law. Cost :math:`2^L V^L L` floats: tiny cases only (:attr:`ExactInstances.MAX_CELLS`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, rel_entr

from mdm_exact.languages.base import all_sequences
from mdm_exact.testing.instances import enumerate_instances

__all__ = [
    "ExactInstances",
    "joint_from_language",
    "reference_output_law",
    "reference_instance_kl",
]


class ExactInstances:
    r"""Exact per-instance quantities by brute force over all :math:`V^L` sequences and :math:`2^L` revealed sets.

    Independent of the language's own inference: every conditional
    :math:`q(x_i\mid x_R)` is summed out of the explicit joint table (STATEMENTS.md §1.3;
    impossible contexts get the uniform law, as in :mod:`mdm_exact.languages.base`).

    Parameters
    ----------
    log_q : array_like, shape (V**L,)
        :math:`\log q(x)` in :func:`~mdm_exact.languages.base.all_sequences` order.
    V, L : int
    model : None, float or object
        ``None``: the perfect model :math:`q_{0|t}`; a float ``eta``: the mixture
        :math:`(1-\eta)q_{0|t}+\eta/V` applied to the table; otherwise an object with
        ``conditional_marginals(x, revealed)``.

    Attributes
    ----------
    epsilon_learning : float
        :math:`\max` over contexts with :math:`q(x_R)>0` and masked positions of
        :math:`D_{\rm KL}(q_{0|t}\|p_\theta)` (Assumption 4.1, STATEMENTS.md §3; the proofs of
        B.8 and C.2 use it only on such contexts, §7.9, so this is the demanding choice and
        agrees with :meth:`mdm_exact.sampler.models.PerturbedModel.epsilon_learning`).
    """

    MAX_CELLS = 6_000_000

    def __init__(self, log_q, V, L, *, model=None):
        self.V, self.L = int(V), int(L)
        lq = np.asarray(log_q, dtype=np.float64)
        if lq.shape != (self.V**self.L,):
            raise ValueError(f"log_q: expected shape ({self.V**self.L},), got {lq.shape}")
        if (2**self.L) * lq.size * self.L > self.MAX_CELLS:
            raise ValueError(f"V^L 2^L L = {(2**self.L) * lq.size * self.L} cells exceed {self.MAX_CELLS}")
        q = np.exp(lq)
        if abs(q.sum() - 1.0) > 1e-9:
            raise ValueError(f"log_q: the law sums to {q.sum():.12g}, expected 1")
        self.log_q, self.q = lq, q
        self.X = all_sequences(self.V, self.L)  # (V^L, L)
        self.support = q > 0
        V, L = self.V, self.L
        shape = (V,) * L
        Qt = q.reshape(shape)
        nmask = 2**L
        self.log_qR = np.empty((nmask, V**L))  # (2^L, V^L) log q(x_R)
        self.G = np.zeros((nmask, V**L, L))  # (2^L, V^L, L) log model prob of x_j given x_R
        eps = 0.0
        full = list(range(L))
        for m in range(nmask):
            R = [i for i in full if m >> i & 1]
            qR = np.broadcast_to(Qt.sum(axis=tuple(i for i in full if i not in R), keepdims=True), shape).reshape(-1)  # (V^L,)
            with np.errstate(divide="ignore"):
                self.log_qR[m] = np.log(qR)
            hidden = [i for i in full if i not in R]
            if not hidden:
                continue
            cond = np.empty((V**L, len(hidden), V))  # (V^L, |hidden|, V)
            for h, i in enumerate(hidden):
                qRi = Qt.sum(axis=tuple(a for a in full if a not in R and a != i), keepdims=True)
                arr = np.moveaxis(qRi, i, -1)  # others..., V
                arr = np.broadcast_to(arr, (V,) * (L - 1) + (V,))
                arr = np.broadcast_to(np.expand_dims(arr, i), (V,) * L + (V,)).reshape(V**L, V)  # (V^L, V)
                with np.errstate(invalid="ignore", divide="ignore"):
                    c = np.where(qR[:, None] > 0, arr / np.where(qR > 0, qR, 1.0)[:, None], 1.0 / V)  # (V^L, V)
                cond[:, h, :] = c
            if model is None:
                mc = cond
            elif isinstance(model, (int, float)):
                mc = (1.0 - float(model)) * cond + float(model) / V
            else:
                rev = np.zeros((V**L, L), dtype=bool)  # (V^L, L)
                rev[:, R] = True
                mc = np.asarray(model.conditional_marginals(self.X, rev), dtype=np.float64)[:, hidden, :]  # (V^L, |hidden|, V)
            live = qR > 0  # Assumption 4.1 is only used on contexts that occur (STATEMENTS.md §7.9)
            if live.any():
                eps = max(eps, float(rel_entr(cond[live], mc[live]).sum(axis=-1).max()))
            with np.errstate(divide="ignore"):
                lmc = np.log(mc)  # (V^L, |hidden|, V)
            for h, i in enumerate(hidden):
                self.G[m, :, i] = np.take_along_axis(lmc[:, h, :], self.X[:, i : i + 1], axis=1)[:, 0]
        self.epsilon_learning = eps

    # -- per-instance laws
    def _before_masks(self, steps):
        steps = np.atleast_2d(steps)  # (T, L)
        bits = (1 << np.arange(self.L)).astype(np.int64)  # (L,)
        before = steps[:, None, :] < steps[:, :, None]  # (T, L_j, L_i): i revealed before j
        return (before * bits).sum(axis=2)  # (T, L)

    def log_p_tau(self, steps):
        """:math:`\\log p_\\tau(x)` for instances ``steps`` (T, L); returns (T, V^L)."""
        masks = self._before_masks(steps)  # (T, L)
        out = np.zeros((masks.shape[0], self.V**self.L))  # (T, V^L)
        for j in range(self.L):
            out += self.G[masks[:, j], :, j]
        return out

    def log_output_law(self, steps, probs):
        r""":math:`\log p(x)=\log\sum_\tau\Pr(\tau)\,p_\tau(x)` for instances ``steps`` (T, L) with probabilities ``probs`` (T,); returns (V^L,)."""
        return logsumexp(self.log_p_tau(steps) + np.log(probs)[:, None], axis=0)

    def kl_from(self, log_p):
        """:math:`D_{\\rm KL}(q\\|p)` for rows of ``log_p`` (T, V^L); ``inf`` when ``p = 0`` on ``supp q``."""
        lp = np.atleast_2d(log_p)[:, self.support]
        q = self.q[self.support]
        lq = self.log_q[self.support]
        with np.errstate(invalid="ignore"):
            terms = q * (lq - lp)
        out = terms.sum(axis=1)
        out[np.any(np.isneginf(lp), axis=1)] = np.inf
        return out

    def step_kls(self, steps_row, num_steps=None):
        """Lemma B.3 right-hand side per step for one instance, shape (N,).

        ``N`` is ``num_steps`` (default: the instance's last step + 1); steps that reveal
        nothing contribute 0.
        """
        s = np.asarray(steps_row)
        N = int(s.max()) + 1 if num_steps is None else int(num_steps)
        bits = 1 << np.arange(self.L)
        masks = self._before_masks(s)[0]  # (L,)
        out = np.zeros(N)
        lq = self.q[self.support]
        for k in range(N):
            new = s == k
            if not new.any():
                continue
            m_before = int(bits[s < k].sum())
            m_upto = int(bits[s <= k].sum())
            sup = self.support
            log_cond_q = self.log_qR[m_upto][sup] - self.log_qR[m_before][sup]  # (|supp q|,)
            log_cond_p = sum(self.G[masks[j], :, j][sup] for j in np.flatnonzero(new))
            d = log_cond_q - log_cond_p
            out[k] = np.inf if np.any(np.isinf(d)) else float(np.sum(lq * d))
        return out

    def subset_entropy(self, m):
        """:math:`H(X_A)` for the subset with bitmask ``m``."""
        lq = self.log_qR[m][self.support]
        return float(-np.sum(self.q[self.support] * lq))

    def ser_from(self, log_p):
        """Sequence error rate :math:`1-\\sum_{x\\in{\\rm supp}\\,q}p(x)` for rows of ``log_p`` (T, V^L)."""
        p = np.exp(np.atleast_2d(log_p))
        return 1.0 - p[:, self.support].sum(axis=1)


def joint_from_language(lang, L):
    """``log q(x)`` over all ``V^L`` sequences from ``lang.log_prob``, :func:`all_sequences` order."""
    return lang.log_prob(all_sequences(lang.vocab_size, L))


def _oracle(lang, L, model):
    L = int(L)
    return ExactInstances(joint_from_language(lang, L), int(lang.vocab_size), L, model=model)


def reference_output_law(lang, L, rule, *, model=None) -> np.ndarray:
    r"""Brute-force :math:`\log p(x)` by summing :math:`\Pr(\tau)\,p_\tau(x)` over every instance.

    Parameters
    ----------
    lang : Language
        Only ``lang.log_prob`` and ``lang.vocab_size`` are used (the joint table).
    L : int
    rule : StepRule
    model : None, float or object
        As in :class:`ExactInstances` (``None``: the perfect model from the table).

    Returns
    -------
    ndarray, shape (V**L,)
        ``log p`` in :func:`all_sequences` order, exact ``-inf`` where ``p = 0``.
    """
    steps, w = enumerate_instances(rule, int(L))
    return _oracle(lang, L, model).log_output_law(steps, w)


def reference_instance_kl(lang, L, rule, *, model=None):
    r"""Brute-force :math:`\mathbb E_\tau D_{\rm KL}(q\|p_\tau)` and its Lemma B.3 per-step split.

    Returns ``(expected_kl, per_step)`` with ``per_step`` of shape ``(rule.num_steps(L),)``:
    per step ``k`` the term :math:`\mathbb E_\tau\mathbb E_q D_{\rm KL}(q(x_{M_k}\mid
    x_{M_{<k}})\,\|\,\prod_{j\in M_k}m_j)` (STATEMENTS.md §4.C, Lemmas B.2-B.3 as reconstructed).
    """
    L = int(L)
    steps, w = enumerate_instances(rule, L)
    eng = _oracle(lang, L, model)
    kl = eng.kl_from(eng.log_p_tau(steps))  # (T,)
    total = float(w @ kl)
    N = rule.num_steps(L)
    per_step = np.zeros(N)
    for s, pr in zip(steps, w):
        per_step += pr * eng.step_kls(s, N)
    return total, per_step
