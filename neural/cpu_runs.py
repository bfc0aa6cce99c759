"""The CPU campaign of issue 14 at L = 64: small MDMs and same-size AR models trained until the targets.

Run in the background, one process, one thread::

    nohup python -m neural.cpu_runs train --out reports/neural/cpu-l64 --state /work/notes/neural-state &

Each job (language, kind) trains with :func:`neural.train.train` and a resumable state file under
``--state``; a finished job leaves ``<spec>-<kind>.pt`` (float32 weights, well under 16 MiB) and
``train-<spec>-<kind>.jsonl`` (configuration, targets met or missed, training curve, seconds,
device and versions) in ``--out`` and is skipped when the command is run again. A killed run
resumes its current job from the last saved state.

``python -m neural.cpu_runs evaluate --out ...`` then computes everything Figure 6 needs from
the committed checkpoints (:func:`evaluate_all`, built on :mod:`neural.campaign`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from neural.train import TARGETS

#: Priority order (2-gram and HMM first), thresholded SER presets, then interval-l5 and the -t0 twins.
JOBS = [("paper-2gram", "mdm"), ("paper-2gram", "ar"), ("paper-hmm", "mdm"), ("paper-hmm", "ar"),
        ("paper-3gram", "mdm"), ("paper-3gram", "ar"), ("paper-4gram", "mdm"), ("paper-4gram", "ar"),
        ("interval-l5", "mdm"), ("interval-l5", "ar")]


def length_for(spec: str, L: int) -> int:
    """``L`` itself, or the nearest multiple of ``l`` at or above it for the interval languages (65 for l = 5)."""
    if spec.startswith("interval-l"):
        l = int(spec.rsplit("l", 1)[1])
        return -(-L // l) * l
    return L


#: The CPU recipe (chosen on paper-2gram at L = 64; see reports/neural/README.md).
RECIPE = {
    "model": {"n_layer": 3, "n_head": 4, "n_embd": 64},
    # an MDM's stop is confirmed on 16384 fresh sequences (10 s at L = 64): its per-context leakage
    # is heavy-tailed (the 512 of TrainConfig's default let the 2- and 3-gram MDMs stop at about 1.1e-4)
    "mdm": {"batch_size": 64, "lr": 2e-3, "warmup_frac": 0.05, "tail_frac": 0.5, "ema": 0.998, "max_steps": 4000,
            "max_seconds": 900.0, "eval_every": 200, "val_size": 512, "val_draws": 4, "confirm_sequences": 16384},
    "ar": {"batch_size": 64, "lr": 2e-3, "warmup_frac": 0.05, "tail_frac": 0.5, "ema": 0.998, "max_steps": 2000,
           "max_seconds": 420.0, "eval_every": 100, "val_size": 512, "val_draws": 1},
    "targets": {"target_rel": 0.01, "leak_target": 1e-4},
}


def job_configs(spec, kind, L, *, recipe=RECIPE, seed=0, overrides=None, model_overrides=None):
    from mdm_exact.languages import as_language
    from neural.model import ModelConfig
    from neural.train import TrainConfig

    lang = as_language(spec)
    Lj = length_for(spec, L)
    m = dict(recipe["model"])
    m.update(model_overrides or {})
    mc = ModelConfig(vocab_size=int(lang.vocab_size), block_size=Lj, causal=kind == "ar", **m)
    t = dict(recipe[kind])
    t.update(recipe["targets"])
    t.update({k: v for k, v in (overrides or {}).items() if not (k == "t_power" and kind == "ar")})  # MDM times only
    cfg = TrainConfig(kind=kind, L=Lj, seed=seed, device="cpu", **t)
    return lang, mc, cfg


def _versions():
    import platform

    import numpy as np

    from neural.evaluate import describe_device

    return {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "device": describe_device("cpu"), "machine": platform.machine(), "cpu_threads": torch.get_num_threads()}


def write_summary(path, doc):
    """JSON lines: the summary first (without its history), then one line per validation (the training curve).

    Not ``.json``: ``reports.experiments.neural_records`` reads every ``*.json`` under reports/neural
    as sampler results."""
    head = dict(doc)
    head["summary"] = {k: v for k, v in doc["summary"].items() if k != "history"}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(head, default=str) + "\n")
        for row in doc["summary"].get("history", []):
            f.write(json.dumps(row, default=str) + "\n")
    os.replace(tmp, path)


def read_summary(path) -> dict:
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    doc = lines[0]
    doc["summary"]["history"] = lines[1:]
    return doc


def evaluate_all(out, *, languages=None, num_samples=256, steps=(8, 16, 32, 64, 128, 256, 512, 1024, 2048),
                 seed=0, log=print, policy_steps=(8, 32), policy_samples=128, gumbel_steps=(64, 1024),
                 timing_repeats=3, force=False, results_name="results.json", retime=False, leak_sequences=65536):
    """The CPU campaign's evaluation: every language with both checkpoints in ``out`` -> ``out/<results_name>``.

    A language already in the file is not evaluated again (``force=True`` redoes it); its
    reproduce numbers and matched speed-ups are refreshed. The wall clock (batch 16, MDM at each N
    and AR with a KV cache) is measured once per file, with the first language's models;
    ``retime=True`` measures it again (on an idle machine, say) and recomputes every matched
    speed-up in the file from it. Held-out leakage and KL per token use ``leak_sequences`` fresh
    sequences; a language evaluated before with another number has them (and the SER they
    predict) measured again, the rest kept."""
    from mdm_exact.runtime.provenance import provenance

    from neural.checkpoint import checkpoint_language, load_checkpoint
    from neural.campaign import (_held_out, add_leakage_predictions, evaluate_language, held_out_leakage, matched,
                                 reproduce_numbers, write_json)
    from neural.evaluate import describe_device, time_samplers
    from neural.sample import NetworkDenoiser

    path = os.path.join(out, results_name)  # one file per evaluating process (they rewrite it whole)
    doc = {}
    if os.path.exists(path):
        with open(path) as f:
            doc = json.load(f)
    doc.update({"L": 64, "device": describe_device("cpu"), "note": "CPU run (shared 2-core VM, 1 torch thread), L = 64 "
                "(65 for interval-l5); see README.md", "steps": list(steps), "provenance": provenance()})
    doc.setdefault("languages", {})
    if retime:
        doc.pop("timing", None)
    specs = languages or list(dict.fromkeys(s for s, _ in JOBS))
    for spec in specs:
        ck = {k: os.path.join(out, f"{spec}-{k}.pt") for k in ("mdm", "ar")}
        if not all(os.path.exists(p) for p in ck.values()):
            log(f"{spec}: checkpoints missing, skipped")
            continue
        mdm, ckm = load_checkpoint(ck["mdm"])
        ar, _ = load_checkpoint(ck["ar"])
        lang = checkpoint_language(ckm)
        L = int(ckm["L"])
        log(f"{spec} (L = {L}): evaluating")
        block = doc["languages"].setdefault(spec, {})
        block["language"] = lang.describe()
        block["L"] = L
        block["reproduce"] = {"mdm": reproduce_numbers(mdm, "mdm", lang, L), "ar": reproduce_numbers(ar, "ar", lang, L)}
        for kind in ("mdm", "ar"):
            sp = os.path.join(out, f"train-{spec}-{kind}.jsonl")
            if os.path.exists(sp):
                s = read_summary(sp)["summary"]
                block[f"train_{kind}"] = {k: v for k, v in s.items() if k != "history"}

        def save(b, block=block):
            block.update(b)
            write_json(path, doc)

        write_json(path, doc)
        if isinstance(block.get("mdm"), list) and not force:
            log(f"{spec}: evaluated before (force=True to redo); reproduce numbers and matched speed-up updated")
            before = block.get("leakage_mdm", {})
            was = block.get("leak_sequences", 256)
            # measured again on another number of sequences, or for a file from before the
            # by_mask_fraction rows existed (then on the same held-out contexts)
            if was != leak_sequences or ("kl_per_token" in before and "by_mask_fraction" not in before):
                new = held_out_leakage(lang, NetworkDenoiser(mdm), ar, L, seed=seed,
                                       data=_held_out(lang, L, seed, leak_sequences))
                log(f"{spec}: held-out leakage measured again on {leak_sequences} sequences (was {was}): "
                    f"MDM leakage {before.get('leakage_per_token', float('nan')):.3g} "
                    f"-> {new['leakage_mdm']['leakage_per_token']:.3g}, KL {before.get('kl_per_token', float('nan')):.4g} "
                    f"-> {new['leakage_mdm']['kl_per_token']:.4g}; AR leakage "
                    f"{block.get('leakage_ar', {}).get('leakage_per_token', float('nan')):.3g} -> "
                    f"{new['leakage_ar']['leakage_per_token']:.3g}")
                block.update(new, leak_sequences=leak_sequences)
                add_leakage_predictions(block["mdm"], block["leakage_mdm"], L)
                save({})
            elif any("ser_from_leakage" not in r for r in block["mdm"] if "coupled_ideal" in r):
                add_leakage_predictions(block["mdm"], block.get("leakage_mdm"), L)
                save({})
        else:
            evaluate_language(lang, mdm, ar, L, [N for N in steps], num_samples=num_samples, seed=seed, log=log,
                              save=save, policy_samples=policy_samples, policy_steps=list(policy_steps),
                              gumbel_steps=tuple(gumbel_steps), leak_sequences=leak_sequences)
        if "timing" not in doc:  # also when a file's timing was removed to measure it again on an idle machine
            t = time_samplers(NetworkDenoiser(mdm), ar, L, list(steps), batch=16, repeats=timing_repeats, rng=seed)
            t["language"] = spec
            doc["timing"] = t
            write_json(path, doc)
    if "timing" in doc:  # every language of the file against the file's one timing
        for block in doc["languages"].values():
            if isinstance(block.get("mdm"), list):
                block["matched"] = matched(block["mdm"], block.get("ar"), doc["timing"])
        write_json(path, doc)
    return doc


def run_job(spec, kind, L, out, state_dir, *, recipe=RECIPE, log=print, overrides=None, extend=False,
            model_overrides=None, init_dir=None):
    """Train one job to its targets or caps, resuming from its state; a job whose summary exists is
    skipped, unless ``extend``: then its state is resumed under the new caps (a larger
    ``max_seconds``: a warm restart, the schedule's progress falls back) and the summary, checkpoint
    and curve are rewritten with the whole history. ``init_dir``: start a job without a state from
    the weights of ``init_dir/<spec>-<kind>.pt`` (a warm start across machines, whose states are
    gone; the summary records it)."""
    from neural.checkpoint import save_checkpoint
    from neural.data import language_to_dict
    from neural.train import train

    summary_path = os.path.join(out, f"train-{spec}-{kind}.jsonl")
    state = os.path.join(state_dir, f"{spec}-{kind}.state.pt")
    if os.path.exists(summary_path) and not extend:
        log(f"{spec} {kind}: done before ({summary_path}), skipped")
        return read_summary(summary_path)
    if extend and not os.path.exists(state):
        raise ValueError(f"--extend {spec}:{kind}: no training state {state!r} to continue from "
                         "(pass the --state directory the job was trained with)")
    lang, mc, cfg = job_configs(spec, kind, L, recipe=recipe, overrides=overrides, model_overrides=model_overrides)
    init = None
    if init_dir is not None:
        from neural.checkpoint import warm_start

        src = os.path.join(init_dir, f"{spec}-{kind}.pt")
        if not os.path.exists(src):
            raise ValueError(f"--init-from {init_dir!r}: no checkpoint {src!r} for {spec}:{kind}")
        init = warm_start(src, kind=kind, lang=lang, L=cfg.L)
    t0 = time.time()
    res = train(lang, mc, cfg, log=lambda m: log(f"{spec} {m}"), state_path=state, resume=True,
                save_every_seconds=60.0, init_from=init)
    s = res.summary()
    ck = os.path.join(out, f"{spec}-{kind}.pt")
    size = save_checkpoint(ck, res.net, kind=kind, step=res.steps, seed=cfg.seed, L=cfg.L, language=spec,
                           language_params=language_to_dict(lang),
                           train={"config": cfg.to_dict(), "summary": {k: v for k, v in s.items() if k != "history"}})
    doc = {"language": spec, "kind": kind, "L": cfg.L, "model_config": mc.to_dict(), "train_config": cfg.to_dict(),
           "summary": s, "checkpoint": os.path.basename(ck), "checkpoint_bytes": size, "versions": _versions(),
           "wall_seconds_this_process": time.time() - t0,
           "note": "seconds = training wall clock summed over resumed processes, on a shared 2-core CPU, 1 thread"}
    write_summary(summary_path, doc)
    log(f"{spec} {kind}: {s['stop_reason']} after {s['steps']} steps, {s['seconds']:.0f} s, "
        f"ratio {s['final_ratio_to_entropy']:.4f}, targets {s['targets']}")
    return doc


def _verdict(value, ci, target, *, vacuous=False) -> str:
    """``met`` when the whole 95% interval is at most ``target``; ``met (interval straddles)`` when
    the estimate is and the interval's upper end is not; ``missed (interval straddles)`` when the
    estimate is above and the lower end below; else ``missed``. ``vacuous``: no token is
    impossible, so there is nothing to leak."""
    if vacuous:
        return "met (vacuous: no impossible token)"
    if ci[1] <= target:
        return "met"
    if value <= target:
        return "met (interval straddles)"
    return "missed (interval straddles)" if ci[0] <= target else "missed"


def model_table(out, *, quality_target: float = 0.01, leak_target: float = 1e-4) -> list:
    """One row per (language, kind) evaluated in ``out``: the network, the training (steps and
    CPU seconds summed over warm starts), the held-out KL / H and leakage per token with their 95%
    intervals (``results*.json``), and each of issue 14's targets as ``met`` (the interval is under
    it) or not, as :func:`_verdict` words it. A language evaluated in two results
    files is an error (which one is current?)."""
    import glob

    from neural.model import ModelConfig

    rows, seen = [], {}
    for path in sorted(glob.glob(os.path.join(out, "results*.json"))):
        with open(path) as f:
            doc = json.load(f)
        for spec, block in (doc.get("languages") or {}).items():
            if spec in seen:
                raise ValueError(f"{spec} is evaluated in both {seen[spec]} and {os.path.basename(path)}")
            seen[spec] = os.path.basename(path)
            for kind in ("mdm", "ar"):
                train = block.get(f"train_{kind}") or {}
                lk = block.get(f"leakage_{kind}")
                if not lk or "kl_per_token" not in lk or not train.get("entropy_rate"):  # e.g. skipped by a budget
                    continue
                H = float(train["entropy_rate"]["value"])
                curve = os.path.join(out, f"train-{spec}-{kind}.jsonl")
                net = steps = seconds = None
                if os.path.exists(curve):
                    first = read_summary(curve)
                    mc, summ = ModelConfig.from_dict(first["model_config"]), first["summary"]
                    before = summ.get("init_from") or {}
                    net = f"{mc.n_layer} x {mc.n_embd}" + (f", MLP x{mc.mlp_ratio}" if mc.mlp_ratio != 4 else "") + (
                        ", abs. positions" if mc.abs_pos else "") + (
                        f", {mc.ngram_embed}-gram tables" if mc.ngram_embed else "")
                    steps = int(summ["steps"]) + int(before.get("total_steps") or 0)
                    seconds = float(summ["seconds"]) + float(before.get("total_seconds") or 0.0)
                kl, kl_ci = float(lk["kl_per_token"]) / H, [float(v) / H for v in lk["kl_ci"]]
                leak, leak_ci = float(lk["leakage_per_token"]), [float(v) for v in lk["leakage_ci"]]
                no_zero = leak == 0.0 and leak_ci == [0.0, 0.0] and float(lk.get("leakage_max", 0.0)) == 0.0
                rows.append({"language": spec, "kind": kind, "network": net, "steps": steps, "seconds": seconds,
                             "kl_over_entropy": kl, "kl_over_entropy_ci": kl_ci, "leakage": leak, "leakage_ci": leak_ci,
                             "quality": _verdict(kl, kl_ci, quality_target),
                             "leakage_target": _verdict(leak, leak_ci, leak_target, vacuous=no_zero),
                             "results": os.path.basename(path), "num_contexts": lk.get("num_contexts")})
    return rows


def format_table(rows) -> str:
    """:func:`model_table` as a Markdown table."""
    lines = ["| language | kind | network | steps | CPU hours | KL / H held out [95% CI] | quality <= 1% "
             "| leakage per token [95% CI] | leakage <= 1e-4 | results |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        hours = "" if r["seconds"] is None else f"{r['seconds'] / 3600:.2f}"
        steps = "" if r["steps"] is None else f"{r['steps']:,}"
        kl = f"{100 * r['kl_over_entropy']:.3g}% [{100 * r['kl_over_entropy_ci'][0]:.3g}, {100 * r['kl_over_entropy_ci'][1]:.3g}]"
        leak = "0" if r["leakage"] == 0 and r["leakage_ci"] == [0.0, 0.0] else \
            f"{r['leakage']:.2g} [{r['leakage_ci'][0]:.2g}, {r['leakage_ci'][1]:.2g}]"
        lines.append(f"| {r['language']} | {r['kind'].upper()} | {r['network'] or ''} | {steps} | {hours} | {kl} "
                     f"| {r['quality']} | {leak} | {r['leakage_target']} | `{r['results']}` |")
    return "\n".join(lines)


def pattern_table(out, *, num_sequences: int = 1024, seed: int = 0) -> list:
    """For every MDM checkpoint ``<spec>-mdm.pt`` in ``out``: :func:`neural.leakage.mdm_pattern_kl`
    at the standard patterns, on ``num_sequences`` exact samples of its language (seed ``seed``).
    One row per (language, pattern). Reads the checkpoints only."""
    import glob

    from neural.checkpoint import checkpoint_language, load_checkpoint
    from neural.leakage import mdm_pattern_kl
    from neural.sample import NetworkDenoiser

    rows = []
    for path in sorted(glob.glob(os.path.join(out, "*-mdm.pt"))):
        net, ck = load_checkpoint(path, map_location="cpu")
        net.eval()
        spec = os.path.basename(path)[: -len("-mdm.pt")]
        lang = checkpoint_language(ck)
        res = mdm_pattern_kl(lang, NetworkDenoiser(net), int(ck["L"]), num_sequences=num_sequences, rng=seed)
        for name, r in res.items():
            rows.append({"language": spec, "pattern": name, **r})
    return rows


def format_pattern_table(rows) -> str:
    """:func:`pattern_table` as a Markdown table: KL / H per masked token, one column per pattern."""
    names = list(dict.fromkeys(r["pattern"] for r in rows))
    lines = ["| MDM | " + " | ".join(f"{n}: KL / H" for n in names) + " |", "| --- |" + " --- |" * len(names)]
    for spec in dict.fromkeys(r["language"] for r in rows):
        cells = []
        for n in names:
            r = next(r for r in rows if r["language"] == spec and r["pattern"] == n)
            cells.append(f"H = 0, KL {r['kl_per_token']:.2g} nats" if r["kl_over_entropy"] is None
                         else f"{100 * r['kl_over_entropy']:.3g}%")
        lines.append(f"| {spec} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _limit_numba_threads(n: int) -> None:
    """The exact references (validation, leakage) run Numba kernels; left at the machine's
    thread count, their OpenMP workers spin after every parallel region and took half a core
    from a one-thread training beside another job (seen as a 3-5x slower training here)."""
    import numba

    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m neural.cpu_runs", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train every job in priority order (resumable)")
    t.add_argument("--out", required=True)
    t.add_argument("--state", required=True, help="directory of the resumable training states (not committed)")
    t.add_argument("--length", type=int, default=64)
    t.add_argument("--jobs", default=None, help="comma-separated spec:kind (default: all, in priority order)")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--max-steps", type=int, default=None, help="override the recipe's step cap for every job")
    t.add_argument("--max-seconds", type=float, default=None,
                   help="override the recipe's wall-clock cap (seconds of training, summed over resumes)")
    t.add_argument("--eval-every", type=int, default=None, help="override the recipe's validation interval (steps)")
    t.add_argument("--t-power", type=float, default=None,
                   help="override the MDM training-time power (neural.train.TrainConfig.t_power; default 1)")
    t.add_argument("--targets", choices=TARGETS, default=None,
                   help="override the recipe's training targets (neural.train.TARGETS)")
    t.add_argument("--layers", type=int, default=None, help="override the recipe's number of layers (3)")
    t.add_argument("--hidden", type=int, default=None, help="override the recipe's width (64)")
    t.add_argument("--heads", type=int, default=None, help="override the recipe's number of heads (4)")
    t.add_argument("--mlp-ratio", type=int, default=None,
                   help="override the MLP's hidden units per model dimension (4); with --init-from, a larger "
                        "ratio than the checkpoint's grows its MLPs (same function, new units: neural.model.grow_network)")
    t.add_argument("--abs-pos", action=argparse.BooleanOptionalAction, default=None,
                   help="learned absolute positions on top of rotary (default on; neural.model.ModelConfig.abs_pos); "
                        "with --init-from, a checkpoint without them gains a zero table (the same function)")
    t.add_argument("--ngram-embed", type=int, default=None, metavar="N",
                   help="local n-gram embedding tables of order N (0: none, the default; "
                        "neural.model.ModelConfig.ngram_embed); with --init-from, a checkpoint without them gains "
                        "zero tables (the same function)")
    t.add_argument("--lr", type=float, default=None, help="override the recipe's peak learning rate (2e-3)")
    t.add_argument("--target", type=float, default=None, metavar="REL",
                   help="override the recipe's quality target (0.01: within 1%% of the entropy rate); a tighter "
                        "one, e.g. 0.008, leaves room for the held-out interval")
    t.add_argument("--leak-target", type=float, default=None,
                   help="override the recipe's leakage target per token (1e-4)")
    t.add_argument("--init-from", default=None, metavar="DIR",
                   help="warm start each job from DIR/<spec>-<kind>.pt (e.g. the committed cpu-l64-long/ models, "
                        "when their training states are gone); the network options must match that checkpoint's")
    t.add_argument("--extend", action="store_true",
                   help="continue finished jobs from their states under a larger --max-seconds (a warm restart) "
                        "instead of skipping them; the other options must match the first run")
    e = sub.add_parser("evaluate", help="curves, leakage, timing from the trained checkpoints")
    pt = sub.add_parser("patterns", help="KL / H of every MDM of --out at fixed mask patterns "
                                         "(neural.leakage.standard_patterns; read-only)")
    pt.add_argument("--out", required=True)
    pt.add_argument("--sequences", type=int, default=1024, help="held-out sequences per pattern (default 1024)")
    pt.add_argument("--json", action="store_true")
    m = sub.add_parser("summary", help="the evaluated models of --out and the targets they meet (Markdown or --json)")
    m.add_argument("--out", required=True)
    m.add_argument("--json", action="store_true")
    e.add_argument("--out", required=True)
    e.add_argument("--languages", default=None)
    e.add_argument("--num-samples", type=int, default=256)
    e.add_argument("--steps", default="8,16,32,64,128,256,512,1024,2048")
    e.add_argument("--policy-steps", default="8,32")
    e.add_argument("--policy-samples", type=int, default=128)
    e.add_argument("--gumbel-steps", default="64,1024")
    e.add_argument("--results-name", default="results.json",
                   help="output file in --out (one per concurrent evaluate process; Figure 6 reads them all)")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--leak-sequences", type=int, default=65536,
                   help="held-out sequences for leakage and KL per token (default 65536, about 40 s per model at "
                        "L = 64: an MDM's leakage is heavy-tailed over contexts, and 4096 left the 1e-4 target "
                        "undecided); a language evaluated with another number is measured again")
    e.add_argument("--retime", action="store_true",
                   help="measure the wall clock again (e.g. on an idle machine) and recompute the matched speed-ups")
    args = p.parse_args(argv)
    if args.cmd == "summary":  # read-only: writes nothing, creates nothing
        if not os.path.isdir(args.out):
            p.exit(2, f"{p.prog}: error: --out {args.out!r}: no such directory\n")
        try:
            rows = model_table(args.out)
        except (ValueError, KeyError, TypeError, OSError) as err:
            p.exit(2, f"{p.prog}: error: {err}\n")
        if not rows:
            p.exit(2, f"{p.prog}: error: --out {args.out!r}: no evaluated models (results*.json)\n")
        print(json.dumps(rows, indent=1) if args.json else format_table(rows))
        return 0
    if args.cmd == "patterns":  # read-only, like summary
        if not os.path.isdir(args.out):
            p.exit(2, f"{p.prog}: error: --out {args.out!r}: no such directory\n")
        if args.sequences < 1:
            p.exit(2, f"{p.prog}: error: --sequences: expected a positive number, got {args.sequences}\n")
        torch.set_num_threads(1)
        _limit_numba_threads(1)
        rows = pattern_table(args.out, num_sequences=args.sequences)
        if not rows:
            p.exit(2, f"{p.prog}: error: --out {args.out!r}: no MDM checkpoints (*-mdm.pt)\n")
        print(json.dumps(rows, indent=1) if args.json else format_pattern_table(rows))
        return 0
    torch.set_num_threads(args.threads)
    _limit_numba_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    if args.cmd == "train":
        os.makedirs(args.state, exist_ok=True)
        jobs = JOBS if args.jobs is None else [tuple(j.split(":")) for j in args.jobs.split(",")]
        for job in jobs:
            if len(job) != 2 or job[1] not in ("mdm", "ar"):
                p.error(f"--jobs: expected spec:kind with kind mdm or ar, got {':'.join(job)!r}")

        def log(msg):
            print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

        overrides = {k: v for k, v in (("max_steps", args.max_steps), ("max_seconds", args.max_seconds),
                                       ("eval_every", args.eval_every), ("targets", args.targets),
                                       ("lr", args.lr), ("t_power", args.t_power), ("target_rel", args.target),
                                       ("leak_target", args.leak_target))
                     if v is not None}
        model_overrides = {k: v for k, v in (("n_layer", args.layers), ("n_embd", args.hidden),
                                             ("n_head", args.heads), ("mlp_ratio", args.mlp_ratio),
                                             ("abs_pos", args.abs_pos), ("ngram_embed", args.ngram_embed))
                           if v is not None}
        for spec, kind in jobs:
            try:
                run_job(spec, kind, args.length, args.out, args.state, log=log, overrides=overrides,
                        extend=args.extend, model_overrides=model_overrides, init_dir=args.init_from)
            except ValueError as err:  # a state that cannot be continued: one line, exit 2
                p.exit(2, f"{p.prog}: error: {err}\n")
        return 0
    if args.leak_sequences < 1:
        p.exit(2, f"{p.prog}: error: --leak-sequences: expected a positive number of sequences, got {args.leak_sequences}\n")
    evaluate_all(args.out, languages=None if args.languages is None else args.languages.split(","),
                 num_samples=args.num_samples, steps=[int(v) for v in args.steps.split(",")],
                 policy_steps=[int(v) for v in args.policy_steps.split(",")], policy_samples=args.policy_samples,
                 gumbel_steps=[int(v) for v in args.gumbel_steps.split(",") if v], results_name=args.results_name,
                 retime=args.retime, leak_sequences=args.leak_sequences)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
