"""The exact oracle as a drop-in model (issue 14): exact against mdm_exact, usable by LLaDA-style code.

False-fail rate of every chi-square test here: P_FAIL = 1e-6 per test (p-value below it fails).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")


from mdm_exact.languages import HMM, NGram, all_sequences  # noqa: E402
from mdm_exact.languages.base import brute_force_conditional_marginals  # noqa: E402
from mdm_exact.languages.examples import IntervalLanguage  # noqa: E402
from mdm_exact.sampler import schedules as S  # noqa: E402
from mdm_exact.sampler.exact import exact_output_law  # noqa: E402
from mdm_exact.stats import chi_square_law, sequence_counts  # noqa: E402
from neural.oracle import ExactOracle, OracleOutput  # noqa: E402
from neural.sample import ExactDenoiser, sample_mdm  # noqa: E402

P_FAIL = 1e-6


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _bigram(V=3, seed=0):
    rng = np.random.default_rng(seed)
    cond = rng.dirichlet(np.ones(V), size=V)
    cond[0, 1] = 0.0  # an impossible transition
    cond /= cond.sum(1, keepdims=True)
    init = rng.dirichlet(np.ones(V))
    return NGram(2, init, cond)


def _hmm(S_=3, V=3, seed=1):
    rng = np.random.default_rng(seed)
    A = rng.dirichlet(np.ones(S_), size=S_)
    B = rng.dirichlet(np.ones(V), size=S_)
    B[0, 2] = 0.0
    B /= B.sum(1, keepdims=True)
    return HMM(rng.dirichlet(np.ones(S_)), A, B)


LANGS = {"bigram": (_bigram, 5), "hmm": (_hmm, 4), "interval-l3": (lambda: IntervalLanguage(3), 6)}


def _chi2_pvalue(tokens, law, V):
    """p-value of :func:`mdm_exact.stats.chi_square_law` on the sequences ``tokens``; a sequence of
    probability 0 fails outright."""
    r = chi_square_law(sequence_counts(tokens, V), law)
    assert r["zero_probability_hits"] == 0, "a sequence with probability 0 was sampled"
    return r["p_value"]


@pytest.mark.parametrize("name", sorted(LANGS))
def test_oracle_logits_are_the_exact_conditionals(name):
    """log q(x_i | x_R) from conditional_marginals (rtol 1e-12, float64), -inf exactly where q = 0,
    one-hot rows at revealed positions; and equal to brute-force enumeration."""
    make, L = LANGS[name]
    lang = make()
    V = lang.vocab_size
    rng = np.random.default_rng(3)
    x = lang.sample(40, L, rng=rng)
    revealed = rng.random(x.shape) < rng.random((40, 1))
    revealed[0] = False  # nothing revealed
    revealed[1] = True  # everything revealed
    oracle = ExactOracle(lang)
    ids = torch.from_numpy(np.where(revealed, x, V))
    logits = oracle(ids)
    assert logits.dtype == torch.float64 and logits.shape == (40, L, V) and logits.device == ids.device
    cm = lang.conditional_marginals(x, revealed)
    lg = logits.numpy()
    assert np.array_equal(np.isneginf(lg), cm == 0)
    np.testing.assert_allclose(lg[cm > 0], np.log(cm[cm > 0]), rtol=1e-12, atol=0)
    bf = brute_force_conditional_marginals(lang, x, revealed)
    np.testing.assert_allclose(np.exp(lg), bf, rtol=1e-12, atol=1e-15)
    rb, rk = np.nonzero(revealed)
    assert np.all(lg[rb, rk, x[rb, rk]] == 0.0)
    onehot = np.isneginf(lg[rb, rk]).sum(-1)
    assert np.all(onehot == V - 1)
    # softmax of a row is the law itself
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), cm, rtol=1e-12, atol=1e-15)


def test_oracle_return_dict_padding_and_errors():
    lang = _bigram()
    ids = torch.tensor([[3, 0, 3, 2]])
    out = ExactOracle(lang, return_dict=True)(ids)
    assert isinstance(out, OracleOutput) and out.logits.shape == (1, 4, 3) and out[0] is out.logits
    assert torch.equal(ExactOracle(lang)(ids, return_dict=True).logits, ExactOracle(lang)(ids))
    # a custom mask id, and logits padded with -inf up to a wider vocabulary
    o = ExactOracle(lang, mask_id=7, num_logits=8)
    lg = o(torch.tensor([[7, 0, 7, 2]]), attention_mask=torch.ones(1, 4))
    assert lg.shape == (1, 4, 8) and torch.all(torch.isneginf(lg[..., 3:]))
    assert torch.equal(lg[..., :3], ExactOracle(lang)(ids))
    assert o.calls == 1
    with pytest.raises(ValueError, match="neither a token"):
        ExactOracle(lang)(torch.tensor([[5, 0, 1, 2]]))
    with pytest.raises(ValueError, match="collides"):
        ExactOracle(lang, mask_id=1)
    with pytest.raises(ValueError, match="below the vocabulary"):
        ExactOracle(lang, num_logits=2)
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        ExactOracle(lang)(torch.tensor([3, 0]))


@pytest.mark.gpu
def test_oracle_follows_the_input_device():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    lang = _bigram()
    lg = ExactOracle(lang)(torch.tensor([[3, 0, 3, 2]], device="cuda"))
    assert lg.device.type == "cuda" and lg.dtype == torch.float64


# ----------------------------------------------------------------------------- samplers driven by the oracle
@pytest.mark.parametrize("name,rule", [("bigram", S.schedule("linear", 3)), ("hmm", S.FixedSizes((2, 1, 1))),
                                       ("interval-l3", S.schedule("cosine", 2))])
def test_neural_sampler_with_the_oracle_draws_the_exact_law(name, rule):
    """sample_mdm(ExactDenoiser) (which calls the oracle) against mdm_exact's exact output law;
    chi-square over all V^L sequences, false-fail rate 1e-6."""
    make, _ = LANGS[name]
    lang = make()
    L = 6 if name == "interval-l3" else 4
    law = np.exp(exact_output_law(lang, L, rule))
    out = sample_mdm(ExactDenoiser(lang), 30000, L, rule, rng=5)
    assert _chi2_pvalue(out["tokens"], law, lang.vocab_size) > P_FAIL


def llada_generate(model, prompt, *, steps, gen_length, block_length, temperature=0.0, remasking="low_confidence",
                   mask_id, generator=None):
    """LLaDA's published ``generate`` (Nie et al. 2025, Algorithm with semi-AR blocks), written here:
    each block gets ``steps / num_blocks`` steps with balanced transfer counts; at each step a token is
    drawn at every masked position (Gumbel noise in float64 at ``temperature``); ``low_confidence``
    keeps the ``k`` with the highest probability of their draw, ``random`` keeps ``k`` random ones."""
    x = torch.full((prompt.shape[0], prompt.shape[1] + gen_length), mask_id, dtype=torch.long, device=prompt.device)
    x[:, : prompt.shape[1]] = prompt
    assert gen_length % block_length == 0
    num_blocks = gen_length // block_length
    assert steps % num_blocks == 0
    spb = steps // num_blocks
    for nb in range(num_blocks):
        lo = prompt.shape[1] + nb * block_length
        hi = lo + block_length
        block_mask = x[:, lo:hi] == mask_id
        m = block_mask.sum(dim=1, keepdim=True)
        base, rem = m // spb, m % spb
        num_transfer = base.repeat(1, spb) + (torch.arange(spb, device=x.device)[None, :] < rem).long()
        for i in range(spb):
            mask_index = x == mask_id
            logits = model(x).logits
            if temperature == 0:
                x0 = torch.argmax(logits, dim=-1)
            else:
                lg = logits.to(torch.float64)
                noise = torch.rand(lg.shape, dtype=torch.float64, generator=generator, device=lg.device)
                x0 = torch.argmax(lg.exp() / (-torch.log(noise)) ** temperature, dim=-1)
            if remasking == "low_confidence":
                p = torch.softmax(logits.to(torch.float64), dim=-1)
                x0_p = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
            else:
                x0_p = torch.rand(x0.shape, dtype=torch.float64, generator=generator, device=x0.device)
            x0_p[:, hi:] = -math.inf
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, torch.full_like(x0_p, -math.inf))
            transfer = torch.zeros_like(x0, dtype=torch.bool)
            for j in range(confidence.shape[0]):
                k = int(num_transfer[j, i])
                if k:
                    _, sel = torch.topk(confidence[j], k=k)
                    transfer[j, sel] = True
            x[transfer] = x0[transfer]
    return x


def test_llada_generate_runs_unchanged_on_the_oracle_and_draws_the_policy_law():
    """The LLaDA-style generate above, unchanged, on ExactOracle(return_dict=True): with random
    remasking and temperature 1 its law is the exact law of the 'random' policy with LLaDA's block
    sizes (mdm_exact.sampler.adaptive_exact); chi-square over all sequences, false-fail 1e-6."""
    from mdm_exact.sampler.adaptive_exact import policy_output_law
    from mdm_exact.sampler.policies import make_policy

    lang = _bigram(V=3, seed=4)
    L, steps, block = 4, 4, 2
    oracle = ExactOracle(lang, return_dict=True)
    g = torch.Generator().manual_seed(0)
    n = 20000
    x = llada_generate(oracle, torch.zeros((n, 0), dtype=torch.long), steps=steps, gen_length=L, block_length=block,
                       temperature=1.0, remasking="random", mask_id=lang.vocab_size, generator=g)
    assert x.shape == (n, L) and int(x.max()) < lang.vocab_size
    law = np.exp(policy_output_law(lang, L, make_policy("random", L=L, num_steps=steps, block_length=block)).log_p)
    assert _chi2_pvalue(x.numpy(), law, lang.vocab_size) > P_FAIL
    # one position per step (2 steps in each block of 2): the policy law is q itself (chain rule)
    q = np.exp(lang.log_prob(all_sequences(3, L)))
    np.testing.assert_allclose(law, q, rtol=1e-12, atol=1e-15)


def test_llada_generate_with_parallel_steps_is_not_q_and_the_test_sees_it():
    """Two positions per step: the exact policy law differs from q and the chi-square against q rejects."""
    from mdm_exact.sampler.adaptive_exact import policy_output_law
    from mdm_exact.sampler.policies import make_policy

    lang = _bigram(V=3, seed=4)
    L, steps = 4, 2
    oracle = ExactOracle(lang, return_dict=True)
    x = llada_generate(oracle, torch.zeros((20000, 0), dtype=torch.long), steps=steps, gen_length=L, block_length=L,
                       temperature=1.0, remasking="random", mask_id=3, generator=torch.Generator().manual_seed(1))
    law = np.exp(policy_output_law(lang, L, make_policy("random", L=L, num_steps=steps, block_length=L)).log_p)
    q = np.exp(lang.log_prob(all_sequences(3, L)))
    assert np.abs(law - q).max() > 0.01
    assert _chi2_pvalue(x.numpy(), law, 3) > P_FAIL
    outside = ~lang.in_support(x.numpy())  # parallel draws leave supp q: q is rejected outright
    assert outside.any() and law[q == 0].sum() > 0


def test_oracle_takes_a_preset_name_like_the_cli():
    """``ExactOracle("paper-hmm")`` is the oracle of ``make_preset("paper-hmm")``; other types are
    a TypeError that says what is accepted."""
    from mdm_exact.languages import make_preset

    x = torch.tensor([[8, 3, 8, 8, 1, 8]])
    by_name = ExactOracle("paper-hmm")(x)
    by_object = ExactOracle(make_preset("paper-hmm"))(x)
    assert by_name.dtype == torch.float64
    torch.testing.assert_close(by_name, by_object, rtol=0, atol=0)
    with pytest.raises(TypeError, match="or a preset name"):
        ExactOracle(None)
