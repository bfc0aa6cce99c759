"""The report's cells: built-in kinds of :mod:`mdm_exact.runtime.kinds`, run by the runtime.

Every expensive computation of a figure is a sweep cell of a built-in kind (``exact``,
``mc`` or ``dependencies``), run by :func:`mdm_exact.runtime.sweep.run_cells` into a
:class:`mdm_exact.runtime.store.ResultStore` (``data/cells.sqlite``): stored the moment it
finishes, so an interrupted report loses nothing and a rerun recomputes nothing. There is no
second store or cell runner here; :class:`Runner` only builds the cells, counts them and
reports progress.

Seeds. A Monte Carlo or dependency cell's seed derives from the root seed and the cell's
*seed identity*, a fixed description of what the cell computes (:meth:`Runner.mc_cell`,
:meth:`Runner.deps_cell`). The identity keeps the form the report's cells had before they
became runtime kinds, so that every seed, hence every number of the committed report, is
what it was; it never depends on the order of the cells or on which were cached.
"""

from __future__ import annotations

import time
import zlib

import numpy as np

from mdm_exact.runtime.kinds import language_from_spec
from mdm_exact.runtime.store import canonical_json, config_key
from mdm_exact.runtime.sweep import run_cells

#: Result keys the figures never read and that would bloat the committed store: the rule's
#: echo (per-step probabilities; the cell has the rule) and the NFE histogram.
MC_OMIT = ("nfe_hist", "rule")
EXACT_OMIT = ("rule",)


class CellError(RuntimeError):
    """A cell of a figure failed (its traceback is in the store)."""


# ------------------------------------------------------------------------- languages and rules
def cell_language(spec):
    """The ``language`` of a cell for a report language spec.

    A report spec is a preset name or file, or ``{"random_ngram": {"order", "V",
    "concentration", "seed"}}`` (the report configs' name, kept so that configs and data stay
    as they were), which is the runtime's ``{"dirichlet_ngram": {...}}``.
    """
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict) and set(spec) == {"random_ngram"} and isinstance(spec["random_ngram"], dict):
        p = spec["random_ngram"]
        unknown = set(p) - {"order", "V", "concentration", "seed"}
        if unknown:
            raise ValueError(f"random_ngram: unknown keys {sorted(unknown)}; expected order, V, concentration, seed")
        return {"dirichlet_ngram": dict(p)}
    raise ValueError(f"language spec: expected a preset name or {{'random_ngram': {{...}}}}, got {spec!r}")


def make_language(spec):
    """The language of a report spec (see :func:`cell_language`), built as the cells build it."""
    return language_from_spec(cell_language(spec))


def language_label(spec) -> str:
    """A short label of a report spec (or of a cell's ``language``)."""
    if isinstance(spec, str):
        return spec
    p = spec.get("random_ngram") or spec.get("dirichlet_ngram")
    return f"random {p['order']}-gram (V={p['V']}, Dir({p['concentration']}))"


def make_rule(rule: dict, L: int):
    """A step rule from ``{"rule": "linear", "num_steps": N}`` / ``{"rule": "left-to-right"}``."""
    from mdm_exact.sampler.schedules import make_step_rule

    r = dict(rule)
    name = r.pop("rule")
    return make_step_rule(name, L=L, **r)


def cell_seed(root: int, identity: dict) -> int:
    """A seed from the root seed and a cell's seed identity (its ``seed`` entry ignored)."""
    c = {k: v for k, v in identity.items() if k != "seed"}
    ss = np.random.SeedSequence([int(root), zlib.crc32(canonical_json(c).encode())])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


# ------------------------------------------------------------------------- progress
class Progress:
    """One line per finished cell on stderr, with the elapsed time."""

    def __init__(self, enabled=True, stream=None):
        import sys

        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.figure = ""
        self.t0 = time.perf_counter()

    def say(self, msg):
        if self.enabled:
            el = time.perf_counter() - self.t0
            print(f"[report {el:7.1f}s] {msg}", file=self.stream, flush=True)


