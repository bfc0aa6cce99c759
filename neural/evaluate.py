"""Scoring learned samplers against the exact language (all numbers in nats unless named ppl).

* :func:`score_samples` - SER (STATEMENTS.md §2.2) with a Clopper-Pearson interval, and
  generative perplexity under the true language (§2.3) in both conventions: token-weighted
  (``exp`` of the mean NLL per token over the samples in ``supp q``, MDLM) and the mean of
  per-sequence perplexities (SEDD).
* :func:`conditional_kl` - the measured ``epsilon_learning`` of Assumption 4.1 (§3):
  ``KL(q(x_i | x_R) || p_theta(x_i | x_R))`` on held-out masked contexts, mean and maximum.
* :func:`evaluate_mdm` / :func:`evaluate_ar` - curves against the number of steps, with the
  idealised sampler's Monte Carlo reference at the same ``N`` where :mod:`mdm_exact.sampler.montecarlo`
  is available.
* :func:`time_samplers` / :func:`matched_speedup` - wall clock of the cached MDM sampler
  against the AR model with a KV cache.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from mdm_exact._validate import check_policy_options
from neural.ar import sample_ar
from neural.sample import sample_mdm, sample_policy


def _seed(rng) -> int:
    """One int seed from ``rng`` (int | SeedSequence | torch.Generator | numpy Generator | None) for per-``N`` streams."""
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return int(rng)
    if isinstance(rng, torch.Generator):
        return int(torch.randint(0, 2**62, (1,), generator=rng, device=rng.device).item())
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**62))
    if rng is None or isinstance(rng, np.random.SeedSequence):
        ss = np.random.SeedSequence() if rng is None else rng
        return int(ss.generate_state(1, np.uint64)[0] % np.uint64(2**62))
    raise ValueError(f"rng: expected an int, a torch.Generator, a numpy Generator or None, got {type(rng).__name__}")


def _child(seed: int, *keys) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), *[int(k) for k in keys]])


def score_samples(lang, x, *, ci_alpha: float = 0.05) -> dict:
    """SER and generative perplexity of samples ``x`` (n, L) under the true language."""
    from mdm_exact.stats import clopper_pearson, mean_ci

    x = np.asarray(x, dtype=np.int64)
    n, L = x.shape
    ok = np.asarray(lang.in_support(x), dtype=bool)  # (n,)
    errors = int(n - ok.sum())
    out = {"num_samples": n, "L": L, "ser": errors / n, "ser_ci": list(clopper_pearson(errors, n, ci_alpha)),
           "num_in_support": int(ok.sum())}
    if ok.sum() == 0:
        out.update(gen_ppl=None, gen_ppl_ci=None, gen_ppl_seq_mean=None, gen_ppl_seq_mean_ci=None,
                   mean_log_prob_per_token=None)
        return out
    lp = lang.log_prob(x[ok]) / L  # (n_ok,) log q per token
    m, lo, hi = mean_ci(-lp, ci_alpha)
    s, slo, shi = mean_ci(np.exp(-lp), ci_alpha)
    out.update(gen_ppl=math.exp(m), gen_ppl_ci=[math.exp(lo), math.exp(hi)] if np.isfinite(lo) else None,
               gen_ppl_seq_mean=s, gen_ppl_seq_mean_ci=[slo, shi] if np.isfinite(slo) else None,
               mean_log_prob_per_token=float(lp.mean()))
    return out


def conditional_kl(lang, denoiser, *, num_contexts: int = 64, L: int, rng=None, batch_size: int = 16) -> dict:
    """``KL(q(x_i | x_R) || p_theta(x_i | x_R))`` per masked token on fresh masked contexts.

    A view of :func:`neural.leakage.mdm_leakage` (the one implementation): ``num_contexts``
    fresh exact samples, each masked under the linear schedule (rate ``t`` uniform). Returns the
    mean over contexts of the per-token KL with its interval, the maximum, the number of masked
    tokens, and the same measurement's leakage, ``by_mask_fraction`` rows and (exact) ``all_masked``
    block.
    """
    from neural.leakage import mdm_leakage

    r = mdm_leakage(lang, denoiser, L, num_sequences=num_contexts, rng=rng, batch_size=batch_size)
    return {"mean_kl_per_token": r["kl_per_token"], "mean_kl_ci": r["kl_ci"], "max_kl": r["kl_max"],
            "num_masked_tokens": r["num_tokens"], "num_contexts": r["num_contexts"],
            "leakage_per_token": r["leakage_per_token"], "leakage_ci": r["leakage_ci"],
            "by_mask_fraction": r["by_mask_fraction"], "all_masked": r["all_masked"],
            "note": "mean over contexts of the per-masked-token KL(q || p_theta), nats (neural.leakage.mdm_leakage)"}


def mc_reference(lang, L: int, rule, num_samples: int, *, rng=None) -> dict:
    """The idealised sampler at the same step rule (:func:`mdm_exact.sampler.montecarlo.run_monte_carlo`)
    or policy (:func:`mdm_exact.sampler.adaptive_mc.run_policy_monte_carlo`)."""
    from mdm_exact.sampler.policies import Policy

    if isinstance(rule, Policy):
        from mdm_exact.sampler.adaptive_mc import run_policy_monte_carlo

        return run_policy_monte_carlo(lang, L, rule, num_samples, rng=rng).to_dict()
    from mdm_exact.sampler.montecarlo import run_monte_carlo

    res = run_monte_carlo(lang, L, rule, num_samples, rng=rng, instance_kl=False)
    return res.to_dict()


def _rule(name: str, N: int, L: int):
    from mdm_exact.sampler.schedules import make_step_rule

    return make_step_rule(name, L=L, num_steps=N)


def adaptive_count(policy: str) -> bool:
    """Whether the policy named ``policy`` decides its own step sizes (``threshold:g``, ``eb:g``)."""
    from mdm_exact.sampler.policies import parse_policy

    return parse_policy(policy)[0] in ("threshold", "eb")


def mdm_policy(policy: str, N, L: int, *, rule: str = "linear", block_length=None, temperature: float = 1.0):
    """The shared :class:`~mdm_exact.sampler.policies.Policy` of ``--policy`` at ``N`` steps.

    The counts are those of the content-blind ``rule`` (``linear`` / ``cosine``: binomial counts of
    that schedule; ``fixed``: its balanced sizes), so ``policy="random"`` is that rule exactly;
    ``block_length`` gives LLaDA's balanced sizes inside each block (with ``linear`` or ``fixed``);
    ``threshold:g`` and ``eb:g`` take no ``N``. Bad combinations raise ``ValueError`` saying which.
    """
    from mdm_exact.sampler.policies import make_policy, parse_policy, policy_from_rule

    if rule not in ("linear", "cosine", "fixed"):
        raise ValueError(f"rule: expected linear, cosine or fixed, got {rule!r}")
    T = float(temperature)
    if not (math.isfinite(T) and T >= 0):
        raise ValueError(f"--temperature: expected T >= 0, got {temperature}")
    if adaptive_count(policy):
        if N is not None:
            raise ValueError(f"--policy {policy} reveals until done and takes no --steps")
        return make_policy(policy, L=L, block_length=block_length, temperature=T)
    if N is None:
        raise ValueError(f"--policy {policy}: --steps N is required")
    if block_length is not None:
        if rule == "cosine":
            raise ValueError("--rule cosine does not combine with --block-length (blocks use LLaDA's balanced sizes)")
        return make_policy(policy, L=L, num_steps=N, block_length=block_length, temperature=T)
    score, _ = parse_policy(policy)
    return policy_from_rule(score, _rule(rule, int(N), L), L, temperature=T)


def evaluate_mdm(denoiser, lang, L: int, steps, *, num_samples: int = 256, batch_size: int = 64, rng=0,
                 rule: str = "linear", policy: str | None = None, block_length=None, temperature: float = 1.0,
                 gumbel_float32: bool = False, reference_samples: int = 0, deadline: float | None = None,
                 log=None) -> list:
    """Generative perplexity and SER of the learned MDM at each ``N`` in ``steps``.

    Without ``policy`` the sampler is the content-blind one (:func:`neural.sample.sample_mdm`,
    the theorems' setting); with ``policy`` (``"llada"``, ``"threshold:0.9"``, ...; see
    :func:`mdm_policy`) it is :func:`neural.sample.sample_policy` with the shared policy;
    ``threshold`` / ``eb`` decide their own step sizes and take ``steps=None`` (one row, with
    ``num_steps = None``).
    ``calls_mean`` is the mean number of network calls per sequence (its steps that reveal
    something: the NFE of a per-sequence cache).
    ``reference_samples > 0`` adds the idealised sampler's Monte Carlo result at the same rule or
    policy (``idealised_mc``). ``deadline`` (a ``time.perf_counter()`` value) stops early;
    skipped ``N`` are marked. The sampler at ``N`` runs with ``SeedSequence([seed, N])``
    (``seed`` from ``rng``), so two denoisers evaluated with the same int ``rng`` are coupled:
    same instances, same uniforms.
    """
    check_policy_options(policy, block_length=block_length, temperature=None if temperature == 1.0 else temperature,
                         gumbel_float32=gumbel_float32)
    seed = _seed(rng)
    rows = []
    for N in ([None] if steps is None else [None if N is None else int(N) for N in steps]):
        if N is None and policy is None:
            raise ValueError("--steps is required for the content-blind sampler (or give an adaptive --policy)")
        key = 0 if N is None else N  # the seed key of an adaptive policy's single row
        if deadline is not None and time.perf_counter() > deadline:
            rows.append({"num_steps": N, "skipped": "time budget"})
            continue
        if policy is None:
            r = _rule(rule, N, L)
            out = sample_mdm(denoiser, num_samples, L, r, rng=_child(seed, key), batch_size=batch_size,
                             gumbel_float32=gumbel_float32)
            calls, name = out["calls"], None
        else:
            r = mdm_policy(policy, N, L, rule=rule, block_length=block_length, temperature=temperature)
            out = sample_policy(denoiser, num_samples, L, r, rng=_child(seed, key), batch_size=batch_size)
            calls, name = out["nfe"], r.name
        row = {"num_steps": N, "rule": rule, "policy": name, "gumbel_float32": gumbel_float32,
               **score_samples(lang, out["tokens"]), "calls_mean": float(calls.mean()),
               "sampling_seconds": out["seconds"]}
        if reference_samples:
            row["idealised_mc"] = mc_reference(lang, L, r, reference_samples, rng=_child(seed, key, 1))
        if log is not None:
            log(f"[mdm N={N}] ser={row['ser']:.4f} gen_ppl={row['gen_ppl']} calls={row['calls_mean']:.1f}")
        rows.append(row)
    return rows


def evaluate_ar(net, lang, L: int, *, num_samples: int = 256, batch_size: int = 64, rng=0,
                autocast_dtype=None, val=None, gumbel_float32: bool = False) -> dict:
    """Generative perplexity and SER of the AR model's samples, plus held-out NLL per token."""
    device = next(net.parameters()).device
    out = sample_ar(net, num_samples, L, rng=_child(_seed(rng), 0), batch_size=batch_size, autocast_dtype=autocast_dtype,
                    gumbel_float32=gumbel_float32)
    row = {"sampler": "ar-kv-cache", "gumbel_float32": gumbel_float32, **score_samples(lang, out["tokens"]), "sampling_seconds": out["seconds"]}
    if val is not None:
        from neural.ar import ar_log_probs

        with torch.no_grad():
            x = torch.from_numpy(np.asarray(val)).to(device)
            nll = -ar_log_probs(net, x).double().mean().item()
        row["heldout_nll_per_token"] = nll
        row["heldout_true_nll_per_token"] = float(-lang.log_prob(np.asarray(val)).mean() / L)
    return row


