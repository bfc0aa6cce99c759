"""``mdm-theory sample``: Monte Carlo of the idealised sampler at paper scale.

Usage::

    mdm-theory sample --language paper-hmm --length 512 --steps 64 --samples 1000 --seed 0 --json
    mdm-theory sample --language paper-3gram --length 512 --steps 256 --schedule cosine --samples 2000 --seed 1
    mdm-theory sample --language paper-2gram --length 512 --rule left-to-right --samples 1000 --seed 0
    mdm-theory sample --language interval-l5 --length 500 --step-sizes 100,200,200 --samples 500 --seed 3
    mdm-theory sample --language paper-4gram --length 512 --steps 64 --samples 500 --seed 0 --dependencies

A progress line goes to stderr on long runs (not with ``--json`` or when stderr is not a
terminal). Ctrl-C stops after the current batch and reports what was finished
(``interrupted: true``).
"""

from __future__ import annotations

import json
import sys


from mdm_exact.runtime.commands._common import add_language_args, add_policy_args, add_rule_args, jsonable, policy_from_args, rule_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sample",
        help="Monte Carlo of the idealised sampler at paper scale",
        description="Samples from the idealised factorised MDM sampler (Feng et al. 2025, arXiv:2502.09622; "
        "exact conditional marginals, as reconstructed in STATEMENTS.md §1.7) and estimates SER, generative "
        "perplexity, non-empty steps and the Lemma B.2 bound E_tau KL(q||p_tau)/L, all with intervals.",
    )
    add_language_args(p)
    add_rule_args(p, ar_note=" (left-to-right = AR)")
    add_policy_args(p)
    p.add_argument("--samples", "-M", type=int, required=True, help="number of generated sequences")
    p.add_argument("--seed", type=int, default=None, help="root seed (recorded in the output)")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per kernel call (does not change results)")
    p.add_argument("--ci-alpha", type=float, default=0.05, help="miscoverage of every interval (default 0.05)")
    p.add_argument("--no-instance-kl", action="store_true", help="skip the Lemma B.2 instance-KL estimate (halves the work)")
    p.add_argument(
        "--dependencies",
        nargs="?",
        const=True,
        default=False,
        type=int,
        metavar="N_ORDER",
        help="per-step separator/dependency counts (Definitions B.4-B.7); order from the n-gram, or give it",
    )
    p.add_argument("--eta", type=float, default=0.0, help="noise scale of an imperfect model (PerturbedModel; NumPy engine)")
    p.add_argument("--model-seed", type=int, default=0, help="seed of the imperfect model's noise")
    p.add_argument("--method", choices=["auto", "fast", "reference"], default="auto", help="engine (default: auto)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from mdm_exact.languages import load_language
    from mdm_exact.sampler.montecarlo import run_monte_carlo
    from mdm_exact.runtime.provenance import provenance

    if args.length < 1:
        raise ValueError(f"--length: expected L >= 1, got {args.length}")
    if args.samples < 1:
        raise ValueError(f"--samples: expected M >= 1, got {args.samples}")
    from mdm_exact._validate import check_eta, check_monte_carlo_size

    args.eta = check_eta(args.eta, "--eta")
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size: expected an integer >= 1, got {args.batch_size}")
    if not 0 < args.ci_alpha < 1:
        raise ValueError(f"--ci-alpha: expected a miscoverage in (0, 1), got {args.ci_alpha}")
    check_monte_carlo_size(args.length, args.samples, batch_size=args.batch_size)
    lang = load_language(args.language, seed=args.language_seed)
    policy = policy_from_args(args)
    rule = rule_from_args(args) if policy is None else None
    model = None
    if args.eta > 0:
        from mdm_exact.sampler.models import PerturbedModel

        model = PerturbedModel(lang, args.eta, rng=args.model_seed)
    progress = (not args.json) and sys.stderr.isatty()
    if policy is not None:
        from mdm_exact.sampler.adaptive_mc import run_policy_monte_carlo

        if args.dependencies is not False:
            raise ValueError("--dependencies is defined for content-blind instances; it does not combine with --policy")
        res = run_policy_monte_carlo(lang, args.length, policy, args.samples, rng=args.seed, ci_alpha=args.ci_alpha,
                                     batch_size=args.batch_size, model=model, method=args.method, progress=progress).to_dict()
    else:
        res = _run_rule(args, lang, rule, model, progress)
    return _report(args, res)


def _run_rule(args, lang, rule, model, progress):
    from mdm_exact.sampler.montecarlo import run_monte_carlo

    return run_monte_carlo(
        lang,
        args.length,
        rule,
        args.samples,
        rng=args.seed,
        ci_alpha=args.ci_alpha,
        batch_size=args.batch_size,
        progress=progress,
        instance_kl=not args.no_instance_kl,
        dependencies=args.dependencies,
        model=model,
        method=args.method,
    ).to_dict()


def _report(args, res) -> int:
    from mdm_exact.runtime.provenance import provenance

    res["seed"] = args.seed
    res["language_name"] = args.language
    res["language_seed"] = args.language_seed
    res["eta"] = args.eta
    res["model_seed"] = args.model_seed if args.eta > 0 else None
    res["provenance"] = provenance()
    if args.json:
        print(json.dumps(jsonable(res), sort_keys=True))
        return 0
    pct = 100 * (1 - args.ci_alpha)
    print(
        f"idealised sampler: language {args.language}, L = {res['L']}, N = {res['num_steps']}, rule {res['rule'].get('policy', res['rule'].get('rule'))}, "
        f"{res['num_samples_done']} samples, engine {res['engine']}, {res['seconds']:.2f} s "
        f"({res['samples_per_second']:.0f} samples/s){'  [INTERRUPTED]' if res['interrupted'] else ''}"
    )

    def ci(key):
        v, c = res.get(key), res.get(key + "_ci")
        if v is None:
            return "undefined (no sample in supp q)" if key != "instance_kl_per_token" else "not computed"
        return f"{v:.6g}  [{c[0]:.6g}, {c[1]:.6g}]"

    print(f"  intervals: {pct:g}% (SER Clopper-Pearson; gen-ppl and per-seq gen-ppl on the log scale; KL clipped at 0; others mean +- z SE)")
    print(f"  SER                                      {ci('ser')}")
    print(f"  generative perplexity (token-weighted)   {ci('gen_ppl')}")
    print(f"  generative perplexity (per-seq mean)     {ci('gen_ppl_seq_mean')}")
    print(f"  mean log q(x) per token (in supp q)      {ci('mean_log_prob_per_token')}")
    print("  non-empty steps (network calls)          ", end="")
    lo, hi = res["nfe_ci"]
    exp_nfe = res.get("nfe_expected")
    print(f"{res['nfe_mean']:.6g}  [{lo:.6g}, {hi:.6g}]" + ("" if exp_nfe is None else f"  expected {exp_nfe:.6g}"))
    print(f"  E_tau KL(q||p_tau)/L (Lemma B.2 bound)   {ci('instance_kl_per_token')}")
    if "D_tau_mean" in res:
        print(f"  D_tau (corrected, Def. B.7)              {res['D_tau_mean']:.6g}  literal {res['D_tau_literal_mean']:.6g}")
        print(f"  same-step pairs per sequence             {res['same_step_pairs_mean']:.6g}")
    return 0
