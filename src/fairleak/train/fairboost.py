"""`FairBoostClassifier`: cumulative fairness-aware boosting over several protected attributes.

AdaFair (Iosifidis & Ntoutsi, "AdaFair: Cumulative Fairness Adaptive Boosting", CIKM 2019;
"Parity-based cumulative fairness-aware boosting", KAIS 2022) extended to several protected
attributes, multi-valued groups and their intersections the way mmm-fair intends (Roy,
Iosifidis, Ntoutsi, "Multi-Fairness Under Class-Imbalance", DS 2022): a record's fairness cost
is the largest cost among its attributes. Spec: ``ALGORITHMS-2.md`` section 1.

Each round t fits a weak learner h_t on weights w, takes the SAMME weight
``alpha_t = learning_rate * ln((1 - err_t) / err_t)``, measures the *cumulative* ensemble
``H_t = sign(sum_{j<=t} alpha_j h_j)`` on the training rows, gives every group g of every view
v (an attribute or an intersection) a shortfall cost, e.g. ``u+_v(g) = max_h TPR_h - TPR_g``,
and updates only the misclassified rows: ``w_i <- w_i (1 + max_v u_v(g_v(i))) exp(alpha_t
conf_t(x_i))`` (conf = the weak learner's predicted-class probability, or 1). For one binary
attribute this is AdaFair's update exactly (the disadvantaged group of each class gets the
rate difference as cost). The number of rounds theta is chosen on a validation split carved
from the training rows.

Deliberate differences from the anchors (their bugs are listed in ALGORITHMS-2 section 1.3):
groups come only from ``sensitive_features`` (never from a column of X); the negative-class
cost tests the TNR difference (AdaFair's code tests the TPR difference there); labels are any
two values; costs are recomputed from scratch every round, also in round 1 (the official code
leaves them at 1 in its first round); no row is dropped from the weak learner's fit (mmm-fair
drops rows with w > 1000 min w); selection runs on held-out rows, not on the training rows, and
uses the gap fairness_report reports (equalized odds: max(|dTPR|, |dFPR|); AdaFair's own J
uses |dTPR| + |dTNR|, which ``staged_objectives_`` lets you recompute).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, has_fit_parameter, validate_data

from fairleak.data.groups import group_codes, group_views, normalize_sensitive
from fairleak.errors import DataValidationError, ParameterError

__all__ = ["CONSTRAINTS", "FairBoostClassifier"]

CONSTRAINTS = ("equalized_odds", "demographic_parity", "equal_opportunity")
# The gap each constraint is judged by (names as in fairleak.fairness.GAP_NAMES).
_GAP_OF = {
    "equalized_odds": "equalized_odds_difference",
    "demographic_parity": "demographic_parity_difference",
    "equal_opportunity": "equal_opportunity_difference",
    None: "equalized_odds_difference",
}
_VIEW_MODES = ("attributes+intersection", "attributes", "intersection")
_MAX_EXPONENT = 30.0  # mmm-fair's clip of alpha * conf: keeps weights finite with many groups


def _cells(codes: np.ndarray, n_groups: int, y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    """Confusion counts per group, [G, 2 (y), 2 (yhat)], from one bincount."""
    flat = np.bincount(codes * 4 + 2 * y + yhat, minlength=4 * n_groups)
    return flat.reshape(n_groups, 2, 2).astype(np.float64)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.full(a.shape, np.nan), where=b > 0)


def _spread(rate: np.ndarray, use: np.ndarray) -> float:
    """max - min of ``rate`` over groups in ``use`` with a defined rate; NaN under two groups."""
    ok = use & np.isfinite(rate)
    return float(rate[ok].max() - rate[ok].min()) if ok.sum() >= 2 else float("nan")


def _shortfall(rate: np.ndarray, eligible: np.ndarray, tolerance: float) -> np.ndarray:
    """Cost of each group: how far its rate falls below the best eligible group's (0 if within
    ``tolerance``, if ineligible, or if fewer than two groups are eligible)."""
    if eligible.sum() < 2:
        return np.zeros(len(rate))
    cost = np.where(eligible, rate[eligible].max() - np.where(eligible, rate, 0.0), 0.0)
    return np.where(cost > tolerance, cost, 0.0)


def _stratified_holdout(strata: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out rows: ``fraction`` of every stratum, at least one row kept.

    Written here because scikit-learn's stratified splitters refuse strata with one row, which
    small intersections of protected groups routinely have.
    """
    held = np.zeros(len(strata), dtype=bool)
    if fraction <= 0:
        return held
    rng = np.random.default_rng(seed)
    for s in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == s))
        k = min(round(fraction * len(rows)), len(rows) - 1)
        held[rows[:k]] = True
    return held


