"""The autoregressive baseline: loss, exact model log-likelihood, sampling with a KV cache.

Input ``[BOS, x_1, ..., x_{L-1}]`` (BOS = id ``V``) predicts ``x_1..x_L``. Sampling draws one
float64 uniform per sequence per position from the caller's generator, in the same order with and
without the cache, so both paths give the same tokens up to float rounding of the logits.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from neural.categorical import draw_categorical, split_rng
from neural.model import KVCache


def _inputs(x0, bos):
    B = x0.shape[0]
    return torch.cat([torch.full((B, 1), bos, dtype=x0.dtype, device=x0.device), x0[:, :-1]], dim=1)  # (B, L)


def ar_log_probs(net, x0):
    """``log p_theta(x_k | x_{<k})`` for every position, (B, L), float32."""
    logits = net(_inputs(x0, net.config.mask_id))  # (B, L, V)
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)


def ar_loss(net, x0, *, lang=None):
    """Mean negative log-likelihood per token (a scalar tensor).

    With ``lang`` (exact targets), each position is scored on the exact next-token law
    ``sum_v -q(v | x_{<k}) log p_theta(v | x_{<k})`` instead of on the drawn ``x_k``: the
    conditional expectation of the plain loss given the prefix, so the same expectation and
    expected gradient with less variance (the Rao-Blackwellised loss of
    :func:`neural.diffusion.mdm_loss`).
    """
    if lang is None:
        return -ar_log_probs(net, x0).mean()
    from neural.diffusion import cross_entropy_to

    q = torch.from_numpy(lang.prefix_conditionals(x0.detach().cpu().numpy()).astype(np.float32)).to(x0.device)
    logp = torch.log_softmax(net(_inputs(x0, net.config.mask_id)).float(), dim=-1)  # (B, L, V)
    return cross_entropy_to(q, logp).mean()


@torch.no_grad()
def sample_ar(net, n: int, L: int, *, rng=None, use_cache: bool = True, batch_size=None,
              gumbel_float32: bool = False, autocast_dtype=None):
    """Draw ``n`` sequences of length ``L`` from a causal model.

    ``rng`` (int | torch.Generator | None, :func:`neural.categorical.split_rng`) draws the tokens.

    Returns a dict with ``tokens`` (n, L) int64 NumPy array, ``seconds`` and ``forward_calls``.
    """
    if not net.config.causal:
        raise ValueError("sample_ar needs a causal model (ModelConfig.causal = True)")
    if L > net.config.block_size:
        raise ValueError(f"L = {L} exceeds the model's block_size = {net.config.block_size}")
    device = next(net.parameters()).device
    _, generator = split_rng(rng, device)
    bs = n if batch_size is None else int(batch_size)
    out, calls = [], 0
    t0 = time.perf_counter()
    for start in range(0, n, bs):
        B = min(bs, n - start)
        seq = torch.full((B, 1), net.config.mask_id, dtype=torch.long, device=device)  # (B, 1) BOS
        cache = None
        if use_cache:
            dtype = autocast_dtype or torch.float32
            cache = KVCache(net.config, B, L, device=device, dtype=dtype)
        for k in range(L):
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                if use_cache:
                    logits = net(seq[:, -1:], cache=cache)[:, -1]  # (B, V)
                else:
                    logits = net(seq)[:, -1]  # (B, V)
            calls += 1
            lp = torch.log_softmax(logits.double(), dim=-1)  # (B, V)
            tok = draw_categorical(lp, generator=generator, gumbel_float32=gumbel_float32)  # (B,)
            seq = torch.cat([seq, tok[:, None]], dim=1)
        out.append(seq[:, 1:].cpu())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return {
        "tokens": torch.cat(out).numpy().astype(np.int64),
        "seconds": time.perf_counter() - t0,
        "forward_calls": calls,
    }
