"""Theory: one bound function per statement, separators, and the lemma regression checks."""
