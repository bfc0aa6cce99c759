"""Formal languages with exact inference: n-gram, HMM, the paper's examples and generators."""

from .base import Language, all_sequences
from .hmm import HMM
from .ngram import NGram

__all__ = ["Language", "HMM", "NGram", "all_sequences"]
