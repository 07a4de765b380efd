"""What an audit audits: any classifier.

- a model the audit trains itself on the members: one of fairleak's recipes, or any scikit-learn
  estimator named in the config (``estimator: sklearn.ensemble.HistGradientBoostingClassifier``);
- a model the user already fitted (a scikit-learn estimator or Pipeline taking their DataFrame as
  is, anything with ``predict_proba``, or a saved model file), with the user saying which rows it
  trained on;
- only its predictions (a probability per row).

Attacks that need models trained like the target use the target's recipe (:mod:`.recipes`):
for a fitted scikit-learn model, clones of its unfitted self. Where no recipe is known (an opaque
model, predictions only), those attacks are skipped with a note, never silently replaced by
another model; a ``reference_recipe`` of another kind is allowed and warned about.

Model files are untrusted input: they are read with skops' secure format, which loads only
trusted types; a pickle is read only when the user says ``trust_pickle=True`` (``--trust-pickle``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fairleak.attacks import ModelOutputs
from fairleak.audit.recipes import FairleakRecipe, Inputs, Recipe, SklearnRecipe, positive_column
from fairleak.errors import ConfigError, DataValidationError

__all__ = [
    "ESTIMATOR_MODULES",
    "AuditTarget",
    "estimator_from_spec",
    "load_fitted_model",
    "recipe_of",
]

#: Packages whose estimator classes a config may name (a config is untrusted input: it may not
#: import arbitrary code). Each name must be a class with ``fit`` and ``predict_proba``.
ESTIMATOR_MODULES = ("sklearn.", "fairleak.", "xgboost.", "lightgbm.", "catboost.")


@dataclass
class AuditTarget:
    """One audited model.

    ``recipe``: how to train models like it (None: no attack that needs reference models can run).
    ``fitted``: a model the user fitted (its outputs are read, it is never refitted).
    ``outputs``: its outputs on every row of the audit's data, once known.
    ``notes``: what the audit did differently for it (skipped attacks, a foreign reference recipe).
    """

    name: str
    kind: Literal["fairleak", "sklearn", "fitted", "predictions"]
    recipe: Recipe | None = None
    fitted: Any = None
    predictions: np.ndarray | None = None
    reference_recipe: Recipe | None = None
    notes: list[str] = field(default_factory=list)
    outputs: ModelOutputs | None = None
    privacy: dict[str, Any] = field(default_factory=dict)
    #: the model the audit trained for it in this run (a recipe's ``Fitted``; None if it came
    #: from the cache or the user fitted it); the robustness stage queries it, a sweep exports it
    trained: Any = None

    @property
    def trained_by_audit(self) -> bool:
        return self.fitted is None and self.predictions is None

    @property
    def attack_recipe(self) -> Recipe | None:
        """The recipe reference, shadow and game models use: the user's override, else the
        target's own."""
        return self.reference_recipe or self.recipe

    def describe(self) -> dict[str, Any]:
        rec = self.recipe.key() if self.recipe is not None else None
        ref = self.reference_recipe.key() if self.reference_recipe is not None else None
        return {"kind": self.kind, "recipe": rec, "reference_recipe": ref}

    def outputs_of_fitted(self, inputs: Inputs, positive: Any) -> ModelOutputs:
        """The user-fitted model's (or the predictions') outputs on every row of ``inputs``."""
        if self.predictions is not None:
            p1 = np.asarray(self.predictions, dtype=np.float64)
            return ModelOutputs.from_proba(np.stack([1 - p1, p1], 1)[None])
        model = self.fitted
        names = getattr(model, "feature_names_in_", None)
        X = inputs.table("raw", None if names is None else tuple(str(c) for c in names))
        ens = getattr(model, "ensemble_", None)
        if ens is not None and hasattr(ens, "predict_logits"):  # fairleak's own: exact logits
            return ModelOutputs.from_logits(ens.predict_logits(np.asarray(X, dtype=np.float32)))
        try:
            p = np.asarray(model.predict_proba(X), dtype=np.float64)
        except Exception as exc:  # the user's model, any failure: say what it was
            raise DataValidationError(
                f"The model ({type(model).__name__}) failed to score the data: {type(exc).__name__}: "
                f"{exc}. It must accept the data's feature columns as a DataFrame."
            ) from exc
        j = positive_column(model, positive)
        return ModelOutputs.from_proba(np.stack([p[:, 1 - j], p[:, j]], 1)[None])


