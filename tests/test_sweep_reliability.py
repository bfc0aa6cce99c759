"""A real ``mdm-theory sweep`` killed mid-way loses nothing and computes nothing twice; a damaged
store is reported clearly and the recovery path of docs/sweeps.md works end to end."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from mdm_exact.runtime.store import ResultStore

N_CELLS = 10


def _sweep_cmd(*args):
    return [sys.executable, "-m", "mdm_exact.runtime.cli", "sweep", *args]


def _write_config(tmp_path, *, sleep, executor="local"):
    log = tmp_path / "computed.log"
    cfg = tmp_path / "slow.toml"
    xs = ", ".join(str(i) for i in range(N_CELLS))
    cfg.write_text(
        f"[sweep]\nstore = 'slow.sqlite'\nworkers = 2\nexecutor = '{executor}'\n"
        f"[[cells]]\nkind = 'square'\nx = [{xs}]\nsleep = {sleep}\nlog = '{log}'\n"
    )
    return cfg, tmp_path / "slow.sqlite", log


def _log_xs(log):
    return [int(line.split()[0]) for line in log.read_text().splitlines()] if log.exists() else []


def _stored_ok(path):
    """x of the finished cells, read with a plain SQLite reader (never blocks the writer)."""
    if not os.path.exists(path):
        return set()
    conn = sqlite3.connect(path, timeout=10)
    try:
        rows = conn.execute("SELECT config FROM results WHERE status = 'ok'").fetchall()
    except sqlite3.OperationalError:  # schema not created yet
        rows = []
    finally:
        conn.close()
    import json

    return {json.loads(c)["x"] for (c,) in rows}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_sweep_loses_nothing_and_computes_nothing_twice(tmp_path, sig):
    cfg, store_path, log = _write_config(tmp_path, sleep=0.3)
    proc = subprocess.Popen(_sweep_cmd(str(cfg)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(_stored_ok(store_path)) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the sweep did not store 2 cells within 60 s"
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if sig == signal.SIGTERM:
        assert proc.returncode == 130 and "interrupted; finished results are kept" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    first = _log_xs(log)
    time.sleep(1.0)  # a surviving worker would finish its 0.3 s cell by now
    assert _log_xs(log) == first, "worker processes outlived the killed sweep"

    stored = _stored_ok(store_path)
    assert 2 <= len(stored) < N_CELLS  # killed mid-way
    assert all(first.count(x) == 1 for x in stored)  # each finished cell computed exactly once

    rerun = subprocess.run(_sweep_cmd(str(cfg), "--json", "--quiet"), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    second = _log_xs(log)[len(first):]
    assert not set(second) & stored  # nothing finished was computed again
    assert sorted(second) == sorted(set(range(N_CELLS)) - stored)  # the rest exactly once
    store = ResultStore(store_path)
    assert store.check() == []
    rows = store.rows()
    assert sorted(r["config"]["x"] for r in rows) == list(range(N_CELLS))
    assert all(r["status"] == "ok" and r["attempts"] == 1 and r["result"]["y"] == r["config"]["x"] ** 2 for r in rows)


def test_damaged_store_error_then_recover_and_resume(tmp_path):
    cfg, store_path, log = _write_config(tmp_path, sleep=0.0, executor="serial")
    first = subprocess.run(_sweep_cmd(str(cfg), "--quiet"), capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert sorted(_log_xs(log)) == list(range(N_CELLS))
    data = store_path.read_bytes()
    store_path.write_bytes(bytes(100) + data[100:])  # header destroyed

    broken = subprocess.run(_sweep_cmd(str(cfg)), capture_output=True, text=True, timeout=120)
    assert broken.returncode == 2
    assert f"results store {store_path} is damaged" in broken.stderr and "sweep recover" in broken.stderr
    status = subprocess.run(_sweep_cmd("status", str(store_path)), capture_output=True, text=True, timeout=60)
    assert status.returncode == 2 and "not an SQLite database" in status.stderr

    new = tmp_path / "recovered.sqlite"
    rec = subprocess.run(_sweep_cmd("recover", str(store_path), "--out", str(new)), capture_output=True, text=True,
                         timeout=60)
    assert rec.returncode == 0, rec.stderr
    assert f"recovered {N_CELLS} rows" in rec.stdout
    resumed = subprocess.run(_sweep_cmd(str(cfg), "--store", str(new), "--json", "--quiet"), capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert '"computed": 0' in resumed.stdout and sorted(_log_xs(log)) == list(range(N_CELLS))
    out_csv = tmp_path / "out.csv"
    exp = subprocess.run(_sweep_cmd("export", str(new), "--csv", str(out_csv)), capture_output=True, text=True,
                         timeout=60)
    assert exp.returncode == 0 and f"wrote {N_CELLS} rows" in exp.stdout
    assert len(out_csv.read_text().splitlines()) == N_CELLS + 1


def test_cli_usage_errors(tmp_path, capsys):
    cfg, store_path, _ = _write_config(tmp_path, sleep=0.0, executor="serial")
    for args, message in [
        (["export", str(store_path)], "needs --csv"),
        (["recover", str(store_path)], "needs --out"),
        (["status"], "usage: mdm-theory sweep status STORE"),
        ([str(cfg), "--csv", "x.csv"], "belongs to 'sweep export'"),
        ([str(cfg), "--scheduler", "tcp://h:8786"], "needs --executor dask"),
        ([str(tmp_path / "missing.toml")], "does not exist"),
    ]:
        from mdm_exact.runtime.cli import main

        assert main(["sweep", *args]) == 2, args
        assert message in capsys.readouterr().err
    res = subprocess.run(_sweep_cmd("status", str(store_path)), capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "does not exist" in res.stderr
