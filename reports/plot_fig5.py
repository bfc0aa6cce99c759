"""Figure 5: exact enumeration against Monte Carlo at small L (agreement within intervals).

Reads only ``data/fig5_exact_vs_mc.json``; ``python -m reports.plot_fig5 DATA.json OUT.png``.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from reports.style import COLORS, plt, save, style

METRICS = [
    ("ser", "SER: MC - exact", "probability"),
    ("gen_ppl", "log GenPPL: MC - exact", "nats / token"),
    ("instance_kl_per_token", r"$E_\tau$KL$(q||p_\tau)/L$: MC - exact", "nats / token"),
]


def _num(v):
    return float("nan") if v is None else float(v)


def differences(rows, metric):
    """(x, diff, lo, hi, covered) per row; gen_ppl on the log scale; NaN where undefined."""
    out = []
    for r in rows:
        ex = _num(r["exact"][metric])
        est, lo, hi = (_num(v) for v in r["mc"][metric])
        if metric == "gen_ppl":
            if not all(math.isfinite(v) and v > 0 for v in (ex, est, lo, hi)):
                out.append((np.nan,) * 4 + (None,))
                continue
            ex, est, lo, hi = math.log(ex), math.log(est), math.log(lo), math.log(hi)
        if not all(math.isfinite(v) for v in (ex, est, lo, hi)):
            out.append((np.nan,) * 4 + (None,))
            continue
        tol = 1e-9 * max(1.0, abs(ex))  # zero-width intervals (deterministic estimators): round-off only
        out.append((est - ex, lo - ex, hi - ex, ex, lo - tol <= ex <= hi + tol))
    return out


def coverage(rec):
    cov = tot = 0
    for metric, _, _ in METRICS:
        for d in differences(rec["data"]["rows"], metric):
            if d[4] is not None:
                tot += 1
                cov += bool(d[4])
    return cov, tot


def plot(rec, path):
    rows = rec["data"]["rows"]
    groups = []
    for i, r in enumerate(rows):
        key = (r["language"], r["L"])
        if not groups or groups[-1][0] != key:
            groups.append((key, []))
        groups[-1][1].append(i)
    x = np.arange(len(rows), dtype=float)
    # gaps between groups
    for gi, (_, idx) in enumerate(groups):
        x[idx] += gi * 1.0
    with style():
        fig, axes = plt.subplots(3, 1, figsize=(10, 7.2), sharex=True)
        for ax, (metric, title, unit) in zip(axes, METRICS):
            diffs = differences(rows, metric)
            for gi, (_, idx) in enumerate(groups):
                c = COLORS[gi % len(COLORS)]
                for i in idx:
                    d, lo, hi, _, ok = diffs[i]
                    if ok is None:
                        continue
                    ax.errorbar([x[i]], [d], yerr=[[d - lo], [hi - d]], fmt="o" if ok else "x", color=c, ms=4,
                                mfc=c if ok else "none")
            ax.axhline(0, color="0.3", lw=0.8)
            ax.set_ylabel(f"{title}\n[{unit}]", fontsize=8)
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        axes[-1].set_xticks(x)
        axes[-1].set_xticklabels([f"N={r['N']}" for r in rows], rotation=0)
        for gi, ((lang, L), idx) in enumerate(groups):
            axes[0].annotate(f"{lang}, L={L}", xy=(x[idx].mean(), 1.02), xycoords=("data", "axes fraction"),
                             ha="center", va="bottom", fontsize=7.5, color=COLORS[gi % len(COLORS)])
        cov, tot = coverage(rec)
        axes[0].set_title(f"Monte Carlo ({rec['data']['num_samples']} samples) minus exact, "
                          f"{100 * (1 - rec['data']['alpha']):.0f}% intervals: {cov} of {tot} cover the exact value",
                          pad=16)
        return save(fig, path)


def caption(rec) -> str:
    cov, tot = coverage(rec)
    a = rec["data"]["alpha"]
    return (
        "Monte Carlo estimates of the idealised sampler (SER with Clopper-Pearson intervals, generative perplexity on "
        "the log scale, and the Lemma B.2 bound E_tau KL(q||p_tau)/L, STATEMENTS.md §2 and §4.C) minus the exact values "
        f"from enumeration over all V^L sequences, for small languages and lengths. {cov} of {tot} intervals cover the "
        f"exact value (nominal {100 * (1 - a):.0f}%, so about {a * tot:.1f} misses are expected by chance; crosses mark "
        "misses; an interval of width 0 comes from an estimator that is constant on the support, e.g. the perplexity of "
        "a language that is uniform on its support). This checks the two engines against each other; every other figure rests on them."
    )


if __name__ == "__main__":  # pragma: no cover
    import json

    with open(sys.argv[1]) as f:
        plot(json.load(f), sys.argv[2])
