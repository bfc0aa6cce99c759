"""Sweeps: grids of cells (exact, Monte Carlo, bound checks, neural evaluation) run into a store.

A *cell* is a dict with a ``"kind"`` and that kind's parameters, e.g.
``{"kind": "exact", "language": "paper-2gram", "L": 6, "rule": "linear", "num_steps": 3}``.
:func:`compute_cell` computes one; :func:`run_cells` computes many on a process pool or a Dask
cluster and writes each result to a :class:`~mdm_exact.runtime.store.ResultStore` the moment it
finishes (the calling process is the only writer). A rerun skips cells already stored for
this package version; ``force=True`` recomputes them. A failing cell is stored with its
traceback and the others go on.

Kinds live in a registry (:func:`register_kind`), so other code can add its own; a kind may
also be named ``"package.module:function"``. TOML sweep configs are read by
:func:`load_config`; see ``docs/sweeps.md`` for the schema.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import math
import os
import signal
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

__all__ = [
    "KindSpec",
    "SweepConfig",
    "register_kind",
    "get_kind",
    "kinds",
    "validate_cell",
    "compute_cell",
    "run_cells",
    "expand_grid",
    "load_config",
    "parse_config",
    "summarize",
]

EXECUTORS = ("local", "dask", "serial")


# --------------------------------------------------------------------------- kind registry


@dataclasses.dataclass(frozen=True)
class KindSpec:
    """A registered cell kind.

    ``func(**params) -> dict`` computes a cell from its parameters (the cell without
    ``"kind"``). ``params`` is the set of allowed parameter names (None: anything goes),
    ``required`` those that must be present, ``list_params`` those whose value is itself a
    list (in a TOML grid a flat list is then one value and a list of lists is a grid).
    """

    name: str
    func: object
    params: frozenset | None = None
    required: tuple = ()
    list_params: tuple = ()
    doc: str = ""


_KINDS: dict[str, KindSpec] = {}


def register_kind(name, func, *, params=None, required=(), list_params=(), doc="", replace=False) -> KindSpec:
    """Register ``func(**params) -> dict`` as the cell kind ``name``.

    For process-pool and Dask execution ``func`` must be importable by its module and name
    in the worker processes (a module-level function of an importable module).

    Raises
    ------
    ValueError
        If ``name`` is taken (and ``replace`` is false) or the declaration is inconsistent.
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"a kind name must be a non-empty string without ':', got {name!r}")
    if not callable(func):
        raise ValueError(f"kind {name!r}: func must be callable, got {func!r}")
    if name in _KINDS and not replace and _KINDS[name].func is not func:
        raise ValueError(f"kind {name!r} is already registered (pass replace=True to replace it)")
    allowed = None if params is None else frozenset(params) | frozenset(required) | frozenset(list_params)
    spec = KindSpec(name, func, allowed, tuple(required), tuple(list_params), doc or (func.__doc__ or "").strip())
    _KINDS[name] = spec
    return spec


def get_kind(name: str) -> KindSpec:
    """The registered kind ``name``, or the function ``name = "module:function"``."""
    if name in _KINDS:
        return _KINDS[name]
    if isinstance(name, str) and ":" in name:
        mod, _, attr = name.partition(":")
        try:
            func = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cell kind {name!r}: cannot import {attr!r} from {mod!r} ({exc})") from None
        return KindSpec(name, func)
    raise ValueError(f"unknown cell kind {name!r}; registered kinds: {', '.join(sorted(_KINDS))} (or 'module:function')")


def kinds() -> dict:
    """A copy of the registry ``{name: KindSpec}``."""
    return dict(_KINDS)


def validate_cell(cell) -> KindSpec:
    """Check a cell against its kind's declaration; returns the kind.

    Raises
    ------
    ValueError
        Naming the cell, the unknown or missing parameters and the allowed ones.
    """
    if not isinstance(cell, dict):
        raise ValueError(f"a cell must be a dict with a 'kind', got {type(cell).__name__}: {cell!r:.120}")
    if "kind" not in cell:
        raise ValueError(f"cell {cell!r:.200} has no 'kind' (one of {', '.join(sorted(_KINDS))})")
    spec = get_kind(cell["kind"])
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
    return spec


