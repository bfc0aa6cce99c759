"""Leakage and per-token KL of a learned model, measured exactly per context.

*Leakage* of a model at a context is the probability it puts on tokens that the language makes
impossible there:

* MDM, masked position ``i`` given the revealed set ``x_R``:
  ``sum_{v : q(v | x_R) = 0} p_theta(v | x_R)``;
* AR, position ``i`` given the prefix ``x_{<i}``: ``sum_{v : q(v | x_{<i}) = 0} p_theta(v | x_{<i})``.

One leaked unit of mass per token is one chance in ``1/leak`` to leave the support, so the
sequence error rate of a sampler built on the model is about ``1 - (1 - leak)^L`` (issue 14).
The KL ``KL(q(. | context) || p_theta(. | context))`` at the same contexts is the quantity that
Assumption 4.1 bounds uniformly (as reconstructed, STATEMENTS.md §3): its mean is the typical
learning error and its maximum over the contexts seen is a lower bound on ``epsilon_learning``.

Both are exact at each context (``q`` from ``lang.conditional_marginals`` or, for AR,
``lang.prefix_conditionals``; float64); the only randomness is the choice of contexts: held-out
exact samples and, for the MDM, masks drawn from the training schedule (``t = eps + (1 - eps) u``,
each token masked with probability ``1 - alpha_t``). The reported mean is over contexts of the
per-token average (mean over masked positions of one context, or over the chosen prefix positions
of one sequence), with a normal-approximation interval over the independent contexts.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import entr

from neural.diffusion import alpha


def context_terms(q, log_p, where):
    """Leakage and KL(q || p) at every position, (B, L) each, zero where ``where`` is False.

    ``q`` (B, L, V) exact conditional laws, ``log_p`` (B, L, V) model log-probabilities (float64).
    Leakage is ``sum_{v: q = 0} exp(log_p)``; the KL sums ``q (log q - log p)`` over ``q > 0``
    (``inf`` where the model gives a possible token probability 0).
    """
    q = np.asarray(q, dtype=np.float64)
    log_p = np.asarray(log_p, dtype=np.float64)
    if q.shape != log_p.shape or q.ndim != 3:
        raise ValueError(f"context_terms: q {q.shape} and log_p {log_p.shape} must both be (B, L, V)")
    impossible = q == 0.0
    p = np.exp(log_p)
    leak = np.where(impossible, p, 0.0).sum(-1)  # (B, L)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_terms = np.where(impossible, 0.0, q * (np.log(np.where(impossible, 1.0, q)) - log_p))
    kl = kl_terms.sum(-1)  # (B, L)
    return np.where(where, leak, 0.0), np.where(where, kl, 0.0)


def _ci_or_none(lo, hi):
    """``[max(0, lo), hi]`` for a quantity that is ``>= 0``; None where there is no interval (fewer
    than two contexts, or an infinite KL), so the JSON never holds ``Infinity``."""
    return [max(0.0, lo), hi] if np.isfinite(lo) and np.isfinite(hi) else None


def _summary(per_ctx_leak, per_ctx_kl, max_leak, max_kl, n_tokens, ci_alpha, what):
    from mdm_exact.stats import mean_ci

    lm, llo, lhi = mean_ci(per_ctx_leak, ci_alpha)
    km, klo, khi = mean_ci(per_ctx_kl, ci_alpha)
    return {"leakage_per_token": lm, "leakage_ci": _ci_or_none(llo, lhi), "leakage_max": float(max_leak),
            "kl_per_token": km, "kl_ci": _ci_or_none(klo, khi), "kl_max": float(max_kl),
            "num_contexts": int(len(per_ctx_leak)), "num_tokens": int(n_tokens), "ci_alpha": ci_alpha,
            "note": what}


def _log_probs_mdm(denoiser, x_t):
    with torch.no_grad():
        return denoiser(x_t).double().cpu().numpy()


def _masked_terms(lang, denoiser, x, masked):
    """Leakage, KL and exact entropy ``H(q(x_i | x_R))`` at every position of a batch, (b, L) each,
    zero where ``masked`` is False: the per-context measurement of :func:`mdm_leakage` and
    :func:`mdm_pattern_kl`."""
    q = lang.conditional_marginals(x, ~masked)  # (b, L, V)
    x_t = torch.from_numpy(np.where(masked, denoiser.mask_id, x)).to(denoiser.device)
    leak, kl = context_terms(q, _log_probs_mdm(denoiser, x_t), masked)
    ent = np.where(masked, entr(q).sum(-1), 0.0)  # (b, L) in nats, 0 log 0 = 0
    return leak, kl, ent


def _by_mask_fraction(frac_bin, leak, kl, ent, tokens, bins, ci_alpha):
    """One row per bin of the contexts' masked fraction: means over the contexts in it (see :func:`mdm_leakage`)."""
    from mdm_exact.stats import mean_ci

    rows = []
    for j in range(bins):
        sel = frac_bin == j
        row = {"mask_fraction": [j / bins, (j + 1) / bins], "num_contexts": int(sel.sum()),
               "num_tokens": int(tokens[sel].sum())}
        if sel.any():
            for name, v in (("kl_per_token", kl[sel]), ("leakage_per_token", leak[sel]),
                            ("entropy_per_token", ent[sel])):
                m, lo, hi = mean_ci(v, ci_alpha)
                row[name] = m
                row[name.replace("_per_token", "_ci")] = _ci_or_none(lo, hi)  # all three are >= 0
            # the bin's share of the learning error relative to the uncertainty left there;
            # None where the exact law is deterministic (H = 0) and the ratio has no meaning
            row["kl_over_entropy"] = row["kl_per_token"] / row["entropy_per_token"] if row["entropy_per_token"] > 0 \
                else None
        rows.append(row)
    return rows


