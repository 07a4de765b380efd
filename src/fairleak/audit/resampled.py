"""Training a target on oversampled members: a recipe that wraps another.

Each model (target, references, shadows) oversamples *its own* training rows with
:class:`fairleak.synth.FairOversampler` (cells = intersection of every protected attribute x
class) and trains the wrapped recipe on them plus the synthetic rows; attacks and fairness then
score the model on the audit's real rows only (synthetic rows never enter the audit set). The
synthetic rows are encoded with the audit's own encoding (``Inputs.encode``, fitted on the
population rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairleak.attacks import ModelOutputs
from fairleak.audit.config import OversampleSection
from fairleak.audit.recipes import Fitted, Inputs, Recipe
from fairleak.errors import DataValidationError
from fairleak.synth.oversample import FairOversampler

__all__ = ["ResampledRecipe"]


class _StackedFitted(Fitted):
    def __init__(self, parts: list[Fitted], added: list[dict[str, int]], notes: list[str]) -> None:
        self.parts = parts
        self.n_models = sum(p.n_models for p in parts)
        self.privacy = dict(parts[0].privacy) if parts else {}
        keys = sorted({k for a in added for k in a})
        # mean over the models of this set (target: one model)
        self.privacy["oversample_added_rows"] = {k: float(np.mean([a.get(k, 0) for a in added])) for k in keys}
        self.privacy["oversample_notes"] = sorted(set(notes))

    def outputs(self, inputs: Inputs, rows: np.ndarray) -> ModelOutputs:
        outs = [p.outputs(inputs, rows) for p in self.parts]
        proba = np.concatenate([o.proba.reshape(-1, *o.proba.shape[-2:]) for o in outs])
        if all(o.logits is not None for o in outs):
            logits = np.concatenate([o.logits.reshape(-1, *o.logits.shape[-2:]) for o in outs])  # type: ignore[union-attr]
            return ModelOutputs(proba, logits)
        return ModelOutputs(proba)


@dataclass(frozen=True)
class ResampledRecipe(Recipe):
    """``base`` trained on each model's rows plus synthetic rows from ``oversample``."""

    base: Recipe
    oversample: OversampleSection
    kind: str = "oversampled"

    def key(self) -> dict[str, Any]:
        return {**self.base.key(), "oversample": self.oversample.model_dump(mode="json")}

    @property
    def private(self) -> bool:
        return False

    def fit(self, inputs, rows, masks, seeds, progress=None) -> Fitted:
        reads = getattr(self.base, "input", "matrix")
        if reads == "matrix" and inputs.encode is None:
            raise DataValidationError("Oversampling needs the audit's encoding of new rows (Inputs.encode).")
        if reads == "raw":
            raise DataValidationError("Oversampling applies to models that read the feature columns, not the raw table.")
        parts, added, notes = [], [], []
        masks = np.asarray(masks, dtype=bool)
        for k, m in enumerate(masks):
            r = np.asarray(rows)[m]
            frame = inputs.frame.iloc[r].reset_index(drop=True)
            sens = inputs.sensitive.iloc[r].reset_index(drop=True)
            over = FairOversampler(self.oversample.strategy, self.oversample.generator,
                                   k_neighbors=self.oversample.k_neighbors,
                                   min_samples_leaf=self.oversample.min_samples_leaf, small_cells="skip",
                                   random_state=int(seeds[k]) % 2**31)  # fmt: skip
            X_res, y_res = over.fit_resample(frame, inputs.y[r], sensitive_features=sens)
            sens_res = over.sensitive_resampled_.reset_index(drop=True)
            n_real = len(r)
            matrix = None
            if reads == "matrix":
                assert inputs.encode is not None
                new = inputs.encode(X_res.iloc[n_real:]) if len(X_res) > n_real else None
                base_m = inputs.matrix[r]
                matrix = base_m if new is None else np.concatenate([base_m, new.astype(base_m.dtype)])
            aug = Inputs(frame=pd.DataFrame(X_res), y=np.asarray(y_res), sensitive=sens_res,
                         make_matrix=(lambda mm=matrix: mm))  # fmt: skip
            n = len(X_res)
            parts.append(self.base.fit(aug, np.arange(n), np.ones((1, n), bool), [int(seeds[k])]))
            added.append(dict(over.added_))
            notes += over.notes_
            if progress is not None:
                progress(k + 1, len(masks))
        return _StackedFitted(parts, added, notes)
