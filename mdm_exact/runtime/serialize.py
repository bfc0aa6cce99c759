"""JSON form of results: one :func:`jsonable` for the store, the CLI and the report.

Strict JSON has no NaN or infinity, and each place that writes JSON has its convention for
them (``nonfinite``):

``"keep"``
    floats stay as they are: the store writes them with ``allow_nan`` (``Infinity``; exact
    results legitimately hold ``KL = inf``) and Python reads them back.
``"null"``
    NaN and +-inf become ``null``: ``mdm-theory exact/sample --json`` ("null when infinite").
``"inf-string"``
    NaN becomes ``null``, +-inf the strings ``"inf"`` / ``"-inf"`` where the sign matters
    (bounds and slacks in ``check``, sizes in ``language show``).
``"string"``
    NaN, +inf, -inf become ``"nan"``, ``"inf"``, ``"-inf"``: the report's ``data/*.json``.
"""

from __future__ import annotations

import math

__all__ = ["jsonable", "NONFINITE"]

NONFINITE = ("keep", "null", "inf-string", "string")


def jsonable(obj, *, nonfinite: str = "keep"):
    """``obj`` made of plain JSON types: dicts, lists, str, int, float, bool, None.

    NumPy arrays and scalars become lists and Python numbers, tuples lists, sets sorted lists,
    objects with ``to_dict()`` their dict; non-finite floats follow ``nonfinite`` (see the
    module docstring). Dict keys that are not strings are left to ``json`` (NumPy scalar keys
    become Python numbers first).

    Raises
    ------
    TypeError
        For any other object, naming its type (it has no JSON form).
    ValueError
        For an unknown ``nonfinite``.
    """
    if nonfinite not in NONFINITE:
        raise ValueError(f"nonfinite: expected one of {', '.join(NONFINITE)}, got {nonfinite!r}")
    return _convert(obj, nonfinite)


def _convert(obj, mode):
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        obj = float(obj)  # np.float64 is a float subclass
        if math.isfinite(obj) or mode == "keep":
            return obj
        if math.isnan(obj):
            return "nan" if mode == "string" else None
        if mode == "null":
            return None
        return "inf" if obj > 0 else "-inf"
    if isinstance(obj, dict):
        return {_key(k): _convert(v, mode) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_convert(v, mode) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [_convert(v, mode) for v in sorted(obj)]
    if hasattr(obj, "tolist") and not isinstance(obj, bytes):  # NumPy arrays and scalars
        return _convert(obj.tolist(), mode)
    if hasattr(obj, "to_dict"):
        return _convert(obj.to_dict(), mode)
    raise TypeError(f"cannot store a value of type {type(obj).__name__} ({obj!r:.80}) as JSON")


def _key(k):
    if isinstance(k, (str, int, float, bool)) or k is None:
        return k
    if hasattr(k, "item"):  # a NumPy scalar
        return k.item()
    return str(k)