def compute_cell(cell: dict) -> dict:
    """Compute one cell in this process and return its result dict.

    Exceptions of the kind's function propagate (:func:`run_cells` records them).
    """
    spec = validate_cell(cell)
    return _call_kind(spec.func, cell)


def _call_kind(func, cell) -> dict:
    out = func(**{k: v for k, v in cell.items() if k != "kind"})
    if hasattr(out, "to_dict") and not isinstance(out, dict):
        out = out.to_dict()
    if not isinstance(out, dict):
        raise TypeError(f"cell kind {cell.get('kind')!r} returned {type(out).__name__}, expected a dict")
    return out


# --------------------------------------------------------------------------- built-in kinds

_RULE_PARAMS = ("rule", "num_steps", "sizes", "probs", "alpha")


def _language(language, language_seed):
    from mdm_exact.languages import load_language  # lazily: the languages team's loader

    return load_language(language, seed=language_seed)


def _rule(L, rule, num_steps, sizes, probs, alpha):
    from mdm_exact.sampler.schedules import make_step_rule

    return make_step_rule(rule, L=L, num_steps=num_steps, sizes=sizes, probs=probs, alpha=alpha)


def kind_exact(
    *, language, L, rule="linear", num_steps=None, sizes=None, probs=None, alpha=None, language_seed=None,
    model_eta=None, model_seed=None,
):
    """Exact metrics of the idealised sampler by enumeration (``mdm_exact.sampler.exact.exact_metrics``).

    ``model_eta`` (with ``model_seed``) evaluates an imperfect model
    ``mdm_exact.sampler.models.PerturbedModel(lang, model_eta, seed=model_seed)`` instead of the language.
    """
    from mdm_exact.sampler.exact import exact_metrics

    lang = _language(language, language_seed)
    model = None
    if model_eta is not None:
        from mdm_exact.sampler.models import PerturbedModel

        model = PerturbedModel(lang, model_eta, seed=model_seed)
    out = dict(exact_metrics(lang, L, _rule(L, rule, num_steps, sizes, probs, alpha), model=model))
    return out


def kind_mc(
    *, language, L, num_samples, rule="linear", num_steps=None, sizes=None, probs=None, alpha=None, seed=None,
    ci_alpha=0.05, batch_size=None, instance_kl=True, dependencies=False, language_seed=None,
):
    """Monte Carlo of the idealised sampler (``mdm_exact.sampler.montecarlo.run_monte_carlo(...).to_dict()``).

    ``seed`` seeds the sampler (``rng=seed``), ``ci_alpha`` is the level of the intervals,
    ``alpha`` the schedule values for ``rule="alpha"``.
    """
    from mdm_exact.sampler.montecarlo import run_monte_carlo

    res = run_monte_carlo(
        _language(language, language_seed),
        L,
        _rule(L, rule, num_steps, sizes, probs, alpha),
        num_samples,
        rng=seed,
        alpha=ci_alpha,
        batch_size=batch_size,
        progress=False,
        instance_kl=instance_kl,
        dependencies=dependencies,
    )
    return res.to_dict()


def kind_check(*, names=None, quick=False):
    """Checks of the paper's bounds (``mdm_exact.theory.checks.run_checks(names, quick=)``)."""
    from mdm_exact.theory.checks import run_checks

    rows = run_checks(None if names is None else list(names), quick=quick)
    return {"checks": list(rows)}


