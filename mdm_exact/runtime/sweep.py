"""Sweeps: grids of cells (exact, Monte Carlo, bound checks, neural evaluation) run into a store.

A *cell* is a dict with a ``"kind"`` and that kind's parameters, e.g.
``{"kind": "exact", "language": "paper-2gram", "L": 6, "rule": "linear", "num_steps": 3}``.
:func:`compute_cell` computes one; :func:`run_cells` computes many on a process pool or a Dask
cluster and writes each result to a :class:`~mdm_exact.runtime.store.ResultStore` the moment it
finishes (the calling process is the only writer). A rerun skips cells already stored for
this package version; ``force=True`` recomputes them. A failing cell is stored with its
traceback and the others go on.

Kinds live in the registry of :mod:`mdm_exact.runtime.kinds` (built-in kinds, kinds that
installed packages register through entry points, :func:`register_kind`). A config may name
only those: an arbitrary ``"package.module:function"`` (or a ``[sweep] plugins`` module to
import) runs arbitrary code and needs ``allow_import=True``. TOML sweep configs are read by
:func:`load_config`; see ``docs/sweeps.md`` for the schema.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import math
import os
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from mdm_exact.runtime.kinds import (  # noqa: F401 - the registry's names, re-exported (docs/sweeps.md)
    KindSpec,
    call_kind,
    compute_cell,
    get_kind,
    kind_names,
    kinds,
    register_kind,
    validate_cell,
)

__all__ = [
    "KindSpec",
    "SweepConfig",
    "register_kind",
    "get_kind",
    "kinds",
    "validate_cell",
    "compute_cell",
    "run_cells",
    "expand_grid",
    "load_config",
    "parse_config",
    "summarize",
]

EXECUTORS = ("local", "dask", "serial")
#: Most cells one config may expand to (each is validated, hashed and stored as one row).
MAX_CELLS = 10**6


# --------------------------------------------------------------------------- config files


@dataclasses.dataclass
class SweepConfig:
    """A parsed sweep config: the expanded cells and the ``[sweep]`` options."""

    cells: list
    name: str | None = None
    store: str | None = None
    executor: str | None = None
    scheduler: str | None = None
    workers: int | None = None
    plugins: tuple = ()
    path: str | None = None


_SWEEP_KEYS = {"name", "store", "executor", "scheduler", "workers", "plugins"}


def _load_toml(path):
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ValueError("reading TOML needs Python >= 3.11 (tomllib) or the 'tomli' package") from None
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"sweep config {path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"sweep config {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise ValueError(f"sweep config {path}: nested too deeply") from None
    except OSError as exc:
        raise ValueError(f"sweep config {path}: cannot be read: {exc}") from None


def load_config(path, *, allow_import: bool = False) -> SweepConfig:
    """Read a TOML sweep config (schema in ``docs/sweeps.md``).

    Raises
    ------
    ValueError
        For invalid TOML, unknown keys (naming the file, the table and the allowed keys),
        unknown kinds, empty grids, or (without ``allow_import``) a ``module:function`` kind
        or ``[sweep] plugins``.
    FileNotFoundError
        If the file does not exist.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"sweep config {path} is a directory, expected a TOML file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"sweep config {path} does not exist")
    cfg = parse_config(_load_toml(path), source=path, allow_import=allow_import)
    cfg.path = path
    if cfg.store is not None and not os.path.isabs(cfg.store):
        cfg.store = os.path.join(os.path.dirname(os.path.abspath(path)), cfg.store)
    return cfg


