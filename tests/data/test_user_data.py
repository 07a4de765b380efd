"""User CSV/Parquet data: loading, and a specific message for each kind of bad input."""

import numpy as np
import pandas as pd
import pytest

from fairleak.data import load_table, make_audit_split, make_synthetic
from fairleak.errors import DataValidationError


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame(
        {
            "income": rng.choice(["high", "low"], n),
            "gender": rng.choice(["F", "M"], n),
            "age": rng.integers(18, 80, n),
            "hours": rng.normal(40, 5, n),
            "job": rng.choice(["a", "b", "c"], n),
            "person_id": np.arange(n),
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_csv_and_parquet_round_trip(tmp_path, frame, suffix):
    path = tmp_path / f"data{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    ds = load_table(
        path, label="income", positive="high", protected=["gender", "age"], bins={"age": [30, 50]},
        drop=["person_id"],
    )  # fmt: skip
    assert len(ds) == 200
    assert ds.y.sum() == (frame["income"] == "high").sum()
    assert list(ds.features.columns) == ["hours", "job"]
    assert set(ds.sensitive["age"]) <= {"<30", "[30, 50)", ">=50"}
    assert ds.name == path.name


def test_zero_one_label_needs_no_positive(frame):
    frame["income"] = (frame["income"] == "high").astype(int)
    ds = load_table(frame, label="income", protected=["gender"])
    assert ds.positive == "1" and ds.y.sum() == frame["income"].sum()


def test_include_protected_keeps_them_as_features(frame):
    ds = load_table(
        frame, label="income", positive="high", protected=["gender"], include_protected=True
    )
    assert "gender" in ds.features.columns


def test_rows_with_missing_features_are_dropped_and_counted(frame):
    frame.loc[[3, 7, 9], "hours"] = np.nan
    frame.loc[[9, 11], "job"] = None
    ds = load_table(frame, label="income", positive="high", protected=["gender"])
    assert len(ds) == 196
    assert any("Dropped 4 of 200 rows" in n and "hours: 3" in n and "job: 2" in n for n in ds.notes)
    assert 9 not in ds.source_rows and 10 in ds.source_rows


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"label": "incme"}, r"label column 'incme' is not in the data. Did you mean 'income'"),
        (
            {"protected": ["gendr"]},
            r"protected column 'gendr' is not in the data. Did you mean 'gender'",
        ),
        ({"positive": "rich"}, r"positive value 'rich' never occurs .* Pass one of those values"),
        ({"positive": None}, r"say which one is the positive outcome with --positive"),
        ({"drop": ["nope"]}, r"drop column 'nope' is not in the data"),
        ({"protected": ["age"]}, r"numeric with \d+ distinct values; give bin edges"),
        ({"protected": []}, r"No protected attribute given"),
    ],
)
def test_bad_arguments_name_the_problem(frame, kwargs, pattern):
    args = {"label": "income", "positive": "high", "protected": ["gender"], **kwargs}
    with pytest.raises(DataValidationError, match=pattern):
        load_table(frame, **args)


def test_nan_in_label(frame):
    frame.loc[5, "income"] = None
    with pytest.raises(DataValidationError, match=r"label column 'income' has 1 missing value"):
        load_table(frame, label="income", positive="high", protected=["gender"])


def test_nan_in_protected(frame):
    frame.loc[[1, 2], "gender"] = np.nan
    with pytest.raises(
        DataValidationError, match=r"protected attribute 'gender' has 2 missing value"
    ):
        load_table(frame, label="income", positive="high", protected=["gender"])


def test_non_binary_label(frame):
    frame.loc[:10, "income"] = "medium"
    with pytest.raises(DataValidationError, match=r"has 3 distinct values .* binary"):
        load_table(frame, label="income", positive="high", protected=["gender"])


def test_group_below_minimum(frame):
    frame.loc[:4, "gender"] = "X"
    with pytest.raises(DataValidationError, match=r"'X' \(5 rows\).*--min-group-size"):
        load_table(frame, label="income", positive="high", protected=["gender"], min_group_size=10)
    ds = load_table(frame, label="income", positive="high", protected=["gender"], min_group_size=5)
    assert ds.group_sizes()["gender"]["X"] == 5


def test_entirely_missing_feature_column(frame):
    frame["empty"] = np.nan
    with pytest.raises(
        DataValidationError, match=r"'empty'.* entirely missing. Drop them with --drop empty"
    ):
        load_table(frame, label="income", positive="high", protected=["gender"])


def test_empty_and_unreadable_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataValidationError, match="is empty"):
        load_table(empty, label="y", protected=["g"])
    header = tmp_path / "header.csv"
    header.write_text("y,g,x\n")
    with pytest.raises(DataValidationError, match="header but no rows"):
        load_table(header, label="y", protected=["g"])
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet at all")
    with pytest.raises(DataValidationError, match=r"Could not read .* as Parquet"):
        load_table(bad, label="y", protected=["g"])
    with pytest.raises(DataValidationError, match="does not exist"):
        load_table(tmp_path / "missing.csv", label="y", protected=["g"])


def test_splits_are_deterministic_and_disjoint():
    a = make_audit_split(1000, seed=3)
    b = make_audit_split(1000, seed=3)
    c = make_audit_split(1000, seed=4)
    for x, y in (
        (a.members, b.members),
        (a.nonmembers, b.nonmembers),
        (a.population, b.population),
    ):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.members, c.members)
    allrows = np.concatenate([a.members, a.nonmembers, a.population])
    assert len(np.unique(allrows)) == 1000
    assert len(a.members) == len(a.nonmembers) == 250
    assert a.is_member.sum() == 250 and len(a.audit) == 500


def test_stratified_split_keeps_label_rate():
    y = np.r_[np.ones(300), np.zeros(700)]
    s = make_audit_split(1000, seed=0, stratify=y)
    assert y[s.members].mean() == pytest.approx(0.3, abs=0.01)
    assert y[s.population].mean() == pytest.approx(0.3, abs=0.01)


def test_synthetic_generator_shape_shift_and_imbalance():
    ds = make_synthetic(20_000, n_features=3, minority_fraction=0.2, shift=2.0, seed=1)
    minority = ds.sensitive["group"].to_numpy() == "minority"
    assert minority.mean() == pytest.approx(0.2, abs=0.01)
    gap = ds.features[minority].mean() - ds.features[~minority].mean()
    np.testing.assert_allclose(gap.to_numpy(), 2.0, atol=0.05)
    again = make_synthetic(20_000, n_features=3, minority_fraction=0.2, shift=2.0, seed=1)
    np.testing.assert_array_equal(ds.y, again.y)
    with pytest.raises(DataValidationError, match="minority_fraction"):
        make_synthetic(100, minority_fraction=1.5)
