"""neural.conformance.check_sampler: passes a correct LLaDA-style sampler, fails each broken one.

A correct sampler fails with probability at most ci_alpha = 1e-4 per check (the harness's
Bonferroni-controlled false-fail rate), so this file's false-fail rate is below 1e-3. Each broken
variant is caught with certainty or by a chi-square whose expected statistic is far above the
rejection level (power checked here by the size of the law difference).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mdm_exact.languages import NGram  # noqa: E402
from neural.conformance import check_sampler, reference_samples  # noqa: E402

CI_ALPHA = 1e-4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _bigram(V=3, seed=4):
    rng = np.random.default_rng(seed)
    cond = rng.dirichlet(np.ones(V), size=V)
    cond[0, 1] = 0.0
    cond /= cond.sum(1, keepdims=True)
    return NGram(2, rng.dirichlet(np.ones(V)), cond)


def make_llada(*, steps, block_length, remasking="low_confidence", temperature=1.0, bug=None):
    """LLaDA's generate (semi-AR blocks, balanced transfer counts, Gumbel noise in float64), written
    from the published algorithm, vectorised over rows; ``bug`` selects one deliberate error."""

    def generate(model, num_samples, L, generator):
        mask_id = model.mask_id
        x = torch.full((num_samples, L), mask_id, dtype=torch.long)
        n_steps = steps + 1 if bug == "off-by-one" else steps
        num_blocks = L // block_length
        spb = n_steps // num_blocks
        for nb in range(num_blocks):
            lo, hi = nb * block_length, (nb + 1) * block_length
            m = (x[:, lo:hi] == mask_id).sum(dim=1, keepdim=True)
            base, rem = m // spb, m % spb
            num_transfer = base.repeat(1, spb) + (torch.arange(spb)[None, :] < rem).long()  # (n, spb)
            for i in range(spb):
                mask_index = x == mask_id
                logits = model(x).logits
                if bug == "float32-gumbel":
                    lg = logits.to(torch.float32)
                    noise = torch.rand(lg.shape, dtype=torch.float32, generator=generator)
                else:
                    lg = logits.to(torch.float64)
                    noise = torch.rand(lg.shape, dtype=torch.float64, generator=generator)
                x0 = torch.argmax(lg.exp() / (-torch.log(noise)) ** temperature, dim=-1)
                if remasking == "low_confidence":
                    p = torch.softmax(logits.to(torch.float64), dim=-1)
                    x0_p = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
                else:
                    x0_p = torch.rand(x0.shape, dtype=torch.float64, generator=generator)
                if bug != "ignore-block":
                    x0_p[:, hi:] = -math.inf
                x0 = torch.where(mask_index, x0, x)
                if bug == "wrong-remask":  # keeps the least confident draws, re-masks the most confident
                    conf = torch.where(mask_index, -x0_p, torch.full_like(x0_p, -math.inf))
                    if bug != "ignore-block":
                        conf[:, hi:] = -math.inf
                else:
                    conf = torch.where(mask_index, x0_p, torch.full_like(x0_p, -math.inf))
                order = torch.argsort(conf, dim=1, descending=True, stable=True)
                rank = torch.empty_like(order)
                rank.scatter_(1, order, torch.arange(L).expand_as(order))
                transfer = rank < num_transfer[:, i : i + 1]
                x = torch.where(transfer, x0, x)
        return x

    return generate


LANG = _bigram()
L = 4


@pytest.mark.parametrize("remasking,policy", [("random", "random"), ("low_confidence", "llada")])
@pytest.mark.parametrize("steps,block", [(2, 4), (4, 2)])
def test_correct_llada_sampler_passes(remasking, policy, steps, block):
    gen = make_llada(steps=steps, block_length=block, remasking=remasking)
    res = check_sampler(gen, LANG, L, policy=policy, steps=steps, block_length=block, num_samples=20000, rng=1,
                        ci_alpha=CI_ALPHA)
    assert res.passed, res.details
    assert res.details["mode"] == "full law" and res.details["tests"][0]["zero_probability_samples"] == 0
    assert res.details["oracle_calls"] == steps  # LLaDA calls the model once per step


@pytest.mark.parametrize("bug,steps,block", [("off-by-one", 2, 4), ("float32-gumbel", 2, 4), ("ignore-block", 2, 2),
                                             ("wrong-remask", 2, 4)])
def test_broken_llada_sampler_fails(bug, steps, block):
    gen = make_llada(steps=steps, block_length=block, remasking="low_confidence", bug=bug)
    res = check_sampler(gen, LANG, L, policy="llada", steps=steps, block_length=block, num_samples=20000, rng=2,
                        ci_alpha=CI_ALPHA)
    assert not res.passed, (bug, res.details)


def test_float32_is_invisible_without_the_offset_but_caught_with_it():
    """The harness's logit offset is what exposes float32 exponentiation (documented limitation)."""
    gen = make_llada(steps=2, block_length=4, remasking="random", bug="float32-gumbel")
    assert not check_sampler(gen, LANG, L, policy="random", steps=2, block_length=4, num_samples=5000, rng=3,
                             ci_alpha=CI_ALPHA).passed
    assert check_sampler(gen, LANG, L, policy="random", steps=2, block_length=4, num_samples=20000, rng=3,
                         ci_alpha=CI_ALPHA, logit_offset=0.0).passed


