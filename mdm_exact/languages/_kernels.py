"""Numba kernels for exact inference in sparse hidden chains (HMM and n-gram languages).

Kernels are thin: no validation, no Python objects, results written into ``out`` arrays that
the wrappers (``mdm_exact.languages.hmm`` / ``ngram``) allocate. Their NumPy reference is
``mdm_exact.languages._forward_backward`` (the test oracle); the inverse-CDF draw
``_inverse_cdf`` (also used by ``mdm_exact.sampler._kernels_mc``) has its twin in
``mdm_exact.languages._draw``. Numba's cache is keyed on each file: after editing
``_inverse_cdf``, clear ``mdm_exact/sampler/__pycache__/*.nb*`` too (or touch
``sampler/_kernels_mc.py``) so that the Monte Carlo kernels recompile against it.

A *chain* is given by

* ``init`` (S,) the law of the state at position ``start``;
* ``digits`` (start, S): for the ``start`` positions before ``start`` (n-gram only: the first
  ``n - 2`` tokens are digits of the initial context), the token that state ``s`` carries at
  that position; empty for an HMM;
* the transition in CSR form (``indptr``, ``indices``, ``data``) holding only the non-zero
  entries (threshold pruning makes these sparse; an n-gram context has at most ``V``
  successors, so the ``V^(n-1) x V^(n-1)`` matrix is never built);
* ``emis`` (S, V) the emission matrix (for an n-gram, the 0/1 "last digit" indicator).

Sparsity is exploited twice: forward messages are kept as lists of *alive* states (states
that can be occupied given the revealed tokens so far, decided structurally from the zero
pattern), and a step only visits the CSR rows of alive states. When ``n - 1`` consecutive
tokens of an n-gram are revealed, a single context is alive and a step costs ``O(1)``: the
chain falls apart into independent pieces without special casing. The backward pass only
computes messages for alive states.

``_chain_log_evidence`` additionally jumps over runs of masked positions with cached dense
powers ``A^m`` (HMM only), and stops at the last revealed position (the masked tail has
probability one).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _start_alive(init, digits, emis, xb, rb, start, alive, val):
    # init (S,) f8; digits (start, S) i8; emis (S, V) f8; xb (L,) i8; rb (L,) b1; alive (S,) i8 out; val (S,) f8 out
    S = init.shape[0]
    n = 0
    for s in range(S):
        w = init[s]
        if w == 0.0:
            continue
        ok = True
        for k in range(start):
            if rb[k] and digits[k, s] != xb[k]:
                ok = False
                break
        if not ok:
            continue
        if rb[start]:
            w = w * emis[s, xb[start]]
            if w == 0.0:
                continue
        alive[n] = s
        val[n] = w
        n += 1
    return n


@njit(cache=True)
def _step_alive(k, na, alive_a, val_a, indptr, indices, data, emis, tok_edge, rev, tok, stamp, acc, alive_b, val_b):
    # One forward step from the alive list (alive_a, val_a) at k-1 to (alive_b, val_b) at k; returns count.
    # tok_edge (S, V) i8: for deterministic emissions (n-gram), the CSR edge from s to the unique
    # successor emitting v (-1: none), so a revealed step costs O(1) per alive state; (0, 0): unused.
    nb = 0
    direct = rev and tok_edge.shape[0] > 0
    for i in range(na):
        s = alive_a[i]
        a = val_a[i]
        if direct:
            j = tok_edge[s, tok]
            if j >= 0:
                t = indices[j]
                if stamp[t] != k:
                    stamp[t] = k
                    acc[t] = 0.0
                    alive_b[nb] = t
                    nb += 1
                acc[t] += a * data[j] * emis[t, tok]
            continue
        for j in range(indptr[s], indptr[s + 1]):
            t = indices[j]
            w = a * data[j]
            if rev:
                e = emis[t, tok]
                if e == 0.0:
                    continue
                w = w * e
            if stamp[t] != k:
                stamp[t] = k
                acc[t] = 0.0
                alive_b[nb] = t
                nb += 1
            acc[t] += w
    for i in range(nb):
        val_b[i] = acc[alive_b[i]]
    return nb


@njit(cache=True)
def _normalise(n, val):
    # val (>= n,) f8, normalised in place; returns the total (0 when nothing is alive)
    c = 0.0
    for i in range(n):
        c += val[i]
    if c > 0.0:
        for i in range(n):
            val[i] = val[i] / c
    return c


@njit(cache=True, parallel=True)
def _chain_log_evidence(init, digits, start, indptr, indices, data, emis, tok_edge, x, revealed, powers, jump_min, out):
    # init (S,) f8; digits (start, S) i8; indptr (S+1,) i8; indices (nnz,) i8; data (nnz,) f8; emis (S, V) f8
    # x (B, L) i8; revealed (B, L) b1; powers (G, S, S) f8 with powers[m] = A^m (G = 0: none); out (B,) f8
    B, L = x.shape
    S = init.shape[0]
    G = powers.shape[0]
    for b in prange(B):
        xb = x[b]
        rb = revealed[b]
        alive_a = np.empty(S, dtype=np.int64)
        alive_b = np.empty(S, dtype=np.int64)
        val_a = np.empty(S)
        val_b = np.empty(S)
        stamp = np.full(S, -1, dtype=np.int64)
        acc = np.zeros(S)
        na = _start_alive(init, digits, emis, xb, rb, start, alive_a, val_a)
        c = _normalise(na, val_a)
        dead = na == 0 or c == 0.0
        log_c = 0.0 if dead else np.log(c)
        p = start
        while not dead:
            q = p + 1  # next revealed position
            while q < L and not rb[q]:
                q += 1
            if q >= L:
                break  # the masked tail has probability one
            m = q - p
            if m >= jump_min and m < G:
                # jump over the masked run: alpha_q = alpha_p A^m (dense power), then emit x_q
                tok = xb[q]
                nb = 0
                for t in range(S):
                    e = emis[t, tok]
                    if e == 0.0:
                        continue
                    w = 0.0
                    hit = False
                    for i in range(na):
                        pw = powers[m, alive_a[i], t]
                        if pw != 0.0:
                            hit = True
                            w += val_a[i] * pw
                    if hit:
                        alive_b[nb] = t
                        val_b[nb] = w * e
                        nb += 1
                p = q
            else:
                k = p + 1
                nb = _step_alive(k, na, alive_a, val_a, indptr, indices, data, emis, tok_edge, rb[k], xb[k], stamp, acc, alive_b, val_b)
                p = k
            c = _normalise(nb, val_b)
            if nb == 0 or c == 0.0:
                dead = True
                break
            log_c += np.log(c)
            na = nb
            alive_a, alive_b = alive_b, alive_a
            val_a, val_b = val_b, val_a
        out[b] = -np.inf if dead else log_c


@njit(cache=True)
def _chain_posterior_row(init, digits, start, indptr, indices, data, emis, tok_edge, xb, rb, mb, alive, val, cnt, stamp,
                         acc, beta, beta_prev, post):
    """One row of :func:`_chain_posterior`: ``mb`` (L, V) written with ``q(x_k = v | x_R)``; returns
    ``log q(x_R)`` (-inf: impossible, then ``mb`` is uniform at masked and one-hot at revealed
    positions). Scratch (reset here): ``alive`` (L, S) i8, ``val`` (L, S), ``cnt`` (L,) i8,
    ``stamp`` (S,) i8, ``acc``, ``beta``, ``beta_prev``, ``post`` (S,). Shared with the
    adaptive-policy kernel (``mdm_exact.sampler._kernels_policies``)."""
    L = xb.shape[0]
    S = init.shape[0]
    V = emis.shape[1]
    for s in range(S):
        stamp[s] = -1
        acc[s] = 0.0
    for k in range(L):
        cnt[k] = 0
    na = _start_alive(init, digits, emis, xb, rb, start, alive[start], val[start])
    c = _normalise(na, val[start])
    dead = na == 0 or c == 0.0
    log_c = 0.0 if dead else np.log(c)
    cnt[start] = na
    k = start + 1
    while not dead and k < L:
        nb = _step_alive(
            k, cnt[k - 1], alive[k - 1], val[k - 1], indptr, indices, data, emis, tok_edge, rb[k], xb[k], stamp, acc, alive[k], val[k]
        )
        c = _normalise(nb, val[k])
        cnt[k] = nb
        if nb == 0 or c == 0.0:
            dead = True
        else:
            log_c += np.log(c)
        k += 1
    for k in range(L):
        for v in range(V):
            mb[k, v] = 0.0
    if dead:
        for k in range(L):
            if rb[k]:
                mb[k, xb[k]] = 1.0
            else:
                for v in range(V):
                    mb[k, v] = 1.0 / V
        return -np.inf
    for i in range(cnt[L - 1]):
        beta[alive[L - 1, i]] = 1.0
    for k in range(L - 1, start - 1, -1):
        n = cnt[k]
        z = 0.0
        for i in range(n):
            g = val[k, i] * beta[alive[k, i]]
            post[i] = g
            z += g
        if z == 0.0:  # only by float underflow of a possible context; avoid 0/0
            z = 1.0
        if rb[k]:
            mb[k, xb[k]] = 1.0
        else:
            for i in range(n):
                g = post[i] / z
                if g == 0.0:
                    continue
                s = alive[k, i]
                for v in range(V):
                    e = emis[s, v]
                    if e != 0.0:
                        mb[k, v] += g * e
        if k == start:
            for kk in range(start):
                if rb[kk]:
                    mb[kk, xb[kk]] = 1.0
                else:
                    for i in range(n):
                        mb[kk, digits[kk, alive[k, i]]] += post[i] / z
            break
        # backward message at k-1, only on states alive there
        rev = rb[k]
        tok = xb[k]
        direct = rev and tok_edge.shape[0] > 0
        mx = 0.0
        for i in range(cnt[k - 1]):
            s = alive[k - 1, i]
            w = 0.0
            if direct:
                j = tok_edge[s, tok]
                if j >= 0:
                    t = indices[j]
                    w = data[j] * emis[t, tok] * beta[t]
                beta_prev[s] = w
                if w > mx:
                    mx = w
                continue
            for j in range(indptr[s], indptr[s + 1]):
                t = indices[j]
                e = 1.0
                if rev:
                    e = emis[t, tok]
                    if e == 0.0:
                        continue
                w += data[j] * e * beta[t]
            beta_prev[s] = w
            if w > mx:
                mx = w
        if mx > 0.0:
            for i in range(cnt[k - 1]):
                s = alive[k - 1, i]
                beta_prev[s] = beta_prev[s] / mx
        beta, beta_prev = beta_prev, beta
    return log_c


@njit(cache=True, parallel=True)
def _chain_posterior(init, digits, start, indptr, indices, data, emis, tok_edge, x, revealed, log_ev, marg):
    # log_ev (B,) f8 out; marg (B, L, V) f8 out: q(x_k = v | x_R); rows in parallel (_chain_posterior_row)
    B, L = x.shape
    S = init.shape[0]
    for b in prange(B):
        alive = np.empty((L, S), dtype=np.int64)  # (L, S) alive states per position (first cnt[k])
        val = np.empty((L, S))  # (L, S) normalised forward messages on them
        log_ev[b] = _chain_posterior_row(init, digits, start, indptr, indices, data, emis, tok_edge, x[b], revealed[b],
                                         marg[b], alive, val, np.zeros(L, dtype=np.int64), np.full(S, -1, dtype=np.int64),
                                         np.zeros(S), np.empty(S), np.empty(S), np.empty(S))


@njit(cache=True, parallel=True)
def _chain_sample(init, data, row_idx, indptr, emis, u, out_states, out_tokens):
    # init (S,) f8; data (nnz,) f8 CSR transition weights; row_idx (nnz,) i8 targets; indptr (S+1,) i8;
    # emis (S, V) f8; u (n, L, 2) f8 uniforms (state, token); out_states/out_tokens (n, L) i8
    n, L, _ = u.shape
    S = init.shape[0]
    V = emis.shape[1]
    for i in prange(n):
        s = _inverse_cdf(init, 0, S, u[i, 0, 0])
        for k in range(L):
            if k > 0:
                j = _inverse_cdf(data, indptr[s], indptr[s + 1], u[i, k, 0])
                s = row_idx[j]
            out_states[i, k] = s
            out_tokens[i, k] = _inverse_cdf(emis[s], 0, V, u[i, k, 1])


@njit(cache=True)
def _inverse_cdf(w, lo, hi, thr):
    # THE inverse-CDF draw (NumPy twin: mdm_exact.languages._draw.inverse_cdf). w (>= hi,) f8
    # non-negative weights; returns the first j in [lo, hi) whose running sum w[lo] + ... + w[j]
    # exceeds thr; if none does (thr within rounding of the total), the last j in [lo, hi) with
    # w[j] > 0 (hi - 1 when all are zero). For a probability row thr is a uniform; for
    # unnormalised weights thr = u * total.
    acc = 0.0
    for j in range(lo, hi):
        acc += w[j]
        if acc > thr:
            return j
    for j in range(hi - 1, lo - 1, -1):
        if w[j] > 0.0:
            return j
    return hi - 1


# --------------------------------------------------------------------------------------------
# Dense-row variants for small or dense state spaces (HMM.kernel "dense"): rows of A are
# a few SIMD vectors, so an axpy over a whole row beats a CSR walk; sparsity is still used by
# skipping every state whose forward (or backward) weight is exactly zero, which is where the
# pruned emissions and transitions bite.


@njit(cache=True, parallel=True)
def _dense_log_evidence(init, A, BT, powers, x, revealed, out):
    # init (S,) f8; A (S, S) f8; BT (V, S) f8 emission transposed; powers (G, S, S) f8, powers[m] = A^m
    # x (B, L) i8; revealed (B, L) b1; out (B,) f8
    # Visits revealed positions only: a run of m - 1 masked positions between revealed positions
    # p and q = p + m is one product with A^m when m < G (else m single steps); the masked tail
    # after the last revealed position is skipped (probability one).
    B, L = x.shape
    S = init.shape[0]
    G = powers.shape[0]
    for b in prange(B):
        a = np.empty(S)
        nw = np.empty(S)
        for s in range(S):
            a[s] = init[s]
        log_c = 0.0
        p = 0
        for q in range(L):
            if not revealed[b, q]:
                continue
            m = q - p
            if m > 0 and m < G:
                for t in range(S):
                    nw[t] = 0.0
                for s in range(S):
                    w = a[s]
                    if w != 0.0:
                        for t in range(S):
                            nw[t] += w * powers[m, s, t]
                a, nw = nw, a
            else:
                for _ in range(m):
                    for t in range(S):
                        nw[t] = 0.0
                    for s in range(S):
                        w = a[s]
                        if w != 0.0:
                            for t in range(S):
                                nw[t] += w * A[s, t]
                    a, nw = nw, a
            tok = x[b, q]
            c = 0.0
            for t in range(S):
                a[t] *= BT[tok, t]
                c += a[t]
            if c == 0.0:
                log_c = -np.inf
                break
            for t in range(S):
                a[t] = a[t] / c
            log_c += np.log(c)
            p = q
        out[b] = log_c


@njit(cache=True, parallel=True)
def _dense_posterior(init, A, AT, B_, BT, x, revealed, log_ev, marg):
    # init (S,) f8; A, AT (S, S) f8; B_ (S, V) f8; BT (V, S) f8; x (B, L) i8; revealed (B, L) b1
    # log_ev (B,) f8 out; marg (B, L, V) f8 out
    Bn, L = x.shape
    S = init.shape[0]
    V = B_.shape[1]
    for b in prange(Bn):
        alpha = np.empty((L, S))  # (L, S) normalised forward messages
        log_ev[b] = _dense_forward(init, A, BT, x[b], revealed[b], alpha)
        _dense_backward(alpha, AT, B_, BT, x[b], revealed[b], log_ev[b] == -np.inf, marg[b])


@njit(cache=True)
def _dense_forward(init, A, BT, xb, rb, alpha):
    # fills alpha (L, S) with forward messages, normalised at revealed positions (masked steps
    # keep the mass); returns log q(x_R), exactly -inf when impossible
    L, S = alpha.shape
    log_c = 0.0
    for s in range(S):
        alpha[0, s] = init[s]
    for k in range(L):
        if k > 0:
            for t in range(S):
                alpha[k, t] = 0.0
            for s in range(S):
                w = alpha[k - 1, s]
                if w != 0.0:
                    for t in range(S):
                        alpha[k, t] += w * A[s, t]
        if rb[k]:
            tok = xb[k]
            c = 0.0
            for t in range(S):
                alpha[k, t] *= BT[tok, t]
                c += alpha[k, t]
            if c == 0.0:
                return -np.inf
            for t in range(S):
                alpha[k, t] /= c
            log_c += np.log(c)
    return log_c


@njit(cache=True)
def _dense_backward(alpha, AT, B_, BT, xb, rb, dead, mb):
    # mb (L, V) out: one-hot at revealed positions, posterior emission law at masked ones
    L, S = alpha.shape
    V = B_.shape[1]
    for k in range(L):
        for v in range(V):
            mb[k, v] = 0.0
    if dead:
        for k in range(L):
            if rb[k]:
                mb[k, xb[k]] = 1.0
            else:
                for v in range(V):
                    mb[k, v] = 1.0 / V
        return
    beta = np.ones(S)
    g = np.empty(S)
    nb = np.empty(S)
    for k in range(L - 1, -1, -1):
        if rb[k]:
            mb[k, xb[k]] = 1.0
        else:
            z = 0.0
            for s in range(S):
                g[s] = alpha[k, s] * beta[s]
                z += g[s]
            for s in range(S):
                w = g[s]
                if w != 0.0:
                    w = w / z
                    for v in range(V):
                        mb[k, v] += w * B_[s, v]
        if k == 0:
            break
        if rb[k]:
            tok = xb[k]
            for t in range(S):
                g[t] = beta[t] * BT[tok, t]
        else:
            for t in range(S):
                g[t] = beta[t]
        for s in range(S):
            nb[s] = 0.0
        for t in range(S):
            w = g[t]
            if w != 0.0:
                for s in range(S):
                    nb[s] += w * AT[t, s]
        mx = 0.0
        for s in range(S):
            if nb[s] > mx:
                mx = nb[s]
        if mx == 0.0:  # only by float underflow
            mx = 1.0
        for s in range(S):
            beta[s] = nb[s] / mx
