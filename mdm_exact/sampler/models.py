r"""Imperfect denoising models with controlled error, for checking bounds with ``epsilon_learning``.

A *model* is any object with ``vocab_size`` and ``conditional_marginals(x, revealed)`` of the
same shape and conventions as :meth:`mdm_exact.languages.base.Language.conditional_marginals`
(the language itself is the perfect model, the ELBO optimum of STATEMENTS.md §1.3).

:class:`PerturbedModel` perturbs the data conditionals in log space,

.. math:: p_\theta(x_j = v \mid x_R) \propto q(x_j = v \mid x_R)\, \exp(\eta\, \xi(j, y, v)),

where ``y`` is the partially masked sequence (revealed pattern and tokens) and ``xi`` is a
standard normal value that is a *deterministic* function of ``(seed, L, y, j, v)`` (``seed``
from the ``rng`` argument) (a
SplitMix64 hash chain, then the inverse normal CDF). The exact engine
(:mod:`mdm_exact.sampler.exact`) and any Monte Carlo engine calling ``conditional_marginals``
therefore see exactly the same model. Zeros of ``q`` stay zeros (supports are preserved, so
``KL(q || p)`` stays finite); in contexts with ``q(x_R) = 0`` the language's uniform
conditionals are perturbed the same way.

:meth:`PerturbedModel.epsilon_learning` measures Assumption 4.1 (STATEMENTS.md §3, as
reconstructed): the maximum over contexts with ``q(x_R) > 0`` and masked ``j`` of the
per-token ``KL(q(x_j | x_R) || p_theta(x_j | x_R))``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri, rel_entr

from mdm_exact._validate import as_length

__all__ = ["PerturbedModel", "hash_normals"]

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64) + _GOLD
    z = (z ^ (z >> np.uint64(30))) * _C1
    z = (z ^ (z >> np.uint64(27))) * _C2
    return z ^ (z >> np.uint64(31))


def _seed_hash(seed: int, L: int) -> np.ndarray:
    return _mix(_mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)) ^ np.uint64(L))


def _state_hash(seed: int, digits: np.ndarray, V: int) -> np.ndarray:
    """Hash of partial sequences given as digits (batch, L) in ``0..V`` (``V`` = masked)."""
    L = digits.shape[1]
    h = np.broadcast_to(_seed_hash(seed, L), (digits.shape[0],)).copy()  # (batch,)
    for i in range(L):
        h = _mix(h ^ (digits[:, i].astype(np.uint64) + np.uint64(1)))
    return h


def _normals(h_state: np.ndarray, j: int, V: int) -> np.ndarray:
    """``xi(j, y, v)`` for every state hash and token, shape (batch, V)."""
    hj = _mix(h_state ^ (np.uint64(j + 1) << np.uint64(32)))  # (batch,)
    hv = _mix(hj[:, None] ^ (np.arange(1, V + 1, dtype=np.uint64)[None, :]))  # (batch, V)
    u = ((hv >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53  # (batch, V) in (0, 1)
    return ndtri(u)


def hash_normals(seed: int, x, revealed, j: int, V: int) -> np.ndarray:
    """The standard normal perturbations ``xi(j, y, .)`` of :class:`PerturbedModel`, (batch, V)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.int64))
    revealed = np.broadcast_to(np.atleast_2d(np.asarray(revealed, dtype=bool)), x.shape)
    digits = np.where(revealed, x, V)  # (batch, L)
    return _normals(_state_hash(seed, digits, V), j, V)


def _tilt(q: np.ndarray, xi: np.ndarray, eta: float) -> np.ndarray:
    """``q exp(eta xi)`` renormalised over the last axis; zeros of ``q`` stay zero."""
    a = eta * xi
    a = a - np.max(np.where(q > 0, a, -np.inf), axis=-1, keepdims=True)
    w = np.where(q > 0, q * np.exp(np.where(q > 0, a, 0.0)), 0.0)
    return w / w.sum(axis=-1, keepdims=True)


