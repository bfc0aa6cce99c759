"""The interface every language of ``mdm_exact`` implements.

A language is a law ``q`` over fixed-length token sequences ``x in V^L`` (STATEMENTS.md §1.1,
§1.8). Every language answers, exactly and in float64 nats:

* ``log_prob(x)``: ``log q(x)``, exactly ``-inf`` outside the support;
* ``in_support(x)``: ``q(x) > 0``, decided on the zero pattern alone (no float tolerance);
* ``log_prob_revealed(x, revealed)``: ``log q(x_R)``, the marginal probability of the
  revealed tokens;
* ``conditional_marginals(x, revealed)``: for every masked position ``i``, the law
  ``q(x_i = . | x_R)``; this is ``q_{0|t}(x_0^i | x_t)`` of STATEMENTS.md §1.3, the ELBO
  optimum that the idealised sampler draws from;
* ``sample(n, L, rng=...)``: exact ancestral samples;
* ``prefix_conditionals(x)``: the next-token law ``q(x_i = . | x_{<i})`` at every position.

Every language also has ``entropy(L)``, ``support_size(L)`` and ``entropy_rate(rng=...)``
(one return type, :class:`EntropyRate`); the base class implements them by enumeration or
Monte Carlo, subclasses override them where a closed form or a DP exists.

Conventions of ``conditional_marginals`` (shape ``(batch, L, V)``):

* revealed positions get the one-hot vector of their token;
* when the revealed tokens are themselves impossible (``q(x_R) = 0``), the conditional is
  undefined; masked positions then get the uniform law over ``V``. The idealised sampler
  therefore draws uniformly once it has left the support. Such sequences are already outside
  ``supp q``, so SER, the support test and every quantity restricted to ``supp q`` (generative
  perplexity, KL(q || p)) do not depend on this convention; KL(p || q) is infinite anyway.
"""

from __future__ import annotations

import abc
import itertools
from dataclasses import asdict, dataclass

import numpy as np

from mdm_exact._validate import as_count, as_length, as_mask, as_tokens

#: Largest ``V**L`` that the enumerating base implementations accept.
ENUMERATION_LIMIT = 2**22


@dataclass(frozen=True)
class EntropyRate:
    """The entropy rate ``lim H(q_L) / L`` of a language, in nats per token.

    Attributes
    ----------
    value : float
        The rate (exact), or its estimate (Monte Carlo), or the last iterate (``converged``
        false).
    std_error : float
        Standard error of a Monte Carlo estimate; ``0.0`` for an exact value.
    converged : bool
        ``False`` only when an exact iteration stopped at its step limit before meeting its
        tolerance; ``value`` is then the last iterate, not the limit.
    method : str
        How the value was obtained, in words.
    """

    value: float
    std_error: float
    converged: bool
    method: str

    def to_dict(self) -> dict:
        return asdict(self)


