r"""The registry of statements, :func:`run_checks`, :func:`summarize` and :func:`exit_code`.

Statements whose reading is *known* to be false (the literal Definition B.5, the Jensen step
of Lemma C.5, STATEMENTS.md §7.2-7.3) and those whose constants come from secondary
summaries (Li & Cai) are marked ``believed=False``: their violations are reported as
findings and do not fail the suite. A violation of a statement believed true does.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from mdm_exact.theory.checks.appendix_a import check_a1
from mdm_exact.theory.checks.appendix_b import (
    check_b2,
    check_b3,
    check_b8,
    check_b8_literal,
    check_b9,
    check_b9_literal,
    check_b10,
    check_b11,
    check_b12,
    check_theorem_42,
)
from mdm_exact.theory.checks.appendix_c import (
    check_c1,
    check_c2,
    check_c5,
    check_c5_jensen,
    check_c6,
    check_c7,
    check_theorem_43,
    check_theorem_44,
)
from mdm_exact.theory.checks.extensions import check_chen_cong_li, check_eb_sampler, check_li_cai

__all__ = ["Statement", "STATEMENTS", "canonical_name", "run_checks", "summarize", "exit_code"]


@dataclass
class Statement:
    name: str
    func: object
    reference: str
    believed: bool = True
    finding: str = ""


STATEMENTS = {
    s.name: s
    for s in [
        Statement("A.1", check_a1, "STATEMENTS.md §4.B Lemma A.1 [reconstructed·H]"),
        Statement("B.2", check_b2, "STATEMENTS.md §4.C Lemma B.2 [reconstructed·H]"),
        Statement("B.3", check_b3, "STATEMENTS.md §4.C Lemma B.3 [reconstructed·H] (identity)"),
        Statement("B.8", check_b8, "STATEMENTS.md §4.C Lemma B.8 [reconstructed·M], corrected Definition B.5"),
        Statement("B.8-literal", check_b8_literal, "STATEMENTS.md §7.2: literal Definition B.5", False, "finding: literal reading violates B.8"),
        Statement("B.9", check_b9, "STATEMENTS.md §4.C Lemma B.9 [reconstructed·H], corrected Definition B.5"),
        Statement("B.9-literal", check_b9_literal, "STATEMENTS.md §7.2: literal Definition B.5", False, "finding: literal reading violates B.9"),
        Statement("B.10", check_b10, "STATEMENTS.md §4.C Lemma B.10 [reconstructed·M]"),
        Statement("B.11", check_b11, "STATEMENTS.md §4.C Lemma B.11 [reconstructed·M], constants [reconstructed·L]"),
        Statement("B.12", check_b12, "STATEMENTS.md §4.C Lemma B.12 [reconstructed·L] schedule"),
        Statement("4.2", check_theorem_42, "STATEMENTS.md §4.A Theorem 4.2 [reconstructed·M]"),
        Statement("C.1", check_c1, "STATEMENTS.md §4.D Lemma C.1 [reconstructed·M]"),
        Statement("C.2", check_c2, "STATEMENTS.md §4.D Lemma C.2 [reconstructed·M]"),
        Statement("C.5", check_c5, "STATEMENTS.md §4.D Lemma C.5 [reconstructed·M] (final bound; also its first inequality as C.5-first)"),
        Statement("C.5-jensen", check_c5_jensen, "STATEMENTS.md §7.3: the Jensen step of Lemma C.5", False, "finding: Jensen step of C.5 fails (N < l)"),
        Statement("C.6", check_c6, "STATEMENTS.md §4.D Lemma C.6 [reconstructed·M]"),
        Statement("C.7", check_c7, "STATEMENTS.md §4.D Example C.7 [reconstructed·M], p_err forms [reconstructed·L]"),
        Statement("4.3", check_theorem_43, "STATEMENTS.md §4.A Theorem 4.3 / C.3 [reconstructed·M]"),
        Statement("4.4", check_theorem_44, "STATEMENTS.md §4.A Theorem 4.4 / C.9 [reconstructed·M], constants [derived]"),
        Statement("Li-Cai", check_li_cai, "FIELD.md: Li & Cai arXiv:2505.21400 (constants from secondary summaries)", False, "finding: secondary-summary constants violated"),
        Statement("Chen-Cong-Li", check_chen_cong_li, "FIELD.md: Chen, Cong & Li arXiv:2511.04647 (identity, re-derived)"),
        Statement("EB", check_eb_sampler, "FIELD.md: EB-sampler, Ben-Hamu et al. arXiv:2505.24857 (per-step TC <= sum H - max H, exact conditionals)"),
    ]
}


def _squash(name: str) -> str:
    t = str(name).lower().replace("_", "-").replace(" ", "-")
    t = re.sub(r"^(lemma|theorem|thm|example|ex|definition|def)-?", "", t)
    return t.replace(".", "").replace("-", "")


def canonical_name(name) -> str:
    """The statement key for ``name``: exact keys, or aliases such as ``lemma_c5``, ``theorem-4.4``,
    ``b8_literal`` (case, ``_``/``-``/``.`` and a lemma/theorem prefix are ignored)."""
    if name in STATEMENTS:
        return name
    table = {_squash(k): k for k in STATEMENTS}
    table.update({_squash("C.9"): "4.4", _squash("C.3"): "4.3", _squash("B.13"): "4.2"})  # appendix numbers
    return table.get(_squash(name), name)


def run_checks(names=None, *, quick=False) -> list:
    """Run the regression suite; returns one record (dict) per (statement, instance).

    Parameters
    ----------
    names : iterable of str, optional
        Statement names (keys of :data:`STATEMENTS`, or aliases, see :func:`canonical_name`);
        default all.
    quick : bool
        A smaller grid (the default test suite uses it).
    """
    names = list(STATEMENTS) if names is None else [canonical_name(n) for n in names]
    unknown = [n for n in names if n not in STATEMENTS]
    if unknown:
        raise ValueError(f"unknown statement(s) {unknown}; expected some of {list(STATEMENTS)}")
    out = []
    for name in names:
        st = STATEMENTS[name]
        t0 = time.perf_counter()
        recs = st.func(quick)
        dt = time.perf_counter() - t0
        for r in recs:
            r["believed"] = st.believed
            r["reference"] = st.reference
            r["seconds_statement"] = dt
        out.extend(recs)
    return out


def summarize(records) -> list:
    """One row per statement: instances tried, violations, minimum slack, largest tightness ratio, status."""
    rows = {}
    identities = {r["statement"] for r in records if r["direction"] == "equal"} - {
        r["statement"] for r in records if r["direction"] != "equal"
    }
    for r in records:
        name = r["statement"]
        row = rows.setdefault(
            name,
            {"statement": name, "instances": 0, "violations": 0, "inconclusive": 0, "skipped": 0, "min_slack": math.inf, "max_ratio": 0.0,
             "believed": r.get("believed", True), "reference": r.get("reference", "")},
        )
        if r["status"] == "skipped":
            row["skipped"] += 1
            continue
        row["instances"] += r["count"]
        row["violations"] += r["violations"]
        row["inconclusive"] += r["status"] == "inconclusive"
        row["min_slack"] = min(row["min_slack"], r["slack"])
        if r["ratio"] is not None and math.isfinite(r["ratio"]) and r["direction"] != "equal":
            row["max_ratio"] = max(row["max_ratio"], r["ratio"])
    for row in rows.values():
        if row["statement"] in identities:
            row["max_ratio"] = None  # identities: the slack is minus the absolute error
        st = STATEMENTS.get(row["statement"])
        believed = st.believed if st is not None else row["believed"]
        if row["instances"] == 0 and row["skipped"]:
            row["status"] = "skipped"
        elif row["violations"] == 0:
            row["status"] = "holds" if not row["inconclusive"] else "holds (some inconclusive)"
            if not believed:
                row["status"] = "no counterexample in grid"
        else:
            row["status"] = (st.finding if st is not None and st.finding else "finding") if not believed else "VIOLATED"
    return list(rows.values())


def exit_code(summary) -> int:
    """1 if a statement believed true was violated, else 0."""
    return int(any(r["status"] == "VIOLATED" for r in summary))
