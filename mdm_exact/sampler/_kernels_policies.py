"""Numba kernels of the adaptive-policy Monte Carlo engine (``mdm_exact.sampler.adaptive_mc``).

Two package imports: THE lined-up HMM forward-backward
(``mdm_exact.languages._kernels_aligned._hmm_aligned_chunk``) and THE sparse-chain posterior of one
sequence (``mdm_exact.languages._kernels._chain_posterior_row``, which also serves
``NGram.conditional_marginals``). Each kernel has a NumPy twin in
``adaptive_mc`` (tests compare them with the same uniforms). Policy codes (constants passed as arguments):

* score: 0 random, 1 confidence, 2 margin, 3 entropy, 4 llada;
* count: 0 fixed sizes (``sizes[k]``, also the balanced block sizes), 1 binomial (``r[k]``),
  2 threshold, 3 eb.

The HMM kernel runs the sequences of a fixed chunk *lined up*: at every step one
forward-backward over all positions for the whole chunk, each position a matrix-matrix product
``(chunk, S) @ (S, S)`` (BLAS through ``np.dot``), so the conditionals at every candidate cost
``4 L S^2`` flops per sequence and step at GEMM speed.

The chain kernel (n-grams with more contexts than a dense product pays for: the 3- and 4-gram
of Table 1) runs each sequence on its own (``prange`` over sequences) with the sparse
alive-state forward-backward of the n-gram's own ``conditional_marginals``, computed only at the
steps where that sequence reveals something; its conditionals are bitwise those of
``NGram.conditional_marginals``, so it draws the same samples as the reference loop.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from mdm_exact.languages._kernels import _chain_posterior_row
from mdm_exact.languages._kernels_aligned import _hmm_aligned_chunk


@njit(cache=True)
def _binomial_count(n, r, u):
    """Inverse-CDF draw of Binomial(n, r) from ``u`` (the twin of ``policies._binomial_count_scalar``)."""
    if n == 0 or r <= 0.0:
        return 0
    if r >= 1.0:
        return n
    lr = math.log(r)
    l1r = math.log1p(-r)
    lgn = math.lgamma(n + 1.0)
    acc = 0.0
    for j in range(n + 1):
        acc += math.exp(lgn - math.lgamma(j + 1.0) - math.lgamma(n - j + 1.0) + j * lr + (n - j) * l1r)
        if u < acc:
            return j
    return n


@njit(cache=True)
def _draw_token(c, temperature, atol, u, w):
    """Inverse-CDF draw from ``c^(1/T)`` renormalised (T = 0: argmax, ties within ``atol`` to the
    lowest id); ``c`` (V,), scratch ``w`` (V,). Twin of ``policies.token_law`` + ``draw_tokens``."""
    V = c.shape[0]
    cmax = c[0]
    for v in range(1, V):
        if c[v] > cmax:
            cmax = c[v]
    if temperature == 0.0:
        for v in range(V):
            if c[v] >= cmax - atol:
                return v
        return V - 1
    if temperature == 1.0:
        for v in range(V):
            w[v] = c[v]
    else:
        lm = math.log(cmax)
        tot = 0.0
        for v in range(V):
            w[v] = math.exp((math.log(c[v]) - lm) / temperature) if c[v] > 0.0 else 0.0
            tot += w[v]
        for v in range(V):
            w[v] = w[v] / tot
    total = 0.0
    for v in range(V):
        total += w[v]
    thr = u * total
    acc = 0.0
    for v in range(V):
        acc += w[v]
        if acc > thr:
            return v
    for v in range(V - 1, -1, -1):  # u * total rounded above the last cumulative value
        if w[v] > 0.0:
            return v
    return V - 1


@njit(cache=True)
def _score(c, score, tok):
    """Score of one position from its untempered conditional ``c`` (V,)."""
    V = c.shape[0]
    if score == 1:
        m = c[0]
        for v in range(1, V):
            if c[v] > m:
                m = c[v]
        return m
    if score == 2:
        a = -1.0
        b = 0.0
        for v in range(V):
            if c[v] > a:
                b = a
                a = c[v]
            elif c[v] > b:
                b = c[v]
        if b < 0.0:
            b = 0.0
        return a - b
    if score == 3:
        h = 0.0
        for v in range(V):
            if c[v] > 0.0:
                h += c[v] * math.log(c[v])
        return h  # -H
    return c[tok]  # llada


@njit(cache=True)
def _greedy_pick(s, left, L, atol):
    """Index of the greedy pick among ``left`` (bool (L,)): lowest index within ``atol`` of the best."""
    best = -np.inf
    any_left = False
    for i in range(L):
        if left[i] and (not any_left or s[i] > best):
            best = s[i]
            any_left = True
    if not any_left:
        return -1
    for i in range(L):
        if left[i] and s[i] >= best - atol:
            return i
    return -1


@njit(cache=True)
def _candidates(rev, block_length, left):
    """Mark in ``left`` (bool (L,)) the candidates, the masked positions of the leftmost unfinished
    block (all masked positions when ``block_length`` is 0); returns their number."""
    L = rev.shape[0]
    nc = 0
    blk = -1
    for i in range(L):
        left[i] = False
        if not rev[i]:
            if block_length > 0:
                if blk < 0:
                    blk = i // block_length
                if i // block_length != blk:
                    continue
            left[i] = True
            nc += 1
    return nc


@njit(cache=True)
def _select_row(cond, rev, xrow, k, score, count, sizes, rprobs, gamma, block_length, temperature, atol,
                u_tok, u_order, u_count, s, left, tok, w, chosen):
    """One step of the policy for one sequence: updates ``xrow`` and ``rev`` in place.

    ``cond`` (L, V) conditionals; returns the number of positions revealed. Twin of
    ``Policy.select``.
    """
    L = rev.shape[0]
    nc = _candidates(rev, block_length, left)
    for i in range(L):
        chosen[i] = False
    if nc == 0:
        return 0
    if count == 0:
        m = sizes[k] if sizes[k] < nc else nc
    elif count == 1:
        m = _binomial_count(nc, rprobs[k], u_count)
    else:
        m = -1
    if m == 0:
        return 0
    if score == 4:  # llada: a draw at every candidate first; the chosen ones keep theirs
        for i in range(L):
            if left[i]:
                tok[i] = _draw_token(cond[i], temperature, atol, u_tok[i], w)
    n_rev = 0
    if count == 2:  # threshold on the confidence
        for i in range(L):
            if left[i]:
                s[i] = _score(cond[i], 1, 0)
                if s[i] >= gamma - atol:
                    chosen[i] = True
                    n_rev += 1
        if n_rev == 0:
            chosen[_greedy_pick(s, left, L, atol)] = True
            n_rev = 1
    elif count == 3:  # EB: entropy ascending, largest prefix with sum H - max H <= gamma
        for i in range(L):
            if left[i]:
                s[i] = _score(cond[i], 3, 0)
        tot = 0.0
        mx = 0.0
        while True:
            i = _greedy_pick(s, left, L, atol)
            if i < 0:
                break
            h = -s[i]
            t2 = tot + h
            m2 = mx if mx > h else h
            if n_rev > 0 and t2 - m2 > gamma + atol:
                break
            tot = t2
            mx = m2
            chosen[i] = True
            left[i] = False
            n_rev += 1
    elif score == 0:  # random: the m smallest keys (ties to the lower index)
        for p in range(m):
            best = -1
            for i in range(L):
                if left[i] and (best < 0 or u_order[i] < u_order[best]):
                    best = i
            chosen[best] = True
            left[best] = False
        n_rev = m
    else:
        for i in range(L):
            if left[i]:
                s[i] = _score(cond[i], score, tok[i])
        for p in range(m):
            i = _greedy_pick(s, left, L, atol)
            chosen[i] = True
            left[i] = False
        n_rev = m
    for i in range(L):
        if chosen[i]:
            # one uniform per position: the draw of a non-chosen position is never used
            xrow[i] = tok[i] if score == 4 else _draw_token(cond[i], temperature, atol, u_tok[i], w)
            rev[i] = True
    return n_rev


@njit(cache=True)
def _row_needs(rev_row, k, count, sizes, rprobs, block_length, u_count_k, left):
    """Whether one sequence reveals a position at step ``k``: it has a candidate and the step's
    count is not 0 (``threshold``/``eb`` always reveal one at least); ``left`` (L,) scratch."""
    nc = _candidates(rev_row, block_length, left)
    if nc == 0:
        return False
    if count == 0:
        return sizes[k] > 0
    if count == 1:
        return _binomial_count(nc, rprobs[k], u_count_k) > 0
    return True


# THE lined-up forward-backward (one BLAS product per position), shared with
# HMM.conditional_marginals: built once in mdm_exact.languages._kernels_aligned.
_hmm_conditionals_chunk = _hmm_aligned_chunk


@njit(cache=True, parallel=True)
def _hmm_policy_run(pi, A, AT, B, BT, score, count, sizes, rprobs, gamma, block_length, temperature, atol,
                    num_steps, chunk, u_tok, u_order, u_count, x_out, nfe_out):
    """Adaptive-policy sampler on an HMM, chunk by chunk (``prange`` over fixed chunks).

    u_tok (n_tok, n, L): token uniforms (``n_tok = num_steps`` for llada, else 1);
    u_order (n, L) random-order keys; u_count (num_steps, n) binomial-count uniforms;
    x_out (n, L) i8 and nfe_out (n,) i8 written. Rows ``[c * chunk, (c + 1) * chunk)`` form
    chunk ``c``; no result depends on the thread count.
    """
    n, L = x_out.shape
    S = pi.shape[0]
    V = B.shape[1]
    n_tok = u_tok.shape[0]
    n_chunks = (n + chunk - 1) // chunk
    for c in prange(n_chunks):
        r0 = c * chunk
        r1 = min(n, r0 + chunk)
        m = r1 - r0
        alpha = np.empty((L, m, S))
        beta = np.empty((2, m, S))
        post = np.empty((m, S))
        cV = np.empty((m, V))
        cond = np.empty((m, L, V))
        dead = np.zeros(m, dtype=np.bool_)
        x = np.zeros((m, L), dtype=np.int64)
        rev = np.zeros((m, L), dtype=np.bool_)
        nfe = np.zeros(m, dtype=np.int64)
        s = np.empty(L)
        left = np.empty(L, dtype=np.bool_)
        chosen = np.empty(L, dtype=np.bool_)
        tok = np.zeros(L, dtype=np.int64)
        w = np.empty(V)
        for k in range(num_steps):
            # which rows reveal something at this step (the network is called only for them)
            need = False
            for b in range(m):
                if _row_needs(rev[b], k, count, sizes, rprobs, block_length, u_count[k, r0 + b], left):
                    need = True
                    break
            if not need:
                continue
            _hmm_conditionals_chunk(pi, A, AT, B, BT, x, rev, alpha, beta, post, cV, cond, dead, 1e-100)
            kt = k if n_tok > 1 else 0
            for b in range(m):
                got = _select_row(cond[b], rev[b], x[b], k, score, count, sizes, rprobs, gamma, block_length,
                                  temperature, atol, u_tok[kt, r0 + b], u_order[r0 + b], u_count[k, r0 + b],
                                  s, left, tok, w, chosen)
                if got > 0:
                    nfe[b] += 1
        for b in range(m):
            nfe_out[r0 + b] = nfe[b]
            for i in range(L):
                x_out[r0 + b, i] = x[b, i]


@njit(cache=True)
def _chain_refresh(init, ones, digits, h, indptr, indices, data, emis, tok_edge, x, rev, fresh, all_dirty, cond, pin, cum,
                   alive, val, cnt, stamp, acc, beta, beta_prev, post):
    """Bring ``cond`` (L, V) up to date with ``q(x_i | x_R)`` after the reveals flagged in ``fresh``
    (all of it when ``all_dirty``); returns False when ``x_R`` is impossible (then ``cond`` is
    uniform at masked and one-hot at revealed positions, as in the full posterior).

    A run of ``h + 1`` revealed tokens ending at ``p`` (a pin) fixes the chain's state there, so
    the posterior falls apart into segments between consecutive pins (the pins' windows
    included at both ends), and only the segments holding a fresh reveal are recomputed, each by
    :func:`_chain_posterior_row` on its slice (chain start ``h``: the pinned context; the first
    segment starts with the n-gram's own ``init``, the others with ``ones``). The state at a pin
    is a single alive context with forward value ``1.0`` and backward value ``1.0`` after
    normalisation in the full pass as well, so every recomputed value is bitwise the full
    posterior's (tests compare the samples with the reference loop)."""
    L = x.shape[0]
    V = emis.shape[1]
    run = 0
    cum[0] = 0
    for p in range(L):
        run = run + 1 if rev[p] else 0
        pin[p] = p >= h and run >= h + 1
        cum[p + 1] = cum[p] + (1 if (all_dirty or fresh[p]) else 0)
    a = 0
    first = True
    ok = True
    while ok:
        b = L - 1  # segment [a, b]: ends at the next pin after the window that starts it, or at L - 1
        q = a + h + 1 if not first else h
        while q < L:
            if pin[q]:
                b = q
                break
            q += 1
        if cum[b + 1] - cum[a] > 0:
            m = b - a + 1
            lg = _chain_posterior_row(init if first else ones, digits, h, indptr, indices, data, emis, tok_edge, x[a:b + 1],
                                      rev[a:b + 1], cond[a:b + 1], alive[:m], val[:m], cnt[:m], stamp, acc, beta, beta_prev,
                                      post)
            if lg == -np.inf:
                ok = False
        if b >= L - 1:
            break
        a = b - h
        first = False
    if not ok:
        for i in range(L):
            for v in range(V):
                cond[i, v] = 1.0 / V
            if rev[i]:
                for v in range(V):
                    cond[i, v] = 0.0
                cond[i, x[i]] = 1.0
    return ok


@njit(cache=True, parallel=True)
def _chain_policy_run(init, digits, start, indptr, indices, data, emis, tok_edge, score, count, sizes, rprobs, gamma,
                      block_length, temperature, atol, num_steps, u_tok, u_order, u_count, x_out, nfe_out):
    """Adaptive-policy sampler on a sparse chain (an n-gram's ``_chain()``, chain start ``start = n - 2``),
    one sequence per ``prange`` iteration; the conditionals are refreshed segment by segment
    (:func:`_chain_refresh`). Uniform layout as :func:`_hmm_policy_run`; x_out (n, L) i8 and nfe_out
    (n,) i8 written. No result depends on the thread count (rows are independent)."""
    n, L = x_out.shape
    S = init.shape[0]
    V = emis.shape[1]
    n_tok = u_tok.shape[0]
    ones = np.ones(S)
    for b in prange(n):
        alive = np.empty((L, S), dtype=np.int64)
        val = np.empty((L, S))
        cnt = np.zeros(L, dtype=np.int64)
        stamp = np.empty(S, dtype=np.int64)
        acc = np.empty(S)
        beta = np.empty(S)
        beta_prev = np.empty(S)
        post = np.empty(S)
        cond = np.empty((L, V))
        x = np.zeros(L, dtype=np.int64)
        rev = np.zeros(L, dtype=np.bool_)
        s = np.empty(L)
        left = np.empty(L, dtype=np.bool_)
        chosen = np.empty(L, dtype=np.bool_)
        tok = np.zeros(L, dtype=np.int64)
        w = np.empty(V)
        fresh = np.zeros(L, dtype=np.bool_)
        was = np.zeros(L, dtype=np.bool_)
        pin = np.zeros(L, dtype=np.bool_)
        cum = np.zeros(L + 1, dtype=np.int64)
        nfe = 0
        alive_row = True  # x_R possible so far (once impossible, always: cond stays uniform)
        started = False
        for k in range(num_steps):
            if not _row_needs(rev, k, count, sizes, rprobs, block_length, u_count[k, b], left):
                continue
            if alive_row:
                for i in range(L):
                    fresh[i] = rev[i] and not was[i]
                    was[i] = rev[i]
                alive_row = _chain_refresh(init, ones, digits, start, indptr, indices, data, emis, tok_edge, x, rev, fresh,
                                           not started, cond, pin, cum, alive, val, cnt, stamp, acc, beta, beta_prev, post)
                started = True
            kt = k if n_tok > 1 else 0
            got = _select_row(cond, rev, x, k, score, count, sizes, rprobs, gamma, block_length, temperature, atol,
                              u_tok[kt, b], u_order[b], u_count[k, b], s, left, tok, w, chosen)
            if got > 0:
                nfe += 1
        nfe_out[b] = nfe
        for i in range(L):
            x_out[b, i] = x[i]