def _all_masked(lang, denoiser, L, schedule, t_eps):
    """The ``all_masked`` block of :func:`mdm_leakage` (exact)."""
    from scipy.integrate import quad

    q = lang.conditional_marginals(np.zeros((1, L), np.int64), np.zeros((1, L), dtype=bool))  # (1, L, V)
    x_t = torch.full((1, L), int(denoiser.mask_id), dtype=torch.long, device=denoiser.device)
    leak, kl = context_terms(q, _log_probs_mdm(denoiser, x_t), np.ones((1, L), dtype=bool))  # (1, L) each

    def move(u):  # masking probability at t = eps + (1 - eps) u
        return float(1.0 - alpha(schedule, t_eps + (1.0 - t_eps) * u))

    p_all = quad(lambda u: move(u) ** L, 0.0, 1.0, epsabs=0.0, epsrel=1e-10, limit=200)[0]
    p_some = 1.0 - quad(lambda u: (1.0 - move(u)) ** L, 0.0, 1.0, epsabs=0.0, epsrel=1e-10, limit=200)[0]
    lk = float(leak.mean())
    return {"leakage_per_token": lk, "kl_per_token": float(kl.mean()), "leakage_max": float(leak.max()),
            "leakage_by_position": [float(v) for v in leak[0]], "probability": p_all,
            "leakage_contribution": p_all / p_some * lk}


