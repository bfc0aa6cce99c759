"""Input validation shared by the whole package.

Every public entry point turns user input into float64/int64 arrays through these helpers,
so bad input fails early with a message that says what was wrong and what was expected.
"""

from __future__ import annotations

import numpy as np

#: Absolute tolerance on row sums of stochastic vectors and matrices.
STOCHASTIC_ATOL = 1e-9


class LanguageError(ValueError):
    """A language's parameters or a language file are malformed."""


def as_probability_array(a, name: str, *, ndim: int, shape=None) -> np.ndarray:
    """Return ``a`` as a C-contiguous float64 array of stochastic rows (last axis sums to 1).

    Raises
    ------
    LanguageError
        If ``a`` has the wrong number of dimensions or shape, holds NaN, infinite or
        negative entries, or a row does not sum to 1 within ``STOCHASTIC_ATOL``.
    """
    try:
        arr = np.array(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise LanguageError(f"{name}: expected an array of numbers, got {type(a).__name__} ({exc})") from None
    if arr.ndim != ndim:
        raise LanguageError(f"{name}: expected a {ndim}-dimensional array, got shape {arr.shape}")
    if shape is not None and arr.shape != tuple(shape):
        raise LanguageError(f"{name}: expected shape {tuple(shape)}, got {arr.shape}")
    if arr.size == 0 or arr.shape[-1] == 0:
        raise LanguageError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise LanguageError(f"{name}: entry {tuple(int(i) for i in bad)} is {arr[tuple(bad)]}; expected finite probabilities")
    if np.any(arr < 0):
        bad = np.argwhere(arr < 0)[0]
        raise LanguageError(f"{name}: entry {tuple(int(i) for i in bad)} is negative ({arr[tuple(bad)]}); expected probabilities >= 0")
    sums = arr.sum(axis=-1)
    off = np.abs(sums - 1.0) > STOCHASTIC_ATOL
    if np.any(off):
        idx = np.argwhere(np.atleast_1d(off))[0]
        row = tuple(int(i) for i in idx)
        where = f"row {row[0] if len(row) == 1 else row}" if arr.ndim > 1 else "the vector"
        raise LanguageError(
            f"{name}: {where} sums to {np.atleast_1d(sums)[tuple(idx)]:.12g}; expected a stochastic "
            f"{'matrix (every row sums to 1)' if arr.ndim > 1 else 'vector (sums to 1)'}"
        )
    # Renormalise away the tolerated rounding so downstream sums are exact to float64.
    arr = arr / arr.sum(axis=-1, keepdims=True)
    return np.ascontiguousarray(arr)


def as_length(L, name: str = "L") -> int:
    """Return ``L`` as a positive int, or raise ValueError."""
    if isinstance(L, (bool, np.bool_)) or not isinstance(L, (int, np.integer)):
        raise ValueError(f"{name}: expected a positive integer sequence length, got {L!r}")
    if L < 1:
        raise ValueError(f"{name}: expected a sequence length >= 1, got {L}")
    return int(L)


def as_count(n, name: str, *, minimum: int = 1) -> int:
    """Return ``n`` as an int >= ``minimum``, or raise ValueError."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {n!r}")
    if n < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {n}")
    return int(n)


def as_tokens(x, vocab_size: int, *, name: str = "x") -> np.ndarray:
    """Return ``x`` as a C-contiguous int64 array of shape (batch, L).

    A 1-d input is treated as one sequence. Token ids must lie in ``[0, vocab_size)``.
    """
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        if np.issubdtype(arr.dtype, np.floating) and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name}: expected integer token ids, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected shape (batch, L) or (L,), got {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name}: expected sequences of length L >= 1, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        bad = arr[(arr < 0) | (arr >= vocab_size)][0]
        raise ValueError(f"{name}: token id {int(bad)} is out of range; expected ids in [0, {vocab_size})")
    return np.ascontiguousarray(arr, dtype=np.int64)


def as_mask(revealed, shape, *, name: str = "revealed") -> np.ndarray:
    """Return ``revealed`` as a C-contiguous bool array broadcast to ``shape`` (batch, L)."""
    arr = np.asarray(revealed)
    if arr.dtype != np.bool_:
        if np.issubdtype(arr.dtype, np.integer) and arr.size and np.all((arr == 0) | (arr == 1)):
            arr = arr.astype(bool)
        else:
            raise ValueError(f"{name}: expected a boolean mask (True = revealed), got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    try:
        arr = np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(f"{name}: shape {np.asarray(revealed).shape} does not match the tokens' shape {shape}") from None
    return np.ascontiguousarray(arr)
