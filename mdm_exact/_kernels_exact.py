"""Numba kernels of the exact engine (``mdm_exact.enumeration``); no package imports.

Partial sequences ``y in {0..V}^L`` (``V`` = the mask symbol) are indexed in base ``V + 1``,
position 0 most significant: ``s = sum_i y_i (V+1)^(L-1-i)``. Conditional tables are stored
*reduced*: ``cond[j, v, red(s, j)]`` for a state ``s`` whose position ``j`` is masked, where
``red(s, j)`` deletes digit ``j`` from ``s``.

Each kernel has a NumPy/Python reference in ``mdm_exact.enumeration`` used by the tests.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _step_push_one(s, g_s, L, V, strides, cond, r, size, scale, digits, mpos, fac, wlev, ilev, clev, opt, out):
    """Push the mass ``g_s`` of source state ``s`` to all its extensions (one step).

    ``r`` (L,): per-position reveal probability (schedule rules; ``size < 0``); with
    ``size >= 0`` exactly ``size`` masked positions are revealed, each subset with weight
    ``scale`` (``1 / C(|M|, size)``). ``fac`` (L, V+1) scratch: factor of each option
    (0..V-1 reveal token v, V stay masked). Zero factors prune whole subtrees.
    """
    B = V + 1
    rem = s
    for i in range(L - 1, -1, -1):  # decode digits, position L-1 least significant
        digits[i] = rem % B
        rem //= B
    nm = 0
    for i in range(L):
        if digits[i] == V:
            mpos[nm] = i
            nm += 1
    if size >= 0 and size > nm:
        return
    if nm == 0 or size == 0:
        out[s] += g_s * (scale if size >= 0 else 1.0)
        return
    for a in range(nm):
        j = mpos[a]
        st = strides[j]
        red = (s // (st * B)) * st + s % st
        if size >= 0:
            rj = 1.0
            fac[a, V] = 1.0
        else:
            rj = r[j]
            fac[a, V] = 1.0 - rj
        for v in range(V):
            fac[a, v] = rj * cond[j, v, red] if rj > 0.0 else 0.0
    # odometer over the options of the masked positions, with prefix products
    level = 0
    wlev[0] = g_s * (scale if size >= 0 else 1.0)
    ilev[0] = s
    clev[0] = 0
    opt[0] = -1
    while level >= 0:
        opt[level] += 1
        o = opt[level]
        if o > V:
            level -= 1
            continue
        f = fac[level, o]
        if f == 0.0:
            continue
        c = clev[level]
        if o < V:
            c += 1
        if size >= 0 and (c > size or c + (nm - level - 1) < size):
            continue  # this branch cannot reveal exactly `size` positions
        w = wlev[level] * f
        idx = ilev[level]
        if o < V:
            idx += (o - V) * strides[mpos[level]]
        if level == nm - 1:
            out[idx] += w
        else:
            level += 1
            wlev[level] = w
            ilev[level] = idx
            clev[level] = c
            opt[level] = -1


@njit(cache=True, parallel=True)
def _forward_step(g, L, V, strides, cond, r, size, scale, out):
    """One step of the forward DP: ``out[c, y'] += sum_y g[y] T(y -> y')``.

    g (S,) f8 with S = (V+1)^L; cond (L, V, S/(V+1)) f8; r (L,) f8; out (n_chunks, S) f8,
    zeroed by the caller. Chunk ``c`` handles the sources ``s = c (mod n_chunks)`` and writes
    only ``out[c]``: the result does not depend on the number of threads.
    """
    n_chunks = out.shape[0]
    S = g.shape[0]
    for c in prange(n_chunks):
        digits = np.empty(L, np.int64)
        mpos = np.empty(L, np.int64)
        fac = np.empty((L, V + 1), np.float64)
        wlev = np.empty(L + 1, np.float64)
        ilev = np.empty(L + 1, np.int64)
        clev = np.empty(L + 1, np.int64)
        opt = np.empty(L + 1, np.int64)
        oc = out[c]
        for s in range(c, S, n_chunks):
            gs = g[s]
            if gs == 0.0:
                continue
            _step_push_one(s, gs, L, V, strides, cond, r, size, scale, digits, mpos, fac, wlev, ilev, clev, opt, oc)
