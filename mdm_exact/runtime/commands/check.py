"""``mdm-theory check``: the paper's statements checked on a grid of instances.

Usage::

    mdm-theory check --all              # whole suite (a few minutes on 2 cores)
    mdm-theory check --all --quick      # smaller grid (seconds)
    mdm-theory check B.8 B.8-literal C.5 --json
    mdm-theory check --list

Exit code 1 when a statement believed true is violated; known failures of a literal reading
(e.g. ``B.8-literal``) are reported as findings and keep the exit code 0. See
``docs/bounds.md`` for the grid.
"""

from __future__ import annotations

import json
import math
import sys
import time

from mdm_exact.runtime.commands._common import jsonable


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "check",
        help="check the paper's bounds on a grid of instances",
        description="Check the statements of Feng et al. (2025), as reconstructed in STATEMENTS.md, on a documented grid "
        "of instances (exact enumeration for small L, exact recurrences, Monte Carlo with intervals).",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="statements to check (see --list)")
    p.add_argument("--all", action="store_true", help="check every statement")
    p.add_argument("--quick", action="store_true", help="smaller grid")
    p.add_argument("--json", action="store_true", help="print JSON (summary and every record)")
    p.add_argument("--list", action="store_true", help="list the statements and exit")
    p.add_argument("--records", action="store_true", help="also print every instance (text mode)")
    p.set_defaults(func=run)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.3g}"
    return str(v)


def run(args) -> int:
    from mdm_exact.theory import checks

    if args.list:
        if args.json:
            print(json.dumps({"statements": [{"name": name, "reference": st.reference, "believed": bool(st.believed)}
                                             for name, st in checks.STATEMENTS.items()]}, indent=1))
            return 0
        for name, st in checks.STATEMENTS.items():
            print(f"{name:14s} {'' if st.believed else '(finding expected) '}{st.reference}")
        return 0
    if args.all and args.names:
        raise ValueError("give statement names or --all, not both")
    if not args.all and not args.names:
        raise ValueError("nothing to check: give statement names (see --list) or --all")
    names = None if args.all else args.names
    t0 = time.perf_counter()
    records = checks.run_checks(names, quick=args.quick)
    summary = checks.summarize(records)
    seconds = time.perf_counter() - t0
    code = checks.exit_code(summary)
    if args.json:
        from mdm_exact.runtime.provenance import provenance

        out = {"summary": summary, "records": records, "quick": args.quick, "seconds": seconds, "exit_code": code}
        try:
            out["provenance"] = provenance()
        except Exception as exc:  # provenance is informative only
            out["provenance"] = {"error": str(exc)}
        json.dump(jsonable(out, inf_as_string=True), sys.stdout, indent=1)
        print()
        return code
    if args.records:
        for r in records:
            ci = "" if r["measured_ci"] is None else f" CI [{_fmt(r['measured_ci'][0])}, {_fmt(r['measured_ci'][1])}]"
            print(f"{r['statement']:13s} {r['status']:12s} bound {_fmt(r['bound']):>9s} measured {_fmt(r['measured']):>9s}{ci}  {r['instance']}")
        print()
    header = f"{'statement':14s} {'instances':>9s} {'violations':>10s} {'min slack':>10s} {'max ratio':>9s}  status"
    print(header)
    print("-" * len(header))
    for row in summary:
        print(
            f"{row['statement']:14s} {row['instances']:9d} {row['violations']:10d} {_fmt(row['min_slack']):>10s} "
            f"{_fmt(row['max_ratio']):>9s}  {row['status']}"
        )
    print(f"\n{len(records)} records in {seconds:.1f} s; ratio = measured/bound (upper bounds) or bound/measured (lower bounds).")
    if code:
        print("A statement believed true was VIOLATED (exit code 1).")
    return code
