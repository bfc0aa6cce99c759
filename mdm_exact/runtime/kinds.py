"""Cell kinds: the registry and the built-in kinds of sweeps and of the report.

A *cell* is a dict with a ``"kind"`` and that kind's parameters, e.g.
``{"kind": "exact", "language": "paper-2gram", "L": 6, "rule": "linear", "num_steps": 3}``.
A kind is a :class:`KindSpec`: a function ``func(**params) -> dict`` and the parameters it
accepts. Where a kind comes from, in the order :func:`get_kind` looks:

1. registered in this process: the built-ins below, or :func:`register_kind`;
2. registered by an installed package through the entry-point group ``mdm_theory.sweep_kinds``
   (:mod:`mdm_exact.runtime.plugins`; ``neural`` registers ``neural`` that way);
3. ``"package.module:function"``: any importable function. Importing and calling a function
   named in a file runs arbitrary code, so this needs ``allow_import=True`` (on the command
   line ``mdm-theory sweep --allow-import``); a config file alone can never do it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
import time

import numpy as np

from mdm_exact._validate import check_seed_options

__all__ = [
    "KindSpec",
    "make_kind",
    "register_kind",
    "get_kind",
    "kinds",
    "kind_names",
    "validate_cell",
    "compute_cell",
    "call_kind",
    "language_from_spec",
    "kind_exact",
    "kind_mc",
    "kind_dependencies",
    "kind_policy_exact",
    "kind_policy_mc",
    "kind_best_schedule",
    "kind_check",
    "kind_square",
]


@dataclasses.dataclass(frozen=True)
class KindSpec:
    """A cell kind.

    ``func(**params) -> dict`` computes a cell from its parameters (the cell without
    ``"kind"``). ``params`` is the set of allowed parameter names (None: anything goes),
    ``required`` those that must be present, ``list_params`` those whose value is itself a
    list (in a TOML grid a flat list is then one value and a list of lists is a grid).
    ``precheck(**params)``, optional, refuses bad values (ValueError) without computing
    anything: a sweep config runs it on every cell before the first one starts, so an ``L = 0``
    or a size the engine would refuse is one line and exit 2, not a failed cell in the store.
    """

    name: str
    func: object
    params: frozenset | None = None
    required: tuple = ()
    list_params: tuple = ()
    doc: str = ""
    precheck: object = None


def make_kind(name, func, *, params=None, required=(), list_params=(), doc="", precheck=None) -> KindSpec:
    """A checked :class:`KindSpec` (what :func:`register_kind` registers, and what a
    ``mdm_theory.sweep_kinds`` entry point names).

    Raises
    ------
    ValueError
        If ``name`` is empty or holds ``':'``, or ``func`` is not callable.
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"a kind name must be a non-empty string without ':', got {name!r}")
    if not callable(func):
        raise ValueError(f"kind {name!r}: func must be callable, got {func!r}")
    if precheck is not None and not callable(precheck):
        raise ValueError(f"kind {name!r}: precheck must be callable or None, got {precheck!r}")
    allowed = None if params is None else frozenset(params) | frozenset(required) | frozenset(list_params)
    return KindSpec(name, func, allowed, tuple(required), tuple(list_params), doc or (func.__doc__ or "").strip(),
                    precheck)


_KINDS: dict[str, KindSpec] = {}


def register_kind(name, func, *, params=None, required=(), list_params=(), doc="", replace=False,
                  precheck=None) -> KindSpec:
    """Register ``func(**params) -> dict`` as the cell kind ``name`` in this process.

    For process-pool and Dask execution ``func`` must be importable by its module and name
    in the worker processes (a module-level function of an importable module). To make a
    kind available to every ``mdm-theory sweep`` run, register it from a package instead
    (entry-point group ``mdm_theory.sweep_kinds``, see :mod:`mdm_exact.runtime.plugins`).

    Raises
    ------
    ValueError
        If ``name`` is taken (and ``replace`` is false) or the declaration is inconsistent.
    """
    spec = make_kind(name, func, params=params, required=required, list_params=list_params, doc=doc, precheck=precheck)
    if name in _KINDS and not replace and _KINDS[name].func is not func:
        raise ValueError(f"kind {name!r} is already registered (pass replace=True to replace it)")
    _KINDS[name] = spec
    return spec


