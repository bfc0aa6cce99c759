"""A durable results store for sweeps: one local SQLite file, safe for concurrent writers.

Every cell of a sweep (see :mod:`mdm_exact.runtime.sweep`) is stored the moment it finishes, keyed by
a hash of its configuration and the package version, so that an interrupted sweep loses
nothing and a rerun skips what is done. Only the standard library is used (``sqlite3`` in
WAL mode with a busy timeout; no server).

Schema (``schema_version`` 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)          -- schema_version, created_at
    results(
        key             TEXT PRIMARY KEY,  -- sha256 of canonical JSON {config, package_version}
        kind            TEXT NOT NULL,     -- config["kind"]
        config          TEXT NOT NULL,     -- canonical JSON of the cell configuration
        status          TEXT NOT NULL,     -- 'ok' or 'error'
        result          TEXT,              -- JSON of the result dict (status 'ok')
        error           TEXT,              -- traceback (status 'error')
        seconds         REAL,              -- compute time of the cell
        package_version TEXT NOT NULL,
        git_commit      TEXT,
        host            TEXT,
        pid             INTEGER,           -- process that wrote the row
        finished_at     TEXT NOT NULL,     -- ISO 8601 UTC
        attempts        INTEGER NOT NULL   -- how many times this key was written
    )

A damaged file (truncated, overwritten pages, foreign file) raises :class:`StoreCorruptError`
naming the file and the way out: :func:`recover_store` (``mdm-theory sweep recover``) copies
every row that can still be read (through SQLite, then by scanning the raw b-tree pages of
the file and its write-ahead log) into a fresh store. Recovered rows are verified: a row is
kept only if its key is the hash of its configuration.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import math
import os
import socket
import sqlite3
import struct
import threading
import time

from mdm_exact.runtime.serialize import jsonable

__all__ = [
    "ResultStore",
    "StoreError",
    "StoreCorruptError",
    "canonical_json",
    "config_key",
    "recover_store",
    "SCHEMA_VERSION",
    "COLUMNS",
]

SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"
COLUMNS = _COLUMNS = (  # the columns of ``results``, in schema order
    "key",
    "kind",
    "config",
    "status",
    "result",
    "error",
    "seconds",
    "package_version",
    "git_commit",
    "host",
    "pid",
    "finished_at",
    "attempts",
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    result TEXT,
    error TEXT,
    seconds REAL,
    package_version TEXT NOT NULL,
    git_commit TEXT,
    host TEXT,
    pid INTEGER,
    finished_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS results_kind_status ON results (kind, status);
"""


class StoreError(ValueError):
    """A results store cannot be used (locked for too long, wrong schema, bad input)."""


class StoreCorruptError(StoreError):
    """The store file is damaged or is not a results store; see :func:`recover_store`."""


# --------------------------------------------------------------------------- keys and JSON


def canonical_json(config: dict) -> str:
    """Canonical JSON of a configuration: sorted keys, no spaces, tuples as lists.

    Raises
    ------
    ValueError
        If the configuration holds NaN/inf or objects that have no JSON form.
    """
    if not isinstance(config, dict):
        raise StoreError(f"a cell configuration must be a dict, got {type(config).__name__}")
    try:
        return json.dumps(jsonable(config), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"cell configuration {config!r:.200} cannot be hashed: {exc}") from None


