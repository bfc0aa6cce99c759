"""Benchmark of exact inference in the languages (``mdm_exact.languages`` + ``mdm_exact.languages._kernels``).

Run: ``python benchmarks/bench_languages.py`` (or ``mdm-theory bench languages``).

1. ``conditional_marginals`` and ``log_prob_revealed`` on the Table-1 HMM (``paper-hmm``:
   S = 32, V = 8), L = 512, half of the positions revealed at random, batch 256: median wall
   time of ``--repeats`` calls of the Numba kernels (dense-row kernel, the default for
   S <= 64, and the CSR kernel) against the plain batched NumPy forward-backward
   (``_forward_backward.py``, the reference) measured in the same run, and their ratio.
2. The same for ``paper-4gram`` (512 contexts, CSR successor lists) and the Note C.8 HMM of
   the interval language with l = 5 (``interval_hmm(5)``: 2704 states, CSR kernel).
3. ``mdm-theory language show paper-hmm`` as a subprocess: first call with an empty Numba
   cache (compile), second call (cache load), and the in-process warm time of the same work.

Timings are wall clock on a machine that may be shared: compare ratios from the same run. CPU
time of this process (all threads) is printed beside them: on a loaded machine the CPU ratio
is the steadier number (NumPy's BLAS and the Numba kernels both use every core they get).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from mdm_exact.languages import load_language
from mdm_exact.languages.examples import IntervalLanguage, interval_hmm
from _common import header


def median_time(fn, repeats, *, cpu=False):
    """Median wall time (and, with ``cpu=True``, median CPU time of this process, all threads)."""
    ts, cs = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    return (statistics.median(ts), statistics.median(cs)) if cpu else statistics.median(ts)


def bench_language(title, lang, x, rev, repeats, variants):
    B, L = x.shape
    print(f"\n{title}: batch {B}, L = {L}, {rev.mean():.0%} revealed")
    for method, ref in (("conditional_marginals", "_reference_conditional_marginals"),
                        ("log_prob_revealed", "_reference_log_prob_revealed")):
        t_ref, c_ref = median_time(lambda: getattr(lang, ref)(x, rev), max(1, repeats // 2), cpu=True)
        print(f"  {method:<22} NumPy reference       {t_ref * 1e3:9.1f} ms  {B / t_ref:10.0f} seq/s"
              f"  (cpu {c_ref * 1e3:.0f} ms)")
        for label, setup in variants:
            setup(lang)
            getattr(lang, method)(x[:2], rev[:2])  # compile / load cache
            fast = getattr(lang, method)(x, rev)
            slow = getattr(lang, ref)(x, rev)
            err = np.max(np.abs(np.where(np.isfinite(slow), fast - slow, 0.0)))
            t, c = median_time(lambda: getattr(lang, method)(x, rev), repeats, cpu=True)
            print(f"  {method:<22} {label:<21} {t * 1e3:9.1f} ms  {B / t:10.0f} seq/s  "
                  f"ratio {t_ref / t:6.1f}x  (cpu {c * 1e3:.0f} ms, cpu ratio {c_ref / c:.1f}x; max |diff| {err:.1e})")


def bench_show(repeats):
    print("\n`mdm-theory language show paper-hmm` (subprocess wall time, includes Python start-up):")
    cmd = [sys.executable, "-m", "mdm_exact.runtime.cli", "language", "show", "paper-hmm"]
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("first call, empty Numba cache (compile)", "second call (cache load)"):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            print(f"  {label:<42} {time.perf_counter() - t0:6.2f} s")
    from mdm_exact.runtime.commands.language import show_info

    lang = load_language("paper-hmm")
    show_info(lang)
    t = median_time(lambda: show_info(load_language("paper-hmm")), repeats)
    print(f"  {'warm, in-process (same work, no start-up)':<42} {t:6.2f} s")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-show", action="store_true", help="skip the CLI start-up timing")
    args = ap.parse_args(argv)
    header()
    rng = np.random.default_rng(args.seed)
    B, L = args.batch, args.length

    def dense(lang):
        lang.kernel = "dense"

    def csr(lang):
        lang.kernel = "csr"

    def default(lang):
        pass

    hmm = load_language("paper-hmm")
    x = hmm.sample(B, L, rng=rng)
    rev = rng.random((B, L)) < 0.5
    bench_language("paper-hmm (S=32, V=8)", hmm, x, rev, args.repeats,
                   [("Numba dense-row", dense), ("Numba CSR", csr)])

    g4 = load_language("paper-4gram")
    x = g4.sample(B, L, rng=rng)
    bench_language("paper-4gram (512 contexts, V=8)", g4, x, rev, args.repeats, [("Numba CSR", default)])

    h5 = interval_hmm(5)
    L5 = (min(L, 100) // 5) * 5
    B5 = min(B, 64)
    x = IntervalLanguage(5).sample(B5, L5, rng=rng)
    rev5 = rng.random((B5, L5)) < 0.5
    bench_language("interval_hmm(5) (S=2704, V=16)", h5, x, rev5, max(1, args.repeats // 2), [("Numba CSR", default)])

    if not args.skip_show:
        bench_show(max(1, args.repeats // 2))


if __name__ == "__main__":
    main()
