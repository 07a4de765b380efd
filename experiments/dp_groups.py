"""DP-SGD vs DP-SGD-S where models leak, per group: attacks, accuracy and empirical epsilon
lower bounds, through `run_audit` (the stages the CLI runs), plus DP-SGD-S's clipping-bound traces.

Regime: 1,000 members, a 256-unit MLP trained long (the leaking regime of section 1). Models:
a non-private baseline, DP-SGD and DP-SGD-S (group-adaptive clipping by the first protected
attribute) at the same target epsilon. Per model and group: LiRA / RMIA / loss-threshold AUC, test
accuracy, and the dp_audit stage's one-run lower bound on epsilon from black-box canaries
(flipped-label population rows, stratified by group). Separately, one DP-SGD-S training run per
dataset records the per-group clipping bounds C_k at every step (does it adapt?).

    python experiments/dp_groups.py [--seeds 3] [--epsilon 8] [--epochs 60]
    python experiments/dp_groups.py --quick
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fairleak.audit import run_audit
from fairleak.audit.config import AuditConfig, ModelSpec
from fairleak.data import TabularPreprocessor, group_codes, load_dataset, make_audit_split
from fairleak.train import DPConfig, TrainConfig, train_ensemble

DATASETS = {"adult": ["sex", "race"], "compas": ["race", "sex"]}
ATTACKS = ["threshold_loss", "lira_online", "rmia_online"]


def recipe(args) -> TrainConfig:
    return TrainConfig(hidden=(256,), epochs=args.epochs, lr=1e-3, batch_size=64)


def config(name: str, seed: int, args) -> AuditConfig:
    attr = DATASETS[name][0]
    cfg = AuditConfig(seed=seed)
    cfg.data.dataset = name
    cfg.data.protected = DATASETS[name]
    cfg.split.max_audit = 2000
    cfg.train = recipe(args)
    eps = args.epsilon
    cfg.models = [
        ModelSpec(name="baseline"),
        ModelSpec(name="dp_sgd", dp=DPConfig(target_epsilon=eps, max_grad_norm=1.0)),
        ModelSpec(name="dp_sgd_s", dp=DPConfig(target_epsilon=eps, max_grad_norm=1.0, group_clipping=True,
                                               tau=2.0, group_attribute=attr)),
    ]
    cfg.attacks.names = ATTACKS
    cfg.attacks.n_reference = args.references
    cfg.attacks.n_bootstrap = 50
    cfg.fairness.n_bootstrap = 50
    cfg.fd_mia.enabled = False
    cfg.group_risk.enabled = False
    cfg.dp_audit.enabled = True
    cfg.dp_audit.scorer = "black_box"  # per-group leakage: canaries are rows of each group
    cfg.dp_audit.runs = args.runs
    cfg.dp_audit.canaries = args.canaries
    return cfg


def rows_of(res: dict, name: str, seed: int, attr: str) -> list[dict]:
    out = []
    for model, m in res["models"].items():
        acc = m["fairness"]["accuracy"]["test_by_group"].get(attr, {})
        bound = m["dp_audit"].get("one_run") or {}
        eps = m.get("epsilon")
        for g, a in acc.items():
            row = {"dataset": name, "seed": seed, "model": model, "group": g, "n_test": a["n"],
                   "accuracy": a["accuracy"], "accountant_epsilon": None if eps is None else eps[0]
                   if isinstance(eps, list) else eps,
                   "empirical_epsilon": bound.get("by_group", {}).get(attr, {}).get(g, {}).get("value"),
                   "empirical_ceiling": bound.get("by_group", {}).get(attr, {}).get(g, {}).get("ceiling")}  # fmt: skip
            for attack, r in m["attacks"]["results"].items():
                row[f"auc_{attack}"] = r.get("by_group", {}).get(attr, {}).get(g, {}).get("auc")
            out.append(row)
        row = {"dataset": name, "seed": seed, "model": model, "group": "(all)",
               "accuracy": m["fairness"]["accuracy"]["test"],
               "accountant_epsilon": None if eps is None else eps[0] if isinstance(eps, list) else eps,
               "empirical_epsilon": bound.get("value"), "empirical_ceiling": bound.get("ceiling")}  # fmt: skip
        for attack, r in m["attacks"]["results"].items():
            row[f"auc_{attack}"] = r["auc"]
        out.append(row)
    return out


def clip_traces(args, out: Path) -> pd.DataFrame:
    """Per-group clipping bounds of one DP-SGD-S run per dataset (members of seed 0)."""
    rows = []
    for name, prot in DATASETS.items():
        ds = load_dataset(name, protected=prot)
        split = make_audit_split(len(ds), seed=0, stratify=ds.y, max_audit=2000)
        X = TabularPreprocessor().fit(ds.features.iloc[split.population]).transform(ds.features)
        codes, labels = group_codes(ds.sensitive[prot[0]].to_numpy())
        m = split.members
        ens = train_ensemble(
            X[m], ds.y[m], np.ones((1, len(m)), bool), config=recipe(args), seed=0,
            dp=DPConfig(target_epsilon=args.epsilon, group_clipping=True, tau=2.0, noise="reproducible"),
            clip_groups=codes[m],
        )  # fmt: skip
        tr = ens.clip_trace[:, 0, :]  # [steps, groups]
        T = len(tr)
        for gi, g in enumerate(labels):
            for part, sl in (("first 10% of steps", slice(0, max(1, T // 10))), ("last 10% of steps", slice(T - max(1, T // 10), T))):
                rows.append({"dataset": name, "group": g, "n_members": int((codes[m] == gi).sum()), "steps": part,
                             "C_k_mean": float(tr[sl, gi].mean()), "C_k_min": float(tr[sl, gi].min()),
                             "C_k_max": float(tr[sl, gi].max())})  # fmt: skip
    df = pd.DataFrame(rows)
    df.to_csv(out / "dp_groups_clip_traces.csv", index=False)
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epsilon", type=float, default=8.0)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--references", type=int, default=8)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--canaries", type=int, default=250)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.references, args.runs, args.canaries = 1, 3, 2, 2, 40
        args.out = args.out.with_name(args.out.name + "-quick")
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "out"}
    (args.out / "dp_groups_settings.json").write_text(json.dumps(settings, indent=2))
    path = args.out / "dp_groups.csv"
    done = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["dataset", "seed"])
    for name in DATASETS:
        for seed in range(args.seeds):
            if ((done["dataset"] == name) & (done["seed"] == seed)).any():
                continue
            t0 = time.perf_counter()
            res = run_audit(config(name, seed, args), out_dir=args.out / "dp_groups_cache").results
            done = pd.concat([done, pd.DataFrame(rows_of(res, name, seed, DATASETS[name][0]))], ignore_index=True)
            done.to_csv(path, index=False)
            print(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(clip_traces(args, args.out).to_string())
    cols = [c for c in done.columns if c.startswith("auc_")] + ["accuracy", "empirical_epsilon", "accountant_epsilon"]
    summary = done.groupby(["dataset", "model", "group"])[cols].agg(["mean", "std"]).round(3)
    summary.to_csv(args.out / "dp_groups_summary.csv")
    print(summary.to_string())


if __name__ == "__main__":
    main()
