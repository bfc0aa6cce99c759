"""A durable results store for sweeps: one local SQLite file, safe for concurrent writers.

Every cell of a sweep (see :mod:`mdm_exact.runtime.sweep`) is stored the moment it finishes, keyed by
a hash of its configuration and the package version, so that an interrupted sweep loses
nothing and a rerun skips what is done. Only the standard library is used (``sqlite3`` in
WAL mode with a busy timeout; no server).

Schema (``schema_version`` 2)::

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
        attempts        INTEGER NOT NULL,  -- how many times this key was written
        checksum        TEXT NOT NULL      -- sha256 of the row's content (see row_checksum)
    )
    claims(key TEXT PRIMARY KEY, owner TEXT, expires REAL)  -- cells being computed (leases)

Every read verifies a row's checksum, so a changed byte in a stored result cannot pass as
a result: :meth:`ResultStore.get`, :meth:`~ResultStore.rows` and :meth:`~ResultStore.summary`
raise :class:`StoreCorruptError` (pointing to ``recover``), and :func:`recover_store` drops
the row. A version-1 store (no checksums) is migrated when a writer opens it: the column is
added and filled in for the rows that pass SQLite's integrity check (those rows were verified
only by their key hash before). Before any connection is made, the write-ahead log is checked
frame by frame: a log whose committed frames do not verify is reported as damage (SQLite
itself would silently drop those frames and then checkpoint the log away), and nothing is
opened, so the evidence stays for ``recover``. ``readonly=True`` (``sweep status``/``export``)
opens without writing anything.

Concurrent sweeps on one store compute each cell once: a sweep *claims* a cell (a lease of
``lease_seconds``, renewed while the cell runs) before computing it, skips cells claimed by
a live sweep, waits for their results, and takes over a cell whose lease expired (its
worker died).

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
import threading
import time
import urllib.parse

from mdm_exact.runtime.serialize import jsonable
from mdm_exact.runtime.sqlite_file import _SQLITE_MAGIC, _scan_pages, wal_damage

__all__ = [
    "ResultStore",
    "StoreError",
    "StoreCorruptError",
    "canonical_json",
    "config_key",
    "recover_store",
    "row_checksum",
    "wal_damage",
    "SCHEMA_VERSION",
    "COLUMNS",
]

SCHEMA_VERSION = 2
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
    "checksum",
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
    attempts INTEGER NOT NULL DEFAULT 1,
    checksum TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_kind_status ON results (kind, status);
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL);
"""
_CHECKED = ("key", "kind", "config", "status", "result", "error", "seconds", "package_version", "git_commit",
            "finished_at")


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


