"""Fair multi-task learning: STL, MTL, FairBranch and L2T-FMT on a shared MLP trunk.

Sources: Roy & Ntoutsi, "FairBranch: Mitigating Bias Transfer in Fair Multi-task Learning"
(IJCNN 2024) and "Learning to Teach Fairness-aware Deep Multi-task Learning" (ECML PKDD 2022);
spec and the published code's bugs: ALGORITHMS-2.md section 6. Data: ``fairleak.data.multitask``.
"""

from fairleak.multitask.affinity import affinity_matrix, greedy_pairs, linear_cka
from fairleak.multitask.conflict import intra_task_weight, project_conflicts
from fairleak.multitask.estimator import METHODS, MultiTaskFairClassifier
from fairleak.multitask.evaluation import MultiTaskResult, evaluate_multitask
from fairleak.multitask.losses import FAIRNESS_LOSSES, fairness_loss
from fairleak.multitask.network import MultiTaskMLP

__all__ = [
    "FAIRNESS_LOSSES",
    "METHODS",
    "MultiTaskFairClassifier",
    "MultiTaskMLP",
    "MultiTaskResult",
    "affinity_matrix",
    "evaluate_multitask",
    "fairness_loss",
    "greedy_pairs",
    "intra_task_weight",
    "linear_cka",
    "project_conflicts",
]
