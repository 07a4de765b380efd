"""Oversampling against class and group imbalance (ALGORITHMS-2.md section 4).

After the comparative study of synthetic oversampling for class and group imbalance and its code
(``Panagiotou/FairAugment``, ``util/definitions.py: get_synthetic_splits``). Cells are
(group, class) of the *training* rows; synthetic rows are only ever added, never removed.
Strategies (``n_gy`` = cell count, L = the largest group):

- ``class``: in each group, add minority-class rows until both classes are equal (50/50 per group);
- ``protected``: add rows to every group until ``n_g = n_L``, class ratios kept;
- ``class_protected``: every cell raised to ``max_y n_Ly`` (all cells equal);
- ``same_class``: in each group add rows of the under-represented class until the group's
  positive share equals L's: ``extra = (pi_L N_g - n_g1) / (1 - pi_L)`` (changes the base rate
  a model calibrates to).

Generators (trained per cell on the non-protected feature columns; label and group are assigned):
SMOTE-NC (imbalanced-learn, extra ``synth``), a sequential CART synthesiser (synthpop's "cart",
written here: no maintained Python package implements it, the PyPI "synthpop" is a different
project), and the FLIP-lite VAE (non-private by default here; cells under ``min_vae_cell`` rows
fall back to CART and are reported).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from fairleak.data import intersection_labels, normalize_sensitive
from fairleak.errors import DataValidationError, ParameterError
from fairleak.synth.flip import child_seed

__all__ = [
    "GENERATORS",
    "STRATEGIES",
    "FairOversampler",
    "OversampledClassifier",
    "cart_synthesize",
    "cell_targets",
]

STRATEGIES = ("class", "protected", "class_protected", "same_class")
GENERATORS = ("smote", "cart", "vae")
Cell = tuple[str, int]


def cell_targets(counts: dict[Cell, int], strategy: str) -> dict[Cell, int]:
    """Target row count of every (group, class) cell; never below its current count."""
    if strategy not in STRATEGIES:
        raise ParameterError(f"The 'strategy' parameter must be one of {STRATEGIES}. Got {strategy!r} instead.")
    groups = sorted({g for g, _ in counts})
    n = {(g, y): int(counts.get((g, y), 0)) for g in groups for y in (0, 1)}
    size = {g: n[g, 0] + n[g, 1] for g in groups}
    big = max(groups, key=lambda g: (size[g], g))
    out = dict(n)
    if strategy == "class":
        for g in groups:
            top = max(n[g, 0], n[g, 1])
            out[g, 0] = out[g, 1] = top
    elif strategy == "protected":
        for g in groups:
            for y in (0, 1):
                out[g, y] = round(n[g, y] * size[big] / size[g]) if size[g] else 0
    elif strategy == "class_protected":
        top = max(n[big, 0], n[big, 1])
        for g in groups:
            for y in (0, 1):
                out[g, y] = top
    else:  # same_class
        pi = n[big, 1] / size[big]
        for g in groups:
            if size[g] == 0:
                continue
            if n[g, 1] / size[g] < pi:
                out[g, 1] = n[g, 1] + round((pi * size[g] - n[g, 1]) / (1 - pi))
            elif n[g, 1] / size[g] > pi:
                out[g, 0] = n[g, 0] + round(((1 - pi) * size[g] - n[g, 0]) / pi)
    return {c: max(int(v), n[c]) for c, v in out.items()}


def _categorical_columns(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns
            if not (pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c]))]  # fmt: skip


def cart_synthesize(X: pd.DataFrame, n: int, rng: np.random.Generator, *, min_samples_leaf: int = 5) -> pd.DataFrame:
    """Sequential CART (synthpop's ``cart`` method): column 1 by bootstrap, column j by a tree on
    columns < j, its value drawn uniformly from the training values of the leaf a synthetic row
    reaches. Categorical predictors enter as ordinal codes (trees split them in order)."""
    cols = list(X.columns)
    cats = set(_categorical_columns(X))
    codes = {}
    for c in cols:
        if c in cats:
            levels, inv = np.unique(X[c].astype(str).to_numpy(), return_inverse=True)
            codes[c] = (levels, inv.astype(np.float64))
    num = {c: (codes[c][1] if c in cats else X[c].to_numpy(np.float64)) for c in cols}
    syn_num: dict[str, np.ndarray] = {}
    syn_idx: dict[str, np.ndarray] = {}
    first = cols[0]
    pick = rng.integers(0, len(X), n)
    syn_idx[first] = pick
    syn_num[first] = num[first][pick]
    for j, c in enumerate(cols[1:], start=1):
        prev = cols[:j]
        A = np.stack([num[p] for p in prev], 1)
        B = np.stack([syn_num[p] for p in prev], 1)
        tree = (DecisionTreeClassifier if c in cats else DecisionTreeRegressor)(
            min_samples_leaf=min_samples_leaf, random_state=int(rng.integers(2**31 - 1))
        )
        tree.fit(A, num[c])
        leaf_train, leaf_syn = tree.apply(A), tree.apply(B)
        order = np.argsort(leaf_train, kind="stable")
        sorted_leaves = leaf_train[order]
        lo = np.searchsorted(sorted_leaves, leaf_syn, side="left")
        hi = np.searchsorted(sorted_leaves, leaf_syn, side="right")
        choice = order[lo + (rng.random(n) * (hi - lo)).astype(np.int64)]
        syn_idx[c] = choice
        syn_num[c] = num[c][choice]
    out = {c: X[c].to_numpy()[syn_idx[c]] for c in cols}
    return pd.DataFrame(out, columns=cols).astype(X.dtypes.to_dict())


class FairOversampler(BaseEstimator):
    """Add synthetic rows to (group, class) cells: imbalanced-learn's resampler interface
    (``fit_resample(X, y)``: usable in an ``imblearn.pipeline.Pipeline``).

    Groups come from ``sensitive_features`` passed to ``fit_resample`` or from the columns of X
    named in ``protected`` (they stay in X; synthetic rows get their cell's values). With several
    attributes a cell's group is their intersection. ``generator``: ``"smote"`` (SMOTE-NC,
    ``k_neighbors``), ``"cart"`` or ``"vae"`` (FLIP-lite per cell; ``vae_params`` passed to
    :class:`~fairleak.synth.FlipLiteSynthesizer`, default non-private, 30 epochs).
    ``small_cells``: a cell to grow with too few rows to learn from (none; one for SMOTE) is an
    error, or ``"skip"``: left as it is and reported in ``notes_``.

    Attributes after ``fit_resample``: ``targets_`` and ``counts_`` per cell, ``added_`` (rows
    added per cell), ``sample_indices_`` (positions of the original rows in the output, which
    come first), ``sensitive_resampled_`` (the protected attributes of every output row),
    ``notes_`` (small cells, fallbacks).
    """

    def __init__(
        self, strategy: Literal["class", "protected", "class_protected", "same_class"] = "class_protected",
        generator: Literal["smote", "cart", "vae"] = "smote", *, protected: Sequence[str] | None = None,
        k_neighbors: int = 5, min_samples_leaf: int = 5, min_vae_cell: int = 50,
        vae_params: dict[str, Any] | None = None, small_cells: Literal["error", "skip"] = "error",
        random_state: int | None = None,
    ) -> None:  # fmt: skip
        self.strategy = strategy
        self.generator = generator
        self.protected = protected
        self.k_neighbors = k_neighbors
        self.min_samples_leaf = min_samples_leaf
        self.min_vae_cell = min_vae_cell
        self.vae_params = vae_params
        self.small_cells = small_cells
        self.random_state = random_state

    def fit(self, X: Any, y: Any, *, sensitive_features: Any = None) -> FairOversampler:
        self.fit_resample(X, y, sensitive_features=sensitive_features)
        return self

    def _inputs(self, X: Any, y: Any, sensitive_features: Any) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, list[str]]:
        if self.strategy not in STRATEGIES:
            raise ParameterError(f"The 'strategy' parameter of FairOversampler must be one of {STRATEGIES}. Got {self.strategy!r} instead.")
        if self.generator not in GENERATORS:
            raise ParameterError(f"The 'generator' parameter of FairOversampler must be one of {GENERATORS}. Got {self.generator!r} instead.")
        frame = X.reset_index(drop=True) if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
        frame.columns = [str(c) for c in frame.columns]
        yy = np.asarray(y).reshape(-1)
        if len(yy) != len(frame):
            raise DataValidationError(f"X has {len(frame)} rows but y has {len(yy)}.")
        classes = np.unique(yy)
        if len(classes) > 2:
            raise DataValidationError(f"FairOversampler handles binary labels; y has {len(classes)} classes {classes[:5].tolist()}.")
        in_x: list[str] = []
        if sensitive_features is not None:
            sens = normalize_sensitive(sensitive_features, n_rows=len(frame))
        elif self.protected:
            in_x = [str(c) for c in self.protected]
            missing = [c for c in in_x if c not in frame.columns]
            if missing:
                raise DataValidationError(f"protected={missing} are not columns of X ({list(frame.columns)[:20]}).")
            sens = frame[in_x].astype(str).reset_index(drop=True)
        else:
            raise DataValidationError(
                "FairOversampler needs the groups: pass sensitive_features= to fit_resample, or name "
                "the protected columns of X with protected=[...]."
            )
        return frame, yy, sens, in_x

    def fit_resample(self, X: Any, y: Any, *, sensitive_features: Any = None) -> tuple[Any, np.ndarray]:
        """X and y with synthetic rows appended (originals first, in order)."""
        frame, yy, sens, in_x = self._inputs(X, y, sensitive_features)
        classes = np.unique(yy)
        pos = classes[-1]
        y01 = (yy == pos).astype(int) if len(classes) == 2 else np.zeros(len(yy), int)
        group = intersection_labels(sens, list(sens.columns)) if sens.shape[1] > 1 else sens.iloc[:, 0].to_numpy()
        group = np.asarray(group).astype(str)
        counts: dict[Cell, int] = {}
        for g in np.unique(group):
            for c in (0, 1):
                counts[str(g), c] = int(((group == g) & (y01 == c)).sum())
        targets = cell_targets(counts, self.strategy)
        feats = [c for c in frame.columns if c not in in_x]
        Xf = frame[feats]
        seed = 0 if self.random_state is None else int(self.random_state)
        rng = np.random.default_rng(child_seed(seed, "oversample", self.generator))
        notes: list[str] = []
        need = {c: targets[c] - counts[c] for c in targets if targets[c] > counts[c]}
        too_few = 2 if self.generator == "smote" else 1
        empty = [c for c in need if counts[c] < too_few]
        if empty and self.small_cells == "skip":
            for c in empty:
                del need[c]
            notes.append(f"cell(s) {[f'{g}|{y}' for g, y in empty]} have under {too_few} row(s) to learn from: not grown.")
        elif empty:
            raise DataValidationError(
                f"Cell(s) {empty} have under {too_few} row(s) to learn from but the '{self.strategy}' strategy "
                "asks for rows there; use another strategy, merge groups, or small_cells='skip'."
            )
        rows_of = {c: np.flatnonzero((group == c[0]) & (y01 == c[1])) for c in need}
        synth = self._generate(Xf, rows_of, need, rng, notes) if need else {}
        parts, ys, sparts = [frame], [yy], [sens]
        for c, df in synth.items():
            src = sens.iloc[rows_of[c][:1]]
            svals = pd.DataFrame(np.repeat(src.to_numpy(), len(df), 0), columns=sens.columns)
            full = df.copy()
            for col in in_x:
                full[col] = svals[col].to_numpy()
            parts.append(full[frame.columns])
            ys.append(np.full(len(df), pos if c[1] == 1 else (classes[0] if len(classes) == 2 else pos), dtype=yy.dtype))
            sparts.append(svals)
        X_res = pd.concat(parts, ignore_index=True)
        for col in frame.columns:
            X_res[col] = X_res[col].astype(frame[col].dtype)
        self.counts_ = {f"{g}|{c}": v for (g, c), v in counts.items()}
        self.targets_ = {f"{g}|{c}": v for (g, c), v in targets.items()}
        self.added_ = {f"{g}|{c}": len(synth.get((g, c), ())) for (g, c) in counts}
        self.sample_indices_ = np.arange(len(frame))
        self.sensitive_resampled_ = pd.concat(sparts, ignore_index=True)
        self.notes_ = notes
        if self.strategy == "same_class":
            notes.append("same_class changes the label distribution a model calibrates to.")
        if not isinstance(X, pd.DataFrame):
            return X_res.to_numpy(), np.concatenate(ys)
        return X_res, np.concatenate(ys)

    def _generate(self, X: pd.DataFrame, rows_of: dict[Cell, np.ndarray], need: dict[Cell, int],
                  rng: np.random.Generator, notes: list[str]) -> dict[Cell, pd.DataFrame]:  # fmt: skip
        if self.generator == "smote":
            return self._smote(X, rows_of, need, rng, notes)
        out = {}
        for c, extra in need.items():
            Xc = X.iloc[rows_of[c]].reset_index(drop=True)
            if self.generator == "vae" and len(Xc) >= self.min_vae_cell:
                out[c] = self._vae(Xc, extra, rng)
            else:
                if self.generator == "vae":
                    notes.append(f"cell {c[0]}|{c[1]} has {len(Xc)} rows (< {self.min_vae_cell}): CART instead of the VAE.")
                out[c] = cart_synthesize(Xc, extra, rng, min_samples_leaf=min(self.min_samples_leaf, max(1, len(Xc) // 2)))
        return out

    def _vae(self, Xc: pd.DataFrame, extra: int, rng: np.random.Generator) -> pd.DataFrame:
        from fairleak.synth.flip import FlipLiteSynthesizer

        params = {"epsilon": None, "epochs": 30, "batch_size": 64, "align_weight": 0.0,
                  "noise": "reproducible", **(self.vae_params or {})}  # fmt: skip
        seed = int(rng.integers(2**31 - 1))
        tagged = Xc.assign(__cell__="c")
        vae = FlipLiteSynthesizer(random_state=seed, **params).fit(tagged, protected=["__cell__"])
        out = vae.sample(extra, random_state=seed).drop(columns="__cell__")
        return out.astype(Xc.dtypes.to_dict())

    def _smote(self, X: pd.DataFrame, rows_of: dict[Cell, np.ndarray], need: dict[Cell, int],
               rng: np.random.Generator, notes: list[str]) -> dict[Cell, pd.DataFrame]:  # fmt: skip
        try:
            from imblearn.over_sampling import SMOTE, SMOTEN, SMOTENC
        except ImportError:
            raise ImportError(
                "SMOTE-NC needs imbalanced-learn: pip install 'fairleak[synth]' (or generator='cart')."
            ) from None
        cats = _categorical_columns(X)
        # one call, the cell id as the "class" (all cells, so that neighbours stay inside a cell)
        all_rows = np.concatenate(list(rows_of.values()))
        cell_id = np.concatenate([np.full(len(r), i) for i, r in enumerate(rows_of.values())])
        keys = list(rows_of)
        small = [keys[i] for i in range(len(keys)) if len(rows_of[keys[i]]) < 2]
        if small:
            raise DataValidationError(f"Cell(s) {small} have a single row: SMOTE needs two or more; use generator='cart'.")
        k = min(self.k_neighbors, min(len(r) for r in rows_of.values()) - 1)
        if k < self.k_neighbors:
            notes.append(f"SMOTE k_neighbors lowered to {k}: the smallest cell to grow has {k + 1} rows.")
        Xs = X.iloc[all_rows].reset_index(drop=True)
        if len(keys) == 1:  # imblearn needs two classes: add a dummy class of other rows
            Xs = pd.concat([Xs, Xs.iloc[:1]], ignore_index=True)
            cell_id = np.r_[cell_id, -1]
        strategy = {i: len(rows_of[c]) + need[c] for i, c in enumerate(keys)}
        seed = int(rng.integers(2**31 - 1))
        if not cats:
            sm = SMOTE(sampling_strategy=strategy, k_neighbors=k, random_state=seed)
        elif len(cats) == len(X.columns):
            sm = SMOTEN(sampling_strategy=strategy, k_neighbors=k, random_state=seed)
        else:
            sm = SMOTENC(categorical_features=[X.columns.get_loc(c) for c in cats],
                         sampling_strategy=strategy, k_neighbors=k, random_state=seed)  # fmt: skip
        Xin = Xs.copy()
        for c in cats:
            Xin[c] = Xin[c].astype(str).astype(object)  # pandas "str" dtype confuses imblearn
        X_res, y_res = sm.fit_resample(Xin, cell_id)
        new = X_res.iloc[len(Xs):].reset_index(drop=True)
        y_new = np.asarray(y_res)[len(Xs):]
        out = {}
        for i, c in enumerate(keys):
            df = new[y_new == i].reset_index(drop=True)
            for col in X.columns:
                if col not in cats and pd.api.types.is_integer_dtype(X[col]):
                    df[col] = np.round(df[col].astype(float)).astype(X[col].dtype)
                else:
                    df[col] = df[col].astype(X[col].dtype)
            out[c] = df
        return out


class OversampledClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A classifier trained on oversampled rows: ``fit`` runs ``resampler.fit_resample`` on the
    training rows only, then fits a clone of ``estimator``; prediction is the estimator's. Usable
    as the last step of a scikit-learn ``Pipeline`` (whose transformers never see synthetic rows
    at predict time)."""

    def __init__(self, estimator: Any = None, resampler: FairOversampler | None = None) -> None:
        self.estimator = estimator
        self.resampler = resampler

    def fit(self, X: Any, y: Any, *, sensitive_features: Any = None) -> OversampledClassifier:
        from sklearn.ensemble import HistGradientBoostingClassifier

        res = clone(self.resampler) if self.resampler is not None else FairOversampler()
        X_res, y_res = res.fit_resample(X, y, sensitive_features=sensitive_features)
        est = clone(self.estimator) if self.estimator is not None else HistGradientBoostingClassifier()
        self.estimator_ = est.fit(X_res, y_res)
        self.resampler_ = res
        self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.estimator_.predict_proba(X)
