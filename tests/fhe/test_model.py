"""Folding a trained model into the polynomial the server evaluates (no TenSEAL needed)."""

import numpy as np
import pytest

from fairleak.errors import DataValidationError, ParameterError
from fairleak.fhe import PolynomialModel
from fairleak.train import TrainConfig, train_ensemble


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 6)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] ** 2 + 0.3 * rng.normal(size=600) > -0.5).astype(np.int64)
    return X, y


def _train(X, y, **cfg):
    config = TrainConfig(epochs=3, lr=1e-2, **cfg)
    return train_ensemble(X, y, np.ones((2, len(y)), bool), config=config, seed=3)


@pytest.mark.parametrize(("hidden", "depth"), [((), 1), ((8,), 2), ((5, 4), 4)])
def test_folded_margin_equals_the_trained_models_logit_difference(data, hidden, depth):
    X, y = data
    ens = _train(X, y, hidden=hidden, activation="square")
    poly = PolynomialModel.from_ensemble(ens, index=1)
    logits = ens.predict_logits(X)[1].astype(np.float64)
    ref = logits[:, 1] - logits[:, 0]
    np.testing.assert_allclose(poly.margin(X), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert poly.depth == depth
    assert poly.to_dict()["layer_widths"][0] == 6


def test_dead_and_constant_units_are_folded_away_exactly():
    rng = np.random.default_rng(1)
    W1, b1 = rng.normal(size=(3, 4)), rng.normal(size=4)
    W1[:, 1] = 0.0  # unit 1: constant b1[1]
    W2, b2 = rng.normal(size=(4, 2)), rng.normal(size=2)
    W2[2] = [0.7, 0.7]  # unit 2: equal weights to both logits, no effect on the margin
    X = rng.normal(size=(50, 3))
    z = (X @ W1 + b1) ** 2 @ W2 + b2
    poly = PolynomialModel.from_layers([W1, W2], [b1, b2])
    np.testing.assert_allclose(poly.margin(X), z[:, 1] - z[:, 0], rtol=1e-12, atol=1e-12)
    assert poly.weights[0].shape == (3, 2) and poly.n_squares == 2  # units 1 and 2 gone
    assert poly.n_plaintext_multiplications == 6


def test_relu_model_is_refused_with_a_message_naming_square(data):
    X, y = data
    ens = _train(X, y, hidden=(4,), activation="relu")
    with pytest.raises(
        ParameterError, match=r"activation='relu'.*TrainConfig\(activation='square'\)"
    ):
        PolynomialModel.from_ensemble(ens)
    with pytest.raises(ParameterError, match=r"'index' parameter .* \[0, 1\]\. Got 2"):
        PolynomialModel.from_ensemble(ens, index=2)


def test_margin_checks_the_feature_count(data):
    X, y = data
    poly = PolynomialModel.from_ensemble(_train(X, y, hidden=()))
    with pytest.raises(DataValidationError, match=r"shape \[n_rows, 6\]; got \(3, 5\)"):
        poly.margin(np.zeros((3, 5)))
