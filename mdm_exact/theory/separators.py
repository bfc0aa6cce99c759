r"""Separators and dependencies of one reverse-process instance (Definitions B.4-B.7).

As reconstructed in ``shared/theory/STATEMENTS.md`` §4.C (Feng et al. 2025,
arXiv:2502.09622v1, Appendix B). For an :math:`n`-gram language, the tokens at positions
:math:`a < b` drawn at the same step are conditionally independent given the past as soon as
at least :math:`n-1` *consecutive* already-revealed positions lie strictly between them
(the "n-gram independence fact", ``[source]`` prose).

* **Definition B.4** ``[reconstructed·M]``: split the positions revealed before step
  :math:`k`, :math:`\mathcal M_{<k}`, into maximal runs :math:`R` of consecutive positions;
  the number of separators is :math:`S_k = \sum_R \lfloor |R| / (n-1) \rfloor`.
* **Definition B.5** ``[reconstructed·M]``, two readings (STATEMENTS.md §7.2). The
  separators cut :math:`\{1..L\}` into intervals; new positions in different intervals are
  independent. Let :math:`T_k` be the number of intervals that contain at least one new
  position (equivalently: sort :math:`\mathcal M_k`; consecutive new positions belong to the
  same interval unless a run of :math:`\ge n-1` revealed positions lies between them).

  - ``reading="corrected"`` (default; the one Lemmas B.8 and B.11 need):
    :math:`D_k = |\mathcal M_k| - T_k`.
  - ``reading="literal"`` (the surviving prose, read literally): :math:`D_k = T_k`.
    Under this reading Lemma B.8 is false (copy chain, :math:`N = 1`); see
    :func:`mdm_exact.theory.bounds.lemma_b8_bound` and ``tests/test_bounds.py``.
* **Definition B.7** ``[reconstructed·H]``: :math:`D_\tau = \sum_k D_k`.

Positions are 0-based here (STATEMENTS.md uses 1-based positions); steps are 0-based
generation-order indices, as returned by :func:`mdm_exact.sampler.schedules.draw_steps`.

The implementation favours clarity over speed but is vectorised over a batch of instances.
It is used by the lemma checks (:mod:`mdm_exact.theory.checks`, Lemmas B.8 and B.9 on
enumerated instances) and by the ``dependencies`` sweep kind (:mod:`mdm_exact.runtime.kinds`,
separator and dependency counts of drawn instances). The Monte Carlo engine
(:mod:`mdm_exact.sampler.montecarlo`, ``dependencies=``) counts them in its own kernels and
does not use this module.
"""

from __future__ import annotations

import numpy as np

READINGS = ("corrected", "literal")


def _check_order(n) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n: expected the n-gram order as an integer >= 2, got {n!r}")
    if n < 2:
        raise ValueError(
            f"n: expected an n-gram order >= 2, got {n}; for n = 1 (i.i.d. tokens) every new position "
            "is independent of the others, so there are no dependencies (D_k = 0) and separators are undefined"
        )
    return int(n)


def _check_reading(reading) -> str:
    if reading not in READINGS:
        raise ValueError(f"reading: expected one of {READINGS}, got {reading!r} (see STATEMENTS.md §7.2)")
    return reading


def _as_bool_masks(mask, name: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name}: expected a boolean mask (or 0/1 integers), got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise ValueError(f"{name}: expected a boolean mask (or 0/1 integers), got values outside {{0, 1}}")
        arr = arr.astype(bool)
    if arr.ndim not in (1, 2) or arr.shape[-1] < 1:
        raise ValueError(f"{name}: expected a 1-d mask of length L >= 1 (or a (batch, L) array), got shape {arr.shape}")
    return arr


def _run_lengths_ending_at(before: np.ndarray) -> np.ndarray:
    """Length of the run of ``True`` ending at each position (0 where ``before`` is False).

    ``before`` has shape (batch, L); returns (batch, L) int64.
    """
    L = before.shape[1]
    pos = np.arange(L, dtype=np.int64)  # (L,)
    last_unrevealed = np.maximum.accumulate(np.where(before, -1, pos), axis=1)  # (batch, L)
    return np.where(before, pos - last_unrevealed, 0)  # (batch, L)