def time_samplers(denoiser, ar_net, L: int, steps, *, batch: int = 16, repeats: int = 1, rule: str = "linear",
                  rng=0, autocast_dtype=None, deadline=None) -> dict:
    """Median wall clock of one batch: cached MDM sampler at each ``N`` and AR with a KV cache.

    Both are warmed up first with untimed runs of exactly the timed shapes (on an H100 the first AR
    run at a new batch size took 31 s against 4 s warm: per-shape set-up of the growing-KV attention),
    then each is timed ``repeats`` times.
    """
    seed = _seed(rng)
    dev = denoiser.device if denoiser is not None else next(ar_net.parameters()).device
    res = {"batch": batch, "L": L, "repeats": repeats, "device": describe_device(dev), "mdm": [], "ar": None}
    if ar_net is not None:
        sample_ar(ar_net, batch, L, rng=_child(seed, 0), autocast_dtype=autocast_dtype)  # warm-up: every KV length 1..L
        ts = [sample_ar(ar_net, batch, L, rng=_child(seed, 1, r), autocast_dtype=autocast_dtype)["seconds"]
              for r in range(repeats)]
        res["ar"] = {"seconds_median": float(np.median(ts)), "seconds_all": ts, "forward_calls": L}
    if denoiser is not None:
        for N in sorted(set([4, max(steps)])):  # warm-up: every active-subset size 1..batch at the largest N
            sample_mdm(denoiser, batch, L, _rule(rule, int(N), L), rng=_child(seed, 2, N))
        for N in steps:
            if deadline is not None and time.perf_counter() > deadline:
                res["mdm"].append({"num_steps": int(N), "skipped": "time budget"})
                continue
            ts, calls = [], []
            for r in range(repeats):
                o = sample_mdm(denoiser, batch, L, _rule(rule, int(N), L), rng=_child(seed, 3, N, r))
                ts.append(o["seconds"])
                calls.append(o["forward_batches"])
            res["mdm"].append({"num_steps": int(N), "seconds_median": float(np.median(ts)),
                               "seconds_all": ts, "forward_batches": calls})
    return res


