"""Datasets, loading and validation, preprocessing and audit splits."""

from fairleak.data.dataset import (
    DEFAULT_MIN_GROUP_SIZE,
    TabularDataset,
    bin_numeric,
    build_dataset,
    impute_features,
)
from fairleak.data.datasets import (
    DATASETS,
    DatasetInfo,
    list_datasets,
    load_dataset,
    register_dataset,
)
from fairleak.data.groups import (
    group_codes,
    group_sort_key,
    group_views,
    intersection_labels,
    normalize_sensitive,
    sorted_groups,
)
from fairleak.data.loading import load_table, read_table
from fairleak.data.preprocess import TabularPreprocessor
from fairleak.data.splits import AuditSplit, make_audit_split
from fairleak.data.summary import dataset_summary
from fairleak.data.synthetic import make_synthetic

__all__ = [
    "DATASETS",
    "DEFAULT_MIN_GROUP_SIZE",
    "AuditSplit",
    "DatasetInfo",
    "TabularDataset",
    "TabularPreprocessor",
    "bin_numeric",
    "build_dataset",
    "dataset_summary",
    "group_codes",
    "group_sort_key",
    "group_views",
    "impute_features",
    "intersection_labels",
    "list_datasets",
    "load_dataset",
    "load_table",
    "make_audit_split",
    "make_synthetic",
    "normalize_sensitive",
    "read_table",
    "register_dataset",
    "sorted_groups",
]
