"""Hidden Markov model languages (STATEMENTS.md §1.8, as reconstructed)."""

from __future__ import annotations

import numpy as np

from mdm_exact._validate import LanguageError, as_count, as_length, as_probability_array
from mdm_exact.languages._forward_backward import forward_backward
from mdm_exact.languages.base import Language


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
        self.initial = _as_given(initial, pi)  # (S,)
        self.transition = _as_given(transition, A)  # (S, S)
        self.emission = _as_given(emission, B)  # (S, V)
        pi, A, B = self.initial, self.transition, self.emission
        for arr in (pi, A, B):
            arr.setflags(write=False)

    @property
    def vocab_size(self) -> int:
        return int(self.emission.shape[1])

    @property
    def num_states(self) -> int:
        return int(self.initial.shape[0])

    # ------------------------------------------------------------------ structure
    def _csr(self):
        """CSR form of the transition's non-zero pattern (cached): indptr (S+1,), indices (nnz,), data (nnz,)."""
        c = self.__dict__.get("_csr_cache")
        if c is None:
            c = _dense_to_csr(self.transition)
            self.__dict__["_csr_cache"] = c
        return c

    #: Which Numba kernel runs: ``"dense"`` walks whole rows of ``A`` (SIMD) and skips only
    #: zero-weight states; ``"csr"`` walks the CSR list of non-zero transitions with alive-state
    #: lists; ``"auto"`` (default) takes dense for ``S <= 64`` or a transition density >= 10%
    #: (where a SIMD row beats a scattered CSR walk), CSR otherwise (e.g. the Note C.8 HMM).
    kernel = "auto"

    def _use_dense(self):
        if self.kernel not in ("auto", "dense", "csr"):
            raise ValueError(f"kernel: expected 'auto', 'dense' or 'csr', got {self.kernel!r}")
        if self.kernel != "auto":
            return self.kernel == "dense"
        S = self.num_states
        return S <= 64 or self._csr()[1].shape[0] >= 0.1 * S * S

    def transition_t(self):
        """``A^T`` as a C-contiguous (S, S) array (cached, read-only)."""
        c = self.__dict__.get("_AT")
        if c is None:
            c = self.__dict__["_AT"] = _read_only(np.ascontiguousarray(self.transition.T))  # (S, S)
        return c

    def emission_t(self):
        """``B^T`` as a C-contiguous (V, S) array (cached, read-only)."""
        c = self.__dict__.get("_BT")
        if c is None:
            c = self.__dict__["_BT"] = _read_only(np.ascontiguousarray(self.emission.T))  # (V, S)
        return c

    def transition_powers(self, G, *, transposed=False):
        """Dense powers ``A^0 .. A^(G-1)``, shape (G, S, S) (cached, grown on demand, read-only).

        ``A^g = A^(g-1) A`` in float64, so every caller (the exact inference kernels, the Monte
        Carlo engine) sees the same bits. ``transposed=True``: ``(A^g)^T``, each C-contiguous.
        """
        G = int(G)
        P = self.__dict__.get("_power_cache")
        S = self.num_states
        if P is None or P.shape[0] < G:
            old = 0 if P is None else P.shape[0]
            newP = np.empty((G, S, S))  # (G, S, S)
            if old:
                newP[:old] = P
            else:
                newP[0] = np.eye(S)
            for m in range(max(old, 1), G):
                newP[m] = newP[m - 1] @ self.transition
            P = self.__dict__["_power_cache"] = _read_only(newP)
        if not transposed:
            return P[:G]
        PT = self.__dict__.get("_power_t_cache")
        if PT is None or PT.shape[0] < G:
            PT = self.__dict__["_power_t_cache"] = _read_only(np.ascontiguousarray(P[:G].transpose(0, 2, 1)))  # (G, S, S)
        return PT[:G]

    _DIGITS0 = np.zeros((0, 1), dtype=np.int64)
    _NO_TOK_EDGE = np.zeros((0, 0), dtype=np.int64)

    # ------------------------------------------------------------------ inference
    def _fb(self, x, revealed, need_posterior):
        """Plain NumPy forward-backward (the reference the kernels are tested against)."""
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

    def _reference_log_prob_revealed(self, x, revealed):
        x, revealed = self._tokens_and_mask(x, revealed)
        return self._fb(x, revealed, need_posterior=False)[0]

    def _reference_conditional_marginals(self, x, revealed):
        x, revealed = self._tokens_and_mask(x, revealed)
        log_ev, post = self._fb(x, revealed, need_posterior=True)
        V = self.vocab_size
        out = post @ self.emission  # (batch, L, V)
        out[np.isneginf(log_ev)] = 1.0 / V
        rb, rk = np.nonzero(revealed)
        out[rb, rk, :] = 0.0
        out[rb, rk, x[rb, rk]] = 1.0
        return out

    def log_prob_revealed(self, x, revealed):
        """Exact ``log q(x_R)``, shape (batch,); ``-inf`` when the revealed tokens are impossible.

        Numba kernel; runs of masked positions are jumped with a cached dense power ``A^m``
        (always with the dense kernel; with the CSR kernel, only when that is
        cheaper than ``m`` steps over the CSR zero pattern), and the masked tail after the last
        revealed position is skipped (it has probability one).
        """
        from mdm_exact.languages._kernels import _chain_log_evidence, _dense_log_evidence

        x, revealed = self._tokens_and_mask(x, revealed)
        S = self.num_states
        if self._use_dense():
            out = np.empty(x.shape[0])  # (batch,)
            G = min(_longest_revealed_gap(revealed) + 1, max(2**24 // (S * S * 8), 2))
            powers = self.transition_powers(G) if G > 2 else np.zeros((0, S, S))
            _dense_log_evidence(self.initial, self.transition, self.emission_t(), powers, x, revealed, out)
            return out
        indptr, indices, data = self._csr()
        nnz = max(indices.shape[0], 1)
        jump_min = int(np.ceil(S * S / nnz)) + 1
        G = 0
        if x.shape[1] > jump_min and S * S * 8 * (jump_min + 1) <= 2**26:
            G = min(_longest_revealed_gap(revealed) + 1, 2**26 // (S * S * 8))
        powers = self.transition_powers(G) if G > jump_min else np.zeros((0, S, S))
        out = np.empty(x.shape[0])  # (batch,)
        _chain_log_evidence(
            self.initial, self._DIGITS0, 0, indptr, indices, data, self.emission, self._NO_TOK_EDGE, x, revealed, powers, jump_min, out
        )
        return out

    #: From this length on, the dense path of ``conditional_marginals`` sweeps fixed chunks of
    #: :attr:`ALIGNED_CHUNK` rows lined up (``_kernels_aligned``: one ``(chunk, S) @ (S, S)``
    #: BLAS product per position, 2-4x the per-sequence kernel); shorter sequences (all exact
    #: engines) keep the per-sequence kernel, bit for bit.
    ALIGNED_MIN_LENGTH = 64
    #: Rows per lined-up chunk (fixed: a row's result depends only on its chunk's rows).
    ALIGNED_CHUNK = 32
    #: Lined-up kernel: messages are rescaled where their mass falls below this.
    ALIGNED_RESCALE_BELOW = 1e-100

    def conditional_marginals(self, x, revealed):
        """Exact ``q(x_i = v | x_R)``, shape (batch, L, V).

        Dense kernel: lined-up chunks (:data:`ALIGNED_CHUNK` rows, BLAS per position) for
        ``L >= ALIGNED_MIN_LENGTH``, per-sequence forward-backward below; CSR kernel (sparse
        alive-state messages) for large sparse transitions.
        """
        from mdm_exact.languages._kernels import _chain_posterior, _dense_posterior

        x, revealed = self._tokens_and_mask(x, revealed)
        B, L = x.shape
        log_ev = np.empty(B)  # (batch,)
        out = np.empty((B, L, self.vocab_size))  # (batch, L, V)
        if self._use_dense() and L >= self.ALIGNED_MIN_LENGTH:
            from mdm_exact.languages._kernels_aligned import _hmm_aligned_marginals

            A, B_ = self.transition, self.emission
            x = np.ascontiguousarray(x, dtype=np.int64)
            revealed = np.ascontiguousarray(revealed, dtype=np.bool_)
            _hmm_aligned_marginals(
                self.initial, A, self.transition_t(), B_, self.emission_t(), x, revealed,
                int(self.ALIGNED_CHUNK), float(self.ALIGNED_RESCALE_BELOW), out,
            )
            return out
        if self._use_dense():
            A, B_ = self.transition, self.emission
            _dense_posterior(self.initial, A, self.transition_t(), B_, self.emission_t(), x, revealed, log_ev, out)
            return out
        indptr, indices, data = self._csr()
        _chain_posterior(self.initial, self._DIGITS0, 0, indptr, indices, data, self.emission, self._NO_TOK_EDGE, x, revealed, log_ev, out)
        return out

    def prefix_conditionals(self, x, positions=None):
        """Exact ``q(x_i = . | x_{<i})`` by the forward filter ``f_i = P(s_i | x_{<i})``, renormalised each step.

        ``q(x_i = . | x_{<i}) = f_i E``; an impossible prefix gets the uniform law.
        """
        x = self._tokens(x)
        B, L = x.shape
        V = self.vocab_size
        E, A = self.emission, self.transition
        out = np.empty((B, L, V))  # (batch, L, V)
        f = np.broadcast_to(self.initial, (B, self.num_states)).copy()  # (batch, S)
        ok = np.ones(B, dtype=bool)
        for i in range(L):
            out[:, i] = np.where(ok[:, None], f @ E, 1.0 / V)
            g = f * E[:, x[:, i]].T  # (batch, S) joint with x_i, unnormalised
            z = g.sum(1)  # (batch,)
            ok &= z > 0
            f = np.where(ok[:, None], g / np.where(ok, z, 1.0)[:, None], 0.0) @ A
        return self._at_positions(x, out, positions)

    def in_support(self, x):
        x = self._tokens(x)
        A = (self.transition > 0).astype(np.int64)  # (S, S)
        Bz = self.emission > 0  # (S, V)
        r = (self.initial > 0)[None, :] & Bz[:, x[:, 0]].T  # (batch, S)
        for k in range(1, x.shape[1]):
            r = ((r.astype(np.int64) @ A) > 0) & Bz[:, x[:, k]].T
        return r.any(axis=1)

    def sample(self, n, L, *, rng=None):
        """``n`` exact ancestral samples, int64 (n, L); uniforms are drawn here, the walk is a kernel."""
        from mdm_exact.languages._kernels import _chain_sample

        n = as_count(n, "n")
        L = as_length(L)
        rng = np.random.default_rng(rng)
        u = rng.random((n, L, 2))  # (n, L, 2) uniforms: state, token
        indptr, indices, data = self._csr()
        states = np.empty((n, L), dtype=np.int64)  # (n, L)
        x = np.empty((n, L), dtype=np.int64)  # (n, L)
        _chain_sample(self.initial, data, indices, indptr, self.emission, u, states, x)
        return x

    def log_prob_all(self, L):
        """``log q(x)`` for all ``V^L`` sequences in :func:`all_sequences` order, shape (V^L,).

        Forward pass over the prefix tree (level ``k`` holds the unnormalised forward vectors
        of all ``V^k`` prefixes), so the cost is dominated by the last level, ``V^L S^2``,
        instead of ``L V^L S^2`` for scoring each sequence separately. Exact zeros propagate,
        so impossible sequences get exactly ``-inf``. Refused above ``2**22`` sequences.
        """
        L = as_length(L)
        V, S = self.vocab_size, self.num_states
        if V**L > 2**22:
            raise NotImplementedError(f"log_prob_all: V^L = {V}^{L} sequences is above the 2**22 limit")
        BT = self.emission_t()  # (V, S)
        a = self.initial[None, :] * BT  # (V, S) prefixes of length 1
        for _ in range(1, L):
            a = ((a @ self.transition)[:, None, :] * BT[None, :, :]).reshape(-1, S)  # (V^k, S)
        with np.errstate(divide="ignore"):
            return np.log(a.sum(axis=1))

    def entropy(self, L):
        """Exact ``H(q)`` in nats over length ``L``, from :meth:`log_prob_all` (``V^L <= 2**22``)."""
        lp = self.log_prob_all(L)
        p = np.exp(lp)
        return float(-(p[p > 0] * lp[p > 0]).sum())

    def support_size(self, L, *, max_subsets=2**20):
        """Exact ``|supp q|`` over length ``L`` as a Python int, by a boolean subset DP.

        Different hidden paths can emit the same tokens, so sequences are counted on the
        determinised chain: the DP state is the *set* of hidden states compatible with the
        prefix (a boolean vector), with an exact (Python int) count of prefixes reaching it.
        No sequence is enumerated; the cost grows with the number of distinct reachable sets,
        and the DP refuses above ``max_subsets`` of them.
        """
        L = as_length(L)
        Apos = self.transition > 0  # (S, S)
        Epos = self.emission > 0  # (S, V)
        V = self.vocab_size
        sets = (self.initial > 0)[None, :]  # (K, S) compatible-state sets before emission
        counts = np.array([1], dtype=object)  # (K,)
        for k in range(L):
            if k > 0:
                sets = (sets.astype(np.int64) @ Apos.astype(np.int64)) > 0  # (K, S)
            new_sets, new_counts = [], []
            for v in range(V):
                nxt = sets & Epos[:, v][None, :]  # (K, S)
                keep = nxt.any(axis=1)
                new_sets.append(nxt[keep])
                new_counts.append(counts[keep])
            sets = np.concatenate(new_sets)
            counts = np.concatenate(new_counts)
            sets, inv = np.unique(sets, axis=0, return_inverse=True)
            merged = np.zeros(sets.shape[0], dtype=object)
            np.add.at(merged, inv.reshape(-1), counts)
            counts = merged
            if sets.shape[0] > max_subsets:
                raise ValueError(f"support_size: more than {max_subsets} reachable state sets at length {k + 1}; use a smaller L")
        return int(counts.sum()) if counts.size else 0

    def describe(self):
        return {
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "num_states": self.num_states,
            "transition_zero_fraction": float(np.mean(self.transition == 0)),
            "emission_zero_fraction": float(np.mean(self.emission == 0)),
            "initial_zero_fraction": float(np.mean(self.initial == 0)),
            "transition_nonzeros": int(np.count_nonzero(self.transition)),
        }


def _as_given(raw, validated):
    """The caller's array if its rows already sum to 1 within 1e-12 (so that saving and re-loading
    a language reproduces it bit for bit), else the validated, renormalised one."""
    raw = np.array(raw, dtype=np.float64)
    if raw.shape == validated.shape and np.all(np.abs(raw.sum(axis=-1) - 1.0) <= 1e-12):
        return np.ascontiguousarray(raw)
    return validated


def _read_only(a):
    a.setflags(write=False)
    return a


def _dense_to_csr(M):
    """CSR arrays (indptr (R+1,) int64, indices (nnz,) int64, data (nnz,) float64) of the non-zeros of ``M``."""
    rows, cols = np.nonzero(M)
    indptr = np.zeros(M.shape[0] + 1, dtype=np.int64)  # (R+1,)
    np.add.at(indptr, rows + 1, 1)
    return np.cumsum(indptr), cols.astype(np.int64), np.ascontiguousarray(M[rows, cols], dtype=np.float64)


def _longest_revealed_gap(revealed):
    """Largest distance between consecutive revealed positions of any row (0 if none); int."""
    B, L = revealed.shape
    pos = np.where(revealed, np.arange(L)[None, :], -1)  # (batch, L)
    last = np.maximum.accumulate(pos, axis=1)  # (batch, L) last revealed position at or before k
    prev = np.concatenate([np.full((B, 1), -1), last[:, :-1]], axis=1)  # (batch, L)
    gaps = np.where(revealed & (prev >= 0), np.arange(L)[None, :] - prev, 0)
    lead = np.where(revealed.any(axis=1), np.argmax(revealed, axis=1), 0)
    return int(max(gaps.max(initial=0), lead.max(initial=0)))
