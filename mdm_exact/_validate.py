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
        If ``a`` holds anything but real numbers (booleans, strings such as ``"0.5"``,
        complex numbers and None are refused, not coerced), has the wrong number of
        dimensions or shape, holds NaN, infinite or negative entries, or a row does not sum
        to 1 within ``STOCHASTIC_ATOL``.
    """
    _reject_non_real(a, name)
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


def _reject_non_real(a, name: str) -> None:
    """Refuse (never coerce) entries that are not real numbers: bool, str, complex, None, ..."""
    if isinstance(a, np.ndarray):
        if a.dtype.kind not in "iuf":
            raise LanguageError(f"{name}: expected an array of real numbers, got dtype {a.dtype}")
        return
    stack = [(a, ())]
    while stack:
        obj, where = stack.pop()
        if isinstance(obj, (list, tuple)):
            if len(where) > 8:
                raise LanguageError(f"{name}: nested more than 8 levels deep; expected a vector or matrix")
            stack.extend((v, where + (i,)) for i, v in enumerate(obj))
        elif isinstance(obj, np.ndarray):
            _reject_non_real(obj, f"{name}{list(where)}")
        elif isinstance(obj, (bool, np.bool_)) or not isinstance(obj, (int, float, np.integer, np.floating)):
            at = f"entry {tuple(where)}" if where else "the value"
            raise LanguageError(f"{name}: {at} is {obj!r} ({type(obj).__name__}); expected a real number")


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


def parse_step_sizes(text: str) -> tuple:
    """The ``--step-sizes S1,S2,...`` text as a tuple of ints (their values are checked where used)."""
    try:
        return tuple(int(s) for s in str(text).split(","))
    except ValueError:
        raise ValueError(f"--step-sizes: expected comma-separated integers, got {text!r}") from None


def as_seed(seed, name: str = "seed") -> int:
    """Return ``seed`` as an int >= 0 (a NumPy / torch seed), or raise ValueError naming ``name``."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name}: expected a seed, an integer >= 0, got {seed!r}")
    return int(seed)


def check_seed_options(options, *, flags: bool = True) -> None:
    """Refuse a seed that is not an integer >= 0 among a command's parsed options (an
    ``argparse.Namespace``; ``flags=True``: named as ``--flag``) or a sweep cell's parameters (a
    dict; ``flags=False``: named as the parameter).

    Every option whose name is ``seed`` or ends in ``_seed`` (``--seed``, ``--language-seed``,
    ``--model-seed``) becomes a NumPy / torch seed; NumPy's own message ("expected non-negative
    integer") names neither the option nor the value.
    """
    items = options.items() if isinstance(options, dict) else vars(options).items()
    for name, value in sorted(items):
        if (name == "seed" or name.endswith("_seed")) and value is not None:
            as_seed(value, "--" + name.replace("_", "-") if flags else name)


def check_policy_options(policy, *, block_length=None, temperature=None, gumbel_float32: bool = False) -> None:
    """Refuse options that need an unmasking ``--policy`` when there is none, and float32 Gumbel-max
    draws with one (a policy draws its tokens from float64 uniforms,
    :mod:`mdm_exact.sampler.policies`). ``temperature=None`` means "not given". One definition for
    ``mdm-theory sample/exact``, ``neural sample/evaluate`` and ``neural.evaluate.evaluate_mdm``.
    """
    if policy is None:
        if block_length is not None or temperature is not None:
            raise ValueError("--block-length and --temperature need --policy")
    elif gumbel_float32:
        raise ValueError("--gumbel-float32 / --compare-gumbel apply to the content-blind sampler; a --policy "
                         "draws its tokens from float64 uniforms (mdm_exact.sampler.policies)")


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


# --------------------------------------------------------------------------- up-front size refusals
#: Longest schedule a command builds: ``make_step_rule`` takes about 3.4 us and 8 bytes per step
#: (measured: 34 s for 10^7 steps), so 10^6 steps cost about 3 s.
MAX_SCHEDULE_STEPS = 10**6
#: Longest sequence a Monte Carlo run draws: tables and per-position arrays of a batch hold
#: about ``MC_BYTES_PER_POSITION`` bytes per position.
MC_BYTES_PER_POSITION = 64
#: Longest sequence of a Monte Carlo run (the paper's scale is L = 512).
MAX_MC_LENGTH = 10**7
#: Most token draws a Monte Carlo run may take (num_samples x L): at about 10^6-10^7 draws
#: per second on one core, 10^12 draws is more than a day.
MAX_MC_DRAWS = 10**12


