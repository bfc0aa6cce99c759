"""Driver: regenerate ``reports/`` (data, figures, REPORT.md) from nothing.

Usage::

    mdm-theory report                 # full run into ./reports/ (about 15 minutes on 2 cores)
    mdm-theory report --quick         # reduced grid, under 2 minutes
    mdm-theory report --out /tmp/r    # write somewhere else
    mdm-theory report --force         # recompute cells already in the store
    python -m mdm_exact.runtime.cli report --quick   # the same without the console script

The output directory defaults to ``reports/`` under the current directory: from the root of
a source checkout that is the committed report, whose cell store ``reports/data/cells.sqlite``
then makes a rerun recompute nothing. Each figure's config is a table of the package's
``configs/{full,quick}.toml`` (unknown keys are errors). Expensive cells (exact enumeration,
Monte Carlo, dependency counts) are cells of the runtime's built-in kinds, run and stored
the moment they finish by :mod:`reports.cells` (the runtime's store and cell runner), so an
interrupted run resumes where it stopped. Every ``data/<figure>.json`` records its
configuration, seed, provenance (package version, git commit, library versions, machine)
and wall time.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import sys
import time
import traceback

from mdm_exact.runtime.serialize import jsonable
from mdm_exact.runtime.store import ResultStore
from reports import experiments
from reports.cells import Progress, Runner

REPORTS_DIR = os.path.dirname(os.path.abspath(__file__))
CONFIG_DIR = os.path.join(REPORTS_DIR, "configs")
TOP_KEYS = {"seed", "alpha"}


# ------------------------------------------------------------------------- config
def load_config(path) -> dict:
    """Read a report TOML; fill each figure's defaults; unknown keys raise ValueError."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    with open(path, "rb") as f:
        try:
            raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not a valid TOML report config: {exc}") from None
    cfg = {"seed": 0, "alpha": 0.05}
    for key, val in raw.items():
        if key in TOP_KEYS:
            cfg[key] = val
        elif key in experiments.FIGURES:
            defaults = experiments.FIGURES[key][1]
            if not isinstance(val, dict):
                raise ValueError(f"{path}: [{key}] must be a table")
            unknown = set(val) - set(defaults)
            if unknown:
                raise ValueError(f"{path}: [{key}] has unknown keys {sorted(unknown)}; allowed: {sorted(defaults)}")
            for name, value in val.items():
                _check_value_type(path, key, name, defaults[name], value)
        else:
            raise ValueError(f"{path}: unknown key or table {key!r}; expected {sorted(TOP_KEYS)} or "
                             f"figure tables {sorted(experiments.FIGURES)}")
    for name, (_, defaults) in experiments.FIGURES.items():
        cfg[name] = {**defaults, **raw.get(name, {})}
    if isinstance(cfg["seed"], bool) or not isinstance(cfg["seed"], int) or cfg["seed"] < 0:
        raise ValueError(f"{path}: seed must be an integer >= 0, got {cfg['seed']!r}")
    if isinstance(cfg["alpha"], bool) or not isinstance(cfg["alpha"], (int, float)) or not 0 < cfg["alpha"] < 1:
        raise ValueError(f"{path}: alpha must be in (0, 1), got {cfg['alpha']}")
    return cfg


def _type_name(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _check_value_type(path, table, name, default, value):
    """Refuse a figure setting whose TOML type differs from its default's (before any work).

    Integers are accepted where the default is a float; a language may be a preset name or a
    ``{random_ngram = {...}}`` table; list items are checked against the default's first item.
    """
    where = f"{path}: [{table}] {name}"
    language = "language" in name and not name.endswith("by_language")
    if language and isinstance(value, (str, dict)) and isinstance(default, (str, dict)):
        return
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(default, bool) and isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float))
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ValueError(f"{where} must be {_type_name(default)} like the default {default!r}, got {value!r}")
    if isinstance(default, list) and default:
        for i, item in enumerate(value):
            _check_value_type(path, table, f"{name}[{i}]", default[0], item)


# ------------------------------------------------------------------------- build
def plot_module(name):
    return importlib.import_module(f"reports.plot_{name.split('_', 1)[0]}")


