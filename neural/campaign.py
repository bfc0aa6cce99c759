"""Everything issue 14 measures for one language, shared by the CPU campaign and the GPU script.

:func:`evaluate_language` takes a trained MDM and a same-size AR model and returns one JSON-ready
block (the ``languages.<preset>`` entry of ``results.json``, the format that
``reports.experiments.neural_records`` reads for Figure 6):

* ``mdm``: one row per ``N``: the learned MDM's SER and generative perplexity, and under
  ``coupled_ideal`` the idealised sampler (the exact oracle) drawn with the **same instances tau
  and the same uniforms** (:func:`neural.sample.sample_mdm` with one ``rng`` for both), so the
  difference isolates the learning error; ``coupled_same_fraction`` is the fraction of identical
  sequences;
* ``ar``: the AR model (KV cache) and its held-out NLL;
* ``leakage_mdm`` / ``leakage_ar``: :mod:`neural.leakage` on held-out data (leakage, per-token KL,
  their maxima: the measured ``epsilon_learning`` of Assumption 4.1 is at least the max; for the
  MDM also per bin of the context's masked fraction, ``by_mask_fraction``), and in each ``mdm``
  row ``ser_from_leakage``: the SER that this held-out leakage and the coupled idealised SER
  predict (:func:`neural.leakage.expected_ser_from_profile`), next to the measured one;
* ``policies``: adaptive policies (:mod:`mdm_exact.sampler.policies`) on the learned MDM and on
  the oracle, coupled, SER against NFE;
* ``gumbel_float32``: float32 Gumbel-max against float64 draws, learned and oracle;
* ``timing`` / ``matched``: wall clock of the cached MDM sampler and of AR with a KV cache on the
  same device, and the speed-up at matched generative perplexity and at matched SER.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import torch

DEFAULT_POLICIES = ("random", "confidence", "margin", "entropy", "llada", "threshold:0.9", "eb:0.5")


def _rule(N, L):
    from mdm_exact.sampler.schedules import make_step_rule

    return make_step_rule("linear", L=L, num_steps=int(N))


def _child(seed, *keys):
    return np.random.SeedSequence([int(seed), *[int(k) for k in keys]])


def coupled_curve(lang, net_den, L, steps, *, num_samples, seed, batch_size=256, deadline=None, log=None,
                  gumbel_float32=False):
    """Learned MDM and idealised sampler at each ``N``, coupled (same tau, same uniforms)."""
    from neural.evaluate import score_samples
    from neural.sample import ExactDenoiser, sample_mdm

    ideal = ExactDenoiser(lang, device=net_den.device)
    rows = []
    for N in steps:
        if deadline is not None and time.perf_counter() > deadline:
            rows.append({"num_steps": int(N), "skipped": "time budget"})
            continue
        rule = _rule(N, L)
        a = sample_mdm(net_den, num_samples, L, rule, rng=_child(seed, N), batch_size=batch_size,
                       gumbel_float32=gumbel_float32)
        b = sample_mdm(ideal, num_samples, L, rule, rng=_child(seed, N), batch_size=batch_size,
                       gumbel_float32=gumbel_float32)
        sa, sb = score_samples(lang, a["tokens"]), score_samples(lang, b["tokens"])
        row = {"num_steps": int(N), "rule": "linear", "gumbel_float32": gumbel_float32, **sa,
               "calls_mean": float(a["calls"].mean()), "sampling_seconds": a["seconds"],
               "coupled_ideal": {k: sb[k] for k in ("ser", "ser_ci", "gen_ppl", "gen_ppl_ci", "num_samples")},
               "coupled_same_fraction": float(np.mean(np.all(a["tokens"] == b["tokens"], axis=1))),
               "coupled_ideal_seconds": b["seconds"]}
        rows.append(row)
        if log is not None:
            log(f"  N={N}: learned SER {sa['ser']:.4f} gen-ppl {sa['gen_ppl']}; idealised SER {sb['ser']:.4f} "
                f"gen-ppl {sb['gen_ppl']}; same {row['coupled_same_fraction']:.3f}")
    return rows


def policy_curves(lang, net_den, L, steps, *, num_samples, seed, policies=DEFAULT_POLICIES, deadline=None, log=None):
    """Adaptive policies on the learned MDM and on the oracle, coupled: SER and gen-ppl against NFE."""
    from mdm_exact.sampler.policies import make_policy

    from neural.evaluate import score_samples
    from neural.sample import ExactDenoiser, sample_policy

    ideal = ExactDenoiser(lang, device=net_den.device)
    out = []
    for name in policies:
        adaptive = name.startswith(("threshold", "eb"))
        for N in ([None] if adaptive else steps):
            if deadline is not None and time.perf_counter() > deadline:
                out.append({"policy": name, "num_steps": N, "skipped": "time budget"})
                continue
            pol = make_policy(name, L=L, num_steps=N)
            row = {"policy": name, "num_steps": N}
            for label, den in (("learned", net_den), ("oracle", ideal)):
                r = sample_policy(den, num_samples, L, pol, rng=_child(seed, 7, N or 0, len(name)))
                s = score_samples(lang, r["tokens"])
                row[label] = {"ser": s["ser"], "ser_ci": s["ser_ci"], "gen_ppl": s["gen_ppl"],
                              "nfe_mean": float(r["nfe"].mean()), "seconds": r["seconds"]}
            out.append(row)
            if log is not None:
                log(f"  policy {name} N={N}: learned SER {row['learned']['ser']:.4f} (NFE {row['learned']['nfe_mean']:.1f}),"
                    f" oracle SER {row['oracle']['ser']:.4f} (NFE {row['oracle']['nfe_mean']:.1f})")
    return out


def matched(mdm_rows, ar_row, timing, *, rel_tol=0.01):
    """Speed-up at matched generative perplexity (within ``rel_tol``) and at matched SER (MDM SER
    no larger than AR's upper confidence bound)."""
    from neural.evaluate import matched_speedup

    out = {"gen_ppl": matched_speedup(mdm_rows, ar_row, timing, rel_tol=rel_tol)}
    secs = {r["num_steps"]: r["seconds_median"] for r in (timing or {}).get("mdm", []) if "seconds_median" in r}
    res = {"matched_num_steps": None, "reason": "no N matched the AR SER"}
    if ar_row is not None and timing and timing.get("ar"):
        for row in sorted((r for r in mdm_rows if "ser" in r), key=lambda r: r["num_steps"]):
            if row["ser"] <= ar_row["ser_ci"][1] and row["num_steps"] in secs:
                N = row["num_steps"]
                res = {"matched_num_steps": N, "mdm_ser": row["ser"], "ar_ser": ar_row["ser"],
                       "ar_ser_upper": ar_row["ser_ci"][1], "mdm_seconds": secs[N],
                       "ar_seconds": timing["ar"]["seconds_median"], "speedup": timing["ar"]["seconds_median"] / secs[N]}
                break
    out["ser"] = res
    return out


def add_leakage_predictions(mdm_rows, leakage_mdm, L) -> list:
    """``ser_from_leakage`` in every row of ``mdm_rows`` (a coupled curve) that has a coupled
    idealised SER, from ``leakage_mdm["by_mask_fraction"]`` (nothing without them); returns the rows."""
    from neural.leakage import expected_ser_from_profile

    prof = (leakage_mdm or {}).get("by_mask_fraction")
    if prof and isinstance(mdm_rows, list):
        for r in mdm_rows:
            ideal = (r.get("coupled_ideal") or {}).get("ser")
            if ideal is not None and "num_steps" in r:
                r["ser_from_leakage"] = expected_ser_from_profile(prof, int(L), int(r["num_steps"]), ideal_ser=ideal)
    return mdm_rows


def _held_out(lang, L, seed, leak_sequences):
    return lang.sample(leak_sequences, L, rng=np.random.default_rng(_child(seed, 11)))


def held_out_leakage(lang, den, ar_net, L, *, seed=0, data) -> dict:
    """``leakage_mdm``, ``leakage_ar`` and ``conditional_kl`` of :func:`evaluate_language` on the
    held-out sequences ``data`` (the masks and positions from ``seed``), so they can be measured
    again for a checkpoint evaluated before."""
    from neural.leakage import ar_leakage, mdm_leakage

    out = {"leakage_mdm": mdm_leakage(lang, den, L, data=data, rng=_child(seed, 12)),
           "leakage_ar": ar_leakage(lang, ar_net, L, data=data, rng=_child(seed, 13),
                                    positions_per_sequence=None if L <= 128 else 64)}
    lk = out["leakage_mdm"]
    out["conditional_kl"] = {"mean_kl_per_token": lk["kl_per_token"], "mean_kl_ci": lk["kl_ci"],  # epsilon_learning
                             "max_kl": lk["kl_max"], "source": "leakage_mdm"}
    return out


def evaluate_language(lang, mdm_net, ar_net, L, steps, *, num_samples=256, seed=0, val=None, autocast_dtype=None,
                      policies=DEFAULT_POLICIES, policy_steps=None, policy_samples=None, gumbel_steps=(64, 1024),
                      leak_sequences=None, deadline=None, log=None, save=None):
    """The full block of one language (see the module docstring); ``save(block)`` after each part.

    ``leak_sequences``: held-out leakage and KL per token on that many fresh exact sequences (an
    MDM's per-context leakage is heavy-tailed: 256 sequences put the paper-2gram MDM at 6e-5 and
    4096 at 1.1e-4); ``None`` uses ``val`` (or the 256 held-out sequences) as the other parts do."""
    from neural.evaluate import evaluate_ar
    from neural.sample import NetworkDenoiser

    def now_ok(margin=0.0):
        return deadline is None or time.perf_counter() < deadline - margin

    block, phases = {}, {}
    den = NetworkDenoiser(mdm_net, autocast_dtype=autocast_dtype)

    def part(name, fn, keys=None):
        """``block[name] = fn()``; with ``keys``, ``fn()`` returns several parts, merged into ``block``
        (``keys``: those marked skipped when the time budget is spent)."""
        if not now_ok():
            for k in keys or (name,):
                block[k] = {"skipped": "time budget"}
            return
        t = time.perf_counter()
        if keys:
            block.update(fn())
        else:
            block[name] = fn()
        phases[name] = time.perf_counter() - t
        block["phase_seconds"] = phases
        if save is not None:
            save(block)

    held = val if val is not None else _held_out(lang, L, seed, 256)  # the AR model's held-out NLL: first 128
    # leakage and KL per token: heavy-tailed over contexts for an MDM, so more sequences than the rest
    leak_held = held if leak_sequences is None else _held_out(lang, L, seed, int(leak_sequences))
    block["leak_sequences"] = int(leak_held.shape[0])
    part("leakage", lambda: held_out_leakage(lang, den, ar_net, L, seed=seed, data=leak_held),
         keys=("leakage_mdm", "leakage_ar"))
    if log is not None and "leakage_mdm" in block and "leakage_per_token" in block["leakage_mdm"]:
        log(f"  leakage MDM {block['leakage_mdm']['leakage_per_token']:.3e} (KL {block['leakage_mdm']['kl_per_token']:.3e}),"
            f" AR {block['leakage_ar'].get('leakage_per_token', float('nan')):.3e}")
    part("ar", lambda: evaluate_ar(ar_net, lang, L, num_samples=num_samples, batch_size=min(num_samples, 256),
                                   rng=_child(seed, 14), autocast_dtype=autocast_dtype, val=held[:128]))
    part("mdm", lambda: add_leakage_predictions(
        coupled_curve(lang, den, L, steps, num_samples=num_samples, seed=seed, deadline=deadline, log=log),
        block.get("leakage_mdm"), L))
    if gumbel_steps:
        part("mdm_gumbel_float32", lambda: coupled_curve(lang, den, L, [N for N in gumbel_steps], num_samples=num_samples,
                                                         seed=seed, deadline=deadline, gumbel_float32=True))
    if policies:
        part("policies", lambda: policy_curves(lang, den, L, policy_steps or [max(8, L // 8), L // 2, L],
                                               num_samples=policy_samples or num_samples, seed=seed,
                                               policies=policies, deadline=deadline, log=log))
    return block


def reproduce_numbers(net, kind, lang, L, *, n=16) -> dict:
    """Small deterministic numbers of a checkpoint (stored in results.json, recomputed by the tests):
    per-token NLL (AR) or one fixed-seed ELBO draw (MDM) and leakage on ``n`` fixed sequences, and
    for the MDM the support count of ``n`` samples at N = 8."""
    from neural.ar import ar_log_probs
    from neural.diffusion import elbo_terms, subs_log_probs
    from neural.leakage import ar_leakage, mdm_leakage
    from neural.sample import NetworkDenoiser, sample_mdm

    x = lang.sample(n, L, rng=np.random.default_rng(12345))
    xt = torch.from_numpy(x)
    out = {"n": n, "data_seed": 12345}
    with torch.no_grad():
        if kind == "ar":
            out["nll_per_token"] = float(-ar_log_probs(net, xt).double().sum(1).mean() / L)
            out["leakage"] = ar_leakage(lang, net, L, data=x, rng=0)["leakage_per_token"]
        else:
            def fn(x_t):
                return subs_log_probs(net(x_t), x_t, net.config.mask_id)

            g = torch.Generator().manual_seed(0)
            out["elbo_per_token"] = float(elbo_terms(fn, xt, generator=g, mask_id=net.config.mask_id).double().mean() / L)
            out["leakage"] = mdm_leakage(lang, NetworkDenoiser(net), L, data=x, rng=0)["leakage_per_token"]
            toks = sample_mdm(NetworkDenoiser(net), n, L, _rule(8, L), rng=0)["tokens"]
            out["in_support_N8"] = int(np.asarray(lang.in_support(toks)).sum())
    return out


def write_json(path, doc):
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, default=default)
    os.replace(tmp, path)
