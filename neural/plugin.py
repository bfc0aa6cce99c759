"""The ``neural`` package's plug-ins to ``mdm-theory``: the ``neural`` subcommand and sweep kind.

Registered through entry points in ``pyproject.toml`` (``mdm_theory.commands`` and
``mdm_theory.sweep_kinds``, see :mod:`mdm_exact.runtime.plugins`). This module imports
without torch: the parsers and the kind's declaration are here, the work is done by
:mod:`neural.cli` and :mod:`neural.evaluate`, imported when a command or a cell runs, so that
``mdm-theory neural ...`` without torch says how to install it instead of failing on import.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os

from mdm_exact.runtime.commands._common import add_policy_args
from mdm_exact.runtime.kinds import make_kind
from neural import PAPER_STEPS

INSTALL_HINT = (
    "mdm-theory neural needs PyTorch, which is not installed; install it with "
    "pip install torch==2.13.0 (or, in a source checkout, pip install -e '.[neural]')"
)


def _require_torch() -> None:
    """Raise ValueError (the CLI's exit 2, one line) with :data:`INSTALL_HINT` when torch is missing."""
    try:
        importlib.import_module("torch")
    except ImportError:
        raise ValueError(INSTALL_HINT) from None


def _needs_torch(name):
    def handler(args):
        _require_torch()
        from neural import cli

        try:
            return getattr(cli, name)(args)
        except RuntimeError as exc:  # torch's allocator failures (CPU and CUDA) become the CLI's one-line MemoryError
            text = str(exc)
            if "out of memory" in text.lower() or "can't allocate memory" in text:
                raise MemoryError(text.splitlines()[0] if text else "torch could not allocate memory") from None
            raise

    return handler


def _common(p):
    p.add_argument("--seed", type=int, default=0, help="seed of every generator (default 0)")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if available)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _sampler_options(p):
    p.add_argument("--rule", default="linear", choices=["linear", "cosine", "fixed"],
                   help="step rule: schedule-driven linear/cosine, or fixed balanced sizes (default linear)")
    add_policy_args(p)  # --policy, --block-length, --temperature: the shared definitions (mdm_exact.sampler.policies)
    p.add_argument("--gumbel-float32", action="store_true",
                   help="draw tokens by float32 Gumbel-max instead of the float64 inverse CDF")
    p.add_argument("--num-samples", type=int, default=64, help="number of sequences (default 64)")
    p.add_argument("--batch-size", type=int, default=64, help="sequences per batch (default 64)")


