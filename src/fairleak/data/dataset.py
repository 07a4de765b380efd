"""`TabularDataset`: validated features, binary label and protected attributes, built one way.

Bundled datasets and user files both go through :func:`build_dataset`, so every check (and every
message) is the same whichever way data comes in.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from fairleak.data.groups import group_views, sorted_groups
from fairleak.errors import DataValidationError

__all__ = [
    "DEFAULT_MIN_GROUP_SIZE",
    "TabularDataset",
    "bin_numeric",
    "build_dataset",
    "impute_features",
]

#: A protected group with fewer rows than this is refused at load time (override per call).
DEFAULT_MIN_GROUP_SIZE = 10
#: A numeric protected column with more distinct values than this must be binned.
MAX_UNBINNED_LEVELS = 10


@dataclass(frozen=True)
class TabularDataset:
    """A validated binary-classification table with protected attributes.

    Attributes:
        name: dataset name (``"adult"`` or the file name).
        features: raw feature columns (protected columns excluded unless asked for).
        y: label as int64 0/1, 1 meaning ``label == positive``.
        sensitive: protected attributes as strings, one column each (numeric ones binned).
        label, positive: the label column and the value counted as positive.
        notes: human-readable notes on what loading did (rows dropped and why, bins used).
        source_rows: position of each kept row in the original table.
        raw: every kept column but the label, as read (protected attributes unbinned): what a
            model fitted outside fairleak on this table takes as input.
    """

    name: str
    features: pd.DataFrame
    y: np.ndarray
    sensitive: pd.DataFrame
    label: str
    positive: str
    notes: tuple[str, ...] = ()
    source_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    raw: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def protected(self) -> list[str]:
        return list(self.sensitive.columns)

    @property
    def base_rate(self) -> float:
        return float(self.y.mean()) if len(self.y) else float("nan")

    def subset(self, rows: np.ndarray) -> TabularDataset:
        """The same dataset restricted to ``rows`` (positions)."""
        rows = np.asarray(rows)
        return TabularDataset(
            name=self.name,
            features=self.features.iloc[rows].reset_index(drop=True),
            y=self.y[rows],
            sensitive=self.sensitive.iloc[rows].reset_index(drop=True),
            label=self.label,
            positive=self.positive,
            notes=self.notes,
            source_rows=self.source_rows[rows] if len(self.source_rows) else rows,
            raw=None if self.raw is None else self.raw.iloc[rows].reset_index(drop=True),
        )

    def group_sizes(self, *, intersections: bool = True) -> dict[str, dict[str, int]]:
        """Rows per group, for each protected attribute and each intersection."""
        out: dict[str, dict[str, int]] = {}
        for key, labels in group_views(self.sensitive, intersections=intersections).items():
            names, counts = np.unique(labels.astype(str), return_counts=True)
            sizes = {str(n): int(c) for n, c in zip(names, counts, strict=True)}
            out[key] = {n: sizes[n] for n in sorted_groups(sizes)}
        return out


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    if close:
        return "Did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    shown = ", ".join(f"'{c}'" for c in list(choices)[:15])
    more = " ..." if len(choices) > 15 else ""
    return f"Available columns: {shown}{more}."


def _require_column(df: pd.DataFrame, column: str, role: str) -> None:
    if column not in df.columns:
        raise DataValidationError(
            f"The {role} column '{column}' is not in the data. {_suggest(column, list(df.columns))}"
        )


def _format_edge(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def bin_numeric(values: pd.Series, edges: Sequence[float]) -> pd.Series:
    """Bin a numeric column at ``edges`` into readable labels: ``<25``, ``[25, 45)``, ``>=45``."""
    edges = sorted(float(e) for e in edges)
    if not edges:
        raise DataValidationError("Bin edges must contain at least one value.")
    labels = [f"<{_format_edge(edges[0])}"]
    labels += [f"[{_format_edge(a)}, {_format_edge(b)})" for a, b in itertools.pairwise(edges)]
    labels.append(f">={_format_edge(edges[-1])}")
    idx = np.searchsorted(np.asarray(edges), values.to_numpy(dtype=float), side="right")
    return pd.Series(np.asarray(labels, dtype=object)[idx], index=values.index, dtype=object)


#: Tables with fewer rows than this are never checked for ID-like columns (a few rows are
#: easily all different by chance).
MIN_ROWS_ID_CHECK = 20


def _id_like_and_constant(df: pd.DataFrame, columns: Sequence[str]) -> dict[str, str]:
    """Feature columns to drop, with the reason: ID-like (integers or text, every value
    different; floats are left alone, a measurement can differ in every row) or constant."""
    out: dict[str, str] = {}
    n = len(df)
    for col in columns:
        s = df[col]
        n_unique = s.nunique(dropna=True)
        if n_unique <= 1 and s.notna().any():
            out[col] = f"constant (every row is {s.dropna().iloc[0]!r}), it carries no information"
        elif (
            n >= MIN_ROWS_ID_CHECK and n_unique == n and s.notna().all()
            and (pd.api.types.is_integer_dtype(s) or not pd.api.types.is_numeric_dtype(s))
            and not pd.api.types.is_bool_dtype(s)
        ):  # fmt: skip
            out[col] = "ID-like (a different value in every row), it can only help a model memorise rows"
    return out


def impute_features(ds: TabularDataset, fit_rows: np.ndarray) -> tuple[TabularDataset, list[str]]:
    """Fill missing feature values: the median (numeric columns) or the most frequent value
    (others) of the rows ``fit_rows`` (positions; the audit passes its population rows, public
    to the attacker). Returns the new dataset and a note per column filled."""
    feats = ds.features.copy()
    notes = []
    ref = feats.iloc[np.asarray(fit_rows)]
    for col in feats.columns:
        miss = feats[col].isna()
        if not miss.any():
            continue
        known = ref[col].dropna()
        if known.empty:
            raise DataValidationError(
                f"Feature column '{col}' has no value in the rows the imputation is fitted on; "
                f"drop it with --drop {col}."
            )
        if pd.api.types.is_numeric_dtype(feats[col]):
            value, how = known.median(), "median"
        else:
            value, how = known.value_counts().index[0], "most frequent value"
        feats[col] = feats[col].where(~miss, value)
        shown = value.item() if isinstance(value, np.generic) else value
        notes.append(f"Imputed {int(miss.sum()):,} missing value(s) of '{col}' with the {how} {shown!r}.")
    from dataclasses import replace

    return replace(ds, features=feats), notes


def _binarise_label(
    series: pd.Series, label: str, positive: object | None
) -> tuple[np.ndarray, str]:
    values = series.dropna().unique()
    shown = ", ".join(repr(v) for v in sorted(values, key=str)[:10])
    if len(values) > 2:
        raise DataValidationError(
            f"The label column '{label}' has {len(values)} distinct values ({shown}"
            f"{' ...' if len(values) > 10 else ''}); fairleak audits binary classifiers. "
            "Binarise the label first (e.g. a column that is 1 for the outcome of interest)."
        )
    if len(values) < 2:
        raise DataValidationError(
            f"The label column '{label}' has a single value ({shown}); a classifier needs both "
            "classes in the data."
        )
    if positive is None:
        numeric = pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
        if numeric and set(pd.Series(values).astype(float)) == {0.0, 1.0}:
            positive = 1
        else:
            raise DataValidationError(
                f"The label column '{label}' has values {shown}; say which one is the positive "
                "outcome with --positive VALUE (positive= in Python)."
            )
    as_str = series.astype(str).str.strip()
    hit = as_str == str(positive).strip()
    if not hit.any() and pd.api.types.is_numeric_dtype(series):
        try:
            hit = series.astype(float) == float(positive)  # "1" matches 1.0
        except (TypeError, ValueError):
            pass
    if not hit.any():
        raise DataValidationError(
            f"The positive value {positive!r} never occurs in the label column '{label}' "
            f"(values: {shown}). Pass one of those values with --positive."
        )
    return hit.to_numpy().astype(np.int64), str(positive)


def build_dataset(
    df: pd.DataFrame,
    *,
    name: str,
    label: str,
    protected: Sequence[str],
    positive: object | None = None,
    bins: Mapping[str, Sequence[float]] | None = None,
    drop: Sequence[str] = (),
    include_protected: bool = False,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    notes: Sequence[str] = (),
    missing: Literal["drop", "impute"] = "drop",
    keep: Sequence[str] = (),
    auto_drop: bool = True,
) -> TabularDataset:
    """Validate a raw table and split it into features, binary label and protected attributes.

    Raises :class:`DataValidationError` with a message that names the problem and the fix for:
    an empty table, a missing label / protected / drop column (with close-name suggestions),
    missing values in the label or a protected attribute, a non-binary label or a positive value
    that never occurs, a feature column that is entirely missing, a numeric protected attribute
    without bin edges, and a protected group smaller than ``min_group_size``. Rows with missing
    feature values are dropped and counted in ``notes`` (``missing="drop"``), or kept with their
    missing values for :func:`impute_features` (``missing="impute"``; the audit fits the
    imputation on the population rows).

    ``auto_drop``: feature columns that are ID-like (integer or text, a different value in every
    row: they can only help a model memorise rows) or constant (one value) are dropped, with a
    note; ``keep`` names columns never dropped that way.
    """
    notes = list(notes)
    bins = dict(bins or {})
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise DataValidationError(f"The data '{name}' is empty: it has no rows or no columns.")
    protected = list(dict.fromkeys(protected))
    if not protected:
        raise DataValidationError(
            "No protected attribute given: name at least one column with --protected COL[,COL...]."
        )
    _require_column(df, label, "label")
    for col in protected:
        _require_column(df, col, "protected")
        if col == label:
            raise DataValidationError(f"Column '{col}' cannot be both the label and protected.")
    for col in drop:
        _require_column(df, col, "drop")
    for col in bins:
        if col not in protected:
            raise DataValidationError(
                f"Bin edges were given for '{col}', which is not a protected attribute "
                f"(protected: {', '.join(protected)})."
            )
    df = df.drop(columns=list(drop)).copy()
    # Normalise text cells: strip spaces, treat empty strings as missing.
    for col in df.columns:
        if df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
            stripped = df[col].astype("string").str.strip()
            df[col] = stripped.mask(stripped == "").astype(object).where(stripped.notna(), np.nan)

    missing_label = int(df[label].isna().sum())
    if missing_label:
        raise DataValidationError(
            f"The label column '{label}' has {missing_label} missing value(s). Remove those rows "
            "or fill them in; fairleak does not guess labels."
        )
    for col in protected:
        n_missing = int(df[col].isna().sum())
        if n_missing:
            raise DataValidationError(
                f"The protected attribute '{col}' has {n_missing} missing value(s). Remove those "
                "rows or give them an explicit category (e.g. 'unknown') before auditing."
            )

    feature_cols = [
        c for c in df.columns if c != label and (include_protected or c not in protected)
    ]
    if not feature_cols:
        raise DataValidationError(
            "No feature columns are left after removing the label and protected columns."
        )
    for col in keep:
        _require_column(df, col, "keep")
    nothing_left = None  # raised after the label and group checks, whose messages come first
    if auto_drop:
        auto = _id_like_and_constant(df, [c for c in feature_cols if c not in keep])
        if len(auto) == len(feature_cols):
            nothing_left = DataValidationError(
                f"Every feature column is ID-like or constant ({', '.join(auto)}); nothing is left "
                "to learn from. Keep columns with --keep COL[,COL...], or --no-auto-drop."
            )
        else:
            for col, why in auto.items():
                notes.append(
                    f"Dropped feature column '{col}': {why}. Keep it with --keep {col} (data.keep)."
                )
            feature_cols = [c for c in feature_cols if c not in auto]
    empty = [c for c in feature_cols if df[c].isna().all()]
    if empty:
        raise DataValidationError(
            f"Feature column(s) {', '.join(repr(c) for c in empty)} are entirely missing. "
            f"Drop them with --drop {','.join(empty)}."
        )
    row_missing = df[feature_cols].isna()
    bad_rows = row_missing.any(axis=1).to_numpy()
    if bad_rows.any():
        per_col = row_missing.sum()
        per_col = per_col[per_col > 0].sort_values(ascending=False)
        detail = ", ".join(f"{c}: {int(n):,}" for c, n in per_col.items())
        if missing == "impute":
            notes.append(
                f"{int(bad_rows.sum()):,} of {len(df):,} rows have missing feature values ({detail}); "
                "they are imputed (median of numbers, most frequent category) from the population "
                "rows, not dropped."
            )
        else:
            notes.append(
                f"Dropped {int(bad_rows.sum()):,} of {len(df):,} rows with missing feature values "
                f"({detail}); --impute fills them in instead."
            )
    rows_kept = ~bad_rows if missing == "drop" else np.ones(len(df), bool)
    source_rows = np.flatnonzero(rows_kept).astype(np.int64)
    df = df.loc[rows_kept].reset_index(drop=True)
    if len(df) == 0:
        raise DataValidationError(
            "Every row has a missing feature value; nothing is left to audit."
        )

    y, positive_str = _binarise_label(df[label], label, positive)

    sensitive = pd.DataFrame(index=df.index)
    for col in protected:
        s = df[col]
        if col in bins:
            if not pd.api.types.is_numeric_dtype(s):
                raise DataValidationError(
                    f"Bin edges were given for protected attribute '{col}', but it is not numeric."
                )
            sensitive[col] = bin_numeric(s, bins[col])
            notes.append(f"Protected attribute '{col}' binned at edges {list(bins[col])}.")
        elif pd.api.types.is_numeric_dtype(s) and s.nunique() > MAX_UNBINNED_LEVELS:
            raise DataValidationError(
                f"The protected attribute '{col}' is numeric with {s.nunique()} distinct values; "
                f"give bin edges, e.g. --bins {col}=25,45,65 (bins={{'{col}': [25, 45, 65]}} in Python)."
            )
        else:
            sensitive[col] = s.astype(str)
        counts = sensitive[col].value_counts()
        small = counts[counts < min_group_size]
        if len(small):
            detail = ", ".join(f"'{g}' ({n} rows)" for g, n in small.items())
            raise DataValidationError(
                f"Protected attribute '{col}' has group(s) smaller than the minimum of "
                f"{min_group_size} rows: {detail}. Merge small categories into a larger one, "
                "or lower the minimum with --min-group-size."
            )

    if nothing_left is not None:
        raise nothing_left
    return TabularDataset(
        name=name,
        features=df[feature_cols].reset_index(drop=True),
        y=y,
        sensitive=sensitive.reset_index(drop=True),
        label=label,
        positive=positive_str,
        notes=tuple(notes),
        source_rows=source_rows,
        raw=df.drop(columns=[label]).reset_index(drop=True),
    )
