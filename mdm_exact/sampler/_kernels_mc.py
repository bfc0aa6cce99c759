"""Numba kernels of the Monte Carlo engine (``mdm_exact.sampler.montecarlo``).

Kernels are thin (STYLE.md §3): no validation, no Python objects, no random numbers (every
uniform is drawn outside and passed in), no module constants (tuning constants such as
``rescale_below`` and ``jump_penalty`` are arguments, set in ``montecarlo``), results written
to ``out`` arrays. Draws use THE inverse-CDF kernel ``mdm_exact.languages._kernels._inverse_cdf``
(its NumPy twin is ``mdm_exact.languages._draw.inverse_cdf``); Numba's cache does not see
edits in that other file, so clear this folder's ``__pycache__/*.nb*`` after changing it. Each kernel runs
``prange`` over independent sequences, so results are bitwise identical for any thread count.
Their NumPy references are ``mdm_exact.sampler.montecarlo.reference_run`` (generic sampler through
``Language.conditional_marginals``) and ``mdm_exact.theory.separators`` (dependency counts).

The idealised sampler (STATEMENTS.md §1.7, as reconstructed): given an instance ``tau`` (the
0-based step of every position), for each non-empty step ``k`` in generation order, every
position ``j`` of ``M_k`` draws ``x_j`` independently from ``q(x_j | x_{M_<k})``. In *score*
mode the tokens are given (data ``x ~ q``) and the kernels only accumulate
``log p_tau(x) = sum_k sum_{j in M_k} log q(x_j | x_{M_<k})`` (Lemma B.3 chain rule).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from mdm_exact.languages._kernels import _inverse_cdf


@njit(cache=True)
def _draw_or_score(w, x_row, u_row, j, score):
    """Token of position ``j`` from the weights ``w`` (V,): the given ``x_row[j]`` in score mode,
    else an inverse-CDF draw with ``u_row[j]`` written to ``x_row[j]``. Returns its log
    probability ``log(w[tok] / sum(w))`` (-inf when ``w[tok] == 0``)."""
    tot = 0.0
    for v in range(w.shape[0]):
        tot += w[v]
    if score:
        tok = x_row[j]
    else:
        tok = _inverse_cdf(w, 0, w.shape[0], u_row[j] * tot)
        x_row[j] = tok
    if w[tok] > 0.0:
        return np.log(w[tok] / tot)
    return -np.inf


@njit(cache=True)
def _group_bounds(order, steps_row, bounds):  # order (L,) i8, steps_row (L,) i8, bounds (L+1,) i8
    """Start offsets in ``order`` of each non-empty step; returns the number of groups."""
    L = order.shape[0]
    g = 0
    bounds[0] = 0
    for i in range(1, L):
        if steps_row[order[i]] != steps_row[order[i - 1]]:
            g += 1
            bounds[g] = i
    g += 1
    bounds[g] = L
    return g


# ----------------------------------------------------------------------------- HMM
@njit(cache=True, fastmath={"reassoc", "contract"})
def _mat_vec(M, v, out):  # out = M @ v; M (T, S) with contiguous rows, v (S,), out (T,)
    """Dense product in dot-product form, eight rows per pass: the accumulators stay in
    registers, each load of ``v`` serves eight rows, and the reductions vectorise
    (reassociation only changes rounding)."""
    T, S = M.shape
    t = 0
    while t + 8 <= T:
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        a4 = 0.0
        a5 = 0.0
        a6 = 0.0
        a7 = 0.0
        for s in range(S):
            vs = v[s]
            a0 += M[t, s] * vs
            a1 += M[t + 1, s] * vs
            a2 += M[t + 2, s] * vs
            a3 += M[t + 3, s] * vs
            a4 += M[t + 4, s] * vs
            a5 += M[t + 5, s] * vs
            a6 += M[t + 6, s] * vs
            a7 += M[t + 7, s] * vs
        out[t] = a0
        out[t + 1] = a1
        out[t + 2] = a2
        out[t + 3] = a3
        out[t + 4] = a4
        out[t + 5] = a5
        out[t + 6] = a6
        out[t + 7] = a7
        t += 8
    while t < T:
        acc = 0.0
        for s in range(S):
            acc += M[t, s] * v[s]
        out[t] = acc
        t += 1


@njit(cache=True, fastmath={"reassoc", "contract"})
def _emit(h, e, rescale_below):  # h *= e in place; returns sum(h) (<= 0: impossible), rescaled to 1 below rescale_below
    S = h.shape[0]
    c = 0.0
    for s in range(S):
        h[s] *= e[s]
        c += h[s]
    if 0.0 < c < rescale_below:
        inv = 1.0 / c
        for s in range(S):
            h[s] *= inv
    return c


@njit(cache=True)
def _hmm_one(pi, Apow, AposT, BT, rescale_below, steps_row, x_row, u_row, score, F, G, f, g, w):
    """One sequence of the idealised sampler for an HMM; returns (log p_tau(x), nfe).

    ``F[r]`` (forward filter including the emission at ``r``) and ``G[r]`` (backward message
    including the emission at ``r``), both up to a positive scale (``_emit``), are stored by position
    and kept across steps: a step only recomputes the ones that the previous step's reveals
    invalidated (``F`` right of ``fdirty``, ``G`` left of ``gdirty``) and that this step needs.
    ``Apow[g] = A^g`` and ``AposT[g] = (A^g)^T``: the forward update ``F[a] A^g`` reads rows
    of ``AposT``, the backward update ``A^g G[b]`` rows of ``Apow``.
    """
    L = steps_row.shape[0]
    S = pi.shape[0]
    V = BT.shape[0]
    order = np.argsort(steps_row, kind="mergesort")  # (L,) positions grouped by step, ascending
    bounds = np.empty(L + 1, dtype=np.int64)
    ngroups = _group_bounds(order, steps_row, bounds)
    rev = np.zeros(L, dtype=np.bool_)
    prevrev = np.empty(L + 1, dtype=np.int64)  # prevrev[p]: last revealed position < p (-1: none)
    nextrev = np.empty(L + 1, dtype=np.int64)  # nextrev[p + 1]: first revealed position > p (L: none)
    fdirty = 0  # F[r] is valid for revealed r < fdirty
    gdirty = L - 1  # G[r] is valid for revealed r > gdirty
    dead = False
    logp = 0.0
    for gi in range(ngroups):
        g0 = bounds[gi]
        g1 = bounds[gi + 1]
        jmin = order[g0]
        jmax = order[g1 - 1]
        if not dead:
            last = -1
            for p in range(L):
                prevrev[p] = last
                if rev[p]:
                    last = p
            prevrev[L] = last
            last = L
            for p in range(L - 1, -1, -1):
                nextrev[p + 1] = last
                if rev[p]:
                    last = p
            nextrev[0] = last
            # forward filters at the revealed r in [fdirty, jmax), left to right
            r = nextrev[fdirty]  # first revealed position >= fdirty
            while r < jmax:
                a = prevrev[r]
                if a < 0:
                    _mat_vec(AposT[r], pi, F[r])
                else:
                    _mat_vec(AposT[r - a], F[a], F[r])
                if _emit(F[r], BT[x_row[r]], rescale_below) <= 0.0:
                    dead = True
                    break
                r = nextrev[r + 1]
            if fdirty < jmax:
                fdirty = jmax
        if not dead:
            # backward messages at the revealed r in (jmin, gdirty], right to left
            r = prevrev[gdirty + 1]  # last revealed position <= gdirty
            while r > jmin:
                b = nextrev[r + 1]
                if b >= L:
                    for s in range(S):
                        G[r, s] = 1.0
                else:
                    _mat_vec(Apow[b - r], G[b], G[r])
                if _emit(G[r], BT[x_row[r]], rescale_below) <= 0.0:
                    dead = True
                    break
                r = prevrev[r]
            if gdirty > jmin:
                gdirty = jmin
        for oi in range(g0, g1):
            j = order[oi]
            tot = 0.0
            if not dead:
                a = prevrev[j]
                b = nextrev[j + 1]
                if a < 0:
                    _mat_vec(AposT[j], pi, f)
                else:
                    _mat_vec(AposT[j - a], F[a], f)
                if b < L:
                    _mat_vec(Apow[b - j], G[b], g)
                    for s in range(S):
                        f[s] *= g[s]
                for v in range(V):
                    acc = 0.0
                    for s in range(S):
                        acc += f[s] * BT[v, s]
                    w[v] = acc
                    tot += acc
                if tot <= 0.0:  # the revealed context is impossible: uniform from now on
                    dead = True
            if dead:
                for v in range(V):
                    w[v] = 1.0
            logp += _draw_or_score(w, x_row, u_row, j, score)
        for oi in range(g0, g1):
            rev[order[oi]] = True
        if jmin < fdirty:
            fdirty = jmin
        if jmax > gdirty:
            gdirty = jmax
    return logp, ngroups


@njit(cache=True)
def _hmm_log_prob(pi, AT, BT, x_row, f, h):  # plain scaled forward over a full sequence; AT = A^T
    L = x_row.shape[0]
    S = pi.shape[0]
    out = 0.0
    for s in range(S):
        f[s] = pi[s]
    for k in range(L):
        if k > 0:
            _mat_vec(AT, f, h)
            for s in range(S):
                f[s] = h[s]
        c = 0.0
        for s in range(S):
            f[s] *= BT[x_row[k], s]
            c += f[s]
        if c <= 0.0:
            return -np.inf
        inv = 1.0 / c
        for s in range(S):
            f[s] *= inv
        out += np.log(c)
    return out


@njit(cache=True, parallel=True)
def _hmm_run(pi, AT, Apow, AposT, BT, rescale_below, steps, x, u, score, out_logp, out_nfe, out_logq):
    # pi (S,), AT (S,S) = A^T, Apow/AposT (L,S,S) powers and transposed powers, BT (V,S) = B.T
    # steps (n,L) i8, x (n,L) i8 in/out, u (n,L) f8, outputs (n,)
    n, L = steps.shape
    S = pi.shape[0]
    V = BT.shape[0]
    for b in prange(n):
        F = np.empty((L, S))
        G = np.empty((L, S))
        f = np.empty(S)
        g = np.empty(S)
        w = np.empty(V)
        lp, nfe = _hmm_one(pi, Apow, AposT, BT, rescale_below, steps[b], x[b], u[b], score, F, G, f, g, w)
        out_logp[b] = lp
        out_nfe[b] = nfe
        out_logq[b] = _hmm_log_prob(pi, AT, BT, x[b], f, g)


# ----------------------------------------------------------------------------- n-gram
@njit(cache=True)
def _digits(x_row, rev, lo, hi, V, skip, buf):
    """Values of the big-endian digit string at positions ``lo..hi`` compatible with the
    revealed tokens (a masked position takes any token; position ``skip`` is fixed to 0),
    written to ``buf`` in ascending order; returns their number. No integer division."""
    cnt = 1
    buf[0] = 0
    for p in range(lo, hi + 1):
        if p == skip:
            for i in range(cnt):
                buf[i] = buf[i] * V
        elif rev[p]:
            xp = x_row[p]
            for i in range(cnt):
                buf[i] = buf[i] * V + xp
        else:  # expand in place from the end: entry i becomes entries i*V .. i*V + V-1
            for i in range(cnt - 1, -1, -1):
                b = buf[i] * V
                for d in range(V - 1, -1, -1):
                    buf[i * V + d] = b + d
            cnt *= V
    return cnt


@njit(cache=True)
def _runs(x_row, rev, lo, hi, V, buf):
    """The digit strings at positions ``lo..hi`` compatible with the revealed tokens, as runs
    of consecutive values: returns ``(nb, run)``, the strings being ``buf[i] * run + q`` for
    ``i < nb``, ``q < run``, in ascending order; ``run = V^t`` for the ``t`` masked positions at
    the end of the window. The kernels loop over a run through slices and ``range``: indices
    Numba can prove non-negative, so LLVM vectorises those loops (a gathered index gets a
    negative-index check per access, which it does not)."""
    t = hi
    run = 1
    while t >= lo and not rev[t]:
        run *= V
        t -= 1
    return _digits(x_row, rev, lo, t, V, -1, buf), run


@njit(cache=True, fastmath={"reassoc", "contract"})
def _dot_runs(row, vec, nb, run, buf):  # sum over the runs (nb, run, buf) of row[c] vec[c]
    acc = 0.0
    for j in range(nb):
        s = buf[j] * run
        a = row[s : s + run]
        b = vec[s : s + run]
        for q in range(run):
            acc += a[q] * b[q]
    return acc


@njit(cache=True)
def _zero_runs(out, nb, run, buf):  # out[c] = 0 on the runs (nb, run, buf)
    for j in range(nb):
        ob = out[buf[j] * run : buf[j] * run + run]
        for q in range(run):
            ob[q] = 0.0


@njit(cache=True, fastmath={"contract"})
def _axpy_runs(out, w, row, nb, run, buf):  # out[c] += w row[c] on the runs
    for j in range(nb):
        s = buf[j] * run
        ob = out[s : s + run]
        rb = row[s : s + run]
        for q in range(run):
            ob[q] += w * rb[q]


@njit(cache=True)
def _sum_runs(out, nb, run, buf):  # in ascending order (no reassociation: same bits as a plain loop)
    tot = 0.0
    for j in range(nb):
        ob = out[buf[j] * run : buf[j] * run + run]
        for q in range(run):
            tot += ob[q]
    return tot


@njit(cache=True)
def _max_runs(out, nb, run, buf):
    m = 0.0
    for j in range(nb):
        ob = out[buf[j] * run : buf[j] * run + run]
        for q in range(run):
            m = max(m, ob[q])
    return m


@njit(cache=True)
def _div_runs(out, d, nb, run, buf):  # out[c] /= d on the runs
    for j in range(nb):
        ob = out[buf[j] * run : buf[j] * run + run]
        for q in range(run):
            ob[q] /= d


@njit(cache=True, fastmath={"contract"})
def _ngram_fstep(cond, V, R, h, x_row, rev, k, F, buf):
    """F[k] from F[k-1] (k > h) on the contexts compatible with the revealed tokens; returns
    the total mass. Target ``c' = pre V + v`` collects ``F[k-1, a R + pre] cond[a R + pre, v]``
    over the tokens ``a`` allowed at position ``k-1-h``, in ascending ``a``; the emission check
    at ``k`` is the restriction of ``v``. Entries of ``F[k]`` outside the compatible set are
    never read. The prefixes ``pre`` come as runs (:func:`_runs`), so a masked stretch is a
    contiguous multiply-add over ``run * V`` entries."""
    nb, run = _runs(x_row, rev, k - h, k - 1, V, buf)  # window without its last position
    p0 = k - 1 - h
    a0 = 0
    a1 = V
    if rev[p0]:
        a0 = x_row[p0]
        a1 = a0 + 1
    v0 = 0
    v1 = V
    if rev[k]:
        v0 = x_row[k]
        v1 = v0 + 1
    out = F[k]
    prev = F[k - 1]
    n = run * V
    if v1 - v0 == V:  # position k masked: the targets of a run of prefixes are one run of n entries
        _zero_runs(out, nb, n, buf)
        for i in range(nb):
            b = buf[i] * run
            ob = out[b * V : b * V + n]
            for a in range(a0, a1):
                s = a * R + b
                pb = prev[s : s + run]
                cb = cond[s : s + run]
                for q in range(run):
                    fs = pb[q]
                    for v in range(V):
                        ob[q * V + v] += fs * cb[q, v]
        tot = _sum_runs(out, nb, n, buf)
        if tot > 0.0:
            _div_runs(out, tot, nb, n, buf)
        return tot
    # position k revealed as v0: the targets are every V-th entry of those runs
    for i in range(nb):
        ob = out[buf[i] * n : buf[i] * n + n]
        for q in range(run):
            ob[q * V + v0] = 0.0
        for a in range(a0, a1):
            s = a * R + buf[i] * run
            pb = prev[s : s + run]
            cb = cond[s : s + run]
            for q in range(run):
                ob[q * V + v0] += pb[q] * cb[q, v0]
    tot = 0.0
    for i in range(nb):
        ob = out[buf[i] * n : buf[i] * n + n]
        for q in range(run):
            tot += ob[q * V + v0]
    if tot > 0.0:
        for i in range(nb):
            ob = out[buf[i] * n : buf[i] * n + n]
            for q in range(run):
                ob[q * V + v0] /= tot
    return tot


@njit(cache=True, fastmath={"reassoc", "contract"})
def _ngram_bstep(cond, V, R, h, x_row, rev, k, Bk, buf):
    """Bk[k] from Bk[k+1] (emission check at k+1) on the compatible contexts, scaled by its max."""
    nb, run = _runs(x_row, rev, k - h + 1, k, V, buf)  # window without its first position
    pa = k - h
    a0 = 0
    a1 = V
    if rev[pa]:
        a0 = x_row[pa]
        a1 = a0 + 1
    v0 = 0
    v1 = V
    if rev[k + 1]:
        v0 = x_row[k + 1]
        v1 = v0 + 1
    full = v1 - v0 == V
    out = Bk[k]
    nxt = Bk[k + 1]
    n = run * V
    m = 0.0
    for i in range(nb):
        b = buf[i] * run
        nx = nxt[b * V : b * V + n]
        for a in range(a0, a1):
            s = a * R + b
            ob = out[s : s + run]
            cb = cond[s : s + run]
            if full:
                for q in range(run):
                    acc = 0.0
                    for v in range(V):
                        acc += cb[q, v] * nx[q * V + v]
                    ob[q] = acc
                    m = max(m, acc)
            else:
                for q in range(run):
                    acc = cb[q, v0] * nx[q * V + v0]
                    ob[q] = acc
                    m = max(m, acc)
    if m > 0.0:
        for a in range(a0, a1):
            for i in range(nb):
                s = a * R + buf[i] * run
                ob = out[s : s + run]
                for q in range(run):
                    ob[q] /= m


@njit(cache=True)
def _ngram_fstart(init, V, h, x_row, rev, k, pin, F, buf):
    """Start a forward run at chain position k: the pinned window (pin) or the initial law (k == h)."""
    if pin:
        c0 = 0
        for p in range(k - h, k + 1):
            c0 = c0 * V + x_row[p]
        F[k, c0] = 1.0
        return 1.0
    nl = _digits(x_row, rev, k - h, k, V, -1, buf)
    tot = 0.0
    for i in range(nl):
        c = buf[i]
        F[k, c] = init[c]
        tot += init[c]
    if tot > 0.0:
        for i in range(nl):
            F[k, buf[i]] /= tot
    return tot


@njit(cache=True)
def _digits_count(rev, lo, hi, V):  # number of compatible digit strings at positions lo..hi
    c = 1
    for p in range(lo, hi + 1):
        if not rev[p]:
            c *= V
    return c


@njit(cache=True)
def _walk_cost(rev, lo, hi, h, V):
    """Multiply-adds of the one-position steps over chain positions lo..hi (forward: step t
    reads the window t-h-1..t; backward: step t-1 reads the same n positions)."""
    tot = 0
    for t in range(lo, hi + 1):
        c = 1
        for p in range(max(t - h - 1, 0), t + 1):
            if not rev[p]:
                c *= V
        tot += c
    return tot


@njit(cache=True, fastmath={"contract"})
def _ngram_fjump(Tp, TpT, V, h, x_row, rev, k, r, F, buf, buf2):
    """F[r] from F[k] through g = r - k transitions with all positions k+1..r-1 masked:
    ``F[r, c'] = sum_c F[k, c] (T^g)[c, c']`` on the compatible contexts; returns the mass.
    Contiguous along the target's runs (rows of ``T^g``) or, for a target without runs and a
    source with them, along the source's runs (rows of ``(T^g)^T``, ``TpT``)."""
    nb, run = _runs(x_row, rev, r - h, r, V, buf2)
    out = F[r]
    src = F[k]
    tot = 0.0
    if run == 1:
        nbk, runk = _runs(x_row, rev, k - h, k, V, buf)
        if runk > 1:
            TT = TpT[r - k - 1]
            for j in range(nb):
                c2 = buf2[j]
                acc = _dot_runs(TT[c2], src, nbk, runk, buf)
                out[c2] = acc
                tot += acc
        else:  # both sides scattered (one context per run): plain gathers
            T = Tp[r - k - 1]
            for j in range(nb):
                out[buf2[j]] = 0.0
            for i in range(nbk):
                c = buf[i]
                fc = src[c]
                if fc != 0.0:
                    Tr = T[c]
                    for j in range(nb):
                        c2 = buf2[j]
                        out[c2] += fc * Tr[c2]
            for j in range(nb):
                tot += out[buf2[j]]
        if tot > 0.0:
            for j in range(nb):
                out[buf2[j]] /= tot
        return tot
    T = Tp[r - k - 1]
    nk = _digits(x_row, rev, k - h, k, V, -1, buf)
    _zero_runs(out, nb, run, buf2)
    for i in range(nk):
        fc = src[buf[i]]
        if fc != 0.0:
            _axpy_runs(out, fc, T[buf[i]], nb, run, buf2)
    tot = _sum_runs(out, nb, run, buf2)
    if tot > 0.0:
        _div_runs(out, tot, nb, run, buf2)
    return tot


