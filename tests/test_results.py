"""The shared result type of the engines and the JSON form of step rules.

``mdm_exact.sampler.results.SamplerResult`` is what both ``exact_metrics`` and
``run_monte_carlo`` return: same keys, same units (a KL name says total or per token), a
frozen dataclass whose ``to_dict()`` is the JSON form. ``StepRule.to_dict()`` round-trips
through ``make_step_rule``.
"""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdm_exact.languages import HMM, IntervalLanguage
from mdm_exact.sampler.exact import exact_metrics
from mdm_exact.sampler.montecarlo import run_monte_carlo
from mdm_exact.sampler.results import SHARED_KEYS, SamplerResult
from mdm_exact.sampler.schedules import (
    FixedSizes,
    LeftToRight,
    RandomOrder,
    ScheduleSteps,
    make_step_rule,
    schedule,
    step_probs_from_alpha,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _hmm():
    return HMM([0.6, 0.4, 0.0], [[0.0, 0.7, 0.3], [0.5, 0.0, 0.5], [0.2, 0.3, 0.5]], [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])


# ----------------------------------------------------------------------------- step rules
_probs = st.lists(st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False), min_size=1, max_size=12).filter(
    lambda v: sum(v) > 1e-3
)


@st.composite
def _rules(draw):
    kind = draw(st.sampled_from(["named", "probs", "alpha", "fixed", "random-order", "left-to-right"]))
    if kind == "named":
        return schedule(draw(st.sampled_from(["linear", "cosine"])), draw(st.integers(1, 300)))
    if kind == "probs":
        v = np.array(draw(_probs))
        return make_step_rule("probs", probs=tuple(v / v.sum()))
    if kind == "alpha":
        v = np.sort(np.array(draw(_probs)))[::-1]
        a = np.concatenate([[1.0], v / v.max() * draw(st.floats(0.0, 1.0)), [0.0]])
        a = np.minimum.accumulate(a)
        return ScheduleSteps(tuple(step_probs_from_alpha(a)), label="alpha")
    if kind == "fixed":
        return FixedSizes(tuple(draw(st.lists(st.integers(0, 9), min_size=1, max_size=10))))
    return RandomOrder() if kind == "random-order" else LeftToRight()


@settings(max_examples=300, deadline=None)
@given(_rules())
def test_step_rule_to_dict_round_trips_through_make_step_rule(rule):
    d = rule.to_dict()
    assert make_step_rule(**d) == rule
    # and through JSON (the form the CLI prints and the store keeps)
    assert make_step_rule(**json.loads(json.dumps(d))) == rule


def test_schedule_rule_from_dict_keeps_probs_exactly_and_checks_them():
    r = schedule("cosine", 7)
    d = r.to_dict()
    assert d["rule"] == "schedule" and d["schedule"] == "cosine"
    assert make_step_rule(**d).probs == r.probs
    with pytest.raises(ValueError, match="num_steps"):
        make_step_rule(**dict(d, num_steps=6))
    with pytest.raises(ValueError, match="sum to 1"):
        make_step_rule("schedule", probs=[0.5, 0.4])
    with pytest.raises(ValueError, match="probs"):
        make_step_rule("schedule", num_steps=2)


# ----------------------------------------------------------------------------- result type
@pytest.fixture(scope="module")
def both():
    lang, L, rule = _hmm(), 4, schedule("cosine", 2)
    ex = exact_metrics(lang, L, rule)
    mc = run_monte_carlo(lang, L, rule, 3000, rng=1)
    return ex, mc, L


def test_both_engines_return_the_frozen_result_type(both):
    ex, mc, _ = both
    for r in (ex, mc):
        assert isinstance(r, SamplerResult)
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.ser = 0.5
        with pytest.raises(TypeError):
            r.extra["x"] = 1  # read-only mapping
        d = r.to_dict()
        assert list(d) == r.keys()
        assert all(r[k] == d[k] for k in d)
        json.dumps(d)  # JSON-ready
        d["ser"] = -1.0  # a copy: the result is unchanged
        assert r.ser != -1.0
    assert ex.engine == "exact" and mc.engine == "hmm"


def test_shared_keys_and_units_agree(both):
    """Every shared key is filled by both engines; a KL total is per-token times L."""
    ex, mc, L = both
    for r in (ex, mc):
        d = r.to_dict()
        assert set(SHARED_KEYS) <= set(d)
        assert d["L"] == L and d["V"] == 2 and d["num_steps"] == 2
        assert d["rule"] == schedule("cosine", 2).to_dict()
    assert ex.instance_kl_per_token == ex.instance_kl_total / L
    np.testing.assert_allclose(mc.instance_kl_per_token * L, mc.instance_kl_total, rtol=1e-12, atol=0)
    lo, hi = mc["instance_kl_total_ci"]
    lo1, hi1 = mc["instance_kl_per_token_ci"]
    np.testing.assert_allclose([lo1 * L, hi1 * L], [lo, hi], rtol=1e-12, atol=1e-15)
    # Monte Carlo has an interval for each shared estimate; exact has none
    for k in ("ser", "gen_ppl", "gen_ppl_seq_mean", "instance_kl_total", "instance_kl_per_token"):
        assert k + "_ci" in mc and k + "_ci" not in ex
    assert "nfe_ci" in mc
    assert ex.ci_alpha is None and mc.ci_alpha == 0.05