def mdm_leakage(lang, denoiser, L: int, *, num_sequences: int = 256, schedule: str = "linear", t_eps: float = 1e-3,
                rng=None, batch_size: int = 64, ci_alpha: float = 0.05, data=None, bins: int = 10) -> dict:
    """Leakage and KL per masked token of an MDM denoiser, masks from the training schedule.

    ``denoiser(x_t) -> (B, L, V)`` log-probabilities (SUBS: :class:`neural.sample.NetworkDenoiser`
    or :class:`neural.oracle.ExactOracle`), with ``mask_id`` and ``device``. ``data`` (n, L):
    held-out sequences to use instead of fresh samples. ``rng`` (int or NumPy Generator) draws
    the sequences (when ``data`` is None), the times and the masks.

    ``all_masked`` is the one context that the schedule draws with positive probability, every
    position masked, measured exactly (one forward pass): its leakage and KL per token, the
    probability ``P(all masked) = E_t[(1 - alpha_t)^L]`` and ``leakage_contribution``, the part
    of the expectation that ``leakage_per_token`` estimates which it accounts for, exactly
    (``P(all masked) / P(some masked)`` times its leakage). A network that cannot tell positions
    apart there (rotary attention alone, :class:`neural.model.ModelConfig`) gives every position
    one law; where the first tokens' law has zeros that is a floor no training removes
    (paper-2gram, L = 64: 1.07e-4).

    ``by_mask_fraction`` says *where* the learning error sits: the contexts are grouped by the
    fraction ``k / L`` of their positions that are masked (``bins`` equal bins of ``[0, 1]``; a
    context with ``k`` masked positions goes to bin ``min(k * bins // L, bins - 1)``), and each
    row gives, over the contexts in its bin, the mean per-token KL and leakage (with intervals, as
    for the totals), the mean per-token exact entropy ``H(q(x_i | x_R))`` (with interval) and their ratio
    ``kl_over_entropy``. A sampler with ``N`` steps queries the model at every fraction from 1
    down to about ``1 / N``, so the rows near 0 are the late, nearly revealed steps.
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"mdm_leakage: bins must be a positive integer, got {bins!r}")
    rng = np.random.default_rng(rng)
    x_all = lang.sample(int(num_sequences), int(L), rng=rng) if data is None else np.asarray(data, dtype=np.int64)
    n = x_all.shape[0]
    u = rng.random(n)  # (n,)
    t = t_eps + (1.0 - t_eps) * u
    move = 1.0 - alpha(schedule, t)  # (n,) masking probability
    masked_all = rng.random(x_all.shape) < move[:, None]  # (n, L)
    per_leak, per_kl, per_ent, per_m, mx_leak, mx_kl = [], [], [], [], 0.0, 0.0
    for s in range(0, n, batch_size):
        x = x_all[s : s + batch_size]
        masked = masked_all[s : s + batch_size]
        leak, kl, ent = _masked_terms(lang, denoiser, x, masked)  # (b, L) each
        m = masked.sum(1)  # (b,)
        keep = m > 0
        per_leak.extend((leak.sum(1)[keep] / m[keep]).tolist())
        per_kl.extend((kl.sum(1)[keep] / m[keep]).tolist())
        per_ent.extend((ent.sum(1)[keep] / m[keep]).tolist())
        per_m.extend(m[keep].tolist())
        mx_leak, mx_kl = max(mx_leak, float(leak.max())), max(mx_kl, float(kl.max()))
    m = np.asarray(per_m, dtype=np.int64)
    if m.size == 0:
        raise ValueError(f"mdm_leakage: none of the {n} contexts has a masked position; use more sequences")
    out = _summary(per_leak, per_kl, mx_leak, mx_kl, int(m.sum()), ci_alpha,
                   f"MDM: per masked token given the revealed set; masks from the {schedule} training schedule; "
                   "mean over contexts of the per-token average, normal interval over contexts")
    out["all_masked"] = _all_masked(lang, denoiser, int(L), schedule, t_eps)
    frac_bin = np.minimum(m * bins // int(L), bins - 1)
    out["by_mask_fraction"] = _by_mask_fraction(frac_bin, np.asarray(per_leak), np.asarray(per_kl),
                                                np.asarray(per_ent), m, bins, ci_alpha)
    return out


def standard_patterns(L: int) -> dict:
    """Fixed mask patterns that isolate what an MDM has to compute, ``{name: (L,) bool, True = masked}``.

    ``one masked``: position ``L // 2`` alone, every other position revealed (for an ``n``-gram the
    exact law there is a product of ``n`` table entries over the ``n - 1`` neighbours on each side:
    a pure lookup); ``two adjacent masked``: ``L // 2`` and ``L // 2 + 1``; ``every 2nd masked``
    and ``every 4th masked``: the odd positions, and the positions ``2 mod 4``.
    """
    L = int(L)
    if L < 4:
        raise ValueError(f"standard_patterns: expected L >= 4, got {L}")
    pos = np.arange(L)
    return {"one masked": pos == L // 2, "two adjacent masked": (pos == L // 2) | (pos == L // 2 + 1),
            "every 2nd masked": pos % 2 == 1, "every 4th masked": pos % 4 == 2}


def mdm_pattern_kl(lang, denoiser, L: int, patterns=None, *, num_sequences: int = 1024, rng=None, data=None,
                   batch_size: int = 64, ci_alpha: float = 0.05) -> dict:
    """KL, leakage and exact entropy per masked token of an MDM at fixed mask patterns.

    ``patterns``: ``{name: (L,) bool}`` (True = masked; default :func:`standard_patterns`), applied
    to held-out sequences (``data``, or ``num_sequences`` exact samples drawn with ``rng``). For
    each pattern: the means over sequences of the per-token KL(q || p_theta), leakage and
    ``H(q(x_i | x_R))``, with normal intervals over the independent sequences, and
    ``kl_over_entropy``. :func:`mdm_leakage` averages over the training schedule's masks; this
    asks which computation fails (the 4-gram MDMs of reports/neural miss a single masked token
    between revealed neighbours, where the 3-gram ones do not).
    """
    from mdm_exact.stats import mean_ci

    L = int(L)
    patterns = standard_patterns(L) if patterns is None else patterns
    rng = np.random.default_rng(rng)
    x_all = lang.sample(int(num_sequences), L, rng=rng) if data is None else np.asarray(data, dtype=np.int64)
    out = {}
    for name, pat in patterns.items():
        pat = np.asarray(pat, dtype=bool)
        if pat.shape != (L,) or not pat.any():
            raise ValueError(f"mdm_pattern_kl: pattern {name!r} must be an (L,) = ({L},) boolean array with a masked "
                             f"position, got shape {pat.shape}")
        k = int(pat.sum())
        per = {"kl": [], "leakage": [], "entropy": []}
        for s in range(0, x_all.shape[0], batch_size):
            x = x_all[s : s + batch_size]
            leak, kl, ent = _masked_terms(lang, denoiser, x, np.broadcast_to(pat, x.shape))  # (b, L) each
            per["kl"].extend((kl.sum(1) / k).tolist())
            per["leakage"].extend((leak.sum(1) / k).tolist())
            per["entropy"].extend((ent.sum(1) / k).tolist())
        row = {"masked_positions": k, "num_sequences": int(x_all.shape[0])}
        for key, vals in per.items():
            m, lo, hi = mean_ci(vals, ci_alpha)
            row[f"{key}_per_token"] = m
            row[f"{key}_ci"] = _ci_or_none(lo, hi)
        row["kl_over_entropy"] = row["kl_per_token"] / row["entropy_per_token"] if row["entropy_per_token"] > 0 else None
        out[name] = row
    return out


def ar_prefix_log_probs(net, x):
    """``log p_theta(. | x_{<i})`` for every position, (B, L, V) float64 (BOS = id ``V``)."""
    B = x.shape[0]
    inp = torch.cat([torch.full((B, 1), net.config.mask_id, dtype=x.dtype, device=x.device), x[:, :-1]], dim=1)
    with torch.no_grad():
        return torch.log_softmax(net(inp).double(), dim=-1)


def ar_leakage(lang, net, L: int, *, num_sequences: int = 256, positions_per_sequence: int | None = None, rng=None,
               batch_size: int = 32, ci_alpha: float = 0.05, data=None) -> dict:
    """Leakage and KL per token of an AR model given the prefix.

    Every position of each held-out sequence (``positions_per_sequence=None``), or that many
    positions drawn uniformly without replacement per sequence (long ``L``).
    """
    rng = np.random.default_rng(rng)
    x_all = lang.sample(int(num_sequences), int(L), rng=rng) if data is None else np.asarray(data, dtype=np.int64)
    n = x_all.shape[0]
    K = L if positions_per_sequence is None else min(int(positions_per_sequence), L)
    device = next(net.parameters()).device
    per_leak, per_kl, mx_leak, mx_kl, tokens = [], [], 0.0, 0.0, 0
    for s in range(0, n, batch_size):
        x = x_all[s : s + batch_size]
        b = x.shape[0]
        if K == L:
            pos = np.broadcast_to(np.arange(L), (b, L)).copy()
        else:
            pos = np.sort(np.argsort(rng.random((b, L)), axis=1)[:, :K], axis=1)  # (b, K)
        q = lang.prefix_conditionals(x, pos)  # (b, K, V)
        lp_all = ar_prefix_log_probs(net, torch.from_numpy(x).to(device)).cpu().numpy()  # (b, L, V)
        lp = np.take_along_axis(lp_all, pos[:, :, None], axis=1)  # (b, K, V)
        leak, kl = context_terms(q, lp, np.ones(pos.shape, dtype=bool))
        per_leak.extend(leak.mean(1).tolist())
        per_kl.extend(kl.mean(1).tolist())
        tokens += b * K
        mx_leak, mx_kl = max(mx_leak, float(leak.max())), max(mx_kl, float(kl.max()))
    return _summary(per_leak, per_kl, mx_leak, mx_kl, tokens, ci_alpha,
                    "AR: per token given the prefix; " + ("all positions" if K == L else f"{K} uniform positions")
                    + " per held-out sequence; mean over sequences, normal interval")


def expected_ser_from_leakage(leak: float, L: int) -> float:
    """``1 - (1 - leak)^L``: the SER that leakage alone would cause if it were the same at every step."""
    return -math.expm1(L * math.log1p(-leak))


def expected_ser_from_profile(rows, L: int, num_steps: int, *, ideal_ser: float = 0.0) -> float:
    """The SER that the held-out leakage predicts for the linear schedule with ``num_steps`` steps.

    ``rows``: the ``by_mask_fraction`` rows of :func:`mdm_leakage`. Step ``k`` (``k = 0 .. N - 1``)
    reveals ``L / N`` tokens in expectation while a fraction ``1 - k / N`` of the sequence is still
    masked; each leaks with the mean leakage of that fraction's bin (an empty bin: its nearest
    non-empty neighbour). Leaks are taken as independent of each other and of the idealised
    sampler's own errors, so the prediction is ``1 - (1 - ideal_ser) prod_k (1 - leak_k)^(L / N)``
    (with ``ideal_ser = 0``: leakage alone). With the same leakage in every bin it is
    :func:`expected_ser_from_leakage`.

    The contexts behind ``rows`` are exact samples masked at random; a sampler's own contexts
    are not, so a measured SER well above the prediction says that the model's errors compound
    along its trajectory (it leaks more in the contexts it makes itself than in the data's).
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"expected_ser_from_profile: num_steps must be a positive integer, got {num_steps!r}")
    if not (0.0 <= ideal_ser <= 1.0):
        raise ValueError(f"expected_ser_from_profile: ideal_ser must lie in [0, 1], got {ideal_ser!r}")
    filled = [j for j, r in enumerate(rows) if r.get("num_contexts") and "leakage_per_token" in r]
    if not filled:
        raise ValueError("expected_ser_from_profile: no bin holds a context (by_mask_fraction rows of mdm_leakage)")
    bins = len(rows)
    leak = np.array([rows[min(filled, key=lambda f: (abs(f - j), f))]["leakage_per_token"] for j in range(bins)])
    masked_steps = num_steps - np.arange(num_steps)  # (N,) masked fraction before step k is this / N
    idx = np.minimum(masked_steps * bins // num_steps, bins - 1)  # integer arithmetic: no bin-edge rounding
    with np.errstate(divide="ignore"):  # a bin that leaks everything: log 0 = -inf, SER 1
        log_keep = (L / num_steps) * np.log1p(-np.minimum(leak[idx], 1.0)).sum() + np.log1p(-ideal_ser)
    ser = float(-np.expm1(log_keep))
    return ser if ser > 0.0 else 0.0  # no -0.0 where nothing leaks
