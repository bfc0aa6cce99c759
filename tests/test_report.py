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

from reports import build as B
from reports import cache as C
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
    for name in FIGS[:-1]:
        assert recs[name]["status"] == "ok", f"{name}: {recs[name]['status']}: {recs[name]['error']}"
    has_neural = bool(X.neural_records(os.path.join(B.REPORTS_DIR, "neural")))
    assert recs["fig6_neural"]["status"] == ("ok" if has_neural else "pending")
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
    for t in d4["a1_tight"]:
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


class _FlakyCompute:
    """compute_cell that fails on the k-th call (an interrupted run)."""

    def __init__(self, fail_at):
        self.calls = 0
        self.fail_at = fail_at

    def __call__(self, cell):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt
        return {"value": cell["x"] ** 2}


def test_interrupted_run_loses_nothing(tmp_path, monkeypatch):
    store = C.JSONCellStore(tmp_path / "cells")
    flaky = _FlakyCompute(fail_at=3)
    monkeypatch.setattr(B, "compute_cell", flaky)
    cells = [{"kind": "exact", "language": "x", "L": 1, "rule": {"rule": "linear", "num_steps": 1}, "x": i} for i in range(5)]
    r = B.Runner(store, seed=0, alpha=0.05)
    with pytest.raises(KeyboardInterrupt):
        r.run_all(cells)
    assert r.stats["computed"] == 2
    r2 = B.Runner(store, seed=0, alpha=0.05)
    res = r2.run_all(cells)
    assert [x["value"] for x in res] == [i * i for i in range(5)]
    assert r2.stats == {"computed": 3, "cached": 2, "compute_seconds": pytest.approx(r2.stats["compute_seconds"])}


def test_json_store_round_trip_and_keys(tmp_path):
    s = C.JSONCellStore(tmp_path)
    a = {"kind": "mc", "L": 4, "rule": {"rule": "linear", "num_steps": 2}}
    b = {**a, "L": 5}
    assert s.get(a) is None
    s.put(a, {"ser": 0.25, "kl": float("inf"), "arr": np.arange(3)}, seconds=0.1)
    assert s.get(a) == {"ser": 0.25, "kl": "inf", "arr": [0, 1, 2]}
    assert s.get(b) is None
    assert s.get(dict(reversed(list(a.items())))) is not None  # key order does not matter
    s.put_error(b, "boom", seconds=0.0)
    assert s.get(b) is None  # an error is not a result


def test_jsonable_rejects_unknown_objects():
    assert C.jsonable({"a": np.float64(np.nan), "b": np.int64(3), "c": (1.5, -np.inf)}) == {"a": "nan", "b": 3, "c": [1.5, "-inf"]}
    with pytest.raises(TypeError, match="cannot store"):
        C.jsonable({"a": object()})


def test_cell_seeds_are_deterministic_and_distinct():
    r = B.Runner(C.JSONCellStore.__new__(C.JSONCellStore), seed=11, alpha=0.05)
    a = r.mc_cell("paper-2gram", 64, {"rule": "linear", "num_steps": 8}, 100)
    b = r.mc_cell("paper-2gram", 64, {"rule": "linear", "num_steps": 16}, 100)
    assert a["seed"] == r.mc_cell("paper-2gram", 64, {"rule": "linear", "num_steps": 8}, 100)["seed"]
    assert a["seed"] != b["seed"]
    assert B.Runner(None, seed=12, alpha=0.05).mc_cell("paper-2gram", 64, {"rule": "linear", "num_steps": 8}, 100)["seed"] != a["seed"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("[fig1_steps]\nnum_sampels = 3\n", "unknown keys"),
        ("[fig9]\n", "unknown key or table"),
        ("alpha = 1.5\n", "alpha must be"),
        ("fig1_steps = 3\n", "must be a table"),
    ],
)
def test_config_errors_are_clear(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        B.load_config(p)


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
        "ar": {"sampler": "ar-kv-cache", "gen_ppl": 3.6}, "conditional_kl": {"mean_kl_per_token": 0.01, "max_kl": 0.6}}}}))
    recs = X.neural_records(tmp_path)  # neural.gpu_run layout, found recursively
    assert [(r["language"], r["num_steps"], r["L"]) for r in recs][3:] == [("paper-2gram-t0", 8, 512), ("paper-2gram-t0", "ar", 512)]
    assert recs[3]["epsilon_mean"] == 0.01 and recs[3]["file"] == os.path.join("run3", "results.json")
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
