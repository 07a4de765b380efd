"""Membership scores from a model's outputs on labelled records (higher = more likely member).

Inputs are logits or probabilities of shape [..., N, C] (a leading model axis K broadcasts)
with labels [N]. Sources: Yeom et al. 2018 (loss), Song & Mittal 2021 (entropy, modified
entropy), Carlini et al. 2022 (logit-scaled confidence).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.special import logsumexp

from fairleak.errors import DataValidationError

__all__ = [
    "SCORE_NAMES",
    "confidence_score",
    "correctness_score",
    "entropy_score",
    "logit_scaled_confidence",
    "loss_score",
    "membership_score",
    "modified_entropy_score",
]

SCORE_NAMES = (
    "loss",
    "confidence",
    "entropy",
    "modified_entropy",
    "logit_confidence",
    "correctness",
)
_EPS = 1e-12


def _check(out: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.asarray(out, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    if out.ndim < 2 or out.shape[-2] != y.shape[0]:
        raise DataValidationError(
            f"Model outputs must have shape [..., N, C] with N = len(y) = {len(y)}; got {out.shape}."
        )
    if y.min(initial=0) < 0 or y.max(initial=0) >= out.shape[-1]:
        raise DataValidationError(f"Labels must be class indices in [0, {out.shape[-1] - 1}].")
    return out, y


def _true_class(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.take_along_axis(a, np.broadcast_to(y[:, None], (*a.shape[:-1], 1)), -1)[..., 0]


def loss_score(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``-cross-entropy = log p_y``."""
    p, y = _check(proba, y)
    return np.log(np.clip(_true_class(p, y), _EPS, 1.0))


def confidence_score(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``p_y``."""
    p, y = _check(proba, y)
    return _true_class(p, y)


def entropy_score(proba: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Negative prediction entropy (confident predictions look like members)."""
    p = np.asarray(proba, dtype=np.float64)
    return (p * np.log(np.clip(p, _EPS, 1.0))).sum(-1)


def modified_entropy_score(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Negative modified entropy of Song & Mittal 2021 (uses the label)."""
    p, y = _check(proba, y)
    py = _true_class(p, y)
    logc = lambda v: np.log(np.clip(v, _EPS, 1.0))  # noqa: E731
    term_y = (1 - py) * logc(py)
    others = p * logc(1 - p)
    onehot = np.zeros(p.shape[-2:], dtype=bool)
    onehot[np.arange(len(y)), y] = True
    term_o = np.where(onehot, 0.0, others).sum(-1)
    return term_y + term_o


def logit_scaled_confidence(
    out: np.ndarray, y: np.ndarray, *, from_probabilities: bool = False
) -> np.ndarray:
    """LiRA's ``phi = log(p_y / (1 - p_y))``, computed stably.

    From logits (the default): ``z_y - logsumexp(z_{j != y})``, exact even when p_y rounds to 1.
    From probabilities: ``log p_y - log(1 - p_y)`` with clipping (less exact; only when a model
    exposes nothing else).
    """
    a, y = _check(out, y)
    if from_probabilities:
        py = np.clip(_true_class(a, y), _EPS, 1 - _EPS)
        return np.log(py) - np.log1p(-py)
    zy = _true_class(a, y)
    mask = np.zeros(a.shape[-2:], dtype=bool)
    mask[np.arange(len(y)), y] = True
    others = np.where(mask, -np.inf, a)
    return zy - logsumexp(others, axis=-1)


def correctness_score(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Label-only: 1 when the predicted label is right (Yeom et al.'s rule-based attack)."""
    p, y = _check(proba, y)
    return (p.argmax(-1) == y).astype(np.float64)


def membership_score(
    out: np.ndarray,
    y: np.ndarray,
    kind: Literal[
        "loss", "confidence", "entropy", "modified_entropy", "logit_confidence", "correctness"
    ],
    *,
    logits: bool = False,
) -> np.ndarray:
    """Any score of :data:`SCORE_NAMES` from probabilities (or logits with ``logits=True``)."""
    if kind not in SCORE_NAMES:
        raise DataValidationError(
            f"Unknown membership score '{kind}'; choose one of {SCORE_NAMES}."
        )
    if kind == "logit_confidence":
        return logit_scaled_confidence(out, y, from_probabilities=not logits)
    proba = out
    if logits:
        z = np.asarray(out, dtype=np.float64)
        proba = np.exp(z - logsumexp(z, axis=-1, keepdims=True))
    fn = {
        "loss": loss_score,
        "confidence": confidence_score,
        "entropy": entropy_score,
        "modified_entropy": modified_entropy_score,
        "correctness": correctness_score,
    }[kind]
    return fn(proba, y)
