"""Sweeps: kind registry, TOML configs and grid expansion, run_cells (serial and process pool)."""

import itertools
import json
import math
import sys
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mdm_exact.languages
from mdm_exact.runtime import sweep
from mdm_exact.runtime.store import ResultStore, config_key
from mdm_exact.runtime.kinds import kind_square
from mdm_exact.runtime.sweep import compute_cell, expand_grid, load_config, parse_config, register_kind, run_cells, summarize


def _log_counts(path):
    counts = {}
    if path.exists():
        for line in path.read_text().splitlines():
            x = int(line.split()[0])
            counts[x] = counts.get(x, 0) + 1
    return counts


# --------------------------------------------------------------------------- grids and configs


def test_grid_is_the_cartesian_product_in_written_order():
    langs = ["paper-2gram-t0", "paper-hmm-t0"]
    cells = expand_grid({"kind": "exact", "language": langs, "L": [2, 3, 4], "rule": "linear", "num_steps": 2})
    assert len(cells) == 2 * 3
    assert [(c["language"], c["L"]) for c in cells] == [(lang, L) for lang in langs for L in (2, 3, 4)]
    assert all(c["kind"] == "exact" and c["rule"] == "linear" and c["num_steps"] == 2 for c in cells)
    assert len({config_key(c) for c in cells}) == 6


@given(axes=st.lists(st.lists(st.integers(-5, 5), min_size=1, max_size=3, unique=True), min_size=0, max_size=4))
def test_grid_expansion_property(axes):
    """The grid holds every combination of the axis values exactly once, in lexicographic order."""
    register_kind("grid-test", _cube, params=None, replace=True)
    block = {"kind": "grid-test", **{f"p{i}": (vals if len(vals) > 1 else vals[0]) for i, vals in enumerate(axes)}}
    cells = expand_grid(block)
    combos = [tuple(c[f"p{i}"] for i in range(len(axes))) for c in cells]
    assert combos == list(itertools.product(*axes))
    assert len({config_key(c) for c in cells}) == len(cells) == math.prod(len(a) for a in axes)


def test_list_typed_parameters_flat_list_is_one_value_list_of_lists_is_an_axis():
    one = expand_grid({"kind": "exact", "language": "paper-2gram-t0", "L": 4, "rule": "fixed", "sizes": [2, 2]})
    assert [c["sizes"] for c in one] == [[2, 2]]
    two = expand_grid({"kind": "exact", "language": "paper-2gram-t0", "L": 4, "rule": "fixed", "sizes": [[2, 2], [1, 3]]})
    assert [c["sizes"] for c in two] == [[2, 2], [1, 3]]
    checks = expand_grid({"kind": "check", "names": ["lemma_c5"], "quick": [True, False]})
    assert [(c["names"], c["quick"]) for c in checks] == [(["lemma_c5"], True), (["lemma_c5"], False)]


@pytest.mark.parametrize(
    "block, message",
    [
        ({"kind": "exact", "language": "a", "L": 4, "LL": 3}, r"unknown parameter\(s\) LL; allowed: L, alpha"),
        ({"kind": "exact", "language": "a"}, r"missing required parameter\(s\) L"),
        ({"kind": "nope", "x": 1}, r"unknown cell kind 'nope'; registered kinds: .*exact"),
        ({"x": 1}, "missing 'kind'"),
        ({"kind": "square", "x": []}, "'x' is an empty list"),
        ({"kind": "square", "x": {"a": 1}}, "is a table"),
        ({"kind": ["square", "exact"], "x": 1}, "one kind per"),
        ({"kind": "no.such.module:func", "x": 1}, "needs an explicit opt-in: mdm-theory sweep --allow-import"),
    ],
)
def test_bad_cells_are_clear_errors(block, message):
    with pytest.raises(ValueError, match=message):
        expand_grid(block)


def test_module_function_kind_that_cannot_be_imported_is_a_clear_error_with_the_opt_in():
    with pytest.raises(ValueError, match="cannot import 'func' from 'no.such.module'"):
        expand_grid({"kind": "no.such.module:func", "x": 1}, allow_import=True)


