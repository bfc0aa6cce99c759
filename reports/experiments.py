"""What each figure of the report computes (its data), as pure functions of a config.

Each ``fig*`` function takes the figure's config table and a :class:`reports.cells.Runner`
(which runs expensive cells through the runtime's store) and returns the JSON-able ``data``
of that figure.
The plotting modules ``reports/plot_*.py`` read only that data.
"""

from __future__ import annotations

import fnmatch
import glob
import math
import os

import numpy as np
from scipy.special import rel_entr

from mdm_exact.theory import bounds
from reports.cells import cell_language, language_label, make_language, make_rule


def bound(name: str):
    """``mdm_exact.theory.bounds.<name>`` (one function per statement) and its source label."""
    return getattr(bounds, name), "mdm_exact.theory.bounds"


def _ci(d, key):
    lo, hi = d.get(key + "_ci", [None, None]) or [None, None]
    return [d.get(key), lo, hi]


# =========================================================================== Figure 1
FIG1_DEFAULTS = {
    "languages": ["paper-2gram", "paper-3gram", "paper-4gram", "paper-hmm"],
    "L": 512,
    "steps": [8, 16, 32, 64, 128, 256, 512, 1024, 2048],
    "schedule": "linear",
    "num_samples": 1000,
    "num_samples_by_language": {},
    "autoregressive": True,
}


def fig1(cfg, runner):
    """Paper Figure 1 with the idealised sampler: GenPPL, SER and E_tau KL / L against N."""
    L = int(cfg["L"])
    cols = list(cfg["steps"]) + (["ar"] if cfg["autoregressive"] else [])
    cells, index = [], []
    per_lang = dict(cfg["num_samples_by_language"])
    unknown = set(per_lang) - set(cfg["languages"])
    if unknown:
        raise ValueError(f"fig1_steps.num_samples_by_language: {sorted(unknown)} are not in languages {cfg['languages']}")
    samples = {lang: int(per_lang.get(lang, cfg["num_samples"])) for lang in cfg["languages"]}
    for lang in cfg["languages"]:
        for variant, ikl in ((lang + "-t0", True), (lang, False)):
            for N in cols:
                rule = {"rule": cfg["schedule"], "num_steps": int(N)} if N != "ar" else {"rule": "left-to-right"}
                cells.append(runner.mc_cell(variant, L, rule, samples[lang], instance_kl=ikl))
                index.append((lang, variant, N))
    results = runner.run_all(cells)
    curves = []
    for lang in cfg["languages"]:
        c = {"language": lang, "num_samples": samples[lang], "steps": list(cfg["steps"]), "ppl": [], "ppl_seq_mean": [], "kl": [], "ser": [], "ar": {}}
        for (lg, variant, N), r in zip(index, results):
            if lg != lang:
                continue
            if variant.endswith("-t0"):
                row = {"ppl": _ci(r, "gen_ppl"), "ppl_seq_mean": _ci(r, "gen_ppl_seq_mean"), "kl": _ci(r, "instance_kl_per_token"),
                       "nfe": r.get("nfe_mean"), "seconds": r.get("seconds")}
            else:
                row = {"ser": _ci(r, "ser"), "seconds_ser": r.get("seconds")}
            if N == "ar":
                c["ar"].update(row)
            else:
                for k, v in row.items():
                    c.setdefault(k, []).append(v)
        # how restrictive is the thresholded language? fraction of uniform random sequences in its support
        thr = make_language(lang)
        u = np.random.default_rng(runner.seed_for({"figure": "fig1", "support": lang})).integers(0, thr.vocab_size, size=(1000, L))
        c["uniform_in_support"] = float(np.mean(thr.in_support(u)))
        try:
            c["entropy_rate"] = float(make_language(lang + "-t0").entropy(L)) / L
        except (NotImplementedError, ValueError, MemoryError):
            c["entropy_rate"] = None
        curves.append(c)
    return {"L": L, "num_samples": cfg["num_samples"], "schedule": cfg["schedule"], "curves": curves,
            "alpha": runner.alpha}


# =========================================================================== Figure 2
FIG2_DEFAULTS = {
    "language": {"random_ngram": {"order": 2, "V": 3, "concentration": 0.5, "seed": 7}},
    "L_exact": [4, 6, 8],
    "L_mc": [64, 256, 1024, 4096],
    "steps": [1, 2, 4, 8, 16, 32, 64, 128],
    "num_samples": 400,
    "schedule": "linear",
}


