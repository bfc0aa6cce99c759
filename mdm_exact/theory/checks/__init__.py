r"""Regression suite: every statement of :mod:`mdm_exact.theory.bounds`, measured on a grid of instances.

For each statement and instance the *measured* side is computed exactly where possible
(small ``L``: all ``V^L`` sequences and all instances :math:`\tau` are enumerated by the
brute-force oracle :class:`mdm_exact.testing.oracle.ExactInstances`, independently of the
languages' own inference; step-assignment probabilities by exact recurrences,
:mod:`~mdm_exact.theory.checks.dependency_laws`) or by Monte Carlo with a confidence interval
(large ``L``, :func:`mdm_exact.sampler.montecarlo.run_monte_carlo`). Each record
(:mod:`~mdm_exact.theory.checks.records`) reports the bound, the measured value, the slack, the
tightness ratio and a status:

* ``holds`` / ``violated`` for exact values (tolerance :data:`TOL` for rounding);
* with an interval: ``holds`` if the whole interval is on the right side of the bound,
  ``violated`` if the whole interval is on the wrong side, ``inconclusive`` otherwise.

Statements whose reading is *known* to be false (the literal Definition B.5, the Jensen step
of Lemma C.5, STATEMENTS.md §7.2-7.3) and those whose constants come from secondary
summaries (Li & Cai) are marked ``believed=False``: their violations are reported as
findings and do not fail the suite. A violation of a statement believed true does.

Modules: :mod:`~.registry` (the statements, :func:`run_checks`, :func:`summarize`,
:func:`exit_code`), :mod:`~.records`, :mod:`~.zoo` (languages, rules and models of the grid),
:mod:`~.dependency_laws`, :mod:`~.appendix_a`, :mod:`~.appendix_b`, :mod:`~.appendix_c`,
:mod:`~.extensions` (Li & Cai, Chen-Cong-Li) and :mod:`~.instance` (:func:`check_instance`).
The grid is documented in ``docs/bounds.md``.
"""

from __future__ import annotations

from mdm_exact.testing.instances import enumerate_instances
from mdm_exact.testing.oracle import ExactInstances, joint_from_language
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
from mdm_exact.theory.checks.dependency_laws import expected_dependencies, separator_count_pmf, step_distribution_quantities
from mdm_exact.theory.checks.extensions import check_chen_cong_li, check_li_cai
from mdm_exact.theory.checks.instance import check_instance
from mdm_exact.theory.checks.records import TOL
from mdm_exact.theory.checks.registry import STATEMENTS, Statement, canonical_name, exit_code, run_checks, summarize
from mdm_exact.theory.checks.zoo import MixtureModel, copy_chain, exact_languages, exact_models, exact_rules, interval_language_table

__all__ = [
    "STATEMENTS",
    "Statement",
    "check_instance",
    "canonical_name",
    "TOL",
    "run_checks",
    "summarize",
    "exit_code",
    "separator_count_pmf",
    "expected_dependencies",
    "step_distribution_quantities",
    "enumerate_instances",
    "ExactInstances",
    "MixtureModel",
    "interval_language_table",
    "copy_chain",
    "joint_from_language",
    "exact_languages",
    "exact_rules",
    "exact_models",
    "check_a1",
    "check_b2",
    "check_b3",
    "check_b8",
    "check_b8_literal",
    "check_b9",
    "check_b9_literal",
    "check_b10",
    "check_b11",
    "check_b12",
    "check_theorem_42",
    "check_c1",
    "check_c2",
    "check_c5",
    "check_c5_jensen",
    "check_c6",
    "check_c7",
    "check_theorem_43",
    "check_theorem_44",
    "check_li_cai",
    "check_chen_cong_li",
]