def test_config_schema_errors_name_file_and_table(tmp_path):
    bad = [
        ("[sweep]\nnmae = 'x'\n[[cells]]\nkind='square'\nx=1\n", r"unknown key\(s\) nmae in \[sweep\]; allowed:"),
        ("[sweeps]\n[[cells]]\nkind='square'\nx=1\n", r"unknown top-level key\(s\) sweeps"),
        ("[sweep]\nname='x'\n", "no cells"),
        ("[[cells]]\nkind='square'\nx=1\n[[cells]]\nkind='square'\ny=2\n", r"\[\[cells\]\] block 2: .*unknown parameter\(s\) y"),
        ("[sweep]\nexecutor='cloud'\n[[cells]]\nkind='square'\nx=1\n", "executor must be one of"),
        ("[sweep]\nworkers=0\n[[cells]]\nkind='square'\nx=1\n", "workers must be an integer >= 1"),
        ("[sweep]\nplugins=['no_such_plugin_mod']\n[[cells]]\nkind='square'\nx=1\n", "runs arbitrary code; pass --allow-import"),
        ("[[cells]\nkind='square'\n", "invalid TOML"),
    ]
    for i, (text, message) in enumerate(bad):
        p = tmp_path / f"bad{i}.toml"
        p.write_text(text)
        with pytest.raises(ValueError, match=message) as exc:
            load_config(p)
        assert f"bad{i}.toml" in str(exc.value)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.toml")
    p = tmp_path / "plugin.toml"
    p.write_text("[sweep]\nplugins=['no_such_plugin_mod']\n[[cells]]\nkind='square'\nx=1\n")
    with pytest.raises(ValueError, match="plugin.toml: .*'no_such_plugin_mod' cannot be imported"):
        load_config(p, allow_import=True)


def test_load_config_expands_blocks_and_resolves_store_next_to_config(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(
        "[sweep]\nname = 'demo'\nstore = 'out/s.sqlite'\nworkers = 2\n"
        "[[cells]]\nkind = 'square'\nx = [1, 2, 3]\n"
        "[[cells]]\nkind = 'exact'\nlanguage = 'paper-2gram'\nL = [4, 6]\nrule = ['linear', 'cosine']\nnum_steps = [1, 2]\n"
    )
    cfg = load_config(p)
    assert cfg.name == "demo" and cfg.workers == 2 and cfg.store == str(tmp_path / "out" / "s.sqlite")
    assert len(cfg.cells) == 3 + 2 * 2 * 2
    assert parse_config({"cells": [{"kind": "square", "x": [1, 2]}]}).cells == [
        {"kind": "square", "x": 1}, {"kind": "square", "x": 2}]


def test_example_configs_in_docs_are_valid():
    import glob
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "docs", "examples")
    paths = sorted(glob.glob(os.path.join(root, "*.toml")))
    assert paths, "docs/examples/*.toml missing"
    for path in paths:
        assert load_config(path).cells


# --------------------------------------------------------------------------- registry


def _cube(*, x):
    return {"x3": x**3}


def test_register_kind_and_module_function_kinds(tmp_path):
    register_kind("cube-test", _cube, params=("x",), required=("x",), replace=True)
    assert compute_cell({"kind": "cube-test", "x": 3}) == {"x3": 27}
    with pytest.raises(ValueError, match="already registered"):
        register_kind("cube-test", lambda x: {}, params=("x",))
    with pytest.raises(ValueError, match="not a registered kind"):
        compute_cell({"kind": "test_sweep:_cube", "x": 2})
    assert compute_cell({"kind": "test_sweep:_cube", "x": 2}, allow_import=True) == {"x3": 8}
    assert compute_cell({"kind": "mdm_exact.runtime.kinds:kind_square", "x": 5}, allow_import=True) == {"x": 5, "y": 25}
    with pytest.raises(ValueError, match="without ':'"):
        register_kind("a:b", _cube)
    store = ResultStore(tmp_path / "s.sqlite")
    recs = run_cells([{"kind": "cube-test", "x": i} for i in range(4)], store, executor="local", workers=2,
                     progress=False)
    assert [r["result"] for r in recs] == [{"x3": i**3} for i in range(4)]


def test_kind_returning_a_non_dict_is_a_cell_error(tmp_path):
    register_kind("bad-return-test", _bad_return, params=(), replace=True)
    rec = run_cells([{"kind": "bad-return-test"}], tmp_path / "s.sqlite", executor="serial", progress=False)[0]
    assert rec["status"] == "error" and "returned list, expected a dict" in rec["error"]


def _bad_return():
    return [1, 2]


# --------------------------------------------------------------------------- run_cells