def test_no_instance_kl_gives_none_everywhere():
    r = run_monte_carlo(IntervalLanguage(3), 6, schedule("linear", 2), 100, rng=0, instance_kl=False)
    assert r.instance_kl_total is None and r.instance_kl_per_token is None
    assert r["instance_kl_total_ci"] is None and r["instance_kl_per_token_ci"] is None


def test_keys_given_twice_are_an_error():
    kw = dict(engine="x", L=1, V=2, num_steps=1, rule={}, ser=0.0, gen_ppl=None, gen_ppl_seq_mean=None, nfe_mean=1.0,
              instance_kl_total=None, instance_kl_per_token=None)
    with pytest.raises(ValueError, match="given twice"):
        SamplerResult(**kw, extra={"ser": 1.0})
    with pytest.raises(ValueError, match="given twice"):
        SamplerResult(**kw, intervals={"a_ci": (0, 1)}, extra={"a_ci": 2})
    with pytest.raises(KeyError):
        SamplerResult(**kw)["nope"]


@pytest.mark.parametrize("doc", ["exact.md", "montecarlo.md"])
def test_docs_list_every_shared_key(doc):
    text = (DOCS / doc).read_text()
    missing = [k for k in SHARED_KEYS if f"`{k}`" not in text]
    assert not missing, f"docs/{doc} does not document {missing}"


def test_exact_nfe_mean_is_the_mc_expectation(both):
    ex, mc, _ = both
    assert ex.nfe_mean == mc["nfe_expected"]
    assert math.isfinite(mc.nfe_mean)


# ----------------------------------------------------------------------------- curated face
def test_curated_face_resolves_every_name_to_its_module():
    import mdm_exact
    from mdm_exact import sampler

    for name in mdm_exact.__all__:
        assert getattr(mdm_exact, name) is not None
    from mdm_exact import FixedSizes as F, exact_metrics as em, load_language as ll, run_monte_carlo as rmc

    assert F is FixedSizes and em is exact_metrics and rmc is run_monte_carlo
    assert ll is __import__("mdm_exact.languages.io", fromlist=["x"]).load_language
    assert not hasattr(mdm_exact, "version")  # importlib.metadata.version does not leak
    assert isinstance(mdm_exact.__version__, str)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mdm_exact.nope
    assert sampler is not None


def test_importing_mdm_exact_is_cheap():
    """``import mdm_exact`` loads no numerics (numpy, scipy, numba): the face is lazy."""
    import subprocess
    import sys

    code = "import sys, mdm_exact; print(sorted(m for m in ('numpy', 'scipy', 'numba') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- iid closed form
def _iid(p):
    from mdm_exact.languages import NGram

    p = np.asarray(p, dtype=float)
    return NGram(2, p, np.broadcast_to(p, (p.size, p.size)))


@pytest.mark.parametrize(
    "rule",
    [schedule("linear", 1), schedule("cosine", 3), FixedSizes((2, 0, 3)), RandomOrder(), LeftToRight()],
    ids=["one-step", "cosine3", "fixed", "random-order", "left-to-right"],
)
@pytest.mark.parametrize("p", [[0.2, 0.3, 0.5], [0.6, 0.0, 0.4]], ids=["full", "with-zero"])
def test_iid_language_has_zero_kl_and_zero_ser_for_every_rule(p, rule):
    """An iid language is a product of its marginals, so every parallel draw is exact:
    p_tau = q for every instance, SER = KL(q||p) = E_tau KL(q||p_tau) = 0 (closed form;
    Lemma A.1 with zero total correlation)."""
    lang, L = _iid(p), 5
    ex = exact_metrics(lang, L, rule)
    assert ex.ser == pytest.approx(0.0, abs=1e-14)
    assert ex.instance_kl_total == pytest.approx(0.0, abs=1e-14)
    assert ex["kl_data_model"] == pytest.approx(0.0, abs=1e-14)
    assert ex["total_correlation_data"] == pytest.approx(0.0, abs=1e-14)
    mc = run_monte_carlo(lang, L, rule, 600, rng=5)
    assert mc.engine == "ngram" and mc.ser == 0.0
    assert abs(mc.instance_kl_total) < 1e-12  # every per-sample term log q(x) - log p_tau(x) is 0
