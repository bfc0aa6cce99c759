"""The prepared GPU run of issue 14: paper-size MDMs and AR models, everything of "Runs" in one go.

On a machine with one GPU, from the repository root (no install needed)::

    PYTHONPATH=$PWD PYTHONUNBUFFERED=1 python3 -m neural.gpu_run --out $OUT

For each language (default: the Table-1 presets paper-2gram, paper-3gram, paper-4gram, paper-hmm
thresholded for SER, interval-l5, then their threshold-0 twins for perplexity), in order:

1. train the AR model and the MDM at paper size (hidden 512, 8 layers, 8 heads; 10 layers for the
   4-gram), L = 512 (510 for interval-l5), until validation NLL/ELBO is within ``--target`` (1%)
   of the entropy rate and the leakage (:mod:`neural.leakage`) is at most ``--leak-target``
   (1e-4 per token), or the per-model cap; the targets met or missed are recorded; exact training
   targets where a batch of them is cheap on the CPU (``--targets auto``, :func:`choose_targets`);
2. :func:`neural.campaign.evaluate_language`: leakage and per-token KL (the measured
   epsilon_learning), AR samples, the coupled curves (learned MDM and idealised sampler with the
   same tau and uniforms) at N = 8..2048, float32 Gumbel against float64, and the adaptive
   policies on the learned MDM and on the oracle (SER against NFE);
3. once, on the first language: the wall clock at batch 16 (cached MDM at each N, AR with a KV
   cache, the same card), then per language the speed-up at matched gen-ppl and at matched SER.

``results.json`` is rewritten after every part, so a run cut short keeps what finished; at most
``MAX_FILES`` files are written (results.json, log.txt, checkpoints of at most 16 MiB: bf16 at
``--size small``; at paper size they are larger and the reason is recorded). ``--tiny`` runs the
same code on CPU in well under a minute (the CI smoke test).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

from neural import PAPER_STEPS
from neural.train import TARGETS

SER_LANGUAGES = ["paper-2gram", "paper-3gram", "paper-4gram", "paper-hmm", "interval-l5"]
PPL_LANGUAGES = ["paper-2gram-t0", "paper-3gram-t0", "paper-4gram-t0", "paper-hmm-t0"]
MAX_FILES = 8
MAX_CHECKPOINT_BYTES = 16 * 2**20


def _parser():
    p = argparse.ArgumentParser(prog="python -m neural.gpu_run", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output directory (created; at most 8 files are written)")
    p.add_argument("--tiny", action="store_true", help="tiny sizes on CPU (CI smoke test of the whole path)")
    p.add_argument("--languages", default=None,
                   help="comma-separated presets (default: " + ",".join(SER_LANGUAGES + PPL_LANGUAGES) + ")")
    p.add_argument("--size", choices=["paper", "small"], default="paper",
                   help="paper: hidden 512, 8 layers (10 for 4-gram), 8 heads; small: 256, 4, 4")
    p.add_argument("--hidden", type=int, default=None, help="override the hidden size")
    p.add_argument("--layers", type=int, default=None, help="override the number of layers")
    p.add_argument("--heads", type=int, default=None, help="override the number of heads")
    p.add_argument("--mlp-ratio", type=int, default=None, help="override the MLP's hidden units per model dimension (4)")
    p.add_argument("--abs-pos", action=argparse.BooleanOptionalAction, default=True,
                   help="learned absolute positions on top of rotary (default on: see neural.model.ModelConfig.abs_pos)")
    p.add_argument("--ngram-embed", action=argparse.BooleanOptionalAction, default=False,
                   help="give each n-gram language's networks local n-gram tables of its order "
                        "(neural.model.ModelConfig.ngram_embed; default off)")
    p.add_argument("--length", type=int, default=None, help="sequence length L (default 512; tiny 8)")
    p.add_argument("--budget-seconds", type=float, default=None, help="total wall-clock budget (default 540; tiny 300, not reached)")
    p.add_argument("--mdm-seconds", type=float, default=None, help="training cap per MDM (default 90)")
    p.add_argument("--ar-seconds", type=float, default=None, help="training cap per AR model (default 30)")
    p.add_argument("--target", type=float, default=None,
                   help="stop at validation NLL/ELBO <= (1 + target) x entropy rate (default 0.01)")
    p.add_argument("--leak-target", type=float, default=None, help="and leakage per token <= this (default 1e-4)")
    p.add_argument("--targets", choices=TARGETS + ("auto",), default="auto",
                   help="training targets (neural.train.TARGETS); exact computes the exact conditionals on the "
                   "CPU for every batch, which can starve a GPU at L = 512; auto (default) takes exact for each "
                   "model whose batch of exact targets costs at most --exact-seconds on this CPU (measured "
                   "before it trains, recorded), else sampled")
    p.add_argument("--exact-seconds", type=float, default=0.1,
                   help="with --targets auto: the most CPU seconds one batch's exact targets may take (default 0.1)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default 3e-4; tiny 3e-3)")
    p.add_argument("--ema", type=float, default=None, help="EMA decay of the weights (default 0.999; tiny 0.9)")
    p.add_argument("--t-power", type=float, default=1.0,
                   help="MDM training times t = eps + (1 - eps) u^P (neural.train.TrainConfig.t_power; default 1)")
    p.add_argument("--num-samples", type=int, default=None, help="samples per N for SER / perplexity (default 128)")
    p.add_argument("--policy-samples", type=int, default=None, help="samples per policy point (default 64)")
    p.add_argument("--leak-sequences", type=int, default=None,
                   help="held-out sequences for leakage and KL per token (default 2048; tiny 16)")
    p.add_argument("--policies", default=None, help="comma-separated policies (default: campaign.DEFAULT_POLICIES)")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--seed", type=int, default=0)
    return p


def choose_targets(lang, kind: str, L: int, batch: int, mode: str, budget: float, *, seed: int = 0) -> dict:
    """The training targets of one model: ``mode`` itself, or for ``mode="auto"`` ``exact`` when
    one training batch's exact targets (``prefix_conditionals`` for AR, ``conditional_marginals``
    under a mask of the linear schedule for the MDM) take at most ``budget`` seconds here (median
    of 3 after a warm-up call), else ``sampled``. Exact targets cut an AR model's leakage about
    tenfold in 1000 steps on CPU (reports/neural/README.md); their cost is what decides."""
    if mode != "auto":
        return {"mode": mode, "targets": mode}
    rng = np.random.default_rng(seed)
    x = lang.sample(batch, L, rng=rng)  # (batch, L)
    if kind == "ar":
        def once():
            lang.prefix_conditionals(x)
    else:
        revealed = rng.random((batch, L)) >= rng.random((batch, 1))  # masked with probability t ~ U(0, 1)

        def once():
            lang.conditional_marginals(x, revealed)
    once()  # Numba dispatch, caches
    times = []
    for _ in range(3):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    sec = float(np.median(times))
    return {"mode": "auto", "targets": "exact" if sec <= budget else "sampled", "exact_seconds_per_batch": sec,
            "budget_seconds": float(budget), "batch": int(batch)}


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
        from neural.campaign import write_json

        self.results["elapsed_seconds"] = time.perf_counter() - self.t0
        write_json(os.path.join(self.out, "results.json"), self.results)

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


def _model_config(V, L, kind, args, order=None):
    from neural.model import ModelConfig

    if args.tiny:
        dims = dict(n_layer=1, n_head=2, n_embd=16)
    elif args.size == "small":
        dims = dict(n_layer=4, n_head=4, n_embd=256)
    else:
        dims = dict(n_layer=10 if order == 4 else 8, n_head=8, n_embd=512)
    for key, name in (("n_embd", "hidden"), ("n_layer", "layers"), ("n_head", "heads"), ("mlp_ratio", "mlp_ratio")):
        if getattr(args, name) is not None:
            dims[key] = getattr(args, name)
    ngram = order if args.ngram_embed and order else 0
    return ModelConfig(vocab_size=int(V), block_size=L, causal=kind == "ar", abs_pos=bool(args.abs_pos),
                       ngram_embed=ngram, **dims)


def _length(spec, L):
    """Interval languages need a multiple of their interval length: the largest one <= L (510 for l5 at 512)."""
    if spec.startswith("interval-l"):
        l = int(spec.rsplit("l", 1)[1])
        return max(l, (L // l) * l)
    return L


def run(args) -> dict:
    from mdm_exact.languages import as_language
    from mdm_exact.runtime.provenance import provenance

    from neural.campaign import DEFAULT_POLICIES, evaluate_language, matched
    from neural.data import validation_set
    from neural.evaluate import describe_device, time_samplers
    from neural.sample import NetworkDenoiser
    from neural.train import TrainConfig, train

    R = Run(args)
    device = args.device
    ac = torch.bfloat16 if torch.device(device).type == "cuda" else None
    steps = [2, 4, 8] if args.tiny else list(PAPER_STEPS)
    policies = tuple(args.policies.split(",")) if args.policies else (("random", "llada", "threshold:0.9") if args.tiny
                                                                       else DEFAULT_POLICIES)
    R.results = {"device": describe_device(device), "tiny": args.tiny, "size": args.size, "L": args.length,
                 "steps": steps, "budget_seconds": args.budget_seconds, "provenance": provenance(),
                 "versions": {"torch": torch.__version__, "cuda": torch.version.cuda}, "languages": {}, "phases": {},
                 "targets": {"target_rel": args.target, "leak_target": args.leak_target},
                 "notes": [
                     "gen_ppl: token-weighted, exp(mean NLL per token under the true language) over samples in supp q.",
                     "mdm rows: learned MDM; coupled_ideal: the exact oracle with the same tau and the same uniforms.",
                     "leakage: probability on tokens impossible given the context, per token (neural.leakage).",
                     "Targets relative to the entropy rate H(q_L)/L (exact, or Monte Carlo where marked)."]}
    R.log(f"device {R.results['device']}, torch {torch.__version__}, languages {args.languages}, L={args.length}")
    timing = None
    for spec in args.languages:
        t_lang = time.perf_counter()
        if R.left() < 60 and not args.tiny:
            R.results["languages"][spec] = {"skipped": "time budget"}
            R.save()
            continue
        lang = as_language(spec)
        L = _length(spec, args.length)
        order = getattr(lang, "order", None)
        entry = R.results["languages"].setdefault(spec, {"language": lang.describe(), "L": L})
        models = {}
        diverged = False
        for kind, cap in (("ar", args.ar_seconds), ("mdm", args.mdm_seconds)):
            mc = _model_config(lang.vocab_size, L, kind, args, order)
            batch = 16 if args.tiny else 64
            choice = choose_targets(lang, kind, L, batch, args.targets, args.exact_seconds, seed=args.seed)
            R.log(f"{spec} {kind}: {choice['targets']} targets ({choice})")
            cfg = TrainConfig(kind=kind, L=L, batch_size=batch, lr=args.lr,
                              max_steps=12 if args.tiny else 4000, max_seconds=min(cap, max(5.0, R.left() - 60)),
                              eval_every=6 if args.tiny else 50, val_size=16 if args.tiny else 256,
                              val_draws=1 if args.tiny else 2, seed=args.seed, device=device,
                              target_rel=args.target, leak_target=args.leak_target, ema=args.ema, tail_frac=0.3,
                              warmup_frac=0.05, leak_sequences=8 if args.tiny else 64,
                              confirm_sequences=16 if args.tiny else 256, targets=choice["targets"],
                              t_power=args.t_power if kind == "mdm" else 1.0)
            try:
                res = train(lang, mc, cfg, log=R.log if not args.tiny else None)
            except FloatingPointError as exc:  # one language's divergence must not cost the others their GPU time
                R.log(f"{spec} {kind}: training diverged ({exc}); lower --lr (got {args.lr:g}); next language")
                entry[f"train_{kind}"] = {"diverged": str(exc), "lr": args.lr, "targets_choice": choice}
                R.results["phases"][f"{spec}_seconds"] = time.perf_counter() - t_lang
                R.save()
                diverged = True
                break
            s = res.summary()
            R.log(f"{spec} {kind}: {s['steps']} steps, {s['seconds']:.1f} s, ratio {s['final_ratio_to_entropy']:.4f} "
                  f"({s['stop_reason']}), targets {s['targets']}, {s['num_parameters']} parameters")
            entry[f"train_{kind}"] = {**s, "targets_choice": choice}
            entry[f"checkpoint_{kind}"] = R.checkpoint(f"{spec}-{kind}", res, spec, lang, kind)
            models[kind] = res.net
            R.save()
        if diverged:
            continue
        val = validation_set(lang, 16 if args.tiny else 128, L, rng=args.seed + 99)

        def save(block, entry=entry):
            entry.update(block)
            R.save()

        evaluate_language(lang, models["mdm"], models["ar"], L, steps, num_samples=args.num_samples, seed=args.seed,
                          val=val, autocast_dtype=ac, policies=policies, leak_sequences=args.leak_sequences,
                          policy_steps=[2, 4] if args.tiny else [64, 256],
                          policy_samples=args.policy_samples, gumbel_steps=steps[1:2] + steps[-1:] if args.tiny
                          else (64, 1024), deadline=R.deadline - 20, log=R.log, save=save)
        if timing is None and R.left() > 30:
            den = NetworkDenoiser(models["mdm"], autocast_dtype=ac)
            timing = time_samplers(den, models["ar"], L, steps, batch=16, repeats=1 if args.tiny else 3,
                                   rng=args.seed, autocast_dtype=ac, deadline=R.deadline - 15)
            timing["language"] = spec
            R.results["timing"] = timing
            R.log(f"timing (batch 16): AR {timing['ar']['seconds_median']:.3f} s; MDM "
                  f"{[(r['num_steps'], round(r.get('seconds_median', -1), 3)) for r in timing['mdm']]}")
        if timing is not None and isinstance(entry.get("mdm"), list):
            entry["matched"] = matched(entry["mdm"], entry.get("ar"), timing)
            R.log(f"{spec} matched: {entry['matched']}")
        R.results["phases"][f"{spec}_seconds"] = time.perf_counter() - t_lang
        R.save()
    R.results["files"] = sorted(R.files)
    R.save()
    R.log(f"done in {time.perf_counter() - R.t0:.1f} s; files {sorted(R.files)}")
    R.log_f.close()
    return R.results


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.device is None:
        args.device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    args.languages = args.languages.split(",") if args.languages else SER_LANGUAGES + PPL_LANGUAGES
    defaults = dict(length=8, budget_seconds=300, mdm_seconds=30, ar_seconds=30, num_samples=8, policy_samples=8, leak_sequences=16,
                    target=0.01, leak_target=1e-4, lr=3e-3, ema=0.9) \
        if args.tiny else dict(length=512, budget_seconds=540, mdm_seconds=90, ar_seconds=30, num_samples=128,
                               policy_samples=64, leak_sequences=2048, target=0.01, leak_target=1e-4, lr=3e-4, ema=0.999)
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    from mdm_exact._validate import check_seed_options
    from neural.train import TrainConfig

    try:  # the training options, checked before anything runs (one line, exit 2)
        check_seed_options(args)
        TrainConfig(kind="mdm", lr=args.lr, ema=args.ema, target_rel=args.target, leak_target=args.leak_target,
                    targets="exact" if args.targets == "auto" else args.targets, t_power=args.t_power)
        if args.leak_sequences < 1:
            raise ValueError(f"--leak-sequences: expected a positive number of sequences, got {args.leak_sequences}")
        if not args.exact_seconds > 0:
            raise ValueError(f"--exact-seconds: expected a positive number of seconds, got {args.exact_seconds}")
        for order in (2, 4):  # the network sizes (--hidden/--layers/--heads/--mlp-ratio over --size)
            _model_config(8, 64, "mdm", args, order)
    except ValueError as err:
        parser.error(str(err))
    if args.tiny:
        torch.set_num_threads(1)
    if torch.device(args.device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    run(args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
