"""``mdm-theory language``: make, inspect and list languages.

Usage::

    mdm-theory language list
    mdm-theory language make paper-hmm --seed 7 -o hmm7.json
    mdm-theory language make paper-4gram --reading divide -o g4.npz
    mdm-theory language show paper-hmm --length 6
    mdm-theory language show hmm7.json --json

``show`` prints sizes, sparsity, the exact support size at a small length ``L`` (counting DP,
no enumeration), the exact entropy at ``L`` where tractable and the entropy rate (exact for
n-gram and interval languages, a Monte Carlo estimate with its standard error for HMMs;
``Language.entropy_rate``).
"""

from __future__ import annotations

import json
import time

from mdm_exact.runtime.commands._common import jsonable


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "language",
        help="make and inspect languages (presets, files)",
        description="Make, inspect and list the formal languages (Table 1 presets, Example C.7, files).",
    )
    sub = p.add_subparsers(dest="language_command", metavar="ACTION")
    sub.required = True

    pl = sub.add_parser("list", help="list the presets")
    pl.add_argument("--json", action="store_true", help="print JSON")
    pl.set_defaults(func=run_list)

    pm = sub.add_parser("make", help="draw a preset and write it to a .json or .npz file")
    pm.add_argument("preset", metavar="PRESET", help="preset name (see `mdm-theory language list`)")
    pm.add_argument("--seed", type=int, default=None, help="seed of the random generator (default: the presets' fixed seed)")
    pm.add_argument("--reading", choices=["multiply", "divide"], default=None,
                    help="how the temperature enters the softmax (default: multiply)")
    pm.add_argument("-o", "--output", required=True, metavar="FILE", help="output file (.json or .npz)")
    pm.set_defaults(func=run_make)

    ps = sub.add_parser("show", help="describe a preset or a language file")
    ps.add_argument("language", metavar="FILE|PRESET")
    ps.add_argument("--length", "-L", type=int, default=None,
                    help="length for the exact support size and entropy (default: 6, or 2 intervals)")
    ps.add_argument("--seed", type=int, default=None, help="seed for random presets")
    ps.add_argument("--json", action="store_true", help="print JSON")
    ps.set_defaults(func=run_show)


def run_list(args) -> int:
    from mdm_exact.languages.presets import DEFAULT_READING, DEFAULT_SEED, PRESETS, describe_preset

    if args.json:
        print(json.dumps({"default_seed": DEFAULT_SEED, "default_reading": DEFAULT_READING,
                          "presets": {k: dict(v, description=describe_preset(k)) for k, v in PRESETS.items()}}, indent=2))
        return 0
    print(f"presets (random ones use seed {DEFAULT_SEED} and the {DEFAULT_READING!r} temperature reading by default):")
    for name in PRESETS:
        print(f"  {name:<18} {describe_preset(name)}")
    return 0


def run_make(args) -> int:
    from mdm_exact.languages import make_preset, save_language

    lang = make_preset(args.preset, seed=args.seed, reading=args.reading)
    path = save_language(lang, args.output)
    gen = getattr(lang, "generation", None)
    extra = ""
    if gen:
        extra = "; pruned " + ", ".join(f"{k[:-len('_pruned_fraction')]} {v:.1%}" for k, v in gen.items() if k.endswith("_pruned_fraction"))
    print(f"wrote {args.preset} to {path}{extra}")
    return 0


#: Longest ``--length`` of ``language show`` (its exact counts cost at least linear time in L).
MAX_SHOW_LENGTH = 1000


def _check_show_length(L) -> None:
    if L is not None and L > MAX_SHOW_LENGTH:
        raise ValueError(
            f"--length: the exact support size and entropy at L = {L} take L big-integer DP steps (about 3 s at "
            f"L = 1000 for paper-hmm, 33 s at L = 4000 for paper-4gram); the limit is L <= {MAX_SHOW_LENGTH}"
        )


def show_info(lang, L=None, *, rng=None) -> dict:
    """The dictionary printed by ``language show`` (``rng``: randomness of a Monte Carlo entropy rate)."""
    from mdm_exact.languages import IntervalLanguage
    from mdm_exact._validate import as_length

    info = dict(lang.describe())
    info["name"] = getattr(lang, "name", None)
    if getattr(lang, "generation", None):
        info["generation"] = lang.generation
    if L is None:
        L = 2 * lang.interval_length if isinstance(lang, IntervalLanguage) else 6
    L = as_length(L, "--length")
    _check_show_length(L)
    info["L"] = L
    t0 = time.perf_counter()
    try:
        size = lang.support_size(L)
        info["support_size"] = size
        info["support_fraction"] = size / lang.vocab_size**L
        info["support_method"] = {"hmm": "boolean subset DP (exact)", "ngram": "context counting DP (exact)",
                                  "interval": "closed form 2^(M l(l-1)/2)"}.get(lang.kind, "enumeration (exact)")
    except NotImplementedError as exc:
        info["support_size"] = None
        info["support_method"] = f"not tractable ({exc})"
    try:
        info["entropy"] = lang.entropy(L)
        info["entropy_method"] = {"ngram": "exact recursion", "interval": "closed form"}.get(lang.kind, "exact enumeration")
    except NotImplementedError:
        info["entropy"] = None
        info["entropy_method"] = f"not tractable (V^L = {lang.vocab_size}^{L} > 2^22)"
    rate = lang.entropy_rate(rng=0 if rng is None else rng)
    info["entropy_rate"] = rate.value
    info["entropy_rate_se"] = rate.std_error
    info["entropy_rate_converged"] = rate.converged
    info["entropy_rate_method"] = rate.method
    info["seconds"] = time.perf_counter() - t0
    return info


def run_show(args) -> int:
    from mdm_exact.languages import load_language

    _check_show_length(args.length)  # before building the language
    lang = load_language(args.language, seed=args.seed)
    info = show_info(lang, args.length, rng=args.seed)
    if args.json:
        print(json.dumps(jsonable(info, inf_as_string=True), indent=2))
        return 0
    width = max(len(k) for k in info)
    for k, v in info.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b:.4g}" if isinstance(b, float) else f"{a}={b}" for a, b in v.items())
        elif isinstance(v, float):
            v = f"{v:.6g}"
        print(f"{k:<{width}}  {v}")
    return 0
