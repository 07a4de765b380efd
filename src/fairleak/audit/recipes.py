"""Recipes: how to train models like a target, K at once, on subsets of the audit's rows.

Attacks that need reference, shadow or game models get them by running the *target's own
recipe*: fairleak's models through the vectorised ensemble trainer (:class:`FairleakRecipe`), any
scikit-learn estimator or Pipeline through ``sklearn.base.clone`` on the same kind of input it
takes (:class:`SklearnRecipe`, DataFrame in, DataFrame out). A recipe trains on an
:class:`Inputs` (the audit's table in both forms) and returns a :class:`Fitted` set of models whose
outputs are :class:`~fairleak.attacks.ModelOutputs`.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone

from fairleak.attacks import ModelOutputs
from fairleak.data import group_codes
from fairleak.errors import DataValidationError
from fairleak.train import (
    DPConfig,
    Ensemble,
    FairnessConfig,
    TrainConfig,
    group_columns,
    train_ensemble,
)

__all__ = [
    "FairleakRecipe",
    "Fitted",
    "Inputs",
    "Recipe",
    "SklearnRecipe",
    "accepts_sensitive",
    "batches",
    "positive_column",
]

Progress = Callable[[int, int], None]
#: the seed of public pretraining (one model per recipe, whatever the set's seeds)
_PRETRAIN_SEED = 0x9E7


@dataclass
class Inputs:
    """The audit's rows in the forms recipes take: ``frame`` (the feature columns, a
    DataFrame), ``raw`` (every column but the label, protected attributes unbinned: what a model
    fitted outside fairleak may read), ``matrix`` (float32, fairleak's numeric encoding; built on
    first use; ``encode`` applies it to new rows), labels ``y`` (0/1) and the protected attributes ``sensitive`` (strings);
    ``public``: rows public to the auditor and the attacker (the audit's population), which
    recipes with public pretraining train on without privacy."""

    frame: pd.DataFrame
    y: np.ndarray
    sensitive: pd.DataFrame
    raw: pd.DataFrame | np.ndarray | None = None
    make_matrix: Callable[[], np.ndarray] | None = None
    #: the same numeric encoding for new rows of ``frame``'s columns (synthetic rows)
    encode: Callable[[pd.DataFrame], np.ndarray] | None = None
    public: np.ndarray | None = None
    _matrix: np.ndarray | None = field(default=None, repr=False)
    #: public-pretraining starts already trained on these inputs (see FairleakRecipe._pretrained)
    _pretrained: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def table(self, kind: str, columns: tuple[str, ...] | None = None) -> Any:
        """The input of a model that reads ``kind`` (``frame``, ``raw`` or ``matrix``)."""
        if kind == "matrix":
            return self.matrix
        df = self.raw if kind == "raw" and self.raw is not None else self.frame
        if isinstance(df, np.ndarray):  # the caller's own array (Python API)
            return df
        if columns is not None:
            missing = [c for c in columns if c not in df.columns]
            if missing:
                raise DataValidationError(
                    f"The model was fitted on column(s) {missing} that the data lacks. Give the "
                    "same columns the model was trained on (features and, if it used them, the "
                    "protected attributes)."
                )
            df = df[list(columns)]
        return df

    @property
    def matrix(self) -> np.ndarray:
        if self._matrix is None:
            if self.make_matrix is None:
                raise DataValidationError("These inputs have no numeric encoding for fairleak's models.")
            self._matrix = self.make_matrix()
        return self._matrix

    def codes(self, column: str) -> np.ndarray:
        """Integer codes of one protected attribute (sorted group names)."""
        return group_codes(self.sensitive[column].to_numpy())[0]


class Fitted(ABC):
    """K fitted models."""

    n_models: int
    privacy: dict[str, Any]

    @abstractmethod
    def outputs(self, inputs: Inputs, rows: np.ndarray) -> ModelOutputs:
        """Outputs [K, len(rows), 2] on the given rows of ``inputs``."""

    def select(self, models: slice, recipe: Recipe) -> Fitted | None:
        """Some of the models, as trained by ``recipe`` (None where not supported)."""
        return None


class Recipe(ABC):
    """How to train models like a target."""

    kind: str

    @abstractmethod
    def key(self) -> dict[str, Any]:
        """JSON-able identity (for the model cache and results.json)."""

    @abstractmethod
    def fit(
        self, inputs: Inputs, rows: np.ndarray, masks: np.ndarray, seeds: list[int],
        progress: Progress | None = None,
    ) -> Fitted:  # fmt: skip
        """Train ``len(masks)`` models; model k on ``rows[masks[k]]``."""

    @property
    def private(self) -> bool:
        return False

    def with_penalty_weight(self, weight: float) -> Recipe:
        raise DataValidationError(f"A {self.kind} recipe has no fairness penalty weight to change.")

    def batch_key(self) -> str | None:
        """Recipes with the same (non-None) key train together in one :meth:`fit_batch` call,
        each model exactly as it would alone (sweeps: K candidates for the cost of one set)."""
        return None

    @classmethod
    def merge_batch(cls, recipes: list[Recipe], n_models: int) -> Recipe | None:
        """One recipe that trains ``n_models`` models for each of ``recipes`` (one
        :meth:`batch_key`), recipe g's as models ``g * n_models ...``, each as that recipe alone
        would; None where the recipes share work otherwise (:meth:`fit_batch`)."""
        return None

    @classmethod
    def fit_batch(
        cls, recipes: list[Recipe], inputs: Inputs, rows: np.ndarray, masks: np.ndarray,
        seeds: list[int], progress: Progress | None = None,
    ) -> list[Fitted]:  # fmt: skip
        """``len(masks)`` models per recipe, model k of each on ``rows[masks[k]]`` with seed
        ``seeds[k]`` (the same design for every recipe). Default: one recipe after the other;
        subclasses share the work."""
        out = []
        for i, r in enumerate(recipes):
            out.append(r.fit(inputs, rows, masks, seeds))
            if progress is not None:
                progress(i + 1, len(recipes))
        return out


def batches(recipes: list[Recipe]) -> list[list[int]]:
    """Indices of ``recipes`` grouped into sets that train together (:meth:`Recipe.batch_key`;
    a recipe without a key is a set of its own). fairleak's non-private models without a penalty
    join the first penalised set with the same settings (as weight 0, which is exactly no penalty)."""
    keyed: dict[str, list[int]] = {}
    alone: list[list[int]] = []
    for i, r in enumerate(recipes):
        k = r.batch_key()
        if k is None:
            alone.append([i])
        else:
            keyed.setdefault(k, []).append(i)
    merged: dict[str, list[int]] = {}
    for k, idx in keyed.items():
        if k.endswith("|unpenalised"):
            host = next((h for h in keyed if h.startswith(k.removesuffix("unpenalised")) and h != k), None)
            if host is not None:
                merged.setdefault(host, []).extend(idx)
                continue
        merged.setdefault(k, []).extend(idx)
    return [sorted(v) for v in merged.values()] + alone


class _EnsembleFitted(Fitted):
    def __init__(self, ens: Ensemble, recipe: FairleakRecipe) -> None:
        self.ensemble, self.recipe = ens, recipe
        self.n_models = ens.n_models
        self.privacy = {
            "epsilon": ens.epsilon,
            "delta": ens.delta,
            "noise_multiplier": ens.noise_multiplier,
            **({"mechanism": ens.privacy} if ens.privacy else {}),
        }

    def outputs(self, inputs: Inputs, rows: np.ndarray) -> ModelOutputs:
        return ModelOutputs.from_logits(self.ensemble.predict_logits(self.recipe.features(inputs)[rows]))

    def select(self, models: slice, recipe: Recipe) -> Fitted:
        assert isinstance(recipe, FairleakRecipe)
        return _EnsembleFitted(self.ensemble[models], recipe)


@dataclass(frozen=True)
class FairleakRecipe(Recipe):
    """fairleak's own MLP / logistic regression, trained K at once by the ensemble trainer."""

    train: TrainConfig = field(default_factory=TrainConfig)
    fairness: FairnessConfig | None = None
    dp: DPConfig | None = None
    input: Literal["matrix", "raw"] = "matrix"
    columns: tuple[str, ...] | None = None
    kind: str = "fairleak"
    #: per-model penalty weights (model k: ``fairness_weights[k]``) instead of ``fairness.weight``
    fairness_weights: tuple[float, ...] | None = None
    #: public pretraining (DP recipes): the models start from one model of this recipe trained
    #: with these settings, without privacy, on the public rows (``Inputs.public``)
    pretrain: TrainConfig | None = None

    def key(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "train": self.train.to_dict(),
            "fairness": None if self.fairness is None else self.fairness.to_dict(),
            "dp": None if self.dp is None else self.dp.to_dict(),
            "input": self.input,
            "columns": self.columns,
        }
        if self.fairness_weights is not None:
            out["fairness_weights"] = list(self.fairness_weights)
        if self.pretrain is not None:
            out["pretrain"] = self.pretrain.to_dict()
        return out

    def batch_key(self) -> str | None:
        """Models differing only in the penalty's weight train as one ensemble with a weight per
        model. Without DP a zero weight is exactly no penalty, so unpenalised models join a
        penalised set; under DP the private fairness term is a release that changes the noise
        calibration, so penalised and unpenalised DP models train apart."""
        if self.fairness_weights is not None:
            return None
        w = 0.0 if self.fairness is None else self.fairness.weight
        base = {"kind": self.kind, "train": self.train.to_dict(),
                "dp": None if self.dp is None else self.dp.to_dict(),
                "input": self.input, "columns": self.columns,
                "pretrain": None if self.pretrain is None else self.pretrain.to_dict()}  # fmt: skip
        head = json.dumps(base, sort_keys=True, default=str)
        if w == 0 and self.dp is None:
            return head + "|unpenalised"
        pen = None if w == 0 else self.fairness.model_dump(mode="json", exclude={"weight"})  # type: ignore[union-attr]
        return head + "|" + json.dumps(pen, sort_keys=True)

    @classmethod
    def merge_batch(cls, recipes, n_models) -> FairleakRecipe:
        """All ``recipes`` (one :meth:`batch_key`) as one recipe of ``len(recipes) x n_models``
        models with a penalty weight per model; equal to training each alone (tested)."""
        fair = next((r.fairness for r in recipes if r.fairness is not None and r.fairness.weight > 0), None)
        weights = tuple(0.0 if r.fairness is None else float(r.fairness.weight) for r in recipes for _ in range(n_models))
        first = recipes[0]
        return FairleakRecipe(first.train, fair, first.dp, first.input, first.columns,
                              fairness_weights=None if fair is None else weights,
                              pretrain=first.pretrain)  # fmt: skip

    @classmethod
    def fit_batch(cls, recipes, inputs, rows, masks, seeds, progress=None) -> list[Fitted]:
        """All ``recipes`` as one ensemble (:meth:`merge_batch`), split back per recipe."""
        if len(recipes) == 1:
            return super().fit_batch(recipes, inputs, rows, masks, seeds, progress)
        masks = np.asarray(masks, dtype=bool)
        K = len(masks)
        merged = cls.merge_batch(recipes, K)
        fitted = merged.fit(inputs, rows, np.tile(masks, (len(recipes), 1)), list(seeds) * len(recipes), progress)
        return [fitted.select(slice(g * K, (g + 1) * K), r) for g, r in enumerate(recipes)]

    def features(self, inputs: Inputs) -> np.ndarray:
        """The float32 matrix this recipe's models read: fairleak's encoding, or numeric columns."""
        if self.input == "matrix":
            return inputs.matrix
        try:
            return np.ascontiguousarray(np.asarray(inputs.table("raw", self.columns), dtype=np.float32))
        except (TypeError, ValueError) as exc:
            raise DataValidationError(
                f"fairleak's models read numbers; the columns {self.columns} are not all numeric ({exc})."
            ) from None

    @property
    def private(self) -> bool:
        return self.dp is not None

    def with_penalty_weight(self, weight: float) -> FairleakRecipe:
        if self.fairness is None:
            return super().with_penalty_weight(weight)
        fair = FairnessConfig(**{**self.fairness.model_dump(), "weight": weight})
        return FairleakRecipe(self.train, fair, self.dp, self.input, self.columns, self.kind,
                              pretrain=self.pretrain)  # fmt: skip

    def fit(self, inputs, rows, masks, seeds, progress=None) -> Fitted:
        penalised, clip = group_columns(self.fairness, self.dp, list(inputs.sensitive.columns))
        groups = (
            np.stack([inputs.codes(c)[rows] for c in penalised], 1) if penalised else None
        )
        clip_groups = None if clip is None else inputs.codes(clip)[rows]
        # The audit measures mechanisms rather than releasing models: its DP models draw their
        # noise from the seeds (the same seed gives the same audit; recorded in their metadata).
        dp = self.dp if self.dp is None else self.dp.model_copy(update={"noise": "reproducible"})
        init, public = self._pretrained(inputs, seeds)
        ens = train_ensemble(
            self.features(inputs)[rows], inputs.y[rows], masks, config=self.train, seeds=seeds,
            groups=groups, fairness=self.fairness, dp=dp, clip_groups=clip_groups,
            fairness_weights=self.fairness_weights, init=init, progress=progress,
        )  # fmt: skip
        if public is not None and ens.privacy is not None:
            ens.privacy = {
                **ens.privacy, "public_pretraining": {"rows": public},
                "does_not_cover": f"the initial weights, trained without privacy on {public:,} public "
                f"rows (public pretraining); {ens.privacy.get('does_not_cover', '')}",
            }  # fmt: skip
        return _EnsembleFitted(ens, self)

    def _pretrained(self, inputs, seeds) -> tuple[Ensemble | None, int | None]:
        """Public pretraining: one model of this recipe trained without privacy (same penalty; one
        per penalty weight in a merged set) on the public rows, the start of all K models, like a
        published checkpoint. Every set of the recipe starts there, as an attacker copying the
        recipe would: shadow models, which fine-tune on public rows, included. One fixed seed:
        every shard of a set computes the same model. Returns the K starts and how many rows the
        pretraining saw."""
        if self.pretrain is None:
            return None, None
        public = inputs.public
        if public is None or len(public) == 0:
            raise DataValidationError(
                "This recipe pretrains on public rows, and these inputs have none (Inputs.public)."
            )
        penalised, _ = group_columns(self.fairness, None, list(inputs.sensitive.columns))
        groups = np.stack([inputs.codes(c)[public] for c in penalised], 1) if penalised else None
        weights = [0.0] * len(seeds) if self.fairness_weights is None else self.fairness_weights
        distinct, which = np.unique(np.asarray(weights, dtype=float), return_inverse=True)
        def start(w: float) -> Ensemble:
            # one per audit: every model set of the recipe (reference, shadow, PA-ALOOA games)
            # starts from the same public model, trained once on these inputs
            rows = hashlib.sha256(public.astype(np.int64).tobytes() + inputs.y[public].tobytes())
            key = json.dumps([self.pretrain.to_dict(), self.input, self.columns, float(w),
                              None if self.fairness is None else self.fairness.model_dump(),
                              rows.hexdigest()], sort_keys=True, default=str)  # fmt: skip
            if key not in inputs._pretrained:
                inputs._pretrained[key] = train_ensemble(
                    self.features(inputs)[public], inputs.y[public], np.ones((1, len(public)), bool),
                    config=self.pretrain, seeds=[_PRETRAIN_SEED], groups=groups, fairness=self.fairness,
                    fairness_weights=None if self.fairness_weights is None else [w],
                )  # fmt: skip
            return inputs._pretrained[key]

        starts = [start(w) for w in distinct]
        layers = range(len(starts[0].weights))
        init = Ensemble(
            [torch.cat([starts[i].weights[j] for i in which]) for j in layers],
            [torch.cat([starts[i].biases[j] for i in which]) for j in layers],
            self.pretrain,
        )
        return init, len(public)


def positive_column(model: Any, positive: Any = 1) -> int:
    """Which column of ``model.predict_proba`` is the positive class (from ``classes_``)."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        return 1
    names = [str(c) for c in np.asarray(classes).tolist()]
    if len(names) != 2:
        raise DataValidationError(
            f"fairleak audits binary classifiers; the model has {len(names)} classes {names[:10]}."
        )
    for cand in (str(positive), "1", "True"):
        if cand in names:
            return names.index(cand)
    raise DataValidationError(
        f"The model's classes {names} do not include the positive label {positive!r} of the data."
    )


def accepts_sensitive(estimator: Any) -> bool:
    fit = getattr(estimator, "fit", None)
    try:
        return fit is not None and "sensitive_features" in inspect.signature(fit).parameters
    except (TypeError, ValueError):
        return False


class _EstimatorsFitted(Fitted):
    def __init__(self, models: list[Any], input_kind: str, columns: tuple[str, ...] | None) -> None:
        self.models = models
        self.n_models = len(models)
        self.input_kind, self.columns = input_kind, columns
        eps = [getattr(m, "epsilon_", None) for m in models]
        self.privacy = {
            "epsilon": None if any(e is None for e in eps) else [float(e) for e in eps],
            "delta": getattr(models[0], "delta_", None),
            "noise_multiplier": None,
        }

    def outputs(self, inputs: Inputs, rows: np.ndarray) -> ModelOutputs:
        X = _take(inputs.table(self.input_kind, self.columns), rows)
        probas = []
        for m in self.models:
            p = np.asarray(m.predict_proba(X), dtype=np.float64)
            j = positive_column(m)
            probas.append(np.stack([p[:, 1 - j], p[:, j]], 1))
        return ModelOutputs.from_proba(np.stack(probas))


def _take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]


@dataclass(frozen=True)
class SklearnRecipe(Recipe):
    """Any scikit-learn classifier or Pipeline: cloned (same steps, same hyperparameters) and
    fitted once per model on its rows of the input it takes: the feature DataFrame
    (``input="frame"``), the table as the user has it (``"raw"``, restricted to ``columns``, the
    columns a user's fitted model was trained on) or fairleak's numeric encoding (``"matrix"``).
    Estimators whose ``fit`` takes ``sensitive_features`` get the protected attributes of their
    rows. ``random_state`` parameters, where the estimator has them, come from each model's seed."""

    estimator: Any = None
    input: Literal["frame", "raw", "matrix"] = "frame"
    columns: tuple[str, ...] | None = None
    kind: str = "sklearn"

    def key(self) -> dict[str, Any]:
        est = self.estimator
        params = {k: repr(v) for k, v in sorted(est.get_params(deep=True).items())}
        return {"kind": self.kind, "class": f"{type(est).__module__}.{type(est).__qualname__}",
                "params": params, "input": self.input, "columns": self.columns}  # fmt: skip

    @property
    def private(self) -> bool:
        return getattr(self.estimator, "target_epsilon", None) is not None

    def batch_key(self) -> str | None:
        """FairBoost models differing only in how many rounds they use (``selection``) are one
        fit: the rounds do not depend on it, only the truncation does."""
        from fairleak.train.fairboost import FairBoostClassifier

        if not isinstance(self.estimator, FairBoostClassifier):
            return None
        key = self.key()
        key["params"] = {k: v for k, v in key["params"].items() if k != "selection"}
        return json.dumps(key, sort_keys=True)

    @classmethod
    def fit_batch(cls, recipes, inputs, rows, masks, seeds, progress=None) -> list[Fitted]:
        if len(recipes) == 1:
            return super().fit_batch(recipes, inputs, rows, masks, seeds, progress)
        shared = recipes[0].fit(inputs, rows, masks, seeds, progress)
        assert isinstance(shared, _EstimatorsFitted)
        out: list[Fitted] = []
        for r in recipes:
            views = []
            for model in shared.models:
                view = copy.copy(model)  # shares the fitted rounds; only theta_ differs
                view.selection = r.estimator.selection
                view.theta_ = view._choose_theta()
                views.append(view)
            out.append(_EstimatorsFitted(views, r.input, r.columns))
        return out

    def fit(self, inputs, rows, masks, seeds, progress=None) -> Fitted:
        models = []
        X = _take(inputs.table(self.input, self.columns), rows)
        y = inputs.y[rows]
        sens = inputs.sensitive.iloc[rows].reset_index(drop=True)
        for k, m in enumerate(np.asarray(masks, dtype=bool)):
            est = clone(self.estimator)
            seed_params = {
                p: int(seeds[k]) % (2**31)
                for p in est.get_params(deep=True)
                if p == "random_state" or p.endswith("__random_state")
            }
            if seed_params:
                est.set_params(**seed_params)
            Xk = _take(X, np.flatnonzero(m))
            kw = {"sensitive_features": sens[m].reset_index(drop=True)} if accepts_sensitive(est) else {}
            models.append(est.fit(Xk, y[m], **kw))
            if progress is not None:
                progress(k + 1, len(masks))
        return _EstimatorsFitted(models, self.input, self.columns)
