"""Benchmark of the sweep machinery: store writes, per-cell overhead of the executors, recovery.

Usage::

    python benchmarks/bench_sweep.py              # all three parts
    python benchmarks/bench_sweep.py --cells 400 --repeats 3 --json

Prints the machine and medians, with ratios against plain references measured in the same run:

* store: ``ResultStore.put`` (WAL, synchronous=FULL, one transaction per cell, upsert) against a
  plain ``sqlite3`` INSERT + commit per row with SQLite's defaults (rollback journal);
* executors: wall time of ``run_cells`` over cheap cells (``square`` with ``sleep``) with the
  local process pool and with a Dask ``LocalCluster`` against the plain serial loop;
* recovery: ``recover_store`` of a store whose header was destroyed (raw page scan) against a
  plain ``SELECT *`` of the intact file.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_store(n, repeats, tmp):
    from mdm_exact.runtime.store import ResultStore

    def ours():
        path = os.path.join(tmp, f"ours-{time.perf_counter_ns()}.sqlite")
        s = ResultStore(path)
        for i in range(n):
            s.put({"kind": "square", "x": i}, {"x": i, "y": i * i}, seconds=0.0)
        s.close()

    def plain():
        path = os.path.join(tmp, f"plain-{time.perf_counter_ns()}.sqlite")
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE r (key TEXT PRIMARY KEY, config TEXT, result TEXT)")
        for i in range(n):
            conn.execute("INSERT INTO r VALUES (?, ?, ?)", (str(i), json.dumps({"x": i}), json.dumps({"y": i * i})))
            conn.commit()
        conn.close()

    t_ours, t_plain = median_time(ours, repeats), median_time(plain, repeats)
    return {"rows": n, "put_per_s": n / t_ours, "plain_insert_commit_per_s": n / t_plain, "ratio_plain_over_ours": t_plain / t_ours}


def bench_executors(n, sleep, repeats, tmp):
    from mdm_exact.runtime.store import ResultStore
    from mdm_exact.runtime.sweep import run_cells

    def run(executor, **kw):
        def go():
            store = ResultStore(os.path.join(tmp, f"ex-{time.perf_counter_ns()}.sqlite"))
            cells = [{"kind": "square", "x": i, "sleep": sleep} for i in range(n)]
            recs = run_cells(cells, store, executor=executor, workers=2, progress=False, **kw)
            assert all(r["status"] == "ok" for r in recs)

        return go

    out = {"cells": n, "sleep_per_cell_s": sleep, "workers": 2}
    out["serial_s"] = median_time(run("serial"), repeats)
    out["local_s"] = median_time(run("local"), repeats)
    try:
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
            out["dask_s"] = median_time(run("dask", scheduler=cl.scheduler_address), repeats)
    except ImportError:
        out["dask_s"] = None
    out["speedup_local_over_serial"] = out["serial_s"] / out["local_s"]
    if out["dask_s"]:
        out["speedup_dask_over_serial"] = out["serial_s"] / out["dask_s"]
    return out


def bench_recover(n, repeats, tmp):
    from mdm_exact import __version__
    from mdm_exact.runtime.store import ResultStore, config_key, recover_store

    path = os.path.join(tmp, "big.sqlite")
    s = ResultStore(path)
    rows = [({"kind": "square", "x": i, "pad": "p" * 50}, {"y": i * i, "blob": "r" * 200}) for i in range(n)]
    s._write([  # one transaction, so that building the test store is quick
        ("INSERT INTO results (key, kind, config, status, result, seconds, package_version, finished_at) "
         "VALUES (?, 'square', ?, 'ok', ?, 0, ?, '2026-01-01')",
         (config_key(c), json.dumps(c, sort_keys=True, separators=(",", ":")), json.dumps(r), __version__))
        for c, r in rows
    ])
    s.close()
    data = open(path, "rb").read()
    damaged = os.path.join(tmp, "damaged.sqlite")
    with open(damaged, "wb") as fh:
        fh.write(bytes(100) + data[100:])

    def ours():
        dest = os.path.join(tmp, f"rec-{time.perf_counter_ns()}.sqlite")
        rep = recover_store(damaged, dest)
        assert rep["recovered"] == n, rep

    def plain():
        conn = sqlite3.connect(path)
        assert len(conn.execute("SELECT * FROM results").fetchall()) == n
        conn.close()

    t_ours, t_plain = median_time(ours, repeats), median_time(plain, repeats)
    return {"rows": n, "bytes": len(data), "recover_s": t_ours, "plain_select_s": t_plain,
            "ratio_ours_over_plain": t_ours / t_plain}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=500, help="store writes")
    p.add_argument("--cells", type=int, default=200, help="cells for the executor comparison")
    p.add_argument("--sleep", type=float, default=0.01, help="seconds per cheap cell")
    p.add_argument("--recover-rows", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from mdm_exact.runtime.provenance import machine

    res = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        res["store"] = bench_store(args.rows, args.repeats, tmp)
        res["executors"] = bench_executors(args.cells, args.sleep, args.repeats, tmp)
        res["recover"] = bench_recover(args.recover_rows, args.repeats, tmp)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    m = res["machine"]
    print(f"machine: {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}")
    s = res["store"]
    print(f"store:     {s['put_per_s']:8.0f} put/s (WAL, FULL sync, upsert) vs {s['plain_insert_commit_per_s']:8.0f} "
          f"plain insert+commit/s (ratio plain/ours time {s['ratio_plain_over_ours']:.2f})")
    e = res["executors"]
    print(f"executors: {e['cells']} cells x {e['sleep_per_cell_s']} s: serial {e['serial_s']:.2f} s, local(2) "
          f"{e['local_s']:.2f} s (x{e['speedup_local_over_serial']:.2f}), dask(2) "
          + (f"{e['dask_s']:.2f} s (x{e['speedup_dask_over_serial']:.2f})" if e["dask_s"] else "n/a"))
    r = res["recover"]
    print(f"recover:   {r['rows']} rows / {r['bytes'] / 1e6:.1f} MB, header destroyed: {r['recover_s']:.2f} s "
          f"vs plain SELECT of the intact file {r['plain_select_s']:.3f} s (x{r['ratio_ours_over_plain']:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
