"""The model bank: trains (or reuses from the cache) any set of models an audit needs.

Every model an audit uses, target included, is a row of one design: a :class:`~.recipes.Recipe`,
a pool of data rows with a membership mask per model, a named seed, and the rows whose outputs
are needed. The bank trains the set K at once through the recipe, keeps each model's outputs on
the requested rows with which of them it trained on (ML Privacy Meter's signals and membership
matrices), and caches them by the hash of everything that produced them, so a killed run started
again reuses every finished set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fairleak.attacks import ModelOutputs
from fairleak.audit.backends import Backend, LocalBackend
from fairleak.audit.cache import StageCache, stable_hash
from fairleak.audit.recipes import Fitted, Inputs, Recipe
from fairleak.train import model_seeds

__all__ = ["ModelBank", "ModelSet", "Progress"]

#: progress(task, done, total, unit): a task is a named piece of work ("references baseline").
Progress = Callable[[str, int, int, str], None]


@dataclass
class ModelSet:
    """K models' outputs on the requested rows, which of those rows each trained on, and their
    privacy figures (``epsilon`` per model, ``delta``, ...; empty when not private)."""

    outputs: ModelOutputs
    trained_on: np.ndarray  # [K, n_eval] bool
    privacy: dict[str, Any]
    fitted: Fitted | None = None  # the models themselves, when trained in this run

    @property
    def n_models(self) -> int:
        return int(self.trained_on.shape[0])


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:24]


class ModelBank:
    """Trains and caches model sets for one audit's data (``inputs`` with ``fingerprint``), in
    this process or on Ray (``backend``, :mod:`fairleak.audit.backends`; the models are the same)."""

    def __init__(
        self, inputs: Inputs, fingerprint: str, cache: StageCache, progress: Progress | None = None,
        backend: Backend | None = None,
    ) -> None:  # fmt: skip
        self.inputs, self.fingerprint, self.cache, self.progress = inputs, fingerprint, cache, progress
        self.backend = backend if backend is not None else LocalBackend()
        self.trainings = 0

    def train(
        self,
        recipe: Recipe,
        *,
        rows: np.ndarray,
        masks: np.ndarray,
        seed: int,
        eval_rows: np.ndarray,
        task: str,
        seeds: list[int] | None = None,
    ) -> ModelSet:
        """Train ``len(masks)`` models with ``recipe``, model k on ``rows[masks[k]]`` with seed
        ``model_seeds(seed, K)[k]`` (or ``seeds``), and return their outputs on ``eval_rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        masks = np.asarray(masks, dtype=bool)
        eval_rows = np.asarray(eval_rows, dtype=np.int64)
        seeds = list(seeds) if seeds is not None else model_seeds(seed, len(masks))
        key = stable_hash({
            "recipe": recipe.key(), "data": self.fingerprint, "rows": _digest(rows),
            "masks": _digest(np.packbits(masks)), "seeds": seeds, "eval": _digest(eval_rows),
        })  # fmt: skip
        hit = self.cache.get_arrays("models", key)
        if hit is not None:
            self._tick(f"{task} (reused from cache)", 1, 1, f"set of {len(masks)} model(s)")
            z = hit.get("logits")
            outputs = ModelOutputs.from_logits(z) if z is not None else ModelOutputs(hit["proba"])
            return ModelSet(outputs, hit["trained_on"], json.loads(str(hit["privacy"])))
        self.trainings += 1
        shard = self.backend.run(
            recipe, self.inputs, rows, masks, seeds, eval_rows,
            tick=None if self.progress is None else (lambda d, t, unit: self._tick(task, d, t, unit)),
        )  # fmt: skip
        outputs, privacy = shard.outputs, shard.privacy
        trained = np.zeros((len(masks), len(self.inputs.y)), dtype=bool)
        for k, m in enumerate(masks):
            trained[k, rows[m]] = True
        trained_on = trained[:, eval_rows]
        arrays = {"trained_on": trained_on, "privacy": np.array(json.dumps(privacy))}
        if outputs.logits is not None:
            arrays["logits"] = outputs.logits.astype(np.float64)
        else:
            arrays["proba"] = outputs.proba
        self.cache.put_arrays("models", key, arrays)
        return ModelSet(outputs, trained_on, privacy, shard.fitted)

    def _tick(self, task: str, done: int, total: int, unit: str) -> None:
        if self.progress is not None:
            self.progress(task, done, total, unit)
