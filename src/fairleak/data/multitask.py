"""Multi-task data: one table, several binary labels, the same protected attributes.

Bundled two-task setups (no downloads; folktables fetches ACS PUMS at run time and is not used):

- ``compas``: ``two_year_recid`` and ``is_violent_recid`` from the bundled ProPublica file, with
  ProPublica's standard two-year filter applied to both tasks.
- ``adult``: ``income`` (> 50K) and ``long_hours`` (``hours_per_week > 40``, derived from the
  table); ``hours_per_week`` is then removed from the features, since it would give the second
  task away.

A user table (CSV / Parquet / DataFrame) names its label columns. Every check of
:func:`fairleak.data.build_dataset` applies (missing columns with suggestions, missing values,
non-binary labels, small groups, ...), plus the multi-task ones: each label column exists, is
binary, has no missing value, is neither protected nor another label, and keeps both classes
after rows with missing features are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fairleak.data.dataset import (
    DEFAULT_MIN_GROUP_SIZE,
    TabularDataset,
    _binarise_label,
    _require_column,
    _suggest,
    build_dataset,
)
from fairleak.data.datasets import COMPAS_COLUMNS, DATASETS, _file, _raw_adult
from fairleak.data.loading import read_table
from fairleak.errors import DataValidationError

__all__ = [
    "MULTITASK_DATASETS",
    "MultiTaskDataset",
    "load_multitask",
    "make_multitask_synthetic",
]

#: Bundled multi-task setups: task names and how each is defined.
MULTITASK_DATASETS: dict[str, dict[str, str]] = {
    "compas": {
        "two_year_recid": "recidivism within two years (1), ProPublica's label",
        "is_violent_recid": "violent recidivism recorded (1), same file and filter",
    },
    "adult": {
        "income": "income > 50K",
        "long_hours": "hours_per_week > 40 (derived; hours_per_week removed from the features)",
    },
}


@dataclass(frozen=True)
class MultiTaskDataset:
    """A validated table with T binary labels and protected attributes.

    Attributes:
        name: dataset name (``"compas"``, ``"adult"`` or the file name).
        features: raw feature columns (no label, no protected column unless asked for).
        Y: labels as int64 0/1, shape [N, T]; column t is task ``tasks[t]``.
        tasks: label column names; ``positives[t]`` the value counted as 1.
        sensitive: protected attributes as strings, one column each (numeric ones binned).
        notes: what loading did (rows dropped and why, derived labels).
        source_rows: position of each kept row in the original table.
    """

    name: str
    features: pd.DataFrame
    Y: np.ndarray
    tasks: tuple[str, ...]
    positives: tuple[str, ...]
    sensitive: pd.DataFrame
    notes: tuple[str, ...] = ()
    source_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.Y.shape[0])

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def protected(self) -> list[str]:
        return list(self.sensitive.columns)

    def task(self, t: int | str) -> TabularDataset:
        """Task ``t`` (index or name) as a single-task :class:`TabularDataset`."""
        k = self.tasks.index(t) if isinstance(t, str) else int(t)
        return TabularDataset(
            name=f"{self.name}:{self.tasks[k]}", features=self.features, y=self.Y[:, k],
            sensitive=self.sensitive, label=self.tasks[k], positive=self.positives[k],
            notes=self.notes, source_rows=self.source_rows,
        )  # fmt: skip

    def subset(self, rows: np.ndarray) -> MultiTaskDataset:
        """The same dataset restricted to ``rows`` (positions)."""
        rows = np.asarray(rows)
        return MultiTaskDataset(
            name=self.name, features=self.features.iloc[rows].reset_index(drop=True),
            Y=self.Y[rows], tasks=self.tasks, positives=self.positives,
            sensitive=self.sensitive.iloc[rows].reset_index(drop=True), notes=self.notes,
            source_rows=self.source_rows[rows] if len(self.source_rows) else rows,
        )  # fmt: skip


def _positive_for(positive: object | Mapping[str, object] | None, label: str) -> object | None:
    if isinstance(positive, Mapping):
        return positive.get(label)
    return positive


def build_multitask(
    df: pd.DataFrame,
    *,
    name: str,
    labels: Sequence[str],
    protected: Sequence[str],
    positive: object | Mapping[str, object] | None = None,
    bins: Mapping[str, Sequence[float]] | None = None,
    drop: Sequence[str] = (),
    include_protected: bool = False,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    notes: Sequence[str] = (),
) -> MultiTaskDataset:
    """Validate a raw table with several label columns (see the module docstring).

    ``positive``: one value for every label, a mapping ``{label: value}``, or ``None`` (labels
    that are already 0/1). Raises :class:`DataValidationError` naming the column and the fix.
    """
    labels = list(labels)
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise DataValidationError(f"The data '{name}' is empty: it has no rows or no columns.")
    if not labels:
        raise DataValidationError(
            "No label column given: name two or more with --labels COL,COL (labels=[...] in Python)."
        )
    dup = sorted({c for c in labels if labels.count(c) > 1})
    if dup:
        raise DataValidationError(
            f"Label column(s) {', '.join(repr(c) for c in dup)} are named more than once; "
            "give each task's label once."
        )
    for col in labels:
        _require_column(df, col, "label")
        if col in protected:
            raise DataValidationError(f"Column '{col}' cannot be both a label and protected.")
        if col in drop:
            raise DataValidationError(f"Column '{col}' is a label; do not list it in --drop.")
    if isinstance(positive, Mapping):
        unknown = [k for k in positive if k not in labels]
        if unknown:
            raise DataValidationError(
                f"A positive value was given for {', '.join(repr(k) for k in unknown)}, which "
                f"is not a label column (labels: {', '.join(labels)})."
            )
    # Label cells are normalised as build_dataset normalises text (strip, "" is missing), then
    # each label is checked for missing values and binarised on the full table.
    ys, positives = [], []
    for col in labels:
        s = df[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            stripped = s.astype("string").str.strip()
            s = stripped.mask(stripped == "").astype(object).where(stripped.notna(), np.nan)
        n_missing = int(s.isna().sum())
        if n_missing:
            raise DataValidationError(
                f"The label column '{col}' has {n_missing} missing value(s). Remove those rows "
                "or fill them in; fairleak does not guess labels."
            )
        y, pos = _binarise_label(s, col, _positive_for(positive, col))
        ys.append(y)
        positives.append(pos)
    first, rest = labels[0], labels[1:]
    single = build_dataset(
        df.drop(columns=rest), name=name, label=first, protected=protected,
        positive=positives[0], bins=bins, drop=drop, include_protected=include_protected,
        min_group_size=min_group_size, notes=notes,
    )  # fmt: skip
    Y = np.stack(ys, 1)[single.source_rows]
    for t, col in enumerate(labels):
        if len(np.unique(Y[:, t])) < 2:
            raise DataValidationError(
                f"After dropping rows with missing features, the label column '{col}' has a "
                "single value; a classifier needs both classes."
            )
    return MultiTaskDataset(
        name=name, features=single.features, Y=Y.astype(np.int64), tasks=tuple(labels),
        positives=tuple(positives), sensitive=single.sensitive, notes=single.notes,
        source_rows=single.source_rows,
    )  # fmt: skip


def _raw_compas_multitask() -> tuple[pd.DataFrame, str]:
    # Same filter as fairleak.data.datasets._raw_compas, keeping is_violent_recid too.
    with _file("compas-scores-two-years.csv.gz").open("rb") as fh:
        df = pd.read_csv(fh, compression="gzip", keep_default_na=False, na_values=[""])
    n0 = len(df)
    keep = (
        df["days_b_screening_arrest"].between(-30, 30)
        & (df["is_recid"] != -1)
        & (df["c_charge_degree"] != "O")
        & (df["score_text"] != "N/A")
    )
    df = df.loc[keep, [*COMPAS_COLUMNS, "is_violent_recid"]].reset_index(drop=True)
    note = (
        f"ProPublica's standard filter kept {len(df):,} of {n0:,} rows; is_violent_recid is the "
        "file's own column (ProPublica's violent-recidivism analysis uses another file and filter)."
    )
    return df, note


def _raw_adult_multitask() -> tuple[pd.DataFrame, str]:
    df, _ = _raw_adult()
    df["long_hours"] = (df["hours_per_week"] > 40).astype(np.int64)
    note = "Task long_hours = hours_per_week > 40 (derived); hours_per_week is not a feature."
    return df.drop(columns=["hours_per_week"]), note


def load_multitask(
    data: str | Path | pd.DataFrame,
    *,
    labels: Sequence[str] | None = None,
    protected: Sequence[str] | None = None,
    positive: object | Mapping[str, object] | None = None,
    bins: Mapping[str, Sequence[float]] | None = None,
    drop: Sequence[str] = (),
    include_protected: bool = False,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
) -> MultiTaskDataset:
    """Load a bundled multi-task setup (``"compas"``, ``"adult"``) or a user table.

    Args:
        data: a bundled name, a path to a ``.csv`` / ``.csv.gz`` / ``.parquet`` file, or a
            DataFrame.
        labels: the label columns, one per task (bundled: defaults to the setup's tasks, see
            :data:`MULTITASK_DATASETS`; a subset of them may be named).
        protected: protected-attribute columns (bundled: the dataset's defaults).
        positive: the value counted as positive, one for all labels or ``{label: value}``;
            ``None`` for labels already 0/1.
        bins: bin edges for numeric protected columns, e.g. ``{"age": [25, 45, 65]}``.
        drop: columns not to use as features; ``include_protected``: also use protected columns
            as features; ``min_group_size``: refuse smaller protected groups.
    """
    notes: list[str] = []
    if isinstance(data, str) and data.lower().strip() in MULTITASK_DATASETS:
        key = data.lower().strip()
        info = DATASETS[key]
        df, note = _raw_compas_multitask() if key == "compas" else _raw_adult_multitask()
        notes.append(note)
        tasks = list(MULTITASK_DATASETS[key])
        chosen_labels = list(labels) if labels else tasks
        for lab in chosen_labels:
            if lab not in tasks:
                raise DataValidationError(
                    f"The bundled multi-task setup '{key}' has no task '{lab}'. Tasks: "
                    f"{', '.join(tasks)}. {_suggest(lab, tasks).replace('Available columns', 'Tasks')}"
                )
        df = df.drop(columns=[t for t in tasks if t not in chosen_labels])
        if positive is not None:
            raise DataValidationError(
                f"The bundled setup '{key}' fixes each task's positive value; --positive is for "
                "your own files."
            )
        chosen = tuple(protected) if protected else info.default_protected
        pos = {"income": info.positive} if "income" in chosen_labels else None
        all_bins = {c: e for c, e in info.bins.items() if c in chosen}
        all_bins.update(bins or {})
        return build_multitask(
            df, name=key, labels=chosen_labels, protected=chosen, positive=pos, bins=all_bins,
            drop=drop, include_protected=include_protected, min_group_size=min_group_size,
            notes=notes,
        )  # fmt: skip
    if isinstance(data, str) and not Path(data).exists() and not Path(data).suffix:
        raise DataValidationError(
            f"'{data}' is neither a bundled multi-task setup ({', '.join(MULTITASK_DATASETS)}) "
            "nor an existing file. Check the name or the path."
        )
    if not labels:
        raise DataValidationError(
            "Name the label columns of your table: --labels COL,COL (labels=[...] in Python)."
        )
    if not protected:
        raise DataValidationError(
            "No protected attribute given: name at least one column with --protected COL[,COL...]."
        )
    if isinstance(data, pd.DataFrame):
        df, name = data, "dataframe"
    else:
        df, name = read_table(data), Path(data).name
    return build_multitask(
        df, name=name, labels=labels, protected=protected, positive=positive, bins=bins,
        drop=drop, include_protected=include_protected, min_group_size=min_group_size,
    )  # fmt: skip


def make_multitask_synthetic(
    n_samples: int = 4000,
    *,
    n_features: int = 8,
    task_groups: Sequence[int] = (0, 0, 1, 1),
    within_group_noise: float = 0.03,
    group_bias: Sequence[float] | None = None,
    minority_fraction: float = 0.3,
    seed: int = 0,
) -> MultiTaskDataset:
    """Synthetic tasks with planted relatedness and planted bias.

    Task t's label is ``1[x @ w_t + b_t * s + noise > 0]`` with ``w_t`` = the direction of its
    group ``task_groups[t]`` (groups get orthonormal directions) plus a perturbation of relative
    size ``within_group_noise``; tasks in one group are related, tasks in different groups are
    not. ``group_bias[t]`` (default 0) adds ``b_t`` to the logit of the minority group
    (``s = 1``), planting a demographic-parity gap in task t; the protected attribute itself is
    not a feature, but feature ``x0`` is shifted by ``s`` (a proxy), so a model can learn the
    bias. Protected attribute ``group`` (``"majority"`` / ``"minority"``).
    """
    groups = np.asarray(task_groups, dtype=np.int64)
    T = len(groups)
    if T < 1:
        raise DataValidationError("task_groups must name at least one task.")
    if n_features < int(groups.max()) + 2:
        raise DataValidationError(
            f"n_features must be at least {int(groups.max()) + 2} (one direction per task group "
            f"and the proxy feature); got {n_features}."
        )
    bias = np.zeros(T) if group_bias is None else np.asarray(group_bias, dtype=np.float64)
    if bias.shape != (T,):
        raise DataValidationError(
            f"group_bias must have one value per task ({T}); got {bias.shape}."
        )
    rng = np.random.default_rng(seed)
    s = rng.random(n_samples) < minority_fraction
    x = rng.standard_normal((n_samples, n_features))
    x[:, 0] += 1.5 * s  # proxy of the protected attribute
    basis = np.linalg.qr(rng.standard_normal((n_features - 1, n_features - 1)))[0]
    Y = np.empty((n_samples, T), dtype=np.int64)
    for t in range(T):
        w = np.zeros(n_features)
        w[1:] = basis[:, groups[t]] + within_group_noise * rng.standard_normal(n_features - 1)
        w[1:] *= 2.0 / np.linalg.norm(w[1:])
        logit = x @ w + bias[t] * s + 0.3 * rng.standard_normal(n_samples)
        Y[:, t] = (logit > 0).astype(np.int64)
    features = pd.DataFrame(x.astype(np.float32), columns=[f"x{i}" for i in range(n_features)])
    return MultiTaskDataset(
        name="synthetic_multitask", features=features, Y=Y,
        tasks=tuple(f"task{t}" for t in range(T)), positives=("1",) * T,
        sensitive=pd.DataFrame({"group": np.where(s, "minority", "majority").astype(object)}),
        notes=(f"Synthetic: {n_samples:,} rows, task groups {groups.tolist()}, seed {seed}.",),
        source_rows=np.arange(n_samples, dtype=np.int64),
    )  # fmt: skip