def register_command(subparsers) -> None:
    """Add ``mdm-theory neural`` (entry point ``mdm_theory.commands: neural``)."""
    p = subparsers.add_parser("neural", help="train, sample and evaluate learned MDMs / AR baselines (needs torch)",
                              description="Learned MDMs (MDLM style) and AR baselines on the formal languages, "
                              "scored against the exact law.")
    sub = p.add_subparsers(dest="neural_command", metavar="ACTION", required=True)

    t = sub.add_parser("train", help="train a model until it is within a target of the entropy rate")
    t.add_argument("--language", required=True, help="preset name or language file (.json/.npz)")
    t.add_argument("--kind", choices=["mdm", "ar"], required=True, help="masked diffusion model or autoregressive")
    t.add_argument("--length", type=int, required=True, help="sequence length L")
    t.add_argument("--layers", type=int, default=8, help="transformer blocks (default 8; the paper uses 10 for 4-gram)")
    t.add_argument("--hidden", type=int, default=512, help="hidden size (default 512)")
    t.add_argument("--heads", type=int, default=8, help="attention heads (default 8)")
    t.add_argument("--mlp-ratio", type=int, default=4,
                   help="MLP hidden units per model dimension (default 4); with --init, a larger ratio than the "
                        "checkpoint's grows its MLPs into this one (the same function, new units)")
    t.add_argument("--abs-pos", action=argparse.BooleanOptionalAction, default=True,
                   help="a learned absolute position embedding on top of rotary (default on; without it a "
                        "bidirectional model gives every position the same law when all is masked); with --init, "
                        "a checkpoint without one gains a zero table (the same function)")
    t.add_argument("--ngram-embed", type=int, default=0, metavar="N",
                   help="local n-gram embedding tables of order N, for an N-gram language (default 0: none; "
                        "neural.model.ModelConfig.ngram_embed); with --init, a checkpoint without them gains zero "
                        "tables (the same function)")
    t.add_argument("--batch-size", type=int, default=64, help="sequences per training step (default 64)")
    t.add_argument("--lr", type=float, default=3e-4, help="peak learning rate of AdamW (default 3e-4)")
    t.add_argument("--max-steps", type=int, default=2000, help="step cap; also sets the cosine schedule (default 2000)")
    t.add_argument("--max-seconds", type=float, default=None, help="wall-clock cap in seconds")
    t.add_argument("--target", type=float, default=None,
                   help="stop when validation NLL (AR) / ELBO (MDM) per token <= (1 + target) x entropy rate "
                   "(default 0.02 AR, 0.05 MDM)")
    t.add_argument("--leak-target", type=float, default=None,
                   help="also require the measured leakage (mass on impossible tokens) per token <= this to stop "
                   "(issue 14: 1e-4; default: no leakage target)")
    t.add_argument("--quality-from-validation-only", action="store_true",
                   help="with --leak-target, judge the quality target by the validation estimate alone; by default "
                   "the exact held-out KL per token must also be <= target x entropy rate")
    t.add_argument("--confirm-sequences", type=int, default=512,
                   help="with --leak-target, a stop on target needs leakage and KL met again on this many fresh "
                   "exact sequences (default 512; 0: the check on the validation sequences alone decides)")
    t.add_argument("--targets", choices=("sampled", "exact"), default="sampled",
                   help="what a training position is scored on: the token of the drawn sequence (sampled, the "
                   "paper's loss) or the exact law of that token given the model's context (exact: the "
                   "Rao-Blackwellised loss, same expected gradient, less variance; default sampled)")
    t.add_argument("--t-power", type=float, default=1.0,
                   help="MDM training times t = eps + (1 - eps) u^P: P > 1 trains more on nearly revealed contexts "
                   "(a sampler's last steps) and less on mostly masked ones; the loss is then a reweighted ELBO with "
                   "the same minimiser, validation is unchanged (default 1: the ELBO)")
    t.add_argument("--ema", type=float, default=0.0,
                   help="EMA decay of the evaluated and saved weights, 0 <= value < 1 (default 0: off)")
    t.add_argument("--warmup-frac", type=float, default=0.1, help="linear warm-up, fraction of the run (default 0.1)")
    t.add_argument("--tail-frac", type=float, default=1.0,
                   help="cosine decay over the last this fraction of the run (default 1.0: the whole run)")
    t.add_argument("--state", default=None,
                   help="resumable training state file: saved every minute and at the end; an interrupted run "
                   "given the same options and --state continues where it stopped")
    t.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="warm start: begin from this checkpoint's weights (same kind, size, language and length; "
                   "fresh optimiser and schedule); the summary records it")
    t.add_argument("--eval-every", type=int, default=50, help="validate every this many steps (default 50)")
    t.add_argument("--val-size", type=int, default=256, help="validation sequences (default 256)")
    t.add_argument("--schedule", default="linear", choices=["linear", "loglinear", "cosine"],
                   help="masking schedule of the MDM loss (default linear, weight 1/t)")
    t.add_argument("--language-seed", type=int, default=None, help="seed passed to load_language (random presets)")
    t.add_argument("-o", "--output", required=True, help="checkpoint path (.pt)")
    _common(t)
    t.set_defaults(func=_needs_torch("cmd_train"))

    s = sub.add_parser("sample", help="draw sequences from a checkpoint")
    s.add_argument("--checkpoint", required=True, help="checkpoint written by 'neural train'")
    s.add_argument("--steps", type=int, default=None, help="number of steps N (MDM only)")
    _sampler_options(s)
    s.add_argument("-o", "--output", default=None, help="write the tokens to this .npy file")
    _common(s)
    s.set_defaults(func=_needs_torch("cmd_sample"))

    e = sub.add_parser("evaluate", help="SER, generative perplexity and conditional KL against the exact language")
    e.add_argument("--checkpoint", required=True, help="checkpoint written by 'neural train'")
    e.add_argument("--steps", default=None,
                   help=f"comma-separated step counts N for the MDM (default {','.join(map(str, PAPER_STEPS))}; none with an "
                   "adaptive --policy threshold:G / eb:G)")
    _sampler_options(e)
    e.add_argument("--kl-contexts", type=int, default=64,
                   help="held-out masked contexts for KL(q || p_theta) (MDM; 0 to skip; default 64)")
    e.add_argument("--pattern-sequences", type=int, default=0,
                   help="held-out sequences for KL / H at fixed mask patterns (one masked token between revealed "
                        "neighbours, two adjacent, every 2nd, every 4th; neural.leakage.mdm_pattern_kl; MDM; "
                        "default 0 = skip)")
    e.add_argument("--compare-gumbel", action="store_true",
                   help="also sample with float32 Gumbel-max at every N (Zheng et al. 2024)")
    e.add_argument("--reference-samples", type=int, default=0,
                   help="Monte Carlo samples of the idealised sampler at each N (0 = none)")
    e.add_argument("-o", "--output", default=None, help="also write the JSON result to this file")
    _common(e)
    e.set_defaults(func=_needs_torch("cmd_evaluate"))

    c = sub.add_parser("conformance", help="check your sampler against the exact law of a policy, on the exact oracle "
                                           "(neural.conformance.check_sampler; exit 0 pass, 1 fail)")
    c.add_argument("--generate", required=True, metavar="MODULE:FUNCTION",
                   help="your sampler, generate(model, num_samples, L, generator) -> LongTensor (num_samples, L), "
                        "imported from MODULE (the current directory is searched first); naming it here runs it")
    c.add_argument("--language", required=True, help="preset name or .json / .npz language file")
    c.add_argument("--length", type=int, required=True, help="sequence length L")
    c.add_argument("--steps", type=int, default=None, help="number of steps N the sampler claims")
    c.add_argument("--step-sizes", default=None, metavar="S1,S2,...", help="or its step sizes")
    add_policy_args(c)
    c.add_argument("--num-samples", type=int, default=20000, help="samples drawn from your sampler (default 20000)")
    c.add_argument("--false-fail-rate", type=float, default=1e-3,
                   help="probability that a correct sampler fails (Bonferroni over the tests; default 1e-3)")
    c.add_argument("--seed", type=int, default=0, help="seeds the torch.Generator handed to generate (default 0)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=_needs_torch("cmd_conformance"))


# --------------------------------------------------------------------------- sweep kind


def kind_neural(
    *, checkpoint, steps=None, L=None, num_samples=256, batch_size=64, seed=0, rule="linear", policy=None,
    block_length=None, temperature=1.0, reference_samples=0, device="cpu",
):
    """Evaluation of a trained checkpoint with ``neural.evaluate`` (needs torch; imported in the worker).

    A bidirectional (MDM) checkpoint is sampled at each number of steps in ``steps``
    (``neural.evaluate.evaluate_mdm``; ``policy``, ``block_length``, ``temperature``: an adaptive
    decoder of :mod:`mdm_exact.sampler.policies`, as ``--policy``); a causal one with
    ``neural.evaluate.evaluate_ar``.
    The checkpoint's language is scored exactly. The result records the checkpoint file's
    sha256, since the cell key holds only its path.
    """
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"neural cell: checkpoint {checkpoint} does not exist")
    _require_torch()
    with open(checkpoint, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    from neural.checkpoint import checkpoint_language, load_checkpoint
    from neural.evaluate import evaluate_ar, evaluate_mdm

    net, ckpt = load_checkpoint(checkpoint, map_location=device)
    lang = checkpoint_language(ckpt)
    L = int(ckpt["L"]) if L is None else int(L)
    out = {"checkpoint_sha256": digest, "L": L, "causal": bool(net.config.causal)}
    if net.config.causal:
        out["ar"] = evaluate_ar(net, lang, L, num_samples=num_samples, batch_size=batch_size, rng=seed)
    else:
        from neural.evaluate import adaptive_count
        from neural.sample import NetworkDenoiser

        if steps is None and not (policy is not None and adaptive_count(policy)):
            raise ValueError("a neural cell of an MDM checkpoint needs 'steps' (numbers of sampling steps)")
        if steps is not None:
            steps = [int(s) for s in (steps if isinstance(steps, (list, tuple)) else [steps])]
        out["mdm"] = evaluate_mdm(NetworkDenoiser(net), lang, L, steps, num_samples=num_samples,
                                  batch_size=batch_size, rng=seed, rule=rule, policy=policy,
                                  block_length=block_length, temperature=temperature,
                                  reference_samples=reference_samples)
    return out


def precheck_neural(*, checkpoint, steps=None, L=None, num_samples=256, batch_size=64, seed=0, rule="linear",
                    policy=None, block_length=None, temperature=1.0, reference_samples=0, device="cpu"):
    """What :func:`kind_neural` would refuse, checked before a sweep starts (torch not imported):
    a missing checkpoint, and counts that are not positive integers."""
    from mdm_exact._validate import as_count

    if not isinstance(checkpoint, str) or not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"neural cell: checkpoint {checkpoint!r} does not exist")
    as_count(num_samples, "num_samples")
    as_count(batch_size, "batch_size")
    as_count(reference_samples, "reference_samples", minimum=0)
    if L is not None:
        as_count(L, "L")
    for n in [] if steps is None else (steps if isinstance(steps, (list, tuple)) else [steps]):
        as_count(n, "steps")


#: The ``neural`` sweep kind (entry point ``mdm_theory.sweep_kinds: neural``).
NEURAL_KIND = make_kind(
    "neural", kind_neural,
    params=("checkpoint", "steps", "L", "num_samples", "batch_size", "seed", "rule", "policy", "block_length",
            "temperature", "reference_samples", "device"),
    required=("checkpoint",), list_params=("steps",), precheck=precheck_neural,
)
