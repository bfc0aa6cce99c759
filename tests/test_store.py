"""The durable results store: round trips, keys, concurrent writers, damaged files and recovery."""

import csv
import json
import multiprocessing
import os
import shutil
import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdm_exact import __version__
from mdm_exact.runtime.store import ResultStore, StoreCorruptError, StoreError, config_key, recover_store


def _cfg(i, pad=0):
    return {"kind": "square", "x": i, "pad": "p" * pad}


def _fill(path, n, pad=0, result_pad=0):
    """A closed store with n ok rows (x = 0..n-1) and one error row; returns the originals by key."""
    store = ResultStore(path)
    originals = {}
    for i in range(n):
        res = {"y": i * i, "blob": "r" * result_pad}
        store.put(_cfg(i, pad), res, seconds=0.5)
        originals[config_key(_cfg(i, pad))] = ("ok", res)
    store.put_error({"kind": "square", "x": -1}, "Traceback: boom", seconds=0.1)
    originals[config_key({"kind": "square", "x": -1})] = ("error", None)
    store.close()  # last connection: checkpoints the WAL into the main file
    assert not os.path.exists(str(path) + "-wal")
    return originals


def _assert_genuine(rows, originals):
    """Every recovered row is one that was written, with its exact result."""
    for r in rows:
        assert r["key"] in originals
        status, res = originals[r["key"]]
        assert r["status"] == status
        assert r["result"] == res
        assert config_key(r["config"], r["package_version"]) == r["key"]


# --------------------------------------------------------------------------- basic API


