"""Masked diffusion (MDLM style): masking schedules, SUBS parameterisation and the ELBO.

The forward process keeps each token with probability ``alpha_t`` and masks it otherwise
(as reconstructed, STATEMENTS.md §1.2). The network is not time-conditioned. Its prediction
``p_theta(x_0^i | x_t)`` enters the continuous-time negative ELBO

.. math::

    \\mathcal L(x_0) = \\int_0^1 w(t)\\, \\mathbb E_{x_t \\mid x_0}
        \\Big[\\sum_{i:\\, x_t^i = [m]} -\\log p_\\theta(x_0^i \\mid x_t)\\Big]\\, dt,
    \\qquad w(t) = \\frac{-\\alpha'_t}{1 - \\alpha_t},

which is ``1/t`` for the linear schedule ``alpha_t = 1 - t``. With the exact conditionals
``q(x_0^i | x_t)`` (the ELBO optimum, STATEMENTS.md §1.3) the integral equals ``-log q(x_0)``
exactly (any-order chain rule), so the ELBO per token of a perfect model is the entropy rate.

SUBS (Sahoo et al. 2024): the mask token gets probability 0 (our output head has no mask class)
and revealed positions are copied through (log-probability 0 on their token).
"""

from __future__ import annotations

import math

import numpy as np
import torch

#: Schedules with their ``alpha_t`` and ELBO weight ``w(t) = -alpha'_t / (1 - alpha_t)``.
SCHEDULES = ("linear", "loglinear", "cosine")

#: MDLM's log-linear schedule keeps a little mass unmasked at ``t = 1``: ``alpha_t = 1 - (1 - eps) t``.
LOGLINEAR_EPS = 1e-3


def _check_schedule(name):
    if name not in SCHEDULES:
        raise ValueError(f"unknown masking schedule {name!r}; expected one of {SCHEDULES}")


def alpha(name: str, t):
    """``alpha_t``, the probability that a token is still unmasked at time ``t`` (tensor or array)."""
    _check_schedule(name)
    lib = torch if torch.is_tensor(t) else np
    t = t if torch.is_tensor(t) else np.asarray(t, dtype=np.float64)
    if name == "linear":
        return 1.0 - t
    if name == "loglinear":
        return 1.0 - (1.0 - LOGLINEAR_EPS) * t
    return 1.0 - lib.sin(0.5 * math.pi * t)  # = mdm_exact.sampler.schedules.alpha_cosine (MD4: 1 - cos(pi (1 - t) / 2))


def elbo_weight(name: str, t):
    """``w(t) = -alpha'_t / (1 - alpha_t)``: ``1/t`` (linear, log-linear), ``(pi/2) cot(pi t / 2)`` (cosine)."""
    _check_schedule(name)
    lib = torch if torch.is_tensor(t) else np
    t = t if torch.is_tensor(t) else np.asarray(t, dtype=np.float64)
    if name in ("linear", "loglinear"):
        return 1.0 / t
    h = 0.5 * math.pi
    return h * lib.cos(h * t) / lib.sin(h * t)


def sample_t(n: int, *, generator: torch.Generator, antithetic: bool = True, eps: float = 1e-3, device=None,
             power: float = 1.0):
    """Times ``t = eps + (1 - eps) u^power`` with ``u`` uniform; antithetic (stratified) by default.

    Antithetic: ``u_i = (u_0 + i / n) mod 1`` for one uniform ``u_0``, so each interval
    ``[i/n, (i+1)/n)`` holds exactly one ``u`` and each ``u_i`` is still uniform (MDLM).
    ``power = 1`` is the ELBO's uniform time; ``power > 1`` draws more small ``t`` (mostly
    revealed contexts: a sampler's last steps): ``s = (t - eps) / (1 - eps)`` then has density
    ``s^(1/power - 1) / power`` on ``(0, 1)``. Returns a float32 tensor of shape (n,).
    """
    if antithetic:
        u0 = torch.rand((), generator=generator, device=device, dtype=torch.float64)
        u = torch.remainder(u0 + torch.arange(n, device=device, dtype=torch.float64) / n, 1.0)  # (n,)
    else:
        u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)  # (n,)
    if power != 1.0:
        u = u**power
    return (eps + (1.0 - eps) * u).float()


def mask(x0, t, schedule: str, generator: torch.Generator, mask_id: int):
    """Forward process: mask each token of ``x0`` (B, L) independently with probability ``1 - alpha_t``.

    ``t`` has shape (B,). Returns ``(x_t, masked)``, both (B, L).
    """
    move = 1.0 - alpha(schedule, t.double())  # (B,)
    u = torch.rand(x0.shape, generator=generator, device=x0.device, dtype=torch.float64)  # (B, L)
    masked = u < move[:, None]  # (B, L)
    return torch.where(masked, torch.full_like(x0, mask_id), x0), masked