def kind_neural(
    *, checkpoint, steps=None, L=None, num_samples=256, batch_size=64, seed=0, rule="linear", ordering="random",
    reference_samples=0, device="cpu",
):
    """Evaluation of a trained checkpoint with ``neural.evaluate`` (needs torch; imported lazily).

    A bidirectional (MDM) checkpoint is sampled at each number of steps in ``steps``
    (``neural.evaluate.evaluate_mdm``); a causal one with ``neural.evaluate.evaluate_ar``.
    The checkpoint's language is scored exactly. The result records the checkpoint file's
    sha256, since the cell key holds only its path.
    """
    import hashlib

    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"neural cell: checkpoint {checkpoint} does not exist")
    with open(checkpoint, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    from neural.checkpoint import checkpoint_language, load_checkpoint  # torch, only in this worker
    from neural.evaluate import evaluate_ar, evaluate_mdm

    net, ckpt = load_checkpoint(checkpoint, map_location=device)
    lang = checkpoint_language(ckpt)
    L = int(ckpt["L"]) if L is None else int(L)
    out = {"checkpoint_sha256": digest, "L": L, "causal": bool(net.config.causal)}
    if net.config.causal:
        out["ar"] = evaluate_ar(net, lang, L, num_samples=num_samples, batch_size=batch_size, seed=seed)
    else:
        if steps is None:
            raise ValueError("a neural cell of an MDM checkpoint needs 'steps' (numbers of sampling steps)")
        from neural.sample import NetworkDenoiser

        steps = [int(s) for s in (steps if isinstance(steps, (list, tuple)) else [steps])]
        out["mdm"] = evaluate_mdm(NetworkDenoiser(net), lang, L, steps, num_samples=num_samples,
                                  batch_size=batch_size, seed=seed, rule=rule, ordering=ordering,
                                  reference_samples=reference_samples)
    return out


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


_LANG = ("language", "L", "language_seed")
register_kind("exact", kind_exact, params=_LANG + _RULE_PARAMS + ("model_eta", "model_seed"),
              required=("language", "L"), list_params=("sizes", "probs", "alpha"))
register_kind("mc", kind_mc, params=_LANG + _RULE_PARAMS + ("num_samples", "seed", "ci_alpha", "batch_size",
                                                           "instance_kl", "dependencies"),
              required=("language", "L", "num_samples"), list_params=("sizes", "probs", "alpha"))
register_kind("check", kind_check, params=("names", "quick"), list_params=("names",))
register_kind("neural", kind_neural, params=("checkpoint", "steps", "L", "num_samples", "batch_size", "seed", "rule",
                                             "ordering", "reference_samples", "device"),
              required=("checkpoint",), list_params=("steps",))
register_kind("square", kind_square, params=("x", "sleep", "fail", "log"), required=("x",))


# --------------------------------------------------------------------------- config files


@dataclasses.dataclass
class SweepConfig:
    """A parsed sweep config: the expanded cells and the ``[sweep]`` options."""

    cells: list
    name: str | None = None
    store: str | None = None
    executor: str | None = None
    scheduler: str | None = None
    workers: int | None = None
    plugins: tuple = ()
    path: str | None = None


_SWEEP_KEYS = {"name", "store", "executor", "scheduler", "workers", "plugins"}


def _load_toml(path):
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ValueError("reading TOML needs Python >= 3.11 (tomllib) or the 'tomli' package") from None
    with open(path, "rb") as fh:
        try:
            return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"sweep config {path}: invalid TOML: {exc}") from None


