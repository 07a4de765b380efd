"""Oversampling: each strategy reaches its cell ratios, with each generator; Pipeline use; errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from fairleak.data import TabularPreprocessor
from fairleak.errors import DataValidationError, ParameterError
from fairleak.synth.oversample import (
    STRATEGIES,
    FairOversampler,
    OversampledClassifier,
    cart_synthesize,
)


def table(n=800, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.choice(["F", "M"], n, p=[0.3, 0.7])
    y = (rng.random(n) < np.where(g == "F", 0.15, 0.4)).astype(int)
    X = pd.DataFrame({
        "age": rng.integers(18, 80, n), "hours": rng.normal(40, 8, n).round(1),
        "job": rng.choice(["a", "b", "c"], n), "sex": g,
    })  # fmt: skip
    return X, y


def cells(sens, y):
    return pd.crosstab(np.asarray(sens), np.asarray(y))


def check_ratios(strategy, X, y, Xr, yr, sens):
    before, after = cells(X["sex"], y), cells(sens, yr)
    assert (after.to_numpy() >= before.to_numpy()).all()  # rows are only ever added
    if strategy == "class":
        assert (after[0] == after[1]).all()
    elif strategy == "protected":
        size = after.sum(1)
        assert abs(size["F"] - size["M"]) <= 2
        share_before, share_after = before[1] / before.sum(1), after[1] / after.sum(1)
        assert np.allclose(share_before, share_after, atol=0.01)
    elif strategy == "class_protected":
        assert after.to_numpy().min() == after.to_numpy().max() == before.loc["M"].max()
    else:  # same_class: every group has the largest group's positive share
        share = after[1] / after.sum(1)
        assert abs(share["F"] - share["M"]) < 0.01
        assert after.loc["M"].tolist() == before.loc["M"].tolist()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_cart_reaches_the_cell_ratios(strategy):
    X, y = table()
    r = FairOversampler(strategy, "cart", protected=["sex"], random_state=0)
    Xr, yr = r.fit_resample(X, y)
    check_ratios(strategy, X, y, Xr, yr, Xr["sex"])
    pd.testing.assert_frame_equal(Xr.iloc[: len(X)], X)  # originals first, unchanged
    assert list(Xr.dtypes) == list(X.dtypes)
    assert sum(r.added_.values()) == len(Xr) - len(X)
    assert set(Xr["job"]) <= {"a", "b", "c"}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_smote_nc_reaches_the_cell_ratios(strategy):
    pytest.importorskip("imblearn")
    X, y = table()
    r = FairOversampler(strategy, "smote", random_state=0)
    Xr, yr = r.fit_resample(X.drop(columns="sex"), y, sensitive_features=X["sex"])
    check_ratios(strategy, X, y, Xr, yr, r.sensitive_resampled_["sex"])
    assert "sex" not in Xr.columns
    # interpolation stays within the cell's range
    assert Xr["age"].between(X["age"].min(), X["age"].max()).all()


def test_vae_generator_and_small_cell_fallback():
    X, y = table(400)
    r = FairOversampler("class", "vae", protected=["sex"], random_state=0, min_vae_cell=40,
                        vae_params={"epochs": 2, "hidden": 16})  # fmt: skip
    Xr, yr = r.fit_resample(X, y)
    check_ratios("class", X, y, Xr, yr, Xr["sex"])
    assert any("CART instead" in n for n in r.notes_)  # F positives: under 40 rows


def test_cart_draws_only_values_seen_in_the_leaf():
    X, _ = table(300)
    out = cart_synthesize(X, 500, np.random.default_rng(0))
    for c in X.columns:
        assert set(out[c]) <= set(X[c])


def test_usable_in_pipelines():
    X, y = table()
    clf = make_pipeline(TabularPreprocessor(), OversampledClassifier(LogisticRegression(), FairOversampler("class", "cart", random_state=0)))
    # the resampler inside reads groups from sensitive_features routed by hand here: X is already encoded
    Xe = X.drop(columns="sex")
    OversampledClassifier(make_pipeline(TabularPreprocessor(), LogisticRegression()),
                          FairOversampler("class", "cart", random_state=0)).fit(Xe, y, sensitive_features=X["sex"])
    with pytest.raises(DataValidationError, match="needs the groups"):
        clf.fit(X, y)
    imb = pytest.importorskip("imblearn.pipeline")
    pipe = imb.Pipeline([("over", FairOversampler("class_protected", "cart", protected=["sex"], random_state=0)),
                         ("pre", TabularPreprocessor()), ("lr", LogisticRegression())])  # fmt: skip
    pipe.fit(X, y)
    assert pipe.predict_proba(X).shape == (len(X), 2)  # no synthetic rows at predict time


def test_bad_inputs():
    X, y = table()
    with pytest.raises(ParameterError, match="strategy"):
        FairOversampler("more", protected=["sex"]).fit_resample(X, y)
    with pytest.raises(ParameterError, match="generator"):
        FairOversampler(generator="gan", protected=["sex"]).fit_resample(X, y)
    with pytest.raises(DataValidationError, match="not columns"):
        FairOversampler(protected=["gender"]).fit_resample(X, y)
    with pytest.raises(DataValidationError, match="rows but y"):
        FairOversampler(protected=["sex"]).fit_resample(X, y[:-1])
    y0 = y.copy()
    y0[X["sex"].to_numpy() == "F"] = 0
    with pytest.raises(DataValidationError, match="to learn from"):
        FairOversampler("class", "cart", protected=["sex"]).fit_resample(X, y0)
