"""Figure 8: generative perplexity against mean NFE for every unmasking policy on the threshold-0
languages (issue 16). Reads only ``data/fig8_policy_ppl.json``;
``python -m reports.plot_fig8 DATA.json OUT.png``.
"""

from __future__ import annotations

import sys

from reports.plot_fig7 import draw_panel, legend_handles
from reports.style import plain_log_labels, plt, save, style


def plot(rec, path):
    d = rec["data"]
    panels = d["panels"]
    n = len(panels)
    with style():
        fig, axes = plt.subplots(1, n, figsize=(max(6.0, 4.8 * n), 4.6), squeeze=False)
        for ax, panel in zip(axes[0], panels):
            draw_panel(ax, panel, "gen_ppl", ylog=True)
            if panel.get("data_ppl") is not None:
                ax.axhline(panel["data_ppl"], color="k", lw=1.6, alpha=0.35, zorder=1)
                mc = panel.get("data_ppl_mc") or [None, None, None]
                if panel.get("data_ppl_source") != "exact" and mc[1] is not None:
                    ax.axhspan(mc[1], mc[2], color="k", alpha=0.12, lw=0, zorder=1)
                how = "exact" if panel.get("data_ppl_source") == "exact" else f"exact sampler, {panel['data_ppl_samples']} samples"
                ax.annotate(f"data: exp(H(q)/L) = {panel['data_ppl']:.3g} ({how})", (0.02, 0.02), xycoords="axes fraction",
                            fontsize=8)
            plain_log_labels(ax, "y")
            ax.set_xlabel("mean NFE (dotted: L)")
        axes[0, 0].set_ylabel("generative perplexity exp(-E log q(x) / L)")
        fig.legend(handles=legend_handles(panels), loc="outside lower center", ncol=3 if n == 1 else 4, frameon=False)
        fig.suptitle("Generative perplexity against mean NFE (threshold-0 languages, perfect model)", fontsize=11)
        return save(fig, path)


def caption(rec) -> str:
    d = rec["data"]
    parts = []
    for panel in d["panels"]:
        dp = panel.get("data_ppl")
        pts = [p for p in panel["points"] if p["gen_ppl"][0] is not None]
        if not pts:
            continue
        lo = min(pts, key=lambda p: p["gen_ppl"][0])
        hi = max(pts, key=lambda p: p["gen_ppl"][0])

        def name(p):
            par = f"N = {p['param']}" if isinstance(p["param"], int) else f"g = {p['param']:g}"
            return f"{p['family']} ({par}, E NFE {p['nfe'][0]:.3g})"

        mc = panel.get("data_ppl_mc") or [None, None, None]
        ref = dp if panel.get("data_ppl_source") == "exact" or mc[1] is None else mc[1]  # below the whole data interval
        below = [p for p in pts if dp is not None and p["gen_ppl"][2] is not None and p["gen_ppl"][2] < ref]
        cs = panel.get("count_samples")
        s = (f"{panel['language']} at L = {panel['L']} ({panel['num_samples']} samples per point"
             + (f", {cs} for threshold/eb" if cs not in (None, panel["num_samples"]) else "")
             + (f"; data perplexity exp(H(q)/L) = {dp:.4g}" if dp is not None else "")
             + ("" if panel.get("data_ppl_source") == "exact" or mc[1] is None
                else f" [{mc[1]:.4g}, {mc[2]:.4g}] from {panel['data_ppl_samples']} exact (left-to-right) samples") + "): "
             f"lowest {lo['gen_ppl'][0]:.3g} for {name(lo)}, highest {hi['gen_ppl'][0]:.3g} for {name(hi)}")
        if dp is not None:
            s += (f"; {len(below)} of {len(pts)} points lie below the data perplexity with their whole interval "
                  f"({', '.join(sorted({p['family'] for p in below})) or 'none'})")
        ad = [p for p in pts if p["family"] in ("threshold", "eb")]
        if ad:
            s += "; adaptive counts: " + ", ".join(f"{p['family']}:{p['param']:g} {p['gen_ppl'][0]:.4g} at E NFE {p['nfe'][0]:.4g}"
                                                   for p in ad)
        parts.append(s)
    return (
        "Generative perplexity (exp of minus the mean log q(x) per token of the generated sequences, under the data law) "
        "against the mean NFE for every unmasking policy (same families and markers as Figure 7; Monte Carlo with "
        f"{100 * (1 - d['alpha']):.0f}% intervals). The grey line is the data's own perplexity exp(H(q)/L), what an exact "
        "sampler gets on average (exact where the language computes H(q), else estimated by the exact left-to-right sampler, "
        "shaded interval). A perplexity below it is not better sampling: it means the sampler concentrates on "
        "likelier sequences than q does, that is, it has lost diversity (entropy); above it, the sampler makes errors the "
        "language penalises. " + "; ".join(parts) + "."
    )


if __name__ == "__main__":  # pragma: no cover
    import json

    with open(sys.argv[1]) as f:
        plot(json.load(f), sys.argv[2])
