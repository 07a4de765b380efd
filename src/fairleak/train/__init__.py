"""Training: the vectorised ensemble trainer, fairness penalties, DP-SGD and DP-SGD-S, estimators."""

from fairleak.train.config import (
    ACTIVATIONS,
    FAIRNESS_PENALTIES,
    DPConfig,
    FairnessConfig,
    TrainConfig,
)
from fairleak.train.dp import compute_epsilon, noise_multiplier_for
from fairleak.train.ensemble import (
    Ensemble,
    TrainShard,
    clipped_gradient_sum,
    model_seeds,
    train_ensemble,
    train_shard,
)
from fairleak.train.estimator import FairleakClassifier
from fairleak.train.io import load_model, save_model

__all__ = [
    "ACTIVATIONS",
    "FAIRNESS_PENALTIES",
    "DPConfig",
    "Ensemble",
    "FairleakClassifier",
    "FairnessConfig",
    "TrainConfig",
    "TrainShard",
    "clipped_gradient_sum",
    "compute_epsilon",
    "load_model",
    "model_seeds",
    "noise_multiplier_for",
    "save_model",
    "train_ensemble",
    "train_shard",
]