def config_key(config: dict, package_version: str | None = None) -> str:
    """The store key of ``config``: sha256 of canonical JSON of the config and package version."""
    if package_version is None:
        from mdm_exact import __version__ as package_version
    payload = json.dumps(
        {"config": json.loads(canonical_json(config)), "package_version": package_version},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _result_json(result) -> str:
    if not isinstance(result, dict):
        raise StoreError(f"a cell result must be a dict, got {type(result).__name__}")
    try:
        # allow_nan: exact results legitimately hold inf (e.g. KL(p||q) = inf); Python reads it back.
        return json.dumps(jsonable(result), sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"cell result cannot be stored as JSON: {exc}") from None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


# --------------------------------------------------------------------------- the store


class ResultStore:
    """Durable store of finished sweep cells in a single local SQLite file.

    Parameters
    ----------
    path : str or os.PathLike
        The SQLite file; created (with its directory) when missing unless ``create=False``.
        Keep it on a local disk: SQLite's WAL mode does not work over network file systems.
        With the Dask executor only the client process writes, so the file stays local.
    timeout : float
        Busy timeout in seconds: how long a writer waits for another writer's lock.
    create : bool
        Create the file if it does not exist (else raise ``FileNotFoundError``).
    verify : bool
        Run SQLite's ``PRAGMA quick_check`` on open, so that a damaged file is reported at
        once (cost: one pass over the file).

    Notes
    -----
    Every write is one ``BEGIN IMMEDIATE`` transaction with ``synchronous=FULL``: once
    :meth:`put` returns, the row survives a crash (SIGKILL) of this process. Several
    processes may open and write the same file at once; SQLite serialises them.

    Raises
    ------
    StoreCorruptError
        If the file is not an SQLite database or is damaged (message names the file and the
        recovery command).
    """

    def __init__(self, path, *, timeout: float = 60.0, create: bool = True, verify: bool = True):
        self.path = os.fspath(path)
        self.timeout = float(timeout)
        self._lock = threading.RLock()
        self._conn_obj = None
        self._conn_pid = None
        exists = os.path.exists(self.path)
        if not exists and not create:
            raise FileNotFoundError(f"results store {self.path} does not exist")
        if exists:
            self._check_header()
        else:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
        self._init_schema()
        if verify and exists:
            problems = self.check(quick=True)
            if problems:
                raise self._corrupt(f"integrity check failed: {'; '.join(problems[:3])}")

    # -- connection handling ---------------------------------------------------------------
    def _corrupt(self, what) -> StoreCorruptError:
        return StoreCorruptError(
            f"results store {self.path} is damaged: {what}. Finished cells that can still be read "
            f"are salvaged by: mdm-theory sweep recover {self.path} --out {self.path}.recovered.sqlite "
            f"(see docs/sweeps.md, 'Recovering a damaged store')"
        )

    def _check_header(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(100)
        except IsADirectoryError:
            raise StoreError(f"results store {self.path} is a directory, expected an SQLite file") from None
        if len(head) == 0:
            return  # an empty file is a fresh database for SQLite
        if len(head) < 100 or head[:16] != _SQLITE_MAGIC:
            raise self._corrupt(f"not an SQLite database (file header {head[:16]!r}, {os.path.getsize(self.path)} bytes)")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        # Switching to WAL needs a brief exclusive lock; retry while another process holds it.
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    conn.close()
                    raise
                time.sleep(0.05)
        if str(mode).lower() != "wal":
            conn.close()
            raise StoreError(f"results store {self.path}: could not switch SQLite to WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def _conn(self) -> sqlite3.Connection:
        # One connection per process: a connection must never cross a fork.
        if self._conn_obj is None or self._conn_pid != os.getpid():
            self._conn_obj = self._guard(self._connect)
            self._conn_pid = os.getpid()
        return self._conn_obj

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            msg = str(exc)
            if "locked" in msg or "busy" in msg:
                raise StoreError(
                    f"results store {self.path} stayed locked by another process for more than "
                    f"{self.timeout:g} s ({msg})"
                ) from None
            if "malformed" in msg or "not a database" in msg:
                raise self._corrupt(msg) from None
            raise StoreError(f"results store {self.path}: {msg}") from None
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(str(exc)) from None

    def _write(self, sql_and_params):
        """Run statements in one immediate transaction."""

        def run():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = [conn.execute(sql, params).rowcount for sql, params in sql_and_params]
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return out

        with self._lock:
            return self._guard(run)

    def _read(self, sql, params=()):
        with self._lock:
            return self._guard(lambda: self._conn().execute(sql, params).fetchall())

    def _init_schema(self) -> None:
        def run():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    conn.execute(stmt)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?), ('created_at', ?)",
                    (str(SCHEMA_VERSION), _now()),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            return version

        with self._lock:
            version = self._guard(run)
        if int(version) != SCHEMA_VERSION:
            raise StoreError(
                f"results store {self.path} has schema version {version}; this mdm-theory reads version {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        """Close this process's connection (the file stays valid without it)."""
        with self._lock:
            if self._conn_obj is not None and self._conn_pid == os.getpid():
                self._conn_obj.close()
            self._conn_obj = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):  # picklable: reconnects in the new process
        return {"path": self.path, "timeout": self.timeout}

    def __setstate__(self, state):
        self.path, self.timeout = state["path"], state["timeout"]
        self._lock = threading.RLock()
        self._conn_obj = None
        self._conn_pid = None

    def __repr__(self):
        return f"ResultStore({self.path!r})"

    # -- the API ---------------------------------------------------------------------------
    @staticmethod
    def key(config: dict) -> str:
        """The key under which ``config`` is stored for this package version."""
        return config_key(config)

    def get(self, config: dict) -> dict | None:
        """The finished result for ``config`` (this package version), or None.

        Errors are not results: a cell whose last run failed gives None (and is rerun).
        """
        rows = self._read("SELECT result FROM results WHERE key = ? AND status = 'ok'", (config_key(config),))
        return json.loads(rows[0][0]) if rows else None

    def get_record(self, config: dict) -> dict | None:
        """The full stored row for ``config`` (any status), or None."""
        rows = self._read(f"SELECT {', '.join(_COLUMNS)} FROM results WHERE key = ?", (config_key(config),))
        return _row_dict(rows[0]) if rows else None

    def _upsert(self, config, status, result_json, error, seconds, *, keep_ok: bool):
        from mdm_exact import __version__
        from mdm_exact.runtime.provenance import git_commit

        if seconds is None or not math.isfinite(float(seconds)) or float(seconds) < 0:
            raise StoreError(f"seconds must be a finite number >= 0, got {seconds!r}")
        kind = config.get("kind")
        if not isinstance(kind, str) or not kind:
            raise StoreError(f"a cell configuration needs a string 'kind', got {config!r:.200}")
        values = (
            config_key(config),
            kind,
            canonical_json(config),
            status,
            result_json,
            error,
            float(seconds),
            __version__,
            _cached_commit(git_commit),
            socket.gethostname(),
            os.getpid(),
            _now(),
            1,
        )
        cols = ", ".join(_COLUMNS)
        marks = ", ".join("?" * len(_COLUMNS))
        update = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:-1])
        where = " WHERE results.status != 'ok'" if keep_ok else ""
        sql = (
            f"INSERT INTO results ({cols}) VALUES ({marks}) ON CONFLICT (key) DO UPDATE SET {update}, "
            f"attempts = results.attempts + 1{where}"
        )
        (count,) = self._write([(sql, values)])
        return count > 0

    def put(self, config: dict, result: dict, *, seconds: float) -> None:
        """Store the finished ``result`` of ``config`` (replacing any earlier row of that key)."""
        self._upsert(config, "ok", _result_json(result), None, seconds, keep_ok=False)

    def put_error(self, config: dict, error: str, *, seconds: float) -> bool:
        """Record that ``config`` failed with ``error`` (a traceback).

        A finished ('ok') row is never overwritten by an error, so a failed recomputation
        (``--force``) cannot destroy work. Returns whether the error was recorded.
        """
        return self._upsert(config, "error", None, str(error), seconds, keep_ok=True)

    def insert_rows(self, rows) -> int:
        """Copy whole rows (tuples in :data:`COLUMNS` order) into the store, in one transaction.

        For recovery and migrations: every column is taken as given (no new timestamp, no
        recomputed provenance). Each row's key must be the hash of its configuration and
        package version, and no key may be stored already.

        Raises
        ------
        StoreError
            For a row of the wrong width, a key that is not its config's hash, or a key that
            is already in the store (nothing is written then).
        """
        rows = [tuple(r) for r in rows]
        for r in rows:
            if len(r) != len(_COLUMNS):
                raise StoreError(f"a row needs the {len(_COLUMNS)} columns {', '.join(_COLUMNS)}, got {len(r)} values")
            rec = dict(zip(_COLUMNS, r))
            if config_key(json.loads(rec["config"]), rec["package_version"]) != rec["key"]:
                raise StoreError(f"row {str(rec['key'])[:16]}: the key is not the hash of its config and version")
        if not rows:
            return 0
        keys = [r[0] for r in rows]
        if len(set(keys)) != len(keys):
            raise StoreError("insert_rows: the same key twice among the rows")
        taken = [k for k in keys if self._read("SELECT 1 FROM results WHERE key = ?", (k,))]
        if taken:
            raise StoreError(f"results store {self.path}: key(s) {', '.join(k[:16] for k in taken[:3])} stored already")
        marks = ", ".join("?" * len(_COLUMNS))
        self._write([(f"INSERT INTO results ({', '.join(_COLUMNS)}) VALUES ({marks})", r) for r in rows])
        return len(rows)

    def rows(self, **filters) -> list[dict]:
        """All stored rows as a list of dicts (a table), oldest first.

        Each row has the columns of the schema, with ``config`` and ``result`` decoded to
        dicts (``result`` is None for errors). A filter ``name=value`` keeps rows whose column
        ``name`` (e.g. ``kind``, ``status``, ``package_version``) or, failing that, whose
        config parameter ``name`` (e.g. ``language="paper-2gram"``, ``L=6``) equals value; a
        list/tuple/set value means "any of these".

        Examples
        --------
        >>> store.rows(kind="exact", status="ok", L=[4, 6])  # doctest: +SKIP
        """
        sql = f"SELECT {', '.join(_COLUMNS)} FROM results"
        where, params, config_filters = [], [], {}
        for name, value in filters.items():
            values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
            if name in ("config", "result"):
                raise StoreError(f"cannot filter on the whole {name!r}; filter on its parameters instead")
            if name in _COLUMNS:
                where.append(f"{name} IN ({', '.join('?' * len(values))})")
                params.extend(values)
            else:
                config_filters[name] = values
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY finished_at, key"
        out = []
        for raw in self._read(sql, params):
            row = _row_dict(raw)
            if all(row["config"].get(k, _MISSING) in vs for k, vs in config_filters.items()):
                out.append(row)
        return out

    def __len__(self) -> int:
        return self._read("SELECT count(*) FROM results")[0][0]

    def summary(self) -> dict:
        """Counts by kind and status, total compute seconds, package versions, file size."""
        by = {}
        for kind, status, n, secs in self._read(
            "SELECT kind, status, count(*), coalesce(sum(seconds), 0) FROM results GROUP BY kind, status"
        ):
            d = by.setdefault(kind, {"ok": 0, "error": 0, "seconds": 0.0})
            d[status] = n
            d["seconds"] += secs
        versions = [v for (v,) in self._read("SELECT DISTINCT package_version FROM results ORDER BY 1")]
        return {
            "path": self.path,
            "bytes": os.path.getsize(self.path),
            "cells": sum(d["ok"] + d["error"] for d in by.values()),
            "ok": sum(d["ok"] for d in by.values()),
            "error": sum(d["error"] for d in by.values()),
            "seconds": sum(d["seconds"] for d in by.values()),
            "by_kind": by,
            "package_versions": versions,
        }

    def check(self, *, quick: bool = False) -> list[str]:
        """SQLite's integrity check; returns the list of problems (empty when the file is sound)."""
        pragma = "quick_check" if quick else "integrity_check"
        res = [r[0] for r in self._read(f"PRAGMA {pragma}")]
        return [] if res == ["ok"] else res

    def export_csv(self, path, **filters) -> int:
        """Write the rows (flattened, see :func:`flatten_row`) to a CSV file; returns the count."""
        flat = [flatten_row(r) for r in self.rows(**filters)]
        columns = _columns_of(flat)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="raise")
            writer.writeheader()
            for r in flat:
                writer.writerow({k: _csv_cell(r.get(k)) for k in columns})
        return len(flat)

    def export_parquet(self, path, **filters) -> int:
        """Write the flattened rows to Parquet; needs ``pyarrow`` (not a dependency)."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise StoreError("Parquet export needs pyarrow, which is not installed; use --csv instead") from None
        flat = [flatten_row(r) for r in self.rows(**filters)]
        columns = _columns_of(flat)
        table = pa.table({c: [_csv_cell(r.get(c)) if isinstance(r.get(c), (list, dict)) else r.get(c) for r in flat] for c in columns})
        pq.write_table(table, path)
        return len(flat)


_MISSING = object()
_COMMIT = {}


def _cached_commit(git_commit):
    if "c" not in _COMMIT:
        _COMMIT["c"] = git_commit()
    return _COMMIT["c"]


def _row_dict(raw) -> dict:
    row = dict(zip(_COLUMNS, raw))
    row["config"] = json.loads(row["config"])
    row["result"] = json.loads(row["result"]) if row["result"] is not None else None
    return row


def flatten_row(row: dict) -> dict:
    """One flat dict per row: the schema columns, then ``config.<name>`` and ``result.<name>``.

    Nested values (lists, dicts) stay as Python objects; :meth:`ResultStore.export_csv`
    writes them as JSON.
    """
    flat = {k: row[k] for k in _COLUMNS if k not in ("config", "result")}
    for name, value in (row.get("config") or {}).items():
        flat[f"config.{name}"] = value
    for name, value in (row.get("result") or {}).items():
        flat[f"result.{name}"] = value
    return flat


def _columns_of(flat_rows) -> list:
    cols = [c for c in _COLUMNS if c not in ("config", "result")]
    seen = set(cols)
    for r in flat_rows:
        for k in r:
            if k not in seen:
                seen.add(k)
                cols.append(k)
    return cols


def _csv_cell(v):
    if isinstance(v, (list, dict)):
        return json.dumps(v, sort_keys=True, allow_nan=True)
    return v


# --------------------------------------------------------------------------- recovery


def recover_store(source, dest) -> dict:
    """Copy every readable, verified row of a (possibly damaged) store into a new store.

    Two passes: (1) read rows through SQLite until it reports damage; (2) scan the raw
    pages of ``source`` and of its write-ahead log ``source-wal`` for b-tree leaf cells
    that decode to a results row. A row is kept only if its key equals the hash of its
    configuration and version (so garbage cannot pass as a result); of several versions of
    a key the latest ``finished_at`` wins, and an 'ok' row beats an 'error' row.

    Parameters
    ----------
    source : path of the damaged store (read only; never modified).
    dest : path of the new store; must not exist yet.

    Returns
    -------
    dict
        ``recovered`` (rows written), ``ok``, ``error``, ``via_sqlite``, ``via_pages``,
        ``sqlite_error`` (the message of the SQLite failure, or None), ``source``, ``dest``.
    """
    source, dest = os.fspath(source), os.fspath(dest)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"results store {source} does not exist")
    if os.path.exists(dest):
        raise StoreError(f"recovery target {dest} already exists; choose a new file")
    if os.path.abspath(source) == os.path.abspath(dest):
        raise StoreError("recovery target must differ from the source")

    found: dict[str, tuple] = {}

    def offer(row: tuple) -> bool:
        if len(row) != len(_COLUMNS):
            return False
        rec = dict(zip(_COLUMNS, row))
        try:
            config = json.loads(rec["config"])
            ok = (
                isinstance(rec["key"], str)
                and isinstance(rec["package_version"], str)
                and rec["status"] in ("ok", "error")
                and isinstance(rec["finished_at"], str)
                and config_key(config, rec["package_version"]) == rec["key"]
            )
            if ok and rec["status"] == "ok":
                json.loads(rec["result"])
        except (TypeError, ValueError):
            return False
        if not ok:
            return False
        old = found.get(rec["key"])
        rank = (rec["status"] == "ok", rec["finished_at"])
        if old is None or rank > (old[3] == "ok", old[11]):
            found[rec["key"]] = tuple(row)
        return True

    # Pass 1: through SQLite, on a private copy (never touch the damaged file or its WAL).
    via_sqlite, sqlite_error = set(), None
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "copy.sqlite")
        shutil.copyfile(source, copy)
        if os.path.exists(source + "-wal"):
            shutil.copyfile(source + "-wal", copy + "-wal")
        conn = None
        try:
            conn = sqlite3.connect(copy, isolation_level=None)
            for row in conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM results"):
                if offer(row):
                    via_sqlite.add(row[0])
        except sqlite3.DatabaseError as exc:
            sqlite_error = str(exc)
        finally:
            if conn is not None:
                conn.close()

    # Pass 2: raw pages of the file and of its WAL.
    via_pages = set()
    for blob_path in (source, source + "-wal"):
        if not os.path.exists(blob_path):
            continue
        with open(blob_path, "rb") as fh:
            data = fh.read()
        for row in _scan_pages(data, wal=blob_path.endswith("-wal")):
            if offer(row):
                via_pages.add(row[0])

    out = ResultStore(dest, verify=False)
    rows = list(found.values())
    out.insert_rows(rows)
    out.close()
    n_ok = sum(1 for r in rows if r[3] == "ok")
    return {
        "source": source,
        "dest": dest,
        "recovered": len(rows),
        "ok": n_ok,
        "error": len(rows) - n_ok,
        "via_sqlite": len(via_sqlite),
        "via_pages": len(via_pages - via_sqlite),
        "sqlite_error": sqlite_error,
    }


def _varint(buf, i):
    """SQLite varint at ``buf[i]``: (value, next index)."""
    v = 0
    for j in range(8):
        b = buf[i + j]
        v = (v << 7) | (b & 0x7F)
        if b < 0x80:
            return v, i + j + 1
    return (v << 8) | buf[i + 8], i + 9


def _decode_record(payload: bytes):
    hsize, i = _varint(payload, 0)
    if hsize > len(payload) or hsize < 1:
        raise ValueError("bad record header")
    types = []
    while i < hsize:
        t, i = _varint(payload, i)
        types.append(t)
    pos = hsize
    values = []
    for t in types:
        if t == 0:
            values.append(None)
        elif 1 <= t <= 6:
            n = (1, 2, 3, 4, 6, 8)[t - 1]
            values.append(int.from_bytes(payload[pos : pos + n], "big", signed=True))
            pos += n
        elif t == 7:
            values.append(struct.unpack(">d", payload[pos : pos + 8])[0])
            pos += 8
        elif t in (8, 9):
            values.append(t - 8)
        elif t >= 12:
            n = (t - 12) // 2
            chunk = payload[pos : pos + n]
            values.append(chunk.decode("utf-8") if t % 2 else bytes(chunk))
            pos += n
        else:
            raise ValueError("reserved serial type")
        if pos > len(payload):
            raise ValueError("record runs past its payload")
    return tuple(values)


def _scan_pages(data: bytes, *, wal: bool):
    """Yield decoded rows of every table-leaf cell found in a database or WAL image."""
    if wal:
        if len(data) < 32:
            return
        page_sizes = [int.from_bytes(data[8:12], "big")]
    else:
        ps = int.from_bytes(data[16:18], "big") if data[:16] == _SQLITE_MAGIC else 0
        ps = 65536 if ps == 1 else ps
        page_sizes = [ps] if ps >= 512 and ps & (ps - 1) == 0 else [1024 << k for k in range(7)]
    for ps in page_sizes:
        if not (512 <= ps <= 65536):
            continue
        if wal:
            pages = {}
            off = 32
            while off + 24 + ps <= len(data):
                pgno = int.from_bytes(data[off : off + 4], "big")
                pages.setdefault(pgno, []).append(data[off + 24 : off + 24 + ps])
                off += 24 + ps
            images = [(pgno, img) for pgno, imgs in pages.items() for img in imgs]

            def page_of(pgno, _pages=pages, _main=None):
                imgs = _pages.get(pgno)
                return imgs[-1] if imgs else None

        else:
            npages = len(data) // ps + (1 if len(data) % ps else 0)
            images = [(k + 1, data[k * ps : (k + 1) * ps]) for k in range(npages)]

            def page_of(pgno, _ps=ps):
                start = (pgno - 1) * _ps
                return data[start : start + _ps] if 0 < pgno and start + _ps <= len(data) else None

        for pgno, img in images:
            yield from _leaf_cells(img, pgno, ps, page_of)


def _leaf_cells(img: bytes, pgno: int, ps: int, page_of):
    hdr = 100 if pgno == 1 else 0
    if len(img) < hdr + 8 or img[hdr] != 0x0D:
        return
    ncells = int.from_bytes(img[hdr + 3 : hdr + 5], "big")
    U = ps  # no reserved bytes in stores we create
    X = U - 35
    M = ((U - 12) * 32 // 255) - 23
    for j in range(ncells):
        try:
            ptr = int.from_bytes(img[hdr + 8 + 2 * j : hdr + 10 + 2 * j], "big")
            if not (hdr + 8 <= ptr < len(img)):
                continue
            P, i = _varint(img, ptr)
            _, i = _varint(img, i)  # rowid
            if P <= X:
                payload = img[i : i + P]
                if len(payload) != P:
                    continue
            else:
                K = M + ((P - M) % (U - 4))
                local = K if K <= X else M
                payload = bytearray(img[i : i + local])
                nxt = int.from_bytes(img[i + local : i + local + 4], "big")
                hops = 0
                while len(payload) < P and nxt and hops < 100_000:
                    page = page_of(nxt)
                    if page is None:
                        break
                    nxt = int.from_bytes(page[:4], "big")
                    payload += page[4 : 4 + min(U - 4, P - len(payload))]
                    hops += 1
                if len(payload) != P:
                    continue
                payload = bytes(payload)
            yield _decode_record(payload)
        except (ValueError, IndexError, UnicodeDecodeError, struct.error):
            continue