class Language(abc.ABC):
    """A law over sequences of ``L`` tokens from ``{0, ..., vocab_size - 1}``."""

    #: Short human-readable kind, e.g. ``"hmm"`` or ``"ngram"``.
    kind: str = "language"

    @property
    @abc.abstractmethod
    def vocab_size(self) -> int:
        """Number of tokens ``V``."""

    # ----------------------------------------------------------------- exact inference
    @abc.abstractmethod
    def log_prob_revealed(self, x, revealed) -> np.ndarray:
        """Exact ``log q(x_R)`` for each row, shape ``(batch,)``; ``-inf`` when impossible."""

    @abc.abstractmethod
    def conditional_marginals(self, x, revealed) -> np.ndarray:
        """Exact ``q(x_i = v | x_R)`` for every position, shape ``(batch, L, V)``.

        See the module docstring for revealed positions and impossible contexts.
        """

    @abc.abstractmethod
    def in_support(self, x) -> np.ndarray:
        """``q(x) > 0`` for each row, decided exactly on the zero pattern; shape ``(batch,)``."""

    @abc.abstractmethod
    def sample(self, n, L, *, rng=None) -> np.ndarray:
        """``n`` exact ancestral samples of length ``L``, int64 array of shape ``(n, L)``."""

    def prefix_conditionals(self, x, positions=None) -> np.ndarray:
        """Exact ``q(x_i = . | x_{<i})``, the next-token law given the prefix (an AR model's target).

        ``positions=None``: every position, shape ``(batch, L, V)``; else ``positions`` (batch, K)
        integer indices in ``[0, L)``, one row of positions per sequence, and the result is
        ``(batch, K, V)``. Position 0 gets the law of ``x_1``. An impossible prefix
        (``q(x_{<i}) = 0``) gets the uniform law, as in :meth:`conditional_marginals`.

        The base implementation asks :meth:`conditional_marginals` once per (sequence,
        position), revealing exactly the prefix; n-gram and HMM languages override it with one
        left-to-right pass.
        """
        x = self._tokens(x)
        positions = self._prefix_positions(x, positions)
        B, L = x.shape
        K = positions.shape[1]
        rows = np.repeat(x, K, axis=0)  # (B K, L)
        pos = positions.reshape(-1)  # (B K,)
        revealed = np.arange(L)[None, :] < pos[:, None]  # (B K, L)
        cm = self.conditional_marginals(rows, revealed)  # (B K, L, V)
        return cm[np.arange(B * K), pos].reshape(B, K, self.vocab_size)

    @classmethod
    def _at_positions(cls, x, out, positions):
        """``out`` (batch, L, V) at every position (``positions=None``) or at ``positions`` (batch, K)."""
        if positions is None:
            return out
        pos = cls._prefix_positions(x, positions)
        return np.take_along_axis(out, pos[:, :, None], axis=1)

    @staticmethod
    def _prefix_positions(x, positions):
        B, L = x.shape
        if positions is None:
            return np.broadcast_to(np.arange(L), (B, L))
        pos = np.asarray(positions)
        if pos.ndim != 2 or pos.shape[0] != B or not np.issubdtype(pos.dtype, np.integer):
            raise ValueError(f"positions: expected an integer array of shape ({B}, K), got "
                             f"{pos.dtype} {pos.shape}")
        if pos.size and (pos.min() < 0 or pos.max() >= L):
            raise ValueError(f"positions: expected indices in [0, {L}), got values in [{pos.min()}, {pos.max()}]")
        return pos.astype(np.int64, copy=False)

    def log_prob(self, x) -> np.ndarray:
        """Exact ``log q(x)`` for each row, shape ``(batch,)``; ``-inf`` outside the support."""
        x = self._tokens(x)
        return self.log_prob_revealed(x, np.ones(x.shape, dtype=bool))

    def entropy(self, L) -> float:
        """Exact entropy ``H(q)`` in nats of the law over length-``L`` sequences.

        The base implementation enumerates all ``V^L`` sequences and refuses above
        :data:`ENUMERATION_LIMIT` of them; subclasses override it where a closed form exists.
        """
        L = as_length(L)
        self._check_enumerable(L, "exact entropy")
        lp = self.log_prob(all_sequences(self.vocab_size, L))
        p = np.exp(lp)
        with np.errstate(invalid="ignore"):
            terms = np.where(p > 0, -p * lp, 0.0)
        return float(terms.sum())

    def support_size(self, L) -> int:
        """Exact ``|supp q|`` over length ``L`` as a Python int.

        The base implementation counts ``in_support`` over all ``V^L`` sequences (refused
        above :data:`ENUMERATION_LIMIT`); n-gram, HMM and interval languages count by a DP or
        a closed form without enumeration.
        """
        L = as_length(L)
        self._check_enumerable(L, "support size")
        return int(np.count_nonzero(self.in_support(all_sequences(self.vocab_size, L))))

    def entropy_rate(self, *, rng=None, L=1024, num_samples=256) -> EntropyRate:
        """Entropy rate in nats per token; the base implementation estimates it by Monte Carlo.

        ``-log q(X) / L`` over ``num_samples`` exact samples ``X ~ q_L`` is an unbiased
        estimate of ``H(q_L) / L``, which tends to the entropy rate as ``L`` grows
        (Shannon-McMillan-Breiman, for an ergodic source); returned with its standard error.
        Languages with an exact rate (n-gram: Cesaro limit; interval: closed form) override
        this and ignore ``rng``, ``L`` and ``num_samples``.

        Parameters
        ----------
        rng : int, numpy.random.Generator or None
            Randomness of the samples (``np.random.default_rng(rng)``).
        L : int
            Length of the sampled sequences.
        num_samples : int
            Number of sequences (at least 2).
        """
        L = as_length(L)
        n = as_count(num_samples, "num_samples", minimum=2)
        x = self.sample(n, L, rng=np.random.default_rng(rng))  # (n, L)
        v = -self.log_prob(x) / L  # (n,)
        return EntropyRate(
            float(v.mean()),
            float(v.std(ddof=1) / np.sqrt(n)),
            True,
            f"Monte Carlo estimate of H(q_{L})/{L} from {n} exact samples",
        )

    def _check_enumerable(self, L, what):
        V = self.vocab_size
        if V**L > ENUMERATION_LIMIT:
            raise NotImplementedError(
                f"{what} of a {self.kind} over V^L = {V}^{L} sequences needs enumeration; "
                f"this is refused above {ENUMERATION_LIMIT} sequences"
            )

    # ----------------------------------------------------------------- helpers
    def _tokens(self, x) -> np.ndarray:
        return as_tokens(x, self.vocab_size)

    def _tokens_and_mask(self, x, revealed):
        x = self._tokens(x)
        return x, as_mask(revealed, x.shape)

    def describe(self) -> dict:
        """A JSON-ready summary (kind, sizes, sparsity)."""
        return {"kind": self.kind, "vocab_size": self.vocab_size}


