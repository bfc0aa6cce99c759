"""Numba kernels of the exact engine (``mdm_exact.sampler.exact``); no package imports.

Partial sequences ``y in {0..V}^L`` (``V`` = the mask symbol) are indexed in base ``V + 1``,
position 0 most significant: ``s = sum_i y_i (V+1)^(L-1-i)``. Conditional tables are stored
*reduced*: ``cond[j, red(s, j), v]`` for a state ``s`` whose position ``j`` is masked, where
``red(s, j)`` deletes digit ``j`` from ``s``.

Each kernel has a NumPy/Python reference in ``mdm_exact.sampler.exact`` used by the tests.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _step_push_one(s, g_s, L, V, strides, cond, r, size, scale, nb, digits, mpos, fac, dlt, wlev, ilev, clev, opt,
                   tf, td, tc, tf2, td2, tc2, out):
    """Push the mass ``g_s`` of source state ``s`` to all its extensions (one step).

    ``r`` (L,): per-position reveal probability (schedule rules; ``size < 0``); with
    ``size >= 0`` exactly ``size`` masked positions are revealed, each subset with weight
    ``scale`` (``1 / C(|M|, size)``). Scratch: ``fac`` (L, V+1) factor of each option of the
    a-th masked position (0..V-1 reveal token v, V stay masked), ``dlt`` (L, V+1) its index
    change. The last ``nb`` masked positions are tabulated once (``tf`` factor, ``td`` index
    change, ``tc`` reveal count; buffers of length >= (V+1)^nb); an odometer with prefix
    products runs over the others. Zero factors prune whole subtrees.
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
    fixed = size >= 0
    w0 = g_s * scale if fixed else g_s
    if fixed and size > nm:
        return
    if nm == 0 or size == 0:
        out[s] += w0
        return
    for a in range(nm):
        j = mpos[a]
        st = strides[j]
        red = (s // (st * B)) * st + s % st
        rj = 1.0 if fixed else r[j]
        fac[a, V] = 1.0 if fixed else 1.0 - rj
        dlt[a, V] = 0
        for v in range(V):
            fac[a, v] = rj * cond[j, red, v] if rj > 0.0 else 0.0
            dlt[a, v] = (v - V) * st
    # table of the options of the tail positions nm-b..nm-1
    b = nb if nb < nm else nm
    head = nm - b
    nt = 1
    tf[0] = 1.0
    td[0] = 0
    tc[0] = 0
    for a in range(head, nm):
        n2 = 0
        for t in range(nt):
            for o in range(B):
                f = fac[a, o]
                if f == 0.0:
                    continue
                tf2[n2] = tf[t] * f
                td2[n2] = td[t] + dlt[a, o]
                tc2[n2] = tc[t] + (1 if o < V else 0)
                n2 += 1
        for t in range(n2):
            tf[t] = tf2[t]
            td[t] = td2[t]
            tc[t] = tc2[t]
        nt = n2
    if head == 0:
        for t in range(nt):
            if fixed and tc[t] != size:
                continue
            out[s + td[t]] += w0 * tf[t]
        return
    # odometer over the options of the head positions, with prefix products
    last = head - 1
    level = 0
    wlev[0] = w0
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
        if fixed and (c > size or c + (nm - level - 1) < size):
            continue  # this branch cannot reveal exactly `size` positions
        w = wlev[level] * f
        idx = ilev[level] + dlt[level, o]
        if level == last:
            if fixed:
                for t in range(nt):
                    if c + tc[t] == size:
                        out[idx + td[t]] += w * tf[t]
            else:
                for t in range(nt):
                    out[idx + td[t]] += w * tf[t]
        else:
            level += 1
            wlev[level] = w
            ilev[level] = idx
            clev[level] = c
            opt[level] = -1


@njit(cache=True, parallel=True)
def _forward_step(g, L, V, strides, cond, r, size, scale, nb, out):
    """One step of the forward DP: ``out[c, y'] += sum_y g[y] T(y -> y')``.

    g (S,) f8 with S = (V+1)^L; cond (L, S/(V+1), V) f8; r (L,) f8; nb: number of tabulated
    tail positions; out (n_chunks, S) f8, zeroed by the caller. Chunk ``c`` handles the
    sources ``s = c (mod n_chunks)`` and writes only ``out[c]``: the result does not depend
    on the number of threads.
    """
    n_chunks = out.shape[0]
    S = g.shape[0]
    T = (V + 1) ** nb
    for c in prange(n_chunks):
        digits = np.empty(L, np.int64)
        mpos = np.empty(L, np.int64)
        fac = np.empty((L, V + 1), np.float64)
        dlt = np.empty((L, V + 1), np.int64)
        wlev = np.empty(L + 1, np.float64)
        ilev = np.empty(L + 1, np.int64)
        clev = np.empty(L + 1, np.int64)
        opt = np.empty(L + 1, np.int64)
        tf = np.empty(T, np.float64)
        td = np.empty(T, np.int64)
        tc = np.empty(T, np.int64)
        tf2 = np.empty(T, np.float64)
        td2 = np.empty(T, np.int64)
        tc2 = np.empty(T, np.int64)
        oc = out[c]
        for s in range(c, S, n_chunks):
            gs = g[s]
            if gs == 0.0:
                continue
            _step_push_one(s, gs, L, V, strides, cond, r, size, scale, nb, digits, mpos, fac, dlt, wlev, ilev, clev,
                           opt, tf, td, tc, tf2, td2, tc2, oc)
