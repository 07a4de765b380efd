"""Pareto selection: dominance and hypervolume against brute force, knees, preferences,
constraints, bootstrap front membership, and clear errors."""

import itertools

import numpy as np
import pandas as pd
import pytest

from fairleak.errors import DataValidationError, ParameterError
from fairleak.selection import (
    bootstrap_indices,
    constrained_choice,
    dominance_matrix,
    duplicate_mask,
    front_probability,
    hypervolume,
    hypervolume_contributions,
    knee_point,
    non_dominated,
    pareto_ranks,
    parse_constraints,
    pseudo_weight_choice,
    reference_point,
    summarize_front,
    weighted_choice,
)


def brute_front(F):
    """Non-dominated rows by the definition, one pair at a time."""
    n = len(F)
    out = []
    for j in range(n):
        dominated = False
        for i in range(n):
            if all(F[i][m] <= F[j][m] for m in range(F.shape[1])) and any(
                F[i][m] < F[j][m] for m in range(F.shape[1])
            ):
                dominated = True
        out.append(not dominated)
    return np.array(out)


def brute_hypervolume(F, r):
    """Volume dominated by F within r, by counting the cells of the grid of all coordinates."""
    F = F[(F < r).all(1)]
    if len(F) == 0:
        return 0.0
    axes = [np.unique(np.append(F[:, m], r[m])) for m in range(F.shape[1])]
    total = 0.0
    for cell in itertools.product(*[range(len(a) - 1) for a in axes]):
        lower = np.array([axes[m][k] for m, k in enumerate(cell)])
        if (F <= lower).all(1).any():  # some point dominates the cell's lower corner
            total += np.prod([axes[m][k + 1] - axes[m][k] for m, k in enumerate(cell)])
    return total


@pytest.mark.parametrize("M", [2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_dominance_and_hypervolume_match_brute_force(M, seed):
    rng = np.random.default_rng(seed)
    n = 25 if M == 2 else 14
    F = rng.random((n, M)).round(2)  # rounding makes ties and duplicates likely
    F[3] = F[5]
    np.testing.assert_array_equal(non_dominated(F), brute_front(F))
    D = dominance_matrix(F)
    for i, j in itertools.product(range(n), repeat=2):
        assert D[i, j] == (bool((F[i] <= F[j]).all()) and bool((F[i] < F[j]).any()))
    r = np.full(M, 0.9)  # some points lie beyond it and must add nothing
    assert hypervolume(F, r) == pytest.approx(brute_hypervolume(F, r), abs=1e-12)
    contrib = hypervolume_contributions(F, r)
    for i in range(n):
        rest = np.delete(F, i, axis=0)
        assert contrib[i] == pytest.approx(
            brute_hypervolume(F, r) - brute_hypervolume(rest, r), abs=1e-12
        )


def test_known_fronts_and_volumes():
    F = np.array([[1, 3], [2, 2], [3, 1], [3, 3]], dtype=float)
    assert non_dominated(F).tolist() == [True, True, True, False]
    assert hypervolume(F, [4, 4]) == pytest.approx(6.0)
    assert pareto_ranks(F).tolist() == [0, 0, 0, 1]
    cube = np.array([[0, 0, 0]], dtype=float)
    assert hypervolume(cube, [2, 3, 4]) == pytest.approx(24.0)
    assert hypervolume(np.array([[5.0, 5.0]]), [4, 4]) == 0.0
    assert hypervolume(np.array([[1.0], [2.0]]), [4]) == pytest.approx(3.0)


def test_ties_and_duplicates():
    F = np.array([[1, 1], [1, 1], [1, 2], [2, 1], [0.5, 3]])
    assert non_dominated(F).tolist() == [True, True, False, False, True]
    assert duplicate_mask(F).tolist() == [True, True, False, False, False]
    assert pareto_ranks(F).tolist() == [0, 0, 1, 1, 0]
    # Duplicates each contribute nothing exclusively.
    np.testing.assert_allclose(hypervolume_contributions(F, [3, 4])[:2], 0.0)


def test_knee_of_l_shaped_front_is_the_corner():
    F = np.array([[0, 1], [0.02, 0.5], [0.05, 0.05], [0.5, 0.02], [1, 0], [0.8, 0.8]])
    assert knee_point(F) == 2
    F3 = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0], [0.1, 0.1, 0.1], [0.5, 0.5, 0.0]])
    assert knee_point(F3) == 3
    # A straight front has no knee: the point closest to the ideal.
    line = np.array([[0, 1], [0.4, 0.6], [0.5, 0.5], [1, 0]])
    assert knee_point(line) == 2


def test_weighted_choice_with_unit_weights_picks_each_minimiser():
    rng = np.random.default_rng(1)
    F = rng.random((40, 3))
    for m in range(3):
        w = np.eye(3)[m]
        assert weighted_choice(F, w) == int(np.argmin(F[:, m]))
    assert non_dominated(F)[weighted_choice(F, [1, 1, 1])]


