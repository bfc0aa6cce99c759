"""Separators and dependencies (Definitions B.4-B.7, as reconstructed in STATEMENTS.md §4.C)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdm_exact.sampler.schedules import LeftToRight, RandomOrder, draw_steps, schedule
from mdm_exact.theory.separators import instance_dependencies, separators_and_dependencies


def _brute_force(before, new, n):
    """Definition B.4/B.5 built literally: cut runs into blocks of n-1 (the separators), label
    every other position by the number of separator blocks to its left (its interval), and
    count distinct intervals among the new positions."""
    L = len(before)
    is_sep = np.zeros(L, bool)
    S = 0
    i = 0
    while i < L:
        if before[i]:
            j = i
            while j < L and before[j]:
                j += 1
            r = j - i
            blocks = r // (n - 1)
            S += blocks
            is_sep[i : i + blocks * (n - 1)] = True
            i = j
        else:
            i += 1
    blocks_left = 0
    interval = np.full(L, -1)
    run = 0
    for i in range(L):
        if is_sep[i]:
            run += 1
            if run == n - 1:
                blocks_left += 1
                run = 0
        else:
            run = 0
            interval[i] = blocks_left
    touched = len({int(interval[i]) for i in range(L) if new[i]})
    return S, int(np.sum(new)) - touched, touched


def _pairwise(before, new, n):
    """Second oracle: consecutive new positions are independent iff n-1 consecutive revealed
    positions lie strictly between them (the n-gram independence fact)."""
    idx = np.flatnonzero(new)
    if idx.size == 0:
        return 0
    groups = 1
    for a, b in zip(idx[:-1], idx[1:]):
        between = "".join("1" if before[i] else "0" for i in range(a + 1, b))
        if "1" * (n - 1) in between:
            groups += 1
    return groups


def test_example_b6():
    """Example B.6 (illustrative instance, STATEMENTS.md §4.C): S = 1, D = 1 (corrected)."""
    L = 10
    before = np.zeros(L, bool)
    before[[2 - 1, 5 - 1, 6 - 1, 9 - 1]] = True
    new = np.zeros(L, bool)
    new[[3 - 1, 7 - 1, 10 - 1]] = True
    assert separators_and_dependencies(before, new, 3) == (1, 1)
    assert separators_and_dependencies(before, new, 3, reading="literal") == (1, 2)
    assert _brute_force(before, new, 3) == (1, 1, 2)


@st.composite
def step_masks(draw):
    L = draw(st.integers(1, 30))
    n = draw(st.integers(2, 5))
    labels = draw(st.lists(st.integers(0, 2), min_size=L, max_size=L))  # 0 before, 1 new, 2 later
    lab = np.array(labels)
    return lab == 0, lab == 1, n


@given(step_masks())
def test_matches_brute_force(case):
    before, new, n = case
    S, D = separators_and_dependencies(before, new, n)
    Sb, Db, Tb = _brute_force(before, new, n)
    assert (S, D) == (Sb, Db)
    assert separators_and_dependencies(before, new, n, reading="literal") == (Sb, Tb)
    assert Tb == _pairwise(before, new, n)
    # Definition B.5: at most S+1 intervals, D = sum_j (|M_k cap I_j| - 1)_+ <= max(m - 1, 0)
    assert Tb <= Sb + 1
    assert 0 <= D <= max(int(new.sum()) - 1, 0)


def test_batched_equals_rowwise():
    rng = np.random.default_rng(3)
    lab = rng.integers(0, 3, size=(200, 25))
    before, new = lab == 0, lab == 1
    S, D = separators_and_dependencies(before, new, 3)
    for r in range(200):
        assert (S[r], D[r]) == separators_and_dependencies(before[r], new[r], 3)


@given(st.integers(1, 20), st.integers(1, 6), st.integers(2, 4), st.integers(0, 2**32 - 1))
def test_instance_dependencies_matches_per_step(L, N, n, seed):
    steps = draw_steps(schedule("linear", N), 3, L, rng=seed)  # (3, L)
    S, D = instance_dependencies(steps, n, num_steps=N)
    assert S.shape == (3, N) and D.shape == (3, N)
    for r in range(3):
        for k in range(N):
            Sb, Db, _ = _brute_force(steps[r] < k, steps[r] == k, n)
            assert (S[r, k], D[r, k]) == (Sb, Db)
        s1, d1 = instance_dependencies(steps[r], n, num_steps=N)
        np.testing.assert_array_equal(s1, S[r])
        np.testing.assert_array_equal(d1, D[r])


@pytest.mark.parametrize("rule", [LeftToRight(), RandomOrder()])
def test_one_token_per_step_has_no_dependencies(rule):
    """One position per step (AR or random order): D_k = 0 at every step (corrected)."""
    steps = draw_steps(rule, 20, 16, rng=0)
    _, D = instance_dependencies(steps, 3)
    assert np.all(D == 0)
    _, Dl = instance_dependencies(steps, 3, reading="literal")
    assert np.all(Dl == 1)  # one touched interval per step


def test_single_step_counts_everything():
    """N = 1: nothing is revealed before, one interval, D_1 = L - 1 (corrected), 1 (literal)."""
    steps = np.zeros(9, dtype=np.int64)
    assert instance_dependencies(steps, 2) == (np.array([0]), np.array([8]))
    S, D = instance_dependencies(steps, 2, reading="literal")
    assert D.tolist() == [1] and S.tolist() == [0]


def test_left_to_right_separators():
    """Left to right, n = 3: before step k the run 0..k-1 holds floor(k / 2) separators."""
    S, _ = instance_dependencies(np.arange(11), 3)
    np.testing.assert_array_equal(S, np.arange(11) // 2)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: separators_and_dependencies([True, False], [True, False], 2), "overlap"),
        (lambda: separators_and_dependencies([True], [False, True], 2), "same shape"),
        (lambda: separators_and_dependencies([True], [False], 1), "order >= 2"),
        (lambda: separators_and_dependencies([True], [False], 2, reading="x"), "reading"),
        (lambda: separators_and_dependencies([0.5], [0.0], 2), "boolean"),
        (lambda: instance_dependencies([0, -1], 2), ">= 0"),
        (lambda: instance_dependencies([0, 3], 2, num_steps=2), "num_steps"),
        (lambda: instance_dependencies([0.0, 1.0], 2), "integer"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
