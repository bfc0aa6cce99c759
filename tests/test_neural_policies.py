"""The adaptive decoders on a network (``neural sample / evaluate --policy``) are the ONE set of
definitions in :mod:`mdm_exact.sampler.policies`.

Kinds: the policy objects the neural CLI builds are those of the core CLI (same ``to_dict``);
the network sampler driven by the exact conditionals has the exact output and NFE laws of
:func:`mdm_exact.sampler.adaptive_exact.policy_output_law` (chi-square, false-fail rate 1e-6 per
test); the CLI's tokens are :func:`neural.sample.sample_policy`'s with the same seed; the options
that cannot apply are refused (exit 2, one line).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")


from _bad_input import refused  # noqa: E402
from mdm_exact.languages import NGram, all_sequences, random_hmm  # noqa: E402
from mdm_exact.runtime.cli import main  # noqa: E402
from mdm_exact.sampler.adaptive_exact import policy_output_law  # noqa: E402
from mdm_exact.sampler.policies import make_policy, policy_from_options  # noqa: E402
from mdm_exact.sampler.schedules import balanced_sizes  # noqa: E402
from mdm_exact.stats import chi_square_law, clopper_pearson, sequence_counts  # noqa: E402
from neural.checkpoint import load_checkpoint  # noqa: E402
from neural.evaluate import evaluate_mdm, mdm_policy  # noqa: E402
from neural.sample import ExactDenoiser, NetworkDenoiser, sample_policy  # noqa: E402

FALSE_FAIL = 1e-6
COMMITTED = os.path.join(os.path.dirname(__file__), "..", "reports", "neural", "cpu-l64-long", "paper-2gram-mdm.pt")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _bigram():
    return NGram(2, np.array([0.5, 0.3, 0.2]), np.array([[0.0, 0.6, 0.4], [0.7, 0.0, 0.3], [0.5, 0.5, 0.0]]))


# --------------------------------------------------------------------------- one definition
@pytest.mark.parametrize("policy, N, rule, block, T, core", [
    ("llada", 16, "linear", None, 1.0, dict(steps=16)),
    ("confidence", 8, "cosine", None, 0.5, dict(steps=8, schedule_name="cosine")),
    ("margin", 8, "linear", 4, 1.0, dict(steps=8, block_length=4)),
    ("entropy", 8, "fixed", 4, 1.0, dict(steps=8, block_length=4)),
    ("threshold:0.9", None, "linear", None, 1.0, dict()),
    ("eb:0.5", None, "linear", 8, 0.0, dict(block_length=8)),
], ids=["llada", "confidence-cosine", "margin-blocks", "entropy-fixed-blocks", "threshold", "eb-blocks"])
def test_neural_policy_is_the_core_clis(policy, N, rule, block, T, core):
    """``neural ... --policy`` builds the same Policy as ``mdm-theory sample/exact --policy``."""
    L = 16
    ours = mdm_policy(policy, N, L, rule=rule, block_length=block, temperature=T)
    theirs = policy_from_options(policy, L=L, temperature=T, **core)
    assert ours.to_dict() == theirs.to_dict()


@pytest.mark.parametrize("score", ["random", "llada", "confidence"])
def test_fixed_rule_gives_the_content_blind_balanced_sizes(score):
    L, N = 10, 4
    pol = mdm_policy(score, N, L, rule="fixed")
    assert pol.to_dict() == make_policy(score, L=L, step_sizes=balanced_sizes(L, N)).to_dict()
    assert pol.count == "sizes" and sum(pol.sizes) == L and len(pol.sizes) == N


@pytest.mark.parametrize("args, needle", [
    (("llada", None, 8), "--steps N is required"),
    (("threshold:0.9", 4, 8), "takes no --steps"),
    (("eb:0.5", 4, 8), "takes no --steps"),
    (("margin", 4, 8, "cosine", 4), "--rule cosine does not combine with --block-length"),
    (("margin", 5, 8, "linear", 3), "must divide the number of steps"),
    (("llada", 4, 8, "linear", None, -1.0), "--temperature: expected T >= 0"),
    (("llada", 4, 8, "linear", None, float("nan")), "--temperature: expected T >= 0"),
    (("bogus", 4, 8), "unknown policy 'bogus'"),
    (("llada", 4, 8, "quadratic"), "rule: expected linear, cosine or fixed"),
])
def test_mdm_policy_refuses_what_cannot_apply(args, needle):
    policy, N, L, *rest = args
    kw = dict(zip(("rule", "block_length", "temperature"), rest))
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        mdm_policy(policy, N, L, **kw)


# --------------------------------------------------------------------------- the law
def _chi2_pvalue(counts, probs):
    """p-value of :func:`mdm_exact.stats.chi_square_law`; an outcome of probability 0 fails outright."""
    r = chi_square_law(counts, probs)
    assert r["zero_probability_hits"] == 0, "a sample fell on an outcome of exact probability 0"
    return r["p_value"]


CASES = [
    ("hmm", "confidence", 2, "linear", None, 1.0),
    ("hmm", "llada", 3, "fixed", None, 0.5),
    ("hmm", "margin", 4, "linear", 2, 1.0),
    ("hmm", "eb:0.6", None, "linear", None, 1.0),
    ("bigram", "entropy", 2, "cosine", None, 0.0),
    ("bigram", "threshold:0.7", None, "linear", 2, 1.0),
]


@pytest.mark.parametrize("kind, policy, N, rule, block, T", CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_network_sampler_with_exact_conditionals_has_the_exact_policy_law(kind, policy, N, rule, block, T):
    """``sample_policy`` on the exact oracle: output law and NFE law (chi-square) and SER
    (Clopper-Pearson) of the exact engine; false-fail rate 1e-6 for the whole test."""
    lang = random_hmm(3, 3, 2.0, 0.15, rng=4) if kind == "hmm" else _bigram()
    L, n = 4, 6000
    pol = mdm_policy(policy, N, L, rule=rule, block_length=block, temperature=T)
    law = policy_output_law(lang, L, pol)
    out = sample_policy(ExactDenoiser(lang), n, L, pol, rng=2026)
    V = lang.vocab_size
    a = FALSE_FAIL / 3
    assert _chi2_pvalue(sequence_counts(out["tokens"], V), np.exp(law.log_p)) > a
    assert _chi2_pvalue(np.bincount(out["nfe"], minlength=L + 1), law.nfe_pmf) > a
    errors = int(np.sum(~lang.in_support(out["tokens"])))
    lo, hi = clopper_pearson(errors, n, a)
    ser = float(np.exp(law.log_p)[~np.isfinite(lang.log_prob(all_sequences(V, L)))].sum())
    assert lo <= ser <= hi


def test_evaluate_mdm_policy_rows_and_reference():
    """``evaluate_mdm(policy=...)``: one row per N (one, ``num_steps = None``, for ``eb``), the policy's
    name, NFE as ``calls_mean``, the idealised reference under the same policy; coupled: the oracle
    evaluated twice with the same seed gives the same numbers."""
    lang = _bigram()
    den = ExactDenoiser(lang)
    rows = evaluate_mdm(den, lang, 6, [2, 3], num_samples=64, rng=5, policy="llada", reference_samples=32)
    assert [r["num_steps"] for r in rows] == [2, 3] and all(r["policy"] == "llada" for r in rows)
    assert all(1 <= r["calls_mean"] <= r["num_steps"] for r in rows)
    assert all(r["idealised_mc"]["num_samples"] == 32 and "nfe_mean" in r["idealised_mc"] for r in rows)
    again = evaluate_mdm(den, lang, 6, [2, 3], num_samples=64, rng=5, policy="llada")
    assert [r["ser"] for r in again] == [r["ser"] for r in rows]
    eb = evaluate_mdm(den, lang, 6, None, num_samples=16, rng=5, policy="eb:0.5")
    assert len(eb) == 1 and eb[0]["num_steps"] is None and eb[0]["policy"].startswith("eb")
    with pytest.raises(ValueError, match="takes no --steps"):
        evaluate_mdm(den, lang, 6, [2], num_samples=4, policy="eb:0.5")
    with pytest.raises(ValueError, match="--steps is required"):
        evaluate_mdm(den, lang, 6, None, num_samples=4)
    with pytest.raises(ValueError, match="--gumbel-float32 / --compare-gumbel apply to the content-blind sampler"):
        evaluate_mdm(den, lang, 6, [2], num_samples=4, policy="llada", gumbel_float32=True)
    with pytest.raises(ValueError, match="need --policy"):
        evaluate_mdm(den, lang, 6, [2], num_samples=4, block_length=2)


# --------------------------------------------------------------------------- the CLI
def test_cli_sample_policy_is_sample_policy(capsys):
    """``neural sample --policy llada --steps 8 --seed 3``: the tokens of ``sample_policy`` with the
    shared policy and the same seed, NFE as ``calls_mean``."""
    assert main(["neural", "sample", "--checkpoint", COMMITTED, "--steps", "8", "--num-samples", "6",
                 "--policy", "llada", "--block-length", "32", "--seed", "3", "--device", "cpu", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    net, ck = load_checkpoint(COMMITTED)
    pol = make_policy("llada", L=int(ck["L"]), num_steps=8, block_length=32)
    want = sample_policy(NetworkDenoiser(net), 6, int(ck["L"]), pol, rng=3)
    assert got["policy"] == pol.name
    assert np.array_equal(np.array(got["tokens"]), want["tokens"])
    assert got["calls_mean"] == float(want["nfe"].mean())


def test_cli_evaluate_policy(capsys):
    assert main(["neural", "evaluate", "--checkpoint", COMMITTED, "--num-samples", "4", "--policy", "threshold:0.9",
                 "--kl-contexts", "0", "--device", "cpu", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert len(ev["mdm"]) == 1 and ev["mdm"][0]["num_steps"] is None and ev["mdm"][0]["policy"] == "threshold:0.9"
    assert main(["neural", "evaluate", "--checkpoint", COMMITTED, "--num-samples", "4", "--steps", "4,8",
                 "--policy", "margin", "--kl-contexts", "0", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "policy margin" in text and "N=    4" in text and "N=    8" in text


AR = COMMITTED.replace("-mdm.pt", "-ar.pt")


@pytest.mark.parametrize("cmd, extra, needle", [
    ("sample", ["--steps", "4", "--policy", "threshold:0.9"], "takes no --steps"),
    ("sample", ["--policy", "llada"], "--steps N is required"),
    ("sample", ["--steps", "4", "--temperature", "0.5"], "--block-length and --temperature need --policy"),
    ("sample", ["--steps", "4", "--policy", "llada", "--gumbel-float32"], "apply to the content-blind sampler"),
    ("sample", ["--steps", "4", "--policy", "llada", "--block-length", "16", "--rule", "cosine"],
     "--rule cosine does not combine with --block-length"),
    ("sample", ["--steps", "4", "--policy", "nosuch"], "unknown policy 'nosuch'"),
    ("evaluate", ["--steps", "4", "--policy", "eb:0.5"], "takes no --steps"),
    ("evaluate", ["--steps", "4", "--policy", "llada", "--compare-gumbel"], "apply to the content-blind sampler"),
    ("evaluate", ["--steps", "4", "--block-length", "8"], "--block-length and --temperature need --policy"),
])
def test_cli_policy_options_that_cannot_apply(tmp_path, capsys, cmd, extra, needle):
    args = ["neural", cmd, "--checkpoint", COMMITTED, "--num-samples", "2", "--device", "cpu"] + extra
    if cmd == "evaluate":
        args += ["--kl-contexts", "0"]
    refused(capsys, args, needle, folder=tmp_path, max_seconds=5.0)


def test_cli_policy_on_an_ar_checkpoint_is_refused(tmp_path, capsys):
    refused(capsys, ["neural", "sample", "--checkpoint", AR, "--num-samples", "2", "--device", "cpu", "--policy", "llada",
                     "--steps", "4"], "--policy applies to MDM checkpoints", folder=tmp_path, max_seconds=5.0)


def test_sweep_kind_takes_the_policy_options():
    """A ``neural`` sweep cell with ``policy`` / ``block_length`` / ``temperature``: the row of
    ``evaluate_mdm`` under that policy (same numbers again for the same seed); an adaptive policy
    needs no ``steps``."""
    from mdm_exact.runtime.sweep import compute_cell

    cell = {"kind": "neural", "checkpoint": COMMITTED, "num_samples": 4, "seed": 3, "steps": [8], "policy": "llada",
            "block_length": 32, "temperature": 0.5}
    res = compute_cell(cell)
    (row,) = res["mdm"]
    assert row["policy"] == "llada" and row["num_steps"] == 8 and 1 <= row["calls_mean"] <= 8
    again = compute_cell(cell)["mdm"][0]
    assert {k: v for k, v in row.items() if not k.endswith("seconds")} == \
        {k: v for k, v in again.items() if not k.endswith("seconds")}
    (eb,) = compute_cell({"kind": "neural", "checkpoint": COMMITTED, "num_samples": 2, "policy": "eb:0.5"})["mdm"]
    assert eb["num_steps"] is None and eb["policy"] == "eb:0.5"


def test_sample_policy_calls_a_sequence_only_when_its_state_changed():
    """Per-sequence cache: with N = 16 steps at L = 5 most steps of a sequence reveal nothing; the
    denoiser sees each sequence once per step that changed it (its NFE), and the output law is
    still the exact one (chi-square, 1e-6)."""
    lang = _bigram()
    L, N, n = 5, 16, 4000

    class Counting(ExactDenoiser):
        rows = 0

        def __call__(self, x_t):
            Counting.rows += x_t.shape[0]
            return super().__call__(x_t)

    pol = mdm_policy("confidence", N, L)
    out = sample_policy(Counting(lang), n, L, pol, rng=8, batch_size=1000)
    assert Counting.rows == out["nfe"].sum() and out["nfe"].max() <= L
    assert out["nfe"].mean() < 0.5 * N and out["forward_batches"] <= 4 * N
    law = policy_output_law(lang, L, pol)
    assert _chi2_pvalue(sequence_counts(out["tokens"], 3), np.exp(law.log_p)) > FALSE_FAIL
