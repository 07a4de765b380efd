"""The audit: any classifier's fairness and privacy, measured by registered stages.

``run_audit(config)`` is what ``fairleak audit`` runs; :func:`audit_model` audits a model you
fitted yourself; :mod:`fairleak.audit.api` has single pieces (attacks, FD-MIA, PA-ALOOA) on arrays.
"""

from fairleak.audit import white_box  # noqa: F401  (registers the gradient-canary scorer)
from fairleak.audit.api import run_attacks, run_fd_mia, run_pa_alooa
from fairleak.audit.config import (
    AuditConfig,
    ModelSpec,
    apply_overrides,
    config_from_dict,
    default_config,
    load_config,
)
from fairleak.audit.pipeline import AuditResult, audit_model, run_audit
from fairleak.audit.recipes import FairleakRecipe, Recipe, SklearnRecipe
from fairleak.audit.stages import (
    STAGES,
    AuditContext,
    Column,
    Stage,
    StageConfig,
    StageOutput,
    register_stage,
)
from fairleak.audit.target import AuditTarget, load_fitted_model, recipe_of

__all__ = [
    "STAGES",
    "AuditConfig",
    "AuditContext",
    "AuditResult",
    "AuditTarget",
    "Column",
    "FairleakRecipe",
    "ModelSpec",
    "Recipe",
    "SklearnRecipe",
    "Stage",
    "StageConfig",
    "StageOutput",
    "apply_overrides",
    "audit_model",
    "config_from_dict",
    "default_config",
    "load_config",
    "load_fitted_model",
    "recipe_of",
    "register_stage",
    "run_attacks",
    "run_audit",
    "run_fd_mia",
    "run_pa_alooa",
]
