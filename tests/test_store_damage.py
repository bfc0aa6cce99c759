"""Damaged stores are detected by every reader (status, export, report's get, a rerun), the
read-only commands change nothing on disk, ``recover`` salvages every finished cell, and two
concurrent sweeps on one store compute each cell once (issue 13)."""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from mdm_exact.runtime.cli import main
from mdm_exact.runtime.store import ResultStore, StoreCorruptError, config_key, recover_store, wal_damage


def _cfg(i):
    return {"kind": "square", "x": i}


def _digest(paths):
    """Content hash and existence of each path (what 'nothing changed on disk' means)."""
    out = {}
    for p in paths:
        p = str(p)
        if os.path.exists(p):
            with open(p, "rb") as fh:
                out[p] = hashlib.sha256(fh.read()).hexdigest()
        else:
            out[p] = None
    return out


def _siblings(path):
    return [str(path) + s for s in ("", "-wal", "-shm", ".recovered.sqlite")]


def _cli_fails(capsys, args, *needles):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


def _closed_store(path, n=20):
    store = ResultStore(path)
    for i in range(n):
        store.put(_cfg(i), {"y": 1000003 * i, "pad": "r" * 200}, seconds=0.25)
    store.close()
    assert not os.path.exists(str(path) + "-wal")


def _store_with_log(tmp_path, n=40):
    """A store whose rows live in its write-ahead log (copied as a crash would leave it)."""
    live = tmp_path / "live.sqlite"
    store = ResultStore(live)
    store._conn().execute("PRAGMA wal_autocheckpoint = 0")
    for i in range(n):
        store.put(_cfg(i), {"y": i * i, "pad": "w" * 300}, seconds=0.1)
    crash = tmp_path / "crash.sqlite"
    shutil.copyfile(live, crash)
    shutil.copyfile(str(live) + "-wal", str(crash) + "-wal")
    store.close()
    return crash


def _recovered_xs(src, dest):
    rep = recover_store(src, dest)
    rows = ResultStore(dest).rows()
    for r in rows:  # only genuine rows come back
        assert r["result"]["y"] in (1000003 * r["config"]["x"], r["config"]["x"] ** 2)
    return rep, sorted(r["config"]["x"] for r in rows if r["status"] == "ok")


def test_a_changed_digit_in_a_result_is_detected_everywhere_and_dropped_by_recover(tmp_path, capsys):
    path = tmp_path / "s.sqlite"
    _closed_store(path)
    data = path.read_bytes()
    genuine = json.dumps(1000003 * 7).encode()
    assert data.count(b'"y": ' + genuine) == 1
    i = data.index(b'"y": ' + genuine) + 5
    path.write_bytes(data[:i] + (b"8" if data[i : i + 1] != b"8" else b"9") + data[i + 1 :])
    assert ResultStore(path, readonly=True).check() == []  # SQLite itself sees nothing wrong
    before = _digest(_siblings(path))
    _cli_fails(capsys, ["sweep", "status", str(path)], "is damaged", "checksum", "sweep recover")
    _cli_fails(capsys, ["sweep", "export", str(path), "--csv", str(tmp_path / "o.csv")], "checksum")
    assert not (tmp_path / "o.csv").exists()
    with pytest.raises(StoreCorruptError, match="checksum"):
        ResultStore(path).get(_cfg(7))  # how the report and a rerun read a cell
    assert ResultStore(path).get(_cfg(6)) == {"y": 1000003 * 6, "pad": "r" * 200}
    after = _digest(_siblings(path))
    assert after[str(path)] == before[str(path)]
    rep, xs = _recovered_xs(path, tmp_path / "new.sqlite")
    assert xs == [x for x in range(20) if x != 7]
    main(["sweep", "status", str(tmp_path / "new.sqlite")])  # the recovered store reads clean
    assert "19 cells" in capsys.readouterr().out


