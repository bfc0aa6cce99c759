"""Thin, lazy adapters from the report to the engines of :mod:`mdm_exact`.

Everything the figures need from the package goes through here, so the report code states
its dependencies in one place: languages (``mdm_exact.languages.load_language``), step rules
(``mdm_exact.sampler.schedules``), the exact engine (``mdm_exact.sampler.exact``), Monte Carlo
(``mdm_exact.sampler.montecarlo``), bounds (``mdm_exact.theory.bounds``) and separators
(``mdm_exact.theory.separators``). Engines are imported inside the functions that use them.
"""

from __future__ import annotations

import importlib
import zlib

import numpy as np

from reports.cache import canonical, jsonable


class EngineMissing(RuntimeError):
    """An engine module the figure needs is not installed in this build."""


def need(module: str):
    """Import ``module`` or raise :class:`EngineMissing` naming it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            raise EngineMissing(f"{module} is not available in this build") from exc
        raise


# ------------------------------------------------------------------------- languages
def make_language(spec):
    """A language from a report spec.

    ``spec`` is a preset name or file understood by ``load_language`` or a dict
    ``{"random_ngram": {"order": n, "V": V, "concentration": c, "seed": s}}``: an n-gram whose
    initial law and rows are Dirichlet(c) draws (a small language for exact enumeration).
    """
    if isinstance(spec, str):
        return need("mdm_exact.languages").load_language(spec)
    if isinstance(spec, dict) and set(spec) == {"random_ngram"}:
        p = spec["random_ngram"]
        unknown = set(p) - {"order", "V", "concentration", "seed"}
        if unknown:
            raise ValueError(f"random_ngram: unknown keys {sorted(unknown)}; expected order, V, concentration, seed")
        from mdm_exact.languages import NGram

        n, V = int(p["order"]), int(p["V"])
        rng = np.random.default_rng(int(p["seed"]))
        c = float(p["concentration"])
        initial = rng.dirichlet(np.full(V ** (n - 1), c))  # (V**(n-1),)
        cond = rng.dirichlet(np.full(V, c), size=V ** (n - 1))  # (V**(n-1), V)
        return NGram(n, initial, cond)
    raise ValueError(f"language spec: expected a preset name or {{'random_ngram': {{...}}}}, got {spec!r}")


def language_label(spec) -> str:
    if isinstance(spec, str):
        return spec
    p = spec["random_ngram"]
    return f"random {p['order']}-gram (V={p['V']}, Dir({p['concentration']}))"


def make_rule(rule: dict, L: int):
    """A step rule from ``{"rule": "linear", "num_steps": N}`` / ``{"rule": "left-to-right"}``."""
    from mdm_exact.sampler.schedules import make_step_rule

    r = dict(rule)
    name = r.pop("rule")
    return make_step_rule(name, L=L, **r)


def cell_seed(root: int, cell: dict) -> int:
    """A per-cell seed from the root seed and the cell's content (independent of run order)."""
    c = {k: v for k, v in cell.items() if k != "seed"}
    ss = np.random.SeedSequence([int(root), zlib.crc32(canonical(c).encode())])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


# ------------------------------------------------------------------------- cells
def compute_cell(cell: dict) -> dict:
    """Compute one report cell (``kind`` ``exact``, ``mc`` or ``deps``); returns a JSON-able dict."""
    kind = cell["kind"]
    if kind == "exact":
        enum = need("mdm_exact.sampler.exact")
        lang = make_language(cell["language"])
        res = enum.exact_metrics(lang, cell["L"], make_rule(cell["rule"], cell["L"]))
        return _slim(jsonable(res.to_dict()))
    if kind == "mc":
        mc = need("mdm_exact.sampler.montecarlo")
        lang = make_language(cell["language"])
        res = mc.run_monte_carlo(
            lang,
            cell["L"],
            make_rule(cell["rule"], cell["L"]),
            cell["num_samples"],
            rng=cell["seed"],
            ci_alpha=cell["alpha"],
            instance_kl=cell.get("instance_kl", True),
        )
        return _slim(jsonable(res.to_dict()))
    if kind == "deps":
        return dependency_cell(cell)
    raise ValueError(f"unknown report cell kind {kind!r}; expected exact, mc or deps")


def _slim(d: dict) -> dict:
    """Drop what the figures never read and that would bloat the committed store: the per-step
    probabilities echoed in ``rule`` (the cell's config has the rule) and the NFE histogram."""
    d = dict(d)
    d.pop("nfe_hist", None)
    if isinstance(d.get("rule"), dict):
        d["rule"] = {k: v for k, v in d["rule"].items() if k != "probs"}
    return d


# ------------------------------------------------------------------------- dependencies (Lemma B.11)
def dependency_cell(cell: dict) -> dict:
    """Mean separator / dependency counts per step over ``num_instances`` random instances.

    Instances are drawn with :func:`mdm_exact.sampler.schedules.draw_steps`; per-step ``S_k`` and
    ``D_k`` (corrected reading of Definition B.5, STATEMENTS.md §4.C) come from
    :func:`mdm_exact.theory.separators.instance_dependencies`.
    """
    from mdm_exact.sampler.schedules import draw_steps

    sep = need("mdm_exact.theory.separators")
    L, n, M = int(cell["L"]), int(cell["order"]), int(cell["num_instances"])
    rule = make_rule(cell["rule"], L)
    N = rule.num_steps(L)
    steps = draw_steps(rule, M, L, rng=cell["seed"])  # (M, L)
    S, D = sep.instance_dependencies(steps, n, reading="corrected", num_steps=N)  # (M, N) each
    S = S.astype(np.float64)
    D = D.astype(np.float64)
    Nk = np.stack([np.bincount(row, minlength=N) for row in steps]).astype(np.float64)  # (M, N)
    se = D.std(axis=0, ddof=1) / np.sqrt(M)  # (N,)
    return {
        "D_mean": D.mean(axis=0),
        "D_se": se,
        "S_mean": S.mean(axis=0),
        "N_mean": Nk.mean(axis=0),
        "D_total_mean": float(D.sum(axis=1).mean()),
        "D_total_se": float(D.sum(axis=1).std(ddof=1) / np.sqrt(M)),
        "num_instances": M,
    }
