"""FairBranch's gradient rules: the intra-task weight and FBGrad's conflict projection.

- Intra-task weight (Roy & Ntoutsi, IJCNN 2024): ``lambda_t = 0`` when task t's fairness gradient
  conflicts with its accuracy gradient (negative dot product), else 1. The published code tests
  the head only and applies the result one step late; here it is this step's gradients over
  every parameter of the task's path.
- FBGrad: for tasks that share a branch, a fairness gradient that conflicts with another task's
  (negative dot product) loses its projection onto it, PCGrad style (Yu et al. 2020), every
  projection computed from the *original* gradients. For two tasks the corrected gradient is
  orthogonal to the other's original one. The published code tested only the first two members
  of a group and projected bias gradients with the weight gradients' test; here each branch's
  weights and biases form one vector, tested and projected together, for every pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["intra_task_weight", "project_conflicts"]


def intra_task_weight(accuracy_grad: torch.Tensor, fairness_grad: torch.Tensor) -> float:
    """0.0 when ``<accuracy_grad, fairness_grad> < 0`` (flattened), else 1.0."""
    return (
        0.0 if float(torch.dot(accuracy_grad.reshape(-1), fairness_grad.reshape(-1))) < 0 else 1.0
    )


def project_conflicts(grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """PCGrad from the originals: ``g_i - sum_{j != i, <g_i, g_j> < 0} <g_i, g_j> / ||g_j||^2 g_j``.

    ``grads``: one flattened gradient per task sharing the branch. Gradients without a conflict
    come back unchanged (the same values).
    """
    flat = [g.reshape(-1) for g in grads]
    out = []
    for i, gi in enumerate(flat):
        corrected = gi
        for j, gj in enumerate(flat):
            if i == j:
                continue
            dot = torch.dot(gi, gj)
            norm2 = torch.dot(gj, gj)
            if float(dot) < 0 and float(norm2) > 0:
                corrected = corrected - (dot / norm2) * gj
        out.append(corrected.reshape(grads[i].shape))
    return out