def test_a_damaged_write_ahead_log_is_reported_not_checkpointed_away(tmp_path, capsys):
    crash = _store_with_log(tmp_path)
    wal = str(crash) + "-wal"
    assert wal_damage(crash) is None
    with open(wal, "rb") as fh:
        data = bytearray(fh.read())
    ps = int.from_bytes(data[8:12], "big")
    nframes = (len(data) - 32) // (24 + ps)
    data[32 + (nframes // 3) * (24 + ps) + 24 + 200] ^= 0xFF  # a byte of a page in an early frame
    with open(wal, "wb") as fh:
        fh.write(bytes(data))
    before = _digest(_siblings(crash))
    for args in (["sweep", "status", str(crash)], ["sweep", "status", str(crash), "--json"],
                 ["sweep", "export", str(crash), "--csv", str(tmp_path / "o.csv")]):
        _cli_fails(capsys, args, "write-ahead log", "damaged", "sweep recover")
    with pytest.raises(StoreCorruptError, match="write-ahead log"):
        ResultStore(crash)  # a writer (a rerun, the report) refuses too, before touching the log
    assert _digest(_siblings(crash)) == before  # nothing checkpointed, deleted or created
    rep, xs = _recovered_xs(crash, tmp_path / "new.sqlite")
    assert xs == list(range(40))  # every finished cell, also those after the damaged frame


def test_a_sound_log_is_read_by_status_without_changing_it(tmp_path, capsys):
    crash = _store_with_log(tmp_path, n=10)
    before = _digest(_siblings(crash))
    assert main(["sweep", "status", str(crash)]) == 0
    assert "10 cells (10 ok" in capsys.readouterr().out
    after = _digest(_siblings(crash))
    assert after[str(crash)] == before[str(crash)] and after[str(crash) + "-wal"] == before[str(crash) + "-wal"]


def test_status_of_a_closed_store_creates_no_files(tmp_path, capsys):
    path = tmp_path / "s.sqlite"
    _closed_store(path, n=3)
    names = sorted(os.listdir(tmp_path))
    assert main(["sweep", "status", str(path)]) == 0
    assert sorted(os.listdir(tmp_path)) == names


@pytest.mark.parametrize("action", ["status", "export"])
def test_an_empty_file_is_not_an_empty_store(tmp_path, capsys, action):
    path = tmp_path / "empty.sqlite"
    path.write_bytes(b"")
    args = ["sweep", action, str(path)] + (["--csv", str(tmp_path / "o.csv")] if action == "export" else [])
    _cli_fails(capsys, args, "empty (0 bytes)")
    assert path.read_bytes() == b"" and sorted(os.listdir(tmp_path)) == ["empty.sqlite"]
    with pytest.raises(StoreCorruptError, match="0 bytes"):
        ResultStore(path)  # a sweep run with --store on it refuses too
    assert path.read_bytes() == b""


def test_a_version_1_store_is_read_and_migrated(tmp_path):
    path = tmp_path / "v1.sqlite"
    _closed_store(path, n=3)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE results DROP COLUMN checksum")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    old = ResultStore(path, readonly=True)
    assert [r["result"]["y"] for r in old.rows()] == [0, 1000003, 2000006]
    old.close()
    assert ResultStore(path).get(_cfg(2)) == {"y": 2000006, "pad": "r" * 200}  # a writer migrates
    assert ResultStore(path, readonly=True)._legacy is False
    rep = recover_store(path, tmp_path / "r.sqlite")
    assert rep["ok"] == 3


def _sweep_proc(cfg, store):
    return subprocess.Popen([sys.executable, "-m", "mdm_exact.runtime.cli", "sweep", str(cfg), "--store", str(store),
                             "--executor", "serial", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_sweeps_compute_each_cell_once(tmp_path):
    log = tmp_path / "computed.log"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[[cells]]\nkind = 'square'\nx = [0, 1, 2, 3, 4, 5]\nsleep = 0.4\nlog = '{log}'\n")
    store = tmp_path / "s.sqlite"
    a, b = _sweep_proc(cfg, store), _sweep_proc(cfg, store)
    for p in (a, b):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "6 cells" in out
    xs = sorted(int(line.split()[0]) for line in log.read_text().splitlines())
    assert xs == [0, 1, 2, 3, 4, 5]  # each cell computed by exactly one of the two sweeps
    assert sorted(r["config"]["x"] for r in ResultStore(store).rows()) == xs


def test_the_claim_of_a_dead_sweep_is_taken_over(tmp_path):
    from mdm_exact.runtime.sweep import run_cells

    store = ResultStore(tmp_path / "s.sqlite")
    cells = [{"kind": "square", "x": i} for i in range(3)]
    keys = [config_key(c) for c in cells]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    store.claim(keys[:1], f"{socket.gethostname()}:{int(dead.stdout)}:x", 3600)  # a killed sweep on this host
    store.claim(keys[1:2], "elsewhere:1:y", 0.3)  # another host's sweep whose lease runs out
    t0 = time.monotonic()
    recs = run_cells(cells, store, executor="serial", progress=False, lease_seconds=5)
    assert [r["status"] for r in recs] == ["ok"] * 3 and not any(r["cached"] for r in recs)
    assert time.monotonic() - t0 < 10
    assert store.claimed(keys[0]) is None and store.claimed(keys[1]) is None


def test_a_cell_finished_by_another_sweep_before_the_claim_is_not_recomputed(tmp_path, monkeypatch):
    """The race behind the concurrent-sweeps test: sweep A stores cell 0 (``put`` drops A's claim)
    just before sweep B claims it; B then finds no claim, so the claim succeeds, and B must take
    A's stored result instead of computing the cell a second time. Cells the store held as
    errors before B started are still recomputed."""
    from mdm_exact.runtime.sweep import run_cells

    log = tmp_path / "computed.log"
    cells = [{"kind": "square", "x": x, "log": str(log)} for x in range(3)]
    store = ResultStore(tmp_path / "s.sqlite")
    store.put_error(cells[2], "an old failure", seconds=0.0)
    real_claim = ResultStore.claim
    calls = []

    def claim(self, keys, owner, lease_seconds, **kw):
        if not calls:  # another sweep finishes cell 0 between B's start and B's first claim
            other = ResultStore(tmp_path / "s.sqlite")
            other.put(cells[0], {"x": 0, "y": 0, "by": "A"}, seconds=0.5)
            other.close()
        calls.append(list(keys))
        return real_claim(self, keys, owner, lease_seconds, **kw)

    monkeypatch.setattr(ResultStore, "claim", claim)
    recs = run_cells(cells, store, executor="serial", progress=False)
    assert recs[0]["cached"] and recs[0]["result"]["by"] == "A"
    assert [r["cached"] for r in recs[1:]] == [False, False] and recs[2]["status"] == "ok"
    computed = sorted(int(line.split()[0]) for line in log.read_text().splitlines())
    assert computed == [1, 2]
    assert store.claimed(config_key(cells[0])) is None