def parse_config(data: dict, *, source="<config>", allow_import: bool = False) -> SweepConfig:
    """Validate and expand a config already read into a dict (see :func:`load_config`)."""
    unknown = sorted(set(data) - {"sweep", "cells"})
    if unknown:
        raise ValueError(f"{source}: unknown top-level key(s) {', '.join(unknown)}; allowed: [sweep], [[cells]]")
    opts = data.get("sweep", {})
    if not isinstance(opts, dict):
        raise ValueError(f"{source}: 'sweep' must be a table ([sweep])")
    bad = sorted(set(opts) - _SWEEP_KEYS)
    if bad:
        raise ValueError(f"{source}: unknown key(s) {', '.join(bad)} in [sweep]; allowed: {', '.join(sorted(_SWEEP_KEYS))}")
    plugins = opts.get("plugins", [])
    if isinstance(plugins, str) or not all(isinstance(p, str) for p in plugins):
        raise ValueError(f"{source}: [sweep] plugins must be a list of module names")
    if plugins and not allow_import:
        raise ValueError(
            f"{source}: [sweep] plugins = {list(plugins)} imports modules, which runs arbitrary code; "
            f"pass --allow-import to allow it (Python: allow_import=True), or register kinds from an "
            f"installed package (entry points, docs/sweeps.md)"
        )
    for p in plugins:
        try:
            _import_plugin(p)
        except ValueError as exc:
            raise ValueError(f"{source}: [sweep] {exc}") from None
    executor = opts.get("executor")
    if executor is not None and executor not in EXECUTORS:
        raise ValueError(f"{source}: [sweep] executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    workers = opts.get("workers")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"{source}: [sweep] workers must be an integer >= 1, got {workers!r}")
    for k in ("name", "store", "scheduler"):
        if k in opts and not isinstance(opts[k], str):
            raise ValueError(f"{source}: [sweep] {k} must be a string, got {opts[k]!r}")
    blocks = data.get("cells")
    if not blocks:
        raise ValueError(f"{source}: no cells; add at least one [[cells]] table with a 'kind'")
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise ValueError(f"{source}: 'cells' must be an array of tables ([[cells]])")
    cells = []
    for i, block in enumerate(blocks):
        try:
            cells.extend(expand_grid(block, allow_import=allow_import))
        except ValueError as exc:
            raise ValueError(f"{source}: [[cells]] block {i + 1}: {exc}") from None
        if len(cells) > MAX_CELLS:
            raise ValueError(f"{source}: more than MAX_CELLS = {MAX_CELLS:.0e} cells in all; split it into several sweeps")
    return SweepConfig(
        cells=cells,
        name=opts.get("name"),
        store=opts.get("store"),
        executor=executor,
        scheduler=opts.get("scheduler"),
        workers=workers,
        plugins=tuple(plugins),
    )


def expand_grid(block: dict, *, allow_import: bool = False) -> list:
    """Expand one ``[[cells]]`` block: the Cartesian product of its list-valued parameters.

    For a kind's list-typed parameters (e.g. ``sizes``, ``names``) a flat list is one value
    and a list of lists is a grid axis. Axes vary in the order the keys are written, the
    last fastest. Every cell is validated against its kind, and its values by the kind's
    ``precheck`` (nothing is computed).
    """
    if "kind" not in block:
        raise ValueError(f"missing 'kind' (one of {', '.join(kind_names())})")
    kind = block["kind"]
    if not isinstance(kind, str):
        raise ValueError(f"'kind' must be a single string (one kind per [[cells]] block), got {kind!r}")
    spec = get_kind(kind, allow_import=allow_import)
    axes = []
    for name, value in block.items():
        if name == "kind":
            continue
        if isinstance(value, dict):
            raise ValueError(f"parameter {name!r} is a table; values must be scalars or lists")
        if name in spec.list_params:
            is_axis = isinstance(value, list) and len(value) > 0 and all(isinstance(v, list) for v in value)
        else:
            is_axis = isinstance(value, list)
        if is_axis:
            if len(value) == 0:
                raise ValueError(f"parameter {name!r} is an empty list, so the grid would be empty")
            axes.append((name, list(value)))
        else:
            axes.append((name, [value]))
    n_cells = math.prod(len(vals) for _, vals in axes)
    if n_cells > MAX_CELLS:
        raise ValueError(
            f"the grid has {' x '.join(str(len(v)) for _, v in axes if len(v) > 1)} = {n_cells:.4g} cells, over the "
            f"limit MAX_CELLS = {MAX_CELLS:.0e} of one config (one stored row per cell); split it into several sweeps"
        )
    cells = []
    for combo in itertools.product(*(vals for _, vals in axes)):
        cell = {"kind": kind}
        cell.update({name: v for (name, _), v in zip(axes, combo)})
        validate_cell(cell, allow_import=allow_import)
        if spec.precheck is not None:
            params = {k: v for k, v in cell.items() if k != "kind"}
            try:
                spec.precheck(**params)
            except (ValueError, TypeError, OSError) as exc:
                raise ValueError(f"cell {params!r:.160}: {' '.join(str(exc).split())}") from None
        cells.append(cell)
    return cells


def _import_plugin(name):
    try:
        importlib.import_module(name)
    except ImportError as exc:
        raise ValueError(f"sweep plugin module {name!r} cannot be imported: {exc}") from None


# --------------------------------------------------------------------------- execution


def _execute(func, cell, plugins=()):
    """Run in a worker: compute one cell; never raises for the cell's own failure."""
    t0 = time.perf_counter()
    try:
        for p in plugins:
            importlib.import_module(p)
        result = call_kind(func, cell)
        return "ok", result, time.perf_counter() - t0
    except Exception:  # the cell failed: report its traceback, the sweep goes on
        return "error", traceback.format_exc(), time.perf_counter() - t0


def _worker_init():
    """Process-pool worker set-up: die with the parent; leave Ctrl-C to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: never outlive a killed sweep
            if os.getppid() == 1:  # the parent died before prctl took effect
                os._exit(1)
        except (OSError, AttributeError):
            pass


def _label(cell, width=100) -> str:
    s = cell["kind"] + " " + " ".join(f"{k}={v}" for k, v in cell.items() if k != "kind")
    return s if len(s) <= width else s[: width - 3] + "..."


def run_cells(
    cells,
    store,
    *,
    executor="local",
    workers=None,
    force=False,
    progress=True,
    scheduler=None,
    client=None,
    plugins=(),
    mp_context=None,
    allow_import=False,
    lease_seconds=60.0,
) -> list:
    """Compute cells and store each result as soon as it finishes.

    Parameters
    ----------
    cells : list of dict
        Each with a ``"kind"`` and that kind's parameters; validated before anything runs.
    store : ResultStore or path
        Where results go; this process is its only writer.
    executor : {"local", "dask", "serial"}
        ``local``: a ``ProcessPoolExecutor`` on this machine (``workers`` processes, default
        the CPU count); ``dask``: a Dask distributed cluster at ``scheduler`` (address such
        as ``tcp://host:8786``), or ``client`` (a ``distributed.Client``), or else a
        ``LocalCluster`` of ``workers`` processes; ``serial``: in this process.
    force : bool
        Recompute cells that are already stored.
    progress : bool
        One line per finished cell on stderr.
    plugins : sequence of str
        Modules imported in every worker before computing (they may register kinds).
    mp_context : str, optional
        Start method of local workers (default ``spawn``).
    allow_import : bool
        Accept ``"module:function"`` kinds (imports and runs that function).
    lease_seconds : float
        Cells are claimed in the store before they are computed, so that concurrent sweeps
        on one store compute each cell once; a claim is renewed while this sweep runs and
        expires ``lease_seconds`` after this process died (at once when a dead process of
        this host holds it). Cells claimed by another live sweep are waited for.

    Returns
    -------
    list of dict
        One record per input cell, in order: ``key``, ``config``, ``status`` ("ok" or
        "error"), ``cached`` (taken from the store without computing), ``result``,
        ``error`` (traceback), ``seconds`` (0 for a cached cell) and ``stored_seconds`` (the
        compute time recorded in the store, also for a cached cell).

    Notes
    -----
    Interrupting (Ctrl-C, SIGTERM turned into KeyboardInterrupt by the CLI) stores every
    result that has already arrived, stops the workers and re-raises. A SIGKILL loses only
    the cells that were running; process-pool workers are killed with their parent.
    """
    from mdm_exact.runtime.store import ResultStore, config_key

    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers is not None and (int(workers) != workers or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if executor == "dask" and scheduler and client is None:
        _probe_scheduler(scheduler)  # before the store is opened or created
    if not isinstance(store, ResultStore):
        store = ResultStore(store)
    for p in plugins:
        _import_plugin(p)
    specs = [validate_cell(c, allow_import=allow_import) for c in cells]
    keys = [config_key(c) for c in cells]

    records: dict[str, dict] = {}
    stale: dict[str, dict | None] = {}
    todo: list[tuple[str, dict, object]] = []
    queued = set()
    for cell, key, spec in zip(cells, keys, specs):
        if key in records or key in queued:
            continue
        queued.add(key)
        found = None if force else store.get_record(cell)
        if found is not None and found["status"] == "ok":
            records[key] = {"key": key, "config": cell, "status": "ok", "cached": True, "result": found["result"],
                            "error": None, "seconds": 0.0, "stored_seconds": found["seconds"]}
        else:
            todo.append((key, cell, spec.func))
            stale[key] = found  # what the store held before this sweep: None or an error (None with force)
    if not (isinstance(lease_seconds, (int, float)) and math.isfinite(lease_seconds) and lease_seconds > 0):
        raise ValueError(f"lease_seconds must be a finite number > 0, got {lease_seconds!r}")
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    n_total = len(todo)
    if progress:
        print(f"sweep: {len(set(keys))} cells, {len(records)} already stored, {n_total} to compute "
              f"({executor})", file=sys.stderr, flush=True)

    counter = {"done": 0}

    def finish(key, cell, status, payload, seconds):
        if status == "ok":
            try:
                store.put(cell, payload, seconds=seconds)
            except ValueError as exc:  # result not storable (e.g. not JSON): record as the cell's error
                status, payload = "error", f"result could not be stored: {exc}"
        if status == "error":
            store.put_error(cell, payload, seconds=seconds)
        records[key] = {"key": key, "config": cell, "status": status, "cached": False,
                        "result": payload if status == "ok" else None,
                        "error": payload if status == "error" else None, "seconds": seconds,
                        "stored_seconds": seconds}
        counter["done"] += 1
        if progress:
            tail = "" if status == "ok" else "  " + str(payload).strip().splitlines()[-1][:120]
            print(f"[{counter['done']:>{len(str(n_total))}}/{n_total}] {status:<5} {seconds:8.2f} s  "
                  f"{_label(cell)}{tail}", file=sys.stderr, flush=True)

    def execute(batch):
        if executor == "serial":
            for key, cell, func in batch:
                finish(key, cell, *_execute(func, cell, tuple(plugins)))
        elif executor == "local":
            _run_local(batch, finish, workers, tuple(plugins), mp_context)
        else:
            _run_dask(batch, finish, workers, tuple(plugins), scheduler, client)

    if todo:
        stop = threading.Event()
        renewer = threading.Thread(target=_renew_claims, args=(store, owner, lease_seconds, stop), daemon=True)
        renewer.start()
        try:
            def taken_over(key, cell):
                """The record another sweep stored for ``cell`` since this one started (or None)."""
                found = store.get_record(cell)
                return None if found is None or found == stale[key] else found

            def cached(key, cell, found):
                records[key] = {"key": key, "config": cell, "status": found["status"], "cached": True,
                                "result": found["result"], "error": found["error"], "seconds": 0.0,
                                "stored_seconds": found["seconds"]}

            waiting = todo
            while waiting:
                mine, waiting = _claim(store, waiting, owner, lease_seconds)
                # a claim on a cell whose result another sweep stored (``put`` drops its claim) in the
                # meantime: take the stored result instead of computing it a second time (with
                # force every claimed cell is computed, and no stored row is read)
                fresh = []
                for key, cell, func in mine:
                    if not force and (found := taken_over(key, cell)) is not None:
                        cached(key, cell, found)
                        store.release([key], owner)
                    else:
                        fresh.append((key, cell, func))
                if fresh:
                    execute(fresh)
                elif waiting:
                    time.sleep(min(0.5, lease_seconds / 4))
                still = []
                for key, cell, func in waiting:  # claimed by another sweep: done once its claim is gone
                    if store.claimed(key) is None and (found := taken_over(key, cell)) is not None:
                        cached(key, cell, found)
                    else:
                        still.append((key, cell, func))
                waiting = still
        finally:
            stop.set()
            renewer.join()
            try:
                store.release_all(owner)  # cells not finished (interrupted): free for others at once
            except Exception:  # noqa: BLE001 - best effort; the lease expires anyway
                pass
    return [records[k] for k in keys]


def _claim(store, items, owner, lease_seconds):
    """Split ``items`` into those now claimed by ``owner`` and those a live sweep holds."""
    states = store.claim([k for k, _, _ in items], owner, lease_seconds, alive=_owner_alive)
    mine = [it for it in items if states[it[0]] != "taken"]
    return mine, [it for it in items if states[it[0]] == "taken"]


def _owner_alive(owner: str) -> bool:
    """False when ``owner`` (host:pid:tag) is a process of this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _renew_claims(store, owner, lease_seconds, stop):
    while not stop.wait(lease_seconds / 4):
        try:
            store.renew_all(owner, lease_seconds)
        except Exception:  # noqa: BLE001 - a missed renewal only shortens the lease
            pass


def _run_local(todo, finish, workers, plugins, mp_context):
    """Process pool with at most ``n`` cells in flight; isolates cells that crash a worker.

    When a worker process dies, every cell then in flight fails with ``BrokenProcessPool``.
    Those cells become suspects and are rerun alone in a fresh pool: a suspect that crashes
    again alone is recorded as an error; the innocent ones just complete.
    """
    import collections
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    # spawn: clean workers (no inherited threads or locks) whose parent is this process, so
    # that PR_SET_PDEATHSIG takes them down with a killed sweep (a forkserver would outlive it).
    ctx = multiprocessing.get_context(mp_context or "spawn")
    n = min(workers or os.cpu_count() or 1, len(todo))
    queue = collections.deque(todo)
    suspects = set()
    pending = {}
    pool = None
    clean = False
    fresh_pool_failures = 0

    def new_pool():
        return ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_worker_init)

    try:
        while queue or pending:
            if pool is None:
                pool = new_pool()
            while queue and len(pending) < n and not (pending.keys() and _any_suspect(pending, suspects)):
                key, cell, func = queue[0]
                if key in suspects and pending:
                    break  # a suspect runs alone
                try:
                    fut = pool.submit(_execute, func, cell, plugins)
                except BrokenProcessPool:  # a worker died since the last wait: collect the pool's futures first
                    break
                queue.popleft()
                pending[fut] = (key, cell, func)
            if not pending:  # the pool broke before any cell of it was running
                pool.shutdown(wait=True)
                pool = None
                fresh_pool_failures += 1
                if fresh_pool_failures >= 3:
                    raise RuntimeError("worker processes die at start-up (three fresh pools in a row)")
                continue
            fresh_pool_failures = 0
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            broken = any(isinstance(f.exception(), BrokenProcessPool) for f in done)
            if broken:  # every future of the dead pool fails: collect them all
                done, _ = wait(list(pending))
            retry = []
            for fut in done:
                key, cell, func = pending.pop(fut)
                if isinstance(fut.exception(), BrokenProcessPool) and key not in suspects:
                    suspects.add(key)
                    retry.append((key, cell, func))
                else:
                    _finish_future(fut, key, cell, finish)
            queue.extendleft(reversed(retry))
            if broken:
                pool.shutdown(wait=True)
                pool = None
        clean = True
    finally:
        if pool is not None and not clean:
            # Keep what already arrived, then stop the workers (running cells are abandoned).
            for fut in [f for f in pending if f.done() and not f.cancelled()]:
                key, cell, _ = pending.pop(fut)
                try:
                    _finish_future(fut, key, cell, finish)
                except Exception:  # noqa: BLE001 - best effort while shutting down
                    pass
            procs = list((getattr(pool, "_processes", None) or {}).values())  # no public API before 3.14
            pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                if p.is_alive():
                    p.kill()
        elif pool is not None:
            pool.shutdown(wait=True)


def _any_suspect(pending, suspects) -> bool:
    return any(key in suspects for key, _, _ in pending.values())


def _finish_future(fut, key, cell, finish):
    exc = fut.exception()
    if exc is None:
        finish(key, cell, *fut.result())
    else:  # the worker process died (BrokenProcessPool) or the result could not be pickled
        from concurrent.futures.process import BrokenProcessPool

        msg = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        what = ("the cell crashed its worker process, also when run alone" if isinstance(exc, BrokenProcessPool)
                else "the cell's result could not be sent back from the worker")
        finish(key, cell, "error", f"worker failure ({what}): {msg}", 0.0)


def _run_dask(todo, finish, workers, plugins, scheduler, client):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError("the dask executor needs dask[distributed]: pip install 'mdm-theory[dist]'") from None
    cluster = own_client = None
    if client is None:
        if scheduler:
            _probe_scheduler(scheduler)
            try:
                client = own_client = Client(scheduler, timeout=DASK_CONNECT_SECONDS)
            except (OSError, TimeoutError) as exc:
                raise ValueError(f"cannot connect to the Dask scheduler at {scheduler} within {DASK_CONNECT_SECONDS} s "
                                 f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None
        else:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True)
            client = own_client = Client(cluster)
    futures = {}
    clean = False
    try:
        for key, cell, func in todo:
            fut = client.submit(_execute, func, cell, plugins, pure=False, key=f"mdm-cell-{key[:16]}-{os.urandom(4).hex()}")
            futures[fut] = (key, cell)
        for fut in as_completed(list(futures)):
            key, cell = futures.pop(fut)
            if fut.status == "finished":
                finish(key, cell, *fut.result())
            else:  # lost worker, cancelled, or an error outside _execute
                try:
                    exc = fut.exception()
                except Exception as e:  # noqa: BLE001 - e.g. CancelledError
                    exc = e
                finish(key, cell, "error", f"dask task failed: {type(exc).__name__}: {exc}", 0.0)
        clean = True
    finally:
        if not clean and futures:
            for fut in [f for f in futures if f.status == "finished"]:
                key, cell = futures.pop(fut)
                try:
                    finish(key, cell, *fut.result())
                except Exception:  # noqa: BLE001 - best effort while shutting down
                    pass
            client.cancel(list(futures))
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()


DASK_CONNECT_SECONDS = 10


def _probe_scheduler(address: str) -> None:
    """Fail at once (one TCP connect, 3 s at most) when nothing listens at a tcp:// scheduler address."""
    import socket as _socket
    import urllib.parse as _up

    if "://" not in address:
        address = "tcp://" + address
    u = _up.urlsplit(address)
    if u.scheme not in ("tcp", "tls"):
        return  # inproc://, ucx://, ...: left to distributed
    try:
        host, port = u.hostname, u.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise ValueError(f"Dask scheduler address {address!r}: expected tcp://HOST:PORT")
    try:
        with _socket.create_connection((host, port), timeout=3):
            pass
    except OSError as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {address} ({exc.strerror or exc}); start one "
                         f"(dask scheduler) or run without --scheduler") from None


def summarize(records) -> dict:
    """Counts of a :func:`run_cells` return value: cells, computed, cached, ok, error, seconds."""
    uniq = list({r["key"]: r for r in records}.values())
    return {
        "cells": len(uniq),
        "computed": sum(1 for r in uniq if not r["cached"]),
        "cached": sum(1 for r in uniq if r["cached"]),
        "ok": sum(1 for r in uniq if r["status"] == "ok"),
        "error": sum(1 for r in uniq if r["status"] == "error"),
        "seconds": math.fsum(r["seconds"] for r in uniq),
    }
