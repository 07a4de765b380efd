"""Training: the vectorised ensemble trainer, fairness penalties, DP-SGD and DP-SGD-S, estimators."""

from fairleak.train.config import (
    ACTIVATIONS,
    FAIRNESS_PENALTIES,
    DPConfig,
    FairnessConfig,
    TrainConfig,
    group_columns,
)
from fairleak.train.dp import compute_epsilon, noise_multiplier_for
from fairleak.train.estimator import PARAMETER_MAP, FairleakClassifier
from fairleak.train.fairboost import FairBoostClassifier
from fairleak.train.io import load_model, save_model
from fairleak.train.model import Ensemble, model_seeds
from fairleak.train.penalties import PENALTIES, Penalty, register_penalty
from fairleak.train.trainer import clipped_gradient_sum, train_ensemble

__all__ = [
    "ACTIVATIONS",
    "FAIRNESS_PENALTIES",
    "PARAMETER_MAP",
    "PENALTIES",
    "DPConfig",
    "Ensemble",
    "FairBoostClassifier",
    "FairleakClassifier",
    "FairnessConfig",
    "Penalty",
    "TrainConfig",
    "clipped_gradient_sum",
    "compute_epsilon",
    "group_columns",
    "load_model",
    "model_seeds",
    "noise_multiplier_for",
    "register_penalty",
    "save_model",
    "train_ensemble",
]