def load_config(path) -> SweepConfig:
    """Read a TOML sweep config (schema in ``docs/sweeps.md``).

    Raises
    ------
    ValueError
        For invalid TOML, unknown keys (naming the file, the table and the allowed keys),
        unknown kinds or empty grids.
    FileNotFoundError
        If the file does not exist.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"sweep config {path} does not exist")
    cfg = parse_config(_load_toml(path), source=path)
    cfg.path = path
    if cfg.store is not None and not os.path.isabs(cfg.store):
        cfg.store = os.path.join(os.path.dirname(os.path.abspath(path)), cfg.store)
    return cfg


def parse_config(data: dict, *, source="<config>") -> SweepConfig:
    """Validate and expand a config already read into a dict (see :func:`load_config`)."""
    unknown = sorted(set(data) - {"sweep", "cells"})
    if unknown:
        raise ValueError(f"{source}: unknown top-level key(s) {', '.join(unknown)}; allowed: [sweep], [[cells]]")
    opts = data.get("sweep", {})
    if not isinstance(opts, dict):
        raise ValueError(f"{source}: 'sweep' must be a table ([sweep])")
    bad = sorted(set(opts) - _SWEEP_KEYS)
    if bad:
        raise ValueError(f"{source}: unknown key(s) {', '.join(bad)} in [sweep]; allowed: {', '.join(sorted(_SWEEP_KEYS))}")
    plugins = opts.get("plugins", [])
    if isinstance(plugins, str) or not all(isinstance(p, str) for p in plugins):
        raise ValueError(f"{source}: [sweep] plugins must be a list of module names")
    for p in plugins:
        try:
            _import_plugin(p)
        except ValueError as exc:
            raise ValueError(f"{source}: [sweep] {exc}") from None
    executor = opts.get("executor")
    if executor is not None and executor not in EXECUTORS:
        raise ValueError(f"{source}: [sweep] executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    workers = opts.get("workers")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"{source}: [sweep] workers must be an integer >= 1, got {workers!r}")
    for k in ("name", "store", "scheduler"):
        if k in opts and not isinstance(opts[k], str):
            raise ValueError(f"{source}: [sweep] {k} must be a string, got {opts[k]!r}")
    blocks = data.get("cells")
    if not blocks:
        raise ValueError(f"{source}: no cells; add at least one [[cells]] table with a 'kind'")
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise ValueError(f"{source}: 'cells' must be an array of tables ([[cells]])")
    cells = []
    for i, block in enumerate(blocks):
        try:
            cells.extend(expand_grid(block))
        except ValueError as exc:
            raise ValueError(f"{source}: [[cells]] block {i + 1}: {exc}") from None
    return SweepConfig(
        cells=cells,
        name=opts.get("name"),
        store=opts.get("store"),
        executor=executor,
        scheduler=opts.get("scheduler"),
        workers=workers,
        plugins=tuple(plugins),
    )


def expand_grid(block: dict) -> list:
    """Expand one ``[[cells]]`` block: the Cartesian product of its list-valued parameters.

    For a kind's list-typed parameters (e.g. ``sizes``, ``names``) a flat list is one value
    and a list of lists is a grid axis. Axes vary in the order the keys are written, the
    last fastest. Every cell is validated against its kind.
    """
    if "kind" not in block:
        raise ValueError(f"missing 'kind' (one of {', '.join(sorted(_KINDS))})")
    kind = block["kind"]
    if not isinstance(kind, str):
        raise ValueError(f"'kind' must be a single string (one kind per [[cells]] block), got {kind!r}")
    spec = get_kind(kind)
    axes = []
    for name, value in block.items():
        if name == "kind":
            continue
        if isinstance(value, dict):
            raise ValueError(f"parameter {name!r} is a table; values must be scalars or lists")
        if name in spec.list_params:
            is_axis = isinstance(value, list) and len(value) > 0 and all(isinstance(v, list) for v in value)
        else:
            is_axis = isinstance(value, list)
        if is_axis:
            if len(value) == 0:
                raise ValueError(f"parameter {name!r} is an empty list, so the grid would be empty")
            axes.append((name, list(value)))
        else:
            axes.append((name, [value]))
    cells = []
    for combo in itertools.product(*(vals for _, vals in axes)):
        cell = {"kind": kind}
        cell.update({name: v for (name, _), v in zip(axes, combo)})
        validate_cell(cell)
        cells.append(cell)
    return cells


def _import_plugin(name):
    try:
        importlib.import_module(name)
    except ImportError as exc:
        raise ValueError(f"sweep plugin module {name!r} cannot be imported: {exc}") from None


# --------------------------------------------------------------------------- execution


def _execute(func, cell, plugins=()):
    """Run in a worker: compute one cell; never raises for the cell's own failure."""
    t0 = time.perf_counter()
    try:
        for p in plugins:
            importlib.import_module(p)
        result = _call_kind(func, cell)
        return "ok", result, time.perf_counter() - t0
    except Exception:  # the cell failed: report its traceback, the sweep goes on
        return "error", traceback.format_exc(), time.perf_counter() - t0


