r"""The one result type of the exact and the Monte Carlo engines.

:func:`mdm_exact.sampler.exact.exact_metrics` and
:func:`mdm_exact.sampler.montecarlo.run_monte_carlo` both return a :class:`SamplerResult`.
The fields shared by the two engines hold the same quantity in the same unit (float64 nats;
a KL name says whether it is a total over the ``L`` positions or per token):

=========================  ===================================================================
field                      quantity
=========================  ===================================================================
``engine``                 ``"exact"``, or the Monte Carlo engine (``hmm``, ``ngram``,
                           ``interval``, ``reference``)
``L``, ``V``, ``num_steps``  sequence length, vocabulary size, number of steps ``N``
``rule``                   ``StepRule.to_dict()`` (``make_step_rule(**rule)`` rebuilds it)
``ser``                    sequence error rate ``p(x not in supp q)`` (STATEMENTS.md §2.2)
``gen_ppl``                token-weighted generative perplexity over samples in ``supp q``
``gen_ppl_seq_mean``       mean of per-sequence perplexities over samples in ``supp q``
``nfe_mean``               expected number of non-empty steps (network calls, §4.E)
``instance_kl_total``      :math:`\mathbb E_\tau D_{KL}(q \| p_\tau)` in nats (Lemma B.2 RHS)
``instance_kl_per_token``  ``instance_kl_total / L``
``ci_alpha``               miscoverage of every interval (Monte Carlo; ``None`` for exact)
``intervals``              JSON key -> ``(lo, hi)``, e.g. ``"ser_ci"`` (Monte Carlo only)
``extra``                  engine-specific quantities (see ``docs/exact.md``,
                           ``docs/montecarlo.md``)
=========================  ===================================================================

The exact engine computes the shared quantities exactly; the Monte Carlo engine estimates them
and gives an interval for each (``intervals``). :meth:`SamplerResult.to_dict` is the flat JSON
form (fields, then the intervals, then the extras) that the CLI prints and the sweep stores;
``result[key]`` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Mapping

__all__ = ["SamplerResult", "SHARED_KEYS"]

#: Keys that both engines fill (``None`` where a quantity is undefined, e.g. ``gen_ppl`` at SER 1).
SHARED_KEYS = (
    "engine",
    "L",
    "V",
    "num_steps",
    "rule",
    "ser",
    "gen_ppl",
    "gen_ppl_seq_mean",
    "nfe_mean",
    "instance_kl_total",
    "instance_kl_per_token",
    "ci_alpha",
)


def _frozen(v):
    """A read-only copy of nested dicts/lists (tuples for lists)."""
    if isinstance(v, Mapping):
        return MappingProxyType({k: _frozen(x) for k, x in v.items()})
    if isinstance(v, (list, tuple)):
        return tuple(_frozen(x) for x in v)
    return v


def _thawed(v):
    """The JSON-ready form of :func:`_frozen` values (dicts and lists)."""
    if isinstance(v, Mapping):
        return {k: _thawed(x) for k, x in v.items()}
    if isinstance(v, tuple):
        return [_thawed(x) for x in v]
    return v


@dataclass(frozen=True)
class SamplerResult:
    """Metrics of one run of the exact or the Monte Carlo engine (see the module docstring)."""

    engine: str
    L: int
    V: int
    num_steps: int
    rule: Mapping[str, Any]
    ser: float
    gen_ppl: float | None
    gen_ppl_seq_mean: float | None
    nfe_mean: float
    instance_kl_total: float | None
    instance_kl_per_token: float | None
    ci_alpha: float | None = None
    intervals: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for name in ("rule", "intervals", "extra"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        clash = (set(self.intervals) | set(self.extra)) & set(SHARED_KEYS)
        clash |= set(self.intervals) & set(self.extra)
        if clash:
            raise ValueError(f"SamplerResult: keys {sorted(clash)} given twice (fields, intervals, extra)")

    def to_dict(self) -> dict:
        """Flat JSON-ready dict: the shared fields, the ``*_ci`` intervals, then the extras."""
        out = {f.name: _thawed(getattr(self, f.name)) for f in fields(self) if f.name not in ("intervals", "extra")}
        out.update(_thawed(self.intervals))
        out.update(_thawed(self.extra))
        return out

    def __getitem__(self, key):
        if key in SHARED_KEYS:
            return _thawed(getattr(self, key))
        if key in self.intervals:
            return _thawed(self.intervals[key])
        if key in self.extra:
            return _thawed(self.extra[key])
        raise KeyError(key)

    def __contains__(self, key) -> bool:
        return key in SHARED_KEYS or key in self.intervals or key in self.extra

    def get(self, key, default=None):
        """``self[key]``, or ``default`` when the key is absent."""
        return self[key] if key in self else default

    def keys(self):
        """The keys of :meth:`to_dict`, in its order."""
        return list(SHARED_KEYS) + list(self.intervals) + list(self.extra)
