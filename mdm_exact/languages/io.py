"""Language files (JSON or ``.npz``) and :func:`load_language`.

Formats (keys exactly these, nothing else; contexts big-endian)::

    {"kind": "hmm", "initial": [S], "transition": [[S x S]], "emission": [[S x V]]}
    {"kind": "ngram", "order": n, "initial": [V^(n-1)], "conditional": [[V^(n-1) x V]]}
    {"kind": "interval", "interval_length": l}

A ``.npz`` file holds the same keys as arrays (``kind`` a 0-d string array). Everything is
validated on load by the language constructors (shapes, finiteness, non-negativity,
stochastic rows); a malformed file raises :class:`~mdm_exact._validate.LanguageError`
(a ``ValueError``) naming the file and what was wrong.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from mdm_exact._validate import LanguageError
from mdm_exact.languages.base import Language
from mdm_exact.languages.examples import IntervalLanguage
from mdm_exact.languages.hmm import HMM
from mdm_exact.languages.ngram import NGram
from mdm_exact.languages.presets import PRESETS, make_preset

_KEYS = {
    "hmm": {"kind", "initial", "transition", "emission"},
    "ngram": {"kind", "order", "initial", "conditional"},
    "interval": {"kind", "interval_length"},
}


def language_to_dict(lang: Language) -> dict:
    """The file representation of ``lang`` (arrays as NumPy arrays)."""
    if isinstance(lang, HMM):
        return {"kind": "hmm", "initial": lang.initial, "transition": lang.transition, "emission": lang.emission}
    if isinstance(lang, NGram):
        return {"kind": "ngram", "order": lang.order, "initial": lang.initial, "conditional": lang.conditional}
    if isinstance(lang, IntervalLanguage):
        return {"kind": "interval", "interval_length": lang.interval_length}
    raise TypeError(f"cannot save a language of type {type(lang).__name__}; expected HMM, NGram or IntervalLanguage")


def language_from_dict(d: dict, *, source: str = "language") -> Language:
    """Build a language from its file representation; strict about keys, kinds and shapes."""
    if not isinstance(d, dict):
        raise LanguageError(f"{source}: expected a JSON object with a 'kind' key, got {type(d).__name__}")
    kind = d.get("kind")
    if isinstance(kind, np.ndarray):
        kind = kind.item() if kind.ndim == 0 else kind
    if not isinstance(kind, str) or kind not in _KEYS:
        raise LanguageError(f"{source}: unknown or missing 'kind' {kind!r}; expected one of {sorted(_KEYS)}")
    keys = set(d)
    missing, extra = _KEYS[kind] - keys, keys - _KEYS[kind]
    if missing or extra:
        raise LanguageError(
            f"{source}: a {kind!r} language needs exactly the keys {sorted(_KEYS[kind])}"
            + (f"; missing {sorted(missing)}" if missing else "")
            + (f"; unknown {sorted(extra)}" if extra else "")
        )
    try:
        if kind == "hmm":
            return HMM(d["initial"], d["transition"], d["emission"])
        if kind == "ngram":
            order = _as_int(d["order"], "order", source)
            _check_order(order, d["conditional"], source)
            return NGram(order, d["initial"], d["conditional"])
        return IntervalLanguage(_as_int(d["interval_length"], "interval_length", source))
    except LanguageError as exc:
        raise LanguageError(f"{source}: {exc}") from None
    except ValueError as exc:
        raise LanguageError(f"{source}: {exc}") from None


def _check_order(order, conditional, source):
    """Refuse an order whose ``V^(n-1)`` contexts cannot match the table, before computing ``V^(n-1)``."""
    import math

    shape = np.shape(conditional) if isinstance(conditional, np.ndarray) else None
    if shape is None and isinstance(conditional, list):
        shape = (len(conditional), len(conditional[0]) if conditional and isinstance(conditional[0], list) else 0)
    if order < 2 or not shape or len(shape) != 2 or shape[1] < 1:
        return  # the constructor says what is wrong
    rows, V = shape
    if V == 1 or rows < 1:
        return
    if (order - 1) * math.log(V) > math.log(rows) + 1e-9:
        raise LanguageError(
            f"order {order} with V = {V} tokens means V^(n-1) ~ 10^{(order - 1) * math.log10(V):.4g} contexts, "
            f"but 'conditional' has {rows} rows; expected order = 1 + log_V(rows)"
        )


def _as_int(v, name, source):
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise LanguageError(f"{source}: {name} must be an integer, got {v!r}")
    return int(v)


def _no_duplicate_keys(path):
    def hook(pairs):
        out = {}
        for k, v in pairs:
            if k in out:
                raise LanguageError(f"{path}: the key {k!r} appears twice in one JSON object; expected each key once")
            out[k] = v
        return out

    return hook


def _no_constant(path):
    def hook(name):
        raise LanguageError(f"{path}: {name} is not a probability; expected finite real numbers")

    return hook


def save_language(lang: Language, path) -> Path:
    """Write ``lang`` to ``path`` (``.json`` or ``.npz``, chosen by the suffix); returns the path.

    The file appears whole or not at all: it is written next to ``path`` and renamed over it.

    Raises
    ------
    ValueError
        Another suffix.
    FileNotFoundError
        If the folder of ``path`` does not exist (it is not created).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".npz"):
        raise ValueError(f"{path}: expected a .json or .npz file name")
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
    d = language_to_dict(lang)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            if suffix == ".json":
                out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}
                fh.write((json.dumps(out, indent=None, separators=(",", ":")) + "\n").encode())
            else:
                np.savez(fh, **{k: np.asarray(v) for k, v in d.items()})
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def as_language(lang, name: str = "lang", *, seed=None) -> Language:
    """``lang`` itself if it is a :class:`Language`; a preset name or a language file loaded.

    Every public entry point that takes a language (``run_monte_carlo``, ``exact_metrics``,
    ``policy_output_law``, ...) goes through this, so ``run_monte_carlo("paper-hmm", ...)`` works
    as the CLI's ``--language paper-hmm`` does. ``seed`` goes to :func:`load_language` (random
    presets); a Language is returned as it is.

    Raises
    ------
    TypeError
        For anything else (``None``, a dict, an array), naming what is accepted.
    ValueError, FileNotFoundError, LanguageError
        From :func:`load_language` for an unknown name or a bad file.
    """
    if isinstance(lang, Language):
        return lang
    if isinstance(lang, (str, os.PathLike)):
        return load_language(lang, seed=seed)
    raise TypeError(
        f"{name}: expected a Language (NGram, HMM, IntervalLanguage, make_preset(...), load_language(...)) "
        f"or a preset name / .json / .npz language file, got {type(lang).__name__}"
    )


