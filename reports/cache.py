"""Durable cell cache for the report driver.

Every expensive computation of the report (an exact-engine or Monte Carlo cell) is a JSON-able
``config`` dict. Its result is written to the store the moment it is finished, so an
interrupted run loses nothing and a rerun recomputes nothing (``force=True`` recomputes).

The store is :class:`mdm_exact.runtime.store.ResultStore` (one SQLite file, ``data/cells.sqlite``) when
that module is installed; otherwise a JSON-per-cell directory ``data/cells/`` with the same
keying (hash of the canonical JSON of the config plus the package version).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile

import numpy as np


def jsonable(obj):
    """``obj`` with NumPy scalars/arrays turned into plain Python, non-finite floats kept as
    strings ``"inf"``, ``"-inf"``, ``"nan"`` (strict JSON has no such numbers)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isfinite(v):
            return v
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if obj is None or isinstance(obj, (str, int)):
        return obj
    if hasattr(obj, "to_dict"):
        return jsonable(obj.to_dict())
    raise TypeError(f"cannot store a value of type {type(obj).__name__} in a report JSON")


def as_float(v) -> float:
    """Inverse of :func:`jsonable` for one number (``"inf"`` -> ``inf``; ``None`` -> ``nan``)."""
    if v is None:
        return float("nan")
    return float(v)


def canonical(config: dict) -> str:
    """Canonical JSON text of a config (sorted keys, no spaces)."""
    return json.dumps(jsonable(config), sort_keys=True, separators=(",", ":"))


def cell_key(config: dict, version: str) -> str:
    """Hex key of a config: SHA-256 of its canonical JSON and the package version."""
    return hashlib.sha256((canonical(config) + "|" + version).encode()).hexdigest()


class JSONCellStore:
    """A ``ResultStore``-compatible store with one JSON file per finished cell."""

    def __init__(self, directory):
        from mdm_exact import __version__

        self.directory = os.fspath(directory)
        self.version = __version__
        os.makedirs(self.directory, exist_ok=True)

    def _path(self, config):
        return os.path.join(self.directory, cell_key(config, self.version)[:24] + ".json")

    def get(self, config: dict):
        path = self._path(config)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            rec = json.load(f)
        if rec.get("status") != "ok" or rec.get("config_json") != canonical(config):
            return None
        return rec["result"]

    def put(self, config: dict, result: dict, *, seconds: float):
        self._write(config, {"status": "ok", "result": jsonable(result), "seconds": float(seconds)})

    def put_error(self, config: dict, error: str, *, seconds: float):
        self._write(config, {"status": "error", "error": str(error), "seconds": float(seconds)})

    def close(self) -> None:
        """Nothing to close (every write is its own file)."""

    def _write(self, config, rec):
        rec = {"config_json": canonical(config), "config": jsonable(config), "version": self.version, **rec}
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(rec, f, sort_keys=True)
        os.replace(tmp, self._path(config))  # atomic: a crash never leaves half a record


def open_store(data_dir):
    """The cell store for a report output's ``data/`` directory (see module docstring)."""
    try:
        from mdm_exact.runtime.store import ResultStore
    except ModuleNotFoundError as exc:
        if exc.name not in ("mdm_exact.runtime.store",):
            raise
        return JSONCellStore(os.path.join(data_dir, "cells"))
    os.makedirs(data_dir, exist_ok=True)
    return ResultStore(os.path.join(data_dir, "cells.sqlite"))