def _step_counts(before: np.ndarray, new: np.ndarray, n: int):
    """``(S_k, m_k, T_k)`` for a batch of steps; ``before``, ``new`` are (batch, L) bool."""
    runs = _run_lengths_ending_at(before)  # (batch, L)
    # A maximal run ends at i when i is revealed and i+1 is not (or i = L-1).
    ends = before & ~np.concatenate([before[:, 1:], np.zeros((before.shape[0], 1), dtype=bool)], axis=1)  # (batch, L)
    S = np.where(ends, runs // (n - 1), 0).sum(axis=1)  # (batch,)
    m = new.sum(axis=1)  # (batch,)
    # A separating run lies in the gap between two consecutive new positions a < b iff some
    # position i in (a, b) ends a stretch of >= n-1 revealed positions (the stretch cannot
    # reach back past a, because a is not revealed before the step).
    sep = runs >= (n - 1)  # (batch, L)
    csep = np.cumsum(sep, axis=1)  # (batch, L): separator-ends at positions <= i
    # For each new position, the closest new position to its left (-1 if none).
    pos = np.arange(before.shape[1], dtype=np.int64)  # (L,)
    last_new = np.maximum.accumulate(np.where(new, pos, -1), axis=1)  # (batch, L), <= i
    prev_new = np.concatenate([np.full((new.shape[0], 1), -1), last_new[:, :-1]], axis=1)  # (batch, L), < i
    csep_prev = np.take_along_axis(csep, np.maximum(prev_new, 0), axis=1)  # (batch, L)
    starts_group = new & ((prev_new < 0) | (csep > csep_prev))  # (batch, L)
    T = starts_group.sum(axis=1).astype(np.int64)  # (batch,)
    return S, m, T


def separators_and_dependencies(before_mask, new_mask, n, *, reading: str = "corrected"):
    r"""Separators :math:`S_k` and dependencies :math:`D_k` of one step (Definitions B.4, B.5).

    As reconstructed, STATEMENTS.md §4.C (Definition B.4 ``[reconstructed·M]``, Definition
    B.5 ``[reconstructed·M]``, issue §7.2).

    Parameters
    ----------
    before_mask : array_like of bool, shape (L,) or (batch, L)
        Positions revealed before the step, :math:`\mathcal M_{<k}`.
    new_mask : array_like of bool, same shape
        Positions revealed at the step, :math:`\mathcal M_k`; must not overlap ``before_mask``.
    n : int
        Order of the :math:`n`-gram language (``n >= 2``); a separator is a block of
        :math:`n-1` consecutive revealed positions.
    reading : {"corrected", "literal"}
        ``corrected``: :math:`D_k = |\mathcal M_k| - \#\{\text{intervals touched}\}`;
        ``literal``: :math:`D_k = \#\{\text{intervals touched}\}` (STATEMENTS.md §7.2).

    Returns
    -------
    S_k, D_k : int, or int64 arrays of shape (batch,) for batched input.

    Raises
    ------
    ValueError
        Wrong shapes, overlapping masks, ``n < 2`` or an unknown reading.

    Examples
    --------
    Example B.6 (illustrative instance of STATEMENTS.md §4.C; 1-based
    :math:`\mathcal M_{<k}=\{2,5,6,9\}`, :math:`\mathcal M_k=\{3,7,10\}`, :math:`L=10`, :math:`n=3`):

    >>> import numpy as np
    >>> before = np.zeros(10, bool); before[[1, 4, 5, 8]] = True
    >>> new = np.zeros(10, bool); new[[2, 6, 9]] = True
    >>> separators_and_dependencies(before, new, 3)
    (1, 1)
    """
    n = _check_order(n)
    reading = _check_reading(reading)
    before = _as_bool_masks(before_mask, "before_mask")
    new = _as_bool_masks(new_mask, "new_mask")
    if before.shape != new.shape:
        raise ValueError(f"before_mask and new_mask: expected the same shape, got {before.shape} and {new.shape}")
    if np.any(before & new):
        raise ValueError("before_mask and new_mask overlap: a position is revealed at most once (Definition B.1)")
    single = before.ndim == 1
    S, m, T = _step_counts(np.atleast_2d(before), np.atleast_2d(new), n)
    D = m - T if reading == "corrected" else T
    if single:
        return int(S[0]), int(D[0])
    return S, D


def instance_dependencies(steps, n, *, reading: str = "corrected", num_steps=None):
    r"""Per-step separators and dependencies of instance(s) :math:`\tau` (Definitions B.4-B.7).

    As reconstructed, STATEMENTS.md §4.C. :math:`D_\tau = \sum_k D_k` (Definition B.7) is
    ``D.sum(axis=-1)``.

    Parameters
    ----------
    steps : array_like of int, shape (L,) or (batch, L)
        0-based generation step of every position (as from
        :func:`mdm_exact.sampler.schedules.draw_steps`).
    n : int
        :math:`n`-gram order, ``n >= 2``.
    reading : {"corrected", "literal"}
        See :func:`separators_and_dependencies`.
    num_steps : int, optional
        Number of steps :math:`N`; default ``steps.max() + 1``. Trailing empty steps get
        :math:`S_k` from the full past and :math:`D_k = 0`.

    Returns
    -------
    S, D : int64 arrays of shape (N,) (or (batch, N) for batched input).
    """
    n = _check_order(n)
    reading = _check_reading(reading)
    st = np.asarray(steps)
    if st.ndim not in (1, 2) or st.shape[-1] < 1:
        raise ValueError(f"steps: expected a (L,) or (batch, L) array of step indices with L >= 1, got shape {st.shape}")
    if st.size and not np.issubdtype(st.dtype, np.integer):
        raise ValueError(f"steps: expected integer step indices, got dtype {st.dtype}")
    if st.min() < 0:
        raise ValueError(f"steps: expected 0-based step indices >= 0, got {st.min()}")
    N = int(st.max()) + 1 if num_steps is None else int(num_steps)
    if N < int(st.max()) + 1:
        raise ValueError(f"num_steps = {N} but the instance uses step index {int(st.max())}")
    single = st.ndim == 1
    st2 = np.atleast_2d(st).astype(np.int64)  # (batch, L)
    batch = st2.shape[0]
    S = np.zeros((batch, N), dtype=np.int64)  # (batch, N)
    D = np.zeros((batch, N), dtype=np.int64)  # (batch, N)
    for k in range(N):
        Sk, mk, Tk = _step_counts(st2 < k, st2 == k, n)
        S[:, k] = Sk
        D[:, k] = mk - Tk if reading == "corrected" else Tk
    if single:
        return S[0], D[0]
    return S, D


__all__ = ["READINGS", "separators_and_dependencies", "instance_dependencies"]
