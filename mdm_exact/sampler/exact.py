r"""Exact output law of the idealised factorised MDM sampler, and its metrics (small ``L``).

The sampler (STATEMENTS.md §1.4-1.7, as reconstructed; Feng et al. 2025, arXiv:2502.09622v1,
Definition B.1): steps ``k = 1..N`` in generation order; a step rule
(:mod:`mdm_exact.sampler.schedules`) decides which still-masked positions are revealed at step ``k``;
each newly revealed position ``j`` is drawn *independently* from the conditional marginal
``m_j(. | x_R)`` given the tokens ``x_R`` revealed before the step (the data conditional
``q(x_j | x_R)`` for the idealised sampler, or an imperfect model's prediction). The output
law is ``p(x) = sum_tau Pr(tau) p_tau(x)``.

Algorithm
---------
Partial sequences ``y in {0..V}^L`` (``V`` = mask) are the DP states, indexed in base
``V + 1`` with position 0 most significant.

1. ``log Q[y] = log q(x_R)`` for all ``(V+1)^L`` states, from the explicit joint table
   ``lang.log_prob(all_sequences(V, L))`` by a ``logsumexp`` over one axis at a time.
2. Conditional table ``m_j(v | y)`` for every state with ``j`` masked (``L (V+1)^(L-1) V``
   floats): ``Q[y, j <- v] / Q[y]`` for the language, uniform when ``Q[y] = 0`` (the
   language convention), or the model's table.
3. Forward DP ``g_k[y] = Pr(after step k the revealed tokens are y)``. Every source ``y`` with
   mass pushes it to its extensions: each masked ``j`` stays masked (``1 - r_kj``) or is
   revealed as ``v`` (``r_kj m_j(v | y)``); fixed-size rules reveal exactly ``s_k`` of the
   ``|M|`` masked positions, every subset with weight ``1 / C(|M|, s_k)``. The depth-first
   enumeration (:mod:`mdm_exact.sampler._kernels_exact`) costs at most ``(2V+1)^L`` per step (versus
   ``N^L V^L`` for summing over instances), prunes zero factors (sparse languages are much
   cheaper), and writes per-chunk buffers reduced in a fixed order (thread-count independent).

The last step reveals everything; ``g_N`` on the fully revealed states is ``p``. The DP works
in float64 probability space (exact zeros stay zero) and returns ``log p`` with exact
``-inf``.

Impossible contexts: when the revealed tokens already have ``q(x_R) = 0`` (possible because
parallel draws ignore dependencies) the language's conditionals are uniform. Such runs end
outside ``supp q``, so SER, generative perplexity, ``KL(q || p)`` and
``E_tau KL(q || p_tau)`` do not depend on this convention; ``KL(p || q)`` is infinite anyway;
only ``entropy_model`` and the law on ``V^L \ supp q`` do.

Lemma B.2 / B.3 quantities (STATEMENTS.md §4.C) are computed by linearity over
(revealed set ``R``, position ``j``) pairs, see :func:`instance_kl_terms`.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.special import entr, logsumexp, rel_entr

from mdm_exact.sampler import metrics as _metrics
from mdm_exact._validate import as_length, check_exact_size
from mdm_exact.stats import clip_nonnegative
from mdm_exact.languages.base import all_sequences
from mdm_exact.languages.io import as_language
from mdm_exact.sampler.results import SamplerResult
from mdm_exact.sampler.schedules import FixedSizes, LeftToRight, RandomOrder, ScheduleSteps, StepRule, expected_nonempty_steps

__all__ = [
    "exact_output_law",
    "exact_metrics",
    "log_joint_table",
    "conditional_table",
    "instance_kl_terms",
    "step_plan",
    "MAX_STATES",
    "MAX_WORK",
]

#: Largest number of DP states ``(V+1)^L`` accepted (one float64 array is 8 bytes each).
MAX_STATES = 3**15
#: Largest estimated number of DP leaf updates (about 3 ns each on one core).
MAX_WORK = 4 * 10**10
#: Number of fixed chunks of the forward step (results do not depend on the thread count).
N_CHUNKS = 4
#: Largest table of tail options per source in the forward kernel.
TAIL_MAX = 81


# ---------------------------------------------------------------------------- step plan
def step_plan(rule: StepRule, L: int) -> list:
    """Per-step reveal parameters ``(r, size, scale)`` of a step rule, generation order.

    ``r`` (L,) is the probability that a still-masked position is revealed at this step
    (schedule rules; ``size = -1``); fixed-size rules have ``size = s_k`` and
    ``scale = 1 / C(L - S_k, s_k)`` with ``S_k = s_1 + ... + s_{k-1}``.
    """
    L = as_length(L)
    if isinstance(rule, ScheduleSteps):
        rc = rule.reveal_conditional()  # (N,)
        return [(np.full(L, float(r)), -1, 1.0) for r in rc]
    if isinstance(rule, RandomOrder):
        rule = FixedSizes((1,) * L)
    if isinstance(rule, FixedSizes):
        rule.check_length(L)
        plan, done = [], 0
        for s in rule.sizes:
            plan.append((np.ones(L), int(s), 1.0 / math.comb(L - done, s)))
            done += s
        return plan
    if isinstance(rule, LeftToRight):
        return [(np.eye(L)[k].copy(), -1, 1.0) for k in range(L)]
    raise TypeError(f"unknown step rule {rule!r}; expected a mdm_exact.sampler.schedules step rule")


def _work_estimate(V: int, L: int, plan) -> float:
    total = 0.0
    done = 0
    for r, size, _ in plan:
        if size >= 0:
            total += math.comb(L - done, size) * V**size * math.comb(L, done) * V**done
            done += size
        else:
            nz = r > 0
            full = r >= 1
            # states with mass have every position masked or revealed: (V+1) choices, and a
            # masked one branches into 1 + V options (V if r = 1, 1 if r = 0)
            branch = np.where(full, V, np.where(nz, V + 1, 1))
            total += float(np.prod(V + branch.astype(float)))
    return total


def _check_size(V: int, L: int, plan, max_work) -> None:
    S = (V + 1) ** L
    if S > MAX_STATES:
        raise ValueError(
            f"exact engine: (V+1)^L = {V + 1}^{L} = {S} DP states exceeds the limit MAX_STATES = {MAX_STATES} "
            f"(memory); use Monte Carlo (mdm-theory sample) for this size"
        )
    work = _work_estimate(V, L, plan)
    limit = MAX_WORK if max_work is None else max_work
    if work > limit:
        raise ValueError(
            f"exact engine: about {work:.3g} DP updates for V = {V}, L = {L}, N = {len(plan)} exceeds the "
            f"limit {limit:.3g} (about {limit * 3e-9:.0f} s); use Monte Carlo, fewer steps or a shorter L"
        )


# ---------------------------------------------------------------------------- tables
def log_joint_table(lang, L: int) -> np.ndarray:
    """``log q(x_R)`` for every partial sequence, shape ``(V+1,)*L`` (index ``V`` = masked).

    Built from ``lang.log_prob(all_sequences(V, L))`` by appending, along each axis in turn,
    the ``logsumexp`` over that axis (the marginal with that position masked).
    """
    L = as_length(L)
    V = int(lang.vocab_size)
    if (V + 1) ** L > MAX_STATES:
        raise ValueError(f"exact engine: (V+1)^L = {(V + 1) ** L} states exceeds MAX_STATES = {MAX_STATES}")
    arr = np.asarray(lang.log_prob(all_sequences(V, L)), dtype=np.float64).reshape((V,) * L)  # (V,)*L
    with np.errstate(divide="ignore"):
        for i in range(L):
            m = logsumexp(arr, axis=i, keepdims=True)
            arr = np.concatenate([arr, m], axis=i)  # axis i grows from V to V+1
    return np.ascontiguousarray(arr)


def conditional_table(log_Q: np.ndarray) -> np.ndarray:
    """Data conditionals ``q(x_j = v | y)`` for states with ``j`` masked, shape (L, (V+1)^(L-1), V).

    ``out[j, red, v]``, ``red`` = state index with digit ``j`` deleted; uniform where
    ``q(x_R) = 0`` (the language convention, see the module docstring).
    """
    L = log_Q.ndim
    V = log_Q.shape[0] - 1
    out = np.empty((L, (V + 1) ** (L - 1), V))  # (L, S_red, V)
    for j in range(L):
        base = log_Q.take(V, axis=j).ravel()  # (S_red,) log q(x_R)
        dead = base == -np.inf
        for v in range(V):
            num = log_Q.take(v, axis=j).ravel()  # (S_red,)
            with np.errstate(invalid="ignore"):
                c = np.exp(num - np.where(dead, 0.0, base))
            out[j, :, v] = np.where(dead, 1.0 / V, c)
    return out


def _state_tokens(V: int, L: int, start: int, stop: int):
    """Tokens and revealed mask of states ``start..stop-1``: (n, L) int64, (n, L) bool."""
    s = np.arange(start, stop, dtype=np.int64)  # (n,)
    digits = np.empty((s.size, L), dtype=np.int64)  # (n, L)
    for i in range(L - 1, -1, -1):
        digits[:, i] = s % (V + 1)
        s = s // (V + 1)
    revealed = digits < V
    return np.where(revealed, digits, 0), revealed


def _model_table(model, V: int, L: int, chunk: int = 1 << 16) -> np.ndarray:
    """Reduced conditional table (L, (V+1)^(L-1), V) of any object with ``conditional_marginals``."""
    if hasattr(model, "conditional_table"):
        return np.ascontiguousarray(model.conditional_table(L), dtype=np.float64)
    S = (V + 1) ** L
    strides = (V + 1) ** np.arange(L - 1, -1, -1)  # (L,)
    out = np.empty((L, S // (V + 1), V))  # (L, S_red, V)
    for start in range(0, S, chunk):
        stop = min(S, start + chunk)
        x, rev = _state_tokens(V, L, start, stop)
        cm = np.asarray(model.conditional_marginals(x, rev), dtype=np.float64)  # (n, L, V)
        s = np.arange(start, stop, dtype=np.int64)
        for j in range(L):
            sel = ~rev[:, j]
            st = strides[j]
            red = (s[sel] // (st * (V + 1))) * st + s[sel] % st
            out[j, red, :] = cm[sel, j, :]
    return out


def _resolve_tables(lang, L: int, model):
    log_Q = log_joint_table(lang, L)  # (V+1,)*L
    V = log_Q.shape[0] - 1
    if model is None or model is lang:
        cond = conditional_table(log_Q)
    else:
        if int(getattr(model, "vocab_size", V)) != V:
            raise ValueError(f"model: vocabulary size {model.vocab_size} differs from the language's {V}")
        cond = _model_table(model, V, L)
        if cond.shape != (L, (V + 1) ** (L - 1), V) or not np.all(np.isfinite(cond)) or np.any(cond < 0):
            raise ValueError("model: conditional marginals must be finite, non-negative, shape (L, (V+1)^(L-1), V)")
    return log_Q, cond


# ---------------------------------------------------------------------------- forward DP
def _forward_step_reference(g, L, V, strides, cond, r, size, scale):
    """Plain-Python reference of ``_kernels_exact._forward_step`` (tests only)."""
    out = np.zeros_like(g)
    B = V + 1
    for s in np.flatnonzero(g):
        digits = [(s // strides[i]) % B for i in range(L)]
        masked = [i for i in range(L) if digits[i] == V]
        if size >= 0 and size > len(masked):
            continue
        for opts in itertools.product(range(B), repeat=len(masked)):
            nrev = sum(o < V for o in opts)
            if size >= 0 and nrev != size:
                continue
            w = g[s] * (scale if size >= 0 else 1.0)
            idx = s
            for j, o in zip(masked, opts):
                rj = 1.0 if size >= 0 else r[j]
                if o == V:
                    w *= 1.0 if size >= 0 else 1.0 - rj
                else:
                    red = (s // (strides[j] * B)) * strides[j] + s % strides[j]
                    w *= rj * cond[j, red, o]
                    idx += (o - V) * strides[j]
            out[idx] += w
    return out


def _tail_size(V: int, L: int) -> int:
    """Number of tail positions tabulated per source: the largest ``b`` with ``(V+1)^b <= TAIL_MAX``."""
    b = 1
    while b < L and (V + 1) ** (b + 1) <= TAIL_MAX:
        b += 1
    return b


def _run_forward(cond, V: int, L: int, plan, *, use_kernel: bool = True) -> np.ndarray:
    from mdm_exact.sampler._kernels_exact import _forward_step

    S = (V + 1) ** L
    strides = (V + 1) ** np.arange(L - 1, -1, -1, dtype=np.int64)  # (L,)
    g = np.zeros(S)  # (S,)
    g[S - 1] = 1.0  # all masked
    cond = np.ascontiguousarray(cond, dtype=np.float64)
    for r, size, scale in plan:
        r = np.ascontiguousarray(r, dtype=np.float64)
        if use_kernel:
            buf = np.zeros((N_CHUNKS, S))  # (n_chunks, S)
            _forward_step(g, L, V, strides, cond, r, size, scale, _tail_size(V, L), buf)
            g = buf[0].copy()
            for c in range(1, N_CHUNKS):
                g += buf[c]
        else:
            g = _forward_step_reference(g, L, V, strides, cond, r, size, scale)
    return g


def _full_states(V: int, L: int) -> np.ndarray:
    """Indices of the fully revealed states in ``all_sequences`` order, (V^L,)."""
    idx = np.arange((V + 1) ** L, dtype=np.int64).reshape((V + 1,) * L)
    return idx[(slice(0, V),) * L].ravel()


def _prepare(lang, L, rule, model, max_work):
    """Validated ``L``, ``V``, the step plan and the tables of one exact run; sizes are refused
    before anything large is built."""
    L = as_length(L)
    V = int(lang.vocab_size)
    check_exact_size(V, L, None, max_states=MAX_STATES, max_work=MAX_WORK)  # before the plan: no (V+1)^L bigint
    plan = step_plan(rule, L)
    _check_size(V, L, plan, max_work)
    log_Q, cond = _resolve_tables(lang, L, model)
    return L, V, plan, log_Q, cond


def exact_output_law(lang, L, rule, *, model=None, max_work=None, _use_kernel=True) -> np.ndarray:
    r"""Exact ``log p(x)`` of the idealised sampler for all ``V^L`` sequences.

    Parameters
    ----------
    lang : Language or str or os.PathLike
        A language, or a preset name or language file (:func:`mdm_exact.languages.as_language`).
        The data law ``q``.
    L : int
        Sequence length.
    rule : StepRule
        Step rule (:mod:`mdm_exact.sampler.schedules`), generation order.
    model : object, optional
        Anything with ``conditional_marginals(x, revealed)`` (and ``vocab_size``), e.g.
        :class:`mdm_exact.sampler.models.PerturbedModel`; ``None`` (or ``lang``) is the perfect model
        ``p_theta(x_j | x_R) = q(x_j | x_R)``.
    max_work : float, optional
        Refuse when the estimated number of DP updates exceeds it (default ``MAX_WORK``).

    Returns
    -------
    ndarray, shape (V**L,)
        ``log p(x)`` in ``all_sequences(V, L)`` order; exactly ``-inf`` where ``p(x) = 0``.

    Raises
    ------
    ValueError
        When ``(V+1)^L > MAX_STATES`` or the work estimate exceeds ``max_work``.
    FloatingPointError
        When a sequence of ``supp q`` got probability 0 under the perfect model
        (float64 underflow; never observed at the supported sizes).

    Notes
    -----
    Feng et al. (2025), arXiv:2502.09622v1, Definition B.1 as reconstructed in
    STATEMENTS.md §1.7: :math:`p(x) = \sum_\tau \Pr(\tau) \prod_k \prod_{j\in M_k}
    p_\theta(x_j \mid x_{M_{<k}})`. See the module docstring for the algorithm.
    """
    lang = as_language(lang)
    L, V, plan, log_Q, cond = _prepare(lang, L, rule, model, max_work)
    return _law_from_tables(log_Q, cond, V, L, plan, perfect=model is None or model is lang, use_kernel=_use_kernel)


def _law_from_tables(log_Q, cond, V, L, plan, *, perfect, use_kernel=True):
    g = _run_forward(cond, V, L, plan, use_kernel=use_kernel)
    full = _full_states(V, L)
    p = g[full]  # (V^L,)
    if perfect and np.any((p == 0) & (log_Q.ravel()[full] > -np.inf)):
        raise FloatingPointError("exact engine: a sequence of supp q got p(x) = 0 (float64 underflow)")
    with np.errstate(divide="ignore"):
        return np.log(p)


# ---------------------------------------------------------------------------- Lemma B.2 / B.3
def _patterns(V: int, L: int) -> np.ndarray:
    """Revealed-set bitmask of every state, bit ``L-1-i`` for position ``i``; shape (V+1,)*L."""
    pat = np.zeros((V + 1,) * L, dtype=np.int64)
    for i in range(L):
        shape = [1] * L
        shape[i] = V + 1
        bit = (np.arange(V + 1) < V).astype(np.int64) << (L - 1 - i)  # (V+1,)
        pat = pat + bit.reshape(shape)
    return pat


def _set_laws(rule: StepRule, L: int):
    """``pre[k, R] = Pr(M_<k = R)`` (k = 0..N, k = N: everything revealed) and
    ``rate[k, R, j] = Pr(j in M_k | M_<k = R)`` for ``j`` not in ``R``; shapes (N+1, 2^L), (N, 2^L, L)."""
    nR = 1 << L
    sizes = np.array([bin(R).count("1") for R in range(nR)])  # (2^L,)
    bits = ((np.arange(nR)[:, None] >> (L - 1 - np.arange(L))[None, :]) & 1).astype(bool)  # (2^L, L)
    if isinstance(rule, ScheduleSteps):
        p = rule.p
        P = np.concatenate([[0.0], np.cumsum(p)])  # (N+1,)
        P[-1] = 1.0
        N = p.size
        pre = np.empty((N + 1, nR))
        for k in range(N + 1):
            pre[k] = P[k] ** sizes * (1.0 - P[k]) ** (L - sizes)
        rc = rule.reveal_conditional()  # (N,)
        rate = np.broadcast_to(rc[:, None, None], (N, nR, L)) * ~bits[None]
        return pre, rate
    if isinstance(rule, RandomOrder):
        rule = FixedSizes((1,) * L)
    if isinstance(rule, FixedSizes):
        rule.check_length(L)
        N = len(rule.sizes)
        done = np.concatenate([[0], np.cumsum(rule.sizes)])  # (N+1,)
        pre = np.zeros((N + 1, nR))
        rate = np.zeros((N, nR, L))
        for k in range(N + 1):
            pre[k] = (sizes == done[k]) / math.comb(L, int(done[k]))
        for k in range(N):
            left = L - done[k]
            if left > 0:
                rate[k] = (rule.sizes[k] / left) * ~bits
        return pre, rate
    if isinstance(rule, LeftToRight):
        pre = np.zeros((L + 1, nR))
        rate = np.zeros((L, nR, L))
        for k in range(L + 1):
            R = ((1 << k) - 1) << (L - k)  # positions 0..k-1
            pre[k, R] = 1.0
            if k < L:
                rate[k, R, k] = 1.0
        return pre, rate
    raise TypeError(f"unknown step rule {rule!r}")


def instance_kl_terms(lang, L, rule, *, model=None, _tables=None) -> dict:
    r"""Lemma B.2 right-hand side and its Lemma B.3 per-step decomposition, exactly.

    Returns a dict with

    * ``instance_kl_total``: :math:`\mathbb E_\tau D_{KL}(q \| p_\tau)` in nats, a total over the
      ``L`` positions (STATEMENTS.md §4.C,
      Lemma B.2 as reconstructed);
    * ``instance_kl_per_step`` (N,): :math:`\mathbb E_\tau \mathbb E_{x\sim q}
      D_{KL}(q(x_{M_k}|x_{M_{<k}}) \| \prod_{j\in M_k} p_\theta(x_j|x_{M_{<k}}))` (Lemma B.3);
    * ``token_kl_per_step`` (N,): the part due to per-token model error,
      :math:`\mathbb E \sum_{j\in M_k} D_{KL}(q(x_j|x_{M_{<k}}) \| p_\theta(x_j|x_{M_{<k}}))`;
    * ``tc_per_step`` (N,): expected conditional total correlation of the step,
      :math:`\mathbb E_\tau[\sum_{j\in M_k} H(X_j|X_{M_{<k}}) - H(X_{M_k}|X_{M_{<k}})]`;
      ``instance_kl_per_step = token_kl_per_step + tc_per_step``.

    Notes
    -----
    Linearity over pairs ``(R, j)``: with ``w_k(R, j) = Pr(M_<k = R, j in M_k)``,
    ``KL_tok(R, j) = E_{x_R} KL(q(x_j|x_R) || m_j(.|x_R))``, ``H_c(R, j) = H(X_j | X_R)``
    and ``H_set(R) = H(X_R)``: token part ``sum w_k KL_tok``, TC part
    ``sum w_k H_c - (E H_set(M_<=k) - E H_set(M_<k))`` (chain rule). Each term is
    non-negative up to rounding; the TC part is a difference of entropies, accurate to about
    ``1e-15 H(q)``.
    """
    L = as_length(L)
    if _tables is None:
        V = int(lang.vocab_size)
        _check_size(V, L, step_plan(rule, L), None)
        log_Q, cond = _resolve_tables(lang, L, model)
    else:
        log_Q, cond = _tables
    V = log_Q.shape[0] - 1
    nR = 1 << L
    pat = _patterns(V, L)  # (V+1,)*L
    Q = np.exp(log_Q)  # (V+1,)*L
    h_set = np.bincount(pat.ravel(), weights=entr(Q).ravel(), minlength=nR)  # (2^L,) H(X_R)
    kl_tok = np.zeros((nR, L))  # (2^L, L)
    h_c = np.zeros((nR, L))  # (2^L, L)
    for j in range(L):
        base = Q.take(V, axis=j).ravel()  # (S_red,) q(x_R)
        live = base > 0
        pj = pat.take(V, axis=j).ravel()[live]
        qc = np.stack([Q.take(v, axis=j).ravel()[live] for v in range(V)]) / base[live]  # (V, n_live)
        m = cond[j][live].T  # (V, n_live)
        klv = rel_entr(qc, m).sum(axis=0)  # (n_live,) may be inf
        hv = entr(qc).sum(axis=0)  # (n_live,)
        inf_pat = np.unique(pj[np.isinf(klv)])
        fin = np.isfinite(klv)
        kl_tok[:, j] = np.bincount(pj[fin], weights=base[live][fin] * klv[fin], minlength=nR)
        kl_tok[inf_pat, j] = np.inf
        h_c[:, j] = np.bincount(pj, weights=base[live] * hv, minlength=nR)
    pre, rate = _set_laws(rule, L)
    N = rate.shape[0]
    tok = np.zeros(N)
    tc = np.zeros(N)
    for k in range(N):
        w = pre[k][:, None] * rate[k]  # (2^L, L)
        pos = w > 0
        tok[k] = float((w[pos] * kl_tok[pos]).sum())
        dH = float(pre[k + 1] @ h_set - pre[k] @ h_set)
        tc[k] = float((w[pos] * h_c[pos]).sum()) - dH
    per_step = tok + tc
    return {
        "instance_kl_total": float(per_step.sum()),
        "instance_kl_per_step": per_step,
        "token_kl_per_step": tok,
        "tc_per_step": tc,
    }


# ---------------------------------------------------------------------------- metrics
def exact_metrics(lang, L, rule, *, model=None, max_work=None) -> SamplerResult:
    r"""Every metric of the paper on the exact output law (see :mod:`mdm_exact.sampler.metrics`).

    Returns a :class:`~mdm_exact.sampler.results.SamplerResult` (``engine = "exact"``, no
    intervals) with the shared fields ``ser``, ``gen_ppl`` (token-weighted, over samples in
    ``supp q``; ``None`` when ``SER = 1``), ``gen_ppl_seq_mean``, ``nfe_mean`` (expected
    number of non-empty steps, i.e. network calls), ``instance_kl_total``
    (:math:`\mathbb E_\tau D_{KL}(q \| p_\tau)`, Lemma B.2 RHS, nats) and
    ``instance_kl_per_token`` (the same divided by ``L``), and the extras ``kl_data_model``
    (``KL(q||p)``), ``kl_model_data`` (``KL(p||q)``, ``None`` when infinite), ``log_ter_gap``
    (``KL(q||p)/L``), ``instance_kl_per_step``, ``token_kl_per_step``, ``tc_per_step`` (lists,
    Lemma B.3 split of ``instance_kl_total``), ``entropy_model``, ``entropy_data``,
    ``total_correlation_data``, ``epsilon_learning`` (``0`` for the perfect model; the
    model's value when it has ``epsilon_learning``).
    """
    lang = as_language(lang)
    L, V, plan, log_Q, cond = _prepare(lang, L, rule, model, max_work)
    perfect = model is None or model is lang
    log_p = _law_from_tables(log_Q, cond, V, L, plan, perfect=perfect)
    full = _full_states(V, L)
    log_q = log_Q.ravel()[full]  # (V^L,)
    m = _metrics.law_metrics(log_p, log_q, V, L)
    terms = instance_kl_terms(lang, L, rule, model=model, _tables=(log_Q, cond))
    if perfect:
        eps = 0.0
    elif hasattr(model, "epsilon_learning"):
        eps = float(model.epsilon_learning(L))
    else:
        eps = None

    def fin(v):  # every quantity below is >= 0: rounding is clipped (never printed as -5e-16)
        return None if v is None or not math.isfinite(v) else clip_nonnegative(v)

    kl_total = fin(terms["instance_kl_total"])
    return SamplerResult(
        engine="exact",
        L=L,
        V=V,
        num_steps=len(plan),
        rule=rule.to_dict(),
        ser=m["ser"],
        gen_ppl=m["gen_ppl"],
        gen_ppl_seq_mean=m["gen_ppl_seq_mean"],
        nfe_mean=float(expected_nonempty_steps(rule, L)),
        instance_kl_total=kl_total,
        instance_kl_per_token=None if kl_total is None else kl_total / L,
        extra={
            "kl_data_model": m["kl_data_model"],
            "kl_model_data": m["kl_model_data"],
            "log_ter_gap": m["log_ter_gap"],
            "instance_kl_per_step": [fin(v) for v in terms["instance_kl_per_step"]],
            "token_kl_per_step": [fin(v) for v in terms["token_kl_per_step"]],
            "tc_per_step": [clip_nonnegative(v) for v in terms["tc_per_step"]],
            "entropy_model": m["entropy_model"],
            "entropy_data": m["entropy_data"],
            "total_correlation_data": m["total_correlation_data"],
            "epsilon_learning": eps,
        },
    )