@njit(cache=True, fastmath={"reassoc", "contract"})
def _ngram_bjump(Tp, TpT, V, h, x_row, rev, k, r, Bk, buf, buf2):
    """Bk[r] from Bk[k] (r < k, positions r+1..k-1 masked, emission check at k), scaled by its
    max. Dots along the runs of the window at k (rows of ``T^g``) or, when that window has no
    runs and the one at r has, multiply-adds along r's runs (rows of ``(T^g)^T``, ``TpT``)."""
    nbr, runr = _runs(x_row, rev, r - h, r, V, buf)
    nbk, runk = _runs(x_row, rev, k - h, k, V, buf2)
    nxt = Bk[k]
    out = Bk[r]
    m = 0.0
    if runk == 1 and runr > 1:
        TT = TpT[k - r - 1]
        _zero_runs(out, nbr, runr, buf)
        for j in range(nbk):
            w = nxt[buf2[j]]
            if w != 0.0:
                _axpy_runs(out, w, TT[buf2[j]], nbr, runr, buf)
        m = _max_runs(out, nbr, runr, buf)
    else:
        T = Tp[k - r - 1]
        for i in range(nbr):
            c0 = buf[i] * runr
            for q in range(runr):
                Tr = T[c0 + q]
                if runk == 1:
                    acc = 0.0
                    for j in range(nbk):
                        c2 = buf2[j]
                        acc += Tr[c2] * nxt[c2]
                else:
                    acc = _dot_runs(Tr, nxt, nbk, runk, buf2)
                out[c0 + q] = acc
                m = max(m, acc)
    if m > 0.0:
        _div_runs(out, m, nbr, runr, buf)


