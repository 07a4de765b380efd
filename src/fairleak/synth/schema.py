"""What a synthesiser may know about a table before it reads a private row: the schema.

Every preprocessing statistic fitted on private rows is a release (ALGORITHMS-2.md section 3.1).
Category lists and numeric bounds therefore come from a **public schema**: for a bundled dataset
the published file's codebook (the complete public file, not the rows trained on), for a user
file a JSON file (``--schema``). Numeric columns are then cut into quantile bins read from a
Gaussian-noised histogram over the public bounds (:class:`TableEncoder`, its own small share of
epsilon). A schema read from the private rows themselves (:meth:`TableSchema.infer`) is allowed
but marked ``public=False``, and the privacy section of every report says "preprocessing not
private".
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairleak.errors import DataValidationError

__all__ = ["ColumnSpec", "TableEncoder", "TableSchema", "bundled_schema", "pre_noise_multiplier"]

#: An integer column with at most this many public values is categorical (no bins, no budget).
MAX_INTEGER_LEVELS = 32
#: Fine grid of the noisy histogram numeric bins are read from (cell 0 is the lower bound itself).
FINE_CELLS = 200


@dataclass(frozen=True)
class ColumnSpec:
    """One column: categorical with its public ``categories``, or numeric within public
    ``bounds`` (``integer``: values are whole numbers)."""

    name: str
    kind: Literal["categorical", "numeric"]
    categories: tuple[str, ...] = ()
    bounds: tuple[float, float] | None = None
    integer: bool = False

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "categorical":
            return {"type": "categorical", "categories": list(self.categories)}
        assert self.bounds is not None
        return {"type": "numeric", "min": self.bounds[0], "max": self.bounds[1], "integer": self.integer}


@dataclass(frozen=True)
class TableSchema:
    """Column specs in table order; ``public``: known without reading the private rows;
    ``source``: where it came from (shown in reports)."""

    columns: tuple[ColumnSpec, ...]
    public: bool
    source: str

    def __getitem__(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def select(self, names: Sequence[str]) -> TableSchema:
        return TableSchema(tuple(self[n] for n in names), self.public, self.source)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "public": self.public,
                "columns": {c.name: c.to_dict() for c in self.columns}}  # fmt: skip

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "user schema") -> TableSchema:
        """``{"columns": {"age": {"type": "numeric", "min": 17, "max": 90, "integer": true},
        "sex": {"type": "categorical", "categories": ["Female", "Male"]}}}``."""
        cols = raw.get("columns") if isinstance(raw, Mapping) else None
        if not isinstance(cols, Mapping) or not cols:
            raise DataValidationError(
                f"The schema ({source}) must be a mapping with a non-empty 'columns' mapping "
                '(column -> {"type": "categorical", "categories": [...]} or {"type": "numeric", '
                '"min": ..., "max": ...}).'
            )
        specs = []
        for name, spec in cols.items():
            kind = spec.get("type") if isinstance(spec, Mapping) else None
            if kind == "categorical":
                cats = spec.get("categories")
                if not isinstance(cats, list) or not cats:
                    raise DataValidationError(f"Schema column '{name}': 'categories' must be a non-empty list.")
                specs.append(ColumnSpec(str(name), "categorical", tuple(str(c) for c in cats)))
            elif kind == "numeric":
                lo, hi = spec.get("min"), spec.get("max")
                if not all(isinstance(v, int | float) and math.isfinite(v) for v in (lo, hi)) or lo >= hi:
                    raise DataValidationError(
                        f"Schema column '{name}': numeric columns need finite 'min' < 'max'; got {lo!r}, {hi!r}."
                    )
                specs.append(ColumnSpec(str(name), "numeric", bounds=(float(lo), float(hi)),
                                        integer=bool(spec.get("integer", False))))  # fmt: skip
            else:
                raise DataValidationError(
                    f"Schema column '{name}': 'type' must be 'categorical' or 'numeric'; got {kind!r}."
                )
        return cls(tuple(specs), True, source)

    @classmethod
    def from_json(cls, path: str | Path) -> TableSchema:
        p = Path(path)
        if not p.exists():
            raise DataValidationError(f"The schema file '{p}' does not exist.")
        try:
            raw = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise DataValidationError(f"The schema file '{p}' is not valid JSON: {exc}.") from None
        return cls.from_dict(raw, source=f"schema file {p.name}")

    @classmethod
    def infer(cls, df: pd.DataFrame, *, public: bool = False, source: str | None = None) -> TableSchema:
        """Read the schema from ``df``. From private rows this is a release that no epsilon
        covers: the result is marked ``public=False`` unless ``df`` is public data."""
        specs = []
        for c in df.columns:
            s = df[c]
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                v = s.to_numpy(dtype=np.float64)
                if not np.isfinite(v).all():
                    raise DataValidationError(
                        f"Column '{c}' has {int((~np.isfinite(v)).sum())} missing or infinite value(s); "
                        "remove or impute them first."
                    )
                lo, hi = float(v.min()), float(v.max())
                integer = bool(np.all(v == np.round(v)))
                if hi <= lo:
                    hi = lo + 1.0
                specs.append(ColumnSpec(str(c), "numeric", bounds=(lo, hi), integer=integer))
            else:
                cats = sorted({str(x) for x in s.astype(str)})
                specs.append(ColumnSpec(str(c), "categorical", tuple(cats)))
        return cls(tuple(specs), public, source or ("public data" if public else "read from the private rows"))


def bundled_schema(name: str, columns: Sequence[str] | None = None) -> TableSchema:
    """The public schema of a bundled dataset: category lists and numeric ranges of the complete
    published file (its codebook), independent of which rows a synthesiser trains on."""
    from fairleak.data import DATASETS

    info = DATASETS[name]
    assert info.loader is not None
    raw, _ = info.loader()
    raw = raw.dropna()
    if columns is not None:
        raw = raw[list(columns)]
    return TableSchema.infer(raw, public=True, source=f"codebook of the published {name} file")


def pre_noise_multiplier(epsilon: float, delta: float) -> float:
    """Noise multiplier of a one-off Gaussian release given ``epsilon`` of the budget: the
    classical calibration ``sqrt(2 ln(1.25 / delta)) / epsilon`` (Dwork & Roth 2014, Thm A.1).
    This only *chooses* the noise; what it costs is accounted with the rest, by Opacus's
    accountant on the actual multiplier (Opacus's own calibration cannot reach the small
    shares used here: its RDP orders stop at 256)."""
    return float(math.sqrt(2 * math.log(1.25 / delta)) / epsilon)


@dataclass
class _Column:
    spec: ColumnSpec
    levels: list[Any]  # decoded value of each code (categorical / integer levels)
    edges: np.ndarray | None = None  # numeric bins: [n_bins + 1]
    fine_edges: np.ndarray | None = None  # fine grid (cell 0 = the lower bound itself)
    fine_mass: np.ndarray | None = None  # noisy mass per fine cell (post-processing)

    @property
    def size(self) -> int:
        return len(self.levels) if self.edges is None else len(self.edges) - 1


@dataclass
class TableEncoder:
    """All columns as categorical codes (numeric = bin index), from a schema and, for numeric
    bins, a Gaussian-noised histogram (``noise_multiplier``; 0 = exact, used when no epsilon is
    asked for). ``cardinalities`` give the one-hot width ``sum(C_j)``."""

    schema: TableSchema
    n_bins: int = 20
    columns: list[_Column] = field(default_factory=list)
    noise_multiplier: float = 0.0
    binned: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fit(self, df: pd.DataFrame, *, noise_multiplier: float = 0.0, rng: np.random.Generator) -> TableEncoder:
        """Fit the bins of numeric columns. The release: one noisy fine histogram per binned
        column; a record adds 1 to one cell of each, so the joint L2 sensitivity is
        sqrt(#binned columns) and every cell gets noise ``noise_multiplier * sqrt(#binned)``."""
        self._check(df)
        self.noise_multiplier = float(noise_multiplier)
        need = [c for c in self.schema.columns if c.kind == "numeric" and not self._integer_levels(c)]
        self.binned = [c.name for c in need]
        scale = self.noise_multiplier * math.sqrt(max(len(need), 1))
        self.columns = []
        for spec in self.schema.columns:
            if spec.kind == "categorical":
                self.columns.append(_Column(spec, list(spec.categories)))
            elif (levels := self._integer_levels(spec)) is not None:
                self.columns.append(_Column(spec, levels))
            else:
                self.columns.append(self._bins(spec, df[spec.name].to_numpy(np.float64), scale, rng))
        return self

    def _integer_levels(self, spec: ColumnSpec) -> list[int] | None:
        if spec.kind != "numeric" or not spec.integer or spec.bounds is None:
            return None
        lo, hi = math.ceil(spec.bounds[0]), math.floor(spec.bounds[1])
        return list(range(lo, hi + 1)) if hi - lo + 1 <= MAX_INTEGER_LEVELS else None

    def _bins(self, spec: ColumnSpec, v: np.ndarray, scale: float, rng: np.random.Generator) -> _Column:
        assert spec.bounds is not None
        lo, hi = spec.bounds
        # cell 0 holds the lower bound exactly (zeros of capital gains), cells 1.. split (lo, hi]
        inner = np.linspace(lo, hi, FINE_CELLS)  # cell c >= 1 spans (inner[c-1], inner[c]]
        vc = np.clip(v, lo, hi)
        cell = np.where(vc <= lo, 0, np.clip(np.searchsorted(inner, vc, side="left"), 1, FINE_CELLS - 1))
        counts = np.bincount(cell, minlength=FINE_CELLS).astype(np.float64)
        if scale > 0:
            counts = counts + rng.normal(0.0, scale, FINE_CELLS)
        mass = np.clip(counts, 0, None)
        if mass.sum() <= 0:
            mass = np.ones(FINE_CELLS)
        cdf = np.maximum.accumulate(np.cumsum(mass) / mass.sum())  # monotone by construction
        # bin boundaries = fine cells where the noisy CDF crosses k / n_bins
        cuts = np.unique(np.searchsorted(cdf, np.arange(1, self.n_bins) / self.n_bins, side="left"))
        cuts = cuts[(cuts >= 0) & (cuts < FINE_CELLS - 1)]
        edges = np.unique(np.r_[-1, cuts, FINE_CELLS - 1])  # in fine-cell units: bin b = (e_b, e_{b+1}]
        return _Column(spec, [], edges=edges, fine_edges=inner, fine_mass=mass)

    def _check(self, df: pd.DataFrame) -> None:
        missing = [c for c in self.schema.names if c not in df.columns]
        if missing:
            raise DataValidationError(f"The data lacks the schema's column(s) {missing}.")
        for spec in self.schema.columns:
            s = df[spec.name]
            if s.isna().any():
                raise DataValidationError(
                    f"Column '{spec.name}' has {int(s.isna().sum())} missing value(s); the synthesiser "
                    "does not drop rows silently: remove or impute them first."
                )
            if spec.kind == "categorical":
                bad = sorted(set(s.astype(str)) - set(spec.categories))
                if bad:
                    raise DataValidationError(
                        f"Column '{spec.name}' has value(s) {bad[:5]} that the schema ({self.schema.source}) "
                        f"does not list; add them to its categories {list(spec.categories)[:8]}..."
                    )
            else:
                try:
                    v = s.to_numpy(np.float64)
                except (TypeError, ValueError):
                    raise DataValidationError(
                        f"Column '{spec.name}' is numeric in the schema but holds non-numbers."
                    ) from None
                assert spec.bounds is not None
                out = int(((v < spec.bounds[0]) | (v > spec.bounds[1])).sum())
                if out:
                    self.notes.append(
                        f"{out} value(s) of '{spec.name}' outside the schema's bounds {spec.bounds} were clipped to them."
                    )

    @property
    def cardinalities(self) -> list[int]:
        return [c.size for c in self.columns]

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """Codes [N, J] int64."""
        self._check(df)
        out = np.empty((len(df), len(self.columns)), dtype=np.int64)
        for j, col in enumerate(self.columns):
            s = df[col.spec.name]
            if col.edges is None:
                keys = [str(x) for x in col.levels] if col.spec.kind == "categorical" else col.levels
                index = {k: i for i, k in enumerate(keys)}
                vals = s.astype(str) if col.spec.kind == "categorical" else np.round(s.to_numpy(np.float64)).astype(int)
                lo = min(col.levels) if col.spec.kind == "numeric" else None
                if col.spec.kind == "numeric":
                    out[:, j] = np.clip(np.asarray(vals) - lo, 0, len(col.levels) - 1)
                else:
                    out[:, j] = [index[v] for v in vals]
            else:
                assert col.fine_edges is not None and col.spec.bounds is not None
                lo, hi = col.spec.bounds
                v = np.clip(s.to_numpy(np.float64), lo, hi)
                inner = col.fine_edges
                cell = np.where(v <= lo, 0, np.clip(np.searchsorted(inner, v, side="left"), 1, FINE_CELLS - 1))
                out[:, j] = np.clip(np.searchsorted(col.edges, cell, side="left") - 1, 0, col.size - 1)
        return out

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """Values from codes: categories as strings, integer levels as ints, numeric bins by
        drawing a fine cell in proportion to the noisy histogram, then uniformly inside it."""
        data: dict[str, Any] = {}
        for j, col in enumerate(self.columns):
            c = np.asarray(codes[:, j], dtype=np.int64)
            if col.edges is None:
                data[col.spec.name] = np.asarray(col.levels, dtype=object if col.spec.kind == "categorical" else np.int64)[c]
                continue
            assert col.fine_mass is not None and col.fine_edges is not None
            vals = np.empty(len(c))
            for b in np.unique(c):
                sel = np.flatnonzero(c == b)
                cells = np.arange(col.edges[b] + 1, col.edges[b + 1] + 1)
                w = col.fine_mass[cells]
                w = np.ones(len(cells)) / len(cells) if w.sum() <= 0 else w / w.sum()
                pick = rng.choice(cells, size=len(sel), p=w)
                left = col.fine_edges[np.maximum(pick - 1, 0)]
                right = col.fine_edges[pick]
                u = rng.random(len(sel))
                vals[sel] = np.where(pick == 0, col.fine_edges[0], left + u * (right - left))
            if col.spec.integer:
                data[col.spec.name] = np.round(vals).astype(np.int64)
            else:
                data[col.spec.name] = vals
        return pd.DataFrame(data)
