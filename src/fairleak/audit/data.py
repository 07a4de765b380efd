"""The audit's data: the validated table, who is a member, non-member or population, and the
inputs models train on.

Two ways to know membership:
- the audit trains its models itself: a seeded, label-stratified split into members (train the
  targets), non-members (same distribution, never trained on; the test rows) and a disjoint
  population (the attacker's own data);
- the user fitted the model: they say which rows it trained on (``data.member_column``, or
  ``data.train`` / ``data.holdout`` files). The holdout is split in half into non-members and
  population unless a ``data.population`` file is given. Reference models for online attacks
  train on halves of members and non-members together (reported with their size).

fairleak's own models read a numeric encoding (:class:`~fairleak.data.TabularPreprocessor`) fitted
on the **population** rows: they are the attacker's and the auditor's public data, so the
encoding reveals nothing about the members (fitting it on the members would leak their
category vocabulary and scaling statistics into every model). For the same reason DP recipes on
small data may pretrain on them without privacy (``public_pretraining``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fairleak.audit.config import AuditConfig
from fairleak.audit.data_source import resolve_dataset
from fairleak.audit.recipes import Inputs
from fairleak.audit.seeds import named_seed
from fairleak.data import (
    TabularDataset,
    TabularPreprocessor,
    impute_features,
    load_table,
    make_audit_split,
    read_table,
)
from fairleak.errors import DataValidationError

__all__ = ["AuditData", "prepare_data"]

_ROLE = "__fairleak_role__"
_TRUE = {"1", "true", "yes", "y", "train", "member", "in", "t"}


@dataclass
class AuditData:
    """The table and its split (row positions into ``ds``)."""

    ds: TabularDataset
    inputs: Inputs
    audit: np.ndarray  # the audited rows (members and non-members), in reporting order
    is_member: np.ndarray  # bool, aligned with ``audit``
    population: np.ndarray
    fingerprint: str
    membership: str  # "split" (by the audit), "given" (by the user) or "arrays" (Python API)
    notes: list[str] = field(default_factory=list)
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # non-feature columns kept (predictions)

    @property
    def y(self) -> np.ndarray:
        return self.ds.y

    @property
    def members(self) -> np.ndarray:
        return self.audit[self.is_member]

    @property
    def nonmembers(self) -> np.ndarray:
        return self.audit[~self.is_member]

    def sensitive(self, rows: np.ndarray) -> pd.DataFrame:
        return self.ds.sensitive.iloc[rows].reset_index(drop=True)

    def split_summary(self) -> dict[str, int | str]:
        return {"members": len(self.members), "nonmembers": len(self.nonmembers),
                "population": len(self.population), "membership": self.membership}  # fmt: skip


def _user_table(cfg: AuditConfig) -> tuple[pd.DataFrame, str]:
    d = cfg.data
    parts = [("member", d.train), ("holdout", d.holdout), ("population", d.population)]
    frames = []
    for role, path in parts:
        if path is None:
            continue
        df = read_table(path)
        if _ROLE in df.columns:
            raise DataValidationError(f"'{path}' has a column named {_ROLE}; rename it.")
        frames.append(df.assign(**{_ROLE: role}))
    cols = [list(f.columns) for f in frames]
    if any(c != cols[0] for c in cols):
        raise DataValidationError(
            "The train, holdout and population files must have the same columns; they differ in "
            f"{sorted(set().union(*map(set, cols)) - set.intersection(*map(set, cols)))}."
        )
    return pd.concat(frames, ignore_index=True), Path(d.train or "data").name


def _roles(cfg: AuditConfig, df: pd.DataFrame) -> np.ndarray:
    col = cfg.data.member_column
    if col is None:
        return df[_ROLE].to_numpy()
    if col not in df.columns:
        raise DataValidationError(f"The member column '{col}' is not in the data.")
    v = df[col]
    if v.isna().any():
        raise DataValidationError(
            f"The member column '{col}' has {int(v.isna().sum())} missing value(s); mark every row "
            "as trained on (1) or not (0)."
        )
    member = v.astype(str).str.strip().str.lower().isin(_TRUE).to_numpy()
    return np.where(member, "member", "holdout")


def _predictions_columns(cfg: AuditConfig, df: pd.DataFrame | None) -> list[str]:
    """Prediction columns of the data that are not features."""
    if df is None:
        return []
    return [m.predictions for m in cfg.models if m.predictions is not None and m.predictions in df.columns]


def prepare_data(
    cfg: AuditConfig, dataset: TabularDataset | None = None, membership: np.ndarray | None = None
) -> AuditData:
    """Load and validate the data, split it (or read the user's membership), build the inputs.

    ``dataset`` replaces ``cfg.data``'s source; ``membership`` gives each of its rows' role
    ("member", "holdout", "population", or booleans: member or holdout)."""
    d = cfg.data
    notes: list[str] = []
    roles = None
    kept: dict[str, np.ndarray] = {}
    if dataset is not None:
        ds = dataset
        if membership is not None:
            roles = np.asarray(membership)
            if roles.dtype == bool:
                roles = np.where(roles, "member", "holdout")
            if roles.shape != (len(ds),) or not set(np.unique(roles)) <= {"member", "holdout", "population"}:
                raise DataValidationError(
                    f"membership must give each of the {len(ds)} rows 'member', 'holdout' or 'population'."
                )
    elif d.train is not None:
        df, name = _user_table(cfg)
        pred_cols = _predictions_columns(cfg, df)
        drop = [*d.drop, _ROLE, *pred_cols]
        ds = load_table(df, label=d.label or "", protected=d.protected, positive=d.positive,
                        bins=d.bins, drop=drop, include_protected=d.include_protected,
                        min_group_size=d.min_group_size, missing=d.missing, keep=d.keep,
                        auto_drop=d.auto_drop)  # fmt: skip
        ds = _renamed(ds, name)
        roles = df[_ROLE].to_numpy()[ds.source_rows]
        kept = {c: df[c].to_numpy()[ds.source_rows] for c in pred_cols}
    else:
        raw = read_table(d.dataset) if d.dataset and Path(d.dataset).exists() else None
        pred_cols = _predictions_columns(cfg, raw)
        extra_drop = ([d.member_column] if d.member_column else []) + pred_cols
        ds = resolve_dataset(
            d.dataset, label=d.label, positive=d.positive, protected=d.protected or None,
            bins=d.bins, drop=[*d.drop, *extra_drop], include_protected=d.include_protected,
            min_group_size=d.min_group_size, missing=d.missing, keep=d.keep, auto_drop=d.auto_drop,
        )  # fmt: skip
        if d.member_column:
            if raw is None:
                raise DataValidationError("data.member_column needs your own data file, not a bundled dataset.")
            roles = _roles(cfg, raw)[ds.source_rows]
        if raw is not None:
            kept = {c: raw[c].to_numpy()[ds.source_rows] for c in pred_cols}
    if roles is None:
        split = make_audit_split(
            len(ds), seed=named_seed(cfg.seed, "split"), audit_fraction=cfg.split.audit_fraction,
            max_audit=cfg.split.max_audit, stratify=ds.y,
        )  # fmt: skip
        members, nonmembers, population = split.members, split.nonmembers, split.population
        membership = "split"
    else:
        members = np.flatnonzero(roles == "member")
        holdout = np.flatnonzero(roles == "holdout")
        population = np.flatnonzero(roles == "population")
        if len(population) == 0:
            perm = np.random.default_rng(named_seed(cfg.seed, "holdout split")).permutation(holdout)
            half = len(perm) // 2
            nonmembers, population = np.sort(perm[:half]), np.sort(perm[half:])
            notes.append(
                f"The holdout rows were split at random into {len(nonmembers):,} non-members (audited) "
                f"and {len(population):,} population rows (the attacker's own data)."
            )
        else:
            nonmembers = holdout
        if len(members) == 0 or len(nonmembers) == 0:
            raise DataValidationError(
                f"The membership leaves {len(members)} members and {len(nonmembers)} non-members; "
                "an audit needs both (and some population rows)."
            )
        membership = "given"
    if len(population) < 2:
        raise DataValidationError(
            f"Only {len(population)} population rows are left for the attacker's reference data; "
            "use more rows, a smaller audit_fraction, or give a population file."
        )
    if ds.features.isna().any().any():
        # data.missing = "impute": fitted on the population rows (public to the attacker), like
        # the encoding, so the members' values shape nothing the models read.
        ds, imputed = impute_features(ds, population)
        notes += imputed
    fitted_pre: list[TabularPreprocessor] = []

    def encode(frame: pd.DataFrame) -> np.ndarray:
        if not fitted_pre:
            fitted_pre.append(TabularPreprocessor().fit(ds.features.iloc[population]))
        return fitted_pre[0].transform(frame)

    def make_matrix() -> np.ndarray:
        return encode(ds.features)

    inputs = Inputs(frame=ds.features, y=ds.y, sensitive=ds.sensitive, raw=ds.raw,
                    make_matrix=make_matrix, encode=encode, public=population)  # fmt: skip
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(ds.features, index=False).to_numpy().tobytes())
    h.update(pd.util.hash_pandas_object(ds.sensitive, index=False).to_numpy().tobytes())
    for arr in (ds.y, members, nonmembers, population):
        h.update(np.ascontiguousarray(arr).tobytes())
    audit = np.concatenate([members, nonmembers])
    is_member = np.r_[np.ones(len(members), bool), np.zeros(len(nonmembers), bool)]
    return AuditData(ds, inputs, audit, is_member, population, h.hexdigest()[:32], membership,
                     notes, kept)  # fmt: skip


def _renamed(ds: TabularDataset, name: str) -> TabularDataset:
    from dataclasses import replace

    return replace(ds, name=name)
