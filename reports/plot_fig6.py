"""Figure 6: learned MDM against the idealised sampler at the same steps (when results exist).

Reads only ``data/fig6_neural.json``; ``python -m reports.plot_fig6 DATA.json OUT.png``.
"""

from __future__ import annotations

import sys

import numpy as np

from .style import COLORS, plain_log_labels, plt, save, steps_axis, style


def _v(x, i=None):
    if x is None:
        return np.nan
    if i is None:
        return float(x)
    return np.nan if x[i] is None else float(x[i])


def _series(rows, who, metric):
    """(N, y, lo, hi) arrays for one sampler ('neural' or 'ideal') and metric."""
    out = []
    for r in rows:
        m = r[who]
        if who == "neural":
            y = _v(m.get(metric))
            ci = m.get(metric + "_ci") or [None, None]
            lo, hi = _v(ci, 0), _v(ci, 1)
        else:
            y, lo, hi = _v(m[metric], 0), _v(m[metric], 1), _v(m[metric], 2)
        out.append((y, lo, hi))
    a = np.array(out, dtype=float).reshape(-1, 3)
    return a[:, 0], a[:, 1], a[:, 2]


def plot(rec, path):
    d = rec["data"]
    langs = sorted({(r["language"], r["L"]) for r in d["rows"]})
    with style():
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.4))
        all_steps = sorted({r["num_steps"] for r in d["rows"] if r["num_steps"] != "ar"})
        ar_x = (all_steps[-1] if all_steps else 1) * 2.0
        for i, (lang, L) in enumerate(langs):
            rows = [r for r in d["rows"] if (r["language"], r["L"]) == (lang, L)]
            rows.sort(key=lambda r: (r["num_steps"] == "ar", r["num_steps"] if r["num_steps"] != "ar" else 0))
            x = np.array([ar_x if r["num_steps"] == "ar" else r["num_steps"] for r in rows], dtype=float)
            for axis, metric in ((ax, "gen_ppl"), (bx, "ser")):
                for who, fmt, lab in (("neural", "-o", "learned"), ("ideal", "--s", "idealised")):
                    y, lo, hi = _series(rows, who, metric)
                    err = [np.clip(y - np.where(np.isfinite(lo), lo, y), 0, None), np.clip(np.where(np.isfinite(hi), hi, y) - y, 0, None)]
                    axis.errorbar(x, y, yerr=err, fmt=fmt, color=COLORS[i % len(COLORS)],
                                  mfc="white" if who == "ideal" else None, label=f"{lang} (L={L}): {lab}")
        for axis in (ax, bx):
            steps_axis(axis, all_steps, ar_label="AR", ar_x=ar_x)
            axis.set_xlabel("number of sampling steps N")
        ax.set_yscale("log")
        plain_log_labels(ax)
        ax.set_ylabel("generative perplexity (per token)")
        ax.set_title("(a) generative perplexity")
        bx.set_ylabel("sequence error rate SER  [probability]")
        bx.set_title("(b) SER")
        ax.legend(loc="upper right")
        bx.legend(loc="upper right")
        return save(fig, path)


def caption(rec) -> str:
    d = rec["data"]
    files = sorted({r["file"] for r in d["rows"]})
    return (
        "Learned masked diffusion models (trained by the neural team; results from "
        + ", ".join(f"`neural/{f}`" for f in files)
        + f") against the idealised sampler (a perfect model; Monte Carlo, {d['num_samples']} samples) at the same "
        "language, length and number of steps; 'AR' is the autoregressive model / left-to-right sampler. The "
        "idealised sampler is what a learned model reaches with epsilon_learning = 0 (Assumption 4.1, STATEMENTS.md §3); "
        "the gap between the two curves is the learning error, which Theorems 4.2 and 4.3 add to the bounds."
    )


if __name__ == "__main__":  # pragma: no cover
    import json

    with open(sys.argv[1]) as f:
        plot(json.load(f), sys.argv[2])
