"""Data hygiene: ID-like and constant columns, imputation, numeric bin order."""

import numpy as np
import pandas as pd
import pytest

from fairleak.data import group_codes, impute_features, load_table, sorted_groups
from fairleak.errors import DataValidationError


@pytest.fixture
def frame():
    rng = np.random.default_rng(1)
    n = 300
    return pd.DataFrame({
        "outcome": rng.choice(["yes", "no"], n),
        "sex": rng.choice(["F", "M"], n),
        "age": rng.integers(18, 80, n),
        "applicant_id": [f"A{i:05d}" for i in rng.permutation(n)],
        "row_no": np.arange(n),
        "country": "DE",
        "income": rng.normal(50, 10, n),  # floats differ in every row: a measurement, not an id
        "job": rng.choice(["a", "b", "c"], n),
    })  # fmt: skip


def test_id_like_and_constant_columns_are_dropped_with_a_note(frame):
    ds = load_table(frame, label="outcome", positive="yes", protected=["sex"])
    assert set(ds.features.columns) == {"age", "income", "job"}
    notes = " ".join(ds.notes)
    for col in ("applicant_id", "row_no"):
        assert f"Dropped feature column '{col}': ID-like" in notes and f"--keep {col}" in notes
    assert "Dropped feature column 'country': constant" in notes
    assert "applicant_id" in ds.raw.columns  # a user's own fitted model may still read it


def test_keep_and_auto_drop_override(frame):
    ds = load_table(frame, label="outcome", positive="yes", protected=["sex"], keep=["row_no"])
    assert "row_no" in ds.features.columns and "applicant_id" not in ds.features.columns
    ds = load_table(frame, label="outcome", positive="yes", protected=["sex"], auto_drop=False)
    assert {"applicant_id", "row_no", "country"} <= set(ds.features.columns)
    with pytest.raises(DataValidationError, match="keep column 'nope' is not in the data"):
        load_table(frame, label="outcome", positive="yes", protected=["sex"], keep=["nope"])


def test_impute_keeps_rows_and_fills_from_the_given_rows(frame):
    frame.loc[[3, 7], "income"] = np.nan
    frame.loc[[5], "job"] = None
    dropped = load_table(frame, label="outcome", positive="yes", protected=["sex"])
    assert len(dropped) == 297
    ds = load_table(frame, label="outcome", positive="yes", protected=["sex"], missing="impute")
    assert len(ds) == 300 and ds.features["income"].isna().sum() == 2
    assert any("imputed" in n and "not dropped" in n for n in ds.notes)
    fit_rows = np.arange(150, 300)  # e.g. the population rows
    filled, notes = impute_features(ds, fit_rows)
    assert not filled.features.isna().any().any()
    assert filled.features.loc[3, "income"] == pytest.approx(frame["income"].iloc[150:].median())
    assert filled.features.loc[5, "job"] == frame["job"].iloc[150:].value_counts().index[0]
    assert len(notes) == 2 and ds.features["income"].isna().sum() == 2  # the input is unchanged


def test_impute_in_an_audit_is_fitted_on_population_rows(frame, tmp_path):
    from fairleak.audit import apply_overrides, default_config
    from fairleak.audit.data import prepare_data

    frame.loc[[3, 7, 11], "income"] = np.nan
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    cfg = apply_overrides(default_config(fast=True), {
        "data.dataset": str(path), "data.label": "outcome", "data.positive": "yes",
        "data.protected": ["sex"], "data.missing": "impute"})  # fmt: skip
    d = prepare_data(cfg)
    assert len(d.ds) == 300 and not d.ds.features.isna().any().any()
    pop_median = frame["income"].iloc[d.population].median()
    assert d.ds.features.loc[3, "income"] == pytest.approx(pop_median)
    assert any("Imputed 3 missing value(s) of 'income'" in n for n in d.notes)


def test_numeric_bins_sort_numerically_everywhere(frame):
    expected = ["<25", "[25, 45)", "[45, 65)", ">=65"]
    assert sorted_groups([">=65", "[45, 65)", "<25", "[25, 45)"]) == expected
    assert sorted_groups(["M|>=65", "F|[25, 45)", "F|<25"]) == ["F|<25", "F|[25, 45)", "M|>=65"]
    codes, names = group_codes(np.array([">=65", "<25", "[25, 45)", "<25"]))
    assert names == ["<25", "[25, 45)", ">=65"] and codes.tolist() == [2, 0, 1, 0]
    assert sorted_groups(["Male", "Female"]) == ["Female", "Male"]  # text stays alphabetical
    frame["age"] = np.r_[np.full(150, 20), np.full(75, 50), np.full(75, 70)]
    ds = load_table(frame, label="outcome", positive="yes", protected=["age"], bins={"age": [25, 45, 65]})
    assert list(ds.group_sizes()["age"]) == ["<25", "[45, 65)", ">=65"]


def test_only_id_like_and_constant_features_is_a_clear_error(frame):
    small = frame[["outcome", "sex", "applicant_id", "country"]]
    with pytest.raises(DataValidationError, match=r"Every feature column is ID-like or constant.*--no-auto-drop"):
        load_table(small, label="outcome", positive="yes", protected=["sex"])
    ds = load_table(small, label="outcome", positive="yes", protected=["sex"], auto_drop=False)
    assert list(ds.features.columns) == ["applicant_id", "country"]
