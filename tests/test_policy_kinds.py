"""The sweep kinds of issue 16 (``policy_exact``, ``policy_mc``, ``best_schedule``): each is the
Python function it names, with the same arguments (``docs/sweeps.md``)."""

from __future__ import annotations

import numpy as np
import pytest

from mdm_exact.languages import make_preset
from mdm_exact.runtime.kinds import compute_cell, validate_cell
from mdm_exact.sampler.adaptive_exact import policy_exact_metrics
from mdm_exact.sampler.adaptive_mc import run_policy_monte_carlo
from mdm_exact.sampler.policies import make_policy
from mdm_exact.theory.schedule_opt import best_schedule, information_curve_exact, information_curve_mc


def test_policy_exact_kind_is_policy_exact_metrics():
    cell = {"kind": "policy_exact", "language": "paper-2gram-t0", "L": 4, "policy": "llada", "num_steps": 2,
            "block_length": 2, "temperature": 0.5}
    direct = policy_exact_metrics(make_preset("paper-2gram-t0"), 4,
                                  make_policy("llada", L=4, num_steps=2, block_length=2, temperature=0.5)).to_dict()
    assert compute_cell(cell) == direct
    out = compute_cell({"kind": "policy_exact", "language": "interval-l3", "L": 6, "policy": "confidence", "sizes": [2, 2, 2],
                        "omit": ["rule"]})
    assert "rule" not in out
    assert out["ser"] == policy_exact_metrics(make_preset("interval-l3"), 6, make_policy("confidence", L=6, step_sizes=(2, 2, 2)))["ser"]


def test_policy_mc_kind_is_run_policy_monte_carlo():
    cell = {"kind": "policy_mc", "language": "paper-hmm", "L": 16, "policy": "eb:0.5", "num_samples": 64, "seed": 3,
            "omit": ["rule", "nfe_hist", "language"]}
    out = compute_cell(cell)
    direct = run_policy_monte_carlo(make_preset("paper-hmm"), 16, make_policy("eb:0.5", L=16), 64, rng=3).to_dict()
    for key in ("ser", "ser_ci", "gen_ppl", "gen_ppl_ci", "nfe_mean", "nfe_ci", "mean_log_prob_per_token", "engine"):
        assert out[key] == direct[key], key
    assert not {"rule", "nfe_hist", "language"} & set(out)


def test_best_schedule_kind_exact_and_mc():
    lang = make_preset("paper-2gram")
    out = compute_cell({"kind": "best_schedule", "language": "paper-2gram", "L": 5, "num_steps": [2, 3]})
    Z = information_curve_exact(lang, 5)
    assert out["curve"] == "exact"
    np.testing.assert_array_equal(out["Z"], Z)
    assert out["schedules"] == [best_schedule(Z, 2), best_schedule(Z, 3)]
    out = compute_cell({"kind": "best_schedule", "language": "paper-2gram", "L": 12, "num_steps": [4], "num_samples": 8, "seed": 1})
    cur = information_curve_mc(lang, 12, 8, rng=1)
    np.testing.assert_array_equal(out["Z"], cur.Z)
    assert out["schedules"] == [best_schedule(cur, 4)] and out["num_samples"] == 8


@pytest.mark.parametrize("cell, match", [
    ({"kind": "policy_exact", "language": "interval-l3", "L": 6}, "policy"),
    ({"kind": "policy_mc", "language": "interval-l3", "L": 6, "policy": "eb:0.5"}, "num_samples"),
    ({"kind": "policy_mc", "language": "interval-l3", "L": 6, "policy": "eb:0.5", "num_samples": 5, "rule": "linear"}, "rule"),
    ({"kind": "best_schedule", "language": "interval-l3", "L": 6}, "num_steps"),
])
def test_policy_kinds_validate_parameters(cell, match):
    with pytest.raises(ValueError, match=match):
        validate_cell(cell)


def test_policy_kind_bad_policy_is_a_clear_error():
    with pytest.raises(ValueError, match="count option"):
        compute_cell({"kind": "policy_exact", "language": "interval-l3", "L": 6, "policy": "threshold:0.9", "num_steps": 3})
