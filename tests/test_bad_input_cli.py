"""``exact``, ``sample``, ``language`` and ``check`` refuse bad options and hopeless sizes at once
(exit 2, one line naming the estimate and the limit), before allocating anything (issue 13)."""

import json
import math

import pytest

from _bad_input import refused
from mdm_exact._validate import check_eta, check_exact_size, check_monte_carlo_size, check_schedule_steps
from mdm_exact.runtime.cli import main
from mdm_exact.sampler.exact import MAX_STATES, MAX_WORK

EXACT = ["exact", "--language", "paper-2gram-t0"]
SAMPLE = ["sample", "--language", "paper-2gram"]


@pytest.mark.parametrize("args, needles", [
    (EXACT + ["--length", 10**8, "--steps", 4], ["DP states", "MAX_STATES"]),
    (EXACT + ["--length", 8, "--steps", 10**12], ["DP states"]),  # 9^8 states: refused before the schedule
    (EXACT + ["--length", 6, "--steps", 10**12], ["DP updates", "over the limit"]),
    (EXACT + ["--length", 6, "--steps", 10**7], ["DP updates", "over the limit"]),
    (EXACT + ["--length", 10**6, "--rule", "left-to-right"], ["DP states"]),
    (EXACT + ["--length", 10**6, "--rule", "random-order"], ["DP states"]),
    (SAMPLE + ["--length", 10**9, "--steps", 4, "--samples", 1], ["MAX_MC_LENGTH"]),
    (SAMPLE + ["--length", 512, "--steps", 64, "--samples", 10**12], ["token draws", "over the limit"]),
    (SAMPLE + ["--length", 8, "--steps", 10**7, "--samples", 1], ["schedule of N", "limit"]),
    (SAMPLE + ["--length", 8, "--steps", 10**12, "--samples", 1], ["schedule of N", "limit"]),
    (["language", "show", "paper-hmm", "--length", 10**6], ["--length", "limit is L <= 1000"]),
    (["language", "show", "paper-4gram", "--length", 5000], ["limit is L <= 1000"]),
], ids=["exact-L1e8", "exact-N1e12-L8", "exact-N1e12", "exact-N1e7", "exact-ltr-L1e6", "exact-ro-L1e6",
        "sample-L1e9", "sample-M1e12", "sample-N1e7", "sample-N1e12", "show-hmm-L1e6", "show-4gram"])
def test_hopeless_sizes_are_refused_in_well_under_a_second(tmp_path, capsys, args, needles):
    refused(capsys, args, *needles, folder=tmp_path, max_seconds=0.5)


@pytest.mark.parametrize("eta", ["nan", "-1", "-0.0001", "inf", "-inf"])
@pytest.mark.parametrize("cmd", ["exact", "sample"])
def test_eta_must_be_finite_and_non_negative(capsys, cmd, eta):
    base = EXACT + ["--length", 4, "--steps", 2] if cmd == "exact" else SAMPLE + ["--length", 4, "--steps", 2, "--samples", 2]
    refused(capsys, base + [f"--eta={eta}"], "--eta: expected a finite noise scale >= 0")


