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
from fairleak.audit.backends import Backend, LocalBackend, Shard, progress_unit
from fairleak.audit.cache import StageCache, stable_hash
from fairleak.audit.recipes import Fitted, Inputs, Recipe, batches
from fairleak.errors import FairleakError
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


def split_shard(whole: Shard, recipes: list[Recipe], K: int) -> list[Shard]:
    """The set of ``len(recipes) x K`` models a merged recipe trained, back as one shard per
    recipe: outputs, per-model privacy figures and fitted models sliced by model."""
    n = len(recipes) * K
    out = []
    for g, r in enumerate(recipes):
        sl = slice(g * K, (g + 1) * K)
        logits = None if whole.outputs.logits is None else whole.outputs.logits[sl]
        privacy = {k: (v[sl] if isinstance(v, list) and len(v) == n else v) for k, v in whole.privacy.items()}
        fitted = None if whole.fitted is None else whole.fitted.select(sl, r)
        out.append(Shard(ModelOutputs(whole.outputs.proba[sl], logits), privacy, fitted))
    return out


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
        self._held: dict[str, ModelSet] = {}  # prefetched sets, handed out once

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
        key = self._key(recipe, rows, masks, seeds, eval_rows)
        hit = self._held.pop(key, None) or self._cached(key, task)
        if hit is not None:
            return hit
        self.trainings += 1
        shard = self.backend.run(
            recipe, self.inputs, rows, masks, seeds, eval_rows,
            tick=None if self.progress is None else (lambda d, t, unit: self._tick(task, d, t, unit)),
        )  # fmt: skip
        return self._store(key, shard, rows, masks, eval_rows)

    def train_each(
        self, recipes: list[Recipe], *, rows: np.ndarray, seed: int, eval_rows: np.ndarray, task: str,
        names: list[str] | None = None,
    ) -> list[ModelSet]:  # fmt: skip
        """One model per recipe on all of ``rows``, with the seed a one-model :meth:`train`
        call would give it (the audited models); see :meth:`train_many`."""
        ones = np.ones((1, len(rows)), dtype=bool)
        return self.train_many(recipes, rows=rows, masks=ones, seeds=model_seeds(seed, 1),
                               eval_rows=eval_rows, task=task, names=names)  # fmt: skip

    def train_many(
        self, recipes: list[Recipe], *, rows: np.ndarray, masks: np.ndarray, seeds: list[int],
        eval_rows: np.ndarray, task: str, keep: bool = False, names: list[str] | None = None,
    ) -> list[ModelSet]:  # fmt: skip
        """The same design (``masks``, ``seeds``) trained with each of ``recipes``; recipes that
        can train together (:func:`~.recipes.batches`) do, in one call: one merged recipe on the
        backend (:meth:`Recipe.merge_batch`, e.g. fairleak models differing only in the penalty
        weight), or the recipe's own :meth:`Recipe.fit_batch` here. Each model set is cached
        under the key of its own :meth:`train` call, so either way finds it; with ``keep`` it is
        also held in memory until that call asks for it (a prefetch, e.g. every candidate's
        reference models at once, with or without a disk cache)."""
        rows = np.asarray(rows, dtype=np.int64)
        masks = np.asarray(masks, dtype=bool)
        eval_rows = np.asarray(eval_rows, dtype=np.int64)
        seeds = list(seeds)
        keys = [self._key(r, rows, masks, seeds, eval_rows) for r in recipes]
        out: list[ModelSet | None] = [None] * len(recipes)
        pending = []
        for i, k in enumerate(keys):
            out[i] = None if keep and k in self._held else self._cached(k, f"{task} · {i + 1}/{len(recipes)}")
            if out[i] is None:
                pending.append(i)
            elif keep:
                self._held[k] = out[i]
        K = len(masks)
        for group in batches([recipes[i] for i in pending]):
            idx = [pending[g] for g in group]
            self.trainings += 1
            members = [recipes[i] for i in idx]
            label = f"{task} · {len(idx)} recipe(s) at once"
            tick = None if self.progress is None else (lambda d, t, u, lb=label: self._tick(lb, d, t, u))
            try:
                merged = type(members[0]).merge_batch(members, K) if len(members) > 1 else members[0]
                if merged is not None:
                    whole = self.backend.run(
                        merged, self.inputs, rows, np.tile(masks, (len(members), 1)),
                        seeds * len(members), eval_rows, tick=tick,
                    )  # fmt: skip
                    shards = split_shard(whole, members, K)
                else:
                    unit = progress_unit(members[0], K * len(members))
                    fitted = type(members[0]).fit_batch(
                        members, self.inputs, rows, masks, seeds,
                        progress=None if tick is None else (lambda d, t, u=unit, tk=tick: tk(d, t, u)),
                    )  # fmt: skip
                    shards = [Shard(f.outputs(self.inputs, eval_rows), dict(f.privacy), f) for f in fitted]
            except FairleakError as exc:  # say which models (a sweep trains many at once)
                if names is None:
                    raise
                raise type(exc)(f"Training {', '.join(names[i] for i in idx)}: {exc}") from exc
            for i, sh in zip(idx, shards, strict=True):
                out[i] = self._store(keys[i], sh, rows, masks, eval_rows)
                if keep:
                    self._held[keys[i]] = out[i]
        return [o for o in out if o is not None]

    def _key(self, recipe: Recipe, rows, masks, seeds, eval_rows) -> str:
        return stable_hash({
            "recipe": recipe.key(), "data": self.fingerprint, "rows": _digest(rows),
            "masks": _digest(np.packbits(masks)), "seeds": list(seeds), "eval": _digest(eval_rows),
        })  # fmt: skip

    def _cached(self, key: str, task: str) -> ModelSet | None:
        hit = self.cache.get_arrays("models", key)
        if hit is None:
            return None
        self._tick(f"{task} (reused from cache)", 1, 1, "model sets")
        z = hit.get("logits")
        outputs = ModelOutputs.from_logits(z) if z is not None else ModelOutputs(hit["proba"])
        return ModelSet(outputs, hit["trained_on"], json.loads(str(hit["privacy"])))

    def _store(self, key: str, shard: Shard, rows, masks, eval_rows) -> ModelSet:
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
