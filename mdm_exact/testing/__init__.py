"""Test support, shipped with the package (as dit ships its strategies) and used by the lemma checks
and by every test: one implementation of each reference.

* :mod:`~mdm_exact.testing.instances`: THE instance enumerator (every step assignment with its probability);
* :mod:`~mdm_exact.testing.oracle`: THE brute-force oracle (output law and per-instance
  quantities from the explicit joint table);
* :mod:`~mdm_exact.testing.rational`: THE exact-rational (``fractions.Fraction``) oracle;
* :mod:`~mdm_exact.testing.policy_oracle`: the brute-force oracle of the adaptive policies;
* :mod:`~mdm_exact.testing.languages`: seeded random languages with exact zeros;
* :mod:`~mdm_exact.testing.strategies`: hypothesis strategies (needs the ``test`` extra).

Nothing here is imported by ``import mdm_exact``.
"""