@pytest.mark.parametrize("executor", ["serial", "local"])
def test_run_cells_stores_results_records_failures_and_skips_on_rerun(tmp_path, executor):
    log = tmp_path / "log"
    store = ResultStore(tmp_path / "s.sqlite")
    cells = [{"kind": "square", "x": i, "log": str(log)} for i in range(6)]
    cells += [{"kind": "square", "x": 100, "fail": True, "log": str(log)}, cells[2]]  # a failure, a duplicate
    recs = run_cells(cells, store, executor=executor, workers=2, progress=False)
    assert [r["status"] for r in recs] == ["ok"] * 6 + ["error", "ok"]
    assert [r["result"]["y"] for r in recs if r["status"] == "ok"] == [0, 1, 4, 9, 16, 25, 4]
    assert "RuntimeError: cell x=100 asked to fail" in recs[6]["error"] and "Traceback" in recs[6]["error"]
    assert _log_counts(log) == {i: 1 for i in range(6)}  # the duplicate was computed once
    assert summarize(recs) == {**summarize(recs), "cells": 7, "computed": 7, "cached": 0, "ok": 6, "error": 1}
    for i in range(6):
        assert store.get(cells[i]) == {"x": i, "y": i * i}
    assert store.get_record(cells[6])["status"] == "error"

    again = run_cells(cells, store, executor="serial", progress=False)  # skipping happens before any executor
    assert [r["cached"] for r in again] == [True] * 6 + [False, True]  # errors are retried
    assert _log_counts(log) == {i: 1 for i in range(6)}  # nothing finished was recomputed

    forced = run_cells(cells[:3], store, executor="serial", force=True, progress=False)
    assert [r["cached"] for r in forced] == [False] * 3
    assert _log_counts(log) == {0: 2, 1: 2, 2: 2, 3: 1, 4: 1, 5: 1}
    assert store.get_record(cells[0])["attempts"] == 2


def test_run_cells_validates_everything_before_running(tmp_path):
    log = tmp_path / "log"
    with pytest.raises(ValueError, match="unknown parameter"):
        run_cells([{"kind": "square", "x": 1, "log": str(log)}, {"kind": "square", "z": 1}], tmp_path / "s.sqlite",
                  executor="serial", progress=False)
    assert not log.exists()
    with pytest.raises(ValueError, match="executor must be one of"):
        run_cells([], tmp_path / "s.sqlite", executor="threads")
    with pytest.raises(ValueError, match="workers must be"):
        run_cells([], tmp_path / "s.sqlite", workers=0)


def test_crashing_worker_is_isolated_recorded_and_the_rest_go_on(tmp_path):
    """A cell that kills its process is stored as an error (after failing alone); the cells that
    shared the broken pool are rerun and succeed, each computed exactly once."""
    log = tmp_path / "log"
    store = ResultStore(tmp_path / "s.sqlite")
    cells = [{"kind": "test_sweep:_die"}]
    # 0.6 s cells: the pool notices the crash (after 0.1 s) long before the innocent cell ends
    cells += [{"kind": "mdm_exact.runtime.kinds:kind_square", "x": i, "sleep": 0.6, "log": str(log)} for i in range(3)]
    recs = run_cells(cells, store, executor="local", workers=2, progress=False, allow_import=True)
    assert recs[0]["status"] == "error" and "crashed its worker process, also when run alone" in recs[0]["error"]
    assert [r["status"] for r in recs[1:]] == ["ok"] * 3
    assert _log_counts(log) == {i: 1 for i in range(3)}
    assert store.get_record(cells[0])["status"] == "error"


def _die():
    import os
    import time

    time.sleep(0.1)  # let the other worker start a cell, so that it is caught in the broken pool
    os._exit(3)


# --------------------------------------------------------------------------- other teams' kinds (plumbing)


@pytest.fixture
def tiny_language(monkeypatch):
    """A small bigram behind ``load_language`` (the languages team's loader may not be there yet)."""
    from mdm_exact.languages import NGram

    lang = NGram(2, [0.6, 0.4], [[0.7, 0.3], [0.2, 0.8]])
    seen = []

    def load_language(spec, *, seed=None):
        seen.append((spec, seed))
        return lang

    monkeypatch.setattr(mdm_exact.languages, "load_language", load_language, raising=False)
    return lang, seen


