"""The hard language of Example C.7 and its HMM form (Note C.8).

As reconstructed, STATEMENTS.md §4.D (Example C.7, Note C.8). A sequence of length
``L = M l`` is cut into ``M`` intervals of ``l`` positions. Each token is an integer in
``[0, 2^(l-1))`` read as ``l - 1`` bits, one bit per *other* position of its interval, in
increasing order of the partner's position, big-endian (the bit for the earliest partner is
the most significant). For two positions ``a < b`` of an interval, ``a``'s bit for ``b`` and
``b``'s bit for ``a`` are one shared fair "pair bit"; the ``binom(l, 2)`` pair bits of an
interval and the intervals are independent. So ``q`` is uniform on its support of size
``2^(M binom(l, 2))``.

Inference is closed form: given revealed tokens, each pair bit is either *pinned* (at least one
partner revealed) or uniform, the revealed tokens are possible iff every pair with both
partners revealed agrees, ``log q(x_R) = -(#pinned pair bits) log 2``, and the conditional
law of a masked token is the product of its pinned and uniform bits.
"""

from __future__ import annotations

import itertools

import numpy as np

from mdm_exact._validate import as_count, as_length
from mdm_exact.languages.base import EntropyRate, Language
from mdm_exact.languages.hmm import HMM

LOG2 = float(np.log(2.0))


def _bit_index(a, b):
    """Index (0 = most significant of l-1 bits) of position ``a``'s bit for partner ``b != a``."""
    return b if b < a else b - 1


