"""Task affinity by parameter similarity (linear CKA) and FairBranch's greedy task grouping.

FairBranch (Roy & Ntoutsi, IJCNN 2024) compares the parameters of two task groups one level above
the deepest shared layer: ``W_a^T`` and ``W_b^T`` with the input neurons as samples (for the heads,
``[h, 2]`` matrices), by linear CKA (Kornblith et al. 2019). Linear CKA is written here because it
is three lines on matrices this small; the tests check it against its known invariances.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["affinity_matrix", "greedy_pairs", "linear_cka"]


def linear_cka(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """Linear CKA of two representations of the same n samples, ``x`` [n, p] and ``y`` [n, q].

    ``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with column-centred Xc, Yc; in [0, 1],
    invariant to orthogonal transforms and isotropic scaling of either side. 0 when one side is
    constant.
    """
    a = torch.as_tensor(x, dtype=torch.float64)
    b = torch.as_tensor(y, dtype=torch.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(
            f"linear_cka needs two matrices with the same number of rows; got {tuple(a.shape)} "
            f"and {tuple(b.shape)}."
        )
    a = a - a.mean(0, keepdim=True)
    b = b - b.mean(0, keepdim=True)
    den = torch.linalg.matrix_norm(a.T @ a) * torch.linalg.matrix_norm(b.T @ b)
    if float(den) <= 0.0:
        return 0.0
    return float(torch.linalg.matrix_norm(b.T @ a) ** 2 / den)


def affinity_matrix(weights: Sequence[torch.Tensor]) -> np.ndarray:
    """Pairwise linear CKA of weight matrices [out, in], neurons of the input side as samples
    (each matrix transposed to [in, out]); the diagonal is 1."""
    n = len(weights)
    out = np.eye(n)
    mats = [w.detach().T for w in weights]
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = linear_cka(mats[i], mats[j])
    return out


def greedy_pairs(affinity: np.ndarray, threshold: float) -> list[list[int]]:
    """FairBranch's grouping: keep pairs with affinity >= ``threshold``; repeatedly merge the
    most similar remaining pair into a group of two and drop every pair touching it; every unit
    left over is a group of its own. Groups are returned in order of their smallest member."""
    a = np.asarray(affinity, dtype=np.float64)
    n = a.shape[0]
    pairs = [(a[i, j], i, j) for i in range(n) for j in range(i + 1, n) if a[i, j] >= threshold]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    used: set[int] = set()
    groups: list[list[int]] = []
    for _, i, j in pairs:
        if i not in used and j not in used:
            groups.append([i, j])
            used.update((i, j))
    groups.extend([i] for i in range(n) if i not in used)
    return sorted(groups, key=min)
