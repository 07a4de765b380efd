"""Preprocessing for fairleak's own models: one-hot categoricals, standardised numerics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

__all__ = ["TabularPreprocessor"]


class _BoundsScaler(TransformerMixin, BaseEstimator):
    """Scale numeric columns from declared public bounds [lo, hi] to [-1, 1] (clipped): reads
    nothing from the data it is fitted on (a declared schema, so no private statistic leaks)."""

    def __init__(self, bounds: list[tuple[float, float]] | None = None) -> None:
        self.bounds = bounds

    def fit(self, X: Any, y: Any = None) -> _BoundsScaler:
        b = np.asarray(self.bounds, dtype=np.float64).reshape(-1, 2)
        self.center_ = (b[:, 0] + b[:, 1]) / 2
        self.half_ = np.maximum((b[:, 1] - b[:, 0]) / 2, 1e-12)
        return self

    def transform(self, X: Any) -> np.ndarray:
        z = (np.asarray(X, dtype=np.float64) - self.center_) / self.half_
        return np.clip(z, -1.0, 1.0).astype(np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


class TabularPreprocessor(TransformerMixin, BaseEstimator):
    """One-hot encode categorical columns and standardise numeric ones (a scikit-learn transformer).

    Categories unseen at fit time encode as all zeros (``handle_unknown="ignore"``), so a
    non-member or population row never crashes the transform. Output is float32, the dtype the
    trainer uses. Boolean and text columns count as categorical. It takes a DataFrame and can sit
    in a scikit-learn ``Pipeline``; the fitted ``column_transformer_`` is a plain
    ``ColumnTransformer`` (for export tools such as skl2onnx).

    A **declared schema** makes the encoding public (for DP training, whose epsilon does not
    cover statistics read from the private rows): ``categories={"sex": ["Female", "Male"], ...}``
    fixes a categorical column's vocabulary, ``bounds={"age": (17, 90), ...}`` scales a numeric
    column from its public range to [-1, 1] (values outside are clipped). Declared columns read
    nothing from the rows ``fit`` sees; ``fitted_from_data_`` lists the columns that did (empty
    when everything is declared). Declared-bounds columns are not exportable to ONNX.

    Attributes:
        numeric_, categorical_: the column names of each kind.
        fitted_from_data_: columns whose encoding was learnt from the fitted rows.
        column_transformer_: the fitted ``ColumnTransformer``.
    """

    def __init__(
        self, categories: dict[str, list[Any]] | None = None, bounds: dict[str, tuple[float, float]] | None = None
    ) -> None:
        self.categories = categories
        self.bounds = bounds

    def fit(self, X: pd.DataFrame, y: Any = None) -> TabularPreprocessor:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"TabularPreprocessor takes a pandas DataFrame (named columns); got {type(X).__name__}."
            )
        cats, bounds = dict(self.categories or {}), dict(self.bounds or {})
        unknown = sorted(c for c in [*cats, *bounds] if c not in X.columns)
        if unknown:
            raise ValueError(
                f"TabularPreprocessor's schema names column(s) {unknown} that X lacks; columns: {list(X.columns)[:20]}."
            )
        self.numeric_ = [
            c
            for c in X.columns
            if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
        ]
        self.numeric_ = [c for c in self.numeric_ if c not in cats]  # a declared vocabulary wins
        self.categorical_ = [c for c in X.columns if c not in self.numeric_]
        bad = sorted(c for c in bounds if c not in self.numeric_)
        if bad:
            raise ValueError(f"TabularPreprocessor's bounds are for numeric columns; {bad} are not numeric.")
        num = [c for c in self.numeric_ if c not in bounds]
        num_b = [c for c in self.numeric_ if c in bounds]
        cat = [c for c in self.categorical_ if c not in cats]
        cat_d = [c for c in self.categorical_ if c in cats]
        parts: list[tuple[str, Any, list[str]]] = [
            ("num", StandardScaler(), num),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32), cat),
        ]
        if num_b:
            parts.insert(1, ("numb", _BoundsScaler([tuple(bounds[c]) for c in num_b]), num_b))
        if cat_d:
            parts.append(("catd", OneHotEncoder(categories=[[str(v) for v in cats[c]] for c in cat_d],
                                                handle_unknown="ignore", sparse_output=False, dtype=np.float32), cat_d))  # fmt: skip
        self.fitted_from_data_ = [*num, *cat]
        self.column_transformer_ = ColumnTransformer(parts, sparse_threshold=0.0)
        self.column_transformer_.fit(self._as_input(X))
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _as_input(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.copy()
        for c in self.categorical_:
            out[c] = out[c].astype(str)
        return out

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "column_transformer_")
        return np.ascontiguousarray(
            self.column_transformer_.transform(self._as_input(X)), dtype=np.float32
        )

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "column_transformer_")
        return self.column_transformer_.get_feature_names_out()

    @property
    def feature_names_out(self) -> list[str]:
        """Output column names (``num__age``, ``cat__sex_Female``, ...)."""
        return [str(n) for n in self.get_feature_names_out()]