@njit(cache=True)
def _ngram_fadvance(cond, Tp, TpT, V, R, h, jump_penalty, x_row, rev, kk, t, F, buf, buf2):
    """One move of a forward walk from F[kk] towards t > kk: the masked stretch after kk in
    one jump with T^g (g <= G) when that is cheaper than g one-position steps, else one step.
    Returns (the position r reached, its mass; <= 0: the revealed tokens are impossible)."""
    G = Tp.shape[0]
    r = kk + 1
    while r < t and not rev[r] and r - kk < G:
        r += 1
    if r - kk >= 2 and _digits_count(rev, kk - h, kk, V) * _digits_count(rev, r - h, r, V) * jump_penalty < _walk_cost(rev, kk + 1, r, h, V):
        return r, _ngram_fjump(Tp, TpT, V, h, x_row, rev, kk, r, F, buf, buf2)
    return kk + 1, _ngram_fstep(cond, V, R, h, x_row, rev, kk + 1, F, buf)


@njit(cache=True)
def _ngram_fwalk(cond, Tp, TpT, V, R, h, jump_penalty, x_row, rev, k, t, F, buf, buf2):
    """F[k+1..t] from F[k] by :func:`_ngram_fadvance` moves (positions jumped over are not
    written); returns the last mass (1.0 when k == t; <= 0: the revealed tokens are
    impossible, the walk stops there)."""
    tot = 1.0
    kk = k
    while kk < t and tot > 0.0:
        kk, tot = _ngram_fadvance(cond, Tp, TpT, V, R, h, jump_penalty, x_row, rev, kk, t, F, buf, buf2)
    return tot


