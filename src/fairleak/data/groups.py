"""Protected attributes: normalisation, intersections and group masks.

Every module that reports "per group" goes through here, so a group has the same name
everywhere (fairness tables, attack breakdowns, group privacy risk, the report):

- a single attribute is keyed by its column name, e.g. ``"sex"``, and its groups by their
  string value, e.g. ``"Female"``;
- an intersection of several attributes is keyed ``"race*sex"`` (attribute names joined by
  ``*`` in the order given) and its groups ``"Black|Female"`` (values joined by ``|``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from fairleak.errors import DataValidationError

__all__ = [
    "INTERSECTION_SEP",
    "VALUE_SEP",
    "group_codes",
    "group_views",
    "intersection_labels",
    "normalize_sensitive",
]

INTERSECTION_SEP = "*"
VALUE_SEP = "|"


def normalize_sensitive(sensitive_features: Any, n_rows: int | None = None) -> pd.DataFrame:
    """Return protected attributes as a DataFrame of strings, one column per attribute.

    Accepts a DataFrame, a Series, a dict of arrays, a 1-D array (one attribute named
    ``"sensitive_feature_0"``) or a 2-D array. Raises :class:`DataValidationError` for a
    length that does not match ``n_rows`` or for missing values.
    """
    if isinstance(sensitive_features, pd.DataFrame):
        df = sensitive_features.copy()
    elif isinstance(sensitive_features, pd.Series):
        name = sensitive_features.name if sensitive_features.name is not None else None
        df = sensitive_features.to_frame(name=name or "sensitive_feature_0")
    elif isinstance(sensitive_features, Mapping):
        df = pd.DataFrame({str(k): np.asarray(v) for k, v in sensitive_features.items()})
    else:
        arr = np.asarray(sensitive_features, dtype=object)
        if arr.ndim == 1:
            df = pd.DataFrame({"sensitive_feature_0": arr})
        elif arr.ndim == 2:
            df = pd.DataFrame(arr, columns=[f"sensitive_feature_{i}" for i in range(arr.shape[1])])
        else:
            raise DataValidationError(
                f"sensitive_features must be 1-D or 2-D; got an array with {arr.ndim} dimensions."
            )
    df = df.reset_index(drop=True)
    df.columns = [str(c) for c in df.columns]
    if n_rows is not None and len(df) != n_rows:
        raise DataValidationError(
            f"sensitive_features has {len(df)} rows but the data has {n_rows}; "
            "pass one protected-attribute value per row."
        )
    for col in df.columns:
        missing = int(df[col].isna().sum())
        if missing:
            raise DataValidationError(
                f"Protected attribute '{col}' has {missing} missing value(s). Remove those rows "
                "or replace the missing values with an explicit category before auditing."
            )
        df[col] = df[col].astype(str)
    return df


def intersection_labels(sensitive: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Group label of each row for the intersection of ``columns`` (``"Black|Female"``)."""
    cols = list(columns)
    if len(cols) == 1:
        return sensitive[cols[0]].to_numpy(dtype=object)
    parts = [sensitive[c].astype(str).to_numpy(dtype=object) for c in cols]
    out = parts[0].copy()
    for p in parts[1:]:
        out = out + VALUE_SEP + p
    return out


def group_views(
    sensitive: pd.DataFrame,
    *,
    intersections: bool | int = True,
) -> dict[str, np.ndarray]:
    """Group label of every row, for each attribute and each intersection of attributes.

    ``intersections=True`` adds every combination of two or more attributes (the full
    intersection included); an integer ``k`` adds combinations of up to ``k`` attributes.
    Keys are attribute names (``"sex"``) or ``"race*sex"`` for intersections.
    """
    cols = list(sensitive.columns)
    views: dict[str, np.ndarray] = {c: sensitive[c].to_numpy(dtype=object) for c in cols}
    if intersections and len(cols) > 1:
        max_k = len(cols) if intersections is True else int(intersections)
        for k in range(2, max_k + 1):
            for combo in combinations(cols, k):
                views[INTERSECTION_SEP.join(combo)] = intersection_labels(sensitive, combo)
    return views


def group_codes(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer code per row (0..G-1, groups in sorted order) and the group names."""
    names, codes = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    return codes.astype(np.int64), [str(n) for n in names]
