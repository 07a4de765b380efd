"""Protected attributes: normalisation, intersections and group masks.

Every module that reports "per group" goes through here, so a group has the same name
everywhere (fairness tables, attack breakdowns, group privacy risk, the report):

- a single attribute is keyed by its column name, e.g. ``"sex"``, and its groups by their
  string value, e.g. ``"Female"``;
- an intersection of several attributes is keyed ``"race*sex"`` (attribute names joined by
  ``*`` in the order given) and its groups ``"Black|Female"`` (values joined by ``|``).
"""

from __future__ import annotations

import re
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
    "group_sort_key",
    "group_views",
    "intersection_labels",
    "normalize_sensitive",
    "sorted_groups",
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


_BIN = re.compile(r"^(?:<(?P<lt>-?[\d.eE+-]+)|>=(?P<ge>-?[\d.eE+-]+)|\[(?P<lo>-?[\d.eE+-]+), ?(?P<hi>-?[\d.eE+-]+)\))$")


def _part_key(part: str) -> tuple:
    m = _BIN.match(part.strip())
    if m is not None:
        try:
            if m["lt"] is not None:
                return (0, float(m["lt"]), -1, part)
            if m["ge"] is not None:
                return (0, float(m["ge"]), 1, part)
            return (0, float(m["lo"]), 0, part)
        except ValueError:
            pass
    try:
        return (0, float(part), 0, part)
    except ValueError:
        return (1, 0.0, 0, part)


def group_sort_key(name: str) -> tuple:
    """Sort key of a group name: numeric bins in numeric order (``<25``, ``[25, 45)``,
    ``[45, 65)``, ``>=65``) and numbers by value, other names as text; intersections
    (``"A|<25"``) part by part."""
    return tuple(_part_key(p) for p in str(name).split(VALUE_SEP))


def sorted_groups(names: Any) -> list[str]:
    """Group names in :func:`group_sort_key` order."""
    return sorted((str(n) for n in names), key=group_sort_key)


def group_codes(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer code per row (0..G-1, groups in :func:`group_sort_key` order) and the group names."""
    names, codes = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    order = sorted(range(len(names)), key=lambda i: group_sort_key(names[i]))
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    return rank[codes].astype(np.int64), [str(names[i]) for i in order]
