"""Train STL / MTL / FairBranch / L2T-FMT on one split and measure what the papers measure, and
what sharing a trunk does to membership leakage.

Per method and task, on the held-out rows (the non-members): accuracy with a Wilson interval and
every fairness gap with bootstrap intervals (``fairleak.fairness.fairness_report``), plus the
papers' EO in sum form ``sum_y |P(yhat = y | y, s1) - P(yhat = y | y, s2)|`` (max - min across
groups per label). Transfer figures against STL (Roy & Ntoutsi): knowledge gain
``KG_t = acc(method) - acc(STL)`` (negative transfer when < 0) and discrimination gain
``DG_t = EO(method) - EO(STL)`` (bias transfer when > 0), per task and averaged over tasks.

Leakage per task head: the loss-threshold attack (Yeom et al. 2018; score ``log p_y``) on
members (training rows) vs non-members, through ``fairleak.attacks.attack_metrics`` (AUC,
TPR at low FPR, per group and intersection, bootstrap CIs), and an attack that sums the losses of
all heads (what an attacker seeing every head of a multi-task model can do). Its change against
STL answers "does sharing a trunk leak more?" per task.

Splits: ``make_audit_split`` (stratified on the first task): members train every method;
non-members are the test set and the attack's non-members; the population pool is L2T-FMT's
validation set, so all methods train on exactly the same rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from fairleak.attacks import attack_metrics, loss_score
from fairleak.data import TabularPreprocessor, make_audit_split
from fairleak.data.multitask import MultiTaskDataset
from fairleak.errors import ParameterError
from fairleak.fairness import fairness_report
from fairleak.multitask.estimator import METHODS, MultiTaskFairClassifier

__all__ = ["MultiTaskResult", "eo_sum_by_view", "evaluate_multitask", "wilson_interval"]

#: progress(stage, done, total)
StageProgress = Callable[[str, int, int], None]


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    return obj


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (closed form)."""
    from scipy.stats import norm

    if n == 0:
        return (0.0, 1.0)
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    den = 1 + z**2 / n
    mid = (p + z**2 / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def eo_sum_by_view(table: pd.DataFrame) -> dict[str, float | None]:
    """The papers' EO (sum form) per attribute / intersection from a fairness_report table:
    ``(max - min) TPR + (max - min) FPR`` over groups that are not too small (``None`` with fewer
    than two such groups with defined rates)."""
    out: dict[str, float | None] = {}
    for attr, rows in table.groupby("attribute", sort=False):
        ok = rows[~rows["too_small"] & np.isfinite(rows["tpr"]) & np.isfinite(rows["fpr"])]
        if len(ok) < 2:
            out[str(attr)] = None
        else:
            out[str(attr)] = float(np.ptp(ok["tpr"]) + np.ptp(ok["fpr"]))
    return out


@dataclass
class MultiTaskResult:
    """Everything one evaluation measured; :meth:`to_dict` is JSON-able (no NaN)."""

    dataset: dict[str, Any]
    split: dict[str, Any]
    settings: dict[str, Any]
    methods: dict[str, dict[str, Any]]
    transfer: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(
            {
                "kind": "fairleak.multitask",
                "dataset": self.dataset,
                "split": self.split,
                "settings": self.settings,
                "methods": self.methods,
                "transfer": self.transfer,
                "notes": self.notes,
            }
        )

    def summary_rows(self) -> list[dict[str, Any]]:
        """One flat row per (method, task): accuracy, gaps and EO sum of each view, leakage and
        transfer figures (for CSV files and tables)."""
        rows = []
        for m, res in self.methods.items():
            for task, r in res["tasks"].items():
                row: dict[str, Any] = {
                    "method": m, "task": task, "accuracy": r["accuracy"],
                    "accuracy_ci_low": r["accuracy_ci"][0], "accuracy_ci_high": r["accuracy_ci"][1],
                    "train_accuracy": r["train_accuracy"], "roc_auc": r["roc_auc"],
                    "leakage_auc": r["leakage"]["auc"],
                    "leakage_tpr_at_1%_fpr": r["leakage"]["tpr_at_1%_fpr"],
                    "leakage_advantage": r["leakage"]["advantage"],
                    "all_heads_leakage_auc": res["all_heads_leakage"]["auc"],
                    "epsilon": res["epsilon"], "seconds": res["seconds"],
                }  # fmt: skip
                for view, gaps in r["fairness"]["gaps"].items():
                    for gname in ("demographic_parity_difference", "equalized_odds_difference"):
                        g = gaps[gname]
                        row[f"{gname}[{view}]"] = g["value"]
                        row[f"{gname}_ci_low[{view}]"] = g["ci_low"]
                        row[f"{gname}_ci_high[{view}]"] = g["ci_high"]
                    row[f"eo_sum[{view}]"] = r["eo_sum"].get(view)
                tr = self.transfer.get(m, {}).get("tasks", {}).get(task)
                if tr is not None:
                    row["knowledge_gain"] = tr["knowledge_gain"]
                    row["leakage_auc_change"] = tr["leakage_auc_change"]
                    for view, v in tr["discrimination_gain"].items():
                        row[f"discrimination_gain[{view}]"] = v
                rows.append(row)
        return rows

    def leakage_group_rows(self) -> list[dict[str, Any]]:
        """One row per (method, task, attribute, group): the loss attack's AUC and counts."""
        rows = []
        for m, res in self.methods.items():
            for task, r in res["tasks"].items():
                for attr, groups in r["leakage"].get("by_group", {}).items():
                    for g, gm in groups.items():
                        rows.append({"method": m, "task": task, "attribute": attr, "group": g,
                                     "auc": gm["auc"], "n_members": gm["n_members"],
                                     "n_nonmembers": gm["n_nonmembers"]})  # fmt: skip
        return rows


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _transfer(methods: dict[str, dict[str, Any]], tasks: Sequence[str]) -> dict[str, Any]:
    ref = methods["stl"]["tasks"]
    out: dict[str, Any] = {}
    for m, res in methods.items():
        if m == "stl":
            continue
        per_task = {}
        for t in tasks:
            a, b = res["tasks"][t], ref[t]
            dg = {
                v: (None if a["eo_sum"].get(v) is None or b["eo_sum"].get(v) is None
                    else a["eo_sum"][v] - b["eo_sum"][v])
                for v in b["eo_sum"]
            }  # fmt: skip
            dp = {
                v: (None if a["fairness"]["gaps"][v]["demographic_parity_difference"]["value"] is None
                    or b["fairness"]["gaps"][v]["demographic_parity_difference"]["value"] is None
                    else a["fairness"]["gaps"][v]["demographic_parity_difference"]["value"]
                    - b["fairness"]["gaps"][v]["demographic_parity_difference"]["value"])
                for v in b["fairness"]["gaps"]
            }  # fmt: skip
            la, lb = a["leakage"]["auc"], b["leakage"]["auc"]
            per_task[t] = {
                "knowledge_gain": a["accuracy"] - b["accuracy"],
                "negative_transfer": a["accuracy"] < b["accuracy"],
                "discrimination_gain": dg,
                "bias_transfer": {v: (d is not None and d > 0) for v, d in dg.items()},
                "demographic_parity_change": dp,
                "leakage_auc_change": None if la is None or lb is None else la - lb,
            }
        views = list(next(iter(per_task.values()))["discrimination_gain"]) if per_task else []
        out[m] = {
            "tasks": per_task,
            "mean_knowledge_gain": _mean([p["knowledge_gain"] for p in per_task.values()]),
            "mean_discrimination_gain": {
                v: _mean([p["discrimination_gain"][v] for p in per_task.values()]) for v in views
            },
            "mean_leakage_auc_change": _mean([p["leakage_auc_change"] for p in per_task.values()]),
        }
    return out


def evaluate_multitask(
    dataset: MultiTaskDataset,
    *,
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    audit_fraction: float = 0.8,
    member_fraction: float = 0.5,
    max_rows: int | None = None,
    n_bootstrap: int = 200,
    min_group_size: int = 30,
    loss_attributes: Sequence[str] | None = None,
    progress: StageProgress | None = None,
) -> MultiTaskResult:
    """Train each method on the same members and measure accuracy, fairness, transfer, leakage.

    Args:
        dataset: from :func:`fairleak.data.multitask.load_multitask`.
        methods: any of ``"stl"``, ``"mtl"``, ``"fairbranch"``, ``"l2t"``; STL is always run
            (the transfer figures are measured against it).
        seed: fixes the subsample, the split, and every method's training.
        params: :class:`MultiTaskFairClassifier` hyperparameters shared by all methods (not
            ``method`` / ``random_state``).
        audit_fraction, member_fraction: see :func:`fairleak.data.make_audit_split`.
        max_rows: subsample the dataset to this many rows first (seeded).
        n_bootstrap: bootstrap resamples for the fairness gaps and attack CIs.
        min_group_size: groups smaller than this (among test rows) are left out of the gaps.
        loss_attributes: protected attributes the training fairness loss covers (default: all
            of the dataset's); every attribute and intersection is reported either way.
        progress: ``progress(stage, done, total)``.
    """
    params = dict(params or {})
    for key in ("method", "random_state"):
        if key in params:
            raise ParameterError(
                f"params must not set '{key}': evaluate_multitask sets it per method and seed."
            )
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ParameterError(
            f"Unknown method(s) {', '.join(repr(m) for m in unknown) or '(none given)'}; choose "
            f"from {', '.join(METHODS)}."
        )
    run = ["stl", *[m for m in METHODS if m in methods and m != "stl"]]
    loss_attrs = list(loss_attributes) if loss_attributes else dataset.protected
    unknown_attrs = [a for a in loss_attrs if a not in dataset.protected]
    if unknown_attrs:
        raise ParameterError(
            f"loss_attributes {unknown_attrs} are not protected attributes of the data "
            f"({', '.join(dataset.protected)})."
        )
    for m in [*run[1:], "stl"]:  # every setting checked before anything trains
        MultiTaskFairClassifier(method=m, **params)._settings()
    notes = list(dataset.notes)
    ds = dataset
    if max_rows is not None and len(ds) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(ds), size=max_rows, replace=False))
        ds = ds.subset(rows)
        notes.append(f"Subsampled {max_rows:,} of {len(dataset):,} rows (seed {seed}).")
    split = make_audit_split(len(ds), seed=seed, audit_fraction=audit_fraction,
                             member_fraction=member_fraction, stratify=ds.Y[:, 0])  # fmt: skip
    mem, non, pop = split.members, split.nonmembers, split.population
    X = TabularPreprocessor().fit(ds.features.iloc[mem]).transform(ds.features)
    sens = ds.sensitive
    sens_loss = sens[loss_attrs]
    audit, is_member = split.audit, split.is_member
    results: dict[str, dict[str, Any]] = {}
    for m in run:
        est = MultiTaskFairClassifier(method=m, random_state=seed, **params)
        validation = None
        if m == "l2t":
            if len(pop) == 0:
                raise ParameterError(
                    "L2T-FMT needs validation rows: use audit_fraction < 1 so that the split "
                    "leaves a population pool."
                )
            validation = (X[pop], ds.Y[pop], sens_loss.iloc[pop])
        step = None if progress is None else (lambda d, t, m=m: progress(m, d, t))
        t0 = time.perf_counter()
        est.fit(X[mem], ds.Y[mem], sensitive_features=sens_loss.iloc[mem], validation_data=validation,
                progress=step)  # fmt: skip
        seconds = time.perf_counter() - t0
        proba = np.asarray(est.predict_proba(X[audit])).reshape(ds.n_tasks, len(audit), 2)
        n_mem = len(mem)
        tasks: dict[str, Any] = {}
        total_score = np.zeros(len(audit))
        for t, name in enumerate(ds.tasks):
            y_audit = ds.Y[audit, t]
            pred = proba[t].argmax(1)
            y_test, pred_test = y_audit[n_mem:], pred[n_mem:]
            correct = int((y_test == pred_test).sum())
            rep = fairness_report(
                y_test, pred_test, sensitive_features=sens.iloc[non], y_score=proba[t, n_mem:, 1],
                n_bootstrap=n_bootstrap, random_state=seed, min_group_size=min_group_size,
            )  # fmt: skip
            score = loss_score(proba[t], y_audit)
            total_score += score
            leak = attack_metrics(score, is_member, groups=sens.iloc[audit],
                                  n_bootstrap=n_bootstrap, random_state=seed)  # fmt: skip
            tasks[name] = {
                "accuracy": correct / len(y_test),
                "accuracy_ci": list(wilson_interval(correct, len(y_test))),
                "train_accuracy": float((y_audit[:n_mem] == pred[:n_mem]).mean()),
                "roc_auc": (
                    float(roc_auc_score(y_test, proba[t, n_mem:, 1]))
                    if 0 < y_test.sum() < len(y_test)
                    else None
                ),
                "base_rate_test": float(y_test.mean()),
                "positive_rate_test": float(pred_test.mean()),
                "fairness": rep.to_dict(),
                "eo_sum": eo_sum_by_view(rep.table),
                "leakage": leak.to_dict(roc=False),
            }
        all_heads = attack_metrics(total_score, is_member, n_bootstrap=n_bootstrap,
                                   random_state=seed)  # fmt: skip
        results[m] = {
            "tasks": tasks,
            "all_heads_leakage": all_heads.to_dict(roc=False),
            "epsilon": est.epsilon_,
            "delta": est.delta_,
            "seconds": round(seconds, 2),
            "log": est.log_,
        }
    return MultiTaskResult(
        dataset={
            "name": ds.name, "tasks": list(ds.tasks), "positives": list(ds.positives),
            "protected": ds.protected, "rows": len(ds), "features": int(ds.features.shape[1]),
            "base_rates": ds.Y.mean(0).tolist(),
        },
        split={"seed": seed, "members": len(mem), "nonmembers": len(non),
               "validation_rows_l2t": len(pop) if "l2t" in run else 0,
               "audit_fraction": audit_fraction, "member_fraction": member_fraction},
        settings={**MultiTaskFairClassifier(**params).get_params(), "method": None,
                  "random_state": seed, "n_bootstrap": n_bootstrap,
                  "min_group_size": min_group_size, "max_rows": max_rows,
                  "loss_attributes": loss_attrs},
        methods=results,
        transfer=_transfer(results, ds.tasks),
        notes=notes,
    )  # fmt: skip
