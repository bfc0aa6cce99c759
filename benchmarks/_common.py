"""Shared pieces of the benchmark scripts: the header (machine, load, threads actually used) and
median timing with CPU time.

On a shared machine wall time depends on the other jobs; the CPU time of this process (all
threads) per item is the steadier figure, and ``cpu / wall`` says how many cores a run really
kept busy.
"""

from __future__ import annotations

import os
import statistics
import time

import numba
import numpy as np
from numba import njit, prange

from mdm_exact.runtime.provenance import machine


@njit(parallel=True)
def _thread_ids(n):
    out = np.empty(n, dtype=np.int64)
    for i in prange(n):
        acc = 0.0
        for k in range(2000):  # enough work per item that every thread gets some
            acc += np.sqrt(k + i)
        out[i] = numba.get_thread_id() + (0 if acc >= 0 else 1)
    return out


def threads_used() -> int:
    """Number of distinct Numba threads that ran items of a ``prange`` loop (measured)."""
    return int(np.unique(_thread_ids(20000)).size)


def header() -> None:
    """Print the machine, its load average, the configured and measured Numba threads."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print("machine:", machine())
    print(f"numba threads: {numba.get_num_threads()} configured, {threads_used()} used by a prange loop "
          f"(threading layer {numba.threading_layer()}); load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
          f"on {os.cpu_count()} CPUs")


def timed(fn):
    """``(wall seconds, CPU seconds of this process, fn())``."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def median_timed(fn, repeats):
    """Medians over ``repeats`` calls: ``(wall, cpu)``."""
    ws, cs = [], []
    for _ in range(max(1, repeats)):
        w, c, _ = timed(fn)
        ws.append(w)
        cs.append(c)
    return statistics.median(ws), statistics.median(cs)


if __name__ == "__main__":  # `mdm-theory bench` prints this once before the scripts
    header()
