"""``mdm-theory exact``: the exact output law of the idealised sampler and every metric on it.

Usage::

    mdm-theory exact --language paper-2gram-t0 --length 8 --steps 4 --json
    mdm-theory exact --language paper-hmm --length 6 --steps 3 --schedule cosine
    mdm-theory exact --language paper-3gram --length 9 --step-sizes 3,3,3 --json
    mdm-theory exact --language lang.json --length 8 --rule random-order
    mdm-theory exact --language paper-2gram-t0 --length 8 --steps 2 --eta 0.3 --model-seed 1 --json

Sizes beyond ``mdm_exact.sampler.exact.MAX_STATES`` DP states or ``MAX_WORK`` estimated updates
are refused with a message that names the limit.
"""

from __future__ import annotations

import json
import time

from mdm_exact.runtime.commands._common import add_language_args, add_policy_args, add_rule_args, jsonable, policy_from_args, rule_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "exact",
        help="exact output law of the idealised sampler and its metrics (small L)",
        description="Exact law of the idealised factorised MDM sampler (Feng et al. 2025, "
        "arXiv:2502.09622, Definition B.1 as reconstructed) and SER, KL, TER gap, generative "
        "perplexity, Lemma B.2/B.3 terms on it.",
    )
    add_language_args(p)
    add_rule_args(p)
    add_policy_args(p)
    p.add_argument("--eta", type=float, default=0.0, help="noise scale of an imperfect model (PerturbedModel); 0 = perfect")
    p.add_argument("--model-seed", type=int, default=0, help="seed of the imperfect model's noise")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from mdm_exact.sampler.exact import exact_metrics
    from mdm_exact.languages import load_language
    from mdm_exact.sampler.models import PerturbedModel

    from mdm_exact._validate import as_count, check_eta, check_exact_size
    from mdm_exact.sampler.exact import MAX_STATES, MAX_WORK

    if args.length < 1:
        raise ValueError(f"--length: expected L >= 1, got {args.length}")
    args.eta = check_eta(args.eta, "--eta")
    lang = load_language(args.language, seed=args.language_seed)
    # Refuse hopeless sizes before any table or schedule is built (logarithms only).
    steps = args.steps if args.step_sizes is None and args.rule is None else None
    if steps is not None:
        as_count(steps, "--steps")
    check_exact_size(lang.vocab_size, args.length, steps, max_states=MAX_STATES, max_work=MAX_WORK)
    policy = policy_from_args(args)
    rule = rule_from_args(args) if policy is None else None
    model = PerturbedModel(lang, args.eta, rng=args.model_seed) if args.eta > 0 else None
    t0 = time.perf_counter()
    if policy is None:
        res = exact_metrics(lang, args.length, rule, model=model).to_dict()
    else:
        from mdm_exact.sampler.adaptive_exact import policy_exact_metrics

        res = policy_exact_metrics(lang, args.length, policy, model=model).to_dict()
    res["seconds"] = time.perf_counter() - t0
    res["language"] = args.language
    res["language_seed"] = args.language_seed
    res["eta"] = args.eta
    res["model_seed"] = args.model_seed if args.eta > 0 else None
    if args.json:
        print(json.dumps(jsonable(res), sort_keys=True))
        return 0
    print(f"exact law: language {args.language}, L = {res['L']}, V = {res['V']}, N = {res['num_steps']}, "
          f"rule {res['rule']}, eta = {args.eta} ({res['seconds']:.2f} s)")
    rows = [
        ("SER", res["ser"]),
        ("generative perplexity (token-weighted)", res["gen_ppl"]),
        ("generative perplexity (per-sequence mean)", res["gen_ppl_seq_mean"]),
        ("KL(q || p)", res["kl_data_model"]),
        ("KL(p || q)", res["kl_model_data"]),
        ("log TER(p) - log TER(q) = KL(q||p)/L", res["log_ter_gap"]),
        ("E_tau KL(q || p_tau) (Lemma B.2 RHS)", res["instance_kl_total"]),
        ("H(p) model entropy", res["entropy_model"]),
        ("H(q) data entropy", res["entropy_data"]),
        ("TC(q) total correlation", res["total_correlation_data"]),
        ("epsilon_learning", res.get("epsilon_learning")),
        ("E NFE (non-empty steps)", res["nfe_mean"]),
    ]
    if policy is not None:  # Lemma B.2 is about content-blind instances
        rows = [r for r in rows if not r[0].startswith(("E_tau", "epsilon"))]
    for name, val in rows:
        txt = "inf / undefined" if val is None else f"{val:.10g}"
        print(f"  {name:<44} {txt}")
    if policy is not None:
        print("  NFE law: " + ", ".join(f"{f}: {p:.6g}" for f, p in enumerate(res["nfe_pmf"]) if p > 0))
        return 0
    print("  per step k: E KL step (Lemma B.3) = token KL + conditional TC")
    for k, (a, b, c) in enumerate(zip(res["instance_kl_per_step"], res["token_kl_per_step"], res["tc_per_step"]), 1):
        fa = "inf" if a is None else f"{a:.6g}"
        fb = "inf" if b is None else f"{b:.6g}"
        print(f"    {k:>3}: {fa:>12} = {fb:>12} + {c:.6g}")
    return 0
