"""Membership inference: scores, attacks as registered functions of model outputs, metrics.

Nothing here trains a model (``fairleak.audit`` trains reference, shadow and game models for any
target); everything works on the outputs of any model with ``predict_proba``.
"""

from fairleak.attacks.base import (
    ATTACKS,
    Attack,
    AttackData,
    AttackResult,
    AttackScores,
    ModelOutputs,
    default_attacks,
    evaluate_attacks,
    make_attack,
    register_attack,
)
from fairleak.attacks.defences import restrict_output
from fairleak.attacks.designs import (
    pa_alooa_masks,
    paired_half_masks,
    shadow_masks,
    shadow_pair_split,
)
from fairleak.attacks.dp_audit import (
    EpsilonBound,
    audit_epsilon,
    clopper_pearson_upper,
    multi_run_ceiling,
    one_run_epsilon,
    one_run_p_value,
    split_halves,
)
from fairleak.attacks.fdmia import FDMIAResult, fd_mia, fd_mia_features
from fairleak.attacks.group_risk import (
    GroupRiskResult,
    group_risk_from_scores,
    ipr_heldout,
    ipr_oracle,
)
from fairleak.attacks.lira import LiRA, lira_scores
from fairleak.attacks.metrics import (
    AttackMetrics,
    attack_metrics,
    resampled_attack_metrics,
    tpr_at_fpr,
)
from fairleak.attacks.rmia import RMIA, rmia_likelihood_ratio, rmia_scores, rmia_scores_direct
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
from fairleak.attacks.shadow import ShadowAttack, ShadowModelAttack, shadow_features
from fairleak.attacks.threshold import (
    ThresholdAttack,
    ThresholdRule,
    best_threshold,
    threshold_for_fpr,
)

__all__ = [
    "ATTACKS",
    "RMIA",
    "SCORE_NAMES",
    "Attack",
    "AttackData",
    "AttackMetrics",
    "AttackResult",
    "AttackScores",
    "EpsilonBound",
    "FDMIAResult",
    "GroupRiskResult",
    "LiRA",
    "ModelOutputs",
    "ShadowAttack",
    "ShadowModelAttack",
    "ThresholdAttack",
    "ThresholdRule",
    "attack_metrics",
    "audit_epsilon",
    "best_threshold",
    "clopper_pearson_upper",
    "confidence_score",
    "correctness_score",
    "default_attacks",
    "entropy_score",
    "evaluate_attacks",
    "fd_mia",
    "fd_mia_features",
    "group_risk_from_scores",
    "ipr_heldout",
    "ipr_oracle",
    "lira_scores",
    "logit_scaled_confidence",
    "loss_score",
    "make_attack",
    "membership_score",
    "modified_entropy_score",
    "multi_run_ceiling",
    "one_run_epsilon",
    "one_run_p_value",
    "pa_alooa_masks",
    "paired_half_masks",
    "register_attack",
    "resampled_attack_metrics",
    "restrict_output",
    "rmia_likelihood_ratio",
    "rmia_scores",
    "rmia_scores_direct",
    "shadow_features",
    "shadow_masks",
    "shadow_pair_split",
    "split_halves",
    "threshold_for_fpr",
    "tpr_at_fpr",
]
