"""A JSON-able summary of a dataset: rows, features, base rate, group sizes."""

from __future__ import annotations

from typing import Any

from fairleak.data.dataset import TabularDataset

__all__ = ["dataset_summary"]


def dataset_summary(ds: TabularDataset, *, intersections: bool = True) -> dict[str, Any]:
    """Rows, raw feature count, label base rate and rows per group and intersection."""
    return {
        "name": ds.name,
        "rows": len(ds),
        "features": int(ds.features.shape[1]),
        "label": ds.label,
        "positive": ds.positive,
        "base_rate": ds.base_rate,
        "protected": ds.protected,
        "group_sizes": ds.group_sizes(intersections=intersections),
        "notes": list(ds.notes),
    }
