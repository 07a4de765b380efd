"""Resolve what the user pointed at (a bundled dataset name or a file) into a TabularDataset."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from fairleak.data import DATASETS, TabularDataset, load_dataset, load_table
from fairleak.data.dataset import DEFAULT_MIN_GROUP_SIZE
from fairleak.errors import DataValidationError

__all__ = ["parse_bins", "resolve_dataset"]


def parse_bins(specs: Sequence[str]) -> dict[str, list[float]]:
    """Parse ``["age=25,45,65"]`` into ``{"age": [25.0, 45.0, 65.0]}``."""
    out: dict[str, list[float]] = {}
    for spec in specs:
        col, sep, edges = spec.partition("=")
        if not sep or not col.strip() or not edges.strip():
            raise DataValidationError(
                f"Bin specification '{spec}' is not of the form COLUMN=EDGE[,EDGE...], e.g. age=25,45,65."
            )
        try:
            out[col.strip()] = [float(e) for e in edges.split(",") if e.strip()]
        except ValueError as exc:
            raise DataValidationError(
                f"Bin edges for '{col.strip()}' must be numbers; got '{edges}'."
            ) from exc
    return out


def resolve_dataset(
    data: str | None = None,
    *,
    label: str | None = None,
    positive: str | None = None,
    protected: Sequence[str] | None = None,
    bins: Mapping[str, Sequence[float]] | None = None,
    drop: Sequence[str] = (),
    include_protected: bool = False,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    missing: Literal["drop", "impute"] = "drop",
    keep: Sequence[str] = (),
    auto_drop: bool = True,
) -> TabularDataset:
    """A bundled dataset by name (default ``adult``) or a CSV/Parquet file with label and protected columns."""
    name = data or "adult"
    if name.lower() in DATASETS and not Path(name).exists():
        if label is not None or positive is not None or bins or drop:
            raise DataValidationError(
                f"'{name}' is a bundled dataset with a fixed label and bins; --label, --positive, "
                "--bins and --drop apply to your own files only."
            )
        return load_dataset(
            name,
            protected=protected or None,
            include_protected=include_protected,
            min_group_size=min_group_size,
            missing=missing,
            keep=keep,
            auto_drop=auto_drop,
        )
    if label is None:
        raise DataValidationError(
            f"'{name}' is not a bundled dataset ({', '.join(sorted(DATASETS))}), so it is read as a "
            "file: name its label column with --label COLUMN."
        )
    if not protected:
        raise DataValidationError(
            "Name the protected attribute column(s) of your data with --protected COL[,COL...]."
        )
    return load_table(
        name,
        label=label,
        positive=positive,
        protected=protected,
        bins=bins,
        drop=drop,
        include_protected=include_protected,
        min_group_size=min_group_size,
        missing=missing,
        keep=keep,
        auto_drop=auto_drop,
    )