@njit(cache=True)
def _ngram_one(init, cond, prior, Tp, TpT, V, n, jump_penalty, steps_row, x_row, u_row, score, check, F, Bk, w, lst, lst2):
    """One sequence of the idealised sampler for an n-gram (L >= n-1); returns (log p_tau, nfe).

    The chain state at position k >= h = n-2 is the context window ending at k. A run of n-1
    revealed tokens (a separator) pins it, so messages restart there: the forward filter
    ``F[k]`` depends only on reveals in ``[fhz[k], k]`` and the backward message ``Bk[k]``
    only on reveals in ``(k, bhz[k]]``. Messages are computed lazily, only between a new
    position and the nearest pin or still-valid cached message, and invalidated when a reveal
    falls inside their horizon. Before the first revealed position the forward filter is the
    prior law of the context (``prior[k - h]``); after the last one the backward message is 1.
    """
    L = steps_row.shape[0]
    C = init.shape[0]
    R = C // V
    G = Tp.shape[0]
    h = n - 2
    order = np.argsort(steps_row, kind="mergesort")  # (L,)
    bounds = np.empty(L + 1, dtype=np.int64)
    ngroups = _group_bounds(order, steps_row, bounds)
    rev = np.zeros(L, dtype=np.bool_)
    pinned = np.zeros(L, dtype=np.bool_)
    fval = np.zeros(L, dtype=np.bool_)
    bval = np.zeros(L, dtype=np.bool_)
    fhz = np.zeros(L, dtype=np.int64)
    bhz = np.zeros(L, dtype=np.int64)
    cnt = np.zeros(L + 1, dtype=np.int64)
    firstrev = L  # smallest revealed position (L: none)
    lastrev = -1  # largest revealed position (-1: none)
    dead = False
    logp = 0.0
    for gi in range(ngroups):
        g0 = bounds[gi]
        g1 = bounds[gi + 1]
        for oi in range(g0, g1):
            j = order[oi]
            if not dead:
                cj = j if j > h else h
                # forward: walk left to a valid message, a pin, the unrevealed prefix or the start
                k = cj
                while k > h and not fval[k] and not pinned[k] and k >= firstrev:
                    k -= 1
                if not fval[k]:
                    if k < firstrev:  # nothing revealed at positions <= k: the prior law
                        for c in range(C):
                            F[k, c] = prior[k - h, c]
                        tot = 1.0
                        fhz[k] = h
                    else:
                        tot = _ngram_fstart(init, V, h, x_row, rev, k, pinned[k], F, lst)
                        fhz[k] = k
                    fval[k] = True
                    if tot <= 0.0:
                        dead = True
                if not dead and k < cj and fval[k] and not rev[k] and k >= firstrev:
                    # k holds a fat message (masked position): restart from the thin one at the
                    # revealed position r0 left of its masked stretch when that is cheaper
                    r0 = k - 1
                    while r0 > h and not rev[r0]:
                        r0 -= 1
                    nx = k + 1
                    while nx < cj and not rev[nx]:
                        nx += 1
                    if rev[r0] and fval[r0] and nx - r0 <= G:
                        nn = _digits_count(rev, nx - h, nx, V)
                        fat = _digits_count(rev, k - h, k, V) * nn * jump_penalty
                        wc = _walk_cost(rev, k + 1, nx, h, V)
                        if wc < fat:
                            fat = wc
                        if _digits_count(rev, r0 - h, r0, V) * nn * jump_penalty < fat:
                            k = r0
                kk = k
                if not dead and k < cj and not rev[cj]:
                    # a valid message at the nearest revealed position r0 < cj (thin: its token
                    # is fixed) may reach cj in one jump more cheaply than the walk from k
                    r0 = cj - 1
                    while r0 > h and not rev[r0] and cj - r0 < G:
                        r0 -= 1
                    if r0 < k and rev[r0] and fval[r0] and cj - r0 >= 2 and cj - r0 <= G:
                        cost = _digits_count(rev, r0 - h, r0, V) * _digits_count(rev, cj - h, cj, V)
                        if cost * jump_penalty < _walk_cost(rev, k + 1, cj, h, V):
                            tot = _ngram_fjump(Tp, TpT, V, h, x_row, rev, r0, cj, F, lst, lst2)
                            fval[cj] = True
                            fhz[cj] = fhz[r0]
                            if tot <= 0.0:
                                dead = True
                            kk = cj
                while kk < cj and not dead:
                    r, tot = _ngram_fadvance(cond, Tp, TpT, V, R, h, jump_penalty, x_row, rev, kk, cj, F, lst, lst2)
                    fval[r] = True
                    fhz[r] = fhz[kk]
                    if tot <= 0.0:
                        dead = True
                    kk = r
            if not dead:
                # backward: walk right to a valid message, a pin or the end
                k = cj
                while k < L - 1 and not bval[k] and not pinned[k] and k < lastrev:
                    k += 1
                if not bval[k]:
                    nl = _digits(x_row, rev, k - h, k, V, -1, lst)
                    for i in range(nl):
                        Bk[k, lst[i]] = 1.0
                    bval[k] = True
                    bhz[k] = k if pinned[k] else L - 1  # after the last reveal: depends on all later reveals
                if k > cj and bval[k] and not rev[k] and k < lastrev and not pinned[k]:
                    r1 = k + 1  # the mirror image for a fat backward message
                    while r1 < L - 1 and not rev[r1]:
                        r1 += 1
                    nx = k - 1
                    while nx > cj and not rev[nx]:
                        nx -= 1
                    if rev[r1] and bval[r1] and r1 - nx <= G:
                        nn = _digits_count(rev, nx - h, nx, V)
                        fat = _digits_count(rev, k - h, k, V) * nn * jump_penalty
                        wc = _walk_cost(rev, nx + 1, k, h, V)
                        if wc < fat:
                            fat = wc
                        if _digits_count(rev, r1 - h, r1, V) * nn * jump_penalty < fat:
                            k = r1
                kk = k
                if k > cj and not rev[cj]:
                    r1 = cj + 1  # the mirror image: a thin valid message at the nearest revealed r1 > cj
                    while r1 < L - 1 and not rev[r1] and r1 - cj < G:
                        r1 += 1
                    if r1 < k and rev[r1] and bval[r1] and r1 - cj >= 2 and r1 - cj <= G:
                        cost = _digits_count(rev, cj - h, cj, V) * _digits_count(rev, r1 - h, r1, V)
                        if cost * jump_penalty < _walk_cost(rev, cj + 1, k, h, V):
                            _ngram_bjump(Tp, TpT, V, h, x_row, rev, r1, cj, Bk, lst, lst2)
                            bval[cj] = True
                            bhz[cj] = bhz[r1]
                            kk = cj
                while kk > cj:
                    r = kk - 1
                    while r > cj and not rev[r] and kk - r < G:
                        r -= 1
                    if kk - r >= 2 and _digits_count(rev, r - h, r, V) * _digits_count(rev, kk - h, kk, V) * jump_penalty < _walk_cost(rev, r + 1, kk, h, V):
                        _ngram_bjump(Tp, TpT, V, h, x_row, rev, kk, r, Bk, lst, lst2)
                    else:
                        r = kk - 1
                        _ngram_bstep(cond, V, R, h, x_row, rev, r, Bk, lst)
                    bval[r] = True
                    bhz[r] = bhz[kk]
                    kk = r
                div = 1
                for _ in range(cj - j):
                    div *= V
                for v in range(V):
                    w[v] = 0.0
                nl = _digits(x_row, rev, cj - h, cj, V, j, lst)  # the digit of j set to 0
                for i in range(nl):
                    c0 = lst[i]
                    for v in range(V):
                        c = c0 + v * div
                        pc = F[cj, c] * Bk[cj, c]
                        if pc != 0.0:
                            w[v] += pc
                tot = 0.0
                for v in range(V):
                    tot += w[v]
                if tot <= 0.0:
                    dead = True
            if dead:
                for v in range(V):
                    w[v] = 1.0
            logp += _draw_or_score(w, x_row, u_row, j, score)
        if check and not dead and not score and g1 - g0 >= 2:
            # joint draws inside one separator-delimited segment may contradict each other
            # (never when ``init`` and ``cond`` have no zeros: then every sequence is possible):
            # re-run the forward over each such group with the new tokens (jumping masked
            # stretches) and join with Bk
            for oi in range(g0, g1):
                rev[order[oi]] = True
            q0 = g0
            while q0 < g1 and not dead:
                q1 = q0 + 1
                while q1 < g1:
                    a = order[q1 - 1]
                    b = order[q1]
                    ca = a if a > h else h
                    cb = b if b > h else h
                    sep = False
                    for kk in range(ca + 1, cb):
                        if pinned[kk]:
                            sep = True
                            break
                    if sep:
                        break
                    q1 += 1
                if q1 - q0 >= 2:
                    jf = order[q0]
                    jl = order[q1 - 1]
                    cf = jf if jf > h else h
                    cl = jl if jl > h else h
                    if cf > h:
                        k = cf - 1  # F[cf - 1] does not see the new tokens
                        tot = 1.0
                        if k < firstrev:  # (not computed: the walk for cf stopped at the prior)
                            for c in range(C):
                                F[k, c] = prior[k - h, c]
                        elif not fval[k]:  # skipped by a jump: walk from a valid one
                            k0 = k
                            while k0 > h and not fval[k0] and not pinned[k0]:
                                k0 -= 1
                            if not fval[k0]:
                                tot = _ngram_fstart(init, V, h, x_row, rev, k0, pinned[k0], F, lst)
                            if tot > 0.0:
                                tot = _ngram_fwalk(cond, Tp, TpT, V, R, h, jump_penalty, x_row, rev, k0, k, F, lst, lst2)
                    else:
                        k = h
                        tot = _ngram_fstart(init, V, h, x_row, rev, h, False, F, lst)
                    if tot > 0.0:
                        tot = _ngram_fwalk(cond, Tp, TpT, V, R, h, jump_penalty, x_row, rev, k, cl, F, lst, lst2)
                    if tot > 0.0:
                        tot = 0.0
                        nl = _digits(x_row, rev, cl - h, cl, V, -1, lst)
                        for i in range(nl):
                            tot += F[cl, lst[i]] * Bk[cl, lst[i]]
                    if tot <= 0.0:
                        dead = True
                    for kk in range(cf, cl + 1):  # overwritten by the check
                        fval[kk] = False
                q0 = q1
        for oi in range(g0, g1):
            rev[order[oi]] = True
            if order[oi] < firstrev:
                firstrev = order[oi]
            if order[oi] > lastrev:
                lastrev = order[oi]
        if dead:
            continue
        # invalidate cached messages whose horizon contains a new reveal
        for p in range(L + 1):
            cnt[p] = 0
        for oi in range(g0, g1):
            j = order[oi]
            cnt[(j if j > h else h) + 1] += 1
        for p in range(1, L + 1):
            cnt[p] += cnt[p - 1]  # cnt[k + 1] = new reveals at chain positions <= k
        for k in range(h, L):
            if fval[k] and cnt[k + 1] - cnt[fhz[k]] > 0:
                fval[k] = False
            if bval[k] and cnt[bhz[k] + 1] - cnt[k + 1] > 0:
                bval[k] = False
        run = 0
        for p in range(L):
            run = run + 1 if rev[p] else 0
            pinned[p] = p >= h and run >= n - 1
    return logp, ngroups


