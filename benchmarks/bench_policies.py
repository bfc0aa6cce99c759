"""Benchmark of the adaptive-policy Monte Carlo engine (``mdm_exact.sampler.adaptive_mc``).

Run: ``python benchmarks/bench_policies.py [--samples 256 4096] [--repeats 3] [--threads 2]``.

Case of issue 16: confidence top-k, 64 steps of 8 positions, ``paper-hmm`` (S = 32, V = 8),
L = 512. Every step needs the conditionals at every candidate, i.e. one full forward-backward
per sequence and step. Printed: machine, Numba threads used, median samples/s of the Numba
engine at each sample count, and of the plain batched NumPy implementation of the same policy
(``reference_policy_run`` fed by ``hmm_conditionals_numpy``: sequences lined up, one ``@`` per
position) measured in the same run on ``--ref-samples`` samples, and the ratio. Both produce
the same samples from the same seed (checked on the reference's samples).

Timings are wall clock on a machine that may be shared: compare ratios from the same run. CPU
seconds of this process are printed beside them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np

from mdm_exact.languages import make_preset
from mdm_exact.runtime.provenance import machine
from mdm_exact.sampler import adaptive_mc as M
from mdm_exact.sampler.policies import make_policy


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, nargs="+", default=[256, 4096])
    ap.add_argument("--ref-samples", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="Numba threads (default: all)")
    ap.add_argument("--policy", default="confidence")
    args = ap.parse_args(argv)
    if args.threads:
        numba.set_num_threads(args.threads)
    L = 512
    lang = make_preset("paper-hmm")
    pol = make_policy(args.policy, L=L, step_sizes=(8,) * 64)
    print("machine:", machine(), "| numba threads:", numba.get_num_threads())
    print(f"case: {args.policy} top-k, 64 steps x 8 positions, paper-hmm (S = {lang.num_states}, V = {lang.vocab_size}), L = {L}")
    M.sample_policy(lang, L, pol, M.CHUNK, rng=0)  # compile
    pi, A, B = lang.initial, lang.transition, lang.emission

    def twin(x, r):
        return M.hmm_conditionals_numpy(pi, A, B, x, r)

    ref_rates = []
    for _ in range(args.repeats):
        dt, cpu, (xr, _, _) = timed(lambda: M.sample_policy(lang, L, pol, args.ref_samples, rng=1, conditionals=twin))
        ref_rates.append(args.ref_samples / dt)
    ref = statistics.median(ref_rates)
    print(f"plain batched NumPy ({args.ref_samples} samples): {ref:8.1f} samples/s (median of {args.repeats}; {cpu / args.ref_samples * 1e3:.1f} cpu-ms/sample)")
    for n in args.samples:
        rates = []
        for _ in range(args.repeats):
            dt, cpu, (x, _, _) = timed(lambda: M.sample_policy(lang, L, pol, n, rng=1))
            rates.append(n / dt)
        same = bool(np.array_equal(x[: args.ref_samples], xr[: min(n, args.ref_samples)])) if n >= args.ref_samples else None
        med = statistics.median(rates)
        print(f"numba ({n:>5} samples): {med:8.1f} samples/s (median of {args.repeats}; runs {', '.join(f'{r:.0f}' for r in rates)}; "
              f"{cpu / n * 1e3:.1f} cpu-ms/sample) | ratio vs plain NumPy {med / ref:5.1f}x | same samples: {same}")


if __name__ == "__main__":
    main()
