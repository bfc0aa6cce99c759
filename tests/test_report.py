"""Tests of the report driver (reports/build.py) and of ``mdm-theory report --quick``.

The end-to-end test runs the quick report into a temporary directory and checks that every
file appears and is well formed: the JSON parses with the required keys (configuration, seed,
provenance, wall time, data), the PNGs are real images of a sensible size, and REPORT.md shows
every figure that was built. A rerun must take every cell from the store (resume) and give
the same data.
"""

from __future__ import annotations

import json
import math
import os
import struct

import numpy as np
import pytest

from mdm_exact.runtime.kinds import register_kind, validate_cell
from mdm_exact.runtime.serialize import jsonable
from mdm_exact.runtime.store import ResultStore
from reports import build as B
from reports import cells as C
from reports import experiments as X

REQUIRED = {"figure", "status", "config", "seed", "alpha", "provenance", "wall_seconds", "cells", "data"}
FIGS = list(X.FIGURES)


def png_size(path):
    """(width, height) from a PNG's IHDR chunk; raises if the file is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(33)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    from mdm_exact.runtime.cli import main

    out = tmp_path_factory.mktemp("report")
    rc = main(["report", "--quick", "--out", str(out), "--no-progress"])
    return out, rc


def _records(out):
    recs = {}
    for name in FIGS:
        with open(os.path.join(out, "data", f"{name}.json")) as f:
            recs[name] = json.load(f)
    return recs


def _read(path):
    with open(path) as f:
        return f.read()


def test_quick_report_files_well_formed(quick_report):
    out, rc = quick_report
    assert rc == 0
    recs = _records(out)
    report = _read(os.path.join(out, "REPORT.md"))
    for name, rec in recs.items():
        assert REQUIRED <= set(rec), f"{name}: missing keys {REQUIRED - set(rec)}"
        assert rec["figure"] == name
        prov = rec["provenance"]
        assert {"package_version", "git_commit", "versions", "machine"} <= set(prov)
        assert prov["versions"]["numpy"] and prov["versions"]["matplotlib"]
        assert rec["wall_seconds"] >= 0 and isinstance(rec["seed"], int)
        assert rec["quick"] is True
        png = os.path.join(out, "figures", f"{name}.png")
        if rec["status"] == "ok":
            w, h = png_size(png)
            assert 500 <= w <= 4000 and 300 <= h <= 3000, f"{name}: odd PNG size {w}x{h}"
            assert f"figures/{name}.png" in report and f"data/{name}.json" in report
            assert isinstance(rec["data"], dict) and rec["data"]
        else:
            assert not os.path.exists(png), f"{name}: a stale PNG beside a {rec['status']} record"
    # every figure of the issue is built in the quick run; the neural one waits for GPU results
    for name in FIGS:
        if name == "fig6_neural":
            continue
        assert recs[name]["status"] == "ok", f"{name}: {recs[name]['status']}: {recs[name]['error']}"
    has_neural = bool(X.neural_records(os.path.join(B.REPORTS_DIR, "neural")))
    assert recs["fig6_neural"]["status"] == ("ok" if has_neural else "pending")
    if has_neural:  # the config's exclude (the superseded cpu-l64/ run) is honoured
        assert not any(r["file"].startswith("cpu-l64/") for r in recs["fig6_neural"]["data"]["rows"])
    for prof in recs["fig6_neural"]["data"].get("profiles", []) if has_neural else []:
        # panel (d): non-empty bins of [0, 1] in order, each ratio the bin's KL over its entropy
        assert prof["bins"] and all(b["num_contexts"] > 0 for b in prof["bins"])
        edges = [b["mask_fraction"] for b in prof["bins"]]
        assert edges == sorted(edges) and 0.0 <= edges[0][0] and edges[-1][1] <= 1.0
        for b in prof["bins"]:
            if b["kl_over_entropy"] is not None:
                assert b["kl_over_entropy"] == pytest.approx(b["kl_per_token"] / b["entropy_per_token"], rel=1e-12)
    if not has_neural:
        assert "Pending" in report


def test_quick_report_content_matches_the_mathematics(quick_report):
    """Facts that hold exactly for the numbers in the figures (not estimates)."""
    out, _ = quick_report
    recs = _records(out)
    d4 = recs["fig4_lemmas"]["data"]
    # Lemma C.5 (STATEMENTS.md §4.D): exact P_j <= sum p(1-p)^(l-1) and <= (1 - 1/N)^(l-1) for every schedule
    for r in d4["c5"]:
        for e, i, b, N in zip(r["exact"], r["intermediate"], r["bound"], r["N"]):
            assert e <= i + 1e-12 and e <= b + 1e-12
            if N < r["l"]:
                assert e == 0.0  # pigeonhole
    # Lemma A.1 (§4.B) on every random joint law, and equality in the tight case
    kl, bd = np.array(d4["a1"]["kl"]), np.array(d4["a1"]["bound"])
    assert np.all(kl <= bd + 1e-12)
    assert np.all(np.array(d4["a1"]["tc"]) <= (np.array(d4["a1"]["k"]) - 1) * np.log(d4["a1"]["V"]) + 1e-12)
    # the tight case (k copies of a uniform symbol): the measured KL(q || prod of marginals) is the
    # closed form (k - 1) log V, and the bound (with KL(q_i || p_i) = 0) is attained
    assert d4["a1_tight"]
    for t in d4["a1_tight"]:
        assert math.isclose(t["kl"], (t["k"] - 1) * math.log(t["V"]), rel_tol=1e-12)
        assert math.isclose(t["kl"], t["bound"], rel_tol=1e-12)
    # Lemma B.2 (§4.C): the true log-TER gap never exceeds E_tau KL / L (exact small-L cells)
    for e in recs["fig2_ter_length"]["data"]["exact"]:
        for gap, bound in zip(e["log_ter_gap"], e["instance_kl_per_token"]):
            assert gap <= bound + 1e-12
    # Figure 3: SER is a probability, the Lemma C.6 bound is below the exact perfect-model SER
    for c in recs["fig3_ser_linear"]["data"]["curves"]:
        for (s, lo, hi), b, ex in zip(c["ser"], c["c6_bound"], c["exact_perfect"]):
            assert 0 <= lo <= s <= hi <= 1
            assert ex is None or b <= ex + 1e-12


def test_quick_report_policy_figures_match_the_mathematics(quick_report):
    """Figures 7-8 (issue 16): facts that hold exactly. One position per step (N = L) never leaves
    supp q, whatever the order, so every top-k and uniform point at N = L has SER 0 (exact: 0 to
    rounding; Monte Carlo: no error at all); on Example C.7, threshold:0.9 reveals an uncertain
    position only alone, so it is exact (SER 0, H(p) = H(q)); NFE never exceeds L."""
    out, _ = quick_report
    recs = _records(out)
    for name in ("fig7_policy_pareto", "fig8_policy_ppl"):
        for panel in recs[name]["data"]["panels"]:
            L = panel["L"]
            for p in panel["points"]:
                assert 1 - 1e-12 <= p["nfe"][0] <= L + 1e-9, p
                s, lo, hi = p["ser"]
                assert (lo is None) == p["exact"]
                assert 0 <= s <= 1 and (p["exact"] or lo <= s <= hi)
                if p["family"] not in ("threshold", "eb") and p["param"] == L:
                    assert abs(s) < 1e-12, p
                if name == "fig7_policy_pareto" and panel["language"].startswith("interval") and p["family"] == "threshold" \
                        and p["param"] == 0.9:
                    assert abs(s) < 1e-12, p
                    if p["exact"]:
                        assert math.isclose(p["entropy_model"], panel["entropy_data"], rel_tol=1e-12)
    exact = [p for p in recs["fig7_policy_pareto"]["data"]["panels"] if p["exact"]]
    assert exact and all(p["curve_max_second_difference"] < 1e-12 for p in exact)  # Example C.7: Z_j linear in j


def test_rerun_takes_every_cell_from_the_store(quick_report, tmp_path):
    """Resume: a second run computes nothing and reproduces the data exactly."""
    out, _ = quick_report
    before = _records(out)
    summary = B.build(out, quick=True, progress=False, only=["fig2", "fig5"])
    after = _records(out)
    for name in ("fig2_ter_length", "fig5_exact_vs_mc"):
        assert summary["figures"][name]["status"] == "ok"
        assert after[name]["cells"]["computed"] == 0 and after[name]["cells"]["cached"] > 0
        assert after[name]["data"] == before[name]["data"]


def test_force_recomputes(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("seed = 3\n[fig4_lemmas]\nc5_l = [3]\nc5_N = [2, 8]\na1_instances = 5\nb11_L = 64\n"
                   "b11_num_steps = 4\nb11_instances = 5\n")
    s1 = B.build(tmp_path, config=str(cfg), only=["fig4"], progress=False)
    s2 = B.build(tmp_path, config=str(cfg), only=["fig4"], progress=False)
    s3 = B.build(tmp_path, config=str(cfg), only=["fig4"], progress=False, force=True)
    cells = [json.loads(_read(tmp_path / "data" / "fig4_lemmas.json"))["cells"]]
    assert s1["figures"]["fig4_lemmas"]["status"] == s2["figures"]["fig4_lemmas"]["status"] == "ok"
    assert s3["figures"]["fig4_lemmas"]["status"] == "ok"
    assert cells[0]["computed"] == 2 and cells[0]["cached"] == 0  # --force: both dependency cells again


def test_a_failing_figure_is_reported_and_the_others_still_build(tmp_path):
    import argparse

    cfg = tmp_path / "c.toml"
    cfg.write_text('[fig3_ser_linear]\nlanguage = "no-such-language"\n[fig4_lemmas]\nc5_l = [3]\nc5_N = [2, 8]\n'
                   "a1_instances = 5\nb11_L = 64\nb11_num_steps = 4\nb11_instances = 5\n")
    ns = argparse.Namespace(out=str(tmp_path), quick=False, config=str(cfg), force=False, only=["fig3", "fig4"],
                            no_progress=True, json=False)
    assert B.run_from_args(ns) == 1
    rec = json.loads(_read(tmp_path / "data" / "fig3_ser_linear.json"))
    assert rec["status"] == "failed" and "no-such-language" in rec["error"]
    assert not (tmp_path / "figures" / "fig3_ser_linear.png").exists()
    assert (tmp_path / "figures" / "fig4_lemmas.png").exists()
    assert "**Failed.**" in _read(tmp_path / "REPORT.md")


_FLAKY = {"calls": 0, "fail_at": None}


def _flaky_kind(*, x):
    """A report cell that is interrupted (KeyboardInterrupt) on the ``fail_at``-th computation."""
    _FLAKY["calls"] += 1
    if _FLAKY["calls"] == _FLAKY["fail_at"]:
        raise KeyboardInterrupt
    return {"value": x**2}


def test_interrupted_run_loses_nothing(tmp_path):
    register_kind("report-flaky-test", _flaky_kind, params=("x",), required=("x",), replace=True)
    _FLAKY.update(calls=0, fail_at=3)
    store = ResultStore(tmp_path / "cells.sqlite")
    cells = [{"kind": "report-flaky-test", "x": i} for i in range(5)]
    r = C.Runner(store, seed=0, alpha=0.05)
    with pytest.raises(KeyboardInterrupt):
        r.run_all(cells)
    assert r.stats["computed"] == 2 and len(store) == 2  # the two finished cells are stored
    r2 = C.Runner(store, seed=0, alpha=0.05)
    res = r2.run_all(cells)
    assert [x["value"] for x in res] == [i * i for i in range(5)]
    assert _FLAKY["calls"] == 6  # 2 + the interrupted one + the 3 missing: nothing computed twice
    assert (r2.stats["computed"], r2.stats["cached"]) == (3, 2)
    # compute seconds: the time each cell took when it was computed, read back from the store
    stored = [row["seconds"] for row in store.rows(kind="report-flaky-test")]
    assert len(stored) == 5 and all(t >= 0 for t in stored)
    assert r2.stats["compute_seconds"] == pytest.approx(math.fsum(stored), rel=1e-12, abs=0)


def test_report_cells_are_runtime_cells_and_stored_under_runtime_keys(tmp_path):
    r = C.Runner(ResultStore(tmp_path / "cells.sqlite"), seed=5, alpha=0.05)
    spec = {"random_ngram": {"order": 2, "V": 2, "concentration": 0.5, "seed": 1}}
    cells = [r.exact_cell(spec, 3, {"rule": "linear", "num_steps": 2}),
             r.mc_cell("paper-2gram", 4, {"rule": "left-to-right"}, 50),
             r.deps_cell(16, 2, {"rule": "linear", "num_steps": 4}, 10)]
    assert [validate_cell(c).name for c in cells] == ["exact", "mc", "dependencies"]
    assert cells[0]["language"] == {"dirichlet_ngram": spec["random_ngram"]}
    first = r.run_all(cells)
    assert r.stats["computed"] == 3
    again = C.Runner(r.store, seed=5, alpha=0.05)
    assert again.run_all(cells) == first and again.stats["cached"] == 3
    assert [r.store.get(c) for c in cells] == first  # the figure reads what the store holds
    assert "rule" not in first[0] and "nfe_hist" not in first[1]  # omitted echoes


def test_report_jsonable_writes_nonfinite_as_strings_and_rejects_unknown_objects():
    assert jsonable({"a": np.float64(np.nan), "b": np.int64(3), "c": (1.5, -np.inf)}, nonfinite="string") == {
        "a": "nan", "b": 3, "c": [1.5, "-inf"]}
    with pytest.raises(TypeError, match="cannot store"):
        jsonable({"a": object()}, nonfinite="string")


def test_cell_seeds_are_deterministic_and_distinct():
    r = C.Runner(None, seed=11, alpha=0.05)
    a = r.mc_cell("paper-2gram", 64, {"rule": "linear", "num_steps": 8}, 100)
    b = r.mc_cell("paper-2gram", 64, {"rule": "linear", "num_steps": 16}, 100)
    assert a["seed"] == r.mc_cell("paper-2gram", 64, {"rule": "linear", "num_steps": 8}, 100)["seed"]
    assert a["seed"] != b["seed"]
    assert C.Runner(None, seed=12, alpha=0.05).mc_cell("paper-2gram", 64, {"rule": "linear", "num_steps": 8}, 100)["seed"] != a["seed"]


def test_cell_seeds_are_those_of_the_committed_report():
    """The seed identity is frozen: these are seeds of cells of the committed store (full.toml)."""
    r = C.Runner(None, seed=20250213, alpha=0.05)
    assert r.mc_cell("paper-2gram-t0", 512, {"rule": "linear", "num_steps": 8}, 1000, instance_kl=True)["seed"] == 1570910586
    assert r.deps_cell(2048, 2, {"rule": "linear", "num_steps": 64}, 200)["seed"] == 1287516525


def test_committed_store_holds_every_cell_of_the_committed_report(tmp_path):
    """`mdm-theory report` from a checkout recomputes nothing: the committed store has every cell of
    full.toml under the keys the code computes now (a change of kinds, cell layout or package
    version that orphans the committed cells fails here)."""
    import shutil

    (tmp_path / "data").mkdir()
    shutil.copyfile(os.path.join(B.REPORTS_DIR, "data", "cells.sqlite"), tmp_path / "data" / "cells.sqlite")
    names = [n for n in FIGS if n != "fig6_neural"]  # Figure 6 follows the learned-model results
    summary = B.build(tmp_path, progress=False, only=names)
    for name in names:
        rec = json.loads(_read(tmp_path / "data" / f"{name}.json"))
        assert summary["figures"][name]["status"] == "ok", rec["error"]
        assert rec["cells"]["computed"] == 0 and rec["cells"]["cached"] > 0, name


def test_default_output_is_reports_under_the_working_directory(tmp_path, monkeypatch, capsys):
    from mdm_exact.runtime.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text("[fig4_lemmas]\nc5_l = [3]\nc5_N = [2, 8]\na1_instances = 5\nb11_L = 64\nb11_num_steps = 4\n"
                   "b11_instances = 5\n")
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--config", str(cfg), "--only", "fig4", "--no-progress"]) == 0
    out = tmp_path / "reports"
    assert (out / "data" / "fig4_lemmas.json").exists() and (out / "figures" / "fig4_lemmas.png").exists()
    assert (out / "data" / "cells.sqlite").exists() and (out / "REPORT.md").exists()
    assert f"wrote {out / 'REPORT.md'}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text, match",
    [
        ("[fig1_steps]\nnum_sampels = 3\n", "unknown keys"),
        ("[fig9]\n", "unknown key or table"),
        ("alpha = 1.5\n", "alpha must be"),
        ("fig1_steps = 3\n", "must be a table"),
        ("seed = \"x\"\n", "seed must be an integer >= 0"),
        ("alpha = \"x\"\n", "alpha must be in"),
        ("[fig4_lemmas]\na1_instances = \"x\"\n", r"\[fig4_lemmas\] a1_instances must be an integer like the default"),
        ("[fig1_steps]\nsteps = [8, 16.5]\n", r"steps\[1\] must be an integer"),
        ("[fig1_steps]\nautoregressive = 1\n", "must be a boolean"),
        ("[fig1_steps]\nlanguages = \"paper-2gram\"\n", "must be a list"),
        ("[fig3_ser_linear]\nlanguage = 5\n", "must be a string"),
        ("{\"kind\": 1}\n", "not a valid TOML report config"),
    ],
)
def test_config_errors_are_clear(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        B.load_config(p)


def test_config_types_that_are_fine(tmp_path):
    """Integers where the default is a float, and a language given as a table or a preset name."""
    p = tmp_path / "c.toml"
    p.write_text('[fig2_ter_length]\nlanguage = "paper-2gram"\n[fig3_ser_linear]\nlanguage = {random_ngram = '
                 '{order = 2, V = 2, concentration = 1.0, seed = 1}}\n[fig7_policy_pareto]\nc7_llada_exact_max_draws = 100\n'
                 '[fig5_exact_vs_mc]\ncases = [{language = "paper-hmm", L = 4}]\n')
    cfg = B.load_config(p)
    assert cfg["fig2_ter_length"]["language"] == "paper-2gram" and cfg["fig7_policy_pareto"]["c7_llada_exact_max_draws"] == 100
    assert cfg["fig3_ser_linear"]["language"]["random_ngram"]["V"] == 2


def test_an_unknown_figure_creates_nothing(tmp_path, capsys):
    from mdm_exact.runtime.cli import main

    out = tmp_path / "out"
    assert main(["report", "--only", "fig99", "--out", str(out), "--no-progress"]) == 2
    assert "no such figure" in capsys.readouterr().err
    assert not out.exists()


def test_shipped_configs_load():
    for name in ("quick.toml", "full.toml"):
        cfg = B.load_config(os.path.join(B.CONFIG_DIR, name))
        assert set(X.FIGURES) <= set(cfg)


def test_neural_record_formats(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({
        "language": "paper-2gram", "L": 64,
        "mdm": [{"num_steps": 8, "ser": 0.1}, {"num_steps": 16, "skipped": "time budget"}],
        "ar": {"ser": 0.0}}))
    (tmp_path / "b.json").write_text(json.dumps([{"language": "paper-hmm", "L": 32, "num_steps": 4}]))
    recs = X.neural_records(tmp_path)
    assert [(r["language"], r["num_steps"]) for r in recs] == [("paper-2gram", 8), ("paper-2gram", "ar"), ("paper-hmm", 4)]
    sub = tmp_path / "run3"
    sub.mkdir()
    (sub / "results.json").write_text(json.dumps({"L": 512, "languages": {"paper-2gram-t0": {
        "mdm": [{"num_steps": 8, "gen_ppl": 4.5}, {"num_steps": 2048, "skipped": "time budget"}],
        "ar": {"sampler": "ar-kv-cache", "gen_ppl": 3.6}, "conditional_kl": {"mean_kl_per_token": 0.01, "max_kl": 0.6},
        "leakage_mdm": {"leakage_per_token": 0.0, "by_mask_fraction": [
            {"mask_fraction": [0.0, 0.5], "num_contexts": 0},
            {"mask_fraction": [0.5, 1.0], "num_contexts": 3, "kl_per_token": 0.02, "entropy_per_token": 1.0,
             "kl_over_entropy": 0.02}]}}}}))
    recs = X.neural_records(tmp_path)  # neural.gpu_run layout, found recursively
    assert [(r["language"], r["num_steps"], r["L"]) for r in recs][3:] == [("paper-2gram-t0", 8, 512), ("paper-2gram-t0", "ar", 512)]
    assert recs[3]["epsilon_mean"] == 0.01 and recs[3]["file"] == os.path.join("run3", "results.json")
    assert recs[3]["kl_profile"][1]["kl_over_entropy"] == 0.02 and recs[0].get("kl_profile") is None
    # exclude: globs relative to the directory; everything else is still read
    kept = X.neural_records(tmp_path, exclude=["run3/*"])
    assert [(r["language"], r["num_steps"]) for r in kept] == [(r["language"], r["num_steps"]) for r in recs[:3]]
    assert len(X.neural_records(tmp_path, exclude=["*.json"])) == 0  # fnmatch's * crosses "/"
    assert len(X.neural_records(tmp_path, exclude=["b.json", "nothing/*"])) == len(recs) - 1
    with pytest.raises(ValueError, match="list of glob patterns"):
        X.neural_records(tmp_path, exclude="run3/*")
    (tmp_path / "c.json").write_text(json.dumps([{"language": "paper-hmm", "num_steps": 4}]))
    with pytest.raises(ValueError, match="lacks"):
        X.neural_records(tmp_path)


def test_mdm_exact_never_imports_matplotlib_for_the_command():
    import subprocess
    import sys

    code = ("import sys; from mdm_exact.runtime.cli import build_parser; build_parser('report'); "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_out_that_is_a_file_is_refused(tmp_path, capsys):
    from _bad_input import refused

    (tmp_path / "f").write_text("x")
    refused(capsys, ["report", "--only", "fig4", "--out", tmp_path / "f"], "exists and is not a folder", folder=tmp_path)
    refused(capsys, ["report", "--only", "fig4", "--out", tmp_path / "f" / "sub"], "cannot create the report's folders",
            folder=tmp_path)
