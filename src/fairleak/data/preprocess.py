"""Preprocessing fitted on training rows only: one-hot categoricals, standardised numerics."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

__all__ = ["TabularPreprocessor"]


class TabularPreprocessor:
    """One-hot encode categorical columns and standardise numeric ones, fitted on training rows.

    Categories unseen at fit time encode as all zeros (``handle_unknown="ignore"``), so a
    non-member or population row never crashes the transform. Output is float32, the dtype the
    trainer uses. Boolean columns count as categorical.
    """

    def __init__(self) -> None:
        self._ct: ColumnTransformer | None = None
        self.numeric_: list[str] = []
        self.categorical_: list[str] = []

    def fit(self, features: pd.DataFrame) -> TabularPreprocessor:
        self.numeric_ = [
            c
            for c in features.columns
            if pd.api.types.is_numeric_dtype(features[c])
            and not pd.api.types.is_bool_dtype(features[c])
        ]
        self.categorical_ = [c for c in features.columns if c not in self.numeric_]
        self._ct = ColumnTransformer(
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
        self._ct.fit(self._as_input(features))
        return self

    def _as_input(self, features: pd.DataFrame) -> pd.DataFrame:
        out = features.copy()
        for c in self.categorical_:
            out[c] = out[c].astype(str)
        return out

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        if self._ct is None:
            raise RuntimeError("This TabularPreprocessor is not fitted yet; call fit first.")
        return np.ascontiguousarray(self._ct.transform(self._as_input(features)), dtype=np.float32)

    def fit_transform(self, features: pd.DataFrame) -> np.ndarray:
        return self.fit(features).transform(features)

    @property
    def feature_names_out(self) -> list[str]:
        if self._ct is None:
            raise RuntimeError("This TabularPreprocessor is not fitted yet; call fit first.")
        return [str(n) for n in self._ct.get_feature_names_out()]
