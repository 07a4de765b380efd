"""What the minimal-perturbation routines need from a model: a margin or a decision.

- :func:`linear_margin`: ``(w, b)`` with margin ``f(x) = w·x + b`` when the model is linear in its
  input (scikit-learn linear classifiers, a fairleak ensemble member without hidden layers);
- :func:`torch_margin`: a differentiable ``f: Tensor [N, D] -> Tensor [N]`` (``z1 - z0``) for a
  fairleak :class:`~fairleak.train.Ensemble` member, a :class:`~fairleak.train.FairleakClassifier`
  or any ``torch.nn.Module`` giving 2 logits (or one logit) per row;
- :func:`decision_function_of`: ``predict(X) -> 0/1`` for anything with ``predict_proba`` or
  ``predict`` (trees, pipelines; an optional ``decode`` maps encoded rows to the model's input).

The prediction is the positive class where the margin is > 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fairleak.errors import DataValidationError

__all__ = ["Decision", "Margin", "decision_function_of", "linear_margin", "torch_margin"]

Margin = Callable[[torch.Tensor], torch.Tensor]
#: ``predict(X, rows) -> 0/1``: ``rows`` says which attacked record each row of ``X`` derives
#: from (None: not known), for decoders that copy a record's columns the encoding leaves out.
Decision = Callable[[np.ndarray, np.ndarray | None], np.ndarray]

_ACT: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "elu": torch.nn.functional.elu,
    "square": lambda z: z * z,
}


def _ensemble_of(model: Any) -> Any:
    from fairleak.train import Ensemble

    if isinstance(model, Ensemble):
        return model
    ens = getattr(model, "ensemble_", None)
    if isinstance(ens, Ensemble):
        return ens
    return None


def linear_margin(model: Any, member: int = 0) -> tuple[np.ndarray, float] | None:
    """``(w [D], b)`` of a model whose margin is affine in its input, else None."""
    ens = _ensemble_of(model)
    if ens is not None:
        if len(ens.weights) != 1:
            return None
        W = ens.weights[0][member].double().numpy()
        B = ens.biases[0][member].double().numpy()
        return W[:, 1] - W[:, 0], float(B[1] - B[0])
    if isinstance(model, torch.nn.Linear):
        W = model.weight.detach().double().numpy()
        B = model.bias.detach().double().numpy() if model.bias is not None else np.zeros(len(W))
        if W.shape[0] == 1:
            return W[0], float(B[0])
        if W.shape[0] == 2:
            return W[1] - W[0], float(B[1] - B[0])
        return None
    coef = getattr(model, "coef_", None)
    if coef is not None and hasattr(model, "intercept_") and hasattr(model, "decision_function"):
        coef = np.asarray(coef, dtype=np.float64)
        if coef.ndim == 2 and coef.shape[0] == 1:
            return coef[0], float(np.asarray(model.intercept_).reshape(-1)[0])
    return None


def torch_margin(model: Any, member: int = 0) -> Margin | None:
    """A differentiable margin ``z1 - z0`` of the model, or None if it is not a torch model."""
    ens = _ensemble_of(model)
    if ens is not None:
        Ws = [w[member].float() for w in ens.weights]
        Bs = [b[member].float() for b in ens.biases]
        act = _ACT[ens.config.activation]

        def f(x: torch.Tensor) -> torch.Tensor:
            h = x
            for i, (w, b) in enumerate(zip(Ws, Bs, strict=True)):
                h = h @ w + b
                if i < len(Ws) - 1:
                    h = act(h)
            return h[:, 1] - h[:, 0]

        return f
    if isinstance(model, torch.nn.Module):
        module = model.eval()

        def g(x: torch.Tensor) -> torch.Tensor:
            out = module(x)
            if out.ndim == 2 and out.shape[1] == 2:
                return out[:, 1] - out[:, 0]
            if out.ndim == 2 and out.shape[1] == 1:
                return out[:, 0]
            if out.ndim == 1:
                return out
            raise DataValidationError(
                f"The torch model gives outputs of shape {tuple(out.shape)}; give 2 logits or one "
                "logit per row."
            )

        return g
    return None


def decision_function_of(
    model: Any, *, decode: Callable[[np.ndarray, np.ndarray | None], Any] | None = None,
    positive_column: int = 1,
) -> Decision:
    """``predict(X, rows) -> int 0/1 [N]`` of any classifier (``X``: encoded rows, passed
    through ``decode(X, rows)`` first when the model reads another form, e.g. the raw
    DataFrame; ``rows``: the attacked record each row derives from, or None)."""
    marg = torch_margin(model)
    if marg is not None and decode is None:

        @torch.no_grad()
        def by_margin(X: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
            return (marg(torch.as_tensor(np.asarray(X, dtype=np.float32))) > 0).numpy().astype(np.int8)

        return by_margin
    if not (hasattr(model, "predict_proba") or hasattr(model, "predict")):
        raise DataValidationError(
            f"{type(model).__name__} has neither predict_proba nor predict: the boundary search "
            "needs the model's decisions."
        )

    def by_model(X: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        inp = decode(X, rows) if decode is not None else X
        if hasattr(model, "predict_proba"):
            p = np.asarray(model.predict_proba(inp))
            return (p[:, positive_column] > 0.5).astype(np.int8)
        pred = np.asarray(model.predict(inp)).reshape(-1)
        classes = getattr(model, "classes_", None)
        if classes is not None:
            return (pred == np.asarray(classes)[positive_column]).astype(np.int8)
        return (pred.astype(np.float64) > 0.5).astype(np.int8)

    return by_model
