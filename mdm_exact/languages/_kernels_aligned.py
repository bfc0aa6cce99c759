"""Lined-up (position-aligned) HMM forward-backward: THE batched primitive.

A chunk of ``m`` sequences is swept together, position by position, so every step of the
forward and backward recursions is one matrix-matrix product ``(m, S) @ (S, S)`` (BLAS through
``np.dot``) instead of ``m`` dependent mat-vec chains; this is what runs near the float64 peak
(a full forward-backward is ``4 L S^2`` flops per sequence). Shared by

* :meth:`mdm_exact.languages.HMM.conditional_marginals` at ``L >= ALIGNED_MIN_LENGTH`` (dense
  kernel), through :func:`_hmm_aligned_marginals` (``prange`` over fixed chunks of rows);
* the adaptive-policy sweeps (``mdm_exact.sampler._kernels_policies``: one call of
  :func:`_hmm_aligned_chunk` per step and chunk).

Kernels are thin (STYLE.md §3): no validation, no random numbers, constants as arguments,
results in ``out`` arrays. NumPy references: ``HMM._reference_conditional_marginals`` and
``mdm_exact.sampler.adaptive_mc.hmm_conditionals_numpy`` (the same normalisations).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _hmm_aligned_chunk(pi, A, AT, B, BT, x, rev, alpha, beta, post, cV, cond, dead, tiny):
    """Lined-up forward-backward of a chunk: ``cond[b, t] = q(x_t | x_R)`` at every masked position.

    x, rev (m, L); alpha (L, m, S), beta (2, m, S) scratch; post (m, S), cV (m, V) scratch;
    cond (m, L, V) written at masked positions only; dead (m,) bool out: the revealed tokens
    are impossible (conditionals uniform). ``A`` is row-stochastic, so a masked position keeps
    the sum of a forward message; messages are rescaled only where an emission shrinks them
    below ``tiny`` (and every 32 positions); the posterior at ``t`` is formed during the
    backward sweep (before the emission at ``t`` is applied) and normalised over tokens.
    """
    L, m, S = alpha.shape
    V = B.shape[1]
    for b in range(m):
        dead[b] = False
        for s in range(S):
            alpha[0, b, s] = pi[s]
    for t in range(L):
        if t > 0:
            np.dot(alpha[t - 1], A, alpha[t])
        at = alpha[t]
        check = (t & 31) == 31
        for b in range(m):
            if rev[b, t]:
                e = BT[x[b, t]]
                z = 0.0
                for s in range(S):
                    at[b, s] *= e[s]
                    z += at[b, s]
            elif check:
                z = 0.0
                for s in range(S):
                    z += at[b, s]
            else:
                continue
            if z < tiny:
                if z > 0.0:
                    iz = 1.0 / z
                    for s in range(S):
                        at[b, s] *= iz
                else:
                    dead[b] = True
    bt = beta[0]
    bn = beta[1]
    for b in range(m):
        for s in range(S):
            bt[b, s] = 1.0
    for t in range(L - 1, -1, -1):
        # posterior at the masked positions of t: (alpha_t * beta_t) @ B, normalised over tokens
        at = alpha[t]
        for b in range(m):
            for s in range(S):
                post[b, s] = at[b, s] * bt[b, s]
        np.dot(post, B, cV)
        for b in range(m):
            if rev[b, t]:
                continue
            if dead[b]:
                for v in range(V):
                    cond[b, t, v] = 1.0 / V
                continue
            z = 0.0
            for v in range(V):
                z += cV[b, v]
            iz = 1.0 / z if z > 0.0 else 0.0
            for v in range(V):
                cond[b, t, v] = cV[b, v] * iz
        if t == 0:
            break
        check = (t & 31) == 0
        for b in range(m):
            if rev[b, t]:
                e = BT[x[b, t]]
                z = 0.0
                for s in range(S):
                    bt[b, s] *= e[s]
                    if bt[b, s] > z:
                        z = bt[b, s]
            elif check:
                z = 0.0
                for s in range(S):
                    if bt[b, s] > z:
                        z = bt[b, s]
            else:
                continue
            if z < tiny and z > 0.0:
                iz = 1.0 / z
                for s in range(S):
                    bt[b, s] *= iz
        np.dot(bt, AT, bn)
        bt, bn = bn, bt


@njit(cache=True, parallel=True)
def _hmm_aligned_marginals(pi, A, AT, B, BT, x, rev, chunk, tiny, out):
    """``out[b, t] = q(x_t = . | x_R)`` (n, L, V) for every row: one-hot at revealed positions,
    uniform at masked ones when the revealed tokens are impossible (the ``Language`` convention).

    Rows ``[c * chunk, (c + 1) * chunk)`` are swept lined up by :func:`_hmm_aligned_chunk`;
    ``prange`` runs over these fixed chunks, so no result depends on the thread count. A short
    last chunk is padded to ``chunk`` rows (copies of its first row, results dropped): BLAS
    takes other code paths for other row counts, and padding keeps every row's bits
    independent of the batch it came in (tested).
    """
    n, L = x.shape
    S = pi.shape[0]
    V = B.shape[1]
    n_chunks = (n + chunk - 1) // chunk
    for c in prange(n_chunks):
        r0 = c * chunk
        r1 = min(n, r0 + chunk)
        m = r1 - r0
        alpha = np.empty((L, chunk, S))
        beta = np.empty((2, chunk, S))
        post = np.empty((chunk, S))
        cV = np.empty((chunk, V))
        dead = np.empty(chunk, dtype=np.bool_)
        if m == chunk:
            cond = out[r0:r1]
            _hmm_aligned_chunk(pi, A, AT, B, BT, x[r0:r1], rev[r0:r1], alpha, beta, post, cV, cond, dead, tiny)
        else:
            xp = np.empty((chunk, L), dtype=x.dtype)
            rp = np.empty((chunk, L), dtype=rev.dtype)
            for b in range(chunk):
                src = r0 + b if b < m else r0
                for t in range(L):
                    xp[b, t] = x[src, t]
                    rp[b, t] = rev[src, t]
            cp = np.empty((chunk, L, V))
            _hmm_aligned_chunk(pi, A, AT, B, BT, xp, rp, alpha, beta, post, cV, cp, dead, tiny)
            cond = out[r0:r1]
            for b in range(m):
                for t in range(L):
                    if not rev[r0 + b, t]:
                        for v in range(V):
                            cond[b, t, v] = cp[b, t, v]
        for b in range(m):
            for t in range(L):
                if rev[r0 + b, t]:
                    for v in range(V):
                        cond[b, t, v] = 0.0
                    cond[b, t, x[r0 + b, t]] = 1.0