def build(out=None, *, quick=False, config=None, force=False, only=None, progress=True) -> dict:
    """Regenerate the report into ``out`` (default ``reports/``); returns a summary dict.

    Parameters
    ----------
    out : path, optional
        Output directory (default ``reports/`` under the current directory); gets ``data/``
        (with the cell store ``cells.sqlite``), ``figures/`` and ``REPORT.md``.
    quick : bool
        Use ``configs/quick.toml`` (reduced grid) instead of ``configs/full.toml``.
    config : path, optional
        Another config file (overrides ``quick``).
    force : bool
        Recompute every cell even when the store has it.
    only : list of str, optional
        Figure names (or prefixes such as ``fig3``) to build; default all.
    """
    from mdm_exact.runtime.provenance import provenance

    out = os.path.abspath(out or os.path.join(os.getcwd(), "reports"))
    config = config or os.path.join(CONFIG_DIR, "quick.toml" if quick else "full.toml")
    cfg = load_config(config)
    names = list(experiments.FIGURES)
    if only:  # refused before anything is created under ``out``
        names = [n for n in names if any(n == o or n.startswith(o) for o in only)]
        if not names:
            raise ValueError(f"--only {only}: no such figure; expected some of {list(experiments.FIGURES)}")
    data_dir = os.path.join(out, "data")
    fig_dir = os.path.join(out, "figures")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out}: exists and is not a folder; expected a folder (new or a report's)")
    try:
        os.makedirs(data_dir, exist_ok=True)
        os.makedirs(fig_dir, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--out {out}: cannot create the report's folders there ({exc.strerror or exc})") from None
    prog = Progress(progress)
    store = ResultStore(os.path.join(data_dir, "cells.sqlite"))
    runner = Runner(store, seed=cfg["seed"], alpha=cfg["alpha"], force=force, progress=prog)
    prov = provenance()
    t_start = time.perf_counter()
    summary = {"out": out, "config": os.path.relpath(config, REPORTS_DIR) if config.startswith(REPORTS_DIR) else config,
               "figures": {}, "quick": quick}
    try:
        _build_figures(names, cfg, runner, prog, prov, summary, quick, data_dir, fig_dir)
    finally:
        store.close()
    summary["wall_seconds"] = time.perf_counter() - t_start
    summary["unique_cells"] = len(runner.unique_seconds)
    summary["unique_compute_seconds"] = sum(runner.unique_seconds.values())
    from reports.write_report import write_report

    write_report(out, names=list(experiments.FIGURES), summary=summary, cfg=cfg, provenance=prov)
    prog.say(f"done in {summary['wall_seconds']:.1f} s -> {os.path.join(out, 'REPORT.md')}")
    return summary


def _build_figures(names, cfg, runner, prog, prov, summary, quick, data_dir, fig_dir):
    for name in names:
        fn = experiments.FIGURES[name][0]
        prog.figure = name
        prog.say(f"{name}: start")
        t0 = time.perf_counter()
        before = dict(runner.stats)
        status, err = "ok", None
        try:
            if name == "fig6_neural":
                data = fn(cfg[name], runner, reports_dir=REPORTS_DIR)
                if data is None:
                    status, err = "pending", "no learned-model results in reports/neural/*.json yet"
            else:
                data = fn(cfg[name], runner)
        except Exception as exc:  # keep going: the other figures and the stored cells survive
            status, err, data = "failed", f"{type(exc).__name__}: {exc}", None
            prog.say(f"{name}: FAILED\n{traceback.format_exc()}")
        wall = time.perf_counter() - t0
        rec = {
            "figure": name,
            "status": status,
            "error": err,
            "config": cfg[name],
            "config_file": summary["config"],
            "seed": cfg["seed"],
            "alpha": cfg["alpha"],
            "quick": quick,
            "provenance": prov,
            "wall_seconds": wall,
            "cells": {k: runner.stats[k] - before[k] for k in runner.stats},
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "data": data,
        }
        rec = jsonable(rec, nonfinite="string")
        json_path = os.path.join(data_dir, f"{name}.json")
        png_path = os.path.join(fig_dir, f"{name}.png")
        if status == "ok":
            try:
                plot_module(name).plot(rec, png_path)
            except Exception as exc:
                rec["status"], rec["error"] = "failed", f"plotting: {type(exc).__name__}: {exc}"
                prog.say(f"{name}: PLOT FAILED\n{traceback.format_exc()}")
        if rec["status"] != "ok" and os.path.exists(png_path):
            os.remove(png_path)  # never leave a stale figure beside a failed/pending record
        with open(json_path, "w") as f:
            json.dump(rec, f, indent=1, sort_keys=False)
            f.write("\n")
        summary["figures"][name] = {"status": rec["status"], "error": rec["error"], "wall_seconds": wall,
                                    "json": json_path, "png": png_path if rec["status"] == "ok" else None}
        prog.say(f"{name}: {rec['status']} in {wall:.1f} s ({rec['cells']['computed']} computed, {rec['cells']['cached']} cached)")


def run_from_args(args) -> int:
    summary = build(args.out, quick=args.quick, config=args.config, force=args.force, only=args.only,
                    progress=not args.no_progress)
    where = (f"wrote {os.path.join(summary['out'], 'REPORT.md')} (data, figures and the cell store "
             f"data/cells.sqlite under {summary['out']})")
    if args.json:
        print(json.dumps(jsonable(summary, nonfinite="string"), indent=1))
        print(where, file=sys.stderr)
    else:
        for name, s in summary["figures"].items():
            print(f"{name}: {s['status']}" + (f" ({s['error']})" if s["error"] else ""))
        print(where)
    return 1 if any(s["status"] == "failed" for s in summary["figures"].values()) else 0
