"""Audit stages: each one file and one registration (see ``base.py``)."""

from fairleak.audit.stages.attacks import AttacksStage, attack_target  # noqa: F401
from fairleak.audit.stages.base import (
    STAGES,
    AuditContext,
    Column,
    Stage,
    StageConfig,
    StageOutput,
    register_stage,
)
from fairleak.audit.stages.dp_audit import DPAuditStage  # noqa: F401  (registers)
from fairleak.audit.stages.fairness import FairnessStage  # noqa: F401  (registers)
from fairleak.audit.stages.fd_mia import FDMIAStage, attack_pair  # noqa: F401
from fairleak.audit.stages.front import FrontStage  # noqa: F401  (registers)
from fairleak.audit.stages.group_risk import GroupRiskStage, play_pa_alooa  # noqa: F401
from fairleak.audit.stages.robustness import RobustnessStage  # noqa: F401  (registers)

__all__ = [
    "STAGES",
    "AuditContext",
    "Column",
    "Stage",
    "StageConfig",
    "StageOutput",
    "register_stage",
]
