"""Where the model bank trains: in this process (``local``) or as shards of models on Ray (``ray``).

An audit is "train many models, score them". A model set (K reference, shadow or game models)
is split into shards of consecutive models; each shard is one call of the recipe's ``fit`` and
``outputs``, and the shards' outputs are stacked back in order. Every model's batches, noise and
initialisation come from its own seed streams (``fairleak.train``: per-model generators), so any
split gives the models the local backend trains, bit for bit (tested). Ray is an optional
dependency (``pip install 'fairleak[ray]'``); it is used as it is meant to be (tasks, the object
store for the shared inputs), not wrapped in a scheduler of our own.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fairleak.attacks import ModelOutputs
from fairleak.audit.recipes import Fitted, Inputs, Recipe
from fairleak.errors import ParameterError

__all__ = ["Backend", "LocalBackend", "RayBackend", "Shard", "make_backend", "merge_privacy", "shard_bounds"]

Tick = Callable[[int, int, str], None]  # (done, total, unit)


@dataclass
class Shard:
    """What training one shard of a model set gives back: the models' outputs on the requested
    rows, their privacy figures, and (local backend only) the fitted models."""

    outputs: ModelOutputs
    privacy: dict[str, Any]
    fitted: Fitted | None = None


def shard_bounds(n_models: int, n_shards: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) ranges of about equal size, at most ``n_models`` of them."""
    n = max(1, min(int(n_shards), int(n_models)))
    edges = np.linspace(0, n_models, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


def merge_privacy(parts: Sequence[dict[str, Any]], sizes: Sequence[int]) -> dict[str, Any]:
    """The privacy record of the whole set from its shards': per-model lists (one entry per
    model of the shard) are concatenated in order; everything else is the first shard's."""
    if len(parts) == 1:
        return dict(parts[0])
    out: dict[str, Any] = {}
    for key, first in parts[0].items():
        values = [p.get(key) for p in parts]
        if isinstance(first, list) and all(isinstance(v, list) and len(v) == n for v, n in zip(values, sizes, strict=True)):
            out[key] = [x for v in values for x in v]
        else:
            out[key] = first
    return out


def _stack(outputs: Sequence[ModelOutputs]) -> ModelOutputs:
    if len(outputs) == 1:
        return outputs[0]
    logits = [o.logits for o in outputs]
    if all(z is not None for z in logits):
        return ModelOutputs(np.concatenate([o.proba for o in outputs]), np.concatenate(logits))
    return ModelOutputs(np.concatenate([o.proba for o in outputs]))


def progress_unit(recipe: Recipe, n_models: int) -> str:
    """What a training progress bar counts for ``n_models`` models of ``recipe``."""
    return "model fits" if recipe.kind != "fairleak" else f"optimiser steps ({n_models} models at once)"


def fit_shard(
    recipe: Recipe, inputs: Inputs, rows: np.ndarray, masks: np.ndarray, seeds: list[int],
    eval_rows: np.ndarray, progress: Callable[[int, int], None] | None = None,
) -> Shard:  # fmt: skip
    """Train one shard (models ``seeds``, model k on ``rows[masks[k]]``) and score it."""
    fitted = recipe.fit(inputs, rows, masks, seeds, progress=progress)
    return Shard(fitted.outputs(inputs, eval_rows), dict(fitted.privacy), fitted)


class Backend(ABC):
    """Trains a model set and returns its outputs on ``eval_rows``."""

    name: str

    @abstractmethod
    def run(
        self, recipe: Recipe, inputs: Inputs, rows: np.ndarray, masks: np.ndarray, seeds: list[int],
        eval_rows: np.ndarray, tick: Tick | None = None,
    ) -> Shard:  # fmt: skip
        """The whole set's outputs, privacy figures (and fitted models where they stay here)."""


class LocalBackend(Backend):
    """Everything in this process: the whole set is one call of the recipe (K models at once)."""

    name = "local"

    def run(self, recipe, inputs, rows, masks, seeds, eval_rows, tick=None) -> Shard:
        unit = progress_unit(recipe, len(masks))
        progress = None if tick is None else (lambda d, t: tick(d, t, unit))
        return fit_shard(recipe, inputs, rows, masks, seeds, eval_rows, progress)


def _ray_task(recipe, inputs, rows, masks, seeds, eval_rows) -> tuple[ModelOutputs, dict[str, Any]]:
    shard = fit_shard(recipe, inputs, rows, masks, seeds, eval_rows)
    return shard.outputs, shard.privacy  # the fitted models stay on the worker


class RayBackend(Backend):
    """Shards of a model set as Ray tasks (one CPU each by default).

    ``address``: an existing cluster (``"auto"``, ``"ray://head:10001"``); None starts a local
    Ray (or joins the one this process already started). ``shards``: shards per model set
    (default: the cluster's CPUs / ``cpus_per_shard``). ``min_models``: sets smaller than this
    (the audited models themselves) train here, where shipping them would cost more than it saves.
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, shards: int | None = None, cpus_per_shard: float = 1.0,
        min_models: int = 2,
    ) -> None:  # fmt: skip
        try:
            import ray
        except ImportError:
            raise ParameterError(
                "The 'ray' backend needs Ray: pip install 'fairleak[ray]' (or choose backend 'local')."
            ) from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        self.cpus_per_shard = float(cpus_per_shard)
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        self.shards = int(shards) if shards else max(1, int(cpus // self.cpus_per_shard))
        self.min_models = int(min_models)
        self._remote = ray.remote(num_cpus=self.cpus_per_shard)(_ray_task)
        self._local = LocalBackend()
        self._shared: tuple[Inputs, Any] | None = None

    def run(self, recipe, inputs, rows, masks, seeds, eval_rows, tick=None) -> Shard:
        K = len(masks)
        if K < self.min_models or self.shards == 1:
            return self._local.run(recipe, inputs, rows, masks, seeds, eval_rows, tick)
        if recipe.kind == "fairleak":
            inputs.matrix  # noqa: B018  (encode once here, not once per worker)
        ray = self.ray
        if self._shared is None or self._shared[0] is not inputs:  # one copy in the object store
            self._shared = (inputs, ray.put(inputs))
        shared = self._shared[1]
        bounds = shard_bounds(K, self.shards)
        futures = [
            self._remote.remote(recipe, shared, rows, masks[a:b], list(seeds[a:b]), eval_rows) for a, b in bounds
        ]
        pending, done = list(futures), 0
        while pending:  # progress by finished shard
            ready, pending = ray.wait(pending, num_returns=1)
            done += len(ready)
            if tick is not None:
                tick(done, len(futures), "shards")
        results = ray.get(futures)  # in shard order
        privacy = merge_privacy([p for _, p in results], [b - a for a, b in bounds])
        return Shard(_stack([o for o, _ in results]), privacy, None)


BackendName = Literal["local", "ray"]


def make_backend(name: str = "local", *, address: str | None = None, shards: int | None = None) -> Backend:
    """The backend called ``name`` (``local`` or ``ray``)."""
    if name == "local":
        if address is not None:
            raise ParameterError("An address is only used by the 'ray' backend: add --backend ray.")
        return LocalBackend()
    if name == "ray":
        return RayBackend(address=address, shards=shards)
    raise ParameterError(f"Unknown backend {name!r}: choose 'local' or 'ray'.")
