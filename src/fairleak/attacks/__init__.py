"""Membership inference: scores, threshold / shadow / LiRA / RMIA attacks, metrics, per group."""

from fairleak.attacks.defences import restrict_output
from fairleak.attacks.fdmia import (
    FDMIAResult,
    fd_mia,
    fd_mia_features,
    run_fd_mia,
    shadow_pair_split,
)
from fairleak.attacks.group_risk import (
    GroupRiskResult,
    group_risk_from_scores,
    ipr_heldout,
    ipr_oracle,
    pa_alooa_masks,
    run_pa_alooa,
)
from fairleak.attacks.lira import lira_scores
from fairleak.attacks.metrics import AttackMetrics, attack_metrics, tpr_at_fpr
from fairleak.attacks.rmia import rmia_likelihood_ratio, rmia_scores, rmia_scores_direct
from fairleak.attacks.scores import (
    SCORE_NAMES,
    confidence_score,
    correctness_score,
    entropy_score,
    logit_scaled_confidence,
    loss_score,
    membership_score,
    modified_entropy_score,
)
from fairleak.attacks.shadow import ShadowAttack, shadow_features
from fairleak.attacks.suite import (
    ALL_ATTACKS,
    AttackResult,
    ReferenceModels,
    model_outputs,
    paired_half_masks,
    run_attacks,
    shadow_masks,
    train_reference_models,
)
from fairleak.attacks.threshold import ThresholdRule, best_threshold, threshold_for_fpr

__all__ = [
    "ALL_ATTACKS",
    "SCORE_NAMES",
    "AttackMetrics",
    "AttackResult",
    "FDMIAResult",
    "GroupRiskResult",
    "ReferenceModels",
    "ShadowAttack",
    "ThresholdRule",
    "attack_metrics",
    "best_threshold",
    "confidence_score",
    "correctness_score",
    "entropy_score",
    "fd_mia",
    "fd_mia_features",
    "group_risk_from_scores",
    "ipr_heldout",
    "ipr_oracle",
    "lira_scores",
    "logit_scaled_confidence",
    "loss_score",
    "membership_score",
    "model_outputs",
    "modified_entropy_score",
    "pa_alooa_masks",
    "paired_half_masks",
    "restrict_output",
    "rmia_likelihood_ratio",
    "rmia_scores",
    "rmia_scores_direct",
    "run_attacks",
    "run_fd_mia",
    "run_pa_alooa",
    "shadow_features",
    "shadow_masks",
    "shadow_pair_split",
    "threshold_for_fpr",
    "tpr_at_fpr",
    "train_reference_models",
]
