"""One prepared GPU run: train, sample, evaluate and time learned MDMs and AR baselines.

Run on a machine with one GPU (about 10 minutes on an H100 at the paper's model size)::

    python -m neural.gpu_run --out /path/to/out

It writes at most 8 files to ``--out``: ``results.json`` (rewritten after every phase, so a run
cut short still leaves everything finished so far), ``log.txt`` and up to 6 bf16 checkpoints of at
most 16 MiB each (checkpoints that would be larger are skipped and the reason recorded).
``--tiny`` runs the same code path on CPU in seconds (CI).

Order of work, each step guarded by ``--budget-seconds``: for each language in turn (default
``paper-2gram-t0``, ``paper-hmm-t0``, then the SER presets ``paper-2gram``, ``paper-hmm``):

1. train the AR model (stops at validation NLL within ``--ar-target``, default 0.5%, of the entropy
   rate; cap ``--ar-seconds``) and the MDM (ELBO within ``--mdm-target``, default 1%; cap
   ``--mdm-seconds``); the issue's minimum targets are 2% and 5%;
2. SER and generative perplexity of the AR sampler and of the MDM sampler at every ``N``;
3. once, on the first perplexity language: wall clock at batch 16 (cached MDM at each ``N``
   against AR with a KV cache, warmed up with the timed shapes), then for every language the
   speed-up at matched generative perplexity (the seed paper: 1.57x at about 64 steps);
4. measured ``epsilon_learning``: KL(q || p_theta) on held-out masked contexts.

Then float64 against float32 Gumbel-max sampling at N = 64 and 1024, then the idealised sampler
(exact conditionals) by Monte Carlo at the same ``N`` (CPU). On an H100 one language costs about
2 minutes (run of 2026-11-26), so the default 540 s covers three to four languages; run again
with ``--languages`` for the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

PPL_LANGUAGES = ["paper-2gram-t0", "paper-hmm-t0"]
SER_LANGUAGES = ["paper-2gram", "paper-hmm"]
PAPER_STEPS = [8, 16, 32, 64, 128, 256, 512, 1024, 2048]
MAX_FILES = 8
MAX_CHECKPOINT_BYTES = 16 * 2**20


def _parser():
    p = argparse.ArgumentParser(prog="python -m neural.gpu_run", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output directory (created; at most 8 files are written)")
    p.add_argument("--tiny", action="store_true", help="tiny sizes on CPU (CI smoke test of the whole path)")
    p.add_argument("--languages", default=None,
                   help="comma-separated presets (default: paper-2gram-t0,paper-hmm-t0,paper-2gram,paper-hmm)")
    p.add_argument("--size", choices=["paper", "small"], default="paper",
                   help="paper: hidden 512, 8 layers (10 for 4-gram), 8 heads; small: 256, 4, 4")
    p.add_argument("--hidden", type=int, default=None, help="override the hidden size")
    p.add_argument("--layers", type=int, default=None, help="override the number of layers")
    p.add_argument("--heads", type=int, default=None, help="override the number of heads")
    p.add_argument("--length", type=int, default=None, help="sequence length L (default 512; tiny 8)")
    p.add_argument("--budget-seconds", type=float, default=None, help="total wall-clock budget (default 540; tiny 120)")
    p.add_argument("--mdm-seconds", type=float, default=None, help="training cap per MDM (default 45)")
    p.add_argument("--ar-seconds", type=float, default=None, help="training cap per AR model (default 15)")
    p.add_argument("--ar-target", type=float, default=None,
                   help="AR stops at validation NLL <= (1 + target) x entropy rate (default 0.005; tiny 0.02)")
    p.add_argument("--mdm-target", type=float, default=None,
                   help="MDM stops at validation ELBO <= (1 + target) x entropy rate (default 0.01; tiny 0.05)")
    p.add_argument("--num-samples", type=int, default=None, help="samples per N for SER / perplexity (default 128)")
    p.add_argument("--reference-samples", type=int, default=None,
                   help="idealised-sampler Monte Carlo samples per N (default 1000; 0 = skip)")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--seed", type=int, default=0)
    return p


class Run:
    def __init__(self, args):
        self.args = args
        self.out = args.out
        os.makedirs(self.out, exist_ok=True)
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + args.budget_seconds
        self.files = {"results.json", "log.txt"}
        self.log_f = open(os.path.join(self.out, "log.txt"), "w")
        self.results = {}

    def log(self, msg):
        line = f"[{time.perf_counter() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        self.log_f.write(line + "\n")
        self.log_f.flush()

    def left(self):
        return self.deadline - time.perf_counter()

    def save(self):
        self.results["elapsed_seconds"] = time.perf_counter() - self.t0
        tmp = os.path.join(self.out, "results.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.results, f, indent=1, default=_json_default, allow_nan=True)
        os.replace(tmp, os.path.join(self.out, "results.json"))

    def checkpoint(self, name, res, spec, lang, kind):
        from neural.checkpoint import save_checkpoint
        from neural.data import language_to_dict

        fname = f"{name}.pt"
        if len(self.files) >= MAX_FILES:
            return {"saved": False, "reason": f"file limit ({MAX_FILES}) reached"}
        nbytes = sum(v.numel() * (2 if v.is_floating_point() else v.element_size())
                     for v in res.net.state_dict().values())
        if nbytes > MAX_CHECKPOINT_BYTES:
            return {"saved": False, "reason": f"bf16 weights need {nbytes / 2**20:.1f} MiB > 16 MiB"}
        s = res.summary()
        path = os.path.join(self.out, fname)
        size = save_checkpoint(path, res.net, kind=kind, step=res.steps, seed=self.args.seed, L=res.train_config.L,
                               language=spec, language_params=language_to_dict(lang), dtype=torch.bfloat16,
                               train={"config": res.train_config.to_dict(),
                                      "summary": {k: v for k, v in s.items() if k != "history"}})
        if size > MAX_CHECKPOINT_BYTES:
            os.remove(path)
            return {"saved": False, "reason": f"checkpoint is {size} bytes > 16 MiB"}
        self.files.add(fname)
        return {"saved": True, "file": fname, "bytes": size}


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _model_config(V, L, kind, args, order=None):
    from neural.model import ModelConfig

    size, tiny = args.size, args.tiny

    if tiny:
        dims = dict(n_layer=1, n_head=2, n_embd=16)
    elif size == "small":
        dims = dict(n_layer=4, n_head=4, n_embd=256)
    else:
        dims = dict(n_layer=10 if order == 4 else 8, n_head=8, n_embd=512)
    for key, name in (("n_embd", "hidden"), ("n_layer", "layers"), ("n_head", "heads")):
        if getattr(args, name) is not None:
            dims[key] = getattr(args, name)
    return ModelConfig(vocab_size=int(V), block_size=L, causal=kind == "ar", **dims)


def run(args) -> dict:
    from mdm_exact.runtime.provenance import provenance

    from neural.data import resolve_language, validation_set
    from neural.evaluate import (conditional_kl, describe_device, evaluate_ar, evaluate_mdm, matched_speedup,
                           mc_reference, time_samplers)
    from neural.sample import NetworkDenoiser
    from neural.train import TrainConfig, train

    R = Run(args)
    device = args.device
    ac = torch.bfloat16 if torch.device(device).type == "cuda" else None
    L = args.length
    steps = [s for s in ([2, 4, 8] if args.tiny else PAPER_STEPS)]
    specs = args.languages
    R.results = {"device": describe_device(device), "tiny": args.tiny, "size": args.size, "L": L, "steps": steps,
                 "budget_seconds": args.budget_seconds, "provenance": provenance(), "languages": {},
                 "phases": {}, "notes": [
                     "gen_ppl: token-weighted, exp(mean NLL per token under the true language) over samples in supp q; "
                     "gen_ppl_seq_mean: mean of per-sequence perplexities (both as in mdm_exact).",
                     "MDM sampler: schedule-driven (linear, per-position steps from mdm_exact.sampler.schedules), per-sequence "
                     "cache, float64 inverse-CDF draws unless gumbel_float32.",
                     "ELBO/NLL targets relative to the entropy rate H(q_L)/L (exact, or Monte Carlo where marked)."]}
    R.log(f"device {R.results['device']}, torch {torch.__version__}, languages {specs}, L={L}")
    trained = {}
    timing = None

    # -- per language, in order of importance: train, quality curves, timing, epsilon_learning
    for spec in specs:
        t_lang = time.perf_counter()
        if R.left() < 60 and not args.tiny:
            R.results["languages"][spec] = {"skipped": "time budget"}
            continue
        lang = resolve_language(spec)
        order = getattr(lang, "order", None)
        entry = R.results["languages"].setdefault(spec, {"language": lang.describe()})
        models = {}
        for kind, cap, target in (("ar", args.ar_seconds, args.ar_target), ("mdm", args.mdm_seconds, args.mdm_target)):
            mc = _model_config(lang.vocab_size, L, kind, args, order)
            cfg = TrainConfig(kind=kind, L=L, batch_size=16 if args.tiny else 64, max_steps=12 if args.tiny else 2000,
                              max_seconds=min(cap, max(5.0, R.left() - 45)), eval_every=6 if args.tiny else 25,
                              val_size=16 if args.tiny else 256, seed=args.seed, device=device, target_rel=target)
            res = train(lang, mc, cfg, log=R.log if not args.tiny else None)
            s = res.summary()
            R.log(f"{spec} {kind}: {s['steps']} steps, {s['seconds']:.1f} s, ratio {s['final_ratio_to_entropy']:.4f} "
                  f"({s['stop_reason']}), {s['num_parameters']} parameters")
            entry[f"train_{kind}"] = s
            entry[f"checkpoint_{kind}"] = R.checkpoint(f"{spec}-{kind}", res, spec, lang, kind)
            models[kind] = res.net
            R.save()
        val = validation_set(lang, 16 if args.tiny else 256, L, rng=args.seed + 99)
        entry["ar"] = evaluate_ar(models["ar"], lang, L, num_samples=args.num_samples, batch_size=args.num_samples,
                                  rng=args.seed, autocast_dtype=ac, val=val)
        R.log(f"{spec} ar: SER {entry['ar']['ser']:.4f} gen-ppl {entry['ar']['gen_ppl']}")
        den = NetworkDenoiser(models["mdm"], autocast_dtype=ac)
        entry["mdm"] = evaluate_mdm(den, lang, L, steps, num_samples=args.num_samples, batch_size=args.num_samples,
                                    rng=args.seed, deadline=R.deadline - 30, log=R.log)
        trained[spec] = (lang, models, den)
        R.save()
        if timing is None and spec not in SER_LANGUAGES and R.left() > 20:
            # wall clock at batch 16: the same architecture for every language, so measured once
            timing = time_samplers(den, models["ar"], L, steps, batch=16, repeats=1, rng=args.seed,
                                   autocast_dtype=ac, deadline=R.deadline - 15)
            timing["language"] = spec
            R.results["timing"] = timing
            R.log(f"timing (batch 16): AR {timing['ar']['seconds_median']:.3f} s; MDM "
                  f"{[(r['num_steps'], round(r.get('seconds_median', -1), 3)) for r in timing['mdm']]}")
        if timing is not None:
            entry["timing"] = {"see": "results['timing']", "measured_on": timing["language"]}
            entry["matched_speedup"] = matched_speedup(entry["mdm"], entry["ar"], timing)
            R.log(f"{spec} matched: {entry['matched_speedup']}")
            R.save()
        if R.left() > 10:
            entry["conditional_kl"] = conditional_kl(lang, den, num_contexts=8 if args.tiny else 64, L=L,
                                                     rng=args.seed + 5)
            R.log(f"{spec} KL(q||p_theta) per token: mean {entry['conditional_kl']['mean_kl_per_token']:.3e}, "
                  f"max {entry['conditional_kl']['max_kl']:.3e}")
            R.save()
        R.results["phases"][f"{spec}_seconds"] = time.perf_counter() - t_lang

    # -- float32 Gumbel against float64
    t_phase = time.perf_counter()
    gsteps = steps[:1] + steps[-1:] if args.tiny else [64, 1024]
    for spec, (lang, models, den) in trained.items():
        if R.left() < 20:
            break
        entry = R.results["languages"][spec]
        entry["mdm_gumbel_float32"] = evaluate_mdm(den, lang, L, gsteps, num_samples=args.num_samples,
                                                   batch_size=args.num_samples, rng=args.seed, gumbel_float32=True,
                                                   deadline=R.deadline - 10)
        if R.left() > 15:
            entry["ar_gumbel_float32"] = evaluate_ar(models["ar"], lang, L, num_samples=args.num_samples,
                                                     batch_size=args.num_samples, rng=args.seed, autocast_dtype=ac,
                                                     gumbel_float32=True)
        R.save()
    R.results["phases"]["gumbel_seconds"] = time.perf_counter() - t_phase

    # -- phase 5: idealised sampler at the same N (exact conditionals, Monte Carlo, CPU)
    t_phase = time.perf_counter()
    if args.reference_samples:
        from mdm_exact.sampler.schedules import make_step_rule

        for spec, (lang, models, den) in trained.items():
            refs = []
            for N in steps:
                if R.left() < 30:
                    refs.append({"num_steps": N, "skipped": "time budget"})
                    continue
                t1 = time.perf_counter()
                try:
                    ref = mc_reference(lang, L, make_step_rule("linear", num_steps=N), args.reference_samples,
                                       rng=args.seed + N)
                except Exception as exc:  # record and go on: the neural results above are already saved
                    ref = {"error": f"{type(exc).__name__}: {exc}"}
                refs.append({"num_steps": N, **ref, "wall_seconds": time.perf_counter() - t1})
                if "unavailable" in ref:
                    break
            R.results["languages"][spec]["idealised_mc"] = refs
            R.save()
    R.results["phases"]["idealised_seconds"] = time.perf_counter() - t_phase
    R.results["files"] = sorted(R.files)
    R.save()
    R.log(f"done in {time.perf_counter() - R.t0:.1f} s; files {sorted(R.files)}")
    R.log_f.close()
    return R.results


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.device is None:
        args.device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    args.languages = (args.languages.split(",") if args.languages else PPL_LANGUAGES + SER_LANGUAGES)
    defaults = dict(length=8, budget_seconds=120, mdm_seconds=10, ar_seconds=5, num_samples=8, reference_samples=32,
                ar_target=0.02, mdm_target=0.05) \
        if args.tiny else dict(length=512, budget_seconds=540, mdm_seconds=60, ar_seconds=30, num_samples=128,
                               reference_samples=1000, ar_target=0.005, mdm_target=0.01)
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if torch.device(args.device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    run(args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