class IntervalLanguage(Language):
    """Example C.7 with interval length ``l >= 2`` (vocabulary ``2^(l-1)``).

    Sequence lengths must be multiples of ``l``.
    """

    kind = "interval"

    def __init__(self, interval_length):
        l = as_count(interval_length, "interval_length", minimum=2)
        if l > 16:
            raise ValueError(f"interval_length: expected 2 <= l <= 16 (vocabulary 2^(l-1)), got {l}")
        self.interval_length = l
        V = 2 ** (l - 1)
        # bits[a, v, b]: bit of token v at in-interval position a for partner b (0 for b == a)
        bits = np.zeros((l, V, l), dtype=np.int64)  # (l, V, l)
        for a in range(l):
            for b in range(l):
                if b != a:
                    bits[a, :, b] = (np.arange(V) >> (l - 2 - _bit_index(a, b))) & 1
        bits.setflags(write=False)
        self._bits = bits
        weights = np.zeros((l, l), dtype=np.int64)  # (a, b) weight of a's bit for partner b
        for a in range(l):
            for b in range(l):
                if b != a:
                    weights[a, b] = 1 << (l - 2 - _bit_index(a, b))
        self._weights = weights

    @property
    def vocab_size(self) -> int:
        return 2 ** (self.interval_length - 1)

    @property
    def pair_bit_table(self) -> np.ndarray:
        """``bits[a, v, b]``: bit of token ``v`` at in-interval position ``a`` for partner ``b``
        (0 for ``b == a``), shape (l, V, l), int64, read-only (used by the Monte Carlo kernel)."""
        return self._bits

    def _check_length(self, L):
        if L % self.interval_length:
            raise ValueError(
                f"L: the interval language with l = {self.interval_length} needs a length that is a "
                f"multiple of {self.interval_length}, got {L}"
            )

    def _pair_bits(self, x):
        """``(batch, M, l, l)`` array: entry [a, b] = bit of position a for partner b (diag 0)."""
        B, L = x.shape
        l = self.interval_length
        xi = x.reshape(B, L // l, l)  # (batch, M, l)
        return self._bits[np.arange(l)[None, None, :], xi]  # (batch, M, l, l)

    # ----------------------------------------------------------------- exact inference
    def in_support(self, x):
        x = self._tokens(x)
        self._check_length(x.shape[1])
        P = self._pair_bits(x)
        return np.all(P == np.swapaxes(P, -1, -2), axis=(1, 2, 3))

    def _consistent_and_pinned(self, x, revealed):
        l = self.interval_length
        B, L = x.shape
        P = self._pair_bits(x)  # (batch, M, l, l)
        r = revealed.reshape(B, L // l, l)  # (batch, M, l)
        both = r[..., :, None] & r[..., None, :]  # (batch, M, l, l)
        ok = ~np.any(both & (P != np.swapaxes(P, -1, -2)), axis=(1, 2, 3))  # (batch,)
        either = r[..., :, None] | r[..., None, :]
        iu = np.triu_indices(l, 1)
        pinned = either[..., iu[0], iu[1]].sum(axis=(1, 2))  # (batch,)
        return ok, pinned, P, r

    def log_prob_revealed(self, x, revealed):
        x, revealed = self._tokens_and_mask(x, revealed)
        self._check_length(x.shape[1])
        ok, pinned, _, _ = self._consistent_and_pinned(x, revealed)
        return np.where(ok, -pinned * LOG2, -np.inf)

    def log_prob(self, x):
        x = self._tokens(x)
        self._check_length(x.shape[1])
        M = x.shape[1] // self.interval_length
        l = self.interval_length
        return np.where(self.in_support(x), -M * (l * (l - 1) // 2) * LOG2, -np.inf)

    def conditional_marginals(self, x, revealed):
        x, revealed = self._tokens_and_mask(x, revealed)
        B, L = x.shape
        self._check_length(L)
        l, V = self.interval_length, self.vocab_size
        ok, _, P, r = self._consistent_and_pinned(x, revealed)
        # Position a's bit for partner b is pinned to P[b, a] when b is revealed, else a fair
        # coin: q(v) = 2^-(#free bits) if v agrees with the pinned bits, else 0.
        w = self._weights  # (a, b) weight of a's bit for b (0 on the diagonal)
        ri = r.astype(np.int64)  # (batch, M, l)
        mask = np.einsum("...b,ab->...a", ri, w)  # (batch, M, l) pinned-bit mask of each position
        val = np.einsum("...b,...ba,ab->...a", ri, P, w)  # (batch, M, l) their values
        free = (l - 1) - (ri.sum(axis=-1, keepdims=True) - ri)  # (batch, M, l) unpinned bits
        v = np.arange(V)
        agree = (v[None, None, None, :] & mask[..., None]) == val[..., None]  # (batch, M, l, V)
        out = np.where(agree, np.ldexp(1.0, -free)[..., None], 0.0).reshape(B, L, V)  # (batch, L, V)
        out[~ok] = 1.0 / V
        rb, rk = np.nonzero(revealed)
        out[rb, rk, :] = 0.0
        out[rb, rk, x[rb, rk]] = 1.0
        return out

    def prefix_conditionals(self, x, positions=None):
        """Closed form of :meth:`Language.prefix_conditionals` (one pass, ``O(B L V)``; the base
        implementation builds ``B L`` rows of ``L`` positions, about 2 GB and 17 s for 64 sequences
        at ``L = 510``): given the prefix, a token at in-interval offset ``a`` has its bits for the
        ``a`` earlier partners pinned and its ``l - 1 - a`` others free, and the prefix is possible
        iff no earlier position disagreed with an earlier partner (else the uniform law, as there).
        """
        x = self._tokens(x)
        B, L = x.shape
        self._check_length(L)
        l, V = self.interval_length, self.vocab_size
        P = self._pair_bits(x)  # (batch, M, l, l): [a, b] = a's bit for partner b
        offs = np.arange(l)
        earlier = offs[None, :] < offs[:, None]  # (a, b): partner b precedes a
        w = self._weights * earlier  # (a, b) weight of a's bit for an earlier partner
        mask = w.sum(axis=1)  # (l,) pinned bits at offset a
        val = np.einsum("...ba,ab->...a", P, w)  # (batch, M, l) their values (the partners' bits)
        agree = (np.arange(V)[None, :] & mask[:, None]) == val[..., None]  # (batch, M, l, V)
        out = np.where(agree, np.ldexp(1.0, -((l - 1) - offs))[:, None], 0.0).reshape(B, L, V)  # (batch, L, V)
        bad = np.any((P != np.swapaxes(P, -1, -2)) & earlier, axis=-1).reshape(B, L)  # (batch, L)
        impossible = np.zeros((B, L), dtype=bool)  # the prefix x_{<i} is impossible
        impossible[:, 1:] = np.logical_or.accumulate(bad, axis=1)[:, :-1]
        out[impossible] = 1.0 / V
        return self._at_positions(x, out, positions)

    def sample(self, n, L, *, rng=None):
        n = as_count(n, "n")
        L = as_length(L)
        self._check_length(L)
        rng = np.random.default_rng(rng)
        l = self.interval_length
        M = L // l
        iu = np.triu_indices(l, 1)
        pair = rng.integers(0, 2, size=(n, M, iu[0].size))  # (n, M, l(l-1)/2) fair pair bits
        P = np.zeros((n, M, l, l), dtype=np.int64)  # (n, M, l, l)
        P[..., iu[0], iu[1]] = pair
        P[..., iu[1], iu[0]] = pair
        tokens = (P * self._weights).sum(axis=-1)  # (n, M, l)
        return tokens.reshape(n, L)

    def entropy(self, L):
        """Exact ``H(q) = M binom(l, 2) log 2`` nats for ``L = M l``."""
        L = as_length(L)
        self._check_length(L)
        l = self.interval_length
        return (L // l) * (l * (l - 1) // 2) * LOG2

    def entropy_rate(self, *, rng=None) -> EntropyRate:
        """Exact entropy per token, ``(l - 1)/2 log 2`` nats (``rng`` is accepted and unused)."""
        return EntropyRate((self.interval_length - 1) / 2 * LOG2, 0.0, True, "exact closed form (l-1)/2 log 2")

    def support_size(self, L):
        """``|supp q| = 2^(M binom(l, 2))`` as a Python int."""
        L = as_length(L)
        self._check_length(L)
        l = self.interval_length
        return 2 ** ((L // l) * (l * (l - 1) // 2))

    def describe(self):
        l = self.interval_length
        return {
            "kind": self.kind,
            "interval_length": l,
            "vocab_size": self.vocab_size,
            "pair_bits_per_interval": l * (l - 1) // 2,
            "hmm_states": interval_hmm_num_states(l),
        }


def interval_hmm_num_states(l):
    """``|S| = sum_{s=1}^{l} 2^(s l - s(s+1)/2)`` of Note C.8 (2704 for ``l = 5``)."""
    return sum(2 ** (s * l - s * (s + 1) // 2) for s in range(1, l + 1))


def interval_hmm(l, *, max_states=4096):
    """The HMM form of Example C.7 (Note C.8, as reconstructed, STATEMENTS.md §4.D).

    States ``(s, A)``: ``s in 1..l`` the position inside the interval, ``A`` the pair bits of
    rows ``1..s`` of a strictly upper-triangular ``l x l`` bit matrix (row ``r`` holds the bits
    between position ``r`` and the later ones). State ``(s, A)`` emits deterministically the
    token whose bits are ``A[1..s-1, s]`` followed by ``A[s, s+1..l]``; it moves to
    ``(s+1, A')`` with fresh uniform bits in row ``s+1`` (or, from ``s = l``, resets to
    ``(1, fresh row 1)``, which is also the initial law).

    States are ordered by ``s``, then by the pair bits read row by row, big-endian.
    Returns an :class:`HMM` with ``interval_hmm_num_states(l)`` states and ``2^(l-1)`` tokens.
    """
    l = as_count(l, "l", minimum=2)
    S = interval_hmm_num_states(l)
    if S > max_states:
        raise ValueError(f"interval_hmm: l = {l} gives {S} states (dense {S}x{S} transition); limit {max_states}")
    V = 2 ** (l - 1)
    # enumerate states
    index = {}
    states = []
    for s in range(1, l + 1):
        nb = s * l - s * (s + 1) // 2  # bits in rows 1..s
        for code in range(2**nb):
            bits = [(code >> (nb - 1 - i)) & 1 for i in range(nb)]
            A = np.zeros((l, l), dtype=np.int64)
            pos = 0
            for r in range(s):  # 0-based row r = position r+1
                for c in range(r + 1, l):
                    A[r, c] = bits[pos]
                    pos += 1
            index[(s, A.tobytes())] = len(states)
            states.append((s, A))
    pi = np.zeros(S)
    T = np.zeros((S, S))  # (S, S)
    E = np.zeros((S, V))  # (S, V)

    def fresh_rows(s, A):
        """Successors of (s, A): keep rows < s, fill row s (0-based) with all bit patterns."""
        out = []
        free = l - s - 1
        for code in range(2**free):
            A2 = A.copy()
            A2[s:, :] = 0
            for i, c in enumerate(range(s + 1, l)):
                A2[s, c] = (code >> (free - 1 - i)) & 1
            out.append(index[(s + 1, A2.tobytes())])
        return out

    zero = np.zeros((l, l), dtype=np.int64)
    reset = fresh_rows(0, zero)
    pi[reset] = 1.0 / len(reset)
    for i, (s, A) in enumerate(states):
        a = s - 1  # 0-based position
        bits = [A[r, a] for r in range(a)] + [A[a, c] for c in range(a + 1, l)]
        E[i, int("".join(map(str, bits)), 2) if bits else 0] = 1.0
        succ = fresh_rows(s, A) if s < l else reset
        T[i, succ] = 1.0 / len(succ)
    return HMM(pi, T, E)
