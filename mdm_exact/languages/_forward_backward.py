"""Plain NumPy forward-backward over a batch, with masked (unobserved) positions.

This is the reference implementation: simple, batched over sequences, stepping through every
position. The fast kernels (``mdm_exact.languages._kernels``) are tested against it.

A chain is described by four callables on batched state vectors ``(batch, S)``:
``init()`` (S,) the law of the first state, ``forward(k, a)`` maps the state law at position
``k - 1`` to position ``k`` (a @ T_k), ``backward(k, b)`` maps a backward message at ``k`` to
``k - 1`` (T_k @ b), and ``emit(k, tokens)`` gives the (batch, S) likelihood of the observed
tokens at ``k``.
"""

from __future__ import annotations

import numpy as np


def forward_backward(L, init, forward, backward, emit, x, revealed, *, need_posterior=True):
    """Scaled forward-backward.

    Returns
    -------
    log_evidence : (batch,) float64
        ``log q(x_R)``; exactly ``-inf`` when the revealed tokens are impossible.
    posterior : (batch, L, S) float64 or None
        ``q(s_k | x_R)``; rows of impossible sequences are left as NaN-free zeros.
    """
    B = x.shape[0]
    S = init.shape[0]
    alpha = np.empty((B, L, S))  # (batch, L, S) normalised filters
    log_c = np.zeros(B)  # (batch,)
    dead = np.zeros(B, dtype=bool)  # (batch,)
    a = np.broadcast_to(init, (B, S)).copy()  # (batch, S)
    for k in range(L):
        if k > 0:
            a = forward(k, a)
        e = np.where(revealed[:, k, None], emit(k, x[:, k]), 1.0)  # (batch, S)
        a = a * e
        c = a.sum(axis=1)  # (batch,)
        newly_dead = (c <= 0) & ~dead
        dead |= newly_dead
        safe = np.where(dead, 1.0, c)
        a = np.where(dead[:, None], 0.0, a / safe[:, None])
        with np.errstate(divide="ignore"):
            log_c += np.where(dead, 0.0, np.log(safe))
        alpha[:, k] = a
    log_evidence = np.where(dead, -np.inf, log_c)
    if not need_posterior:
        return log_evidence, None
    post = np.empty_like(alpha)  # (batch, L, S)
    b = np.ones((B, S))  # (batch, S)
    for k in range(L - 1, -1, -1):
        g = alpha[:, k] * b
        z = g.sum(axis=1)
        post[:, k] = np.where(z[:, None] > 0, g / np.where(z > 0, z, 1.0)[:, None], 0.0)
        if k > 0:
            e = np.where(revealed[:, k, None], emit(k, x[:, k]), 1.0)
            b = backward(k, e * b)
            m = b.max(axis=1, keepdims=True)  # rescale; only ratios matter
            b = np.where(m > 0, b / np.where(m > 0, m, 1.0), 0.0)
    return log_evidence, post