@njit(cache=True)
def _ngram_log_prob(init, cond, V, n, x_row):
    L = x_row.shape[0]
    R = init.shape[0] // V
    ctx = 0
    for i in range(n - 1):
        ctx = ctx * V + x_row[i]
    pr = init[ctx]
    if pr <= 0.0:
        return -np.inf
    out = np.log(pr)
    for k in range(n - 1, L):
        pr = cond[ctx, x_row[k]]
        if pr <= 0.0:
            return -np.inf
        out += np.log(pr)
        ctx = (ctx % R) * V + x_row[k]
    return out


@njit(cache=True, parallel=True)
def _ngram_run(init, cond, prior, Tp, TpT, n, jump_penalty, steps, x, u, score, out_logp, out_nfe, out_logq):
    # init (C,), cond (C,V), C = V^(n-1); prior (L-n+2, C) context law at chain positions
    # n-2..L-1; Tp (G,C,C) chain transition powers T^1..T^G, TpT their transposes; steps (num,L) i8, x (num,L) i8
    # in/out, u (num,L) f8
    num, L = steps.shape
    C, V = cond.shape
    check = False  # joint-draw check, needed only if some sequence is impossible
    for c in range(C):
        if init[c] <= 0.0:
            check = True
        for v in range(V):
            if cond[c, v] <= 0.0:
                check = True
    for b in prange(num):
        F = np.empty((L, C))
        Bk = np.empty((L, C))
        w = np.empty(V)
        lst = np.empty(C, dtype=np.int64)
        lst2 = np.empty(C, dtype=np.int64)
        lp, nfe = _ngram_one(init, cond, prior, Tp, TpT, V, n, jump_penalty, steps[b], x[b], u[b], score, check, F, Bk, w, lst, lst2)
        out_logp[b] = lp
        out_nfe[b] = nfe
        out_logq[b] = _ngram_log_prob(init, cond, V, n, x[b])


