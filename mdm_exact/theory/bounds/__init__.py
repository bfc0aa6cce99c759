r"""The paper's statements as functions: one function per lemma or theorem, returning the bound.

Feng et al. (2025), "Theoretical Benefit and Limitation of Diffusion Language Model",
arXiv:2502.09622v1, **as reconstructed** in ``shared/theory/STATEMENTS.md`` (cited below as
"STATEMENTS.md §x" with the confidence tag recorded there). Every formula of the paper was
stripped from the available text, so each function implements the reconstruction, not a
quotation; the tags say how sure the reconstruction is.

Every function

* validates its arguments (types, ranges, lengths, probabilities summing to 1), raising
  :class:`ValueError` with a message that names the argument;
* checks a statement's hypotheses **only where they are a property of its arguments**:
  :math:`(n-1)\mid L` (:func:`lemma_b10_separator_bound`, :func:`lemma_b11_bound`,
  :func:`lemma_b12_dependency_bound`, :func:`lemma_b12_kl_bound`), :math:`p+P\le1` and
  :math:`P>0` (:func:`lemma_b11_bound`), :math:`l\mid L` (:func:`lemma_c6_ser_lower_bound`,
  :func:`theorem_44_ser_lower_bound`), :math:`\epsilon_{\rm learning}<1/128`
  (:func:`theorem_44_ser_lower_bound`), the Lemma B.12 size condition on :math:`L`
  (:func:`lemma_b12_kl_bound`, :func:`theorem_42_log_ter_bound`), :math:`s_{\max}\le L`
  (:func:`li_cai_bound`), :math:`\sqrt{\epsilon/2}\le1/8` (``crude`` form of
  :func:`example_c7_p_err`). Hypotheses about objects that are not arguments (the language
  is an :math:`n`-gram, an HMM or the interval language; the model satisfies Assumption 4.1
  with the given ``epsilon_learning``; positions pick steps i.i.d.; an instance reveals at most
  one position per step; :math:`D_\tau` uses the corrected Definition B.5) are stated in the
  docstrings and are the caller's responsibility; :mod:`mdm_exact.theory.checks` measures them;
* returns the bound (never an estimate): a ``float``, or a :class:`BoundResult` (the bound
  with its named parts) for the two statements whose proofs bound several terms (Lemmas
  B.10 and B.11). The measured side of each statement lives in :mod:`mdm_exact.theory.checks`.

Names: theorems by their main-text number (``theorem_42_*``, ``theorem_43_*``,
``theorem_44_*``; Theorems 4.3 and 4.4 are C.3 and C.9 of the appendix), lemmas and examples by
their appendix number (``lemma_c5_*``, ``example_c7_*``).

Conventions: natural logarithms (nats); steps in generation order ``k = 1..N`` with per-step
probabilities ``p^(k)`` and ``P^(k) = sum_{j<k} p^(j)`` (STATEMENTS.md §1.6);
``epsilon_learning`` is the per-token, pointwise KL(data || model) bound of Assumption 4.1
(STATEMENTS.md §3).

Two later results on the same sampler (``shared/notes/FIELD.md``; constants from secondary
summaries) are included: :func:`li_cai_bound` and :func:`chen_cong_li_identity`.

Modules, by appendix: :mod:`~.appendix_a`, :mod:`~.appendix_b`, :mod:`~.appendix_c`,
:mod:`~.extensions` (the later results) and :mod:`~._validate` (argument checks and
:class:`BoundResult`); everything is importable from ``mdm_exact.theory.bounds``. Exact SymPy
closed forms of several bounds are in :mod:`mdm_exact.theory.symbolic`.
"""

from __future__ import annotations

# the argument validators are shared with mdm_exact.theory.checks and mdm_exact.theory.symbolic
from mdm_exact.theory.bounds._validate import KL_ROUNDING, BoundResult, _kl_values, _pos_int, _real, _step_probs  # noqa: F401
from mdm_exact.theory.bounds.appendix_a import (
    lemma_a1_bound,
    chernoff_upper_tail,
    chernoff_lower_tail,
)
from mdm_exact.theory.bounds.appendix_b import (
    lemma_b2_bound,
    lemma_b3_identity,
    lemma_b8_bound,
    lemma_b9_bound,
    lemma_b10_new_positions_bound,
    lemma_b10_separator_bound,
    lemma_b11_bound,
    lemma_b11_case3_idealised,
    lemma_b12_schedule,
    lemma_b12_dependency_bound,
    lemma_b12_min_length,
    lemma_b12_kl_bound,
    theorem_42_log_ter_bound,
)
from mdm_exact.theory.bounds.appendix_c import (
    elementary_symmetric_scaled,
    lemma_c1_bound,
    lemma_c1_max_bound,
    lemma_c1_exact,
    lemma_c1_num_steps,
    lemma_c2_bound,
    lemma_c5_exact,
    lemma_c5_intermediate,
    lemma_c5_bound,
    lemma_c5_uniform,
    lemma_c6_ser_lower_bound,
    example_c7_error_probability,
    example_c7_p_err,
    P_ERR_FORMS,
    theorem_43_ser_bound,
    theorem_43_max_epsilon_learning,
    theorem_43_min_num_steps,
    theorem_44_ser_lower_bound,
    theorem_44_asymptotic,
    theorem_44_constant,
    interval_validity_perfect_model,
)
from mdm_exact.theory.bounds.extensions import (
    li_cai_bound,
    chen_cong_li_identity,
)

__all__ = [
    "BoundResult",
    "KL_ROUNDING",
    "lemma_a1_bound",
    "chernoff_upper_tail",
    "chernoff_lower_tail",
    "lemma_b2_bound",
    "lemma_b3_identity",
    "lemma_b8_bound",
    "lemma_b9_bound",
    "lemma_b10_new_positions_bound",
    "lemma_b10_separator_bound",
    "lemma_b11_bound",
    "lemma_b11_case3_idealised",
    "lemma_b12_schedule",
    "lemma_b12_dependency_bound",
    "lemma_b12_min_length",
    "lemma_b12_kl_bound",
    "theorem_42_log_ter_bound",
    "elementary_symmetric_scaled",
    "lemma_c1_bound",
    "lemma_c1_max_bound",
    "lemma_c1_exact",
    "lemma_c1_num_steps",
    "lemma_c2_bound",
    "lemma_c5_exact",
    "lemma_c5_intermediate",
    "lemma_c5_bound",
    "lemma_c5_uniform",
    "lemma_c6_ser_lower_bound",
    "example_c7_error_probability",
    "example_c7_p_err",
    "P_ERR_FORMS",
    "theorem_43_ser_bound",
    "theorem_43_max_epsilon_learning",
    "theorem_43_min_num_steps",
    "theorem_44_ser_lower_bound",
    "theorem_44_asymptotic",
    "theorem_44_constant",
    "interval_validity_perfect_model",
    "li_cai_bound",
    "chen_cong_li_identity",
]
