"""n-gram languages (STATEMENTS.md §1.8, as reconstructed).

``q(x) = initial(x_{1:n-1}) * prod_{k >= n} conditional(x_{k-n+1:k-1}, x_k)``.

Contexts of ``n - 1`` tokens are indexed big-endian: ``c = sum_i x_i V^(n-2-i)``, the
earliest token most significant. Inference treats the language as a structured chain whose
state at position ``k`` is the window of the ``n - 1`` tokens ending at ``k`` (for the first
``n - 2`` positions, the whole initial context); the ``V^(n-1) x V^(n-1)`` transition matrix is
never built.

The fast path (``mdm_exact.languages._kernels``) keeps the transition as a CSR list of the (at most
``V``) successors ``(c mod V^(n-2)) V + v`` of each context ``c`` with positive probability,
and carries forward messages as lists of *alive* contexts. A revealed token keeps only the
contexts ending in it, so once ``n - 1`` consecutive tokens are revealed a single context is
alive: the chain is cut into independent pieces and a revealed run costs ``O(1)`` per
position, a masked position ``O(alive x V)``. ``_fb`` is the plain NumPy reference.
"""

from __future__ import annotations

import math

import numpy as np

from mdm_exact._validate import LanguageError, as_count, as_length, as_probability_array
from mdm_exact.languages._forward_backward import forward_backward
from mdm_exact.languages.base import EntropyRate, Language
from mdm_exact.languages._draw import inverse_cdf
from mdm_exact.languages.hmm import _as_given