# ----------------------------------------------------------------------------- dependencies
@njit(cache=True, parallel=True)
def _dependencies_run(steps, n, num_steps, out_S, out_D, out_m, out_pairs):
    """Per-step separators S_k, corrected dependencies D_k, sizes |M_k| and same-step pairs.

    steps (num, L) i8; outputs (num, num_steps) i8. Definitions B.4-B.5 as reconstructed
    (STATEMENTS.md §4.C): S_k = sum over maximal revealed runs of floor(|run| / (n-1));
    D_k = |M_k| - #(separator-delimited intervals touched by M_k). Runs are tracked
    incrementally (length stored at both ends of every run).
    """
    num, L = steps.shape
    for b in prange(num):
        order = np.argsort(steps[b], kind="mergesort")
        rev = np.zeros(L, dtype=np.bool_)
        runlen = np.zeros(L, dtype=np.int64)  # valid at the two ends of each run
        S = 0
        i = 0
        for k in range(num_steps):
            i0 = i
            while i < L and steps[b, order[i]] == k:
                i += 1
            m = i - i0
            out_S[b, k] = S
            out_m[b, k] = m
            out_pairs[b, k] = m * (m - 1) // 2
            groups = 0
            for q in range(i0, i):
                if q == i0:
                    groups += 1
                    continue
                a = order[q - 1]
                c = order[q]
                sep = False
                p = a + 1
                while p < c:
                    if rev[p]:
                        r = runlen[p]  # p starts a run
                        if r >= n - 1:
                            sep = True
                            break
                        p += r
                    else:
                        p += 1
                if sep:
                    groups += 1
            out_D[b, k] = m - groups
            for q in range(i0, i):
                p = order[q]
                left = runlen[p - 1] if p > 0 and rev[p - 1] else 0
                right = runlen[p + 1] if p + 1 < L and rev[p + 1] else 0
                S += (left + right + 1) // (n - 1) - left // (n - 1) - right // (n - 1)
                tot = left + right + 1
                rev[p] = True
                runlen[p - left] = tot
                runlen[p + right] = tot


