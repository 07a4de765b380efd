"""GradNorm-style task weights (Chen et al. 2018), the T trade-off weights of L2T-FMT.

Task t's weighted gradient norm ``w_t G_t`` on the last shared layer is pulled towards
``mean(w G) * r_t^alpha``, where ``r_t`` is task t's loss relative to its first value, divided by
the mean of those ratios (tasks that train slower get more weight). The pull is one
(sub)gradient step on ``sum_t |w_t G_t - target_t|`` with the targets held fixed, as GradNorm
does; the weights are then renormalised to sum to T. Written by hand: a few lines on T numbers.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gradnorm_step"]


def gradnorm_step(
    weights: np.ndarray,
    grad_norms: np.ndarray,
    loss_ratios: np.ndarray,
    *,
    alpha: float = 1.5,
    lr: float = 0.01,
) -> np.ndarray:
    """One update of the task weights ``weights`` [T] (positive, summing to T)."""
    w = np.asarray(weights, dtype=np.float64)
    g = np.asarray(grad_norms, dtype=np.float64)
    r = np.asarray(loss_ratios, dtype=np.float64)
    r = r / max(float(r.mean()), 1e-12)
    target = float(np.mean(w * g)) * r**alpha
    w = np.maximum(w - lr * np.sign(w * g - target) * g, 1e-3)
    return w * (len(w) / w.sum())
