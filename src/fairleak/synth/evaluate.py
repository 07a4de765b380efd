"""How good, useful, fair and private a synthetic table is (ALGORITHMS-2.md section 3.5).

Everything is measured on real rows the generator never saw unless stated: ``train`` (the rows it
was fitted on: the members), ``holdout`` (same distribution, never seen: the non-members of the
distance and membership tests) and ``test`` (for the downstream models). These figures are for
the data owner; they read real rows and are **not** part of the DP release.

- fidelity: per column total variation distance (categorical), KS and W1 on standardised values
  (numeric); pairwise associations (Pearson, bias-corrected Cramer's V, correlation ratio) real vs
  synthetic; contingency similarity (1 - TVD of column pairs, numerics in 10 quantile bins);
- utility: train on synthetic, test on real (TSTR) vs train on real (TRTR), gradient boosting and
  logistic regression: AUC, accuracy, balanced error;
- fairness: gaps (``fairleak.fairness.fairness_report``, per attribute and intersection) of the
  downstream model trained on synthetic vs on real rows, on the real test rows; and how well the
  protected attribute can be predicted from the other columns within each table (0.5 = independent);
- privacy: distance to closest record (Gower) share, mDCR ratio, exact matches, and a membership
  attack on the generator (score = minus the distance to the closest synthetic row), per group.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from fairleak.attacks.metrics import attack_metrics
from fairleak.data import TabularPreprocessor
from fairleak.fairness import fairness_report
from fairleak.synth.flip import child_seed

__all__ = [
    "evaluate_synthetic",
    "fidelity",
    "gower_min_distance",
    "privacy",
    "protected_predictability",
    "utility_and_fairness",
]


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _f(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-corrected Cramer's V (Bergsma 2013)."""
    tab = pd.crosstab(a, b).to_numpy().astype(float)
    n = tab.sum()
    r, k = tab.shape
    if n < 2 or r < 2 or k < 2:
        return 0.0
    chi2 = stats.chi2_contingency(tab, correction=False)[0]
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    rc, kc = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    d = min(kc - 1, rc - 1)
    return float(math.sqrt(phi2 / d)) if d > 0 else 0.0


def _eta(cat: np.ndarray, num: np.ndarray) -> float:
    """Correlation ratio of a numeric column on a categorical one."""
    num = num.astype(float)
    if num.std() == 0:
        return 0.0
    df = pd.DataFrame({"c": cat, "v": num})
    g = df.groupby("c")["v"].agg(["mean", "count"])
    between = float((g["count"] * (g["mean"] - num.mean()) ** 2).sum())
    return float(math.sqrt(between / float(((num - num.mean()) ** 2).sum())))


def _association(df: pd.DataFrame, a: str, b: str) -> float:
    na, nb = _is_numeric(df[a]), _is_numeric(df[b])
    if na and nb:
        x, y = df[a].to_numpy(float), df[b].to_numpy(float)
        return 0.0 if x.std() == 0 or y.std() == 0 else float(np.corrcoef(x, y)[0, 1])
    if not na and not nb:
        return _cramers_v(df[a].astype(str).to_numpy(), df[b].astype(str).to_numpy())
    cat, num = (a, b) if not na else (b, a)
    return _eta(df[cat].astype(str).to_numpy(), df[num].to_numpy(float))


