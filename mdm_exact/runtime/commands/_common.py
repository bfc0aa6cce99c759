"""Pieces shared by the subcommands: language / step-rule options and JSON output."""

from __future__ import annotations


def add_language_args(p) -> None:
    """``--language PRESET|FILE`` and ``--language-seed``."""
    p.add_argument("--language", required=True, metavar="PRESET|FILE", help="preset name or .json/.npz language file")
    p.add_argument("--language-seed", type=int, default=None, help="seed of random presets (default: their fixed seed)")


def add_rule_args(p, *, ar_note: str = "") -> None:
    """``--length``, ``--steps`` and the mutually exclusive ``--schedule | --step-sizes | --rule``."""
    p.add_argument("--length", "-L", type=int, required=True, help="sequence length L")
    p.add_argument("--steps", "-N", type=int, default=None, help="number of sampling steps N (schedule rules)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--schedule", choices=["linear", "cosine"], default=None, help="masking schedule (default: linear)")
    g.add_argument("--step-sizes", default=None, metavar="S1,S2,...", help="fixed number of positions per step, summing to L")
    g.add_argument("--rule", choices=["random-order", "left-to-right"], default=None, help=f"one position per step{ar_note}")


def rule_from_args(args):
    """The step rule chosen by :func:`add_rule_args` options (clear errors on inconsistent input)."""
    from mdm_exact.sampler.schedules import make_step_rule

    if args.step_sizes is not None:
        from mdm_exact._validate import parse_step_sizes

        sizes = parse_step_sizes(args.step_sizes)
        if args.steps is not None and args.steps != len(sizes):
            raise ValueError(f"--steps {args.steps} disagrees with the {len(sizes)} --step-sizes")
        return make_step_rule("fixed", sizes=sizes)
    if args.rule is not None:
        if args.steps is not None and args.steps != args.length:
            raise ValueError(f"--rule {args.rule} takes N = L = {args.length} steps, got --steps {args.steps}")
        return make_step_rule(args.rule)
    if args.steps is None:
        raise ValueError("--steps is required with a schedule (or give --step-sizes / --rule)")
    from mdm_exact._validate import check_schedule_steps

    check_schedule_steps(args.steps, "--steps")
    return make_step_rule(args.schedule or "linear", num_steps=args.steps)


def add_policy_args(p) -> None:
    """``--policy``, ``--block-length``, ``--temperature`` (issue 16; ``docs/policies.md``)."""
    p.add_argument("--policy", default=None, metavar="NAME",
                   help="unmasking policy: random|confidence|margin|entropy|llada|threshold:G|eb:G (default: the content-blind step rule)")
    p.add_argument("--block-length", type=int, default=None, help="semi-autoregressive block length (with --policy)")
    p.add_argument("--temperature", type=float, default=None, help="token temperature T >= 0 (with --policy; default 1)")


def policy_from_args(args):
    """The policy chosen by :func:`add_policy_args` and :func:`add_rule_args` options, or ``None``."""
    from mdm_exact._validate import check_policy_options
    from mdm_exact.sampler.policies import policy_from_options

    check_policy_options(args.policy, block_length=args.block_length, temperature=args.temperature)
    if args.policy is None:
        return None
    return policy_from_options(args.policy, L=args.length, steps=args.steps, step_sizes=args.step_sizes,
                               schedule_name=args.schedule, rule=args.rule, block_length=args.block_length,
                               temperature=1.0 if args.temperature is None else args.temperature)


def jsonable(obj, *, inf_as_string: bool = False):
    """:func:`mdm_exact.runtime.serialize.jsonable` with the CLI's conventions.

    NaN becomes ``null``; ``+-inf`` becomes ``null`` (the convention of ``exact``/``sample``:
    "null when infinite"), or the strings ``"inf"`` / ``"-inf"`` with ``inf_as_string`` where the
    sign matters (bounds and slacks in ``check``, sizes in ``language show``).
    """
    from mdm_exact.runtime.serialize import jsonable as _jsonable

    return _jsonable(obj, nonfinite="inf-string" if inf_as_string else "null")
