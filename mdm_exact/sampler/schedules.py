"""Masking schedules and step rules of the idealised sampler.

Steps are numbered in **generation order** ``k = 1..N`` (step 1 runs first), as in
STATEMENTS.md §1.6. A *step rule* says which positions are revealed at each step:

* :class:`ScheduleSteps` - every position independently picks its step ``k`` with
  probability ``p^(k)``, derived from a masking schedule ``alpha_t`` on the grid
  ``t_i = i / N`` by ``p^(k) = alpha(t_{N-k}) - alpha(t_{N-k+1})`` (STATEMENTS.md §1.6,
  §1.7: ``Pr(tau) = prod_k (p^(k))^{|M_k|}``). ``linear`` (``alpha_t = 1 - t``) gives
  ``p^(k) = 1/N``; ``cosine`` is ``alpha_t = 1 - cos(pi (1 - t) / 2)``
  (MD4/MaskGIT: few tokens first, many last).
* :class:`FixedSizes` - exactly ``s_k`` positions at step ``k``, a uniformly random subset of
  the still-masked ones (LLaDA style).
* :class:`RandomOrder` - one position per step in uniformly random order (``N = L``).
* :class:`LeftToRight` - one position per step, left to right: the autoregressive sampler.

``draw_steps(rule, n, L, rng=...)`` draws ``n`` instances ``tau`` as an ``(n, L)`` array of
0-based step indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mdm_exact._validate import as_count, as_length
from mdm_exact.languages._draw import inverse_cdf

#: Tolerance on the total mass of user-supplied per-step probabilities.
PROB_ATOL = 1e-9


class StepRule:
    """Base class of step rules; see the module docstring."""

    name: str = "rule"

    def num_steps(self, L: int) -> int:
        raise NotImplementedError

    def to_dict(self) -> dict:
        """JSON form of the rule; ``make_step_rule(**rule.to_dict()) == rule`` for every rule."""
        raise NotImplementedError


def _checked_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1 or p.size < 1:
        raise ValueError(f"step probabilities: expected a non-empty 1-d sequence, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("step probabilities: expected finite, non-negative values")
    if abs(p.sum() - 1.0) > PROB_ATOL:
        raise ValueError(f"step probabilities: expected them to sum to 1, they sum to {p.sum():.12g}")
    return p


@dataclass(frozen=True)
class ScheduleSteps(StepRule):
    """Positions pick their step independently with probabilities ``probs`` (generation order)."""

    probs: tuple
    label: str = "custom"

    def __post_init__(self):
        p = _checked_probs(self.probs)
        object.__setattr__(self, "probs", tuple(float(v) for v in p / p.sum()))

    @classmethod
    def _stored(cls, probs, label):
        """The rule whose ``probs`` are exactly the given (checked) values, not renormalised:
        ``to_dict()`` output read back by :func:`make_step_rule` gives an equal rule."""
        rule = cls.__new__(cls)
        object.__setattr__(rule, "probs", tuple(float(v) for v in _checked_probs(probs)))
        object.__setattr__(rule, "label", str(label))
        return rule

    name = "schedule"

    @property
    def p(self) -> np.ndarray:
        """Per-step probabilities ``p^(k)``, shape (N,)."""
        return np.array(self.probs)

    def num_steps(self, L: int) -> int:
        return len(self.probs)

    def reveal_conditional(self) -> np.ndarray:
        """``r_k = p^(k) / (1 - P^(k))``: probability that a still-masked position is revealed at step k."""
        p = self.p
        remaining = 1.0 - np.concatenate([[0.0], np.cumsum(p)[:-1]])  # (N,) = 1 - P^(k)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(remaining > 0, p / np.where(remaining > 0, remaining, 1.0), 1.0)
        r[-1] = 1.0  # the last step reveals everything that is left
        return np.clip(r, 0.0, 1.0)

    def to_dict(self) -> dict:
        """``{"rule": "schedule", "schedule": label, "num_steps": N, "probs": [...]}``; ``make_step_rule(**d)`` rebuilds the rule."""
        return {"rule": "schedule", "schedule": self.label, "num_steps": len(self.probs), "probs": list(self.probs)}


@dataclass(frozen=True)
class FixedSizes(StepRule):
    """Exactly ``sizes[k]`` positions revealed at step ``k``, uniformly among the masked ones."""

    sizes: tuple

    name = "fixed"

    def __post_init__(self):
        s = np.asarray(self.sizes)
        if s.ndim != 1 or s.size < 1 or not np.issubdtype(s.dtype, np.integer) or np.any(s < 0):
            raise ValueError(f"step sizes: expected a non-empty list of non-negative integers, got {self.sizes!r}")
        object.__setattr__(self, "sizes", tuple(int(v) for v in s))

    def num_steps(self, L: int) -> int:
        return len(self.sizes)

    def check_length(self, L: int) -> None:
        if sum(self.sizes) != L:
            raise ValueError(f"step sizes sum to {sum(self.sizes)}, but the sequence length is L = {L}; they must match")

    def to_dict(self) -> dict:
        return {"rule": "fixed", "num_steps": len(self.sizes), "sizes": list(self.sizes)}


@dataclass(frozen=True)
class RandomOrder(StepRule):
    """One position per step in uniformly random order (``N = L``)."""

    name = "random-order"

    def num_steps(self, L: int) -> int:
        return L

    def to_dict(self) -> dict:
        return {"rule": "random-order"}


@dataclass(frozen=True)
class LeftToRight(StepRule):
    """One position per step, left to right (``N = L``): the autoregressive sampler."""

    name = "left-to-right"

    def num_steps(self, L: int) -> int:
        return L

    def to_dict(self) -> dict:
        return {"rule": "left-to-right"}


# ---------------------------------------------------------------------------- schedules
def alpha_linear(t):
    """``alpha_t = 1 - t``."""
    return 1.0 - np.asarray(t, dtype=np.float64)


def alpha_cosine(t):
    """``alpha_t = 1 - cos(pi (1 - t) / 2)`` (MD4 / MaskGIT cosine).

    The masked fraction after a fraction ``r = 1 - t`` of generation is ``cos(pi r / 2)``:
    few tokens are revealed in the first steps, many in the last.
    """
    return 1.0 - np.cos(0.5 * np.pi * (1.0 - np.asarray(t, dtype=np.float64)))


ALPHAS = {"linear": alpha_linear, "cosine": alpha_cosine}


def step_probs_from_alpha(alpha_values) -> np.ndarray:
    """Per-step probabilities in generation order from ``alpha(t_i)``, ``i = 0..N``.

    ``alpha_values[i] = alpha(i / N)`` must decrease from 1 to 0. Returns ``p^(k)``,
    ``k = 1..N``, with ``p^(k) = alpha(t_{N-k}) - alpha(t_{N-k+1})`` (STATEMENTS.md §1.6).
    """
    a = np.asarray(alpha_values, dtype=np.float64)
    if a.ndim != 1 or a.size < 2:
        raise ValueError(f"alpha values: expected alpha(t_i) for i = 0..N with N >= 1, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("alpha values: expected finite values")
    if abs(a[0] - 1.0) > PROB_ATOL or abs(a[-1]) > PROB_ATOL:
        raise ValueError(f"alpha values: expected alpha(0) = 1 and alpha(1) = 0, got {a[0]:.6g} and {a[-1]:.6g}")
    if np.any(np.diff(a) > PROB_ATOL):
        raise ValueError("alpha values: expected a non-increasing schedule (alpha is the probability of being unmasked)")
    a = a.copy()
    a[0], a[-1] = 1.0, 0.0
    diffs = np.clip(a[:-1] - a[1:], 0.0, None)  # diffs[i-1] = alpha(t_{i-1}) - alpha(t_i), reverse step i
    return diffs[::-1].copy()  # generation order: k = 1 is reverse step i = N


def schedule(name: str, num_steps: int) -> ScheduleSteps:
    """A :class:`ScheduleSteps` rule from a named schedule (``linear``, ``cosine``) and ``N``."""
    N = as_count(num_steps, "num_steps")
    if name not in ALPHAS:
        raise ValueError(f"unknown schedule {name!r}; expected one of {sorted(ALPHAS)}")
    t = np.arange(N + 1) / N
    return ScheduleSteps(tuple(step_probs_from_alpha(ALPHAS[name](t))), label=name)


_named_schedule = schedule  # make_step_rule's ``schedule`` keyword (a label) shadows the function


def balanced_sizes(L: int, num_steps: int) -> tuple:
    """Sizes as equal as possible, ``floor``/``ceil`` of ``L / N``, larger ones first."""
    L = as_length(L)
    N = as_count(num_steps, "num_steps")
    q, r = divmod(L, N)
    return tuple([q + 1] * r + [q] * (N - r))


RULE_NAMES = ("linear", "cosine", "fixed", "random-order", "left-to-right")


def make_step_rule(
    rule: str = "linear", *, L=None, num_steps=None, sizes=None, probs=None, alpha=None, schedule=None
) -> StepRule:
    """Build a step rule from user-facing options (used by the CLI and configs).

    Parameters
    ----------
    rule : str
        ``linear`` or ``cosine`` (schedule-driven, need ``num_steps``), ``alpha`` (needs
        ``alpha`` = masking-schedule values at ``t_i``), ``probs`` (needs ``probs``),
        ``schedule`` (the form :meth:`ScheduleSteps.to_dict` writes: ``probs`` kept exactly,
        ``schedule`` the label, ``num_steps`` checked against ``len(probs)``), ``fixed``
        (``sizes``, or balanced sizes from ``L`` and ``num_steps``), ``random-order``,
        ``left-to-right`` (alias ``ar``).

    ``make_step_rule(**r.to_dict()) == r`` for every step rule ``r``.
    """
    if rule == "schedule":
        if probs is None:
            raise ValueError("rule 'schedule' needs per-step probabilities (probs)")
        if num_steps is not None and int(num_steps) != len(probs):
            raise ValueError(f"rule 'schedule': num_steps = {num_steps} but {len(probs)} per-step probabilities")
        return ScheduleSteps._stored(probs, "custom" if schedule is None else schedule)
    if rule in ALPHAS:
        if num_steps is None:
            raise ValueError(f"schedule {rule!r} needs num_steps")
        return _named_schedule(rule, num_steps)
    if rule == "alpha":
        if alpha is None:
            raise ValueError("rule 'alpha' needs alpha values")
        return ScheduleSteps(tuple(step_probs_from_alpha(alpha)), label="alpha")
    if rule == "probs":
        if probs is None:
            raise ValueError("rule 'probs' needs per-step probabilities")
        return ScheduleSteps(tuple(probs), label="probs")
    if rule == "fixed":
        if sizes is None:
            if L is None or num_steps is None:
                raise ValueError("rule 'fixed' needs sizes, or L and num_steps for balanced sizes")
            sizes = balanced_sizes(L, num_steps)
        return FixedSizes(tuple(sizes))
    if rule == "random-order":
        return RandomOrder()
    if rule in ("left-to-right", "ar"):
        return LeftToRight()
    raise ValueError(f"unknown step rule {rule!r}; expected one of {RULE_NAMES + ('alpha', 'probs', 'schedule', 'ar')}")


def draw_steps(rule: StepRule, n: int, L: int, *, rng=None) -> np.ndarray:
    """Draw ``n`` instances ``tau``: the 0-based generation step of every position, (n, L) int64."""
    n = as_count(n, "n")
    L = as_length(L)
    rng = np.random.default_rng(rng)
    if isinstance(rule, ScheduleSteps):
        u = rng.random((n, L))  # (n, L)
        return inverse_cdf(rule.p, u)  # (n, L) never a step of zero mass
    if isinstance(rule, FixedSizes):
        rule.check_length(L)
        order = np.argsort(rng.random((n, L)), axis=1)  # (n, L) a uniform random permutation per row
        labels = np.repeat(np.arange(len(rule.sizes)), rule.sizes)  # (L,)
        steps = np.empty((n, L), dtype=np.int64)
        np.put_along_axis(steps, order, np.broadcast_to(labels, (n, L)), axis=1)
        return steps
    if isinstance(rule, RandomOrder):
        return np.argsort(rng.random((n, L)), axis=1).argsort(axis=1).astype(np.int64)
    if isinstance(rule, LeftToRight):
        return np.broadcast_to(np.arange(L, dtype=np.int64), (n, L)).copy()
    raise TypeError(f"unknown step rule {rule!r}")


def expected_nonempty_steps(rule: StepRule, L: int) -> float:
    """``E[# non-empty steps] = sum_k 1 - (1 - p^(k))^L`` (STATEMENTS.md §4.E) for schedule rules."""
    L = as_length(L)
    if isinstance(rule, ScheduleSteps):
        with np.errstate(divide="ignore"):  # p^(k) = 1: log1p(-1) = -inf, and the step is surely non-empty
            return float(np.sum(-np.expm1(L * np.log1p(-rule.p))))
    if isinstance(rule, FixedSizes):
        return float(sum(1 for s in rule.sizes if s > 0))
    return float(L)


__all__ = [
    "StepRule",
    "ScheduleSteps",
    "FixedSizes",
    "RandomOrder",
    "LeftToRight",
    "schedule",
    "step_probs_from_alpha",
    "make_step_rule",
    "draw_steps",
    "balanced_sizes",
    "expected_nonempty_steps",
    "alpha_linear",
    "alpha_cosine",
]
