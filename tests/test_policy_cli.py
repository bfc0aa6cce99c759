"""Tests of ``mdm-theory exact|sample --policy ...`` (issue 16; ``docs/policies.md``).

The JSON of each command carries the issue's keys with exactly the values of the Python
functions (:func:`mdm_exact.sampler.adaptive_exact.policy_exact_metrics`,
:func:`mdm_exact.sampler.adaptive_mc.run_policy_monte_carlo`, same seed), and every bad
combination exits 2 with one line on stderr and no traceback.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from mdm_exact.languages import make_preset
from mdm_exact.runtime.cli import main
from mdm_exact.sampler.adaptive_exact import policy_exact_metrics
from mdm_exact.sampler.adaptive_mc import run_policy_monte_carlo
from mdm_exact.sampler.policies import make_policy

EXACT_KEYS = ("ser", "gen_ppl", "kl_data_model", "kl_model_data", "entropy_model", "nfe_mean", "mean_log_prob_per_token")
SAMPLE_KEYS = ("ser", "gen_ppl", "nfe_mean", "mean_log_prob_per_token", "ser_ci", "gen_ppl_ci", "samples_per_second")


def _json_value(v):
    """What the CLI's JSON holds for a Python value: non-finite floats are ``null``."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_json_value(u) for u in v]
    return v


def _run_json(capsys, argv):
    rc = main(argv)
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    return json.loads(cap.out)


# ----------------------------------------------------------------------------- exact
EXACT_CASES = [
    # (language, L, CLI policy options, make_policy kwargs)
    ("interval-l3", 6, ["--policy", "random", "--steps", "3"], dict(policy="random", num_steps=3)),
    ("interval-l3", 6, ["--policy", "threshold:0.9"], dict(policy="threshold:0.9")),
    ("interval-l3", 6, ["--policy", "eb:0.1"], dict(policy="eb:0.1")),
    ("paper-2gram-t0", 4, ["--policy", "confidence", "--steps", "2"], dict(policy="confidence", num_steps=2)),
    ("paper-2gram-t0", 4, ["--policy", "margin", "--step-sizes", "2,1,1"], dict(policy="margin", step_sizes=(2, 1, 1))),
    ("paper-2gram-t0", 4, ["--policy", "entropy", "--steps", "2", "--schedule", "cosine"],
     dict(policy="entropy", num_steps=2, schedule_name="cosine")),
    ("paper-2gram-t0", 4, ["--policy", "llada", "--steps", "2", "--block-length", "2", "--temperature", "0.5"],
     dict(policy="llada", num_steps=2, block_length=2, temperature=0.5)),
    ("paper-hmm", 4, ["--policy", "confidence", "--steps", "2", "--temperature", "0"],
     dict(policy="confidence", num_steps=2, temperature=0.0)),
]


@pytest.mark.parametrize("language, L, opts, kw", EXACT_CASES, ids=[" ".join(c[2]) for c in EXACT_CASES])
def test_exact_policy_json_equals_python(capsys, language, L, opts, kw):
    out = _run_json(capsys, ["exact", "--language", language, "--length", str(L), *opts, "--json"])
    direct = policy_exact_metrics(make_preset(language), L, make_policy(L=L, **kw)).to_dict()
    for key in EXACT_KEYS:
        assert key in out, key
        assert out[key] == _json_value(direct[key]), key
    assert out["nfe_pmf"] == direct["nfe_pmf"]
    assert out["rule"] == direct["rule"]
    assert out["language"] == language


def test_exact_kl_model_data_null_when_infinite(capsys):
    # random positions on Example C.7 leave supp q (SER > 0), so KL(p || q) = inf -> null;
    # threshold:0.9 reveals only determined positions together: p = q, KL(p || q) = 0 (finite)
    out = _run_json(capsys, ["exact", "--language", "interval-l3", "--length", "6", "--policy", "random", "--steps", "3", "--json"])
    assert out["ser"] > 0
    assert out["kl_model_data"] is None
    assert out["kl_data_model"] is not None and out["kl_data_model"] > 0  # p > 0 on supp q: KL(q || p) finite
    out = _run_json(capsys, ["exact", "--language", "interval-l3", "--length", "6", "--policy", "threshold:0.9", "--json"])
    assert out["ser"] == 0.0
    assert out["kl_model_data"] is not None and abs(out["kl_model_data"]) < 1e-12


def test_exact_policy_text_output(capsys):
    rc = main(["exact", "--language", "interval-l3", "--length", "6", "--policy", "eb:0.1"])
    cap = capsys.readouterr()
    assert rc == 0
    assert "SER" in cap.out and "NFE law" in cap.out and "E_tau" not in cap.out


# ----------------------------------------------------------------------------- sample
SAMPLE_CASES = [
    ("paper-hmm", 32, ["--policy", "confidence", "--step-sizes", "8,8,8,8"], dict(policy="confidence", step_sizes=(8,) * 4)),
    ("paper-2gram", 24, ["--policy", "llada", "--steps", "4", "--block-length", "12", "--temperature", "0.7"],
     dict(policy="llada", num_steps=4, block_length=12, temperature=0.7)),
    ("interval-l3", 12, ["--policy", "eb:0.1"], dict(policy="eb:0.1")),
    ("interval-l3", 12, ["--policy", "random", "--steps", "3"], dict(policy="random", num_steps=3)),
]