class PerturbedModel:
    """Data conditionals tilted by deterministic Gaussian noise of scale ``eta`` (see module doc).

    Parameters
    ----------
    language : Language
        The data law ``q``.
    eta : float
        Noise scale, ``>= 0``; ``eta = 0`` is the perfect model.
    rng : int, numpy.random.Generator or None
        Randomness of the hash defining ``xi`` (keyword-only, default 0). A non-negative int is
        the hash seed itself (``self.seed``); a ``Generator`` (or ``None``: fresh OS entropy)
        draws the seed, ``rng.integers(2**63)``. Once built, the model is deterministic.
    """

    kind = "perturbed"

    def __init__(self, language, eta, *, rng=0):
        eta = float(eta)
        if not np.isfinite(eta) or eta < 0:
            raise ValueError(f"eta: expected a finite noise scale >= 0, got {eta!r}")
        if rng is None or isinstance(rng, np.random.Generator):
            seed = int(np.random.default_rng(rng).integers(2**63))
        elif isinstance(rng, bool) or not isinstance(rng, (int, np.integer)) or rng < 0:
            raise ValueError(f"rng: expected a non-negative integer seed, a numpy Generator or None, got {rng!r}")
        else:
            seed = int(rng)
        self.language = language
        self.eta = eta
        self.seed = seed
        self._tables = {}  # L -> (log_Q, data conditional table), computed once

    def _data_tables(self, L: int):
        if L not in self._tables:
            from mdm_exact.sampler.exact import conditional_table, log_joint_table

            log_Q = log_joint_table(self.language, L)  # (V+1,)*L
            self._tables = {L: (log_Q, conditional_table(log_Q))}
        return self._tables[L]

    @property
    def vocab_size(self) -> int:
        return int(self.language.vocab_size)

    def conditional_marginals(self, x, revealed) -> np.ndarray:
        """``p_theta(x_i = v | x_R)``, shape (batch, L, V); revealed positions one-hot."""
        q = np.asarray(self.language.conditional_marginals(x, revealed), dtype=np.float64)  # (B, L, V)
        x = np.atleast_2d(np.asarray(x, dtype=np.int64))
        revealed = np.broadcast_to(np.atleast_2d(np.asarray(revealed, dtype=bool)), x.shape)
        V = self.vocab_size
        B, L = x.shape
        out = q.copy()  # (B, L, V)
        if self.eta == 0.0:
            return out
        h = _state_hash(self.seed, np.where(revealed, x, V), V)  # (B,)
        for j in range(L):
            m = ~revealed[:, j]
            if m.any():
                out[m, j, :] = _tilt(q[m, j, :], _normals(h[m], j, V), self.eta)
        return out

    def conditional_table(self, L: int) -> np.ndarray:
        """Reduced table ``(L, (V+1)^(L-1), V)`` of the exact engine (see ``mdm_exact.sampler.exact``)."""
        L = as_length(L)
        V = self.vocab_size
        cond = self._data_tables(L)[1].copy()  # (L, S_red, V)
        if self.eta == 0.0:
            return cond
        h = self._all_state_hashes(L)  # (V+1,)*L
        for j in range(L):
            hj = h.take(V, axis=j).ravel()  # (S_red,)
            cond[j] = _tilt(cond[j], _normals(hj, j, V), self.eta)
        return cond

    def _all_state_hashes(self, L: int) -> np.ndarray:
        V = self.vocab_size
        h = _seed_hash(self.seed, L).reshape(())  # ()
        d = np.arange(1, V + 2, dtype=np.uint64)  # digit + 1
        for _ in range(L):
            h = _mix(h[..., None] ^ d)  # (V+1,)*(i+1)
        return h

    def epsilon_learning(self, L: int) -> float:
        """Measured ``epsilon_learning`` of Assumption 4.1 (STATEMENTS.md §3, as reconstructed).

        ``max KL(q(x_j | x_R) || p_theta(x_j | x_R))`` over masked ``j`` and contexts with
        ``q(x_R) > 0`` (every context that occurs), in nats. Exhaustive over ``(V+1)^L``
        partial sequences.
        """
        L = as_length(L)
        V = self.vocab_size
        log_Q, qc = self._data_tables(L)  # (V+1,)*L, (L, S_red, V)
        pc = self.conditional_table(L)
        eps = 0.0
        for j in range(L):
            live = log_Q.take(V, axis=j).ravel() > -np.inf  # (S_red,)
            kl = rel_entr(qc[j][live], pc[j][live]).sum(axis=1)
            if kl.size:
                eps = max(eps, float(kl.max()))
        return eps

    def to_dict(self) -> dict:
        return {"model": "perturbed", "eta": self.eta, "seed": self.seed}
