"""Benchmark of the exact engine (``mdm_exact.sampler.exact.exact_output_law``).

Usage::

    python benchmarks/bench_exact.py                 # bigram V=2, L=12, N=12 + reference ratios
    python benchmarks/bench_exact.py --scan          # largest L within 60 s for V = 2, 3, 4
    python benchmarks/bench_exact.py --repeats 5 --json

Prints the machine, medians of wall and CPU time, peak memory (tracemalloc: NumPy
allocations; ru_maxrss: whole process), and the speed-up against two plain references measured
in the same run: the sum over all ``N^L`` instances (V=2, L=5, N=3) (``reference_output_law``) and the
plain-Python forward DP (``_use_kernel=False``; V=2, L=7, N=7).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
import tracemalloc

import numpy as np


def bigram(V, seed=0):
    from mdm_exact.languages import NGram

    rng = np.random.default_rng(seed)
    return NGram(2, rng.dirichlet(np.ones(V)), rng.dirichlet(np.ones(V), size=V))


def timed(fn, repeats):
    walls, cpus = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return out, statistics.median(walls), statistics.median(cpus)


def peak_memory(fn):
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--L", type=int, default=12)
    ap.add_argument("--V", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None, help="default: L")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scan", action="store_true", help="largest L within --budget seconds for V = 2, 3, 4")
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import numba

    from mdm_exact.sampler import exact as E
    from mdm_exact.runtime.provenance import provenance
    from mdm_exact.sampler.schedules import schedule

    prov = provenance()
    out = {"machine": prov.get("machine"), "numba_threads": numba.get_num_threads(), "cpu_count": os.cpu_count(),
           "load_average": os.getloadavg()}
    print(f"machine: {out['machine']}; numba threads {out['numba_threads']}; load average {out['load_average']}")

    # warm-up (compilation / cache load)
    E.exact_output_law(bigram(2), 4, schedule("linear", 2))

    # ratios against plain references at a size they can do
    lang6 = bigram(2)
    rule6 = schedule("linear", 3)
    from mdm_exact.testing.oracle import reference_output_law

    _, w_ref, _ = timed(lambda: reference_output_law(lang6, 5, rule6), 1)
    _, w_fast6, _ = timed(lambda: E.exact_output_law(lang6, 5, rule6), max(3, args.repeats))
    lang7 = bigram(2)
    rule7 = schedule("linear", 7)
    _, w_py, _ = timed(lambda: E.exact_output_law(lang7, 7, rule7, _use_kernel=False), 1)
    _, w_fast7, _ = timed(lambda: E.exact_output_law(lang7, 7, rule7), max(3, args.repeats))
    out["ratio_vs_instance_sum_L5_N3"] = w_ref / w_fast6
    out["ratio_vs_python_dp_L7_N7"] = w_py / w_fast7
    print(f"V=2 L=5 N=3: sum over 3^5 instances {w_ref:.3f} s, DP {w_fast6 * 1e3:.2f} ms -> ratio {w_ref / w_fast6:.0f}x")
    print(f"V=2 L=7 N=7: plain-Python DP {w_py:.3f} s, kernel {w_fast7 * 1e3:.2f} ms -> ratio {w_py / w_fast7:.0f}x")

    # the headline case
    N = args.steps or args.L
    lang = bigram(args.V)
    rule = schedule("linear", N)
    log_p, wall, cpu = timed(lambda: E.exact_output_law(lang, args.L, rule), args.repeats)
    peak = peak_memory(lambda: E.exact_output_law(lang, args.L, rule))
    mass = float(np.exp(log_p).sum())
    out.update({"V": args.V, "L": args.L, "N": N, "wall_median_s": wall, "cpu_median_s": cpu,
                "peak_tracemalloc_bytes": peak,
                "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "total_mass": mass})
    print(f"V={args.V} L={args.L} N={N} linear: median wall {wall:.2f} s, CPU {cpu:.2f} s over {args.repeats} runs; "
          f"peak NumPy memory {peak / 2**20:.1f} MiB, process max RSS {out['ru_maxrss_bytes'] / 2**20:.0f} MiB; "
          f"total mass - 1 = {mass - 1:.2e}")

    if args.scan:
        scan = {}
        for V in (2, 3, 4):
            best, L = None, 4
            while True:
                try:
                    _, w, _ = timed(lambda: E.exact_output_law(bigram(V), L, schedule("linear", L), max_work=1e13), 1)
                except ValueError as exc:
                    print(f"  V={V} L={L}: refused ({exc})")
                    break
                print(f"  V={V} L={L} N={L}: {w:.2f} s", flush=True)
                if w > args.budget:
                    break
                best = L
                # next size costs about (2V+1) (L+1)/L times more; stop if clearly over budget
                if w * (2 * V + 1) * (L + 1) / L > 3 * args.budget:
                    break
                L += 1
            scan[V] = best
            print(f"V={V}: largest L (N = L, linear) within {args.budget:.0f} s: {best}")
        out["largest_L_within_budget"] = scan
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