def test_two_sample_mode_at_larger_length():
    """V^L above max_law_size: SER, gen-ppl and position-wise marginals against the NumPy reference;
    the correct sampler passes, the block-ignoring one fails."""
    Lb, steps, block = 8, 4, 4
    ok = check_sampler(make_llada(steps=steps, block_length=block, remasking="random"), LANG, Lb, policy="random",
                       steps=steps, block_length=block, num_samples=6000, rng=4, ci_alpha=CI_ALPHA, max_law_size=100)
    assert ok.passed and ok.details["mode"].startswith("two-sample"), ok.details
    bad = check_sampler(make_llada(steps=steps, block_length=block, remasking="random", bug="ignore-block"), LANG,
                        Lb, policy="random", steps=steps, block_length=block, num_samples=6000, rng=4,
                        ci_alpha=CI_ALPHA, max_law_size=100)
    assert not bad.passed


def test_reference_sampler_matches_the_exact_policy_law():
    """The NumPy reference (Policy.select) against policy_output_law, chi-square, false-fail 1e-6."""
    from scipy import stats

    from mdm_exact.sampler.adaptive_exact import policy_output_law
    from mdm_exact.sampler.policies import make_policy

    pol = make_policy("llada", L=L, num_steps=2, block_length=2)
    y = reference_samples(LANG, L, pol, 20000, rng=5)
    law = np.exp(policy_output_law(LANG, L, pol).log_p)
    idx = y @ (3 ** np.arange(L - 1, -1, -1))
    obs = np.bincount(idx, minlength=3**L)
    assert obs[law == 0].sum() == 0
    keep = law > 0
    e = law[keep] * y.shape[0]
    assert stats.chisquare(obs[keep], e * obs[keep].sum() / e.sum()).pvalue > 1e-6


def test_bad_output_fails_with_a_reason():
    def leaves_masks(model, n, L_, g):
        return torch.full((n, L_), model.mask_id)

    res = check_sampler(leaves_masks, LANG, L, policy="random", steps=2, num_samples=10, rng=0)
    assert not res.passed and "outside" in res.details["error"]
    res = check_sampler(lambda m, n, L_, g: torch.zeros((n, L_ + 1), dtype=torch.long), LANG, L, policy="random",
                        steps=2, num_samples=10, rng=0)
    assert not res.passed and "shape" in res.details["error"]


def test_conformance_from_the_command_line(tmp_path, capsys, monkeypatch):
    """``mdm-theory neural conformance --generate MODULE:FUNCTION``: exit 0 for the correct LLaDA
    sampler, 1 for the off-by-one one (with the rejecting test named), 2 and one line for a bad
    option or a name that does not import; the JSON holds check_sampler's details."""
    from mdm_exact.languages import save_language
    from mdm_exact.runtime.cli import main

    save_language(LANG, tmp_path / "lang.json")
    (tmp_path / "mysampler.py").write_text(
        "from test_conformance import make_llada\n"
        "good = make_llada(steps=2, block_length=4, remasking='low_confidence')\n"
        "bad = make_llada(steps=2, block_length=4, remasking='low_confidence', bug='off-by-one')\n")
    monkeypatch.chdir(tmp_path)
    base = ["neural", "conformance", "--language", "lang.json", "--length", "4", "--policy", "llada", "--steps", "2",
            "--block-length", "4", "--num-samples", "20000", "--seed", "1", "--false-fail-rate", str(CI_ALPHA)]
    assert main(base + ["--generate", "mysampler:good", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] is True and out["mode"] == "full law" and out["oracle_calls"] == 2
    assert main(base + ["--generate", "mysampler:bad"]) == 1
    text = capsys.readouterr().out
    assert text.startswith("FAIL: mysampler:bad against policy llada on lang.json") and "REJECTS" in text
    for extra, msg in ((["--generate", "mysampler"], "expected MODULE:FUNCTION"),
                       (["--generate", "no_such_module:f"], "cannot import 'no_such_module'"),
                       (["--generate", "mysampler:nothing"], "has no function 'nothing'"),
                       (["--generate", "mysampler:good", "--false-fail-rate", "2"], "--false-fail-rate")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("mdm-theory neural conformance: error:") and msg in err[0], err
