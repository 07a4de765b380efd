"""Which coordinates of an encoded record a user may change, and how.

A record is fairleak's encoding (:class:`~fairleak.data.TabularPreprocessor`): standardised
numeric columns and one-hot blocks. A :class:`PerturbationSpace` says which numeric coordinates
may move continuously (clipped to the range seen in reference data), which one-hot blocks may
switch between their valid categories (a block moves as a whole: one 1, the rest 0), and leaves
everything else fixed: protected attributes and any column the user declares immutable.
Distances are measured on the encoded record (standardised units; a category change moves two
coordinates by 1: sqrt(2) in L2, 1 in L-inf).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from fairleak.errors import DataValidationError

__all__ = ["Norm", "PerturbationSpace", "norm_of"]

Norm = Literal["l2", "linf"]


def norm_of(delta: np.ndarray, norm: Norm) -> np.ndarray:
    """Row norms of ``delta`` [N, D] (L2 or L-inf)."""
    if norm == "l2":
        return np.sqrt(np.einsum("nd,nd->n", delta, delta, dtype=np.float64))
    if norm == "linf":
        return np.abs(delta).max(axis=1).astype(np.float64) if delta.shape[1] else np.zeros(len(delta))
    raise DataValidationError(f"norm must be 'l2' or 'linf'; got {norm!r}.")


@dataclass(frozen=True)
class PerturbationSpace:
    """Mutable coordinates of encoded records [N, D].

    ``numeric``: indices of coordinates that move continuously; ``blocks``: index arrays of
    one-hot blocks that may switch category (``block_names`` names them); ``lower`` / ``upper``:
    bounds of every coordinate (numeric ones: the reference range; -inf / inf where unbounded).
    """

    n_features: int
    numeric: np.ndarray
    blocks: tuple[np.ndarray, ...] = ()
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    block_names: tuple[str, ...] = ()
    fixed: tuple[str, ...] = field(default=())  # names of columns held fixed (for reports)

    def __post_init__(self) -> None:
        num = np.asarray(self.numeric, dtype=np.int64).reshape(-1)
        object.__setattr__(self, "numeric", num)
        if len(num) and (num.min() < 0 or num.max() >= self.n_features):
            raise DataValidationError(
                f"numeric coordinates must lie in [0, {self.n_features}); got {num.min()}..{num.max()}."
            )
        for name in ("lower", "upper"):
            v = getattr(self, name)
            if v is not None:
                v = np.asarray(v, dtype=np.float64).reshape(-1)
                if len(v) != self.n_features:
                    raise DataValidationError(f"{name} must have {self.n_features} values; got {len(v)}.")
                object.__setattr__(self, name, v)

    # ---- construction
    @classmethod
    def all_numeric(
        cls, n_features: int, *, immutable: Sequence[int] = (), lower: Any = None, upper: Any = None
    ) -> PerturbationSpace:
        """Every coordinate numeric and mutable except the ``immutable`` indices."""
        keep = np.setdiff1d(np.arange(n_features), np.asarray(immutable, dtype=np.int64))
        return cls(n_features, keep, lower=lower, upper=upper)

    @classmethod
    def from_preprocessor(
        cls,
        preprocessor: Any,
        reference: np.ndarray | None = None,
        *,
        immutable: Sequence[str] = (),
        categorical: bool = True,
    ) -> PerturbationSpace:
        """The space of a fitted :class:`~fairleak.data.TabularPreprocessor`'s output.

        ``immutable``: raw column names held fixed (protected attributes that are features,
        columns a user cannot change); names the preprocessor does not know are refused.
        ``reference``: encoded rows whose range bounds the numeric coordinates (the population).
        ``categorical=False`` holds every one-hot block fixed.
        """
        numeric_cols = list(preprocessor.numeric_)
        cat_cols = list(preprocessor.categorical_)
        unknown = [c for c in immutable if c not in numeric_cols + cat_cols]
        if unknown:
            raise DataValidationError(
                f"immutable column(s) {unknown} are not features of the model; its features are "
                f"{numeric_cols + cat_cols}."
            )
        enc = preprocessor.column_transformer_.named_transformers_["cat"] if cat_cols else None
        n_num = len(numeric_cols)
        sizes = [len(c) for c in enc.categories_] if enc is not None else []
        D = n_num + sum(sizes)
        numeric = [i for i, c in enumerate(numeric_cols) if c not in immutable]
        blocks, names = [], []
        start = n_num
        for c, size in zip(cat_cols, sizes, strict=True):
            if categorical and c not in immutable and size > 1:
                blocks.append(np.arange(start, start + size))
                names.append(str(c))
            start += size
        lower = np.full(D, -np.inf)
        upper = np.full(D, np.inf)
        if reference is not None:
            ref = np.asarray(reference, dtype=np.float64)
            if ref.ndim != 2 or ref.shape[1] != D:
                raise DataValidationError(f"reference must be encoded rows [N, {D}]; got {ref.shape}.")
            lower[:n_num], upper[:n_num] = ref[:, :n_num].min(0), ref[:, :n_num].max(0)
        fixed = tuple(str(c) for c in immutable)
        return cls(D, np.asarray(numeric, dtype=np.int64), tuple(blocks), lower, upper, tuple(names), fixed)

    # ---- use
    @property
    def mask(self) -> np.ndarray:
        """1.0 on the continuously mutable coordinates, 0 elsewhere (float32 [D])."""
        m = np.zeros(self.n_features, dtype=np.float32)
        m[self.numeric] = 1.0
        return m

    def clip(self, X: np.ndarray) -> np.ndarray:
        """``X`` with its numeric coordinates clipped to the bounds."""
        if self.lower is None and self.upper is None:
            return X
        lo = -np.inf if self.lower is None else self.lower
        hi = np.inf if self.upper is None else self.upper
        return np.clip(X, lo, hi).astype(X.dtype, copy=False)

    def check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise DataValidationError(
                f"X must be encoded records [n_rows, {self.n_features}]; got shape {X.shape}."
            )
        return X

    def category_swaps(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every record with one mutable one-hot block switched to another valid category.

        Returns (rows [M, D], source record [M], block index [M]). A record whose block is all
        zeros (a category unseen when the encoding was fitted) gets each valid category.
        """
        rows, src, blk = [], [], []
        for b, idx in enumerate(self.blocks):
            cur = X[:, idx]
            for j, col in enumerate(idx):
                cand = cur[:, j] < 0.5  # records not already in this category
                if not cand.any():
                    continue
                R = X[cand].copy()
                R[:, idx] = 0.0
                R[:, col] = 1.0
                rows.append(R)
                src.append(np.flatnonzero(cand))
                blk.append(np.full(int(cand.sum()), b))
        if not rows:
            return np.zeros((0, self.n_features), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(rows), np.concatenate(src), np.concatenate(blk)

    def swap_cost(self, norm: Norm) -> float:
        """The distance one category change costs (two coordinates move by 1)."""
        return float(np.sqrt(2.0)) if norm == "l2" else 1.0
