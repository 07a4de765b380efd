"""The bundled datasets: Adult, COMPAS and German Credit, shipped compressed inside the package.

Sources and licences are in ``files/ATTRIBUTION.md``. Each dataset documents its default label,
positive value and protected attributes in :data:`DATASETS`; :func:`load_dataset` applies the
documented filters and goes through the same validation as user files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Literal

import pandas as pd

from fairleak.data.dataset import DEFAULT_MIN_GROUP_SIZE, TabularDataset, _suggest, build_dataset
from fairleak.errors import DataValidationError

__all__ = ["DATASETS", "DatasetInfo", "list_datasets", "load_dataset", "register_dataset"]

ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", "income",
]  # fmt: skip
GERMAN_COLUMNS = [
    "status", "duration", "credit_history", "purpose", "credit_amount", "savings",
    "present_employment", "installment_rate", "status_sex", "other_debtors",
    "present_residence_since", "property", "age", "installment_plans", "housing",
    "number_of_existing_credits", "job", "number_of_people_liable_for", "telephone",
    "foreign_worker", "credit",
]  # fmt: skip
COMPAS_COLUMNS = [
    "sex", "age", "age_cat", "race", "juv_fel_count", "juv_misd_count", "juv_other_count",
    "priors_count", "c_charge_degree", "two_year_recid",
]  # fmt: skip


@dataclass(frozen=True)
class DatasetInfo:
    """What a bundled dataset is and how fairleak reads it by default: ``loader()`` returns the
    raw table (filtered as documented) and notes on what it did."""

    name: str
    title: str
    label: str
    positive: str
    protected: tuple[str, ...]  # protected attributes available
    default_protected: tuple[str, ...]  # used when none are named
    bins: Mapping[str, Sequence[float]] = field(default_factory=dict)
    description: str = ""
    source: str = ""
    licence: str = ""
    loader: Callable[[], tuple[pd.DataFrame, list[str]]] | None = None


#: Registered datasets by name (see :func:`register_dataset`).
DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Make a dataset loadable by name everywhere (``load_dataset``, ``fairleak audit NAME``,
    ``fairleak datasets``). ``info.loader`` must be set."""
    if info.loader is None:
        raise ValueError(f"Dataset '{info.name}' needs a loader.")
    DATASETS[info.name] = info
    return info


_BUNDLED = {
    "adult": DatasetInfo(
        name="adult",
        title="UCI Adult (Census Income 1994), train and test files together",
        label="income",
        positive=">50K",
        protected=("sex", "race", "age"),
        default_protected=("sex", "race"),
        bins={"age": (25, 45, 65)},
        description=(
            "48,842 rows; rows with a missing value ('?' in workclass, occupation, "
            "native_country) are dropped and counted, leaving 45,222. The test file's labels "
            "lose their trailing '.'. fnlwgt (a census sampling weight) and education (duplicated "
            "by education_num) are not used as features. Age as a protected attribute is binned "
            "at 25, 45, 65."
        ),
        source="UCI Machine Learning Repository, Becker & Kohavi 1996, doi:10.24432/C5XW20",
        licence="CC BY 4.0",
    ),
    "compas": DatasetInfo(
        name="compas",
        title="ProPublica COMPAS two-year recidivism",
        label="two_year_recid",
        positive="1",
        protected=("race", "sex", "age_cat"),
        default_protected=("race", "sex"),
        description=(
            "7,214 rows; ProPublica's standard filter (days_b_screening_arrest in [-30, 30], "
            "is_recid != -1, c_charge_degree != 'O', score_text != 'N/A') leaves 6,172. Features: "
            "age, juvenile felony / misdemeanour / other counts, priors_count, c_charge_degree "
            "(COMPAS's own scores are not used as features)."
        ),
        source="ProPublica compas-analysis repository (Angwin et al. 2016)",
        licence="Published by ProPublica for analysis; cite the source",
    ),
    "german": DatasetInfo(
        name="german",
        title="Statlog German Credit",
        label="credit",
        positive="good",
        protected=("sex", "age"),
        default_protected=("sex", "age"),
        bins={"age": (26,)},
        description=(
            "1,000 rows; attribute codes decoded with values_maps.json. Label good (1) / bad (2) "
            "credit. sex is derived from status_sex (A91/A93/A94 male, A92/A95 female) and the "
            "rest of status_sex kept as personal_status; age as a protected attribute is binned "
            "at 26 (<26 vs >=26)."
        ),
        source="UCI Machine Learning Repository, Hofmann 1994, doi:10.24432/C5NC77",
        licence="CC BY 4.0",
    ),
}


