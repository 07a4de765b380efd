"""Robustness disparity: how small a change flips a record's decision, per group.

Library functions only (they never train): the perturbation space (:mod:`.space`), model
adapters (:mod:`.models`), minimal perturbations (:mod:`.minimal`), per-group statistics and
disparity (:mod:`.groups`), autoencoder damage per group (:mod:`.autoencoder`). The audit stage
is ``fairleak.audit.stages.robustness``. Spec: ALGORITHMS-2.md section 5.
"""

from fairleak.robustness.minimal import (
    MinimalPerturbation,
    boundary_search,
    deepfool,
    exact_linear,
    minimal_perturbation,
    pgd_minimal,
)
from fairleak.robustness.models import decision_function_of, linear_margin, torch_margin
from fairleak.robustness.space import Norm, PerturbationSpace, norm_of

__all__ = [
    "MinimalPerturbation",
    "Norm",
    "PerturbationSpace",
    "boundary_search",
    "decision_function_of",
    "deepfool",
    "exact_linear",
    "linear_margin",
    "minimal_perturbation",
    "norm_of",
    "pgd_minimal",
    "torch_margin",
]
