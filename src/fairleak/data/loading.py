"""Load a user's CSV or Parquet file into a validated :class:`TabularDataset`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from fairleak.data.dataset import DEFAULT_MIN_GROUP_SIZE, TabularDataset, build_dataset
from fairleak.errors import DataValidationError

__all__ = ["load_table", "read_table"]

_CSV_SUFFIXES = {".csv", ".tsv", ".txt", ".gz", ".bz2", ".zip", ".xz"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


def read_table(path: str | Path, *, na_values: Sequence[str] = ("?",)) -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet file, with a clear error when it cannot be read."""
    p = Path(path)
    if not p.exists():
        raise DataValidationError(f"The file '{p}' does not exist. Check the path.")
    if p.is_dir():
        raise DataValidationError(f"'{p}' is a folder; give the path of a CSV or Parquet file.")
    if p.stat().st_size == 0:
        raise DataValidationError(f"The file '{p}' is empty (0 bytes).")
    suffixes = {s.lower() for s in p.suffixes}
    try:
        if suffixes & _PARQUET_SUFFIXES:
            df = pd.read_parquet(p)
        elif suffixes & _CSV_SUFFIXES or not suffixes:
            sep = "\t" if ".tsv" in suffixes else ","
            df = pd.read_csv(p, sep=sep, na_values=list(na_values), skipinitialspace=True)
        else:
            raise DataValidationError(
                f"Cannot tell the format of '{p.name}': use a .csv (optionally .gz) or .parquet file."
            )
    except DataValidationError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(f"The file '{p}' has no data (no header or rows).") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataValidationError(
            f"Could not read '{p}' as {'Parquet' if suffixes & _PARQUET_SUFFIXES else 'CSV'}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. "
            "Check that the file is a valid, uncorrupted table."
        ) from exc
    if df.shape[0] == 0:
        raise DataValidationError(f"The file '{p}' has a header but no rows.")
    return df


def load_table(
    data: str | Path | pd.DataFrame,
    *,
    label: str,
    protected: Sequence[str],
    positive: object | None = None,
    bins: Mapping[str, Sequence[float]] | None = None,
    drop: Sequence[str] = (),
    include_protected: bool = False,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    na_values: Sequence[str] = ("?",),
    missing: Literal["drop", "impute"] = "drop",
    keep: Sequence[str] = (),
    auto_drop: bool = True,
) -> TabularDataset:
    """Load user data (a CSV/Parquet path or a DataFrame) and validate it.

    Args:
        data: path to a ``.csv`` / ``.csv.gz`` / ``.parquet`` file, or a DataFrame.
        label: the label column; ``positive`` the value counted as the positive class
            (optional when the label is already 0/1).
        protected: the protected-attribute columns.
        bins: bin edges for numeric protected columns, e.g. ``{"age": [25, 45, 65]}``.
        drop: columns not to use as features (e.g. identifiers).
        include_protected: also use protected columns as model features.
        min_group_size: refuse a protected group with fewer rows than this.
        missing, keep, auto_drop: see :func:`~fairleak.data.build_dataset`.
    """
    if isinstance(data, pd.DataFrame):
        df, name = data, "dataframe"
    else:
        df, name = read_table(data, na_values=na_values), Path(data).name
    return build_dataset(
        df,
        name=name,
        label=label,
        protected=protected,
        positive=positive,
        bins=bins,
        drop=drop,
        include_protected=include_protected,
        min_group_size=min_group_size,
        missing=missing,
        keep=keep,
        auto_drop=auto_drop,
    )
