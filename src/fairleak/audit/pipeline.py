"""The audit pipeline (first version: baseline models and per-group accuracy).

Issue 7 grows this into the full audit; the CLI only calls what is here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from fairleak.data import TabularDataset, TabularPreprocessor, group_views, make_audit_split

__all__ = ["BaselineAudit", "run_baseline_audit"]


@dataclass
class BaselineAudit:
    dataset: str
    n_members: int
    n_nonmembers: int
    seed: int
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
            "seed": self.seed,
            "models": self.models,
            "notes": self.notes,
        }


def _accuracy_by_group(y: np.ndarray, pred: np.ndarray, views: dict[str, np.ndarray]) -> dict:
    out: dict[str, dict[str, dict[str, float | int]]] = {}
    for key, labels in views.items():
        out[key] = {}
        for g in sorted(set(labels.tolist())):
            m = labels == g
            out[key][str(g)] = {"n": int(m.sum()), "accuracy": float((pred[m] == y[m]).mean())}
    return out


def run_baseline_audit(
    ds: TabularDataset,
    *,
    seed: int = 0,
    fast: bool = False,
    progress: Callable[[str], None] | None = None,
) -> BaselineAudit:
    """Train a logistic regression and an MLP on the members; accuracy overall and per group."""
    split = make_audit_split(len(ds), seed=seed, max_audit=4000 if fast else None)
    pre = TabularPreprocessor().fit(ds.features.iloc[split.members])
    X = pre.transform(ds.features)
    res = BaselineAudit(
        ds.name, len(split.members), len(split.nonmembers), seed, notes=list(ds.notes)
    )
    models = {
        "logistic_regression": LogisticRegression(max_iter=500),
        "mlp": MLPClassifier(
            hidden_layer_sizes=(64,), max_iter=30 if fast else 100, random_state=seed
        ),
    }
    views_test = group_views(ds.sensitive.iloc[split.nonmembers].reset_index(drop=True))
    for name, model in models.items():
        if progress:
            progress(f"training {name}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X[split.members], ds.y[split.members])
        pred_train = model.predict(X[split.members])
        pred_test = model.predict(X[split.nonmembers])
        y_test = ds.y[split.nonmembers]
        res.models[name] = {
            "train_accuracy": float((pred_train == ds.y[split.members]).mean()),
            "test_accuracy": float((pred_test == y_test).mean()),
            "test_accuracy_by_group": _accuracy_by_group(y_test, pred_test, views_test),
        }
    return res
