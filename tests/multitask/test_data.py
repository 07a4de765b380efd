"""Multi-task data: the bundled two-task setups and user tables, and clear errors for bad input."""

import numpy as np
import pandas as pd
import pytest

from fairleak.data import load_dataset
from fairleak.data.multitask import load_multitask, make_multitask_synthetic
from fairleak.errors import DataValidationError


def test_compas_has_both_recidivism_labels_under_the_standard_filter():
    ds = load_multitask("compas")
    single = load_dataset("compas")
    assert ds.tasks == ("two_year_recid", "is_violent_recid") and len(ds) == len(single) == 6172
    np.testing.assert_array_equal(ds.Y[:, 0], single.y)  # same rows, same first label
    assert ds.Y.shape == (6172, 2) and set(np.unique(ds.Y)) == {0, 1}
    # Violent recidivism is rarer than recidivism and mostly nested in it.
    assert ds.Y[:, 1].mean() < 0.15 < 0.4 < ds.Y[:, 0].mean()
    assert ((ds.Y[:, 1] == 1) & (ds.Y[:, 0] == 0)).sum() < 0.02 * len(ds)
    assert not {"two_year_recid", "is_violent_recid", "race", "sex"} & set(ds.features.columns)
    assert list(ds.sensitive.columns) == ["race", "sex"]


def test_adult_second_task_is_long_hours_and_hours_leave_the_features():
    ds = load_multitask("adult", protected=["sex"])
    single = load_dataset("adult", protected=["sex"])
    assert ds.tasks == ("income", "long_hours") and ds.positives == (">50K", "1")
    np.testing.assert_array_equal(ds.Y[:, 0], single.y)
    hours = single.features["hours_per_week"].to_numpy()
    np.testing.assert_array_equal(ds.Y[:, 1], (hours > 40).astype(int))
    assert "hours_per_week" not in ds.features.columns and "sex" not in ds.features.columns
    assert any("long_hours" in n for n in ds.notes)


def test_one_bundled_task_can_be_chosen():
    ds = load_multitask("compas", labels=["is_violent_recid"])
    assert ds.tasks == ("is_violent_recid",) and "two_year_recid" not in ds.features.columns


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame({
        "a": rng.choice(["yes", "no"], n), "b": rng.integers(0, 2, n),
        "c": rng.choice(["hi", "lo"], n), "sex": rng.choice(["F", "M"], n),
        "x": rng.normal(size=n), "z": rng.choice(["u", "v", "w"], n),
    })  # fmt: skip


def test_user_csv_and_parquet_with_several_labels(table, tmp_path):
    csv, pq = tmp_path / "t.csv", tmp_path / "t.parquet"
    table.to_csv(csv, index=False)
    table.to_parquet(pq)
    for path in (csv, pq):
        ds = load_multitask(path, labels=["a", "b", "c"], protected=["sex"],
                            positive={"a": "yes", "c": "hi"})  # fmt: skip
        assert ds.tasks == ("a", "b", "c") and ds.positives == ("yes", "1", "hi")
        np.testing.assert_array_equal(ds.Y[:, 0], (table["a"] == "yes").astype(int))
        np.testing.assert_array_equal(ds.Y[:, 1], table["b"])
        assert list(ds.features.columns) == ["x", "z"]
        assert ds.task("c").y.tolist() == (table["c"] == "hi").astype(int).tolist()


def test_rows_with_missing_features_are_dropped_from_every_label(table):
    table.loc[[3, 7], "x"] = np.nan
    ds = load_multitask(table, labels=["b", "a"], protected=["sex"], positive={"a": "yes"})
    assert len(ds) == 198 and any("Dropped 2" in n for n in ds.notes)
    keep = np.setdiff1d(np.arange(200), [3, 7])
    np.testing.assert_array_equal(ds.Y[:, 1], (table["a"].to_numpy()[keep] == "yes").astype(int))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": ["a", "bb"]}, "label column 'bb' is not in the data. Did you mean 'b'"),
        ({"labels": ["a", "z"]}, "'z' has 3 distinct values"),
        ({"labels": ["a", "a"]}, "named more than once"),
        ({"labels": ["a", "sex"]}, "both a label and protected"),
        ({"labels": ["a", "c"], "positive": {"a": "yes"}}, "say which one is the positive"),
        ({"labels": ["a", "b"], "positive": {"q": "1"}}, "'q', which is not a label column"),
        ({"labels": ["a", "b"], "positive": {"a": "maybe"}}, "never occurs"),
        ({"labels": []}, "--labels COL,COL"),
        ({"labels": ["a", "b"], "protected": []}, "--protected"),
    ],
)
def test_bad_user_input_names_the_problem(table, kwargs, message):
    kw = {"protected": ["sex"], "positive": {"a": "yes"}, **kwargs}
    with pytest.raises(DataValidationError, match=message):
        load_multitask(table, **kw)


def test_missing_label_values_and_single_class_after_drops(table):
    t = table.copy()
    t.loc[5, "b"] = np.nan
    with pytest.raises(DataValidationError, match=r"'b' has 1 missing value"):
        load_multitask(t, labels=["a", "b"], protected=["sex"], positive={"a": "yes"})
    t = table.copy()
    t.loc[t["b"] == 1, "x"] = np.nan  # every row with b == 1 loses a feature
    with pytest.raises(DataValidationError, match="'b' has a single value"):
        load_multitask(t, labels=["a", "b"], protected=["sex"], positive={"a": "yes"})


def test_bundled_setup_errors():
    with pytest.raises(DataValidationError, match=r"no task 'income'\. Tasks: two_year_recid"):
        load_multitask("compas", labels=["income"])
    with pytest.raises(DataValidationError, match="--positive is for your own files"):
        load_multitask("adult", positive="1")
    with pytest.raises(DataValidationError, match="neither a bundled multi-task setup"):
        load_multitask("german")


def test_synthetic_tasks_are_related_within_groups_and_biased_where_planted():
    ds = make_multitask_synthetic(4000, task_groups=(0, 0, 1, 1), group_bias=(0, 0, 3.0, 0), seed=1)
    agree = lambda i, j: (ds.Y[:, i] == ds.Y[:, j]).mean()  # noqa: E731
    assert agree(0, 1) > 0.85 and agree(2, 3) > 0.8 and 0.35 < agree(0, 2) < 0.65
    minority = ds.sensitive["group"].to_numpy() == "minority"
    gap = lambda t: ds.Y[minority, t].mean() - ds.Y[~minority, t].mean()  # noqa: E731
    assert gap(2) > 0.3 and abs(gap(3)) < 0.1
    again = make_multitask_synthetic(
        4000, task_groups=(0, 0, 1, 1), group_bias=(0, 0, 3.0, 0), seed=1
    )
    np.testing.assert_array_equal(ds.Y, again.Y)
