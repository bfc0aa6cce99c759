"""Categorical draws with an explicit ``torch.Generator``.

Default: inverse CDF in float64 (Zheng et al. 2024, arXiv:2409.02908: float32 Gumbel-max lowers
the effective temperature). Option ``gumbel_float32``: the MDLM/SEDD float32 Gumbel-max draw, kept
only to measure its effect against the exact law.
"""

from __future__ import annotations

import numpy as np
import torch


def split_rng(rng, device="cpu"):
    """``(numpy Generator, torch.Generator on device)`` from one ``rng`` (int | torch.Generator | numpy Generator | None).

    * int, ``SeedSequence`` or ``None``: two independent children of ``SeedSequence(rng)``
      (``None``: fresh entropy), so the same int always gives the same two streams;
    * ``torch.Generator``: used as is for the tokens; the NumPy stream is seeded by one int64 drawn from it;
    * NumPy ``Generator``: used as is; the torch stream is seeded by one int64 drawn from it.
    """
    device = torch.device(device)
    if isinstance(rng, torch.Generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=rng, device=rng.device).item())
        return np.random.default_rng(seed), rng
    if isinstance(rng, np.random.Generator):
        return rng, torch.Generator(device).manual_seed(int(rng.integers(0, 2**62)))
    if rng is not None and not isinstance(rng, (int, np.integer, np.random.SeedSequence)) or isinstance(rng, bool):
        raise ValueError(f"rng: expected an int, a torch.Generator, a numpy Generator or None, got {type(rng).__name__}")
    ss = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(None if rng is None else int(rng))
    a, b = ss.spawn(2)
    seed = int(b.generate_state(1, np.uint64)[0] % np.uint64(2**62))
    return np.random.default_rng(a), torch.Generator(device).manual_seed(seed)


def draw_categorical(log_probs, *, generator: torch.Generator, gumbel_float32: bool = False):
    """One token per row of ``log_probs`` (m, V); returns int64 (m,).

    Tokens with probability exactly 0 (log-probability ``-inf``) are never drawn.
    """
    if log_probs.ndim != 2:
        raise ValueError(f"draw_categorical: expected log-probabilities of shape (m, V), got {tuple(log_probs.shape)}")
    m, V = log_probs.shape
    if m == 0:
        return torch.zeros(0, dtype=torch.long, device=log_probs.device)
    if gumbel_float32:
        u = torch.rand((m, V), generator=generator, device=log_probs.device, dtype=torch.float32)  # (m, V)
        g = -torch.log(-torch.log(u))  # (m, V) float32 Gumbel noise; u = 0 gives -inf, never chosen
        return torch.argmax(log_probs.float() + g, dim=-1)
    lp = log_probs.double()
    lp = lp - lp.max(dim=-1, keepdim=True).values  # (m, V)
    if lp.device.type == "cpu" and torch.isnan(lp).any():  # on a GPU this check would sync every draw
        raise ValueError("draw_categorical: log-probabilities contain NaN (or a row is all -inf)")
    p = lp.exp()  # (m, V) float64
    cdf = torch.cumsum(p, dim=-1)  # (m, V)
    u = torch.rand((m, 1), generator=generator, device=log_probs.device, dtype=torch.float64)  # (m, 1)
    k = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(-1)  # (m,)
    # u * total rounded up to the total: take the last token with positive mass (no host sync)
    last = V - 1 - torch.argmax(torch.flip(p > 0, dims=[-1]).int(), dim=-1)  # (m,)
    return torch.where(k >= V, last, k)