def subs_log_probs(logits, x_t, mask_id: int):
    """SUBS parameterisation: log-probabilities (B, L, V) in float32.

    Masked positions get ``log_softmax(logits)`` (no mass on the mask, which has no output class);
    revealed positions are copied through: 0 on their token, ``-inf`` elsewhere.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)  # (B, L, V)
    revealed = x_t != mask_id  # (B, L)
    if revealed.any():
        onehot = torch.full_like(logp, -math.inf)
        onehot.scatter_(-1, torch.where(revealed, x_t, 0).unsqueeze(-1), 0.0)
        logp = torch.where(revealed.unsqueeze(-1), onehot, logp)
    return logp


def masked_nll(log_probs, x0, masked, *, targets=None):
    """``sum_{i masked} -log p(x_0^i | x_t)`` per sequence, (B,).

    With ``targets`` (B, L, V), each masked position is scored on that law instead of on
    ``x_0^i``: ``sum_v -targets_v log p_v`` (:func:`cross_entropy_to`).
    """
    if targets is None:
        nll = -log_probs.gather(-1, x0.unsqueeze(-1)).squeeze(-1)  # (B, L)
    else:
        nll = cross_entropy_to(targets, log_probs)  # (B, L)
    return torch.where(masked, nll, torch.zeros_like(nll)).sum(dim=1)


def elbo_terms(log_prob_fn, x0, *, schedule: str = "linear", generator: torch.Generator, antithetic: bool = True,
               eps: float = 1e-3, mask_id: int, lang=None, t_power: float = 1.0):
    """One Monte Carlo draw of the negative ELBO per sequence, (B,) in nats (not divided by L).

    ``log_prob_fn(x_t) -> (B, L, V)`` log-probabilities of ``x_0`` given ``x_t`` (SUBS applied).
    The estimate is ``w(t) * sum_{masked} -log p(x_0^i | x_t)`` with ``t = eps + (1 - eps) u``;
    its expectation is ``(1 - eps)^{-1} * int_eps^1 (...) dt``, which is the ELBO up to the
    ``O(eps)`` piece near ``t = 0``. With ``lang`` the masked positions are scored on their
    exact law given the revealed tokens (:func:`exact_targets`; see :func:`mdm_loss`), with
    the same times and masks. ``t_power != 1`` draws the times from :func:`sample_t`'s power law
    without correcting the weights: the mean is then a reweighted objective that counts nearly
    revealed contexts more, not the ELBO (training only; it has the same minimiser).
    """
    B = x0.shape[0]
    t = sample_t(B, generator=generator, antithetic=antithetic, eps=eps, device=x0.device, power=t_power)  # (B,)
    x_t, masked = mask(x0, t, schedule, generator, mask_id)
    targets = None if lang is None else exact_targets(lang, x0, masked)  # (B, L, V)
    nll = masked_nll(log_prob_fn(x_t).float(), x0, masked, targets=targets)  # (B,)
    return elbo_weight(schedule, t) * nll


def exact_targets(lang, x0, masked):
    """The exact law ``q(. | x_R)`` of every position given the revealed tokens, (B, L, V) float32 on ``x0``'s device.

    ``x0`` (B, L) int tensor, ``masked`` (B, L) bool tensor; ``R`` is the complement of ``masked``.
    Float64 from ``lang.conditional_marginals`` (exact zeros stay exact zeros in float32).
    """
    x = x0.detach().cpu().numpy()
    revealed = ~masked.detach().cpu().numpy()
    q = lang.conditional_marginals(x, revealed)  # (B, L, V) float64
    return torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32)).to(x0.device)


def cross_entropy_to(q, log_p):
    """``sum_v -q_v log p_v`` over the last axis, with ``0 * log p = 0`` where ``q_v = 0`` (even for ``log p = -inf``)."""
    return -torch.where(q > 0, q * log_p, torch.zeros_like(log_p)).sum(-1)


def mdm_loss(net, x0, *, schedule: str = "linear", generator: torch.Generator, antithetic: bool = True,
             eps: float = 1e-3, lang=None, t_power: float = 1.0):
    """Training loss: negative ELBO per token, averaged over the batch (a scalar tensor).

    ``lang=None`` (the paper's and MDLM's loss): each masked position is scored on the token the
    drawn sequence has there, ``-log p_theta(x_0^i | x_t)``. With ``lang`` (exact targets) it is
    scored on the whole exact law of that token given the revealed ones,
    ``sum_v -q(v | x_R) log p_theta(v | x_t)``, with the same times and masks. Since ``x_0^i``
    given ``x_t`` is distributed as ``q(. | x_R)`` (the masked tokens are independent of the
    mask), the two losses have the same expectation and the same expected gradient (and the
    same minimiser, the exact conditionals); the exact one is their conditional expectation
    given ``x_t`` (Rao-Blackwellisation), so its gradient has less variance. It is the
    negative ELBO plus nothing: evaluated at the exact conditionals it still equals the entropy
    rate in expectation.

    ``t_power > 1`` (``TrainConfig.t_power``) draws more small times, ``t = eps + (1 - eps) u^p``,
    with the ELBO weights left as they are: the loss then counts the nearly revealed contexts (a
    sampler's last steps, where the CPU models' KL is largest relative to the entropy) more and
    the mostly masked ones less, by the factor ``s^(1/p - 1) / p`` at ``s = (t - eps) / (1 - eps)``
    (for ``p = 2``: 2.2x at ``t = 0.05``, 0.56x at ``t = 0.8``). For every ``t`` the per-token
    loss is still minimised by the exact conditionals, so the minimiser is unchanged; the value is
    no longer the negative ELBO, and validation keeps ``t_power = 1``.
    """
    mask_id = net.config.mask_id

    def log_prob_fn(x_t):
        return subs_log_probs(net(x_t), x_t, mask_id)

    terms = elbo_terms(log_prob_fn, x0, schedule=schedule, generator=generator, antithetic=antithetic, eps=eps,
                       mask_id=mask_id, lang=lang, t_power=t_power)
    return terms.mean() / x0.shape[1]
