"""Schedule-driven MDM sampling with a per-sequence cache.

The positions' generation steps come from :func:`mdm_exact.sampler.schedules.draw_steps`, so the law of
the instance ``tau`` is exactly that of the idealised sampler (STATEMENTS.md §1.6-§1.7); tokens
revealed at a step are drawn independently from the denoiser's per-position prediction given
the tokens revealed before (eq. (3)). With a denoiser that returns the exact conditionals
``q(x_i | x_R)`` the output law is exactly the idealised sampler's.

Cache (STATEMENTS.md §4.E, RADD-style per sequence): the network is called for a sequence only at
a step where that sequence reveals something; its state changed at its last such step, so the
number of calls per sequence is its number of non-empty steps, ``N (1 - (1 - 1/N)^L)`` in
expectation for the linear schedule.

Adaptive decoders (:func:`sample_policy`): the positions a step reveals depend on the
conditionals (confidence, margin, entropy, LLaDA's low-confidence remasking, Fast-dLLM
thresholds, EB, semi-autoregressive blocks). They are the :class:`mdm_exact.sampler.policies.Policy`
objects of the exact and Monte Carlo engines, one definition each; this leaves the theorems'
setting (positions depend on content).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from neural.categorical import draw_categorical, split_rng


class NetworkDenoiser:
    """Wrap a bidirectional :class:`~neural.model.Transformer`: ``x_t (B, L) -> log p (B, L, V)`` (SUBS)."""

    def __init__(self, net, *, autocast_dtype=None):
        if net.config.causal:
            raise ValueError("NetworkDenoiser needs a bidirectional model (ModelConfig.causal = False)")
        self.net = net
        self.vocab_size = net.config.vocab_size
        self.mask_id = net.config.mask_id
        self.device = next(net.parameters()).device
        self.autocast_dtype = autocast_dtype

    @torch.no_grad()
    def __call__(self, x_t):
        from neural.diffusion import subs_log_probs

        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            logits = self.net(x_t)
        return subs_log_probs(logits, x_t, self.mask_id)


class ModelDenoiser:
    """Any masked language model as a denoiser of a language's tokens: ``x_t (B, L) -> log p (B, L, V)``.

    With it, your own network (a Hugging Face masked LM, a LLaDA-style model, any module) runs
    through everything here that takes a denoiser: :func:`neural.leakage.mdm_leakage` and
    :func:`neural.leakage.mdm_pattern_kl` (its learning error against the exact conditionals),
    :func:`sample_mdm` and :func:`neural.evaluate.evaluate_mdm` (its SER and gen-ppl next to the
    idealised sampler's).

    Parameters
    ----------
    model : callable
        ``model(ids)`` on ids (B, L) in *its* vocabulary, returning logits (B, L, K) or an object
        with ``.logits`` (Hugging Face style); K >= every id in ``token_ids``.
    vocab_size : int
        ``V``, the language's vocabulary; this denoiser takes and returns the language's ids
        ``0..V-1`` with mask id ``V``, as :class:`NetworkDenoiser` does.
    token_ids : sequence of int, optional
        The model's id of each language token (default ``0..V-1``); its logits are read from those
        columns, the other columns are ignored (renormalised over the ``V`` tokens, SUBS).
    mask_id : int, optional
        The model's mask id (default ``V``); must not be one of ``token_ids``.
    device : optional
        Where inputs are built (default: the device of the model's first parameter, else CPU).
    """

    def __init__(self, model, vocab_size: int, *, token_ids=None, mask_id=None, device=None, autocast_dtype=None):
        V = int(vocab_size)
        if V < 1:
            raise ValueError(f"ModelDenoiser: vocab_size must be >= 1, got {vocab_size}")
        ids = list(range(V)) if token_ids is None else [int(i) for i in token_ids]
        if len(ids) != V or len(set(ids)) != V or min(ids) < 0:
            raise ValueError(f"ModelDenoiser: token_ids must be {V} distinct ids >= 0, got {token_ids!r}")
        model_mask = V if mask_id is None else int(mask_id)
        if model_mask in ids or model_mask < 0:
            raise ValueError(f"ModelDenoiser: the model's mask id {model_mask} must be >= 0 and not a token id")
        if device is None:
            params = getattr(model, "parameters", None)
            first = next(iter(params()), None) if callable(params) else None
            device = first.device if first is not None else "cpu"
        self.model = model
        self.vocab_size = V
        self.mask_id = V
        self.device = torch.device(device)
        self.autocast_dtype = autocast_dtype
        self._to_model = torch.tensor(ids + [model_mask], dtype=torch.long, device=self.device)
        self._columns = torch.tensor(ids, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def __call__(self, x_t):
        from neural.diffusion import subs_log_probs

        x_t = x_t.to(self.device)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            out = self.model(self._to_model[x_t])
        logits = getattr(out, "logits", out)
        if logits.shape[:2] != x_t.shape or logits.shape[-1] <= int(self._columns.max()):
            raise ValueError(f"ModelDenoiser: the model returned logits of shape {tuple(logits.shape)} for ids of shape "
                             f"{tuple(x_t.shape)}; expected (B, L, K) with K > {int(self._columns.max())}")
        return subs_log_probs(logits[..., self._columns], x_t, self.mask_id)


class ExactDenoiser:
    """The ideal denoiser of a language: ``log q(x_i | x_R)`` (:class:`neural.oracle.ExactOracle`).

    Driving :func:`sample_mdm` with it reproduces the idealised sampler of :mod:`mdm_exact`.
    """

    def __init__(self, lang, *, device="cpu"):
        from neural.oracle import ExactOracle

        self.oracle = ExactOracle(lang)
        self.lang = lang
        self.vocab_size = self.oracle.vocab_size
        self.mask_id = self.oracle.mask_id
        self.device = torch.device(device)

    def __call__(self, x_t):
        return self.oracle(x_t.to(self.device))


@torch.no_grad()
def sample_mdm(denoiser, n: int, L: int, rule, *, rng=None, batch_size=None, gumbel_float32: bool = False):
    """Draw ``n`` sequences of length ``L`` from an MDM with the content-blind step rule ``rule``.

    The positions a step reveals are the random instance's (the theorems' sampler); the
    adaptive decoders (confidence, margin, entropy, LLaDA, thresholds, EB, blocks) are
    :func:`sample_policy` with the shared :mod:`mdm_exact.sampler.policies` definitions.

    Parameters
    ----------
    denoiser : callable
        ``denoiser(x_t) -> (B, L, V)`` log-probabilities; has ``vocab_size``, ``mask_id``, ``device``.
    rule : mdm_exact.sampler.schedules.StepRule
        Schedule-driven (``ScheduleSteps``), ``FixedSizes``, ``RandomOrder`` or ``LeftToRight``.
    rng : int, torch.Generator, numpy Generator or None
        All the randomness (:func:`neural.categorical.split_rng`): a NumPy stream draws the
        instances ``tau`` (per-position steps, ``mdm_exact.sampler.schedules.draw_steps``), a torch
        stream on the denoiser's device the tokens. Two denoisers run with the same int ``rng``
        see the same ``tau`` and the same token uniforms (coupled samplers).

    Returns
    -------
    dict
        ``tokens`` (n, L) int64, ``calls`` (n,) network calls per sequence (= its non-empty steps),
        ``forward_batches`` (batched network calls), ``seconds``.
    """
    from mdm_exact.sampler.schedules import draw_steps

    V, mask_id, device = denoiser.vocab_size, denoiser.mask_id, denoiser.device
    rng, generator = split_rng(rng, device)
    N = rule.num_steps(L)
    bs = n if batch_size is None else int(batch_size)
    tokens, calls_all = [], []
    batches = 0
    t0 = time.perf_counter()
    for start in range(0, n, bs):
        B = min(bs, n - start)
        steps_np = draw_steps(rule, B, L, rng=rng)  # (B, L) 0-based step of each position
        present = np.zeros((N, B), dtype=bool)  # (N, B) sequence b reveals something at step k
        present[steps_np, np.arange(B)[:, None]] = True
        steps = torch.from_numpy(steps_np).to(device)
        x = torch.full((B, L), mask_id, dtype=torch.long, device=device)  # (B, L)
        calls = np.zeros(B, dtype=np.int64)
        # Control flow is decided on the host from tau alone: no device synchronisation per step.
        for k in np.flatnonzero(present.any(axis=1)).tolist():
            idx_np = np.flatnonzero(present[k])
            full = idx_np.size == B
            idx = None if full else torch.from_numpy(idx_np).to(device)
            xs = x if full else x[idx]  # (b, L) the sequences whose state changes at this step
            lp = denoiser(xs).double()  # (b, L, V): the only network call for these sequences since their last change
            calls[idx_np] += 1
            batches += 1
            reveal = (steps if full else steps[idx]) == k  # (b, L)
            draw = draw_categorical(lp.reshape(-1, V), generator=generator,
                                    gumbel_float32=gumbel_float32).view(xs.shape)  # (b, L)
            new = torch.where(reveal, draw, xs)
            if full:
                x = new
            else:
                x[idx] = new
        tokens.append(x.cpu())
        calls_all.append(calls)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return {
        "tokens": torch.cat(tokens).numpy().astype(np.int64),
        "calls": np.concatenate(calls_all),
        "forward_batches": batches,
        "seconds": time.perf_counter() - t0,
        "num_steps": N,
    }


@torch.no_grad()
def sample_policy(denoiser, n: int, L: int, policy, *, rng=None, batch_size=None):
    """Draw ``n`` sequences with an unmasking policy of :mod:`mdm_exact.sampler.policies`.

    The conditionals handed to ``policy.select`` are the denoiser's (float64, on the host), so
    the same code runs a learned MDM or the exact oracle (:class:`ExactDenoiser`); the uniforms
    come from one NumPy stream of ``rng`` (:func:`neural.categorical.split_rng`) in a fixed order,
    so two denoisers with the same ``rng`` are coupled. Per-sequence cache: the denoiser is called
    for a sequence only when its state changed since its last call (the conditionals of an
    unchanged state are the same), so its number of calls is its ``nfe``, the number of steps that
    revealed something; ``forward_batches`` counts the batched calls.

    Returns ``tokens`` (n, L), ``nfe`` (n,), ``forward_batches``, ``seconds``.
    """
    rng, _ = split_rng(rng, denoiser.device)
    bs = n if batch_size is None else int(batch_size)
    mask_id, V = denoiser.mask_id, denoiser.vocab_size
    out, nfe_all = [], []
    batches = 0
    t0 = time.perf_counter()
    for start in range(0, n, bs):
        B = min(bs, n - start)
        x = np.zeros((B, L), dtype=np.int64)
        revealed = np.zeros((B, L), dtype=bool)
        nfe = np.zeros(B, dtype=np.int64)
        c = np.full((B, L, V), 1.0 / V)  # (B, L, V) each row's conditionals at its current state
        stale = np.ones(B, dtype=bool)  # the state changed since the row's last call
        u_tok = rng.random((B, L))
        u_order = rng.random((B, L))
        for k in range(policy.num_steps):
            finished = revealed.all(axis=1)
            if finished.all():
                break
            if policy.fresh_token_uniforms:
                u_tok = rng.random((B, L))
            u_count = rng.random(B)
            todo = np.flatnonzero(stale & ~finished)
            if todo.size:
                x_t = torch.from_numpy(np.where(revealed[todo], x[todo], mask_id)).to(denoiser.device)
                c[todo] = denoiser(x_t).double().exp().cpu().numpy()
                stale[todo] = False
                batches += 1
            c[finished] = 1.0 / V  # finished rows: not read
            reveal, tokens = policy.select(c, revealed, k, u_tok=u_tok, u_order=u_order, u_count=u_count)
            reveal &= ~revealed
            changed = reveal.any(axis=1)
            nfe += changed
            stale |= changed
            x = np.where(reveal, tokens, x)
            revealed |= reveal
        if not revealed.all():
            raise RuntimeError("sample_policy: positions still masked after the policy's last step")
        out.append(x)
        nfe_all.append(nfe)
    return {"tokens": np.concatenate(out), "nfe": np.concatenate(nfe_all), "forward_batches": batches,
            "seconds": time.perf_counter() - t0}
