"""Check that a rebuilt report store reproduces every number of an older one (December 2026).

Until December 2026 the report ran its own cell kinds (``exact``, ``mc``, ``deps``, with a
nested ``rule`` table and ``alpha`` for the interval level) through its own runner and store
code. Its cells are now the runtime's built-in kinds (:mod:`reports.cells`), so their
configurations, hence their store keys, changed; and the engines' results became one type
(``SamplerResult``: ``expected_instance_kl`` is now ``instance_kl_total``, Monte Carlo results
gained ``instance_kl_total`` and its interval, which are means of per-sample totals and cannot
be derived from the stored per-token values). An old store therefore cannot be migrated in
place. The committed store ``reports/data/cells.sqlite`` was rebuilt from empty with the same
seeds (``mdm-theory report`` into a fresh directory), and this module checked it against the
store it replaced: every cell of the rebuilt store has its old cell, and every value the old
cell stored is identical in the new one, apart from timings. (Old cells of grids the report no
longer runs have no new cell; they are counted, not compared.)

Usage::

    python -m reports.verify_rebuild OLD.sqlite NEW.sqlite     # exit 0 when every number agrees
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import sys

from mdm_exact.runtime.store import ResultStore
from reports.cells import EXACT_OMIT, MC_OMIT, cell_language

TIMINGS = ("seconds", "samples_per_second", "_seconds")
RENAMED = {"exact": {"expected_instance_kl": "instance_kl_total"}, "mc": {"alpha": "ci_alpha"}}
_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def new_config(old: dict) -> dict:
    """The cell of the current report for a cell of the old one."""
    kind, rule = old["kind"], old["rule"]
    if not isinstance(rule, dict):
        raise ValueError(f"not an old report cell (rule is not a table): {old!r:.200}")
    if kind == "mc":
        _same_keys(old, {"kind", "language", "L", "rule", "num_samples", "alpha", "instance_kl", "seed"})
        return {"kind": "mc", "language": cell_language(old["language"]), "L": old["L"], **rule,
                "num_samples": old["num_samples"], "seed": old["seed"], "ci_alpha": old["alpha"],
                "instance_kl": old["instance_kl"], "omit": list(MC_OMIT)}
    if kind == "exact":
        _same_keys(old, {"kind", "language", "L", "rule"})
        return {"kind": "exact", "language": cell_language(old["language"]), "L": old["L"], **rule,
                "omit": list(EXACT_OMIT)}
    if kind == "deps":
        _same_keys(old, {"kind", "L", "order", "rule", "num_instances", "seed"})
        return {"kind": "dependencies", "L": old["L"], "order": old["order"], **rule,
                "num_instances": old["num_instances"], "seed": old["seed"]}
    raise ValueError(f"not an old report cell (kind {kind!r}): {old!r:.200}")


def _same_keys(cell, want):
    if set(cell) != want:
        raise ValueError(f"not an old report cell: keys {sorted(cell)}, expected {sorted(want)}")


def _floats(v):
    """The old runner's JSON strings for non-finite floats, back to floats."""
    if isinstance(v, str) and v in _NONFINITE:
        return _NONFINITE[v]
    if isinstance(v, dict):
        return {k: _floats(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_floats(x) for x in v]
    return v


def _same(a, b) -> bool:
    """Exact equality, NaN equal to NaN (an infinite exact KL is now stored as None)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, float) and math.isinf(a) and b is None:
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _rel(a, b) -> float:
    """Largest relative difference between two numbers or lists of numbers (inf if not numeric)."""
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return max((_rel(x, y) for x, y in zip(a, b)), default=0.0)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isfinite(a) and math.isfinite(b):
        return abs(a - b) / max(abs(a), abs(b), 1e-300)
    return math.inf


def compare(old_path, new_path) -> dict:
    """Every value of every finished old cell that the rebuilt store has, against that store.

    Returns ``cells`` (old), ``new_cells``, ``matched``, ``unmatched_new`` (configs of new
    cells without an old one), ``unused_old`` (count of old cells without a new one),
    ``values`` (compared), ``mismatches`` and ``new_keys`` (result keys only the new cells have).
    """
    conn = sqlite3.connect(f"file:{os.path.abspath(old_path)}?mode=ro&immutable=1", uri=True)  # writes nothing
    try:
        rows = conn.execute("SELECT config, result FROM results WHERE status = 'ok' ORDER BY rowid").fetchall()
    finally:
        conn.close()
    new = ResultStore(new_path, create=False)
    out = {"cells": len(rows), "values": 0, "matched": 0, "unused_old": 0, "mismatches": [], "new_keys": set()}
    matched = set()
    for cfg_text, res_text in rows:
        old_cfg = json.loads(cfg_text)
        cfg = new_config(old_cfg)
        got = new.get(cfg)
        if got is None:
            out["unused_old"] += 1
            continue
        out["matched"] += 1
        matched.add(new.key(cfg))
        kind = old_cfg["kind"]
        old = {RENAMED.get(kind, {}).get(k, k): v for k, v in _floats(json.loads(res_text)).items()}
        omitted = {"mc": MC_OMIT, "exact": EXACT_OMIT}.get(kind, ())
        for k, v in old.items():
            if k in TIMINGS or k in omitted:
                continue
            out["values"] += 1
            if k not in got or not _same(v, got[k]):
                out["mismatches"].append((kind, old_cfg, k, v, got.get(k, "<absent>")))
        out["new_keys"] |= {f"{kind}.{k}" for k in set(got) - set(old)}
    out["new_cells"] = len(new)
    out["unmatched_new"] = [r["config"] for r in new.rows(status="ok") if r["key"] not in matched]
    out["new_keys"] = sorted(out["new_keys"])
    new.close()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.verify_rebuild", description=__doc__.split("\n\n")[0])
    p.add_argument("old", help="the store written before the report's cells became runtime kinds (read only)")
    p.add_argument("new", help="the rebuilt store")
    args = p.parse_args(argv)
    rep = compare(args.old, args.new)
    print(f"{rep['cells']} old cells, {rep['new_cells']} new cells, {rep['matched']} matched "
          f"({rep['unused_old']} old cells unused, {len(rep['unmatched_new'])} new cells without an old one); "
          f"{rep['values']} values compared, {len(rep['mismatches'])} differ")
    print(f"keys only in the new results: {', '.join(rep['new_keys']) or '-'}")
    rel = [_rel(a, b) for *_, a, b in rep["mismatches"]]
    if rel:
        print(f"largest relative difference of a differing value: {max(rel):.3g}")
    for kind, cfg, k, a, b in rep["mismatches"][:20]:
        print(f"  {kind} {json.dumps(cfg)[:100]}: {k}: old {str(a)[:60]} new {str(b)[:60]}")
    for cfg in rep["unmatched_new"][:20]:
        print(f"  new cell without an old one: {json.dumps(cfg)[:140]}")
    return 0 if not rep["unmatched_new"] and not rep["mismatches"] else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
