"""Formal languages with exact inference: n-gram, HMM, the paper's examples and generators."""

from .base import Language, all_sequences
from .examples import IntervalLanguage, interval_hmm
from .hmm import HMM
from .io import load_language, save_language
from .ngram import NGram
from .presets import DEFAULT_SEED, PRESETS, make_preset
from .random import random_hmm, random_ngram

__all__ = [
    "Language",
    "HMM",
    "NGram",
    "IntervalLanguage",
    "interval_hmm",
    "all_sequences",
    "load_language",
    "save_language",
    "make_preset",
    "PRESETS",
    "DEFAULT_SEED",
    "random_hmm",
    "random_ngram",
]
