"""A trained fairleak model rewritten as the polynomial the server evaluates on ciphertexts.

CKKS evaluates additions and multiplications only, so the model must be a polynomial: logistic
regression (``TrainConfig(hidden=())``) or an MLP whose hidden layers use CryptoNets' square
activation (Gilad-Bachrach et al. 2016; ``activation="square"``). The server returns one score
per record, the margin logit_1 - logit_0 (P(y=1) = sigmoid(margin); the decision is margin > 0).

The output layer is folded into the last hidden layer, which saves one level of depth: with
v = W_out[:, 1] - W_out[:, 0] and c = b_out[1] - b_out[0],
margin = sum_u v_u z_u^2 + c = sum_u sign(v_u) (sqrt|v_u| z_u)^2 + c, so scaling unit u's weights
and bias by sqrt|v_u| leaves only signed additions after the last square. Depth: 1 for logistic
regression (one plaintext multiplication), 2 per square layer (plaintext multiplication, then
the square), so a one-hidden-layer MLP fits N = 8192 (4 primes, 200 bits <= 218) instead of
N = 16384. Units that cannot change the output (zero output weight) are dropped and units with
all-zero input weights become constants folded into the next bias: the server then never
multiplies by an exact zero (which a context without the secret key cannot encrypt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fairleak.errors import DataValidationError, ParameterError

__all__ = ["PolynomialModel"]


@dataclass(frozen=True)
class PolynomialModel:
    """Affine layers with x^2 between them, ending in one score per record (the margin).

    ``weights[l]`` is [d_l, d_{l+1}] and ``biases[l]`` [d_{l+1}] (float64). With ``signs`` None
    (logistic regression) the single affine layer's one output is the margin; otherwise every
    layer is followed by x^2 and margin = sum_u signs_u h_u + ``offset`` over the last layer's
    squares h.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    signs: np.ndarray | None
    offset: float = 0.0

    @property
    def n_features(self) -> int:
        return int(self.weights[0].shape[0])

    @property
    def depth(self) -> int:
        """Multiplicative depth of the encrypted evaluation (the CKKS levels it consumes)."""
        return 1 if self.signs is None else 2 * len(self.weights)

    @property
    def n_plaintext_multiplications(self) -> int:
        """Ciphertext-by-scalar multiplications per batch (the server's main cost)."""
        return int(sum(np.count_nonzero(w) for w in self.weights))

    @property
    def n_squares(self) -> int:
        return 0 if self.signs is None else int(sum(w.shape[1] for w in self.weights))

    @classmethod
    def from_ensemble(cls, ensemble: Any, index: int = 0) -> PolynomialModel:
        """Model ``index`` of a fairleak :class:`~fairleak.train.Ensemble`, folded for CKKS."""
        if not 0 <= index < ensemble.n_models:
            raise ParameterError(
                f"The 'index' parameter must be an int in the range [0, {ensemble.n_models - 1}]. Got {index!r} instead."
            )
        ws = [w[index].double().numpy().copy() for w in ensemble.weights]
        bs = [b[index].double().numpy().copy() for b in ensemble.biases]
        activation = ensemble.config.activation
        if len(ws) > 1 and activation != "square":
            raise ParameterError(
                f"Encrypted inference evaluates polynomials only, and the hidden layers of this "
                f"model use activation={activation!r}, which CKKS cannot compute. Train it with "
                f"TrainConfig(activation='square') (CryptoNets' x^2) or hidden=() (logistic regression)."
            )
        return cls.from_layers(ws, bs)

    @classmethod
    def from_layers(cls, weights: list[np.ndarray], biases: list[np.ndarray]) -> PolynomialModel:
        """From plain affine layers (x^2 between them) ending in 2 logits."""
        if len(weights) != len(biases) or not weights:
            raise DataValidationError("weights and biases must be non-empty lists of equal length.")
        w_out, b_out = np.asarray(weights[-1], float), np.asarray(biases[-1], float)
        if w_out.ndim != 2 or w_out.shape[1] != 2 or b_out.shape != (2,):
            raise DataValidationError(
                f"The output layer must map to 2 logits; got weight shape {w_out.shape}."
            )
        v, c = w_out[:, 1] - w_out[:, 0], float(b_out[1] - b_out[0])
        if len(weights) == 1:  # logistic regression
            if not np.any(v):
                raise ParameterError(
                    "The model's score does not depend on its inputs (all weights 0)."
                )
            return cls((v[:, None].copy(),), (np.array([c]),), None, 0.0)
        ws = [np.asarray(w, float).copy() for w in weights[:-1]]
        bs = [np.asarray(b, float).copy() for b in biases[:-1]]
        keep = v != 0
        root = np.sqrt(np.abs(v[keep]))
        ws[-1], bs[-1] = ws[-1][:, keep] * root, bs[-1][keep] * root
        signs = np.sign(v[keep])
        # units with no input weight are the constant b_u: fold b_u^2 forward
        for layer in range(len(ws)):
            const = ~ws[layer].any(axis=0)
            if not const.any():
                continue
            sq = bs[layer][const] ** 2
            if layer + 1 < len(ws):
                bs[layer + 1] = bs[layer + 1] + sq @ ws[layer + 1][const]
                ws[layer + 1] = ws[layer + 1][~const]
            else:
                c += float(sq @ signs[const])
                signs = signs[~const]
            ws[layer], bs[layer] = ws[layer][:, ~const], bs[layer][~const]
        if any(w.shape[1] == 0 for w in ws):
            raise ParameterError(
                "The model's score does not depend on its inputs (a layer has no live unit)."
            )
        return cls(tuple(ws), tuple(bs), signs, c)

    def margin(self, X: np.ndarray) -> np.ndarray:
        """The plaintext score the encrypted evaluation computes (float64), for checking it."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise DataValidationError(
                f"X must have shape [n_rows, {self.n_features}]; got {X.shape}."
            )
        h = X
        for w, b in zip(self.weights, self.biases, strict=True):
            h = h @ w + b
            if self.signs is None:
                return h[:, 0]
            h = h * h
        return h @ self.signs + self.offset

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "logistic_regression" if self.signs is None else "square_mlp",
            # widths of the folded model: inputs, hidden units, 1 score (the margin)
            "layer_widths": [self.n_features, *(w.shape[1] for w in self.weights)]
            + ([] if self.signs is None else [1]),
            "depth": self.depth,
            "plaintext_multiplications": self.n_plaintext_multiplications,
            "squares": self.n_squares,
        }