def fig2(cfg, runner):
    """Theorem 4.2: the log-TER gap against N does not depend on L."""
    spec = cfg["language"]
    steps = [int(s) for s in cfg["steps"]]
    exact_cells, mc_cells = [], []
    for L in cfg["L_exact"]:
        for N in steps:
            exact_cells.append(runner.exact_cell(spec, int(L), {"rule": cfg["schedule"], "num_steps": N}))
    for L in cfg["L_mc"]:
        for N in steps:
            mc_cells.append(runner.mc_cell(spec, int(L), {"rule": cfg["schedule"], "num_steps": N}, cfg["num_samples"], instance_kl=True))
    ex = runner.run_all(exact_cells)
    mc = runner.run_all(mc_cells)
    exact, montecarlo = [], []
    for i, L in enumerate(cfg["L_exact"]):
        rs = ex[i * len(steps):(i + 1) * len(steps)]
        exact.append({"L": int(L), "log_ter_gap": [r["log_ter_gap"] for r in rs],
                      "instance_kl_per_token": [float(r["instance_kl_total"]) / int(L) for r in rs]})
    for i, L in enumerate(cfg["L_mc"]):
        rs = mc[i * len(steps):(i + 1) * len(steps)]
        montecarlo.append({"L": int(L), "instance_kl_per_token": [_ci(r, "instance_kl_per_token") for r in rs]})
    lang = make_language(spec)
    order = getattr(lang, "order", None)
    return {"language": language_label(spec), "order": order, "V": lang.vocab_size, "steps": steps,
            "exact": exact, "mc": montecarlo, "num_samples": cfg["num_samples"], "schedule": cfg["schedule"],
            "log_V": math.log(lang.vocab_size), "alpha": runner.alpha}


# =========================================================================== Figure 3
FIG3_DEFAULTS = {
    "language": "interval-l5",
    "num_intervals": [4, 16, 64],
    "C": [0.25, 0.5, 1, 2, 4, 8, 16],
    "num_samples": 1000,
    "p_err": 0.5,
    "schedule": "linear",
}


def fig3(cfg, runner):
    """Theorem 4.4: SER against C = N / L collapses across L; Lemma C.6 bound and asymptote."""
    lang = make_language(cfg["language"])
    l = int(lang.interval_length)
    C_list = [float(c) for c in cfg["C"]]
    c6, src = bound("lemma_c6_ser_lower_bound")
    cells, keys = [], []
    for M in cfg["num_intervals"]:
        L = int(M) * l
        for C in C_list:
            N = max(1, int(round(C * L)))
            cells.append(runner.mc_cell(cfg["language"], L, {"rule": cfg["schedule"], "num_steps": N}, cfg["num_samples"], instance_kl=False))
            keys.append((L, N))
    res = runner.run_all(cells)
    curves = []
    for i, M in enumerate(cfg["num_intervals"]):
        L = int(M) * l
        rows = list(zip(keys, res))[i * len(C_list):(i + 1) * len(C_list)]
        curves.append({
            "L": L,
            "N": [k[1] for k, _ in rows],
            "C": [k[1] / L for k, _ in rows],
            "ser": [_ci(r, "ser") for _, r in rows],
            "c6_bound": [float(c6(L, l, k[1], cfg["p_err"])) for k, _ in rows],
            "exact_perfect": [_perfect_ser(L, l, k[1], cfg["schedule"]) for k, _ in rows],
        })
    grid = np.geomspace(min(C_list) / 1.5, max(C_list) * 1.5, 200)  # (200,)
    return {"language": cfg["language"], "l": l, "V": lang.vocab_size, "curves": curves,
            "p_err": cfg["p_err"], "C_grid": grid,
            "asymptote_perfect": 1 - np.exp(-(l - 1) / (4 * grid)),
            "asymptote_c6": 1 - np.exp(-cfg["p_err"] * (l - 1) / (l * grid)),
            "num_samples": cfg["num_samples"], "bounds_source": src, "alpha": runner.alpha}


