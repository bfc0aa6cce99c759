"""Handlers of ``mdm-theory neural train | sample | evaluate`` (parsers: ``mdm_exact/commands/neural.py``)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import torch


def _device(name):
    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"--device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested, but no CUDA device is available")
    return name


def _positive(name, v):
    if v is None or v < 1:
        raise ValueError(f"{name}: expected a positive integer, got {v}")
    return v


def _writable(name, path):
    """Check an output path before any work: its folder exists and it is not a directory."""
    import os

    if path is None:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{name}: the folder {folder} does not exist (create it first)")
    if os.path.isdir(path):
        raise ValueError(f"{name}: {path} is a directory, expected a file name")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{name}: the folder {folder} is not writable")
    return path


def _device_memory(device):
    """``(bytes, label)`` of the memory a run on ``device`` can have at most; ``(None, label)`` when unknown."""
    import os

    dev = torch.device(device)
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        return props.total_memory, f"{props.name}'s memory"
    if dev.type == "cpu":
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine's memory"
        except (AttributeError, ValueError, OSError):
            pass
    return None, f"{dev.type} memory"


def _check_training_fits(mc, batch_size, device):
    """Refuse, before anything is allocated, a model and batch that cannot fit on ``device``."""
    from neural.model import training_memory_lower_bound

    need = training_memory_lower_bound(mc, batch_size)
    have, where = _device_memory(device)
    if have is not None and need["bytes"] > have:
        gib = 2.0**30
        raise ValueError(
            f"training needs at least {need['bytes'] / gib:.1f} GiB ({need['parameters']:,} parameters: "
            f"{need['state_bytes'] / gib:.1f} GiB of weights, gradients and Adam states; activations of a batch "
            f"of {batch_size} x {mc.block_size} tokens over {mc.n_layer} layers: {need['activation_bytes'] / gib:.1f} GiB), "
            f"more than {where} ({have / gib:.1f} GiB); lower --hidden, --layers, --batch-size or --length"
        )


def _positive_float(name, v):
    import math

    if v is None or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {v}")
    return v


def _emit(args, result, text):
    if getattr(args, "output", None) and args.neural_command == "evaluate":
        with open(args.output, "w") as f:
            json.dump(result, f, indent=1, default=_json_default)
    if args.json:
        json.dump(result, sys.stdout, default=_json_default)
        sys.stdout.write("\n")
    else:
        print(text)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def cmd_train(args) -> int:
    from neural.checkpoint import save_checkpoint
    from mdm_exact.languages import as_language
    from neural.data import language_to_dict
    from neural.model import ModelConfig
    from neural.train import TrainConfig, train

    L = _positive("--length", args.length)
    _writable("-o/--output", args.output)  # before training, not at save time
    for name in ("batch_size", "max_steps", "eval_every", "val_size", "layers", "hidden", "heads"):
        _positive("--" + name.replace("_", "-"), getattr(args, name))
    _positive_float("--lr", args.lr)
    if args.max_seconds is not None:
        _positive_float("--max-seconds", args.max_seconds)
    if args.leak_target is not None:
        _positive_float("--leak-target", args.leak_target)
    for flag, v, ok, want in (("--ema", args.ema, 0.0 <= args.ema < 1.0, "0 <= value < 1"),
                              ("--warmup-frac", args.warmup_frac, 0.0 <= args.warmup_frac < 1.0, "0 <= value < 1"),
                              ("--tail-frac", args.tail_frac, 0.0 < args.tail_frac <= 1.0, "0 < value <= 1"),
                              ("--t-power", args.t_power, 0.0 < args.t_power < math.inf, "a finite number > 0"),
                              ("--confirm-sequences", args.confirm_sequences, args.confirm_sequences >= 0,
                               "an integer >= 0 (0 = no confirmation)")):
        if not ok:  # also NaN
            raise ValueError(f"{flag}: expected {want}, got {v!r}")
    if args.kind == "ar" and args.t_power != 1.0:  # TrainConfig refuses it too; here with the flag's name
        raise ValueError("--t-power applies to MDM training times only (--kind mdm)")
    if args.state is not None:
        _writable("--state", args.state)
    lang = as_language(args.language, seed=args.language_seed)
    device = _device(args.device)
    mc = ModelConfig(vocab_size=int(lang.vocab_size), block_size=L, n_layer=args.layers, n_head=args.heads,
                     n_embd=args.hidden, causal=args.kind == "ar", mlp_ratio=args.mlp_ratio,
                     abs_pos=args.abs_pos, ngram_embed=args.ngram_embed)
    _check_training_fits(mc, args.batch_size, device)
    cfg = TrainConfig(kind=args.kind, L=L, batch_size=args.batch_size, lr=args.lr, max_steps=args.max_steps,
                      max_seconds=args.max_seconds, target_rel=args.target, eval_every=args.eval_every,
                      val_size=args.val_size, schedule=args.schedule, seed=args.seed, device=device,
                      leak_target=args.leak_target, ema=args.ema, warmup_frac=args.warmup_frac, tail_frac=args.tail_frac,
                      quality_kl=not args.quality_from_validation_only, confirm_sequences=args.confirm_sequences,
                      targets=args.targets, t_power=args.t_power)
    init = None
    if args.init is not None:
        from neural.checkpoint import warm_start

        init = warm_start(args.init, kind=args.kind, lang=lang, L=L)
    try:
        res = train(lang, mc, cfg, log=None if args.json else print, state_path=args.state, resume=args.state is not None,
                    init_from=init)
    except FloatingPointError as exc:
        raise ValueError(f"training diverged: {exc}; lower --lr (got {args.lr:g})") from None
    summary = res.summary()
    size = save_checkpoint(args.output, res.net, kind=args.kind, step=res.steps, seed=args.seed, L=L,
                           language=args.language, language_params=language_to_dict(lang),
                           train={"config": cfg.to_dict(), "summary": {k: v for k, v in summary.items() if k != "history"},
                                  "history": summary["history"]})
    out = {**summary, "checkpoint": args.output, "checkpoint_bytes": size, "language": args.language}
    _emit(args, out, f"{args.kind}: {res.steps} steps in {res.seconds:.1f} s, validation "
          f"{res.final_val:.4f} nats/token = {summary['final_ratio_to_entropy']:.4f} x entropy rate "
          f"({res.stop_reason}); wrote {args.output}")
    return 0


def _load(args):
    from neural.checkpoint import checkpoint_language, load_checkpoint

    device = _device(args.device)
    net, ck = load_checkpoint(args.checkpoint, map_location=device)
    return net, ck, checkpoint_language(ck), device


def _autocast(device):
    return torch.bfloat16 if torch.device(device).type == "cuda" else None


def _rule(args, N, L):
    from mdm_exact.sampler.schedules import make_step_rule

    return make_step_rule(args.rule, L=L, num_steps=_positive("--steps", N))


def _policy_checks(args, kind: str) -> None:
    """``--policy`` options that cannot apply to this checkpoint, refused before anything is sampled."""
    from mdm_exact._validate import check_policy_options

    check_policy_options(args.policy, block_length=args.block_length, temperature=args.temperature,
                         gumbel_float32=args.gumbel_float32 or getattr(args, "compare_gumbel", False))
    if args.policy is not None and kind != "mdm":
        raise ValueError("--policy applies to MDM checkpoints (an AR model decodes left to right)")


def _policy_kw(args) -> dict:
    return {"block_length": args.block_length, "temperature": 1.0 if args.temperature is None else args.temperature}


def cmd_sample(args) -> int:
    from neural.ar import sample_ar
    from neural.evaluate import mdm_policy, score_samples
    from neural.sample import NetworkDenoiser, sample_mdm, sample_policy

    _writable("-o/--output", args.output)
    _positive("--batch-size", args.batch_size)
    net, ck, lang, device = _load(args)
    L, n = int(ck["L"]), _positive("--num-samples", args.num_samples)
    _policy_checks(args, ck["kind"])
    policy = None
    if ck["kind"] == "mdm":
        den = NetworkDenoiser(net, autocast_dtype=_autocast(device))
        if args.policy is not None:
            steps = None if args.steps is None else _positive("--steps", args.steps)
            policy = mdm_policy(args.policy, steps, L, rule=args.rule, **_policy_kw(args))
            out = sample_policy(den, n, L, policy, rng=args.seed, batch_size=args.batch_size)
            out["calls"] = out["nfe"]
        else:
            if args.steps is None:
                raise ValueError("--steps is required for an MDM checkpoint")
            out = sample_mdm(den, n, L, _rule(args, args.steps, L), rng=args.seed, batch_size=args.batch_size,
                             gumbel_float32=args.gumbel_float32)
    else:
        out = sample_ar(net, n, L, rng=args.seed, batch_size=args.batch_size, gumbel_float32=args.gumbel_float32,
                        autocast_dtype=_autocast(device))
    if args.output:
        np.save(args.output, out["tokens"])
    score = score_samples(lang, out["tokens"])
    result = {"kind": ck["kind"], "num_steps": args.steps if ck["kind"] == "mdm" else L,
              "policy": None if policy is None else policy.name, "seconds": out["seconds"],
              "score": score, "tokens": out["tokens"].tolist()}
    if "calls" in out:
        result["calls_mean"] = float(out["calls"].mean())
    _emit(args, result, f"{n} samples in {out['seconds']:.2f} s: SER {score['ser']:.4f}, "
          f"generative perplexity {score['gen_ppl']}" + (f"; wrote {args.output}" if args.output else ""))
    return 0


def _fmt(v):
    return "n/a" if v is None else f"{v:.4f}"


def _parse_steps(text):
    try:
        steps = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--steps: expected comma-separated positive integers, got {text!r}") from None
    if not steps or min(steps) < 1:
        raise ValueError(f"--steps: expected comma-separated positive integers, got {text!r}")
    return steps


def cmd_evaluate(args) -> int:
    from mdm_exact.runtime.provenance import provenance

    from neural import PAPER_STEPS
    from neural.data import validation_set
    from neural.evaluate import adaptive_count, conditional_kl, describe_device, evaluate_ar, evaluate_mdm
    from neural.sample import NetworkDenoiser

    if args.steps is not None:
        steps = _parse_steps(args.steps)  # with threshold / eb, neural.evaluate.mdm_policy refuses them
    else:
        steps = None if args.policy is not None and adaptive_count(args.policy) else list(PAPER_STEPS)
    _writable("-o/--output", args.output)
    _positive("--batch-size", args.batch_size)
    if args.pattern_sequences < 0:
        raise ValueError(f"--pattern-sequences: expected an integer >= 0 (0 = skip), got {args.pattern_sequences}")
    net, ck, lang, device = _load(args)
    L, n = int(ck["L"]), _positive("--num-samples", args.num_samples)
    _policy_checks(args, ck["kind"])
    result = {"checkpoint": args.checkpoint, "kind": ck["kind"], "L": L, "language": ck.get("language"),
              "device": describe_device(device), "provenance": provenance(), "train": ck.get("train", {}).get("summary")}
    lines = []
    if ck["kind"] == "mdm":
        den = NetworkDenoiser(net, autocast_dtype=_autocast(device))
        kw = dict(num_samples=n, batch_size=args.batch_size, rng=args.seed, rule=args.rule, policy=args.policy,
                  reference_samples=args.reference_samples, **_policy_kw(args))
        result["mdm"] = evaluate_mdm(den, lang, L, steps, gumbel_float32=args.gumbel_float32, **kw)
        if args.policy is not None:
            lines.append(f"policy {result['mdm'][0].get('policy') or args.policy} (mdm_exact.sampler.policies)")
        if args.compare_gumbel and not args.gumbel_float32:
            result["mdm_gumbel_float32"] = evaluate_mdm(den, lang, L, steps, gumbel_float32=True, **kw)
        if args.kl_contexts:
            result["conditional_kl"] = conditional_kl(lang, den, num_contexts=args.kl_contexts, L=L, rng=args.seed)
        if args.pattern_sequences:
            from neural.leakage import mdm_pattern_kl

            result["patterns"] = mdm_pattern_kl(lang, den, L, num_sequences=args.pattern_sequences, rng=args.seed)
        gum = {r["num_steps"]: r for r in result.get("mdm_gumbel_float32", [])}
        for r in result["mdm"]:
            label = "N=  any" if r["num_steps"] is None else f"N={r['num_steps']:5d}"
            if r.get("skipped"):
                lines.append(f"{label}  skipped ({r['skipped']})")
                continue
            line = f"{label}  SER {r['ser']:.4f}  gen-ppl {_fmt(r['gen_ppl'])}  calls {r['calls_mean']:.1f}"
            if r["num_steps"] in gum:
                g = gum[r["num_steps"]]
                line += f"  | float32-Gumbel SER {g['ser']:.4f} gen-ppl {_fmt(g['gen_ppl'])}"
            ref = r.get("idealised_mc")
            if ref and "ser" in ref:
                line += f"  | idealised SER {ref['ser']:.4f} gen-ppl {_fmt(ref.get('gen_ppl'))}"
            lines.append(line)
        if "conditional_kl" in result:
            kl = result["conditional_kl"]
            lines.append(f"KL(q || p_theta) per masked token: mean {kl['mean_kl_per_token']:.4g}, max {kl['max_kl']:.4g}; "
                         f"leakage {kl['leakage_per_token']:.3g}")
            lines.append("  masked fraction  contexts    KL/token  H(q)/token    KL/H")
            for row in kl["by_mask_fraction"]:
                lo, hi = row["mask_fraction"]
                if row["num_contexts"]:
                    ratio = "-" if row["kl_over_entropy"] is None else f"{row['kl_over_entropy']:.3f}"
                    lines.append(f"  [{lo:.2f}, {hi:.2f}]     {row['num_contexts']:8d}  {row['kl_per_token']:10.4g}"
                                 f"  {row['entropy_per_token']:10.4g}  {ratio:>6}")
            am = kl["all_masked"]
            worst = int(np.argmax(am["leakage_by_position"]))
            lines.append(f"all masked (exact; the first step's context, drawn with probability {am['probability']:.3g}): "
                         f"KL/token {am['kl_per_token']:.4g}, leakage/token {am['leakage_per_token']:.3g} "
                         f"(most at position {worst}: {am['leakage_by_position'][worst]:.3g}), "
                         f"adding {am['leakage_contribution']:.3g} to the mean leakage per token")
        if "patterns" in result:
            lines.append(f"fixed mask patterns ({args.pattern_sequences} held-out sequences): KL/token  H(q)/token    KL/H")
            for name, row in result["patterns"].items():
                ratio = "-" if row["kl_over_entropy"] is None else f"{row['kl_over_entropy']:.4f}"
                lines.append(f"  {name:<22} {row['kl_per_token']:10.4g}  {row['entropy_per_token']:10.4g}  {ratio:>6}")
    else:
        if args.pattern_sequences:
            raise ValueError("--pattern-sequences applies to MDM checkpoints (an AR model is scored on prefixes)")
        val = validation_set(lang, min(n, 256), L, rng=args.seed + 1)
        result["ar"] = evaluate_ar(net, lang, L, num_samples=n, batch_size=args.batch_size, rng=args.seed,
                                   autocast_dtype=_autocast(device), val=val)
        r = result["ar"]
        lines.append(f"AR: SER {r['ser']:.4f}  gen-ppl {r['gen_ppl']}  held-out NLL/token {r['heldout_nll_per_token']:.4f}")
    _emit(args, result, "\n".join(lines))
    return 0


def _import_generate(spec: str):
    """``MODULE:FUNCTION`` from the command line (the current directory first on the path)."""
    import importlib
    import os

    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"--generate: expected MODULE:FUNCTION, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"--generate: cannot import {module!r}: {exc}") from None
    func = getattr(mod, name, None)
    if not callable(func):
        raise ValueError(f"--generate: {module!r} has no function {name!r}")
    return func


def cmd_conformance(args) -> int:
    """``neural conformance``: :func:`neural.conformance.check_sampler` from the shell; exit 0 when
    the sampler passes, 1 when it fails (with the evidence), 2 for bad options."""
    from mdm_exact._validate import parse_step_sizes
    from neural.conformance import check_sampler

    L = _positive("--length", args.length)
    n = _positive("--num-samples", args.num_samples)
    if args.steps is not None:
        _positive("--steps", args.steps)
    sizes = None if args.step_sizes is None else parse_step_sizes(args.step_sizes)
    if not 0.0 < args.false_fail_rate < 1.0:
        raise ValueError(f"--false-fail-rate: expected a number in (0, 1), got {args.false_fail_rate}")
    generate = _import_generate(args.generate)
    res = check_sampler(generate, args.language, L, policy=args.policy or "random", steps=args.steps,
                        step_sizes=sizes, block_length=args.block_length,
                        temperature=1.0 if args.temperature is None else args.temperature,
                        num_samples=n, rng=args.seed, ci_alpha=args.false_fail_rate)
    d = res.details
    lines = [f"{'PASS' if res.passed else 'FAIL'}: {args.generate} against policy {args.policy or 'random'} on {args.language}, "
             f"L = {L}, {n} samples, false-fail rate {args.false_fail_rate:g}"
             + (f" ({d['mode']})" if "mode" in d else "")]
    if "error" in d:
        lines.append(f"  {d['error']}")
    for t in d.get("tests", []):
        lines.append(f"  {'REJECTS' if t['rejects'] else 'ok     '} p = {t['p_value']:.3g} (level {t['level']:.3g}): "
                     f"{t['test']}")
    _emit(args, {"passed": res.passed, **d}, "\n".join(lines))
    return 0 if res.passed else 1
