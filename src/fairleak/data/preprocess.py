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


class TabularPreprocessor(TransformerMixin, BaseEstimator):
    """One-hot encode categorical columns and standardise numeric ones (a scikit-learn transformer).

    Categories unseen at fit time encode as all zeros (``handle_unknown="ignore"``), so a
    non-member or population row never crashes the transform. Output is float32, the dtype the
    trainer uses. Boolean and text columns count as categorical. It takes a DataFrame and can sit
    in a scikit-learn ``Pipeline``; the fitted ``column_transformer_`` is a plain
    ``ColumnTransformer`` (for export tools such as skl2onnx).

    Attributes:
        numeric_, categorical_: the column names of each kind.
        column_transformer_: the fitted ``ColumnTransformer``.
    """

    def fit(self, X: pd.DataFrame, y: Any = None) -> TabularPreprocessor:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"TabularPreprocessor takes a pandas DataFrame (named columns); got {type(X).__name__}."
            )
        self.numeric_ = [
            c
            for c in X.columns
            if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
        ]
        self.categorical_ = [c for c in X.columns if c not in self.numeric_]
        self.column_transformer_ = ColumnTransformer(
            [
                ("num", StandardScaler(), self.numeric_),
                (
                    "cat",
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32),
                    self.categorical_,
                ),
            ],
            sparse_threshold=0.0,
        )
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