def test_exact_kind_calls_exact_metrics_on_the_loaded_language(tmp_path, tiny_language):
    from mdm_exact.sampler.exact import exact_metrics
    from mdm_exact.sampler.schedules import make_step_rule

    lang, seen = tiny_language
    cell = {"kind": "exact", "language": "tiny", "L": 4, "rule": "fixed", "sizes": [1, 3], "language_seed": 7}
    got = compute_cell(cell)
    want = exact_metrics(lang, 4, make_step_rule("fixed", sizes=(1, 3))).to_dict()
    assert seen == [("tiny", 7)]
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_equal(got[k], want[k])
    rec = run_cells([cell], tmp_path / "s.sqlite", executor="serial", progress=False)[0]
    assert rec["status"] == "ok" and rec["result"]["ser"] == pytest.approx(want["ser"], rel=0, abs=0)


def test_mc_kind_is_run_monte_carlo_to_dict_with_the_seed(tiny_language):
    from mdm_exact.sampler.montecarlo import run_monte_carlo
    from mdm_exact.sampler.schedules import make_step_rule

    lang, _ = tiny_language
    cell = {"kind": "mc", "language": "tiny", "L": 6, "rule": "linear", "num_steps": 2, "num_samples": 2000, "seed": 3}
    got = compute_cell(cell)
    want = run_monte_carlo(lang, 6, make_step_rule("linear", L=6, num_steps=2), 2000, rng=3).to_dict()
    for k in ("ser", "ser_ci", "gen_ppl", "nfe_mean"):
        assert got[k] == want[k]


def test_check_kind_passes_names_and_quick(monkeypatch):
    calls = []
    fake = types.ModuleType("mdm_exact.theory.checks")
    fake.run_checks = lambda names=None, *, quick=False: calls.append((names, quick)) or [{"name": "x", "ok": True}]
    monkeypatch.setitem(sys.modules, "mdm_exact.theory.checks", fake)
    assert compute_cell({"kind": "check", "names": ["a", "b"], "quick": True}) == {"checks": [{"name": "x", "ok": True}]}
    assert compute_cell({"kind": "check"}) == {"checks": [{"name": "x", "ok": True}]}
    assert calls == [(["a", "b"], True), (None, False)]


def test_neural_kind_needs_an_existing_checkpoint(tmp_path):
    rec = run_cells([{"kind": "neural", "checkpoint": str(tmp_path / "none.pt"), "steps": [2]}], tmp_path / "s.sqlite",
                    executor="serial", progress=False)[0]
    assert rec["status"] == "error" and "none.pt" in rec["error"]
    with pytest.raises(ValueError, match="unknown parameter"):
        sweep.validate_cell({"kind": "neural", "checkpoint": "a.pt", "epochs": 3})


@pytest.mark.parametrize("kind", ["mdm", "ar"])
def test_neural_kind_scores_a_committed_checkpoint(kind):
    """A neural cell runs end to end on a committed L = 64 checkpoint (the kind passes the current
    keywords of neural.evaluate): SER in [0, 1] inside its interval, and the same numbers for the
    same seed (timings aside)."""
    import os

    pytest.importorskip("torch")  # the neural extra, not one of our packages
    ck = os.path.join(os.path.dirname(__file__), "..", "reports", "neural", "cpu-l64", f"paper-2gram-{kind}.pt")
    cell = {"kind": "neural", "checkpoint": ck, "num_samples": 8, "seed": 3}
    if kind == "mdm":
        cell["steps"] = [4]
    def scores(res):
        row = dict(res["mdm"][0] if kind == "mdm" else res["ar"])
        return {k: v for k, v in row.items() if not k.endswith("seconds")}

    row, again = scores(compute_cell(cell)), scores(compute_cell(cell))
    assert row == again
    assert 0.0 <= row["ser"] <= 1.0 and row["ser_ci"][0] <= row["ser"] <= row["ser_ci"][1]


# --------------------------------------------------------------------------- a config file is not a program


