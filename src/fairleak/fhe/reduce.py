"""The DCT-CryptoNets idea for tables: encrypt fewer, more informative inputs.

DCT-CryptoNets (Roy & Roy 2024, arXiv 2408.15231) cuts the cost of encrypted image inference by
keeping the low-frequency DCT coefficients only: the transform runs on the client in plaintext,
the network computes on fewer encrypted inputs. With column packing the cost here is linear in
the number of inputs (one ciphertext and, per first-layer unit, one multiply-add per input), so
k inputs instead of d cut the client's encryption and the server's first layer by d / k.

For tables the analogue of the DCT (itself close to the principal components of natural images)
is a projection fitted on PUBLIC rows only: principal components (``method="pca"``) or the k
features with the largest ANOVA F statistic against the public labels (``method="f_classif"``).
Fitted on public rows, handing the transform to every client reveals nothing about the training
rows. Outputs are clipped to the public rows' range: bounded inputs keep pre-activations and
scores within the range that CKKS decrypts correctly, whatever a client sends.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.utils.validation import check_is_fitted, validate_data

from fairleak.errors import ParameterError

__all__ = ["PublicReduction"]

METHODS = ("pca", "f_classif")


class PublicReduction(TransformerMixin, BaseEstimator):
    """Project preprocessed rows onto ``n_components`` inputs, fitted on public rows; clip.

    Args:
        n_components: inputs kept (None: all columns, only clipped).
        method: ``"pca"`` (principal components; ``random_state`` for its randomised solver)
            or ``"f_classif"`` (top-k columns by ANOVA F against the public labels ``y``).
        clip: clip outputs to the per-column [min, max] of the public rows.

    Attributes:
        transformer_: the fitted scikit-learn ``PCA`` / ``SelectKBest`` (None without reduction).
        lower_, upper_: the clipping bounds.
    """

    def __init__(
        self,
        n_components: int | None = None,
        *,
        method: str = "pca",
        clip: bool = True,
        random_state: int | None = 0,
    ) -> None:
        self.n_components = n_components
        self.method = method
        self.clip = clip
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> PublicReduction:
        X = validate_data(self, X, dtype=np.float64)
        if self.method not in METHODS:
            raise ParameterError(
                f"The 'method' parameter of PublicReduction must be one of {METHODS}. Got {self.method!r} instead."
            )
        k = self.n_components
        if k is not None and (
            isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= X.shape[1]
        ):
            raise ParameterError(
                f"The 'n_components' parameter of PublicReduction must be an int in the range "
                f"[1, {X.shape[1]}] (the number of columns) or None. Got {k!r} instead."
            )
        if k is None:
            self.transformer_ = None
        elif self.method == "pca":
            self.transformer_ = PCA(n_components=int(k), random_state=self.random_state).fit(X)
        else:
            if y is None:
                raise ParameterError(
                    "PublicReduction(method='f_classif') ranks columns against labels: pass the "
                    "public rows' labels as y."
                )
            with warnings.catch_warnings():
                # columns constant on the public rows (rare one-hot categories) have no F
                # statistic; SelectKBest ranks them last, which is what they deserve
                warnings.filterwarnings("ignore", "Features .* are constant", UserWarning)
                warnings.filterwarnings("ignore", category=RuntimeWarning)
                self.transformer_ = SelectKBest(f_classif, k=int(k)).fit(X, y)
        Z = X if self.transformer_ is None else self.transformer_.transform(X)
        self.lower_, self.upper_ = Z.min(axis=0), Z.max(axis=0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, ("lower_", "upper_"))
        X = validate_data(self, X, dtype=np.float64, reset=False)
        Z = X if self.transformer_ is None else self.transformer_.transform(X)
        return np.clip(Z, self.lower_, self.upper_) if self.clip else Z

    @property
    def n_outputs(self) -> int:
        check_is_fitted(self, ("lower_", "upper_"))
        return int(self.lower_.shape[0])
