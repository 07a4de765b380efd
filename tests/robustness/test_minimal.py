"""Minimal flipping perturbations: exact on linear models, attacks bounded by the exact figure,
black-box against white-box, the perturbation space respected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from fairleak.data import TabularPreprocessor
from fairleak.errors import DataValidationError
from fairleak.robustness import PerturbationSpace, minimal_perturbation
from fairleak.train import FairleakClassifier, TrainConfig, train_ensemble


@pytest.fixture(scope="module")
def linear_case():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] - 0.3 * X[:, 2] + 0.4 * rng.standard_normal(400) > 0).astype(int)
    lr = LogisticRegression().fit(X, y)
    space = PerturbationSpace.all_numeric(6, immutable=[5])
    return X, y, lr, space


def _closed_form(lr, X, space, norm):
    w = lr.coef_[0] * space.mask
    f = X.astype(np.float64) @ lr.coef_[0] + lr.intercept_[0]
    return np.abs(f) / (np.linalg.norm(w) if norm == "l2" else np.abs(w).sum())


def _torch_linear(lr):
    lin = torch.nn.Linear(lr.coef_.shape[1], 1)
    lin.weight.data = torch.tensor(lr.coef_, dtype=torch.float32)
    lin.bias.data = torch.tensor(lr.intercept_, dtype=torch.float32)
    return torch.nn.Sequential(lin)  # not recognised as linear: goes through the attacks


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_exact_linear_equals_closed_form_and_flips(linear_case, norm):
    X, _, lr, space = linear_case
    res = minimal_perturbation(lr, X, space, norm=norm)
    assert res.method == "exact"
    np.testing.assert_allclose(res.distance, _closed_form(lr, X, space, norm), rtol=1e-6)
    assert (lr.predict(res.x_adv) != lr.predict(X)).all()
    assert np.array_equal(res.x_adv[:, 5], X[:, 5])  # the immutable column never moves


@pytest.mark.parametrize(("norm", "method"), [("l2", "deepfool"), ("l2", "pgd"), ("linf", "pgd")])
def test_attacks_never_below_exact_and_within_10_percent(linear_case, norm, method):
    X, _, lr, space = linear_case
    exact = _closed_form(lr, X, space, norm)
    res = minimal_perturbation(_torch_linear(lr), X, space, norm=norm, method=method)
    assert res.flipped.all()
    ratio = res.distance / exact
    assert ratio.min() >= 1 - 1e-5  # float32 points: a hair of rounding, never a real undercut
    assert ratio.max() <= 1.10
    assert (lr.predict(res.x_adv) != lr.predict(X)).all()
    assert np.array_equal(res.x_adv[:, 5], X[:, 5])


def test_deepfool_one_step_on_logistic_regression(linear_case):
    X, _, lr, space = linear_case
    res = minimal_perturbation(_torch_linear(lr), X, space, method="deepfool", max_iter=1)
    assert res.flipped.all()
    np.testing.assert_allclose(res.distance, _closed_form(lr, X, space, "l2"), rtol=3e-4)


@pytest.fixture(scope="module")
def mlp_case():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 5)).astype(np.float32)
    y = ((X[:, 0] ** 2 + X[:, 1] - 0.5 * X[:, 2] * X[:, 3]) > 0.7).astype(int)
    ens = train_ensemble(X, y, np.ones((1, 300), bool), config=TrainConfig(hidden=(32,), epochs=40), seeds=[3])
    return X, ens, PerturbationSpace.all_numeric(5)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_black_box_agrees_with_white_box_on_mlp(mlp_case, norm):
    """Stated tolerance: median ratio black-box / white-box within [0.9, 1.1], and 90% of
    records within 15% (both are upper bounds of the true minimum)."""
    X, ens, space = mlp_case
    wb = minimal_perturbation(ens, X, space, norm=norm)
    assert wb.method == ("deepfool" if norm == "l2" else "pgd")
    bb = minimal_perturbation(ens, X, space, norm=norm, method="boundary", seed=0)
    assert wb.flipped.all() and bb.flipped.all()
    r = bb.distance / wb.distance
    assert 0.9 <= np.median(r) <= 1.1
    assert np.mean(np.abs(r - 1) <= 0.15) >= 0.9
    z = ens.predict_logits(bb.x_adv)[0]
    z0 = ens.predict_logits(X)[0]
    assert ((z[:, 1] > z[:, 0]) != (z0[:, 1] > z0[:, 0])).all()


def test_fairleak_classifier_and_clipping(mlp_case):
    X, _, _ = mlp_case
    y = (X[:, 0] > 0).astype(int)
    clf = FairleakClassifier(hidden_layer_sizes=(16,), epochs=5, random_state=0).fit(X, y)
    lo, hi = X.min(0) - 0.1, X.max(0) + 0.1
    space = PerturbationSpace.all_numeric(5, lower=lo, upper=hi)
    res = minimal_perturbation(clf, X, space)
    assert res.method == "deepfool"
    ok = res.flipped
    assert ok.mean() > 0.9
    assert (res.x_adv[ok] >= lo - 1e-6).all() and (res.x_adv[ok] <= hi + 1e-6).all()
    assert (clf.predict(res.x_adv[ok]) != clf.predict(X[ok])).all()


@pytest.fixture(scope="module")
def table_case():
    rng = np.random.default_rng(2)
    n = 500
    df = pd.DataFrame({
        "age": rng.integers(18, 80, n).astype(float),
        "hours": rng.normal(40, 10, n),
        "job": rng.choice(["a", "b", "c"], n),
        "sex": rng.choice(["F", "M"], n),
    })  # fmt: skip
    y = ((df["age"] - 45) / 15 + (df["job"] == "c") * 1.5 + rng.normal(0, 0.5, n) > 0.5).astype(int)
    pre = TabularPreprocessor().fit(df)
    Z = pre.transform(df)
    return df, y.to_numpy(), pre, Z


def test_space_from_preprocessor_holds_protected_and_moves_blocks_whole(table_case):
    _, y, pre, Z = table_case
    space = PerturbationSpace.from_preprocessor(pre, Z, immutable=["sex", "hours"])
    assert list(space.numeric) == [0]  # age only
    assert len(space.blocks) == 1 and space.block_names == ("job",)
    lr = LogisticRegression(C=10).fit(Z, y)
    fixed = minimal_perturbation(lr, Z, space, norm="l2")
    swap = minimal_perturbation(lr, Z, space, norm="l2", categorical="swap")
    assert (swap.distance <= fixed.distance + 1e-9).all()
    changed = swap.category_change >= 0
    assert changed.any()
    blk = space.blocks[0]
    # every adversarial record still has exactly one category of 'job'; sex and hours unchanged
    np.testing.assert_allclose(swap.x_adv[:, blk].sum(1), 1.0)
    assert set(np.unique(swap.x_adv[:, blk])) <= {0.0, 1.0}
    sex = [i for i, n in enumerate(pre.feature_names_out) if "sex" in n or "hours" in n]
    assert np.array_equal(swap.x_adv[:, sex], Z[:, sex])
    assert (lr.predict(swap.x_adv[swap.flipped]) != lr.predict(Z[swap.flipped])).all()
    # a category change costs sqrt(2) at least
    assert (swap.distance[changed] >= np.sqrt(2) - 1e-9).all()
    with pytest.raises(DataValidationError, match="not features"):
        PerturbationSpace.from_preprocessor(pre, Z, immutable=["salary"])


def test_boundary_search_on_a_pipeline_reading_raw_dataframe(table_case):
    df, y, pre, Z = table_case
    from sklearn.pipeline import Pipeline

    pipe = Pipeline([("pre", TabularPreprocessor()),
                     ("m", HistGradientBoostingClassifier(max_iter=30, random_state=0))]).fit(df, y)  # fmt: skip
    space = PerturbationSpace.from_preprocessor(pre, Z, immutable=["sex"])
    num = pre.column_transformer_.named_transformers_["num"]

    def decode(rows, origin):
        return pd.DataFrame({
            "age": rows[:, 0] * num.scale_[0] + num.mean_[0],
            "hours": rows[:, 1] * num.scale_[1] + num.mean_[1],
            "job": np.array(["a", "b", "c"])[rows[:, 2:5].argmax(1)],
            "sex": np.where(rows[:, 6] > 0.5, "M", "F"),
        })  # fmt: skip

    res = minimal_perturbation(pipe, Z[:80], space, decode=decode, iterations=8, directions=16)
    assert res.method == "boundary"
    ok = res.flipped
    assert ok.mean() > 0.8
    assert (pipe.predict(decode(res.x_adv[ok], None)) != pipe.predict(df.iloc[:80][ok])).all()


def test_bad_input_messages(linear_case):
    X, _, lr, space = linear_case
    with pytest.raises(DataValidationError, match="norm"):
        minimal_perturbation(lr, X, space, norm="l1")
    with pytest.raises(DataValidationError, match="encoded records"):
        minimal_perturbation(lr, X[:, :4], space)
    with pytest.raises(DataValidationError, match="differentiable"):
        minimal_perturbation(lr, X, space, method="deepfool")
