"""Every shipped example config in docs/examples runs: no cell is refused by the size limits
of its engine, and the cheap ones compute (issue 13: sweep_paper.toml exceeded MAX_STATES)."""

import glob
import os

import pytest

from mdm_exact._validate import check_exact_size, check_monte_carlo_size
from mdm_exact.runtime.kinds import compute_cell, language_from_spec
from mdm_exact.runtime.sweep import load_config, run_cells
from mdm_exact.sampler import exact as E
from mdm_exact.sampler.schedules import make_step_rule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "docs", "examples", "*.toml")))
RULE_KEYS = ("rule", "num_steps", "sizes", "probs", "alpha")


def test_there_are_examples():
    assert {os.path.basename(p) for p in EXAMPLES} >= {"sweep_paper.toml", "sweep_smoke.toml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_no_cell_of_an_example_exceeds_its_engine_limits(path):
    cfg = load_config(path)
    assert cfg.cells
    for cell in cfg.cells:
        if cell["kind"] == "exact":
            lang = language_from_spec(cell["language"], cell.get("language_seed"))
            rule = make_step_rule(cell.get("rule", "linear"), L=cell["L"],
                                  **{k: cell[k] for k in RULE_KEYS[1:] if k in cell})
            check_exact_size(lang.vocab_size, cell["L"], None, max_states=E.MAX_STATES, max_work=E.MAX_WORK)
            E._check_size(lang.vocab_size, cell["L"], E.step_plan(rule, cell["L"]), None)  # the engine's own estimate
        elif cell["kind"] == "mc":
            check_monte_carlo_size(cell["L"], cell["num_samples"], batch_size=cell.get("batch_size"))


@pytest.mark.slow
def test_the_largest_exact_cell_of_the_paper_example_computes():  # about 10 s
    cfg = load_config(os.path.join(ROOT, "docs", "examples", "sweep_paper.toml"))
    exact = [c for c in cfg.cells if c["kind"] == "exact"]
    cell = max(exact, key=lambda c: (c["L"], c.get("num_steps") or 0, c["language"] == "paper-2gram-t0"))
    out = compute_cell(cell)
    assert 0.0 <= out["ser"] <= 1.0 and out["L"] == cell["L"]


@pytest.mark.slow
def test_the_smoke_example_runs(tmp_path):
    cfg = load_config(os.path.join(ROOT, "docs", "examples", "sweep_smoke.toml"))
    recs = run_cells(cfg.cells, tmp_path / "smoke.sqlite", executor="local", workers=2, progress=False)
    assert len(recs) == 40 and all(r["status"] == "ok" for r in recs)
