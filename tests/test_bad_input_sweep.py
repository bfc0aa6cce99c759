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
