r"""Check records: one row per (statement, instance), with bound, measured value, slack, ratio and status.

Status rules: ``holds`` / ``violated`` for exact values (tolerance :data:`TOL` for rounding); with
an interval, ``holds`` if the whole interval is on the right side of the bound, ``violated`` if
the whole interval is on the wrong side, ``inconclusive`` otherwise.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["TOL", "_record", "_worst"]

#: Absolute tolerance for exact comparisons (float64 rounding of sums of ~1e4 terms).
TOL = 1e-9


def _record(statement, instance, bound, measured, *, direction="upper", ci=None, count=1, violations=None, detail=None):
    """One result row; ``direction`` is ``upper`` (measured <= bound), ``lower`` or ``equal``."""
    bound = float(bound)
    measured = float(measured)
    if direction == "upper":
        slack = bound - measured
        if abs(bound) <= TOL and abs(measured) <= TOL:
            ratio = None  # 0 vs 0 up to rounding: no tightness information (left out of the summary's maximum)
        else:
            ratio = measured / bound if bound > 0 else (0.0 if measured <= 0 else math.inf)
    elif direction == "lower":
        slack = measured - bound
        ratio = bound / measured if measured > 0 else (0.0 if bound <= 0 else math.inf)
    else:
        slack = -abs(measured - bound)
        ratio = 1.0
    if ci is not None:
        lo, hi = float(ci[0]), float(ci[1])
        ok = hi <= bound + TOL if direction == "upper" else lo >= bound - TOL
        bad = lo > bound + TOL if direction == "upper" else hi < bound - TOL
        status = "holds" if ok else ("violated" if bad else "inconclusive")
    else:
        tol = TOL * max(1.0, abs(bound))
        status = "holds" if slack >= -tol or (math.isinf(bound) and bound > 0 and direction == "upper") else "violated"
    if violations is None:
        violations = 0 if status != "violated" else 1
    return {
        "statement": statement,
        "instance": instance,
        "bound": bound,
        "measured": measured,
        "measured_ci": None if ci is None else [float(ci[0]), float(ci[1])],
        "direction": direction,
        "slack": slack,
        "ratio": ratio,  # None when bound and measured are both 0 up to rounding
        "status": status,
        "count": int(count),
        "violations": int(violations),
        "detail": detail or {},
    }


def _worst(statement, instance, bounds_arr, measured_arr, *, direction="upper", detail=None):
    """Aggregate per-:math:`\\tau` comparisons into one record (worst slack), counting violations."""
    b = np.asarray(bounds_arr, dtype=np.float64)
    m = np.asarray(measured_arr, dtype=np.float64)
    if direction == "upper":
        slack = b - m
    elif direction == "lower":
        slack = m - b
    else:
        slack = -np.abs(m - b)
    slack = np.where(np.isnan(slack), -np.inf, slack)
    tol = TOL * np.maximum(1.0, np.abs(np.where(np.isfinite(b), b, 1.0)))
    viol = int(np.sum(slack < -tol))
    i = int(np.argmin(slack))
    return _record(statement, instance, b[i], m[i], direction=direction, count=b.size, violations=viol, detail=detail)
