"""Random languages of the paper: Algorithm 1 (n-gram) and Algorithm 2 (HMM).

As reconstructed, STATEMENTS.md §5.1: the algorithm bodies were not recovered. What is known:
inputs ``temperature`` ("higher indicates more randomness") and ``thres`` (prune small
probabilities, so that the language is nearly deterministic and SER is meaningful; ``0`` for
TER runs). This module implements the natural "softmax of Gaussian logits" reading:

1. every row is ``softmax(z * temperature)`` (``reading="multiply"``, the default) or
   ``softmax(z / temperature)`` (``reading="divide"``) of i.i.d. standard normal logits ``z``;
2. entries below ``threshold`` are set to zero, except the row's arg-max, which is always kept
   (so no row is ever pruned away);
3. the row is renormalised.

Why "multiply" is the default: with the Table 1 values the "divide" reading prunes nothing
(every sequence valid, SER experiments trivial), while "multiply" prunes a sizeable fraction
(STATEMENTS.md §5.1, check 10). Note that with "multiply" a *higher* temperature gives *less*
randomness, contrary to the paper's prose; with "divide" the prose holds but pruning is void.
Both are offered; the fraction of pruned entries is reported in ``lang.generation``.

Initial distributions (our choice, undocumented in the paper): they are generated and pruned
by the same rule as the other rows, so the threshold has the same meaning everywhere.

* HMM: ``Init_dist`` is one more random row of length ``N`` (drawn after ``A`` and ``B``).
* n-gram: the first ``n - 1`` tokens are drawn autoregressively from lower-order random tables
  of rows of length ``V``: ``x_1`` from one row, ``x_2 | x_1`` from a random bigram table, ...,
  ``x_{n-1} | x_{1:n-2}`` from a random ``(n-1)``-gram table (all drawn after ``T``). Their
  product is ``Init_dist`` over the ``V^(n-1)`` start contexts (big-endian).

Draw order is fixed (logits of ``T`` or ``A``, then ``B``, then the initial rows), so a
language and its ``threshold=0`` variant drawn with the same seed share all their logits: the
``-t0`` presets are the un-pruned versions of the same languages.
"""

from __future__ import annotations

import numpy as np

from mdm_exact._validate import as_count
from mdm_exact.languages.hmm import HMM
from mdm_exact.languages.ngram import NGram

READINGS = ("multiply", "divide")


def random_rows(shape, temperature, threshold, *, reading="multiply", rng=None):
    """Rows ``softmax(z * temperature)`` (or ``/``), pruned below ``threshold``, renormalised.

    Parameters
    ----------
    shape : tuple of int
        Output shape; rows run along the last axis.
    temperature : float
        Positive temperature.
    threshold : float
        Entries strictly below it are zeroed, except each row's arg-max. ``0`` prunes nothing.
    reading : {"multiply", "divide"}
        How the temperature enters (STATEMENTS.md §5.1).
    rng : int, numpy.random.Generator or None
        Randomness (``np.random.default_rng(rng)``; a Generator is used, and advanced, as is).

    Returns
    -------
    rows : ndarray, float64, ``shape``
    pruned : int
        Number of entries set to zero by pruning.
    """
    temperature = float(temperature)
    threshold = float(threshold)
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature: expected a positive finite number, got {temperature}")
    if not np.isfinite(threshold) or threshold < 0 or threshold >= 1:
        raise ValueError(f"threshold: expected a number in [0, 1), got {threshold}")
    if reading not in READINGS:
        raise ValueError(f"reading: expected one of {READINGS}, got {reading!r}")
    z = np.random.default_rng(rng).standard_normal(shape)  # shape
    logits = z * temperature if reading == "multiply" else z / temperature
    logits = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=-1, keepdims=True)
    keep = p >= threshold
    np.put_along_axis(keep, np.argmax(p, axis=-1)[..., None], True, axis=-1)  # never prune the arg-max
    pruned = int((~keep).sum())
    p = np.where(keep, p, 0.0)
    p /= p.sum(axis=-1, keepdims=True)
    return p, pruned


def _report(reading, temperature, threshold, seed, **counts):
    out = {"reading": reading, "temperature": float(temperature), "threshold": float(threshold), "seed": seed}
    for name, (pruned, total) in counts.items():
        out[f"{name}_pruned_fraction"] = pruned / total
    return out


def random_ngram(order, vocab_size, temperature, threshold, *, reading="multiply", rng=None):
    """Algorithm 1 (as reconstructed, STATEMENTS.md §5.1): a random ``order``-gram language.

    Returns an :class:`NGram` whose attribute ``generation`` records the reading, the
    parameters and the fractions of pruned entries (``conditional_pruned_fraction``,
    ``initial_pruned_fraction``, counted over the rows that were drawn).
    """
    n = as_count(order, "order", minimum=2)
    V = as_count(vocab_size, "vocab_size", minimum=1)
    seed = rng if isinstance(rng, (int, np.integer)) else None
    rng = np.random.default_rng(rng)
    T, pr_T = random_rows((V ** (n - 1), V), temperature, threshold, reading=reading, rng=rng)  # (V^(n-1), V)
    init = np.ones(1)
    pr_I = tot_I = 0
    for j in range(n - 1):  # x_{j+1} | x_{1:j} from a random (j+1)-gram table
        rows, pr = random_rows((V**j, V), temperature, threshold, reading=reading, rng=rng)  # (V^j, V)
        pr_I += pr
        tot_I += rows.size
        init = (init[:, None] * rows).reshape(-1)  # (V^(j+1),) big-endian
    lang = NGram(n, init, T)
    lang.generation = _report(
        reading, temperature, threshold, seed, conditional=(pr_T, T.size), initial=(pr_I, tot_I)
    )
    return lang


def random_hmm(num_states, vocab_size, temperature, threshold, *, reading="multiply", rng=None):
    """Algorithm 2 (as reconstructed, STATEMENTS.md §5.1): a random HMM with ``num_states`` states.

    ``A`` (N, N), ``B`` (N, V) and ``Init_dist`` (N,) are all drawn and pruned by
    :func:`random_rows`. ``generation`` records the pruned fractions of each.
    """
    N = as_count(num_states, "num_states", minimum=1)
    V = as_count(vocab_size, "vocab_size", minimum=1)
    seed = rng if isinstance(rng, (int, np.integer)) else None
    rng = np.random.default_rng(rng)
    A, pr_A = random_rows((N, N), temperature, threshold, reading=reading, rng=rng)  # (N, N)
    B, pr_B = random_rows((N, V), temperature, threshold, reading=reading, rng=rng)  # (N, V)
    pi, pr_pi = random_rows((N,), temperature, threshold, reading=reading, rng=rng)  # (N,)
    lang = HMM(pi, A, B)
    lang.generation = _report(
        reading, temperature, threshold, seed, transition=(pr_A, A.size), emission=(pr_B, B.size), initial=(pr_pi, N)
    )
    return lang
