"""Per-group robustness figures: a planted brittle group is found, with an interval that
excludes equality; the membership link; input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fairleak.errors import DataValidationError
from fairleak.robustness import PerturbationSpace, minimal_perturbation
from fairleak.robustness.groups import group_robustness, membership_link


def _planted(n=1600, seed=0):
    """Group B's records sit near the boundary (their informative feature is squeezed)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    race = rng.choice(["A", "B"], n, p=[0.7, 0.3])
    x = rng.standard_normal((n, 4)).astype(np.float32)
    x[race == "B", 0] *= 0.25  # brittle: close to the boundary x0 = 0
    y = (x[:, 0] > 0).astype(int)
    return x, y, pd.DataFrame({"sex": sex, "race": race})


def test_planted_brittle_group_is_detected():
    X, y, sens = _planted()
    lr = LogisticRegression(C=100).fit(X, y)
    res = minimal_perturbation(lr, X, PerturbationSpace.all_numeric(4))
    correct = lr.predict(X) == y
    out = group_robustness(res.distance, correct=correct, y_true=y, sensitive=sens, n_bootstrap=200)
    disp = out["disparity"]["race"]
    assert disp["worst"] == "B" and disp["best"] == "A"
    assert disp["ratio"] < 0.5
    lo, hi = disp["ratio_ci"]
    assert lo <= disp["ratio"] <= hi < 1.0  # the interval excludes equality
    assert disp["difference_ci"][0] > 0
    # the intersection carries it too; sex alone does not show it
    assert out["disparity"]["sex*race"]["worst"].endswith("|B")
    _, s_hi = out["disparity"]["sex"]["ratio_ci"]
    assert s_hi >= 0.8
    g = out["groups"]["race"]["B"]
    assert g["flipped_within"]["0.1"] > out["groups"]["race"]["A"]["flipped_within"]["0.1"]
    assert set(g["by_label"]) == {"0", "1"}
    assert out["size_correlation"]["sex*race"]["n_groups"] == 4


def test_no_disparity_when_groups_are_alike():
    X, y, sens = _planted(seed=1)
    X[:, 0] = np.random.default_rng(5).standard_normal(len(X))
    y = (X[:, 0] > 0).astype(int)
    lr = LogisticRegression(C=100).fit(X, y)
    res = minimal_perturbation(lr, X, PerturbationSpace.all_numeric(4))
    out = group_robustness(res.distance, correct=lr.predict(X) == y, y_true=y, sensitive=sens)
    disp = out["disparity"]["race"]
    assert disp["ratio"] > 0.75 and disp["ratio_ci"][1] > 0.9


def test_small_groups_are_marked_and_left_out():
    d = np.abs(np.random.default_rng(0).standard_normal(100))
    sens = pd.DataFrame({"g": ["a"] * 90 + ["b"] * 10})
    out = group_robustness(d, correct=np.ones(100, bool), y_true=np.ones(100, int), sensitive=sens,
                           min_group_size=30)  # fmt: skip
    assert out["groups"]["g"]["b"]["too_small"]
    assert out["disparity"]["g"] is None  # one eligible group: no disparity


def test_membership_link_members_farther():
    rng = np.random.default_rng(0)
    member = np.r_[np.ones(500, bool), np.zeros(500, bool)]
    d = np.where(member, rng.exponential(1.0, 1000), rng.exponential(0.5, 1000))
    d[:5] = np.inf
    sens = pd.DataFrame({"sex": rng.choice(["F", "M"], 1000)})
    m = membership_link(d, correct=np.ones(1000, bool), is_member=member, sensitive=sens, n_bootstrap=50)
    assert m.auc > 0.6
    assert set(m.by_group["sex"]) == {"F", "M"}


def test_bad_distances_refused():
    with pytest.raises(DataValidationError, match=">= 0"):
        group_robustness(np.array([np.nan, 1.0]), correct=[True, True], y_true=[0, 1], sensitive=["a", "b"])
    with pytest.raises(DataValidationError, match="differ in length"):
        group_robustness(np.ones(3), correct=[True], y_true=[0, 1, 1], sensitive=["a", "b", "c"])


def test_robust_accuracy_gap_and_per_label_shares():
    X, y, sens = _planted(seed=2)
    lr = LogisticRegression(C=100).fit(X, y)
    res = minimal_perturbation(lr, X, PerturbationSpace.all_numeric(4))
    out = group_robustness(res.distance, correct=lr.predict(X) == y, y_true=y, sensitive=sens,
                           budgets=(0.1, 0.25), n_bootstrap=20)  # fmt: skip
    gap = out["disparity"]["race"]["robust_accuracy_gap"]
    ra = {g: v["robust_accuracy"] for g, v in out["groups"]["race"].items()}
    assert gap["0.1"] == pytest.approx(abs(ra["A"]["0.1"] - ra["B"]["0.1"]))
    assert gap["0.1"] > 0.1  # the squeezed group loses robust accuracy first
    b = out["groups"]["race"]["B"]["by_label"]["1"]["flipped_within"]["0.1"]
    a = out["groups"]["race"]["A"]["by_label"]["1"]["flipped_within"]["0.1"]
    assert b > a
