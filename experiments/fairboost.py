"""Fair boosting (issue 15): scikit-learn's AdaBoost vs FairBoostClassifier on Adult (sex, race)
and COMPAS (race, sex), over seeds.

Every model boosts decision stumps for the same number of rounds. FairBoost holds out 20 % of
its training rows to choose the number of rounds theta (never the test rows); AdaBoost uses
all training rows and all rounds. On the test rows (30 % of each dataset, disjoint from
training): accuracy, balanced error, and fairness_report's gaps per attribute and intersection
with 95 % bootstrap intervals, over groups with at least --eval-min-group rows. From one
equalized-odds fit, three choices of theta are scored: AdaFair's rule (BER + worst gap on the
validation rows), the knee of the rounds' front, and all rounds.

Writes experiments/results/fairboost.csv (one row per dataset, seed, model, view and gap),
fairboost_groups.csv (per-group rates), fairboost_summary.csv, fairboost_tables.md and
fairboost_settings.json. Every FairBoost number in docs/EXPERIMENTS.md comes from here.

    python experiments/fairboost.py            # recorded settings (a few minutes on 2 cores)
    python experiments/fairboost.py --quick    # smoke run, under a minute
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import AdaBoostClassifier
from sklearn.tree import DecisionTreeClassifier

from fairleak.data import TabularPreprocessor, load_dataset
from fairleak.fairness import fairness_report
from fairleak.selection import knee_point
from fairleak.train.fairboost import FairBoostClassifier

DATASETS = {"adult": ["sex", "race"], "compas": ["race", "sex"]}
GAPS = (
    "equalized_odds_difference",
    "demographic_parity_difference",
    "equal_opportunity_difference",
)


def split(n: int, seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_test = round(test_fraction * n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def score(model, X, y, sensitive, args, seed) -> tuple[dict, pd.DataFrame, dict]:
    pred = model.predict(X)
    rep = fairness_report(
        y, pred, sensitive_features=sensitive, min_group_size=args.eval_min_group,
        n_bootstrap=args.bootstrap, random_state=seed,
    )  # fmt: skip
    tpr, tnr = pred[y == 1].mean(), 1 - pred[y == 0].mean()
    overall = {"accuracy": float(np.mean(pred == y)), "balanced_error": float(1 - (tpr + tnr) / 2)}
    return overall, rep.to_frame(), {"table": rep.table}


def fairboost_thetas(fb: FairBoostClassifier) -> dict[str, int]:
    so = fb.staged_objectives_
    ok = np.flatnonzero(np.isfinite(so["objective"].to_numpy()))
    F = np.column_stack([so["validation/balanced_error"], so["validation/max_gap"].fillna(0)])
    return {
        "adafair": fb.theta_,
        "knee": int(ok[knee_point(F[ok])]) + 1,
        "all rounds": fb.n_rounds_,
    }


def run(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gap_rows, group_rows, overall_rows = [], [], []
    for name, protected in DATASETS.items():
        ds = load_dataset(name, protected=protected)
        for seed in range(args.seeds):
            train, test = split(len(ds.y), seed, args.test_fraction)
            if args.max_train:
                train = train[: args.max_train]
            pre = TabularPreprocessor().fit(ds.features.iloc[train])
            X_tr, X_te = (
                pre.transform(ds.features.iloc[train]),
                pre.transform(ds.features.iloc[test]),
            )
            y_tr, y_te = ds.y[train], ds.y[test]
            s_tr, s_te = ds.sensitive.iloc[train], ds.sensitive.iloc[test]
            stump = DecisionTreeClassifier(max_depth=1)
            models: list[tuple[str, object, float]] = []
            t0 = time.perf_counter()
            ada = AdaBoostClassifier(stump, n_estimators=args.rounds, random_state=seed)
            ada.fit(X_tr, y_tr)
            models.append(("AdaBoost", ada, time.perf_counter() - t0))
            for constraint in args.constraints:
                t0 = time.perf_counter()
                fb = FairBoostClassifier(
                    stump, n_estimators=args.rounds, constraint=constraint, random_state=seed
                ).fit(X_tr, y_tr, sensitive_features=s_tr)
                secs = time.perf_counter() - t0
                thetas = (
                    fairboost_thetas(fb)
                    if constraint == "equalized_odds"
                    else {"adafair": fb.theta_}
                )
                for rule, theta in thetas.items():
                    chosen = copy.copy(fb).set_theta(theta)  # shares the fitted rounds
                    models.append((f"FairBoost {constraint} ({rule}, theta={theta})", chosen, secs))
            for label, model, secs in models:
                overall, gaps, extra = score(model, X_te, y_te, s_te, args, seed)
                key = {"dataset": name, "seed": seed, "model": label}
                overall_rows.append({**key, **overall, "fit_seconds": round(secs, 2),
                                     "n_train": len(train), "n_test": len(test)})  # fmt: skip
                for rec in gaps[gaps["gap"].isin(GAPS)].to_dict(orient="records"):
                    gap_rows.append({**key, **{k: rec[k] for k in
                                     ("attribute", "gap", "value", "ci_low", "ci_high", "note")}})  # fmt: skip
                tab = extra["table"][["attribute", "group", "count", "selection_rate", "tpr", "fpr",
                                      "accuracy", "too_small"]]  # fmt: skip
                group_rows += [{**key, **r} for r in tab.to_dict(orient="records")]
            print(f"{name} seed {seed}: {len(models)} models", flush=True)
    overall = pd.DataFrame(overall_rows)
    gaps = pd.DataFrame(gap_rows)
    gaps.to_csv(out / "fairboost.csv", index=False)
    pd.DataFrame(group_rows).to_csv(out / "fairboost_groups.csv", index=False)
    summary = summarize(overall, gaps)
    summary.to_csv(out / "fairboost_summary.csv", index=False)
    (out / "fairboost_tables.md").write_text(tables(summary, gaps))
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    (out / "fairboost_settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    print(tables(summary, gaps))


def summarize(overall: pd.DataFrame, gaps: pd.DataFrame) -> pd.DataFrame:
    eo = gaps[gaps["gap"] == "equalized_odds_difference"]
    worst = eo.groupby(["dataset", "seed", "model"])["value"].max().rename("worst_eo_gap")
    per_view = eo.pivot_table(
        index=["dataset", "seed", "model"], columns="attribute", values="value"
    )
    per_view.columns = [f"eo_gap[{c}]" for c in per_view.columns]
    df = overall.set_index(["dataset", "seed", "model"]).join(worst).join(per_view).reset_index()
    ada = df[df["model"] == "AdaBoost"].set_index(["dataset", "seed"])["worst_eo_gap"]
    df["lower_worst_gap_than_adaboost"] = [
        bool(w < ada.loc[(d, s)]) for d, s, w in zip(df["dataset"], df["seed"], df["worst_eo_gap"], strict=True)
    ]  # fmt: skip
    return df


def tables(summary: pd.DataFrame, gaps: pd.DataFrame) -> str:
    lines = []
    for name in summary["dataset"].unique():
        views = gaps.loc[gaps["dataset"] == name, "attribute"].unique()
        metrics = ["accuracy", "balanced_error", "worst_eo_gap", *(f"eo_gap[{v}]" for v in views)]
        sub = summary[summary["dataset"] == name]
        cols = [m for m in metrics if sub[m].notna().any()]
        n_seeds = sub["seed"].nunique()
        lines.append(f"\n**{name}** (test rows; mean ± std over {n_seeds} seeds)\n")
        lines.append("| model | " + " | ".join(cols) + " | lower worst gap than AdaBoost |")
        lines.append("|---" * (len(cols) + 2) + "|")
        order = list(dict.fromkeys(sub["model"].str.replace(r", theta=\d+", "", regex=True)))
        sub = sub.assign(family=sub["model"].str.replace(r", theta=\d+", "", regex=True))
        for fam in order:
            g = sub[sub["family"] == fam]
            cells = [f"{g[m].mean():.3f} ± {g[m].std(ddof=0):.3f}" for m in cols]
            wins = (
                f"{int(g['lower_worst_gap_than_adaboost'].sum())}/{len(g)}"
                if fam != "AdaBoost"
                else "–"
            )
            lines.append(f"| {fam} | " + " | ".join(cells) + f" | {wins} |")
        first = gaps[
            (gaps["dataset"] == name)
            & (gaps["seed"] == 0)
            & (gaps["gap"] == "equalized_odds_difference")
        ]
        lines.append("\nSeed 0, equalized-odds gap with 95 % bootstrap interval:\n")
        lines.append("| model | " + " | ".join(first["attribute"].unique()) + " |")
        lines.append("|---" * (first["attribute"].nunique() + 1) + "|")
        for model, g in first.groupby("model", sort=False):
            cells = [
                "–" if pd.isna(r.value) else f"{r.value:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"
                for r in g.itertuples()
            ]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--test-fraction", type=float, default=0.3)
    p.add_argument("--max-train", type=int, default=0, help="cap on training rows (0: all)")
    p.add_argument("--eval-min-group", type=int, default=100)
    p.add_argument("--bootstrap", type=int, default=500)
    p.add_argument("--constraints", nargs="+",
                   default=["equalized_odds", "equal_opportunity", "demographic_parity"])  # fmt: skip
    p.add_argument("--quick", action="store_true", help="2 seeds, 40 rounds, 5,000 training rows")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.rounds, args.max_train, args.bootstrap = 2, 40, 5000, 100
        args.out = str(Path(args.out) / "quick")
    t0 = time.perf_counter()
    run(args)
    print(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