def test_eta_zero_is_still_the_perfect_model(capsys):
    assert main(EXACT + ["--length", "3", "--steps", "2", "--eta", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert main(EXACT + ["--length", "3", "--steps", "2", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert out["eta"] == 0.0 and out["model_seed"] is None
    assert (out["ser"], out["kl_data_model"]) == (plain["ser"], plain["kl_data_model"])


@pytest.mark.parametrize("extra, needle", [
    (["--batch-size", 0], "--batch-size: expected an integer >= 1, got 0"),
    (["--batch-size", -3], "--batch-size"),
    (["--ci-alpha", 0], "--ci-alpha"),
    (["--ci-alpha", 1.5], "--ci-alpha"),
    (["--ci-alpha", "nan"], "--ci-alpha"),
])
def test_sample_options(capsys, extra, needle):
    refused(capsys, SAMPLE + ["--length", 8, "--steps", 4, "--samples", 4] + extra, needle)


@pytest.mark.parametrize("steps", [0, -3])
@pytest.mark.parametrize("policy", [[], ["--policy", "llada"], ["--policy", "threshold:0.9"]], ids=["rule", "llada", "threshold"])
@pytest.mark.parametrize("cmd", ["exact", "sample"])
def test_steps_below_one_are_refused_by_flag_name(capsys, cmd, policy, steps):
    base = EXACT + ["--length", 4] if cmd == "exact" else SAMPLE + ["--length", 4, "--samples", 2]
    refused(capsys, base + ["--steps", steps] + policy, f"--steps: expected an integer >= 1, got {steps}")


@pytest.mark.parametrize("args, flag", [
    (SAMPLE + ["--length", 8, "--steps", 4, "--samples", 4, "--seed", -3], "--seed"),
    (["sample", "--language", "paper-3gram", "--language-seed", -2, "--length", 8, "--steps", 4, "--samples", 4],
     "--language-seed"),
    (SAMPLE + ["--length", 8, "--steps", 4, "--samples", 4, "--eta", 0.1, "--model-seed", -1], "--model-seed"),
    (EXACT + ["--length", 3, "--steps", 2, "--eta", 0.1, "--model-seed", -1], "--model-seed"),
    (["language", "make", "paper-3gram", "--seed", -1, "-o", "{tmp}/g.json"], "--seed"),
    (["language", "show", "paper-3gram", "--seed", -1], "--seed"),
], ids=["sample-seed", "language-seed", "sample-model-seed", "exact-model-seed", "make-seed", "show-seed"])
def test_negative_seeds_are_refused_by_name(tmp_path, capsys, args, flag):
    """NumPy's own refusal ("expected non-negative integer") names neither the flag nor the value."""
    args = [str(a).replace("{tmp}", str(tmp_path)) for a in args]
    refused(capsys, args, f"{flag}: expected a seed, an integer >= 0, got -", folder=tmp_path)
    assert not (tmp_path / "g.json").exists()


def test_check_list_json_prints_json(capsys):
    assert main(["check", "--list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = [s["name"] for s in out["statements"]]
    assert "B.8" in names and all(set(s) == {"name", "reference", "believed"} for s in out["statements"])


def test_the_checks_are_exact_lower_bounds_of_the_engine_refusals():
    """check_exact_size refuses only what the engine's own (bigger) estimate refuses too."""
    from mdm_exact.sampler import exact as E
    from mdm_exact.sampler.schedules import make_step_rule

    for V, L, N in [(8, 7, 1), (8, 7, 8), (2, 14, 4), (3, 10, 64), (8, 6, 100), (8, 6, 2000), (2, 14, 3000)]:
        try:
            check_exact_size(V, L, N, max_states=MAX_STATES, max_work=MAX_WORK)
        except ValueError:
            with pytest.raises(ValueError):
                E._check_size(V, L, E.step_plan(make_step_rule("linear", num_steps=N), L), None)
    with pytest.raises(ValueError, match="DP states"):
        check_exact_size(8, 8, None, max_states=MAX_STATES, max_work=MAX_WORK)  # 9^8 > 3^15
    check_exact_size(8, 7, None, max_states=MAX_STATES, max_work=MAX_WORK)  # 9^7 <= 3^15
    assert (8 + 1) ** 7 <= MAX_STATES < (8 + 1) ** 8


def test_validators_directly():
    assert check_eta(0) == 0.0 and check_eta(0.25) == 0.25
    for bad in (math.nan, -1.0, math.inf, True, "0.1", None):
        with pytest.raises(ValueError, match="noise scale"):
            check_eta(bad)
    assert check_schedule_steps(10**6) == 10**6
    with pytest.raises(ValueError, match="limit"):
        check_schedule_steps(10**6 + 1)
    check_monte_carlo_size(512, 10**6)
    with pytest.raises(ValueError, match="MAX_MC_LENGTH"):
        check_monte_carlo_size(10**9, 1)


@pytest.mark.parametrize("args, needles", [
    (["sample", "--language", "paper-2gram", "--length", 4], ["required: --samples/-M", "'mdm-theory sample --help'"]),
    (SAMPLE + ["--length", 4, "--samples", 2, "--schedule", "foo"], ["invalid choice: 'foo'"]),
    (["frob"], ["invalid choice: 'frob'", "'mdm-theory --help'"]),
    (EXACT + ["--length", "four"], ["--length", "'four'"]),
    (["check", "--no-such-flag"], ["mdm-theory check: error: unrecognized arguments: --no-such-flag",
                                   "'mdm-theory check --help'"]),
    (SAMPLE + ["--length", 4, "-M", 2, "stray"], ["unrecognized arguments: stray", "'mdm-theory sample --help'"]),
], ids=["missing-required", "bad-choice", "unknown-command", "not-an-int", "unknown-flag", "stray-word"])
def test_usage_errors_are_one_line_not_the_usage_block(capsys, args, needles):
    """argparse's own errors (missing, unknown or mistyped options) follow the same rule as ours:
    exit 2 and one line on stderr naming the problem and where the usage is, nothing on stdout."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mdm-theory") and "usage:" not in lines[0], captured.err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_help_still_prints_the_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("usage: mdm-theory sample")