def recipe_of(model: Any) -> Recipe | None:
    """How to train models like a fitted ``model``: fairleak's recipe for a ``FairleakClassifier``
    (trained K at once), clones of its unfitted self for any other scikit-learn estimator or
    Pipeline; None for an object that only predicts."""
    from fairleak.train import FairleakClassifier

    names = getattr(model, "feature_names_in_", None)
    if isinstance(model, FairleakClassifier):
        train, fair, dp = model._configs()
        cols = None if names is None else tuple(str(c) for c in names)
        return FairleakRecipe(train, fair, dp, input="raw", columns=cols)
    if hasattr(model, "get_params") and hasattr(model, "fit"):
        from sklearn.base import clone

        try:
            clone(model)
        except Exception:  # not clonable: treated as opaque
            return None
        cols = None if names is None else tuple(str(c) for c in names)
        return SklearnRecipe(estimator=model, input="raw", columns=cols)
    return None


def _import_estimator(path: str) -> type:
    if not any(path.startswith(p) for p in ESTIMATOR_MODULES):
        raise ConfigError(
            f"estimator '{path}': only classes from {', '.join(p.rstrip('.') for p in ESTIMATOR_MODULES)} "
            "may be named in a config (a config must not import arbitrary code)."
        )
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ConfigError(f"estimator '{path}': cannot import '{module}' ({exc}); is it installed?") from None
    except AttributeError:
        raise ConfigError(f"estimator '{path}': '{module}' has no '{name}'.") from None
    if not (isinstance(cls, type) and hasattr(cls, "fit") and hasattr(cls, "predict_proba")):
        raise ConfigError(f"estimator '{path}' is not a classifier class with fit and predict_proba.")
    return cls


def estimator_from_spec(path: str, params: dict[str, Any], preprocess: str) -> Any:
    """An unfitted estimator from a config: ``path`` (an allowed class), ``params`` and, with
    ``preprocess="auto"``, fairleak's :class:`~fairleak.data.TabularPreprocessor` in front of it
    (one-hot categoricals, standardised numerics) so it takes the raw DataFrame."""
    cls = _import_estimator(path)
    try:
        est = cls(**params)
    except TypeError as exc:
        raise ConfigError(f"estimator '{path}': bad params {sorted(params)} ({exc}).") from None
    if preprocess == "auto":
        from sklearn.pipeline import Pipeline

        from fairleak.data import TabularPreprocessor

        return Pipeline([("preprocess", TabularPreprocessor()), ("model", est)])
    return est


_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "fairleak.")


def load_fitted_model(path: str | Path, *, trust_pickle: bool = False, trusted: list[str] | None = None) -> Any:
    """A fitted model from a file: skops (``.skops``, secure: only types of scikit-learn, NumPy,
    SciPy, fairleak and those skops trusts load; name any other in ``trusted``), or a pickle /
    joblib file only with ``trust_pickle=True``."""
    p = Path(path)
    if not p.exists():
        raise DataValidationError(f"The model file '{p}' does not exist.")
    if p.suffix == ".skops":
        try:
            import skops.io as sio
        except ImportError as exc:  # pragma: no cover - skops is a dependency
            raise DataValidationError("Reading .skops files needs skops: pip install skops.") from exc
        try:
            untrusted = sio.get_untrusted_types(file=p)
        except Exception as exc:
            raise DataValidationError(f"'{p}' is not a readable skops file: {exc}.") from exc
        # skops trusts most of scikit-learn; some of its internals (e.g. HistGradientBoosting's
        # TreePredictor) are not on skops' list although they are plain data holders. Types of
        # scikit-learn, NumPy, SciPy and fairleak are trusted here; any other type must be named.
        extra = [t for t in untrusted if t not in (trusted or []) and not t.startswith(_TRUSTED_PREFIXES)]
        if extra:
            raise DataValidationError(
                f"The model file '{p}' contains types skops does not trust by default: {extra}. "
                "If you trust them, pass them with --trust TYPE (trusted=[...] in Python)."
            )
        return sio.load(p, trusted=untrusted)
    if p.suffix in (".pkl", ".pickle", ".joblib"):
        if not trust_pickle:
            raise DataValidationError(
                f"'{p}' is a pickle: loading it can run any code the file contains. Save the model "
                "with skops (skops.io.dump(model, 'model.skops')), or pass --trust-pickle if you "
                "made this file yourself."
            )
        import joblib

        return joblib.load(p)
    raise DataValidationError(
        f"Cannot tell the format of '{p.name}': save the model with skops (.skops), or a pickle "
        "(.pkl / .joblib, with --trust-pickle)."
    )