def describe(cell) -> str:
    """A one-line description of a report cell."""
    parts = [cell["kind"]]
    if "language" in cell:
        parts.append(language_label(cell["language"]))
    if "order" in cell:
        parts.append(f"n={cell['order']}")
    if "L" in cell:
        parts.append(f"L={cell['L']}")
    if "rule" in cell:
        parts.append("AR" if cell["rule"] == "left-to-right" else f"N={cell.get('num_steps')}")
    if "num_samples" in cell:
        parts.append(f"samples={cell['num_samples']}")
    return " ".join(parts)


# ------------------------------------------------------------------------- the runner
class Runner:
    """Builds the report's cells and runs them with :func:`mdm_exact.runtime.sweep.run_cells`.

    Parameters
    ----------
    store : ResultStore
    seed : int
        Root seed of the report.
    alpha : float
        Miscoverage of the Monte Carlo intervals (the cells' ``ci_alpha``).
    force : bool
        Recompute each cell once in this run even when the store has it (a cell shared by two
        figures is computed once).
    progress : Progress, optional
    """

    def __init__(self, store, *, seed, alpha, force=False, progress=None):
        self.store = store
        self.root_seed = int(seed)
        self.alpha = float(alpha)
        self.force = force
        self.progress = progress or Progress(False)
        self.stats = {"computed": 0, "cached": 0, "compute_seconds": 0.0}
        self._forced = set()
        self.unique_seconds = {}  # cell key -> compute seconds (cells shared by figures count once)

    def seed_for(self, what: dict) -> int:
        return cell_seed(self.root_seed, what)

    # cell constructors: every cell is a plain JSON-able dict of a built-in kind
    def mc_cell(self, language, L, rule, num_samples, *, instance_kl=True):
        """A Monte Carlo cell (kind ``mc``); ``rule`` is ``{"rule": name, ...}``."""
        identity = {"kind": "mc", "language": language, "L": int(L), "rule": rule, "num_samples": int(num_samples),
                    "alpha": self.alpha, "instance_kl": bool(instance_kl)}
        return {"kind": "mc", "language": cell_language(language), "L": int(L), **rule,
                "num_samples": int(num_samples), "seed": self.seed_for(identity), "ci_alpha": self.alpha,
                "instance_kl": bool(instance_kl), "omit": list(MC_OMIT)}

    def exact_cell(self, language, L, rule):
        """An exact-enumeration cell (kind ``exact``)."""
        return {"kind": "exact", "language": cell_language(language), "L": int(L), **rule, "omit": list(EXACT_OMIT)}

    def deps_cell(self, L, order, rule, num_instances):
        """A separator / dependency count cell (kind ``dependencies``, Lemma B.11)."""
        identity = {"kind": "deps", "L": int(L), "order": int(order), "rule": rule, "num_instances": int(num_instances)}
        return {"kind": "dependencies", "L": int(L), "order": int(order), **rule,
                "num_instances": int(num_instances), "seed": self.seed_for(identity)}

    def run_all(self, cells):
        n = len(cells)
        return [self.run(cell, f"{self.progress.figure} {i + 1}/{n}") for i, cell in enumerate(cells)]

    def run(self, cell, label=""):
        """The result of ``cell`` as the store holds it (computed first unless stored).

        Raises
        ------
        CellError
            If the cell failed (the failure is recorded in the store).
        """
        key = config_key(cell)
        force = self.force and key not in self._forced
        rec = run_cells([cell], self.store, executor="serial", force=force, progress=False)[0]
        if rec["status"] != "ok":
            last = str(rec["error"]).strip().splitlines()[-1]
            raise CellError(f"cell {describe(cell)} failed: {last}")
        secs = float(rec["stored_seconds"])
        if rec["cached"]:
            self.stats["cached"] += 1
            self.progress.say(f"{label} {describe(cell)}: cached")
            result = rec["result"]
        else:
            self._forced.add(key)
            self.stats["computed"] += 1
            self.progress.say(f"{label} {describe(cell)}: {secs:.1f} s")
            result = self.store.get(cell)  # what the store holds, as for a cached cell
        self.stats["compute_seconds"] += secs
        self.unique_seconds[key] = secs
        return result