def list_datasets() -> list[DatasetInfo]:
    """The bundled datasets, in a stable order."""
    return [DATASETS[k] for k in sorted(DATASETS)]


def _file(name: str):
    return resources.files("fairleak.data").joinpath("files", name)


def _raw_adult() -> tuple[pd.DataFrame, list[str]]:
    frames = []
    for fname, skip in (("adult.data.gz", 0), ("adult.test.gz", 1)):
        with _file(fname).open("rb") as fh:
            frames.append(
                pd.read_csv(
                    fh,
                    compression="gzip",
                    header=None,
                    names=ADULT_COLUMNS,
                    skiprows=skip,
                    skipinitialspace=True,
                    na_values=["?"],
                    keep_default_na=False,
                )
            )
    df = pd.concat(frames, ignore_index=True)
    df = df.dropna(how="all")  # trailing blank lines
    df["income"] = df["income"].str.rstrip(".")
    return df.drop(columns=["fnlwgt", "education"]), []


def _raw_compas() -> tuple[pd.DataFrame, list[str]]:
    with _file("compas-scores-two-years.csv.gz").open("rb") as fh:
        df = pd.read_csv(fh, compression="gzip", keep_default_na=False, na_values=[""])
    n0 = len(df)
    keep = (
        df["days_b_screening_arrest"].between(-30, 30)
        & (df["is_recid"] != -1)
        & (df["c_charge_degree"] != "O")
        & (df["score_text"] != "N/A")
    )
    df = df.loc[keep, COMPAS_COLUMNS].reset_index(drop=True)
    note = (
        f"ProPublica's standard filter kept {len(df):,} of {n0:,} rows "
        f"({n0 - len(df):,} removed by the documented filter)."
    )
    return df, [note]


def _raw_german() -> tuple[pd.DataFrame, list[str]]:
    with _file("german.data.gz").open("rb") as fh:
        df = pd.read_csv(fh, compression="gzip", sep=" ", header=None, names=GERMAN_COLUMNS)
    maps = json.loads(_file("german_values_maps.json").read_text())
    for col, mapping in maps.items():
        if col in ("credit", "status_sex"):
            continue
        df[col] = df[col].map(lambda v, m=mapping: str(m.get(str(v), v)).strip())
    df["sex"] = df["status_sex"].map(
        {"A91": "male", "A93": "male", "A94": "male", "A92": "female", "A95": "female"}
    )
    personal = {
        "A91": "divorced/separated", "A92": "divorced/separated/married", "A93": "single",
        "A94": "married/widowed", "A95": "single",
    }  # fmt: skip
    df["personal_status"] = df["status_sex"].map(personal)
    df["credit"] = df["credit"].map({1: "good", 2: "bad"})
    return df.drop(columns=["status_sex"]), []


for _name, _loader in (("adult", _raw_adult), ("compas", _raw_compas), ("german", _raw_german)):
    register_dataset(replace(_BUNDLED[_name], loader=_loader))


def load_dataset(
    name: str,
    *,
    protected: Sequence[str] | None = None,
    include_protected: bool = False,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    missing: Literal["drop", "impute"] = "drop",
    keep: Sequence[str] = (),
    auto_drop: bool = True,
) -> TabularDataset:
    """Load a bundled dataset (``"adult"``, ``"compas"`` or ``"german"``) with its documented filters.

    ``protected`` chooses among the dataset's protected attributes (default: its
    ``default_protected``). Works offline: the data ships inside the package.
    """
    key = name.lower().strip()
    if key not in DATASETS:
        raise DataValidationError(
            f"Unknown dataset '{name}'. Bundled datasets: {', '.join(sorted(DATASETS))}. "
            f"{_suggest(key, list(DATASETS)).replace('Available columns', 'Names')}"
        )
    info = DATASETS[key]
    chosen = tuple(protected) if protected else info.default_protected
    assert info.loader is not None
    df, notes = info.loader()
    bins = {c: e for c, e in info.bins.items() if c in chosen}
    return build_dataset(
        df,
        name=key,
        label=info.label,
        positive=info.positive,
        protected=chosen,
        bins=bins,
        include_protected=include_protected,
        min_group_size=min_group_size,
        notes=notes,
        missing=missing,
        keep=keep,
        auto_drop=auto_drop,
    )
