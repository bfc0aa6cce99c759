"""Test support: the brute-force oracle, the instance enumerator, hypothesis strategies."""