def _plugin_kind(name):
    from mdm_exact.runtime.plugins import SWEEP_KINDS_GROUP, PluginError, entry_points

    ep = entry_points(SWEEP_KINDS_GROUP).get(name)
    if ep is None:
        return None
    spec = ep.load()
    if not isinstance(spec, KindSpec) or spec.name != name:
        raise PluginError(
            f"entry point {name} = {ep.value} in {SWEEP_KINDS_GROUP!r} must name a KindSpec called {name!r} "
            f"(mdm_exact.runtime.kinds.make_kind), got {spec!r:.120}"
        )
    _KINDS.setdefault(name, spec)
    return _KINDS[name]


def kind_names() -> list:
    """Names of every kind available without ``allow_import`` (registered or installed), sorted."""
    from mdm_exact.runtime.plugins import SWEEP_KINDS_GROUP, entry_points

    return sorted(set(_KINDS) | set(entry_points(SWEEP_KINDS_GROUP)))


def get_kind(name: str, *, allow_import: bool = False) -> KindSpec:
    """The kind ``name``: registered, installed by a package, or (with ``allow_import``) the
    function ``name = "module:function"``.

    Raises
    ------
    ValueError
        For an unknown name, or a ``module:function`` without ``allow_import`` (nothing is
        imported then).
    """
    if not isinstance(name, str):
        raise ValueError(f"a cell kind must be a string, got {name!r}")
    if name in _KINDS:
        return _KINDS[name]
    spec = _plugin_kind(name)
    if spec is not None:
        return spec
    known = ", ".join(kind_names())
    if ":" in name:
        if not allow_import:
            raise ValueError(
                f"cell kind {name!r} is not a registered kind ({known}); naming an importable function "
                f"imports and runs arbitrary code, so it needs an explicit opt-in: mdm-theory sweep "
                f"--allow-import (Python: allow_import=True)"
            )
        mod, _, attr = name.partition(":")
        try:
            func = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cell kind {name!r}: cannot import {attr!r} from {mod!r} ({exc})") from None
        if not callable(func):
            raise ValueError(f"cell kind {name!r}: {mod}.{attr} is not callable")
        return KindSpec(name, func)
    raise ValueError(f"unknown cell kind {name!r}; registered kinds: {known}")


def kinds() -> dict:
    """``{name: KindSpec}`` of every registered and installed kind (loads the installed ones)."""
    for name in kind_names():
        get_kind(name)
    return dict(_KINDS)


def validate_cell(cell, *, allow_import: bool = False) -> KindSpec:
    """Check a cell against its kind's declaration; returns the kind.

    Raises
    ------
    ValueError
        Naming the cell, the unknown or missing parameters and the allowed ones.
    """
    if not isinstance(cell, dict):
        raise ValueError(f"a cell must be a dict with a 'kind', got {type(cell).__name__}: {cell!r:.120}")
    if "kind" not in cell:
        raise ValueError(f"cell {cell!r:.200} has no 'kind' (one of {', '.join(kind_names())})")
    spec = get_kind(cell["kind"], allow_import=allow_import)
    params = {k for k in cell if k != "kind"}
    if spec.params is not None:
        unknown = sorted(params - spec.params)
        if unknown:
            raise ValueError(
                f"cell kind {spec.name!r}: unknown parameter(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(spec.params))}"
            )
    missing = [r for r in spec.required if r not in cell]
    if missing:
        raise ValueError(f"cell kind {spec.name!r}: missing required parameter(s) {', '.join(missing)} in {cell!r:.200}")
    try:
        check_seed_options({k: v for k, v in cell.items() if k != "kind"}, flags=False)
    except ValueError as exc:
        raise ValueError(f"cell kind {spec.name!r}: {exc}") from None
    return spec


def compute_cell(cell: dict, *, allow_import: bool = False) -> dict:
    """Compute one cell in this process and return its result dict.

    Exceptions of the kind's function propagate (:func:`mdm_exact.runtime.sweep.run_cells`
    records them).
    """
    spec = validate_cell(cell, allow_import=allow_import)
    return call_kind(spec.func, cell)


def call_kind(func, cell) -> dict:
    """``func(**params)`` of a validated cell, as a dict (a ``to_dict()`` result is converted)."""
    out = func(**{k: v for k, v in cell.items() if k != "kind"})
    if hasattr(out, "to_dict") and not isinstance(out, dict):
        out = out.to_dict()
    if not isinstance(out, dict):
        raise TypeError(f"cell kind {cell.get('kind')!r} returned {type(out).__name__}, expected a dict")
    return out


