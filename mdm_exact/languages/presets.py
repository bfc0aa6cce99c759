"""Named languages: the Table 1 languages of the paper and the hard language of Example C.7.

Table 1 (as reconstructed, STATEMENTS.md §5.2): vocabulary 8; the HMM has 32 hidden states;
temperature 2, 2, 2, 3.2 and threshold 0.008, 0.008, 0.005, 0.003 for the 2-, 3-, 4-gram and
the HMM. They are drawn by :mod:`mdm_exact.languages.random` with the ``"multiply"`` reading
(``softmax(z * temperature)``; see that module for why) and the fixed default seed
:data:`DEFAULT_SEED`. The ``-t0`` presets use threshold 0 (for TER / perplexity runs) and the
same seed, so they are the un-pruned versions of the same languages (same logits).

``interval-l3/l4/l5`` are Example C.7 with ``l = 3, 4, 5`` (vocabulary ``2^(l-1)``; lengths
must be multiples of ``l``) and ``interval-hmm-l3`` its Note C.8 HMM form (20 states).
"""

from __future__ import annotations

from mdm_exact._validate import as_seed

#: Seed of every random preset unless another one is given (arXiv 2502.09622).
DEFAULT_SEED = 2502

#: Default reading of the temperature (STATEMENTS.md §5.1 says "multiply" fits the text).
DEFAULT_READING = "multiply"

_TABLE1 = {
    # name: (kind, order or num_states, vocab, temperature, threshold)
    "paper-2gram": ("ngram", 2, 8, 2.0, 0.008),
    "paper-3gram": ("ngram", 3, 8, 2.0, 0.008),
    "paper-4gram": ("ngram", 4, 8, 2.0, 0.005),
    "paper-hmm": ("hmm", 32, 8, 3.2, 0.003),
}

PRESETS = {}
for _name, (_kind, _size, _V, _temp, _thr) in _TABLE1.items():
    PRESETS[_name] = {"kind": _kind, "size": _size, "vocab_size": _V, "temperature": _temp, "threshold": _thr}
    PRESETS[_name + "-t0"] = {"kind": _kind, "size": _size, "vocab_size": _V, "temperature": _temp, "threshold": 0.0}
for _l in (3, 4, 5):
    PRESETS[f"interval-l{_l}"] = {"kind": "interval", "interval_length": _l}
PRESETS["interval-hmm-l3"] = {"kind": "interval-hmm", "interval_length": 3}

_DESCRIPTIONS = {
    "interval": "Example C.7 hard language (pair bits), interval length {interval_length}",
    "interval-hmm": "Note C.8 HMM form of Example C.7, interval length {interval_length}",
    "ngram": "Table 1 random {size}-gram, V={vocab_size}, temperature {temperature}, threshold {threshold}",
    "hmm": "Table 1 random HMM, {size} states, V={vocab_size}, temperature {temperature}, threshold {threshold}",
}


def preset_names():
    """All preset names, in a stable order."""
    return list(PRESETS)


def describe_preset(name):
    """One line describing preset ``name``."""
    spec = PRESETS[name]
    return _DESCRIPTIONS[spec["kind"]].format(**spec)


def make_preset(name, *, seed=None, reading=None):
    """Build preset ``name``.

    Parameters
    ----------
    name : str
        One of :func:`preset_names`.
    seed : int, optional
        Seed of the random generators (default :data:`DEFAULT_SEED`); ignored by the
        deterministic interval presets.
    reading : {"multiply", "divide"}, optional
        How the temperature enters (default :data:`DEFAULT_READING`).

    Raises
    ------
    ValueError
        If ``name`` is not a preset, or ``seed`` is not an integer >= 0.
    """
    from mdm_exact.languages.examples import IntervalLanguage, interval_hmm
    from mdm_exact.languages.random import random_hmm, random_ngram

    if name not in PRESETS:
        raise ValueError(f"unknown language preset {name!r}; expected one of: {', '.join(PRESETS)}")
    spec = PRESETS[name]
    seed = DEFAULT_SEED if seed is None else as_seed(seed)
    reading = DEFAULT_READING if reading is None else reading
    if spec["kind"] == "interval":
        lang = IntervalLanguage(spec["interval_length"])
    elif spec["kind"] == "interval-hmm":
        lang = interval_hmm(spec["interval_length"])
    elif spec["kind"] == "ngram":
        lang = random_ngram(spec["size"], spec["vocab_size"], spec["temperature"], spec["threshold"], reading=reading, rng=seed)
    else:
        lang = random_hmm(spec["size"], spec["vocab_size"], spec["temperature"], spec["threshold"], reading=reading, rng=seed)
    lang.name = name
    return lang
