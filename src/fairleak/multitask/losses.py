"""Per-task fairness losses on a mini-batch, per protected attribute and intersection.

- ``"robust_log"`` (FairBranch and L2T-FMT, Roy & Ntoutsi 2022/2024): for each label value y, the
  worst group's mean cross-entropy, summed over y: ``sum_y max_s CE(X | Y = y, S = s)``. A
  (label, group) cell that is empty in the batch is skipped (the published ``fair_loss`` meant to
  do this but rebound a loop variable, so an empty cell gave NaN).
- ``"demographic_parity"``: range across groups of the mean predicted P(y = 1).
- ``"equalized_odds"``: the same range within each true label, summed over the two labels (the
  sum form the papers use for EO; the gap in P(yhat = 0 | y) equals the gap in P(yhat = 1 | y)).

Every loss couples the rows of a batch (group means, a max over groups), so it has no
per-sample gradient: DP-SGD cannot clip it (see ``private.py``).

``views`` are integer group codes [N] per attribute or intersection; the loss over several views
is their sum (``reduce="sum"``) or the worst one (``"max"``). A view with fewer than two groups
present in the batch adds 0 for the gap losses.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

__all__ = [
    "FAIRNESS_LOSSES",
    "demographic_parity_loss",
    "equalized_odds_loss",
    "fairness_loss",
    "robust_log_loss",
]

FAIRNESS_LOSSES = ("robust_log", "demographic_parity", "equalized_odds")


def _group_means(values: torch.Tensor, codes: torch.Tensor, n_groups: int):
    sums = torch.zeros(n_groups, dtype=values.dtype).index_add(0, codes, values)
    counts = torch.bincount(codes, minlength=n_groups)
    present = counts > 0
    return sums[present] / counts[present].to(values.dtype)


def _range(means: torch.Tensor) -> torch.Tensor:
    if means.numel() < 2:
        return means.new_zeros(())
    return means.max() - means.min()


def robust_log_loss(
    logits: torch.Tensor, y: torch.Tensor, codes: torch.Tensor, n_groups: int
) -> torch.Tensor:
    """``sum_y max_s`` mean cross-entropy of the rows with label y in group s (empty cells skipped)."""
    ce = F.cross_entropy(logits, y, reduction="none")
    total = logits.new_zeros(())
    for label in (0, 1):
        sel = y == label
        if bool(sel.any()):
            total = total + _group_means(ce[sel], codes[sel], n_groups).max()
    return total


def demographic_parity_loss(
    logits: torch.Tensor, y: torch.Tensor, codes: torch.Tensor, n_groups: int
) -> torch.Tensor:
    """Range across the groups present of the mean predicted P(y = 1)."""
    p1 = torch.softmax(logits, -1)[:, 1]
    return _range(_group_means(p1, codes, n_groups))


def equalized_odds_loss(
    logits: torch.Tensor, y: torch.Tensor, codes: torch.Tensor, n_groups: int
) -> torch.Tensor:
    """Sum over true labels of the range across groups of the mean predicted P(y = 1)."""
    p1 = torch.softmax(logits, -1)[:, 1]
    total = logits.new_zeros(())
    for label in (0, 1):
        sel = y == label
        if bool(sel.any()):
            total = total + _range(_group_means(p1[sel], codes[sel], n_groups))
    return total


_LOSSES = {
    "robust_log": robust_log_loss,
    "demographic_parity": demographic_parity_loss,
    "equalized_odds": equalized_odds_loss,
}


def fairness_loss(
    kind: str,
    logits: torch.Tensor,
    y: torch.Tensor,
    views: Sequence[torch.Tensor],
    n_groups: Sequence[int],
    reduce: str = "sum",
) -> torch.Tensor:
    """One task's fairness loss on a batch, over the protected views (sum or max)."""
    fn = _LOSSES[kind]
    per_view = [fn(logits, y, c, g) for c, g in zip(views, n_groups, strict=True)]
    stacked = torch.stack(per_view)
    return stacked.sum() if reduce == "sum" else stacked.max()