def _set_seeds(estimator: BaseEstimator, rs: np.random.RandomState) -> BaseEstimator:
    """Give every ``*random_state`` parameter an integer drawn from ``rs`` (the same draws as
    scikit-learn's AdaBoost, so that equal seeds give equal weak learners)."""
    params = estimator.get_params(deep=True)
    draws = {
        k: int(rs.randint(np.iinfo(np.int32).max))
        for k in sorted(params)
        if k == "random_state" or k.endswith("__random_state")
    }
    return estimator.set_params(**draws) if draws else estimator


class FairBoostClassifier(ClassifierMixin, BaseEstimator):
    """Fairness-aware boosting (AdaFair) over several protected attributes and intersections.

    Args:
        estimator: weak learner, any scikit-learn classifier whose ``fit`` takes
            ``sample_weight`` (and ``predict_proba`` when ``confidence``); default a decision
            stump, ``DecisionTreeClassifier(max_depth=1)``, as in AdaFair. (Deeper trees fit
            the training rows' rates to zero gap and leave the costs nothing to steer: on
            Adult, depth 3 lowered the held-out worst gap less reliably than stumps.)
        n_estimators: boosting rounds T (fewer if a weak learner is perfect or no better than
            chance).
        learning_rate: multiplies every round's weight alpha_t (1.0 in AdaFair).
        constraint: ``"equalized_odds"`` (AdaFair's disparate mistreatment: TPR and TNR costs),
            ``"equal_opportunity"`` (TPR costs on positives only), ``"demographic_parity"``
            (selection-rate costs on misclassified positives) or ``None`` (plain AdaBoost-SAMME
            with ``confidence=False``).
        views: which groupings get costs: ``"attributes+intersection"`` (each attribute and
            every intersection of two or more), ``"attributes"``, ``"intersection"`` (only the
            intersection of all attributes) or a list of view names (``["sex", "race*sex"]``).
        min_group_size: a group takes part in a rate's cost (or gap, on the selection rows) only
            with at least this many rows of the class the rate is measured on: positives for
            TPR, negatives for TNR / FPR, all its rows for the selection rate. (fairness_report
            counts all of a group's rows; smaller groups' rates are too noisy to steer by.)
        tolerance: costs at or below it are set to 0 (AdaFair's epsilon).
        confidence: scale the exponent by the weak learner's predicted-class probability
            (AdaFair's CSB2); ``False`` is the plain exponent (CSB1, AdaBoost).
        selection: how the number of rounds theta is chosen on the validation rows:
            ``"adafair"`` minimises ``c BER + (1 - c) error + max gap`` (ties: fewer rounds;
            rounds predicting a single class are never chosen);
            ``"pareto"`` takes the knee of the rounds' front of (that error, max gap); an int
            fixes theta.
        tradeoff_c: c above (1.0: balanced error, AdaFair's default).
        validation_fraction: share of the training rows (stratified by groups x label) held out
            to choose theta; 0 chooses on the training rows (AdaFair's default, optimistic).
        random_state: seed of the split and of the weak learners (``None`` means 0).

    Attributes:
        classes_, n_features_in_: as in scikit-learn.
        estimators_, estimator_weights_, estimator_errors_: every round's weak learner, its
            alpha and its weighted error (all rounds; prediction uses the first ``theta_``).
        n_rounds_: rounds fitted; ``theta_``: rounds used by predict (see :meth:`set_theta`).
        staged_objectives_: one row per round: ``train/...`` and ``validation/...`` error,
            balanced error, each gap per view (``validation/equalized_odds_difference/sex``),
            ``.../max_gap`` (the constraint's gap, max over views) and ``objective``.
        cost_history_: one row per (round, view, group): the costs given to misclassified
            positives and negatives, the rates they came from and the group's counts.
        views_: the view names used; ``too_small_``: groups of each view that never get a cost.
        validation_mask_: which training rows were held out for selection;
            ``selection_split_``: ``"validation"`` or ``"train"``.

    Example:
        >>> clf = FairBoostClassifier(n_estimators=100, random_state=0)
        >>> clf.fit(X, y, sensitive_features=df[["sex", "race"]])  # doctest: +SKIP
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        n_estimators: int = 300,
        learning_rate: float = 1.0,
        constraint: str | None = "equalized_odds",
        views: str | Sequence[str] = "attributes+intersection",
        min_group_size: int = 30,
        tolerance: float = 0.0,
        confidence: bool = True,
        selection: str | int = "adafair",
        tradeoff_c: float = 1.0,
        validation_fraction: float = 0.2,
        random_state: int | None = None,
    ) -> None:
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.constraint = constraint
        self.views = views
        self.min_group_size = min_group_size
        self.tolerance = tolerance
        self.confidence = confidence
        self.selection = selection
        self.tradeoff_c = tradeoff_c
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    # ------------------------------------------------------------------ validation
    def _bad(self, name: str, allowed: str) -> ParameterError:
        return ParameterError(
            f"The '{name}' parameter of FairBoostClassifier must be {allowed}. "
            f"Got {getattr(self, name)!r} instead."
        )

    def _check_params(self) -> BaseEstimator:
        def is_int(v: Any) -> bool:
            return isinstance(v, Integral) and not isinstance(v, bool)

        def is_real(v: Any) -> bool:
            return isinstance(v, Real) and not isinstance(v, bool) and np.isfinite(v)

        if not is_int(self.n_estimators) or self.n_estimators < 1:
            raise self._bad("n_estimators", "an int in the range [1, inf)")
        if not is_real(self.learning_rate) or self.learning_rate <= 0:
            raise self._bad("learning_rate", "a float in the range (0.0, inf)")
        if self.constraint is not None and self.constraint not in CONSTRAINTS:
            raise self._bad("constraint", f"one of {list(CONSTRAINTS)} or None")
        if not is_int(self.min_group_size) or self.min_group_size < 1:
            raise self._bad("min_group_size", "an int in the range [1, inf)")
        if not is_real(self.tolerance) or not 0 <= self.tolerance < 1:
            raise self._bad("tolerance", "a float in the range [0.0, 1.0)")
        if not isinstance(self.confidence, bool | np.bool_):
            raise self._bad("confidence", "a bool")
        if not (
            self.selection in ("adafair", "pareto")
            or (is_int(self.selection) and self.selection >= 1)
        ):
            raise self._bad("selection", "'adafair', 'pareto' or an int in the range [1, inf)")
        if not is_real(self.tradeoff_c) or not 0 <= self.tradeoff_c <= 1:
            raise self._bad("tradeoff_c", "a float in the range [0.0, 1.0]")
        if not is_real(self.validation_fraction) or not 0 <= self.validation_fraction < 1:
            raise self._bad("validation_fraction", "a float in the range [0.0, 1.0)")
        if self.random_state is not None and not is_int(self.random_state):
            raise self._bad("random_state", "an int or None")
        if isinstance(self.views, str):
            if self.views not in _VIEW_MODES:
                raise self._bad("views", f"one of {list(_VIEW_MODES)} or a list of view names")
        elif not (isinstance(self.views, Sequence) and len(self.views) > 0
                  and all(isinstance(v, str) for v in self.views)):  # fmt: skip
            raise self._bad("views", f"one of {list(_VIEW_MODES)} or a list of view names")
        base = DecisionTreeClassifier(max_depth=1) if self.estimator is None else self.estimator
        if not hasattr(base, "fit") or not hasattr(base, "predict"):
            raise ParameterError(
                "The 'estimator' parameter of FairBoostClassifier must be a scikit-learn "
                f"classifier. Got {base!r} instead."
            )
        if not has_fit_parameter(base, "sample_weight"):
            raise ParameterError(
                f"The weak learner {type(base).__name__} does not take sample_weight in fit; "
                "boosting needs it. Use e.g. DecisionTreeClassifier(max_depth=1)."
            )
        if self.confidence and not hasattr(base, "predict_proba"):
            raise ParameterError(
                f"confidence=True needs the weak learner's predict_proba, which "
                f"{type(base).__name__} lacks; pass confidence=False."
            )
        return base

    def _select_views(self, sf: pd.DataFrame) -> dict[str, np.ndarray]:
        all_views = group_views(sf, intersections=True)
        attrs = list(sf.columns)
        if self.views == "attributes":
            keys = attrs
        elif self.views == "intersection":
            keys = [next(reversed(all_views))] if len(attrs) > 1 else attrs
        elif self.views == "attributes+intersection":
            keys = list(all_views)
        else:
            keys = list(self.views)
            unknown = [k for k in keys if k not in all_views]
            if unknown:
                raise ParameterError(
                    f"The 'views' parameter of FairBoostClassifier names {unknown}, which are not "
                    f"views of the protected attributes given; choose from {list(all_views)}."
                )
        return {k: all_views[k] for k in keys}

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, *, sensitive_features: Any = None) -> FairBoostClassifier:
        """Boost on ``X``, ``y``; groups come only from ``sensitive_features`` (one or more
        columns, never part of ``X``). Required unless ``constraint=None``."""
        base = self._check_params()
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        self.classes_ = np.unique(y)
        if y_type != "binary" or len(self.classes_) != 2:
            raise ValueError(
                "Only binary classification is supported. FairBoostClassifier got y of type "
                f"'{y_type}' with {len(self.classes_)} class(es): {self.classes_.tolist()[:10]}."
            )
        y01 = (y == self.classes_[1]).astype(np.int64)
        n = len(y01)
        if sensitive_features is None:
            if self.constraint is not None:
                raise ParameterError(
                    f"constraint={self.constraint!r} needs the protected attributes: call "
                    "fit(X, y, sensitive_features=...), or pass constraint=None for plain boosting."
                )
            views: dict[str, np.ndarray] = {}
            strata = y01
        else:
            sf = normalize_sensitive(sensitive_features, n_rows=n)
            views = self._select_views(sf)
            strata = np.unique(
                np.stack([group_codes(sf[c].to_numpy())[0] for c in sf.columns] + [y01], 1),
                axis=0, return_inverse=True,
            )[1].ravel()  # fmt: skip
        coded = {v: group_codes(labels) for v, labels in views.items()}
        codes = {v: c for v, (c, _) in coded.items()}
        names = {v: nm for v, (_, nm) in coded.items()}
        seed = 0 if self.random_state is None else int(self.random_state)

        held = _stratified_holdout(strata, float(self.validation_fraction), seed)
        if held.any() and len(np.unique(y01[held])) == 2:
            self.selection_split_ = "validation"
        else:  # too few rows to hold out both classes: choose on the training rows
            held[:] = False
            self.selection_split_ = "train"
        fit_rows = ~held
        self.validation_mask_ = held
        Xf, yf = X[fit_rows], y01[fit_rows]
        Xv, yv = (X[held], y01[held]) if held.any() else (Xf, yf)
        cf = {v: c[fit_rows] for v, c in codes.items()}
        cv = {v: (c[held] if held.any() else c[fit_rows]) for v, c in codes.items()}
        n_groups = {v: len(nm) for v, nm in names.items()}

        rs = np.random.RandomState(seed)
        w = np.full(len(yf), 1.0 / len(yf))
        eps = np.finfo(np.float64).eps
        F_fit, F_val = np.zeros(len(yf)), np.zeros(len(yv))  # cumulative margins
        self.estimators_, alphas, errors = [], [], []
        obj_rows, cost_rows = [], []
        for t in range(int(self.n_estimators)):
            w = np.clip(w, eps, None)  # as scikit-learn: no weight underflows to 0
            est = _set_seeds(clone(base), rs)
            est.fit(Xf, yf, sample_weight=w)
            pred = np.asarray(est.predict(Xf)).astype(np.int64)
            wrong = pred != yf
            err = float(np.average(wrong, weights=w))
            if err >= 0.5:
                if t == 0:
                    raise DataValidationError(
                        "The first weak learner is no better than chance (weighted error "
                        f"{err:.3f} >= 0.5); boosting cannot start. Use a stronger weak learner."
                    )
                break
            perfect = err <= 0
            alpha = 1.0 if perfect else float(self.learning_rate) * np.log((1 - err) / err)
            self.estimators_.append(est)
            alphas.append(alpha)
            errors.append(err)
            F_fit += alpha * (2 * pred - 1)
            if held.any():
                F_val += alpha * (2 * np.asarray(est.predict(Xv)).astype(np.int64) - 1)
            H_fit = (F_fit > 0).astype(np.int64)
            H_val = (F_val > 0).astype(np.int64) if held.any() else H_fit
            u_pos, u_neg = self._costs(t, yf, H_fit, cf, n_groups, names, cost_rows)
            obj_rows.append(
                self._objectives("train", yf, H_fit, cf, n_groups)
                | self._objectives("validation", yv, H_val, cv, n_groups)
            )
            if perfect:
                break
            if t < self.n_estimators - 1:
                conf = est.predict_proba(Xf).max(1) if self.confidence else 1.0
                expo = np.minimum(alpha * conf, _MAX_EXPONENT)
                cost = np.where(yf == 1, u_pos, u_neg)
                factor = np.where(wrong, (1.0 + cost) * np.exp(expo), 1.0)
                w = w * factor
                w /= w.sum()
        self.estimator_weights_ = np.asarray(alphas)
        self.estimator_errors_ = np.asarray(errors)
        self.n_rounds_ = len(self.estimators_)
        self.views_ = list(views)
        self.staged_objectives_ = self._objective_table(obj_rows)
        self.cost_history_ = pd.DataFrame(
            cost_rows,
            columns=["round", "view", "group", "cost_positive", "cost_negative", "tpr", "tnr",
                     "selection_rate", "n", "n_positive", "n_negative"],
        )  # fmt: skip
        self.too_small_ = {}
        for v in views:
            first = self.cost_history_[self.cost_history_["view"] == v].head(n_groups[v])
            ok = self._eligible(first[["n", "n_positive", "n_negative"]].to_numpy().T)
            self.too_small_[v] = [names[v][g] for g in range(n_groups[v]) if not ok[g]]
        self.theta_ = self._choose_theta()
        return self

    def _eligible(self, counts: np.ndarray) -> np.ndarray:
        """Groups that can take some cost under the constraint, from (n, n_pos, n_neg)."""
        n, npos, nneg = counts
        m = self.min_group_size
        if self.constraint == "demographic_parity":
            return n >= m
        if self.constraint == "equal_opportunity":
            return npos >= m
        return (npos >= m) | (nneg >= m)

    def _costs(self, t, y, yhat, codes, n_groups, names, cost_rows):
        """Per-row costs of misclassified positives and negatives (max over views); appends the
        per-group costs of round ``t`` to ``cost_rows``."""
        u_pos = np.zeros(len(y))
        u_neg = np.zeros(len(y))
        m, tol = self.min_group_size, float(self.tolerance)
        for v, c in codes.items():
            cells = _cells(c, n_groups[v], y, yhat)
            npos, nneg = cells[:, 1].sum(1), cells[:, 0].sum(1)
            n = npos + nneg
            tpr, tnr = _ratio(cells[:, 1, 1], npos), _ratio(cells[:, 0, 0], nneg)
            sr = _ratio(cells[:, :, 1].sum(1), n)
            gp = gn = np.zeros(n_groups[v])
            if self.constraint == "equalized_odds":
                gp, gn = _shortfall(tpr, npos >= m, tol), _shortfall(tnr, nneg >= m, tol)
            elif self.constraint == "equal_opportunity":
                gp = _shortfall(tpr, npos >= m, tol)
            elif self.constraint == "demographic_parity":
                gp = _shortfall(sr, n >= m, tol)
            u_pos = np.maximum(u_pos, gp[c])
            u_neg = np.maximum(u_neg, gn[c])
            for g in range(n_groups[v]):
                cost_rows.append(
                    (t + 1, v, names[v][g], gp[g], gn[g], tpr[g], tnr[g], sr[g],
                     int(n[g]), int(npos[g]), int(nneg[g]))
                )  # fmt: skip
        return u_pos, u_neg

    def _objectives(self, split, y, yhat, codes, n_groups) -> dict[str, float]:
        """Error, balanced error and every gap per view of the cumulative predictions."""
        rates = [yhat[y == k].mean() if (y == k).any() else np.nan for k in (0, 1)]
        tnr, tpr = 1 - rates[0], rates[1]
        out = {
            f"{split}/error": float(np.mean(yhat != y)),
            f"{split}/balanced_error": float(1 - np.nanmean([tpr, tnr])),
            f"{split}/constant": bool(yhat.min() == yhat.max()),
        }
        chosen = []
        m = self.min_group_size
        for v, c in codes.items():
            cells = _cells(c, n_groups[v], y, yhat)
            npos, nneg = cells[:, 1].sum(1), cells[:, 0].sum(1)
            g_tpr = _spread(_ratio(cells[:, 1, 1], npos), npos >= m)
            g_fpr = _spread(_ratio(cells[:, 0, 1], nneg), nneg >= m)
            gaps = {
                "equalized_odds_difference": (
                    float("nan") if np.isnan(g_tpr) or np.isnan(g_fpr) else max(g_tpr, g_fpr)
                ),
                "demographic_parity_difference": _spread(
                    _ratio(cells[:, :, 1].sum(1), npos + nneg), npos + nneg >= m
                ),
                "equal_opportunity_difference": g_tpr,
            }
            for name, value in gaps.items():
                out[f"{split}/{name}/{v}"] = value
            chosen.append(gaps[_GAP_OF[self.constraint]])
        finite = [g for g in chosen if np.isfinite(g)]
        out[f"{split}/max_gap"] = max(finite) if finite else float("nan")
        return out

    def _objective_table(self, rows: list[dict[str, float]]) -> pd.DataFrame:
        table = pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="round"))
        c = float(self.tradeoff_c)
        accuracy_part = c * table["validation/balanced_error"] + (1 - c) * table["validation/error"]
        gap = table["validation/max_gap"].fillna(0.0) if self.constraint is not None else 0.0
        # A round whose ensemble predicts one class for every selection row is trivially "fair"
        # (all gaps 0) but no classifier: it cannot be chosen (AdaFair's code excludes round 1
        # for the same reason, with a sentinel gap of 1).
        table["objective"] = (accuracy_part + gap).where(~table["validation/constant"], np.inf)
        return table

    def _choose_theta(self) -> int:
        if isinstance(self.selection, Integral):
            return min(int(self.selection), self.n_rounds_)
        table = self.staged_objectives_
        if self.selection == "pareto":
            from fairleak.selection.pareto import knee_point

            c = float(self.tradeoff_c)
            rounds = np.flatnonzero(np.isfinite(table["objective"].to_numpy()))
            if len(rounds) == 0:
                return self.n_rounds_
            F = np.column_stack([
                c * table["validation/balanced_error"] + (1 - c) * table["validation/error"],
                table["validation/max_gap"].fillna(0.0),
            ])[rounds]  # fmt: skip
            return int(rounds[knee_point(F)]) + 1
        objective = table["objective"].to_numpy()
        if not np.isfinite(objective).any():  # every round predicts one class: keep them all
            return self.n_rounds_
        return int(np.argmin(objective)) + 1

    def set_theta(self, theta: int) -> FairBoostClassifier:
        """Use the first ``theta`` rounds for prediction (e.g. a point picked on the front)."""
        check_is_fitted(self)
        if not isinstance(theta, Integral) or not 1 <= theta <= self.n_rounds_:
            raise ParameterError(
                f"theta must be an int in [1, {self.n_rounds_}] (the rounds fitted); got {theta!r}."
            )
        self.theta_ = int(theta)
        return self

    # ------------------------------------------------------------------ predict
    def _votes(self, X: Any) -> Iterator[np.ndarray]:
        """alpha_t h_t(x) with h in {-1, +1}, round by round."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        for est, alpha in zip(self.estimators_, self.estimator_weights_, strict=True):
            yield alpha * (2 * np.asarray(est.predict(X)).astype(np.float64) - 1)

    def staged_decision_function(self, X: Any) -> Iterator[np.ndarray]:
        """Margin ``F_t(x) = sum_{j<=t} alpha_j h_j(x)`` after each round t = 1..n_rounds_."""
        F = None
        for vote in self._votes(X):
            F = vote if F is None else F + vote
            yield F.copy()

    def decision_function(self, X: Any) -> np.ndarray:
        """Margin of the first ``theta_`` rounds (positive means ``classes_[1]``).

        Not divided by the sum of alphas (as scikit-learn and mmm-fair do): that would squeeze
        probabilities towards 1/2 and make them depend on theta.
        """
        F = None
        for t, vote in enumerate(self._votes(X)):
            if t >= self.theta_:
                break
            F = vote if F is None else F + vote
        return F

    def predict_proba(self, X: Any) -> np.ndarray:
        """``[1 - sigmoid(F), sigmoid(F)]``: with the un-halved SAMME alpha this is Friedman,
        Hastie and Tibshirani's logistic link for AdaBoost."""
        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def staged_predict_proba(self, X: Any) -> Iterator[np.ndarray]:
        """Class probabilities after each round t = 1..n_rounds_."""
        for F in self.staged_decision_function(X):
            p = expit(F)
            yield np.column_stack([1 - p, p])

    def staged_predict(self, X: Any) -> Iterator[np.ndarray]:
        """Predicted labels after each round t = 1..n_rounds_."""
        for F in self.staged_decision_function(X):
            yield self.classes_[(F > 0).astype(int)]

    def predict(self, X: Any) -> np.ndarray:
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # binary only (AdaFair's two-class costs)
        return tags