def _perfect_ser(L, l, N, schedule):
    """Exact SER of the perfect model on Example C.7: ``1 - E[2^-K]^(L/l)`` (STATEMENTS.md §8 check 6)."""
    validity, _ = bound("interval_validity_perfect_model")
    v = validity(make_rule({"rule": schedule, "num_steps": int(N)}, L).p, l)
    return float(1.0 - v ** (L // l))


# =========================================================================== Figure 4
FIG4_DEFAULTS = {
    "c5_l": [3, 5, 10],
    "c5_N": [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512, 1024],
    "c5_schedules": ["linear", "cosine"],
    "a1_instances": 600,
    "a1_V": [2, 3, 4, 8],
    "a1_k": [2, 3, 4],
    "b11_L": 2048,
    "b11_orders": [2, 3],
    "b11_num_steps": 64,
    "b11_instances": 200,
    "b11_schedule": "linear",
}


def _c5(cfg):
    c5_exact, s1 = bound("lemma_c5_exact")
    c5_mid, _ = bound("lemma_c5_intermediate")
    c5_bound, _ = bound("lemma_c5_bound")
    out = []
    for sched in cfg["c5_schedules"]:
        for l in cfg["c5_l"]:
            rows = {"schedule": sched, "l": int(l), "N": [], "exact": [], "intermediate": [], "bound": []}
            for N in cfg["c5_N"]:
                p = make_rule({"rule": sched, "num_steps": int(N)}, 1).p
                rows["N"].append(int(N))
                rows["exact"].append(float(c5_exact(p, int(l))))
                rows["intermediate"].append(float(c5_mid(p, int(l))))
                rows["bound"].append(float(c5_bound(int(N), int(l))))
            out.append(rows)
    return out, s1


def _a1(cfg, seed):
    """Random joint laws q on V^k against product laws; KL and the Lemma A.1 right-hand side."""
    a1_bound, src = bound("lemma_a1_bound")
    rng = np.random.default_rng(seed)
    rows = {"V": [], "k": [], "kl": [], "bound": [], "tc": [], "kind": []}
    for _ in range(int(cfg["a1_instances"])):
        V = int(rng.choice(cfg["a1_V"]))
        k = int(rng.choice(cfg["a1_k"]))
        conc = float(10 ** rng.uniform(-1.3, 0.7))
        q = rng.dirichlet(np.full(V**k, conc)).reshape((V,) * k)  # (V,)*k
        margs = [q.sum(axis=tuple(j for j in range(k) if j != i)) for i in range(k)]  # k x (V,)
        kind = "perturbed" if rng.random() < 0.5 else "exact marginals"
        ps = []
        for m in margs:
            if kind == "perturbed":
                with np.errstate(divide="ignore"):
                    logit = np.log(m) + rng.normal(0, 0.5, V)  # (V,)
                pm = np.exp(logit - logit.max())
                ps.append(pm / pm.sum())
            else:
                ps.append(m)
        prod = ps[0]
        for pm in ps[1:]:
            prod = np.multiply.outer(prod, pm)  # (V,)*k
        kl = float(rel_entr(q, prod).sum())
        kl_i = [float(rel_entr(m, pm).sum()) for m, pm in zip(margs, ps)]
        h = lambda a: float(-np.sum(a[a > 0] * np.log(a[a > 0])))  # noqa: E731
        rows["V"].append(V)
        rows["k"].append(k)
        rows["kl"].append(kl)
        rows["bound"].append(float(a1_bound(k, V, kl_i)))
        rows["tc"].append(sum(h(m) for m in margs) - h(q.ravel()))
        rows["kind"].append(kind)
    # the tight case, measured as mdm_exact.theory.checks.check_a1 measures it: q = k copies of
    # one uniform symbol, p = the product of its (uniform) marginals, KL(q || p) summed entrywise
    tight = []
    for V in cfg["a1_V"]:
        for k in cfg["a1_k"]:
            V, k = int(V), int(k)
            q = np.zeros((V,) * k)  # (V,)*k
            q[(np.arange(V),) * k] = 1.0 / V
            prod = np.full((V,) * k, float(V) ** -k)  # (V,)*k
            tight.append({"V": V, "k": k, "kl": float(rel_entr(q, prod).sum()),
                          "bound": float(a1_bound(k, V, [0.0] * k))})
    return rows, tight, src


def _b11(cfg, runner):
    b11, src = bound("lemma_b11_bound")
    L, N = int(cfg["b11_L"]), int(cfg["b11_num_steps"])
    rule = {"rule": cfg["b11_schedule"], "num_steps": N}
    p = make_rule(rule, L).p
    P = np.concatenate([[0.0], np.cumsum(p)[:-1]])  # (N,) P^(k), probability sampled before step k
    cells = [runner.deps_cell(L, int(n), rule, cfg["b11_instances"]) for n in cfg["b11_orders"]]
    res = runner.run_all(cells)
    out = []
    for n, r in zip(cfg["b11_orders"], res):
        bnd = [float(b11(L, float(p[k]), float(P[k]), int(n)).value) if k >= 1 else None for k in range(N)]
        out.append({"n": int(n), "k": list(range(1, N + 1)), "D_mean": r["D_mean"], "D_se": r["D_se"],
                    "S_mean": r["S_mean"], "bound": bnd, "D_total_mean": r["D_total_mean"], "D_total_se": r["D_total_se"]})
    return out, src


def fig4(cfg, runner):
    """Lemma C.5 exact vs bounds; Lemma A.1 on random instances; Lemma B.11 vs measured D_k."""
    c5, src5 = _c5(cfg)
    a1, tight, src1 = _a1(cfg, runner.seed_for({"figure": "fig4", "part": "a1"}))
    b11, src11 = _b11(cfg, runner)
    return {"c5": c5, "a1": a1, "a1_tight": tight, "b11": b11, "b11_L": int(cfg["b11_L"]),
            "b11_num_steps": int(cfg["b11_num_steps"]), "b11_instances": int(cfg["b11_instances"]),
            "bounds_source": {"c5": src5, "a1": src1, "b11": src11}}


# =========================================================================== Figure 5
FIG5_DEFAULTS = {
    "cases": [
        {"language": "paper-2gram-t0", "L": 4},
        {"language": "paper-hmm", "L": 4},
        {"language": "interval-l3", "L": 6},
        {"language": {"random_ngram": {"order": 3, "V": 2, "concentration": 0.5, "seed": 3}}, "L": 8},
    ],
    "steps": [1, 2, 3, 4, 8],
    "num_samples": 4000,
    "schedule": "linear",
}


def fig5(cfg, runner):
    """Exact enumeration against Monte Carlo at small L: agreement within intervals."""
    rows = []
    ex_cells, mc_cells, keys = [], [], []
    for case in cfg["cases"]:
        unknown = set(case) - {"language", "L"}
        if unknown:
            raise ValueError(f"fig5 case: unknown keys {sorted(unknown)}; expected language, L")
        for N in cfg["steps"]:
            rule = {"rule": cfg["schedule"], "num_steps": int(N)}
            ex_cells.append(runner.exact_cell(case["language"], int(case["L"]), rule))
            mc_cells.append(runner.mc_cell(case["language"], int(case["L"]), rule, cfg["num_samples"], instance_kl=True))
            keys.append((language_label(case["language"]), int(case["L"]), int(N)))
    ex = runner.run_all(ex_cells)
    mc = runner.run_all(mc_cells)
    for (lab, L, N), e, m in zip(keys, ex, mc):
        rows.append({
            "language": lab, "L": L, "N": N,
            "exact": {"ser": e["ser"], "gen_ppl": e["gen_ppl"], "instance_kl_per_token": float(e["instance_kl_total"]) / L},
            "mc": {"ser": _ci(m, "ser"), "gen_ppl": _ci(m, "gen_ppl"), "instance_kl_per_token": _ci(m, "instance_kl_per_token")},
        })
    return {"rows": rows, "num_samples": cfg["num_samples"], "alpha": runner.alpha, "schedule": cfg["schedule"]}


# =========================================================================== Figure 6
FIG6_DEFAULTS = {"neural_dir": "neural", "num_samples": 1000, "num_samples_by_language": {}, "exclude": []}


def _rows_of(rec, path):
    """Learned-model rows of one JSON document (see :func:`neural_records`)."""
    if isinstance(rec, list):
        return [dict(r) for r in rec]
    if not isinstance(rec, dict):
        raise ValueError(f"{path}: expected a JSON list or object of learned-model results (see docs/reports.md)")
    if isinstance(rec.get("languages"), dict):  # neural.gpu_run results.json
        rows = []
        for lang, block in rec["languages"].items():
            if not isinstance(block, dict):
                continue
            ckl = block.get("conditional_kl") or {}
            lk = block.get("leakage_mdm") or {}
            extra = {"language": lang, "L": block.get("L", rec.get("L")), "epsilon_mean": ckl.get("mean_kl_per_token"),
                     "epsilon_max": ckl.get("max_kl"), "leakage": lk.get("leakage_per_token"),
                     "kl_profile": lk.get("by_mask_fraction")}
            for r in block.get("mdm") or []:
                rows.append({**extra, **r, "language": lang})
            if isinstance(block.get("ar"), dict):
                rows.append({**extra, **block["ar"], "language": lang, "num_steps": "ar", "sampler": "ar"})
        return rows
    top = {k: rec[k] for k in ("language", "L") if k in rec}
    if "results" in rec:
        return [{**top, **r} for r in rec["results"] if isinstance(r, dict)]
    if "mdm" in rec:
        rows = [{**top, **r} for r in rec["mdm"] if isinstance(r, dict)]
        if isinstance(rec.get("ar"), dict):
            rows.append({**top, **rec["ar"], "num_steps": "ar", "sampler": "ar"})
        return rows
    return [dict(rec)]


def neural_records(directory, exclude=()):
    """All learned-model rows in the JSON files under ``directory`` (recursively; see docs/reports.md).

    ``exclude``: glob patterns (``fnmatch``, ``/``-separated, relative to ``directory``) of files
    to leave out, e.g. ``"cpu-l64/*"`` for runs that later ones supersede (their files stay
    committed as the record of what was measured).

    A file is a list of rows; or a dict with ``results`` (a list of rows) or ``mdm`` (a list of
    rows, as ``neural.evaluate.evaluate_mdm`` returns) and optionally ``ar`` (one row of the AR
    model), where top-level ``language`` and ``L`` apply to every row; or the ``results.json`` of
    ``neural.gpu_run`` (``languages.<preset>.{mdm, ar, conditional_kl}``). A row needs
    ``language``, ``L`` and ``num_steps`` (``"ar"`` for the AR model) and has
    ``gen_ppl``/``gen_ppl_ci``, ``ser``/``ser_ci``; rows marked ``skipped`` are ignored.
    """
    import json

    out = []
    if isinstance(exclude, str) or not all(isinstance(p, str) for p in exclude):
        raise ValueError(f"exclude: expected a list of glob patterns (strings), got {exclude!r}")
    paths = sorted(glob.glob(os.path.join(directory, "**", "*.json"), recursive=True))
    for path in paths:
        rel = os.path.relpath(path, directory).replace(os.sep, "/")
        if any(fnmatch.fnmatchcase(rel, pat) for pat in exclude):
            continue
        with open(path) as f:
            rec = json.load(f)
        for r in _rows_of(rec, path):
            if r.get("skipped"):
                continue
            missing = {k for k in ("language", "L", "num_steps") if r.get(k) is None}
            if missing:
                raise ValueError(f"{path}: learned-model row lacks {sorted(missing)} (see docs/reports.md for the format)")
            r["file"] = os.path.relpath(path, directory)
            out.append(r)
    return out


def fig6(cfg, runner, *, reports_dir):
    """Learned MDM against the idealised sampler at the same steps (needs reports/neural results)."""
    directory = cfg["neural_dir"]
    if not os.path.isabs(directory):
        directory = os.path.join(reports_dir, directory)
    recs = neural_records(directory, cfg["exclude"])
    if not recs:
        return None
    per_lang = dict(cfg["num_samples_by_language"])
    cells = []
    for r in recs:
        N = r["num_steps"]
        is_ar = N == "ar" or str(r.get("sampler", "")).startswith("ar")
        rule = {"rule": "left-to-right"} if is_ar else {"rule": r.get("rule", "linear"), "num_steps": int(N)}
        lang = r["language"]
        n = int(per_lang.get(lang, cfg["num_samples"]))
        # the same cells as Figure 1 where the settings agree (instance KL on the threshold-0 presets)
        ikl = isinstance(lang, str) and lang.endswith("-t0")
        cells.append(runner.mc_cell(lang, int(r["L"]), rule, n, instance_kl=ikl))
    ideal = runner.run_all(cells)
    rows = []
    for r, m, c in zip(recs, ideal, cells):
        is_ar = r["num_steps"] == "ar" or str(r.get("sampler", "")).startswith("ar")
        rows.append({"language": language_label(r["language"]), "L": int(r["L"]), "num_steps": "ar" if is_ar else int(r["num_steps"]),
                     "sampler": "ar" if is_ar else "mdm", "run": os.path.splitext(r["file"])[0],
                     "neural": {k: r.get(k) for k in ("gen_ppl", "gen_ppl_ci", "ser", "ser_ci", "num_samples")},
                     "epsilon_mean": r.get("epsilon_mean"), "epsilon_max": r.get("epsilon_max"),
                     "leakage": r.get("leakage"), "coupled": r.get("coupled_ideal"),
                     "ideal": {"gen_ppl": _ci(m, "gen_ppl"), "ser": _ci(m, "ser"), "num_samples": c["num_samples"]},
                     "file": r["file"]})
    # where the learning error sits: one profile per language and run (neural.leakage.mdm_leakage's
    # by_mask_fraction rows; every MDM row of a run carries the same one)
    profiles, seen = [], set()
    for r in recs:
        prof = r.get("kl_profile")
        key = (r["language"], os.path.splitext(r["file"])[0])
        if not prof or key in seen:
            continue
        seen.add(key)
        bins = [{k: b.get(k) for k in ("mask_fraction", "num_contexts", "kl_per_token", "kl_ci", "entropy_per_token",
                                       "kl_over_entropy", "leakage_per_token")} for b in prof if b.get("num_contexts")]
        profiles.append({"language": language_label(r["language"]), "L": int(r["L"]), "run": key[1], "bins": bins})
    return {"rows": rows, "num_samples": cfg["num_samples"], "profiles": profiles}


# =========================================================================== Figures 7 and 8 (issue 16)
FIG7_DEFAULTS = {
    "c7_language": "interval-l3",
    "c7_L_exact": [6, 9],
    "c7_L_mc": [48, 192],
    "c7_steps_per_token": [0.1667, 0.3333, 0.6667, 1.0],
    "c7_num_samples": 400,
    "c7_curve_samples": 64,
    "c7_thresholds": [0.3, 0.6, 0.9],
    "c7_eb": [0.5, 1.0, 2.0, 4.0],
    "c7_llada_exact_max_draws": 1e7,
    "languages": ["paper-2gram", "paper-hmm"],
    "L": 512,
    "steps": [32, 128],
    "num_samples": 256,
    "curve_samples": 64,
    "scores": ["confidence", "margin", "entropy", "llada"],
    "thresholds": [0.5, 0.9],
    "eb": [0.5, 4.0],
    "low_ser": 0.05,
    "few_nfe": 0.25,
    "count_policy_samples": {},
}
FIG8_DEFAULTS = {
    "languages": ["paper-2gram-t0", "paper-hmm-t0"],
    "L": 512,
    "steps": [32, 128],
    "num_samples": 256,
    "scores": ["confidence", "margin", "entropy", "llada"],
    "thresholds": [0.5, 0.9],
    "eb": [0.5, 4.0],
    "data_ppl_samples": 1000,
    "count_policy_samples": {},
}
#: Result keys of policy cells the figures never read (the rule's echo, the NFE histogram, the language's description).
POLICY_MC_OMIT = ("rule", "nfe_hist", "language")


def _policy_cell(runner, language, L, policy, *, sizes=None, num_samples=None):
    """A ``policy_exact`` cell, or with ``num_samples`` a ``policy_mc`` cell (seed from its identity)."""
    base = {"language": cell_language(language), "L": int(L), "policy": str(policy)}
    if sizes is not None:
        base["sizes"] = [int(s) for s in sizes]
    if num_samples is None:
        return {"kind": "policy_exact", **base, "omit": ["rule"]}
    n = int(num_samples)
    seed = runner.seed_for({"kind": "policy_mc", **base, "num_samples": n, "alpha": runner.alpha})
    return {"kind": "policy_mc", **base, "num_samples": n, "seed": seed, "ci_alpha": runner.alpha, "omit": list(POLICY_MC_OMIT)}


def _schedule_cell(runner, language, L, steps, num_samples=None):
    """A ``best_schedule`` cell: exact information curve, or a Monte Carlo one with ``num_samples``."""
    base = {"kind": "best_schedule", "language": cell_language(language), "L": int(L), "num_steps": [int(n) for n in steps]}
    if num_samples is None:
        return base
    n = int(num_samples)
    return {**base, "num_samples": n, "seed": runner.seed_for({**base, "num_samples": n, "alpha": runner.alpha}),
            "ci_alpha": runner.alpha}


def _blind_cell(runner, language, L, sizes, num_samples=None):
    """Content-blind random positions with fixed sizes (= the ``random`` policy): exact or Monte Carlo."""
    rule = {"rule": "fixed", "sizes": [int(s) for s in sizes]}
    if num_samples is None:
        return runner.exact_cell(language, L, rule)
    return runner.mc_cell(language, L, rule, int(num_samples), instance_kl=False)


def _exact_affordable(language, L, policy, sizes, llada_max_draws):
    """Whether to run this case on the adaptive exact engine: always, except ``llada``, whose exact law enumerates
    about ``N (2V)^L`` joint draws in Python loops (``docs/policies.md``); beyond ``llada_max_draws`` it runs by
    Monte Carlo."""
    if policy != "llada":
        return True
    V = int(make_language(language).vocab_size)
    return len(sizes) * (2 * V) ** int(L) <= float(llada_max_draws)


def _point(family, param, r, exact):
    """One point of a policy panel from a cell result (exact: no intervals)."""
    def ci(key):
        if exact:
            return [r.get(key), None, None]
        return _ci(r, key)

    nfe = [r["nfe_mean"], None, None] if exact else [r["nfe_mean"], *(r.get("nfe_ci") or [None, None])]
    return {"family": family, "param": param, "exact": bool(exact), "nfe": nfe, "ser": ci("ser"), "gen_ppl": ci("gen_ppl"),
            "mean_log_prob_per_token": ci("mean_log_prob_per_token"), "entropy_model": r.get("entropy_model") if exact else None,
            "entropy_data": r.get("entropy_data") if exact else None, "engine": r.get("engine"),
            "num_samples": r.get("num_samples_done", r.get("num_samples"))}


def _policy_panel(runner, language, L, steps, *, scores, thresholds, ebs, num_samples, exact, curve_samples=None,
                  with_schedule=True, llada_max_draws=0, count_samples=None):
    """Every policy on one (language, L): top-k scores and uniform sizes at each N, threshold:g, eb:g, and the
    best content-blind sizes (Chen-Cong-Li DP on the information curve). ``exact``: the exact engines (llada beyond
    ``llada_max_draws`` joint draws runs by Monte Carlo with ``num_samples``). ``count_samples``: Monte Carlo
    samples of the threshold/eb points when they differ from ``num_samples`` (they reveal about one position per
    step on the paper's n-grams, so each sample costs about L full posteriors)."""
    from mdm_exact.sampler.schedules import balanced_sizes

    steps = [int(n) for n in steps]
    cells, keys = [], []
    for N in steps:
        sizes = balanced_sizes(int(L), N)
        cells.append(_blind_cell(runner, language, L, sizes, None if exact else num_samples))
        keys.append(("uniform sizes (random)", N, exact))
        for s in scores:
            ex = exact and _exact_affordable(language, L, s, sizes, llada_max_draws)
            cells.append(_policy_cell(runner, language, L, s, sizes=sizes, num_samples=None if ex else num_samples))
            keys.append((s, N, ex))
    m = num_samples if count_samples is None else int(count_samples)
    for fam, gs in (("threshold", thresholds), ("eb", ebs)):
        for g in gs:
            cells.append(_policy_cell(runner, language, L, f"{fam}:{float(g):g}", num_samples=None if exact else m))
            keys.append((fam, float(g), exact))
    res = runner.run_all(cells)
    points = [_point(fam, prm, r, ex) for (fam, prm, ex), r in zip(keys, res)]
    panel = {"language": language_label(language), "L": int(L), "exact": bool(exact), "steps": steps, "points": points,
             "num_samples": None if exact else int(num_samples),
             "count_samples": None if exact or count_samples is None else int(count_samples)}
    if with_schedule:
        sched = runner.run(_schedule_cell(runner, language, L, steps, None if exact else curve_samples), "best schedule")
        opt_cells, rows = [], []
        for s in sched["schedules"]:
            rows.append({k: s.get(k) for k in ("num_steps", "optimal_sizes", "optimal_kl", "optimal_kl_ci", "uniform_sizes",
                                                "uniform_kl", "uniform_kl_ci")})
            opt_cells.append(_blind_cell(runner, language, L, s["optimal_sizes"], None if exact else num_samples))
        for row, r in zip(rows, runner.run_all(opt_cells)):
            points.append({**_point("best content-blind sizes", row["num_steps"], r, exact), "sizes": row["optimal_sizes"]})
        panel["schedules"] = rows
        panel["curve"] = sched["curve"]
        if sched["curve"] == "exact":  # how far the exact information curve is from a straight line
            Z = np.asarray(sched["Z"], dtype=float)
            panel["curve_max_second_difference"] = float(np.max(np.abs(np.diff(Z, 2)))) if Z.size > 2 else 0.0
        panel["curve_samples"] = sched.get("num_samples")
    return panel


def _low_ser_summary(panel, target):
    """Per family: the smallest mean NFE among the points with SER <= target (the estimate), and its SER interval."""
    out = {}
    for p in panel["points"]:
        s = p["ser"][0]
        if s is None or s > target:
            continue
        best = out.get(p["family"])
        if best is None or p["nfe"][0] < best["nfe"]:
            out[p["family"]] = {"nfe": p["nfe"][0], "nfe_over_L": p["nfe"][0] / panel["L"], "param": p["param"],
                                "ser": p["ser"], "entropy_model": p.get("entropy_model"), "gen_ppl": p["gen_ppl"][0]}
    return out


def fig7(cfg, runner):
    """SER against mean NFE for every unmasking policy (issue 16): Example C.7 at several L, thresholded Table-1 languages."""
    common = {"scores": list(cfg["scores"])}
    panels = []
    c7 = cfg["c7_language"]
    for L, exact in [(int(L), True) for L in cfg["c7_L_exact"]] + [(int(L), False) for L in cfg["c7_L_mc"]]:
        steps = sorted({max(1, min(L, int(round(float(c) * L)))) for c in cfg["c7_steps_per_token"]})
        panels.append(_policy_panel(runner, c7, L, steps, thresholds=cfg["c7_thresholds"], ebs=cfg["c7_eb"],
                                    num_samples=cfg["c7_num_samples"], exact=exact, curve_samples=cfg["c7_curve_samples"],
                                    llada_max_draws=cfg["c7_llada_exact_max_draws"], **common))
    for lang in cfg["languages"]:
        panels.append(_policy_panel(runner, lang, cfg["L"], cfg["steps"], thresholds=cfg["thresholds"], ebs=cfg["eb"],
                                    num_samples=cfg["num_samples"], exact=False, curve_samples=cfg["curve_samples"],
                                    count_samples=cfg["count_policy_samples"].get(lang), **common))
    target = float(cfg["low_ser"])
    for p in panels:
        p["low_ser"] = _low_ser_summary(p, target)
        if p["exact"]:  # H(q) at this L, from the exact cells
            p["entropy_data"] = next((q["entropy_data"] for q in p["points"] if q.get("entropy_data") is not None), None)
    l = getattr(make_language(c7), "interval_length", None)
    return {"c7_language": c7, "l": l, "panels": panels, "low_ser": target, "few_nfe": float(cfg["few_nfe"]),
            "alpha": runner.alpha}


def fig8(cfg, runner):
    """Generative perplexity against mean NFE for every unmasking policy on the threshold-0 languages (issue 16)."""
    panels = []
    for lang in cfg["languages"]:
        p = _policy_panel(runner, lang, cfg["L"], cfg["steps"], scores=list(cfg["scores"]), thresholds=cfg["thresholds"],
                          ebs=cfg["eb"], num_samples=cfg["num_samples"], exact=False, with_schedule=False,
                          count_samples=cfg["count_policy_samples"].get(lang))
        try:
            h = float(make_language(lang).entropy(int(cfg["L"]))) / int(cfg["L"])
        except (NotImplementedError, ValueError, MemoryError):
            h = None
        # the exact sampler (one position per step, left to right: x ~ q) estimates exp(H(q)/L) for any language;
        # with Figure 1's sample count this is Figure 1's AR cell (shared in the store)
        ar = runner.run(runner.mc_cell(lang, int(cfg["L"]), {"rule": "left-to-right"}, int(cfg["data_ppl_samples"]),
                                       instance_kl=True), "data perplexity")
        p["entropy_rate"] = h
        p["data_ppl_mc"] = _ci(ar, "gen_ppl")
        p["data_ppl_samples"] = int(cfg["data_ppl_samples"])
        p["data_ppl"] = math.exp(h) if h is not None else ar["gen_ppl"]
        p["data_ppl_source"] = "exact" if h is not None else "monte carlo"
        panels.append(p)
    return {"panels": panels, "alpha": runner.alpha}


FIGURES = {
    "fig1_steps": (fig1, FIG1_DEFAULTS),
    "fig2_ter_length": (fig2, FIG2_DEFAULTS),
    "fig3_ser_linear": (fig3, FIG3_DEFAULTS),
    "fig4_lemmas": (fig4, FIG4_DEFAULTS),
    "fig5_exact_vs_mc": (fig5, FIG5_DEFAULTS),
    "fig6_neural": (fig6, FIG6_DEFAULTS),
    "fig7_policy_pareto": (fig7, FIG7_DEFAULTS),
    "fig8_policy_ppl": (fig8, FIG8_DEFAULTS),
}
