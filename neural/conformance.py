"""Check a user's sampler against the exact law: ``check_sampler(generate, lang, L, policy=...)``.

The harness runs ``generate(model, num_samples, L, generator)`` with ``model`` the exact oracle
of ``lang`` (:class:`neural.oracle.ExactOracle`, ``return_dict=True``: ``model(x).logits``) and
compares the samples with the exact law of the named policy (:mod:`mdm_exact.sampler.policies`,
:mod:`mdm_exact.sampler.adaptive_exact`):

* **small L** (``V^L <= max_law_size``): chi-square goodness of fit on the full law of the
  sequences (cells with expected count below 5 pooled); any sample of exact probability 0 under
  the policy fails outright (no false fail possible);
* **larger L**: the same policy driven by the exact conditionals in NumPy
  (:func:`reference_samples`, ``Policy.select``) gives an independent reference sample, and the
  two are compared on SER (Fisher's exact test), generative perplexity (Welch's t on
  ``-log q(x)/L`` over samples in ``supp q``) and the position-wise token marginals (chi-square
  homogeneity test at every position), with a Bonferroni split of the false-fail rate.

The logits the harness hands over are ``log q - logit_offset`` (default offset 150): logits of a
real network are unnormalised and a correct sampler is invariant to a shift per row; a sampler
that exponentiates them in float32 (LLaDA's ``add_gumbel_noise`` without the cast to float64)
underflows and is caught. The float32-Gumbel bias of Zheng et al. itself (arXiv:2409.02908) is
of order 1e-7 per draw at these vocabulary sizes and no sampling test of feasible size can see it.

The number of oracle calls is reported (``details["oracle_calls"]``) next to the number of
steps of the policy; it is evidence, not a pass/fail criterion (a cached sampler may skip calls).

The result's ``passed`` is True when no test rejects at the overall false-fail rate
``ci_alpha`` (the probability that a correct sampler fails, by Bonferroni at most ``ci_alpha``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mdm_exact.languages import as_language


@dataclass(frozen=True)
class ConformanceResult:
    """``passed`` (bool), ``details`` (dict of the evidence: tests, statistics, p-values, false-fail rate)."""

    passed: bool
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"passed": self.passed, **self.details}


def _policy(lang, L, policy, steps, step_sizes, block_length, temperature):
    from mdm_exact.sampler.policies import make_policy

    return make_policy(policy, L=L, num_steps=steps, step_sizes=step_sizes, block_length=block_length,
                       temperature=temperature)


def reference_samples(lang, L: int, policy, n: int, *, rng=None, batch_size: int = 4096) -> np.ndarray:
    """``n`` samples (n, L) of ``policy`` driven by the exact conditionals, in NumPy (``Policy.select``)."""
    rng = np.random.default_rng(rng)
    out = []
    for s in range(0, n, batch_size):
        b = min(batch_size, n - s)
        x = np.zeros((b, L), dtype=np.int64)
        revealed = np.zeros((b, L), dtype=bool)
        u_tok = rng.random((b, L))
        u_order = rng.random((b, L))
        for k in range(policy.num_steps):
            if revealed.all():
                break
            c = lang.conditional_marginals(x, revealed)  # (b, L, V)
            if policy.fresh_token_uniforms:
                u_tok = rng.random((b, L))
            u_count = rng.random(b)
            reveal, tokens = policy.select(c, revealed, k, u_tok=u_tok, u_order=u_order, u_count=u_count)
            reveal &= ~revealed
            x = np.where(reveal, tokens, x)
            revealed |= reveal
        if not revealed.all():
            raise RuntimeError("reference sampler: positions still masked after the policy's last step")
        out.append(x)
    return np.concatenate(out)


def _chi2_full_law(tokens, log_p, V):
    from mdm_exact.stats import chi_square_law, sequence_counts

    r = chi_square_law(sequence_counts(tokens, V), np.exp(log_p))
    return {"test": "chi-square goodness of fit on the full law (cells with expected < 5 pooled)",
            "statistic": r["statistic"], "dof": r["dof"], "p_value": r["p_value"],
            "zero_probability_samples": r["zero_probability_hits"], "cells": r["cells"]}


def _two_sample(lang, x, y, V):
    from scipy import stats

    tests = []
    ok_x, ok_y = lang.in_support(x), lang.in_support(y)
    a, b = int((~ok_x).sum()), int((~ok_y).sum())
    p_ser = float(stats.fisher_exact([[a, x.shape[0] - a], [b, y.shape[0] - b]])[1])
    tests.append({"test": "SER, Fisher exact (user vs reference)", "user_ser": a / x.shape[0],
                  "reference_ser": b / y.shape[0], "p_value": p_ser})
    L = x.shape[1]
    if ok_x.sum() > 1 and ok_y.sum() > 1:
        lx = -lang.log_prob(x[ok_x]) / L
        ly = -lang.log_prob(y[ok_y]) / L
        p_ppl = float(stats.ttest_ind(lx, ly, equal_var=False).pvalue) if (lx.std() > 0 or ly.std() > 0) else 1.0
        tests.append({"test": "gen-ppl, Welch t on -log q(x)/L over supp q", "user_gen_ppl": float(np.exp(lx.mean())),
                      "reference_gen_ppl": float(np.exp(ly.mean())), "p_value": p_ppl})
    worst = (1.0, None)
    for i in range(L):
        cx = np.bincount(x[:, i], minlength=V)
        cy = np.bincount(y[:, i], minlength=V)
        keep = (cx + cy) > 0
        if keep.sum() < 2:
            continue
        p = float(stats.chi2_contingency(np.stack([cx[keep], cy[keep]]))[1])
        if p < worst[0]:
            worst = (p, i)
    tests.append({"test": f"position-wise token marginals, chi-square homogeneity at each of {L} positions "
                  "(smallest p-value shown, compared with the per-position level)", "p_value": worst[0],
                  "position": worst[1], "tests_in_family": L})
    return tests


def check_sampler(generate, lang, L, *, policy="random", steps=None, step_sizes=None, block_length=None,
                  temperature=1.0, num_samples=20000, rng=None, ci_alpha: float = 1e-3, max_law_size: int = 4096,
                  logit_offset: float = 150.0, return_dict: bool = True, reference_num_samples=None
                  ) -> ConformanceResult:
    """Run ``generate(oracle, num_samples, L, generator)`` and test its samples against the policy's exact law.

    Parameters
    ----------
    generate : callable
        ``generate(model, num_samples, L, generator) -> LongTensor (num_samples, L)``.
    lang : mdm_exact.languages.Language or str or os.PathLike
        A language, or a preset name or language file (:func:`mdm_exact.languages.as_language`).
    L : int
    policy, steps, step_sizes, block_length, temperature
        The policy the sampler claims to implement (:func:`mdm_exact.sampler.policies.make_policy`).
    num_samples : int
    rng : int | torch.Generator | None
        Seeds the ``torch.Generator`` handed to ``generate`` and the reference sampler.
    ci_alpha : float
        Overall false-fail rate (Bonferroni over the tests run).
    max_law_size : int
        Largest ``V^L`` for the full-law chi-square; above it, the two-sample tests.
    logit_offset : float
        The oracle returns ``log q - logit_offset`` (see the module docstring).
    return_dict : bool
        ``model(x)`` returns an object with ``.logits`` (True, Hugging Face style) or the tensor.
    """
    from neural.categorical import split_rng
    from neural.oracle import ExactOracle

    lang = as_language(lang)
    if not 0 < ci_alpha < 1:
        raise ValueError(f"ci_alpha: expected a false-fail rate in (0, 1), got {ci_alpha}")
    pol = _policy(lang, L, policy, steps, step_sizes, block_length, temperature)
    V = int(lang.vocab_size)
    np_rng, gen = split_rng(rng, "cpu")
    oracle = ExactOracle(lang, return_dict=return_dict, logit_offset=logit_offset)
    out = generate(oracle, int(num_samples), int(L), gen)
    details = {"policy": pol.to_dict(), "num_samples": int(num_samples), "L": int(L), "vocab_size": V,
               "false_fail_rate": ci_alpha, "oracle_calls": oracle.calls, "policy_steps": pol.num_steps,
               "logit_offset": logit_offset}
    if not torch.is_tensor(out):
        out = torch.as_tensor(np.asarray(out))
    x = out.detach().cpu().numpy()
    if x.shape != (num_samples, L) or not np.issubdtype(x.dtype, np.integer):
        details["error"] = f"generate returned {x.dtype} of shape {x.shape}, expected int (num_samples, L)"
        return ConformanceResult(False, details)
    bad = (x < 0) | (x >= V)
    if bad.any():
        details["error"] = (f"{int(bad.any(axis=1).sum())} samples contain ids outside 0..{V - 1} "
                            "(masks left or out-of-range tokens)")
        return ConformanceResult(False, details)
    if V**L <= max_law_size:
        from mdm_exact.sampler.adaptive_exact import policy_output_law

        law = policy_output_law(lang, L, pol)
        t = _chi2_full_law(x, law.log_p, V)
        t["level"] = ci_alpha
        t["rejects"] = bool(t["zero_probability_samples"] > 0 or t["p_value"] < ci_alpha)
        details["mode"] = "full law"
        details["tests"] = [t]
        details["expected_nfe_mean"] = float(np.dot(np.arange(law.nfe_pmf.size), law.nfe_pmf))
    else:
        m = int(reference_num_samples or num_samples)
        y = reference_samples(lang, L, pol, m, rng=np_rng)
        tests = _two_sample(lang, x, y, V)
        k = len(tests) - 1 + L  # Bonferroni: SER, gen-ppl, and one test per position
        each = ci_alpha / k
        for t in tests:
            t["level"] = each
            t["rejects"] = bool(t["p_value"] < each)
        details["mode"] = "two-sample against the reference sampler (exact conditionals, NumPy)"
        details["reference_num_samples"] = m
        details["tests"] = tests
    passed = not any(t["rejects"] for t in details["tests"])
    return ConformanceResult(passed, details)
