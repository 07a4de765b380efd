"""Bundled datasets load offline with their documented filters."""

from importlib import resources

import numpy as np
import pytest

from fairleak.data import DATASETS, dataset_summary, list_datasets, load_dataset
from fairleak.errors import DataValidationError


@pytest.mark.parametrize(
    ("name", "rows", "base_rate"),
    [("adult", 45_222, 0.2478), ("compas", 6_172, 0.4551), ("german", 1_000, 0.7)],
)
def test_row_counts_after_documented_filters(name, rows, base_rate):
    ds = load_dataset(name)
    assert len(ds) == rows
    assert len(ds.features) == rows and len(ds.sensitive) == rows
    assert ds.y.dtype == np.int64 and set(np.unique(ds.y)) == {0, 1}
    assert ds.base_rate == pytest.approx(base_rate, abs=1e-4)
    assert list(ds.sensitive.columns) == list(DATASETS[name].default_protected)


def test_adult_drops_missing_rows_and_says_so():
    ds = load_dataset("adult")
    assert any("Dropped 3,620 of 48,842 rows" in n for n in ds.notes)
    # test-file labels lose their trailing '.', so both files share the two classes
    assert ds.positive == ">50K"
    assert {"fnlwgt", "education", "sex", "race", "income"}.isdisjoint(ds.features.columns)
    assert "age" in ds.features.columns  # not protected by default, so it stays a feature


def test_adult_age_protected_is_binned_and_excluded_from_features():
    ds = load_dataset("adult", protected=["sex", "race", "age"])
    assert "age" not in ds.features.columns
    assert set(ds.sensitive["age"]) == {"<25", "[25, 45)", "[45, 65)", ">=65"}


def test_compas_standard_filter_and_groups():
    ds = load_dataset("compas")
    sizes = ds.group_sizes()
    assert sizes["race"]["African-American"] == 3175
    assert sizes["race"]["Caucasian"] == 2103
    assert sum(sizes["sex"].values()) == 6172
    assert sum(sizes["race*sex"].values()) == 6172
    assert "decile_score" not in ds.features.columns


def test_german_decoded_and_sex_from_status_sex():
    ds = load_dataset("german")
    assert ds.group_sizes()["sex"] == {"female": 310, "male": 690}
    assert ds.group_sizes()["age"] == {"<26": 190, ">=26": 810}
    assert not ds.features["purpose"].str.startswith("A4").any()  # codes decoded
    assert "status_sex" not in ds.features.columns


def test_data_ships_inside_the_package():
    folder = resources.files("fairleak.data").joinpath("files")
    names = {p.name for p in folder.iterdir()}
    assert {
        "adult.data.gz",
        "adult.test.gz",
        "compas-scores-two-years.csv.gz",
        "german.data.gz",
    } <= names
    assert "ATTRIBUTION.md" in names
    assert "/shared/" not in str(folder)


def test_unknown_dataset_suggests_names():
    with pytest.raises(DataValidationError, match="Did you mean 'adult'"):
        load_dataset("adlt")


def test_summary_lists_groups_and_intersections():
    s = dataset_summary(load_dataset("german"))
    assert s["rows"] == 1000 and s["features"] == 19
    assert (
        s["group_sizes"]["sex*age"]["female|<26"] + s["group_sizes"]["sex*age"]["male|<26"] == 190
    )
    assert [i.name for i in list_datasets()] == ["adult", "compas", "german"]
