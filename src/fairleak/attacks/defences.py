"""Output restriction as a defence to evaluate: what the attacker sees instead of full probabilities."""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["restrict_output"]


def restrict_output(proba: np.ndarray, mode: Literal["full", "label_only", "top1"]) -> np.ndarray:
    """Probabilities as an API that releases only the label, or only the top-1 probability, shows them.

    ``label_only``: one-hot of the predicted class (score-based attacks degrade to correctness).
    ``top1``: the top class keeps its probability, the rest is spread evenly over the others.
    For a binary model top-1 still determines the full vector, so it is no defence there: the
    audit reports it to make that visible.
    """
    p = np.asarray(proba, dtype=np.float64)
    if mode == "full":
        return p
    top = p.argmax(-1)
    C = p.shape[-1]
    onehot = np.eye(C)[top]
    if mode == "label_only":
        return onehot
    if mode == "top1":
        pmax = p.max(-1, keepdims=True)
        rest = (1 - pmax) / max(C - 1, 1)
        return np.where(onehot == 1, pmax, rest)
    raise ValueError(f"mode must be 'full', 'label_only' or 'top1'; got {mode!r}.")
