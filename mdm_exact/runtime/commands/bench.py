"""``mdm-theory bench``: run the benchmark scripts in the source tree's ``benchmarks/`` folder.

Benchmarks are not tests: the command prints the machine, its load and the Numba threads that a
``prange`` loop actually uses; each script prints medians over repeats and, for every benchmark,
the ratio against a plain reference implementation measured in the same run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def benchmarks_dir() -> Path:
    return Path(__file__).resolve().parents[3] / "benchmarks"


def available() -> dict:
    d = benchmarks_dir()
    if not d.is_dir():
        return {}
    return {p.stem.removeprefix("bench_"): p for p in sorted(d.glob("bench_*.py"))}


def _header() -> None:
    """Machine, load and the Numba threads a ``prange`` loop really uses (``benchmarks/_common.py``)."""
    subprocess.call([sys.executable, str(benchmarks_dir() / "_common.py")])


def register(sub):
    p = sub.add_parser(
        "bench",
        help="run benchmarks (ratios against plain reference implementations)",
        description="Run benchmark scripts from the source tree's benchmarks/ folder. "
        "Each script runs with its default settings.",
    )
    p.add_argument("names", nargs="*", help="benchmarks to run (default: all); see --list")
    p.add_argument("--list", action="store_true", help="list the available benchmarks")
    p.set_defaults(func=run)


def run(args) -> int:
    found = available()
    if not found:
        raise FileNotFoundError(
            f"no benchmarks found in {benchmarks_dir()}; `mdm-theory bench` runs from a source checkout "
            "(pip install -e .)"
        )
    if args.list:
        for name, path in found.items():
            print(f"{name:16s} {path}")
        return 0
    names = args.names or list(found)
    unknown = [n for n in names if n not in found]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; expected some of {sorted(found)}")
    _header()
    rc = 0
    for name in names:
        print(f"== bench {name} ==", flush=True)
        rc = max(rc, subprocess.call([sys.executable, str(found[name])]))
    return rc
