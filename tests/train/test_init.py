"""train_ensemble(init=...): models start from given weights (public pretraining)."""

import numpy as np
import pytest
import torch

from fairleak.data import make_synthetic
from fairleak.errors import ParameterError
from fairleak.train import DPConfig, TrainConfig, train_ensemble


@pytest.fixture(scope="module")
def data():
    ds = make_synthetic(600, n_features=6, seed=0)
    return ds.features.to_numpy(np.float32).copy(), ds.y


def test_models_start_from_init_and_keep_their_mechanism(data):
    X, y = data
    public, private = np.arange(300), np.arange(300, 600)
    cfg = TrainConfig(hidden=(8,), epochs=3, batch_size=32)
    pre = train_ensemble(X[public], y[public], np.ones((3, 300), bool), config=cfg, seed=1)
    dp = DPConfig(noise_multiplier=1.0, noise="reproducible")
    still = cfg.model_copy(update={"lr": 1e-9})  # a step too small to move the weights
    masks = np.ones((3, 300), bool)
    tuned = train_ensemble(X[private], y[private], masks, config=still, seed=2, dp=dp, init=pre)
    fresh = train_ensemble(X[private], y[private], masks, config=still, seed=2, dp=dp)
    for w_pre, w_tuned, w_fresh in zip(pre.weights, tuned.weights, fresh.weights, strict=True):
        torch.testing.assert_close(w_tuned, w_pre, rtol=0, atol=1e-6)
        assert not torch.allclose(w_fresh, w_pre, atol=1e-2)
    assert tuned.epsilon == fresh.epsilon  # the mechanism does not depend on where it starts
    moved = train_ensemble(X[private], y[private], masks, config=cfg, seed=2, dp=dp, init=pre)
    assert not torch.allclose(moved.weights[0], pre.weights[0], atol=1e-3)


def test_init_of_another_architecture_is_refused(data):
    X, y = data
    pre = train_ensemble(
        X, y, np.ones((2, len(y)), bool), config=TrainConfig(hidden=(4,), epochs=1)
    )
    with pytest.raises(ParameterError, match="'init' parameter must hold 2 models with layers"):
        train_ensemble(
            X, y, np.ones((2, len(y)), bool), config=TrainConfig(hidden=(8,), epochs=1), init=pre
        )
    with pytest.raises(ParameterError, match="must hold 3 models"):
        train_ensemble(
            X, y, np.ones((3, len(y)), bool), config=TrainConfig(hidden=(4,), epochs=1), init=pre
        )
