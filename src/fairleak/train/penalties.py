"""In-processing fairness penalties on predicted probabilities, for K stacked models at once.

Batch form (non-private training): differentiable gaps over the groups present in each model's
mini-batch; their gradient with respect to the logits is taken with autograd on the (small)
logit tensor only. Linearised form (DP-SGD, ALGORITHMS.md section 5): a penalty on group means
couples samples and has no per-sample gradient, so the gap is linearised with its orientation
and the expected group sizes held fixed, ``penalty = sum_i w_i p_i``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["batch_penalty", "linearised_weights"]


def _group_means(p1: torch.Tensor, onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    counts = onehot.sum(1)  # [K, G]
    sums = torch.einsum("kmg,km->kg", onehot, p1)
    return sums / counts.clamp(min=1.0), counts > 0


def _range(means: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    hi = means.masked_fill(~present, -math.inf).max(-1).values
    lo = means.masked_fill(~present, math.inf).min(-1).values
    ok = present.sum(-1) >= 2
    return torch.where(ok, hi - lo, torch.zeros_like(hi))


def _pairwise_l2(means: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    # For 2-class softmax vectors (1 - mu, mu): ||m_g - m_h||_2 = sqrt(2) |mu_g - mu_h|.
    diff = (means.unsqueeze(-1) - means.unsqueeze(-2)).abs() * math.sqrt(2.0)
    pair = (present.unsqueeze(-1) & present.unsqueeze(-2)).float()
    pair = torch.triu(pair, diagonal=1)
    n = pair.sum((-1, -2))
    return torch.where(n > 0, (diff * pair).sum((-1, -2)) / n.clamp(min=1), torch.zeros_like(n))


def batch_penalty(
    p1: torch.Tensor,
    y: torch.Tensor,
    valid: torch.Tensor,
    groups: torch.Tensor,
    n_groups: list[int],
    kind: str,
    reduce: str = "sum",
) -> torch.Tensor:
    """Penalty per model [K] on a mini-batch.

    Args:
        p1: predicted P(y=1) [K, M]; y: labels [K, M]; valid: 0/1 float mask [K, M].
        groups: int codes [K, M, A], one column per protected attribute (or intersection).
        n_groups: number of groups of each attribute.
        kind: ``"l2_softmax"``, ``"demographic_parity"`` or ``"equalized_odds"``.
        reduce: ``"sum"`` or ``"max"`` over attributes.
    """
    per_attr = []
    for a, g in enumerate(n_groups):
        oh = torch.nn.functional.one_hot(groups[..., a], g).to(p1.dtype) * valid.unsqueeze(-1)
        if kind == "equalized_odds":
            gaps = []
            for cls in (0, 1):
                ohc = oh * (y == cls).to(p1.dtype).unsqueeze(-1)
                gaps.append(_range(*_group_means(p1, ohc)))
            per_attr.append(torch.maximum(gaps[0], gaps[1]))
        elif kind == "demographic_parity":
            per_attr.append(_range(*_group_means(p1, oh)))
        else:
            per_attr.append(_pairwise_l2(*_group_means(p1, oh)))
    stacked = torch.stack(per_attr, -1)
    return stacked.sum(-1) if reduce == "sum" else stacked.max(-1).values


def linearised_weights(
    y: np.ndarray, groups: np.ndarray, n_groups: list[int], kind: str, rows: np.ndarray
) -> np.ndarray:
    """Per-sample weights ``w_i`` of the linearised gap for one model trained on ``rows``.

    The gap ``mean_fav p - mean_dis p`` between the groups with the highest and lowest label
    base rate among the model's training rows (within each label class for equalized odds) is
    written as ``sum_i w_i p_i / (n)`` with ``w_i = +n / n_fav`` or ``-n / n_dis``, so that dividing
    the per-sample sum by the expected batch size ``q n`` gives the batch-mean gap. The
    orientation (which group is favoured) is computed once from the training labels before
    training; it is not charged to the privacy budget (one bit per attribute) — say so where
    it matters. ``reduce="max"`` is not linear; under DP the attributes' gaps are summed.
    """
    n = len(rows)
    w = np.zeros(len(y), dtype=np.float32)
    scale = math.sqrt(2.0) if kind == "l2_softmax" else 1.0
    classes = (0, 1) if kind == "equalized_odds" else (None,)
    for a, g in enumerate(n_groups):
        for cls in classes:
            sel = rows if cls is None else rows[y[rows] == cls]
            codes = groups[sel, a]
            counts = np.bincount(codes, minlength=g)
            present = np.flatnonzero(counts > 0)
            if len(present) < 2:
                continue
            rates = np.array([y[sel][codes == k].mean() for k in present])
            fav, dis = present[np.argmax(rates)], present[np.argmin(rates)]
            if fav == dis:
                continue
            w[sel[codes == fav]] += scale * n / counts[fav]
            w[sel[codes == dis]] -= scale * n / counts[dis]
    return w
