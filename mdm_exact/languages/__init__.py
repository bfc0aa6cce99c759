"""Formal languages with exact inference: n-gram, HMM, the paper's examples and generators."""

from mdm_exact.languages.base import EntropyRate, Language, all_sequences
from mdm_exact.languages.examples import IntervalLanguage, interval_hmm
from mdm_exact.languages.hmm import HMM
from mdm_exact.languages.io import as_language, load_language, save_language
from mdm_exact.languages.ngram import NGram
from mdm_exact.languages.presets import DEFAULT_SEED, PRESETS, make_preset
from mdm_exact.languages.random import random_hmm, random_ngram

__all__ = [
    "Language",
    "EntropyRate",
    "HMM",
    "NGram",
    "IntervalLanguage",
    "interval_hmm",
    "all_sequences",
    "as_language",
    "load_language",
    "save_language",
    "make_preset",
    "PRESETS",
    "DEFAULT_SEED",
    "random_hmm",
    "random_ngram",
]
