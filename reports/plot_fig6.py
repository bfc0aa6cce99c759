"""Figure 6: learned MDM against the idealised sampler at the same steps (when results exist).

Reads only ``data/fig6_neural.json``; ``python -m reports.plot_fig6 DATA.json OUT.png``.
Runs at different lengths ``L`` are separate curves (and separate idealised curves). Where a run
recorded the idealised sampler drawn with the same instances and uniforms as the learned MDM
(``coupled``, issue 14), it is drawn dotted with open triangles next to the independent Monte
Carlo reference (dashed, open squares). Where the results hold ``by_mask_fraction`` rows of the
held-out leakage measurement, a last panel draws KL / H per masked token against the masked
fraction of the context: where, in the sampling trajectory, the learning error sits.
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
                        label=f"{lang}, L = {rr[0]['L']}: learned MDM ({run.split('/')[-1].replace('-results', '')})")
            if np.any(~mdm):
                ax.errorbar(x[~mdm], a[~mdm, 0], yerr=[err[0][~mdm], err[1][~mdm]], fmt=mk, color=col, ms=6)
        # the idealised sampler: one curve per language and length (identical cells across runs)
        for L in sorted({r["L"] for r in lrows}):
            seen = {}
            for r in lrows:
                if r["L"] == L:
                    seen.setdefault(_xpos(r, ar_x), r)
            xs = sorted(seen)
            a = np.array([_triple_ideal(seen[x], metric) for x in xs])
            xs = np.array(xs)
            mdm = xs != ar_x
            ax.errorbar(xs[mdm], a[mdm, 0], yerr=[a[mdm, 0] - a[mdm, 1], a[mdm, 2] - a[mdm, 0]], fmt="--s", color=col,
                        mfc="white", ms=4, lw=1.0, alpha=0.9, label=f"{lang}, L = {L}: idealised sampler (MC)")
            if np.any(~mdm):
                ax.errorbar(xs[~mdm], a[~mdm, 0], yerr=[a[~mdm, 0] - a[~mdm, 1], a[~mdm, 2] - a[~mdm, 0]], fmt="s",
                            color=col, mfc="white", ms=6)
        for run in runs:  # the idealised sampler coupled to the learned MDM (same tau, same uniforms)
            rr = sorted([r for r in lrows if r["run"] == run and r.get("coupled") and r["num_steps"] != "ar"],
                        key=lambda r: r["num_steps"])
            if not rr:
                continue
            c = np.array([[np.nan if v is None else float(v) for v in
                           (r["coupled"].get(metric), *(r["coupled"].get(metric + "_ci") or [None, None]))] for r in rr])
            x = np.array([float(r["num_steps"]) for r in rr])
            lo = np.clip(c[:, 0] - np.where(np.isfinite(c[:, 1]), c[:, 1], c[:, 0]), 0, None)
            hi = np.clip(np.where(np.isfinite(c[:, 2]), c[:, 2], c[:, 0]) - c[:, 0], 0, None)
            ax.errorbar(x, c[:, 0], yerr=[lo, hi], fmt=":^", color=col, mfc="white", ms=4, lw=1.0,
                        label=f"{lang}, L = {rr[0]['L']}: idealised, coupled ({run.split('/')[-1].replace('-results', '')})")


def _draw_profiles(ax, profiles, lang_colors, runs):
    """Panel (d): KL / H per masked token against the masked fraction of the context."""
    for prof in sorted(profiles, key=lambda p: (p["language"], p["run"])):
        b = [x for x in prof["bins"] if x.get("kl_over_entropy") is not None and x["kl_over_entropy"] > 0]
        if not b:
            continue
        x = np.array([0.5 * (v["mask_fraction"][0] + v["mask_fraction"][1]) for v in b])
        y = np.array([v["kl_over_entropy"] for v in b])
        h = np.array([v["entropy_per_token"] for v in b])
        ci = np.array([v["kl_ci"] if v.get("kl_ci") else [np.nan, np.nan] for v in b], dtype=float)  # (n, 2)
        lo = np.clip(y - np.where(np.isfinite(ci[:, 0]), ci[:, 0] / h, y), 0, None)
        hi = np.clip(np.where(np.isfinite(ci[:, 1]), ci[:, 1] / h, y) - y, 0, None)
        lo = np.minimum(lo, 0.9 * y)  # a log axis cannot show a bar through zero
        ls, mk = RUN_STYLES[runs.index(prof["run"]) % len(RUN_STYLES)] if prof["run"] in runs else ("-", "o")
        ax.errorbar(x, y, yerr=[lo, hi], fmt=ls + mk, color=lang_colors.get(prof["language"], "k"), ms=4,
                    label=f"{prof['language']}, L = {prof['L']} ({prof['run'].split('/')[-1]})")
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of the context's positions masked  (late sampling steps at the left)")
    ax.set_ylabel("KL(q || p_theta) / H(q) per masked token")
    ax.set_title("(d) where the learning error sits (held-out contexts)")


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
        thresholded = [r for r in rows if not r["language"].endswith("-t0")]
        ncol = 3 if thresholded and len(thresholded) < len(rows) else 2
        profiles = d.get("profiles") or []
        width = 6.5 if ncol + bool(profiles) <= 3 else 5.6  # inches per panel
        fig, axes = plt.subplots(1, ncol + bool(profiles), figsize=(width * (ncol + bool(profiles)), 5.2))
        axes = list(axes)  # height grows with the legends below
        ax, bx = axes[0], axes[1]
        _draw(ax, _panel_rows(rows, True), "gen_ppl", ar_x, lang_colors, runs)
        _draw(bx, _panel_rows(rows, False), "ser", ar_x, lang_colors, runs)
        if ncol == 3:
            _draw(axes[2], thresholded, "gen_ppl", ar_x, lang_colors, runs)
        if profiles:
            _draw_profiles(axes[-1], profiles, lang_colors, runs)
        for axis in axes[:ncol]:
            steps_axis(axis, steps, ar_label="AR", ar_x=ar_x)
            axis.set_xlabel(f"number of sampling steps N (L = {', '.join(map(str, L))})")
        for axis in (ax, axes[2]) if ncol == 3 else (ax,):
            axis.set_yscale("log")
            plain_log_labels(axis)
            axis.set_ylabel("generative perplexity (per token)")
        ax.set_title("(a) generative perplexity, threshold-0 languages")
        bx.set_ylabel("sequence error rate SER  [probability]")
        bx.set_ylim(-0.03, 1.03)
        bx.set_title("(b) SER, thresholded languages")
        if ncol == 3:
            axes[2].set_title("(c) generative perplexity, thresholded languages")
        # legends under the panels, so that they never cover a curve (one entry per run and language)
        rows_max = 0
        for axis in axes:
            n = len(axis.get_legend_handles_labels()[0])
            rows_max = max(rows_max, -(-n // 2))
            axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=6, frameon=False)
        fig.set_size_inches(width * len(axes), 5.2 + 0.14 * rows_max)
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
            if last.get("coupled") and last["coupled"].get(metric) is not None:
                s += f" (coupled idealised, same tau and uniforms: {last['coupled'][metric]:.3f})"
            if last.get("epsilon_mean") is not None:
                s += f", measured per-token KL mean {last['epsilon_mean']:.3f} (max {last['epsilon_max']:.2f}) nats"
            if last.get("leakage") is not None:
                s += (f", leakage {last['leakage']:.1e} per token (1 - (1 - leak)^L = "
                      f"{-np.expm1(last['L'] * np.log1p(-last['leakage'])):.3f})")
            parts.append(s)
    prof_parts = []
    for prof in sorted(d.get("profiles") or [], key=lambda p: (p["language"], p["run"])):
        b = [x for x in prof["bins"] if x.get("kl_over_entropy") is not None]
        if b:
            worst = max(b, key=lambda x: x["kl_over_entropy"])
            prof_parts.append(f"{prof['language']} {100 * worst['kl_over_entropy']:.1f}% at masked fraction "
                              f"{worst['mask_fraction'][0]:.1f}-{worst['mask_fraction'][1]:.1f}")
    n_learned = sorted({r["neural"].get("num_samples") for r in rows if r["neural"].get("num_samples")})
    return (
        "Learned masked diffusion models (`reports/neural/`: H100 runs at L = 512 and the CPU run at L = 64; "
        f"{', '.join(map(str, n_learned)) or 'unknown'} samples per point) against the idealised sampler (a perfect model, "
        "Monte Carlo, the same cells as Figure 1) at the same language, length and number of steps; 'AR' is the "
        "autoregressive model (filled) and the left-to-right sampler (open). The idealised sampler is what a learned model "
        "reaches with epsilon_learning = 0 (Assumption 4.1, STATEMENTS.md §3); the gap between the curves is the learning "
        "error, which Theorems 4.2 and 4.3 add to their bounds (§4.A): past a few dozen steps it, not the number of steps, "
        "sets the learned model's perplexity and SER. " + "; ".join(parts) + "."
        + (" Panel (d): the measured KL(q || p_theta) per masked token relative to the exact conditional entropy, by the "
           "fraction of the held-out context that is masked (intervals over contexts; the entropy is taken as fixed); "
           "a sampler with N steps queries the model at every fraction from 1 down to about 1/N, so the left end is its "
           "last steps. Largest ratio per model: " + "; ".join(prof_parts) + "." if prof_parts else "")
    )


if __name__ == "__main__":  # pragma: no cover
    import json

    with open(sys.argv[1]) as f:
        plot(json.load(f), sys.argv[2])
