"""Small test languages with exact zeros, built deterministically from a seed (no hypothesis needed).

One definition of each generator the tests and the checks share; the hypothesis strategies of
:mod:`mdm_exact.testing.strategies` draw their arguments. Rows are Dirichlet(1) draws with about
``zero_frac`` of their entries set to exactly 0 (at least one positive entry per row), so
languages have impossible contexts and sequences outside their support.
"""

from __future__ import annotations

import numpy as np

from mdm_exact.languages import HMM, NGram

__all__ = ["random_rows", "random_language", "copy_chain", "sparse_bigram"]


def random_rows(rng, shape, zero_frac):
    """Random stochastic rows of ``shape`` with about ``zero_frac`` exact zeros (at least one positive per row)."""
    a = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]).reshape(-1, shape[-1])  # (rows, V)
    if zero_frac > 0:
        kill = rng.random(a.shape) < zero_frac  # (rows, V)
        kill[np.arange(a.shape[0]), rng.integers(shape[-1], size=a.shape[0])] = False
        a = np.where(kill, 0.0, a)
        a /= a.sum(axis=-1, keepdims=True)
    return a.reshape(shape)


def random_language(seed, kind="ngram", V=2, order=2, S=3, zero_frac=0.0):
    """A random :class:`NGram` (``kind="ngram"``, ``order``) or :class:`HMM` (``kind="hmm"``, ``S`` states) over ``V`` tokens.

    n-gram: initial context law and conditional rows both with ``zero_frac`` zeros; HMM: dense
    initial law, transition and emission rows with ``zero_frac`` zeros.
    """
    rng = np.random.default_rng(seed)
    if kind == "ngram":
        C = V ** (order - 1)
        return NGram(order, random_rows(rng, (C,), zero_frac), random_rows(rng, (C, V), zero_frac))
    if kind == "hmm":
        return HMM(random_rows(rng, (S,), 0.0), random_rows(rng, (S, S), zero_frac), random_rows(rng, (S, V), zero_frac))
    raise ValueError(f"kind: expected 'ngram' or 'hmm', got {kind!r}")


def copy_chain(V=2, stay=1 - 1e-3):
    """Near-deterministic bigram: ``x_1`` uniform, ``x_{k+1} = x_k`` with probability ``stay`` (STATEMENTS.md §7.2).

    ``stay = 1`` is the exact copy chain (maximal dependence, total correlation ``(L-1) log V``).
    """
    T = np.full((V, V), (1.0 - stay) / (V - 1))  # (V, V)
    np.fill_diagonal(T, stay)
    return NGram(2, np.full(V, 1.0 / V), T)


def sparse_bigram(V=3, seed=0):
    """A random bigram with one forbidden transition ``0 -> 1`` (Dirichlet(1) initial law and rows)."""
    rng = np.random.default_rng(seed)
    cond = rng.dirichlet(np.ones(V), size=V)  # (V, V)
    cond[0, 1] = 0.0
    cond /= cond.sum(axis=1, keepdims=True)
    return NGram(2, rng.dirichlet(np.ones(V)), cond)