def _worker_init():
    """Process-pool worker set-up: die with the parent; leave Ctrl-C to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: never outlive a killed sweep
            if os.getppid() == 1:  # the parent died before prctl took effect
                os._exit(1)
        except (OSError, AttributeError):
            pass


def _label(cell, width=100) -> str:
    s = cell["kind"] + " " + " ".join(f"{k}={v}" for k, v in cell.items() if k != "kind")
    return s if len(s) <= width else s[: width - 3] + "..."


def run_cells(
    cells,
    store,
    *,
    executor="local",
    workers=None,
    force=False,
    progress=True,
    scheduler=None,
    client=None,
    plugins=(),
    mp_context=None,
) -> list:
    """Compute cells and store each result as soon as it finishes.

    Parameters
    ----------
    cells : list of dict
        Each with a ``"kind"`` and that kind's parameters; validated before anything runs.
    store : ResultStore or path
        Where results go; this process is its only writer.
    executor : {"local", "dask", "serial"}
        ``local``: a ``ProcessPoolExecutor`` on this machine (``workers`` processes, default
        the CPU count); ``dask``: a Dask distributed cluster at ``scheduler`` (address such
        as ``tcp://host:8786``), or ``client`` (a ``distributed.Client``), or else a
        ``LocalCluster`` of ``workers`` processes; ``serial``: in this process.
    force : bool
        Recompute cells that are already stored.
    progress : bool
        One line per finished cell on stderr.
    plugins : sequence of str
        Modules imported in every worker before computing (they may register kinds).
    mp_context : str, optional
        Start method of local workers (default ``spawn``).

    Returns
    -------
    list of dict
        One record per input cell, in order: ``key``, ``config``, ``status`` ("ok" or
        "error"), ``cached`` (taken from the store without computing), ``result``,
        ``error`` (traceback), ``seconds``.

    Notes
    -----
    Interrupting (Ctrl-C, SIGTERM turned into KeyboardInterrupt by the CLI) stores every
    result that has already arrived, stops the workers and re-raises. A SIGKILL loses only
    the cells that were running; process-pool workers are killed with their parent.
    """
    from mdm_exact.runtime.store import ResultStore, config_key

    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers is not None and (int(workers) != workers or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if not isinstance(store, ResultStore):
        store = ResultStore(store)
    for p in plugins:
        _import_plugin(p)
    specs = [validate_cell(c) for c in cells]
    keys = [config_key(c) for c in cells]

    records: dict[str, dict] = {}
    todo: list[tuple[str, dict, object]] = []
    queued = set()
    for cell, key, spec in zip(cells, keys, specs):
        if key in records or key in queued:
            continue
        queued.add(key)
        found = None if force else store.get(cell)
        if found is not None:
            records[key] = {"key": key, "config": cell, "status": "ok", "cached": True, "result": found,
                            "error": None, "seconds": 0.0}
        else:
            todo.append((key, cell, spec.func))
    n_total = len(todo)
    if progress:
        print(f"sweep: {len(set(keys))} cells, {len(records)} already stored, {n_total} to compute "
              f"({executor})", file=sys.stderr, flush=True)

    counter = {"done": 0}

    def finish(key, cell, status, payload, seconds):
        if status == "ok":
            try:
                store.put(cell, payload, seconds=seconds)
            except ValueError as exc:  # result not storable (e.g. not JSON): record as the cell's error
                status, payload = "error", f"result could not be stored: {exc}"
        if status == "error":
            store.put_error(cell, payload, seconds=seconds)
        records[key] = {"key": key, "config": cell, "status": status, "cached": False,
                        "result": payload if status == "ok" else None,
                        "error": payload if status == "error" else None, "seconds": seconds}
        counter["done"] += 1
        if progress:
            tail = "" if status == "ok" else "  " + str(payload).strip().splitlines()[-1][:120]
            print(f"[{counter['done']:>{len(str(n_total))}}/{n_total}] {status:<5} {seconds:8.2f} s  "
                  f"{_label(cell)}{tail}", file=sys.stderr, flush=True)

    if todo:
        if executor == "serial":
            for key, cell, func in todo:
                finish(key, cell, *_execute(func, cell, tuple(plugins)))
        elif executor == "local":
            _run_local(todo, finish, workers, tuple(plugins), mp_context)
        else:
            _run_dask(todo, finish, workers, tuple(plugins), scheduler, client)
    return [records[k] for k in keys]


def _run_local(todo, finish, workers, plugins, mp_context):
    """Process pool with at most ``n`` cells in flight; isolates cells that crash a worker.

    When a worker process dies, every cell then in flight fails with ``BrokenProcessPool``.
    Those cells become suspects and are rerun alone in a fresh pool: a suspect that crashes
    again alone is recorded as an error; the innocent ones just complete.
    """
    import collections
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    # spawn: clean workers (no inherited threads or locks) whose parent is this process, so
    # that PR_SET_PDEATHSIG takes them down with a killed sweep (a forkserver would outlive it).
    ctx = multiprocessing.get_context(mp_context or "spawn")
    n = min(workers or os.cpu_count() or 1, len(todo))
    queue = collections.deque(todo)
    suspects = set()
    pending = {}
    pool = None
    clean = False

    def new_pool():
        return ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_worker_init)

    try:
        while queue or pending:
            if pool is None:
                pool = new_pool()
            while queue and len(pending) < n and not (pending.keys() and _any_suspect(pending, suspects)):
                key, cell, func = queue[0]
                if key in suspects and pending:
                    break  # a suspect runs alone
                queue.popleft()
                pending[pool.submit(_execute, func, cell, plugins)] = (key, cell, func)
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            broken = any(isinstance(f.exception(), BrokenProcessPool) for f in done)
            if broken:  # every future of the dead pool fails: collect them all
                done, _ = wait(list(pending))
            retry = []
            for fut in done:
                key, cell, func = pending.pop(fut)
                if isinstance(fut.exception(), BrokenProcessPool) and key not in suspects:
                    suspects.add(key)
                    retry.append((key, cell, func))
                else:
                    _finish_future(fut, key, cell, finish)
            queue.extendleft(reversed(retry))
            if broken:
                pool.shutdown(wait=True)
                pool = None
        clean = True
    finally:
        if pool is not None and not clean:
            # Keep what already arrived, then stop the workers (running cells are abandoned).
            for fut in [f for f in pending if f.done() and not f.cancelled()]:
                key, cell, _ = pending.pop(fut)
                try:
                    _finish_future(fut, key, cell, finish)
                except Exception:  # noqa: BLE001 - best effort while shutting down
                    pass
            procs = list((getattr(pool, "_processes", None) or {}).values())  # no public API before 3.14
            pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                if p.is_alive():
                    p.kill()
        elif pool is not None:
            pool.shutdown(wait=True)


def _any_suspect(pending, suspects) -> bool:
    return any(key in suspects for key, _, _ in pending.values())


def _finish_future(fut, key, cell, finish):
    exc = fut.exception()
    if exc is None:
        finish(key, cell, *fut.result())
    else:  # the worker process died (BrokenProcessPool) or the result could not be pickled
        from concurrent.futures.process import BrokenProcessPool

        msg = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        what = ("the cell crashed its worker process, also when run alone" if isinstance(exc, BrokenProcessPool)
                else "the cell's result could not be sent back from the worker")
        finish(key, cell, "error", f"worker failure ({what}): {msg}", 0.0)


def _run_dask(todo, finish, workers, plugins, scheduler, client):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError("the dask executor needs dask[distributed]: pip install 'mdm-theory[dist]'") from None
    cluster = own_client = None
    if client is None:
        if scheduler:
            client = own_client = Client(scheduler)
        else:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True)
            client = own_client = Client(cluster)
    futures = {}
    clean = False
    try:
        for key, cell, func in todo:
            fut = client.submit(_execute, func, cell, plugins, pure=False, key=f"mdm-cell-{key[:16]}-{os.urandom(4).hex()}")
            futures[fut] = (key, cell)
        for fut in as_completed(list(futures)):
            key, cell = futures.pop(fut)
            if fut.status == "finished":
                finish(key, cell, *fut.result())
            else:  # lost worker, cancelled, or an error outside _execute
                try:
                    exc = fut.exception()
                except Exception as e:  # noqa: BLE001 - e.g. CancelledError
                    exc = e
                finish(key, cell, "error", f"dask task failed: {type(exc).__name__}: {exc}", 0.0)
        clean = True
    finally:
        if not clean and futures:
            for fut in [f for f in futures if f.status == "finished"]:
                key, cell = futures.pop(fut)
                try:
                    finish(key, cell, *fut.result())
                except Exception:  # noqa: BLE001 - best effort while shutting down
                    pass
            client.cancel(list(futures))
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()


def summarize(records) -> dict:
    """Counts of a :func:`run_cells` return value: cells, computed, cached, ok, error, seconds."""
    uniq = list({r["key"]: r for r in records}.values())
    return {
        "cells": len(uniq),
        "computed": sum(1 for r in uniq if not r["cached"]),
        "cached": sum(1 for r in uniq if r["cached"]),
        "ok": sum(1 for r in uniq if r["status"] == "ok"),
        "error": sum(1 for r in uniq if r["status"] == "error"),
        "seconds": math.fsum(r["seconds"] for r in uniq),
    }