def test_put_get_round_trip_keeps_inf_and_numpy_values(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    cfg = {"kind": "exact", "language": "paper-2gram", "L": 4, "num_steps": 2}
    assert store.get(cfg) is None
    result = {"ser": np.float64(0.25), "kl_model_data": float("inf"), "hist": np.arange(3), "n": np.int64(7)}
    store.put(cfg, result, seconds=1.5)
    got = store.get(cfg)
    assert got == {"ser": 0.25, "kl_model_data": float("inf"), "hist": [0, 1, 2], "n": 7}
    assert ResultStore(tmp_path / "s.sqlite").get(dict(reversed(list(cfg.items())))) == got  # key order irrelevant
    rec = store.get_record(cfg)
    assert rec["status"] == "ok" and rec["seconds"] == 1.5 and rec["package_version"] == __version__
    assert rec["attempts"] == 1 and rec["kind"] == "exact"


def test_key_is_hash_of_config_and_version():
    cfg = {"kind": "mc", "L": 8, "sizes": (2, 2)}
    assert config_key(cfg) == config_key({"sizes": [2, 2], "L": 8, "kind": "mc"})  # canonical JSON
    assert config_key(cfg) == config_key(cfg, __version__)
    assert config_key(cfg, "0.0.0-other") != config_key(cfg)
    assert config_key(cfg) != config_key({**cfg, "L": 9})
    assert len(config_key(cfg)) == 64


def test_bad_inputs_give_clear_errors(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    with pytest.raises(StoreError, match="cannot be hashed"):
        store.put({"kind": "x", "v": float("nan")}, {}, seconds=0)
    with pytest.raises(StoreError, match="needs a string 'kind'"):
        store.put({"x": 1}, {}, seconds=0)
    with pytest.raises(StoreError, match="must be a dict"):
        store.put({"kind": "x"}, [1, 2], seconds=0)
    with pytest.raises(StoreError, match="seconds"):
        store.put({"kind": "x"}, {}, seconds=float("nan"))
    with pytest.raises(StoreError, match="cannot store a value of type object"):
        store.put({"kind": "x"}, {"o": object()}, seconds=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ResultStore(tmp_path / "missing.sqlite", create=False)
    assert len(store) == 0  # nothing half-written


def test_error_never_overwrites_a_finished_result(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    cfg = {"kind": "square", "x": 3}
    assert store.put_error(cfg, "first failure", seconds=0.1)
    assert store.get(cfg) is None and store.get_record(cfg)["error"] == "first failure"
    store.put(cfg, {"y": 9}, seconds=0.2)
    assert store.put_error(cfg, "a failed recomputation", seconds=0.1) is False
    rec = store.get_record(cfg)
    assert rec["status"] == "ok" and rec["result"] == {"y": 9} and rec["error"] is None and rec["attempts"] == 2
    store.put(cfg, {"y": 9}, seconds=0.3)  # a forced recomputation replaces
    assert store.get_record(cfg)["attempts"] == 3


def test_rows_filters_and_summary(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    for L in (4, 6, 8):
        for lang in ("a", "b"):
            store.put({"kind": "exact", "language": lang, "L": L}, {"v": L}, seconds=1.0)
    store.put_error({"kind": "mc", "language": "a", "L": 4}, "tb", seconds=2.0)
    assert len(store.rows()) == 7
    assert len(store.rows(kind="exact")) == 6
    assert len(store.rows(status="error")) == 1
    assert sorted(r["config"]["L"] for r in store.rows(language="a", kind="exact")) == [4, 6, 8]
    assert len(store.rows(L=[4, 8], language="b")) == 2
    assert store.rows(L=5) == []
    with pytest.raises(StoreError, match="filter on its parameters"):
        store.rows(config={})
    s = store.summary()
    assert (s["cells"], s["ok"], s["error"]) == (7, 6, 1)
    assert s["seconds"] == pytest.approx(8.0, abs=1e-12)
    assert s["by_kind"]["mc"] == {"ok": 0, "error": 1, "seconds": 2.0}


def test_export_csv_round_trip(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    store.put({"kind": "exact", "L": 4}, {"ser": 0.125, "ci": [0.1, 0.2], "kl": float("inf")}, seconds=1.0)
    store.put_error({"kind": "mc", "L": 6}, "Traceback\nValueError: bad", seconds=0.5)
    n = store.export_csv(tmp_path / "o.csv")
    with open(tmp_path / "o.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert n == 2 and len(rows) == 2
    by_kind = {r["kind"]: r for r in rows}
    assert float(by_kind["exact"]["result.ser"]) == 0.125
    assert json.loads(by_kind["exact"]["result.ci"]) == [0.1, 0.2]
    assert float(by_kind["exact"]["result.kl"]) == float("inf")
    assert by_kind["mc"]["error"] == "Traceback\nValueError: bad" and by_kind["mc"]["result.ser"] == ""
    assert store.export_csv(tmp_path / "e.csv", status="error") == 1


def test_parquet_export_needs_pyarrow_or_writes(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    store.put({"kind": "exact", "L": 4}, {"ser": 0.5}, seconds=1.0)
    try:
        import pyarrow.parquet as pq
    except ImportError:
        with pytest.raises(StoreError, match="needs pyarrow"):
            store.export_parquet(tmp_path / "o.parquet")
    else:
        assert store.export_parquet(tmp_path / "o.parquet") == 1
        assert pq.read_table(tmp_path / "o.parquet").column("result.ser").to_pylist() == [0.5]


def test_store_is_picklable_and_reconnects(tmp_path):
    import pickle

    store = ResultStore(tmp_path / "s.sqlite")
    store.put({"kind": "a"}, {"v": 1}, seconds=0)
    clone = pickle.loads(pickle.dumps(store))
    assert clone.get({"kind": "a"}) == {"v": 1}


# --------------------------------------------------------------------------- concurrency


def _writer(path, wid, n, shared, start):
    start.wait()
    store = ResultStore(path, timeout=60)
    for i in range(n):
        store.put({"kind": "w", "writer": wid, "i": i}, {"v": wid * 1000 + i}, seconds=0.0)
        if i < shared:  # the same keys from every writer
            store.put({"kind": "w", "shared": i}, {"v": -i}, seconds=0.0)
    store.close()


def test_concurrent_writers_lose_nothing(tmp_path):
    """Several processes create and write one store at once: every row arrives, file stays sound."""
    path = str(tmp_path / "c.sqlite")  # does not exist yet: the writers race to create it
    ctx = multiprocessing.get_context("fork")  # fast start; each writer opens its own connection
    start = ctx.Event()
    n_writers, n, shared = 4, 40, 10
    procs = [ctx.Process(target=_writer, args=(path, w, n, shared, start)) for w in range(n_writers)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * n_writers
    store = ResultStore(path)
    assert store.check() == []
    assert len(store) == n_writers * n + shared
    for w in range(n_writers):
        for i in range(n):
            assert store.get({"kind": "w", "writer": w, "i": i}) == {"v": w * 1000 + i}
    for i in range(shared):
        rec = store.get_record({"kind": "w", "shared": i})
        assert rec["result"] == {"v": -i} and rec["attempts"] == n_writers


# --------------------------------------------------------------------------- damage and recovery


def _page_of(data, cfg, ps):
    text = json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
    off = data.find(text)
    assert off >= 0 and data.find(text, off + 1) < 0
    return off // ps


def test_foreign_file_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database\n" * 10)
    with pytest.raises(StoreCorruptError, match=r"notes\.sqlite.*not an SQLite database.*sweep recover"):
        ResultStore(path)
    rep = recover_store(path, tmp_path / "new.sqlite")
    assert rep["recovered"] == 0 and rep["sqlite_error"]
    assert len(ResultStore(tmp_path / "new.sqlite")) == 0


@pytest.mark.parametrize("damage", ["truncate", "middle", "header"])
def test_damaged_store_is_reported_and_intact_rows_recovered(tmp_path, damage):
    """Truncation, garbage pages and a destroyed header: a clear error naming the file, then
    every row on an undamaged page is recovered, and nothing recovered is wrong."""
    path = tmp_path / "s.sqlite"
    originals = _fill(path, 300, pad=40)
    data = path.read_bytes()
    ps = int.from_bytes(data[16:18], "big")
    npages = len(data) // ps
    rng = np.random.default_rng(5)
    if damage == "truncate":
        cut = (npages // 2) * ps + ps // 3
        bad_pages = set(range(cut // ps, npages))
        new = data[:cut]
    elif damage == "middle":
        lo, hi = (npages // 3) * ps, (npages // 3 + 2) * ps
        bad_pages = set(range(lo // ps, hi // ps))
        new = data[:lo] + rng.integers(0, 256, hi - lo, dtype=np.uint8).tobytes() + data[hi:]
    else:
        bad_pages = set()
        new = bytes(100) + data[100:]
    path.write_bytes(new)
    with pytest.raises(StoreCorruptError, match=r"s\.sqlite is damaged.*mdm-theory sweep recover"):
        store = ResultStore(path)
        store.rows()  # (for damage the quick check misses, the first full read reports it)
    rep = recover_store(path, tmp_path / "r.sqlite")
    rec = ResultStore(tmp_path / "r.sqlite")
    assert rec.check() == []
    rows = rec.rows()
    _assert_genuine(rows, originals)
    got = {r["key"] for r in rows}
    intact = {
        config_key(_cfg(i, 40)) for i in range(300) if _page_of(data, _cfg(i, 40), ps) not in bad_pages
    }
    assert intact <= got
    assert len(intact) >= 100  # the damage left most rows intact: the test is not vacuous
    if damage == "header":
        assert len(got) == len(originals)
    assert rep["recovered"] == len(rows)
    assert path.read_bytes() == new  # the damaged file is left as it was


def test_recovery_follows_overflow_pages(tmp_path):
    """Results larger than a page (overflow chains) are salvaged when SQLite cannot open the file."""
    path = tmp_path / "s.sqlite"
    originals = _fill(path, 20, result_pad=20_000)  # each result spans several 4 KiB pages
    damaged = bytearray(path.read_bytes())
    damaged[:100] = bytes(100)
    path.write_bytes(bytes(damaged))
    rep = recover_store(path, tmp_path / "r.sqlite")
    rows = ResultStore(tmp_path / "r.sqlite").rows()
    _assert_genuine(rows, originals)
    assert len(rows) == len(originals) == 21 and rep["via_pages"] == 21 and rep["sqlite_error"]


def test_recovery_reads_rows_only_in_the_write_ahead_log(tmp_path):
    """Rows committed by a writer that was killed live only in ``-wal``; they are salvaged even
    when the main file is destroyed."""
    path = tmp_path / "s.sqlite"
    originals = _fill(path, 5)
    live = ResultStore(path)
    wal_keys = set()
    for i in range(100, 110):  # committed, still only in s.sqlite-wal while `live` is open
        res = {"y": i * i, "blob": "w" * 9000}  # with overflow pages, inside the WAL
        live.put(_cfg(i), res, seconds=0.5)
        originals[config_key(_cfg(i))] = ("ok", res)
        wal_keys.add(config_key(_cfg(i)))
    crash = tmp_path / "crash"
    crash.mkdir()
    shutil.copyfile(path, crash / "s.sqlite")  # what a SIGKILL leaves on disk
    shutil.copyfile(str(path) + "-wal", crash / "s.sqlite-wal")
    live.close()
    # SQLite itself reads the WAL of an intact file:
    rep = recover_store(crash / "s.sqlite", tmp_path / "r1.sqlite")
    assert rep["recovered"] == len(originals) == 16 and rep["sqlite_error"] is None
    _assert_genuine(ResultStore(tmp_path / "r1.sqlite").rows(), originals)
    # ... and the page scan reads it when the main file is garbage:
    size = (crash / "s.sqlite").stat().st_size
    (crash / "s.sqlite").write_bytes(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes())
    rep = recover_store(crash / "s.sqlite", tmp_path / "r2.sqlite")
    rows = ResultStore(tmp_path / "r2.sqlite").rows()
    _assert_genuine(rows, originals)
    assert wal_keys <= {r["key"] for r in rows}
    # ... and the raw page scan alone decodes the WAL frames (overflow chains included):
    from mdm_exact.runtime.sqlite_file import _scan_pages

    scanned = {row[0] for row in _scan_pages((crash / "s.sqlite-wal").read_bytes(), wal=True) if len(row) == 14}
    assert wal_keys <= scanned


def test_recover_refuses_to_overwrite(tmp_path):
    _fill(tmp_path / "s.sqlite", 3)
    (tmp_path / "exists.sqlite").write_bytes(b"")
    with pytest.raises(StoreError, match="already exists"):
        recover_store(tmp_path / "s.sqlite", tmp_path / "exists.sqlite")
    with pytest.raises(FileNotFoundError):
        recover_store(tmp_path / "nope.sqlite", tmp_path / "r.sqlite")


@pytest.fixture(scope="module")
def template_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "s.sqlite"
    originals = _fill(path, 60, pad=30, result_pad=50)
    return _Template(path.read_bytes(), originals)


class _Template:
    """The template store's bytes and rows (with a short repr for hypothesis' reports)."""

    def __init__(self, data, originals):
        self.data, self.originals = data, originals

    def __repr__(self):
        return f"<template store, {len(self.data)} bytes>"


@settings(max_examples=15)
@given(start=st.floats(0.0, 1.0), length=st.integers(1, 20_000), seed=st.integers(0, 2**32 - 1))
def test_recovery_of_random_damage_returns_only_genuine_rows(tmp_path_factory, template_store, start, length, seed):
    """Whatever bytes are overwritten, recovery does not fail and never invents or alters a row."""
    tmp = tmp_path_factory.mktemp("rand")
    path = tmp / "s.sqlite"
    data, originals = bytearray(template_store.data), template_store.originals
    lo = int(start * (len(data) - 1))
    hi = min(len(data), lo + length)
    data[lo:hi] = np.random.default_rng(seed).integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    rep = recover_store(path, tmp / "r.sqlite")
    rows = ResultStore(tmp / "r.sqlite").rows()
    _assert_genuine(rows, originals)
    assert rep["recovered"] == len(rows)


def test_sqlite_sees_a_valid_wal_store(tmp_path):
    """The file is a plain SQLite database in WAL mode, readable by any SQLite client."""
    store = ResultStore(tmp_path / "s.sqlite")
    store.put({"kind": "a"}, {"v": 1}, seconds=0)
    conn = sqlite3.connect(tmp_path / "s.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT kind, status, result FROM results").fetchall() == [("a", "ok", '{"v": 1}')]
    conn.close()


# --------------------------------------------------------------------------- the one jsonable


def test_jsonable_conventions_for_non_finite_floats():
    from mdm_exact.runtime.serialize import jsonable

    obj = {"nan": np.float64(np.nan), "inf": float("inf"), "ninf": -np.inf, "x": np.float32(0.5)}
    assert jsonable(obj, nonfinite="null") == {"nan": None, "inf": None, "ninf": None, "x": 0.5}
    assert jsonable(obj, nonfinite="inf-string") == {"nan": None, "inf": "inf", "ninf": "-inf", "x": 0.5}
    assert jsonable(obj, nonfinite="string") == {"nan": "nan", "inf": "inf", "ninf": "-inf", "x": 0.5}
    kept = jsonable(obj)
    assert np.isnan(kept["nan"]) and kept["inf"] == np.inf and kept["ninf"] == -np.inf
    assert all(type(v) is float for v in kept.values())  # NumPy scalars become Python floats
    with pytest.raises(ValueError, match="nonfinite: expected one of"):
        jsonable(1.0, nonfinite="drop")


def test_jsonable_plain_types_numpy_sets_and_to_dict():
    from mdm_exact.runtime.serialize import jsonable

    class R:
        def to_dict(self):
            return {"a": np.arange(2)}

    got = jsonable({"t": (1, np.int64(2)), "s": {3, 1}, "r": R(), "b": np.bool_(True), np.int64(4): "k"})
    assert got == {"t": [1, 2], "s": [1, 3], "r": {"a": [0, 1]}, "b": True, 4: "k"}
    assert type(got["b"]) is bool and type(got["t"][1]) is int
    with pytest.raises(TypeError, match="cannot store a value of type object"):
        jsonable([object()])


def test_insert_rows_copies_verified_rows_only(tmp_path):
    from mdm_exact.runtime.store import COLUMNS

    src = ResultStore(tmp_path / "a.sqlite")
    src.put({"kind": "square", "x": 1}, {"y": 1}, seconds=0.5)
    src.put_error({"kind": "square", "x": 2}, "boom", seconds=0.1)
    rows = [tuple(r[c] if c not in ("config", "result") else (None if r[c] is None else json.dumps(r[c]))
                  for c in COLUMNS) for r in src.rows()]
    dst = ResultStore(tmp_path / "b.sqlite")
    assert dst.insert_rows(rows) == 2
    assert [(r["status"], r["seconds"], r["finished_at"]) for r in dst.rows()] == [
        (r["status"], r["seconds"], r["finished_at"]) for r in src.rows()]
    with pytest.raises(StoreError, match="stored already"):
        dst.insert_rows(rows[:1])
    forged = list(rows[0])
    forged[COLUMNS.index("config")] = json.dumps({"kind": "square", "x": 3})
    with pytest.raises(StoreError, match="not the hash of its config"):
        ResultStore(tmp_path / "c.sqlite").insert_rows([tuple(forged)])
    with pytest.raises(StoreError, match="columns"):
        dst.insert_rows([rows[0][:3]])
    assert len(dst) == 2
