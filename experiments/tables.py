"""Markdown tables of the study's results (experiments/results/*.csv -> results/tables.md).

The tables in docs/EXPERIMENTS.md are pasted from this file's output, so that every number there
comes from the CSVs that experiments/study.py wrote.

    python experiments/tables.py [--results experiments/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def _ms(mean: float, std: float, nd: int = 3) -> str:
    return f"{mean:.{nd}f} ± {std:.{nd}f}" if pd.notna(std) else f"{mean:.{nd}f}"


def fd_mia_tables(res: Path) -> list[str]:
    df = pd.read_csv(res / "fd_mia.csv")
    out = []
    attacks = ["threshold_loss_biased", "shadow_biased", "threshold_loss_fair", "shadow_fair",
               "fd_mia_abs", "fd_mia_signed", "fd_mia_learned"]  # fmt: skip
    for (name, regime), d in df.groupby(["dataset", "regime"], sort=False):
        n_m, n_n = int(d["n_members"].iloc[0]), int(d["n_nonmembers"].iloc[0])
        for metric, label in (("auc", "AUC"), ("tpr_at_1%_fpr", "TPR at 1% FPR")):
            g = d.groupby(["attack", "fairness_weight"])[metric].agg(["mean", "std"])
            weights = sorted(d["fairness_weight"].unique())
            out.append(f"**{name}, {regime} regime: {label}** ({n_m} members, {n_n} non-members, "
                       f"mean ± std over {d['seed'].nunique()} seeds)\n")  # fmt: skip
            out.append("| attack | " + " | ".join(f"λ = {w:g}" for w in weights) + " |")
            out.append("|---|" + "---|" * len(weights))
            for a in attacks:
                cells = [_ms(*g.loc[(a, w)]) for w in weights]
                out.append(f"| {a} | " + " | ".join(cells) + " |")
            out.append("")
    hist = json.loads((res / "fd_mia_discrepancy.json").read_text())
    out.append("**Mean |p_b - p_f| of members vs non-members** (seed 0)\n")
    out.append("| dataset | regime | λ | members | non-members |")
    out.append("|---|---|---|---|---|")
    for h in hist:
        if h["seed"] == 0:
            out.append(f"| {h['dataset']} | {h['regime']} | {h['fairness_weight']:g} | "
                       f"{h['mean_disc_members']:.4f} | {h['mean_disc_nonmembers']:.4f} |")  # fmt: skip
    out.append("")
    return out


def group_risk_tables(res: Path) -> list[str]:
    df = pd.read_csv(res / "group_risk.csv")
    methods = ["pa_alooa", "pa_alooa_heldout", "pa_ga", "pa_gba"]
    out = []
    for (name, attr), d in df.groupby(["dataset", "attribute"], sort=False):
        seeds = d["seed"].nunique()
        out.append(f"**{name}, GPR by {attr}** (mean ± std over {seeds} seeds; "
                   f"R = {int(json.loads((res / 'settings.json').read_text())['models'])} models)\n")  # fmt: skip
        out.append("| group | n | " + " | ".join(methods) + " |")
        out.append("|---|---|" + "---|" * len(methods))
        g = d.groupby(["group", "method"])[["gpr", "null_gpr"]].agg(["mean", "std"])
        for grp, dd in d.groupby("group"):
            small = " (too small, not in GPRP)" if dd["too_small"].iloc[0] else ""
            cells = [f"{_ms(*g.loc[(grp, m), 'gpr'], nd=4)} ({g.loc[(grp, m), ('null_gpr', 'mean')]:.4f})"
                     for m in methods]  # fmt: skip
            out.append(f"| {grp}{small} | {int(dd['n'].iloc[0])} | " + " | ".join(cells) + " |")
        gp = d.drop_duplicates(["seed", "method"]).groupby("method")[["gprp", "null_gprp"]].mean()
        gps = d.drop_duplicates(["seed", "method"]).groupby("method")["gprp"].std()
        out.append("| **GPRP** | | " + " | ".join(
            f"**{_ms(gp.loc[m, 'gprp'], gps.loc[m], nd=4)}** ({gp.loc[m, 'null_gprp']:.4f})" for m in methods) + " |")  # fmt: skip
        out.append("")
    out.append("In brackets: the null level, the same figure with membership swapped at random within "
               "each model pair (no signal; mean over seeds).\n")  # fmt: skip
    return out


def dpsgd_s_tables(res: Path) -> list[str]:
    df = pd.read_csv(res / "dpsgd_s.csv")
    out = []
    for name, d in df.groupby("dataset", sort=False):
        attr = d["attribute"].iloc[0]
        gpr_cols = [c for c in d.columns if c.startswith("gpr_") and d[c].notna().all()]
        acc_cols = [c for c in d.columns if c.startswith("acc_") and d[c].notna().all()]
        out.append(f"**{name}, grouped and clipped by {attr}** (mean ± std over "
                   f"{d['seed'].nunique()} seeds; held-out PA-ALOOA)\n")  # fmt: skip
        head = ["algorithm", "ε target", "ε reported", "GPRP", *[c[4:] for c in gpr_cols],
                "accuracy", *[f"acc {c[4:]}" for c in acc_cols]]  # fmt: skip
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        d = d.assign(target=d["target_epsilon"].fillna(-1))
        for (tgt, alg), dd in d.groupby(["target", "algorithm"], sort=False):
            eps = dd["epsilon"].mean()
            cells = [alg, "–" if tgt < 0 else f"{tgt:g}", "–" if pd.isna(eps) else f"{eps:.2f}",
                     _ms(dd["gprp_alooa_heldout"].mean(), dd["gprp_alooa_heldout"].std(), 4),
                     *[_ms(dd[c].mean(), dd[c].std(), 4) for c in gpr_cols],
                     _ms(dd["accuracy_out"].mean(), dd["accuracy_out"].std()),
                     *[_ms(dd[c].mean(), dd[c].std()) for c in acc_cols]]  # fmt: skip
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    parts = ["## 1. FD-MIA\n", *fd_mia_tables(args.results),
             "## 2. Group privacy risk\n", *group_risk_tables(args.results),
             "## 3. DP-SGD vs DP-SGD-S\n", *dpsgd_s_tables(args.results)]  # fmt: skip
    text = "\n".join(parts)
    (args.results / "tables.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
