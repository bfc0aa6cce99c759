r"""The instances the checks run on: the language zoo, the step rules, the imperfect models.

Small languages for the exact checks (:func:`exact_languages`), their step rules
(:func:`exact_rules`) and models (:func:`exact_models`: perfect, the mixture
:class:`MixtureModel`, :class:`mdm_exact.sampler.models.PerturbedModel`), the Example C.7 table
(:func:`interval_language_table`), and the cache of brute-force oracles
(:class:`mdm_exact.testing.oracle.ExactInstances`) shared by the checks. The grid is documented
in ``docs/bounds.md``.
"""

from __future__ import annotations

import math

import numpy as np

from mdm_exact.languages import load_language
from mdm_exact.languages.base import all_sequences
from mdm_exact.languages.random import random_hmm, random_ngram
from mdm_exact.sampler.models import PerturbedModel
from mdm_exact.sampler.schedules import FixedSizes, RandomOrder, balanced_sizes, schedule
from mdm_exact.testing.instances import enumerate_instances
from mdm_exact.testing.languages import copy_chain
from mdm_exact.testing.oracle import ExactInstances, joint_from_language
from mdm_exact.theory import bounds as B

__all__ = [
    "MixtureModel",
    "copy_chain",
    "interval_language_table",
    "exact_languages",
    "exact_rules",
    "exact_models",
]


class MixtureModel:
    r"""An imperfect per-token model: :math:`p_\theta=(1-\eta)\,q_{0|t}+\eta/|\mathcal V|`.

    Deterministic, a function of the context only; satisfies Assumption 4.1 with
    :math:`\epsilon_{\rm learning}\le-\ln(1-\eta)` (STATEMENTS.md §3). Used by the checks
    when no model from :mod:`mdm_exact.sampler.models` is requested.
    """

    def __init__(self, lang, eta):
        self.lang = lang
        self.eta = B._real(eta, "eta", lo=0.0, hi=1.0)

    def mix(self, cond):
        V = cond.shape[-1]
        return (1.0 - self.eta) * cond + self.eta / V

    def conditional_marginals(self, x, revealed):
        cm = self.lang.conditional_marginals(x, revealed)  # (batch, L, V)
        rev = np.asarray(revealed, dtype=bool)
        return np.where(np.broadcast_to(rev, cm.shape[:2])[..., None], cm, self.mix(cm))

    def describe(self):
        return f"mixture(eta={self.eta:g})"


def interval_language_table(l, M=1):
    r"""Example C.7 (STATEMENTS.md §4.D ``[reconstructed·M]``) as an explicit table, built from its definition.

    Token :math:`v\in\{0..2^{l-1}-1\}` at in-interval index :math:`a` holds one bit per other
    index :math:`b` (increasing :math:`b`, most significant first); the bit for :math:`b`
    must equal token :math:`b`'s bit for :math:`a`. :math:`q` is uniform on the
    :math:`2^{M\binom l2}` valid sequences. Returns ``(log_q, V, L)``.
    """
    V, L = 2 ** (l - 1), l * M
    X = all_sequences(V, L)

    def bit(tok, a, b):  # a's bit for partner b
        others = [c for c in range(l) if c != a]
        pos = others.index(b)
        return (tok >> (l - 2 - pos)) & 1

    valid = np.ones(X.shape[0], dtype=bool)
    for j in range(M):
        for a in range(l):
            for b in range(a + 1, l):
                valid &= bit(X[:, j * l + a], a, b) == bit(X[:, j * l + b], b, a)
    with np.errstate(divide="ignore"):
        lq = np.where(valid, -math.log(valid.sum()), -np.inf)
    return lq, V, L


def _random_ngram(order, V, seed, *, reading="multiply", temperature=2.0, threshold=0.1):
    return random_ngram(order, V, temperature, threshold, reading=reading, rng=seed)


def _random_hmm(S, V, seed, *, reading="multiply", temperature=2.0, threshold=0.1):
    return random_hmm(S, V, temperature, threshold, reading=reading, rng=seed)


def _load_preset(name):
    """A preset of :mod:`mdm_exact.languages.presets` (a missing preset is an error, not a skipped case)."""
    return load_language(name)


def exact_languages(quick):
    """Small languages for the exact checks: ``(label, language, n or None, L)``."""
    out = [
        ("copy-chain V=2", copy_chain(), 2, 4 if quick else 5),
        ("random 2-gram V=2 (multiply)", _random_ngram(2, 2, 11, threshold=0.2), 2, 5),  # deterministic: 2 sequences
        ("random 2-gram V=2 (multiply, temp 1)", _random_ngram(2, 2, 16, temperature=1.0, threshold=0.1), 2, 5),
        ("random 2-gram V=3 (divide)", _random_ngram(2, 3, 12, reading="divide", threshold=0.3, temperature=0.5), 2, 4),
        ("random 3-gram V=2 (multiply)", _random_ngram(3, 2, 13, threshold=0.2), 3, 5 if quick else 6),
        ("random HMM S=3 V=2", _random_hmm(3, 2, 14, threshold=0.2), None, 5),
    ]
    if not quick:
        out.append(("random 3-gram V=3 (divide)", _random_ngram(3, 3, 15, reading="divide", threshold=0.3, temperature=0.5), 3, 4))
        for name, n in (("paper-2gram", 2), ("paper-3gram", 3), ("paper-hmm", None)):
            out.append((name, _load_preset(name), n, 3))
    return out


def exact_rules(L, quick):
    rules = [("linear N=1", schedule("linear", 1)), ("linear N=2", schedule("linear", 2)), ("cosine N=3", schedule("cosine", 3))]
    if 3**L > 800:
        rules[-1] = ("cosine N=2", schedule("cosine", 2))
    if not quick:
        rules += [("fixed balanced N=2", FixedSizes(balanced_sizes(L, 2))), ("random-order", RandomOrder())]
    return rules


_ENGINE_CACHE: dict = {}


def _make_model(lang, spec):
    """``spec``: ``0`` / ``None`` (perfect), a float ``eta`` (mixture with uniform) or
    ``("perturbed", eta, seed)`` (:class:`mdm_exact.sampler.models.PerturbedModel`)."""
    if not spec:
        return None
    if isinstance(spec, (int, float)):
        return float(spec)
    return PerturbedModel(lang, spec[1], rng=spec[2])


def _model_label(spec):
    if not spec:
        return "perfect"
    if isinstance(spec, (int, float)):
        return f"mixture eta={spec:g}"
    return f"perturbed eta={spec[1]:g} seed={spec[2]}"


def _engine(label, lang, L, spec):
    key = (label, L, spec)
    if key not in _ENGINE_CACHE:
        _ENGINE_CACHE[key] = ExactInstances(joint_from_language(lang, L), lang.vocab_size, L, model=_make_model(lang, spec))
    return _ENGINE_CACHE[key]


def exact_models(quick):
    return (0.0, 0.05) if quick else (0.0, 0.05, ("perturbed", 0.5, 0))


def _exact_cases(quick):
    for label, lang, n, L in exact_languages(quick):
        for spec in exact_models(quick):
            eng = _engine(label, lang, L, spec)
            for rlabel, rule in exact_rules(L, quick):
                steps, w = enumerate_instances(rule, L)
                inst = f"{label}, L={L}, {rlabel}, model={_model_label(spec)}"
                yield inst, lang, n, L, eng, rule, steps, w
