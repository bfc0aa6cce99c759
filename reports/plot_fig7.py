"""Figure 7: SER against mean NFE for every unmasking policy (issue 16, ``docs/policies.md``).

Panels: the Example C.7 hard language at several L (exact where the exact engines reach, Monte
Carlo with 95% intervals beyond) and the thresholded Table-1 languages at L = 512 (Monte
Carlo). Reads only ``data/fig7_policy_pareto.json``;
``python -m reports.plot_fig7 DATA.json OUT.png``.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from reports.style import COLORS, plain_log_labels, plt, save, style

#: (colour, marker, line style) of each policy family; shared with Figure 8.
FAMILIES = {
    "uniform sizes (random)": ("#000000", "o", "-"),
    "best content-blind sizes": ("0.55", "*", "--"),
    "confidence": (COLORS[0], "s", "-"),
    "margin": (COLORS[5], "^", "-"),
    "entropy": (COLORS[2], "D", "-"),
    "llada": (COLORS[1], "v", "-"),
    "threshold": (COLORS[3], "P", ":"),
    "eb": (COLORS[4], "X", ":"),
}
#: Families whose points differ by their step count N (the others by g).
COUNTED = ("uniform sizes (random)", "best content-blind sizes", "confidence", "margin", "entropy", "llada")


def family_label(fam):
    if fam in ("threshold", "eb"):
        return f"{fam}:g (label = g)"
    if fam in COUNTED[2:]:
        return f"{fam} top-k, uniform sizes"
    return fam


def _f(v):
    return np.nan if v is None else float(v)


def draw_panel(ax, panel, ykey, *, ylog=False):
    """Every family of one panel: ``ykey`` (``ser`` or ``gen_ppl``) against mean NFE, intervals where Monte Carlo."""
    fams = [f for f in FAMILIES if any(p["family"] == f for p in panel["points"])]
    for k, fam in enumerate(fams):
        col, mk, ls = FAMILIES[fam]
        pts = sorted((p for p in panel["points"] if p["family"] == fam), key=lambda p: (p["nfe"][0], str(p["param"])))
        x = np.array([_f(p["nfe"][0]) for p in pts])
        jit = 2.0 ** (0.035 * (k - (len(fams) - 1) / 2))  # small horizontal offset per family (coinciding points)
        y = np.array([_f(p[ykey][0]) for p in pts])
        lo = np.array([_f(p[ykey][1]) for p in pts])
        hi = np.array([_f(p[ykey][2]) for p in pts])
        has_ci = np.isfinite(lo) & np.isfinite(hi)
        ax.plot(x * jit, y, ls=ls, color=col, lw=1.0, alpha=0.8, zorder=2)
        ax.errorbar(x[has_ci] * jit, y[has_ci], yerr=[y[has_ci] - lo[has_ci], hi[has_ci] - y[has_ci]], fmt="none",
                    ecolor=col, elinewidth=0.9, capsize=2, zorder=3)
        ax.plot(x * jit, y, mk, color=col, ms=6 if mk != "*" else 9, ls="none", zorder=4,
                mfc=col if all(p["exact"] for p in pts) else "white", mew=1.2)
        if fam in ("threshold", "eb"):
            for i, (xi, yi, p) in enumerate(zip(x, y, pts)):  # labels staggered so that coinciding points stay readable
                if np.isfinite(yi):
                    dy = (4 + 8 * (i % 3)) * (1 if fam == "eb" else -1) - (0 if fam == "eb" else 4)
                    ax.annotate(f"{p['param']:g}", (xi * jit, yi), textcoords="offset points", xytext=(3, dy), fontsize=7,
                                color=col)
    L = panel["L"]
    ax.axvline(L, color="0.5", lw=0.7, ls=":", zorder=1)
    ax.set_xscale("log", base=2)
    lo_x = min(_f(p["nfe"][0]) for p in panel["points"])
    ax.set_xlim(lo_x / 1.5, L * 1.5)
    plain_log_labels(ax, "x")
    if ylog:
        ax.set_yscale("log")
    how = "exact" if panel["exact"] else f"Monte Carlo, {panel['num_samples']} samples"
    if not panel["exact"] and panel.get("count_samples") not in (None, panel["num_samples"]):
        how += f"; threshold/eb {panel['count_samples']}"
    ax.set_title(f"{panel['language']}, L = {L} ({how})", fontsize=9)


def legend_handles(panels=None):
    """Legend entries of the families present in ``panels`` (all families without it)."""
    present = None if panels is None else {p["family"] for panel in panels for p in panel["points"]}
    hs = []
    for fam, (col, mk, ls) in FAMILIES.items():
        if present is not None and fam not in present:
            continue
        (h,) = plt.plot([], [], ls=ls, marker=mk, color=col, label=family_label(fam))
        hs.append(h)
    (h,) = plt.plot([], [], "o", color="0.3", mfc="white", label="open marker: Monte Carlo (95% interval)")
    hs.append(h)
    return hs


def plot(rec, path):
    d = rec["data"]
    panels = d["panels"]
    n = len(panels)
    ncol = min(3, n)
    nrow = math.ceil(n / ncol)
    with style():
        fig, axes = plt.subplots(nrow, ncol, figsize=(4.0 * ncol, 3.2 * nrow + 1.0), squeeze=False)
        for ax, panel in zip(axes.flat, panels):
            draw_panel(ax, panel, "ser")
            ax.set_ylim(-0.03, 1.03)
        for ax in list(axes.flat)[n:]:
            ax.axis("off")
        for ax in axes[:, 0]:
            ax.set_ylabel("sequence error rate SER")
        for ax in axes[-1, :]:
            ax.set_xlabel("mean NFE (network calls; dotted: L)")
        fig.legend(handles=legend_handles(panels), loc="outside lower center", ncol=5, frameon=False)
        fig.suptitle("SER against mean NFE for every unmasking policy (perfect model)", fontsize=11)
        return save(fig, path)


def _fmt_point(p, fam=None):
    nfe = f"E NFE = {p['nfe']:.4g} ({p['nfe_over_L']:.2f} L)"
    if fam in ("threshold", "eb"):
        return f"{fam}:{p['param']:g} at {nfe}"
    return (f"{fam} " if fam else "") + f"with N = {p['param']} steps, {nfe}"


def _table1_text(d):
    """At equal N on the other languages: which top-k scores beat uniform random positions (interval-separated SER)."""
    out = []
    for panel in [p for p in d["panels"] if p["language"] != d["c7_language"]]:
        for N in panel["steps"]:
            u = next((p for p in panel["points"] if p["family"] == "uniform sizes (random)" and p["param"] == N), None)
            if u is None or u["ser"][1] is None:
                continue
            better = [p["family"] for p in panel["points"] if p["family"] in COUNTED[2:] and p["param"] == N
                      and p["ser"][2] is not None and p["ser"][2] < u["ser"][1]]
            worse = [p["family"] for p in panel["points"] if p["family"] in COUNTED[2:] and p["param"] == N
                     and p["ser"][1] is not None and p["ser"][1] > u["ser"][2]]
            out.append(f"{panel['language']} N = {N} (uniform {u['ser'][0]:.3g}): lower {', '.join(better) or 'none'}, "
                       f"higher {', '.join(worse) or 'none'}")
    return ("Top-k scores against uniform random positions at equal N elsewhere (SER intervals disjoint): "
            + "; ".join(out) + ". ") if out else ""


def _kl_text(d):
    """The Chen-Cong-Li E KL(q || p) of the best and the uniform sizes on the non-C.7 panels (what the DP minimises)."""
    out = []
    for panel in d["panels"]:
        if panel["language"] == d["c7_language"]:
            continue
        for r in panel.get("schedules", []):
            if r["num_steps"] >= panel["L"]:
                continue
            ci = lambda key: "" if not r.get(key + "_ci") else f" [{r[key + '_ci'][0]:.3g}, {r[key + '_ci'][1]:.3g}]"  # noqa: E731
            out.append(f"{panel['language']} N = {r['num_steps']}: {r['optimal_kl']:.3g}{ci('optimal_kl')} against "
                       f"{r['uniform_kl']:.3g}{ci('uniform_kl')}")
    if not out:
        return ""
    return ("The dynamic programme minimises E KL(q || p), not SER; its plug-in E KL (nats, Monte Carlo information curve "
            f"with {d['panels'][-1].get('curve_samples')} samples, intervals for the chosen sizes) against uniform sizes: "
            + "; ".join(out) + ".")


def _verdict(d):
    """Which panels have an adaptive policy with SER <= low_ser at E NFE <= few_nfe L, next to uniform sizes there."""
    f = float(d.get("few_nfe", 0.25))
    hits = []
    for panel in d["panels"]:
        low = panel["low_ser"]
        u = low.get("uniform sizes (random)")
        fams = [(fam, v) for fam, v in low.items()
                if fam not in ("uniform sizes (random)", "best content-blind sizes") and v["nfe_over_L"] <= f]
        if fams:
            who = ", ".join(f"{fam}{':' + format(v['param'], 'g') if fam in ('threshold', 'eb') else ''} "
                            f"({v['nfe_over_L']:.2f} L)" for fam, v in fams)
            hits.append(f"{panel['language']} at L = {panel['L']}: {who}; uniform random sizes there: "
                        + (f"{u['nfe_over_L']:.2f} L" if u else "not on this grid"))
    if not hits:
        return f"Verdict: no adaptive policy reaches SER <= {d['low_ser']:g} with E NFE <= {f:g} L on any panel. "
    return (f"Verdict: SER <= {d['low_ser']:g} with E NFE <= {f:g} L only on " + "; ".join(hits)
            + f"; on every other panel no adaptive policy gets there with E NFE <= {f:g} L. ")


def caption(rec) -> str:
    d = rec["data"]
    t = d["low_ser"]
    parts = []
    for panel in d["panels"]:
        low = panel["low_ser"]
        name = f"{panel['language']} at L = {panel['L']}"
        uni = low.get("uniform sizes (random)")
        adapt = {f: v for f, v in low.items() if f not in ("uniform sizes (random)", "best content-blind sizes")}
        best = min(adapt.items(), key=lambda kv: kv[1]["nfe"]) if adapt else None
        s = f"{name}: "
        s += ("uniform sizes reach it " + _fmt_point(uni)) if uni else "uniform sizes do not reach it on this grid"
        if best:
            fam, v = best
            s += f"; the cheapest adaptive policy that does is {_fmt_point(v, fam)}"
            if panel["exact"] and v.get("entropy_model") is not None and panel.get("entropy_data") is not None:
                s += f", with H(p) = {v['entropy_model']:.4g} nats against H(q) = {panel['entropy_data']:.4g}"
            elif v.get("gen_ppl") is not None:
                s += f", gen. perplexity {v['gen_ppl']:.3g}"
        else:
            s += "; no adaptive policy does"
        parts.append(s)
    tk = []
    for panel in [p for p in d["panels"] if p["language"] == d["c7_language"]]:
        for N in panel["steps"]:
            u = next((p for p in panel["points"] if p["family"] == "uniform sizes (random)" and p["param"] == N), None)
            if u is None or u["ser"][0] is None:
                continue
            same = [p for p in panel["points"] if p["family"] in ("confidence", "margin", "entropy", "llada") and p["param"] == N
                    and p["ser"][0] is not None]
            tk.append((sum(p["ser"][0] > u["ser"][0] for p in same), len(same)))
    nworse = sum(a for a, _ in tk)
    ntot = sum(b for _, b in tk)
    sched = []
    for panel in d["panels"]:
        for r in panel.get("schedules", []):
            if r["optimal_sizes"] != r["uniform_sizes"]:
                sched.append(r)
    nsched = sum(len(p.get("schedules", [])) for p in d["panels"])
    lin = [p for p in d["panels"] if p.get("curve") == "exact" and p.get("curve_max_second_difference") is not None]
    linear = bool(lin) and all(p["curve_max_second_difference"] < 1e-12 for p in lin)
    lin_txt = (f"; the exact information curves of Example C.7 (L = {', '.join(str(p['L']) for p in lin)}) are linear in j "
               f"(largest second difference {max(p['curve_max_second_difference'] for p in lin):.1e} nats: intervals are "
               "independent and each revealed partner fixes one bit), and for a linear curve every step of s positions "
               "costs the same multiple of s(s-1)/2, so uniform sizes are optimal there and the Monte Carlo differences are "
               "noise" if linear else "")
    return (
        "SER against the mean number of network calls (NFE, steps that reveal something) for every unmasking policy "
        "of `docs/policies.md` with the perfect model: top-k by confidence, margin, entropy and LLaDA's drawn-token "
        "probability at the balanced sizes of N steps; uniform sizes with random positions (content-blind: the "
        "theorems' setting); threshold:g and eb:g (adaptive counts, labelled by g); and the best content-blind fixed "
        "sizes for N steps (Chen-Cong-Li dynamic programme on the information curve, exact at small L, Monte Carlo "
        "beyond, `mdm_exact.theory.schedule_opt`). Filled markers are exact; open ones Monte Carlo with "
        f"{100 * (1 - d['alpha']):.0f}% Clopper-Pearson intervals. Theorems 4.3/4.4 and Lemma B.2 assume content-blind "
        "positions, so the adaptive points are findings outside them, not checks. "
        f"Low SER (at most {t:g}), smallest NFE per panel: " + "; ".join(parts) + ". " + _verdict(d) +
        f"On Example C.7, at equal N, the top-k score policies have a higher SER than uniform random positions in {nworse} "
        f"of {ntot} (L, N, score) cases: every conditional is uniform or one-hot, so all scores tie and the lowest-index "
        "rule reveals dependent positions of one interval together. " + _table1_text(d) +
        f"The best content-blind sizes differ from uniform ones in {len(sched)} of {nsched} cases" + lin_txt + ". "
        + _kl_text(d)
    )


if __name__ == "__main__":  # pragma: no cover
    import json

    with open(sys.argv[1]) as f:
        plot(json.load(f), sys.argv[2])
