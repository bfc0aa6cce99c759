"""Figure 6: learned MDM against the idealised sampler at the same steps (when results exist).

Reads only ``data/fig6_neural.json``; ``python -m reports.plot_fig6 DATA.json OUT.png``.
"""

from __future__ import annotations

import sys

import numpy as np

from reports.style import COLORS, plain_log_labels, plt, save, steps_axis, style

RUN_STYLES = [("-", "o"), ("-.", "^"), (":", "v"), ("-", "D")]


def _triple_neural(r, metric):
    m = r["neural"]
    y = m.get(metric)
    ci = m.get(metric + "_ci") or [None, None]
    return [np.nan if v is None else float(v) for v in (y, ci[0], ci[1])]


def _triple_ideal(r, metric):
    return [np.nan if v is None else float(v) for v in r["ideal"][metric]]


def _xpos(r, ar_x):
    return ar_x if r["num_steps"] == "ar" else float(r["num_steps"])


def _panel_rows(rows, want_t0):
    sel = [r for r in rows if r["language"].endswith("-t0") == want_t0]
    return sel or rows


def _draw(ax, rows, metric, ar_x, lang_colors, runs):
    for lang in sorted({r["language"] for r in rows}):
        col = lang_colors[lang]
        lrows = [r for r in rows if r["language"] == lang]
        for run in runs:
            rr = sorted([r for r in lrows if r["run"] == run], key=lambda r: _xpos(r, ar_x))
            if not rr:
                continue
            ls, mk = RUN_STYLES[runs.index(run) % len(RUN_STYLES)]
            a = np.array([_triple_neural(r, metric) for r in rr])  # (n, 3)
            x = np.array([_xpos(r, ar_x) for r in rr])
            mdm = x != ar_x
            err = [np.clip(a[:, 0] - np.where(np.isfinite(a[:, 1]), a[:, 1], a[:, 0]), 0, None),
                   np.clip(np.where(np.isfinite(a[:, 2]), a[:, 2], a[:, 0]) - a[:, 0], 0, None)]
            ax.errorbar(x[mdm], a[mdm, 0], yerr=[err[0][mdm], err[1][mdm]], fmt=ls + mk, color=col, ms=4,
                        label=f"{lang}: learned MDM ({run.split('/')[-1].replace('-results', '')})")
            if np.any(~mdm):
                ax.errorbar(x[~mdm], a[~mdm, 0], yerr=[err[0][~mdm], err[1][~mdm]], fmt=mk, color=col, ms=6)
        # the idealised sampler: one curve per language (identical cells across runs)
        seen = {}
        for r in lrows:
            seen.setdefault(_xpos(r, ar_x), r)
        xs = sorted(seen)
        a = np.array([_triple_ideal(seen[x], metric) for x in xs])
        xs = np.array(xs)
        mdm = xs != ar_x
        ax.errorbar(xs[mdm], a[mdm, 0], yerr=[a[mdm, 0] - a[mdm, 1], a[mdm, 2] - a[mdm, 0]], fmt="--s", color=col,
                    mfc="white", ms=4, lw=1.0, alpha=0.9, label=f"{lang}: idealised sampler")
        if np.any(~mdm):
            ax.errorbar(xs[~mdm], a[~mdm, 0], yerr=[a[~mdm, 0] - a[~mdm, 1], a[~mdm, 2] - a[~mdm, 0]], fmt="s",
                        color=col, mfc="white", ms=6)


def plot(rec, path):
    d = rec["data"]
    rows = d["rows"]
    langs = sorted({r["language"] for r in rows})
    lang_colors = {lg: COLORS[i % len(COLORS)] for i, lg in enumerate(langs)}
    runs = sorted({r["run"] for r in rows})
    steps = sorted({r["num_steps"] for r in rows if r["num_steps"] != "ar"})
    ar_x = steps[-1] * 2.0 if steps else 2.0
    L = sorted({r["L"] for r in rows})
    with style():
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.8))
        _draw(ax, _panel_rows(rows, True), "gen_ppl", ar_x, lang_colors, runs)
        _draw(bx, _panel_rows(rows, False), "ser", ar_x, lang_colors, runs)
        for axis in (ax, bx):
            steps_axis(axis, steps, ar_label="AR", ar_x=ar_x)
            axis.set_xlabel(f"number of sampling steps N (L = {', '.join(map(str, L))})")
        ax.set_yscale("log")
        plain_log_labels(ax)
        ax.set_ylabel("generative perplexity (per token)")
        ax.set_title("(a) generative perplexity, threshold-0 languages")
        bx.set_ylabel("sequence error rate SER  [probability]")
        bx.set_ylim(-0.03, 1.03)
        bx.set_title("(b) SER, thresholded languages")
        ax.legend(loc="center right", fontsize=7)
        bx.legend(loc="lower left", fontsize=7)
        return save(fig, path)


def caption(rec) -> str:
    d = rec["data"]
    rows = d["rows"]
    runs = sorted({r["run"] for r in rows})
    parts = []
    for run in runs:
        for lang in sorted({r["language"] for r in rows if r["run"] == run}):
            rr = [r for r in rows if r["run"] == run and r["language"] == lang and r["num_steps"] != "ar"]
            if not rr:
                continue
            last = max(rr, key=lambda r: r["num_steps"])
            metric = "gen_ppl" if lang.endswith("-t0") else "ser"
            nv = last["neural"].get(metric)
            iv = last["ideal"][metric][0]
            name = {"gen_ppl": "GenPPL", "ser": "SER"}[metric]
            s = f"{lang} ({run.split('/')[-1].replace('-results', '')}): at N = {last['num_steps']} learned {name} " + \
                (f"{nv:.3f}" if nv is not None else "n/a") + f" vs idealised {iv:.3f}"
            if last.get("epsilon_mean") is not None:
                s += f", measured per-token KL mean {last['epsilon_mean']:.3f} (max {last['epsilon_max']:.2f}) nats"
            parts.append(s)
    n_learned = sorted({r["neural"].get("num_samples") for r in rows if r["neural"].get("num_samples")})
    return (
        "Learned masked diffusion models (the neural team's GPU runs, `reports/neural/`; "
        f"{', '.join(map(str, n_learned)) or 'unknown'} samples per point) against the idealised sampler (a perfect model, "
        "Monte Carlo, the same cells as Figure 1) at the same language, length and number of steps; 'AR' is the "
        "autoregressive model (filled) and the left-to-right sampler (open). The idealised sampler is what a learned model "
        "reaches with epsilon_learning = 0 (Assumption 4.1, STATEMENTS.md §3); the gap between the curves is the learning "
        "error, which Theorems 4.2 and 4.3 add to their bounds (§4.A): past a few dozen steps it, not the number of steps, "
        "sets the learned model's perplexity and SER. " + "; ".join(parts) + "."
    )


if __name__ == "__main__":  # pragma: no cover
    import json

    with open(sys.argv[1]) as f:
        plot(json.load(f), sys.argv[2])
