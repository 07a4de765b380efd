"""FairBoostClassifier: AdaFair's update exactly, AdaBoost without constraint, several
attributes, groups only from the protected attributes, the scikit-learn contract, errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import AdaBoostClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from fairleak.data import make_synthetic
from fairleak.errors import DataValidationError, ParameterError
from fairleak.train.fairboost import FairBoostClassifier

# Deliberate deviations from the scikit-learn checks, each with its reason.
EXPECTED_FAILED: dict[str, str] = {}


@parametrize_with_checks(
    [FairBoostClassifier(constraint=None, n_estimators=5, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_contract(estimator, check):
    # The checks call fit(X, y) without protected attributes, which only constraint=None
    # allows; the fairness path is tested below.
    check(estimator)


class RecordingStump(DecisionTreeClassifier):
    """A decision stump that keeps the sample weights of every fit (class-level list, since
    boosting fits clones)."""

    seen: list[np.ndarray] = []  # noqa: RUF012

    def fit(self, X, y, sample_weight=None, check_input=True):
        RecordingStump.seen.append(np.array(sample_weight, dtype=np.float64, copy=True))
        return super().fit(X, y, sample_weight=sample_weight, check_input=check_input)


def _record(clf, *args, **kwargs) -> list[np.ndarray]:
    RecordingStump.seen = []
    clf.fit(*args, **kwargs)
    return list(RecordingStump.seen)


def adafair_reference(X, y01, protected, *, rounds, constraint, seed):
    """AdaFair written out plainly (Iosifidis & Ntoutsi 2019, and the KAIS 2022 parity
    variants), labels -1/+1, one binary attribute (``protected`` True = protected group), the
    TNR test on the negative class as the paper means it. Returns the weights of each fit."""
    y = np.where(y01 == 1, 1, -1)
    n = len(y)
    w = np.full(n, 1.0 / n)
    margin = np.zeros(n)
    rs = np.random.RandomState(seed)  # one seed per stump, drawn as scikit-learn's AdaBoost does
    seen = []
    for _ in range(rounds):
        seen.append(w.copy())
        stump = DecisionTreeClassifier(max_depth=1, random_state=rs.randint(np.iinfo(np.int32).max))
        stump.fit(X, y, sample_weight=w)
        h = stump.predict(X)
        conf = stump.predict_proba(X).max(axis=1)
        err = sum(w[i] for i in range(n) if h[i] != y[i]) / sum(w)
        alpha = np.log((1 - err) / err)
        margin += alpha * h
        H = np.where(margin > 0, 1, -1)

        def rate(group, label, pred, H=H):
            rows = [i for i in range(n) if protected[i] == group and y[i] == label]
            return sum(H[i] == pred for i in rows) / len(rows)

        def selection_rate(group, H=H):
            rows = [i for i in range(n) if protected[i] == group]
            return sum(H[i] == 1 for i in rows) / len(rows)

        cost = {(g, lab): 1.0 for g in (True, False) for lab in (1, -1)}
        if constraint in ("equalized_odds", "equal_opportunity"):
            d_tpr = rate(False, 1, 1) - rate(True, 1, 1)  # non-protected minus protected
            if d_tpr > 0:
                cost[True, 1] = 1 + d_tpr
            elif d_tpr < 0:
                cost[False, 1] = 1 + abs(d_tpr)
        if constraint == "equalized_odds":
            d_tnr = rate(False, -1, -1) - rate(True, -1, -1)
            if d_tnr > 0:
                cost[True, -1] = 1 + d_tnr
            elif d_tnr < 0:  # the official code tests d_tpr here
                cost[False, -1] = 1 + abs(d_tnr)
        if constraint == "demographic_parity":
            d_sp = selection_rate(False) - selection_rate(True)
            if d_sp > 0:
                cost[True, 1] = 1 + d_sp
            elif d_sp < 0:
                cost[False, 1] = 1 + abs(d_sp)
        for i in range(n):
            if h[i] != y[i]:
                w[i] *= cost[protected[i], y[i]] * np.exp(alpha * conf[i])
        w = w / w.sum()
    return seen


@pytest.fixture(scope="module")
def synthetic():
    ds = make_synthetic(400, n_features=3, minority_fraction=0.3, shift=1.0, seed=4)
    return ds.features.to_numpy(np.float64), ds.y, ds.sensitive["group"].to_numpy()


@pytest.mark.parametrize(
    "constraint", ["equalized_odds", "equal_opportunity", "demographic_parity"]
)
def test_one_binary_attribute_is_adafair_round_by_round(synthetic, constraint):
    X, y, group = synthetic
    rounds = 12
    clf = FairBoostClassifier(
        RecordingStump(max_depth=1), n_estimators=rounds, constraint=constraint,
        min_group_size=1, validation_fraction=0.0, random_state=7,
    )  # fmt: skip
    ours = _record(clf, X, y, sensitive_features=group)
    ref = adafair_reference(X, y, group == "minority", rounds=rounds, constraint=constraint, seed=7)
    assert len(ours) == rounds
    for t, (a, b) in enumerate(zip(ours, ref, strict=True)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=0, err_msg=f"round {t + 1}")
    # The fairness costs did something: the weights differ from plain AdaBoost's.
    plain = _record(
        FairBoostClassifier(RecordingStump(max_depth=1), n_estimators=rounds, constraint=None,
                            validation_fraction=0.0, random_state=7),
        X, y,
    )  # fmt: skip
    assert max(np.abs(a - b).max() for a, b in zip(ours, plain, strict=True)) > 1e-4


def test_hand_computed_eight_rows_negative_class_cost():
    # x = 1..8; the best stump predicts 1 for x >= 4 and makes one error, a false positive at
    # x = 6 (group "n"). TNR_p = 2/2, TNR_n = 1/2, TPR equal (1 = 1): only the non-protected
    # negatives get a cost, 0.5 -- the branch AdaFair's code misses (it tests dTPR < 0 there).
    x = np.arange(1, 9, dtype=np.float64).reshape(-1, 1)
    y = np.array([0, 0, 0, 1, 1, 0, 1, 1])
    group = np.array(["p", "p", "n", "p", "n", "n", "p", "n"])
    clf = FairBoostClassifier(
        RecordingStump(max_depth=1), n_estimators=2, min_group_size=1,
        validation_fraction=0.0, random_state=0,
    )  # fmt: skip
    seen = _record(clf, x, y, sensitive_features=group)
    h1 = clf.cost_history_[clf.cost_history_["round"] == 1].set_index("group")
    assert h1.loc["n", "cost_negative"] == pytest.approx(0.5)
    assert h1.loc["p", "cost_negative"] == 0.0
    assert (h1["cost_positive"] == 0.0).all()
    # err = 1/8, alpha = ln 7; the right leaf holds 4 positives of 5 rows: confidence 0.8.
    expected = np.full(8, 1 / 8)
    expected[5] *= 1.5 * 7**0.8
    np.testing.assert_allclose(seen[1], expected / expected.sum(), rtol=1e-12)


def test_without_constraint_equals_sklearn_adaboost(synthetic):
    X, y, _ = synthetic
    ours = FairBoostClassifier(
        DecisionTreeClassifier(max_depth=2), n_estimators=25, constraint=None, confidence=False,
        learning_rate=0.7, validation_fraction=0.0, random_state=3,
    ).fit(X, y)  # fmt: skip
    ref = AdaBoostClassifier(
        DecisionTreeClassifier(max_depth=2), n_estimators=25, learning_rate=0.7, random_state=3
    ).fit(X, y)
    assert ours.n_rounds_ == len(ref.estimators_)
    np.testing.assert_allclose(ours.estimator_weights_, ref.estimator_weights_, rtol=1e-10)
    for a, b in zip(ours.staged_predict(X), ref.staged_predict(X), strict=True):
        np.testing.assert_array_equal(a, b)
    # sklearn's decision function is 2 F / sum(alpha); ours is the margin F itself.
    ours.set_theta(ours.n_rounds_)
    np.testing.assert_allclose(
        2 * ours.decision_function(X) / ours.estimator_weights_.sum(),
        ref.decision_function(X),
        atol=1e-10,
    )


def test_record_cost_is_max_over_attributes():
    rng = np.random.default_rng(0)
    n = 3000
    X = rng.normal(size=(n, 4))
    sf = pd.DataFrame({
        "a": rng.choice(["a0", "a1", "a2"], size=n, p=[0.5, 0.3, 0.2]),
        "b": rng.choice(["b0", "b1"], size=n, p=[0.6, 0.4]),
    })  # fmt: skip
    shift = (sf["a"] == "a2").to_numpy() * 1.0 + (sf["b"] == "b1").to_numpy() * 0.8
    y = (X[:, 0] + 0.5 * X[:, 1] - shift + rng.normal(scale=0.7, size=n) > 0).astype(int)
    clf = FairBoostClassifier(
        RecordingStump(max_depth=1), n_estimators=2, min_group_size=20,
        validation_fraction=0.0, random_state=1,
    )  # fmt: skip
    seen = _record(clf, X, y, sensitive_features=sf)
    assert clf.views_ == ["a", "b", "a*b"]
    h = clf.cost_history_[clf.cost_history_["round"] == 1]
    assert (h["cost_positive"] > 0).any() and (h["cost_negative"] > 0).any()
    labels = {"a": sf["a"].to_numpy(), "b": sf["b"].to_numpy(),
              "a*b": (sf["a"] + "|" + sf["b"]).to_numpy()}  # fmt: skip
    cost = np.zeros(n)
    for view, g in labels.items():
        table = h[h["view"] == view].set_index("group")
        per_row = np.where(y == 1, table.loc[g, "cost_positive"], table.loc[g, "cost_negative"])
        cost = np.maximum(cost, per_row)
    stump, alpha = clf.estimators_[0], clf.estimator_weights_[0]
    wrong = stump.predict(X) != y
    conf = stump.predict_proba(X).max(1)
    expected = np.where(wrong, (1 + cost) * np.exp(alpha * conf), 1.0) / n
    np.testing.assert_allclose(seen[1], expected / expected.sum(), rtol=1e-12)


# ---- mmm-fair's wrong-matrix bug: groups must come from the protected attributes ------------
def _costs(clf) -> np.ndarray:
    return clf.cost_history_[["cost_positive", "cost_negative", "tpr", "tnr"]].to_numpy()


def test_groups_never_come_from_feature_columns():
    ds = make_synthetic(1500, n_features=3, minority_fraction=0.3, shift=1.0, seed=11)
    X = ds.features.copy()
    group = ds.sensitive["group"]
    rng = np.random.default_rng(5)
    # A feature that looks like a group indicator but is not the protected attribute.
    X["group_minority"] = rng.integers(0, 2, size=len(X)).astype(float)
    params = dict(n_estimators=15, min_group_size=1, validation_fraction=0.0, random_state=2)
    clf = FairBoostClassifier(**params).fit(X, ds.y, sensitive_features=group)

    # Renaming and permuting the feature columns changes nothing about the costs.
    perm = X[["x2", "group_minority", "x0", "x1"]].set_axis(["u", "v", "w", "z"], axis=1)
    clf2 = FairBoostClassifier(**params).fit(perm, ds.y, sensitive_features=group)
    np.testing.assert_allclose(_costs(clf), _costs(clf2), rtol=1e-12)

    # The costs are the TPR shortfalls of the protected groups under the staged predictions,
    # not those of the decoy column's groups.
    minority = (group == "minority").to_numpy()
    decoy = X["group_minority"].to_numpy() == 1
    pos = ds.y == 1
    for t, pred in enumerate(clf.staged_predict(X), start=1):
        row = clf.cost_history_[clf.cost_history_["round"] == t].set_index("group")
        tpr = {g: pred[pos & m].mean() for g, m in (("minority", minority),
                                                      ("majority", ~minority))}  # fmt: skip
        best = max(tpr.values())
        for g in tpr:
            assert row.loc[g, "tpr"] == pytest.approx(tpr[g], abs=1e-12)
            assert row.loc[g, "cost_positive"] == pytest.approx(best - tpr[g], abs=1e-12)
    decoy_tpr = [pred[pos & decoy].mean() for pred in clf.staged_predict(X)]
    ours_tpr = clf.cost_history_.query("group == 'minority'")["tpr"].to_numpy()
    assert not np.allclose(decoy_tpr, ours_tpr)
    assert set(clf.cost_history_["view"]) == {"group"}


# ---- behaviour users rely on ----------------------------------------------------------------
def test_probabilities_margin_and_staging(synthetic):
    X, y, group = synthetic
    clf = FairBoostClassifier(n_estimators=20, random_state=0).fit(X, y, sensitive_features=group)
    F = clf.decision_function(X)
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P[:, 1], 1 / (1 + np.exp(-F)), rtol=1e-12)
    np.testing.assert_allclose(P.sum(1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(F > 0).astype(int)])
    staged = list(clf.staged_predict_proba(X))
    assert len(staged) == clf.n_rounds_
    np.testing.assert_allclose(staged[clf.theta_ - 1], P, rtol=1e-12)
    # The margin of theta rounds is the alpha-weighted vote, not divided by the sum of alphas.
    votes = sum(a * (2 * e.predict(X) - 1) for e, a in
                zip(clf.estimators_[: clf.theta_], clf.estimator_weights_, strict=False))  # fmt: skip
    np.testing.assert_allclose(F, votes, rtol=1e-12)


@pytest.mark.parametrize("labels", [(0, 1), (-1, 1), ("no", "yes")])
def test_any_two_labels(synthetic, labels):
    X, y, group = synthetic
    yl = np.where(y == 1, labels[1], labels[0])
    clf = FairBoostClassifier(n_estimators=10, random_state=0).fit(X, yl, sensitive_features=group)
    assert list(clf.classes_) == sorted(labels)
    ref = FairBoostClassifier(n_estimators=10, random_state=0).fit(X, y, sensitive_features=group)
    np.testing.assert_array_equal(
        clf.predict(X), np.where(ref.predict(X) == 1, labels[1], labels[0])
    )
    # The positive class's costs act on the positive rows whatever the labels are called:
    np.testing.assert_allclose(_costs(clf), _costs(ref))


def test_validation_split_is_stratified_and_seeded(synthetic):
    X, y, group = synthetic
    fit = lambda seed: FairBoostClassifier(n_estimators=5, random_state=seed).fit(  # noqa: E731
        X, y, sensitive_features=group
    )
    a, b, c = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(a.validation_mask_, b.validation_mask_)
    assert not np.array_equal(a.validation_mask_, c.validation_mask_)
    assert a.selection_split_ == "validation"
    for g in np.unique(group):
        for label in (0, 1):
            rows = (group == g) & (y == label)
            assert a.validation_mask_[rows].sum() == round(0.2 * rows.sum())


def test_selection_rules(synthetic):
    X, y, group = synthetic
    group = pd.Series(group, name="group")
    base = dict(n_estimators=30, random_state=0)
    ada = FairBoostClassifier(**base).fit(X, y, sensitive_features=group)
    obj = ada.staged_objectives_["objective"].to_numpy()
    assert ada.theta_ == int(np.argmin(obj)) + 1
    assert {"train/error", "validation/balanced_error", "validation/max_gap",
            "validation/equalized_odds_difference/group"} <= set(ada.staged_objectives_.columns)  # fmt: skip
    fixed = FairBoostClassifier(selection=7, **base).fit(X, y, sensitive_features=group)
    assert fixed.theta_ == 7
    par = FairBoostClassifier(selection="pareto", **base).fit(X, y, sensitive_features=group)
    so = par.staged_objectives_
    F = np.column_stack([so["validation/balanced_error"], so["validation/max_gap"]])
    chosen = F[par.theta_ - 1]
    assert not any((f <= chosen).all() and (f < chosen).any() for f in F)  # on the front
    assert par.set_theta(3).theta_ == 3


def test_any_weak_learner_with_sample_weight(synthetic):
    X, y, group = synthetic
    clf = FairBoostClassifier(LogisticRegression(), n_estimators=5, random_state=0)
    clf.fit(X, y, sensitive_features=group)
    assert clf.score(X, y) > 0.6
    svc = FairBoostClassifier(LinearSVC(), n_estimators=5, confidence=False, random_state=0)
    assert svc.fit(X, y, sensitive_features=group).n_rounds_ >= 1


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"constraint": "parity"}, "'constraint' parameter of FairBoostClassifier"),
        ({"n_estimators": 0}, "'n_estimators' parameter"),
        ({"learning_rate": -1.0}, "'learning_rate' parameter"),
        ({"views": "everything"}, "'views' parameter"),
        ({"views": ["race"]}, "not views of the protected attributes"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"selection": "best"}, "'selection' parameter"),
        ({"tradeoff_c": 2.0}, "'tradeoff_c' parameter"),
        ({"min_group_size": 0}, "'min_group_size' parameter"),
        ({"estimator": KNeighborsClassifier()}, "does not take sample_weight"),
        ({"estimator": LinearSVC()}, "pass confidence=False"),
    ],
)
def test_bad_parameters(synthetic, params, match):
    X, y, group = synthetic
    with pytest.raises(ParameterError, match=match):
        FairBoostClassifier(**params).fit(X, y, sensitive_features=group)


def test_bad_inputs(synthetic):
    X, y, group = synthetic
    with pytest.raises(ParameterError, match="needs the protected attributes"):
        FairBoostClassifier().fit(X, y)
    with pytest.raises(DataValidationError, match="rows but the data has"):
        FairBoostClassifier().fit(X, y, sensitive_features=group[:10])
    with pytest.raises(ValueError, match="Only binary classification"):
        FairBoostClassifier().fit(X, np.arange(len(y)) % 3, sensitive_features=group)
    clf = FairBoostClassifier(n_estimators=5).fit(X, y, sensitive_features=group)
    with pytest.raises(ParameterError, match=r"theta must be an int in \[1, 5\]"):
        clf.set_theta(6)


def test_too_small_groups_get_no_cost():
    rng = np.random.default_rng(3)
    n = 600
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + rng.normal(size=n) > 0).astype(int)
    race = np.where(np.arange(n) < 12, "tiny", np.where(np.arange(n) % 2 == 0, "r1", "r2"))
    clf = FairBoostClassifier(n_estimators=8, min_group_size=20, validation_fraction=0.0)
    clf.fit(X, y, sensitive_features=pd.Series(race, name="race"))
    assert clf.too_small_ == {"race": ["tiny"]}
    tiny = clf.cost_history_.query("group == 'tiny'")
    assert (tiny[["cost_positive", "cost_negative"]] == 0).all().all()
    assert (
        (clf.cost_history_.query("group != 'tiny'")[["cost_positive", "cost_negative"]] > 0)
        .any()
        .any()
    )
