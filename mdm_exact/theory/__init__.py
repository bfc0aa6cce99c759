"""Theory: one bound function per statement (:mod:`~mdm_exact.theory.bounds`, by appendix), their
SymPy closed forms (:mod:`~mdm_exact.theory.symbolic`, loads SymPy), separators and dependencies
(:mod:`~mdm_exact.theory.separators`), schedule optimisation, and the lemma regression checks
(:mod:`~mdm_exact.theory.checks`, by appendix)."""
