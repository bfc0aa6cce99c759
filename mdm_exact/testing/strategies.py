"""Hypothesis strategies for random languages (with exact zeros), step rules and instances.

Needs ``hypothesis`` (the ``test`` extra); ``import mdm_exact`` does not. The languages are
built by :mod:`mdm_exact.testing.languages` from a drawn seed, so a failing example is
reproducible from its printed arguments.
"""

from __future__ import annotations

try:
    from hypothesis import strategies as st
except ImportError as exc:  # a third-party test dependency, not one of our modules
    raise ImportError(
        "mdm_exact.testing.strategies needs hypothesis, a test dependency: pip install 'mdm-theory[test]'"
    ) from exc

import numpy as np

from mdm_exact.languages import NGram
from mdm_exact.sampler.schedules import FixedSizes, LeftToRight, RandomOrder, ScheduleSteps, schedule
from mdm_exact.testing.languages import random_language

__all__ = ["languages", "step_rules", "probability_vectors", "ngram_instances", "sparse_bigram_cases"]


def languages(*, kinds=("ngram", "hmm"), vocab_sizes=(2, 3), orders=(2, 3), zero_fracs=(0.0, 0.3, 0.6)):
    """Random n-gram / HMM languages (:func:`~mdm_exact.testing.languages.random_language`) with exact zeros."""
    return st.builds(
        random_language,
        seed=st.integers(0, 2**32 - 1),
        kind=st.sampled_from(list(kinds)),
        V=st.sampled_from(list(vocab_sizes)),
        order=st.sampled_from(list(orders)),
        zero_frac=st.sampled_from(list(zero_fracs)),
    )


@st.composite
def step_rules(draw, L, *, max_steps=3):
    """A step rule for length ``L``: integer-weight schedule (zero steps allowed), fixed sizes
    (empty steps allowed), cosine, random order or left to right; ``1..max_steps`` steps."""
    kind = draw(st.sampled_from(["probs", "fixed", "random-order", "left-to-right", "cosine"]))
    N = draw(st.integers(1, max_steps))
    if kind == "probs":
        w = np.array(draw(st.lists(st.integers(0, 5), min_size=N, max_size=N)), dtype=float)  # (N,)
        if w.sum() == 0:
            w[-1] = 1.0
        return ScheduleSteps(tuple(w / w.sum()))
    if kind == "fixed":
        cuts = sorted(draw(st.lists(st.integers(0, L), min_size=N - 1, max_size=N - 1)))
        edges = [0, *cuts, L]
        return FixedSizes(tuple(b - a for a, b in zip(edges, edges[1:])))
    if kind == "cosine":
        return schedule("cosine", N)
    return RandomOrder() if kind == "random-order" else LeftToRight()


def probability_vectors(*, max_size=12):
    """Probability vectors of length ``1..max_size`` with exact zeros (normalised non-negative floats)."""
    return (
        st.lists(st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False), min_size=1, max_size=max_size)
        .filter(lambda v: sum(v) > 1e-3)
        .map(lambda v: np.array(v) / sum(v))
    )


@st.composite
def ngram_instances(draw, *, V=2, max_L=5, max_steps=4, etas=(0.0, 0.02, 0.3), rows=6):
    """``(lang, n, L, eta, steps)``: a random n-gram (``n`` in {2, 3}, Dirichlet rows of concentration
    0.1 or 1), ``L`` in ``n..max_L``, a mixture weight ``eta`` and ``rows`` random instances (rows, L)."""
    n = draw(st.integers(2, 3))
    L = draw(st.integers(n, max_L))
    seed = draw(st.integers(0, 2**32 - 1))
    eta = draw(st.sampled_from(list(etas)))
    N = draw(st.integers(1, max_steps))
    rng = np.random.default_rng(seed)
    conc = draw(st.sampled_from([0.1, 1.0]))
    lang = NGram(n, rng.dirichlet(np.full(V ** (n - 1), conc)), rng.dirichlet(np.full(V, conc), size=V ** (n - 1)))
    steps = rng.integers(0, N, size=(rows, L))  # (rows, L)
    return lang, n, L, eta, steps


@st.composite
def sparse_bigram_cases(draw, *, etas=(0.0, 0.01, 0.1, 0.5)):
    """``(lang, V, L, eta, seed)``: a random bigram over ``V`` in {2, 3} tokens with about 30 % forbidden
    transitions (one boosted entry per row keeps rows positive), ``L`` in ``2..5`` (``2..4`` for
    ``V = 3``), a mixture weight ``eta`` and the seed (for further draws in the test)."""
    V = draw(st.integers(2, 3))
    L = draw(st.integers(2, 4 if V == 3 else 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    T = rng.dirichlet(np.full(V, 0.5), size=V)  # (V, V)
    T[rng.random((V, V)) < 0.3] = 0.0  # zeros make SER meaningful
    T[np.arange(V), rng.integers(0, V, V)] += 0.5
    T /= T.sum(axis=1, keepdims=True)
    lang = NGram(2, rng.dirichlet(np.ones(V)), T)
    eta = draw(st.sampled_from(list(etas)))
    return lang, V, L, eta, seed
