"""Benchmark of the Monte Carlo engine (``mdm_exact.sampler.montecarlo``).

Run: ``python benchmarks/bench_montecarlo.py`` (or ``mdm-theory bench montecarlo``).

1. Table-1 HMM (``paper-hmm``: S = 32, V = 8), L = 512, N = 16 / 64 / 256: samples per second
   of the Numba engine (median of ``--repeats`` runs) against the generic batched sampler
   (``mdm_exact.sampler.montecarlo.reference_run``: one ``conditional_marginals`` call per step over
   the sequences whose step is non-empty) measured in the same run, fed (a) by the plain NumPy
   forward-backward of the language (``HMM._reference_conditional_marginals``, the plain
   reference) and (b) by the language's own ``conditional_marginals`` (Numba forward-backward
   over all L positions, the generic fallback any language gets), and the ratios. Sampling only (``instance_kl=False``); the
   instance-KL estimate costs about as much again.
2. The Figure-1 grid: the four Table-1 languages x N in {8, 16, ..., 2048} x 1000 samples x
   L = 512 (SER and generative perplexity; with ``--grid-instance-kl`` also the instance-KL
   estimate, i.e. a second, teacher-forced pass on data samples). By default a subset of
   ``--grid-samples`` samples per cell is timed and the full grid is extrapolated linearly
   (printed as such); ``--grid-samples 1000`` runs the full grid.

Timings are wall clock on a machine that may be shared: compare ratios from the same run.
CPU seconds of this process are printed beside them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np

from mdm_exact.languages import load_language
from mdm_exact.sampler.montecarlo import run_monte_carlo
from mdm_exact.runtime.provenance import machine
from mdm_exact.sampler.schedules import schedule

GRID_LANGS = ("paper-2gram", "paper-3gram", "paper-4gram", "paper-hmm")
GRID_STEPS = tuple(2**k for k in range(3, 12))  # 8 .. 2048


class _PlainNumpy:
    """The language's plain NumPy forward-backward as the predictor (exact, same law)."""

    def __init__(self, lang):
        self.lang = lang
        self.vocab_size = lang.vocab_size

    def conditional_marginals(self, x, revealed):
        ref = getattr(self.lang, "_reference_conditional_marginals", None)
        return (ref or self.lang.conditional_marginals)(x, revealed)

    def describe(self):
        return {"kind": "plain-numpy-" + self.lang.kind}


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1000, help="samples per fast HMM run (default 1000)")
    ap.add_argument("--ref-samples", type=int, default=32, help="samples per NumPy reference run (default 32)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats (median) of each fast run")
    ap.add_argument("--steps", default="16,64,256", help="N values of part 1")
    ap.add_argument("--grid-samples", type=int, default=32, help="samples per Figure-1 cell actually run (1000 = full grid)")
    ap.add_argument("--grid-instance-kl", action="store_true", help="grid runs also estimate the instance KL")
    ap.add_argument("--skip-grid", action="store_true")
    args = ap.parse_args(argv)

    print("machine:", machine(), "| numba threads:", numba.get_num_threads())
    L = 512
    hmm = load_language("paper-hmm")
    # compile (cached on disk after the first run)
    run_monte_carlo(hmm, 8, schedule("linear", 2), 4, rng=0, instance_kl=True)
    print(f"\n1. paper-hmm (S = {hmm.num_states}, V = {hmm.vocab_size}), L = {L}: samples/s, median of {args.repeats}")
    plain = _PlainNumpy(hmm)
    print(f"{'N':>6} {'numba':>10} {'cpu-s/sample':>13} {'plain numpy':>12} {'ratio':>8} {'generic':>9} {'ratio':>8} {'numba+instKL':>13}")
    for N in (int(s) for s in args.steps.split(",")):
        rule = schedule("linear", N)
        rates, cpus = [], []
        for r in range(args.repeats):
            wall, cpu, res = timed(lambda: run_monte_carlo(hmm, L, rule, args.samples, rng=r, instance_kl=False))
            rates.append(args.samples / wall)
            cpus.append(cpu / args.samples)
        wall_r, _, _ = timed(lambda: run_monte_carlo(hmm, L, rule, args.ref_samples, rng=0, instance_kl=False, model=plain))
        ref_rate = args.ref_samples / wall_r
        wall_g, _, _ = timed(lambda: run_monte_carlo(hmm, L, rule, args.ref_samples, rng=0, instance_kl=False, method="reference"))
        gen_rate = args.ref_samples / wall_g
        wall_k, _, _ = timed(lambda: run_monte_carlo(hmm, L, rule, args.samples, rng=0, instance_kl=True))
        fast = statistics.median(rates)
        print(
            f"{N:>6} {fast:>10.1f} {statistics.median(cpus):>13.5f} {ref_rate:>12.2f} {fast / ref_rate:>8.1f}"
            f" {gen_rate:>9.2f} {fast / gen_rate:>8.1f}"
            f" {args.samples / wall_k:>13.1f}"
        )
    if args.skip_grid:
        return 0
    m = args.grid_samples
    ikl = bool(args.grid_instance_kl)
    print(f"\n2. Figure-1 grid: {len(GRID_LANGS)} languages x N in {GRID_STEPS[0]}..{GRID_STEPS[-1]} x L = {L}, "
          f"instance KL {'on' if ikl else 'off'}; "
          f"{m} samples per cell run{'' if m >= 1000 else ', full grid (1000 per cell) extrapolated linearly'}")
    total = 0.0
    for name in GRID_LANGS:
        lang = load_language(name)
        run_monte_carlo(lang, 16, schedule("linear", 2), 4, rng=0, instance_kl=False)  # compile
        # one-time setup per process at L (n-gram transition powers, HMM matrix powers)
        setup, _, _ = timed(lambda: run_monte_carlo(lang, L, schedule("linear", 2), 1, rng=0, instance_kl=False))
        row = []
        for N in GRID_STEPS:
            wall, _, res = timed(lambda: run_monte_carlo(lang, L, schedule("linear", N), m, rng=N, instance_kl=ikl))
            row.append(wall * 1000 / m)
        total += sum(row) + setup
        print(f"  {name:<12} " + " ".join(f"{N}:{t:.1f}s" for N, t in zip(GRID_STEPS, row)) + f"  | {sum(row):.0f} s (+ setup {setup:.1f} s)")
    print(f"  full grid (1000 samples per cell): {'measured' if m >= 1000 else 'extrapolated'} {total:.0f} s = {total / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
