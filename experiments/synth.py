"""Synthetic data (issue 16): oversampling strategies x generators, and FLIP-lite at several
epsilons with and without latent alignment, on Adult and COMPAS.

Writes CSV files under experiments/results/ (or --out); the synthetic-data section of
docs/EXPERIMENTS.md is made from them (``--table`` prints its tables). Sized for a 2-core
machine: each part is one process of a few minutes.

    python experiments/synth.py oversample --dataset compas        # ~1-2 min
    python experiments/synth.py oversample --dataset adult --rows 8000
    python experiments/synth.py flip --dataset adult --epochs 10    # ~6 fits, ~1 min each
    python experiments/synth.py --table
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from fairleak.attacks.metrics import attack_metrics
from fairleak.data import TabularPreprocessor, load_dataset
from fairleak.fairness import fairness_report
from fairleak.synth.api import load_synth_table, split_for_evaluation
from fairleak.synth.evaluate import (
    fidelity,
    privacy,
    protected_predictability,
    utility_and_fairness,
)
from fairleak.synth.flip import FlipLiteSynthesizer, child_seed
from fairleak.synth.oversample import FairOversampler

GAPS = ("demographic_parity_difference", "equalized_odds_difference")


def _loss(p1: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = np.clip(np.where(y == 1, p1, 1 - p1), 1e-6, 1)
    return -np.log(p)


def oversample_study(dataset: str, rows: int | None, seed: int, out: Path) -> None:
    """Members (50%) oversampled per strategy x generator; HGB (protected attributes not
    inputs) tested on the other 50% (non-members); loss-threshold membership AUC per group."""
    ds = load_dataset(dataset)
    n = len(ds)
    idx = np.arange(n)
    if rows is not None and rows < n:
        idx, _ = train_test_split(idx, train_size=rows, stratify=ds.y, random_state=child_seed(seed, "rows") % 2**31)
    mem, non = train_test_split(np.sort(idx), test_size=0.5, stratify=ds.y[np.sort(idx)],
                                random_state=child_seed(seed, "members") % 2**31)  # fmt: skip
    X, y, S = ds.features, ds.y, ds.sensitive
    records = []
    settings = [("none", "none")] + [(s, g) for s in ("class", "protected", "class_protected", "same_class")
                                     for g in ("smote", "cart", "vae")]  # fmt: skip
    for strategy, gen in settings:
        t0 = time.perf_counter()
        Xm, ym = X.iloc[mem].reset_index(drop=True), y[mem]
        added = 0
        notes = ""
        if strategy != "none":
            over = FairOversampler(strategy, gen, random_state=seed, small_cells="skip",
                                   vae_params={"epochs": 10, "batch_size": 256})  # fmt: skip
            Xm, ym = over.fit_resample(Xm, ym, sensitive_features=S.iloc[mem].reset_index(drop=True))
            added = len(Xm) - len(mem)
            notes = " ".join(over.notes_)
        model = make_pipeline(TabularPreprocessor(), HistGradientBoostingClassifier(max_iter=100, random_state=seed))
        model.fit(Xm, ym)
        p_non = model.predict_proba(X.iloc[non])[:, 1]
        p_mem = model.predict_proba(X.iloc[mem])[:, 1]
        yhat = (p_non >= 0.5).astype(int)
        yn = y[non]
        rep = fairness_report(yn, yhat, sensitive_features=S.iloc[non].reset_index(drop=True), y_score=p_non,
                              n_bootstrap=0)  # fmt: skip
        tpr, tnr = yhat[yn == 1].mean(), 1 - yhat[yn == 0].mean()
        from sklearn.metrics import roc_auc_score

        score = -np.r_[_loss(p_mem, y[mem]), _loss(p_non, yn)]
        is_in = np.r_[np.ones(len(mem), bool), np.zeros(len(non), bool)]
        mia = attack_metrics(score, is_in, groups=pd.concat([S.iloc[mem], S.iloc[non]], ignore_index=True),
                             n_bootstrap=0, intersections=False)  # fmt: skip
        row = {"dataset": dataset, "strategy": strategy, "generator": gen, "members": len(mem), "added": added,
               "accuracy": float((yhat == yn).mean()), "auc": float(roc_auc_score(yn, p_non)),
               "balanced_error": float(1 - (tpr + tnr) / 2), "mia_auc": mia.auc,
               "seconds": time.perf_counter() - t0, "notes": notes}  # fmt: skip
        for attr, gaps in rep.gaps.items():
            for gname in GAPS:
                row[f"{gname}[{attr}]"] = gaps[gname].value
        for attr, gs in mia.by_group.items():
            for g, m in gs.items():
                row[f"mia_auc[{attr}={g}]"] = m.auc
        records.append(row)
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if not k.startswith("mia_auc[")},
              flush=True)  # fmt: skip
    path = out / f"synth_oversample_{dataset}.csv"
    pd.DataFrame(records).to_csv(path, index=False)
    print(f"wrote {path}")


def flip_study(dataset: str, epochs: int, seed: int, out: Path, eval_rows: int, epsilons: list[float | None]) -> None:
    """FLIP-lite at epsilon 1, 3, 10 (and not private) with and without alignment."""
    table = load_synth_table(dataset)
    train, holdout, test = split_for_evaluation(table, seed=seed)
    rng = np.random.default_rng(child_seed(seed, "eval rows"))
    small = train.iloc[rng.choice(len(train), min(eval_rows, len(train)), replace=False)].reset_index(drop=True)
    drop = [c for c in table.protected if c != table.protected[0]]
    records = []
    for eps in epsilons:
        for lam in (0.0, 1.0):
            t0 = time.perf_counter()
            m = FlipLiteSynthesizer(epsilon=eps, epochs=epochs, align_weight=lam, schema=table.schema,
                                    random_state=seed, noise="reproducible")  # fmt: skip
            m.fit(train, protected=table.protected)
            fit_s = time.perf_counter() - t0
            syn = m.sample(len(train), random_state=child_seed(seed, "sample"))
            syn_small = syn.iloc[: len(small)]
            fid = fidelity(small, syn_small)
            ut = utility_and_fairness(syn, train, test, label=table.label, positive=table.positive,
                                      protected=table.protected, seed=seed, n_bootstrap=0)  # fmt: skip
            pv = privacy(syn, train, holdout, protected=table.protected, seed=seed, max_rows=1500, n_bootstrap=0)
            row = {"dataset": dataset, "epsilon": eps, "align_weight": lam, "epochs": epochs,
                   "epsilon_accountant": m.epsilon_, "fit_seconds": fit_s,
                   "mean_tvd": fid["mean_tvd"], "mean_ks": fid["mean_ks"],
                   "association_diff": fid["association_mean_abs_diff"],
                   "contingency_similarity": fid["contingency_similarity"],
                   "s_predictability_syn": protected_predictability(syn, table.protected[0], drop, seed=seed),
                   "dcr_share": pv["dcr_share"], "mdcr_ratio": pv["mdcr_ratio"],
                   "gen_mia_auc": pv["membership_attack"]["auc"]}  # fmt: skip
            for attr, gs in pv["membership_attack"].get("by_group", {}).items():
                if "*" in attr:
                    continue
                for g, mm in gs.items():
                    row[f"gen_mia_auc[{attr}={g}]"] = mm["auc"]
            for name, res in ut["models"].items():
                short = "hgb" if name.startswith("hist") else "lr"
                for src in ("synthetic", "real"):
                    row[f"{short}_auc_{src}"] = res[src].get("auc")
                    for attr, gaps in res[src].get("gaps", {}).items():
                        if short == "hgb":
                            for gname in GAPS:
                                row[f"{gname}[{attr}]_{src}"] = gaps[gname]
            records.append(row)
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()
                   if "[" not in k}, flush=True)  # fmt: skip
    real_pred = protected_predictability(train, table.protected[0], drop, seed=seed)
    for r in records:
        r["s_predictability_real"] = real_pred
    tag = "_".join("inf" if e is None else f"{e:g}" for e in epsilons)
    path = out / f"synth_flip_{dataset}_eps{tag}.csv"
    pd.DataFrame(records).to_csv(path, index=False)
    print(f"wrote {path}")


def _md(df: pd.DataFrame) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return "–" if np.isnan(v) else f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def tables(out: Path) -> None:
    """The tables of docs/EXPERIMENTS.md, from the CSV files."""
    for f in sorted(out.glob("synth_oversample_*.csv")):
        df = pd.read_csv(f)
        inter = next(c for c in df.columns if c.startswith("equalized_odds_difference[") and "*" in c)
        cols = {"strategy": "strategy", "generator": "gen", "added": "added", "accuracy": "acc", "auc": "AUC",
                "balanced_error": "BER", "demographic_parity_difference[sex]": "DP sex",
                "equalized_odds_difference[sex]": "EOD sex", "demographic_parity_difference[race]": "DP race",
                "equalized_odds_difference[race]": "EOD race", inter: "EOD sex x race", "mia_auc": "MIA AUC"}  # fmt: skip
        groups = [c for c in df.columns if c.startswith("mia_auc[") and df[c].notna().all()]
        table = df[list(cols) + groups].rename(columns={**cols, **{g: g.removeprefix("mia_auc[").rstrip("]") for g in groups}})
        print(f"\n### {f.stem} ({int(df['members'][0])} members)\n\n{_md(table)}")
    for f in sorted(out.glob("synth_flip_*.csv")):
        df = pd.read_csv(f)
        first = "sex" if "demographic_parity_difference[sex]_synthetic" in df.columns else "race"
        cols = {"epsilon": "target eps", "align_weight": "lambda", "epsilon_accountant": "eps (accountant)",
                "fit_seconds": "fit s", "mean_tvd": "mean TVD", "association_diff": "assoc. diff",
                "hgb_auc_synthetic": "TSTR AUC (HGB)", "hgb_auc_real": "TRTR AUC", "lr_auc_synthetic": "TSTR AUC (LR)",
                f"demographic_parity_difference[{first}]_synthetic": f"DP {first} (syn)",
                f"demographic_parity_difference[{first}]_real": f"DP {first} (real)",
                "s_predictability_syn": "S-pred (syn)", "s_predictability_real": "S-pred (real)",
                "dcr_share": "DCR share", "gen_mia_auc": "gen. MIA AUC"}  # fmt: skip
        cols = {k: v for k, v in cols.items() if k in df.columns}
        print(f"\n### {f.stem}\n\n{_md(df[list(cols)].rename(columns=cols))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", nargs="?", choices=["oversample", "flip"])
    ap.add_argument("--dataset", default="compas")
    ap.add_argument("--rows", type=int, default=None, help="subsample the table first (oversample)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--eval-rows", type=int, default=3000)
    ap.add_argument("--eps", default="1,3,10,inf", help="epsilons (flip), 'inf' = not private")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--table", action="store_true")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.table or a.part is None:
        tables(a.out)
    elif a.part == "oversample":
        oversample_study(a.dataset, a.rows, a.seed, a.out)
    else:
        eps = [None if e.strip() == "inf" else float(e) for e in a.eps.split(",")]
        flip_study(a.dataset, a.epochs, a.seed, a.out, a.eval_rows, eps)


if __name__ == "__main__":
    main()