# --------------------------------------------------------------------------- built-in kinds

_RULE_PARAMS = ("rule", "num_steps", "sizes", "probs", "alpha")
_DIRICHLET_KEYS = ("order", "V", "concentration", "seed")


def language_from_spec(language, language_seed=None):
    """The language a cell names.

    ``language`` is a preset name or a ``.json`` / ``.npz`` file (``load_language(language,
    seed=language_seed)``), or a table ``{"dirichlet_ngram": {"order": n, "V": V,
    "concentration": c, "seed": s}}``: an ``n``-gram whose initial law over the ``V^(n-1)``
    start contexts and whose rows are Dirichlet(``c``) draws of ``default_rng(s)``, initial law
    first (a small random language for exact enumeration; the report's Figures 2 and 5).
    """
    from mdm_exact.languages import NGram, load_language

    if isinstance(language, dict):
        if set(language) != {"dirichlet_ngram"} or not isinstance(language["dirichlet_ngram"], dict):
            raise ValueError(f"language: expected a preset, a file or {{'dirichlet_ngram': {{...}}}}, got {language!r:.200}")
        p = language["dirichlet_ngram"]
        if set(p) != set(_DIRICHLET_KEYS):
            raise ValueError(f"dirichlet_ngram: expected exactly the keys {', '.join(_DIRICHLET_KEYS)}, got {sorted(p)}")
        if language_seed is not None:
            raise ValueError("language_seed applies to presets; a dirichlet_ngram table has its own seed")
        n, V, c = int(p["order"]), int(p["V"]), float(p["concentration"])
        rng = np.random.default_rng(int(p["seed"]))
        initial = rng.dirichlet(np.full(V ** (n - 1), c))  # (V^(n-1),)
        cond = rng.dirichlet(np.full(V, c), size=V ** (n - 1))  # (V^(n-1), V)
        return NGram(n, initial, cond)
    return load_language(language, seed=language_seed)


def _rule(L, rule, num_steps, sizes, probs, alpha):
    from mdm_exact._validate import check_schedule_steps
    from mdm_exact.sampler.schedules import make_step_rule

    if num_steps is not None and rule in ("linear", "cosine"):
        check_schedule_steps(num_steps)

    return make_step_rule(rule, L=L, num_steps=num_steps, sizes=sizes, probs=probs, alpha=alpha)


def _omit(out: dict, omit) -> dict:
    """``out`` without the keys in ``omit`` (each must be there: a typo is an error)."""
    if not omit:
        return out
    missing = sorted(set(omit) - set(out))
    if missing:
        raise ValueError(f"omit: the result has no key(s) {', '.join(missing)}; it has {', '.join(sorted(out))}")
    return {k: v for k, v in out.items() if k not in set(omit)}


def kind_exact(
    *, language, L, rule="linear", num_steps=None, sizes=None, probs=None, alpha=None, language_seed=None,
    model_eta=None, model_seed=None, omit=None,
):
    """Exact metrics of the idealised sampler by enumeration (``mdm_exact.sampler.exact.exact_metrics``).

    ``model_eta`` (with ``model_seed``) evaluates an imperfect model
    ``mdm_exact.sampler.models.PerturbedModel(lang, model_eta, rng=model_seed)`` instead of the language.
    ``omit`` lists result keys to leave out (e.g. ``["rule"]``, the rule's echo, which the
    cell already determines).
    """
    from mdm_exact._validate import check_exact_size
    from mdm_exact.sampler.exact import MAX_STATES, MAX_WORK, exact_metrics

    lang = language_from_spec(language, language_seed)
    check_exact_size(lang.vocab_size, L, num_steps if rule in ("linear", "cosine") else None,
                     max_states=MAX_STATES, max_work=MAX_WORK)
    model = None
    if model_eta is not None:
        from mdm_exact.sampler.models import PerturbedModel

        model = PerturbedModel(lang, model_eta, rng=model_seed)
    out = exact_metrics(lang, L, _rule(L, rule, num_steps, sizes, probs, alpha), model=model).to_dict()
    return _omit(out, omit)