def matched_speedup(mdm_rows, ar_row, timing, *, rel_tol: float = 0.01) -> dict:
    """Smallest ``N`` whose token-weighted generative perplexity is at most ``(1 + rel_tol)`` times the
    AR model's, and the AR / MDM wall-clock ratio there (the seed paper: 1.57x at about 64 steps)."""
    if ar_row is None or ar_row.get("gen_ppl") is None or timing.get("ar") is None:
        return {"matched_num_steps": None, "reason": "no AR reference"}
    secs = {r["num_steps"]: r["seconds_median"] for r in timing["mdm"] if "seconds_median" in r}
    for row in sorted((r for r in mdm_rows if r.get("gen_ppl") is not None), key=lambda r: r["num_steps"]):
        if row["gen_ppl"] <= (1 + rel_tol) * ar_row["gen_ppl"] and row["num_steps"] in secs:
            N = row["num_steps"]
            return {"matched_num_steps": N, "rel_tol": rel_tol, "mdm_gen_ppl": row["gen_ppl"],
                    "ar_gen_ppl": ar_row["gen_ppl"], "mdm_seconds": secs[N],
                    "ar_seconds": timing["ar"]["seconds_median"],
                    "speedup": timing["ar"]["seconds_median"] / secs[N], "paper_speedup_at_64": 1.57}
    return {"matched_num_steps": None, "rel_tol": rel_tol, "reason": "no N matched the AR generative perplexity"}


def describe_device(device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    import platform

    return f"cpu: {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"
