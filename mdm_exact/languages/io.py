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
    if kind not in _KEYS:
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
            return NGram(_as_int(d["order"], "order", source), d["initial"], d["conditional"])
        return IntervalLanguage(_as_int(d["interval_length"], "interval_length", source))
    except LanguageError as exc:
        raise LanguageError(f"{source}: {exc}") from None
    except ValueError as exc:
        raise LanguageError(f"{source}: {exc}") from None


def _as_int(v, name, source):
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise LanguageError(f"{source}: {name} must be an integer, got {v!r}")
    return int(v)


def save_language(lang: Language, path) -> Path:
    """Write ``lang`` to ``path`` (``.json`` or ``.npz``, chosen by the suffix); returns the path."""
    path = Path(path)
    d = language_to_dict(lang)
    suffix = path.suffix.lower()
    if suffix == ".json":
        out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(out, indent=None, separators=(",", ":")) + "\n")
        os.replace(tmp, path)
    elif suffix == ".npz":
        with open(path, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in d.items()})
    else:
        raise ValueError(f"{path}: expected a .json or .npz file name")
    return path


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
    if suffix == ".json":
        try:
            d = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LanguageError(f"{path}: not valid JSON (truncated or corrupt?): {exc}") from None
    else:
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise LanguageError(f"{path}: not a readable .npz archive (truncated or corrupt?): {exc}") from None
    lang = language_from_dict(d, source=str(path))
    lang.name = str(path)
    return lang