def _binned(real: pd.Series, other: pd.Series, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    if not _is_numeric(real):
        return real.astype(str).to_numpy(), other.astype(str).to_numpy()
    edges = np.unique(np.quantile(real.to_numpy(float), np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, real.to_numpy(float)), np.searchsorted(edges, other.to_numpy(float))


def fidelity(real: pd.DataFrame, syn: pd.DataFrame, *, max_pairs: int = 120) -> dict[str, Any]:
    """Per-column and pairwise similarity of ``syn`` to ``real`` (same columns)."""
    cols = [c for c in real.columns if c in syn.columns]
    per: dict[str, dict[str, Any]] = {}
    for c in cols:
        if _is_numeric(real[c]) and _is_numeric(syn[c]):
            r, s = real[c].to_numpy(float), syn[c].to_numpy(float)
            sd = r.std() or 1.0
            per[c] = {"kind": "numeric", "ks": _f(stats.ks_2samp(r, s).statistic),
                      "w1_std": _f(stats.wasserstein_distance(r / sd, s / sd))}  # fmt: skip
        else:
            p = real[c].astype(str).value_counts(normalize=True)
            q = syn[c].astype(str).value_counts(normalize=True)
            keys = p.index.union(q.index)
            per[c] = {"kind": "categorical",
                      "tvd": _f(0.5 * np.abs(p.reindex(keys, fill_value=0) - q.reindex(keys, fill_value=0)).sum())}  # fmt: skip
    pairs = list(itertools.combinations(cols, 2))[:max_pairs]
    deltas, contingency = [], []
    for a, b in pairs:
        deltas.append(abs(_association(real, a, b) - _association(syn, a, b)))
        ra, sa = _binned(real[a], syn[a])
        rb, sb = _binned(real[b], syn[b])
        p = pd.Series(list(zip(ra, rb, strict=True))).value_counts(normalize=True)
        q = pd.Series(list(zip(sa, sb, strict=True))).value_counts(normalize=True)
        keys = p.index.union(q.index)
        contingency.append(1 - 0.5 * float(np.abs(p.reindex(keys, fill_value=0) - q.reindex(keys, fill_value=0)).sum()))
    tvd = [v["tvd"] for v in per.values() if v["kind"] == "categorical"]
    ks = [v["ks"] for v in per.values() if v["kind"] == "numeric"]
    return {
        "columns": per,
        "mean_tvd": _f(np.mean(tvd)) if tvd else None,
        "worst_tvd": _f(np.max(tvd)) if tvd else None,
        "mean_ks": _f(np.mean(ks)) if ks else None,
        "worst_ks": _f(np.max(ks)) if ks else None,
        "association_mean_abs_diff": _f(np.mean(deltas)) if deltas else None,
        "association_max_abs_diff": _f(np.max(deltas)) if deltas else None,
        "contingency_similarity": _f(np.mean(contingency)) if contingency else None,
        "n_pairs": len(pairs),
    }


def _xy(df: pd.DataFrame, label: str, positive: str, drop: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
    X = df.drop(columns=[label, *drop]).reset_index(drop=True)
    return X, (df[label].astype(str).to_numpy() == str(positive)).astype(int)


def _models(seed: int) -> dict[str, Any]:
    return {
        "hist_gradient_boosting": make_pipeline(TabularPreprocessor(), HistGradientBoostingClassifier(max_iter=100, random_state=seed)),
        "logistic_regression": make_pipeline(TabularPreprocessor(), LogisticRegression(max_iter=500)),
    }


def _scores(model: Any, X: pd.DataFrame, y: np.ndarray) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    p = model.predict_proba(X)[:, 1]
    yhat = (p >= 0.5).astype(int)
    tpr = yhat[y == 1].mean() if (y == 1).any() else float("nan")
    tnr = 1 - yhat[y == 0].mean() if (y == 0).any() else float("nan")
    auc = roc_auc_score(y, p) if len(np.unique(y)) == 2 else float("nan")
    return ({"auc": _f(auc), "accuracy": _f(accuracy_score(y, yhat)), "balanced_error": _f(1 - (tpr + tnr) / 2)}, p, yhat)


def _gaps(rep: Any) -> dict[str, dict[str, float | None]]:
    return {a: {g: r.value for g, r in gs.items()} for a, gs in rep.gaps.items()}


def utility_and_fairness(
    syn: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, *, label: str, positive: str,
    protected: Sequence[str], seed: int = 0, n_bootstrap: int = 100,
) -> dict[str, Any]:  # fmt: skip
    """TSTR vs TRTR per downstream model, and the fairness gaps of each on the real test rows
    (protected attributes are not model inputs)."""
    protected = list(protected)
    Xte, yte = _xy(test, label, positive, protected)
    sens = test[protected].astype(str).reset_index(drop=True)
    out: dict[str, Any] = {"label": label, "positive": str(positive), "models": {}}
    for name in _models(seed):
        row: dict[str, Any] = {}
        for src, df in (("synthetic", syn), ("real", train)):
            X, y = _xy(df, label, positive, protected)
            if len(np.unique(y)) < 2:
                row[src] = {"error": f"the {src} training rows have a single class of '{label}'"}
                continue
            model = _models(seed)[name].fit(X, y)
            metrics, p, yhat = _scores(model, Xte, yte)
            rep = fairness_report(yte, yhat, sensitive_features=sens, y_score=p, n_bootstrap=n_bootstrap,
                                  random_state=child_seed(seed, "fairness bootstrap"))  # fmt: skip
            row[src] = {**metrics, "gaps": _gaps(rep)}
        s, r = row.get("synthetic", {}), row.get("real", {})
        if s.get("auc") and r.get("auc"):
            row["utility_ratio_auc"] = _f(s["auc"] / r["auc"])
        out["models"][name] = row
    return out


def protected_predictability(df: pd.DataFrame, protected: str, drop: Sequence[str], *, seed: int = 0,
                             max_rows: int = 5000) -> float | None:  # fmt: skip
    """5-fold AUC of predicting ``protected`` from the other columns within ``df`` (macro
    one-vs-rest for several groups, those with 10 rows or more; 0.5 = the columns say nothing
    about it)."""
    rng = np.random.default_rng(child_seed(seed, "predictability"))
    if len(df) > max_rows:
        df = df.iloc[rng.choice(len(df), max_rows, replace=False)]
    s = df[protected].astype(str).to_numpy()
    names, counts = np.unique(s, return_counts=True)
    keep = np.isin(s, names[counts >= 10])  # groups under 10 rows cannot be cross-validated
    df, s = df[keep], s[keep]
    classes, y = np.unique(s, return_inverse=True)
    if len(classes) < 2:
        return None
    X = df.drop(columns=[protected, *drop]).reset_index(drop=True)
    model = make_pipeline(TabularPreprocessor(), HistGradientBoostingClassifier(max_iter=50, random_state=seed))
    cv = StratifiedKFold(5, shuffle=True, random_state=child_seed(seed, "cv") % 2**31)
    p = cross_val_predict(model, X, y, cv=cv, method="predict_proba")
    if len(classes) == 2:
        return _f(roc_auc_score(y, p[:, 1]))
    return _f(roc_auc_score(y, p, multi_class="ovr", average="macro"))


class _Gower:
    """Gower distance: range-normalised L1 on numerics, Hamming on categoricals, averaged."""

    def __init__(self, ref: pd.DataFrame) -> None:
        self.cols = list(ref.columns)
        self.num = [c for c in self.cols if _is_numeric(ref[c])]
        self.cat = [c for c in self.cols if c not in self.num]
        self.lo = {c: float(ref[c].min()) for c in self.num}
        self.rng = {c: (float(ref[c].max()) - self.lo[c]) or 1.0 for c in self.num}
        self.levels = {c: {v: i for i, v in enumerate(sorted(ref[c].astype(str).unique()))} for c in self.cat}

    def arrays(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        num = np.stack([(df[c].to_numpy(float) - self.lo[c]) / self.rng[c] for c in self.num], 1) if self.num else np.zeros((len(df), 0))
        cat = np.stack([df[c].astype(str).map(self.levels[c]).fillna(-1).to_numpy(int) for c in self.cat], 1) if self.cat else np.zeros((len(df), 0), int)
        return num.astype(np.float32), cat


def gower_min_distance(query: pd.DataFrame, ref: pd.DataFrame, gower: _Gower | None = None,
                       *, exclude_self: bool = False, chunk: int = 256) -> np.ndarray:  # fmt: skip
    """For each query row, the Gower distance to its nearest row of ``ref`` (chunked)."""
    g = gower or _Gower(ref)
    qn, qc = g.arrays(query)
    rn, rc = g.arrays(ref)
    width = len(g.cols)
    out = np.empty(len(query))
    for a in range(0, len(query), chunk):
        d = np.zeros((min(chunk, len(query) - a), len(ref)), np.float32)
        for j in range(qn.shape[1]):
            d += np.abs(qn[a : a + chunk, j, None] - rn[None, :, j])
        for j in range(qc.shape[1]):
            d += qc[a : a + chunk, j, None] != rc[None, :, j]
        if exclude_self:
            idx = np.arange(a, a + len(d))
            d[np.arange(len(d)), idx] = np.inf
        out[a : a + len(d)] = d.min(1) / width
    return out


def privacy(
    syn: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, *, protected: Sequence[str],
    seed: int = 0, max_rows: int = 3000, n_bootstrap: int = 100,
) -> dict[str, Any]:  # fmt: skip
    """DCR share, mDCR ratio, exact matches and a distance-based membership attack on the
    generator, per group. Members and holdout rows are subsampled to the same size
    (``max_rows``, and the synthetic rows too), said in ``sizes``."""
    rng = np.random.default_rng(child_seed(seed, "privacy rows"))
    n = min(len(train), len(holdout), max_rows)
    T = train.iloc[rng.choice(len(train), n, replace=False)].reset_index(drop=True)
    H = holdout.iloc[rng.choice(len(holdout), n, replace=False)].reset_index(drop=True)
    S = syn.iloc[rng.choice(len(syn), min(len(syn), max_rows), replace=False)].reset_index(drop=True)
    cols = list(train.columns)
    g = _Gower(pd.concat([T, H], ignore_index=True)[cols])
    d_st = gower_min_distance(S[cols], T[cols], g)
    d_sh = gower_min_distance(S[cols], H[cols], g)
    share = float(np.mean(np.where(d_st < d_sh, 1.0, np.where(d_st == d_sh, 0.5, 0.0))))
    half = 1.96 * math.sqrt(share * (1 - share) / len(S)) if len(S) else float("nan")
    d_tt = gower_min_distance(T[cols], T[cols], g, exclude_self=True)
    mdcr = float(np.median(d_st) / np.median(d_tt)) if np.median(d_tt) > 0 else None
    # membership attack on the generator: members are closer to some synthetic row
    score = -np.r_[gower_min_distance(T[cols], S[cols], g), gower_min_distance(H[cols], S[cols], g)]
    is_in = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    groups = pd.concat([T[list(protected)], H[list(protected)]], ignore_index=True).astype(str)
    mia = attack_metrics(score, is_in, groups=groups, n_bootstrap=n_bootstrap, random_state=child_seed(seed, "mia"))
    return {
        "dcr_share": _f(share), "dcr_share_ci": [_f(share - half), _f(share + half)],
        "mdcr_ratio": _f(mdcr) if mdcr is not None else None,
        "exact_match_rate": _f(np.mean(d_st == 0)),
        "membership_attack": mia.to_dict(roc=False),
        "sizes": {"members": n, "holdout": n, "synthetic": len(S)},
    }


def evaluate_synthetic(
    syn: pd.DataFrame, *, train: pd.DataFrame, holdout: pd.DataFrame, test: pd.DataFrame,
    label: str, positive: str, protected: Sequence[str], seed: int = 0, max_rows: int = 3000,
    n_bootstrap: int = 100,
) -> dict[str, Any]:  # fmt: skip
    """Fidelity (vs the training rows), utility and fairness (on ``test``), privacy (members =
    ``train``, non-members = ``holdout``) of ``syn``; a JSON-able dict."""
    protected = list(protected)
    missing = [c for c in train.columns if c not in syn.columns]
    if missing:
        from fairleak.errors import DataValidationError

        raise DataValidationError(f"The synthetic table lacks column(s) {missing} of the real one.")
    syn = syn[list(train.columns)]
    drop = [c for c in protected if c != protected[0]]  # the label stays: FLIP is task-agnostic
    return {
        "fidelity": fidelity(train, syn),
        "utility": utility_and_fairness(syn, train, test, label=label, positive=positive,
                                        protected=protected, seed=seed, n_bootstrap=n_bootstrap),
        "protected_predictability": {
            "attribute": protected[0],
            "synthetic": protected_predictability(syn, protected[0], drop, seed=seed),
            "real": protected_predictability(train, protected[0], drop, seed=seed),
        },
        "privacy": privacy(syn, train, holdout, protected=protected, seed=seed, max_rows=max_rows,
                           n_bootstrap=n_bootstrap),
    }
