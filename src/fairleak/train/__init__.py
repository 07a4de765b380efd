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

__all__ = [
    "ACTIVATIONS",
    "FAIRNESS_PENALTIES",
    "DPConfig",
    "Ensemble",
    "FairnessConfig",
    "TrainConfig",
    "TrainShard",
    "clipped_gradient_sum",
    "compute_epsilon",
    "model_seeds",
    "noise_multiplier_for",
    "train_ensemble",
    "train_shard",
]