def _cli(*args, cwd=None, env=None):
    import subprocess

    return subprocess.run([sys.executable, "-m", "mdm_exact.runtime.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)


def test_config_naming_os_system_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    cfg = tmp_path / "evil.toml"
    cfg.write_text(f"[[cells]]\nkind = 'os:system'\ncommand = 'touch {marker}'\n")
    out = _cli("sweep", str(cfg), "--store", str(tmp_path / "s.sqlite"), "--executor", "serial")
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert "'os:system' is not a registered kind" in out.stderr and "--allow-import" in out.stderr
    assert not marker.exists()
    assert not (tmp_path / "s.sqlite").exists()
    plug = tmp_path / "plug.toml"  # importing a module runs its code too
    plug.write_text("[sweep]\nplugins = ['no_such_module_for_this_test']\n[[cells]]\nkind = 'square'\nx = 1\n")
    out = _cli("sweep", str(plug), "--store", str(tmp_path / "p.sqlite"), "--executor", "serial")
    assert out.returncode == 2 and "runs arbitrary code" in out.stderr and "Traceback" not in out.stderr


def test_allow_import_runs_a_module_function_kind(tmp_path):
    import os

    (tmp_path / "mykinds.py").write_text("def triple(*, x):\n    return {'y': 3 * x}\n")
    cfg = tmp_path / "mine.toml"
    cfg.write_text("[[cells]]\nkind = 'mykinds:triple'\nx = [1, 2]\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    store = tmp_path / "s.sqlite"
    refused = _cli("sweep", str(cfg), "--store", str(store), "--executor", "serial", env=env)
    assert refused.returncode == 2 and "--allow-import" in refused.stderr
    ok = _cli("sweep", str(cfg), "--store", str(store), "--executor", "serial", "--allow-import", "--json", env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] == 2
    assert sorted(r["result"]["y"] for r in ResultStore(store).rows()) == [3, 6]


# --------------------------------------------------------------------------- the plug-in registry

_NOT_A_KIND = object()
_GOOD_KIND = None  # set by the test: a KindSpec named "plugged-test"


def _fake_entry_points(monkeypatch, eps):
    import importlib.metadata

    from mdm_exact.runtime import plugins

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [e for e in eps if e.group == group])
    plugins.entry_points.cache_clear()


@pytest.fixture
def fake_eps(monkeypatch):
    from mdm_exact.runtime import kinds, plugins

    saved = dict(kinds._KINDS)
    yield lambda eps: _fake_entry_points(monkeypatch, eps)
    monkeypatch.undo()
    plugins.entry_points.cache_clear()
    kinds._KINDS.clear()
    kinds._KINDS.update(saved)


def test_installed_kinds_are_found_by_entry_point_and_checked(fake_eps):
    from importlib.metadata import EntryPoint

    from mdm_exact.runtime.kinds import get_kind, kind_names, make_kind
    from mdm_exact.runtime.plugins import PluginError

    global _GOOD_KIND
    _GOOD_KIND = make_kind("plugged-test", _cube, params=("x",), required=("x",))
    g = "mdm_theory.sweep_kinds"
    fake_eps([EntryPoint("plugged-test", "test_sweep:_GOOD_KIND", g), EntryPoint("broken-test", "test_sweep:_NOT_A_KIND", g)])
    assert {"plugged-test", "broken-test"} <= set(kind_names())
    assert compute_cell({"kind": "plugged-test", "x": 2}) == {"x3": 8}  # no allow_import needed
    assert get_kind("plugged-test") is _GOOD_KIND
    with pytest.raises(PluginError, match="must name a KindSpec called 'broken-test'"):
        get_kind("broken-test")


def test_two_packages_claiming_one_name_is_a_clear_error(fake_eps, capsys):
    from importlib.metadata import EntryPoint

    from mdm_exact.runtime.cli import main

    g = "mdm_theory.commands"
    fake_eps([EntryPoint("report", "a.plugin:register", g), EntryPoint("report", "b.plugin:register", g)])
    assert main(["report"]) == 2
    assert "two installed packages register 'report'" in capsys.readouterr().err
    fake_eps([EntryPoint("exact", "a.plugin:register", g)])
    assert main(["--help"]) == 2  # a package may not replace a built-in command
    assert "register the built-in command(s) exact" in capsys.readouterr().err


def _positive_x(*, x, **_):
    if x <= 0:
        raise ValueError(f"x: expected > 0, got {x}")


def test_a_kinds_precheck_runs_on_every_cell_of_a_grid_before_any_computes(tmp_path):
    log = tmp_path / "computed.log"
    register_kind("checked-square", kind_square, params=("x", "log"), required=("x",), precheck=_positive_x, replace=True)
    assert [c["x"] for c in expand_grid({"kind": "checked-square", "x": [1, 2]})] == [1, 2]
    with pytest.raises(ValueError, match=r"cell \{'x': -1, 'log': .*\}: x: expected > 0, got -1"):
        parse_config({"cells": [{"kind": "checked-square", "x": [3, -1], "log": str(log)}]})
    assert not log.exists()
    with pytest.raises(ValueError, match="precheck must be callable"):
        register_kind("bad-precheck", kind_square, params=("x",), precheck="not a function")