# ----------------------------------------------------------------------------- Example C.7
@njit(cache=True)
def _interval_one(bits, l, steps_row, x_row, u_row, score, w):
    """One sequence for the interval language of Example C.7; returns (log p_tau, nfe, consistent).

    ``bits[a, v, b]``: bit of token ``v`` at in-interval position ``a`` for partner ``b``.
    Closed form: a masked token's law is the product over partners of [bit == partner's pinned
    bit] (partner revealed) or 1/2 (partner masked); an inconsistent context gives uniform.
    """
    L = steps_row.shape[0]
    V = bits.shape[1]
    order = np.argsort(steps_row, kind="mergesort")
    bounds = np.empty(L + 1, dtype=np.int64)
    ngroups = _group_bounds(order, steps_row, bounds)
    rev = np.zeros(L, dtype=np.bool_)
    dead = False
    logp = 0.0
    for gi in range(ngroups):
        g0 = bounds[gi]
        g1 = bounds[gi + 1]
        for oi in range(g0, g1):
            j = order[oi]
            base = (j // l) * l
            a = j - base
            for v in range(V):
                ok = 1.0
                if not dead:
                    for b in range(l):
                        if b != a and rev[base + b]:
                            if bits[a, v, b] != bits[b, x_row[base + b], a]:
                                ok = 0.0
                                break
                w[v] = ok
            logp += _draw_or_score(w, x_row, u_row, j, score)
        for oi in range(g0, g1):
            rev[order[oi]] = True
        if not dead:
            # the new tokens may contradict each other (same interval, same step)
            for oi in range(g0, g1):
                j = order[oi]
                base = (j // l) * l
                a = j - base
                for b in range(l):
                    if b != a and rev[base + b] and bits[a, x_row[j], b] != bits[b, x_row[base + b], a]:
                        dead = True
    return logp, ngroups, not dead


@njit(cache=True, parallel=True)
def _interval_run(bits, l, log_q_in, steps, x, u, score, out_logp, out_nfe, out_logq):
    # bits (l, V, l) i8; log_q_in: log q of any sequence in the support; steps/x/u (n, L)
    n, L = steps.shape
    V = bits.shape[1]
    for b in prange(n):
        w = np.empty(V)
        lp, nfe, ok = _interval_one(bits, l, steps[b], x[b], u[b], score, w)
        out_logp[b] = lp
        out_nfe[b] = nfe
        out_logq[b] = log_q_in if ok else -np.inf
