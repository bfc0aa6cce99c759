"""The exact oracle as a drop-in model: ``ExactOracle(lang)(input_ids) -> logits``.

A :class:`torch.nn.Module` that answers like a masked language model whose per-position
prediction is the exact conditional of the language given the revealed tokens,
``q(x_i = v | x_R)`` (the ELBO optimum, as reconstructed, STATEMENTS.md §1.3):

* input ``input_ids`` (B, L) int64, with ``mask_id`` (default ``V``) at masked positions;
* output logits (B, L, V) float64: ``log q(x_i = v | x_R)`` at masked positions, ``-inf`` for the
  tokens that are impossible given ``x_R``; at revealed positions a one-hot row (0 at the token,
  ``-inf`` elsewhere), the SUBS copy-through. ``softmax`` of a row is therefore exactly the law.

It is computed on the CPU in NumPy (``lang.conditional_marginals``) and moved to the device of
the input, so it runs next to a model on any device; it has no parameters and needs no gradient.
``return_dict=True`` (or ``ExactOracle(..., return_dict=True)``) returns an object with
``.logits``, as Hugging Face masked and causal LMs do, so a LLaDA- or Fast-dLLM-style
``generate(model, ...)`` that does ``model(x).logits`` runs on it unchanged; extra keyword
arguments of such calls (``attention_mask``, ...) are accepted and ignored.

When the revealed tokens are themselves impossible (``q(x_R) = 0``) the language's convention
applies: uniform rows at masked positions (``mdm_exact.languages.base``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from mdm_exact.languages import as_language


@dataclass
class OracleOutput:
    """The ``return_dict`` answer: ``logits`` (B, L, V or padded), like ``transformers`` model outputs."""

    logits: torch.Tensor

    def __getitem__(self, i):  # ``out[0]`` is the logits, as with a ``ModelOutput`` tuple
        return (self.logits,)[i]


class ExactOracle(nn.Module):
    """Exact per-position conditionals of ``lang`` as a masked-LM module.

    Parameters
    ----------
    lang : mdm_exact.languages.Language or str or os.PathLike
        A language, or a preset name or language file (:func:`mdm_exact.languages.as_language`).
    mask_id : int, optional
        Id of the mask token in the input (default ``V``, as in :mod:`neural.model`). Ids in
        ``0..V-1`` are tokens; any other id than ``mask_id`` is an error.
    return_dict : bool
        Default of :meth:`forward`'s ``return_dict``.
    num_logits : int, optional
        Width of the returned logits (default ``V``); columns ``V..num_logits-1`` are ``-inf``,
        for a caller that indexes the logits by the id of its mask token (e.g. LLaDA's
        vocabulary contains its mask id).
    logit_offset : float
        Returned logits are ``log q - logit_offset`` (default 0: normalised log-probabilities).
        Logits of a real network are unnormalised; a correct sampler does not depend on a shift
        per row, and :func:`neural.conformance.check_sampler` uses one to catch samplers that
        exponentiate logits in float32.
    """

    def __init__(self, lang, mask_id: int | None = None, *, return_dict: bool = False, num_logits: int | None = None,
                 logit_offset: float = 0.0):
        super().__init__()
        lang = as_language(lang)
        self.lang = lang
        self.vocab_size = int(lang.vocab_size)
        self.mask_id = self.vocab_size if mask_id is None else int(mask_id)
        if 0 <= self.mask_id < self.vocab_size:
            raise ValueError(f"ExactOracle: mask_id = {self.mask_id} collides with a token id (0..{self.vocab_size - 1})")
        self.num_logits = self.vocab_size if num_logits is None else int(num_logits)
        if self.num_logits < self.vocab_size:
            raise ValueError(f"ExactOracle: num_logits = {self.num_logits} is below the vocabulary V = {self.vocab_size}")
        self.return_dict = bool(return_dict)
        self.logit_offset = float(logit_offset)
        if not np.isfinite(self.logit_offset):
            raise ValueError(f"ExactOracle: logit_offset must be finite, got {logit_offset}")
        self.calls = 0  # forward calls so far (a harness may read and reset it)

    @property
    def device(self):  # the oracle follows its input; this is where it would put a fresh tensor
        return torch.device("cpu")

    def log_conditionals(self, x: np.ndarray) -> np.ndarray:
        """``log q(x_i = . | x_R)`` (B, L, V) float64 from token ids (B, L) with ``mask_id`` at masks."""
        x = np.asarray(x, dtype=np.int64)
        if x.ndim != 2:
            raise ValueError(f"ExactOracle: expected token ids of shape (B, L), got {x.shape}")
        masked = x == self.mask_id
        bad = ~masked & ((x < 0) | (x >= self.vocab_size))
        if bad.any():
            b, i = map(int, np.argwhere(bad)[0])
            raise ValueError(f"ExactOracle: id {int(x[b, i])} at row {b}, position {i} is neither a token "
                             f"(0..{self.vocab_size - 1}) nor the mask id {self.mask_id}")
        cm = self.lang.conditional_marginals(np.where(masked, 0, x), ~masked)  # (B, L, V)
        with np.errstate(divide="ignore"):
            return np.log(cm)

    def forward(self, input_ids, attention_mask=None, *, return_dict: bool | None = None, **kwargs):
        """Logits (B, L, V) float64 on the input's device; ``return_dict`` -> :class:`OracleOutput`."""
        del attention_mask, kwargs  # accepted for signature compatibility; the oracle attends to everything
        if not torch.is_tensor(input_ids):
            input_ids = torch.as_tensor(np.asarray(input_ids))
        self.calls += 1
        lp = self.log_conditionals(input_ids.detach().cpu().numpy())  # (B, L, V)
        if self.logit_offset:
            lp = lp - self.logit_offset  # -inf stays -inf
        if self.num_logits > self.vocab_size:
            pad = np.full(lp.shape[:-1] + (self.num_logits - self.vocab_size,), -math.inf)
            lp = np.concatenate([lp, pad], axis=-1)
        logits = torch.from_numpy(lp).to(input_ids.device)
        rd = self.return_dict if return_dict is None else return_dict
        return OracleOutput(logits=logits) if rd else logits
