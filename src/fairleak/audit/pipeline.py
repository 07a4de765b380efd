"""The audit pipeline: train the configured models, measure fairness, attack them, play the group
privacy game, and collect everything into one result. The CLI only calls :func:`run_audit`.

Stages (each cached by the hash of what produced it, see cache.py):
1. data: load, validate, split (members / non-members / population), preprocess on members;
2. target models: one per configured recipe, trained on the members;
3. fairness of each model on the non-members (test rows), per group and intersection;
4. attacks on each model: reference models (on halves of the audit set) and shadow models (on
   halves of 2 x |members| population rows) trained with the same recipe, K at once;
5. FD-MIA on (biased, fair) pairs, with a shadow pair trained on population data;
6. group privacy risk (PA-ALOOA, PA-GA, PA-GBA) for the configured recipes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import fairleak
from fairleak.attacks import (
    ReferenceModels,
    fd_mia,
    group_risk_from_scores,
    pa_alooa_masks,
    paired_half_masks,
    run_attacks,
    shadow_masks,
    shadow_pair_split,
)
from fairleak.audit.cache import StageCache, stable_hash
from fairleak.audit.config import AuditConfig, ModelSpec, TrainSection
from fairleak.audit.data_source import resolve_dataset
from fairleak.data import (
    TabularDataset,
    TabularPreprocessor,
    dataset_summary,
    group_codes,
    make_audit_split,
)
from fairleak.errors import ConfigError
from fairleak.fairness import fairness_report
from fairleak.train import DPConfig, Ensemble, FairnessConfig, TrainConfig, train_ensemble

__all__ = ["AuditResult", "Progress", "run_audit"]

#: progress(task, done, total): a task is a named step ("model baseline", "references fair", ...)
Progress = Callable[[str, int, int], None]


@dataclass
class AuditResult:
    """Everything an audit measured; ``results`` is what results.json holds."""

    results: dict[str, Any]
    per_record: pd.DataFrame
    per_group: pd.DataFrame
    cache_hits: int = 0
    cache_misses: int = 0
    trainings: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class _Data:
    ds: TabularDataset
    X: np.ndarray
    y: np.ndarray
    members: np.ndarray
    nonmembers: np.ndarray
    population: np.ndarray
    codes: pd.DataFrame  # int codes of each protected attribute
    fingerprint: str


def _prepare(cfg: AuditConfig, ds: TabularDataset | None) -> _Data:
    d = cfg.data
    if ds is None:
        ds = resolve_dataset(
            d.dataset, label=d.label, positive=d.positive, protected=d.protected or None,
            bins=d.bins, drop=d.drop, include_protected=d.include_protected,
            min_group_size=d.min_group_size,
        )  # fmt: skip
    split = make_audit_split(
        len(ds), seed=cfg.seed, audit_fraction=cfg.split.audit_fraction, max_audit=cfg.split.max_audit,
        stratify=ds.y,
    )  # fmt: skip
    X = TabularPreprocessor().fit(ds.features.iloc[split.members]).transform(ds.features)
    codes = pd.DataFrame(
        {c: group_codes(ds.sensitive[c].to_numpy())[0] for c in ds.sensitive.columns}
    )
    h = hashlib.sha256()
    for arr in (X, ds.y, split.members, split.nonmembers, split.population, codes.to_numpy()):
        h.update(np.ascontiguousarray(arr).tobytes())
    return _Data(
        ds, X, ds.y, split.members, split.nonmembers, split.population, codes, h.hexdigest()[:32]
    )


def _recipe(cfg: AuditConfig, spec: ModelSpec, data: _Data):
    t: TrainSection = spec.train or cfg.train
    train = TrainConfig(
        hidden=tuple(t.hidden), activation=t.activation, optimizer=t.optimizer, lr=t.lr, epochs=t.epochs,
        batch_size=t.batch_size, weight_decay=t.weight_decay,
    )  # fmt: skip
    protected = list(data.codes.columns)
    fairness = dp = None
    cols: list[str] = []
    if spec.dp is not None:
        ga = spec.dp.group_attribute or protected[0]
        if ga not in protected:
            raise ConfigError(
                f"models.{spec.name}.dp.group_attribute: '{ga}' is not protected ({protected})."
            )
        dp = DPConfig(
            target_epsilon=spec.dp.target_epsilon, delta=spec.dp.delta, max_grad_norm=spec.dp.max_grad_norm,
            accountant=spec.dp.accountant, group_clipping=spec.dp.group_clipping, tau=spec.dp.tau,
            norm_noise_multiplier=spec.dp.norm_noise_multiplier,
        )  # fmt: skip
        if spec.dp.group_clipping:
            cols.append(ga)  # DP-SGD-S clips by the groups of the first column
    if spec.fairness is not None:
        attrs = spec.fairness.attributes or protected
        bad = [a for a in attrs if a not in protected]
        if bad:
            raise ConfigError(
                f"models.{spec.name}.fairness.attributes: {bad} are not protected ({protected})."
            )
        fairness = FairnessConfig(penalty=spec.fairness.penalty, weight=spec.fairness.weight, reduce=spec.fairness.reduce)
        cols += [a for a in attrs if a not in cols]
    groups = data.codes[cols].to_numpy() if cols else None
    key = {
        "train": train.to_dict(),
        "fairness": None
        if fairness is None
        else [fairness.penalty, fairness.weight, fairness.reduce],
        "dp": None if dp is None else dp.to_dict(),
        "groups": cols,
    }
    return train, fairness, dp, groups, key


class _Runner:
    def __init__(self, cfg: AuditConfig, data: _Data, cache: StageCache, progress: Progress | None):
        self.cfg, self.data, self.cache, self.progress = cfg, data, cache, progress
        self.trainings = 0

    def _tick(self, task: str) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        return lambda d, t: self.progress(task, d, t)  # type: ignore[misc]

    def train(self, task: str, stage: str, recipe_key: dict, masks: np.ndarray, recipe, seed: int,
              rows: np.ndarray | None = None) -> Ensemble:  # fmt: skip
        """Train (or load) models with ``masks`` over ``rows`` (default: all rows)."""
        train, fairness, dp, groups, _ = recipe
        key = stable_hash({"stage": stage, "recipe": recipe_key, "data": self.data.fingerprint,
                           "masks": hashlib.sha256(np.packbits(masks).tobytes()).hexdigest(), "seed": seed,
                           "rows": None if rows is None else hashlib.sha256(rows.tobytes()).hexdigest()})  # fmt: skip
        ens = self.cache.get_model(stage, key)
        if ens is not None:
            if self.progress:
                self.progress(task, 1, 1)
            return ens
        X, y = self.data.X, self.data.y
        g = groups
        if rows is not None:
            X, y = X[rows], y[rows]
            g = None if groups is None else groups[rows]
        self.trainings += 1
        ens = train_ensemble(X, y, masks, config=train, seed=seed, groups=g, fairness=fairness, dp=dp,
                             progress=self._tick(task))  # fmt: skip
        self.cache.put_model(stage, key, ens)
        return ens


def _proba(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def _round(obj: Any, nd: int = 6) -> Any:
    """Round floats for results.json (stable, readable; figures are not meaningful past 6 places)."""
    if isinstance(obj, float):
        return None if not np.isfinite(obj) else round(obj, nd)
    if isinstance(obj, dict):
        return {k: _round(v, nd) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_round(v, nd) for v in obj]
    if isinstance(obj, np.generic):
        return _round(obj.item(), nd)
    return obj


def run_audit(
    cfg: AuditConfig,
    *,
    out_dir: Path | str | None = None,
    dataset: TabularDataset | None = None,
    progress: Progress | None = None,
    use_cache: bool = True,
) -> AuditResult:
    """Run the audit described by ``cfg``; cache finished stages under ``out_dir/.cache``."""
    cache_root = Path(out_dir) / ".cache" if out_dir is not None else Path(".fairleak-cache")
    cache = StageCache(cache_root, enabled=use_cache and out_dir is not None)
    data = _prepare(cfg, dataset)
    run = _Runner(cfg, data, cache, progress)
    seed = cfg.seed
    ds = data.ds
    mem, non, pop = data.members, data.nonmembers, data.population
    audit = np.concatenate([mem, non])
    is_member = np.r_[np.ones(len(mem), bool), np.zeros(len(non), bool)]
    sens_audit = ds.sensitive.iloc[audit].reset_index(drop=True)
    sens_test = ds.sensitive.iloc[non].reset_index(drop=True)
    X, y = data.X, data.y
    recipes = {m.name: _recipe(cfg, m, data) for m in cfg.models}
    specs = {m.name: m for m in cfg.models}
    models_out: dict[str, Any] = {}
    records = []
    group_rows = []
    targets: dict[str, Ensemble] = {}

    # 2. target models
    for name, rec in recipes.items():
        mask = np.zeros((1, len(y)), dtype=bool)
        mask[0, mem] = True
        targets[name] = run.train(f"model {name}", "target", rec[4], mask, rec, seed)

    pool = np.concatenate([audit, pop])
    for name, rec in recipes.items():
        ens = targets[name]
        spec = specs[name]
        # 3. fairness on non-members
        p_test = ens.predict_proba(X[non])[0].astype(np.float64)
        y_pred = (p_test[:, 1] > 0.5).astype(int)
        fr = fairness_report(
            y[non], y_pred, sensitive_features=sens_test, y_score=p_test[:, 1],
            min_group_size=cfg.fairness.min_group_size, n_bootstrap=cfg.fairness.n_bootstrap,
            confidence=cfg.fairness.confidence, random_state=seed,
        )  # fmt: skip
        train_acc = float(((ens.predict_proba(X[mem])[0][:, 1] > 0.5) == y[mem]).mean())
        acc_by_group: dict[str, dict[str, Any]] = {}
        for row in fr.table.to_dict(orient="records"):
            acc_by_group.setdefault(row["attribute"], {})[row["group"]] = {
                "n": row["count"], "accuracy": row["accuracy"], "too_small": row["too_small"],
            }  # fmt: skip
            group_rows.append({"model": name, "table": "fairness", **row})
        # 4. attacks (reference and shadow models with the same recipe)
        # reference models: halves of the audit set (the target trained on one such half);
        # shadow models: halves of 2 x |members| population rows (see attacks.run_attacks)
        ac = cfg.attacks
        ref_masks = paired_half_masks(len(audit), ac.n_reference, seed + 1)
        refs_ens = run.train(
            f"references {name}", "references", rec[4], ref_masks, rec, seed + 1, rows=audit
        )
        z = refs_ens.predict_logits(X[pool])
        ref_masks = np.pad(ref_masks, ((0, 0), (0, len(pop))))  # no reference trains on pop
        references = ReferenceModels(_proba(z), z.astype(np.float64), ref_masks, None)
        sh_masks = shadow_masks(len(pop), len(mem), ac.n_shadow, seed + 2)
        sh_ens = run.train(f"shadows {name}", "shadows", rec[4], sh_masks, rec, seed + 2, rows=pop)
        zs = sh_ens.predict_logits(X[pop])
        shadows = ReferenceModels(_proba(zs), zs.astype(np.float64), sh_masks, None)
        attacks = run_attacks(
            ens, X[audit], y[audit], is_member, X[pop], y[pop], attacks=ac.names,
            groups_audit=sens_audit, output=ac.output, rmia_gamma=ac.rmia_gamma,
            rmia_offline_a=ac.rmia_offline_a, n_bootstrap=ac.n_bootstrap, references=references,
            shadows=shadows, seed=seed,
        )  # fmt: skip
        for aname, res in attacks.items():
            records.append(pd.DataFrame({"model": name, "attack": aname, "row": ds.source_rows[audit],
                                         "is_member": is_member, "score": res.scores}))  # fmt: skip
            for attr, groups in res.metrics.by_group.items():
                for g, gm in groups.items():
                    group_rows.append({"model": name, "table": "attack", "attack": aname, "attribute": attr,
                                       "group": g, "auc": gm.auc, "tpr_at_1%_fpr": gm.tpr_at_1_fpr,
                                       "n_members": gm.n_members, "n_nonmembers": gm.n_nonmembers})  # fmt: skip
        strongest = max(attacks.values(), key=lambda r: r.metrics.auc or 0.0) if attacks else None
        models_out[name] = {
            "recipe": {
                "train": rec[0].to_dict(),
                "fairness": None if spec.fairness is None else spec.fairness.model_dump(),
                "dp": None if spec.dp is None else spec.dp.model_dump(),
            },
            "epsilon": None if ens.epsilon is None else ens.epsilon[0],
            "delta": ens.delta,
            "noise_multiplier": None if ens.noise_multiplier is None else ens.noise_multiplier[0],
            "accuracy": {
                "train": train_acc,
                "test": float((y_pred == y[non]).mean()),
                "test_by_group": acc_by_group,
            },
            "fairness": fr.to_dict(),
            "attacks": {a: r.to_dict() for a, r in attacks.items()},
            "strongest_attack": None if strongest is None else strongest.name,
            "group_risk": None,
        }

    # 5. FD-MIA pairs
    fd_out = []
    sh_in, sh_out = (np.sort(r) for r in shadow_pair_split(pop, len(mem), seed + 3))
    sh_pts = np.concatenate([sh_in, sh_out])
    sh_is_member = np.r_[np.ones(len(sh_in), bool), np.zeros(len(sh_out), bool)]
    for biased, fair in cfg.fd_mia_pairs():
        pair = []
        for nm in (biased, fair):
            m = np.zeros((1, len(y)), dtype=bool)
            m[0, sh_in] = True
            sh = run.train(
                f"FD-MIA shadow {nm}", "fdmia_shadow", recipes[nm][4], m, recipes[nm], seed + 3
            )
            pair.append(sh.predict_proba(X[sh_pts])[0].astype(np.float64))
        res = fd_mia(
            targets[biased].predict_proba(X[audit])[0].astype(np.float64),
            targets[fair].predict_proba(X[audit])[0].astype(np.float64),
            y[audit], is_member, pair[0], pair[1], y[sh_pts], sh_is_member, groups=sens_audit,
            n_bootstrap=cfg.attacks.n_bootstrap, random_state=seed,
        )  # fmt: skip
        res.fairness_weight = specs[fair].fairness.weight if specs[fair].fairness else None
        fd_out.append({"biased": biased, "fair": fair, **res.to_dict()})

    # 6. group privacy risk: the PA-ALOOA game on the audit set with each recipe
    gr = cfg.group_risk
    gr_records = []
    for name in cfg.group_risk_models():
        rec = recipes[name]
        rows = audit
        subset = None
        if gr.max_records is not None and gr.max_records < len(audit):
            subset = np.sort(
                np.random.default_rng(seed + 4).choice(len(audit), gr.max_records, replace=False)
            )
        masks = pa_alooa_masks(len(rows), gr.n_models, seed=seed + 4, audit_subset=subset)
        ens = run.train(f"PA-ALOOA {name}", "pa_alooa", rec[4], masks, rec, seed + 4, rows=rows)
        audited = np.arange(len(rows)) if subset is None else subset
        z = ens.predict_logits(X[rows][audited]).astype(np.float64)
        yy = y[rows][audited]
        zy = np.where(yy[None, :] == 1, z[..., 1], z[..., 0])
        scores = zy - np.logaddexp(z[..., 0], z[..., 1])
        grr = group_risk_from_scores(
            scores, masks[:, audited], sens_audit.iloc[audited].reset_index(drop=True),
            min_group_size=gr.min_group_size, null_seed=seed + 5,
        )  # fmt: skip
        models_out[name]["group_risk"] = grr.to_dict()
        gr_records.append(pd.DataFrame({"model": name, "row": ds.source_rows[rows][audited],
                                        "ipr": grr.ipr, "ipr_heldout": grr.ipr_heldout}))  # fmt: skip

    summary = []
    first_attr = ds.protected[0]
    for name, m in models_out.items():
        gaps = m["fairness"]["gaps"].get(first_attr, {})
        strongest = m["attacks"].get(m["strongest_attack"] or "", {})
        fd = [f for f in fd_out if f["fair"] == name or f["biased"] == name]
        summary.append({
            "model": name,
            "test_accuracy": m["accuracy"]["test"],
            "epsilon": m["epsilon"],
            "attribute": first_attr,
            "demographic_parity_difference": gaps.get("demographic_parity_difference", {}).get("value"),
            "equalized_odds_difference": gaps.get("equalized_odds_difference", {}).get("value"),
            "strongest_attack": m["strongest_attack"],
            "strongest_attack_auc": strongest.get("auc"),
            "strongest_attack_tpr_at_1%_fpr": strongest.get("tpr_at_1%_fpr"),
            "gprp": None if m["group_risk"] is None else m["group_risk"]["gprp"][first_attr]["pa_alooa_heldout"],
            "fd_mia_auc": max((f["attacks"]["fd_mia_learned"]["auc"] for f in fd if f["fair"] == name), default=None),
        })  # fmt: skip

    results = {
        "schema_version": 1,
        "fairleak_version": fairleak.__version__,
        "seed": seed,
        "config": cfg.model_dump(mode="json"),
        "dataset": {k: v for k, v in dataset_summary(ds).items()},
        "split": {"members": len(mem), "nonmembers": len(non), "population": len(pop)},
        "summary": summary,
        "models": models_out,
        "fd_mia": fd_out,
        "notes": [
            *list(ds.notes),
            "Fairness figures are measured on the non-members (rows never trained on).",
            "Attacks use reference models trained on complementary halves of the audit set, as many rows as "
            "the target's (online); offline variants use, for each point, the models that did not train on "
            "it; shadow models train on as many population rows.",
            "GPRP in the summary is the held-out PA-ALOOA figure for the first protected attribute.",
        ],
    }
    per_record = (
        pd.concat(records + gr_records, ignore_index=True)
        if records or gr_records
        else pd.DataFrame()
    )
    per_group = pd.DataFrame(group_rows)
    return AuditResult(
        results=_round(results), per_record=per_record, per_group=per_group,
        cache_hits=cache.hits, cache_misses=cache.misses, trainings=run.trainings,
    )  # fmt: skip