def all_sequences(V: int, L: int) -> np.ndarray:
    """All ``V**L`` sequences in lexicographic order (x_1 most significant); shape ``(V**L, L)``."""
    L = as_length(L)
    if V**L > 2**26:
        raise ValueError(f"refusing to enumerate V^L = {V}^{L} sequences (limit 2**26)")
    grid = np.indices((V,) * L, dtype=np.int64).reshape(L, -1).T  # (V**L, L)
    return np.ascontiguousarray(grid)


def brute_force_log_prob_revealed(lang: Language, x, revealed) -> np.ndarray:
    """``log q(x_R)`` by summing ``q`` over every completion of the masked positions.

    Reference implementation for tests; exponential in the number of masked positions.
    """
    x, revealed = lang._tokens_and_mask(x, revealed)
    V = lang.vocab_size
    out = np.empty(x.shape[0])
    for b in range(x.shape[0]):
        hidden = np.flatnonzero(~revealed[b])
        if hidden.size == 0:
            out[b] = lang.log_prob(x[b])[0]
            continue
        fills = np.array(list(itertools.product(range(V), repeat=hidden.size)), dtype=np.int64)
        seqs = np.repeat(x[b][None, :], fills.shape[0], axis=0)
        seqs[:, hidden] = fills
        lp = lang.log_prob(seqs)
        m = lp.max()
        out[b] = -np.inf if m == -np.inf else m + np.log(np.exp(lp - m).sum())
    return out


def brute_force_conditional_marginals(lang: Language, x, revealed) -> np.ndarray:
    """Conditional marginals by explicit summation (reference implementation for tests)."""
    x, revealed = lang._tokens_and_mask(x, revealed)
    B, L = x.shape
    V = lang.vocab_size
    out = np.zeros((B, L, V))  # (batch, L, V)
    for b in range(B):
        base = brute_force_log_prob_revealed(lang, x[b], revealed[b])[0]
        for i in range(L):
            if revealed[b, i]:
                out[b, i, x[b, i]] = 1.0
                continue
            if base == -np.inf:
                out[b, i, :] = 1.0 / V
                continue
            rev = revealed[b].copy()
            rev[i] = True
            xs = np.repeat(x[b][None, :], V, axis=0)
            xs[:, i] = np.arange(V)
            out[b, i] = np.exp(brute_force_log_prob_revealed(lang, xs, np.broadcast_to(rev, xs.shape)) - base)
    return out
