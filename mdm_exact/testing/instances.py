r"""THE instance enumerator: every step assignment :math:`\tau` of a step rule with its probability.

An instance assigns each position ``i`` the (0-based) step ``tau_i`` at which it is revealed
(STATEMENTS.md §1.7, as reconstructed; Feng et al. 2025, arXiv:2502.09622v1, Definition B.1).
Used by the brute-force oracle (:mod:`mdm_exact.testing.oracle`), by the lemma checks
(:mod:`mdm_exact.theory.checks`) and by the tests. Enumeration is exponential in ``L``: tiny
cases only.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from mdm_exact.sampler.schedules import FixedSizes, LeftToRight, RandomOrder, ScheduleSteps

__all__ = ["enumerate_instances", "MAX_INSTANCES"]

#: Default largest number of instances :func:`enumerate_instances` builds.
MAX_INSTANCES = 200_000


def enumerate_instances(rule, L, *, max_instances=MAX_INSTANCES):
    r"""All instances :math:`\tau` of a step rule with their probabilities (STATEMENTS.md §1.7).

    Parameters
    ----------
    rule : StepRule
        :class:`~mdm_exact.sampler.schedules.ScheduleSteps` (positions pick steps i.i.d. from
        ``rule.p``), :class:`FixedSizes` (uniform over assignments with the given step sizes),
        :class:`RandomOrder` (uniform over the ``L!`` orders) or :class:`LeftToRight`.
    L : int
    max_instances : int
        Refuse (``ValueError``) to build more instances than this.

    Returns
    -------
    steps : ndarray, shape (T, L), int64
        ``steps[t, i]`` is the 0-based step of position ``i`` in instance ``t``. Schedule
        rules: ``itertools.product`` order; fixed sizes: sorted distinct permutations of the
        step labels; random order: ``itertools.permutations(range(L))`` order.
    probs : ndarray, shape (T,)
        Instance probabilities summing to 1 (zero-probability instances dropped).
    """
    if isinstance(rule, ScheduleSteps):
        p = rule.p
        N = p.size
        if N**L > max_instances:
            raise ValueError(f"enumerating N^L = {N}^{L} instances exceeds {max_instances}")
        steps = np.array(list(itertools.product(range(N), repeat=L)), dtype=np.int64).reshape(-1, L)  # (N^L, L)
        with np.errstate(divide="ignore"):
            logw = np.log(p)[steps].sum(axis=1)  # (N^L,)
        keep = np.isfinite(logw)
        steps, w = steps[keep], np.exp(logw[keep])
        return steps, w / w.sum()
    if isinstance(rule, FixedSizes):
        rule.check_length(L)
        labels = np.repeat(np.arange(len(rule.sizes)), rule.sizes)  # (L,)
        count = math.factorial(L) // math.prod(math.factorial(s) for s in rule.sizes)
        if count > max_instances:
            raise ValueError(f"{count} instances exceed {max_instances}")
        steps = np.array(sorted(set(itertools.permutations(labels.tolist()))), dtype=np.int64).reshape(-1, L)  # (T, L)
        return steps, np.full(steps.shape[0], 1.0 / steps.shape[0])
    if isinstance(rule, RandomOrder):
        if math.factorial(L) > max_instances:
            raise ValueError(f"L! = {math.factorial(L)} instances exceed {max_instances}")
        steps = np.array(list(itertools.permutations(range(L))), dtype=np.int64).reshape(-1, L)  # (L!, L)
        return steps, np.full(steps.shape[0], 1.0 / steps.shape[0])
    if isinstance(rule, LeftToRight):
        return np.arange(L, dtype=np.int64)[None, :], np.ones(1)
    raise TypeError(f"unknown step rule {rule!r}; expected a mdm_exact.sampler.schedules step rule")