class NGram(Language):
    """An order-``n`` Markov language over ``V`` tokens (``n >= 2``).

    Parameters
    ----------
    order : int
        ``n >= 2``.
    initial : array_like, shape (V**(n-1),)
        Law of the first ``n - 1`` tokens, big-endian context index.
    conditional : array_like, shape (V**(n-1), V)
        ``conditional[c, v] = q(x_k = v | context c)``.
    """

    kind = "ngram"

    def __init__(self, order, initial, conditional):
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 2:
            raise LanguageError(f"order: expected an integer n >= 2, got {order!r}")
        n = int(order)
        cond = as_probability_array(conditional, "conditional", ndim=2)
        C, V = cond.shape
        if V > 1 and n - 1 > math.log(max(C, 1)) / math.log(V) + 1:  # refuse before computing a huge V^(n-1)
            raise LanguageError(
                f"conditional: order {n} needs V^(n-1) = {V}^{n - 1} rows (about 10^{(n - 1) * math.log10(V):.3g}), "
                f"got shape {cond.shape}"
            )
        if C != V ** (n - 1):
            raise LanguageError(
                f"conditional: expected V^(n-1) = {V}^{n - 1} = {V ** (n - 1)} rows for order {n} "
                f"and {V} columns (vocabulary), got shape {cond.shape}"
            )
        init = as_probability_array(initial, "initial", ndim=1)
        if init.shape != (C,):
            raise LanguageError(f"initial: expected shape ({C},) (V^(n-1) contexts, big-endian), got {init.shape}")
        self.order = n
        self.initial = init = _as_given(initial, init)  # (V**(n-1),)
        self.conditional = cond = _as_given(conditional, cond)  # (V**(n-1), V)
        for arr in (init, cond):
            arr.setflags(write=False)

    @property
    def vocab_size(self) -> int:
        return int(self.conditional.shape[1])

    @property
    def num_contexts(self) -> int:
        return int(self.conditional.shape[0])

    # ------------------------------------------------------------------ structure
    def _digit(self, k, states):
        """Token at position ``k`` carried by chain state(s) ``states``."""
        n, V = self.order, self.vocab_size
        if k < n - 1:
            return (states // V ** (n - 2 - k)) % V
        return states % V

    def _fb(self, x, revealed, need_posterior):
        n, V, C = self.order, self.vocab_size, self.num_contexts
        R = V ** (n - 2)
        cond3 = self.conditional.reshape(V, R, V)  # (first token, rest, next)
        states = np.arange(C)
        digits = [self._digit(k, states) for k in range(min(x.shape[1], n - 1))]

        def fwd(k, a):
            if k < n - 1:
                return a
            return np.einsum("bar,arv->brv", a.reshape(-1, V, R), cond3).reshape(-1, C)

        def bwd(k, b):
            if k < n - 1:
                return b
            return np.einsum("arv,brv->bar", cond3, b.reshape(-1, R, V)).reshape(-1, C)

        def emit(k, tok):
            d = digits[k] if k < n - 1 else states % V
            return (d[None, :] == tok[:, None]).astype(np.float64)

        return forward_backward(x.shape[1], self.initial, fwd, bwd, emit, x, revealed, need_posterior=need_posterior)

    # ------------------------------------------------------------------ inference
    def log_prob(self, x):
        x = self._tokens(x)
        n, V = self.order, self.vocab_size
        L = x.shape[1]
        if L < n - 1:
            return self.log_prob_revealed(x, np.ones(x.shape, dtype=bool))
        ctx = np.zeros(x.shape[0], dtype=np.int64)
        for i in range(n - 1):
            ctx = ctx * V + x[:, i]
        with np.errstate(divide="ignore"):
            out = np.log(self.initial[ctx])
            mod = V ** (n - 2)
            for k in range(n - 1, L):
                out = out + np.log(self.conditional[ctx, x[:, k]])
                ctx = (ctx % mod) * V + x[:, k]
        return out

    def _reference_log_prob_revealed(self, x, revealed):
        x, revealed = self._tokens_and_mask(x, revealed)
        return self._fb(x, revealed, need_posterior=False)[0]

    def _reference_conditional_marginals(self, x, revealed):
        x, revealed = self._tokens_and_mask(x, revealed)
        log_ev, post = self._fb(x, revealed, need_posterior=True)
        B, L = x.shape
        V, C = self.vocab_size, self.num_contexts
        out = np.zeros((B, L, V))  # (batch, L, V)
        states = np.arange(C)
        for k in range(L):
            d = self._digit(k, states)
            onehot = np.zeros((C, V))
            onehot[states, d] = 1.0
            out[:, k, :] = post[:, k, :] @ onehot
        out[np.isneginf(log_ev)] = 1.0 / V
        rb, rk = np.nonzero(revealed)
        out[rb, rk, :] = 0.0
        out[rb, rk, x[rb, rk]] = 1.0
        return out

    def _chain(self):
        """Cached kernel arrays: digits (n-2, C), CSR (indptr, indices, data), last-digit emission (C, V)."""
        c = self.__dict__.get("_chain_cache")
        if c is None:
            n, V, C = self.order, self.vocab_size, self.num_contexts
            R = V ** (n - 2)
            states = np.arange(C)
            digits = np.array([(states // V ** (n - 2 - k)) % V for k in range(n - 2)], dtype=np.int64).reshape(n - 2, C)
            ctx, tok = np.nonzero(self.conditional)  # row-major: grouped by context
            indptr = np.zeros(C + 1, dtype=np.int64)  # (C+1,)
            np.add.at(indptr, ctx + 1, 1)
            indptr = np.cumsum(indptr)
            indices = ((ctx % R) * V + tok).astype(np.int64)  # (nnz,) successor contexts
            data = np.ascontiguousarray(self.conditional[ctx, tok])  # (nnz,)
            emis = np.zeros((C, V))  # (C, V) context c emits its last token
            emis[states, states % V] = 1.0
            tok_edge = np.full((C, V), -1, dtype=np.int64)  # (C, V) CSR edge of (context, next token)
            tok_edge[ctx, tok] = np.arange(ctx.size)
            c = (digits, indptr, indices, data, emis, tok_edge)
            self.__dict__["_chain_cache"] = c
        return c

    def log_prob_revealed(self, x, revealed):
        """Exact ``log q(x_R)``, shape (batch,); ``-inf`` when impossible (Numba kernel)."""
        from mdm_exact.languages._kernels import _chain_log_evidence

        x, revealed = self._tokens_and_mask(x, revealed)
        if x.shape[1] < self.order - 1:
            return self._fb(x, revealed, need_posterior=False)[0]
        digits, indptr, indices, data, emis, tok_edge = self._chain()
        out = np.empty(x.shape[0])  # (batch,)
        _chain_log_evidence(
            self.initial, digits, self.order - 2, indptr, indices, data, emis, tok_edge, x, revealed,
            np.zeros((0, 1, 1)), 2**62, out,
        )
        return out

    def conditional_marginals(self, x, revealed):
        """Exact ``q(x_i = v | x_R)``, shape (batch, L, V) (Numba kernel)."""
        from mdm_exact.languages._kernels import _chain_posterior

        x, revealed = self._tokens_and_mask(x, revealed)
        if x.shape[1] < self.order - 1:
            return self._reference_conditional_marginals(x, revealed)
        digits, indptr, indices, data, emis, tok_edge = self._chain()
        B, L = x.shape
        log_ev = np.empty(B)  # (batch,)
        out = np.empty((B, L, self.vocab_size))  # (batch, L, V)
        _chain_posterior(
            self.initial, digits, self.order - 2, indptr, indices, data, emis, tok_edge, x, revealed, log_ev, out
        )
        return out

    def prefix_conditionals(self, x, positions=None):
        """Exact ``q(x_i = . | x_{<i})``: the ``conditional`` row of the context from position ``n - 1`` on.

        The first ``n - 1`` positions (inside the initial context) use the base implementation;
        an impossible prefix gets the uniform law.
        """
        x = self._tokens(x)
        n, V = self.order, self.vocab_size
        B, L = x.shape
        out = np.empty((B, L, V))  # (batch, L, V)
        head = min(L, n - 1)
        out[:, :head] = Language.prefix_conditionals(self, x[:, :head])
        if L >= n:
            ctx = np.zeros(B, dtype=np.int64)  # (batch,) big-endian context of x_{k-n+1:k-1}
            for i in range(n - 1):
                ctx = ctx * V + x[:, i]
            ok = self.initial[ctx] > 0  # (batch,) the prefix so far is possible
            mod = V ** (n - 2)
            for k in range(n - 1, L):
                out[:, k] = np.where(ok[:, None], self.conditional[ctx], 1.0 / V)
                ok &= self.conditional[ctx, x[:, k]] > 0
                ctx = (ctx % mod) * V + x[:, k]
        return self._at_positions(x, out, positions)

    def in_support(self, x):
        x = self._tokens(x)
        n = self.order
        if x.shape[1] < n - 1:
            return np.isfinite(self.log_prob_revealed(x, np.ones(x.shape, dtype=bool)))
        V = self.vocab_size
        ctx = np.zeros(x.shape[0], dtype=np.int64)
        for i in range(n - 1):
            ctx = ctx * V + x[:, i]
        ok = self.initial[ctx] > 0
        mod = V ** (n - 2)
        for k in range(n - 1, x.shape[1]):
            ok &= self.conditional[ctx, x[:, k]] > 0
            ctx = (ctx % mod) * V + x[:, k]
        return ok

    def sample(self, n, L, *, rng=None):
        n_samples = as_count(n, "n")
        L = as_length(L)
        rng = np.random.default_rng(rng)
        n_, V = self.order, self.vocab_size
        u = rng.random((n_samples, 1 + max(L - (n_ - 1), 0)))  # (n, 1 + L - n + 1)
        ctx = inverse_cdf(self.initial, u[:, 0])  # (n,)
        x = np.empty((n_samples, max(L, n_ - 1)), dtype=np.int64)  # (n, max(L, n-1))
        for i in range(n_ - 1):
            x[:, i] = (ctx // V ** (n_ - 2 - i)) % V
        mod = V ** (n_ - 2)
        for k in range(n_ - 1, L):
            x[:, k] = inverse_cdf(self.conditional[ctx], u[:, 1 + k - (n_ - 1)])  # (n,)
            ctx = (ctx % mod) * V + x[:, k]
        return np.ascontiguousarray(x[:, :L])

    def context_marginals(self, L):
        """Law of the context window ending at each position ``k >= n-2`` (0-based), nothing revealed.

        Shape (L-n+2, V^(n-1)) (one row when ``L <= n-1``); row ``k+1`` is row ``k`` pushed
        through the conditional. Cached and grown on demand (read-only); the Monte Carlo
        engine takes its prior from here.
        """
        L = as_length(L)
        n, V, C = self.order, self.vocab_size, self.num_contexts
        rows = max(L - n + 2, 1)
        out = self.__dict__.get("_ctx_marg_cache")
        if out is None or out.shape[0] < rows:
            R = V ** (n - 2)
            cond3 = self.conditional.reshape(V, R, V)
            grown = [self.initial.copy()] if out is None else list(out)
            while len(grown) < rows:
                grown.append(np.einsum("ar,arv->rv", grown[-1].reshape(V, R), cond3).reshape(C))
            out = np.array(grown)  # (rows, C)
            out.setflags(write=False)
            self.__dict__["_ctx_marg_cache"] = out
        return out[:rows]

    def context_transition_powers(self, G, *, transposed=False):
        """Powers ``T^1 .. T^G`` of the context-chain transition, shape (G, C, C), C = V^(n-1).

        ``T[c, (c mod V^(n-2)) V + v] = conditional[c, v]``; ``T^g = T^(g-1) T``. Cached and
        grown on demand (read-only). ``transposed=True``: ``(T^g)^T``, each C-contiguous. The
        Monte Carlo engine jumps masked stretches of up to ``G`` positions with them (it chooses
        ``G`` within its memory limit).
        """
        G = as_count(G, "G")
        P = self.__dict__.get("_ctx_power_cache")
        if P is None or P.shape[0] < G:
            C, V = self.conditional.shape
            R = C // V
            T = np.zeros((C, C))  # (C, C)
            cols = (np.arange(C) % R)[:, None] * V + np.arange(V)[None, :]  # (C, V)
            T[np.arange(C)[:, None], cols] = self.conditional
            old = 0 if P is None else P.shape[0]
            newP = np.empty((G, C, C))  # (G, C, C)
            if old:
                newP[:old] = P
            else:
                newP[0] = T
            for g in range(max(old, 1), G):
                newP[g] = newP[g - 1] @ T
            newP.setflags(write=False)
            P = self.__dict__["_ctx_power_cache"] = newP
        if not transposed:
            return P[:G]
        PT = self.__dict__.get("_ctx_power_t_cache")
        if PT is None or PT.shape[0] < G:
            PT = np.ascontiguousarray(P[:G].transpose(0, 2, 1))  # (G, C, C)
            PT.setflags(write=False)
            self.__dict__["_ctx_power_t_cache"] = PT
        return PT[:G]

    def entropy(self, L):
        """Exact ``H(q)`` over length ``L`` in nats: ``H(initial) + sum_k E[H(conditional[c_k])]``."""
        from scipy.special import entr

        L = as_length(L)
        n, V = self.order, self.vocab_size
        if L < n - 1:
            marg = self.initial.reshape((V ** L, -1)).sum(axis=1)
            return float(entr(marg).sum())
        row_h = entr(self.conditional).sum(axis=1)  # (C,)
        ctx = self.context_marginals(L)  # (L-n+2, C)
        return float(entr(self.initial).sum() + (ctx[:-1] @ row_h).sum())

    def support_size(self, L):
        """Exact ``|supp q|`` over length ``L`` (Python int), by a counting DP over contexts.

        The context determines the next state, so ``count[c]`` = number of prefixes with
        ``q > 0`` ending in context ``c`` is propagated along the (at most ``V``) successors
        with positive probability; exact integer arithmetic, no enumeration.
        """
        L = as_length(L)
        n, V = self.order, self.vocab_size
        if L < n - 1:
            marg = self.initial.reshape((V**L, -1)).sum(axis=1)
            return int(np.count_nonzero(marg))
        _, indptr, indices, _, _, _ = self._chain()
        counts = (self.initial > 0).astype(np.int64).astype(object)  # (C,) exact ints
        src = np.repeat(np.arange(self.num_contexts), np.diff(indptr))  # (nnz,) source context of each edge
        for _ in range(n - 1, L):
            new = np.zeros(self.num_contexts, dtype=object)
            np.add.at(new, indices, counts[src])
            counts = new
        return int(counts.sum())

    def entropy_rate(self, *, rng=None, max_steps=100_000, tol=1e-13) -> EntropyRate:
        """Exact entropy rate ``lim H(q_L)/L`` in nats (``rng`` is accepted and unused).

        ``H(q_L) = H(initial) + sum_k E[H(conditional[c_k])]`` (exact, :meth:`entropy`), so
        the rate is the Cesaro limit of ``E[H(conditional[c_k])]`` under the context marginals
        ``c_k``. They are propagated (``O(V^n)`` per step) until successive Cesaro averages
        over blocks of 64 steps change by less than ``tol``; periodic chains are handled by
        the averaging. When ``max_steps`` steps do not meet ``tol``, the last block average is
        returned with ``converged=False``.
        """
        from scipy.special import entr

        max_steps = as_count(max_steps, "max_steps")
        n, V, C = self.order, self.vocab_size, self.num_contexts
        R = V ** (n - 2)
        cond3 = self.conditional.reshape(V, R, V)
        row_h = entr(self.conditional).sum(axis=1)  # (C,)
        m = self.initial.copy()
        prev = None
        block = 64
        method = "exact (Cesaro limit of the context marginals)"
        for start in range(0, max_steps, block):
            acc = 0.0
            for _ in range(block):
                acc += float(m @ row_h)
                m = np.einsum("ar,arv->rv", m.reshape(V, R), cond3).reshape(C)
            avg = acc / block
            if prev is not None and abs(avg - prev) < tol:
                return EntropyRate(avg, 0.0, True, method)
            prev = avg
        return EntropyRate(prev, 0.0, False, method + f", NOT converged to {tol:g} in {max_steps} steps")

    def describe(self):
        return {
            "kind": self.kind,
            "order": self.order,
            "vocab_size": self.vocab_size,
            "num_contexts": self.num_contexts,
            "conditional_zero_fraction": float(np.mean(self.conditional == 0)),
            "initial_zero_fraction": float(np.mean(self.initial == 0)),
        }
