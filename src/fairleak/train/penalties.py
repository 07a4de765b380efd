"""In-processing fairness penalties on predicted probabilities, for K stacked models at once.

Batch form (non-private training): differentiable gaps over the groups present in each model's
mini-batch; their gradient with respect to the logits is taken with autograd on the (small)
logit tensor only. Linearised form (DP-SGD, ALGORITHMS.md section 5): a penalty on group means
couples samples and has no per-sample gradient, so the gap is linearised with its orientation
and the expected group sizes held fixed, ``penalty = sum_i w_i p_i``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

__all__ = ["PENALTIES", "Penalty", "batch_penalty", "linearised_weights", "register_penalty"]


@dataclass(frozen=True)
class Penalty:
    """A fairness penalty, declared by what it compares.

    ``classes``: the label classes within which groups' mean P(y=1) are compared (``None``: all
    rows; ``(0, 1)``: within each class, the larger gap counts, as equalized odds).
    ``combine``: ``"range"`` (max - min over groups) or ``"pairwise_l2"`` (mean L2 distance
    between groups' mean softmax vectors over pairs of groups, the seed blog's penalty).
    """

    name: str
    classes: tuple[int | None, ...] = (None,)
    combine: Literal["range", "pairwise_l2"] = "range"
    description: str = ""

    @property
    def linear_scale(self) -> float:
        # For 2-class softmax vectors (1 - mu, mu): ||m_g - m_h||_2 = sqrt(2) |mu_g - mu_h|.
        return math.sqrt(2.0) if self.combine == "pairwise_l2" else 1.0


#: Registered penalties by name (the ``penalty`` of :class:`~fairleak.train.FairnessConfig`).
PENALTIES: dict[str, Penalty] = {}


def register_penalty(penalty: Penalty) -> Penalty:
    """Make ``penalty`` available by name to the trainer, the estimators and the audit config."""
    PENALTIES[penalty.name] = penalty
    return penalty


register_penalty(Penalty("l2_softmax", combine="pairwise_l2",
                         description="L2 distance between groups' mean softmax vectors (seed blog)"))  # fmt: skip
register_penalty(Penalty("demographic_parity", description="max - min of groups' mean P(y=1)"))
register_penalty(Penalty("equalized_odds", classes=(0, 1),
                         description="the larger demographic-parity gap among y=1 and among y=0 rows"))  # fmt: skip
register_penalty(Penalty("equal_opportunity", classes=(1,),
                         description="max - min of groups' mean P(y=1) among y=1 rows (TPR gap)"))  # fmt: skip


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
        kind: a registered penalty name (:data:`PENALTIES`).
        reduce: ``"sum"`` or ``"max"`` over attributes.
    """
    pen = PENALTIES[kind]
    gap = _range if pen.combine == "range" else _pairwise_l2
    per_attr = []
    for a, g in enumerate(n_groups):
        oh = torch.nn.functional.one_hot(groups[..., a], g).to(p1.dtype) * valid.unsqueeze(-1)
        gaps = [
            gap(*_group_means(p1, oh if cls is None else oh * (y == cls).to(p1.dtype).unsqueeze(-1)))
            for cls in pen.classes
        ]
        per_attr.append(torch.stack(gaps, -1).max(-1).values)
    stacked = torch.stack(per_attr, -1)
    return stacked.sum(-1) if reduce == "sum" else stacked.max(-1).values


def linearised_weights(
    y: np.ndarray,
    groups: np.ndarray,
    n_groups: list[int],
    kind: str,
    rows: np.ndarray,
    counts: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-term, per-sample weights ``w[t, i]`` of the linearised gaps for a model trained on
    ``rows``, and the sizes of each term's two compared groups [T, 2].

    One term per attribute and compared label class of the penalty. Term t compares the two
    groups with the highest and lowest label base rate (within a label class every base rate is
    the same, so the two largest groups). The gap ``mean_a p - mean_b p`` is written as
    ``sum_i w[t, i] p_i / n`` with ``w = +n / n_a`` on group a, ``-n / n_b`` on group b and 0
    elsewhere, so that dividing a batch's per-sample sum by the expected batch size ``q n`` gives
    the batch-mean gap. Group sizes and base rates come from ``counts`` (per attribute: the
    released noisy row and positive counts per group, see
    :func:`~fairleak.train.mechanisms.release_group_counts`), or, without them, from the training
    rows themselves (not private). The *sign* of each gap is re-estimated privately at every step
    by the trainer, which makes the penalty the subgradient of ``|gap|``.
    """
    n = len(rows)
    pen = PENALTIES[kind]
    scale = pen.linear_scale
    terms, sizes = [], []
    for a, g in enumerate(n_groups):
        codes_all = groups[rows, a]
        if counts is None:
            cnt = np.bincount(codes_all, minlength=g).astype(np.float64)
            pos = np.bincount(codes_all, weights=y[rows], minlength=g)
        else:
            cnt, pos = (np.asarray(v, dtype=np.float64)[:g] for v in counts[a])
        for cls in pen.classes:
            w = np.zeros(len(y), dtype=np.float32)
            size = cnt if cls is None else (pos if cls == 1 else cnt - pos)
            size = np.maximum(size, 0.0)
            present = np.flatnonzero(np.bincount(codes_all if cls is None else codes_all[y[rows] == cls],
                                                 minlength=g) > 0) if counts is None else np.flatnonzero(size >= 1)  # fmt: skip
            pair = (0.0, 0.0)
            if len(present) >= 2:
                rates = pos[present] / np.maximum(cnt[present], 1e-9) if cls is None else np.zeros(len(present))
                hi, lo = present[np.argmax(rates)], present[np.argmin(rates)]
                if hi == lo:  # equal base rates: compare the two largest groups
                    hi, lo = present[np.argsort(-size[present], kind="stable")[:2]]
                sel = rows if cls is None else rows[y[rows] == cls]
                codes = groups[sel, a]
                w[sel[codes == hi]] = scale * n / size[hi]
                w[sel[codes == lo]] = -scale * n / size[lo]
                pair = (float(size[hi]), float(size[lo]))
            terms.append(w)
            sizes.append(pair)
    return np.stack(terms), np.asarray(sizes, dtype=np.float64)
