"""Hidden Markov model languages (STATEMENTS.md §1.8, as reconstructed)."""

from __future__ import annotations

import numpy as np

from .._validate import LanguageError, as_count, as_length, as_probability_array
from ._forward_backward import forward_backward
from .base import Language


class HMM(Language):
    """An HMM ``(pi, A, B)``: ``s_1 ~ pi``, ``s_{k+1} ~ A[s_k]``, ``x_k ~ B[s_k]``.

    Parameters
    ----------
    initial : array_like, shape (S,)
        Law of the first hidden state.
    transition : array_like, shape (S, S)
        Row-stochastic transition matrix ``A``.
    emission : array_like, shape (S, V)
        Row-stochastic emission matrix ``B``.

    Raises
    ------
    LanguageError
        On wrong shapes, NaN or negative entries, or rows that do not sum to 1.
    """

    kind = "hmm"

    def __init__(self, initial, transition, emission):
        pi = as_probability_array(initial, "initial", ndim=1)
        S = pi.shape[0]
        A = as_probability_array(transition, "transition", ndim=2)
        if A.shape != (S, S):
            raise LanguageError(f"transition: expected shape ({S}, {S}) to match initial's {S} states, got {A.shape}")
        B = as_probability_array(emission, "emission", ndim=2)
        if B.shape[0] != S:
            raise LanguageError(f"emission: expected {S} rows (one per hidden state), got shape {B.shape}")
        self.initial = pi  # (S,)
        self.transition = A  # (S, S)
        self.emission = B  # (S, V)
        for arr in (pi, A, B):
            arr.setflags(write=False)

    @property
    def vocab_size(self) -> int:
        return int(self.emission.shape[1])

    @property
    def num_states(self) -> int:
        return int(self.initial.shape[0])

    # ------------------------------------------------------------------ inference
    def _fb(self, x, revealed, need_posterior):
        A, Bm = self.transition, self.emission
        return forward_backward(
            x.shape[1],
            self.initial,
            lambda k, a: a @ A,
            lambda k, b: b @ A.T,
            lambda k, tok: Bm[:, tok].T,
            x,
            revealed,
            need_posterior=need_posterior,
        )

    def log_prob_revealed(self, x, revealed):
        x, revealed = self._tokens_and_mask(x, revealed)
        return self._fb(x, revealed, need_posterior=False)[0]

    def conditional_marginals(self, x, revealed):
        x, revealed = self._tokens_and_mask(x, revealed)
        log_ev, post = self._fb(x, revealed, need_posterior=True)
        V = self.vocab_size
        out = post @ self.emission  # (batch, L, V)
        out[np.isneginf(log_ev)] = 1.0 / V
        rb, rk = np.nonzero(revealed)
        out[rb, rk, :] = 0.0
        out[rb, rk, x[rb, rk]] = 1.0
        return out

    def in_support(self, x):
        x = self._tokens(x)
        A = (self.transition > 0).astype(np.int64)  # (S, S)
        Bz = self.emission > 0  # (S, V)
        r = (self.initial > 0)[None, :] & Bz[:, x[:, 0]].T  # (batch, S)
        for k in range(1, x.shape[1]):
            r = ((r.astype(np.int64) @ A) > 0) & Bz[:, x[:, k]].T
        return r.any(axis=1)

    def sample(self, n, L, *, rng=None):
        n = as_count(n, "n")
        L = as_length(L)
        rng = np.random.default_rng(rng)
        u = rng.random((n, L, 2))  # (n, L, 2) uniforms: state, token
        cA = np.cumsum(self.transition, axis=1)
        cB = np.cumsum(self.emission, axis=1)
        c0 = np.cumsum(self.initial)
        S, V = self.num_states, self.vocab_size
        s = np.minimum(np.searchsorted(c0, u[:, 0, 0], side="right"), S - 1)  # (n,)
        x = np.empty((n, L), dtype=np.int64)  # (n, L)
        for k in range(L):
            if k > 0:
                s = _inverse_cdf_rows(cA[s], u[:, k, 0])
            x[:, k] = _inverse_cdf_rows(cB[s], u[:, k, 1])
        return x

    def describe(self):
        return {
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "num_states": self.num_states,
            "transition_zero_fraction": float(np.mean(self.transition == 0)),
            "emission_zero_fraction": float(np.mean(self.emission == 0)),
        }


def _inverse_cdf_rows(cdf, u):
    """Row-wise inverse CDF: first index whose cumulative mass exceeds ``u`` (never a zero-mass index)."""
    k = (cdf <= u[:, None]).sum(axis=1)  # (n,)
    V = cdf.shape[1]
    over = k >= V
    if np.any(over):  # u above the rounded total: take the last index with positive mass
        last = V - 1 - np.argmax((np.diff(cdf, axis=1, prepend=0.0) > 0)[:, ::-1], axis=1)
        k = np.where(over, last, k)
    return k