def kind_mc(
    *, language, L, num_samples, rule="linear", num_steps=None, sizes=None, probs=None, alpha=None, seed=None,
    ci_alpha=0.05, batch_size=None, instance_kl=True, dependencies=False, language_seed=None, omit=None,
):
    """Monte Carlo of the idealised sampler (``mdm_exact.sampler.montecarlo.run_monte_carlo(...).to_dict()``).

    ``seed`` seeds the sampler (``rng=seed``), ``ci_alpha`` is the level of the intervals,
    ``alpha`` the schedule values for ``rule="alpha"``; ``omit`` lists result keys to leave
    out (e.g. ``["rule", "nfe_hist"]``).
    """
    from mdm_exact._validate import check_monte_carlo_size
    from mdm_exact.sampler.montecarlo import run_monte_carlo

    check_monte_carlo_size(L, num_samples, batch_size=batch_size)
    res = run_monte_carlo(
        language_from_spec(language, language_seed),
        L,
        _rule(L, rule, num_steps, sizes, probs, alpha),
        num_samples,
        rng=seed,
        ci_alpha=ci_alpha,
        batch_size=batch_size,
        progress=False,
        instance_kl=instance_kl,
        dependencies=dependencies,
    )
    return _omit(res.to_dict(), omit)


def kind_dependencies(
    *, L, order, num_instances, seed=None, rule="linear", num_steps=None, sizes=None, probs=None, alpha=None,
    reading="corrected",
):
    """Mean separator and dependency counts per step over ``num_instances`` random instances.

    Instances ``tau`` are drawn with :func:`mdm_exact.sampler.schedules.draw_steps`
    (``rng=seed``); per-step ``S_k`` and ``D_k`` of an ``order``-gram (Definitions B.4-B.7;
    ``reading="corrected"`` is the corrected reading of Definition B.5, as reconstructed,
    STATEMENTS.md §4.C) come from :func:`mdm_exact.theory.separators.instance_dependencies`.
    Returns per-step means ``D_mean``, ``S_mean``, ``N_mean`` (positions per step), the
    standard error ``D_se`` and the total ``D_tau`` mean and standard error (Lemma B.11's
    measured side).
    """
    from mdm_exact.sampler.schedules import draw_steps
    from mdm_exact.theory.separators import instance_dependencies

    L, n, M = int(L), int(order), int(num_instances)
    step_rule = _rule(L, rule, num_steps, sizes, probs, alpha)
    N = step_rule.num_steps(L)
    steps = draw_steps(step_rule, M, L, rng=seed)  # (M, L)
    S, D = instance_dependencies(steps, n, reading=reading, num_steps=N)  # (M, N) each
    S = S.astype(np.float64)
    D = D.astype(np.float64)
    Nk = np.stack([np.bincount(row, minlength=N) for row in steps]).astype(np.float64)  # (M, N)
    return {
        "D_mean": D.mean(axis=0),
        "D_se": D.std(axis=0, ddof=1) / np.sqrt(M),
        "S_mean": S.mean(axis=0),
        "N_mean": Nk.mean(axis=0),
        "D_total_mean": float(D.sum(axis=1).mean()),
        "D_total_se": float(D.sum(axis=1).std(ddof=1) / np.sqrt(M)),
        "num_instances": M,
    }


def _policy(L, policy, num_steps, sizes, schedule, block_length, temperature):
    from mdm_exact.sampler.policies import make_policy

    return make_policy(policy, L=L, num_steps=num_steps, step_sizes=None if sizes is None else tuple(int(v) for v in sizes),
                       schedule_name=schedule, block_length=block_length, temperature=temperature)


def kind_policy_exact(
    *, language, L, policy, num_steps=None, sizes=None, schedule="linear", block_length=None, temperature=1.0,
    language_seed=None, omit=None,
):
    """Exact metrics under an unmasking policy (issue 16; ``docs/policies.md``):
    ``mdm_exact.sampler.adaptive_exact.policy_exact_metrics(lang, L, make_policy(policy, L=L, num_steps=,
    step_sizes=sizes, schedule_name=schedule, block_length=, temperature=))``."""
    from mdm_exact.sampler.adaptive_exact import policy_exact_metrics

    lang = language_from_spec(language, language_seed)
    pol = _policy(L, policy, num_steps, sizes, schedule, block_length, temperature)
    return _omit(policy_exact_metrics(lang, L, pol).to_dict(), omit)


