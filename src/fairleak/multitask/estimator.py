"""`MultiTaskFairClassifier`: fair multi-task learning as a scikit-learn estimator.

Methods: ``"stl"`` (one network per task), ``"mtl"`` (shared trunk, summed losses),
``"fairbranch"`` (Roy & Ntoutsi, IJCNN 2024) and ``"l2t"`` (L2T-FMT, Roy & Ntoutsi, ECML PKDD
2022). Every method uses the same per-task fairness loss and weight, so they differ only in how
tasks share parameters and combine gradients.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from fairleak.data.groups import group_codes, group_views, intersection_labels, normalize_sensitive
from fairleak.errors import ParameterError
from fairleak.multitask.fairbranch import fit_fairbranch
from fairleak.multitask.l2t import fit_l2t
from fairleak.multitask.losses import FAIRNESS_LOSSES
from fairleak.multitask.network import ACTIVATIONS, MultiTaskMLP
from fairleak.multitask.private import (
    PRIVATE_METHODS,
    composed_epsilon,
    fit_private,
    private_noise_multiplier,
)
from fairleak.multitask.training import (
    Progress,
    TaskData,
    TrainSettings,
    derived_seed,
    fit_mtl,
    one_thread,
)

__all__ = ["METHODS", "MultiTaskFairClassifier"]

METHODS = ("stl", "mtl", "fairbranch", "l2t")
FAIRNESS_VIEWS = ("attributes", "intersection", "all")


def _one_of(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise ParameterError(
            f"The '{name}' parameter of MultiTaskFairClassifier must be one of {shown}. "
            f"Got {value!r} instead."
        )


def _number(name: str, value: Any, *, low: float, high: float = np.inf, integer: bool = False,
            low_open: bool = False, high_open: bool = False) -> None:  # fmt: skip
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        lo_b = "(" if low_open else "["
        hi_b = ")" if high_open or high == np.inf else "]"
        what = "an int" if integer else "a float"
        raise ParameterError(
            f"The '{name}' parameter of MultiTaskFairClassifier must be {what} in the range "
            f"{lo_b}{low}, {high}{hi_b}. Got {value!r} instead."
        )


def _views(sf, how: str) -> tuple[list[np.ndarray], list[int], list[str]]:
    if how == "attributes":
        views = {c: sf[c].to_numpy(dtype=object) for c in sf.columns}
    elif how == "intersection":
        views = {"*".join(sf.columns): intersection_labels(sf, list(sf.columns))}
    else:
        views = group_views(sf, intersections=True)
    codes, sizes, names = [], [], []
    for key, labels in views.items():
        c, groups = group_codes(labels)
        codes.append(c)
        sizes.append(len(groups))
        names.append(key)
    return codes, sizes, names


class MultiTaskFairClassifier(ClassifierMixin, BaseEstimator):
    """Fair multi-task classifier: shared MLP trunk, one binary head per task.

    Args:
        method: ``"stl"``, ``"mtl"``, ``"fairbranch"`` or ``"l2t"``.
        hidden_layer_sizes: trunk widths (FairBranch branches only with two or more levels).
        activation: ``"relu"``, ``"tanh"``, ``"sigmoid"`` or ``"elu"``.
        fairness: per-task fairness loss: ``"robust_log"`` (the papers' worst-group loss per
            label), ``"demographic_parity"``, ``"equalized_odds"``, or ``None`` (accuracy only;
            not allowed for ``"l2t"``).
        fairness_weight: weight w of the fairness loss (``L_t + w F_t``; for L2T-FMT the scale
            of the fairness loss the teacher may pick).
        fairness_views: protected views the loss covers: ``"attributes"`` (each attribute),
            ``"intersection"`` (the intersection of all of them) or ``"all"`` (both);
            ``fairness_reduce``: ``"sum"`` or ``"max"`` over views.
        epochs, batch_size, lr, weight_decay: AdamW training.
        branch_every, affinity_threshold: FairBranch's branching period (epochs) and CKA
            threshold tau (0.7 for tabular data in the paper).
        teacher_gamma, exploration_start, exploration_end, lookahead_lr, validation_fraction:
            L2T-FMT's discount, epsilon-greedy schedule, look-ahead step, and the share of the
            training rows held out for the teacher's rewards when ``fit`` gets no
            ``validation_data``.
        target_epsilon / noise_multiplier, delta, max_grad_norm: DP-SGD through Opacus (give
            one of the first two); only ``"stl"`` and ``"mtl"`` without a fairness loss (see
            ``fairleak.multitask.private`` for why the others cannot be private). For STL the
            budget covers all T models together.
        random_state: seeds initialisation, batch order, exploration and DP noise.

    Attributes:
        n_tasks_, classes_ (one array per task, or one array when fitted on a 1-D y),
        n_features_in_, networks_ (one network, or one per task for STL), epsilon_ (None when
        not private; for STL all T models together), delta_, noise_multiplier_, log_ (what the
        method did: FairBranch's branchings and conflicts, L2T-FMT's actions), view_names_.

    Example:
        >>> clf = MultiTaskFairClassifier(method="fairbranch")
        >>> clf.fit(X, Y, sensitive_features=df[["sex", "race"]])  # doctest: +SKIP
        >>> np.asarray(clf.predict_proba(X)).shape  # (T, N, 2)  # doctest: +SKIP
    """

    def __init__(
        self,
        method: str = "mtl",
        hidden_layer_sizes: tuple[int, ...] = (64, 32, 16),
        activation: str = "relu",
        fairness: str | None = "robust_log",
        fairness_weight: float = 1.0,
        fairness_views: str = "attributes",
        fairness_reduce: str = "sum",
        epochs: int = 20,
        batch_size: int = 256,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        branch_every: int = 2,
        affinity_threshold: float = 0.7,
        teacher_gamma: float = 0.9,
        exploration_start: float = 0.3,
        exploration_end: float = 0.05,
        lookahead_lr: float = 1e-2,
        validation_fraction: float = 0.2,
        target_epsilon: float | None = None,
        noise_multiplier: float | None = None,
        delta: float = 1e-5,
        max_grad_norm: float = 1.0,
        random_state: int | None = None,
    ) -> None:
        self.method = method
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.fairness = fairness
        self.fairness_weight = fairness_weight
        self.fairness_views = fairness_views
        self.fairness_reduce = fairness_reduce
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.branch_every = branch_every
        self.affinity_threshold = affinity_threshold
        self.teacher_gamma = teacher_gamma
        self.exploration_start = exploration_start
        self.exploration_end = exploration_end
        self.lookahead_lr = lookahead_lr
        self.validation_fraction = validation_fraction
        self.target_epsilon = target_epsilon
        self.noise_multiplier = noise_multiplier
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.random_state = random_state

    # -- validation ---------------------------------------------------------------------------

    def _settings(self) -> TrainSettings:
        _one_of("method", self.method, METHODS)
        _one_of("activation", self.activation, tuple(ACTIVATIONS))
        _one_of("fairness", self.fairness, (*FAIRNESS_LOSSES, None))
        _one_of("fairness_views", self.fairness_views, FAIRNESS_VIEWS)
        _one_of("fairness_reduce", self.fairness_reduce, ("sum", "max"))
        try:
            hidden = tuple(self.hidden_layer_sizes)
        except TypeError:
            hidden = None
        if hidden is None or not all(
            isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0 for h in hidden
        ):
            raise ParameterError(
                "The 'hidden_layer_sizes' parameter of MultiTaskFairClassifier must be a tuple "
                f"of positive ints. Got {self.hidden_layer_sizes!r} instead."
            )
        _number("fairness_weight", self.fairness_weight, low=0.0)
        _number("epochs", self.epochs, low=1, integer=True)
        _number("batch_size", self.batch_size, low=1, integer=True)
        _number("lr", self.lr, low=0.0, low_open=True)
        _number("weight_decay", self.weight_decay, low=0.0)
        _number("branch_every", self.branch_every, low=1, integer=True)
        _number("affinity_threshold", self.affinity_threshold, low=0.0, high=1.0)
        _number("teacher_gamma", self.teacher_gamma, low=0.0, high=1.0, high_open=True)
        _number("exploration_start", self.exploration_start, low=0.0, high=1.0)
        _number("exploration_end", self.exploration_end, low=0.0, high=1.0)
        _number("lookahead_lr", self.lookahead_lr, low=0.0, low_open=True)
        _number("validation_fraction", self.validation_fraction, low=0.0, high=1.0,
                low_open=True, high_open=True)  # fmt: skip
        _number("delta", self.delta, low=0.0, high=1.0, low_open=True, high_open=True)
        _number("max_grad_norm", self.max_grad_norm, low=0.0, low_open=True)
        if self.target_epsilon is not None:
            _number("target_epsilon", self.target_epsilon, low=0.0, low_open=True)
        if self.noise_multiplier is not None:
            _number("noise_multiplier", self.noise_multiplier, low=0.0, low_open=True)
        if self.method == "l2t" and self.fairness is None:
            raise ParameterError(
                "The 'fairness' parameter of MultiTaskFairClassifier cannot be None with "
                "method='l2t': its teacher chooses between the accuracy and the fairness loss."
            )
        if self.method == "fairbranch" and len(hidden) < 2:
            raise ParameterError(
                "method='fairbranch' needs at least two hidden levels (hidden_layer_sizes of "
                f"length >= 2) to branch; got {hidden!r}. Its first level always stays shared."
            )
        if self._private():
            if self.target_epsilon is not None and self.noise_multiplier is not None:
                raise ParameterError(
                    "Give either 'target_epsilon' or 'noise_multiplier' to "
                    "MultiTaskFairClassifier, not both."
                )
            if self.method not in PRIVATE_METHODS:
                reason = {
                    "fairbranch": "each step needs the batch's per-task fairness gradients for "
                    "its conflict test and projection (FBGrad), and those batch-level gradients "
                    "have no per-sample form to clip; grouping by private parameters alone "
                    "would be post-processing, but the correction is not",
                    "l2t": "its teacher is rewarded with accuracy and EO on validation rows "
                    "that no DP mechanism covers, and it switches to a batch-level fairness "
                    "loss that has no per-sample gradient",
                }[self.method]
                raise ParameterError(
                    f"DP-SGD is not available for method='{self.method}': {reason}. Private "
                    "training works for method='stl' or 'mtl' with fairness=None."
                )
            if self.fairness is not None:
                raise ParameterError(
                    f"DP-SGD cannot train with fairness='{self.fairness}': the fairness loss is "
                    "a function of group means over the batch, so a row's influence on it has "
                    "no per-sample gradient to clip. Set fairness=None (accuracy loss only) "
                    "to train privately."
                )
        return TrainSettings(
            hidden=hidden, activation=self.activation, epochs=int(self.epochs),
            batch_size=int(self.batch_size), lr=float(self.lr),
            weight_decay=float(self.weight_decay), fairness=self.fairness,
            fairness_weight=float(self.fairness_weight), fairness_reduce=self.fairness_reduce,
        )  # fmt: skip

    def _private(self) -> bool:
        return self.target_epsilon is not None or self.noise_multiplier is not None

    def _targets(self, Y: np.ndarray) -> np.ndarray:
        check_classification_targets(Y)
        Y2 = Y.reshape(len(Y), -1)
        classes, out = [], np.empty(Y2.shape, dtype=np.int64)
        for t in range(Y2.shape[1]):
            c = np.unique(Y2[:, t])
            if len(c) != 2:
                raise ValueError(
                    "Only binary classification is supported. MultiTaskFairClassifier got "
                    f"{len(c)} class(es) in task {t}: {c.tolist()[:10]}."
                )
            classes.append(c)
            out[:, t] = (Y2[:, t] == c[1]).astype(np.int64)
        self.classes_ = classes[0] if Y.ndim == 1 else classes
        return out

    def _task_data(self, X, Y01, sensitive_features, fairness_needed: bool) -> TaskData:
        if sensitive_features is None:
            if fairness_needed:
                raise ParameterError(
                    f"fairness='{self.fairness}' needs the protected attributes: call "
                    "fit(X, Y, sensitive_features=...)."
                )
            return TaskData.from_arrays(X, Y01, [], [])
        sf = normalize_sensitive(sensitive_features, n_rows=X.shape[0])
        codes, sizes, names = _views(sf, self.fairness_views)
        self.view_names_ = names
        return TaskData.from_arrays(X, Y01, codes, sizes)

    # -- fitting -------------------------------------------------------------------------------

    def fit(
        self,
        X: Any,
        Y: Any,
        *,
        sensitive_features: Any = None,
        validation_data: tuple[Any, Any, Any] | None = None,
        progress: Progress | None = None,
    ) -> MultiTaskFairClassifier:
        """Fit on features ``X`` [N, D] and binary labels ``Y`` [N, T] (or [N] for one task).

        ``sensitive_features``: protected attributes of the rows (needed with a fairness loss).
        ``validation_data``: ``(X_val, Y_val, sensitive_val)`` for L2T-FMT's rewards; without
        it, ``validation_fraction`` of the rows are held out from training for them.
        ``progress(done_steps, total_steps)`` is called after every step.
        """
        settings = self._settings()
        with one_thread():
            return self._fit(settings, X, Y, sensitive_features, validation_data, progress)

    def _fit(
        self,
        settings: TrainSettings,
        X: Any,
        Y: Any,
        sensitive_features: Any,
        validation_data: tuple[Any, Any, Any] | None,
        progress: Progress | None,
    ) -> MultiTaskFairClassifier:
        X, Y = validate_data(self, X, Y, dtype=np.float32, multi_output=True)
        Y01 = self._targets(np.asarray(Y))
        self.n_tasks_ = Y01.shape[1]
        self.view_names_ = []
        data = self._task_data(np.asarray(X), Y01, sensitive_features, self.fairness is not None)
        seed = 0 if self.random_state is None else int(self.random_state)
        D, T = X.shape[1], self.n_tasks_
        self.epsilon_ = None
        self.delta_ = None
        self.noise_multiplier_ = None
        self.log_: dict[str, Any] = {}
        if self._private():
            sigma = (
                float(self.noise_multiplier)
                if self.noise_multiplier is not None
                else private_noise_multiplier(
                    self.target_epsilon, self.delta, len(data), settings.batch_size,
                    settings.epochs, runs=T if self.method == "stl" else 1,
                )
            )  # fmt: skip
            self.noise_multiplier_ = sigma
            self.delta_ = float(self.delta)
        if self.method == "stl":
            self.networks_ = []
            for t in range(T):
                net = MultiTaskMLP(D, settings.hidden, 1, activation=settings.activation,
                                   seed=derived_seed(seed, 10 + t))  # fmt: skip
                sub = _offset_progress(progress, t, T)
                if self._private():
                    fit_private(net, data.task(t), settings, noise_multiplier=sigma,
                                max_grad_norm=self.max_grad_norm, delta=self.delta, seed=seed,
                                progress=sub)  # fmt: skip
                else:
                    self.log_[f"task{t}"] = fit_mtl(net, data.task(t), settings, seed=seed,
                                                    progress=sub)  # fmt: skip
                self.networks_.append(net)
            if self._private():
                self.epsilon_ = composed_epsilon(
                    sigma, len(data), settings.batch_size, settings.epochs, T, self.delta
                )
            return self
        net = MultiTaskMLP(D, settings.hidden, T, activation=settings.activation,
                           seed=derived_seed(seed, 10))  # fmt: skip
        self.networks_ = [net]
        if self.method == "mtl":
            if self._private():
                self.epsilon_ = fit_private(
                    net, data, settings, noise_multiplier=sigma,
                    max_grad_norm=self.max_grad_norm, delta=self.delta, seed=seed,
                    progress=progress,
                )  # fmt: skip
            else:
                self.log_ = fit_mtl(net, data, settings, seed=seed, progress=progress)
        elif self.method == "fairbranch":
            log = fit_fairbranch(
                net, data, settings, branch_every=int(self.branch_every),
                threshold=float(self.affinity_threshold), seed=seed, progress=progress,
            )  # fmt: skip
            self.log_ = {
                "branchings": [vars(e) for e in log.branchings],
                "routes": [list(r) for r in net.routes],
                "conflicts_per_epoch": log.conflicts_per_epoch,
                "fairness_dropped_per_epoch": log.fairness_dropped_per_epoch,
            }
        else:
            train, val = self._validation(data, validation_data, seed)
            log = fit_l2t(
                net, train, val, settings, gamma=float(self.teacher_gamma),
                exploration=(float(self.exploration_start), float(self.exploration_end)),
                lookahead_lr=float(self.lookahead_lr), seed=seed, progress=progress,
            )  # fmt: skip
            self.log_ = {
                "actions": log.actions,
                "greedy_actions": log.greedy_actions,
                "fairness_share": log.fairness_share(),
                "task_weights": log.task_weights,
                "teacher_loss": log.teacher_loss,
                "exploration": log.exploration,
                "validation_rows": len(val),
            }
        return self

    def _validation(self, data: TaskData, validation_data, seed: int) -> tuple[TaskData, TaskData]:
        if validation_data is None:
            n_val = max(1, round(len(data) * float(self.validation_fraction)))
            if len(data) - n_val < 1:
                raise ParameterError(
                    f"validation_fraction={self.validation_fraction} leaves no training rows "
                    f"out of {len(data)}; pass validation_data or use more rows."
                )
            gen = torch.Generator().manual_seed(derived_seed(seed, 5))
            perm = torch.randperm(len(data), generator=gen)
            return data.rows(perm[n_val:]), data.rows(perm[:n_val])
        try:
            Xv, Yv, sv = validation_data
        except (TypeError, ValueError) as exc:
            raise ParameterError(
                "validation_data must be a tuple (X_val, Y_val, sensitive_features_val); got "
                f"{type(validation_data).__name__}."
            ) from exc
        Xv = validate_data(self, Xv, reset=False, dtype=np.float32)
        Yv = np.asarray(Yv).reshape(len(Xv), -1)
        if Yv.shape[1] != self.n_tasks_:
            raise ParameterError(
                f"validation_data's labels have {Yv.shape[1]} task(s); the training labels "
                f"have {self.n_tasks_}."
            )
        classes = self.classes_ if isinstance(self.classes_, list) else [self.classes_]
        Yv01 = np.stack([(Yv[:, t] == classes[t][1]) for t in range(Yv.shape[1])], 1)
        sf = normalize_sensitive(sv, n_rows=len(Xv))
        codes, sizes, _ = _views(sf, self.fairness_views)
        return data, TaskData.from_arrays(np.asarray(Xv), Yv01.astype(np.int64), codes, sizes)

    # -- prediction ----------------------------------------------------------------------------

    def _logits(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "networks_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        x = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))
        with torch.no_grad(), one_thread():
            parts = [net(x) for net in self.networks_]
        return torch.cat(parts).numpy().astype(np.float64)  # [T, N, 2]

    def predict_proba(self, X: Any) -> list[np.ndarray] | np.ndarray:
        """Class probabilities, scikit-learn's multi-output convention: a list of T arrays
        [N, 2] (column 1 is ``classes_[t][1]``; ``np.asarray`` gives [T, N, 2]); one array
        [N, 2] after a fit on a 1-D y."""
        z = self._logits(X)
        z -= z.max(-1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(-1, keepdims=True)
        return p[0] if not isinstance(self.classes_, list) else list(p)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels: [N, T] (each task's own classes); [N] after a fit on a 1-D y."""
        z = self._logits(X)
        positive = z[..., 1] > z[..., 0]  # [T, N]
        if not isinstance(self.classes_, list):
            return self.classes_[positive[0].astype(int)]
        return np.stack(
            [self.classes_[t][positive[t].astype(int)] for t in range(len(self.classes_))], 1
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # binary tasks only (2-logit heads)
        tags.target_tags.multi_output = True
        return tags


def _offset_progress(progress: Progress | None, k: int, n: int) -> Progress | None:
    """Progress of the k-th of n equal sub-runs, reported on one overall scale."""
    if progress is None:
        return None

    def inner(done: int, total: int) -> None:
        progress(k * total + done, n * total)

    return inner
