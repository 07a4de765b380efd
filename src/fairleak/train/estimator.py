"""`FairleakClassifier`: a scikit-learn classifier that can be fair, private, or both."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import ValidationError
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from fairleak.data.groups import group_codes, normalize_sensitive
from fairleak.errors import ParameterError
from fairleak.train.config import DPConfig, FairnessConfig, TrainConfig, group_columns
from fairleak.train.model import Ensemble
from fairleak.train.trainer import train_ensemble
from fairleak.validation import format_validation_error

__all__ = ["PARAMETER_MAP", "FairleakClassifier"]

#: Each parameter of :class:`FairleakClassifier` and the hyperparameter it sets: (section, field)
#: of :class:`TrainConfig` ("train"), :class:`FairnessConfig` ("fairness") or :class:`DPConfig`
#: ("dp"). The estimator declares no hyperparameter of its own (a test checks that every field
#: of the three models is reachable from here).
PARAMETER_MAP: dict[str, tuple[str, str]] = {
    "hidden_layer_sizes": ("train", "hidden"),
    "activation": ("train", "activation"),
    "optimizer": ("train", "optimizer"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "lr": ("train", "lr"),
    "weight_decay": ("train", "weight_decay"),
    "momentum": ("train", "momentum"),
    "fairness": ("fairness", "penalty"),
    "fairness_weight": ("fairness", "weight"),
    "fairness_reduce": ("fairness", "reduce"),
    "fairness_attributes": ("fairness", "attributes"),
    "target_epsilon": ("dp", "target_epsilon"),
    "noise_multiplier": ("dp", "noise_multiplier"),
    "delta": ("dp", "delta"),
    "max_grad_norm": ("dp", "max_grad_norm"),
    "accountant": ("dp", "accountant"),
    "group_clipping": ("dp", "group_clipping"),
    "tau": ("dp", "tau"),
    "norm_noise_multiplier": ("dp", "norm_noise_multiplier"),
    "fairness_noise_multiplier": ("dp", "fairness_noise_multiplier"),
    "group_attribute": ("dp", "group_attribute"),
    "norm_clip": ("dp", "norm_clip"),
    "norm_smoothing": ("dp", "norm_smoothing"),
    "min_group_batch": ("dp", "min_group_batch"),
    "tau_mode": ("dp", "tau_mode"),
    "count_noise_multiplier": ("dp", "count_noise_multiplier"),
    "noise": ("dp", "noise"),
}


class FairleakClassifier(ClassifierMixin, BaseEstimator):
    """MLP or logistic-regression classifier with optional fairness penalty and DP-SGD.

    Trained by fairleak's vectorised trainer (one model). Hyperparameters are stored unchanged
    and validated in :meth:`fit`.

    Args:
        hidden_layer_sizes: hidden widths; ``()`` gives logistic regression.
        activation: ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"elu"`` or ``"square"``.
        fairness: ``None`` or a registered penalty (``"demographic_parity"``,
            ``"equalized_odds"``, ``"equal_opportunity"``, ``"l2_softmax"``).
        fairness_weight: lambda of the penalty; ``fairness_reduce``: ``"sum"`` / ``"max"`` over
            protected attributes; ``fairness_attributes``: which columns of
            ``sensitive_features`` it compares (default all).
        target_epsilon / noise_multiplier: train with DP-SGD (give one); ``delta``,
            ``max_grad_norm`` (clipping bound C), ``accountant`` (``"rdp"`` / ``"prv"``).
        group_clipping: DP-SGD-S group-adaptive clipping with bound ``tau``, by the groups of
            ``group_attribute`` (default the first column of ``sensitive_features``);
            ``norm_noise_multiplier`` / ``fairness_noise_multiplier``: the noise of DP-SGD-S's
            norm release and of the private fairness sign.
        optimizer, epochs, batch_size, lr, weight_decay, momentum, random_state: training.

    Every parameter maps to a field of :class:`TrainConfig`, :class:`FairnessConfig` or
    :class:`DPConfig` (:data:`PARAMETER_MAP`), where it is declared and validated.

    Attributes:
        classes_, n_features_in_, epsilon_ (None when not private), delta_, ensemble_,
        privacy_ (None when not private): what ``epsilon_`` covers and what it does not.

    What ``epsilon_`` covers: the rows passed to :meth:`fit`, through every gradient step
    (Poisson sampling, clipping, noise) and every other release made from a sampled batch
    (DP-SGD-S norm sums, private fairness signs: accounted jointly with the gradient, Andrew et
    al. 2021) plus the one-off noisy group counts the mechanisms need (composed). It does not
    cover how ``X`` was made (a scaler or encoder fitted on the same rows leaks their statistics:
    fit it on public data), hyperparameter or model selection on private data, or anything
    computed outside :meth:`fit`. The noise comes from OS entropy and is never stored
    (``noise="secure"``); ``random_state`` seeds only the initialisation.

    Example:
        >>> clf = FairleakClassifier(fairness="demographic_parity", fairness_weight=1.0)
        >>> clf.fit(X, y, sensitive_features=df["sex"])  # doctest: +SKIP
    """

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (64,),
        activation: str = "relu",
        fairness: str | None = None,
        fairness_weight: float = 1.0,
        fairness_reduce: str = "sum",
        fairness_attributes: tuple[str, ...] | None = None,
        target_epsilon: float | None = None,
        noise_multiplier: float | None = None,
        delta: float = 1e-5,
        max_grad_norm: float = 1.0,
        accountant: str = "rdp",
        group_clipping: bool = False,
        tau: float = 2.0,
        norm_noise_multiplier: float = 10.0,
        fairness_noise_multiplier: float = 10.0,
        group_attribute: str | None = None,
        norm_clip: float | None = None,
        norm_smoothing: float = 0.9,
        min_group_batch: float = 5.0,
        tau_mode: str = "two_sided",
        count_noise_multiplier: float = 20.0,
        noise: str = "secure",
        optimizer: str = "adam",
        epochs: int = 10,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        random_state: int | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.fairness = fairness
        self.fairness_weight = fairness_weight
        self.fairness_reduce = fairness_reduce
        self.fairness_attributes = fairness_attributes
        self.target_epsilon = target_epsilon
        self.noise_multiplier = noise_multiplier
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.accountant = accountant
        self.group_clipping = group_clipping
        self.tau = tau
        self.norm_noise_multiplier = norm_noise_multiplier
        self.fairness_noise_multiplier = fairness_noise_multiplier
        self.group_attribute = group_attribute
        self.norm_clip = norm_clip
        self.norm_smoothing = norm_smoothing
        self.min_group_batch = min_group_batch
        self.tau_mode = tau_mode
        self.count_noise_multiplier = count_noise_multiplier
        self.noise = noise
        self.optimizer = optimizer
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.random_state = random_state

    def _configs(self) -> tuple[TrainConfig, FairnessConfig | None, DPConfig | None]:
        """The three hyperparameter models this estimator's parameters map to (:data:`PARAMETER_MAP`)."""
        values: dict[str, dict[str, Any]] = {"train": {}, "fairness": {}, "dp": {}}
        for param, (section, field) in PARAMETER_MAP.items():
            values[section][field] = getattr(self, param)
        hidden = values["train"]["hidden"]
        if not isinstance(hidden, tuple | list):
            raise ParameterError(
                "The 'hidden_layer_sizes' parameter of FairleakClassifier must be a tuple of "
                f"positive ints. Got {hidden!r} instead."
            )
        private = self.target_epsilon is not None or self.noise_multiplier is not None
        if self.group_clipping and not private:
            raise ParameterError(
                "The 'group_clipping' parameter of FairleakClassifier needs DP-SGD: set "
                "'target_epsilon' or 'noise_multiplier' too."
            )
        out = []
        for section, model, used in (
            ("train", TrainConfig, True),
            ("fairness", FairnessConfig, self.fairness is not None),
            ("dp", DPConfig, private),
        ):
            if not used:
                out.append(None)
                continue
            try:
                out.append(model.model_validate(values[section]))
            except ValidationError as exc:
                names = {f: p for p, (s, f) in PARAMETER_MAP.items() if s == section}
                raise ParameterError(
                    format_validation_error(exc, model, owner="FairleakClassifier", names=names)
                ) from None
        return out[0], out[1], out[2]

    def fit(self, X: Any, y: Any, *, sensitive_features: Any = None) -> FairleakClassifier:
        """Fit on ``X``, ``y``; ``sensitive_features`` (one or more columns) for fairness / DP-SGD-S."""
        train, fair, dp = self._configs()
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        self.classes_ = np.unique(y)
        if y_type != "binary" or len(self.classes_) != 2:
            raise ValueError(
                "Only binary classification is supported. FairleakClassifier got y of type "
                f"'{y_type}' with {len(self.classes_)} class(es): {self.classes_.tolist()[:10]}."
            )
        y01 = (y == self.classes_[1]).astype(np.int64)
        groups = clip_groups = None
        if fair is not None or (dp is not None and dp.group_clipping):
            if sensitive_features is None:
                what = "A fairness penalty" if fair is not None else "DP-SGD-S group clipping"
                raise ParameterError(
                    f"{what} needs the protected attributes: call fit(X, y, sensitive_features=...)."
                )
            sf = normalize_sensitive(sensitive_features, n_rows=X.shape[0])
            penalised, clip = group_columns(fair, dp, list(sf.columns), owner="FairleakClassifier")
            if penalised:
                groups = np.stack([group_codes(sf[c].to_numpy())[0] for c in penalised], 1)
            if clip is not None:
                clip_groups = group_codes(sf[clip].to_numpy())[0]
        seed = 0 if self.random_state is None else int(self.random_state)
        self.ensemble_ = train_ensemble(
            np.asarray(X, dtype=np.float32), y01, np.ones((1, len(y01)), dtype=bool), config=train,
            seed=seed, groups=groups, fairness=fair, dp=dp, clip_groups=clip_groups,
        )  # fmt: skip
        self.epsilon_ = None if self.ensemble_.epsilon is None else self.ensemble_.epsilon[0]
        self.delta_ = self.ensemble_.delta
        self.privacy_ = getattr(self.ensemble_, "privacy", None) if dp is not None else None
        return self

    def _logits(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return self.ensemble_.predict_logits(np.asarray(X, dtype=np.float32))[0]

    def decision_function(self, X: Any) -> np.ndarray:
        """Logit difference z_1 - z_0 (positive means class ``classes_[1]``)."""
        z = self._logits(X)
        return z[:, 1] - z[:, 0]

    def predict_proba(self, X: Any) -> np.ndarray:
        z = self._logits(X).astype(np.float64)
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # binary classifiers only (2-logit models)
        return tags

    @classmethod
    def _from_ensemble(
        cls, ens: Ensemble, params: dict[str, Any], classes: np.ndarray
    ) -> FairleakClassifier:
        clf = cls(**params)
        clf.ensemble_ = ens
        clf.classes_ = classes
        clf.n_features_in_ = ens.n_features
        clf.epsilon_ = None if ens.epsilon is None else ens.epsilon[0]
        clf.delta_ = ens.delta
        clf.privacy_ = getattr(ens, "privacy", None) if ens.epsilon is not None else None
        return clf
