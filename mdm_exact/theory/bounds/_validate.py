"""Argument validation shared by the bound functions, and their result type :class:`BoundResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

__all__ = ["BoundResult", "KL_ROUNDING"]


@dataclass(frozen=True)
class BoundResult:
    """The result type of a bound function that returns named parts besides the bound.

    Attributes
    ----------
    value : float
        The bound itself (the number a check compares with the measured side).
    parts : mapping of str to float
        Named terms in the statement's order (read-only), e.g. the three cases of Lemma B.11
        or the threshold of a Lemma B.10 tail bound.
    """

    value: float
    parts: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "parts", MappingProxyType({str(k): float(v) for k, v in dict(self.parts).items()}))

    def to_dict(self) -> dict:
        """``{"value": value, **parts}`` (plain floats)."""
        return {"value": self.value, **self.parts}


#: Negative KL values down to ``-KL_ROUNDING`` are float64 rounding of an exact 0 and are clipped.
KL_ROUNDING = 1e-12


def _pos_int(v, name, minimum=1) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {v!r}")
    if v < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {v}")
    return int(v)


def _real(v, name, *, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a real number, got {v!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {x}")
    if lo is not None and (x < lo or (lo_open and x == lo)):
        raise ValueError(f"{name}: expected {name} {'>' if lo_open else '>='} {lo}, got {x}")
    if hi is not None and (x > hi or (hi_open and x == hi)):
        raise ValueError(f"{name}: expected {name} {'<' if hi_open else '<='} {hi}, got {x}")
    return x


def _step_probs(p, name="p", *, atol=1e-9) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"{name}: expected a non-empty 1-d array of per-step probabilities, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name}: expected finite, non-negative per-step probabilities")
    if abs(arr.sum() - 1.0) > atol:
        raise ValueError(f"{name}: per-step probabilities must sum to 1 (STATEMENTS.md §1.6), they sum to {arr.sum():.12g}")
    return arr


def _kl_values(kl, name="kl_marginals") -> np.ndarray:
    arr = np.atleast_1d(np.asarray(kl, dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array of KL divergences, got shape {arr.shape}")
    if np.any(np.isnan(arr)) or np.any(arr < -KL_ROUNDING):
        bad = arr[np.isnan(arr) | (arr < -KL_ROUNDING)][0]
        raise ValueError(f"{name}: expected KL divergences >= 0 (inf allowed), got {bad}")
    return np.maximum(arr, 0.0)  # clip float64 rounding of exact zeros
