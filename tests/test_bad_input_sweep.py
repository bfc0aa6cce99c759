"""Bad sweep configs, stores and executors are refused (exit 2, one line, nothing on disk
changed), and a config cannot run code unless --allow-import says so (issue 13)."""

import socket

import pytest

from _bad_input import refused
from mdm_exact.runtime.store import ResultStore
from mdm_exact.runtime.sweep import run_cells


def _cfg(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, needle", [
    ("[[cells]\nkind = 'square'\n", "invalid TOML"),
    ("[[cells]]\nkind = 'square'\nx = [1, 2\n", "invalid TOML"),
    ("[[cells]]\nkind = ['square']\nx = 1\n", "one kind per"),
    ("[[cells]]\nkind = 'square'\nx = 1\nsleep = {a = 1}\n", "is a table"),
    ("[[cells]]\nkind = 'os:system'\ncommand = 'touch PWNED'\n", "--allow-import"),
    ("[sweep]\nplugins = ['os']\n[[cells]]\nkind = 'square'\nx = 1\n", "--allow-import"),
    ("[[cells]]\nkind = 'no_such_kind'\nx = 1\n", "unknown cell kind"),
    ("[[cells]]\nkind = 'square'\nx = [" + ", ".join(map(str, range(1000))) + "]\nsleep = ["
     + ", ".join(f"0.{i:03d}" for i in range(1000)) + "]\nlog = [" + ", ".join(f"'l{i}'" for i in range(1000)) + "]\n",
     "MAX_CELLS"),  # 1000 x 1000 x 1000 = 10^9 cells
    ("[sweep]\nworkers = 0\n[[cells]]\nkind = 'square'\nx = 1\n", "workers must be an integer >= 1"),
    ("[sweep]\nexecutor = 'cloud'\n[[cells]]\nkind = 'square'\nx = 1\n", "executor must be one of"),
    ("[[cells]]\nkind = 'mc'\nlanguage = 'paper-2gram'\nL = 8\nnum_steps = 4\nnum_samples = 10\nseed = -1\n",
     "cell kind 'mc': seed: expected a seed, an integer >= 0, got -1"),
    ("[[cells]]\nkind = 'mc'\nlanguage = 'paper-3gram'\nL = 8\nnum_steps = 4\nnum_samples = 10\n"
     "language_seed = [1, -2]\n", "cell kind 'mc': language_seed: expected a seed, an integer >= 0, got -2"),
    ("[[cells]]\nkind = 'mc'\nlanguage = 'paper-2gram'\nL = 8\nnum_steps = 4\nnum_samples = 10\nseed = 1.5\n",
     "seed: expected a seed, an integer >= 0, got 1.5"),
], ids=["toml-syntax", "toml-unclosed", "kind-list", "table-value", "os-system", "plugins", "unknown-kind",
        "grid-1e9", "workers-0", "executor", "seed-negative", "language-seed-in-grid", "seed-float"])
def test_bad_configs(tmp_path, capsys, text, needle):
    cfg = _cfg(tmp_path, text)
    err = refused(capsys, ["sweep", cfg], needle, folder=tmp_path)
    assert str(cfg) in err  # the file is named
    assert not (tmp_path / "PWNED").exists()


def test_config_not_utf8_directory_and_missing(tmp_path, capsys):
    (tmp_path / "bin.toml").write_bytes(b"[[cells]]\nkind = '\xff\xfe'\n")
    refused(capsys, ["sweep", tmp_path / "bin.toml"], "not UTF-8", folder=tmp_path)
    (tmp_path / "d.toml").mkdir()
    refused(capsys, ["sweep", tmp_path / "d.toml"], "is a directory", folder=tmp_path)
    refused(capsys, ["sweep", tmp_path / "none.toml"], "does not exist", folder=tmp_path)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_dask_scheduler_is_refused_at_once(tmp_path, capsys):
    pytest.importorskip("distributed")
    cfg = _cfg(tmp_path, "[[cells]]\nkind = 'square'\nx = [1, 2]\n")
    addr = f"tcp://127.0.0.1:{_free_port()}"
    refused(capsys, ["sweep", cfg, "--executor", "dask", "--scheduler", addr, "--store", tmp_path / "s.sqlite"],
            "cannot reach the Dask scheduler", folder=tmp_path, max_seconds=4)
    refused(capsys, ["sweep", cfg, "--executor", "dask", "--scheduler", "tcp://", "--store", tmp_path / "s.sqlite"],
            "expected tcp://HOST:PORT", folder=tmp_path)


def test_bad_store_arguments(tmp_path, capsys):
    (tmp_path / "dir.sqlite").mkdir()
    (tmp_path / "text.sqlite").write_text("hello, not a database" * 10)
    refused(capsys, ["sweep", "status", tmp_path / "dir.sqlite"], "is a directory", folder=tmp_path)
    refused(capsys, ["sweep", "status", tmp_path / "text.sqlite"], "not an SQLite database", folder=tmp_path)
    refused(capsys, ["sweep", "status", tmp_path / "none.sqlite"], "does not exist", folder=tmp_path)
    refused(capsys, ["sweep", "export", tmp_path / "text.sqlite", "--csv", tmp_path / "o.csv"], "not an SQLite",
            folder=tmp_path)
    cfg = _cfg(tmp_path, "[[cells]]\nkind = 'square'\nx = 1\n")
    refused(capsys, ["sweep", cfg, "--store", tmp_path / "no" / "s.sqlite"], "does not exist", folder=tmp_path)