def row_checksum(rec: dict) -> str:
    """sha256 of a row's content: key, kind, config, status, result, error, seconds, version,
    commit and finish time (not ``host``/``pid``/``attempts``, which are bookkeeping).

    ``config`` and ``result`` enter as decoded JSON values, so re-encoding a row keeps its
    checksum and a changed digit changes it.
    """
    vals = []
    for c in _CHECKED:
        v = rec.get(c)
        if c in ("config", "result") and v is not None:  # of the decoded value: re-encoding keeps it
            v = json.loads(v) if isinstance(v, str) else v
        vals.append(v)
    payload = json.dumps(vals, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _row_problem(rec: dict) -> str | None:
    """Why a stored row is not genuine (None when it is)."""
    if rec.get("checksum") is None and rec.get("_legacy"):
        return None
    try:
        if row_checksum(rec) != rec.get("checksum"):
            return "its checksum does not match its content (changed bytes)"
    except (TypeError, ValueError):
        return "it cannot be read"
    return None


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
    readonly : bool
        Open without writing anything (no schema, no migration, no checkpoint of the
        write-ahead log, no new files when the store has no log); writes raise StoreError.

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

    def __init__(self, path, *, timeout: float = 60.0, create: bool = True, verify: bool = True,
                 readonly: bool = False):
        self.path = os.fspath(path)
        self.timeout = float(timeout)
        self.readonly = bool(readonly)
        self._legacy = False
        self._lock = threading.RLock()
        self._conn_obj = None
        self._conn_pid = None
        exists = os.path.exists(self.path)
        if not exists and (not create or self.readonly):
            raise FileNotFoundError(f"results store {self.path} does not exist")
        if not exists:
            parent = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(parent):
                raise StoreError(f"results store {self.path}: the folder {parent} does not exist")
            exists = not self._create_atomically()
        if exists:
            self._check_header()
            damage = wal_damage(self.path)
            if damage:
                raise self._corrupt(f"its write-ahead log {self.path}-wal is damaged ({damage}); nothing was "
                                    f"opened, so the log is kept as it is")
        if self.readonly:
            self._check_schema_readonly()
        else:
            self._init_schema()
        if verify and exists:
            problems = self.check(quick=True)
            if problems:
                raise self._corrupt(f"integrity check failed: {'; '.join(problems[:3])}")

    # -- connection handling ---------------------------------------------------------------
    def _corrupt(self, what) -> StoreCorruptError:
        what = " ".join(str(what).split())  # one line (SQLite's integrity report has several)
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
            raise self._corrupt("the file is empty (0 bytes), so it is not a results store (a store that lost "
                                "its content, or a file created by something else); move it away to start a new store")
        if len(head) < 100 or head[:16] != _SQLITE_MAGIC:
            raise self._corrupt(f"not an SQLite database (file header {head[:16]!r}, {os.path.getsize(self.path)} bytes)")

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            # No log: immutable (SQLite creates no -wal/-shm); a log: mode=ro never checkpoints it.
            mode = "mode=ro" if os.path.exists(self.path + "-wal") else "mode=ro&immutable=1"
            uri = "file:" + urllib.parse.quote(os.path.abspath(self.path)) + "?" + mode
            conn = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            return conn
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
        if self.readonly:
            raise StoreError(f"results store {self.path} was opened read-only")

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
                fresh = not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'results'").fetchall()
                for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    conn.execute(stmt)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?), ('created_at', ?)",
                    (str(SCHEMA_VERSION if fresh else 1), _now()),
                )
                (old,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if str(old) == "1":
                    self._migrate_v1(conn)
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

    def _create_atomically(self) -> bool:
        """Write a new store beside ``path`` and link it into place (never a 0-byte store file).

        Returns False when another process created the file first (then it is opened).
        """
        tmp = f"{self.path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        other = ResultStore.__new__(ResultStore)
        other.__setstate__({"path": tmp, "timeout": self.timeout})
        try:
            other._init_schema()
            other.close()
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                return False
            except OSError:  # no hard links here: create in place
                return True
            return True
        finally:
            for f in (tmp, tmp + "-wal", tmp + "-shm"):
                if os.path.exists(f):
                    os.remove(f)

    def _migrate_v1(self, conn) -> None:
        """Version 1 -> 2 (inside the caller's transaction): the checksum column, filled in."""
        problems = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise self._corrupt(f"integrity check failed: {'; '.join(problems[:3])}")
        conn.execute("ALTER TABLE results ADD COLUMN checksum TEXT")
        for raw in conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM results").fetchall():
            rec = dict(zip(_COLUMNS, raw))
            conn.execute("UPDATE results SET checksum = ? WHERE key = ?", (row_checksum(rec), rec["key"]))
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    def _check_schema_readonly(self) -> None:
        def run():
            conn = self._conn()
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"meta", "results"} <= names:
                return None
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            return None if row is None else row[0]

        with self._lock:
            version = self._guard(run)
        if version is None:
            raise self._corrupt("it has no results table (not a results store)")
        if str(version) not in ("1", str(SCHEMA_VERSION)):
            raise StoreError(
                f"results store {self.path} has schema version {version}; this mdm-theory reads versions 1 and {SCHEMA_VERSION}"
            )
        self._legacy = str(version) == "1"

    def _select(self) -> str:
        """The column list of a full-row SELECT (a version-1 store has no checksum)."""
        return ", ".join(c if c != "checksum" or not self._legacy else "NULL" for c in _COLUMNS)

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
        return {"path": self.path, "timeout": self.timeout, "readonly": self.readonly, "legacy": self._legacy}

    def __setstate__(self, state):
        self.path, self.timeout = state["path"], state["timeout"]
        self.readonly, self._legacy = state.get("readonly", False), state.get("legacy", False)
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
        rec = self.get_record(config)
        return rec["result"] if rec is not None and rec["status"] == "ok" else None

    def get_record(self, config: dict) -> dict | None:
        """The full stored row for ``config`` (any status), or None.

        Raises
        ------
        StoreCorruptError
            If the row's checksum does not match its content.
        """
        rows = self._read(f"SELECT {self._select()} FROM results WHERE key = ?", (config_key(config),))
        return self._verified(rows[0]) if rows else None

    def _verified(self, raw) -> dict:
        rec = dict(zip(_COLUMNS, raw))
        rec["_legacy"] = self._legacy
        problem = _row_problem(rec)
        if problem is None:
            try:
                return _row_dict(raw)
            except (TypeError, ValueError) as exc:
                problem = f"it cannot be decoded ({exc})"
        raise self._corrupt(f"the stored row {str(rec.get('key'))[:16]} ({str(rec.get('config'))[:80]}) is damaged: {problem}")

    # -- claims: each cell computed once by concurrent sweeps --------------------------------
    def claim(self, keys, owner: str, lease_seconds: float, *, alive=None) -> dict:
        """Try to claim ``keys`` for ``owner`` for ``lease_seconds``; one transaction.

        Returns ``{key: state}`` with state ``"claimed"`` (now ours), ``"taken"`` (a live
        lease of another owner) or ``"expired"`` (another owner's lease ran out, or
        ``alive(other_owner)`` is False: taken over, so also ours now).
        """
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        out = {}

        def run():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                for k in keys:
                    row = conn.execute("SELECT owner, expires FROM claims WHERE key = ?", (k,)).fetchone()
                    if row is not None and row[0] != owner and row[1] > now and (alive is None or alive(row[0])):
                        out[k] = "taken"
                        continue
                    out[k] = "expired" if row is not None and row[0] != owner else "claimed"
                    conn.execute("INSERT INTO claims (key, owner, expires) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
                                 "SET owner = excluded.owner, expires = excluded.expires", (k, owner, now + lease_seconds))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        if self.readonly:
            raise StoreError(f"results store {self.path} was opened read-only")
        with self._lock:
            self._guard(run)
        return out

    def renew(self, keys, owner: str, lease_seconds: float) -> None:
        """Extend ``owner``'s leases on ``keys``."""
        keys = list(keys)
        if keys:
            until = time.time() + lease_seconds
            self._write([("UPDATE claims SET expires = ? WHERE key = ? AND owner = ?", (until, k, owner)) for k in keys])

    def renew_all(self, owner: str, lease_seconds: float) -> None:
        """Extend every lease of ``owner``."""
        self._write([("UPDATE claims SET expires = ? WHERE owner = ?", (time.time() + lease_seconds, owner))])

    def release_all(self, owner: str) -> None:
        """Drop every claim of ``owner``."""
        self._write([("DELETE FROM claims WHERE owner = ?", (owner,))])

    def release(self, keys, owner: str) -> None:
        """Drop ``owner``'s claims on ``keys`` (others may compute them at once)."""
        keys = list(keys)
        if keys:
            self._write([("DELETE FROM claims WHERE key = ? AND owner = ?", (k, owner)) for k in keys])

    def claimed(self, key: str) -> tuple | None:
        """``(owner, expires)`` of the claim on ``key``, or None."""
        rows = self._read("SELECT owner, expires FROM claims WHERE key = ?", (key,))
        return tuple(rows[0]) if rows else None

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
        values = values + (row_checksum(dict(zip(_COLUMNS, values))),)
        cols = ", ".join(_COLUMNS)
        marks = ", ".join("?" * len(_COLUMNS))
        update = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:] if c != "attempts")
        where = " WHERE results.status != 'ok'" if keep_ok else ""
        sql = (
            f"INSERT INTO results ({cols}) VALUES ({marks}) ON CONFLICT (key) DO UPDATE SET {update}, "
            f"attempts = results.attempts + 1{where}"
        )
        count, _ = self._write([(sql, values), ("DELETE FROM claims WHERE key = ?", (values[0],))])
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
            if _row_problem(rec) is not None:
                raise StoreError(f"row {str(rec['key'])[:16]}: {_row_problem(rec)}")
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
        sql = f"SELECT {self._select()} FROM results"
        where, params, config_filters = [], [], {}
        for name, value in filters.items():
            values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
            if name in ("config", "result", "checksum"):
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
            row = self._verified(raw)
            if all(row["config"].get(k, _MISSING) in vs for k, vs in config_filters.items()):
                out.append(row)
        return out

    def __len__(self) -> int:
        return self._read("SELECT count(*) FROM results")[0][0]

    def summary(self) -> dict:
        """Counts by kind and status, total compute seconds, package versions, file size.

        Every row is read and verified (checksum), so a damaged row raises StoreCorruptError.
        """
        by = {}
        for row in self.rows():
            d = by.setdefault(row["kind"], {"ok": 0, "error": 0, "seconds": 0.0})
            d[row["status"]] += 1
            d["seconds"] += row["seconds"] or 0.0
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
    configuration and version and its checksum matches its content (so garbage and changed
    bytes cannot pass as a result; a row of a version-1 store, which has no checksum, is
    checked by its key only and gets a checksum in ``dest``); of several versions of a key
    the latest ``finished_at`` wins, and an 'ok' row beats an 'error' row.

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
    legacy: dict[str, tuple] = {}  # rows without a checksum: kept only if the source is a version-1 store

    def offer(row: tuple) -> bool:
        if len(row) == len(_COLUMNS) - 1:  # a version-1 row (no checksum column)
            rec = dict(zip(_COLUMNS, row), checksum=None, _legacy=True)
            into = legacy
        elif len(row) == len(_COLUMNS):
            rec = dict(zip(_COLUMNS, row))
            into = found
        else:
            return False
        if _row_problem(rec) is not None:
            return False
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
        if rec.get("checksum") is None:
            rec["checksum"] = row_checksum(rec)
        row = tuple(rec[c] for c in _COLUMNS)
        old = into.get(rec["key"])
        rank = (rec["status"] == "ok", rec["finished_at"])
        if old is None or rank > (old[3] == "ok", old[11]):
            into[rec["key"]] = row
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
            have = {r[1] for r in conn.execute("PRAGMA table_info(results)")}
            cols = [c for c in _COLUMNS if c in have or c != "checksum"]
            for row in conn.execute(f"SELECT {', '.join(cols)} FROM results"):
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

    if not found:  # a version-1 store: its rows are checked by their key hash only
        found = legacy
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