def kind_policy_mc(
    *, language, L, policy, num_samples, num_steps=None, sizes=None, schedule="linear", block_length=None,
    temperature=1.0, seed=None, ci_alpha=0.05, batch_size=None, language_seed=None, omit=None,
):
    """Monte Carlo under an unmasking policy (issue 16): ``mdm_exact.sampler.adaptive_mc.run_policy_monte_carlo(
    lang, L, make_policy(...), num_samples, rng=seed, ci_alpha=ci_alpha, batch_size=batch_size)``."""
    from mdm_exact.sampler.adaptive_mc import run_policy_monte_carlo

    lang = language_from_spec(language, language_seed)
    pol = _policy(L, policy, num_steps, sizes, schedule, block_length, temperature)
    res = run_policy_monte_carlo(lang, L, pol, num_samples, rng=seed, ci_alpha=ci_alpha, batch_size=batch_size)
    return _omit(res.to_dict(), omit)


def kind_best_schedule(*, language, L, num_steps, num_samples=None, seed=None, ci_alpha=0.05, language_seed=None):
    """The best content-blind fixed sizes for each ``N`` in ``num_steps`` next to balanced sizes
    (``mdm_exact.theory.schedule_opt.best_schedule``), from the exact information curve
    (``num_samples`` omitted: ``information_curve_exact``) or a Monte Carlo one
    (``information_curve_mc(lang, L, num_samples, rng=seed, ci_alpha=ci_alpha)``, with intervals).
    Returns ``curve`` (``exact`` / ``mc``), ``Z`` (and ``Z_lo``, ``Z_hi`` for Monte Carlo) and
    ``schedules`` (one ``best_schedule`` dict per ``N``)."""
    from mdm_exact.theory.schedule_opt import best_schedule, information_curve_exact, information_curve_mc

    lang = language_from_spec(language, language_seed)
    steps = [int(n) for n in num_steps]
    if num_samples is None:
        curve = information_curve_exact(lang, L)
        out = {"curve": "exact", "Z": curve}
    else:
        curve = information_curve_mc(lang, L, num_samples, rng=seed, ci_alpha=ci_alpha)
        out = {"curve": "mc", "Z": curve.Z, "Z_lo": curve.lo, "Z_hi": curve.hi, "num_samples": int(num_samples)}
    out["schedules"] = [best_schedule(curve, n) for n in steps]
    return out


def kind_check(*, names=None, quick=False):
    """Checks of the paper's bounds (``mdm_exact.theory.checks.run_checks(names, quick=)``)."""
    from mdm_exact.theory.checks import run_checks

    rows = run_checks(None if names is None else list(names), quick=quick)
    return {"checks": list(rows)}


def kind_square(*, x, sleep=0.0, fail=False, log=None):
    """A cheap deterministic kind for tests and cluster smoke tests: returns ``{"x": x, "y": x*x}``.

    ``sleep`` seconds of waiting first; ``fail=True`` raises; ``log`` is a file to which one
    line ``"<x> <pid>"`` is appended per completed computation (to count computations).
    """
    if sleep:
        time.sleep(float(sleep))
    if fail:
        raise RuntimeError(f"cell x={x!r} asked to fail")
    result = {"x": x, "y": x * x}
    if log is not None:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{x} {os.getpid()}\n".encode())  # one small O_APPEND write: atomic
        finally:
            os.close(fd)
    return result


# --------------------------------------------------------------------------- prechecks
# The values each built-in kind would refuse, checked without computing: a sweep config runs these
# on every cell before the first starts (the same validators and size limits as the CLI).


@functools.lru_cache(maxsize=32)
def _language_once(spec_json: str, language_seed):
    return language_from_spec(json.loads(spec_json), language_seed)


def _precheck_language(language, language_seed):
    try:
        key = json.dumps(language, sort_keys=True)
    except TypeError:
        return language_from_spec(language, language_seed)
    return _language_once(key, language_seed)


def _precheck_rule(L, rule, num_steps, sizes, probs, alpha):
    r = _rule(L, rule, num_steps, sizes, probs, alpha)
    if hasattr(r, "check_length"):
        r.check_length(L)
    return r


def _precheck_ci_alpha(ci_alpha):
    if isinstance(ci_alpha, bool) or not isinstance(ci_alpha, (int, float)) or not 0.0 < ci_alpha < 1.0:
        raise ValueError(f"ci_alpha: expected 0 < ci_alpha < 1, got {ci_alpha!r}")