@pytest.mark.parametrize("language, L, opts, kw", SAMPLE_CASES, ids=[" ".join(c[2]) for c in SAMPLE_CASES])
def test_sample_policy_json_equals_python(capsys, language, L, opts, kw):
    n, seed = 96, 5
    out = _run_json(capsys, ["sample", "--language", language, "--length", str(L), *opts, "--samples", str(n),
                             "--seed", str(seed), "--json"])
    direct = run_policy_monte_carlo(make_preset(language), L, make_policy(L=L, **kw), n, rng=seed).to_dict()
    for key in SAMPLE_KEYS:
        assert key in out, key
    for key in ("ser", "gen_ppl", "nfe_mean", "mean_log_prob_per_token", "ser_ci", "gen_ppl_ci", "nfe_ci",
                "mean_log_prob_per_token_ci", "nfe_hist", "num_errors", "engine", "rule"):
        assert out[key] == _json_value(direct[key]), key
    assert out["samples_per_second"] > 0
    assert out["num_samples_done"] == n
    lo, hi = out["ser_ci"]
    assert 0.0 <= lo <= out["ser"] <= hi <= 1.0


# ----------------------------------------------------------------------------- bad combinations
BAD = [
    # (options after --language/--length, a word the message must contain)
    (["--policy", "threshold:0.9", "--steps", "3"], "count option"),
    (["--policy", "eb:0.5", "--steps", "3"], "count option"),
    (["--policy", "threshold:0.9", "--step-sizes", "2,2,2"], "count option"),
    (["--policy", "confidence", "--steps", "4", "--block-length", "2"], "divide"),
    (["--policy", "llada", "--steps", "5", "--block-length", "4"], "divide"),
    (["--policy", "threshold:0"], "0 < g <= 1"),
    (["--policy", "threshold:1.5"], "0 < g <= 1"),
    (["--policy", "threshold:-0.2"], "0 < g <= 1"),
    (["--policy", "threshold:nan"], "0 < g <= 1"),
    (["--policy", "eb:-0.1"], "g >= 0"),
    (["--policy", "eb:inf"], "g >= 0"),
    (["--policy", "threshold"], "needs a number"),
    (["--policy", "eb:abc"], "expected a number"),
    (["--policy", "confidence", "--steps", "3", "--temperature", "-1"], "T >= 0"),
    (["--policy", "eb:0.1", "--temperature", "-0.5"], "T >= 0"),
    (["--policy", "random", "--steps", "3", "--temperature", "nan"], "T >= 0"),
    (["--policy", "greedy", "--steps", "3"], "unknown policy"),
    (["--policy", "confidence:0.5", "--steps", "3"], "takes no"),
    (["--policy", "confidence"], "exactly one of"),
    (["--policy", "confidence", "--step-sizes", "2,2,2", "--block-length", "3"], "block-length"),
    (["--policy", "confidence", "--step-sizes", "2,2"], "sum"),
    (["--policy", "confidence", "--rule", "left-to-right"], "--rule"),
    (["--policy", "confidence", "--steps", "2", "--block-length", "3", "--schedule", "cosine"], "--schedule"),
    (["--steps", "3", "--block-length", "3"], "need --policy"),
    (["--steps", "3", "--temperature", "0.5"], "need --policy"),
]


def _assert_one_line_error(rc, err, word):
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("mdm-theory ") and ": error: " in lines[0], lines[0]
    assert word.lower() in lines[0].lower(), lines[0]


@pytest.mark.parametrize("command", ["exact", "sample"])
@pytest.mark.parametrize("opts, word", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_combination_exits_2_one_line(capsys, command, opts, word):
    extra = ["--samples", "10", "--seed", "0"] if command == "sample" else []
    rc = main([command, "--language", "interval-l3", "--length", "6", *opts, *extra, "--json"])
    cap = capsys.readouterr()
    _assert_one_line_error(rc, cap.err, word)
    assert cap.out == ""


def test_sample_dependencies_with_policy_exits_2(capsys):
    rc = main(["sample", "--language", "interval-l3", "--length", "6", "--policy", "eb:0.1", "--samples", "10",
               "--dependencies", "--json"])
    _assert_one_line_error(rc, capsys.readouterr().err, "--dependencies")


def _cli(*argv):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "mdm_exact.runtime.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=300)


def test_subprocess_bad_combinations():
    for argv, word in (
        (["exact", "--language", "interval-l3", "--length", "6", "--policy", "threshold:0.9", "--steps", "3"], "count option"),
        (["sample", "--language", "interval-l3", "--length", "6", "--policy", "eb:-1", "--samples", "5"], "g >= 0"),
        (["exact", "--language", "interval-l3", "--length", "6", "--policy", "confidence", "--steps", "4",
          "--block-length", "2"], "divide"),
    ):
        p = _cli(*argv)
        _assert_one_line_error(p.returncode, p.stderr, word)


def test_subprocess_exact_json():
    p = _cli("exact", "--language", "interval-l3", "--length", "6", "--policy", "eb:0.1", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    direct = policy_exact_metrics(make_preset("interval-l3"), 6, make_policy("eb:0.1", L=6)).to_dict()
    for key in EXACT_KEYS:
        assert out[key] == _json_value(direct[key]), key