def load_language(spec, *, seed=None) -> Language:
    """A preset name or a ``.json`` / ``.npz`` language file.

    Parameters
    ----------
    spec : str or os.PathLike
        Preset name (``mdm_exact.languages.presets.PRESETS``) or path to a language file.
    seed : int, optional
        Seed for random presets (default: the presets' fixed default seed). Ignored for files.

    Raises
    ------
    ValueError
        Unknown preset or unsupported suffix; :class:`LanguageError` for malformed files.
    FileNotFoundError
        If ``spec`` looks like a path but does not exist.
    """
    if isinstance(spec, Language):
        return spec
    if isinstance(spec, str) and spec in PRESETS:
        return make_preset(spec, seed=seed)
    path = Path(os.fspath(spec))
    suffix = path.suffix.lower()
    if suffix not in (".json", ".npz"):
        raise ValueError(
            f"unknown language {os.fspath(spec)!r}: not a preset ({', '.join(PRESETS)}) "
            f"and not a .json / .npz language file"
        )
    if not path.exists():
        raise FileNotFoundError(f"language file {path} does not exist")
    if not path.is_file():
        raise LanguageError(f"{path}: is a directory, not a language file")
    if suffix == ".json":
        try:
            d = json.loads(path.read_text(), object_pairs_hook=_no_duplicate_keys(path),
                           parse_constant=_no_constant(path))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LanguageError(f"{path}: not valid JSON (truncated or corrupt?): {exc}") from None
        except RecursionError:
            raise LanguageError(f"{path}: JSON nested too deeply; expected vectors and matrices of numbers") from None
        except OSError as exc:
            raise LanguageError(f"{path}: cannot be read: {exc}") from None
    else:
        try:
            with open(path, "rb") as fh:
                z = np.load(fh, allow_pickle=False)
                if not isinstance(z, np.lib.npyio.NpzFile):
                    raise LanguageError(f"{path}: holds a single .npy array, not a .npz archive of the language's "
                                        f"keys (write it with mdm-theory language make -o FILE.npz)")
                with z:
                    d = {k: z[k] for k in z.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            if isinstance(exc, LanguageError):
                raise
            raise LanguageError(f"{path}: not a readable .npz archive (truncated or corrupt?): {exc}") from None
    lang = language_from_dict(d, source=str(path))
    lang.name = str(path)
    return lang
