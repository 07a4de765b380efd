"""FD-MIA against the strongest single-model attacks, over >= 10 seeds, through `run_audit`
(the same stages, seeds and code the CLI runs).

The leaking regime of docs/EXPERIMENTS.md section 1 (1,000 members, a 256-unit MLP trained 150
epochs): a biased model and a fair one (demographic-parity penalty on the first protected
attribute, weight --weight) on the same members with the same initialisation and batch order;
every registered default attack (threshold, shadow, LiRA, RMIA) on *each* model, with reference
models of its own recipe; FD-MIA on the pair. Per seed: every AUC and TPR at 1% FPR, overall and
per group; then paired differences (FD-MIA minus the strongest attack on either model, chosen
per seed) with a t interval and a sign count.

    python experiments/fd_mia_seeds.py [--seeds 10] [--weight 5] [--references 8]
    python experiments/fd_mia_seeds.py --quick
Writes experiments/results/fd_mia_seeds*.csv and settings; resumes from finished seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from fairleak.audit import run_audit
from fairleak.audit.config import AuditConfig, ModelSpec
from fairleak.train import FairnessConfig, TrainConfig

DATASETS = {"adult": ["sex", "race"], "compas": ["race", "sex"]}
SINGLE = ["threshold_loss", "shadow", "lira_online", "rmia_online", "rmia_offline", "lira_offline"]


def config(name: str, seed: int, args) -> AuditConfig:
    cfg = AuditConfig(seed=seed)
    cfg.data.dataset = name
    cfg.data.protected = DATASETS[name]
    cfg.split.max_audit = 2000  # 1,000 members, 1,000 non-members
    cfg.train = TrainConfig(hidden=(256,), epochs=args.epochs, lr=1e-3, batch_size=64)
    attr = DATASETS[name][0]
    cfg.models = [
        ModelSpec(name="biased"),
        ModelSpec(name="fair", fairness=FairnessConfig(penalty="demographic_parity", weight=args.weight,
                                                       attributes=[attr])),
    ]
    cfg.attacks.n_reference = args.references
    cfg.attacks.n_shadow = 4
    cfg.attacks.n_bootstrap = 50
    cfg.fd_mia.pairs = [("biased", "fair")]
    cfg.fd_mia.n_bootstrap = 50
    cfg.fairness.n_bootstrap = 50
    cfg.group_risk.enabled = False
    return cfg


def rows_of(res: dict, name: str, seed: int, attr: str) -> tuple[list[dict], list[dict]]:
    overall, groups = [], []

    def add(model: str, attack: str, m: dict) -> None:
        overall.append({"dataset": name, "seed": seed, "model": model, "attack": attack,
                        "auc": m["auc"], "tpr_at_1%_fpr": m["tpr_at_1%_fpr"]})  # fmt: skip
        for g, gm in m.get("by_group", {}).get(attr, {}).items():
            groups.append({"dataset": name, "seed": seed, "model": model, "attack": attack, "group": g,
                           "auc": gm["auc"], "n_members": gm["n_members"], "n_nonmembers": gm["n_nonmembers"]})  # fmt: skip

    for model in ("biased", "fair"):
        for attack, m in res["models"][model]["attacks"]["results"].items():
            add(model, attack, m)
        acc = res["models"][model]["fairness"]
        overall.append({"dataset": name, "seed": seed, "model": model, "attack": "(dp_gap)",
                        "auc": _dp_gap(acc, attr), "tpr_at_1%_fpr": None})  # fmt: skip
    for attack, m in res["fd_mia"]["pairs"][0]["attacks"].items():
        add("pair", attack, m)
    return overall, groups


def _dp_gap(fair: dict, attr: str) -> float | None:
    try:
        return float(fair["gaps"][attr]["demographic_parity_difference"]["value"])
    except (KeyError, TypeError):
        return None


def paired(df: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: FD-MIA variants minus the strongest single-model attack (per seed, over
    both models and every attack), and minus the strongest on the biased model alone."""
    out = []
    for name, d in df.groupby("dataset"):
        piv = d.pivot_table(index="seed", columns=["model", "attack"], values="auc")
        single = [c for c in piv.columns if c[0] in ("biased", "fair") and not c[1].startswith("(")]
        best_any = piv[single].max(axis=1)
        best_biased = piv[[c for c in single if c[0] == "biased"]].max(axis=1)
        for fd in ("fd_mia_signed", "fd_mia_learned", "fd_mia_abs"):
            if ("pair", fd) not in piv.columns:
                continue
            for label, ref in (("strongest single-model attack, either model", best_any),
                               ("strongest attack on the biased model", best_biased)):  # fmt: skip
                diff = (piv[("pair", fd)] - ref).dropna()
                n = len(diff)
                mean = float(diff.mean())
                half = float(stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
                out.append({"dataset": name, "fd_mia": fd, "versus": label, "seeds": n,
                            "fd_mia_auc": float(piv[("pair", fd)].mean()), "versus_auc": float(ref.mean()),
                            "mean_difference": mean, "ci95": [mean - half, mean + half],
                            "seeds_fd_mia_higher": int((diff > 0).sum())})  # fmt: skip
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--weight", type=float, default=5.0)
    ap.add_argument("--references", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.references, args.epochs = 2, 2, 5
        args.out = args.out.with_name(args.out.name + "-quick")
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "out"}
    (args.out / "fd_mia_seeds_settings.json").write_text(json.dumps(settings, indent=2))
    done_path, group_path = args.out / "fd_mia_seeds.csv", args.out / "fd_mia_seeds_by_group.csv"
    done = pd.read_csv(done_path) if done_path.exists() else pd.DataFrame(columns=["dataset", "seed"])
    groups = pd.read_csv(group_path) if group_path.exists() else pd.DataFrame()
    for name in DATASETS:
        for seed in range(args.seeds):
            if ((done["dataset"] == name) & (done["seed"] == seed)).any():
                continue  # resume: this seed is finished
            t0 = time.perf_counter()
            res = run_audit(config(name, seed, args), out_dir=args.out / "fd_mia_seeds_cache", use_cache=True).results
            o, g = rows_of(res, name, seed, DATASETS[name][0])
            done = pd.concat([done, pd.DataFrame(o)], ignore_index=True)
            groups = pd.concat([groups, pd.DataFrame(g)], ignore_index=True)
            done.to_csv(done_path, index=False)
            groups.to_csv(group_path, index=False)
            print(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    summary = paired(done[done["dataset"].isin(list(DATASETS))])
    summary.to_csv(args.out / "fd_mia_seeds_paired.csv", index=False)
    print(summary.to_string())


if __name__ == "__main__":
    main()
