"""Benchmark of the Monte Carlo engine (``mdm_exact.sampler.montecarlo``).

Run: ``python benchmarks/bench_montecarlo.py`` (or ``mdm-theory bench montecarlo``).

Header: the machine, its load average, the Numba threads configured and the number that a
``prange`` loop actually used.

1. Table-1 HMM (``paper-hmm``: S = 32, V = 8), L = 512, N = 16 / 64 / 256, sampling only
   (``instance_kl=False``), at ``--sizes`` sample counts (256 and 4096): samples per second
   (median of ``--repeats`` runs), CPU seconds per sample and the cores kept busy
   (CPU / wall), against, in the same run,

   * the **plain batched float64 reference**: the same sampler with every step's conditionals
     from one lined-up NumPy forward-backward over all positions for the whole batch
     (``_PlainBatched``: a ``(batch, S) @ (S, S)`` BLAS product, the emission factor and a
     normalisation per position, as a plain batched torch/JAX implementation does), BLAS on
     one thread; it is checked against the language's marginals before timing;
   * the generic fallback (``method="reference"``: the language's own ``conditional_marginals``).

   The ratio is the kernel's samples/s over the reference's, both medians of this run.
2. ``mdm-theory sample`` as a subprocess at the same sizes (N = 64): end-to-end wall time,
   the rate it reports, and the fixed cost per call (wall - sampling seconds: Python start-up,
   imports, Numba cache load).
3. The Figure-1 grid: the four Table-1 languages x N in {8, 16, ..., 2048} x 1000 samples x
   L = 512 (SER and generative perplexity; with ``--grid-instance-kl`` also the instance-KL
   estimate, i.e. a second, teacher-forced pass on data samples). By default a subset of
   ``--grid-samples`` samples per cell is timed and the full grid is extrapolated linearly
   (printed as such); ``--grid-samples 1000`` runs the full grid. Each language also runs the
   generic reference (``method="reference"``) on ``--grid-ref-samples`` samples at N = 64 and
   prints its time per sample over the kernel's at that cell (the ratio of this run).

Timings are medians on a machine that may be shared: compare ratios from the same run; the CPU
time per sample is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

import numpy as np

from _common import header, median_timed, timed
from mdm_exact.languages import load_language
from mdm_exact.sampler.montecarlo import run_monte_carlo
from mdm_exact.sampler.schedules import schedule

GRID_LANGS = ("paper-2gram", "paper-3gram", "paper-4gram", "paper-hmm")
GRID_STEPS = tuple(2**k for k in range(3, 12))  # 8 .. 2048


class _PlainBatched:
    """The plain batched float64 predictor: one lined-up forward-backward per call, written as
    a plain batched (torch/JAX-style) implementation would be: per position a ``(n, S) @ (S, S)``
    product, the emission factor and a normalisation; posteriors through ``B``."""

    def __init__(self, lang):
        self.lang = lang
        self.vocab_size = lang.vocab_size
        self.pi = np.asarray(lang.initial, dtype=np.float64)  # (S,)
        self.A = np.asarray(lang.transition, dtype=np.float64)  # (S, S)
        self.B = np.asarray(lang.emission, dtype=np.float64)  # (S, V)

    def conditional_marginals(self, x, revealed):
        n, L = x.shape
        S, V = self.B.shape
        E = np.where(revealed[:, :, None], self.B.T[x], 1.0)  # (n, L, S) emission factors
        alpha = np.empty((L, n, S))
        a = np.broadcast_to(self.pi, (n, S))
        for t in range(L):
            a = (a if t == 0 else a @ self.A) * E[:, t]
            a = a / a.sum(axis=1, keepdims=True)
            alpha[t] = a
        post = np.empty((L, n, S))
        b = np.ones((n, S))
        for t in range(L - 1, -1, -1):
            post[t] = alpha[t] * b
            b = (b * E[:, t]) @ self.A.T
            b = b / b.sum(axis=1, keepdims=True)
        # alpha includes the emission at t; dividing it out again is what the posterior needs
        # at masked positions (E = 1 there); revealed positions are never read by the sampler
        cond = np.einsum("tns,sv->ntv", post, self.B)  # (n, L, V)
        return cond / cond.sum(axis=2, keepdims=True)

    def describe(self):
        return {"kind": "plain-batched-numpy-" + self.lang.kind}


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # benchmark only: say so instead of failing
        print("  (threadpoolctl not installed: the reference's BLAS threads are not limited)")
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _cli(L, N, n):
    import resource

    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [sys.executable, "-m", "mdm_exact.runtime.cli", "sample", "--language", "paper-hmm", "--length", str(L),
           "--steps", str(N), "--samples", str(n), "--seed", "0", "--no-instance-kl", "--json"]
    wall, _, out = timed(lambda: subprocess.run(cmd, check=True, capture_output=True, text=True))
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = json.loads(out.stdout)
    cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    return wall, res["seconds"], res["samples_per_second"], cpu


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="256,4096", help="sample counts of the fast runs (default 256,4096)")
    ap.add_argument("--ref-samples", type=int, default=64, help="samples per plain-reference run (default 64)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats (median) of each run")
    ap.add_argument("--steps", default="16,64,256", help="N values of part 1")
    ap.add_argument("--grid-samples", type=int, default=32, help="samples per Figure-1 cell actually run (1000 = full grid)")
    ap.add_argument("--grid-instance-kl", action="store_true", help="grid runs also estimate the instance KL")
    ap.add_argument("--grid-ref-samples", type=int, default=8,
                    help="samples of the generic NumPy reference (method='reference') at N = 64 per grid language, for the ratio")
    ap.add_argument("--skip-grid", action="store_true")
    ap.add_argument("--skip-cli", action="store_true")
    args = ap.parse_args(argv)

    header()
    L = 512
    sizes = [int(v) for v in args.sizes.split(",")]
    hmm = load_language("paper-hmm")
    run_monte_carlo(hmm, 8, schedule("linear", 2), 4, rng=0, instance_kl=True)  # compile / load the cache
    run_monte_carlo(hmm, L, schedule("linear", 2), 4, rng=0, instance_kl=False)  # tables at L
    plain = _PlainBatched(hmm)
    xs = hmm.sample(8, L, rng=1)
    rv = np.random.default_rng(1).random((8, L)) < 0.5
    err = np.abs(plain.conditional_marginals(xs, rv) - hmm.conditional_marginals(xs, rv))[~rv].max()
    assert err < 1e-12, f"plain reference disagrees with the language: {err}"
    print(f"\n1. paper-hmm (S = {hmm.num_states}, V = {hmm.vocab_size}), L = {L}, sampling only; medians of {args.repeats}")
    print(f"{'N':>5} {'samples':>8} {'numba/s':>9} {'cpu ms/smp':>11} {'cores':>6} | {'plain batched/s':>16} "
          f"{'cpu ms/smp':>11} {'ratio':>7} | {'generic/s':>10} {'ratio':>7}")
    for N in (int(v) for v in args.steps.split(",")):
        rule = schedule("linear", N)
        with _one_blas_thread():
            w_ref, c_ref = median_timed(
                lambda: run_monte_carlo(hmm, L, rule, args.ref_samples, rng=0, instance_kl=False, model=plain), args.repeats)
        ref_rate = args.ref_samples / w_ref
        w_gen, _ = median_timed(
            lambda: run_monte_carlo(hmm, L, rule, args.ref_samples, rng=0, instance_kl=False, method="reference"), 1)
        gen_rate = args.ref_samples / w_gen
        for n in sizes:
            w, c = median_timed(lambda: run_monte_carlo(hmm, L, rule, n, rng=0, instance_kl=False), args.repeats)
            rate = n / w
            print(f"{N:>5} {n:>8} {rate:>9.1f} {c / n * 1e3:>11.2f} {c / w:>6.2f} | {ref_rate:>16.1f} "
                  f"{c_ref / args.ref_samples * 1e3:>11.2f} {rate / ref_rate:>6.1f}x | {gen_rate:>10.1f} {rate / gen_rate:>6.1f}x")
    if not args.skip_cli:
        print(f"\n2. `mdm-theory sample --language paper-hmm --length {L} --steps 64 --no-instance-kl --json` "
              f"(subprocess; medians of {args.repeats})")
        for n in sizes:
            runs = [_cli(L, 64, n) for _ in range(args.repeats)]
            wall = statistics.median(r[0] for r in runs)
            secs = statistics.median(r[1] for r in runs)
            cpu = statistics.median(r[3] for r in runs)
            _, c_in = median_timed(lambda: run_monte_carlo(hmm, L, schedule("linear", 64), n, rng=0, instance_kl=False), 1)
            print(f"  {n:>5} samples: end to end {wall:6.2f} s = {n / wall:7.1f} samples/s (reported "
                  f"{statistics.median(r[2] for r in runs):.1f}/s); fixed cost per call: wall {wall - secs:5.2f} s, "
                  f"CPU {cpu - c_in:5.2f} s (process CPU {cpu:.2f} s - in-process sampling CPU {c_in:.2f} s)")
    if args.skip_grid:
        return 0
    m = args.grid_samples
    ikl = bool(args.grid_instance_kl)
    print(f"\n3. Figure-1 grid: {len(GRID_LANGS)} languages x N in {GRID_STEPS[0]}..{GRID_STEPS[-1]} x L = {L}, "
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
        ratio = ""
        if args.grid_ref_samples > 0:  # the generic reference at one cell, same run: its per-sample time over the kernel's
            nr = args.grid_ref_samples
            ref, _, _ = timed(lambda: run_monte_carlo(lang, L, schedule("linear", 64), nr, rng=64, instance_kl=ikl, method="reference"))
            fast = row[GRID_STEPS.index(64)] / 1000  # kernel seconds per sample at N = 64
            ratio = f"; N = 64: {fast:.4f} s/sample vs reference {ref / nr:.3f} s/sample = {ref / nr / fast:.1f}x"
        print(f"  {name:<12} " + " ".join(f"{N}:{t:.1f}s" for N, t in zip(GRID_STEPS, row)) + f"  | {sum(row):.0f} s (+ setup {setup:.1f} s){ratio}")
    print(f"  full grid (1000 samples per cell): {'measured' if m >= 1000 else 'extrapolated'} {total:.0f} s = {total / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