def _count(n, name, minimum=1):
    return as_count(n, name, minimum=minimum)


def check_schedule_steps(num_steps, name: str = "num_steps") -> int:
    """Refuse a schedule of more than :data:`MAX_SCHEDULE_STEPS` steps before it is built."""
    N = _count(num_steps, name)
    if N > MAX_SCHEDULE_STEPS:
        raise ValueError(
            f"{name}: a schedule of N = {N:.4g} steps would take about {N * 3.4e-6:.3g} s and {8 * N / 2**30:.3g} GiB "
            f"to build; the limit is N <= {MAX_SCHEDULE_STEPS:.0e}"
        )
    return N


def check_exact_size(V: int, L, num_steps=None, *, max_states: int, max_work: float) -> None:
    """Refuse an exact computation that cannot fit, from logarithms only (no big integers).

    ``(V+1)^L`` DP states must be at most ``max_states``; every schedule step passes over at
    least the ``V^L`` full sequences, so ``num_steps * V^L`` is a lower bound of the work that
    the engine's own estimate refuses above ``max_work``.
    """
    import math

    L = as_length(L, "L")
    V = int(V)
    log_states = L * math.log10(V + 1)
    if log_states > math.log10(max_states):
        raise ValueError(
            f"exact engine: (V+1)^L = {V + 1}^{L} ~ 10^{log_states:.4g} DP states exceeds the limit MAX_STATES = "
            f"{max_states} (memory); use Monte Carlo (mdm-theory sample) for this size"
        )
    if num_steps is not None:
        N = _count(num_steps, "num_steps")
        log_work = math.log10(N) + L * math.log10(V)
        if log_work > math.log10(max_work):
            raise ValueError(
                f"exact engine: N = {N} steps at V = {V}, L = {L} take at least N V^L ~ 10^{log_work:.4g} DP updates, "
                f"over the limit {max_work:.3g} (about {max_work * 3e-9:.0f} s); use fewer steps or Monte Carlo"
            )


def check_monte_carlo_size(L, num_samples, *, batch_size=None) -> None:
    """Refuse a Monte Carlo run whose memory or number of token draws cannot fit, up front."""
    import os

    L = as_length(L, "L")
    M = _count(num_samples, "num_samples")
    batch = 1 if batch_size is None else _count(batch_size, "batch_size")
    if L > MAX_MC_LENGTH:
        raise ValueError(
            f"Monte Carlo: L = {L} exceeds the limit MAX_MC_LENGTH = {MAX_MC_LENGTH:.0e} (one sequence alone would "
            f"need about {MC_BYTES_PER_POSITION * L / 2**30:.3g} GiB of per-position arrays); use a shorter L"
        )
    need = MC_BYTES_PER_POSITION * L * min(batch, M)
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        have = 2**34
    if need > have // 2:
        raise ValueError(
            f"Monte Carlo: L = {L} positions{'' if batch == 1 else f' x batch {batch}'} need about "
            f"{need / 2**30:.3g} GiB, over the limit of half this machine's memory ({have / 2**31:.3g} GiB); "
            f"use a shorter L" + ("" if batch == 1 else " or a smaller --batch-size")
        )
    if M * L > MAX_MC_DRAWS:
        raise ValueError(
            f"Monte Carlo: {M} samples x L = {L} is {M * L:.3g} token draws, over the limit {MAX_MC_DRAWS:.0e} "
            f"(more than a day at 10^7 draws/s); use fewer samples or a shorter L"
        )


def check_eta(eta, name: str = "eta") -> float:
    """A noise scale: finite and ``>= 0`` (``0`` = perfect model); NaN, negative and inf refused."""
    import math

    if isinstance(eta, bool) or not isinstance(eta, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a finite noise scale >= 0 (0 = perfect model), got {eta!r}")
    eta = float(eta)
    if not math.isfinite(eta) or eta < 0:
        raise ValueError(f"{name}: expected a finite noise scale >= 0 (0 = perfect model), got {eta!r}")
    return eta