def test_pseudo_weight_choice_follows_preference():
    F = np.array([[0, 1], [0.5, 0.5], [1, 0]], dtype=float)
    assert pseudo_weight_choice(F, [1, 0]) == 0
    assert pseudo_weight_choice(F, [0.5, 0.5]) == 1
    assert pseudo_weight_choice(F, [0, 1]) == 2


def test_constraints_parse_and_choose():
    cons = parse_constraints("dp_gap <= 0.05, epsilon <= 8; auc-0.5 < .1")
    assert [(c.name, c.op, c.bound) for c in cons] == [
        ("dp_gap", "<=", 0.05), ("epsilon", "<=", 8.0), ("auc-0.5", "<", 0.1)
    ]  # fmt: skip
    table = pd.DataFrame({
        "error": [0.10, 0.12, 0.15, 0.20],
        "dp_gap": [0.20, 0.04, 0.03, 0.01],
        "epsilon": [np.inf, np.inf, 4.0, 1.0],
    })  # fmt: skip
    choice = constrained_choice(table, "dp_gap <= 0.05, epsilon <= 8", minimize="error")
    assert (choice.index, choice.feasible, choice.n_feasible) == (2, True, 2)
    strict = constrained_choice(table, "dp_gap <= 0.005, epsilon <= 0.5", minimize="error")
    assert not strict.feasible and strict.index == 3  # least violating
    assert "violates them least" in strict.notes[0]


def test_front_probability_from_resamples():
    base = np.array([[0.1, 0.5], [0.5, 0.1], [0.6, 0.6], [0.3, 0.3]])
    rng = np.random.default_rng(0)
    boot = base + rng.normal(scale=0.01, size=(200, 4, 2))
    p = front_probability(boot)
    np.testing.assert_allclose(p, [1, 1, 0, 1])
    # Two candidates that swap places: each is on the front in its half of the resamples.
    swap = np.stack([np.array([[0.2, 0.2], [0.3, 0.3]]), np.array([[0.3, 0.3], [0.2, 0.2]])] * 5)
    np.testing.assert_allclose(front_probability(swap), [0.5, 0.5])


def test_bootstrap_indices_seeded_and_stratified():
    strata = np.repeat([0, 1, 2], [5, 10, 85])
    a = bootstrap_indices(100, 50, seed=3, strata=strata)
    b = bootstrap_indices(100, 50, seed=3, strata=strata)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (50, 100)
    for s in range(3):  # every resample keeps each stratum's size, drawn from within it
        assert (strata[a[:, strata == s]] == s).all()
    assert not np.array_equal(a, bootstrap_indices(100, 50, seed=4, strata=strata))


def test_reference_point_and_summary():
    F = np.array([[1, 3], [2, 2], [3, 1], [4, 4]], dtype=float)
    r = reference_point(F, margin=0.5)
    np.testing.assert_allclose(r, [4, 4])
    s = summarize_front(F, objectives=["error", "gap"])
    assert s.front == [0, 1, 2] and s.knee == 1
    assert s.hypervolume == pytest.approx(hypervolume(F, s.reference_point))
    assert set(s.to_dict()) >= {"front", "hypervolume", "reference_point", "knee", "ranks"}


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: non_dominated([1, 2, 3]), DataValidationError, "reshape"),
        (lambda: non_dominated([[0.1, np.nan]]), DataValidationError, "NaN"),
        (lambda: non_dominated(np.zeros((0, 2))), DataValidationError, "non-empty"),
        (lambda: hypervolume([[1, 2]], [3]), DataValidationError, "reference must be 2"),
        (lambda: hypervolume(np.ones((2, 4)), np.full(4, 2)), ParameterError, "1, 2 and 3"),
        (lambda: hypervolume([[np.inf, 1]], [2, 2]), DataValidationError, "finite"),
        (lambda: weighted_choice([[1, 2]], [1, -1]), ParameterError, "non-negative"),
        (lambda: parse_constraints("gap = 0.1"), ParameterError, "NAME OP NUMBER"),
        (lambda: parse_constraints(" , "), ParameterError, "No constraint"),
        (
            lambda: constrained_choice({"error": [0.1]}, "gap <= 1", minimize="error"),
            ParameterError,
            "Unknown column 'gap'",
        ),
        (lambda: front_probability(np.zeros((3, 2))), DataValidationError, "3-D"),
        (lambda: reference_point([[1, 2]], margin=0), ParameterError, "margin"),
    ],
)
def test_bad_input_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_knee_uses_distinct_extremes_in_three_objectives():
    # Extremes (1,0,0), (0,1,0), (0,0,1) span the plane sum = 1. The knee is the point farthest
    # below it (smallest sum, index 4), not the point closest to the ideal (index 3).
    F = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0], [0.25, 0.25, 0.25], [0.5, 0.05, 0.05]])
    assert np.argmin(np.linalg.norm(F[3:], axis=1)) + 3 == 3
    assert knee_point(F) == 4
