"""``mdm-theory sweep``: run a TOML grid of cells into a durable store; inspect, export, recover.

Usage::

    mdm-theory sweep CONFIG.toml [--store PATH] [--executor local|dask|serial] [--scheduler ADDRESS]
                                 [--workers N] [--force] [--json] [--quiet] [--allow-import]
    mdm-theory sweep status STORE [--json]
    mdm-theory sweep export STORE (--csv OUT.csv | --parquet OUT.parquet) [--kind K] [--status S]
    mdm-theory sweep recover STORE --out NEW.sqlite [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal

ACTIONS = ("status", "export", "recover")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run a grid of cells from a TOML config into a durable store",
        description="Run a sweep config (CONFIG.toml), or inspect a store: 'sweep status STORE', "
        "'sweep export STORE --csv OUT', 'sweep recover STORE --out NEW'. See docs/sweeps.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Usage::", 1)[1],
    )
    p.add_argument("target", nargs="+", metavar="CONFIG | ACTION STORE",
                   help="a TOML sweep config, or one of status/export/recover followed by a store file")
    p.add_argument("--store", help="results store (SQLite file); default: [sweep] store of the config, "
                   "else CONFIG with suffix .sqlite")
    p.add_argument("--executor", choices=("local", "dask", "serial"), help="where cells run (default local)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes (local) / LocalCluster size (dask)")
    p.add_argument("--force", action="store_true", help="recompute cells already in the store")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--quiet", action="store_true", help="no per-cell progress lines on stderr")
    p.add_argument("--allow-import", action="store_true",
                   help="let the config name any importable 'module:function' as a kind and import its "
                   "[sweep] plugins: this RUNS ARBITRARY CODE named in the file; use it only for configs you "
                   "trust (without it only registered kinds run)")
    p.add_argument("--csv", metavar="OUT", help="export: write a CSV file")
    p.add_argument("--parquet", metavar="OUT", help="export: write a Parquet file (needs pyarrow)")
    p.add_argument("--kind", help="export: only cells of this kind")
    p.add_argument("--status", dest="only_status", choices=("ok", "error"), help="export: only rows with this status")
    p.add_argument("--out", metavar="NEW", help="recover: the new store to write")
    p.set_defaults(func=run)


def _sigterm_to_interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args) -> int:
    target = list(args.target)
    if target[0] in ACTIONS:
        if args.allow_import:
            raise ValueError(f"--allow-import belongs to running a config, not to 'sweep {target[0]}'")
        if len(target) != 2:
            raise ValueError(f"usage: mdm-theory sweep {target[0]} STORE (got {' '.join(target[1:]) or 'no STORE'})")
        return {"status": _status, "export": _export, "recover": _recover}[target[0]](target[1], args)
    if len(target) != 1:
        raise ValueError(f"expected one CONFIG.toml (or status/export/recover STORE), got {' '.join(target)}")
    for opt in ("csv", "parquet", "out", "kind", "only_status"):
        if getattr(args, opt) is not None:
            raise ValueError(f"--{opt.replace('only_', '')} belongs to 'sweep export'/'sweep recover', not to running a config")

    return _run_config(target[0], args)


def _run_config(path, args) -> int:
    from mdm_exact.runtime.store import ResultStore
    from mdm_exact.runtime.sweep import load_config, run_cells, summarize

    cfg = load_config(path, allow_import=args.allow_import)
    store_path = args.store or cfg.store or os.path.splitext(path)[0] + ".sqlite"
    executor = args.executor or cfg.executor or "local"
    scheduler = args.scheduler or cfg.scheduler
    if scheduler and executor != "dask":
        raise ValueError(f"--scheduler needs --executor dask (got executor {executor!r})")
    workers = args.workers if args.workers is not None else cfg.workers
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if scheduler:
        from mdm_exact.runtime.sweep import _probe_scheduler

        _probe_scheduler(scheduler)  # an unreachable scheduler is refused before the store is created
    store = ResultStore(store_path)
    old = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    try:
        records = run_cells(cfg.cells, store, executor=executor, workers=workers, force=args.force,
                            progress=not args.quiet, scheduler=scheduler, plugins=cfg.plugins,
                            allow_import=args.allow_import)
    finally:
        signal.signal(signal.SIGTERM, old)
    summary = summarize(records)
    summary.update(store=store_path, config=path, executor=executor, name=cfg.name)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print(f"{summary['cells']} cells: {summary['computed']} computed, {summary['cached']} already stored; "
              f"{summary['ok']} ok, {summary['error']} failed -> {store_path}")
        if summary["error"]:
            print(f"failed cells and tracebacks: mdm-theory sweep export {store_path} --csv errors.csv --status error")
    return 1 if summary["error"] else 0


def _open(path):
    from mdm_exact.runtime.store import ResultStore

    return ResultStore(path, create=False, readonly=True)


def _status(path, args) -> int:
    store = _open(path)
    s = store.summary()
    if args.json:
        print(json.dumps(s, indent=2, sort_keys=True))
        return 0
    print(f"{s['path']}: {s['cells']} cells ({s['ok']} ok, {s['error']} error), "
          f"{s['seconds']:.1f} s of compute, {s['bytes']} bytes; versions {', '.join(s['package_versions']) or '-'}")
    for kind, d in sorted(s["by_kind"].items()):
        print(f"  {kind:<12} ok {d['ok']:>6}  error {d['error']:>6}  {d['seconds']:10.1f} s")
    return 0


def _export(path, args) -> int:
    if not (args.csv or args.parquet):
        raise ValueError("sweep export needs --csv OUT.csv and/or --parquet OUT.parquet")
    filters = {}
    if args.kind:
        filters["kind"] = args.kind
    if args.only_status:
        filters["status"] = args.only_status
    store = _open(path)
    out = {}
    if args.csv:
        out["csv"] = store.export_csv(args.csv, **filters)
    if args.parquet:
        out["parquet"] = store.export_parquet(args.parquet, **filters)
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        for fmt, n in out.items():
            print(f"wrote {n} rows to {getattr(args, fmt)}")
    return 0


def _recover(path, args) -> int:
    from mdm_exact.runtime.store import recover_store

    if not args.out:
        raise ValueError("sweep recover needs --out NEW.sqlite (the damaged file is never modified)")
    rep = recover_store(path, args.out)
    if args.json:
        print(json.dumps(rep, indent=2, sort_keys=True))
    else:
        print(f"recovered {rep['recovered']} rows ({rep['ok']} ok, {rep['error']} error) from {path} into {args.out}"
              f" ({rep['via_sqlite']} read by SQLite, {rep['via_pages']} salvaged from raw pages"
              + (f"; SQLite reported: {rep['sqlite_error']}" if rep["sqlite_error"] else "") + ")")
        print(f"rerun the sweep with --store {args.out} to recompute only what was lost")
    return 0