def precheck_exact(*, language, L, rule="linear", num_steps=None, sizes=None, probs=None, alpha=None,
                   language_seed=None, model_eta=None, model_seed=None, omit=None):
    """What :func:`kind_exact` would refuse: the language, ``L``, the rule and the engine's size limits."""
    from mdm_exact._validate import as_length, check_eta, check_exact_size
    from mdm_exact.sampler.exact import MAX_STATES, MAX_WORK

    lang = _precheck_language(language, language_seed)
    L = as_length(L)
    check_exact_size(lang.vocab_size, L, num_steps if rule in ("linear", "cosine") else None,
                     max_states=MAX_STATES, max_work=MAX_WORK)
    _precheck_rule(L, rule, num_steps, sizes, probs, alpha)
    if model_eta is not None:
        check_eta(model_eta, "model_eta")


def precheck_mc(*, language, L, num_samples, rule="linear", num_steps=None, sizes=None, probs=None, alpha=None,
                seed=None, ci_alpha=0.05, batch_size=None, instance_kl=True, dependencies=False, language_seed=None,
                omit=None):
    """What :func:`kind_mc` would refuse before sampling: sizes, the language, the rule, ``ci_alpha``."""
    from mdm_exact._validate import as_length, check_monte_carlo_size

    check_monte_carlo_size(L, num_samples, batch_size=batch_size)
    _precheck_language(language, language_seed)
    _precheck_rule(as_length(L), rule, num_steps, sizes, probs, alpha)
    _precheck_ci_alpha(ci_alpha)


def precheck_policy_exact(*, language, L, policy, num_steps=None, sizes=None, schedule="linear", block_length=None,
                          temperature=1.0, language_seed=None, omit=None):
    """What :func:`kind_policy_exact` would refuse: the language, the policy and the adaptive engine's limits."""
    from mdm_exact._validate import as_length
    from mdm_exact.sampler.adaptive_exact import _check_size

    lang = _precheck_language(language, language_seed)
    L = as_length(L)
    _check_size(int(lang.vocab_size), L, _policy(L, policy, num_steps, sizes, schedule, block_length, temperature))


def precheck_policy_mc(*, language, L, policy, num_samples, num_steps=None, sizes=None, schedule="linear",
                       block_length=None, temperature=1.0, seed=None, ci_alpha=0.05, batch_size=None,
                       language_seed=None, omit=None):
    """What :func:`kind_policy_mc` would refuse before sampling: sizes, the language, the policy, ``ci_alpha``."""
    from mdm_exact._validate import as_length, check_monte_carlo_size

    check_monte_carlo_size(L, num_samples, batch_size=batch_size)
    _precheck_language(language, language_seed)
    L = as_length(L)
    _policy(L, policy, num_steps, sizes, schedule, block_length, temperature)
    _precheck_ci_alpha(ci_alpha)


_LANG = ("language", "L", "language_seed")
register_kind("exact", kind_exact, params=_LANG + _RULE_PARAMS + ("model_eta", "model_seed", "omit"),
              required=("language", "L"), list_params=("sizes", "probs", "alpha", "omit"), precheck=precheck_exact)
register_kind("mc", kind_mc, params=_LANG + _RULE_PARAMS + ("num_samples", "seed", "ci_alpha", "batch_size",
                                                           "instance_kl", "dependencies", "omit"),
              required=("language", "L", "num_samples"), list_params=("sizes", "probs", "alpha", "omit"),
              precheck=precheck_mc)
register_kind("dependencies", kind_dependencies, params=("L", "order", "num_instances", "seed", "reading") + _RULE_PARAMS,
              required=("L", "order", "num_instances"), list_params=("sizes", "probs", "alpha"))
_POLICY_PARAMS = _LANG + ("policy", "num_steps", "sizes", "schedule", "block_length", "temperature", "omit")
register_kind("policy_exact", kind_policy_exact, params=_POLICY_PARAMS, required=("language", "L", "policy"),
              list_params=("sizes", "omit"), precheck=precheck_policy_exact)
register_kind("policy_mc", kind_policy_mc, params=_POLICY_PARAMS + ("num_samples", "seed", "ci_alpha", "batch_size"),
              required=("language", "L", "policy", "num_samples"), list_params=("sizes", "omit"),
              precheck=precheck_policy_mc)
register_kind("best_schedule", kind_best_schedule, params=_LANG + ("num_steps", "num_samples", "seed", "ci_alpha"),
              required=("language", "L", "num_steps"), list_params=("num_steps",))
register_kind("check", kind_check, params=("names", "quick"), list_params=("names",))
register_kind("square", kind_square, params=("x", "sleep", "fail", "log"), required=("x",))