def test_a_hopeless_exact_cell_fails_at_once_and_the_others_run(tmp_path):
    cells = [{"kind": "exact", "language": "paper-2gram-t0", "L": 10**8, "num_steps": 4},
             {"kind": "mc", "language": "paper-2gram", "L": 10**9, "num_steps": 4, "num_samples": 1},
             {"kind": "exact", "language": "paper-2gram-t0", "L": 6, "num_steps": 10**12},
             {"kind": "square", "x": 3}]
    recs = run_cells(cells, ResultStore(tmp_path / "s.sqlite"), executor="serial", progress=False)
    assert [r["status"] for r in recs] == ["error", "error", "error", "ok"]
    assert all(r["seconds"] < 1.0 for r in recs)
    assert "MAX_STATES" in recs[0]["error"] and "MAX_MC_LENGTH" in recs[1]["error"] and "limit" in recs[2]["error"]


_EXACT = "[[cells]]\nkind = 'exact'\nlanguage = 'paper-2gram-t0'\n"
_MC = "[[cells]]\nkind = 'mc'\nlanguage = 'paper-2gram'\nnum_steps = 4\n"
_POL = "[[cells]]\nkind = 'policy_exact'\nlanguage = 'paper-2gram'\n"


@pytest.mark.parametrize("text, needles", [
    (_EXACT + "L = [4, 0]\nnum_steps = 2\n", ["'L': 0", "L: expected a sequence length >= 1, got 0"]),
    (_EXACT + "L = 10\nnum_steps = 4\n", ["'L': 10", "MAX_STATES"]),
    (_EXACT + "L = 6\nnum_steps = 1000000000000\n", ["DP updates", "over the limit"]),
    (_EXACT + "L = '6'\nnum_steps = 2\n", ["L: expected a positive integer sequence length, got '6'"]),
    (_EXACT + "L = 6\nrule = 'fixed'\nsizes = [3, 2]\n", ["step sizes sum to 5, but the sequence length is L = 6"]),
    (_EXACT + "L = 4\nnum_steps = 2\nmodel_eta = -1.0\n", ["model_eta"]),
    ("[[cells]]\nkind = 'exact'\nlanguage = ['paper-2gram', 'paper-2grm']\nL = 4\nnum_steps = 2\n",
     ["'paper-2grm'", "unknown language"]),
    ("[[cells]]\nkind = 'exact'\nlanguage = 'missing.json'\nL = 4\nnum_steps = 2\n", ["missing.json"]),
    (_MC + "L = 64\nnum_samples = 1000000000000\n", ["token draws", "over the limit"]),
    (_MC + "L = 1000000000\nnum_samples = 1\n", ["MAX_MC_LENGTH"]),
    (_MC + "L = 64\nnum_samples = 10\nci_alpha = 1.5\n", ["ci_alpha: expected 0 < ci_alpha < 1"]),
    (_MC + "L = 64\nnum_samples = 10\nrule = 'cosin'\n", ["cosin"]),
    (_POL + "L = 4\npolicy = 'confidnce'\nnum_steps = 2\n", ["unknown policy 'confidnce'"]),
    (_POL + "L = 12\npolicy = 'confidence'\nnum_steps = 2\n", ["adaptive exact engine"]),
    ("[[cells]]\nkind = 'policy_mc'\nlanguage = 'paper-2gram'\nL = 8\npolicy = 'threshold:2'\nnum_samples = 4\n",
     ["threshold:g: expected 0 < g <= 1"]),
], ids=["L-0-in-grid", "exact-too-big", "exact-steps", "L-string", "sizes-sum", "eta", "unknown-language",
        "missing-file", "mc-draws", "mc-length", "ci-alpha", "rule-name", "policy-name", "policy-exact-size",
        "policy-threshold"])
def test_bad_cell_values_are_refused_before_any_cell_runs(tmp_path, capsys, text, needles):
    """A sweep config whose cells the engines would refuse is refused whole (exit 2, one line naming
    the block and the cell), before a store is created: not a grid of failed rows."""
    cfg = _cfg(tmp_path, text + "\n[[cells]]\nkind = 'square'\nx = 2\n" if "square" not in text else text)
    err = refused(capsys, ["sweep", cfg, "--store", tmp_path / "s.sqlite"], "[[cells]] block 1: cell {", *needles,
                  folder=tmp_path, max_seconds=2.0)
    assert str(cfg) in err
    assert not (tmp_path / "s.sqlite").exists()


def test_kinds_without_a_precheck_and_good_values_still_run(tmp_path, capsys):
    from mdm_exact.runtime.cli import main

    cfg = _cfg(tmp_path, _EXACT + "L = [3, 4]\nnum_steps = 2\n\n[[cells]]\nkind = 'square'\nx = [1, 2]\n")
    assert main(["sweep", str(cfg), "--store", str(tmp_path / "s.sqlite"), "--executor", "serial", "--quiet"]) == 0
    rows = ResultStore(tmp_path / "s.sqlite").rows(status="ok")
    assert len(rows) == 4
