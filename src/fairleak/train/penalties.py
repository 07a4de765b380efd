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
    """Per-term, per-sample weights ``w[t, i]`` of the linearised gaps for a model trained on ``rows``.

    One term per attribute (per attribute and label class for equalized odds). Term t compares
    the two groups with the highest and lowest label base rate among the model's training rows
    (their identity is computed once, before training, from the training labels; the one-off
    choice of which two groups to compare is not charged to the privacy budget). The gap
    ``mean_a p - mean_b p`` is written as ``sum_i w[t, i] p_i / n`` with ``w = +n / n_a`` on group a,
    ``-n / n_b`` on group b and 0 elsewhere, so that dividing a batch's per-sample sum by the
    expected batch size ``q n`` gives the batch-mean gap. Its *sign* is re-estimated privately at
    every step by the trainer (noisy group sums, accounted), which makes the penalty the
    subgradient of ``|gap|`` rather than a push in a fixed direction.
    """
    n = len(rows)
    scale = math.sqrt(2.0) if kind == "l2_softmax" else 1.0
    classes = (0, 1) if kind == "equalized_odds" else (None,)
    terms = []
    for a, g in enumerate(n_groups):
        for cls in classes:
            w = np.zeros(len(y), dtype=np.float32)
            sel = rows if cls is None else rows[y[rows] == cls]
            codes = groups[sel, a]
            counts = np.bincount(codes, minlength=g)
            present = np.flatnonzero(counts > 0)
            if len(present) >= 2:
                rates = np.array([y[sel][codes == k].mean() for k in present])
                hi, lo = present[np.argmax(rates)], present[np.argmin(rates)]
                if hi == lo:  # equal base rates: compare the two largest groups
                    hi, lo = present[np.argsort(-counts[present])[:2]]
                w[sel[codes == hi]] = scale * n / counts[hi]
                w[sel[codes == lo]] = -scale * n / counts[lo]
            terms.append(w)
    return np.stack(terms)
